//! The middleware that records every HTTP request: its count by route,
//! stage and status, its latency, its body sizes, and the requests in
//! flight. The route is the endpoint's route (`/v2/models/{name}/infer`,
//! not the path), so clients cannot grow the number of series; other paths
//! share `unmatched`.

use std::cell::RefCell;
use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::CONTENT_LENGTH;
use actix_web::Error;

use actix_web::HttpMessage;
use prometheus_client::metrics::counter::Counter;

use super::sharded::Shard;
use super::{get, Metrics, RequestLabels, Route, RouteLabels};

/// The fixed routes of the endpoint: a label without an allocation or a
/// walk of the router's patterns per request. Paths with placeholders set
/// their label themselves ([`Route`]); any other path is `unmatched`.
const FIXED_ROUTES: [&str; 8] = [
    "/invocations",
    "/models",
    "/ping",
    "/execution-parameters",
    "/metrics",
    "/v2",
    "/v2/health/live",
    "/v2/health/ready",
];

fn fixed_route(path: &str) -> &'static str {
    FIXED_ROUTES
        .iter()
        .copied()
        .find(|r| *r == path)
        .unwrap_or("unmatched")
}

/// One route's series, taken out of the families once per HTTP thread (a
/// counter is a shared handle, a histogram this thread's own shard), so that
/// a request takes no lock and hashes no labels.
struct Series {
    labels: RouteLabels,
    duration: Arc<Shard>,
    request_size: Arc<Shard>,
    response_size: Arc<Shard>,
    requests: Vec<(u16, Counter)>,
}

impl Series {
    /// The request counter of a status.
    fn requests(&mut self, metrics: &Metrics, labels: RouteLabels, status: u16) -> &Counter {
        let at = match self.requests.iter().position(|(s, _)| *s == status) {
            Some(at) => at,
            None => {
                let counter = metrics
                    .requests
                    .get_or_create(&RequestLabels {
                        route: labels.route,
                        stage: labels.stage,
                        status,
                    })
                    .clone();
                self.requests.push((status, counter));
                self.requests.len() - 1
            }
        };
        &self.requests[at].1
    }
}

/// This thread's series, by route (a few: the endpoint's routes).
#[derive(Default)]
struct Handles(Vec<Series>);

impl Handles {
    fn series(&mut self, metrics: &Metrics, labels: RouteLabels) -> &mut Series {
        let at = match self.0.iter().position(|s| s.labels == labels) {
            Some(at) => at,
            None => {
                self.0.push(Series {
                    labels,
                    duration: metrics.duration.get_or_create(&labels).shard(),
                    request_size: metrics.request_size.get_or_create(&labels).shard(),
                    response_size: metrics.response_size.get_or_create(&labels).shard(),
                    requests: Vec::new(),
                });
                self.0.len() - 1
            }
        };
        &mut self.0[at]
    }
}

thread_local! {
    static HANDLES: RefCell<Handles> = RefCell::new(Handles::default());
}

/// Wraps the app: `App::new().wrap(Record)`.
pub(crate) struct Record;

impl<S, B> Transform<S, ServiceRequest> for Record
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Transform = RecordService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RecordService { service }))
    }
}

pub(crate) struct RecordService<S> {
    service: S,
}

/// Counts a request in flight until dropped, so a request whose
/// connection broke is not counted forever.
struct InFlight(&'static Metrics);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.dec();
    }
}

impl<S, B> Service<ServiceRequest> for RecordService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>>>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let Some(metrics) = get() else {
            return Box::pin(self.service.call(req));
        };
        let started = Instant::now();
        let request_size = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        metrics.in_flight.inc();
        let in_flight = InFlight(metrics);
        let answer = self.service.call(req);
        Box::pin(async move {
            let response = answer.await?;
            drop(in_flight);
            let set = response.request().extensions().get::<Route>().copied();
            let route = match set {
                Some(Route(route)) => route,
                None => fixed_route(response.request().path()),
            };
            let status = response.status().as_u16();
            let response_size = match response.response().body().size() {
                BodySize::Sized(n) => n,
                BodySize::None | BodySize::Stream => 0,
            };
            let labels = RouteLabels {
                route,
                stage: metrics.stage(),
            };
            HANDLES.with(|handles| {
                let mut handles = handles.borrow_mut();
                let series = handles.series(metrics, labels);
                series.duration.observe(started.elapsed().as_secs_f64());
                series.request_size.observe(request_size as f64);
                series.response_size.observe(response_size as f64);
                series.requests(metrics, labels, status).inc();
            });
            Ok(response)
        })
    }
}
