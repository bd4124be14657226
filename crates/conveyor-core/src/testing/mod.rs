//! The conformance suite of the [`Channel`] contract: written once, run against every
//! transport (enabled by this crate's `testing` feature, off by default).
//!
//! Each case is a function of [`cases`], generic over a [`Factory`] that builds the handles of
//! one transport; [`conformance_tests!`](crate::conformance_tests) expands to one `#[test]` per
//! case for a factory, so every case shows up by name in `cargo test`
//! (`conformance::queue::shutdown_wakes_blocked_getters`, ...). A case checks what the contract
//! promises: put and get; the non-blocking and timeout forms, timeouts measured on the monotonic
//! clock (a timeout returns no earlier than asked); the item handed back by a failed put;
//! per-handle [`close`](Channel::close) and [`shutdown`](Channel::shutdown) in both forms, with
//! waiters that are really blocked woken; a queue that shuts itself down once its producers
//! have closed or gone; `task_done`/`join` where the transport is
//! [`Joinable`]; no call answering as if all were well once the queue's server is gone; many
//! producers and consumers with no loss and no duplicate; the order of each
//! kind of queue; producers and consumers in other processes.
//!
//! # What a factory declares
//!
//! A transport does not opt out of a case by leaving it out. Its [`Profile`] says what it is
//! (its [`Order`], whether it is a queue or a [`PointToPoint`](Shape::PointToPoint) link, how
//! it is [bounded](Bound)), and [`Factory::joinable`], [`Factory::info`] and
//! [`Factory::remote`] either give the capability or say why the transport has none. A case
//! that needs what the transport lacks then asserts the documented alternative (a link bounded
//! by its socket buffer is filled until a put reports `Full`; roles meant for other processes
//! run on threads of this one) or, where there is none, prints the reason (`conformance:
//! <transport>: <case>: not met: <why>`, shown with `--nocapture`) instead of passing silently.
//!
//! # Hooking in a transport
//!
//! In the transport crate, add `conveyor-core = { workspace = true, features = ["testing"] }`
//! to `[dev-dependencies]`, and write `tests/conformance.rs`: a factory, and one macro call per
//! flavour. For an in-process queue:
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use conveyor_core::testing::{Bound, Capacity, Factory, Item, Order, Profile, Remote, Shape};
//! use conveyor_core::{Joinable, QueueInfo};
//! # use std::time::Duration;
//! # use conveyor_core::{Channel, GetError, PutError};
//! # /// A deliberately small queue, to show the shape of a factory.
//! # #[derive(Clone, Default)]
//! # struct MyQueue(Arc<Mutex<std::collections::VecDeque<Item>>>);
//! # impl Channel<Item> for MyQueue {
//! #     fn put(&self, i: Item) -> Result<(), PutError<Item>> { self.0.lock().unwrap().push_back(i); Ok(()) }
//! #     fn try_put(&self, i: Item) -> Result<(), PutError<Item>> { self.put(i) }
//! #     fn put_timeout(&self, i: Item, _: Duration) -> Result<(), PutError<Item>> { self.put(i) }
//! #     fn get(&self) -> Result<Item, GetError> { self.try_get() }
//! #     fn try_get(&self) -> Result<Item, GetError> { self.0.lock().unwrap().pop_front().ok_or(GetError::Empty) }
//! #     fn get_timeout(&self, _: Duration) -> Result<Item, GetError> { self.try_get() }
//! #     fn shutdown(&self, _: bool) -> Result<(), conveyor_core::Unavailable> { Ok(()) }
//! #     fn close(&self) -> Result<(), conveyor_core::Unavailable> { Ok(()) }
//! # }
//!
//! struct MyFactory;
//!
//! impl Factory for MyFactory {
//!     type Queue = MyQueue; // one fresh queue
//!     type Handle = MyQueue; // what a producer or a consumer holds
//!
//!     fn profile(&self) -> Profile {
//!         Profile::queue("MyQueue", Order::Fifo)
//!     }
//!     fn create(&self, _capacity: Capacity) -> MyQueue {
//!         MyQueue::default()
//!     }
//!     fn create_auto_shutdown(&self, _capacity: Capacity) -> Result<MyQueue, &'static str> {
//!         Err("MyQueue cannot tell when its producers are done")
//!     }
//!     fn producer(&self, q: &MyQueue) -> MyQueue {
//!         q.clone() // a handle of its own: closing it leaves the others open
//!     }
//!     fn consumer(&self, q: &MyQueue) -> MyQueue {
//!         q.clone()
//!     }
//!     fn joinable(_: &MyQueue) -> Result<&dyn Joinable, &'static str> {
//!         Err("MyQueue keeps no task count")
//!     }
//!     fn info(_: &MyQueue) -> Result<&dyn QueueInfo, &'static str> {
//!         Err("MyQueue does not report its length")
//!     }
//!     fn remote(&self) -> Result<&dyn Remote<MyQueue>, &'static str> {
//!         Err("MyQueue lives in one process's memory")
//!     }
//!     fn cut_off(&self, _q: &mut MyQueue) -> Result<(), &'static str> {
//!         Err("MyQueue lives in this process's memory: there is no server to lose")
//!     }
//! }
//!
//! // In tests/conformance.rs this is one line; it expands to a module `my_queue` with one
//! // #[test] per case:
//! // conveyor_core::conformance_tests!(my_queue, MyFactory);
//! // Each case is also a plain function:
//! conveyor_core::testing::cases::put_then_get(&MyFactory);
//! ```
//!
//! A transport whose producers and consumers can live in other processes implements
//! [`Remote`]: start a child process that runs [`run_producer`] or [`run_consumer`] (the
//! child side of the suite, written once here) on a handle it received, and hand back what the
//! consumer got. Entry points must be registered first in each test, so the macro takes the
//! registration as a prologue pasted at the top of every generated test:
//!
//! ```text
//! fn produce((q, first, count): (ShmQueue<Item>, u64, u64)) -> Result<(), String> {
//!     conveyor_core::testing::run_producer(&q, first, count)
//! }
//! conveyor_core::conformance_tests!(shm_queue, Shm; init_test!(produce, consume););
//! ```
//!
//! (`crates/conveyor-shm/tests/conformance.rs` is a complete example, with children started by
//! `conveyor-process`.) A new transport (Redis, say) writes its factory, calls the macro, and
//! every case runs against it; a case it cannot meet is declared in the factory, with the
//! reason, never skipped by leaving it out.
//!
//! A checklist for a new transport:
//!
//! - [`Factory::create`] returns a queue nobody else uses: cases run in parallel, so a
//!   server-backed transport gives each one a fresh name (a key, a stream), and the `Queue`
//!   type holds whatever keeps it alive (a server guard, a connection).
//! - [`Factory::producer`] and [`Factory::consumer`] return handles of their own, as two users
//!   of the queue would hold: closing one must not close another, and a blocking call on one
//!   must not hold up another (a transport whose handle is one connection gives each handle a
//!   connection of its own, as the manager's factory does).
//! - Every capability it lacks returns `Err` with the reason, in the user's words; the cases
//!   print it (`--nocapture`) and check the documented alternative where there is one.
//! - A transport whose queue lives on a server implements [`Factory::cut_off`] (stop the
//!   server, or drop its connections), so that
//!   [`calls_fail_when_cut_off`](cases::calls_fail_when_cut_off) checks that no call then
//!   answers as if all were well; one with nothing to lose says why, and the case checks that
//!   its answers are then all `Ok` and true.
//! - A case it fails is a bug in the transport, or a difference to document and declare in the
//!   [`Profile`]; never a case to leave out.
//!
//! # How waiters are known to be blocked
//!
//! A case that wakes a blocked waiter does not sleep and hope: the waiting thread reports its
//! thread id just before it calls the blocking method, and the case then watches
//! `/proc/self/task/<tid>/stat` until the thread is asleep in the kernel (state `S`), which it
//! can only be inside that call; only then does it shut the queue down, and it joins the thread
//! with a generous timeout. (Where `/proc` cannot be read, the report is the barrier alone.)
//! A waiter that never falls asleep within [`GENEROUS`] fails the case: a blocked call must
//! sleep, not spin.

use std::cmp::Ordering;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Channel, Joinable, QueueInfo};

pub mod cases;
mod wait;

pub use wait::{asleep, within, Waiter};

/// How long a case waits for something that should happen at once before it fails: long
/// enough for a loaded 2-core machine, short enough that a hang is reported.
pub const GENEROUS: Duration = Duration::from_secs(30);

/// The timeout the timeout cases ask for.
pub const SHORT: Duration = Duration::from_millis(40);

/// What the suite puts: an id to tell items apart, and a rank to order them by.
///
/// Its order ([`Ord`], and so [`PartialEq`]) is the rank alone, so that items of equal rank
/// are distinct (by id) and yet equal to a priority queue: "FIFO among equal priorities" can
/// then be seen. Compare items by [`id`](Item::id) to tell them apart.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Item {
    /// Which item this is: unique within a case.
    pub id: u64,
    /// Its priority: smaller comes first out of a priority queue.
    pub rank: u32,
}

impl Item {
    /// An item of rank 0.
    pub fn new(id: u64) -> Item {
        Item { id, rank: 0 }
    }

    /// An item of the given rank.
    pub fn ranked(id: u64, rank: u32) -> Item {
        Item { id, rank }
    }
}

impl PartialEq for Item {
    fn eq(&self, other: &Item) -> bool {
        self.rank == other.rank
    }
}

impl Eq for Item {}

impl PartialOrd for Item {
    fn partial_cmp(&self, other: &Item) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Item {
    fn cmp(&self, other: &Item) -> Ordering {
        self.rank.cmp(&other.rank)
    }
}

/// The order in which items come out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// First in, first out (`queue.Queue`, `multiprocessing.Queue`, a pipe).
    Fifo,
    /// Last in, first out (`queue.LifoQueue`).
    Lifo,
    /// Smallest first, first in, first out among equal items (`queue.PriorityQueue`, made
    /// stable).
    Priority,
}

/// What kind of channel the transport is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A queue: any number of handles, each of which puts and gets; closing one handle leaves
    /// the others open.
    Queue,
    /// A link between two ends: one end puts, the other gets. [`Factory::producer`] returns
    /// the sending end every time and [`Factory::consumer`] the receiving end, so several
    /// producer (or consumer) threads share one end; closing the sending end ends the link
    /// for the receiver (it drains what was sent, then gets `Closed`). Shutting the link
    /// down is done on the sending end, the one whose shutdown the receiver sees.
    PointToPoint,
}

/// How a transport bounds what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// `Capacity::Bounded(n)` holds exactly `n` items; `Capacity::Unbounded` never refuses a
    /// put for room (the suite puts a thousand small items without a get).
    Items,
    /// There is no count of items: a fixed buffer of bytes (a socket's) is the bound, whatever
    /// capacity is asked. The capacity cases fill it until a put reports `Full`.
    Buffer {
        /// Why, in the transport's words.
        why: &'static str,
    },
}

/// What `shutdown(true)` does with the items left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Immediate {
    /// They are discarded (and counted as done on a [`Joinable`] queue): gets fail with
    /// `Closed` at once, as Python 3.13's `shutdown(immediate=True)`.
    Discards,
    /// They are still delivered: `shutdown(true)` is `shutdown(false)`. The immediate cases
    /// check that instead, and say why.
    Drains {
        /// Why, in the transport's words.
        why: &'static str,
    },
}

/// The capacity a case asks [`Factory::create`] for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capacity {
    /// At most this many items (Python's `Queue(maxsize)`).
    Bounded(usize),
    /// No bound (Python's `Queue()`).
    Unbounded,
}

/// What a transport is, as far as the suite needs to know.
#[derive(Debug, Clone, Copy)]
pub struct Profile {
    /// Its name in reports (`"ShmQueue"`).
    pub name: &'static str,
    /// The order items come out in.
    pub order: Order,
    /// A queue or a point-to-point link.
    pub shape: Shape,
    /// How it is bounded.
    pub bound: Bound,
    /// What `shutdown(true)` does with the items left.
    pub immediate: Immediate,
}

impl Profile {
    /// A queue of the given order, bounded by an item count.
    pub fn queue(name: &'static str, order: Order) -> Profile {
        Profile {
            name,
            order,
            shape: Shape::Queue,
            bound: Bound::Items,
            immediate: Immediate::Discards,
        }
    }

    /// A first-in, first-out point-to-point link bounded by a buffer of bytes (`bound` says
    /// why) whose `shutdown(true)` discards nothing (`immediate` says why).
    pub fn point_to_point(
        name: &'static str,
        bound: &'static str,
        immediate: &'static str,
    ) -> Profile {
        Profile {
            name,
            order: Order::Fifo,
            shape: Shape::PointToPoint,
            bound: Bound::Buffer { why: bound },
            immediate: Immediate::Drains { why: immediate },
        }
    }
}

/// Builds the handles of one transport for the suite.
///
/// Every case starts from [`create`](Factory::create) (a fresh queue of its own, never shared
/// with another case, as cases run in parallel) and takes handles from it with
/// [`producer`](Factory::producer) and [`consumer`](Factory::consumer).
pub trait Factory: Send + Sync + 'static {
    /// One fresh queue (or link), and whatever must live as long as it (a server, a name).
    type Queue: Send + Sync + 'static;
    /// What a producer or a consumer holds.
    type Handle: Channel<Item> + Send + 'static;

    /// What the transport is.
    fn profile(&self) -> Profile;

    /// A fresh, empty queue of (at most) this capacity. Panics if it cannot be made: the case
    /// then fails with the transport's reason.
    fn create(&self, capacity: Capacity) -> Self::Queue;

    /// A fresh, empty queue built to shut itself down (as `shutdown(false)` does) once every
    /// handle that has put has closed or gone (dropped, or its process ended), or why the
    /// transport builds none.
    fn create_auto_shutdown(&self, capacity: Capacity) -> Result<Self::Queue, &'static str>;

    /// A handle for putting. On a [`Shape::Queue`], a handle of its own each call (closing it
    /// affects no other); on a [`Shape::PointToPoint`] link, the sending end.
    fn producer(&self, queue: &Self::Queue) -> Self::Handle;

    /// A handle for getting: as [`producer`](Factory::producer), the receiving end of a link.
    fn consumer(&self, queue: &Self::Queue) -> Self::Handle;

    /// The handle's task accounting, or why the transport keeps none.
    fn joinable(handle: &Self::Handle) -> Result<&dyn Joinable, &'static str>;

    /// The handle's length and capacity, or why the transport reports none.
    fn info(handle: &Self::Handle) -> Result<&dyn QueueInfo, &'static str>;

    /// How to run producers and consumers in other processes, or why they cannot.
    fn remote(&self) -> Result<&dyn Remote<Self::Queue>, &'static str>;

    /// Cuts `queue`'s handles off from where the queue lives, for good, as a crash or a network
    /// failure would (stops its server, or drops every connection to it); or why there is
    /// nothing to cut off (the queue lives in this process's memory, or in shared memory that
    /// every handle maps). After it, every call that needs the far side must fail and say so
    /// ([`Unavailable`](crate::Unavailable), an I/O error), never answer as if all were well.
    fn cut_off(&self, queue: &mut Self::Queue) -> Result<(), &'static str>;
}

/// What a child process started by [`Remote::start`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Put the items `first .. first + count` (rank 0, in that order) through a producer
    /// handle, then [`close`](Channel::close) it and exit: [`run_producer`].
    Produce {
        /// The first id.
        first: u64,
        /// How many items.
        count: u64,
    },
    /// Get through a consumer handle until `Closed`, calling `task_done` after each item if
    /// asked, and hand back the ids got, in the order got: [`run_consumer`].
    Consume {
        /// Whether to call `task_done` after each item (a [`Joinable`] transport).
        task_done: bool,
    },
}

/// Starts producers and consumers in other processes.
pub trait Remote<Q>: Send + Sync {
    /// Starts a child process that plays `role` on a handle of `queue`, and returns once the
    /// child has its handle (so the parent may go on as if the child were there).
    fn start(&self, queue: &Q, role: Role) -> Result<Box<dyn RemoteChild>, String>;
}

/// A child process started by [`Remote::start`].
pub trait RemoteChild: Send {
    /// The child's process id, to watch it fall asleep in a blocking call.
    fn pid(&self) -> u32;

    /// Waits at most `timeout` for the child to end, and returns the ids a consumer got (empty
    /// for a producer), or what went wrong (a failed role, a crash, no end in time).
    fn finish(self: Box<Self>, timeout: Duration) -> Result<Vec<u64>, String>;
}

impl fmt::Debug for dyn RemoteChild {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteChild")
            .field("pid", &self.pid())
            .finish()
    }
}

/// The producer's side of [`Role::Produce`], for a child process (or a thread) to run.
pub fn run_producer<C: Channel<Item> + ?Sized>(
    handle: &C,
    first: u64,
    count: u64,
) -> Result<(), String> {
    for id in first..first + count {
        if let Err(e) = handle.put(Item::new(id)) {
            return Err(format!("put of item {id} failed: {e}"));
        }
    }
    handle
        .close()
        .map_err(|e| format!("close after {count} items failed: {e}"))
}

/// The consumer's side of [`Role::Consume`], for a child process (or a thread) to run: gets
/// until `Closed` and returns the ids got, in order.
pub fn run_consumer<C: Channel<Item> + ?Sized>(
    handle: &C,
    joinable: Option<&dyn Joinable>,
) -> Result<Vec<u64>, String> {
    let mut got = Vec::new();
    loop {
        match handle.get() {
            Ok(item) => {
                got.push(item.id);
                if let Some(j) = joinable {
                    j.task_done()
                        .map_err(|e| format!("task_done after item {} failed: {e}", item.id))?;
                }
            }
            Err(e) if e.is_closed() => return Ok(got),
            Err(e) => return Err(format!("get failed after {} items: {e}", got.len())),
        }
    }
}

/// Expands to a module `$name` with one `#[test]` per case of the suite, each running that case
/// against the factory `$factory` (an expression, built afresh in every test).
///
/// Tokens after a `;` are pasted as the first statements of every test: the place for
/// `conveyor_process::init_test!(...)`, which registers a child process's entry points and
/// must come first in a test that starts children. The module `use`s its parent's items, so
/// the factory and the entry points are named as at the call site.
///
/// ```text
/// conveyor_core::conformance_tests!(queue, Threads::<Queue<Item>>::new());
/// conveyor_core::conformance_tests!(shm_queue, Shm; init_test!(produce, consume););
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($name:ident, $factory:expr $(; $($prologue:tt)*)?) => {
        $crate::__conformance_cases!(
            $name, ($factory), { $($($prologue)*)? },
            put_then_get,
            try_get_on_empty_is_empty,
            get_timeout_waits_then_times_out,
            try_put_on_full_hands_the_item_back,
            put_timeout_on_full_hands_the_item_back,
            timeouts_too_large_for_the_clock,
            blocked_get_wakes_on_put,
            blocked_put_wakes_on_get,
            unbounded_takes_puts_without_gets,
            queue_info,
            order,
            many_producers_many_consumers,
            shutdown_drains_then_fails,
            shutdown_wakes_blocked_getters,
            shutdown_wakes_blocked_putter,
            shutdown_immediate_discards,
            shutdown_immediate_wakes_blocked_getters,
            shutdown_immediate_wakes_blocked_putter,
            shutdown_immediate_after_shutdown_discards,
            close_is_per_handle,
            blocked_get_after_a_producer_closes,
            join_with_nothing_outstanding,
            task_done_and_join,
            join_wakes_on_last_task_done,
            shutdown_keeps_tasks_until_done,
            shutdown_immediate_counts_discarded_as_done,
            shutdown_immediate_wakes_join,
            auto_shutdown_once_every_producer_closed,
            auto_shutdown_counts_a_dropped_producer,
            auto_shutdown_with_producers_in_other_processes,
            calls_fail_when_cut_off,
            producers_in_other_processes,
            consumers_in_other_processes,
            consumer_in_another_process_woken_by_shutdown,
            join_across_processes,
        );
    };
}

/// The body of [`conformance_tests!`](crate::conformance_tests): one test per listed case.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ($name:ident, ($factory:expr), $prologue:tt, $($case:ident),* $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $case() {
                    #[allow(unused_braces)]
                    $prologue
                    $crate::testing::cases::$case(&$factory);
                }
            )*
        }
    };
}
