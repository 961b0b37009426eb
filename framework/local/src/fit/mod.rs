//! `modelstage fit`: a local CreateTrainingJob.
//!
//! Takes a CreateTrainingJob request (`--request job.json`) and/or flags, lays out a fresh
//! `/opt/ml` tree in a temporary folder ([`tree`]), runs the training container on it
//! ([`container`]: a `modelstage train` process for a stage library, `docker run IMAGE train` for a
//! Docker image, see [`image`]), and packs the results where SageMaker puts them:
//! `<S3OutputPath>/<TrainingJobName>/output/model.tar.gz`, plus `output.tar.gz` when
//! `output/data` is not empty. A failed job prints its FailureReason and exits non-zero; Ctrl-C or
//! SIGTERM stops the job ([`stop`]), removes its container and tree, and exits with 128 + signal.

mod container;
mod image;
mod job_name;
mod request;
pub(crate) mod stop;
mod tree;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::tarball::pack_dir;
use crate::CommandError;

pub use container::{check_runnable, run_training_container, TrainingExit};
pub use image::TrainingImage;
pub use request::{Channel, JobSpec, TrainingJob};
pub use stop::Stop;
pub use tree::{prepare, PreparedTree};

/// How many characters of `output/failure` SageMaker shows as FailureReason.
const FAILURE_REASON_CHARS: usize = 1024;

/// `modelstage fit`.
#[derive(clap::Args, Debug, Default)]
pub struct FitArgs {
    /// A CreateTrainingJob request document (JSON); the flags below override or add to it.
    #[arg(long, value_name = "JOB.json")]
    pub request: Option<PathBuf>,
    /// What to train (plays AlgorithmSpecification.TrainingImage): a stage library (an existing
    /// .so file), run as a `modelstage train` process, or a Docker image on this machine (e.g.
    /// modelstage/featurizer:latest), run as `docker run IMAGE train` with the job's /opt/ml tree
    /// mounted. A bare name that is not a file is an image if Docker has one by that name.
    #[arg(long, value_name = "LIB|IMAGE")]
    pub stage: Option<String>,
    /// A data channel: a file or a folder, as a path or a file:// URI. Repeatable.
    #[arg(long = "channel", value_name = "NAME=PATH")]
    pub channels: Vec<String>,
    /// The ContentType of a channel, as inputdataconfig.json reports it. Repeatable.
    #[arg(long = "content-type", value_name = "CHANNEL=TYPE")]
    pub content_types: Vec<String>,
    /// A hyperparameter, passed as a string as SageMaker passes it. Repeatable.
    #[arg(long = "hyperparameter", value_name = "KEY=VALUE")]
    pub hyperparameters: Vec<String>,
    /// Where the job's artifacts go (plays OutputDataConfig.S3OutputPath): a folder or file:// URI.
    #[arg(long, value_name = "DIR")]
    pub output_path: Option<String>,
    /// The training job name (plays TrainingJobName); default: <stage or image name>-<UTC timestamp>.
    #[arg(long, value_name = "NAME")]
    pub job_name: Option<String>,
    /// Keep the temporary /opt/ml tree after the job, and print where it is.
    #[arg(long)]
    pub keep_tree: bool,
}

/// How `fit` exits once the job ran (see [`JobEnd`] for how the job itself ended).
#[derive(Debug, Clone, PartialEq, Eq)]
enum FitExit {
    Completed,
    /// Failed; the message says why.
    Failed(String),
    /// Stopped by `signal` before it finished.
    Stopped {
        signal: i32,
        message: String,
    },
}

/// Runs one local training job; the error says why it did not complete.
pub fn run(args: FitArgs) -> Result<(), CommandError> {
    let stop = Stop::on_signals().map_err(|e| CommandError::failed("fit", e))?;
    match fit(&args, &stop) {
        Ok(FitExit::Completed) => Ok(()),
        Ok(FitExit::Failed(message)) => Err(CommandError::JobFailed(message)),
        Ok(FitExit::Stopped { signal, message }) => Err(CommandError::Stopped { signal, message }),
        // A Ctrl-C also ends the `docker` commands and copies under way, which then fail; the
        // stop is the news, not their errors.
        Err(_) if stop.requested() => {
            let signal = stop.signal().unwrap_or(signal_hook::consts::SIGINT);
            Err(CommandError::Stopped {
                signal,
                message: format!(
                    "Training job stopped by {} before it finished",
                    stop::signal_name(signal)
                ),
            })
        }
        Err(e) => Err(CommandError::failed("fit", e)),
    }
}

fn fit(args: &FitArgs, stop: &Stop) -> anyhow::Result<FitExit> {
    let mut spec = match &args.request {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            JobSpec::from_request(&text, &path.display().to_string())?
        }
        None => JobSpec::default(),
    };
    spec.apply_flags(args)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let job = spec.finish(now)?;

    let output_dir = check_new_output(&job)?;
    // Before copying the data: a missing engine or image should not cost a copy of the channels.
    check_runnable(&job.image)?;

    log::info!("Training job {}: {}", job.name, job.image);
    let tree = prepare(&job, stop)?;
    let outcome = match run_in_tree(tree.base(), &job, &output_dir, stop, &mut |_| {})? {
        JobEnd::Completed { model, output } => {
            println!("Model artifacts: {}", model.display());
            if let Some(output) = output {
                println!("Output data: {}", output.display());
            }
            print_next_steps(&job.image, &model);
            FitExit::Completed
        }
        JobEnd::Failed(reason) => FitExit::Failed(format!("Training job {} failed: {reason}", job.name)),
        JobEnd::Stopped { signal, reason } => FitExit::Stopped {
            signal,
            message: format!("Training job {} stopped: {reason}", job.name),
        },
    };
    if args.keep_tree {
        println!("Training tree kept at {}", tree.keep().display());
    } else if let Err(e) = tree.remove() {
        log::warn!("{e:#}");
    }
    Ok(outcome)
}

/// How a training job that ran ended, for a library caller ([`run_in_tree`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEnd {
    /// `model.tar.gz`, and `output.tar.gz` when `output/data` was not empty.
    Completed { model: PathBuf, output: Option<PathBuf> },
    /// The FailureReason.
    Failed(String),
    /// Stopped by `signal`; the container's own reason when it wrote one.
    Stopped { signal: i32, reason: String },
}

/// The job's output folder, `<S3OutputPath>/<TrainingJobName>/output`, which must not exist yet:
/// SageMaker refuses a second job with the same name; here that would overwrite its artifacts.
pub fn check_new_output(job: &TrainingJob) -> anyhow::Result<PathBuf> {
    let output_dir = job.output_path.join(&job.name).join("output");
    if output_dir.exists() {
        bail!(
            "the training job '{}' already has output in {}: choose another job name",
            job.name,
            output_dir.display()
        );
    }
    Ok(output_dir)
}

/// Runs the training container of `job` on its prepared tree rooted at `base` and packs what it
/// left into `output_dir`. `phase` hears `Training` when the container starts and `Uploading`
/// when its artifacts are packed (SageMaker's secondary statuses).
pub fn run_in_tree(
    base: &Path,
    job: &TrainingJob,
    output_dir: &Path,
    stop: &Stop,
    phase: &mut dyn FnMut(&'static str),
) -> anyhow::Result<JobEnd> {
    phase("Training");
    let exit = run_training_container(base, job, stop)?;
    if exit.success {
        phase("Uploading");
        let (model, output) = collect(base, output_dir)?;
        Ok(JobEnd::Completed { model, output })
    } else if let Some(signal) = exit.stopped_by {
        let reason = failure_reason(base)
            .unwrap_or_else(|| format!("stopped by {} before it finished", stop::signal_name(signal)));
        Ok(JobEnd::Stopped { signal, reason })
    } else {
        Ok(JobEnd::Failed(failure_reason(base).unwrap_or_else(|| {
            format!(
                "the training container ended ({}) without writing output/failure",
                exit.description
            )
        })))
    }
}

/// Packs `model/` (always) and `output/data/` (when not empty) into the job's output folder.
fn collect(base: &Path, output_dir: &Path) -> anyhow::Result<(PathBuf, Option<PathBuf>)> {
    let model = output_dir.join("model.tar.gz");
    pack_dir(&base.join("model"), &model)?;
    let data = base.join("output/data");
    let has_data = std::fs::read_dir(&data)
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false);
    if !has_data {
        return Ok((model, None));
    }
    let output = output_dir.join("output.tar.gz");
    pack_dir(&data, &output)?;
    Ok((model, Some(output)))
}

/// The commands that serve and deploy what the job produced.
fn print_next_steps(image: &TrainingImage, model: &Path) {
    let model = shell_word(&model.display().to_string());
    let stage = match image {
        TrainingImage::Library(path) => {
            let library = shell_word(&path.display().to_string());
            println!("Serve it:  modelstage serve --stage {library} --model-data {model}");
            library
        }
        TrainingImage::Docker(reference) => shell_word(reference),
    };
    println!("Deploy it: modelstage deploy --stage {stage} --model {model}");
}

/// `text` as one shell word: as it is when it has nothing the shell reads, else single-quoted.
fn shell_word(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-:=@+,%".contains(c));
    if plain {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// The FailureReason: the start of `output/failure`, when the container wrote one.
fn failure_reason(base: &Path) -> Option<String> {
    std::fs::read_to_string(base.join("output/failure"))
        .ok()
        .filter(|r| !r.trim().is_empty())
        .map(|r| r.chars().take(FAILURE_REASON_CHARS).collect())
}

#[cfg(test)]
mod tests;
