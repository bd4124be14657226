//! The contract every conveyor transport keeps: the [`Channel`], [`QueueInfo`] and
//! [`Joinable`] traits, the error types, and the [`Codec`]s used across process boundaries.
//!
//! conveyor brings Python's toolbox for talking between threads and processes to Rust. Each
//! transport lives in its own crate and implements the traits defined here, so a program swaps a
//! thread queue for a shared-memory queue or a network connection by changing one line:
//!
//! | Python                               | conveyor                                   |
//! |--------------------------------------|--------------------------------------------|
//! | `queue.Queue(maxsize)`               | `Queue::bounded(n)` / `Queue::unbounded()` |
//! | `queue.LifoQueue`, `PriorityQueue`   | `LifoQueue`, `PriorityQueue`               |
//! | `q.put(x)`                           | [`Channel::put`]                           |
//! | `q.put(x, block=False)`, `put_nowait`| [`Channel::try_put`]                       |
//! | `q.put(x, timeout=t)`                | [`Channel::put_timeout`]                   |
//! | `q.get()`                            | [`Channel::get`]                           |
//! | `q.get(block=False)`, `get_nowait`   | [`Channel::try_get`]                       |
//! | `q.get(timeout=t)`                   | [`Channel::get_timeout`]                   |
//! | `q.shutdown()` (3.13)                | [`Channel::shutdown`]`(false)`             |
//! | `q.shutdown(immediate=True)` (3.13)  | [`Channel::shutdown`]`(true)`              |
//! | `mp.Queue.close()`                   | [`Channel::close`] (this handle puts no more) |
//! | `mp.Queue.join_thread()`, `cancel_join_thread()` | nothing: no feeder thread; a put is in the queue when it returns |
//! | `q.qsize()`, `empty()`, `full()`     | [`QueueInfo::len`], `is_empty`, `is_full`  |
//! | `q.maxsize`                          | [`QueueInfo::capacity`]                    |
//! | `q.task_done()`, `q.join()`          | [`Joinable::task_done`], [`Joinable::join`]|
//! | `queue.Full`, `queue.Empty`          | [`PutError::is_full`], [`GetError::is_empty`] |
//!
//! Where conveyor differs from Python, it is on purpose:
//!
//! - a failed put hands the item back ([`PutError::into_inner`]);
//! - consumers learn that producers are done: after [`Channel::shutdown`]`(false)`, or once
//!   every producer handle of a queue built for it has [closed](Channel::close) or gone, gets
//!   drain what is left and then return [`GetError::Closed`] instead of blocking forever,
//!   across processes too;
//! - `PriorityQueue` is FIFO among equal items (Python's heap is not stable);
//! - a question whose answer lives on a server ([`QueueInfo::len`], [`Joinable::join`],
//!   [`Channel::shutdown`], ...) returns a `Result`, and fails with [`Unavailable`] when the
//!   server cannot be reached, instead of answering as if all were well (Python's manager
//!   proxies raise there too). Local queues never fail these, and their inherent methods of the
//!   same names return plain values (`q.len()` is a `usize` on a thread queue).
//!
//! # Example
//!
//! Code written against the traits runs over any transport:
//!
//! ```
//! use std::time::Duration;
//! use conveyor_core::{Channel, PutError};
//!
//! /// Puts every item, giving up on one that finds no room within a second.
//! fn produce<C: Channel<String>>(chan: &C, items: Vec<String>) -> Vec<String> {
//!     let mut refused = Vec::new();
//!     for item in items {
//!         if let Err(e) = chan.put_timeout(item, Duration::from_secs(1)) {
//!             refused.push(e.into_inner());
//!         }
//!     }
//!     refused
//! }
//! # let _ = produce::<std::sync::Arc<dyn Channel<String>>>;
//! ```
//!
//! # The conformance suite
//!
//! With the `testing` feature (off by default), `conveyor_core::testing` holds the tests of
//! this contract, written once and generic over a factory of one transport's handles; every
//! transport crate runs them from its `tests/conformance.rs`, and a new transport hooks in
//! the same way (see the module's docs).

#![warn(missing_docs)]

mod channel;
pub mod codec;
pub mod error;
pub mod handoff;
pub mod held;
#[cfg(feature = "pickle")]
pub mod pickle;
#[cfg(feature = "testing")]
pub mod testing;
mod unavailable;

pub use channel::{Channel, Joinable, QueueInfo};
pub use codec::{Codec, Postcard};
pub use error::{CodecError, GetError, PutError, TaskDoneError};
#[cfg(feature = "pickle")]
pub use pickle::Pickle;
pub use unavailable::{Unavailable, UnavailableKind};
