//! Running the training container on a prepared tree: one function, [`run_training_container`],
//! with two implementations. A stage library runs as a `modelstage train` child process of this
//! binary ([`process`]); a Docker image runs as `docker run IMAGE train` with the tree mounted at
//! `/opt/ml` ([`engine`]), as SageMaker runs a training image. Either way the container gets the
//! job's `Environment` and `TRAINING_JOB_NAME` and nothing else of ours, its log goes to ours, and
//! what it leaves in the tree (`model/`, `output/failure`) is read by the caller the same way.

mod engine;
mod process;

use std::path::Path;

use super::image::TrainingImage;
use super::request::TrainingJob;
use super::stop::{signal_name, Stop};

/// How the training container ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainingExit {
    /// Its main process exited with status 0.
    pub success: bool,
    /// The exit as the runner reports it, e.g. `exit status: 1` or `exit code 137 (ended by
    /// signal 9)`, for a failure that left no `output/failure`.
    pub description: String,
    /// The signal (SIGINT, SIGTERM) that stopped the job before it finished, if one did.
    pub stopped_by: Option<i32>,
}

impl TrainingExit {
    /// A job that the user stopped, whatever the container managed to do before.
    fn stopped(signal: i32) -> TrainingExit {
        TrainingExit {
            success: false,
            description: format!("stopped by {}", signal_name(signal)),
            stopped_by: Some(signal),
        }
    }
}

/// Checks, before the tree is laid out, that the container can be run at all: for an image,
/// that a Docker engine answers and has the image (nothing is pulled). A library was already
/// checked to exist.
pub fn check_runnable(image: &TrainingImage) -> anyhow::Result<()> {
    match image {
        TrainingImage::Library(_) => Ok(()),
        TrainingImage::Docker(reference) => engine::check(reference),
    }
}

/// Runs the training container of `job` on the tree rooted at `base` (what the container sees as
/// `/opt/ml`) and waits for it. When `stop` is set (Ctrl-C, SIGTERM) the container is stopped and
/// removed, and the exit says so.
pub fn run_training_container(base: &Path, job: &TrainingJob, stop: &Stop) -> anyhow::Result<TrainingExit> {
    match &job.image {
        TrainingImage::Library(library) => process::run(library, base, job, stop),
        TrainingImage::Docker(reference) => engine::run(reference, base, job, stop),
    }
}
