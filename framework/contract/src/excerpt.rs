//! Bounded, escaped quotes of client values for error messages.
//!
//! An error names what was wrong with a request, but a request may carry a
//! 5 MB field or a line break meant to forge a log line. [`excerpt`] quotes at
//! most [`EXCERPT_CHARS`] characters of a value, with control characters,
//! quotes and backslashes escaped, and says how long the value was when it
//! was cut, and [`quoted`] puts it in quotes; [`bounded`] caps a whole
//! message (the export glue applies it to every hook error, so a stage that
//! quotes carelessly is still bounded, and the server to every message it
//! relays). The one place these rules live: the runtime and local mode use
//! them too.

use std::fmt::Write;

/// How many characters of a value an error message quotes, escapes counted.
pub const EXCERPT_CHARS: usize = 200;

/// The longest error message a hook can return, in bytes; longer messages
/// are cut at a character boundary.
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// A value for an error message: control characters (and the Unicode line
/// separators), double quotes and backslashes escaped as Rust's
/// `escape_debug` escapes them (`\n`, `\r`, `\"`, `\u{1b}`), a byte that is
/// not UTF-8 as `\xNN`, cut after [`EXCERPT_CHARS`] characters, with
/// `... (N bytes)` when cut. The caller adds the quotes around it.
pub fn excerpt(value: &[u8]) -> String {
    let (mut shown, cut) = shown(value);
    if cut {
        let _ = write!(shown, "... ({} bytes)", value.len());
    }
    shown
}

/// [`excerpt`] in double quotes, the form a message quotes a value in; the
/// length of a value that was cut follows the closing quote.
pub fn quoted(value: &[u8]) -> String {
    let (shown, cut) = shown(value);
    if cut {
        format!("\"{shown}\"... ({} bytes)", value.len())
    } else {
        format!("\"{shown}\"")
    }
}

/// The escaped head of `value` and whether it was cut.
fn shown(value: &[u8]) -> (String, bool) {
    // Every byte of input gives at least one character of output: four
    // times the limit is always enough input to fill the output.
    let head = &value[..value.len().min(4 * EXCERPT_CHARS)];
    let mut out = String::with_capacity(EXCERPT_CHARS + 24);
    let mut shown = 0;
    let mut cut = head.len() < value.len();
    let mut push = |piece: &str, width: usize, out: &mut String| {
        if shown + width > EXCERPT_CHARS {
            return false;
        }
        shown += width;
        out.push_str(piece);
        true
    };
    'chunks: for chunk in head.utf8_chunks() {
        for c in chunk.valid().chars() {
            let escape = c.is_control() || matches!(c, '"' | '\\' | '\u{2028}' | '\u{2029}');
            let piece: String = if escape {
                c.escape_debug().collect()
            } else {
                c.to_string()
            };
            if !push(&piece, piece.chars().count(), &mut out) {
                cut = true;
                break 'chunks;
            }
        }
        for b in chunk.invalid() {
            if !push(&format!("\\x{b:02x}"), 4, &mut out) {
                cut = true;
                break 'chunks;
            }
        }
    }
    (out, cut)
}

/// `message` whole when it is at most `max` bytes, else its first `max`
/// bytes (cut at a character boundary) and how many were left out.
pub fn bounded(message: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if message.len() <= max {
        return message.into();
    }
    let mut end = max;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}… ({} bytes, first {end} shown)",
        &message[..end],
        message.len()
    )
    .into()
}

/// `message` cut to [`MAX_MESSAGE_BYTES`] (see [`bounded`]).
pub fn bound_message(message: String) -> String {
    match bounded(&message, MAX_MESSAGE_BYTES) {
        std::borrow::Cow::Borrowed(_) => message,
        std::borrow::Cow::Owned(cut) => cut,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_escaped_whole() {
        assert_eq!(excerpt(b"abc"), "abc");
        assert_eq!(excerpt(b"a\nb\r\"c'\\"), "a\\nb\\r\\\"c'\\\\");
        assert_eq!(excerpt(b"\x1b[31m"), "\\u{1b}[31m");
        assert_eq!(excerpt(b"caf\xc3\xa9 \xff"), "caf\u{e9} \\xff");
        assert_eq!(excerpt(b""), "");
    }

    #[test]
    fn long_values_are_cut_and_say_how_long_they_were() {
        let big = vec![b'x'; 5 << 20];
        let e = excerpt(&big);
        assert_eq!(e, format!("{}... (5242880 bytes)", "x".repeat(EXCERPT_CHARS)));
        // Escapes count towards the limit, so the excerpt stays short.
        let e = excerpt(&[b'\n'; 1000]);
        assert!(e.len() <= EXCERPT_CHARS + 24, "{}", e.len());
        assert!(e.ends_with("... (1000 bytes)"), "{e}");
        let e = excerpt(&[0x01; 1000]);
        assert!(e.len() <= EXCERPT_CHARS + 24, "{}", e.len());
        assert!(!e.contains('\u{1}'));
        // Invalid UTF-8 everywhere still fills the excerpt.
        let e = excerpt(&[0xff; 10_000]);
        assert!(e.ends_with("... (10000 bytes)"), "{e}");
        assert_eq!(e.matches("\\xff").count(), EXCERPT_CHARS / 4);
        // Exactly at the limit: nothing cut.
        assert_eq!(excerpt(&[b'y'; EXCERPT_CHARS]), "y".repeat(EXCERPT_CHARS));
    }

    #[test]
    fn messages_are_capped_at_a_char_boundary() {
        assert_eq!(bound_message("short".into()), "short");
        let long = "é".repeat(MAX_MESSAGE_BYTES);
        let cut = bound_message(long);
        assert!(cut.len() < MAX_MESSAGE_BYTES + 64);
        assert!(cut.ends_with(&format!(
            "({} bytes, first {MAX_MESSAGE_BYTES} shown)",
            2 * MAX_MESSAGE_BYTES
        )));
        assert_eq!(bounded("ééé", 3), "é… (6 bytes, first 2 shown)");
        assert_eq!(quoted(b"a\nb"), "\"a\\nb\"");
    }
}
