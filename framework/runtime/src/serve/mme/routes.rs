//! The HTTP API of a multi-model endpoint, as SageMaker calls it:
//!
//! - `POST /models` `{"model_name", "url"}`: 200 once every worker has
//!   loaded it; 409 if loaded already; 507 past the memory budget; 400 (the
//!   stage's message, the model and the path) when `model_fn` fails.
//! - `GET /models` (`limit`, `next_page_token`), `GET /models/{name}`,
//!   `DELETE /models/{name}`.
//! - `POST /models/{name}/invoke`: the stage's hooks on that model.
//! - `POST /invocations` with `X-Amzn-SageMaker-Target-Model` (what the
//!   SageMaker Python SDK's local mode sends): loads
//!   `/opt/ml/model/<target>` (a `.tar.gz` or a folder) on first use.
//!
//! Errors are the endpoint's JSON errors ([`EdgeError`]); an invocation's
//! head and body go through the endpoint's edge ([`Invocation`]).

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use modelstage_contract::excerpt::quoted;
use serde::Deserialize;

use super::super::body;
use super::super::edge::{
    json_response, request_id, target_model, EdgeError, EdgeRules, Invocation, TARGET_MODEL_HEADER,
};
use super::super::http::{self, State};
use super::super::lane::Lanes;
use super::super::metrics::Route;
use super::registry::{target_problem, LoadRefusal, Registry, Source};

/// The largest `POST /models` body.
const LOAD_BODY_MAX: usize = 64 * 1024;

/// The most models one `GET /models` page lists, and the default.
const PAGE_MAX: usize = 1000;
const PAGE_DEFAULT: usize = 100;

/// What the routes share.
pub struct Api {
    /// The table of models.
    pub registry: Arc<Registry>,
    /// `$SAGEMAKER_BASE_DIR/model`: where `/invocations` finds a target model.
    pub model_root: PathBuf,
}

/// Adds the routes; before the single-model ones, so that this
/// `POST /invocations` is the one served.
pub fn register(cfg: &mut web::ServiceConfig) {
    cfg.route("/invocations", web::post().to(invocations))
        .route("/models", web::post().to(load))
        .route("/models", web::get().to(list))
        .route("/models/{name}", web::get().to(describe))
        .route("/models/{name}", web::delete().to(unload))
        .route("/models/{name}/invoke", web::post().to(invoke));
}

/// The model's name from the path, and the route's label for the metrics
/// (the pattern, so that names do not grow the series).
fn model_name(req: &HttpRequest, route: &'static str) -> String {
    req.extensions_mut().insert(Route(route));
    req.match_info().query("name").to_string()
}

fn json(status: u16, value: serde_json::Value, rid: &str) -> HttpResponse {
    json_response(status, value.to_string(), rid)
}

/// One access-log line per request, as `/invocations` has.
fn logged(method: &str, path: &str, started: Instant, rid: &str, response: HttpResponse) -> HttpResponse {
    log::info!(
        "rid={rid} {method} {} {} {:.2} ms",
        quoted(path.as_bytes()),
        response.status().as_u16(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    response
}

/// An error answer of this endpoint.
fn refuse(state: &State, status: u16, message: impl Into<String>, rid: &str) -> EdgeError {
    EdgeError::new(status, state.stage_label.as_str(), message).request_id(rid)
}

fn failure(state: &State, e: &LoadRefusal, rid: &str) -> EdgeError {
    refuse(state, e.status(), e.message(), rid)
}

fn not_loaded(state: &State, name: &str, rid: &str) -> EdgeError {
    let message = format!(
        "model {} is not loaded in stage {} (load it with POST /models)",
        quoted(name.as_bytes()),
        state.stage_label
    );
    refuse(state, 404, message, rid)
}

/// Why a model name is refused, if it is: 1 to 1024 bytes, no control
/// characters.
fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > 1024 || name.chars().any(char::is_control) {
        return Some(format!(
            "a model name must be 1 to 1024 bytes without control characters, got {}",
            quoted(name.as_bytes())
        ));
    }
    None
}

/// Reads the invocation's head and body under the endpoint's bounds, then
/// runs it on `model`. The hooks see `X-Amzn-SageMaker-Target-Model` as the
/// client sent it, else `model`, as SageMaker sends the target model with
/// every invocation of a multi-model endpoint.
async fn run_on(
    req: &HttpRequest,
    payload: web::Payload,
    state: &State,
    rules: &EdgeRules,
    rid: &str,
    model: String,
) -> HttpResponse {
    let mut invocation = match Invocation::read(req, payload, rules, rid.to_string()).await {
        Ok(invocation) => invocation,
        Err(refused) => return refused.respond(),
    };
    if let Some(meta) = invocation.meta.as_mut() {
        meta.target_model.get_or_insert_with(|| model.clone());
    }
    match req.app_data::<Rc<Lanes>>() {
        Some(lanes) => http::invoke(invocation, state, lanes, Some(model)).await,
        None => refuse(
            state,
            500,
            "the endpoint has no lanes to its workers on this thread",
            rid,
        )
        .respond(),
    }
}

#[derive(Deserialize)]
struct LoadRequest {
    model_name: String,
    url: String,
}

/// `POST /models`.
async fn load(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<State>,
    api: web::Data<Api>,
) -> HttpResponse {
    let started = Instant::now();
    let rid = request_id(req.headers());
    let response = match load_request(&req, payload, &state, &rid).await {
        Err(refused) => refused.respond(),
        Ok(request) => {
            let source = Source::Folder(PathBuf::from(&request.url));
            match api.registry.load(&request.model_name, &request.url, source).await {
                Ok(()) => json(
                    200,
                    serde_json::json!({
                        "message": format!("model {} loaded", request.model_name),
                        "modelName": request.model_name,
                        "modelUrl": request.url,
                    }),
                    &rid,
                ),
                Err(e) => {
                    log::warn!("rid={rid} {}", e.message());
                    failure(&state, &e, &rid).respond()
                }
            }
        }
    };
    logged("POST", "/models", started, &rid, response)
}

/// The body of `POST /models`, read (64 KiB at most) and checked.
async fn load_request(
    req: &HttpRequest,
    mut payload: web::Payload,
    state: &State,
    rid: &str,
) -> Result<LoadRequest, Box<EdgeError>> {
    let timeout = state.config.edge.body_timeout;
    let bytes = match body::read(&mut payload, req.headers(), LOAD_BODY_MAX, timeout).await {
        Ok(bytes) => bytes,
        Err(e) => {
            let message = e.message("the body of POST /models is larger than 64 KiB", timeout);
            return Err(Box::new(refuse(state, e.status(), message, rid).closing(payload)));
        }
    };
    let request = serde_json::from_slice::<LoadRequest>(&bytes).map_err(|e| {
        let message = format!(
            "POST /models takes {{\"model_name\": \"...\", \"url\": \"...\"}}: {e} in {}",
            quoted(&bytes)
        );
        Box::new(refuse(state, 400, message, rid))
    })?;
    match name_problem(&request.model_name) {
        Some(message) => Err(Box::new(refuse(state, 400, message, rid))),
        None => Ok(request),
    }
}

/// `GET /models?limit=N&next_page_token=T`.
async fn list(req: HttpRequest, state: web::Data<State>, api: web::Data<Api>) -> HttpResponse {
    let rid = request_id(req.headers());
    let query = match web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
    {
        Ok(q) => q.into_inner(),
        Err(e) => {
            let message = format!("cannot read the query of GET /models: {e}");
            return refuse(&state, 400, message, &rid).respond();
        }
    };
    let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
        None => PAGE_DEFAULT,
        Some(Ok(n)) if (1..=PAGE_MAX).contains(&n) => n,
        Some(_) => {
            let message = format!(
                "limit must be a whole number from 1 to {PAGE_MAX}, got {}",
                quoted(query["limit"].as_bytes())
            );
            return refuse(&state, 400, message, &rid).respond();
        }
    };
    let token = query
        .get("next_page_token")
        .map(String::as_str)
        .filter(|t| !t.is_empty());
    let (models, next) = api.registry.list(token, limit);
    let mut body = serde_json::json!({ "models": models });
    if let Some(next) = next {
        body["nextPageToken"] = next.into();
    }
    json(200, body, &rid)
}

/// `GET /models/{name}`.
async fn describe(req: HttpRequest, state: web::Data<State>, api: web::Data<Api>) -> HttpResponse {
    let rid = request_id(req.headers());
    let name = model_name(&req, "/models/{name}");
    match api.registry.describe(&name) {
        Some(listed) => json(200, serde_json::json!(listed), &rid),
        None => not_loaded(&state, &name, &rid).respond(),
    }
}

/// `DELETE /models/{name}`: 200 once every worker has let it go.
async fn unload(req: HttpRequest, state: web::Data<State>, api: web::Data<Api>) -> HttpResponse {
    let started = Instant::now();
    let rid = request_id(req.headers());
    let name = model_name(&req, "/models/{name}");
    let response = if api.registry.unload(&name).await {
        json(
            200,
            serde_json::json!({ "message": format!("model {name} unloaded") }),
            &rid,
        )
    } else {
        not_loaded(&state, &name, &rid).respond()
    };
    logged("DELETE", req.path(), started, &rid, response)
}

/// `POST /models/{name}/invoke`.
async fn invoke(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<State>,
    api: web::Data<Api>,
    rules: web::Data<EdgeRules>,
) -> HttpResponse {
    let started = Instant::now();
    let rid = request_id(req.headers());
    let name = model_name(&req, "/models/{name}/invoke");
    let deadline = Instant::now() + state.config.timeout;
    let response = match api.registry.ready(&name, deadline).await {
        Ok(true) => run_on(&req, payload, &state, &rules, &rid, name).await,
        Ok(false) => not_loaded(&state, &name, &rid).closing(payload).respond(),
        Err(e) => failure(&state, &e, &rid).closing(payload).respond(),
    };
    logged("POST", req.path(), started, &rid, response)
}

/// Where a target model's files are: a folder, or a file taken for a
/// `model.tar.gz`.
fn source_of(path: &Path, target: &str, label: &str) -> Result<Source, LoadRefusal> {
    if path.is_dir() {
        Ok(Source::Folder(path.to_path_buf()))
    } else if path.is_file() {
        Ok(Source::Archive(path.to_path_buf()))
    } else {
        Err(LoadRefusal::Failed {
            status: 404,
            message: format!(
                "no model {} in the model folder of stage {label} ({TARGET_MODEL_HEADER})",
                quoted(target.as_bytes())
            ),
        })
    }
}

/// `POST /invocations` naming its model in `X-Amzn-SageMaker-Target-Model`.
async fn invocations(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<State>,
    api: web::Data<Api>,
    rules: web::Data<EdgeRules>,
) -> HttpResponse {
    let started = Instant::now();
    let rid = request_id(req.headers());
    let label = &state.stage_label;
    let target = match target_model(req.headers()) {
        Ok(Some(t)) => Ok(t.to_string()),
        Ok(None) => Err(format!(
            "stage {label} serves many models (SAGEMAKER_MULTI_MODEL=true): name the model in the {TARGET_MODEL_HEADER} header"
        )),
        Err(e) => Err(e.to_string()),
    }
    .and_then(|t| match target_problem(&t) {
        Some(problem) => Err(problem),
        None => Ok(t),
    });
    let response = match target {
        Err(message) => refuse(&state, 400, message, &rid).closing(payload).respond(),
        Ok(target) => {
            let deadline = Instant::now() + state.config.timeout;
            let path = api.model_root.join(&target);
            let url = path.to_string_lossy().into_owned();
            let loaded = api
                .registry
                .ensure(&target, &url, || source_of(&path, &target, label), deadline)
                .await;
            match loaded {
                Ok(()) => run_on(&req, payload, &state, &rules, &rid, target).await,
                Err(e) => failure(&state, &e, &rid).closing(payload).respond(),
            }
        }
    };
    logged("POST", "/invocations", started, &rid, response)
}
