//! The lock-based queue: one mutex around a store (a `VecDeque`, a `Vec` or a [`Heap`]), with
//! condition variables notified only when someone waits and a short spin before waiting.
//!
//! It backs `LifoQueue`, `PriorityQueue`, the unbounded `Queue` and the bounded `Queue` whose
//! capacity is too large to preallocate as a ring.
//!
//! What makes it faster than a textbook `Mutex` + `Condvar` queue:
//!
//! - every put or get counts the threads waiting on the other side (under the lock it already
//!   holds) and calls `notify_one` only when that count is not zero, after unlocking, so the
//!   common case makes no system call;
//! - a put or get that cannot proceed first spins (then yields) while watching an atomic copy of
//!   the length, without touching the lock, and only then waits on the condition variable;
//! - `len`, `is_empty` and `is_full` read that atomic copy and never take the lock.
//!
//! The store only runs user code in `Heap`'s comparisons, which happen before the heap changes,
//! so a panic there leaves the store valid; the lock is taken ignoring poisoning.

use std::collections::VecDeque;
use std::time::Instant;

use conveyor_core::{GetError, PutError, TaskDoneError};

use crate::backoff::Backoff;
use crate::heap::Heap;
use crate::sync::{lock, AtomicBool, AtomicUsize, Condvar, Mutex, MutexGuard, Ordering};

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
    /// Threads waiting on `not_empty`, `not_full`, `all_done`.
    getters_waiting: usize,
    putters_waiting: usize,
    joiners_waiting: usize,
}

/// A lock-based queue over the store `S`, bounded by `cap` (`usize::MAX`: unbounded).
#[derive(Debug)]
pub(crate) struct Locked<S> {
    state: Mutex<State<S>>,
    /// The length at the last unlock (written under the lock, read without it).
    len_hint: AtomicUsize,
    /// Set once, under the lock, by `close`.
    closed_hint: AtomicBool,
    cap: usize,
    not_empty: Condvar,
    not_full: Condvar,
    all_done: Condvar,
}

/// Waits on `cond` until notified or `deadline`; returns the guard.
fn wait<'a, T>(
    cond: &Condvar,
    guard: MutexGuard<'a, T>,
    deadline: Option<Instant>,
) -> MutexGuard<'a, T> {
    match deadline {
        None => cond.wait(guard).unwrap_or_else(|e| e.into_inner()),
        Some(d) => {
            let now = Instant::now();
            if d <= now {
                return guard;
            }
            match cond.wait_timeout(guard, d - now) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            }
        }
    }
}

impl<S: Store> Locked<S> {
    /// A queue over `store`, holding at most `cap` items.
    pub(crate) fn new(store: S, cap: usize) -> Self {
        Locked {
            state: Mutex::new(State {
                store,
                closed: false,
                unfinished: 0,
                getters_waiting: 0,
                putters_waiting: 0,
                joiners_waiting: 0,
            }),
            len_hint: AtomicUsize::new(0),
            closed_hint: AtomicBool::new(false),
            cap,
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            all_done: Condvar::new(),
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
                let wake = st.getters_waiting != 0;
                drop(st);
                if wake {
                    self.not_empty.notify_one();
                }
                return Ok(());
            }
            if !block {
                return Err(PutError::Full(item));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(PutError::Timeout(item));
            }
            if backoff.is_completed() {
                st.putters_waiting += 1;
                st = wait(&self.not_full, st, deadline);
                st.putters_waiting -= 1;
            } else {
                // Spin without the lock until room may have appeared.
                drop(st);
                while !backoff.is_completed() {
                    backoff.snooze();
                    if self.len_hint.load(Ordering::Relaxed) < self.cap
                        || self.closed_hint.load(Ordering::Relaxed)
                    {
                        break;
                    }
                }
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
                let wake = st.putters_waiting != 0;
                drop(st);
                if wake {
                    self.not_full.notify_one();
                }
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
                st.getters_waiting += 1;
                st = wait(&self.not_empty, st, deadline);
                st.getters_waiting -= 1;
            } else {
                // Spin without the lock until an item may have arrived.
                drop(st);
                while !backoff.is_completed() {
                    backoff.snooze();
                    if self.len_hint.load(Ordering::Relaxed) != 0
                        || self.closed_hint.load(Ordering::Relaxed)
                    {
                        break;
                    }
                }
                st = lock(&self.state);
            }
        }
    }

    /// Closes the queue: later puts fail, gets drain then fail, every waiting thread wakes.
    pub(crate) fn close(&self) {
        let mut st = lock(&self.state);
        st.closed = true;
        self.closed_hint.store(true, Ordering::SeqCst);
        let wake = st.getters_waiting != 0 || st.putters_waiting != 0;
        drop(st);
        if wake {
            self.not_empty.notify_all();
            self.not_full.notify_all();
        }
    }

    /// Whether [`close`](Self::close) was called.
    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
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
        let wake = st.unfinished == 0 && st.joiners_waiting != 0;
        drop(st);
        if wake {
            self.all_done.notify_all();
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
            st.joiners_waiting += 1;
            st = wait(&self.all_done, st, deadline);
            st.joiners_waiting -= 1;
        }
    }

    /// The number of threads waiting in a put, a get or a join (for tests and diagnostics).
    pub(crate) fn sleepers(&self) -> (usize, usize, usize) {
        let st = lock(&self.state);
        (st.putters_waiting, st.getters_waiting, st.joiners_waiting)
    }
}

/// The FIFO store.
pub(crate) type FifoStore<T> = VecDeque<T>;
/// The LIFO store.
pub(crate) type LifoStore<T> = Vec<T>;
