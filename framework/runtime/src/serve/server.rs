//! The HTTP server `serve` and the router run their actix-web app on: what
//! `actix_web::HttpServer` does, with each accepted connection wrapped in a
//! `HeadTimed`, so that every request head on a kept-alive connection,
//! not only the first, must arrive within `MODELSTAGE_HEADER_TIMEOUT_SECS`
//! (`HttpServer` offers no way to wrap its connections).

use std::fmt;
use std::net::TcpListener;
use std::time::Duration;

use actix_http::body::MessageBody;
use actix_http::{HttpService, Protocol, Request};
use actix_server::Server;
use actix_service::{fn_service, map_config, IntoServiceFactory, ServiceFactory, ServiceFactoryExt};
use actix_web::dev::{AppConfig, Extensions, Response};
use actix_web::Error;

use super::connections;
use super::head_timer::HeadTimed;

/// How a server runs, besides its app.
pub struct ServerOptions {
    /// actix-web worker threads, each with its lanes to every worker.
    pub http_threads: usize,
    /// Open connections each HTTP thread accepts.
    pub max_connections_per_thread: usize,
    /// `MODELSTAGE_HEADER_TIMEOUT_SECS`: the time of every request head.
    pub header_timeout: Duration,
    /// Seconds a graceful stop waits for requests in flight.
    pub shutdown_timeout: u64,
    /// Whether SIGTERM and SIGINT stop the server (its own process's
    /// server), or only its handle does (a router inside another command).
    pub signals: bool,
}

/// Starts serving on `listener` the app `factory` makes (once per HTTP
/// thread); the returned server resolves when it stops.
pub fn start<F, I, S, B>(listener: TcpListener, options: ServerOptions, factory: F) -> std::io::Result<Server>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<Error> + 'static,
    S::InitError: fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    B: MessageBody + 'static,
{
    let mut builder = Server::build()
        .workers(options.http_threads.max(1))
        .max_concurrent_connections(options.max_connections_per_thread)
        .shutdown_timeout(options.shutdown_timeout);
    if !options.signals {
        builder = builder.disable_signals();
    }
    let header_timeout = options.header_timeout;
    // A graceful stop also ends idle kept-alive connections, as HttpServer's does.
    let stopping = builder.graceful_shutdown_signal();
    builder = builder.listen("modelstage-http", listener, move || {
        let app = factory()
            .into_factory()
            .map_err(|err: S::Error| err.into().error_response());
        let stopping = stopping.clone();
        let http = HttpService::build()
            .graceful_shutdown_signal(move || {
                let stopping = stopping.clone();
                async move { stopping.notified().await }
            })
            .client_request_timeout(header_timeout)
            // HttpServer's default: a client gets 1 s to close its side after the server closed.
            .client_disconnect_timeout(Duration::from_secs(1))
            .on_connect_ext(
                |_: &HeadTimed<actix_web::rt::net::TcpStream>, data: &mut Extensions| {
                    data.insert(connections::Counted::new());
                },
            )
            .finish(map_config(app, |_| AppConfig::default()));
        fn_service(move |io: actix_web::rt::net::TcpStream| async move {
            let peer = io.peer_addr().ok();
            Ok::<_, actix_http::error::DispatchError>((
                HeadTimed::new(io, header_timeout),
                Protocol::Http1,
                peer,
            ))
        })
        .and_then(http)
    })?;
    Ok(builder.run())
}
