//! Checks that the committed C header is exactly what cbindgen generates from
//! the Rust definitions. Run with `MODELSTAGE_BLESS=1` to rewrite the header.

use std::path::PathBuf;

#[test]
fn committed_header_matches_the_rust_definitions() {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not read framework/abi/src/lib.rs")
        .write(&mut generated);
    let generated = String::from_utf8(generated).expect("header is UTF-8");
    let header_path = crate_dir.join("include/modelstage.h");
    if std::env::var_os("MODELSTAGE_BLESS").is_some() {
        std::fs::write(&header_path, &generated).expect("write header");
        return;
    }
    let committed = std::fs::read_to_string(&header_path).unwrap_or_default();
    assert!(
        committed == generated,
        "framework/abi/include/modelstage.h has drifted from framework/abi/src/lib.rs; \
         run `MODELSTAGE_BLESS=1 cargo test -p modelstage-abi --test header` and commit the result"
    );
}

/// A translation unit that uses every macro of the header, as C and as C++.
const USES_EVERY_MACRO: &str = r#"
#define MODELSTAGE_DECLARE_HOOKS
#include "modelstage.h"

int32_t model_fn(ModelstageBytes model_dir, ModelstageValue *model, ModelstageError *error) {
    ModelstageBytes none = ModelstageBytes_EMPTY;
    ModelstageError fresh = ModelstageError_EMPTY;
    ModelstageResponse response = ModelstageResponse_EMPTY;
    ModelstageOwnedBytes bytes = ModelstageOwnedBytes_EMPTY;
    (void)model_dir;
    *model = ModelstageValue_EMPTY;
    error->message = bytes;
    error->record = fresh.record;
    return (int32_t)(none.len + response.body.len + response.struct_size - sizeof(ModelstageResponse)
                     + MODELSTAGE_ABI_MAJOR + MODELSTAGE_ABI_MINOR - 1);
}
"#;

/// The compiler named by `var` (as `cc` reads `CC` and `CXX`), or `default`.
fn compiler(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_string())
}

#[test]
fn header_compiles_as_c_and_as_cpp_with_warnings_as_errors() {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("modelstage-header");
    std::fs::create_dir_all(&dir).unwrap();
    for (compiler, file, std) in [
        (compiler("CC", "cc"), "uses.c", "-std=c11"),
        (compiler("CXX", "c++"), "uses.cpp", "-std=c++11"),
    ] {
        let source = dir.join(file);
        std::fs::write(&source, USES_EVERY_MACRO).unwrap();
        let output = std::process::Command::new(&compiler)
            .args([
                std,
                "-Wall",
                "-Wextra",
                "-Werror",
                "-pedantic",
                "-fsyntax-only",
                "-I",
            ])
            .arg(crate_dir.join("include"))
            .arg(&source)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {compiler}: {e} (ci/setup.sh names what is needed)"));
        assert!(
            output.status.success(),
            "modelstage.h does not compile with {compiler} {std}:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
