//! The router of a local endpoint of several containers: what SageMaker's front end does for a
//! model with `Containers`, on the endpoint's port. Its targets ([`Reach`]) are the containers
//! `deploy` started (`http://127.0.0.1:<port>`, and a process's Unix socket, which its requests
//! then go over), stage library containers it hosts itself (their workers driven from its own
//! HTTP threads, as `modelstage serve`'s threads drive them), or endpoints that already run
//! elsewhere (`deploy --upstream`, for Compose and Kubernetes).
//!
//! - `Serial` (an inference pipeline): [`serial`] chains the containers as docs/contract.md (Serial pipelines) says.
//! - `Direct`: [`direct`] sends each request to the container its
//!   `X-Amzn-SageMaker-Target-Container-Hostname` names.
//! - `/ping` is 200 only when every container answers 200 ([`status`]).
//!
//! It runs on its own actix system in a background thread; [`Router::stop`] ends it, and stops
//! the workers of the containers it hosts. It never runs stage code: that runs in each
//! container's own processes.

mod direct;
mod hop;
mod inbound;
pub(crate) mod multi;
mod serial;
mod status;

use std::net::{IpAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::http::uri::InvalidUri;
use actix_web::http::{Method, Uri};
use actix_web::{web, App};
use anyhow::{anyhow, Context};

use modelstage_runtime::serve::connections::{raise_open_file_limit, Budget};
use modelstage_runtime::serve::hosted::Hosted;
use modelstage_runtime::serve::server::{self, ServerOptions};
use modelstage_runtime::serve::{EdgeLimits, EdgeRules};

use super::request::Mode;
use crate::container_client::{self, ContainerClient, Socket};

/// One container behind the router.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub reach: Reach,
}

/// How the router reaches a container.
#[derive(Debug, Clone)]
pub enum Reach {
    /// A server of its own: a process, a Docker container or an endpoint elsewhere.
    Http {
        /// `http://host:port`, with no `/` at the end; the routes are appended to it.
        base_url: String,
        /// The Unix socket the container also listens on (`MODELSTAGE_UNIX_SOCKET`, a process on
        /// this machine): the router's requests go over it instead of `base_url`.
        socket: Option<Socket>,
        /// `/invocations` on it, made once: the route every request takes.
        invocations: Uri,
    },
    /// A stage library hosted on the router's own HTTP threads, its workers processes of its own
    /// (see `deploy::hosted`).
    Hosted(Arc<Hosted>),
}

impl Target {
    /// A container at `base_url`, and on `socket` when it listens on one; an error when they make
    /// no URL.
    pub fn new(name: String, base_url: String, socket: Option<PathBuf>) -> Result<Target, InvalidUri> {
        let socket = socket.map(Socket::new);
        let invocations = container_client::uri(&base_url, socket.as_ref(), "/invocations")?;
        Ok(Target {
            name,
            reach: Reach::Http {
                base_url,
                socket,
                invocations,
            },
        })
    }

    /// A container on a port of this machine, and on `socket` when it listens on one.
    pub fn local(name: impl Into<String>, port: u16, socket: Option<PathBuf>) -> Result<Target, InvalidUri> {
        Target::new(name.into(), format!("http://127.0.0.1:{port}"), socket)
    }

    /// A stage library container hosted on the router's threads.
    pub fn hosted(name: impl Into<String>, endpoint: Arc<Hosted>) -> Target {
        Target {
            name: name.into(),
            reach: Reach::Hosted(endpoint),
        }
    }

    /// `http://host:port` of a container with a server of its own.
    pub fn base_url(&self) -> Option<&str> {
        match &self.reach {
            Reach::Http { base_url, .. } => Some(base_url),
            Reach::Hosted(_) => None,
        }
    }

    /// `path` at `base_url`, over TCP (an upstream's health checks); empty for a hosted container.
    pub fn url(&self, path: &str) -> String {
        self.base_url()
            .map(|base| format!("{base}{path}"))
            .unwrap_or_default()
    }

    /// A `method` request of the router's to `path`: over the container's socket when it has
    /// one. An error says why there is no such URL.
    pub fn request(
        &self,
        client: &ContainerClient,
        method: Method,
        path: &str,
    ) -> Result<awc::ClientRequest, String> {
        let Reach::Http {
            base_url,
            socket,
            invocations,
        } = &self.reach
        else {
            return Err(format!("{} is hosted in the router and has no URL", self.name));
        };
        let uri = if path == "/invocations" {
            invocations.clone()
        } else {
            container_client::uri(base_url, socket.as_ref(), path).map_err(|e| format!("invalid URL: {e}"))?
        };
        Ok(client.request(method, uri))
    }
}

/// What the router routes to, and how.
#[derive(Debug)]
pub struct RouterConfig {
    /// `Serial` or `Direct`.
    pub mode: Mode,
    pub targets: Vec<Target>,
    /// `container-1 -> container-2`: names the endpoint in its own errors, as a fused server does.
    pub label: String,
    /// How long one container may take to answer: its own `SAGEMAKER_MODEL_SERVER_TIMEOUT` answers
    /// first; this only catches a container that does not answer at all.
    pub hop_timeout: Duration,
    /// The request size limit of a serial pipeline: the first container's `MaxPayloadInMB`
    /// (0: none), until the first container is up (see [`Router::set_max_payload_in_mb`]).
    max_payload_in_mb: u64,
    /// The models of a multi-model endpoint ([`Mode::MultiModel`]).
    models: Option<multi::Models>,
}

impl RouterConfig {
    pub fn new(
        mode: Mode,
        targets: Vec<Target>,
        label: String,
        hop_timeout: Duration,
        max_payload_in_mb: u64,
    ) -> Self {
        RouterConfig {
            mode,
            targets,
            label,
            hop_timeout,
            max_payload_in_mb,
            models: None,
        }
    }

    /// The models a multi-model endpoint loads on first use.
    pub fn with_models(mut self, models: multi::Models) -> Self {
        self.models = Some(models);
        self
    }
}

/// A running router.
pub struct Router {
    pub port: u16,
    config: Arc<RouterConfig>,
    /// The edge's rules, shared with the server threads.
    rules: web::Data<EdgeRules>,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
}

impl Router {
    /// Binds `port` (0: any free port) on `address` and starts answering.
    pub fn start(
        config: RouterConfig,
        address: IpAddr,
        port: u16,
        http_threads: usize,
    ) -> anyhow::Result<Router> {
        let listener = TcpListener::bind((address, port))
            .with_context(|| format!("cannot listen on {address} port {port} for the endpoint"))?;
        let port = listener.local_addr()?.port();
        let config = Arc::new(config);
        // The same bounds on clients as `modelstage serve` (docs/contract.md, "Bounds on clients").
        let edge = EdgeLimits::read().map_err(|e| anyhow!(e))?;
        // Each request in flight holds a connection in and one out to a container.
        let budget = Budget::new(edge.max_connections, raise_open_file_limit() / 2, 0);
        // Each container enforces its own payload limit in Direct mode and behind a multi-model
        // router; the router only bounds what it reads.
        let max_payload_in_mb = match config.mode {
            Mode::Direct | Mode::MultiModel => 0,
            Mode::Serial | Mode::Single => config.max_payload_in_mb,
        };
        // The router passes each request's head on as the client sent it (no default Accept):
        // each container applies its own defaults.
        let rules = web::Data::new(EdgeRules::new(
            config.label.clone(),
            None,
            max_payload_in_mb,
            edge.clone(),
            budget.invocations,
        ));
        let shared_rules = rules.clone();
        let shared = web::Data::from(Arc::clone(&config));
        let timeout = config.hop_timeout;
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("router".into())
            .spawn(move || {
                let served = actix_web::rt::System::new().block_on(async move {
                    let options = ServerOptions {
                        http_threads: http_threads.max(1),
                        max_connections_per_thread: budget.per_thread(http_threads),
                        header_timeout: edge.header_timeout,
                        shutdown_timeout: 10,
                        signals: false,
                    };
                    let server = server::start(listener, None, options, move || {
                        // One client per server thread: awc clients are not shared across threads,
                        // and each keeps its own pool of connections to the containers.
                        let client = ContainerClient::new(timeout);
                        App::new()
                            .app_data(shared.clone())
                            .app_data(shared_rules.clone())
                            .app_data(web::Data::new(client))
                            .route("/ping", web::get().to(status::ping))
                            .route("/ping", web::head().to(status::ping))
                            .route("/invocations", web::post().to(invocations))
                            .route("/invocations", web::route().to(status::method_not_allowed))
                            .route(
                                "/execution-parameters",
                                web::get().to(status::execution_parameters),
                            )
                            .default_service(web::route().to(status::not_found))
                    })?;
                    let _ = tx.send(server.handle());
                    server.await
                });
                if let Err(e) = served {
                    log::error!("the endpoint router stopped: {e}");
                }
            })
            .context("cannot start the router thread")?;
        let handle = rx
            .recv()
            .map_err(|_| anyhow!("the router failed to start on port {port} (see the log above)"))?;
        Ok(Router {
            port,
            config,
            rules,
            handle,
            thread: Some(thread),
        })
    }

    /// Sets the request size limit of a serial pipeline (the first container's `MaxPayloadInMB`);
    /// in the other modes each container enforces its own.
    pub fn set_max_payload_in_mb(&self, mb: u64) {
        if matches!(self.config.mode, Mode::Serial | Mode::Single) {
            self.rules.set_max_payload_in_mb(mb);
        }
    }

    /// Stops answering; requests in flight are answered first.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(thread) = self.thread.take() {
            let handle = self.handle.clone();
            actix_web::rt::System::new().block_on(handle.stop(true));
            let _ = thread.join();
        }
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        self.shutdown();
    }
}

async fn invocations(
    req: actix_web::HttpRequest,
    payload: web::Payload,
    config: web::Data<RouterConfig>,
    rules: web::Data<EdgeRules>,
    client: web::Data<ContainerClient>,
) -> actix_web::HttpResponse {
    match config.mode {
        Mode::Direct => direct::invocations(req, payload, config, rules, client).await,
        Mode::MultiModel => multi::invocations(req, payload, config, rules, client).await,
        // Nothing is checked before the edge's own checks: the request is read at once.
        Mode::Serial | Mode::Single => {
            let request_id = modelstage_runtime::serve::request_id(req.headers());
            match modelstage_runtime::serve::Invocation::read(&req, payload, &rules, request_id).await {
                Ok(invocation) => serial::invocations(req, invocation, config, client).await,
                Err(refused) => refused.respond(),
            }
        }
    }
}
