//! How a transform job reaches the model: the [`Invoker`] trait, and its HTTP
//! implementation that speaks the container contract (`POST /invocations`,
//! `GET /execution-parameters`, `GET /ping`) to an endpoint URL.
//!
//! Retries follow `ModelClientConfig.InvocationsMaxRetries`, for failures
//! that another attempt can cure: connection errors, timeouts, and HTTP
//! 429/503/504 (overloaded or past its deadline). A 4xx or a 500 from a
//! stage is deterministic and fails at once.

use std::fmt;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::error::TransformError;

pub use modelstage_contract::ExecutionParameters;

/// A successful (2xx) answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// Why an invocation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvocationError {
    /// The endpoint answered with a non-2xx status; `body` is its message
    /// (for a pipeline it names the failing container).
    Status { status: u16, body: String },
    /// No answer: connection refused, reset, timed out.
    Transport(String),
}

impl fmt::Display for InvocationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvocationError::Status { status, body } => {
                let kind = if *status < 500 {
                    "ClientError"
                } else {
                    "ServerError"
                };
                write!(f, "{kind}: {status}; message: {}", body.trim_end())
            }
            InvocationError::Transport(message) => f.write_str(message),
        }
    }
}

/// Sends mini-batches to a model.
pub trait Invoker: Send + Sync {
    /// One `/invocations` call. An empty `content_type` sends no
    /// Content-Type header (the job set none).
    fn invoke(
        &self,
        body: Vec<u8>,
        content_type: &str,
        accept: Option<&str>,
    ) -> Result<Reply, InvocationError>;

    /// `GET /execution-parameters`, `None` when not implemented or unreadable.
    fn execution_parameters(&self) -> Option<ExecutionParameters>;
}

/// An endpoint reached over HTTP.
pub struct HttpInvoker {
    client: reqwest::blocking::Client,
    base: String,
    max_retries: u32,
}

impl HttpInvoker {
    /// `endpoint` is the base URL (`http://localhost:8080`); `timeout` bounds
    /// each invocation.
    pub fn new(endpoint: &str, timeout: Duration, max_retries: u32) -> Result<HttpInvoker, TransformError> {
        let client = reqwest::blocking::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(TransformError::HttpClient)?;
        Ok(HttpInvoker {
            client,
            base: endpoint.trim_end_matches('/').to_string(),
            max_retries,
        })
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    /// Polls `GET /ping` until it answers 200, as the platform does before
    /// sending work.
    pub fn wait_ready(&self, within: Duration) -> Result<(), TransformError> {
        let deadline = Instant::now() + within;
        let url = format!("{}/ping", self.base);
        loop {
            let last = match self.client.get(&url).timeout(Duration::from_secs(2)).send() {
                Ok(r) if r.status().as_u16() == 200 => return Ok(()),
                Ok(r) => format!("it answered HTTP {}", r.status().as_u16()),
                Err(e) => describe_transport(&e),
            };
            if Instant::now() >= deadline {
                return Err(TransformError::NotReady {
                    endpoint: self.base.clone(),
                    last,
                });
            }
            thread::sleep(Duration::from_millis(250));
        }
    }

    fn attempt(
        &self,
        body: Bytes,
        content_type: &str,
        accept: Option<&str>,
    ) -> Result<Reply, InvocationError> {
        let mut request = self.client.post(format!("{}/invocations", self.base)).body(body);
        if !content_type.is_empty() {
            request = request.header(reqwest::header::CONTENT_TYPE, content_type);
        }
        if let Some(accept) = accept {
            request = request.header(reqwest::header::ACCEPT, accept);
        }
        let response = request
            .send()
            .map_err(|e| InvocationError::Transport(describe_transport(&e)))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = response
            .bytes()
            .map_err(|e| InvocationError::Transport(format!("reading the response failed: {e}")))?;
        if (200..300).contains(&status) {
            Ok(Reply {
                content_type,
                body: body.to_vec(),
            })
        } else {
            Err(InvocationError::Status {
                status,
                body: String::from_utf8_lossy(&body).into_owned(),
            })
        }
    }
}

fn describe_transport(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        format!("no answer within the invocation timeout ({e})")
    } else if e.is_connect() {
        format!("cannot connect ({e})")
    } else {
        e.to_string()
    }
}

fn retryable(error: &InvocationError) -> bool {
    match error {
        InvocationError::Transport(_) => true,
        InvocationError::Status { status, .. } => matches!(status, 429 | 503 | 504),
    }
}

impl Invoker for HttpInvoker {
    fn invoke(
        &self,
        body: Vec<u8>,
        content_type: &str,
        accept: Option<&str>,
    ) -> Result<Reply, InvocationError> {
        // Bytes makes a retry share the body instead of copying it.
        let body = Bytes::from(body);
        let mut attempt = 0;
        loop {
            match self.attempt(body.clone(), content_type, accept) {
                Err(error) if attempt < self.max_retries && retryable(&error) => {
                    attempt += 1;
                    log::warn!(
                        "invocation failed ({error}); retry {attempt} of {}",
                        self.max_retries
                    );
                    thread::sleep(Duration::from_millis(200 * u64::from(attempt)));
                }
                other => return other,
            }
        }
    }

    fn execution_parameters(&self) -> Option<ExecutionParameters> {
        let response = self
            .client
            .get(format!("{}/execution-parameters", self.base))
            .timeout(Duration::from_secs(10))
            .send()
            .ok()?;
        if response.status().as_u16() != 200 {
            return None;
        }
        ExecutionParameters::from_json(&response.bytes().ok()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_like_the_service_logs() {
        let e = InvocationError::Status {
            status: 415,
            body: "{\"error\": \"no csv\"}\n".into(),
        };
        assert_eq!(
            e.to_string(),
            "ClientError: 415; message: {\"error\": \"no csv\"}"
        );
        assert!(retryable(&InvocationError::Status {
            status: 503,
            body: String::new()
        }));
        assert!(!retryable(&InvocationError::Status {
            status: 500,
            body: String::new()
        }));
    }

    #[test]
    fn an_unreachable_endpoint_is_reported() {
        // Port 9 (discard) is closed on test machines; connection is refused.
        let invoker = HttpInvoker::new("http://127.0.0.1:9/", Duration::from_secs(2), 0).unwrap();
        assert_eq!(invoker.url(), "http://127.0.0.1:9");
        let err = invoker.invoke(b"x".to_vec(), "text/csv", None).unwrap_err();
        assert!(matches!(err, InvocationError::Transport(_)), "{err}");
        assert!(invoker.execution_parameters().is_none());
    }
}
