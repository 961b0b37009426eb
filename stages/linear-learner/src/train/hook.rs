//! The training hook: reads the channels and hyperparameters from the
//! SageMaker training environment, trains, writes `linear-learner.json`.

use modelstage_sdk::{StageError, TrainingEnv};

use crate::train::config::Config;
use crate::train::data::{Channel, Format};
use crate::train::{run, Job, Outcome};

/// The channels Linear Learner reads.
const CHANNELS: [&str; 3] = ["train", "validation", "test"];

/// Trains from `env` and writes the model into its model dir.
pub fn train(env: &TrainingEnv) -> Result<Outcome, StageError> {
    let config = Config::from_hyperparameters(env.hyperparameters())?;
    if env.hosts().len() > 1 {
        return Err(StageError::bad_request(format!(
            "training on {} hosts is not supported yet; use one instance (instance_count=1)",
            env.hosts().len()
        )));
    }
    if let Some(unknown) = env.channel_names().into_iter().find(|c| !CHANNELS.contains(c)) {
        return Err(StageError::bad_request(format!(
            "channel '{unknown}' is not one Linear Learner reads; use train, validation and test"
        )));
    }
    let channel = |name: &str| -> Result<Option<Channel>, StageError> {
        if env.channel_dir(name).is_none() {
            return Ok(None);
        }
        let files = env.channel_files(name)?;
        if files.is_empty() {
            return Err(StageError::bad_request(format!("channel '{name}' has no files")));
        }
        Ok(Some(Channel {
            name: name.to_string(),
            files,
            format: Format::from_content_type(name, env.channel_content_type(name))?,
        }))
    };
    let train = channel("train")?.ok_or_else(|| {
        StageError::bad_request(format!(
            "Linear Learner needs a 'train' channel; the job has: {}",
            env.channel_names().join(", ")
        ))
    })?;
    let job = Job {
        config,
        train,
        validation: channel("validation")?,
        test: channel("test")?,
        host: env.current_host().to_string(),
        threads: env.num_cpus(),
    };
    let outcome = run(&job)?;
    outcome.model.save(env.model_dir())?;
    log::info!(
        "Wrote {} after {} epochs",
        env.model_dir().join(crate::model::MODEL_FILE).display(),
        outcome.epochs_run
    );
    Ok(outcome)
}
