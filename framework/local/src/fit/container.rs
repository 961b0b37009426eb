//! Running the training container on a prepared tree. Today the container is a `modelstage train`
//! child process of this binary; a Docker runner will take the same tree and job.

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

use anyhow::Context;

use super::request::TrainingJob;

/// Runs `train` for `job` on the tree rooted at `base` (what the container sees as `/opt/ml`),
/// with its output and log going to ours, and waits for it.
pub fn run_training_container(base: &Path, job: &TrainingJob) -> anyhow::Result<ExitStatus> {
    let exe = std::env::current_exe().context("cannot find the modelstage binary to run `train`")?;
    let mut command = Command::new(exe);
    command
        .arg("train")
        .arg("--stage")
        .arg(&job.stage)
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    // A container starts with a clean environment: nothing of the SageMaker contract leaks in
    // from the shell that runs `fit`.
    for (name, _) in std::env::vars_os() {
        let name_text = name.to_string_lossy();
        if name_text.starts_with("SM_")
            || name_text.starts_with("SAGEMAKER_")
            || name_text == "MODELSTAGE_STAGE"
        {
            command.env_remove(&name);
        }
    }
    command
        .envs(&job.environment)
        .env("SAGEMAKER_BASE_DIR", base)
        .env("TRAINING_JOB_NAME", &job.name);
    let mut child = command.spawn().context("cannot start `modelstage train`")?;
    child.wait().context("cannot wait for `modelstage train`")
}
