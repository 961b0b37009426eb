//! The runtime base image, `modelstage/runtime:<version>`: a `modelstage` binary and exactly the
//! C runtime it needs, imported from a tar (`docker import`), so no registry and no base image is
//! needed.
//!
//! What goes in, and why:
//! - the libraries `ldd` lists for the binary (the dynamic loader, libc, libgcc_s, libm): the
//!   binary stays dynamically linked, because a statically linked glibc binary that `dlopen()`s a
//!   Rust cdylib crashes; the host's glibc goes in, so build on the oldest glibc to support;
//! - `/etc/nsswitch.conf` with `hosts: files dns`: without it glibc asks DNS before `/etc/hosts`,
//!   so container names in a compose network resolve slowly or not at all;
//! - `/tmp` with mode 1777: `serve` talks to its worker processes over a Unix socket there;
//! - the binary at `/usr/local/bin/modelstage`, the exec-form entrypoint.
//!
//! The tar is deterministic (sorted, owner 0, one fixed time) and its fingerprint is a label, so an
//! unchanged runtime is not imported again and the stage images built on it keep their cache.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use super::dockerfile::STAGE_PATH;
use crate::docker::{cli, BIND_TO_PORT_LABEL, MULTI_MODELS_LABEL};

/// Where the binary lives in every image.
pub const BINARY_PATH: &str = "/usr/local/bin/modelstage";
/// The label holding the fingerprint of the imported tar.
const FINGERPRINT_LABEL: &str = "com.modelstage.runtime.fingerprint";
/// 2000-01-01T00:00:00Z: every file in the tar gets this time, so equal inputs give equal tars.
const FIXED_MTIME: u64 = 946_684_800;

/// Builds (or finds up to date) the runtime base image `tag` from `binary`; returns what it did.
pub fn build_runtime(binary: &Path, tag: &str) -> anyhow::Result<String> {
    crate::docker::engine_available()?;
    let libraries = runtime_libraries(&[binary])?;
    let work = tempfile::Builder::new()
        .prefix("modelstage-runtime-")
        .tempdir()
        .context("cannot create a temporary folder for the runtime image")?;
    let tarball = work.path().join("runtime.tar");
    write_tree(&tarball, binary, &libraries)?;
    let fingerprint = fingerprint(&tarball)?;
    let listed: Vec<String> = libraries.iter().map(|l| l.display().to_string()).collect();

    let current = cli::run(&[
        "image",
        "inspect",
        "--format",
        &format!("{{{{index .Config.Labels \"{FINGERPRINT_LABEL}\"}}}}"),
        tag,
    ])
    .unwrap_or_default();
    if current.trim() == fingerprint {
        return Ok(format!(
            "runtime image {tag} is up to date ({})",
            listed.join(" ")
        ));
    }

    let abi = format!(
        "{}.{}",
        modelstage_abi::MODELSTAGE_ABI_MAJOR,
        modelstage_abi::MODELSTAGE_ABI_MINOR
    );
    let changes = [
        "ENV PATH=/usr/local/bin:/usr/bin:/bin".to_string(),
        format!("ENV MODELSTAGE_STAGE={STAGE_PATH}"),
        format!("ENTRYPOINT [\"{BINARY_PATH}\"]"),
        "EXPOSE 8080".to_string(),
        format!("LABEL {BIND_TO_PORT_LABEL}=true"),
        format!("LABEL {MULTI_MODELS_LABEL}=true"),
        format!("LABEL com.modelstage.runtime.version={}", super::VERSION),
        format!("LABEL com.modelstage.runtime.abi={abi}"),
        format!("LABEL {FINGERPRINT_LABEL}={fingerprint}"),
        // Debug binaries make images for tests only; the benchmarks refuse them.
        format!(
            "LABEL com.modelstage.profile={}",
            if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            }
        ),
    ];
    let mut args: Vec<String> = vec!["import".into()];
    for change in &changes {
        args.push("--change".into());
        args.push(change.clone());
    }
    args.push("--message".into());
    args.push(format!(
        "modelstage runtime {}: {}",
        super::VERSION,
        listed.join(" ")
    ));
    args.push(tarball.display().to_string());
    args.push(tag.to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    cli::run(&args).map_err(|e| e.context(&format!("cannot import the runtime image {tag}")))?;
    Ok(format!(
        "built runtime image {tag} (modelstage {}, ABI {abi}): {}",
        super::VERSION,
        listed.join(" ")
    ))
}

/// Every library `ldd` resolves for the given ELF files, at the path it resolves to (the loader
/// at the path written in the ELF interpreter field), sorted. A library `ldd` cannot find is an
/// error: the image would fail at start-up with a less helpful message.
pub fn runtime_libraries(elves: &[&Path]) -> anyhow::Result<Vec<PathBuf>> {
    let mut libraries = Vec::new();
    for elf in elves {
        let out = Command::new("ldd")
            .arg(elf)
            .output()
            .context("cannot run `ldd`, which lists the libraries the image needs")?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            bail!("ldd {} failed: {}", elf.display(), text.trim());
        }
        let missing: Vec<&str> = text.lines().filter(|l| l.contains("not found")).collect();
        if !missing.is_empty() {
            bail!(
                "{} needs libraries this machine does not have: {}",
                elf.display(),
                missing.join("; ")
            );
        }
        libraries.extend(parse_ldd(&text));
    }
    libraries.sort();
    libraries.dedup();
    if libraries.is_empty() {
        bail!(
            "ldd listed no libraries for {}: a static binary cannot load stage libraries",
            elves
                .iter()
                .map(|e| e.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(libraries)
}

/// The absolute paths in `ldd` output: `libc.so.6 => /lib/.../libc.so.6 (0x...)` and
/// `/lib64/ld-linux-x86-64.so.2 (0x...)`; the vDSO has no file and is skipped.
pub(crate) fn parse_ldd(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                [_, "=>", path, ..] if path.starts_with('/') => Some(PathBuf::from(path)),
                [path, ..] if path.starts_with('/') => Some(PathBuf::from(path)),
                _ => None,
            }
        })
        .collect()
}

/// One file or folder of the image's tree.
enum Entry {
    Dir(u32),
    File { source: PathBuf, mode: u32 },
    Text(&'static str),
}

/// Writes the image's tree as a tar with fixed owners and times, in name order.
fn write_tree(tarball: &Path, binary: &Path, libraries: &[PathBuf]) -> anyhow::Result<()> {
    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    let mut files: Vec<(String, PathBuf)> = libraries
        .iter()
        .map(|l| (l.display().to_string(), l.clone()))
        .collect();
    files.push((BINARY_PATH.to_string(), binary.to_path_buf()));
    for (path, source) in files {
        add_parents(&mut entries, &path);
        // The file a link points to, stored under the name the loader asks for.
        let mode = std::fs::metadata(&source)
            .with_context(|| format!("cannot read {}", source.display()))
            .map(|m| {
                use std::os::unix::fs::PermissionsExt;
                m.permissions().mode() & 0o777 | 0o444
            })?;
        entries.insert(
            path.trim_start_matches('/').to_string(),
            Entry::File { source, mode },
        );
    }
    add_parents(&mut entries, STAGE_PATH);
    entries.insert("etc".into(), Entry::Dir(0o755));
    entries.insert("etc/nsswitch.conf".into(), Entry::Text("hosts: files dns\n"));
    entries.insert("tmp".into(), Entry::Dir(0o1777));

    let file = File::create(tarball).with_context(|| format!("cannot create {}", tarball.display()))?;
    let mut builder = tar::Builder::new(BufWriter::new(file));
    for (path, entry) in &entries {
        let mut header = tar::Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(FIXED_MTIME);
        match entry {
            Entry::Dir(mode) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(*mode);
                header.set_size(0);
                builder.append_data(&mut header, format!("{path}/"), std::io::empty())?;
            }
            Entry::File { source, mode } => {
                let data = File::open(source).with_context(|| format!("cannot read {}", source.display()))?;
                let size = data.metadata()?.len();
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(*mode);
                header.set_size(size);
                builder.append_data(&mut header, path, data)?;
            }
            Entry::Text(text) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o644);
                header.set_size(text.len() as u64);
                builder.append_data(&mut header, path, text.as_bytes())?;
            }
        }
    }
    builder
        .into_inner()
        .and_then(|mut w| w.flush())
        .with_context(|| format!("cannot write {}", tarball.display()))
}

/// Adds every folder above `path` (a path in the image) as a plain folder.
fn add_parents(entries: &mut BTreeMap<String, Entry>, path: &str) {
    let path = path.trim_start_matches('/');
    let mut end = 0;
    while let Some(i) = path[end..].find('/') {
        end += i;
        entries
            .entry(path[..end].to_string())
            .or_insert(Entry::Dir(0o755));
        end += 1;
    }
}

/// FNV-1a (64 bits) of the file: a stable fingerprint, enough to tell an unchanged tree.
fn fingerprint(path: &Path) -> anyhow::Result<String> {
    let mut file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        for byte in &buf[..n] {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    Ok(format!("{hash:016x}"))
}
