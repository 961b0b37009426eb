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
        target_model: None,
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

#[test]
fn hostile_sparse_shapes_are_400_before_any_allocation() {
    let m = regressor();
    for shape in [
        "1000000000000",
        "3000000000000000000",
        "18446744073709551615",
        "2",
    ] {
        let body = format!(
            r#"{{"instances": [{{"features": [1, 2, 3]}}, {{"data": {{"features": {{"keys": [1], "shape": [{shape}], "values": [3]}}}}}}]}}"#
        );
        let err = invoke(&m, body.as_bytes(), "application/json", "application/json").unwrap_err();
        assert_eq!(
            (err.kind, err.record),
            (ErrorKind::BadRequest, Some(1)),
            "{}",
            err.message
        );
        assert!(
            err.message
                .contains(&format!("shape [{shape}], but feature_dim is 3")),
            "{}",
            err.message
        );
    }
    // The same through RecordIO-protobuf.
    let mut r = Record::default();
    r.features.insert(
        "values".into(),
        Value {
            kind: Some(value::Kind::Float32Tensor(linear_learner::proto::Float32Tensor {
                values: vec![1.0],
                keys: vec![0],
                shape: vec![1_000_000_000_000],
            })),
        },
    );
    let mut body = Vec::new();
    write_record(&mut body, &r.encode_to_vec());
    let err = invoke(&m, &body, "application/x-recordio-protobuf", "application/json").unwrap_err();
    assert_eq!((err.kind, err.record), (ErrorKind::BadRequest, Some(0)));
    assert!(err.message.contains("feature_dim is 3"), "{}", err.message);
    // A key outside the shape, and a repeated key (the last value wins, as in a dense copy).
    let body = br#"{"data": {"features": {"keys": [5], "values": [1]}}}"#;
    let err = invoke(&m, body, "application/json", "application/json").unwrap_err();
    assert!(
        err.message.contains("key 5 outside its shape 3"),
        "{}",
        err.message
    );
    let body = br#"{"data": {"features": {"keys": [2, 0, 2], "shape": [3], "values": [7, 1, 2]}}}"#;
    let sparse = invoke(&m, body, "application/json", "text/csv").unwrap();
    let dense = invoke(&m, b"1,0,2\n", "text/csv", "text/csv").unwrap();
    assert_eq!(text(&sparse), text(&dense));
}

#[test]
fn a_recordio_header_claiming_512_mib_is_400() {
    let m = regressor();
    let mut body = linear_learner::recordio::MAGIC.to_le_bytes().to_vec();
    body.extend_from_slice(&((1u32 << 29) - 8).to_le_bytes());
    let err = invoke(&m, &body, "application/x-recordio-protobuf", "application/json").unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadRequest);
    assert!(err.message.contains("claims 536870904 bytes"), "{}", err.message);
}

#[test]
fn scores_that_overflow_are_400_naming_the_record() {
    let m = regressor();
    // 1e38 + 2e38 + 0.5e38 overflows float32 (3.4e38) though every feature is finite.
    let err = invoke(&m, b"1,2,3\n1e38,1e38,1e38\n", "text/csv", "application/json").unwrap_err();
    assert_eq!((err.kind, err.record), (ErrorKind::BadRequest, Some(1)));
    assert!(
        err.message.contains("record 1: the score is 3.5e+38"),
        "{}",
        err.message
    );
    // Overflowing f64 as well.
    let err = invoke(&m, b"1e308,1e308,1e308\n", "text/csv", "text/csv").unwrap_err();
    assert!(err.message.contains("the score is inf"), "{}", err.message);
}

#[test]
fn a_huge_bad_field_is_quoted_as_a_bounded_excerpt() {
    let m = regressor();
    let mut body = b"1,".to_vec();
    body.extend(std::iter::repeat_n(b'x', 5 << 20));
    body.extend_from_slice(b"\n\r,3\n");
    let err = invoke(&m, &body, "text/csv", "application/json").unwrap_err();
    assert_eq!((err.kind, err.record), (ErrorKind::BadRequest, Some(0)));
    assert!(err.message.len() < 400, "{} bytes", err.message.len());
    assert!(err.message.contains("(5242880 bytes)"), "{}", err.message);
}

#[test]
fn records_times_classes_past_the_bound_are_413() {
    let mut m = model(
        "multiclass_classifier",
        "softmax_loss",
        vec![vec![1.0], vec![0.0], vec![-1.0]],
        vec![0.0; 3],
    );
    m.max_scores = 9;
    // Three records × three classes fit; four do not.
    assert!(invoke(&m, b"1\n2\n3\n", "text/csv", "text/csv").is_ok());
    let err = invoke(&m, b"1\n2\n3\n4\n", "text/csv", "text/csv").unwrap_err();
    assert_eq!(err.kind, ErrorKind::PayloadTooLarge);
    assert!(
        err.message
            .contains("4 records with 3 scores each are more than the 9 scores"),
        "{}",
        err.message
    );
}

#[test]
fn dense_and_sparse_records_mix_in_one_request() {
    let m = regressor();
    let mixed = br#"{"instances": [
        {"features": [1, 2, 2]},
        {"data": {"features": {"keys": [1], "shape": [3], "values": [3]}}},
        {"features": [0, 0, 1]},
        {"data": {"features": {"keys": [0, 2], "values": [1, 2]}}}
    ]}"#;
    let dense = b"1,2,2\n0,3,0\n0,0,1\n1,0,2\n";
    let a = invoke(&m, mixed, "application/json", "text/csv").unwrap();
    let b = invoke(&m, dense, "text/csv", "text/csv").unwrap();
    assert_eq!(text(&a), text(&b));
    assert_eq!(text(&a).lines().count(), 4);
}
