//! The `aialgs.data.Record` protobuf messages of SageMaker's built-in
//! algorithms (`record.proto`, proto2), written out by hand with `prost`'s
//! derive macros so that building the stage needs no `protoc`.
//!
//! Field numbers and packing follow the SageMaker Python SDK's
//! `amazon/record.proto`. Maps are `BTreeMap`s so that an encoded response is
//! the same bytes every time.
//!
//! A tensor that cannot be read is a bad request whose message names the
//! tensor (`what`) but not the record: the caller adds where it is.

use std::collections::BTreeMap;

use modelstage_sdk::StageError;

/// `aialgs.data.Float32Tensor`: dense when `keys` is empty, else sparse with
/// `shape` giving the full length.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Float32Tensor {
    #[prost(float, repeated, packed = "true", tag = "1")]
    pub values: Vec<f32>,
    #[prost(uint64, repeated, packed = "true", tag = "2")]
    pub keys: Vec<u64>,
    #[prost(uint64, repeated, packed = "true", tag = "3")]
    pub shape: Vec<u64>,
}

/// `aialgs.data.Float64Tensor`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Float64Tensor {
    #[prost(double, repeated, packed = "true", tag = "1")]
    pub values: Vec<f64>,
    #[prost(uint64, repeated, packed = "true", tag = "2")]
    pub keys: Vec<u64>,
    #[prost(uint64, repeated, packed = "true", tag = "3")]
    pub shape: Vec<u64>,
}

/// `aialgs.data.Int32Tensor`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Int32Tensor {
    #[prost(int32, repeated, packed = "true", tag = "1")]
    pub values: Vec<i32>,
    #[prost(uint64, repeated, packed = "true", tag = "2")]
    pub keys: Vec<u64>,
    #[prost(uint64, repeated, packed = "true", tag = "3")]
    pub shape: Vec<u64>,
}

/// `aialgs.data.Bytes`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Bytes {
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub value: Vec<Vec<u8>>,
    #[prost(string, optional, tag = "2")]
    pub content_type: Option<String>,
}

/// `aialgs.data.Value`: one of the tensor kinds.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Value {
    #[prost(oneof = "value::Kind", tags = "2, 3, 7, 9")]
    pub kind: Option<value::Kind>,
}

pub mod value {
    //! The `oneof` of [`Value`](super::Value).

    /// Which tensor a `Value` holds.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Kind {
        #[prost(message, tag = "2")]
        Float32Tensor(super::Float32Tensor),
        #[prost(message, tag = "3")]
        Float64Tensor(super::Float64Tensor),
        #[prost(message, tag = "7")]
        Int32Tensor(super::Int32Tensor),
        #[prost(message, tag = "9")]
        Bytes(super::Bytes),
    }
}

/// `aialgs.data.Record`: features under the key `values`, the label (in
/// training data) or the prediction (in responses) under `label`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Record {
    #[prost(btree_map = "string, message", tag = "1")]
    pub features: BTreeMap<String, Value>,
    #[prost(btree_map = "string, message", tag = "2")]
    pub label: BTreeMap<String, Value>,
    #[prost(string, optional, tag = "3")]
    pub uid: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub metadata: Option<String>,
    #[prost(string, optional, tag = "5")]
    pub configuration: Option<String>,
}

/// A numeric tensor's contents: dense when `keys` is empty, else sparse.
#[derive(Debug, Clone, PartialEq)]
pub struct Parts<'a> {
    pub values: Vec<f64>,
    pub keys: &'a [u64],
    pub shape: &'a [u64],
}

impl Value {
    /// A dense float32 tensor holding `values`.
    pub fn dense_f32(values: Vec<f32>) -> Value {
        Value {
            kind: Some(value::Kind::Float32Tensor(Float32Tensor {
                values,
                keys: Vec::new(),
                shape: Vec::new(),
            })),
        }
    }

    /// The tensor's values (as `f64`), keys and shape; `what` names the
    /// tensor in error messages (`features["values"]`).
    pub fn parts(&self, what: &str) -> Result<Parts<'_>, StageError> {
        let (values, keys, shape) = match &self.kind {
            Some(value::Kind::Float32Tensor(t)) => (
                t.values.iter().map(|&v| f64::from(v)).collect(),
                &t.keys,
                &t.shape,
            ),
            Some(value::Kind::Float64Tensor(t)) => (t.values.clone(), &t.keys, &t.shape),
            Some(value::Kind::Int32Tensor(t)) => (
                t.values.iter().map(|&v| f64::from(v)).collect(),
                &t.keys,
                &t.shape,
            ),
            Some(value::Kind::Bytes(_)) => {
                return Err(StageError::bad_request(format!(
                    "{what} holds bytes, not a numeric tensor"
                )))
            }
            None => return Err(StageError::bad_request(format!("{what} holds no tensor"))),
        };
        Ok(Parts { values, keys, shape })
    }

    /// The tensor as a dense `f64` vector of `dim` entries. `what` names the
    /// tensor in error messages (`features["values"]`).
    pub fn to_dense(&self, dim: Option<usize>, what: &str) -> Result<Vec<f64>, StageError> {
        let Parts { values, keys, shape } = self.parts(what)?;
        if keys.is_empty() {
            return Ok(values);
        }
        sparse_to_dense(&values, keys, shape, dim, what)
    }
}

/// The largest dimension a sparse tensor may give itself when nothing else
/// fixes it (the first record of a training file with `feature_dim=auto`):
/// its dense copy is this many doubles, 128 MiB. Setting `feature_dim`
/// lifts it.
pub const MAX_SPARSE_DIM: usize = 1 << 24;

/// Checks a sparse tensor (`keys`, `values`, `shape`) and returns its
/// length: `dim` when known (a `shape` must then be `[dim]`), else
/// `shape[0]`, at most [`MAX_SPARSE_DIM`]. Every key must fall below it.
/// Nothing the size of the shape is allocated.
pub fn sparse_len(
    values: &[f64],
    keys: &[u64],
    shape: &[u64],
    dim: Option<usize>,
    what: &str,
) -> Result<usize, StageError> {
    if keys.len() != values.len() {
        return Err(StageError::bad_request(format!(
            "{what} is sparse with {} keys but {} values; they must pair up",
            keys.len(),
            values.len()
        )));
    }
    if shape.len() > 1 {
        return Err(StageError::bad_request(format!(
            "{what} has {} dimensions; only one-dimensional tensors are supported",
            shape.len()
        )));
    }
    let claimed = shape.first().map(|&n| usize::try_from(n).unwrap_or(usize::MAX));
    let len = match (claimed, dim) {
        (Some(n), Some(d)) if n != d => {
            return Err(StageError::bad_request(format!(
                "{what} has shape [{}], but feature_dim is {d}",
                shape[0]
            )))
        }
        (_, Some(d)) => d,
        (Some(n), None) if n > MAX_SPARSE_DIM => {
            return Err(StageError::bad_request(format!(
                "{what} has shape [{}], more than the {MAX_SPARSE_DIM} features a sparse record may \
                 give itself; set the feature_dim hyperparameter for a larger model",
                shape[0]
            )))
        }
        (Some(n), None) => n,
        (None, None) => {
            return Err(StageError::bad_request(format!(
                "{what} is sparse but has no shape"
            )))
        }
    };
    match keys
        .iter()
        .find(|&&k| usize::try_from(k).map_or(true, |k| k >= len))
    {
        Some(k) => Err(StageError::bad_request(format!(
            "{what} has key {k} outside its shape {len}"
        ))),
        None => Ok(len),
    }
}

/// Expands a sparse tensor into a dense vector of [`sparse_len`] entries;
/// a key given twice keeps its last value.
pub fn sparse_to_dense(
    values: &[f64],
    keys: &[u64],
    shape: &[u64],
    dim: Option<usize>,
    what: &str,
) -> Result<Vec<f64>, StageError> {
    let mut dense = vec![0.0; sparse_len(values, keys, shape, dim, what)?];
    for (&k, &v) in keys.iter().zip(values) {
        // `sparse_len` checked every key is below the length, a usize.
        dense[k as usize] = v;
    }
    Ok(dense)
}
