//! The manager's cost per operation, each a round trip to a server in another process (as
//! Python's `Manager()` runs): dict set+get with 1 and 4 clients, queue put+get, lock
//! acquire+release, and a pipelined batch of dict operations.
//!
//! After criterion's groups it measures each workload again for a second, runs Python's
//! `multiprocessing.Manager` doing the same (`crates/conveyor-manager/benches/python_manager.py`,
//! skipped with a message if `python3` is absent) and prints both side by side with their
//! ratio, from the same run. Targets: 4x Python with one client, 5x with four, and 1 M dict
//! operations/s for a pipelined batch.
//!
//! ```text
//! cargo bench -p conveyor --no-default-features --features manager,process --bench manager
//! ```
//!
//! criterion_main! would generate a `main` that runs before anything else; the server's child
//! process must branch into its entry point first, so this bench writes its own `main`.

use std::process::Command;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use conveyor::manager::{self, Client, DictProxy, Manager, ManagerGuard, Proxy};
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
            let c: Client = m.connect().unwrap();
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

/// Operations per second of `step` (doing `ops` operations) over about a second.
fn rate(ops: u64, mut step: impl FnMut(u64)) -> f64 {
    let t0 = Instant::now();
    let mut n = 0u64;
    while t0.elapsed() < Duration::from_secs(1) {
        for _ in 0..50 {
            step(n);
            n += 1;
        }
    }
    (n * ops) as f64 / t0.elapsed().as_secs_f64()
}

fn python_rates() -> Option<Vec<(String, f64)>> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crates/conveyor-manager/benches/python_manager.py"
    );
    let out = match Command::new("python3").args([script, "1"]).output() {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            println!(
                "python3 failed: {}",
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            );
            return None;
        }
        Err(e) => {
            println!("python3 not found ({e}): the Python column is skipped");
            return None;
        }
    };
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let (name, v) = l.split_once(' ')?;
                Some((name.to_string(), v.trim().parse().ok()?))
            })
            .collect(),
    )
}

fn comparison(m: &ManagerGuard) {
    let d = m.dict::<u32, u64>("bench").unwrap();
    let q = m.queue::<u64>("bench-q", None).unwrap();
    let lock = m.lock("bench-lock").unwrap();
    let ours = [
        (
            "dict_set_get_1_client",
            rate(2, |i| dict_pair(&d, i as u32)),
        ),
        ("dict_set_get_4_clients", {
            let iters = 20_000;
            8.0 * iters as f64 / dict_clients(m, 4, iters).as_secs_f64()
        }),
        (
            "queue_put_get",
            rate(1, |i| {
                q.put(i).unwrap();
                q.get().unwrap();
            }),
        ),
        (
            "lock_acquire_release",
            rate(1, |_| drop(lock.acquire().unwrap())),
        ),
        (
            "dict_pipelined_batch",
            rate(BATCH as u64, |_| batch_run(m, &d)),
        ),
    ];
    let _ = d.client().ping();
    let python = python_rates().unwrap_or_default();
    println!("\nside by side, one run (operations/s; a pair or an item counts as listed):");
    println!(
        "{:<26} {:>14} {:>14} {:>8}",
        "workload", "conveyor", "python", "ratio"
    );
    for (name, ours) in ours {
        let py = python.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
        match py {
            Some(p) => println!("{name:<26} {ours:>14.0} {p:>14.0} {:>7.1}x", ours / p),
            None => println!("{name:<26} {ours:>14.0} {:>14} {:>8}", "-", "-"),
        }
    }
}

fn main() {
    process::init(&[manager::server_entry()]);
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
