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
    let write = |name: &str, rows: &[Abalone], label: fn(&Abalone) -> f64| {
        let path = dir.path().join(name);
        let labelled: Vec<_> = rows.iter().map(|r| (label(r), f.features(r))).collect();
        write_csv(&path, &labelled);
        path
    };
    let rings = |r: &Abalone| r.rings;
    let old = |r: &Abalone| f64::from(u8::from(r.rings > 10.0));
    let train_csv = write("train.csv", &train_rows, rings);
    let test_csv = write("test.csv", &test_rows, rings);
    let train_binary = write("train-binary.csv", &train_rows, old);
    let test_binary = write("test-binary.csv", &test_rows, old);
    for (hyperparameters, train, validation) in [
        // num_models=auto: 8 models side by side, chosen on the training channel.
        (
            json!({"predictor_type": "regressor", "feature_dim": 10, "mini_batch_size": 32, "epochs": 3, "seed": 7}),
            &train_csv,
            None,
        ),
        (
            json!({"predictor_type": "multiclass_classifier", "num_classes": 30, "feature_dim": 10,
                   "mini_batch_size": 64, "epochs": 2, "num_models": 5, "seed": 3}),
            &train_csv,
            None,
        ),
        // Evaluated on a validation channel every epoch, the threshold calibrated on it.
        (
            json!({"predictor_type": "binary_classifier", "feature_dim": 10, "mini_batch_size": 50,
                   "epochs": 3, "seed": 11, "binary_classifier_model_selection_criteria": "f1"}),
            &train_binary,
            Some(&test_binary),
        ),
    ] {
        let test = if validation.is_some() {
            &test_binary
        } else {
            &test_csv
        };
        let on = |threads| {
            let outcome = train_on(
                config(hyperparameters.clone()),
                csv_channel("train", train),
                validation.map(|v| csv_channel("validation", v)),
                Some(csv_channel("test", test)),
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
