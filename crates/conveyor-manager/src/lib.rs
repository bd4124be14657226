//! conveyor-manager: a server of shared objects and typed proxies to them, as Python's
//! `multiprocessing.Manager`.
//!
//! A manager server holds named objects: dicts, lists, values, arrays, queues, locks,
//! reentrant locks, conditions, events, semaphores, barriers and namespaces. Clients in any process (or on
//! another machine, over TCP) reach them through typed proxies ([`DictProxy<K, V>`],
//! [`QueueProxy<T>`], [`LockProxy`], ...) whose every method is a request to the server.
//!
//! **When to pick it.** Pick a manager when several processes must share *state* (a dict of
//! results, a counter, a registry), possibly across machines, or when the data lives longer
//! than any one worker. For moving a stream of items between processes on one machine, a
//! shared-memory queue (`conveyor-shm`) is one to two orders of magnitude faster: every manager
//! operation is a round trip through a socket. Batches ([`ManagerConnection::batch`]) take most of that
//! cost away for bulk work.
//!
//! **Where it differs from Python.**
//! - Proxies are typed; values travel postcard-encoded.
//! - Compound updates are atomic on the server: [`ValueProxy::fetch_add`],
//!   [`DictProxy::fetch_add`] (seed 004's `d["n"] += 1` race, fixed in one round trip) and
//!   compare-and-swap based [`ValueProxy::update`] / [`DictProxy::update_with`].
//! - Objects have names; any client finds them again with [`ManagerConnection::open`].
//! - As in Python, each thread gets its own connection to the server (per [`ManagerConnection`], made on
//!   its first call), so a call that waits on one thread never stalls another thread's call
//!   on the same proxy, and locks belong to threads: a [`LockProxy`] held by one thread makes
//!   another wait, an [`RLockProxy`] nests for the thread that holds it only. A thread or
//!   client that ends (or dies) holding a lock has it released.
//! - A queue can be closed ([`conveyor_core::Channel::close`]), which wakes blocked getters.
//!
//! **Starting a server.** [`Manager::start`] runs one on threads of this process and returns
//! a guard that shuts it down when dropped (Python's `with Manager() as m`);
//! [`ManagerBuilder::spawn`] runs it in a child process (as Python does), with nothing for the
//! program to register (the crate registers the server's entry point itself, at link time:
//! the program's `conveyor_process::init`, or a test's `init_test!()`, finds it); the
//! `conveyor manager serve --listen ADDR --authkey-file FILE` command (crate conveyor-cli; the
//! `conveyor-manager serve` binary is the same, both run [`standalone::serve`]) runs a
//! standalone one.
//! [`ManagerConnection::connect`] reaches a running one by address and authkey, and proxies passed to a
//! child process in its arguments connect on arrival.
//!
//! **On the wire.** Connections are conveyor-pipe's: a [`Listener`](conveyor_pipe::Listener)
//! on the server, a [`Connector`](conveyor_pipe::Connector) on the client, and a
//! [`Connection`](conveyor_pipe::Connection) on each side, with its fast path (buffered sends
//! and one flush, reads that take in every frame that has arrived, a short adaptive spin
//! before a receive sleeps). A Unix socket is the default, TCP reaches another machine
//! ([`Address`] is conveyor-pipe's, the workspace's one address type); each connection is
//! authenticated with CPython's `multiprocessing.connection` authkey handshake, bounded by one
//! deadline ([`ManagerBuilder::handshake_timeout`]), and framed as that module frames
//! messages. Requests and replies are postcard-encoded, versioned and numbered (see
//! [`protocol`]); a client may send many before reading the replies ([`Batch`]).
//!
//! **Faults.** A malformed request, an unknown object or an operation of the wrong kind gets
//! an error reply and the connection goes on; an oversize request is refused before it is
//! read and its connection closed; a wrong authkey is refused at the handshake, and a client
//! that drips its handshake is cut off at the deadline; a client that disconnects mid-request
//! or dies holding a lock is cleaned up (its locks released). A request's buffer grows as its
//! bytes arrive (a bare header announcing 64 MiB costs nothing); the move to pipes takes only
//! pipe ends of the right direction (a device handed over instead is refused); a number that
//! would overflow (a counter, a semaphore's permits, a reentrant lock's depth) is answered
//! with [`ErrorKind::Overflow`] and changes nothing; and a request that panics (a bug) gets an
//! `Internal` error and closes only its own connection, whose locks are released. In every
//! case the server goes on serving the others.
//!
//! **Cost.** Every proxy call is a round trip to the server: a request written to the
//! connection, and a reply read back. Sleeping in `read` and being woken by the peer's write
//! goes through the scheduler on both sides (about 35 us a round trip on the two-vCPU
//! development machine, most of Python's cost too), so a receive first spins a short,
//! adaptive while (conveyor-pipe's, at most 50 us, yielding the CPU between polls and giving
//! up at once when another program wants it) before it sleeps.
//!
//! **Pipes on one machine.** A client that reached the server over a Unix socket moves the
//! connection's frames to a pair of OS pipes right after hello, with conveyor-pipe's
//! [`Connection::move_to_pipes`](conveyor_pipe::Connection::move_to_pipes) (the client makes
//! the pipes and hands the server's ends over the socket with `SCM_RIGHTS`); the socket stays
//! open to notice the peer going away and to be shut down. A pipe message costs less than a Unix socket message (kept
//! on the socket, one client's dict set+get ran at 0.6-0.75x the rate of the earlier piped
//! build side by side on the loaded two-vCPU machine; on pipes, 0.99x now). TCP connections
//! stay on their socket, and so does one
//! where the pipes cannot be made, or where `SIGPIPE` is not ignored or handled in either
//! process (a write to a closed pipe raises it; Rust and Python programs ignore it from the
//! start).
//!
//! Measured with the server in another process (`benches/manager.rs`, medians of 0.3 s slices
//! interleaved with Python 3.11's `multiprocessing.Manager` doing the same, on the shared
//! two-vCPU development machine). The ratio depends on the machine's state: with the CPUs
//! free each end polls on its own CPU, where Python pays sleeping wake-ups; when another
//! program holds a CPU, client and server share the other and each round trip is two
//! switches between them (about 6 us), while Python's wake-ups get cheaper on a busy machine:
//!
//! | workload                       | as found (load 4-11)     | a busy loop on one CPU   |
//! |--------------------------------|--------------------------|--------------------------|
//! | dict set + get, 1 client       | 478-493 k ops/s, 18-19x  | 164-165 k ops/s, 3.8-3.9x|
//! | dict set + get, 4 clients      | 302-311 k ops/s, 7.4-8.5x| 153-157 k ops/s, 4.3-4.5x|
//! | queue put + get                | 186-194 k items/s, 15x   | 81-83 k items/s, 4.1x    |
//! | lock acquire + release         | 201-205 k pairs/s, 15-16x| 80-82 k pairs/s, 3.6-3.8x|
//! | dict operations in a [`Batch`] | 5.1 M ops/s              | 5.3-5.4 M ops/s          |
//!
//! (Python's rates in the same slices: 26-27 k dict ops/s with one client and 35-42 k with
//! four as found, a sign the CPUs were mostly idle; 42-43 k and 35-36 k with the busy loop.)
//!
//! Those figures are from before the move onto conveyor-pipe's `Connection`. The move first
//! cost one client 10-18% (medians of passes alternated with the build before it: the spin
//! looked at blocking pipes with `preadv2(RWF_NOWAIT)`, dearer than a plain `read`, and a
//! request went through more locks and clock readings than the earlier private transport).
//! With the pipes non-blocking, a spin that reads the clock once per yield, a call's request
//! written at once, the thread's connection found through a thread-local, and one `poll` for
//! `hung_up`, the bench's side-by-side pass on 2026-12-06 (10 passes of each build
//! alternated, 2 vCPUs, load 2-3) measured the earlier build / this one: dict set+get, 1
//! client, 412 k / 408 k ops/s (23.5x / 23.6x Python), 4 clients 416 k / 411 k (15.1x /
//! 14.6x), queue put+get 198 k / 197 k (24.3x / 24.7x), lock pairs 209 k / 206 k (23.8x /
//! 23.8x), batches 3.76 M / 4.24 M ops/s: 0.99x for each kind of round trip, within the
//! passes' spread of about 5%, and 1.13x for batches.
//!
//! A [`Batch`] pays one round trip for up to a thousand operations.
//!
//! # Example
//!
//! ```
//! use conveyor_manager::Manager;
//!
//! let m = Manager::start()?; // shut down when `m` drops
//! let scores = m.dict::<String, i64>("scores")?;
//! scores.set(&"task_1".into(), &1)?;
//!
//! // Another connection (in real use, another process: see `connect`) sees the same dict.
//! let other = m.connect()?;
//! let same = other.dict::<String, i64>("scores")?;
//! same.fetch_add(&"task_1".into(), 41)?;
//! assert_eq!(scores.get(&"task_1".into())?, Some(42));
//! # Ok::<(), conveyor_manager::ManagerError>(())
//! ```
//!
//! A queue proxy answers the [`Channel`], [`QueueInfo`] and [`Joinable`] traits, which this
//! crate re-exports (with their error types), so one `use` of it is enough. Every answer comes
//! from the server, so `len`, `join` and `shutdown` return `Result`s: when the server is gone
//! they fail with an [`Unavailable`] (its source the [`ManagerError`]) instead of answering
//! `0` or "done".
//!
//! ```
//! use conveyor_manager::{Channel, Joinable, Manager, QueueInfo};
//!
//! let m = Manager::start()?;
//! let jobs = m.queue::<u32>("jobs", Some(8))?;
//! jobs.put(7)?;
//! assert_eq!(jobs.len()?, 1);
//! assert_eq!(jobs.get()?, 7);
//! jobs.task_done()?;
//! jobs.join()?;
//! assert!(jobs.try_get().unwrap_err().is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

pub mod batch;
mod client;
mod connection;
pub mod error;
#[cfg(test)]
mod fault_tests;
mod manager;
pub mod number;
pub mod protocol;
pub mod proxy;
mod server;
pub mod standalone;
mod store;

pub use batch::{Batch, BatchResults, Ticket};
pub use client::{Endpoint, ManagerConnection};
/// The contract this crate implements, re-exported from `conveyor-core` so that one `use` of
/// this crate is enough: the traits whose methods its handles answer, and their error types.
pub use conveyor_core::{
    Channel, Codec, CodecError, GetError, Joinable, Postcard, PutError, QueueInfo, TaskDoneError,
    Unavailable, UnavailableKind,
};
/// Where a manager listens: conveyor-pipe's address, the one of the workspace (`unix:PATH`
/// or a path, `tcp:HOST:PORT` or `HOST:PORT`).
pub use conveyor_pipe::{Address, AddressParseError};
pub use error::{ErrorKind, ManagerError, RemoteError, Result};
pub use manager::{Manager, ManagerBuilder, ManagerGuard};
pub use number::{NumOp, Number};
pub use protocol::Kind;
pub use protocol::DEFAULT_MAX_FRAME;
pub use proxy::{
    ArrayProxy, BarrierProxy, ConditionGuard, ConditionProxy, DictProxy, EventProxy, ListProxy,
    LockGuard, LockProxy, NamespaceProxy, Proxy, QueueProxy, RLockGuard, RLockProxy,
    SemaphoreProxy, ValueProxy,
};
pub use server::Server;
