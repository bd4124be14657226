//! Why a task could not be submitted ([`SubmitError`]) and why a future holds no value
//! ([`TaskError`]).

use std::time::Duration;

/// Why [`submit`](crate::ThreadPool::submit) (or a `map`) refused a task. The task did not run.
///
/// Python raises `RuntimeError('cannot schedule new futures after shutdown')` and
/// `BrokenThreadPool` / `BrokenProcessPool` for the first two.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// The pool was shut down: no new task is accepted.
    #[error("the pool has been shut down and accepts no new tasks; build a new pool")]
    Shutdown,

    /// The pool is broken: a worker's initializer failed (as Python's `BrokenThreadPool` and
    /// `BrokenProcessPool`); the message says how.
    #[error("the pool is broken and accepts no new tasks: {0}")]
    Broken(String),

    /// No task of this name is registered in this process (a [`ProcessPool`](crate::ProcessPool)
    /// runs only tasks registered with [`init`](crate::init) or [`init_test!`](crate::init_test!)).
    #[error(
        "no task named `{name}` is registered; register it with \
         `conveyor_pool::init(&[task!({name}).into()], ...)` in main, or \
         `conveyor_pool::init_test!({name})` in a test"
    )]
    UnknownTask {
        /// The name asked for.
        name: String,
    },

    /// The task's arguments could not be encoded for a worker process.
    #[error("the arguments of task `{task}` could not be encoded: {message}")]
    Encode {
        /// The task.
        task: String,
        /// What the codec said.
        message: String,
    },

    /// A worker process could not be started.
    #[error("a worker process could not be started: {0}")]
    Start(String),
}

/// Why a [`Future`](crate::Future) gave no value.
///
/// Python raises the task's own exception, `CancelledError`, `TimeoutError`, or
/// `BrokenProcessPool`; here each is a variant, and a panic stands for an exception.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    /// The task panicked; this is the panic message. Only this task's future fails: the
    /// pool keeps its workers.
    #[error("the task panicked: {0}")]
    Panicked(String),

    /// The task was cancelled before it started ([`Future::cancel`](crate::Future::cancel), or
    /// `shutdown` with `cancel_futures`).
    #[error("the task was cancelled before it started")]
    Cancelled,

    /// The task had not finished when the timeout passed; it goes on, and the future can be
    /// asked again.
    #[error("the task had not finished within {0:?}; ask again later or cancel it")]
    Timeout(Duration),

    /// The value has already been taken by an earlier call to `result` (a Rust value has one
    /// owner; Python hands the same object out each time).
    #[error("the result was already taken by an earlier call to result()")]
    Taken,

    /// The worker process running the task died before it finished (SIGKILL, abort, out of
    /// memory, an exit from inside the task). Only this task fails: the pool starts a
    /// replacement worker and every other task goes on.
    #[error(
        "worker process {worker} (pid {pid}) ended while running this task: {status}; the pool \
         started a replacement, the other tasks go on"
    )]
    WorkerDied {
        /// The worker's name (`<pool>-worker-<n>`).
        worker: String,
        /// Its process id.
        pid: u32,
        /// How it ended (`killed by signal 9 (SIGKILL)`, ...).
        status: String,
    },

    /// The pool is broken (a worker's initializer failed) and could not run the task.
    #[error("the pool is broken and could not run this task: {0}")]
    Broken(String),

    /// The task could not be submitted (the pool was shut down meanwhile, for example).
    #[error("the task could not be submitted: {0}")]
    Submit(#[from] SubmitError),

    /// The task's arguments or result could not be decoded between the processes (a type
    /// that differs between the submitter and the registered task).
    #[error("task `{task}`: {message}")]
    Codec {
        /// The task.
        task: String,
        /// What went wrong.
        message: String,
    },

    /// The pool was shut down before the task could run (a worker process was lost and the
    /// pool, shutting down, started no replacement).
    #[error("the pool shut down before the task could run")]
    PoolShutDown,
}

impl TaskError {
    /// Whether the task ran and failed: it panicked or its worker died (what Python's
    /// `FIRST_EXCEPTION` waits for). Cancellation is not a failure, as in Python.
    pub fn is_failure(&self) -> bool {
        !matches!(
            self,
            TaskError::Cancelled | TaskError::Timeout(_) | TaskError::Taken
        )
    }
}

/// The text of a panic's payload.
pub(crate) fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a payload that is not a string".to_string()
    }
}
