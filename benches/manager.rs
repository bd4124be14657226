//! The manager's cost per operation, each a round trip to a server in another process (as
//! Python's `Manager()` runs): dict set+get with 1 and 4 clients, queue put+get, lock
//! acquire+release, and a pipelined batch of dict operations.
//!
//! After criterion's groups it measures each workload again in short slices, alternating with
//! Python's `multiprocessing.Manager` doing the same (`crates/conveyor-manager/benches/
//! python_manager.py`, skipped with a message if `python3` is absent), so both see the same
//! moments of a noisy machine, and prints the medians side by side with their ratio. Targets: 4x Python with one client, 5x with four, and 1 M dict
//! operations/s for a pipelined batch.
//!
//! ```text
//! cargo bench -p conveyor --no-default-features --features manager,process --bench manager
//! ```
//!
//! criterion_main! would generate a `main` that runs before anything else; the server's child
//! process must branch into its entry point first, so this bench writes its own `main`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use conveyor::manager::{DictProxy, Manager, ManagerConnection, ManagerGuard};
use conveyor::process;
use conveyor::Channel;
use criterion::{Criterion, Throughput};

const BATCH: usize = 10_000;

fn dict_pair(d: &DictProxy<u32, u64>, i: u32) {
    d.set(&(i & 1023), &u64::from(i)).unwrap();
    d.get(&(i & 1023)).unwrap();
}

/// `iters` set+get pairs on each of `clients` connections at once; the wall time.
fn dict_clients(m: &ManagerGuard, clients: usize, iters: u64) -> Duration {
    let proxies: Vec<DictProxy<u32, u64>> = (0..clients)
        .map(|_| {
            let c: ManagerConnection = m.connect().unwrap();
            c.dict("bench").unwrap()
        })
        .collect();
    let start = Barrier::new(clients + 1);
    thread::scope(|s| {
        for d in &proxies {
            let start = &start;
            s.spawn(move || {
                start.wait();
                for i in 0..iters {
                    dict_pair(d, i as u32);
                }
            });
        }
        start.wait();
        let t0 = Instant::now();
        // The scope joins every client before returning.
        t0
    })
    .elapsed()
}

fn batch_run(m: &ManagerGuard, d: &DictProxy<u32, u64>) {
    let mut b = m.batch();
    for i in 0..(BATCH / 2) as u32 {
        b.dict_set(d, &i, &u64::from(i)).unwrap();
        b.dict_get(d, &i).unwrap();
    }
    let r = b.run().unwrap();
    assert_eq!(r.errors().count(), 0);
}

fn benches(c: &mut Criterion, m: &ManagerGuard) {
    let d = m.dict::<u32, u64>("bench").unwrap();
    let q = m.queue::<u64>("bench-q", None).unwrap();
    let lock = m.lock("bench-lock").unwrap();

    let mut g = c.benchmark_group("manager_dict_set_get");
    g.throughput(Throughput::Elements(2));
    let mut i = 0u32;
    g.bench_function("1_client", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            dict_pair(&d, i)
        })
    });
    g.throughput(Throughput::Elements(8));
    g.bench_function("4_clients", |b| {
        b.iter_custom(|iters| dict_clients(m, 4, iters))
    });
    g.finish();

    let mut g = c.benchmark_group("manager_queue");
    g.throughput(Throughput::Elements(1));
    g.bench_function("put_get", |b| {
        b.iter(|| {
            q.put(7).unwrap();
            q.get().unwrap()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("manager_lock");
    g.throughput(Throughput::Elements(1));
    g.bench_function("acquire_release", |b| {
        b.iter(|| drop(lock.acquire().unwrap()))
    });
    g.finish();

    let mut g = c.benchmark_group("manager_pipelined");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("dict_batch_10k", |b| b.iter(|| batch_run(m, &d)));
    g.finish();
}

/// Operations per second of `step` (doing `ops` operations) over `secs`.
fn rate(secs: f64, ops: u64, mut step: impl FnMut(u64)) -> f64 {
    let t0 = Instant::now();
    let mut n = 0u64;
    while t0.elapsed().as_secs_f64() < secs {
        for _ in 0..20 {
            step(n);
            n += 1;
        }
    }
    (n * ops) as f64 / t0.elapsed().as_secs_f64()
}

/// Dict operations per second of `clients` connections working at once for `secs`.
fn rate_clients(m: &ManagerGuard, clients: usize, secs: f64) -> f64 {
    let proxies: Vec<DictProxy<u32, u64>> = (0..clients)
        .map(|_| m.connect().unwrap().dict("bench").unwrap())
        .collect();
    let start = Barrier::new(clients);
    thread::scope(|s| {
        let hs: Vec<_> = proxies
            .iter()
            .map(|d| {
                let start = &start;
                s.spawn(move || {
                    start.wait();
                    rate(secs, 2, |i| dict_pair(d, i as u32))
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    })
}

/// Python's manager, started once and asked for one measurement at a time.
struct Python {
    child: std::process::Child,
    out: BufReader<std::process::ChildStdout>,
}

impl Python {
    fn start() -> Option<Python> {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/crates/conveyor-manager/benches/python_manager.py"
        );
        match Command::new("python3")
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
                println!("python3 not found ({e}): the Python column is skipped");
                None
            }
        }
    }

    fn measure(&mut self, name: &str, secs: f64) -> Option<f64> {
        let stdin = self.child.stdin.as_mut()?;
        writeln!(stdin, "{name} {secs}").ok()?;
        stdin.flush().ok()?;
        let mut line = String::new();
        self.out.read_line(&mut line).ok()?;
        line.trim().parse().ok()
    }
}

impl Drop for Python {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Each workload measured in short slices, ours and Python's alternating, so both see the
/// same moments of a noisy machine; medians and their ratio.
fn comparison(m: &ManagerGuard) {
    const ROUNDS: usize = 9;
    const SLICE: f64 = 0.3;
    let d = m.dict::<u32, u64>("bench").unwrap();
    let q = m.queue::<u64>("bench-q", None).unwrap();
    let lock = m.lock("bench-lock").unwrap();
    let mut python = Python::start();
    let names = [
        "dict_set_get_1_client",
        "dict_set_get_4_clients",
        "queue_put_get",
        "lock_acquire_release",
        "dict_pipelined_batch",
    ];
    let mut ours: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let mut theirs: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    for _ in 0..ROUNDS {
        for (k, name) in names.iter().enumerate() {
            let r = match k {
                0 => rate(SLICE, 2, |i| dict_pair(&d, i as u32)),
                1 => rate_clients(m, 4, SLICE),
                2 => rate(SLICE, 1, |i| {
                    q.put(i).unwrap();
                    q.get().unwrap();
                }),
                3 => rate(SLICE, 1, |_| drop(lock.acquire().unwrap())),
                _ => rate(SLICE, BATCH as u64, |_| batch_run(m, &d)),
            };
            ours[k].push(r);
            if k < 4 {
                if let Some(p) = python.as_mut().and_then(|p| p.measure(name, SLICE)) {
                    theirs[k].push(p);
                }
            }
        }
    }
    drop(python);
    println!(
        "\nside by side: medians of {ROUNDS} interleaved {SLICE} s slices \
         (operations/s; a dict set+get counts 2, a queue put+get 1, a lock pair 1)"
    );
    println!(
        "{:<26} {:>14} {:>14} {:>8}",
        "workload", "conveyor", "python", "ratio"
    );
    for (k, name) in names.iter().enumerate() {
        let o = median(ours[k].clone());
        if theirs[k].is_empty() {
            println!("{name:<26} {o:>14.0} {:>14} {:>8}", "-", "-");
        } else {
            let p = median(theirs[k].clone());
            println!("{name:<26} {o:>14.0} {p:>14.0} {:>7.1}x", o / p);
        }
    }
}

fn main() {
    // The manager's server entry point registers itself; init is where a child branches off.
    let _children = process::init(&[]);
    let m = Manager::builder()
        .spawn()
        .expect("start the manager process");
    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    benches(&mut c, &m);
    c.final_summary();
    comparison(&m);
}
