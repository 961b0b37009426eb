//! The wire protocols `modelstage api` speaks: AWS JSON 1.1 for the control plane (`POST /` with
//! `X-Amz-Target: SageMaker.<Operation>`) and the error bodies of both services. An error is an
//! [`ApiError`]: the service's exception name, its HTTP status and a message; every handler
//! reports its errors this way and only this module turns them into responses.

use std::time::Duration;

use actix_web::http::header::HeaderMap;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use modelstage_runtime::serve::body::{self, BodyError};
use serde_json::{json, Value};

/// The JSON 1.1 content type of every control-plane answer.
pub const JSON_1_1: &str = "application/x-amz-json-1.1";
/// The service prefix of `X-Amz-Target`.
const TARGET_PREFIX: &str = "SageMaker.";
/// The region when a request carries no SigV4 credential scope.
pub const DEFAULT_REGION: &str = "us-east-1";
/// How many bytes of a value from a request an error message quotes.
const EXCERPT_BYTES: usize = 200;

/// An error as the service reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The exception name (`__type`), e.g. `ValidationException`.
    pub kind: &'static str,
    pub status: StatusCode,
    pub message: String,
    /// Members of a modelled error besides its message (`ModelError`'s `OriginalStatusCode`...).
    pub extra: Vec<(&'static str, Value)>,
}

/// A request's whole body, at most `limit` bytes, received within `timeout`; else the refusal to
/// answer with (a `ValidationException` with status 413, 408 or 400), which closes the connection
/// with the body unread, so a client that sends too much or too slowly costs its own connection.
pub async fn read_body(
    request: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
    timeout: Duration,
) -> Result<web::Bytes, HttpResponse> {
    match body::read(&mut payload, request.headers(), limit, timeout).await {
        Ok(body) => Ok(body),
        Err(e) => {
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
            let message = match e {
                BodyError::TooLarge => {
                    format!("the request body is larger than the {limit} bytes this server takes")
                }
                BodyError::TimedOut => format!(
                    "the request body was not received within {} s (--body-timeout)",
                    timeout.as_secs()
                ),
                BodyError::Broken(e) => format!("could not read the request body: {e}"),
            };
            let kind = if request.path() == "/" {
                "ValidationException"
            } else {
                "ValidationError"
            };
            Err(body::closing(
                ApiError::new(kind, status, message).response(),
                payload,
            ))
        }
    }
}

impl ApiError {
    fn new(kind: &'static str, status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            status,
            message: message.into(),
            extra: Vec::new(),
        }
    }

    /// A request the service refuses as invalid (400 `ValidationException`).
    pub fn validation(message: impl Into<String>) -> ApiError {
        ApiError::new("ValidationException", StatusCode::BAD_REQUEST, message)
    }

    /// A name already taken (400 `ResourceInUse`).
    pub fn in_use(message: impl Into<String>) -> ApiError {
        ApiError::new("ResourceInUse", StatusCode::BAD_REQUEST, message)
    }

    /// A resource that does not exist, for the operations the service answers so (400
    /// `ResourceNotFound`).
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new("ResourceNotFound", StatusCode::BAD_REQUEST, message)
    }

    /// A bound of this server that a request would go past (400 `ResourceLimitExceeded`).
    pub fn limit(message: impl Into<String>) -> ApiError {
        ApiError::new("ResourceLimitExceeded", StatusCode::BAD_REQUEST, message)
    }

    /// An operation this server does not implement (400 `UnknownOperationException`).
    pub fn unknown_operation(message: impl Into<String>) -> ApiError {
        ApiError::new("UnknownOperationException", StatusCode::BAD_REQUEST, message)
    }

    /// A path neither service answers (404 `UnknownOperationException`).
    pub fn unknown_path(message: impl Into<String>) -> ApiError {
        ApiError::new("UnknownOperationException", StatusCode::NOT_FOUND, message)
    }

    /// A runtime path asked with another method than POST (405).
    pub fn method_not_allowed(message: impl Into<String>) -> ApiError {
        ApiError::new("MethodNotAllowed", StatusCode::METHOD_NOT_ALLOWED, message)
    }

    /// The runtime's refusal of a request (400 `ValidationError`).
    pub fn runtime_validation(message: impl Into<String>) -> ApiError {
        ApiError::new("ValidationError", StatusCode::BAD_REQUEST, message)
    }

    /// The runtime's answer when the model's container failed (424 `ModelError`).
    pub fn model_error(message: impl Into<String>, extra: Vec<(&'static str, Value)>) -> ApiError {
        ApiError {
            extra,
            ..ApiError::new("ModelError", StatusCode::FAILED_DEPENDENCY, message)
        }
    }

    /// A failure of this server itself (500 `InternalFailure`).
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new("InternalFailure", StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// The protocol's error body (`__type`, `message`) with the same name in `X-Amzn-ErrorType`,
    /// where the REST protocol of the runtime looks for it.
    pub fn response(&self) -> HttpResponse {
        let mut body = json!({ "__type": self.kind, "message": self.message });
        for (key, value) in &self.extra {
            body[*key] = value.clone();
        }
        HttpResponse::build(self.status)
            .content_type(JSON_1_1)
            .insert_header(("X-Amzn-ErrorType", self.kind))
            .body(body.to_string())
    }
}

/// A successful control-plane answer.
pub fn ok(body: &Value) -> HttpResponse {
    HttpResponse::Ok().content_type(JSON_1_1).body(body.to_string())
}

/// The operation named by `X-Amz-Target`.
pub fn operation(headers: &HeaderMap) -> Result<String, ApiError> {
    let target = headers
        .get("x-amz-target")
        .ok_or_else(|| ApiError::unknown_operation("the request has no X-Amz-Target header"))?
        .to_str()
        .map_err(|_| ApiError::unknown_operation("X-Amz-Target is not text"))?;
    match target.strip_prefix(TARGET_PREFIX) {
        Some(op) if !op.is_empty() => Ok(op.to_string()),
        _ => Err(ApiError::unknown_operation(format!(
            "X-Amz-Target {} does not name a SageMaker operation (SageMaker.<Operation>)",
            quote(target)
        ))),
    }
}

/// The region of the SigV4 credential scope in `Authorization`
/// (`Credential=<key>/<date>/<region>/<service>/aws4_request`), else [`DEFAULT_REGION`]. The
/// signature itself is not verified.
pub fn region(headers: &HeaderMap) -> String {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|auth| auth.split("Credential=").nth(1))
        .and_then(|scope| scope.split('/').nth(2))
        .filter(|r| {
            !r.is_empty() && r.len() <= 32 && r.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        .unwrap_or(DEFAULT_REGION)
        .to_string()
}

/// A value from a request as an error message quotes it: at most [`EXCERPT_BYTES`] bytes, in
/// JSON quotes with control characters escaped, so it cannot forge the message around it.
pub fn quote(text: &str) -> String {
    let cut = excerpt(text);
    let quoted = Value::String(cut.to_string()).to_string();
    if cut.len() < text.len() {
        format!("{quoted}...")
    } else {
        quoted
    }
}

/// The first [`EXCERPT_BYTES`] bytes of `text`, cut at a character boundary.
pub fn excerpt(text: &str) -> &str {
    let mut end = text.len().min(EXCERPT_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The current time as the JSON protocols carry timestamps: epoch seconds, with milliseconds.
pub fn now() -> f64 {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    millis as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(HeaderName::from_static(k), HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn the_operation_comes_from_the_target() {
        let h = headers(&[("x-amz-target", "SageMaker.CreateModel")]);
        assert_eq!(operation(&h).unwrap(), "CreateModel");
        let err = operation(&headers(&[("x-amz-target", "Other.CreateModel")])).unwrap_err();
        assert_eq!(err.kind, "UnknownOperationException");
        assert!(operation(&HeaderMap::new()).is_err());
    }

    #[test]
    fn the_region_comes_from_the_credential_scope() {
        let h = headers(&[(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKID/20261204/eu-west-1/sagemaker/aws4_request, SignedHeaders=host, Signature=x",
        )]);
        assert_eq!(region(&h), "eu-west-1");
        assert_eq!(region(&HeaderMap::new()), DEFAULT_REGION);
        let forged = headers(&[("authorization", "Credential=a/b/x\"y/c")]);
        assert_eq!(region(&forged), DEFAULT_REGION);
    }

    #[test]
    fn quotes_are_bounded_and_escaped() {
        assert_eq!(quote("a\nb"), "\"a\\nb\"");
        let long = "é".repeat(500);
        let q = quote(&long);
        assert!(q.len() < 220 && q.ends_with("..."), "{q}");
    }
}
