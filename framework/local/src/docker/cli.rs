//! Running the `docker` command: the only way this crate talks to the engine (no client library,
//! so whatever `docker` is configured to reach, a local socket, `DOCKER_HOST` or a context, works
//! here too). `MODELSTAGE_DOCKER` names another compatible command, e.g. `podman`.

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::DockerError;

/// The command that runs Docker: `$MODELSTAGE_DOCKER`, else `docker`.
pub fn program() -> String {
    std::env::var("MODELSTAGE_DOCKER")
        .ok()
        .filter(|p| !p.trim().is_empty())
        .unwrap_or_else(|| "docker".to_string())
}

/// A `docker` command with `args`, stdin closed.
pub fn command<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut cmd = Command::new(program());
    cmd.args(args).stdin(Stdio::null());
    cmd
}

/// What starting the command failed with, in words a person can act on.
pub fn spawn_error(e: std::io::Error) -> DockerError {
    if e.kind() == std::io::ErrorKind::NotFound {
        DockerError::new(format!(
            "the `{}` command is not installed or not on PATH (set MODELSTAGE_DOCKER to use another one)",
            program()
        ))
    } else {
        DockerError::new(format!("cannot run `{}`: {e}", program()))
    }
}

/// Runs `docker ARGS` to completion and returns its standard output; a non-zero exit is an error
/// carrying what docker printed on standard error.
pub fn run(args: &[&str]) -> Result<String, DockerError> {
    let output = command(args).output().map_err(spawn_error)?;
    check(args, output)
}

/// As [`run`], but gives up after `limit` (an unreachable `DOCKER_HOST` can hang for minutes).
pub fn run_within(args: &[&str], limit: Duration) -> Result<String, DockerError> {
    let mut child = command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_error)?;
    // Read both pipes on threads so a chatty command cannot block on a full pipe.
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(DockerError::new(format!(
                    "`{} {}` did not answer within {} s",
                    program(),
                    args.first().copied().unwrap_or(""),
                    limit.as_secs()
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(DockerError::new(format!("cannot wait for `{}`: {e}", program()))),
        }
    };
    let output = Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    };
    check(args, output)
}

pub fn check(args: &[&str], output: Output) -> Result<String, DockerError> {
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let reason = stderr.trim();
    // Only the subcommand is named: the rest of a `docker run` line carries environment values,
    // which may be credentials.
    Err(DockerError::new(format!(
        "`{} {}` failed ({}){}{}",
        program(),
        args.first().copied().unwrap_or(""),
        output.status,
        if reason.is_empty() { "" } else { ": " },
        reason
    )))
}
