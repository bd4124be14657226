//! Pools of workers: Python's `concurrent.futures` executors ([`ThreadPool`],
//! [`ProcessPool`]) and `multiprocessing.Pool` (the `map`, `imap`, `imap_unordered` and
//! `starmap` of [`ProcessPool`]).
//!
//! A pool keeps a fixed number of workers, so that no thread or process is created per task;
//! [`submit`](ThreadPool::submit) never blocks and returns a [`Future`] at once, which later
//! gives the task's value, or says why there is none ([`TaskError`]: a panic, a
//! cancellation, a worker process that died), and never hangs.
//!
//! # Which pool
//!
//! | you have                                                     | pick                      |
//! |--------------------------------------------------------------|---------------------------|
//! | closures over shared data, I/O waits, work that is cheap to hand over | [`ThreadPool`]   |
//! | CPU-bound work that must not share memory, code that may crash or leak, a task that must survive another's `abort` | [`ProcessPool`] |
//! | code that should run on either, chosen by one line           | the [`Executor`] trait    |
//!
//! A [`ThreadPool`] runs any `FnOnce() -> T + Send` closure; handing a task over costs well
//! under a microsecond. A [`ProcessPool`] runs *registered* tasks ([`task!`], [`init`]): their
//! arguments and results are encoded (serde, postcard) and travel over `conveyor-shm`
//! queues to worker processes started with `conveyor-process`, so a task costs a few
//! microseconds more, and a crash in it (SIGKILL, `abort`, out of memory) costs that task
//! alone: its future fails with [`TaskError::WorkerDied`] naming the worker, the pool starts a
//! replacement, and every other task completes. Python's `ProcessPoolExecutor` marks the whole
//! pool broken instead.
//!
//! # Threads
//!
//! ```
//! use conveyor_pool::{as_completed, ThreadPool};
//!
//! let pool = ThreadPool::new(4);
//! let futures: Vec<_> = (1..=4u64)
//!     .map(|n| pool.submit(move || (1..=n).product::<u64>()).unwrap())
//!     .collect();
//! let mut total = 0;
//! for f in as_completed(&futures) {
//!     total += f.result()?;
//! }
//! assert_eq!(total, 1 + 2 + 6 + 24);
//! // map: results in input order, lazily
//! let lengths: Vec<usize> = pool
//!     .map(|s: &str| s.len(), ["a", "bb", "ccc"])
//!     .collect::<Result<_, _>>()?;
//! assert_eq!(lengths, [1, 2, 3]);
//! # Ok::<(), conveyor_pool::TaskError>(())
//! ```
//!
//! # Processes
//!
//! A worker process is a fresh start of the same program, so `main` registers the tasks and
//! calls [`init`] first (in a test: [`init_test!`] as the test's first line):
//!
//! ```
//! use conveyor_pool::{task, ProcessPool, TaskError};
//!
//! fn collatz_steps(mut n: u64) -> u32 {
//!     let mut steps = 0;
//!     while n != 1 {
//!         n = if n % 2 == 0 { n / 2 } else { 3 * n + 1 };
//!         steps += 1;
//!     }
//!     steps
//! }
//!
//! fn crash(_: ()) -> u32 {
//!     std::process::abort()
//! }
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let _children = conveyor_pool::init(&[task!(collatz_steps).into(), task!(crash).into()], &[]);
//!     let pool = ProcessPool::new(2)?;
//!     let steps: Vec<u32> = pool.map(task!(collatz_steps), 1..=10u64).collect::<Result<_, _>>()?;
//!     assert_eq!(steps, [0, 1, 7, 2, 5, 8, 16, 3, 19, 6]);
//!     // a task that kills its worker fails alone; the pool goes on
//!     let crashed = pool.submit(task!(crash), ())?;
//!     let after = pool.submit(task!(collatz_steps), 27)?;
//!     assert!(matches!(crashed.result(), Err(TaskError::WorkerDied { .. })));
//!     assert_eq!(after.result()?, 111);
//!     Ok(())
//! }
//! ```
//!
//! # From Python
//!
//! | Python                                             | conveyor-pool                              |
//! |----------------------------------------------------|--------------------------------------------|
//! | `ThreadPoolExecutor(max_workers, thread_name_prefix, initializer)` | [`ThreadPool::new`], [`ThreadPool::builder`] |
//! | `ProcessPoolExecutor(max_workers, initializer, initargs, max_tasks_per_child)`, `Pool(processes, initializer, initargs, maxtasksperchild)` | [`ProcessPool::new`], [`ProcessPool::builder`] |
//! | `ex.submit(fn, *args)`                              | [`ThreadPool::submit`]`(closure)`, [`ProcessPool::submit`]`(task!(f), args)` |
//! | `f.result()`, `f.result(timeout)`                   | [`Future::result`], [`Future::result_timeout`] |
//! | `f.exception()`                                    | [`Future::exception`]                      |
//! | `f.done()`, `f.running()`, `f.cancelled()`, `f.cancel()` | [`Future::done`], [`Future::running`], [`Future::cancelled`], [`Future::cancel`] |
//! | `f.add_done_callback(fn)`                          | [`Future::add_done_callback`]              |
//! | `ex.map(fn, items)`, `Pool.map(fn, items, chunksize)` | [`ThreadPool::map`], [`ProcessPool::map`], [`ProcessPool::map_chunked`] |
//! | `Pool.imap`, `Pool.imap_unordered`, `Pool.starmap` | [`ProcessPool::imap`], [`ProcessPool::imap_unordered`], [`ProcessPool::starmap`] |
//! | `as_completed(fs, timeout)`                        | [`as_completed`], [`as_completed_timeout`] |
//! | `wait(fs, timeout, FIRST_COMPLETED / FIRST_EXCEPTION / ALL_COMPLETED)` | [`wait`] with [`ReturnWhen`] |
//! | `ex.shutdown(wait, cancel_futures)`, leaving `with` | [`ThreadPool::shutdown`], dropping the pool |
//! | `CancelledError`, `TimeoutError`, an exception     | [`TaskError::Cancelled`], [`TaskError::Timeout`], [`TaskError::Panicked`] |
//! | `BrokenThreadPool`, `BrokenProcessPool`            | [`SubmitError::Broken`] / [`TaskError::Broken`] (initializer failed); a dead worker is [`TaskError::WorkerDied`] for its task only |
//! | `RuntimeError` (submit after shutdown)             | [`SubmitError::Shutdown`]                  |
//!
//! Differences on purpose: `map` is lazy (at most twice as many tasks as workers in flight,
//! Python 3.14's `buffersize`), so an endless iterator works; `result` moves the value out
//! (a second call says [`TaskError::Taken`]); [`wait`] answers indices into the slice; a
//! process task is a registered function, not any picklable callable.
//!
//! # Performance
//!
//! The harness runs the pools beside rayon and Python's executors
//! (`cargo xtask bench --filter pool,rayon`: `pool-submit-1`, `pool-submit-4`, `pool-map`);
//! `benches/pool.rs` measures a 2-worker `ProcessPool`'s start and shutdown (criterion). On
//! the project's 2-vCPU machine (2026-12-04, the full harness run in the README): `ThreadPool`
//! submit + result 1.27x rayon's `spawn` and 31.3x `ThreadPoolExecutor` with one submitter,
//! 1.24x and 35.1x with four; `ProcessPool::map` of 100 000 small tasks 2534x
//! `ProcessPoolExecutor.map` and 4.5x `multiprocessing.Pool.map`; start and shutdown of 2
//! workers 2.92 ms. The README has the table.

#![warn(missing_docs)]

mod error;
mod executor;
mod future;
mod jobs;
mod process;
mod sync;
mod task;
mod thread;
mod wait;

pub use error::{SubmitError, TaskError};
pub use executor::Executor;
pub use future::Future;
pub use process::{PoolMap, ProcessPool, ProcessPoolBuilder, Unordered, PREFETCH};
pub use task::{Task, TaskFn};
pub use thread::{Map, ThreadPool, ThreadPoolBuilder};
pub use wait::{
    as_completed, as_completed_timeout, wait, AsCompleted, AsCompletedTimeout, ReturnWhen, Waited,
};

#[doc(hidden)]
pub use conveyor_process as __process;
/// Registers tasks in this process, so that its [`ProcessPool`] workers can run them. Call it
/// before `conveyor_process::init` (which, in a worker, runs the worker at once); [`init`]
/// does both. The worker's own entry point needs no registering: the crate registers it at
/// link time, and `conveyor_process::init` finds it.
pub fn register(tasks: &[Task]) {
    task::register(tasks);
}

/// Call first in `main`: registers `tasks` and then calls `conveyor_process::init` with
/// `entries`, the program's own conveyor-process entry points (the pool's worker entry point
/// registers itself).
/// In a worker process it runs the worker and exits; in the parent it returns at once, with
/// conveyor-process's guard: keep it until `main` ends (`let _children = init(..)`), so that
/// the program's children are joined (and its daemons, the pools' workers among them,
/// terminated) when `main` ends, as Python does at exit.
///
/// ```
/// use conveyor_pool::{task, ProcessPool};
///
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let _children = conveyor_pool::init(&[task!(square).into()], &[]);
///     let pool = ProcessPool::new(2)?;
///     assert_eq!(pool.submit(task!(square), 9)?.result()?, 81);
///     Ok(())
/// }
/// ```
pub fn init(tasks: &[Task], entries: &[conveyor_process::Entry]) -> conveyor_process::InitGuard {
    task::register(tasks);
    conveyor_process::init(entries)
}

/// Call first in a `#[test]` that starts a [`ProcessPool`], with the tasks its workers run:
/// `init_test!(square, crash)`. It registers them and calls conveyor-process's `init_test!`,
/// so a worker (a re-executed copy of the test binary running only this test) branches off
/// here into the pool's worker entry point.
#[macro_export]
macro_rules! init_test {
    ($($f:path),* $(,)?) => {{
        $crate::register(&[$($crate::Task::from($crate::task!($f))),*]);
        $crate::__process::init_test!();
    }};
}
