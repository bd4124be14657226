//! `task_done` and `join`, where the transport is `Joinable`.

use std::time::{Duration, Instant};

use super::*;

/// `join` returns at once when no task is outstanding, before any put and after every
/// `task_done`.
pub fn join_with_nothing_outstanding<F: Factory>(f: &F) {
    let q = f.create(Capacity::Unbounded);
    let (p, c) = (f.producer(&q), f.consumer(&q));
    let j = joinable_or_return!(f, &p, "join_with_nothing_outstanding");
    assert!(
        known(f, "join_timeout", j.join_timeout(GENEROUS)),
        "{}: join_timeout on a new queue",
        name(f)
    );
    let (p, r) = guarded("join on a new queue", p, |p| F::joinable(p).unwrap().join());
    known(f, "join on a new queue", r);
    put(f, &p, Item::new(1));
    take(f, &c, 1);
    let jc = F::joinable(&c).unwrap();
    jc.task_done()
        .unwrap_or_else(|e| panic!("{}: task_done: {e}", name(f)));
    let (_p, r) = guarded("join after every task_done", p, |p| {
        F::joinable(p).unwrap().join()
    });
    known(f, "join after every task_done", r);
}

/// Each put adds a task and each `task_done` removes one, across handles; `join_timeout` waits
/// its timeout while tasks are outstanding; `task_done` once more than items put is an error.
pub fn task_done_and_join<F: Factory>(f: &F) {
    let q = f.create(Capacity::Unbounded);
    let (p, c) = (f.producer(&q), f.consumer(&q));
    let jp = joinable_or_return!(f, &p, "task_done_and_join");
    let jc = F::joinable(&c).unwrap();
    for id in 0..3 {
        put(f, &p, Item::new(id));
    }
    let t0 = Instant::now();
    assert!(
        !known(f, "join_timeout", jp.join_timeout(SHORT)),
        "{}: join_timeout with 3 tasks outstanding",
        name(f)
    );
    let waited = t0.elapsed();
    assert!(
        waited >= SHORT,
        "{}: join_timeout({SHORT:?}) gave up after {waited:?}",
        name(f)
    );
    for k in 0..3 {
        take(f, &c, 1);
        jc.task_done()
            .unwrap_or_else(|e| panic!("{}: task_done {}: {e}", name(f), k + 1));
        let done = known(f, "join_timeout", jp.join_timeout(Duration::ZERO));
        assert_eq!(
            done,
            k == 2,
            "{}: join_timeout after {} of 3 task_done",
            name(f),
            k + 1
        );
    }
    let (p, r) = guarded("join after every task_done", p, |p| {
        F::joinable(p).unwrap().join()
    });
    known(f, "join after every task_done", r);
    match jc.task_done() {
        Err(TaskDoneError::TooManyCalls) => {}
        other => panic!(
            "{}: task_done once too often: expected TooManyCalls, got {other:?}",
            name(f)
        ),
    }
    drop(p);
}

/// A `join` blocked while tasks are outstanding wakes at the last `task_done`.
pub fn join_wakes_on_last_task_done<F: Factory>(f: &F) {
    let q = f.create(Capacity::Unbounded);
    let (p, c) = (f.producer(&q), f.consumer(&q));
    let jc = joinable_or_return!(f, &c, "join_wakes_on_last_task_done");
    put(f, &p, Item::new(1));
    put(f, &p, Item::new(2));
    take(f, &c, 2);
    jc.task_done().unwrap();
    let mut w = Waiter::start("join with a task outstanding", move || {
        F::joinable(&p).unwrap().join()
    })
    .until_asleep();
    assert!(
        !w.returned(),
        "{}: join returned with a task outstanding",
        name(f)
    );
    jc.task_done().unwrap();
    known(f, "join woken by the last task_done", w.finish());
}

/// After `shutdown(false)` the items left are still tasks: `join` waits until they are got and
/// marked done.
pub fn shutdown_keeps_tasks_until_done<F: Factory>(f: &F) {
    let q = f.create(Capacity::Unbounded);
    let (p, c) = (f.producer(&q), f.consumer(&q));
    let jp = joinable_or_return!(f, &p, "shutdown_keeps_tasks_until_done");
    let jc = F::joinable(&c).unwrap();
    put(f, &p, Item::new(1));
    put(f, &p, Item::new(2));
    known(f, "shutdown", p.shutdown(false));
    assert!(
        !known(f, "join_timeout", jp.join_timeout(SHORT)),
        "{}: join with 2 tasks left after shutdown(false)",
        name(f)
    );
    take(f, &c, 2);
    jc.task_done().unwrap();
    jc.task_done().unwrap();
    assert!(
        known(f, "join_timeout", jp.join_timeout(GENEROUS)),
        "{}: join once the drained items are done",
        name(f)
    );
}

/// `shutdown(true)` counts the items it discards as done (CPython gh-137088), so `join` waits
/// only for items already taken; `task_done` beyond that is an error.
pub fn shutdown_immediate_counts_discarded_as_done<F: Factory>(f: &F) {
    let q = f.create(Capacity::Unbounded);
    let (p, c) = (f.producer(&q), f.consumer(&q));
    let jp = joinable_or_return!(f, &p, "shutdown_immediate_counts_discarded_as_done");
    let jc = F::joinable(&c).unwrap();
    for id in 1..=3 {
        put(f, &p, Item::new(id));
    }
    take(f, &c, 1);
    known(f, "shutdown", p.shutdown(true));
    assert!(
        !known(f, "join_timeout", jp.join_timeout(SHORT)),
        "{}: join with one item taken and not done, after shutdown(true)",
        name(f)
    );
    jc.task_done().unwrap();
    assert!(
        known(f, "join_timeout", jp.join_timeout(GENEROUS)),
        "{}: join after shutdown(true) and the last task_done",
        name(f)
    );
    match jc.task_done() {
        Err(TaskDoneError::TooManyCalls) => {}
        other => panic!(
            "{}: task_done for an item shutdown(true) discarded: expected TooManyCalls, got {other:?}",
            name(f)
        ),
    }
}

/// A `join` blocked on items never taken wakes at `shutdown(true)`.
pub fn shutdown_immediate_wakes_join<F: Factory>(f: &F) {
    let q = f.create(Capacity::Unbounded);
    let (p, c) = (f.producer(&q), f.consumer(&q));
    let _ = joinable_or_return!(f, &p, "shutdown_immediate_wakes_join");
    put(f, &p, Item::new(1));
    put(f, &p, Item::new(2));
    let w = Waiter::start("join with 2 tasks outstanding", move || {
        F::joinable(&p).unwrap().join()
    })
    .until_asleep();
    known(f, "shutdown", c.shutdown(true));
    known(f, "join woken by shutdown(true)", w.finish());
}
