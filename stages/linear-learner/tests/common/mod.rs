//! Shared test code: the abalone data set featurized as the SageMaker
//! example's scikit-learn featurizer does (standard-scaled measurements, then
//! the one-hot sex F, I, M), a fixed 80/20 split, reference fits (least
//! squares, logistic and softmax regression by Newton's method) and training
//! through the library.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use linear_learner::model::ModelFile;
use linear_learner::train::config::Config;
use linear_learner::train::data::{Channel, Format};
use linear_learner::train::{run, Job, Outcome};
use modelstage_sdk::training::Hyperparameters;

/// The data set, from the repository's example (override with ABALONE_CSV).
pub fn abalone_csv() -> PathBuf {
    std::env::var_os("ABALONE_CSV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/abalone/data/abalone.csv")
        })
}

/// One abalone: sex, seven measurements, rings.
#[derive(Debug, Clone)]
pub struct Abalone {
    pub sex: String,
    pub measurements: [f64; 7],
    pub rings: f64,
}

pub fn load_abalone() -> Vec<Abalone> {
    let path = abalone_csv();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let mut m = [0.0; 7];
            for (j, v) in m.iter_mut().enumerate() {
                *v = f[j + 1].trim().parse().unwrap();
            }
            Abalone {
                sex: f[0].trim().to_string(),
                measurements: m,
                rings: f[8].trim().parse().unwrap(),
            }
        })
        .collect()
}

/// A fixed pseudo-random order of `n` rows (an LCG shuffle, independent of
/// the library's generator).
fn shuffled(n: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    let mut state: u64 = 12345;
    for i in (1..idx.len()).rev() {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let j = ((state >> 33) as usize) % (i + 1);
        idx.swap(i, j);
    }
    idx
}

/// Fold `fold` of `k` of a fixed shuffle: (training rows, held-out rows).
/// Fold 0 of 5 is the 80/20 split.
pub fn fold<T: Clone>(rows: &[T], fold: usize, k: usize) -> (Vec<T>, Vec<T>) {
    let idx = shuffled(rows.len());
    let n = rows.len();
    // Fold 0 holds out the last fifth, so that it is the classic 80/20 split.
    let (lo, hi) = (n - (fold + 1) * n / k, n - fold * n / k);
    let train = idx[..lo]
        .iter()
        .chain(&idx[hi..])
        .map(|&i| rows[i].clone())
        .collect();
    let test = idx[lo..hi].iter().map(|&i| rows[i].clone()).collect();
    (train, test)
}

/// The fixed 80/20 split.
pub fn split<T: Clone>(rows: &[T]) -> (Vec<T>, Vec<T>) {
    fold(rows, 0, 5)
}

/// StandardScaler (population standard deviation) fitted on the training rows.
pub struct Featurizer {
    mean: [f64; 7],
    scale: [f64; 7],
}

impl Featurizer {
    pub fn fit(rows: &[Abalone]) -> Featurizer {
        let n = rows.len() as f64;
        let mut mean = [0.0; 7];
        let mut scale = [0.0; 7];
        for j in 0..7 {
            mean[j] = rows.iter().map(|r| r.measurements[j]).sum::<f64>() / n;
            let var = rows
                .iter()
                .map(|r| (r.measurements[j] - mean[j]).powi(2))
                .sum::<f64>()
                / n;
            scale[j] = var.sqrt();
        }
        Featurizer { mean, scale }
    }

    pub fn scaled(&self, m: &[f64; 7]) -> Vec<f64> {
        (0..7).map(|j| (m[j] - self.mean[j]) / self.scale[j]).collect()
    }

    /// The 10 features: scaled measurements, then one-hot F, I, M.
    pub fn features(&self, r: &Abalone) -> Vec<f64> {
        let mut x = self.scaled(&r.measurements);
        for s in ["F", "I", "M"] {
            x.push(if r.sex == s { 1.0 } else { 0.0 });
        }
        x
    }
}

/// Writes label-first CSV (no header), with floats printed in full precision.
pub fn write_csv(path: &Path, rows: &[(f64, Vec<f64>)]) {
    let mut out = String::new();
    for (y, x) in rows {
        out.push_str(&format!("{y}"));
        for v in x {
            out.push_str(&format!(",{v}"));
        }
        out.push('\n');
    }
    std::fs::write(path, out).unwrap();
}

pub fn csv_channel(name: &str, path: &Path) -> Channel {
    Channel {
        name: name.into(),
        files: vec![path.to_path_buf()],
        format: Format::Csv,
    }
}

pub fn config(v: serde_json::Value) -> Config {
    Config::from_hyperparameters(&Hyperparameters::from_map(v.as_object().unwrap().clone())).unwrap()
}

pub fn train(config: Config, train: Channel, validation: Option<Channel>, test: Option<Channel>) -> Outcome {
    train_on(config, train, validation, test, 2)
}

/// `train` on `threads` threads.
pub fn train_on(
    config: Config,
    train: Channel,
    validation: Option<Channel>,
    test: Option<Channel>,
    threads: usize,
) -> Outcome {
    run(&Job {
        config,
        train,
        validation,
        test,
        host: "algo-1".into(),
        threads,
    })
    .unwrap()
}

pub fn predict(model: &ModelFile, x: &[Vec<f64>]) -> linear_learner::model::Predictions {
    model.predictor().unwrap().predict(&x.concat())
}

/// Solves `a x = b` (n × n, row-major) by Gaussian elimination with partial pivoting.
pub fn solve(mut a: Vec<f64>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&i, &j| a[i * n + col].abs().total_cmp(&a[j * n + col].abs()))
            .unwrap();
        for k in 0..n {
            a.swap(col * n + k, pivot * n + k);
        }
        b.swap(col, pivot);
        for row in col + 1..n {
            let f = a[row * n + col] / a[col * n + col];
            for k in col..n {
                a[row * n + k] -= f * a[col * n + k];
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|k| a[row * n + k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row * n + row];
    }
    x
}

/// Exact least squares by the normal equations (the design should span the
/// intercept itself, e.g. through a one-hot block).
pub fn least_squares(x: &[Vec<f64>], y: &[f64]) -> Vec<f64> {
    let d = x[0].len();
    let mut xtx = vec![0.0; d * d];
    let mut xty = vec![0.0; d];
    for (row, &t) in x.iter().zip(y) {
        for i in 0..d {
            xty[i] += row[i] * t;
            for j in 0..d {
                xtx[i * d + j] += row[i] * row[j];
            }
        }
    }
    solve(xtx, xty)
}

/// Unregularised multinomial logistic regression (class 0 as the reference,
/// so the problem is identifiable) fitted by Newton's method to convergence.
/// Returns `classes × d` weights (row 0 all zero). Binary is `classes = 2`.
pub fn softmax_regression(x: &[Vec<f64>], y: &[usize], classes: usize) -> Vec<Vec<f64>> {
    let d = x[0].len();
    let k = classes - 1;
    let p_dim = k * d;
    let mut w = vec![0.0; p_dim];
    for _ in 0..100 {
        let mut grad = vec![0.0; p_dim];
        let mut hess = vec![0.0; p_dim * p_dim];
        for (row, &c) in x.iter().zip(y) {
            let mut z: Vec<f64> = (0..k)
                .map(|a| (0..d).map(|j| w[a * d + j] * row[j]).sum())
                .collect();
            let max = z.iter().copied().fold(0.0f64, f64::max);
            let denom = (-max).exp() + z.iter().map(|v| (v - max).exp()).sum::<f64>();
            z.iter_mut().for_each(|v| *v = (*v - max).exp() / denom);
            for a in 0..k {
                let target = if c == a + 1 { 1.0 } else { 0.0 };
                for j in 0..d {
                    grad[a * d + j] += (z[a] - target) * row[j];
                }
                for b in 0..k {
                    let h = z[a] * (if a == b { 1.0 } else { 0.0 } - z[b]);
                    for i in 0..d {
                        for j in 0..d {
                            hess[(a * d + i) * p_dim + b * d + j] += h * row[i] * row[j];
                        }
                    }
                }
            }
        }
        // A whisker of damping keeps the system solvable if a direction is flat.
        for i in 0..p_dim {
            hess[i * p_dim + i] += 1e-9;
        }
        let step = solve(hess, grad.clone());
        w.iter_mut().zip(&step).for_each(|(w, s)| *w -= s);
        if step.iter().map(|s| s.abs()).fold(0.0, f64::max) < 1e-10 {
            break;
        }
    }
    let mut out = vec![vec![0.0; d]];
    for a in 0..k {
        out.push(w[a * d..(a + 1) * d].to_vec());
    }
    out
}

/// Accuracy of the argmax of `weights · x` against `y`.
pub fn reference_accuracy(weights: &[Vec<f64>], x: &[Vec<f64>], y: &[usize]) -> f64 {
    let correct = x
        .iter()
        .zip(y)
        .filter(|(row, &c)| {
            let scores: Vec<f64> = weights
                .iter()
                .map(|w| w.iter().zip(row.iter()).map(|(a, b)| a * b).sum())
                .collect();
            linear_learner::model::argmax(&scores) == c
        })
        .count();
    correct as f64 / y.len() as f64
}
