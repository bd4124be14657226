//! One producer and one consumer, over the transport named on the command line: the program is
//! written once, because every transport implements `Channel`, and the transport is the one
//! line that builds the channel.
//!
//! ```text
//! cargo run --release --example compare_transports -- TRANSPORT [COUNT]
//!
//!   queue     conveyor::thread::Queue          threads of this process
//!   lifo      conveyor::thread::LifoQueue      threads of this process
//!   priority  conveyor::thread::PriorityQueue  threads of this process
//!   shm       conveyor::shm::ShmQueue          two child processes
//!   joinable  conveyor::shm::JoinableShmQueue  two child processes
//!   pipe      conveyor::pipe::pipe()           two child processes, one end each
//!   manager   a queue of conveyor::manager     two child processes (and the manager's server)
//!   all       each of the above in turn
//! ```
//!
//! `main`'s `match` has one line per transport, and that line is all that differs: it builds
//! the two ends (a queue's two ends are two handles of one queue, made by `shared`; a pipe's
//! are the two connections `pipe()` returns) and says where they run: `threads` for the
//! queues of one process, `processes` for the transports between processes, which start the
//! producer and the consumer each in a child process (`conveyor::process`), with its end passed
//! in the child's arguments, as `Process(target=producer, args=(q,))` does in Python. The
//! producer and consumer, the starting, joining and checking are the same code for every
//! transport.
//!
//! The producer puts COUNT readings (default 100 000) and then calls `shutdown(false)` (Python
//! 3.13's `Queue.shutdown()`; on a pipe it closes the producer's end), so the consumer learns
//! that it is done: it takes readings until `get` answers `Closed`, and checks that it got every
//! one, with nothing lost or repeated. (Python's consumer cannot learn that, which is
//! why the seeds need a known count, a sentinel or daemon consumers.) A `JoinableShmQueue` is
//! used here only as a `Channel`; its `task_done`/`join` are shown by `hotdogs_joinable`.
//! Readings are ordered by their sequence number, so the `PriorityQueue` hands them out smallest
//! first, and the `LifoQueue` newest first; the consumer's check does not depend on the order.
//!
//! Each line of output gives the time from building the channel to the last join, so for the
//! process transports it includes starting two processes (a few milliseconds each) and, for the
//! manager, its server process; for figures measured with care, side by side, see
//! `cargo xtask bench`. Byte payloads go through `serde_bytes`, so the codec copies them in one
//! piece.
//!
//! ## How the entry points are registered
//!
//! A child process runs the same binary with the same arguments (`conveyor::process` passes the
//! parent's command line, as Python's spawn children get its `sys.argv`). So a child takes the
//! same arm of the `match` as its parent, and `processes` calls `conveyor::process::init`
//! with the producer and consumer instantiated for that arm's transport before anything is
//! built: in a child, `init` runs the entry point there and exits. That is why `init` is not the
//! first line of `main` here, and why the ends are built by a closure that `processes` calls
//! after `init`: a child must not build a channel of its own.
//!
//! The closure is handed `go`, the rest of the program, and calls it with the ends
//! (`|go| go(ends)`) instead of returning them, so that what the line makes on the way lives
//! until the program is done: the manager's server (`Manager::builder().spawn()?`, Python's
//! `Manager()`) stops when its guard drops, and the guard is a temporary of that one line.
//! `all` runs this example once per transport, each in a process of its own, since a process
//! serves the one transport its arguments name.

use std::error::Error;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use conveyor::manager::Manager;
use conveyor::pipe::pipe;
use conveyor::process::{self as process, Entry, Process};
use conveyor::shm::{JoinableShmQueue, ShmQueue};
use conveyor::thread::{LifoQueue, PriorityQueue, Queue};
use conveyor::Channel;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// What the producer sends: a reading with a small binary blob, ordered by `seq` first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct Reading {
    seq: u32,
    sensor: u32,
    value: u64,
    #[serde(with = "serde_bytes")]
    blob: Vec<u8>,
}

impl Reading {
    /// The `i`-th reading the producer sends.
    fn nth(i: u32) -> Reading {
        Reading {
            seq: i,
            sensor: i % 8,
            value: u64::from(i) * 3,
            blob: vec![(i % 251) as u8; 64],
        }
    }
}

/// Bound of every queue (in items).
const CAPACITY: usize = 64;

/// What every part returns: a typed error, boxed, whose message reaches the user.
type Outcome = Result<(), Box<dyn Error + Send + Sync>>;

/// The producer, written once over `Channel`: puts `count` readings, then says it is done.
fn producer<C: Channel<Reading>>((tx, count): (C, u32)) -> Result<(), String> {
    let sent = (0..count).try_for_each(|i| {
        tx.put(Reading::nth(i))
            .map_err(|e| format!("put of reading {i} failed: {e}"))
    });
    // Done, or failed: either way no more comes. The consumer drains what is left, then its
    // get answers `Closed`.
    let shut = tx
        .shutdown(false)
        .map_err(|e| format!("shutdown after the last reading failed: {e}"));
    sent.and(shut)
}

/// The consumer, written once over `Channel`: takes readings until the channel is closed and
/// drained, and checks that each of the `count` readings arrived exactly once.
fn consumer<C: Channel<Reading>>((rx, count): (C, u32)) -> Result<(), String> {
    let checked = take_all(&rx, count);
    if checked.is_err() {
        // Giving up: discard the rest, and fail the producer's puts rather than leave it
        // blocked on a full queue.
        if let Err(e) = rx.shutdown(true) {
            eprintln!("the consumer could not shut the queue down: {e}");
        }
    }
    checked
}

/// Takes readings until `get` answers `Closed`; each of the `count` must come exactly once.
fn take_all<C: Channel<Reading>>(rx: &C, count: u32) -> Result<(), String> {
    let mut seen = vec![false; count as usize];
    loop {
        match rx.get() {
            Ok(r) => {
                let expected = Reading::nth(r.seq);
                match seen.get_mut(r.seq as usize) {
                    Some(s) if !*s && r == expected => *s = true,
                    Some(true) => return Err(format!("reading {} arrived twice", r.seq)),
                    Some(false) => return Err(format!("reading {} arrived damaged", r.seq)),
                    None => return Err(format!("reading {} was never sent", r.seq)),
                }
            }
            Err(e) if e.is_closed() => break,
            Err(e) => return Err(format!("get failed: {e}")),
        }
    }
    match seen.iter().filter(|s| !**s).count() {
        0 => Ok(()),
        lost => Err(format!("{lost} of {count} readings never arrived")),
    }
}

/// A queue's two ends: two handles of the same queue.
fn shared<Q: Clone>(q: Q) -> (Q, Q) {
    (q.clone(), q)
}

/// What a building line receives: the function that runs the program over the two ends.
///
/// The line calls it itself (`|go| go(ends)`) rather than returning the ends, so that whatever
/// it makes along the way (the manager's server) lives until the program is done.
type Go<'a, Tx, Rx> = &'a dyn Fn((Tx, Rx)) -> Outcome;

/// Where the producer and consumer ran, and how long the whole run took.
type Ran = Result<(&'static str, Duration), Box<dyn Error + Send + Sync>>;

/// Runs the producer and the consumer on threads of this process.
fn threads<Tx, Rx>(count: u32, build: impl FnOnce(Go<Tx, Rx>) -> Outcome) -> Ran
where
    Tx: Channel<Reading> + Send + 'static,
    Rx: Channel<Reading> + Send + 'static,
{
    let start = Instant::now();
    build(&|(tx, rx)| {
        let p = std::thread::spawn(move || producer((tx, count)));
        let c = std::thread::spawn(move || consumer((rx, count)));
        let p = p.join().map_err(|_| "the producer thread panicked")?;
        let c = c.join().map_err(|_| "the consumer thread panicked")?;
        match (p, c) {
            (Ok(()), Ok(())) => Ok(()),
            (p, c) => Err(format!("producer: {p:?}; consumer: {c:?}").into()),
        }
    })?;
    Ok(("threads", start.elapsed()))
}

/// Runs the producer and the consumer each in a child process, its end passed in its
/// arguments.
fn processes<Tx, Rx>(count: u32, build: impl FnOnce(Go<Tx, Rx>) -> Outcome) -> Ran
where
    Tx: Channel<Reading> + Serialize + DeserializeOwned + 'static,
    Rx: Channel<Reading> + Serialize + DeserializeOwned + 'static,
{
    // In a child this runs the producer, the consumer or the manager's server (which
    // conveyor-manager registers itself), and exits. Kept to the end, the guard joins any
    // child still running (as Python does at exit).
    let _children = process::init(&[
        Entry::new("producer", producer::<Tx>),
        Entry::new("consumer", consumer::<Rx>),
    ]);
    let start = Instant::now();
    build(&|(tx, rx)| {
        let p = Process::new("producer", (&tx, count))
            .name("producer")
            .start()?;
        let c = match Process::new("consumer", (&rx, count))
            .name("consumer")
            .start()
        {
            Ok(c) => c,
            Err(e) => {
                // No consumer: do not leave the producer blocked on a full queue.
                let _ = p.kill();
                let _ = p.join();
                return Err(e.into());
            }
        };
        drop((tx, rx)); // each child holds its own end now
        let (ps, cs) = (p.join()?, c.join()?);
        if !(ps.success() && cs.success()) {
            return Err(format!("producer: {ps}; consumer: {cs}").into());
        }
        Ok(())
    })?;
    Ok(("processes", start.elapsed()))
}

/// Runs the program over the transport called `which`, or `None` for a name it does not know.
#[rustfmt::skip] // one line per transport, aligned, is the point of the example
fn run(which: &str, n: u32) -> Option<Ran> {
    Some(match which {
        "queue"    => threads(n, |go| go(shared(Queue::bounded(CAPACITY)))),
        "lifo"     => threads(n, |go| go(shared(LifoQueue::bounded(CAPACITY)))),
        "priority" => threads(n, |go| go(shared(PriorityQueue::bounded(CAPACITY)))),
        "shm"      => processes(n, |go| go(shared(ShmQueue::builder().max_items(CAPACITY).create()?))),
        "joinable" => processes(n, |go| go(shared(JoinableShmQueue::with_options(ShmQueue::builder().max_items(CAPACITY))?))),
        "pipe"     => processes(n, |go| go(pipe()?)),
        "manager"  => processes(n, |go| go(shared(Manager::builder().spawn()?.queue("readings", Some(CAPACITY))?))),
        _ => return None,
    })
}

/// Every transport `run` knows, in the order `all` runs them.
const TRANSPORTS: [&str; 7] = [
    "queue", "lifo", "priority", "shm", "joinable", "pipe", "manager",
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let which = args.first().map(String::as_str).unwrap_or("");
    let count: u32 = match args.get(1).map(|c| c.parse()) {
        None => 100_000,
        Some(Ok(c)) => c,
        Some(Err(_)) => {
            eprintln!("COUNT must be a number, not {:?}", args[1]);
            return ExitCode::from(2);
        }
    };
    if which == "all" {
        // Each transport in a run of its own: a child process takes its parent's arguments to
        // the one `init` of its transport, so one run serves one transport.
        let mut failed = false;
        for name in TRANSPORTS {
            let status = std::env::current_exe().and_then(|exe| {
                std::process::Command::new(exe)
                    .args([name.to_string(), count.to_string()])
                    .status()
            });
            match status {
                Ok(s) if s.success() => {}
                Ok(s) => {
                    eprintln!("{name}: the run failed ({s})");
                    failed = true;
                }
                Err(e) => {
                    eprintln!("{name}: could not run this example again: {e}");
                    failed = true;
                }
            }
        }
        return if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        };
    }
    match run(which, count) {
        Some(Ok((place, took))) => {
            let secs = took.as_secs_f64();
            println!(
                "{which:>8}: {count} readings, each once, in {:.1} ms ({:.0}/s), in {place}",
                secs * 1e3,
                f64::from(count) / secs
            );
            ExitCode::SUCCESS
        }
        Some(Err(e)) => {
            eprintln!("{which}: {e}");
            ExitCode::FAILURE
        }
        None => {
            eprintln!(
                "usage: compare_transports {}|all [COUNT]",
                TRANSPORTS.join("|")
            );
            ExitCode::from(2)
        }
    }
}
