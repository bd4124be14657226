//! Tasks a worker process can run: [`TaskFn`] (a typed handle: a name and a function) and
//! [`Task`] (the same, type-erased, for the registry every process of a program fills in).
//!
//! A task's arguments and result travel encoded with postcard. One order runs one call, or a
//! chunk of calls (`map` with a `chunksize`): the arguments are then a `Vec<A>` and the result
//! a `Vec<Result<R, String>>`, one entry per call, a panic caught per call.

use std::fmt;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use conveyor_core::{Codec, Postcard};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::panic_text;

/// A task by name, with the function that runs it: what a [`ProcessPool`](crate::ProcessPool)
/// sends to its workers (the name and the encoded arguments) and what a
/// [`ThreadPool`](crate::ThreadPool) calls directly through [`Executor`](crate::Executor).
/// Make one with [`task!`](crate::task!).
///
/// ```
/// use conveyor_pool::{task, TaskFn};
///
/// fn square(x: u64) -> u64 {
///     x * x
/// }
/// const SQUARE: TaskFn<u64, u64> = task!(square);
/// assert_eq!(SQUARE.name(), "square");
/// assert_eq!(SQUARE.call(7), 49);
/// ```
pub struct TaskFn<A, R> {
    name: &'static str,
    f: fn(A) -> R,
    _types: PhantomData<fn(A) -> R>,
}

impl<A, R> Clone for TaskFn<A, R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<A, R> Copy for TaskFn<A, R> {}

impl<A, R> fmt::Debug for TaskFn<A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskFn").field("name", &self.name).finish()
    }
}

impl<A, R> TaskFn<A, R> {
    /// The task `name`, run by `f`. A task takes one argument: a tuple for several, `()` for
    /// none.
    pub const fn new(name: &'static str, f: fn(A) -> R) -> Self {
        TaskFn {
            name,
            f,
            _types: PhantomData,
        }
    }

    /// The name workers know the task by.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Runs the task here, on this thread.
    pub fn call(&self, args: A) -> R {
        (self.f)(args)
    }
}

/// A [`TaskFn`] named after its function: `task!(square)` is `TaskFn::new("square", square)`;
/// `task!("name" => path::to::f)` gives another name.
///
/// ```
/// fn double(n: u32) -> u32 {
///     n * 2
/// }
/// let t = conveyor_pool::task!(double);
/// assert_eq!((t.name(), t.call(4)), ("double", 8));
/// let u = conveyor_pool::task!("twice" => double);
/// assert_eq!(u.name(), "twice");
/// ```
#[macro_export]
macro_rules! task {
    ($name:literal => $f:expr) => {
        $crate::TaskFn::new($name, $f)
    };
    ($f:path) => {
        $crate::TaskFn::new(stringify!($f), $f)
    };
}

/// Why a worker could not produce a task's result; travels back to the pool.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[doc(hidden)]
pub enum Failure {
    Panicked(String),
    BadArgs(String),
    UnknownTask(String),
    Encode(String),
}

type Run = dyn Fn(bool, &[u8]) -> Result<Vec<u8>, Failure> + Send + Sync;

/// A task registered for worker processes: a [`TaskFn`] with its types erased. Made from one
/// with `.into()`; register tasks with [`init`](crate::init) or
/// [`init_test!`](crate::init_test!).
#[derive(Clone)]
pub struct Task {
    name: &'static str,
    run: Arc<Run>,
}

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task").field("name", &self.name).finish()
    }
}

impl Task {
    /// The task's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Runs one call (`chunk == false`) or a chunk of calls on encoded arguments.
    pub(crate) fn run(&self, chunk: bool, args: &[u8]) -> Result<Vec<u8>, Failure> {
        (self.run)(chunk, args)
    }
}

fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Failure> {
    let mut out = Vec::new();
    Postcard
        .encode(value, &mut out)
        .map_err(|e| Failure::Encode(e.to_string()))?;
    Ok(out)
}

impl<A, R> From<TaskFn<A, R>> for Task
where
    A: DeserializeOwned + 'static,
    R: Serialize + 'static,
{
    fn from(t: TaskFn<A, R>) -> Task {
        let f = t.f;
        let run = move |chunk: bool, bytes: &[u8]| -> Result<Vec<u8>, Failure> {
            let call = |a: A| catch_unwind(AssertUnwindSafe(|| f(a))).map_err(|p| panic_text(&*p));
            if chunk {
                let args: Vec<A> = Postcard
                    .decode(bytes)
                    .map_err(|e| Failure::BadArgs(e.to_string()))?;
                let results: Vec<Result<R, String>> = args.into_iter().map(call).collect();
                encode(&results)
            } else {
                let a: A = Postcard
                    .decode(bytes)
                    .map_err(|e| Failure::BadArgs(e.to_string()))?;
                encode(&call(a).map_err(Failure::Panicked)?)
            }
        };
        Task {
            name: t.name,
            run: Arc::new(run),
        }
    }
}

static REGISTRY: Mutex<Vec<Task>> = Mutex::new(Vec::new());

/// Adds tasks to this process's registry (a name registered twice keeps its first function).
pub(crate) fn register(tasks: &[Task]) {
    let mut reg = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
    for t in tasks {
        if !reg.iter().any(|r| r.name == t.name) {
            reg.push(t.clone());
        }
    }
}

/// The task registered as `name`.
pub(crate) fn lookup(name: &str) -> Option<Task> {
    REGISTRY
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .find(|t| t.name == name)
        .cloned()
}
