//! The files that tell SageMaker how training ended: `output/failure` (its first 1024 characters
//! become the job's FailureReason) and the toolkit's empty `output/success`.

use std::io::Write;
use std::path::Path;

/// How many characters of the failure file SageMaker shows as FailureReason.
pub const FAILURE_REASON_CHARS: usize = 1024;

/// Writes `reason` to the failure file unless it already exists: a reason the training code wrote
/// itself wins, as in sagemaker-training-toolkit.
pub(crate) fn write_failure(path: &Path, reason: &str) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .and_then(|mut f| f.write_all(reason.as_bytes()));
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            log::info!(
                "{} already exists; keeping the reason the training code wrote",
                path.display()
            )
        }
        Err(e) => log::error!("cannot write {}: {e}", path.display()),
    }
}

/// Writes the empty success file.
pub(crate) fn write_success(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, b"")
}

/// Removes a success or failure file left by an earlier run in the same tree, so that the files
/// describe this run only.
pub(crate) fn clear_stale(path: &Path) {
    if path.exists() {
        log::warn!("removing {} left by an earlier run", path.display());
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_reason_wins() {
        let dir = std::env::temp_dir().join(format!("modelstage-outcome-{}", std::process::id()));
        let path = dir.join("output/failure");
        write_failure(&path, "written by the stage");
        write_failure(&path, "written by the runtime");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "written by the stage");
        clear_stale(&path);
        assert!(!path.exists());
        write_success(&dir.join("output/success")).unwrap();
        assert_eq!(std::fs::read(dir.join("output/success")).unwrap(), b"");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
