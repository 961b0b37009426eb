//! A worker process: loads the stage (or the stages of a fused pipeline),
//! calls `model_fn`, opens one data connection (lane) per server HTTP thread,
//! then answers request frames on its request threads. A crash here (abort,
//! segfault) costs only the requests this process had started; the server
//! sends the others elsewhere and starts a replacement.
//!
//! A request thread says `STARTED` before it runs a request: the server
//! sends a worker at most as many requests as it has threads, so each
//! starts at once, and a crash costs exactly the requests that were running.
//!
//! The worker dies with the server (a parent-death signal), so a killed
//! server leaves no worker behind holding the model's memory. It ignores
//! SIGTERM and SIGINT: the server decides when it stops (after draining
//! in-flight requests), and a Ctrl-C that reaches the whole process group
//! must not kill requests mid-flight. With `MODELSTAGE_WORKER_MEMORY_MB`
//! set, its data segment (heap and private mappings) is capped before the
//! stage is loaded: an allocation past it fails, which ends this process
//! only.

use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex};

use bytes::Bytes;

use super::chain::{ChainError, Pipeline};
use super::config::{self, ConfigError, WorkerPlan};
use super::mme::held::{self, Held};
use super::protocol::{self, FrameWriter, StageDescription, WireAnswer, WireRequest};

/// What a worker runs requests on: its model (a pipeline of one or more
/// stages), or the models of a multi-model endpoint, by name.
enum Handler {
    Pipeline(Pipeline),
    Models(Arc<Held>),
}

impl Handler {
    fn handle(&self, request: &WireRequest) -> WireAnswer {
        match self {
            Handler::Pipeline(pipeline) => pipeline.handle(request),
            Handler::Models(held) => held.handle(request),
        }
    }
}

/// Environment variables the server hands a worker.
pub const ENV_SOCKET: &str = "MODELSTAGE_WORKER_SOCKET";
/// The worker's [`WorkerPlan`], as JSON.
pub const ENV_PLAN: &str = "MODELSTAGE_WORKER_PLAN";
/// The server's process id: the worker's parent must still be it once the
/// parent-death signal is set, or the server died first.
pub const ENV_PARENT: &str = "MODELSTAGE_WORKER_PARENT";
/// The optional cap on each worker's memory, in MB.
pub const ENV_MEMORY: &str = "MODELSTAGE_WORKER_MEMORY_MB";

/// `MODELSTAGE_WORKER_MEMORY_MB`: `None` when unset or 0 (no cap).
pub fn memory_limit_mb(vars: &config::Vars) -> Result<Option<u64>, ConfigError> {
    match vars.get(ENV_MEMORY) {
        None => Ok(None),
        Some(v) => match v.trim().parse::<u64>() {
            Ok(0) => Ok(None),
            Ok(mb) => Ok(Some(mb)),
            Err(_) => Err(ConfigError::invalid(ENV_MEMORY, "a whole number of MB", v)),
        },
    }
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

fn send(writer: &Mutex<UnixStream>, frame: &[u8]) {
    send_parts(writer, &[frame]);
}

/// Ends this process with its parent, and checks the parent is still the
/// server that started it (it may have died before the signal was set).
fn die_with_the_server(server: u32) -> Result<(), WorkerError> {
    use nix::sys::signal::Signal;
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(WorkerError::ParentDeathSignal)?;
    let parent = nix::unistd::getppid().as_raw();
    if u32::try_from(parent).ok() != Some(server) {
        return Err(WorkerError::ServerGone(server));
    }
    Ok(())
}

/// Caps this process's data segment at `mb` MB.
fn cap_memory(mb: u64) -> Result<(), LoadFailure> {
    use nix::sys::resource::{setrlimit, Resource};
    let bytes = mb.saturating_mul(1024 * 1024);
    setrlimit(Resource::RLIMIT_DATA, bytes, bytes).map_err(|error| LoadFailure::MemoryCap { mb, error })
}

/// Why a worker's stages could not start: its message is what the server
/// is told (`LOAD_FAILED`) and reports.
#[derive(Debug, thiserror::Error)]
enum LoadFailure {
    /// `MODELSTAGE_WORKER_MEMORY_MB` is not a number.
    #[error(transparent)]
    MemorySetting(#[from] ConfigError),
    /// The system refused the cap.
    #[error("cannot cap the worker's memory at {mb} MB ({}): {error}", ENV_MEMORY)]
    MemoryCap {
        /// The cap asked for.
        mb: u64,
        /// The system's reason.
        error: nix::errno::Errno,
    },
    /// A library did not open, or a `model_fn` failed.
    #[error(transparent)]
    Stages(#[from] ChainError),
}

/// Why a worker process ended before it served: `main` prints it and picks
/// the exit code ([`WorkerError::exit_code`]).
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// Started without the environment its server gives it (started by hand).
    #[error(
        "modelstage worker: started without its server (this command is internal to `modelstage serve`)"
    )]
    NoServer,
    /// The parent-death signal could not be set, so the worker could
    /// outlive its server.
    #[error("modelstage worker: cannot set the parent-death signal: {0}")]
    ParentDeathSignal(nix::errno::Errno),
    /// The server that started it (this process id) ended before the
    /// parent-death signal was set.
    #[error("modelstage worker: the server (process {0}) is gone")]
    ServerGone(u32),
    /// The plan the server handed over does not parse.
    #[error("modelstage worker: bad plan: {0}")]
    BadPlan(serde_json::Error),
    /// The server's socket cannot be reached.
    #[error("modelstage worker: cannot reach the server: {0}")]
    Unreachable(std::io::Error),
    /// A lane to the server cannot be opened.
    #[error("modelstage worker: cannot open a connection to the server: {0}")]
    NoLane(std::io::Error),
    /// The thread that answers the server's model operations cannot start.
    #[error("modelstage worker: cannot take the server's model operations")]
    NoModelControl,
    /// Its stages failed to open or load; the server was told (`LOAD_FAILED`)
    /// and reports it, so this is not printed again.
    #[error("modelstage worker: {0}")]
    LoadFailed(String),
}

impl WorkerError {
    /// 2 when the worker could not set up, 1 when its stages failed to load.
    pub fn exit_code(&self) -> u8 {
        match self {
            WorkerError::LoadFailed(_) => 1,
            _ => 2,
        }
    }

    /// Whether the server already has this error: only then is printing it
    /// again noise in the container's log.
    pub fn reported_to_the_server(&self) -> bool {
        matches!(self, WorkerError::LoadFailed(_))
    }
}

/// Runs the worker until the server closes its lanes.
pub fn run() -> Result<(), WorkerError> {
    let (Some(socket), Some(plan), Some(server)) = (
        std::env::var_os(ENV_SOCKET),
        std::env::var(ENV_PLAN).ok(),
        std::env::var(ENV_PARENT).ok().and_then(|p| p.parse::<u32>().ok()),
    ) else {
        return Err(WorkerError::NoServer);
    };
    die_with_the_server(server)?;
    let plan: WorkerPlan = serde_json::from_str(&plan).map_err(WorkerError::BadPlan)?;
    let component = plan
        .stages
        .iter()
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join("+");
    modelstage_contract::logging::init(&format!("worker[{component}]"));

    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        // Registering a flag replaces the default action (terminate) with
        // "note and carry on"; the flag itself is never read.
        let _ = signal_hook::flag::register(signal, Arc::new(AtomicBool::new(false)));
    }

    // The control connection: HELLO, DESCRIBED once the libraries are open,
    // then READY (or LOAD_FAILED at any point). The server
    // learns that this process ended when it closes.
    let control = UnixStream::connect(&socket)
        .map(Mutex::new)
        .map_err(WorkerError::Unreachable)?;
    send(&control, &FrameWriter::new(protocol::HELLO, 0).finish());
    let load_failed = |failure: LoadFailure| {
        let message = failure.to_string();
        send(
            &control,
            &FrameWriter::new(protocol::LOAD_FAILED, message.len())
                .bytes(message.as_bytes())
                .finish(),
        );
        WorkerError::LoadFailed(message)
    };

    if let Some(mb) = memory_limit_mb(&config::Vars::process()).map_err(|e| load_failed(e.into()))? {
        cap_memory(mb).map_err(load_failed)?;
    }
    let stages = Pipeline::open(&plan.stages).map_err(|e| load_failed(e.into()))?;
    let described: Vec<StageDescription> = stages.iter().map(|s| StageDescription::of(s)).collect();
    send(&control, &StageDescription::frame(&described));
    let threads = StageDescription::threads(&described, plan.threads);
    // A multi-model endpoint loads no model at start: the server sends them.
    let handler = match (plan.multi_model, plan.stages.first(), stages.first()) {
        (true, Some(plan), Some(&stage)) => Handler::Models(Arc::new(Held::new(plan, stage))),
        _ => match Pipeline::load(&plan.stages, &stages) {
            Ok(p) => Handler::Pipeline(p),
            Err(e) => return Err(load_failed(e.into())),
        },
    };
    let pipeline = Arc::new(handler);
    let mut lanes = Vec::with_capacity(plan.lanes.max(1));
    for _ in 0..plan.lanes.max(1) {
        let lane = UnixStream::connect(&socket).and_then(|mut lane| {
            lane.write_all(&FrameWriter::new(protocol::LANE, 0).finish())?;
            Ok(lane)
        });
        lanes.push(lane.map_err(WorkerError::NoLane)?);
    }
    send(&control, &FrameWriter::new(protocol::READY, 0).finish());
    if let Handler::Models(held) = &*pipeline {
        // From here on the server's model operations come on the control
        // connection, and only their answers are written to it.
        let stream = control.lock().ok().and_then(|c| c.try_clone().ok());
        let held = Arc::clone(held);
        let spawned = stream.map(|stream| {
            std::thread::Builder::new()
                .name("model-control".into())
                .spawn(move || held::serve_control(held, stream))
        });
        if !matches!(spawned, Some(Ok(_))) {
            return Err(WorkerError::NoModelControl);
        }
    }
    serve_lanes(lanes, threads, pipeline);
    Ok(())
}

/// A lane's two ends: requests arrive on the reader, answers leave by the
/// writer.
struct LaneEnds {
    reader: Mutex<BufReader<UnixStream>>,
    writer: Mutex<UnixStream>,
}

/// How many requests may run at once: the worker's request threads. The
/// server never sends more (its credits), so nobody waits here in practice;
/// it is what keeps a per-instance stage from ever being called twice at
/// once, whatever arrives.
struct Permits {
    free: Mutex<usize>,
    freed: Condvar,
}

impl Permits {
    fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        {
            let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
            while *free == 0 {
                free = self.freed.wait(free).unwrap_or_else(|e| e.into_inner());
            }
            *free -= 1;
        }
        let out = f();
        *self.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.freed.notify_one();
        out
    }
}

/// Answers requests from every lane until the server has closed every
/// lane. Each lane has `threads` threads that take turns reading it
/// (leader/followers): the thread that reads a request runs it, so a
/// request reaches its thread without a hand-off, while the next idle
/// thread already waits for the lane's next request. At most `threads`
/// requests run at once across all lanes.
fn serve_lanes(lanes: Vec<UnixStream>, threads: usize, pipeline: Arc<Handler>) {
    let permits = Arc::new(Permits {
        free: Mutex::new(threads),
        freed: Condvar::new(),
    });
    let mut handles = Vec::new();
    for stream in lanes {
        let Ok(writer) = stream.try_clone() else {
            continue;
        };
        let lane = Arc::new(LaneEnds {
            reader: Mutex::new(BufReader::with_capacity(64 * 1024, stream)),
            writer: Mutex::new(writer),
        });
        for _ in 0..threads {
            let (lane, pipeline, permits) = (Arc::clone(&lane), Arc::clone(&pipeline), Arc::clone(&permits));
            handles.push(std::thread::spawn(move || {
                while let Some(request) = next_request(&lane) {
                    permits.run(|| run_requests(&lane, &pipeline, request));
                }
            }));
        }
    }
    for handle in handles {
        let _ = handle.join();
    }
}

/// The next request on a lane; `None` once the server has closed it.
fn next_request(lane: &LaneEnds) -> Option<WireRequest> {
    let mut reader = lane.reader.lock().ok()?;
    read_request(&mut reader)
}

/// A request already read off the lane into its buffer, if one is whole
/// there and no other thread is reading the lane: taking it costs no
/// system call and no wait.
fn buffered_request(lane: &LaneEnds) -> Option<WireRequest> {
    let mut reader = lane.reader.try_lock().ok()?;
    let size = protocol::frame_size(reader.buffer()).ok()??;
    if reader.buffer().len() < size {
        return None;
    }
    read_request(&mut reader)
}

fn read_request(reader: &mut BufReader<UnixStream>) -> Option<WireRequest> {
    loop {
        // A fresh buffer per frame: the request's body keeps it.
        let mut buf = Vec::new();
        match protocol::read_frame(&mut *reader, &mut buf) {
            Ok(Some(protocol::REQUEST)) => match WireRequest::decode(&Bytes::from(buf).slice(1..)) {
                Ok(request) => return Some(request),
                Err(e) => log::error!("dropping a malformed frame from the server: {e}"),
            },
            Ok(Some(other)) => log::error!("unexpected frame kind {other} from the server"),
            Ok(None) | Err(_) => return None,
        }
    }
}

fn started_frame(id: u64) -> Vec<u8> {
    FrameWriter::new(protocol::STARTED, 8).u64(id).finish()
}

/// Says the request started, runs it and writes its answer: a large body
/// straight after its frame's head rather than copied into it. Then, while
/// the lane's buffer already holds another whole request, takes it too: its
/// `STARTED` goes out in the same write as the answer before it (one system
/// call, one wake-up of the server, instead of two), and it runs at once on
/// this thread, which is free. `STARTED` still leaves before the stage is
/// called, so a crash costs exactly the requests that were running.
fn run_requests(lane: &LaneEnds, pipeline: &Handler, mut request: WireRequest) {
    send(&lane.writer, &started_frame(request.id));
    loop {
        let started = std::time::Instant::now();
        let mut answer = pipeline.handle(&request);
        answer.set_hook_time(started.elapsed());
        let (mut frame, large_body) = answer.encode_split(Vec::new());
        let next = buffered_request(lane);
        let next_started = next.as_ref().map(|n| started_frame(n.id)).unwrap_or_default();
        match large_body {
            Some(body) => send_parts(&lane.writer, &[&frame, body, &next_started]),
            None => {
                frame.extend_from_slice(&next_started);
                send(&lane.writer, &frame);
            }
        }
        match next {
            Some(n) => request = n,
            None => return,
        }
    }
}
