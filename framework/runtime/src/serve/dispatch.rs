//! Which worker runs a request: credit-based dispatch.
//!
//! A worker holds one credit per request thread plus a small prefetch
//! ([`PREFETCH`] per thread), and a request is sent to a worker only with
//! one of its credits. A worker with a free thread is always chosen before
//! one whose threads are all busy, so a prefetched request is one that would
//! otherwise wait here; a worker hands back a prefetched request that found
//! no free thread within a few milliseconds (`worker`), and it goes to the
//! front of the queue. Requests without a credit wait here, in arrival
//! order, until a thread frees anywhere or their deadline passes. A credit
//! comes back when the worker answers (whether or not the request is still
//! awaited); a worker that dies or is retired takes its credits with it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::oneshot;

use super::pool::Worker;

/// The workers that take requests, and the requests waiting for a thread.
pub struct Board {
    inner: Mutex<Inner>,
}

/// Prefetched requests a worker may hold per request thread.
pub const PREFETCH: usize = 1;

/// A worker on the board and its credits.
struct Slot {
    worker: Arc<Worker>,
    /// Credits left.
    free: usize,
    /// Credits beyond one per thread: while `free` is above this, a thread is free.
    prefetch: usize,
    /// Credits of handed-back requests, restored as threads free.
    withheld: usize,
}

struct Inner {
    /// The worker serving each slot.
    slots: Vec<Option<Slot>>,
    /// Requests waiting for a credit, oldest first.
    waiters: VecDeque<Waiter>,
    next_waiter: u64,
}

struct Waiter {
    seq: u64,
    tx: oneshot::Sender<Arc<Worker>>,
}

impl Inner {
    fn slot_of(&self, worker: &Arc<Worker>) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| s.as_ref().is_some_and(|s| Arc::ptr_eq(&s.worker, worker)))
    }

    /// A credit of a worker with a free thread: this HTTP thread's own
    /// worker if it has one (it keeps as few worker threads busy as there
    /// are HTTP threads while the load allows), else the one with the most
    /// left; only when no thread is free anywhere, a prefetch credit.
    fn take(&mut self, own: usize) -> Option<Arc<Worker>> {
        let n = self.slots.len().max(1);
        let best = |above: fn(&Slot) -> usize| {
            let own_slot = self.slots[own % n].as_ref();
            if own_slot.is_some_and(|s| s.free > above(s)) {
                return Some(own % n);
            }
            self.slots
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.as_ref().filter(|s| s.free > above(s)).map(|s| (i, s.free)))
                .max_by_key(|&(_, free)| free)
                .map(|(i, _)| i)
        };
        let pick = best(|s| s.prefetch).or_else(|| best(|_| 0))?;
        let slot = self.slots[pick].as_mut()?;
        slot.free -= 1;
        Some(Arc::clone(&slot.worker))
    }

    /// A credit of the worker in `slot` comes back: to the oldest waiter
    /// still waiting, else to the worker.
    fn give(&mut self, slot: usize) {
        let Some(s) = &self.slots[slot] else {
            return;
        };
        let worker = Arc::clone(&s.worker);
        while let Some(waiter) = self.waiters.pop_front() {
            if waiter.tx.send(Arc::clone(&worker)).is_ok() {
                return;
            }
        }
        if let Some(s) = self.slots[slot].as_mut() {
            s.free += 1;
        }
    }
}

impl Board {
    pub fn new(slots: usize) -> Board {
        Board {
            inner: Mutex::new(Inner {
                slots: (0..slots).map(|_| None).collect(),
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

    /// Puts `worker` in `slot` with a credit per thread and its prefetch,
    /// which go first to the requests waiting.
    pub fn install(&self, slot: usize, worker: Arc<Worker>, threads: usize) {
        let mut inner = self.lock();
        inner.slots[slot] = Some(Slot {
            worker,
            free: 0,
            prefetch: threads * PREFETCH,
            withheld: 0,
        });
        for _ in 0..threads * (1 + PREFETCH) {
            inner.give(slot);
        }
    }

    /// Takes `worker` off the board (it died or was retired); its credits
    /// go with it. False if it was not on the board.
    pub fn remove(&self, worker: &Arc<Worker>) -> bool {
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
    pub fn drain(&self) -> Vec<Arc<Worker>> {
        let mut inner = self.lock();
        inner
            .slots
            .iter_mut()
            .filter_map(|s| s.take())
            .map(|s| s.worker)
            .collect()
    }

    /// True while `worker` takes requests.
    pub fn holds(&self, worker: &Arc<Worker>) -> bool {
        self.lock().slot_of(worker).is_some()
    }

    /// One of `worker`'s threads is free again: its credit comes back, and
    /// one withheld from a handed-back request with it.
    pub fn release(&self, worker: &Arc<Worker>) {
        let mut inner = self.lock();
        if let Some(slot) = inner.slot_of(worker) {
            inner.give(slot);
            if let Some(s) = inner.slots[slot].as_mut().filter(|s| s.withheld > 0) {
                s.withheld -= 1;
                inner.give(slot);
            }
        }
    }

    /// `worker` handed a prefetched request back: its threads are busy, so
    /// the credit waits for one of them to free.
    pub fn withhold(&self, worker: &Arc<Worker>) {
        let mut inner = self.lock();
        if let Some(slot) = inner.slot_of(worker) {
            if let Some(s) = inner.slots[slot].as_mut() {
                s.withheld += 1;
            }
        }
    }

    /// A credit for a request that had one and was handed back: it goes
    /// ahead of the requests that arrived after it.
    pub async fn reacquire(&self, deadline: Instant) -> Option<Arc<Worker>> {
        self.wait_for_credit(deadline, true).await
    }

    /// A credit: a worker with a free thread for one request, waiting for
    /// one up to `deadline`. `None` once the deadline has passed.
    pub async fn acquire(&self, deadline: Instant) -> Option<Arc<Worker>> {
        self.wait_for_credit(deadline, false).await
    }

    async fn wait_for_credit(&self, deadline: Instant, first: bool) -> Option<Arc<Worker>> {
        let (seq, mut rx) = {
            let mut inner = self.lock();
            if let Some(worker) = inner.take(http_thread_number()) {
                return Some(worker);
            }
            let seq = inner.next_waiter;
            inner.next_waiter += 1;
            let (tx, rx) = oneshot::channel();
            if first {
                inner.waiters.push_front(Waiter { seq, tx });
            } else {
                inner.waiters.push_back(Waiter { seq, tx });
            }
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
