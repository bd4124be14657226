//! [`as_completed`] and [`wait`]: waiting on many futures at once, as Python's
//! `concurrent.futures.as_completed` and `concurrent.futures.wait`.
//!
//! Both install a done callback on every future that sends the future's index down one
//! channel, so the waiting thread sleeps on that channel alone and wakes once per future that
//! ends, whichever pool (threads or processes) resolves it.

use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use crate::error::TaskError;
use crate::future::Future;

/// When [`wait`] returns (Python's `FIRST_COMPLETED`, `FIRST_EXCEPTION`, `ALL_COMPLETED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnWhen {
    /// As soon as any future is done (finished or cancelled).
    FirstCompleted,
    /// As soon as any future fails (a panic, a dead worker), or when all are done.
    /// Cancellation is not a failure, as in Python.
    FirstException,
    /// When every future is done.
    AllCompleted,
}

/// What [`wait`] found: the indices (into the slice given) of the futures that are done and
/// of those that are not, each in increasing order (Python returns two sets of futures).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waited {
    /// The futures that are done.
    pub done: Vec<usize>,
    /// The futures that are not done yet (all of them done: empty).
    pub not_done: Vec<usize>,
}

fn watch<T>(futures: &[Future<T>]) -> Receiver<usize> {
    let (tx, rx) = mpsc::channel();
    for (i, f) in futures.iter().enumerate() {
        let tx = tx.clone();
        f.add_done_callback(move |_| {
            // the waiter may have gone (it timed out): nothing to tell
            let _ = tx.send(i);
        });
    }
    rx
}

fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
}

/// Receives the next index, waiting at most until `deadline`; `None` once it has passed.
fn next_before(rx: &Receiver<usize>, deadline: Option<Instant>) -> Option<usize> {
    match deadline {
        None => rx.recv().ok(),
        Some(d) => {
            let now = Instant::now();
            if now >= d {
                return rx.try_recv().ok();
            }
            rx.recv_timeout(d - now).ok()
        }
    }
}

/// Waits for the futures until `when` holds, or `timeout` passes (`None`: no limit), and
/// says which are done (Python's `concurrent.futures.wait`).
///
/// ```
/// use conveyor_pool::{wait, ReturnWhen, ThreadPool};
///
/// let pool = ThreadPool::new(2);
/// let futures: Vec<_> = (0..4u64).map(|i| pool.submit(move || i * i).unwrap()).collect();
/// let waited = wait(&futures, ReturnWhen::AllCompleted, None);
/// assert_eq!(waited.done, vec![0, 1, 2, 3]);
/// assert!(waited.not_done.is_empty());
/// ```
pub fn wait<T>(futures: &[Future<T>], when: ReturnWhen, timeout: Option<Duration>) -> Waited {
    let deadline = deadline(timeout);
    let holds = |futures: &[Future<T>]| -> bool {
        match when {
            ReturnWhen::FirstCompleted => futures.is_empty() || futures.iter().any(Future::done),
            ReturnWhen::AllCompleted => futures.iter().all(Future::done),
            ReturnWhen::FirstException => {
                let mut all = true;
                for f in futures {
                    match f.failed_now() {
                        Some(true) => return true,
                        Some(false) => {}
                        None => all = false,
                    }
                }
                all
            }
        }
    };
    if !holds(futures) {
        let rx = watch(futures);
        while !holds(futures) {
            if next_before(&rx, deadline).is_none() {
                break;
            }
        }
    }
    let (done, not_done) = (0..futures.len()).partition(|&i| futures[i].done());
    Waited { done, not_done }
}

/// The futures in the order they finish (Python's `concurrent.futures.as_completed`): those
/// already done first, then each as it ends. Waits without a limit; see
/// [`as_completed_timeout`].
///
/// ```
/// use conveyor_pool::{as_completed, ThreadPool};
///
/// let pool = ThreadPool::new(2);
/// let futures: Vec<_> = (1..=3u64).map(|i| pool.submit(move || i * 10).unwrap()).collect();
/// let mut total = 0;
/// for f in as_completed(&futures) {
///     total += f.result()?;
/// }
/// assert_eq!(total, 60);
/// # Ok::<(), conveyor_pool::TaskError>(())
/// ```
pub fn as_completed<T>(futures: &[Future<T>]) -> AsCompleted<'_, T> {
    AsCompleted {
        futures,
        rx: watch(futures),
        left: futures.len(),
        deadline: None,
        timed_out: false,
    }
}

/// [`as_completed`] with a limit for the whole iteration (Python's `as_completed(fs,
/// timeout)`): once `timeout` has passed with futures left, the iterator yields one
/// `Err(`[`TaskError::Timeout`]`)` and ends.
pub fn as_completed_timeout<T>(
    futures: &[Future<T>],
    timeout: Duration,
) -> AsCompletedTimeout<'_, T> {
    AsCompletedTimeout {
        inner: AsCompleted {
            futures,
            rx: watch(futures),
            left: futures.len(),
            deadline: Some(Instant::now().checked_add(timeout)),
            timed_out: false,
        },
        timeout,
    }
}

/// The iterator of [`as_completed`].
#[derive(Debug)]
pub struct AsCompleted<'a, T> {
    futures: &'a [Future<T>],
    rx: Receiver<usize>,
    left: usize,
    /// `Some(None)`: a limit too far to represent, that is none.
    deadline: Option<Option<Instant>>,
    timed_out: bool,
}

impl<'a, T> Iterator for AsCompleted<'a, T> {
    type Item = &'a Future<T>;

    fn next(&mut self) -> Option<&'a Future<T>> {
        if self.left == 0 || self.timed_out {
            return None;
        }
        let got = match self.deadline {
            None | Some(None) => self.rx.recv().ok(),
            Some(Some(d)) => next_before(&self.rx, Some(d)),
        };
        match got {
            Some(i) => {
                self.left -= 1;
                Some(&self.futures[i])
            }
            None => {
                self.timed_out = true;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left))
    }
}

/// The iterator of [`as_completed_timeout`].
#[derive(Debug)]
pub struct AsCompletedTimeout<'a, T> {
    inner: AsCompleted<'a, T>,
    timeout: Duration,
}

impl<'a, T> Iterator for AsCompletedTimeout<'a, T> {
    type Item = Result<&'a Future<T>, TaskError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.inner.timed_out {
            return None;
        }
        match self.inner.next() {
            Some(f) => Some(Ok(f)),
            None if self.inner.timed_out => Some(Err(TaskError::Timeout(self.timeout))),
            None => None,
        }
    }
}
