//! Pipes and connections that speak Python's `multiprocessing.connection` wire.
//!
//! - [`pipe()`] gives two connected ends (Python's `Pipe()`); [`pipe_oneway`] a reader and a
//!   writer (`Pipe(duplex=False)`); [`PipeBuilder`] either, with its messages in shared
//!   memory if asked.
//! - A [`Connection`] sends and receives whole messages: bytes ([`Connection::send_bytes`],
//!   [`Connection::recv_bytes`]) or serde values through a [`Codec`]
//!   ([`Connection::send`], [`Connection::recv`]). It implements
//!   [`Channel`], so code written for a queue runs over it.
//! - A [`Listener`] accepts connections on a Unix socket path or a TCP port and a [`Connector`]
//!   connects to one; with an authkey both run the HMAC challenge of Python's
//!   `multiprocessing.connection` (see [`handshake`]), so either side may be a Python program.
//! - [`wait`] blocks until any of several connections has something to receive.
//! - [`Connection::send_fds`] and [`Connection::recv_fds`] pass open descriptors over a Unix
//!   socket, in the format of Python's `multiprocessing.reduction.sendfds`/`recvfds`.
//! - With the `pickle` feature (on by default), the [`Pickle`] codec makes `send`/`recv`
//!   exchange objects with Python's `Connection.send`/`recv`.
//!
//! # When to pick it
//!
//! A pipe is point to point: one sender and one receiver per direction, no capacity to
//! configure, and the cheapest way between two processes that already know each other. For
//! many producers and consumers in several processes pick a shared-memory queue
//! (`conveyor-shm`); within one process, a thread queue (`conveyor-thread`).
//!
//! # The fast path
//!
//! Every connection takes the same care of its system calls, whatever its peer:
//!
//! - a receive reads ahead (one `read` takes in every small message that has arrived), and
//!   spins a short, adaptive while before it sleeps ([`Connection::set_spin`]), so a peer
//!   that answers within microseconds is met without two scheduler wake-ups;
//! - a send is one system call, header and payload gathered; with
//!   [`Connection::set_buffered_sends`] (flushed by [`Connection::flush`], by a receive,
//!   by `close` or the drop) or [`Connection::send_bytes_many`], many small messages share
//!   one;
//! - a large message goes straight between the caller's buffer and the kernel (gathered
//!   with its header on the way out, read into the vector of
//!   [`Connection::recv_bytes_into`] on the way in, which a caller reuses), and the pipes and
//!   Unix sockets this crate makes get 1 MiB kernel buffers, so it crosses in few hand-overs.
//!
//! - a pipe built with [`PipeBuilder::shared_memory`] moves its messages into a crash-safe
//!   shared-memory ring per direction (conveyor-shm's), keeping the socket for waking a
//!   receiver that sleeps, end of file and passing descriptors: a round trip between two
//!   awake processes makes no system call. It is opt-in, never automatic: its socket carries
//!   no frames, so only a conveyor program can be on the other end (see
//!   [`PipeBuilder`] for the rule).
//!
//! - two ends of a Unix socket may move their messages to a pair of OS pipes
//!   ([`Connector::pipes`] with [`ListenerBuilder::pipes`], or
//!   [`Connection::move_to_pipes`] with [`Connection::accept_pipes`]): a pipe message costs
//!   the kernel less than a socket message. Opt-in on both ends, on one machine; the frames in
//!   the pipes are still Python's (see "Moving to pipes" in [`Connection`]).
//!
//! `benches/pipe.rs` measures this against a raw socketpair with length-prefixed frames, side
//! by side in one run (`cargo bench -p conveyor --bench pipe`); `cargo xtask bench --filter
//! pipe,raw` does the same in the harness's workloads.
//!
//! # Wire format
//!
//! Frames are CPython's byte for byte (see [`frame`]): a Python program on the other end of a
//! socket can `send_bytes`/`recv_bytes` with a Rust one. This holds for every connection
//! a Python peer could be on the other end of: [`pipe()`], [`pipe_oneway`], and every
//! connection of a [`Listener`] or [`Connector`]. Only a pipe that asked for
//! [`PipeBuilder::shared_memory`] speaks otherwise (its messages are not on its socket).
//!
//! # Close and shutdown
//!
//! A [`Connection`] is point to point, so the two ways a [`Channel`]
//! ends are one here: [`close`](Connection::close) (Python's `Connection.close()` for the
//! sending side, and `Channel::close`) closes this end for sending, and the peer's gets drain
//! what was sent, then fail with `Closed`; `Channel::shutdown(immediate)` does the same, as
//! there is nobody else to shut the channel down for (`immediate` changes nothing: what was
//! sent is in the peer's socket buffer, out of this end's reach). Receiving on this end still
//! works after either.
//!
//! # Example
//!
//! The crate re-exports what its users need from `conveyor-core` ([`Channel`], the error types
//! [`PutError`] and [`GetError`], [`Codec`] and [`Postcard`]), so one `use` of it is enough:
//!
//! ```
//! use conveyor_pipe::{pipe, Channel};
//!
//! let (tx, rx) = pipe().unwrap();
//! let producer = std::thread::spawn(move || {
//!     for i in 0..3u32 {
//!         tx.put(i).unwrap();
//!     }
//!     Channel::<u32>::close(&tx); // the peer drains, then sees Closed
//! });
//! let mut got = Vec::new();
//! while let Ok(i) = Channel::<u32>::get(&rx) {
//!     got.push(i);
//! }
//! assert_eq!(got, [0, 1, 2]);
//! producer.join().unwrap();
//! ```

#![warn(missing_docs)]

mod address;
mod connection;
mod connector;
pub mod error;
pub mod frame;
mod handoff;
pub mod handshake;
mod lane;
mod listener;
#[cfg(feature = "pickle")]
pub mod pickle;
mod pipe;
mod reader;
mod spin;
mod sys;
mod wait;
mod writer;

pub use address::{Address, AddressParseError};
pub use connection::{Connection, COPY_LIMIT, DEFAULT_MAX_MESSAGE_SIZE, PIPE_CAPACITY};
pub use connector::{connect, Connector};
/// The contract this crate implements, re-exported from `conveyor-core` so that one `use` of
/// this crate is enough: the traits whose methods its handles answer, and their error types.
pub use conveyor_core::{
    Channel, Codec, CodecError, GetError, Postcard, PutError, Unavailable, UnavailableKind,
};
pub use error::{AuthFailure, AuthenticationError, ConnectError, PipeEnd, PipesError, SendError};
pub use handshake::ChallengeForm;
pub use listener::{Listener, ListenerBuilder, PendingConnection, DEFAULT_HANDSHAKE_TIMEOUT};
#[cfg(feature = "pickle")]
pub use pickle::Pickle;
pub use pipe::{pipe, pipe_oneway, PipeBuilder};
pub use wait::{wait, Waitable};
