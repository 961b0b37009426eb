//! `application/json`: `np.array(json.loads(body))` in, `json.dumps(a.tolist())` out.
//!
//! Decoding reads the document straight into the array with a small parser
//! for "nested lists of numbers" (no intermediate `serde_json::Value`, whose
//! per-number allocations would dominate for large batches), checks the
//! nesting is regular as it goes, and, like Python's `json.loads`, accepts the
//! `NaN` / `Infinity` this module writes, so a pipeline's next stage can read
//! what the previous one wrote.

use super::Array;
use crate::python::write_float as write_repr;
use crate::StageError;

/// Appends a number as Python's `json.dumps` writes a float: `repr`, and
/// `NaN`, `Infinity`, `-Infinity` for the values strict JSON cannot hold.
pub fn write_float(out: &mut Vec<u8>, x: f64) {
    if x.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if x.is_infinite() {
        out.extend_from_slice(if x > 0.0 { b"Infinity" } else { b"-Infinity" });
    } else {
        write_repr(out, x);
    }
}

/// Appends `data` of `shape` as nested JSON lists with `", "` separators (a
/// bare number for a 0-d shape). `data` must hold the product of `shape`.
pub fn write_array(out: &mut Vec<u8>, shape: &[usize], data: &[f64]) {
    let Some((&len, inner_shape)) = shape.split_first() else {
        if let Some(&x) = data.first() {
            write_float(out, x);
        }
        return;
    };
    let inner = Array::size_of_shape(inner_shape).unwrap_or(0);
    out.push(b'[');
    for i in 0..len {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        let start = i * inner;
        write_array(out, inner_shape, data.get(start..start + inner).unwrap_or(&[]));
    }
    out.push(b']');
}

/// The whole array as one JSON document.
pub fn encode(array: &Array) -> Vec<u8> {
    let mut out = Vec::with_capacity(array.data.len() * 20 + 2);
    write_array(&mut out, &array.shape, &array.data);
    out
}

/// Decodes one JSON document: a number, or nested lists of numbers whose
/// lists at the same depth all have the same length. Python's `NaN`,
/// `Infinity` and `-Infinity` are accepted, as `json.loads` accepts them.
pub fn decode(body: &[u8]) -> Result<Array, StageError> {
    let mut builder = Builder::default();
    let shape =
        parse_document(body, &mut builder).map_err(|e| StageError::bad_request(format!("JSON body: {e}")))?;
    Ok(Array {
        shape,
        data: builder.data,
    })
}

/// The deepest nesting accepted; deeper documents are refused rather than
/// risking the stack.
const MAX_DEPTH: usize = super::MAX_DIMS;

/// Parses one whole document (surrounding white space allowed) into
/// `builder.data` and returns its shape. Shared with the JSON Lines decoder,
/// which calls it once per line with the same builder.
pub(crate) fn parse_document(text: &[u8], builder: &mut Builder) -> Result<Vec<usize>, JsonError> {
    builder.lengths.clear();
    builder.leaf_depth = None;
    builder.path.clear();
    let mut p = Parser {
        text,
        at: 0,
        b: builder,
    };
    p.value(0)?;
    p.skip_space();
    if p.at < text.len() {
        return Err(p.error(Problem::TrailingText));
    }
    Ok(p.b.shape())
}

/// Where and why a document is not a number or regular nested lists of
/// numbers; the decoders make it the `StageError` (a 400) of their body.
#[derive(Debug, thiserror::Error)]
#[error("{problem} at line {line} column {column}")]
pub(crate) struct JsonError {
    problem: Problem,
    /// 1-based.
    line: usize,
    /// 1-based.
    column: usize,
}

/// What is wrong at the position of a [`JsonError`]. The element's
/// location (`element [3][1]`) is written only for an error.
#[derive(Debug, thiserror::Error)]
enum Problem {
    #[error("unexpected text after the end of the document (one JSON value per body)")]
    TrailingText,
    #[error("unexpected end of the body; expected a number or a list")]
    End,
    #[error("unexpected end of the body inside a list")]
    EndInList,
    #[error("{location} is {found}; expected a number or a list")]
    NotANumber { location: String, found: &'static str },
    #[error("unexpected character {0:?}")]
    Character(char),
    #[error("expected ',' or ']' but found {0:?}")]
    NoSeparator(char),
    #[error("malformed number")]
    MalformedNumber,
    #[error("lists nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("{location} is a number where the other elements at that depth are lists (ragged array)")]
    NumberBesideLists { location: String },
    #[error("{location} is a list where the other elements at that depth are numbers (ragged array)")]
    ListBesideNumbers { location: String },
    #[error(
        "{location} has {len} elements but the lists before it at that depth have {expected} (ragged array)"
    )]
    RaggedLength {
        location: String,
        len: usize,
        expected: usize,
    },
}

/// Collects the numbers of a document and the length of its lists at each
/// depth, which together make the shape.
#[derive(Debug, Default)]
pub(crate) struct Builder {
    /// Length of the lists at each depth, known once the first list there ends.
    lengths: Vec<Option<usize>>,
    /// The depth at which numbers sit, known once the first number is seen.
    leaf_depth: Option<usize>,
    /// Index of the element being read at each depth, for error messages.
    path: Vec<usize>,
    pub(crate) data: Vec<f64>,
}

impl Builder {
    /// `element [3][1]`: where in the document the reader is.
    fn location(&self) -> String {
        if self.path.is_empty() {
            return "the top-level value".to_string();
        }
        let mut s = String::from("element ");
        for i in &self.path {
            s.push_str(&format!("[{i}]"));
        }
        s
    }

    /// The shape of the complete document: the list length at each depth
    /// (every depth down to the numbers has seen a list end by then).
    fn shape(&self) -> Vec<usize> {
        self.lengths.iter().map(|l| l.unwrap_or(0)).collect()
    }
}

/// A cursor over the document.
struct Parser<'t, 'b> {
    text: &'t [u8],
    at: usize,
    b: &'b mut Builder,
}

impl Parser<'_, '_> {
    fn skip_space(&mut self) {
        while self.at < self.text.len() && matches!(self.text[self.at], b' ' | b'\t' | b'\n' | b'\r') {
            self.at += 1;
        }
    }

    /// The problem at the line and column (1-based) of the cursor.
    fn error(&self, problem: Problem) -> JsonError {
        let before = &self.text[..self.at.min(self.text.len())];
        let line = before.iter().filter(|&&c| c == b'\n').count() + 1;
        let column = before.iter().rev().take_while(|&&c| c != b'\n').count() + 1;
        JsonError {
            problem,
            line,
            column,
        }
    }

    fn not_a_number(&self, found: &'static str) -> JsonError {
        self.error(Problem::NotANumber {
            location: self.b.location(),
            found,
        })
    }

    fn value(&mut self, depth: usize) -> Result<(), JsonError> {
        self.skip_space();
        match self.text.get(self.at) {
            None => Err(self.error(Problem::End)),
            Some(b'[') => self.list(depth),
            Some(b'-' | b'0'..=b'9' | b'N' | b'I') => {
                let x = self.number()?;
                self.leaf(depth, x)
            }
            Some(b'"') => Err(self.not_a_number("a string")),
            Some(b't' | b'f') => Err(self.not_a_number("a boolean")),
            Some(b'n') => Err(self.not_a_number("null")),
            Some(b'{') => Err(self.not_a_number("an object")),
            Some(&c) => Err(self.error(Problem::Character(char::from(c)))),
        }
    }

    /// Records a number found at `depth`, checking numbers sit at one depth.
    fn leaf(&mut self, depth: usize, x: f64) -> Result<(), JsonError> {
        match self.b.leaf_depth {
            None if self.b.lengths.len() <= depth => self.b.leaf_depth = Some(depth),
            Some(leaf) if leaf == depth => {}
            _ => {
                return Err(self.error(Problem::NumberBesideLists {
                    location: self.b.location(),
                }))
            }
        }
        self.b.data.push(x);
        Ok(())
    }

    fn list(&mut self, depth: usize) -> Result<(), JsonError> {
        if depth >= MAX_DEPTH {
            return Err(self.error(Problem::TooDeep));
        }
        if self.b.leaf_depth.is_some_and(|leaf| depth >= leaf) {
            return Err(self.error(Problem::ListBesideNumbers {
                location: self.b.location(),
            }));
        }
        self.at += 1; // '['
        self.b.path.push(0);
        let mut len = 0;
        self.skip_space();
        if self.text.get(self.at) == Some(&b']') {
            self.at += 1;
        } else {
            loop {
                self.value(depth + 1)?;
                len += 1;
                self.skip_space();
                match self.text.get(self.at) {
                    Some(b',') => {
                        self.at += 1;
                        if let Some(last) = self.b.path.last_mut() {
                            *last = len;
                        }
                    }
                    Some(b']') => {
                        self.at += 1;
                        break;
                    }
                    None => return Err(self.error(Problem::EndInList)),
                    Some(&c) => return Err(self.error(Problem::NoSeparator(char::from(c)))),
                }
            }
        }
        self.b.path.pop();
        if self.b.lengths.len() <= depth {
            self.b.lengths.resize(depth + 1, None);
        }
        match self.b.lengths[depth] {
            None => self.b.lengths[depth] = Some(len),
            Some(expected) if expected == len => {}
            Some(expected) => {
                return Err(self.error(Problem::RaggedLength {
                    location: self.b.location(),
                    len,
                    expected,
                }))
            }
        }
        Ok(())
    }

    /// A JSON number (`-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`) or
    /// one of Python's `NaN`, `Infinity`, `-Infinity`.
    fn number(&mut self) -> Result<f64, JsonError> {
        let rest = &self.text[self.at..];
        for (word, x) in [
            (&b"NaN"[..], f64::NAN),
            (b"Infinity", f64::INFINITY),
            (b"-Infinity", f64::NEG_INFINITY),
        ] {
            if rest.starts_with(word) {
                self.at += word.len();
                return Ok(x);
            }
        }
        let len = json_number_len(rest).ok_or_else(|| self.error(Problem::MalformedNumber))?;
        let token = std::str::from_utf8(&rest[..len]).unwrap_or("");
        let x = token
            .parse::<f64>()
            .map_err(|_| self.error(Problem::MalformedNumber))?;
        self.at += len;
        Ok(x)
    }
}

/// The length of the JSON number at the start of `s`, if one is there.
fn json_number_len(s: &[u8]) -> Option<usize> {
    let digits = |from: usize| {
        s[from.min(s.len())..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    let mut i = usize::from(s.first() == Some(&b'-'));
    match s.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i += digits(i),
        _ => return None,
    }
    if s.get(i) == Some(&b'.') {
        let n = digits(i + 1);
        if n == 0 {
            return None;
        }
        i += 1 + n;
    }
    if matches!(s.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(s.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let n = digits(i);
        if n == 0 {
            return None;
        }
        i += n;
    }
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn encode_matches_json_dumps() {
        // Expected text from `python_reference.py codecs`.
        let two_d = Array::new(vec![2, 2], vec![1.5, 2.0, 3.0, 4.25]).unwrap();
        assert_eq!(encode(&two_d), b"[[1.5, 2.0], [3.0, 4.25]]");
        assert_eq!(encode(&Array::vector(vec![1.0, 2.5, 3.0])), b"[1.0, 2.5, 3.0]");
        let special = Array::vector(vec![f64::NAN, f64::INFINITY, -f64::INFINITY, 1e-05, 1e16, -0.0]);
        assert_eq!(
            encode(&special),
            b"[NaN, Infinity, -Infinity, 1e-05, 1e+16, -0.0]"
        );
        assert_eq!(encode(&Array::scalar(7.5)), b"7.5");
        // numpy float32 [0.1, 0.2] reaches json.dumps as doubles.
        let widened = Array::vector(vec![f64::from(0.1f32), f64::from(0.2f32)]);
        assert_eq!(encode(&widened), b"[0.10000000149011612, 0.20000000298023224]");
        assert_eq!(encode(&Array::new(vec![2, 0], vec![]).unwrap()), b"[[], []]");
        assert_eq!(encode(&Array::new(vec![0, 3], vec![]).unwrap()), b"[]");
    }

    #[test]
    fn decode_shapes() {
        let a = decode(b"[[1, 2.5], [3, -4e2]]").unwrap();
        assert_eq!((a.shape, a.data), (vec![2, 2], vec![1.0, 2.5, 3.0, -400.0]));
        assert_eq!(decode(b" 7.5 ").unwrap(), Array::scalar(7.5));
        assert_eq!(decode(b"[]").unwrap(), Array::vector(vec![]));
        assert_eq!(decode(b"[[], []]").unwrap().shape, vec![2, 0]);
        assert_eq!(decode(b"[[[1], [2]]]").unwrap().shape, vec![1, 2, 1]);
    }

    #[test]
    fn ragged_and_wrong_types_are_400_with_location() {
        let cases: &[(&[u8], &str)] = &[
            (b"[[1, 2], [3]]", "element [1] has 1 elements"),
            (b"[[1], 2]", "element [1] is a number"),
            (b"[1, [2]]", "element [1] is a list"),
            (b"[[], [1]]", "element [1] has 1 elements"),
            (b"[1, \"a\"]", "element [1] is a string"),
            (b"[[1, null]]", "element [0][1] is null"),
            (b"[true]", "element [0] is a boolean"),
            (b"{\"a\": 1}", "the top-level value is an object"),
            (
                b"[1, 2] [3]",
                "unexpected text after the end of the document (one JSON value per body) at line 1 column 8",
            ),
            (b"", "unexpected end of the body"),
            (b"[1, 2", "unexpected end of the body inside a list"),
            (b"[1,\n 2,\n x]", "unexpected character 'x' at line 3 column 2"),
            (b"[1 2]", "expected ',' or ']' but found '2'"),
            (b"[01]", "expected ',' or ']' but found '1'"),
            (b"[1.]", "malformed number"),
            (b"[.5]", "unexpected character '.'"),
            (b"[1e]", "malformed number"),
            (b"[+1]", "unexpected character '+'"),
            (b"[Nan]", "malformed number"),
        ];
        for (body, want) in cases {
            let e = decode(body).unwrap_err();
            assert_eq!(e.kind, ErrorKind::BadRequest);
            assert!(
                e.message.contains(want),
                "{:?}: {}",
                String::from_utf8_lossy(body),
                e.message
            );
        }
    }

    #[test]
    fn errors_carry_the_problem_and_its_position() {
        let e = parse_document(b"[[1],\n 2]", &mut Builder::default()).unwrap_err();
        assert!(
            matches!((&e.problem, e.line, e.column), (Problem::NumberBesideLists { location }, 2, 3) if location == "element [1]"),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "element [1] is a number where the other elements at that depth are lists (ragged array) at line 2 column 3"
        );
    }

    #[test]
    fn python_non_finite_words_round_trip() {
        // json.loads("[NaN, Infinity, -Infinity, -0.0, 1E+2, 0]") as Python reads it.
        let a = decode(b"[NaN, Infinity, -Infinity, -0.0, 1E+2, 0]").unwrap();
        assert!(a.data[0].is_nan());
        assert_eq!(&a.data[1..3], &[f64::INFINITY, f64::NEG_INFINITY]);
        assert!(a.data[3] == 0.0 && a.data[3].is_sign_negative());
        assert_eq!(&a.data[4..], &[100.0, 0.0]);
        let special = Array::vector(vec![f64::NAN, f64::INFINITY, 1e-05]);
        let back = decode(&encode(&special)).unwrap();
        assert_eq!(encode(&back), encode(&special));
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let body = "[".repeat(100_000);
        let e = decode(body.as_bytes()).unwrap_err();
        assert!(e.message.contains("nested deeper than 64"), "{}", e.message);
    }
}
