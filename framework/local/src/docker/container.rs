//! A started container: [`run_detached`] starts one and returns a [`Container`] that removes it
//! when dropped; [`run_to_completion`] runs one the way a training job runs, streaming its log.

use std::fmt;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use super::cli;
use super::spec::ContainerSpec;
use super::DockerError;

/// A container this process started. Dropping it removes it (`docker rm --force`), running or
/// not; [`Session`](super::Session) also removes whatever a crash or Ctrl-C left behind.
#[derive(Debug)]
pub struct Container {
    id: String,
    image: String,
    removed: bool,
}

/// How a container ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerExit {
    /// The main process's exit code; 128 + N when signal N ended it (137 for SIGKILL).
    pub code: i64,
    /// The kernel killed it for exceeding its memory limit.
    pub oom_killed: bool,
}

impl ContainerExit {
    pub fn success(&self) -> bool {
        self.code == 0
    }
}

impl fmt::Display for ContainerExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "exit code {}", self.code)?;
        if self.oom_killed {
            write!(f, " (killed: out of memory)")?;
        } else if self.code > 128 && self.code < 160 {
            write!(f, " (ended by signal {})", self.code - 128)?;
        }
        Ok(())
    }
}

/// What `docker inspect` says about a container now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerState {
    /// `created`, `running`, `restarting`, `exited`, `dead`, … as Docker names it.
    pub status: String,
    pub running: bool,
    pub exit: ContainerExit,
}

/// Starts `spec` detached (`docker run --detach`) and returns once the engine has started it.
/// The image must already be on this machine: nothing is pulled.
pub fn run_detached(spec: &ContainerSpec) -> Result<Container, DockerError> {
    let args = spec.run_args()?;
    if !super::image_exists(&spec.image) {
        return Err(DockerError::new(format!(
            "image {} is not on this machine: build it (ci/docker-build.sh builds the modelstage/* \
             images) or `docker pull` it first",
            spec.image
        )));
    }
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out =
        cli::run(&arg_refs).map_err(|e| e.context(&format!("cannot start a container of {}", spec.image)))?;
    let id = out.trim().to_string();
    if id.is_empty() {
        return Err(DockerError::new(format!(
            "`docker run` printed no container id for {}",
            spec.image
        )));
    }
    log::debug!("started container {} of {}", short(&id), spec.image);
    Ok(Container {
        id,
        image: spec.image.clone(),
        removed: false,
    })
}

/// Runs `spec` until its main process exits, passing each log line (standard output and error) to
/// `on_log_line` as it comes, and removes the container. This is how a training job runs:
/// `ContainerSpec::training(image, tree)`.
pub fn run_to_completion(
    spec: &ContainerSpec,
    on_log_line: impl FnMut(&str),
) -> Result<ContainerExit, DockerError> {
    let container = run_detached(spec)?;
    container.follow_logs(on_log_line)?;
    let exit = container.wait()?;
    container.remove()?;
    Ok(exit)
}

impl Container {
    /// The full container id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The image it runs.
    pub fn image(&self) -> &str {
        &self.image
    }

    /// The port of 127.0.0.1 that `container_port` is published on.
    pub fn host_port(&self, container_port: u16) -> Result<u16, DockerError> {
        let out = cli::run(&["port", &self.id, &format!("{container_port}/tcp")])?;
        parse_port(&out).ok_or_else(|| {
            DockerError::new(format!(
                "container {} does not publish port {container_port} (docker port said '{}')",
                short(&self.id),
                out.trim()
            ))
        })
    }

    /// `http://127.0.0.1:<host port>` for `container_port`.
    pub fn url(&self, container_port: u16) -> Result<String, DockerError> {
        Ok(format!("http://127.0.0.1:{}", self.host_port(container_port)?))
    }

    /// The container's state now.
    pub fn state(&self) -> Result<ContainerState, DockerError> {
        let out = cli::run(&[
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.Running}} {{.State.ExitCode}} {{.State.OOMKilled}}",
            &self.id,
        ])?;
        parse_state(&out).ok_or_else(|| {
            DockerError::new(format!(
                "cannot read the state of container {}: '{}'",
                short(&self.id),
                out.trim()
            ))
        })
    }

    /// Whether its main process is still running.
    pub fn is_running(&self) -> Result<bool, DockerError> {
        Ok(self.state()?.running)
    }

    /// Everything it has printed so far, standard output and error interleaved in time order.
    pub fn logs(&self) -> Result<String, DockerError> {
        let output = cli::command(["logs", "--timestamps", &self.id])
            .output()
            .map_err(cli::spawn_error)?;
        if !output.status.success() {
            return Err(DockerError::new(format!(
                "cannot read the log of container {}: {}",
                short(&self.id),
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(merge_timestamped(
            &String::from_utf8_lossy(&output.stdout),
            &String::from_utf8_lossy(&output.stderr),
        ))
    }

    /// Passes each log line to `on_line` until the container stops (from its first line, even if
    /// it started earlier).
    pub fn follow_logs(&self, on_line: impl FnMut(&str)) -> Result<(), DockerError> {
        follow_logs(&self.id, on_line)
    }

    /// Copies its log to this process's standard error on a thread of its own, each line prefixed
    /// with `prefix` (e.g. `featurizer | `), until the container stops.
    pub fn stream_logs(&self, prefix: impl Into<String>) -> std::thread::JoinHandle<()> {
        let id = self.id.clone();
        let prefix = prefix.into();
        std::thread::spawn(move || {
            if let Err(e) = follow_logs(&id, |line| eprintln!("{prefix}{line}")) {
                log::debug!("{e}");
            }
        })
    }

    /// Waits until its main process exits.
    pub fn wait(&self) -> Result<ContainerExit, DockerError> {
        let out = cli::run(&["wait", &self.id])?;
        let code = out.trim().parse::<i64>().map_err(|_| {
            DockerError::new(format!(
                "`docker wait` printed '{}', not an exit code",
                out.trim()
            ))
        })?;
        let oom_killed = self.state().map(|s| s.exit.oom_killed).unwrap_or(false);
        Ok(ContainerExit { code, oom_killed })
    }

    /// `docker stop`: SIGTERM, then SIGKILL after `grace` (SageMaker's stop is the same with
    /// 120 s, docs/contract.md (Training)).
    pub fn stop(&self, grace: Duration) -> Result<(), DockerError> {
        let seconds = grace.as_secs().max(if grace.is_zero() { 0 } else { 1 });
        cli::run(&["stop", "--time", &seconds.to_string(), &self.id]).map(|_| ())
    }

    /// `docker kill`: SIGKILL now, as a crash would.
    pub fn kill(&self) -> Result<(), DockerError> {
        cli::run(&["kill", &self.id]).map(|_| ())
    }

    /// Removes it now (running or not) and reports a failure, which dropping cannot.
    pub fn remove(mut self) -> Result<(), DockerError> {
        self.removed = true;
        remove(&self.id)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if !self.removed {
            if let Err(e) = remove(&self.id) {
                log::warn!("{e}");
            }
        }
    }
}

/// `docker logs --follow`: both streams, each line to `on_line` on the calling thread.
fn follow_logs(id: &str, mut on_line: impl FnMut(&str)) -> Result<(), DockerError> {
    let mut child = cli::command(["logs", "--follow", id])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(cli::spawn_error)?;
    let (tx, rx) = mpsc::channel::<String>();
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|stream| {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        })
    })
    .collect();
    drop(tx);
    // The callback runs on this thread, so it needs to be neither Send nor 'static.
    for line in rx {
        on_line(&line);
    }
    for reader in readers {
        let _ = reader.join();
    }
    let status = child
        .wait()
        .map_err(|e| DockerError::new(format!("cannot wait for `docker logs`: {e}")))?;
    if !status.success() {
        return Err(DockerError::new(format!(
            "`docker logs --follow` of container {} ended with {status}",
            short(id)
        )));
    }
    Ok(())
}

fn remove(id: &str) -> Result<(), DockerError> {
    match cli::run(&["rm", "--force", "--volumes", id]) {
        Ok(_) => Ok(()),
        // Already gone (removed by a cleanup, or by hand): the goal is reached.
        Err(e) if e.to_string().contains("No such container") => Ok(()),
        Err(e) => Err(e.context(&format!("cannot remove container {}", short(id)))),
    }
}

/// The first 12 characters, as `docker ps` shows ids.
pub(super) fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// `docker port` prints one line per binding, e.g. `127.0.0.1:49153`.
pub(super) fn parse_port(out: &str) -> Option<u16> {
    out.lines()
        .filter_map(|line| line.trim().rsplit_once(':'))
        .find_map(|(_, port)| port.parse().ok())
}

/// `<status> <running> <exit code> <oom killed>`.
pub(super) fn parse_state(out: &str) -> Option<ContainerState> {
    let mut parts = out.split_whitespace();
    let status = parts.next()?.to_string();
    let running = parts.next()?.parse().ok()?;
    let code = parts.next()?.parse().ok()?;
    let oom_killed = parts.next()?.parse().ok()?;
    Some(ContainerState {
        status,
        running,
        exit: ContainerExit { code, oom_killed },
    })
}

/// Merges two `docker logs --timestamps` outputs into one, ordered by time, without the
/// timestamps. Lines of one stream keep their order.
pub(super) fn merge_timestamped(stdout: &str, stderr: &str) -> String {
    let mut lines: Vec<((&str, u32), &str)> = Vec::new();
    for text in [stdout, stderr] {
        for line in text.lines() {
            let (stamp, rest) = line.split_once(' ').unwrap_or((line, ""));
            lines.push((stamp_key(stamp), rest));
        }
    }
    // Stable sort: equal stamps keep stdout before stderr and each stream's own order.
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    let mut merged = String::new();
    for (_, text) in lines {
        merged.push_str(text);
        merged.push('\n');
    }
    merged
}

/// An RFC 3339 UTC stamp as (seconds part, nanoseconds), so that a fraction printed with fewer
/// digits (`.5Z`) still orders by value against a longer one (`.123456789Z`).
fn stamp_key(stamp: &str) -> (&str, u32) {
    let Some((seconds, rest)) = stamp.split_once('.') else {
        return (stamp.trim_end_matches('Z'), 0);
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).take(9).collect();
    let nanos = format!("{digits:0<9}").parse().unwrap_or(0);
    (seconds, nanos)
}
