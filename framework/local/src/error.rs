//! The one error type of local mode's commands. A command returns it; the
//! binary's `main` prints it and takes the exit code from it, so no command
//! prints its own failure or picks its own code.

use std::process::ExitCode;

/// Why a local command did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The command could not do its job (a bad request document, a missing
    /// engine, a container that did not start).
    #[error("modelstage {command}: {source:#}")]
    Failed {
        /// The command, as typed (`deploy`).
        command: &'static str,
        /// What went wrong, with its causes.
        source: anyhow::Error,
    },
    /// `check` could not check at all (a bad argument, a target that cannot
    /// be reached): exit code 2, apart from checks that ran and failed.
    #[error("modelstage check: {0:#}")]
    CannotCheck(anyhow::Error),
    /// `check` ran and `failed` of its checks failed (the report says which).
    #[error("{failed} check(s) failed")]
    ChecksFailed {
        /// How many.
        failed: usize,
    },
    /// The job ran and failed; the message says why (the job's own words).
    #[error("{0}")]
    JobFailed(String),
    /// A transform job could not run (a bad request document, no input, a model that did not
    /// start or answer).
    #[error("error: {0}")]
    Transform(crate::transform::TransformError),
    /// `invoke` was answered with a status that is not a success: the answer's
    /// head (its status line, and its headers with `--verbose`) and body, as
    /// the endpoint sent them.
    #[error("{head}\n{body}")]
    Answered {
        /// `HTTP 415 Unsupported Media Type` and any header lines.
        head: String,
        /// The body, as text.
        body: String,
    },
    /// Stopped by a signal before it finished; the message says what was left.
    #[error("{message}")]
    Stopped {
        /// The signal's number (the exit code is 128 + it).
        signal: i32,
        /// What the person reading the terminal needs to know.
        message: String,
    },
}

impl CommandError {
    /// `command`'s failure for `source`.
    pub fn failed(command: &'static str, source: impl Into<anyhow::Error>) -> CommandError {
        CommandError::Failed {
            command,
            source: source.into(),
        }
    }

    /// The process's exit code: 1, or the conventional `128 + signal`.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CommandError::Stopped { signal, .. } => ExitCode::from(u8::try_from(128 + signal).unwrap_or(1)),
            CommandError::CannotCheck(_) => ExitCode::from(2),
            _ => ExitCode::FAILURE,
        }
    }
}
