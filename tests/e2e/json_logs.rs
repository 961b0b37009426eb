//! `MODELSTAGE_LOG_FORMAT=json`: every line the server, its workers and the
//! stage libraries write is one JSON object, through bad requests, a hostile
//! body and a crashing stage.

use std::time::{Duration, Instant};

use crate::support::{self, get, json, ping, post, stage_lib, tempdir, Server};

const JSON_ENV: (&str, &str) = ("MODELSTAGE_LOG_FORMAT", "json");

/// Every line of `server`'s output, parsed; a line that is not a JSON object
/// with the record's keys fails the test.
fn records(server: &Server) -> Vec<serde_json::Value> {
    let log = server.log_text();
    assert!(!log.is_empty(), "the server wrote nothing");
    log.lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line:?}\n{log}"));
            for key in ["timestamp", "level", "component", "message"] {
                assert!(v[key].is_string(), "no {key} in {line}");
            }
            v
        })
        .collect()
}

/// Waits until some record's message contains `needle`.
fn wait_for_message(server: &Server, needle: &str) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let records = records(server);
        let found = records
            .iter()
            .any(|r| r["message"].as_str().unwrap().contains(needle));
        if found || Instant::now() > deadline {
            assert!(found, "no record says {needle:?}: {records:#?}");
            return records;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_hostile_body_and_bad_requests_log_json_lines() {
    let model = tempdir();
    let server = support::serve(
        &stage_lib("quoting"),
        model.path(),
        // DEBUG: every line there is, the workers' too.
        &[
            JSON_ENV,
            ("SAGEMAKER_MAX_PAYLOAD_IN_MB", "1"),
            ("SAGEMAKER_CONTAINER_LOG_LEVEL", "10"),
        ],
    );
    let hostile = "\"a\nFORGED-LINE INFO modelstage all is fine\r\x1b[31mred\x1b[0m\u{0}\u{2028}\",1";
    let (status, _, answer) = post(&server.url, "text/csv", None, hostile.as_bytes());
    assert_eq!(status, 400);
    assert!(json(&answer)["message"].as_str().unwrap().contains("FORGED-LINE"));
    // More bad requests: too large, and a route that does not exist.
    let (status, _, _) = post(&server.url, "text/csv", None, &vec![b'x'; 2 * 1024 * 1024]);
    assert_eq!(status, 413);
    assert_eq!(get(&server.url, "/nope").0, 404);

    let records = wait_for_message(&server, "400 from");
    // The stage's own line carries the body as it was, unescaped by the
    // logger (JSON escapes it), and the request id of the request.
    let stage_line = records
        .iter()
        .find(|r| r["message"].as_str().unwrap().starts_with("the stage got"))
        .unwrap_or_else(|| panic!("no line from the stage: {records:#?}"));
    assert_eq!(stage_line["message"], format!("the stage got: {hostile}"));
    assert!(stage_line["request_id"].is_string(), "{stage_line}");
    assert_eq!(stage_line["level"], "WARN");
    let components: Vec<&str> = records.iter().map(|r| r["component"].as_str().unwrap()).collect();
    assert!(components.contains(&"modelstage"), "{components:?}");
    assert!(components.contains(&"quoting"), "{components:?}");
}

#[test]
fn a_crashing_stage_logs_json_lines() {
    let model = tempdir();
    let server = support::serve(
        &stage_lib("abort_on_request"),
        model.path(),
        &[JSON_ENV, ("SAGEMAKER_MODEL_SERVER_WORKERS", "1")],
    );
    let (status, _, _) = post(&server.url, "text/plain", None, b"abort");
    assert!(status >= 500, "{status}");
    let start = Instant::now();
    while ping(&server.url) != Some(200) {
        assert!(start.elapsed() < Duration::from_secs(10), "no replacement worker");
        std::thread::sleep(Duration::from_millis(10));
    }
    let (status, _, out) = post(&server.url, "text/plain", None, b"after");
    assert_eq!((status, out.as_slice()), (200, &b"after"[..]));
    let crash = wait_for_message(&server, "SIGABRT");
    assert!(
        crash
            .iter()
            .any(|r| r["level"] == "ERROR" || r["level"] == "WARN"),
        "{crash:#?}"
    );
    // Through the shutdown too.
    let mut server = server;
    server.terminate();
    server
        .wait_exit(Duration::from_secs(10))
        .expect("serve exits on SIGTERM");
    std::thread::sleep(Duration::from_millis(100));
    records(&server);
}
