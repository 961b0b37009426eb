//! A container as a `modelstage serve` process of this binary: its stages on the command line, its
//! environment over ours, its output forwarded line by line with its name in front.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};

use anyhow::{bail, Context};
use rustix::process::{kill_process, kill_process_group, Pid, Signal};

use super::super::image::StageImage;
use super::super::logs::{forward, Stream, Tail};
use super::Launch;

/// Variables of ours a container must not inherit: the platform sets them per container.
const NOT_INHERITED: [&str; 4] = [
    "SAGEMAKER_BIND_TO_PORT",
    "SAGEMAKER_SAFE_PORT_RANGE",
    "MODELSTAGE_STAGE",
    modelstage_runtime::serve::unix_socket::SETTING,
];

/// A running (or ended) `modelstage serve`.
#[derive(Debug)]
pub struct Process {
    child: Child,
    tail: Tail,
    exit: Option<ExitStatus>,
    group: bool,
}

fn command(exe: &Path, launch: &Launch) -> anyhow::Result<Command> {
    let mut cmd = Command::new(exe);
    cmd.arg("serve");
    for stage in &launch.stages {
        let StageImage::Library(library) = &stage.image else {
            bail!(
                "container {}: a process serves stage libraries, not Docker images",
                launch.name
            );
        };
        cmd.arg("--stage").arg(library);
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
    Ok(cmd)
}

impl Process {
    pub fn start(exe: &Path, launch: &Launch) -> anyhow::Result<Process> {
        let mut cmd = command(exe, launch)?;
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
        Ok(Process {
            child,
            tail,
            exit: None,
            group: launch.own_process_group,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_tail(&self) -> Vec<String> {
        self.tail.lines()
    }

    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit
    }

    pub fn terminate(&self) {
        self.signal(Signal::TERM);
    }

    /// SIGKILL, and waits for it to go.
    pub fn kill(&mut self) {
        self.signal(Signal::KILL);
        if let Ok(status) = self.child.wait() {
            self.exit = Some(status);
        }
    }

    /// Kills what may be left of its process group (a worker of a server that was killed).
    pub fn kill_group(&self) {
        if self.group {
            let _ = kill_process_group(Pid::from_child(&self.child), Signal::KILL);
        }
    }

    fn signal(&self, signal: Signal) {
        if self.exit.is_none() {
            let _ = kill_process(Pid::from_child(&self.child), signal);
        }
    }
}
