//! The Open Inference Protocol (KServe's V2 protocol) over REST: the
//! tensors of an inference request, how they become the records a stage
//! reads, and how a stage's answer becomes the response's tensors.
//!
//! `modelstage serve` uses this module to give every stage the protocol
//! without new code: it reads the request ([`parse_request`]), turns the
//! inputs into CSV records ([`to_csv`], the format SageMaker stages read; a
//! BYTES column such as the featurizer's `sex` arrives as text), runs the
//! stage (a fused pipeline runs all of its stages), reads its JSON answer as
//! tensors ([`answer_tensors`]) and writes the response ([`write_response`]).
//! A stage that wants the tensors themselves turns them into the same
//! [`Array`](crate::codecs::Array) the CSV, JSON and NPY codecs produce with
//! [`Tensor::to_array`].
//!
//! The binary tensor data extension is supported for every datatype, in both
//! directions (`binary`).

mod answer;
mod binary;
mod datatype;
mod records;
mod request;
mod response;
mod signature;
mod tensor;

pub use answer::answer_tensors;
pub use binary::{decode as decode_binary, encode as encode_binary};
pub use datatype::{Datatype, Kind};
pub use records::to_csv;
pub use request::{parse_request, InferRequest, RequestedOutput};
pub use response::{select_outputs, write_response, Encoded, Model};
pub use signature::{Metadata, Signature, TensorMeta, TensorSpec, DEFAULT_INPUT, DEFAULT_OUTPUT};
pub use tensor::{Tensor, Values};

/// The header of the binary tensor data extension: the length of the JSON
/// object at the start of the body.
pub const HEADER_LENGTH: &str = "Inference-Header-Content-Length";
