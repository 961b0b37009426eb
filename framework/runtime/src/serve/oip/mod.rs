//! The Open Inference Protocol (KServe's V2 protocol, REST) on the serving
//! port, beside the SageMaker routes (docs/contract.md (Open Inference
//! Protocol)): server and model metadata, health, and inference. The
//! tensors are read and written by the SDK's `codecs::oip`; the stage gets
//! the inputs as CSV records and answers JSON, so every stage speaks the
//! protocol without new code, and a fused pipeline runs whole.

mod infer;
mod model;
mod refusal;
mod routes;

pub(super) use model::OipModel;
pub(super) use routes::routes;
