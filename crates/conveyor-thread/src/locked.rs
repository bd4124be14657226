//! The lock-based queue: one mutex around a store (a `VecDeque`, a `Vec` or a [`Heap`]), with
//! waiters woken only when there are some, and a short spin before waiting.
//!
//! It backs `LifoQueue`, `PriorityQueue`, the unbounded `Queue` and the bounded `Queue` whose
//! capacity is too large to preallocate as a ring.
//!
//! What makes it faster than a textbook `Mutex` + `Condvar` queue:
//!
//! - waiting threads sit in a [`WaitSet`]: every put or get loads one counter after unlocking
//!   and wakes a waiter only when it is not zero, so the common case makes no system call, and
//!   each waiter is woken once (it leaves the count when woken, not when it next runs);
//! - a put or get that cannot proceed first spins (then yields) while watching an atomic copy of
//!   the length, without touching the lock, and only then waits on the condition variable; a get
//!   that found the queue empty lets a busy putter add a batch before it takes the lock again,
//!   and a put that found it full lets a busy getter take a batch out, so that the two do not
//!   trade the lock item by item;
//! - the spin stops early when the other side shows no sign of running (the length did not move
//!   for a few looks: on a machine with more threads than cores it is most likely descheduled),
//!   and yields the processor to it instead of burning the time slice it needs;
//! - `len`, `is_empty` and `is_full` read that atomic copy and never take the lock.
//!
//! The store only runs user code in `Heap`'s comparisons, which happen before the heap changes,
//! so a panic there leaves the store valid; the lock is taken ignoring poisoning.

use std::collections::VecDeque;
use std::time::Instant;

use conveyor_core::{GetError, PutError, TaskDoneError};

use crate::backoff::{batch_for, wait_for_batch, Backoff};
use crate::heap::Heap;
use crate::sync::{lock, AtomicBool, AtomicUsize, Mutex, Ordering};
use crate::waiters::WaitSet;

/// A container with an order of its own: which item comes out next.
pub(crate) trait Store {
    /// The items held.
    type Item;
    /// Adds an item.
    fn push(&mut self, item: Self::Item);
    /// Removes the next item.
    fn pop(&mut self) -> Option<Self::Item>;
    /// The number of items.
    fn len(&self) -> usize;
}

impl<T> Store for VecDeque<T> {
    type Item = T;
    #[inline]
    fn push(&mut self, item: T) {
        self.push_back(item);
    }
    #[inline]
    fn pop(&mut self) -> Option<T> {
        self.pop_front()
    }
    #[inline]
    fn len(&self) -> usize {
        VecDeque::len(self)
    }
}

impl<T> Store for Vec<T> {
    type Item = T;
    #[inline]
    fn push(&mut self, item: T) {
        Vec::push(self, item);
    }
    #[inline]
    fn pop(&mut self) -> Option<T> {
        Vec::pop(self)
    }
    #[inline]
    fn len(&self) -> usize {
        Vec::len(self)
    }
}

impl<T: Ord> Store for Heap<T> {
    type Item = T;
    #[inline]
    fn push(&mut self, item: T) {
        Heap::push(self, item);
    }
    #[inline]
    fn pop(&mut self) -> Option<T> {
        Heap::pop(self)
    }
    #[inline]
    fn len(&self) -> usize {
        Heap::len(self)
    }
}

/// What the mutex guards.
#[derive(Debug)]
struct State<S> {
    store: S,
    closed: bool,
    /// Items put and not yet marked done.
    unfinished: usize,
}

/// A lock-based queue over the store `S`, bounded by `cap` (`usize::MAX`: unbounded).
#[derive(Debug)]
pub(crate) struct Locked<S> {
    state: Mutex<State<S>>,
    /// The length at the last unlock (written under the lock, read without it).
    len_hint: AtomicUsize,
    /// Set once, under the lock, by `shutdown`.
    closed_hint: AtomicBool,
    cap: usize,
    /// Threads waiting for an item (or the close).
    getters: WaitSet,
    /// Threads waiting for room (or the close).
    putters: WaitSet,
    /// Threads waiting for every task to be done.
    joiners: WaitSet,
}

impl<S: Store> Locked<S> {
    /// A queue over `store`, holding at most `cap` items.
    pub(crate) fn new(store: S, cap: usize) -> Self {
        Locked {
            state: Mutex::new(State {
                store,
                closed: false,
                unfinished: 0,
            }),
            len_hint: AtomicUsize::new(0),
            closed_hint: AtomicBool::new(false),
            cap,
            getters: WaitSet::new(),
            putters: WaitSet::new(),
            joiners: WaitSet::new(),
        }
    }

    /// The capacity, `None` if unbounded.
    #[inline]
    pub(crate) fn capacity(&self) -> Option<usize> {
        (self.cap != usize::MAX).then_some(self.cap)
    }

    /// Puts `item`, waiting for room until `deadline` (`None`: forever) if `block`.
    pub(crate) fn push(
        &self,
        item: S::Item,
        block: bool,
        deadline: Option<Instant>,
    ) -> Result<(), PutError<S::Item>> {
        let mut backoff = Backoff::new();
        let mut st = lock(&self.state);
        loop {
            if st.closed {
                return Err(PutError::Closed(item));
            }
            let len = st.store.len();
            if len < self.cap {
                // A panic in the store (a user's `Ord`) unwinds from here with the store intact.
                st.store.push(item);
                st.unfinished += 1;
                self.len_hint.store(len + 1, Ordering::Relaxed);
                drop(st);
                self.getters.notify_one();
                return Ok(());
            }
            if !block {
                return Err(PutError::Full(item));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(PutError::Timeout(item));
            }
            if backoff.is_completed() {
                // Registered before the state lock is released (inside `park`), so a get that
                // makes room after this check sees the waiter.
                self.putters.park(deadline, move || {
                    drop(st);
                    false
                });
                st = lock(&self.state);
            } else {
                // Spin without the lock until room has appeared: room for a batch, or as much as
                // the getters make for now (see `wait_for_batch`).
                drop(st);
                wait_for_batch(
                    &mut backoff,
                    batch_for(self.cap),
                    true,
                    || self.cap - self.len_hint.load(Ordering::Relaxed).min(self.cap),
                    || self.closed_hint.load(Ordering::Relaxed),
                );
                st = lock(&self.state);
            }
        }
    }

    /// Takes the next item, waiting for one until `deadline` (`None`: forever) if `block`.
    pub(crate) fn pop(&self, block: bool, deadline: Option<Instant>) -> Result<S::Item, GetError> {
        let mut backoff = Backoff::new();
        let mut st = lock(&self.state);
        loop {
            // A panic in the store (a user's `Ord`) unwinds from here with the store intact.
            if let Some(item) = st.store.pop() {
                self.len_hint.store(st.store.len(), Ordering::Relaxed);
                drop(st);
                self.putters.notify_one();
                return Ok(item);
            }
            if st.closed {
                return Err(GetError::Closed);
            }
            if !block {
                return Err(GetError::Empty);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(GetError::Timeout);
            }
            if backoff.is_completed() {
                // Registered before the state lock is released (inside `park`), so a put that
                // brings an item after this check sees the waiter.
                self.getters.park(deadline, move || {
                    drop(st);
                    false
                });
                st = lock(&self.state);
            } else {
                // Spin without the lock until items have arrived: a batch of them, or as many as
                // the putters bring for now (see `wait_for_batch`).
                drop(st);
                wait_for_batch(
                    &mut backoff,
                    batch_for(self.cap),
                    true,
                    || self.len_hint.load(Ordering::Relaxed),
                    || self.closed_hint.load(Ordering::Relaxed),
                );
                st = lock(&self.state);
            }
        }
    }

    /// Shuts the queue down: later puts fail, every waiting thread wakes; gets drain then fail,
    /// or, with `immediate`, the items left are taken out under the lock (so every later get
    /// fails at once), counted as done (so `join` returns) and dropped after it is released.
    pub(crate) fn shutdown(&self, immediate: bool) {
        let mut st = lock(&self.state);
        st.closed = true;
        self.closed_hint.store(true, Ordering::SeqCst);
        let mut discarded = Vec::new();
        if immediate {
            while let Some(item) = st.store.pop() {
                discarded.push(item);
            }
            st.unfinished -= discarded.len().min(st.unfinished);
            self.len_hint.store(0, Ordering::Relaxed);
        }
        let all_done = st.unfinished == 0;
        drop(st);
        self.getters.notify_all();
        self.putters.notify_all();
        if immediate && all_done {
            self.joiners.notify_all();
        }
        // Dropped outside the lock: an item's `Drop` may use the queue.
        drop(discarded);
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    #[inline]
    pub(crate) fn is_shutdown(&self) -> bool {
        self.closed_hint.load(Ordering::SeqCst)
    }

    /// The number of items (as of the last put or get to finish).
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len_hint.load(Ordering::Relaxed)
    }

    /// Marks one task done; fails if none is outstanding.
    pub(crate) fn task_done(&self) -> Result<(), TaskDoneError> {
        let mut st = lock(&self.state);
        if st.unfinished == 0 {
            return Err(TaskDoneError::TooManyCalls);
        }
        st.unfinished -= 1;
        let all_done = st.unfinished == 0;
        drop(st);
        if all_done {
            self.joiners.notify_all();
        }
        Ok(())
    }

    /// Waits until every task is done or `deadline` passes; returns whether all are done.
    pub(crate) fn join(&self, deadline: Option<Instant>) -> bool {
        let mut st = lock(&self.state);
        loop {
            if st.unfinished == 0 {
                return true;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            self.joiners.park(deadline, move || {
                drop(st);
                false
            });
            st = lock(&self.state);
        }
    }

    /// The number of threads waiting in a put, a get or a join (for tests and diagnostics).
    pub(crate) fn sleepers(&self) -> (usize, usize, usize) {
        (
            self.putters.sleepers(),
            self.getters.sleepers(),
            self.joiners.sleepers(),
        )
    }
}

/// The FIFO store.
pub(crate) type FifoStore<T> = VecDeque<T>;
/// The LIFO store.
pub(crate) type LifoStore<T> = Vec<T>;

/// Model tests of the lock-based queue's waiting: run them with
/// `RUSTFLAGS="--cfg loom" cargo test -p conveyor-thread --release --lib loom`.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut builder = loom::model::Builder::new();
        builder.max_branches = 100_000;
        if builder.preemption_bound.is_none() {
            builder.preemption_bound = Some(2);
        }
        builder.check(f);
    }

    /// A getter and a putter parked on opposite sides of a one-item stack are both released.
    #[test]
    fn loom_locked_blocking_both_sides() {
        model(|| {
            let q = Arc::new(Locked::new(LifoStore::new(), 1));
            let q2 = q.clone();
            let consumer = thread::spawn(move || {
                let a = q2.pop(true, None).ok();
                let b = q2.pop(true, None).ok();
                (a, b)
            });
            assert!(q.push(1u32, true, None).is_ok());
            assert!(q.push(2, true, None).is_ok());
            assert_eq!(consumer.join().unwrap(), (Some(1), Some(2)));
        });
    }

    /// `close` wakes a parked getter; `task_done` wakes a parked joiner.
    #[test]
    fn loom_locked_close_and_join() {
        model(|| {
            let q = Arc::new(Locked::new(FifoStore::new(), usize::MAX));
            let q2 = q.clone();
            let worker = thread::spawn(move || {
                let mut n = 0;
                while q2.pop(true, None).is_ok() {
                    assert!(q2.task_done().is_ok());
                    n += 1;
                }
                n
            });
            assert!(q.push(1u32, false, None).is_ok());
            assert!(q.join(None));
            q.shutdown(false);
            assert_eq!(worker.join().unwrap(), 1);
        });
    }
}
