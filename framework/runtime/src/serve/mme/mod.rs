//! Multi-model endpoints: many models of one stage behind one endpoint,
//! loaded and unloaded on demand, as SageMaker hosts them
//! (`SAGEMAKER_MULTI_MODEL=true`; docs/deploying.md, "Multi-model
//! endpoints").
//!
//! - `held`: a worker's models, and the loads and unloads it runs.
//! - `control`: the server's end of those operations, per worker.
//! - `registry`: the server's table of models, the budget check, eviction,
//!   and the reload of every model in a replacement worker.
//! - `budget`: the memory budget and the workers' resident memory.
//! - `routes`: the HTTP API (`/models`, and `/invocations` with
//!   `X-Amzn-SageMaker-Target-Model`).

pub mod budget;
pub mod control;
pub mod held;
pub mod registry;
pub mod routes;

use super::config::{env_var, ConfigError};

pub use control::Control;
pub use registry::Registry;

/// `true` makes the endpoint a multi-model one, as SageMaker sets it.
pub const ENV_MULTI_MODEL: &str = "SAGEMAKER_MULTI_MODEL";
/// `lru` unloads the least recently used models to make room; `none`
/// (the default) answers 507.
pub const ENV_EVICT: &str = "MODELSTAGE_MME_EVICT";

/// How a multi-model endpoint runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How much memory the server and its workers (their models) may take.
    pub budget: budget::Budget,
    /// `MODELSTAGE_MME_EVICT=lru`.
    pub evict_lru: bool,
}

impl Settings {
    /// `None` unless `SAGEMAKER_MULTI_MODEL` is `true`; an error for a
    /// value that is neither `true` nor `false`, or a bad budget or
    /// eviction setting.
    pub fn read() -> Result<Option<Settings>, ConfigError> {
        match env_var(ENV_MULTI_MODEL).map(|v| v.trim().to_ascii_lowercase()) {
            None => return Ok(None),
            Some(v) if v == "false" => return Ok(None),
            Some(v) if v == "true" => {}
            Some(v) => return Err(ConfigError::invalid(ENV_MULTI_MODEL, "true or false", v)),
        }
        let evict_lru = match env_var(ENV_EVICT).map(|v| v.trim().to_ascii_lowercase()) {
            None => false,
            Some(v) if v == "none" => false,
            Some(v) if v == "lru" => true,
            Some(v) => return Err(ConfigError::invalid(ENV_EVICT, "lru or none", v)),
        };
        Ok(Some(Settings {
            budget: budget::Budget::read()?,
            evict_lru,
        }))
    }
}
