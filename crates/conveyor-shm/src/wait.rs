//! The wait/wake protocol: how a blocked put, get or join sleeps and is woken.
//!
//! Each condition ("data available", "space available", "all tasks done") is a [`Signal`]: a
//! 32-bit sequence word to sleep on, and a count of sleepers. The protocol:
//!
//! - **notify** (after a change made under the queue's mutex, once it is released): if the
//!   sleeper count is non-zero, bump the sequence and `FUTEX_WAKE`. With nobody asleep it
//!   reads one word that shares a cache line with the mutex: no write, no system call.
//! - **wait**: try the operation; spin a bounded time watching a progress word (the ring's
//!   tail for a get, its head for a put) and retry when it moves; then register as a sleeper
//!   and loop: read the sequence, try the operation, and `FUTEX_WAIT` on the value read.
//!
//! No wake-up is lost. The sleeper registers, then issues a `SeqCst` fence, then makes its
//! last try, which reads the published index (the tail for a get, the head for a put, the task
//! count for a join); the notifier publishes its change, issues a `SeqCst` fence, then reads
//! the sleeper count. The two fences forbid the "store buffering" outcome in which both read
//! old values: either the try sees the change, or the notifier sees the sleeper, bumps the
//! sequence and wakes; if the sleeper has not reached `FUTEX_WAIT` yet, the sequence differs
//! from the value it read and the call returns at once. (The fences are what loom can check:
//! it models `SeqCst` loads and stores as acquire/release, but `SeqCst` fences faithfully.)
//! loom checks this (`RUSTFLAGS="--cfg loom" cargo test -p conveyor-shm --lib loom`).
//!
//! Peers can die between a change and its notify. So no sleep is longer than
//! [`MAX_SLICE`]: a waiter re-checks at least that often, and survivors go on well within a
//! second. A waiter that leaves on a timeout passes one wake-up on, in case it swallowed one
//! meant for a peer.

use std::time::{Duration, Instant};

/// The longest a waiter sleeps before re-checking its condition, even without a wake-up.
pub(crate) const MAX_SLICE: Duration = Duration::from_millis(100);

/// The longest a waiter busy-waits before it starts yielding its CPU between checks.
pub(crate) const BUSY_SPIN: Duration = Duration::from_micros(1);

/// A condition that can be slept on.
pub(crate) trait Signal {
    /// The current sequence value.
    fn seq(&self) -> u32;
    /// Bumps the sequence (after a change).
    fn bump(&self);
    /// Registers one sleeper.
    fn add_waiter(&self);
    /// Unregisters one sleeper.
    fn remove_waiter(&self);
    /// Whether anyone is registered as a sleeper.
    fn has_waiters(&self) -> bool;
    /// Sleeps while the sequence equals `expected`, at most `timeout`.
    fn sleep(&self, expected: u32, timeout: Duration);
    /// Wakes up to `n` sleepers.
    fn wake(&self, n: u32);
    /// A `SeqCst` fence (loom's, under the model checker).
    fn fence(&self);
}

/// When a blocking operation gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deadline {
    /// Do not wait at all.
    Now,
    /// Wait until this instant (monotonic clock).
    At(Instant),
    /// Wait as long as it takes.
    Never,
}

impl Deadline {
    /// A deadline `timeout` from now (saturating to `Never` if it overflows).
    pub(crate) fn after(timeout: Duration) -> Deadline {
        match Instant::now().checked_add(timeout) {
            Some(at) => Deadline::At(at),
            None => Deadline::Never,
        }
    }
}

/// Announces a change: if anyone sleeps, bumps the sequence and wakes up to `n` sleepers.
#[inline]
pub(crate) fn notify<S: Signal>(signal: &S, n: u32) {
    // Orders the caller's publishing store before the sleeper-count load (see the module
    // docs); on x86 the publishing store is already a full barrier.
    signal.fence();
    if signal.has_waiters() {
        notify_slow(signal, n);
    }
}

#[cold]
fn notify_slow<S: Signal>(signal: &S, n: u32) {
    signal.bump();
    signal.wake(n);
}

/// Runs `attempt` until it returns `Some`, sleeping on `signal` in between; `None` once the
/// deadline passes.
///
/// `spin` bounds the busy-wait phase before the first sleep (zero: sleep at once); while
/// spinning, `attempt` is retried whenever `progress` changes.
pub(crate) fn wait_until<S: Signal, R>(
    signal: &S,
    deadline: Deadline,
    spin: Duration,
    progress: impl Fn() -> u64,
    mut attempt: impl FnMut() -> Option<R>,
) -> Option<R> {
    if let Some(r) = attempt() {
        return Some(r);
    }
    if deadline == Deadline::Now {
        return None;
    }
    if !spin.is_zero() {
        if let Some(r) = spin_phase(deadline, spin, &progress, &mut attempt) {
            return Some(r);
        }
    }
    signal.add_waiter();
    signal.fence();
    let mut slept = false;
    let result = loop {
        let seen = signal.seq();
        if let Some(r) = attempt() {
            break Some(r);
        }
        let slice = match deadline {
            Deadline::Never => MAX_SLICE,
            Deadline::At(at) => {
                let now = Instant::now();
                if now >= at {
                    break None;
                }
                (at - now).min(MAX_SLICE)
            }
            Deadline::Now => break None,
        };
        signal.sleep(seen, slice);
        slept = true;
    };
    signal.remove_waiter();
    if result.is_none() && slept && signal.has_waiters() {
        // We may have consumed a wake-up meant for a peer that can still proceed.
        signal.wake(1);
    }
    result
}

#[cold]
fn spin_phase<R>(
    deadline: Deadline,
    spin: Duration,
    progress: &impl Fn() -> u64,
    attempt: &mut impl FnMut() -> Option<R>,
) -> Option<R> {
    let start = Instant::now();
    let mut end = start + spin;
    if let Deadline::At(at) = deadline {
        end = end.min(at);
    }
    // Busy-wait only briefly, then yield between checks. A peer running on another CPU
    // answers within a microsecond or so, which the busy phase catches; one that has no CPU
    // of its own (fewer free cores than runnable threads) can only answer once this thread
    // gives its CPU up, so every further microsecond of pure spinning is added to the hand-off
    // (measured on 2 vCPUs with both peers on one CPU: a 5 µs busy phase made the ping-pong
    // round trip 16-35 µs, a 1 µs one 5-10 µs; with a CPU each, both stayed at 0.4 µs).
    let yield_after = start + (spin / 4).min(BUSY_SPIN);
    let mut yielding = false;
    loop {
        let seen = progress();
        let mut i = 0u32;
        while progress() == seen {
            if yielding {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
            i = i.wrapping_add(1);
            // A pause instruction takes up to ~50 ns (AMD EPYC here), so the clock is read
            // every 8 of them: the busy phase ends within half a microsecond of its budget.
            if yielding || i % 8 == 0 {
                let now = Instant::now();
                if now >= end {
                    return None;
                }
                yielding = now >= yield_after;
            }
        }
        if let Some(r) = attempt() {
            return Some(r);
        }
        if Instant::now() >= end {
            return None;
        }
    }
}

/// A [`Signal`] made of two words in shared memory, slept on with a futex.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ShmSignal<'a> {
    pub(crate) seq: &'a std::sync::atomic::AtomicU32,
    pub(crate) waiters: &'a std::sync::atomic::AtomicU32,
}

impl Signal for ShmSignal<'_> {
    #[inline]
    fn seq(&self) -> u32 {
        self.seq.load(std::sync::atomic::Ordering::SeqCst)
    }
    #[inline]
    fn bump(&self) {
        self.seq.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    fn add_waiter(&self) {
        self.waiters
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    fn remove_waiter(&self) {
        // A waiter killed while registered leaves the count one too high; that only costs
        // notifiers a needless FUTEX_WAKE. Saturate so a corrupt count never wraps.
        let _ = self.waiters.fetch_update(
            std::sync::atomic::Ordering::SeqCst,
            std::sync::atomic::Ordering::SeqCst,
            |w| Some(w.saturating_sub(1)),
        );
    }
    #[inline]
    fn has_waiters(&self) -> bool {
        self.waiters.load(std::sync::atomic::Ordering::SeqCst) != 0
    }
    fn sleep(&self, expected: u32, timeout: Duration) {
        crate::futex::wait(self.seq, expected, timeout);
    }
    fn wake(&self, n: u32) {
        crate::futex::wake(self.seq, n);
    }
    #[inline]
    fn fence(&self) {
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! Model checks of the protocol: every interleaving of notifiers and waiters, with a
    //! futex model whose compare-and-sleep is atomic with respect to wake (as the kernel's is)
    //! and whose sleeps never time out. A lost wake-up would leave a waiter asleep forever,
    //! which loom reports as a deadlock.

    use super::*;
    use loom::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
    use loom::sync::{Arc, Condvar, Mutex};

    struct ModelSignal {
        seq: AtomicU32,
        waiters: AtomicU32,
        bucket: Mutex<()>,
        cv: Condvar,
    }

    impl ModelSignal {
        fn new() -> Self {
            ModelSignal {
                seq: AtomicU32::new(0),
                waiters: AtomicU32::new(0),
                bucket: Mutex::new(()),
                cv: Condvar::new(),
            }
        }
    }

    impl Signal for ModelSignal {
        fn seq(&self) -> u32 {
            self.seq.load(Ordering::SeqCst)
        }
        fn bump(&self) {
            self.seq.fetch_add(1, Ordering::SeqCst);
        }
        fn add_waiter(&self) {
            self.waiters.fetch_add(1, Ordering::SeqCst);
        }
        fn remove_waiter(&self) {
            self.waiters.fetch_sub(1, Ordering::SeqCst);
        }
        fn has_waiters(&self) -> bool {
            self.waiters.load(Ordering::SeqCst) != 0
        }
        fn sleep(&self, expected: u32, _timeout: Duration) {
            let guard = self.bucket.lock().unwrap();
            if self.seq.load(Ordering::SeqCst) != expected {
                return;
            }
            drop(self.cv.wait(guard).unwrap());
        }
        fn wake(&self, n: u32) {
            let _guard = self.bucket.lock().unwrap();
            if n == 1 {
                self.cv.notify_one();
            } else {
                self.cv.notify_all();
            }
        }
        fn fence(&self) {
            loom::sync::atomic::fence(Ordering::SeqCst);
        }
    }

    /// The queue as the ring runs it: producers serialised by one mutex publish a count with
    /// a SeqCst store; consumers serialised by another take items below it.
    struct Model {
        put_lock: Mutex<usize>,
        get_lock: Mutex<usize>,
        items: [AtomicU32; 2],
        published: AtomicUsize,
        data: ModelSignal,
    }

    /// Explores the interleavings of `producers` threads putting one item each and
    /// `consumers` threads taking one each, with at most `bound` preemptions per execution
    /// (loom's usual way to keep a model with several threads tractable).
    fn run(producers: u32, consumers: u32, bound: Option<usize>) {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = bound;
        builder.check(move || {
            let m = Arc::new(Model {
                put_lock: Mutex::new(0),
                get_lock: Mutex::new(0),
                items: [AtomicU32::new(u32::MAX), AtomicU32::new(u32::MAX)],
                published: AtomicUsize::new(0),
                data: ModelSignal::new(),
            });
            let mut handles = Vec::new();
            for p in 0..producers {
                let m = m.clone();
                handles.push(loom::thread::spawn(move || {
                    {
                        let mut next = m.put_lock.lock().unwrap();
                        m.items[*next].store(p, Ordering::Relaxed);
                        m.published.store(*next + 1, Ordering::SeqCst);
                        *next += 1;
                    }
                    notify(&m.data, 1);
                }));
            }
            let mut takers = Vec::new();
            for _ in 0..consumers {
                let m = m.clone();
                takers.push(loom::thread::spawn(move || {
                    wait_until(
                        &m.data,
                        Deadline::Never,
                        Duration::ZERO,
                        || 0,
                        || {
                            let mut taken = m.get_lock.lock().unwrap();
                            if *taken < m.published.load(Ordering::SeqCst) {
                                let v = m.items[*taken].load(Ordering::Relaxed);
                                *taken += 1;
                                Some(v)
                            } else {
                                None
                            }
                        },
                    )
                    .unwrap()
                }));
            }
            for h in handles {
                h.join().unwrap();
            }
            let mut got: Vec<u32> = takers.into_iter().map(|h| h.join().unwrap()).collect();
            got.sort_unstable();
            got.dedup();
            assert_eq!(got.len(), consumers as usize, "an item was taken twice");
            assert!(got.iter().all(|&v| v < producers));
        });
    }

    #[test]
    fn one_producer_one_consumer_no_lost_wakeup() {
        run(1, 1, None);
    }

    #[test]
    fn two_producers_one_consumer_no_lost_wakeup() {
        run(2, 1, Some(3));
    }

    #[test]
    fn two_producers_two_consumers_no_lost_wakeup() {
        run(2, 2, Some(2));
    }
}
