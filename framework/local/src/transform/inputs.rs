//! Which files a job reads and where each one's output goes. `S3Uri` is a
//! local path (`file://` or plain) read the way S3 reads a prefix: a file, a
//! folder (recursively, as an S3 prefix is), or a name prefix within a folder
//! (`data/part-` matches `data/part-1.csv` and `data/part-2/…`).
//! `ManifestFile` lists the files after a `{"prefix": …}` entry. Each output
//! is `<output dir>/<path relative to the input>.out`.

use std::fs;
use std::path::{Path, PathBuf};

use crate::api::safe_relative;

use super::error::TransformError;
use super::job::{S3DataType, TransformJob};

/// One input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    pub path: PathBuf,
    /// Its path relative to the input location; the output mirrors it.
    pub relative: PathBuf,
    pub size: u64,
}

/// A `file://` URI or plain path as a path. `s3://` cannot be reached locally.
pub fn local_path(uri: &str, field: &'static str) -> Result<PathBuf, TransformError> {
    let uri = uri.trim();
    if let Some(rest) = uri.strip_prefix("file://") {
        return Ok(PathBuf::from(rest));
    }
    if uri.starts_with("s3://") || uri.starts_with("https://") {
        return Err(TransformError::Remote {
            field,
            uri: uri.to_string(),
        });
    }
    Ok(PathBuf::from(uri))
}

/// The output file for an input.
pub fn output_path(output_dir: &Path, input: &InputFile) -> PathBuf {
    let mut name = input.relative.clone().into_os_string();
    name.push(".out");
    output_dir.join(name)
}

/// Lists the job's input files in a stable (sorted) order, leaving out
/// anything under `output_dir` so an output folder inside the input folder
/// is not read back in.
pub fn list_inputs(job: &TransformJob, output_dir: &Path) -> Result<Vec<InputFile>, TransformError> {
    let source = &job.transform_input.data_source.s3_data_source;
    let location = local_path(&source.s3_uri, "S3Uri")?;
    let skip = fs::canonicalize(output_dir).ok();
    let mut files = match source.s3_data_type.unwrap_or_default() {
        S3DataType::S3Prefix => list_prefix(&location, skip.as_deref())?,
        S3DataType::ManifestFile => list_manifest(&location)?,
        S3DataType::AugmentedManifestFile => return Err(TransformError::AugmentedManifest),
    };
    if files.is_empty() {
        return Err(TransformError::NoInputs(location));
    }
    files.sort_by(|a, b| a.relative.cmp(&b.relative));
    Ok(files)
}

fn list_prefix(location: &Path, skip: Option<&Path>) -> Result<Vec<InputFile>, TransformError> {
    let mut files = Vec::new();
    if location.is_file() {
        let name = location
            .file_name()
            .map(PathBuf::from)
            .unwrap_or_else(|| location.to_path_buf());
        push_file(&mut files, location, name)?;
    } else if location.is_dir() {
        walk(location, Path::new(""), skip, &mut files)?;
    } else {
        // A name prefix, as S3 matches keys.
        let parent = match location.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let prefix = location.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if prefix.is_empty() || !parent.is_dir() {
            return Err(TransformError::InputMissing(location.to_path_buf()));
        }
        for entry in read_dir_sorted(&parent)? {
            let name = entry
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            if !name.starts_with(prefix) {
                continue;
            }
            if entry.is_dir() {
                walk(&entry, Path::new(&name), skip, &mut files)?;
            } else if entry.is_file() {
                push_file(&mut files, &entry, PathBuf::from(&name))?;
            }
        }
    }
    Ok(files)
}

fn walk(
    dir: &Path,
    relative: &Path,
    skip: Option<&Path>,
    files: &mut Vec<InputFile>,
) -> Result<(), TransformError> {
    if skip.is_some() && fs::canonicalize(dir).ok().as_deref() == skip {
        return Ok(());
    }
    for entry in read_dir_sorted(dir)? {
        let name = entry.file_name().map(PathBuf::from).unwrap_or_default();
        if entry.is_dir() {
            walk(&entry, &relative.join(&name), skip, files)?;
        } else if entry.is_file() {
            push_file(files, &entry, relative.join(&name))?;
        }
    }
    Ok(())
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>, TransformError> {
    let cannot_list = |error: std::io::Error| TransformError::ListInputs {
        dir: dir.to_path_buf(),
        error,
    };
    let entries = fs::read_dir(dir).map_err(cannot_list)?;
    let mut paths = entries
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(cannot_list)?;
    paths.sort();
    Ok(paths)
}

fn push_file(files: &mut Vec<InputFile>, path: &Path, relative: PathBuf) -> Result<(), TransformError> {
    let size = fs::metadata(path)
        .map_err(|error| TransformError::ReadInput {
            path: path.to_path_buf(),
            error,
        })?
        .len();
    files.push(InputFile {
        path: path.to_path_buf(),
        relative,
        size,
    });
    Ok(())
}

/// A manifest: `[{"prefix": "file:///data/"}, "a.csv", "sub/b.csv"]`.
fn list_manifest(manifest: &Path) -> Result<Vec<InputFile>, TransformError> {
    let text = fs::read_to_string(manifest).map_err(|error| TransformError::ReadManifest {
        path: manifest.to_path_buf(),
        error,
    })?;
    let entries: Vec<serde_json::Value> =
        serde_json::from_str(&text).map_err(|error| TransformError::ManifestNotJson {
            path: manifest.to_path_buf(),
            error,
        })?;
    let prefix = entries
        .first()
        .and_then(|e| e.get("prefix"))
        .and_then(|p| p.as_str())
        .ok_or_else(|| TransformError::ManifestPrefix(manifest.to_path_buf()))?;
    let base = local_path(prefix, "the manifest prefix")?;
    let mut files = Vec::new();
    for (i, entry) in entries.iter().enumerate().skip(1) {
        let key = entry.as_str().ok_or_else(|| TransformError::ManifestEntryType {
            path: manifest.to_path_buf(),
            index: i,
        })?;
        // The same rule as a manifest on S3: no empty, `.` or `..` segment, nothing absolute.
        let relative = safe_relative(key).ok_or_else(|| TransformError::ManifestEntryOutside {
            path: manifest.to_path_buf(),
            key: key.to_string(),
        })?;
        push_file(&mut files, &base.join(&relative), relative)?;
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job_for(uri: &str, data_type: &str) -> TransformJob {
        TransformJob::from_request(&format!(
            r#"{{"TransformInput": {{"DataSource": {{"S3DataSource": {{"S3DataType": "{data_type}", "S3Uri": "{uri}"}}}}}},
                "TransformOutput": {{"S3OutputPath": "out"}}}}"#
        ), "job.json")
        .unwrap()
    }

    fn relatives(files: &[InputFile]) -> Vec<String> {
        files
            .iter()
            .map(|f| f.relative.to_string_lossy().into_owned())
            .collect()
    }

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in [
            ("in/b.csv", "1\n"),
            ("in/a.csv", "22\n"),
            ("in/sub/c.csv", "3\n"),
            ("in/out/x.out", ""),
        ] {
            let p = dir.path().join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        }
        dir
    }

    #[test]
    fn a_folder_is_read_recursively_without_the_output_folder() {
        let dir = tree();
        let input = dir.path().join("in");
        let files = list_inputs(
            &job_for(&format!("file://{}", input.display()), "S3Prefix"),
            &input.join("out"),
        )
        .unwrap();
        assert_eq!(relatives(&files), vec!["a.csv", "b.csv", "sub/c.csv"]);
        assert_eq!(files[0].size, 3);
        assert_eq!(
            output_path(Path::new("o"), &files[2]),
            PathBuf::from("o/sub/c.csv.out")
        );
    }

    #[test]
    fn a_name_prefix_matches_like_s3() {
        let dir = tree();
        let prefix = dir.path().join("in/s");
        let files = list_inputs(
            &job_for(&prefix.display().to_string(), "S3Prefix"),
            Path::new("nowhere"),
        )
        .unwrap();
        assert_eq!(relatives(&files), vec!["sub/c.csv"]);
        let file = dir.path().join("in/a.csv");
        let files = list_inputs(&job_for(&file.display().to_string(), "S3Prefix"), Path::new("o")).unwrap();
        assert_eq!(relatives(&files), vec!["a.csv"]);
    }

    #[test]
    fn a_manifest_lists_files_under_its_prefix() {
        let dir = tree();
        let manifest = dir.path().join("m.json");
        fs::write(
            &manifest,
            format!(
                r#"[{{"prefix": "file://{}/in/"}}, "sub/c.csv", "a.csv"]"#,
                dir.path().display()
            ),
        )
        .unwrap();
        let files = list_inputs(
            &job_for(&manifest.display().to_string(), "ManifestFile"),
            Path::new("o"),
        )
        .unwrap();
        assert_eq!(relatives(&files), vec!["a.csv", "sub/c.csv"]);
    }

    #[test]
    fn missing_or_remote_inputs_fail_clearly() {
        let err = list_inputs(&job_for("/definitely/not/here", "S3Prefix"), Path::new("o"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not exist"), "{err}");
        let err = list_inputs(&job_for("s3://bucket/key", "S3Prefix"), Path::new("o"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("local files only"), "{err}");
    }
}
