//! The server's handle on one running worker process: its lanes not yet
//! taken by an HTTP thread, the requests it holds, and how it ended. The
//! pool starts and replaces these; lanes and the board send requests to
//! them.

use std::os::unix::net::UnixStream;
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a lane waits, after its worker's socket closed, to learn from
/// the worker's slot how the process ended.
pub(super) const EXIT_WAIT: Duration = Duration::from_secs(2);

/// One running worker process.
pub struct WorkerProcess {
    /// Unique per started process: names its lanes.
    pub id: u64,
    pub pid: u32,
    pub stage_label: String,
    /// Its request threads: its credits.
    pub(super) threads: usize,
    /// Lanes not yet taken by an HTTP thread.
    pub(super) lanes: Mutex<Vec<UnixStream>>,
    /// Requests sent to it that are still awaited.
    pub(super) inflight: AtomicUsize,
    pub(super) retiring: AtomicBool,
    /// How the process ended, once it has.
    pub(super) exit: Mutex<Option<String>>,
    pub(super) child: Mutex<Child>,
    /// Tells its slot's lifecycle thread that it was retired.
    pub(super) events: mpsc::Sender<SlotEvent>,
    /// Its model loads and unloads, in a multi-model endpoint.
    pub models: super::mme::Control,
}

impl WorkerProcess {
    pub fn kill(&self) {
        if let Ok(mut child) = self.child.lock() {
            let _ = child.kill();
        }
    }

    pub fn take_lane(&self) -> Option<UnixStream> {
        let lane = self.lanes.lock().ok()?.pop();
        if lane.is_none() {
            log::error!("worker {} has no lane left for another HTTP thread", self.pid);
        }
        lane
    }

    pub fn request_sent(&self) {
        self.inflight.fetch_add(1, Ordering::Relaxed);
    }

    /// One of its requests is no longer awaited.
    pub fn request_done(&self) {
        let left = self.inflight.fetch_sub(1, Ordering::Relaxed) - 1;
        if left == 0 && self.retiring.load(Ordering::Relaxed) {
            self.kill();
        }
    }

    /// How the process ended ("was killed by signal 6 (SIGABRT)"), waiting
    /// briefly for its slot to learn it.
    pub async fn exit_description(&self) -> String {
        let started = Instant::now();
        while started.elapsed() < EXIT_WAIT {
            if let Some(how) = self.exit.lock().ok().and_then(|e| e.clone()) {
                return how;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        "stopped answering".to_string()
    }
}

/// What a slot's lifecycle thread hears about the workers it started.
pub(super) enum SlotEvent {
    /// The process ended.
    Ended(u64),
    /// A request on it passed its deadline: start its replacement now.
    Retired(u64),
}
