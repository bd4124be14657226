//! What a child process costs: start (re-execute this binary, decode the arguments, report
//! ready) plus join, for an entry point that does nothing. Python on the same machine: 5.3 ms
//! per process with `fork`, 118 ms with `spawn`; the target here is at most 5 ms.
//!
//! ```text
//! cargo bench -p conveyor --no-default-features --features process --bench process_spawn
//! ```
//!
//! `baseline_bin_true` (start and wait for `/bin/true`) and `baseline_reexec_exit` (this binary,
//! re-executed, returning as soon as `main` starts) are the floors to compare with.
//!
//! criterion_main! would generate a `main` that runs before anything else; a child must branch
//! into its entry point first, so this bench writes its own `main`.

use std::process::Command;
use std::time::Duration;

use conveyor::process::{self as process, entry, Process};
use criterion::{BenchmarkId, Criterion, Throughput};

/// Set by the `baseline_reexec_exit` benchmark: the re-executed binary returns at once.
const EXIT_AT_ONCE: &str = "PROCESS_SPAWN_BENCH_EXIT_AT_ONCE";

fn noop(_: ()) {}

/// Takes a payload and drops it: the cost of carrying arguments.
fn sink(bytes: serde_bytes::ByteBuf) -> i32 {
    (bytes.len() % 2) as i32
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("process_spawn");
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(1));

    // Floors for comparison, measured in the same run: a plain program, and this very binary
    // exiting as soon as its main starts.
    group.bench_function("baseline_bin_true", |b| {
        b.iter(|| {
            let status = Command::new("/bin/true").status().unwrap();
            assert!(status.success());
        })
    });
    group.bench_function("baseline_reexec_exit", |b| {
        b.iter(|| {
            let status = Command::new("/proc/self/exe")
                .env(EXIT_AT_ONCE, "1")
                .status()
                .unwrap();
            assert!(status.success());
        })
    });
    group.bench_function("start_join", |b| {
        b.iter(|| {
            let child = Process::new("noop", ()).start().unwrap();
            assert!(child.join().unwrap().success());
        })
    });
    group.bench_function("start_join_daemon", |b| {
        b.iter(|| {
            let child = Process::new("noop", ()).daemon(true).start().unwrap();
            assert!(child.join().unwrap().success());
        })
    });
    for kib in [64usize, 1024] {
        let payload = serde_bytes::ByteBuf::from(vec![7u8; kib * 1024]);
        group.bench_with_input(
            BenchmarkId::new("start_join_args_kib", kib),
            &payload,
            |b, payload| {
                b.iter(|| {
                    let child = Process::new("sink", payload).start().unwrap();
                    assert!(child.join().unwrap().success());
                })
            },
        );
    }
    group.finish();
}

fn main() {
    if std::env::var_os(EXIT_AT_ONCE).is_some() {
        return;
    }
    // A child started by this bench runs its entry point here and exits.
    let _children = process::init(&[entry!(noop), entry!(sink)]);
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
