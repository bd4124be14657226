//! The pool workloads ([`Workload::PoolSubmit`], [`Workload::PoolMap`]) over conveyor's
//! `ThreadPool` and `ProcessPool`, rayon, and (in [`crate::python`]) Python's
//! `ThreadPoolExecutor`, `ProcessPoolExecutor` and `multiprocessing.Pool`.
//!
//! - `pool-submit-N`: N submitter threads each submit their share of empty tasks in batches
//!   of [`BATCH`], then wait for each batch's results; tasks per second.
//! - `pool-map`: `map` over [`MAP_TASKS`] small tasks (`2x + 1`), results in order, their sum
//!   checked; tasks per second. Each pool's own `map`: conveyor's `ProcessPool::map` and
//!   `multiprocessing.Pool.map` send chunks of `n / (4 * workers)`, `ProcessPoolExecutor.map`
//!   its default `chunksize=1`, the thread pools one task per item, rayon's `par_iter` splits
//!   the range.
//!
//! Thread pools have [`THREAD_WORKERS`] workers, process pools [`process_workers`]. Every pool
//! is built and warmed up (each worker has run a task) before the clock starts.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Instant;

use conveyor_pool::{task, ProcessPool, Task, TaskFn, ThreadPool};

use crate::transport::{Family, Scope, Transport, TransportInfo};
use crate::workload::{RunError, Sample, Workload};

/// Tasks submitted before their results are waited for, in `pool-submit`.
pub const BATCH: usize = 64;

/// The length of `pool-map`'s input.
pub const MAP_TASKS: usize = 100_000;

/// Workers of every thread pool.
pub const THREAD_WORKERS: usize = 4;

/// Workers of every process pool: one per CPU, at least 2 (Python's default is one per CPU).
pub fn process_workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().max(2))
}

fn bench_empty(_: ()) {}

fn bench_double(x: u64) -> u64 {
    2 * x + 1
}

const EMPTY: TaskFn<(), ()> = task!(bench_empty);
const DOUBLE: TaskFn<u64, u64> = task!(bench_double);

/// The tasks the process pool's workers run; [`crate::process::init`] registers them.
pub fn tasks() -> Vec<Task> {
    vec![EMPTY.into(), DOUBLE.into()]
}

/// Which pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Thread,
    Process,
    Rayon,
}

/// A pool the harness measures.
#[derive(Debug)]
pub struct PoolTransport {
    info: TransportInfo,
    kind: Kind,
}

/// conveyor's pools and rayon, in table order.
pub fn transports() -> Vec<Arc<dyn Transport>> {
    let tpe = crate::python::python_name("ThreadPoolExecutor");
    let ppe = crate::python::python_name("ProcessPoolExecutor");
    vec![
        Arc::new(PoolTransport {
            info: TransportInfo::new(
                "conveyor ThreadPool",
                Scope::Thread,
                Family::Conveyor,
                Some(&tpe),
            ),
            kind: Kind::Thread,
        }),
        Arc::new(PoolTransport {
            info: TransportInfo::new(
                "conveyor ProcessPool",
                Scope::Process,
                Family::Conveyor,
                Some(&ppe),
            ),
            kind: Kind::Process,
        }),
        Arc::new(PoolTransport {
            info: TransportInfo::new("rayon", Scope::Thread, Family::RustPeer, Some(&tpe)),
            kind: Kind::Rayon,
        }),
    ]
}

fn check_sum(total: u64, n: usize) -> Result<(), RunError> {
    let expected = (n as u64) * (n as u64);
    if total != expected {
        return Err(RunError::new(format!(
            "map returned the wrong results: sum {total}, expected {expected}"
        )));
    }
    Ok(())
}

fn throughput(tasks: usize, t0: Instant) -> Sample {
    Sample::Throughput {
        messages: tasks as u64,
        size: 0,
        elapsed_ns: t0.elapsed().as_nanos().max(1) as u64,
    }
}

/// Runs `submitters` threads, each calling `batch(n)` until it has done `per` tasks; the clock
/// runs from the barrier to the last thread's end.
fn submit_threads<F>(submitters: usize, per: usize, batch: F) -> Result<Sample, RunError>
where
    F: Fn(usize) -> Result<(), RunError> + Send + Sync + 'static,
{
    let batch = Arc::new(batch);
    let start = Arc::new(Barrier::new(submitters + 1));
    let handles: Vec<_> = (0..submitters)
        .map(|_| {
            let (batch, start) = (batch.clone(), start.clone());
            thread::spawn(move || -> Result<(), RunError> {
                start.wait();
                let mut done = 0;
                while done < per {
                    let n = BATCH.min(per - done);
                    batch(n)?;
                    done += n;
                }
                Ok(())
            })
        })
        .collect();
    start.wait();
    let t0 = Instant::now();
    for h in handles {
        h.join()
            .unwrap_or_else(|_| Err(RunError::new("a submitter thread panicked")))?;
    }
    Ok(throughput(per * submitters, t0))
}

fn err(e: impl std::fmt::Display) -> RunError {
    RunError::new(e.to_string())
}

impl PoolTransport {
    fn submit(&self, submitters: usize, count: usize) -> Result<Sample, RunError> {
        let per = count.div_ceil(submitters.max(1));
        match self.kind {
            Kind::Thread => {
                let pool = Arc::new(ThreadPool::new(THREAD_WORKERS));
                for f in (0..4 * THREAD_WORKERS)
                    .map(|_| pool.submit(|| ()))
                    .collect::<Vec<_>>()
                {
                    f.map_err(err)?.result().map_err(err)?;
                }
                submit_threads(submitters, per, move |n| {
                    let fs = (0..n)
                        .map(|_| pool.submit(|| ()))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(err)?;
                    for f in fs {
                        f.result().map_err(err)?;
                    }
                    Ok(())
                })
            }
            Kind::Process => {
                let pool = Arc::new(ProcessPool::new(process_workers()).map_err(err)?);
                for f in (0..4 * pool.workers())
                    .map(|_| pool.submit(EMPTY, ()))
                    .collect::<Vec<_>>()
                {
                    f.map_err(err)?.result().map_err(err)?;
                }
                submit_threads(submitters, per, move |n| {
                    let fs = (0..n)
                        .map(|_| pool.submit(EMPTY, ()))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(err)?;
                    for f in fs {
                        f.result().map_err(err)?;
                    }
                    Ok(())
                })
            }
            Kind::Rayon => {
                let pool = Arc::new(
                    rayon::ThreadPoolBuilder::new()
                        .num_threads(THREAD_WORKERS)
                        .build()
                        .map_err(err)?,
                );
                // ThreadPool::spawn with a result channel: the way to get a value back
                let run = move |n: usize| -> Result<(), RunError> {
                    let (tx, rx) = crossbeam_channel::bounded(n);
                    for _ in 0..n {
                        let tx = tx.clone();
                        pool.spawn(move || {
                            let _ = tx.send(());
                        });
                    }
                    for _ in 0..n {
                        rx.recv().map_err(err)?;
                    }
                    Ok(())
                };
                run(4 * THREAD_WORKERS)?;
                submit_threads(submitters, per, run)
            }
        }
    }

    fn map(&self, count: usize) -> Result<Sample, RunError> {
        let n = count as u64;
        match self.kind {
            Kind::Thread => {
                let pool = ThreadPool::new(THREAD_WORKERS);
                pool.map(|x: u64| x, 0..4 * THREAD_WORKERS as u64)
                    .try_for_each(|r| r.map(drop))
                    .map_err(err)?;
                let t0 = Instant::now();
                let total = pool
                    .map(bench_double, 0..n)
                    .try_fold(0u64, |s, r| r.map(|v| s + v))
                    .map_err(err)?;
                let sample = throughput(count, t0);
                check_sum(total, count)?;
                Ok(sample)
            }
            Kind::Process => {
                let pool = ProcessPool::new(process_workers()).map_err(err)?;
                pool.map_chunked(DOUBLE, 0..4 * pool.workers() as u64, 1)
                    .try_for_each(|r| r.map(drop))
                    .map_err(err)?;
                let t0 = Instant::now();
                let total = pool
                    .map(DOUBLE, 0..n)
                    .try_fold(0u64, |s, r| r.map(|v| s + v))
                    .map_err(err)?;
                let sample = throughput(count, t0);
                check_sum(total, count)?;
                Ok(sample)
            }
            Kind::Rayon => {
                use rayon::prelude::*;
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(THREAD_WORKERS)
                    .build()
                    .map_err(err)?;
                pool.install(|| (0..64u64).into_par_iter().map(bench_double).sum::<u64>());
                let t0 = Instant::now();
                let total: u64 =
                    pool.install(|| (0..n).into_par_iter().map(bench_double).sum::<u64>());
                let sample = throughput(count, t0);
                check_sum(total, count)?;
                Ok(sample)
            }
        }
    }
}

impl Transport for PoolTransport {
    fn info(&self) -> &TransportInfo {
        &self.info
    }

    fn is_pool(&self) -> bool {
        true
    }

    fn supports(&self, workload: &Workload) -> Result<(), String> {
        if workload.is_pool() {
            Ok(())
        } else {
            Err("a pool, not a queue".into())
        }
    }

    fn run(&self, workload: &Workload, count: usize) -> Result<Sample, RunError> {
        match *workload {
            Workload::PoolSubmit { submitters } => self.submit(submitters, count),
            Workload::PoolMap => self.map(count),
            _ => Err(RunError::new("a pool, not a queue")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_pools_run_both_workloads() {
        for t in transports() {
            if t.info().scope != Scope::Thread {
                continue;
            }
            for w in [
                Workload::PoolSubmit { submitters: 1 },
                Workload::PoolSubmit { submitters: 4 },
                Workload::PoolMap,
            ] {
                let s = t
                    .run(&w, 512)
                    .unwrap_or_else(|e| panic!("{} {}: {e}", t.info().name, w.id()));
                assert!(s.count() >= 512, "{} {}: {s:?}", t.info().name, w.id());
            }
            assert!(t.supports(&Workload::PingPong { size: 8 }).is_err());
        }
    }
}
