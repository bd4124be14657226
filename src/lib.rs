//! conveyor: Python's toolbox for talking between threads and processes, for Rust.
//!
//! This facade re-exports every conveyor crate behind a cargo feature (all on by default but
//! `redis`, which needs a server to talk to and Rust 1.88):
//!
//! | module        | feature   | crate              | Python counterpart                      |
//! |---------------|-----------|--------------------|-----------------------------------------|
//! | [`core`]      | always    | `conveyor-core`    | the shared contract and errors          |
//! | `thread`      | `thread`  | `conveyor-thread`  | `queue.Queue`, `LifoQueue`, `PriorityQueue` |
//! | `process`     | `process` | `conveyor-process` | `multiprocessing.Process`               |
//! | `shm`         | `shm`     | `conveyor-shm`     | `multiprocessing.Queue`, `JoinableQueue`, `Lock`, `Value`, `Array`, `shared_memory.SharedMemory` |
//! | `pipe`        | `pipe`    | `conveyor-pipe`    | `Pipe`, `multiprocessing.connection`    |
//! | `manager`     | `manager` | `conveyor-manager` | `multiprocessing.Manager`               |
//! | `redis`       | `redis`   | `conveyor-redis`   | a queue on Redis Streams (redis-py)     |
//! | `pool`        | `pool`    | `conveyor-pool`    | `concurrent.futures`, `multiprocessing.Pool` |
//!
//! Feature `redis-cluster` (off by default, implies `redis`) adds Redis Cluster support to
//! `redis` (`conveyor-redis`'s `cluster` feature: `redis::Builder::cluster`).
//!
//! Every transport implements [`Channel`], so swapping one for another is a one-line change.
//! The traits and the error types are re-exported here, in every transport's module, and in
//! [`prelude`], so `use conveyor::prelude::*;` is all a program needs besides its transport:
//!
//! ```
//! use conveyor::prelude::*;
//! use conveyor::thread::Queue;
//!
//! fn drain<C: Channel<u32>>(q: &C) -> Vec<u32> {
//!     std::iter::from_fn(|| q.try_get().ok()).collect()
//! }
//!
//! let q = Queue::bounded(4);
//! q.put(1).unwrap();
//! q.put(2).unwrap();
//! assert_eq!(q.len(), 2);
//! assert_eq!(drain(&q), [1, 2]);
//! let err: GetError = q.try_get().unwrap_err();
//! assert!(err.is_empty());
//! ```

#![warn(missing_docs)]

pub use conveyor_core as core;
pub use conveyor_core::{
    Channel, Codec, CodecError, GetError, Joinable, Postcard, PutError, QueueInfo, TaskDoneError,
    Unavailable, UnavailableKind,
};

/// The traits every transport implements and their error types: `use conveyor::prelude::*;`.
pub mod prelude {
    pub use conveyor_core::{
        Channel, CodecError, GetError, Joinable, PutError, QueueInfo, TaskDoneError, Unavailable,
    };
}

/// Thread queues: `Queue`, `LifoQueue`, `PriorityQueue` (crate `conveyor-thread`).
#[cfg(feature = "thread")]
pub use conveyor_thread as thread;

/// Child processes started at a registered entry point (crate `conveyor-process`).
#[cfg(feature = "process")]
pub use conveyor_process as process;

/// Shared-memory queues, process locks, shared memory, values and arrays (crate `conveyor-shm`).
#[cfg(feature = "shm")]
pub use conveyor_shm as shm;

/// Pipes, connections, `Listener` and `Connector` (crate `conveyor-pipe`).
#[cfg(feature = "pipe")]
pub use conveyor_pipe as pipe;

/// A server of shared objects and typed proxies (crate `conveyor-manager`).
#[cfg(feature = "manager")]
pub use conveyor_manager as manager;

/// Thread and process pools: `ThreadPool`, `ProcessPool`, futures, `map`, `as_completed`,
/// `wait` (crate `conveyor-pool`).
#[cfg(feature = "pool")]
pub use conveyor_pool as pool;
/// Queues over a Redis Stream and a consumer group (crate `conveyor-redis`, feature `redis`).
#[cfg(feature = "redis")]
pub use conveyor_redis as redis;

/// The README's programs, compiled and run as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
