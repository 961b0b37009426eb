//! Why a training job failed: the one error type of a job, from reading its configuration to the
//! training hook's return. Its message is the job's failure reason, written to `output/failure`
//! (SageMaker's FailureReason) and logged, so each variant says what to fix.

use std::path::PathBuf;

use serde_json::Value;

use crate::loader::{HookError, LoadError};

/// Why a training job failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// A configuration file exists but cannot be read.
    #[error("cannot read {}: {error}", path.display())]
    ReadConfig {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// A configuration file is not JSON.
    #[error("{} is not valid JSON: {error}", path.display())]
    InvalidJson {
        /// The file.
        path: PathBuf,
        /// Where and why.
        error: serde_json::Error,
    },
    /// A configuration file holds JSON that is not an object.
    #[error("{} must hold a JSON object, not {kind}", path.display())]
    NotAnObject {
        /// The file.
        path: PathBuf,
        /// What it holds (`a list`, ...).
        kind: &'static str,
    },
    /// `inputdataconfig.json` is missing beside channel data that only it can declare.
    #[error(
        "{} is missing, so no channel is configured, but {data_dir} holds data for {names}. \
         SageMaker writes this file for every job; by hand, write it as {shape} (each channel's \
         name mapped to its settings), or let `modelstage fit` lay out the tree (`modelstage fit \
         --keep-tree` keeps it to look at)",
        file.display()
    )]
    NoInputDataConfig {
        /// `inputdataconfig.json`'s path.
        file: PathBuf,
        /// The folder of the channels' data.
        data_dir: String,
        /// The first channels found, quoted (`'train', 'validation'`).
        names: String,
        /// The file's content for those channels.
        shape: Value,
    },
    /// `resourceconfig.json` lacks a member or holds one of the wrong shape; the message names it.
    #[error("resourceconfig.json{0}")]
    ResourceConfig(String),
    /// A File or FastFile channel whose data folder does not exist.
    #[error("channel '{name}' is in inputdataconfig.json but its data directory {dir} does not exist")]
    MissingChannelData {
        /// The channel.
        name: String,
        /// Its data folder.
        dir: String,
    },
    /// A folder of the tree cannot be created.
    #[error("cannot create {dir}: {error}")]
    CreateDir {
        /// The folder.
        dir: String,
        /// Why.
        error: std::io::Error,
    },
    /// The stage library cannot be loaded.
    #[error("{0}")]
    Load(LoadError),
    /// The stage serves but does not train.
    #[error(
        "stage '{name}' {version} ({}) has no training hook: it can serve but not train \
         (a Rust stage gets one with `impl Train` and `export_stage!(MyStage, train)`)",
        library.display()
    )]
    NoTrainHook {
        /// The stage's name.
        name: String,
        /// Its version.
        version: String,
        /// The library.
        library: PathBuf,
    },
    /// A variable name the OS cannot hold (from a hyperparameter or channel name).
    #[error(
        "cannot export {0}: an environment variable name cannot contain '=' or NUL \
         (rename the hyperparameter or channel it comes from)"
    )]
    VariableName(String),
    /// A variable value with a NUL character.
    #[error("cannot export {0}: its value contains a NUL character")]
    VariableValue(String),
    /// The training hook reported an error (or panicked).
    #[error("{0}")]
    Hook(HookError),
}
