//! `modelstage serve` with `MODELSTAGE_UNIX_SOCKET`: the same answers over the socket as over
//! TCP, a private socket file removed when the server stops, and clear start-up errors for a path
//! the server cannot listen on (docs/contract.md (`modelstage serve`, Unix socket)).

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use crate::support::*;

/// One request over the socket, on a connection of its own: status and body.
fn over_socket(socket: &Path, method: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut stream = UnixStream::connect(socket).unwrap_or_else(|e| panic!("{}: {e}", socket.display()));
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let (status, head, body) = split_answer(&answer);
    // actix answers a sized body with Content-Length, not chunked.
    assert!(!head.contains("chunked"), "{head}");
    (status, body)
}

#[test]
fn serve_answers_over_its_socket_as_over_tcp_and_removes_it_on_stop() {
    let model = tempdir();
    let folder = tempdir();
    let socket = folder.path().join("serve.sock");
    let mut server = serve(
        &stage_lib("echo"),
        model.path(),
        &[("MODELSTAGE_UNIX_SOCKET", socket.to_str().unwrap())],
    );
    let meta = std::fs::symlink_metadata(&socket).expect("the socket file exists");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert!(server.log_text().contains("Unix socket"), "{}", server.log_text());

    assert_eq!(
        over_socket(&socket, "GET", "/ping", "text/plain", b""),
        (200, Vec::new())
    );
    let body = b"M, 0.44, 0.365\nF,0.5,0.4\n";
    let (tcp_status, _, tcp_body) = post(&server.url, "text/csv", None, body);
    let (status, answer) = over_socket(&socket, "POST", "/invocations", "text/csv", body);
    assert_eq!((status, &answer), (tcp_status, &tcp_body));
    assert_eq!(answer, body);
    // The edge's checks hold over the socket too.
    let (status, answer) = over_socket(&socket, "GET", "/nowhere", "text/plain", b"");
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&answer).contains("no route"));

    // Every HTTP thread serves both listeners with its one lane to each worker: requests over
    // the two at once, from several clients, land on every thread and each reaches a worker.
    let statuses: Vec<(u16, bool)> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..8)
            .map(|client| {
                let (socket, url) = (&socket, &server.url);
                scope.spawn(move || {
                    (0..60)
                        .map(|i| {
                            let body = format!("{client},{i},2\n");
                            let (status, answer) = if client % 2 == 0 {
                                over_socket(socket, "POST", "/invocations", "text/csv", body.as_bytes())
                            } else {
                                let (status, _, answer) = post(url, "text/csv", None, body.as_bytes());
                                (status, answer)
                            };
                            (status, answer == body.as_bytes())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        clients.into_iter().flat_map(|c| c.join().unwrap()).collect()
    });
    let failed: Vec<_> = statuses
        .iter()
        .filter(|&&(status, same)| status != 200 || !same)
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} failed: {:?}",
        failed.len(),
        statuses.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(
        !server.log_text().contains("no lane left"),
        "{}",
        server.log_text()
    );

    server.terminate();
    let status = server
        .wait_exit(Duration::from_secs(20))
        .expect("serve exits on SIGTERM");
    assert!(status.success(), "{status}");
    assert!(!socket.exists(), "the socket file outlived the server");
}

/// Starts `serve` with `MODELSTAGE_UNIX_SOCKET=<socket>` and returns its log once it has exited.
fn refused(socket: &str) -> String {
    let model = tempdir();
    let mut server = spawn_serve(
        &[
            "--stage",
            stage_lib("echo").to_str().unwrap(),
            "--model-dir",
            model.path().to_str().unwrap(),
        ],
        &[("MODELSTAGE_UNIX_SOCKET", socket)],
    );
    let status = server
        .wait_exit(Duration::from_secs(20))
        .expect("serve refuses to start");
    assert!(!status.success());
    server.wait_for_log("MODELSTAGE_UNIX_SOCKET")
}

#[test]
fn a_socket_path_serve_cannot_take_is_refused_at_start() {
    let too_long = format!("/tmp/{}.sock", "s".repeat(110));
    let log = refused(&too_long);
    assert!(
        log.contains("MODELSTAGE_UNIX_SOCKET") && log.contains("at most 107"),
        "{log}"
    );

    let folder = tempdir();
    let file = folder.path().join("notes.txt");
    std::fs::write(&file, b"keep").unwrap();
    let log = refused(file.to_str().unwrap());
    assert!(log.contains("not a socket"), "{log}");
    assert_eq!(std::fs::read(&file).unwrap(), b"keep", "the file was replaced");

    let log = refused(folder.path().join("missing/serve.sock").to_str().unwrap());
    assert!(log.contains("does not exist"), "{log}");
}
