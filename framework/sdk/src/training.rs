//! The SageMaker training environment as a training hook sees it.
//!
//! `modelstage train` builds the environment exactly as sagemaker-training-toolkit
//! does and hands the hook its `SM_TRAINING_ENV` document; [`TrainingEnv`] is that
//! document, typed. [`Hyperparameters`] holds the user hyperparameters already
//! decoded the toolkit's way (`json.loads` when it parses, the raw string
//! otherwise), with getters that accept every spelling a SageMaker user may send
//! and fail with a message that names the hyperparameter and the value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::python::{str_of, to_json_compact_sorted};
use crate::StageError;

/// The training environment (`SM_TRAINING_ENV`), parsed.
#[derive(Debug, Clone)]
pub struct TrainingEnv {
    json: String,
    raw: Value,
    model_dir: PathBuf,
    output_data_dir: PathBuf,
    channels: BTreeMap<String, PathBuf>,
    input_data_config: Map<String, Value>,
    hyperparameters: Hyperparameters,
    current_host: String,
    hosts: Vec<String>,
    num_cpus: usize,
}

impl TrainingEnv {
    /// Parses the `SM_TRAINING_ENV` JSON document. Only `model_dir` is required;
    /// the other fields default to what a one-host job without channels has.
    pub fn from_json(sm_training_env_json: &str) -> Result<TrainingEnv, StageError> {
        let raw: Value = serde_json::from_str(sm_training_env_json)
            .map_err(|e| StageError::internal(format!("SM_TRAINING_ENV is not valid JSON: {e}")))?;
        let obj = raw
            .as_object()
            .ok_or_else(|| StageError::internal("SM_TRAINING_ENV must be a JSON object"))?;

        let model_dir = PathBuf::from(
            text_field(obj, "model_dir")?
                .ok_or_else(|| StageError::internal("SM_TRAINING_ENV has no 'model_dir'"))?,
        );
        // The toolkit's output data dir is <base>/output/data, a sibling of model/.
        let output_data_dir = match text_field(obj, "output_data_dir")? {
            Some(dir) => PathBuf::from(dir),
            None => model_dir
                .parent()
                .unwrap_or(Path::new("/"))
                .join("output")
                .join("data"),
        };

        let mut channels = BTreeMap::new();
        for (name, dir) in object_field(obj, "channel_input_dirs")? {
            let dir = dir.as_str().ok_or_else(|| {
                StageError::internal(format!(
                    "SM_TRAINING_ENV: channel_input_dirs['{name}'] must be a string, got {dir}"
                ))
            })?;
            channels.insert(name.clone(), PathBuf::from(dir));
        }
        let input_data_config = object_field(obj, "input_data_config")?.clone();
        let hyperparameters = Hyperparameters::from_map(object_field(obj, "hyperparameters")?.clone());

        let current_host = text_field(obj, "current_host")?.unwrap_or("algo-1").to_string();
        let hosts = match obj.get("hosts") {
            None | Some(Value::Null) => vec![current_host.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|h| {
                    h.as_str().map(str::to_string).ok_or_else(|| {
                        StageError::internal(format!("SM_TRAINING_ENV: 'hosts' must hold strings, got {h}"))
                    })
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(StageError::internal(format!(
                    "SM_TRAINING_ENV: 'hosts' must be a list, got {other}"
                )))
            }
        };
        let num_cpus = match obj.get("num_cpus") {
            None | Some(Value::Null) => std::thread::available_parallelism().map_or(1, |n| n.get()),
            Some(v) => v.as_u64().map(|n| n as usize).ok_or_else(|| {
                StageError::internal(format!("SM_TRAINING_ENV: 'num_cpus' must be a count, got {v}"))
            })?,
        };

        Ok(TrainingEnv {
            json: sm_training_env_json.to_string(),
            raw,
            model_dir,
            output_data_dir,
            channels,
            input_data_config,
            hyperparameters,
            current_host,
            hosts,
            num_cpus,
        })
    }

    /// The `SM_TRAINING_ENV` text exactly as the runtime passed it.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// The whole `SM_TRAINING_ENV` document, for fields without a getter.
    pub fn raw(&self) -> &Value {
        &self.raw
    }

    /// Where the model goes (`SM_MODEL_DIR`, `/opt/ml/model`); SageMaker packs it into `model.tar.gz`.
    pub fn model_dir(&self) -> &Path {
        &self.model_dir
    }

    /// Where other artifacts go (`SM_OUTPUT_DATA_DIR`, `/opt/ml/output/data`); packed into `output.tar.gz`.
    pub fn output_data_dir(&self) -> &Path {
        &self.output_data_dir
    }

    /// The names of the job's channels, sorted.
    pub fn channel_names(&self) -> Vec<&str> {
        self.channels.keys().map(String::as_str).collect()
    }

    /// The directory of channel `name` (`/opt/ml/input/data/<name>`), if the job has that channel.
    pub fn channel_dir(&self, name: &str) -> Option<&Path> {
        self.channels.get(name).map(PathBuf::as_path)
    }

    /// All regular files of the channel, recursively, sorted by path. Err (naming the channel and the
    /// channels that do exist) when the channel is not configured.
    pub fn channel_files(&self, name: &str) -> Result<Vec<PathBuf>, StageError> {
        let dir = self.channel_dir(name).ok_or_else(|| {
            let known = if self.channels.is_empty() {
                "the job has no channels: input/config/inputdataconfig.json declares none (it maps \
                 each channel to its settings, e.g. {\"train\": {\"ContentType\": \"text/csv\"}}, and \
                 `modelstage fit --keep-tree` shows a whole tree)"
                    .to_string()
            } else {
                format!("the job's channels are: {}", self.channel_names().join(", "))
            };
            StageError::internal(format!("channel '{name}' is not configured; {known}"))
        })?;
        let mut files = Vec::new();
        collect_files(dir, &mut files).map_err(|e| {
            StageError::internal(format!("cannot list channel '{name}' ({}): {e}", dir.display()))
        })?;
        files.sort();
        Ok(files)
    }

    /// The `ContentType` the channel declared in `inputdataconfig.json`, if any.
    pub fn channel_content_type(&self, name: &str) -> Option<&str> {
        self.input_data_config.get(name)?.get("ContentType")?.as_str()
    }

    /// The user hyperparameters (`sagemaker_*` keys removed), decoded the toolkit's way.
    pub fn hyperparameters(&self) -> &Hyperparameters {
        &self.hyperparameters
    }

    /// This host's name (`SM_CURRENT_HOST`, e.g. `algo-1`).
    pub fn current_host(&self) -> &str {
        &self.current_host
    }

    /// Every host of the job, sorted as SageMaker lists them (`SM_HOSTS`).
    pub fn hosts(&self) -> Vec<&str> {
        self.hosts.iter().map(String::as_str).collect()
    }

    /// The number of CPUs of this host (`SM_NUM_CPUS`).
    pub fn num_cpus(&self) -> usize {
        self.num_cpus
    }
}

fn text_field<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, StageError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(StageError::internal(format!(
            "SM_TRAINING_ENV: '{key}' must be a string, got {other}"
        ))),
    }
}

fn object_field<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<&'a Map<String, Value>, StageError> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    match obj.get(key) {
        None | Some(Value::Null) => Ok(EMPTY.get_or_init(Map::new)),
        Some(Value::Object(map)) => Ok(map),
        Some(other) => Err(StageError::internal(format!(
            "SM_TRAINING_ENV: '{key}' must be an object, got {other}"
        ))),
    }
}

/// Collects the regular files under `dir`. Symbolic links to files count as files; links to
/// directories are not followed, so a link cycle cannot make the walk endless.
fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let link = std::fs::symlink_metadata(&path)?;
        if link.is_dir() {
            collect_files(&path, out)?;
        } else if std::fs::metadata(&path).map(|m| m.is_file()).unwrap_or(false) {
            out.push(path);
        }
    }
    Ok(())
}

/// The user hyperparameters of a training job, decoded as the toolkit decodes them:
/// `"10"` is the number 10, `"true"` the boolean, `"auto"` and `"True"` stay strings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hyperparameters {
    values: BTreeMap<String, Value>,
}

impl Hyperparameters {
    /// Wraps already decoded values (the `hyperparameters` object of `SM_TRAINING_ENV`).
    pub fn from_map(values: Map<String, Value>) -> Hyperparameters {
        Hyperparameters {
            values: values.into_iter().collect(),
        }
    }

    /// The decoded value of `name`, as it is.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(name)
    }

    /// The names, sorted.
    pub fn keys(&self) -> Vec<&str> {
        self.values.keys().map(String::as_str).collect()
    }

    /// Whether a hyperparameter named `name` was given.
    pub fn contains(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// The value as text: strings as they are, other values as Python's `str()` prints them.
    pub fn string(&self, name: &str) -> Option<String> {
        self.values.get(name).map(|v| match v {
            Value::String(s) => s.clone(),
            other => str_of(other),
        })
    }

    /// A whole number ≥ 1. Accepts `10`, `"10"` and whole floats such as `10.0`.
    pub fn positive_int(&self, name: &str) -> Result<Option<u64>, StageError> {
        self.integer(name, 1, "a positive integer")
    }

    /// A whole number ≥ 0. Accepts `0`, `"0"` and whole floats such as `3.0`.
    pub fn non_negative_int(&self, name: &str) -> Result<Option<u64>, StageError> {
        self.integer(name, 0, "a non-negative integer")
    }

    fn integer(&self, name: &str, min: u64, what: &str) -> Result<Option<u64>, StageError> {
        let Some(value) = self.values.get(name) else {
            return Ok(None);
        };
        let parsed = match value {
            Value::Number(n) => n.as_u64().or_else(|| n.as_f64().and_then(whole)),
            Value::String(s) => {
                let s = s.trim();
                s.parse::<u64>()
                    .ok()
                    .or_else(|| s.parse::<f64>().ok().and_then(whole))
            }
            _ => None,
        };
        match parsed {
            Some(n) if n >= min => Ok(Some(n)),
            _ => Err(invalid(name, what, value)),
        }
    }

    /// A number. Accepts `0.1`, `"0.1"`, `1e-5`, `10` and Python's spellings `nan`, `inf`, `-inf`.
    pub fn float(&self, name: &str) -> Result<Option<f64>, StageError> {
        let Some(value) = self.values.get(name) else {
            return Ok(None);
        };
        let parsed = match value {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => python_float(s.trim()),
            _ => None,
        };
        parsed.map(Some).ok_or_else(|| invalid(name, "a number", value))
    }

    /// A boolean. Accepts `true`/`false` in any letter case (so Python's `True`/`False`) and `1`/`0`.
    pub fn bool(&self, name: &str) -> Result<Option<bool>, StageError> {
        let Some(value) = self.values.get(name) else {
            return Ok(None);
        };
        let parsed = match value {
            Value::Bool(b) => Some(*b),
            // 1 and 0 (also 1.0 and 0.0) are the only numbers that read as booleans.
            Value::Number(n) => n.as_f64().filter(|x| *x == 1.0 || *x == 0.0).map(|x| x == 1.0),
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => Some(true),
                "false" | "0" => Some(false),
                _ => None,
            },
            _ => None,
        };
        parsed
            .map(Some)
            .ok_or_else(|| invalid(name, "a boolean (true or false)", value))
    }

    /// One of `allowed`, compared exactly (the value's text as [`string`](Self::string) gives it).
    pub fn one_of(&self, name: &str, allowed: &[&str]) -> Result<Option<String>, StageError> {
        let Some(text) = self.string(name) else {
            return Ok(None);
        };
        if allowed.contains(&text.as_str()) {
            Ok(Some(text))
        } else {
            Err(StageError::bad_request(format!(
                "hyperparameter '{name}' must be one of {}, got '{text}'",
                allowed.join(", ")
            )))
        }
    }

    /// Err naming every unknown key and listing the known ones.
    pub fn reject_unknown(&self, known: &[&str]) -> Result<(), StageError> {
        let unknown: Vec<String> = self
            .values
            .keys()
            .filter(|k| !known.contains(&k.as_str()))
            .map(|k| format!("'{k}'"))
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        let mut known_sorted = known.to_vec();
        known_sorted.sort_unstable();
        let noun = if unknown.len() == 1 {
            "hyperparameter"
        } else {
            "hyperparameters"
        };
        Err(StageError::bad_request(format!(
            "unknown {noun} {}; the known hyperparameters are: {}",
            unknown.join(", "),
            known_sorted.join(", ")
        )))
    }
}

/// `x` as an integer when it is a whole, non-negative number that fits.
fn whole(x: f64) -> Option<u64> {
    (x.is_finite() && x.fract() == 0.0 && x >= 0.0 && x <= u64::MAX as f64).then_some(x as u64)
}

/// Python's `float(text)` for the spellings users write: decimal numbers and nan/inf/infinity.
fn python_float(text: &str) -> Option<f64> {
    let lower = text.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    match unsigned {
        "nan" | "inf" | "infinity" => lower.parse().ok(),
        // Rust also reads "infinity" spellings above; anything else must look like a number.
        _ if unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.') => text.parse().ok(),
        _ => None,
    }
}

/// The error for a value of the wrong kind, quoting the value as the user sent it
/// (strings raw, other values as compact JSON, which is how `SM_HP_<NAME>` shows them).
fn invalid(name: &str, what: &str, value: &Value) -> StageError {
    let shown = match value {
        Value::String(s) => s.clone(),
        Value::Null => "null".to_string(),
        other => to_json_compact_sorted(other),
    };
    StageError::bad_request(format!("hyperparameter '{name}' must be {what}, got '{shown}'"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hps(values: Value) -> Hyperparameters {
        Hyperparameters::from_map(values.as_object().unwrap().clone())
    }

    fn message<T: std::fmt::Debug>(r: Result<T, StageError>) -> String {
        r.expect_err("expected an error").message
    }

    #[test]
    fn integers_accept_every_spelling() {
        let h = hps(json!({"a": 10, "b": "10", "c": 10.0, "d": " 7 ", "z": 0}));
        for (key, expected) in [("a", 10), ("b", 10), ("c", 10), ("d", 7)] {
            assert_eq!(h.positive_int(key).unwrap(), Some(expected), "{key}");
        }
        assert_eq!(h.non_negative_int("z").unwrap(), Some(0));
        assert_eq!(h.positive_int("missing").unwrap(), None);
    }

    #[test]
    fn integer_errors_quote_the_value() {
        let h = hps(json!({"epochs": "ten", "zero": 0, "neg": -3, "frac": 2.5, "flag": true}));
        assert_eq!(
            message(h.positive_int("epochs")),
            "hyperparameter 'epochs' must be a positive integer, got 'ten'"
        );
        assert_eq!(
            message(h.positive_int("zero")),
            "hyperparameter 'zero' must be a positive integer, got '0'"
        );
        assert_eq!(
            message(h.non_negative_int("neg")),
            "hyperparameter 'neg' must be a non-negative integer, got '-3'"
        );
        assert!(message(h.positive_int("frac")).ends_with("got '2.5'"));
        assert!(message(h.positive_int("flag")).ends_with("got 'true'"));
    }

    #[test]
    fn floats() {
        let h = hps(json!({"a": 0.1, "b": "1e-5", "c": 3, "n": "NaN", "i": "-inf", "x": "abc", "l": [1]}));
        assert_eq!(h.float("a").unwrap(), Some(0.1));
        assert_eq!(h.float("b").unwrap(), Some(1e-5));
        assert_eq!(h.float("c").unwrap(), Some(3.0));
        assert!(h.float("n").unwrap().unwrap().is_nan());
        assert_eq!(h.float("i").unwrap(), Some(f64::NEG_INFINITY));
        assert_eq!(
            message(h.float("x")),
            "hyperparameter 'x' must be a number, got 'abc'"
        );
        assert_eq!(
            message(h.float("l")),
            "hyperparameter 'l' must be a number, got '[1]'"
        );
    }

    #[test]
    fn booleans_accept_python_and_json_spellings() {
        let h = hps(json!({"a": true, "b": "True", "c": "false", "d": 1, "e": "0", "f": "yes"}));
        assert_eq!(h.bool("a").unwrap(), Some(true));
        assert_eq!(h.bool("b").unwrap(), Some(true));
        assert_eq!(h.bool("c").unwrap(), Some(false));
        assert_eq!(h.bool("d").unwrap(), Some(true));
        assert_eq!(h.bool("e").unwrap(), Some(false));
        assert_eq!(
            message(h.bool("f")),
            "hyperparameter 'f' must be a boolean (true or false), got 'yes'"
        );
    }

    #[test]
    fn strings_and_choices() {
        let h = hps(json!({"kind": "regressor", "n": 10, "bad": "tree"}));
        assert_eq!(h.string("kind").as_deref(), Some("regressor"));
        assert_eq!(h.string("n").as_deref(), Some("10"));
        assert_eq!(
            h.one_of("kind", &["binary_classifier", "regressor"])
                .unwrap()
                .as_deref(),
            Some("regressor")
        );
        assert_eq!(
            message(h.one_of("bad", &["auto", "linear"])),
            "hyperparameter 'bad' must be one of auto, linear, got 'tree'"
        );
        assert_eq!(h.one_of("absent", &["auto"]).unwrap(), None);
    }

    #[test]
    fn reject_unknown_names_every_unknown_key() {
        let h = hps(json!({"epochs": 1, "lr": 0.1, "typo": 2}));
        assert!(h.reject_unknown(&["epochs", "lr", "typo"]).is_ok());
        assert_eq!(
            message(h.reject_unknown(&["lr", "epochs"])),
            "unknown hyperparameter 'typo'; the known hyperparameters are: epochs, lr"
        );
        assert_eq!(
            message(h.reject_unknown(&["lr"])),
            "unknown hyperparameters 'epochs', 'typo'; the known hyperparameters are: lr"
        );
        assert_eq!(h.keys(), vec!["epochs", "lr", "typo"]);
    }

    fn env_json(base: &Path) -> String {
        json!({
            "model_dir": base.join("model"),
            "output_data_dir": base.join("output/data"),
            "channel_input_dirs": {
                "train": base.join("input/data/train"),
                "validation": base.join("input/data/validation"),
            },
            "input_data_config": {"train": {"ContentType": "text/csv", "TrainingInputMode": "File"},
                                  "validation": {"TrainingInputMode": "File"}},
            "hyperparameters": {"epochs": 3},
            "current_host": "algo-2",
            "hosts": ["algo-1", "algo-2"],
            "num_cpus": 4,
        })
        .to_string()
    }

    #[test]
    fn reads_the_document() {
        let base = Path::new("/opt/ml");
        let text = env_json(base);
        let env = TrainingEnv::from_json(&text).unwrap();
        assert_eq!(env.json(), text);
        assert_eq!(env.model_dir(), Path::new("/opt/ml/model"));
        assert_eq!(env.output_data_dir(), Path::new("/opt/ml/output/data"));
        assert_eq!(env.channel_names(), vec!["train", "validation"]);
        assert_eq!(
            env.channel_dir("train"),
            Some(Path::new("/opt/ml/input/data/train"))
        );
        assert_eq!(env.channel_dir("test"), None);
        assert_eq!(env.channel_content_type("train"), Some("text/csv"));
        assert_eq!(env.channel_content_type("validation"), None);
        assert_eq!(env.hyperparameters().positive_int("epochs").unwrap(), Some(3));
        assert_eq!(env.current_host(), "algo-2");
        assert_eq!(env.hosts(), vec!["algo-1", "algo-2"]);
        assert_eq!(env.num_cpus(), 4);
    }

    #[test]
    fn minimal_document_gets_defaults() {
        let env = TrainingEnv::from_json(r#"{"model_dir": "/base/model"}"#).unwrap();
        assert_eq!(env.output_data_dir(), Path::new("/base/output/data"));
        assert!(env.channel_names().is_empty());
        assert_eq!(env.hosts(), vec!["algo-1"]);
        assert!(env.hyperparameters().keys().is_empty());
    }

    #[test]
    fn bad_documents_are_refused_with_the_reason() {
        assert!(TrainingEnv::from_json("{")
            .unwrap_err()
            .message
            .contains("not valid JSON"));
        assert!(TrainingEnv::from_json("{}")
            .unwrap_err()
            .message
            .contains("'model_dir'"));
        let err = TrainingEnv::from_json(r#"{"model_dir": "/m", "hosts": "algo-1"}"#).unwrap_err();
        assert!(err.message.contains("'hosts' must be a list"), "{}", err.message);
    }

    #[test]
    fn channel_files_are_recursive_and_sorted() {
        let base = std::env::temp_dir().join(format!("modelstage-sdk-channel-{}", std::process::id()));
        let train = base.join("input/data/train");
        std::fs::create_dir_all(train.join("sub")).unwrap();
        std::fs::create_dir_all(base.join("input/data/validation")).unwrap();
        for file in ["b.csv", "a.csv", "sub/c.csv"] {
            std::fs::write(train.join(file), "1\n").unwrap();
        }
        let env = TrainingEnv::from_json(&env_json(&base)).unwrap();
        let files = env.channel_files("train").unwrap();
        assert_eq!(
            files,
            vec![train.join("a.csv"), train.join("b.csv"), train.join("sub/c.csv")]
        );
        assert!(env.channel_files("validation").unwrap().is_empty());
        assert_eq!(
            message(env.channel_files("test")),
            "channel 'test' is not configured; the job's channels are: train, validation"
        );
        std::fs::remove_dir_all(&base).unwrap();
    }
}
