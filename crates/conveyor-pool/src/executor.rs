//! [`Executor`]: one trait over [`ThreadPool`] and [`ProcessPool`], so that a program moves
//! from threads to processes by changing the line that builds the pool.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{SubmitError, TaskError};
use crate::future::Future;
use crate::process::ProcessPool;
use crate::task::TaskFn;
use crate::thread::ThreadPool;

/// What every pool does with a registered task ([`TaskFn`]): a [`ThreadPool`] calls it on a
/// worker thread, a [`ProcessPool`] sends it to a worker process. Code written against the
/// trait runs on either, as code written against `Channel` runs on any queue.
///
/// ```
/// use conveyor_pool::{task, Executor, ThreadPool};
///
/// fn cube(x: u64) -> u64 {
///     x * x * x
/// }
///
/// /// Sums the cubes on any pool.
/// fn sum_of_cubes(pool: &impl Executor, n: u64) -> u64 {
///     pool.map_task(task!(cube), 1..=n).map(Result::unwrap).sum()
/// }
///
/// let pool = ThreadPool::new(2); // or: ProcessPool::new(2)?
/// assert_eq!(sum_of_cubes(&pool, 3), 36);
/// assert_eq!(pool.submit_task(task!(cube), 4)?.result()?, 64);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Executor {
    /// Queues `task(args)` and returns its future at once (Python's `submit`).
    fn submit_task<A, R>(&self, task: TaskFn<A, R>, args: A) -> Result<Future<R>, SubmitError>
    where
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static;

    /// Runs `task` on every item, results in input order, lazily (Python's `map`).
    fn map_task<'a, A, R, I>(
        &'a self,
        task: TaskFn<A, R>,
        items: I,
    ) -> impl Iterator<Item = Result<R, TaskError>> + 'a
    where
        I: IntoIterator<Item = A>,
        I::IntoIter: 'a,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static;

    /// Python's `shutdown(wait, cancel_futures)`.
    fn shutdown(&self, wait: bool, cancel_futures: bool);

    /// The number of workers.
    fn workers(&self) -> usize;
}

impl Executor for ThreadPool {
    fn submit_task<A, R>(&self, task: TaskFn<A, R>, args: A) -> Result<Future<R>, SubmitError>
    where
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.submit(move || task.call(args))
    }

    fn map_task<'a, A, R, I>(
        &'a self,
        task: TaskFn<A, R>,
        items: I,
    ) -> impl Iterator<Item = Result<R, TaskError>> + 'a
    where
        I: IntoIterator<Item = A>,
        I::IntoIter: 'a,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.map(move |a| task.call(a), items)
    }

    fn shutdown(&self, wait: bool, cancel_futures: bool) {
        ThreadPool::shutdown(self, wait, cancel_futures)
    }

    fn workers(&self) -> usize {
        ThreadPool::workers(self)
    }
}

impl Executor for ProcessPool {
    fn submit_task<A, R>(&self, task: TaskFn<A, R>, args: A) -> Result<Future<R>, SubmitError>
    where
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.submit(task, args)
    }

    fn map_task<'a, A, R, I>(
        &'a self,
        task: TaskFn<A, R>,
        items: I,
    ) -> impl Iterator<Item = Result<R, TaskError>> + 'a
    where
        I: IntoIterator<Item = A>,
        I::IntoIter: 'a,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.map(task, items)
    }

    fn shutdown(&self, wait: bool, cancel_futures: bool) {
        ProcessPool::shutdown(self, wait, cancel_futures)
    }

    fn workers(&self) -> usize {
        ProcessPool::workers(self)
    }
}
