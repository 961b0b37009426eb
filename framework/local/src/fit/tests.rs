//! Tests of the local training job's request handling, routing between a stage library and a
//! Docker image, and tree layout.

use std::path::PathBuf;

use serde_json::json;

use super::*;

fn temp(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("modelstage-fit-{tag}-"))
        .tempdir()
        .unwrap()
}

#[test]
fn request_document_and_flags() {
    let dir = temp("request");
    let stage = dir.path().join("libecho.so");
    std::fs::write(&stage, b"").unwrap();
    let data = dir.path().join("train.csv");
    std::fs::write(&data, "1,2\n").unwrap();
    let request = json!({
        "TrainingJobName": "from-request",
        "AlgorithmSpecification": {"TrainingImage": stage, "TrainingInputMode": "File"},
        "HyperParameters": {"epochs": "5", "lr": "0.1"},
        "InputDataConfig": [{
            "ChannelName": "train",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": format!("file://{}", data.display())}},
            "ContentType": "text/csv"
        }],
        "OutputDataConfig": {"S3OutputPath": format!("file://{}/out", dir.path().display())},
        "Environment": {"A": "1"},
        "RoleArn": "ignored"
    });
    let mut spec = JobSpec::from_request(&request.to_string(), "job.json").unwrap();
    let flags = FitArgs {
        hyperparameters: vec!["epochs=7".into(), "extra=a=b".into()],
        job_name: Some("from-flags".into()),
        ..FitArgs::default()
    };
    spec.apply_flags(&flags).unwrap();
    let job = spec.finish(0).unwrap();
    assert_eq!(job.name, "from-flags");
    assert_eq!(job.image, TrainingImage::Library(stage));
    assert_eq!(job.output_path, dir.path().join("out"));
    let hps: Vec<(&str, &str)> = job
        .hyperparameters
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    // A flag overrides the request; only the first '=' separates the key.
    assert_eq!(hps, [("epochs", "7"), ("extra", "a=b"), ("lr", "0.1")]);
    assert_eq!(
        job.channels,
        [Channel {
            name: "train".into(),
            source: data,
            content_type: Some("text/csv".into()),
            input_mode: "File".into()
        }]
    );
    assert_eq!(job.environment.get("A").map(String::as_str), Some("1"));
}

fn finish_err(request: serde_json::Value, flags: FitArgs) -> String {
    let mut spec = JobSpec::from_request(&request.to_string(), "job.json").unwrap();
    spec.apply_flags(&flags)
        .and_then(|()| spec.finish(0).map(|_| ()))
        .unwrap_err()
        .to_string()
}

#[test]
fn bad_requests_say_what_to_fix() {
    let dir = temp("bad");
    let stage = dir.path().join("libecho.so");
    std::fs::write(&stage, b"").unwrap();
    let out = dir.path().display().to_string();
    let base = || FitArgs {
        stage: Some(stage.display().to_string()),
        output_path: Some(out.clone()),
        ..FitArgs::default()
    };

    let err = JobSpec::from_request(r#"{"HyperParameters": {"epochs": 10}}"#, "job.json").unwrap_err();
    assert!(
        err.to_string()
            .contains("HyperParameters['epochs'] must be a string"),
        "{err}"
    );

    let evil = FitArgs {
        channels: vec![format!("../x={out}")],
        ..base()
    };
    assert!(finish_err(json!({}), evil).contains("'../x' is not a valid channel name"));

    let missing = FitArgs {
        channels: vec![format!("train={out}/nope")],
        ..base()
    };
    assert!(finish_err(json!({}), missing).contains("channel 'train':"));

    let pipe = json!({"AlgorithmSpecification": {"TrainingInputMode": "Pipe"},
                      "InputDataConfig": [{"ChannelName": "train",
                                           "DataSource": {"S3DataSource": {"S3Uri": out}}}]});
    assert!(finish_err(pipe, base()).contains("Pipe mode is not supported"));

    let no_stage = FitArgs {
        stage: None,
        ..base()
    };
    assert!(finish_err(json!({}), no_stage).contains("no stage to train"));

    let bad_name = FitArgs {
        job_name: Some("bad_name".into()),
        ..base()
    };
    assert!(finish_err(json!({}), bad_name).contains("not a valid training job name"));

    let no_pair = FitArgs {
        hyperparameters: vec!["epochs".into()],
        ..base()
    };
    assert!(finish_err(json!({}), no_pair).contains("not of the form KEY=VALUE"));

    let s3 = json!({"OutputDataConfig": {"S3OutputPath": "s3://bucket/out"}});
    let err = JobSpec::from_request(&s3.to_string(), "job.json").unwrap_err();
    assert!(format!("{err:#}").contains("S3"), "{err:#}");
}

#[test]
fn default_job_name_comes_from_the_stage() {
    let dir = temp("name");
    let stage = dir.path().join("liblinear_learner.so");
    std::fs::write(&stage, b"").unwrap();
    let mut spec = JobSpec::default();
    spec.apply_flags(&FitArgs {
        stage: Some(stage.display().to_string()),
        output_path: Some("out".into()),
        ..FitArgs::default()
    })
    .unwrap();
    assert_eq!(
        spec.finish(0).unwrap().name,
        "linear-learner-1970-01-01-00-00-00-000"
    );
}

#[test]
fn tree_layout() {
    let dir = temp("tree");
    let folder = dir.path().join("data");
    std::fs::create_dir_all(folder.join("part")).unwrap();
    std::fs::write(folder.join("part/a.csv"), "1\n").unwrap();
    let file = dir.path().join("single.csv");
    std::fs::write(&file, "2\n").unwrap();
    let job = TrainingJob {
        name: "j".into(),
        image: TrainingImage::Library(PathBuf::from("libecho.so")),
        hyperparameters: [("epochs".to_string(), "3".to_string())].into_iter().collect(),
        channels: vec![
            Channel {
                name: "train".into(),
                source: folder,
                content_type: Some("text/csv".into()),
                input_mode: "File".into(),
            },
            Channel {
                name: "validation".into(),
                source: file,
                content_type: None,
                input_mode: "File".into(),
            },
        ],
        output_path: dir.path().join("out"),
        environment: Default::default(),
    };
    let tree = prepare(&job, &Stop::never()).unwrap();
    let base = tree.base();
    let read = |p: &str| std::fs::read_to_string(base.join(p)).unwrap();
    assert_eq!(read("input/config/hyperparameters.json"), r#"{"epochs":"3"}"#);
    let idc: serde_json::Value = serde_json::from_str(&read("input/config/inputdataconfig.json")).unwrap();
    assert_eq!(
        idc,
        json!({
            "train": {"ContentType": "text/csv", "TrainingInputMode": "File",
                      "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"},
            "validation": {"TrainingInputMode": "File",
                           "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}
        })
    );
    let rc: serde_json::Value = serde_json::from_str(&read("input/config/resourceconfig.json")).unwrap();
    assert_eq!(rc["hosts"], json!(["algo-1"]));
    assert_eq!(read("input/data/train/part/a.csv"), "1\n");
    assert_eq!(read("input/data/validation/single.csv"), "2\n");
    assert!(base.join("model").is_dir() && base.join("output/data").is_dir());
    let root = base.to_path_buf();
    drop(tree);
    assert!(!root.exists(), "the tree is removed with the job");
}

/// A job with `--stage reference` and nothing else that matters.
fn job_for(reference: &str, dir: &std::path::Path) -> anyhow::Result<TrainingJob> {
    let mut spec = JobSpec::default();
    spec.apply_flags(&FitArgs {
        stage: Some(reference.to_string()),
        output_path: Some(dir.display().to_string()),
        ..FitArgs::default()
    })?;
    spec.finish(0)
}

#[test]
fn an_existing_file_is_a_library_and_an_image_reference_is_an_image() {
    let dir = temp("route");
    // A file wins even when its name looks like an image reference.
    let odd = dir.path().join("team:stage");
    std::fs::write(&odd, b"").unwrap();
    let job = job_for(odd.to_str().unwrap(), dir.path()).unwrap();
    assert_eq!(job.image, TrainingImage::Library(odd));

    // Decided by the text alone, so no Docker engine is asked (nor needed) here.
    for (reference, base) in [
        ("modelstage/featurizer:latest", "featurizer"),
        ("localhost:5000/linear_learner", "linear-learner"),
        ("echo:1.0", "echo"),
    ] {
        let job = job_for(reference, dir.path()).unwrap();
        assert_eq!(job.image, TrainingImage::Docker(reference.into()));
        // The default job name comes from the image, as the SageMaker SDK names it.
        assert_eq!(job.name, format!("{base}-1970-01-01-00-00-00-000"));
    }
}

#[test]
fn a_missing_library_is_not_taken_for_an_image() {
    let dir = temp("missing");
    for reference in [
        dir.path().join("libnope.so").display().to_string(),
        "target/release/libnope.so".to_string(),
        "./stage".to_string(),
    ] {
        let err = job_for(&reference, dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(&format!("the stage library {reference} does not exist")),
            "{reference}: {err}"
        );
        assert!(
            err.contains("Docker image"),
            "the message names the other choice: {err}"
        );
    }
}

#[test]
fn the_request_document_may_name_an_image() {
    let dir = temp("request-image");
    let request = json!({
        "AlgorithmSpecification": {"TrainingImage": "modelstage/echo:latest"},
        "OutputDataConfig": {"S3OutputPath": dir.path()},
    });
    let mut spec = JobSpec::from_request(&request.to_string(), "job.json").unwrap();
    spec.apply_flags(&FitArgs::default()).unwrap();
    let job = spec.finish(0).unwrap();
    assert_eq!(job.image, TrainingImage::Docker("modelstage/echo:latest".into()));
    assert_eq!(job.image.to_string(), "image modelstage/echo:latest");

    // --stage overrides the request, also from an image to a library.
    let library = dir.path().join("libecho.so");
    std::fs::write(&library, b"").unwrap();
    let mut spec = JobSpec::from_request(&request.to_string(), "job.json").unwrap();
    spec.apply_flags(&FitArgs {
        stage: Some(library.display().to_string()),
        ..FitArgs::default()
    })
    .unwrap();
    assert_eq!(spec.finish(0).unwrap().image, TrainingImage::Library(library));
}

#[test]
fn a_library_needs_no_engine_to_be_runnable() {
    // The library check happened in `finish`; nothing more is asked, so this holds on a machine
    // without Docker.
    assert!(check_runnable(&TrainingImage::Library(PathBuf::from("libecho.so"))).is_ok());
}

#[test]
fn a_stopped_job_stops_copying_its_channels() {
    let dir = temp("stop");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("a.csv"), "1\n").unwrap();
    let job = TrainingJob {
        name: "j".into(),
        image: TrainingImage::Library(PathBuf::from("libecho.so")),
        hyperparameters: Default::default(),
        channels: vec![Channel {
            name: "train".into(),
            source: data,
            content_type: None,
            input_mode: "File".into(),
        }],
        output_path: dir.path().join("out"),
        environment: Default::default(),
    };
    let stop = Stop::never();
    stop.request(signal_hook::consts::SIGINT);
    let err = prepare(&job, &stop).err().expect("the copy is stopped");
    assert!(format!("{err:#}").contains("stopped by SIGINT before"), "{err:#}");
}

#[test]
fn a_tree_is_removed_on_request() {
    let dir = temp("remove");
    let job = TrainingJob {
        name: "j".into(),
        image: TrainingImage::Docker("modelstage/echo:latest".into()),
        hyperparameters: Default::default(),
        channels: Vec::new(),
        output_path: dir.path().join("out"),
        environment: Default::default(),
    };
    let tree = prepare(&job, &Stop::never()).unwrap();
    std::fs::write(tree.base().join("model/model.json"), "{}").unwrap();
    let root = tree.base().to_path_buf();
    tree.remove().unwrap();
    assert!(!root.exists());
}

#[test]
fn printed_commands_quote_only_what_the_shell_would_read() {
    assert_eq!(
        shell_word("jobs/a-1/output/model.tar.gz"),
        "jobs/a-1/output/model.tar.gz"
    );
    assert_eq!(shell_word("my models/m.tar.gz"), "'my models/m.tar.gz'");
    assert_eq!(shell_word("it's"), "'it'\\''s'");
    assert_eq!(shell_word("$HOME"), "'$HOME'");
    assert_eq!(shell_word(""), "''");
}
