//! `linear_learner`: the equal of SageMaker's built-in Linear Learner, as a
//! modelstage stage (`liblinear_learner.so`).
//!
//! Training (`train_fn`) reads the `train`, `validation` and `test` channels
//! (label-first CSV or RecordIO-protobuf) with Linear Learner's
//! hyperparameters and writes `linear-learner.json` into the model dir.
//! Serving (`model_fn`, `input_fn`, `predict_fn`, `output_fn`) reads that
//! file and answers the request and response formats of the built-in
//! algorithm. The README lists what is supported and how `auto` resolves.

use std::path::Path;

use modelstage_sdk::{export_stage, Context, Model, Response, Stage, StageError, Train, TrainingEnv};

pub mod model;
pub mod proto;
pub mod recordio;
pub mod rng;
pub mod serve;
pub mod train;

use model::{ModelFile, Predictions, Predictor};
use serve::input::{decode, Batch};
use serve::output::{encode, ACCEPTS};

/// A loaded Linear Learner model.
pub struct LinearLearner {
    pub predictor: Predictor,
}

impl Model for LinearLearner {
    fn model_fn(model_dir: &Path) -> Result<Self, StageError> {
        let predictor = ModelFile::load(model_dir)?.predictor()?;
        Ok(LinearLearner { predictor })
    }
}

impl Stage for LinearLearner {
    type Input = Batch;
    type Output = Predictions;

    fn input_fn(&self, body: &[u8], ctx: &Context<'_>) -> Result<Batch, StageError> {
        decode(body, ctx.media_type(), self.predictor.feature_dim)
    }

    fn predict_fn(&self, input: Batch, _ctx: &Context<'_>) -> Result<Predictions, StageError> {
        Ok(self.predictor.predict(&input.x))
    }

    fn output_fn(&self, prediction: Predictions, ctx: &Context<'_>) -> Result<Response, StageError> {
        match ctx.negotiate(&ACCEPTS) {
            Some(media) => encode(&prediction, media),
            None => Err(StageError::unsupported_accept(ctx.accept, &ACCEPTS)),
        }
    }
}

impl Train for LinearLearner {
    fn train_fn(env: &TrainingEnv) -> Result<(), StageError> {
        train::hook::train(env).map(|_| ())
    }
}

export_stage!(LinearLearner, train);
