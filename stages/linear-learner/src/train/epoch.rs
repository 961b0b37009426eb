//! One pass of mini-batch training over the training channel, for every
//! model side by side.
//!
//! Rows are normalised as they arrive and collected into a shuffle buffer of
//! a bounded size (a whole number of mini-batches); a full buffer is shuffled
//! with the seeded generator and cut into mini-batches. Memory stays bounded
//! however large the channel is, and the order is the same for a given seed.
//!
//! The models never read each other's state, so a full buffer is trained on
//! `Setup::threads` threads, each taking whole models through every
//! mini-batch of the buffer in order. A model sees exactly the same
//! arithmetic in the same order whatever the thread count, so the result for
//! a given seed does not depend on it.

use crate::rng::Rng;
use crate::train::cache::RowCache;
use crate::train::config::{Config, PredictorType};
use crate::train::data::{for_each_row_pipelined, Channel};
use crate::train::linear::Linear;
use crate::train::loss::{softmax_loss, Objective};
use crate::train::scaler::{check_class, Scaler};
use modelstage_sdk::StageError;

/// Rows held by the shuffle buffer (rounded up to whole mini-batches), fewer
/// for very wide rows so that the buffer stays under `SHUFFLE_VALUES` numbers.
const SHUFFLE_ROWS: usize = 32_768;
const SHUFFLE_VALUES: usize = 1 << 23;

/// What a pass needs to know besides the models.
pub struct Setup<'a> {
    pub config: &'a Config,
    pub scaler: &'a Scaler,
    pub objective: Objective,
    /// Example weight per class (classifiers), empty for regression.
    pub class_weights: &'a [f64],
    pub feature_dim: usize,
    pub outputs: usize,
    /// Threads a full shuffle buffer is trained on (at least 1).
    pub threads: usize,
}

impl Setup<'_> {
    /// The normalised label (regression) or the class as f64, and the example weight.
    pub fn label(&self, y: f64) -> Result<(f64, f64), StageError> {
        if self.config.predictor_type == PredictorType::Regressor {
            Ok((self.scaler.label(y), 1.0))
        } else {
            let class = check_class(self.config, y)?;
            Ok((class as f64, self.class_weights[class]))
        }
    }

    /// Loss (label units, weighted) of one row's outputs `z`, writing d loss / d z into `dz`.
    #[inline]
    pub fn loss_and_grad(&self, z: &mut [f64], y: f64, weight: f64, dz: &mut [f64]) -> f64 {
        match self.config.predictor_type {
            PredictorType::Regressor => {
                let (l, g) = self.objective.regression(z[0] - y);
                dz[0] = g * weight;
                l * weight
            }
            PredictorType::BinaryClassifier => {
                let (l, g) = self.objective.binary(z[0], y);
                dz[0] = g * weight;
                l * weight
            }
            PredictorType::MulticlassClassifier => {
                let class = y as usize;
                let l = softmax_loss(z, class);
                for (o, (d, &p)) in dz.iter_mut().zip(z.iter()).enumerate() {
                    *d = (p - f64::from(u8::from(o == class))) * weight;
                }
                l * weight
            }
        }
    }

    /// The learning rate of a model after `t` updates.
    pub fn learning_rate(&self, base: f64, t: u64) -> f64 {
        match self.config.scheduler {
            Some(s) => {
                let decays = (t / s.step) as f64;
                (base * s.factor.powf(decays)).max(s.minimum.min(base))
            }
            None => base,
        }
    }
}

/// Trains every model on one pass over `train`; returns each model's mean
/// training objective (measured on each batch before its update).
pub fn train_epoch(
    setup: &Setup<'_>,
    models: &mut [Linear],
    train: &Channel,
    cache: &mut RowCache,
    rng: &mut Rng,
) -> Result<Vec<f64>, StageError> {
    let d = setup.feature_dim;
    let batch = setup.config.mini_batch_size;
    let rows = SHUFFLE_ROWS.min(SHUFFLE_VALUES / d.max(1));
    let cap = rows.div_ceil(batch).max(1) * batch;
    let mut pass = Pass {
        setup,
        models,
        x: Vec::with_capacity(cap * d),
        y: Vec::with_capacity(cap),
        w: Vec::with_capacity(cap),
        cap,
        order: Vec::with_capacity(cap),
        loss: vec![0.0; setup.config.num_models],
        weight: 0.0,
        row: vec![0.0; d],
    };
    let check = |y| setup.label(y).map(|_| ());
    cache.for_each_row(train, check, |y, x| pass.push(y, x, rng))?;
    pass.flush(rng);
    let weight = pass.weight.max(f64::MIN_POSITIVE);
    Ok(pass.loss.iter().map(|l| l / weight).collect())
}

struct Pass<'a, 'm> {
    setup: &'a Setup<'a>,
    models: &'m mut [Linear],
    x: Vec<f64>,
    y: Vec<f64>,
    w: Vec<f64>,
    cap: usize,
    order: Vec<usize>,
    loss: Vec<f64>,
    weight: f64,
    row: Vec<f64>,
}

impl Pass<'_, '_> {
    fn push(&mut self, y: f64, x: &[f64], rng: &mut Rng) {
        // The reader checked the label already.
        let Ok((label, weight)) = self.setup.label(y) else {
            return;
        };
        self.setup.scaler.apply(x, &mut self.row);
        self.x.extend_from_slice(&self.row);
        self.y.push(label);
        self.w.push(weight);
        if self.y.len() == self.cap {
            self.flush(rng);
        }
    }

    /// Shuffles the buffer and trains every model on it, batch by batch.
    fn flush(&mut self, rng: &mut Rng) {
        let n = self.y.len();
        if n == 0 {
            return;
        }
        self.order.clear();
        self.order.extend(0..n);
        rng.shuffle(&mut self.order);
        let batch = self.setup.config.mini_batch_size;
        for chunk in self.order.chunks(batch) {
            self.weight += chunk.iter().map(|&i| self.w[i]).sum::<f64>();
        }
        let buffer = Buffer {
            setup: self.setup,
            x: &self.x,
            y: &self.y,
            w: &self.w,
            order: &self.order,
        };
        // Whole models per thread; the first group runs on this thread.
        let per_thread = self.models.len().div_ceil(self.setup.threads.max(1)).max(1);
        let mut groups = self
            .models
            .chunks_mut(per_thread)
            .zip(self.loss.chunks_mut(per_thread));
        let first = groups.next();
        std::thread::scope(|scope| {
            for (models, loss) in groups {
                let buffer = &buffer;
                scope.spawn(move || buffer.train(models, loss));
            }
            if let Some((models, loss)) = first {
                buffer.train(models, loss);
            }
        });
        self.x.clear();
        self.y.clear();
        self.w.clear();
    }
}

/// A shuffled, full buffer, read by every training thread.
struct Buffer<'a> {
    setup: &'a Setup<'a>,
    x: &'a [f64],
    y: &'a [f64],
    w: &'a [f64],
    order: &'a [usize],
}

impl Buffer<'_> {
    /// Trains `models` through every mini-batch of the buffer, adding each
    /// model's loss (before its updates) to `loss`.
    fn train(&self, models: &mut [Linear], loss: &mut [f64]) {
        let d = self.setup.feature_dim;
        let mut z = vec![0.0; self.setup.outputs];
        let mut dz = vec![0.0; self.setup.outputs];
        for (model, loss) in models.iter_mut().zip(loss.iter_mut()) {
            for chunk in self.order.chunks(self.setup.config.mini_batch_size) {
                let batch_weight: f64 = chunk.iter().map(|&i| self.w[i]).sum();
                for &i in chunk {
                    let x = &self.x[i * d..(i + 1) * d];
                    model.forward(x, &mut z);
                    *loss += self.setup.loss_and_grad(&mut z, self.y[i], self.w[i], &mut dz);
                    model.accumulate(x, &dz);
                }
                let lr = self.setup.learning_rate(model.settings.learning_rate, model.t);
                model.step(self.setup.config, lr, batch_weight);
            }
        }
    }
}

/// Each model's mean objective on `channel` (normalised features, no update).
/// `on_row(model, score, label)` sees every binary score (probability for
/// logistic loss, margin for hinge) for threshold calibration.
pub fn evaluate(
    setup: &Setup<'_>,
    models: &[Linear],
    channel: &Channel,
    mut on_row: impl FnMut(usize, f64, f64),
) -> Result<Vec<f64>, StageError> {
    let mut loss = vec![0.0; models.len()];
    let mut weight = 0.0;
    let mut row = vec![0.0; setup.feature_dim];
    let mut z = vec![0.0; setup.outputs];
    let mut dz = vec![0.0; setup.outputs];
    let logistic = setup.config.loss == crate::train::config::Loss::Logistic;
    let check = |y| setup.label(y).map(|_| ());
    for_each_row_pipelined(channel, setup.feature_dim, check, |y, x| {
        // The reader checked the label already.
        let Ok((label, w)) = setup.label(y) else {
            return;
        };
        setup.scaler.apply(x, &mut row);
        weight += w;
        for (m, model) in models.iter().enumerate() {
            model.forward(&row, &mut z);
            let raw = z[0];
            loss[m] += setup.loss_and_grad(&mut z, label, w, &mut dz);
            if setup.config.predictor_type == PredictorType::BinaryClassifier {
                on_row(m, if logistic { crate::model::sigmoid(raw) } else { raw }, label);
            }
        }
    })?;
    let weight = weight.max(f64::MIN_POSITIVE);
    Ok(loss.iter().map(|l| l / weight).collect())
}
