//! A worker process: loads the stage (or the stages of a fused pipeline),
//! calls `model_fn`, then answers request frames from the server on its
//! request threads. A crash here (abort, segfault) costs only this process;
//! the server answers the requests it held and starts a replacement.
//!
//! The worker ignores SIGTERM and SIGINT: the server decides when it stops
//! (after draining in-flight requests) by closing the socket, and a Ctrl-C
//! that reaches the whole process group must not kill requests mid-flight.

use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use super::chain::Pipeline;
use super::config::WorkerPlan;
use super::protocol::{self, FrameWriter, WireRequest};

/// Environment variables the server hands a worker.
pub const ENV_SOCKET: &str = "MODELSTAGE_WORKER_SOCKET";
pub const ENV_TOKEN: &str = "MODELSTAGE_WORKER_TOKEN";
pub const ENV_PLAN: &str = "MODELSTAGE_WORKER_PLAN";

fn send(writer: &Mutex<UnixStream>, frame: &[u8]) {
    // A failed write means the server is gone; the reader sees EOF and exits.
    if let Ok(mut w) = writer.lock() {
        let _ = w.write_all(frame);
    }
}

/// Runs the worker until the server closes the socket. Returns the exit code.
pub fn run() -> i32 {
    let (Some(socket), Some(token), Some(plan)) = (
        std::env::var_os(ENV_SOCKET),
        std::env::var(ENV_TOKEN).ok().and_then(|t| t.parse::<u64>().ok()),
        std::env::var(ENV_PLAN).ok(),
    ) else {
        eprintln!(
            "modelstage worker: started without its server (this command is internal to `modelstage serve`)"
        );
        return 2;
    };
    let plan: WorkerPlan = match serde_json::from_str(&plan) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("modelstage worker: bad plan: {e}");
            return 2;
        }
    };
    let component = plan
        .stages
        .iter()
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join("+");
    modelstage_sdk::logging::init(&format!("worker[{component}]"));

    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        // Registering a flag replaces the default action (terminate) with
        // "note and carry on"; the flag itself is never read.
        let _ = signal_hook::flag::register(signal, Arc::new(AtomicBool::new(false)));
    }

    let stream = match UnixStream::connect(&socket) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("modelstage worker: cannot reach the server: {e}");
            return 2;
        }
    };
    let writer = Arc::new(Mutex::new(match stream.try_clone() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("modelstage worker: {e}");
            return 2;
        }
    }));
    send(&writer, &FrameWriter::new(protocol::HELLO, 8).u64(token).finish());

    let pipeline = match Pipeline::load(&plan.stages) {
        Ok(p) => Arc::new(p),
        Err(message) => {
            send(
                &writer,
                &FrameWriter::new(protocol::LOAD_FAILED, message.len())
                    .bytes(message.as_bytes())
                    .finish(),
            );
            return 1;
        }
    };
    send(
        &writer,
        &FrameWriter::new(protocol::READY, 8)
            .u64(std::process::id() as u64)
            .finish(),
    );

    // Leader/followers: the request threads take turns reading the socket.
    // The thread that reads a request runs it, so a request reaches its
    // thread without a hand-off, and a slow request holds one thread while
    // the next idle one is already waiting on the socket.
    let reader = Arc::new(Mutex::new(BufReader::with_capacity(64 * 1024, stream)));
    let threads: Vec<_> = (0..plan.threads.max(1))
        .map(|_| {
            let reader = Arc::clone(&reader);
            let writer = Arc::clone(&writer);
            let pipeline = Arc::clone(&pipeline);
            std::thread::spawn(move || serve_requests(&reader, &writer, &pipeline))
        })
        .collect();
    for thread in threads {
        let _ = thread.join();
    }
    0
}

/// One request thread: read a request, run it, answer, repeat. Returns when
/// the server closes the socket (it is shutting down, or gone), ending the
/// process: the server only closes it once no request is in flight.
fn serve_requests(reader: &Mutex<BufReader<UnixStream>>, writer: &Mutex<UnixStream>, pipeline: &Pipeline) {
    let mut buf = Vec::new();
    loop {
        let frame = match reader.lock() {
            Ok(mut reader) => protocol::read_frame(&mut *reader, &mut buf),
            Err(_) => return,
        };
        match frame {
            Ok(Some(protocol::REQUEST)) => match WireRequest::decode(&buf[1..]) {
                Ok(request) => {
                    let answer = pipeline.handle(&request);
                    modelstage_sdk::logging::set_request_id(None);
                    send(writer, &answer.encode());
                }
                Err(e) => log::error!("dropping a malformed frame from the server: {e}"),
            },
            Ok(Some(other)) => log::error!("unexpected frame kind {other} from the server"),
            Ok(None) | Err(_) => std::process::exit(0),
        }
    }
}
