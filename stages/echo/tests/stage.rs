//! The echo stage as the runtime runs it, through `modelstage-testing`: the built `libecho.so`
//! opened by the real loader, requests through the exported hooks, the training hook on a
//! temporary `/opt/ml` tree, and a real `serve`.

use modelstage_testing::{Request, TestStage, TrainingJob};

#[test]
fn the_loader_reads_the_descriptor_and_every_hook() {
    let stage = TestStage::this_package();
    assert_eq!(stage.info().name, "echo");
    assert_eq!(stage.info().version, env!("CARGO_PKG_VERSION"));
    assert!(stage.can_train());
}

#[test]
fn a_request_comes_back_unchanged_with_its_content_type_and_custom_attributes() {
    let stage = TestStage::this_package();
    let dir = tempfile::tempdir().unwrap();
    let model = stage.load_model(dir.path()).unwrap();
    let answer = model
        .invoke(
            &Request::new("a,b\n1,2\n")
                .content_type("text/csv")
                .accept("text/csv")
                .custom_attributes("trace=7"),
        )
        .unwrap();
    assert_eq!(answer.text(), "a,b\n1,2\n");
    assert_eq!(answer.content_type, "text/csv");
    assert_eq!(answer.custom_attributes.as_deref(), Some("trace=7"));
    // No custom attributes in, none out.
    let plain = model.invoke(&Request::json(&serde_json::json!([1, 2]))).unwrap();
    assert_eq!(plain.json(), serde_json::json!([1, 2]));
    assert_eq!(plain.custom_attributes, None);
}

#[test]
fn training_gets_the_channels_and_hyperparameters_of_the_job() {
    let stage = TestStage::this_package();
    let trained = stage
        .train(
            &TrainingJob::new()
                .file("train", "data.csv", "1,2\n")
                .content_type("train", "text/csv")
                .hyperparameter("epochs", 3),
        )
        .unwrap();
    let env: serde_json::Value =
        serde_json::from_slice(&std::fs::read(trained.model_dir().join("training_env.json")).unwrap())
            .unwrap();
    // SageMaker passes hyperparameters as strings; the environment decodes them as the toolkit does.
    assert_eq!(env["hyperparameters"]["epochs"], 3);
    assert_eq!(
        env["channel_input_dirs"]["train"],
        trained.base_dir().join("input/data/train").to_str().unwrap()
    );
    assert_eq!(env["input_data_config"]["train"]["ContentType"], "text/csv");
    assert!(trained.base_dir().join("output/success").is_file());
}

#[test]
fn a_failing_training_job_reports_the_reason_written_to_the_failure_file() {
    let stage = TestStage::this_package();
    let reason = stage
        .train(&TrainingJob::new().hyperparameter("fail", "no data today"))
        .unwrap_err()
        .to_string();
    assert!(reason.contains("no data today"), "{reason}");
    let bad = stage
        .train(&TrainingJob::new().hyperparameter("sleep_seconds", "soon"))
        .unwrap_err()
        .to_string();
    assert!(bad.contains("sleep_seconds"), "{bad}");
}

#[test]
fn serve_answers_over_http() {
    let stage = TestStage::this_package();
    let dir = tempfile::tempdir().unwrap();
    let server = stage.serve(dir.path()).unwrap();
    assert_eq!(server.ping(), Some(200));
    let response = server
        .invoke(
            &Request::new("hello")
                .content_type("text/plain")
                .custom_attributes("k=v"),
        )
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "hello");
    assert_eq!(response.content_type.as_deref(), Some("text/plain"));
    assert_eq!(response.custom_attributes.as_deref(), Some("k=v"));
}
