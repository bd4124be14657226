//! The cases of the suite, each generic over a [`Factory`]; [`conformance_tests!`] runs every
//! one of them as a test of its own.
//!
//! Every case builds its own fresh queue, so cases run in parallel. A case that blocks a
//! waiter proves it blocked ([`Waiter::until_asleep`]) before it wakes it, and every call that
//! a broken transport could leave hanging runs under a watchdog ([`within`]), so a failure is
//! reported, never a hung test run.
//!
//! [`conformance_tests!`]: crate::conformance_tests

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::{
    asleep, within, Bound, Capacity, Factory, Immediate, Item, Order, Role, Shape, Waiter,
    GENEROUS, SHORT,
};
use crate::{Channel, GetError, PutError, TaskDoneError};

/// How many items each producer puts in the many-producer and multi-process cases.
const PER_PRODUCER: u64 = 1_000;

/// How many items a producer puts to find a buffer's bound with blocking puts: more than any
/// socket buffer holds (each message takes several hundred bytes of one).
const BUFFER_FLOOD: u64 = 20_000;

/// The most items the order script leaves waiting in a channel at once.
const BACKLOG: usize = 24;

/// The most `try_put`s a case makes to fill a channel bounded by a byte buffer.
const FILL_LIMIT: u64 = 1 << 22;

// ---------------------------------------------------------------------------------------------
// Helpers.

fn name<F: Factory>(f: &F) -> &'static str {
    f.profile().name
}

/// Says, on the test's output, that `case` is not met by this transport, and why.
fn not_met<F: Factory>(f: &F, case: &str, why: &str) {
    eprintln!("conformance: {}: {case}: not met: {why}", name(f));
}

/// A get's outcome in a form that can be compared and printed.
fn got(r: Result<Item, GetError>) -> Result<u64, String> {
    r.map(|i| i.id).map_err(|e| format!("{e:?}"))
}

/// Runs `op` on `handle` under a watchdog and gives the handle back with the result.
fn guarded<H: Send + 'static, R: Send + 'static>(
    what: &str,
    handle: H,
    op: impl FnOnce(&H) -> R + Send + 'static,
) -> (H, R) {
    within(what, GENEROUS, move || {
        let r = op(&handle);
        (handle, r)
    })
}

/// Asserts that a get failed with `Closed`.
fn expect_closed<F: Factory>(f: &F, what: &str, r: Result<Item, GetError>) {
    match r {
        Err(e) if e.is_closed() => {}
        other => panic!("{}: {what}: expected Closed, got {:?}", name(f), got(other)),
    }
}

/// Asserts that a put failed as `pred` says, and handed back the item `id`.
fn expect_refused<F: Factory>(
    f: &F,
    what: &str,
    r: Result<(), PutError<Item>>,
    kind: &str,
    pred: impl Fn(&PutError<Item>) -> bool,
    id: u64,
) {
    match r {
        Ok(()) => panic!(
            "{}: {what}: expected {kind}, but the put succeeded",
            name(f)
        ),
        Err(e) => {
            assert!(pred(&e), "{}: {what}: expected {kind}, got {e:?}", name(f));
            let back = e.into_inner();
            assert_eq!(
                back.id,
                id,
                "{}: {what}: the error handed back another item",
                name(f)
            );
        }
    }
}

/// The ids in the order the transport's kind hands out `items` put in this order (all put
/// before any get).
fn expected_order(order: Order, items: &[Item]) -> Vec<u64> {
    let mut model = Model::new(order);
    for &i in items {
        model.put(i);
    }
    std::iter::from_fn(|| model.get()).collect()
}

/// A reference queue of each kind, to compare a transport's order against.
struct Model {
    order: Order,
    items: VecDeque<(Item, u64)>,
    seq: u64,
}

impl Model {
    fn new(order: Order) -> Model {
        Model {
            order,
            items: VecDeque::new(),
            seq: 0,
        }
    }

    fn put(&mut self, item: Item) {
        self.items.push_back((item, self.seq));
        self.seq += 1;
    }

    fn get(&mut self) -> Option<u64> {
        let at = match self.order {
            Order::Fifo => 0,
            Order::Lifo => self.items.len().checked_sub(1)?,
            // The smallest rank, the earliest put among equal ranks.
            Order::Priority => {
                self.items
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, (i, seq))| (i.rank, *seq))?
                    .0
            }
        };
        self.items.remove(at).map(|(i, _)| i.id)
    }
}

/// Fills `handle`'s queue, created with `capacity`, with items numbered from `first`, and
/// returns how many it took. A queue bounded by items takes exactly its capacity (each put by
/// `try_put`, each of which must succeed); one bounded by a buffer takes `try_put`s until one
/// reports `Full`.
fn fill<F: Factory>(f: &F, handle: &F::Handle, capacity: usize, first: u64) -> u64 {
    match f.profile().bound {
        Bound::Items => {
            for id in first..first + capacity as u64 {
                if let Err(e) = handle.try_put(Item::new(id)) {
                    panic!(
                        "{}: a queue of capacity {capacity} refused item {} of {capacity}: {e:?}",
                        name(f),
                        id - first + 1
                    );
                }
            }
            capacity as u64
        }
        Bound::Buffer { .. } => {
            for id in first..first + FILL_LIMIT {
                match handle.try_put(Item::new(id)) {
                    Ok(()) => {}
                    Err(e) if e.is_full() => return id - first,
                    Err(e) => panic!("{}: filling the buffer: {e:?}", name(f)),
                }
            }
            panic!(
                "{}: {FILL_LIMIT} try_puts without a get never found the buffer full",
                name(f)
            )
        }
    }
}

/// Gets `n` items through `handle`, each within [`GENEROUS`], and returns their ids.
fn take<F: Factory>(f: &F, handle: &F::Handle, n: u64) -> Vec<u64> {
    (0..n)
        .map(|k| match handle.get_timeout(GENEROUS) {
            Ok(i) => i.id,
            Err(e) => panic!("{}: get {} of {n}: {e:?}", name(f), k + 1),
        })
        .collect()
}

/// Puts one item through `handle`, failing the case if the put fails.
fn put<F: Factory>(f: &F, handle: &F::Handle, item: Item) {
    if let Err(e) = handle.put_timeout(item, GENEROUS) {
        panic!("{}: put of item {}: {e:?}", name(f), item.id);
    }
}

/// Ends the stream for the consumers: `shutdown(false)` on a queue, closing the sending end of
/// a point-to-point link.
fn end_of_stream<F: Factory>(f: &F, queue: &F::Queue) {
    match f.profile().shape {
        Shape::Queue => f.producer(queue).shutdown(false),
        Shape::PointToPoint => f.producer(queue).close(),
    }
}

/// The handle a case shuts the channel down with: on a queue another handle than the
/// producer's and the consumer's (shutdown is for everyone); on a link the sending end.
fn shutter<F: Factory>(f: &F, queue: &F::Queue) -> F::Handle {
    match f.profile().shape {
        Shape::Queue => f.consumer(queue),
        Shape::PointToPoint => f.producer(queue),
    }
}

/// Whether `shutdown(true)` discards; if not, says so for `case` (which then checks that the
/// items are drained instead).
fn discards<F: Factory>(f: &F, case: &str) -> bool {
    match f.profile().immediate {
        Immediate::Discards => true,
        Immediate::Drains { why } => {
            not_met(f, case, why);
            false
        }
    }
}

/// Makes `handle`'s channel (created with capacity 2) ready for a put that blocks, and returns
/// the ids a blocked producer then puts (`first`, `count`): on a queue bounded by items, it is
/// filled with items `0..2` and the producer puts item 2; on one bounded by a buffer, the
/// producer puts `0..BUFFER_FLOOD` and blocks once the buffer is full.
fn full_for_a_blocked_put<F: Factory>(f: &F, handle: &F::Handle) -> (u64, u64) {
    match f.profile().bound {
        Bound::Items => (fill(f, handle, 2, 0), 1),
        Bound::Buffer { .. } => (0, BUFFER_FLOOD),
    }
}

/// Puts items `first .. first + count` with blocking puts; returns the id of the first put
/// that failed (or `first + count`) and how the last put ended.
fn put_from<C: Channel<Item>>(
    handle: &C,
    first: u64,
    count: u64,
) -> (u64, Result<(), PutError<Item>>) {
    for id in first..first + count {
        if let Err(e) = handle.put(Item::new(id)) {
            return (id, Err(e));
        }
    }
    (first + count, Ok(()))
}

/// Checks that `all` holds each of `expected` exactly once.
fn no_loss_no_duplicate<F: Factory>(f: &F, mut all: Vec<u64>, mut expected: Vec<u64>) {
    all.sort_unstable();
    expected.sort_unstable();
    let mut seen: HashMap<u64, u32> = HashMap::new();
    for &id in &all {
        *seen.entry(id).or_default() += 1;
    }
    let dups: Vec<_> = seen
        .iter()
        .filter(|(_, &n)| n > 1)
        .map(|(id, _)| *id)
        .collect();
    assert!(
        dups.is_empty(),
        "{}: items delivered twice: {dups:?}",
        name(f)
    );
    let lost: Vec<_> = expected
        .iter()
        .filter(|id| !seen.contains_key(id))
        .collect();
    assert!(
        lost.is_empty(),
        "{}: {} items lost, e.g. {:?}",
        name(f),
        lost.len(),
        &lost[..lost.len().min(8)]
    );
    assert_eq!(
        all,
        expected,
        "{}: items delivered that were never put",
        name(f)
    );
}

/// Checks that within one consumer's list each producer's items (id / 1 000 000) come in the
/// order they were put, as a FIFO queue (and a priority queue among equal items) keeps them.
fn producer_order_kept<F: Factory>(f: &F, got: &[u64]) {
    if f.profile().order == Order::Lifo {
        return;
    }
    let mut last: HashMap<u64, u64> = HashMap::new();
    for &id in got {
        if let Some(&prev) = last.get(&(id / 1_000_000)) {
            assert!(
                id > prev,
                "{}: item {id} arrived after {prev} of the same producer",
                name(f)
            );
        }
        last.insert(id / 1_000_000, id);
    }
}

// ---------------------------------------------------------------------------------------------
// Put and get.

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
                    !info.is_full(),
                    "{}: an unbounded queue says it is full",
                    name(f)
                );
                assert_eq!(
                    info.capacity(),
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
        info.capacity(),
        Some(3),
        "{n}: capacity of a queue bounded to 3"
    );
    assert_eq!(info.len(), 0, "{n}: len of a new queue");
    assert!(info.is_empty(), "{n}: a new queue is empty");
    assert!(
        !info.is_full(),
        "{n}: a new queue of capacity 3 is not full"
    );
    fill(f, &p, 3, 0);
    assert_eq!(info.len(), 3, "{n}: len after 3 puts");
    assert!(
        info.is_full() && !info.is_empty(),
        "{n}: full after 3 puts of 3"
    );
    take(f, &c, 1);
    let cinfo = F::info(&c).expect("a transport that reports its length does so on every handle");
    assert_eq!(
        cinfo.len(),
        2,
        "{n}: len after a get, from the consumer's handle"
    );
    assert!(!cinfo.is_full(), "{n}: not full after a get");
    let u = f.create(Capacity::Unbounded);
    let up = f.producer(&u);
    let uinfo = F::info(&up).expect("every queue of a transport reports its length");
    put(f, &up, Item::new(1));
    assert_eq!(uinfo.capacity(), None, "{n}: an unbounded queue's capacity");
    assert!(
        !uinfo.is_full() && uinfo.len() == 1,
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
                Waiter::start(format!("consumer {k}"), move || {
                    super::run_consumer(&c, None)
                })
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

// ---------------------------------------------------------------------------------------------
// Shutdown and close.

/// After `shutdown(false)` every put fails with `Closed` (the item handed back), through any
/// handle, new ones included; gets drain what is left and then fail with `Closed` at once, in
/// every form. Shutting down twice changes nothing.
pub fn shutdown_drains_then_fails<F: Factory>(f: &F) {
    let q = f.create(Capacity::Bounded(4));
    let (p, c) = (f.producer(&q), f.consumer(&q));
    put(f, &p, Item::new(1));
    put(f, &p, Item::new(2));
    let who = shutter(f, &q);
    who.shutdown(false);
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
    who.shutdown(false);
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
    shutter(f, &q).shutdown(immediate);
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
    shutter(f, &q).shutdown(immediate);
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
    shutter(f, &q).shutdown(true);
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
        assert_eq!(info.len(), 0, "{}: len after shutdown(true)", name(f));
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
    s.shutdown(false);
    let first = take(f, &c, 1);
    assert_eq!(first.len(), 1);
    s.shutdown(true);
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
    p1.close();
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
    p1.close(); // twice: no-op
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
    p1.close();
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

// ---------------------------------------------------------------------------------------------
// task_done and join.

macro_rules! joinable_or_return {
    ($f:expr, $h:expr, $case:literal) => {
        match F::joinable($h) {
            Ok(j) => j,
            Err(why) => return not_met($f, $case, why),
        }
    };
}

/// `join` returns at once when no task is outstanding, before any put and after every
/// `task_done`.
pub fn join_with_nothing_outstanding<F: Factory>(f: &F) {
    let q = f.create(Capacity::Unbounded);
    let (p, c) = (f.producer(&q), f.consumer(&q));
    let j = joinable_or_return!(f, &p, "join_with_nothing_outstanding");
    assert!(
        j.join_timeout(GENEROUS),
        "{}: join_timeout on a new queue",
        name(f)
    );
    let (p, ()) = guarded("join on a new queue", p, |p| F::joinable(p).unwrap().join());
    put(f, &p, Item::new(1));
    take(f, &c, 1);
    let jc = F::joinable(&c).unwrap();
    jc.task_done()
        .unwrap_or_else(|e| panic!("{}: task_done: {e}", name(f)));
    let (_p, ()) = guarded("join after every task_done", p, |p| {
        F::joinable(p).unwrap().join()
    });
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
        !jp.join_timeout(SHORT),
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
        let done = jp.join_timeout(Duration::ZERO);
        assert_eq!(
            done,
            k == 2,
            "{}: join_timeout after {} of 3 task_done",
            name(f),
            k + 1
        );
    }
    let (p, ()) = guarded("join after every task_done", p, |p| {
        F::joinable(p).unwrap().join()
    });
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
    w.finish();
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
    p.shutdown(false);
    assert!(
        !jp.join_timeout(SHORT),
        "{}: join with 2 tasks left after shutdown(false)",
        name(f)
    );
    take(f, &c, 2);
    jc.task_done().unwrap();
    jc.task_done().unwrap();
    assert!(
        jp.join_timeout(GENEROUS),
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
    p.shutdown(true);
    assert!(
        !jp.join_timeout(SHORT),
        "{}: join with one item taken and not done, after shutdown(true)",
        name(f)
    );
    jc.task_done().unwrap();
    assert!(
        jp.join_timeout(GENEROUS),
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
    c.shutdown(true);
    w.finish();
}

// ---------------------------------------------------------------------------------------------
// A queue that shuts itself down once its producers are done.

macro_rules! auto_or_return {
    ($f:expr, $capacity:expr, $case:literal) => {
        match $f.create_auto_shutdown($capacity) {
            Ok(q) => q,
            Err(why) => return not_met($f, $case, why),
        }
    };
}

/// On a queue built to shut itself down, one producer's close leaves it open for the others;
/// the last one's close shuts it down: a blocked get wakes with `Closed`, puts fail.
pub fn auto_shutdown_once_every_producer_closed<F: Factory>(f: &F) {
    let q = auto_or_return!(
        f,
        Capacity::Unbounded,
        "auto_shutdown_once_every_producer_closed"
    );
    let (p1, p2, c) = (f.producer(&q), f.producer(&q), f.consumer(&q));
    put(f, &p1, Item::new(1));
    put(f, &p2, Item::new(2));
    p1.close();
    let want = expected_order(f.profile().order, &[Item::new(1), Item::new(2)]);
    assert_eq!(take(f, &c, 2), want, "{}: items of both producers", name(f));
    let (c, r) = guarded("try_get with one producer left", c, |c| c.try_get());
    match r {
        Err(e) => assert!(
            e.is_empty(),
            "{}: one producer of two closed, and try_get gave {e:?}, not Empty",
            name(f)
        ),
        Ok(i) => panic!("{}: try_get returned item {} never put", name(f), i.id),
    }
    let w = Waiter::start("get with one producer left", move || c.get()).until_asleep();
    p2.close();
    expect_closed(f, "a blocked get when the last producer closed", w.finish());
    let late = f.producer(&q);
    let r = late.try_put(Item::new(3));
    expect_refused(
        f,
        "put after the queue shut itself down",
        r,
        "Closed",
        PutError::is_closed,
        3,
    );
}

/// A producer handle that goes away (dropped) counts as closed; a handle that never put is no
/// producer and keeps nothing open.
pub fn auto_shutdown_counts_a_dropped_producer<F: Factory>(f: &F) {
    let q = auto_or_return!(
        f,
        Capacity::Unbounded,
        "auto_shutdown_counts_a_dropped_producer"
    );
    let (p, c) = (f.producer(&q), f.consumer(&q));
    put(f, &p, Item::new(1));
    drop(p);
    let (_c, (a, b)) = guarded("gets after the only producer went", c, |c| {
        (got(c.get()), c.get())
    });
    assert_eq!(a, Ok(1), "{}: what the dropped producer put", name(f));
    expect_closed(f, "get after the only producer was dropped", b);
}

/// Producers in other processes close their handles when done (the Python idiom), and so does
/// the producer here; the consumer then drains everything and gets `Closed`, with no
/// `shutdown` called by anyone.
pub fn auto_shutdown_with_producers_in_other_processes<F: Factory>(f: &F) {
    let q = auto_or_return!(
        f,
        Capacity::Bounded(16),
        "auto_shutdown_with_producers_in_other_processes"
    );
    elsewhere_note(f, "auto_shutdown_with_producers_in_other_processes");
    // This process puts first, so the queue has a producer before any child can close.
    let here = f.producer(&q);
    put(f, &here, Item::new(2_000_000));
    let c = f.consumer(&q);
    let consumer = Waiter::start("consumer until Closed", move || {
        super::run_consumer(&c, None)
    });
    let children: Vec<_> = (0..2)
        .map(|k| {
            let role = Role::Produce {
                first: k * 1_000_000,
                count: PER_PRODUCER,
            };
            Elsewhere::start(f, &q, role)
        })
        .collect();
    for child in children {
        child.finish(f);
    }
    here.close();
    let ids = consumer
        .finish()
        .unwrap_or_else(|e| panic!("{}: the consumer failed: {e}", name(f)));
    producer_order_kept(f, &ids);
    let mut expected: Vec<u64> = (0..2)
        .flat_map(|k| (0..PER_PRODUCER).map(move |i| k * 1_000_000 + i))
        .collect();
    expected.push(2_000_000);
    no_loss_no_duplicate(f, ids, expected);
}

// ---------------------------------------------------------------------------------------------
// Other processes.

/// A producer or consumer elsewhere: a child process, or a thread where the transport has no
/// processes.
enum Elsewhere {
    Process(Box<dyn super::RemoteChild>),
    Thread(Waiter<Result<Vec<u64>, String>>),
}

impl Elsewhere {
    fn start<F: Factory>(f: &F, q: &F::Queue, role: Role) -> Elsewhere {
        match f.remote() {
            Ok(remote) => match remote.start(q, role) {
                Ok(child) => Elsewhere::Process(child),
                Err(e) => panic!(
                    "{}: could not start a child process as {role:?}: {e}",
                    name(f)
                ),
            },
            Err(_) => {
                let what = format!("{role:?} on a thread");
                match role {
                    Role::Produce { first, count } => {
                        let p = f.producer(q);
                        Elsewhere::Thread(Waiter::start(what, move || {
                            super::run_producer(&p, first, count).map(|()| Vec::new())
                        }))
                    }
                    Role::Consume { task_done } => {
                        let c = f.consumer(q);
                        Elsewhere::Thread(Waiter::start(what, move || {
                            let j = if task_done {
                                F::joinable(&c).ok()
                            } else {
                                None
                            };
                            super::run_consumer(&c, j)
                        }))
                    }
                }
            }
        }
    }

    fn until_asleep(self) -> Elsewhere {
        match self {
            Elsewhere::Process(child) => {
                asleep("a consumer process on an empty queue", child.pid());
                Elsewhere::Process(child)
            }
            Elsewhere::Thread(w) => Elsewhere::Thread(w.until_asleep()),
        }
    }

    fn finish<F: Factory>(self, f: &F) -> Vec<u64> {
        let r = match self {
            Elsewhere::Process(child) => child.finish(GENEROUS),
            Elsewhere::Thread(w) => w.finish(),
        };
        r.unwrap_or_else(|e| panic!("{}: a producer or consumer elsewhere failed: {e}", name(f)))
    }
}

/// Says, where the transport has no processes, that the roles run on threads instead.
fn elsewhere_note<F: Factory>(f: &F, case: &str) {
    if let Err(why) = f.remote() {
        not_met(
            f,
            case,
            &format!("{why}; its producers and consumers run on threads instead"),
        );
    }
}

/// Producers in other processes each put their items and close their handle when done (the
/// Python idiom); the consumer here gets every item once, each producer's in order. One
/// producer's close does not refuse another's puts. On a point-to-point link there is one
/// producer, and its close ends the link.
pub fn producers_in_other_processes<F: Factory>(f: &F) {
    elsewhere_note(f, "producers_in_other_processes");
    let q = f.create(Capacity::Bounded(16));
    let c = f.consumer(&q);
    let producers = match f.profile().shape {
        Shape::Queue => 2,
        Shape::PointToPoint => 1,
    };
    let children: Vec<_> = (0..producers)
        .map(|k| {
            let role = Role::Produce {
                first: k * 1_000_000,
                count: PER_PRODUCER,
            };
            Elsewhere::start(f, &q, role)
        })
        .collect();
    let ids = take(f, &c, producers * PER_PRODUCER);
    producer_order_kept(f, &ids);
    for child in children {
        child.finish(f);
    }
    if f.profile().shape == Shape::Queue {
        f.producer(&q).shutdown(false);
    }
    let (_c, r) = guarded("get after the producers are done", c, |c| c.get());
    expect_closed(f, "get after every producer finished", r);
    let expected = (0..producers)
        .flat_map(|k| (0..PER_PRODUCER).map(move |i| k * 1_000_000 + i))
        .collect();
    no_loss_no_duplicate(f, ids, expected);
}

/// Consumers in other processes get until `Closed`; between them they get every item put
/// here exactly once. On a point-to-point link there is one consumer.
pub fn consumers_in_other_processes<F: Factory>(f: &F) {
    elsewhere_note(f, "consumers_in_other_processes");
    let q = f.create(Capacity::Bounded(16));
    let consumers = match f.profile().shape {
        Shape::Queue => 2,
        Shape::PointToPoint => 1,
    };
    let children: Vec<_> = (0..consumers)
        .map(|_| Elsewhere::start(f, &q, Role::Consume { task_done: false }))
        .collect();
    let p = f.producer(&q);
    let total = consumers * PER_PRODUCER;
    for id in 0..total {
        put(f, &p, Item::new(id));
    }
    end_of_stream(f, &q);
    let mut all = Vec::new();
    for child in children {
        let got = child.finish(f);
        producer_order_kept(f, &got);
        all.extend(got);
    }
    no_loss_no_duplicate(f, all, (0..total).collect());
}

/// A consumer in another process, asleep in a get on an empty channel, wakes with `Closed`
/// when the channel is shut down here (a link: when the sending end closes).
pub fn consumer_in_another_process_woken_by_shutdown<F: Factory>(f: &F) {
    elsewhere_note(f, "consumer_in_another_process_woken_by_shutdown");
    let q = f.create(Capacity::Unbounded);
    let child = Elsewhere::start(f, &q, Role::Consume { task_done: false }).until_asleep();
    end_of_stream(f, &q);
    let got = child.finish(f);
    assert!(
        got.is_empty(),
        "{}: the consumer got items never put: {got:?}",
        name(f)
    );
}

/// `join` here returns once consumers in other processes have marked every item done.
pub fn join_across_processes<F: Factory>(f: &F) {
    elsewhere_note(f, "join_across_processes");
    let q = f.create(Capacity::Bounded(16));
    let p = f.producer(&q);
    let _ = joinable_or_return!(f, &p, "join_across_processes");
    let children: Vec<_> = (0..2)
        .map(|_| Elsewhere::start(f, &q, Role::Consume { task_done: true }))
        .collect();
    let total = 2 * PER_PRODUCER;
    for id in 0..total {
        put(f, &p, Item::new(id));
    }
    let (p, ()) = guarded("join while consumers elsewhere mark items done", p, |p| {
        F::joinable(p).unwrap().join()
    });
    p.shutdown(false);
    let mut all = Vec::new();
    for child in children {
        all.extend(child.finish(f));
    }
    no_loss_no_duplicate(f, all, (0..total).collect());
}
