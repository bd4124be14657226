//! Priorities as Python writes them: `(priority, item)` with float priorities, through
//! `PriorityQueue::put_with_priority` and `Prioritized`.

use std::cmp::Reverse;
use std::thread;
use std::time::{Duration, Instant};

use conveyor_thread::{Channel, Prioritized, PriorityQueue};

const PATIENCE: Duration = Duration::from_secs(60);

/// An item with no order of its own: only the priority may decide.
#[derive(Debug, PartialEq)]
struct Job(u32);

fn drain<P: conveyor_thread::Priority, T>(q: &PriorityQueue<Prioritized<P, T>>) -> Vec<(P, T)> {
    std::iter::from_fn(|| q.try_get().ok().map(Prioritized::into_parts)).collect()
}

#[test]
fn float_priorities_come_out_smallest_first() {
    let q = PriorityQueue::unbounded();
    let priorities = [
        3.5,
        -1.0,
        f64::INFINITY,
        0.25,
        f64::NEG_INFINITY,
        1e-300,
        2.0,
    ];
    for (i, p) in priorities.iter().enumerate() {
        q.put_with_priority(*p, Job(i as u32)).unwrap();
    }
    let got: Vec<f64> = drain(&q).into_iter().map(|(p, _)| p).collect();
    let mut want = priorities.to_vec();
    want.sort_by(f64::total_cmp);
    assert_eq!(got, want);
}

#[test]
fn equal_priorities_are_first_in_first_out() {
    let q = PriorityQueue::unbounded();
    // -0.0 and 0.0 are equal, as in Python: they keep their arrival order.
    let puts = [
        (1.0, 0),
        (0.0, 1),
        (1.0, 2),
        (-0.0, 3),
        (0.0, 4),
        (1.0, 5),
        (-0.0, 6),
    ];
    for (p, n) in puts {
        q.put_with_priority(p, Job(n)).unwrap();
    }
    let order: Vec<u32> = drain(&q).into_iter().map(|(_, j)| j.0).collect();
    assert_eq!(order, [1, 3, 4, 6, 0, 2, 5]);
}

#[test]
fn a_nan_priority_is_refused_and_the_item_handed_back() {
    let q = PriorityQueue::bounded(4);
    q.put_with_priority(1.0, Job(1)).unwrap();
    for nan in [f64::NAN, -f64::NAN, f64::INFINITY - f64::INFINITY] {
        let err = q.put_with_priority(nan, Job(7)).unwrap_err();
        assert!(err.is_nan() && !err.is_closed());
        assert!(err.to_string().contains("NaN"), "{err}");
        let (p, job) = err.into_parts();
        assert!(p.is_nan());
        assert_eq!(job, Job(7));
    }
    // through the Channel trait: the entry cannot be made
    let err = Prioritized::new(f32::NAN, Job(8)).unwrap_err();
    assert_eq!(err.into_inner(), Job(8));
    // nothing was queued but the good item
    assert_eq!(q.len(), 1);
    assert_eq!(drain(&q).len(), 1);
}

#[test]
fn tuples_and_reverse_are_priorities_too() {
    let q = PriorityQueue::unbounded();
    q.put_with_priority((2, 0.5), "b").unwrap();
    q.put_with_priority((1, 9.0), "a").unwrap();
    q.put_with_priority((2, 0.1), "c").unwrap();
    assert!(q
        .put_with_priority((0, f64::NAN), "nan")
        .unwrap_err()
        .is_nan());
    let order: Vec<&str> = drain(&q).into_iter().map(|(_, s)| s).collect();
    assert_eq!(order, ["a", "c", "b"]);

    let largest_first = PriorityQueue::unbounded();
    for p in [1.5, 9.0, -3.0] {
        largest_first.put_with_priority(Reverse(p), p).unwrap();
    }
    let order: Vec<f64> = drain(&largest_first).into_iter().map(|(_, v)| v).collect();
    assert_eq!(order, [9.0, 1.5, -3.0]);
}

#[test]
fn the_nonblocking_forms_hand_the_entry_back() {
    let q = PriorityQueue::bounded(1);
    q.try_put(Prioritized::new(1.0, Job(1)).unwrap()).unwrap();
    let err = q
        .try_put(Prioritized::new(0.0, Job(2)).unwrap())
        .unwrap_err();
    assert!(err.is_full());
    assert_eq!(err.into_inner().into_parts(), (0.0, Job(2)));
    let err = q
        .put_timeout(
            Prioritized::new(0.0, Job(3)).unwrap(),
            Duration::from_millis(1),
        )
        .unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(err.into_inner().into_inner(), Job(3));
}

#[test]
fn a_put_with_priority_blocked_on_a_full_queue_fails_on_shutdown_with_its_item() {
    let q = PriorityQueue::bounded(1);
    q.put_with_priority(1.0, Job(1)).unwrap();
    let putter = {
        let q = q.clone();
        thread::spawn(move || q.put_with_priority(0.5, Job(2)))
    };
    let start = Instant::now();
    while q.blocked_putters() == 0 {
        assert!(start.elapsed() < PATIENCE, "the put never blocked");
        thread::yield_now();
    }
    Channel::shutdown(&q, false).unwrap();
    let err = putter.join().unwrap().unwrap_err();
    assert!(err.is_closed());
    assert_eq!(err.into_parts(), (0.5, Job(2)));
    // what was queued before the shutdown still drains
    assert_eq!(q.get().unwrap().into_parts(), (1.0, Job(1)));
    assert!(q.get().unwrap_err().is_closed());
}

#[test]
fn many_producers_keep_priority_order_and_per_priority_fifo() {
    const PRODUCERS: u32 = 4;
    const EACH: u32 = 500;
    let q = PriorityQueue::unbounded();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|who| {
            let q = q.clone();
            thread::spawn(move || {
                for n in 0..EACH {
                    // three priority levels, floats that are not integers
                    let p = f64::from(n % 3) * 0.5 + 0.1;
                    q.put_with_priority(p, (who, n)).unwrap();
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    let got = drain(&q);
    assert_eq!(got.len(), (PRODUCERS * EACH) as usize);
    for pair in got.windows(2) {
        let ((pa, (wa, na)), (pb, (wb, nb))) = (&pair[0], &pair[1]);
        assert!(pa <= pb, "priority {pa} came out before {pb}");
        if pa == pb && wa == wb {
            assert!(na < nb, "producer {wa}: {na} came out after {nb}");
        }
    }
}
