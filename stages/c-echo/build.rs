//! Compiles `echo.c` into `libc_echo.so` beside the Rust stages, with the C
//! compiler the `cc` crate finds, against the committed header only.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let source = manifest.join("echo.c");
    let include = manifest.join("../../framework/abi/include");
    println!("cargo:rerun-if-changed={}", source.display());
    println!(
        "cargo:rerun-if-changed={}",
        include.join("modelstage.h").display()
    );

    // OUT_DIR is target/<profile>/build/c-echo-<hash>/out: the library goes
    // three levels up, where cargo puts the Rust cdylibs.
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let profile_dir = out_dir
        .ancestors()
        .nth(3)
        .expect("target/<profile>")
        .to_path_buf();
    let library = profile_dir.join("libc_echo.so");

    let compiler = cc::Build::new().get_compiler();
    let status = Command::new(compiler.path())
        .args([
            "-std=c11", "-Wall", "-Wextra", "-Werror", "-O2", "-fPIC", "-shared",
        ])
        .arg("-I")
        .arg(&include)
        .arg("-o")
        .arg(&library)
        .arg(&source)
        .status()
        .expect("run the C compiler");
    assert!(status.success(), "compiling {} failed", source.display());
}
