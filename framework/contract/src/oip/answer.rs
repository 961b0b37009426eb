//! A stage's answer as output tensors. The server asks stages for
//! `application/json` and reads what comes back:
//!
//! * numbers (or strings, or booleans) in regular nested lists: one tensor,
//!   named after the stage's single declared output, else `output-0`;
//! * an object: one tensor per key, and a key whose value is a list of
//!   records (`{"predictions": [{"score": 1.5}, ...]}`, the form of
//!   SageMaker's built-in algorithms) gives one tensor per record field,
//!   its first dimension the records;
//! * CSV numbers: one FP64 matrix; anything else: the body as one BYTES element.
//!
//! Numbers are FP64 (INT64 when every one is whole and written without a
//! point), unless the stage declares the output's datatype.

use serde_json::{Map, Value};

use super::datatype::{Datatype, Kind};
use super::error::OipError;
use super::signature::{TensorMeta, DEFAULT_OUTPUT};
use super::tensor::{check_float, Tensor, Values};
use crate::excerpt::quoted;

/// The output tensors of a stage's answer.
pub fn answer_tensors(
    body: &[u8],
    content_type: &str,
    declared: &[TensorMeta],
) -> Result<Vec<Tensor>, OipError> {
    let media = crate::media::media_type(content_type);
    let tensors = if media.eq_ignore_ascii_case("application/json") {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => from_object(map)?,
            Ok(value) => {
                let name = match declared {
                    [only] => only.name.clone(),
                    _ => DEFAULT_OUTPUT.to_string(),
                };
                vec![from_value(name, vec![value], true)?]
            }
            Err(_) => vec![raw(body)],
        }
    } else if media.eq_ignore_ascii_case("text/csv") {
        vec![csv_numbers(body).unwrap_or_else(|| raw(body))]
    } else {
        vec![raw(body)]
    };
    tensors
        .into_iter()
        .map(|t| match declared.iter().find(|d| d.name == t.name) {
            Some(d) => convert(t, d.datatype().unwrap_or(Datatype::Fp64)),
            None => Ok(t),
        })
        .collect()
}

/// A CSV answer of numbers (no quotes, every line as long) as one FP64
/// matrix; `None` for anything else.
fn csv_numbers(body: &[u8]) -> Option<Tensor> {
    let text = std::str::from_utf8(body).ok()?;
    let mut values = Vec::new();
    let (mut rows, mut columns) = (0, None);
    for line in text
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty())
    {
        let before = values.len();
        for field in line.split(',') {
            values.push(field.trim().parse::<f64>().ok()?);
        }
        let width = values.len() - before;
        if *columns.get_or_insert(width) != width {
            return None;
        }
        rows += 1;
    }
    Some(Tensor {
        name: DEFAULT_OUTPUT.to_string(),
        datatype: Datatype::Fp64,
        shape: vec![rows, columns?],
        values: Values::Float(values),
    })
}

/// The whole body as one BYTES element.
fn raw(body: &[u8]) -> Tensor {
    Tensor {
        name: DEFAULT_OUTPUT.to_string(),
        datatype: Datatype::Bytes,
        shape: vec![1],
        values: Values::Bytes(vec![body.to_vec()]),
    }
}

fn from_object(map: Map<String, Value>) -> Result<Vec<Tensor>, OipError> {
    let mut out = Vec::with_capacity(map.len());
    for (key, value) in map {
        match value {
            Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => {
                out.extend(from_records(items)?);
            }
            value => out.push(from_value(key, vec![value], true)?),
        }
    }
    Ok(out)
}

/// One tensor per field of a list of records.
fn from_records(records: Vec<Value>) -> Result<Vec<Tensor>, OipError> {
    let mut fields: Vec<(String, Vec<Value>)> = Vec::new();
    let n = records.len();
    for (i, record) in records.into_iter().enumerate() {
        let Value::Object(record) = record else {
            unreachable!("checked by the caller")
        };
        if i > 0 && record.len() != fields.len() {
            return Err(OipError::Answer(format!(
                "record {i} of the answer has other fields than record 0"
            )));
        }
        for (key, value) in record {
            if i == 0 {
                fields.push((key.clone(), Vec::with_capacity(n)));
            }
            match fields.iter_mut().find(|(k, _)| *k == key) {
                Some((_, values)) => values.push(value),
                None => {
                    return Err(OipError::Answer(format!(
                        "record {i} of the answer has the field {} that record 0 lacks",
                        quoted(key.as_bytes())
                    )))
                }
            }
        }
    }
    fields
        .into_iter()
        .map(|(key, values)| from_value(key, values, false))
        .collect()
}

/// A tensor from `items`: the one value of a whole document (`whole`), or
/// the values along its first dimension (one per record).
fn from_value(name: String, items: Vec<Value>, whole: bool) -> Result<Tensor, OipError> {
    let mut leaves = Vec::new();
    let top = if whole {
        items.into_iter().next().unwrap_or(Value::Null)
    } else {
        Value::Array(items)
    };
    let shape = shape_of(&top);
    if shape.len() > super::MAX_DIMS {
        return Err(OipError::Answer(format!(
            "the answer's {} is nested too deep",
            quoted(name.as_bytes())
        )));
    }
    flatten(top, 0, &shape, &mut leaves)
        .map_err(|e| OipError::Answer(format!("the answer's {}: {e}", quoted(name.as_bytes()))))?;
    let values = leaf_values(&leaves).ok_or_else(|| {
        OipError::Answer(format!(
            "the answer's {} mixes numbers, strings and booleans, or holds null",
            quoted(name.as_bytes())
        ))
    })?;
    let datatype = match &values {
        Values::Bool(_) => Datatype::Bool,
        Values::Signed(_) => Datatype::Int64,
        Values::Unsigned(_) => Datatype::Uint64,
        Values::Float(_) => Datatype::Fp64,
        Values::Bytes(_) => Datatype::Bytes,
    };
    Ok(Tensor {
        name,
        datatype,
        shape,
        values,
    })
}

/// The sizes along the first elements: the shape a regular nesting has.
fn shape_of(value: &Value) -> Vec<usize> {
    let mut shape = Vec::new();
    let mut current = value;
    while let Value::Array(items) = current {
        shape.push(items.len());
        match items.first() {
            Some(first) => current = first,
            None => break,
        }
    }
    shape
}

/// Lists of an answer that do not nest as its shape.
#[derive(Debug, thiserror::Error)]
#[error("its lists are ragged")]
struct Ragged;

/// Appends the leaves of `value`, checking that it nests as `shape`.
fn flatten(value: Value, depth: usize, shape: &[usize], leaves: &mut Vec<Value>) -> Result<(), Ragged> {
    match value {
        Value::Array(items) if shape.get(depth) == Some(&items.len()) => {
            for item in items {
                flatten(item, depth + 1, shape, leaves)?;
            }
            Ok(())
        }
        Value::Array(_) => Err(Ragged),
        leaf if depth == shape.len() => {
            leaves.push(leaf);
            Ok(())
        }
        _ => Err(Ragged),
    }
}

/// The leaves as one kind of value, `None` if they mix kinds.
fn leaf_values(leaves: &[Value]) -> Option<Values> {
    if leaves.iter().all(Value::is_boolean) {
        return Some(Values::Bool(leaves.iter().filter_map(Value::as_bool).collect()));
    }
    if leaves.iter().all(Value::is_string) {
        return Some(Values::Bytes(
            leaves
                .iter()
                .filter_map(Value::as_str)
                .map(|s| s.as_bytes().to_vec())
                .collect(),
        ));
    }
    if !leaves.iter().all(Value::is_number) {
        return None;
    }
    if leaves.iter().all(Value::is_i64) {
        return Some(Values::Signed(leaves.iter().filter_map(Value::as_i64).collect()));
    }
    if leaves.iter().all(Value::is_u64) {
        return Some(Values::Unsigned(
            leaves.iter().filter_map(Value::as_u64).collect(),
        ));
    }
    Some(Values::Float(leaves.iter().filter_map(Value::as_f64).collect()))
}

/// A tensor as the datatype the stage declared for it.
fn convert(t: Tensor, datatype: Datatype) -> Result<Tensor, OipError> {
    // Quoted only for an error: this runs on every answer.
    let name = || quoted(t.name.as_bytes());
    let bad = |i: usize, why: String| {
        OipError::Answer(format!(
            "the answer's {}, element {i}: {why}, but {datatype} is declared",
            name()
        ))
    };
    let n = t.values.len();
    let values = match (datatype.kind(), t.values) {
        (Kind::Float, values @ (Values::Float(_) | Values::Signed(_) | Values::Unsigned(_))) => {
            let mut out = Vec::with_capacity(n);
            for i in 0..n {
                let x = values.number(i).unwrap_or(f64::NAN);
                out.push(check_float(datatype, x).map_err(|e| bad(i, e.to_string()))?);
            }
            Values::Float(out)
        }
        (Kind::Signed, values @ (Values::Float(_) | Values::Signed(_) | Values::Unsigned(_))) => {
            let (min, max) = datatype.signed_range();
            let mut out = Vec::with_capacity(n);
            for i in 0..n {
                let x = values.number(i).unwrap_or(f64::NAN);
                let whole = match &values {
                    Values::Signed(v) => Some(v[i]),
                    _ if x.fract() == 0.0 && x >= min as f64 && x <= max as f64 => Some(x as i64),
                    _ => None,
                };
                match whole {
                    Some(w) if (min..=max).contains(&w) => out.push(w),
                    _ => {
                        return Err(bad(
                            i,
                            format!("{} is not a whole number in range", crate::python::float_repr(x)),
                        ))
                    }
                }
            }
            Values::Signed(out)
        }
        (Kind::Unsigned, values @ (Values::Float(_) | Values::Signed(_) | Values::Unsigned(_))) => {
            let max = datatype.unsigned_max();
            let mut out = Vec::with_capacity(n);
            for i in 0..n {
                let x = values.number(i).unwrap_or(f64::NAN);
                let whole = match &values {
                    Values::Unsigned(v) => Some(v[i]),
                    _ if x.fract() == 0.0 && x >= 0.0 && x <= max as f64 => Some(x as u64),
                    _ => None,
                };
                match whole {
                    Some(w) if w <= max => out.push(w),
                    _ => {
                        return Err(bad(
                            i,
                            format!("{} is not a whole number in range", crate::python::float_repr(x)),
                        ))
                    }
                }
            }
            Values::Unsigned(out)
        }
        (Kind::Bool, values @ Values::Bool(_)) | (Kind::Bytes, values @ Values::Bytes(_)) => values,
        (_, values) => {
            return Err(OipError::Answer(format!(
                "the answer's {} holds {} values, but {datatype} is declared",
                name(),
                match values {
                    Values::Bool(_) => "boolean",
                    Values::Bytes(_) => "string",
                    _ => "numeric",
                }
            )))
        }
    };
    Ok(Tensor {
        values,
        datatype,
        ..t
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(name: &str, datatype: &str) -> TensorMeta {
        TensorMeta {
            name: name.into(),
            datatype: datatype.into(),
            shape: vec![-1],
        }
    }

    #[test]
    fn records_give_a_tensor_per_field() {
        let body = br#"{"predictions": [{"score": 9.5, "predicted_label": 1.0}, {"score": [1, 2], "predicted_label": 0.0}]}"#;
        assert!(answer_tensors(body, "application/json", &[])
            .unwrap_err()
            .to_string()
            .contains("ragged"));
        let body = br#"{"predictions": [{"score": 9.5, "predicted_label": 1.0}, {"score": 2.25, "predicted_label": 0.0}]}"#;
        let t = answer_tensors(body, "application/json", &[]).unwrap();
        let names: Vec<&str> = t.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["predicted_label", "score"]);
        assert_eq!(t[1].values, Values::Float(vec![9.5, 2.25]));
        assert_eq!(t[1].shape, vec![2]);
        let body = br#"{"instances": [{"features": [1.5, 2.0, 3.0]}]}"#;
        let t = answer_tensors(body, "application/json", &[]).unwrap();
        assert_eq!((t[0].name.as_str(), t[0].shape.clone()), ("features", vec![1, 3]));
        let t = answer_tensors(br#"{"predictions": [{"score": 9.5}]}"#, "application/json", &[]).unwrap();
        assert_eq!(t[0].shape, vec![1]);
    }

    #[test]
    fn arrays_and_declared_datatypes() {
        let t = answer_tensors(b"[[1.0, 2.0], [3.0, 4.5]]", "application/json", &[]).unwrap();
        assert_eq!(
            (t[0].name.as_str(), t[0].datatype, t[0].shape.clone()),
            ("output-0", Datatype::Fp64, vec![2, 2])
        );
        let t = answer_tensors(b"[1, 2]", "application/json", &[meta("y", "INT8")]).unwrap();
        assert_eq!((t[0].name.as_str(), t[0].datatype), ("y", Datatype::Int8));
        assert_eq!(t[0].values, Values::Signed(vec![1, 2]));
        let t = answer_tensors(b"[1.0, 2.0]", "application/json", &[meta("y", "UINT16")]).unwrap();
        assert_eq!(t[0].values, Values::Unsigned(vec![1, 2]));
        let e = answer_tensors(b"[1.5]", "application/json", &[meta("y", "INT32")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("element 0: 1.5 is not a whole number"), "{e}");
        let e = answer_tensors(b"[1e300]", "application/json", &[meta("y", "FP32")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("out of the range of FP32"), "{e}");
        let t = answer_tensors(br#"["a", "b"]"#, "application/json", &[]).unwrap();
        assert_eq!(t[0].datatype, Datatype::Bytes);
        let t = answer_tensors(b"[true]", "application/json", &[]).unwrap();
        assert_eq!(t[0].datatype, Datatype::Bool);
        assert!(answer_tensors(b"[1, \"a\"]", "application/json", &[])
            .unwrap_err()
            .to_string()
            .contains("mixes"));
        assert!(answer_tensors(b"[[1], 2]", "application/json", &[])
            .unwrap_err()
            .to_string()
            .contains("ragged"));
        let t = answer_tensors(b"2.5", "application/json", &[]).unwrap();
        assert_eq!(t[0].shape, Vec::<usize>::new());
    }

    #[test]
    fn csv_and_other_answers() {
        let t = answer_tensors(b"1,2\n3,4\n", "text/csv", &[]).unwrap();
        assert_eq!((t[0].shape.clone(), t[0].datatype), (vec![2, 2], Datatype::Fp64));
        let t = answer_tensors(b"M,1\n", "text/csv", &[]).unwrap();
        assert_eq!(t[0].values, Values::Bytes(vec![b"M,1\n".to_vec()]));
        let t = answer_tensors(b"\x00\x01", "application/octet-stream", &[]).unwrap();
        assert_eq!((t[0].datatype, t[0].shape.clone()), (Datatype::Bytes, vec![1]));
    }
}
