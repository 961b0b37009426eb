//! The fitted featurizer as stored in `featurizer.json`: human-readable
//! statistics (fill values, means, scales, categories) and the schema they
//! belong to. Floats are written shortest-round-trip, so loading gives back
//! the exact fitted values.

use std::path::Path;

use modelstage_sdk::StageError;
use serde::{Deserialize, Serialize};

use crate::schema::{HandleUnknown, NumericImputer};

/// The file name inside the model dir.
pub const MODEL_FILE: &str = "featurizer.json";

/// Written into the file so a future layout can be told apart.
pub const FORMAT: &str = "modelstage-featurizer/1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedModel {
    pub format: String,
    /// Feature column names in file order (the request's field order).
    pub columns: Vec<String>,
    /// The label's name; requests may carry it after the features.
    pub label: Option<String>,
    pub options: FitOptions,
    /// Training records read.
    pub rows: u64,
    /// Numeric columns in schema order.
    pub numeric: Vec<NumericColumn>,
    /// Categorical columns in schema order.
    pub categorical: Vec<CategoricalColumn>,
    /// Names of the output features in output order (scikit-learn's
    /// `get_feature_names_out` without the transformer prefixes).
    pub feature_names: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitOptions {
    pub numeric_imputer: NumericImputer,
    pub scale: bool,
    pub handle_unknown: HandleUnknown,
    pub categorical_fill_value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericColumn {
    pub name: String,
    /// Position among the input fields.
    pub index: usize,
    /// What a missing value becomes (the imputer's `statistics_`).
    pub fill: f64,
    /// The scaler's `mean_` (0 when scaling is off).
    pub mean: f64,
    /// The scaler's `var_` (population variance of the imputed column).
    pub variance: f64,
    /// The scaler's `scale_` (1 when scaling is off or the column is constant).
    pub scale: f64,
    /// Missing values seen in training.
    pub missing: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoricalColumn {
    pub name: String,
    /// Position among the input fields.
    pub index: usize,
    /// Sorted by code point; one output feature each.
    pub categories: Vec<String>,
    /// Missing values seen in training.
    pub missing: u64,
}

impl FittedModel {
    /// Reads `featurizer.json` from the model dir; other files are ignored.
    /// Every failure is internal: the model dir is the stage's, not the client's.
    pub fn load(model_dir: &Path) -> Result<FittedModel, StageError> {
        let path = model_dir.join(MODEL_FILE);
        let text = modelstage_sdk::fs::read_to_string(&path).map_err(|e| {
            StageError::internal(format!(
                "{e}; the model dir must hold the {MODEL_FILE} that featurizer training writes"
            ))
        })?;
        let model: FittedModel = serde_json::from_str(&text).map_err(|e| {
            StageError::internal(format!("{} is not a featurizer model: {e}", path.display()))
        })?;
        model
            .check()
            .map_err(|e| StageError::internal(format!("{}: {e}", path.display())))?;
        Ok(model)
    }

    /// Writes the model as pretty JSON into `model_dir`.
    pub fn save(&self, model_dir: &Path) -> Result<(), StageError> {
        let path = model_dir.join(MODEL_FILE);
        let mut text = serde_json::to_string_pretty(self)
            .map_err(|e| StageError::internal(format!("cannot encode the model: {e}")))?;
        text.push('\n');
        std::fs::write(&path, text)
            .map_err(|e| StageError::internal(format!("cannot write {}: {e}", path.display())))
    }

    /// Consistency checks, so a hand-edited file fails at load, not per request.
    /// The message names the problem; [`FittedModel::load`] adds the file.
    fn check(&self) -> Result<(), StageError> {
        if self.format != FORMAT {
            return Err(StageError::internal(format!(
                "format is '{}', this featurizer reads '{FORMAT}'",
                self.format
            )));
        }
        let width = self.columns.len();
        let mut seen = vec![false; width];
        let indices = self
            .numeric
            .iter()
            .map(|c| (c.index, &c.name))
            .chain(self.categorical.iter().map(|c| (c.index, &c.name)));
        for (index, name) in indices {
            if index >= width || self.columns[index] != *name || seen[index] {
                return Err(StageError::internal(format!(
                    "column '{name}' has a wrong or repeated index {index}"
                )));
            }
            seen[index] = true;
        }
        if seen.iter().any(|s| !s) {
            return Err(StageError::internal(
                "every column must be numeric or categorical",
            ));
        }
        for c in &self.numeric {
            if !(c.fill.is_finite() && c.mean.is_finite() && c.scale.is_finite() && c.scale != 0.0) {
                return Err(StageError::internal(format!(
                    "column '{}' has non-finite or zero statistics",
                    c.name
                )));
            }
        }
        let features =
            self.numeric.len() + self.categorical.iter().map(|c| c.categories.len()).sum::<usize>();
        if features != self.feature_names.len() {
            return Err(StageError::internal(format!(
                "feature_names has {} names but the columns give {features} features",
                self.feature_names.len()
            )));
        }
        Ok(())
    }
}
