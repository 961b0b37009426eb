//! The harness's one error type: why a stage library could not be found or loaded, or a
//! `modelstage serve` not started or asked. A training job's failure is not one of these: it is
//! the job's failure reason, the text `output/failure` received.

use std::path::PathBuf;

use modelstage_runtime::loader::LoadError;

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
}
