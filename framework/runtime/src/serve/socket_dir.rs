//! The private directory of the socket the workers connect back to:
//! `$TMPDIR/modelstage-<pid>-<nanos>`, mode 0700, created fresh (creation
//! fails if the name is taken, so nobody can prepare it for the server).
//!
//! A server that ends normally removes its directory; one killed by SIGKILL
//! cannot. So each new server sweeps the directories of servers that are
//! gone: same owner, a pid with no process, nothing inside but the socket.
//! A directory whose pid is alive (or was reused) is left alone.

use std::fs::DirBuilder;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

const PREFIX: &str = "modelstage-";
/// The one file a socket directory holds.
pub(super) const SOCKET: &str = "workers.sock";

/// Creates this server's directory, then sweeps those of dead servers.
pub(super) fn create() -> std::io::Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let base = std::env::temp_dir();
    let dir = base.join(format!("{PREFIX}{}-{nanos}", std::process::id()));
    DirBuilder::new().mode(0o700).create(&dir)?;
    let owner = std::fs::metadata(&dir)?.uid();
    sweep(&base, owner, &dir);
    Ok(dir)
}

/// Removes the directories under `base` left by dead servers of `owner`.
/// Failures are logged and skipped: sweeping is housekeeping.
fn sweep(base: &Path, owner: u32, ours: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path == ours || !left_by_dead_server(&path, owner) {
            continue;
        }
        match std::fs::remove_file(path.join(SOCKET)).and_then(|()| std::fs::remove_dir(&path)) {
            Ok(()) => log::debug!("removed {}, left by a server that is gone", path.display()),
            Err(e) => log::debug!("could not remove {}: {e}", path.display()),
        }
    }
}

/// Whether `path` is a socket directory of `owner` whose server is gone.
fn left_by_dead_server(path: &Path, owner: u32) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let Some(pid) = name
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.split_once('-'))
        .and_then(|(pid, nanos)| nanos.parse::<u32>().ok().and(pid.parse::<u32>().ok()))
    else {
        return false;
    };
    // symlink_metadata: a link named like a socket directory is not one.
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    if !meta.is_dir() || meta.uid() != owner || Path::new(&format!("/proc/{pid}")).exists() {
        return false;
    }
    // Nothing but the socket: never remove what something else put there.
    match std::fs::read_dir(path) {
        Ok(inside) => inside
            .flatten()
            .all(|e| e.file_name() == SOCKET && e.file_type().is_ok_and(|t| !t.is_dir())),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dead_servers_directories_are_swept() {
        let base = tempfile::tempdir().unwrap();
        let owner = std::fs::metadata(base.path()).unwrap().uid();
        // No process has pid 4,000,000,000 (above the kernel's pid limit).
        let dead = base.path().join("modelstage-4000000000-12");
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join(SOCKET), b"").unwrap();
        let alive = base.path().join(format!("modelstage-{}-13", std::process::id()));
        std::fs::create_dir(&alive).unwrap();
        let holds_more = base.path().join("modelstage-4000000001-14");
        std::fs::create_dir(&holds_more).unwrap();
        std::fs::write(holds_more.join("notes.txt"), b"keep").unwrap();
        let other_name = base.path().join("modelstage-cache");
        std::fs::create_dir(&other_name).unwrap();
        let ours = base.path().join("modelstage-4000000002-15");
        std::fs::create_dir(&ours).unwrap();

        sweep(base.path(), owner, &ours);

        assert!(!dead.exists(), "a dead server's directory stays");
        assert!(alive.exists() && holds_more.exists() && other_name.exists() && ours.exists());
        // Another owner's directory is never touched.
        let dead_again = base.path().join("modelstage-4000000003-16");
        std::fs::create_dir(&dead_again).unwrap();
        sweep(base.path(), owner.wrapping_add(1), &ours);
        assert!(dead_again.exists());
    }
}
