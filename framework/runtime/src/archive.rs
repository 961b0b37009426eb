//! Unpacking a `model.tar.gz` safely, for `serve --model-data` and for local mode's `fit`,
//! `deploy` and `transform`: one implementation, so every command draws the same line.
//!
//! Nothing escapes the target folder. Names with `..` or a root are refused. Symbolic links are
//! not created while the archive streams by: they are recorded, and once every entry is read each
//! link is resolved against the tree as it was actually written (the recorded links and any link
//! already on disk, followed hop by hop); a link whose resolution leaves the folder at any step,
//! or is absolute, is refused, and so none is created. Because links are written last, no entry
//! can be written *through* a link: an entry whose name passes through an earlier link entry, or
//! through a link on disk, is refused. A hard link must name a file unpacked before it, never a
//! link. Devices and FIFOs are refused. Files are created with `O_EXCL` after removing whatever
//! had the name, so a pre-existing link at that name is replaced, not followed.
//!
//! Nothing fills the disk either: the entry count, the bytes written and the ratio of bytes
//! written to compressed bytes read are capped ([`Limits`], from `MODELSTAGE_UNPACK_MAX_*`),
//! checked while the data streams, so a gzip bomb stops at the cap instead of after it. The
//! error names the variable that raises the cap.
//!
//! On an error, a target folder that unpacking created is removed again; a folder that existed
//! before keeps what was written into it (but never anything outside it).

use std::cell::Cell;
use std::collections::{BTreeMap, VecDeque};
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use anyhow::{anyhow, bail, Context};
use flate2::read::GzDecoder;
use tar::{Archive, EntryType};

/// The variable that caps the bytes an archive may unpack to.
pub const MAX_BYTES_VAR: &str = "MODELSTAGE_UNPACK_MAX_BYTES";
/// The variable that caps the number of entries in an archive.
pub const MAX_ENTRIES_VAR: &str = "MODELSTAGE_UNPACK_MAX_ENTRIES";
/// The variable that caps unpacked bytes per compressed byte.
pub const MAX_RATIO_VAR: &str = "MODELSTAGE_UNPACK_MAX_RATIO";

/// The ratio is judged only past this many unpacked bytes: a small file of zeros compresses
/// a thousandfold and is harmless, and below this size no ratio makes a bomb.
pub const RATIO_FLOOR_BYTES: u64 = 64 * 1024 * 1024;

/// How many links one resolution follows before it calls the chain a cycle (Linux's `ELOOP`).
const MAX_LINK_HOPS: usize = 40;

/// Bounds on what one archive may unpack to; 0 lifts a bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes written, all files together.
    pub max_bytes: u64,
    /// Entries of any kind.
    pub max_entries: u64,
    /// Unpacked bytes per compressed byte read, judged past [`RATIO_FLOOR_BYTES`].
    pub max_ratio: u64,
}

impl Default for Limits {
    /// 32 GiB, 100,000 entries, 200:1. Model weights compress about 1.1:1 and text about 10:1;
    /// zeros compress about 1000:1, which is what a gzip bomb is made of.
    fn default() -> Limits {
        Limits {
            max_bytes: 32 * 1024 * 1024 * 1024,
            max_entries: 100_000,
            max_ratio: 200,
        }
    }
}

impl Limits {
    /// The defaults with `MODELSTAGE_UNPACK_MAX_BYTES`, `_MAX_ENTRIES` and `_MAX_RATIO` applied.
    pub fn from_env() -> anyhow::Result<Limits> {
        let mut limits = Limits::default();
        for (var, field) in [
            (MAX_BYTES_VAR, &mut limits.max_bytes),
            (MAX_ENTRIES_VAR, &mut limits.max_entries),
            (MAX_RATIO_VAR, &mut limits.max_ratio),
        ] {
            let Ok(text) = std::env::var(var) else { continue };
            if text.trim().is_empty() {
                continue;
            }
            *field = text
                .trim()
                .parse()
                .map_err(|_| anyhow!("{var} must be a whole number (0 for no limit), got '{text}'"))?;
        }
        Ok(limits)
    }
}

/// Unpacks `tar_gz` into `dest` (created if needed) within the limits of [`Limits::from_env`].
pub fn unpack(tar_gz: &Path, dest: &Path) -> anyhow::Result<()> {
    unpack_with(tar_gz, dest, &Limits::from_env()?)
}

/// Unpacks `tar_gz` into `dest` (created if needed) within `limits`.
pub fn unpack_with(tar_gz: &Path, dest: &Path, limits: &Limits) -> anyhow::Result<()> {
    let file = File::open(tar_gz).with_context(|| format!("cannot open {}", tar_gz.display()))?;
    let created = !dest.exists();
    fs::create_dir_all(dest).with_context(|| format!("cannot create {}", dest.display()))?;
    let result = dest
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", dest.display()))
        .and_then(|root| {
            let mut unpacker = Unpacker {
                root,
                what: tar_gz.display().to_string(),
                limits,
                links: BTreeMap::new(),
                entries: 0,
                bytes: 0,
                compressed: Rc::new(Cell::new(0)),
            };
            unpacker.run(file)
        });
    if result.is_err() && created {
        let _ = fs::remove_dir_all(dest);
    }
    result
}

/// A folder of this process's own (mode 0700) holding an unpacked model; removed when dropped.
#[derive(Debug)]
pub struct PrivateModel {
    folder: PathBuf,
    model_dir: PathBuf,
}

impl PrivateModel {
    /// Unpacks `tar_gz` as SageMaker does before a container starts, into a new private folder
    /// under the system's temporary folder.
    pub fn unpack(tar_gz: &Path) -> anyhow::Result<PrivateModel> {
        let base = std::env::temp_dir();
        let folder = (0..1000)
            .find_map(|attempt| {
                let path = base.join(format!("modelstage-model-{}-{attempt}", std::process::id()));
                let made = fs::DirBuilder::new().mode(0o700).create(&path).map(|()| path);
                match made {
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => None,
                    other => Some(other),
                }
            })
            .unwrap_or_else(|| Err(ErrorKind::AlreadyExists.into()))
            .with_context(|| format!("cannot create a private folder under {}", base.display()))?;
        let private = PrivateModel {
            model_dir: folder.join("model"),
            folder,
        };
        unpack(tar_gz, &private.model_dir)?;
        Ok(private)
    }

    /// The unpacked model: what `/opt/ml/model` holds in a SageMaker container.
    pub fn model_dir(&self) -> &Path {
        &self.model_dir
    }
}

impl Drop for PrivateModel {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.folder);
    }
}

struct Unpacker<'a> {
    /// The target folder, canonical.
    root: PathBuf,
    /// The archive, for messages.
    what: String,
    limits: &'a Limits,
    /// Symbolic links by name (relative, normalised), created once every entry is read.
    links: BTreeMap<PathBuf, PathBuf>,
    entries: u64,
    bytes: u64,
    /// Compressed bytes read so far.
    compressed: Rc<Cell<u64>>,
}

impl Unpacker<'_> {
    fn run(&mut self, file: File) -> anyhow::Result<()> {
        let counted = Counted {
            inner: file,
            count: Rc::clone(&self.compressed),
        };
        let mut archive = Archive::new(GzDecoder::new(counted));
        let what = self.what.clone();
        let entries = archive
            .entries()
            .with_context(|| format!("{what} is not a readable tar.gz"))?;
        for (index, entry) in entries.enumerate() {
            let entry = entry.with_context(|| format!("{what}: cannot read entry {}", index + 1))?;
            self.entries += 1;
            if self.limits.max_entries > 0 && self.entries > self.limits.max_entries {
                bail!(
                    "{what}: refusing an archive of more than {} entries ({MAX_ENTRIES_VAR}; set it \
                     higher, or to 0 for no limit, to unpack it)",
                    self.limits.max_entries
                );
            }
            self.entry(entry, index)?;
        }
        self.create_links()
    }

    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>, index: usize) -> anyhow::Result<()> {
        let what = self.what.clone();
        let name = entry
            .path()
            .with_context(|| format!("{what}: entry {} has an unreadable name", index + 1))?
            .into_owned();
        let refuse = |why: String| anyhow!("{what}: refusing entry '{}': {why}", shown(&name));
        let rel = relative(&name).map_err(refuse)?;
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader | EntryType::XHeader | EntryType::GNULongName | EntryType::GNULongLink
        ) {
            // Metadata records that carry no file of their own.
            return Ok(());
        }
        if rel.as_os_str().is_empty() {
            return match kind {
                EntryType::Directory => Ok(()),
                _ => Err(refuse("it names the target folder itself".into())),
            };
        }
        self.through_no_link(&rel).map_err(refuse)?;
        match kind {
            EntryType::Directory => {
                self.links.remove(&rel);
                self.make_dirs(&rel).map_err(refuse)
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.links.remove(&rel);
                let mode = entry.header().mode().unwrap_or(0o644) & 0o777;
                let mut out = self.fresh_file(&rel, mode).map_err(refuse)?;
                self.copy(&mut entry, &mut out, &name)
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .ok()
                    .flatten()
                    .filter(|t| !t.as_os_str().is_empty())
                    .ok_or_else(|| refuse("a symbolic link without a target".into()))?
                    .into_owned();
                if target.has_root() {
                    return Err(refuse(format!(
                        "a symbolic link to the absolute path '{}'",
                        shown(&target)
                    )));
                }
                if let Some(parent) = rel.parent() {
                    self.make_dirs(parent).map_err(refuse)?;
                }
                self.links.insert(rel, target);
                Ok(())
            }
            EntryType::Link => {
                let target = entry
                    .link_name()
                    .ok()
                    .flatten()
                    .ok_or_else(|| refuse("a hard link without a target".into()))?
                    .into_owned();
                let hard = |why: String| refuse(format!("a hard link to '{}', which {why}", shown(&target)));
                let target_rel = relative(&target).map_err(hard)?;
                if self.links.contains_key(&target_rel) {
                    return Err(hard("is a symbolic link".into()));
                }
                self.through_no_link(&target_rel).map_err(hard)?;
                let source = self.root.join(&target_rel);
                match fs::symlink_metadata(&source) {
                    Ok(meta) if meta.is_file() => {}
                    _ => return Err(hard("is not a file unpacked before it".into())),
                }
                self.links.remove(&rel);
                let path = self.free_name(&rel).map_err(refuse)?;
                fs::hard_link(&source, &path)
                    .with_context(|| format!("{what}: cannot unpack entry '{}'", shown(&name)))
            }
            other => Err(refuse(format!("entries of type {other:?} are not unpacked"))),
        }
    }

    /// Refuses a name that passes through a symbolic link: a link entry of this archive, or a
    /// link already on disk.
    fn through_no_link(&self, rel: &Path) -> Result<(), String> {
        let mut prefix = PathBuf::new();
        let mut components = rel.components().peekable();
        while let Some(component) = components.next() {
            if components.peek().is_none() {
                break;
            }
            prefix.push(component);
            if self.links.contains_key(&prefix) {
                return Err(format!(
                    "it goes through '{}', a symbolic link of the same archive",
                    shown(&prefix)
                ));
            }
            if fs::symlink_metadata(self.root.join(&prefix)).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(format!("it goes through '{}', a symbolic link", shown(&prefix)));
            }
        }
        Ok(())
    }

    /// Creates the folders of `rel` one at a time, never following a link.
    fn make_dirs(&self, rel: &Path) -> Result<(), String> {
        let mut path = self.root.clone();
        for component in rel.components() {
            path.push(component);
            match fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_dir() => {}
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(format!("'{}' is a symbolic link, not a folder", shown(&path)))
                }
                Ok(_) => return Err(format!("'{}' is a file, not a folder", shown(&path))),
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    fs::create_dir(&path).map_err(|e| format!("cannot create {}: {e}", shown(&path)))?
                }
                Err(e) => return Err(format!("cannot read {}: {e}", shown(&path))),
            }
        }
        Ok(())
    }

    /// The path of `rel`, its folders created and whatever had the name (not a folder) removed.
    fn free_name(&self, rel: &Path) -> Result<PathBuf, String> {
        if let Some(parent) = rel.parent() {
            self.make_dirs(parent)?;
        }
        let path = self.root.join(rel);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => Err("a folder of that name was unpacked before it".into()),
            Ok(_) => fs::remove_file(&path).map_err(|e| format!("cannot replace {}: {e}", shown(&path))),
            Err(_) => Ok(()),
        }
        .map(|()| path)
    }

    /// A new file at `rel`: `create_new` (`O_EXCL`) never follows a link.
    fn fresh_file(&self, rel: &Path, mode: u32) -> Result<File, String> {
        let path = self.free_name(rel)?;
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode | 0o600)
            .open(&path)
            .map_err(|e| format!("cannot create {}: {e}", shown(&path)))
    }

    /// Copies one file's data, checking the byte and ratio caps as it streams.
    fn copy(&mut self, from: &mut impl Read, to: &mut File, name: &Path) -> anyhow::Result<()> {
        let what = self.what.clone();
        let failed = || format!("{what}: cannot unpack entry '{}'", shown(name));
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = from.read(&mut buf).with_context(failed)?;
            if n == 0 {
                return Ok(());
            }
            self.bytes += n as u64;
            self.check_size()?;
            to.write_all(&buf[..n]).with_context(failed)?;
        }
    }

    fn check_size(&self) -> anyhow::Result<()> {
        let Limits {
            max_bytes, max_ratio, ..
        } = *self.limits;
        let what = &self.what;
        if max_bytes > 0 && self.bytes > max_bytes {
            bail!(
                "{what}: refusing to unpack more than {max_bytes} bytes ({MAX_BYTES_VAR}; set it \
                 higher, or to 0 for no limit, to unpack a larger model)"
            );
        }
        let compressed = self.compressed.get().max(1);
        if max_ratio > 0 && self.bytes > RATIO_FLOOR_BYTES && self.bytes / compressed > max_ratio {
            bail!(
                "{what}: refusing to unpack more than {max_ratio} bytes per compressed byte (a \
                 gzip bomb?) ({MAX_RATIO_VAR}; set it higher, or to 0 for no limit, if the model \
                 really compresses this well)"
            );
        }
        Ok(())
    }

    /// Checks every recorded link against the whole tree, then creates them all.
    fn create_links(&mut self) -> anyhow::Result<()> {
        let what = &self.what;
        for (name, target) in &self.links {
            let refuse = |why: String| anyhow!("{what}: refusing entry '{}': {why}", shown(name));
            self.through_no_link(name).map_err(refuse)?;
            self.resolve(name, target)
                .map_err(|why| refuse(format!("a symbolic link to '{}', which {why}", shown(target))))?;
        }
        for (name, target) in &self.links {
            let path = self
                .free_name(name)
                .map_err(|why| anyhow!("{what}: refusing entry '{}': {why}", shown(name)))?;
            std::os::unix::fs::symlink(target, &path)
                .with_context(|| format!("{what}: cannot unpack entry '{}'", shown(name)))?;
        }
        Ok(())
    }

    /// Follows `target` from the folder of the link `name`, one component at a time, through
    /// the archive's links and any link on disk; fails if any step leaves the target folder.
    fn resolve(&self, name: &Path, target: &Path) -> Result<(), String> {
        let mut at: Vec<OsString> = match name.parent() {
            Some(parent) => parent.iter().map(OsString::from).collect(),
            None => Vec::new(),
        };
        let mut pending = steps(target)?;
        let mut hops = 0;
        while let Some(step) = pending.pop_front() {
            let Some(part) = step else {
                if at.pop().is_none() {
                    return Err("leads outside the target folder".into());
                }
                continue;
            };
            at.push(part);
            let here: PathBuf = at.iter().collect();
            let next = match self.links.get(&here) {
                Some(next) => Some(next.clone()),
                None => fs::read_link(self.root.join(&here)).ok(),
            };
            if let Some(next) = next {
                hops += 1;
                if hops > MAX_LINK_HOPS {
                    return Err("goes through a cycle of symbolic links".into());
                }
                // The link's target takes the place of its name in the walk.
                at.pop();
                for step in steps(&next)?.into_iter().rev() {
                    pending.push_front(step);
                }
            }
        }
        Ok(())
    }
}

/// A link target as steps: `Some(name)` goes down, `None` goes up; `.` is dropped.
fn steps(target: &Path) -> Result<VecDeque<Option<OsString>>, String> {
    target
        .components()
        .filter(|c| *c != Component::CurDir)
        .map(|c| match c {
            Component::Normal(part) => Ok(Some(part.to_owned())),
            Component::ParentDir => Ok(None),
            _ => Err("leads to an absolute path".to_string()),
        })
        .collect()
}

/// How many characters of a name from the archive a message shows.
const MAX_NAME_CHARS: usize = 200;

/// A name from the archive (or a path holding one) as messages show it: control characters
/// escaped, so a name cannot forge a log line, and at most [`MAX_NAME_CHARS`] characters.
fn shown(path: &Path) -> String {
    let text = path.to_string_lossy();
    let mut out = String::new();
    for c in text.chars().take(MAX_NAME_CHARS) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if text.chars().count() > MAX_NAME_CHARS {
        out.push_str("...");
    }
    out
}

/// An entry name as a relative path of plain components; `..` and absolute names are refused.
fn relative(name: &Path) -> Result<PathBuf, String> {
    let mut out = PathBuf::new();
    for component in name.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err("it contains '..'".into()),
            Component::RootDir | Component::Prefix(_) => return Err("it is an absolute path".into()),
        }
    }
    Ok(out)
}

/// Counts the compressed bytes read, for the ratio cap.
struct Counted<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

#[cfg(test)]
#[path = "archive_tests.rs"]
mod tests;
