//! Compiles `src/stage.c` against `include/modelstage.h` into `lib{{lib}}.so`, next to where
//! cargo puts Rust libraries (`target/<profile>/`), with the C compiler the `cc` crate finds.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let source = manifest.join("src/stage.c");
    let include = manifest.join("include");
    println!("cargo:rerun-if-changed={}", source.display());
    println!("cargo:rerun-if-changed={}", include.join("modelstage.h").display());

    // OUT_DIR is target/<profile>/build/{{name}}-<hash>/out: three levels up is target/<profile>.
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let profile_dir = out_dir.ancestors().nth(3).expect("target/<profile>").to_path_buf();
    let library = profile_dir.join("lib{{lib}}.so");

    let compiler = cc::Build::new().get_compiler();
    let status = Command::new(compiler.path())
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-O2", "-fPIC", "-shared"])
        .arg("-I")
        .arg(&include)
        .arg("-o")
        .arg(&library)
        .arg(&source)
        .status()
        .expect("run the C compiler");
    assert!(status.success(), "compiling {} failed", source.display());
}
