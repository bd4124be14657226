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

use super::{
    asleep, run_consumer, run_producer, within, Bound, Capacity, Factory, Immediate, Item, Order,
    RemoteChild, Role, Shape, Waiter, GENEROUS, SHORT,
};
use crate::{Channel, GetError, PutError, TaskDoneError, Unavailable};

/// How many items each producer puts in the many-producer and multi-process cases.
const PER_PRODUCER: u64 = 1_000;

/// How many items a producer puts to find a buffer's bound with blocking puts: more than any
/// socket buffer holds (each message takes several hundred bytes of one).
const BUFFER_FLOOD: u64 = 20_000;

/// The most items the order script leaves waiting in a channel at once.
const BACKLOG: usize = 24;

/// The most `try_put`s a case makes to fill a channel bounded by a byte buffer.
const FILL_LIMIT: u64 = 1 << 22;

/// The handle's task accounting, or (after saying why the transport has none) return.
macro_rules! joinable_or_return {
    ($f:expr, $h:expr, $case:literal) => {
        match F::joinable($h) {
            Ok(j) => j,
            Err(why) => return not_met($f, $case, why),
        }
    };
}

mod auto_shutdown;
mod cut_off;
mod join;
mod processes;
mod put_get;
mod shutdown;

pub use auto_shutdown::*;
pub use cut_off::*;
pub use join::*;
pub use processes::*;
pub use put_get::*;
pub use shutdown::*;

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

/// The answer of a call that must succeed here (the queue's server, if any, is up).
fn known<F: Factory, T>(f: &F, what: &str, r: Result<T, Unavailable>) -> T {
    r.unwrap_or_else(|e| panic!("{}: {what}: {e}", name(f)))
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
        Shape::Queue => known(f, "shutdown(false)", f.producer(queue).shutdown(false)),
        Shape::PointToPoint => known(f, "close", f.producer(queue).close()),
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
