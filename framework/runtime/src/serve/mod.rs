//! `modelstage serve`: the SageMaker endpoint contract (docs/contract.md (Serving)).
//!
//! Words: a *worker* is always a process (`modelstage worker`, see `worker`;
//! the server's handle on one is a `WorkerProcess`, see `process`); the
//! threads in it that run requests are *request threads*; the server's
//! threads are *HTTP threads*, and each worker *slot* has a lifecycle thread
//! in the pool.
//!
//! The server process speaks HTTP (actix-web) and never runs stage code; the
//! stage runs in supervised worker processes (`pool`, `worker`), so an abort
//! or a segfault in a stage costs the requests running in that process, not
//! the endpoint; requests go only to free request threads (`dispatch`). See
//! `docs/architecture.md` for why.

pub mod body;
mod chain;
pub mod config;
pub mod connections;
mod dispatch;
pub mod edge;
mod head_timer;
pub mod hosted;
mod http;
mod lane;
pub mod memory;
mod metrics;
pub mod mme;
mod oip;
mod pool;
mod process;
mod protocol;
pub mod server;
mod socket_dir;
pub mod unix_socket;
pub mod worker;

use std::path::PathBuf;
use std::sync::Arc;

use actix_web::{web, App};

pub use chain::{hop_too_large_message, HOP_LIMIT_BYTES, HOP_LIMIT_MB};
pub use config::{ConfigError, EdgeLimits, ServeConfig, StagePlan};
pub use edge::{
    json_response, new_request_id, request_id, EdgeError, EdgeRules, Invocation, CUSTOM_ATTRIBUTES_HEADER,
    REQUEST_ID_HEADER,
};
pub use modelstage_contract::error_body::{error_body, model_error_body};

use config::{EnvSettings, Vars, WorkerPlan};
use modelstage_contract::payload::DEFAULT_MAX_PAYLOAD_IN_MB;
use modelstage_contract::{BatchStrategy, ExecutionParameters};
pub use pool::PoolError;
use protocol::StageDescription;

/// `modelstage serve` arguments.
#[derive(clap::Args, Debug, Default)]
pub struct ServeArgs {
    /// The stage library (repeat for a fused serial pipeline, in order).
    /// Default: $MODELSTAGE_STAGE.
    #[arg(long = "stage", value_name = "LIB")]
    pub stages: Vec<PathBuf>,
    /// The model dir of each stage, in the same order. Default:
    /// $SAGEMAKER_BASE_DIR/model (SAGEMAKER_BASE_DIR defaults to /opt/ml).
    #[arg(long = "model-dir", value_name = "DIR")]
    pub model_dirs: Vec<PathBuf>,
    /// A `model.tar.gz` per stage, in the same order, instead of --model-dir:
    /// unpacked (as SageMaker does, with the bounds of `MODELSTAGE_UNPACK_*`)
    /// into a private folder that is removed when the server stops.
    #[arg(long = "model-data", value_name = "TAR", conflicts_with = "model_dirs")]
    pub model_data: Vec<PathBuf>,
    /// The Accept each stage but the last gets in a fused pipeline (default:
    /// $SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT, else application/json).
    #[arg(long = "stage-accept", value_name = "TYPE", hide = true)]
    pub stage_accepts: Vec<String>,
    /// The container names of a fused pipeline, used in errors and logs.
    #[arg(long = "stage-name", value_name = "NAME", hide = true)]
    pub stage_names: Vec<String>,
    /// The port. Default: $SAGEMAKER_BIND_TO_PORT, else 8080.
    #[arg(long)]
    pub port: Option<u16>,
}

/// Why `modelstage serve` stopped or could not start; the command line
/// prints it and exits non-zero.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Bad flags or `SAGEMAKER_*` / `MODELSTAGE_*` settings, or a model
    /// archive that cannot be unpacked.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The workers could not start, or none could load the stages.
    #[error(transparent)]
    Workers(#[from] PoolError),
    /// No worker of a hosted endpoint loaded the model in time (see `hosted`).
    #[error("no worker of stage {stage} loaded its model within {seconds} s")]
    NotReady {
        /// How errors name the stage.
        stage: String,
        /// The time it had.
        seconds: u64,
    },
    /// The host was told to stop before a worker of a hosted endpoint loaded the model.
    #[error("stopped before a worker of stage {stage} loaded its model")]
    Stopped {
        /// How errors name the stage.
        stage: String,
    },
    /// The worker processes' socket could not be set up.
    #[error("cannot start workers: {0}")]
    Setup(std::io::Error),
    /// The HTTP server could not bind or run.
    #[error("cannot serve on port {port}: {error}")]
    Http {
        /// The serving port.
        port: u16,
        /// Why it failed.
        error: std::io::Error,
    },
}

/// What the server knows before any stage library is opened: the flags and
/// variables, and the worker processes to start.
struct Settings {
    env: EnvSettings,
    port: u16,
    stages: Vec<StagePlan>,
    workers: usize,
    /// Request threads per worker if its stages share one model across threads.
    shared_threads: usize,
    default_accept: String,
}

/// Reads the flags and the `SAGEMAKER_*` variables (`lanes`: the HTTP threads). Nothing here opens a
/// stage library: the server process never runs stage code (the workers
/// describe the stages, see [`configure`]).
fn settings(args: &ServeArgs, vars: &Vars, lanes: usize) -> Result<Settings, ConfigError> {
    let env = EnvSettings::read_from(vars)?;
    let mut libraries = args.stages.clone();
    if libraries.is_empty() {
        match vars.get("MODELSTAGE_STAGE") {
            Some(lib) => libraries.push(PathBuf::from(lib)),
            None => return Err(ConfigError::NoStage),
        }
    }
    let default_model_dir = config::base_dir().join("model");
    if args.model_dirs.len() > libraries.len() {
        return Err(ConfigError::TooManyModelDirs {
            given: args.model_dirs.len(),
            stages: libraries.len(),
        });
    }
    let default_accept = config::default_accept(vars);
    let stages = libraries
        .iter()
        .enumerate()
        .map(|(i, library)| StagePlan {
            // A single stage's name is the one its descriptor declares: it
            // replaces this once a worker has described the stage.
            name: match args.stage_names.get(i) {
                Some(n) => n.clone(),
                None if libraries.len() > 1 => format!("container-{}", i + 1),
                None => library.display().to_string(),
            },
            library: library.clone(),
            model_dir: args
                .model_dirs
                .get(i)
                .cloned()
                .unwrap_or_else(|| default_model_dir.clone()),
            default_accept: args
                .stage_accepts
                .get(i)
                .cloned()
                .unwrap_or_else(|| default_accept.clone()),
        })
        .collect();
    // By default one request thread per lane (per HTTP thread): it takes
    // every request its lane has buffered and answers them in one write.
    // More threads per lane help stages that wait rather than compute.
    let shared_threads = vars
        .get("MODELSTAGE_WORKER_THREADS")
        .and_then(|t| t.parse().ok())
        .unwrap_or(lanes)
        .max(1);
    Ok(Settings {
        port: args.port.or(env.port).unwrap_or(8080),
        workers: env.workers.unwrap_or_else(config::cpu_count).max(1),
        env,
        stages,
        shared_threads,
        default_accept,
    })
}

/// Builds the configuration from the settings and the stages' descriptions,
/// as the first worker reported them.
fn configure(settings: Settings, described: &[StageDescription]) -> ServeConfig {
    let Settings {
        env,
        port,
        mut stages,
        workers,
        shared_threads,
        default_accept,
    } = settings;
    if let ([stage], [description]) = (stages.as_mut_slice(), described) {
        stage.name = description.name.clone();
    }
    let threads_per_worker = StageDescription::threads(described, shared_threads);
    // The first stage's declaration speaks for the endpoint: it is the one
    // that receives batch transform's requests.
    let first = &described[0];
    let max_payload_in_mb = env
        .max_payload_in_mb
        .or((first.max_payload_in_mb > 0).then_some(first.max_payload_in_mb as u64))
        .unwrap_or(DEFAULT_MAX_PAYLOAD_IN_MB.into());
    let edge = EdgeLimits::from_env(&env);
    let execution = ExecutionParameters {
        max_concurrent_transforms: Some(
            env.max_concurrent_transforms
                .or((first.max_concurrent_transforms > 0).then_some(first.max_concurrent_transforms))
                .unwrap_or(u32::try_from(workers * threads_per_worker).unwrap_or(u32::MAX)),
        ),
        batch_strategy: Some(
            env.batch_strategy
                .or(first.batch_strategy.as_deref().and_then(BatchStrategy::parse))
                .unwrap_or(BatchStrategy::DEFAULT),
        ),
        max_payload_in_mb: Some(u32::try_from(max_payload_in_mb).unwrap_or(u32::MAX)),
    };
    ServeConfig {
        port,
        stages,
        workers,
        threads_per_worker,
        timeout: http::timeout_of(env.timeout_secs.unwrap_or(60)),
        max_payload_in_mb,
        default_accept,
        execution,
        edge,
    }
}

/// Unpacks each `--model-data` archive into a private folder and serves
/// that folder as the stage's model dir; the folders live as long as the
/// returned values.
fn unpack_model_data(args: &mut ServeArgs) -> Result<Vec<crate::archive::PrivateModel>, ConfigError> {
    // Counted before anything is unpacked; without --stage, MODELSTAGE_STAGE is the one stage.
    let stages = args.stages.len().max(1);
    if args.model_data.len() > stages {
        return Err(ConfigError::TooManyModelData {
            given: args.model_data.len(),
            stages,
        });
    }
    let models = args
        .model_data
        .iter()
        .map(|tar_gz| {
            crate::archive::PrivateModel::unpack(tar_gz).map_err(|error| ConfigError::ModelData {
                archive: tar_gz.clone(),
                error,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    args.model_dirs
        .extend(models.iter().map(|m| m.model_dir().to_path_buf()));
    Ok(models)
}

/// Runs `modelstage serve` until SIGTERM (graceful: in-flight requests are
/// answered) or SIGINT; an error when it cannot start, or when no worker
/// can load the stages (then the HTTP server is stopped first).
pub fn run(mut args: ServeArgs) -> Result<(), ServeError> {
    // Dropped last: the private model folders outlive the workers using them.
    let _models = unpack_model_data(&mut args)?;
    let vars = Vars::process();
    // One lane from every HTTP thread to every worker (see `lane`).
    let http_threads = config::http_threads();
    let settings = settings(&args, &vars, http_threads)?;
    // The port is taken before the workers start, so that nothing else can
    // take it while they load (a platform picked it free for this server);
    // connections wait in the backlog until the server accepts them.
    let listener =
        std::net::TcpListener::bind(("0.0.0.0", settings.port)).map_err(|error| ServeError::Http {
            port: settings.port,
            error,
        })?;
    // Taken now too, for the same reason; its file is removed when `unix` is dropped, once the
    // server has stopped.
    let mut unix = unix_socket::UnixSocket::from_env()?;
    let metrics_port = metrics::port()?;
    let multi_model = mme::Settings::read()?;
    if metrics::enabled() {
        // Before the workers start, so that the first ones are counted.
        metrics::init(multi_model.is_some());
    }
    if multi_model.is_some() && settings.stages.len() > 1 {
        return Err(ConfigError::MultiModelPipeline.into());
    }
    let plan = WorkerPlan {
        stages: settings.stages.clone(),
        threads: settings.shared_threads,
        lanes: http_threads,
        multi_model: multi_model.is_some(),
    };
    let registry = multi_model.map(|m| {
        let timeout = http::timeout_of(settings.env.timeout_secs.unwrap_or(60));
        Arc::new(mme::Registry::new(m.budget, m.evict_lru, timeout))
    });
    let pool = pool::Pool::start(settings.workers, &plan, registry.clone(), &vars, None)
        .map_err(ServeError::Setup)?;
    let described = match pool.described() {
        Ok(d) => d,
        Err(e) => {
            pool.shutdown();
            return Err(e.into());
        }
    };
    let config = configure(settings, &described);
    let label = pool.label().to_string();
    metrics::set_stage(&label);
    let oip_model = web::Data::new(oip::OipModel::of_described(&described));
    log::info!(
        "serving {label} on port {} with {} worker(s) x {} thread(s) ({} threading), timeout {} s, max payload {} MB",
        config.port,
        config.workers,
        config.threads_per_worker,
        if described.iter().any(|s| s.per_instance) { "per-instance" } else { "shared" },
        config.timeout.as_secs(),
        config.max_payload_in_mb
    );
    let api = registry.as_ref().map(|registry| {
        registry.set_stage(&label);
        log::info!(
            "multi-model endpoint: models load on request; memory budget {} ({}), {}",
            registry
                .budget_mb()
                .map_or("none".to_string(), |mb| format!("{mb} MB")),
            registry.budget_source(),
            if registry.evicts() {
                "least recently used models unloaded to make room (MODELSTAGE_MME_EVICT=lru)"
            } else {
                "a load past it answers 507"
            }
        );
        web::Data::new(mme::routes::Api {
            registry: Arc::clone(registry),
            model_root: config::base_dir().join("model"),
        })
    });
    let execution_parameters_json = serde_json::to_string(&config.execution).expect("serializes");
    let port = config.port;
    let edge = config.edge.clone();
    let budget = connections::Budget::new(
        edge.max_connections,
        connections::raise_open_file_limit(),
        http_threads * config.workers,
    );
    if let Some(socket) = &unix {
        log::info!(
            "also serving on the Unix socket {} ({})",
            socket.path().display(),
            unix_socket::SETTING
        );
    }
    log::info!(
        "at most {} connections ({} for /invocations), request head within {} s, body within {} s",
        budget.total,
        budget.invocations,
        edge.header_timeout.as_secs(),
        edge.body_timeout.as_secs()
    );
    let rules = web::Data::new(EdgeRules::new(
        label.clone(),
        Some(config.default_accept.clone()),
        config.max_payload_in_mb,
        edge.clone(),
        budget.invocations,
    ));
    let state = web::Data::new(http::State {
        config,
        pool: Arc::clone(&pool),
        stage_label: label,
        execution_parameters_json,
    });
    let watched = Arc::clone(&pool);
    let unix_listener = unix.as_mut().and_then(unix_socket::UnixSocket::take_listener);
    let result = actix_web::rt::System::new().block_on(async move {
        let options = server::ServerOptions {
            http_threads,
            max_connections_per_thread: budget.per_thread(http_threads),
            header_timeout: edge.header_timeout,
            shutdown_timeout: 30,
            signals: true,
        };
        let server = server::start(listener, unix_listener, options, move || {
            // Each HTTP thread has its own lanes to the workers, shared by its apps (see `lane`).
            let api = api.clone();
            App::new()
                .wrap(metrics::Record)
                .app_data(lane::Lanes::of_this_thread())
                .app_data(state.clone())
                .app_data(rules.clone())
                // A multi-model endpoint's routes come first: its
                // `/invocations` is the one served.
                .configure(|cfg| {
                    if let Some(api) = api {
                        cfg.app_data(api);
                        mme::routes::register(cfg);
                    }
                })
                .app_data(oip_model.clone())
                .configure(oip::routes)
                .route("/ping", web::get().to(http::ping))
                .route("/ping", web::head().to(http::ping))
                .route("/invocations", web::post().to(http::invocations))
                .route("/invocations", web::route().to(http::method_not_allowed))
                .route("/execution-parameters", web::get().to(http::execution_parameters))
                .route("/metrics", web::get().to(metrics::exposition))
                .default_service(web::route().to(http::not_found))
        })?;
        if let Some(metrics_port) = metrics_port {
            // Only /metrics, for scrapers kept off the serving port.
            let scrape = actix_web::HttpServer::new(|| {
                App::new().route("/metrics", web::get().to(metrics::exposition))
            })
            .workers(1)
            .bind(("0.0.0.0", metrics_port))?
            .run();
            actix_web::rt::spawn(scrape);
        }
        // No worker could load the stages: stop serving (the error is
        // returned below, once the server has stopped).
        let handle = server.handle();
        actix_web::rt::spawn(async move {
            watched.fatal().await;
            handle.stop(false).await;
        });
        server.await
    });
    drop(unix);
    pool.shutdown();
    if let Some(registry) = &registry {
        registry.shutdown();
    }
    if let Some(fatal) = pool.fatal_error() {
        return Err(fatal.into());
    }
    match result {
        Ok(()) => {
            log::info!("stopped");
            Ok(())
        }
        Err(error) => Err(ServeError::Http { port, error }),
    }
}
