//! Property tests over the serving hooks: whatever the body and
//! Content-Type, `input_fn` → `predict_fn` → `output_fn` never panics, fails
//! only with a client error (4xx) whose message is bounded, and a JSON answer
//! is always JSON a strict reader parses (no `inf`, no `NaN`).
//!
//! proptest's default 256 cases per property take a few seconds;
//! `PROPTEST_CASES=5000` searches longer.

use linear_learner::model::ModelFile;
use linear_learner::proto::{value, Float32Tensor, Record, Value};
use linear_learner::recordio::{write_record, MAGIC};
use linear_learner::LinearLearner;
use modelstage_sdk::{Context, Model, Stage, StageError};
use proptest::prelude::*;
use prost::Message;

const MAX_MESSAGE: usize = 1024;
const CONTENT_TYPES: [&str; 4] = [
    "text/csv",
    "application/json",
    "application/jsonlines",
    "application/x-recordio-protobuf",
];
const ACCEPTS: [&str; 4] = [
    "application/json",
    "application/jsonlines",
    "text/csv",
    "application/x-recordio-protobuf",
];

/// Three features, three classes: every answer shape at once.
fn model() -> &'static LinearLearner {
    static MODEL: std::sync::OnceLock<LinearLearner> = std::sync::OnceLock::new();
    MODEL.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let weights = vec![vec![1.0, 2.0, 0.5], vec![-1.0, 0.0, 3.0], vec![0.25, -0.5, 1.0]];
        ModelFile::from_weights(
            "multiclass_classifier",
            "softmax_loss",
            weights,
            vec![0.1, 0.0, -0.1],
        )
        .save(dir.path())
        .unwrap();
        LinearLearner::model_fn(dir.path()).unwrap()
    })
}

fn run(body: &[u8], content_type: &str, accept: &str) -> Result<Vec<u8>, StageError> {
    let ctx = Context {
        request_id: "fuzz",
        content_type,
        accept,
        custom_attributes: None,
        target_model: None,
    };
    let m = model();
    let input = m.input_fn(body, &ctx)?;
    let out = m.predict_fn(input, &ctx)?;
    Ok(m.output_fn(out, &ctx)?.body)
}

fn check(body: &[u8], content_type: &str) {
    for accept in ACCEPTS {
        match run(body, content_type, accept) {
            Err(e) => {
                let shown = String::from_utf8_lossy(body);
                assert!(
                    e.kind.is_client_error(),
                    "{:?} for {content_type} {shown:?}: {}",
                    e.kind,
                    e.message
                );
                assert!(
                    e.message.len() <= MAX_MESSAGE && !e.message.contains(['\n', '\r']),
                    "{:?}",
                    e.message
                );
            }
            Ok(answer) if accept == "application/json" => {
                serde_json::from_slice::<serde_json::Value>(&answer)
                    .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&answer)));
            }
            Ok(answer) if accept == "application/jsonlines" => {
                for line in answer.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                    serde_json::from_slice::<serde_json::Value>(line).unwrap();
                }
            }
            Ok(_) => {}
        }
    }
}

const CSV_BYTES: &[u8] = b"0123456789.,-+eE \n\r\"naif\xff";
const JSON_BYTES: &[u8] = b"[]{},:0123456789.-eE\" \nfeaturesdatkyhpvlu";

fn body_of(alphabet: &'static [u8], max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(alphabet), 0..max)
}

/// Feature values, mostly ordinary, some huge or not finite.
fn feature() -> impl Strategy<Value = f32> {
    prop_oneof![8 => -10f32..10.0, 1 => any::<f32>(), 1 => Just(f32::MAX)]
}

/// A RecordIO body of dense or sparse records with hostile shapes and keys.
fn recordio_body() -> impl Strategy<Value = Vec<u8>> {
    let tensor = (
        prop::collection::vec(feature(), 0..5),
        prop::collection::vec(prop_oneof![0u64..4, any::<u64>()], 0..5),
        prop::collection::vec(prop_oneof![Just(3u64), any::<u64>()], 0..3),
    );
    prop::collection::vec(tensor, 1..4).prop_map(|records| {
        let mut body = Vec::new();
        for (values, keys, shape) in records {
            let mut r = Record::default();
            let t = Float32Tensor { values, keys, shape };
            r.features.insert(
                "values".into(),
                Value {
                    kind: Some(value::Kind::Float32Tensor(t)),
                },
            );
            write_record(&mut body, &r.encode_to_vec());
        }
        body
    })
}

/// A JSON request of sparse instances with hostile shapes and keys.
fn sparse_json() -> impl Strategy<Value = Vec<u8>> {
    let instance = (
        prop::collection::vec(prop_oneof![-10f64..10.0, Just(1e308)], 0..4),
        prop::collection::vec(prop_oneof![0u64..4, any::<u64>()], 0..4),
        prop::collection::vec(prop_oneof![Just(3u64), any::<u64>()], 0..3),
    );
    prop::collection::vec(instance, 1..4).prop_map(|instances| {
        let instances: Vec<serde_json::Value> = instances
            .into_iter()
            .map(|(values, keys, shape)| {
                serde_json::json!({"data": {"features": {"values": values, "keys": keys, "shape": shape}}})
            })
            .collect();
        serde_json::to_vec(&serde_json::json!({ "instances": instances })).unwrap()
    })
}

proptest! {
    #[test]
    fn arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..128)) {
        for content_type in CONTENT_TYPES {
            check(&body, content_type);
        }
    }

    #[test]
    fn csv_like_bodies(body in body_of(CSV_BYTES, 120)) {
        check(&body, "text/csv");
    }

    #[test]
    fn json_like_bodies(body in body_of(JSON_BYTES, 120)) {
        check(&body, "application/json");
        check(&body, "application/jsonlines");
    }

    #[test]
    fn dense_csv_of_any_magnitude(rows in prop::collection::vec(prop::collection::vec(any::<f64>(), 3), 1..4)) {
        let body: String = rows
            .iter()
            .map(|r| r.iter().map(|x| format!("{x:e}")).collect::<Vec<_>>().join(",") + "\n")
            .collect();
        check(body.as_bytes(), "text/csv");
    }

    #[test]
    fn recordio_records(body in recordio_body()) {
        check(&body, "application/x-recordio-protobuf");
    }

    #[test]
    fn recordio_frames_with_hostile_headers(
        word in prop_oneof![any::<u32>(), (0u32..8).prop_map(|f| f << 29 | 4)],
        tail in prop::collection::vec(any::<u8>(), 0..32),
    ) {
        let mut body = MAGIC.to_le_bytes().to_vec();
        body.extend_from_slice(&word.to_le_bytes());
        body.extend_from_slice(&tail);
        check(&body, "application/x-recordio-protobuf");
    }

    #[test]
    fn sparse_json_instances(body in sparse_json()) {
        check(&body, "application/json");
    }
}
