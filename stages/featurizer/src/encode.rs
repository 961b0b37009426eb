//! Writes transformed rows as the Python container does: `text/csv` as
//! `numpy.savetxt(fmt="%s")`, `application/json` as `json.dumps` of the
//! Linear Learner request (`{"instances": [{"features": [...]}]}`), and
//! `application/jsonlines` as one `{"features": [...]}` per line.

use std::cell::RefCell;

use modelstage_sdk::python::write_float;

use crate::transform::Features;

/// Entries of the per-thread cache of formatted values (a power of two).
/// Abalone's seven numeric columns give about 6,000 distinct features; a
/// warm cache of 32,768 slots misses 1.4% of their lookups in pairs of
/// slots, 5% direct-mapped (16,384 slots: 4.3% and 9.5%), each miss a
/// ~470-instruction format.
const CACHE_SLOTS: usize = 32 * 1024;
/// Longest text a slot holds: every `repr` but the rare 24-character ones
/// (`-1.2345678901234567e-308`), which are formatted each time.
const SLOT_TEXT: usize = 23;
/// A key no formatted value has: non-finite values skip the cache.
const EMPTY: u64 = u64::MAX;
/// The most bytes one value takes with its separator: the longest repr
/// (`-1.2345678901234567e-308`, 24 bytes) and `, `.
const VALUE_MAX: usize = 26;

/// One cached value: its bits, its text and the text's length, in half a
/// cache line, so a lookup touches one line.
#[derive(Clone, Copy)]
#[repr(C, align(32))]
struct Slot {
    key: u64,
    text: [u8; SLOT_TEXT],
    len: u8,
}

/// Formatted values by bit pattern, in two-way sets. Shortest round-trip
/// formatting is most of the cost of a response, and tabular data repeats:
/// a column of measurements with three decimals has a few thousand distinct
/// values, and so a few thousand distinct standardized features.
struct ReprCache {
    slots: Vec<Slot>,
    /// Where a value missing from the cache is formatted.
    scratch: Vec<u8>,
}

impl ReprCache {
    fn new() -> ReprCache {
        ReprCache {
            slots: vec![
                Slot {
                    key: EMPTY,
                    text: [0; SLOT_TEXT],
                    len: 0,
                };
                CACHE_SLOTS
            ],
            scratch: Vec::with_capacity(VALUE_MAX),
        }
    }

    /// Writes `repr(v)` of a finite `v` at the start of `buf`, which has
    /// room for [`VALUE_MAX`] bytes, and returns its length.
    #[inline(always)]
    fn write(&mut self, buf: &mut [u8], v: f64) -> usize {
        let bits = v.to_bits();
        // The first slot of the value's pair.
        let index =
            (bits.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - CACHE_SLOTS.trailing_zeros())) as usize & !1;
        // Two ways, in one cache line: a value may sit in either slot of its
        // pair, and a new value goes first, pushing the first one second, so
        // two values in use that hash alike do not evict each other.
        for way in [index, index ^ 1] {
            let slot = &self.slots[way];
            if slot.key == bits {
                // A fixed-size copy compiles to a few vector moves, unlike a
                // variable-length one; the bytes past the text are
                // overwritten by what follows or cut off at the end of the row.
                buf[..SLOT_TEXT].copy_from_slice(&slot.text);
                return usize::from(slot.len);
            }
        }
        self.scratch.clear();
        write_float(&mut self.scratch, v);
        let written = self.scratch.as_slice();
        buf[..written.len()].copy_from_slice(written);
        if written.len() <= SLOT_TEXT {
            self.slots[index ^ 1] = self.slots[index];
            let slot = &mut self.slots[index];
            slot.key = bits;
            slot.len = written.len() as u8;
            slot.text[..written.len()].copy_from_slice(written);
        }
        written.len()
    }
}

thread_local! {
    static CACHE: RefCell<ReprCache> = RefCell::new(ReprCache::new());
}

pub const CSV: &str = "text/csv";
pub const JSON: &str = "application/json";
pub const JSONLINES: &str = "application/jsonlines";

/// What the stage can answer, in the order `*/*` resolves them.
pub const SUPPORTED: [&str; 3] = [JSON, CSV, JSONLINES];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
    JsonLines,
}

impl Format {
    pub fn of(media_type: &str) -> Option<Format> {
        match media_type {
            CSV => Some(Format::Csv),
            JSON => Some(Format::Json),
            JSONLINES => Some(Format::JsonLines),
            _ => None,
        }
    }
}

/// Encodes all rows into one buffer.
pub fn encode(features: &Features, format: Format) -> Vec<u8> {
    CACHE.with(|cache| match cache.try_borrow_mut() {
        Ok(mut cache) => encode_with(features, format, &mut cache),
        // Only reachable if encoding re-entered itself; format uncached.
        Err(_) => encode_with(features, format, &mut ReprCache::new()),
    })
}

fn encode_with(features: &Features, format: Format, cache: &mut ReprCache) -> Vec<u8> {
    // ~20 bytes per value covers a full-precision repr and its separator;
    // one row's worst case on top, which each row reserves before writing.
    let mut out = Vec::with_capacity(
        features.values.len() * 20 + features.rows * 16 + features.stride * VALUE_MAX + 32,
    );
    match format {
        Format::Csv => {
            for r in 0..features.rows {
                write_row::<false>(&mut out, cache, features.row(r), b"", b"\n");
            }
        }
        Format::Json => {
            out.extend_from_slice(b"{\"instances\": [");
            for r in 0..features.rows {
                let head: &[u8] = if r > 0 {
                    b", {\"features\": ["
                } else {
                    b"{\"features\": ["
                };
                write_row::<true>(&mut out, cache, features.row(r), head, b"]}");
            }
            out.extend_from_slice(b"]}");
        }
        Format::JsonLines => {
            for r in 0..features.rows {
                write_row::<true>(&mut out, cache, features.row(r), b"{\"features\": [", b"]}\n");
            }
        }
    }
    out
}

/// One row: `head`, the values separated by `,` (CSV) or `, ` (JSON), `tail`.
/// The row's worst case is zeroed first and written by index, so a value
/// costs fixed-size copies rather than a capacity check per byte.
#[inline]
fn write_row<const JSON: bool>(
    out: &mut Vec<u8>,
    cache: &mut ReprCache,
    row: &[f64],
    head: &[u8],
    tail: &[u8],
) {
    out.extend_from_slice(head);
    let start = out.len();
    out.resize(start + row.len() * VALUE_MAX, 0);
    let buf = &mut out[start..];
    let mut at = 0;
    for (i, &v) in row.iter().enumerate() {
        if i > 0 {
            buf[at] = b',';
            at += 1;
            if JSON {
                buf[at] = b' ';
                at += 1;
            }
        }
        at += write_value(&mut buf[at..], cache, v, JSON);
    }
    out.truncate(start + at);
    out.extend_from_slice(tail);
}

/// Writes one value at the start of `buf` (room for [`VALUE_MAX`] bytes)
/// and returns its length.
#[inline(always)]
fn write_value(buf: &mut [u8], cache: &mut ReprCache, v: f64, json: bool) -> usize {
    // One-hot values are a good share of a row; skip the lookup for them.
    // Fixed-size copies: a variable-length one is a call to memcpy.
    if v == 0.0 && v.is_sign_positive() {
        buf[..3].copy_from_slice(b"0.0");
        return 3;
    }
    if v == 1.0 {
        buf[..3].copy_from_slice(b"1.0");
        return 3;
    }
    let text: &[u8] = if !v.is_finite() {
        // json.dumps writes the JavaScript names; numpy the Python ones.
        match (json, v.is_nan(), v > 0.0) {
            (true, true, _) => b"NaN",
            (true, false, true) => b"Infinity",
            (true, false, false) => b"-Infinity",
            (false, true, _) => b"nan",
            (false, false, true) => b"inf",
            (false, false, false) => b"-inf",
        }
    } else {
        return cache.write(buf, v);
    };
    buf[..text.len()].copy_from_slice(text);
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(rows: usize, values: &[f64]) -> Features {
        Features {
            rows,
            stride: values.len() / rows,
            values: values.to_vec(),
        }
    }

    #[test]
    fn csv_is_savetxt_with_python_repr() {
        let f = features(2, &[10.0, -0.5, 1e-05, 0.0, 1e16, f64::NAN, 1.0, -0.0]);
        assert_eq!(
            encode(&f, Format::Csv),
            b"10.0,-0.5,1e-05,0.0\n1e+16,nan,1.0,-0.0\n"
        );
    }

    #[test]
    fn json_is_json_dumps_of_the_linear_learner_request() {
        let f = features(2, &[1.5, 0.0, f64::NAN, f64::NEG_INFINITY]);
        assert_eq!(
            String::from_utf8(encode(&f, Format::Json)).unwrap(),
            r#"{"instances": [{"features": [1.5, 0.0]}, {"features": [NaN, -Infinity]}]}"#
        );
    }

    #[test]
    fn jsonlines_is_one_object_per_line() {
        let f = features(2, &[1.5, 0.0, 2.0, 1.0]);
        assert_eq!(
            String::from_utf8(encode(&f, Format::JsonLines)).unwrap(),
            "{\"features\": [1.5, 0.0]}\n{\"features\": [2.0, 1.0]}\n"
        );
    }

    #[test]
    fn cached_values_print_the_same() {
        // Enough distinct values to collide in the cache, each printed twice.
        let values: Vec<f64> = (0..3 * CACHE_SLOTS)
            .map(|i| (i as f64 * 0.37).sin() * 10.0)
            .collect();
        let f = features(values.len(), &values);
        let expected: String = values
            .iter()
            .map(|&v| format!("{}\n", modelstage_sdk::python::float_repr(v)))
            .collect();
        assert_eq!(String::from_utf8(encode(&f, Format::Csv)).unwrap(), expected);
        assert_eq!(String::from_utf8(encode(&f, Format::Csv)).unwrap(), expected);
    }

    #[test]
    fn rows_of_the_longest_texts_fit() {
        // 24-character reprs (never cached) side by side with every
        // separator, cold and warm, in all three formats.
        let longest = [
            -1.2345678901234567e-308,
            -2.2250738585072014e-308,
            -f64::MAX,
            -5e-324,
            f64::NEG_INFINITY,
        ];
        let f = features(2, &[longest, longest].concat());
        let row: Vec<String> = longest
            .iter()
            .map(|&v| modelstage_sdk::python::float_repr(v))
            .collect();
        let json_row = row.join(", ").replace("-inf", "-Infinity");
        assert!(row[0].len() == 24 && row[1].len() == 24, "{row:?}");
        for _ in 0..2 {
            assert_eq!(
                String::from_utf8(encode(&f, Format::Csv)).unwrap(),
                format!("{0}\n{0}\n", row.join(","))
            );
            assert_eq!(
                String::from_utf8(encode(&f, Format::Json)).unwrap(),
                format!(
                    "{{\"instances\": [{{\"features\": [{json_row}]}}, {{\"features\": [{json_row}]}}]}}"
                )
            );
            assert_eq!(
                String::from_utf8(encode(&f, Format::JsonLines)).unwrap(),
                format!("{{\"features\": [{json_row}]}}\n").repeat(2)
            );
        }
    }

    #[test]
    fn media_types_map_to_formats() {
        assert_eq!(Format::of("text/csv"), Some(Format::Csv));
        assert_eq!(Format::of("application/jsonlines"), Some(Format::JsonLines));
        assert_eq!(Format::of("application/x-npy"), None);
    }
}
