//! Python's `queue` module for Rust threads: [`Queue`] (FIFO), [`LifoQueue`] and
//! [`PriorityQueue`], with blocking, non-blocking and timeout puts and gets, `task_done`/`join`,
//! and [`close`](Queue::close) to tell consumers that producers are done.
//!
//! # Example
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
//!             // `get` drains what is left after `close`, then fails instead of blocking.
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
//! q.close(); // no more items: the workers' `get` returns `Closed`
//! let total: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
//! assert_eq!(total, 500_500);
//! ```

#![warn(missing_docs)]

mod backoff;
mod core;
mod fifo;
mod heap;
mod lifo;
mod locked;
mod priority;
mod ring;
mod sync;
mod waiters;

pub use conveyor_core::{Channel, GetError, Joinable, PutError, QueueInfo, TaskDoneError};
pub use fifo::Queue;
pub use lifo::LifoQueue;
pub use priority::PriorityQueue;
