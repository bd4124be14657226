//! `Value` and `Array` in shared memory against what a user would otherwise have.
//!
//! - `value_fetch_add_2proc`: two processes increment one shared `Value<u64>` at once, each
//!   `iters` times: conveyor's `fetch_add` (one atomic instruction, no lock), conveyor's
//!   `get_lock()` + get + set (the lock path, for reference), and Python's
//!   `multiprocessing.Value('Q')` with `with v.get_lock(): v.value += 1`, the fix seed 004
//!   teaches (`benches/python_value.py`, forked once and driven over its stdin; skipped with
//!   a message if `python3` is absent). The time is per iteration, that is per pair of
//!   increments made at once. Target: `fetch_add` at least 100x Python.
//! - `array_copy_1MiB`: 1 MiB copied into an `Array<u8>` and back out (`write` + `read`, each
//!   one `memcpy` under the lock) against a plain `memcpy` of the same bytes between two heap
//!   buffers. Target: at least 0.8x.
//!
//! After criterion's groups, a side-by-side pass alternates short slices of each peer
//! (`SHM_VALUE_ROUNDS` rounds, default 9; 3 when `CI` is set) and prints medians and ratios
//! from that one run, with the load average.
//!
//! ```text
//! cargo bench -p conveyor --no-default-features --features shm,process --bench shared_memory
//! ```
//!
//! criterion_main! would generate a `main` that runs before anything else; the child process
//! must branch into its entry point first, so this bench writes its own `main`.

use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use conveyor::process::{self as process, entry, Child, Process};
use conveyor::shm::{Array, ShmQueue, Value};
use conveyor::Channel;
use criterion::{Criterion, Throughput};

#[path = "common/side.rs"]
mod side;

use side::alternate;

/// How the two processes increment.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
enum Way {
    Atomic,
    Locked,
}

fn increment(v: &Value<u64>, way: Way, n: u64) {
    match way {
        Way::Atomic => {
            for _ in 0..n {
                v.fetch_add(1);
            }
        }
        Way::Locked => {
            for _ in 0..n {
                let mut g = v.get_lock().unwrap();
                let x = g.get();
                g.set(x + 1);
            }
        }
    }
}

/// The child: waits for a count (0: exit), increments that many times, acknowledges.
fn incrementer((v, way, go, done): (Value<u64>, Way, ShmQueue<u64>, ShmQueue<()>)) {
    while let Ok(n) = go.get() {
        if n == 0 {
            return;
        }
        increment(&v, way, n);
        done.put(()).unwrap();
    }
}

/// Two processes incrementing one value: this one and a child.
struct Pair {
    v: Value<u64>,
    way: Way,
    go: ShmQueue<u64>,
    done: ShmQueue<()>,
    child: Option<Child>,
}

impl Pair {
    fn start(way: Way) -> Pair {
        let v = Value::new(0u64).unwrap();
        let go: ShmQueue<u64> = ShmQueue::new().unwrap();
        let done: ShmQueue<()> = ShmQueue::new().unwrap();
        let child = Process::new("incrementer", (&v, way, &go, &done))
            .start()
            .unwrap();
        Pair {
            v,
            way,
            go,
            done,
            child: Some(child),
        }
    }

    /// Both processes increment `n` times; the wall time, checked for lost updates.
    fn run(&self, n: u64) -> Duration {
        self.v.set(0).unwrap();
        let t0 = Instant::now();
        self.go.put(n).unwrap();
        increment(&self.v, self.way, n);
        self.done.get().unwrap();
        let t = t0.elapsed();
        assert_eq!(self.v.get().unwrap(), 2 * n, "lost updates");
        t
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let _ = self.go.put(0);
        if let Some(c) = self.child.take() {
            let _ = c.join();
        }
    }
}

/// Python's pair of processes on a `multiprocessing.Value`, started once.
struct Python {
    child: std::process::Child,
    out: BufReader<std::process::ChildStdout>,
}

impl Python {
    fn start() -> Option<Python> {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/python_value.py");
        let exe = std::env::var("CONVEYOR_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
        match Command::new(&exe)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
        {
            Ok(mut child) => {
                let out = BufReader::new(child.stdout.take()?);
                Some(Python { child, out })
            }
            Err(e) => {
                println!("{exe} not found ({e}): the Python peer is skipped");
                None
            }
        }
    }

    /// Both Python processes increment `n` times; the wall time they report.
    fn run(&mut self, n: u64) -> Duration {
        let stdin = self.child.stdin.as_mut().expect("python's stdin");
        writeln!(stdin, "fetch_add {n}").unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        self.out.read_line(&mut line).unwrap();
        let ns: u64 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("python answered {line:?} (see its stderr)"));
        Duration::from_nanos(ns)
    }
}

impl Drop for Python {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

fn value_fetch_add(c: &mut Criterion, atomic: &Pair, locked: &Pair, python: &mut Option<Python>) {
    let mut g = c.benchmark_group("value_fetch_add_2proc");
    g.throughput(Throughput::Elements(2));
    g.bench_function("conveyor-fetch_add", |b| b.iter_custom(|n| atomic.run(n)));
    g.bench_function("conveyor-get_lock", |b| b.iter_custom(|n| locked.run(n)));
    if let Some(py) = python.as_mut() {
        g.bench_function("python-Value-get_lock", |b| b.iter_custom(|n| py.run(n)));
    }
    g.finish();
}

const MIB: usize = 1 << 20;

/// 1 MiB into the array and back out.
fn array_round(a: &Array<u8>, src: &[u8], dst: &mut [u8]) {
    a.write(0, black_box(src)).unwrap();
    a.read(0, black_box(&mut *dst)).unwrap();
    black_box(dst);
}

/// The same bytes with two plain `memcpy`s between heap buffers.
fn memcpy_round(mid: &mut [u8], src: &[u8], dst: &mut [u8]) {
    black_box(&mut *mid).copy_from_slice(black_box(src));
    black_box(&mut *dst).copy_from_slice(black_box(&*mid));
    black_box(dst);
}

fn array_copy(c: &mut Criterion) {
    let a = Array::<u8>::zeroed(MIB).unwrap();
    let src = vec![0xA5u8; MIB];
    let mut mid = vec![1u8; MIB];
    let mut dst = vec![2u8; MIB];
    let mut g = c.benchmark_group("array_copy_1MiB");
    g.throughput(Throughput::Bytes(2 * MIB as u64));
    g.bench_function("conveyor-Array-write-read", |b| {
        b.iter(|| array_round(&a, &src, &mut dst))
    });
    g.bench_function("memcpy", |b| {
        b.iter(|| memcpy_round(&mut mid, &src, &mut dst))
    });
    g.finish();
    assert!(dst.iter().all(|&b| b == 0xA5));
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// Alternating slices of each peer; medians and ratios from this one run.
fn side_by_side(atomic: &Pair, locked: &Pair, python: &mut Option<Python>) {
    let default = if std::env::var_os("CI").is_some() {
        3
    } else {
        9
    };
    let rounds: usize = std::env::var("SHM_VALUE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    println!(
        "\nside by side, {rounds} alternating rounds, medians; load {}",
        loadavg()
    );
    // ns per iteration (a pair of increments made at once).
    let peers = if python.is_some() { 3 } else { 2 };
    let m = alternate(rounds, peers, |k| {
        let (n, t) = match k {
            0 => (2_000_000, atomic.run(2_000_000)),
            1 => (200_000, locked.run(200_000)),
            _ => {
                let n = 20_000;
                (n, python.as_mut().map(|p| p.run(n)).unwrap_or_default())
            }
        };
        t.as_nanos() as f64 / n as f64
    });
    print!(
        "value fetch_add, 2 processes, ns per pair of increments: conveyor fetch_add {:.1}  conveyor get_lock {:.1}",
        m[0], m[1]
    );
    if peers == 3 {
        println!(
            "  python Value get_lock {:.1}  | fetch_add/python {:.0}x  get_lock/python {:.1}x  (load {})",
            m[2],
            m[2] / m[0],
            m[2] / m[1],
            loadavg()
        );
    } else {
        println!("  (python skipped)  (load {})", loadavg());
    }

    let a = Array::<u8>::zeroed(MIB).unwrap();
    let src = vec![0x5Au8; MIB];
    let mut mid = vec![1u8; MIB];
    let mut dst = vec![2u8; MIB];
    const REPS: u32 = 200;
    let m = alternate(rounds, 2, |k| {
        let t0 = Instant::now();
        for _ in 0..REPS {
            if k == 0 {
                array_round(&a, &src, &mut dst);
            } else {
                memcpy_round(&mut mid, &src, &mut dst);
            }
        }
        (2 * MIB as u64 * REPS as u64) as f64 / t0.elapsed().as_secs_f64() / 1e9
    });
    println!(
        "array 1 MiB in+out, GB/s: conveyor Array {:.2}  memcpy {:.2}  | Array/memcpy {:.2}x  (load {})",
        m[0],
        m[1],
        m[0] / m[1],
        loadavg()
    );
}

/// Whether the side-by-side pass runs: under `cargo bench`, with no filter or one that
/// matches it.
fn wants_side_by_side() -> bool {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        return false;
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    filters.is_empty() || filters.iter().any(|f| "side_by_side".contains(f.as_str()))
}

fn main() {
    let _children = process::init(&[entry!(incrementer)]);
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let atomic = Pair::start(Way::Atomic);
    let locked = Pair::start(Way::Locked);
    let mut python = Python::start();
    value_fetch_add(&mut c, &atomic, &locked, &mut python);
    array_copy(&mut c);
    c.final_summary();
    if wants_side_by_side() {
        side_by_side(&atomic, &locked, &mut python);
    }
}
