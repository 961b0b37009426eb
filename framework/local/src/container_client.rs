//! The HTTP client modelstage's own front ends reach a container with (the router of `deploy`,
//! the runtime of `api`): kept-alive connections, no headers of its own, no redirects followed;
//! over TCP, or over the container's Unix socket when it has one (`MODELSTAGE_UNIX_SOCKET`,
//! docs/contract.md: a process on this machine is reached without the kernel's loopback TCP path).
//!
//! A socket's path travels in the request's URI: its host is the path's bytes in hex followed by
//! [`SOCKET_HOST_SUFFIX`] (a name that never resolves), which the socket connector reads back.
//! So one client per thread reaches any number of sockets, each with its own pool of kept-alive
//! connections (awc pools connections by host), and [`ContainerClient::request`] tells the two
//! hops apart by the URI alone.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
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

/// The URI of `path` on a container: on its Unix socket `socket` when it has one, else at
/// `base_url` (`http://host:port`, no `/` at the end).
pub fn uri(base_url: &str, socket: Option<&Path>, path: &str) -> Result<Uri, InvalidUri> {
    match socket {
        Some(socket) => {
            let mut host = String::with_capacity(2 * socket.as_os_str().len());
            for byte in socket.as_os_str().as_bytes() {
                host.push_str(&format!("{byte:02x}"));
            }
            format!("http://{host}{SOCKET_HOST_SUFFIX}{path}").parse()
        }
        None => format!("{base_url}{path}").parse(),
    }
}

/// The socket path a URI made by [`uri`] names.
fn socket_of(uri: &Uri) -> Option<PathBuf> {
    let hex = uri.host()?.strip_suffix(SOCKET_HOST_SUFFIX)?.as_bytes();
    if hex.len() % 2 != 0 {
        return None;
    }
    let bytes = hex
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    Some(PathBuf::from(OsString::from_vec(bytes)))
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
    fn a_socket_path_travels_in_the_uri_and_back() {
        let socket = Path::new("/tmp/ms-Ab9z/1.sock");
        let on_socket = uri("http://127.0.0.1:8080", Some(socket), "/invocations").unwrap();
        assert_eq!(on_socket.path(), "/invocations");
        assert_eq!(socket_of(&on_socket).as_deref(), Some(socket));
        // The longest path a socket takes still makes a URI.
        let longest = PathBuf::from(format!("/{}", "s".repeat(106)));
        assert_eq!(
            socket_of(&uri("", Some(&longest), "/ping").unwrap()),
            Some(longest)
        );
        let on_tcp = uri("http://127.0.0.1:8080", None, "/invocations").unwrap();
        assert_eq!(on_tcp.to_string(), "http://127.0.0.1:8080/invocations");
        assert_eq!(socket_of(&on_tcp), None);
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
        let on_socket = uri("http://127.0.0.1:1", Some(&socket), "/ping").unwrap();
        let mut answer = client.request(Method::GET, on_socket).send().await.unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.body().await.unwrap(), "socket");
        let missing = uri("", Some(&folder.path().join("gone.sock")), "/ping").unwrap();
        let failed = client.request(Method::GET, missing).send().await.unwrap_err();
        assert!(failed.to_string().contains("gone.sock"), "{failed}");
        handle.stop(false).await;
    }
}
