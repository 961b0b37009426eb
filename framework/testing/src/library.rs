//! Finding the stage library a test is about.
//!
//! `cargo test` builds the package's library with every crate type it declares, so a stage with
//! `crate-type = ["cdylib", "rlib"]` gets its `lib<name>.so` in `<target>/<profile>/deps/`, the
//! folder the test binary runs from (this holds for any `CARGO_TARGET_DIR`); `cargo build` copies
//! it up to `<target>/<profile>/`, where a C stage's `build.rs` also puts its library. The newer of
//! the two is the one under test. When neither is there (a package whose tests do not link its
//! library), [`built_library`] runs `cargo build --lib` for the package, with the same profile,
//! and looks again.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Error;

/// `<target>/<profile>/`: the folder cargo puts the libraries of this test build in, found from
/// the running test binary (`<target>/<profile>/deps/<test>-<hash>`).
pub fn profile_dir() -> Result<PathBuf, Error> {
    let exe = std::env::current_exe().map_err(Error::TestBinary)?;
    let deps = exe.parent().ok_or_else(|| Error::NoProfileDir(exe.clone()))?;
    let dir = if deps.file_name().is_some_and(|n| n == "deps") {
        deps.parent().unwrap_or(deps)
    } else {
        deps
    };
    Ok(dir.to_path_buf())
}

/// The file name cargo gives the shared library of crate `lib_name` on this platform.
pub fn library_file_name(lib_name: &str) -> String {
    let lib_name = lib_name.replace('-', "_");
    if cfg!(target_os = "macos") {
        format!("lib{lib_name}.dylib")
    } else {
        format!("lib{lib_name}.so")
    }
}

/// The built stage library `lib_name` of the package at `manifest_dir`, building it with
/// `cargo build --lib` when this test build has not (see the module documentation).
pub fn built_library(manifest_dir: &Path, lib_name: &str) -> Result<PathBuf, Error> {
    let dir = profile_dir()?;
    let file = library_file_name(lib_name);
    if let Some(found) = newest(&[dir.join("deps").join(&file), dir.join(&file)]) {
        return Ok(found);
    }
    let path = dir.join(&file);
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo
        .args(["build", "--lib", "--manifest-path"])
        .arg(manifest_dir.join("Cargo.toml"));
    if dir.file_name().is_some_and(|n| n == "release") {
        cargo.arg("--release");
    }
    // The same target folder as this test build.
    if let Some(target) = dir.parent() {
        cargo.env("CARGO_TARGET_DIR", target);
    }
    let status = cargo.status().map_err(|error| Error::Cargo {
        library: path.clone(),
        error,
    })?;
    if !status.success() || !path.is_file() {
        return Err(Error::NotBuilt {
            library: path,
            status,
        });
    }
    Ok(path)
}

/// The most recently modified of the files that exist.
fn newest(candidates: &[PathBuf]) -> Option<PathBuf> {
    candidates
        .iter()
        .filter_map(|path| {
            let modified = std::fs::metadata(path).ok()?.modified().ok()?;
            Some((modified, path))
        })
        .max_by_key(|(modified, _)| *modified)
        .map(|(_, path)| path.clone())
}
