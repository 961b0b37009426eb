//! The error a hook returns, and how it maps onto the ABI's status codes.

use std::fmt;

use modelstage_abi as abi;

/// What went wrong, as far as the client is concerned. Each kind maps to one
/// HTTP status (see `docs/abi.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed: 400.
    BadRequest,
    /// The request's Content-Type is not supported: 415.
    UnsupportedContentType,
    /// The requested Accept is not supported: 406.
    UnsupportedAccept,
    /// The payload is too large for this stage: 413.
    PayloadTooLarge,
    /// The stage cannot take work now: 503.
    Unavailable,
    /// The stage failed: 500.
    Internal,
}

impl ErrorKind {
    /// The ABI status code of this kind.
    pub const fn status(self) -> i32 {
        match self {
            ErrorKind::BadRequest => abi::MODELSTAGE_ERR_BAD_REQUEST,
            ErrorKind::UnsupportedContentType => abi::MODELSTAGE_ERR_UNSUPPORTED_CONTENT_TYPE,
            ErrorKind::UnsupportedAccept => abi::MODELSTAGE_ERR_UNSUPPORTED_ACCEPT,
            ErrorKind::PayloadTooLarge => abi::MODELSTAGE_ERR_PAYLOAD_TOO_LARGE,
            ErrorKind::Unavailable => abi::MODELSTAGE_ERR_UNAVAILABLE,
            ErrorKind::Internal => abi::MODELSTAGE_ERR_INTERNAL,
        }
    }
}

/// An error from a hook: a kind, a message a person can act on and, where it
/// applies, the zero-based index of the record that caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageError {
    /// What went wrong, which picks the HTTP status.
    pub kind: ErrorKind,
    /// The message the client and the log get.
    pub message: String,
    /// The zero-based index of the record that caused it, where one did.
    pub record: Option<usize>,
}

impl StageError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        StageError {
            kind,
            message: message.into(),
            record: None,
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, message)
    }

    /// 415 for `content_type`, with the types the stage does accept.
    pub fn unsupported_content_type(content_type: &str, supported: &[&str]) -> Self {
        Self::new(
            ErrorKind::UnsupportedContentType,
            format!(
                "Content-Type '{}' is not supported; use one of: {}",
                crate::excerpt(content_type.as_bytes()),
                supported.join(", ")
            ),
        )
    }

    /// 406 for `accept`, with the types the stage can produce.
    pub fn unsupported_accept(accept: &str, supported: &[&str]) -> Self {
        Self::new(
            ErrorKind::UnsupportedAccept,
            format!(
                "Accept '{}' is not supported; use one of: {}",
                crate::excerpt(accept.as_bytes()),
                supported.join(", ")
            ),
        )
    }

    /// 500: the stage failed.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// 503: the stage cannot take work now.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    /// Names the record (zero-based) that caused the error.
    pub fn at_record(mut self, record: usize) -> Self {
        self.record = Some(record);
        self
    }
}

impl fmt::Display for StageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StageError {}

impl From<std::io::Error> for StageError {
    fn from(e: std::io::Error) -> Self {
        StageError::internal(e.to_string())
    }
}

impl ErrorKind {
    /// Whether the request is at fault (a 4xx status), not the stage or the
    /// service: what every answer to a malformed body must be.
    pub const fn is_client_error(self) -> bool {
        matches!(
            self,
            ErrorKind::BadRequest
                | ErrorKind::UnsupportedContentType
                | ErrorKind::UnsupportedAccept
                | ErrorKind::PayloadTooLarge
        )
    }
}
