//! What the router does with a client's request before any container sees it: the request id it
//! carries through every container, the body read under the endpoint's size limit, and the JSON
//! error responses, byte for byte those of `modelstage serve`.

use std::sync::OnceLock;

use actix_web::http::header::HeaderMap;
use actix_web::web::{self, Bytes};
use actix_web::HttpResponse;
use modelstage_contract::payload;
use modelstage_runtime::serve::{body, connections, error_body, EdgeLimits};
pub use modelstage_runtime::serve::{json_response, request_id, CUSTOM_ATTRIBUTES_HEADER};

/// The bounds of this process's router: its edge limits and the open
/// connections past which `/invocations` is refused (see `serve`'s
/// `connections`). Every router of a process reads the same variables.
static EDGE: OnceLock<(EdgeLimits, usize)> = OnceLock::new();

/// Sets the bounds [`read_body`] applies (the first router of a process sets them).
pub fn set_edge(limits: EdgeLimits, invocation_connections: usize) {
    let _ = EDGE.set((limits, invocation_connections));
}

/// `serve`'s JSON error, with no hook and no record.
pub fn error(status: u16, label: &str, message: &str, request_id: &str) -> HttpResponse {
    json_response(
        status,
        error_body(status, label, None, message, None, request_id),
        request_id,
    )
}

/// Reads the request body. `max_payload_in_mb` is the endpoint's limit (0: none); past it the
/// answer is `serve`'s own 413, so that a router and a fused server answer alike. A body not
/// received within `MODELSTAGE_BODY_TIMEOUT_SECS` is a 408; either answer closes the connection.
pub async fn read_body(
    mut payload: web::Payload,
    headers: &HeaderMap,
    max_payload_in_mb: u64,
    label: &str,
    request_id: &str,
) -> Result<Bytes, HttpResponse> {
    let (edge, invocation_connections) = EDGE
        .get()
        .cloned()
        .unwrap_or_else(|| (EdgeLimits::default(), usize::MAX));
    let open = connections::open();
    if open > invocation_connections {
        let message = format!(
            "the endpoint holds {open} connections, more than the {invocation_connections} it serves /invocations on (MODELSTAGE_MAX_CONNECTIONS); retry shortly"
        );
        return Err(body::closing(error(503, label, &message, request_id), payload));
    }
    let limit = payload::limit_bytes(max_payload_in_mb);
    match body::read(&mut payload, headers, limit, edge.body_timeout).await {
        Ok(body) => Ok(body),
        Err(e) => {
            let too_large = payload::too_large_message(max_payload_in_mb);
            let message = e.message(&too_large, edge.body_timeout);
            Err(body::closing(
                error(e.status(), label, &message, request_id),
                payload,
            ))
        }
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
        for bad in [
            "x".repeat(129),
            "a b".into(),
            "a\tb".into(),
            "rid=1 forged".into(),
            "ü".into(),
        ] {
            headers.insert(
                REQUEST_ID_HEADER.try_into().unwrap(),
                HeaderValue::from_bytes(bad.as_bytes()).unwrap(),
            );
            assert_ne!(request_id(&headers), bad);
        }
    }
}
