//! The HTTP side of the endpoint contract (docs/contract.md (Serving)):
//! `GET /ping`, `POST /invocations`, `GET /execution-parameters`, and JSON
//! errors that name the stage, the hook and, where it applies, the record.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use modelstage_sdk::excerpt::{bounded, quoted};

use super::body;
use super::config::ServeConfig;
use super::connections;
use super::pool::{CallError, Pool};
use super::protocol::{WireAnswer, WireRequest};

/// The header that carries one correlation id through every container of a
/// pipeline and into every log line.
pub const REQUEST_ID_HEADER: &str = "x-modelstage-request-id";
pub const CUSTOM_ATTRIBUTES_HEADER: &str = "x-amzn-sagemaker-custom-attributes";

pub struct State {
    pub config: ServeConfig,
    /// Open connections past which `/invocations` is refused (the rest are
    /// kept for `/ping`, see `connections`).
    pub invocation_connections: usize,
    pub pool: Arc<Pool>,
    pub stage_label: String,
    pub execution_parameters_json: String,
}

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

/// The longest stage error message an answer or a log line carries whole.
pub const MESSAGE_MAX: usize = 4096;

fn error_name(status: u16) -> &'static str {
    match status {
        400 => "BadRequest",
        404 => "NotFound",
        409 => "Conflict",
        507 => "InsufficientStorage",
        408 => "RequestTimeout",
        406 => "UnsupportedAccept",
        413 => "PayloadTooLarge",
        415 => "UnsupportedContentType",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        405 => "MethodNotAllowed",
        _ => "InternalError",
    }
}

/// A JSON error body. `hook` and `record` are omitted where they do not apply.
pub fn error_response(
    status: u16,
    stage: &str,
    hook: Option<&str>,
    message: &str,
    record: Option<u64>,
    request_id: &str,
) -> HttpResponse {
    let body = error_body(status, stage, hook, message, record, request_id);
    json_response(status, body, request_id)
}

/// A JSON response carrying the request id header.
pub fn json_response(status: u16, body: String, request_id: &str) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .insert_header((CONTENT_TYPE, "application/json"))
        .insert_header((REQUEST_ID_HEADER, request_id))
        .body(body)
}

/// The JSON error body a container answers with (keys sorted).
pub fn error_body(
    status: u16,
    stage: &str,
    hook: Option<&str>,
    message: &str,
    record: Option<u64>,
    request_id: &str,
) -> String {
    let mut body = serde_json::Map::new();
    body.insert("error".into(), error_name(status).into());
    body.insert("status".into(), status.into());
    body.insert("stage".into(), stage.into());
    if let Some(hook) = hook {
        body.insert("hook".into(), hook.into());
    }
    body.insert("message".into(), message.into());
    if let Some(record) = record {
        body.insert("record".into(), record.into());
    }
    body.insert("request_id".into(), request_id.into());
    serde_json::Value::Object(body).to_string()
}

/// SageMaker's `ModelError` (HTTP 424) for a pipeline container that answered
/// `original_status` with `original_body`: names the container and carries
/// its status and message (docs/contract.md (Serial pipelines)). The router of a pipeline of
/// containers and a fused pipeline both answer with exactly this body.
pub fn model_error_body(
    container: &str,
    original_status: u16,
    original_body: &str,
    request_id: &str,
) -> String {
    let kind = if (400..500).contains(&original_status) {
        "client"
    } else {
        "server"
    };
    let mut body = serde_json::Map::new();
    body.insert("error".into(), "ModelError".into());
    body.insert("status".into(), 424.into());
    body.insert("container".into(), container.into());
    body.insert("original_status".into(), original_status.into());
    body.insert("original_message".into(), original_body.into());
    body.insert(
        "message".into(),
        format!(
            "Received {kind} error ({original_status}) from {container} with message \"{original_body}\""
        )
        .into(),
    );
    body.insert("request_id".into(), request_id.into());
    serde_json::Value::Object(body).to_string()
}

/// The 424 response of `model_error_body`.
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

pub async fn ping(state: web::Data<State>) -> HttpResponse {
    if state.pool.is_ready() {
        HttpResponse::Ok().finish()
    } else {
        let message = format!(
            "stage {} is not ready: its model is loading, or no worker can load it",
            state.stage_label
        );
        error_response(503, &state.stage_label, None, &message, None, "-")
    }
}

pub async fn execution_parameters(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/json"))
        .body(state.execution_parameters_json.clone())
}

pub async fn not_found(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    let message = format!(
        "no route for {} {}: the endpoint serves GET /ping, POST /invocations and GET /execution-parameters",
        req.method(),
        quoted(req.path().as_bytes())
    );
    error_response(404, &state.stage_label, None, &message, None, "-")
}

pub async fn method_not_allowed(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    let message = format!(
        "{} is not allowed on {}",
        req.method(),
        quoted(req.path().as_bytes())
    );
    let mut r = error_response(405, &state.stage_label, None, &message, None, "-");
    r.headers_mut().insert(
        actix_web::http::header::ALLOW,
        HeaderValue::from_static(if req.path() == "/invocations" {
            "POST"
        } else {
            "GET"
        }),
    );
    r
}

/// `POST /invocations`, with one access-log line per request carrying its id.
pub async fn invocations(req: HttpRequest, payload: web::Payload, state: web::Data<State>) -> HttpResponse {
    let started = std::time::Instant::now();
    let request_id = request_id(req.headers());
    let response = invoke(&req, payload, &state, &request_id, None).await;
    log::info!(
        "rid={request_id} POST /invocations {} {:.2} ms",
        response.status().as_u16(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    response
}

/// A header's value as text. A value with a byte that is not visible ASCII
/// is an error naming it, never taken for a missing header.
pub fn text_header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, String> {
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
                Err(format!(
                    "the {name} header has an invalid byte 0x{:02x} at offset {at}: {}",
                    bytes[at],
                    quoted(bytes)
                ))
            }
        },
    }
}

/// What the client asked of the endpoint before the body: Content-Type,
/// Accept and custom attributes, or a 400 message.
struct Head {
    content_type: String,
    accept: String,
    custom_attributes: Option<String>,
}

fn read_head(headers: &HeaderMap, state: &State) -> Result<Head, String> {
    // A missing Content-Type is JSON, as the legacy toolkit assumes.
    let content_type = text_header(headers, "Content-Type")?
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .unwrap_or("application/json")
        .to_string();
    let accept = match text_header(headers, "Accept")?.map(str::trim) {
        None | Some("") | Some("*/*") => state.config.default_accept.clone(),
        Some(a) => a.to_string(),
    };
    let custom_attributes = text_header(headers, "X-Amzn-SageMaker-Custom-Attributes")?.map(str::to_string);
    Ok(Head {
        content_type,
        accept,
        custom_attributes,
    })
}

/// Runs one request on the stage (on `model`, in a multi-model endpoint).
pub(super) async fn invoke(
    req: &HttpRequest,
    mut payload: web::Payload,
    state: &State,
    request_id: &str,
    model: Option<String>,
) -> HttpResponse {
    // One deadline per request, from its arrival: reading the body, waiting
    // for a free worker thread and running on it all count.
    let deadline = std::time::Instant::now() + state.config.timeout;
    let headers = req.headers();
    let request_id = request_id.to_string();
    let label = &state.stage_label;
    // Past the connections kept for `/ping`, refuse before reading anything.
    let open = connections::open();
    if open > state.invocation_connections {
        let message = format!(
            "the endpoint holds {open} connections, more than the {} it serves /invocations on (MODELSTAGE_MAX_CONNECTIONS); retry shortly",
            state.invocation_connections
        );
        return body::closing(
            error_response(503, label, None, &message, None, &request_id),
            payload,
        );
    }
    let head = match read_head(headers, state) {
        Ok(head) => head,
        Err(message) => {
            return body::closing(
                error_response(400, label, None, &message, None, &request_id),
                payload,
            );
        }
    };
    let edge = &state.config.edge;
    let body = match body::read(
        &mut payload,
        headers,
        state.config.max_payload_bytes,
        edge.body_timeout,
    )
    .await
    {
        Ok(b) => b,
        Err(e) => {
            let too_large = format!(
                "the request body is larger than the {} MB limit (SAGEMAKER_MAX_PAYLOAD_IN_MB)",
                state.config.max_payload_in_mb
            );
            let message = e.message(&too_large, edge.body_timeout);
            let response = error_response(e.status(), label, None, &message, None, &request_id);
            return body::closing(response, payload);
        }
    };
    drop(payload);
    let request = WireRequest {
        id: 0,
        request_id: request_id.clone(),
        content_type: head.content_type,
        accept: head.accept,
        custom_attributes: head.custom_attributes,
        model,
        body,
    };

    let answer = match state.pool.call(request, deadline).await {
        Ok(answer) => answer,
        Err(CallError::Unavailable) => {
            let message = format!(
                "stage {label} has no worker that can take requests (its model is loading, or no worker can load it); retry shortly"
            );
            return error_response(503, label, None, &message, None, &request_id);
        }
        Err(CallError::TimedOut { started }) => {
            let why = if started {
                "its worker is being replaced"
            } else {
                "every worker thread was busy until then"
            };
            let message = format!(
                "stage {label} did not answer within {} s (SAGEMAKER_MODEL_SERVER_TIMEOUT): {why}",
                state.config.timeout.as_secs_f64()
            );
            log::warn!("rid={request_id} {message}");
            return error_response(504, label, None, &message, None, &request_id);
        }
        Err(CallError::Crashed(message)) => {
            log::error!("rid={request_id} {message}");
            return error_response(500, label, None, &message, None, &request_id);
        }
    };
    match answer {
        WireAnswer::Reply {
            content_type,
            custom_attributes,
            body,
            ..
        } => {
            let mut response = HttpResponse::Ok();
            if let Ok(ct) = HeaderValue::from_str(&content_type) {
                response.insert_header((CONTENT_TYPE, ct));
            }
            if let Some(attrs) = custom_attributes.and_then(|a| HeaderValue::from_str(&a).ok()) {
                response.insert_header((CUSTOM_ATTRIBUTES_HEADER, attrs));
            }
            response.insert_header((REQUEST_ID_HEADER, request_id));
            response.body(body)
        }
        WireAnswer::Error {
            http_status,
            container,
            stage,
            hook,
            message,
            record,
            ..
        } => {
            let message = bounded(&message, MESSAGE_MAX);
            log::info!("rid={request_id} {http_status} from {stage} {hook}: {message}");
            match container {
                // A fused pipeline answers as the router of separate containers would.
                Some(container) => {
                    let inner = error_body(http_status, &stage, Some(&hook), &message, record, &request_id);
                    model_error_response(&container, http_status, &inner, &request_id)
                }
                None => {
                    // An empty hook: the error is the pipeline's, not one hook's.
                    let hook = Some(hook.as_str()).filter(|h| !h.is_empty());
                    error_response(http_status, &stage, hook, &message, record, &request_id)
                }
            }
        }
    }
}

/// The `/execution-parameters` document: the `SAGEMAKER_*` variables win over
/// the stage's declaration, which wins over the defaults.
pub fn timeout_of(secs: u64) -> Duration {
    Duration::from_secs(secs.max(1))
}
