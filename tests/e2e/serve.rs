//! `modelstage serve`: the endpoint contract, status codes, crash
//! containment, timeouts, concurrency and graceful shutdown.

use std::time::{Duration, Instant};

use crate::support::*;

fn echo() -> (Server, tempfile::TempDir) {
    let dir = tempdir();
    (serve(&stage_lib("echo"), dir.path(), &[]), dir)
}

#[test]
fn echo_returns_the_body_and_content_type_unchanged() {
    let (server, _dir) = echo();
    let body = b"M, 0.44, 0.365\nF,0.5,0.4\n";
    let (status, headers, out) = post(&server.url, "text/csv; charset=utf-8", Some("text/csv"), body);
    assert_eq!(status, 200);
    assert_eq!(out, body);
    assert_eq!(header(&headers, "content-type"), Some("text/csv; charset=utf-8"));
    assert!(header(&headers, "x-modelstage-request-id").is_some_and(|id| !id.is_empty()));
}

#[test]
fn custom_attributes_round_trip_and_request_ids_are_kept() {
    let (server, _dir) = echo();
    let (status, headers, _) = post_with(
        &server.url,
        "application/json",
        None,
        &[
            ("X-Amzn-SageMaker-Custom-Attributes", "trace=abc,tenant=7"),
            ("X-Modelstage-Request-Id", "req-from-router-1"),
        ],
        b"[1]",
    );
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "x-amzn-sagemaker-custom-attributes"),
        Some("trace=abc,tenant=7")
    );
    assert_eq!(
        header(&headers, "x-modelstage-request-id"),
        Some("req-from-router-1")
    );
    // Without the header, none comes back.
    let (_, headers, _) = post(&server.url, "application/json", None, b"[1]");
    assert_eq!(header(&headers, "x-amzn-sagemaker-custom-attributes"), None);
}

#[test]
fn the_c_stage_serves() {
    let dir = tempdir();
    let server = serve(&stage_lib("c_echo"), dir.path(), &[]);
    let (status, headers, out) = post(&server.url, "application/x-thing", None, b"\x00binary\xffbody");
    assert_eq!(status, 200);
    assert_eq!(out, b"\x00binary\xffbody");
    assert_eq!(header(&headers, "content-type"), Some("application/x-thing"));
    let (status, _, out) = post(&server.url, "text/plain", None, b"");
    assert_eq!(status, 200);
    assert!(out.is_empty());
}

#[test]
fn default_codecs_give_the_toolkit_formats_and_415_406_400() {
    let dir = tempdir();
    let server = serve(&stage_lib("doubler"), dir.path(), &[]);
    let (status, headers, out) = post(&server.url, "text/csv", Some("text/csv"), b"1,2,3\n4,5,6");
    assert_eq!(status, 200);
    assert_eq!(String::from_utf8_lossy(&out), "2.0,4.0,6.0\n8.0,10.0,12.0\n");
    assert_eq!(header(&headers, "content-type"), Some("text/csv"));

    // A missing or */* Accept means the default, application/json.
    for accept in [None, Some("*/*")] {
        let (status, headers, out) = post(&server.url, "text/csv; charset=utf-8", accept, b"1,2,3");
        assert_eq!(status, 200);
        assert_eq!(String::from_utf8_lossy(&out), "[2.0, 4.0, 6.0]");
        assert_eq!(header(&headers, "content-type"), Some("application/json"));
    }

    let (status, _, out) = post(&server.url, "application/x-foo", Some("application/json"), b"1");
    assert_eq!(status, 415);
    let e = json(&out);
    assert_eq!(e["stage"], "doubler");
    assert_eq!(e["hook"], "input_fn");
    assert!(
        e["message"].as_str().unwrap().contains("application/x-foo"),
        "{e}"
    );

    let (status, _, out) = post(&server.url, "text/csv", Some("application/x-foo"), b"1,2");
    assert_eq!(status, 406);
    assert_eq!(json(&out)["hook"], "output_fn");

    let (status, _, out) = post(&server.url, "text/csv", Some("text/csv"), b"1,2\n3,x\n");
    assert_eq!(status, 400);
    let e = json(&out);
    assert_eq!(e["hook"], "input_fn");
    assert!(e["message"].as_str().unwrap().contains('x'), "{e}");
}

#[test]
fn the_default_accept_comes_from_the_environment() {
    let dir = tempdir();
    let server = serve(
        &stage_lib("doubler"),
        dir.path(),
        &[("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "text/csv")],
    );
    let (status, headers, out) = post(&server.url, "application/json", None, b"[[1, 2.5]]");
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), Some("text/csv"));
    assert_eq!(String::from_utf8_lossy(&out), "2.0,5.0\n");
}

#[test]
fn payloads_over_the_limit_get_413() {
    let dir = tempdir();
    let server = serve(
        &stage_lib("echo"),
        dir.path(),
        &[("SAGEMAKER_MAX_PAYLOAD_IN_MB", "1")],
    );
    let (status, _, out) = post(&server.url, "text/csv", None, &vec![b'x'; 1024 * 1024 + 1]);
    assert_eq!(status, 413);
    let e = json(&out);
    assert_eq!(e["stage"], "echo");
    assert!(e["message"].as_str().unwrap().contains("1 MB"), "{e}");
    // Exactly at the limit is fine.
    let (status, _, out) = post(&server.url, "text/csv", None, &vec![b'x'; 1024 * 1024]);
    assert_eq!(status, 200);
    assert_eq!(out.len(), 1024 * 1024);
}

#[test]
fn execution_parameters_come_from_the_environment_or_defaults() {
    let (server, _dir) = echo();
    let (status, body) = get(&server.url, "/execution-parameters");
    assert_eq!(status, 200);
    let p = json(&body);
    assert_eq!(p["BatchStrategy"], "MULTI_RECORD");
    assert_eq!(p["MaxPayloadInMB"], 6);
    assert!(p["MaxConcurrentTransforms"].as_u64().unwrap() >= 1);

    let dir = tempdir();
    let server = serve(
        &stage_lib("echo"),
        dir.path(),
        &[
            ("SAGEMAKER_BATCH_STRATEGY", "SINGLE_RECORD"),
            ("SAGEMAKER_MAX_PAYLOAD_IN_MB", "20"),
            ("SAGEMAKER_MAX_CONCURRENT_TRANSFORMS", "3"),
        ],
    );
    let (_, body) = get(&server.url, "/execution-parameters");
    let p = json(&body);
    assert_eq!(p["BatchStrategy"], "SINGLE_RECORD");
    assert_eq!(p["MaxPayloadInMB"], 20);
    assert_eq!(p["MaxConcurrentTransforms"], 3);
}

#[test]
fn unknown_routes_and_methods_are_refused_clearly() {
    let (server, _dir) = echo();
    let (status, body) = get(&server.url, "/models");
    assert_eq!(status, 404);
    assert!(json(&body)["message"].as_str().unwrap().contains("/models"));
    let (status, _) = get(&server.url, "/invocations");
    assert_eq!(status, 405);
}

#[test]
fn a_panic_in_a_hook_is_a_500_with_the_panic_message() {
    let dir = tempdir();
    let server = serve(&stage_lib("panicking"), dir.path(), &[]);
    let (status, headers, out) = post(&server.url, "text/plain", None, b"hello");
    assert_eq!(status, 500);
    let e = json(&out);
    assert_eq!(e["stage"], "panicking");
    assert_eq!(e["hook"], "predict_fn");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("the fixture panics on purpose (5 bytes)"),
        "{e}"
    );
    // The server is still up and the request id is in the log line about it.
    assert_eq!(ping(&server.url), Some(200));
    let rid = header(&headers, "x-modelstage-request-id").unwrap().to_string();
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        server.log_text().contains(&format!("rid={rid}")),
        "{}",
        server.log_text()
    );
}

#[test]
fn ping_is_503_until_the_model_is_loaded() {
    let dir = tempdir();
    let mut server = spawn_serve(
        &[
            "--stage",
            stage_lib("slow").to_str().unwrap(),
            "--model-dir",
            dir.path().to_str().unwrap(),
        ],
        &[("FIXTURE_MODEL_SLEEP_MS", "1500")],
    );
    // Wait for the HTTP listener, then expect 503 while model_fn sleeps.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut first = None;
    while Instant::now() < deadline && first.is_none() {
        first = ping(&server.url);
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(first, Some(503));
    let (status, _, _) = post(&server.url, "text/plain", None, b"x");
    assert_eq!(status, 503);
    wait_ready(&mut server, Duration::from_secs(10));
}

#[test]
fn a_failing_model_fn_makes_serve_exit_non_zero_with_the_reason() {
    let dir = tempdir();
    let mut server = spawn_serve(
        &[
            "--stage",
            stage_lib("failing_model").to_str().unwrap(),
            "--model-dir",
            dir.path().to_str().unwrap(),
        ],
        &[],
    );
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("serve should exit");
    assert!(!status.success());
    std::thread::sleep(Duration::from_millis(100));
    let log = server.log_text();
    assert!(log.contains("failing-model: model_fn: cannot read"), "{log}");
    assert!(log.contains("model.bin"), "{log}");
}

#[test]
fn a_library_whose_constructor_aborts_is_reported_like_a_failing_model_fn() {
    // The server never loads the library itself: the worker that does dies,
    // and the server exits non-zero with the reason, as for a failing
    // model_fn, instead of dying of the signal.
    let dir = tempdir();
    let mut server = spawn_serve(
        &[
            "--stage",
            stage_lib("abort_on_load").to_str().unwrap(),
            "--model-dir",
            dir.path().to_str().unwrap(),
        ],
        &[("SAGEMAKER_MODEL_SERVER_WORKERS", "2")],
    );
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("serve should exit");
    assert_eq!(status.code(), Some(1), "{status:?}");
    let reason = "modelstage serve: the worker process for stage libabort_on_load.so was killed by signal 6 (SIGABRT) before its model was loaded";
    let log = server.wait_for_log(reason);
    assert!(log.contains(reason), "{log}");
}

#[test]
fn an_aborting_stage_costs_one_request_not_the_endpoint() {
    let dir = tempdir();
    let server = serve(
        &stage_lib("abort_on_request"),
        dir.path(),
        &[("SAGEMAKER_MODEL_SERVER_WORKERS", "1")],
    );
    let (status, _, out) = post(&server.url, "text/plain", None, b"hello");
    assert_eq!((status, out.as_slice()), (200, &b"hello"[..]));

    let (status, _, out) = post(&server.url, "text/plain", None, b"abort");
    assert!(status >= 500, "{status}");
    let e = json(&out);
    assert_eq!(e["stage"], "abort-on-request");
    assert!(e["message"].as_str().unwrap().contains("SIGABRT"), "{e}");

    // Replaced within a second; /ping tells the truth meanwhile.
    let start = Instant::now();
    while ping(&server.url) != Some(200) {
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "no replacement worker within a second"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let (status, _, out) = post(&server.url, "text/plain", None, b"after");
    assert_eq!((status, out.as_slice()), (200, &b"after"[..]));
}

#[test]
fn a_hung_hook_gets_504_and_does_not_stall_other_connections() {
    let dir = tempdir();
    let server = serve(
        &stage_lib("slow"),
        dir.path(),
        &[
            ("SAGEMAKER_MODEL_SERVER_TIMEOUT", "1"),
            ("SAGEMAKER_MODEL_SERVER_WORKERS", "1"),
        ],
    );
    let url = server.url.clone();
    let slow = std::thread::spawn(move || post(&url, "text/plain", None, b"sleep:30000"));
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    let (status, _, out) = post(&server.url, "text/plain", None, b"fast");
    assert_eq!((status, out.as_slice()), (200, &b"fast"[..]));
    assert!(
        start.elapsed() < Duration::from_millis(900),
        "{:?}",
        start.elapsed()
    );

    let (status, _, out) = slow.join().unwrap();
    assert_eq!(status, 504);
    assert!(json(&out)["message"]
        .as_str()
        .unwrap()
        .contains("did not answer within 1 s"));
    // The hung worker is replaced and the endpoint answers.
    let start = Instant::now();
    loop {
        let (status, _, out) = post(&server.url, "text/plain", None, b"later");
        if status == 200 {
            assert_eq!(out, b"later");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "still {status}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn two_hundred_concurrent_requests_are_all_answered_correctly() {
    let (server, _dir) = echo();
    let handles: Vec<_> = (0..200)
        .map(|i| {
            let url = server.url.clone();
            std::thread::spawn(move || {
                let body = format!("request {i}\n").repeat(i % 7 + 1);
                let (status, _, out) = post(&url, "text/plain", None, body.as_bytes());
                (status, out == body.as_bytes())
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), (200, true));
    }
}

#[test]
fn a_per_instance_stage_is_never_called_concurrently() {
    // One worker process, many concurrent clients: every HTTP thread's
    // requests reach that one process, whose single request thread must
    // take them one at a time (the fixture fails overlapping calls).
    let dir = tempdir();
    let server = serve(
        &stage_lib("one_at_a_time"),
        dir.path(),
        &[("SAGEMAKER_MODEL_SERVER_WORKERS", "1")],
    );
    let (_, params) = get(&server.url, "/execution-parameters");
    let params: serde_json::Value = serde_json::from_slice(&params).unwrap();
    assert_eq!(params["MaxConcurrentTransforms"], 1);
    let handles: Vec<_> = (0..16)
        .map(|t| {
            let url = server.url.clone();
            std::thread::spawn(move || {
                (0..8)
                    .map(|i| {
                        let body = format!("client {t} request {i}");
                        let (status, _, out) = post(&url, "text/plain", None, body.as_bytes());
                        (status, String::from_utf8_lossy(&out).into_owned(), body)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for h in handles {
        for (status, out, body) in h.join().unwrap() {
            assert_eq!((status, out), (200, body));
        }
    }
}

#[test]
fn sigterm_drains_requests_in_flight_and_exits_zero() {
    let dir = tempdir();
    let mut server = serve(&stage_lib("slow"), dir.path(), &[]);
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let url = server.url.clone();
            std::thread::spawn(move || post(&url, "text/plain", None, b"sleep:800"))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    server.terminate();
    for h in handles {
        let (status, _, out) = h.join().unwrap();
        assert_eq!((status, out.as_slice()), (200, &b"sleep:800"[..]));
    }
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("serve exits after SIGTERM");
    assert!(status.success(), "{status}");
}

#[test]
fn the_log_level_follows_the_python_level_numbers() {
    let dir = tempdir();
    let server = serve(
        &stage_lib("echo"),
        dir.path(),
        &[("SAGEMAKER_CONTAINER_LOG_LEVEL", "40")],
    );
    let (status, _, _) = post(&server.url, "text/plain", None, b"x");
    assert_eq!(status, 200);
    // At ERROR (40) the INFO start-up lines are not printed.
    assert!(!server.log_text().contains("INFO"), "{}", server.log_text());
}
