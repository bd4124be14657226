//! A queue built to shut itself down once every producer handle has closed or gone.

use super::processes::{elsewhere_note, Elsewhere};
use super::*;

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
    known(f, "close", p1.close());
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
    known(f, "close", p2.close());
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
    let consumer = Waiter::start("consumer until Closed", move || run_consumer(&c, None));
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
    known(f, "close", here.close());
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
