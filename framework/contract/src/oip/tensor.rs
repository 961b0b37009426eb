//! A tensor of the Open Inference Protocol: a name, a datatype, a shape and
//! its elements in row-major order. (The SDK turns one into its `Array`.)

use super::datatype::{Datatype, Kind};
use super::elements;
use super::error::OipError;

/// The elements of a tensor, stored by kind: integers are kept exact (an
/// `INT64` id survives the trip), floats as `f64` (`FP16` and `FP32` widen
/// exactly), `BYTES` as raw bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// BOOL.
    Bool(Vec<bool>),
    /// INT8 to INT64.
    Signed(Vec<i64>),
    /// UINT8 to UINT64.
    Unsigned(Vec<u64>),
    /// FP16, FP32 and FP64.
    Float(Vec<f64>),
    /// BYTES.
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

    /// The number of elements.
    pub fn len(&self) -> usize {
        match self {
            Values::Bool(v) => v.len(),
            Values::Signed(v) => v.len(),
            Values::Unsigned(v) => v.len(),
            Values::Float(v) => v.len(),
            Values::Bytes(v) => v.len(),
        }
    }

    /// Whether there are no elements.
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
    /// The tensor's name.
    pub name: String,
    /// Its element type.
    pub datatype: Datatype,
    /// Its sizes.
    pub shape: Vec<usize>,
    /// Its elements, row-major.
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
    ) -> Result<Tensor, OipError> {
        let name = name.into();
        let Some(expected) = elements(&shape) else {
            return Err(OipError::TensorTooLarge { name, shape });
        };
        if expected != values.len() {
            return Err(OipError::TensorCount {
                name,
                shape,
                expected,
                found: values.len(),
            });
        }
        if Values::for_datatype(datatype, 0).kind_tag() != values.kind_tag() {
            return Err(OipError::TensorKind { name, datatype });
        }
        Ok(Tensor {
            name,
            datatype,
            shape,
            values,
        })
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether it has no elements.
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

/// A float past the largest value of its datatype; the callers say which
/// element of which tensor it is.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("{} is out of the range of {datatype}", crate::python::float_repr(*value))]
pub(crate) struct OutOfRange {
    value: f64,
    datatype: Datatype,
}

/// Checks that a float value fits its datatype: a finite value past the
/// type's largest would turn into infinity.
pub(crate) fn check_float(datatype: Datatype, x: f64) -> Result<f64, OutOfRange> {
    if x.is_finite() && x.abs() > datatype.float_max() {
        Err(OutOfRange { value: x, datatype })
    } else {
        Ok(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_checks_count_and_kind() {
        let e = Tensor::new("x", Datatype::Fp32, vec![2, 2], Values::Float(vec![1.0])).unwrap_err();
        assert!(
            matches!(
                e,
                OipError::TensorCount {
                    expected: 4,
                    found: 1,
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            "tensor \"x\": shape [2, 2] calls for 4 elements but it has 1"
        );
        let e = Tensor::new("x", Datatype::Fp32, vec![1], Values::Signed(vec![1])).unwrap_err();
        assert!(
            matches!(
                e,
                OipError::TensorKind {
                    datatype: Datatype::Fp32,
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn floats_must_fit_their_type() {
        assert_eq!(
            check_float(Datatype::Fp32, 1e39).unwrap_err().to_string(),
            "1e+39 is out of the range of FP32"
        );
        assert!(check_float(Datatype::Fp16, 70000.0).is_err());
        assert!(check_float(Datatype::Fp16, 65504.0).is_ok());
        assert!(check_float(Datatype::Fp64, 1e300).is_ok());
    }
}
