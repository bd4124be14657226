//! Put and get: the blocking, non-blocking and timeout forms, capacity, order, and many
//! producers and consumers at once.

use std::time::{Duration, Instant};

use super::*;

/// Items put come out of a get, in the transport's order.
pub fn put_then_get<F: Factory>(f: &F) {
    let q = f.create(Capacity::Unbounded);
    let (p, c) = (f.producer(&q), f.consumer(&q));
    let items: Vec<Item> = (1..=5).map(Item::new).collect();
    let (p, ()) = guarded("put", p, move |p| {
        for i in items {
            p.put(i)
                .unwrap_or_else(|e| panic!("put of item {}: {e:?}", i.id));
        }
    });
    let (_c, ids) = guarded("get", c, |c| {
        (0..5).map(|_| got(c.get())).collect::<Vec<_>>()
    });
    let want: Vec<Result<u64, String>> = expected_order(
        f.profile().order,
        &(1..=5).map(Item::new).collect::<Vec<_>>(),
    )
    .into_iter()
    .map(Ok)
    .collect();
    assert_eq!(
        ids,
        want,
        "{}: the items got are not the items put",
        name(f)
    );
    drop(p);
}

/// `try_get` on an empty channel fails with `Empty` at once, and takes an item once one is in.
pub fn try_get_on_empty_is_empty<F: Factory>(f: &F) {
    let q = f.create(Capacity::Unbounded);
    let (p, c) = (f.producer(&q), f.consumer(&q));
    let (c, r) = guarded("try_get on an empty queue", c, |c| c.try_get());
    match r {
        Err(e) => assert!(
            e.is_empty(),
            "{}: try_get on empty: expected Empty, got {e:?}",
            name(f)
        ),
        Ok(i) => panic!("{}: try_get on empty returned item {}", name(f), i.id),
    }
    put(f, &p, Item::new(7));
    let (_c, r) = guarded("try_get with an item in", c, |c| got(c.try_get()));
    assert_eq!(r, Ok(7), "{}: try_get after a put", name(f));
}

/// `get_timeout` on an empty channel waits at least its timeout (on the monotonic clock), then
/// fails with `Timeout`; with an item in, it returns it.
pub fn get_timeout_waits_then_times_out<F: Factory>(f: &F) {
    let q = f.create(Capacity::Unbounded);
    let (p, c) = (f.producer(&q), f.consumer(&q));
    let (c, (r, waited)) = guarded("get_timeout on an empty queue", c, |c| {
        let t0 = Instant::now();
        let r = c.get_timeout(SHORT);
        (r, t0.elapsed())
    });
    match r {
        Err(e) => assert!(e.is_timeout(), "{}: expected Timeout, got {e:?}", name(f)),
        Ok(i) => panic!("{}: get_timeout on empty returned item {}", name(f), i.id),
    }
    assert!(
        waited >= SHORT,
        "{}: get_timeout({SHORT:?}) gave up after {waited:?}, before its timeout",
        name(f)
    );
    put(f, &p, Item::new(3));
    let (_c, r) = guarded("get_timeout with an item in", c, |c| {
        got(c.get_timeout(SHORT))
    });
    assert_eq!(r, Ok(3), "{}: get_timeout after a put", name(f));
}

/// `try_put` on a full channel fails with `Full` and hands the item back; after a get there is
/// room again.
pub fn try_put_on_full_hands_the_item_back<F: Factory>(f: &F) {
    let q = f.create(Capacity::Bounded(2));
    let (p, c) = (f.producer(&q), f.consumer(&q));
    let n = fill(f, &p, 2, 0);
    let (p, r) = guarded("try_put on a full queue", p, |p| p.try_put(Item::new(999)));
    expect_refused(
        f,
        "try_put on a full queue",
        r,
        "Full",
        PutError::is_full,
        999,
    );
    let mut ids = match f.profile().bound {
        Bound::Items => {
            let first = take(f, &c, 1);
            let (p2, r) = guarded("try_put after a get", p, |p| p.try_put(Item::new(1000)));
            assert!(
                r.is_ok(),
                "{}: try_put after a get made room: {r:?}",
                name(f)
            );
            let mut rest = take(f, &c, n);
            drop(p2);
            rest.splice(0..0, first);
            rest
        }
        Bound::Buffer { .. } => {
            // A buffer reports room again only once enough of it is free: drain it all.
            let all = take(f, &c, n);
            let (_p, r) = guarded("try_put after draining", p, |p| p.try_put(Item::new(1000)));
            assert!(
                r.is_ok(),
                "{}: try_put after draining the buffer: {r:?}",
                name(f)
            );
            let mut all = all;
            all.extend(take(f, &c, 1));
            all
        }
    };
    ids.sort_unstable();
    let mut want: Vec<u64> = (0..n).collect();
    want.push(1000);
    // Sorted like `ids`: a buffer that takes more than 1000 items holds an item 1000 of its own.
    want.sort_unstable();
    assert_eq!(
        ids,
        want,
        "{}: the items got are not the items put",
        name(f)
    );
}

/// `put_timeout` on a full channel waits at least its timeout, then fails with `Timeout` and
/// hands the item back.
pub fn put_timeout_on_full_hands_the_item_back<F: Factory>(f: &F) {
    let q = f.create(Capacity::Bounded(2));
    let (p, c) = (f.producer(&q), f.consumer(&q));
    let n = fill(f, &p, 2, 0);
    let (_p, (r, waited)) = guarded("put_timeout on a full queue", p, |p| {
        let t0 = Instant::now();
        let r = p.put_timeout(Item::new(999), SHORT);
        (r, t0.elapsed())
    });
    expect_refused(
        f,
        "put_timeout on a full queue",
        r,
        "Timeout",
        PutError::is_timeout,
        999,
    );
    assert!(
        waited >= SHORT,
        "{}: put_timeout({SHORT:?}) gave up after {waited:?}, before its timeout",
        name(f)
    );
    let mut ids = take(f, &c, n);
    ids.sort_unstable();
    assert_eq!(
        ids,
        (0..n).collect::<Vec<_>>(),
        "{}: what was in the queue",
        name(f)
    );
}

/// A timeout too large for the clock (`Duration::MAX`) waits as long as needed: it neither
/// overflows nor gives up at once.
pub fn timeouts_too_large_for_the_clock<F: Factory>(f: &F) {
    let q = f.create(Capacity::Bounded(4));
    let (p, c) = (f.producer(&q), f.consumer(&q));
    let (p, r) = guarded("put_timeout(Duration::MAX) with room", p, |p| {
        p.put_timeout(Item::new(1), Duration::MAX)
    });
    assert!(r.is_ok(), "{}: put_timeout(MAX) with room: {r:?}", name(f));
    let (c, r) = guarded("get_timeout(Duration::MAX) with an item in", c, |c| {
        got(c.get_timeout(Duration::MAX))
    });
    assert_eq!(r, Ok(1), "{}: get_timeout(MAX) with an item in", name(f));
    let w = Waiter::start("get_timeout(Duration::MAX) on an empty queue", move || {
        got(c.get_timeout(Duration::MAX))
    })
    .until_asleep();
    put(f, &p, Item::new(2));
    assert_eq!(
        w.finish(),
        Ok(2),
        "{}: get_timeout(MAX) woken by a put",
        name(f)
    );
}

/// A get blocked on an empty channel (in `get` or in `get_timeout`) wakes when an item is put.
pub fn blocked_get_wakes_on_put<F: Factory>(f: &F) {
    let q = f.create(Capacity::Unbounded);
    let p = f.producer(&q);
    let c = f.consumer(&q);
    let w = Waiter::start("get on an empty queue", move || got(c.get())).until_asleep();
    put(f, &p, Item::new(5));
    assert_eq!(
        w.finish(),
        Ok(5),
        "{}: a blocked get woken by a put",
        name(f)
    );
    let c = f.consumer(&q);
    let w = Waiter::start("get_timeout on an empty queue", move || {
        got(c.get_timeout(GENEROUS))
    })
    .until_asleep();
    put(f, &p, Item::new(6));
    assert_eq!(
        w.finish(),
        Ok(6),
        "{}: a blocked get_timeout woken by a put",
        name(f)
    );
}

/// A put blocked on a full channel wakes when there is room; nothing is lost. (A channel
/// bounded by a buffer is flooded by the blocked producer itself, which puts until it blocks;
/// the gets then make room for all of it.)
pub fn blocked_put_wakes_on_get<F: Factory>(f: &F) {
    let q = f.create(Capacity::Bounded(2));
    let (p, c) = (f.producer(&q), f.consumer(&q));
    let (before, count) = full_for_a_blocked_put(f, &p);
    let w =
        Waiter::start("put on a full channel", move || put_from(&p, before, count)).until_asleep();
    let mut ids = Vec::new();
    match f.profile().bound {
        Bound::Items => {
            ids.extend(take(f, &c, 1));
            let (_, r) = w.finish();
            assert!(
                r.is_ok(),
                "{}: a blocked put woken by a get: {r:?}",
                name(f)
            );
            ids.extend(take(f, &c, before + count - 1));
        }
        Bound::Buffer { .. } => {
            ids.extend(take(f, &c, count));
            let (_, r) = w.finish();
            assert!(r.is_ok(), "{}: a blocked put woken by gets: {r:?}", name(f));
        }
    }
    ids.sort_unstable();
    let want: Vec<u64> = (0..before + count).collect();
    assert_eq!(
        ids,
        want,
        "{}: the items got are not the items put",
        name(f)
    );
}

/// An unbounded queue takes a thousand puts without a get, `try_put` never reporting `Full`.
/// A transport bounded by a buffer says so, and is filled to its bound instead: its puts fail
/// with `Full` there and hand the item back, and everything put is delivered.
pub fn unbounded_takes_puts_without_gets<F: Factory>(f: &F) {
    let q = f.create(Capacity::Unbounded);
    let (p, c) = (f.producer(&q), f.consumer(&q));
    let n = match f.profile().bound {
        Bound::Items => {
            for id in 0..1000 {
                if let Err(e) = p.try_put(Item::new(id)) {
                    panic!(
                        "{}: an unbounded queue refused put {}: {e:?}",
                        name(f),
                        id + 1
                    );
                }
            }
            if let Ok(info) = F::info(&p) {
                assert!(
                    !known(f, "is_full", info.is_full()),
                    "{}: an unbounded queue says it is full",
                    name(f)
                );
                assert_eq!(
                    known(f, "capacity", info.capacity()),
                    None,
                    "{}: an unbounded queue's capacity",
                    name(f)
                );
            }
            1000
        }
        Bound::Buffer { why } => {
            not_met(f, "unbounded_takes_puts_without_gets", why);
            let n = fill(f, &p, 0, 0);
            let r = p.try_put(Item::new(FILL_LIMIT));
            expect_refused(
                f,
                "try_put on a full buffer",
                r,
                "Full",
                PutError::is_full,
                FILL_LIMIT,
            );
            n
        }
    };
    let mut ids = take(f, &c, n);
    ids.sort_unstable();
    assert_eq!(
        ids,
        (0..n).collect::<Vec<_>>(),
        "{}: what came out",
        name(f)
    );
}

/// `len`, `is_empty`, `is_full` and `capacity` answer as Python's `qsize`, `empty`, `full`
/// and `maxsize`, where the transport reports them.
pub fn queue_info<F: Factory>(f: &F) {
    let q = f.create(Capacity::Bounded(3));
    let (p, c) = (f.producer(&q), f.consumer(&q));
    let info = match F::info(&p) {
        Ok(info) => info,
        Err(why) => return not_met(f, "queue_info", why),
    };
    let n = name(f);
    assert_eq!(
        known(f, "capacity", info.capacity()),
        Some(3),
        "{n}: capacity of a queue bounded to 3"
    );
    assert_eq!(known(f, "len", info.len()), 0, "{n}: len of a new queue");
    assert!(
        known(f, "is_empty", info.is_empty()),
        "{n}: a new queue is empty"
    );
    assert!(
        !known(f, "is_full", info.is_full()),
        "{n}: a new queue of capacity 3 is not full"
    );
    fill(f, &p, 3, 0);
    assert_eq!(known(f, "len", info.len()), 3, "{n}: len after 3 puts");
    assert!(
        known(f, "is_full", info.is_full()) && !known(f, "is_empty", info.is_empty()),
        "{n}: full after 3 puts of 3"
    );
    take(f, &c, 1);
    let cinfo = F::info(&c).expect("a transport that reports its length does so on every handle");
    assert_eq!(
        known(f, "len", cinfo.len()),
        2,
        "{n}: len after a get, from the consumer's handle"
    );
    assert!(
        !known(f, "is_full", cinfo.is_full()),
        "{n}: not full after a get"
    );
    let u = f.create(Capacity::Unbounded);
    let up = f.producer(&u);
    let uinfo = F::info(&up).expect("every queue of a transport reports its length");
    put(f, &up, Item::new(1));
    assert_eq!(
        known(f, "capacity", uinfo.capacity()),
        None,
        "{n}: an unbounded queue's capacity"
    );
    assert!(
        !known(f, "is_full", uinfo.is_full()) && known(f, "len", uinfo.len()) == 1,
        "{n}: an unbounded queue with one item"
    );
}

/// Items come out in the transport's order (FIFO, LIFO, or smallest first and FIFO among
/// equals), checked against a reference model over a script of interleaved puts and gets.
pub fn order<F: Factory>(f: &F) {
    let order = f.profile().order;
    let q = f.create(Capacity::Unbounded);
    let (p, c) = (f.producer(&q), f.consumer(&q));
    let mut model = Model::new(order);
    // A fixed pseudo-random script (a linear congruential generator): mostly puts, so the
    // queue holds several items of repeated ranks at once.
    let mut state: u32 = 12345;
    let mut next = move || {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
        state >> 16
    };
    let mut id = 0;
    for step in 0..300 {
        // At most `BACKLOG` items wait at once: a link bounded by a socket buffer takes far
        // fewer than a queue before a put would wait for the get that this script makes next.
        if next() % 3 != 0 && model.items.len() < BACKLOG {
            let item = Item::ranked(id, next() % 4);
            id += 1;
            model.put(item);
            put(f, &p, item);
        } else if let Some(want) = model.get() {
            let r = got(c.get_timeout(GENEROUS));
            assert_eq!(
                r,
                Ok(want),
                "{}: {order:?} order broken at step {step}",
                name(f)
            );
        }
    }
    while let Some(want) = model.get() {
        let r = got(c.get_timeout(GENEROUS));
        assert_eq!(
            r,
            Ok(want),
            "{}: {order:?} order broken while draining",
            name(f)
        );
    }
}

/// Four producers and four consumers at once, on a small bounded queue and on an unbounded one:
/// every item put is got exactly once, and (except LIFO) each producer's items reach each
/// consumer in the order they were put. On a point-to-point link the producers share the
/// sending end and the consumers the receiving end.
pub fn many_producers_many_consumers<F: Factory>(f: &F) {
    for capacity in [Capacity::Bounded(8), Capacity::Unbounded] {
        let q = f.create(capacity);
        let consumers: Vec<_> = (0..4)
            .map(|k| {
                let c = f.consumer(&q);
                Waiter::start(format!("consumer {k}"), move || run_consumer(&c, None))
            })
            .collect();
        let producers: Vec<_> = (0..4u64)
            .map(|k| {
                let p = f.producer(&q);
                Waiter::start(format!("producer {k}"), move || {
                    for i in 0..PER_PRODUCER {
                        let id = k * 1_000_000 + i;
                        p.put(Item::new(id))
                            .map_err(|e| format!("put {id}: {e:?}"))?;
                    }
                    Ok::<(), String>(())
                })
            })
            .collect();
        for p in producers {
            if let Err(e) = p.finish() {
                panic!("{} ({capacity:?}): a producer failed: {e}", name(f));
            }
        }
        end_of_stream(f, &q);
        let mut all = Vec::new();
        for c in consumers {
            match c.finish() {
                Ok(got) => {
                    producer_order_kept(f, &got);
                    all.extend(got);
                }
                Err(e) => panic!("{} ({capacity:?}): a consumer failed: {e}", name(f)),
            }
        }
        let expected = (0..4u64)
            .flat_map(|k| (0..PER_PRODUCER).map(move |i| k * 1_000_000 + i))
            .collect();
        no_loss_no_duplicate(f, all, expected);
    }
}
