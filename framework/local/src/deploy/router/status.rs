//! The router's other routes: `/ping` (200 only when every container answers 200, docs/contract.md
//! (Serial pipelines)), `/execution-parameters` (the first container's: it is the one batch transform feeds), and
//! `serve`'s answers to unknown routes and methods.

use actix_web::http::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::future::join_all;

use super::inbound;
use super::{Reach, RouterConfig};
use crate::container_client::ContainerClient;
use crate::deploy::health::PING_TIMEOUT;

pub async fn ping(config: web::Data<RouterConfig>, client: web::Data<ContainerClient>) -> HttpResponse {
    let checks = config.targets.iter().map(|target| {
        let hosted = match &target.reach {
            Reach::Hosted(endpoint) => Some(endpoint.is_ready()),
            Reach::Http { .. } => None,
        };
        let request = target
            .request(&client, Method::GET, "/ping")
            .map(|request| request.timeout(PING_TIMEOUT).send());
        async move {
            // A hosted container is healthy as its `serve` would say it is: a worker takes requests.
            match hosted {
                Some(true) => return None,
                Some(false) => return Some(format!("{} (503)", target.name)),
                None => {}
            }
            let answer = match request {
                Ok(sent) => sent.await.map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            match answer {
                Ok(response) if response.status() == StatusCode::OK => None,
                Ok(response) => Some(format!("{} ({})", target.name, response.status().as_u16())),
                Err(e) => Some(format!("{} (no answer: {e})", target.name)),
            }
        }
    });
    let unhealthy: Vec<String> = join_all(checks).await.into_iter().flatten().collect();
    if unhealthy.is_empty() {
        HttpResponse::Ok().finish()
    } else {
        let message = format!(
            "{} of {} containers did not answer GET /ping with 200: {}",
            unhealthy.len(),
            config.targets.len(),
            unhealthy.join(", ")
        );
        inbound::error(503, &config.label, &message, "-")
    }
}

pub async fn execution_parameters(
    config: web::Data<RouterConfig>,
    client: web::Data<ContainerClient>,
) -> HttpResponse {
    let first = &config.targets[0];
    if let Reach::Hosted(endpoint) = &first.reach {
        return HttpResponse::Ok()
            .insert_header((CONTENT_TYPE, "application/json"))
            .body(endpoint.execution_parameters().to_string());
    }
    let answer = async {
        let request = first
            .request(&client, Method::GET, "/execution-parameters")
            .ok()?;
        let mut response = request.send().await.ok()?;
        let body = response.body().await.ok()?;
        Some((
            response.status(),
            response.headers().get(CONTENT_TYPE).cloned(),
            body,
        ))
    };
    match answer.await {
        Some((status, content_type, body)) => {
            let mut response = HttpResponse::build(status);
            if let Some(ct) = content_type {
                response.insert_header((CONTENT_TYPE, ct));
            }
            response.body(body)
        }
        None => {
            let message = format!("{} did not answer GET /execution-parameters", first.name);
            inbound::error(503, &config.label, &message, "-")
        }
    }
}

pub async fn not_found(req: HttpRequest, config: web::Data<RouterConfig>) -> HttpResponse {
    let message = format!(
        "no route for {} {}: the endpoint serves GET /ping, POST /invocations and GET /execution-parameters",
        req.method(),
        req.path()
    );
    inbound::error(404, &config.label, &message, "-")
}

pub async fn method_not_allowed(req: HttpRequest, config: web::Data<RouterConfig>) -> HttpResponse {
    let message = format!("{} is not allowed on {}", req.method(), req.path());
    let mut response = inbound::error(405, &config.label, &message, "-");
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static("POST"));
    response
}
