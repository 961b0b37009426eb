//! Reading a request body under the endpoint's bounds: a size limit
//! (`SAGEMAKER_MAX_PAYLOAD_IN_MB`) and a time limit for the whole body
//! (`MODELSTAGE_BODY_TIMEOUT_SECS`), so a client that sends too much or too
//! slowly costs its own connection only. `modelstage serve` and the router of
//! `deploy` read bodies alike.
//!
//! An answer given before the body was read in full closes the connection
//! ([`closing`]): actix-web would otherwise go on reading a chunked body for
//! as long as the client sends it.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::error::PayloadError;
use actix_web::http::header::{HeaderMap, CONTENT_LENGTH};
use actix_web::http::ConnectionType;
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::HttpResponse;
use futures_core::Stream;

/// Why a body was not read.
#[derive(Debug)]
pub enum BodyError {
    /// Larger than the limit (declared in `Content-Length`, or counted).
    TooLarge,
    /// Not received in full within the time limit.
    TimedOut,
    /// The connection broke or the chunked encoding was malformed.
    Broken(PayloadError),
}

impl BodyError {
    /// The status of the answer: 413, 408 or 400.
    pub fn status(&self) -> u16 {
        match self {
            BodyError::TooLarge => 413,
            BodyError::TimedOut => 408,
            BodyError::Broken(_) => 400,
        }
    }

    /// The message of the answer; `too_large` says which limit a body
    /// over it passed.
    pub fn message(&self, too_large: &str, body_timeout: Duration) -> String {
        match self {
            BodyError::TooLarge => too_large.to_string(),
            BodyError::TimedOut => format!(
                "the request body was not received within {} s (MODELSTAGE_BODY_TIMEOUT_SECS)",
                body_timeout.as_secs()
            ),
            BodyError::Broken(e) => format!("could not read the request body: {e}"),
        }
    }
}

/// The length a request declares, if it declares a usable one.
pub fn declared_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Reads the whole body of a request: at most `limit` bytes, within
/// `timeout`. A declared length over the limit fails before anything is
/// read; a body of one chunk is not copied, and one of several is collected
/// in a buffer of its declared length.
pub async fn read(
    payload: &mut web::Payload,
    headers: &HeaderMap,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, BodyError> {
    let declared = declared_length(headers);
    if declared.is_some_and(|len| len > limit) {
        return Err(BodyError::TooLarge);
    }
    let collect = async {
        // Most bodies arrive in one chunk: that chunk is the body, uncopied.
        let mut first: Option<Bytes> = None;
        let mut body = BytesMut::new();
        let mut len = 0;
        while let Some(chunk) = poll_fn(|cx| Pin::new(&mut *payload).poll_next(cx)).await {
            let chunk = chunk.map_err(BodyError::Broken)?;
            len += chunk.len();
            if len > limit {
                return Err(BodyError::TooLarge);
            }
            match first.take() {
                None if body.is_empty() => first = Some(chunk),
                earlier => {
                    if let Some(earlier) = earlier {
                        // Allocated once for a declared length, never copied as it grows.
                        body.reserve(declared.unwrap_or(len).max(len));
                        body.extend_from_slice(&earlier);
                    }
                    body.extend_from_slice(&chunk);
                }
            }
        }
        Ok(first.unwrap_or_else(|| body.freeze()))
    };
    match tokio::time::timeout(timeout, collect).await {
        Ok(result) => result,
        Err(_) => Err(BodyError::TimedOut),
    }
}

/// `response`, sent with `Connection: close` and holding the unread
/// `payload` until it is written: actix-web then closes the connection after
/// the answer, where it would otherwise drain the rest of a chunked body for
/// as long as the client sends it.
pub fn closing(mut response: HttpResponse, payload: web::Payload) -> HttpResponse {
    response.head_mut().set_connection_type(ConnectionType::Close);
    response.map_body(|_, body| {
        BoxBody::new(Holding {
            body,
            _payload: payload,
        })
    })
}

/// A response body that keeps the request's payload alive while it is sent.
struct Holding {
    body: BoxBody,
    _payload: web::Payload,
}

impl MessageBody for Holding {
    type Error = <BoxBody as MessageBody>::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.body).poll_next(cx)
    }
}
