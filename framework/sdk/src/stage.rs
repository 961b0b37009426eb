//! The traits a stage implements. `export_stage!` turns an implementation
//! into the C symbols of the ABI.

use std::path::Path;

use crate::{Context, ExecutionParameters, Response, StageError, TrainingEnv};

/// How the runtime may call into one loaded model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threading {
    /// One model per worker process, called from several request threads at
    /// once. The default: most models are read-only after loading.
    Shared,
    /// Never called from two threads at once: one request thread per worker.
    PerInstance,
}

/// A loaded model: what `model_fn` returns. Every stage implements this, then
/// either [`Stage`] (input, predict, output) or [`TransformStage`].
pub trait Model: Sized + Send + Sync + 'static {
    /// How the runtime may call into the model (default: [`Threading::Shared`]).
    const THREADING: Threading = Threading::Shared;
    /// What `/execution-parameters` reports (default: nothing declared).
    const EXECUTION_PARAMETERS: ExecutionParameters = ExecutionParameters::UNSET;
    /// The tensors the Open Inference Protocol's model metadata lists, and
    /// the names and datatypes of the answer's tensors (default: nothing
    /// declared; the server then takes any inputs). See [`crate::codecs::oip`].
    const SIGNATURE: crate::codecs::oip::Signature = crate::codecs::oip::Signature::UNDECLARED;

    /// Loads the model from `model_dir` (`/opt/ml/model`, where SageMaker
    /// unpacked `model.tar.gz`). Called once per worker before any request.
    fn model_fn(model_dir: &Path) -> Result<Self, StageError>;
}

/// A stage in the four-hook form of the SageMaker toolkits:
/// `output_fn(predict_fn(input_fn(body)))`. One request may hold many records;
/// the hooks see them all at once.
pub trait Stage: Model {
    /// What `input_fn` decodes a request into.
    type Input: Send + 'static;
    /// What `predict_fn` produces.
    type Output: Send + 'static;

    /// Decodes the request body. `ctx.media_type()` is the Content-Type without
    /// parameters; answer [`StageError::unsupported_content_type`] (415) for a
    /// type you do not read and [`StageError::bad_request`] (400) for a body
    /// you cannot parse.
    fn input_fn(&self, body: &[u8], ctx: &Context<'_>) -> Result<Self::Input, StageError>;

    /// Runs the model on the decoded input.
    fn predict_fn(&self, input: Self::Input, ctx: &Context<'_>) -> Result<Self::Output, StageError>;

    /// Encodes the prediction for `ctx.accept` (already resolved: the client's
    /// Accept, or the default when it was missing or `*/*`). Answer
    /// [`StageError::unsupported_accept`] (406) for a type you cannot produce.
    fn output_fn(&self, prediction: Self::Output, ctx: &Context<'_>) -> Result<Response, StageError>;
}

/// A stage that handles the whole request in one hook, as the toolkits'
/// `transform_fn` does.
pub trait TransformStage: Model {
    /// Answers the whole request: decodes `body`, predicts and encodes for `ctx.accept`.
    fn transform_fn(&self, body: &[u8], ctx: &Context<'_>) -> Result<Response, StageError>;
}

/// The training hook: `modelstage train` calls it with the SageMaker training
/// environment and every `SM_*` variable set in the process environment.
pub trait Train {
    /// Trains and writes the model into `env.model_dir`. An error becomes
    /// `/opt/ml/output/failure` and a non-zero exit.
    fn train_fn(env: &TrainingEnv) -> Result<(), StageError>;
}
