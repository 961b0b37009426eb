//! File access for stages whose errors name the file.
//!
//! `std::fs::read(dir.join("weights"))?` in `model_fn` fails with
//! `No such file or directory (os error 2)`: the path is lost on the way to
//! the client and the log. These functions do what their `std::fs` namesakes
//! do, and their errors say what was done to which file:
//! `reading /opt/ml/model/weights: No such file or directory (os error 2)`.
//! They return `std::io::Result`, so the error keeps its
//! [`std::io::ErrorKind`] and converts into a [`StageError`](crate::StageError)
//! with `?`.
//!
//! ```no_run
//! use std::path::Path;
//! use modelstage_sdk::StageError;
//!
//! fn load_weights(model_dir: &Path) -> Result<Vec<u8>, StageError> {
//!     Ok(modelstage_sdk::fs::read(model_dir.join("weights"))?)
//! }
//! ```

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// What was being done to which file, and what the system said.
#[derive(Debug)]
struct FileError {
    action: &'static str,
    path: PathBuf,
    source: io::Error,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.action, self.path.display(), self.source)
    }
}

impl std::error::Error for FileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Runs `op` on `path`; an error keeps its kind and gains the action and the path.
fn with_path<T>(action: &'static str, path: &Path, op: impl FnOnce(&Path) -> io::Result<T>) -> io::Result<T> {
    op(path).map_err(|source| {
        io::Error::new(
            source.kind(),
            FileError {
                action,
                path: path.to_path_buf(),
                source,
            },
        )
    })
}

/// [`std::fs::read`], with the path in the error.
pub fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    with_path("reading", path.as_ref(), |p| std::fs::read(p))
}

/// [`std::fs::read_to_string`], with the path in the error.
pub fn read_to_string(path: impl AsRef<Path>) -> io::Result<String> {
    with_path("reading", path.as_ref(), |p| std::fs::read_to_string(p))
}

/// [`std::fs::File::open`], with the path in the error. Errors of later reads
/// from the file do not carry it; read whole files with [`read`] where you can.
pub fn open(path: impl AsRef<Path>) -> io::Result<std::fs::File> {
    with_path("opening", path.as_ref(), |p| std::fs::File::open(p))
}

/// [`std::fs::write`], with the path in the error.
pub fn write(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> io::Result<()> {
    with_path("writing", path.as_ref(), |p| std::fs::write(p, contents))
}

/// [`std::fs::create_dir_all`], with the path in the error.
pub fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    with_path("creating the directory", path.as_ref(), |p| {
        std::fs::create_dir_all(p)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StageError;

    #[test]
    fn a_missing_file_is_named_and_keeps_its_kind() {
        let dir = std::env::temp_dir().join(format!("modelstage-sdk-fs-{}", std::process::id()));
        let path = dir.join("weights");
        let err = read(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("reading {}: ", path.display())),
            "{text}"
        );
        assert!(text.contains("os error 2"), "{text}");

        // Through `?` into a StageError, the path survives.
        let stage: StageError = read_to_string(&path).unwrap_err().into();
        assert!(
            stage.message.contains(&path.display().to_string()),
            "{}",
            stage.message
        );
        assert!(open(&path).unwrap_err().to_string().starts_with("opening "));
    }

    #[test]
    fn writes_and_reads_back() {
        let dir = std::env::temp_dir().join(format!("modelstage-sdk-fs-rw-{}", std::process::id()));
        create_dir_all(dir.join("sub")).unwrap();
        let path = dir.join("sub/model.json");
        write(&path, b"{}").unwrap();
        assert_eq!(read_to_string(&path).unwrap(), "{}");
        assert_eq!(read(&path).unwrap(), b"{}");
        // Writing into a directory that is a file names the target.
        let err = write(path.join("nested"), b"x").unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("writing {}: ", path.join("nested").display())),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
