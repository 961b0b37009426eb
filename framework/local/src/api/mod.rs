//! `modelstage api`: one local HTTP server that speaks SageMaker's own wire protocols, so that
//! boto3 (and whatever else speaks them) drives modelstage unchanged.
//!
//! - Control plane, AWS JSON 1.1 (`POST /`, `X-Amz-Target: SageMaker.<Operation>`): [`wire`] the
//!   protocol and its errors, [`shapes`] + [`validate`] the requests, [`ops`] the dispatch, and one
//!   module per resource: [`training`], [`models`] (models and endpoint configurations),
//!   [`endpoints`], [`transform`]. Jobs and endpoints run through the code behind `fit`,
//!   `transform` and `deploy`, on threads of their own.
//! - Runtime, REST (`POST /endpoints/{EndpointName}/invocations`): [`runtime`]; the target
//!   models of multi-model endpoints: [`multi`].
//! - Artifacts: `file://` locations are read where they are; `s3://` ones go through [`s3`] and
//!   are staged in the state folder by [`artifacts`] (manifests by [`manifest`]).
//! - State: [`store`], an SQLite database in the state folder; [`restart`] picks up what the last
//!   run left. [`state`] is what the server holds while it runs.
//!
//! There is no authentication: SigV4 signatures are accepted and not verified.

mod artifacts;
mod endpoints;
mod manifest;
mod models;
mod multi;
mod ops;
mod restart;
mod runtime;
mod s3;
/// The rule that keeps a key below its prefix, shared with local manifests of batch transform.
pub(crate) use s3::safe_relative;
mod shapes;
mod state;
mod store;
mod training;
mod transform;
mod validate;
mod wire;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use anyhow::Context;
use serde_json::Value;

use artifacts::Artifacts;
use s3::S3;
use state::Api;
use store::Store;
use wire::ApiError;

/// How long a stopping server waits for its jobs to remove their containers and trees.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

/// `modelstage api`.
#[derive(clap::Args, Debug)]
pub struct ApiArgs {
    /// The port of both services (sagemaker and sagemaker-runtime).
    #[arg(long, default_value_t = 8081)]
    pub port: u16,
    /// The address to listen on. The API has no authentication: anything but a loopback address
    /// lets whoever reaches it run code on this machine.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Where the resources are kept (an SQLite database); default: modelstage/api under the
    /// user's data folder ($XDG_DATA_HOME, else ~/.local/share).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The account in ARNs.
    #[arg(long, default_value = "000000000000", value_name = "ID")]
    pub account: String,
    /// The largest control-plane request body, in KiB.
    #[arg(long, default_value_t = 1024, value_name = "KIB")]
    pub max_request_kb: usize,
    /// The largest invocation request or response body, in MB (the service's limit is 6).
    #[arg(long, default_value_t = 6, value_name = "MB")]
    pub max_payload_mb: usize,
    /// Seconds a container has to answer an invocation (the service's limit is 60).
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub invocation_timeout: u64,
    /// Jobs and endpoints running at once (each runs processes or containers of its own); one
    /// more is refused with ResourceLimitExceeded.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub max_running: usize,
    /// The most one job or model start downloads from S3, in MB.
    #[arg(long, default_value_t = 10240, value_name = "MB")]
    pub max_s3_mb: u64,
    /// Connections served at once, per worker.
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub max_connections: usize,
    /// Seconds a client has to send a whole request body; past it the request is refused with
    /// 408 and its connection closed (as `MODELSTAGE_BODY_TIMEOUT_SECS` bounds `modelstage serve`).
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub body_timeout: u64,
}

/// Runs the server until Ctrl-C or SIGTERM.
pub fn run(args: ApiArgs) -> Result<(), crate::CommandError> {
    modelstage_runtime::logging::init("modelstage");
    serve(args).map_err(|e| crate::CommandError::failed("api", e))
}

fn default_state_dir() -> anyhow::Result<PathBuf> {
    let data = match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").context("give --state-dir: HOME is not set")?)
            .join(".local/share"),
    };
    Ok(data.join("modelstage/api"))
}

fn serve(args: ApiArgs) -> anyhow::Result<()> {
    if !args.account.chars().all(|c| c.is_ascii_digit()) || args.account.len() != 12 {
        anyhow::bail!("--account must be 12 digits, got {}", wire::quote(&args.account));
    }
    let state_dir = match &args.state_dir {
        Some(dir) => dir.clone(),
        None => default_state_dir()?,
    };
    let store = Store::open(&state_dir)?;
    let artifacts = Artifacts::new(
        S3::from_env()?,
        &state_dir,
        args.max_s3_mb.saturating_mul(1_000_000),
    );
    artifacts
        .clear()
        .with_context(|| format!("cannot clear the staging folder in {}", state_dir.display()))?;
    let s3_endpoint = artifacts.s3.endpoint().to_string();
    let api = Arc::new(Api::new(store, args.account.clone(), args.max_running, artifacts));
    restart::recover(&api).map_err(|e| anyhow::anyhow!("{}", e.message))?;

    let limits = runtime::Limits {
        max_payload: args.max_payload_mb.saturating_mul(1_000_000),
        timeout: Duration::from_secs(args.invocation_timeout),
        body_timeout: Duration::from_secs(args.body_timeout.max(1)),
    };
    let control_limits = ControlLimits {
        max_request: args.max_request_kb.saturating_mul(1024),
        body_timeout: limits.body_timeout,
    };
    let shared = web::Data::new(Arc::clone(&api));
    let system = actix_web::rt::System::new();
    system.block_on(async {
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .app_data(web::Data::new(limits))
                .app_data(web::Data::new(runtime::client(limits)))
                .app_data(web::Data::new(control_limits))
                .service(web::resource("/").route(web::post().to(control)))
                // The runtime takes every other path: it matches its own
                // (`/endpoints/{name}/invocations`) without the router's regular expression, which
                // would run on every invocation.
                .default_service(web::route().to(runtime::invoke))
        })
        .workers(http_threads())
        .max_connections(args.max_connections)
        .shutdown_timeout(5)
        .bind((args.bind, args.port))
        .with_context(|| format!("cannot listen on {}:{}", args.bind, args.port))?;
        let address = server
            .addrs()
            .first()
            .map_or_else(|| format!("{}:{}", args.bind, args.port), ToString::to_string);
        if !args.bind.is_loopback() {
            log::warn!(
                "modelstage api listens on {}: it has no authentication, and whoever reaches it can \
                 run code on this machine; bind 127.0.0.1 unless that is what you want",
                args.bind
            );
        }
        log::info!("SigV4 signatures are accepted and NOT verified: modelstage api has no authentication");
        log::info!("state in {}; S3 through {s3_endpoint}", state_dir.display());
        eprintln!("modelstage api: listening on http://{address}");
        server.run().await.context("the server failed")
    })?;
    eprintln!("modelstage api: stopping");
    api.shut_down();
    let deadline = Instant::now() + SHUTDOWN_GRACE;
    while api.jobs_running() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// The server's HTTP threads: a hosted endpoint's workers open one lane to each (see
/// `deploy::hosted`).
fn http_threads() -> usize {
    modelstage_contract::settings::http_threads()
}

/// The control plane's bounds on a request body.
#[derive(Debug, Clone, Copy)]
struct ControlLimits {
    max_request: usize,
    body_timeout: Duration,
}

/// `POST /`: one control-plane operation.
async fn control(
    request: HttpRequest,
    payload: web::Payload,
    api: web::Data<Arc<Api>>,
    limits: web::Data<ControlLimits>,
) -> HttpResponse {
    let body = match wire::read_body(&request, payload, limits.max_request, limits.body_timeout).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let answer = wire::operation(request.headers()).and_then(|operation| {
        let value: Value = if body.is_empty() {
            Value::Object(Default::default())
        } else {
            serde_json::from_slice(&body)
                .map_err(|e| ApiError::validation(format!("the request body is not JSON: {e}")))?
        };
        if !value.is_object() {
            return Err(ApiError::validation("the request body must be a JSON object"));
        }
        let region = wire::region(request.headers());
        let result = ops::call(&api, &region, &operation, &value);
        log::debug!("{operation}: {}", if result.is_ok() { "ok" } else { "refused" });
        if let Err(e) = &result {
            // The message quotes values from the request; escaping keeps each on one log line.
            log::info!("{operation}: {} {}", e.kind, e.message.escape_debug());
        }
        result
    });
    match answer {
        Ok(body) => wire::ok(&body),
        Err(e) => e.response(),
    }
}
