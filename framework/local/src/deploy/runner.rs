//! How a container of a local endpoint is run, and how it is stopped.
//!
//! [`Runner`] is the one place that decides what "run this container" means: a `modelstage serve`
//! process of this binary for a stage library ([`process`]), or `docker run IMAGE serve` on the
//! host's network for a Docker image ([`container`]). Everything else in `deploy` (ports,
//! readiness, the router, stopping) works on the [`Container`] it returns.
//!
//! Stopping follows SageMaker (docs/contract.md (Serving)): SIGTERM, then SIGKILL after a grace period. A
//! process in its own process group has the whole group killed at the end, so that no worker
//! process of a server that had to be killed is left behind; a Docker container gets `docker stop`
//! (the same two signals) and is then removed.

mod container;
mod process;

use std::fmt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use super::image::StageImage;
use super::logs::Sink;
use crate::docker::ContainerExit;

/// One stage a container serves (several for a fused pipeline).
#[derive(Debug, Clone)]
pub struct LaunchStage {
    pub image: StageImage,
    pub model_dir: PathBuf,
    /// The container name, for a fused pipeline's errors and logs.
    pub name: String,
    /// The Accept this stage gets when it is not the last of a fused pipeline.
    pub accept: String,
}

/// Everything needed to start one container.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The name its log lines are prefixed with.
    pub name: String,
    pub stages: Vec<LaunchStage>,
    /// The port it listens on.
    pub port: u16,
    /// `true`: the port is given as SageMaker gives it to pipeline containers
    /// (`SAGEMAKER_BIND_TO_PORT`); `false`: on the command line. A Docker container on the host's
    /// network always gets `SAGEMAKER_BIND_TO_PORT`.
    pub port_from_env: bool,
    /// The environment, applied in order (later entries win); a process gets it over ours.
    pub env: Vec<(String, String)>,
    /// Run in a process group of its own, so that a Ctrl-C on the terminal reaches only `deploy`,
    /// which then stops the containers in order. Only for callers that handle SIGINT/SIGTERM.
    pub own_process_group: bool,
    pub sink: Sink,
}

impl Launch {
    /// The image of a container that runs one Docker image.
    pub fn docker_image(&self) -> Option<&str> {
        match self.stages.as_slice() {
            [LaunchStage {
                image: StageImage::Docker(image),
                ..
            }] => Some(image),
            _ => None,
        }
    }
}

/// How one container is run.
#[derive(Debug, Clone)]
pub enum Runner {
    /// `<exe> serve`: a process of the `modelstage` binary.
    Process { exe: PathBuf },
    /// `docker run IMAGE serve` on the host's network, labelled with the endpoint's session so
    /// that its watchdog removes it even if `deploy` is killed.
    Docker { session: String },
}

impl Runner {
    /// Starts a container; it is not ready yet (see `health::wait_ready`).
    pub fn start(&self, launch: &Launch) -> anyhow::Result<Container> {
        let inner = match (self, launch.docker_image()) {
            (Runner::Docker { session }, Some(image)) => {
                Inner::Docker(container::Docker::start(session, image, launch)?)
            }
            (Runner::Process { exe }, None) => Inner::Process(process::Process::start(exe, launch)?),
            (Runner::Docker { .. }, None) => {
                anyhow::bail!(
                    "container {}: only one Docker image runs in a container",
                    launch.name
                )
            }
            (Runner::Process { .. }, Some(image)) => {
                anyhow::bail!(
                    "container {}: {image} is a Docker image, not a stage library",
                    launch.name
                )
            }
        };
        Ok(Container {
            name: launch.name.clone(),
            port: launch.port,
            inner,
            ended: None,
        })
    }
}

/// How a container ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Process(ExitStatus),
    Docker(ContainerExit),
}

impl fmt::Display for Ended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use std::os::unix::process::ExitStatusExt;
        match *self {
            Ended::Process(status) => match (status.code(), status.signal()) {
                (Some(code), _) => write!(f, "exited with status {code}"),
                (None, Some(signal)) => write!(f, "was killed by signal {signal}"),
                _ => write!(f, "exited"),
            },
            Ended::Docker(exit) if exit.oom_killed => write!(f, "was killed for running out of memory"),
            // Docker reports a main process ended by signal N as exit code 128 + N.
            Ended::Docker(exit) if exit.code > 128 && exit.code < 160 => {
                write!(f, "was killed by signal {}", exit.code - 128)
            }
            Ended::Docker(exit) => write!(f, "exited with status {}", exit.code),
        }
    }
}

enum Inner {
    Process(process::Process),
    Docker(container::Docker),
}

/// A started container.
pub struct Container {
    pub name: String,
    pub port: u16,
    inner: Inner,
    ended: Option<Ended>,
}

impl Container {
    /// `pid 41` or `container 1a2b3c4d5e6f`: what identifies it to the person reading the log.
    pub fn describe(&self) -> String {
        match &self.inner {
            Inner::Process(p) => format!("pid {}", p.pid()),
            Inner::Docker(d) => format!("container {}", d.short_id()),
        }
    }

    /// Its last log lines.
    pub fn log_tail(&self) -> Vec<String> {
        match &self.inner {
            Inner::Process(p) => p.log_tail(),
            Inner::Docker(d) => d.log_tail(),
        }
    }

    /// How it ended, if it has.
    pub fn exited(&mut self) -> Option<Ended> {
        if self.ended.is_none() {
            self.ended = match &mut self.inner {
                Inner::Process(p) => p.try_exit().map(Ended::Process),
                Inner::Docker(d) => d.try_exit().map(Ended::Docker),
            };
        }
        self.ended
    }
}

/// Stops every container: SIGTERM to all, then SIGKILL to those still running after `grace`.
/// Docker containers are stopped in parallel (`docker stop` waits for its container), then
/// removed when the caller drops them.
pub fn stop_all(containers: &mut [Container], grace: Duration) {
    let mut processes = Vec::new();
    let mut dockers = Vec::new();
    for c in containers.iter_mut() {
        let running = c.exited().is_none();
        match &mut c.inner {
            Inner::Process(p) => {
                if running {
                    p.terminate();
                }
                processes.push((c.name.as_str(), p));
            }
            Inner::Docker(d) if running => dockers.push((c.name.as_str(), &*d)),
            Inner::Docker(_) => {}
        }
    }
    std::thread::scope(|scope| {
        for (name, docker) in dockers {
            scope.spawn(move || {
                if let Err(e) = docker.stop(grace) {
                    log::warn!("cannot stop {name}: {e}");
                }
            });
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline && processes.iter_mut().any(|(_, p)| p.try_exit().is_none()) {
            std::thread::sleep(Duration::from_millis(10));
        }
        for (name, p) in processes.iter_mut() {
            if p.try_exit().is_none() {
                log::warn!(
                    "{name} did not stop within {} s of SIGTERM: killing it",
                    grace.as_secs()
                );
                p.kill();
            }
            p.kill_group();
        }
    });
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    #[test]
    fn endings_read_alike_for_processes_and_containers() {
        let exited = |code: i64| {
            Ended::Docker(ContainerExit {
                code,
                oom_killed: false,
            })
            .to_string()
        };
        assert_eq!(
            Ended::Process(ExitStatus::from_raw(9)).to_string(),
            "was killed by signal 9"
        );
        assert_eq!(exited(137), "was killed by signal 9");
        assert_eq!(
            Ended::Process(ExitStatus::from_raw(1 << 8)).to_string(),
            "exited with status 1"
        );
        assert_eq!(exited(1), "exited with status 1");
        assert_eq!(exited(0), "exited with status 0");
        let oom = Ended::Docker(ContainerExit {
            code: 137,
            oom_killed: true,
        });
        assert_eq!(oom.to_string(), "was killed for running out of memory");
    }
}
