//! A port of the behaviours tested by CPython's `Lib/test/test_queue.py` (3.13) to
//! `conveyor_thread`'s `Queue`, `LifoQueue` and `PriorityQueue`.
//!
//! Ported, and from where:
//!
//! - `BaseQueueTestMixin.basic_queue_test` and `test_basic`: ordering per queue kind (the
//!   `111, 333, 222` sequence and its three expected orders), `qsize`/`empty`/`full`,
//!   `put_nowait` and `put(timeout=...)` on a full queue, `get_nowait` and `get(timeout=...)` on
//!   an empty one, and `BlockingTestMixin.do_blocking_test` (a put blocked on a full queue is
//!   released by a get; a get blocked on an empty queue is released by a put) -> `basic_*`,
//!   `blocked_*`, `timeouts_*`.
//! - `test_nowait` -> `nowait_*`.
//! - `queue_join_test`, `test_queue_join`, `test_queue_task_done` (workers summing items and
//!   calling `task_done`, then a sentinel per worker; too many `task_done` calls raise) ->
//!   `join_*`, `task_done_too_many_*`.
//! - The 3.13 `shutdown` tests (`test_shutdown_empty`, `test_shutdown_nonempty`,
//!   `test_shutdown_pending_get`, `_shutdown_put`, `_shutdown_get`, `_shutdown_join`,
//!   `test_shutdown_put_join`, `test_shutdown_get_task_done_join`,
//!   `_shutdown_all_methods_in_many_threads`, `test_shutdown_immediate_*`) -> `shutdown_*`:
//!   conveyor's `shutdown(immediate)` is Python's; the discarded items of `shutdown(true)` count
//!   as done (CPython gh-137088), so `join` returns.
//! - `BaseSimpleQueueTest.test_many_threads`, `test_many_threads_nonblock`,
//!   `test_many_threads_timeout` (`run_threads` with feed/consume functions and a check that
//!   every input comes out once) -> `many_threads_*`, extended with a per-producer FIFO order
//!   check for `Queue`.
//! - `BaseSimpleQueueTest.test_references` -> `drop_*` (items are dropped with the last handle).
//! - `FailingQueueTest` (exceptions raised inside `_put`/`_get` leave the queue usable): the only
//!   user code that runs inside a conveyor queue is `PriorityQueue`'s `Ord`, so it becomes
//!   `priority_panicking_ord_*`.
//!
//! Changed or left out:
//!
//! - Python's blocking tests sleep in a trigger thread and then check the blocked call has not
//!   returned; here the main thread waits until the queue reports the thread asleep
//!   (`blocked_putters`/`blocked_getters`) and then releases it, and every wait on another thread
//!   has a generous timeout instead of a sleep.
//! - Negative timeouts (`test_negative_timeout_raises_exception`) cannot be expressed: a
//!   `Duration` is never negative.
//! - `test_shrinking_queue` changes `maxsize` after creation, which conveyor does not allow.
//! - `close()` is not `queue.Queue`'s (it has none) but `multiprocessing.Queue.close()`: this
//!   handle puts no more; `close_is_per_handle_*` checks that clones are not affected.
//! - `PriorityQueue` is checked to be FIFO among equal items, which Python does not promise.
//! - The C/Python implementation pairs (`CQueueTest`, `PyQueueTest`, ...) become the three
//!   flavors of `Queue` (ring, locked bounded, unbounded) and the other two kinds.

use std::cell::Cell;
use std::cmp::Ordering as CmpOrdering;
use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use conveyor_thread::{Channel, Joinable, LifoQueue, PriorityQueue, Queue, QueueInfo};

/// Python's `QUEUE_SIZE`.
const QUEUE_SIZE: usize = 5;
/// How long a test waits for another thread before it declares a hang.
const PATIENCE: Duration = Duration::from_secs(30);
/// A timeout that a put or get is expected to run out.
const SHORT: Duration = Duration::from_millis(20);

/// Everything the generic tests need from a queue, so that one test body covers all kinds.
trait TestQueue:
    Channel<i64> + QueueInfo + Joinable + Clone + Send + Sync + std::fmt::Debug + 'static
{
    fn blocked_putters(&self) -> usize;
    fn blocked_getters(&self) -> usize;
    fn is_closed(&self) -> bool;
    fn is_shutdown(&self) -> bool;
}

macro_rules! test_queue_impl {
    ($($ty:ty),*) => {$(
        impl TestQueue for $ty {
            fn blocked_putters(&self) -> usize {
                <$ty>::blocked_putters(self)
            }
            fn blocked_getters(&self) -> usize {
                <$ty>::blocked_getters(self)
            }
            fn is_closed(&self) -> bool {
                <$ty>::is_closed(self)
            }
            fn is_shutdown(&self) -> bool {
                <$ty>::is_shutdown(self)
            }
        }
    )*};
}
test_queue_impl!(Queue<i64>, LifoQueue<i64>, PriorityQueue<i64>);

/// Waits (yielding, never sleeping) until `cond` holds; panics after `PATIENCE`.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < PATIENCE, "timed out waiting until {what}");
        thread::yield_now();
    }
}

/// Runs `f` on a thread; returns a receiver of its result.
fn spawn<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> mpsc::Receiver<R> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx
}

/// The kinds under test: a name, a bounded constructor, an unbounded one, and the order in which
/// `111, 333, 222` come out.
struct Kind<Q> {
    bounded: fn(usize) -> Q,
    unbounded: fn() -> Q,
    order: [i64; 3],
}

fn fifo() -> Kind<Queue<i64>> {
    Kind {
        bounded: Queue::bounded,
        unbounded: Queue::unbounded,
        order: [111, 333, 222],
    }
}
fn lifo() -> Kind<LifoQueue<i64>> {
    Kind {
        bounded: LifoQueue::bounded,
        unbounded: LifoQueue::unbounded,
        order: [222, 333, 111],
    }
}
fn priority() -> Kind<PriorityQueue<i64>> {
    Kind {
        bounded: PriorityQueue::bounded,
        unbounded: PriorityQueue::unbounded,
        order: [111, 222, 333],
    }
}

/// `BaseQueueTestMixin.basic_queue_test`.
fn basic_queue_test<Q: TestQueue>(q: &Q, order: [i64; 3]) {
    assert!(q.is_empty().unwrap(), "{q:?} should be empty");
    assert_eq!(q.len().unwrap(), 0);
    q.put(111).unwrap();
    q.put(333).unwrap();
    q.put(222).unwrap();
    let got = [q.get().unwrap(), q.get().unwrap(), q.get().unwrap()];
    assert_eq!(got, order, "didn't come out in the right order");
    for i in 0..QUEUE_SIZE as i64 - 1 {
        q.put(i).unwrap();
        assert!(!q.is_empty().unwrap(), "queue should not be empty");
    }
    assert!(!q.is_full().unwrap(), "queue should not be full");
    let last = QUEUE_SIZE as i64 - 1;
    q.put(last).unwrap();
    assert!(q.is_full().unwrap(), "queue should be full");
    assert!(!q.is_empty().unwrap(), "queue should not be empty");
    assert_eq!(q.len().unwrap(), QUEUE_SIZE);
    assert!(
        q.try_put(last).unwrap_err().is_full(),
        "didn't appear to block with a full queue"
    );
    assert!(q.put_timeout(last, SHORT).unwrap_err().is_timeout());
    // Test a blocking put.
    blocked_put_released_by_get(q, last);
    // Empty it.
    for _ in 0..QUEUE_SIZE {
        q.get().unwrap();
    }
    assert!(q.is_empty().unwrap(), "queue should be empty");
    assert!(
        q.try_get().unwrap_err().is_empty(),
        "didn't appear to block with an empty queue"
    );
    assert!(q.get_timeout(SHORT).unwrap_err().is_timeout());
    // Test a blocking get.
    blocked_get_released_by_put(q, 42);
}

/// `do_blocking_test(q.put, (item,), q.get, ())` on a full queue.
fn blocked_put_released_by_get<Q: TestQueue>(q: &Q, item: i64) {
    assert!(q.is_full().unwrap());
    let putter = {
        let q = q.clone();
        spawn(move || q.put(item).is_ok())
    };
    wait_until("the putter is asleep", || q.blocked_putters() == 1);
    assert!(
        putter.try_recv().is_err(),
        "the put returned while the queue was full"
    );
    q.get().unwrap();
    assert!(putter.recv_timeout(PATIENCE).unwrap(), "the put failed");
    assert!(q.is_full().unwrap());
}

/// `do_blocking_test(q.get, (), q.put, (item,))` on an empty queue.
fn blocked_get_released_by_put<Q: TestQueue>(q: &Q, item: i64) {
    assert!(q.is_empty().unwrap());
    let getter = {
        let q = q.clone();
        spawn(move || q.get().ok())
    };
    wait_until("the getter is asleep", || q.blocked_getters() == 1);
    assert!(
        getter.try_recv().is_err(),
        "the get returned while the queue was empty"
    );
    q.put(item).unwrap();
    assert_eq!(getter.recv_timeout(PATIENCE).unwrap(), Some(item));
    assert!(q.is_empty().unwrap());
}

/// `test_basic`: twice, as Python does, to check the queue is left in a sane state.
fn basic<Q: TestQueue>(kind: Kind<Q>) {
    let q = (kind.bounded)(QUEUE_SIZE);
    basic_queue_test(&q, kind.order);
    basic_queue_test(&q, kind.order);
}

#[test]
fn basic_fifo() {
    basic(fifo());
}
#[test]
fn basic_lifo() {
    basic(lifo());
}
#[test]
fn basic_priority() {
    basic(priority());
}

/// The bounded FIFO whose capacity is too large to preallocate as a ring, and so is a growing
/// deque under a lock: the same behaviour on a full queue.
#[test]
fn basic_fifo_large_capacity() {
    type Big = [u64; 512];
    let cap = 4097; // 4097 slots of 4 KiB and a stamp each: more than the 16 MiB ring limit.
    let q: Queue<Big> = Queue::bounded(cap);
    assert_eq!(q.capacity(), Some(cap));
    for i in 0..cap {
        q.try_put([i as u64; 512]).unwrap();
    }
    assert!(q.is_full());
    assert!(q.try_put([0; 512]).unwrap_err().is_full());
    assert!(q.put_timeout([0; 512], SHORT).unwrap_err().is_timeout());
    let putter = {
        let q = q.clone();
        spawn(move || q.put([7; 512]).is_ok())
    };
    wait_until("the putter is asleep", || q.blocked_putters() == 1);
    assert_eq!(q.get().unwrap()[0], 0);
    assert!(putter.recv_timeout(PATIENCE).unwrap());
    for i in 1..cap {
        assert_eq!(q.get().unwrap()[0], i as u64);
    }
    assert_eq!(q.get().unwrap()[0], 7);
    assert!(q.is_empty());
}

/// `test_nowait`.
fn nowait<Q: TestQueue>(kind: Kind<Q>) {
    let q = (kind.bounded)(QUEUE_SIZE);
    for i in 0..QUEUE_SIZE as i64 {
        q.try_put(i).unwrap();
    }
    let err = q.try_put(99).unwrap_err();
    assert!(err.is_full());
    assert_eq!(err.into_inner(), 99, "a failed put hands the item back");
    for _ in 0..QUEUE_SIZE {
        q.try_get().unwrap();
    }
    assert!(q.try_get().unwrap_err().is_empty());
}

#[test]
fn nowait_fifo() {
    nowait(fifo());
}
#[test]
fn nowait_lifo() {
    nowait(lifo());
}
#[test]
fn nowait_priority() {
    nowait(priority());
}

/// Timeouts run out on the monotonic clock and hand the item back.
fn timeouts<Q: TestQueue>(kind: Kind<Q>) {
    let q = (kind.bounded)(1);
    let start = Instant::now();
    assert!(q.get_timeout(SHORT).unwrap_err().is_timeout());
    assert!(start.elapsed() >= SHORT);
    q.put(1).unwrap();
    let start = Instant::now();
    let err = q.put_timeout(2, SHORT).unwrap_err();
    assert!(start.elapsed() >= SHORT);
    assert!(err.is_timeout());
    assert_eq!(err.into_inner(), 2);
    // A zero timeout acts like the non-blocking call.
    assert!(q.put_timeout(3, Duration::ZERO).unwrap_err().is_timeout());
    assert_eq!(q.get_timeout(Duration::ZERO).unwrap(), 1);
    // An enormous timeout does not overflow the clock: it waits as long as needed.
    let getter = {
        let q = q.clone();
        spawn(move || q.get_timeout(Duration::MAX).ok())
    };
    wait_until("the getter is asleep", || q.blocked_getters() == 1);
    q.put(4).unwrap();
    assert_eq!(getter.recv_timeout(PATIENCE).unwrap(), Some(4));
}

#[test]
fn timeouts_fifo() {
    timeouts(fifo());
}
#[test]
fn timeouts_lifo() {
    timeouts(lifo());
}
#[test]
fn timeouts_priority() {
    timeouts(priority());
}

/// Unbounded queues never block a put, and `bounded(0)` is unbounded, as `maxsize=0` is.
fn unbounded<Q: TestQueue>(kind: Kind<Q>) {
    for q in [(kind.unbounded)(), (kind.bounded)(0)] {
        assert_eq!(q.capacity().unwrap(), None);
        for i in 0..10_000 {
            q.try_put(i).unwrap();
            assert!(!q.is_full().unwrap());
        }
        assert_eq!(q.len().unwrap(), 10_000);
        let mut got: Vec<i64> = (0..10_000).map(|_| q.try_get().unwrap()).collect();
        got.sort();
        assert_eq!(got, (0..10_000).collect::<Vec<_>>());
        blocked_get_released_by_put(&q, 5);
    }
}

#[test]
fn unbounded_fifo() {
    unbounded(fifo());
    // FIFO order holds in the unbounded flavor too.
    let q = Queue::unbounded();
    for i in 0..100 {
        q.put(i).unwrap();
    }
    assert_eq!(
        (0..100).map(|_| q.get().unwrap()).collect::<Vec<_>>(),
        (0..100).collect::<Vec<_>>()
    );
}
#[test]
fn unbounded_lifo() {
    unbounded(lifo());
}
#[test]
fn unbounded_priority() {
    unbounded(priority());
}

/// `queue_join_test`: two workers sum what they get and call `task_done`; `join` returns once
/// all is summed; then one sentinel per worker.
fn queue_join_test<Q: TestQueue>(q: &Q) {
    let cum = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let q = q.clone();
            let cum = cum.clone();
            spawn(move || loop {
                let x = q.get().unwrap();
                if x < 0 {
                    q.task_done().unwrap();
                    return;
                }
                cum.fetch_add(x as usize, Ordering::SeqCst);
                q.task_done().unwrap();
            })
        })
        .collect();
    for i in 0..100 {
        q.put(i).unwrap();
    }
    assert!(q.join_timeout(PATIENCE).unwrap(), "join did not return");
    assert_eq!(
        cum.load(Ordering::SeqCst),
        (0..100).sum::<usize>(),
        "q.join() did not block until all tasks were done"
    );
    for _ in 0..2 {
        q.put(-1).unwrap(); // one sentinel per worker
    }
    q.join().unwrap();
    for w in workers {
        w.recv_timeout(PATIENCE).unwrap();
    }
}

/// `test_queue_join` and `test_queue_task_done`.
fn join<Q: TestQueue>(kind: Kind<Q>) {
    for q in [(kind.bounded)(QUEUE_SIZE), (kind.unbounded)()] {
        // Nothing outstanding: join returns at once.
        q.join().unwrap();
        assert!(q.join_timeout(Duration::ZERO).unwrap());
        queue_join_test(&q);
        queue_join_test(&q);
        assert!(
            q.task_done().is_err(),
            "did not detect the task count going negative"
        );
        // An item put and not done keeps join waiting.
        q.put(1).unwrap();
        assert!(!q.join_timeout(SHORT).unwrap());
        q.get().unwrap();
        assert!(
            !q.join_timeout(Duration::ZERO).unwrap(),
            "a get is not a task_done"
        );
        q.task_done().unwrap();
        assert!(q.join_timeout(Duration::ZERO).unwrap());
    }
}

#[test]
fn join_fifo() {
    join(fifo());
}
#[test]
fn join_lifo() {
    join(lifo());
}
#[test]
fn join_priority() {
    join(priority());
}

/// `test_queue_task_done`: more `task_done` than puts is an error, whatever was taken.
fn task_done_too_many<Q: TestQueue>(kind: Kind<Q>) {
    let q = (kind.bounded)(QUEUE_SIZE);
    let err = q.task_done().unwrap_err();
    assert!(matches!(err, conveyor_thread::TaskDoneError::TooManyCalls));
    q.put(1).unwrap();
    q.put(2).unwrap();
    q.task_done().unwrap(); // allowed before the get, as in Python
    q.task_done().unwrap();
    assert!(q.task_done().is_err());
    // The failed call changed nothing: one more put needs exactly one more task_done.
    q.put(3).unwrap();
    assert!(!q.join_timeout(Duration::ZERO).unwrap());
    q.task_done().unwrap();
    assert!(q.join_timeout(Duration::ZERO).unwrap());
}

#[test]
fn task_done_too_many_fifo() {
    task_done_too_many(fifo());
    // Many laps around a small ring: the count read off the ring's tail stays right.
    let q = Queue::bounded(3);
    for i in 0..1000 {
        q.put(i).unwrap();
        q.get().unwrap();
        q.task_done().unwrap();
        assert!(q.task_done().is_err());
    }
    q.join();
}
#[test]
fn task_done_too_many_lifo() {
    task_done_too_many(lifo());
}
#[test]
fn task_done_too_many_priority() {
    task_done_too_many(priority());
}

/// `test_shutdown_empty`, `test_shutdown_nonempty` and the put/get halves of the shutdown tests.
fn shutdown_with_items_left<Q: TestQueue>(kind: Kind<Q>) {
    for q in [(kind.bounded)(QUEUE_SIZE), (kind.unbounded)()] {
        q.put(111).unwrap();
        q.put(333).unwrap();
        q.put(222).unwrap();
        assert!(!q.is_closed());
        assert!(!q.is_shutdown());
        q.shutdown(false).unwrap();
        q.shutdown(false).unwrap(); // twice is a no-op
        assert!(q.is_closed());
        assert!(q.is_shutdown());
        let err = q.put(5).unwrap_err();
        assert!(err.is_closed());
        assert_eq!(err.into_inner(), 5);
        assert!(q.try_put(5).unwrap_err().is_closed());
        assert!(q.put_timeout(5, SHORT).unwrap_err().is_closed());
        assert_eq!(q.len().unwrap(), 3);
        let drained = [
            q.get().unwrap(),
            q.try_get().unwrap(),
            q.get_timeout(SHORT).unwrap(),
        ];
        assert_eq!(drained, kind.order);
        assert!(q.get().unwrap_err().is_closed());
        assert!(q.try_get().unwrap_err().is_closed());
        assert!(q.get_timeout(SHORT).unwrap_err().is_closed());
        assert!(q.is_empty().unwrap());
    }
    let q = (kind.unbounded)();
    q.shutdown(false).unwrap();
    assert!(q.put(1).unwrap_err().is_closed());
    assert!(q.get().unwrap_err().is_closed());
}

#[test]
fn shutdown_with_items_left_fifo() {
    shutdown_with_items_left(fifo());
}
#[test]
fn shutdown_with_items_left_lifo() {
    shutdown_with_items_left(lifo());
}
#[test]
fn shutdown_with_items_left_priority() {
    shutdown_with_items_left(priority());
}

/// `test_shutdown_pending_get` and `_shutdown_put`: every blocked getter and putter wakes with
/// `Closed`.
fn shutdown_wakes_blocked<Q: TestQueue>(kind: Kind<Q>) {
    // Getters blocked on an empty queue, with and without a timeout.
    let q = (kind.bounded)(2);
    let getters: Vec<_> = (0..3)
        .map(|i| {
            let q = q.clone();
            spawn(move || {
                if i == 0 {
                    q.get_timeout(PATIENCE * 2)
                } else {
                    q.get()
                }
            })
        })
        .collect();
    wait_until("all getters are asleep", || q.blocked_getters() == 3);
    q.shutdown(false).unwrap();
    for g in getters {
        assert!(g.recv_timeout(PATIENCE).unwrap().unwrap_err().is_closed());
    }
    // Putters blocked on a full queue.
    let q = (kind.bounded)(2);
    q.put(1).unwrap();
    q.put(2).unwrap();
    let putters: Vec<_> = (0..3)
        .map(|i| {
            let q = q.clone();
            spawn(move || {
                let r = if i == 0 {
                    q.put_timeout(10 + i, PATIENCE * 2)
                } else {
                    q.put(10 + i)
                };
                r.map_err(|e| (e.is_closed(), e.into_inner()))
            })
        })
        .collect();
    wait_until("all putters are asleep", || q.blocked_putters() == 3);
    q.shutdown(false).unwrap();
    let mut returned: Vec<i64> = putters
        .into_iter()
        .map(|p| {
            let (closed, item) = p.recv_timeout(PATIENCE).unwrap().unwrap_err();
            assert!(closed);
            item
        })
        .collect();
    returned.sort();
    assert_eq!(returned, [10, 11, 12], "every refused item comes back");
    // What was in before the shutdown is still drained.
    let mut left = vec![q.get().unwrap(), q.get().unwrap()];
    left.sort();
    assert_eq!(left, [1, 2]);
    assert!(q.get().unwrap_err().is_closed());
}

#[test]
fn shutdown_wakes_blocked_fifo() {
    shutdown_wakes_blocked(fifo());
}
#[test]
fn shutdown_wakes_blocked_lifo() {
    shutdown_wakes_blocked(lifo());
}
#[test]
fn shutdown_wakes_blocked_priority() {
    shutdown_wakes_blocked(priority());
}

/// `test_shutdown_put_join` and `test_shutdown_get_task_done_join`: `shutdown(false)` does not
/// release `join`; the items left must still be taken and marked done.
fn shutdown_then_join<Q: TestQueue>(kind: Kind<Q>) {
    let q = (kind.bounded)(QUEUE_SIZE);
    q.put(1).unwrap();
    q.put(2).unwrap();
    q.shutdown(false).unwrap();
    assert!(
        !q.join_timeout(SHORT).unwrap(),
        "shutdown(false) must not release join"
    );
    let worker = {
        let q = q.clone();
        spawn(move || {
            let mut n = 0;
            while q.get().is_ok() {
                q.task_done().unwrap();
                n += 1;
            }
            n
        })
    };
    assert!(q.join_timeout(PATIENCE).unwrap());
    assert_eq!(worker.recv_timeout(PATIENCE).unwrap(), 2);
    assert!(q.task_done().is_err());
}

#[test]
fn shutdown_then_join_fifo() {
    shutdown_then_join(fifo());
}
#[test]
fn shutdown_then_join_lifo() {
    shutdown_then_join(lifo());
}
#[test]
fn shutdown_then_join_priority() {
    shutdown_then_join(priority());
}

/// `test_shutdown_immediate_*` and `_shutdown_immediate_join` (with gh-137088's rule): the items
/// left are discarded and count as done, so `join` waits only for the items already taken; every
/// get, through any handle, fails with `Closed` at once.
fn shutdown_immediate<Q: TestQueue>(kind: Kind<Q>) {
    for q in [(kind.bounded)(QUEUE_SIZE), (kind.unbounded)()] {
        let other = q.clone();
        for i in 0..4 {
            q.put(i).unwrap();
        }
        let taken = other.get().unwrap();
        assert!((0..4).contains(&taken));
        q.shutdown(true).unwrap();
        assert!(q.is_shutdown() && other.is_shutdown());
        assert!(q.is_empty().unwrap(), "the items left were not discarded");
        assert!(other.get().unwrap_err().is_closed());
        assert!(other.try_get().unwrap_err().is_closed());
        assert!(other.get_timeout(SHORT).unwrap_err().is_closed());
        assert_eq!(other.put(9).unwrap_err().into_inner(), 9);
        // The taken item is still outstanding; the three discarded ones are done.
        assert!(
            !q.join_timeout(SHORT).unwrap(),
            "join must wait for the item taken"
        );
        other.task_done().unwrap();
        assert!(q.join_timeout(PATIENCE).unwrap());
        assert!(q.task_done().is_err(), "discarded items count as done once");
    }
    // `shutdown(true)` after `shutdown(false)` still discards.
    let q = (kind.bounded)(QUEUE_SIZE);
    q.put(1).unwrap();
    q.put(2).unwrap();
    q.shutdown(false).unwrap();
    assert!(q.get().is_ok());
    q.shutdown(true).unwrap();
    assert!(q.get().unwrap_err().is_closed());
    q.task_done().unwrap();
    assert!(q.join_timeout(PATIENCE).unwrap());
    // Discarding never takes the count below zero: items marked done before they were taken.
    let q = (kind.bounded)(QUEUE_SIZE);
    q.put(1).unwrap();
    q.put(2).unwrap();
    q.task_done().unwrap();
    q.task_done().unwrap();
    q.shutdown(true).unwrap();
    assert!(q.task_done().is_err());
    assert!(q.join_timeout(PATIENCE).unwrap());
}

#[test]
fn shutdown_immediate_fifo() {
    shutdown_immediate(fifo());
}
#[test]
fn shutdown_immediate_lifo() {
    shutdown_immediate(lifo());
}
#[test]
fn shutdown_immediate_priority() {
    shutdown_immediate(priority());
}

/// `_shutdown_immediate_all_methods` with blocked callers: blocked getters and putters wake with
/// `Closed` (putters get their items back), and a blocked `join` returns once the discarded items
/// count as done.
fn shutdown_immediate_wakes_blocked<Q: TestQueue>(kind: Kind<Q>) {
    let q = (kind.bounded)(2);
    let getters: Vec<_> = (0..2)
        .map(|_| {
            let q = q.clone();
            spawn(move || q.get())
        })
        .collect();
    wait_until("both getters are asleep", || q.blocked_getters() == 2);
    q.shutdown(true).unwrap();
    for g in getters {
        assert!(g.recv_timeout(PATIENCE).unwrap().unwrap_err().is_closed());
    }

    let q = (kind.bounded)(2);
    q.put(1).unwrap();
    q.put(2).unwrap();
    let putter = {
        let q = q.clone();
        spawn(move || q.put(3).map_err(|e| (e.is_closed(), e.into_inner())))
    };
    let joiner = {
        let q = q.clone();
        spawn(move || q.join_timeout(PATIENCE).unwrap())
    };
    wait_until("the putter is asleep", || q.blocked_putters() == 1);
    q.shutdown(true).unwrap();
    assert_eq!(putter.recv_timeout(PATIENCE).unwrap(), Err((true, 3)));
    assert!(
        joiner.recv_timeout(PATIENCE).unwrap(),
        "join was not released"
    );
    assert!(q.get().unwrap_err().is_closed());
}

#[test]
fn shutdown_immediate_wakes_blocked_fifo() {
    shutdown_immediate_wakes_blocked(fifo());
}
#[test]
fn shutdown_immediate_wakes_blocked_lifo() {
    shutdown_immediate_wakes_blocked(lifo());
}
#[test]
fn shutdown_immediate_wakes_blocked_priority() {
    shutdown_immediate_wakes_blocked(priority());
}

/// `close()` is `multiprocessing.Queue.close()`: this handle puts no more. Clones are other
/// handles; gets, `join` and the queue itself go on.
fn close_is_per_handle<Q: TestQueue>(kind: Kind<Q>) {
    let q = (kind.bounded)(QUEUE_SIZE);
    let producer = q.clone();
    producer.put(1).unwrap();
    producer.close().unwrap();
    producer.close().unwrap(); // twice is a no-op
    assert!(producer.is_closed());
    assert!(!producer.is_shutdown());
    let err = producer.try_put(2).unwrap_err();
    assert!(err.is_closed());
    assert_eq!(err.into_inner(), 2);
    assert!(producer.put(2).unwrap_err().is_closed());
    assert!(producer.put_timeout(2, SHORT).unwrap_err().is_closed());
    // Other handles, and a clone of the closed one, still put.
    assert!(!q.is_closed());
    q.put(3).unwrap();
    producer.clone().put(4).unwrap();
    // The closed handle still gets.
    assert_eq!(producer.len().unwrap(), 3);
    for _ in 0..3 {
        producer.get().unwrap();
        producer.task_done().unwrap();
    }
    assert!(producer.try_get().unwrap_err().is_empty());
    assert!(q.join_timeout(PATIENCE).unwrap());
}

#[test]
fn close_is_per_handle_fifo() {
    close_is_per_handle(fifo());
}
#[test]
fn close_is_per_handle_lifo() {
    close_is_per_handle(lifo());
}
#[test]
fn close_is_per_handle_priority() {
    close_is_per_handle(priority());
}

/// `shutdown(true)` racing with producers and consumers that mark every item done: nothing is
/// received twice, nothing is received that no put accepted, and `join` returns.
fn shutdown_immediate_races<Q: TestQueue>(q: Q) {
    let received = Arc::new(AtomicUsize::new(0));
    let producers: Vec<_> = (0..2i64)
        .map(|id| {
            let q = q.clone();
            spawn(move || {
                let mut accepted = Vec::new();
                for seq in 0.. {
                    match q.put(id * 1_000_000 + seq) {
                        Ok(()) => accepted.push(id * 1_000_000 + seq),
                        Err(e) => {
                            assert!(e.is_closed());
                            return accepted;
                        }
                    }
                }
                unreachable!("the loop ends with the shutdown")
            })
        })
        .collect();
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let q = q.clone();
            let received = received.clone();
            spawn(move || {
                let mut got = Vec::new();
                loop {
                    match q.get() {
                        Ok(v) => {
                            got.push(v);
                            q.task_done().unwrap();
                            received.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => {
                            assert!(e.is_closed());
                            return got;
                        }
                    }
                }
            })
        })
        .collect();
    wait_until("some items went through", || {
        received.load(Ordering::SeqCst) > 100
    });
    q.shutdown(true).unwrap();
    let accepted: HashSet<i64> = producers
        .into_iter()
        .flat_map(|p| p.recv_timeout(PATIENCE).expect("a producer hung"))
        .collect();
    let mut got = HashSet::new();
    for c in consumers {
        for v in c.recv_timeout(PATIENCE).expect("a consumer hung") {
            assert!(got.insert(v), "{v} was received twice");
        }
    }
    assert!(got.is_subset(&accepted), "an item no put accepted came out");
    assert!(q.is_empty().unwrap());
    assert!(q.join_timeout(PATIENCE).unwrap(), "join was not released");
}

#[test]
fn shutdown_immediate_races_all_kinds() {
    shutdown_immediate_races(Queue::bounded(8));
    shutdown_immediate_races(Queue::unbounded());
    shutdown_immediate_races(LifoQueue::bounded(8));
    shutdown_immediate_races(PriorityQueue::bounded(8));
}

/// How many items each producer puts in the many-threads tests.
fn items_per_producer() -> i64 {
    if std::env::var_os("CI").is_some() {
        2_000
    } else {
        20_000
    }
}

/// How a producer or consumer waits in `many_threads`.
#[derive(Clone, Copy, Debug)]
enum Mode {
    Block,
    NonBlock,
    Timeout,
}

/// `test_many_threads` and its `_nonblock` and `_timeout` variants: `p` producers put tagged
/// items, `c` consumers take until the queue is closed and drained. Checks that every item comes
/// out exactly once and, when `fifo`, that each consumer saw each producer's items in order.
fn many_threads<Q: TestQueue>(q: Q, p: i64, c: usize, mode: Mode, fifo: bool) {
    let n = items_per_producer();
    let start = Arc::new(Barrier::new(p as usize + c));
    let producers: Vec<_> = (0..p)
        .map(|id| {
            let q = q.clone();
            let start = start.clone();
            spawn(move || {
                start.wait();
                for seq in 0..n {
                    let mut item = id * n + seq;
                    loop {
                        let r = match mode {
                            Mode::Block => q.put(item),
                            Mode::NonBlock => q.try_put(item),
                            Mode::Timeout => q.put_timeout(item, Duration::from_millis(1)),
                        };
                        match r {
                            Ok(()) => break,
                            Err(e) if e.is_full() || e.is_timeout() => {
                                item = e.into_inner();
                                thread::yield_now();
                            }
                            Err(e) => panic!("put failed: {e}"),
                        }
                    }
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..c)
        .map(|_| {
            let q = q.clone();
            let start = start.clone();
            spawn(move || {
                start.wait();
                let mut got = Vec::new();
                loop {
                    let r = match mode {
                        Mode::Block => q.get(),
                        Mode::NonBlock => q.try_get(),
                        Mode::Timeout => q.get_timeout(Duration::from_millis(1)),
                    };
                    match r {
                        Ok(v) => got.push(v),
                        Err(e) if e.is_closed() => return got,
                        Err(e) if e.is_empty() || e.is_timeout() => thread::yield_now(),
                        Err(e) => panic!("get failed: {e}"),
                    }
                }
            })
        })
        .collect();
    for prod in producers {
        prod.recv_timeout(PATIENCE).expect("a producer hung");
    }
    q.shutdown(false).unwrap();
    let mut seen = HashSet::new();
    for cons in consumers {
        let got = cons.recv_timeout(PATIENCE).expect("a consumer hung");
        let mut last = vec![-1i64; p as usize];
        for v in got {
            assert!(seen.insert(v), "{v} came out twice");
            if fifo {
                let (id, seq) = ((v / n) as usize, v % n);
                assert!(
                    seq > last[id],
                    "producer {id}'s items out of order: {seq} after {}",
                    last[id]
                );
                last[id] = seq;
            }
        }
    }
    assert_eq!(seen.len() as i64, p * n, "items were lost");
}

#[test]
fn many_threads_fifo_ring() {
    for mode in [Mode::Block, Mode::NonBlock, Mode::Timeout] {
        many_threads(Queue::bounded(4), 4, 4, mode, true);
    }
    many_threads(Queue::bounded(1), 2, 2, Mode::Block, true);
    many_threads(Queue::bounded(1024), 1, 1, Mode::Block, true);
}
#[test]
fn many_threads_fifo_unbounded() {
    for mode in [Mode::Block, Mode::NonBlock, Mode::Timeout] {
        many_threads(Queue::unbounded(), 4, 4, mode, true);
    }
}
#[test]
fn many_threads_lifo() {
    for mode in [Mode::Block, Mode::NonBlock, Mode::Timeout] {
        many_threads(LifoQueue::bounded(4), 4, 4, mode, false);
    }
    many_threads(LifoQueue::unbounded(), 3, 2, Mode::Block, false);
}
#[test]
fn many_threads_priority() {
    for mode in [Mode::Block, Mode::NonBlock, Mode::Timeout] {
        many_threads(PriorityQueue::bounded(4), 4, 4, mode, false);
    }
    many_threads(PriorityQueue::unbounded(), 3, 2, Mode::Block, false);
}

/// An item that counts its drops.
#[derive(Debug)]
struct Counted(Arc<AtomicUsize>, u32);
impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}
impl PartialEq for Counted {
    fn eq(&self, other: &Self) -> bool {
        self.1 == other.1
    }
}
impl Eq for Counted {}
impl PartialOrd for Counted {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Counted {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        self.1.cmp(&other.1)
    }
}

/// `test_references`: items left inside are dropped, exactly once, with the last handle.
fn drop_leftovers<Q: Channel<Counted> + Clone>(make: impl Fn() -> Q) {
    let drops = Arc::new(AtomicUsize::new(0));
    let q = make();
    let other = q.clone();
    for i in 0..5 {
        q.put(Counted(drops.clone(), i)).unwrap();
    }
    drop(q.get().unwrap());
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    // A refused item comes back and is dropped by its owner, not by the queue.
    other.close().unwrap();
    drop(
        other
            .put(Counted(drops.clone(), 9))
            .unwrap_err()
            .into_inner(),
    );
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    drop(q);
    assert_eq!(drops.load(Ordering::SeqCst), 2, "a handle is still alive");
    drop(other);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        6,
        "the four items left were not all dropped"
    );
}

#[test]
fn drop_leftovers_all_kinds() {
    drop_leftovers(|| Queue::bounded(8));
    drop_leftovers(|| Queue::bounded(5)); // a full ring, wrapped around once
    drop_leftovers(Queue::unbounded);
    drop_leftovers(|| LifoQueue::bounded(8));
    drop_leftovers(PriorityQueue::unbounded);
    // Items on a ring that has lapped many times.
    let drops = Arc::new(AtomicUsize::new(0));
    let q = Queue::bounded(3);
    for i in 0..100 {
        if q.is_full() {
            drop(q.get().unwrap());
        }
        q.put(Counted(drops.clone(), i)).unwrap();
    }
    let left = q.len();
    let before = drops.load(Ordering::SeqCst);
    drop(q);
    assert_eq!(drops.load(Ordering::SeqCst), before + left);
}

/// `PriorityQueue` is FIFO among equal items.
#[test]
fn priority_is_stable() {
    let q = PriorityQueue::unbounded();
    for (i, p) in [3, 1, 2, 1, 3, 1, 2].into_iter().enumerate() {
        q.put((std::cmp::Reverse(0), p, Tagged(i))).unwrap();
    }
    let got: Vec<(u32, usize)> = (0..7)
        .map(|_| {
            let (_, p, t) = q.get().unwrap();
            (p, t.0)
        })
        .collect();
    assert_eq!(
        got,
        [(1, 1), (1, 3), (1, 5), (2, 2), (2, 6), (3, 0), (3, 4)]
    );

    /// Equal to every other `Tagged`: only arrival can order them.
    #[derive(Debug)]
    struct Tagged(usize);
    impl PartialEq for Tagged {
        fn eq(&self, _: &Self) -> bool {
            true
        }
    }
    impl Eq for Tagged {}
    impl PartialOrd for Tagged {
        fn partial_cmp(&self, o: &Self) -> Option<CmpOrdering> {
            Some(self.cmp(o))
        }
    }
    impl Ord for Tagged {
        fn cmp(&self, _: &Self) -> CmpOrdering {
            CmpOrdering::Equal
        }
    }
}

/// An item whose `Ord` panics while `armed` is set.
#[derive(Debug)]
struct Bomb {
    key: u32,
    armed: Arc<AtomicBool>,
    drops: Arc<AtomicUsize>,
}
impl Drop for Bomb {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}
impl PartialEq for Bomb {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == CmpOrdering::Equal
    }
}
impl Eq for Bomb {}
impl PartialOrd for Bomb {
    fn partial_cmp(&self, o: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(o))
    }
}
impl Ord for Bomb {
    fn cmp(&self, o: &Self) -> CmpOrdering {
        if self.armed.load(Ordering::SeqCst) {
            panic!("Ord exploded (on purpose)");
        }
        self.key.cmp(&o.key)
    }
}

/// `FailingQueueTest`: a panic in the item's `Ord` during a put (or a get) leaves the queue
/// usable, with no lost or duplicated item and no poisoned lock.
#[test]
fn priority_panicking_ord_leaves_queue_usable() {
    let armed = Arc::new(AtomicBool::new(false));
    let drops = Arc::new(AtomicUsize::new(0));
    let bomb = |key| Bomb {
        key,
        armed: armed.clone(),
        drops: drops.clone(),
    };
    let q = PriorityQueue::bounded(QUEUE_SIZE);
    for key in [50, 10, 90, 30] {
        q.put(bomb(key)).unwrap();
    }
    // Silence the expected panic messages.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    armed.store(true, Ordering::SeqCst);
    let put = catch_unwind(AssertUnwindSafe(|| q.put(bomb(20))));
    let get = catch_unwind(AssertUnwindSafe(|| q.get()));
    armed.store(false, Ordering::SeqCst);
    std::panic::set_hook(hook);
    assert!(
        put.is_err() && get.is_err(),
        "the comparisons should have panicked"
    );
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "the panicking put drops its own item only"
    );
    assert_eq!(q.len(), 4);
    // Still usable: puts, blocking puts, gets in the right order.
    q.put(bomb(20)).unwrap();
    assert!(q.is_full());
    blocked_put_released_by_get_bomb(&q, bomb(99));
    let keys: Vec<u32> = (0..QUEUE_SIZE).map(|_| q.get().unwrap().key).collect();
    assert_eq!(keys, [20, 30, 50, 90, 99]);
    assert!(q.is_empty());

    fn blocked_put_released_by_get_bomb(q: &PriorityQueue<Bomb>, item: Bomb) {
        let putter = {
            let q = q.clone();
            spawn(move || q.put(item).is_ok())
        };
        wait_until("the putter is asleep", || q.blocked_putters() == 1);
        assert_eq!(q.get().unwrap().key, 10);
        assert!(putter.recv_timeout(PATIENCE).unwrap());
    }
}

/// Handles are `Clone + Send + Sync` for any `T: Send`, `Clone` or not, `Sync` or not.
#[test]
fn handles_are_clone_send_sync_for_non_sync_items() {
    fn assert_handle<H: Clone + Send + Sync + 'static>() {}
    /// Neither `Clone` nor `Sync`, but `Send` and `Ord`.
    #[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
    struct NotSync(u32, std::marker::PhantomData<Cell<u8>>);
    assert_handle::<Queue<Cell<u32>>>();
    assert_handle::<LifoQueue<Cell<u32>>>();
    assert_handle::<PriorityQueue<NotSync>>();
    assert_handle::<Queue<NotSync>>();

    let q = Queue::bounded(2);
    let lifo = LifoQueue::unbounded();
    let prio = PriorityQueue::unbounded();
    let (q2, lifo2, prio2) = (q.clone(), lifo.clone(), prio.clone());
    let t = spawn(move || {
        for i in 0..10 {
            q2.put(Cell::new(i)).unwrap();
            lifo2.put(Cell::new(i)).unwrap();
            prio2.put(NotSync(10 - i, Default::default())).unwrap();
        }
    });
    let sum: u32 = (0..10).map(|_| q.get().unwrap().get()).sum();
    t.recv_timeout(PATIENCE).unwrap();
    assert_eq!(sum, 45);
    assert_eq!(lifo.get().unwrap().get(), 9);
    assert_eq!(prio.get().unwrap().0, 1);
}

/// The same queue seen through the traits and through the inherent methods.
#[test]
fn traits_and_inherent_methods_agree() {
    fn via_traits<C: Channel<u8> + QueueInfo + Joinable>(c: &C) {
        c.put(1).unwrap();
        assert_eq!(c.len().unwrap(), 1);
        assert_eq!(c.capacity().unwrap(), Some(2));
        c.task_done().unwrap();
        assert!(c.join_timeout(Duration::ZERO).unwrap());
    }
    let q = Queue::bounded(2);
    via_traits(&q);
    assert_eq!(q.get().unwrap(), 1);
    let boxed: Box<dyn Channel<u8>> = Box::new(LifoQueue::bounded(2));
    boxed.put(3).unwrap();
    assert_eq!(boxed.get().unwrap(), 3);
    assert!(format!("{q:?}").contains("capacity: Some(2)"));
}

/// `_shutdown_all_methods_in_many_threads`: producers put until the queue is shut down under
/// them, consumers get until it is shut down and drained. Every put that succeeded is received exactly
/// once, and every put that failed handed its item back.
fn shutdown_races_with_puts_and_gets<Q: TestQueue>(q: Q) {
    let n = items_per_producer() / 5;
    let received = Arc::new(AtomicUsize::new(0));
    let producers: Vec<_> = (0..3i64)
        .map(|id| {
            let q = q.clone();
            spawn(move || {
                let mut accepted = Vec::new();
                for seq in 0..n * 10 {
                    let item = id * n * 10 + seq;
                    match q.put(item) {
                        Ok(()) => accepted.push(item),
                        Err(e) => {
                            assert!(e.is_closed());
                            assert_eq!(e.into_inner(), item);
                            return accepted;
                        }
                    }
                }
                accepted
            })
        })
        .collect();
    let consumers: Vec<_> = (0..3)
        .map(|_| {
            let q = q.clone();
            let received = received.clone();
            spawn(move || {
                let mut got = Vec::new();
                loop {
                    match q.get() {
                        Ok(v) => {
                            got.push(v);
                            received.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => {
                            assert!(e.is_closed());
                            return got;
                        }
                    }
                }
            })
        })
        .collect();
    // Shut down once some items have gone through.
    wait_until("some items went through", || {
        received.load(Ordering::SeqCst) > 0
    });
    q.shutdown(false).unwrap();
    let mut accepted: Vec<i64> = producers
        .into_iter()
        .flat_map(|p| p.recv_timeout(PATIENCE).expect("a producer hung"))
        .collect();
    let mut got: Vec<i64> = consumers
        .into_iter()
        .flat_map(|c| c.recv_timeout(PATIENCE).expect("a consumer hung"))
        .collect();
    accepted.sort();
    got.sort();
    assert_eq!(
        got.len(),
        accepted.len(),
        "items lost or duplicated around the shutdown"
    );
    assert_eq!(got, accepted);
    assert!(q.is_empty().unwrap());
}

#[test]
fn shutdown_races_fifo() {
    shutdown_races_with_puts_and_gets(Queue::bounded(8));
    shutdown_races_with_puts_and_gets(Queue::unbounded());
}
#[test]
fn shutdown_races_lifo() {
    shutdown_races_with_puts_and_gets(LifoQueue::bounded(8));
}
#[test]
fn shutdown_races_priority() {
    shutdown_races_with_puts_and_gets(PriorityQueue::bounded(8));
}

/// `auto_shutdown`: the queue shuts down (as `shutdown(false)`) once every handle that has put
/// has closed or been dropped; handles that never put do not count, and nothing happens before
/// some handle has put.
fn auto_shutdown_when_producers_done<Q: TestQueue>(make: impl Fn() -> Q) {
    let q = make();
    let consumer = {
        let q = q.clone();
        spawn(move || {
            let mut got = Vec::new();
            loop {
                match q.get() {
                    Ok(v) => got.push(v),
                    Err(e) => {
                        assert!(e.is_closed(), "{e}");
                        return got;
                    }
                }
            }
        })
    };
    let idle = q.clone();
    idle.close().unwrap(); // never put: does not count
    drop(idle);
    assert!(!q.is_shutdown(), "shut down before anyone put");
    let (a, b) = (q.clone(), q.clone());
    a.put(1).unwrap();
    b.put(2).unwrap();
    a.close().unwrap();
    assert!(!q.is_shutdown(), "a producer is still open");
    b.put(3).unwrap();
    drop(b); // gone without closing: counts as closed
    assert!(q.is_shutdown());
    let mut got = consumer.recv_timeout(PATIENCE).expect("the consumer hung");
    got.sort_unstable();
    assert_eq!(got, [1, 2, 3]);
    assert!(q.put(4).unwrap_err().is_closed());
}

#[test]
fn auto_shutdown_all_kinds() {
    auto_shutdown_when_producers_done(|| Queue::bounded(8).auto_shutdown());
    auto_shutdown_when_producers_done(|| Queue::unbounded().auto_shutdown());
    auto_shutdown_when_producers_done(|| LifoQueue::bounded(8).auto_shutdown());
    auto_shutdown_when_producers_done(|| PriorityQueue::unbounded().auto_shutdown());
}

#[test]
fn without_auto_shutdown_producers_going_leaves_the_queue_open() {
    let q = Queue::bounded(4);
    let p = q.clone();
    p.put(1).unwrap();
    drop(p);
    assert!(!q.is_shutdown());
    assert_eq!(q.get().unwrap(), 1);
    assert!(q.try_get().unwrap_err().is_empty());
}
