//! Exponential backoff for the short spin that precedes parking a thread.
//!
//! Waking a parked thread costs a system call on both sides (5 to 18 µs on the machines this
//! crate is measured on), while the other side of a queue usually acts within a few hundred
//! nanoseconds. So a blocked operation first retries with a growing pause: a few rounds of
//! `spin_loop` hints, then a few `yield_now`s (which let a preempted peer run when there are more
//! threads than cores), and only then parks. A waiter of the lock-based queue that sees the other
//! side make no progress at all for a few looks skips the rest of the spinning (see
//! [`Backoff::look`]): when that side is descheduled, yielding at once gives it the processor
//! sooner.
//!
//! The lock-free ring does not skip: its other side, when running, can be inside a system call
//! (waking a parked thread) for several microseconds, and a waiter that gave up spinning within
//! a microsecond parked in turn and made the next put or get pay for a wake-up too (one run of
//! the 1-producer/1-consumer benchmark fell to 0.17x crossbeam-channel that way).

use crate::sync::{spin_hint, yield_now};

/// The most items (or free places) a waiter lets accumulate before it tries again, while the other
/// side is still at work (an eighth of the capacity for smaller queues). See [`wait_for_batch`].
pub(crate) const BATCH: usize = 128;
/// Spin hints between two looks once something is available.
const CONFIRM_SPINS: u32 = 4;
/// The most looks at a still-growing amount before the waiter tries anyway.
const CONFIRM_LOOKS: u32 = 16;

/// Rounds of spinning `2^step` hints before switching to `yield_now`.
#[cfg(not(loom))]
const SPIN_LIMIT: u32 = 6;
/// Rounds in all, spinning and yielding, before [`Backoff::is_completed`] says to park.
#[cfg(not(loom))]
const YIELD_LIMIT: u32 = 10;

/// Looks in a row without progress after which [`Backoff::look`] stops the spinning.
const IDLE_LOOKS: u32 = 3;

// Under the model checker every spin is a yield, and parking must be reached quickly for the
// state space to stay small; the protocol is the same.
#[cfg(loom)]
const SPIN_LIMIT: u32 = 0;
#[cfg(loom)]
const YIELD_LIMIT: u32 = 0;

/// Exponential backoff state for one blocked operation.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    step: u32,
    /// Looks in a row that saw the other side make no progress.
    idle: u32,
}

impl Backoff {
    /// A fresh backoff.
    #[inline]
    pub(crate) fn new() -> Self {
        Backoff { step: 0, idle: 0 }
    }

    /// Pauses briefly while another thread finishes an operation already under way (a slot being
    /// written or read): spins, never parks.
    #[inline]
    pub(crate) fn spin(&mut self) {
        for _ in 0..1u32 << self.step.min(SPIN_LIMIT) {
            spin_hint();
        }
        if self.step <= SPIN_LIMIT {
            self.step += 1;
        }
    }

    /// Pauses while waiting for another thread to make room or bring an item: spins at first,
    /// then yields the CPU.
    #[inline]
    pub(crate) fn snooze(&mut self) {
        if self.step <= SPIN_LIMIT {
            for _ in 0..1u32 << self.step {
                spin_hint();
            }
        } else {
            yield_now();
        }
        if self.step <= YIELD_LIMIT {
            self.step += 1;
        }
    }

    /// Notes one look at the other side of the queue: whether it made progress since the
    /// previous look (an item taken from a full queue, one added to an empty queue). After
    /// [`IDLE_LOOKS`] looks in a row without progress the other side is most likely not running
    /// (descheduled on a machine with more threads than cores), so spinning on would only burn
    /// the time slice it needs: the backoff skips to yielding.
    #[inline]
    pub(crate) fn look(&mut self, progress: bool) {
        if progress {
            self.idle = 0;
            return;
        }
        self.idle += 1;
        if self.idle >= IDLE_LOOKS && self.step <= SPIN_LIMIT {
            self.step = SPIN_LIMIT + 1;
        }
    }

    /// Whether the spinning is over and the caller should park.
    #[inline]
    pub(crate) fn is_completed(&self) -> bool {
        self.step > YIELD_LIMIT
    }
}

/// The batch a waiter on a queue of capacity `cap` waits for: see [`wait_for_batch`].
#[inline]
pub(crate) fn batch_for(cap: usize) -> usize {
    (cap / 8).clamp(1, BATCH)
}

/// The spin of a blocked put or get between two tries, with the backoff's pauses: returns once
/// `available()` (the items there to take, or the free places to fill) reaches `batch`, or has
/// stopped growing between two looks while not zero (the other side brings no more for now), or
/// after `CONFIRM_LOOKS` looks at a growing amount, or when `closed()`, or when the backoff is
/// completed (the caller then parks).
///
/// Trying again the moment one item (or place) appears would keep the two sides trading the same
/// cache lines item by item; letting a busy other side run alone for a while lets it fill (or
/// drain) a batch that this side then takes in one go, as a queue whose waiters sleep at once
/// does, without the cost of sleeping. Once something is there, the looks come at short fixed
/// intervals, so that a lone item waits only one such interval more.
///
/// With `skip_idle`, looks that see nothing at all feed [`Backoff::look`], which stops the
/// spinning early when the other side seems not to run.
#[inline]
pub(crate) fn wait_for_batch(
    backoff: &mut Backoff,
    batch: usize,
    skip_idle: bool,
    available: impl Fn() -> usize,
    closed: impl Fn() -> bool,
) {
    let mut seen = 0;
    let mut looks = 0;
    while !backoff.is_completed() {
        if seen == 0 {
            backoff.snooze();
        } else {
            for _ in 0..CONFIRM_SPINS {
                spin_hint();
            }
            looks += 1;
        }
        let now = available();
        if now >= batch || (now != 0 && now == seen) || looks >= CONFIRM_LOOKS || closed() {
            return;
        }
        if skip_idle {
            backoff.look(now != 0);
        }
        seen = now;
    }
}
