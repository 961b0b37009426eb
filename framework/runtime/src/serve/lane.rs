//! The server's end of one data connection (a "lane") to a worker process.
//!
//! Every HTTP thread owns one lane to each worker, driven by two tasks on
//! that thread's event loop: a writer that sends every frame queued since it
//! last ran in one write, and a reader that takes every frame one read
//! returns and hands each answer to the handler waiting for it. Handlers,
//! lane and tasks share a thread, so passing a frame or an answer along
//! costs neither a lock nor a thread wake-up. (A single socket per worker,
//! read by a thread of its own, cost a cross-thread wake-up and two system
//! calls per request.)
//!
//! A lane keeps each request until the worker says it started it
//! (`STARTED`): if the worker dies first, the request goes back to its
//! handler to be sent elsewhere; only the requests it had started fail.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{oneshot, Notify};

use super::dispatch::Board;
use super::process::WorkerProcess;
use super::protocol::{self, FromWorker, WireAnswer, WireRequest};

/// One HTTP thread's open lanes, by the id of the worker they lead to. Each
/// HTTP thread has one ([`Lanes::of_this_thread`]) and hands it to the pool
/// with each request.
#[derive(Default)]
pub(super) struct Lanes {
    open: RefCell<HashMap<u64, Rc<Lane>>>,
}

thread_local! {
    /// This thread's lanes. A worker has one lane per HTTP thread, and an
    /// HTTP thread makes one app per listener (the port, and the Unix socket
    /// when there is one): its apps must share one set of lanes, or the
    /// second would find every worker's lanes taken. An HTTP thread serves
    /// one server and ends with it.
    static THIS_THREAD: Rc<Lanes> = Rc::new(Lanes::default());
}

/// What comes back over a lane for a request sent on it.
#[derive(Debug)]
pub(super) enum LaneReply {
    Answered(WireAnswer),
    /// The worker died while running the request.
    Crashed(String),
    /// The worker died before it started the request: here it is back.
    Unstarted(WireRequest),
}

/// A request on a lane, waiting for its outcome.
struct Pending {
    tx: oneshot::Sender<LaneReply>,
    /// The request until the worker says it started it.
    unstarted: Option<WireRequest>,
}

/// A lane buffer larger than this is dropped once empty rather than kept
/// for the next request: after a burst of large requests the server gives
/// their memory back.
const KEEP_BYTES: usize = 1024 * 1024;

pub(super) struct Lane {
    worker: Arc<WorkerProcess>,
    /// The lanes of its HTTP thread, which it leaves when it closes.
    lanes: Rc<Lanes>,
    board: Arc<Board>,
    pending: RefCell<HashMap<u64, Pending>>,
    /// Frames queued for the writer task.
    outbox: RefCell<Vec<u8>>,
    wake_writer: Notify,
    closed: Cell<bool>,
}

impl Lanes {
    /// The lanes of the HTTP thread this runs on, shared by all its apps.
    pub(super) fn of_this_thread() -> Rc<Lanes> {
        THIS_THREAD.with(Rc::clone)
    }

    /// This thread's lane to `worker`, opened on first use. `None` when the
    /// worker has no lane left for this thread or the lane is closed.
    pub(super) fn to(self: &Rc<Self>, worker: &Arc<WorkerProcess>, board: &Arc<Board>) -> Option<Rc<Lane>> {
        if let Some(lane) = self.open.borrow().get(&worker.id).cloned() {
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
            lanes: Rc::clone(self),
            board: Arc::clone(board),
            pending: RefCell::new(HashMap::new()),
            outbox: RefCell::new(Vec::with_capacity(64 * 1024)),
            wake_writer: Notify::new(),
            closed: Cell::new(false),
        });
        self.open.borrow_mut().insert(worker.id, Rc::clone(&lane));
        actix_web::rt::spawn(write_loop(Rc::clone(&lane), writer));
        actix_web::rt::spawn(read_loop(Rc::clone(&lane), reader));
        Some(lane)
    }
}

impl Lane {
    /// Queues `request` (its `id` already set) and returns where its outcome
    /// will arrive; the request back if the lane has closed.
    pub(super) fn send(
        &self,
        request: WireRequest,
    ) -> Result<oneshot::Receiver<LaneReply>, Box<WireRequest>> {
        if self.closed.get() {
            return Err(Box::new(request));
        }
        let (tx, rx) = oneshot::channel();
        {
            let mut outbox = self.outbox.borrow_mut();
            *outbox = request.encode_onto(std::mem::take(&mut *outbox));
        }
        self.worker.request_sent();
        self.pending.borrow_mut().insert(
            request.id,
            Pending {
                tx,
                unstarted: Some(request),
            },
        );
        self.wake_writer.notify_one();
        Ok(rx)
    }

    /// Stops waiting for request `id`: whether the worker had started it,
    /// or `None` if its outcome was already delivered.
    pub(super) fn forget(&self, id: u64) -> Option<bool> {
        let pending = self.pending.borrow_mut().remove(&id)?;
        self.worker.request_done();
        Some(pending.unstarted.is_none())
    }

    pub(super) fn worker(&self) -> &Arc<WorkerProcess> {
        &self.worker
    }

    fn deliver(&self, frame: bytes::Bytes) {
        let kind = frame[protocol::PREFIX];
        let answer = match protocol::decode_from_worker(kind, &frame.slice(protocol::PREFIX + 1..)) {
            Ok(FromWorker::Answer(a)) => a,
            Ok(FromWorker::Started { id }) => {
                if let Some(pending) = self.pending.borrow_mut().get_mut(&id) {
                    pending.unstarted = None;
                }
                return;
            }
            Ok(_) => return,
            Err(e) => {
                log::error!("malformed frame from worker {}: {e}", self.worker.pid);
                return;
            }
        };
        // The thread that ran it is free, whether or not the request is
        // still awaited.
        self.board.release(&self.worker);
        let id = match &answer {
            WireAnswer::Reply { id, .. } | WireAnswer::Error { id, .. } => *id,
        };
        // Absent when the request already timed out.
        let Some(pending) = self.pending.borrow_mut().remove(&id) else {
            return;
        };
        let _ = pending.tx.send(LaneReply::Answered(answer));
        self.worker.request_done();
    }

    /// The worker is gone: requests it had not started go back to their
    /// handlers at once; those it had started fail, naming how it ended.
    async fn close(&self) {
        self.closed.set(true);
        self.wake_writer.notify_one();
        self.lanes.open.borrow_mut().remove(&self.worker.id);
        self.board.remove(&self.worker);
        let held: Vec<Pending> = self.pending.borrow_mut().drain().map(|(_, p)| p).collect();
        let mut started = Vec::new();
        for pending in held {
            match pending.unstarted {
                Some(request) => {
                    let _ = pending.tx.send(LaneReply::Unstarted(request));
                    self.worker.request_done();
                }
                None => started.push(pending.tx),
            }
        }
        if started.is_empty() {
            return;
        }
        let how = self.worker.exit_description().await;
        for tx in started {
            let _ = tx.send(LaneReply::Crashed(format!(
                "the worker process running stage {} {how} during this request",
                self.worker.stage_label
            )));
            self.worker.request_done();
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
                    lane.worker.kill();
                    lane.close().await;
                    return;
                }
            }
        }
        // Give back the memory of a burst of large answers.
        if buf.is_empty() && buf.capacity() > KEEP_BYTES {
            buf = BytesMut::with_capacity(64 * 1024);
        }
        // Room for the rest of a large frame (a chunk at a time: the length
        // is not trusted with more), or for the next batch.
        let wanted = match protocol::frame_size(&buf) {
            Ok(Some(size)) => size
                .saturating_sub(buf.len())
                .clamp(16 * 1024, protocol::READ_CHUNK),
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
