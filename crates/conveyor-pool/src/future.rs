//! [`Future`]: the result of a submitted task, Python's `concurrent.futures.Future`.
//!
//! A future's life is one of four states, held in one atomic byte so that `done()` and
//! `running()` read it without a lock:
//!
//! | state       | set by                               | next                      |
//! |-------------|--------------------------------------|---------------------------|
//! | `PENDING`   | `submit`                             | `RUNNING` or `CANCELLED`  |
//! | `RUNNING`   | the worker, as it starts the task    | `FINISHED`                |
//! | `FINISHED`  | the worker, with the outcome stored  | (final)                   |
//! | `CANCELLED` | `cancel()` or `shutdown(cancel_futures)` while `PENDING` | (final) |
//!
//! `PENDING -> RUNNING` and `PENDING -> CANCELLED` are compare-and-swaps, so exactly one of
//! "the task runs" and "the task is cancelled" happens. The outcome, the waiters and the done
//! callbacks live behind a mutex; a resolving thread notifies the condition variable only when
//! someone sleeps on it.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam_utils::Backoff;

use crate::error::TaskError;

const PENDING: u8 = 0;
const RUNNING: u8 = 1;
const FINISHED: u8 = 2;
const CANCELLED: u8 = 3;

/// How long `result` looks at a running task before it sleeps.
const RESULT_LOOK: Duration = Duration::from_micros(20);

type Callback<T> = Box<dyn FnOnce(&Future<T>) + Send>;

struct Slot<T> {
    /// Set once, when the future is resolved; `None` again once `result` took it.
    outcome: Option<Result<T, TaskError>>,
    /// Whether `result` took the outcome.
    taken: bool,
    /// Done callbacks (the user's, and the waiters of `wait`/`as_completed`), run once.
    callbacks: Vec<Callback<T>>,
    /// Threads asleep on the condition variable.
    sleepers: usize,
}

pub(crate) struct Shared<T> {
    state: AtomicU8,
    slot: Mutex<Slot<T>>,
    cond: Condvar,
}

/// A future's state with, after it, what else the task keeps in the same allocation: a
/// [`ThreadPool`](crate::ThreadPool) task's closure (so a submit allocates once, not once for
/// the closure and once for the state), or nothing. `J` is unsized to [`Erased`] in the
/// future's handle, so that [`Future<T>`] names only `T`.
pub(crate) struct Cell<T, J: ?Sized> {
    pub(crate) shared: Shared<T>,
    pub(crate) job: J,
}

/// What the tail of a [`Cell`] may be, once its type is forgotten.
pub(crate) trait Erased: Send + Sync {}

impl<J: Send + Sync + ?Sized> Erased for J {}

/// The handle a future and its promise hold.
type Handle<T> = Arc<Cell<T, dyn Erased>>;

impl<T> Shared<T> {
    /// A pending future's state.
    pub(crate) fn new() -> Shared<T> {
        Shared {
            state: AtomicU8::new(PENDING),
            slot: Mutex::new(Slot {
                outcome: None,
                taken: false,
                callbacks: Vec::new(),
                sleepers: 0,
            }),
            cond: Condvar::new(),
        }
    }
}

/// The result of a task submitted to a pool (Python's `concurrent.futures.Future`).
///
/// Ask it whether the task is [`done`](Future::done) or [`running`](Future::running), wait
/// for its [`result`](Future::result) (with a [timeout](Future::result_timeout)),
/// [`cancel`](Future::cancel) it while it has not started, or
/// [`add_done_callback`](Future::add_done_callback). It always resolves: with the task's
/// value, or with a [`TaskError`] saying why not (a panic, a cancellation, a worker process
/// that died), never by hanging.
///
/// ```
/// use conveyor_pool::ThreadPool;
///
/// let pool = ThreadPool::new(2);
/// let f = pool.submit(|| 6 * 7)?;
/// assert_eq!(f.result()?, 42);
/// assert!(f.done());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Future<T> {
    cell: Handle<T>,
}

impl<T> fmt::Debug for Future<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.cell.shared.state.load(Ordering::Acquire) {
            PENDING => "pending",
            RUNNING => "running",
            FINISHED => "finished",
            _ => "cancelled",
        };
        f.debug_struct("Future").field("state", &state).finish()
    }
}

/// The pool's side of a future: resolves it.
pub(crate) struct Promise<T> {
    cell: Handle<T>,
}

impl<T> fmt::Debug for Promise<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Promise").finish_non_exhaustive()
    }
}

/// A new pending future and the promise that resolves it.
pub(crate) fn pair<T: Send + 'static>() -> (Promise<T>, Future<T>) {
    let cell: Handle<T> = Arc::new(Cell {
        shared: Shared::new(),
        job: (),
    });
    (Promise { cell: cell.clone() }, Future { cell })
}

impl<T: Send + 'static> Future<T> {
    /// The future of the task whose state is `cell` (one allocation holds both).
    pub(crate) fn of<J: Erased + 'static>(cell: Arc<Cell<T, J>>) -> Future<T> {
        Future { cell }
    }
}

impl<T: Send + 'static> Promise<T> {
    /// The promise of the task whose state is `cell`.
    pub(crate) fn of<J: Erased + 'static>(cell: Arc<Cell<T, J>>) -> Promise<T> {
        Promise { cell }
    }
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, Slot<T>> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_resolved(&self) -> bool {
        matches!(self.state.load(Ordering::Acquire), FINISHED | CANCELLED)
    }
}

/// Runs done callbacks; a panicking callback is logged and the others still run (Python logs
/// and ignores a callback's exception).
fn run_callbacks<T>(handle: &Handle<T>, callbacks: Vec<Callback<T>>) {
    if callbacks.is_empty() {
        return;
    }
    let fut = Future {
        cell: handle.clone(),
    };
    for cb in callbacks {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| cb(&fut))) {
            tracing::error!(
                message = %crate::error::panic_text(&*payload),
                "a future's done callback panicked"
            );
        }
    }
}

impl<T> Promise<T> {
    /// Moves the future from pending to running (Python's `set_running_or_notify_cancel`):
    /// `false` if it was cancelled, and then the task must not run.
    pub(crate) fn set_running(&self) -> bool {
        self.cell
            .shared
            .state
            .compare_exchange(PENDING, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Resolves the future with `outcome`, unless it is already resolved (cancelled); returns
    /// whether it did.
    pub(crate) fn complete(&self, outcome: Result<T, TaskError>) -> bool {
        let shared = &self.cell.shared;
        let mut slot = shared.lock();
        if shared.is_resolved() {
            return false;
        }
        slot.outcome = Some(outcome);
        shared.state.store(FINISHED, Ordering::Release);
        let callbacks = std::mem::take(&mut slot.callbacks);
        let sleepers = slot.sleepers > 0;
        drop(slot);
        if sleepers {
            shared.cond.notify_all();
        }
        run_callbacks(&self.cell, callbacks);
        true
    }

    /// Cancels the future if it has not started; returns whether it is cancelled.
    pub(crate) fn cancel(&self) -> bool {
        cancel(&self.cell)
    }
}

fn cancel<T>(handle: &Handle<T>) -> bool {
    let shared = &handle.shared;
    let mut slot = shared.lock();
    match shared
        .state
        .compare_exchange(PENDING, CANCELLED, Ordering::AcqRel, Ordering::Acquire)
    {
        Ok(_) => {
            slot.outcome = Some(Err(TaskError::Cancelled));
            let callbacks = std::mem::take(&mut slot.callbacks);
            let sleepers = slot.sleepers > 0;
            drop(slot);
            if sleepers {
                shared.cond.notify_all();
            }
            run_callbacks(handle, callbacks);
            true
        }
        Err(CANCELLED) => true,
        Err(_) => false,
    }
}

impl<T> Future<T> {
    /// Whether the task finished or was cancelled (Python's `done()`). Never blocks.
    pub fn done(&self) -> bool {
        self.cell.shared.is_resolved()
    }

    /// Whether the task is running now (Python's `running()`). Never blocks.
    pub fn running(&self) -> bool {
        self.cell.shared.state.load(Ordering::Acquire) == RUNNING
    }

    /// Whether the task was cancelled (Python's `cancelled()`).
    pub fn cancelled(&self) -> bool {
        self.cell.shared.state.load(Ordering::Acquire) == CANCELLED
    }

    /// Cancels the task if it has not started (Python's `cancel()`): `true` if it is now
    /// cancelled (or was already), `false` if it runs or has finished. A cancelled future's
    /// [`result`](Future::result) is [`TaskError::Cancelled`], and its done callbacks run now.
    pub fn cancel(&self) -> bool {
        cancel(&self.cell)
    }

    /// Waits for the task and returns its value (Python's `result()`), or why there is none:
    /// the panic message, a cancellation, a worker process that died.
    ///
    /// The value moves out to the caller: a second call returns [`TaskError::Taken`] (an
    /// error, as an outcome that was an error stays one for every call).
    pub fn result(&self) -> Result<T, TaskError> {
        self.take(None)
    }

    /// [`result`](Future::result) waiting at most `timeout` (Python's `result(timeout)`):
    /// [`TaskError::Timeout`] if the task has not finished by then; it goes on, and the future
    /// can be asked again. Measured on the monotonic clock.
    pub fn result_timeout(&self, timeout: Duration) -> Result<T, TaskError> {
        self.take(Some(timeout))
    }

    /// Waits until the future is resolved, at most `timeout` (`None`: no limit); whether it is.
    pub fn wait_timeout(&self, timeout: Option<Duration>) -> bool {
        self.wait_resolved(timeout.map(|t| (t, Instant::now())))
            .is_some()
    }

    /// Spins briefly, then sleeps, until resolved or the deadline; returns the lock if resolved.
    fn wait_resolved(&self, limit: Option<(Duration, Instant)>) -> Option<MutexGuard<'_, Slot<T>>> {
        let shared = &self.cell.shared;
        // A task that ends within a few microseconds is caught without a sleep and a wake-up
        // (a system call on both sides); the look yields the CPU once the short spin is over.
        if !shared.is_resolved() {
            let start = Instant::now();
            let backoff = Backoff::new();
            while !shared.is_resolved() && start.elapsed() < RESULT_LOOK {
                if limit.is_some_and(|(t, s)| s.elapsed() >= t) {
                    break;
                }
                if backoff.is_completed() {
                    std::thread::yield_now();
                } else {
                    backoff.snooze();
                }
            }
        }
        let deadline = limit.and_then(|(t, start)| start.checked_add(t));
        let mut slot = shared.lock();
        while !shared.is_resolved() {
            slot.sleepers += 1;
            slot = match (limit, deadline) {
                (None, _) | (Some(_), None) => {
                    shared.cond.wait(slot).unwrap_or_else(|p| p.into_inner())
                }
                (Some(_), Some(deadline)) => {
                    let now = Instant::now();
                    if now >= deadline {
                        slot.sleepers -= 1;
                        return None;
                    }
                    shared
                        .cond
                        .wait_timeout(slot, deadline - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
            slot.sleepers -= 1;
        }
        Some(slot)
    }

    fn take(&self, timeout: Option<Duration>) -> Result<T, TaskError> {
        let Some(mut slot) = self.wait_resolved(timeout.map(|t| (t, Instant::now()))) else {
            return Err(TaskError::Timeout(timeout.unwrap_or_default()));
        };
        match slot.outcome.take() {
            Some(Ok(v)) => {
                slot.taken = true;
                Ok(v)
            }
            Some(Err(e)) => {
                // an error stays: every later call sees it too
                slot.outcome = Some(Err(e.clone()));
                Err(e)
            }
            None if slot.taken => Err(TaskError::Taken),
            None => unreachable!("a resolved future holds an outcome until it is taken"),
        }
    }

    /// The error the task ended with, waiting for it to end (Python's `exception()`): `None`
    /// if it produced a value (taken or not).
    pub fn exception(&self) -> Option<TaskError> {
        let slot = self.wait_resolved(None)?;
        match &slot.outcome {
            Some(Err(e)) => Some(e.clone()),
            _ => None,
        }
    }

    /// Whether the task ended with an error: `Some(true)` for a failure (a panic, a dead
    /// worker), `Some(false)` otherwise; `None` while it is not done. Never blocks.
    pub(crate) fn failed_now(&self) -> Option<bool> {
        if !self.done() {
            return None;
        }
        let slot = self.cell.shared.lock();
        Some(matches!(&slot.outcome, Some(Err(e)) if e.is_failure()))
    }

    /// Runs `callback` with this future once it is done (Python's `add_done_callback`): at
    /// once, on this thread, if it already is; otherwise on the thread that resolves it. A
    /// callback that panics is logged, and the other callbacks still run.
    pub fn add_done_callback(&self, callback: impl FnOnce(&Future<T>) + Send + 'static) {
        let mut slot = self.cell.shared.lock();
        if self.cell.shared.is_resolved() {
            drop(slot);
            run_callbacks(&self.cell, vec![Box::new(callback)]);
        } else {
            slot.callbacks.push(Box::new(callback));
        }
    }
}
