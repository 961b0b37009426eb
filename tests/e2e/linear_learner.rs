//! The Linear Learner stage end to end: `modelstage fit` trains it on a
//! label-first CSV (y = 2·a − 3·b + 1, no noise) with a test channel and packs
//! model.tar.gz; `modelstage serve` loads the unpacked model and answers JSON,
//! CSV and JSON Lines requests in the built-in algorithm's formats, with
//! 400/406/415 for bad requests.

use std::path::{Path, PathBuf};

use crate::support::*;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `n` rows of `y,a,b` on a deterministic grid, `a` in [-5, 5], `b` in [0, 5).
fn write_line_csv(path: &Path, n: usize, offset: usize) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut out = String::new();
    for i in offset..offset + n {
        let a = ((i * 37) % 101) as f64 / 10.0 - 5.0;
        let b = ((i * 53) % 97) as f64 / 20.0;
        out.push_str(&format!("{},{a},{b}\n", 2.0 * a - 3.0 * b + 1.0));
    }
    std::fs::write(path, out).unwrap();
}

/// Trains with `modelstage fit` and unpacks the model; returns it and fit's stderr.
pub(crate) fn fit_line(dir: &Path) -> (PathBuf, String) {
    write_line_csv(&dir.join("data/train/train.csv"), 2000, 0);
    write_line_csv(&dir.join("data/test/test.csv"), 200, 7000);
    let out_dir = dir.join("artifacts");
    let stage = stage_lib("linear_learner");
    let train = format!("train={}", dir.join("data/train").display());
    let test = format!("test={}", dir.join("data/test").display());
    let out = fit(&[
        "--stage",
        stage.to_str().unwrap(),
        "--channel",
        &train,
        "--channel",
        &test,
        "--hyperparameter",
        "predictor_type=regressor",
        "--hyperparameter",
        "feature_dim=2",
        "--hyperparameter",
        "mini_batch_size=50",
        "--hyperparameter",
        "epochs=20",
        "--output-path",
        out_dir.to_str().unwrap(),
        "--job-name",
        "linear-learner",
    ]);
    let log = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "fit failed:\n{log}");
    let model = dir.join("model");
    untar_model(&out_dir.join("linear-learner/output/model.tar.gz"), &model);
    assert!(model.join("linear-learner.json").exists());
    (model, log)
}

/// The number after `"score": ` in each prediction of a JSON body.
fn scores(body: &[u8]) -> Vec<f64> {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_else(|e| panic!("{e}: {}", text(body)));
    v["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["score"].as_f64().unwrap())
        .collect()
}

#[test]
fn linear_learner_fit_then_serve() {
    let dir = tempdir();
    let (model, log) = fit_line(dir.path());
    // SageMaker's metric definitions pick these lines up.
    assert!(
        log.contains("#quality_metric: host=algo-1, epoch=0, train mse_objective <loss>="),
        "{log}"
    );
    assert!(
        log.contains("#quality_metric: host=algo-1, test rmse <loss>="),
        "{log}"
    );

    let server = serve(&stage_lib("linear_learner"), &model, &[]);
    let url = &server.url;

    // (1, 1) → 0 and (0, 0) → 1.
    let (status, headers, body) = post(
        url,
        "application/json",
        Some("application/json"),
        br#"{"instances": [{"features": [1, 1]}, {"data": {"features": {"values": [0, 0]}}}]}"#,
    );
    assert_eq!(status, 200, "{}", text(&body));
    assert_eq!(header(&headers, "content-type"), Some("application/json"));
    let s = scores(&body);
    assert!(
        s.len() == 2 && s[0].abs() < 0.05 && (s[1] - 1.0).abs() < 0.05,
        "{}",
        text(&body)
    );
    assert!(
        text(&body).starts_with(r#"{"predictions": [{"score": "#),
        "{}",
        text(&body)
    );

    // CSV in, CSV out (our addition): one score per line, the same numbers.
    let (status, _, csv) = post(url, "text/csv", Some("text/csv"), b"1,1\n0,0\n");
    assert_eq!(status, 200);
    let csv_scores: Vec<f64> = text(&csv).lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(csv_scores, s);

    // JSON Lines in, JSON Lines out.
    let (status, _, lines) = post(
        url,
        "application/jsonlines",
        Some("application/jsonlines"),
        b"{\"features\": [1, 1]}\n",
    );
    assert_eq!(status, 200);
    assert_eq!(
        text(&lines),
        format!("{{\"score\": {}}}\n", text(&csv).lines().next().unwrap())
    );

    // Missing Accept: JSON.
    let (status, _, body) = post(url, "text/csv", None, b"1,1\n");
    assert_eq!((status, scores(&body).len()), (200, 1));

    // A record with the wrong number of features: 400 naming the record and feature_dim.
    let (status, _, body) = post(url, "text/csv", Some("application/json"), b"1,1\n1,2,3\n");
    assert_eq!(status, 400, "{}", text(&body));
    assert!(
        text(&body).contains("record 1") && text(&body).contains("feature_dim = 2"),
        "{}",
        text(&body)
    );

    let (status, _, _) = post(url, "text/csv", Some("image/png"), b"1,1\n");
    assert_eq!(status, 406);
    let (status, _, _) = post(url, "application/x-npy", Some("application/json"), b"1,1\n");
    assert_eq!(status, 415);
}
