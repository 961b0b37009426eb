//! Python-compatible text for numbers and JSON values.
//!
//! Users move to modelstage from containers written in Python, and compare
//! outputs byte for byte. This module prints what Python prints:
//!
//! * [`write_float`] / [`float_repr`]: `repr(float)` (`0.0`, `10.0`, `1e-05`,
//!   `1e+16`, `nan`, `inf`);
//! * [`to_json`]: `json.dumps(value)` with its defaults (`", "` and `": "`
//!   separators, ASCII-only output, floats as `repr`);
//! * [`to_json_compact_sorted`]: `json.dumps(value, sort_keys=True,
//!   separators=(",", ":"))`, the rendering of the `SM_*` environment;
//! * [`str_of`]: `str(value)` of a decoded JSON value, as the toolkits build
//!   command-line arguments;
//! * [`PythonFormatter`]: a `serde_json` formatter for streaming large bodies
//!   in `json.dumps` style without building a `Value`.

use std::io;

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::ser::{CharEscape, Formatter};
use serde_json::Value;

// ---------------------------------------------------------------------------
// Floats
// ---------------------------------------------------------------------------

/// Longest `repr` of a finite f64: sign, 17 digits, point, `e-308`.
const FLOAT_MAX_LEN: usize = 32;

/// Appends Python's `repr(x)` to `out`.
///
/// The digits are the shortest that read back as `x` (from `ryu`); the
/// layout is Python's: positional when the decimal exponent is in `-4..16`
/// (always with a fractional part, `10.0`), scientific otherwise with a signed
/// exponent of at least two digits (`1e-05`, `1.5e+300`). `NaN` prints as
/// `nan` whatever its sign bit, infinities as `inf` / `-inf`.
/// No heap allocation besides growing `out`.
#[inline]
pub fn write_float(out: &mut Vec<u8>, x: f64) {
    if let Some(text) = non_finite(x) {
        out.extend_from_slice(text);
        return;
    }
    let mut ryu_buf = ryu::Buffer::new();
    let text = ryu_buf.format_finite(x).as_bytes();
    if is_python_layout(text) {
        out.extend_from_slice(text);
        return;
    }
    let mut buf = [0u8; FLOAT_MAX_LEN];
    let len = relayout(text, &mut buf);
    out.extend_from_slice(&buf[..len]);
}

/// Python's `repr(x)` as a `String`; see [`write_float`].
pub fn float_repr(x: f64) -> String {
    let mut buf = [0u8; FLOAT_MAX_LEN];
    let len = format_float(x, &mut buf);
    // The formatter only ever writes ASCII.
    String::from_utf8_lossy(&buf[..len]).into_owned()
}

/// A cursor over a fixed stack buffer; the caller sized it for the longest
/// output, so a write past the end is dropped rather than panicking.
struct Cursor<'a> {
    buf: &'a mut [u8; FLOAT_MAX_LEN],
    len: usize,
}

impl Cursor<'_> {
    fn push(&mut self, byte: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = byte;
            self.len += 1;
        }
    }

    fn push_all(&mut self, bytes: &[u8]) {
        if let Some(slot) = self.buf.get_mut(self.len..self.len + bytes.len()) {
            slot.copy_from_slice(bytes);
            self.len += bytes.len();
        }
    }
}

/// Python's text for the values ryu does not format.
fn non_finite(x: f64) -> Option<&'static [u8]> {
    if x.is_nan() {
        Some(b"nan")
    } else if x.is_infinite() {
        Some(if x > 0.0 { b"inf" } else { b"-inf" })
    } else {
        None
    }
}

/// Whether ryu's text for a finite value is already Python's `repr`.
///
/// ryu lays out positionally exactly where Python does (decimal exponent
/// -4..16) except at -5 (`0.00001234`, Python `1.234e-05`), and prints zero
/// as `0.0` / `-0.0` as Python does; its scientific form differs (`1e16` vs
/// `1e+16`). Most data is positional, so this is the common, cheap case.
fn is_python_layout(text: &[u8]) -> bool {
    let unsigned = text.strip_prefix(b"-").unwrap_or(text);
    !unsigned.contains(&b'e') && !unsigned.starts_with(b"0.0000")
}

/// Writes `repr(x)` into `buf`, returns its length.
fn format_float(x: f64, buf: &mut [u8; FLOAT_MAX_LEN]) -> usize {
    let mut out = Cursor { buf, len: 0 };
    if let Some(text) = non_finite(x) {
        out.push_all(text);
        return out.len;
    }
    let mut ryu_buf = ryu::Buffer::new();
    let text = ryu_buf.format_finite(x).as_bytes();
    if is_python_layout(text) {
        out.push_all(text);
        return out.len;
    }
    relayout(text, out.buf)
}

/// Writes Python's layout of a value ryu printed differently into `buf`,
/// returns its length. Only two forms reach here:
///
/// * ryu's scientific form (`1.5e-7`, `1e16`), used where Python's is too:
///   the digits stay, the exponent gets a sign and at least two digits;
/// * `0.0000ddd` (decimal exponent -5), scientific in Python: `d.dde-05`.
///
/// ryu's digits are the shortest, so they never end in a zero.
fn relayout(text: &[u8], buf: &mut [u8; FLOAT_MAX_LEN]) -> usize {
    let mut out = Cursor { buf, len: 0 };
    let (sign, unsigned) = match text.strip_prefix(b"-") {
        Some(rest) => (&b"-"[..], rest),
        None => (&b""[..], text),
    };
    out.push_all(sign);
    if let Some(e) = unsigned.iter().position(|&c| c == b'e') {
        out.push_all(&unsigned[..e]);
        out.push(b'e');
        let exponent = &unsigned[e + 1..];
        let digits = match exponent.strip_prefix(b"-") {
            Some(digits) => {
                out.push(b'-');
                digits
            }
            None => {
                out.push(b'+');
                exponent
            }
        };
        if digits.len() < 2 {
            out.push(b'0');
        }
        out.push_all(digits);
    } else {
        let digits = unsigned.strip_prefix(b"0.0000").unwrap_or(unsigned);
        if let Some((first, rest)) = digits.split_first() {
            out.push(*first);
            if !rest.is_empty() {
                out.push(b'.');
                out.push_all(rest);
            }
        }
        out.push_all(b"e-05");
    }
    out.len
}

// ---------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------

/// A `serde_json` formatter that writes what Python's `json.dumps` writes
/// with its defaults: `", "` between items, `": "` after keys, floats as
/// `repr` (`10.0`, `1e-05`), and ASCII-only text (`ensure_ascii=True`: any
/// other character as `\uXXXX`, astral ones as a surrogate pair).
///
/// ```
/// use modelstage_contract::python::PythonFormatter;
/// use serde::Serialize;
///
/// let mut out = Vec::new();
/// let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
/// vec![1.0, 2.5].serialize(&mut ser).unwrap();
/// assert_eq!(out, b"[1.0, 2.5]");
/// ```
///
/// `serde_json` turns NaN and infinities into `null` before the formatter sees
/// them; write such values yourself if they must appear as Python's `NaN`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PythonFormatter;

/// `json.dumps(..., separators=(",", ":"))` with ASCII-only text, for the
/// `SM_*` environment.
#[derive(Debug, Clone, Copy, Default)]
struct CompactAsciiFormatter;

/// Writes the parts both formatters share: repr floats and ASCII escaping.
macro_rules! python_text {
    () => {
        fn write_f64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
            let mut buf = [0u8; FLOAT_MAX_LEN];
            let len = format_float(value, &mut buf);
            writer.write_all(&buf[..len])
        }

        // Python has no single precision: numpy's float32 values reach
        // json.dumps widened to double, and print as such.
        fn write_f32<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f32) -> io::Result<()> {
            self.write_f64(writer, f64::from(value))
        }

        fn write_string_fragment<W: ?Sized + io::Write>(
            &mut self,
            writer: &mut W,
            fragment: &str,
        ) -> io::Result<()> {
            write_ascii_fragment(writer, fragment)
        }

        fn write_char_escape<W: ?Sized + io::Write>(
            &mut self,
            writer: &mut W,
            escape: CharEscape,
        ) -> io::Result<()> {
            write_python_escape(writer, escape)
        }
    };
}

impl Formatter for PythonFormatter {
    python_text!();

    fn begin_array_value<W: ?Sized + io::Write>(&mut self, writer: &mut W, first: bool) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + io::Write>(&mut self, writer: &mut W, first: bool) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b": ")
    }
}

impl Formatter for CompactAsciiFormatter {
    python_text!();
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes `\uXXXX` (lowercase hex, as Python does).
fn write_u_escape<W: ?Sized + io::Write>(writer: &mut W, unit: u16) -> io::Result<()> {
    writer.write_all(&[
        b'\\',
        b'u',
        HEX[usize::from(unit >> 12)],
        HEX[usize::from((unit >> 8) & 0xf)],
        HEX[usize::from((unit >> 4) & 0xf)],
        HEX[usize::from(unit & 0xf)],
    ])
}

/// Writes a fragment serde_json considers safe, escaping what Python's
/// `ensure_ascii` also escapes: DEL and every non-ASCII character.
fn write_ascii_fragment<W: ?Sized + io::Write>(writer: &mut W, fragment: &str) -> io::Result<()> {
    let bytes = fragment.as_bytes();
    let mut start = 0;
    for (i, c) in fragment.char_indices() {
        if (c as u32) < 0x7f {
            continue;
        }
        writer.write_all(&bytes[start..i])?;
        let mut units = [0u16; 2];
        for unit in c.encode_utf16(&mut units) {
            write_u_escape(writer, *unit)?;
        }
        start = i + c.len_utf8();
    }
    writer.write_all(&bytes[start..])
}

/// Python's escapes for the characters serde_json escapes: the same short
/// forms (`\n`, `\"`...) and `\u00XX` for other controls.
fn write_python_escape<W: ?Sized + io::Write>(writer: &mut W, escape: CharEscape) -> io::Result<()> {
    let short = match escape {
        CharEscape::Quote => b'"',
        CharEscape::ReverseSolidus => b'\\',
        // Python never escapes '/', but serde_json does not ask for it either.
        CharEscape::Solidus => b'/',
        CharEscape::Backspace => b'b',
        CharEscape::FormFeed => b'f',
        CharEscape::LineFeed => b'n',
        CharEscape::CarriageReturn => b'r',
        CharEscape::Tab => b't',
        CharEscape::AsciiControl(byte) => return write_u_escape(writer, u16::from(byte)),
    };
    writer.write_all(&[b'\\', short])
}

/// Python's `json.dumps(value)`: `", "` / `": "` separators, keys in the
/// map's order, floats as `repr`, integers as integers (`10` vs `10.0`),
/// non-ASCII as `\uXXXX`.
///
/// What a `serde_json::Value` cannot carry cannot be reproduced: Python keeps
/// an object's keys in document order where `serde_json` (without its
/// `preserve_order` feature) sorts them; it reads `-0` as the integer 0 where
/// `serde_json` reads the float -0.0; and integers beyond 64 bits stay exact
/// in Python but become floats here.
pub fn to_json(value: &Value) -> String {
    let mut out = Vec::with_capacity(64);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    // Writing a Value into a Vec cannot fail: every key is a string and
    // non-finite floats cannot be stored in a Value.
    if value.serialize(&mut ser).is_err() {
        return String::new();
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Python's `json.dumps(value, sort_keys=True, separators=(",", ":"))`
/// (ASCII-only), as the toolkits render the `SM_*` environment. Keys are
/// sorted by code point at every level, whatever order the map keeps.
pub fn to_json_compact_sorted(value: &Value) -> String {
    let mut out = Vec::with_capacity(64);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, CompactAsciiFormatter);
    if SortedKeys(value).serialize(&mut ser).is_err() {
        return String::new();
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Serializes a `Value` with object keys sorted. UTF-8 byte order is code
/// point order, which is Python's string order.
struct SortedKeys<'a>(&'a Value);

impl Serialize for SortedKeys<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&SortedKeys(item))?;
                }
                seq.end()
            }
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                let mut out = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    out.serialize_entry(key, &SortedKeys(value))?;
                }
                out.end()
            }
            scalar => scalar.serialize(serializer),
        }
    }
}

// ---------------------------------------------------------------------------
// str() and repr()
// ---------------------------------------------------------------------------

/// Python's `str(v)` of a JSON-decoded value `v`: strings as they are,
/// `True` / `False` / `None`, integers, floats as `repr`, and containers as
/// Python prints them (`[1, 'a', True]`, `{'a': 1}`), their elements by
/// `repr` (strings quoted).
pub fn str_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => {
            let mut out = String::new();
            write_repr(&mut out, other);
            out
        }
    }
}

/// Appends Python's `repr(v)` of a JSON-decoded value.
fn write_repr(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push_str(&i.to_string());
            } else if let Some(u) = n.as_u64() {
                out.push_str(&u.to_string());
            } else if let Some(f) = n.as_f64() {
                out.push_str(&float_repr(f));
            }
        }
        Value::String(s) => write_str_repr(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_str_repr(out, key);
                out.push_str(": ");
                write_repr(out, item);
            }
            out.push('}');
        }
    }
}

/// Appends Python's `repr(s)` of a string: single quotes, or double quotes
/// when the text has a `'` and no `"`; backslash escapes for the quote, `\`,
/// `\t` `\n` `\r`, and `\xHH` / `\uHHHH` / `\UHHHHHHHH` for characters
/// Python does not consider printable.
fn write_str_repr(out: &mut String, s: &str) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if is_printable(c) => out.push(c),
            c => {
                let code = c as u32;
                let (prefix, width) = match code {
                    0..=0xff => ("\\x", 2),
                    0x100..=0xffff => ("\\u", 4),
                    _ => ("\\U", 8),
                };
                out.push_str(prefix);
                for shift in (0..width).rev() {
                    out.push(HEX[((code >> (shift * 4)) & 0xf) as usize] as char);
                }
            }
        }
    }
    out.push(quote);
}

/// Code points Python's `str.isprintable` rejects (Unicode 14, Python 3.11):
/// controls, separators other than the space, format characters and private
/// use. Unassigned code points, which Python also escapes, are kept: that
/// would need the whole Unicode database and they do not occur in practice.
/// Generated with `unicodedata` (see `tests/python_reference.py`).
const NOT_PRINTABLE: &[(u32, u32)] = &[
    (0x0, 0x1f),
    (0x7f, 0xa0),
    (0xad, 0xad),
    (0x600, 0x605),
    (0x61c, 0x61c),
    (0x6dd, 0x6dd),
    (0x70f, 0x70f),
    (0x890, 0x891),
    (0x8e2, 0x8e2),
    (0x1680, 0x1680),
    (0x180e, 0x180e),
    (0x2000, 0x200f),
    (0x2028, 0x202f),
    (0x205f, 0x2064),
    (0x2066, 0x206f),
    (0x3000, 0x3000),
    (0xe000, 0xf8ff),
    (0xfeff, 0xfeff),
    (0xfff9, 0xfffb),
    (0x110bd, 0x110bd),
    (0x110cd, 0x110cd),
    (0x13430, 0x13438),
    (0x1bca0, 0x1bca3),
    (0x1d173, 0x1d17a),
    (0xe0001, 0xe0001),
    (0xe0020, 0xe007f),
    (0xf0000, 0xffffd),
    (0x100000, 0x10fffd),
];

fn is_printable(c: char) -> bool {
    let code = c as u32;
    if (0x20..0x7f).contains(&code) {
        return true;
    }
    !NOT_PRINTABLE.iter().any(|&(lo, hi)| (lo..=hi).contains(&code))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn layout_boundaries() {
        // Each boundary of CPython's positional/scientific switch, both sides.
        assert_eq!(float_repr(0.0001), "0.0001");
        assert_eq!(float_repr(0.00001), "1e-05");
        assert_eq!(float_repr(1e15), "1000000000000000.0");
        assert_eq!(float_repr(1e16), "1e+16");
        assert_eq!(float_repr(9999999999999998.0), "9999999999999998.0");
        assert_eq!(float_repr(-0.0), "-0.0");
        assert_eq!(float_repr(f64::NAN), "nan");
        assert_eq!(float_repr(-f64::NAN), "nan");
        assert_eq!(float_repr(f64::NEG_INFINITY), "-inf");
    }

    #[test]
    fn write_float_appends() {
        let mut out = b"x=".to_vec();
        write_float(&mut out, 0.5);
        write_float(&mut out, 1e100);
        assert_eq!(out, b"x=0.51e+100");
    }

    #[test]
    fn json_separators_and_numbers() {
        let v = json!({"a": [1, 2.0, {}], "b": [], "c": null, "d": true, "e": 1e-5});
        assert_eq!(
            to_json(&v),
            r#"{"a": [1, 2.0, {}], "b": [], "c": null, "d": true, "e": 1e-05}"#
        );
    }

    #[test]
    fn json_ascii_escapes() {
        // Expected text from json.dumps("\x7f\x08\x0c\x01é😀\u2028").
        let v = Value::String("\u{7f}\u{8}\u{c}\u{1}é😀\u{2028}".into());
        assert_eq!(to_json(&v), r#""\u007f\b\f\u0001\u00e9\ud83d\ude00\u2028""#);
        assert_eq!(to_json(&json!("a\"b\\c/d\n")), r#""a\"b\\c/d\n""#);
    }

    #[test]
    fn formatter_streams_structs() {
        #[derive(serde::Serialize)]
        struct Instance {
            features: Vec<f32>,
            label: Option<f64>,
            name: &'static str,
        }
        let rows = vec![
            Instance {
                features: vec![0.5, 0.1],
                label: None,
                name: "é",
            },
            Instance {
                features: vec![],
                label: Some(10.0),
                name: "",
            },
        ];
        let mut out = Vec::new();
        let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
        serde::Serialize::serialize(&serde_json::json!({"instances": []}), &mut ser).unwrap();
        out.push(b' ');
        let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
        serde::Serialize::serialize(&rows, &mut ser).unwrap();
        // json.dumps([{"features": [0.5, float(np.float32(0.1))], "label": None, "name": "é"},
        //             {"features": [], "label": 10.0, "name": ""}])
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"instances": []} [{"features": [0.5, 0.10000000149011612], "label": null, "name": "\u00e9"}, {"features": [], "label": 10.0, "name": ""}]"#
        );
    }

    #[test]
    fn compact_sorted() {
        // The worked example of the contract's SM_HPS.
        let v: Value = serde_json::from_str(
            r#"{"x":null,"plain":"abc","name":"abc","lst":[1, 2],"learning-rate":0.01,
                "flag":true,"epochs":10,"d":{"b":2,"a":"x"}}"#,
        )
        .unwrap();
        assert_eq!(
            to_json_compact_sorted(&v),
            r#"{"d":{"a":"x","b":2},"epochs":10,"flag":true,"learning-rate":0.01,"lst":[1,2],"name":"abc","plain":"abc","x":null}"#
        );
        assert_eq!(
            to_json_compact_sorted(&json!(["é", 1000.0])),
            r#"["\u00e9",1000.0]"#
        );
    }

    #[test]
    fn str_of_values() {
        assert_eq!(str_of(&json!("abc")), "abc");
        assert_eq!(str_of(&json!(true)), "True");
        assert_eq!(str_of(&json!(null)), "None");
        assert_eq!(str_of(&json!(0.01)), "0.01");
        assert_eq!(str_of(&json!(-3)), "-3");
        assert_eq!(
            str_of(&json!([1, "a", true, null, 2.0])),
            "[1, 'a', True, None, 2.0]"
        );
        assert_eq!(
            str_of(&json!({"a": [1], "b": {"c": "d"}})),
            "{'a': [1], 'b': {'c': 'd'}}"
        );
    }

    #[test]
    fn str_repr_quoting() {
        // Expected text from Python: repr("a'b"), repr('a\'b"c'), and
        // repr('\x7f\xa0\xad é\u2028😀\x00\t').
        assert_eq!(str_of(&json!(["a'b"])), r#"["a'b"]"#);
        assert_eq!(str_of(&json!(["a'b\"c"])), r#"['a\'b"c']"#);
        assert_eq!(
            str_of(&json!(["\u{7f}\u{a0}\u{ad} é\u{2028}😀\u{0}\t"])),
            r"['\x7f\xa0\xad é\u2028😀\x00\t']"
        );
    }
}
