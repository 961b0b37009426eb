//! The losses: value and derivative with respect to the model output.
//!
//! Regression losses work on the residual `r = prediction - label`. The
//! optimiser sees them in normalised label units (so one learning rate fits
//! labels of any scale); `loss_insensitivity` and `huber_delta` are given in
//! label units and are converted with the label scale. Reported objectives
//! are in label units.

use crate::model::sigmoid;
use crate::train::config::Loss;

/// `Loss` with its parameters expressed in normalised label units.
#[derive(Debug, Clone, Copy)]
pub struct Objective {
    loss: Loss,
    /// Label scale (1 when labels are not normalised).
    scale: f64,
}

impl Objective {
    pub fn new(loss: Loss, label_scale: f64) -> Objective {
        Objective {
            loss,
            scale: label_scale,
        }
    }

    /// The name of the objective in metric lines (`mse_objective`, ...).
    pub fn metric_name(&self) -> &'static str {
        match self.loss {
            Loss::Squared => "mse_objective",
            Loss::Absolute => "absolute_loss_objective",
            Loss::EpsInsensitiveSquared { .. } => "eps_insensitive_squared_loss_objective",
            Loss::EpsInsensitiveAbsolute { .. } => "eps_insensitive_absolute_loss_objective",
            Loss::Quantile { .. } => "quantile_loss_objective",
            Loss::Huber { .. } => "huber_loss_objective",
            Loss::Logistic => "binary_classification_cross_entropy_objective",
            Loss::Hinge { .. } => "hinge_loss_objective",
            Loss::Softmax => "multiclass_cross_entropy_objective",
        }
    }

    /// Regression: (loss in label units, d loss / d z in normalised units)
    /// for the normalised residual `r`.
    pub fn regression(&self, r: f64) -> (f64, f64) {
        let s = self.scale;
        let ro = r * s; // residual in label units
        match self.loss {
            Loss::Squared => (ro * ro, r),
            Loss::Absolute => (ro.abs(), r.signum()),
            Loss::EpsInsensitiveSquared { eps } => {
                let m = (ro.abs() - eps).max(0.0);
                (m * m, m / s * r.signum())
            }
            Loss::EpsInsensitiveAbsolute { eps } => {
                let m = ro.abs() - eps;
                if m > 0.0 {
                    (m, r.signum())
                } else {
                    (0.0, 0.0)
                }
            }
            Loss::Quantile { q } => {
                if ro < 0.0 {
                    (-q * ro, -q)
                } else {
                    ((1.0 - q) * ro, 1.0 - q)
                }
            }
            Loss::Huber { delta } => {
                if ro.abs() <= delta {
                    (0.5 * ro * ro, r)
                } else {
                    (delta * (ro.abs() - 0.5 * delta), delta / s * r.signum())
                }
            }
            // Classification losses never reach here (the configuration rejects the pairing).
            Loss::Logistic | Loss::Hinge { .. } | Loss::Softmax => (0.0, 0.0),
        }
    }

    /// Binary: (loss, d loss / d z) for the output `z` and the label `y` (0 or 1).
    pub fn binary(&self, z: f64, y: f64) -> (f64, f64) {
        match self.loss {
            Loss::Hinge { margin } => {
                let s = 2.0 * y - 1.0;
                let m = margin - s * z;
                if m > 0.0 {
                    (m, -s)
                } else {
                    (0.0, 0.0)
                }
            }
            // Logistic: softplus(z) - y z, computed without overflow.
            _ => {
                let softplus = z.max(0.0) + (-z.abs()).exp().ln_1p();
                (softplus - y * z, sigmoid(z) - y)
            }
        }
    }
}

/// Softmax cross-entropy: turns `z` into probabilities in place and returns
/// the loss for class `y`; the gradient is `p - onehot(y)`.
pub fn softmax_loss(z: &mut [f64], y: usize) -> f64 {
    crate::model::softmax(z);
    -z[y].max(1e-300).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The optimiser minimises the loss in normalised units, `L_n(r)`, which is
    /// the reported label-unit loss divided by a constant per loss family:
    /// 2s² for the squared ones (they carry a ½), s² for Huber, s for the
    /// linear ones. The returned derivative must be dL_n/dr.
    #[test]
    fn derivatives_match_finite_differences() {
        let s = 2.0;
        let losses = [
            (Loss::Squared, 2.0 * s * s),
            (Loss::EpsInsensitiveSquared { eps: 0.3 }, 2.0 * s * s),
            (Loss::Huber { delta: 0.5 }, s * s),
            (Loss::Absolute, s),
            (Loss::EpsInsensitiveAbsolute { eps: 0.3 }, s),
            (Loss::Quantile { q: 0.3 }, s),
        ];
        for (loss, divisor) in losses {
            let o = Objective::new(loss, s);
            for r in [-1.3, -0.4, 0.37, 1.1] {
                let h = 1e-6;
                let numeric = (o.regression(r + h).0 - o.regression(r - h).0) / (2.0 * h) / divisor;
                let got = o.regression(r).1;
                assert!((got - numeric).abs() < 1e-6, "{loss:?} r={r}: {got} vs {numeric}");
            }
        }
        for loss in [Loss::Logistic, Loss::Hinge { margin: 1.0 }] {
            let o = Objective::new(loss, 1.0);
            for (z, y) in [(-2.0, 1.0), (0.3, 0.0), (0.7, 1.0), (3.0, 0.0)] {
                let h = 1e-6;
                let numeric = (o.binary(z + h, y).0 - o.binary(z - h, y).0) / (2.0 * h);
                assert!((o.binary(z, y).1 - numeric).abs() < 1e-5, "{loss:?} z={z} y={y}");
            }
        }
    }

    #[test]
    fn known_values() {
        let o = Objective::new(Loss::Logistic, 1.0);
        assert!((o.binary(0.0, 1.0).0 - 2f64.ln()).abs() < 1e-15);
        assert!(o.binary(800.0, 0.0).0.is_finite(), "no overflow for large logits");
        let q = Objective::new(Loss::Quantile { q: 0.9 }, 1.0);
        // under-prediction by 1 costs 0.9, over-prediction by 1 costs 0.1
        assert!((q.regression(-1.0).0 - 0.9).abs() < 1e-15);
        assert!((q.regression(1.0).0 - 0.1).abs() < 1e-15);
        let mut z = [0.0, 0.0, 0.0, 0.0];
        assert!((softmax_loss(&mut z, 2) - 4f64.ln()).abs() < 1e-15);
    }
}
