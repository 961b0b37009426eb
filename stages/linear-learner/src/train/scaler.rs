//! Normalisation statistics from the first `num_point_for_scaler` rows of
//! the training channel (as SageMaker's Linear Learner does), and the label
//! counts the class weights are computed from.

use modelstage_sdk::StageError;

use crate::train::config::{Config, PositiveWeight, PredictorType};
use crate::train::data::{for_each_row, Channel};

/// `x_n = (x - mean) / scale` per feature, and the same for the label.
#[derive(Debug, Clone, PartialEq)]
pub struct Scaler {
    pub feature_mean: Vec<f64>,
    pub feature_scale: Vec<f64>,
    pub label_mean: f64,
    pub label_scale: f64,
}

/// What the first pass learns.
#[derive(Debug, Clone)]
pub struct Sample {
    pub scaler: Scaler,
    pub feature_dim: usize,
    /// The weight of each class's examples (classifiers), else empty.
    pub class_weights: Vec<f64>,
}

/// Welford's running mean and variance (population).
#[derive(Debug, Clone, Default)]
struct Moments {
    n: f64,
    mean: f64,
    m2: f64,
}

impl Moments {
    fn push(&mut self, x: f64) {
        self.n += 1.0;
        let delta = x - self.mean;
        self.mean += delta / self.n;
        self.m2 += delta * (x - self.mean);
    }

    /// The population standard deviation, 1 for a constant column (so it
    /// maps to `x - mean`, never a division by zero).
    fn scale(&self) -> f64 {
        let sd = if self.n > 0.0 {
            (self.m2 / self.n).sqrt()
        } else {
            0.0
        };
        if sd > 1e-12 * self.mean.abs().max(1.0) {
            sd
        } else {
            1.0
        }
    }
}

impl Sample {
    /// Reads the first rows of `train` and derives the scaler and class weights.
    pub fn fit(config: &Config, train: &Channel) -> Result<Sample, StageError> {
        let mut dim = config.feature_dim;
        let mut features: Vec<Moments> = Vec::new();
        let mut label = Moments::default();
        let mut counts = vec![
            0u64;
            if config.predictor_type == PredictorType::Regressor {
                0
            } else {
                config.num_classes.max(2)
            }
        ];
        let limit = config.num_point_for_scaler;
        let mut seen = 0u64;
        for_each_row(train, &mut dim, |y, x| {
            if features.is_empty() {
                features = vec![Moments::default(); x.len()];
            }
            for (m, &v) in features.iter_mut().zip(x) {
                m.push(v);
            }
            label.push(y);
            if !counts.is_empty() {
                let class = check_class(config, y)?;
                counts[class] += 1;
            }
            seen += 1;
            Ok(seen < limit)
        })?;
        let feature_dim = match dim {
            Some(d) if seen > 0 => d,
            _ => {
                return Err(StageError::bad_request(format!(
                    "channel 'train' has no rows (files: {})",
                    train
                        .files
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )))
            }
        };
        let scaler = Scaler {
            feature_mean: features
                .iter()
                .map(|m| {
                    if config.normalize_data && config.unbias_data {
                        m.mean
                    } else {
                        0.0
                    }
                })
                .collect(),
            feature_scale: features
                .iter()
                .map(|m| if config.normalize_data { m.scale() } else { 1.0 })
                .collect(),
            label_mean: if config.normalize_label && config.unbias_label {
                label.mean
            } else {
                0.0
            },
            label_scale: if config.normalize_label {
                label.scale()
            } else {
                1.0
            },
        };
        Ok(Sample {
            scaler,
            feature_dim,
            class_weights: class_weights(config, &counts),
        })
    }
}

/// The class of a classification label, or why it is not one (a bad
/// request that does not say where the row is: the reader adds that).
pub fn check_class(config: &Config, y: f64) -> Result<usize, StageError> {
    let classes = config.num_classes.max(2);
    if y >= 0.0 && y.fract() == 0.0 && (y as usize) < classes {
        Ok(y as usize)
    } else if config.predictor_type == PredictorType::BinaryClassifier {
        Err(StageError::bad_request(format!(
            "label {y} is not 0 or 1 (a binary_classifier needs 0/1 labels)"
        )))
    } else {
        Err(StageError::bad_request(format!(
            "label {y} is not a class index 0..{} (num_classes is {classes})",
            classes - 1
        )))
    }
}

fn class_weights(config: &Config, counts: &[u64]) -> Vec<f64> {
    if counts.is_empty() {
        return Vec::new();
    }
    let total: u64 = counts.iter().sum();
    match config.predictor_type {
        PredictorType::BinaryClassifier => {
            let positive = match config.positive_weight {
                PositiveWeight::Fixed(w) => w,
                // A class absent from the sample keeps weight 1.
                PositiveWeight::Balanced if counts[1] > 0 && counts[0] > 0 => {
                    counts[0] as f64 / counts[1] as f64
                }
                PositiveWeight::Balanced => 1.0,
            };
            vec![1.0, positive]
        }
        _ if config.balance_multiclass_weights => counts
            .iter()
            .map(|&c| {
                if c > 0 {
                    total as f64 / (counts.len() as f64 * c as f64)
                } else {
                    1.0
                }
            })
            .collect(),
        _ => vec![1.0; counts.len()],
    }
}

impl Scaler {
    /// Normalises one row into `out`.
    #[inline]
    pub fn apply(&self, x: &[f64], out: &mut [f64]) {
        for (((o, &v), &m), &s) in out
            .iter_mut()
            .zip(x)
            .zip(&self.feature_mean)
            .zip(&self.feature_scale)
        {
            *o = (v - m) / s;
        }
    }

    pub fn label(&self, y: f64) -> f64 {
        (y - self.label_mean) / self.label_scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::data::Format;
    use modelstage_sdk::training::Hyperparameters;
    use serde_json::json;

    fn config(v: serde_json::Value) -> Config {
        Config::from_hyperparameters(&Hyperparameters::from_map(v.as_object().unwrap().clone())).unwrap()
    }

    fn channel(dir: &std::path::Path, body: &str) -> Channel {
        let p = dir.join("train.csv");
        std::fs::write(&p, body).unwrap();
        Channel {
            name: "train".into(),
            files: vec![p],
            format: Format::Csv,
        }
    }

    #[test]
    fn population_statistics_of_the_first_rows() {
        let dir = tempfile::tempdir().unwrap();
        // Rows 1-4 only: feature 0 is 1,2,3,4 (mean 2.5, population sd sqrt(1.25)); feature 1 is constant.
        let c = channel(dir.path(), "10,1,7\n20,2,7\n30,3,7\n40,4,7\n1000,1000,1000\n");
        let s = Sample::fit(
            &config(json!({"predictor_type": "regressor", "num_point_for_scaler": 4})),
            &c,
        )
        .unwrap();
        assert_eq!(s.feature_dim, 2);
        assert_eq!(s.scaler.feature_mean, vec![2.5, 7.0]);
        assert!((s.scaler.feature_scale[0] - 1.25f64.sqrt()).abs() < 1e-15);
        assert_eq!(s.scaler.feature_scale[1], 1.0, "a constant column keeps scale 1");
        assert_eq!(s.scaler.label_mean, 25.0);
        assert!((s.scaler.label_scale - 125f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn balanced_positive_weight_and_bad_labels() {
        let dir = tempfile::tempdir().unwrap();
        let c = channel(dir.path(), "0,1\n0,2\n0,3\n1,4\n");
        let cfg = config(
            json!({"predictor_type": "binary_classifier", "positive_example_weight_mult": "balanced"}),
        );
        let s = Sample::fit(&cfg, &c).unwrap();
        assert_eq!(s.class_weights, vec![1.0, 3.0]);
        assert_eq!(
            s.scaler.label_mean, 0.0,
            "classification labels are not normalised"
        );
        let c = channel(dir.path(), "0,1\n2,2\n");
        let err = Sample::fit(&cfg, &c).unwrap_err().message;
        assert!(
            err.contains("line 2") && err.contains("label 2 is not 0 or 1"),
            "{err}"
        );
    }
}
