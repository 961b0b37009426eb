//! `{{name}}`: a modelstage stage written in C (`src/stage.c`). This crate only exists so that
//! cargo builds it: `build.rs` turns `src/stage.c` into `target/<profile>/lib{{lib}}.so`, and
//! `cargo test` runs `tests/` against that library.
