//! Python's `queue` module for Rust threads: [`Queue`] (FIFO), [`LifoQueue`] and
//! [`PriorityQueue`], with blocking, non-blocking and timeout puts and gets, `task_done`/`join`,
//! [`shutdown`](Queue::shutdown) to tell consumers that the producers are done (Python 3.13's
//! `Queue.shutdown`), and a per-handle [`close`](Queue::close) (`multiprocessing.Queue.close()`).
//!
//! Every queue implements conveyor's [`Channel`], [`QueueInfo`] and [`Joinable`] traits, so code
//! written against them moves to a process or network transport by changing one line; the same
//! methods also exist as inherent methods, so nothing needs importing to use a queue directly.
//! The inherent ones return plain values (`q.len()` is a `usize`, `q.join()` returns `()`):
//! a queue in this process always knows the answer. The traits' versions return a `Result`
//! whose error ([`conveyor_core::Unavailable`]) a thread queue never returns, because a queue
//! on a server may not know it; code written over the traits handles it with `?`.
//!
//! # Example
//!
//! A pool of workers, `join` to wait for the work, `shutdown` to send them home:
//!
//! ```
//! use std::thread;
//! use conveyor_thread::Queue;
//!
//! let q = Queue::bounded(64);
//! let workers: Vec<_> = (0..4)
//!     .map(|_| {
//!         let q = q.clone();
//!         thread::spawn(move || {
//!             let mut sum = 0u64;
//!             // `get` drains what is left after `shutdown(false)`, then fails instead of blocking.
//!             while let Ok(n) = q.get() {
//!                 sum += n;
//!                 q.task_done().unwrap();
//!             }
//!             sum
//!         })
//!     })
//!     .collect();
//! for n in 1..=1000u64 {
//!     q.put(n).unwrap();
//! }
//! q.join(); // every item has been processed
//! q.shutdown(false); // no more items: the workers' `get` returns `Closed`
//! let total: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
//! assert_eq!(total, 500_500);
//! ```
//!
//! # Which queue
//!
//! | you need                                                  | pick                          |
//! |-----------------------------------------------------------|-------------------------------|
//! | work handed out in arrival order, backpressure            | [`Queue::bounded`]            |
//! | producers that must never block                            | [`Queue::unbounded`]          |
//! | the most recent item first (depth-first work, undo stacks) | [`LifoQueue`]                 |
//! | the most urgent item first, ties in arrival order          | [`PriorityQueue`]             |
//! | to wait until every item has been *processed*              | any of them: `task_done`/`join` |
//! | consumers that learn the producers are done                | any of them: `shutdown`, or `auto_shutdown` |
//!
//! And against the Rust alternatives:
//!
//! - **crossbeam-channel** is the closest peer: MPMC, bounded and unbounded, `select!`. Pick it
//!   for `select!`, for zero-capacity rendezvous channels, or to close a channel by dropping
//!   every sender. Pick a conveyor queue for LIFO or priority order, for `task_done`/`join`, for
//!   an explicit `shutdown` that any handle can call, for symmetric handles (one type that both
//!   puts and gets, as in Python), or to swap in a process or network transport later through
//!   [`Channel`]. The bounded `Queue` runs at crossbeam's speed (see Performance).
//! - **`std::sync::mpsc`** has a single consumer; pick it to avoid a dependency when that is
//!   enough.
//!
//! # Python mapping
//!
//! | Python                                   | conveyor                                       |
//! |------------------------------------------|------------------------------------------------|
//! | `queue.Queue(maxsize)`                   | [`Queue::bounded`]`(maxsize)`; `maxsize <= 0`: [`Queue::unbounded`] (and `bounded(0)` is unbounded too) |
//! | `queue.LifoQueue`, `queue.PriorityQueue` | [`LifoQueue`], [`PriorityQueue`] (stable among equal items) |
//! | `pq.put((2.5, item))`, float priorities  | [`put_with_priority`](PriorityQueue::put_with_priority)`(2.5, item)` on a queue of [`Prioritized`] (NaN refused: [`PriorityPutError::Nan`]); `get()` gives a `Prioritized`, [`into_parts`](Prioritized::into_parts) the tuple |
//! | `q.put(x)` / `q.put_nowait(x)` / `q.put(x, timeout=t)` | [`put`](Queue::put) / [`try_put`](Queue::try_put) / [`put_timeout`](Queue::put_timeout) |
//! | `q.get()` / `q.get_nowait()` / `q.get(timeout=t)` | [`get`](Queue::get) / [`try_get`](Queue::try_get) / [`get_timeout`](Queue::get_timeout) |
//! | `queue.Full` / `queue.Empty`             | [`PutError::is_full`] (and `is_timeout`) / [`GetError::is_empty`] (and `is_timeout`) |
//! | `q.qsize()`, `q.empty()`, `q.full()`, `q.maxsize` | [`len`](Queue::len), [`is_empty`](Queue::is_empty), [`is_full`](Queue::is_full), [`capacity`](Queue::capacity) |
//! | `q.task_done()`, `q.join()`              | [`task_done`](Queue::task_done) (`ValueError` -> [`TaskDoneError::TooManyCalls`]), [`join`](Queue::join), [`join_timeout`](Queue::join_timeout) |
//! | `q.shutdown()` / `q.shutdown(immediate=True)` (3.13), `queue.ShutDown` | [`shutdown`](Queue::shutdown)`(false)` / `(true)`, [`PutError::is_closed`] / [`GetError::is_closed`] |
//! | `q.is_shutdown` (3.13)                   | [`is_shutdown`](Queue::is_shutdown)            |
//! | `multiprocessing.Queue.close()`          | [`close`](Queue::close): this handle puts no more (clones are other handles) |
//! | `join_thread()`, `cancel_join_thread()`  | nothing needed: no feeder thread, a put is in the queue when it returns |
//!
//! Differences on purpose: a failed put hands the item back ([`PutError::into_inner`]); a
//! consumer learns that producers are done through `shutdown` instead of needing a sentinel or a
//! daemon thread; `PriorityQueue` is FIFO among equal items; timeouts are `Duration`s measured
//! on the monotonic clock (a `Duration` too large for the clock waits forever).
//!
//! # How it works
//!
//! **The bounded `Queue`** is a lock-free ring in the style of Dmitry Vyukov's bounded MPMC
//! queue. Two counters, `head` and `tail`, each on its own cache line, hold *positions*: a slot
//! index plus a lap number. Each slot has a *stamp* that says for which position it is ready:
//! a putter reads `tail`, checks that the slot's stamp equals it (free for this lap), claims the
//! position with a compare-and-swap of `tail`, writes the value and publishes it by setting the
//! stamp to `tail + 1`. A getter does the mirror image on `head`, and frees the slot for the
//! next lap by setting its stamp one lap ahead. Putters only contend with putters on `tail`,
//! getters with getters on `head`, and a put and a get meet only on the slot they hand over.
//!
//! - *Shutting down* sets a mark bit in `tail` itself with one atomic `fetch_or`, so a put
//!   either claimed its position before the shutdown (and its item is drained by the gets) or
//!   sees the mark and fails: none can slip in after it. `shutdown(true)` first raises a flag
//!   that every get checks, then sets the mark and takes out what is left itself,
//!   counting it as done. A handle's `close` is a flag in the handle, checked before a put.
//! - *Waiting*: an operation that cannot proceed retries with exponential backoff (spin hints,
//!   then `yield_now`), because the other side usually acts within a microsecond while parking
//!   and waking a thread costs 5 to 18 µs. Then it parks on a condition variable, after
//!   registering in a counter of sleepers. Every successful put or get ends with one load of the
//!   other side's counter, and takes a lock and notifies only when it is not zero: nobody waiting
//!   costs nothing but that load. The counter and the queue's positions are read and written with
//!   `SeqCst` operations in an order that guarantees either the waiter sees the change or the
//!   notifier sees the waiter (the handshake is spelled out in the `waiters` module).
//! - *`task_done`/`join`* need "items ever put": rather than add a counter to every put (a second
//!   contended write per item), it is read off `tail` (laps times capacity plus index), and only
//!   `task_done` calls are counted, in an atomic of their own.
//! - A capacity whose slots would take more than 16 MiB is not preallocated: such a queue uses
//!   the lock-based deque below, which grows as items arrive.
//!
//! **The unbounded `Queue`, `LifoQueue` and `PriorityQueue`** keep their items in a `VecDeque`,
//! a `Vec` or a binary heap under one mutex. What makes them fast is what they avoid: a put or
//! get wakes a waiter only when one is registered (the same waiter lists as the ring's, one
//! atomic load when nobody waits), never otherwise; a blocked call first spins while watching an
//! atomic copy of the length, without touching the lock; `len` reads that copy. The heap orders entries by item
//! and then by arrival number (so equal items come out first-in, first-out), and it runs every
//! comparison before it moves anything, so a panic in a user's `Ord` leaves it intact; the lock
//! ignores poisoning because the data behind it is always valid. (A linked list of blocks would
//! make the unbounded `Queue` lock-free as well; that is left for later.)
//!
//! # Performance
//!
//! The criterion benchmarks in the workspace's `benches/thread_queues.rs` are the reference
//! (`u64` items, capacity 1024, the peers in the same group). For scale, one interleaved run of a
//! scratch harness on the 2-vCPU development machine while other builds and benchmarks were
//! running (load average above 30; medians of 7 runs of 2 M items each; ratio = ours / peer):
//!
//! | workload                      | ours          | peer                                        | ratio     |
//! |-------------------------------|---------------|---------------------------------------------|-----------|
//! | `Queue` 1 producer/1 consumer | 50.3 M/s      | crossbeam-channel `bounded`: 42.1 M/s       | 1.20      |
//! | `Queue` 4/4                   | 18.8 M/s      | crossbeam-channel `bounded`: 20.7 M/s       | 0.91      |
//! | `LifoQueue` 1/1, 4/4          | 49.8, 24.2 M/s | `Mutex<Vec>` + `Condvar`: 1.89, 1.60 M/s   | 26.4, 15.1 |
//! | `PriorityQueue` 1/1, 4/4      | 15.6, 9.7 M/s | `Mutex<BinaryHeap>` + `Condvar`: 1.67, 1.07 M/s | 9.4, 9.0 |
//! | ping-pong, two capacity-1 queues | 16.5 µs    | crossbeam-channel `bounded(1)`: 19.4 µs     | 0.85 (time) |
//!
//! (The lock-based peers notify only when someone waits.) On that loaded machine the FIFO 4/4
//! ratio ranged from 0.9 to 1.5 and the ping-pong ratio from 0.85 to 1.5 between runs, as the
//! two vCPUs' distance and the other load changed; compare figures only within one run.
//!
//! # Checking the lock-free code
//!
//! The ring's protocol is model-checked with [loom](https://docs.rs/loom): every atomic, cell,
//! lock and spin in the crate comes from a small shim module that switches to loom's versions
//! under `--cfg loom`, and the model tests sit beside the ring. Run them with
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p conveyor-thread --release --lib loom
//! ```
//!
//! (each model picks its preemption bound, 2 for most and 1 for the two-consumer model;
//! `LOOM_MAX_PREEMPTIONS=N` overrides all of them, and N = 2 makes the two-consumer model run for
//! over ten minutes where the whole set takes seconds). The normal test suite
//! (`cargo test -p conveyor-thread`) ports CPython's `test_queue.py` and adds stress tests.

#![warn(missing_docs)]

mod backoff;
mod core;
mod fifo;
mod heap;
mod lifo;
mod locked;
mod prioritized;
mod priority;
mod ring;
mod sync;
mod waiters;

pub use conveyor_core::{
    Channel, GetError, Joinable, PutError, QueueInfo, TaskDoneError, Unavailable,
};
pub use fifo::Queue;
pub use lifo::LifoQueue;
pub use prioritized::{NanPriority, Prioritized, Priority, PriorityPutError};
pub use priority::PriorityQueue;
