//! Input tensors as CSV records, the form every SageMaker-style stage reads:
//! the first dimension is the records (a tensor of one or no dimension is one
//! record), the others are flattened into columns, and several inputs are
//! joined column by column in order, so `sex` (BYTES `[1, 1]`) and
//! `measurements` (FP32 `[1, 7]`) make the featurizer's eight-column record.
//!
//! Numbers are written so that they read back as the client's values: FP64
//! as Python's `repr`, FP32 and FP16 with the fewest digits that identify
//! the value in that type (`0.455`, not `0.45500001311302185`), integers
//! exactly, BOOL as `1` and `0`. BYTES elements must be UTF-8 text; they are
//! quoted as Python's `csv` quotes (only when they hold `,`, `"` or a line
//! break), so a categorical column such as `M` arrives as `M`.

use super::datatype::Datatype;
use super::error::{InputProblem, OipError};
use super::tensor::{Tensor, Values};

/// The records and columns of a tensor.
fn layout(tensor: &Tensor) -> (usize, usize) {
    match tensor.shape.split_first() {
        Some((&rows, rest)) if !rest.is_empty() => (rows, rest.iter().product()),
        Some((&columns, _)) => (1, columns),
        None => (1, 1),
    }
}

/// The CSV body of the inputs, one line per record.
pub fn to_csv(inputs: &[&Tensor]) -> Result<Vec<u8>, OipError> {
    let Some(first) = inputs.first() else {
        return Ok(Vec::new());
    };
    let (rows, _) = layout(first);
    let mut columns = Vec::with_capacity(inputs.len());
    for input in inputs {
        let (r, c) = layout(input);
        if r != rows {
            return Err(OipError::Input {
                name: input.name.clone(),
                problem: InputProblem::RecordsMismatch {
                    records: r,
                    shape: input.shape.clone(),
                    first: first.name.clone(),
                    rows,
                },
            });
        }
        if let Values::Bytes(items) = &input.values {
            if let Some(i) = items.iter().position(|item| std::str::from_utf8(item).is_err()) {
                return Err(OipError::Input {
                    name: input.name.clone(),
                    problem: InputProblem::NotUtf8 {
                        index: i,
                        bytes: items[i].clone(),
                    },
                });
            }
        }
        columns.push(c);
    }
    let width: usize = columns.iter().sum();
    let mut out = Vec::with_capacity(rows * (width * 12 + 1));
    for row in 0..rows {
        let mut first_cell = true;
        for (input, &c) in inputs.iter().zip(&columns) {
            for i in row * c..(row + 1) * c {
                if !first_cell {
                    out.push(b',');
                }
                first_cell = false;
                write_cell(&mut out, input.datatype, &input.values, i);
            }
        }
        out.push(b'\n');
    }
    Ok(out)
}

fn write_cell(out: &mut Vec<u8>, datatype: Datatype, values: &Values, i: usize) {
    match values {
        Values::Bool(v) => out.push(if v[i] { b'1' } else { b'0' }),
        Values::Signed(v) => out.extend_from_slice(v[i].to_string().as_bytes()),
        Values::Unsigned(v) => out.extend_from_slice(v[i].to_string().as_bytes()),
        Values::Float(v) => write_float(out, datatype, v[i]),
        Values::Bytes(v) => write_text(out, &v[i]),
    }
}

/// A float with the fewest digits that identify it in its own type.
pub(crate) fn write_float(out: &mut Vec<u8>, datatype: Datatype, x: f64) {
    if datatype != Datatype::Fp64 && x.is_finite() {
        let mut buf = ryu::Buffer::new();
        out.extend_from_slice(buf.format_finite(x as f32).as_bytes());
    } else {
        crate::python::write_float(out, x);
    }
}

fn write_text(out: &mut Vec<u8>, text: &[u8]) {
    if text.iter().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
        out.push(b'"');
        for &b in text {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str, datatype: Datatype, shape: Vec<usize>, values: Values) -> Tensor {
        Tensor::new(name, datatype, shape, values).unwrap()
    }

    #[test]
    fn the_blog_record_from_two_inputs() {
        let sex = t(
            "sex",
            Datatype::Bytes,
            vec![1, 1],
            Values::Bytes(vec![b"M".to_vec()]),
        );
        let measures = [0.455, 0.365, 0.095, 0.514, 0.2245, 0.101, 0.15];
        let fp32 = t(
            "m",
            Datatype::Fp32,
            vec![1, 7],
            Values::Float(measures.iter().map(|&x| f64::from(x as f32)).collect()),
        );
        assert_eq!(
            to_csv(&[&sex, &fp32]).unwrap(),
            b"M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15\n"
        );
        let fp64 = t("m", Datatype::Fp64, vec![1, 7], Values::Float(measures.to_vec()));
        assert_eq!(
            to_csv(&[&sex, &fp64]).unwrap(),
            b"M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15\n"
        );
    }

    #[test]
    fn rows_columns_and_kinds() {
        let a = t(
            "a",
            Datatype::Int64,
            vec![2, 2],
            Values::Signed(vec![1, -2, i64::MAX, 0]),
        );
        let b = t("b", Datatype::Bool, vec![2], Values::Bool(vec![true, false]));
        // A 1-D input is one record: two columns here, against a's two records.
        let e = to_csv(&[&a, &b]).unwrap_err();
        assert!(
            matches!(
                &e,
                OipError::Input {
                    problem: InputProblem::RecordsMismatch {
                        records: 1,
                        rows: 2,
                        ..
                    },
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("input \"b\" has 1 records"), "{e}");
        let b = t("b", Datatype::Bool, vec![2, 1], Values::Bool(vec![true, false]));
        assert_eq!(to_csv(&[&a, &b]).unwrap(), b"1,-2,1\n9223372036854775807,0,0\n");
        let s = t(
            "s",
            Datatype::Bytes,
            vec![3],
            Values::Bytes(vec![b"a,b".to_vec(), b"q\"".to_vec(), b"x\ny".to_vec()]),
        );
        assert_eq!(to_csv(&[&s]).unwrap(), b"\"a,b\",\"q\"\"\",\"x\ny\"\n");
        let bad = t("s", Datatype::Bytes, vec![1], Values::Bytes(vec![vec![0xff]]));
        assert!(to_csv(&[&bad])
            .unwrap_err()
            .to_string()
            .contains("input \"s\", element 0: \"\\xff\" is not UTF-8"));
        let scalar = t("x", Datatype::Fp64, vec![], Values::Float(vec![1e-5]));
        assert_eq!(to_csv(&[&scalar]).unwrap(), b"1e-05\n");
    }
}
