//! The Open Inference Protocol's tensors (`modelstage_contract::oip`, which
//! the server uses too), and their conversions to and from the [`Array`]
//! the CSV, JSON and NPY codecs produce.

pub use modelstage_contract::oip::*;

use super::Array;
use crate::excerpt::quoted;
use crate::StageError;

/// The tensor as an [`Array`] of `f64`, as the other codecs produce it.
/// `BYTES` elements must be numbers in text (`"0.5"`); anything else is a
/// 400 naming the tensor and the element.
pub fn to_array(tensor: &Tensor) -> Result<Array, StageError> {
    let data = match &tensor.values {
        Values::Bytes(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                std::str::from_utf8(item)
                    .ok()
                    .and_then(|s| s.trim().parse::<f64>().ok())
                    .ok_or_else(|| {
                        StageError::bad_request(format!(
                            "input {}, element {i}: {} is not a number",
                            quoted(tensor.name.as_bytes()),
                            quoted(item)
                        ))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?,
        values => (0..values.len()).filter_map(|i| values.number(i)).collect(),
    };
    Array::new(tensor.shape.clone(), data)
}

/// An FP64 tensor of an array's shape and values.
pub fn from_array(name: impl Into<String>, array: &Array) -> Tensor {
    Tensor {
        name: name.into(),
        datatype: Datatype::Fp64,
        shape: array.shape.clone(),
        values: Values::Float(array.data.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_array_reads_numbers_of_every_kind() {
        let t = Tensor::new("x", Datatype::Int32, vec![2], Values::Signed(vec![-1, 2])).unwrap();
        assert_eq!(to_array(&t).unwrap(), Array::vector(vec![-1.0, 2.0]));
        let t = Tensor::new("b", Datatype::Bool, vec![1, 2], Values::Bool(vec![true, false])).unwrap();
        assert_eq!(to_array(&t).unwrap().data, vec![1.0, 0.0]);
        let t = Tensor::new(
            "s",
            Datatype::Bytes,
            vec![2],
            Values::Bytes(vec![b"0.5".to_vec(), b"M".to_vec()]),
        )
        .unwrap();
        let e = to_array(&t).unwrap_err();
        assert!(
            e.message
                .contains("input \"s\", element 1: \"M\" is not a number"),
            "{}",
            e.message
        );
        let back = from_array("y", &Array::vector(vec![1.0]));
        assert_eq!((back.datatype, back.shape), (Datatype::Fp64, vec![1]));
    }
}
