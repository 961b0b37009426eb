//! [`Invocation`]: a `POST /invocations` as the edge hands it on, with the
//! request id, the head resolved and the whole body read under the
//! endpoint's bounds; or the [`EdgeError`] that refuses it, which closes
//! the connection when the body was not read in full.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use actix_web::dev::Payload;
use actix_web::http::header::HeaderMap;
use actix_web::web::{self, Bytes};
use actix_web::{FromRequest, HttpRequest};

use super::{request_id, target_model, text_header, EdgeError, HeaderError};
use crate::loader::RequestMeta;
use modelstage_contract::payload;

use crate::serve::config::EdgeLimits;
use crate::serve::{body, connections};

/// How an endpoint's edge treats an invocation: shared by every HTTP
/// thread as app data (`web::Data<EdgeRules>`).
#[derive(Debug)]
pub struct EdgeRules {
    /// How errors name the endpoint.
    pub label: String,
    /// The Accept a request that names none (or `*/*`) gets; `None` leaves
    /// the head as the client sent it (a router passes it on as it is, so
    /// each container applies its own defaults).
    pub default_accept: Option<String>,
    /// `SAGEMAKER_MAX_PAYLOAD_IN_MB` (the contract's `payload` rule reads it).
    /// Atomic: a router learns it once its first container is up.
    max_payload_in_mb: AtomicU64,
    /// The client bounds (`MODELSTAGE_*`).
    pub limits: EdgeLimits,
    /// Open connections past which `/invocations` is refused (the rest are
    /// kept for `/ping`, see `connections`).
    pub invocation_connections: usize,
}

impl EdgeRules {
    /// The rules of an endpoint named `label` (see the fields).
    pub fn new(
        label: String,
        default_accept: Option<String>,
        max_payload_in_mb: u64,
        limits: EdgeLimits,
        invocation_connections: usize,
    ) -> EdgeRules {
        EdgeRules {
            label,
            default_accept,
            max_payload_in_mb: AtomicU64::new(max_payload_in_mb),
            limits,
            invocation_connections,
        }
    }

    /// `SAGEMAKER_MAX_PAYLOAD_IN_MB` as known now.
    pub fn max_payload_in_mb(&self) -> u64 {
        self.max_payload_in_mb.load(Ordering::Relaxed)
    }

    /// Sets the payload limit (a router, once it learns its first container's).
    pub fn set_max_payload_in_mb(&self, mb: u64) {
        self.max_payload_in_mb.store(mb, Ordering::Relaxed);
    }

    /// The most bytes a body may have, and what the 413 says past it.
    fn body_limit(&self) -> (usize, String) {
        let mb = self.max_payload_in_mb();
        (payload::limit_bytes(mb), payload::too_large_message(mb))
    }
}

/// The request's metadata as the hooks get it (the loader's form, so it
/// travels to the stage unchanged), or the error naming a header that is
/// not text: the client's Content-Type, else `application/json` (as the
/// legacy toolkit assumes); the client's Accept, else (also for `*/*`) the
/// endpoint's default; the custom attributes and the target model.
fn resolve(headers: &HeaderMap, request_id: &str, default_accept: &str) -> Result<RequestMeta, HeaderError> {
    let content_type = text_header(headers, "Content-Type")?
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .unwrap_or("application/json")
        .to_string();
    let accept = match text_header(headers, "Accept")?.map(str::trim) {
        None | Some("") | Some("*/*") => default_accept.to_string(),
        Some(a) => a.to_string(),
    };
    let custom_attributes = text_header(headers, "X-Amzn-SageMaker-Custom-Attributes")?.map(str::to_string);
    let target_model = target_model(headers)?.map(str::to_string);
    Ok(RequestMeta {
        request_id: request_id.to_string(),
        content_type,
        accept,
        custom_attributes,
        target_model,
    })
}

/// The metadata under `rules`: resolved with the endpoint's default Accept, or `None` where the
/// rules leave the head as sent (a router).
fn resolve_under(
    headers: &HeaderMap,
    request_id: &str,
    rules: &EdgeRules,
) -> Result<Option<RequestMeta>, HeaderError> {
    rules
        .default_accept
        .as_deref()
        .map(|default_accept| resolve(headers, request_id, default_accept))
        .transpose()
}

/// An invocation the edge accepted.
#[derive(Debug)]
pub struct Invocation {
    /// When the request arrived: its deadline counts from here, the time
    /// its body took included.
    pub arrived: Instant,
    /// The correlation id: the one a router sent (if safe to log), else a new one.
    pub request_id: String,
    /// The resolved metadata; `None` where the rules leave the head as
    /// sent (a router).
    pub meta: Option<RequestMeta>,
    /// The whole body, read within the payload limit.
    pub body: Bytes,
}

impl Invocation {
    /// Checks and reads the invocation `req`, whose id is `request_id` (see
    /// [`request_id`]): the connection budget, the head, then the body
    /// within its size and time limits. A refusal closes the connection,
    /// unread body and all. (The extractor does this for handlers with
    /// nothing to check first.)
    pub async fn read(
        req: &HttpRequest,
        payload: web::Payload,
        rules: &EdgeRules,
        request_id: String,
    ) -> Result<Invocation, EdgeError> {
        Self::read_as(req, payload, rules, request_id, Instant::now()).await
    }

    /// An invocation whose body the host has already read (an endpoint hosted in another
    /// server, see `hosted`), with the head `headers`: the head resolved and the body held to the
    /// endpoint's payload limit, as [`Invocation::read`] does. (The host bounds its connections and the time a body
    /// takes.) The refusal is boxed: it is the rare case.
    pub fn of_body(
        headers: &HeaderMap,
        body: Bytes,
        rules: &EdgeRules,
        request_id: String,
    ) -> Result<Invocation, Box<EdgeError>> {
        let refuse = |status: u16, message: String| {
            Box::new(EdgeError::new(status, rules.label.as_str(), message).request_id(request_id.as_str()))
        };
        let meta = match resolve_under(headers, &request_id, rules) {
            Ok(meta) => meta,
            Err(e) => return Err(refuse(e.status(), e.to_string())),
        };
        let (limit, too_large) = rules.body_limit();
        if body.len() > limit {
            return Err(refuse(413, too_large));
        }
        Ok(Invocation {
            arrived: Instant::now(),
            request_id,
            meta,
            body,
        })
    }

    async fn read_as(
        req: &HttpRequest,
        mut payload: web::Payload,
        rules: &EdgeRules,
        request_id: String,
        arrived: Instant,
    ) -> Result<Invocation, EdgeError> {
        let refuse = |status: u16, message: String| {
            EdgeError::new(status, rules.label.as_str(), message).request_id(request_id.as_str())
        };
        // Past the connections kept for `/ping`, refuse before reading anything.
        let open = connections::open();
        if open > rules.invocation_connections {
            let message = format!(
                "the endpoint holds {open} connections, more than the {} it serves /invocations on (MODELSTAGE_MAX_CONNECTIONS); retry shortly",
                rules.invocation_connections
            );
            return Err(refuse(503, message).closing(payload));
        }
        let meta = match resolve_under(req.headers(), &request_id, rules) {
            Ok(meta) => meta,
            Err(e) => return Err(refuse(e.status(), e.to_string()).closing(payload)),
        };
        let (limit, too_large) = rules.body_limit();
        let body_timeout = rules.limits.body_timeout;
        match body::read(&mut payload, req.headers(), limit, body_timeout).await {
            Ok(body) => Ok(Invocation {
                arrived,
                request_id,
                meta,
                body,
            }),
            Err(e) => Err(refuse(e.status(), e.message(&too_large, body_timeout)).closing(payload)),
        }
    }
}

impl FromRequest for Invocation {
    type Error = EdgeError;
    type Future = Pin<Box<dyn Future<Output = Result<Invocation, EdgeError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let arrived = Instant::now();
        let req = req.clone();
        let payload = <web::Payload as FromRequest>::from_request(&req, payload).into_inner();
        Box::pin(async move {
            let request_id = request_id(req.headers());
            let Some(rules) = req.app_data::<web::Data<EdgeRules>>() else {
                return Err(
                    EdgeError::new(500, "endpoint", "the endpoint has no edge rules").request_id(request_id)
                );
            };
            let rules = rules.clone();
            let payload = payload.map_err(|e| {
                EdgeError::new(
                    400,
                    rules.label.as_str(),
                    format!("could not read the request body: {e}"),
                )
                .request_id(request_id.as_str())
            })?;
            Invocation::read_as(&req, payload, &rules, request_id, arrived).await
        })
    }
}
