//! The HTTP server `serve` and the router run their actix-web app on: what
//! `actix_web::HttpServer` does, with each accepted connection wrapped in a
//! `HeadTimed`, so that every request head on a kept-alive connection,
//! not only the first, must arrive within `MODELSTAGE_HEADER_TIMEOUT_SECS`
//! (`HttpServer` offers no way to wrap its connections). Besides its TCP
//! port it serves the Unix socket `MODELSTAGE_UNIX_SOCKET` names, alike.

use std::fmt;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::net::UnixListener;
use std::time::Duration;

use actix_http::body::MessageBody;
use actix_http::error::DispatchError;
use actix_http::{HttpService, Protocol, Request};
use actix_server::{GracefulShutdownSignal, Server};
use actix_service::{fn_service, map_config, IntoServiceFactory, ServiceFactory, ServiceFactoryExt};
use actix_web::dev::{AppConfig, Extensions, Response};
use actix_web::rt::net::{TcpStream, UnixStream};
use actix_web::Error;
use tokio::io::{AsyncRead, AsyncWrite};

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

/// Starts serving on `listener`, and on `unix` when given (`MODELSTAGE_UNIX_SOCKET`, see
/// `unix_socket`), the app `factory` makes (once per HTTP thread per listener); the returned
/// server resolves when it stops. Both listeners serve alike: the same app, head timeout,
/// connection count and budget (actix-server's limit is per HTTP thread, over its listeners).
pub fn start<F, I, S, B>(
    listener: TcpListener,
    unix: Option<UnixListener>,
    options: ServerOptions,
    factory: F,
) -> std::io::Result<Server>
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
    if let Some(unix) = unix {
        let (factory, stopping) = (factory.clone(), stopping.clone());
        // A Unix socket has no peer address: actix-web's `peer_addr()` is `None`.
        builder = builder.listen_uds("modelstage-unix", unix, move || {
            connection(&factory, &stopping, header_timeout, |_: &UnixStream| None)
        })?;
    }
    builder = builder.listen("modelstage-http", listener, move || {
        connection(&factory, &stopping, header_timeout, |io: &TcpStream| {
            io.peer_addr().ok()
        })
    })?;
    Ok(builder.run())
}

/// The service one HTTP thread runs each connection of one listener through: wrapped in a
/// `HeadTimed`, counted for as long as it is open, then the app.
fn connection<Io, F, I, S, B>(
    factory: &F,
    stopping: &GracefulShutdownSignal,
    header_timeout: Duration,
    peer: fn(&Io) -> Option<SocketAddr>,
) -> impl ServiceFactory<Io, Config = (), Response = (), Error = DispatchError, InitError = ()>
where
    Io: AsyncRead + AsyncWrite + Unpin + 'static,
    F: Fn() -> I,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<Error> + 'static,
    S::InitError: fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    B: MessageBody + 'static,
{
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
        .on_connect_ext(|_: &HeadTimed<Io>, data: &mut Extensions| {
            data.insert(connections::Counted::new());
        })
        .finish(map_config(app, |_| AppConfig::default()));
    fn_service(move |io: Io| async move {
        let peer = peer(&io);
        Ok::<_, DispatchError>((HeadTimed::new(io, header_timeout), Protocol::Http1, peer))
    })
    .and_then(http)
}
