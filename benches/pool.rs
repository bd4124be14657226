//! What a pool costs to have: start and shut down a `ProcessPool` of 2 workers (two worker
//! processes started, each running, then both told to end and joined); the target is at most
//! 10 ms. For comparison in the same run: a `ThreadPool` of 2 workers, and one empty task
//! submitted to a warm 2-worker `ProcessPool` and its result.
//!
//! ```text
//! cargo bench -p conveyor --no-default-features --features pool --bench pool
//! ```
//!
//! The throughput of the pools against rayon and Python's executors is a workload of the
//! harness: `cargo xtask bench --filter pool,rayon`.
//!
//! criterion_main! would generate a `main` that runs before anything else; a worker process
//! must branch into the pool's worker first, so this bench writes its own `main`.

use std::time::Duration;

use conveyor::pool::{task, ProcessPool, ThreadPool};
use criterion::Criterion;

fn empty(_: ()) {}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("pool");
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(5));

    group.bench_function("process_pool_2_start_shutdown", |b| {
        b.iter(|| {
            let pool = ProcessPool::new(2).unwrap();
            pool.shutdown(true, false);
        })
    });
    group.bench_function("thread_pool_2_start_shutdown", |b| {
        b.iter(|| {
            let pool = ThreadPool::new(2);
            pool.shutdown(true, false);
        })
    });
    let pool = ProcessPool::new(2).unwrap();
    group.bench_function("process_pool_submit_result", |b| {
        b.iter(|| pool.submit(task!(empty), ()).unwrap().result().unwrap())
    });
    group.finish();
}

fn main() {
    // A worker started by this bench runs here and exits.
    let _children = conveyor::pool::init(&[task!(empty).into()], &[]);
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
