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
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::config::{Vars, WorkerPlan};
use super::dispatch::Board;
use super::hosted::WorkerOutput;
use super::lane::{LaneReply, Lanes};
use super::mme;
use super::process::{SlotEvent, WorkerProcess};
use super::protocol::{self, FromWorker, StageDescription, WireAnswer, WireRequest};
use super::socket_dir;
use super::worker::{self, ENV_PARENT, ENV_PLAN, ENV_SOCKET};

/// Connections to the worker socket, handed to the lifecycle thread that
/// started the process at the other end, by its process id.
type Waiting = Arc<Mutex<HashMap<u32, mpsc::Sender<UnixStream>>>>;

/// Why a request got no answer from a stage.
#[derive(Debug)]
pub(super) enum CallError {
    /// No worker can take requests: the model is still loading, or no
    /// worker can load it.
    Unavailable,
    /// The deadline passed. `started`: a worker was running the request
    /// (it is being replaced); otherwise every thread was busy until then.
    TimedOut { started: bool },
    /// The worker process died while running the request.
    Crashed(String),
}

/// Why the pool cannot serve: the endpoint must stop, as SageMaker expects
/// of a broken container.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PoolError {
    /// No worker process could be started (shared: every waiter learns it).
    #[error("cannot start a worker process: {0}")]
    Spawn(Arc<std::io::Error>),
    /// The first worker failed to open its stages or load its model: its
    /// message says which and why.
    #[error("{0}")]
    Load(String),
    /// The first worker ended before its model was loaded.
    #[error("the worker process for stage {stage} {how} before its model was loaded")]
    Ended {
        /// How errors name the stages.
        stage: String,
        /// How it ended (`was killed by signal 9 (SIGKILL)`, ...).
        how: String,
    },
}

/// What the pool learned while starting: the stages' descriptions from the
/// first worker that opened them, or why it never will.
#[derive(Default)]
struct Startup {
    described: Option<Arc<Vec<StageDescription>>>,
    fatal: Option<PoolError>,
}

pub(super) struct Pool {
    board: Arc<Board>,
    slots: usize,
    /// Request threads per worker when its stages may share one model
    /// across threads (see [`StageDescription::threads`]).
    shared_threads: usize,
    next_id: AtomicU64,
    ever_ready: AtomicBool,
    /// Slots whose last start failed.
    failing: AtomicUsize,
    stopping: AtomicBool,
    /// How logs and errors name the stages before a worker described them:
    /// their library files or container names.
    provisional_label: String,
    /// How logs and errors name the stages, once a worker described them.
    label: OnceLock<String>,
    /// The container names of a fused pipeline (empty for one stage).
    container_names: Vec<String>,
    startup: Mutex<Startup>,
    startup_changed: Condvar,
    /// Woken once a fatal failure is recorded in `startup`.
    fatal_notify: tokio::sync::Notify,
    plan_json: String,
    socket_path: PathBuf,
    socket_dir: PathBuf,
    waiting: Waiting,
    exe: PathBuf,
    /// Lanes per worker: one per HTTP thread.
    lanes: usize,
    /// `MODELSTAGE_WORKER_MEMORY_MB`, named when a worker dies of a signal.
    memory_limit_mb: Option<u64>,
    /// The models of a multi-model endpoint, which every worker loads
    /// before it takes requests.
    models: Option<Arc<mme::Registry>>,
    /// Variables each worker gets over this process's environment (a hosted endpoint's).
    env: Vec<(String, String)>,
    /// Where each worker's output goes (a hosted endpoint's); `None`: this process's.
    output: Option<WorkerOutput>,
}

/// Times a request goes back to be sent elsewhere because its worker died
/// before starting it. Past this, the request fails: something about it
/// (its size, say, against the worker memory limit) may be what kills them.
const MAX_RETURNS: u32 = 3;

/// The next worker's id. One sequence for the whole process: an HTTP thread keeps its lanes by
/// worker id, and a server hosting several endpoints (see `hosted`) has several pools.
static NEXT_WORKER: AtomicU64 = AtomicU64::new(1);

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
    /// Starts `workers` worker processes. The server learns what the stages
    /// are from the first worker that opens them ([`Pool::described`]); a
    /// worker that fails to open its stages or load its model before any
    /// worker was ever ready is fatal ([`Pool::fatal`]).
    ///
    /// In a multi-model endpoint (`models`), each worker, the first ones
    /// and every replacement, loads the models of the registry before it
    /// takes requests.
    pub(super) fn start(
        workers: usize,
        plan: &WorkerPlan,
        models: Option<Arc<mme::Registry>>,
        vars: &Vars,
        output: Option<WorkerOutput>,
    ) -> std::io::Result<Arc<Pool>> {
        let memory_limit_mb = worker::memory_limit_mb(vars)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let socket_dir = socket_dir::create()?;
        let socket_path = socket_dir.join(socket_dir::SOCKET);
        let listener = UnixListener::bind(&socket_path)?;
        let waiting: Waiting = Arc::new(Mutex::new(HashMap::new()));
        let container_names = if plan.stages.len() > 1 {
            plan.stages.iter().map(|s| s.name.clone()).collect()
        } else {
            Vec::new()
        };
        let provisional_label = plan
            .stages
            .iter()
            .map(|s| match s.library.file_name() {
                Some(file) if plan.stages.len() == 1 => file.to_string_lossy().into_owned(),
                _ => s.name.clone(),
            })
            .collect::<Vec<_>>()
            .join(" -> ");
        let pool = Arc::new(Pool {
            board: Arc::new(Board::new(workers)),
            slots: workers,
            shared_threads: plan.threads.max(1),
            next_id: AtomicU64::new(1),
            ever_ready: AtomicBool::new(false),
            failing: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            provisional_label,
            label: OnceLock::new(),
            container_names,
            startup: Mutex::new(Startup::default()),
            startup_changed: Condvar::new(),
            fatal_notify: tokio::sync::Notify::new(),
            plan_json: serde_json::to_string(plan).expect("plan serializes"),
            socket_path,
            socket_dir,
            waiting: Arc::clone(&waiting),
            exe: std::env::current_exe()?,
            lanes: plan.lanes.max(1),
            memory_limit_mb,
            models,
            env: vars.given().to_vec(),
            output,
        });
        std::thread::Builder::new()
            .name("worker-socket".into())
            .spawn(move || accept_loop(listener, waiting))?;
        for slot in 0..workers {
            let pool = Arc::clone(&pool);
            std::thread::Builder::new()
                .name(format!("slot-{slot}"))
                .spawn(move || pool.lifecycle(slot))?;
        }
        Ok(pool)
    }

    /// Blocks until a worker has described the stages, or the pool failed
    /// before one could.
    pub(super) fn described(&self) -> Result<Arc<Vec<StageDescription>>, PoolError> {
        let mut startup = self.startup.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(fatal) = &startup.fatal {
                return Err(fatal.clone());
            }
            if let Some(described) = &startup.described {
                return Ok(Arc::clone(described));
            }
            startup = self
                .startup_changed
                .wait(startup)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Blocks until a worker has loaded the model and takes requests (`Ok(true)`), the pool
    /// failed before one did, or `wait` passed (`Ok(false)`).
    pub(super) fn wait_ready(&self, wait: Duration) -> Result<bool, PoolError> {
        let deadline = Instant::now() + wait;
        let mut startup = self.startup.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(fatal) = &startup.fatal {
                return Err(fatal.clone());
            }
            if self.ever_ready.load(Ordering::SeqCst) {
                return Ok(true);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            startup = self
                .startup_changed
                .wait_timeout(startup, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Resolves once the pool has failed for good (no worker ever loaded
    /// the model): the server must stop.
    pub(super) async fn fatal(&self) -> PoolError {
        loop {
            let notified = self.fatal_notify.notified();
            if let Some(fatal) = self.fatal_error() {
                return fatal;
            }
            notified.await;
        }
    }

    /// The failure that stopped the pool, if one did.
    pub(super) fn fatal_error(&self) -> Option<PoolError> {
        self.startup
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .fatal
            .clone()
    }

    /// How logs and errors name the stages: the stage's declared name, or
    /// the container names of a fused pipeline.
    pub(super) fn label(&self) -> &str {
        self.label.get().unwrap_or(&self.provisional_label)
    }

    /// Records the first worker's description of the stages.
    fn publish(&self, described: Vec<StageDescription>) {
        let mut startup = self.startup.lock().unwrap_or_else(|e| e.into_inner());
        if startup.described.is_none() {
            let label = if self.container_names.is_empty() {
                described.first().map(|s| s.name.clone()).unwrap_or_default()
            } else {
                self.container_names.join(" -> ")
            };
            let _ = self.label.set(label);
            startup.described = Some(Arc::new(described));
            self.startup_changed.notify_all();
        }
    }

    /// Records a failure the endpoint cannot recover from and stops every
    /// slot; the server learns it from [`Pool::described`] or [`Pool::fatal`].
    fn fail(&self, error: PoolError) {
        self.stopping.store(true, Ordering::SeqCst);
        let mut startup = self.startup.lock().unwrap_or_else(|e| e.into_inner());
        if startup.fatal.is_none() {
            startup.fatal = Some(error);
        }
        self.startup_changed.notify_all();
        self.fatal_notify.notify_one();
    }

    /// True once a worker has loaded the model, as long as some slot has a
    /// worker or is starting one that is not failing to load.
    pub(super) fn is_ready(&self) -> bool {
        self.ever_ready.load(Ordering::SeqCst) && self.failing.load(Ordering::SeqCst) < self.slots
    }

    /// Runs `request` on a worker with a free thread and returns its answer.
    /// Waits for a thread up to `deadline`; a request whose worker dies
    /// before starting it is sent to another worker (or the replacement).
    /// `lanes`: the calling HTTP thread's lanes.
    pub(super) async fn call(
        &self,
        mut request: WireRequest,
        deadline: Instant,
        lanes: &Rc<Lanes>,
    ) -> Result<WireAnswer, CallError> {
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
            let Some(lane) = lanes.to(&worker, &self.board) else {
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
                Ok(Ok(LaneReply::Answered(answer))) => {
                    super::metrics::stage_answered(self.label(), answer.hook_time());
                    return Ok(answer);
                }
                Ok(Ok(LaneReply::Crashed(message))) => return Err(CallError::Crashed(message)),
                Ok(Ok(LaneReply::Unstarted(back))) => {
                    returns += 1;
                    if returns > MAX_RETURNS {
                        return Err(CallError::Crashed(format!(
                            "{returns} worker processes running stage {} died while this request waited to start on them",
                            self.label()
                        )));
                    }
                    log::info!(
                        "rid={} goes to another worker: worker {} ended before starting it",
                        back.meta.request_id,
                        worker.pid
                    );
                    request = back;
                }
                Ok(Err(_)) => {
                    return Err(CallError::Crashed(format!(
                        "the worker running stage {} went away",
                        self.label()
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
    fn retire(&self, worker: &Arc<WorkerProcess>) {
        if worker.retiring.swap(true, Ordering::SeqCst) {
            return;
        }
        self.board.remove(worker);
        log::warn!(
            "worker {} of {} is retired: a request on it passed the timeout",
            worker.pid,
            self.label()
        );
        super::metrics::worker_timed_out(self.label());
        let _ = worker.events.send(SlotEvent::Retired(worker.id));
        if worker.inflight.load(Ordering::Relaxed) == 0 {
            worker.kill();
        }
    }

    /// Stops every worker (after the HTTP server has drained). Retired
    /// workers still running end with their slot's thread (parent-death
    /// signal).
    pub(super) fn shutdown(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        for w in self.board.drain() {
            w.kill();
        }
        // Ends the accept thread (see `accept_loop`): a server hosting endpoints outlives pools.
        let _ = UnixStream::connect(&self.socket_path);
        let _ = std::fs::remove_file(&self.socket_path);
        let _ = std::fs::remove_dir(&self.socket_dir);
    }

    fn spawn(&self) -> std::io::Result<Child> {
        let mut command = Command::new(&self.exe);
        command
            .arg("worker")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env(ENV_SOCKET, &self.socket_path)
            .env(ENV_PLAN, &self.plan_json)
            .env(ENV_PARENT, std::process::id().to_string());
        if self.output.is_some() {
            command.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
        let mut child = command.spawn()?;
        if let (Some(output), Some(stdout), Some(stderr)) =
            (&self.output, child.stdout.take(), child.stderr.take())
        {
            (output.0)(stdout, stderr);
        }
        Ok(child)
    }

    /// One slot: start a worker, serve through it until it dies or is
    /// retired, repeat. This thread is the workers' parent: they are
    /// killed when it ends (see `worker`).
    fn lifecycle(self: Arc<Self>, slot: usize) {
        let (events_tx, events_rx) = mpsc::channel();
        let mut failures = 0u32;
        while !self.stopping.load(Ordering::SeqCst) {
            let started = Instant::now();
            let (worker, control) = match self.start_worker(&events_tx) {
                Ok(w) => w,
                Err(StartFailure::Spawn(e)) => return self.fail(PoolError::Spawn(Arc::new(e))),
                Err(StartFailure::LoadFailed(message)) => {
                    if !self.ever_ready.load(Ordering::SeqCst) {
                        return self.fail(PoolError::Load(message));
                    }
                    log::error!("a replacement worker failed to load: {message}");
                    self.backoff(&mut failures);
                    continue;
                }
                Err(StartFailure::Ended(how)) => {
                    if !self.ever_ready.load(Ordering::SeqCst) {
                        return self.fail(PoolError::Ended {
                            stage: self.label().to_string(),
                            how,
                        });
                    }
                    log::error!("a replacement worker for {} {how} while starting", self.label());
                    self.backoff(&mut failures);
                    continue;
                }
            };
            if failures > 0 {
                self.failing.fetch_sub(1, Ordering::SeqCst);
                failures = 0;
            }
            let watcher = {
                let pool = Arc::clone(&self);
                let worker = Arc::clone(&worker);
                let events = events_tx.clone();
                std::thread::Builder::new()
                    .name(format!("slot-{slot}-watch"))
                    .spawn(move || pool.watch(worker, control, events))
            };
            if let Err(e) = watcher {
                log::error!("cannot watch worker {}: {e}; stopping it", worker.pid);
                self.board.remove(&worker);
                worker.kill();
                continue;
            }
            // A multi-model endpoint's worker loads the models first (its
            // watcher, started above, reads the answers).
            if let Some(models) = &self.models {
                models.attach(&worker);
            }
            // (Unless it ended meanwhile: its watcher has told this thread.)
            if worker.exit.lock().map(|e| e.is_none()).unwrap_or(true) {
                self.board.install(slot, Arc::clone(&worker), worker.threads);
                self.ever_ready.store(true, Ordering::SeqCst);
                // Under the lock, so that a waiter in `wait_ready` either saw the flag or is woken.
                drop(self.startup.lock().unwrap_or_else(|e| e.into_inner()));
                self.startup_changed.notify_all();
                super::metrics::worker_started(self.label(), started.elapsed());
                log::info!(
                    "worker {} of {} ready in {} ms",
                    worker.pid,
                    self.label(),
                    started.elapsed().as_millis()
                );
            }
            // Shut down while it started: the board was drained before it was installed. (A
            // server hosting endpoints outlives their pools, so nothing else would stop it.)
            if self.stopping.load(Ordering::SeqCst) {
                self.board.remove(&worker);
                worker.kill();
                return;
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
    ) -> Result<(Arc<WorkerProcess>, BufReader<UnixStream>), StartFailure> {
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
        let (control, lanes, threads) = match connected {
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
        let models = mme::Control::new(control.get_ref().try_clone().ok());
        let worker = Arc::new(WorkerProcess {
            id: NEXT_WORKER.fetch_add(1, Ordering::Relaxed),
            pid,
            stage_label: self.label().to_string(),
            threads,
            lanes: Mutex::new(lanes),
            inflight: AtomicUsize::new(0),
            retiring: AtomicBool::new(false),
            exit: Mutex::new(None),
            child: Mutex::new(child),
            events: events.clone(),
            models,
        });
        Ok((worker, control))
    }

    /// The worker's connections: control (HELLO, DESCRIBED once it opened
    /// the stage libraries, then READY once the model is loaded, or
    /// LOAD_FAILED at any point), then its lanes; and its request threads.
    /// `StartFailure::Ended("")` when the process ended or broke off.
    fn handshake(
        &self,
        child: &mut Child,
        conn_rx: &mpsc::Receiver<UnixStream>,
    ) -> Result<(BufReader<UnixStream>, Vec<UnixStream>, usize), StartFailure> {
        let broke_off = || StartFailure::Ended(String::new());
        let control = next_connection(child, conn_rx, protocol::HELLO).ok_or_else(broke_off)?;
        let mut control = BufReader::new(control);
        let mut buf = Vec::new();
        let mut threads = None;
        // No time limit here: this is the libraries' initialisers' and
        // model_fn's time. If the process dies, the read ends.
        loop {
            let Ok(Some(kind)) = protocol::read_frame(&mut control, &mut buf) else {
                return Err(broke_off());
            };
            match protocol::decode_from_worker(kind, &bytes::Bytes::copy_from_slice(&buf[1..])) {
                Ok(FromWorker::Described(stages)) if threads.is_none() => {
                    threads = Some(StageDescription::threads(&stages, self.shared_threads));
                    self.publish(stages);
                }
                Ok(FromWorker::Ready) if threads.is_some() => break,
                Ok(FromWorker::LoadFailed { message }) => return Err(StartFailure::LoadFailed(message)),
                _ => return Err(broke_off()),
            }
        }
        let lanes = (0..self.lanes)
            .map(|_| next_connection(child, conn_rx, protocol::LANE))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(broke_off)?;
        Ok((control, lanes, threads.unwrap_or(1)))
    }

    /// Waits for `worker`'s control connection to end (the process is
    /// gone), then records how it ended and tells its slot.
    fn watch(
        &self,
        worker: Arc<WorkerProcess>,
        mut control: BufReader<UnixStream>,
        events: mpsc::Sender<SlotEvent>,
    ) {
        let mut buf = Vec::new();
        while let Ok(Some(kind)) = protocol::read_frame(&mut control, &mut buf) {
            worker.models.deliver(kind, &buf[1..]);
        }
        worker.models.close();
        if let Some(models) = &self.models {
            models.detach(&worker);
        }
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
                super::metrics::worker_crashed(
                    self.label(),
                    status.and_then(|s| s.signal()).map(signal_name),
                );
                log::error!(
                    "worker {} of {} {how} while holding {held} request(s); starting a replacement",
                    worker.pid,
                    self.label()
                );
            } else if held > 0 {
                log::error!(
                    "retired worker {} of {} {how} while holding {held} request(s)",
                    worker.pid,
                    self.label()
                );
            } else {
                log::info!("retired worker {} of {} stopped", worker.pid, self.label());
            }
        }
        let _ = events.send(SlotEvent::Ended(worker.id));
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
/// other process is closed at once, before anything is read from it. A
/// connection from this process itself is the pool's shutdown: the thread ends.
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
        if pid == std::process::id() {
            return;
        }
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
