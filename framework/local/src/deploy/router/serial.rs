//! A serial inference pipeline, chained as SageMaker chains it (docs/contract.md (Serial pipelines)):
//!
//! - the client's Content-Type goes to the first container; each container's response body and
//!   Content-Type (verbatim, parameters included) become the next container's request;
//! - the containers before the last get no Accept, so their own default applies; the client's
//!   Accept goes to the last;
//! - custom attributes go from the client to the first container, from each response to the next
//!   container, and from the last response back to the client (as the fused server passes them);
//! - the first container that does not answer 2xx ends the request with SageMaker's `ModelError`
//!   (424) naming it, with its status and body: `model_error_body`, the same bytes a fused server
//!   answers with;
//! - a response bigger than 5 MB cannot travel to the next container.

use actix_web::http::header::{ACCEPT, CONTENT_TYPE};
use actix_web::{web, HttpRequest, HttpResponse};
use modelstage_runtime::serve::{model_error_body, Invocation, REQUEST_ID_HEADER};

use super::hop::{self, HopError, HopRequest};
use super::inbound::{self, CUSTOM_ATTRIBUTES_HEADER};
use super::RouterConfig;
use crate::container_client::ContainerClient;

use modelstage_runtime::serve::{hop_too_large_message, HOP_LIMIT_BYTES as HOP_LIMIT};

pub async fn invocations(
    req: HttpRequest,
    invocation: Invocation,
    config: web::Data<RouterConfig>,
    client: web::Data<ContainerClient>,
) -> HttpResponse {
    let headers = req.headers();
    let Invocation {
        request_id, mut body, ..
    } = invocation;
    let label = config.label.as_str();
    let accept = headers.get(ACCEPT);
    let mut content_type = headers.get(CONTENT_TYPE).cloned();
    let mut custom_attributes = headers.get(CUSTOM_ATTRIBUTES_HEADER).cloned();
    let last = config.targets.len() - 1;
    for (i, target) in config.targets.iter().enumerate() {
        let request = HopRequest {
            content_type: content_type.as_ref(),
            accept: if i == last { accept } else { None },
            custom_attributes: custom_attributes.as_ref(),
            target_model: None,
            request_id: &request_id,
            body,
        };
        let limit = (i < last).then_some(HOP_LIMIT);
        let reply = match hop::send(&client, target, "/invocations", request, limit).await {
            Ok(reply) => reply,
            Err(HopError::TooLarge { bytes }) => {
                let next = &config.targets[i + 1].name;
                let size = match bytes {
                    Some(n) => format!("{n} bytes"),
                    None => format!("more than {HOP_LIMIT} bytes"),
                };
                let message = hop_too_large_message(&target.name, next, &size);
                log::warn!("rid={request_id} {message}");
                return inbound::error(413, label, &message, &request_id);
            }
            Err(HopError::TimedOut) => {
                let message = format!(
                    "{} did not answer within {} s",
                    target.name,
                    config.hop_timeout.as_secs()
                );
                log::warn!("rid={request_id} {message}");
                return inbound::error(504, label, &message, &request_id);
            }
            Err(HopError::Unreachable(why)) => {
                let message = format!("{} could not be reached: {why}", target.name);
                log::warn!("rid={request_id} {message}");
                return inbound::error(503, label, &message, &request_id);
            }
        };
        if !reply.success() {
            log::info!("rid={request_id} {} answered {}", target.name, reply.status);
            let original = String::from_utf8_lossy(&reply.body);
            let error = model_error_body(&target.name, reply.status, &original, &request_id);
            return inbound::json_response(424, error, &request_id);
        }
        body = reply.body;
        content_type = reply.content_type;
        custom_attributes = reply.custom_attributes;
    }
    let mut response = HttpResponse::Ok();
    if let Some(ct) = content_type {
        response.insert_header((CONTENT_TYPE, ct));
    }
    if let Some(attrs) = custom_attributes {
        response.insert_header((CUSTOM_ATTRIBUTES_HEADER, attrs));
    }
    response.insert_header((REQUEST_ID_HEADER, request_id));
    response.body(body)
}
