//! The server's end of a worker's model operations (multi-model endpoints):
//! load and unload frames go out on the worker's control connection, and
//! the worker's answers come back there, read by the worker's watcher
//! thread in `pool`, which hands each to [`Control::deliver`].
//!
//! Each operation has a number; its outcome arrives on a one-shot channel.
//! When the worker ends, every operation still waiting learns it
//! ([`Control::close`]): the channel closes without an answer.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tokio::sync::oneshot;

use super::super::protocol::{self, FrameReader, FrameWriter};

/// What a worker said of one operation: `Err` carries a failed load's
/// message. A closed channel means the worker ended first.
pub type Outcome = Result<(), LoadFailed>;

/// A worker's answer that a model did not load: its message, which names
/// the model, the stage and the stage's reason (see `held`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LoadFailed(pub String);

static NEXT_OP: AtomicU64 = AtomicU64::new(1);

/// One worker's model operations.
pub struct Control {
    /// The control connection; `None` when it could not be shared (then
    /// every operation fails as if the worker had ended).
    writer: Mutex<Option<UnixStream>>,
    pending: Mutex<HashMap<u64, oneshot::Sender<Outcome>>>,
}

impl Control {
    /// The operations over `writer`, the worker's control connection.
    pub fn new(writer: Option<UnixStream>) -> Control {
        Control {
            writer: Mutex::new(writer),
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// Asks the worker to load the model in `dir` as `name`.
    pub fn load(&self, name: &str, dir: &Path) -> oneshot::Receiver<Outcome> {
        let dir = dir.to_string_lossy();
        self.send(|op| {
            FrameWriter::new(protocol::LOAD_MODEL, 24 + name.len() + dir.len())
                .u64(op)
                .bytes(name.as_bytes())
                .bytes(dir.as_bytes())
                .finish()
        })
    }

    /// Asks the worker to unload `name` (done even if it does not hold it).
    pub fn unload(&self, name: &str) -> oneshot::Receiver<Outcome> {
        self.send(|op| {
            FrameWriter::new(protocol::UNLOAD_MODEL, 16 + name.len())
                .u64(op)
                .bytes(name.as_bytes())
                .finish()
        })
    }

    fn send(&self, frame: impl FnOnce(u64) -> Vec<u8>) -> oneshot::Receiver<Outcome> {
        let op = NEXT_OP.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        // Registered before the frame leaves: the answer may come back at once.
        self.lock_pending().insert(op, tx);
        let frame = frame(op);
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let written = writer.as_mut().is_some_and(|w| w.write_all(&frame).is_ok());
        if !written {
            // The worker is gone: the operation ends unanswered.
            self.lock_pending().remove(&op);
        }
        rx
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Outcome>>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A frame the worker sent on its control connection (`kind` and the
    /// fields after it). Frames of other kinds are not this module's.
    pub fn deliver(&self, kind: u8, fields: &[u8]) {
        let mut r = FrameReader::new(fields);
        let outcome = match kind {
            protocol::MODEL_LOADED | protocol::MODEL_UNLOADED => r.u64().map(|op| (op, Ok(()))),
            protocol::MODEL_LOAD_FAILED => r.u64().and_then(|op| Ok((op, Err(LoadFailed(r.string()?))))),
            _ => return,
        };
        match outcome {
            Ok((op, outcome)) => {
                if let Some(tx) = self.lock_pending().remove(&op) {
                    let _ = tx.send(outcome);
                }
            }
            Err(e) => log::error!("malformed model operation answer from a worker: {e}"),
        }
    }

    /// The worker ended: every operation still waiting ends unanswered.
    pub fn close(&self) {
        *self.writer.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.lock_pending().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_op(stream: &mut UnixStream) -> (u8, u64) {
        let mut buf = Vec::new();
        let kind = protocol::read_frame(stream, &mut buf).unwrap().unwrap();
        (kind, FrameReader::new(&buf[1..]).u64().unwrap())
    }

    #[test]
    fn answers_reach_their_operation_and_an_ended_worker_ends_the_rest() {
        let (server, mut worker) = UnixStream::pair().unwrap();
        let control = Control::new(Some(server));
        let mut loaded = control.load("a", Path::new("/m/a"));
        let mut failed = control.load("b", Path::new("/m/b"));
        let mut orphan = control.unload("c");
        let (kind, a) = read_op(&mut worker);
        assert_eq!(kind, protocol::LOAD_MODEL);
        let (_, b) = read_op(&mut worker);
        let (kind, _) = read_op(&mut worker);
        assert_eq!(kind, protocol::UNLOAD_MODEL);
        // Answers in any order, each to its own operation.
        let failure = FrameWriter::new(protocol::MODEL_LOAD_FAILED, 0)
            .u64(b)
            .bytes(b"no tag")
            .finish();
        control.deliver(protocol::MODEL_LOAD_FAILED, &failure[protocol::PREFIX + 1..]);
        let ok = FrameWriter::new(protocol::MODEL_LOADED, 0).u64(a).finish();
        control.deliver(protocol::MODEL_LOADED, &ok[protocol::PREFIX + 1..]);
        assert_eq!(loaded.try_recv().unwrap(), Ok(()));
        assert_eq!(failed.try_recv().unwrap(), Err(LoadFailed("no tag".to_string())));
        control.close();
        assert!(orphan.try_recv().is_err());
        // After the end, an operation ends at once, unanswered.
        let mut late = control.load("d", Path::new("/m/d"));
        assert!(matches!(
            late.try_recv(),
            Err(oneshot::error::TryRecvError::Closed)
        ));
    }
}
