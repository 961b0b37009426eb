//! A stage author's path, outside this repository: `modelstage new` (Rust and C) in a temporary
//! folder with `--sdk-path` at this checkout, `cargo test` in the new project (its test runs the
//! stage through `modelstage-testing`), `cargo build`, `modelstage image`, then `modelstage fit` and
//! `modelstage deploy` with that image answering a request. Also every mistake `modelstage image`
//! and `modelstage new` refuse, with their messages.
//!
//! The new projects build into one shared target folder under this test build's (`<target>/
//! authoring`), with this workspace's `Cargo.lock` and `--offline`, so a run reuses what the last
//! one compiled and needs no network. The Docker steps follow `docker.rs`: without an engine they
//! are not run, except with `CI=true`, where that is a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use modelstage_local::docker as containers;

use crate::docker::{engine, run_ok, StopOnDrop};
use crate::support::*;

/// The target folder the generated projects share.
fn shared_target() -> PathBuf {
    bin().parent().unwrap().parent().unwrap().join("authoring")
}

fn modelstage(args: &[&str], dir: &Path) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run modelstage")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `cargo ARGS` in `project`, with the shared target folder; panics with cargo's output.
fn cargo(project: &Path, args: &[&str]) {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .arg("--offline")
        .current_dir(project)
        .env("CARGO_TARGET_DIR", shared_target())
        // The harness starts `serve` with this binary when a test asks for it.
        .env("MODELSTAGE_BIN", bin())
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "cargo {} in {} failed ({}):\n{}",
        args.join(" "),
        project.display(),
        out.status,
        text(&out)
    );
}

/// `modelstage new NAME --lang LANG --sdk-path <this checkout>` in `root`; returns the project.
fn new_project(root: &Path, name: &str, lang: &str) -> PathBuf {
    let checkout = repo_root();
    let out = modelstage(
        &[
            "new",
            name,
            "--lang",
            lang,
            "--sdk-path",
            checkout.to_str().unwrap(),
        ],
        root,
    );
    assert!(out.status.success(), "modelstage new failed:\n{}", text(&out));
    let project = root.join(name);
    // The versions this workspace builds with, so the shared target folder is reused.
    std::fs::copy(checkout.join("Cargo.lock"), project.join("Cargo.lock")).unwrap();
    project
}

/// The whole path for one language: new, test, build, image, fit and deploy in Docker.
fn author(name: &str, lang: &str) {
    let root = tempfile::tempdir().unwrap();
    let project = new_project(root.path(), name, lang);
    cargo(&project, &["test"]);
    cargo(&project, &["build"]);
    let library = shared_target()
        .join("debug")
        .join(format!("lib{}.so", name.replace('-', "_")));
    assert!(library.is_file(), "{} was not built", library.display());
    let info = run_ok(
        {
            let mut c = Command::new(bin());
            c.arg("inspect").arg(&library);
            c
        },
        "modelstage inspect",
    );
    assert!(info.contains(&format!("stage:      {name} 0.1.0")), "{info}");

    if !engine() {
        return;
    }
    let image = format!("modelstage-e2e/{name}:latest");
    let runtime = modelstage(&["image", "--runtime"], root.path());
    assert!(runtime.status.success(), "{}", text(&runtime));
    let built = modelstage(
        &["image", "--stage", library.to_str().unwrap(), "--tag", &image],
        root.path(),
    );
    assert!(built.status.success(), "{}", text(&built));
    let labels = containers::image_labels(&image).unwrap();
    assert_eq!(labels[containers::BIND_TO_PORT_LABEL], "true");
    assert_eq!(labels["com.modelstage.stage.name"], name);
    assert_eq!(labels["com.modelstage.stage.version"], "0.1.0");
    let abi = format!(
        "{}.{}",
        modelstage_abi::MODELSTAGE_ABI_MAJOR,
        modelstage_abi::MODELSTAGE_ABI_MINOR
    );
    assert_eq!(labels["com.modelstage.abi.version"], abi);

    // Train in the image, as a SageMaker training job would.
    let data = root.path().join("train.csv");
    std::fs::write(&data, "1,2\n3,4\n").unwrap();
    let output = root.path().join("out");
    let channel = format!("train={}", data.display());
    let fitted = modelstage(
        &[
            "fit",
            "--stage",
            &image,
            "--channel",
            &channel,
            "--hyperparameter",
            "scale=2",
            "--output-path",
            output.to_str().unwrap(),
            "--job-name",
            "authoring",
        ],
        root.path(),
    );
    assert!(fitted.status.success(), "{}", text(&fitted));
    let model = output.join("authoring/output/model.tar.gz");
    assert!(model.is_file(), "no {}:\n{}", model.display(), text(&fitted));

    // The image keeps the container contract: `modelstage check` on it, served with the model
    // just trained and trained again from a sample, passes every check that applies.
    let model_dir = root.path().join("model");
    modelstage_runtime::archive::unpack(&model, &model_dir).expect("unpack model.tar.gz");
    let sample = root.path().join("sample.csv");
    std::fs::write(&sample, "a\nb\n").unwrap();
    let train_sample = root.path().join("train-sample");
    std::fs::create_dir_all(train_sample.join("train")).unwrap();
    std::fs::copy(&data, train_sample.join("train/train.csv")).unwrap();
    std::fs::write(train_sample.join("hyperparameters.json"), r#"{"scale": "2"}"#).unwrap();
    let checked = modelstage(
        &[
            "check",
            &image,
            "--model-dir",
            model_dir.to_str().unwrap(),
            "--sample",
            sample.to_str().unwrap(),
            "--content-type",
            "text/csv",
            "--accept",
            "application/json",
            "--train-sample",
            train_sample.to_str().unwrap(),
            "--format",
            "json",
        ],
        root.path(),
    );
    let report: serde_json::Value = serde_json::from_slice(&checked.stdout)
        .unwrap_or_else(|e| panic!("check printed no JSON report ({e}):\n{}", text(&checked)));
    assert!(checked.status.success(), "{}", text(&checked));
    assert_eq!(report["passed"], true, "{report:#}");
    let outcomes: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["outcome"].as_str().unwrap())
        .collect();
    assert!(!outcomes.contains(&"fail"), "{report:#}");
    // Every check applies to an image with a sample and a training sample.
    assert!(outcomes.iter().all(|o| *o == "pass"), "{report:#}");

    // Serve it from the image and ask.
    let port = free_port();
    let deploy = StopOnDrop(
        Command::new(bin())
            .args(["deploy", "--stage", &image, "--model"])
            .arg(&model)
            .args(["--port", &port.to_string()])
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(120);
    while ping(&url) != Some(200) {
        assert!(Instant::now() < deadline, "the endpoint was not ready in 120 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, _, body) = post(&url, "text/csv", Some("application/json"), b"a\nb\n");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        String::from_utf8_lossy(&body),
        r#"{"predictions": [{"score": 5}, {"score": 5}]}"#
    );
    drop(deploy);

    // The project's own Dockerfile makes the same image with plain `docker build`.
    let release = project.join("target/release");
    std::fs::create_dir_all(&release).unwrap();
    std::fs::copy(&library, release.join(library.file_name().unwrap())).unwrap();
    let plain = format!("modelstage-e2e/{name}-plain:latest");
    run_ok(
        {
            let mut c = Command::new("docker");
            c.args(["build", "--pull=false", "--quiet", "--tag", &plain])
                .arg(&project)
                .env("DOCKER_BUILDKIT", "0");
            c
        },
        "docker build of the generated Dockerfile",
    );
    let plain_labels = containers::image_labels(&plain).unwrap();
    assert_eq!(plain_labels["com.modelstage.stage.name"], name);
    let loaded = run_ok(
        {
            let mut c = Command::new("docker");
            c.args([
                "run",
                "--rm",
                "--network",
                "none",
                &plain,
                "inspect",
                "/opt/modelstage/stage.so",
            ]);
            c
        },
        "modelstage inspect inside the plain image",
    );
    assert!(loaded.contains(&format!("stage:      {name} 0.1.0")), "{loaded}");
    let _ = Command::new("docker")
        .args(["image", "rm", &image, &plain])
        .output();
}

#[test]
fn a_rust_stage_from_modelstage_new_tests_trains_and_serves_in_its_image() {
    author("mean-rust", "rust");
}

#[test]
fn a_c_stage_from_modelstage_new_tests_trains_and_serves_in_its_image() {
    author("mean-c", "c");
}

#[test]
fn new_refuses_a_folder_with_files_and_a_name_that_cannot_name_a_crate() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("taken")).unwrap();
    std::fs::write(root.path().join("taken/notes.txt"), "mine").unwrap();
    let out = modelstage(&["new", "taken"], root.path());
    assert!(!out.status.success());
    assert!(
        text(&out).contains("already exists and is not an empty folder"),
        "{}",
        text(&out)
    );
    assert_eq!(
        std::fs::read_to_string(root.path().join("taken/notes.txt")).unwrap(),
        "mine"
    );

    let out = modelstage(&["new", "2fast"], root.path());
    assert!(!out.status.success());
    assert!(text(&out).contains("cannot name a stage"), "{}", text(&out));
    assert!(!root.path().join("2fast").exists());
}

#[test]
fn image_without_a_stage_says_to_pass_one() {
    let out = modelstage(&["image", "--tag", "modelstage-e2e/nothing:latest"], &repo_root());
    assert!(!out.status.success());
    assert!(
        text(&out).contains("no stage given: pass the stage library with --stage"),
        "{}",
        text(&out)
    );
}

#[test]
fn image_of_a_library_that_is_not_a_stage_is_refused_before_anything_is_tagged() {
    let tag = "modelstage-e2e/not-a-stage:latest";
    let library = stage_lib("no_descriptor");
    let out = modelstage(
        &["image", "--stage", library.to_str().unwrap(), "--tag", tag],
        &repo_root(),
    );
    assert!(!out.status.success());
    let message = text(&out);
    assert!(
        message.contains("is not a modelstage stage, so no image was built"),
        "{message}"
    );
    assert!(message.contains("has no modelstage_abi descriptor"), "{message}");
    if engine() {
        assert!(!containers::image_exists(tag), "{tag} was tagged");
    }
}

#[test]
fn image_on_a_base_that_is_not_here_says_how_to_build_it_and_pulls_nothing() {
    if !engine() {
        return;
    }
    let base = "modelstage-e2e/no-such-base:0";
    let tag = "modelstage-e2e/on-no-base:latest";
    let library = stage_lib("echo");
    let out = modelstage(
        &[
            "image",
            "--stage",
            library.to_str().unwrap(),
            "--tag",
            tag,
            "--base",
            base,
        ],
        &repo_root(),
    );
    assert!(!out.status.success());
    let message = text(&out);
    assert!(
        message.contains(&format!(
            "the base image {base} is not on this machine, and it is never pulled"
        )),
        "{message}"
    );
    assert!(message.contains("modelstage image --runtime"), "{message}");
    assert!(!containers::image_exists(base), "{base} was pulled");
    assert!(!containers::image_exists(tag), "{tag} was tagged");
}
