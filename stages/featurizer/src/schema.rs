//! The hyperparameters of a training job, checked and turned into the
//! schema (columns, which are categorical, the label) and fit options.

use std::collections::BTreeMap;

use modelstage_sdk::StageError;
use serde::{Deserialize, Serialize};

/// Every hyperparameter the featurizer reads; anything else fails training.
pub const KNOWN: [&str; 8] = [
    "columns",
    "categorical",
    "label",
    "numeric_imputer",
    "numeric_fill_value",
    "categorical_fill_value",
    "scale",
    "handle_unknown",
];

/// How missing numeric values are filled (`SimpleImputer(strategy=...)`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NumericImputer {
    Median,
    Mean,
    MostFrequent,
    Constant,
}

/// What an unseen category does at inference (`OneHotEncoder(handle_unknown=...)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandleUnknown {
    /// All zeros in the column's one-hot block.
    Ignore,
    /// The request fails with 400.
    Error,
}

/// One feature column of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub categorical: bool,
}

/// Everything training needs besides the data.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Feature columns in file order.
    pub columns: Vec<Column>,
    /// The label's name when training files carry it after the features.
    pub label: Option<String>,
    pub numeric_imputer: NumericImputer,
    /// The fill value of `numeric_imputer=constant` (scikit-learn's default 0).
    pub numeric_fill_value: f64,
    pub categorical_fill_value: String,
    pub scale: bool,
    pub handle_unknown: HandleUnknown,
}

impl Config {
    /// Reads the hyperparameters (name → value as text). Every problem is a
    /// bad request whose message names the hyperparameter and says what to send.
    pub fn from_hyperparameters(hp: &BTreeMap<String, String>) -> Result<Config, StageError> {
        let unknown: Vec<&str> = hp
            .keys()
            .map(String::as_str)
            .filter(|k| !KNOWN.contains(k))
            .collect();
        if !unknown.is_empty() {
            return Err(StageError::bad_request(format!(
                "unknown hyperparameter(s) {}; the featurizer reads: {}",
                quoted(&unknown),
                KNOWN.join(", ")
            )));
        }
        let get = |name: &str| hp.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());

        let names = match get("columns") {
            Some(v) => name_list("columns", v)?,
            None => {
                return Err(StageError::bad_request(
                    "hyperparameter 'columns' is required: the feature column names in file order, \
                            comma separated (e.g. columns=sex,length,diameter)"
                        .to_string(),
                ))
            }
        };
        let categorical = match get("categorical") {
            Some(v) => name_list("categorical", v)?,
            None => Vec::new(),
        };
        if let Some(stray) = categorical.iter().find(|c| !names.contains(c)) {
            return Err(StageError::bad_request(format!(
                "hyperparameter 'categorical' names '{stray}', which is not in 'columns' ({})",
                names.join(",")
            )));
        }
        let label = get("label").map(str::to_string);
        if let Some(label) = &label {
            if names.contains(label) {
                return Err(StageError::bad_request(format!(
                    "hyperparameter 'label' ('{label}') must not be one of 'columns'"
                )));
            }
        }

        let numeric_imputer = match get("numeric_imputer") {
            None | Some("median") => NumericImputer::Median,
            Some("mean") => NumericImputer::Mean,
            Some("most_frequent") => NumericImputer::MostFrequent,
            Some("constant") => NumericImputer::Constant,
            Some(other) => {
                return Err(StageError::bad_request(format!(
                    "hyperparameter 'numeric_imputer' must be one of median, mean, most_frequent, constant; \
                     got '{other}'"
                )))
            }
        };
        let numeric_fill_value = match get("numeric_fill_value") {
            None => 0.0,
            Some(_) if numeric_imputer != NumericImputer::Constant => {
                return Err(StageError::bad_request(
                    "hyperparameter 'numeric_fill_value' applies only with numeric_imputer=constant"
                        .to_string(),
                ))
            }
            Some(v) => match v.parse::<f64>() {
                Ok(x) if x.is_finite() => x,
                _ => {
                    return Err(StageError::bad_request(format!(
                        "hyperparameter 'numeric_fill_value' must be a finite number, got '{v}'"
                    )))
                }
            },
        };
        // The fill value is compared with the raw field text at inference, so
        // it is kept as sent, spaces included.
        let categorical_fill_value = match hp.get("categorical_fill_value") {
            None => "missing".to_string(),
            Some(v) if v.is_empty() => {
                return Err(StageError::bad_request(
                    "hyperparameter 'categorical_fill_value' must not be empty",
                ))
            }
            Some(v) => v.clone(),
        };
        let scale = match get("scale") {
            None => true,
            Some("true" | "True" | "TRUE" | "1") => true,
            Some("false" | "False" | "FALSE" | "0") => false,
            Some(other) => {
                return Err(StageError::bad_request(format!(
                    "hyperparameter 'scale' must be true or false, got '{other}'"
                )))
            }
        };
        let handle_unknown = match get("handle_unknown") {
            None | Some("ignore") => HandleUnknown::Ignore,
            Some("error") => HandleUnknown::Error,
            Some(other) => {
                return Err(StageError::bad_request(format!(
                    "hyperparameter 'handle_unknown' must be 'ignore' or 'error', got '{other}'"
                )))
            }
        };

        let columns = names
            .iter()
            .map(|name| Column {
                name: name.clone(),
                categorical: categorical.contains(name),
            })
            .collect();
        Ok(Config {
            columns,
            label,
            numeric_imputer,
            numeric_fill_value,
            categorical_fill_value,
            scale,
            handle_unknown,
        })
    }

    /// How many fields a training record has.
    pub fn training_width(&self) -> usize {
        self.columns.len() + usize::from(self.label.is_some())
    }
}

/// Splits a comma-separated list of column names; names are trimmed and must
/// be non-empty and unique.
fn name_list(hyperparameter: &str, value: &str) -> Result<Vec<String>, StageError> {
    let mut names: Vec<String> = Vec::new();
    for (i, raw) in value.split(',').enumerate() {
        let name = raw.trim();
        if name.is_empty() {
            return Err(StageError::bad_request(format!(
                "hyperparameter '{hyperparameter}' has an empty name at position {} in '{value}'",
                i + 1
            )));
        }
        if names.iter().any(|n| n == name) {
            return Err(StageError::bad_request(format!(
                "hyperparameter '{hyperparameter}' names '{name}' twice"
            )));
        }
        names.push(name.to_string());
    }
    Ok(names)
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hp(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn abalone_schema_with_defaults() {
        let config = Config::from_hyperparameters(&hp(&[
            ("columns", "sex, length,diameter"),
            ("categorical", "sex"),
            ("label", "rings"),
        ]))
        .unwrap();
        let names: Vec<(&str, bool)> = config
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.categorical))
            .collect();
        assert_eq!(names, [("sex", true), ("length", false), ("diameter", false)]);
        assert_eq!(config.label.as_deref(), Some("rings"));
        assert_eq!(config.numeric_imputer, NumericImputer::Median);
        assert!(config.scale);
        assert_eq!(config.handle_unknown, HandleUnknown::Ignore);
        assert_eq!(config.categorical_fill_value, "missing");
        assert_eq!(config.training_width(), 4);
    }

    #[test]
    fn options_parse() {
        let config = Config::from_hyperparameters(&hp(&[
            ("columns", "a,b"),
            ("numeric_imputer", "constant"),
            ("numeric_fill_value", "-1.5"),
            ("scale", "False"),
            ("handle_unknown", "error"),
        ]))
        .unwrap();
        assert_eq!(config.numeric_imputer, NumericImputer::Constant);
        assert_eq!(config.numeric_fill_value, -1.5);
        assert!(!config.scale);
        assert_eq!(config.handle_unknown, HandleUnknown::Error);
        assert_eq!(config.label, None);
        assert_eq!(config.training_width(), 2);
    }

    #[test]
    fn errors_name_the_hyperparameter() {
        let cases: [(&[(&str, &str)], &str); 10] = [
            (&[], "'columns' is required"),
            (
                &[("columns", "a"), ("colums", "b"), ("lr", "1")],
                "'colums', 'lr'",
            ),
            (&[("columns", "a,,b")], "empty name at position 2"),
            (&[("columns", "a,a")], "names 'a' twice"),
            (
                &[("columns", "a"), ("categorical", "b")],
                "'categorical' names 'b'",
            ),
            (&[("columns", "a"), ("label", "a")], "'label' ('a') must not be"),
            (&[("columns", "a"), ("numeric_imputer", "avg")], "got 'avg'"),
            (
                &[("columns", "a"), ("numeric_fill_value", "1")],
                "only with numeric_imputer=constant",
            ),
            (
                &[("columns", "a"), ("scale", "yes")],
                "'scale' must be true or false, got 'yes'",
            ),
            (&[("columns", "a"), ("handle_unknown", "skip")], "got 'skip'"),
        ];
        for (pairs, expected) in cases {
            let err = Config::from_hyperparameters(&hp(pairs)).unwrap_err();
            assert!(err.message.contains(expected), "{pairs:?}: {err}");
        }
        let err = Config::from_hyperparameters(&hp(&[
            ("columns", "a"),
            ("numeric_imputer", "constant"),
            ("numeric_fill_value", "x"),
        ]))
        .unwrap_err();
        assert!(
            err.message
                .contains("'numeric_fill_value' must be a finite number, got 'x'"),
            "{err}"
        );
    }
}
