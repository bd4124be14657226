//! [`ThreadPool`]: Python's `concurrent.futures.ThreadPoolExecutor`.
//!
//! A fixed set of worker threads takes jobs from one unbounded queue ([`crate::jobs`]), so
//! `submit` never blocks. A job is the task's future and closure in one allocation, told its
//! fate: run the task, or resolve its future as cancelled or broken without running it.
//! Shutting down closes the queue: submits fail from then on, and the workers drain what is
//! left (or, with `cancel_futures`, the caller drains it first, cancelling each job), then end.
//!
//! The queue is a lock-free FIFO with its own sleep and wake-up for idle workers, not a
//! channel: conveyor-thread's unbounded `Queue` is a deque under a mutex, which the submitters
//! and the idle workers contended for, and crossbeam-channel's list wakes a sleeping receiver on
//! every send, a system call per task for the submitter. Idle workers look for jobs for a while
//! before they sleep, as rayon's do, so that the next task starts without a wake-up.

use std::collections::VecDeque;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

use crate::error::{panic_text, SubmitError, TaskError};
use crate::future::{Cell, Future, Promise, Shared as FutureState};
use crate::jobs::Jobs;

/// What a worker does with a job.
enum Fate {
    Run,
    Cancel,
    Fail(TaskError),
}

/// A queued task: its future's state and its closure in one allocation, told its fate once.
type Job = Arc<dyn Runnable>;

/// A task a worker can be given: run it, or resolve its future without running it.
trait Runnable: Send + Sync {
    fn fate(self: Arc<Self>, fate: Fate);
}

/// The closure of a submitted task, taken out (and dropped) by the one call of
/// [`Runnable::fate`]; the lock is never contended (only the queued handle reaches it).
type Closure<F> = Mutex<Option<F>>;

impl<T, F> Runnable for Cell<T, Closure<F>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    fn fate(self: Arc<Self>, fate: Fate) {
        let f = self.job.lock().unwrap_or_else(|p| p.into_inner()).take();
        let promise = Promise::of(self);
        match fate {
            Fate::Run => {
                if let Some(f) = f {
                    if promise.set_running() {
                        let outcome = catch_unwind(AssertUnwindSafe(f))
                            .map_err(|payload| TaskError::Panicked(panic_text(&*payload)));
                        promise.complete(outcome);
                    }
                }
            }
            Fate::Cancel => {
                drop(f);
                promise.cancel();
            }
            Fate::Fail(e) => {
                drop(f);
                promise.complete(Err(e));
            }
        }
    }
}

type Initializer = Arc<dyn Fn() + Send + Sync>;

struct Shared {
    queue: Jobs<Job>,
    shut_down: AtomicBool,
    /// Why the pool is broken (an initializer panicked), once it is.
    broken: OnceLock<String>,
}

/// A pool of worker threads that run submitted closures (Python's
/// `concurrent.futures.ThreadPoolExecutor`).
///
/// [`submit`](ThreadPool::submit) never blocks: it queues the task and returns its
/// [`Future`]. The workers are started with the pool and live as long as it does, so no
/// thread is created per task. A task that panics fails only its own future, with the panic
/// message; the worker goes on. Dropping the pool is Python's leaving the `with` block: it
/// shuts down and waits for the tasks already submitted.
///
/// ```
/// use conveyor_pool::ThreadPool;
///
/// let pool = ThreadPool::new(4);
/// let f = pool.submit(|| "hello".to_uppercase())?;
/// let squares: Vec<u64> = pool.map(|x: u64| x * x, 1..=5).collect::<Result<_, _>>()?;
/// assert_eq!(f.result()?, "HELLO");
/// assert_eq!(squares, [1, 4, 9, 16, 25]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ThreadPool {
    shared: Arc<Shared>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    size: usize,
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPool")
            .field("workers", &self.size)
            .field("shut_down", &self.shared.shut_down.load(Ordering::Relaxed))
            .field("broken", &self.shared.broken.get())
            .finish()
    }
}

/// Builds a [`ThreadPool`]: the number of workers, their names, an initializer.
///
/// ```
/// use conveyor_pool::ThreadPool;
///
/// let pool = ThreadPool::builder()
///     .workers(2)
///     .thread_name_prefix("fetch")
///     .initializer(|| println!("worker {:?} ready", std::thread::current().name()))
///     .build()?;
/// let name = pool.submit(|| std::thread::current().name().map(String::from))?.result()?;
/// assert!(name.unwrap().starts_with("fetch-"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ThreadPoolBuilder {
    workers: Option<usize>,
    prefix: String,
    initializer: Option<Initializer>,
    stack_size: Option<usize>,
}

impl fmt::Debug for ThreadPoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPoolBuilder")
            .field("workers", &self.workers)
            .field("prefix", &self.prefix)
            .field("initializer", &self.initializer.is_some())
            .finish()
    }
}

/// The default number of workers: `std::thread::available_parallelism`, or 1 if unknown.
pub(crate) fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl ThreadPoolBuilder {
    /// The number of worker threads (Python's `max_workers`); at least 1. Default:
    /// [`std::thread::available_parallelism`].
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = Some(n.max(1));
        self
    }

    /// The workers' names are `<prefix>-<n>` (Python's `thread_name_prefix`). Default:
    /// `ThreadPool`.
    pub fn thread_name_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Runs `f` at the start of every worker thread (Python's `initializer`). If it panics,
    /// the pool is broken, as in Python: tasks not yet started fail with
    /// [`TaskError::Broken`], and later submits with [`SubmitError::Broken`].
    pub fn initializer(mut self, f: impl Fn() + Send + Sync + 'static) -> Self {
        self.initializer = Some(Arc::new(f));
        self
    }

    /// The workers' stack size in bytes. Default: the standard library's.
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// Starts the workers. Fails only if the operating system refuses a thread.
    pub fn build(self) -> std::io::Result<ThreadPool> {
        let size = self.workers.unwrap_or_else(default_workers);
        let shared = Arc::new(Shared {
            queue: Jobs::new(),
            shut_down: AtomicBool::new(false),
            broken: OnceLock::new(),
        });
        let mut workers = Vec::with_capacity(size);
        for i in 0..size {
            let mine = shared.clone();
            let init = self.initializer.clone();
            let mut b = std::thread::Builder::new().name(format!("{}-{i}", self.prefix));
            if let Some(s) = self.stack_size {
                b = b.stack_size(s);
            }
            match b.spawn(move || worker(&mine, init)) {
                Ok(h) => workers.push(h),
                Err(e) => {
                    shared.queue.close();
                    for h in workers {
                        let _ = h.join();
                    }
                    return Err(e);
                }
            }
        }
        Ok(ThreadPool {
            shared,
            workers: Mutex::new(workers),
            size,
        })
    }
}

fn worker(shared: &Shared, init: Option<Initializer>) {
    if let Some(init) = init {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| init())) {
            let why = format!(
                "the initializer of thread {:?} panicked: {}",
                std::thread::current().name().unwrap_or("?"),
                panic_text(&*payload)
            );
            tracing::error!(%why, "thread pool broken");
            let why = shared.broken.get_or_init(|| why).clone();
            // refuse later submits, then fail every task that has not started
            shared.queue.close();
            while let Ok(job) = shared.queue.try_get() {
                job.fate(Fate::Fail(TaskError::Broken(why.clone())));
            }
            return;
        }
    }
    while let Some(job) = shared.queue.get() {
        job.fate(Fate::Run);
    }
}

impl ThreadPool {
    /// A pool of `workers` threads (at least 1), named `ThreadPool-<n>`.
    ///
    /// # Panics
    ///
    /// If the operating system refuses to start a thread; use [`ThreadPool::builder`] to get
    /// that as an error.
    pub fn new(workers: usize) -> ThreadPool {
        ThreadPool::builder()
            .workers(workers)
            .build()
            .expect("the operating system refused to start a worker thread")
    }

    /// A builder: workers, thread names, an initializer.
    pub fn builder() -> ThreadPoolBuilder {
        ThreadPoolBuilder {
            workers: None,
            prefix: "ThreadPool".to_string(),
            initializer: None,
            stack_size: None,
        }
    }

    /// The number of worker threads.
    pub fn workers(&self) -> usize {
        self.size
    }

    /// Queues `f` and returns its future at once (Python's `submit(fn)`; arguments are what
    /// the closure captures). Fails with [`SubmitError::Shutdown`] after
    /// [`shutdown`](ThreadPool::shutdown), and [`SubmitError::Broken`] once an initializer
    /// failed.
    pub fn submit<T, F>(&self, f: F) -> Result<Future<T>, SubmitError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let cell = Arc::new(Cell {
            shared: FutureState::new(),
            job: Mutex::new(Some(f)),
        });
        let future = Future::of(cell.clone());
        let job: Job = cell;
        match self.shared.queue.put(job) {
            Ok(()) => Ok(future),
            Err(_) => Err(match self.shared.broken.get() {
                Some(why) => SubmitError::Broken(why.clone()),
                None => SubmitError::Shutdown,
            }),
        }
    }

    /// Runs `f` on every item and yields the results in the order of the items (Python's
    /// `map`), lazily: at most twice as many tasks as there are workers are in flight, so an
    /// endless iterator works and a huge one is never buffered. Each result is the task's
    /// value or why there is none (a panic fails only its own item).
    ///
    /// ```
    /// use conveyor_pool::ThreadPool;
    ///
    /// let pool = ThreadPool::new(2);
    /// // an endless input: only what is asked for runs
    /// let first: Vec<u64> = pool.map(|n: u64| n * 3, 0..).take(4).map(Result::unwrap).collect();
    /// assert_eq!(first, [0, 3, 6, 9]);
    /// ```
    pub fn map<A, T, F, I>(&self, f: F, items: I) -> Map<'_, I::IntoIter, F, T>
    where
        I: IntoIterator<Item = A>,
        F: Fn(A) -> T + Send + Sync + 'static,
        A: Send + 'static,
        T: Send + 'static,
    {
        self.map_buffered(f, items, 2 * self.size)
    }

    /// [`map`](ThreadPool::map) with at most `in_flight` tasks submitted ahead (Python 3.14's
    /// `buffersize`); at least 1.
    pub fn map_buffered<A, T, F, I>(
        &self,
        f: F,
        items: I,
        in_flight: usize,
    ) -> Map<'_, I::IntoIter, F, T>
    where
        I: IntoIterator<Item = A>,
        F: Fn(A) -> T + Send + Sync + 'static,
        A: Send + 'static,
        T: Send + 'static,
    {
        Map {
            pool: self,
            f: Arc::new(f),
            items: Some(items.into_iter()),
            window: VecDeque::new(),
            limit: in_flight.max(1),
        }
    }

    /// Shuts the pool down (Python's `shutdown(wait, cancel_futures)`): later submits fail with
    /// [`SubmitError::Shutdown`]. With `cancel_futures`, the tasks that have not started are
    /// cancelled (their futures say [`TaskError::Cancelled`]); otherwise they still run. With
    /// `wait`, returns once every worker has ended, so every task not cancelled has finished.
    /// Calling it again is harmless; a task that shuts down its own pool does not wait for its
    /// own thread.
    pub fn shutdown(&self, wait: bool, cancel_futures: bool) {
        self.shared.shut_down.store(true, Ordering::Release);
        // Closing refuses every later put: no submit can slip in behind the drain below.
        self.shared.queue.close();
        if cancel_futures {
            while let Ok(job) = self.shared.queue.try_get() {
                job.fate(Fate::Cancel);
            }
        }
        if wait {
            let handles =
                std::mem::take(&mut *self.workers.lock().unwrap_or_else(|p| p.into_inner()));
            let me = std::thread::current().id();
            let mut own = Vec::new();
            for h in handles {
                if h.thread().id() == me {
                    own.push(h);
                } else {
                    let _ = h.join();
                }
            }
            // a worker that shut its own pool down is left to end by itself
            drop(own);
        }
    }

    /// Whether [`shutdown`](ThreadPool::shutdown) was called.
    pub fn is_shut_down(&self) -> bool {
        self.shared.shut_down.load(Ordering::Acquire)
    }

    /// Why the pool is broken (an initializer panicked), if it is.
    pub fn broken(&self) -> Option<&str> {
        self.shared.broken.get().map(String::as_str)
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.shutdown(true, false);
    }
}

/// The iterator of [`ThreadPool::map`]: results in input order, a bounded window in flight.
pub struct Map<'a, I, F, T> {
    pool: &'a ThreadPool,
    f: Arc<F>,
    /// `None` once exhausted or once a submit failed.
    items: Option<I>,
    window: VecDeque<Result<Future<T>, SubmitError>>,
    limit: usize,
}

impl<I, F, T> fmt::Debug for Map<'_, I, F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Map")
            .field("in_flight", &self.window.len())
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl<I, F, T> Drop for Map<'_, I, F, T> {
    /// Cancels the tasks submitted ahead that have not started (Python cancels a dropped
    /// `map` iterator's remaining futures).
    fn drop(&mut self) {
        for f in self.window.iter().flatten() {
            f.cancel();
        }
    }
}

impl<A, T, F, I> Iterator for Map<'_, I, F, T>
where
    I: Iterator<Item = A>,
    F: Fn(A) -> T + Send + Sync + 'static,
    A: Send + 'static,
    T: Send + 'static,
{
    type Item = Result<T, TaskError>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.window.len() < self.limit {
            let Some(item) = self.items.as_mut().and_then(Iterator::next) else {
                self.items = None;
                break;
            };
            let f = self.f.clone();
            let submitted = self.pool.submit(move || f(item));
            if submitted.is_err() {
                self.items = None;
            }
            self.window.push_back(submitted);
            if self.items.is_none() {
                break;
            }
        }
        let next = self.window.pop_front()?;
        Some(next.map_err(TaskError::from).and_then(|f| f.result()))
    }
}
