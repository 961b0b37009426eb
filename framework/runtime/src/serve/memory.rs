//! The allocator's settings for the processes that serve HTTP: large
//! buffers reused while requests come, given back once they stop.
//!
//! The `modelstage` binary links jemalloc as its allocator and exports it as
//! the process's `malloc`, so the stage libraries a worker loads allocate
//! from it too. A large request costs several buffers of its size on each
//! side of a lane (body, frame, the stage's output); memory that is returned
//! to the system at each free must be faulted in and zeroed again by the
//! next request. Measured on the featurizer's 10,000-row requests (434 KB in,
//! 1.5 MB out), page faults and unmapping were 40% of all the CPU time of
//! server and workers with glibc's allocator and an mmap threshold fixed at
//! 256 KiB (`docs/benchmarks.md`).
//!
//! So freed pages are kept for reuse, but only for a second
//! (`dirty_decay_ms:1000`, then returned at once: `muzzy_decay_ms:0`), and a
//! background thread returns them when the process is idle
//! (`background_thread:true`): a burst of the largest requests leaves the
//! server holding their memory for about a second, not until the next
//! request.
//!
//! jemalloc reads its settings from `MALLOC_CONF` when the process starts,
//! so a process that serves HTTP starts itself again with it, at once,
//! before it has threads, sockets or children ([`configure_allocator`]).
//! The variable is inherited: the worker processes and the containers'
//! servers of a local endpoint get the same settings, and do not start
//! themselves again. A `MALLOC_CONF` already set is left as it is.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// The variable jemalloc reads its settings from.
const VARIABLE: &str = "MALLOC_CONF";

/// Freed pages are reused for a second, then given back, by a background
/// thread when nothing else allocates.
const SETTINGS: &str = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0";

/// Starts this program again, same process, same arguments, with the
/// allocator's settings, unless the environment already holds some. Call it
/// first thing in a command that serves HTTP. Returns only when nothing was
/// to be done or the program could not be started again (then freed memory
/// is given back on jemalloc's default schedule, which the caller logs once
/// its logger exists, so the reason is returned).
pub fn configure_allocator() -> Option<String> {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) || std::env::var_os(VARIABLE).is_some() {
        return None;
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            return Some(format!(
                "cannot find this program to configure its allocator: {e}"
            ))
        }
    };
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| OsString::from("modelstage"));
    // `exec` replaces this process (same pid, so a supervisor or `docker stop` sees no change);
    // it returns only on failure.
    let error = Command::new(exe)
        .arg0(arg0)
        .args(args)
        .env(VARIABLE, SETTINGS)
        .exec();
    Some(format!(
        "cannot start again with the allocator's settings ({error}): freed memory is given back later"
    ))
}
