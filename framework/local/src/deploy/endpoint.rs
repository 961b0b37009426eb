//! A local endpoint: the containers of a model started, healthy, and reachable on one port.
//!
//! - One container (`PrimaryContainer`): it listens on the endpoint's port itself.
//! - Several (`Containers`): each listens on its own port, given as SageMaker gives it, behind the
//!   router on the endpoint's port.
//! - Fused (`--fused`, serial only): one `modelstage serve` loads every stage and chains them in
//!   memory with the router's semantics, on the endpoint's port.
//!
//! Each container's `ModelDataUrl` is unpacked safely into its own temporary
//! `SAGEMAKER_BASE_DIR/model`; everything is removed when the endpoint stops.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};

use super::environment::{self, container_env, default_accept, fused_env};
use super::health::wait_ready;
use super::logs::Sink;
use super::ports::{free_block, free_port, BLOCK};
use super::request::{ContainerSpec, Mode, ModelSpec};
use super::router::{Router, RouterConfig, Target};
use super::runner::{stop_all, Container, Launch, LaunchStage, Runner};
use crate::tarball::unpack_safely;

/// How an endpoint is started.
#[derive(Debug, Clone)]
pub struct Options {
    /// The endpoint's port; 0 takes a free one.
    pub port: u16,
    /// Run a serial pipeline in one process.
    pub fused: bool,
    /// Variables for every container, over their `Environment` (batch transform's).
    pub extra_env: Vec<(String, String)>,
    pub sink: Sink,
    /// See [`Launch::own_process_group`].
    pub own_process_group: bool,
    /// How long the containers have to answer `/ping` with 200.
    pub startup_timeout: Duration,
    /// How long a container has between SIGTERM and SIGKILL.
    pub stop_grace: Duration,
    pub runner: Runner,
}

/// A started, healthy endpoint; stopped by [`Endpoint::stop`] or on drop.
pub struct Endpoint {
    port: u16,
    url: String,
    label: String,
    router: Option<Router>,
    containers: Vec<Container>,
    grace: Duration,
    /// The unpacked models; removed last, once nothing reads them.
    work: Option<tempfile::TempDir>,
}

impl Endpoint {
    /// Starts every container and waits until all are healthy. On any failure everything
    /// started so far is stopped, and the error names the container and shows its log.
    pub fn start(spec: &ModelSpec, options: &Options, stop: &AtomicBool) -> anyhow::Result<Endpoint> {
        if options.fused && spec.mode == Mode::Direct {
            bail!("--fused chains containers; a Direct-mode model has no chain (drop --fused)");
        }
        let work = tempfile::Builder::new()
            .prefix("modelstage-endpoint-")
            .tempdir()
            .context("cannot make a temporary folder for the endpoint's models")?;
        let model_dirs = spec
            .containers
            .iter()
            .map(|c| prepare_model(c, work.path()))
            .collect::<anyhow::Result<Vec<_>>>()?;

        let mut endpoint = Endpoint {
            port: 0,
            url: String::new(),
            label: spec.label(),
            router: None,
            containers: Vec::new(),
            grace: options.stop_grace,
            work: Some(work),
        };
        let launches = match (spec.mode, options.fused) {
            (Mode::Single, _) | (Mode::Serial, true) => {
                let port = match options.port {
                    0 => free_port()?,
                    p => p,
                };
                endpoint.port = port;
                vec![one_process(spec, &model_dirs, port, options)]
            }
            (Mode::Serial | Mode::Direct, _) => {
                let (launches, targets) = separate(spec, &model_dirs, options)?;
                let first = &spec.containers[0];
                let hop_timeout = spec
                    .containers
                    .iter()
                    .map(|c| environment::timeout_secs(c, &options.extra_env))
                    .max()
                    .unwrap_or(60);
                let config = RouterConfig::new(
                    spec.mode,
                    targets,
                    endpoint.label.clone(),
                    // The container's own timeout answers first; this catches one that hangs.
                    Duration::from_secs(hop_timeout + 5),
                    environment::max_payload_in_mb(first, &options.extra_env),
                );
                let http_threads = std::thread::available_parallelism()
                    .map_or(1, |n| n.get())
                    .clamp(1, 4);
                let router = Router::start(config, options.port, http_threads)?;
                endpoint.port = router.port;
                endpoint.router = Some(router);
                launches
            }
        };
        endpoint.url = format!("http://127.0.0.1:{}", endpoint.port);

        for launch in &launches {
            let container = options.runner.start(launch)?;
            eprintln!(
                "modelstage deploy: started {} (pid {}, port {})",
                container.name,
                container.pid(),
                container.port
            );
            endpoint.containers.push(container);
        }
        wait_ready(&mut endpoint.containers, options.startup_timeout, stop)?;
        if let Some(router) = &endpoint.router {
            if let Some(mb) = first_max_payload_in_mb(endpoint.containers[0].port) {
                router.set_max_payload_in_mb(mb);
            }
        }
        Ok(endpoint)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `container-1 -> container-2`, or the one container's name.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Whether a router stands in front of the containers (a container that dies then leaves the
    /// endpoint up but unhealthy, as on SageMaker).
    pub fn has_router(&self) -> bool {
        self.router.is_some()
    }

    pub fn containers_mut(&mut self) -> &mut [Container] {
        &mut self.containers
    }

    /// Stops the router (requests in flight are answered), then the containers, then removes the
    /// unpacked models. Calling it again does nothing.
    pub fn stop(&mut self) {
        if let Some(router) = self.router.take() {
            router.stop();
        }
        stop_all(&mut self.containers, self.grace);
        self.containers.clear();
        if let Some(work) = self.work.take() {
            let path = work.path().to_path_buf();
            if let Err(e) = work.close() {
                log::warn!("cannot remove {}: {e}", path.display());
            }
        }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Checks the stage library and unpacks the model of one container into
/// `<work>/<name>/model`; returns that folder.
fn prepare_model(container: &ContainerSpec, work: &Path) -> anyhow::Result<PathBuf> {
    let name = &container.name;
    if !container.image.is_file() {
        bail!(
            "{name}: Image '{}' is not a stage library file: give the path of a lib<stage>.so (Docker images \
             are not run locally yet)",
            container.image.display()
        );
    }
    let model_dir = work.join(name).join("model");
    std::fs::create_dir_all(&model_dir).with_context(|| format!("cannot create {}", model_dir.display()))?;
    if let Some(tarball) = &container.model_data {
        if !tarball.is_file() {
            bail!(
                "{name}: ModelDataUrl '{}' is not a file: give the model.tar.gz a training job wrote",
                tarball.display()
            );
        }
        unpack_safely(tarball, &model_dir).map_err(|e| anyhow!("{name}: ModelDataUrl: {e:#}"))?;
    }
    Ok(model_dir)
}

/// A lone container, or every stage of a serial pipeline fused in one server.
fn one_process(spec: &ModelSpec, model_dirs: &[PathBuf], port: u16, options: &Options) -> Launch {
    let extra = &options.extra_env;
    let stages = spec
        .containers
        .iter()
        .zip(model_dirs)
        .map(|(c, dir)| LaunchStage {
            library: c.image.clone(),
            model_dir: dir.clone(),
            name: c.name.clone(),
            accept: default_accept(c, extra),
        })
        .collect();
    let (name, mut env) = if spec.containers.len() == 1 {
        (
            spec.containers[0].name.clone(),
            container_env(&spec.containers[0], extra),
        )
    } else {
        ("fused".to_string(), fused_env(&spec.containers, extra))
    };
    env.push(("SAGEMAKER_BASE_DIR".into(), base_dir(&model_dirs[0])));
    Launch {
        name,
        stages,
        port,
        port_from_env: false,
        env,
        own_process_group: options.own_process_group,
        sink: options.sink,
    }
}

/// One container per definition, each on its own block of ports.
fn separate(
    spec: &ModelSpec,
    model_dirs: &[PathBuf],
    options: &Options,
) -> anyhow::Result<(Vec<Launch>, Vec<Target>)> {
    let mut taken: Vec<u16> = Vec::new();
    if options.port != 0 {
        taken.push(options.port);
    }
    let mut launches = Vec::new();
    let mut targets = Vec::new();
    for (c, dir) in spec.containers.iter().zip(model_dirs) {
        let ports = free_block(&taken)?;
        taken.extend(ports.bind..ports.bind + BLOCK);
        let mut env = container_env(c, &options.extra_env);
        env.push(("SAGEMAKER_BASE_DIR".into(), base_dir(dir)));
        env.push(("SAGEMAKER_BIND_TO_PORT".into(), ports.bind.to_string()));
        env.push(("SAGEMAKER_SAFE_PORT_RANGE".into(), ports.safe_range()));
        launches.push(Launch {
            name: c.name.clone(),
            stages: vec![LaunchStage {
                library: c.image.clone(),
                model_dir: dir.clone(),
                name: c.name.clone(),
                accept: default_accept(c, &options.extra_env),
            }],
            port: ports.bind,
            port_from_env: true,
            env,
            own_process_group: options.own_process_group,
            sink: options.sink,
        });
        targets.push(Target {
            name: c.name.clone(),
            port: ports.bind,
        });
    }
    Ok((launches, targets))
}

/// `<work>/<name>`: the `SAGEMAKER_BASE_DIR` whose `model` folder holds the model.
fn base_dir(model_dir: &Path) -> String {
    model_dir.parent().unwrap_or(model_dir).display().to_string()
}

/// The first container's `MaxPayloadInMB` from its `/execution-parameters`, the limit a fused
/// server applies to a whole request.
fn first_max_payload_in_mb(port: u16) -> Option<u64> {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .ok()?;
    let response = client
        .get(format!("http://127.0.0.1:{port}/execution-parameters"))
        .send()
        .ok()
        .filter(|r| r.status().is_success())?;
    let document: serde_json::Value = serde_json::from_slice(&response.bytes().ok()?).ok()?;
    document.get("MaxPayloadInMB")?.as_u64()
}
