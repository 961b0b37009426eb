//! The protocol's routes: `GET /v2`, `/v2/health/live`, `/v2/health/ready`,
//! `GET /v2/models/{name}[/versions/{v}]`, `.../ready` and `POST .../infer`.
//! Errors are the protocol's `{"error": "..."}`.

use actix_web::http::header::CONTENT_TYPE;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use modelstage_sdk::excerpt::quoted;

use super::infer;
use super::model::OipModel;
use crate::serve::http::State;

/// Registers the routes under `/v2`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/v2")
            .route("", web::get().to(server_metadata))
            .route("/health/live", web::get().to(live))
            .route("/health/ready", web::get().to(ready))
            .route("/models/{name}", web::get().to(model_metadata))
            .route("/models/{name}/versions/{version}", web::get().to(model_metadata))
            .route("/models/{name}/ready", web::get().to(model_ready))
            .route(
                "/models/{name}/versions/{version}/ready",
                web::get().to(model_ready),
            )
            .route("/models/{name}/infer", web::post().to(infer::infer))
            .route(
                "/models/{name}/versions/{version}/infer",
                web::post().to(infer::infer),
            )
            .default_service(web::route().to(unknown_route)),
    );
}

/// A JSON response.
pub(super) fn json(status: u16, body: String) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .insert_header((CONTENT_TYPE, "application/json"))
        .body(body)
}

/// The protocol's error body.
pub(super) fn error(status: u16, message: &str) -> HttpResponse {
    json(status, serde_json::json!({ "error": message }).to_string())
}

/// The model a path names, or the 404 message that says which one this
/// server serves.
pub(super) fn find_model<'a>(req: &HttpRequest, model: &'a OipModel) -> Result<&'a OipModel, String> {
    let name = req.match_info().get("name").unwrap_or_default();
    let version = req.match_info().get("version");
    if model.matches(name, version) {
        return Ok(model);
    }
    let what = match version {
        Some(v) => format!(
            "model {} version {}",
            quoted(name.as_bytes()),
            quoted(v.as_bytes())
        ),
        None => format!("model {}", quoted(name.as_bytes())),
    };
    Err(format!(
        "unknown {what}: this server serves model {} version {}",
        quoted(model.name.as_bytes()),
        quoted(model.version.as_bytes())
    ))
}

async fn server_metadata() -> HttpResponse {
    json(
        200,
        serde_json::json!({
            "name": "modelstage",
            "version": env!("CARGO_PKG_VERSION"),
            "extensions": ["binary_tensor_data"],
        })
        .to_string(),
    )
}

/// Live while the server answers at all.
async fn live() -> HttpResponse {
    json(200, r#"{"live":true}"#.to_string())
}

/// Ready as `/ping` is: a worker has loaded the model and one is live or
/// being replaced. Not ready is a 4xx, as the protocol says (400, as Triton).
async fn ready(state: web::Data<State>) -> HttpResponse {
    let ready = state.pool.is_ready();
    json(
        if ready { 200 } else { 400 },
        serde_json::json!({ "ready": ready }).to_string(),
    )
}

async fn model_metadata(req: HttpRequest, model: web::Data<OipModel>) -> HttpResponse {
    match find_model(&req, &model) {
        Ok(model) => json(200, model.metadata_json()),
        Err(message) => error(404, &message),
    }
}

async fn model_ready(req: HttpRequest, model: web::Data<OipModel>, state: web::Data<State>) -> HttpResponse {
    let model = match find_model(&req, &model) {
        Ok(model) => model,
        Err(message) => return error(404, &message),
    };
    let ready = state.pool.is_ready();
    json(
        if ready { 200 } else { 400 },
        serde_json::json!({ "name": model.name, "ready": ready }).to_string(),
    )
}

async fn unknown_route(req: HttpRequest) -> HttpResponse {
    error(
        404,
        &format!(
            "no route for {} {}: the Open Inference Protocol routes are GET /v2, GET /v2/health/live, \
             GET /v2/health/ready, GET /v2/models/{{name}}[/versions/{{version}}][/ready] and POST \
             /v2/models/{{name}}[/versions/{{version}}]/infer",
            req.method(),
            quoted(req.path().as_bytes())
        ),
    )
}
