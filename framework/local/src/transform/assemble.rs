//! Output assembly. `AssembleWith=None` concatenates response bodies byte
//! for byte; `AssembleWith=Line` ends every response with a newline, adding
//! one only when the body does not already end with one.
//!
//! Why "only when": the service "adds a newline character at the end of every
//! transformed record" but does not say what happens when a MultiRecord
//! response already holds several newline-terminated lines (docs/contract.md (Batch transform)).
//! Adding one unconditionally (the SDK's local mode) leaves a blank line
//! after every mini-batch whose answer ends in `\n`, which breaks CSV and
//! JSON Lines readers; this rule gives one output line per record whether
//! the container ends its answer with a newline or not.
//!
//! An output file is written under a hidden temporary name
//! (`.<name>.partial-<pid>`) and renamed when the whole input file succeeded,
//! so a failed file leaves no `.out`. A job that is stopped removes its
//! temporary files; one that is killed cannot, so the next job to write the
//! same output removes the temporary files of writers no longer running
//! ([`remove_stale_partials`]).

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::error::TransformError;
use super::job::AssembleWith;

/// Appends one response to the output.
pub fn append_response(out: &mut Vec<u8>, response: &[u8], assemble: AssembleWith) {
    out.extend_from_slice(response);
    if assemble == AssembleWith::Line && response.last() != Some(&b'\n') {
        out.push(b'\n');
    }
}

/// An output file being written.
pub struct OutputFile {
    final_path: PathBuf,
    temp_path: PathBuf,
    writer: Option<BufWriter<File>>,
}

impl OutputFile {
    pub fn create(final_path: &Path) -> Result<OutputFile, TransformError> {
        let parent = final_path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(parent).map_err(|error| TransformError::CreateOutput {
            path: parent.to_path_buf(),
            error,
        })?;
        let temp_path = parent.join(format!("{}{}", partial_prefix(final_path), std::process::id()));
        let file = File::create(&temp_path).map_err(|error| TransformError::CreateOutput {
            path: temp_path.clone(),
            error,
        })?;
        Ok(OutputFile {
            final_path: final_path.to_path_buf(),
            temp_path,
            writer: Some(BufWriter::with_capacity(1 << 20, file)),
        })
    }

    pub fn write(&mut self, bytes: &[u8]) -> Result<(), TransformError> {
        let writer = self.writer.as_mut().ok_or(TransformError::OutputAlreadyClosed)?;
        writer
            .write_all(bytes)
            .map_err(|error| TransformError::WriteOutput {
                path: self.temp_path.clone(),
                error,
            })
    }

    /// Publishes the file under its final name.
    pub fn commit(mut self) -> Result<(), TransformError> {
        let writer = self.writer.take().ok_or(TransformError::OutputAlreadyClosed)?;
        let cannot_write = |error: std::io::Error| TransformError::WriteOutput {
            path: self.temp_path.clone(),
            error,
        };
        let file = writer.into_inner().map_err(|e| cannot_write(e.into_error()))?;
        file.sync_all().map_err(cannot_write)?;
        fs::rename(&self.temp_path, &self.final_path).map_err(|error| TransformError::RenameOutput {
            path: self.final_path.clone(),
            error,
        })
    }

    /// Drops the partial output, and any `.out` an earlier run left, so a
    /// failed input has no output.
    pub fn discard(mut self) {
        self.writer = None;
        let _ = fs::remove_file(&self.temp_path);
        let _ = fs::remove_file(&self.final_path);
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            let _ = fs::remove_file(&self.temp_path);
        }
    }
}

/// The temporary name of `final_path` without the writer's process id.
fn partial_prefix(final_path: &Path) -> String {
    let name = final_path.file_name().unwrap_or_default().to_string_lossy();
    format!(".{name}.partial-")
}

/// Removes the temporary files of `final_path` that no running process is
/// writing: what a killed job left. Returns how many it removed.
pub fn remove_stale_partials(final_path: &Path) -> usize {
    let parent = final_path.parent().unwrap_or(Path::new("."));
    let prefix = partial_prefix(final_path);
    let Ok(entries) = fs::read_dir(parent) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|entry| {
            let name = entry.file_name();
            let writer = name
                .to_str()
                .and_then(|n| n.strip_prefix(&prefix))
                .map(|pid| pid.parse::<i32>().ok());
            match writer {
                None => false,
                Some(Some(pid)) if pid != std::process::id() as i32 && is_running(pid) => false,
                Some(_) => fs::remove_file(entry.path()).is_ok(),
            }
        })
        .count()
}

/// Whether a process with this id exists (one of another user counts).
fn is_running(pid: i32) -> bool {
    match rustix::process::Pid::from_raw(pid) {
        Some(pid) => !matches!(
            rustix::process::test_kill_process(pid),
            Err(rustix::io::Errno::SRCH)
        ),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_adds_a_newline_only_where_missing() {
        let mut out = Vec::new();
        append_response(&mut out, b"1\n2", AssembleWith::Line);
        append_response(&mut out, b"3\n4\n", AssembleWith::Line);
        append_response(&mut out, b"", AssembleWith::Line);
        assert_eq!(out, b"1\n2\n3\n4\n\n");
    }

    #[test]
    fn none_concatenates_bytes() {
        let mut out = Vec::new();
        append_response(&mut out, b"ab", AssembleWith::None);
        append_response(&mut out, b"c\n", AssembleWith::None);
        assert_eq!(out, b"abc\n");
    }

    #[test]
    fn output_appears_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("sub/a.csv.out");
        let mut file = OutputFile::create(&target).unwrap();
        file.write(b"x\n").unwrap();
        assert!(!target.exists());
        file.commit().unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"x\n");
        let names: Vec<_> = fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temporary file is left: {names:?}");
    }

    #[test]
    fn discard_removes_partial_and_stale_output() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.out");
        fs::write(&target, b"old").unwrap();
        let mut file = OutputFile::create(&target).unwrap();
        file.write(b"partial").unwrap();
        file.discard();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn stale_partials_are_removed_but_not_a_running_writers() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.csv.out");
        // A process id that is not running: a child that has been waited for.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        let stale = dir.path().join(format!(".a.csv.out.partial-{gone}"));
        let garbled = dir.path().join(".a.csv.out.partial-x");
        // The parent of this test process is running.
        let live = dir.path().join(format!(
            ".a.csv.out.partial-{}",
            std::os::unix::process::parent_id()
        ));
        let other = dir.path().join(".b.csv.out.partial-1");
        for path in [&stale, &garbled, &live, &other] {
            fs::write(path, b"half").unwrap();
        }
        assert_eq!(remove_stale_partials(&target), 2);
        assert!(!stale.exists() && !garbled.exists());
        assert!(live.exists() && other.exists());
    }
}
