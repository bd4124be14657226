//! A set of parked threads waiting for one condition, that costs one atomic load to the
//! operations that might satisfy it while nobody waits.
//!
//! Each waiter enters a list (under a mutex) and parks its thread; a notifier takes waiters off
//! the list and unparks them, so every waiter is woken once, and once every waiter has been woken
//! the notifiers see an empty list again and stop paying for notifications.
//!
//! The protocol (a Dekker-style handshake, every step `SeqCst`):
//!
//! | waiter                                        | notifier                                  |
//! |-----------------------------------------------|-------------------------------------------|
//! | lock the list, join it, store its length in `sleepers` | change the shared state (a `SeqCst` RMW) |
//! | check the condition (`SeqCst` loads)          | load `sleepers`                           |
//! | met: leave the list; not met: park            | not 0: lock, take a waiter off, unpark it |
//!
//! In the single total order of `SeqCst` operations, either the notifier's load of `sleepers`
//! comes after the waiter's store (it sees the waiter, and takes it off the list and unparks it;
//! an unpark before the park makes the park return at once), or it comes before it, and then the
//! notifier's state change comes before the waiter's check, which therefore sees the new state
//! and does not park. Either way no wake-up is lost.
//!
//! A woken waiter always retries its operation, even when its timeout has expired, so a
//! notification that races with a timeout is never wasted: the waiter uses what it announced.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use crate::backoff::Backoff;
use crate::sync::{
    current, handshake_fence, lock, park, park_timeout, AtomicBool, AtomicUsize, Mutex, Ordering,
    Thread,
};

/// One parked thread.
#[derive(Debug)]
struct Waiter {
    thread: Thread,
    /// Set (before the unpark) by the notifier that took this waiter off the list.
    notified: AtomicBool,
}

/// Threads parked until a condition may hold (an item arrived, room appeared, all tasks done, or
/// the queue closed).
#[derive(Debug)]
pub(crate) struct WaitSet {
    /// The length of `list`: the threads parked or about to park and not yet notified.
    sleepers: AtomicUsize,
    list: Mutex<VecDeque<Arc<Waiter>>>,
}

impl WaitSet {
    /// An empty set.
    pub(crate) fn new() -> Self {
        WaitSet {
            sleepers: AtomicUsize::new(0),
            list: Mutex::new(VecDeque::new()),
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
        let woken: Vec<Arc<Waiter>> = {
            let mut list = lock(&self.list);
            let woken = if all {
                list.drain(..).collect()
            } else {
                list.pop_front().into_iter().collect()
            };
            self.sleepers.store(list.len(), Ordering::SeqCst);
            woken
        };
        for w in woken {
            w.notified.store(true, Ordering::Release);
            w.thread.unpark();
        }
    }

    /// Parks the calling thread until notified or `deadline` passes, unless `ready()` (checked
    /// after registering, with `SeqCst` loads) already holds. Returns at once in that case.
    ///
    /// The caller retries its operation afterwards in any case.
    #[cold]
    pub(crate) fn park(&self, deadline: Option<Instant>, ready: impl FnOnce() -> bool) {
        let me = Arc::new(Waiter {
            thread: current(),
            notified: AtomicBool::new(false),
        });
        {
            let mut list = lock(&self.list);
            list.push_back(me.clone());
            self.sleepers.store(list.len(), Ordering::SeqCst);
            handshake_fence();
            if ready() {
                self.leave(&mut list, &me);
                return;
            }
        }
        // Registered: a notifier that comes now takes this waiter off the list and sets
        // `notified`. Watch that flag a little longer before sleeping in the kernel: a wake-up
        // that lands during this spin costs neither side a system call (the unpark of a thread
        // that is not parked yet only sets a flag), and on a small machine the other side is
        // often just a few microseconds from acting.
        let mut backoff = Backoff::new();
        while !backoff.is_completed() {
            if me.notified.load(Ordering::Acquire) {
                return;
            }
            backoff.snooze();
        }
        loop {
            if me.notified.load(Ordering::Acquire) {
                return;
            }
            match deadline {
                None => park(),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        // Timed out: leave the list, unless a notifier took us off already (then
                        // the caller's retry uses what that notification announced).
                        let mut list = lock(&self.list);
                        self.leave(&mut list, &me);
                        return;
                    }
                    park_timeout(deadline - now);
                }
            }
        }
    }

    /// Takes `me` off `list` if it is still there.
    fn leave(&self, list: &mut VecDeque<Arc<Waiter>>, me: &Arc<Waiter>) {
        if let Some(i) = list.iter().position(|w| Arc::ptr_eq(w, me)) {
            list.remove(i);
            self.sleepers.store(list.len(), Ordering::SeqCst);
        }
    }

    /// The number of threads registered: parked or about to park, and not yet notified.
    #[inline]
    pub(crate) fn sleepers(&self) -> usize {
        self.sleepers.load(Ordering::SeqCst)
    }
}

impl Default for WaitSet {
    fn default() -> Self {
        Self::new()
    }
}
