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

use modelstage_sdk::{
    export_stage, Context, ErrorKind, Model, Response, Stage, StageError, Train, TrainingEnv,
};

pub mod model;
pub mod proto;
pub mod recordio;
pub mod rng;
pub mod serve;
pub mod train;

use model::{ModelFile, Predictions, Predictor};
use serve::input::{decode, Batch};
use serve::output::{encode, ACCEPTS};

/// The variable that bounds the scores one request may ask for.
pub const MAX_SCORES_VAR: &str = "MODELSTAGE_LINEAR_LEARNER_MAX_SCORES";
/// Its default: 2^23 scores, 64 MiB of doubles (about 160 MB as JSON);
/// a 6 MB CSV body holds at most 3 million records.
pub const DEFAULT_MAX_SCORES: usize = 1 << 23;

/// A loaded Linear Learner model.
pub struct LinearLearner {
    pub predictor: Predictor,
    /// Records × scores per record one request may ask for: a multiclass
    /// model multiplies a small body's records by its classes.
    pub max_scores: usize,
}

impl Model for LinearLearner {
    fn model_fn(model_dir: &Path) -> Result<Self, StageError> {
        let predictor = ModelFile::load(model_dir)?.predictor()?;
        let max_scores = match std::env::var(MAX_SCORES_VAR) {
            Err(_) => DEFAULT_MAX_SCORES,
            Ok(v) => v.trim().parse().map_err(|_| {
                StageError::internal(format!(
                    "{MAX_SCORES_VAR} must be a number of scores, got '{}'",
                    modelstage_sdk::excerpt(v.as_bytes())
                ))
            })?,
        };
        Ok(LinearLearner {
            predictor,
            max_scores,
        })
    }
}

impl Stage for LinearLearner {
    type Input = Batch;
    type Output = Predictions;

    fn input_fn(&self, body: &[u8], ctx: &Context<'_>) -> Result<Batch, StageError> {
        let batch = decode(body, ctx.media_type(), self.predictor.feature_dim)?;
        let per_record = self.predictor.outputs();
        if batch.len().saturating_mul(per_record) > self.max_scores {
            return Err(StageError::new(
                ErrorKind::PayloadTooLarge,
                format!(
                    "{} records with {per_record} scores each are more than the {} scores a request may \
                     ask for ({MAX_SCORES_VAR}); send fewer records per request",
                    batch.len(),
                    self.max_scores
                ),
            ));
        }
        Ok(batch)
    }

    fn predict_fn(&self, input: Batch, _ctx: &Context<'_>) -> Result<Predictions, StageError> {
        let predictions = self
            .predictor
            .predict_rows(input.rows(self.predictor.feature_dim));
        check_scores(&predictions)?;
        Ok(predictions)
    }

    fn output_fn(&self, prediction: Predictions, ctx: &Context<'_>) -> Result<Response, StageError> {
        match ctx.negotiate(&ACCEPTS) {
            Some(media) => encode(&prediction, media),
            None => Err(StageError::unsupported_accept(ctx.accept, &ACCEPTS)),
        }
    }
}

/// Refuses predictions whose answer would not be a number: finite features
/// large enough to overflow a score (past f32's 3.4e38, which the answers
/// carry) would otherwise be written as `inf`, which no JSON reader takes.
fn check_scores(p: &Predictions) -> Result<(), StageError> {
    let Some(i) = p.scores.iter().position(|&s| !serve::output::representable(s)) else {
        return Ok(());
    };
    let per_record = (p.scores.len() / p.len().max(1)).max(1);
    let (record, score) = (i / per_record, p.scores[i]);
    Err(StageError::bad_request(format!(
        "record {record}: the score is {}, which is not a finite 32-bit float; the features are too \
         large for this model",
        modelstage_sdk::python::float_repr(score)
    ))
    .at_record(record))
}

impl Train for LinearLearner {
    fn train_fn(env: &TrainingEnv) -> Result<(), StageError> {
        train::hook::train(env).map(|_| ())
    }
}

export_stage!(LinearLearner, train);
