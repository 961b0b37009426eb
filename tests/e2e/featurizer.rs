//! The featurizer stage end to end: `modelstage fit` trains it on the
//! abalone data set and packs model.tar.gz, `modelstage serve` loads the
//! unpacked model, and the request of the SageMaker blog post must come back
//! byte for byte as the scikit-learn container answers it (the expected
//! bodies are recorded by `stages/featurizer/tests/sklearn_reference.py`).

use std::path::PathBuf;

use serde_json::Value;

use crate::support::*;

pub(crate) const COLUMNS: &str =
    "columns=sex,length,diameter,height,whole_weight,shucked_weight,viscera_weight,shell_weight";

fn reference() -> Value {
    let path = repo_root().join("stages/featurizer/tests/fixtures/abalone.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Trains on abalone.csv with `modelstage fit` and unpacks the model.
pub(crate) fn fit_abalone(dir: &std::path::Path) -> PathBuf {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::copy(abalone_csv(), data.join("abalone.csv")).unwrap();
    let tar_gz = fit_featurizer(&data, &dir.join("artifacts"), "featurizer");
    let model = dir.join("model");
    untar_model(&tar_gz, &model);
    assert!(model.join("featurizer.json").exists());
    model
}

/// Fits the featurizer on the CSV files in `data` with `modelstage fit` as job `job`; returns
/// the `model.tar.gz` it wrote under `out_dir`.
pub(crate) fn fit_featurizer(data: &std::path::Path, out_dir: &std::path::Path, job: &str) -> PathBuf {
    let stage = stage_lib("featurizer");
    let out = fit(&[
        "--stage",
        stage.to_str().unwrap(),
        "--channel",
        &format!("train={}", data.display()),
        "--hyperparameter",
        COLUMNS,
        "--hyperparameter",
        "categorical=sex",
        "--hyperparameter",
        "label=rings",
        "--output-path",
        out_dir.to_str().unwrap(),
        "--job-name",
        job,
    ]);
    assert!(out.status.success(), "stderr:\n{}", text(&out.stderr));
    out_dir.join(job).join("output/model.tar.gz")
}

#[test]
fn featurizer_fit_then_serve_matches_scikit_learn() {
    let dir = tempdir();
    let model_dir = fit_abalone(dir.path());
    let reference = reference();

    // The fitted statistics are scikit-learn's, bit for bit.
    let model: Value =
        serde_json::from_str(&std::fs::read_to_string(model_dir.join("featurizer.json")).unwrap()).unwrap();
    assert_eq!(model["rows"], 4177);
    let fills: Vec<Value> = model["numeric"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["fill"].clone())
        .collect();
    assert_eq!(Value::from(fills), reference["statistics"]["fill"]);
    assert_eq!(
        model["categorical"][0]["categories"],
        reference["statistics"]["categories"][0]
    );

    let server = serve(&stage_lib("featurizer"), &model_dir, &[]);
    let request = reference["blog_request"].as_str().unwrap().as_bytes();

    let (status, headers, body) = post(&server.url, "text/csv", Some("text/csv"), request);
    assert_eq!(status, 200, "{}", text(&body));
    assert!(header(&headers, "content-type").unwrap().starts_with("text/csv"));
    assert_eq!(text(&body), reference["blog_csv"].as_str().unwrap());

    // Without Accept the default is application/json: the Linear Learner request.
    let (status, headers, body) = post(&server.url, "text/csv", None, request);
    assert_eq!(status, 200, "{}", text(&body));
    assert!(header(&headers, "content-type")
        .unwrap()
        .starts_with("application/json"));
    assert_eq!(text(&body), reference["blog_json"].as_str().unwrap());
    let features = &json(&body)["instances"][0]["features"];
    assert_eq!(features.as_array().unwrap().len(), 10);

    // The first 500 training rows, labelled, as one request.
    let data = std::fs::read_to_string(abalone_csv()).unwrap();
    let first: String = data.lines().take(500).map(|l| format!("{l}\n")).collect();
    let (status, _, body) = post(&server.url, "text/csv", Some("text/csv"), first.as_bytes());
    assert_eq!(status, 200, "{}", text(&body));
    assert_eq!(text(&body), reference["first_rows_csv"].as_str().unwrap());
}

#[test]
fn featurizer_answers_bad_requests_with_the_row_and_column() {
    let dir = tempdir();
    let model_dir = fit_abalone(dir.path());
    let server = serve(&stage_lib("featurizer"), &model_dir, &[]);

    let (status, _, body) = post(
        &server.url,
        "text/csv",
        Some("text/csv"),
        b"M,0.44,0.365,0.125,0.516,0.2155,0.114,0.155\nM,0.44,oops,0.125,0.516,0.2155,0.114,0.155\n",
    );
    assert_eq!(status, 400);
    let message = text(&body);
    assert!(message.contains("line 2, column 'diameter'"), "{message}");

    let (status, _, _) = post(&server.url, "application/json", Some("text/csv"), b"{}");
    assert_eq!(status, 415);
    let (status, _, _) = post(
        &server.url,
        "text/csv",
        Some("application/x-npy"),
        b"M,1,1,1,1,1,1,1\n",
    );
    assert_eq!(status, 406);
}
