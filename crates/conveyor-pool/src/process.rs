//! [`ProcessPool`]: Python's `concurrent.futures.ProcessPoolExecutor` and
//! `multiprocessing.Pool`, on worker processes started with `conveyor-process` and
//! `conveyor-shm` queues.
//!
//! # How it works
//!
//! Each worker *slot* has a supervisor thread in the parent. It creates the slot's order queue
//! (a [`ShmQueue`] only that worker reads), starts the worker process (a daemon, so it dies
//! with the pool's process), waits for it to end, reports the end, and starts a replacement
//! unless the pool is done. All workers send their events to one shared results queue, read
//! by one collector thread in the parent:
//!
//! ```text
//!  submit ──> State ──order──> [orders of slot 0] ──> worker 0 ──┐
//!               ^    ──order──> [orders of slot 1] ──> worker 1 ──┤ Started / Done
//!               |                                                 v
//!           collector <──────────────── [events] <── supervisors: Exited
//! ```
//!
//! The parent keeps every order until its task resolves, and knows which orders went to
//! which worker (at most [`PREFETCH`] at a time, so the worker never waits for the parent
//! between tasks). A worker sends `Started` before it runs an order and `Done` after. When a
//! worker process ends, its supervisor puts `Exited` on the results queue *after* the worker's
//! last event (the worker is dead, so all its puts have landed), so the collector sees, in
//! order: the task that was running (`Started` without `Done`) fails with
//! [`TaskError::WorkerDied`] naming the worker; the orders it had not started go back to the
//! front of the pending line, for the replacement or another worker. Python's
//! `ProcessPoolExecutor` instead marks the whole pool broken.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use conveyor_core::{Channel, Codec, Postcard};
use conveyor_process::Process;
use conveyor_shm::ShmQueue;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{SubmitError, TaskError};
use crate::future::{pair, Future, Promise};
use crate::task::{self, Failure, TaskFn};
use crate::thread::default_workers;

/// How many orders a worker holds at once: the one it runs and the next, so it never waits
/// for a round trip through the parent between two tasks (the next is handed over only
/// while more orders wait than there are workers).
pub const PREFETCH: usize = 2;

/// The conveyor-process entry point of a pool worker. The crate registers it itself, at link
/// time: a program's `conveyor_process::init` (or [`init`](crate::init), or a test's
/// [`init_test!`](crate::init_test!)) finds it with nothing listed.
const WORKER_ENTRY: &str = "conveyor-pool-worker";

conveyor_process::register_entry!(WORKER_ENTRY => worker_main);

static POOLS: AtomicU64 = AtomicU64::new(0);

/// One order: run `task` on `args` (one call, or a chunk of calls).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Order {
    id: u64,
    task: String,
    chunk: bool,
    #[serde(with = "serde_bytes")]
    args: Vec<u8>,
}

/// What the collector reads: from workers (`Started`, `Done`, `InitFailed`) and from the
/// supervisors (`Exited`).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Event {
    Started {
        slot: u32,
        generation: u32,
        id: u64,
    },
    Done {
        slot: u32,
        generation: u32,
        id: u64,
        outcome: Result<serde_bytes::ByteBuf, Failure>,
    },
    InitFailed {
        slot: u32,
        generation: u32,
        message: String,
    },
    Exited {
        slot: u32,
        generation: u32,
        status: String,
    },
}

/// The arguments of [`WORKER_ENTRY`].
type WorkerArgs = (
    ShmQueue<Order>,
    ShmQueue<Event>,
    u32,
    u32,
    Option<(String, serde_bytes::ByteBuf)>,
    Option<u64>,
);

/// The worker process's main loop: the entry point registered as [`WORKER_ENTRY`].
fn worker_main((orders, events, slot, generation, init, max_tasks): WorkerArgs) -> i32 {
    if let Some((name, args)) = init {
        let outcome = match task::lookup(&name) {
            Some(t) => t.run(false, &args).map(drop),
            None => Err(Failure::UnknownTask(name.clone())),
        };
        if let Err(f) = outcome {
            let message = format!(
                "the initializer `{name}` of worker {} failed: {}",
                conveyor_process::current_name().unwrap_or("?"),
                failure_text(&f)
            );
            let _ = events.put(Event::InitFailed {
                slot,
                generation,
                message,
            });
            return 3;
        }
    }
    let mut ran = 0u64;
    loop {
        let order = match orders.get() {
            Ok(o) => o,
            Err(e) if e.is_closed() => return 0,
            Err(e) => {
                eprintln!("pool worker: could not read an order: {e}");
                return 2;
            }
        };
        if events
            .put(Event::Started {
                slot,
                generation,
                id: order.id,
            })
            .is_err()
        {
            return 2;
        }
        let outcome = match task::lookup(&order.task) {
            Some(t) => t.run(order.chunk, &order.args),
            None => Err(Failure::UnknownTask(order.task.clone())),
        };
        let done = Event::Done {
            slot,
            generation,
            id: order.id,
            outcome: outcome.map(serde_bytes::ByteBuf::from),
        };
        if events.put(done).is_err() {
            return 2;
        }
        ran += 1;
        if max_tasks == Some(ran) {
            return 0;
        }
    }
}

fn failure_text(f: &Failure) -> String {
    match f {
        Failure::Panicked(m) => format!("it panicked: {m}"),
        Failure::BadArgs(m) => format!("its arguments did not decode: {m}"),
        Failure::UnknownTask(n) => format!("no task named `{n}` is registered in the worker"),
        Failure::Encode(m) => format!("its result did not encode: {m}"),
    }
}

fn failure_error(task: &str, f: Failure) -> TaskError {
    match f {
        Failure::Panicked(m) => TaskError::Panicked(m),
        other => TaskError::Codec {
            task: task.to_string(),
            message: failure_text(&other),
        },
    }
}

/// Resolves one task's future from what its worker sent.
trait Resolve: Send {
    fn set_running(&self) -> bool;
    fn cancel(&self) -> bool;
    fn finish(self: Box<Self>, outcome: Result<Vec<u8>, TaskError>);
}

struct One<R> {
    task: &'static str,
    promise: Promise<R>,
}

impl<R: DeserializeOwned + Send> Resolve for One<R> {
    fn set_running(&self) -> bool {
        self.promise.set_running()
    }
    fn cancel(&self) -> bool {
        self.promise.cancel()
    }
    fn finish(self: Box<Self>, outcome: Result<Vec<u8>, TaskError>) {
        let value = outcome.and_then(|bytes| {
            Postcard.decode::<R>(&bytes).map_err(|e| TaskError::Codec {
                task: self.task.to_string(),
                message: format!("its result did not decode: {e}"),
            })
        });
        self.promise.complete(value);
    }
}

/// The results of one chunk of calls.
type ChunkResults<R> = Vec<Result<R, TaskError>>;

struct Chunk<R> {
    task: &'static str,
    len: usize,
    promise: Promise<ChunkResults<R>>,
}

impl<R: DeserializeOwned + Send> Resolve for Chunk<R> {
    fn set_running(&self) -> bool {
        self.promise.set_running()
    }
    fn cancel(&self) -> bool {
        self.promise.cancel()
    }
    fn finish(self: Box<Self>, outcome: Result<Vec<u8>, TaskError>) {
        let results = match outcome {
            Ok(bytes) => match Postcard.decode::<Vec<Result<R, String>>>(&bytes) {
                Ok(v) => v
                    .into_iter()
                    .map(|r| r.map_err(TaskError::Panicked))
                    .collect(),
                Err(e) => {
                    let e = TaskError::Codec {
                        task: self.task.to_string(),
                        message: format!("its results did not decode: {e}"),
                    };
                    (0..self.len).map(|_| Err(e.clone())).collect()
                }
            },
            // the whole chunk failed (its worker died, say): every call in it says why
            Err(e) => (0..self.len).map(|_| Err(e.clone())).collect(),
        };
        self.promise.complete(Ok(results));
    }
}

struct Entry {
    order: Order,
    resolve: Box<dyn Resolve>,
    /// Whether it was handed to a worker before (and so marked running).
    dispatched: bool,
}

/// A worker process that runs now in a slot.
struct Live {
    name: String,
    pid: u32,
    orders: ShmQueue<Order>,
    /// The orders handed to it and not done, oldest first.
    assigned: VecDeque<u64>,
    /// The order it said it started and has not finished.
    started: Option<u64>,
    /// How many orders it was given in all (for `max_tasks_per_child`).
    given: u64,
}

struct SlotState {
    generation: u32,
    live: Option<Live>,
    /// Whether the slot's supervisor has ended (no replacement will come).
    stopped: bool,
}

struct State {
    next_id: u64,
    pending: VecDeque<u64>,
    tasks: HashMap<u64, Entry>,
    slots: Vec<SlotState>,
    shutting_down: bool,
    broken: Option<String>,
    restart: Vec<mpsc::Sender<bool>>,
}

struct Shared {
    name: String,
    state: Mutex<State>,
    /// Notified whenever a slot's worker starts, ends or the slot stops for good.
    workers_changed: Condvar,
    max_tasks: Option<u64>,
    events: ShmQueue<Event>,
    initializer: Option<(String, Vec<u8>)>,
    start_timeout: Duration,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Outcomes to deliver once the state lock is released (a resolve runs callbacks).
type Deliveries = Vec<(Box<dyn Resolve>, Result<Vec<u8>, TaskError>)>;

fn deliver(d: Deliveries) {
    for (r, outcome) in d {
        r.finish(outcome);
    }
}

impl State {
    /// Hands pending orders to the slot's worker while it has room.
    fn fill(&mut self, slot: usize, max_tasks: Option<u64>, out: &mut Deliveries) {
        let workers = self.slots.len();
        loop {
            let Some(live) = self.slots[slot].live.as_mut() else {
                return;
            };
            if live.assigned.len() >= PREFETCH || max_tasks.is_some_and(|m| live.given >= m) {
                return;
            }
            // A second order waits in a busy worker's queue only while there is work for
            // every worker: at the end of a batch, the last orders go to whichever worker is
            // free, not behind a long task.
            if !live.assigned.is_empty() && self.pending.len() <= workers {
                return;
            }
            let Some(id) = self.pending.pop_front() else {
                return;
            };
            let Some(entry) = self.tasks.get_mut(&id) else {
                continue;
            };
            if !entry.dispatched {
                if !entry.resolve.set_running() {
                    // cancelled while it waited
                    self.tasks.remove(&id);
                    continue;
                }
                entry.dispatched = true;
            }
            match live.orders.put_ref(&entry.order) {
                Ok(()) => {
                    live.assigned.push_back(id);
                    live.given += 1;
                }
                Err(e) => {
                    let entry = self.tasks.remove(&id).expect("looked up above");
                    let message = format!("the order could not be sent to the worker: {e}");
                    out.push((
                        entry.resolve,
                        Err(TaskError::Codec {
                            task: entry.order.task,
                            message,
                        }),
                    ));
                }
            }
        }
    }

    /// The slots with a live worker, least loaded first.
    fn fill_all(&mut self, max_tasks: Option<u64>, out: &mut Deliveries) {
        let mut order: Vec<usize> = (0..self.slots.len()).collect();
        order.sort_by_key(|&s| {
            self.slots[s]
                .live
                .as_ref()
                .map_or(usize::MAX, |l| l.assigned.len())
        });
        for s in order {
            if self.pending.is_empty() {
                break;
            }
            self.fill(s, max_tasks, out);
        }
    }

    /// Once shutting down with nothing left to run, tells every worker to end.
    fn close_if_finished(&mut self) {
        if self.shutting_down && self.tasks.is_empty() {
            for s in &self.slots {
                if let Some(live) = &s.live {
                    end_orders(&live.orders);
                }
            }
        }
    }

    /// Fails every task not yet resolved with `error`.
    fn fail_all(&mut self, error: &TaskError, out: &mut Deliveries) {
        self.pending.clear();
        for (_, e) in self.tasks.drain() {
            out.push((e.resolve, Err(error.clone())));
        }
        for s in &mut self.slots {
            if let Some(live) = &mut s.live {
                live.assigned.clear();
                live.started = None;
                end_orders(&live.orders);
            }
        }
    }
}

/// A pool of worker processes that run registered tasks (Python's
/// `concurrent.futures.ProcessPoolExecutor`, with `multiprocessing.Pool`'s `map` family).
///
/// A task is a function registered by name ([`task!`](crate::task!), [`init`](crate::init)):
/// its arguments and its result travel encoded, over shared-memory queues, to and from worker
/// processes started with `conveyor-process`. Workers are started with the pool and replaced
/// when one ends ([`max_tasks_per_child`](ProcessPoolBuilder::max_tasks_per_child), or a
/// crash). A worker that dies in the middle of a task fails that task's future alone, with
/// [`TaskError::WorkerDied`] naming the worker; every other task completes.
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
///     let f = pool.submit(task!(square), 12)?;
///     assert_eq!(f.result()?, 144);
///     let all: Vec<u64> = pool.map(task!(square), 0..10u64).collect::<Result<_, _>>()?;
///     assert_eq!(all[9], 81);
///     Ok(())
/// }
/// ```
pub struct ProcessPool {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    size: usize,
}

impl fmt::Debug for ProcessPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessPool")
            .field("name", &self.shared.name)
            .field("workers", &self.size)
            .finish_non_exhaustive()
    }
}

/// Builds a [`ProcessPool`]: workers, an initializer, `max_tasks_per_child`.
#[derive(Debug)]
pub struct ProcessPoolBuilder {
    workers: Option<usize>,
    initializer: Option<Result<(String, Vec<u8>), SubmitError>>,
    max_tasks: Option<u64>,
    start_timeout: Duration,
}

impl ProcessPoolBuilder {
    /// The number of worker processes (Python's `max_workers` / `processes`); at least 1.
    /// Default: [`std::thread::available_parallelism`].
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = Some(n.max(1));
        self
    }

    /// Runs `task(args)` first in every worker process (Python's `initializer` and
    /// `initargs`). If it panics, the pool is broken, as in Python: the tasks not yet done
    /// fail with [`TaskError::Broken`] and later submits with [`SubmitError::Broken`].
    pub fn initializer<A: Serialize, R>(mut self, task: TaskFn<A, R>, args: A) -> Self {
        let mut bytes = Vec::new();
        self.initializer = Some(
            Postcard
                .encode(&args, &mut bytes)
                .map(|()| (task.name().to_string(), bytes))
                .map_err(|e| SubmitError::Encode {
                    task: task.name().to_string(),
                    message: e.to_string(),
                }),
        );
        self
    }

    /// A worker process ends after this many tasks (a chunk of `map` counts as one) and a
    /// fresh one takes its place (Python 3.11's `max_tasks_per_child`, `Pool`'s
    /// `maxtasksperchild`): a way to return memory a task leaks. Default: no limit.
    pub fn max_tasks_per_child(mut self, n: u64) -> Self {
        self.max_tasks = Some(n.max(1));
        self
    }

    /// How long each worker may take to start (see conveyor-process's
    /// `Process::start_timeout`). Default: 60 seconds.
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// Starts the workers and returns once every one runs. Fails if a worker cannot be started
    /// (most often: `main` does not call [`init`](crate::init) first, or a test does not call
    /// [`init_test!`](crate::init_test!) first).
    pub fn build(self) -> Result<ProcessPool, SubmitError> {
        let size = self.workers.unwrap_or_else(default_workers);
        let initializer = self.initializer.transpose()?;
        if let Some((name, _)) = &initializer {
            if task::lookup(name).is_none() {
                return Err(SubmitError::UnknownTask { name: name.clone() });
            }
        }
        let events: ShmQueue<Event> =
            ShmQueue::new().map_err(|e| SubmitError::Start(format!("the results queue: {e}")))?;
        let name = format!("ProcessPool-{}", POOLS.fetch_add(1, Ordering::Relaxed) + 1);
        let mut restart = Vec::new();
        let mut receivers = Vec::new();
        for _ in 0..size {
            let (tx, rx) = mpsc::channel();
            restart.push(tx);
            receivers.push(rx);
        }
        let shared = Arc::new(Shared {
            name,
            workers_changed: Condvar::new(),
            state: Mutex::new(State {
                next_id: 0,
                pending: VecDeque::new(),
                tasks: HashMap::new(),
                slots: (0..size)
                    .map(|_| SlotState {
                        generation: 0,
                        live: None,
                        stopped: false,
                    })
                    .collect(),
                shutting_down: false,
                broken: None,
                restart,
            }),
            max_tasks: self.max_tasks,
            events,
            initializer,
            start_timeout: self.start_timeout,
        });
        // conveyor-process starts a child of a test binary in the test whose thread starts it
        // (libtest names a test's thread after the test); the supervisors start the workers,
        // so in a test they carry the test's name.
        let inherited = std::thread::current()
            .name()
            .filter(|n| *n != "main")
            .map(String::from);
        let thread_name = |what: String| inherited.clone().unwrap_or(what);
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), SubmitError>>();
        let mut threads = Vec::with_capacity(size + 1);
        for (slot, rx) in receivers.into_iter().enumerate() {
            let mine = shared.clone();
            let ready = ready_tx.clone();
            let spawned = std::thread::Builder::new()
                .name(thread_name(format!("{}-supervisor-{slot}", shared.name)))
                .spawn(move || supervise(&mine, slot, rx, ready));
            match spawned {
                Ok(h) => threads.push(h),
                Err(e) => {
                    let pool = ProcessPool {
                        shared,
                        threads: Mutex::new(threads),
                        size,
                    };
                    pool.shutdown(true, true);
                    return Err(SubmitError::Start(format!("a supervisor thread: {e}")));
                }
            }
        }
        drop(ready_tx);
        let collector = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("{}-collector", shared.name))
                .spawn(move || collect(&shared))
        };
        let pool = ProcessPool {
            shared,
            threads: Mutex::new(threads),
            size,
        };
        match collector {
            Ok(h) => pool
                .threads
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(h),
            Err(e) => {
                pool.shutdown(false, true);
                return Err(SubmitError::Start(format!("the collector thread: {e}")));
            }
        }
        for _ in 0..size {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    pool.shutdown(true, true);
                    return Err(e);
                }
                Err(_) => {
                    pool.shutdown(true, true);
                    return Err(SubmitError::Start(
                        "a supervisor thread ended before its worker started".into(),
                    ));
                }
            }
        }
        Ok(pool)
    }
}

/// A slot's supervisor: starts the slot's worker, waits for it to end, reports it, and starts
/// the next one when the collector says so.
fn supervise(
    shared: &Shared,
    slot: usize,
    restart: mpsc::Receiver<bool>,
    ready: mpsc::Sender<Result<(), SubmitError>>,
) {
    let mut ready = Some(ready);
    loop {
        let generation = {
            let mut st = shared.lock();
            st.slots[slot].generation += 1;
            st.slots[slot].generation
        };
        let started = ShmQueue::<Order>::new()
            .map_err(|e| format!("a worker's order queue: {e}"))
            .and_then(|orders| {
                let worker_name = format!("{}-worker-{slot}", shared.name);
                let init = shared
                    .initializer
                    .as_ref()
                    .map(|(n, a)| (n.clone(), serde_bytes::ByteBuf::from(a.clone())));
                Process::new(
                    WORKER_ENTRY,
                    (
                        &orders,
                        &shared.events,
                        slot as u32,
                        generation,
                        init,
                        shared.max_tasks,
                    ),
                )
                .name(worker_name.clone())
                .daemon(true)
                .start_timeout(shared.start_timeout)
                .start()
                .map(|child| (orders, child, worker_name))
                .map_err(|e| e.to_string())
            });
        let (orders, child, worker_name) = match started {
            Ok(s) => s,
            Err(message) => {
                let message = format!(
                    "worker {slot} of {} could not start: {message}",
                    shared.name
                );
                tracing::error!(%message, "process pool worker");
                let mut out = Deliveries::new();
                {
                    let mut st = shared.lock();
                    st.slots[slot].stopped = true;
                    shared.workers_changed.notify_all();
                    if ready.is_none() {
                        // a replacement failed: nothing runs what is left
                        st.broken.get_or_insert(message.clone());
                        st.fail_all(&TaskError::Broken(message.clone()), &mut out);
                    }
                }
                deliver(out);
                if let Some(r) = ready.take() {
                    let _ = r.send(Err(SubmitError::Start(message)));
                }
                // let the collector notice that this slot is gone
                let _ = shared.events.put(Event::Exited {
                    slot: slot as u32,
                    generation,
                    status: "did not start".into(),
                });
                return;
            }
        };
        let mut out = Deliveries::new();
        {
            let mut st = shared.lock();
            st.slots[slot].live = Some(Live {
                name: worker_name,
                pid: child.pid(),
                orders,
                assigned: VecDeque::new(),
                started: None,
                given: 0,
            });
            st.fill(slot, shared.max_tasks, &mut out);
            st.close_if_finished();
            shared.workers_changed.notify_all();
            if st.broken.is_some() {
                if let Some(l) = &st.slots[slot].live {
                    end_orders(&l.orders);
                }
            }
        }
        deliver(out);
        if let Some(r) = ready.take() {
            let _ = r.send(Ok(()));
        }
        let status = match child.join() {
            Ok(s) => s.to_string(),
            Err(e) => format!("could not be waited for ({e})"),
        };
        if shared
            .events
            .put(Event::Exited {
                slot: slot as u32,
                generation,
                status,
            })
            .is_err()
        {
            return;
        }
        match restart.recv() {
            Ok(true) => continue,
            _ => return,
        }
    }
}

/// The collector: reads every event and resolves futures, hands out orders, decides on
/// replacements; ends once every slot has stopped.
fn collect(shared: &Shared) {
    loop {
        let event = match shared.events.get() {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(error = %e, "process pool: the results queue failed");
                let mut out = Deliveries::new();
                {
                    let mut st = shared.lock();
                    let why = format!("the results queue failed: {e}");
                    st.broken.get_or_insert(why.clone());
                    st.fail_all(&TaskError::Broken(why), &mut out);
                    for tx in st.restart.drain(..) {
                        let _ = tx.send(false);
                    }
                }
                deliver(out);
                return;
            }
        };
        let mut out = Deliveries::new();
        let finished = {
            let mut st = shared.lock();
            handle(shared, &mut st, event, &mut out);
            st.slots.iter().all(|s| s.stopped)
        };
        deliver(out);
        if finished {
            return;
        }
    }
}

fn handle(shared: &Shared, st: &mut State, event: Event, out: &mut Deliveries) {
    let current = |st: &State, slot: u32, generation: u32| {
        st.slots
            .get(slot as usize)
            .is_some_and(|s| s.generation == generation && s.live.is_some())
    };
    match event {
        Event::Started {
            slot,
            generation,
            id,
        } => {
            if current(st, slot, generation) {
                if let Some(live) = st.slots[slot as usize].live.as_mut() {
                    live.started = Some(id);
                }
            }
        }
        Event::Done {
            slot,
            generation,
            id,
            outcome,
        } => {
            if current(st, slot, generation) {
                if let Some(live) = st.slots[slot as usize].live.as_mut() {
                    live.started = None;
                    live.assigned.retain(|&a| a != id);
                }
            }
            if let Some(entry) = st.tasks.remove(&id) {
                let outcome = outcome
                    .map(serde_bytes::ByteBuf::into_vec)
                    .map_err(|f| failure_error(&entry.order.task, f));
                out.push((entry.resolve, outcome));
            }
            if current(st, slot, generation) {
                st.fill(slot as usize, shared.max_tasks, out);
            }
            st.close_if_finished();
        }
        Event::InitFailed {
            slot: _,
            generation: _,
            message,
        } => {
            tracing::error!(%message, "process pool broken");
            st.broken.get_or_insert(message.clone());
            st.fail_all(&TaskError::Broken(message), out);
        }
        Event::Exited {
            slot,
            generation,
            status,
        } => {
            let s = slot as usize;
            if s >= st.slots.len() || st.slots[s].generation != generation {
                return;
            }
            if let Some(live) = st.slots[s].live.take() {
                if let Some(id) = live.started {
                    if let Some(entry) = st.tasks.remove(&id) {
                        tracing::warn!(worker = %live.name, pid = live.pid, %status,
                            task = %entry.order.task, "a pool worker died while running a task");
                        out.push((
                            entry.resolve,
                            Err(TaskError::WorkerDied {
                                worker: live.name.clone(),
                                pid: live.pid,
                                status: status.clone(),
                            }),
                        ));
                    }
                }
                // the orders it had not started go first, in their order
                for id in live.assigned.iter().rev() {
                    if Some(*id) != live.started && st.tasks.contains_key(id) {
                        st.pending.push_front(*id);
                    }
                }
            }
            let again = st.broken.is_none() && !(st.shutting_down && st.tasks.is_empty());
            if !again {
                st.slots[s].stopped = true;
            }
            shared.workers_changed.notify_all();
            if let Some(tx) = st.restart.get(s) {
                let _ = tx.send(again);
            }
            if !st.slots[s].stopped {
                // a replacement is on its way; meanwhile the others take what they can
                st.fill_all(shared.max_tasks, out);
            } else if st.slots.iter().all(|x| x.stopped) && !st.tasks.is_empty() {
                st.fail_all(&TaskError::PoolShutDown, out);
            }
            st.close_if_finished();
        }
    }
}

impl ProcessPool {
    /// A pool of `workers` processes (at least 1); see [`ProcessPool::builder`] for the rest.
    pub fn new(workers: usize) -> Result<ProcessPool, SubmitError> {
        ProcessPool::builder().workers(workers).build()
    }

    /// A builder: workers, an initializer, `max_tasks_per_child`.
    pub fn builder() -> ProcessPoolBuilder {
        ProcessPoolBuilder {
            workers: None,
            initializer: None,
            max_tasks: None,
            start_timeout: conveyor_process::DEFAULT_START_TIMEOUT,
        }
    }

    /// The number of worker processes.
    pub fn workers(&self) -> usize {
        self.size
    }

    /// The pool's name; its workers are `<name>-worker-<slot>`.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The process ids of the workers running now (a replaced worker's id changes).
    pub fn worker_pids(&self) -> Vec<u32> {
        let st = self.shared.lock();
        st.slots
            .iter()
            .filter_map(|s| s.live.as_ref().map(|l| l.pid))
            .collect()
    }

    /// Blocks until every slot has a running worker (after a replacement has started, for
    /// instance) and answers `true`; answers `false` at the timeout, or as soon as a slot has
    /// stopped for good (the pool is broken or shutting down), since then it never will.
    ///
    /// ```
    /// use std::time::Duration;
    /// use conveyor_pool::ProcessPool;
    ///
    /// fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     let _children = conveyor_pool::init(&[], &[]);
    ///     let pool = ProcessPool::new(2)?;
    ///     assert!(pool.wait_for_workers(Duration::from_secs(30)));
    ///     assert_eq!(pool.worker_pids().len(), 2);
    ///     Ok(())
    /// }
    /// ```
    pub fn wait_for_workers(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let mut st = self.shared.lock();
        loop {
            if st.slots.iter().any(|s| s.stopped) {
                return false;
            }
            if st.slots.iter().all(|s| s.live.is_some()) {
                return true;
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return false;
            }
            st = self
                .shared
                .workers_changed
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn enqueue(
        &self,
        task: &'static str,
        chunk: bool,
        args: Vec<u8>,
        resolve: impl FnOnce() -> Box<dyn Resolve>,
    ) -> Result<(), SubmitError> {
        let mut out = Deliveries::new();
        {
            let mut st = self.shared.lock();
            if let Some(why) = &st.broken {
                return Err(SubmitError::Broken(why.clone()));
            }
            if st.shutting_down {
                return Err(SubmitError::Shutdown);
            }
            let id = st.next_id;
            st.next_id += 1;
            st.tasks.insert(
                id,
                Entry {
                    order: Order {
                        id,
                        task: task.to_string(),
                        chunk,
                        args,
                    },
                    resolve: resolve(),
                    dispatched: false,
                },
            );
            st.pending.push_back(id);
            st.fill_all(self.shared.max_tasks, &mut out);
        }
        deliver(out);
        Ok(())
    }

    fn check<A, R>(task: &TaskFn<A, R>) -> Result<(), SubmitError> {
        if task::lookup(task.name()).is_none() {
            return Err(SubmitError::UnknownTask {
                name: task.name().to_string(),
            });
        }
        Ok(())
    }

    /// Queues `task(args)` for a worker process and returns its future at once (Python's
    /// `submit(fn, *args)`). Fails with [`SubmitError::Shutdown`] after
    /// [`shutdown`](ProcessPool::shutdown), [`SubmitError::Broken`] once an initializer
    /// failed, and [`SubmitError::UnknownTask`] for a task this program did not register.
    pub fn submit<A, R>(&self, task: TaskFn<A, R>, args: A) -> Result<Future<R>, SubmitError>
    where
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        Self::check(&task)?;
        let mut bytes = Vec::new();
        Postcard
            .encode(&args, &mut bytes)
            .map_err(|e| SubmitError::Encode {
                task: task.name().to_string(),
                message: e.to_string(),
            })?;
        let (promise, future) = pair();
        self.enqueue(task.name(), false, bytes, || {
            Box::new(One {
                task: task.name(),
                promise,
            })
        })?;
        Ok(future)
    }

    /// Submits a chunk of calls as one order; its future holds one result per item.
    fn submit_chunk<A, R>(
        &self,
        task: TaskFn<A, R>,
        items: &[A],
    ) -> Result<Future<ChunkResults<R>>, SubmitError>
    where
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        let mut bytes = Vec::new();
        Postcard
            .encode(items, &mut bytes)
            .map_err(|e| SubmitError::Encode {
                task: task.name().to_string(),
                message: e.to_string(),
            })?;
        let (promise, future) = pair();
        let len = items.len();
        self.enqueue(task.name(), true, bytes, || {
            Box::new(Chunk {
                task: task.name(),
                len,
                promise,
            })
        })?;
        Ok(future)
    }

    /// Runs `task` on every item, results in the order of the items (`multiprocessing.Pool.map`
    /// and `ProcessPoolExecutor.map`), lazily. Items go to the workers in chunks, as
    /// `Pool.map` sends them: of `len / (4 * workers)` items, rounded up, when the iterator
    /// knows its exact length, else one by one; see [`map_chunked`](ProcessPool::map_chunked).
    pub fn map<A, R, I>(&self, task: TaskFn<A, R>, items: I) -> PoolMap<'_, I::IntoIter, A, R>
    where
        I: IntoIterator<Item = A>,
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        let items = items.into_iter();
        let chunksize = match items.size_hint() {
            (lo, Some(hi)) if lo == hi => lo.div_ceil(4 * self.size).max(1),
            _ => 1,
        };
        self.map_chunked(task, items, chunksize)
    }

    /// [`map`](ProcessPool::map) with `chunksize` items per order (Python's `chunksize`; at
    /// least 1). At most twice as many chunks as workers are in flight, so a huge or endless
    /// iterator is never buffered whole.
    pub fn map_chunked<A, R, I>(
        &self,
        task: TaskFn<A, R>,
        items: I,
        chunksize: usize,
    ) -> PoolMap<'_, I::IntoIter, A, R>
    where
        I: IntoIterator<Item = A>,
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        PoolMap {
            pool: self,
            task,
            items: Some(items.into_iter()),
            chunksize: chunksize.max(1),
            window: VecDeque::new(),
            current: Vec::new().into_iter(),
            limit: 2 * self.size,
            checked: Self::check(&task).err(),
            _types: PhantomData,
        }
    }

    /// `multiprocessing.Pool.imap`: [`map_chunked`](ProcessPool::map_chunked) (which is lazy
    /// already); Python's default `chunksize` is 1.
    pub fn imap<A, R, I>(
        &self,
        task: TaskFn<A, R>,
        items: I,
        chunksize: usize,
    ) -> PoolMap<'_, I::IntoIter, A, R>
    where
        I: IntoIterator<Item = A>,
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        self.map_chunked(task, items, chunksize)
    }

    /// `multiprocessing.Pool.starmap`: a task takes one argument, a tuple for several, so this
    /// is [`map`](ProcessPool::map) over tuples; it exists so that Python's name finds it.
    pub fn starmap<A, R, I>(&self, task: TaskFn<A, R>, items: I) -> PoolMap<'_, I::IntoIter, A, R>
    where
        I: IntoIterator<Item = A>,
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        self.map(task, items)
    }

    /// `multiprocessing.Pool.imap_unordered`: the results as their chunks finish, each with the
    /// index of its item, lazily (at most twice as many chunks as workers in flight).
    pub fn imap_unordered<A, R, I>(
        &self,
        task: TaskFn<A, R>,
        items: I,
        chunksize: usize,
    ) -> Unordered<'_, I::IntoIter, A, R>
    where
        I: IntoIterator<Item = A>,
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        let (tx, rx) = mpsc::channel();
        Unordered {
            pool: self,
            task,
            items: Some(items.into_iter()),
            chunksize: chunksize.max(1),
            next_index: 0,
            in_flight: 0,
            limit: 2 * self.size,
            tx,
            rx,
            current: Vec::new().into_iter(),
            failed: Self::check(&task).err(),
        }
    }

    /// Shuts the pool down (Python's `shutdown(wait, cancel_futures)`): later submits fail with
    /// [`SubmitError::Shutdown`]. With `cancel_futures` the tasks no worker has taken yet are
    /// cancelled; the others run. Once nothing is left the workers end. With `wait`, returns
    /// once every worker process and the pool's threads have ended. Calling it again is
    /// harmless.
    pub fn shutdown(&self, wait: bool, cancel_futures: bool) {
        let mut out = Deliveries::new();
        {
            let mut st = self.shared.lock();
            st.shutting_down = true;
            if cancel_futures {
                let pending: Vec<u64> = st.pending.drain(..).collect();
                for id in pending {
                    let cancel = match st.tasks.get(&id) {
                        Some(e) if !e.dispatched => e.resolve.cancel(),
                        Some(_) => {
                            // taken back from a dead worker: it runs already in Python's eyes
                            st.pending.push_back(id);
                            false
                        }
                        None => false,
                    };
                    if cancel {
                        st.tasks.remove(&id);
                    }
                }
            }
            st.fill_all(self.shared.max_tasks, &mut out);
            st.close_if_finished();
        }
        deliver(out);
        if wait {
            let threads =
                std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
            for t in threads {
                let _ = t.join();
            }
        }
    }
}

impl Drop for ProcessPool {
    fn drop(&mut self) {
        self.shutdown(true, false);
    }
}

/// The iterator of [`ProcessPool::map`] and its kin: results in input order.
pub struct PoolMap<'a, I, A, R> {
    pool: &'a ProcessPool,
    task: TaskFn<A, R>,
    items: Option<I>,
    chunksize: usize,
    window: VecDeque<Result<Future<ChunkResults<R>>, SubmitError>>,
    current: std::vec::IntoIter<Result<R, TaskError>>,
    limit: usize,
    checked: Option<SubmitError>,
    _types: PhantomData<fn(A)>,
}

impl<I, A, R> fmt::Debug for PoolMap<'_, I, A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolMap")
            .field("task", &self.task.name())
            .field("chunksize", &self.chunksize)
            .field("chunks_in_flight", &self.window.len())
            .finish_non_exhaustive()
    }
}

impl<I, A, R> Drop for PoolMap<'_, I, A, R> {
    fn drop(&mut self) {
        for f in self.window.iter().flatten() {
            f.cancel();
        }
    }
}

/// Takes up to `n` items.
fn take_chunk<I: Iterator>(items: &mut Option<I>, n: usize) -> Vec<I::Item> {
    let mut chunk = Vec::with_capacity(n.min(4096));
    if let Some(it) = items.as_mut() {
        chunk.extend(it.by_ref().take(n));
    }
    if chunk.len() < n {
        *items = None;
    }
    chunk
}

impl<I, A, R> Iterator for PoolMap<'_, I, A, R>
where
    I: Iterator<Item = A>,
    A: Serialize,
    R: DeserializeOwned + Send + 'static,
{
    type Item = Result<R, TaskError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.checked.take() {
            self.items = None;
            return Some(Err(e.into()));
        }
        loop {
            if let Some(r) = self.current.next() {
                return Some(r);
            }
            while self.window.len() < self.limit && self.items.is_some() {
                let chunk = take_chunk(&mut self.items, self.chunksize);
                if chunk.is_empty() {
                    break;
                }
                let submitted = self.pool.submit_chunk(self.task, &chunk);
                if submitted.is_err() {
                    self.items = None;
                }
                self.window.push_back(submitted);
            }
            let next = self.window.pop_front()?;
            match next.map_err(TaskError::from).and_then(|f| f.result()) {
                Ok(results) => self.current = results.into_iter(),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// The iterator of [`ProcessPool::imap_unordered`]: `(index of the item, result)` as chunks
/// finish.
pub struct Unordered<'a, I, A, R> {
    pool: &'a ProcessPool,
    task: TaskFn<A, R>,
    items: Option<I>,
    chunksize: usize,
    next_index: usize,
    in_flight: usize,
    limit: usize,
    tx: mpsc::Sender<(usize, Result<ChunkResults<R>, TaskError>)>,
    rx: mpsc::Receiver<(usize, Result<ChunkResults<R>, TaskError>)>,
    current: std::vec::IntoIter<(usize, Result<R, TaskError>)>,
    failed: Option<SubmitError>,
}

impl<I, A, R> fmt::Debug for Unordered<'_, I, A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Unordered")
            .field("task", &self.task.name())
            .field("chunksize", &self.chunksize)
            .field("chunks_in_flight", &self.in_flight)
            .finish_non_exhaustive()
    }
}

impl<I, A, R> Iterator for Unordered<'_, I, A, R>
where
    I: Iterator<Item = A>,
    A: Serialize,
    R: DeserializeOwned + Send + 'static,
{
    type Item = (usize, Result<R, TaskError>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(r) = self.current.next() {
                return Some(r);
            }
            if let Some(e) = self.failed.take() {
                self.items = None;
                return Some((self.next_index, Err(e.into())));
            }
            while self.in_flight < self.limit && self.items.is_some() {
                let chunk = take_chunk(&mut self.items, self.chunksize);
                if chunk.is_empty() {
                    break;
                }
                let first = self.next_index;
                self.next_index += chunk.len();
                match self.pool.submit_chunk(self.task, &chunk) {
                    Ok(f) => {
                        let tx = self.tx.clone();
                        self.in_flight += 1;
                        f.add_done_callback(move |f| {
                            let _ = tx.send((first, f.result()));
                        });
                    }
                    Err(e) => {
                        self.items = None;
                        self.failed = Some(e);
                    }
                }
            }
            if self.in_flight == 0 {
                return self.failed.take().map(|e| (self.next_index, Err(e.into())));
            }
            let (first, results) = self.rx.recv().ok()?;
            self.in_flight -= 1;
            match results {
                Ok(rs) => {
                    self.current = rs
                        .into_iter()
                        .enumerate()
                        .map(|(i, r)| (first + i, r))
                        .collect::<Vec<_>>()
                        .into_iter();
                }
                Err(e) => return Some((first, Err(e))),
            }
        }
    }
}

/// Tells a worker to end: its orders queue shut down, so its get returns `Closed` once it has
/// run what it was given. That fails only if the queue's lock in shared memory cannot be
/// taken (the segment is broken); the pool's callers cannot act on it, so it is logged.
fn end_orders(orders: &ShmQueue<Order>) {
    if let Err(e) = orders.try_shutdown(false) {
        tracing::warn!(error = %e, "could not tell a worker to end");
    }
}
