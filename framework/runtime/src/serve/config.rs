//! Serving configuration: command-line flags first, then the `SAGEMAKER_*`
//! variables of the contract (docs/contract.md (Serving)), then the defaults.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use modelstage_contract::excerpt::quoted;
pub use modelstage_contract::payload::MB;
use modelstage_contract::settings;
pub use modelstage_contract::settings::{cpu_count, http_threads};
use modelstage_contract::BatchStrategy;
use modelstage_contract::ExecutionParameters;

use crate::archive::ArchiveError;

/// Why `modelstage serve` cannot run with its flags and variables
/// (`SAGEMAKER_*`, `MODELSTAGE_*`): each message names the flag or the
/// variable to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A variable whose value is not one it takes.
    #[error("{name} must be {expected}, got '{value}'")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What it takes (`a whole number`, `true or false`, ...).
        expected: &'static str,
        /// Its value.
        value: String,
    },
    /// A variable naming a port that is not a port number.
    #[error("{name} must be a port number, got {}", quoted(.value.as_bytes()))]
    NotAPort {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
    },
    /// Neither `--stage` nor `MODELSTAGE_STAGE`.
    #[error("no stage to serve: pass --stage LIB or set MODELSTAGE_STAGE")]
    NoStage,
    /// More `--model-dir` than stages.
    #[error("{given} --model-dir given for {stages} stage(s)")]
    TooManyModelDirs {
        /// The `--model-dir` flags given.
        given: usize,
        /// The stages served.
        stages: usize,
    },
    /// More `--model-data` than stages.
    #[error("{given} --model-data given for {stages} stage(s): give one per --stage, in the same order")]
    TooManyModelData {
        /// The `--model-data` flags given.
        given: usize,
        /// The stages served.
        stages: usize,
    },
    /// A `--model-data` archive that cannot be unpacked.
    #[error("--model-data {}: {error:#}", .archive.display())]
    ModelData {
        /// The archive.
        archive: PathBuf,
        /// Why it was not unpacked.
        error: ArchiveError,
    },
    /// `MODELSTAGE_UNIX_SOCKET` names a path the server cannot listen on.
    #[error("MODELSTAGE_UNIX_SOCKET={}: {reason}", .path.display())]
    UnixSocket {
        /// The path it names.
        path: PathBuf,
        /// Why the server does not listen there.
        reason: String,
    },
    /// `SAGEMAKER_MULTI_MODEL=true` with more than one stage.
    #[error("a multi-model endpoint (SAGEMAKER_MULTI_MODEL=true) serves one stage, not a pipeline")]
    MultiModelPipeline,
}

impl ConfigError {
    /// `name` is set to `value`, which is not `expected`.
    pub fn invalid(name: &'static str, expected: &'static str, value: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            name,
            expected,
            value: value.into(),
        }
    }
}

/// Reads an environment variable, treating an empty value as unset.
pub fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Where the serving variables are read: this process's environment, or, for an endpoint hosted
/// in another server (see `hosted`), the variables it was given over this process's, as a
/// container's `Environment` goes over what it inherits.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    given: Vec<(String, String)>,
}

impl Vars {
    /// This process's environment alone.
    pub fn process() -> Vars {
        Vars::default()
    }

    /// `given` (a later entry wins) over this process's environment.
    pub fn with(given: Vec<(String, String)>) -> Vars {
        Vars { given }
    }

    /// The variables given over this process's environment (what a worker process gets too).
    pub fn given(&self) -> &[(String, String)] {
        &self.given
    }

    /// A variable's value; an empty one is unset.
    pub fn get(&self, name: &str) -> Option<String> {
        match self.given.iter().rev().find(|(k, _)| k == name) {
            Some((_, v)) => Some(v.clone()).filter(|v| !v.trim().is_empty()),
            None => env_var(name),
        }
    }

    /// A variable's number; an error names a value that is not one.
    pub fn number<T: std::str::FromStr>(&self, name: &'static str) -> Result<Option<T>, ConfigError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => match v.trim().parse() {
                Ok(n) => Ok(Some(n)),
                Err(_) => Err(ConfigError::invalid(name, "a whole number", v)),
            },
        }
    }
}

/// `$SAGEMAKER_BASE_DIR`, default `/opt/ml`.
pub fn base_dir() -> PathBuf {
    env_var("SAGEMAKER_BASE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/ml"))
}

/// One stage of what a server runs: a single stage, or the stages of a
/// fused serial pipeline in order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StagePlan {
    /// The name used in errors and logs (the container name in a pipeline).
    pub name: String,
    /// The stage library.
    pub library: PathBuf,
    /// The folder `model_fn` loads the stage's model from.
    pub model_dir: PathBuf,
    /// The Accept this stage gets when it is not the last of a pipeline.
    pub default_accept: String,
}

/// What a worker process needs to know: handed over as JSON in its environment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerPlan {
    /// The stages every worker loads, in pipeline order.
    pub stages: Vec<StagePlan>,
    /// Request threads in this worker when its stages may be called from
    /// several threads at once (one otherwise: the worker decides from the
    /// descriptors it reads).
    pub threads: usize,
    /// Data connections to open to the server: one per HTTP thread.
    pub lanes: usize,
    /// A multi-model endpoint: no model at start; the server loads and
    /// unloads them (`mme`).
    #[serde(default)]
    pub multi_model: bool,
}

/// Everything `modelstage serve` runs with.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// `--port`, else `SAGEMAKER_BIND_TO_PORT`, else 8080.
    pub port: u16,
    /// The stages served, in pipeline order.
    pub stages: Vec<StagePlan>,
    /// `SAGEMAKER_MODEL_SERVER_WORKERS`, default the CPU count.
    pub workers: usize,
    /// Request threads per worker (1 for per-instance stages).
    pub threads_per_worker: usize,
    /// `SAGEMAKER_MODEL_SERVER_TIMEOUT` (seconds), default 60.
    pub timeout: Duration,
    /// `SAGEMAKER_MAX_PAYLOAD_IN_MB`, default 6 (0: no limit).
    pub max_payload_in_mb: u64,
    /// `SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`, default `application/json`.
    pub default_accept: String,
    /// What `/execution-parameters` answers.
    pub execution: ExecutionParameters,
    /// The bounds on what one client may hold of the server.
    pub edge: EdgeLimits,
}

/// The bounds on a client's connection (`docs/contract.md`, "Bounds"): a
/// client that sends its request too slowly, or holds too many connections,
/// costs its own connections only.
#[derive(Debug, Clone)]
pub struct EdgeLimits {
    /// `MODELSTAGE_HEADER_TIMEOUT_SECS`: time to receive a connection's
    /// first request head, default 10 s.
    pub header_timeout: Duration,
    /// `MODELSTAGE_BODY_TIMEOUT_SECS`: time to receive a whole request body,
    /// default 60 s.
    pub body_timeout: Duration,
    /// `MODELSTAGE_MAX_CONNECTIONS`: open connections, default 1024; lowered
    /// to what the open-file limit allows.
    pub max_connections: usize,
}

impl Default for EdgeLimits {
    fn default() -> Self {
        EdgeLimits {
            header_timeout: Duration::from_secs(Self::DEFAULT_HEADER_TIMEOUT_SECS),
            body_timeout: Duration::from_secs(Self::DEFAULT_BODY_TIMEOUT_SECS),
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
        }
    }
}

impl EdgeLimits {
    /// `header_timeout` when `MODELSTAGE_HEADER_TIMEOUT_SECS` is unset.
    pub const DEFAULT_HEADER_TIMEOUT_SECS: u64 = 10;
    /// `body_timeout` when `MODELSTAGE_BODY_TIMEOUT_SECS` is unset.
    pub const DEFAULT_BODY_TIMEOUT_SECS: u64 = 60;
    /// `max_connections` when `MODELSTAGE_MAX_CONNECTIONS` is unset.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

    /// The limits the `MODELSTAGE_*` variables set (the defaults for those
    /// unset).
    pub fn read() -> Result<EdgeLimits, ConfigError> {
        EnvSettings::read().map(|env| EdgeLimits::from_env(&env))
    }

    /// The limits from the `MODELSTAGE_*` variables read by
    /// [`EnvSettings::read`], else the defaults.
    pub fn from_env(env: &EnvSettings) -> EdgeLimits {
        let secs = |v: Option<u64>, default| Duration::from_secs(v.unwrap_or(default).max(1));
        EdgeLimits {
            header_timeout: secs(env.header_timeout_secs, Self::DEFAULT_HEADER_TIMEOUT_SECS),
            body_timeout: secs(env.body_timeout_secs, Self::DEFAULT_BODY_TIMEOUT_SECS),
            max_connections: env
                .max_connections
                .unwrap_or(Self::DEFAULT_MAX_CONNECTIONS)
                .max(1),
        }
    }
}

/// The Accept a request without one gets: `SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`,
/// else the contract's default.
pub fn default_accept(vars: &Vars) -> String {
    vars.get(settings::DEFAULT_INVOCATIONS_ACCEPT)
        .unwrap_or_else(|| settings::DEFAULT_ACCEPT.to_string())
}

/// Reads the `SAGEMAKER_*` serving variables, and the `MODELSTAGE_*` bounds.
/// Each is `None` when its variable is unset.
pub struct EnvSettings {
    /// `SAGEMAKER_BIND_TO_PORT`.
    pub port: Option<u16>,
    /// `SAGEMAKER_MODEL_SERVER_WORKERS`.
    pub workers: Option<usize>,
    /// `SAGEMAKER_MODEL_SERVER_TIMEOUT`.
    pub timeout_secs: Option<u64>,
    /// `SAGEMAKER_MAX_PAYLOAD_IN_MB`.
    pub max_payload_in_mb: Option<u64>,
    /// `SAGEMAKER_BATCH_STRATEGY`.
    pub batch_strategy: Option<BatchStrategy>,
    /// `SAGEMAKER_MAX_CONCURRENT_TRANSFORMS`.
    pub max_concurrent_transforms: Option<u32>,
    /// `MODELSTAGE_HEADER_TIMEOUT_SECS`.
    pub header_timeout_secs: Option<u64>,
    /// `MODELSTAGE_BODY_TIMEOUT_SECS`.
    pub body_timeout_secs: Option<u64>,
    /// `MODELSTAGE_MAX_CONNECTIONS`.
    pub max_connections: Option<usize>,
}

impl EnvSettings {
    /// Reads the variables; an error names a value that is not a number
    /// (or not a batch strategy).
    pub fn read() -> Result<EnvSettings, ConfigError> {
        EnvSettings::read_from(&Vars::process())
    }

    /// [`EnvSettings::read`] from `vars`.
    pub fn read_from(vars: &Vars) -> Result<EnvSettings, ConfigError> {
        const BATCH_STRATEGY: &str = "SAGEMAKER_BATCH_STRATEGY";
        let batch_strategy = match vars.get(BATCH_STRATEGY) {
            None => None,
            Some(v) => match BatchStrategy::parse(&v) {
                Some(strategy) => Some(strategy),
                None => {
                    return Err(ConfigError::invalid(
                        BATCH_STRATEGY,
                        "MULTI_RECORD or SINGLE_RECORD",
                        v,
                    ))
                }
            },
        };
        Ok(EnvSettings {
            port: vars.number("SAGEMAKER_BIND_TO_PORT")?,
            workers: vars.number("SAGEMAKER_MODEL_SERVER_WORKERS")?,
            timeout_secs: vars.number("SAGEMAKER_MODEL_SERVER_TIMEOUT")?,
            max_payload_in_mb: vars.number("SAGEMAKER_MAX_PAYLOAD_IN_MB")?,
            batch_strategy,
            max_concurrent_transforms: vars.number("SAGEMAKER_MAX_CONCURRENT_TRANSFORMS")?,
            header_timeout_secs: vars.number("MODELSTAGE_HEADER_TIMEOUT_SECS")?,
            body_timeout_secs: vars.number("MODELSTAGE_BODY_TIMEOUT_SECS")?,
            max_connections: vars.number("MODELSTAGE_MAX_CONNECTIONS")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_variables_go_over_the_process_environment() {
        // PATH is set in any test run; these two names are not.
        let vars = Vars::with(vec![
            ("SAGEMAKER_MODEL_SERVER_WORKERS".into(), "1".into()),
            ("SAGEMAKER_MODEL_SERVER_WORKERS".into(), "3".into()),
            ("PATH".into(), " ".into()),
            ("MODELSTAGE_BODY_TIMEOUT_SECS".into(), "soon".into()),
        ]);
        assert_eq!(
            vars.number::<usize>("SAGEMAKER_MODEL_SERVER_WORKERS").unwrap(),
            Some(3)
        );
        // An empty value given is unset, not the process's value.
        assert_eq!(vars.get("PATH"), None);
        assert!(Vars::process().get("PATH").is_some());
        let e = EnvSettings::read_from(&vars).err().unwrap();
        assert_eq!(
            e.to_string(),
            "MODELSTAGE_BODY_TIMEOUT_SECS must be a whole number, got 'soon'"
        );
    }

    #[test]
    fn config_errors_name_the_variable_and_its_value() {
        let e = ConfigError::invalid("SAGEMAKER_MODEL_SERVER_WORKERS", "a whole number", "two");
        assert_eq!(
            e.to_string(),
            "SAGEMAKER_MODEL_SERVER_WORKERS must be a whole number, got 'two'"
        );
        let e = ConfigError::TooManyModelDirs { given: 3, stages: 2 };
        assert_eq!(e.to_string(), "3 --model-dir given for 2 stage(s)");
    }
}
