//! Unit tests of what needs no engine: the generated Dockerfile and the reading of `ldd`'s
//! output. Building images is tested in tests/e2e/docker.rs and tests/e2e/authoring.rs.

use std::path::PathBuf;

use super::runtime::parse_ldd;
use super::*;

fn labels() -> StageLabels {
    StageLabels {
        name: "my \"stage\"".into(),
        version: "1.2.3".into(),
        library: "libmy_stage.so".into(),
        abi: "1.0".into(),
    }
}

#[test]
fn the_dockerfile_copies_the_stage_to_its_fixed_path_with_every_label() {
    let text = stage_dockerfile("modelstage/runtime:0.1.0", "stage.so", &labels());
    assert!(text.contains("\nFROM modelstage/runtime:0.1.0\n"), "{text}");
    assert!(
        text.contains("\nCOPY stage.so /opt/modelstage/stage.so\n"),
        "{text}"
    );
    assert!(
        text.contains("ENV MODELSTAGE_STAGE=/opt/modelstage/stage.so"),
        "{text}"
    );
    assert!(text.contains("com.amazonaws.sagemaker.capabilities.accept-bind-to-port=\"true\""));
    // Both capabilities: a stage image can serve a serial pipeline and a multi-model endpoint.
    assert!(
        text.contains("com.amazonaws.sagemaker.capabilities.multi-models=\"true\""),
        "{text}"
    );
    // A quote in a value cannot end the label early.
    assert!(
        text.contains(r#"com.modelstage.stage.name="my \"stage\"""#),
        "{text}"
    );
    assert!(text.contains("com.modelstage.abi.version=\"1.0\""), "{text}");
    assert!(
        text.contains("ENTRYPOINT [\"/usr/local/bin/modelstage\"]"),
        "{text}"
    );
}

#[test]
fn ldd_output_gives_every_resolved_library_and_the_loader() {
    let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f44)\n\
                \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f44)\n\
                \t/lib64/ld-linux-x86-64.so.2 (0x00007f44)\n";
    assert_eq!(
        parse_ldd(text),
        [
            PathBuf::from("/lib/x86_64-linux-gnu/libgcc_s.so.1"),
            PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
            PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
        ]
    );
}

#[test]
fn no_stage_is_an_error_that_says_what_to_pass() {
    let err = build(ImageArgs {
        tag: Some("x:latest".into()),
        ..ImageArgs::default()
    })
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("no stage given: pass the stage library with --stage"),
        "{err}"
    );
}

#[test]
fn a_missing_library_is_an_error_that_says_to_build_it() {
    let err = build(ImageArgs {
        stage: Some("/nonexistent/libnothing.so".into()),
        tag: Some("x:latest".into()),
        ..ImageArgs::default()
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("does not exist: build it first"), "{err}");
}

#[test]
fn the_runtime_tag_carries_this_version() {
    assert_eq!(
        runtime_tag(),
        format!("modelstage/runtime:{}", env!("CARGO_PKG_VERSION"))
    );
}
