//! A set of parked threads waiting for one condition, that costs one atomic load to the
//! operations that might satisfy it while nobody waits.
//!
//! The protocol (a Dekker-style handshake, every step `SeqCst`):
//!
//! | waiter                                   | notifier                                  |
//! |------------------------------------------|-------------------------------------------|
//! | lock the set's mutex                     | change the shared state (a `SeqCst` RMW)  |
//! | `sleepers += 1`                          | load `sleepers`                           |
//! | check the condition (`SeqCst` loads)     | if it is not 0: lock the mutex, notify    |
//! | not met: wait on the condvar (unlocks)   |                                           |
//!
//! In the single total order of `SeqCst` operations, either the notifier's load of `sleepers`
//! comes after the waiter's increment (it sees the waiter, and since the waiter holds the mutex
//! from the increment until it is inside `wait`, the notification cannot slip in between), or it
//! comes before it, and then the notifier's state change comes before the waiter's check, which
//! therefore sees the new state and does not sleep. Either way no wake-up is lost.
//!
//! A woken waiter always retries its operation, even when its timeout has expired, so a
//! notification consumed by a waiter that then gives up is never wasted: the waiter uses what the
//! notification announced.

use std::time::Instant;

use crate::sync::{handshake_fence, lock, AtomicUsize, Condvar, Mutex, Ordering};

/// Threads parked until a condition may hold (an item arrived, room appeared, all tasks done, or
/// the queue closed).
#[derive(Debug, Default)]
pub(crate) struct WaitSet {
    /// How many threads are between registering and leaving (parked or about to park).
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    cond: Condvar,
}

impl WaitSet {
    /// An empty set.
    pub(crate) fn new() -> Self {
        WaitSet {
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            cond: Condvar::new(),
        }
    }

    /// Whether any thread is parked or about to park. Call it after the `SeqCst` state change.
    #[inline]
    pub(crate) fn has_sleepers(&self) -> bool {
        handshake_fence();
        self.sleepers.load(Ordering::SeqCst) != 0
    }

    /// Wakes one waiter, if any is registered.
    #[inline]
    pub(crate) fn notify_one(&self) {
        if self.has_sleepers() {
            self.wake(false);
        }
    }

    /// Wakes every waiter, if any is registered.
    #[inline]
    pub(crate) fn notify_all(&self) {
        if self.has_sleepers() {
            self.wake(true);
        }
    }

    #[cold]
    fn wake(&self, all: bool) {
        let _guard = lock(&self.lock);
        if all {
            self.cond.notify_all();
        } else {
            self.cond.notify_one();
        }
    }

    /// Parks the calling thread until notified or `deadline` passes, unless `ready()` (checked
    /// after registering, with `SeqCst` loads) already holds. Returns at once in that case.
    ///
    /// Wake-ups may be spurious: the caller retries its operation in a loop.
    #[cold]
    pub(crate) fn park(&self, deadline: Option<Instant>, ready: impl FnOnce() -> bool) {
        let guard = lock(&self.lock);
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        handshake_fence();
        if !ready() {
            match deadline {
                None => drop(self.cond.wait(guard)),
                Some(deadline) => {
                    let now = Instant::now();
                    if deadline > now {
                        drop(self.cond.wait_timeout(guard, deadline - now));
                    }
                }
            }
        }
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
    }

    /// The number of threads registered: parked or about to park.
    #[inline]
    pub(crate) fn sleepers(&self) -> usize {
        self.sleepers.load(Ordering::SeqCst)
    }
}
