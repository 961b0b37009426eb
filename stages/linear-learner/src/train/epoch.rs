//! One pass of mini-batch training over the training channel, for every
//! model side by side.
//!
//! Rows are prepared (label converted, features normalised) as they arrive
//! and handed over in windows of a bounded size (a whole number of
//! mini-batches); each window is shuffled with the seeded generator and cut
//! into mini-batches. Memory stays bounded however large the channel is, and
//! the order is the same for a given seed. After the first pass the windows
//! come from the channel's [`RowCache`] when it fits, so a later epoch is
//! only the shuffle and the training.
//!
//! The models never read each other's state, so a window is trained (and
//! evaluated) on `Setup::threads` threads, each taking whole models through
//! every mini-batch of the window in order. A model sees exactly the same
//! arithmetic in the same order whatever the thread count, so the result for
//! a given seed does not depend on it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use crate::rng::Rng;
use crate::train::cache::{RowCache, FEATURES, LABEL, WEIGHT};
use crate::train::config::{Config, PredictorType};
use crate::train::data::Channel;
use crate::train::linear::Linear;
use crate::train::loss::{softmax_loss, Objective};
use crate::train::scaler::{check_class, Scaler};
use modelstage_sdk::StageError;

/// Rows of a shuffled window (rounded up to whole mini-batches), fewer for
/// very wide rows so that a window stays under `SHUFFLE_VALUES` numbers.
const SHUFFLE_ROWS: usize = 32_768;
const SHUFFLE_VALUES: usize = 1 << 23;

/// The most numbers one mini-batch may take (512 MiB of `f64`): a
/// mini-batch is held in memory whole, so `mini_batch_size` is bounded by
/// the width of its rows.
pub const MAX_BATCH_VALUES: usize = 1 << 26;

/// Refuses a `mini_batch_size` whose mini-batches of `feature_dim`
/// features would not fit [`MAX_BATCH_VALUES`].
pub fn check_mini_batch(config: &Config, feature_dim: usize) -> Result<(), StageError> {
    let stride = feature_dim + FEATURES;
    let most = MAX_BATCH_VALUES / stride;
    if config.mini_batch_size > most {
        return Err(StageError::bad_request(format!(
            "hyperparameter 'mini_batch_size' is {}, but with {feature_dim} features at most {most} rows \
             fit a mini-batch held in memory ({} MiB); lower mini_batch_size",
            config.mini_batch_size,
            (MAX_BATCH_VALUES * 8) >> 20
        )));
    }
    Ok(())
}

/// What a pass needs to know besides the models.
pub struct Setup<'a> {
    pub config: &'a Config,
    pub scaler: &'a Scaler,
    pub objective: Objective,
    /// Example weight per class (classifiers), empty for regression.
    pub class_weights: &'a [f64],
    pub feature_dim: usize,
    pub outputs: usize,
    /// Threads a window is trained and evaluated on (at least 1).
    pub threads: usize,
    /// Threads a CSV channel is parsed on (the job's CPUs, at least 1).
    pub parsers: usize,
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

    /// Fills `row` (a [`RowCache`] row) from a parsed row; `false` leaves the
    /// row out (the reader has checked the label already, so it does not
    /// happen).
    pub fn prepare(&self, y: f64, x: &[f64], row: &mut [f64]) -> bool {
        let Ok((label, weight)) = self.label(y) else {
            return false;
        };
        row[LABEL] = label;
        row[WEIGHT] = weight;
        self.scaler.apply(x, &mut row[FEATURES..]);
        true
    }

    /// Validates a label where it is parsed (a parser thread, when there are several).
    fn check(&self, y: f64) -> Result<(), StageError> {
        self.label(y).map(|_| ())
    }

    /// Rows per window for rows of this width.
    fn window_rows(&self) -> usize {
        let rows = SHUFFLE_ROWS.min(SHUFFLE_VALUES / self.feature_dim.max(1));
        let batch = self.config.mini_batch_size;
        rows.div_ceil(batch).max(1) * batch
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

/// Trains every model on one pass over `train` (its rows in `cache`);
/// returns each model's mean training objective (measured on each batch
/// before its update).
pub fn train_epoch(
    setup: &Setup<'_>,
    models: &mut [Linear],
    train: &Channel,
    cache: &mut RowCache,
    rng: &mut Rng,
) -> Result<Vec<f64>, StageError> {
    let stride = cache.stride();
    let window_rows = setup.window_rows();
    let mut loss = vec![0.0; models.len()];
    // The epoch's total example weight, added batch by batch in the shuffled order by the thread
    // of the first group of models (see `Window::train`): the same sum whatever the thread count.
    let weight = AtomicU64::new(0.0f64.to_bits());
    let mut shuffle = |rows: &[f64]| -> Vec<u32> {
        let mut order: Vec<u32> = (0..(rows.len() / stride) as u32).collect();
        rng.shuffle(&mut order);
        order
    };
    let mut work: Vec<(&mut Linear, &mut f64)> = models.iter_mut().zip(loss.iter_mut()).collect();
    if let Some(rows) = cache.complete() {
        // Every window is in memory: each thread takes its models through
        // every window, with no hand-over between windows. This thread
        // shuffles the windows in order (the orders take 4 bytes a row) and
        // the other threads start on each as soon as it is shuffled.
        let windows: Vec<&[f64]> = rows.chunks(window_rows * stride).collect();
        let orders: Vec<OnceLock<Vec<u32>>> = windows.iter().map(|_| OnceLock::new()).collect();
        in_groups(
            &mut work,
            setup.threads,
            || {
                for (rows, order) in windows.iter().zip(&orders) {
                    // Only this thread sets the orders.
                    let _ = order.set(shuffle(rows));
                }
            },
            |first, group| {
                let mut total = (first == 0).then(|| f64::from_bits(weight.load(Ordering::Relaxed)));
                for (rows, order) in windows.iter().zip(&orders) {
                    let window = Window {
                        setup,
                        rows,
                        stride,
                        order: order.wait(),
                    };
                    window.train(group, total.as_mut());
                }
                if let Some(total) = total {
                    weight.store(total.to_bits(), Ordering::Relaxed);
                }
            },
        );
    } else {
        cache.for_each_window(
            train,
            window_rows,
            setup.parsers,
            |y| setup.check(y),
            |y, x, row| setup.prepare(y, x, row),
            |rows| {
                let order = shuffle(rows);
                let window = Window {
                    setup,
                    rows,
                    stride,
                    order: &order,
                };
                in_groups(
                    &mut work,
                    setup.threads,
                    || {},
                    |first, group| {
                        let mut total = (first == 0).then(|| f64::from_bits(weight.load(Ordering::Relaxed)));
                        window.train(group, total.as_mut());
                        if let Some(total) = total {
                            weight.store(total.to_bits(), Ordering::Relaxed);
                        }
                    },
                );
            },
        )?;
    }
    drop(work);
    let weight = f64::from_bits(weight.into_inner()).max(f64::MIN_POSITIVE);
    Ok(loss.iter().map(|l| l / weight).collect())
}

/// Runs `work(first, group)` over `items` cut into at most `threads` groups
/// of whole items (`first` is the group's first index), each group on its own
/// thread; this thread runs `lead` once the others have started, then the
/// first group.
fn in_groups<T: Send>(
    items: &mut [T],
    threads: usize,
    lead: impl FnOnce(),
    work: impl Fn(usize, &mut [T]) + Sync,
) {
    let per_thread = items.len().div_ceil(threads.max(1)).max(1);
    let mut groups = items.chunks_mut(per_thread).enumerate();
    let first = groups.next();
    std::thread::scope(|scope| {
        let work = &work;
        for (g, group) in groups {
            scope.spawn(move || work(g * per_thread, group));
        }
        lead();
        if let Some((_, group)) = first {
            work(0, group);
        }
    });
}

/// A shuffled window of prepared rows, read by every thread.
struct Window<'a> {
    setup: &'a Setup<'a>,
    rows: &'a [f64],
    stride: usize,
    order: &'a [u32],
}

impl Window<'_> {
    /// Trains each model of `group` through every mini-batch of the window,
    /// adding its loss (before its updates) to its total, and each batch's
    /// example weight to `weight` when given (one group is given it: the sum
    /// was the shuffling thread's, a read of every row in shuffled order that
    /// the other threads waited on).
    ///
    /// A mini-batch's rows are first copied, in their shuffled order, into
    /// one block, which every model of the group then reads in turn: the
    /// copy's reads are independent of each other, so the processor fetches
    /// many rows of the window (larger than a core's cache) at once, where
    /// the models' passes would wait for them one by one; the block stays in
    /// cache for the next model. Each model still sees its own batches, row
    /// by row, in order, so its arithmetic does not change.
    fn train(&self, group: &mut [(&mut Linear, &mut f64)], mut weight: Option<&mut f64>) {
        let stride = self.stride;
        let mut z = vec![0.0; self.setup.outputs];
        let mut dz = vec![0.0; self.setup.outputs];
        let batch_size = self.setup.config.mini_batch_size;
        let mut batch = Vec::with_capacity(batch_size.min(self.order.len()) * stride);
        // Summed here, not in place: the totals of models on other threads
        // share a cache line with these, and writing it on every row would
        // make the threads take turns. The sums are the same, in the same order.
        let mut totals: Vec<f64> = group.iter().map(|(_, loss)| **loss).collect();
        for chunk in self.order.chunks(batch_size) {
            batch.clear();
            for &i in chunk {
                let i = i as usize;
                batch.extend_from_slice(&self.rows[i * stride..(i + 1) * stride]);
            }
            let batch_weight: f64 = batch.chunks_exact(stride).map(|row| row[WEIGHT]).sum();
            if let Some(weight) = weight.as_deref_mut() {
                *weight += batch_weight;
            }
            for ((model, _), total) in group.iter_mut().zip(totals.iter_mut()) {
                for row in batch.chunks_exact(stride) {
                    let x = &row[FEATURES..];
                    model.forward(x, &mut z);
                    *total += self.setup.loss_and_grad(&mut z, row[LABEL], row[WEIGHT], &mut dz);
                    model.accumulate(x, &dz);
                }
                let lr = self.setup.learning_rate(model.settings.learning_rate, model.t);
                model.step(self.setup.config, lr, batch_weight);
            }
        }
        for ((_, loss), total) in group.iter_mut().zip(totals) {
            **loss = total;
        }
    }
}

/// One model's evaluation: its weighted loss and, for threshold
/// calibration, its first scores with their labels.
#[derive(Debug, Clone, Default)]
pub struct Scores {
    pub loss: f64,
    /// (probability for logistic loss, margin for hinge; label is positive),
    /// for binary classifiers only, at most the `calibration` asked for.
    pub samples: Vec<(f64, bool)>,
}

/// Each model's mean objective on `channel` (its rows in `cache`; no
/// update), and its first `calibration` binary scores in file order.
pub fn evaluate(
    setup: &Setup<'_>,
    models: &[Linear],
    channel: &Channel,
    cache: &mut RowCache,
    calibration: usize,
) -> Result<Vec<Scores>, StageError> {
    let stride = cache.stride();
    let mut scores = vec![Scores::default(); models.len()];
    let mut weight = 0.0;
    let binary = setup.config.predictor_type == PredictorType::BinaryClassifier;
    let calibration = if binary { calibration } else { 0 };
    let logistic = setup.config.loss == crate::train::config::Loss::Logistic;
    cache.for_each_window(
        channel,
        setup.window_rows(),
        setup.parsers,
        |y| setup.check(y),
        |y, x, row| setup.prepare(y, x, row),
        |rows| {
            // Row by row, in the order a single pass adds them.
            for row in rows.chunks(stride) {
                weight += row[WEIGHT];
            }
            in_groups(
                &mut scores,
                setup.threads,
                || {},
                |first, group| {
                    let mut z = vec![0.0; setup.outputs];
                    let mut dz = vec![0.0; setup.outputs];
                    for (model, scores) in models[first..].iter().zip(group.iter_mut()) {
                        // On the stack, as in `Window::train`: no cache line shared across threads.
                        let mut total = scores.loss;
                        for row in rows.chunks(stride) {
                            let (label, w) = (row[LABEL], row[WEIGHT]);
                            model.forward(&row[FEATURES..], &mut z);
                            let raw = z[0];
                            total += setup.loss_and_grad(&mut z, label, w, &mut dz);
                            if scores.samples.len() < calibration {
                                let score = if logistic { crate::model::sigmoid(raw) } else { raw };
                                scores.samples.push((score, label > 0.5));
                            }
                        }
                        scores.loss = total;
                    }
                },
            );
        },
    )?;
    let weight = weight.max(f64::MIN_POSITIVE);
    for s in &mut scores {
        s.loss /= weight;
    }
    Ok(scores)
}
