//! `modelstage fit`: a local CreateTrainingJob.
//!
//! Takes a CreateTrainingJob request (`--request job.json`) and/or flags, lays out a fresh
//! `/opt/ml` tree in a temporary folder ([`tree`]), runs the training container on it
//! ([`container`]: a `modelstage train` process), and packs the results where SageMaker puts them:
//! `<S3OutputPath>/<TrainingJobName>/output/model.tar.gz`, plus `output.tar.gz` when
//! `output/data` is not empty. A failed job prints its FailureReason and exits non-zero.

mod container;
mod job_name;
mod request;
mod tree;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};

use crate::tarball::pack_dir;

pub use container::run_training_container;
pub use request::{Channel, JobSpec, TrainingJob};
pub use tree::{prepare, PreparedTree};

/// How many characters of `output/failure` SageMaker shows as FailureReason.
const FAILURE_REASON_CHARS: usize = 1024;

/// `modelstage fit`.
#[derive(clap::Args, Debug, Default)]
pub struct FitArgs {
    /// A CreateTrainingJob request document (JSON); the flags below override or add to it.
    #[arg(long, value_name = "JOB.json")]
    pub request: Option<PathBuf>,
    /// The stage library to train (plays AlgorithmSpecification.TrainingImage).
    #[arg(long, value_name = "LIB")]
    pub stage: Option<PathBuf>,
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
    /// The training job name (plays TrainingJobName); default: <stage>-<UTC timestamp>.
    #[arg(long, value_name = "NAME")]
    pub job_name: Option<String>,
    /// Keep the temporary /opt/ml tree after the job, and print where it is.
    #[arg(long)]
    pub keep_tree: bool,
}

/// Runs one local training job; the exit code says whether it completed.
pub fn run(args: FitArgs) -> ExitCode {
    match fit(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            log::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `Ok(false)` when the job ran and failed (its reason already printed).
fn fit(args: &FitArgs) -> anyhow::Result<bool> {
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

    // SageMaker refuses a second job with the same name; here that would overwrite its artifacts.
    let output_dir = job.output_path.join(&job.name).join("output");
    if output_dir.exists() {
        bail!(
            "the training job '{}' already has output in {}: choose another --job-name",
            job.name,
            output_dir.display()
        );
    }

    log::info!("Training job {}: stage {}", job.name, job.stage.display());
    let tree = prepare(&job)?;
    let status = run_training_container(tree.base(), &job)?;
    let outcome = if status.success() {
        collect(tree.base(), &output_dir).map(|()| true)
    } else {
        report_failure(tree.base(), &job.name, status);
        Ok(false)
    };
    if args.keep_tree {
        println!("Training tree kept at {}", tree.keep().display());
    }
    outcome
}

/// Packs `model/` (always) and `output/data/` (when not empty) into the job's output folder.
fn collect(base: &Path, output_dir: &Path) -> anyhow::Result<()> {
    let model = output_dir.join("model.tar.gz");
    pack_dir(&base.join("model"), &model)?;
    println!("Model artifacts: {}", model.display());
    let data = base.join("output/data");
    let has_data = std::fs::read_dir(&data)
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false);
    if has_data {
        let output = output_dir.join("output.tar.gz");
        pack_dir(&data, &output)?;
        println!("Output data: {}", output.display());
    }
    Ok(())
}

fn report_failure(base: &Path, job_name: &str, status: std::process::ExitStatus) {
    let reason = std::fs::read_to_string(base.join("output/failure"))
        .ok()
        .filter(|r| !r.trim().is_empty())
        .map(|r| r.chars().take(FAILURE_REASON_CHARS).collect::<String>())
        .unwrap_or_else(|| format!("the training container ended ({status}) without writing output/failure"));
    eprintln!("Training job {job_name} failed: {reason}");
}

#[cfg(test)]
mod tests;
