//! Training on several threads gives the model one thread gives, bit for
//! bit, for a given seed: the `num_models` models are spread over threads,
//! never a model's arithmetic.

mod common;

use common::*;
use serde_json::json;

/// The saved model's files, in name order, for comparison.
fn saved(outcome: &linear_learner::train::Outcome) -> Vec<(String, Vec<u8>)> {
    let dir = tempfile::tempdir().unwrap();
    outcome.model.save(dir.path()).unwrap();
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn the_thread_count_does_not_change_the_model() {
    let rows = load_abalone();
    let (train_rows, test_rows) = split(&rows);
    let f = Featurizer::fit(&train_rows);
    let dir = tempfile::tempdir().unwrap();
    let train_csv = dir.path().join("train.csv");
    let test_csv = dir.path().join("test.csv");
    let labelled = |rows: &[Abalone]| rows.iter().map(|r| (r.rings, f.features(r))).collect::<Vec<_>>();
    write_csv(&train_csv, &labelled(&train_rows));
    write_csv(&test_csv, &labelled(&test_rows));
    for hyperparameters in [
        // num_models=auto: 8 models side by side.
        json!({"predictor_type": "regressor", "feature_dim": 10, "mini_batch_size": 32, "epochs": 3, "seed": 7}),
        json!({"predictor_type": "multiclass_classifier", "num_classes": 30, "feature_dim": 10,
               "mini_batch_size": 64, "epochs": 2, "num_models": 5, "seed": 3}),
    ] {
        let on = |threads| {
            let outcome = train_on(
                config(hyperparameters.clone()),
                csv_channel("train", &train_csv),
                None,
                Some(csv_channel("test", &test_csv)),
                threads,
            );
            (saved(&outcome), format!("{:?}", outcome.metrics))
        };
        let one = on(1);
        assert!(!one.0.is_empty(), "the model saved no file");
        for threads in [2, 3, 8] {
            let many = on(threads);
            assert!(
                one.0 == many.0,
                "{threads} threads saved another model for {hyperparameters}"
            );
            assert_eq!(
                one.1, many.1,
                "{threads} threads measured other metrics for {hyperparameters}"
            );
        }
    }
}
