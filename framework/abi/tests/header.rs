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
