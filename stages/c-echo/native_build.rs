//! Build-script helper shared by the crates that compile a stage from C or
//! C++ source (`stages/c-echo`, the C++ test fixture): one compiler call per
//! library, against the committed header only, with warnings as errors, and
//! the library put next to the Rust stages in `target/<profile>/`.

use std::path::PathBuf;
use std::process::Command;

/// Compiles `source` (C, or C++ when it ends in `.cpp`) into `target/<profile>/<library>` once per
/// `(library, extra flags)` pair in `outputs`, with `include` (the folder of
/// `modelstage.h`) on the include path; both paths are relative to the crate.
pub fn build(source: &str, include: &str, outputs: &[(&str, &[&str])]) {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let source = manifest.join(source);
    let include = manifest.join(include);
    println!("cargo:rerun-if-changed={}", source.display());
    println!(
        "cargo:rerun-if-changed={}",
        include.join("modelstage.h").display()
    );

    // OUT_DIR is target/<profile>/build/<crate>-<hash>/out: the libraries go
    // three levels up, where cargo puts the Rust cdylibs.
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let profile_dir = out_dir.ancestors().nth(3).expect("target/<profile>");
    let cpp = source.extension().is_some_and(|e| e == "cpp");
    let std = if cpp { "-std=c++17" } else { "-std=c11" };
    let compiler = cc::Build::new().cpp(cpp).get_compiler();
    for (library, extra) in outputs {
        let status = Command::new(compiler.path())
            .args([std, "-Wall", "-Wextra", "-Werror", "-O2", "-fPIC", "-shared"])
            .args(*extra)
            .arg("-I")
            .arg(&include)
            .arg("-o")
            .arg(profile_dir.join(library))
            .arg(&source)
            .status()
            .expect("run the compiler");
        assert!(
            status.success(),
            "compiling {} into {library} failed",
            source.display()
        );
    }
}
