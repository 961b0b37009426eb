//! `c-echo`: the echo stage written in C from `modelstage.h` alone
//! (`stages/c-echo/echo.c`). This crate only exists so that the workspace
//! build compiles it: `build.rs` turns `echo.c` into `libc_echo.so` next to
//! the Rust stages in `target/<profile>/`.
