//! A container as a Docker container: `docker run IMAGE serve` on the host's network, listening
//! on its port through `SAGEMAKER_BIND_TO_PORT` as the containers of one SageMaker instance do
//! (docs/contract.md (Serial pipelines)), with its model folder mounted at `/opt/ml/model`. Its log is shown with its
//! name in front, and whether it still runs is known without asking the engine every time: the
//! `docker logs --follow` that shows its log ends when it stops.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::anyhow;

use super::Launch;
use crate::docker::{self, ContainerExit, ContainerSpec};

/// How long the log of a container may have been closed before the engine is asked again whether
/// the container still runs (the log also closes when `docker logs` itself is interrupted).
const RECHECK_EVERY: Duration = Duration::from_millis(500);
/// How many of its last lines a failure report shows at most.
const TAIL_LINES: usize = 200;

/// A running (or ended) container of an endpoint.
pub struct Docker {
    container: docker::Container,
    logs: JoinHandle<()>,
    exit: Option<ContainerExit>,
    /// When the engine was last asked, once the log has closed.
    checked: Option<Instant>,
}

/// The `docker run` of one container: the image's `serve` on the host's network, the model
/// mounted, the container's environment and then the platform's variables, which win.
pub fn spec(session: &str, image: &str, launch: &Launch) -> anyhow::Result<ContainerSpec> {
    let [stage] = launch.stages.as_slice() else {
        return Err(anyhow!(
            "container {}: one Docker image runs in a container",
            launch.name
        ));
    };
    let mut spec = ContainerSpec::serving_on_host_network(image, &stage.model_dir, launch.port)
        .name(format!("{session}-{}", launch.name))
        .session(session);
    for (name, value) in &launch.env {
        spec = spec.env(name, value);
    }
    // A multi-model container also sees the folder its router unpacks models into.
    if launch
        .env
        .iter()
        .any(|(k, v)| k == "SAGEMAKER_MULTI_MODEL" && v == "true")
    {
        let models = stage
            .model_dir
            .with_file_name(super::super::endpoint::MODELS_FOLDER);
        spec = spec.mount(&models, docker::MODELS_DIR);
    }
    Ok(spec.env("SAGEMAKER_BIND_TO_PORT", launch.port.to_string()))
}

impl Docker {
    pub fn start(session: &str, image: &str, launch: &Launch) -> anyhow::Result<Docker> {
        let spec = spec(session, image, launch)?;
        let container = docker::run_detached(&spec)
            .map_err(|e| anyhow!("cannot start container {} ({image}): {e}", launch.name))?;
        let logs = container.stream_logs(format!("[{}] ", launch.name));
        Ok(Docker {
            container,
            logs,
            exit: None,
            checked: None,
        })
    }

    /// The id as `docker ps` shows it.
    pub fn short_id(&self) -> &str {
        let id = self.container.id();
        &id[..id.len().min(12)]
    }

    /// Its last log lines, as the engine kept them.
    pub fn log_tail(&self) -> Vec<String> {
        match self.container.logs() {
            Ok(text) => {
                let lines: Vec<String> = text.lines().map(str::to_string).collect();
                lines[lines.len().saturating_sub(TAIL_LINES)..].to_vec()
            }
            Err(e) => vec![format!("(its log cannot be read: {e})")],
        }
    }

    /// How it ended, if it has. Cheap while its log is open; after that the engine is asked, at
    /// most every [`RECHECK_EVERY`].
    pub fn try_exit(&mut self) -> Option<ContainerExit> {
        if self.exit.is_some() || !self.logs.is_finished() {
            return self.exit;
        }
        if self.checked.is_some_and(|at| at.elapsed() < RECHECK_EVERY) {
            return None;
        }
        self.checked = Some(Instant::now());
        match self.container.state() {
            Ok(state) if !state.running => self.exit = Some(state.exit),
            Ok(_) => {}
            // Gone altogether (removed by hand): it ended, how is unknown.
            Err(e) if e.to_string().contains("No such") => {
                self.exit = Some(ContainerExit {
                    code: -1,
                    oom_killed: false,
                })
            }
            Err(e) => log::debug!("cannot read the state of {}: {e}", self.short_id()),
        }
        self.exit
    }

    /// `docker stop`: SIGTERM, then SIGKILL after `grace`.
    pub fn stop(&self, grace: Duration) -> Result<(), docker::DockerError> {
        self.container.stop(grace)
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::image::StageImage;
    use super::super::super::logs::Sink;
    use super::super::LaunchStage;
    use super::*;

    #[test]
    fn the_platform_port_wins_and_the_container_is_labelled_and_named() {
        let model = tempfile::tempdir().unwrap();
        let launch = Launch {
            name: "container-2".into(),
            stages: vec![LaunchStage {
                image: StageImage::Docker("modelstage/echo:latest".into()),
                model_dir: model.path().to_path_buf(),
                name: "container-2".into(),
                accept: "application/json".into(),
            }],
            port: 9001,
            port_from_env: false,
            // A container's own Environment cannot move it off the port the router calls.
            env: vec![
                ("SAGEMAKER_BIND_TO_PORT".into(), "1234".into()),
                ("SAGEMAKER_BATCH".into(), "true".into()),
            ],
            own_process_group: true,
            sink: Sink::Mirror,
        };
        let spec = spec("ms-1-abc", "modelstage/echo:latest", &launch).unwrap();
        let last_port = spec
            .env
            .iter()
            .rev()
            .find(|(k, _)| k == "SAGEMAKER_BIND_TO_PORT")
            .map(|(_, v)| v.as_str());
        assert_eq!(last_port, Some("9001"));
        assert!(spec.env.contains(&("SAGEMAKER_BATCH".into(), "true".into())));
        let args = spec.run_args().unwrap().join(" ");
        assert!(args.contains("--name ms-1-abc-container-2"), "{args}");
        assert!(args.contains("--label com.modelstage.session=ms-1-abc"), "{args}");
        assert!(args.contains("--network host"), "{args}");
        assert!(args.contains(&format!("target={}", docker::MODEL_DIR)), "{args}");
        assert!(args.ends_with("modelstage/echo:latest serve"), "{args}");
    }
}
