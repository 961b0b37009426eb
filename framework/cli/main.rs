//! `modelstage`: one generic binary that speaks the Amazon SageMaker
//! container contract. A thin layer over the library crates: it parses the
//! command line, installs the logger and calls `modelstage-runtime` (what runs
//! inside a container) or `modelstage-local` (the platform emulated on one
//! machine).

use std::process::ExitCode;
use std::sync::OnceLock;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "modelstage",
    version = version(),
    about = "SageMaker-compatible model containers, in Rust"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per run: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Serve a stage: GET /ping, POST /invocations, GET /execution-parameters
    /// (what SageMaker runs as `docker run IMAGE serve`).
    Serve(modelstage_runtime::serve::ServeArgs),
    /// Train a stage: the SageMaker training contract on $SAGEMAKER_BASE_DIR (what
    /// SageMaker runs as `docker run IMAGE train`).
    Train(modelstage_runtime::train::TrainArgs),
    /// A local training job (CreateTrainingJob): lays out /opt/ml, runs `train` as a process or in
    /// a Docker image, packs model.tar.gz.
    Fit(modelstage_local::fit::FitArgs),
    /// A local batch transform job (CreateTransformJob) against an endpoint or a model.
    Transform(modelstage_local::transform::TransformArgs),
    /// A local endpoint (CreateModel + CreateEndpoint): one stage, a serial pipeline
    /// behind a router, Direct mode, or fused in one process.
    Deploy(modelstage_local::deploy::DeployArgs),
    /// A local server speaking SageMaker's own API (control plane and runtime), for boto3 and
    /// the AWS tools: training jobs, models, endpoints and transform jobs run on this machine.
    Api(modelstage_local::api::ApiArgs),
    /// Send one request to an endpoint and print the response body.
    Invoke(modelstage_local::invoke::InvokeArgs),
    /// Print a library's ABI descriptor and hooks, or exactly why it is not a usable stage
    /// (loads the library, so its initialisers run in this process).
    Inspect(modelstage_runtime::inspect::InspectArgs),
    /// Check a stage library, an image or a running endpoint against the SageMaker container
    /// contract: a table of checks (or JSON), non-zero exit on any failure.
    Check(modelstage_local::check::CheckArgs),
    /// Create a stage project in a new folder (Rust or C), ready to build, test and package.
    New(modelstage_local::new::NewArgs),
    /// Build a stage's Docker image on the runtime base (`--stage LIB --tag NAME`), or the
    /// runtime base itself (`--runtime`), with no registry.
    Image(modelstage_local::image::ImageArgs),
    /// Internal: a worker process of `modelstage serve`.
    #[command(hide = true)]
    Worker,
}

/// `--version`: the binary's version and the stage ABI it loads, so a stage
/// author can tell which SDK or header their library must be built against.
fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        format!(
            "{} (stage ABI {}.{})",
            env!("CARGO_PKG_VERSION"),
            modelstage_abi::MODELSTAGE_ABI_MAJOR,
            modelstage_abi::MODELSTAGE_ABI_MINOR
        )
    })
}

/// The one place a local command's failure is printed and its exit code picked.
fn local(result: Result<(), modelstage_local::CommandError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            e.exit_code()
        }
    }
}

/// jemalloc, exported as the process's `malloc` (so the stage libraries a worker loads use it too):
/// it keeps freed pages for reuse, which glibc's allocator returned and faulted in again for every
/// large request. `serve::memory` sets how long it keeps them.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The commands that serve HTTP start again at once with the allocator's settings for them
    // (`serve::memory`: freed pages reused for a second, then given back); the others have nothing
    // to give back.
    if matches!(
        cli.command,
        Command::Serve(_) | Command::Deploy(_) | Command::Transform(_) | Command::Api(_)
    ) {
        if let Some(reason) = modelstage_runtime::serve::memory::configure_allocator() {
            eprintln!("modelstage: {reason}");
        }
    }
    match cli.command {
        Command::Serve(args) => {
            modelstage_runtime::logging::init("modelstage");
            match modelstage_runtime::serve::run(args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    log::error!("{e}");
                    eprintln!("modelstage serve: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Train(args) => {
            modelstage_runtime::logging::init("modelstage");
            match modelstage_runtime::train::run(args) {
                Ok(()) => ExitCode::SUCCESS,
                // A log line, as SageMaker shows the container's log.
                Err(e) => {
                    log::error!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Fit(args) => {
            modelstage_runtime::logging::init("modelstage");
            local(modelstage_local::fit::run(args))
        }
        Command::Transform(args) => {
            modelstage_runtime::logging::init("modelstage");
            local(modelstage_local::transform::run(args))
        }
        Command::Deploy(args) => local(modelstage_local::deploy::run(args)),
        Command::Api(args) => local(modelstage_local::api::run(args)),
        Command::Invoke(args) => local(modelstage_local::invoke::run(args)),
        Command::Inspect(args) => match modelstage_runtime::inspect::run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Command::Check(args) => {
            modelstage_runtime::logging::init("modelstage");
            local(modelstage_local::check::run(args))
        }
        Command::New(args) => local(modelstage_local::new::run(args)),
        Command::Image(args) => local(modelstage_local::image::run(args)),
        Command::Worker => match modelstage_runtime::serve::worker::run() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                if !e.reported_to_the_server() {
                    eprintln!("{e}");
                }
                ExitCode::from(e.exit_code())
            }
        },
    }
}
