//! Criterion benchmarks of the thread queues against their peers, side by side in one run.
//!
//! Groups (each benchmark in a group moves the same `u64` items through a queue of capacity
//! 1024, so the ratios inside a group are what to read):
//!
//! | group              | ours          | peers                                                        |
//! |--------------------|---------------|--------------------------------------------------------------|
//! | `fifo_1p1c`        | `Queue`       | crossbeam-channel `bounded`, std `sync_channel`, `Mutex<VecDeque>` + `Condvar` |
//! | `fifo_4p4c`        | `Queue`       | the same; std's single receiver is shared behind a `Mutex`    |
//! | `lifo_1p1c`/`4p4c` | `LifoQueue`   | `Mutex<Vec>` + `Condvar`                                     |
//! | `priority_1p1c`/`4p4c` | `PriorityQueue` | `Mutex<BinaryHeap>` + `Condvar`                        |
//! | `pingpong`         | two `Queue`s of capacity 1 | two crossbeam-channel `bounded(1)`              |
//!
//! The lock queues notify their `Condvar` only when someone waits (see `support/lock_queue.rs`).
//! Throughput groups report elements per second (100 000 items per iteration); `pingpong`
//! reports one round trip per iteration.
//!
//! Run: `cargo bench -p conveyor --no-default-features --features thread --bench thread_queues`
//! (add a group name to filter, for example `-- fifo_1p1c`, or `-- side_by_side` for the
//! alternating pass alone). On two shared cores the whole file takes about three minutes.
//!
//! Criterion runs the benchmarks of a group one after another, so on a small machine shared
//! with other work a ratio read from two criterion medians can move by 2x from one run to the
//! next. After the groups, an alternating pass measures each of the targets as pairs:
//! ours and the peer take turns slice by slice (ours first in even rounds, the peer first in odd
//! ones), and the pass prints both medians and the median of the per-round ratios, which is
//! the figure to quote. `CONVEYOR_ROUNDS` sets the number of rounds (21 by default),
//! `CONVEYOR_PAIRS` a substring of the pair names to measure only those (`priority`, `4p4c`).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::hint::black_box;
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use conveyor::thread::{LifoQueue, PriorityQueue, Queue};
use criterion::measurement::WallTime;
use criterion::{criterion_group, BenchmarkGroup, Criterion, Throughput};

#[path = "support/lock_queue.rs"]
mod lock_queue;

use lock_queue::{Container, LockQueue};

/// Capacity of every bounded queue in the throughput groups.
const CAPACITY: usize = 1024;
/// Items moved per iteration in the throughput groups.
const ITEMS: u64 = 100_000;

/// The item put as number `i`: scrambled so that a priority queue has real sorting to do, the
/// same sequence for every queue in a group.
#[inline]
fn item(i: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 1
}

/// A queue under test, seen as its producer and consumer ends.
trait Subject {
    /// The end producers put into.
    type Tx: Send + 'static;
    /// The end consumers get from.
    type Rx: Send + 'static;
    /// A queue of `capacity` with one end per producer and per consumer.
    fn ends(capacity: usize, producers: usize, consumers: usize) -> (Vec<Self::Tx>, Vec<Self::Rx>);
    /// Puts one item, blocking while full.
    fn put(tx: &Self::Tx, value: u64);
    /// Gets one item, blocking while empty.
    fn get(rx: &Self::Rx) -> u64;
}

/// Clones one handle `n` times: the ends of a queue whose handles are shared by cloning.
fn clones<H: Clone>(handle: &H, n: usize) -> Vec<H> {
    (0..n).map(|_| handle.clone()).collect()
}

struct OurFifo;
impl Subject for OurFifo {
    type Tx = Queue<u64>;
    type Rx = Queue<u64>;
    fn ends(capacity: usize, p: usize, c: usize) -> (Vec<Self::Tx>, Vec<Self::Rx>) {
        let q = Queue::bounded(capacity);
        (clones(&q, p), clones(&q, c))
    }
    #[inline]
    fn put(tx: &Self::Tx, value: u64) {
        tx.put(value).expect("queue closed during the benchmark");
    }
    #[inline]
    fn get(rx: &Self::Rx) -> u64 {
        rx.get().expect("queue closed during the benchmark")
    }
}

struct OurLifo;
impl Subject for OurLifo {
    type Tx = LifoQueue<u64>;
    type Rx = LifoQueue<u64>;
    fn ends(capacity: usize, p: usize, c: usize) -> (Vec<Self::Tx>, Vec<Self::Rx>) {
        let q = LifoQueue::bounded(capacity);
        (clones(&q, p), clones(&q, c))
    }
    #[inline]
    fn put(tx: &Self::Tx, value: u64) {
        tx.put(value).expect("queue closed during the benchmark");
    }
    #[inline]
    fn get(rx: &Self::Rx) -> u64 {
        rx.get().expect("queue closed during the benchmark")
    }
}

struct OurPriority;
impl Subject for OurPriority {
    type Tx = PriorityQueue<u64>;
    type Rx = PriorityQueue<u64>;
    fn ends(capacity: usize, p: usize, c: usize) -> (Vec<Self::Tx>, Vec<Self::Rx>) {
        let q = PriorityQueue::bounded(capacity);
        (clones(&q, p), clones(&q, c))
    }
    #[inline]
    fn put(tx: &Self::Tx, value: u64) {
        tx.put(value).expect("queue closed during the benchmark");
    }
    #[inline]
    fn get(rx: &Self::Rx) -> u64 {
        rx.get().expect("queue closed during the benchmark")
    }
}

struct Crossbeam;
impl Subject for Crossbeam {
    type Tx = crossbeam_channel::Sender<u64>;
    type Rx = crossbeam_channel::Receiver<u64>;
    fn ends(capacity: usize, p: usize, c: usize) -> (Vec<Self::Tx>, Vec<Self::Rx>) {
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        (clones(&tx, p), clones(&rx, c))
    }
    #[inline]
    fn put(tx: &Self::Tx, value: u64) {
        tx.send(value)
            .expect("receiver dropped during the benchmark");
    }
    #[inline]
    fn get(rx: &Self::Rx) -> u64 {
        rx.recv().expect("senders dropped during the benchmark")
    }
}

/// std's receiver cannot be cloned: one consumer owns it, several share it behind a `Mutex`
/// (the usual workaround, and a cost std users pay in that shape).
enum StdRx {
    Owned(mpsc::Receiver<u64>),
    Shared(Arc<Mutex<mpsc::Receiver<u64>>>),
}

struct StdSync;
impl Subject for StdSync {
    type Tx = mpsc::SyncSender<u64>;
    type Rx = StdRx;
    fn ends(capacity: usize, p: usize, c: usize) -> (Vec<Self::Tx>, Vec<Self::Rx>) {
        let (tx, rx) = mpsc::sync_channel(capacity);
        let rxs = if c == 1 {
            vec![StdRx::Owned(rx)]
        } else {
            let shared = Arc::new(Mutex::new(rx));
            (0..c).map(|_| StdRx::Shared(Arc::clone(&shared))).collect()
        };
        (clones(&tx, p), rxs)
    }
    #[inline]
    fn put(tx: &Self::Tx, value: u64) {
        tx.send(value)
            .expect("receiver dropped during the benchmark");
    }
    #[inline]
    fn get(rx: &Self::Rx) -> u64 {
        match rx {
            StdRx::Owned(rx) => rx.recv(),
            StdRx::Shared(rx) => rx.lock().expect("a consumer panicked").recv(),
        }
        .expect("senders dropped during the benchmark")
    }
}

/// The plain lock queue holding its items in `C`.
struct Plain<C>(std::marker::PhantomData<C>);
impl<C: Container + 'static> Subject for Plain<C> {
    type Tx = Arc<LockQueue<C>>;
    type Rx = Arc<LockQueue<C>>;
    fn ends(capacity: usize, p: usize, c: usize) -> (Vec<Self::Tx>, Vec<Self::Rx>) {
        let q = Arc::new(LockQueue::bounded(capacity));
        (clones(&q, p), clones(&q, c))
    }
    #[inline]
    fn put(tx: &Self::Tx, value: u64) {
        tx.put(value);
    }
    #[inline]
    fn get(rx: &Self::Rx) -> u64 {
        rx.get()
    }
}

/// Moves `total` items from `producers` threads to `consumers` threads through a fresh queue of
/// kind `S` and returns the time from the common start until the last thread finished.
///
/// `total` must be a multiple of both thread counts: each producer puts `total / producers`
/// items and each consumer takes exactly `total / consumers`, so nothing needs closing.
fn transfer<S: Subject>(producers: usize, consumers: usize, total: u64) -> Duration {
    let (txs, rxs) = S::ends(CAPACITY, producers, consumers);
    let start = Arc::new(Barrier::new(producers + consumers + 1));
    let per_producer = total / producers as u64;
    let per_consumer = total / consumers as u64;

    let mut putters = Vec::with_capacity(producers);
    for (p, tx) in txs.into_iter().enumerate() {
        let start = Arc::clone(&start);
        let first = p as u64 * per_producer;
        putters.push(thread::spawn(move || {
            start.wait();
            for i in first..first + per_producer {
                S::put(&tx, item(i));
            }
        }));
    }
    let mut getters = Vec::with_capacity(consumers);
    for rx in rxs {
        let start = Arc::clone(&start);
        getters.push(thread::spawn(move || {
            start.wait();
            let mut sum = 0u64;
            for _ in 0..per_consumer {
                sum = sum.wrapping_add(S::get(&rx));
            }
            sum
        }));
    }

    start.wait();
    let began = Instant::now();
    for h in putters {
        h.join().expect("producer panicked");
    }
    let sum = getters
        .into_iter()
        .map(|h| h.join().expect("consumer panicked"))
        .fold(0u64, u64::wrapping_add);
    let elapsed = began.elapsed();

    // Every item arrived exactly once (a loss would have hung a consumer; this catches a
    // corrupted or duplicated item).
    let expected = (0..total).map(item).fold(0u64, u64::wrapping_add);
    assert_eq!(sum, expected, "items were lost, duplicated or corrupted");
    elapsed
}

fn bench_transfer<S: Subject>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    producers: usize,
    consumers: usize,
) {
    group.bench_function(name, |b| {
        b.iter_custom(|iters| transfer::<S>(producers, consumers, iters * ITEMS))
    });
}

fn configure<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    group
}

fn fifo(c: &mut Criterion) {
    for (shape, p, n) in [("1p1c", 1, 1), ("4p4c", 4, 4)] {
        let mut group = configure(c, &format!("fifo_{shape}"));
        group.throughput(Throughput::Elements(ITEMS));
        bench_transfer::<OurFifo>(&mut group, "conveyor_Queue", p, n);
        bench_transfer::<Crossbeam>(&mut group, "crossbeam_bounded", p, n);
        bench_transfer::<StdSync>(&mut group, "std_sync_channel", p, n);
        bench_transfer::<Plain<VecDeque<u64>>>(&mut group, "mutex_vecdeque_condvar", p, n);
        group.finish();
    }
}

fn lifo(c: &mut Criterion) {
    for (shape, p, n) in [("1p1c", 1, 1), ("4p4c", 4, 4)] {
        let mut group = configure(c, &format!("lifo_{shape}"));
        group.throughput(Throughput::Elements(ITEMS));
        bench_transfer::<OurLifo>(&mut group, "conveyor_LifoQueue", p, n);
        bench_transfer::<Plain<Vec<u64>>>(&mut group, "mutex_vec_condvar", p, n);
        group.finish();
    }
}

fn priority(c: &mut Criterion) {
    for (shape, p, n) in [("1p1c", 1, 1), ("4p4c", 4, 4)] {
        let mut group = configure(c, &format!("priority_{shape}"));
        group.throughput(Throughput::Elements(ITEMS));
        bench_transfer::<OurPriority>(&mut group, "conveyor_PriorityQueue", p, n);
        bench_transfer::<Plain<BinaryHeap<Reverse<u64>>>>(
            &mut group,
            "mutex_binaryheap_condvar",
            p,
            n,
        );
        group.finish();
    }
}

/// Runs `rounds` round trips over two capacity-1 queues of kind `S`: this thread puts into
/// `ping` and waits on `pong`; an echo thread gets from `ping` and puts the value into `pong`.
/// Returns the time for all of them.
fn round_trips<S: Subject>(rounds: u64) -> Duration {
    let (mut ping_tx, mut ping_rx) = S::ends(1, 1, 1);
    let (mut pong_tx, mut pong_rx) = S::ends(1, 1, 1);
    let (ping_tx, ping_rx) = (ping_tx.remove(0), ping_rx.remove(0));
    let (pong_tx, pong_rx) = (pong_tx.remove(0), pong_rx.remove(0));
    let echo = thread::spawn(move || {
        for _ in 0..rounds {
            S::put(&pong_tx, S::get(&ping_rx));
        }
    });
    let began = Instant::now();
    for i in 0..rounds {
        S::put(&ping_tx, i);
        black_box(S::get(&pong_rx));
    }
    let elapsed = began.elapsed();
    echo.join().expect("echo thread panicked");
    elapsed
}

fn pingpong(c: &mut Criterion) {
    let mut group = configure(c, "pingpong");
    group.throughput(Throughput::Elements(1));
    group.bench_function("conveyor_Queue_cap1", |b| {
        b.iter_custom(round_trips::<OurFifo>)
    });
    group.bench_function("crossbeam_bounded_cap1", |b| {
        b.iter_custom(round_trips::<Crossbeam>)
    });
    group.finish();
}

/// Median of `xs` (sorted in place); `xs` is not empty.
fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// One target of the issue measured in alternating rounds: `ours` and `peer` each return a
/// figure for one slice of work (a rate, or a time when `lower_is_better`).
struct Pair {
    name: &'static str,
    ours: fn() -> f64,
    peer: fn() -> f64,
    unit: &'static str,
    lower_is_better: bool,
    /// The ratio the issue asks for: ours/peer at least this (rates) or at most this (times).
    target: f64,
}

/// Items per slice in the side-by-side rounds: big enough to dwarf the thread start-up.
const SLICE_ITEMS: u64 = 1_000_000;
/// Round trips per slice in the side-by-side ping-pong rounds.
const SLICE_TRIPS: u64 = 20_000;

fn rate<S: Subject>(p: usize, c: usize) -> f64 {
    SLICE_ITEMS as f64 / transfer::<S>(p, c, SLICE_ITEMS).as_secs_f64() / 1e6
}

fn trip<S: Subject>() -> f64 {
    round_trips::<S>(SLICE_TRIPS).as_secs_f64() / SLICE_TRIPS as f64 * 1e6
}

/// Runs every pair in `rounds` rounds, ours first in even rounds and the peer first in odd
/// ones, so that both see the same moments of a shared machine; prints the median of each
/// side and the median of the per-round ratios, and whether that meets the target.
fn side_by_side(rounds: usize) {
    let pairs = [
        Pair {
            name: "fifo 1p1c: Queue / crossbeam bounded",
            ours: || rate::<OurFifo>(1, 1),
            peer: || rate::<Crossbeam>(1, 1),
            unit: "M items/s",
            lower_is_better: false,
            target: 0.8,
        },
        Pair {
            name: "fifo 4p4c: Queue / crossbeam bounded",
            ours: || rate::<OurFifo>(4, 4),
            peer: || rate::<Crossbeam>(4, 4),
            unit: "M items/s",
            lower_is_better: false,
            target: 0.8,
        },
        Pair {
            name: "lifo 1p1c: LifoQueue / Mutex<Vec>",
            ours: || rate::<OurLifo>(1, 1),
            peer: || rate::<Plain<Vec<u64>>>(1, 1),
            unit: "M items/s",
            lower_is_better: false,
            target: 1.0,
        },
        Pair {
            name: "lifo 4p4c: LifoQueue / Mutex<Vec>",
            ours: || rate::<OurLifo>(4, 4),
            peer: || rate::<Plain<Vec<u64>>>(4, 4),
            unit: "M items/s",
            lower_is_better: false,
            target: 1.0,
        },
        Pair {
            name: "priority 1p1c: PriorityQueue / Mutex<BinaryHeap>",
            ours: || rate::<OurPriority>(1, 1),
            peer: || rate::<Plain<BinaryHeap<Reverse<u64>>>>(1, 1),
            unit: "M items/s",
            lower_is_better: false,
            target: 1.0,
        },
        Pair {
            name: "priority 4p4c: PriorityQueue / Mutex<BinaryHeap>",
            ours: || rate::<OurPriority>(4, 4),
            peer: || rate::<Plain<BinaryHeap<Reverse<u64>>>>(4, 4),
            unit: "M items/s",
            lower_is_better: false,
            target: 1.0,
        },
        Pair {
            name: "pingpong: Queue cap 1 / crossbeam bounded(1)",
            ours: trip::<OurFifo>,
            peer: trip::<Crossbeam>,
            unit: "us per round trip",
            lower_is_better: true,
            target: 1.5,
        },
    ];
    println!("\nside by side: {rounds} alternating rounds per pair, medians");
    // `CONVEYOR_PAIRS=priority` (a substring of the names) measures only some pairs.
    let only = std::env::var("CONVEYOR_PAIRS").unwrap_or_default();
    for pair in pairs.iter().filter(|p| p.name.contains(only.as_str())) {
        let (mut ours, mut peer, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            let (o, p) = if round % 2 == 0 {
                let o = (pair.ours)();
                (o, (pair.peer)())
            } else {
                let p = (pair.peer)();
                ((pair.ours)(), p)
            };
            ours.push(o);
            peer.push(p);
            ratio.push(o / p);
        }
        let r = median(&mut ratio);
        let met = if pair.lower_is_better {
            r <= pair.target
        } else {
            r >= pair.target
        };
        println!(
            "{:<50} ours {:>8.2} peer {:>8.2} {:<18} ratio {:>5.2}x (target {} {}x: {})",
            pair.name,
            median(&mut ours),
            median(&mut peer),
            pair.unit,
            r,
            if pair.lower_is_better { "<=" } else { ">=" },
            pair.target,
            if met { "met" } else { "NOT met" },
        );
    }
}

criterion_group!(benches, fifo, lifo, priority, pingpong);

fn main() {
    // A positional argument is criterion's filter; `side_by_side` selects the alternating pass
    // alone, any other filter the criterion groups alone, none both.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let only_side = filter.iter().any(|f| f == "side_by_side");
    if !only_side {
        benches();
        Criterion::default().configure_from_args().final_summary();
    }
    // `cargo test --benches` runs this binary without --bench: keep that quick.
    let bench_mode = std::env::args().any(|a| a == "--bench");
    if bench_mode && (filter.is_empty() || only_side) {
        let rounds = std::env::var("CONVEYOR_ROUNDS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(21);
        side_by_side(rounds);
    }
}
