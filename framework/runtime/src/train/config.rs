//! Reads the three configuration files SageMaker writes into `input/config/` and decodes the
//! hyperparameters the way sagemaker-training-toolkit does (docs/contract.md (Training)).

use std::path::Path;

use serde_json::{Map, Value};

use super::paths::Paths;
use super::JobError;

/// The job configuration as the platform wrote it.
#[derive(Debug, Clone, Default)]
pub struct JobConfig {
    /// `hyperparameters.json`, values as written (normally all strings).
    pub hyperparameters: Map<String, Value>,
    /// `inputdataconfig.json`: channel name → its settings.
    pub input_data_config: Map<String, Value>,
    /// `resourceconfig.json`.
    pub resource_config: Map<String, Value>,
}

impl JobConfig {
    /// Reads `input/config/*.json`. A missing `hyperparameters.json` or `inputdataconfig.json` means
    /// none (SageMaker always writes both; the toolkit writes `{}` when it lays out a local tree);
    /// a missing `resourceconfig.json` means one host, `algo-1`. Unreadable or malformed files are
    /// errors, and so is a missing `inputdataconfig.json` beside channel data in `input/data/`: the
    /// data would silently be left out, so the error names the file and shows its shape.
    pub fn read(paths: &Paths) -> Result<JobConfig, JobError> {
        let resource_config = read_object(&paths.config_file("resourceconfig.json"))?.unwrap_or_else(|| {
            log::warn!("no resourceconfig.json: training as the single host algo-1");
            let mut single = Map::new();
            single.insert("current_host".into(), "algo-1".into());
            single.insert("hosts".into(), Value::Array(vec!["algo-1".into()]));
            single
        });
        Ok(JobConfig {
            hyperparameters: read_object(&paths.config_file("hyperparameters.json"))?.unwrap_or_default(),
            input_data_config: match read_object(&paths.config_file("inputdataconfig.json"))? {
                Some(channels) => channels,
                None => no_input_data_config(paths)?,
            },
            resource_config,
        })
    }
}

/// The channels when `inputdataconfig.json` is missing: none, unless `input/data/` holds channel
/// directories, which only that file can declare; then an error that names the file, shows its
/// shape for the channels found and points to a tree laid out by `modelstage fit`.
fn no_input_data_config(paths: &Paths) -> Result<Map<String, Value>, JobError> {
    let mut found: Vec<String> = std::fs::read_dir(&paths.input_data_dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    if found.is_empty() {
        return Ok(Map::new());
    }
    found.sort();
    // A few names make the point; a folder of thousands must not make the message as long.
    const SHOWN: usize = 5;
    let more = found.len().saturating_sub(SHOWN);
    found.truncate(SHOWN);
    let mut names = found
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ");
    if more > 0 {
        names.push_str(&format!(" and {more} more"));
    }
    let shape: Map<String, Value> = found
        .iter()
        .map(|name| {
            let settings = serde_json::json!({"ContentType": "text/csv", "TrainingInputMode": "File"});
            (name.clone(), settings)
        })
        .collect();
    Err(JobError::NoInputDataConfig {
        file: paths.config_file("inputdataconfig.json"),
        data_dir: paths.input_data_dir.clone(),
        names,
        shape: Value::Object(shape),
    })
}

/// A JSON object file; `None` when the file does not exist.
fn read_object(path: &Path) -> Result<Option<Map<String, Value>>, JobError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(JobError::ReadConfig {
                path: path.to_path_buf(),
                error,
            })
        }
    };
    match serde_json::from_str(&text) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(other) => Err(JobError::NotAnObject {
            path: path.to_path_buf(),
            kind: kind_of(&other),
        }),
        Err(error) => Err(JobError::InvalidJson {
            path: path.to_path_buf(),
            error,
        }),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The toolkit's `read_hyperparameters`: each string value becomes `json.loads(value)` when that
/// parses, else stays the raw string; values that are not strings are kept as they are.
pub fn decode_hyperparameters(raw: &Map<String, Value>) -> Map<String, Value> {
    raw.iter()
        .map(|(key, value)| {
            let decoded = match value {
                Value::String(text) => serde_json::from_str(text).unwrap_or_else(|_| value.clone()),
                other => other.clone(),
            };
            (key.clone(), decoded)
        })
        .collect()
}

/// The fixed list of special hyperparameters the toolkit removes from the user's
/// (`params.SAGEMAKER_HYPERPARAMETERS`).
pub(crate) const SAGEMAKER_HYPERPARAMETERS: [&str; 9] = [
    "sagemaker_program",
    "sagemaker_submit_directory",
    "sagemaker_enable_cloudwatch_metrics",
    "sagemaker_region",
    "sagemaker_container_log_level",
    "sagemaker_job_name",
    "default_user_module_name",
    "_tuning_objective_metric",
    "sagemaker_s3_output",
];

/// Decoded hyperparameters split as the toolkit splits them.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct SplitHyperparameters {
    /// What the user's code sees (`SM_HPS`, `SM_HP_*`, the command-line arguments).
    pub user: Map<String, Value>,
    /// Every `sagemaker_*` key and the fixed special keys.
    pub sagemaker: Map<String, Value>,
    /// The `sagemaker_*` keys that are not in the fixed list (`SM_FRAMEWORK_PARAMS`).
    pub framework: Map<String, Value>,
}

/// `mapping.split_by_criteria(hps, keys=SAGEMAKER_HYPERPARAMETERS, prefix="sagemaker_")`.
pub(crate) fn split(decoded: Map<String, Value>) -> SplitHyperparameters {
    let mut out = SplitHyperparameters::default();
    for (key, value) in decoded {
        let fixed = SAGEMAKER_HYPERPARAMETERS.contains(&key.as_str());
        if fixed || key.starts_with("sagemaker_") {
            if !fixed {
                out.framework.insert(key.clone(), value.clone());
            }
            out.sagemaker.insert(key, value);
        } else {
            out.user.insert(key, value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decoding_follows_json_loads_or_raw() {
        // The pairs of docs/contract.md (Training), decoded by hand with Python's json.loads.
        let raw = json!({
            "a": "20", "b": "0.1", "c": "true", "d": "\"adam\"", "e": "adam", "f": "True",
            "g": "null", "h": "[1, 2]", "i": "{\"k\": 1}", "j": 7, "k": " 5 "
        });
        let decoded = decode_hyperparameters(raw.as_object().unwrap());
        let expected = json!({
            "a": 20, "b": 0.1, "c": true, "d": "adam", "e": "adam", "f": "True",
            "g": null, "h": [1, 2], "i": {"k": 1}, "j": 7, "k": 5
        });
        assert_eq!(Value::Object(decoded), expected);
    }

    #[test]
    fn a_missing_inputdataconfig_is_none_without_data_and_an_error_beside_data() {
        let dir = std::env::temp_dir().join(format!("modelstage-config-{}", std::process::id()));
        let paths = Paths::new(dir.to_str().unwrap());
        std::fs::create_dir_all(&paths.input_config_dir).unwrap();
        let config = JobConfig::read(&paths).unwrap();
        assert!(config.input_data_config.is_empty());

        for channel in ["train", "validation"] {
            std::fs::create_dir_all(paths.channel_dir(channel)).unwrap();
        }
        let err = JobConfig::read(&paths).unwrap_err().to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        let file = paths.config_file("inputdataconfig.json");
        assert!(
            err.starts_with(&format!("{} is missing", file.display())),
            "{err}"
        );
        assert!(err.contains("holds data for 'train', 'validation'"), "{err}");
        assert!(
            err.contains(r#"{"train":{"ContentType":"text/csv","TrainingInputMode":"File"},"validation":"#),
            "{err}"
        );
        assert!(err.contains("modelstage fit --keep-tree"), "{err}");
    }

    #[test]
    fn split_moves_sagemaker_keys_out() {
        let decoded = json!({
            "epochs": 1, "sagemaker_program": "train.py", "sagemaker_mpi_enabled": true,
            "_tuning_objective_metric": "loss", "sagemakerish": 2
        });
        let s = split(decoded.as_object().unwrap().clone());
        assert_eq!(Value::Object(s.user), json!({"epochs": 1, "sagemakerish": 2}));
        assert_eq!(Value::Object(s.framework), json!({"sagemaker_mpi_enabled": true}));
        assert_eq!(
            Value::Object(s.sagemaker),
            json!({"sagemaker_program": "train.py", "sagemaker_mpi_enabled": true,
                   "_tuning_objective_metric": "loss"})
        );
    }
}
