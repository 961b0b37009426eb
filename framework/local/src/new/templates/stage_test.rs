//! The stage as modelstage runs it: the built library opened by modelstage's loader, the
//! training hook on a temporary /opt/ml tree, requests through the exported hooks.

use modelstage_testing::{Request, TestStage, TrainingJob};

#[test]
fn trains_the_mean_and_serves_it() {
    let stage = TestStage::this_package();
    assert_eq!(stage.info().name, "{{name}}");
    let trained = stage
        .train(
            &TrainingJob::new()
                .file("train", "data.csv", "1,2\n3,4\n")
                .hyperparameter("scale", 2),
        )
        .expect("training succeeds");
    let model = stage.load_model(trained.model_dir()).expect("the model loads");

    let answer = model
        .invoke(&Request::new("a\nb\n").content_type("text/csv"))
        .expect("a CSV request is answered");
    assert_eq!(answer.content_type, "application/json");
    assert_eq!(answer.text(), r#"{"predictions": [{"score": 5}, {"score": 5}]}"#);
}

#[test]
fn unsupported_types_get_415_and_406() {
    let stage = TestStage::this_package();
    let trained = stage
        .train(&TrainingJob::new().file("train", "data.csv", "7\n"))
        .expect("training succeeds");
    let model = stage.load_model(trained.model_dir()).unwrap();

    let failure = model.invoke(&Request::new("{}")).unwrap_err();
    assert_eq!(failure.http_status(), 415, "{failure}");
    let failure = model
        .invoke(&Request::new("1\n").content_type("text/csv").accept("image/png"))
        .unwrap_err();
    assert_eq!(failure.http_status(), 406, "{failure}");
}

#[test]
fn training_without_numbers_fails_with_the_reason() {
    let stage = TestStage::this_package();
    let reason = stage
        .train(&TrainingJob::new().file("train", "data.csv", "\n"))
        .unwrap_err()
        .to_string();
    assert!(reason.contains("no numbers"), "{reason}");
}
