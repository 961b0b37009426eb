//! What the router does with a client's request before any container sees it: the edge of
//! `modelstage serve` (`serve::edge`: the request id it carries through every container, the body
//! read under the endpoint's size limit, and the JSON error responses), so that a router and a
//! fused server answer alike; and the most it reads of anyone.

use actix_web::HttpResponse;
use modelstage_runtime::serve::EdgeError;
pub use modelstage_runtime::serve::{json_response, request_id, CUSTOM_ATTRIBUTES_HEADER};

/// `serve`'s JSON error, with no hook and no record.
pub fn error(status: u16, label: &str, message: &str, request_id: &str) -> HttpResponse {
    EdgeError::new(status, label, message)
        .request_id(request_id)
        .respond()
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderMap, HeaderValue};

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
