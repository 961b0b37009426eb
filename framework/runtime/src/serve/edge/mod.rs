//! The HTTP edge `modelstage serve` and the router of `deploy` share: what
//! happens to an invocation before any stage or container sees it (the
//! request id, the connection budget, the request head, the body under its
//! size and time limits; [`Invocation`]) and the one error type every
//! refusal is answered with ([`EdgeError`]), so both answer byte for byte
//! alike.

mod error;
mod invocation;

use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::http::header::{HeaderMap, HeaderValue};

use modelstage_contract::excerpt::quoted;

pub use error::{json_response, model_error_response, EdgeError};
pub use invocation::{EdgeRules, Invocation};

/// The header that carries one correlation id through every container of a
/// pipeline and into every log line.
pub const REQUEST_ID_HEADER: &str = "x-modelstage-request-id";
/// SageMaker's opaque metadata header, passed to the stage and back as it is.
pub const CUSTOM_ATTRIBUTES_HEADER: &str = "x-amzn-sagemaker-custom-attributes";
/// The header naming the model of a multi-model endpoint a request is for,
/// as `InvokeEndpoint`'s `TargetModel` sets it; passed to the stage.
pub const TARGET_MODEL_HEADER: &str = "X-Amzn-SageMaker-Target-Model";
/// The longest target model name, as SageMaker bounds `TargetModel`.
pub const TARGET_MODEL_MAX: usize = 1024;

static REQUEST_SEQ: AtomicU64 = AtomicU64::new(0);

/// A new request id: unique per process and readable (a per-start prefix and
/// a counter).
pub fn new_request_id() -> String {
    static PREFIX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let prefix = *PREFIX.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        nanos ^ std::process::id().rotate_left(16)
    });
    format!("{prefix:08x}-{:06x}", REQUEST_SEQ.fetch_add(1, Ordering::Relaxed))
}

/// The longest request id kept from a client.
pub const REQUEST_ID_MAX: usize = 128;

/// The request id a router sent, else a new one. A sent id is kept only when
/// it is at most [`REQUEST_ID_MAX`] bytes of letters, digits and `-_.:`, so
/// that it is safe in a log line and a header as it stands.
pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID_HEADER)
        .map(HeaderValue::as_bytes)
        .filter(|id| !id.is_empty() && id.len() <= REQUEST_ID_MAX)
        .filter(|id| {
            id.iter()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
        })
        .and_then(|id| std::str::from_utf8(id).ok())
        .map(str::to_string)
        .unwrap_or_else(new_request_id)
}

/// A request header the edge cannot take as it is: the request is refused
/// with [`HeaderError::status`] and this message, as an [`EdgeError`].
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    /// A value with a byte that is not visible ASCII, never taken for a
    /// missing header.
    #[error("the {name} header has an invalid byte 0x{byte:02x} at offset {at}: {}", quoted(.value))]
    NotText {
        /// The header.
        name: &'static str,
        /// The first byte that is not visible ASCII.
        byte: u8,
        /// Where it is in the value.
        at: usize,
        /// The value as sent.
        value: Vec<u8>,
    },
    /// A target model name longer than [`TARGET_MODEL_MAX`] bytes, or with a tab.
    #[error(
        "the {} header must be 1 to {} bytes of visible text, got {} bytes: {}",
        TARGET_MODEL_HEADER,
        TARGET_MODEL_MAX,
        .0.len(),
        quoted(.0.as_bytes())
    )]
    TargetModel(String),
}

impl HeaderError {
    /// The HTTP status a request with this header is refused with.
    pub fn status(&self) -> u16 {
        400
    }
}

/// `X-Amzn-SageMaker-Target-Model` as text, `None` when absent or empty;
/// an error naming the header for a value that is not visible ASCII or is
/// longer than [`TARGET_MODEL_MAX`] bytes.
pub fn target_model(headers: &HeaderMap) -> Result<Option<&str>, HeaderError> {
    match text_header(headers, TARGET_MODEL_HEADER)? {
        None | Some("") => Ok(None),
        Some(t) if t.len() > TARGET_MODEL_MAX || t.contains('\t') => {
            Err(HeaderError::TargetModel(t.to_string()))
        }
        Some(t) => Ok(Some(t)),
    }
}

/// A header's value as text. A value with a byte that is not visible ASCII
/// is an error naming it, never taken for a missing header.
pub fn text_header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<Option<&'a str>, HeaderError> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => match value.to_str() {
            Ok(text) => Ok(Some(text)),
            Err(_) => {
                let bytes = value.as_bytes();
                let at = bytes
                    .iter()
                    .position(|&b| !(b == b'\t' || (0x20..0x7f).contains(&b)))
                    .unwrap_or(0);
                Err(HeaderError::NotText {
                    name,
                    byte: bytes[at],
                    at,
                    value: bytes.to_vec(),
                })
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_errors_name_the_header_and_the_byte() {
        let mut headers = HeaderMap::new();
        headers.insert(
            actix_web::http::header::ACCEPT,
            HeaderValue::from_bytes(b"text/\xffcsv").unwrap(),
        );
        let e = text_header(&headers, "Accept").unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(
            e.to_string()
                .starts_with("the Accept header has an invalid byte 0xff at offset 5: "),
            "{e}"
        );
        headers.insert(
            actix_web::http::header::HeaderName::from_static("x-amzn-sagemaker-target-model"),
            HeaderValue::from_static("a\tb"),
        );
        let e = target_model(&headers).unwrap_err();
        assert!(
            e.to_string().starts_with(&format!(
                "the {TARGET_MODEL_HEADER} header must be 1 to {TARGET_MODEL_MAX} bytes of visible text, got 3 bytes: "
            )),
            "{e}"
        );
    }
}
