//! `featurizer`: the tabular featurizer stage, the Rust equal of the
//! scikit-learn preprocessing of SageMaker's abalone pipeline example
//! (`ColumnTransformer` of median imputation + standard scaling on numeric
//! columns and constant imputation + one-hot encoding on categorical ones).
//!
//! Training (`Train`) reads the headerless CSV files of the `train` channel
//! and writes `featurizer.json` into the model dir. Serving reads `text/csv`
//! records, with or without the label, and answers `text/csv`,
//! `application/json` or `application/jsonlines` with the same numbers the
//! Python container prints. The README lists the hyperparameters and the
//! scikit-learn rules followed.

use std::collections::BTreeMap;
use std::path::Path;

use modelstage_sdk::{export_stage, Context, Model, Response, Stage, StageError, Train, TrainingEnv};

mod column;
mod encode;
mod field;
mod fit;
mod model;
mod parse;
mod plan;
mod schema;
mod stats;
mod transform;

pub use encode::{encode, Format};
pub use fit::Fitter;
pub use model::{FittedModel, MODEL_FILE};
pub use parse::Batch;
pub use schema::Config;
pub use transform::Features;

use plan::Plan;

/// The training channel the featurizer reads.
pub const TRAIN_CHANNEL: &str = "train";

/// A loaded featurizer: read-only, shared by all request threads.
pub struct Featurizer {
    plan: Plan,
}

impl Featurizer {
    /// Builds a featurizer from a fitted model (what `model_fn` loads).
    pub fn from_model(model: FittedModel) -> Featurizer {
        Featurizer {
            plan: Plan::new(model),
        }
    }

    /// The fitted model.
    pub fn model(&self) -> &FittedModel {
        &self.plan.model
    }

    /// Parses a `text/csv` body (the work of `input_fn`).
    pub fn parse(&self, body: &[u8]) -> Result<Batch, StageError> {
        parse::parse(&self.plan, body)
    }

    /// Imputes, scales and one-hot encodes (the work of `predict_fn`).
    pub fn transform(&self, batch: &Batch) -> Result<Features, StageError> {
        transform::transform(&self.plan, batch)
    }
}

/// Fits a featurizer on CSV files: what training does, without the
/// SageMaker environment around it. Every failure is a bad request: the
/// training data is the job's, so its author has to fix it.
pub fn fit_files(config: Config, files: &[impl AsRef<Path>]) -> Result<FittedModel, StageError> {
    let mut fitter = Fitter::new(config);
    for file in files {
        let path = file.as_ref();
        let reader = std::fs::File::open(path)
            .map_err(|e| StageError::bad_request(format!("cannot open {}: {e}", path.display())))?;
        fitter.read(reader, &path.display().to_string())?;
    }
    fitter.finish()
}

impl Model for Featurizer {
    fn model_fn(model_dir: &Path) -> Result<Self, StageError> {
        let model = FittedModel::load(model_dir)?;
        log::info!(
            "loaded {} columns -> {} features (trained on {} records)",
            model.columns.len(),
            model.feature_names.len(),
            model.rows
        );
        Ok(Featurizer::from_model(model))
    }
}

impl Stage for Featurizer {
    type Input = Batch;
    type Output = Features;

    fn input_fn(&self, body: &[u8], ctx: &Context<'_>) -> Result<Batch, StageError> {
        if !ctx.media_type().eq_ignore_ascii_case(encode::CSV) {
            return Err(StageError::unsupported_content_type(
                ctx.content_type,
                &[encode::CSV],
            ));
        }
        self.parse(body)
    }

    fn predict_fn(&self, batch: Batch, _ctx: &Context<'_>) -> Result<Features, StageError> {
        self.transform(&batch)
    }

    fn output_fn(&self, features: Features, ctx: &Context<'_>) -> Result<Response, StageError> {
        let media_type = ctx
            .negotiate(&encode::SUPPORTED)
            .ok_or_else(|| StageError::unsupported_accept(ctx.accept, &encode::SUPPORTED))?;
        // `SUPPORTED` holds exactly the types `Format::of` knows.
        let format = Format::of(media_type).unwrap_or(Format::Json);
        Ok(Response::new(encode::encode(&features, format), media_type))
    }
}

impl Train for Featurizer {
    fn train_fn(env: &TrainingEnv) -> Result<(), StageError> {
        let hp = env.hyperparameters();
        let raw: BTreeMap<String, String> = hp
            .keys()
            .into_iter()
            .filter_map(|k| hp.string(k).map(|v| (k.to_string(), v)))
            .collect();
        let config = Config::from_hyperparameters(&raw)?;
        let files = env.channel_files(TRAIN_CHANNEL)?;
        if files.is_empty() {
            return Err(StageError::bad_request(format!(
                "the '{TRAIN_CHANNEL}' channel has no files; give it the headerless CSV training data"
            )));
        }
        log::info!("fitting on {} file(s) of channel '{TRAIN_CHANNEL}'", files.len());
        let model = fit_files(config, &files)?;
        model.save(env.model_dir())?;
        log::info!(
            "wrote {} ({} features: {})",
            env.model_dir().join(MODEL_FILE).display(),
            model.feature_names.len(),
            model.feature_names.join(", ")
        );
        Ok(())
    }
}

export_stage!(Featurizer, train);
