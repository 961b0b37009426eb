//! `{{name}}`: a modelstage stage.
//!
//! Training (`modelstage fit` here, `docker run IMAGE train` on SageMaker) reads every number in
//! the files of the `train` channel (separated by commas or white space) and writes their mean,
//! times the `scale` hyperparameter (default 1), to `mean.txt` in the model folder. Serving
//! (`modelstage deploy` here, `docker run IMAGE serve` on SageMaker) answers each row of a
//! `text/csv` request with that mean: `{"predictions": [{"score": 2.5}, ...]}` for
//! `application/json`, one number per line for `text/csv`.

use std::path::Path;

use modelstage_sdk::{export_stage, Context, Model, Response, Stage, StageError, Train, TrainingEnv};

/// The file the model is kept in, inside the model folder.
const MODEL_FILE: &str = "mean.txt";
/// What `output_fn` can write, the default first.
const ACCEPTS: &[&str] = &["application/json", "text/csv"];

/// The trained model: one number.
pub struct MeanModel {
    mean: f64,
}

impl Model for MeanModel {
    fn model_fn(model_dir: &Path) -> Result<Self, StageError> {
        let path = model_dir.join(MODEL_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            StageError::internal(format!(
                "cannot read {}: {e} (the model folder must hold {MODEL_FILE}: train first)",
                path.display()
            ))
        })?;
        let mean = text
            .trim()
            .parse::<f64>()
            .map_err(|e| StageError::internal(format!("{} does not hold a number: {e}", path.display())))?;
        Ok(MeanModel { mean })
    }
}

impl Stage for MeanModel {
    /// The number of rows in the request.
    type Input = usize;
    /// One score per row.
    type Output = Vec<f64>;

    fn input_fn(&self, body: &[u8], ctx: &Context<'_>) -> Result<usize, StageError> {
        if !ctx.media_type().eq_ignore_ascii_case("text/csv") {
            return Err(StageError::unsupported_content_type(ctx.content_type, &["text/csv"]));
        }
        let text = std::str::from_utf8(body)
            .map_err(|e| StageError::bad_request(format!("the body is not UTF-8: {e}")))?;
        Ok(text.lines().filter(|line| !line.trim().is_empty()).count())
    }

    fn predict_fn(&self, rows: usize, _ctx: &Context<'_>) -> Result<Vec<f64>, StageError> {
        Ok(vec![self.mean; rows])
    }

    fn output_fn(&self, scores: Vec<f64>, ctx: &Context<'_>) -> Result<Response, StageError> {
        match ctx.negotiate(ACCEPTS) {
            Some("text/csv") => {
                let body: String = scores.iter().map(|s| format!("{s}\n")).collect();
                Ok(Response::new(body, "text/csv"))
            }
            Some(_) => {
                let items: Vec<String> = scores.iter().map(|s| format!("{{\"score\": {s}}}")).collect();
                let body = format!("{{\"predictions\": [{}]}}", items.join(", "));
                Ok(Response::new(body, "application/json"))
            }
            None => Err(StageError::unsupported_accept(ctx.accept, ACCEPTS)),
        }
    }
}

impl Train for MeanModel {
    fn train_fn(env: &TrainingEnv) -> Result<(), StageError> {
        // Checked first, so a bad value fails the job before any work.
        let scale = match env.hyperparameters().string("scale") {
            None => 1.0,
            Some(text) => text.parse::<f64>().map_err(|_| {
                StageError::bad_request("hyperparameter scale must be a number".to_string())
            })?,
        };
        let (mut sum, mut count) = (0.0, 0usize);
        for file in env.channel_files("train")? {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| StageError::internal(format!("cannot read {}: {e}", file.display())))?;
            for (index, line) in text.lines().enumerate() {
                for field in line.split([',', ' ', '\t']).filter(|f| !f.is_empty()) {
                    let value = field.parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| {
                        StageError::bad_request(format!(
                            "{}:{}: a field is not a finite number",
                            file.display(),
                            index + 1
                        ))
                    })?;
                    sum += value;
                    count += 1;
                }
            }
        }
        if count == 0 {
            return Err(StageError::bad_request("the train channel holds no numbers"));
        }
        let path = env.model_dir().join(MODEL_FILE);
        std::fs::write(&path, format!("{}\n", sum / count as f64 * scale))
            .map_err(|e| StageError::internal(format!("cannot write {}: {e}", path.display())))
    }
}

export_stage!(MeanModel, train);
