//! The server's end of one data connection (a "lane") to a worker process.
//!
//! Every HTTP thread owns one lane to each worker, driven by two tasks on
//! that thread's event loop: a writer that sends every frame queued since it
//! last ran in one write, and a reader that takes every answer one read
//! returns and hands each to the handler waiting for it. Handlers, lane and
//! tasks share a thread, so passing a frame or an answer along costs neither
//! a lock nor a thread wake-up, and under load one system call carries many
//! requests. (A single socket per worker, read by a thread of its own, cost
//! a cross-thread wake-up and two system calls per request.)

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{oneshot, Notify};

use super::pool::{Outcome, Worker};
use super::protocol::{self, FromWorker, WireAnswer, WireRequest};

thread_local! {
    /// This thread's open lanes, by the token of the worker they lead to.
    static LANES: RefCell<HashMap<u64, Rc<Lane>>> = RefCell::new(HashMap::new());
}

/// How this thread's lane to the worker with `token` is doing: whether it
/// has stalled (see [`STALL`]) and how many requests wait on it. A lane's
/// requests queue behind each other when the worker runs one thread per lane.
pub fn state_here(token: u64) -> (bool, usize) {
    LANES.with(|lanes| {
        lanes
            .borrow()
            .get(&token)
            .map_or((false, 0), |lane| (lane.stalled(), lane.pending.borrow().len()))
    })
}

/// A lane holding requests that has answered none for this long counts as
/// stalled: new requests go elsewhere rather than queue behind a slow one.
pub const STALL: Duration = Duration::from_millis(2);

/// A lane buffer larger than this is dropped once empty rather than kept
/// for the next request: after a burst of large requests the server gives
/// their memory back.
const KEEP_BYTES: usize = 1024 * 1024;

pub struct Lane {
    worker: Arc<Worker>,
    pending: RefCell<HashMap<u64, oneshot::Sender<Outcome>>>,
    /// Frames queued for the writer task.
    outbox: RefCell<Vec<u8>>,
    wake_writer: Notify,
    closed: Cell<bool>,
    /// Since when the lane has held requests without answering one.
    waiting_since: Cell<Option<Instant>>,
}

impl Lane {
    /// This thread's lane to `worker`, opened on first use. `None` when the
    /// worker has no lane left for this thread or the lane is closed.
    pub fn of(worker: &Arc<Worker>) -> Option<Rc<Lane>> {
        if let Some(lane) = LANES.with(|lanes| lanes.borrow().get(&worker.token).cloned()) {
            return (!lane.closed.get()).then_some(lane);
        }
        let stream = worker.take_lane()?;
        let stream = stream
            .set_nonblocking(true)
            .and_then(|()| tokio::net::UnixStream::from_std(stream));
        let (reader, writer) = match stream {
            Ok(s) => s.into_split(),
            Err(e) => {
                log::error!("cannot open a lane to worker {}: {e}", worker.pid);
                return None;
            }
        };
        let lane = Rc::new(Lane {
            worker: Arc::clone(worker),
            pending: RefCell::new(HashMap::new()),
            outbox: RefCell::new(Vec::with_capacity(64 * 1024)),
            wake_writer: Notify::new(),
            closed: Cell::new(false),
            waiting_since: Cell::new(None),
        });
        LANES.with(|lanes| lanes.borrow_mut().insert(worker.token, Rc::clone(&lane)));
        actix_web::rt::spawn(write_loop(Rc::clone(&lane), writer));
        actix_web::rt::spawn(read_loop(Rc::clone(&lane), reader));
        Some(lane)
    }

    /// Queues `request` (its `id` already set) and returns where its outcome
    /// will arrive; `None` if the lane has closed.
    pub fn send(&self, request: &WireRequest) -> Option<oneshot::Receiver<Outcome>> {
        if self.closed.get() {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        let mut pending = self.pending.borrow_mut();
        if pending.is_empty() {
            self.waiting_since.set(Some(Instant::now()));
        }
        pending.insert(request.id, tx);
        drop(pending);
        let mut outbox = self.outbox.borrow_mut();
        *outbox = request.encode_onto(std::mem::take(&mut *outbox));
        self.wake_writer.notify_one();
        Some(rx)
    }

    /// Stops waiting for request `id`; true if it was still pending.
    pub fn forget(&self, id: u64) -> bool {
        self.pending.borrow_mut().remove(&id).is_some()
    }

    fn stalled(&self) -> bool {
        self.waiting_since
            .get()
            .is_some_and(|since| since.elapsed() > STALL)
    }

    pub fn worker(&self) -> &Arc<Worker> {
        &self.worker
    }

    fn deliver(&self, frame: bytes::Bytes) {
        let answer = match protocol::decode_from_worker(frame[4], &frame.slice(5..)) {
            Ok(FromWorker::Answer(a)) => a,
            Ok(_) => return,
            Err(e) => {
                log::error!("malformed frame from worker {}: {e}", self.worker.pid);
                return;
            }
        };
        let id = match &answer {
            WireAnswer::Reply { id, .. } | WireAnswer::Error { id, .. } => *id,
        };
        // Absent when the request already timed out.
        let mut pending = self.pending.borrow_mut();
        let Some(tx) = pending.remove(&id) else {
            return;
        };
        // Progress: the lane is waiting afresh for the rest, if any.
        self.waiting_since.set((!pending.is_empty()).then(Instant::now));
        drop(pending);
        let _ = tx.send(Outcome::Answer(answer));
        self.worker.request_done();
    }

    /// The worker is gone: answer every request this lane held.
    async fn close(&self) {
        self.closed.set(true);
        self.wake_writer.notify_one();
        LANES.with(|lanes| lanes.borrow_mut().remove(&self.worker.token));
        let held: Vec<_> = self.pending.borrow_mut().drain().collect();
        if held.is_empty() {
            return;
        }
        let how = self.worker.exit_description().await;
        for (_, tx) in held {
            let _ = tx.send(Outcome::Crashed(format!(
                "the worker process running stage {} {how} during this request",
                self.worker.stage_label
            )));
            self.worker.inflight.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

async fn write_loop(lane: Rc<Lane>, mut writer: OwnedWriteHalf) {
    let mut batch = Vec::with_capacity(64 * 1024);
    loop {
        lane.wake_writer.notified().await;
        loop {
            std::mem::swap(&mut batch, &mut *lane.outbox.borrow_mut());
            if batch.is_empty() {
                break;
            }
            // A failed write means the worker is gone; the reader sees the
            // end of the stream and answers what the lane held.
            if writer.write_all(&batch).await.is_err() {
                return;
            }
            batch.clear();
            // Give back the memory of a burst of large requests.
            if batch.capacity() > KEEP_BYTES {
                batch = Vec::with_capacity(64 * 1024);
            }
        }
        if lane.closed.get() {
            return;
        }
    }
}

async fn read_loop(lane: Rc<Lane>, mut reader: OwnedReadHalf) {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        loop {
            match protocol::split_frame(&mut buf) {
                Ok(Some(frame)) => lane.deliver(frame.freeze()),
                Ok(None) => break,
                Err(e) => {
                    log::error!("broken stream from worker {}: {e}", lane.worker.pid);
                    lane.close().await;
                    return;
                }
            }
        }
        // Give back the memory of a burst of large answers.
        if buf.is_empty() && buf.capacity() > KEEP_BYTES {
            buf = BytesMut::with_capacity(64 * 1024);
        }
        // Room for the rest of a large frame, or for the next batch.
        let wanted = match protocol::frame_size(&buf) {
            Ok(Some(size)) => size.saturating_sub(buf.len()).max(16 * 1024),
            _ => 64 * 1024,
        };
        buf.reserve(wanted);
        match reader.read_buf(&mut buf).await {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
    lane.close().await;
}

/// How long a lane waits, after its worker's socket closed, to learn from
/// the worker's slot how the process ended.
pub const EXIT_WAIT: Duration = Duration::from_secs(2);
