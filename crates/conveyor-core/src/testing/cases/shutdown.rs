//! Shutdown (both forms) and per-handle close, with blocked waiters woken.

use super::*;

/// After `shutdown(false)` every put fails with `Closed` (the item handed back), through any
/// handle, new ones included; gets drain what is left and then fail with `Closed` at once, in
/// every form. Shutting down twice changes nothing.
pub fn shutdown_drains_then_fails<F: Factory>(f: &F) {
    let q = f.create(Capacity::Bounded(4));
    let (p, c) = (f.producer(&q), f.consumer(&q));
    put(f, &p, Item::new(1));
    put(f, &p, Item::new(2));
    let who = shutter(f, &q);
    known(f, "shutdown", who.shutdown(false));
    let (p, (a, b, d)) = guarded("puts after shutdown", p, |p| {
        (
            p.put(Item::new(3)),
            p.try_put(Item::new(4)),
            p.put_timeout(Item::new(5), GENEROUS),
        )
    });
    expect_refused(f, "put after shutdown", a, "Closed", PutError::is_closed, 3);
    expect_refused(
        f,
        "try_put after shutdown",
        b,
        "Closed",
        PutError::is_closed,
        4,
    );
    expect_refused(
        f,
        "put_timeout after shutdown",
        d,
        "Closed",
        PutError::is_closed,
        5,
    );
    if f.profile().shape == Shape::Queue {
        let fresh = f.producer(&q);
        let r = fresh.try_put(Item::new(6));
        expect_refused(
            f,
            "put through a handle made after shutdown",
            r,
            "Closed",
            PutError::is_closed,
            6,
        );
    }
    let want = expected_order(f.profile().order, &[Item::new(1), Item::new(2)]);
    let (c, ids) = guarded("gets after shutdown", c, |c| [got(c.get()), got(c.get())]);
    assert_eq!(
        ids.to_vec(),
        want.into_iter().map(Ok).collect::<Vec<_>>(),
        "{}: gets after shutdown(false) drain what was left",
        name(f)
    );
    known(f, "shutdown", who.shutdown(false));
    let (_c, (a, b, d)) = guarded("gets after shutdown, drained", c, |c| {
        (c.get(), c.try_get(), c.get_timeout(GENEROUS * 4))
    });
    expect_closed(f, "get after shutdown, drained", a);
    expect_closed(f, "try_get after shutdown, drained", b);
    expect_closed(f, "get_timeout after shutdown, drained", d);
    drop(p);
}

/// Gets blocked on an empty channel wake with `Closed` when it is shut down.
pub fn shutdown_wakes_blocked_getters<F: Factory>(f: &F) {
    shutdown_wakes_getters(f, false);
}

/// Gets blocked on an empty channel wake with `Closed` at `shutdown(true)`.
pub fn shutdown_immediate_wakes_blocked_getters<F: Factory>(f: &F) {
    shutdown_wakes_getters(f, true);
}

fn shutdown_wakes_getters<F: Factory>(f: &F, immediate: bool) {
    let q = f.create(Capacity::Unbounded);
    let waiters: Vec<_> = (0..2)
        .map(|k| {
            let c = f.consumer(&q);
            Waiter::start(format!("blocked get {k}"), move || c.get())
        })
        .collect();
    let waiters: Vec<_> = waiters.into_iter().map(Waiter::until_asleep).collect();
    known(f, "shutdown", shutter(f, &q).shutdown(immediate));
    for w in waiters {
        expect_closed(
            f,
            &format!("a blocked get at shutdown({immediate})"),
            w.finish(),
        );
    }
}

/// A put blocked on a full channel wakes with `Closed` (the item handed back) when it is shut
/// down; what was in is still drained.
pub fn shutdown_wakes_blocked_putter<F: Factory>(f: &F) {
    shutdown_wakes_putter(f, false);
}

/// A put blocked on a full channel wakes with `Closed` (the item handed back) at
/// `shutdown(true)`; what was in is discarded.
pub fn shutdown_immediate_wakes_blocked_putter<F: Factory>(f: &F) {
    shutdown_wakes_putter(f, true);
}

fn shutdown_wakes_putter<F: Factory>(f: &F, immediate: bool) {
    let q = f.create(Capacity::Bounded(2));
    let (p, c) = (f.producer(&q), f.consumer(&q));
    let (before, count) = full_for_a_blocked_put(f, &p);
    let w =
        Waiter::start("put on a full channel", move || put_from(&p, before, count)).until_asleep();
    known(f, "shutdown", shutter(f, &q).shutdown(immediate));
    let (stopped_at, r) = w.finish();
    let what = format!("a blocked put at shutdown({immediate})");
    expect_refused(f, &what, r, "Closed", PutError::is_closed, stopped_at);
    if immediate && discards(f, "shutdown_immediate_wakes_blocked_putter") {
        let (_c, r) = guarded("get after shutdown(true)", c, |c| c.get());
        expect_closed(f, "get after shutdown(true) of a full channel", r);
    } else {
        let mut ids = take(f, &c, stopped_at);
        ids.sort_unstable();
        let want: Vec<u64> = (0..stopped_at).collect();
        assert_eq!(
            ids,
            want,
            "{}: drained after shutdown({immediate})",
            name(f)
        );
        let (_c, r) = guarded("get after draining", c, |c| c.get());
        expect_closed(f, &format!("get after shutdown({immediate}), drained"), r);
    }
}

/// `shutdown(true)` discards what is left: gets fail with `Closed` at once, puts too.
pub fn shutdown_immediate_discards<F: Factory>(f: &F) {
    let q = f.create(Capacity::Unbounded);
    let (p, c) = (f.producer(&q), f.consumer(&q));
    for id in 1..=3 {
        put(f, &p, Item::new(id));
    }
    known(f, "shutdown", shutter(f, &q).shutdown(true));
    let r = p.try_put(Item::new(4));
    expect_refused(
        f,
        "put after shutdown(true)",
        r,
        "Closed",
        PutError::is_closed,
        4,
    );
    if !discards(f, "shutdown_immediate_discards") {
        let want = expected_order(f.profile().order, &[1, 2, 3].map(Item::new));
        assert_eq!(
            take(f, &c, 3),
            want,
            "{}: drained after shutdown(true)",
            name(f)
        );
    }
    let (c, (a, b, d)) = guarded("gets after shutdown(true)", c, |c| {
        (c.get(), c.try_get(), c.get_timeout(GENEROUS * 4))
    });
    expect_closed(f, "get after shutdown(true)", a);
    expect_closed(f, "try_get after shutdown(true)", b);
    expect_closed(f, "get_timeout after shutdown(true)", d);
    if let Ok(info) = F::info(&c) {
        assert_eq!(
            known(f, "len", info.len()),
            0,
            "{}: len after shutdown(true)",
            name(f)
        );
    }
}

/// `shutdown(true)` after `shutdown(false)` still discards what is left.
pub fn shutdown_immediate_after_shutdown_discards<F: Factory>(f: &F) {
    let q = f.create(Capacity::Unbounded);
    let (p, c) = (f.producer(&q), f.consumer(&q));
    for id in 1..=3 {
        put(f, &p, Item::new(id));
    }
    let s = shutter(f, &q);
    known(f, "shutdown", s.shutdown(false));
    let first = take(f, &c, 1);
    assert_eq!(first.len(), 1);
    known(f, "shutdown", s.shutdown(true));
    if !discards(f, "shutdown_immediate_after_shutdown_discards") {
        assert_eq!(
            take(f, &c, 2).len(),
            2,
            "{}: drained after shutdown(true)",
            name(f)
        );
    }
    let (_c, r) = guarded("get after shutdown(false) then shutdown(true)", c, |c| {
        c.get()
    });
    expect_closed(f, "get after shutdown(false) then shutdown(true)", r);
}

/// `close` is per handle (Python's `multiprocessing.Queue.close()`): puts through the closed
/// handle fail with `Closed` and hand the item back, other handles put and get as before, and
/// the queue is not shut down. On a point-to-point link it closes the sending end: the
/// receiver drains what was sent, then gets `Closed`.
pub fn close_is_per_handle<F: Factory>(f: &F) {
    let q = f.create(Capacity::Unbounded);
    let (p1, c) = (f.producer(&q), f.consumer(&q));
    put(f, &p1, Item::new(1));
    known(f, "close", p1.close());
    let (p1, (a, b, d)) = guarded("puts through a closed handle", p1, |p| {
        (
            p.put(Item::new(2)),
            p.try_put(Item::new(3)),
            p.put_timeout(Item::new(4), GENEROUS),
        )
    });
    expect_refused(
        f,
        "put through a closed handle",
        a,
        "Closed",
        PutError::is_closed,
        2,
    );
    expect_refused(
        f,
        "try_put through a closed handle",
        b,
        "Closed",
        PutError::is_closed,
        3,
    );
    expect_refused(
        f,
        "put_timeout through a closed handle",
        d,
        "Closed",
        PutError::is_closed,
        4,
    );
    known(f, "close", p1.close()); // twice: no-op
    match f.profile().shape {
        Shape::Queue => {
            let p2 = f.producer(&q);
            put(f, &p2, Item::new(5));
            let want = expected_order(f.profile().order, &[Item::new(1), Item::new(5)]);
            assert_eq!(take(f, &c, 2), want, "{}: items of both handles", name(f));
            let (_c, r) = guarded("try_get with a handle closed", c, |c| c.try_get());
            match r {
                Err(e) => assert!(
                    e.is_empty(),
                    "{}: one handle's close shut the queue for the others: try_get gave {e:?}",
                    name(f)
                ),
                Ok(i) => panic!("{}: try_get returned item {} never put", name(f), i.id),
            }
        }
        Shape::PointToPoint => {
            assert_eq!(
                take(f, &c, 1),
                vec![1],
                "{}: what was sent before close",
                name(f)
            );
            let (_c, (a, b)) = guarded("gets after the sender closed", c, |c| {
                (c.get(), c.try_get())
            });
            expect_closed(f, "get after the sending end closed", a);
            expect_closed(f, "try_get after the sending end closed", b);
        }
    }
}

/// On a queue, a get blocked while one producer handle closes stays blocked (the queue is not
/// shut down) and takes the next item another handle puts. On a point-to-point link, closing
/// the sending end wakes the blocked get with `Closed`.
pub fn blocked_get_after_a_producer_closes<F: Factory>(f: &F) {
    let q = f.create(Capacity::Unbounded);
    let p1 = f.producer(&q);
    let c = f.consumer(&q);
    let w = Waiter::start("get on an empty queue", move || got(c.get())).until_asleep();
    known(f, "close", p1.close());
    match f.profile().shape {
        Shape::Queue => {
            let p2 = f.producer(&q);
            put(f, &p2, Item::new(9));
            assert_eq!(
                w.finish(),
                Ok(9),
                "{}: a get blocked while another handle closed",
                name(f)
            );
        }
        Shape::PointToPoint => {
            let r = w.finish();
            assert!(
                r.as_ref().is_err_and(|e| e.contains("Closed")),
                "{}: a get blocked when the sending end closed: expected Closed, got {r:?}",
                name(f)
            );
        }
    }
}
