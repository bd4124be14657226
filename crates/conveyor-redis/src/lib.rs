//! `RedisQueue` and `JoinableRedisQueue`: conveyor's [`Channel`] over a Redis Stream and a
//! consumer group, for programs that outgrow one machine.
//!
//! Pick it when producers and consumers run on different machines, or must survive each
//! other's crashes and restarts, and a Redis server (7.0 or later) is at hand: every process
//! that can reach the server shares the queue by its name and the server's URL alone. On one
//! machine, `conveyor-shm`'s `ShmQueue` is some hundred times faster; between threads,
//! `conveyor-thread`'s `Queue`. The code that puts and gets is the same: only the line that
//! builds the channel changes.
//!
//! | Python (redis-py, `multiprocessing`)        | conveyor-redis                                 |
//! |---------------------------------------------|------------------------------------------------|
//! | `JoinableQueue()` shared by processes       | [`JoinableRedisQueue::open`]`(url, name)`      |
//! | `Queue(maxsize)`                            | [`RedisQueue::bounded`]`(url, name, maxsize)`  |
//! | `q.put(x)`, `put_nowait`, `put(x, timeout=t)` | [`Channel::put`], `try_put`, `put_timeout`   |
//! | `q.get()`, `get_nowait`, `get(timeout=t)`   | [`Channel::get`], `try_get`, `get_timeout`     |
//! | `q.task_done()`, `q.join()`                 | [`Joinable::task_done`], [`Joinable::join`] (`Result`s: see below) |
//! | `q.qsize()`, `empty()`, `full()`            | [`QueueInfo::len`], `is_empty`, `is_full` (`Result`s) |
//! | `q.shutdown(immediate)` (3.13)              | [`Channel::shutdown`]`(immediate)`          |
//! | `q.close()` (this handle puts no more)      | [`Channel::close`]                             |
//! | `r.xadd(stream, {"d": pickle.dumps(x)})`    | a put with the pickle codec ([`Builder::codec`]) |
//!
//! Every question whose answer is on the server (`len`, `is_empty`, `is_full`, `join`,
//! `join_timeout`, `shutdown`, and `close` of a producer of a self-shutting queue) returns a
//! `Result`: once the reconnect budget ([`Builder::reconnect_for`]) runs out it fails with an
//! [`Unavailable`] whose source is this crate's [`Error`], never answers `0` or "done".
//!
//! # Example
//!
//! ```
//! use conveyor_redis::{Channel, Joinable, JoinableRedisQueue, Target};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // CONVEYOR_REDIS_URL, or a redis-server started for this run
//! let Some(server) = Target::from_env()? else {
//!     eprintln!("SKIPPED: no Redis server (install redis-server or set CONVEYOR_REDIS_URL)");
//!     return Ok(());
//! };
//! let q: JoinableRedisQueue<String> = JoinableRedisQueue::open(&server.url(), "doc-hotdogs")?;
//! q.put("jerry's hot dog 0".to_string())?;
//! let hotdog = q.get()?;          // in another process, on another machine: the same lines
//! assert_eq!(hotdog, "jerry's hot dog 0");
//! q.task_done()?;
//! q.join()?; // an error, not a return as if done, if Redis cannot be reached
//! q.destroy()?;
//! # Ok(()) }
//! ```
//!
//! # What is guaranteed
//!
//! - **A put that returned `Ok` is in the server** (on a Redis Cluster: while the node that
//!   took it lives, see [below](#redis-cluster-feature-cluster)), and a put is applied once
//!   even when it is retried after a lost connection (the put script remembers each producer
//!   lane's last sequence number). A lost connection is retried with backoff (10 ms doubling to 500 ms, for
//!   [`Builder::reconnect_for`], 10 s by default) before an operation fails.
//! - **[`RedisQueue`]: at most once.** A get acknowledges the item as it delivers it; an item a
//!   consumer took and then crashed with is gone, as with any queue.
//! - **[`JoinableRedisQueue`]: at least once.** An item stays pending until `task_done`
//!   acknowledges it. If its consumer dies (or is slower than the visibility timeout,
//!   [`Builder::visibility_timeout`], 30 s by default), a live consumer's get takes it over
//!   (XAUTOCLAIM) and it is delivered again: write consumers so that doing an item twice is
//!   harmless. An item delivered more than [`Builder::max_deliveries`] times (5 by default), a
//!   poison item that kills every consumer, goes to the dead-letter stream
//!   ([`RedisQueue::dead_letters`]) instead of looping forever, and counts as done for `join`.
//! - **A server that restarts** without persistence comes back without the queue: every
//!   operation then fails with [`Error::QueueLost`], never with a silent empty queue. With
//!   `appendonly yes` the queue survives, and the handles reconnect.
//! - **Shutdown reaches every machine**: it is state in the server, which waiting gets and puts
//!   look at every poll interval ([`Builder::poll_interval`], 100 ms by default). A put that
//!   starts after the shutdown fails, on every machine: the stream then refuses new entries
//!   (its last id is set to the largest there is), so a redis-py peer's `xadd` fails too
//!   ("The stream has exhausted the last possible ID").
//!
//! # Close and shutdown
//!
//! [`Channel::shutdown`]`(immediate)` is Python 3.13's `Queue.shutdown`, for every handle on
//! every machine: later puts fail with `Closed`; without `immediate`, gets drain what is left and
//! then fail with `Closed`; with it, what is not yet delivered is discarded and counts as done
//! (items already taken still need their `task_done`, as in CPython). [`Channel::close`] is
//! `multiprocessing.Queue.close()`: this handle puts no more, others are not affected.
//!
//! A queue built with [`Builder::shutdown_when_producers_done`] shuts itself down (as
//! `shutdown(false)`) once every handle that has put has closed, been dropped, or died (its
//! process killed: a thread of each producer process renews a lease in the server, and a
//! producer whose lease runs out counts as gone), so consumers on every machine learn that the
//! producers are done. A queue's state lives in the server, so a name that was shut down stays
//! shut down: [`RedisQueue::destroy`] removes it.
//!
//! # The layout, for Python peers
//!
//! A queue `NAME` is the stream `conveyor:{NAME}:items` with the consumer group `conveyor`,
//! each entry's field `d` holding the encoded item (see the `scripts` module source for the other
//! keys). With the pickle codec (`Builder::codec(conveyor_core::Pickle)`), a Python program
//! puts with `r.xadd("conveyor:{NAME}:items", {"d": pickle.dumps(obj)})` and gets with
//! `r.xreadgroup("conveyor", "me", {"conveyor:{NAME}:items": ">"}, count=1, block=0)` then
//! `r.xack(...)` and `r.xdel(...)`.
//!
//! # Cost
//!
//! Every operation is a round trip to the server. A put to an unbounded queue that does not
//! shut itself down is one transaction (`MULTI`, `XADD`, `HSET` of the lane's record, `EXEC`):
//! a shutdown makes the stream refuse `XADD`s in the server itself, so the put needs no
//! script; at least once per poll interval, and whenever the server refuses it, a put runs the
//! put script instead, which also checks that the queue is the one the handle opened. A put to
//! a bounded or self-shutting queue is one Lua script call (the state, the bound, and the
//! lane's sequence checked with the XADD, atomically), which costs the server several times an
//! XADD. A get is one XREADGROUP (with `NOACK` on a [`RedisQueue`]: delivered is done), and once
//! per poll interval a get runs the take script instead (shutdown, redelivery, and trimming
//! the entries already done from the stream).
//! [`RedisQueue::put_batch`] sends many items in one transaction or script call: use it when
//! producing fast. The harness (`cargo xtask bench --filter RedisQueue,redis-rs`) compares this
//! crate with the raw redis-rs loop and with redis-py, side by side.
//!
//! # Redis Cluster (feature `cluster`)
//!
//! `Builder::cluster` opens a queue on a Redis Cluster, given the URLs of some of its nodes
//! (one that answers finds the others); everything else is as on one server:
//!
//! ```no_run
//! # #[cfg(feature = "cluster")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use conveyor_redis::{Builder, Channel, Joinable, JoinableRedisQueue};
//!
//! let nodes = ["redis://10.0.0.1:7000", "redis://10.0.0.2:7000", "redis://10.0.0.3:7000"];
//! let q: JoinableRedisQueue<String> = Builder::cluster(nodes, "thumbnails").open_joinable()?;
//! q.put("img-17.png".to_string())?;
//! let job = q.get()?;
//! q.task_done()?;
//! # Ok(()) }
//! # #[cfg(not(feature = "cluster"))]
//! # fn main() {}
//! ```
//!
//! What a cluster changes:
//!
//! - **A queue lives on one node.** Its keys all carry the hash tag `{NAME}`, so they hash to
//!   one slot, and every command and script of the queue goes to the primary that owns that
//!   slot. A cluster spreads *queues* over its nodes, not one queue: one queue does what one
//!   node does. To use every node, use several queues (their names hash to different slots:
//!   `CLUSTER KEYSLOT conveyor:{NAME}:items` tells which).
//! - **Every put runs the put script.** redis-rs's cluster connection runs no `MULTI`/`EXEC`
//!   transaction, so the one-transaction put of an unbounded queue ([Cost](#cost)) is not used.
//! - **Redirects and failover.** redis-rs follows `MOVED` (a slot that moved for good, after
//!   which it reloads the slot map) and `ASK` (a slot being migrated), and waits out
//!   `CLUSTERDOWN`, `TRYAGAIN` and `MASTERDOWN` (10 ms to 500 ms between tries, about as many
//!   tries as fit in [`Builder::reconnect_for`]); a node whose connection broke is
//!   reconnected. When a primary fails, its replica takes over only after the cluster's
//!   `cluster-node-timeout` (15 s by default) and an election: give `reconnect_for` more than
//!   that, or calls fail with [`Unavailable`] meanwhile.
//! - **A resent command.** After a broken connection redis-rs sends the command again itself,
//!   where this crate on one server sends only what is safe to send twice. A put stays applied
//!   once (on a cluster the put script always looks its lane's last put up). A get that was
//!   in flight may have taken an item whose answer was lost: on a [`JoinableRedisQueue`] the
//!   item is delivered again after the visibility timeout (at least once still holds); on a
//!   [`RedisQueue`] it is gone (at most once still holds), where one server's get reports
//!   [`Error::GetInterrupted`] instead.
//! - **An acknowledged put can be lost in a failover.** Redis replicates asynchronously: a
//!   primary acknowledges a write before any replica has it, and a replica promoted after the
//!   primary failed may lack the last writes. So "a put that returned `Ok` is in the server"
//!   holds on a cluster only as long as the primary that acknowledged it lives (and, across a
//!   crash and restart of that node, with `appendonly yes` and `appendfsync always`). Redis's
//!   `WAIT` narrows that window but does not close it (the Redis docs say so: a failover may
//!   still pick a replica without the write), so this crate does not offer it; where losing an
//!   acknowledged item is not acceptable, use one server with `appendfsync always`.
//! - A handle opened with `Builder::new` on one node of a cluster talks to that node alone:
//!   its calls fail with `MOVED` when the queue's slot is elsewhere. Open it with
//!   `Builder::cluster`, even with the URL of one node.
//! - The layout is the same, so a redis-py program reaches the stream with
//!   `redis.cluster.RedisCluster`.
//!
//! `LocalCluster` starts three local nodes, a cluster for tests.
//!
//! # Servers for tests and examples
//!
//! [`Target::from_env`] answers `CONVEYOR_REDIS_URL` when it is set, else starts a
//! [`LocalServer`] (the `redis-server` on `PATH`, on a free port, in a temporary directory).
//! This crate's tests do that; without a server outside CI they print that they skipped and
//! why, and in CI (`CI=true`) they fail instead.
//!
//! # Features
//!
//! - `pickle` (default): the pickle codec, for redis-py peers.
//! - `tls`: `rediss://` URLs, through redis-rs's rustls support.
//! - `cluster`: `Builder::cluster` and `LocalCluster`, through redis-rs's cluster support
//!   (see [Redis Cluster](#redis-cluster-feature-cluster)).

#![warn(missing_docs)]

mod conn;
mod error;
mod queue;
mod scripts;
pub mod server;

#[cfg(feature = "pickle")]
pub use conveyor_core::Pickle;
pub use conveyor_core::{
    Channel, Codec, GetError, Joinable, Postcard, PutError, QueueInfo, TaskDoneError, Unavailable,
    UnavailableKind,
};
pub use error::Error;
pub use queue::{Builder, DeadLetter, JoinableRedisQueue, RedisQueue};
#[cfg(feature = "cluster")]
pub use server::LocalCluster;
pub use server::{LocalServer, LocalServerOptions, Target};
