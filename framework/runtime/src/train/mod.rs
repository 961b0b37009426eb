//! `modelstage train`: what SageMaker runs as `docker run IMAGE train`.
//!
//! Reads the job from the `/opt/ml` tree (`$SAGEMAKER_BASE_DIR`), builds the training environment
//! exactly as sagemaker-training-toolkit does, exports every `SM_*` variable into the process
//! environment, and calls the stage's `train_fn` with the `SM_TRAINING_ENV` document. Success
//! writes `output/success` and exits 0; any failure (bad configuration, missing channel data, a
//! stage without a training hook, a hook error or panic) writes the reason to `output/failure`,
//! logs it and exits 1; SIGTERM exits 143 with a reason that says the job was stopped.
//! `docs/contract.md` lists where this differs from the toolkit.

mod cmd_args;
mod config;
mod environment;
mod error;
mod host;
pub mod job_files;
mod outcome;
mod paths;
mod signals;

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::loader::LoadedStage;

pub use config::{decode_hyperparameters, JobConfig};
pub use environment::TrainingEnvironment;
pub use error::JobError;
pub use host::HostFacts;
pub use outcome::FAILURE_REASON_CHARS;
pub use paths::{Paths, DEFAULT_BASE_DIR};

/// `modelstage train`.
#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// The stage library whose training hook runs (built with `export_stage!(MyStage, train)`).
    #[arg(long, env = "MODELSTAGE_STAGE", value_name = "PATH")]
    pub stage: PathBuf,
    /// The root of the training tree, which SageMaker mounts at /opt/ml.
    #[arg(long, env = "SAGEMAKER_BASE_DIR", default_value = DEFAULT_BASE_DIR, value_name = "DIR")]
    pub base_dir: String,
}

/// Runs one training job and reports how it ended in the exit code.
pub fn run(args: TrainArgs) -> Result<(), TrainError> {
    let paths = Paths::new(&args.base_dir);
    if !Path::new(&paths.base_dir).is_dir() {
        return Err(TrainError::NoTree(paths.base_dir));
    }
    signals::watch(paths.failure_file());
    run_job(&args.stage, &paths).map_err(TrainError::Failed)?;
    log::info!("Training finished; the model is in {}", paths.model_dir);
    Ok(())
}

/// Why `modelstage train` failed. The caller logs it (SageMaker shows the
/// log) and exits non-zero.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// There is no training tree at the base dir.
    #[error(
        "the training tree {0} does not exist: SageMaker mounts it at /opt/ml; \
         elsewhere set SAGEMAKER_BASE_DIR (or use `modelstage fit`, which lays one out)"
    )]
    NoTree(String),
    /// The job failed; the reason is also in `output/failure`.
    #[error("Training failed: {0}")]
    Failed(JobError),
}

/// One training job on an existing tree, as `train` runs it but without signal handling: reads
/// the job, calls the stage's training hook, and writes `output/success` or `output/failure`
/// (whose text is the `Err`'s message). `modelstage-testing` runs jobs in-process through this.
pub fn run_job(stage_path: &Path, paths: &Paths) -> Result<(), JobError> {
    outcome::clear_stale(&paths.success_file());
    outcome::clear_stale(&paths.failure_file());
    match train(stage_path, paths) {
        Ok(()) => {
            if let Err(e) = outcome::write_success(&paths.success_file()) {
                log::warn!("cannot write {}: {e}", paths.success_file().display());
            }
            Ok(())
        }
        Err(reason) => {
            outcome::write_failure(&paths.failure_file(), &reason.to_string());
            Err(reason)
        }
    }
}

/// Everything between reading the tree and the hook's return; `Err` is the failure reason.
fn train(stage_path: &Path, paths: &Paths) -> Result<(), JobError> {
    let config = JobConfig::read(paths)?;
    let instance_type = config
        .resource_config
        .get("current_instance_type")
        .and_then(Value::as_str)
        .unwrap_or("local");
    let facts = HostFacts::probe(instance_type);
    let env = TrainingEnvironment::build(paths, &config, &facts, &|name| std::env::var(name).ok())?;
    check_channel_data(paths, &config)?;
    for dir in [&paths.model_dir, &paths.output_data_dir] {
        std::fs::create_dir_all(dir).map_err(|error| JobError::CreateDir {
            dir: dir.clone(),
            error,
        })?;
    }

    let stage = LoadedStage::open(stage_path).map_err(JobError::Load)?;
    let info = stage.info();
    if !stage.has_train() {
        return Err(JobError::NoTrainHook {
            name: info.name.clone(),
            version: info.version.clone(),
            library: stage_path.to_path_buf(),
        });
    }

    export(&env)?;
    let training_env = env.training_env_json();
    log::info!("Training Env: {training_env}");
    log::info!("Invoking train_fn of stage '{}' {}", info.name, info.version);
    stage.train(&training_env).map_err(JobError::Hook)
}

/// Data channels in File or FastFile mode are directories the platform fills before training
/// starts; a missing one means the job cannot see its data, so it fails here with the channel's
/// name rather than later inside the stage. Pipe-mode channels are FIFOs named `<channel>_<epoch>`.
fn check_channel_data(paths: &Paths, config: &JobConfig) -> Result<(), JobError> {
    for (name, settings) in &config.input_data_config {
        let mode = settings
            .get("TrainingInputMode")
            .and_then(Value::as_str)
            .unwrap_or("File");
        let dir = paths.channel_dir(name);
        if mode != "Pipe" && !Path::new(&dir).is_dir() {
            return Err(JobError::MissingChannelData {
                name: name.clone(),
                dir,
            });
        }
    }
    Ok(())
}

/// Sets every `SM_*` variable and the toolkit's other variables in this process, so the hook and
/// anything it starts see them. A name or value the OS cannot hold is an error naming it.
fn export(env: &TrainingEnvironment) -> Result<(), JobError> {
    let vars: Vec<(String, String)> = env
        .sm_vars()
        .into_iter()
        .chain(env.toolkit_vars.clone())
        .collect();
    for (name, value) in &vars {
        if name.contains(['=', '\0']) {
            return Err(JobError::VariableName(name.clone()));
        }
        if value.contains('\0') {
            return Err(JobError::VariableValue(name.clone()));
        }
    }
    for (name, value) in vars {
        std::env::set_var(name, value);
    }
    Ok(())
}
