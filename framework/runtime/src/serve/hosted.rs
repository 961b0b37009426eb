//! An endpoint hosted inside another HTTP server: `modelstage api` answers a lone stage library's
//! invocations, and a pipeline's router each stage library container's, on their own HTTP
//! threads, which drive the workers' lanes as `modelstage serve`'s threads do. The worker pool, the edge's rules and the answers are `serve`'s
//! (docs/contract.md (Serving)); what goes is the second HTTP hop, a `serve` process between the
//! host and the workers.
//!
//! Isolation is the same as `serve`'s: the stage runs in worker processes, so an abort or a hang
//! in it costs the requests on that worker, never the host.
//!
//! Threading and ownership:
//! - [`Hosted::start`] blocks until a worker has loaded the model (call it off the host's HTTP
//!   threads).
//! - [`Hosted::invoke`] runs on one of the host's HTTP threads, of which there are at most
//!   [`HostedSpec::lanes`]: each worker opens one lane per HTTP thread, and a thread's lanes are
//!   its own (see `lane`).
//! - Dropping the [`Hosted`] stops its workers; the host keeps it while requests run on it.

use std::fmt;
use std::path::PathBuf;
use std::process::{ChildStderr, ChildStdout};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::header::HeaderMap;
use actix_web::web::Bytes;
use actix_web::HttpResponse;

use super::config::{Vars, WorkerPlan};
use super::edge::{request_id, EdgeRules, Invocation};
use super::lane::Lanes;
use super::pool::Pool;
use super::{configure, http, settings, ServeArgs, ServeError};

/// What a hosted endpoint serves, and how.
#[derive(Debug, Clone)]
pub struct HostedSpec {
    /// The stage library.
    pub library: PathBuf,
    /// The folder its model is loaded from.
    pub model_dir: PathBuf,
    /// The endpoint's variables (`SAGEMAKER_*`, `MODELSTAGE_*`, the container's `Environment`),
    /// over this process's environment, as a container's go over what it inherits; its workers
    /// get them too.
    pub env: Vec<(String, String)>,
    /// The host's HTTP threads: the lanes each worker opens.
    pub lanes: usize,
    /// How long the first worker has to load the model.
    pub startup_timeout: Duration,
    /// Where the workers' output goes; `None` leaves it on the host's.
    pub output: Option<WorkerOutput>,
}

/// Takes each worker's stdout and stderr as the worker starts (a host that shows them under the
/// endpoint's name, as it would a container's log). Called on the thread that starts the worker:
/// it must hand the streams on (to threads that read them) and return.
#[derive(Clone)]
pub struct WorkerOutput(pub Arc<dyn Fn(ChildStdout, ChildStderr) + Send + Sync>);

impl fmt::Debug for WorkerOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WorkerOutput")
    }
}

/// How often a start waiting for a model sees whether it was told to stop.
const STOP_CHECK: Duration = Duration::from_millis(50);

/// A running hosted endpoint.
pub struct Hosted {
    state: http::State,
    rules: EdgeRules,
}

impl Hosted {
    /// Starts the workers and waits until one has loaded the model; an error says why none
    /// could, as `modelstage serve` would have (the workers are stopped then).
    pub fn start(spec: HostedSpec) -> Result<Hosted, ServeError> {
        Hosted::start_unless(spec, &AtomicBool::new(false))
    }

    /// [`Hosted::start`], given up (and the workers stopped) as soon as `stop` is set: a host
    /// that is told to stop while a model loads stops at once.
    pub fn start_unless(spec: HostedSpec, stop: &AtomicBool) -> Result<Hosted, ServeError> {
        let vars = Vars::with(spec.env);
        let args = ServeArgs {
            stages: vec![spec.library],
            model_dirs: vec![spec.model_dir],
            ..ServeArgs::default()
        };
        let settings = settings(&args, &vars, spec.lanes)?;
        let plan = WorkerPlan {
            stages: settings.stages.clone(),
            threads: settings.shared_threads,
            lanes: spec.lanes.max(1),
            multi_model: false,
        };
        let pool =
            Pool::start(settings.workers, &plan, None, &vars, spec.output).map_err(ServeError::Setup)?;
        // Waited for in short steps, to see `stop` between them.
        let deadline = Instant::now() + spec.startup_timeout;
        let ready = || loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if pool.wait_ready(left.min(STOP_CHECK))? {
                return Ok(true);
            }
            if left.is_zero() || stop.load(Ordering::SeqCst) {
                return Ok(false);
            }
        };
        let ready = pool.described().and_then(|described| Ok((described, ready()?)));
        let described = match ready {
            Ok((described, true)) => described,
            Ok((_, false)) => {
                pool.shutdown();
                let stage = pool.label().to_string();
                return Err(match stop.load(Ordering::SeqCst) {
                    true => ServeError::Stopped { stage },
                    false => ServeError::NotReady {
                        stage,
                        seconds: spec.startup_timeout.as_secs(),
                    },
                });
            }
            Err(e) => {
                pool.shutdown();
                return Err(e.into());
            }
        };
        let config = configure(settings, &described);
        let label = pool.label().to_string();
        // No bound on connections here: the host bounds its own.
        let rules = EdgeRules::new(
            label.clone(),
            Some(config.default_accept.clone()),
            config.max_payload_in_mb,
            config.edge.clone(),
            usize::MAX,
        );
        log::info!(
            "hosting {label} with {} worker(s) x {} thread(s), timeout {} s, max payload {} MB",
            config.workers,
            config.threads_per_worker,
            config.timeout.as_secs(),
            config.max_payload_in_mb
        );
        let execution_parameters_json = serde_json::to_string(&config.execution).expect("serializes");
        Ok(Hosted {
            state: http::State {
                config,
                pool,
                stage_label: label,
                execution_parameters_json,
            },
            rules,
        })
    }

    /// How errors and logs name the stage.
    pub fn label(&self) -> &str {
        &self.state.stage_label
    }

    /// Whether a worker can take requests, as `modelstage serve`'s `GET /ping` says.
    pub fn is_ready(&self) -> bool {
        self.state.pool.is_ready()
    }

    /// The body of `modelstage serve`'s `GET /execution-parameters` (JSON).
    pub fn execution_parameters(&self) -> &str {
        &self.state.execution_parameters_json
    }

    /// Answers one `POST /invocations` with the head `headers`, whose body the host has read, as
    /// `modelstage serve` would answer it. Runs on one of the host's HTTP threads (see the
    /// module's threading).
    pub async fn invoke(&self, headers: &HeaderMap, body: Bytes) -> HttpResponse {
        let request_id = request_id(headers);
        match Invocation::of_body(headers, body, &self.rules, request_id) {
            Ok(invocation) => http::invoke(invocation, &self.state, &Lanes::of_this_thread(), None).await,
            Err(refused) => (*refused).respond(),
        }
    }
}

impl fmt::Debug for Hosted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hosted")
            .field("label", &self.state.stage_label)
            .finish_non_exhaustive()
    }
}

impl Drop for Hosted {
    fn drop(&mut self) {
        self.state.pool.shutdown();
    }
}
