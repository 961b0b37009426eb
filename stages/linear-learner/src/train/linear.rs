//! One linear model under training, in normalised units: weights, bias, the
//! optimiser's state and the gradient of the current mini-batch.
//!
//! The update is: gradient of the mean batch loss, plus `wd × w` (L2; the
//! bias gets `wd × bias_wd_mult`), an SGD (with momentum), Adam or RMSProp
//! step, then the L1 proximal step (soft thresholding by `lr × l1`), which
//! sets small weights to exactly zero as L1 should.

use crate::rng::Rng;
use crate::train::config::{Config, Init, Optimizer};

/// The settings one of the `num_models` models trains with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    pub learning_rate: f64,
    pub wd: f64,
    pub l1: f64,
}

/// How `num_models` spreads the `auto` settings: learning-rate multipliers
/// crossed with L2 strengths. Explicit values are used by every model.
const LR_MULTIPLIERS: [f64; 4] = [1.0, 3.0, 0.3, 0.1];
const WD_GRID: [f64; 2] = [0.0, 1e-4];

impl Settings {
    /// The settings of model `i` of `config.num_models`.
    pub fn for_model(config: &Config, i: usize) -> Settings {
        let base = config.optimizer.default_learning_rate();
        Settings {
            learning_rate: config
                .learning_rate
                .unwrap_or(base * LR_MULTIPLIERS[i % LR_MULTIPLIERS.len()]),
            wd: config
                .wd
                .unwrap_or(WD_GRID[(i / LR_MULTIPLIERS.len()) % WD_GRID.len()]),
            l1: config.l1.unwrap_or(0.0),
        }
    }
}

/// A model with its optimiser state.
#[derive(Debug, Clone)]
pub struct Linear {
    pub settings: Settings,
    /// Features.
    pub d: usize,
    /// Outputs (1, or the number of classes).
    pub k: usize,
    /// Output-major `w[o * d + j]`.
    pub w: Vec<f64>,
    pub b: Vec<f64>,
    grad_w: Vec<f64>,
    grad_b: Vec<f64>,
    /// First moments (Adam) or velocity (SGD momentum, RMSProp momentum).
    m_w: Vec<f64>,
    m_b: Vec<f64>,
    /// Second moments (Adam, RMSProp).
    v_w: Vec<f64>,
    v_b: Vec<f64>,
    /// Updates done, for Adam's bias correction and the scheduler.
    pub t: u64,
    /// Sums of the iterates since the epoch began (Polyak-Ruppert averaging).
    sum_w: Vec<f64>,
    sum_b: Vec<f64>,
    summed: u64,
}

const EPSILON: f64 = 1e-8;

impl Linear {
    pub fn new(config: &Config, settings: Settings, d: usize, k: usize, rng: &mut Rng) -> Linear {
        let w = (0..d * k)
            .map(|_| match config.init {
                Init::Uniform { scale } => (2.0 * rng.next_f64() - 1.0) * scale,
                Init::Normal { sigma } => rng.normal() * sigma,
            })
            .collect();
        let b = vec![if config.use_bias { config.init_bias } else { 0.0 }; k];
        Linear {
            settings,
            d,
            k,
            w,
            b,
            grad_w: vec![0.0; d * k],
            grad_b: vec![0.0; k],
            m_w: vec![0.0; d * k],
            m_b: vec![0.0; k],
            v_w: vec![0.0; d * k],
            v_b: vec![0.0; k],
            t: 0,
            sum_w: vec![0.0; d * k],
            sum_b: vec![0.0; k],
            summed: 0,
        }
    }

    /// Starts a new averaging window (called at the start of each epoch).
    pub fn begin_epoch(&mut self) {
        self.sum_w.iter_mut().for_each(|s| *s = 0.0);
        self.sum_b.iter_mut().for_each(|s| *s = 0.0);
        self.summed = 0;
    }

    /// The model with the average of this epoch's iterates as its weights.
    /// Mini-batch noise averages out, so the average is closer to the optimum
    /// than the last iterate; training itself continues from the last iterate.
    pub fn averaged(&self) -> Linear {
        let mut m = self.clone();
        if self.summed > 0 {
            let n = self.summed as f64;
            m.w.iter_mut().zip(&self.sum_w).for_each(|(w, s)| *w = s / n);
            m.b.iter_mut().zip(&self.sum_b).for_each(|(b, s)| *b = s / n);
        }
        m
    }

    /// The outputs for one normalised row.
    #[inline]
    pub fn forward(&self, x: &[f64], z: &mut [f64]) {
        for (o, zo) in z.iter_mut().enumerate() {
            let w = &self.w[o * self.d..(o + 1) * self.d];
            *zo = self.b[o] + crate::model::dot(w, x);
        }
    }

    /// Adds `dz` (d loss / d output, already weighted) for row `x` to the batch gradient.
    #[inline]
    pub fn accumulate(&mut self, x: &[f64], dz: &[f64]) {
        for (o, &g) in dz.iter().enumerate() {
            if g == 0.0 {
                continue;
            }
            let gw = &mut self.grad_w[o * self.d..(o + 1) * self.d];
            for (gj, xj) in gw.iter_mut().zip(x) {
                *gj += g * xj;
            }
            self.grad_b[o] += g;
        }
    }

    /// Applies the batch gradient (divided by `batch_weight`, the batch's
    /// total example weight) with learning rate `lr`, then clears it.
    pub fn step(&mut self, config: &Config, lr: f64, batch_weight: f64) {
        self.t += 1;
        let inv = if batch_weight > 0.0 {
            1.0 / batch_weight
        } else {
            0.0
        };
        let wd = self.settings.wd;
        for (g, w) in self.grad_w.iter_mut().zip(&self.w) {
            *g = *g * inv + wd * w;
        }
        let bias_wd = wd * config.bias_wd_mult;
        for (g, b) in self.grad_b.iter_mut().zip(&self.b) {
            *g = *g * inv + bias_wd * b;
        }
        let t = self.t;
        update(
            config,
            lr,
            t,
            &mut self.w,
            &self.grad_w,
            &mut self.m_w,
            &mut self.v_w,
        );
        if config.use_bias {
            let lr_b = lr * config.bias_lr_mult;
            update(
                config,
                lr_b,
                t,
                &mut self.b,
                &self.grad_b,
                &mut self.m_b,
                &mut self.v_b,
            );
        }
        let shrink = lr * self.settings.l1;
        if shrink > 0.0 {
            for w in &mut self.w {
                *w = w.signum() * (w.abs() - shrink).max(0.0);
            }
        }
        self.grad_w.iter_mut().for_each(|g| *g = 0.0);
        self.grad_b.iter_mut().for_each(|g| *g = 0.0);
        self.sum_w.iter_mut().zip(&self.w).for_each(|(s, w)| *s += w);
        self.sum_b.iter_mut().zip(&self.b).for_each(|(s, b)| *s += b);
        self.summed += 1;
    }
}

fn update(config: &Config, lr: f64, t: u64, p: &mut [f64], g: &[f64], m: &mut [f64], v: &mut [f64]) {
    match config.optimizer {
        Optimizer::Sgd => {
            let mu = config.momentum;
            for ((p, &g), m) in p.iter_mut().zip(g).zip(m.iter_mut()) {
                *m = mu * *m + g;
                *p -= lr * *m;
            }
        }
        Optimizer::Adam => {
            let (b1, b2) = (config.beta_1, config.beta_2);
            let c1 = 1.0 - b1.powf(t as f64);
            let c2 = 1.0 - b2.powf(t as f64);
            for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                let m_hat = *m / c1;
                let v_hat = *v / c2;
                *p -= lr * m_hat / (v_hat.sqrt() + EPSILON);
            }
        }
        Optimizer::RmsProp => {
            // beta_2 is the decay of the squared-gradient average; momentum applies on top.
            let (rho, mu) = (config.beta_2, config.momentum);
            for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                *v = rho * *v + (1.0 - rho) * g * g;
                *m = mu * *m + g / (v.sqrt() + EPSILON);
                *p -= lr * *m;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::config::Config;
    use modelstage_sdk::training::Hyperparameters;
    use serde_json::json;

    fn config(extra: serde_json::Value) -> Config {
        let mut map = json!({"predictor_type": "regressor"})
            .as_object()
            .unwrap()
            .clone();
        map.extend(extra.as_object().unwrap().clone());
        Config::from_hyperparameters(&Hyperparameters::from_map(map)).unwrap()
    }

    /// One SGD step on one row by hand: w=[0.5], b=0, x=[2], dz=3 →
    /// grad_w = 6, grad_b = 3; lr 0.1 → w = -0.1, b = -0.3.
    #[test]
    fn sgd_step_by_hand() {
        let c = config(json!({"optimizer": "sgd", "init_scale": 1e-9}));
        let s = Settings {
            learning_rate: 0.1,
            wd: 0.0,
            l1: 0.0,
        };
        let mut m = Linear::new(&c, s, 1, 1, &mut Rng::new(1));
        m.w[0] = 0.5;
        m.accumulate(&[2.0], &[3.0]);
        m.step(&c, 0.1, 1.0);
        assert!((m.w[0] - (-0.1)).abs() < 1e-15);
        assert!((m.b[0] - (-0.3)).abs() < 1e-15);
    }

    /// Adam's first step moves every parameter by lr × sign(gradient).
    #[test]
    fn adam_first_step_is_lr_times_sign() {
        let c = config(json!({"optimizer": "adam"}));
        let s = Settings {
            learning_rate: 0.01,
            wd: 0.0,
            l1: 0.0,
        };
        let mut m = Linear::new(&c, s, 2, 1, &mut Rng::new(1));
        let before = m.w.clone();
        m.accumulate(&[1.0, -4.0], &[0.5]);
        m.step(&c, 0.01, 1.0);
        assert!((m.w[0] - (before[0] - 0.01)).abs() < 1e-9);
        assert!((m.w[1] - (before[1] + 0.01)).abs() < 1e-9);
    }

    /// L1 soft-thresholding zeroes a weight whose gradient is zero and whose
    /// size is below lr × l1.
    #[test]
    fn l1_zeroes_small_weights() {
        let c = config(json!({"optimizer": "sgd"}));
        let s = Settings {
            learning_rate: 0.1,
            wd: 0.0,
            l1: 1.0,
        };
        let mut m = Linear::new(&c, s, 2, 1, &mut Rng::new(1));
        m.w = vec![0.05, -0.5];
        m.step(&c, 0.1, 1.0);
        assert_eq!(m.w[0], 0.0);
        assert!((m.w[1] - (-0.4)).abs() < 1e-15);
    }
}
