//! A local endpoint: the containers of a model started, healthy, and reachable on one port.
//!
//! - One container (`PrimaryContainer`): it listens on the endpoint's port itself.
//! - Several (`Containers`): behind the router on the endpoint's port. A serial pipeline's stage
//!   library containers are hosted in the router ([`super::hosted`]): each container's workers
//!   are processes of its own, driven from the router's threads, so a request takes one HTTP hop
//!   as on a fused server. With `--process-per-container` (and always in Direct mode, behind a
//!   multi-model router and for a Docker image) each container is a server of its own on its own
//!   port, given as SageMaker gives it.
//! - Fused (`--fused`, serial only, stage libraries only): one `modelstage serve` loads every stage
//!   and chains them in memory with the router's semantics, on the endpoint's port.
//!
//! Each container's `Image` is a stage library (a `modelstage serve` process) or a Docker image
//! (a container on the host's network), decided per container ([`super::image`]). Its
//! `ModelDataUrl` is unpacked safely into its own temporary folder: the process's
//! `SAGEMAKER_BASE_DIR/model`, or the container's `/opt/ml/model`. Everything is removed when the
//! endpoint stops; the containers of a Docker session also when `deploy` is killed.
//!
//! A process behind the router also listens on a Unix socket in the endpoint's private folder of
//! sockets (`MODELSTAGE_UNIX_SOCKET`): the router's hops to it go over it, the cheaper hop on one
//! machine. Docker containers and readiness checks use TCP.

use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};

use super::environment::{self, container_env, default_accept, fused_env};
use super::health::{max_payload_in_mb, max_payload_of, wait_ready};
use super::hosted::{host_container, HostedContainer};
use super::image::{self, StageImage};
use super::logs::Sink;
use super::ports::{free_block, free_port, BLOCK};
use super::request::{ContainerSpec, Mode, ModelSpec};
use super::router::{Router, RouterConfig, Target};
use super::runner::{stop_all, Container, Launch, LaunchStage, Runner};
use crate::docker;
use modelstage_runtime::archive;
use modelstage_runtime::serve::hosted::Hosted;
use modelstage_runtime::serve::unix_socket::{MAX_PATH_BYTES, SETTING as UNIX_SOCKET};

/// How an endpoint is started.
#[derive(Debug, Clone)]
pub struct Options {
    /// The endpoint's port; 0 takes a free one.
    pub port: u16,
    /// The address the router listens on (a lone container or a fused server listens on every
    /// address, as `serve` does).
    pub bind: IpAddr,
    /// Run a serial pipeline in one process.
    pub fused: bool,
    /// Run each stage library container of a serial pipeline as a `modelstage serve` process of
    /// its own, instead of hosting it in the router.
    pub process_per_container: bool,
    /// Variables for every container, over their `Environment` (batch transform's).
    pub extra_env: Vec<(String, String)>,
    pub sink: Sink,
    /// See [`Launch::own_process_group`].
    pub own_process_group: bool,
    /// How long the containers have to answer `/ping` with 200.
    pub startup_timeout: Duration,
    /// How long a container has between SIGTERM and SIGKILL.
    pub stop_grace: Duration,
    /// The `modelstage` binary that serves stage libraries.
    pub exe: PathBuf,
    /// Called with each container as soon as it started, before the endpoint is ready (and
    /// also when another container then fails): `deploy` prints it; the library only logs.
    pub on_started: fn(&Container),
    /// Called with the name of each container the router hosts, once its model is loaded.
    pub on_hosted: fn(&str),
}

/// A started, healthy endpoint; stopped by [`Endpoint::stop`] or on drop.
pub struct Endpoint {
    port: u16,
    url: String,
    label: String,
    router: Option<Router>,
    containers: Vec<Container>,
    grace: Duration,
    /// Labels the Docker containers; dropping it removes whatever is left of them.
    session: Option<docker::Session>,
    /// The unpacked models; removed last, once nothing reads them.
    work: Option<tempfile::TempDir>,
    /// The processes' Unix sockets (mode 0700); removed once they have stopped.
    sockets: Option<tempfile::TempDir>,
}

impl Endpoint {
    /// Starts every container and waits until all are healthy. On any failure everything
    /// started so far is stopped, and the error names the container and shows its log.
    pub fn start(spec: &ModelSpec, options: &Options, stop: &AtomicBool) -> anyhow::Result<Endpoint> {
        if options.fused && matches!(spec.mode, Mode::Direct | Mode::MultiModel) {
            bail!("--fused chains containers; a Direct-mode or multi-model endpoint has no chain (drop --fused)");
        }
        let images = spec
            .containers
            .iter()
            .map(image::resolve)
            .collect::<anyhow::Result<Vec<_>>>()?;
        if options.fused && spec.mode == Mode::Serial {
            if let Some((c, _)) = spec.containers.iter().zip(&images).find(|(_, i)| i.is_docker()) {
                bail!(
                    "--fused loads every stage library into one process, but {} is the Docker image '{}': \
                     drop --fused to run each container on its own, or give the stage libraries",
                    c.name,
                    c.image
                );
            }
        }
        let work = tempfile::Builder::new()
            .prefix("modelstage-endpoint-")
            .tempdir()
            .context("cannot make a temporary folder for the endpoint's models")?;
        let model_dirs = spec
            .containers
            .iter()
            .map(|c| match spec.mode {
                Mode::MultiModel => prepare_models_folder(c, work.path()),
                _ => prepare_model(c, work.path()),
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        // Only the router's hops go over sockets: a lone process or a fused server is reached on its port.
        let routed = !matches!(
            (spec.mode, options.fused),
            (Mode::Single, _) | (Mode::Serial, true)
        );
        let hosts = |image: &StageImage| {
            routed && spec.mode == Mode::Serial && !options.process_per_container && !image.is_docker()
        };
        let sockets = if !routed || images.iter().all(|i| i.is_docker() || hosts(i)) {
            None
        } else {
            socket_folder()?
        };
        let session = if images.iter().any(StageImage::is_docker) {
            Some(docker::Session::start().context("cannot start a Docker session for the endpoint")?)
        } else {
            None
        };

        let mut endpoint = Endpoint {
            port: 0,
            url: String::new(),
            label: spec.label(),
            router: None,
            containers: Vec::new(),
            grace: options.stop_grace,
            session,
            work: Some(work),
            sockets: None,
        };
        let stages = Stages {
            spec,
            images: &images,
            model_dirs: &model_dirs,
            sockets: sockets.as_ref().map(tempfile::TempDir::path),
        };
        // The first container's MaxPayloadInMB, once known: a hosted one's is known when it has
        // started, a process's once it answers.
        let mut first_payload = None;
        let launches = match (spec.mode, options.fused) {
            (Mode::Single, _) | (Mode::Serial, true) => {
                let port = match options.port {
                    0 => free_port()?,
                    p => p,
                };
                endpoint.port = port;
                vec![one_process(&stages, port, options)]
            }
            (Mode::Serial | Mode::Direct | Mode::MultiModel, _) => {
                let http_threads = modelstage_contract::settings::http_threads();
                let hosted = host(
                    &stages,
                    &images.iter().map(hosts).collect::<Vec<_>>(),
                    http_threads,
                    options,
                    stop,
                )?;
                if let Some(first) = &hosted[0] {
                    first_payload = max_payload_of(first.execution_parameters().as_bytes());
                }
                let (mut launches, targets) = separate(&stages, &hosted, options)?;
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
                let config = match spec.mode {
                    Mode::MultiModel => {
                        launches[0]
                            .env
                            .push(("SAGEMAKER_MULTI_MODEL".into(), "true".into()));
                        config.with_models(multi_models(&stages))
                    }
                    _ => config,
                };
                let router = Router::start(config, options.bind, options.port, http_threads)?;
                endpoint.port = router.port;
                endpoint.router = Some(router);
                launches
            }
        };
        endpoint.url = format!("http://127.0.0.1:{}", endpoint.port);
        endpoint.sockets = sockets;

        let runners: Vec<Runner> = launches
            .iter()
            .map(|launch| match (launch.docker_image(), &endpoint.session) {
                (Some(_), Some(session)) => Runner::Docker {
                    session: session.id().to_string(),
                },
                _ => Runner::Process {
                    exe: options.exe.clone(),
                },
            })
            .collect();
        // All at once: a `docker run` takes about 0.2 s, mostly waiting on the engine.
        let started: Vec<anyhow::Result<Container>> = std::thread::scope(|scope| {
            let handles: Vec<_> = runners
                .iter()
                .zip(&launches)
                .map(|(runner, launch)| scope.spawn(move || runner.start(launch)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow!("starting a container panicked")))
                })
                .collect()
        });
        let mut first_error = None;
        for result in started {
            match result {
                Ok(container) => {
                    // A log line, not UI: `deploy` prints its own (`on_started`), and
                    // `transform` starts endpoints too.
                    log::debug!(
                        "started {} ({}, port {})",
                        container.name,
                        container.describe(),
                        container.port
                    );
                    (options.on_started)(&container);
                    endpoint.containers.push(container);
                }
                // The containers that did start are stopped when `endpoint` is dropped.
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        wait_ready(&mut endpoint.containers, options.startup_timeout, stop)?;
        if let Some(router) = &endpoint.router {
            if first_payload.is_none() {
                let first = format!("http://127.0.0.1:{}", endpoint.containers[0].port);
                first_payload = max_payload_in_mb(&first);
            }
            if let Some(mb) = first_payload {
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

    /// Stops the router (requests in flight are answered), then the containers (and removes the
    /// Docker ones), then removes the unpacked models. Calling it again does nothing.
    pub fn stop(&mut self) {
        if let Some(router) = self.router.take() {
            router.stop();
        }
        stop_all(&mut self.containers, self.grace);
        self.containers.clear();
        // Removes what a container start cut short may have left (`docker run` interrupted).
        self.session = None;
        if let Some(work) = self.work.take() {
            let path = work.path().to_path_buf();
            if let Err(e) = work.close() {
                log::warn!("cannot remove {}: {e}", path.display());
            }
        }
        if let Some(sockets) = self.sockets.take() {
            let path = sockets.path().to_path_buf();
            if let Err(e) = sockets.close() {
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

/// Unpacks the model of one container into `<work>/<name>/model`; returns that folder.
pub(super) fn prepare_model(container: &ContainerSpec, work: &Path) -> anyhow::Result<PathBuf> {
    let name = &container.name;
    let model_dir = work.join(name).join("model");
    std::fs::create_dir_all(&model_dir).with_context(|| format!("cannot create {}", model_dir.display()))?;
    if let Some(tarball) = &container.model_data {
        if !tarball.is_file() {
            bail!(
                "{name}: ModelDataUrl '{}' is not a file: give the model.tar.gz a training job wrote",
                tarball.display()
            );
        }
        archive::unpack(tarball, &model_dir).map_err(|e| anyhow!("{name}: ModelDataUrl: {e:#}"))?;
    }
    Ok(model_dir)
}

/// A multi-model container's folders under `<work>/<name>`: an empty `model` (its
/// `/opt/ml/model`) and `models` (its `/opt/ml/models`), where the router unpacks the archives of
/// its `ModelDataUrl` folder on first use. Returns the `model` folder.
fn prepare_models_folder(container: &ContainerSpec, work: &Path) -> anyhow::Result<PathBuf> {
    let name = &container.name;
    if let Some(source) = &container.model_data {
        if !source.is_dir() {
            bail!(
                "{name}: ModelDataUrl '{}' is not a folder: a MultiModel container's ModelDataUrl is the \
                 folder holding its model.tar.gz files",
                source.display()
            );
        }
    }
    let model_dir = work.join(name).join("model");
    for dir in [&model_dir, &work.join(name).join(MODELS_FOLDER)] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    Ok(model_dir)
}

/// The folder beside `model` where a multi-model container's models are unpacked.
pub(crate) const MODELS_FOLDER: &str = "models";

/// What the router of a multi-model endpoint needs: where the archives are, where to unpack
/// them, and where the container sees them (`/opt/ml/models` in a Docker container).
fn multi_models(stages: &Stages) -> super::router::multi::Models {
    let container = &stages.spec.containers[0];
    let model_dir = &stages.model_dirs[0];
    let local = model_dir.with_file_name(MODELS_FOLDER);
    let seen = if stages.images[0].is_docker() {
        PathBuf::from(docker::MODELS_DIR)
    } else {
        local.clone()
    };
    super::router::multi::Models::new(container.model_data.clone().unwrap_or_default(), local, seen)
}

/// Room a socket's name takes after the temporary folder: `/ms-XXXXXX/15.sock` (a pipeline has
/// at most 15 containers), with some to spare.
const SOCKET_NAME_ROOM: usize = 24;

/// The endpoint's private folder of Unix sockets, short and mode 0700; `None` (the processes are
/// then reached over TCP alone) when the temporary folder's path leaves no room for a socket's.
fn socket_folder() -> anyhow::Result<Option<tempfile::TempDir>> {
    let base = std::env::temp_dir();
    if base.as_os_str().len() + SOCKET_NAME_ROOM > MAX_PATH_BYTES {
        log::info!(
            "the temporary folder {} is too long a path for Unix sockets: containers are reached over TCP",
            base.display()
        );
        return Ok(None);
    }
    let folder = tempfile::Builder::new()
        .prefix("ms-")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir_in(&base)
        .context("cannot make a temporary folder for the endpoint's sockets")?;
    Ok(Some(folder))
}

/// The containers of a model with what [`Endpoint::start`] found out about them.
struct Stages<'a> {
    spec: &'a ModelSpec,
    images: &'a [StageImage],
    model_dirs: &'a [PathBuf],
    /// The endpoint's folder of sockets, if its processes get one.
    sockets: Option<&'a Path>,
}

impl Stages<'_> {
    /// The Unix socket of container `i` when it is a process: `<sockets>/<i + 1>.sock`.
    fn socket(&self, i: usize) -> Option<PathBuf> {
        let folder = self.sockets?;
        (!self.images[i].is_docker()).then(|| folder.join(format!("{}.sock", i + 1)))
    }

    fn launch_stage(&self, i: usize, extra: &[(String, String)]) -> LaunchStage {
        let c = &self.spec.containers[i];
        LaunchStage {
            image: self.images[i].clone(),
            model_dir: self.model_dirs[i].clone(),
            name: c.name.clone(),
            accept: default_accept(c, extra),
        }
    }
}

/// A lone container, or every stage of a serial pipeline fused in one server.
fn one_process(stages_of: &Stages, port: u16, options: &Options) -> Launch {
    let extra = &options.extra_env;
    let spec = stages_of.spec;
    let stages: Vec<LaunchStage> = (0..spec.containers.len())
        .map(|i| stages_of.launch_stage(i, extra))
        .collect();
    let (name, mut env) = if spec.containers.len() == 1 {
        (
            spec.containers[0].name.clone(),
            container_env(&spec.containers[0], extra),
        )
    } else {
        ("fused".to_string(), fused_env(&spec.containers, extra))
    };
    // A container sees its model at /opt/ml/model; a process is told where its tree is.
    if !stages_of.images[0].is_docker() {
        env.push(("SAGEMAKER_BASE_DIR".into(), base_dir(&stages_of.model_dirs[0])));
    }
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

/// Starts the containers `hosts` marks in the router (all at once), for its `lanes` HTTP
/// threads, unless `stop` is set first: the hosted endpoint of each, `None` for the others.
fn host(
    stages: &Stages,
    hosts: &[bool],
    lanes: usize,
    options: &Options,
    stop: &AtomicBool,
) -> anyhow::Result<Vec<Option<Arc<Hosted>>>> {
    let started: Vec<Option<anyhow::Result<Arc<Hosted>>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = hosts
            .iter()
            .enumerate()
            .map(|(i, &hosted)| {
                let StageImage::Library(library) = &stages.images[i] else {
                    return None;
                };
                if !hosted {
                    return None;
                }
                let c = &stages.spec.containers[i];
                let mut env = container_env(c, &options.extra_env);
                env.push(("SAGEMAKER_BASE_DIR".into(), base_dir(&stages.model_dirs[i])));
                let container = HostedContainer {
                    name: &c.name,
                    library: library.clone(),
                    model_dir: stages.model_dirs[i].clone(),
                    env,
                    lanes,
                    sink: options.sink,
                    startup_timeout: options.startup_timeout,
                };
                Some(scope.spawn(move || host_container(container, stop)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow!("hosting a container panicked")))
                })
            })
            .collect()
    });
    // Every failure is named; the containers that did start stop when dropped.
    let mut failed = Vec::new();
    let mut hosted = Vec::new();
    for (i, result) in started.into_iter().enumerate() {
        match result {
            Some(Ok(endpoint)) => {
                (options.on_hosted)(&stages.spec.containers[i].name);
                hosted.push(Some(endpoint));
            }
            Some(Err(e)) => failed.push(format!("{e:#}")),
            None => hosted.push(None),
        }
    }
    if !failed.is_empty() {
        bail!("{}", failed.join("\n"));
    }
    Ok(hosted)
}

/// One container per definition: a target for each, hosted in the router when `hosted` holds
/// it, else a container on its own block of ports.
fn separate(
    stages: &Stages,
    hosted: &[Option<Arc<Hosted>>],
    options: &Options,
) -> anyhow::Result<(Vec<Launch>, Vec<Target>)> {
    let mut taken: Vec<u16> = Vec::new();
    if options.port != 0 {
        taken.push(options.port);
    }
    let mut launches = Vec::new();
    let mut targets = Vec::new();
    for (i, c) in stages.spec.containers.iter().enumerate() {
        if let Some(endpoint) = &hosted[i] {
            targets.push(Target::hosted(c.name.clone(), Arc::clone(endpoint)));
            continue;
        }
        let ports = free_block(&taken)?;
        taken.extend(ports.bind..ports.bind + BLOCK);
        let mut env = container_env(c, &options.extra_env);
        if !stages.images[i].is_docker() {
            env.push(("SAGEMAKER_BASE_DIR".into(), base_dir(&stages.model_dirs[i])));
        }
        env.push(("SAGEMAKER_BIND_TO_PORT".into(), ports.bind.to_string()));
        env.push(("SAGEMAKER_SAFE_PORT_RANGE".into(), ports.safe_range()));
        let socket = stages.socket(i);
        if let Some(socket) = &socket {
            env.push((UNIX_SOCKET.into(), socket.display().to_string()));
        }
        launches.push(Launch {
            name: c.name.clone(),
            stages: vec![stages.launch_stage(i, &options.extra_env)],
            port: ports.bind,
            port_from_env: true,
            env,
            own_process_group: options.own_process_group,
            sink: options.sink,
        });
        targets.push(Target::local(c.name.clone(), ports.bind, socket)?);
    }
    Ok((launches, targets))
}

/// `<work>/<name>`: the `SAGEMAKER_BASE_DIR` whose `model` folder holds the model.
pub(super) fn base_dir(model_dir: &Path) -> String {
    model_dir.parent().unwrap_or(model_dir).display().to_string()
}

#[cfg(test)]
mod tests {
    use super::super::router::Reach;
    use super::*;

    #[test]
    fn a_container_gets_its_platform_variables_and_a_process_its_base_dir() {
        let spec =
            ModelSpec::from_flags(&["modelstage/echo:latest".into(), "libecho.so".into()], &[]).unwrap();
        let images = [
            StageImage::Docker("modelstage/echo:latest".into()),
            StageImage::Library("libecho.so".into()),
        ];
        let model_dirs = [
            PathBuf::from("/w/container-1/model"),
            PathBuf::from("/w/container-2/model"),
        ];
        let stages = Stages {
            spec: &spec,
            images: &images,
            model_dirs: &model_dirs,
            sockets: Some(Path::new("/s")),
        };
        let options = Options {
            port: 0,
            bind: IpAddr::from([127, 0, 0, 1]),
            fused: false,
            process_per_container: false,
            extra_env: vec![("SAGEMAKER_BATCH".into(), "true".into())],
            sink: Sink::Stderr,
            own_process_group: false,
            startup_timeout: Duration::from_secs(1),
            stop_grace: Duration::from_secs(1),
            exe: PathBuf::from("modelstage"),
            on_started: |_| {},
            on_hosted: |_| {},
        };
        let (launches, targets) = separate(&stages, &[None, None], &options).unwrap();
        let socket = |target: &Target| match &target.reach {
            Reach::Http { socket, .. } => socket.clone(),
            Reach::Hosted(_) => panic!("{} is hosted", target.name),
        };
        let value = |launch: &Launch, name: &str| {
            launch
                .env
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        for (launch, target) in launches.iter().zip(&targets) {
            assert_eq!(
                target.base_url(),
                Some(format!("http://127.0.0.1:{}", launch.port).as_str())
            );
            assert_eq!(
                value(launch, "SAGEMAKER_BIND_TO_PORT"),
                Some(launch.port.to_string())
            );
            let safe = format!("{}-{}", launch.port + 1, launch.port + BLOCK - 1);
            assert_eq!(value(launch, "SAGEMAKER_SAFE_PORT_RANGE"), Some(safe));
            assert_eq!(value(launch, "SAGEMAKER_BATCH").as_deref(), Some("true"));
        }
        assert_eq!(launches[0].docker_image(), Some("modelstage/echo:latest"));
        // The container sees its model at /opt/ml/model; only the process is told where it is.
        assert_eq!(value(&launches[0], "SAGEMAKER_BASE_DIR"), None);
        assert_eq!(
            value(&launches[1], "SAGEMAKER_BASE_DIR").as_deref(),
            Some("/w/container-2")
        );
        assert_eq!(launches[1].docker_image(), None);
        // Only the process listens on a socket, which its target's requests then go over.
        assert_eq!(value(&launches[0], UNIX_SOCKET), None);
        assert_eq!(socket(&targets[0]), None);
        assert_eq!(value(&launches[1], UNIX_SOCKET).as_deref(), Some("/s/2.sock"));
        assert_eq!(
            socket(&targets[1]).as_ref().map(|s| s.path()),
            Some(Path::new("/s/2.sock"))
        );
    }
}
