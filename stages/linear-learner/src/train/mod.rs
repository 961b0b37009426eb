//! Training: the first pass for the scaler, epochs of mini-batch training of
//! `num_models` models side by side with early stopping, the choice of the
//! best model (validation channel, else training channel), threshold
//! calibration, the model file, and the final validation/test metrics.

pub mod cache;
pub mod calibrate;
pub mod config;
pub mod csv_blocks;
pub mod data;
pub mod epoch;
pub mod hook;
pub mod linear;
pub mod loss;
pub mod metrics;
pub mod scaler;

use modelstage_sdk::StageError;
use serde_json::json;

use crate::model::{ModelFile, Normalization, FORMAT};
use crate::rng::Rng;
use crate::train::cache::{RowCache, TRAIN_CACHE_VALUES, VALIDATION_CACHE_VALUES};
use crate::train::calibrate::best_threshold;
use crate::train::config::{Config, Criterion, Loss, PredictorType};
use crate::train::data::{for_each_row, Channel};
use crate::train::epoch::{check_mini_batch, evaluate, train_epoch, Setup};
use crate::train::linear::{Linear, Settings};
use crate::train::loss::Objective;
use crate::train::metrics::{quality_line, Evaluator};
use crate::train::scaler::Sample;

/// A training job: the configuration and the channels.
#[derive(Debug, Clone)]
pub struct Job {
    pub config: Config,
    pub train: Channel,
    pub validation: Option<Channel>,
    pub test: Option<Channel>,
    /// `current_host`, for the metric lines.
    pub host: String,
    /// The CPUs training may use (`SM_NUM_CPUS`); the models are trained on
    /// up to this many threads, with the same result whatever the number.
    pub threads: usize,
}

/// What training produced besides the model: the final metrics per channel.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub model: ModelFile,
    /// (`validation` / `test`, metrics of the kept model).
    pub metrics: Vec<(String, Vec<metrics::Metric>)>,
    pub epochs_run: u64,
}

/// Runs the job. Logs one metric line per epoch and the final metrics.
pub fn run(job: &Job) -> Result<Outcome, StageError> {
    let config = &job.config;
    let sample = Sample::fit(config, &job.train)?;
    let d = sample.feature_dim;
    check_mini_batch(config, d)?;
    let outputs = if config.predictor_type == PredictorType::MulticlassClassifier {
        config.num_classes
    } else {
        1
    };
    let setup = Setup {
        config,
        scaler: &sample.scaler,
        objective: Objective::new(config.loss, sample.scaler.label_scale),
        class_weights: &sample.class_weights,
        feature_dim: d,
        outputs,
        threads: job.threads.clamp(1, config.num_models.max(1)),
        parsers: job.threads.max(1),
    };
    let mut models: Vec<Linear> = (0..config.num_models)
        .map(|i| {
            let mut init = Rng::new(config.seed.wrapping_mul(0x9E37_79B9).wrapping_add(i as u64 + 1));
            Linear::new(config, Settings::for_model(config, i), d, outputs, &mut init)
        })
        .collect();
    let mut shuffle = Rng::new(config.seed);
    let objective_name = setup.objective.metric_name();
    log::info!(
        "Linear Learner: {} with {} loss, feature_dim {d}, {} models side by side, mini_batch_size {}",
        config.predictor_type.name(),
        config.loss.name(),
        config.num_models,
        config.mini_batch_size
    );

    // Best validation loss and (averaged) weights of each model (validation channel only).
    let mut best: Vec<Option<Snapshot>> = vec![None; models.len()];
    let mut averaged: Vec<Linear> = Vec::new();
    let mut stopper = EarlyStopping::new(config.early_stopping_patience, config.early_stopping_tolerance);
    let mut epochs_run = 0;
    let mut caches = Caches {
        train: RowCache::new(d, TRAIN_CACHE_VALUES),
        validation: RowCache::new(d, VALIDATION_CACHE_VALUES),
    };
    for epoch in 0..config.epochs {
        models.iter_mut().for_each(Linear::begin_epoch);
        let train_loss = train_epoch(&setup, &mut models, &job.train, &mut caches.train, &mut shuffle)?;
        averaged = models.iter().map(Linear::averaged).collect();
        epochs_run = epoch + 1;
        let best_train = min(&train_loss);
        log::info!(
            "{}",
            quality_line(
                &job.host,
                &format!("epoch={epoch}, train"),
                &objective(objective_name, best_train)
            )
        );
        let watched = match &job.validation {
            Some(validation) => {
                let scores = evaluate(&setup, &averaged, validation, &mut caches.validation, 0)?;
                let val_loss: Vec<f64> = scores.iter().map(|s| s.loss).collect();
                for (m, &l) in val_loss.iter().enumerate() {
                    if best[m].as_ref().is_none_or(|b| l < b.0) {
                        best[m] = Some((l, averaged[m].w.clone(), averaged[m].b.clone()));
                    }
                }
                let best_val = min(&val_loss);
                let line = quality_line(
                    &job.host,
                    &format!("epoch={epoch}, validation"),
                    &objective(objective_name, best_val),
                );
                log::info!("{line}");
                best_val
            }
            None => best_train,
        };
        if !watched.is_finite() {
            return Err(StageError::internal(format!(
                "training diverged at epoch {epoch} (the objective is {watched}); lower learning_rate or \
                 enable normalize_data"
            )));
        }
        if stopper.stop(watched) && epoch + 1 < config.epochs {
            log::info!(
                "Early stopping at epoch {epoch}: the {} objective has not improved by {} for {} epochs",
                if job.validation.is_some() {
                    "validation"
                } else {
                    "training"
                },
                config.early_stopping_tolerance,
                config.early_stopping_patience
            );
            break;
        }
    }
    // The kept weights: the last epoch's average, or the best epoch on validation.
    let mut models = averaged;
    for (model, snapshot) in models.iter_mut().zip(best) {
        if let Some((_, w, b)) = snapshot {
            model.w = w;
            model.b = b;
        }
    }

    let (chosen, threshold, selection_loss) = choose(job, &setup, &models, &mut caches)?;
    let model = model_file(
        job,
        &sample,
        &models[chosen],
        threshold,
        chosen,
        epochs_run,
        selection_loss,
        d,
    );
    let predictor = model.predictor()?;
    let mut metrics_out = Vec::new();
    for (scope, channel) in [("validation", &job.validation), ("test", &job.test)] {
        if let Some(channel) = channel {
            let metrics = final_metrics(config, &predictor, channel)?;
            for m in &metrics {
                log::info!("{}", quality_line(&job.host, scope, m));
            }
            metrics_out.push((scope.to_string(), metrics));
        }
    }
    Ok(Outcome {
        model,
        metrics: metrics_out,
        epochs_run,
    })
}

/// The prepared rows of the channels read more than once.
struct Caches {
    train: RowCache,
    validation: RowCache,
}

/// A model's best validation loss so far, with its weights and biases.
type Snapshot = (f64, Vec<f64>, Vec<f64>);

fn objective(name: &str, value: f64) -> metrics::Metric {
    metrics::Metric {
        name: name.to_string(),
        is_loss: true,
        value,
    }
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

/// Stops when the watched loss has not improved by `tolerance` (relative)
/// for `patience` epochs in a row.
struct EarlyStopping {
    patience: u64,
    tolerance: f64,
    best: f64,
    stale: u64,
}

impl EarlyStopping {
    fn new(patience: u64, tolerance: f64) -> Self {
        EarlyStopping {
            patience,
            tolerance,
            best: f64::INFINITY,
            stale: 0,
        }
    }

    fn stop(&mut self, loss: f64) -> bool {
        if loss < self.best - self.tolerance * self.best.abs() || self.best.is_infinite() {
            self.best = self.best.min(loss);
            self.stale = 0;
        } else {
            self.best = self.best.min(loss);
            self.stale += 1;
        }
        self.stale >= self.patience
    }
}

/// Picks the model to keep and its threshold, on the validation channel
/// (else the training channel): the best calibrated criterion for a binary
/// classifier (unless the criterion is the loss), else the smallest loss.
fn choose(
    job: &Job,
    setup: &Setup<'_>,
    models: &[Linear],
    caches: &mut Caches,
) -> Result<(usize, Option<f64>, f64), StageError> {
    let config = &job.config;
    let (channel, cache) = match &job.validation {
        Some(validation) => (validation, &mut caches.validation),
        None => (&job.train, &mut caches.train),
    };
    let binary = config.predictor_type == PredictorType::BinaryClassifier;
    let scores = evaluate(setup, models, channel, cache, config.num_calibration_samples)?;
    let losses: Vec<f64> = scores.iter().map(|s| s.loss).collect();
    let default_threshold = match config.loss {
        Loss::Logistic => 0.5,
        _ => 0.0,
    };
    let by_loss = (0..models.len())
        .min_by(|&a, &b| losses[a].total_cmp(&losses[b]))
        .unwrap_or(0);
    if !binary {
        return Ok((by_loss, None, losses[by_loss]));
    }
    if config.criterion == Criterion::Loss {
        return Ok((by_loss, Some(default_threshold), losses[by_loss]));
    }
    let mut chosen = (by_loss, default_threshold, f64::NEG_INFINITY);
    for (m, mut s) in scores.into_iter().enumerate() {
        let (t, value) = best_threshold(&mut s.samples, config.criterion, default_threshold);
        let value = value.unwrap_or(f64::NEG_INFINITY);
        let better = value > chosen.2 || (value == chosen.2 && losses[m] < losses[chosen.0]);
        if better {
            chosen = (m, t, value);
        }
    }
    log::info!(
        "Kept model {} of {}: {:?} {} with threshold {} on the {} channel",
        chosen.0,
        models.len(),
        config.criterion,
        chosen.2,
        chosen.1,
        channel.name
    );
    Ok((chosen.0, Some(chosen.1), losses[chosen.0]))
}

/// The model file of `model`, with the normalisation folded into the weights.
#[allow(clippy::too_many_arguments)]
fn model_file(
    job: &Job,
    sample: &Sample,
    model: &Linear,
    threshold: Option<f64>,
    index: usize,
    epochs_run: u64,
    selection_loss: f64,
    d: usize,
) -> ModelFile {
    let config = &job.config;
    let s = &sample.scaler;
    let mut weights = Vec::with_capacity(model.k);
    let mut bias = Vec::with_capacity(model.k);
    for o in 0..model.k {
        let w = &model.w[o * d..(o + 1) * d];
        // z_n = Σ w_j (x_j - μ_j)/σ_j + b and y = z_n · s_y + μ_y
        let raw: Vec<f64> = w
            .iter()
            .zip(&s.feature_scale)
            .map(|(w, sc)| w / sc * s.label_scale)
            .collect();
        let shift: f64 = w
            .iter()
            .zip(&s.feature_mean)
            .zip(&s.feature_scale)
            .map(|((w, m), sc)| w * m / sc)
            .sum();
        bias.push((model.b[o] - shift) * s.label_scale + s.label_mean);
        weights.push(raw);
    }
    ModelFile {
        format: FORMAT.to_string(),
        predictor_type: config.predictor_type.name().to_string(),
        loss: config.loss.name().to_string(),
        feature_dim: d,
        num_classes: (config.predictor_type == PredictorType::MulticlassClassifier)
            .then_some(config.num_classes),
        weights,
        bias,
        threshold,
        normalization: Normalization {
            feature_mean: s.feature_mean.clone(),
            feature_scale: s.feature_scale.clone(),
            label_mean: s.label_mean,
            label_scale: s.label_scale,
        },
        training: json!({
            "optimizer": config.optimizer.name(),
            "learning_rate": model.settings.learning_rate,
            "wd": model.settings.wd,
            "l1": model.settings.l1,
            "mini_batch_size": config.mini_batch_size,
            "epochs_run": epochs_run,
            "num_models": config.num_models,
            "kept_model": index,
            "selected_on": job.validation.as_ref().map_or("train", |_| "validation"),
            "selection_objective": selection_loss,
            "seed": config.seed,
        }),
    }
}

/// The kept model's metrics on `channel`, computed with the model file's
/// predictor on raw features (what serving will answer).
fn final_metrics(
    config: &Config,
    predictor: &crate::model::Predictor,
    channel: &Channel,
) -> Result<Vec<metrics::Metric>, StageError> {
    const CHUNK: usize = 4096;
    let d = predictor.feature_dim;
    let mut evaluator = Evaluator::new(config, predictor.kind);
    let mut x = Vec::with_capacity(CHUNK * d);
    let mut y = Vec::with_capacity(CHUNK);
    let mut dim = Some(d);
    let is_classifier = config.predictor_type != PredictorType::Regressor;
    for_each_row(channel, &mut dim, |label, row| {
        if is_classifier {
            scaler::check_class(config, label)?;
        }
        x.extend_from_slice(row);
        y.push(label);
        if y.len() == CHUNK {
            evaluator.add(&predictor.predict(&x), &y);
            x.clear();
            y.clear();
        }
        Ok(true)
    })?;
    if !y.is_empty() {
        evaluator.add(&predictor.predict(&x), &y);
    }
    if evaluator.rows() == 0.0 {
        return Err(StageError::bad_request(format!(
            "channel '{}' has no rows",
            channel.name
        )));
    }
    Ok(evaluator.metrics())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn early_stopping_counts_stale_epochs() {
        let mut s = EarlyStopping::new(2, 0.01);
        assert!(!s.stop(10.0));
        assert!(!s.stop(9.0)); // improved by 10%
        assert!(!s.stop(8.95)); // 0.6%: stale 1
        assert!(s.stop(8.94)); // stale 2 → stop
    }
}
