//! The conformance suite checked on itself: a reference queue (a `Mutex<VecDeque>` and a
//! `Condvar`, written from the contract's text) meets every case, and mutants of it, each
//! with one contract rule broken, fail the case that checks that rule. So the cases can fail,
//! and a new transport's author has a small complete factory to read.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use conveyor_core::testing::{cases, Capacity, Factory, Item, Order, Profile, Remote};
use conveyor_core::{
    Channel, GetError, Joinable, PutError, QueueInfo, TaskDoneError, Unavailable, UnavailableKind,
};

/// One contract rule a mutant breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bug {
    None,
    /// `close` shuts the queue down for every handle (the bug of issue 12).
    GlobalClose,
    /// `shutdown(true)` keeps the items left.
    ImmediateKeeps,
    /// Hands out the newest item first while declaring FIFO.
    Lifo,
    /// `get_timeout` gives up at once.
    NoWait,
    /// Once cut off from its (pretend) server, answers from what it last knew, as if all were
    /// well.
    AnswersWhenDown,
}

#[derive(Default)]
struct State {
    items: VecDeque<Item>,
    capacity: Option<usize>,
    shutdown: bool,
    unfinished: u64,
    /// Handles that have put and are still open (for a queue built to shut itself down).
    producers: usize,
    auto: bool,
    /// The reference queue plays a queue held by a server: [`Factory::cut_off`] makes that
    /// server unreachable, and every call that would ask it fails.
    down: bool,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    bug: Bug,
}

/// A handle: the shared queue and this handle's own close mark.
struct RefQueue {
    shared: Arc<Shared>,
    closed: AtomicBool,
    has_put: AtomicBool,
}

impl RefQueue {
    fn new(capacity: Option<usize>, auto: bool, bug: Bug) -> RefQueue {
        let state = State {
            capacity,
            auto,
            ..State::default()
        };
        RefQueue {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                changed: Condvar::new(),
                bug,
            }),
            closed: AtomicBool::new(false),
            has_put: AtomicBool::new(false),
        }
    }

    fn handle(&self) -> RefQueue {
        RefQueue {
            shared: self.shared.clone(),
            closed: AtomicBool::new(false),
            has_put: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap()
    }

    /// `Err` if the pretend server is cut off (and the queue is not the mutant that answers
    /// anyway); the state otherwise.
    fn reach(&self, operation: &'static str) -> Result<MutexGuard<'_, State>, Unavailable> {
        let s = self.lock();
        if s.down && self.shared.bug != Bug::AnswersWhenDown {
            return Err(Unavailable::new(
                UnavailableKind::Unreachable,
                operation,
                "the reference queue",
                std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
            ));
        }
        Ok(s)
    }

    /// Waits on the condition variable until `deadline` (`None`: forever); false once it passed.
    fn wait<'a>(
        &self,
        s: MutexGuard<'a, State>,
        deadline: Option<Instant>,
    ) -> (MutexGuard<'a, State>, bool) {
        match deadline {
            None => (self.shared.changed.wait(s).unwrap(), true),
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return (s, false);
                }
                (
                    self.shared.changed.wait_timeout(s, d - now).unwrap().0,
                    true,
                )
            }
        }
    }

    fn put_until(
        &self,
        item: Item,
        deadline: Option<Instant>,
        wait: bool,
    ) -> Result<(), PutError<Item>> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(PutError::Closed(item));
        }
        let mut s = match self.reach("put") {
            Ok(s) => s,
            Err(e) => {
                return Err(PutError::Io {
                    item,
                    source: e.into(),
                })
            }
        };
        loop {
            if s.shutdown {
                return Err(PutError::Closed(item));
            }
            if !s.capacity.is_some_and(|c| s.items.len() >= c) {
                break;
            }
            if !wait {
                return Err(PutError::Full(item));
            }
            let (g, more) = self.wait(s, deadline);
            s = g;
            if !more {
                return Err(PutError::Timeout(item));
            }
        }
        s.items.push_back(item);
        s.unfinished += 1;
        if !self.has_put.swap(true, Ordering::SeqCst) {
            s.producers += 1;
        }
        self.shared.changed.notify_all();
        Ok(())
    }

    fn get_until(&self, deadline: Option<Instant>, wait: bool) -> Result<Item, GetError> {
        let mut s = self.reach("get").map_err(|e| GetError::Io(e.into()))?;
        loop {
            let next = match self.shared.bug {
                Bug::Lifo => s.items.pop_back(),
                _ => s.items.pop_front(),
            };
            if let Some(item) = next {
                self.shared.changed.notify_all();
                return Ok(item);
            }
            if s.shutdown {
                return Err(GetError::Closed);
            }
            if !wait {
                return Err(GetError::Empty);
            }
            if self.shared.bug == Bug::NoWait && deadline.is_some() {
                return Err(GetError::Timeout);
            }
            let (g, more) = self.wait(s, deadline);
            s = g;
            if !more {
                return Err(GetError::Timeout);
            }
        }
    }

    /// This handle puts no more: on a queue built for it, the last producer's close shuts it.
    fn retire(&self) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        if self.has_put.load(Ordering::SeqCst) {
            let mut s = self.lock();
            s.producers -= 1;
            if s.auto && s.producers == 0 {
                s.shutdown = true;
                self.shared.changed.notify_all();
            }
        }
    }
}

fn deadline(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

impl Drop for RefQueue {
    fn drop(&mut self) {
        self.retire();
    }
}

impl Channel<Item> for RefQueue {
    fn put(&self, item: Item) -> Result<(), PutError<Item>> {
        self.put_until(item, None, true)
    }
    fn try_put(&self, item: Item) -> Result<(), PutError<Item>> {
        self.put_until(item, None, false)
    }
    fn put_timeout(&self, item: Item, timeout: Duration) -> Result<(), PutError<Item>> {
        self.put_until(item, deadline(timeout), true)
    }
    fn get(&self) -> Result<Item, GetError> {
        self.get_until(None, true)
    }
    fn try_get(&self) -> Result<Item, GetError> {
        self.get_until(None, false)
    }
    fn get_timeout(&self, timeout: Duration) -> Result<Item, GetError> {
        self.get_until(deadline(timeout), true)
    }
    fn shutdown(&self, immediate: bool) -> Result<(), Unavailable> {
        let mut s = self.reach("shutdown")?;
        s.shutdown = true;
        if immediate && self.shared.bug != Bug::ImmediateKeeps {
            let discarded = s.items.len() as u64;
            s.items.clear();
            s.unfinished = s.unfinished.saturating_sub(discarded);
        }
        self.shared.changed.notify_all();
        Ok(())
    }
    fn close(&self) -> Result<(), Unavailable> {
        if self.shared.bug == Bug::GlobalClose {
            return self.shutdown(false);
        }
        self.retire();
        Ok(())
    }
}

impl QueueInfo for RefQueue {
    fn len(&self) -> Result<usize, Unavailable> {
        Ok(self.reach("len")?.items.len())
    }
    fn is_empty(&self) -> Result<bool, Unavailable> {
        Ok(self.reach("is_empty")?.items.is_empty())
    }
    fn is_full(&self) -> Result<bool, Unavailable> {
        let s = self.reach("is_full")?;
        Ok(s.capacity.is_some_and(|c| s.items.len() >= c))
    }
    fn capacity(&self) -> Result<Option<usize>, Unavailable> {
        Ok(self.reach("capacity")?.capacity)
    }
}

impl Joinable for RefQueue {
    fn task_done(&self) -> Result<(), TaskDoneError> {
        let mut s = self.reach("task_done")?;
        if s.unfinished == 0 {
            return Err(TaskDoneError::TooManyCalls);
        }
        s.unfinished -= 1;
        self.shared.changed.notify_all();
        Ok(())
    }
    fn join(&self) -> Result<(), Unavailable> {
        self.join_timeout(Duration::MAX).map(drop)
    }
    fn join_timeout(&self, timeout: Duration) -> Result<bool, Unavailable> {
        let end = deadline(timeout);
        let mut s = self.reach("join")?;
        while s.unfinished > 0 {
            let (g, more) = self.wait(s, end);
            s = g;
            if !more {
                return Ok(s.unfinished == 0);
            }
        }
        Ok(true)
    }
}

/// The reference queue's factory, with one bug or none.
struct Reference(Bug);

impl Factory for Reference {
    type Queue = RefQueue;
    type Handle = RefQueue;

    fn profile(&self) -> Profile {
        Profile::queue("reference queue", Order::Fifo)
    }
    fn create(&self, capacity: Capacity) -> RefQueue {
        let capacity = match capacity {
            Capacity::Bounded(n) => Some(n),
            Capacity::Unbounded => None,
        };
        RefQueue::new(capacity, false, self.0)
    }
    fn create_auto_shutdown(&self, capacity: Capacity) -> Result<RefQueue, &'static str> {
        let q = self.create(capacity);
        q.lock().auto = true;
        Ok(q)
    }
    fn producer(&self, q: &RefQueue) -> RefQueue {
        q.handle()
    }
    fn consumer(&self, q: &RefQueue) -> RefQueue {
        q.handle()
    }
    fn joinable(h: &RefQueue) -> Result<&dyn Joinable, &'static str> {
        Ok(h)
    }
    fn info(h: &RefQueue) -> Result<&dyn QueueInfo, &'static str> {
        Ok(h)
    }
    fn remote(&self) -> Result<&dyn Remote<RefQueue>, &'static str> {
        Err("the reference queue lives in one process's memory")
    }
    fn cut_off(&self, q: &mut RefQueue) -> Result<(), &'static str> {
        q.lock().down = true;
        q.shared.changed.notify_all();
        Ok(())
    }
}

conveyor_core::conformance_tests!(reference, Reference(Bug::None));

/// Runs `case` against a mutant and says whether the case failed.
fn fails(case: fn(&Reference), bug: Bug) -> bool {
    std::panic::catch_unwind(|| case(&Reference(bug))).is_err()
}

#[test]
fn a_global_close_fails_the_per_handle_close_cases() {
    assert!(fails(cases::close_is_per_handle, Bug::GlobalClose));
    assert!(fails(
        cases::blocked_get_after_a_producer_closes,
        Bug::GlobalClose
    ));
    assert!(fails(
        cases::auto_shutdown_once_every_producer_closed,
        Bug::GlobalClose
    ));
    assert!(fails(cases::producers_in_other_processes, Bug::GlobalClose));
}

#[test]
fn an_immediate_shutdown_that_keeps_the_items_fails_the_immediate_cases() {
    assert!(fails(
        cases::shutdown_immediate_discards,
        Bug::ImmediateKeeps
    ));
    assert!(fails(
        cases::shutdown_immediate_after_shutdown_discards,
        Bug::ImmediateKeeps
    ));
}

#[test]
fn a_lifo_declared_fifo_fails_the_order_cases() {
    assert!(fails(cases::order, Bug::Lifo));
    assert!(fails(cases::put_then_get, Bug::Lifo));
}

#[test]
fn a_get_timeout_that_does_not_wait_fails_the_timeout_cases() {
    assert!(fails(cases::get_timeout_waits_then_times_out, Bug::NoWait));
    assert!(fails(cases::blocked_get_wakes_on_put, Bug::NoWait));
}

#[test]
fn a_queue_that_answers_when_cut_off_fails_the_cut_off_case() {
    assert!(fails(cases::calls_fail_when_cut_off, Bug::AnswersWhenDown));
}
