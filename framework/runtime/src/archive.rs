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

use flate2::read::GzDecoder;
use tar::{Archive, EntryType};

/// Why an archive was not unpacked. Every message names the archive (or the setting) and says
/// what was refused or failed; a limit's message names the variable that raises it.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// A `MODELSTAGE_UNPACK_MAX_*` variable that is not a whole number.
    #[error("{var} must be a whole number (0 for no limit), got '{text}'")]
    BadLimit {
        /// The variable.
        var: &'static str,
        /// Its value.
        text: String,
    },
    /// A file or folder operation failed; `context` says which, on which path.
    #[error("{context}: {error}")]
    Io {
        /// `cannot open model.tar.gz`, `model.tar.gz: cannot read entry 3`, ...
        context: String,
        /// The system's reason.
        error: std::io::Error,
    },
    /// An entry that would not stay inside the target folder, or of a kind not unpacked.
    #[error("{archive}: refusing entry '{entry}': {why}")]
    Refused {
        /// The archive.
        archive: String,
        /// The entry's name, as messages show names from an archive.
        entry: String,
        /// Why.
        why: Refusal,
    },
    /// More entries than [`Limits::max_entries`].
    #[error(
        "{archive}: refusing an archive of more than {max} entries ({MAX_ENTRIES_VAR}; set it \
         higher, or to 0 for no limit, to unpack it)"
    )]
    TooManyEntries {
        /// The archive.
        archive: String,
        /// The limit.
        max: u64,
    },
    /// More bytes than [`Limits::max_bytes`].
    #[error(
        "{archive}: refusing to unpack more than {max} bytes ({MAX_BYTES_VAR}; set it \
         higher, or to 0 for no limit, to unpack a larger model)"
    )]
    TooManyBytes {
        /// The archive.
        archive: String,
        /// The limit.
        max: u64,
    },
    /// More unpacked bytes per compressed byte than [`Limits::max_ratio`].
    #[error(
        "{archive}: refusing to unpack more than {max} bytes per compressed byte (a \
         gzip bomb?) ({MAX_RATIO_VAR}; set it higher, or to 0 for no limit, if the model \
         really compresses this well)"
    )]
    TooHighRatio {
        /// The archive.
        archive: String,
        /// The limit.
        max: u64,
    },
}

/// Why one entry is refused. Paths in it are shown as messages show names from an archive.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// A name with `..`.
    #[error("it contains '..'")]
    ParentDir,
    /// An absolute name.
    #[error("it is an absolute path")]
    Absolute,
    /// An entry named like the target folder itself (`.`) that is not a folder.
    #[error("it names the target folder itself")]
    TargetFolder,
    /// A name through a link entry of the same archive.
    #[error("it goes through '{0}', a symbolic link of the same archive")]
    ThroughArchiveLink(String),
    /// A name through a link already on disk.
    #[error("it goes through '{0}', a symbolic link")]
    ThroughLink(String),
    /// A folder of the name that is a link on disk.
    #[error("'{0}' is a symbolic link, not a folder")]
    LinkNotFolder(String),
    /// A folder of the name that is a file on disk.
    #[error("'{0}' is a file, not a folder")]
    FileNotFolder(String),
    /// A file where a folder was unpacked before.
    #[error("a folder of that name was unpacked before it")]
    FolderBefore,
    /// A file operation on the way failed (`cannot create …`).
    #[error("{context}: {error}")]
    Io {
        /// What was done on which path.
        context: String,
        /// The system's reason.
        error: std::io::Error,
    },
    /// A symbolic link without a target.
    #[error("a symbolic link without a target")]
    SymlinkWithoutTarget,
    /// A symbolic link to an absolute path.
    #[error("a symbolic link to the absolute path '{0}'")]
    AbsoluteSymlink(String),
    /// A symbolic link whose resolution leaves the folder, loops or turns absolute.
    #[error("a symbolic link to '{target}', which {why}")]
    Symlink {
        /// The link's target.
        target: String,
        /// Why it is refused.
        why: Box<Refusal>,
    },
    /// A hard link without a target.
    #[error("a hard link without a target")]
    HardLinkWithoutTarget,
    /// A hard link to something other than a file unpacked before it.
    #[error("a hard link to '{target}', which {why}")]
    HardLink {
        /// The link's target.
        target: String,
        /// Why it is refused.
        why: Box<Refusal>,
    },
    /// (A link target that) is a symbolic link.
    #[error("is a symbolic link")]
    IsSymlink,
    /// (A hard link target that) is not a file unpacked before it.
    #[error("is not a file unpacked before it")]
    NotUnpackedBefore,
    /// (A link target that) leads outside the target folder.
    #[error("leads outside the target folder")]
    LeadsOutside,
    /// (A link target that) goes round a cycle of links.
    #[error("goes through a cycle of symbolic links")]
    LinkCycle,
    /// (A link target that) leads to an absolute path.
    #[error("leads to an absolute path")]
    LeadsToAbsolute,
    /// A device, FIFO or other kind of entry.
    #[error("entries of type {0} are not unpacked")]
    Kind(String),
}

/// `error` with the context `context` makes (only on the error path), for [`ArchiveError::Io`].
fn io(context: impl FnOnce() -> String) -> impl FnOnce(std::io::Error) -> ArchiveError {
    move |error| ArchiveError::Io {
        context: context(),
        error,
    }
}

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
    pub fn from_env() -> Result<Limits, ArchiveError> {
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
            *field = text.trim().parse().map_err(|_| ArchiveError::BadLimit {
                var,
                text: text.clone(),
            })?;
        }
        Ok(limits)
    }
}

/// Unpacks `tar_gz` into `dest` (created if needed) within the limits of [`Limits::from_env`].
pub fn unpack(tar_gz: &Path, dest: &Path) -> Result<(), ArchiveError> {
    unpack_with(tar_gz, dest, &Limits::from_env()?)
}

/// Unpacks `tar_gz` into `dest` (created if needed) within `limits`.
pub fn unpack_with(tar_gz: &Path, dest: &Path, limits: &Limits) -> Result<(), ArchiveError> {
    let file = File::open(tar_gz).map_err(io(|| format!("cannot open {}", tar_gz.display())))?;
    let created = !dest.exists();
    fs::create_dir_all(dest).map_err(io(|| format!("cannot create {}", dest.display())))?;
    let result = dest
        .canonicalize()
        .map_err(io(|| format!("cannot resolve {}", dest.display())))
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
    pub fn unpack(tar_gz: &Path) -> Result<PrivateModel, ArchiveError> {
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
            .map_err(io(|| {
                format!("cannot create a private folder under {}", base.display())
            }))?;
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
    fn run(&mut self, file: File) -> Result<(), ArchiveError> {
        let counted = Counted {
            inner: file,
            count: Rc::clone(&self.compressed),
        };
        let mut archive = Archive::new(GzDecoder::new(counted));
        let what = self.what.clone();
        let entries = archive
            .entries()
            .map_err(io(|| format!("{what} is not a readable tar.gz")))?;
        for (index, entry) in entries.enumerate() {
            let entry = entry.map_err(io(|| format!("{what}: cannot read entry {}", index + 1)))?;
            self.entries += 1;
            if self.limits.max_entries > 0 && self.entries > self.limits.max_entries {
                return Err(ArchiveError::TooManyEntries {
                    archive: what,
                    max: self.limits.max_entries,
                });
            }
            self.entry(entry, index)?;
        }
        self.create_links()
    }

    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>, index: usize) -> Result<(), ArchiveError> {
        let what = self.what.clone();
        let name = entry
            .path()
            .map_err(io(|| {
                format!("{what}: entry {} has an unreadable name", index + 1)
            }))?
            .into_owned();
        let refuse = |why: Refusal| refused(&what, &name, why);
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
                _ => Err(refuse(Refusal::TargetFolder)),
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
                    .ok_or_else(|| refuse(Refusal::SymlinkWithoutTarget))?
                    .into_owned();
                if target.has_root() {
                    return Err(refuse(Refusal::AbsoluteSymlink(shown(&target))));
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
                    .ok_or_else(|| refuse(Refusal::HardLinkWithoutTarget))?
                    .into_owned();
                let hard = |why: Refusal| {
                    refuse(Refusal::HardLink {
                        target: shown(&target),
                        why: Box::new(why),
                    })
                };
                let target_rel = relative(&target).map_err(hard)?;
                if self.links.contains_key(&target_rel) {
                    return Err(hard(Refusal::IsSymlink));
                }
                self.through_no_link(&target_rel).map_err(hard)?;
                let source = self.root.join(&target_rel);
                match fs::symlink_metadata(&source) {
                    Ok(meta) if meta.is_file() => {}
                    _ => return Err(hard(Refusal::NotUnpackedBefore)),
                }
                self.links.remove(&rel);
                let path = self.free_name(&rel).map_err(refuse)?;
                fs::hard_link(&source, &path)
                    .map_err(io(|| format!("{what}: cannot unpack entry '{}'", shown(&name))))
            }
            other => Err(refuse(Refusal::Kind(format!("{other:?}")))),
        }
    }

    /// Refuses a name that passes through a symbolic link: a link entry of this archive, or a
    /// link already on disk.
    fn through_no_link(&self, rel: &Path) -> Result<(), Refusal> {
        let mut prefix = PathBuf::new();
        let mut components = rel.components().peekable();
        while let Some(component) = components.next() {
            if components.peek().is_none() {
                break;
            }
            prefix.push(component);
            if self.links.contains_key(&prefix) {
                return Err(Refusal::ThroughArchiveLink(shown(&prefix)));
            }
            if fs::symlink_metadata(self.root.join(&prefix)).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(Refusal::ThroughLink(shown(&prefix)));
            }
        }
        Ok(())
    }

    /// Creates the folders of `rel` one at a time, never following a link.
    fn make_dirs(&self, rel: &Path) -> Result<(), Refusal> {
        let mut path = self.root.clone();
        for component in rel.components() {
            path.push(component);
            match fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_dir() => {}
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(Refusal::LinkNotFolder(shown(&path)))
                }
                Ok(_) => return Err(Refusal::FileNotFolder(shown(&path))),
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    fs::create_dir(&path).map_err(refusal_io("cannot create", &path))?
                }
                Err(e) => return Err(refusal_io("cannot read", &path)(e)),
            }
        }
        Ok(())
    }

    /// The path of `rel`, its folders created and whatever had the name (not a folder) removed.
    fn free_name(&self, rel: &Path) -> Result<PathBuf, Refusal> {
        if let Some(parent) = rel.parent() {
            self.make_dirs(parent)?;
        }
        let path = self.root.join(rel);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => Err(Refusal::FolderBefore),
            Ok(_) => fs::remove_file(&path).map_err(refusal_io("cannot replace", &path)),
            Err(_) => Ok(()),
        }
        .map(|()| path)
    }

    /// A new file at `rel`: `create_new` (`O_EXCL`) never follows a link.
    fn fresh_file(&self, rel: &Path, mode: u32) -> Result<File, Refusal> {
        let path = self.free_name(rel)?;
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode | 0o600)
            .open(&path)
            .map_err(refusal_io("cannot create", &path))
    }

    /// Copies one file's data, checking the byte and ratio caps as it streams.
    fn copy(&mut self, from: &mut impl Read, to: &mut File, name: &Path) -> Result<(), ArchiveError> {
        let what = self.what.clone();
        let failed = |error| ArchiveError::Io {
            context: format!("{what}: cannot unpack entry '{}'", shown(name)),
            error,
        };
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = from.read(&mut buf).map_err(failed)?;
            if n == 0 {
                return Ok(());
            }
            self.bytes += n as u64;
            self.check_size()?;
            to.write_all(&buf[..n]).map_err(failed)?;
        }
    }

    fn check_size(&self) -> Result<(), ArchiveError> {
        let Limits {
            max_bytes, max_ratio, ..
        } = *self.limits;
        let archive = || self.what.clone();
        if max_bytes > 0 && self.bytes > max_bytes {
            return Err(ArchiveError::TooManyBytes {
                archive: archive(),
                max: max_bytes,
            });
        }
        let compressed = self.compressed.get().max(1);
        if max_ratio > 0 && self.bytes > RATIO_FLOOR_BYTES && self.bytes / compressed > max_ratio {
            return Err(ArchiveError::TooHighRatio {
                archive: archive(),
                max: max_ratio,
            });
        }
        Ok(())
    }

    /// Checks every recorded link against the whole tree, then creates them all.
    fn create_links(&mut self) -> Result<(), ArchiveError> {
        let what = &self.what;
        for (name, target) in &self.links {
            let refuse = |why: Refusal| refused(what, name, why);
            self.through_no_link(name).map_err(refuse)?;
            self.resolve(name, target).map_err(|why| {
                refuse(Refusal::Symlink {
                    target: shown(target),
                    why: Box::new(why),
                })
            })?;
        }
        for (name, target) in &self.links {
            let path = self.free_name(name).map_err(|why| refused(what, name, why))?;
            std::os::unix::fs::symlink(target, &path)
                .map_err(io(|| format!("{what}: cannot unpack entry '{}'", shown(name))))?;
        }
        Ok(())
    }

    /// Follows `target` from the folder of the link `name`, one component at a time, through
    /// the archive's links and any link on disk; fails if any step leaves the target folder.
    fn resolve(&self, name: &Path, target: &Path) -> Result<(), Refusal> {
        let mut at: Vec<OsString> = match name.parent() {
            Some(parent) => parent.iter().map(OsString::from).collect(),
            None => Vec::new(),
        };
        let mut pending = steps(target)?;
        let mut hops = 0;
        while let Some(step) = pending.pop_front() {
            let Some(part) = step else {
                if at.pop().is_none() {
                    return Err(Refusal::LeadsOutside);
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
                    return Err(Refusal::LinkCycle);
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
fn steps(target: &Path) -> Result<VecDeque<Option<OsString>>, Refusal> {
    target
        .components()
        .filter(|c| *c != Component::CurDir)
        .map(|c| match c {
            Component::Normal(part) => Ok(Some(part.to_owned())),
            Component::ParentDir => Ok(None),
            _ => Err(Refusal::LeadsToAbsolute),
        })
        .collect()
}

/// Entry `name` of archive `what` refused for `why`.
fn refused(what: &str, name: &Path, why: Refusal) -> ArchiveError {
    ArchiveError::Refused {
        archive: what.to_string(),
        entry: shown(name),
        why,
    }
}

/// `error` of `action` (`cannot create`) on `path`, for [`Refusal::Io`].
fn refusal_io<'a>(action: &'a str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Refusal + 'a {
    move |error| Refusal::Io {
        context: format!("{action} {}", shown(path)),
        error,
    }
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
fn relative(name: &Path) -> Result<PathBuf, Refusal> {
    let mut out = PathBuf::new();
    for component in name.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err(Refusal::ParentDir),
            Component::RootDir | Component::Prefix(_) => return Err(Refusal::Absolute),
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
