//! The training hook through `TrainingEnv`, as `modelstage train` calls it:
//! channels in CSV and RecordIO-protobuf, the model file, determinism, and
//! the errors a user sees.

use std::path::{Path, PathBuf};

use linear_learner::model::{ModelFile, MODEL_FILE};
use linear_learner::proto::{Record, Value};
use linear_learner::recordio::write_record;
use linear_learner::LinearLearner;
use modelstage_sdk::{Model, Train, TrainingEnv};
use prost::Message;
use serde_json::json;

/// y = 2·x0 − 3·x1 + 1 on a deterministic grid of points (no noise).
fn rows(n: usize, offset: usize) -> Vec<(f64, [f64; 2])> {
    (0..n)
        .map(|i| {
            let i = i + offset;
            let x0 = ((i * 37) % 101) as f64 / 10.0 - 5.0;
            let x1 = ((i * 53) % 97) as f64 / 20.0;
            (2.0 * x0 - 3.0 * x1 + 1.0, [x0, x1])
        })
        .collect()
}

fn write_csv(path: &Path, rows: &[(f64, [f64; 2])]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let text: String = rows
        .iter()
        .map(|(y, x)| format!("{y},{},{}\n", x[0], x[1]))
        .collect();
    std::fs::write(path, text).unwrap();
}

fn write_recordio(path: &Path, rows: &[(f64, [f64; 2])]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut body = Vec::new();
    for (y, x) in rows {
        let mut r = Record::default();
        r.features
            .insert("values".into(), Value::dense_f32(vec![x[0] as f32, x[1] as f32]));
        r.label.insert("values".into(), Value::dense_f32(vec![*y as f32]));
        write_record(&mut body, &r.encode_to_vec());
    }
    std::fs::write(path, body).unwrap();
}

/// A SageMaker-style tree under `base` and the `SM_TRAINING_ENV` document for it.
fn env(base: &Path, channels: &[(&str, &str)], hyperparameters: serde_json::Value) -> TrainingEnv {
    let dirs: serde_json::Map<String, serde_json::Value> = channels
        .iter()
        .map(|(name, _)| (name.to_string(), json!(base.join("input/data").join(name))))
        .collect();
    let config: serde_json::Map<String, serde_json::Value> = channels
        .iter()
        .map(|(name, ct)| {
            (
                name.to_string(),
                json!({"ContentType": ct, "TrainingInputMode": "File"}),
            )
        })
        .collect();
    let doc = json!({
        "model_dir": base.join("model"),
        "output_data_dir": base.join("output/data"),
        "channel_input_dirs": dirs,
        "input_data_config": config,
        "hyperparameters": hyperparameters,
        "current_host": "algo-1",
        "hosts": ["algo-1"],
    });
    TrainingEnv::from_json(&doc.to_string()).unwrap()
}

fn data(base: &Path) -> PathBuf {
    base.join("input/data")
}

#[test]
fn learns_an_exact_line_from_csv_and_recordio_channels() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    // The train channel spans two files, one in a sub-folder.
    let train = rows(2000, 0);
    write_csv(&data(base).join("train/part-0.csv"), &train[..1000]);
    write_csv(&data(base).join("train/more/part-1.csv"), &train[1000..]);
    write_recordio(&data(base).join("validation/val.pbr"), &rows(300, 5000));
    write_csv(&data(base).join("test/test.csv"), &rows(300, 9000));
    let env = env(
        base,
        &[
            ("train", "text/csv"),
            ("validation", "application/x-recordio-protobuf"),
            ("test", "text/csv"),
        ],
        json!({"predictor_type": "regressor", "feature_dim": 2, "mini_batch_size": 50, "epochs": 30,
               "early_stopping_patience": 100}),
    );
    LinearLearner::train_fn(&env).unwrap();
    let model = ModelFile::load(&base.join("model")).unwrap();
    assert_eq!(model.predictor_type, "regressor");
    assert_eq!(model.feature_dim, 2);
    let (w, b) = (&model.weights[0], model.bias[0]);
    assert!(
        (w[0] - 2.0).abs() < 0.01 && (w[1] + 3.0).abs() < 0.01 && (b - 1.0).abs() < 0.02,
        "{w:?} {b}"
    );
    assert_eq!(model.training["selected_on"], "validation");

    // model_fn reads linear-learner.json and ignores anything else in the dir.
    std::fs::write(base.join("model/notes.txt"), "not a model").unwrap();
    std::fs::create_dir_all(base.join("model/code")).unwrap();
    let loaded = LinearLearner::model_fn(&base.join("model")).unwrap();
    let p = loaded.predictor.predict(&[1.0, 1.0]);
    assert!(
        (p.scores[0] - 0.0).abs() < 0.05,
        "2 - 3 + 1 = 0, got {}",
        p.scores[0]
    );
}

#[test]
fn same_seed_same_model_other_seed_other_model() {
    let dir = tempfile::tempdir().unwrap();
    let train_rows: Vec<(f64, [f64; 2])> = rows(500, 0)
        .into_iter()
        .map(|(y, x)| (y + (x[0] * 7.3).sin(), x))
        .collect();
    let mut models = Vec::new();
    for (run, seed) in [(0, 7), (1, 7), (2, 8)] {
        let base = dir.path().join(format!("run{run}"));
        write_csv(&data(&base).join("train/train.csv"), &train_rows);
        let env = env(
            &base,
            &[("train", "text/csv")],
            json!({"predictor_type": "regressor", "seed": seed,
            "mini_batch_size": 16, "epochs": 3}),
        );
        LinearLearner::train_fn(&env).unwrap();
        models.push(std::fs::read_to_string(base.join("model").join(MODEL_FILE)).unwrap());
    }
    assert_eq!(models[0], models[1], "same seed, same bytes");
    assert_ne!(
        models[0], models[2],
        "another seed shuffles and initialises differently"
    );
}

#[test]
fn binary_classifier_calibrates_on_validation() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    let label = |(y, x): (f64, [f64; 2])| (f64::from(u8::from(y > 0.0)), x);
    write_csv(
        &data(base).join("train/t.csv"),
        &rows(1000, 0).into_iter().map(label).collect::<Vec<_>>(),
    );
    write_csv(
        &data(base).join("validation/v.csv"),
        &rows(300, 3000).into_iter().map(label).collect::<Vec<_>>(),
    );
    let env = env(
        base,
        &[("train", "text/csv"), ("validation", "text/csv")],
        json!({"predictor_type": "binary_classifier", "binary_classifier_model_selection_criteria": "f1",
               "mini_batch_size": 20}),
    );
    LinearLearner::train_fn(&env).unwrap();
    let model = ModelFile::load(&base.join("model")).unwrap();
    let threshold = model.threshold.unwrap();
    assert!(threshold > 0.0 && threshold < 1.0, "{threshold}");
    // Separable data: the kept model classifies the validation rows almost perfectly.
    let v = rows(300, 3000);
    let x: Vec<f64> = v.iter().flat_map(|(_, x)| *x).collect();
    let p = model.predictor().unwrap().predict(&x);
    let correct = p
        .labels
        .unwrap()
        .iter()
        .zip(&v)
        .filter(|(l, (y, _))| (**l > 0.5) == (*y > 0.0))
        .count();
    assert!(correct >= 294, "{correct}/300");
}

#[test]
fn errors_say_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    write_csv(&data(base).join("train/t.csv"), &rows(10, 0));
    let cases = [
        (
            json!({"predictor_type": "regressor", "feature_dim": 3}),
            "2 features but feature_dim is 3",
        ),
        (
            json!({"predictor_type": "regressor", "num_trees": 3}),
            "'num_trees'",
        ),
        (json!({"predictor_type": "binary_classifier"}), "is not 0 or 1"),
        (
            json!({"predictor_type": "multiclass_classifier", "num_classes": 3}),
            "is not a class index",
        ),
        // A mini-batch is held in memory whole: 2^26 numbers at most.
        (
            json!({"predictor_type": "regressor", "mini_batch_size": 20_000_000}),
            "with 2 features at most 16777216 rows fit a mini-batch",
        ),
    ];
    for (hp, want) in cases {
        let env = env(base, &[("train", "text/csv")], hp.clone());
        let err = LinearLearner::train_fn(&env).unwrap_err();
        assert!(err.message.contains(want), "{hp}: {}", err.message);
    }
    let env1 = env(
        base,
        &[("training", "text/csv")],
        json!({"predictor_type": "regressor"}),
    );
    let err = LinearLearner::train_fn(&env1).unwrap_err();
    assert!(err.message.contains("'training'"), "{}", err.message);
    let env2 = env(
        base,
        &[("train", "application/x-parquet")],
        json!({"predictor_type": "regressor"}),
    );
    let err = LinearLearner::train_fn(&env2).unwrap_err();
    assert!(err.message.contains("application/x-parquet"), "{}", err.message);
}
