//! `model.tar.gz`: packing a training job's `model/` (and `output/data/`) the way SageMaker does,
//! and reading a `ModelDataUrl`. Unpacking one lives in the runtime
//! ([`modelstage_runtime::archive`]), so that `serve --model-data` and local mode's `deploy` and
//! `transform` unpack with the same checks and bounds.
//!
//! Packing follows the SDK's local mode (docs/contract.md (`model.tar.gz`)): the *contents* of the folder at the
//! archive root, gzip, symbolic links replaced by what they point to. Entries are added in sorted
//! order so the same folder always gives the same list.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use flate2::write::GzEncoder;
use flate2::Compression;
use tar::Builder;

/// How deep `pack_dir` follows folders (and links to folders) before it suspects a link cycle.
const MAX_DEPTH: usize = 128;

/// Packs the contents of `dir` into the gzipped tarball `tar_gz` (entries relative to `dir`).
/// The tarball is written next to its final name and renamed into place when complete.
pub fn pack_dir(dir: &Path, tar_gz: &Path) -> anyhow::Result<()> {
    if !dir.is_dir() {
        bail!("cannot pack {}: it is not a folder", dir.display());
    }
    if let Some(parent) = tar_gz.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let partial = tar_gz.with_extension("partial");
    let file = File::create(&partial).with_context(|| format!("cannot create {}", partial.display()))?;
    let mut builder = Builder::new(GzEncoder::new(BufWriter::new(file), Compression::default()));
    builder.follow_symlinks(true);
    let written = add_children(&mut builder, dir, Path::new(""), 0)
        .and_then(|()| {
            let gz = builder.into_inner().context("cannot finish the tar stream")?;
            let mut out = gz.finish().context("cannot finish the gzip stream")?;
            std::io::Write::flush(&mut out).context("cannot flush the tarball")?;
            Ok(())
        })
        .and_then(|()| {
            std::fs::rename(&partial, tar_gz)
                .with_context(|| format!("cannot move the tarball to {}", tar_gz.display()))
        });
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written.with_context(|| format!("cannot pack {} into {}", dir.display(), tar_gz.display()))
}

fn add_children<W: std::io::Write>(
    builder: &mut Builder<W>,
    dir: &Path,
    prefix: &Path,
    depth: usize,
) -> anyhow::Result<()> {
    if depth > MAX_DEPTH {
        bail!(
            "{} is nested more than {MAX_DEPTH} levels deep (a link cycle?)",
            dir.display()
        );
    }
    let mut children: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .with_context(|| format!("cannot list {}", dir.display()))?;
    children.sort();
    for path in children {
        let name = prefix.join(path.file_name().unwrap_or_default());
        // metadata() follows links: a link to a folder is packed as that folder.
        let meta = std::fs::metadata(&path).with_context(|| format!("cannot read {}", path.display()))?;
        builder
            .append_path_with_name(&path, &name)
            .with_context(|| format!("cannot add {}", path.display()))?;
        if meta.is_dir() {
            add_children(builder, &path, &name, depth + 1)?;
        }
    }
    Ok(())
}

/// A `ModelDataUrl` (or any artifact location) as a local path: `file://` URIs
/// (`file:///abs/path`, `file://localhost/abs/path`, percent-escapes decoded) and plain paths.
pub fn model_data_url_to_path(url: &str) -> anyhow::Result<PathBuf> {
    let url = url.trim();
    if url.is_empty() {
        bail!("the model data location is empty: give a path or a file:// URI");
    }
    if let Some(rest) = url.strip_prefix("file://") {
        let rest = rest
            .strip_prefix("localhost")
            .filter(|r| r.starts_with('/'))
            .unwrap_or(rest);
        if rest.is_empty() {
            bail!("'{url}' names no file: write file:///absolute/path/model.tar.gz");
        }
        return Ok(PathBuf::from(
            percent_decode(rest).map_err(|e| anyhow!("cannot read '{url}': {e}"))?,
        ));
    }
    if let Some((scheme, _)) = url.split_once("://") {
        if scheme.eq_ignore_ascii_case("s3") {
            bail!("'{url}' is in S3, which local mode does not read: download it and give its path");
        }
        bail!("'{url}' uses the scheme '{scheme}://'; local mode reads plain paths and file:// URIs");
    }
    Ok(PathBuf::from(url))
}

fn percent_decode(text: &str) -> anyhow::Result<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| anyhow!("bad percent-escape at character {}", i + 1))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| anyhow!("the percent-escapes do not decode to UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use tar::Archive;

    fn temp(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("modelstage-tarball-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn list(tar_gz: &Path) -> Vec<String> {
        let mut archive = Archive::new(GzDecoder::new(File::open(tar_gz).unwrap()));
        archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn pack_then_unpack_round_trip() {
        let dir = temp("roundtrip");
        let model = dir.join("model");
        std::fs::create_dir_all(model.join("sub")).unwrap();
        std::fs::write(model.join("weights.bin"), [1u8, 2, 3]).unwrap();
        std::fs::write(model.join("sub/config.json"), "{}").unwrap();
        std::os::unix::fs::symlink("weights.bin", model.join("alias.bin")).unwrap();
        let tar_gz = dir.join("out/model.tar.gz");
        pack_dir(&model, &tar_gz).unwrap();
        // Contents at the root, sorted, the link packed as the file it points to.
        assert_eq!(
            list(&tar_gz),
            ["alias.bin", "sub", "sub/config.json", "weights.bin"]
        );
        assert!(!dir.join("out/model.partial").exists());

        let dest = dir.join("unpacked");
        modelstage_runtime::archive::unpack(&tar_gz, &dest).unwrap();
        assert_eq!(std::fs::read(dest.join("weights.bin")).unwrap(), [1, 2, 3]);
        assert_eq!(std::fs::read(dest.join("alias.bin")).unwrap(), [1, 2, 3]);
        assert_eq!(
            std::fs::read_to_string(dest.join("sub/config.json")).unwrap(),
            "{}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pack_refuses_a_missing_folder() {
        let dir = temp("missing");
        let err = pack_dir(&dir.join("nope"), &dir.join("m.tar.gz")).unwrap_err();
        assert!(err.to_string().contains("is not a folder"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn model_data_urls() {
        let p = |u: &str| model_data_url_to_path(u).unwrap();
        assert_eq!(
            p("file:///models/model.tar.gz"),
            PathBuf::from("/models/model.tar.gz")
        );
        assert_eq!(
            p("file://localhost/m/model.tar.gz"),
            PathBuf::from("/m/model.tar.gz")
        );
        assert_eq!(
            p("file:///a%20b/model.tar.gz"),
            PathBuf::from("/a b/model.tar.gz")
        );
        assert_eq!(p("out/model.tar.gz"), PathBuf::from("out/model.tar.gz"));
        assert_eq!(p("file://rel/model.tar.gz"), PathBuf::from("rel/model.tar.gz"));
        let e = |u: &str| model_data_url_to_path(u).unwrap_err().to_string();
        assert!(e("s3://bucket/model.tar.gz").contains("S3"));
        assert!(e("https://x/m.tar.gz").contains("'https://'"));
        assert!(e("").contains("empty"));
        assert!(e("file:///bad%zz").contains("percent-escape"));
    }
}
