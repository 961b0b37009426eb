//! Which worker runs a request: credit-based dispatch.
//!
//! A worker holds one credit per request thread, and a request is sent to a
//! worker only with one of its credits, so every request a worker receives
//! starts at once on a free thread: nothing queues inside a worker behind a
//! slow request. Requests without a credit wait here, in arrival order,
//! until a thread frees anywhere or their deadline passes. A credit comes
//! back when the worker answers (whether or not the request is still
//! awaited); a worker that dies or is retired takes its credits with it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::oneshot;

use super::process::WorkerProcess;

/// The workers that take requests, and the requests waiting for a thread.
pub(super) struct Board {
    inner: Mutex<Inner>,
}

struct Inner {
    /// The worker serving each slot, with its credits left.
    slots: Vec<Option<(Arc<WorkerProcess>, usize)>>,
    /// Requests waiting for a credit, oldest first.
    waiters: VecDeque<Waiter>,
    next_waiter: u64,
}

struct Waiter {
    seq: u64,
    tx: oneshot::Sender<Arc<WorkerProcess>>,
}

impl Inner {
    fn slot_of(&self, worker: &Arc<WorkerProcess>) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| s.as_ref().is_some_and(|(w, _)| Arc::ptr_eq(w, worker)))
    }

    /// A credit from this HTTP thread's own worker if it has one (it keeps
    /// as few request threads busy as there are HTTP threads while the load
    /// allows), else from the worker with the most left.
    fn take(&mut self, own: usize) -> Option<Arc<WorkerProcess>> {
        let n = self.slots.len().max(1);
        let pick = match &self.slots[own % n] {
            Some((_, free)) if *free > 0 => Some(own % n),
            _ => self
                .slots
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.as_ref().filter(|(_, free)| *free > 0).map(|(_, f)| (i, *f)))
                .max_by_key(|&(_, free)| free)
                .map(|(i, _)| i),
        }?;
        let (worker, free) = self.slots[pick].as_mut()?;
        *free -= 1;
        Some(Arc::clone(worker))
    }

    /// A credit of the worker in `slot` comes back: to the oldest waiter
    /// still waiting, else to the worker.
    fn give(&mut self, slot: usize) {
        let Some((worker, _)) = &self.slots[slot] else {
            return;
        };
        let worker = Arc::clone(worker);
        while let Some(waiter) = self.waiters.pop_front() {
            if waiter.tx.send(Arc::clone(&worker)).is_ok() {
                return;
            }
        }
        if let Some((_, free)) = self.slots[slot].as_mut() {
            *free += 1;
        }
    }
}

impl Board {
    pub(super) fn new(slots: usize) -> Board {
        Board {
            inner: Mutex::new(Inner {
                slots: vec![None; slots],
                waiters: VecDeque::new(),
                next_waiter: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The board's state stays consistent at every step, so a panic
        // elsewhere while it was held leaves nothing to repair.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts `worker` in `slot` with `credits` credits, which go first to
    /// the requests waiting.
    pub(super) fn install(&self, slot: usize, worker: Arc<WorkerProcess>, credits: usize) {
        let mut inner = self.lock();
        inner.slots[slot] = Some((worker, 0));
        for _ in 0..credits {
            inner.give(slot);
        }
    }

    /// Takes `worker` off the board (it died or was retired); its credits
    /// go with it. False if it was not on the board.
    pub(super) fn remove(&self, worker: &Arc<WorkerProcess>) -> bool {
        let mut inner = self.lock();
        match inner.slot_of(worker) {
            Some(slot) => {
                inner.slots[slot] = None;
                true
            }
            None => false,
        }
    }

    /// Takes every worker off the board.
    pub(super) fn drain(&self) -> Vec<Arc<WorkerProcess>> {
        let mut inner = self.lock();
        inner
            .slots
            .iter_mut()
            .filter_map(|s| s.take())
            .map(|(w, _)| w)
            .collect()
    }

    /// True while `worker` takes requests.
    pub(super) fn holds(&self, worker: &Arc<WorkerProcess>) -> bool {
        self.lock().slot_of(worker).is_some()
    }

    /// One of `worker`'s threads is free again.
    pub(super) fn release(&self, worker: &Arc<WorkerProcess>) {
        let mut inner = self.lock();
        if let Some(slot) = inner.slot_of(worker) {
            inner.give(slot);
        }
    }

    /// A credit: a worker with a free thread for one request, waiting for
    /// one up to `deadline`. `None` once the deadline has passed.
    pub(super) async fn acquire(&self, deadline: Instant) -> Option<Arc<WorkerProcess>> {
        let (seq, mut rx) = {
            let mut inner = self.lock();
            if let Some(worker) = inner.take(http_thread_number()) {
                return Some(worker);
            }
            let seq = inner.next_waiter;
            inner.next_waiter += 1;
            let (tx, rx) = oneshot::channel();
            inner.waiters.push_back(Waiter { seq, tx });
            (seq, rx)
        };
        let deadline = tokio::time::Instant::from_std(deadline);
        if let Ok(Ok(worker)) = tokio::time::timeout_at(deadline, &mut rx).await {
            return Some(worker);
        }
        // Leave the queue; a credit handed over at the last moment goes back.
        self.lock().waiters.retain(|w| w.seq != seq);
        if let Ok(worker) = rx.try_recv() {
            self.release(&worker);
        }
        None
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
