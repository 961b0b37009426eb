//! `modelstage-sdk`: everything a Rust stage author needs.
//!
//! A stage is a `cdylib` that implements [`Model`] and [`Stage`] (or
//! [`TransformStage`]), optionally [`Train`], and calls [`export_stage!`]
//! once. The macro writes the C symbols of the stage ABI (`modelstage-abi`),
//! catches panics at the boundary and releases everything it hands out; a
//! stage needs no `unsafe` code.
//!
//! ```ignore
//! use modelstage_sdk::{export_stage, Context, Model, Response, Stage, StageError};
//! use std::path::Path;
//!
//! pub struct Echo;
//!
//! impl Model for Echo {
//!     fn model_fn(_model_dir: &Path) -> Result<Self, StageError> { Ok(Echo) }
//! }
//!
//! impl Stage for Echo {
//!     type Input = Vec<u8>;
//!     type Output = Vec<u8>;
//!     fn input_fn(&self, body: &[u8], _ctx: &Context) -> Result<Vec<u8>, StageError> { Ok(body.to_vec()) }
//!     fn predict_fn(&self, input: Vec<u8>, _ctx: &Context) -> Result<Vec<u8>, StageError> { Ok(input) }
//!     fn output_fn(&self, out: Vec<u8>, ctx: &Context) -> Result<Response, StageError> {
//!         Ok(Response::new(out, ctx.content_type))
//!     }
//! }
//!
//! export_stage!(Echo);
//! ```
//!
//! The default codecs ([`codecs`]) read and write `text/csv`,
//! `application/json`, `application/jsonlines` and `application/x-npy` in the
//! exact formats of the SageMaker Python toolkits (numbers printed as Python's
//! `repr` prints them, see [`python`]), so outputs diff clean against theirs.
//! Read model files with [`fs`], whose errors name the file.
//! `docs/writing-a-stage.md` is the tutorial.

#![warn(missing_docs, unreachable_pub)]

pub mod codecs;
mod context;
mod error;
// The export glue: the one place the SDK writes `unsafe` (the C symbols).
#[allow(unsafe_code)]
#[doc(hidden)]
pub mod export;
pub mod fs;
mod stage;
pub mod training;

// The rules the host shares (`modelstage-contract`), at the paths stage
// authors know: this library's own copy of them runs in the stage.
pub use modelstage_contract::media::media_type;
pub use modelstage_contract::{excerpt, logging, media, number, python};
pub use modelstage_contract::{BatchStrategy, ExecutionParameters};

pub use context::{Context, Response};
pub use error::{ErrorKind, StageError};
pub use excerpt::excerpt;
pub use stage::{Model, Stage, Threading, Train, TransformStage};
pub use training::TrainingEnv;

/// Re-exported for the code `export_stage!` generates.
#[doc(hidden)]
pub use modelstage_abi as abi;
