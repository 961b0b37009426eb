//! The HTTP side of the endpoint contract (docs/contract.md (Serving)):
//! `GET /ping`, `POST /invocations`, `GET /execution-parameters`, and JSON
//! errors that name the stage, the hook and, where it applies, the record.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::{HeaderValue, CONTENT_TYPE};
use actix_web::{web, HttpRequest, HttpResponse};

use modelstage_contract::excerpt::{bounded, quoted};

use super::config::ServeConfig;
use super::edge::{model_error_response, EdgeError, Invocation, CUSTOM_ATTRIBUTES_HEADER, REQUEST_ID_HEADER};
use super::lane::Lanes;
use super::pool::{CallError, Pool};
use super::protocol::{WireAnswer, WireRequest};

pub(super) struct State {
    pub config: ServeConfig,
    pub pool: Arc<Pool>,
    pub stage_label: String,
    pub execution_parameters_json: String,
}

/// The longest stage error message an answer or a log line carries whole.
pub(super) const MESSAGE_MAX: usize = 4096;

pub(super) async fn ping(state: web::Data<State>) -> HttpResponse {
    if state.pool.is_ready() {
        HttpResponse::Ok().finish()
    } else {
        let message = format!(
            "stage {} is not ready: its model is loading, or no worker can load it",
            state.stage_label
        );
        EdgeError::new(503, state.stage_label.as_str(), message).respond()
    }
}

pub(super) async fn execution_parameters(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/json"))
        .body(state.execution_parameters_json.clone())
}

pub(super) async fn not_found(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    let message = format!(
        "no route for {} {}: the endpoint serves GET /ping, POST /invocations and GET /execution-parameters",
        req.method(),
        quoted(req.path().as_bytes())
    );
    EdgeError::new(404, state.stage_label.as_str(), message).respond()
}

pub(super) async fn method_not_allowed(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    let message = format!(
        "{} is not allowed on {}",
        req.method(),
        quoted(req.path().as_bytes())
    );
    let allow = if req.path() == "/invocations" {
        "POST"
    } else {
        "GET"
    };
    EdgeError::new(405, state.stage_label.as_str(), message)
        .allow(allow)
        .respond()
}

/// `POST /invocations`, with one access-log line per request carrying its id.
pub(super) async fn invocations(
    req: HttpRequest,
    invocation: Result<Invocation, EdgeError>,
    state: web::Data<State>,
) -> HttpResponse {
    let (response, request_id, arrived) = match (invocation, req.app_data::<Rc<Lanes>>()) {
        (Ok(invocation), Some(lanes)) => {
            let (request_id, arrived) = (invocation.request_id.clone(), invocation.arrived);
            (invoke(invocation, &state, lanes, None).await, request_id, arrived)
        }
        (Ok(invocation), None) => {
            let message = "the endpoint has no lanes to its workers on this thread";
            let refused = EdgeError::new(500, state.stage_label.as_str(), message)
                .request_id(invocation.request_id.as_str());
            (refused.respond(), invocation.request_id, invocation.arrived)
        }
        // The edge refused it before reading it whole (the time its body
        // took is not known here).
        (Err(refused), _) => {
            let request_id = refused.rid().to_string();
            (refused.respond(), request_id, std::time::Instant::now())
        }
    };
    log::info!(
        "rid={request_id} POST /invocations {} {:.2} ms",
        response.status().as_u16(),
        arrived.elapsed().as_secs_f64() * 1000.0
    );
    response
}

/// Runs one request on the stage (on `model`, in a multi-model endpoint).
pub(super) async fn invoke(
    invocation: Invocation,
    state: &State,
    lanes: &Rc<Lanes>,
    model: Option<String>,
) -> HttpResponse {
    // One deadline per request, from its arrival: reading the body, waiting
    // for a free request thread and running on it all count.
    let deadline = invocation.arrived + state.config.timeout;
    let request_id = invocation.request_id;
    let label = &state.stage_label;
    let error = |status: u16, message: String| {
        EdgeError::new(status, label.as_str(), message).request_id(request_id.as_str())
    };
    let Some(meta) = invocation.meta else {
        return error(500, "the endpoint did not resolve the request's head".to_string()).respond();
    };
    let request = WireRequest {
        id: 0,
        meta,
        model,
        body: invocation.body,
    };

    let answer = match state.pool.call(request, deadline, lanes).await {
        Ok(answer) => answer,
        Err(failed) => {
            let (status, message) = call_failure(failed, label, state.config.timeout, &request_id);
            return error(status, message).respond();
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
                    let inner = EdgeError::new(http_status, stage, message)
                        .hook(hook)
                        .record(record)
                        .request_id(request_id.as_str())
                        .body();
                    model_error_response(&container, http_status, &inner, &request_id)
                }
                // An empty hook: the error is the pipeline's, not one hook's.
                None => EdgeError::new(http_status, stage, message)
                    .hook(hook)
                    .record(record)
                    .request_id(request_id)
                    .respond(),
            }
        }
    }
}

/// The status and message of a request the pool could not run (logged
/// when it is the endpoint's trouble rather than the client's): one wording
/// for `/invocations` and the Open Inference Protocol's infer.
pub(super) fn call_failure(
    failed: CallError,
    label: &str,
    timeout: Duration,
    request_id: &str,
) -> (u16, String) {
    match failed {
        CallError::Unavailable => (
            503,
            format!(
                "stage {label} has no worker that can take requests (its model is loading, or no worker can load it); retry shortly"
            ),
        ),
        CallError::TimedOut { started } => {
            let why = if started {
                "its worker is being replaced"
            } else {
                "every worker thread was busy until then"
            };
            let message = format!(
                "stage {label} did not answer within {} s (SAGEMAKER_MODEL_SERVER_TIMEOUT): {why}",
                timeout.as_secs_f64()
            );
            log::warn!("rid={request_id} {message}");
            (504, message)
        }
        CallError::Crashed(message) => {
            log::error!("rid={request_id} {message}");
            (500, message)
        }
    }
}

/// The `/execution-parameters` document: the `SAGEMAKER_*` variables win over
/// the stage's declaration, which wins over the defaults.
pub(super) fn timeout_of(secs: u64) -> Duration {
    Duration::from_secs(secs.max(1))
}
