//! `modelstage deploy`: a local CreateModel + CreateEndpoint.
//!
//! Takes SageMaker's CreateModel request document ([`request`]) or `--stage IMAGE --model TAR`
//! flags, starts each container ([`runner`]): a `modelstage serve` process for a stage library, a
//! Docker container for an image ([`image`]), with the model unpacked into its own folder, and
//! serves the endpoint on one port ([`endpoint`]): the container itself for one container, the
//! [`router`] for a serial pipeline or a Direct-mode model, or one fused server (`--fused`). Every
//! container's log is shown prefixed with its name ([`logs`]); Ctrl-C or SIGTERM stops everything
//! it started.
//!
//! `--upstream [NAME=]URL ...` runs the router alone in front of endpoints that already run
//! ([`upstream`]), for Compose and Kubernetes.
//!
//! [`start`] is the same endpoint for a library caller (batch transform): on a free port, stopped
//! when the [`RunningEndpoint`] is dropped.

mod endpoint;
mod environment;
pub(crate) mod health;
pub mod hosted;
pub(crate) mod image;
pub(crate) mod logs;
pub(crate) mod ports;
pub mod request;
mod router;
pub(crate) mod runner;
mod upstream;

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::CommandError;

pub use endpoint::{Endpoint, Options};
pub use logs::Sink;
pub use request::{ContainerSpec, Mode, ModelSpec};
pub use upstream::UpstreamOptions;

/// SageMaker's limit for a container to become healthy (docs/contract.md (Serving)).
pub(crate) const STARTUP_TIMEOUT_SECS: u64 = 240;
/// Between SIGTERM and SIGKILL. SageMaker allows 30 s; a local endpoint stops sooner.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// `modelstage deploy` arguments.
#[derive(clap::Args, Debug, Default)]
pub struct DeployArgs {
    /// A CreateModel request document (JSON): PrimaryContainer, or Containers with
    /// InferenceExecutionConfig.Mode Serial (default) or Direct. Image is a stage library path or
    /// a Docker image on this machine, ModelDataUrl a model.tar.gz (path or file:// URI).
    #[arg(long, value_name = "MODEL.json", conflicts_with_all = ["stages", "models"])]
    pub request: Option<PathBuf>,
    /// A stage library or a Docker image; repeat for a serial pipeline, in order.
    #[arg(long = "stage", value_name = "LIB|IMAGE")]
    pub stages: Vec<String>,
    /// The model.tar.gz of each --stage, in the same order (path or file:// URI).
    #[arg(long = "model", value_name = "TAR")]
    pub models: Vec<String>,
    /// Start nothing: route to an endpoint that already runs (http://HOST:PORT), named NAME in
    /// errors (default container-<i>); repeat, in pipeline order.
    #[arg(
        long = "upstream",
        value_name = "[NAME=]URL",
        conflicts_with_all = ["request", "stages", "models", "fused", "process_per_container"]
    )]
    pub upstreams: Vec<String>,
    /// How --upstream endpoints answer: Serial (a pipeline, the default), Direct (by
    /// X-Amzn-SageMaker-Target-Container-Hostname) or MultiModel (one multi-model container; each
    /// request's X-Amzn-SageMaker-Target-Model names a model.tar.gz of --model-data, loaded into
    /// it on first use).
    #[arg(
        long,
        value_name = "MODE",
        requires = "upstreams",
        value_parser = ["Serial", "Direct", "MultiModel"]
    )]
    pub mode: Option<String>,
    /// With --mode MultiModel: the folder of model.tar.gz files (path or file:// URI), as a
    /// MultiModel ModelDataUrl.
    #[arg(long, value_name = "DIR", requires = "upstreams")]
    pub model_data: Option<String>,
    /// With --mode MultiModel: where the models are unpacked, a folder the upstream container
    /// also reads (its /opt/ml/models); default a temporary folder, for an upstream on this machine.
    #[arg(long, value_name = "DIR", requires = "model_data")]
    pub models_dir: Option<PathBuf>,
    /// With --models-dir: the same folder as the upstream container sees it (e.g. /opt/ml/models);
    /// default --models-dir itself.
    #[arg(long, value_name = "PATH", requires = "models_dir")]
    pub container_models_dir: Option<PathBuf>,
    /// The address the router listens on (0.0.0.0 in a container); default 127.0.0.1. A lone
    /// container or a fused server listens on every address, as `serve` does.
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<IpAddr>,
    /// The endpoint's port.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Run a serial pipeline inside one process (all stages in one server, chained in memory,
    /// the same answers as the router's) for the lowest latency. Stage libraries only.
    #[arg(long, conflicts_with = "process_per_container")]
    pub fused: bool,
    /// Run each stage library container of a serial pipeline as a `modelstage serve` process of
    /// its own, on its own port, as each container is a server of its own on SageMaker. By
    /// default the router hosts them: each container still has worker processes of its own,
    /// driven from the router's threads, which saves every request one HTTP hop per container.
    #[arg(long)]
    pub process_per_container: bool,
    /// Seconds the containers have to answer GET /ping with 200.
    #[arg(long, value_name = "SECONDS", default_value_t = STARTUP_TIMEOUT_SECS)]
    pub startup_timeout: u64,
}

/// `modelstage deploy`: runs the endpoint until Ctrl-C or SIGTERM.
pub fn run(args: DeployArgs) -> Result<(), CommandError> {
    modelstage_runtime::logging::init("modelstage");
    match serve_until_stopped(&args) {
        Ok(None) => Ok(()),
        Ok(Some(down)) => Err(CommandError::JobFailed(format!("modelstage deploy: {down}"))),
        Err(e) => Err(CommandError::failed("deploy", e)),
    }
}

/// Serves until stopped; `Some` says why the endpoint went down on its own.
fn serve_until_stopped(args: &DeployArgs) -> anyhow::Result<Option<String>> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("cannot watch for Ctrl-C and SIGTERM")?;
    }
    let bind = args.bind.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    if !args.upstreams.is_empty() {
        let mode = match args.mode.as_deref() {
            Some("Direct") => Mode::Direct,
            Some("MultiModel") => Mode::MultiModel,
            _ => Mode::Serial,
        };
        let options = UpstreamOptions {
            targets: upstream::parse(&args.upstreams)?,
            models: upstream::models(mode, args)?,
            mode,
            bind,
            port: args.port,
        };
        return upstream::serve(options, &stop);
    }
    let spec = match &args.request {
        Some(path) => ModelSpec::from_file(path)?,
        None => ModelSpec::from_flags(&args.stages, &args.models)?,
    };
    let options = Options {
        port: args.port,
        bind,
        fused: args.fused,
        process_per_container: args.process_per_container,
        extra_env: Vec::new(),
        sink: Sink::Mirror,
        own_process_group: true,
        startup_timeout: Duration::from_secs(args.startup_timeout),
        stop_grace: STOP_GRACE,
        exe: current_exe()?,
        on_started: |c| {
            eprintln!(
                "modelstage deploy: started {} ({}, port {})",
                c.name,
                c.describe(),
                c.port
            )
        },
        on_hosted: |name| eprintln!("modelstage deploy: hosting {name} in the router"),
    };
    let mut endpoint = Endpoint::start(&spec, &options, &stop)?;
    let how = match (spec.mode, args.fused) {
        (Mode::Single, _) => "one container",
        (Mode::Serial, true) => "serial pipeline, fused in one process",
        (Mode::Serial, false) => "serial pipeline behind a router",
        (Mode::Direct, _) => "Direct mode behind a router",
        (Mode::MultiModel, _) => "multi-model endpoint behind a router",
    };
    eprintln!(
        "modelstage deploy: endpoint ready at http://localhost:{}/invocations ({}: {})",
        endpoint.port(),
        how,
        endpoint.label()
    );
    let down = watch(&mut endpoint, &stop);
    eprintln!("modelstage deploy: stopping");
    endpoint.stop();
    eprintln!("modelstage deploy: stopped");
    Ok(down)
}

/// Waits for Ctrl-C or SIGTERM. A container that dies is reported; without a router the endpoint
/// is gone with it, with a router it stays up and `/ping` says which container is unhealthy.
/// `Some` says why the endpoint is down.
fn watch(endpoint: &mut Endpoint, stop: &AtomicBool) -> Option<String> {
    let mut reported = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
        let has_router = endpoint.has_router();
        for c in endpoint.containers_mut() {
            let Some(how) = c.exited() else { continue };
            if reported.contains(&c.name) {
                continue;
            }
            reported.push(c.name.clone());
            if !has_router {
                return Some(format!("{} {how}; the endpoint is down", c.name));
            }
            eprintln!(
                "modelstage deploy: {} {how}; GET /ping answers 503 until the endpoint is deployed again",
                c.name
            );
        }
    }
    None
}

/// A local endpoint started by [`start`]; stopped (containers and all) when dropped.
pub struct RunningEndpoint {
    endpoint: Endpoint,
}

impl RunningEndpoint {
    /// `http://127.0.0.1:<port>`: POST `/invocations`, GET `/ping` and `/execution-parameters`.
    pub fn url(&self) -> &str {
        self.endpoint.url()
    }
}

/// Starts the model of a CreateModel request document on a free port, with `extra_env` added to
/// every container's environment (e.g. batch transform's `SAGEMAKER_BATCH=true`), and waits until
/// it is healthy. A serial pipeline runs behind the router, as SageMaker runs it. Container logs
/// go to stderr, prefixed with the container's name. The containers share the caller's process
/// group, so a Ctrl-C on the terminal reaches them even if the caller is stopped without
/// unwinding.
pub fn start(model_request: &Path, extra_env: &[(String, String)]) -> anyhow::Result<RunningEndpoint> {
    let spec = ModelSpec::from_file(model_request)?;
    start_model(&spec, extra_env)
        .with_context(|| format!("cannot start the model of {}", model_request.display()))
}

/// [`start`] for a model already read (`modelstage api` keeps CreateModel requests in its store).
pub fn start_model(spec: &ModelSpec, extra_env: &[(String, String)]) -> anyhow::Result<RunningEndpoint> {
    let options = Options {
        port: 0,
        bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
        fused: false,
        process_per_container: false,
        extra_env: extra_env.to_vec(),
        sink: Sink::Stderr,
        own_process_group: false,
        startup_timeout: Duration::from_secs(STARTUP_TIMEOUT_SECS),
        stop_grace: STOP_GRACE,
        exe: current_exe()?,
        on_started: |_| {},
        on_hosted: |_| {},
    };
    let never = AtomicBool::new(false);
    let endpoint = Endpoint::start(spec, &options, &never)?;
    Ok(RunningEndpoint { endpoint })
}

/// The `modelstage` binary that is running now: it serves the stage libraries.
fn current_exe() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("cannot find the modelstage binary to run containers with")
}
