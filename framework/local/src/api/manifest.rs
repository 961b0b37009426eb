//! Manifests on S3 (`S3DataType: ManifestFile`) for training channels and transform input: the
//! manifest, `[{"prefix": "s3://bucket/data/"}, "a.csv", "part/b.csv"]`, names each object by
//! the prefix followed by its entry. Each object is downloaded to its entry's path below a
//! folder, as the service lays a manifest's objects out on the instance; a transform job then
//! reads a local manifest listing the same entries (so its outputs mirror them), a training
//! channel reads the folder. Bounded as a prefix is: at most [`MAX_OBJECTS`] entries, and the
//! bytes the job may download, the manifest's own included.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::s3::{safe_relative, S3Error, S3Uri, MAX_OBJECTS, S3};
use super::wire::quote;

/// The largest manifest read.
const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// Why a manifest or what it lists cannot be staged. The message names the manifest and says
/// what is wrong; as in [`S3Error`], the cause is part of it, not a `source`.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The manifest or one of its objects cannot be downloaded, or its prefix names no bucket.
    #[error(transparent)]
    Transfer(#[from] S3Error),
    /// The downloaded manifest cannot be read back.
    #[error("cannot read the manifest {uri}: {error}")]
    Read {
        /// The manifest.
        uri: S3Uri,
        /// Why.
        error: std::io::Error,
    },
    /// The manifest is not a JSON list.
    #[error("the manifest {uri} is not a JSON list: {error}")]
    NotAList {
        /// The manifest.
        uri: S3Uri,
        /// Where and why.
        error: serde_json::Error,
    },
    /// The manifest's first entry is not `{"prefix": "s3://…"}`.
    #[error("the manifest {uri} must begin with {{\"prefix\": \"s3://…\"}}")]
    NoPrefix {
        /// The manifest.
        uri: S3Uri,
    },
    /// The manifest's prefix is not on S3.
    #[error("the prefix {} of the manifest {uri} is not an s3:// location", quote(prefix))]
    PrefixNotS3 {
        /// The prefix as given.
        prefix: String,
        /// The manifest.
        uri: S3Uri,
    },
    /// The manifest names a prefix and nothing else.
    #[error("the manifest {uri} lists no objects")]
    Empty {
        /// The manifest.
        uri: S3Uri,
    },
    /// The manifest lists more than [`MAX_OBJECTS`] objects.
    #[error("the manifest {uri} lists more than {MAX_OBJECTS} objects")]
    TooManyObjects {
        /// The manifest.
        uri: S3Uri,
    },
    /// An entry after the prefix is not a string.
    #[error("entry {number} of the manifest {uri} is not a string")]
    EntryNotString {
        /// The entry's number, from 1 after the prefix.
        number: usize,
        /// The manifest.
        uri: S3Uri,
    },
    /// An entry would leave the folder its objects go to.
    #[error(
        "entry {} of the manifest {uri} cannot be a local file name (no '..', no empty part, \
         nothing absolute)",
        quote(entry)
    )]
    UnsafeEntry {
        /// The entry.
        entry: String,
        /// The manifest.
        uri: S3Uri,
    },
    /// The local manifest a transform job reads cannot be written.
    #[error("cannot write {}: {error}", path.display())]
    WriteLocal {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
}

/// What a manifest listed, downloaded.
#[derive(Debug)]
pub struct Listed {
    /// Its entries, in its order.
    pub entries: Vec<String>,
    /// The bytes downloaded, the manifest's included.
    pub bytes: u64,
}

/// Downloads the manifest `uri` and every object it lists into `folder`, at most `max_bytes`.
pub fn download(s3: &S3, uri: &S3Uri, folder: &Path, max_bytes: u64) -> Result<Listed, ManifestError> {
    std::fs::create_dir_all(folder).map_err(|error| S3Error::Create {
        path: folder.to_path_buf(),
        error,
    })?;
    let copy = folder.with_extension("manifest-source");
    let read = s3.download(uri, &copy, max_bytes.min(MAX_MANIFEST_BYTES));
    let text = read.map_err(ManifestError::from).and_then(|_| {
        std::fs::read_to_string(&copy).map_err(|error| ManifestError::Read {
            uri: uri.clone(),
            error,
        })
    });
    let _ = std::fs::remove_file(&copy);
    let text = text?;
    let mut bytes = text.len() as u64;
    let (prefix, entries) = parse(&text, uri)?;
    for (entry, relative) in &entries {
        let object = S3Uri {
            bucket: prefix.bucket.clone(),
            key: format!("{}{entry}", prefix.key),
            region: prefix.region.clone(),
        };
        bytes += s3.download(&object, &folder.join(relative), max_bytes.saturating_sub(bytes))?;
    }
    Ok(Listed {
        entries: entries.into_iter().map(|(entry, _)| entry).collect(),
        bytes,
    })
}

impl Listed {
    /// Writes the manifest a local job reads: the same entries below `folder`.
    pub fn write_local(&self, local: &Path, folder: &Path) -> Result<(), ManifestError> {
        let mut list = vec![json!({ "prefix": format!("file://{}/", folder.display()) })];
        list.extend(self.entries.iter().map(|entry| json!(entry)));
        std::fs::write(local, Value::Array(list).to_string()).map_err(|error| ManifestError::WriteLocal {
            path: local.to_path_buf(),
            error,
        })
    }
}

/// The manifest's prefix and its entries, each with the path it is downloaded to.
fn parse(text: &str, uri: &S3Uri) -> Result<(S3Uri, Vec<(String, PathBuf)>), ManifestError> {
    let list: Vec<Value> = serde_json::from_str(text).map_err(|error| ManifestError::NotAList {
        uri: uri.clone(),
        error,
    })?;
    let prefix = list
        .first()
        .and_then(|first| first.get("prefix"))
        .and_then(Value::as_str)
        .ok_or_else(|| ManifestError::NoPrefix { uri: uri.clone() })?;
    let prefix = S3Uri::parse(prefix, &uri.region).ok_or_else(|| ManifestError::PrefixNotS3 {
        prefix: prefix.to_string(),
        uri: uri.clone(),
    })??;
    let entries = &list[1..];
    if entries.is_empty() {
        return Err(ManifestError::Empty { uri: uri.clone() });
    }
    if entries.len() > MAX_OBJECTS {
        return Err(ManifestError::TooManyObjects { uri: uri.clone() });
    }
    let mut parsed = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let entry = entry.as_str().ok_or_else(|| ManifestError::EntryNotString {
            number: i + 1,
            uri: uri.clone(),
        })?;
        let relative = safe_relative(entry).ok_or_else(|| ManifestError::UnsafeEntry {
            entry: entry.to_string(),
            uri: uri.clone(),
        })?;
        parsed.push((entry.to_string(), relative));
    }
    Ok((prefix, parsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> S3Uri {
        S3Uri::parse("s3://bkt/lists/m.json", "eu-west-1")
            .unwrap()
            .unwrap()
    }

    #[test]
    fn a_manifest_names_objects_below_its_prefix() {
        let (prefix, entries) = parse(
            r#"[{"prefix": "s3://data/in/"}, "a.csv", "part/b.csv"]"#,
            &manifest(),
        )
        .unwrap();
        assert_eq!((prefix.bucket.as_str(), prefix.key.as_str()), ("data", "in/"));
        assert_eq!(prefix.region, "eu-west-1");
        let paths: Vec<_> = entries
            .iter()
            .map(|(e, p)| (e.as_str(), p.to_str().unwrap()))
            .collect();
        assert_eq!(paths, [("a.csv", "a.csv"), ("part/b.csv", "part/b.csv")]);
    }

    #[test]
    fn a_bad_manifest_is_refused_with_the_reason() {
        for (text, expected) in [
            ("{}", "is not a JSON list"),
            (r#"["a.csv"]"#, "must begin with"),
            (
                r#"[{"prefix": "file:///data/"}, "a.csv"]"#,
                "is not an s3:// location",
            ),
            (r#"[{"prefix": "s3://data/"}]"#, "lists no objects"),
            (r#"[{"prefix": "s3://data/"}, 3]"#, "entry 1"),
            (
                r#"[{"prefix": "s3://data/"}, "../up.csv"]"#,
                "cannot be a local file name",
            ),
            (
                r#"[{"prefix": "s3://data/"}, "/abs.csv"]"#,
                "cannot be a local file name",
            ),
        ] {
            let e = parse(text, &manifest()).unwrap_err().to_string();
            assert!(e.contains(expected), "{text}: {e}");
        }
        let many = format!(
            r#"[{{"prefix": "s3://data/"}}{}]"#,
            r#", "a""#.repeat(MAX_OBJECTS + 1)
        );
        assert!(parse(&many, &manifest())
            .unwrap_err()
            .to_string()
            .contains("more than"));
    }

    #[test]
    fn the_local_manifest_lists_the_same_entries_below_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let listed = Listed {
            entries: vec!["a.csv".into(), "part/b.csv".into()],
            bytes: 0,
        };
        let local = dir.path().join("input.manifest");
        listed.write_local(&local, Path::new("/staging/input")).unwrap();
        let written: Value = serde_json::from_str(&std::fs::read_to_string(local).unwrap()).unwrap();
        assert_eq!(
            written,
            json!([{"prefix": "file:///staging/input/"}, "a.csv", "part/b.csv"])
        );
    }
}
