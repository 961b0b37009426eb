//! `model.tar.gz`: packing a training job's `model/` (and `output/data/`) the way SageMaker does, and
//! unpacking one safely for `serve`, `deploy` and `transform`.
//!
//! Packing follows the SDK's local mode (docs/contract.md (`model.tar.gz`)): the *contents* of the folder at the
//! archive root, gzip, symbolic links replaced by what they point to. Entries are added in sorted
//! order so the same folder always gives the same list.
//!
//! Unpacking refuses, before writing it, any entry that would escape the target folder: a name
//! with `..` or an absolute name, a symbolic link whose target is absolute or leads outside, a hard
//! link to such a name, and device or FIFO entries. The error names the entry; nothing is ever
//! written outside the target folder (entries before the refused one may remain inside it).

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Component, Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use tar::{Archive, Builder, EntryType};

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

/// Unpacks the gzipped tarball `tar_gz` into `dest` (created if needed), refusing entries that
/// would escape it.
pub fn unpack_safely(tar_gz: &Path, dest: &Path) -> anyhow::Result<()> {
    let file = File::open(tar_gz).with_context(|| format!("cannot open {}", tar_gz.display()))?;
    std::fs::create_dir_all(dest).with_context(|| format!("cannot create {}", dest.display()))?;
    let root = dest
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", dest.display()))?;
    let mut archive = Archive::new(GzDecoder::new(BufReader::new(file)));
    let what = tar_gz.display();
    let entries = archive
        .entries()
        .with_context(|| format!("{what} is not a readable tar.gz"))?;
    for (index, entry) in entries.enumerate() {
        let mut entry = entry.with_context(|| format!("{what}: cannot read entry {}", index + 1))?;
        let name = entry
            .path()
            .with_context(|| format!("{what}: entry {} has an unreadable name", index + 1))?
            .into_owned();
        let refuse = |why: String| anyhow!("{what}: refusing entry '{}': {why}", name.display());
        check_name(&name).map_err(refuse)?;
        match entry.header().entry_type() {
            EntryType::Regular | EntryType::Continuous | EntryType::Directory | EntryType::GNUSparse => {}
            EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .ok()
                    .flatten()
                    .ok_or_else(|| refuse("a symbolic link without a target".into()))?
                    .into_owned();
                check_symlink(&root, &name, &target).map_err(refuse)?;
            }
            EntryType::Link => {
                let target = entry
                    .link_name()
                    .ok()
                    .flatten()
                    .ok_or_else(|| refuse("a hard link without a target".into()))?
                    .into_owned();
                check_name(&target)
                    .map_err(|why| refuse(format!("a hard link to '{}', which {why}", target.display())))?;
            }
            // Metadata records that carry no file of their own.
            EntryType::XGlobalHeader
            | EntryType::XHeader
            | EntryType::GNULongName
            | EntryType::GNULongLink => continue,
            other => return Err(refuse(format!("entries of type {other:?} are not unpacked"))),
        }
        let inside = entry
            .unpack_in(&root)
            .with_context(|| format!("{what}: cannot unpack entry '{}'", name.display()))?;
        if !inside {
            return Err(refuse(format!("it would land outside {}", dest.display())));
        }
    }
    Ok(())
}

/// An entry name is relative and never climbs: `..` and absolute names are refused.
fn check_name(name: &Path) -> Result<(), String> {
    for component in name.components() {
        match component {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => return Err("it contains '..'".into()),
            Component::RootDir | Component::Prefix(_) => return Err("it is an absolute path".into()),
        }
    }
    Ok(())
}

/// A symbolic link must point inside `root`, judged from the real folder the link lands in.
fn check_symlink(root: &Path, name: &Path, target: &Path) -> Result<(), String> {
    if target.has_root() {
        return Err(format!(
            "a symbolic link to the absolute path '{}'",
            target.display()
        ));
    }
    let parent = real_path(&root.join(name.parent().unwrap_or(Path::new(""))));
    let resolved = normalize(&parent.join(target));
    if resolved.starts_with(root) {
        Ok(())
    } else {
        Err(format!(
            "a symbolic link to '{}', which points outside the target folder",
            target.display()
        ))
    }
}

/// `path` with its longest existing prefix resolved through the file system (links followed) and
/// the rest appended as it is.
fn real_path(path: &Path) -> PathBuf {
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.file_name().map(|n| n.to_owned()), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => break,
        }
    }
    let mut real = existing.canonicalize().unwrap_or(existing);
    real.extend(rest.iter().rev());
    real
}

/// Resolves `.` and `..` without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
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

    fn temp(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("modelstage-tarball-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A tar.gz with raw entries, written byte by byte so that names the `tar` crate's
    /// setters refuse (`..`, absolute) can be produced.
    fn craft(path: &Path, entries: &[(&str, EntryType, &str, &[u8])]) {
        let file = File::create(path).unwrap();
        let mut builder = Builder::new(GzEncoder::new(file, Compression::default()));
        for (name, kind, link, data) in entries {
            let mut header = tar::Header::new_gnu();
            let gnu = header.as_gnu_mut().unwrap();
            gnu.name[..name.len()].copy_from_slice(name.as_bytes());
            gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
            header.set_entry_type(*kind);
            header.set_mode(0o644);
            header.set_size(data.len() as u64);
            header.set_cksum();
            builder.append(&header, *data).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap();
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
        unpack_safely(&tar_gz, &dest).unwrap();
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

    fn refused(tag: &str, entries: &[(&str, EntryType, &str, &[u8])], needle: &str) {
        let dir = temp(tag);
        let tar_gz = dir.join("evil.tar.gz");
        craft(&tar_gz, entries);
        let dest = dir.join("a/b/dest");
        let err = format!("{:#}", unpack_safely(&tar_gz, &dest).unwrap_err());
        assert!(err.contains(needle), "{err}");
        // Nothing landed beside the target folder.
        let beside: Vec<_> = std::fs::read_dir(dir.join("a/b"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(beside, [std::ffi::OsString::from("dest")]);
        assert!(!dir.join("a/evil.txt").exists() && !dir.join("evil.txt").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refuses_parent_dir_entries() {
        refused(
            "dotdot",
            &[
                ("ok.txt", EntryType::Regular, "", b"fine"),
                ("../evil.txt", EntryType::Regular, "", b"x"),
            ],
            "refusing entry '../evil.txt': it contains '..'",
        );
        refused(
            "dotdot-deep",
            &[("sub/../../../evil.txt", EntryType::Regular, "", b"x")],
            "refusing entry 'sub/../../../evil.txt'",
        );
    }

    #[test]
    fn refuses_absolute_entries() {
        refused(
            "abs",
            &[("/tmp/evil.txt", EntryType::Regular, "", b"x")],
            "it is an absolute path",
        );
    }

    #[test]
    fn refuses_links_pointing_outside() {
        refused(
            "symlink-abs",
            &[("etc", EntryType::Symlink, "/etc", b"")],
            "refusing entry 'etc': a symbolic link to the absolute path '/etc'",
        );
        refused(
            "symlink-up",
            &[("sub/up", EntryType::Symlink, "../../evil.txt", b"")],
            "points outside the target folder",
        );
        // A link that is fine on its own cannot be used to climb out through another.
        refused(
            "symlink-chain",
            &[
                ("here", EntryType::Symlink, ".", b""),
                ("here/up", EntryType::Symlink, "../x", b""),
            ],
            "refusing entry 'here/up'",
        );
        refused(
            "hardlink",
            &[("h", EntryType::Link, "../../evil.txt", b"")],
            "a hard link to '../../evil.txt'",
        );
    }

    #[test]
    fn links_inside_are_kept() {
        let dir = temp("inside");
        let tar_gz = dir.join("ok.tar.gz");
        craft(
            &tar_gz,
            &[
                ("sub/data.txt", EntryType::Regular, "", b"42"),
                ("sub/link.txt", EntryType::Symlink, "data.txt", b""),
                ("top.txt", EntryType::Symlink, "sub/../sub/data.txt", b""),
            ],
        );
        let dest = dir.join("dest");
        unpack_safely(&tar_gz, &dest).unwrap();
        assert_eq!(std::fs::read_to_string(dest.join("sub/link.txt")).unwrap(), "42");
        assert_eq!(std::fs::read_to_string(dest.join("top.txt")).unwrap(), "42");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refuses_devices_and_garbage() {
        refused(
            "fifo",
            &[("pipe", EntryType::Fifo, "", b"")],
            "entries of type Fifo are not unpacked",
        );
        let dir = temp("garbage");
        std::fs::write(dir.join("x.tar.gz"), b"not a tarball").unwrap();
        assert!(unpack_safely(&dir.join("x.tar.gz"), &dir.join("d")).is_err());
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
