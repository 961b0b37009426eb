//! Prometheus metrics of `modelstage serve`, exposed at `GET /metrics` on the
//! serving port (and on `MODELSTAGE_METRICS_PORT` when set) in the
//! OpenMetrics text format, which Prometheus scrapes. `MODELSTAGE_METRICS=off`
//! turns them off (nothing is recorded and `/metrics` answers 404).
//!
//! The HTTP side is recorded by one middleware (`record`), the workers' life
//! by the pool ([`worker_started`], [`worker_crashed`], [`worker_timed_out`]),
//! and the time in the stage's hooks, which the worker measures and sends
//! with each answer, by the pool too ([`stage_answered`]). A multi-model
//! endpoint's table of models records its loads, unloads and loaded models
//! (`mme`).
//! Names follow Prometheus' conventions: base units (`_seconds`, `_bytes`),
//! `_total` on counters, `# HELP` on every family.

mod mme;
mod record;
mod sharded;

use std::sync::OnceLock;
use std::time::Duration;

use actix_web::http::header::CONTENT_TYPE;
use actix_web::HttpResponse;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

pub(super) use mme::{
    model_loaded, model_not_loaded, model_unloaded, models_loaded, LoadOutcome, UnloadReason,
};
pub(super) use record::Record;
use sharded::Sharded;

use super::config::{env_var, ConfigError};

/// The variable that turns the metrics off.
pub(super) const METRICS_VAR: &str = "MODELSTAGE_METRICS";
/// The variable of the extra port that serves only `/metrics`.
pub(super) const METRICS_PORT_VAR: &str = "MODELSTAGE_METRICS_PORT";

/// The route label a handler sets for a path it matched by itself (the
/// request extension the middleware reads before the matched pattern).
#[derive(Clone, Copy, Debug)]
pub(super) struct Route(pub &'static str);

/// `route`, `stage` and `status` of an answered request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct RequestLabels {
    pub route: &'static str,
    pub stage: &'static str,
    pub status: u16,
}

/// `route` and `stage`.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct RouteLabels {
    pub route: &'static str,
    pub stage: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct StageLabels {
    pub stage: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct CrashLabels {
    pub stage: &'static str,
    /// `SIGABRT`, `SIGSEGV`, …, or `exit` for a worker that exited.
    pub signal: &'static str,
}

pub(crate) type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;
/// The request path's histograms: one shard per HTTP thread (`sharded`).
pub(crate) type ShardedHistograms<L> = Family<L, Sharded, fn() -> Sharded>;

/// Every metric, registered once.
pub(super) struct Metrics {
    registry: Registry,
    /// The stage's label, known once the first worker described the
    /// stages (before any model loads).
    stage: OnceLock<&'static str>,
    pub requests: Family<RequestLabels, Counter>,
    pub duration: ShardedHistograms<RouteLabels>,
    pub request_size: ShardedHistograms<RouteLabels>,
    pub response_size: ShardedHistograms<RouteLabels>,
    pub in_flight: Gauge,
    pub worker_starts: Family<StageLabels, Counter>,
    pub worker_crashes: Family<CrashLabels, Counter>,
    pub worker_timeouts: Family<StageLabels, Counter>,
    pub model_load: Histograms<StageLabels>,
    pub hooks: Histograms<StageLabels>,
    /// The one series of `hooks` (every series carries the one stage
    /// label), resolved once rather than looked up in the family per answer.
    stage_hooks: OnceLock<Histogram>,
    /// A multi-model endpoint's families; `None` on other endpoints, which
    /// do not show them.
    pub mme: Option<mme::MmeMetrics>,
}

/// 0.5 ms to about 65 s.
fn latency_bounds() -> impl Iterator<Item = f64> {
    exponential_buckets(0.0005, 2.0, 18)
}

fn latency_buckets() -> Histogram {
    Histogram::new(latency_bounds())
}

fn latency_sharded() -> Sharded {
    Sharded::new(latency_bounds())
}

fn size_sharded() -> Sharded {
    // 64 bytes to 64 MiB.
    Sharded::new(exponential_buckets(64.0, 4.0, 11))
}

pub(crate) fn load_buckets() -> Histogram {
    // 10 ms to about 10 minutes.
    Histogram::new(exponential_buckets(0.01, 3.0, 11))
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// Whether `MODELSTAGE_METRICS` leaves the metrics on (the default).
pub(super) fn enabled() -> bool {
    !matches!(
        env_var(METRICS_VAR)
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref(),
        Some("off" | "0" | "false" | "no")
    )
}

/// `MODELSTAGE_METRICS_PORT`, or an error naming a value that is not a port.
pub(super) fn port() -> Result<Option<u16>, ConfigError> {
    match env_var(METRICS_PORT_VAR) {
        None => Ok(None),
        Some(v) => match v.trim().parse() {
            Ok(port) => Ok(Some(port)),
            Err(_) => Err(ConfigError::NotAPort {
                name: METRICS_PORT_VAR,
                value: v,
            }),
        },
    }
}

/// Registers the metrics (before the workers start); `multi_model` adds
/// the families of a multi-model endpoint.
pub(super) fn init(multi_model: bool) {
    METRICS.get_or_init(|| Metrics::new(multi_model));
}

/// Sets the `stage` label every series carries (the first call wins), and
/// starts the worker counters at 0 so that a scraper sees the first increase.
pub(super) fn set_stage(label: &str) {
    if let Some(m) = get() {
        let stage = m.stage_of(label);
        let labels = StageLabels { stage };
        m.worker_starts.get_or_create(&labels).inc_by(0);
        m.worker_timeouts.get_or_create(&labels).inc_by(0);
        if let Some(mme) = &m.mme {
            mme.start_at_zero(&labels);
        }
    }
}

/// The metrics, when on and initialised.
pub(super) fn get() -> Option<&'static Metrics> {
    METRICS.get()
}

impl Metrics {
    /// The label, set once (leaked once: it lives as long as the process).
    fn stage_of(&self, label: &str) -> &'static str {
        self.stage
            .get_or_init(|| Box::leak(label.to_string().into_boxed_str()))
    }

    /// The label for a request's series: empty before the stages are described.
    fn stage(&self) -> &'static str {
        self.stage.get().copied().unwrap_or("")
    }

    fn new(multi_model: bool) -> Metrics {
        let mut registry = Registry::with_prefix("modelstage");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route, stage and status",
            requests.clone(),
        );
        let duration =
            ShardedHistograms::<RouteLabels>::new_with_constructor(latency_sharded as fn() -> Sharded);
        registry.register_with_unit(
            "http_request_duration",
            "Time from a request's arrival to its answer in the server, by route and stage",
            Unit::Seconds,
            duration.clone(),
        );
        let request_size =
            ShardedHistograms::<RouteLabels>::new_with_constructor(size_sharded as fn() -> Sharded);
        registry.register_with_unit(
            "http_request_size",
            "Request body sizes as declared in Content-Length, by route and stage",
            Unit::Bytes,
            request_size.clone(),
        );
        let response_size =
            ShardedHistograms::<RouteLabels>::new_with_constructor(size_sharded as fn() -> Sharded);
        registry.register_with_unit(
            "http_response_size",
            "Response body sizes, by route and stage",
            Unit::Bytes,
            response_size.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "http_requests_in_flight",
            "Requests received and not yet answered",
            in_flight.clone(),
        );
        let worker_starts = Family::<StageLabels, Counter>::default();
        registry.register(
            "worker_starts",
            "Worker processes that loaded the model and took requests",
            worker_starts.clone(),
        );
        let worker_crashes = Family::<CrashLabels, Counter>::default();
        registry.register(
            "worker_crashes",
            "Worker processes that ended on their own, by the signal that ended them (exit: they exited)",
            worker_crashes.clone(),
        );
        let worker_timeouts = Family::<StageLabels, Counter>::default();
        registry.register(
            "worker_timeouts",
            "Worker processes retired because a request on them passed SAGEMAKER_MODEL_SERVER_TIMEOUT",
            worker_timeouts.clone(),
        );
        let model_load = Histograms::<StageLabels>::new_with_constructor(load_buckets as fn() -> Histogram);
        registry.register_with_unit(
            "model_load_duration",
            "Time from starting a worker process to its model loaded and its lanes open",
            Unit::Seconds,
            model_load.clone(),
        );
        let hooks = Histograms::<StageLabels>::new_with_constructor(latency_buckets as fn() -> Histogram);
        registry.register_with_unit(
            "stage_duration",
            "Time a worker spent in the stage's hooks for one request (every stage of a fused pipeline), as the worker measured it",
            Unit::Seconds,
            hooks.clone(),
        );
        let mme = multi_model.then(|| mme::MmeMetrics::register(&mut registry));
        Metrics {
            registry,
            stage: OnceLock::new(),
            requests,
            duration,
            request_size,
            response_size,
            in_flight,
            worker_starts,
            worker_crashes,
            worker_timeouts,
            model_load,
            hooks,
            stage_hooks: OnceLock::new(),
            mme,
        }
    }

    /// The exposition text.
    pub(super) fn encode(&self) -> String {
        let mut out = String::with_capacity(8192);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// A worker of the stage `label` loaded its model after `load`.
pub(super) fn worker_started(label: &str, load: Duration) {
    if let Some(m) = get() {
        let stage = StageLabels {
            stage: m.stage_of(label),
        };
        m.worker_starts.get_or_create(&stage).inc();
        m.model_load.get_or_create(&stage).observe(load.as_secs_f64());
    }
}

/// A worker ended on its own: killed by `signal` (its name), or exited.
pub(super) fn worker_crashed(label: &str, signal: Option<&'static str>) {
    if let Some(m) = get() {
        let labels = CrashLabels {
            stage: m.stage_of(label),
            signal: signal.unwrap_or("exit"),
        };
        m.worker_crashes.get_or_create(&labels).inc();
    }
}

/// A worker answered a request after `hooks` in the stage's hooks.
pub(super) fn stage_answered(label: &str, hooks: Duration) {
    if let Some(m) = get() {
        m.stage_hooks
            .get_or_init(|| {
                let stage = StageLabels {
                    stage: m.stage_of(label),
                };
                m.hooks.get_or_create(&stage).clone()
            })
            .observe(hooks.as_secs_f64());
    }
}

/// A worker was retired for a request past the timeout.
pub(super) fn worker_timed_out(label: &str) {
    if let Some(m) = get() {
        m.worker_timeouts
            .get_or_create(&StageLabels {
                stage: m.stage_of(label),
            })
            .inc();
    }
}

/// `GET /metrics`.
pub(super) async fn exposition() -> HttpResponse {
    match get() {
        Some(m) => HttpResponse::Ok()
            .insert_header((
                CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            ))
            .body(m.encode()),
        None => HttpResponse::NotFound()
            .insert_header((CONTENT_TYPE, "application/json"))
            .body(
                serde_json::json!({
                    "error": "NotFound",
                    "status": 404,
                    "message": format!("metrics are off ({METRICS_VAR}=off)"),
                })
                .to_string(),
            ),
    }
}
