//! The bound on open connections, with room kept so that `/ping` answers.
//!
//! Every connection costs the server process a file descriptor. Past the
//! open-file limit the listener cannot accept at all, and `/ping` times out
//! like everything else. So at start the server raises its soft limit to the
//! hard one, keeps descriptors back for its lanes and replacement workers,
//! and caps connections below what is left (`MODELSTAGE_MAX_CONNECTIONS`).
//! The last few connections under the cap are kept for `/ping`: a request
//! to `/invocations` that arrives while they are in use gets 503 and its
//! connection is closed, so slow clients can never take them all.

use std::sync::atomic::{AtomicUsize, Ordering};

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// Descriptors the server keeps back beside connections: standard streams,
/// the listener, each HTTP thread's event loop, signal handling, and room for
/// a replacement worker's channels while the old one's are still open.
const FIXED_RESERVE: usize = 32;

/// The connection limits in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Connections the server accepts in all (actix-web's limit is this over
    /// the HTTP threads).
    pub total: usize,
    /// Connections past which `/invocations` is refused: the rest are kept
    /// for `/ping`.
    pub invocations: usize,
}

impl Budget {
    /// The budget for `wanted` connections under an open-file limit of
    /// `open_files`, when the server holds `lanes` channels to its workers.
    pub fn new(wanted: usize, open_files: u64, lanes: usize) -> Budget {
        let reserve = FIXED_RESERVE + 2 * lanes;
        let fit = usize::try_from(open_files)
            .unwrap_or(usize::MAX)
            .saturating_sub(reserve);
        let total = wanted.min(fit).max(2);
        let for_ping = (total / 16).clamp(1, 64);
        Budget {
            total,
            invocations: total - for_ping,
        }
    }

    /// actix-web's per-thread connection limit.
    pub fn per_thread(&self, http_threads: usize) -> usize {
        self.total.div_ceil(http_threads.max(1))
    }
}

/// Raises the soft open-file limit to the hard one and returns the limit in
/// force (`u64::MAX` when unlimited).
pub fn raise_open_file_limit() -> u64 {
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            log::warn!("cannot raise the open-file limit to its hard limit: {e}");
        }
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

static OPEN: AtomicUsize = AtomicUsize::new(0);

/// Counts one open connection for as long as it lives: actix-web keeps it
/// in the connection's data (`HttpServer::on_connect`) and drops it with
/// the connection.
pub struct Counted(());

impl Counted {
    /// Counts a connection that just opened.
    pub fn new() -> Counted {
        OPEN.fetch_add(1, Ordering::Relaxed);
        Counted(())
    }
}

impl Default for Counted {
    fn default() -> Self {
        Counted::new()
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Connections open now.
pub fn open() -> usize {
    OPEN.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_keeps_descriptors_and_room_for_ping() {
        let b = Budget::new(1024, 1_048_576, 8);
        assert_eq!(b.total, 1024);
        assert_eq!(b.invocations, 1024 - 64);
        // Under a low open-file limit the cap comes down below it.
        let b = Budget::new(1024, 1024, 4);
        assert_eq!(b.total, 1024 - 32 - 8);
        assert!(b.invocations < b.total);
        assert_eq!(b.per_thread(2), b.total.div_ceil(2));
        // Never nothing at all.
        let b = Budget::new(1024, 10, 4);
        assert_eq!((b.total, b.invocations), (2, 1));
    }

    #[test]
    fn connections_are_counted_while_they_live() {
        let before = open();
        let a = Counted::new();
        let b = Counted::new();
        assert_eq!(open(), before + 2);
        drop((a, b));
        assert_eq!(open(), before);
    }
}
