//! A training job on a temporary `/opt/ml` tree: the three configuration files SageMaker writes
//! (`hyperparameters.json` with every value a string, `inputdataconfig.json`,
//! `resourceconfig.json` of one host) and a folder per channel, then the training hook run by
//! `modelstage_runtime::train::run_job`, the code of `modelstage train`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use modelstage_runtime::train::job_files::{channel_settings, resource_config};
use modelstage_runtime::train::{run_job, Paths};
use serde_json::{json, Map, Value};

use crate::Error;

/// One channel's files, by name inside the channel folder, and its ContentType.
#[derive(Debug, Clone, Default)]
struct Channel {
    files: BTreeMap<String, Vec<u8>>,
    content_type: Option<String>,
}

/// What a job is given: channels and hyperparameters (the CreateTrainingJob parts a stage sees).
#[derive(Debug, Clone, Default)]
pub struct TrainingJob {
    channels: BTreeMap<String, Channel>,
    hyperparameters: BTreeMap<String, String>,
}

/// A job that completed: its tree stays until this is dropped.
#[derive(Debug)]
pub struct Trained {
    tree: tempfile::TempDir,
    paths: Paths,
}

impl Trained {
    /// The root of the tree (`/opt/ml`).
    pub fn base_dir(&self) -> &Path {
        self.tree.path()
    }

    /// `model/`: what `model.tar.gz` would hold, and what `serve` gets as its model dir.
    pub fn model_dir(&self) -> &Path {
        Path::new(&self.paths.model_dir)
    }

    /// `output/data/`: what `output.tar.gz` would hold.
    pub fn output_data_dir(&self) -> &Path {
        Path::new(&self.paths.output_data_dir)
    }
}

/// `run_job` exports the job's `SM_*` variables into this process: one job at a time.
static ONE_JOB: Mutex<()> = Mutex::new(());

impl TrainingJob {
    /// A job with no channels and no hyperparameters.
    pub fn new() -> TrainingJob {
        TrainingJob::default()
    }

    /// A file `name` with `contents` in channel `channel` (`input/data/<channel>/<name>`).
    pub fn file(mut self, channel: &str, name: &str, contents: impl Into<Vec<u8>>) -> TrainingJob {
        self.channels
            .entry(channel.into())
            .or_default()
            .files
            .insert(name.into(), contents.into());
        self
    }

    /// The ContentType a channel declares in `inputdataconfig.json`.
    pub fn content_type(mut self, channel: &str, content_type: &str) -> TrainingJob {
        self.channels.entry(channel.into()).or_default().content_type = Some(content_type.into());
        self
    }

    /// A hyperparameter; SageMaker passes every value as a string.
    pub fn hyperparameter(mut self, name: &str, value: impl ToString) -> TrainingJob {
        self.hyperparameters.insert(name.into(), value.to_string());
        self
    }

    /// Lays out the tree and runs the training hook of `stage`. A failed job is
    /// [`Error::Training`], the failure reason `output/failure` received.
    pub(crate) fn run(&self, stage: &Path) -> Result<Trained, Error> {
        let tree = tempfile::Builder::new()
            .prefix("modelstage-test-")
            .tempdir()
            .map_err(Error::TrainingTree)?;
        let paths = Paths::new(&tree.path().to_string_lossy());
        self.lay_out(&paths).map_err(|error| Error::LayOut {
            base: tree.path().to_path_buf(),
            error,
        })?;
        let _one = ONE_JOB.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // The previous job's variables (say SM_HP_SCALE) must not leak into this one.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("SM_") {
                std::env::remove_var(name);
            }
        }
        run_job(stage, &paths).map_err(Error::Training)?;
        Ok(Trained { tree, paths })
    }

    fn lay_out(&self, paths: &Paths) -> std::io::Result<()> {
        for dir in [
            &paths.input_config_dir,
            &paths.input_data_dir,
            &paths.model_dir,
            &paths.output_data_dir,
        ] {
            std::fs::create_dir_all(dir)?;
        }
        let hyperparameters: Map<String, Value> = self
            .hyperparameters
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        let channels: Map<String, Value> = self
            .channels
            .iter()
            .map(|(name, channel)| {
                (
                    name.clone(),
                    channel_settings(channel.content_type.as_deref(), "File"),
                )
            })
            .collect();
        for (file, value) in [
            ("hyperparameters.json", Value::Object(hyperparameters)),
            ("inputdataconfig.json", Value::Object(channels)),
            ("resourceconfig.json", resource_config()),
        ] {
            std::fs::write(paths.config_file(file), value.to_string())?;
        }
        for (name, channel) in &self.channels {
            let dir = PathBuf::from(paths.channel_dir(name));
            std::fs::create_dir_all(&dir)?;
            for (file, contents) in &channel.files {
                std::fs::write(dir.join(file), contents)?;
            }
        }
        Ok(())
    }
}
