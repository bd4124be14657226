//! A port of the behaviours checked by CPython's `Lib/test/test_concurrent_futures/`
//! (`test_future.py`, `executor.py`, `test_wait.py`, `test_as_completed.py`,
//! `test_shutdown.py`, `test_init.py`, `test_process_pool.py`), run against [`ThreadPool`]
//! and, with real worker processes, [`ProcessPool`].
//!
//! Ported: the future's states (`done`, `running`, `cancelled`, `cancel` only while pending),
//! `result` with and without a timeout, the done callbacks (with a result, an exception, a
//! cancellation, already done, and one that raises while the others still run), `submit`,
//! `map` (order, an exception part-way, chunks), `wait` in its three modes (`test_20369`,
//! `test_first_completed`, `test_first_exception`, `test_all_completed`, the timeout),
//! `as_completed` (order of completion, already-done futures first, the timeout),
//! `shutdown(wait, cancel_futures)` and submit after shutdown (`test_run_after_shutdown`,
//! `test_cancel_futures`), an initializer that fails (`FailingInitializerMixin`: the pool is
//! broken, later submits fail), `max_tasks_per_child` (workers are replaced: more pids than
//! workers), and a worker killed in the middle of a task (`test_killed_child`).
//!
//! What changed, and why:
//! - An exception is a panic; its message travels in [`TaskError::Panicked`].
//! - Python's tests build futures in a given state by hand (`create_future(state=...)`); a
//!   conveyor future is only made by a pool, so each state is reached through a pool, with a
//!   gate (a channel, or a shared-memory queue for worker processes) that holds a task
//!   running for as long as the test needs. Python's `time.sleep` waits become those gates:
//!   no test here sleeps to wait for another thread or process.
//! - `test_killed_child` expects `BrokenProcessPool` for every future; conveyor fails the
//!   killed task's future alone, names the worker, starts a replacement, and the other tasks
//!   complete: the test checks that instead.
//! - `result` moves the value out, so a second call says [`TaskError::Taken`]; an error stays
//!   an error on every call.
//! - `wait` returns indices into the slice, not sets of futures.
//! - Not ported: keyword arguments, pickling errors, `max_workers <= 0` (the builders clamp
//!   to 1), the interpreter pool, the fork/forkserver start methods (conveyor always starts a
//!   fresh program), stale references (Rust drops values deterministically).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use conveyor_core::Channel;
use conveyor_pool::{
    as_completed, as_completed_timeout, task, wait, Executor, ProcessPool, ReturnWhen, SubmitError,
    TaskError, ThreadPool,
};
use conveyor_shm::ShmQueue;

const LONG: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// Tasks for worker processes.

fn mul((x, y): (u64, u64)) -> u64 {
    x * y
}

fn divide((x, y): (u64, u64)) -> u64 {
    if y == 0 {
        panic!("division by zero");
    }
    x / y
}

/// Says it runs, then waits for the gate to open and returns what it got.
fn gated((running, gate): (ShmQueue<u32>, ShmQueue<u64>)) -> u64 {
    running.put(std::process::id()).unwrap();
    gate.get_timeout(LONG).unwrap()
}

/// Kills its own worker process with SIGKILL, in the middle of the task.
fn sigkill_self(_: ()) -> u32 {
    // SAFETY: kill and getpid have no memory-safety preconditions.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    unreachable!("SIGKILL is not caught")
}

fn abort_self(_: ()) -> u32 {
    std::process::abort()
}

fn pid(_: ()) -> u32 {
    std::process::id()
}

fn failing_init(_: ()) {
    panic!("the initializer says no");
}

fn ok_init(_: ()) {}

/// No test registers this one.
fn never_registered(_: ()) -> u32 {
    0
}

// ---------------------------------------------------------------------------------------
// Future states (test_future.py), through a thread pool.

#[test]
fn states_cancel_and_result_timeout() {
    let pool = ThreadPool::new(1);
    let (running_tx, running_rx) = mpsc::channel();
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let running = pool
        .submit(move || {
            running_tx.send(()).unwrap();
            gate_rx.recv_timeout(LONG).unwrap();
            7
        })
        .unwrap();
    running_rx.recv_timeout(LONG).unwrap();
    let pending = pool.submit(|| 8).unwrap();

    assert!(running.running() && !running.done() && !running.cancelled());
    assert!(!pending.running() && !pending.done());
    // result(timeout=0) of a pending and a running future: TimeoutError
    assert_eq!(
        pending.result_timeout(Duration::ZERO),
        Err(TaskError::Timeout(Duration::ZERO))
    );
    assert!(matches!(
        running.result_timeout(Duration::from_millis(1)),
        Err(TaskError::Timeout(_))
    ));
    // cancel: true while pending (and again once cancelled), false while running
    assert!(pending.cancel());
    assert!(pending.cancel());
    assert!(pending.cancelled() && pending.done() && !pending.running());
    assert_eq!(pending.result(), Err(TaskError::Cancelled));
    assert!(!running.cancel());
    gate_tx.send(()).unwrap();
    assert_eq!(running.result_timeout(LONG), Ok(7));
    assert!(running.done() && !running.running() && !running.cancelled());
    // finished: cancel is false, the value was taken once
    assert!(!running.cancel());
    assert_eq!(running.result(), Err(TaskError::Taken));
}

#[test]
fn an_exception_fails_only_its_future() {
    let pool = ThreadPool::new(1);
    let bad = pool
        .submit(|| -> u32 { panic!("this is an exception") })
        .unwrap();
    let good = pool.submit(|| 5).unwrap();
    assert_eq!(
        bad.result(),
        Err(TaskError::Panicked("this is an exception".into()))
    );
    // an error stays an error
    assert_eq!(
        bad.exception(),
        Some(TaskError::Panicked("this is an exception".into()))
    );
    assert_eq!(good.result(), Ok(5));
    assert_eq!(good.exception(), None);
    // the worker survived the panic
    assert_eq!(pool.submit(|| 6).unwrap().result(), Ok(6));
}

#[test]
fn done_callbacks() {
    let pool = ThreadPool::new(1);
    // with a result, added before it finishes
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let f = pool
        .submit(move || {
            gate_rx.recv_timeout(LONG).unwrap();
            5
        })
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let tx2 = tx.clone();
    f.add_done_callback(|_| panic!("doh!"));
    f.add_done_callback(move |f| tx2.send(f.result()).unwrap());
    gate_tx.send(()).unwrap();
    // the panicking callback did not stop the next one
    assert_eq!(rx.recv_timeout(LONG).unwrap(), Ok(5));

    // with an exception, and already done: the callback runs at once, on this thread
    let e = pool.submit(|| -> i32 { panic!("test") }).unwrap();
    assert!(e.wait_timeout(Some(LONG)));
    let me = std::thread::current().id();
    let tx3 = tx.clone();
    e.add_done_callback(move |f| {
        assert_eq!(std::thread::current().id(), me);
        tx3.send(Err(f.exception().unwrap())).unwrap();
    });
    assert_eq!(
        rx.try_recv().unwrap(),
        Err(TaskError::Panicked("test".into()))
    );

    // with a cancellation
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let blocker = pool
        .submit(move || {
            gate_rx.recv_timeout(LONG).unwrap();
            0
        })
        .unwrap();
    let c = pool.submit(|| 1).unwrap();
    let (ctx, crx) = mpsc::channel();
    c.add_done_callback(move |f| ctx.send(f.cancelled()).unwrap());
    assert!(c.cancel());
    assert!(crx.try_recv().unwrap());
    gate_tx.send(()).unwrap();
    assert_eq!(blocker.result(), Ok(0));
}

// ---------------------------------------------------------------------------------------
// executor.py, on both pools through the one trait.

fn submit_and_map(pool: &impl Executor) {
    // test_submit
    assert_eq!(
        pool.submit_task(task!(mul), (2, 8)).unwrap().result(),
        Ok(16)
    );
    // test_map
    let got: Vec<u64> = pool
        .map_task(task!(mul), (0..10u64).map(|i| (i, i)))
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, (0..10u64).map(|i| i * i).collect::<Vec<_>>());
    // test_map_exception: the results before the failing item arrive, then its error
    let mut it = pool.map_task(task!(divide), vec![(1, 1), (4, 2), (1, 0), (5, 5)]);
    assert_eq!(it.next(), Some(Ok(1)));
    assert_eq!(it.next(), Some(Ok(2)));
    assert_eq!(
        it.next(),
        Some(Err(TaskError::Panicked("division by zero".into())))
    );
    assert_eq!(it.next(), Some(Ok(1)));
    assert_eq!(it.next(), None);
}

#[test]
fn thread_pool_submit_and_map() {
    submit_and_map(&ThreadPool::new(3));
}

#[test]
fn process_pool_submit_and_map() {
    conveyor_pool::init_test!(mul, divide);
    let pool = ProcessPool::new(2).unwrap();
    submit_and_map(&pool);
    // Pool.map with chunksize, imap_unordered, starmap
    let chunked: Vec<u64> = pool
        .map_chunked(task!(mul), (0..25u64).map(|i| (i, 2)), 3)
        .map(Result::unwrap)
        .collect();
    assert_eq!(chunked, (0..25u64).map(|i| i * 2).collect::<Vec<_>>());
    let mut unordered: Vec<(usize, u64)> = pool
        .imap_unordered(task!(mul), (0..20u64).map(|i| (i, 3)), 4)
        .map(|(i, r)| (i, r.unwrap()))
        .collect();
    unordered.sort_unstable();
    assert_eq!(
        unordered,
        (0..20u64).map(|i| (i as usize, i * 3)).collect::<Vec<_>>()
    );
    let star: Vec<u64> = pool
        .starmap(task!(mul), [(2, 3), (4, 5)])
        .map(Result::unwrap)
        .collect();
    assert_eq!(star, [6, 20]);
}

#[test]
fn map_is_lazy_with_an_endless_input() {
    let pool = ThreadPool::new(2);
    let started = Arc::new(AtomicUsize::new(0));
    let s = started.clone();
    let first: Vec<usize> = pool
        .map(
            move |i: usize| {
                s.fetch_add(1, Ordering::SeqCst);
                i * 2
            },
            0..,
        )
        .take(10)
        .map(Result::unwrap)
        .collect();
    assert_eq!(first, (0..10).map(|i| i * 2).collect::<Vec<_>>());
    pool.shutdown(true, false);
    // the window ahead is bounded: 2 per worker, some of them cancelled on drop
    let ran = started.load(Ordering::SeqCst);
    assert!((10..=14).contains(&ran), "{ran} tasks ran for 10 results");
}

#[test]
fn process_map_is_lazy_with_an_endless_input() {
    conveyor_pool::init_test!(mul);
    let pool = ProcessPool::new(2).unwrap();
    let first: Vec<u64> = pool
        .imap(task!(mul), (0u64..).map(|i| (i, 1)), 5)
        .take(12)
        .map(Result::unwrap)
        .collect();
    assert_eq!(first, (0..12).collect::<Vec<_>>());
}

// ---------------------------------------------------------------------------------------
// test_wait.py and test_as_completed.py

#[test]
fn wait_modes() {
    let pool = ThreadPool::new(2);
    // test_20369: one finished future, ALL_COMPLETED
    let one = [pool.submit(|| 2).unwrap()];
    let w = wait(&one, ReturnWhen::AllCompleted, None);
    assert_eq!((w.done, w.not_done), (vec![0], vec![]));

    // test_first_completed: a quick one and one held by a gate
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let fs = [
        pool.submit(move || {
            gate_rx.recv_timeout(LONG).unwrap();
            1
        })
        .unwrap(),
        pool.submit(|| 42).unwrap(),
    ];
    let w = wait(&fs, ReturnWhen::FirstCompleted, Some(LONG));
    assert_eq!((w.done, w.not_done), (vec![1], vec![0]));
    // FIRST_EXCEPTION with none failed and one still running: the timeout ends it
    let w = wait(
        &fs,
        ReturnWhen::FirstException,
        Some(Duration::from_millis(20)),
    );
    assert_eq!((w.done, w.not_done), (vec![1], vec![0]));
    gate_tx.send(()).unwrap();
    let w = wait(&fs, ReturnWhen::AllCompleted, Some(LONG));
    assert_eq!((w.done, w.not_done), (vec![0, 1], vec![]));

    // test_first_exception: returns at the failure, while another task still runs
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let fs = [
        pool.submit(|| -> u32 { panic!("this is an exception") })
            .unwrap(),
        pool.submit(move || {
            gate_rx.recv_timeout(LONG).unwrap();
            3
        })
        .unwrap(),
    ];
    let w = wait(&fs, ReturnWhen::FirstException, Some(LONG));
    assert_eq!((w.done, w.not_done), (vec![0], vec![1]));
    gate_tx.send(()).unwrap();
    // test_timeout: ALL_COMPLETED with a limit, one held past it
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let fs = [
        pool.submit(|| 1).unwrap(),
        pool.submit(move || {
            gate_rx.recv_timeout(LONG).unwrap();
            2
        })
        .unwrap(),
    ];
    assert!(fs[0].wait_timeout(Some(LONG)));
    let w = wait(
        &fs,
        ReturnWhen::AllCompleted,
        Some(Duration::from_millis(30)),
    );
    assert_eq!((w.done, w.not_done), (vec![0], vec![1]));
    gate_tx.send(()).unwrap();
    assert_eq!(fs[1].result(), Ok(2));
}

#[test]
fn as_completed_in_order_of_completion() {
    let pool = ThreadPool::new(2);
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let fs = vec![
        pool.submit(move || {
            gate_rx.recv_timeout(LONG).unwrap();
            "slow"
        })
        .unwrap(),
        pool.submit(|| "quick").unwrap(),
    ];
    assert!(fs[1].wait_timeout(Some(LONG)));
    let mut it = as_completed(&fs);
    // the one already done comes first
    assert_eq!(it.next().unwrap().result(), Ok("quick"));
    gate_tx.send(()).unwrap();
    assert_eq!(it.next().unwrap().result(), Ok("slow"));
    assert!(it.next().is_none());
}

#[test]
fn as_completed_timeout_yields_the_done_then_times_out() {
    let pool = ThreadPool::new(2);
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let fs = vec![
        pool.submit(|| 1).unwrap(),
        pool.submit(move || {
            gate_rx.recv_timeout(LONG).unwrap();
            2
        })
        .unwrap(),
    ];
    assert!(fs[0].wait_timeout(Some(LONG)));
    let got: Vec<_> = as_completed_timeout(&fs, Duration::from_millis(30)).collect();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].as_ref().unwrap().result(), Ok(1));
    assert_eq!(
        got[1].as_ref().unwrap_err(),
        &TaskError::Timeout(Duration::from_millis(30))
    );
    gate_tx.send(()).unwrap();
}

// ---------------------------------------------------------------------------------------
// test_shutdown.py

#[test]
fn thread_pool_shutdown_and_submit_after() {
    let pool = ThreadPool::new(1);
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let (running_tx, running_rx) = mpsc::channel();
    let running = pool
        .submit(move || {
            running_tx.send(()).unwrap();
            gate_rx.recv_timeout(LONG).unwrap();
            1
        })
        .unwrap();
    running_rx.recv_timeout(LONG).unwrap();
    let queued: Vec<_> = (0..5).map(|i| pool.submit(move || i).unwrap()).collect();
    // test_cancel_futures: shutdown(wait=False, cancel_futures=True)
    pool.shutdown(false, true);
    assert_eq!(pool.submit(|| 0).unwrap_err(), SubmitError::Shutdown);
    assert!(queued.iter().all(|f| f.cancelled()));
    assert!(!running.cancelled());
    gate_tx.send(()).unwrap();
    assert_eq!(running.result_timeout(LONG), Ok(1));
    pool.shutdown(true, false); // again: harmless
}

#[test]
fn thread_pool_shutdown_wait_runs_what_was_queued() {
    let pool = ThreadPool::new(2);
    let count = Arc::new(AtomicUsize::new(0));
    let fs: Vec<_> = (0..50)
        .map(|_| {
            let c = count.clone();
            pool.submit(move || c.fetch_add(1, Ordering::SeqCst))
                .unwrap()
        })
        .collect();
    pool.shutdown(true, false);
    assert_eq!(count.load(Ordering::SeqCst), 50);
    assert!(fs.iter().all(|f| f.done() && !f.cancelled()));
}

#[test]
fn dropping_a_thread_pool_waits_like_leaving_with() {
    let count = Arc::new(AtomicUsize::new(0));
    {
        let pool = ThreadPool::new(2);
        for _ in 0..20 {
            let c = count.clone();
            pool.submit(move || c.fetch_add(1, Ordering::SeqCst))
                .unwrap();
        }
    }
    assert_eq!(count.load(Ordering::SeqCst), 20);
}

#[test]
fn process_pool_shutdown_cancel_futures_and_submit_after() {
    conveyor_pool::init_test!(gated, mul);
    let pool = ProcessPool::new(1).unwrap();
    let running: ShmQueue<u32> = ShmQueue::new().unwrap();
    let gate: ShmQueue<u64> = ShmQueue::new().unwrap();
    let held = pool
        .submit(task!(gated), (running.clone(), gate.clone()))
        .unwrap();
    running.get_timeout(LONG).unwrap();
    // the worker holds `held` and prefetched one more; the rest wait in the parent
    let queued: Vec<_> = (0..6u64)
        .map(|i| pool.submit(task!(mul), (i, 1)).unwrap())
        .collect();
    pool.shutdown(false, true);
    assert_eq!(
        pool.submit(task!(mul), (1, 1)).unwrap_err(),
        SubmitError::Shutdown
    );
    gate.put(9).unwrap();
    assert_eq!(held.result_timeout(LONG), Ok(9));
    let cancelled = queued.iter().filter(|f| f.cancelled()).count();
    // at most PREFETCH - 1 of them had been handed to the worker already
    assert!(cancelled >= queued.len() - 1, "{cancelled} cancelled");
    for f in &queued {
        assert!(f.wait_timeout(Some(LONG)));
    }
    pool.shutdown(true, false);
}

// ---------------------------------------------------------------------------------------
// test_init.py

#[test]
fn thread_pool_failing_initializer_breaks_the_pool() {
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let pool = ThreadPool::builder()
        .workers(1)
        .initializer(move || {
            let _ = started_tx.send(());
            panic!("the initializer says no");
        })
        .build()
        .unwrap();
    started_rx.recv_timeout(LONG).unwrap();
    // a task submitted around the failure fails with Broken, or the submit itself does
    match pool.submit(|| 1) {
        Ok(f) => assert!(matches!(f.result_timeout(LONG), Err(TaskError::Broken(_)))),
        Err(e) => assert!(matches!(e, SubmitError::Broken(_)), "{e}"),
    }
    let e = pool.submit(|| 2).unwrap_err();
    assert!(e.to_string().contains("the initializer says no"), "{e}");
    assert!(pool.broken().is_some());
}

#[test]
fn thread_pool_initializer_runs_in_every_worker() {
    let n = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(4));
    let (c, b) = (n.clone(), barrier.clone());
    let pool = ThreadPool::builder()
        .workers(3)
        .thread_name_prefix("init-test")
        .initializer(move || {
            c.fetch_add(1, Ordering::SeqCst);
            b.wait();
        })
        .build()
        .unwrap();
    barrier.wait();
    assert_eq!(n.load(Ordering::SeqCst), 3);
    let name = pool
        .submit(|| std::thread::current().name().unwrap().to_string())
        .unwrap()
        .result()
        .unwrap();
    assert!(name.starts_with("init-test-"), "{name}");
}

#[test]
fn process_pool_failing_initializer_breaks_the_pool() {
    conveyor_pool::init_test!(failing_init, mul);
    let pool = ProcessPool::builder()
        .workers(2)
        .initializer(task!(failing_init), ())
        .build()
        .unwrap();
    let f = pool.submit(task!(mul), (2, 3));
    match f {
        Ok(f) => {
            let e = f.result_timeout(LONG).unwrap_err();
            assert!(
                matches!(&e, TaskError::Broken(m) if m.contains("the initializer says no")),
                "{e}"
            );
        }
        Err(e) => assert!(matches!(e, SubmitError::Broken(_)), "{e}"),
    }
    // once broken, submits fail; wait for the break to be seen through a future that resolves
    let mut last = pool.submit(task!(mul), (1, 1));
    while let Ok(f) = &last {
        assert!(f.wait_timeout(Some(LONG)));
        last = pool.submit(task!(mul), (1, 1));
    }
    assert!(matches!(last.unwrap_err(), SubmitError::Broken(_)));
}

#[test]
fn process_pool_initializer_that_works() {
    conveyor_pool::init_test!(ok_init, mul);
    let pool = ProcessPool::builder()
        .workers(1)
        .initializer(task!(ok_init), ())
        .build()
        .unwrap();
    assert_eq!(
        pool.submit(task!(mul), (6, 7))
            .unwrap()
            .result_timeout(LONG),
        Ok(42)
    );
}

// ---------------------------------------------------------------------------------------
// test_process_pool.py

#[test]
fn a_worker_killed_mid_task_fails_only_that_task() {
    conveyor_pool::init_test!(sigkill_self, abort_self, mul, pid);
    let pool = ProcessPool::new(2).unwrap();
    let before = pool.worker_pids();
    let many: Vec<_> = (0..40u64)
        .map(|i| pool.submit(task!(mul), (i, 2)).unwrap())
        .collect();
    let killed = pool.submit(task!(sigkill_self), ()).unwrap();
    let aborted = pool.submit(task!(abort_self), ()).unwrap();
    let more: Vec<_> = (0..40u64)
        .map(|i| pool.submit(task!(mul), (i, 3)).unwrap())
        .collect();

    match killed.result_timeout(LONG) {
        Err(TaskError::WorkerDied {
            worker,
            pid,
            status,
        }) => {
            assert!(worker.starts_with(pool.name()), "{worker}");
            assert!(before.contains(&pid) || pid > 0);
            assert!(status.contains("SIGKILL"), "{status}");
        }
        other => panic!("expected WorkerDied, got {other:?}"),
    }
    let e = aborted.result_timeout(LONG).unwrap_err();
    assert!(
        matches!(&e, TaskError::WorkerDied { status, .. } if status.contains("signal 6")),
        "{e}"
    );
    assert!(e.to_string().contains("replacement"), "{e}");
    for (i, f) in many.iter().enumerate() {
        assert_eq!(f.result_timeout(LONG), Ok(i as u64 * 2));
    }
    for (i, f) in more.iter().enumerate() {
        assert_eq!(f.result_timeout(LONG), Ok(i as u64 * 3));
    }
    // replacements run: the pool still has two workers, not the dead ones
    assert_eq!(
        pool.submit(task!(mul), (5, 5))
            .unwrap()
            .result_timeout(LONG),
        Ok(25)
    );
    assert!(
        pool.wait_for_workers(LONG),
        "the replacements never started"
    );
    let after = pool.worker_pids();
    assert_eq!(after.len(), 2);
    assert!(
        after.iter().any(|p| !before.contains(p)),
        "{before:?} -> {after:?}"
    );
}

#[test]
fn max_tasks_per_child_replaces_workers() {
    conveyor_pool::init_test!(pid);
    let pool = ProcessPool::builder()
        .workers(1)
        .max_tasks_per_child(2)
        .build()
        .unwrap();
    let pids: Vec<u32> = (0..6)
        .map(|_| pool.submit(task!(pid), ()).unwrap())
        .collect::<Vec<_>>()
        .into_iter()
        .map(|f| f.result_timeout(LONG).unwrap())
        .collect();
    let mut distinct = pids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    // one worker, two tasks each: three processes ran the six tasks, two tasks each
    assert_eq!(distinct.len(), 3, "{pids:?}");
    for p in distinct {
        assert_eq!(pids.iter().filter(|&&q| q == p).count(), 2, "{pids:?}");
    }
}

#[test]
fn process_pool_as_completed_and_wait() {
    conveyor_pool::init_test!(gated, mul);
    let pool = ProcessPool::new(2).unwrap();
    let running: ShmQueue<u32> = ShmQueue::new().unwrap();
    let gate: ShmQueue<u64> = ShmQueue::new().unwrap();
    let fs = vec![
        pool.submit(task!(gated), (running.clone(), gate.clone()))
            .unwrap(),
        pool.submit(task!(mul), (6, 7)).unwrap(),
    ];
    running.get_timeout(LONG).unwrap();
    let w = wait(&fs, ReturnWhen::FirstCompleted, Some(LONG));
    assert_eq!((w.done, w.not_done), (vec![1], vec![0]));
    let mut it = as_completed(&fs);
    assert_eq!(it.next().unwrap().result(), Ok(42));
    gate.put(3).unwrap();
    assert_eq!(it.next().unwrap().result(), Ok(3));
}

#[test]
fn unknown_task_is_refused_at_submit() {
    conveyor_pool::init_test!(mul);
    let pool = ProcessPool::new(1).unwrap();
    let e = pool.submit(task!(never_registered), ()).unwrap_err();
    assert_eq!(
        e,
        SubmitError::UnknownTask {
            name: "never_registered".into()
        }
    );
    assert!(
        e.to_string().contains("init_test!(never_registered)"),
        "{e}"
    );
}

#[test]
fn a_worker_sigkilled_from_outside_while_it_runs_a_task() {
    conveyor_pool::init_test!(gated, mul);
    let pool = ProcessPool::new(1).unwrap();
    let running: ShmQueue<u32> = ShmQueue::new().unwrap();
    let gate: ShmQueue<u64> = ShmQueue::new().unwrap();
    let victim = pool
        .submit(task!(gated), (running.clone(), gate.clone()))
        .unwrap();
    // queued behind it, on the same (only) worker: they must run on the replacement
    let after: Vec<_> = (1..=5u64)
        .map(|i| pool.submit(task!(mul), (i, i)).unwrap())
        .collect();
    let pid = running.get_timeout(LONG).unwrap();
    assert_eq!(pool.worker_pids(), vec![pid]);
    // SAFETY: kill has no memory-safety preconditions; `pid` is our own worker, still running
    // (it waits on the gate).
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    match victim.result_timeout(LONG) {
        Err(TaskError::WorkerDied {
            pid: dead,
            status,
            worker,
        }) => {
            assert_eq!(dead, pid);
            assert!(status.contains("SIGKILL"), "{status}");
            assert_eq!(worker, format!("{}-worker-0", pool.name()));
        }
        other => panic!("expected WorkerDied, got {other:?}"),
    }
    for (i, f) in (1..=5u64).zip(&after) {
        assert_eq!(f.result_timeout(LONG), Ok(i * i));
    }
    let now = pool.worker_pids();
    assert_eq!(now.len(), 1);
    assert_ne!(now[0], pid);
}
