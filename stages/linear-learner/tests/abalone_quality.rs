//! Quality on abalone (the stage README): the
//! regressor of SageMaker's example against an exact least-squares fit, and
//! the binary and multiclass classifiers against a fully converged logistic /
//! softmax regression, all on the same fixed 80/20 split.

mod common;

use common::*;
use serde_json::json;

fn rmse(pred: &[f64], y: &[f64]) -> f64 {
    (pred.iter().zip(y).map(|(p, t)| (p - t).powi(2)).sum::<f64>() / y.len() as f64).sqrt()
}

#[test]
fn regressor_matches_least_squares_and_the_example_request() {
    let rows = load_abalone();
    let (train_rows, test_rows) = split(&rows);
    let f = Featurizer::fit(&train_rows);
    let xtr: Vec<Vec<f64>> = train_rows.iter().map(|r| f.features(r)).collect();
    let ytr: Vec<f64> = train_rows.iter().map(|r| r.rings).collect();
    let xte: Vec<Vec<f64>> = test_rows.iter().map(|r| f.features(r)).collect();
    let yte: Vec<f64> = test_rows.iter().map(|r| r.rings).collect();

    // Reference: exact least squares (the one-hot block spans the intercept).
    let beta = least_squares(&xtr, &ytr);
    let ls_pred: Vec<f64> = xte
        .iter()
        .map(|x| x.iter().zip(&beta).map(|(a, b)| a * b).sum())
        .collect();
    let ls_rmse = rmse(&ls_pred, &yte);

    let dir = tempfile::tempdir().unwrap();
    let train_csv = dir.path().join("train.csv");
    let test_csv = dir.path().join("test.csv");
    write_csv(
        &train_csv,
        &ytr.iter().copied().zip(xtr.clone()).collect::<Vec<_>>(),
    );
    write_csv(
        &test_csv,
        &yte.iter().copied().zip(xte.clone()).collect::<Vec<_>>(),
    );
    let outcome = train(
        config(json!({"predictor_type": "regressor", "feature_dim": 10, "mini_batch_size": 32})),
        csv_channel("train", &train_csv),
        None,
        Some(csv_channel("test", &test_csv)),
    );
    let pred = predict(&outcome.model, &xte).scores;
    let ll_rmse = rmse(&pred, &yte);
    eprintln!("least squares test RMSE {ls_rmse:.4}, Linear Learner {ll_rmse:.4}");
    assert!(
        ll_rmse <= ls_rmse * 1.02,
        "Linear Learner RMSE {ll_rmse} vs least squares {ls_rmse}"
    );

    // The test metrics the training logged agree with our own computation.
    let (scope, metrics) = &outcome.metrics[0];
    assert_eq!(scope, "test");
    let logged = metrics.iter().find(|m| m.name == "rmse").unwrap().value;
    assert!((logged - ll_rmse).abs() < 1e-9, "{logged} vs {ll_rmse}");

    // The example's request: M, 0.44, 0.365, 0.125, 0.516, 0.2155, 0.114, 0.155.
    let example = Abalone {
        sex: "M".into(),
        measurements: [0.44, 0.365, 0.125, 0.516, 0.2155, 0.114, 0.155],
        rings: 0.0,
    };
    let score = predict(&outcome.model, &[f.features(&example)]).scores[0];
    let ls_score: f64 = f.features(&example).iter().zip(&beta).map(|(a, b)| a * b).sum();
    eprintln!("example request: Linear Learner {score:.3}, least squares {ls_score:.3}");
    assert!((9.3..=9.9).contains(&score), "example request scored {score}");
}

/// Mean held-out accuracy over the five folds of a fixed shuffle: one 20%
/// split of abalone has a standard error of about 1.3 points on an accuracy,
/// too coarse to compare two classifiers within 1 point; five folds use every
/// row once.
fn cross_validated(
    rows: &[Abalone],
    features: impl Fn(&Featurizer, &Abalone) -> Vec<f64>,
    class: impl Fn(&Abalone) -> usize,
    classes: usize,
    hyperparameters: serde_json::Value,
) -> (f64, f64) {
    let (mut reference, mut ours) = (0.0, 0.0);
    for k in 0..5 {
        let (train_rows, test_rows) = fold(rows, k, 5);
        let f = Featurizer::fit(&train_rows);
        let xtr: Vec<Vec<f64>> = train_rows.iter().map(|r| features(&f, r)).collect();
        let ytr: Vec<usize> = train_rows.iter().map(&class).collect();
        let xte: Vec<Vec<f64>> = test_rows.iter().map(|r| features(&f, r)).collect();
        let yte: Vec<usize> = test_rows.iter().map(&class).collect();
        // The reference gets a constant column for its intercept.
        let one = |x: &Vec<f64>| x.iter().copied().chain([1.0]).collect::<Vec<f64>>();
        let xtr1: Vec<Vec<f64>> = xtr.iter().map(one).collect();
        let xte1: Vec<Vec<f64>> = xte.iter().map(one).collect();
        let r = reference_accuracy(&softmax_regression(&xtr1, &ytr, classes), &xte1, &yte);

        let dir = tempfile::tempdir().unwrap();
        let train_csv = dir.path().join("train.csv");
        write_csv(
            &train_csv,
            &ytr.iter().map(|&c| c as f64).zip(xtr).collect::<Vec<_>>(),
        );
        let outcome = train(
            config(hyperparameters.clone()),
            csv_channel("train", &train_csv),
            None,
            None,
        );
        let labels = predict(&outcome.model, &xte).labels.unwrap();
        let a = labels
            .iter()
            .zip(&yte)
            .filter(|(p, &t)| **p as usize == t)
            .count() as f64
            / yte.len() as f64;
        eprintln!("fold {k}: reference {r:.4}, Linear Learner {a:.4}");
        reference += r / 5.0;
        ours += a / 5.0;
    }
    (reference, ours)
}

#[test]
fn binary_classifier_matches_logistic_regression() {
    let rows = load_abalone();
    let (reference, accuracy) = cross_validated(
        &rows,
        |f, r| f.features(r),
        |r| usize::from(r.rings > 9.0),
        2,
        json!({"predictor_type": "binary_classifier", "feature_dim": 10, "mini_batch_size": 32}),
    );
    eprintln!("rings > 9: logistic regression {reference:.4}, Linear Learner {accuracy:.4}");
    assert!(
        accuracy >= reference - 0.01,
        "accuracy {accuracy} vs reference {reference}"
    );
}

#[test]
fn multiclass_classifier_matches_softmax_regression() {
    let rows = load_abalone();
    let (reference, accuracy) = cross_validated(
        &rows,
        |f, r| f.scaled(&r.measurements),
        |r| ["F", "I", "M"].iter().position(|s| *s == r.sex).unwrap(),
        3,
        json!({"predictor_type": "multiclass_classifier", "num_classes": 3, "feature_dim": 7,
               "mini_batch_size": 32}),
    );
    eprintln!("sex: softmax regression {reference:.4}, Linear Learner {accuracy:.4}");
    assert!(
        accuracy >= reference - 0.01,
        "accuracy {accuracy} vs reference {reference}"
    );
}
