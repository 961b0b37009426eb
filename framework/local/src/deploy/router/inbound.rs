//! What the router does with a client's request before any container sees it: the request id it
//! carries through every container, the body read under the endpoint's size limit, and the JSON
//! error responses, byte for byte those of `modelstage serve`.

use actix_web::http::header::{HeaderMap, CONTENT_LENGTH};
use actix_web::web::{self, Bytes};
use actix_web::HttpResponse;
use modelstage_runtime::serve::error_body;
pub use modelstage_runtime::serve::{json_response, request_id, CUSTOM_ATTRIBUTES_HEADER};

/// The largest body read from anyone when no smaller limit applies.
pub const HARD_LIMIT: usize = 1 << 30;
const MB: usize = 1024 * 1024;

/// `serve`'s JSON error, with no hook and no record.
pub fn error(status: u16, label: &str, message: &str, request_id: &str) -> HttpResponse {
    json_response(
        status,
        error_body(status, label, None, message, None, request_id),
        request_id,
    )
}

/// Reads the request body. `max_payload_in_mb` is the endpoint's limit (0: none); past it the
/// answer is `serve`'s own 413, so that a router and a fused server answer alike.
pub async fn read_body(
    payload: web::Payload,
    headers: &HeaderMap,
    max_payload_in_mb: u64,
    label: &str,
    request_id: &str,
) -> Result<Bytes, HttpResponse> {
    let limit = if max_payload_in_mb == 0 {
        HARD_LIMIT
    } else {
        (max_payload_in_mb as usize).saturating_mul(MB).min(HARD_LIMIT)
    };
    let too_large = || {
        let message = if max_payload_in_mb == 0 {
            format!("the request body is larger than {HARD_LIMIT} bytes, the most the endpoint reads")
        } else {
            format!("the request body is larger than the {max_payload_in_mb} MB limit (SAGEMAKER_MAX_PAYLOAD_IN_MB)")
        };
        error(413, label, &message, request_id)
    };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(too_large());
    }
    match payload.to_bytes_limited(limit).await {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(e)) => Err(error(
            400,
            label,
            &format!("could not read the request body: {e}"),
            request_id,
        )),
        Err(_) => Err(too_large()),
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;

    use super::*;
    use modelstage_runtime::serve::REQUEST_ID_HEADER;

    #[test]
    fn request_ids_are_kept_or_made() {
        let mut headers = HeaderMap::new();
        let made = request_id(&headers);
        assert_ne!(made, request_id(&headers), "two new ids are different");
        headers.insert(
            REQUEST_ID_HEADER.try_into().unwrap(),
            HeaderValue::from_static("abc-1"),
        );
        assert_eq!(request_id(&headers), "abc-1");
        // An id `serve` would not accept is replaced, so every container logs the same one.
        let long = "x".repeat(129);
        headers.insert(
            REQUEST_ID_HEADER.try_into().unwrap(),
            HeaderValue::from_str(&long).unwrap(),
        );
        assert_ne!(request_id(&headers), long);
    }
}
