//! The thread pool's sleep and wake-up under load: bursts of submits from several threads,
//! each burst waited for (its results are the signal) before the next, so that the workers go
//! idle and fall asleep between bursts and every burst has to wake them again. A job left
//! behind by a lost wake-up would hang its `result` past the generous timeout.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use conveyor_pool::ThreadPool;

const WAIT: Duration = Duration::from_secs(60);

#[test]
fn bursts_from_many_submitters_all_run_and_resolve() {
    let pool = Arc::new(ThreadPool::new(4));
    let ran = Arc::new(AtomicUsize::new(0));
    let submitters: Vec<_> = (0..4)
        .map(|s| {
            let (pool, ran) = (pool.clone(), ran.clone());
            std::thread::spawn(move || {
                for burst in 0..200usize {
                    let size = 1 + (burst * 7 + s) % 40;
                    let futures: Vec<_> = (0..size)
                        .map(|i| {
                            let ran = ran.clone();
                            pool.submit(move || {
                                ran.fetch_add(1, Ordering::Relaxed);
                                i * 2
                            })
                            .unwrap()
                        })
                        .collect();
                    for (i, f) in futures.iter().enumerate() {
                        assert_eq!(f.result_timeout(WAIT).unwrap(), i * 2);
                    }
                }
            })
        })
        .collect();
    for s in submitters {
        s.join().unwrap();
    }
    let expected: usize = (0..4)
        .map(|s| (0..200usize).map(|b| 1 + (b * 7 + s) % 40).sum::<usize>())
        .sum();
    assert_eq!(ran.load(Ordering::Relaxed), expected);
}

#[test]
fn a_single_task_after_the_workers_slept_still_runs() {
    let pool = ThreadPool::new(3);
    for round in 0..500u32 {
        if round % 5 == 0 {
            // An idle gap longer than the workers look for work (30 µs), so that the next
            // submit finds them all asleep. Nothing waits on it: every outcome is a result.
            std::thread::sleep(Duration::from_micros(300));
        }
        // one task at a time: every submit finds the workers searching or asleep
        let f = pool.submit(move || round + 1).unwrap();
        assert_eq!(f.result_timeout(WAIT).unwrap(), round + 1);
    }
}

#[test]
fn shutdown_while_workers_sleep_ends_every_worker() {
    for _ in 0..50 {
        let pool = ThreadPool::new(4);
        let f = pool.submit(|| 7).unwrap();
        assert_eq!(f.result_timeout(WAIT).unwrap(), 7);
        // with wait = true this returns only once every worker, asleep or not, has ended
        pool.shutdown(true, false);
        assert!(pool.submit(|| 0).is_err());
    }
}
