//! Hostile request bodies through `modelstage serve`: each is answered with
//! a 4xx JSON error naming the stage, the hook and (where it applies) the
//! record, its message quotes at most a bounded excerpt, and the worker
//! that read it is still the one answering afterwards: no abort, no panic,
//! no replacement.

use std::path::Path;

use crate::support::*;

/// score = 0.1 + x0 + 2 x1 + 0.5 x2: a Linear Learner model file as
/// training writes it, without training.
fn linear_learner_model(dir: &Path) {
    let model = serde_json::json!({
        "format": "modelstage-linear-learner/1",
        "predictor_type": "regressor",
        "loss": "squared_loss",
        "feature_dim": 3,
        "weights": [[1.0, 2.0, 0.5]],
        "bias": [0.1],
        "normalization": {
            "feature_mean": [0.0, 0.0, 0.0],
            "feature_scale": [1.0, 1.0, 1.0],
            "label_mean": 0.0,
            "label_scale": 1.0
        },
        "training": null
    });
    std::fs::write(dir.join("linear-learner.json"), model.to_string()).unwrap();
}

/// The pids of the server's worker processes (its children), sorted.
fn worker_pids(server: &Server) -> Vec<u32> {
    let parent = server.child.id().to_string();
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                // `pid (comm) state ppid ...`; comm may hold spaces, so split after the ')'.
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                    == Some(parent.as_str())
            })
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// The peak resident memory of a process (`VmHWM`), in KiB.
fn peak_kib(pid: u32) -> i64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in {status}"))
}

/// A server of one worker, loaded and ready, and that worker's pid.
struct OneWorker {
    server: Server,
    stage: &'static str,
    pids: Vec<u32>,
}

fn one_worker(stage: &'static str, model_dir: &Path) -> OneWorker {
    let server = serve(
        &stage_lib(stage),
        model_dir,
        &[("SAGEMAKER_MODEL_SERVER_WORKERS", "1")],
    );
    let pids = worker_pids(&server);
    assert_eq!(pids.len(), 1, "{pids:?}");
    OneWorker { server, stage, pids }
}

const CSV: &str = "text/csv";
const JSON: &str = "application/json";
const JSONLINES: &str = "application/jsonlines";
const RECORDIO: &str = "application/x-recordio-protobuf";

impl OneWorker {
    /// Posts a hostile `(Content-Type, Accept, body)` and checks the answer
    /// is `(status, hook, record, says)`: a JSON error naming the stage and
    /// the hook, the record when given, a bounded message containing `says`.
    /// Returns the message.
    fn refused(&self, request: (&str, &str, &[u8]), want: (u16, &str, Option<u64>, &str)) -> String {
        let ((content_type, accept, body), (status, hook, record, says)) = (request, want);
        let (got, headers, out) = post(&self.server.url, content_type, Some(accept), body);
        assert_eq!(got, status, "{}", String::from_utf8_lossy(&out));
        assert_eq!(header(&headers, "content-type"), Some(JSON));
        let e = json(&out);
        assert_eq!(
            (e["stage"].as_str(), e["hook"].as_str()),
            (Some(self.stage), Some(hook)),
            "{e}"
        );
        assert_eq!(
            (e["status"].as_u64(), e["record"].as_u64()),
            (Some(u64::from(status)), record),
            "{e}"
        );
        let message = e["message"].as_str().unwrap().to_string();
        assert!(message.contains(says), "{says:?} not in {message:?}");
        assert!(out.len() < 2048, "an error body of {} bytes", out.len());
        message
    }

    /// The same worker answers a good request, and nothing was logged about
    /// a worker dying.
    fn still_alive(&self, content_type: &str, body: &[u8], answer: &[u8]) {
        let (status, _, out) = post(&self.server.url, content_type, Some(JSON), body);
        assert_eq!(
            (status, String::from_utf8_lossy(&out).as_ref()),
            (200, String::from_utf8_lossy(answer).as_ref())
        );
        let log = self.server.log_text();
        assert_eq!(
            worker_pids(&self.server),
            self.pids,
            "the worker was replaced:\n{log}"
        );
        assert!(
            !log.contains("SIG") && !log.contains("panicked"),
            "a worker crashed or panicked:\n{log}"
        );
    }
}

const GOOD_CSV: &[u8] = b"1,2,2\n";
const GOOD_ANSWER: &[u8] = br#"{"predictions": [{"score": 6.099999904632568}]}"#;

/// Appends a protobuf varint.
fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends field `tag` holding `bytes` (wire type 2).
fn field(out: &mut Vec<u8>, tag: u64, bytes: &[u8]) {
    varint(out, tag << 3 | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// One RecordIO-framed `aialgs.data.Record` whose `features["values"]` is
/// a sparse Float32Tensor of one key 0 and the given shape.
fn sparse_recordio(shape: u64) -> Vec<u8> {
    let mut tensor = Vec::new();
    field(&mut tensor, 1, &1.0f32.to_le_bytes()); // values
    field(&mut tensor, 2, &[0]); // keys
    let mut dims = Vec::new();
    varint(&mut dims, shape);
    field(&mut tensor, 3, &dims); // shape
    let mut value = Vec::new();
    field(&mut value, 2, &tensor); // Value.float32_tensor
    let mut entry = Vec::new();
    field(&mut entry, 1, b"values");
    field(&mut entry, 2, &value);
    let mut record = Vec::new();
    field(&mut record, 1, &entry); // Record.features
    let mut body = 0xCED7_230Au32.to_le_bytes().to_vec();
    body.extend_from_slice(&(record.len() as u32).to_le_bytes());
    body.extend_from_slice(&record);
    body.resize(body.len().next_multiple_of(4), 0);
    body
}

#[test]
fn sparse_shapes_past_the_model_dimension_are_400() {
    let dir = tempdir();
    linear_learner_model(dir.path());
    let w = one_worker("linear_learner", dir.path());
    for shape in [1_000_000_000_000u64, 3_000_000_000_000_000_000] {
        let sparse =
            format!(r#"{{"data": {{"features": {{"keys": [0], "shape": [{shape}], "values": [1]}}}}}}"#);
        let batch = format!(r#"{{"instances": [{{"features": [1, 2, 2]}}, {sparse}]}}"#);
        let says = format!("features has shape [{shape}], but feature_dim is 3");
        let record_1 = format!("record 1: {says}");
        w.refused(
            (JSON, JSON, batch.as_bytes()),
            (400, "input_fn", Some(1), &record_1),
        );
        w.refused(
            (JSONLINES, JSON, sparse.as_bytes()),
            (400, "input_fn", Some(0), &says),
        );
        let recordio = sparse_recordio(shape);
        w.refused(
            (RECORDIO, JSON, &recordio),
            (400, "input_fn", Some(0), &says.replace("features", "")),
        );
    }
    w.still_alive(CSV, GOOD_CSV, GOOD_ANSWER);
    // A well-formed sparse record of the model's shape is answered as its dense twin.
    let (status, _, out) = post(&w.server.url, RECORDIO, Some(CSV), &sparse_recordio(3));
    assert_eq!(
        (status, String::from_utf8_lossy(&out).as_ref()),
        (200, "1.100000023841858\n")
    );
}

#[test]
fn a_recordio_header_claiming_512_mib_is_400_without_the_allocation() {
    let dir = tempdir();
    linear_learner_model(dir.path());
    let w = one_worker("linear_learner", dir.path());
    let peak_before = peak_kib(w.pids[0]);
    let mut body = 0xCED7_230Au32.to_le_bytes().to_vec();
    body.extend_from_slice(&((1u32 << 29) - 8).to_le_bytes());
    let says = "claims 536870904 bytes of payload but only 0 follow";
    for _ in 0..8 {
        w.refused((RECORDIO, JSON, &body), (400, "input_fn", None, says));
    }
    // Reading the claim at its word would have touched 512 MiB.
    let grew = peak_kib(w.pids[0]) - peak_before;
    assert!(grew < 64 * 1024, "the worker's peak memory grew by {grew} KiB");
    w.still_alive(CSV, GOOD_CSV, GOOD_ANSWER);
}

#[test]
fn a_score_past_float32_is_400_naming_the_record_not_inf_in_a_200() {
    let dir = tempdir();
    linear_learner_model(dir.path());
    let w = one_worker("linear_learner", dir.path());
    let says = "record 1: the score is 3.5e+38, which is not a finite 32-bit float";
    for accept in [JSON, JSONLINES, CSV] {
        w.refused(
            (CSV, accept, b"1,2,2\n1e38,1e38,1e38\n"),
            (400, "predict_fn", Some(1), says),
        );
    }
    w.still_alive(CSV, GOOD_CSV, GOOD_ANSWER);
}

#[test]
fn npy_with_a_non_ascii_dtype_and_outputs_csv_cannot_hold_are_4xx() {
    let dir = tempdir();
    let w = one_worker("doubler", dir.path());
    let mut npy = b"\x93NUMPY\x01\x00\x76\x00".to_vec();
    npy.extend_from_slice("{'descr': 'éf8', 'fortran_order': False, 'shape': (1,), }".as_bytes());
    npy.resize(127, b' ');
    npy.push(b'\n');
    npy.extend_from_slice(&1.0f64.to_le_bytes());
    w.refused(
        ("application/x-npy", JSON, &npy),
        (400, "input_fn", None, "is not supported"),
    );
    // `1` is a 0-d array: JSON holds it, CSV and JSON Lines cannot (406).
    for accept in [CSV, JSONLINES] {
        w.refused((JSON, accept, b"1"), (406, "output_fn", None, "shape []"));
    }
    w.still_alive(JSON, b"1", b"2.0");
}

#[test]
fn a_5_mb_bad_field_is_quoted_as_a_bounded_escaped_excerpt() {
    let mut field = vec![b'x'; 5 << 20];
    field[100] = b'\r';
    // Linear Learner's own CSV reader, and the SDK's through the doubler
    // (a quoted field holding a line break and a forged log line).
    let linear_learner = [b"1,2,2\n1,".as_slice(), &field, b",3\n"].concat();
    let doubler = [b"1,2\n3,\"".as_slice(), &field, b"\n2026-01-01 INFO forged\"\n"].concat();
    // (stage, body, what the message says, a good request and its answer)
    let cases = [
        (
            "linear_learner",
            linear_learner,
            "... (5242880 bytes)",
            (GOOD_CSV, GOOD_ANSWER),
        ),
        (
            "doubler",
            doubler,
            "bytes)\" is not a number",
            (b"1,2\n", b"[2.0, 4.0]"),
        ),
    ];
    let dir = tempdir();
    linear_learner_model(dir.path());
    for (stage, body, says, (good, answer)) in cases {
        let w = one_worker(stage, dir.path());
        let message = w.refused((CSV, JSON, &body), (400, "input_fn", Some(1), says));
        assert!(message.len() < 600, "{message}");
        assert!(
            message.contains("\\r") && !message.contains(['\n', '\r']),
            "{message}"
        );
        let log = w.server.log_text();
        assert!(
            !log.lines().any(|l| l.starts_with("2026-01-01 INFO forged")),
            "{log}"
        );
        w.still_alive(CSV, good, answer);
    }
}
