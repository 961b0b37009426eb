//! `GET /metrics`: the Prometheus exposition of `modelstage serve` moves with requests, errors, a
//! worker crash and a timeout, is served on `MODELSTAGE_METRICS_PORT` too, parses with the
//! Prometheus project's own parser (python `prometheus_client`), and is off with
//! `MODELSTAGE_METRICS=off`. (A multi-model endpoint's metrics are checked in `multi_model`.)

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// The value of the sample `name` whose labels include every `label="value"` of `labels`.
pub(crate) fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            let series = l.rsplit_once(' ').map_or("", |(s, _)| s);
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            metric == name && labels.iter().all(|label| rest.contains(label))
        })
        .and_then(|l| l.rsplit_once(' '))
        .map(|(_, v)| v.parse().unwrap())
}

pub(crate) fn scrape(url: &str) -> String {
    let (status, body) = get(url, "/metrics");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    String::from_utf8(body).unwrap()
}

/// Waits until `check` holds for a scrape; returns the last scrape.
fn scrape_until(url: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = scrape(url);
        if check(&text) || Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Parses the exposition with python's OpenMetrics parser and returns the family names.
pub(crate) fn parse_with_prometheus_client(text: &str) -> Vec<String> {
    let script = r#"
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.stdin.read()):
    assert family.documentation, family.name
    print(family.name, family.type)
"#;
    let mut child = Command::new(python())
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3 (ci/setup.sh installs prometheus-client)");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client could not parse the exposition (ci/setup.sh installs it):\n{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn metrics_move_with_requests_errors_and_a_crash() {
    let metrics_port = free_port();
    let server = serve(
        &stage_lib("abort_on_request"),
        Path::new("/nonexistent"),
        &[
            ("SAGEMAKER_MODEL_SERVER_WORKERS", "1"),
            ("MODELSTAGE_METRICS_PORT", &metrics_port.to_string()),
        ],
    );
    let url = &server.url;
    let scrape_url = format!("http://127.0.0.1:{metrics_port}");
    let before = scrape(url);
    assert_eq!(
        sample(&before, "modelstage_worker_starts_total", &[]),
        Some(1.0),
        "{before}"
    );
    assert_eq!(
        sample(&before, "modelstage_model_load_duration_seconds_count", &[]),
        Some(1.0)
    );

    for _ in 0..3 {
        let (status, _, _) = post(url, "text/plain", None, b"hello");
        assert_eq!(status, 200);
    }
    let (status, _) = get(url, "/nothing");
    assert_eq!(status, 404);
    let (status, _, _) = post(url, "text/plain", None, b"abort");
    assert_eq!(status, 500);

    let text = scrape_until(&scrape_url, |t| {
        sample(t, "modelstage_worker_starts_total", &[]) == Some(2.0)
    });
    let ok = [
        "route=\"/invocations\"",
        "status=\"200\"",
        "stage=\"abort-on-request\"",
    ];
    assert_eq!(
        sample(&text, "modelstage_http_requests_total", &ok),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "modelstage_http_requests_total",
            &["route=\"/invocations\"", "status=\"500\""]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "modelstage_http_requests_total",
            &["route=\"unmatched\"", "status=\"404\""]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "modelstage_worker_crashes_total", &["signal=\"SIGABRT\""]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(sample(&text, "modelstage_worker_starts_total", &[]), Some(2.0));
    assert_eq!(
        sample(&text, "modelstage_model_load_duration_seconds_count", &[]),
        Some(2.0)
    );
    // The hooks' time, as the workers measured it: the three answered requests.
    assert_eq!(
        sample(&text, "modelstage_stage_duration_seconds_count", &[]),
        Some(3.0),
        "{text}"
    );
    let invocations = ["route=\"/invocations\""];
    assert_eq!(
        sample(
            &text,
            "modelstage_http_request_duration_seconds_count",
            &invocations
        ),
        Some(4.0)
    );
    assert_eq!(
        sample(&text, "modelstage_http_request_size_bytes_sum", &invocations),
        Some(20.0)
    );
    assert_eq!(
        sample(&text, "modelstage_http_response_size_bytes_sum", &invocations).map(|s| s >= 15.0),
        Some(true)
    );
    // The scrape port is outside the recorded app: nothing is in flight.
    assert_eq!(
        sample(&text, "modelstage_http_requests_in_flight", &[]),
        Some(0.0)
    );
    // The serving port's scrape counts itself while it runs.
    assert_eq!(
        sample(&scrape(url), "modelstage_http_requests_in_flight", &[]),
        Some(1.0)
    );

    let families = parse_with_prometheus_client(&text);
    for family in [
        "modelstage_http_requests counter",
        "modelstage_http_request_duration_seconds histogram",
        "modelstage_http_request_size_bytes histogram",
        "modelstage_http_response_size_bytes histogram",
        "modelstage_http_requests_in_flight gauge",
        "modelstage_worker_starts counter",
        "modelstage_worker_crashes counter",
        "modelstage_worker_timeouts counter",
        "modelstage_model_load_duration_seconds histogram",
        "modelstage_stage_duration_seconds histogram",
    ] {
        assert!(
            families.iter().any(|f| f == family),
            "{family} missing from {families:?}"
        );
    }
}

#[test]
fn a_timeout_and_protocol_requests_are_counted() {
    let server = serve(
        &stage_lib("slow"),
        Path::new("/nonexistent"),
        &[
            ("SAGEMAKER_MODEL_SERVER_WORKERS", "1"),
            ("SAGEMAKER_MODEL_SERVER_TIMEOUT", "1"),
        ],
    );
    let (status, _, _) = post(&server.url, "text/plain", None, b"sleep:3000");
    assert_eq!(status, 504);
    let infer =
        serde_json::json!({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 1], "data": [1]}]});
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/v2/models/slow/infer", server.url))
        .body(infer.to_string())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let text = scrape_until(&server.url, |t| {
        sample(t, "modelstage_worker_starts_total", &[]) == Some(2.0)
    });
    assert_eq!(
        sample(&text, "modelstage_worker_timeouts_total", &[]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "modelstage_http_requests_total",
            &["route=\"/invocations\"", "status=\"504\""]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "modelstage_http_requests_total",
            &["route=\"/v2/models/{name}/infer\"", "status=\"200\""]
        ),
        Some(1.0),
        "{text}"
    );
    // A retired worker is not a crash.
    assert_eq!(sample(&text, "modelstage_worker_crashes_total", &[]), None);
    parse_with_prometheus_client(&text);
}

#[test]
fn metrics_off_records_nothing_and_answers_404() {
    let server = serve(
        &stage_lib("echo"),
        Path::new("/nonexistent"),
        &[("MODELSTAGE_METRICS", "off")],
    );
    let (status, _, _) = post(&server.url, "text/plain", None, b"x");
    assert_eq!(status, 200);
    let (status, body) = get(&server.url, "/metrics");
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("metrics are off (MODELSTAGE_METRICS=off)"));
}
