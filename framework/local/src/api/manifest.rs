//! Manifests on S3 (`S3DataType: ManifestFile`) for training channels and transform input: the
//! manifest, `[{"prefix": "s3://bucket/data/"}, "a.csv", "part/b.csv"]`, names each object by
//! the prefix followed by its entry. Each object is downloaded to its entry's path below a
//! folder, as the service lays a manifest's objects out on the instance; a transform job then
//! reads a local manifest listing the same entries (so its outputs mirror them), a training
//! channel reads the folder. Bounded as a prefix is: at most [`MAX_OBJECTS`] entries, and the
//! bytes the job may download, the manifest's own included.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::s3::{safe_relative, S3Uri, MAX_OBJECTS, S3};
use super::wire::quote;

/// The largest manifest read.
const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// What a manifest listed, downloaded.
#[derive(Debug)]
pub struct Listed {
    /// Its entries, in its order.
    pub entries: Vec<String>,
    /// The bytes downloaded, the manifest's included.
    pub bytes: u64,
}

/// Downloads the manifest `uri` and every object it lists into `folder`, at most `max_bytes`.
pub fn download(s3: &S3, uri: &S3Uri, folder: &Path, max_bytes: u64) -> Result<Listed, String> {
    std::fs::create_dir_all(folder).map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
    let copy = folder.with_extension("manifest-source");
    let read = s3.download(uri, &copy, max_bytes.min(MAX_MANIFEST_BYTES));
    let text = read.and_then(|_| {
        std::fs::read_to_string(&copy).map_err(|e| format!("cannot read the manifest {uri}: {e}"))
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
    pub fn write_local(&self, local: &Path, folder: &Path) -> Result<(), String> {
        let mut list = vec![json!({ "prefix": format!("file://{}/", folder.display()) })];
        list.extend(self.entries.iter().map(|entry| json!(entry)));
        std::fs::write(local, Value::Array(list).to_string())
            .map_err(|e| format!("cannot write {}: {e}", local.display()))
    }
}

/// The manifest's prefix and its entries, each with the path it is downloaded to.
fn parse(text: &str, uri: &S3Uri) -> Result<(S3Uri, Vec<(String, PathBuf)>), String> {
    let list: Vec<Value> =
        serde_json::from_str(text).map_err(|e| format!("the manifest {uri} is not a JSON list: {e}"))?;
    let prefix = list
        .first()
        .and_then(|first| first.get("prefix"))
        .and_then(Value::as_str)
        .ok_or_else(|| format!("the manifest {uri} must begin with {{\"prefix\": \"s3://…\"}}"))?;
    let prefix = S3Uri::parse(prefix, &uri.region).ok_or_else(|| {
        format!(
            "the prefix {} of the manifest {uri} is not an s3:// location",
            quote(prefix)
        )
    })??;
    let entries = &list[1..];
    if entries.is_empty() {
        return Err(format!("the manifest {uri} lists no objects"));
    }
    if entries.len() > MAX_OBJECTS {
        return Err(format!(
            "the manifest {uri} lists more than {MAX_OBJECTS} objects"
        ));
    }
    let mut parsed = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let entry = entry
            .as_str()
            .ok_or_else(|| format!("entry {} of the manifest {uri} is not a string", i + 1))?;
        let relative = safe_relative(entry).ok_or_else(|| {
            format!(
                "entry {} of the manifest {uri} cannot be a local file name (no '..', no empty part, nothing absolute)",
                quote(entry)
            )
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
            let e = parse(text, &manifest()).unwrap_err();
            assert!(e.contains(expected), "{text}: {e}");
        }
        let many = format!(
            r#"[{{"prefix": "s3://data/"}}{}]"#,
            r#", "a""#.repeat(MAX_OBJECTS + 1)
        );
        assert!(parse(&many, &manifest()).unwrap_err().contains("more than"));
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
