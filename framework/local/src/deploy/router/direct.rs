//! `Direct` mode (a multi-container endpoint): each request goes to the one container named by
//! `X-Amzn-SageMaker-Target-Container-Hostname`, with the client's Content-Type, Accept and
//! custom attributes. A missing or unknown hostname is the client's mistake (400, naming the valid
//! ones); a container that does not answer 2xx gives SageMaker's `ModelError` (424) naming it.

use actix_web::http::header::{ACCEPT, CONTENT_TYPE};
use actix_web::{web, HttpRequest, HttpResponse};
use modelstage_runtime::serve::{model_error_body, EdgeRules, Invocation, REQUEST_ID_HEADER};

use super::hop::{self, HopRequest};
use super::inbound::{self, CUSTOM_ATTRIBUTES_HEADER};
use super::RouterConfig;
use crate::container_client::ContainerClient;

pub const TARGET_HEADER: &str = "x-amzn-sagemaker-target-container-hostname";

pub async fn invocations(
    req: HttpRequest,
    payload: web::Payload,
    config: web::Data<RouterConfig>,
    rules: web::Data<EdgeRules>,
    client: web::Data<ContainerClient>,
) -> HttpResponse {
    let headers = req.headers();
    let request_id = inbound::request_id(headers);
    let label = config.label.as_str();
    let names = || {
        config
            .targets
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let wanted = headers
        .get(TARGET_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    let target = match wanted {
        None | Some("") => {
            let message = format!(
                "this endpoint runs its containers in Direct mode: name one in the \
                 X-Amzn-SageMaker-Target-Container-Hostname header ({})",
                names()
            );
            return inbound::error(400, label, &message, &request_id);
        }
        Some(name) => match config.targets.iter().find(|t| t.name == name) {
            Some(target) => target,
            None => {
                let message = format!(
                    "X-Amzn-SageMaker-Target-Container-Hostname names '{name}', which is not a container of this \
                     endpoint; its containers are: {}",
                    names()
                );
                return inbound::error(400, label, &message, &request_id);
            }
        },
    };
    // The edge's checks come after the target's: a request for no container is refused unread.
    // Each container enforces its own payload limit; the router only bounds what it reads.
    let body = match Invocation::read(&req, payload, &rules, request_id.clone()).await {
        Ok(invocation) => invocation.body,
        Err(refused) => return refused.respond(),
    };
    let request = HopRequest {
        content_type: headers.get(CONTENT_TYPE),
        accept: headers.get(ACCEPT),
        custom_attributes: headers.get(CUSTOM_ATTRIBUTES_HEADER),
        target_model: None,
        request_id: &request_id,
        body,
    };
    let reply = match hop::send(&client, target, "/invocations", request, None).await {
        Ok(reply) => reply,
        Err(e) => {
            let (status, message) = e.answer(&target.name, config.hop_timeout);
            return inbound::error(status, label, &message, &request_id);
        }
    };
    if !reply.success() {
        log::info!("rid={request_id} {} answered {}", target.name, reply.status);
        let original = String::from_utf8_lossy(&reply.body);
        let error = model_error_body(&target.name, reply.status, &original, &request_id);
        return inbound::json_response(424, error, &request_id);
    }
    let mut response = HttpResponse::Ok();
    if let Some(ct) = reply.content_type {
        response.insert_header((CONTENT_TYPE, ct));
    }
    if let Some(attrs) = reply.custom_attributes {
        response.insert_header((CUSTOM_ATTRIBUTES_HEADER, attrs));
    }
    response.insert_header((REQUEST_ID_HEADER, request_id));
    response.body(reply.body)
}
