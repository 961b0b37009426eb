//! The default codecs: `text/csv`, `application/json`, `application/jsonlines`
//! and `application/x-npy`, in the formats of the SageMaker Python toolkits
//! (docs/contract.md (Default codecs)), so a stage's answers diff clean against a Python
//! container's.
//!
//! [`decode`] turns a request body into an [`Array`] (a dense row-major
//! n-d array of `f64`, what the toolkits' numpy arrays are), [`encode`] turns
//! an [`Array`] into a [`Response`] for an Accept type. Malformed bodies are
//! `400` errors that name the line / element and column; unknown types are
//! `415` (Content-Type) and `406` (Accept).
//!
//! The per-format modules offer the lower-level pieces for stages that stream
//! their own output or read CSV records themselves: [`csv::for_each_record`],
//! [`write_csv_row`], [`json::write_float`], [`npy::write_header`].
//!
//! ```
//! use modelstage_sdk::codecs::{self, Array};
//!
//! let a = codecs::decode(b"1,2,3\n4,5,6\n", "text/csv").unwrap();
//! assert_eq!(a.shape, vec![2, 3]);
//! let r = codecs::encode(&a, "application/json").unwrap();
//! assert_eq!(r.body, b"[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]");
//! assert_eq!(r.content_type, "application/json");
//! ```

pub mod csv;
pub mod json;
pub mod jsonlines;
pub mod npy;
pub mod number_cache;
pub mod oip;

pub use self::csv::write_row as write_csv_row;

use crate::{media_type, Response, StageError};

/// `text/csv`.
pub const CSV: &str = "text/csv";
/// `application/json`.
pub const JSON: &str = "application/json";
/// `application/jsonlines`.
pub const JSONLINES: &str = "application/jsonlines";
/// `application/x-npy`.
pub const NPY: &str = "application/x-npy";

/// Every media type the default codecs read and write, for error messages
/// and content negotiation.
pub const SUPPORTED: &[&str] = &[JSON, CSV, JSONLINES, NPY];

/// The most dimensions a decoded array may have (numpy 2's limit). The
/// encoders recurse once per dimension, so a body must not choose more.
pub const MAX_DIMS: usize = 64;

/// 406 for an output whose shape `format` cannot hold: the client's body
/// made the shape (a single number is a 0-d array) and another Accept type
/// can carry it, so this is not the stage failing.
pub(crate) fn shape_not_held(format: &str, held: &str, shape: &[usize]) -> StageError {
    StageError::new(
        crate::ErrorKind::UnsupportedAccept,
        format!(
            "{format} can hold {held}; this output has shape {shape:?}; ask for {JSON} or {NPY}, which hold \
             any shape"
        ),
    )
}

/// A dense n-d array of `f64` in row-major (C) order: the numpy array of the
/// Python toolkits. `shape` is empty for a scalar (0-d array, one value).
/// `data.len()` must be the product of `shape`; [`Array::new`] checks it,
/// and [`encode`] refuses an array where it does not hold.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Array {
    /// The length of each dimension, outermost first.
    pub shape: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<f64>,
}

impl Array {
    /// An array of the given shape, or a 500 error when `data` has the wrong
    /// number of values (a stage bug, not the client's).
    pub fn new(shape: Vec<usize>, data: Vec<f64>) -> Result<Array, StageError> {
        let array = Array { shape, data };
        array.check()?;
        Ok(array)
    }

    /// A 1-D array.
    pub fn vector(data: Vec<f64>) -> Array {
        Array {
            shape: vec![data.len()],
            data,
        }
    }

    /// A 0-d array holding one value.
    pub fn scalar(x: f64) -> Array {
        Array {
            shape: Vec::new(),
            data: vec![x],
        }
    }

    /// The number of dimensions.
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// The number of values the shape calls for, `None` on overflow.
    pub fn size_of_shape(shape: &[usize]) -> Option<usize> {
        shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
    }

    /// numpy's `squeeze()`: drops every dimension of length 1.
    pub fn squeeze(mut self) -> Array {
        self.shape.retain(|&d| d != 1);
        self
    }

    /// Checks that `data` holds exactly the values `shape` calls for.
    pub fn check(&self) -> Result<(), StageError> {
        match Array::size_of_shape(&self.shape) {
            Some(n) if n == self.data.len() => Ok(()),
            _ => Err(StageError::internal(format!(
                "array of shape {:?} holds {} values; the shape calls for {}",
                self.shape,
                self.data.len(),
                Array::size_of_shape(&self.shape).map_or_else(|| "too many".to_string(), |n| n.to_string()),
            ))),
        }
    }
}

/// The codec for a media type (parameters ignored, case-insensitive).
fn codec_of(content_type: &str) -> Option<&'static str> {
    let wanted = media_type(content_type);
    SUPPORTED.iter().copied().find(|t| t.eq_ignore_ascii_case(wanted))
}

/// Decodes a request body by its Content-Type.
///
/// * `text/csv`: Python `csv` rules (`,` delimiter, `"` quotes, doubled quotes
///   inside quotes, `\n` / `\r\n` / `\r` line ends); blank lines are skipped;
///   every row must have the same number of fields; each field, spaces
///   trimmed, must be a number (`str::parse::<f64>`, so `nan` and `inf` are
///   accepted as Python's `float` does). The rows × columns result is
///   squeezed as the legacy toolkit does (`.squeeze()`): one row gives shape
///   `[columns]`, one column `[rows]`, one value `[]`. Use
///   [`csv::decode_rows`] for an unsqueezed matrix.
/// * `application/json`: one document, a number or nested lists of numbers
///   of a regular shape (`np.array(json.loads(body))`).
/// * `application/jsonlines`: one such document per line, all of the same
///   shape: shape `[lines, ...]`.
/// * `application/x-npy`: an `.npy` file, format version 1, 2 or 3, dtypes
///   `f8 f4 i8 i4 i2 i1 u8 u4 u2 u1 b1` in either byte order, C or Fortran order.
///
/// Errors: 415 for another Content-Type, 400 for a malformed body.
pub fn decode(body: &[u8], content_type: &str) -> Result<Array, StageError> {
    match codec_of(content_type) {
        Some(CSV) => csv::decode(body),
        Some(JSON) => json::decode(body),
        Some(JSONLINES) => jsonlines::decode(body),
        Some(NPY) => npy::decode(body),
        _ => Err(StageError::unsupported_content_type(content_type, SUPPORTED)),
    }
}

/// Encodes an array for an Accept value and returns the response, whose
/// Content-Type is the bare media type (no `charset`: pipelines pass it on to
/// the next container verbatim, docs/contract.md (Serial pipelines)).
///
/// `accept` may list several types (`application/x-foo, text/csv`): the first
/// supported one wins, as in the inference toolkit; `*/*` means JSON, the
/// SageMaker default.
///
/// * `text/csv`: one line per row, values as Python's `repr` (`nan`, `inf`),
///   `\n` after every line; a 1-D array gives one value per line; 0-d and
///   3-D or more are refused (Python fails on them too).
/// * `application/json`: `json.dumps(array.tolist())`: nested lists with
///   `", "`, `NaN` / `Infinity` for non-finite values as Python writes them.
/// * `application/jsonlines`: one line per element of the first axis.
/// * `application/x-npy`: `np.save` of a little-endian `f8` array, format 1.0.
///
/// Errors: 406 for an Accept with no supported type or one that cannot hold
/// the array's shape (a 0-d array as CSV), 500 for an array whose `data` does
/// not match its `shape` (a stage bug).
pub fn encode(array: &Array, accept: &str) -> Result<Response, StageError> {
    let codec = accept.split(',').find_map(|entry| {
        if media_type(entry) == "*/*" {
            Some(JSON)
        } else {
            codec_of(entry)
        }
    });
    let Some(codec) = codec else {
        return Err(StageError::unsupported_accept(accept, SUPPORTED));
    };
    array.check()?;
    let body = match codec {
        CSV => csv::encode(array)?,
        JSONLINES => jsonlines::encode(array)?,
        NPY => npy::encode(array),
        _ => json::encode(array),
    };
    Ok(Response::new(body, codec))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn dispatch_ignores_parameters_and_case() {
        let a = decode(b"[1, 2]", "Application/JSON; charset=utf-8").unwrap();
        assert_eq!(a, Array::vector(vec![1.0, 2.0]));
        let a = decode(b"1,2\n", " text/csv ").unwrap();
        assert_eq!(a, Array::vector(vec![1.0, 2.0]));
    }

    #[test]
    fn unknown_content_type_is_415() {
        let e = decode(b"1", "application/x-foo").unwrap_err();
        assert_eq!(e.kind, ErrorKind::UnsupportedContentType);
        assert!(e.message.contains("application/x-foo"), "{}", e.message);
        assert!(e.message.contains("text/csv"), "{}", e.message);
    }

    #[test]
    fn accept_negotiation() {
        let a = Array::vector(vec![1.0, 2.5]);
        let r = encode(&a, "application/x-foo, text/csv;q=0.9").unwrap();
        assert_eq!(
            (r.body.as_slice(), r.content_type.as_str()),
            (&b"1.0\n2.5\n"[..], CSV)
        );
        let r = encode(&a, "*/*").unwrap();
        assert_eq!(
            (r.body.as_slice(), r.content_type.as_str()),
            (&b"[1.0, 2.5]"[..], JSON)
        );
        let r = encode(&a, "APPLICATION/JSONLINES; charset=utf-8").unwrap();
        assert_eq!(r.content_type, JSONLINES);
        let e = encode(&a, "application/x-foo").unwrap_err();
        assert_eq!(e.kind, ErrorKind::UnsupportedAccept);
    }

    #[test]
    fn inconsistent_array_is_an_error_not_a_panic() {
        let bad = Array {
            shape: vec![2, 2],
            data: vec![1.0],
        };
        for accept in SUPPORTED {
            assert_eq!(encode(&bad, accept).unwrap_err().kind, ErrorKind::Internal);
        }
        assert!(Array::new(vec![usize::MAX, 2], vec![]).is_err());
        assert!(Array::new(vec![2, 0], vec![]).is_ok());
    }

    #[test]
    fn squeeze_is_numpy_squeeze() {
        let a = Array::new(vec![1, 3, 1], vec![1.0, 2.0, 3.0]).unwrap().squeeze();
        assert_eq!(a.shape, vec![3]);
        assert_eq!(Array::scalar(2.0).squeeze().shape, Vec::<usize>::new());
    }
}
