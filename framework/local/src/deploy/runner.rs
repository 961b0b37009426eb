//! How a container of a local endpoint is run, and how it is stopped.
//!
//! [`Runner`] is the one place that decides what "run this container" means. Today a container is
//! a `modelstage serve` process (this very binary); a Docker runner becomes another variant that
//! builds a `docker run` command from the same [`Launch`]. Everything else in `deploy` (ports,
//! readiness, the router, stopping) works on the [`Container`] it returns.
//!
//! Stopping follows SageMaker (CONTRACT.md §2.1): SIGTERM, then SIGKILL after a grace period. When
//! a container runs in its own process group, the whole group is killed at the end, so that no
//! worker process of a server that had to be killed is left behind.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use rustix::process::{kill_process, kill_process_group, Pid, Signal};

use super::logs::{forward, Sink, Stream, Tail};

/// One stage a container serves (several for a fused pipeline).
#[derive(Debug, Clone)]
pub struct LaunchStage {
    pub library: PathBuf,
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
    /// (`SAGEMAKER_BIND_TO_PORT`); `false`: on the command line.
    pub port_from_env: bool,
    /// The environment, applied in order over ours (later entries win).
    pub env: Vec<(String, String)>,
    /// Run in a process group of its own, so that a Ctrl-C on the terminal reaches only `deploy`,
    /// which then stops the containers in order. Only for callers that handle SIGINT/SIGTERM.
    pub own_process_group: bool,
    pub sink: Sink,
}

/// How containers are run.
#[derive(Debug, Clone)]
pub enum Runner {
    /// `<exe> serve`: a process of the `modelstage` binary.
    Process { exe: PathBuf },
}

/// Variables of ours a container must not inherit: the platform sets them per container.
const NOT_INHERITED: [&str; 3] = [
    "SAGEMAKER_BIND_TO_PORT",
    "SAGEMAKER_SAFE_PORT_RANGE",
    "MODELSTAGE_STAGE",
];

impl Runner {
    /// The runner for the `modelstage` binary that is running now.
    pub fn current_exe() -> anyhow::Result<Runner> {
        let exe =
            std::env::current_exe().context("cannot find the modelstage binary to run containers with")?;
        Ok(Runner::Process { exe })
    }

    fn command(&self, launch: &Launch) -> Command {
        match self {
            Runner::Process { exe } => {
                let mut cmd = Command::new(exe);
                cmd.arg("serve");
                for stage in &launch.stages {
                    cmd.arg("--stage").arg(&stage.library);
                    cmd.arg("--model-dir").arg(&stage.model_dir);
                }
                if launch.stages.len() > 1 {
                    for stage in &launch.stages {
                        cmd.arg("--stage-name").arg(&stage.name);
                        cmd.arg("--stage-accept").arg(&stage.accept);
                    }
                }
                if !launch.port_from_env {
                    cmd.arg("--port").arg(launch.port.to_string());
                }
                for name in NOT_INHERITED {
                    cmd.env_remove(name);
                }
                cmd.envs(launch.env.iter().map(|(k, v)| (k, v)));
                cmd
            }
        }
    }

    /// Starts a container; it is not ready yet (see `health::wait_ready`).
    pub fn start(&self, launch: &Launch) -> anyhow::Result<Container> {
        let mut cmd = self.command(launch);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if launch.own_process_group {
            std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start container {}: {cmd:?}", launch.name))?;
        let tail = Tail::default();
        if let Some(out) = child.stdout.take() {
            forward(out, Stream::Stdout, &launch.name, launch.sink, tail.clone());
        }
        if let Some(err) = child.stderr.take() {
            forward(err, Stream::Stderr, &launch.name, launch.sink, tail.clone());
        }
        Ok(Container {
            name: launch.name.clone(),
            port: launch.port,
            child,
            tail,
            exit: None,
            group: launch.own_process_group,
        })
    }
}

/// A started container.
#[derive(Debug)]
pub struct Container {
    pub name: String,
    pub port: u16,
    child: Child,
    tail: Tail,
    exit: Option<ExitStatus>,
    group: bool,
}

impl Container {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its last log lines.
    pub fn log_tail(&self) -> Vec<String> {
        self.tail.lines()
    }

    /// How it ended, if it has.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit
    }

    fn signal(&self, signal: Signal) {
        let _ = kill_process(Pid::from_child(&self.child), signal);
    }

    /// Kills what may be left of its process group (a worker of a server that was killed).
    fn kill_group(&self) {
        if self.group {
            let _ = kill_process_group(Pid::from_child(&self.child), Signal::KILL);
        }
    }
}

/// Stops every container: SIGTERM to all, then SIGKILL to those still running after `grace`.
pub fn stop_all(containers: &mut [Container], grace: Duration) {
    for c in containers.iter_mut() {
        if c.exited().is_none() {
            c.signal(Signal::TERM);
        }
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && containers.iter_mut().any(|c| c.exited().is_none()) {
        std::thread::sleep(Duration::from_millis(10));
    }
    for c in containers.iter_mut() {
        if c.exited().is_none() {
            log::warn!(
                "{} did not stop within {} s of SIGTERM: killing it",
                c.name,
                grace.as_secs()
            );
            c.signal(Signal::KILL);
            let _ = c.child.wait();
        }
        c.kill_group();
    }
}

/// A readable account of an exit status.
pub fn describe_exit(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        _ => "exited".to_string(),
    }
}
