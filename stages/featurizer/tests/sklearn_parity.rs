//! Parity with scikit-learn: fits the featurizer on the training data of
//! each fixture and checks that its fitted statistics are bit-identical to
//! scikit-learn's and its `text/csv` output byte-identical to the Python
//! container's, as recorded by `tests/sklearn_reference.py`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use featurizer::{Config, Featurizer, FittedModel, Fitter, Format};
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The data set, from the repository's example (override with ABALONE_CSV).
fn abalone_csv() -> PathBuf {
    std::env::var_os("ABALONE_CSV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/abalone/data/abalone.csv")
        })
}

fn hyperparameters(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect()
}

fn floats(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

/// Asserts two CSV outputs are byte-identical, naming the first differing
/// row and value when they are not.
fn assert_same_csv(context: &str, ours: &str, theirs: &str) {
    if ours == theirs {
        return;
    }
    for (r, (a, b)) in ours.lines().zip(theirs.lines()).enumerate() {
        for (c, (x, y)) in a.split(',').zip(b.split(',')).enumerate() {
            assert_eq!(x, y, "{context}: row {} value {}", r + 1, c + 1);
        }
        assert_eq!(a, b, "{context}: row {}", r + 1);
    }
    assert_eq!(
        ours.lines().count(),
        theirs.lines().count(),
        "{context}: row count"
    );
    assert_eq!(ours, theirs, "{context}: line endings");
}

fn assert_statistics(context: &str, model: &FittedModel, expected: &Value) {
    let columns = &model.numeric;
    let ours: [(&str, Vec<f64>); 4] = [
        ("fill", columns.iter().map(|c| c.fill).collect()),
        ("mean", columns.iter().map(|c| c.mean).collect()),
        ("variance", columns.iter().map(|c| c.variance).collect()),
        ("scale", columns.iter().map(|c| c.scale).collect()),
    ];
    for (name, values) in ours {
        // Without a scaler scikit-learn has no mean/variance/scale.
        if let Some(theirs) = expected.get(name) {
            assert_eq!(values, floats(theirs), "{context}: {name}");
        }
    }
    let categories: Vec<Vec<String>> = model.categorical.iter().map(|c| c.categories.clone()).collect();
    let expected_categories: Vec<Vec<String>> =
        serde_json::from_value(expected["categories"].clone()).unwrap();
    assert_eq!(categories, expected_categories, "{context}: categories");
}

fn fit_text(hp: &BTreeMap<String, String>, train: &str) -> FittedModel {
    let mut fitter = Fitter::new(Config::from_hyperparameters(hp).unwrap());
    fitter.read(train.as_bytes(), "train.csv").unwrap();
    fitter.finish().unwrap()
}

fn transform_csv(featurizer: &Featurizer, body: &str) -> String {
    let batch = featurizer
        .parse(body.as_bytes())
        .unwrap_or_else(|e| panic!("{body:?}: {e}"));
    let features = featurizer.transform(&batch).unwrap();
    String::from_utf8(featurizer::encode(&features, Format::Csv)).unwrap()
}

/// FNV-1a, 64 bits, as `sklearn_reference.py` computes it.
fn fnv1a64(data: &[u8]) -> String {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for &b in data {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3);
    }
    format!("{h:016x}")
}

#[test]
fn tricky_inputs_match_scikit_learn() {
    let fixture = fixture("tricky.json");
    let cases = fixture["cases"].as_array().unwrap();
    assert!(cases.len() >= 7);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let hp = hyperparameters(&case["hyperparameters"]);
        let model = fit_text(&hp, case["train"].as_str().unwrap());
        assert_statistics(name, &model, &case["statistics"]);
        let featurizer = Featurizer::from_model(model);
        for request in case["requests"].as_array().unwrap() {
            let context = format!("{name}/{}", request["name"].as_str().unwrap());
            let ours = transform_csv(&featurizer, request["body"].as_str().unwrap());
            assert_same_csv(&context, &ours, request["csv"].as_str().unwrap());
        }
    }
}

#[test]
fn abalone_matches_scikit_learn_on_every_row() {
    let fixture = fixture("abalone.json");
    let path = abalone_csv();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (set ABALONE_CSV to the data set)", path.display()));
    let hp = hyperparameters(&fixture["hyperparameters"]);
    let model = fit_text(&hp, &text);
    assert_eq!(model.rows, 4177);
    assert_statistics("abalone", &model, &fixture["statistics"]);

    // The whole file as one labelled request.
    let featurizer = Featurizer::from_model(model);
    let ours = transform_csv(&featurizer, &text);
    assert_eq!(ours.lines().count() as u64, fixture["rows"].as_u64().unwrap());
    let first: String = ours.lines().take(500).map(|l| format!("{l}\n")).collect();
    assert_same_csv(
        "abalone, first 500 rows",
        &first,
        fixture["first_rows_csv"].as_str().unwrap(),
    );
    assert_eq!(
        fnv1a64(ours.as_bytes()),
        fixture["csv_fnv1a64"].as_str().unwrap(),
        "abalone, all rows"
    );
}
