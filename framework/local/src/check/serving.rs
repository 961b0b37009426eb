//! The checks that speak HTTP to a healthy endpoint: the sample request and Accept, the 415, 406
//! and 413 answers, and `/execution-parameters`. They need nothing but the URL, so they run the
//! same on a library, an image or a running endpoint.

use serde_json::Value;

use super::http::{accepts, excerpt, Answer, Client, NoAnswer};
use super::ids;
use super::report::{Report, Verdict};

/// A media type no container supports, for the 415 and 406 checks.
pub const UNSUPPORTED_TYPE: &str = "application/x-modelstage-check-unsupported";
/// SageMaker's MB: 1,048,576 bytes (docs/contract.md, payload limit).
pub use modelstage_contract::payload::MB;
/// `MaxPayloadInMB` when the container does not say.
pub const DEFAULT_MAX_PAYLOAD_MB: usize = 6;
/// The largest `MaxPayloadInMB` SageMaker takes (batch transform's); a body is never larger.
const LARGEST_MAX_PAYLOAD_MB: usize = 100;

/// The request a user gave, to be sent as `/invocations`.
#[derive(Debug, Clone)]
pub struct Sample {
    pub body: Vec<u8>,
    pub content_type: String,
}

/// What the checks send.
#[derive(Debug, Clone, Default)]
pub struct Requests {
    pub sample: Option<Sample>,
    /// `--accept`.
    pub accept: Option<String>,
}

/// What the payload check may assume about the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadLimit {
    /// The checker set `SAGEMAKER_MAX_PAYLOAD_IN_MB` to this many MB.
    Set(usize),
    /// An endpoint started elsewhere: its `/execution-parameters`, else SageMaker's default.
    Unknown,
}

/// Runs every HTTP check against `client`'s endpoint, which answers `/ping` with 200.
pub fn check_endpoint(client: &Client, requests: &Requests, limit: PayloadLimit, report: &mut Report) {
    let parameters = execution_parameters(client, report);
    sample(client, requests, report);
    unsupported_content_type(client, requests, report);
    unsupported_accept(client, requests, report);
    payload(client, requests, limit, parameters, report);
}

fn sample(client: &Client, requests: &Requests, report: &mut Report) {
    let Some(sample) = &requests.sample else {
        let why = "no --sample given";
        report.record(ids::SAMPLE, Verdict::Skip(why.into()));
        report.record(ids::ACCEPT, Verdict::Skip(why.into()));
        return;
    };
    let sent = client.invoke(
        &sample.content_type,
        requests.accept.as_deref(),
        sample.body.clone(),
    );
    let answer = match sent {
        Ok(answer) => answer,
        Err(e) => {
            report.record(ids::SAMPLE, Verdict::Fail(format!("no answer: {e}")));
            report.record(ids::ACCEPT, Verdict::Skip("the sample got no answer".into()));
            return;
        }
    };
    let ok = (200..300).contains(&answer.status);
    report.record(ids::SAMPLE, Verdict::from_bool(ok, answer.describe()));
    let outcome = match (&requests.accept, ok) {
        (None, _) => Verdict::Skip("no --accept given".into()),
        (Some(_), false) => Verdict::Skip("the sample was not answered with 2xx".into()),
        (Some(accept), true) => match &answer.content_type {
            Some(got) => Verdict::from_bool(
                accepts(accept, got),
                format!(
                    "asked for {}, got Content-Type {}",
                    excerpt(accept.as_bytes()),
                    excerpt(got.as_bytes())
                ),
            ),
            None => Verdict::Fail(format!(
                "asked for {}, the answer has no Content-Type",
                excerpt(accept.as_bytes())
            )),
        },
    };
    report.record(ids::ACCEPT, outcome);
}

fn unsupported_content_type(client: &Client, requests: &Requests, report: &mut Report) {
    let body = requests
        .sample
        .as_ref()
        .map_or_else(|| b"1".to_vec(), |s| s.body.clone());
    let sent = client.invoke(UNSUPPORTED_TYPE, requests.accept.as_deref(), body);
    report.record(
        ids::CONTENT_TYPE_415,
        expect_status(sent, 415, &format!("Content-Type {UNSUPPORTED_TYPE}")),
    );
}

fn unsupported_accept(client: &Client, requests: &Requests, report: &mut Report) {
    let Some(sample) = &requests.sample else {
        let why = "no --sample given: a request the container can read is needed";
        report.record(ids::ACCEPT_406, Verdict::Skip(why.into()));
        return;
    };
    let sent = client.invoke(&sample.content_type, Some(UNSUPPORTED_TYPE), sample.body.clone());
    report.record(
        ids::ACCEPT_406,
        expect_status(sent, 406, &format!("the sample with Accept {UNSUPPORTED_TYPE}")),
    );
}

/// `expected` with a readable body passes; anything else fails with what came back.
fn expect_status(sent: Result<Answer, NoAnswer>, expected: u16, what: &str) -> Verdict {
    match sent {
        Ok(answer) if answer.status == expected && answer.readable() => Verdict::Pass(answer.describe()),
        Ok(answer) if answer.status == expected => Verdict::Fail(format!(
            "{what}: {expected}, but the body is not readable text: {}",
            answer.describe()
        )),
        Ok(answer) => Verdict::Fail(format!("{what}: expected {expected}, got {}", answer.describe())),
        Err(e) => Verdict::Fail(format!("{what}: no answer: {e}")),
    }
}

fn payload(
    client: &Client,
    requests: &Requests,
    limit: PayloadLimit,
    parameters: Option<Value>,
    report: &mut Report,
) {
    let (mb, source) = match limit {
        PayloadLimit::Set(mb) => (
            mb,
            format!("SAGEMAKER_MAX_PAYLOAD_IN_MB={mb}, set by the checker"),
        ),
        PayloadLimit::Unknown => {
            match parameters
                .as_ref()
                .and_then(|p| p.get("MaxPayloadInMB"))
                .and_then(Value::as_u64)
            {
                Some(0) => {
                    let why = "the endpoint's MaxPayloadInMB is 0 (no limit)";
                    report.record(ids::PAYLOAD_413, Verdict::Skip(why.into()));
                    return;
                }
                Some(mb) if mb > LARGEST_MAX_PAYLOAD_MB as u64 => {
                    let why = format!(
                        "the endpoint's MaxPayloadInMB is {mb}, over SageMaker's largest \
                         ({LARGEST_MAX_PAYLOAD_MB}): no such body is sent"
                    );
                    report.record(ids::PAYLOAD_413, Verdict::Skip(why));
                    return;
                }
                Some(mb) => (
                    mb as usize,
                    format!("MaxPayloadInMB={mb}, from /execution-parameters"),
                ),
                None => (
                    DEFAULT_MAX_PAYLOAD_MB,
                    format!("SageMaker's default of {DEFAULT_MAX_PAYLOAD_MB} MB"),
                ),
            }
        }
    };
    // Just over the limit for a limit the checker did not set (a few bytes more must already be
    // refused); a whole MB over it otherwise, as the limit was set low for this.
    let size = match limit {
        PayloadLimit::Set(_) => (mb + 1) * MB,
        PayloadLimit::Unknown => mb * MB + 1,
    };
    let content_type = requests
        .sample
        .as_ref()
        .map_or("application/octet-stream", |s| s.content_type.as_str());
    let sent = client.invoke(content_type, requests.accept.as_deref(), vec![b'0'; size]);
    let what = format!("{size} bytes against {source}");
    let outcome = match sent {
        Ok(answer) => Verdict::from_bool(answer.status == 413, format!("{what}: {}", answer.describe())),
        Err(e) => Verdict::Fail(format!("{what}: no answer: {e}")),
    };
    report.record(ids::PAYLOAD_413, outcome);
}

/// Checks `/execution-parameters` and returns the document when it is a well-formed one.
fn execution_parameters(client: &Client, report: &mut Report) -> Option<Value> {
    let answer = match client.get("/execution-parameters") {
        Ok(answer) => answer,
        Err(e) => {
            report.record(
                ids::EXECUTION_PARAMETERS,
                Verdict::Fail(format!("no answer: {e}")),
            );
            return None;
        }
    };
    if answer.status == 404 {
        report.record(
            ids::EXECUTION_PARAMETERS,
            Verdict::Pass("not present (404)".into()),
        );
        return None;
    }
    if answer.status != 200 {
        let evidence = format!("expected 200 or 404, got {}", answer.describe());
        report.record(ids::EXECUTION_PARAMETERS, Verdict::Fail(evidence));
        return None;
    }
    let problems = match serde_json::from_slice::<Value>(&answer.body) {
        Ok(document) => {
            let problems = parameter_problems(&document);
            if problems.is_empty() {
                report.record(ids::EXECUTION_PARAMETERS, Verdict::Pass(answer.describe()));
                return Some(document);
            }
            problems
        }
        Err(e) => vec![format!("not JSON ({e})")],
    };
    let evidence = format!("{}: {}", problems.join("; "), answer.describe());
    report.record(ids::EXECUTION_PARAMETERS, Verdict::Fail(evidence));
    None
}

/// What is wrong with an `/execution-parameters` document (nothing: empty).
pub fn parameter_problems(document: &Value) -> Vec<String> {
    let Some(object) = document.as_object() else {
        return vec!["not a JSON object".into()];
    };
    let mut problems = Vec::new();
    for key in ["MaxConcurrentTransforms", "MaxPayloadInMB"] {
        match object.get(key) {
            Some(v) if v.as_u64().is_some() => {}
            Some(_) => problems.push(format!("{key} is not a non-negative integer")),
            None => problems.push(format!("{key} is missing")),
        }
    }
    match object.get("BatchStrategy").and_then(Value::as_str) {
        Some("MULTI_RECORD" | "SINGLE_RECORD") => {}
        Some(_) | None if object.contains_key("BatchStrategy") => {
            problems.push("BatchStrategy is not MULTI_RECORD or SINGLE_RECORD".into())
        }
        _ => problems.push("BatchStrategy is missing".into()),
    }
    problems
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn execution_parameters_need_all_three_fields_with_valid_values() {
        let good =
            json!({"MaxConcurrentTransforms": 4, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 6});
        assert!(parameter_problems(&good).is_empty());
        let bad = json!({"MaxConcurrentTransforms": "4", "BatchStrategy": "MultiRecord"});
        assert_eq!(
            parameter_problems(&bad),
            [
                "MaxConcurrentTransforms is not a non-negative integer",
                "MaxPayloadInMB is missing",
                "BatchStrategy is not MULTI_RECORD or SINGLE_RECORD",
            ]
        );
        assert_eq!(parameter_problems(&json!([1])), ["not a JSON object"]);
        assert_eq!(
            parameter_problems(&json!({"MaxConcurrentTransforms": 1, "MaxPayloadInMB": 1})),
            ["BatchStrategy is missing"]
        );
    }
}
