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
//! An output file is written under a temporary name and renamed when the
//! whole input file succeeded, so a failed file leaves no `.out`.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

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
    pub fn create(final_path: &Path) -> Result<OutputFile, String> {
        let parent = final_path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        let name = final_path.file_name().unwrap_or_default().to_string_lossy();
        let temp_path = parent.join(format!(".{name}.partial-{}", std::process::id()));
        let file =
            File::create(&temp_path).map_err(|e| format!("cannot create {}: {e}", temp_path.display()))?;
        Ok(OutputFile {
            final_path: final_path.to_path_buf(),
            temp_path,
            writer: Some(BufWriter::with_capacity(1 << 20, file)),
        })
    }

    pub fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        let writer = self.writer.as_mut().ok_or("the output file is already closed")?;
        writer
            .write_all(bytes)
            .map_err(|e| format!("cannot write {}: {e}", self.temp_path.display()))
    }

    /// Publishes the file under its final name.
    pub fn commit(mut self) -> Result<(), String> {
        let writer = self.writer.take().ok_or("the output file is already closed")?;
        let file = writer
            .into_inner()
            .map_err(|e| format!("cannot write {}: {}", self.temp_path.display(), e.error()))?;
        file.sync_all()
            .map_err(|e| format!("cannot write {}: {e}", self.temp_path.display()))?;
        fs::rename(&self.temp_path, &self.final_path)
            .map_err(|e| format!("cannot rename to {}: {e}", self.final_path.display()))
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
}
