//! Stopping a training job. SageMaker stops a job (StopTrainingJob, MaxRuntimeInSeconds) with
//! `SIGTERM` and kills it 120 s later. The training hook runs on the main thread and cannot be
//! interrupted safely, so a watcher thread records why the job stopped in the failure file and
//! ends the process with the conventional `128 + signal` exit code.

use std::path::PathBuf;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use super::outcome::write_failure;

/// Starts the watcher. Failing to install it only costs the failure message, so it is logged.
pub(crate) fn watch(failure_file: PathBuf) {
    let mut signals = match Signals::new([SIGTERM, SIGINT]) {
        Ok(signals) => signals,
        Err(e) => {
            log::warn!("cannot watch for SIGTERM ({e}); a stopped job will have no failure message");
            return;
        }
    };
    let spawned = std::thread::Builder::new()
        .name("train-signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                let name = if signal == SIGTERM { "SIGTERM" } else { "SIGINT" };
                let reason =
                    format!("Training was stopped: the container received {name} before training finished");
                log::error!("{reason}");
                write_failure(&failure_file, &reason);
                // The one exit outside `main`, on purpose: the training hook holds the main
                // thread in stage code that cannot be interrupted or told to return, and
                // SageMaker expects the process to end on SIGTERM (else it kills it 120 s
                // later, with no exit code of ours). Nothing is left to unwind: the failure
                // file is written, and the hook's half-written model is not a result.
                std::process::exit(128 + signal);
            }
        });
    if let Err(e) = spawned {
        log::warn!("cannot start the signal watcher ({e}); a stopped job will have no failure message");
    }
}
