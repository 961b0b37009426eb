//! `modelstage-contract`: the rules both sides of a stage share.
//!
//! The host (`modelstage-runtime`: the server, its workers, `train`) and
//! every stage library (through `modelstage-sdk`, of which each library
//! carries its own copy) link this crate, so a rule written here is the same
//! on both sides: an SDK change cannot alter the server's logs or the bytes
//! of `SM_TRAINING_ENV`, and the fused server and the router cannot disagree
//! on a limit. It holds no HTTP server and no dynamic loading.
//!
//! - [`python`], [`number`]: numbers and JSON as the SageMaker Python
//!   toolkits print and read them;
//! - [`logging`]: the one log line format (text, or JSON with
//!   `MODELSTAGE_LOG_FORMAT=json`) and the logger every process installs;
//! - [`excerpt`]: bounded, escaped quotes of client values;
//! - [`execution`]: `ExecutionParameters` and the batch strategy;
//! - [`media`]: what a media type is and how two compare;
//! - [`payload`]: the payload limit and its message;
//! - [`settings`]: the `SAGEMAKER_*` names and defaults, the HTTP threads;
//! - [`error_body`]: the JSON body of an error answer;
//! - [`oip`]: the Open Inference Protocol's tensors, requests and responses.

#![warn(missing_docs, unreachable_pub)]

pub mod error_body;
pub mod excerpt;
pub mod execution;
pub mod logging;
pub mod media;
pub mod number;
pub mod oip;
pub mod payload;
pub mod python;
pub mod settings;

pub use execution::{BatchStrategy, ExecutionParameters};
