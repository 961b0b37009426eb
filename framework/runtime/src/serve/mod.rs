//! `modelstage serve`: the SageMaker endpoint contract (docs/contract.md (Serving)).
//!
//! The server process speaks HTTP (actix-web) and never runs stage code; the
//! stage runs in supervised worker processes (`pool`, `worker`), so an abort
//! or a segfault in a stage costs the requests running in that process, not
//! the endpoint; requests go only to free worker threads (`dispatch`). See
//! `docs/architecture.md` for why.

pub mod body;
mod chain;
pub mod config;
pub mod connections;
mod dispatch;
mod http;
mod lane;
pub mod memory;
mod metrics;
mod oip;
mod pool;
mod protocol;
pub mod worker;

use std::path::PathBuf;
use std::sync::Arc;

use actix_web::{web, App, HttpServer};

pub use chain::{hop_too_large_message, HOP_LIMIT_BYTES, HOP_LIMIT_MB};
pub use config::{EdgeLimits, ServeConfig, StagePlan};
pub use http::{
    error_body, json_response, model_error_body, new_request_id, request_id, CUSTOM_ATTRIBUTES_HEADER,
    REQUEST_ID_HEADER,
};

use crate::loader::{LoadedStage, Threading};
use config::{EnvSettings, ExecutionParameters, WorkerPlan, MB};

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

fn fail(message: &str) -> ! {
    log::error!("{message}");
    eprintln!("modelstage serve: {message}");
    std::process::exit(1)
}

/// Builds the configuration from flags, `SAGEMAKER_*` variables and the
/// stage's declaration.
pub fn configure(args: &ServeArgs) -> Result<(ServeConfig, Threading, String), String> {
    let env = EnvSettings::read()?;
    let mut libraries = args.stages.clone();
    if libraries.is_empty() {
        match config::env_var("MODELSTAGE_STAGE") {
            Some(lib) => libraries.push(PathBuf::from(lib)),
            None => {
                return Err("no stage to serve: pass --stage LIB or set MODELSTAGE_STAGE".to_string());
            }
        }
    }
    let default_model_dir = config::base_dir().join("model");
    if args.model_dirs.len() > libraries.len() {
        return Err(format!(
            "{} --model-dir given for {} stage(s)",
            args.model_dirs.len(),
            libraries.len()
        ));
    }
    let default_accept = config::default_accept();
    let mut stages = Vec::with_capacity(libraries.len());
    let mut threading = Threading::Shared;
    let mut infos = Vec::new();
    for (i, library) in libraries.iter().enumerate() {
        let stage = LoadedStage::open(library).map_err(|e| e.to_string())?;
        let info = stage.info().clone();
        if info.threading == Threading::PerInstance {
            threading = Threading::PerInstance;
        }
        let name = match args.stage_names.get(i) {
            Some(n) => n.clone(),
            None if libraries.len() > 1 => format!("container-{}", i + 1),
            None => info.name.clone(),
        };
        stages.push(StagePlan {
            name,
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
        });
        infos.push(info);
    }
    let label = if stages.len() == 1 {
        infos[0].name.clone()
    } else {
        stages
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(" -> ")
    };
    let workers = env.workers.unwrap_or_else(config::cpu_count).max(1);
    // By default one request thread per lane (per HTTP thread): it takes
    // every request its lane has buffered and answers them in one write.
    // More threads per lane help stages that wait rather than compute.
    let threads_per_worker = match threading {
        Threading::Shared => config::env_var("MODELSTAGE_WORKER_THREADS")
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(config::http_threads)
            .max(1),
        Threading::PerInstance => 1,
    };
    // The first stage's declaration speaks for the endpoint: it is the one
    // that receives batch transform's requests.
    let first = &infos[0];
    let max_payload_in_mb = env
        .max_payload_in_mb
        .or((first.max_payload_in_mb > 0).then_some(first.max_payload_in_mb as u64))
        .unwrap_or(6);
    let edge = EdgeLimits::from_env(&env);
    let execution = ExecutionParameters {
        max_concurrent_transforms: env
            .max_concurrent_transforms
            .or((first.max_concurrent_transforms > 0).then_some(first.max_concurrent_transforms as u64))
            .unwrap_or((workers * threads_per_worker) as u64),
        batch_strategy: env
            .batch_strategy
            .or(first.batch_strategy.map(str::to_string))
            .unwrap_or_else(|| "MULTI_RECORD".to_string()),
        max_payload_in_mb,
    };
    let config = ServeConfig {
        port: args.port.or(env.port).unwrap_or(8080),
        stages,
        workers,
        threads_per_worker,
        timeout: http::timeout_of(env.timeout_secs.unwrap_or(60)),
        max_payload_bytes: if max_payload_in_mb == 0 {
            usize::MAX
        } else {
            (max_payload_in_mb as usize).saturating_mul(MB)
        },
        max_payload_in_mb,
        default_accept,
        execution,
        edge,
    };
    Ok((config, threading, label))
}

/// Unpacks each `--model-data` archive into a private folder and serves
/// that folder as the stage's model dir; the folders live as long as the
/// returned values.
fn unpack_model_data(args: &mut ServeArgs) -> Result<Vec<crate::archive::PrivateModel>, String> {
    // Counted before anything is unpacked; without --stage, MODELSTAGE_STAGE is the one stage.
    let stages = args.stages.len().max(1);
    if args.model_data.len() > stages {
        return Err(format!(
            "{} --model-data given for {stages} stage(s): give one per --stage, in the same order",
            args.model_data.len()
        ));
    }
    let models = args
        .model_data
        .iter()
        .map(|tar_gz| {
            crate::archive::PrivateModel::unpack(tar_gz)
                .map_err(|e| format!("--model-data {}: {e:#}", tar_gz.display()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    args.model_dirs
        .extend(models.iter().map(|m| m.model_dir().to_path_buf()));
    Ok(models)
}

/// Runs `modelstage serve` until SIGTERM (graceful: in-flight requests are
/// answered) or SIGINT. Returns the process exit code.
pub fn run(mut args: ServeArgs) -> i32 {
    let models = match unpack_model_data(&mut args) {
        Ok(models) => models,
        Err(e) => fail(&e),
    };
    let (config, threading, label) = match configure(&args) {
        Ok(c) => c,
        Err(e) => {
            drop(models);
            fail(&e)
        }
    };
    let metrics_port = match metrics::port() {
        Ok(port) => port,
        Err(e) => {
            drop(models);
            fail(&e)
        }
    };
    if metrics::enabled() {
        metrics::init(&label);
    }
    // One lane from every HTTP thread to every worker (see `lane`).
    let http_threads = config::http_threads();
    let plan = WorkerPlan {
        stages: config.stages.clone(),
        threads: config.threads_per_worker,
        lanes: http_threads,
    };
    log::info!(
        "serving {label} on port {} with {} worker(s) x {} thread(s) ({} threading), timeout {} s, max payload {} MB",
        config.port,
        config.workers,
        config.threads_per_worker,
        threading.as_str(),
        config.timeout.as_secs(),
        config.max_payload_in_mb
    );
    let pool = match pool::Pool::start(config.workers, &plan, label.clone(), fail) {
        Ok(p) => p,
        Err(e) => {
            drop(models);
            fail(&format!("cannot start workers: {e}"))
        }
    };
    let oip_model = match oip::OipModel::of_stages(&config.stages) {
        Ok(model) => web::Data::new(model),
        Err(e) => {
            drop(models);
            fail(&e)
        }
    };
    let execution_parameters_json = serde_json::to_string(&config.execution).expect("serializes");
    let port = config.port;
    let edge = config.edge.clone();
    let budget = connections::Budget::new(
        edge.max_connections,
        connections::raise_open_file_limit(),
        http_threads * config.workers,
    );
    log::info!(
        "at most {} connections ({} for /invocations), request head within {} s, body within {} s",
        budget.total,
        budget.invocations,
        edge.header_timeout.as_secs(),
        edge.body_timeout.as_secs()
    );
    let state = web::Data::new(http::State {
        invocation_connections: budget.invocations,
        config,
        pool: Arc::clone(&pool),
        stage_label: label,
        execution_parameters_json,
    });
    let result = actix_web::rt::System::new().block_on(async move {
        let server = HttpServer::new(move || {
            App::new()
                .wrap(metrics::Record)
                .app_data(state.clone())
                .app_data(oip_model.clone())
                .configure(oip::routes)
                .route("/ping", web::get().to(http::ping))
                .route("/ping", web::head().to(http::ping))
                .route("/invocations", web::post().to(http::invocations))
                .route("/invocations", web::route().to(http::method_not_allowed))
                .route("/execution-parameters", web::get().to(http::execution_parameters))
                .route("/metrics", web::get().to(metrics::exposition))
                .default_service(web::route().to(http::not_found))
        })
        .workers(http_threads)
        .max_connections(budget.per_thread(http_threads))
        .client_request_timeout(edge.header_timeout)
        .on_connect(|_, data| {
            data.insert(connections::Counted::new());
        })
        .shutdown_timeout(30)
        .bind(("0.0.0.0", port))?;
        if let Some(metrics_port) = metrics_port {
            // Only /metrics, for scrapers kept off the serving port.
            let scrape = HttpServer::new(|| App::new().route("/metrics", web::get().to(metrics::exposition)))
                .workers(1)
                .bind(("0.0.0.0", metrics_port))?
                .run();
            actix_web::rt::spawn(scrape);
        }
        server.run().await
    });
    pool.shutdown();
    drop(models);
    match result {
        Ok(()) => {
            log::info!("stopped");
            0
        }
        Err(e) => {
            fail(&format!("cannot serve on port {port}: {e}"));
        }
    }
}
