//! The wait/wake protocol: how a blocked put, get or join sleeps and is woken.
//!
//! Each condition ("data available", "space available", "all tasks done") is a [`Signal`]: a
//! 32-bit sequence word to sleep on, and an *armed* flag saying that someone may be asleep.
//! The protocol:
//!
//! - **notify** (after a change made under the queue's mutex, once it is released): if the
//!   flag is set, clear it (a swap), bump the sequence and `FUTEX_WAKE` every sleeper. With
//!   nobody asleep it reads one word that shares a cache line with the mutex: no write, no
//!   system call. Once a wake-up is on its way, further notifies find the flag clear and make
//!   no system call either, until a sleeper arms it again: a peer that is slow to wake (no
//!   free CPU) does not cost the notifier a `FUTEX_WAKE` per item meanwhile.
//! - **wait**: try the operation; spin a bounded time watching a progress word (the ring's
//!   tail for a get, its head for a put) and retry when it moves; then loop: read the
//!   sequence, arm the flag, try the operation, and `FUTEX_WAIT` on the sequence value read.
//!
//! No wake-up is lost. The sleeper arms, then issues a `SeqCst` fence, then makes its last
//! try, which reads the published index (the tail for a get, the head for a put, the task
//! count for a join); the notifier publishes its change, issues a `SeqCst` fence, then reads
//! the flag. The two fences forbid the "store buffering" outcome in which both read old
//! values: either the try sees the change, or the notifier sees the flag, and then bumps the
//! sequence *after* the sleeper read it (the sleeper read it before arming), so the sleeper's
//! `FUTEX_WAIT` returns at once or is woken. Every sleeper is woken, so a flag cleared for one
//! of several sleepers loses nothing: each re-arms before it sleeps again.
//!
//! What is model-checked and what is not: loom checks the *fenced* form above (the `Signal`
//! implementation under `cfg(loom)` issues real `SeqCst` fences), in every interleaving
//! (`RUSTFLAGS="--cfg loom" cargo test -p conveyor-shm --release --lib loom`). Loom models
//! `SeqCst` loads and stores as acquire/release, so it cannot check the production form:
//! `ShmSignal::fence` is only a compiler fence, and the guarantee there rests on an argument
//! from the memory model, not on the model checker: every access of the handshake (the
//! publishing store, the flag's store, swap and load, the index loads) is `SeqCst`, and
//! `SeqCst` accesses are totally ordered, which forbids the store-buffering outcome as the
//! fences do (on x86 a `SeqCst` store is an `xchg`, a full barrier).
//!
//! Peers can die between a change and its notify. So no sleep is longer than
//! [`MAX_SLICE`]: a waiter re-checks at least that often, and survivors go on well within a
//! second. A waiter that leaves (or dies) with the flag armed costs one needless wake-up.

use std::time::{Duration, Instant};

/// The longest a waiter sleeps before re-checking its condition, even without a wake-up.
pub(crate) const MAX_SLICE: Duration = Duration::from_millis(100);

/// The longest a waiter busy-waits before it starts yielding its CPU between checks.
pub(crate) const BUSY_SPIN: Duration = Duration::from_micros(1);

/// A yield that kept this thread off its CPU longer than this means the CPUs are
/// oversubscribed (see `spin_phase`).
const YIELD_STALL: Duration = Duration::from_micros(50);

/// How long a thread skips the yielding phase after a stalled yield.
const NO_YIELD_FOR: Duration = Duration::from_millis(200);

thread_local! {
    /// Until when this thread spins without yielding (see `spin_phase`).
    static NO_YIELD_UNTIL: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
}

/// A condition that can be slept on.
pub(crate) trait Signal {
    /// The current sequence value.
    fn seq(&self) -> u32;
    /// Bumps the sequence (after a change).
    fn bump(&self);
    /// Says that a sleeper may be about to sleep.
    fn arm(&self);
    /// Whether the flag is set (a plain load: the cheap check of every notify).
    fn is_armed(&self) -> bool;
    /// Clears the flag; whether it was set.
    fn disarm(&self) -> bool;
    /// Sleeps while the sequence equals `expected`, at most `timeout`.
    fn sleep(&self, expected: u32, timeout: Duration);
    /// Wakes every sleeper.
    fn wake_all(&self);
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

/// Announces a change: if a sleeper armed the signal, wakes every sleeper.
#[inline]
pub(crate) fn notify<S: Signal>(signal: &S) {
    // The loom model's fence: there it orders the caller's publishing store before the flag
    // load. In production it is only a compiler fence; the order comes from both accesses
    // being `SeqCst` (see the module docs).
    signal.fence();
    if signal.is_armed() {
        notify_slow(signal);
    }
}

#[cold]
fn notify_slow<S: Signal>(signal: &S) {
    if signal.disarm() {
        signal.bump();
        signal.wake_all();
    }
}

/// Runs `attempt` until it returns `Some`, sleeping on `signal` in between; `None` once the
/// deadline passes.
///
/// `spin` bounds the busy-wait phase before the first sleep (zero: sleep at once); while
/// spinning, `attempt` is retried whenever `progress` changes.
#[inline]
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
    loop {
        let seen = signal.seq();
        signal.arm();
        signal.fence();
        if let Some(r) = attempt() {
            return Some(r);
        }
        let slice = match deadline {
            Deadline::Never => MAX_SLICE,
            Deadline::At(at) => {
                let now = Instant::now();
                if now >= at {
                    return None;
                }
                (at - now).min(MAX_SLICE)
            }
            Deadline::Now => return None,
        };
        signal.sleep(seen, slice);
    }
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
    //
    // Yielding only helps while the CPUs are not oversubscribed. When other threads wait for
    // a CPU, a yield hands this one to them for a whole time slice (milliseconds), and the
    // peer's answer, arriving meanwhile, cannot bring this thread back: it is runnable, not
    // asleep, so it gets no wake-up preemption (measured at load 20: a 2.2 ms ping-pong round
    // trip, against 12 µs sleeping at once). So a yield that took longer than `YIELD_STALL`
    // ends the spin (the caller then sleeps on the futex, whose wake-up does preempt), and
    // this thread skips the yielding phase for the next `NO_YIELD_FOR`. (Whether the peer
    // made progress meanwhile says nothing: it may have answered at once on the other CPU
    // while this thread waited for its own.) A yield to a peer sharing this CPU, the case the
    // yielding phase is for, takes a few microseconds.
    if NO_YIELD_UNTIL.with(|t| t.get().is_some_and(|until| start < until)) {
        // Busy phase only.
        end = end.min(yield_after);
    }
    loop {
        let seen = progress();
        let mut i = 0u32;
        while progress() == seen {
            if yielding {
                let before = Instant::now();
                std::thread::yield_now();
                let after = Instant::now();
                if after - before > YIELD_STALL {
                    NO_YIELD_UNTIL.with(|t| t.set(Some(after + NO_YIELD_FOR)));
                    return None;
                }
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
    /// Non-zero while a sleeper may be asleep (see the module docs).
    pub(crate) armed: &'a std::sync::atomic::AtomicU32,
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
    #[inline]
    fn arm(&self) {
        self.armed.store(1, std::sync::atomic::Ordering::SeqCst);
    }
    #[inline]
    fn is_armed(&self) -> bool {
        self.armed.load(std::sync::atomic::Ordering::SeqCst) != 0
    }
    #[inline]
    fn disarm(&self) -> bool {
        self.armed.swap(0, std::sync::atomic::Ordering::SeqCst) != 0
    }
    fn sleep(&self, expected: u32, timeout: Duration) {
        crate::futex::wait(self.seq, expected, timeout);
    }
    fn wake_all(&self) {
        crate::futex::wake(self.seq, u32::MAX);
    }
    /// No fence instruction: in the queue, both sides of the handshake are `SeqCst`
    /// accesses (the publishing store of the tail, head or task count, and the load of the
    /// flag; the store arming the flag, and the load of the index in the last try), and
    /// `SeqCst` accesses are totally ordered, which forbids the outcome the fences forbid in
    /// the model (see the module docs). On x86 the publishing store is an `xchg`, a full
    /// barrier: an `mfence` after it would cost a put or a get some 30 cycles for nothing.
    #[inline]
    fn fence(&self) {
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
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
        armed: AtomicU32,
        bucket: Mutex<()>,
        cv: Condvar,
    }

    impl ModelSignal {
        fn new() -> Self {
            ModelSignal {
                seq: AtomicU32::new(0),
                armed: AtomicU32::new(0),
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
        fn arm(&self) {
            self.armed.store(1, Ordering::SeqCst);
        }
        fn is_armed(&self) -> bool {
            self.armed.load(Ordering::SeqCst) != 0
        }
        fn disarm(&self) -> bool {
            self.armed.swap(0, Ordering::SeqCst) != 0
        }
        fn sleep(&self, expected: u32, _timeout: Duration) {
            let guard = self.bucket.lock().unwrap();
            if self.seq.load(Ordering::SeqCst) != expected {
                return;
            }
            drop(self.cv.wait(guard).unwrap());
        }
        fn wake_all(&self) {
            let _guard = self.bucket.lock().unwrap();
            self.cv.notify_all();
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
                    notify(&m.data);
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
