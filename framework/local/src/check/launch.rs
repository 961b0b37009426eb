//! Starting a library or an image the way SageMaker starts a serving container, and watching it
//! come up: the port is given only through `SAGEMAKER_BIND_TO_PORT`, the model folder is
//! `/opt/ml/model`, and the variables the checks need (a low `SAGEMAKER_MAX_PAYLOAD_IN_MB`) are
//! set. A library runs as a `modelstage serve` process of this binary, an image as `docker run
//! IMAGE serve`: the same runners as `modelstage deploy`.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::target::Target;
use crate::deploy::health::{ping, PING_TIMEOUT};
use crate::deploy::image::StageImage;
use crate::deploy::logs::Sink;
use crate::deploy::ports::free_port;
use crate::deploy::runner::{stop_all, Container, Ended, Launch, LaunchStage, Runner};
use crate::docker;

/// How often `/ping` is asked while the server starts.
const POLL_EVERY: Duration = Duration::from_millis(20);
/// How many log lines evidence quotes.
const LOG_LINES_SHOWN: usize = 20;
/// How long the end of a stopped container may take to be known after the stop returned.
const EXIT_NOTICE: Duration = Duration::from_secs(20);

/// A server the checker started.
pub struct Started {
    container: Container,
    /// Keeps a Docker container labelled for cleanup; removes it when dropped.
    _session: Option<docker::Session>,
    pub port: u16,
}

/// What was seen while the server came up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Startup {
    /// `/ping` answered 200; `first` is the first status it answered with.
    Ready { first: u16, after: Duration },
    /// It answered, but never 200 in time; `statuses` are the distinct ones seen.
    NotReady { statuses: Vec<u16> },
    /// Nothing answered on the port in time, and it still runs.
    Silent,
    /// It ended; `answered` holds the statuses seen before.
    Exited { how: String, statuses: Vec<u16> },
}

/// Starts `target` (a library or an image) listening on a free port given through
/// `SAGEMAKER_BIND_TO_PORT`, with `env` set.
pub fn start(target: &Target, model_dir: &Path, env: &[(&str, String)]) -> anyhow::Result<Started> {
    let port = free_port().context("cannot find a free port")?;
    let (image, runner, session) = match target {
        Target::Library(path) => {
            let exe = std::env::current_exe().context("cannot find the modelstage binary to run `serve`")?;
            (StageImage::Library(path.clone()), Runner::Process { exe }, None)
        }
        Target::Image(image) => {
            let session = docker::Session::start().context("cannot start a Docker session")?;
            let runner = Runner::Docker {
                session: session.id().to_string(),
            };
            (StageImage::Docker(image.clone()), runner, Some(session))
        }
        Target::Url(url) => anyhow::bail!("{url} is an endpoint: the checker does not start it"),
    };
    let mut launch_env = vec![("SAGEMAKER_BIND_TO_PORT".to_string(), port.to_string())];
    launch_env.extend(env.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let launch = Launch {
        name: "check".into(),
        stages: vec![LaunchStage {
            image,
            model_dir: model_dir.to_path_buf(),
            name: "check".into(),
            accept: "application/json".into(),
        }],
        port,
        port_from_env: true,
        env: launch_env,
        // In our process group, so that a Ctrl-C of `check` also ends the server it started.
        own_process_group: false,
        sink: Sink::Stderr,
    };
    let container = runner.start(&launch)?;
    Ok(Started {
        container,
        _session: session,
        port,
    })
}

impl Started {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Asks `/ping` until it answers 200, the server ends, or `limit` passes.
    pub fn watch_startup(&mut self, limit: Duration) -> anyhow::Result<Startup> {
        let client = reqwest::blocking::Client::builder()
            .timeout(PING_TIMEOUT)
            .build()
            .context("cannot make an HTTP client")?;
        let url = format!("{}/ping", self.url());
        let started = Instant::now();
        let mut statuses: Vec<u16> = Vec::new();
        loop {
            if let Some(ended) = self.container.exited() {
                return Ok(Startup::Exited {
                    how: ended.to_string(),
                    statuses,
                });
            }
            if let Some(status) = ping(&client, &url) {
                if !statuses.contains(&status) {
                    statuses.push(status);
                }
                if status == 200 {
                    return Ok(Startup::Ready {
                        first: statuses[0],
                        after: started.elapsed(),
                    });
                }
            }
            if started.elapsed() >= limit {
                return Ok(if statuses.is_empty() {
                    Startup::Silent
                } else {
                    Startup::NotReady { statuses }
                });
            }
            std::thread::sleep(POLL_EVERY);
        }
    }

    /// SIGTERM, then SIGKILL after `grace` (as SageMaker stops a container): how it ended and
    /// how long it took, or why that is unknown.
    pub fn terminate(&mut self, grace: Duration) -> (Option<Ended>, Duration) {
        let began = Instant::now();
        stop_all(std::slice::from_mut(&mut self.container), grace);
        let took = began.elapsed();
        let deadline = Instant::now() + EXIT_NOTICE;
        let mut ended = self.container.exited();
        while ended.is_none() && Instant::now() < deadline {
            std::thread::sleep(POLL_EVERY);
            ended = self.container.exited();
        }
        (ended, took)
    }

    /// Its last log lines, indented, for evidence.
    pub fn log_excerpt(&self) -> String {
        let tail = self.container.log_tail();
        let shown = &tail[tail.len().saturating_sub(LOG_LINES_SHOWN)..];
        if shown.is_empty() {
            return "it printed nothing".to_string();
        }
        let lines: Vec<String> = shown
            .iter()
            .map(|l| format!("  {}", super::http::excerpt(l.as_bytes())))
            .collect();
        format!("its last log lines:\n{}", lines.join("\n"))
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if self.container.exited().is_none() {
            stop_all(std::slice::from_mut(&mut self.container), Duration::from_secs(5));
        }
    }
}
