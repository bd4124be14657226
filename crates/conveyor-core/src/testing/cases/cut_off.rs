//! Honest answers: once a queue's handles are cut off from where it lives (its server
//! stopped, its connections dropped), no call answers as if all were well.

use std::time::Duration;

use super::*;

/// Asserts that a call failed, and that the error says which call it was.
fn expect_unavailable<F: Factory, T: std::fmt::Debug>(
    f: &F,
    what: &str,
    r: Result<T, Unavailable>,
) {
    match r {
        Ok(v) => panic!(
            "{}: {what} once the queue is cut off answered {v:?}, as if all were well",
            name(f)
        ),
        Err(e) => assert!(
            !e.operation().is_empty() && !e.to_string().is_empty(),
            "{}: {what}: an error that does not say what failed: {e:?}",
            name(f)
        ),
    }
}

/// Asserts that a get failed, and not with an answer about the queue (`Empty`, `Timeout`,
/// `Closed`), which it cannot know.
fn expect_get_fails<F: Factory>(f: &F, what: &str, r: Result<Item, GetError>) {
    match r {
        Ok(i) => panic!(
            "{}: {what} once the queue is cut off returned item {}",
            name(f),
            i.id
        ),
        Err(e) => assert!(
            !e.is_empty() && !e.is_timeout() && !e.is_closed(),
            "{}: {what} once the queue is cut off answered {e:?}, as if the queue had said so",
            name(f)
        ),
    }
}

/// Once the queue is cut off ([`Factory::cut_off`]), every call that needs where it lives
/// fails and says so: `len`, `is_empty`, `is_full` and `join_timeout` return [`Unavailable`]
/// instead of `0`, `true`, `false` or "every task done"; `join` returns it instead of
/// returning as if the work were finished (and does not hang); `shutdown` returns it instead
/// of only logging; puts and gets fail, and not with `Full`, `Empty`, `Timeout` or `Closed`.
/// `close` may succeed (this handle is closed either way), after which its puts fail.
///
/// A transport with nothing to cut off (its queue lives in this process or in shared memory)
/// says why, and its answers must then all be `Ok` and true.
pub fn calls_fail_when_cut_off<F: Factory>(f: &F) {
    let mut q = f.create(Capacity::Bounded(4));
    let (p, c) = (f.producer(&q), f.consumer(&q));
    put(f, &p, Item::new(1));
    let bounded_by_items = f.profile().bound == Bound::Items;
    if let Err(why) = f.cut_off(&mut q) {
        eprintln!(
            "conformance: {}: calls_fail_when_cut_off: nothing to cut off ({why}): checking \
             that every answer is Ok and true instead",
            name(f)
        );
        if let Ok(info) = F::info(&p) {
            assert_eq!(known(f, "len", info.len()), 1, "{}: len", name(f));
            assert!(
                !known(f, "is_empty", info.is_empty()),
                "{}: is_empty",
                name(f)
            );
            assert!(!known(f, "is_full", info.is_full()), "{}: is_full", name(f));
            if bounded_by_items {
                assert_eq!(known(f, "capacity", info.capacity()), Some(4));
            }
        }
        if let Ok(j) = F::joinable(&p) {
            assert!(
                !known(f, "join_timeout", j.join_timeout(Duration::ZERO)),
                "{}: join_timeout with a task outstanding",
                name(f)
            );
        }
        let (c, r) = guarded("get", c, |c| got(c.get()));
        assert_eq!(r, Ok(1), "{}: get", name(f));
        known(f, "close", p.close());
        known(f, "shutdown", c.shutdown(false));
        return;
    }
    if let Ok(info) = F::info(&c) {
        expect_unavailable(f, "len", info.len());
        expect_unavailable(f, "is_empty", info.is_empty());
        expect_unavailable(f, "is_full (of a bounded queue)", info.is_full());
        // The capacity may be known here (it never changes); if it is answered, it is true.
        if let Ok(cap) = info.capacity() {
            assert_eq!(cap, Some(4), "{}: capacity once cut off", name(f));
        }
    }
    let (c, r) = guarded("try_get once cut off", c, |c| c.try_get());
    expect_get_fails(f, "try_get", r);
    let (c, r) = guarded("get_timeout once cut off", c, |c| c.get_timeout(SHORT));
    expect_get_fails(f, "get_timeout", r);
    let (c, r) = guarded("get once cut off", c, |c| c.get());
    expect_get_fails(f, "get", r);
    let (p, r) = guarded("put once cut off", p, |p| p.put(Item::new(2)));
    match r {
        Ok(()) => panic!("{}: a put once cut off succeeded", name(f)),
        Err(e) => {
            assert!(
                !e.is_full() && !e.is_timeout() && !e.is_closed(),
                "{}: a put once cut off answered {e:?}, as if the queue had said so",
                name(f)
            );
            assert_eq!(
                e.into_inner().id,
                2,
                "{}: the put handed back another item",
                name(f)
            );
        }
    }
    if F::joinable(&p).is_ok() {
        let (p2, r) = guarded("join_timeout once cut off", p, |p| {
            F::joinable(p).unwrap().join_timeout(SHORT)
        });
        expect_unavailable(f, "join_timeout", r);
        let (p3, r) = guarded("join once cut off", p2, |p| F::joinable(p).unwrap().join());
        expect_unavailable(f, "join", r);
        let (_c, r) = guarded("task_done once cut off", c, |c| {
            F::joinable(c).unwrap().task_done()
        });
        assert!(r.is_err(), "{}: task_done once cut off succeeded", name(f));
        check_shutdown_and_close(f, p3);
    } else {
        check_shutdown_and_close(f, p);
    }
}

/// `shutdown` fails; `close` closes this handle whatever it returns.
fn check_shutdown_and_close<F: Factory>(f: &F, p: F::Handle) {
    let (p, r) = guarded("shutdown once cut off", p, |p| p.shutdown(false));
    expect_unavailable(f, "shutdown(false)", r);
    let (p, r) = guarded("close once cut off", p, |p| p.close());
    if let Err(e) = r {
        eprintln!("conformance: {}: close once cut off said: {e}", name(f));
    }
    let (_p, r) = guarded("put after close", p, |p| p.try_put(Item::new(3)));
    assert!(r.is_err(), "{}: a put after close succeeded", name(f));
}
