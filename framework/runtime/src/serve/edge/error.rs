//! The one error type of the HTTP edge: a status and the JSON body every
//! container answers with (`docs/contract.md` (Errors)), rendered by actix
//! through [`ResponseError`], so a handler or an extractor returns it and
//! the response follows, byte for byte alike in `serve` and the router.

use std::cell::RefCell;
use std::fmt;

use actix_web::http::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse, ResponseError};

use super::REQUEST_ID_HEADER;
use crate::serve::body;
use modelstage_contract::error_body::{error_body, model_error_body};

/// An error answer: the status, the stage (or endpoint) it names, and where
/// they apply the hook and the record.
pub struct EdgeError {
    status: u16,
    stage: String,
    hook: Option<String>,
    message: String,
    record: Option<u64>,
    request_id: String,
    allow: Option<&'static str>,
    /// The request body not read (it was too large, too slow or broken):
    /// held until the answer is written, which closes the connection
    /// (see [`body::closing`]).
    unread: RefCell<Option<web::Payload>>,
}

impl EdgeError {
    /// An error of `stage` (the endpoint's label) with no request id yet
    /// (`-`), no hook and no record.
    pub fn new(status: u16, stage: impl Into<String>, message: impl Into<String>) -> EdgeError {
        EdgeError {
            status,
            stage: stage.into(),
            hook: None,
            message: message.into(),
            record: None,
            request_id: "-".to_string(),
            allow: None,
            unread: RefCell::new(None),
        }
    }

    /// The request it answers.
    pub fn request_id(mut self, request_id: impl Into<String>) -> EdgeError {
        self.request_id = request_id.into();
        self
    }

    /// The hook that failed; an empty name means none (the pipeline's own error).
    pub fn hook(mut self, hook: impl Into<String>) -> EdgeError {
        let hook = hook.into();
        self.hook = (!hook.is_empty()).then_some(hook);
        self
    }

    /// The record the error is about.
    pub fn record(mut self, record: Option<u64>) -> EdgeError {
        self.record = record;
        self
    }

    /// The methods a 405 names in its `Allow` header.
    pub fn allow(mut self, methods: &'static str) -> EdgeError {
        self.allow = Some(methods);
        self
    }

    /// Answers before `payload` was read in full: the answer closes the connection.
    pub fn closing(self, payload: web::Payload) -> EdgeError {
        *self.unread.borrow_mut() = Some(payload);
        self
    }

    /// The HTTP status it answers with.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The id of the request it answers (`-` for none).
    pub fn rid(&self) -> &str {
        &self.request_id
    }

    /// What the JSON body's `message` says.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The JSON body (keys sorted): `error`, `status`, `stage`, `hook` where
    /// it applies, `message`, `record` where it applies, `request_id`.
    pub fn body(&self) -> String {
        error_body(
            self.status,
            &self.stage,
            self.hook.as_deref(),
            &self.message,
            self.record,
            &self.request_id,
        )
    }

    /// The response, as actix renders it (for handlers that answer rather than fail).
    pub fn respond(self) -> HttpResponse {
        self.error_response()
    }
}

impl fmt::Debug for EdgeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EdgeError")
            .field("status", &self.status)
            .field("stage", &self.stage)
            .field("hook", &self.hook)
            .field("message", &self.message)
            .field("record", &self.record)
            .field("request_id", &self.request_id)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for EdgeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status, self.stage, self.message)
    }
}

impl ResponseError for EdgeError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        self.render(self.body())
    }
}

impl EdgeError {
    /// The response with another JSON body (the Open Inference Protocol's
    /// `{"error": ...}`), closing the connection as [`EdgeError::respond`] does.
    pub fn respond_with_body(self, body: String) -> HttpResponse {
        self.render(body)
    }

    fn render(&self, body: String) -> HttpResponse {
        let mut response = json_response(self.status, body, &self.request_id);
        if let Some(methods) = self.allow {
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static(methods));
        }
        match self.unread.borrow_mut().take() {
            Some(payload) => body::closing(response, payload),
            None => response,
        }
    }
}

/// A JSON response carrying the request id header.
pub fn json_response(status: u16, body: String, request_id: &str) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .insert_header((CONTENT_TYPE, "application/json"))
        .insert_header((REQUEST_ID_HEADER, request_id))
        .body(body)
}

/// The 424 response of [`model_error_body`].
pub fn model_error_response(
    container: &str,
    original_status: u16,
    original_body: &str,
    request_id: &str,
) -> HttpResponse {
    json_response(
        424,
        model_error_body(container, original_status, original_body, request_id),
        request_id,
    )
}
