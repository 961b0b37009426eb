//! The model file (`linear-learner.json` in the model dir) and prediction.
//!
//! The file is meant to be read by people: the predictor type, one weight
//! row and one bias per output in the units of the raw features (the
//! normalisation is folded in, so `score = w · x + b` before the link
//! function), the normalisation constants the training used, the binary
//! threshold, and the settings of the model that was kept.

use std::path::Path;

use modelstage_sdk::StageError;
use serde::{Deserialize, Serialize};

use crate::serve::input::Features;

/// The file name of the model in the model dir. Other files there are ignored.
pub const MODEL_FILE: &str = "linear-learner.json";
/// The `format` field, bumped when the layout changes.
pub const FORMAT: &str = "modelstage-linear-learner/1";

/// What `linear-learner.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelFile {
    pub format: String,
    /// `regressor`, `binary_classifier` or `multiclass_classifier`.
    pub predictor_type: String,
    /// The loss the model was trained with (`logistic` scores are probabilities).
    pub loss: String,
    pub feature_dim: usize,
    /// Classes of a multiclass classifier (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_classes: Option<usize>,
    /// One row of `feature_dim` weights per output (1, or `num_classes`).
    pub weights: Vec<Vec<f64>>,
    /// One bias per output.
    pub bias: Vec<f64>,
    /// Binary classifiers: `predicted_label` is 1 when the score is above it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// The constants the training normalised with (already folded into `weights`/`bias`).
    pub normalization: Normalization,
    /// The settings of the model that was kept, for the record.
    #[serde(default)]
    pub training: serde_json::Value,
}

/// `x_normalised = (x - feature_mean) / feature_scale`, `y_normalised = (y - label_mean) / label_scale`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    pub feature_mean: Vec<f64>,
    pub feature_scale: Vec<f64>,
    pub label_mean: f64,
    pub label_scale: f64,
}

/// What kind of answer each record gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Regressor,
    /// `score` is a probability (logistic loss) or a margin (hinge loss).
    Binary {
        probability: bool,
    },
    Multiclass {
        classes: usize,
    },
}

/// A loaded model, ready to predict.
#[derive(Debug, Clone)]
pub struct Predictor {
    pub kind: Kind,
    pub feature_dim: usize,
    /// Output-major: `weights[k * feature_dim + j]`.
    weights: Vec<f64>,
    bias: Vec<f64>,
    threshold: f64,
}

/// Predictions for a batch of records.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    pub kind: Kind,
    /// Record-major: one score per record (regressor, binary) or `classes` per record.
    pub scores: Vec<f64>,
    /// Classifiers: the predicted class of each record.
    pub labels: Option<Vec<f64>>,
}

impl Predictions {
    pub fn len(&self) -> usize {
        match self.kind {
            Kind::Multiclass { classes } => self.scores.len() / classes.max(1),
            _ => self.scores.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    /// The scores of record `i`.
    pub fn scores_of(&self, i: usize) -> &[f64] {
        let k = match self.kind {
            Kind::Multiclass { classes } => classes,
            _ => 1,
        };
        &self.scores[i * k..(i + 1) * k]
    }
}

pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Softmax of `z` in place, stable for large logits.
pub fn softmax(z: &mut [f64]) {
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for v in z.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in z.iter_mut() {
        *v /= sum;
    }
}

impl ModelFile {
    /// A model given by its weights (one row per class; raw-feature units),
    /// with no normalisation, no threshold and no training record: for
    /// hand-built models and tests.
    pub fn from_weights(
        predictor_type: &str,
        loss: &str,
        weights: Vec<Vec<f64>>,
        bias: Vec<f64>,
    ) -> ModelFile {
        let d = weights.first().map_or(0, Vec::len);
        ModelFile {
            format: FORMAT.into(),
            predictor_type: predictor_type.into(),
            loss: loss.into(),
            feature_dim: d,
            num_classes: (weights.len() > 1).then_some(weights.len()),
            weights,
            bias,
            threshold: None,
            normalization: Normalization {
                feature_mean: vec![0.0; d],
                feature_scale: vec![1.0; d],
                label_mean: 0.0,
                label_scale: 1.0,
            },
            training: serde_json::Value::Null,
        }
    }

    /// Reads `linear-learner.json` from `model_dir`.
    pub fn load(model_dir: &Path) -> Result<ModelFile, StageError> {
        let path = model_dir.join(MODEL_FILE);
        let text = modelstage_sdk::fs::read_to_string(&path).map_err(|e| {
            StageError::internal(format!(
                "{e}; the model dir must hold the Linear Learner model {MODEL_FILE} that training wrote"
            ))
        })?;
        serde_json::from_str(&text).map_err(|e| {
            StageError::internal(format!("{} is not a Linear Learner model: {e}", path.display()))
        })
    }

    /// Writes the file into `model_dir`, pretty-printed.
    pub fn save(&self, model_dir: &Path) -> Result<(), StageError> {
        modelstage_sdk::fs::create_dir_all(model_dir)?;
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| StageError::internal(format!("cannot encode the model: {e}")))?;
        modelstage_sdk::fs::write(model_dir.join(MODEL_FILE), text + "\n")?;
        Ok(())
    }

    /// Checks the shapes and builds the predictor.
    pub fn predictor(&self) -> Result<Predictor, StageError> {
        let bad = |what: String| StageError::internal(format!("{MODEL_FILE} is inconsistent: {what}"));
        if self.format != FORMAT {
            return Err(bad(format!("format is '{}', expected '{FORMAT}'", self.format)));
        }
        let kind = match self.predictor_type.as_str() {
            "regressor" => Kind::Regressor,
            "binary_classifier" => Kind::Binary {
                probability: self.loss != "hinge_loss",
            },
            "multiclass_classifier" => Kind::Multiclass {
                classes: self
                    .num_classes
                    .ok_or_else(|| bad("a multiclass model needs num_classes".into()))?,
            },
            other => return Err(bad(format!("unknown predictor_type '{other}'"))),
        };
        let outputs = match kind {
            Kind::Multiclass { classes } => classes,
            _ => 1,
        };
        if self.weights.len() != outputs || self.bias.len() != outputs {
            return Err(bad(format!(
                "{} weight rows and {} biases for {outputs} outputs",
                self.weights.len(),
                self.bias.len()
            )));
        }
        if let Some(row) = self.weights.iter().position(|w| w.len() != self.feature_dim) {
            return Err(bad(format!(
                "weight row {row} does not have feature_dim = {} entries",
                self.feature_dim
            )));
        }
        let default_threshold = match kind {
            Kind::Binary { probability: true } => 0.5,
            _ => 0.0,
        };
        Ok(Predictor {
            kind,
            feature_dim: self.feature_dim,
            weights: self.weights.concat(),
            bias: self.bias.clone(),
            threshold: self.threshold.unwrap_or(default_threshold),
        })
    }
}

impl Predictor {
    /// Scores per record: 1, or one per class.
    pub fn outputs(&self) -> usize {
        self.bias.len()
    }

    /// Scores `rows` records held row-major in `x` (`rows * feature_dim` values).
    pub fn predict(&self, x: &[f64]) -> Predictions {
        let d = self.feature_dim;
        let rows = x.len().checked_div(d).unwrap_or(0);
        self.predict_rows((0..rows).map(|r| Features::Dense(&x[r * d..(r + 1) * d])))
    }

    /// Scores records given one by one, dense or sparse (keys below
    /// `feature_dim`, as a request's batch holds them).
    pub fn predict_rows<'a>(&self, rows: impl ExactSizeIterator<Item = Features<'a>>) -> Predictions {
        let d = self.feature_dim;
        let outputs = self.bias.len();
        let mut scores = Vec::with_capacity(rows.len() * outputs);
        let rows_of_weights = (0..outputs).map(|k| (&self.weights[k * d..(k + 1) * d], self.bias[k]));
        for row in rows {
            match row {
                Features::Dense(xr) => {
                    scores.extend(rows_of_weights.clone().map(|(w, b)| b + dot(w, xr)));
                }
                // The terms of the features that are 0 add nothing, so
                // summing the others in key order gives the dense sum.
                Features::Sparse(keys, values) => scores.extend(
                    rows_of_weights
                        .clone()
                        .map(|(w, b)| b + keys.iter().zip(values).map(|(&j, v)| w[j] * v).sum::<f64>()),
                ),
            }
        }
        let rows = scores.len().checked_div(outputs).unwrap_or(0);
        let labels = match self.kind {
            Kind::Regressor => None,
            Kind::Binary { probability } => {
                if probability {
                    scores.iter_mut().for_each(|s| *s = sigmoid(*s));
                }
                Some(
                    scores
                        .iter()
                        .map(|&s| f64::from(u8::from(s > self.threshold)))
                        .collect(),
                )
            }
            Kind::Multiclass { classes } => {
                let mut labels = Vec::with_capacity(rows);
                for chunk in scores.chunks_mut(classes) {
                    softmax(chunk);
                    labels.push(argmax(chunk) as f64);
                }
                Some(labels)
            }
        };
        Predictions {
            kind: self.kind,
            scores,
            labels,
        }
    }
}

/// The index of the largest value (the first on ties).
pub fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(predictor_type: &str, loss: &str, weights: Vec<Vec<f64>>, bias: Vec<f64>) -> ModelFile {
        ModelFile::from_weights(predictor_type, loss, weights, bias)
    }

    #[test]
    fn regressor_is_an_affine_map() {
        let p = file("regressor", "squared_loss", vec![vec![2.0, -1.0]], vec![0.5])
            .predictor()
            .unwrap();
        let out = p.predict(&[1.0, 1.0, 3.0, 2.0]);
        assert_eq!(out.scores, vec![1.5, 4.5]);
        assert_eq!(out.labels, None);
    }

    #[test]
    fn binary_scores_are_probabilities_with_a_threshold() {
        let mut f = file("binary_classifier", "logistic", vec![vec![1.0]], vec![0.0]);
        f.threshold = Some(0.7);
        let out = f.predictor().unwrap().predict(&[0.0, 2.0]);
        assert_eq!(out.scores[0], 0.5);
        assert!((out.scores[1] - 1.0 / (1.0 + (-2.0f64).exp())).abs() < 1e-15);
        // 0.5 and 0.88 against the threshold 0.7
        assert_eq!(out.labels, Some(vec![0.0, 1.0]));
    }

    #[test]
    fn multiclass_scores_sum_to_one() {
        let f = file(
            "multiclass_classifier",
            "softmax_loss",
            vec![vec![1.0], vec![0.0], vec![-1.0]],
            vec![0.0; 3],
        );
        let out = f.predictor().unwrap().predict(&[2.0, -2.0]);
        assert_eq!(out.len(), 2);
        for i in 0..2 {
            let s: f64 = out.scores_of(i).iter().sum();
            assert!((s - 1.0).abs() < 1e-12);
        }
        assert_eq!(out.labels, Some(vec![0.0, 2.0]));
    }

    #[test]
    fn inconsistent_files_are_refused() {
        let mut f = file("regressor", "squared_loss", vec![vec![1.0, 2.0]], vec![0.0]);
        f.feature_dim = 3;
        assert!(f.predictor().unwrap_err().message.contains("feature_dim"));
    }
}
