//! The runtime, REST as `sagemaker-runtime` speaks it: `POST /endpoints/{EndpointName}/invocations`
//! goes to the production variant the request names (`TargetVariant`) or one chosen by weight. A
//! lone stage library's variant is answered on this server's own threads, which drive its workers
//! (`deploy::hosted`); any other is forwarded to its containers over a keep-alive connection, with
//! the headers the service passes on (see `container_client`). The answer
//! carries `X-Amzn-Invoked-Production-Variant`. A container that answers an error gives 424
//! `ModelError` with its status and an excerpt of its message; an endpoint that does not exist or
//! is not in service gives 400 `ValidationError`.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::multi;
use super::state::{Api, LiveVariant, Route};
use super::store::Kind;
use super::validate::is_name;
use super::wire::{excerpt, quote, read_body, region, ApiError};
use crate::container_client::ContainerClient;

/// The request headers the service passes on to the container.
const FORWARDED_COUNT: usize = 6;
const FORWARDED: [HeaderName; FORWARDED_COUNT] = [
    CONTENT_TYPE,
    ACCEPT,
    HeaderName::from_static("x-amzn-sagemaker-custom-attributes"),
    HeaderName::from_static("x-amzn-sagemaker-target-model"),
    HeaderName::from_static("x-amzn-sagemaker-inference-id"),
    HeaderName::from_static("x-amzn-sagemaker-target-container-hostname"),
];
const CUSTOM_ATTRIBUTES: HeaderName = HeaderName::from_static("x-amzn-sagemaker-custom-attributes");
/// The model of a multi-model endpoint a request names (`TargetModel`).
const TARGET_MODEL: HeaderName = HeaderName::from_static("x-amzn-sagemaker-target-model");
/// The production variant a request names (`TargetVariant`), instead of one chosen by weight.
const TARGET_VARIANT: HeaderName = HeaderName::from_static("x-amzn-sagemaker-target-variant");
const INVOKED_VARIANT: HeaderName = HeaderName::from_static("x-amzn-invoked-production-variant");

/// The runtime's settings.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest request and response body (the service's is 6 MB).
    pub max_payload: usize,
    /// How long a container has to answer (the service's is 60 s).
    pub timeout: Duration,
    /// How long a client has to send a whole request body.
    pub body_timeout: Duration,
}

/// A keep-alive client for one worker of the server: its connections to each endpoint are
/// kept open and reused. It sends no headers of its own (the service passes on only the ones in
/// [`FORWARDED`]), and follows no redirect: a
/// container's 3xx is its answer, passed on as a `ModelError` as the service passes it
/// (following it would also send the request wherever the container points, and costs a
/// middleware on every request).
pub fn client(limits: Limits) -> ContainerClient {
    ContainerClient::new(limits.timeout)
}

/// The headers of an invocation the runtime reads, found in one pass over the request's
/// headers instead of one hashed look-up each.
struct Inbound<'r> {
    /// Those of [`FORWARDED`], in its order.
    forwarded: [Option<&'r HeaderValue>; FORWARDED_COUNT],
    variant: Option<&'r HeaderValue>,
    model: Option<&'r HeaderValue>,
}

impl<'r> Inbound<'r> {
    fn read(headers: &'r HeaderMap) -> Inbound<'r> {
        let mut inbound = Inbound {
            forwarded: [None; FORWARDED_COUNT],
            variant: None,
            model: None,
        };
        for (name, value) in headers {
            if let Some(i) = FORWARDED.iter().position(|f| f == name) {
                inbound.forwarded[i] = Some(value);
                if *name == TARGET_MODEL {
                    inbound.model = Some(value);
                }
            } else if *name == TARGET_VARIANT {
                inbound.variant = Some(value);
            }
        }
        inbound
    }
}

/// Every request but the control plane's: `POST /endpoints/{EndpointName}/invocations`, else
/// 404 `UnknownOperationException` (405 for another method).
pub async fn invoke(
    request: HttpRequest,
    payload: web::Payload,
    api: web::Data<Arc<Api>>,
    client: web::Data<ContainerClient>,
    limits: web::Data<Limits>,
) -> HttpResponse {
    let Some(name) = endpoint_name(request.path()) else {
        return ApiError::unknown_path(format!(
            "{} {} is not an operation of modelstage api: the runtime answers POST \
             /endpoints/{{EndpointName}}/invocations, the control plane POST /",
            request.method(),
            quote(request.path())
        ))
        .response();
    };
    if request.method() != Method::POST {
        return ApiError::method_not_allowed(format!(
            "{} {}: invocations are POST requests",
            request.method(),
            quote(request.path())
        ))
        .response();
    }
    let body = match read_body(&request, payload, limits.max_payload, limits.body_timeout).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    match forward(&request, body, name, api.get_ref(), &client, **limits).await {
        Ok(response) => response,
        Err(e) => e.response(),
    }
}

/// `TargetModel` names a model of a multi-model variant, and only of one; the model is fetched
/// from S3 first if that is where it is and it is not here yet.
async fn check_target_model(
    target: Option<&HeaderValue>,
    name: &str,
    api: &Arc<Api>,
    variant: &LiveVariant,
) -> Result<(), ApiError> {
    let Some(models) = &variant.multi else {
        return match target {
            None => Ok(()),
            Some(_) => Err(multi::not_multi_model(name)),
        };
    };
    let target = target
        .ok_or_else(|| multi::missing_target(name))?
        .to_str()
        .map_err(|_| ApiError::runtime_validation("X-Amzn-SageMaker-Target-Model is not visible ASCII"))?
        .to_string();
    if models.ready(&target)? {
        return Ok(());
    }
    let (models, api) = (Arc::clone(models), Arc::clone(api));
    // A download from S3: off the server's threads.
    web::block(move || models.fetch(&target, &api.artifacts))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
}

/// The `{EndpointName}` of `/endpoints/{EndpointName}/invocations`.
fn endpoint_name(path: &str) -> Option<&str> {
    path.strip_prefix("/endpoints/")?
        .strip_suffix("/invocations")
        .filter(|name| !name.is_empty() && !name.contains('/'))
}

/// Forwards one invocation. The path of a successful request looks up the endpoint in memory
/// (no database query) and allocates nothing it could reuse: the variant's address is parsed
/// once when it starts, header names are constants, and the error texts are built only for
/// errors.
async fn forward(
    request: &HttpRequest,
    body: web::Bytes,
    name: &str,
    api: &Arc<Api>,
    client: &ContainerClient,
    limits: Limits,
) -> Result<HttpResponse, ApiError> {
    let not_ready = |how: String| {
        ApiError::runtime_validation(format!(
            "Endpoint {} of account {} {how}.",
            quote(name),
            api.account
        ))
    };
    if !is_name(name) {
        return Err(not_ready("not found".into()));
    }
    let Some(live) = api.live_endpoint(name) else {
        return Err(match api.store.get(Kind::Endpoint, name)? {
            Some(d) => not_ready(format!("is not in service (it is {})", d["EndpointStatus"])),
            None => not_ready("not found".into()),
        });
    };
    let inbound = Inbound::read(request.headers());
    let target = match inbound.variant {
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| ApiError::runtime_validation("X-Amzn-SageMaker-Target-Variant is not text"))?,
        ),
        None => None,
    };
    let Some(variant) = live.variant(target) else {
        return Err(ApiError::runtime_validation(format!(
            "The variant {} is not valid for endpoint {} of account {}.",
            quote(target.unwrap_or_default()),
            quote(name),
            api.account
        )));
    };
    check_target_model(inbound.model, name, api, variant).await?;
    let log = || {
        format!(
            "arn:aws:logs:{}:{}:log-group:/aws/sagemaker/Endpoints/{name}",
            region(request.headers()),
            api.account
        )
    };
    let unreachable = |e: String| {
        let log = log();
        ApiError::model_error(
            format!("The model did not answer: {e}. See the log of modelstage api ({log})."),
            vec![("LogStreamArn", json!(log))],
        )
    };
    let answer = match &variant.route {
        Route::Hosted(model) => {
            // The stage's own timeout (`SAGEMAKER_MODEL_SERVER_TIMEOUT`) answers first when it is
            // the shorter; this is the API's, as its client applies it to a forwarded request.
            let response = tokio::time::timeout(limits.timeout, model.invoke(request, body))
                .await
                .map_err(|_| {
                    unreachable(format!(
                        "no answer within {} s (--invocation-timeout)",
                        limits.timeout.as_secs()
                    ))
                })?;
            let mut answer = Answer::head(response.status(), response.headers());
            answer.payload = actix_web::body::to_bytes(response.into_body())
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            answer
        }
        Route::Forward(forward) => {
            let mut outbound = client.request(Method::POST, forward.invocations.clone());
            for (header, value) in FORWARDED.iter().zip(inbound.forwarded) {
                if let Some(value) = value {
                    outbound = outbound.insert_header((header.clone(), value.clone()));
                }
            }
            let mut answer = outbound
                .send_body(body)
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            let mut head = Answer::head(answer.status(), answer.headers());
            head.payload = answer
                .body()
                .limit(limits.max_payload)
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            head
        }
    };
    if answer.payload.len() > limits.max_payload {
        return Err(unreachable(format!(
            "its answer is larger than the {} bytes an answer may have",
            limits.max_payload
        )));
    }
    let Answer {
        status,
        content_type,
        custom_attributes,
        payload,
    } = answer;
    if !status.is_success() {
        let log = log();
        let original = String::from_utf8_lossy(&payload);
        let side = if status.is_client_error() {
            "client"
        } else {
            "server"
        };
        return Err(ApiError::model_error(
            format!(
                "Received {side} error ({}) from the model with message {}. See {log} for more information.",
                status.as_u16(),
                quote(&original)
            ),
            vec![
                ("OriginalStatusCode", json!(status.as_u16())),
                ("OriginalMessage", json!(excerpt(&original))),
                ("LogStreamArn", json!(log)),
            ],
        ));
    }
    let mut response = HttpResponse::Ok();
    response.insert_header((INVOKED_VARIANT, variant.name_header.clone()));
    if let Some(value) = content_type {
        response.insert_header((CONTENT_TYPE, value));
    }
    if let Some(value) = custom_attributes {
        response.insert_header((CUSTOM_ATTRIBUTES, value));
    }
    Ok(response.body(payload))
}

/// What the model answered, hosted here or forwarded: the status, the headers the service passes
/// back, and the body.
struct Answer {
    status: StatusCode,
    content_type: Option<HeaderValue>,
    custom_attributes: Option<HeaderValue>,
    payload: web::Bytes,
}

impl Answer {
    /// The answer's head; its body comes next.
    fn head(status: StatusCode, headers: &HeaderMap) -> Answer {
        Answer {
            status,
            content_type: headers.get(CONTENT_TYPE).cloned(),
            custom_attributes: headers.get(CUSTOM_ATTRIBUTES).cloned(),
            payload: web::Bytes::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::endpoint_name;

    #[test]
    fn the_endpoint_name_comes_from_the_path() {
        assert_eq!(endpoint_name("/endpoints/abalone/invocations"), Some("abalone"));
        for other in [
            "/endpoints//invocations",
            "/endpoints/a/b/invocations",
            "/endpoints/a",
            "/ping",
        ] {
            assert_eq!(endpoint_name(other), None, "{other}");
        }
    }
}
