//! The Open Inference Protocol (KServe's V2 protocol) over REST: the
//! tensors of an inference request, how they become the records a stage
//! reads, and how a stage's answer becomes the response's tensors.
//!
//! The host and the stages share it (the SDK re-exports it as
//! `codecs::oip`, with the conversions to its `Array`). `modelstage serve`
//! uses it to give every stage the protocol without new code: it reads the request ([`parse_request`]), turns the
//! inputs into CSV records ([`to_csv`], the format SageMaker stages read; a
//! BYTES column such as the featurizer's `sex` arrives as text), runs the
//! stage (a fused pipeline runs all of its stages), reads its JSON answer as
//! tensors ([`answer_tensors`]) and writes the response ([`write_response`]).
//!
//! The binary tensor data extension is supported for every datatype, in both
//! directions (`binary`).

mod answer;
mod binary;
mod datatype;
mod error;
mod records;
mod request;
mod response;
mod signature;
mod streamed;
mod tensor;

pub use answer::answer_tensors;
pub use binary::{decode as decode_binary, encode as encode_binary};
pub use datatype::{Datatype, Kind};
pub use error::{BinaryError, InputProblem, OipError};
pub use records::to_csv;
pub use request::{parse_request, InferRequest, RequestedOutput};
pub use response::{select_outputs, write_response, Encoded, Model};
pub use signature::{Metadata, Signature, TensorMeta, TensorSpec, DEFAULT_INPUT, DEFAULT_OUTPUT};
pub use tensor::{Tensor, Values};

/// The header of the binary tensor data extension: the length of the JSON
/// object at the start of the body.
pub const HEADER_LENGTH: &str = "Inference-Header-Content-Length";

/// The most dimensions a tensor may have (numpy's limit, as the SDK's codecs).
pub const MAX_DIMS: usize = 64;

/// The number of elements a shape calls for, `None` on overflow.
pub fn elements(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// Appends a float as Python's `json.dumps` writes it (`NaN`, `Infinity`
/// for the values strict JSON cannot hold), as `/invocations` answers carry it.
fn write_json_float(out: &mut Vec<u8>, x: f64) {
    if x.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if x.is_infinite() {
        out.extend_from_slice(if x > 0.0 { b"Infinity" } else { b"-Infinity" });
    } else {
        crate::python::write_float(out, x);
    }
}
