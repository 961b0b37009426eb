//! `POST /v2/models/{name}[/versions/{v}]/infer`: reads the request's
//! tensors, runs the stage (every stage of a fused pipeline) on them as CSV
//! records under the endpoint's bounds (payload limit, one deadline, the
//! connections kept for `/ping`), and answers the stage's JSON as tensors.

use std::rc::Rc;
use std::time::Instant;

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use bytes::Bytes;

use modelstage_contract::excerpt::bounded;
use modelstage_contract::oip::{self, InferRequest, Tensor};

use super::model::OipModel;
use super::refusal::OipRefusal;
use super::routes::{error, find_model, registry, ModelPath};
use crate::loader::RequestMeta;
use crate::serve::body;
use crate::serve::edge::{request_id, EdgeRules, Invocation, REQUEST_ID_HEADER};
use crate::serve::http::{call_failure, State, MESSAGE_MAX};
use crate::serve::lane::Lanes;
use crate::serve::protocol::{WireAnswer, WireRequest};

/// What the stage is asked for and answers in.
const RECORDS: &str = "text/csv";
const ANSWER: &str = "application/json";

pub(super) async fn infer(
    req: &HttpRequest,
    path: &ModelPath,
    payload: web::Payload,
    model: &OipModel,
    state: &State,
) -> HttpResponse {
    let started = Instant::now();
    let request_id = request_id(req.headers());
    let mut response = run(req, path, payload, model, state, &request_id).await;
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static(REQUEST_ID_HEADER),
            value,
        );
    }
    log::info!(
        "rid={request_id} POST {} {} {:.2} ms",
        bounded(req.path(), 200),
        response.status().as_u16(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    response
}

async fn run(
    req: &HttpRequest,
    path: &ModelPath,
    payload: web::Payload,
    model: &OipModel,
    state: &State,
    request_id: &str,
) -> HttpResponse {
    let many = registry(req);
    if let Some(registry) = many {
        // A model still loading is waited for, up to the request's deadline
        // (and marked used), as `POST /models/{name}/invoke` does.
        let deadline = Instant::now() + state.config.timeout;
        if let Err(e) = registry.ready(&path.name, deadline).await {
            return body::closing(OipRefusal::Loading(e).error_response(), payload);
        }
    }
    let found = match find_model(path, model, many) {
        Ok(found) => found,
        Err(refusal) => return body::closing(refusal.error_response(), payload),
    };
    let model = found.model;
    let (Some(rules), Some(lanes)) = (
        req.app_data::<web::Data<EdgeRules>>(),
        req.app_data::<Rc<Lanes>>(),
    ) else {
        return body::closing(
            error(500, "the endpoint has no edge rules or lanes on this thread"),
            payload,
        );
    };
    let json_length = match json_length(req) {
        Ok(n) => n,
        Err(refusal) => return body::closing(refusal.error_response(), payload),
    };
    // The edge's bounds, as for /invocations: the connections kept for
    // /ping, the payload limit, the body's time limit.
    let invocation = match Invocation::read(req, payload, rules, request_id.to_string()).await {
        Ok(invocation) => invocation,
        Err(refused) => {
            let body = serde_json::json!({ "error": refused.message() }).to_string();
            return refused.respond_with_body(body);
        }
    };
    let deadline = invocation.arrived + state.config.timeout;
    let request = match oip::parse_request(&invocation.body, json_length) {
        Ok(request) => request,
        Err(e) => return OipRefusal::from(e).error_response(),
    };
    let records = match records(model, &request) {
        Ok(records) => records,
        Err(refusal) => return refusal.error_response(),
    };
    let wire = WireRequest {
        id: 0,
        meta: RequestMeta {
            request_id: request_id.to_string(),
            content_type: RECORDS.to_string(),
            accept: ANSWER.to_string(),
            custom_attributes: None,
            target_model: None,
        },
        body: Bytes::from(records),
        model: found.loaded.map(str::to_string),
    };
    let label = &state.stage_label;
    let (content_type, answer) = match state.pool.call(wire, deadline, lanes).await {
        Ok(WireAnswer::Reply {
            content_type, body, ..
        }) => (content_type, body),
        Ok(WireAnswer::Error {
            http_status,
            container,
            stage,
            hook,
            message,
            record,
            ..
        }) => {
            let mut text = match container {
                Some(container) => format!("{container} (stage {stage})"),
                None => format!("stage {stage}"),
            };
            if !hook.is_empty() {
                text.push_str(&format!(", {hook}"));
            }
            if let Some(record) = record {
                text.push_str(&format!(", record {record}"));
            }
            let text = format!("{text}: {}", bounded(&message, MESSAGE_MAX));
            log::info!("rid={request_id} {http_status} {text}");
            return error(http_status, &text);
        }
        Err(failed) => {
            let (status, message) = call_failure(failed, label, state.config.timeout, request_id);
            return error(status, &message);
        }
    };
    let outputs = match oip::answer_tensors(&answer, &content_type, &model.metadata.outputs) {
        Ok(outputs) => outputs,
        Err(e) => {
            let message = format!("stage {label} answered what is not tensors: {e}");
            log::error!("rid={request_id} {message}");
            return error(500, &message);
        }
    };
    let outputs = match oip::select_outputs(&request, outputs) {
        Ok(outputs) => outputs,
        Err(e) => return OipRefusal::from(e).error_response(),
    };
    let who = oip::Model {
        name: found.name,
        version: Some(&model.version),
    };
    match oip::write_response(&who, &request, &outputs) {
        Ok(encoded) => {
            let mut response = HttpResponse::Ok();
            match encoded.json_length {
                Some(n) => {
                    response.insert_header((CONTENT_TYPE, "application/octet-stream"));
                    response.insert_header((oip::HEADER_LENGTH, n.to_string()));
                }
                None => {
                    response.insert_header((CONTENT_TYPE, "application/json"));
                }
            }
            response.body(encoded.body)
        }
        Err(e) => error(500, &format!("stage {label}: {e}")),
    }
}

/// The `Inference-Header-Content-Length` header, when sent.
fn json_length(req: &HttpRequest) -> Result<Option<usize>, OipRefusal> {
    let Some(value) = req.headers().get(oip::HEADER_LENGTH) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .map(Some)
        .ok_or_else(|| OipRefusal::HeaderLength {
            value: value.as_bytes().to_vec(),
        })
}

/// The inputs as the CSV records the stage reads. A stage that declares its
/// inputs gets them in its order, and a request must match the declaration.
fn records(model: &OipModel, request: &InferRequest) -> Result<Vec<u8>, OipRefusal> {
    if !model.declared_inputs {
        let inputs: Vec<&Tensor> = request.inputs.iter().collect();
        return Ok(oip::to_csv(&inputs)?);
    }
    let declared = &model.metadata.inputs;
    if let Some(extra) = request
        .inputs
        .iter()
        .find(|t| !declared.iter().any(|d| d.name == t.name))
    {
        return Err(OipRefusal::NotAnInput {
            input: extra.name.clone(),
            model: model.name.clone(),
            declared: declared.iter().map(|d| d.name.clone()).collect(),
        });
    }
    let mut ordered = Vec::with_capacity(declared.len());
    for d in declared {
        let Some(t) = request.inputs.iter().find(|t| t.name == d.name) else {
            return Err(OipRefusal::MissingInput {
                input: d.name.clone(),
                model: model.name.clone(),
            });
        };
        if t.datatype.name() != d.datatype {
            return Err(OipRefusal::Datatype {
                input: d.name.clone(),
                sent: t.datatype,
                takes: d.datatype.clone(),
            });
        }
        if !d.accepts_shape(&t.shape) {
            return Err(OipRefusal::Shape {
                input: d.name.clone(),
                sent: t.shape.clone(),
                takes: d.shape.clone(),
            });
        }
        ordered.push(t);
    }
    Ok(oip::to_csv(&ordered)?)
}
