//! Writes transformed rows as the Python container does: `text/csv` as
//! `numpy.savetxt(fmt="%s")`, `application/json` as `json.dumps` of the
//! Linear Learner request (`{"instances": [{"features": [...]}]}`), and
//! `application/jsonlines` as one `{"features": [...]}` per line.

use std::cell::RefCell;

use modelstage_sdk::python::write_float;

use crate::transform::Features;

/// Entries of the per-thread cache of formatted values (a power of two).
/// Abalone's seven numeric columns hold about 6,000 distinct values; a
/// direct-mapped cache needs several times that many slots before
/// collisions stop evicting values that are still in use (measured: 8,192
/// slots left a good share of values to be formatted again and again).
const CACHE_SLOTS: usize = 32 * 1024;
/// Longest text a slot holds: every `repr` but the rare 24-character ones
/// (`-1.2345678901234567e-308`), which are formatted each time.
const SLOT_TEXT: usize = 23;
/// A key no formatted value has: non-finite values skip the cache.
const EMPTY: u64 = u64::MAX;

/// One cached value: its bits, its text and the text's length, in half a
/// cache line, so a lookup touches one line.
#[derive(Clone, Copy)]
#[repr(C, align(32))]
struct Slot {
    key: u64,
    text: [u8; SLOT_TEXT],
    len: u8,
}

/// Formatted values by bit pattern, direct-mapped. Shortest round-trip
/// formatting is most of the cost of a response, and tabular data repeats:
/// a column of measurements with three decimals has a few thousand distinct
/// values, and so a few thousand distinct standardized features.
struct ReprCache {
    slots: Vec<Slot>,
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
        }
    }

    /// Appends `repr(v)` of a finite `v`.
    #[inline]
    fn write(&mut self, out: &mut Vec<u8>, v: f64) {
        let bits = v.to_bits();
        let index =
            (bits.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - CACHE_SLOTS.trailing_zeros())) as usize;
        let slot = &mut self.slots[index];
        if slot.key == bits {
            // A fixed-size copy compiles to a few vector moves, unlike a
            // variable-length one; the surplus is cut off again.
            let end = out.len() + usize::from(slot.len);
            out.extend_from_slice(&slot.text);
            out.truncate(end);
            return;
        }
        let start = out.len();
        write_float(out, v);
        let written = &out[start..];
        if written.len() <= SLOT_TEXT {
            slot.key = bits;
            slot.len = written.len() as u8;
            slot.text[..written.len()].copy_from_slice(written);
        }
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
    // ~20 bytes per value covers a full-precision repr and its separator.
    let mut out = Vec::with_capacity(features.values.len() * 20 + features.rows * 16 + 32);
    match format {
        Format::Csv => {
            for r in 0..features.rows {
                write_row::<false>(&mut out, cache, features.row(r));
                out.push(b'\n');
            }
        }
        Format::Json => {
            out.extend_from_slice(b"{\"instances\": [");
            for r in 0..features.rows {
                if r > 0 {
                    out.extend_from_slice(b", ");
                }
                out.extend_from_slice(b"{\"features\": [");
                write_row::<true>(&mut out, cache, features.row(r));
                out.extend_from_slice(b"]}");
            }
            out.extend_from_slice(b"]}");
        }
        Format::JsonLines => {
            for r in 0..features.rows {
                out.extend_from_slice(b"{\"features\": [");
                write_row::<true>(&mut out, cache, features.row(r));
                out.extend_from_slice(b"]}\n");
            }
        }
    }
    out
}

/// One row's values, separated by `,` (CSV) or `, ` (JSON).
fn write_row<const JSON: bool>(out: &mut Vec<u8>, cache: &mut ReprCache, row: &[f64]) {
    for (i, &v) in row.iter().enumerate() {
        if i > 0 {
            out.push(b',');
            if JSON {
                out.push(b' ');
            }
        }
        write_value(out, cache, v, JSON);
    }
}

#[inline]
fn write_value(out: &mut Vec<u8>, cache: &mut ReprCache, v: f64, json: bool) {
    // One-hot values are a good share of a row; skip the lookup for them.
    if v == 0.0 && v.is_sign_positive() {
        out.extend_from_slice(b"0.0");
    } else if v == 1.0 {
        out.extend_from_slice(b"1.0");
    } else if !v.is_finite() {
        // json.dumps writes the JavaScript names; numpy the Python ones.
        out.extend_from_slice(match (json, v.is_nan(), v > 0.0) {
            (true, true, _) => b"NaN",
            (true, false, true) => b"Infinity",
            (true, false, false) => b"-Infinity",
            (false, true, _) => b"nan",
            (false, false, true) => b"inf",
            (false, false, false) => b"-inf",
        });
    } else {
        cache.write(out, v);
    }
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
    fn media_types_map_to_formats() {
        assert_eq!(Format::of("text/csv"), Some(Format::Csv));
        assert_eq!(Format::of("application/jsonlines"), Some(Format::JsonLines));
        assert_eq!(Format::of("application/x-npy"), None);
    }
}
