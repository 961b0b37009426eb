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

/// Allocations from this size up are mapped on their own and unmapped on
/// free. Small enough for a request body, large enough that the per-request
/// buffers of ordinary traffic (64 KiB) stay on the heap.
const MMAP_THRESHOLD: i32 = 256 * 1024;

/// Makes the allocator of this process give large blocks back as soon as
/// they are freed. Does nothing where the C library is not glibc.
pub fn give_back_large_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `mallopt` only changes a parameter of glibc's allocator; it
        // is safe to call at any time from any thread, and takes no pointers.
        let accepted = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) };
        if accepted == 0 {
            log::warn!("the allocator refused a fixed mmap threshold: large requests may keep their memory");
        }
    }
}
