//! A worker process: loads the stage (or the stages of a fused pipeline),
//! calls `model_fn`, opens one data connection (lane) per server HTTP thread,
//! then answers request frames on its request threads. A crash here (abort,
//! segfault) costs only this process; the server answers the requests it
//! held and starts a replacement.
//!
//! The worker ignores SIGTERM and SIGINT: the server decides when it stops
//! (after draining in-flight requests) by closing the socket, and a Ctrl-C
//! that reaches the whole process group must not kill requests mid-flight.

use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc, Mutex};

use bytes::Bytes;

use super::chain::Pipeline;
use super::config::WorkerPlan;
use super::protocol::{self, FrameWriter, WireRequest};

/// Environment variables the server hands a worker.
pub const ENV_SOCKET: &str = "MODELSTAGE_WORKER_SOCKET";
pub const ENV_TOKEN: &str = "MODELSTAGE_WORKER_TOKEN";
pub const ENV_PLAN: &str = "MODELSTAGE_WORKER_PLAN";

fn send(writer: &Mutex<UnixStream>, frame: &[u8]) {
    send_parts(writer, &[frame]);
}

/// Writes `parts` back to back, so no other thread's frame comes between.
fn send_parts(writer: &Mutex<UnixStream>, parts: &[&[u8]]) {
    // A failed write means the server is gone; the reader sees EOF and exits.
    if let Ok(mut w) = writer.lock() {
        for part in parts {
            if w.write_all(part).is_err() {
                return;
            }
        }
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

    // The control connection: HELLO, then READY or LOAD_FAILED. The server
    // learns that this process ended when it closes.
    let control = match UnixStream::connect(&socket) {
        Ok(s) => Mutex::new(s),
        Err(e) => {
            eprintln!("modelstage worker: cannot reach the server: {e}");
            return 2;
        }
    };
    send(
        &control,
        &FrameWriter::new(protocol::HELLO, 8).u64(token).finish(),
    );

    let pipeline = match Pipeline::load(&plan.stages) {
        Ok(p) => Arc::new(p),
        Err(message) => {
            send(
                &control,
                &FrameWriter::new(protocol::LOAD_FAILED, message.len())
                    .bytes(message.as_bytes())
                    .finish(),
            );
            return 1;
        }
    };
    let mut lanes = Vec::with_capacity(plan.lanes.max(1));
    for _ in 0..plan.lanes.max(1) {
        let lane = UnixStream::connect(&socket).and_then(|mut lane| {
            lane.write_all(&FrameWriter::new(protocol::LANE, 8).u64(token).finish())?;
            Ok(lane)
        });
        match lane {
            Ok(lane) => lanes.push(lane),
            Err(e) => {
                eprintln!("modelstage worker: cannot open a connection to the server: {e}");
                return 2;
            }
        }
    }
    send(
        &control,
        &FrameWriter::new(protocol::READY, 8)
            .u64(std::process::id() as u64)
            .finish(),
    );
    serve_lanes(lanes, plan.threads.max(1), pipeline);
    0
}

/// A lane's two ends: requests arrive on the reader, answers leave by the writer.
struct LaneEnds {
    reader: Mutex<BufReader<UnixStream>>,
    writer: Mutex<UnixStream>,
}

/// Answers requests on every lane until the server has closed them all.
fn serve_lanes(lanes: Vec<UnixStream>, threads: usize, pipeline: Arc<Pipeline>) {
    let lanes: Vec<Arc<LaneEnds>> = lanes
        .into_iter()
        .filter_map(|stream| {
            Some(Arc::new(LaneEnds {
                writer: Mutex::new(stream.try_clone().ok()?),
                reader: Mutex::new(BufReader::with_capacity(64 * 1024, stream)),
            }))
        })
        .collect();
    let mut handles = Vec::new();
    if threads >= lanes.len() {
        // Leader/followers on each lane: the lane's request threads take
        // turns reading it, and the thread that reads a request runs it, so
        // a request reaches its thread without a hand-off, and a slow
        // request holds one thread while the next idle one already waits.
        // A lane's only thread takes every request already buffered and
        // answers them in one write.
        let batch = threads == lanes.len();
        for i in 0..threads {
            let lane = Arc::clone(&lanes[i % lanes.len()]);
            let pipeline = Arc::clone(&pipeline);
            handles.push(std::thread::spawn(move || {
                serve_requests(&lane, &pipeline, batch)
            }));
        }
    } else {
        // Fewer request threads than lanes (a per-instance stage has one):
        // a reader per lane passes requests to the request threads, so the
        // stage is never called from more threads than it allows.
        let (tx, rx) = mpsc::channel::<(WireRequest, Arc<LaneEnds>)>();
        let rx = Arc::new(Mutex::new(rx));
        for lane in &lanes {
            let lane = Arc::clone(lane);
            let tx = tx.clone();
            handles.push(std::thread::spawn(move || loop {
                match next_request(&lane) {
                    Some(request) => {
                        if tx.send((request, Arc::clone(&lane))).is_err() {
                            return;
                        }
                    }
                    // The server closed this lane; the others may still
                    // carry requests.
                    None => return,
                }
            }));
        }
        for _ in 0..threads {
            let rx = Arc::clone(&rx);
            let pipeline = Arc::clone(&pipeline);
            handles.push(std::thread::spawn(move || loop {
                let next = rx.lock().ok().and_then(|rx| rx.recv().ok());
                let Some((request, lane)) = next else { return };
                answer_all(&lane, &pipeline, std::iter::once(request));
            }));
        }
    }
    for handle in handles {
        let _ = handle.join();
    }
}

/// Most requests a lone lane thread answers in one write.
const MAX_BATCH: usize = 64;

/// One request thread: read requests, run them, answer, repeat. Returns
/// when the server closes the lane. Each HTTP thread closes its lanes when
/// it stops, which during a graceful shutdown may be while another HTTP
/// thread still waits for answers on its own lanes: the process ends only
/// once every lane is closed (`serve_lanes` returns).
fn serve_requests(lane: &LaneEnds, pipeline: &Pipeline, batch: bool) {
    let mut requests = Vec::new();
    while next_requests(lane, if batch { MAX_BATCH } else { 1 }, &mut requests) {
        answer_all(lane, pipeline, requests.drain(..));
    }
}

/// Waits for the next request on a lane, then takes up to `most` in all of
/// those already buffered. False once the server has closed the lane.
fn next_requests(lane: &LaneEnds, most: usize, out: &mut Vec<WireRequest>) -> bool {
    let Ok(mut reader) = lane.reader.lock() else {
        return false;
    };
    loop {
        let buffered =
            matches!(protocol::frame_size(reader.buffer()), Ok(Some(n)) if n <= reader.buffer().len());
        if !out.is_empty() && (!buffered || out.len() >= most) {
            return true;
        }
        // A fresh buffer per frame: the request's body keeps it.
        let mut buf = Vec::new();
        let frame = protocol::read_frame(&mut *reader, &mut buf);
        match frame {
            Ok(Some(protocol::REQUEST)) => match WireRequest::decode(&Bytes::from(buf).slice(1..)) {
                Ok(request) => out.push(request),
                Err(e) => log::error!("dropping a malformed frame from the server: {e}"),
            },
            Ok(Some(other)) => log::error!("unexpected frame kind {other} from the server"),
            Ok(None) | Err(_) => return !out.is_empty(),
        }
    }
}

/// The next request on a lane; `None` once the server has closed it.
fn next_request(lane: &LaneEnds) -> Option<WireRequest> {
    let mut one = Vec::with_capacity(1);
    next_requests(lane, 1, &mut one).then(|| one.pop()).flatten()
}

/// Runs requests and writes their answers to the lane: small answers
/// together in one write, a large body straight after its frame's head
/// rather than copied into it.
fn answer_all(lane: &LaneEnds, pipeline: &Pipeline, requests: impl Iterator<Item = WireRequest>) {
    let mut out = Vec::new();
    for request in requests {
        let answer = pipeline.handle(&request);
        modelstage_sdk::logging::set_request_id(None);
        let (frame, large_body) = answer.encode_split(std::mem::take(&mut out));
        out = frame;
        if let Some(body) = large_body {
            send_parts(&lane.writer, &[&out, body]);
            out.clear();
        }
    }
    if !out.is_empty() {
        send_parts(&lane.writer, &[&out]);
    }
}
