//! `application/x-npy`: the `.npy` file format of `np.save` / `np.load`.
//!
//! A file is the magic `\x93NUMPY`, a format version, a header length, a
//! header that is a Python dict literal (`{'descr': '<f8', 'fortran_order':
//! False, 'shape': (2, 3), }`) padded with spaces to a 64-byte boundary, then
//! the raw values. We write exactly what current numpy writes for a
//! little-endian float64 array (including the spare spaces numpy leaves so a
//! file can grow in place), and read the numeric dtypes numpy produces.
//! Pickled object arrays are refused: reading them would run arbitrary code.

use super::{Array, MAX_DIMS};
use crate::{excerpt, StageError};

const MAGIC: &[u8] = b"\x93NUMPY";
/// numpy aligns the start of the data to this many bytes.
const ALIGN: usize = 64;
/// numpy leaves room in the header for the first axis to grow to this many digits.
const GROWTH_AXIS_MAX_DIGITS: usize = 21;

fn bad(message: impl std::fmt::Display) -> StageError {
    StageError::bad_request(format!("application/x-npy body: {message}"))
}

// ---------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------

/// Python's `repr` of the shape tuple: `()`, `(3,)`, `(2, 3)`.
fn shape_repr(shape: &[usize]) -> String {
    match shape {
        [] => "()".to_string(),
        [n] => format!("({n},)"),
        _ => {
            let items: Vec<String> = shape.iter().map(usize::to_string).collect();
            format!("({})", items.join(", "))
        }
    }
}

/// Appends the magic, version and header of a C-order little-endian float64
/// array of `shape`, byte for byte as `np.save` writes them (format 1.0, or
/// 2.0 when the header outgrows 1.0's 16-bit length). The caller appends the
/// values, each `f64::to_le_bytes`.
pub fn write_header(out: &mut Vec<u8>, shape: &[usize]) {
    let mut header = format!(
        "{{'descr': '<f8', 'fortran_order': False, 'shape': {}, }}",
        shape_repr(shape)
    );
    if let Some(first) = shape.first() {
        let digits = first.to_string().len();
        header.extend(std::iter::repeat_n(
            ' ',
            GROWTH_AXIS_MAX_DIGITS.saturating_sub(digits),
        ));
    }
    // +1 for the closing newline; padding counts the magic, version and length.
    let text_len = header.len() + 1;
    let padded = |prefix: usize| text_len + ALIGN - (prefix + text_len) % ALIGN;
    let v1_len = padded(MAGIC.len() + 2 + 2);
    out.extend_from_slice(MAGIC);
    let total = if let Ok(len) = u16::try_from(v1_len) {
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&len.to_le_bytes());
        v1_len
    } else {
        let len = padded(MAGIC.len() + 2 + 4);
        out.extend_from_slice(&[2, 0]);
        out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes());
        len
    };
    out.extend_from_slice(header.as_bytes());
    out.resize(out.len() + total - text_len, b' ');
    out.push(b'\n');
}

/// `np.save` of the array as little-endian float64. `array` must be
/// consistent (see [`Array::check`]).
pub fn encode(array: &Array) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + array.data.len() * 8);
    write_header(&mut out, &array.shape);
    for x in &array.data {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

/// What the header says.
#[derive(Debug, PartialEq)]
struct Header {
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
}

/// Reads an `.npy` body into a float64 array (C order).
pub fn decode(body: &[u8]) -> Result<Array, StageError> {
    if !body.starts_with(MAGIC) {
        return Err(bad(
            "it does not start with the magic \\x93NUMPY (was it written by np.save?)",
        ));
    }
    let (major, minor) = match body.get(6..8) {
        Some(v) => (v[0], v[1]),
        None => return Err(bad("it ends inside the version field")),
    };
    let (len_size, utf8) = match major {
        1 => (2, false),
        2 => (4, false),
        3 => (4, true),
        _ => {
            return Err(bad(format!(
                "format version {major}.{minor} is not supported (1.0, 2.0, 3.0 are)"
            )))
        }
    };
    let len_field = body
        .get(8..8 + len_size)
        .ok_or_else(|| bad("it ends inside the header length"))?;
    let header_len = len_field
        .iter()
        .rev()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    let start = 8 + len_size;
    let header_bytes = body.get(start..start + header_len).ok_or_else(|| {
        bad(format!(
            "the header claims {header_len} bytes but the body ends before"
        ))
    })?;
    // Versions 1 and 2 are latin-1; 3 is UTF-8. Only ASCII matters to us.
    let header_text: String = if utf8 {
        String::from_utf8_lossy(header_bytes).into_owned()
    } else {
        header_bytes.iter().map(|&b| char::from(b)).collect()
    };
    let header = parse_header(&header_text)
        .map_err(|e| bad(format!("header \"{}\": {e}", excerpt(header_text.as_bytes()))))?;
    let data = &body[start + header_len..];
    check_extent(&header.shape, body.len())?;
    let values = read_values(&header, data)?;
    let data = if header.fortran_order {
        fortran_to_c(&header.shape, &values)
    } else {
        values
    };
    Array::new(header.shape, data)
}

/// Refuses more than [`MAX_DIMS`] dimensions, and a shape that calls for
/// more elements than the body has bytes,
/// counting an empty axis as 1: an array with no values, such as shape
/// `(1000000000000, 0)`, would otherwise make every encoder write a line or
/// a `[]` per row of a trillion.
fn check_extent(shape: &[usize], body_len: usize) -> Result<(), StageError> {
    if shape.len() > MAX_DIMS {
        return Err(bad(format!(
            "the shape has {} dimensions; at most {MAX_DIMS} are accepted",
            shape.len()
        )));
    }
    let extent = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d.max(1)));
    match extent {
        Some(n) if n <= body_len => Ok(()),
        _ => Err(bad(format!(
            "shape {} calls for more elements than the {body_len}-byte body can hold",
            shape_repr(shape)
        ))),
    }
}

/// Converts the raw values to f64 by the dtype descriptor (`<f8`, `>i4`, `|u1`...).
fn read_values(header: &Header, data: &[u8]) -> Result<Vec<f64>, StageError> {
    let count = Array::size_of_shape(&header.shape)
        .ok_or_else(|| bad(format!("shape {} is too large", shape_repr(&header.shape))))?;
    let descr = header.descr.as_str();
    // The byte-order mark is one ASCII character; anything else (a
    // multi-byte character included) is not a dtype we read.
    let (little, code) = match descr.as_bytes().first() {
        Some(b'<' | b'|') => (true, &descr[1..]),
        Some(b'>') => (false, &descr[1..]),
        Some(b'=') => (cfg!(target_endian = "little"), &descr[1..]),
        _ => return Err(unsupported_dtype(descr)),
    };
    let size: usize = match code {
        "f8" | "i8" | "u8" => 8,
        "f4" | "i4" | "u4" => 4,
        "i2" | "u2" => 2,
        "i1" | "u1" | "b1" => 1,
        _ => return Err(unsupported_dtype(descr)),
    };
    let expected = count
        .checked_mul(size)
        .ok_or_else(|| bad(format!("shape {} is too large", shape_repr(&header.shape))))?;
    if data.len() != expected {
        return Err(bad(format!(
            "shape {} of {descr} needs {expected} bytes of data but the body has {}",
            shape_repr(&header.shape),
            data.len()
        )));
    }
    macro_rules! convert {
        ($t:ty, $n:expr) => {
            data.chunks_exact($n)
                .map(|c| {
                    let mut b = [0u8; $n];
                    b.copy_from_slice(c);
                    (if little {
                        <$t>::from_le_bytes(b)
                    } else {
                        <$t>::from_be_bytes(b)
                    }) as f64
                })
                .collect()
        };
    }
    Ok(match code {
        "f8" => convert!(f64, 8),
        "f4" => convert!(f32, 4),
        "i8" => convert!(i64, 8),
        "i4" => convert!(i32, 4),
        "i2" => convert!(i16, 2),
        "i1" => convert!(i8, 1),
        "u8" => convert!(u64, 8),
        "u4" => convert!(u32, 4),
        "u2" => convert!(u16, 2),
        "u1" => convert!(u8, 1),
        "b1" => data.iter().map(|&b| f64::from(u8::from(b != 0))).collect(),
        _ => return Err(unsupported_dtype(descr)),
    })
}

fn unsupported_dtype(descr: &str) -> StageError {
    let hint = if descr.contains('O') {
        " (object arrays are pickles, which are not accepted)"
    } else {
        ""
    };
    bad(format!(
        "dtype \"{}\" is not supported{hint}; send float64, float32, int, uint or bool values",
        excerpt(descr.as_bytes())
    ))
}

/// Reorders values stored column-major (`fortran_order: True`) into row-major.
fn fortran_to_c(shape: &[usize], values: &[f64]) -> Vec<f64> {
    if values.is_empty() {
        // The strides of an empty array may overflow (a zero axis beside
        // huge ones); there is nothing to move anyway.
        return Vec::new();
    }
    let mut c_strides = vec![1usize; shape.len()];
    for axis in (0..shape.len().saturating_sub(1)).rev() {
        c_strides[axis] = c_strides[axis + 1] * shape[axis + 1];
    }
    let mut out = vec![0.0; values.len()];
    let mut index = vec![0usize; shape.len()];
    // Walk the values in storage order: the first axis varies fastest.
    for &x in values {
        let at: usize = index.iter().zip(&c_strides).map(|(i, s)| i * s).sum();
        if let Some(slot) = out.get_mut(at) {
            *slot = x;
        }
        for (axis, i) in index.iter_mut().enumerate() {
            *i += 1;
            if *i < shape[axis] {
                break;
            }
            *i = 0;
        }
    }
    out
}

/// Why a header is not the dict literal numpy writes; `decode` makes it the
/// body's `StageError` (a 400), with the header's text.
#[derive(Debug, PartialEq, thiserror::Error)]
enum HeaderError {
    #[error("expected {0:?} at offset {1}")]
    Expected(char, usize),
    #[error("expected a quoted string at offset {0}")]
    NoString(usize),
    #[error("unterminated string")]
    Unterminated,
    #[error("expected True or False at offset {0}")]
    NoBoolean(usize),
    #[error("expected a dimension at offset {0}")]
    NoDimension(usize),
    /// A structured dtype (a list of fields), or any `descr` not a string.
    #[error("only simple dtypes like '<f8' are supported")]
    NotSimpleDtype,
    /// The key, bounded.
    #[error("unexpected key \"{0}\"")]
    UnexpectedKey(String),
    /// The key, quoted as numpy writes it.
    #[error("{0} is missing")]
    Missing(&'static str),
}

/// Parses the header dict literal numpy writes: string keys, and values that
/// are strings, `True` / `False`, or tuples of integers.
fn parse_header(text: &str) -> Result<Header, HeaderError> {
    let mut p = Literal {
        s: text.as_bytes(),
        at: 0,
    };
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    p.expect(b'{')?;
    loop {
        p.skip_space();
        if p.eat(b'}') {
            break;
        }
        let key = p.string()?;
        p.expect(b':')?;
        p.skip_space();
        match key.as_str() {
            "descr" => descr = Some(p.string().map_err(|_| HeaderError::NotSimpleDtype)?),
            "fortran_order" => fortran = Some(p.boolean()?),
            "shape" => shape = Some(p.tuple()?),
            other => return Err(HeaderError::UnexpectedKey(excerpt(other.as_bytes()))),
        }
        p.skip_space();
        if !p.eat(b',') {
            p.expect(b'}')?;
            break;
        }
    }
    Ok(Header {
        descr: descr.ok_or(HeaderError::Missing("'descr'"))?,
        fortran_order: fortran.ok_or(HeaderError::Missing("'fortran_order'"))?,
        shape: shape.ok_or(HeaderError::Missing("'shape'"))?,
    })
}

/// A cursor over the header literal.
struct Literal<'a> {
    s: &'a [u8],
    at: usize,
}

impl Literal<'_> {
    fn skip_space(&mut self) {
        while self.s.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip_space();
        if self.s.get(self.at) == Some(&c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), HeaderError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(HeaderError::Expected(char::from(c), self.at))
        }
    }

    fn string(&mut self) -> Result<String, HeaderError> {
        self.skip_space();
        let quote = match self.s.get(self.at) {
            Some(&q @ (b'\'' | b'"')) => q,
            _ => return Err(HeaderError::NoString(self.at)),
        };
        let start = self.at + 1;
        let len = self.s[start..]
            .iter()
            .position(|&c| c == quote)
            .ok_or(HeaderError::Unterminated)?;
        self.at = start + len + 1;
        Ok(String::from_utf8_lossy(&self.s[start..start + len]).into_owned())
    }

    fn boolean(&mut self) -> Result<bool, HeaderError> {
        for (word, value) in [(&b"True"[..], true), (b"False", false)] {
            if self.s[self.at..].starts_with(word) {
                self.at += word.len();
                return Ok(value);
            }
        }
        Err(HeaderError::NoBoolean(self.at))
    }

    fn tuple(&mut self) -> Result<Vec<usize>, HeaderError> {
        self.expect(b'(')?;
        let mut items = Vec::new();
        loop {
            if self.eat(b')') {
                return Ok(items);
            }
            let digits = self.s[self.at..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            let text = std::str::from_utf8(&self.s[self.at..self.at + digits]).unwrap_or("");
            items.push(text.parse().map_err(|_| HeaderError::NoDimension(self.at))?);
            self.at += digits;
            // Python 2 wrote long integers with an L suffix.
            if self.s.get(self.at) == Some(&b'L') {
                self.at += 1;
            }
            if !self.eat(b',') {
                self.expect(b')')?;
                return Ok(items);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    /// The first 10 bytes, then the header text padded to 128 bytes in all.
    fn numpy_v1(dict: &str, data: &[u8]) -> Vec<u8> {
        let mut out = b"\x93NUMPY\x01\x00\x76\x00".to_vec();
        out.extend_from_slice(dict.as_bytes());
        out.resize(127, b' ');
        out.push(b'\n');
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn encode_matches_np_save() {
        // Expected bytes from `python_reference.py codecs` (np.save, numpy 2.x):
        // a 128-byte header, growth padding included.
        let two_d = Array::new(vec![2, 2], vec![1.5, 2.0, 3.0, 4.25]).unwrap();
        let want = numpy_v1(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }",
            b"\x00\x00\x00\x00\x00\x00\xf8?\x00\x00\x00\x00\x00\x00\x00@\
              \x00\x00\x00\x00\x00\x00\x08@\x00\x00\x00\x00\x00\x00\x11@",
        );
        assert_eq!(encode(&two_d), want);
        let one_d = Array::vector(vec![1.0, 2.5, 3.0]);
        let want = numpy_v1(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }",
            b"\x00\x00\x00\x00\x00\x00\xf0?\x00\x00\x00\x00\x00\x00\x04@\x00\x00\x00\x00\x00\x00\x08@",
        );
        assert_eq!(encode(&one_d), want);
    }

    #[test]
    fn header_alignment_and_scalar() {
        // np.save(f, np.array(7.5)) is 136 bytes: no growth padding for a 0-d
        // shape, but 10 + 57 header bytes still round up to 128.
        let bytes = encode(&Array::scalar(7.5));
        assert_eq!(
            bytes,
            numpy_v1(
                "{'descr': '<f8', 'fortran_order': False, 'shape': (), }",
                &7.5f64.to_le_bytes()
            )
        );
        assert_eq!(decode(&bytes).unwrap(), Array::scalar(7.5));
        // np.save(f, np.ones([1] * 30)) is 200 bytes, header length 0xb6.
        let big = Array::new(vec![1; 30], vec![1.0]).unwrap();
        let bytes = encode(&big);
        assert_eq!((bytes.len(), &bytes[6..10]), (200, &b"\x01\x00\xb6\x00"[..]));
        assert_eq!(decode(&bytes).unwrap(), big);
    }

    #[test]
    fn decode_numpy_dtypes() {
        // np.save of np.array([[1, 2, 3], [4, 5, 250]], dtype=...).
        let want = Array::new(vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 250.0]).unwrap();
        let dict = |d: &str| format!("{{'descr': '{d}', 'fortran_order': False, 'shape': (2, 3), }}");
        let f4 = b"\x00\x00\x80?\x00\x00\x00@\x00\x00@@\x00\x00\x80@\x00\x00\xa0@\x00\x00zC";
        assert_eq!(decode(&numpy_v1(&dict("<f4"), f4)).unwrap(), want);
        let i4 = b"\x01\x00\x00\x00\x02\x00\x00\x00\x03\x00\x00\x00\x04\x00\x00\x00\x05\x00\x00\x00\xfa\x00\x00\x00";
        assert_eq!(decode(&numpy_v1(&dict("<i4"), i4)).unwrap(), want);
        let i8: Vec<u8> = want.data.iter().flat_map(|&x| (x as i64).to_le_bytes()).collect();
        assert_eq!(decode(&numpy_v1(&dict("<i8"), &i8)).unwrap(), want);
        assert_eq!(
            decode(&numpy_v1(&dict("|u1"), b"\x01\x02\x03\x04\x05\xfa")).unwrap(),
            want
        );
        let be: Vec<u8> = want.data.iter().flat_map(|&x| x.to_be_bytes()).collect();
        assert_eq!(decode(&numpy_v1(&dict(">f8"), &be)).unwrap(), want);
        let i2: Vec<u8> = [-1i16, 2, 3, 4, 5, 250]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        assert_eq!(decode(&numpy_v1(&dict("<i2"), &i2)).unwrap().data[0], -1.0);
    }

    #[test]
    fn decode_fortran_order() {
        // [[1, 2, 3], [4, 5, 6]] stored column by column.
        let data: Vec<u8> = [1.0f64, 4.0, 2.0, 5.0, 3.0, 6.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let body = numpy_v1(
            "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }",
            &data,
        );
        let a = decode(&body).unwrap();
        assert_eq!(a.data, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    }

    #[test]
    fn decode_version_2_and_3() {
        let mut v1 = encode(&Array::vector(vec![1.0, 2.0]));
        // Same header text under a 4-byte length: versions 2.0 and 3.0.
        let header_len = u32::from(u16::from_le_bytes([v1[8], v1[9]]));
        for major in [2u8, 3] {
            let mut body = b"\x93NUMPY".to_vec();
            body.extend_from_slice(&[major, 0]);
            body.extend_from_slice(&header_len.to_le_bytes());
            body.extend_from_slice(&v1[10..]);
            assert_eq!(decode(&body).unwrap(), Array::vector(vec![1.0, 2.0]));
        }
        v1[6] = 4;
        assert!(decode(&v1).unwrap_err().message.contains("version 4.0"));
    }

    #[test]
    fn malformed_bodies_are_400() {
        let ok = encode(&Array::vector(vec![1.0, 2.0]));
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"1,2,3".to_vec(), "magic"),
            (ok[..7].to_vec(), "version"),
            (ok[..50].to_vec(), "header claims"),
            (ok[..ok.len() - 1].to_vec(), "needs 16 bytes of data but the body has 15"),
            ([&ok[..], b"x"].concat(), "needs 16 bytes"),
            (numpy_v1("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", b""), "pickles"),
            (numpy_v1("{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }", b""), "not supported"),
            (numpy_v1("{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (1,), }", b""), "simple dtypes"),
            (numpy_v1("{'descr': '<f8', 'shape': (1,), }", b""), "'fortran_order' is missing"),
            (numpy_v1("{'descr': '<f8', 'fortran_order': False, 'shape': (-1,), }", b""), "dimension"),
            (numpy_v1("{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999, 99999999999, 99999999999), }", b""), "more elements than"),
            // A multi-byte first character once panicked (a slice inside it).
            (numpy_v1("{'descr': '\u{e9}f8', 'fortran_order': False, 'shape': (1,), }", b""), "not supported"),
            (numpy_v1("{'descr': '', 'fortran_order': False, 'shape': (1,), }", b""), "not supported"),
            // No values, but a trillion rows for the encoders to write.
            (numpy_v1("{'descr': '<f8', 'fortran_order': True, 'shape': (1000000000000, 0, 99999999999999), }", b""), "more elements than"),
        ];
        for (body, want) in cases {
            let e = decode(&body).unwrap_err();
            assert_eq!(e.kind, ErrorKind::BadRequest);
            assert!(e.message.contains(want), "{want}: {}", e.message);
        }
    }

    #[test]
    fn more_dimensions_than_numpy_allows_are_400() {
        // One value, but a dimension for every recursion of the encoders.
        for (dims, ok) in [(64, true), (65, false), (100_000, false)] {
            let header = format!(
                "{{'descr': '<f8', 'fortran_order': False, 'shape': ({}), }}\n",
                "1,".repeat(dims)
            );
            let mut body = b"\x93NUMPY\x02\x00".to_vec();
            body.extend_from_slice(&(header.len() as u32).to_le_bytes());
            body.extend_from_slice(header.as_bytes());
            body.extend_from_slice(&2.5f64.to_le_bytes());
            match decode(&body) {
                Ok(a) => assert!(ok && a.shape.len() == dims && a.data == [2.5]),
                Err(e) => assert!(
                    !ok && e.message.contains(&format!("{dims} dimensions")),
                    "{}",
                    e.message
                ),
            }
        }
    }

    #[test]
    fn header_errors_say_where() {
        let e = parse_header("{'descr': '<f8', 'fortran_order': False}").unwrap_err();
        assert_eq!(e, HeaderError::Missing("'shape'"));
        assert_eq!(e.to_string(), "'shape' is missing");
        let e = parse_header("{'descr': '<f8', 'fortran_order': Maybe}").unwrap_err();
        assert_eq!(e, HeaderError::NoBoolean(34));
        assert_eq!(e.to_string(), "expected True or False at offset 34");
    }

    #[test]
    fn header_literal_variants() {
        let h = parse_header("{\"descr\":\"<f8\",\"shape\":(2L, 3L),\"fortran_order\":False}").unwrap();
        assert_eq!(
            h,
            Header {
                descr: "<f8".into(),
                fortran_order: false,
                shape: vec![2, 3]
            }
        );
    }
}
