//! `modelstage deploy`: a local CreateModel + CreateEndpoint.
//!
//! Takes SageMaker's CreateModel request document ([`request`]) or `--stage LIB --model TAR` flags,
//! starts each container as its own `modelstage serve` process ([`runner`]) with the model
//! unpacked into its own `SAGEMAKER_BASE_DIR/model`, and serves the endpoint on one port
//! ([`endpoint`]): the container itself for one container, the [`router`] for a serial pipeline or
//! a Direct-mode model, or one fused server (`--fused`). Every container's log is shown prefixed
//! with its name ([`logs`]); Ctrl-C or SIGTERM stops everything it started.
//!
//! [`start`] is the same endpoint for a library caller (batch transform): on a free port, stopped
//! when the [`RunningEndpoint`] is dropped.

mod endpoint;
mod environment;
mod health;
mod logs;
mod ports;
pub mod request;
mod router;
mod runner;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

pub use endpoint::{Endpoint, Options};
pub use logs::Sink;
pub use request::{ContainerSpec, Mode, ModelSpec};
pub use runner::Runner;

/// SageMaker's limit for a container to become healthy (CONTRACT.md §2.4).
const STARTUP_TIMEOUT_SECS: u64 = 240;
/// Between SIGTERM and SIGKILL. SageMaker allows 30 s; a local endpoint stops sooner.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// `modelstage deploy` arguments.
#[derive(clap::Args, Debug, Default)]
pub struct DeployArgs {
    /// A CreateModel request document (JSON): PrimaryContainer, or Containers with
    /// InferenceExecutionConfig.Mode Serial (default) or Direct. Image is a stage library path,
    /// ModelDataUrl a model.tar.gz (path or file:// URI).
    #[arg(long, value_name = "MODEL.json", conflicts_with_all = ["stages", "models"])]
    pub request: Option<PathBuf>,
    /// A stage library; repeat for a serial pipeline, in order.
    #[arg(long = "stage", value_name = "LIB")]
    pub stages: Vec<PathBuf>,
    /// The model.tar.gz of each --stage, in the same order (path or file:// URI).
    #[arg(long = "model", value_name = "TAR")]
    pub models: Vec<String>,
    /// The endpoint's port.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Run a serial pipeline inside one process (all stages in one server, chained in memory,
    /// the same answers as the router's) for the lowest latency.
    #[arg(long)]
    pub fused: bool,
    /// Seconds the containers have to answer GET /ping with 200.
    #[arg(long, value_name = "SECONDS", default_value_t = STARTUP_TIMEOUT_SECS)]
    pub startup_timeout: u64,
}

/// `modelstage deploy`: runs the endpoint until Ctrl-C or SIGTERM.
pub fn run(args: DeployArgs) -> ExitCode {
    modelstage_runtime::logging::init("modelstage");
    match serve_until_stopped(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("modelstage deploy: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve_until_stopped(args: &DeployArgs) -> anyhow::Result<ExitCode> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("cannot watch for Ctrl-C and SIGTERM")?;
    }
    let spec = match &args.request {
        Some(path) => ModelSpec::from_file(path)?,
        None => ModelSpec::from_flags(&args.stages, &args.models)?,
    };
    let options = Options {
        port: args.port,
        fused: args.fused,
        extra_env: Vec::new(),
        sink: Sink::Mirror,
        own_process_group: true,
        startup_timeout: Duration::from_secs(args.startup_timeout),
        stop_grace: STOP_GRACE,
        runner: Runner::current_exe()?,
    };
    let mut endpoint = Endpoint::start(&spec, &options, &stop)?;
    let how = match (spec.mode, args.fused) {
        (Mode::Single, _) => "one container",
        (Mode::Serial, true) => "serial pipeline, fused in one process",
        (Mode::Serial, false) => "serial pipeline behind a router",
        (Mode::Direct, _) => "Direct mode behind a router",
    };
    eprintln!(
        "modelstage deploy: endpoint ready at http://localhost:{}/invocations ({}: {})",
        endpoint.port(),
        how,
        endpoint.label()
    );
    let code = watch(&mut endpoint, &stop);
    eprintln!("modelstage deploy: stopping");
    endpoint.stop();
    eprintln!("modelstage deploy: stopped");
    Ok(code)
}

/// Waits for Ctrl-C or SIGTERM. A container that dies is reported; without a router the endpoint
/// is gone with it, with a router it stays up and `/ping` says which container is unhealthy.
fn watch(endpoint: &mut Endpoint, stop: &AtomicBool) -> ExitCode {
    let mut reported = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
        let has_router = endpoint.has_router();
        for c in endpoint.containers_mut() {
            let Some(status) = c.exited() else { continue };
            if reported.contains(&c.name) {
                continue;
            }
            reported.push(c.name.clone());
            let how = runner::describe_exit(status);
            if !has_router {
                eprintln!("modelstage deploy: {} {how}; the endpoint is down", c.name);
                return ExitCode::FAILURE;
            }
            eprintln!(
                "modelstage deploy: {} {how}; GET /ping answers 503 until the endpoint is deployed again",
                c.name
            );
        }
    }
    ExitCode::SUCCESS
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
    let options = Options {
        port: 0,
        fused: false,
        extra_env: extra_env.to_vec(),
        sink: Sink::Stderr,
        own_process_group: false,
        startup_timeout: Duration::from_secs(STARTUP_TIMEOUT_SECS),
        stop_grace: STOP_GRACE,
        runner: Runner::current_exe()?,
    };
    let never = AtomicBool::new(false);
    let endpoint = Endpoint::start(&spec, &options, &never)
        .with_context(|| format!("cannot start the model of {}", model_request.display()))?;
    Ok(RunningEndpoint { endpoint })
}
