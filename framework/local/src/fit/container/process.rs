//! The training container as a child process: `modelstage train --stage LIB` with
//! `SAGEMAKER_BASE_DIR` pointing at the tree, in a clean SageMaker environment.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use rustix::process::{kill_process, Pid, Signal};
use signal_hook::consts::SIGINT;

use super::TrainingExit;
use crate::fit::request::TrainingJob;
use crate::fit::stop::Stop;

/// How often the child is polled; the cost of a poll is one `waitpid`.
const POLL: Duration = Duration::from_millis(20);

pub fn run(library: &Path, base: &Path, job: &TrainingJob, stop: &Stop) -> anyhow::Result<TrainingExit> {
    let exe = std::env::current_exe().context("cannot find the modelstage binary to run `train`")?;
    let mut command = Command::new(exe);
    command
        .arg("train")
        .arg("--stage")
        .arg(library)
        .stdin(Stdio::null())
        // The container's log goes to our standard error, as a Docker training container's does,
        // so that our standard output carries only results (`check --format json` relies on it).
        .stdout(Stdio::from(std::io::stderr()))
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

    // `train` stops itself on SIGINT or SIGTERM, writing why into output/failure. A Ctrl-C in a
    // terminal reaches it directly (same process group); a signal sent to `fit` alone is passed on.
    let mut forwarded = false;
    let status = loop {
        if let Some(status) = child.try_wait().context("cannot wait for `modelstage train`")? {
            break status;
        }
        if let (Some(signal), false) = (stop.signal(), forwarded) {
            let signal = if signal == SIGINT {
                Signal::INT
            } else {
                Signal::TERM
            };
            // It may have exited since the poll; then there is nothing to stop.
            let _ = kill_process(Pid::from_child(&child), signal);
            forwarded = true;
        }
        std::thread::sleep(POLL);
    };
    Ok(match stop.signal() {
        Some(signal) if !status.success() => TrainingExit::stopped(signal),
        _ => TrainingExit {
            success: status.success(),
            description: status.to_string(),
            stopped_by: None,
        },
    })
}
