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
//! Run: `cargo bench -p conveyor --bench thread_queues` (add a group name to filter, for example
//! `-- fifo_1p1c`). On two shared cores the whole file takes about a minute.
//!
//! Read the medians (criterion writes them to
//! `target/criterion/<group>/<benchmark>/new/estimates.json`) and compare within a group of one
//! run. The benchmarks of a group run one after another, not interleaved, so on a small machine
//! shared with other work a ratio can move by 1.5–2x from one run to the next: run it twice
//! and quote both.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::hint::black_box;
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use conveyor::thread::{LifoQueue, PriorityQueue, Queue};
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};

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

criterion_group!(benches, fifo, lifo, priority, pingpong);
criterion_main!(benches);
