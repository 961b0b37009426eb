//! The server's supervised worker processes.
//!
//! Each worker slot has a lifecycle thread that starts a `modelstage worker`
//! process, waits for it to load its model and open its lanes (one data
//! connection per HTTP thread, see `lane`), and when the process dies (a
//! crash in the stage) starts a replacement; each lane answers the requests
//! it held with a 500 naming the stage and how the process ended.
//!
//! Each HTTP thread sends its requests to a worker of its own while that
//! worker's lane keeps answering, else to the least loaded one (`dispatch`). A request past
//! the timeout gets 504 and its worker is retired (killed once the other
//! requests it holds are answered), as gunicorn replaces a worker whose
//! request timed out.

use std::collections::HashMap;
use std::io::BufReader;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::config::WorkerPlan;
use super::lane::{self, Lane};
use super::protocol::{self, FromWorker, WireAnswer, WireRequest};
use super::worker::{ENV_PLAN, ENV_SOCKET, ENV_TOKEN};

/// What a request ends with, as far as the pool knows.
#[derive(Debug)]
pub enum Outcome {
    Answer(WireAnswer),
    /// The worker died while holding the request.
    Crashed(String),
}

/// One running worker process.
pub struct Worker {
    pub pid: u32,
    /// Unique per started process: names its lanes.
    pub token: u64,
    pub stage_label: String,
    /// Lanes not yet taken by an HTTP thread.
    lanes: Mutex<Vec<UnixStream>>,
    pub inflight: AtomicUsize,
    retiring: AtomicBool,
    /// How the process ended, once it has.
    exit: Mutex<Option<String>>,
    child: Mutex<Child>,
}

impl Worker {
    fn kill(&self) {
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

    /// One of its requests got its answer.
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

/// A connection from a freshly started worker.
enum Connection {
    Control(UnixStream),
    Lane(UnixStream),
}

/// Connections from freshly started workers, matched to their slot by token.
type Waiting = Arc<Mutex<HashMap<u64, mpsc::Sender<Connection>>>>;

pub struct Pool {
    slots: RwLock<Vec<Option<Arc<Worker>>>>,
    next_id: AtomicU64,
    ever_ready: AtomicBool,
    stopping: AtomicBool,
    stage_label: String,
    plan_json: String,
    socket_path: PathBuf,
    socket_dir: PathBuf,
    waiting: Waiting,
    exe: PathBuf,
    /// Lanes per worker: one per HTTP thread.
    lanes: usize,
}

/// Why a request could not be dispatched.
pub enum DispatchError {
    NoWorker,
}

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
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let socket_dir = std::env::temp_dir().join(format!("modelstage-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&socket_dir)?;
        let socket_path = socket_dir.join("workers.sock");
        let _ = std::fs::remove_file(&socket_path);
        let listener = UnixListener::bind(&socket_path)?;
        let waiting: Waiting = Arc::new(Mutex::new(HashMap::new()));
        let pool = Arc::new(Pool {
            slots: RwLock::new(vec![None; workers]),
            next_id: AtomicU64::new(1),
            ever_ready: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            stage_label,
            plan_json: serde_json::to_string(plan).expect("plan serializes"),
            socket_path,
            socket_dir,
            waiting: Arc::clone(&waiting),
            exe: std::env::current_exe()?,
            lanes: plan.lanes.max(1),
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

    /// True when at least one worker can take a request.
    pub fn is_ready(&self) -> bool {
        self.slots
            .read()
            .map(|s| s.iter().flatten().any(|w| !w.retiring.load(Ordering::Relaxed)))
            .unwrap_or(false)
    }

    /// Sends a request over this thread's lane to a live worker: this
    /// thread's own worker (slot = thread number modulo slots) while its lane
    /// keeps answering, else the one whose lane is not stalled and holds the
    /// fewest requests. Keeping each HTTP thread on one worker keeps as few
    /// worker threads busy as there are HTTP threads, which on a small
    /// machine is what keeps the latency tail short; a slow request makes
    /// the lane stall and the next requests go elsewhere.
    pub fn dispatch(
        &self,
        mut request: WireRequest,
    ) -> Result<(Ticket, oneshot::Receiver<Outcome>), DispatchError> {
        let worker = {
            let slots = self.slots.read().map_err(|_| DispatchError::NoWorker)?;
            let own = http_thread_number() % slots.len().max(1);
            slots
                .iter()
                .enumerate()
                .filter_map(|(slot, w)| Some((slot, w.as_ref()?)))
                .filter(|(_, w)| !w.retiring.load(Ordering::Relaxed))
                .min_by_key(|(slot, w)| {
                    let (stalled, waiting) = lane::state_here(w.token);
                    (stalled, *slot != own, waiting, w.inflight.load(Ordering::Relaxed))
                })
                .map(|(_, w)| Arc::clone(w))
                .ok_or(DispatchError::NoWorker)?
        };
        let lane = Lane::of(&worker).ok_or(DispatchError::NoWorker)?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        request.id = id;
        let rx = lane.send(&request).ok_or(DispatchError::NoWorker)?;
        worker.inflight.fetch_add(1, Ordering::Relaxed);
        Ok((Ticket { id, lane }, rx))
    }

    /// A request timed out: forget it, and retire its worker (killed as soon
    /// as it holds no other request; the hung thread cannot be stopped otherwise).
    pub fn timed_out(&self, ticket: &Ticket) {
        let w = ticket.lane.worker();
        if ticket.lane.forget(ticket.id) {
            w.inflight.fetch_sub(1, Ordering::Relaxed);
        }
        w.retiring.store(true, Ordering::Relaxed);
        log::warn!(
            "worker {} of {} is retired: a request on it passed the timeout",
            w.pid,
            self.stage_label
        );
        if w.inflight.load(Ordering::Relaxed) == 0 {
            w.kill();
        }
    }

    /// Stops every worker (after the HTTP server has drained).
    pub fn shutdown(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        if let Ok(slots) = self.slots.read() {
            for w in slots.iter().flatten() {
                w.kill();
            }
        }
        let _ = std::fs::remove_file(&self.socket_path);
        let _ = std::fs::remove_dir(&self.socket_dir);
    }

    fn spawn(&self, token: u64) -> std::io::Result<Child> {
        Command::new(&self.exe)
            .arg("worker")
            .env(ENV_SOCKET, &self.socket_path)
            .env(ENV_TOKEN, token.to_string())
            .env(ENV_PLAN, &self.plan_json)
            .spawn()
    }

    /// One slot: start a worker, serve through it until it dies, repeat.
    fn lifecycle(self: Arc<Self>, slot: usize, on_fatal: fn(&str) -> !) {
        let mut token_seq = (slot as u64) << 32;
        let mut failures = 0u32;
        while !self.stopping.load(Ordering::SeqCst) {
            token_seq += 1;
            let token = token_seq;
            let (conn_tx, conn_rx) = mpsc::channel();
            if let Ok(mut w) = self.waiting.lock() {
                w.insert(token, conn_tx);
            }
            let started = Instant::now();
            let mut child = match self.spawn(token) {
                Ok(c) => c,
                Err(e) => on_fatal(&format!("cannot start a worker process: {e}")),
            };
            // Wait for the worker to connect, noticing if it dies first.
            let control = loop {
                match conn_rx.recv_timeout(Duration::from_millis(20)) {
                    Ok(Connection::Control(s)) => break Some(s),
                    Ok(Connection::Lane(_)) => continue,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if let Ok(Some(_)) = child.try_wait() {
                            // It may have connected and reported (say, a
                            // failed model_fn) just before exiting: the
                            // accept thread may still be handing us that
                            // connection.
                            match conn_rx.recv_timeout(Duration::from_millis(500)) {
                                Ok(Connection::Control(s)) => break Some(s),
                                _ => break None,
                            }
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break None,
                }
            };
            let Some(control) = control else {
                self.forget_token(token);
                let status = child.wait().ok();
                self.worker_failed_to_start(&describe_exit(status), &mut failures, on_fatal);
                continue;
            };
            let mut control = BufReader::new(control);
            let mut buf = Vec::new();
            // The first frames: HELLO (already consumed by the accept loop),
            // then READY (once the lanes are open) or LOAD_FAILED.
            let pid = match protocol::read_frame(&mut control, &mut buf) {
                Ok(Some(kind)) => {
                    match protocol::decode_from_worker(kind, &bytes::Bytes::copy_from_slice(&buf[1..])) {
                        Ok(FromWorker::Ready { pid }) => pid,
                        Ok(FromWorker::LoadFailed { message }) => {
                            self.forget_token(token);
                            let _ = child.wait();
                            if !self.ever_ready.load(Ordering::SeqCst) {
                                on_fatal(&message);
                            }
                            log::error!("a replacement worker failed to load: {message}");
                            self.backoff(&mut failures);
                            continue;
                        }
                        _ => {
                            self.forget_token(token);
                            let _ = child.kill();
                            let _ = child.wait();
                            continue;
                        }
                    }
                }
                _ => {
                    self.forget_token(token);
                    let status = child.wait().ok();
                    self.worker_failed_to_start(&describe_exit(status), &mut failures, on_fatal);
                    continue;
                }
            };
            // The worker opened its lanes before it said READY; the accept
            // thread may still be handing them over.
            let lanes: Vec<UnixStream> = (0..self.lanes)
                .map_while(|_| match conn_rx.recv_timeout(Duration::from_secs(5)) {
                    Ok(Connection::Lane(s)) => Some(s),
                    _ => None,
                })
                .collect();
            self.forget_token(token);
            if lanes.len() < self.lanes {
                let _ = child.kill();
                let _ = child.wait();
                self.worker_failed_to_start("did not open its connections", &mut failures, on_fatal);
                continue;
            }
            failures = 0;
            let worker = Arc::new(Worker {
                pid,
                token,
                stage_label: self.stage_label.clone(),
                lanes: Mutex::new(lanes),
                inflight: AtomicUsize::new(0),
                retiring: AtomicBool::new(false),
                exit: Mutex::new(None),
                child: Mutex::new(child),
            });
            if let Ok(mut slots) = self.slots.write() {
                slots[slot] = Some(Arc::clone(&worker));
            }
            self.ever_ready.store(true, Ordering::SeqCst);
            log::info!(
                "worker {pid} of {} ready in {} ms",
                self.stage_label,
                started.elapsed().as_millis()
            );

            // The worker sends nothing more on its control connection: its
            // end is the process's end.
            while let Ok(Some(_)) = protocol::read_frame(&mut control, &mut buf) {}

            // The worker is gone: take it out; its lanes answer what they held.
            if let Ok(mut slots) = self.slots.write() {
                slots[slot] = None;
            }
            let status = worker.child.lock().ok().and_then(|mut c| c.wait().ok());
            let how = describe_exit(status);
            if let Ok(mut exit) = worker.exit.lock() {
                *exit = Some(how.clone());
            }
            if self.stopping.load(Ordering::SeqCst) {
                break;
            }
            let held = worker.inflight.load(Ordering::Relaxed);
            if !worker.retiring.load(Ordering::Relaxed) || held > 0 {
                log::error!(
                    "worker {pid} of {} {how} while holding {held} request(s); starting a replacement",
                    self.stage_label
                );
            } else {
                log::info!(
                    "retired worker {pid} of {} stopped; starting a replacement",
                    self.stage_label
                );
            }
        }
    }

    fn forget_token(&self, token: u64) {
        if let Ok(mut w) = self.waiting.lock() {
            w.remove(&token);
        }
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
        *failures += 1;
        std::thread::sleep(Duration::from_millis((50u64 << (*failures).min(6)).min(2000)));
    }
}

/// This HTTP thread's number, assigned on first use.
fn http_thread_number() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static NUMBER: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    NUMBER.with(|n| *n)
}

/// Where a dispatched request went: its id and this thread's lane.
pub struct Ticket {
    id: u64,
    lane: Rc<Lane>,
}

fn accept_loop(listener: UnixListener, waiting: Waiting) {
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let mut buf = Vec::new();
        let first = protocol::read_frame(&mut stream, &mut buf)
            .ok()
            .flatten()
            .and_then(|kind| {
                protocol::decode_from_worker(kind, &bytes::Bytes::copy_from_slice(&buf[1..])).ok()
            });
        let (token, connection) = match first {
            Some(FromWorker::Hello { token }) => (token, Connection::Control(stream)),
            Some(FromWorker::Lane { token }) => (token, Connection::Lane(stream)),
            _ => continue,
        };
        if let Some(tx) = waiting.lock().ok().and_then(|w| w.get(&token).cloned()) {
            let _ = tx.send(connection);
        }
    }
}
