//! The job queue of a [`ThreadPool`](crate::ThreadPool), with the sleep and wake-up of its idle
//! workers.
//!
//! Jobs go into one unbounded lock-free FIFO (crossbeam's `Injector`). A worker that finds it
//! empty first *searches*: it keeps looking for [`IDLE_LOOK`], yielding the CPU between looks,
//! then *sleeps* on a condition variable. A put wakes a sleeper only when no worker is searching
//! (a searcher will take the job) and no wake-up is already on its way; a worker that takes a
//! job and sees more queued wakes the next sleeper in the same way. So a burst of submits costs
//! the submitter at most one wake-up (a system call, and on the project's machines 5 to 50 µs
//! of scheduling), and the workers wake each other as the burst needs them, where a channel that
//! wakes a receiver on every send made the submitter pay a `futex` call per task.
//!
//! # The protocol, and why no job is left behind
//!
//! Counters: `searching` (workers looking, not asleep, not running a job), `sleepers`
//! (workers in the sleep loop) and `waking` (sleepers notified that have not yet left the
//! loop). `sleepers` and `waking` change only under `lock`.
//!
//! - A put pushes the job, then (after a `SeqCst` fence) reads `searching` and `sleepers`;
//!   it wakes one sleeper, under `lock`, if no worker searches and more sleep than are being
//!   woken.
//! - A worker gives up searching (`searching -= 1`), takes `lock`, counts itself a sleeper
//!   (`sleepers += 1`), and after a `SeqCst` fence looks at the queue once more before it
//!   waits; the wait releases `lock` atomically.
//!
//! The two fences are in one total order. If the put's comes first, the worker's last look
//! sees the job. If the worker's comes first, the put sees the worker counted as a sleeper and
//! not searching, and takes `lock`, which the worker holds until it waits, so the notification
//! cannot fall between the last look and the wait. A put that skips the wake-up because a worker
//! searches leaves the job to that worker, which takes it or, giving up, reaches the last look.
//! A put that skips it because a wake-up is on its way leaves the job to the woken worker,
//! which looks at the queue before anything else. Closing sets `closed` behind the gate that
//! every put holds while it pushes, then wakes every sleeper: a worker that reads `closed` and
//! then finds the queue empty knows no job can come. The model tests (`--cfg loom`) check these
//! cases in every interleaving.

#[cfg(not(loom))]
use crossbeam_utils::Backoff;

use crate::sync::{fence, lock, AtomicBool, AtomicUsize, Condvar, Mutex, Ordering, RwLock};

/// How long an idle worker keeps looking for a job before it sleeps. A task submitted meanwhile
/// starts without a wake-up; the looking yields the CPU between looks, so a submitter that
/// shares the CPU runs at once. rayon's idle workers look for a similar while.
#[cfg(not(loom))]
const IDLE_LOOK: std::time::Duration = std::time::Duration::from_micros(30);

/// The queue: the lock-free `Injector` normally; under the model checker, a loom mutex around
/// a deque (loom cannot see inside crossbeam's atomics; the protocol around the queue is what
/// the models check).
#[cfg(not(loom))]
struct Fifo<T>(crossbeam_deque::Injector<T>);

#[cfg(not(loom))]
impl<T> Fifo<T> {
    fn new() -> Self {
        Fifo(crossbeam_deque::Injector::new())
    }
    fn push(&self, item: T) {
        self.0.push(item);
    }
    fn pop(&self) -> Option<T> {
        loop {
            match self.0.steal() {
                crossbeam_deque::Steal::Success(item) => return Some(item),
                crossbeam_deque::Steal::Empty => return None,
                crossbeam_deque::Steal::Retry => std::hint::spin_loop(),
            }
        }
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(loom)]
struct Fifo<T>(Mutex<std::collections::VecDeque<T>>);

#[cfg(loom)]
impl<T> Fifo<T> {
    fn new() -> Self {
        Fifo(Mutex::new(std::collections::VecDeque::new()))
    }
    fn push(&self, item: T) {
        lock(&self.0).push_back(item);
    }
    fn pop(&self) -> Option<T> {
        lock(&self.0).pop_front()
    }
    fn is_empty(&self) -> bool {
        lock(&self.0).is_empty()
    }
}

/// The job queue (see the module's documentation).
pub(crate) struct Jobs<T> {
    queue: Fifo<T>,
    /// Held for reading by a put while it pushes, for writing by `close`: no put slips in
    /// behind a close.
    gate: RwLock<()>,
    closed: AtomicBool,
    searching: AtomicUsize,
    sleepers: AtomicUsize,
    waking: AtomicUsize,
    lock: Mutex<()>,
    cond: Condvar,
}

impl<T> Jobs<T> {
    pub(crate) fn new() -> Self {
        Jobs {
            queue: Fifo::new(),
            gate: RwLock::new(()),
            closed: AtomicBool::new(false),
            searching: AtomicUsize::new(0),
            sleepers: AtomicUsize::new(0),
            waking: AtomicUsize::new(0),
            lock: Mutex::new(()),
            cond: Condvar::new(),
        }
    }

    /// Queues `item`; hands it back once the queue is closed.
    pub(crate) fn put(&self, item: T) -> Result<(), T> {
        {
            let _open = self.gate.read().unwrap_or_else(|p| p.into_inner());
            if self.closed.load(Ordering::Relaxed) {
                return Err(item);
            }
            self.queue.push(item);
        }
        fence(Ordering::SeqCst);
        self.wake_one_if_needed();
        Ok(())
    }

    /// Refuses every later put and wakes every sleeping worker: they drain what is left, then
    /// end.
    pub(crate) fn close(&self) {
        {
            let _shut = self.gate.write().unwrap_or_else(|p| p.into_inner());
            self.closed.store(true, Ordering::Release);
        }
        let _g = lock(&self.lock);
        self.cond.notify_all();
    }

    /// A job if one is queued; `Err(true)` if none is and none can come (closed).
    pub(crate) fn try_get(&self) -> Result<T, bool> {
        if let Some(item) = self.queue.pop() {
            return Ok(item);
        }
        if self.closed.load(Ordering::Acquire) {
            // every put finished before `closed` was set: one more look is the last word
            return self.queue.pop().ok_or(true);
        }
        Err(false)
    }

    /// The next job, waiting for one as long as it takes; `None` once the queue is closed and
    /// empty.
    pub(crate) fn get(&self) -> Option<T> {
        match self.try_get() {
            Ok(item) => {
                self.spread();
                return Some(item);
            }
            Err(true) => return None,
            Err(false) => {}
        }
        match self.search() {
            Ok(item) => {
                self.spread();
                Some(item)
            }
            Err(true) => None,
            Err(false) => {
                let item = self.sleep();
                if item.is_some() {
                    self.spread();
                }
                item
            }
        }
    }

    /// Looks for a job for `IDLE_LOOK` (once, under the model checker).
    #[cold]
    fn search(&self) -> Result<T, bool> {
        self.searching.fetch_add(1, Ordering::SeqCst);
        let found = self.look();
        self.searching.fetch_sub(1, Ordering::SeqCst);
        found
    }

    #[cfg(not(loom))]
    fn look(&self) -> Result<T, bool> {
        let start = std::time::Instant::now();
        let backoff = Backoff::new();
        loop {
            match self.try_get() {
                Err(false) => {}
                done => return done,
            }
            if start.elapsed() >= IDLE_LOOK {
                return Err(false);
            }
            if backoff.is_completed() {
                std::thread::yield_now();
            } else {
                backoff.snooze();
            }
        }
    }

    #[cfg(loom)]
    fn look(&self) -> Result<T, bool> {
        self.try_get()
    }

    /// Sleeps until a job comes or the queue is closed and empty.
    #[cold]
    fn sleep(&self) -> Option<T> {
        let mut g = lock(&self.lock);
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let found = loop {
            match self.try_get() {
                Ok(item) => break Some(item),
                Err(true) => break None,
                Err(false) => {}
            }
            g = self.cond.wait(g).unwrap_or_else(|p| p.into_inner());
            // a notified worker is no longer on its way (a spurious wake-up may take another's
            // count: that only makes a later put wake one more)
            let _ = self
                .waking
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |w| w.checked_sub(1));
        };
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
        drop(g);
        found
    }

    /// A worker that took a job and sees more queued wakes the next sleeper, if needed.
    fn spread(&self) {
        if !self.queue.is_empty() {
            fence(Ordering::SeqCst);
            self.wake_one_if_needed();
        }
    }

    /// Wakes one sleeper if no worker searches and more sleep than are being woken.
    fn wake_one_if_needed(&self) {
        if self.searching.load(Ordering::SeqCst) != 0 {
            return;
        }
        if self.sleepers.load(Ordering::SeqCst) <= self.waking.load(Ordering::SeqCst) {
            return;
        }
        let _g = lock(&self.lock);
        if self.sleepers.load(Ordering::SeqCst) > self.waking.load(Ordering::SeqCst) {
            self.waking.fetch_add(1, Ordering::SeqCst);
            self.cond.notify_one();
        }
    }
}

/// Model tests of the protocol: `RUSTFLAGS="--cfg loom" cargo test -p conveyor-pool --release
/// --lib loom`.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut builder = loom::model::Builder::new();
        builder.max_branches = 100_000;
        if builder.preemption_bound.is_none() {
            builder.preemption_bound = Some(3);
        }
        builder.check(f);
    }

    /// One worker, two jobs put while it may be searching or asleep, then a close: both jobs
    /// run, and the worker ends (a lost wake-up is a deadlock, which loom reports).
    #[test]
    fn loom_one_worker_gets_every_job() {
        model(|| {
            let jobs = Arc::new(Jobs::new());
            let j = jobs.clone();
            let worker = thread::spawn(move || {
                let mut got = Vec::new();
                while let Some(x) = j.get() {
                    got.push(x);
                }
                got
            });
            jobs.put(1).unwrap();
            jobs.put(2).unwrap();
            jobs.close();
            assert_eq!(jobs.put(3), Err(3));
            assert_eq!(worker.join().unwrap(), [1, 2]);
        });
    }

    /// Two workers, one job, no close until the job has run: a put while one worker searches
    /// and the other sleeps still reaches a worker.
    #[test]
    fn loom_two_workers_one_job() {
        model(|| {
            let jobs = Arc::new(Jobs::new());
            let ran = Arc::new(AtomicUsize::new(0));
            let workers: Vec<_> = (0..2)
                .map(|_| {
                    let (j, r) = (jobs.clone(), ran.clone());
                    thread::spawn(move || {
                        while let Some(()) = j.get() {
                            r.fetch_add(1, Ordering::SeqCst);
                        }
                    })
                })
                .collect();
            jobs.put(()).unwrap();
            // wait for the job to run before closing, so that only a wake-up can deliver it
            while ran.load(Ordering::SeqCst) == 0 {
                thread::yield_now();
            }
            jobs.close();
            for w in workers {
                w.join().unwrap();
            }
            assert_eq!(ran.load(Ordering::SeqCst), 1);
        });
    }
}
