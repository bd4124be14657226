//! The bounded FIFO ring: a lock-free multi-producer multi-consumer array queue in the style of
//! Dmitry Vyukov's bounded MPMC queue, extended with a close mark, parking, and task counting.
//!
//! # Positions and stamps
//!
//! `head` (the next slot to read) and `tail` (the next slot to write) are *positions*: an index
//! into the buffer in the low bits and a lap counter in the high bits. With
//! `mark_bit = (cap + 1).next_power_of_two()` and `one_lap = 2 * mark_bit`:
//!
//! | bits of a position          | meaning                                                   |
//! |-----------------------------|-----------------------------------------------------------|
//! | `pos & (mark_bit - 1)`      | index of the slot, `0..cap`                               |
//! | `pos & mark_bit`            | in `tail` only: the queue is closed (never set in `head`) |
//! | `pos & !(one_lap - 1)`      | lap: advances by `one_lap` every time the index wraps     |
//!
//! Each slot carries a *stamp*, the position at which it may next be used:
//!
//! - `stamp == tail`: the slot is free for the writer at `tail`;
//! - `stamp == head + 1`: the slot holds the value the reader at `head` takes;
//! - a writer that finds `stamp + one_lap == tail + 1` sees last lap's value still unread: the
//!   queue may be full (it checks `head`);
//! - a reader that finds `stamp == head` sees a slot not yet written this lap: the queue may be
//!   empty (it checks `tail`).
//!
//! # Put, step by step
//!
//! 1. Load `tail`. If the close mark is set, fail with `Closed`: the mark is set by an atomic
//!    `fetch_or` on `tail` itself, so a put whose claim (step 3) succeeds was ordered before the
//!    close, and no put can slip in after it.
//! 2. Inspect the slot at `tail`'s index. Free: go on. Holding last lap's value: if
//!    `head + one_lap == tail` the queue is full; otherwise a get is under way on that slot, spin.
//! 3. Claim the slot with a compare-and-swap of `tail` to the next position (a `SeqCst` RMW, which
//!    the wake-up protocol relies on). Lost the race: retry from the new `tail`.
//! 4. Write the value, then publish it with a `Release` store of `stamp = tail + 1`.
//! 5. If a getter is parked (one `SeqCst` load of a counter, see [`crate::waiters`]), wake one.
//!
//! # Get, step by step
//!
//! The mirror image: inspect the slot at `head`; `stamp == head + 1` means a value is there, so
//! claim it with a compare-and-swap of `head`, read it, and free the slot for the next lap with
//! `stamp = head + one_lap`; then wake a parked putter, if any. `stamp == head` with
//! `tail == head` means empty (or, with the mark set in `tail`, closed and drained).
//!
//! # Task counting without a shared counter on the hot path
//!
//! `join` needs "items ever put" minus "`task_done` calls". Adding a counter increment to every
//! put would add a second contended atomic to the hot path, so the number of items ever put is
//! read off `tail` instead: `lap_count * cap + index`. It wraps when `tail` does, after
//! `modulus = 2^BITS / one_lap * cap` puts, so the `task_done` counter (`done`) counts modulo the
//! same number and the difference is taken modulo it. (On 64-bit targets the modulus is at least
//! 2^62; on 32-bit ones it is at least 2^30, so more unfinished tasks than that would be
//! miscounted there.)

use std::mem::MaybeUninit;
use std::time::Instant;

use conveyor_core::{GetError, PutError, TaskDoneError};

use crate::backoff::{batch_for, wait_for_batch, Backoff};
use crate::sync::{fence, AtomicBool, AtomicUsize, CachePadded, Ordering, UnsafeCell};
use crate::waiters::WaitSet;

/// One cell of the ring.
struct Slot<T> {
    /// The position at which this slot may next be written (`== tail`) or read (`== head + 1`).
    stamp: AtomicUsize,
    /// The value; initialised exactly when `stamp == head + 1` for the lap it belongs to.
    value: UnsafeCell<MaybeUninit<T>>,
}

/// Why [`Ring::try_push`] could not put.
pub(crate) enum PushError<T> {
    Full(T),
    Closed(T),
}

/// Why [`Ring::try_pop`] could not get.
pub(crate) enum PopError {
    Empty,
    Closed,
}

/// A bounded lock-free MPMC FIFO with close, parking and task counting.
pub(crate) struct Ring<T> {
    /// The position of the next read. Never carries the close mark.
    head: CachePadded<AtomicUsize>,
    /// The position of the next write, with the close mark bit.
    tail: CachePadded<AtomicUsize>,
    /// `task_done` calls so far, modulo `modulus`.
    done: CachePadded<AtomicUsize>,
    buffer: Box<[Slot<T>]>,
    cap: usize,
    mark_bit: usize,
    one_lap: usize,
    /// `log2(one_lap)`: `pos >> lap_shift` is the lap count.
    lap_shift: u32,
    /// The number of puts after which the count read off `tail` wraps to 0.
    modulus: usize,
    /// Getters parked until an item arrives or the ring closes.
    getters: WaitSet,
    /// Putters parked until room appears or the ring closes.
    putters: WaitSet,
    /// Joiners parked until every task is done.
    joiners: WaitSet,
    /// Set by `shutdown(true)` before the close mark: gets fail with `Closed` from then on, even
    /// while the items left are still being discarded. Written once; read by every blocking get.
    discarding: AtomicBool,
}

// SAFETY: values of type `T` are moved in by one thread and out by another, so `T: Send` is
// required and enough; the ring never hands out references to them, so `T: Sync` is not needed.
// Every slot access is serialised by the stamp protocol described in the module docs.
unsafe impl<T: Send> Send for Ring<T> {}
// SAFETY: as above: shared access only moves whole values in and out under the stamp protocol.
unsafe impl<T: Send> Sync for Ring<T> {}

impl<T> Ring<T> {
    /// A ring holding at most `cap` items. `cap` must be at least 1 and small enough that
    /// `2 * (cap + 1).next_power_of_two()` fits a `usize` (callers cap it far below that).
    pub(crate) fn new(cap: usize) -> Self {
        debug_assert!(cap >= 1);
        let mark_bit = (cap + 1).next_power_of_two();
        let one_lap = mark_bit * 2;
        let lap_shift = one_lap.trailing_zeros();
        let modulus = ((usize::MAX >> lap_shift) + 1) * cap;
        let buffer = (0..cap)
            .map(|i| Slot {
                stamp: AtomicUsize::new(i),
                value: UnsafeCell::new(MaybeUninit::uninit()),
            })
            .collect();
        Ring {
            head: CachePadded(AtomicUsize::new(0)),
            tail: CachePadded(AtomicUsize::new(0)),
            done: CachePadded(AtomicUsize::new(0)),
            buffer,
            cap,
            mark_bit,
            one_lap,
            lap_shift,
            modulus,
            getters: WaitSet::new(),
            putters: WaitSet::new(),
            joiners: WaitSet::new(),
            discarding: AtomicBool::new(false),
        }
    }

    /// The capacity.
    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.cap
    }

    /// The position that follows `pos` (index and lap only).
    #[inline]
    fn next_pos(&self, pos: usize) -> usize {
        let index = pos & (self.mark_bit - 1);
        if index + 1 < self.cap {
            pos + 1
        } else {
            (pos & !(self.one_lap - 1)).wrapping_add(self.one_lap)
        }
    }

    /// Puts `value` if there is room now.
    #[inline]
    pub(crate) fn try_push(&self, value: T) -> Result<(), PushError<T>> {
        let mut backoff = Backoff::new();
        let mut tail = self.tail.load(Ordering::Relaxed);
        loop {
            // Step 1: a closed ring takes nothing.
            if tail & self.mark_bit != 0 {
                return Err(PushError::Closed(value));
            }
            // Step 2: inspect the slot.
            let index = tail & (self.mark_bit - 1);
            let slot = &self.buffer[index];
            let stamp = slot.stamp.load(Ordering::Acquire);
            if tail == stamp {
                // Step 3: the slot is free for this lap; claim it.
                let new_tail = self.next_pos(tail);
                match self.tail.compare_exchange_weak(
                    tail,
                    new_tail,
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // Step 4: write and publish.
                        // SAFETY: the successful CAS gave this thread the exclusive right to
                        // write the slot for this lap: readers wait for `stamp == tail + 1`,
                        // other writers for `stamp == tail + one_lap`-ish positions that only
                        // the store below and a later read can produce.
                        slot.value
                            .with_mut(|p| unsafe { p.write(MaybeUninit::new(value)) });
                        slot.stamp.store(tail.wrapping_add(1), Ordering::Release);
                        // Step 5: wake a parked getter, if any.
                        self.getters.notify_one();
                        return Ok(());
                    }
                    Err(current) => {
                        tail = current;
                        backoff.spin();
                    }
                }
            } else if stamp.wrapping_add(self.one_lap) == tail.wrapping_add(1) {
                // The slot still holds last lap's value: full, unless a get is under way.
                fence(Ordering::SeqCst);
                let head = self.head.load(Ordering::Relaxed);
                if head.wrapping_add(self.one_lap) == tail {
                    return Err(PushError::Full(value));
                }
                // A get is under way on this slot: let it finish (yielding if it was preempted).
                backoff.snooze();
                tail = self.tail.load(Ordering::Relaxed);
            } else {
                // Another putter claimed this position and moved on: catch up.
                backoff.spin();
                tail = self.tail.load(Ordering::Relaxed);
            }
        }
    }

    /// Takes the oldest item if there is one now.
    #[inline]
    pub(crate) fn try_pop(&self) -> Result<T, PopError> {
        let mut backoff = Backoff::new();
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            let index = head & (self.mark_bit - 1);
            let slot = &self.buffer[index];
            let stamp = slot.stamp.load(Ordering::Acquire);
            if head.wrapping_add(1) == stamp {
                // A value is there for this lap; claim it.
                let new_head = self.next_pos(head);
                match self.head.compare_exchange_weak(
                    head,
                    new_head,
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: the stamp said the slot was written for this lap (the Acquire
                        // load synchronised with the writer's Release store), and the successful
                        // CAS made this thread its only reader; the stamp store below hands the
                        // slot, now logically uninitialised, to the next lap's writer.
                        let value = slot.value.with_mut(|p| unsafe { p.read().assume_init() });
                        slot.stamp
                            .store(head.wrapping_add(self.one_lap), Ordering::Release);
                        self.putters.notify_one();
                        return Ok(value);
                    }
                    Err(current) => {
                        head = current;
                        backoff.spin();
                    }
                }
            } else if stamp == head {
                // Not written this lap: empty, unless a put is under way.
                fence(Ordering::SeqCst);
                let tail = self.tail.load(Ordering::Relaxed);
                if tail & !self.mark_bit == head {
                    return Err(if tail & self.mark_bit != 0 {
                        PopError::Closed
                    } else {
                        PopError::Empty
                    });
                }
                // A put is under way on this slot: let it finish (yielding if it was preempted).
                backoff.snooze();
                head = self.head.load(Ordering::Relaxed);
            } else {
                // Another getter took this position and moved on: catch up.
                backoff.spin();
                head = self.head.load(Ordering::Relaxed);
            }
        }
    }

    /// Puts `value`, waiting for room until `deadline` (`None`: forever) if `block`.
    pub(crate) fn push(
        &self,
        mut value: T,
        block: bool,
        deadline: Option<Instant>,
    ) -> Result<(), PutError<T>> {
        let mut backoff = Backoff::new();
        loop {
            match self.try_push(value) {
                Ok(()) => return Ok(()),
                Err(PushError::Closed(v)) => return Err(PutError::Closed(v)),
                Err(PushError::Full(v)) => value = v,
            }
            if !block {
                return Err(PutError::Full(value));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(PutError::Timeout(value));
            }
            if backoff.is_completed() {
                self.putters.park(deadline, || self.has_room_or_closed());
            } else {
                // Room for a batch, or as much as the getters make for now.
                wait_for_batch(
                    &mut backoff,
                    batch_for(self.cap),
                    false,
                    || self.cap - self.approx_len(),
                    || self.is_shutdown(),
                );
            }
        }
    }

    /// Takes the oldest item, waiting for one until `deadline` (`None`: forever) if `block`.
    pub(crate) fn pop(&self, block: bool, deadline: Option<Instant>) -> Result<T, GetError> {
        let mut backoff = Backoff::new();
        loop {
            if self.discarding.load(Ordering::Acquire) {
                return Err(GetError::Closed);
            }
            match self.try_pop() {
                Ok(v) => return Ok(v),
                Err(PopError::Closed) => return Err(GetError::Closed),
                Err(PopError::Empty) => {}
            }
            if !block {
                return Err(GetError::Empty);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(GetError::Timeout);
            }
            if backoff.is_completed() {
                self.getters.park(deadline, || self.has_item_or_closed());
            } else {
                // A batch of items, or as many as the putters bring for now.
                wait_for_batch(
                    &mut backoff,
                    batch_for(self.cap),
                    false,
                    || self.approx_len(),
                    || self.is_shutdown(),
                );
            }
        }
    }

    /// The parked putter's check: room, or closed. `SeqCst` loads, as the protocol requires.
    fn has_room_or_closed(&self) -> bool {
        let tail = self.tail.load(Ordering::SeqCst);
        let head = self.head.load(Ordering::SeqCst);
        tail & self.mark_bit != 0 || head.wrapping_add(self.one_lap) != tail
    }

    /// The parked getter's check: an item (perhaps still being written), or closed.
    fn has_item_or_closed(&self) -> bool {
        let tail = self.tail.load(Ordering::SeqCst);
        let head = self.head.load(Ordering::SeqCst);
        tail & self.mark_bit != 0 || tail != head
    }

    /// Shuts the ring down: later puts fail, every parked thread wakes; gets drain then fail,
    /// or, with `immediate`, fail at once while the items left are dropped here and counted as
    /// done (so `join` returns).
    pub(crate) fn shutdown(&self, immediate: bool) {
        if immediate {
            // Before the mark, so that no get starting after this call returns takes an item.
            self.discarding.store(true, Ordering::Release);
        }
        self.tail.fetch_or(self.mark_bit, Ordering::SeqCst);
        if immediate {
            // No put gets in after the mark; take what is left (waiting, inside `try_pop`, for a
            // put that claimed its slot before the mark to finish writing it).
            let mut discarded = 0;
            while let Ok(value) = self.try_pop() {
                drop(value);
                discarded += 1;
            }
            self.count_done(discarded);
            self.joiners.notify_all();
        }
        self.getters.notify_all();
        self.putters.notify_all();
    }

    /// Adds `n` to the `task_done` count, without going past the number of puts (as CPython's
    /// `shutdown(immediate=True)` never takes `unfinished_tasks` below zero).
    fn count_done(&self, n: usize) {
        if n == 0 {
            return;
        }
        let mut done = self.done.load(Ordering::SeqCst);
        loop {
            let puts = self.count(self.tail.load(Ordering::SeqCst) & !self.mark_bit);
            let step = n.min(self.diff(puts, done));
            // `done + step` modulo `modulus`, without overflowing.
            let next = if step >= self.modulus - done {
                step - (self.modulus - done)
            } else {
                done + step
            };
            match self
                .done
                .compare_exchange(done, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return,
                Err(current) => done = current,
            }
        }
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    #[inline]
    pub(crate) fn is_shutdown(&self) -> bool {
        self.tail.load(Ordering::SeqCst) & self.mark_bit != 0
    }

    /// The number of operations a position stands for: `lap_count * cap + index`, which wraps
    /// modulo `modulus`.
    #[inline]
    fn count(&self, pos: usize) -> usize {
        (pos >> self.lap_shift) * self.cap + (pos & (self.mark_bit - 1))
    }

    /// `a - b` modulo `modulus`, for `a, b < modulus`.
    #[inline]
    fn diff(&self, a: usize, b: usize) -> usize {
        if a >= b {
            a - b
        } else {
            a + (self.modulus - b)
        }
    }

    /// The number of items, read without synchronisation: a hint for a spinning waiter, which
    /// may be off while puts and gets are under way (it is clamped to `0..=cap`).
    #[inline]
    fn approx_len(&self) -> usize {
        let tail = self.tail.load(Ordering::Relaxed) & !self.mark_bit;
        let head = self.head.load(Ordering::Relaxed);
        self.diff(self.count(tail), self.count(head)).min(self.cap)
    }

    /// The number of items in the ring at one instant.
    pub(crate) fn len(&self) -> usize {
        loop {
            let tail = self.tail.load(Ordering::SeqCst);
            let head = self.head.load(Ordering::SeqCst);
            // Only a consistent pair: `tail` unchanged while `head` was read.
            if self.tail.load(Ordering::SeqCst) == tail {
                let len = self.diff(self.count(tail & !self.mark_bit), self.count(head));
                return len.min(self.cap);
            }
        }
    }

    /// The number of items put and not yet marked done.
    fn unfinished(&self) -> usize {
        let puts = self.count(self.tail.load(Ordering::SeqCst) & !self.mark_bit);
        self.diff(puts, self.done.load(Ordering::SeqCst))
    }

    /// Marks one task done; fails if none is outstanding.
    pub(crate) fn task_done(&self) -> Result<(), TaskDoneError> {
        let mut done = self.done.load(Ordering::SeqCst);
        loop {
            let puts = self.count(self.tail.load(Ordering::SeqCst) & !self.mark_bit);
            if puts == done {
                return Err(TaskDoneError::TooManyCalls);
            }
            let next = if done + 1 == self.modulus {
                0
            } else {
                done + 1
            };
            match self
                .done
                .compare_exchange(done, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => {
                    if puts == next {
                        self.joiners.notify_all();
                    }
                    return Ok(());
                }
                Err(current) => done = current,
            }
        }
    }

    /// Waits until every task is done or `deadline` passes; returns whether all are done.
    pub(crate) fn join(&self, deadline: Option<Instant>) -> bool {
        loop {
            if self.unfinished() == 0 {
                return true;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            self.joiners.park(deadline, || self.unfinished() == 0);
        }
    }

    /// The number of threads parked in a put, a get or a join (for tests and diagnostics).
    pub(crate) fn sleepers(&self) -> (usize, usize, usize) {
        (
            self.putters.sleepers(),
            self.getters.sleepers(),
            self.joiners.sleepers(),
        )
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        // The last handle is gone, so no other thread touches the ring: drop what is left.
        while let Ok(value) = self.try_pop() {
            drop(value);
        }
    }
}

/// Model tests of the ring's protocol: run them with
/// `RUSTFLAGS="--cfg loom" cargo test -p conveyor-thread --release --lib loom` (each model picks
/// its own preemption bound; setting `LOOM_MAX_PREEMPTIONS` overrides every model's, and a bound
/// of 2 on `loom_two_consumers` runs for over ten minutes).
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// Runs `f` under the model checker with at most 2 preemptions per execution (or
    /// `LOOM_MAX_PREEMPTIONS`), with room for the spin loops' extra branches.
    fn model(f: impl Fn() + Sync + Send + 'static) {
        model_bounded(2, f);
    }

    /// As [`model`], with the preemption bound `bound` unless `LOOM_MAX_PREEMPTIONS` is set.
    fn model_bounded(bound: usize, f: impl Fn() + Sync + Send + 'static) {
        let mut builder = loom::model::Builder::new();
        builder.max_branches = 100_000;
        if builder.preemption_bound.is_none() {
            builder.preemption_bound = Some(bound);
        }
        builder.check(f);
    }

    /// Blocking puts and gets through a one-slot ring: values arrive in order, and the parked
    /// side is always woken (loom reports a lost wake-up as a deadlock).
    #[test]
    fn loom_blocking_spsc() {
        model(|| {
            let ring = Arc::new(Ring::new(1));
            let r = ring.clone();
            let producer = thread::spawn(move || {
                for i in 0..2 {
                    assert!(r.push(i, true, None).is_ok());
                }
            });
            for i in 0..2 {
                assert_eq!(ring.pop(true, None).ok(), Some(i));
            }
            producer.join().unwrap();
        });
    }

    /// Two producers racing for slots, one consumer: nothing lost, nothing duplicated.
    #[test]
    fn loom_two_producers() {
        model(|| {
            let ring = Arc::new(Ring::new(2));
            let handles: Vec<_> = (0..2)
                .map(|i| {
                    let r = ring.clone();
                    thread::spawn(move || assert!(r.push(i, true, None).is_ok()))
                })
                .collect();
            let mut got = [ring.pop(true, None).ok(), ring.pop(true, None).ok()];
            for h in handles {
                h.join().unwrap();
            }
            got.sort();
            assert_eq!(got, [Some(0), Some(1)]);
            assert!(matches!(ring.try_pop(), Err(PopError::Empty)));
        });
    }

    /// Two parked consumers, two items: each consumer is woken and gets one (`notify_one`
    /// never strands an item while a getter sleeps).
    ///
    /// Bound 1: two getters spinning on a slot whose put is under way can take turns yielding
    /// forever in the model (each turn a new branch), which makes bound 2 intractable here.
    #[test]
    fn loom_two_consumers() {
        model_bounded(1, || {
            let ring = Arc::new(Ring::new(2));
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    let r = ring.clone();
                    thread::spawn(move || r.pop(true, None).ok())
                })
                .collect();
            for i in 0..2 {
                assert!(ring.try_push(i).is_ok());
            }
            let mut got: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
            got.sort();
            assert_eq!(got, [Some(0), Some(1)]);
        });
    }

    /// `close` wakes a parked getter, which then sees `Closed`, and a racing put either lands
    /// before the close (and is drained) or fails with `Closed`: never in between.
    #[test]
    fn loom_close_wakes_getter_and_fences_puts() {
        model(|| {
            let ring = Arc::new(Ring::new(1));
            let getter = {
                let r = ring.clone();
                thread::spawn(move || {
                    let mut got = Vec::new();
                    while let Ok(v) = r.pop(true, None) {
                        got.push(v);
                    }
                    got
                })
            };
            let putter = {
                let r = ring.clone();
                thread::spawn(move || r.try_push(7u32).is_ok())
            };
            ring.shutdown(false);
            let put_ok = putter.join().unwrap();
            let mut got = getter.join().unwrap();
            // Whatever the getter missed is still in the ring.
            while let Ok(v) = ring.try_pop() {
                got.push(v);
            }
            assert_eq!(got, if put_ok { vec![7] } else { vec![] });
        });
    }

    /// `close` wakes a putter parked on a full ring.
    #[test]
    fn loom_close_wakes_putter() {
        model(|| {
            let ring = Arc::new(Ring::new(1));
            assert!(ring.try_push(1u32).is_ok());
            let putter = {
                let r = ring.clone();
                thread::spawn(move || r.push(2, true, None).map_err(|e| e.is_closed()))
            };
            ring.shutdown(false);
            assert_eq!(putter.join().unwrap(), Err(true));
            assert_eq!(ring.try_pop().ok(), Some(1));
            assert!(matches!(ring.try_pop(), Err(PopError::Closed)));
        });
    }

    /// `shutdown(true)` racing a put and a get that marks its item done: the get takes an item
    /// or fails with `Closed`, the put lands (and is taken or discarded) or fails, nothing is
    /// left, and `join` returns: every item is taken and done, or discarded and counted done.
    #[test]
    fn loom_shutdown_immediate() {
        model(|| {
            let ring = Arc::new(Ring::new(2));
            assert!(ring.try_push(1u32).is_ok());
            let getter = {
                let r = ring.clone();
                thread::spawn(move || {
                    let got = r.pop(true, None).ok();
                    if got.is_some() {
                        assert!(r.task_done().is_ok());
                    }
                    got
                })
            };
            let putter = {
                let r = ring.clone();
                thread::spawn(move || r.try_push(2).is_ok())
            };
            ring.shutdown(true);
            assert!(matches!(ring.try_pop(), Err(PopError::Closed)));
            let _ = putter.join().unwrap();
            let _ = getter.join().unwrap();
            assert!(matches!(ring.try_pop(), Err(PopError::Closed)));
            assert!(ring.pop(true, None).unwrap_err().is_closed());
            assert!(ring.join(None), "join must return");
        });
    }

    /// `join` returns once the consumer's `task_done` brings the count to zero, and a second
    /// `task_done` is refused.
    #[test]
    fn loom_task_done_wakes_join() {
        model(|| {
            let ring = Arc::new(Ring::new(2));
            assert!(ring.try_push(1u32).is_ok());
            let worker = {
                let r = ring.clone();
                thread::spawn(move || {
                    assert_eq!(r.pop(true, None).ok(), Some(1));
                    assert!(r.task_done().is_ok());
                })
            };
            assert!(ring.join(None));
            assert!(matches!(ring.task_done(), Err(TaskDoneError::TooManyCalls)));
            worker.join().unwrap();
        });
    }

    /// Items left in the ring are dropped with it, exactly once.
    #[test]
    fn loom_drop_leftovers() {
        model(|| {
            let drops = Arc::new(AtomicUsize::new(0));
            struct Counted(Arc<AtomicUsize>);
            impl Drop for Counted {
                fn drop(&mut self) {
                    self.0.fetch_add(1, Ordering::SeqCst);
                }
            }
            let ring = Arc::new(Ring::new(2));
            let r = ring.clone();
            let d = drops.clone();
            let t = thread::spawn(move || {
                assert!(r.try_push(Counted(d.clone())).is_ok());
                assert!(r.try_push(Counted(d)).is_ok());
            });
            drop(ring.try_pop());
            t.join().unwrap();
            drop(ring);
            assert_eq!(drops.load(Ordering::SeqCst), 2);
        });
    }
}
