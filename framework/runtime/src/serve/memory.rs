//! Giving back the memory of large requests.
//!
//! glibc serves an allocation of 128 KiB or more with its own `mmap` and
//! unmaps it on free, but each time such a block is freed it raises that
//! threshold to the block's size (up to 32 MiB). After the first large body,
//! every later one comes from the heap, and a burst of them leaves the
//! server holding the memory of its largest requests: measured, 267 MB
//! resident after 64 requests of 6 MB against 7 MB idle. A fixed threshold
//! keeps large buffers mapped on their own, so they return to the system
//! the moment they are freed (13 MB after the same burst).
//!
//! glibc fixes the threshold when it finds `MALLOC_MMAP_THRESHOLD_` in the
//! environment at start-up, so a process that serves HTTP starts itself
//! again with it, at once, before it has threads, sockets or children
//! ([`fix_mmap_threshold`]). The variable is inherited: the worker
//! processes and the containers' servers of a local endpoint get the same
//! threshold, and do not start themselves again. (Setting it from inside
//! the running process would take a call into the C library.)

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// The variable glibc reads the threshold from.
const VARIABLE: &str = "MALLOC_MMAP_THRESHOLD_";

/// Allocations from this size up are mapped on their own and unmapped on
/// free. Small enough for a request body, large enough that the per-request
/// buffers of ordinary traffic (64 KiB) stay on the heap.
const MMAP_THRESHOLD: &str = "262144";

/// Starts this program again, same process, same arguments, with a fixed
/// mmap threshold, unless the environment already fixes one. Call it first
/// thing in a command that serves HTTP. Returns only when nothing was to be
/// done or the program could not be started again (then large requests may
/// keep their memory, which is logged by the caller's logger once it exists,
/// so the reason is returned).
pub fn fix_mmap_threshold() -> Option<String> {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) || std::env::var_os(VARIABLE).is_some() {
        return None;
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            return Some(format!(
                "cannot find this program to fix the allocator's mmap threshold: {e}"
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
        .env(VARIABLE, MMAP_THRESHOLD)
        .exec();
    Some(format!(
        "cannot start again with a fixed mmap threshold ({error}): large requests may keep their memory"
    ))
}
