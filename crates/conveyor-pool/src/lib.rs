//! Pools of workers: Python's `concurrent.futures` executors ([`ThreadPool`],
//! [`ProcessPool`]) and `multiprocessing.Pool` (the `map`, `imap`, `imap_unordered` and
//! `starmap` of [`ProcessPool`]).
//!
//! TODO-DOCS

#![warn(missing_docs)]

mod error;
mod executor;
mod future;
mod process;
mod task;
mod thread;
mod wait;

pub use error::{SubmitError, TaskError};
pub use executor::Executor;
pub use future::Future;
pub use process::{PoolMap, ProcessPool, ProcessPoolBuilder, Unordered, PREFETCH, WORKER_ENTRY};
pub use task::{Task, TaskFn};
pub use thread::{Map, ThreadPool, ThreadPoolBuilder};
pub use wait::{
    as_completed, as_completed_timeout, wait, AsCompleted, AsCompletedTimeout, ReturnWhen, Waited,
};

#[doc(hidden)]
pub use conveyor_process as __process;
#[doc(hidden)]
pub use process::worker_main as __worker_main;

/// The conveyor-process entry point of a [`ProcessPool`] worker, for a program that calls
/// `conveyor_process::init` itself: `init(&[conveyor_pool::worker_entry(), entry!(other)])`
/// after [`register`].
pub fn worker_entry() -> conveyor_process::Entry {
    conveyor_process::Entry::new(WORKER_ENTRY, process::worker_main)
}

/// Registers tasks in this process, so that its [`ProcessPool`] workers can run them. Call it
/// before `conveyor_process::init` (which, in a worker, runs the worker at once); [`init`]
/// does both.
pub fn register(tasks: &[Task]) {
    task::register(tasks);
}

/// Call first in `main`: registers `tasks` (and the pool's worker entry point with `entries`,
/// the program's own conveyor-process entry points) and then calls `conveyor_process::init`.
/// In a worker process it runs the worker and exits; in the parent it returns at once.
///
/// ```no_run
/// use conveyor_pool::{task, ProcessPool};
///
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     conveyor_pool::init(&[task!(square).into()], &[]);
///     let pool = ProcessPool::new(2)?;
///     assert_eq!(pool.submit(task!(square), 9)?.result()?, 81);
///     Ok(())
/// }
/// ```
pub fn init(tasks: &[Task], entries: &[conveyor_process::Entry]) {
    task::register(tasks);
    let mut all = entries.to_vec();
    all.push(worker_entry());
    conveyor_process::init(&all);
}

/// Call first in a `#[test]` that starts a [`ProcessPool`], with the tasks its workers run:
/// `init_test!(square, crash)`. It registers them and calls conveyor-process's `init_test!`
/// with the pool's worker entry point, so a worker (a re-executed copy of the test binary
/// running only this test) branches off here.
#[macro_export]
macro_rules! init_test {
    ($($f:path),* $(,)?) => {{
        $crate::register(&[$($crate::Task::from($crate::task!($f))),*]);
        $crate::__process::init_test!("conveyor-pool-worker" => $crate::__worker_main);
    }};
}
