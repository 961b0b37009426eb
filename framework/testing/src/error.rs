//! The harness's one error type: why a stage library could not be found or loaded, a training
//! job not laid out or failed (its reason, the text `output/failure` received), or a
//! `modelstage serve` not started or asked.

use std::path::PathBuf;

use modelstage_runtime::loader::LoadError;
use modelstage_runtime::train::JobError;

/// Why the harness could not do what a test asked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The running test binary cannot be found.
    #[error("cannot find the test binary: {0}")]
    TestBinary(std::io::Error),
    /// The test binary's path has no folder.
    #[error("{} has no parent folder", .0.display())]
    NoProfileDir(PathBuf),
    /// The library is missing and cargo cannot run to build it.
    #[error("{} is not built and cargo cannot run: {error}", library.display())]
    Cargo {
        /// The library looked for.
        library: PathBuf,
        /// Why cargo did not start.
        error: std::io::Error,
    },
    /// `cargo build --lib` did not make the library.
    #[error(
        "{} is not built and `cargo build --lib` did not make it ({status}): the package needs \
         `crate-type = [\"cdylib\", \"rlib\"]` under [lib] (a C stage: a build.rs that puts \
         lib<name>.so in the profile folder)",
        library.display()
    )]
    NotBuilt {
        /// The library looked for.
        library: PathBuf,
        /// How cargo ended.
        status: std::process::ExitStatus,
    },
    /// The loader refused the library; its message says what to do.
    #[error("{0}")]
    Load(LoadError),
    /// No `modelstage` binary to serve with.
    #[error(
        "the modelstage binary is not on PATH: install it (`cargo install modelstage`) or set \
         MODELSTAGE_BIN to its path"
    )]
    NoBinary,
    /// No port to serve on.
    #[error("cannot find a free port: {0}")]
    FreePort(std::io::Error),
    /// `modelstage serve` did not start.
    #[error("cannot start {}: {error}", binary.display())]
    Start {
        /// The `modelstage` binary.
        binary: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The HTTP client cannot be built.
    #[error("cannot build an HTTP client: {0}")]
    HttpClient(reqwest::Error),
    /// `modelstage serve` ended before it answered `/ping`.
    #[error("modelstage serve exited ({0}) before /ping answered; its log is above")]
    ServeExited(std::process::ExitStatus),
    /// `modelstage serve` did not answer `/ping` in time.
    #[error("modelstage serve did not answer /ping within {0:?}")]
    ServeTimeout(std::time::Duration),
    /// `POST /invocations` got no answer.
    #[error("POST /invocations: {0}")]
    Request(reqwest::Error),
    /// The answer's body broke off.
    #[error("reading the response of /invocations: {0}")]
    ReadResponse(reqwest::Error),
    /// No temporary folder for a training job's `/opt/ml` tree.
    #[error("cannot create a temporary training tree: {0}")]
    TrainingTree(std::io::Error),
    /// A training job's configuration files or channel data cannot be written.
    #[error("cannot lay out the training tree in {}: {error}", base.display())]
    LayOut {
        /// The root of the tree.
        base: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The training job failed: its reason, the text `output/failure` received (a test looks for
    /// its words).
    #[error("{0}")]
    Training(JobError),
}
