//! What a stage declares about its tensors: the inputs and outputs the
//! protocol's model metadata lists (`GET /v2/models/{name}`), by name,
//! datatype and shape (`-1` for a size that varies).
//!
//! A Rust stage declares them with the SDK's `Model::SIGNATURE`;
//! `export_stage!` exports the declaration as JSON through the optional
//! symbol `modelstage_signature_json` (docs/abi.md), which the runtime reads
//! when it opens the library. A stage that declares nothing gets
//! [`Metadata::undeclared`], and the server takes any inputs.

use serde::{Deserialize, Serialize};

use super::datatype::Datatype;
use super::error::OipError;

/// One declared tensor, as a constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TensorSpec {
    /// The tensor's name.
    pub name: &'static str,
    /// Its element type.
    pub datatype: Datatype,
    /// Sizes, `-1` where any size goes (typically the first: the records).
    pub shape: &'static [i64],
}

/// A stage's declared inputs and outputs. Inputs are the CSV columns in the
/// declared order (see `records`); outputs name and type the answer's tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signature {
    /// The inputs, in the order of the CSV columns.
    pub inputs: &'static [TensorSpec],
    /// The outputs.
    pub outputs: &'static [TensorSpec],
}

impl Signature {
    /// Nothing declared.
    pub const UNDECLARED: Signature = Signature {
        inputs: &[],
        outputs: &[],
    };

    /// The declaration as JSON, `None` when nothing is declared.
    pub fn to_json(&self) -> Option<String> {
        if self.inputs.is_empty() && self.outputs.is_empty() {
            return None;
        }
        let metas = |specs: &[TensorSpec]| {
            specs
                .iter()
                .map(|s| TensorMeta {
                    name: s.name.to_string(),
                    datatype: s.datatype.name().to_string(),
                    shape: s.shape.to_vec(),
                })
                .collect()
        };
        let metadata = Metadata {
            inputs: metas(self.inputs),
            outputs: metas(self.outputs),
        };
        serde_json::to_string(&metadata).ok()
    }
}

/// One tensor of the model metadata, as the protocol writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorMeta {
    /// The tensor's name.
    pub name: String,
    /// Its datatype's name (`FP32`).
    pub datatype: String,
    /// Its sizes, `-1` for any.
    pub shape: Vec<i64>,
}

impl TensorMeta {
    /// The datatype, parsed.
    pub fn datatype(&self) -> Option<Datatype> {
        Datatype::parse(&self.datatype)
    }

    /// Whether a shape fits this declaration (`-1` matches any size).
    pub fn accepts_shape(&self, shape: &[usize]) -> bool {
        self.shape.len() == shape.len()
            && self
                .shape
                .iter()
                .zip(shape)
                .all(|(&want, &got)| want < 0 || want as u64 == got as u64)
    }
}

/// The inputs and outputs of a model's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// The inputs.
    pub inputs: Vec<TensorMeta>,
    /// The outputs.
    pub outputs: Vec<TensorMeta>,
}

/// The input name an undeclared stage's metadata shows.
pub const DEFAULT_INPUT: &str = "input-0";
/// The output name of an undeclared stage's single answer tensor.
pub const DEFAULT_OUTPUT: &str = "output-0";

impl Metadata {
    /// What the metadata says of a stage that declares nothing: one FP64
    /// matrix in, one out. The server takes any inputs from such a stage's
    /// clients all the same.
    pub fn undeclared() -> Metadata {
        let any = |name: &str| TensorMeta {
            name: name.to_string(),
            datatype: Datatype::Fp64.name().to_string(),
            shape: vec![-1, -1],
        };
        Metadata {
            inputs: vec![any(DEFAULT_INPUT)],
            outputs: vec![any(DEFAULT_OUTPUT)],
        }
    }

    /// Reads a stage's declaration and checks every datatype.
    pub fn from_json(json: &str) -> Result<Metadata, OipError> {
        let metadata: Metadata = serde_json::from_str(json).map_err(OipError::InvalidSignature)?;
        for t in metadata.inputs.iter().chain(&metadata.outputs) {
            if t.datatype().is_none() {
                return Err(OipError::UnknownDeclaredDatatype {
                    tensor: t.name.clone(),
                    datatype: t.datatype.clone(),
                });
            }
        }
        Ok(metadata)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DECLARED: Signature = Signature {
        inputs: &[TensorSpec {
            name: "features",
            datatype: Datatype::Fp32,
            shape: &[-1, 3],
        }],
        outputs: &[TensorSpec {
            name: "score",
            datatype: Datatype::Fp32,
            shape: &[-1],
        }],
    };

    #[test]
    fn declaration_round_trips_through_json() {
        assert_eq!(Signature::UNDECLARED.to_json(), None);
        let json = DECLARED.to_json().unwrap();
        let m = Metadata::from_json(&json).unwrap();
        assert_eq!(m.inputs[0].name, "features");
        assert_eq!(m.inputs[0].datatype(), Some(Datatype::Fp32));
        assert!(m.inputs[0].accepts_shape(&[5, 3]));
        assert!(!m.inputs[0].accepts_shape(&[5, 4]));
        assert!(!m.inputs[0].accepts_shape(&[3]));
        assert!(
            Metadata::from_json(r#"{"inputs":[{"name":"x","datatype":"F","shape":[]}],"outputs":[]}"#)
                .unwrap_err()
                .to_string()
                .contains("unknown datatype \"F\"")
        );
    }
}
