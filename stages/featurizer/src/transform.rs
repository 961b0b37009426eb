//! The transform proper: impute, scale, one-hot encode, in scikit-learn's
//! output order (numeric columns, then one block per categorical column).

use crate::parse::Batch;
use crate::plan::{Plan, UNKNOWN};

/// Output rows, row-major: `[label,] features...` per record.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    pub rows: usize,
    /// Values per row (features, plus one when labelled).
    pub stride: usize,
    pub values: Vec<f64>,
}

impl Features {
    pub fn row(&self, i: usize) -> &[f64] {
        &self.values[i * self.stride..(i + 1) * self.stride]
    }
}

/// Transforms a parsed batch.
pub fn transform(plan: &Plan, batch: &Batch) -> Features {
    let lead = usize::from(batch.labelled);
    let stride = lead + plan.features;
    let mut values = vec![0.0; batch.rows * stride];
    let (n_num, n_cat) = (plan.numeric.len(), plan.categorical.len());
    for (r, out) in values.chunks_exact_mut(stride).enumerate() {
        if batch.labelled {
            out[0] = batch.labels[r];
        }
        let features = &mut out[lead..];
        let numbers = &batch.numbers[r * n_num..(r + 1) * n_num];
        for ((slot, &x), column) in features.iter_mut().zip(numbers).zip(&plan.numeric) {
            let x = if x.is_nan() { column.fill } else { x };
            // Subtract then divide, as StandardScaler.transform does, so the
            // result rounds the same way.
            *slot = (x - column.mean) / column.scale;
        }
        let codes = &batch.codes[r * n_cat..(r + 1) * n_cat];
        for (&code, column) in codes.iter().zip(&plan.categorical) {
            if code != UNKNOWN {
                features[column.offset + code as usize] = 1.0;
            }
        }
    }
    Features {
        rows: batch.rows,
        stride,
        values,
    }
}
