//! One log format for the runtime and every stage, with the request id.
//!
//! A stage is its own shared library with its own copy of the `log` crate,
//! so the SDK installs a logger in the stage the first time the runtime calls
//! a hook; the runtime installs the same one in its own processes. The level
//! comes from `SAGEMAKER_CONTAINER_LOG_LEVEL` (Python's numbers, as the
//! toolkits read it: 10 DEBUG, 20 INFO, 30 WARNING, 40 ERROR, 50 CRITICAL),
//! unless `RUST_LOG` is set. Lines look like
//! `2026-11-27T03:50:00.123Z INFO  featurizer rid=4f1c… message`.
//!
//! Every record is one line: the formatter escapes control characters (CR,
//! LF, ESC, the other C0 and C1 codes, DEL and the Unicode line separators),
//! so a value that came from a client cannot forge or colour a line.
//! [`escape`] is the same rule for text written elsewhere; error messages
//! quote client values through [`crate::excerpt`].
//!
//! With `MODELSTAGE_LOG_FORMAT=json` every record is instead one JSON object
//! per line, the form CloudWatch Logs Insights and Loki parse:
//! `{"timestamp":"2026-11-27T03:50:00.123Z","level":"INFO","component":"featurizer","request_id":"4f1c…","message":"…"}`
//! (`request_id` only when one is set). `serde_json` escapes what would
//! break the line, so the message is kept as written, cut at [`LINE_MAX`]
//! as in text. In that format a panic is logged as an `ERROR` record too,
//! rather than printed raw by Rust's default hook. The server, its workers
//! and every stage library read the same variable, so one setting turns
//! every line of an endpoint into JSON.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::io::Write;

use log::LevelFilter;

thread_local! {
    /// The request id as a text line writes it (escaped once, when set).
    static REQUEST_ID: RefCell<String> = const { RefCell::new(String::new()) };
    /// The request id as sent, for the JSON format (which escapes itself).
    static REQUEST_ID_RAW: RefCell<String> = const { RefCell::new(String::new()) };
}

/// The variable that picks the line format: `json`, else text.
pub const LOG_FORMAT_VAR: &str = "MODELSTAGE_LOG_FORMAT";

/// How a record is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `timestamp LEVEL component rid=<id> message`, control characters escaped.
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// The format [`LOG_FORMAT_VAR`] asks for (`json`, any case), else text.
    pub fn from_env() -> LogFormat {
        match std::env::var(LOG_FORMAT_VAR) {
            Ok(v) if v.trim().eq_ignore_ascii_case("json") => LogFormat::Json,
            _ => LogFormat::Text,
        }
    }
}

/// Maps a Python logging level number onto a `log` filter.
pub fn level_from_python(level: &str) -> Option<LevelFilter> {
    let n: i64 = level.trim().parse().ok()?;
    Some(match n {
        i64::MIN..=0 => LevelFilter::Trace,
        1..=10 => LevelFilter::Debug,
        11..=20 => LevelFilter::Info,
        21..=30 => LevelFilter::Warn,
        _ => LevelFilter::Error,
    })
}

/// Whether `c` would break, forge or colour a log line if written raw.
fn needs_escape(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

/// Writes `s` to `out` with every control character escaped: `\n`, `\r`,
/// `\t`, and the rest as `\x1b` or `\u{2028}`.
fn write_escaped(out: &mut impl fmt::Write, s: &str) -> fmt::Result {
    let mut rest = s;
    // Fast path: most text has nothing to escape and is written in one piece.
    while let Some((at, c)) = rest.char_indices().find(|&(_, c)| needs_escape(c)) {
        out.write_str(&rest[..at])?;
        match c {
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            c if (c as u32) < 0x100 => write!(out, "\\x{:02x}", c as u32)?,
            c => write!(out, "\\u{{{:x}}}", c as u32)?,
        }
        rest = &rest[at + c.len_utf8()..];
    }
    out.write_str(rest)
}

/// `s` with its control characters escaped, as a log line writes it.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let _ = write_escaped(&mut out, s);
    out
}

/// The most bytes of one record's message a log line carries; the rest is
/// cut, and the line says how much was.
pub const LINE_MAX: usize = 16 * 1024;

/// An `fmt::Write` over the log line's buffer that escapes as it goes and
/// stops at [`LINE_MAX`], so a record is formatted once, with no allocation.
struct Escaping<'a, W: Write> {
    out: &'a mut W,
    room: usize,
    cut: usize,
}

impl<W: Write> fmt::Write for Escaping<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        struct Raw<'b, 'a, W: Write>(&'b mut Escaping<'a, W>);
        impl<W: Write> fmt::Write for Raw<'_, '_, W> {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                let line = &mut *self.0;
                let mut end = s.len().min(line.room);
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                line.out.write_all(&s.as_bytes()[..end]).map_err(|_| fmt::Error)?;
                line.room -= end;
                line.cut += s.len() - end;
                Ok(())
            }
        }
        write_escaped(&mut Raw(self), s)
    }
}

/// An `fmt::Write` over a JSON record's buffer that writes the message as
/// the inside of a JSON string, escaped as it goes and cut at [`LINE_MAX`]
/// bytes of message (at a character boundary), counting what did not fit:
/// a record is formatted once, with no allocation.
struct JsonEscaping<'a, W: Write> {
    out: &'a mut W,
    room: usize,
    cut: usize,
}

impl<W: Write> fmt::Write for JsonEscaping<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut end = s.len().min(self.room);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        write_json_str(self.out, &s[..end]).map_err(|_| fmt::Error)?;
        self.room -= end;
        self.cut += s.len() - end;
        Ok(())
    }
}

/// Writes `s` as the inside of a JSON string: `"`, `\` and the control
/// characters escaped (as `serde_json` escapes them), the rest as it is.
fn write_json_str(out: &mut impl Write, s: &str) -> std::io::Result<()> {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.write_all(&bytes[start..i])?;
        if escaped.is_empty() {
            write!(out, "\\u{:04x}", b)?;
        } else {
            out.write_all(escaped)?;
        }
        start = i + 1;
    }
    out.write_all(&bytes[start..])
}

/// Writes one JSON record and its newline to `out`, with this thread's
/// request id: `{"timestamp":…,"level":…,"component":…,"request_id":…,"message":…}`
/// (`request_id` only when set). `timestamp` and `level` are the logger's own
/// text, which needs no escaping.
fn write_json(
    out: &mut impl Write,
    timestamp: impl fmt::Display,
    level: log::Level,
    component: &str,
    args: fmt::Arguments<'_>,
) -> std::io::Result<()> {
    write!(
        out,
        "{{\"timestamp\":\"{timestamp}\",\"level\":\"{}\",\"component\":\"",
        level.as_str()
    )?;
    write_json_str(out, component)?;
    out.write_all(b"\",")?;
    REQUEST_ID_RAW.with(|rid| {
        let rid = rid.borrow();
        if rid.is_empty() {
            return Ok(());
        }
        out.write_all(b"\"request_id\":\"")?;
        write_json_str(out, &rid)?;
        out.write_all(b"\",")
    })?;
    out.write_all(b"\"message\":\"")?;
    let mut message = JsonEscaping {
        out: &mut *out,
        room: LINE_MAX,
        cut: 0,
    };
    message
        .write_fmt(args)
        .map_err(|_| std::io::Error::other("cannot format a log line"))?;
    if message.cut > 0 {
        let cut = message.cut;
        write!(out, "… ({cut} more bytes cut)")?;
    }
    out.write_all(b"\"}\n")
}

/// Installs the logger (once per library; later calls do nothing).
/// `component` names the process in each line (the stage, or `modelstage`).
/// The format is [`LogFormat::from_env`]'s.
pub fn init(component: &str) {
    let format = LogFormat::from_env();
    let raw_component = component.to_string();
    let component = escape(component);
    let mut builder = env_logger::Builder::new();
    let level = std::env::var("SAGEMAKER_CONTAINER_LOG_LEVEL")
        .ok()
        .and_then(|l| level_from_python(&l))
        .unwrap_or(LevelFilter::Info);
    builder.filter_level(level);
    if let Ok(spec) = std::env::var("RUST_LOG") {
        builder.parse_filters(&spec);
    }
    builder.format(move |buf, record| {
        if format == LogFormat::Json {
            let timestamp = buf.timestamp_millis();
            return write_json(buf, timestamp, record.level(), &raw_component, *record.args());
        }
        let ts = buf.timestamp_millis();
        write!(buf, "{ts} {:<5} {component} ", record.level())?;
        REQUEST_ID.with(|rid| {
            let rid = rid.borrow();
            if rid.is_empty() {
                Ok(())
            } else {
                write!(buf, "rid={rid} ")
            }
        })?;
        let mut line = Escaping {
            out: &mut *buf,
            room: LINE_MAX,
            cut: 0,
        };
        line.write_fmt(*record.args())
            .map_err(|_| std::io::Error::other("cannot format a log line"))?;
        if line.cut > 0 {
            let cut = line.cut;
            write!(buf, "… ({cut} more bytes cut)")?;
        }
        buf.write_all(b"\n")
    });
    if builder.try_init().is_ok() && format == LogFormat::Json {
        // Rust's default hook prints a panic as raw lines; in JSON, every
        // line must be a record. (A library's hook is its own copy's: this
        // covers the panics of the code that installed the logger.)
        std::panic::set_hook(Box::new(|info| log::error!("{info}")));
    }
}

/// Sets the request id that this thread's log lines carry (`None` clears
/// it), escaped as the rest of the line.
pub fn set_request_id(request_id: Option<&str>) {
    REQUEST_ID.with(|rid| {
        let mut rid = rid.borrow_mut();
        rid.clear();
        if let Some(id) = request_id {
            let _ = write_escaped(&mut *rid, id);
        }
    });
    REQUEST_ID_RAW.with(|rid| {
        let mut rid = rid.borrow_mut();
        rid.clear();
        rid.push_str(request_id.unwrap_or(""));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape("plain text, ünïcode"), "plain text, ünïcode");
        assert_eq!(
            escape("a\nb\rc\td\u{1b}[31m\u{0}\u{7f}\u{85}\u{2028}"),
            "a\\nb\\rc\\td\\x1b[31m\\x00\\x7f\\x85\\u{2028}"
        );
    }

    #[test]
    fn json_records_are_one_line_that_parses() {
        set_request_id(Some("rid-1"));
        let hostile = "line one\nforged INFO line\r\u{1b}[31m\"quoted\" \\ \u{0}\u{2028}end";
        let mut out = Vec::new();
        write_json(
            &mut out,
            "2026-01-01T00:00:00.000Z",
            log::Level::Warn,
            "stage\n",
            format_args!("got {hostile}"),
        )
        .unwrap();
        set_request_id(None);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches('\n').count(), 1, "{text}");
        assert!(text.ends_with('\n'));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["level"], "WARN");
        assert_eq!(v["component"], "stage\n");
        assert_eq!(v["request_id"], "rid-1");
        assert_eq!(v["message"], format!("got {hostile}"));
        assert_eq!(v["timestamp"], "2026-01-01T00:00:00.000Z");

        let mut out = Vec::new();
        let long = "x".repeat(LINE_MAX + 10);
        write_json(&mut out, "t", log::Level::Info, "c", format_args!("{long}")).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert!(v.get("request_id").is_none());
        assert!(v["message"].as_str().unwrap().ends_with("… (10 more bytes cut)"));
    }

    #[test]
    fn request_ids_are_escaped_once_set() {
        set_request_id(Some("a\nb"));
        REQUEST_ID.with(|rid| assert_eq!(*rid.borrow(), "a\\nb"));
        set_request_id(None);
        REQUEST_ID.with(|rid| assert!(rid.borrow().is_empty()));
    }
}
