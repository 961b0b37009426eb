//! `application/jsonlines`: one JSON document per line, each one element of
//! the first axis.
//!
//! Neither Python toolkit decodes or encodes this type by default (the SDK's
//! `JSONLinesSerializer` writes it); we follow the SDK's shape: line `i` is
//! `json.dumps(a[i].tolist())`, and a body of `n` lines of the same shape `s`
//! is the array of shape `[n, ...s]`.

use super::json::{parse_document, write_array, Builder};
use super::Array;
use crate::StageError;

/// Reads every non-blank line as a JSON document (a number, or regular nested
/// lists of numbers); all lines must have the same shape.
pub fn decode(body: &[u8]) -> Result<Array, StageError> {
    let mut builder = Builder::default();
    let mut line_shape: Option<(Vec<usize>, usize)> = None;
    let mut lines = 0;
    for (number, text) in body.split(|&c| c == b'\n').enumerate().map(|(i, t)| (i + 1, t)) {
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let shape = parse_document(text, &mut builder).map_err(|e| {
            StageError::bad_request(format!("JSON Lines body, line {number}: {e}")).at_record(lines)
        })?;
        match &line_shape {
            None => line_shape = Some((shape, number)),
            Some((first, first_line)) if *first != shape => {
                return Err(StageError::bad_request(format!(
                    "JSON Lines body, line {number}: shape {shape:?} differs from line {first_line}'s \
                     {first:?}; every line must hold the same number of values"
                ))
                .at_record(lines))
            }
            Some(_) => {}
        }
        lines += 1;
    }
    let Some((inner, _)) = line_shape else {
        return Err(StageError::bad_request(
            "the JSON Lines body is empty; send one JSON list of numbers per line",
        ));
    };
    let mut shape = vec![lines];
    shape.extend(inner);
    Array::new(shape, builder.data)
}

/// One line per element of the first axis, each as `json.dumps` writes it,
/// each ending with `\n`. A 0-d array has no lines to give and is refused.
pub fn encode(array: &Array) -> Result<Vec<u8>, StageError> {
    let Some((&rows, inner_shape)) = array.shape.split_first() else {
        return Err(super::shape_not_held(
            super::JSONLINES,
            "arrays with at least one dimension",
            &array.shape,
        ));
    };
    let inner = Array::size_of_shape(inner_shape).unwrap_or(0);
    let mut out = Vec::with_capacity(array.data.len() * 20 + rows);
    for i in 0..rows {
        let start = i * inner;
        write_array(
            &mut out,
            inner_shape,
            array.data.get(start..start + inner).unwrap_or(&[]),
        );
        out.push(b'\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn rows_round_trip() {
        let a = Array::new(vec![2, 2], vec![1.5, 2.0, 3.0, 4.25]).unwrap();
        let body = encode(&a).unwrap();
        assert_eq!(body, b"[1.5, 2.0]\n[3.0, 4.25]\n");
        assert_eq!(decode(&body).unwrap(), a);
        assert_eq!(encode(&Array::vector(vec![1.0, 2.5])).unwrap(), b"1.0\n2.5\n");
    }

    #[test]
    fn decode_tolerates_crlf_and_blank_lines() {
        let a = decode(b"[1, 2]\r\n\n  \n[3, 4]").unwrap();
        assert_eq!((a.shape, a.data), (vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]));
        assert_eq!(decode(b"[1]\n").unwrap().shape, vec![1, 1]);
    }

    #[test]
    fn errors_name_the_line() {
        let e = decode(b"[1, 2]\n[3]\n").unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadRequest);
        assert!(
            e.message.contains("line 2: shape [1] differs from line 1's [2]"),
            "{}",
            e.message
        );
        assert_eq!(e.record, Some(1));
        let e = decode(b"[1, 2]\n\n[3, \"x\"]\n").unwrap_err();
        assert!(
            e.message.contains("line 3: element [1] is a string"),
            "{}",
            e.message
        );
        assert_eq!(decode(b"\n \n").unwrap_err().kind, ErrorKind::BadRequest);
        assert_eq!(
            encode(&Array::scalar(1.0)).unwrap_err().kind,
            ErrorKind::UnsupportedAccept
        );
    }
}
