//! The Open Inference Protocol (KServe's V2, REST) on `modelstage serve`'s port: every route,
//! every datatype, flat and nested data, requested outputs, the binary tensor data extension,
//! errors as `{"error": ...}`, a declared signature, and the abalone featurizer, Linear Learner
//! and their fused pipeline answering the blog's record with the numbers of `/invocations`.
//! `tritonclient_drives_the_protocol` runs a real client (Triton's) against it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

/// `POST path` with a body and headers: status, headers, body.
fn infer_raw(
    url: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    post_to(url, path, &headers, &body)
}

fn infer(url: &str, model: &str, request: &Value) -> (u16, Value) {
    let (status, _, body) = infer_raw(
        url,
        &format!("/v2/models/{model}/infer"),
        &[("content-type", "application/json".into())],
        request.to_string().into_bytes(),
    );
    (status, json(&body))
}

fn get_json(url: &str, path: &str) -> (u16, Value) {
    let (status, body) = get(url, path);
    let value = if body.is_empty() { Value::Null } else { json(&body) };
    (status, value)
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn error_of(body: &Value) -> &str {
    let Some(map) = body.as_object() else {
        panic!("not an error object: {body}")
    };
    assert_eq!(
        map.len(),
        1,
        "the protocol's error body has only \"error\": {body}"
    );
    body["error"].as_str().unwrap()
}

#[test]
fn every_route_answers_as_the_protocol_says() {
    let mut server = spawn_serve(
        &[
            "--stage",
            stage_lib("slow").to_str().unwrap(),
            "--model-dir",
            "/nonexistent",
        ],
        &[
            ("FIXTURE_MODEL_SLEEP_MS", "1500"),
            ("SAGEMAKER_MODEL_SERVER_WORKERS", "1"),
        ],
    );
    // Live at once, ready only once the model is loaded, like /ping.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let live = loop {
        if let Ok(r) = reqwest::blocking::get(format!("{}/v2/health/live", server.url)) {
            break r;
        }
        assert!(std::time::Instant::now() < deadline, "serve did not listen");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(live.status().as_u16(), 200);
    assert_eq!(json(&live.bytes().unwrap()), json!({"live": true}));
    let (status, body) = get_json(&server.url, "/v2/health/ready");
    assert_eq!(
        (status, body),
        (400, json!({"ready": false})),
        "ready before the model loaded"
    );
    assert_eq!(ping(&server.url), Some(503));
    let (status, body) = get_json(&server.url, "/v2/models/slow/ready");
    assert_eq!((status, body), (400, json!({"name": "slow", "ready": false})));
    wait_ready(&mut server, Duration::from_secs(20));
    let (status, body) = get_json(&server.url, "/v2/health/ready");
    assert_eq!((status, body), (200, json!({"ready": true})));
    let (status, body) = get_json(&server.url, "/v2/models/slow/ready");
    assert_eq!((status, body), (200, json!({"name": "slow", "ready": true})));
    let (status, body) = get_json(&server.url, "/v2/models/slow/versions/0.1.0/ready");
    assert_eq!((status, body["ready"].clone()), (200, json!(true)));

    let (status, body) = get_json(&server.url, "/v2");
    assert_eq!(status, 200);
    assert_eq!(body["name"], "modelstage");
    assert!(body["version"].is_string());
    assert_eq!(body["extensions"], json!(["binary_tensor_data"]));

    // A stage that declares nothing: one FP64 matrix in, one out.
    let expected = json!({
        "name": "slow", "versions": ["0.1.0"], "platform": "modelstage",
        "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, -1]}],
        "outputs": [{"name": "output-0", "datatype": "FP64", "shape": [-1, -1]}],
    });
    assert_eq!(get_json(&server.url, "/v2/models/slow"), (200, expected.clone()));
    assert_eq!(
        get_json(&server.url, "/v2/models/slow/versions/0.1.0"),
        (200, expected)
    );

    for path in [
        "/v2/models/nope",
        "/v2/models/slow/versions/9",
        "/v2/models/nope/ready",
        "/v2/models/slow/versions/9/ready",
    ] {
        let (status, body) = get_json(&server.url, path);
        assert_eq!(status, 404, "{path}: {body}");
        let message = error_of(&body);
        assert!(
            message.contains("unknown model") && message.contains("serves model \"slow\""),
            "{message}"
        );
    }
    let (status, body) = infer(&server.url, "nope", &json!({"inputs": []}));
    assert_eq!(status, 404);
    assert!(error_of(&body).contains("unknown model \"nope\""));
    let (status, body) = get_json(&server.url, "/v2/nothing");
    assert_eq!(status, 404);
    assert!(error_of(&body).contains("no route for GET \"/v2/nothing\""));
    let (status, body) = get_json(&server.url, "/v2/models/slow/infer");
    assert_eq!(status, 405);
    assert!(error_of(&body).contains("GET is not allowed on \"/v2/models/slow/infer\""));
    let (status, _, body) = post_to(&server.url, "/v2/models/slow", &[], b"");
    assert_eq!(status, 405, "{}", String::from_utf8_lossy(&body));
    // The SageMaker routes are still there.
    assert_eq!(ping(&server.url), Some(200));
    let (status, _, body) = post(&server.url, "text/plain", None, b"hello");
    assert_eq!((status, body.as_slice()), (200, &b"hello"[..]));
}

/// The doubler doubles whatever numbers its CSV records hold.
fn doubler() -> Server {
    serve(&stage_lib("doubler"), Path::new("/nonexistent"), &[])
}

#[test]
fn every_datatype_flat_and_nested_reaches_the_stage_and_comes_back() {
    let server = doubler();
    let cases = [
        (
            "BOOL",
            json!([[true, false], [false, true]]),
            vec![2.0, 0.0, 0.0, 2.0],
        ),
        ("UINT8", json!([[0, 255], [1, 2]]), vec![0.0, 510.0, 2.0, 4.0]),
        (
            "UINT16",
            json!([[0, 65535], [1, 2]]),
            vec![0.0, 131070.0, 2.0, 4.0],
        ),
        (
            "UINT32",
            json!([[0, 4294967295u64], [1, 2]]),
            vec![0.0, 8589934590.0, 2.0, 4.0],
        ),
        (
            "UINT64",
            json!([[0, 1099511627776u64], [1, 2]]),
            vec![0.0, 2199023255552.0, 2.0, 4.0],
        ),
        (
            "INT8",
            json!([[-128, 127], [1, 2]]),
            vec![-256.0, 254.0, 2.0, 4.0],
        ),
        (
            "INT16",
            json!([[-32768, 32767], [1, 2]]),
            vec![-65536.0, 65534.0, 2.0, 4.0],
        ),
        ("INT32", json!([[-5, 7], [1, 2]]), vec![-10.0, 14.0, 2.0, 4.0]),
        (
            "INT64",
            json!([[-1099511627776i64, 3], [1, 2]]),
            vec![-2199023255552.0, 6.0, 2.0, 4.0],
        ),
        ("FP16", json!([[0.5, -1.25], [1, 2]]), vec![1.0, -2.5, 2.0, 4.0]),
        (
            "FP32",
            json!([[0.455, 0.365], [1, 2]]),
            vec![0.91, 0.73, 2.0, 4.0],
        ),
        ("FP64", json!([[0.1, 1e300], [1, 2]]), vec![0.2, 2e300, 2.0, 4.0]),
        (
            "BYTES",
            json!([["0.5", "3"], ["1", "2"]]),
            vec![1.0, 6.0, 2.0, 4.0],
        ),
    ];
    for (datatype, nested, doubled) in cases {
        let flat: Vec<Value> = nested
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|row| row.as_array().unwrap().clone())
            .collect();
        for data in [nested.clone(), Value::from(flat)] {
            let request = json!({"id": format!("req-{datatype}"), "inputs": [
                {"name": "x", "datatype": datatype, "shape": [2, 2], "data": data}
            ]});
            let (status, body) = infer(&server.url, "doubler", &request);
            assert_eq!(status, 200, "{datatype}: {body}");
            assert_eq!(body["model_name"], "doubler");
            assert_eq!(body["model_version"], "0.1.0");
            assert_eq!(body["id"], format!("req-{datatype}"));
            let out = &body["outputs"][0];
            assert_eq!(out["name"], "output-0");
            assert_eq!(out["datatype"], "FP64");
            assert_eq!(out["shape"], json!([2, 2]));
            assert_eq!(floats(&out["data"]), doubled, "{datatype}: {body}");
        }
    }
    // The same records through /invocations: the same numbers.
    let (status, _, body) = post(
        &server.url,
        "text/csv",
        Some("application/json"),
        b"0.455,0.365\n1,2\n",
    );
    assert_eq!(status, 200);
    let via_invocations: Vec<f64> = json(&body).as_array().unwrap().iter().flat_map(floats).collect();
    assert_eq!(via_invocations, vec![0.91, 0.73, 2.0, 4.0]);
}

#[test]
fn binary_tensor_data_in_and_out() {
    let server = doubler();
    let header = json!({
        "inputs": [
            {"name": "a", "datatype": "FP32", "shape": [2, 1], "parameters": {"binary_data_size": 8}},
            {"name": "b", "datatype": "FP64", "shape": [2, 1], "parameters": {"binary_data_size": 16}}
        ],
        "outputs": [{"name": "output-0", "parameters": {"binary_data": true}}]
    })
    .to_string();
    let mut body = header.clone().into_bytes();
    for x in [1.5f32, -2.0] {
        body.extend_from_slice(&x.to_le_bytes());
    }
    for x in [0.25f64, 1e10] {
        body.extend_from_slice(&x.to_le_bytes());
    }
    let (status, headers, answer) = infer_raw(
        &server.url,
        "/v2/models/doubler/infer",
        &[
            ("content-type", "application/octet-stream".into()),
            ("inference-header-content-length", header.len().to_string()),
        ],
        body,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let n: usize = header_value(&headers, "inference-header-content-length")
        .parse()
        .unwrap();
    let head = json(&answer[..n]);
    let out = &head["outputs"][0];
    assert_eq!(
        (out["datatype"].clone(), out["shape"].clone()),
        (json!("FP64"), json!([2, 2]))
    );
    assert_eq!(out["parameters"]["binary_data_size"], 32);
    assert!(out.get("data").is_none(), "{head}");
    let values: Vec<f64> = answer[n..]
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(values, vec![3.0, 0.5, -4.0, 2e10]);

    // binary_data_output for every output; JSON again when an output says so.
    let request = json!({
        "parameters": {"binary_data_output": true},
        "inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 2], "data": [1, 2]}]
    });
    let (status, headers, answer) = infer_raw(
        &server.url,
        "/v2/models/doubler/infer",
        &[],
        request.to_string().into_bytes(),
    );
    assert_eq!(status, 200);
    let n: usize = header_value(&headers, "inference-header-content-length")
        .parse()
        .unwrap();
    assert_eq!(answer.len() - n, 16);
    let mut request = request;
    request["outputs"] = json!([{"name": "output-0", "parameters": {"binary_data": false}}]);
    let (status, body) = infer(&server.url, "doubler", &request);
    assert_eq!(status, 200);
    // The doubler squeezes one record, as the SageMaker toolkits' CSV decoder does.
    assert_eq!(body["outputs"][0]["data"], json!([2.0, 4.0]));

    // Binary data that does not add up.
    let (status, _, answer) = infer_raw(
        &server.url,
        "/v2/models/doubler/infer",
        &[("inference-header-content-length", header.len().to_string())],
        header.clone().into_bytes(),
    );
    assert_eq!(status, 400);
    assert!(error_of(&json(&answer)).contains("input \"a\": \"binary_data_size\" is 8 bytes but only 0"));
    let (status, _, answer) = infer_raw(
        &server.url,
        "/v2/models/doubler/infer",
        &[("inference-header-content-length", "many".into())],
        header.into_bytes(),
    );
    assert_eq!(status, 400);
    assert!(error_of(&json(&answer)).contains("Inference-Header-Content-Length header must be a number"));
}

fn header_value<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    header(headers, name).unwrap_or_else(|| panic!("no {name} header: {headers:?}"))
}

#[test]
fn bad_requests_get_the_protocols_error_naming_the_input() {
    let server = doubler();
    let cases = [
        (b"{".to_vec(), "the inference request is not JSON"),
        (
            json!({"inputs": [{"name": "x", "datatype": "FP32", "shape": [2], "data": [1]}]})
                .to_string()
                .into_bytes(),
            "input \"x\": shape [2] calls for 2 elements but \"data\" holds 1",
        ),
        (
            json!({"inputs": [{"name": "x", "datatype": "INT8", "shape": [1], "data": [300]}]})
                .to_string()
                .into_bytes(),
            "input \"x\": element 0 is 300, out of the range of INT8",
        ),
        (
            json!({"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 2], "data": [[1, 2], [3]]}]})
                .to_string()
                .into_bytes(),
            "input \"x\": \"data\" is ragged",
        ),
        (
            json!({"inputs": [{"name": "x", "datatype": "REAL", "shape": [1], "data": [1]}]})
                .to_string()
                .into_bytes(),
            "input \"x\": unknown datatype \"REAL\"",
        ),
        (
            json!({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 1], "data": [1]}],
                "outputs": [{"name": "nope"}]})
            .to_string()
            .into_bytes(),
            "the requested output \"nope\" is not one of this model's outputs (\"output-0\")",
        ),
        (
            json!({"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 1], "data": [1, 2]},
                           {"name": "y", "datatype": "FP32", "shape": [3, 1], "data": [1, 2, 3]}]})
            .to_string()
            .into_bytes(),
            "input \"y\" has 3 records (shape [3, 1]) but input \"x\" has 2",
        ),
    ];
    for (body, needle) in cases {
        let (status, _, answer) = infer_raw(&server.url, "/v2/models/doubler/infer", &[], body);
        assert_eq!(status, 400, "{needle}: {}", String::from_utf8_lossy(&answer));
        let message = error_of(&json(&answer)).to_string();
        assert!(message.contains(needle), "expected {needle:?} in {message:?}");
    }
    // The stage's own 400 names the stage, the hook and the record.
    let (status, body) = infer(
        &server.url,
        "doubler",
        &json!({"inputs": [{"name": "x", "datatype": "BYTES", "shape": [2, 1], "data": ["1", "abc"]}]}),
    );
    assert_eq!(status, 400, "{body}");
    let message = error_of(&body);
    assert!(
        message.starts_with("stage doubler, input_fn, record 1: "),
        "{message}"
    );
    assert!(message.contains("\"abc\" is not a number"), "{message}");
    // A hostile name cannot break the body or the log line.
    let (status, body) = infer(
        &server.url,
        "doubler",
        &json!({"inputs": [{"name": "a\nb\"c", "datatype": "FP32", "shape": [1], "data": ["z"]}]}),
    );
    assert_eq!(status, 400);
    assert!(error_of(&body).starts_with("input \"a\\nb\\\"c\": "), "{body}");
}

#[test]
fn the_payload_limit_holds_for_infer() {
    let server = serve(
        &stage_lib("doubler"),
        Path::new("/nonexistent"),
        &[("SAGEMAKER_MAX_PAYLOAD_IN_MB", "1")],
    );
    let data: Vec<Value> = (0..300_000).map(|i| json!(i)).collect();
    let request = json!({"inputs": [{"name": "x", "datatype": "INT32", "shape": [300_000], "data": data}]});
    let (status, body) = infer(&server.url, "doubler", &request);
    assert_eq!(status, 413);
    assert!(error_of(&body).contains("1 MB limit (SAGEMAKER_MAX_PAYLOAD_IN_MB)"));
}

#[test]
fn a_declared_signature_orders_checks_and_types_the_tensors() {
    let server = serve(&stage_lib("typed_doubler"), Path::new("/nonexistent"), &[]);
    let (status, body) = get_json(&server.url, "/v2/models/typed-doubler");
    assert_eq!(status, 200);
    assert_eq!(
        body["inputs"],
        json!([{"name": "a", "datatype": "INT32", "shape": [-1, 1]}, {"name": "b", "datatype": "FP32", "shape": [-1, 2]}])
    );
    assert_eq!(
        body["outputs"],
        json!([{"name": "doubled", "datatype": "FP32", "shape": [-1, 3]}])
    );
    // Inputs in any order become the declared columns a, b; the answer is typed FP32.
    let request = json!({"inputs": [
        {"name": "b", "datatype": "FP32", "shape": [2, 2], "data": [[0.5, 1.5], [2, 3]]},
        {"name": "a", "datatype": "INT32", "shape": [2, 1], "data": [[7], [8]]}
    ]});
    let (status, body) = infer(&server.url, "typed-doubler", &request);
    assert_eq!(status, 200, "{body}");
    let out = &body["outputs"][0];
    assert_eq!(out["name"], "doubled");
    assert_eq!(out["datatype"], "FP32");
    assert_eq!(out["shape"], json!([2, 3]));
    assert_eq!(floats(&out["data"]), vec![14.0, 1.0, 3.0, 16.0, 4.0, 6.0]);
    // FP32 binary output: four bytes per element.
    let mut binary = request.clone();
    binary["parameters"] = json!({"binary_data_output": true});
    let (status, headers, answer) = infer_raw(
        &server.url,
        "/v2/models/typed-doubler/versions/0.1.0/infer",
        &[],
        binary.to_string().into_bytes(),
    );
    assert_eq!(status, 200);
    let n: usize = header_value(&headers, "inference-header-content-length")
        .parse()
        .unwrap();
    let values: Vec<f32> = answer[n..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(values, vec![14.0, 1.0, 3.0, 16.0, 4.0, 6.0]);

    let a = json!({"name": "a", "datatype": "INT32", "shape": [1, 1], "data": [1]});
    let b = json!({"name": "b", "datatype": "FP32", "shape": [1, 2], "data": [1, 2]});
    for (inputs, needle) in [
        (
            json!([b]),
            "input \"a\" is missing; model \"typed-doubler\" needs it",
        ),
        (
            json!([a, {"name": "b", "datatype": "FP64", "shape": [1, 2], "data": [1, 2]}]),
            "input \"b\" is FP64, but the model takes FP32",
        ),
        (
            json!([a, {"name": "b", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3]}]),
            "input \"b\" has shape [1, 3], but the model takes [-1, 2]",
        ),
        (
            json!([a, b, {"name": "c", "datatype": "FP32", "shape": [1], "data": [1]}]),
            "input \"c\" is not an input of model \"typed-doubler\"; its inputs are \"a\", \"b\"",
        ),
    ] {
        let (status, body) = infer(&server.url, "typed-doubler", &json!({"inputs": inputs}));
        assert_eq!(status, 400, "{body}");
        assert!(error_of(&body).contains(needle), "expected {needle:?} in {body}");
    }
}

/// Featurizes the abalone data with the featurizer's `/invocations` (label first), for Linear
/// Learner's training channel.
fn featurize(featurizer: &Server, dir: &Path) -> PathBuf {
    let data = std::fs::read(abalone_csv()).unwrap();
    let (status, _, body) = post(&featurizer.url, "text/csv", Some("text/csv"), &data);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let train = dir.join("features/train");
    std::fs::create_dir_all(&train).unwrap();
    std::fs::write(train.join("train.csv"), body).unwrap();
    train
}

fn fit_linear_learner(dir: &Path, train: &Path) -> PathBuf {
    let out_dir = dir.join("ll-artifacts");
    let out = fit(&[
        "--stage",
        stage_lib("linear_learner").to_str().unwrap(),
        "--channel",
        &format!("train={}", train.display()),
        "--hyperparameter",
        "predictor_type=regressor",
        "--hyperparameter",
        "feature_dim=10",
        "--hyperparameter",
        "epochs=3",
        "--output-path",
        out_dir.to_str().unwrap(),
        "--job-name",
        "linear-learner",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let model = dir.join("ll-model");
    untar_model(&out_dir.join("linear-learner/output/model.tar.gz"), &model);
    model
}

/// The blog's record: the sex as BYTES and the seven measurements as numbers.
fn blog_request(measurements_type: &str) -> Value {
    json!({"id": "blog", "inputs": [
        {"name": "sex", "datatype": "BYTES", "shape": [1, 1], "data": [["M"]]},
        {"name": "measurements", "datatype": measurements_type, "shape": [1, 7],
         "data": [0.44, 0.365, 0.125, 0.516, 0.2155, 0.114, 0.155]}
    ]})
}
const BLOG_CSV: &[u8] = b"M, 0.44, 0.365, 0.125, 0.516, 0.2155, 0.114, 0.155";

fn score_of(body: &[u8]) -> f64 {
    json(body)["predictions"][0]["score"].as_f64().unwrap()
}

#[test]
fn the_abalone_stages_and_their_pipeline_answer_the_blog_record_as_invocations_does() {
    let dir = tempdir();
    let featurizer_model = crate::featurizer::fit_abalone(dir.path());
    let featurizer = serve(&stage_lib("featurizer"), &featurizer_model, &[]);

    // The featurizer: /invocations' JSON features, and the same numbers through the protocol.
    let (status, _, body) = post(&featurizer.url, "text/csv", Some("application/json"), BLOG_CSV);
    assert_eq!(status, 200);
    let expected = floats(&json(&body)["instances"][0]["features"]);
    assert_eq!(expected.len(), 10);
    for request in [
        blog_request("FP64"),
        blog_request("FP32"),
        json!({"inputs": [{"name": "record", "datatype": "BYTES", "shape": [1, 8],
               "data": ["M", "0.44", "0.365", "0.125", "0.516", "0.2155", "0.114", "0.155"]}]}),
    ] {
        let (status, body) = infer(&featurizer.url, "featurizer", &request);
        assert_eq!(status, 200, "{body}");
        let out = &body["outputs"][0];
        assert_eq!(
            (out["name"].clone(), out["shape"].clone()),
            (json!("features"), json!([1, 10]))
        );
        assert_eq!(floats(&out["data"]), expected, "{request}");
    }

    // Linear Learner on the featurized data set.
    let train = featurize(&featurizer, dir.path());
    let ll_model = fit_linear_learner(dir.path(), &train);
    let ll = serve(&stage_lib("linear_learner"), &ll_model, &[]);
    let features_csv = expected
        .iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let (status, _, body) = post(
        &ll.url,
        "text/csv",
        Some("application/json"),
        features_csv.as_bytes(),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let score = score_of(&body);
    let (status, body) = infer(
        &ll.url,
        "linear_learner",
        &json!({"inputs": [{"name": "features", "datatype": "FP64", "shape": [1, 10], "data": expected}]}),
    );
    assert_eq!(status, 200, "{body}");
    let out = &body["outputs"][0];
    assert_eq!(
        (out["name"].clone(), out["shape"].clone()),
        (json!("score"), json!([1]))
    );
    assert_eq!(floats(&out["data"]), vec![score]);
    // An InferenceGraph sequence passes the featurizer's response on as it is.
    let (status, featurized) = infer(&featurizer.url, "featurizer", &blog_request("FP64"));
    assert_eq!(status, 200);
    let (status, body) = infer(&ll.url, "linear_learner", &featurized);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], "blog");
    assert_eq!(floats(&body["outputs"][0]["data"]), vec![score]);

    // The fused pipeline runs both stages for one protocol request.
    let mut pipeline = spawn_serve(
        &[
            "--stage",
            stage_lib("featurizer").to_str().unwrap(),
            "--stage",
            stage_lib("linear_learner").to_str().unwrap(),
            "--model-dir",
            featurizer_model.to_str().unwrap(),
            "--model-dir",
            ll_model.to_str().unwrap(),
        ],
        &[],
    );
    wait_ready(&mut pipeline, Duration::from_secs(30));
    let (status, _, body) = post(&pipeline.url, "text/csv", Some("application/json"), BLOG_CSV);
    assert_eq!(status, 200);
    assert_eq!(score_of(&body), score);
    let (status, body) = get_json(&pipeline.url, "/v2/models/featurizer+linear_learner");
    assert_eq!(status, 200, "{body}");
    let (status, body) = infer(&pipeline.url, "featurizer+linear_learner", &blog_request("FP32"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], "blog");
    assert_eq!(body["outputs"][0]["name"], "score");
    assert_eq!(floats(&body["outputs"][0]["data"]), vec![score]);
    // A bad record fails in the featurizer, named as the pipeline's container.
    let mut bad = blog_request("FP64");
    bad["inputs"][0]["data"] = json!([["M\"x"]]);
    bad["inputs"][1]["shape"] = json!([1, 6]);
    bad["inputs"][1]["data"] = json!([0.44, 0.365, 0.125, 0.516, 0.2155, 0.114]);
    let (status, body) = infer(&pipeline.url, "featurizer+linear_learner", &bad);
    assert_eq!(status, 400, "{body}");
    assert!(
        error_of(&body).starts_with("container-1 (stage featurizer), input_fn"),
        "{body}"
    );
}

#[test]
fn tritonclient_drives_the_protocol() {
    let check = Command::new(python())
        .args(["-c", "import tritonclient.http, pytest, numpy"])
        .output();
    match check {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "the protocol's client test needs tritonclient[http], pytest and numpy: run ci/setup.sh (pip install -r \
             tests/oip/requirements.txt)\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!("the protocol's client test needs {}: {e}", python()),
    }
    let doubler = doubler();
    let typed = serve(&stage_lib("typed_doubler"), Path::new("/nonexistent"), &[]);
    let out = Command::new(python())
        .args(["-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA", "tests/oip"])
        .current_dir(repo_root())
        .env("OIP_DOUBLER_URL", doubler.url.trim_start_matches("http://"))
        .env("OIP_TYPED_URL", typed.url.trim_start_matches("http://"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run pytest");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the tritonclient tests failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("PASSED tests/oip/test_tritonclient.py::test_infer_binary_and_json"),
        "{stdout}"
    );
    assert!(!stdout.contains("SKIPPED"), "a test skipped itself:\n{stdout}");
}

/// On a multi-model endpoint the protocol's model is one of the loaded
/// models: infer runs on the model the path names (two featurizers fitted
/// on different data each answer the blog's record as their own
/// `POST /models/{name}/invoke` does), and metadata and readiness describe
/// it; a model not loaded is a 404 in the protocol's error body.
#[test]
fn a_multi_model_endpoint_serves_its_loaded_models() {
    use crate::multi_model::{fit_featurizers, serve_mme};
    let dir = tempdir();
    let tarballs = fit_featurizers(dir.path(), 2);
    let server = serve_mme("featurizer", &dir.path().join("opt-ml"), &[]);
    let url = &server.url;

    // The stage's own name is no model here.
    for path in ["/v2/models/f0", "/v2/models/f0/ready", "/v2/models/featurizer"] {
        let (status, body) = get_json(url, path);
        assert_eq!(status, 404, "{path}: {body}");
        assert!(error_of(&body).contains("is not loaded"), "{body}");
    }
    let (status, body) = infer(url, "f0", &blog_request("FP64"));
    assert_eq!(status, 404, "{body}");
    assert!(
        error_of(&body).contains("model \"f0\" is not loaded on this multi-model endpoint"),
        "{body}"
    );

    let mut answers = Vec::new();
    for (i, tar_gz) in tarballs.iter().enumerate() {
        let name = format!("f{i}");
        let folder = dir.path().join(&name);
        untar_model(tar_gz, &folder);
        let load = json!({"model_name": name, "url": folder.to_str().unwrap()}).to_string();
        let (status, _, body) = post_to(url, "/models", &[], load.as_bytes());
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

        let invoke = format!("/models/{name}/invoke");
        let headers = [("content-type", "text/csv"), ("accept", "application/json")];
        let (status, _, body) = post_to(url, &invoke, &headers, BLOG_CSV);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let expected = floats(&json(&body)["instances"][0]["features"]);
        let (status, body) = infer(url, &name, &blog_request("FP64"));
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["model_name"], name.as_str());
        assert_eq!(floats(&body["outputs"][0]["data"]), expected, "{name}");
        answers.push(expected);

        let (status, body) = get_json(url, &format!("/v2/models/{name}/ready"));
        assert_eq!((status, body), (200, json!({"name": name, "ready": true})));
        let (status, body) = get_json(url, &format!("/v2/models/{name}"));
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            (body["name"].as_str(), body["platform"].as_str()),
            (Some(name.as_str()), Some("modelstage"))
        );
    }
    assert_ne!(
        answers[0], answers[1],
        "the two models were fitted on different data"
    );
    let (status, body) = get_json(url, "/v2/models/f0/versions/9/ready");
    assert_eq!(status, 404, "{body}");
    assert!(error_of(&body).contains("model \"f0\" version \"9\""), "{body}");

    // Unloaded, it is gone from the protocol too; the other stays.
    let (status, _, body) = request("DELETE", &format!("{url}/models/f0"), &[], b"");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let (status, body) = infer(url, "f0", &blog_request("FP64"));
    assert_eq!(status, 404, "{body}");
    assert!(error_of(&body).contains("is not loaded"), "{body}");
    assert_eq!(infer(url, "f1", &blog_request("FP64")).0, 200);
}
