//! The echo stage's training hook: a fixture that shows what a training hook receives.
//!
//! It writes the `SM_TRAINING_ENV` document it was given to `<model_dir>/training_env.json` and
//! every `SM_*` variable of its process environment to `<model_dir>/sm_env.json` (one JSON object,
//! name → value), so tests can compare both with the contract. Hyperparameters steer it:
//! `sleep_seconds` (a non-negative integer) waits before finishing, so a test can stop a running
//! job; `fail` fails the job with its text; `panic` panics with its text.

use std::collections::BTreeMap;
use std::time::Duration;

use modelstage_sdk::{StageError, Train, TrainingEnv};

use crate::Echo;

impl Train for Echo {
    fn train_fn(env: &TrainingEnv) -> Result<(), StageError> {
        let hps = env.hyperparameters();
        // Parsed first so that a bad value fails the job before anything is written.
        let sleep = hps.non_negative_int("sleep_seconds")?;

        let model_dir = env.model_dir();
        modelstage_sdk::fs::create_dir_all(model_dir)?;
        modelstage_sdk::fs::write(model_dir.join("training_env.json"), env.json())?;
        // vars_os: one variable that is not UTF-8 must not make the hook panic.
        let sm_vars: BTreeMap<String, String> = std::env::vars_os()
            .filter_map(|(name, value)| {
                Some((name.into_string().ok()?, value.to_string_lossy().into_owned()))
            })
            .filter(|(name, _)| name.starts_with("SM_"))
            .collect();
        let sm_json = serde_json::to_string_pretty(&sm_vars)
            .map_err(|e| StageError::internal(format!("cannot encode the SM_* variables: {e}")))?;
        modelstage_sdk::fs::write(model_dir.join("sm_env.json"), sm_json)?;

        if let Some(seconds) = sleep {
            std::thread::sleep(Duration::from_secs(seconds));
        }
        if let Some(text) = hps.string("panic") {
            panic!("{text}");
        }
        if let Some(text) = hps.string("fail") {
            return Err(StageError::internal(text));
        }
        Ok(())
    }
}
