//! One hop: a `POST /invocations` to one container, with exactly the headers SageMaker sends it
//! (docs/contract.md (Serving, Serial pipelines)) and our request id, and its answer read in full;
//! over the container's Unix socket when it has one, else over TCP ([`Target::request`]), or
//! straight to the workers of a container the router hosts ([`Reach::Hosted`]), which answer as
//! its `modelstage serve` would.

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::http::Method;
use actix_web::web::Bytes;
use awc::error::{PayloadError, SendRequestError};
use modelstage_runtime::serve::hosted::Hosted;
use modelstage_runtime::serve::REQUEST_ID_HEADER;

use super::multi::TARGET_MODEL_HEADER;
use super::{Reach, Target};
use crate::container_client::ContainerClient;

use super::inbound::CUSTOM_ATTRIBUTES_HEADER;
use modelstage_contract::payload::HARD_LIMIT_BYTES as HARD_LIMIT;

/// What a container is sent.
pub struct HopRequest<'a> {
    pub content_type: Option<&'a HeaderValue>,
    /// Only the last container of a pipeline gets the client's Accept; the others get none, so
    /// their own default (`SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`) applies.
    pub accept: Option<&'a HeaderValue>,
    pub custom_attributes: Option<&'a HeaderValue>,
    /// `X-Amzn-SageMaker-Target-Model`: only a multi-model container is sent one, as SageMaker
    /// sends it with each invocation of such an endpoint.
    pub target_model: Option<&'a HeaderValue>,
    pub request_id: &'a str,
    pub body: Bytes,
}

/// What a container answered.
pub struct HopReply {
    pub status: u16,
    pub content_type: Option<HeaderValue>,
    pub custom_attributes: Option<HeaderValue>,
    pub body: Bytes,
}

impl HopReply {
    pub fn success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Why a hop gave no answer.
pub enum HopError {
    /// The container could not be reached or broke the connection.
    Unreachable(String),
    /// It did not answer within the hop timeout.
    TimedOut,
    /// A successful answer larger than `limit` (its size when known).
    TooLarge { bytes: Option<usize> },
}

impl HopError {
    /// The status and message the router answers with when `container` gave no answer within
    /// `timeout`: 504, 503, or 500 for an answer larger than the router reads.
    pub fn answer(self, container: &str, timeout: std::time::Duration) -> (u16, String) {
        match self {
            HopError::TimedOut => (
                504,
                format!("{container} did not answer within {} s", timeout.as_secs()),
            ),
            HopError::Unreachable(why) => (503, format!("{container} could not be reached: {why}")),
            HopError::TooLarge { .. } => (
                500,
                format!("the answer of {container} is larger than the router reads"),
            ),
        }
    }
}

/// POSTs `request` to `path` on `target`. A successful answer larger than `success_limit` bytes is
/// refused (the inter-container limit of a pipeline); without one, answers up to [`HARD_LIMIT`]
/// are read.
pub async fn send(
    client: &ContainerClient,
    target: &Target,
    path: &str,
    request: HopRequest<'_>,
    success_limit: Option<usize>,
) -> Result<HopReply, HopError> {
    if let Reach::Hosted(endpoint) = &target.reach {
        return hosted(endpoint, request, success_limit).await;
    }
    let mut outgoing = target
        .request(client, Method::POST, path)
        .map_err(HopError::Unreachable)?
        .insert_header((REQUEST_ID_HEADER, request.request_id));
    if let Some(ct) = request.content_type {
        outgoing = outgoing.insert_header((CONTENT_TYPE, ct.clone()));
    }
    if let Some(accept) = request.accept {
        outgoing = outgoing.insert_header((ACCEPT, accept.clone()));
    }
    if let Some(attrs) = request.custom_attributes {
        outgoing = outgoing.insert_header((CUSTOM_ATTRIBUTES_HEADER, attrs.clone()));
    }
    if let Some(target) = request.target_model {
        outgoing = outgoing.insert_header((TARGET_MODEL_HEADER, target.clone()));
    }
    let mut response = outgoing.send_body(request.body).await.map_err(|e| match e {
        SendRequestError::Timeout => HopError::TimedOut,
        other => HopError::Unreachable(other.to_string()),
    })?;
    let status = response.status().as_u16();
    let success = (200..300).contains(&status);
    let headers = response.headers();
    let content_type = headers.get(CONTENT_TYPE).cloned();
    let custom_attributes = headers.get(CUSTOM_ATTRIBUTES_HEADER).cloned();
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let limit = match success_limit {
        Some(limit) if success => {
            // Refuse before reading when the container says how much is coming.
            if declared.is_some_and(|len| len > limit) {
                return Err(HopError::TooLarge { bytes: declared });
            }
            limit
        }
        _ => HARD_LIMIT,
    };
    let body = response.body().limit(limit).await.map_err(|e| match e {
        PayloadError::Overflow => HopError::TooLarge { bytes: declared },
        other => HopError::Unreachable(format!("the answer broke off: {other}")),
    })?;
    Ok(HopReply {
        status,
        content_type,
        custom_attributes,
        body,
    })
}

/// [`send`] to a container the router hosts: the same head, given to its workers on this thread.
async fn hosted(
    endpoint: &Hosted,
    request: HopRequest<'_>,
    success_limit: Option<usize>,
) -> Result<HopReply, HopError> {
    let mut headers = HeaderMap::new();
    if let Ok(id) = HeaderValue::from_str(request.request_id) {
        headers.insert(HeaderName::from_static(REQUEST_ID_HEADER), id);
    }
    let given = [
        (CONTENT_TYPE, request.content_type),
        (ACCEPT, request.accept),
        (
            HeaderName::from_static(CUSTOM_ATTRIBUTES_HEADER),
            request.custom_attributes,
        ),
        (HeaderName::from_static(TARGET_MODEL_HEADER), request.target_model),
    ];
    for (name, value) in given {
        if let Some(value) = value {
            headers.insert(name, value.clone());
        }
    }
    let response = endpoint.invoke(&headers, request.body).await;
    let status = response.status().as_u16();
    let content_type = response.headers().get(CONTENT_TYPE).cloned();
    let custom_attributes = response.headers().get(CUSTOM_ATTRIBUTES_HEADER).cloned();
    // The answer is in memory already: its size is known before anything is copied.
    let body = actix_web::body::to_bytes(response.into_body())
        .await
        .map_err(|e| HopError::Unreachable(format!("the answer broke off: {e}")))?;
    if (200..300).contains(&status) && success_limit.is_some_and(|limit| body.len() > limit) {
        return Err(HopError::TooLarge {
            bytes: Some(body.len()),
        });
    }
    Ok(HopReply {
        status,
        content_type,
        custom_attributes,
        body,
    })
}
