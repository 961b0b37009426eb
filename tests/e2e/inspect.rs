//! `modelstage inspect`: what the loader sees, and exactly why it refuses a
//! library.

use std::process::Command;

use crate::support::{bin, stage_lib};

fn inspect(lib: &std::path::Path) -> (bool, String, String) {
    let out = Command::new(bin()).arg("inspect").arg(lib).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn inspect_shows_the_descriptor_and_hooks_of_a_rust_stage() {
    let (ok, out, err) = inspect(&stage_lib("echo"));
    assert!(ok, "{err}");
    assert!(out.contains("stage:      echo 0.1.0"), "{out}");
    assert!(out.contains("abi:        1.1"), "{out}");
    assert!(out.contains("threading:  shared"), "{out}");
    assert!(
        out.contains(
            "model_fn yes, input_fn yes, predict_fn yes, output_fn yes, transform_fn no, train_fn yes"
        ),
        "{out}"
    );
}

#[test]
fn inspect_shows_the_c_stage() {
    let (ok, out, err) = inspect(&stage_lib("c_echo"));
    assert!(ok, "{err}");
    assert!(out.contains("stage:      c-echo 0.1.0"), "{out}");
    assert!(out.contains("input_fn no, predict_fn yes, output_fn no"), "{out}");
}

#[test]
fn a_library_that_is_not_a_stage_is_refused_by_name() {
    let libm = [
        "/lib/x86_64-linux-gnu/libm.so.6",
        "/usr/lib/x86_64-linux-gnu/libm.so.6",
        "/lib64/libm.so.6",
    ]
    .into_iter()
    .map(std::path::PathBuf::from)
    .find(|p| p.exists())
    .expect("libm.so.6");
    let (ok, _, err) = inspect(&libm);
    assert!(!ok);
    assert!(
        err.contains("libm.so.6 has no modelstage_abi descriptor: it is not a modelstage stage"),
        "{err}"
    );
}

#[test]
fn broken_fixture_stages_are_refused_with_their_reason() {
    let cases = [
        (
            "no_descriptor",
            "libno_descriptor.so has no modelstage_abi descriptor",
        ),
        (
            "wrong_major",
            "was built for stage ABI 2.x but this modelstage speaks ABI 1.1",
        ),
        (
            "newer_minor",
            "needs stage ABI 1.99 but this modelstage only speaks ABI 1.1",
        ),
        ("missing_predict", "does not export predict_fn"),
    ];
    for (name, expected) in cases {
        let (ok, _, err) = inspect(&stage_lib(name));
        assert!(!ok, "{name} was accepted");
        assert!(err.contains(expected), "{name}: {err}");
    }
}

#[test]
fn a_missing_file_is_reported_not_panicked_on() {
    let (ok, _, err) = inspect(std::path::Path::new("target/no-such-stage.so"));
    assert!(!ok);
    assert!(err.contains("cannot open target/no-such-stage.so"), "{err}");
}
