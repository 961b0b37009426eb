//! The server's supervised worker processes.
//!
//! Each worker slot has a lifecycle thread that starts a `modelstage worker`
//! process, waits for it to load its model and open its lanes (one data
//! connection per HTTP thread, see `lane`), and starts a replacement when
//! the process dies or is retired. Workers connect to a socket in a
//! directory only this user can enter, and the server takes a connection
//! only from a process it started (the kernel's peer credentials say who
//! is at the other end), so no other local process can talk to a worker's
//! server or stall its start.
//!
//! A request goes to a worker with a free thread (`dispatch`). When a worker
//! dies, only the requests it had started fail (a 500 naming the stage and
//! how the process ended); the rest go to another worker. A request past
//! its deadline gets 504; if a worker was running it, that worker is
//! retired: it takes no new requests, a replacement starts at once, and it
//! is killed once the other requests it runs are answered (the hung thread
//! cannot be stopped otherwise).

use std::collections::HashMap;
use std::io::BufReader;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::config::WorkerPlan;
use super::dispatch::Board;
use super::lane::{self, Lane, Outcome};
use super::protocol::{self, FromWorker, WireAnswer, WireRequest};
use super::worker::{self, ENV_PARENT, ENV_PLAN, ENV_SOCKET};

/// One running worker process.
pub struct Worker {
    /// Unique per started process: names its lanes.
    pub id: u64,
    pub pid: u32,
    pub stage_label: String,
    /// Lanes not yet taken by an HTTP thread.
    lanes: Mutex<Vec<UnixStream>>,
    /// Requests sent to it that are still awaited.
    inflight: AtomicUsize,
    retiring: AtomicBool,
    /// How the process ended, once it has.
    exit: Mutex<Option<String>>,
    child: Mutex<Child>,
    /// Tells its slot's lifecycle thread that it was retired.
    events: mpsc::Sender<SlotEvent>,
}

impl Worker {
    pub fn kill(&self) {
        if let Ok(mut child) = self.child.lock() {
            let _ = child.kill();
        }
    }

    pub fn take_lane(&self) -> Option<UnixStream> {
        let lane = self.lanes.lock().ok()?.pop();
        if lane.is_none() {
            log::error!("worker {} has no lane left for another HTTP thread", self.pid);
        }
        lane
    }

    pub fn request_sent(&self) {
        self.inflight.fetch_add(1, Ordering::Relaxed);
    }

    /// One of its requests is no longer awaited.
    pub fn request_done(&self) {
        let left = self.inflight.fetch_sub(1, Ordering::Relaxed) - 1;
        if left == 0 && self.retiring.load(Ordering::Relaxed) {
            self.kill();
        }
    }

    /// How the process ended ("was killed by signal 6 (SIGABRT)"), waiting
    /// briefly for its slot to learn it.
    pub async fn exit_description(&self) -> String {
        let started = Instant::now();
        while started.elapsed() < lane::EXIT_WAIT {
            if let Some(how) = self.exit.lock().ok().and_then(|e| e.clone()) {
                return how;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        "stopped answering".to_string()
    }
}

/// What a slot's lifecycle thread hears about the workers it started.
enum SlotEvent {
    /// The process ended.
    Ended(u64),
    /// A request on it passed its deadline: start its replacement now.
    Retired(u64),
}

/// Connections to the worker socket, handed to the lifecycle thread that
/// started the process at the other end, by its process id.
type Waiting = Arc<Mutex<HashMap<u32, mpsc::Sender<UnixStream>>>>;

/// Why a request got no answer from a stage.
#[derive(Debug)]
pub enum CallError {
    /// No worker can take requests: the model is still loading, or no
    /// worker can load it.
    Unavailable,
    /// The deadline passed. `started`: a worker was running the request
    /// (it is being replaced); otherwise every thread was busy until then.
    TimedOut { started: bool },
    /// The worker process died while running the request.
    Crashed(String),
}

pub struct Pool {
    board: Arc<Board>,
    slots: usize,
    /// Request threads per worker: its credits.
    threads: usize,
    next_id: AtomicU64,
    next_worker: AtomicU64,
    ever_ready: AtomicBool,
    /// Slots whose last start failed.
    failing: AtomicUsize,
    stopping: AtomicBool,
    stage_label: String,
    plan_json: String,
    socket_path: PathBuf,
    socket_dir: PathBuf,
    waiting: Waiting,
    exe: PathBuf,
    /// Lanes per worker: one per HTTP thread.
    lanes: usize,
    /// `MODELSTAGE_WORKER_MEMORY_MB`, named when a worker dies of a signal.
    memory_limit_mb: Option<u64>,
}

/// Times a request goes back to be sent elsewhere because its worker died
/// before starting it. Past this, the request fails: something about it
/// (its size, say, against the worker memory limit) may be what kills them.
const MAX_RETURNS: u32 = 3;

/// How long a started process has to connect and say who it is.
const HANDSHAKE_WAIT: Duration = Duration::from_secs(10);

fn describe_exit(status: Option<std::process::ExitStatus>) -> String {
    match status {
        Some(s) => match (s.code(), s.signal()) {
            (Some(code), _) => format!("exited with status {code}"),
            (None, Some(sig)) => format!("was killed by signal {sig} ({})", signal_name(sig)),
            _ => "ended".to_string(),
        },
        None => "stopped answering".to_string(),
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        6 => "SIGABRT",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        7 => "SIGBUS",
        8 => "SIGFPE",
        4 => "SIGILL",
        15 => "SIGTERM",
        _ => "signal",
    }
}

/// Why a worker process did not become ready.
enum StartFailure {
    Spawn(std::io::Error),
    LoadFailed(String),
    Ended(String),
}

impl Pool {
    /// Starts `workers` worker processes. `on_fatal` runs (and should exit the
    /// process) when a worker fails to load its model before any worker was
    /// ever ready: a broken container must fail, as SageMaker expects.
    pub fn start(
        workers: usize,
        plan: &WorkerPlan,
        stage_label: String,
        on_fatal: fn(&str) -> !,
    ) -> std::io::Result<Arc<Pool>> {
        let memory_limit_mb = worker::memory_limit_mb()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        // A fresh directory only this user can enter (creating it fails if
        // the name is taken, so nobody can prepare it for us).
        let socket_dir = std::env::temp_dir().join(format!("modelstage-{}-{nanos}", std::process::id()));
        std::fs::DirBuilder::new().mode(0o700).create(&socket_dir)?;
        let socket_path = socket_dir.join("workers.sock");
        let listener = UnixListener::bind(&socket_path)?;
        let waiting: Waiting = Arc::new(Mutex::new(HashMap::new()));
        let pool = Arc::new(Pool {
            board: Arc::new(Board::new(workers)),
            slots: workers,
            threads: plan.threads.max(1),
            next_id: AtomicU64::new(1),
            next_worker: AtomicU64::new(1),
            ever_ready: AtomicBool::new(false),
            failing: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            stage_label,
            plan_json: serde_json::to_string(plan).expect("plan serializes"),
            socket_path,
            socket_dir,
            waiting: Arc::clone(&waiting),
            exe: std::env::current_exe()?,
            lanes: plan.lanes.max(1),
            memory_limit_mb,
        });
        std::thread::Builder::new()
            .name("worker-accept".into())
            .spawn(move || accept_loop(listener, waiting))?;
        for slot in 0..workers {
            let pool = Arc::clone(&pool);
            std::thread::Builder::new()
                .name(format!("worker-{slot}"))
                .spawn(move || pool.lifecycle(slot, on_fatal))?;
        }
        Ok(pool)
    }

    /// True once a worker has loaded the model, as long as some slot has a
    /// worker or is starting one that is not failing to load.
    pub fn is_ready(&self) -> bool {
        self.ever_ready.load(Ordering::SeqCst) && self.failing.load(Ordering::SeqCst) < self.slots
    }

    /// Runs `request` on a worker with a free thread and returns its answer.
    /// Waits for a thread up to `deadline`; a request whose worker dies
    /// before starting it is sent to another worker (or the replacement).
    pub async fn call(&self, mut request: WireRequest, deadline: Instant) -> Result<WireAnswer, CallError> {
        let mut returns = 0;
        loop {
            if !self.is_ready() {
                return Err(CallError::Unavailable);
            }
            let worker = self
                .board
                .acquire(deadline)
                .await
                .ok_or(CallError::TimedOut { started: false })?;
            let Some(lane) = Lane::of(&worker, &self.board) else {
                self.board.release(&worker);
                if self.board.holds(&worker) {
                    // It lives but has no lane for this thread.
                    return Err(CallError::Unavailable);
                }
                continue;
            };
            request.id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let id = request.id;
            let rx = match lane.send(request) {
                Ok(rx) => rx,
                Err(back) => {
                    // The lane closed: its worker is gone.
                    self.board.remove(&worker);
                    request = *back;
                    continue;
                }
            };
            let outcome = tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), rx).await;
            match outcome {
                Ok(Ok(Outcome::Answer(answer))) => {
                    super::metrics::stage_answered(answer.hook_time());
                    return Ok(answer);
                }
                Ok(Ok(Outcome::Crashed(message))) => return Err(CallError::Crashed(message)),
                Ok(Ok(Outcome::Returned(back))) => {
                    returns += 1;
                    if returns > MAX_RETURNS {
                        return Err(CallError::Crashed(format!(
                            "{returns} worker processes running stage {} died while this request waited to start on them",
                            self.stage_label
                        )));
                    }
                    log::info!(
                        "rid={} goes to another worker: worker {} ended before starting it",
                        back.request_id,
                        worker.pid
                    );
                    request = back;
                }
                Ok(Err(_)) => {
                    return Err(CallError::Crashed(format!(
                        "the worker running stage {} went away",
                        self.stage_label
                    )))
                }
                Err(_) => {
                    let started = lane.forget(id).unwrap_or(false);
                    if started {
                        self.retire(lane.worker());
                    }
                    return Err(CallError::TimedOut { started });
                }
            }
        }
    }

    /// A request on `worker` passed its deadline: it takes no new requests,
    /// its replacement starts now, and it is killed once the requests it
    /// still runs are answered.
    fn retire(&self, worker: &Arc<Worker>) {
        if worker.retiring.swap(true, Ordering::SeqCst) {
            return;
        }
        self.board.remove(worker);
        log::warn!(
            "worker {} of {} is retired: a request on it passed the timeout",
            worker.pid,
            self.stage_label
        );
        super::metrics::worker_timed_out();
        let _ = worker.events.send(SlotEvent::Retired(worker.id));
        if worker.inflight.load(Ordering::Relaxed) == 0 {
            worker.kill();
        }
    }

    /// Stops every worker (after the HTTP server has drained). Retired
    /// workers still running end with their slot's thread (parent-death
    /// signal).
    pub fn shutdown(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        for w in self.board.drain() {
            w.kill();
        }
        let _ = std::fs::remove_file(&self.socket_path);
        let _ = std::fs::remove_dir(&self.socket_dir);
    }

    fn spawn(&self) -> std::io::Result<Child> {
        Command::new(&self.exe)
            .arg("worker")
            .env(ENV_SOCKET, &self.socket_path)
            .env(ENV_PLAN, &self.plan_json)
            .env(ENV_PARENT, std::process::id().to_string())
            .spawn()
    }

    /// One slot: start a worker, serve through it until it dies or is
    /// retired, repeat. This thread is the workers' parent: they are
    /// killed when it ends (see `worker`).
    fn lifecycle(self: Arc<Self>, slot: usize, on_fatal: fn(&str) -> !) {
        let (events_tx, events_rx) = mpsc::channel();
        let mut failures = 0u32;
        while !self.stopping.load(Ordering::SeqCst) {
            let started = Instant::now();
            let (worker, control) = match self.start_worker(&events_tx) {
                Ok(w) => w,
                Err(StartFailure::Spawn(e)) => on_fatal(&format!("cannot start a worker process: {e}")),
                Err(StartFailure::LoadFailed(message)) => {
                    if !self.ever_ready.load(Ordering::SeqCst) {
                        on_fatal(&message);
                    }
                    log::error!("a replacement worker failed to load: {message}");
                    self.backoff(&mut failures);
                    continue;
                }
                Err(StartFailure::Ended(how)) => {
                    self.worker_failed_to_start(&how, &mut failures, on_fatal);
                    continue;
                }
            };
            if failures > 0 {
                self.failing.fetch_sub(1, Ordering::SeqCst);
                failures = 0;
            }
            self.board.install(slot, Arc::clone(&worker), self.threads);
            self.ever_ready.store(true, Ordering::SeqCst);
            super::metrics::worker_started(started.elapsed());
            log::info!(
                "worker {} of {} ready in {} ms",
                worker.pid,
                self.stage_label,
                started.elapsed().as_millis()
            );
            let watcher = {
                let pool = Arc::clone(&self);
                let worker = Arc::clone(&worker);
                let events = events_tx.clone();
                std::thread::Builder::new()
                    .name(format!("worker-{slot}-watch"))
                    .spawn(move || pool.watch(worker, control, events))
            };
            if let Err(e) = watcher {
                log::error!("cannot watch worker {}: {e}; stopping it", worker.pid);
                self.board.remove(&worker);
                worker.kill();
                continue;
            }
            loop {
                match events_rx.recv() {
                    Ok(SlotEvent::Ended(id) | SlotEvent::Retired(id)) if id == worker.id => break,
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        }
    }

    /// Starts a worker process and waits until it has loaded the model and
    /// opened its lanes.
    fn start_worker(
        &self,
        events: &mpsc::Sender<SlotEvent>,
    ) -> Result<(Arc<Worker>, BufReader<UnixStream>), StartFailure> {
        let (conn_tx, conn_rx) = mpsc::channel();
        // The process id is registered before the accept thread can look
        // it up: that thread needs this lock to hand a connection over.
        let mut child = {
            let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
            let child = self.spawn().map_err(StartFailure::Spawn)?;
            waiting.insert(child.id(), conn_tx);
            child
        };
        let pid = child.id();
        let connected = self.handshake(&mut child, &conn_rx);
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&pid);
        let (control, lanes) = match connected {
            Ok(c) => c,
            Err(failure) => {
                let _ = child.kill();
                let status = child.wait().ok();
                return Err(match failure {
                    StartFailure::Ended(how) if how.is_empty() => StartFailure::Ended(describe_exit(status)),
                    other => other,
                });
            }
        };
        let worker = Arc::new(Worker {
            id: self.next_worker.fetch_add(1, Ordering::Relaxed),
            pid,
            stage_label: self.stage_label.clone(),
            lanes: Mutex::new(lanes),
            inflight: AtomicUsize::new(0),
            retiring: AtomicBool::new(false),
            exit: Mutex::new(None),
            child: Mutex::new(child),
            events: events.clone(),
        });
        Ok((worker, control))
    }

    /// The worker's connections: control (HELLO, then READY or
    /// LOAD_FAILED once the model is loaded), then its lanes.
    /// `StartFailure::Ended("")` when the process ended or broke off.
    fn handshake(
        &self,
        child: &mut Child,
        conn_rx: &mpsc::Receiver<UnixStream>,
    ) -> Result<(BufReader<UnixStream>, Vec<UnixStream>), StartFailure> {
        let broke_off = || StartFailure::Ended(String::new());
        let control = next_connection(child, conn_rx, protocol::HELLO).ok_or_else(broke_off)?;
        let mut control = BufReader::new(control);
        let mut buf = Vec::new();
        // No time limit here: this is model_fn's time. If the process dies,
        // the read ends.
        match protocol::read_frame(&mut control, &mut buf) {
            Ok(Some(kind)) => {
                match protocol::decode_from_worker(kind, &bytes::Bytes::copy_from_slice(&buf[1..])) {
                    Ok(FromWorker::Ready) => {}
                    Ok(FromWorker::LoadFailed { message }) => return Err(StartFailure::LoadFailed(message)),
                    _ => return Err(broke_off()),
                }
            }
            _ => return Err(broke_off()),
        }
        let lanes = (0..self.lanes)
            .map(|_| next_connection(child, conn_rx, protocol::LANE))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(broke_off)?;
        Ok((control, lanes))
    }

    /// Waits for `worker`'s control connection to end (the process is
    /// gone), then records how it ended and tells its slot.
    fn watch(
        &self,
        worker: Arc<Worker>,
        mut control: BufReader<UnixStream>,
        events: mpsc::Sender<SlotEvent>,
    ) {
        let mut buf = Vec::new();
        while let Ok(Some(_)) = protocol::read_frame(&mut control, &mut buf) {}
        self.board.remove(&worker);
        let status = worker.child.lock().ok().and_then(|mut c| c.wait().ok());
        let mut how = describe_exit(status);
        if let (Some(mb), Some(_)) = (self.memory_limit_mb, status.and_then(|s| s.signal())) {
            how.push_str(&format!(
                " (workers may allocate at most {mb} MB, MODELSTAGE_WORKER_MEMORY_MB: an allocation past it ends the process)"
            ));
        }
        if let Ok(mut exit) = worker.exit.lock() {
            *exit = Some(how.clone());
        }
        if !self.stopping.load(Ordering::SeqCst) {
            let held = worker.inflight.load(Ordering::Relaxed);
            if !worker.retiring.load(Ordering::Relaxed) {
                super::metrics::worker_crashed(status.and_then(|s| s.signal()).map(signal_name));
                log::error!(
                    "worker {} of {} {how} while holding {held} request(s); starting a replacement",
                    worker.pid,
                    self.stage_label
                );
            } else if held > 0 {
                log::error!(
                    "retired worker {} of {} {how} while holding {held} request(s)",
                    worker.pid,
                    self.stage_label
                );
            } else {
                log::info!("retired worker {} of {} stopped", worker.pid, self.stage_label);
            }
        }
        let _ = events.send(SlotEvent::Ended(worker.id));
    }

    fn worker_failed_to_start(&self, how: &str, failures: &mut u32, on_fatal: fn(&str) -> !) {
        if !self.ever_ready.load(Ordering::SeqCst) {
            on_fatal(&format!(
                "the worker process for stage {} {how} before its model was loaded",
                self.stage_label
            ));
        }
        log::error!(
            "a replacement worker for {} {how} while starting",
            self.stage_label
        );
        self.backoff(failures);
    }

    fn backoff(&self, failures: &mut u32) {
        if *failures == 0 {
            self.failing.fetch_add(1, Ordering::SeqCst);
        }
        *failures += 1;
        std::thread::sleep(Duration::from_millis((50u64 << (*failures).min(6)).min(2000)));
    }
}

/// The next connection from `child`, whose first frame must be `kind`;
/// `None` if the process ends or does not connect in time.
fn next_connection(child: &mut Child, conn_rx: &mpsc::Receiver<UnixStream>, kind: u8) -> Option<UnixStream> {
    let deadline = Instant::now() + HANDSHAKE_WAIT;
    let mut stream = loop {
        match conn_rx.recv_timeout(Duration::from_millis(20)) {
            Ok(s) => break s,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if Instant::now() > deadline {
                    return None;
                }
                if let Ok(Some(_)) = child.try_wait() {
                    // It may have connected (say, to report a failed
                    // model_fn) just before exiting: the accept thread may
                    // still be handing that connection over.
                    break conn_rx.recv_timeout(Duration::from_millis(500)).ok()?;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return None,
        }
    };
    stream.set_read_timeout(Some(HANDSHAKE_WAIT)).ok()?;
    let mut buf = Vec::new();
    let first = protocol::read_frame(&mut stream, &mut buf).ok().flatten();
    stream.set_read_timeout(None).ok()?;
    (first == Some(kind)).then_some(stream)
}

/// Takes connections to the worker socket and hands each to the lifecycle
/// thread that started the process at the other end. A connection from any
/// other process is closed at once, before anything is read from it.
fn accept_loop(listener: UnixListener, waiting: Waiting) {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let Some(pid) = getsockopt(&stream, PeerCredentials)
            .ok()
            .and_then(|c| u32::try_from(c.pid()).ok())
        else {
            continue;
        };
        let tx = waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&pid)
            .cloned();
        match tx {
            Some(tx) => {
                let _ = tx.send(stream);
            }
            None => log::warn!(
                "refused a connection to the worker socket from process {pid}, not a worker of this server"
            ),
        }
    }
}
