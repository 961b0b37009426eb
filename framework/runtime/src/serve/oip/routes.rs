//! The protocol's routes: `GET /v2`, `/v2/health/live`, `/v2/health/ready`,
//! `GET /v2/models/{name}[/versions/{v}]`, `.../ready` and `POST .../infer`.
//! Errors are the protocol's `{"error": "..."}`; a refused request is a
//! [`OipRefusal`], which knows its status.
//!
//! The model paths are split here by hand rather than by six patterns with
//! placeholders: actix-web matches those with regular expressions, one after
//! the other, which measured as the largest cost of an inference request in
//! the server.

use actix_web::http::header::CONTENT_TYPE;
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse, ResponseError};

use super::infer;
use super::model::OipModel;
use super::refusal::{Asked, OipRefusal};
use crate::serve::http::State;
use crate::serve::metrics::Route;
use crate::serve::mme::routes::Api;
use crate::serve::mme::Registry;

/// Registers the routes under `/v2`.
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/v2")
            .route("", web::get().to(server_metadata))
            .route("/health/live", web::get().to(live))
            .route("/health/ready", web::get().to(ready))
            .default_service(web::to(models)),
    );
}

/// What a path under `/v2/models/` asks for.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct ModelPath {
    pub name: String,
    pub version: Option<String>,
    pub action: Action,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    Metadata,
    Ready,
    Infer,
}

impl Action {
    /// The route pattern, for the metrics' `route` label.
    fn pattern(self, versioned: bool) -> &'static str {
        match (self, versioned) {
            (Action::Metadata, false) => "/v2/models/{name}",
            (Action::Metadata, true) => "/v2/models/{name}/versions/{version}",
            (Action::Ready, false) => "/v2/models/{name}/ready",
            (Action::Ready, true) => "/v2/models/{name}/versions/{version}/ready",
            (Action::Infer, false) => "/v2/models/{name}/infer",
            (Action::Infer, true) => "/v2/models/{name}/versions/{version}/infer",
        }
    }

    fn method(self) -> Method {
        match self {
            Action::Infer => Method::POST,
            _ => Method::GET,
        }
    }

    /// The `Allow` header of a 405.
    fn allow(self) -> &'static str {
        match self {
            Action::Infer => "POST",
            _ => "GET",
        }
    }
}

/// Splits `/v2/models/{name}[/versions/{v}][/ready|/infer]`; the name and
/// version are percent-decoded, as clients quote them.
pub(super) fn parse_model_path(path: &str) -> Option<ModelPath> {
    let rest = path.strip_prefix("/v2/models/")?;
    let segments: Vec<&str> = rest.split('/').collect();
    let (name, version, action) = match segments.as_slice() {
        [name] => (name, None, Action::Metadata),
        [name, "ready"] => (name, None, Action::Ready),
        [name, "infer"] => (name, None, Action::Infer),
        [name, "versions", v] => (name, Some(v), Action::Metadata),
        [name, "versions", v, "ready"] => (name, Some(v), Action::Ready),
        [name, "versions", v, "infer"] => (name, Some(v), Action::Infer),
        _ => return None,
    };
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .ok()
            .map(|d| d.into_owned())
    };
    let name = decode(name).filter(|n| !n.is_empty())?;
    let version = match version {
        Some(v) => Some(decode(v).filter(|v| !v.is_empty())?),
        None => None,
    };
    Some(ModelPath {
        name,
        version,
        action,
    })
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

/// A model a path names that this endpoint serves.
pub(super) struct Found<'a> {
    /// Its name (a multi-model endpoint's models share the stage's tensors
    /// and version).
    pub name: &'a str,
    pub model: &'a OipModel,
    /// On a multi-model endpoint, the loaded model to run requests on.
    pub loaded: Option<&'a str>,
}

/// The model a path names (on a multi-model endpoint, one of its loaded
/// models), or the 404 that says which this server serves.
pub(super) fn find_model<'a>(
    path: &'a ModelPath,
    model: &'a OipModel,
    many: Option<&Registry>,
) -> Result<Found<'a>, OipRefusal> {
    let version = path.version.as_deref();
    // Copied only for a refusal: this runs on every request.
    let asked = || Asked {
        name: path.name.clone(),
        version: path.version.clone(),
    };
    let Some(registry) = many else {
        if model.matches(&path.name, version) {
            return Ok(Found {
                name: &model.name,
                model,
                loaded: None,
            });
        }
        return Err(OipRefusal::UnknownModel {
            asked: asked(),
            served: model.name.clone(),
            version: model.version.clone(),
        });
    };
    if version.is_some_and(|v| v != model.version) {
        return Err(OipRefusal::UnknownVersion {
            asked: asked(),
            version: model.version.clone(),
        });
    }
    if registry.describe(&path.name).is_none() {
        return Err(OipRefusal::NotLoaded { asked: asked() });
    }
    Ok(Found {
        name: &path.name,
        model,
        loaded: Some(&path.name),
    })
}

/// A multi-model endpoint's table of models, `None` on other endpoints.
pub(super) fn registry(req: &HttpRequest) -> Option<&Registry> {
    req.app_data::<web::Data<Api>>().map(|api| api.registry.as_ref())
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

/// Every path under `/v2` but the three above.
async fn models(
    req: HttpRequest,
    payload: web::Payload,
    model: web::Data<OipModel>,
    state: web::Data<State>,
) -> HttpResponse {
    let Some(path) = parse_model_path(req.path()) else {
        return unknown_route(&req);
    };
    req.extensions_mut()
        .insert(Route(path.action.pattern(path.version.is_some())));
    if req.method() != path.action.method() {
        return OipRefusal::MethodNotAllowed {
            method: req.method().clone(),
            path: req.path().to_string(),
            allow: path.action.allow(),
        }
        .error_response();
    }
    match path.action {
        Action::Infer => infer::infer(&req, &path, payload, &model, &state).await,
        Action::Metadata => match find_model(&path, &model, registry(&req)) {
            Ok(found) => json(200, found.model.metadata_json(found.name)),
            Err(refusal) => refusal.error_response(),
        },
        Action::Ready => match find_model(&path, &model, registry(&req)) {
            Ok(found) => {
                let ready = state.pool.is_ready();
                json(
                    if ready { 200 } else { 400 },
                    serde_json::json!({ "name": found.name, "ready": ready }).to_string(),
                )
            }
            Err(refusal) => refusal.error_response(),
        },
    }
}

fn unknown_route(req: &HttpRequest) -> HttpResponse {
    OipRefusal::NoRoute {
        method: req.method().clone(),
        path: req.path().to_string(),
    }
    .error_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(path: &str) -> Option<(String, Option<String>, Action)> {
        parse_model_path(path).map(|p| (p.name, p.version, p.action))
    }

    #[test]
    fn model_paths() {
        assert_eq!(parsed("/v2/models/m"), Some(("m".into(), None, Action::Metadata)));
        assert_eq!(
            parsed("/v2/models/m/ready"),
            Some(("m".into(), None, Action::Ready))
        );
        assert_eq!(
            parsed("/v2/models/m/infer"),
            Some(("m".into(), None, Action::Infer))
        );
        assert_eq!(
            parsed("/v2/models/a%2Bb/versions/0.1.0/infer"),
            Some(("a+b".into(), Some("0.1.0".into()), Action::Infer))
        );
        assert_eq!(
            parsed("/v2/models/m/versions/1"),
            Some(("m".into(), Some("1".into()), Action::Metadata))
        );
        assert_eq!(
            parsed("/v2/models/m/versions/1/ready"),
            Some(("m".into(), Some("1".into()), Action::Ready))
        );
        for bad in [
            "/v2/models/",
            "/v2/models/m/other",
            "/v2/models/m/versions",
            "/v2/models//infer",
            "/v2/x",
            "/v2/models/%ff",
        ] {
            assert_eq!(parsed(bad), None, "{bad}");
        }
    }
}
