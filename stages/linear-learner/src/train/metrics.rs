//! Evaluation of the final model on a channel, and the metric lines in the
//! form SageMaker's metric definitions pick up:
//! `#quality_metric: host=algo-1, test rmse <loss>=2.2`.

use crate::model::{Kind, Predictions};
use crate::train::config::{Config, Criterion};
use crate::train::loss::{softmax_loss, Objective};

/// One metric: its name, whether it is a `<loss>` or a `<score>`, its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: String,
    pub is_loss: bool,
    pub value: f64,
}

/// The metric line for `scope` (`test`, `validation`, `epoch=3, train`).
pub fn quality_line(host: &str, scope: &str, metric: &Metric) -> String {
    let tag = if metric.is_loss { "loss" } else { "score" };
    // Python's repr, as the Python algorithm containers print (`9.2e-11`, not 0.0000000000920).
    format!(
        "#quality_metric: host={host}, {scope} {} <{tag}>={}",
        metric.name,
        modelstage_sdk::python::float_repr(metric.value)
    )
}

/// Running sums over the evaluated rows.
#[derive(Debug, Clone)]
pub struct Evaluator {
    kind: Kind,
    objective: Objective,
    objective_name: &'static str,
    beta: f64,
    top_k: usize,
    n: f64,
    loss: f64,
    // regression
    sq: f64,
    abs: f64,
    y_sum: f64,
    y_sq: f64,
    // classification
    correct: f64,
    top_k_correct: f64,
    /// Per class: true positives, predicted count, actual count.
    tp: Vec<f64>,
    predicted: Vec<f64>,
    actual: Vec<f64>,
}

impl Evaluator {
    pub fn new(config: &Config, kind: Kind) -> Evaluator {
        let classes = match kind {
            Kind::Regressor => 0,
            Kind::Binary { .. } => 2,
            Kind::Multiclass { classes } => classes,
        };
        let objective = Objective::new(config.loss, 1.0);
        Evaluator {
            kind,
            objective,
            objective_name: objective.metric_name(),
            beta: match config.criterion {
                Criterion::FBeta { beta } => beta,
                _ => 1.0,
            },
            top_k: config.accuracy_top_k,
            n: 0.0,
            loss: 0.0,
            sq: 0.0,
            abs: 0.0,
            y_sum: 0.0,
            y_sq: 0.0,
            correct: 0.0,
            top_k_correct: 0.0,
            tp: vec![0.0; classes],
            predicted: vec![0.0; classes],
            actual: vec![0.0; classes],
        }
    }

    /// Adds every row of `predictions` with its label.
    pub fn add(&mut self, predictions: &Predictions, labels: &[f64]) {
        for (i, &y) in labels.iter().enumerate() {
            let scores = predictions.scores_of(i);
            self.n += 1.0;
            match self.kind {
                Kind::Regressor => {
                    let r = scores[0] - y;
                    self.loss += self.objective.regression(r).0;
                    self.sq += r * r;
                    self.abs += r.abs();
                    self.y_sum += y;
                    self.y_sq += y * y;
                }
                Kind::Binary { probability } => {
                    let s = scores[0];
                    self.loss += if probability {
                        let p = s.clamp(1e-15, 1.0 - 1e-15);
                        -(y * p.ln() + (1.0 - y) * (1.0 - p).ln())
                    } else {
                        self.objective.binary(s, y).0
                    };
                    let label = predictions.labels.as_ref().map_or(0.0, |l| l[i]);
                    self.count(label as usize, y as usize);
                }
                Kind::Multiclass { .. } => {
                    let class = y as usize;
                    let mut p = scores.to_vec();
                    // The scores are already probabilities: ln p is the log-softmax of ln p.
                    p.iter_mut().for_each(|v| *v = v.max(1e-300).ln());
                    self.loss += softmax_loss(&mut p, class);
                    let label = predictions.labels.as_ref().map_or(0.0, |l| l[i]) as usize;
                    self.count(label, class);
                    let above = scores.iter().filter(|&&s| s > scores[class]).count();
                    if above < self.top_k {
                        self.top_k_correct += 1.0;
                    }
                }
            }
        }
    }

    fn count(&mut self, predicted: usize, actual: usize) {
        if predicted == actual {
            self.correct += 1.0;
            self.tp[actual] += 1.0;
        }
        self.predicted[predicted] += 1.0;
        self.actual[actual] += 1.0;
    }

    pub fn rows(&self) -> f64 {
        self.n
    }

    /// The objective's mean.
    pub fn objective(&self) -> f64 {
        self.loss / self.n.max(1.0)
    }

    /// Every metric, objective first.
    pub fn metrics(&self) -> Vec<Metric> {
        let n = self.n.max(1.0);
        let loss = |name: &str, value: f64| Metric {
            name: name.to_string(),
            is_loss: true,
            value,
        };
        let score = |name: &str, value: f64| Metric {
            name: name.to_string(),
            is_loss: false,
            value,
        };
        let mut out = vec![loss(self.objective_name, self.objective())];
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        let f_beta = |p: f64, r: f64| {
            let b2 = self.beta * self.beta;
            ratio((1.0 + b2) * p * r, b2 * p + r)
        };
        match self.kind {
            Kind::Regressor => {
                let mse = self.sq / n;
                let variance = self.y_sq / n - (self.y_sum / n).powi(2);
                out.push(loss("mse", mse));
                out.push(loss("rmse", mse.sqrt()));
                out.push(loss("absolute_loss", self.abs / n));
                out.push(score(
                    "r2",
                    if variance > 0.0 { 1.0 - mse / variance } else { 0.0 },
                ));
            }
            Kind::Binary { .. } => {
                let precision = ratio(self.tp[1], self.predicted[1]);
                let recall = ratio(self.tp[1], self.actual[1]);
                out.push(score("binary_classification_accuracy", self.correct / n));
                out.push(score(
                    &format!("binary_f_{:.3}", self.beta),
                    f_beta(precision, recall),
                ));
                out.push(score("precision", precision));
                out.push(score("recall", recall));
            }
            Kind::Multiclass { .. } => {
                let classes = self.tp.len() as f64;
                let precisions: Vec<f64> = (0..self.tp.len())
                    .map(|c| ratio(self.tp[c], self.predicted[c]))
                    .collect();
                let recalls: Vec<f64> = (0..self.tp.len())
                    .map(|c| ratio(self.tp[c], self.actual[c]))
                    .collect();
                let f: f64 = precisions.iter().zip(&recalls).map(|(&p, &r)| f_beta(p, r)).sum();
                out.push(score("multiclass_accuracy", self.correct / n));
                out.push(score("multiclass_top_k_accuracy", self.top_k_correct / n));
                out.push(score("macro_precision", precisions.iter().sum::<f64>() / classes));
                out.push(score("macro_recall", recalls.iter().sum::<f64>() / classes));
                out.push(score(&format!("macro_f_{:.3}", self.beta), f / classes));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use modelstage_sdk::training::Hyperparameters;
    use serde_json::json;

    fn config(v: serde_json::Value) -> Config {
        Config::from_hyperparameters(&Hyperparameters::from_map(v.as_object().unwrap().clone())).unwrap()
    }

    fn get(m: &[Metric], name: &str) -> f64 {
        m.iter().find(|x| x.name == name).unwrap().value
    }

    #[test]
    fn regression_metrics_by_hand() {
        let c = config(json!({"predictor_type": "regressor"}));
        let mut e = Evaluator::new(&c, Kind::Regressor);
        let p = Predictions {
            kind: Kind::Regressor,
            scores: vec![1.0, 2.0, 6.0],
            labels: None,
        };
        // residuals 0, -1, 3: mse 10/3, mae 4/3; labels 1,3,3 variance 8/9 → r2 = 1 - (10/3)/(8/9)
        e.add(&p, &[1.0, 3.0, 3.0]);
        let m = e.metrics();
        assert_eq!(m[0].name, "mse_objective");
        assert!((get(&m, "mse") - 10.0 / 3.0).abs() < 1e-12);
        assert!((get(&m, "rmse") - (10.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert!((get(&m, "absolute_loss") - 4.0 / 3.0).abs() < 1e-12);
        assert!((get(&m, "r2") - (1.0 - 3.75)).abs() < 1e-12);
        assert_eq!(
            quality_line("algo-1", "test", &m[2]),
            // python3 -c 'print(repr((10/3)**0.5))'
            "#quality_metric: host=algo-1, test rmse <loss>=1.8257418583505538"
        );
    }

    #[test]
    fn binary_metrics_by_hand() {
        let c = config(json!({"predictor_type": "binary_classifier"}));
        let kind = Kind::Binary { probability: true };
        let mut e = Evaluator::new(&c, kind);
        let p = Predictions {
            kind,
            scores: vec![0.9, 0.8, 0.3, 0.6],
            labels: Some(vec![1.0, 1.0, 0.0, 1.0]),
        };
        // predicted 1,1,0,1 against actual 1,0,0,1: tp 2, fp 1, fn 0, tn 1
        e.add(&p, &[1.0, 0.0, 0.0, 1.0]);
        let m = e.metrics();
        assert!((get(&m, "binary_classification_accuracy") - 0.75).abs() < 1e-12);
        assert!((get(&m, "precision") - 2.0 / 3.0).abs() < 1e-12);
        assert!((get(&m, "recall") - 1.0).abs() < 1e-12);
        assert!((get(&m, "binary_f_1.000") - 0.8).abs() < 1e-12);
        let ce = -(0.9f64.ln() + 0.2f64.ln() + 0.7f64.ln() + 0.6f64.ln()) / 4.0;
        assert!((get(&m, "binary_classification_cross_entropy_objective") - ce).abs() < 1e-12);
    }
}
