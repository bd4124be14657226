//! The workloads, written once over [`Channel`]: every in-process transport runs this code.
//!
//! - [`throughput`]: `p` producers put `n` messages between them, `c` consumers get them; each
//!   consumer takes exactly `n / c`, so no sentinel and no shared counter is needed, and a LIFO
//!   or priority queue drains correctly. The consumers add up the sequence numbers and the total
//!   is checked, so a lost or duplicated message fails the run instead of flattering it.
//! - [`pingpong`]: one message goes to an echo and back, `rounds` times; each round trip is timed.
//! - [`joinable`]: a producer puts `n` messages, a consumer calls `task_done` after each, and the
//!   clock stops when `join` returns (Python's `queue.Queue`/`JoinableQueue` pattern).
//!
//! ```
//! use conveyor_bench::peers::CrossbeamChannel;
//! use conveyor_bench::workload::{throughput, Sample};
//!
//! let s = throughput(CrossbeamChannel::bounded(64), 2, 2, 64, 1000).unwrap();
//! assert!(matches!(s, Sample::Throughput { messages: 1000, .. }));
//! ```

use std::fmt;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use conveyor_core::{Channel, Joinable};
use serde::{Deserialize, Serialize};

use crate::payload::{Msg, Payload};
use crate::stats::percentile;

/// One benchmark workload: what is sent, by how many threads or processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Workload {
    /// `producers` put, `consumers` get, messages of `size` payload bytes.
    Throughput {
        /// Producer threads or processes.
        producers: usize,
        /// Consumer threads or processes.
        consumers: usize,
        /// Payload bytes per message.
        size: usize,
    },
    /// One message to an echo and back; round-trip latency.
    PingPong {
        /// Payload bytes per message.
        size: usize,
    },
    /// A `task_done` per item taken, then `join` (transports implementing `Joinable`).
    Joinable {
        /// Payload bytes per message.
        size: usize,
    },
    /// Pools: `submitters` threads submit empty tasks in batches and wait for their results
    /// (see [`crate::pool`]).
    PoolSubmit {
        /// Threads submitting.
        submitters: usize,
    },
    /// Pools: `map` over [`crate::pool::MAP_TASKS`] small tasks.
    PoolMap,
}

/// The payload sizes of the throughput workloads: 8 B, 64 B, 4 KiB, 1 MiB.
pub const SIZES: [usize; 4] = [8, 64, 4096, 1 << 20];

impl Workload {
    /// Every workload, in report order.
    pub fn all() -> Vec<Workload> {
        let mut v = Vec::new();
        for (p, c) in [(1, 1), (4, 4)] {
            for size in SIZES {
                v.push(Workload::Throughput {
                    producers: p,
                    consumers: c,
                    size,
                });
            }
        }
        v.push(Workload::PingPong { size: 8 });
        v.push(Workload::Joinable { size: 64 });
        v.push(Workload::PoolSubmit { submitters: 1 });
        v.push(Workload::PoolSubmit { submitters: 4 });
        v.push(Workload::PoolMap);
        v
    }

    /// Whether this is a pool workload (run by pools), not a queue one (run by transports).
    pub fn is_pool(&self) -> bool {
        matches!(self, Workload::PoolSubmit { .. } | Workload::PoolMap)
    }

    /// A short stable id, used by `--filter` and in results.json: `throughput-1x1-64B`.
    pub fn id(&self) -> String {
        match *self {
            Workload::Throughput {
                producers,
                consumers,
                size,
            } => format!("throughput-{producers}x{consumers}-{}", size_id(size)),
            Workload::PingPong { size } => format!("pingpong-{}", size_id(size)),
            Workload::Joinable { size } => format!("joinable-{}", size_id(size)),
            Workload::PoolSubmit { submitters } => format!("pool-submit-{submitters}"),
            Workload::PoolMap => "pool-map".to_string(),
        }
    }

    /// A heading for the table: `throughput, 1 producer / 1 consumer, 64 B`.
    pub fn title(&self) -> String {
        match *self {
            Workload::Throughput {
                producers,
                consumers,
                size,
            } => format!(
                "throughput, {producers} producer{} / {consumers} consumer{}, {} messages",
                if producers == 1 { "" } else { "s" },
                if consumers == 1 { "" } else { "s" },
                size_label(size)
            ),
            Workload::PingPong { size } => {
                format!("ping-pong round trip, {} messages", size_label(size))
            }
            Workload::Joinable { size } => format!(
                "joinable: put, get + task_done per item, join ({} messages)",
                size_label(size)
            ),
            Workload::PoolSubmit { submitters } => format!(
                "pool: submit + result of empty tasks, {submitters} submitter{}, batches of {}",
                if submitters == 1 { "" } else { "s" },
                crate::pool::BATCH
            ),
            Workload::PoolMap => format!(
                "pool: map over {} small tasks, results in order",
                crate::pool::MAP_TASKS
            ),
        }
    }

    /// Payload bytes per message.
    pub fn size(&self) -> usize {
        match *self {
            Workload::Throughput { size, .. }
            | Workload::PingPong { size }
            | Workload::Joinable { size } => size,
            Workload::PoolSubmit { .. } | Workload::PoolMap => 0,
        }
    }

    /// The queue bound used for this workload (Python's `maxsize`): 1024 items, 16 at 1 MiB.
    pub fn capacity(&self) -> usize {
        if self.is_pool() {
            crate::pool::BATCH
        } else if self.size() >= 1 << 20 {
            16
        } else {
            1024
        }
    }

    /// Whether the figure is a latency (lower is better) rather than a rate.
    pub fn is_latency(&self) -> bool {
        matches!(self, Workload::PingPong { .. })
    }

    /// The message count (or round count) is rounded up to a multiple of this.
    pub fn granule(&self) -> usize {
        match *self {
            Workload::Throughput {
                producers,
                consumers,
                ..
            } => lcm(producers, consumers),
            Workload::PoolSubmit { submitters } => submitters.max(1) * crate::pool::BATCH,
            _ => 1,
        }
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn lcm(a: usize, b: usize) -> usize {
    a / gcd(a, b) * b
}

/// `8B`, `64B`, `4KiB`, `1MiB`.
pub fn size_id(size: usize) -> String {
    size_label(size).replace(' ', "")
}

/// `8 B`, `64 B`, `4 KiB`, `1 MiB`.
pub fn size_label(size: usize) -> String {
    if size >= 1 << 20 && size.is_multiple_of(1 << 20) {
        format!("{} MiB", size >> 20)
    } else if size >= 1024 && size.is_multiple_of(1024) {
        format!("{} KiB", size >> 10)
    } else {
        format!("{size} B")
    }
}

/// The result of one run of one workload over one transport.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Sample {
    /// `messages` of `size` bytes went through in `elapsed_ns`.
    Throughput {
        /// Messages delivered.
        messages: u64,
        /// Payload bytes per message.
        size: u64,
        /// Wall time from start to the last message taken (or `join` returning).
        elapsed_ns: u64,
    },
    /// Round-trip latency over `rounds` ping-pongs.
    Latency {
        /// Round trips timed.
        rounds: u64,
        /// Their median, in nanoseconds.
        median_ns: f64,
        /// Their 99th percentile, in nanoseconds.
        p99_ns: f64,
    },
}

impl Sample {
    /// Messages per second (throughput samples).
    pub fn msgs_per_s(&self) -> Option<f64> {
        match *self {
            Sample::Throughput {
                messages,
                elapsed_ns,
                ..
            } => Some(messages as f64 * 1e9 / elapsed_ns.max(1) as f64),
            Sample::Latency { .. } => None,
        }
    }

    /// Payload megabytes (10^6 bytes) per second (throughput samples).
    pub fn mb_per_s(&self) -> Option<f64> {
        match *self {
            Sample::Throughput { size, .. } => self.msgs_per_s().map(|r| r * size as f64 / 1e6),
            Sample::Latency { .. } => None,
        }
    }

    /// How many messages (or round trips) the sample is worth, for calibration.
    pub fn count(&self) -> u64 {
        match *self {
            Sample::Throughput { messages, .. } => messages,
            Sample::Latency { rounds, .. } => rounds,
        }
    }

    /// Seconds the sample took, roughly (for calibration).
    pub fn seconds(&self) -> f64 {
        match *self {
            Sample::Throughput { elapsed_ns, .. } => elapsed_ns as f64 / 1e9,
            Sample::Latency {
                rounds, median_ns, ..
            } => rounds as f64 * median_ns / 1e9,
        }
    }
}

/// Why a run failed: a transport error, a lost message, a crashed child, a timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunError(pub String);

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RunError {}

impl RunError {
    /// An error with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        RunError(message.into())
    }
}

fn join_thread<R>(h: thread::JoinHandle<Result<R, RunError>>) -> Result<R, RunError> {
    h.join()
        .unwrap_or_else(|_| Err(RunError::new("a benchmark thread panicked")))
}

/// Rounds `count` up to a positive multiple of `granule`.
pub fn round_count(count: usize, granule: usize) -> usize {
    let g = granule.max(1);
    count.max(1).div_ceil(g) * g
}

/// Runs `producers` producers and `consumers` consumers over `chan` (and its clones) until
/// `count` messages of `size` bytes went through (`count` is rounded up to a multiple of both).
pub fn throughput<C>(
    chan: C,
    producers: usize,
    consumers: usize,
    size: usize,
    count: usize,
) -> Result<Sample, RunError>
where
    C: Channel<Msg> + Clone + Send + 'static,
{
    let (producers, consumers) = (producers.max(1), consumers.max(1));
    let count = round_count(count, lcm(producers, consumers));
    let payload = Payload::filled(size);
    // The clock starts when the first thread leaves the barrier and stops when the last
    // consumer takes its last message, each read by the thread itself: on an oversubscribed
    // machine the main thread may not run again until the work is long done.
    let start = Arc::new(Barrier::new(producers + consumers));
    let per_producer = count / producers;
    let per_consumer = count / consumers;

    let mut prod = Vec::new();
    for p in 0..producers {
        let (chan, start, payload) = (chan.clone(), start.clone(), payload.clone());
        prod.push(thread::spawn(move || -> Result<Instant, RunError> {
            start.wait();
            let t0 = Instant::now();
            produce(
                &chan,
                (p * per_producer) as u64,
                per_producer as u64,
                &payload,
            )?;
            Ok(t0)
        }));
    }
    let mut cons = Vec::new();
    for _ in 0..consumers {
        let (chan, start) = (chan.clone(), start.clone());
        cons.push(thread::spawn(
            move || -> Result<(u64, Instant, Instant), RunError> {
                start.wait();
                let t0 = Instant::now();
                let sum = consume(&chan, per_consumer as u64, size)?;
                Ok((sum, t0, Instant::now()))
            },
        ));
    }
    drop(chan);
    let taken: Vec<_> = cons.into_iter().map(join_thread).collect();
    // A producer's error explains a consumer's, so it is reported first.
    let mut first: Option<Instant> = None;
    for h in prod {
        let t = join_thread(h)?;
        first = Some(first.map_or(t, |f| f.min(t)));
    }
    let (mut sum, mut last) = (0u64, None::<Instant>);
    for t in taken {
        let (s, t0, t1) = t?;
        sum = sum.wrapping_add(s);
        first = Some(first.map_or(t0, |f| f.min(t0)));
        last = Some(last.map_or(t1, |l| l.max(t1)));
    }
    check_sum(sum, count)?;
    let elapsed = match (first, last) {
        (Some(a), Some(b)) => b.saturating_duration_since(a),
        _ => Duration::ZERO,
    };
    Ok(Sample::Throughput {
        messages: count as u64,
        size: size as u64,
        elapsed_ns: elapsed.as_nanos() as u64,
    })
}

/// A producer's loop: puts messages `base..base + n` carrying `payload`. On a failed put it
/// shuts the channel down, so that consumers waiting for the missing items wake up.
pub fn produce<C: Channel<Msg>>(
    chan: &C,
    base: u64,
    n: u64,
    payload: &Payload,
) -> Result<(), RunError> {
    for i in base..base + n {
        if let Err(e) = chan.put(Msg::new(i, payload.clone())) {
            // Let the consumers end too; the put's failure is the one to report.
            let shut = chan
                .shutdown(false)
                .err()
                .map(|s| format!(" (and the shutdown that should end the consumers: {s})"))
                .unwrap_or_default();
            return Err(RunError::new(format!("put failed: {e}{shut}")));
        }
    }
    Ok(())
}

/// A consumer's loop: takes `n` messages, checks each payload's size, returns the sum of
/// their sequence numbers.
pub fn consume<C: Channel<Msg>>(chan: &C, n: u64, size: usize) -> Result<u64, RunError> {
    let mut sum = 0u64;
    for _ in 0..n {
        let m = chan
            .get()
            .map_err(|e| RunError::new(format!("get failed: {e}")))?;
        if m.data.len() != size {
            return Err(RunError::new(format!(
                "got a {}-byte payload, expected {size}",
                m.data.len()
            )));
        }
        sum = sum.wrapping_add(m.seq);
    }
    Ok(sum)
}

/// The joinable consumer's loop: takes `n` messages, calling `task_done` after each; returns
/// the sum of their sequence numbers.
pub fn consume_task_done<C: Channel<Msg> + Joinable>(chan: &C, n: u64) -> Result<u64, RunError> {
    let mut sum = 0u64;
    for _ in 0..n {
        let m = chan
            .get()
            .map_err(|e| RunError::new(format!("get failed: {e}")))?;
        sum = sum.wrapping_add(m.seq);
        chan.task_done()
            .map_err(|e| RunError::new(format!("task_done failed: {e}")))?;
    }
    Ok(sum)
}

/// The echo's loop: sends back each of `n` messages.
pub fn echo<C: Channel<Msg>>(end: &C, n: u64) -> Result<(), RunError> {
    for _ in 0..n {
        let m = end
            .get()
            .map_err(|e| RunError::new(format!("echo get failed: {e}")))?;
        end.put(m)
            .map_err(|e| RunError::new(format!("echo put failed: {e}")))?;
    }
    Ok(())
}

/// The round trips the echo must answer for `rounds` timed ones (warm-up included).
pub fn pingpong_total(rounds: usize) -> u64 {
    (rounds.max(1) + PINGPONG_WARMUP) as u64
}

/// The pinging side: sends `pingpong_total(rounds)` messages of `size` bytes through
/// `main_end`, each after the previous came back, and times the last `rounds`.
pub fn ping<C: Channel<Msg>>(main_end: &C, size: usize, rounds: usize) -> Result<Sample, RunError> {
    let total = pingpong_total(rounds);
    let payload = Payload::filled(size);
    let mut samples = Vec::with_capacity(rounds);
    for i in 0..total {
        let t0 = Instant::now();
        main_end
            .put(Msg::new(i, payload.clone()))
            .map_err(|e| RunError::new(format!("ping put failed: {e}")))?;
        let back = main_end
            .get()
            .map_err(|e| RunError::new(format!("pong get failed: {e}")))?;
        let dt = t0.elapsed();
        if back.seq != i {
            return Err(RunError::new(format!(
                "round {i} came back as {}",
                back.seq
            )));
        }
        if i >= PINGPONG_WARMUP as u64 {
            samples.push(dt.as_nanos() as f64);
        }
    }
    Ok(latency_sample(samples))
}

/// Checks that the sequence numbers taken add up to `0 + 1 + ... + count-1`.
pub fn check_sum(sum: u64, count: usize) -> Result<(), RunError> {
    let n = count as u64;
    let want = n.wrapping_mul(n.wrapping_sub(1)) / 2;
    if sum == want {
        Ok(())
    } else {
        Err(RunError::new(format!(
            "messages were lost or duplicated: sequence numbers add up to {sum}, expected {want}"
        )))
    }
}

/// Warm-up round trips before timing starts.
const PINGPONG_WARMUP: usize = 50;

/// Sends one message of `size` bytes from `main_end` to an echo thread holding `echo_end` and
/// back, `rounds` times, timing each round trip.
pub fn pingpong<A, B>(
    main_end: A,
    echo_end: B,
    size: usize,
    rounds: usize,
) -> Result<Sample, RunError>
where
    A: Channel<Msg>,
    B: Channel<Msg> + Send + 'static,
{
    let total = pingpong_total(rounds);
    let echo = thread::spawn(move || echo(&echo_end, total));
    let sample = ping(&main_end, size, rounds);
    if let Err(e) = &sample {
        // Unblock the echo, which waits for a message that will not come.
        if let Err(shut) = main_end.shutdown(false) {
            return Err(RunError::new(format!(
                "{e}; and the echo could not be ended ({shut})"
            )));
        }
    }
    let echoed = join_thread(echo);
    let sample = sample?;
    echoed?;
    Ok(sample)
}

/// Summarises round-trip times (nanoseconds) as a latency sample.
pub fn latency_sample(mut samples: Vec<f64>) -> Sample {
    samples.sort_by(f64::total_cmp);
    Sample::Latency {
        rounds: samples.len() as u64,
        median_ns: percentile(&samples, 50.0),
        p99_ns: percentile(&samples, 99.0),
    }
}

/// A producer puts `count` messages; a consumer gets each and calls `task_done`; the clock
/// stops when `join` returns after the producer has finished.
pub fn joinable<C>(queue: C, size: usize, count: usize) -> Result<Sample, RunError>
where
    C: Channel<Msg> + Joinable + Clone + Send + 'static,
{
    let count = count.max(1);
    let payload = Payload::filled(size);
    let start = Arc::new(Barrier::new(3));
    let producer = {
        let (q, start) = (queue.clone(), start.clone());
        thread::spawn(move || -> Result<Instant, RunError> {
            start.wait();
            let t0 = Instant::now();
            produce(&q, 0, count as u64, &payload)?;
            Ok(t0)
        })
    };
    let consumer = {
        let (q, start) = (queue.clone(), start.clone());
        thread::spawn(move || -> Result<u64, RunError> {
            start.wait();
            consume_task_done(&q, count as u64)
        })
    };
    start.wait();
    // The producer reads the start time itself (the main thread may be descheduled).
    let t0 = join_thread(producer)?;
    match queue.join_timeout(Duration::from_secs(120)) {
        Ok(true) => {}
        Ok(false) => return Err(RunError::new("join did not return within 120 s")),
        Err(e) => return Err(RunError::new(format!("join failed: {e}"))),
    }
    let elapsed = t0.elapsed();
    check_sum(join_thread(consumer)?, count)?;
    Ok(Sample::Throughput {
        messages: count as u64,
        size: size as u64,
        elapsed_ns: elapsed.as_nanos() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::{CrossbeamChannel, Duplex, FlumeChannel, MpscChannel};

    #[test]
    fn every_workload_has_a_unique_id() {
        let ids: std::collections::HashSet<String> =
            Workload::all().iter().map(Workload::id).collect();
        assert_eq!(ids.len(), Workload::all().len());
        assert!(ids.contains("throughput-4x4-1MiB"));
        assert!(ids.contains("pingpong-8B"));
    }

    #[test]
    fn throughput_delivers_every_message_once() {
        for (p, c) in [(1, 1), (4, 4), (3, 2)] {
            let s = throughput(MpscChannel::bounded(8), p, c, 16, 601).unwrap();
            let Sample::Throughput { messages, .. } = s else {
                panic!("not a throughput sample")
            };
            assert_eq!(messages as usize % (p * c / gcd(p, c)), 0);
            assert!(messages >= 601);
            assert!(s.msgs_per_s().unwrap() > 0.0);
        }
    }

    #[test]
    fn lost_messages_are_detected() {
        assert!(check_sum(3, 3).is_ok());
        assert!(check_sum(2, 3).is_err());
    }

    #[test]
    fn pingpong_times_every_round() {
        let ab = FlumeChannel::bounded(1);
        let ba = FlumeChannel::bounded(1);
        let s = pingpong(
            Duplex::new(ab.clone(), ba.clone()),
            Duplex::new(ba, ab),
            8,
            200,
        )
        .unwrap();
        let Sample::Latency {
            rounds,
            median_ns,
            p99_ns,
        } = s
        else {
            panic!("not a latency sample")
        };
        assert_eq!(rounds, 200);
        assert!(median_ns > 0.0 && p99_ns >= median_ns);
    }

    #[test]
    fn joinable_waits_for_every_task_done() {
        let s = joinable(conveyor_thread::Queue::bounded(16), 8, 500).unwrap();
        assert_eq!(s.count(), 500);
        assert!(s.msgs_per_s().unwrap() > 0.0);
    }

    #[test]
    fn conveyor_queues_run_every_workload_shape() {
        use conveyor_thread::{LifoQueue, PriorityQueue};
        for (p, c) in [(1, 1), (4, 4)] {
            assert_eq!(
                throughput(LifoQueue::bounded(4), p, c, 8, 400)
                    .unwrap()
                    .count(),
                400
            );
            assert_eq!(
                throughput(PriorityQueue::bounded(4), p, c, 8, 400)
                    .unwrap()
                    .count(),
                400
            );
        }
    }

    #[test]
    fn a_failing_transport_fails_the_run() {
        let ch = CrossbeamChannel::bounded(4);
        ch.shutdown(false).unwrap();
        let err = throughput(ch, 1, 1, 8, 10).unwrap_err();
        assert!(err.to_string().contains("put failed"), "{err}");
    }

    #[test]
    fn sizes_have_labels() {
        assert_eq!(size_label(8), "8 B");
        assert_eq!(size_label(4096), "4 KiB");
        assert_eq!(size_id(1 << 20), "1MiB");
        assert_eq!(round_count(601, 4), 604);
    }
}
