//! Serving through the stage hooks: every request format, every response
//! format (the stage README), and the errors. Expected scores are the
//! float32 values the service answers; `tests/expected_f32.py` derives them.

use linear_learner::model::ModelFile;
use linear_learner::proto::{value, Record, Value};
use linear_learner::recordio::{split_records, write_record};
use linear_learner::LinearLearner;
use modelstage_sdk::{Context, ErrorKind, Model, Response, Stage, StageError};
use prost::Message;

fn model(predictor_type: &str, loss: &str, weights: Vec<Vec<f64>>, bias: Vec<f64>) -> LinearLearner {
    let dir = tempfile::tempdir().unwrap();
    let file = ModelFile::from_weights(predictor_type, loss, weights, bias);
    file.save(dir.path()).unwrap();
    LinearLearner::model_fn(dir.path()).unwrap()
}

/// score = 0.1 + x0 + 2 x1 + 0.5 x2
fn regressor() -> LinearLearner {
    model("regressor", "squared_loss", vec![vec![1.0, 2.0, 0.5]], vec![0.1])
}

fn invoke(m: &LinearLearner, body: &[u8], content_type: &str, accept: &str) -> Result<Response, StageError> {
    let ctx = Context {
        request_id: "test",
        content_type,
        accept,
        custom_attributes: None,
    };
    let input = m.input_fn(body, &ctx)?;
    let out = m.predict_fn(input, &ctx)?;
    m.output_fn(out, &ctx)
}

fn text(r: &Response) -> &str {
    std::str::from_utf8(&r.body).unwrap()
}

fn recordio_request(features: &[Vec<f32>]) -> Vec<u8> {
    let mut body = Vec::new();
    for f in features {
        let mut r = Record::default();
        r.features.insert("values".into(), Value::dense_f32(f.clone()));
        write_record(&mut body, &r.encode_to_vec());
    }
    body
}

/// x = [1, 2, 2] gives 6.1, answered as float32: 6.099999904632568.
#[test]
fn every_request_format_gives_the_same_answer() {
    let m = regressor();
    let expected = r#"{"predictions": [{"score": 6.099999904632568}]}"#;
    let requests: Vec<(&str, Vec<u8>)> = vec![
        ("text/csv", b"1,2,2\n".to_vec()),
        ("text/csv; label_size=0", b" 1, 2.0 ,2\r\n\n".to_vec()),
        ("application/json", br#"{"instances": [{"features": [1, 2, 2]}]}"#.to_vec()),
        ("application/json", br#"{"instances": [{"data": {"features": {"values": [1, 2, 2]}}}]}"#.to_vec()),
        (
            "application/json",
            br#"{"instances": [{"data": {"features": {"keys": [0, 1, 2], "shape": [3], "values": [1, 2, 2]}}}]}"#
                .to_vec(),
        ),
        ("application/json", br#"{"features": [1, 2, 2]}"#.to_vec()),
        ("application/jsonlines", b"{\"features\": [1, 2, 2]}\n".to_vec()),
        ("application/x-recordio-protobuf", recordio_request(&[vec![1.0, 2.0, 2.0]])),
    ];
    for (content_type, body) in requests {
        let r = invoke(&m, &body, content_type, "application/json").unwrap();
        assert_eq!(
            text(&r),
            expected,
            "{content_type}: {}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(r.content_type, "application/json");
    }
}

#[test]
fn sparse_features_fill_zeros() {
    let m = regressor();
    // only x1 = 3: 0.1 + 6 = 6.1
    let body = br#"{"instances": [{"data": {"features": {"keys": [1], "shape": [3], "values": [3]}}}]}"#;
    let r = invoke(&m, body, "application/json", "application/json").unwrap();
    assert_eq!(text(&r), r#"{"predictions": [{"score": 6.099999904632568}]}"#);
}

#[test]
fn every_response_format() {
    let m = regressor();
    // Two records: 6.1 and 0.1 + 0 = 0.1 (float32 0.10000000149011612).
    let body = b"1,2,2\n0,0,0\n";
    let json = invoke(&m, body, "text/csv", "application/json").unwrap();
    assert_eq!(
        text(&json),
        r#"{"predictions": [{"score": 6.099999904632568}, {"score": 0.10000000149011612}]}"#
    );
    let lines = invoke(&m, body, "text/csv", "application/jsonlines").unwrap();
    assert_eq!(
        text(&lines),
        "{\"score\": 6.099999904632568}\n{\"score\": 0.10000000149011612}\n"
    );
    assert_eq!(lines.content_type, "application/jsonlines");
    let csv = invoke(&m, body, "text/csv", "text/csv").unwrap();
    assert_eq!(text(&csv), "6.099999904632568\n0.10000000149011612\n");
    // */* and a missing Accept resolve to JSON.
    let any = invoke(&m, body, "text/csv", "*/*").unwrap();
    assert_eq!(any.body, json.body);
    let rec = invoke(&m, body, "text/csv", "application/x-recordio-protobuf").unwrap();
    assert_eq!(rec.content_type, "application/x-recordio-protobuf");
    let scores: Vec<Vec<f32>> = split_records(&rec.body)
        .unwrap()
        .iter()
        .map(
            |p| match &Record::decode(p.as_slice()).unwrap().label["score"].kind {
                Some(value::Kind::Float32Tensor(t)) => t.values.clone(),
                other => panic!("{other:?}"),
            },
        )
        .collect();
    assert_eq!(scores, vec![vec![6.1f32], vec![0.1f32]]);
}

#[test]
fn binary_classifier_answers_score_and_float_label() {
    // score = sigmoid(x0): x0 = 0 → 0.5 (label 0), x0 = ln 3 → 0.75 (label 1)
    let m = model("binary_classifier", "logistic", vec![vec![1.0, 0.0]], vec![0.0]);
    let body = format!("0,5\n{},5\n", 3f64.ln());
    let r = invoke(&m, body.as_bytes(), "text/csv", "application/json").unwrap();
    assert_eq!(
        text(&r),
        r#"{"predictions": [{"score": 0.5, "predicted_label": 0.0}, {"score": 0.75, "predicted_label": 1.0}]}"#
    );
    let csv = invoke(&m, body.as_bytes(), "text/csv", "text/csv").unwrap();
    assert_eq!(text(&csv), "0.0,0.5\n1.0,0.75\n");
    let rec = invoke(&m, body.as_bytes(), "text/csv", "application/x-recordio-protobuf").unwrap();
    let second = Record::decode(split_records(&rec.body).unwrap()[1].as_slice()).unwrap();
    assert_eq!(second.label["predicted_label"], Value::dense_f32(vec![1.0]));
}

#[test]
fn multiclass_answers_one_score_per_class() {
    // All-zero weights: every class 1/3 (float32 0.3333333432674408), label 0.
    let m = model(
        "multiclass_classifier",
        "softmax_loss",
        vec![vec![0.0]; 3],
        vec![0.0; 3],
    );
    let r = invoke(&m, b"4\n", "text/csv", "application/jsonlines").unwrap();
    assert_eq!(
        text(&r),
        "{\"score\": [0.3333333432674408, 0.3333333432674408, 0.3333333432674408], \"predicted_label\": 0.0}\n"
    );
    let csv = invoke(&m, b"4\n", "text/csv", "text/csv").unwrap();
    assert_eq!(
        text(&csv),
        "0.0,0.3333333432674408,0.3333333432674408,0.3333333432674408\n"
    );
}

#[test]
fn errors_name_the_record_and_map_to_the_right_status() {
    let m = regressor();
    let err = invoke(&m, b"1,2,3\n1,2\n", "text/csv", "application/json").unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadRequest);
    assert_eq!(err.record, Some(1));
    assert!(
        err.message.contains("record 1 has 2 features") && err.message.contains("feature_dim = 3"),
        "{}",
        err.message
    );

    let err = invoke(
        &m,
        br#"{"instances": [{"features": [1, 2, 3]}, {"features": [1]}]}"#,
        "application/json",
        "application/json",
    )
    .unwrap_err();
    assert_eq!((err.kind, err.record), (ErrorKind::BadRequest, Some(1)));

    let err = invoke(&m, b"1,x,3\n", "text/csv", "application/json").unwrap_err();
    assert!(err.message.contains("record 0, column 2: 'x'"), "{}", err.message);

    let err = invoke(
        &m,
        &recordio_request(&[vec![1.0, 2.0, 3.0], vec![1.0; 4]]),
        "application/x-recordio-protobuf",
        "application/json",
    )
    .unwrap_err();
    assert_eq!(err.record, Some(1));
    assert!(err.message.contains("feature_dim = 3"));

    let err = invoke(&m, b"1,2,3\n1,nan,3\n", "text/csv", "application/json").unwrap_err();
    assert_eq!(err.record, Some(1));
    assert!(err.message.contains("not a finite number"), "{}", err.message);

    let err = invoke(&m, b"", "text/csv", "application/json").unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadRequest);

    let err = invoke(&m, b"1,2,3", "application/x-npy", "application/json").unwrap_err();
    assert_eq!(err.kind, ErrorKind::UnsupportedContentType);

    let err = invoke(&m, b"1,2,3", "text/csv", "image/png").unwrap_err();
    assert_eq!(err.kind, ErrorKind::UnsupportedAccept);
    assert!(err.message.contains("application/jsonlines"));
}

#[test]
fn model_fn_explains_a_missing_model() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("model.pkl"), b"\x80\x04").unwrap();
    let err = LinearLearner::model_fn(dir.path()).err().unwrap();
    assert!(err.message.contains("linear-learner.json"), "{}", err.message);
}
