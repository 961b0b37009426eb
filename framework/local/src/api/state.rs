//! What `modelstage api` holds while it runs: the [`Store`] of resources, the endpoints that are
//! up (their containers stop when the last reference is dropped) and the stop flags of running
//! jobs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use actix_web::http::header::HeaderValue;
use actix_web::http::Uri;
use serde_json::{json, Map, Value};

use super::artifacts::Artifacts;
use super::multi::MultiModels;
use super::store::{Kind, Store};
use super::wire::{now, quote, ApiError};
use crate::container_client;
use crate::deploy::hosted::HostedModel;
use crate::deploy::RunningEndpoint;
use crate::fit::Stop;

/// How many characters of an error a `FailureReason` keeps (the service's limit is 1024).
pub const FAILURE_REASON_CHARS: usize = 1024;

/// An endpoint that is up: its production variants, each a model of its own.
pub struct LiveEndpoint {
    pub variants: Vec<LiveVariant>,
    /// Requests routed by weight so far: the next one's place in the weighted sequence.
    routed: AtomicU64,
}

/// One production variant that is up.
pub struct LiveVariant {
    pub name: String,
    /// The name as the response header that reports it, made once.
    pub name_header: HeaderValue,
    /// How its invocations are answered.
    pub route: Route,
    /// Its share of the requests that name no variant (`InitialVariantWeight`, then
    /// `DesiredWeight`): an `f64`'s bits, so that a weight update needs no lock.
    weight: AtomicU64,
    /// The target models of a multi-model variant. (Declared after `route`, which holds the
    /// containers that read their folder: they stop first.)
    pub multi: Option<Arc<MultiModels>>,
}

/// How a variant's invocations are answered.
pub enum Route {
    /// On the API's own HTTP threads, which drive the workers of a lone stage library directly
    /// (see `deploy::hosted`): one HTTP hop, not two.
    Hosted(HostedModel),
    /// Forwarded to the containers `deploy` started (Docker images, pipelines, multi-model).
    Forward(Forward),
}

/// The containers of a variant the API forwards to.
pub struct Forward {
    /// Where its containers answer `/invocations`.
    pub url: String,
    /// `<url>/invocations`, parsed once.
    pub invocations: Uri,
    /// Keeps the containers running.
    _running: RunningEndpoint,
}

impl Route {
    /// Forwarded to the containers of `running`.
    pub fn forward(running: RunningEndpoint) -> anyhow::Result<Route> {
        let url = running.url().to_string();
        Ok(Route::Forward(Forward {
            invocations: container_client::uri(&url, None, "/invocations")?,
            url,
            _running: running,
        }))
    }

    /// Where the variant is served, for the log.
    pub fn describe(&self) -> String {
        match self {
            Route::Hosted(model) => format!("this process (stage {})", quote(model.label())),
            Route::Forward(forward) => forward.url.clone(),
        }
    }
}

impl LiveVariant {
    pub fn new(
        name: String,
        weight: f64,
        route: Route,
        multi: Option<MultiModels>,
    ) -> anyhow::Result<LiveVariant> {
        Ok(LiveVariant {
            // A variant name is a resource name: a valid header value.
            name_header: HeaderValue::from_str(&name)?,
            name,
            route,
            weight: AtomicU64::new(weight.to_bits()),
            multi: multi.map(Arc::new),
        })
    }
}

impl LiveVariant {
    pub fn weight(&self) -> f64 {
        f64::from_bits(self.weight.load(Ordering::Relaxed))
    }

    /// UpdateEndpointWeightsAndCapacities.
    pub fn set_weight(&self, weight: f64) {
        self.weight.store(weight.to_bits(), Ordering::Relaxed);
    }
}

impl LiveEndpoint {
    pub fn new(variants: Vec<LiveVariant>) -> LiveEndpoint {
        LiveEndpoint {
            variants,
            routed: AtomicU64::new(0),
        }
    }

    /// The variant a request goes to: the one it names (`TargetVariant`), else one chosen by
    /// weight. The choice walks a low-discrepancy sequence (the golden ratio's multiples), so
    /// each variant's share is its weight's share over any run of requests, without a random
    /// number generator on the request path.
    pub fn variant(&self, target: Option<&str>) -> Option<&LiveVariant> {
        if let Some(target) = target {
            return self.variants.iter().find(|v| v.name == target);
        }
        if self.variants.len() == 1 {
            return self.variants.first();
        }
        let total: f64 = self.variants.iter().map(|v| v.weight().max(0.0)).sum();
        if total <= 0.0 {
            return self.variants.first();
        }
        let n = self.routed.fetch_add(1, Ordering::Relaxed);
        let i = weighted(self.variants.iter().map(LiveVariant::weight), total, n);
        self.variants.get(i).or(self.variants.last())
    }
}

/// The index the `n`th request routed by weight goes to: where the `n`th point of the golden
/// ratio's sequence falls among the cumulated weights. Negative weights count as 0.
fn weighted(weights: impl Iterator<Item = f64>, total: f64, n: u64) -> usize {
    let point = (n as f64 * 0.618_033_988_749_895).fract() * total;
    let mut reached = 0.0;
    let mut last = 0;
    for (i, weight) in weights.enumerate() {
        reached += weight.max(0.0);
        if point < reached {
            return i;
        }
        last = i;
    }
    last
}

/// The server's state, shared by the handlers and the job threads.
pub struct Api {
    pub store: Store,
    /// The account in ARNs.
    pub account: String,
    /// How many jobs and endpoints may run at once.
    pub max_running: usize,
    /// S3 and the staging folder of jobs and models whose artifacts are on S3.
    pub artifacts: Artifacts,
    /// Read by every invocation, written when an endpoint comes up or goes.
    endpoints: RwLock<HashMap<String, Arc<LiveEndpoint>>>,
    /// The stop flags of running jobs, by ARN type and name.
    jobs: Mutex<HashMap<(&'static str, String), Stop>>,
    /// Set when the server stops: job threads then leave their jobs as they are, for the next
    /// start to mark them interrupted.
    shutting_down: AtomicBool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Api {
    pub fn new(store: Store, account: String, max_running: usize, artifacts: Artifacts) -> Api {
        Api {
            store,
            account,
            max_running,
            artifacts,
            endpoints: RwLock::default(),
            jobs: Mutex::default(),
            shutting_down: AtomicBool::new(false),
        }
    }

    /// `arn:aws:sagemaker:<region>:<account>:<type>/<name>`, the name in lower case as the
    /// service writes it.
    pub fn arn(&self, region: &str, kind: Kind, name: &str) -> String {
        format!(
            "arn:aws:sagemaker:{region}:{}:{}/{}",
            self.account,
            kind.arn_type(),
            name.to_ascii_lowercase()
        )
    }

    /// A resource's description, or the service's error for a missing one.
    pub fn require(&self, region: &str, kind: Kind, name: &str) -> Result<Value, ApiError> {
        self.store
            .get(kind, name)?
            .ok_or_else(|| missing(kind, &self.arn(region, kind, name)))
    }

    /// Refuses one more job or endpoint when [`max_running`](Api::max_running) of them run:
    /// each runs processes or containers of its own.
    pub fn check_capacity(&self) -> Result<(), ApiError> {
        let endpoints = self
            .store
            .list(Kind::Endpoint)?
            .iter()
            .filter(|d| {
                matches!(
                    d["EndpointStatus"].as_str(),
                    Some("Creating" | "Updating" | "InService")
                )
            })
            .count();
        let running = lock(&self.jobs).len() + endpoints;
        if running >= self.max_running {
            return Err(ApiError::limit(format!(
                "{running} jobs and endpoints run already, the most this server runs at once \
                 (--max-running {}): wait for a job to end or delete an endpoint",
                self.max_running
            )));
        }
        Ok(())
    }

    pub fn live_endpoint(&self, name: &str) -> Option<Arc<LiveEndpoint>> {
        self.endpoints
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    fn live_mut(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<LiveEndpoint>>> {
        self.endpoints.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts an endpoint up (replacing, and so stopping, the one it had).
    pub fn set_live(&self, name: &str, live: LiveEndpoint) {
        let previous = self.live_mut().insert(name.to_string(), Arc::new(live));
        // The previous model stops outside the lock.
        drop(previous);
    }

    /// Takes an endpoint down; its containers stop once no request holds it.
    pub fn take_live(&self, name: &str) -> Option<Arc<LiveEndpoint>> {
        self.live_mut().remove(name)
    }

    /// Registers a running job's stop flag, until [`end_job`](Api::end_job).
    pub fn add_job(&self, kind: Kind, name: &str, stop: Stop) {
        lock(&self.jobs).insert((kind.arn_type(), name.to_string()), stop);
    }

    pub fn end_job(&self, kind: Kind, name: &str) {
        lock(&self.jobs).remove(&(kind.arn_type(), name.to_string()));
    }

    /// Asks a running job to stop (it ends its container, or its mini-batches, and cleans up).
    pub fn stop_job(&self, kind: Kind, name: &str) {
        if let Some(stop) = lock(&self.jobs).get(&(kind.arn_type(), name.to_string())) {
            stop.request(signal_hook::consts::SIGTERM);
        }
    }

    pub fn shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Stops everything this server started: jobs are asked to stop, endpoints are taken down.
    /// Their records stay as they are, for the next start.
    pub fn shut_down(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        for stop in lock(&self.jobs).values() {
            stop.request(signal_hook::consts::SIGTERM);
        }
        let endpoints: Vec<_> = self.live_mut().drain().collect();
        drop(endpoints);
    }

    /// Whether any job still runs (a shutdown waits for them to clean up).
    pub fn jobs_running(&self) -> bool {
        !lock(&self.jobs).is_empty()
    }

    /// Sets a resource's status member (`<Kind>Status`, or `status_member`) and
    /// `LastModifiedTime`, with a `FailureReason` when given. A resource deleted meanwhile is
    /// left deleted.
    pub fn set_status(&self, kind: Kind, name: &str, status: &str, reason: Option<&str>) {
        let member = format!("{}Status", kind.member());
        let result = self.store.update(kind, name, |d| {
            d.insert(member, json!(status));
            d.insert("LastModifiedTime".into(), json!(now()));
            if let Some(reason) = reason {
                d.insert("FailureReason".into(), json!(failure_reason(reason)));
            }
        });
        if let Err(e) = result {
            log::error!(
                "cannot record the status of the {} {}: {}",
                kind.label(),
                quote(name),
                e.message
            );
        }
    }

    /// Changes a description the way [`set_status`](Api::set_status) does, logging a failure of
    /// the database instead of returning it (for job threads, which have no one to answer).
    pub fn record(&self, kind: Kind, name: &str, change: impl FnOnce(&mut Map<String, Value>)) {
        if let Err(e) = self.store.update(kind, name, change) {
            log::error!(
                "cannot record the progress of the {} {}: {}",
                kind.label(),
                quote(name),
                e.message
            );
        }
    }
}

/// The error the service gives for a resource that does not exist.
pub fn missing(kind: Kind, arn: &str) -> ApiError {
    match kind {
        Kind::TrainingJob | Kind::TransformJob => {
            ApiError::validation(format!("Requested resource not found: {} {arn}", kind.label()))
        }
        _ => ApiError::validation(format!("Could not find {} \"{arn}\".", kind.label())),
    }
}

/// The first [`FAILURE_REASON_CHARS`] characters of a failure.
pub fn failure_reason(text: &str) -> String {
    text.chars().take(FAILURE_REASON_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shares(weights: &[f64], requests: u64) -> Vec<usize> {
        let total = weights.iter().sum();
        let mut counts = vec![0; weights.len()];
        for n in 0..requests {
            counts[weighted(weights.iter().copied(), total, n)] += 1;
        }
        counts
    }

    #[test]
    fn requests_are_shared_by_weight() {
        assert_eq!(shares(&[1.0, 3.0], 400), vec![100, 300]);
        let thirds = shares(&[1.0, 1.0, 1.0], 300);
        assert!(thirds.iter().all(|&c| (99..=101).contains(&c)), "{thirds:?}");
        assert_eq!(shares(&[0.0, 2.0], 50), vec![0, 50]);
    }
}
