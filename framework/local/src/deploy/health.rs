//! Waiting for containers to become healthy, as SageMaker waits while it creates an endpoint:
//! `GET /ping` on each container's own port until it answers 200 (docs/contract.md (Serving, Serial pipelines)). A
//! container that exits first, or is not healthy in time, fails the start; the error names every
//! container that failed and shows its last log lines.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;

use super::runner::Container;

/// SageMaker's `/ping` request timeout.
pub const PING_TIMEOUT: Duration = Duration::from_secs(2);
const POLL_EVERY: Duration = Duration::from_millis(20);
/// How many log lines of a failed container an error shows.
const LOG_LINES_SHOWN: usize = 40;

/// The status of a `GET` of `url` (a `/ping`), `None` when nothing answered.
pub fn ping(client: &reqwest::blocking::Client, url: &str) -> Option<u16> {
    client.get(url).send().ok().map(|r| r.status().as_u16())
}

/// Waits until every container answers `/ping` with 200, one of them exits, `timeout` passes or
/// `stop` is set.
pub fn wait_ready(containers: &mut [Container], timeout: Duration, stop: &AtomicBool) -> anyhow::Result<()> {
    let client = reqwest::blocking::Client::builder()
        .timeout(PING_TIMEOUT)
        .build()
        .map_err(|e| anyhow::anyhow!("cannot make an HTTP client: {e}"))?;
    let deadline = Instant::now() + timeout;
    let mut ready = vec![false; containers.len()];
    loop {
        let mut failed = Vec::new();
        for (i, c) in containers.iter_mut().enumerate() {
            if let Some(ended) = c.exited() {
                failed.push(failure(c, &format!("{ended} before it was ready")));
            } else if !ready[i] {
                ready[i] = ping(&client, &format!("http://127.0.0.1:{}/ping", c.port)) == Some(200);
            }
        }
        if !failed.is_empty() {
            bail!("{}", failed.join("\n"));
        }
        if ready.iter().all(|r| *r) {
            return Ok(());
        }
        if stop.load(Ordering::SeqCst) {
            bail!("stopped before the endpoint was ready");
        }
        if Instant::now() >= deadline {
            let late: Vec<String> = containers
                .iter()
                .zip(&ready)
                .filter(|(_, r)| !**r)
                .map(|(c, _)| {
                    failure(
                        c,
                        &format!("did not answer GET /ping with 200 within {} s", timeout.as_secs()),
                    )
                })
                .collect();
            bail!("{}", late.join("\n"));
        }
        std::thread::sleep(POLL_EVERY);
    }
}

/// `container container-2 (pid 41, port 9000) exited with status 1 before it was ready; its last
/// log lines: ...`
fn failure(c: &Container, what: &str) -> String {
    with_log(
        format!("container {} ({}, port {}) {what}", c.name, c.describe(), c.port),
        &c.log_tail(),
    )
}

/// `text`, then the last of the container's log lines `tail` (or that it printed nothing).
pub fn with_log(mut text: String, tail: &[String]) -> String {
    let shown = &tail[tail.len().saturating_sub(LOG_LINES_SHOWN)..];
    if shown.is_empty() {
        text.push_str("; it printed nothing");
    } else {
        text.push_str("; its last log lines:");
        for line in shown {
            text.push_str("\n  ");
            text.push_str(line);
        }
    }
    text
}

/// The `MaxPayloadInMB` of a container's `/execution-parameters` (`base_url` is
/// `http://host:port`): the request size limit of the pipeline it starts.
pub fn max_payload_in_mb(base_url: &str) -> Option<u64> {
    let client = reqwest::blocking::Client::builder()
        .timeout(PING_TIMEOUT)
        .build()
        .ok()?;
    let response = client
        .get(format!("{base_url}/execution-parameters"))
        .send()
        .ok()
        .filter(|r| r.status().is_success())?;
    max_payload_of(&response.bytes().ok()?)
}

/// The `MaxPayloadInMB` of an `/execution-parameters` document.
pub fn max_payload_of(execution_parameters: &[u8]) -> Option<u64> {
    let document: serde_json::Value = serde_json::from_slice(execution_parameters).ok()?;
    document.get("MaxPayloadInMB")?.as_u64()
}
