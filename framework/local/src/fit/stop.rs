//! Stopping a local training job with Ctrl-C or SIGTERM, as StopTrainingJob stops one: `fit`
//! notes the signal instead of dying with it, so that it can stop the training container, remove
//! it and the temporary tree, and then exit with the conventional `128 + signal`. A second signal
//! ends `fit` at once (the cleanup watchdog of a Docker session still removes its containers).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::Context;
use signal_hook::consts::{SIGINT, SIGTERM};

/// The signals that stop a job.
const SIGNALS: [i32; 2] = [SIGINT, SIGTERM];

/// Whether, and by which signal, the job was asked to stop. Cheap to clone and to poll.
#[derive(Debug, Clone, Default)]
pub struct Stop {
    signal: Arc<AtomicUsize>,
}

impl Stop {
    /// A flag no signal sets (for tests, and for callers that handle signals themselves).
    pub fn never() -> Stop {
        Stop::default()
    }

    /// A flag set by SIGINT or SIGTERM from now on; a second one exits with status 1.
    pub fn on_signals() -> anyhow::Result<Stop> {
        let stop = Stop::default();
        let seen = Arc::new(AtomicBool::new(false));
        for signal in SIGNALS {
            // Registered first, so it sees `seen` as it was before this signal: only a repeat exits.
            signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&seen))
                .context("cannot watch for Ctrl-C and SIGTERM")?;
            signal_hook::flag::register(signal, Arc::clone(&seen))
                .context("cannot watch for Ctrl-C and SIGTERM")?;
            signal_hook::flag::register_usize(signal, Arc::clone(&stop.signal), signal as usize)
                .context("cannot watch for Ctrl-C and SIGTERM")?;
        }
        Ok(stop)
    }

    /// The signal that asked the job to stop, if one did.
    pub fn signal(&self) -> Option<i32> {
        match self.signal.load(Ordering::SeqCst) {
            0 => None,
            n => i32::try_from(n).ok(),
        }
    }

    pub fn requested(&self) -> bool {
        self.signal().is_some()
    }

    /// Records a stop request as a signal would: tests stop a job without signals with it,
    /// `check` stops a training run that is past its time limit, and StopTrainingJob of
    /// `modelstage api` stops a job with it.
    pub fn request(&self, signal: i32) {
        self.signal.store(signal as usize, Ordering::SeqCst);
    }
}

/// `SIGINT` or `SIGTERM`, for messages.
pub fn signal_name(signal: i32) -> String {
    match signal {
        SIGINT => "SIGINT".to_string(),
        SIGTERM => "SIGTERM".to_string(),
        other => format!("signal {other}"),
    }
}
