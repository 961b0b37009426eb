//! Compiles `echo.c` into `libc_echo.so` beside the Rust stages, with the C
//! compiler the `cc` crate finds, against the committed header only.

#[path = "native_build.rs"]
mod native_build;

fn main() {
    native_build::build("echo.c", "../../framework/abi/include", &[("libc_echo.so", &[])]);
}
