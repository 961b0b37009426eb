//! A tensor of the Open Inference Protocol: a name, a datatype, a shape and
//! its elements in row-major order, and the conversions to and from the
//! SDK's [`Array`].

use super::datatype::{Datatype, Kind};
use crate::codecs::Array;
use crate::excerpt::quoted;
use crate::StageError;

/// The elements of a tensor, stored by kind: integers are kept exact (an
/// `INT64` id survives the trip), floats as `f64` (`FP16` and `FP32` widen
/// exactly), `BYTES` as raw bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    Bool(Vec<bool>),
    Signed(Vec<i64>),
    Unsigned(Vec<u64>),
    Float(Vec<f64>),
    Bytes(Vec<Vec<u8>>),
}

impl Values {
    /// Empty storage for a datatype.
    pub fn for_datatype(datatype: Datatype, capacity: usize) -> Values {
        match datatype.kind() {
            Kind::Bool => Values::Bool(Vec::with_capacity(capacity)),
            Kind::Signed => Values::Signed(Vec::with_capacity(capacity)),
            Kind::Unsigned => Values::Unsigned(Vec::with_capacity(capacity)),
            Kind::Float => Values::Float(Vec::with_capacity(capacity)),
            Kind::Bytes => Values::Bytes(Vec::with_capacity(capacity)),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Values::Bool(v) => v.len(),
            Values::Signed(v) => v.len(),
            Values::Unsigned(v) => v.len(),
            Values::Float(v) => v.len(),
            Values::Bytes(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element `i` as a number, `None` for BYTES.
    pub fn number(&self, i: usize) -> Option<f64> {
        match self {
            Values::Bool(v) => Some(if v[i] { 1.0 } else { 0.0 }),
            Values::Signed(v) => Some(v[i] as f64),
            Values::Unsigned(v) => Some(v[i] as f64),
            Values::Float(v) => Some(v[i]),
            Values::Bytes(_) => None,
        }
    }
}

/// One named tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub datatype: Datatype,
    pub shape: Vec<usize>,
    pub values: Values,
}

impl Tensor {
    /// A tensor, checked: the values match the datatype's kind and the
    /// shape's element count.
    pub fn new(
        name: impl Into<String>,
        datatype: Datatype,
        shape: Vec<usize>,
        values: Values,
    ) -> Result<Tensor, String> {
        let name = name.into();
        let expected = Array::size_of_shape(&shape).ok_or_else(|| {
            format!(
                "output {}: shape {shape:?} has too many elements",
                quoted(name.as_bytes())
            )
        })?;
        if expected != values.len() {
            return Err(format!(
                "tensor {}: shape {shape:?} calls for {expected} elements but it has {}",
                quoted(name.as_bytes()),
                values.len()
            ));
        }
        if Values::for_datatype(datatype, 0).kind_tag() != values.kind_tag() {
            return Err(format!(
                "tensor {}: its values are not of datatype {datatype}",
                quoted(name.as_bytes())
            ));
        }
        Ok(Tensor {
            name,
            datatype,
            shape,
            values,
        })
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

    /// The tensor as the SDK's [`Array`] of `f64`, as the CSV, JSON and NPY
    /// codecs produce it. `BYTES` elements must be numbers in text
    /// (`"0.5"`); anything else is a 400 naming the tensor and element.
    pub fn to_array(&self) -> Result<Array, StageError> {
        let data = match &self.values {
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
                                quoted(self.name.as_bytes()),
                                quoted(item)
                            ))
                        })
                })
                .collect::<Result<Vec<_>, _>>()?,
            values => (0..values.len()).filter_map(|i| values.number(i)).collect(),
        };
        Array::new(self.shape.clone(), data)
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl Values {
    fn kind_tag(&self) -> u8 {
        match self {
            Values::Bool(_) => 0,
            Values::Signed(_) => 1,
            Values::Unsigned(_) => 2,
            Values::Float(_) => 3,
            Values::Bytes(_) => 4,
        }
    }
}

/// Checks that a float value fits its datatype: a finite value past the
/// type's largest would turn into infinity.
pub(crate) fn check_float(datatype: Datatype, x: f64) -> Result<f64, String> {
    if x.is_finite() && x.abs() > datatype.float_max() {
        Err(format!(
            "{} is out of the range of {datatype}",
            crate::python::float_repr(x)
        ))
    } else {
        Ok(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_array_reads_numbers_of_every_kind() {
        let t = Tensor::new("x", Datatype::Int32, vec![2], Values::Signed(vec![-1, 2])).unwrap();
        assert_eq!(t.to_array().unwrap(), Array::vector(vec![-1.0, 2.0]));
        let t = Tensor::new("b", Datatype::Bool, vec![1, 2], Values::Bool(vec![true, false])).unwrap();
        assert_eq!(t.to_array().unwrap().data, vec![1.0, 0.0]);
        let t = Tensor::new(
            "s",
            Datatype::Bytes,
            vec![2],
            Values::Bytes(vec![b"0.5".to_vec(), b"M".to_vec()]),
        )
        .unwrap();
        let e = t.to_array().unwrap_err();
        assert!(
            e.message
                .contains("input \"s\", element 1: \"M\" is not a number"),
            "{}",
            e.message
        );
    }

    #[test]
    fn new_checks_count_and_kind() {
        assert!(Tensor::new("x", Datatype::Fp32, vec![2, 2], Values::Float(vec![1.0])).is_err());
        assert!(Tensor::new("x", Datatype::Fp32, vec![1], Values::Signed(vec![1])).is_err());
        assert_eq!(
            Tensor::from_array("y", &Array::vector(vec![1.0])).datatype,
            Datatype::Fp64
        );
    }

    #[test]
    fn floats_must_fit_their_type() {
        assert_eq!(
            check_float(Datatype::Fp32, 1e39).unwrap_err(),
            "1e+39 is out of the range of FP32"
        );
        assert!(check_float(Datatype::Fp16, 70000.0).is_err());
        assert!(check_float(Datatype::Fp16, 65504.0).is_ok());
        assert!(check_float(Datatype::Fp64, 1e300).is_ok());
    }
}
