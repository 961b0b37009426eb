//! Request documents are checked as the SageMaker API checks them: `fit`, `deploy` and
//! `transform` refuse an unknown key at any depth, naming its path and the closest valid key,
//! and a missing required key, naming its path, before they start anything.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use crate::support::*;

/// Runs `modelstage COMMAND --request <document> ARGS` and returns its stderr, after checking
/// that it failed.
fn refused(command: &str, document: Value, args: &[&str]) -> String {
    let dir = tempdir();
    let path = dir.path().join("request.json");
    std::fs::write(&path, serde_json::to_string_pretty(&document).unwrap()).unwrap();
    let out = Command::new(bin())
        .arg(command)
        .arg("--request")
        .arg(&path)
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{command} accepted the document:\n{err}");
    // Every problem is reported against the file it is in.
    let origin = path.display().to_string();
    assert!(err.contains(&format!("{origin}: ")), "{err}");
    err.replace(&format!("{origin}: "), "")
}

fn file_uri(path: &Path) -> String {
    format!("file://{}", path.display())
}

#[test]
fn a_misspelt_model_data_url_is_an_error_not_an_empty_model() {
    let err = refused(
        "deploy",
        json!({"ModelName": "m", "PrimaryContainer": {"Image": stage_lib("echo"), "ModelDataURL": "m.tar.gz"}}),
        &["--port", &free_port().to_string()],
    );
    assert!(
        err.contains("PrimaryContainer.ModelDataURL: unknown field; did you mean ModelDataUrl?"),
        "{err}"
    );
    assert!(!err.contains("started"), "nothing was started: {err}");

    let err = refused(
        "deploy",
        json!({"Containers": [{"Image": "a.so"}, {"Image": "b.so", "Enviroment": {"A": "1"}}],
               "InferenceExecutionConfig": {"Mod": "Serial"}}),
        &[],
    );
    assert!(
        err.contains("Containers[1].Enviroment: unknown field; did you mean Environment?"),
        "{err}"
    );
    assert!(
        err.contains("InferenceExecutionConfig.Mod: unknown field; did you mean Mode?"),
        "{err}"
    );
    assert!(
        err.contains("InferenceExecutionConfig.Mode: missing; this object needs it"),
        "{err}"
    );
}

#[test]
fn a_training_job_names_unknown_and_missing_keys_at_any_depth() {
    let dir = tempdir();
    let err = refused(
        "fit",
        json!({
            "TrainingJobName": "j",
            "AlgorithmSpecification": {"TrainingImage": stage_lib("echo"), "TrainingInputMode": "File"},
            "Enviroment": {"A": "1"},
            "InputDataConfig": [{"ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3uri": file_uri(dir.path())}}},
                {"DataSource": {"S3DataSource": {"S3Uri": file_uri(dir.path())}}}],
            "OutputDataConfig": {"S3OutputPath": file_uri(&dir.path().join("out"))}
        }),
        &[],
    );
    assert!(
        err.contains("Enviroment: unknown field; did you mean Environment?"),
        "{err}"
    );
    assert!(
        err.contains("InputDataConfig[0].DataSource.S3DataSource.S3uri: unknown field; did you mean S3Uri?"),
        "{err}"
    );
    assert!(
        err.contains("InputDataConfig[0].DataSource.S3DataSource.S3Uri: missing; this object needs it"),
        "{err}"
    );
    assert!(
        err.contains("InputDataConfig[1].ChannelName: missing; this object needs it"),
        "{err}"
    );
    assert!(!dir.path().join("out").exists());
}

#[test]
fn a_transform_job_names_unknown_keys_before_it_starts() {
    let dir = tempdir();
    let err = refused(
        "transform",
        json!({
            "TransformJobName": "t", "ModelName": "m",
            "TransformInput": {"DataSource": {"S3DataSource": {"S3Uri": file_uri(dir.path())}},
                "SplitTpye": "Line"},
            "TransformOutput": {"S3OutputPath": file_uri(&dir.path().join("out")), "AssembleWidth": "Line"},
            "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1}
        }),
        &["--endpoint", "http://127.0.0.1:9"],
    );
    assert!(
        err.contains("TransformInput.SplitTpye: unknown field; did you mean SplitType?"),
        "{err}"
    );
    assert!(
        err.contains("TransformOutput.AssembleWidth: unknown field; did you mean AssembleWith?"),
        "{err}"
    );
}

#[test]
fn members_the_api_accepts_but_local_mode_ignores_still_deploy() {
    let dir = tempdir();
    let path = dir.path().join("model.json");
    let document = json!({
        "ModelName": "echo", "ExecutionRoleArn": "arn:aws:iam::111122223333:role/R",
        "EnableNetworkIsolation": false, "Tags": [{"Key": "team", "Value": "ml"}],
        "VpcConfig": {"SecurityGroupIds": ["sg-1"], "Subnets": ["subnet-1"]},
        "PrimaryContainer": {"Image": stage_lib("echo"), "Mode": "SingleModel",
            "Environment": {"A": "1"}, "ImageConfig": {"RepositoryAccessMode": "Platform"}}
    });
    std::fs::write(&path, document.to_string()).unwrap();
    let port = free_port();
    let mut child = Command::new(bin())
        .args([
            "deploy",
            "--request",
            path.to_str().unwrap(),
            "--port",
            &port.to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while ping(&url) != Some(200) && std::time::Instant::now() < deadline {
        assert!(child.try_wait().unwrap().is_none(), "deploy exited");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (status, _, body) = post(&url, "text/csv", Some("text/csv"), b"1,2");
    // SIGTERM, so that deploy stops the container it started.
    let stopped = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    if wait_exit(&mut child, std::time::Duration::from_secs(60)).is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert_eq!((status, body.as_slice()), (200, &b"1,2"[..]));
}
