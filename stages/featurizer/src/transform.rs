//! The transform proper: impute, scale, one-hot encode, in scikit-learn's
//! output order (numeric columns, then one block per categorical column).

use modelstage_sdk::StageError;

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

/// Transforms a parsed batch. A finite input can still scale past the
/// largest double (`1e308` in a column whose scale is below 1): that record
/// is refused, naming it and the column, rather than answered with `inf`.
pub fn transform(plan: &Plan, batch: &Batch) -> Result<Features, StageError> {
    let lead = usize::from(batch.labelled);
    let stride = lead + plan.features;
    let mut values = vec![0.0; batch.rows * stride];
    let (n_num, n_cat) = (plan.numeric.len(), plan.categorical.len());
    // Checked once after the loop: a branch per value would cost the hot path.
    let mut finite = true;
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
            finite &= slot.is_finite();
        }
        let codes = &batch.codes[r * n_cat..(r + 1) * n_cat];
        for (&code, column) in codes.iter().zip(&plan.categorical) {
            if code != UNKNOWN {
                features[column.offset + code as usize] = 1.0;
            }
        }
    }
    let features = Features {
        rows: batch.rows,
        stride,
        values,
    };
    if finite {
        return Ok(features);
    }
    let (record, column) = (0..features.rows)
        .find_map(|r| {
            let numeric = &features.row(r)[lead..lead + n_num];
            numeric.iter().position(|v| !v.is_finite()).map(|c| (r, c))
        })
        .unwrap_or_default();
    Err(StageError::bad_request(format!(
        "record {record}, column '{}': the value scales to {}, past the largest number a response can \
         hold",
        plan.model.numeric[column].name,
        features.row(record)[lead + column]
    ))
    .at_record(record))
}
