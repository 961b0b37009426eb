//! What a stage author meets first: `--version` with the stage ABI, C and C++
//! stages built against the header with warnings as errors and served, the
//! hint for a C++ stage without `extern "C"`, model-file errors that name the
//! file, and `train` naming a missing `inputdataconfig.json`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::*;

#[test]
fn version_names_the_binary_and_the_stage_abi() {
    let out = Command::new(bin()).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim_end(),
        format!(
            "modelstage {} (stage ABI {}.{})",
            env!("CARGO_PKG_VERSION"),
            modelstage_abi::MODELSTAGE_ABI_MAJOR,
            modelstage_abi::MODELSTAGE_ABI_MINOR
        )
    );
}

#[test]
fn the_c_and_the_cpp_stage_serve() {
    let dir = tempdir();
    // Both are compiled by the workspace build with -Wall -Wextra -Werror.
    let c = serve(&stage_lib("c_echo"), dir.path(), &[]);
    let (status, headers, out) = post(&c.url, "text/csv", None, b"1,2");
    assert_eq!((status, out.as_slice()), (200, b"1,2".as_slice()));
    assert_eq!(header(&headers, "content-type"), Some("text/csv"));

    let cpp = serve(&stage_lib("cpp_echo"), dir.path(), &[]);
    let (status, headers, out) = post(&cpp.url, "application/octet-stream", None, b"\x00from c++\xff");
    assert_eq!((status, out.as_slice()), (200, b"\x00from c++\xff".as_slice()));
    assert_eq!(header(&headers, "content-type"), Some("text/plain"));
    // An error filled in from C++ keeps its status, message and record.
    let (status, _, out) = post(&cpp.url, "text/plain", None, b"fail");
    assert_eq!(status, 400);
    let e = json(&out);
    assert_eq!(e["stage"], "cpp-echo");
    assert_eq!(e["hook"], "transform_fn");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("cpp-echo was asked to fail"),
        "{e}"
    );
    assert_eq!(e["record"], 0, "{e}");
}

#[test]
fn inspect_says_extern_c_when_the_hooks_have_cpp_names() {
    let lib = stage_lib("cpp_echo_mangled");
    let out = Command::new(bin()).arg("inspect").arg(&lib).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("does not export model_fn"), "{err}");
    assert!(
        err.contains("exports model_fn, transform_fn only under C++ names"),
        "{err}"
    );
    assert!(err.contains("(e.g. _Z8model_fn15ModelstageBytes"), "{err}");
    assert!(err.contains("declare them extern \"C\""), "{err}");
    assert!(err.contains("#define MODELSTAGE_DECLARE_HOOKS"), "{err}");

    // The same source built with the header's declarations is a stage, and a
    // C stage's missing hook gets no C++ hint.
    let out = Command::new(bin())
        .arg("inspect")
        .arg(stage_lib("cpp_echo"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new(bin())
        .arg("inspect")
        .arg(stage_lib("missing_predict"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not export predict_fn"), "{err}");
    assert!(!err.contains("C++"), "{err}");
}

#[test]
fn a_missing_model_file_is_named_in_the_model_fn_error() {
    let dir = tempdir();
    let mut server = spawn_serve(
        &[
            "--stage",
            stage_lib("linear_learner").to_str().unwrap(),
            "--model-dir",
            dir.path().to_str().unwrap(),
        ],
        &[],
    );
    let status = server
        .wait_exit(Duration::from_secs(30))
        .expect("serve should exit");
    assert!(!status.success());
    let expected = format!(
        "model_fn: reading {}: No such file or directory",
        dir.path().join("linear-learner.json").display()
    );
    let log = server.wait_for_log(&expected);
    assert!(log.contains(&expected), "{log}");
}

#[test]
fn train_with_data_but_no_inputdataconfig_names_the_file_and_its_shape() {
    let dir = tempdir();
    let base = dir.path().join("opt/ml");
    std::fs::create_dir_all(base.join("input/config")).unwrap();
    std::fs::write(base.join("input/config/hyperparameters.json"), "{}").unwrap();
    std::fs::create_dir_all(base.join("input/data/train")).unwrap();
    std::fs::write(base.join("input/data/train/part.csv"), "1,2\n").unwrap();

    let mut cmd = Command::new(bin());
    cmd.arg("train").arg("--stage").arg(stage_lib("echo"));
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        if text.starts_with("SM_") || text.starts_with("SAGEMAKER_") || text == "MODELSTAGE_STAGE" {
            cmd.env_remove(&name);
        }
    }
    let out = cmd.env("SAGEMAKER_BASE_DIR", &base).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let failure = std::fs::read_to_string(base.join("output/failure")).unwrap();
    let file = Path::new(&base).join("input/config/inputdataconfig.json");
    for needle in [
        format!("{} is missing", file.display()),
        "holds data for 'train'".to_string(),
        r#"{"train":{"ContentType":"text/csv","TrainingInputMode":"File"}}"#.to_string(),
        "modelstage fit --keep-tree".to_string(),
    ] {
        assert!(
            failure.contains(&needle),
            "failure file lacks {needle}: {failure}"
        );
        assert!(stderr.contains(&needle), "stderr lacks {needle}: {stderr}");
    }
    assert!(!base.join("output/success").exists());
}
