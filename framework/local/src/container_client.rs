//! The HTTP client modelstage's own front ends reach a container with (the router of `deploy`,
//! the runtime of `api`): kept-alive connections, no headers of its own, no redirects followed;
//! over TCP, or over the container's Unix socket when it has one (`MODELSTAGE_UNIX_SOCKET`,
//! docs/contract.md: a process on this machine is reached without the kernel's loopback TCP path).
//!
//! A socket travels in the request's URI by a short name: its host is `s<n>` followed by
//! [`SOCKET_HOST_SUFFIX`] (a name that never resolves), and a [`Socket`] keeps the path under
//! that name in a table the socket connector reads, for as long as a front end holds it. So one
//! client per thread reaches any number of sockets, each with its own pool of kept-alive
//! connections (awc pools connections by host), and [`ContainerClient::request`] tells the two
//! hops apart by the URI alone. The name is short because awc hashes the host one byte at a
//! time, twice per request: the path itself, in hex, cost 8.5% of the API's instructions per
//! forwarded request (`docs/benchmarks.md`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use actix_tls::connect::{ConnectError, ConnectInfo, Connection};
use actix_web::dev::fn_service;
use actix_web::http::uri::InvalidUri;
use actix_web::http::{Method, Uri};
use actix_web::rt::net::UnixStream;

/// What ends the host of a socket's URI. `.invalid` never resolves (RFC 2606), so such a URI can
/// never reach anything over TCP.
const SOCKET_HOST_SUFFIX: &str = ".sock.invalid";

/// One thread's client to the containers: awc clients are not shared across threads.
pub struct ContainerClient {
    tcp: awc::Client,
    unix: awc::Client,
}

impl ContainerClient {
    /// A client whose requests fail after `timeout` without an answer.
    pub fn new(timeout: Duration) -> ContainerClient {
        let sockets = awc::Connector::new().connector(fn_service(connect_socket));
        ContainerClient {
            tcp: awc::Client::builder()
                .no_default_headers()
                .disable_redirects()
                .timeout(timeout)
                .finish(),
            unix: awc::Client::builder()
                .connector(sockets)
                .no_default_headers()
                .disable_redirects()
                .timeout(timeout)
                .finish(),
        }
    }

    /// A `method` request to `uri` (see [`uri`]): over the Unix socket it names, else over TCP.
    pub fn request(&self, method: Method, uri: Uri) -> awc::ClientRequest {
        let client = match uri.host() {
            Some(host) if host.ends_with(SOCKET_HOST_SUFFIX) => &self.unix,
            _ => &self.tcp,
        };
        client.request(method, uri)
    }
}

/// A container's Unix socket, known to the socket connector by a short name while a value of it
/// (or a clone) lives. Equal when the paths are.
#[derive(Clone)]
pub struct Socket(Arc<Registered>);

/// One entry of [`SOCKETS`], removed when the last [`Socket`] holding it is dropped.
struct Registered {
    id: u64,
    path: PathBuf,
}

/// The sockets of the [`Socket`]s alive in this process, by name: as many as the front ends hold
/// (one per container of each endpoint that is up), looked up once per new connection.
static SOCKETS: Mutex<Vec<(u64, PathBuf)>> = Mutex::new(Vec::new());
static NEXT_SOCKET: AtomicU64 = AtomicU64::new(1);

impl Socket {
    /// Names `path` for the URIs of [`uri`].
    pub fn new(path: PathBuf) -> Socket {
        let id = NEXT_SOCKET.fetch_add(1, Ordering::Relaxed);
        SOCKETS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((id, path.clone()));
        Socket(Arc::new(Registered { id, path }))
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.0.path
    }

    /// The path of the socket named `s<id>`, while a [`Socket`] holds it.
    fn path_of(id: u64) -> Option<PathBuf> {
        let sockets = SOCKETS.lock().unwrap_or_else(PoisonError::into_inner);
        sockets
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, path)| path.clone())
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        SOCKETS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(id, _)| *id != self.id);
    }
}

impl PartialEq for Socket {
    fn eq(&self, other: &Socket) -> bool {
        self.path() == other.path()
    }
}

impl Eq for Socket {}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.path().fmt(f)
    }
}

/// The URI of `path` on a container: on its Unix socket `socket` when it has one, else at
/// `base_url` (`http://host:port`, no `/` at the end).
pub fn uri(base_url: &str, socket: Option<&Socket>, path: &str) -> Result<Uri, InvalidUri> {
    match socket {
        Some(socket) => format!("http://s{}{SOCKET_HOST_SUFFIX}{path}", socket.0.id).parse(),
        None => format!("{base_url}{path}").parse(),
    }
}

/// The socket path a URI made by [`uri`] names, while its [`Socket`] lives.
fn socket_of(uri: &Uri) -> Option<PathBuf> {
    let id = uri.host()?.strip_suffix(SOCKET_HOST_SUFFIX)?.strip_prefix('s')?;
    Socket::path_of(id.parse().ok()?)
}

/// The socket connector: connects to the socket the URI's host names.
async fn connect_socket(request: ConnectInfo<Uri>) -> Result<Connection<Uri, UnixStream>, ConnectError> {
    let uri = request.request().clone();
    let socket = socket_of(&uri).ok_or(ConnectError::Unresolved)?;
    let stream = UnixStream::connect(&socket).await.map_err(|e| {
        ConnectError::Io(std::io::Error::new(
            e.kind(),
            format!("socket {}: {e}", socket.display()),
        ))
    })?;
    Ok(Connection::new(uri, stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_travels_in_the_uri_by_name_while_it_lives() {
        let socket = Socket::new(PathBuf::from("/tmp/ms-Ab9z/1.sock"));
        let on_socket = uri("http://127.0.0.1:8080", Some(&socket), "/invocations").unwrap();
        assert_eq!(on_socket.path(), "/invocations");
        assert!(on_socket.host().unwrap().len() < 24, "{on_socket}");
        assert_eq!(socket_of(&on_socket).as_deref(), Some(socket.path()));
        // The longest path a socket takes makes a URI as short.
        let longest = Socket::new(PathBuf::from(format!("/{}", "s".repeat(106))));
        let ping = uri("", Some(&longest), "/ping").unwrap();
        assert_eq!(socket_of(&ping).as_deref(), Some(longest.path()));
        // Two names for one path are equal sockets, with pools of their own.
        let again = Socket::new(socket.path().to_path_buf());
        assert_eq!(again, socket);
        assert_ne!(
            uri("", Some(&again), "/ping").unwrap(),
            uri("", Some(&socket), "/ping").unwrap()
        );
        // A clone keeps the name; the last drop forgets it.
        let clone = socket.clone();
        drop(socket);
        assert_eq!(socket_of(&on_socket).as_deref(), Some(clone.path()));
        drop(clone);
        assert_eq!(socket_of(&on_socket), None);
        assert_eq!(socket_of(&ping).as_deref(), Some(longest.path()));
        let on_tcp = uri("http://127.0.0.1:8080", None, "/invocations").unwrap();
        assert_eq!(on_tcp.to_string(), "http://127.0.0.1:8080/invocations");
        assert_eq!(socket_of(&on_tcp), None);
        for forged in [
            "http://s.sock.invalid/",
            "http://sx1.sock.invalid/",
            "http://s99999999999.sock.invalid/",
        ] {
            assert_eq!(socket_of(&forged.parse().unwrap()), None, "{forged}");
        }
    }

    #[actix_web::test]
    async fn a_request_with_a_socket_goes_over_it() {
        use actix_web::{web, App, HttpServer};
        let folder = tempfile::tempdir().unwrap();
        let socket = folder.path().join("c.sock");
        let server = HttpServer::new(|| App::new().route("/ping", web::get().to(|| async { "socket" })))
            .workers(1)
            .disable_signals()
            .bind_uds(&socket)
            .unwrap()
            .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        let client = ContainerClient::new(Duration::from_secs(5));
        // Nothing listens on port 1: only the socket can answer.
        let named = Socket::new(socket.clone());
        let on_socket = uri("http://127.0.0.1:1", Some(&named), "/ping").unwrap();
        let mut answer = client.request(Method::GET, on_socket).send().await.unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.body().await.unwrap(), "socket");
        let gone = Socket::new(folder.path().join("gone.sock"));
        let missing = uri("", Some(&gone), "/ping").unwrap();
        let failed = client.request(Method::GET, missing).send().await.unwrap_err();
        assert!(failed.to_string().contains("gone.sock"), "{failed}");
        handle.stop(false).await;
    }
}
