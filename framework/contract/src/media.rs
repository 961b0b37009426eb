//! The media-type rule of `Content-Type` and `Accept`.
//!
//! A media type is what precedes the first `;`, trimmed. It is passed on as
//! the client sent it (a stage sees `text/CSV` if that is what came), and
//! media types compare ASCII case-insensitively (RFC 9110, 8.3.1): use
//! [`same`] to compare two, or [`normalized`] for the lower-case form to
//! match against a table.

/// The media type of a Content-Type or Accept entry, without parameters,
/// case kept: `text/CSV; charset=utf-8` gives `text/CSV`.
pub fn media_type(header: &str) -> &str {
    header.split(';').next().unwrap_or("").trim()
}

/// [`media_type`] lower-cased, the form to look up in a table of types.
pub fn normalized(header: &str) -> String {
    media_type(header).to_ascii_lowercase()
}

/// Whether two headers name the same media type (parameters and case ignored).
pub fn same(a: &str, b: &str) -> bool {
    media_type(a).eq_ignore_ascii_case(media_type(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_go_and_case_stays() {
        assert_eq!(media_type(" text/CSV ; charset=utf-8"), "text/CSV");
        assert_eq!(normalized("text/CSV; charset=utf-8"), "text/csv");
        assert!(same("Application/JSON", "application/json; q=1"));
        assert!(!same("text/csv", "text/plain"));
        assert_eq!(media_type(""), "");
    }
}
