//! The HTTP side of the checks: one blocking client, answers reduced to what the checks look at,
//! and [`excerpt`], which is how anything an endpoint sent back appears in a report: bounded and
//! escaped, so that a hostile or broken endpoint cannot flood or forge the report.

use std::io::Read;
use std::time::Duration;

use crate::deploy::health::PING_TIMEOUT;

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How many characters of a body a report quotes.
/// How much of an answer's body is read; the rest is dropped unread.
const MAX_BODY: usize = 64 * 1024;

/// What an endpoint answered.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// The response's Content-Type, if it sent one.
    pub content_type: Option<String>,
    /// At most [`MAX_BODY`] bytes of the body.
    pub body: Vec<u8>,
    /// The body was longer than [`MAX_BODY`].
    pub truncated: bool,
}

impl Answer {
    /// `415 (Content-Type application/json): {"error": …}`, for evidence.
    pub fn describe(&self) -> String {
        let ct = self
            .content_type
            .as_deref()
            .map(|t| format!(" (Content-Type {})", excerpt(t.as_bytes())))
            .unwrap_or_default();
        format!("{}{ct}: {}", self.status, excerpt(&self.body))
    }

    /// A body a person can read: non-empty UTF-8 text (a cut body may end inside a character).
    pub fn readable(&self) -> bool {
        match std::str::from_utf8(&self.body) {
            Ok(text) => !text.trim().is_empty(),
            Err(e) => self.truncated && e.error_len().is_none() && e.valid_up_to() > 0,
        }
    }
}

/// Why a request of the checks got no answer to judge; checks quote it as evidence.
#[derive(Debug, thiserror::Error)]
pub enum NoAnswer {
    /// The request failed: the error and its causes on one line.
    #[error("{0}")]
    Request(String),
    /// The head came, the body did not.
    #[error("status {status}, but the body could not be read: {cause}")]
    Body {
        /// The status the head carried.
        status: u16,
        /// Why the body broke off, with its causes.
        cause: String,
    },
}

/// A client for one endpoint (`http://host:port`).
pub struct Client {
    base: String,
    http: reqwest::blocking::Client,
}

impl Client {
    pub fn new(base: &str) -> anyhow::Result<Client> {
        let http = reqwest::blocking::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| anyhow::anyhow!("cannot make an HTTP client: {e}"))?;
        Ok(Client {
            base: base.trim_end_matches('/').to_string(),
            http,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn get(&self, path: &str) -> Result<Answer, NoAnswer> {
        answer(self.http.get(format!("{}{path}", self.base)).send())
    }

    /// `GET /ping` within SageMaker's ping timeout.
    pub fn ping(&self) -> Result<Answer, NoAnswer> {
        let request = self.http.get(format!("{}/ping", self.base)).timeout(PING_TIMEOUT);
        answer(request.send())
    }

    /// `POST /invocations` with `content_type` and, when given, `accept`.
    pub fn invoke(
        &self,
        content_type: &str,
        accept: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Answer, NoAnswer> {
        let mut request = self
            .http
            .post(format!("{}/invocations", self.base))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        if let Some(accept) = accept {
            request = request.header(reqwest::header::ACCEPT, accept);
        }
        answer(request.send())
    }
}

fn answer(sent: reqwest::Result<reqwest::blocking::Response>) -> Result<Answer, NoAnswer> {
    let response = sent.map_err(|e| NoAnswer::Request(describe_error(&e)))?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    // Only the start of a body is ever looked at; a huge answer must not cost the memory.
    let mut body = Vec::new();
    response
        .take(MAX_BODY as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| NoAnswer::Body {
            status,
            cause: describe_error(&e),
        })?;
    let truncated = body.len() > MAX_BODY;
    body.truncate(MAX_BODY);
    Ok(Answer {
        status,
        content_type,
        body,
        truncated,
    })
}

/// The error and its causes on one line (reqwest's own text stops at "error sending request").
fn describe_error(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A bounded, escaped, quoted excerpt of what a container sent, as every message of modelstage
/// quotes a value (`modelstage_contract::excerpt`).
pub fn excerpt(bytes: &[u8]) -> String {
    modelstage_contract::excerpt::quoted(bytes)
}

/// Whether the media type of `content_type` is one `accept` asks for (`type/*` and `*/*` match
/// any subtype or type; parameters and case are ignored).
pub fn accepts(accept: &str, content_type: &str) -> bool {
    let got = media_type(content_type);
    accept.split(',').map(media_type).any(|wanted| {
        wanted == "*/*"
            || wanted == got
            || wanted
                .strip_suffix("/*")
                .is_some_and(|family| got.split('/').next() == Some(family))
    })
}

use modelstage_contract::media::normalized as media_type;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_bounded_and_escaped() {
        assert_eq!(excerpt(b"ok"), "\"ok\"");
        assert_eq!(excerpt(b"a\nb\x1b[31m\"c\""), r#""a\nb\u{1b}[31m\"c\"""#);
        let long = vec![b'x'; 10_000];
        let e = excerpt(&long);
        assert!(e.ends_with("... (10000 bytes)"), "{e}");
        assert!(e.len() < 250, "{e}");
        assert_eq!(excerpt(&[0xff, b'a']), "\"\\xffa\"");
        assert_eq!(excerpt(b"it's \\ fine"), r#""it's \\ fine""#);
    }

    #[test]
    fn a_readable_body_is_text_even_when_cut_inside_a_character() {
        let answer = |body: &[u8], truncated| Answer {
            status: 415,
            content_type: None,
            body: body.to_vec(),
            truncated,
        };
        assert!(answer(b"not supported", false).readable());
        assert!(!answer(b"  \n", false).readable());
        assert!(!answer(&[0xff, 0xfe, 0x00], false).readable());
        // "é" cut after its first byte by the read limit.
        assert!(answer(&[b'a', 0xc3], true).readable());
        assert!(!answer(&[b'a', 0xc3], false).readable());
    }

    #[test]
    fn accept_matching_ignores_parameters_case_and_honours_wildcards() {
        assert!(accepts("application/json", "application/json; charset=utf-8"));
        assert!(accepts("text/csv, application/json", "Application/JSON"));
        assert!(accepts("text/*", "text/csv"));
        assert!(accepts("*/*", "application/x-npy"));
        assert!(!accepts("application/json", "text/csv"));
        assert!(!accepts("text/*", "application/json"));
    }
}
