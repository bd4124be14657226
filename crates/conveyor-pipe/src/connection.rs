//! [`Connection`]: one end of a pipe or socket, sending and receiving whole messages.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use conveyor_core::{Channel, Codec, GetError, Postcard, PutError, Unavailable, UnavailableKind};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{PipeEnd, PipesError, SendError};
use crate::lane::{self, Lane, LanePutError, LaneReader, Record, TAG_MESSAGE};
use crate::reader::{Payload, ReadAhead, ReadFailure, Source};
use crate::sys::{self, FdKind};
use crate::writer::Writer;

/// The default largest message a connection accepts: 64 MiB.
///
/// A peer announcing a longer message is refused before anything is allocated, so a corrupt or
/// hostile length prefix cannot make this end allocate gigabytes. Raise it per connection with
/// [`Connection::set_max_message_size`] when the peer is trusted and sends more.
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 64 << 20;

/// Up to this many payload bytes, `send_bytes` copies header and payload into one buffer and
/// makes one `send`; above it, it gathers them with `sendmsg` and copies nothing (CPython draws
/// the same line at 16 KiB).
pub const COPY_LIMIT: usize = 16 << 10;

/// The send buffer asked for every Unix socket this crate makes (`pipe`, `pipe_oneway`,
/// `Listener`/`Connector`): a 1 MiB message then crosses in one or two hand-overs between the
/// processes instead of five (the default is 208 KiB).
pub(crate) const KERNEL_BUFFER: usize = 1 << 20;

/// A scratch buffer (the encoding of a sent value, the bytes of a received one) up to this size
/// is kept for the next message; a larger one is freed after use. Keeping it matters for large
/// messages: a fresh multi-megabyte buffer is a fresh mapping, and faulting its pages in costs
/// more than copying them (a 1 MiB `send`/`recv` ran 5x slower when its buffers were freed).
pub(crate) const KEEP_SCRATCH: usize = 4 << 20;

// Why the receiving side can no longer be used (`Inner::broken`).
const OK: u8 = 0;
const BROKEN_TOO_LARGE: u8 = 1;
const BROKEN_MID_FRAME: u8 = 2;
const BROKEN_MALFORMED: u8 = 3;
const BROKEN_PIPES: u8 = 4;

/// The capacity asked for each of the two pipes a connection moves to (see
/// [`Connection::move_to_pipes`]): a connection moves only if both hold at least this much, so
/// a peer may keep this many bytes in flight in each direction without a write blocking.
pub const PIPE_CAPACITY: usize = 256 << 10;

/// The one byte a [`Connection::move_to_pipes`] that declines sends instead of the pipe ends.
const DECLINE: u8 = b'N';

/// One end of a connection: a duplex [`pipe`](crate::pipe()), one end of a
/// [`pipe_oneway`](crate::pipe_oneway), or a socket from a [`Listener`](crate::Listener) or
/// [`Connector`](crate::Connector).
///
/// Messages are whole: [`send_bytes`](Connection::send_bytes) on one end is one
/// [`recv_bytes`](Connection::recv_bytes) on the other, framed exactly as CPython's
/// `multiprocessing.connection` frames them, so the peer may be a Python program.
/// [`send`](Connection::send) and [`recv`](Connection::recv) carry serde values through the
/// codec `C` ([`Postcard`] by default; [`Pickle`](crate::Pickle) to exchange objects with
/// Python, with the `pickle` feature).
///
/// # Receiving
///
/// A receive reads ahead: one `read` takes in every small message that has arrived (up to
/// 32 KiB), and the following receives hand them out without a system call; a large message
/// is read straight into its destination ([`set_read_ahead`](Connection::set_read_ahead)
/// turns this off). [`poll`](Connection::poll) and [`wait`](crate::wait)
/// count messages already read ahead, and a connection passed to a child process carries them
/// along.
///
/// Before a receive sleeps it spins a short, adaptive while with non-blocking reads,
/// yielding the CPU between them (see [`set_spin`](Connection::set_spin)): a peer that answers
/// within microseconds is then met without a trip through the scheduler on either side.
///
/// # Sending
///
/// Each [`send_bytes`](Connection::send_bytes) or [`send`](Connection::send) is one system
/// call that writes header and payload together; a large payload is gathered with the header
/// (`sendmsg`/`writev`) straight from the caller's buffer. To send many small messages in few
/// system calls, either pass them together to [`send_bytes_many`](Connection::send_bytes_many)
/// or turn on [`set_buffered_sends`](Connection::set_buffered_sends): sends are then collected
/// (up to 64 KiB) and written by [`flush`](Connection::flush), by a receive on this end that
/// has to wait for the peer (so a request and its reply never wait on each other, while the
/// replies to requests read ahead together go out together), by [`close`](Connection::close),
/// or when the connection is dropped. The bytes on the wire are the same either way.
///
/// # Sharing
///
/// A `Connection` is `Send` and `Sync`. Sends are serialised by one lock and receives by
/// another, so every message is written and read whole even when several threads use one
/// connection through an [`Arc`](std::sync::Arc) (Python's `Connection` gives no such promise),
/// and one thread may send while another receives. It is not `Clone`:
/// [`try_clone`](Connection::try_clone) duplicates the descriptor, for handing one end to a new
/// owner (a child process); two clones used at once interleave their messages.
///
/// # Into a child process
///
/// A connection travels into a child started by `conveyor-process` inside its arguments
/// (`Process::new("worker", (conn, 3))`): it implements `Serialize`/`Deserialize` through
/// [`conveyor_core::handoff`], and the child inherits the descriptor.
///
/// # Closing
///
/// [`close`](Connection::close) (also [`Channel::close`]) shuts the sending direction: the peer
/// receives everything already sent and then [`GetError::Closed`]. Dropping the connection
/// closes it completely. End of file between two messages is `Closed`; end of file inside a
/// message is an I/O error of kind `UnexpectedEof` (the peer died mid-message).
///
/// # Moving to pipes
///
/// Two ends of a Unix socket on one machine may move their messages to a pair of OS pipes,
/// one per direction: a pipe message costs the kernel less than a Unix socket message
/// (socket buffers are allocated and accounted per message). The side that starts makes the
/// pipes and passes the peer's ends over the socket ([`move_to_pipes`](Connection::move_to_pipes));
/// the other takes them, refusing anything that is not a pipe end of the right direction
/// ([`accept_pipes`](Connection::accept_pipes)). [`Connector::pipes`](crate::Connector::pipes)
/// with [`ListenerBuilder::pipes`](crate::ListenerBuilder::pipes) do both right after the
/// handshake; both ends must ask (a Python peer knows nothing of it). Inside the pipes the
/// frames are still Python's.
///
/// What it buys, from `benches/pipe.rs`'s side-by-side pass on a loaded two-vCPU machine
/// (load average 3.4-5.4): 64 B messages one way at 2.0 M/s against 0.83 M/s on the socket,
/// 4 KiB at 0.33 M/s against 0.21 M/s, a 64 B round trip in 3.0 us against 7.4 us with the
/// spin (42 us against 31 us without it). Large messages lose: 1 MiB ones at 4.2 k/s against
/// 6.4 k/s (pipes of 1 MiB instead of [`PIPE_CAPACITY`] changed nothing). Move where the
/// messages are small.
///
/// After the move, sends and receives go through the pipes with the same buffering,
/// read-ahead, spin, maximum message size and errors. The socket stays: descriptors still
/// pass over it ([`send_fds`](Connection::send_fds) and [`recv_fds`](Connection::recv_fds),
/// no longer ordered with the messages), [`hung_up`](Connection::hung_up) looks at it and at
/// the receiving pipe, and a receive that waits ends as [`GetError::Closed`] once the peer's
/// socket goes or the socket is shut down here from another thread (as with
/// [`watch_hangup`](Connection::watch_hangup)). [`close`](Connection::close) closes the
/// sending pipe (the peer drains it, then sees `Closed`), and waits for a send in progress in
/// another thread rather than waking it. [`try_clone`](Connection::try_clone) duplicates the
/// socket and both pipe ends (a clone's `close` closes only its own copy of the sending pipe).
/// A connection that moved cannot be handed to a child process (its `Serialize` fails with a
/// clear error): hand it over first and let the child move. [`poll`](Connection::poll) and
/// [`wait`](crate::wait) wait on the receiving pipe; [`AsFd`] still gives the socket.
///
/// A write to a pipe whose reader has gone raises `SIGPIPE`, which kills a process that does
/// not ignore or handle it (Rust and Python programs ignore it from the start): where it is
/// not ignored, the move is declined and the connection stays on its socket.
///
/// With [`Channel`] in scope, `arc.close()` on an `Arc<Connection>` is ambiguous (the `Arc`
/// is a `Channel` too, for every item type): write `(*arc).close()`.
///
/// # Example
///
/// ```
/// use conveyor_pipe::pipe;
///
/// let (a, b) = pipe().unwrap();
/// a.send(&("rose", 4u8)).unwrap();
/// let got: (String, u8) = b.recv().unwrap();
/// assert_eq!(got, ("rose".to_string(), 4));
///
/// b.send_bytes(b"raw bytes").unwrap();
/// assert_eq!(a.recv_bytes().unwrap(), b"raw bytes");
///
/// a.close();
/// assert!(b.recv_bytes().unwrap_err().is_closed());
/// ```
pub struct Connection<C: Codec = Postcard> {
    kind: FdKind,
    readable: bool,
    writable: bool,
    max_message_size: AtomicU64,
    /// Held for a whole receive: the read-ahead buffer, and the scratch buffer `recv` decodes
    /// a large message from.
    reader: Mutex<Reader>,
    /// How many bytes the read-ahead buffer holds, for `poll` to see without the lock.
    buffered: AtomicUsize,
    /// Whether a receive may read past the message it returns.
    read_ahead: AtomicBool,
    /// Held for a whole send: the sends buffered and not yet written, and the scratch buffer.
    /// Declared before `fd`, so that dropping the connection flushes the buffered sends
    /// while the descriptor is still open (see [`Writer`]).
    writer: Mutex<Writer>,
    /// Whether sends are buffered until a flush (see `set_buffered_sends`).
    buffered_sends: AtomicBool,
    /// Whether the writer holds bytes not yet written (checked by receives without the lock).
    unflushed: AtomicBool,
    /// Whether a receive spins before it sleeps.
    spin: AtomicBool,
    /// Why receiving is no longer possible (`OK` while it is).
    broken: AtomicU8,
    /// Set once this end is closed for sending.
    write_closed: AtomicBool,
    /// The shared-memory lane of a pipe built with `PipeBuilder::shared_memory` (see
    /// [`crate::lane`]): messages go through its rings, and the descriptor is the socket kept
    /// for doorbells, end of file and passed descriptors.
    lane: Option<Lane>,
    /// A socket whose hang-up ends a blocked receive (see `watch_hangup`).
    watch: OnceLock<OwnedFd>,
    /// After a move to pipes (see `move_to_pipes`): the pipe ends messages are received from
    /// and sent on, both in non-blocking mode; `fd` stays the socket, for passed descriptors
    /// and hang-ups. Dropped after `writer`, which writes to `tx`.
    pipes: Option<Pipes>,
    /// The descriptor is a pipe end that was in non-blocking mode (`O_NONBLOCK`) when the
    /// connection was made: a spin polls it with plain reads (see `from_fd`).
    nonblocking_fd: bool,
    /// Dropped after `writer` (fields drop in declaration order).
    fd: OwnedFd,
    codec: C,
}

impl<C: Codec> fmt::Debug for Connection<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("fd", &self.fd.as_raw_fd())
            .field("kind", &self.kind)
            .field("readable", &self.readable)
            .field("writable", &self.writable)
            .field("codec", &C::NAME)
            .field("shared_memory", &self.lane.is_some())
            .field("pipes", &self.pipes.is_some())
            .finish_non_exhaustive()
    }
}

fn broken_error(code: u8) -> GetError {
    let why = match code {
        BROKEN_TOO_LARGE => "an earlier message was refused as too large",
        BROKEN_MID_FRAME => "an earlier receive failed in the middle of a message",
        BROKEN_PIPES => "the move to pipes failed, so the two ends disagree on where messages go",
        _ => "the peer sent a malformed frame header",
    };
    GetError::Io(io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "the connection is unusable: {why}, so the stream is no longer at a message boundary; \
             drop it and reconnect"
        ),
    ))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data is a scratch buffer: a panic while it was held leaves nothing to repair.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The receiving side's state, behind the reader lock.
#[derive(Debug, Default)]
pub(crate) struct Reader {
    pub(crate) ahead: ReadAhead,
    scratch: Vec<u8>,
    /// Every read fails with `TimedOut` once this passes (the handshake's one deadline).
    deadline: Option<Instant>,
    /// The receiving state of a shared-memory lane.
    lane: LaneReader,
    /// After a move to pipes: what was read from the socket (passed descriptors), apart from
    /// `ahead`, which then holds the pipe's bytes.
    socket: ReadAhead,
}

/// The two pipe ends of a connection that moved to pipes.
#[derive(Debug)]
struct Pipes {
    /// The read end of the pipe the peer sends on.
    rx: OwnedFd,
    /// The write end of the pipe the peer receives from.
    tx: OwnedFd,
    /// `rx` is in non-blocking mode, and only this process can change that: a spin looks with
    /// a plain `read` (otherwise with `preadv2(RWF_NOWAIT)`, which never waits whatever the
    /// mode).
    nonblocking: bool,
}

impl Pipes {
    fn try_clone(&self) -> io::Result<Pipes> {
        Ok(Pipes {
            rx: self.rx.try_clone()?,
            tx: self.tx.try_clone()?,
            nonblocking: self.nonblocking,
        })
    }
}

/// The pipe end passed as `end`, if it is one: a FIFO that only reads (receive) or only
/// writes (send). Anything else (a file, a device such as `/dev/zero`, a socket, the wrong end
/// of a pipe) would keep this end's thread reading a source that never blocks, or writing into
/// one that swallows everything.
fn check_pipe_end(fd: &OwnedFd, end: PipeEnd) -> Result<(), PipesError> {
    if !sys::is_fifo(fd.as_fd())? {
        return Err(PipesError::NotAPipe { end });
    }
    let want = match end {
        PipeEnd::Receive => (true, false),
        PipeEnd::Send => (false, true),
    };
    let (readable, writable, _) = sys::access_mode(fd.as_fd())?;
    if (readable, writable) != want {
        return Err(PipesError::WrongEnd { end });
    }
    Ok(())
}

/// The pipe ends a peer passed, checked, in the modes this end reads and writes them in: the
/// read end opened again as this process's own non-blocking file where that works (see
/// [`sys::reopen_read_end`]), else made blocking and looked at with `preadv2`.
fn accepted_pipes(rx: OwnedFd, tx: OwnedFd) -> Result<Pipes, PipesError> {
    check_pipe_end(&rx, PipeEnd::Receive)?;
    check_pipe_end(&tx, PipeEnd::Send)?;
    // A full pipe waits with poll in either mode; the peer may change this one's mode.
    sys::set_nonblocking(tx.as_fd(), true)?;
    Ok(match sys::reopen_read_end(rx.as_fd()) {
        Ok(own) => Pipes {
            rx: own,
            tx,
            nonblocking: true,
        },
        Err(e) => {
            tracing::debug!(error = %e, "a passed pipe end could not be reopened: read blocking");
            sys::set_nonblocking(rx.as_fd(), false)?;
            Pipes {
                rx,
                tx,
                nonblocking: false,
            }
        }
    })
}

fn pipes_send_error(e: SendError) -> PipesError {
    match e {
        SendError::Closed => PipesError::Closed,
        SendError::Io(e) => PipesError::Io(e),
        other => PipesError::Io(io::Error::other(other)),
    }
}

impl Connection<Postcard> {
    /// Wraps a connected stream socket, or one end of an OS pipe, into a connection.
    ///
    /// Whether it reads, writes or both is taken from the descriptor (a socket does both, a
    /// pipe end one of them). No handshake is made: use [`Connector`](crate::Connector) or
    /// [`Listener`](crate::Listener) for an authenticated one.
    ///
    /// A pipe end may be in non-blocking mode (`O_NONBLOCK`): receives and sends still wait
    /// (with `poll`) as on a blocking pipe, and a receive's spin then looks at the pipe with a
    /// plain `read`, the cheapest look there is (a blocking pipe takes a
    /// `preadv2(RWF_NOWAIT)`, which costs more on every look). So a program that alone holds
    /// both ends of its pipes gains by making them non-blocking, as conveyor-manager does.
    /// The mode is read once, here: leave it as it is while the connection lives (cleared
    /// later, a spin's look would wait in `read` until bytes come).
    ///
    /// ```
    /// use std::os::unix::net::UnixStream;
    /// use conveyor_pipe::Connection;
    ///
    /// let (a, b) = UnixStream::pair().unwrap();
    /// let (a, b) = (Connection::from_fd(a.into()).unwrap(), Connection::from_fd(b.into()).unwrap());
    /// a.send_bytes(b"hi").unwrap();
    /// assert_eq!(b.recv_bytes().unwrap(), b"hi");
    /// ```
    pub fn from_fd(fd: OwnedFd) -> io::Result<Self> {
        let (kind, readable, writable, nonblocking) = if sys::is_socket(fd.as_fd())? {
            (FdKind::Socket, true, true, false)
        } else {
            let (r, w, nonblocking) = sys::access_mode(fd.as_fd())?;
            (FdKind::Pipe, r, w, nonblocking)
        };
        let mut conn = Self::from_parts(fd, kind, readable, writable, Postcard);
        conn.nonblocking_fd = nonblocking;
        Ok(conn)
    }
}

impl<C: Codec> Connection<C> {
    pub(crate) fn from_parts(
        fd: OwnedFd,
        kind: FdKind,
        readable: bool,
        writable: bool,
        codec: C,
    ) -> Self {
        Connection {
            kind,
            readable,
            writable,
            max_message_size: AtomicU64::new(DEFAULT_MAX_MESSAGE_SIZE),
            reader: Mutex::new(Reader::default()),
            buffered: AtomicUsize::new(0),
            read_ahead: AtomicBool::new(true),
            writer: Mutex::new(Writer::new(fd.as_raw_fd(), kind, writable)),
            buffered_sends: AtomicBool::new(false),
            unflushed: AtomicBool::new(false),
            spin: AtomicBool::new(true),
            broken: AtomicU8::new(OK),
            write_closed: AtomicBool::new(false),
            lane: None,
            watch: OnceLock::new(),
            pipes: None,
            nonblocking_fd: false,
            fd,
            codec,
        }
    }

    /// The same connection with its messages moved to a shared-memory lane (its descriptor
    /// must be a Unix socket to the lane's other end).
    pub(crate) fn with_lane(mut self, lane: Lane) -> Self {
        debug_assert_eq!(self.kind, FdKind::Socket);
        self.lane = Some(lane);
        self
    }

    /// The shared-memory lane, if this end has one.
    pub(crate) fn lane(&self) -> Option<&Lane> {
        self.lane.as_ref()
    }

    /// The names of the shared-memory rings this end sends on and receives on, for the fuzz
    /// targets, which put records of their own there. Not part of the documented API.
    #[doc(hidden)]
    pub fn __lane_ring_names(&self) -> (Option<String>, Option<String>) {
        match &self.lane {
            Some(lane) => lane.ring_names(),
            None => (None, None),
        }
    }

    /// Whether this end's messages travel through shared memory (a pipe built with
    /// [`PipeBuilder::shared_memory`](crate::PipeBuilder::shared_memory)).
    pub fn is_shared_memory(&self) -> bool {
        self.lane.is_some()
    }

    /// The same connection, encoding values with `codec` from now on.
    ///
    /// ```
    /// use conveyor_core::Postcard;
    /// use conveyor_pipe::pipe;
    ///
    /// let (a, b) = pipe().unwrap();
    /// let a = a.with_codec(Postcard);
    /// a.send(&1u8).unwrap();
    /// assert_eq!(b.recv::<u8>().unwrap(), 1);
    /// ```
    pub fn with_codec<D: Codec>(self, codec: D) -> Connection<D> {
        // Everything moves across, the bytes read ahead included.
        Connection {
            kind: self.kind,
            readable: self.readable,
            writable: self.writable,
            max_message_size: self.max_message_size,
            reader: self.reader,
            buffered: self.buffered,
            read_ahead: self.read_ahead,
            writer: self.writer,
            buffered_sends: self.buffered_sends,
            unflushed: self.unflushed,
            spin: self.spin,
            broken: self.broken,
            write_closed: self.write_closed,
            lane: self.lane,
            watch: self.watch,
            pipes: self.pipes,
            nonblocking_fd: self.nonblocking_fd,
            fd: self.fd,
            codec,
        }
    }

    /// The codec `send` and `recv` use.
    pub fn codec(&self) -> &C {
        &self.codec
    }

    /// Whether this end can receive (false for the writing end of a one-way pipe).
    pub fn readable(&self) -> bool {
        self.readable
    }

    /// Whether this end can send (false for the reading end of a one-way pipe).
    pub fn writable(&self) -> bool {
        self.writable
    }

    /// The largest message, in bytes, this end sends or accepts.
    pub fn max_message_size(&self) -> u64 {
        self.max_message_size.load(Ordering::Relaxed)
    }

    /// Sets the largest message, in bytes, this end sends or accepts
    /// (default [`DEFAULT_MAX_MESSAGE_SIZE`]).
    ///
    /// An incoming length prefix above it is refused with [`GetError::TooLarge`] before
    /// anything is allocated, and the connection is unusable afterwards (the rest of the
    /// message is still in the stream). An outgoing message above it is refused with
    /// [`SendError::TooLarge`] and nothing is written. Python has no such limit: raise it to
    /// `u64::MAX` to accept anything a trusted peer sends.
    pub fn set_max_message_size(&self, max: u64) {
        self.max_message_size.store(max, Ordering::Relaxed);
    }

    /// Whether a receive may read past the message it returns (on by default; see
    /// "Receiving" above).
    ///
    /// Turn it off for a connection whose descriptor will be taken with
    /// [`into_fd`](Connection::into_fd) or read by other code: each receive then reads exactly
    /// one message (two system calls), so nothing that follows is taken from the socket.
    /// Connections from a [`Listener`](crate::Listener) or [`Connector`](crate::Connector) run the
    /// handshake this way, so the first message after it is still in the socket.
    pub fn set_read_ahead(&self, on: bool) {
        self.read_ahead.store(on, Ordering::Relaxed);
    }

    /// Whether a receive spins a while before it sleeps (on by default).
    ///
    /// The spin polls with non-blocking reads, yielding the CPU between polls, for an adaptive
    /// budget of at most 50 us: it grows while the peer's messages come within it and falls to
    /// nothing when they do not, and it stops at once when a yield shows another program
    /// waiting for this CPU. It takes a round trip between two processes on different CPUs
    /// from two scheduler wake-ups (tens of microseconds on a small virtual machine) to a few
    /// microseconds. Turn it off where every microsecond of CPU counts more than latency.
    pub fn set_spin(&self, on: bool) {
        self.spin.store(on, Ordering::Relaxed);
    }

    /// Whether sends are buffered until a flush (off by default; see "Sending" above).
    pub fn buffered_sends(&self) -> bool {
        self.buffered_sends.load(Ordering::Relaxed)
    }

    /// Buffers sends until [`flush`](Connection::flush) (or a receive on this end that waits
    /// for the peer, or [`close`](Connection::close), or the connection's drop, or 64 KiB of
    /// them), so that many small messages go out in one system call. Turning it off flushes.
    ///
    /// Every way a send can fail is still reported by the send itself, except a failure of the
    /// write, which is reported by the call that writes (a later send, `flush`, or the
    /// receive that flushes). A connection dropped with buffered sends writes them before its
    /// descriptor is closed, blocking until the peer's buffer takes them (as `BufWriter`
    /// does); errors there are lost, so call `flush` or `close` first where they matter.
    ///
    /// ```
    /// use conveyor_pipe::pipe;
    ///
    /// let (a, b) = pipe().unwrap();
    /// a.set_buffered_sends(true);
    /// for i in 0..1000u32 {
    ///     a.send(&i).unwrap(); // collected, not written yet
    /// }
    /// a.flush().unwrap(); // one system call
    /// assert_eq!(b.recv::<u32>().unwrap(), 0);
    /// ```
    pub fn set_buffered_sends(&self, on: bool) {
        self.buffered_sends.store(on, Ordering::Relaxed);
        if !on {
            if let Err(e) = self.flush() {
                tracing::debug!(error = %e, "flushing when buffering was turned off failed");
            }
        }
    }

    /// Writes every buffered send (see [`set_buffered_sends`](Connection::set_buffered_sends));
    /// returns at once when nothing is buffered.
    pub fn flush(&self) -> Result<(), SendError> {
        if !self.unflushed.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut w = lock(&self.writer);
        let result = w.flush().map_err(send_error);
        self.unflushed.store(false, Ordering::Release);
        result
    }

    /// Flushes this end's buffered sends before a receive waits for the peer.
    fn flush_before_receive(&self) -> Result<(), GetError> {
        match self.flush() {
            Ok(()) | Err(SendError::Closed) => Ok(()),
            Err(e) => Err(GetError::Io(io::Error::other(format!(
                "writing this end's buffered sends before receiving failed: {e}"
            )))),
        }
    }

    // ---------------------------------------------------------------- sending

    fn check_send(&self, size: u64) -> Result<(), SendError> {
        if !self.writable {
            return Err(SendError::Io(io::Error::new(
                io::ErrorKind::Unsupported,
                "this is the reading end of a one-way pipe: it cannot send",
            )));
        }
        if self.write_closed.load(Ordering::Acquire) {
            return Err(SendError::Closed);
        }
        let max = self.max_message_size();
        if size > max {
            return Err(SendError::TooLarge { size, max });
        }
        Ok(())
    }

    /// After a send into `w`: whether bytes wait in it now.
    fn note_unflushed(&self, w: &Writer) {
        self.unflushed.store(w.has_pending(), Ordering::Release);
    }

    /// Sends `data` as one message (Python's `send_bytes`).
    ///
    /// Header and payload go out in one system call, so a small message is one write on the
    /// wire: up to [`COPY_LIMIT`] bytes they are copied into one buffer and sent with `send`
    /// (cheaper than gathering), above it they are gathered with `sendmsg`/`writev` without a
    /// copy. It blocks while the peer's buffer is full; a message of any size is written whole
    /// before it returns. With [`set_buffered_sends`](Connection::set_buffered_sends), a
    /// small message is only collected.
    pub fn send_bytes(&self, data: &[u8]) -> Result<(), SendError> {
        self.send_framed(data, self.buffered_sends())
    }

    /// Sends `data` as one message now, whatever
    /// [`set_buffered_sends`](Connection::set_buffered_sends) says: the sends buffered before
    /// it go out with it, in one system call where they fit. For the last message before a
    /// receive: written here, it leaves the receive nothing to flush, so the connection's
    /// writer is taken once instead of twice.
    ///
    /// ```
    /// use conveyor_pipe::pipe;
    ///
    /// let (a, b) = pipe().unwrap();
    /// a.set_buffered_sends(true);
    /// a.send_bytes(b"one").unwrap(); // collected
    /// a.send_bytes_now(b"two").unwrap(); // both written
    /// assert_eq!(b.recv_bytes().unwrap(), b"one");
    /// assert_eq!(b.recv_bytes().unwrap(), b"two");
    /// ```
    pub fn send_bytes_now(&self, data: &[u8]) -> Result<(), SendError> {
        self.send_framed(data, false)
    }

    /// Sends one message, collected only if `buffered` (and small).
    fn send_framed(&self, data: &[u8], buffered: bool) -> Result<(), SendError> {
        self.check_send(data.len() as u64)?;
        if let Some(lane) = &self.lane {
            return self.lane_put(lane, &[data, &[TAG_MESSAGE]], None);
        }
        let mut w = lock(&self.writer);
        if self.write_closed.load(Ordering::Acquire) {
            return Err(SendError::Closed);
        }
        let result = w.frame(data, buffered).map_err(send_error);
        self.note_unflushed(&w);
        result
    }

    /// Sends every message of `messages`, in order, in as few system calls as possible (one
    /// for up to 64 KiB of small messages), whether or not sends are buffered: the same bytes
    /// on the wire as one [`send_bytes`](Connection::send_bytes) each.
    ///
    /// Every size is checked before anything is written: a message over the maximum fails
    /// the call with [`SendError::TooLarge`] and sends none of them.
    ///
    /// ```
    /// use conveyor_pipe::pipe;
    ///
    /// let (a, b) = pipe().unwrap();
    /// a.send_bytes_many(&[&b"one"[..], b"two", b"three"]).unwrap();
    /// assert_eq!(b.recv_bytes().unwrap(), b"one");
    /// assert_eq!(b.recv_bytes().unwrap(), b"two");
    /// assert_eq!(b.recv_bytes().unwrap(), b"three");
    /// ```
    pub fn send_bytes_many<B: AsRef<[u8]>>(&self, messages: &[B]) -> Result<(), SendError> {
        self.check_send(0)?;
        let max = self.max_message_size();
        if let Some(big) = messages.iter().find(|m| m.as_ref().len() as u64 > max) {
            return Err(SendError::TooLarge {
                size: big.as_ref().len() as u64,
                max,
            });
        }
        if let Some(lane) = &self.lane {
            let _w = lock(&self.writer); // the messages go in together, in order
            for m in messages {
                self.lane_put(lane, &[m.as_ref(), &[TAG_MESSAGE]], None)?;
            }
            return Ok(());
        }
        let mut w = lock(&self.writer);
        if self.write_closed.load(Ordering::Acquire) {
            return Err(SendError::Closed);
        }
        let mut result = Ok(());
        for m in messages {
            result = w.frame(m.as_ref(), true);
            if result.is_err() {
                break;
            }
        }
        if result.is_ok() && !self.buffered_sends() {
            result = w.flush();
        }
        self.note_unflushed(&w);
        result.map_err(send_error)
    }

    /// Encodes `value` with the connection's codec and sends it as one message
    /// (Python's `send`). With [`set_buffered_sends`](Connection::set_buffered_sends), a
    /// small message is only collected (it is encoded straight into the buffer).
    pub fn send<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), SendError> {
        self.check_send(0)?;
        if self.lane.is_some() {
            return self.lane_send_value(value, None).map_err(|e| match e {
                LanePutError::Send(e) => e,
                LanePutError::Full | LanePutError::Timeout => SendError::Closed,
            });
        }
        let mut w = lock(&self.writer);
        if self.write_closed.load(Ordering::Acquire) {
            return Err(SendError::Closed);
        }
        let result = w.encoded(
            &self.codec,
            value,
            self.max_message_size(),
            self.buffered_sends(),
        );
        self.note_unflushed(&w);
        result
    }

    /// Passes open descriptors to the peer over a Unix socket (Python's
    /// `multiprocessing.reduction.sendfds(sock, fds)`): one byte holding `fds.len() % 256`,
    /// with the descriptors attached (`SCM_RIGHTS`). The peer takes them with
    /// [`recv_fds`](Connection::recv_fds), or Python's `reduction.recvfds`. This end keeps its
    /// own descriptors; the peer receives new ones for the same open files.
    ///
    /// Buffered sends are written first, so the descriptors come after every message sent
    /// before them. A one-way pipe or a TCP socket cannot pass descriptors: the call fails.
    ///
    /// ```
    /// use std::io::{Read, Seek, Write};
    /// use std::os::fd::AsFd;
    /// use conveyor_pipe::pipe;
    ///
    /// let (a, b) = pipe().unwrap();
    /// let mut file = tempfile::tempfile().unwrap();
    /// file.write_all(b"shared").unwrap();
    /// a.send_fds(&[file.as_fd()]).unwrap();
    /// let fds = b.recv_fds(4).unwrap();
    /// let mut same = std::fs::File::from(fds.into_iter().next().unwrap());
    /// same.rewind().unwrap();
    /// let mut text = String::new();
    /// same.read_to_string(&mut text).unwrap();
    /// assert_eq!(text, "shared");
    /// ```
    pub fn send_fds(&self, fds: &[BorrowedFd<'_>]) -> Result<(), SendError> {
        self.check_send(0)?;
        if self.kind != FdKind::Socket {
            return Err(SendError::Io(io::Error::new(
                io::ErrorKind::Unsupported,
                "descriptors pass only over a Unix socket, not an OS pipe",
            )));
        }
        if let Some(lane) = &self.lane {
            let _w = lock(&self.writer);
            if self.write_closed.load(Ordering::Acquire) {
                return Err(SendError::Closed);
            }
            return lane.send_fds(self.fd.as_fd(), fds);
        }
        let mut w = lock(&self.writer);
        if self.write_closed.load(Ordering::Acquire) {
            return Err(SendError::Closed);
        }
        let flushed = w.flush();
        self.note_unflushed(&w);
        flushed.map_err(send_error)?;
        sys::send_fds(self.fd.as_fd(), fds).map_err(send_error)
    }

    /// Puts one record into the lane (the size was checked).
    fn lane_put(
        &self,
        lane: &Lane,
        parts: &[&[u8]],
        timeout: Option<Duration>,
    ) -> Result<(), SendError> {
        if self.write_closed.load(Ordering::Acquire) {
            return Err(SendError::Closed);
        }
        lane.put(self.fd.as_fd(), parts, timeout)
            .map_err(|e| match e {
                LanePutError::Send(e) => e,
                // Only a put with a timeout reports these; sends have none.
                LanePutError::Full | LanePutError::Timeout => SendError::Closed,
            })
    }

    /// Encodes `value` and puts it into the lane, waiting at most `timeout` for room.
    fn lane_send_value<T: Serialize + ?Sized>(
        &self,
        value: &T,
        timeout: Option<Duration>,
    ) -> Result<(), LanePutError> {
        let lane = self.lane.as_ref().expect("called for a lane");
        let mut w = lock(&self.writer);
        if self.write_closed.load(Ordering::Acquire) {
            return Err(SendError::Closed.into());
        }
        let scratch = w.scratch();
        scratch.clear();
        self.codec
            .encode(value, scratch)
            .map_err(|e| LanePutError::Send(SendError::Codec(e)))?;
        let (size, max) = (scratch.len() as u64, self.max_message_size());
        if size > max {
            return Err(SendError::TooLarge { size, max }.into());
        }
        scratch.push(TAG_MESSAGE);
        let result = lane.put(self.fd.as_fd(), &[scratch.as_slice()], timeout);
        w.keep_scratch();
        result
    }

    // -------------------------------------------------------------- receiving

    fn check_recv(&self) -> Result<(), GetError> {
        if !self.readable {
            return Err(GetError::Io(io::Error::new(
                io::ErrorKind::Unsupported,
                "this is the writing end of a one-way pipe: it cannot receive",
            )));
        }
        match self.broken.load(Ordering::Acquire) {
            OK => Ok(()),
            code => Err(broken_error(code)),
        }
    }

    fn mark_broken(&self, code: u8) {
        self.broken.store(code, Ordering::Release);
    }

    /// Receives one message with the reader lock held: the payload is left in the read-ahead
    /// buffer or in `out` (cleared first), as the returned [`Payload`] says.
    fn read_frame(&self, r: &mut Reader, out: &mut Vec<u8>) -> Result<Payload, GetError> {
        self.check_recv()?;
        if !r.ahead.holds_whole_frame() {
            self.flush_before_receive()?;
        }
        let src = self.source(r);
        let result = r.ahead.next_frame(&src, self.max_message_size(), out);
        self.buffered
            .store(r.ahead.pending().len(), Ordering::Release);
        result.map_err(|failure| self.read_error(failure))
    }

    fn source(&self, r: &Reader) -> Source<'_> {
        let watch = self.watch.get().map(|w| w.as_fd());
        let (fd, kind, watch, fd_nonblocking) = match &self.pipes {
            // After a move, a wait on the pipe also watches the socket: the peer's hang-up or
            // a shutdown of the socket (from any thread) ends it. The pipes are made
            // non-blocking, so a spin looks with plain reads
            // where only this process can change that.
            Some(p) => (
                p.rx.as_fd(),
                FdKind::Pipe,
                Some(watch.unwrap_or(self.fd.as_fd())),
                p.nonblocking,
            ),
            None => (self.fd.as_fd(), self.kind, watch, self.nonblocking_fd),
        };
        Source {
            fd,
            kind,
            exact: !self.read_ahead.load(Ordering::Relaxed),
            spin: self.spin.load(Ordering::Relaxed),
            deadline: r.deadline,
            watch,
            fd_nonblocking,
        }
    }

    /// The socket as a source (passed descriptors after a move to pipes).
    fn socket_source(&self, r: &Reader) -> Source<'_> {
        Source {
            fd: self.fd.as_fd(),
            kind: FdKind::Socket,
            exact: true,
            spin: self.spin.load(Ordering::Relaxed),
            deadline: r.deadline,
            watch: None,
            fd_nonblocking: false,
        }
    }

    /// The descriptor messages are received from: the socket or, after a move, the pipe.
    pub(crate) fn recv_fd(&self) -> BorrowedFd<'_> {
        self.pipes
            .as_ref()
            .map_or(self.fd.as_fd(), |p| p.rx.as_fd())
    }

    /// The descriptor messages are sent on.
    fn send_fd(&self) -> BorrowedFd<'_> {
        self.pipes
            .as_ref()
            .map_or(self.fd.as_fd(), |p| p.tx.as_fd())
    }

    /// From now on, a receive that waits for the peer also watches `socket`, and ends as if
    /// the peer had closed (end of file: [`GetError::Closed`] between messages) once that
    /// socket hangs up: its peer closed it or shut it down, or it was shut down here (from
    /// any thread, on any duplicate of it). Set once; a second call fails.
    ///
    /// It is for a connection over an OS pipe that a socket accompanies: a server whose
    /// client moved its messages to pipes keeps the socket to learn that the client went, and
    /// shuts it down to wake the thread waiting on the pipe. A wait in the middle of a large
    /// message (its rest read straight into place) does not watch. Not carried by
    /// [`try_clone`](Connection::try_clone) or a handoff to another process.
    ///
    /// ```
    /// use std::os::unix::net::UnixStream;
    /// use conveyor_pipe::pipe_oneway;
    ///
    /// let (reader, _writer) = pipe_oneway().unwrap(); // the writer stays, silent
    /// let (sock, peer) = UnixStream::pair().unwrap();
    /// reader.watch_hangup(sock.into()).unwrap();
    /// drop(peer); // the socket's peer goes: the receive ends instead of waiting forever
    /// assert!(reader.recv_bytes().unwrap_err().is_closed());
    /// ```
    pub fn watch_hangup(&self, socket: OwnedFd) -> io::Result<()> {
        self.watch.set(socket).map_err(|_| {
            io::Error::new(
                io::ErrorKind::AlreadyExists,
                "this connection already watches a socket",
            )
        })
    }

    // ----------------------------------------------------------- pipes

    /// Whether this end's messages travel through a pair of OS pipes (after
    /// [`move_to_pipes`](Connection::move_to_pipes) or
    /// [`accept_pipes`](Connection::accept_pipes); see "Moving to pipes" above).
    pub fn uses_pipes(&self) -> bool {
        self.pipes.is_some()
    }

    /// Why this end cannot take part in a move to pipes now, if it cannot.
    fn movable(&self) -> Result<(), PipesError> {
        let why = if self.kind != FdKind::Socket {
            "it is an OS pipe, not a socket"
        } else if !(self.readable && self.writable) {
            "it is one end of a one-way pipe"
        } else if self.lane.is_some() {
            "its messages travel through shared memory"
        } else if self.pipes.is_some() {
            "it moved to pipes already"
        } else if self.write_closed.load(Ordering::Acquire) {
            "it is closed for sending"
        } else if self.broken.load(Ordering::Acquire) != OK {
            "it is unusable after an earlier failure"
        } else if self.has_read_ahead() {
            "bytes of the peer's next message were read ahead (both ends must move at the same \
             point of the stream, before any message after it)"
        } else {
            return Ok(());
        };
        Err(PipesError::Unsupported(why))
    }

    /// Whether a move to pipes could happen on this end now: a Unix socket, not moved yet,
    /// not over shared memory, open for sending, nothing read ahead, and `SIGPIPE` ignored or
    /// handled in this process (a write to a pipe whose reader is gone raises it; Rust and
    /// Python programs ignore it from the start). An accepting side asks it before it agrees
    /// to a move (see [`accept_pipes`](Connection::accept_pipes)).
    pub fn can_move_to_pipes(&self) -> bool {
        self.movable().is_ok() && sys::is_unix_socket(self.fd.as_fd()) && sys::sigpipe_is_safe()
    }

    /// Moves this end's messages from its Unix socket to a pair of OS pipes, the side that
    /// starts the move (see "Moving to pipes" above): makes two pipes (close-on-exec, each
    /// holding at least [`PIPE_CAPACITY`] bytes), passes the peer's ends over the socket
    /// ([`send_fds`](Connection::send_fds)) and sends and receives on its own ends from now
    /// on. The peer calls [`accept_pipes`](Connection::accept_pipes) at the same point of
    /// the stream; how the two agree to move is up to them (or to
    /// [`Connector::pipes`](crate::Connector::pipes) and
    /// [`ListenerBuilder::pipes`](crate::ListenerBuilder::pipes), which do it all).
    ///
    /// `Ok(true)`: moved. `Ok(false)`: declined, because this is not a Unix socket, `SIGPIPE`
    /// is not ignored in this process, or the pipes could not be made; the peer is told (one
    /// byte on the socket), its `accept_pipes` returns `Ok(false)` too, and both go on over
    /// the socket. [`PipesError::Unsupported`]: nothing was sent and the connection is
    /// untouched (see [`can_move_to_pipes`](Connection::can_move_to_pipes)). Any other error
    /// leaves the two ends in disagreement: drop the connection.
    ///
    /// ```
    /// use conveyor_pipe::{Connector, Listener};
    ///
    /// let listener = Listener::bind_private(None).unwrap();
    /// let address = listener.address().clone();
    /// let server = std::thread::spawn(move || {
    ///     let mut conn = listener.accept().unwrap();
    ///     assert!(conn.accept_pipes().unwrap());
    ///     let echo = conn.recv_bytes().unwrap();
    ///     conn.send_bytes(&echo).unwrap();
    /// });
    /// let mut conn = Connector::new().connect(&address).unwrap();
    /// assert!(conn.move_to_pipes().unwrap()); // Rust programs ignore SIGPIPE
    /// assert!(conn.uses_pipes());
    /// conn.send_bytes(b"through a pipe").unwrap();
    /// assert_eq!(conn.recv_bytes().unwrap(), b"through a pipe");
    /// server.join().unwrap();
    /// ```
    pub fn move_to_pipes(&mut self) -> Result<bool, PipesError> {
        self.movable()?;
        let why = if !sys::is_unix_socket(self.fd.as_fd()) {
            Some("it is not a Unix socket")
        } else if !sys::sigpipe_is_safe() {
            Some("SIGPIPE is not ignored in this process")
        } else {
            None
        };
        let made = match why {
            Some(why) => Err(io::Error::other(why)),
            None => sys::make_pipe(PIPE_CAPACITY)
                .and_then(|to_peer| Ok((to_peer, sys::make_pipe(PIPE_CAPACITY)?))),
        };
        let ((peer_rx, tx), (rx, peer_tx)) = match made {
            Ok(pipes) => pipes,
            Err(e) => {
                tracing::debug!(error = %e, "a connection stays on its socket");
                self.send_decline()
                    .inspect_err(|_| self.mark_broken(BROKEN_PIPES))?;
                return Ok(false);
            }
        };
        self.send_fds(&[peer_rx.as_fd(), peer_tx.as_fd()])
            .map_err(|e| {
                self.mark_broken(BROKEN_PIPES);
                pipes_send_error(e)
            })?;
        drop((peer_rx, peer_tx));
        // both pipes were made non-blocking, and the peer holds none of this end's files
        self.switch_to_pipes(Pipes {
            rx,
            tx,
            nonblocking: true,
        });
        Ok(true)
    }

    /// Tells the peer's `accept_pipes` that this end stays on the socket.
    fn send_decline(&self) -> Result<(), PipesError> {
        let mut w = lock(&self.writer);
        let flushed = w.flush();
        self.note_unflushed(&w);
        flushed
            .and_then(|()| sys::write_all(self.fd.as_fd(), FdKind::Socket, &[DECLINE]))
            .map_err(|e| pipes_send_error(send_error(e)))
    }

    /// The accepting side of a move to pipes (see
    /// [`move_to_pipes`](Connection::move_to_pipes)): waits for what the peer's
    /// `move_to_pipes` sends on the socket and, if it is two pipe ends, sends and receives on
    /// them from now on. The socket stays open and is watched (as by
    /// [`watch_hangup`](Connection::watch_hangup)): a receive waiting on the pipe ends as
    /// [`GetError::Closed`] once the peer goes or the socket is shut down, from any thread.
    ///
    /// `Ok(true)`: moved. `Ok(false)`: the peer declined, and both go on over the socket.
    ///
    /// Only exactly two descriptors are taken: the read end of a pipe and the write end of
    /// another (an OS pipe or a FIFO open one way). Anything else is refused with
    /// [`PipesError::Count`], [`PipesError::NotAPipe`] or [`PipesError::WrongEnd`]: a peer
    /// that passes a file or a device such as `/dev/zero` must not keep this end's thread
    /// reading a source that never blocks. After a refusal, or any error but
    /// [`PipesError::Unsupported`], drop the connection.
    ///
    /// Where `SIGPIPE` is not ignored or handled in this process this fails with
    /// `Unsupported` before reading anything: a side that accepts checks
    /// [`can_move_to_pipes`](Connection::can_move_to_pipes) before it agrees to a move.
    pub fn accept_pipes(&mut self) -> Result<bool, PipesError> {
        self.movable()?;
        if !sys::sigpipe_is_safe() {
            return Err(PipesError::Unsupported(
                "SIGPIPE is not ignored in this process",
            ));
        }
        self.flush().map_err(pipes_send_error)?;
        let got = {
            let mut r = lock(&self.reader);
            let src = self.source(&r);
            let got = r.ahead.take_fd_message(&src);
            self.buffered
                .store(r.ahead.pending().len(), Ordering::Release);
            got
        };
        let (byte, fds) = got.map_err(|failure| match self.read_error(failure) {
            GetError::Closed => PipesError::Closed,
            GetError::Io(e) => PipesError::Io(e),
            other => PipesError::Io(io::Error::other(other)),
        })?;
        if fds.is_empty() && byte == DECLINE {
            return Ok(false);
        }
        let taken = self.take_pipe_ends(byte, fds);
        if taken.is_err() {
            self.mark_broken(BROKEN_PIPES);
        }
        taken.map(|()| true)
    }

    /// Checks the descriptors a peer passed to move to pipes, and moves to them.
    fn take_pipe_ends(&mut self, byte: u8, fds: Vec<OwnedFd>) -> Result<(), PipesError> {
        if fds.len() != 2 || usize::from(byte) != fds.len() {
            return Err(PipesError::Count { got: fds.len() });
        }
        if self.has_read_ahead() {
            return Err(PipesError::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                "bytes followed the pipe ends on the socket",
            )));
        }
        let [rx, tx]: [OwnedFd; 2] = fds.try_into().expect("two, checked above");
        let pipes = accepted_pipes(rx, tx)?;
        self.switch_to_pipes(pipes);
        Ok(())
    }

    /// Sends and receives on `pipes` from now on; the socket's read state is kept apart.
    fn switch_to_pipes(&mut self, pipes: Pipes) {
        let w = self.writer.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = w.flush() {
            tracing::debug!(error = %e, "writing buffered sends before a move to pipes failed");
        }
        *w = Writer::new(pipes.tx.as_raw_fd(), FdKind::Pipe, true);
        self.unflushed.store(false, Ordering::Release);
        let r = self.reader.get_mut().unwrap_or_else(|e| e.into_inner());
        r.socket = std::mem::take(&mut r.ahead);
        self.pipes = Some(pipes);
    }

    /// Sets (or clears) a deadline for every read from now on: a read that has not got its
    /// bytes by then fails with `TimedOut`.
    pub(crate) fn set_read_deadline(&self, deadline: Option<Instant>) {
        lock(&self.reader).deadline = deadline;
    }

    fn read_error(&self, failure: ReadFailure) -> GetError {
        match failure {
            ReadFailure::Closed => GetError::Closed,
            ReadFailure::TooLarge { size, max } => {
                self.mark_broken(BROKEN_TOO_LARGE);
                tracing::debug!(size, max, "refused an oversize message");
                GetError::TooLarge { size, max }
            }
            ReadFailure::Malformed(e) => {
                self.mark_broken(BROKEN_MALFORMED);
                GetError::Io(io::Error::new(io::ErrorKind::InvalidData, e))
            }
            ReadFailure::Eof { got, want } => {
                self.mark_broken(BROKEN_MID_FRAME);
                GetError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "the peer closed the connection in the middle of a message \
                         ({got} of {want} bytes arrived): it probably died while sending"
                    ),
                ))
            }
            ReadFailure::Io { error, mid_frame } => {
                if mid_frame {
                    self.mark_broken(BROKEN_MID_FRAME);
                }
                GetError::Io(error)
            }
        }
    }

    /// Receives descriptors the peer passed with [`send_fds`](Connection::send_fds) or
    /// Python's `multiprocessing.reduction.sendfds` (Python's `reduction.recvfds(sock, size)`),
    /// at most `max` of them: they are the next thing on the stream, after every message sent
    /// before them. Blocks until they come.
    ///
    /// The descriptors are close-on-exec and owned by the caller. A byte without descriptors,
    /// more than `max` of them, or a count that does not match the byte (as Python checks)
    /// is an error of kind `InvalidData`, and the connection is unusable afterwards; end of
    /// file before them is [`GetError::Closed`].
    pub fn recv_fds(&self, max: usize) -> Result<Vec<OwnedFd>, GetError> {
        let mut r = lock(&self.reader);
        self.check_recv()?;
        if let Some(lane) = &self.lane {
            let r = &mut *r;
            if !r.lane.marker {
                let mut scratch = Vec::new();
                let is_marker = lane.take(
                    &mut r.lane,
                    self.fd.as_fd(),
                    self.spin.load(Ordering::Relaxed),
                    r.deadline,
                    |ring| {
                        ring.try_get_bytes_into(&mut scratch)?;
                        lane::parse(&scratch)
                            .map(|rec| matches!(rec, Record::Fds))
                            .map_err(GetError::Io)
                    },
                );
                match is_marker {
                    Ok(true) => {}
                    Ok(false) => {
                        self.mark_broken(BROKEN_MALFORMED);
                        return Err(GetError::Io(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "expected passed descriptors, got a message: the peer sent a \
                             message where this end expected send_fds",
                        )));
                    }
                    Err(GetError::Io(e)) if e.kind() == io::ErrorKind::InvalidData => {
                        self.mark_broken(BROKEN_MALFORMED);
                        return Err(GetError::Io(e));
                    }
                    Err(e) => return Err(e),
                }
            }
            r.lane.marker = false;
            let (byte, fds) = lane.marked_fds(&mut r.lane, self.fd.as_fd())?;
            return self.check_fds(byte, fds, max);
        }
        if self.kind != FdKind::Socket {
            return Err(GetError::Io(io::Error::new(
                io::ErrorKind::Unsupported,
                "descriptors pass only over a Unix socket, not an OS pipe",
            )));
        }
        self.flush_before_receive()?;
        let result = if self.pipes.is_some() {
            let src = self.socket_source(&r);
            r.socket.take_fd_message(&src)
        } else {
            let src = self.source(&r);
            let result = r.ahead.take_fd_message(&src);
            self.buffered
                .store(r.ahead.pending().len(), Ordering::Release);
            result
        };
        let (byte, fds) = result.map_err(|failure| self.read_error(failure))?;
        self.check_fds(byte, fds, max)
    }

    /// Checks passed descriptors against their count byte and the caller's `max`, as
    /// Python's `recvfds` does; a mismatch makes the connection unusable.
    fn check_fds(&self, byte: u8, fds: Vec<OwnedFd>, max: usize) -> Result<Vec<OwnedFd>, GetError> {
        let problem = if fds.is_empty() {
            Some(format!(
                "expected passed descriptors, got a plain byte ({byte}): the peer sent a \
                 message where this end expected send_fds"
            ))
        } else if fds.len() > max {
            Some(format!(
                "the peer passed {} descriptors, more than the {max} expected",
                fds.len()
            ))
        } else if fds.len() % 256 != usize::from(byte) {
            Some(format!(
                "the peer passed {} descriptors but its count byte says {byte}",
                fds.len()
            ))
        } else {
            None
        };
        match problem {
            None => Ok(fds),
            Some(why) => {
                self.mark_broken(BROKEN_MALFORMED);
                Err(GetError::Io(io::Error::new(
                    io::ErrorKind::InvalidData,
                    why,
                )))
            }
        }
    }

    /// Receives one message's bytes (Python's `recv_bytes`), blocking until one arrives.
    ///
    /// Returns [`GetError::Closed`] once the peer has closed and everything it sent was read.
    pub fn recv_bytes(&self) -> Result<Vec<u8>, GetError> {
        let mut out = Vec::new();
        self.recv_bytes_into(&mut out)?;
        Ok(out)
    }

    /// Receives one message into `buf`, replacing its contents, and returns its length
    /// (Python's `recv_bytes_into`). Reusing one buffer avoids an allocation per message.
    ///
    /// ```
    /// use conveyor_pipe::pipe;
    ///
    /// let (a, b) = pipe().unwrap();
    /// let mut buf = Vec::new();
    /// for word in ["one", "two"] {
    ///     a.send_bytes(word.as_bytes()).unwrap();
    ///     let n = b.recv_bytes_into(&mut buf).unwrap();
    ///     assert_eq!(&buf[..n], word.as_bytes());
    /// }
    /// ```
    pub fn recv_bytes_into(&self, buf: &mut Vec<u8>) -> Result<usize, GetError> {
        let mut r = lock(&self.reader);
        if let Some(lane) = &self.lane {
            return self.lane_recv_into(lane, &mut r, buf);
        }
        if let Payload::Ahead(range) = self.read_frame(&mut r, buf)? {
            buf.extend_from_slice(r.ahead.slice(range));
        }
        Ok(buf.len())
    }

    /// Receives one message and decodes it with the connection's codec (Python's `recv`).
    ///
    /// A message that does not decode is consumed and reported as [`GetError::Codec`]; the
    /// connection stays usable.
    pub fn recv<T: DeserializeOwned>(&self) -> Result<T, GetError> {
        let mut r = lock(&self.reader);
        if let Some(lane) = &self.lane {
            return self.lane_recv(lane, &mut r);
        }
        let mut scratch = std::mem::take(&mut r.scratch);
        // A small message is decoded where it lies in the read-ahead buffer, without a copy.
        let result = match self.read_frame(&mut r, &mut scratch) {
            Ok(Payload::Ahead(range)) => self.codec.decode(r.ahead.slice(range)),
            Ok(Payload::Out) => self.codec.decode(&scratch),
            Err(e) => return Err(e),
        };
        if scratch.capacity() <= KEEP_SCRATCH {
            r.scratch = scratch;
        }
        result.map_err(GetError::Codec)
    }

    /// Receives one message of the lane into `buf`.
    fn lane_recv_into(
        &self,
        lane: &Lane,
        r: &mut Reader,
        buf: &mut Vec<u8>,
    ) -> Result<usize, GetError> {
        self.check_recv()?;
        if r.lane.marker {
            return Err(lane::fds_first());
        }
        let max = self.max_message_size();
        let got = lane.take(
            &mut r.lane,
            self.fd.as_fd(),
            self.spin.load(Ordering::Relaxed),
            r.deadline,
            |ring| {
                ring.try_get_bytes_into(buf)?;
                match buf.last() {
                    Some(&TAG_MESSAGE) => {
                        buf.pop();
                        Ok(true)
                    }
                    Some(&lane::TAG_FDS) if buf.len() == 1 => {
                        buf.clear();
                        Ok(false)
                    }
                    _ => {
                        buf.clear();
                        Err(GetError::Io(lane::malformed()))
                    }
                }
            },
        )?;
        if !got {
            r.lane.marker = true;
            return Err(lane::fds_first());
        }
        if buf.len() as u64 > max {
            let size = buf.len() as u64;
            buf.clear();
            return Err(GetError::TooLarge { size, max });
        }
        Ok(buf.len())
    }

    /// Receives one message of the lane and decodes it where it lies in the ring.
    fn lane_recv<T: DeserializeOwned>(&self, lane: &Lane, r: &mut Reader) -> Result<T, GetError> {
        self.check_recv()?;
        if r.lane.marker {
            return Err(lane::fds_first());
        }
        let max = self.max_message_size();
        let decoded = lane.take(
            &mut r.lane,
            self.fd.as_fd(),
            self.spin.load(Ordering::Relaxed),
            r.deadline,
            |ring| {
                ring.try_get_bytes_with(|record| match lane::parse(record) {
                    Ok(Record::Message(payload)) if payload.len() as u64 > max => {
                        Err(GetError::TooLarge {
                            size: payload.len() as u64,
                            max,
                        })
                    }
                    Ok(Record::Message(payload)) => Ok(Some(self.codec.decode::<T>(payload))),
                    Ok(Record::Fds) => Ok(None),
                    Err(e) => Err(GetError::Io(e)),
                })?
            },
        )?;
        match decoded {
            Some(value) => value.map_err(GetError::Codec),
            None => {
                r.lane.marker = true;
                Err(lane::fds_first())
            }
        }
    }

    /// Waits up to `timeout` (forever with `None`) for something to receive; returns whether
    /// there is (Python's `poll`). End of file counts: the next receive reports `Closed`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use conveyor_pipe::pipe;
    ///
    /// let (a, b) = pipe().unwrap();
    /// assert!(!b.poll(Some(Duration::ZERO)).unwrap());
    /// a.send_bytes(b"x").unwrap();
    /// assert!(b.poll(Some(Duration::from_secs(5))).unwrap());
    /// ```
    pub fn poll(&self, timeout: Option<Duration>) -> io::Result<bool> {
        if !self.readable {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this is the writing end of a one-way pipe: it cannot receive",
            ));
        }
        if self.buffered.load(Ordering::Acquire) > 0 {
            return Ok(true);
        }
        if let Some(lane) = &self.lane {
            return lane.poll(&mut lock(&self.reader).lane, self.fd.as_fd(), timeout);
        }
        if let Err(e) = self.flush() {
            if !e.is_closed() {
                return Err(io::Error::other(format!(
                    "writing this end's buffered sends before waiting failed: {e}"
                )));
            }
        }
        sys::poll_read(self.recv_fd(), timeout)
    }

    /// Whether bytes of a next message were already read ahead, so that a receive starts
    /// without waiting for the peer. Makes no system call and writes nothing (unlike
    /// [`poll`](Connection::poll)): a server answering pipelined requests asks it to decide
    /// whether to flush its buffered replies before the next receive.
    ///
    /// ```
    /// use conveyor_pipe::pipe;
    ///
    /// let (a, b) = pipe().unwrap();
    /// a.send_bytes_many(&[&b"one"[..], b"two"]).unwrap();
    /// assert!(!b.has_read_ahead());
    /// assert_eq!(b.recv_bytes().unwrap(), b"one"); // reads both messages at once
    /// assert!(b.has_read_ahead());
    /// ```
    pub fn has_read_ahead(&self) -> bool {
        self.buffered.load(Ordering::Acquire) > 0
    }

    /// Whether the peer has gone: it closed its end, or shut it down for sending (or the
    /// connection is in error). Never waits, reads nothing, and sees a hang-up even while
    /// messages sent before it wait to be received: a server uses it to give up on a request
    /// whose client left while it waited (for an item, a lock).
    ///
    /// ```
    /// use conveyor_pipe::pipe;
    ///
    /// let (a, b) = pipe().unwrap();
    /// assert!(!a.hung_up().unwrap());
    /// b.send_bytes(b"last words").unwrap();
    /// drop(b);
    /// assert!(a.hung_up().unwrap());
    /// assert_eq!(a.recv_bytes().unwrap(), b"last words");
    /// ```
    pub fn hung_up(&self) -> io::Result<bool> {
        // After a move, the peer closed its pipe end (`close`), or went (its socket too):
        // both are looked at with one system call.
        sys::hung_up(self.fd.as_fd(), self.pipes.as_ref().map(|p| p.rx.as_fd()))
    }

    /// Whether bytes already read ahead wait to be received (so `poll` returns at once).
    /// Writes this end's buffered sends first, as every wait does.
    /// On a shared-memory lane, it also asks the peer to ring the socket's doorbell with its
    /// next message, so that the wait's `poll` wakes for it.
    pub(crate) fn has_buffered(&self) -> bool {
        if let Some(lane) = &self.lane {
            return lane.arm_for_wait(&lock(&self.reader).lane);
        }
        if let Err(e) = self.flush() {
            tracing::warn!(error = %e, "writing buffered sends before a wait failed");
        }
        self.buffered.load(Ordering::Acquire) > 0
    }

    /// After `poll(2)` found this connection's descriptor readable: whether a receive would
    /// not wait. A shared-memory lane's socket may hold only a doorbell from an earlier wait.
    pub(crate) fn still_ready(&self) -> bool {
        match &self.lane {
            Some(lane) => {
                let mut r = lock(&self.reader);
                // Nothing waits: reads what the socket holds (doorbells, end of file).
                matches!(
                    lane.poll(&mut r.lane, self.fd.as_fd(), Some(Duration::ZERO)),
                    Ok(true) | Err(_)
                )
            }
            None => true,
        }
    }

    /// The bytes read ahead and not yet received (for a handoff to another process).
    pub(crate) fn pending_bytes(&self) -> Vec<u8> {
        lock(&self.reader).ahead.pending().to_vec()
    }

    /// Starts the read-ahead buffer with `pending` (bytes a previous owner read ahead).
    pub(crate) fn set_pending(&self, pending: &[u8]) {
        lock(&self.reader).ahead = ReadAhead::with_pending(pending);
        self.buffered.store(pending.len(), Ordering::Release);
    }

    /// Closes this end for sending: the peer receives what was already sent, then `Closed`.
    /// Receiving on this end still works. Closing twice is a no-op.
    ///
    /// A send blocked in another thread (the peer is not reading) is woken and fails with
    /// [`SendError::Closed`]; the peer then sees that message cut short (an `UnexpectedEof`
    /// error). For the writing end of a one-way pipe, `close` waits for a send in progress to
    /// finish instead.
    ///
    /// Buffered sends ([`set_buffered_sends`](Self::set_buffered_sends)) are written first; if
    /// that fails (the peer went away), this end is closed all the same and the failure is
    /// logged: [`try_close`](Self::try_close) returns it instead.
    pub fn close(&self) {
        if let Err(e) = self.try_close() {
            tracing::debug!(error = %e, "closing the connection for sending failed");
        }
    }

    /// [`close`](Self::close), with the error if what was buffered could not be sent before
    /// the end of file (the peer went away: those messages are lost), or if the operating
    /// system refused to close this end for sending. This end is closed for sending either way.
    pub fn try_close(&self) -> Result<(), SendError> {
        if !self.writable || self.write_closed.load(Ordering::Acquire) {
            return Ok(());
        }
        // What was buffered goes out before the end of file.
        let flushed = self.flush();
        if self.write_closed.swap(true, Ordering::AcqRel) {
            return flushed;
        }
        if let Some(lane) = &self.lane {
            // No lock: shutting the ring down is what wakes a send blocked for room (it then
            // fails with `Closed`, as on a socket).
            lane.close();
        }
        let result = match self.kind {
            // After a move the pipe closes; the socket stays open, for passed descriptors.
            _ if self.pipes.is_some() => {
                let _guard = lock(&self.writer);
                sys::replace_with_dev_null(self.send_fd())
            }
            // No lock: shutting the socket down is what wakes a blocked send.
            FdKind::Socket => sys::shutdown_write(self.fd.as_fd()),
            FdKind::Pipe => {
                let _guard = lock(&self.writer);
                sys::replace_with_dev_null(self.fd.as_fd())
            }
        };
        flushed?;
        match result {
            Ok(()) => Ok(()),
            // The peer has gone already: nothing was lost by closing.
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            Err(e) => Err(SendError::Io(e)),
        }
    }

    /// A second connection on a duplicate of the same descriptor, for handing to a new owner.
    ///
    /// Both refer to the same stream: what one sends, the peer receives, and the two
    /// compete for incoming messages. Use one at a time, or share one connection through an
    /// `Arc` instead. Bytes this connection has already read ahead stay with it: clone before
    /// receiving, or hand a connection to a child process through its `Serialize`
    /// implementation, which carries them along.
    pub fn try_clone(&self) -> io::Result<Self> {
        let fd = self.fd.try_clone()?;
        let mut conn = Connection::from_parts(
            fd,
            self.kind,
            self.readable,
            self.writable,
            self.codec.clone(),
        );
        // A duplicate shares the open file, and with it the non-blocking mode.
        conn.nonblocking_fd = self.nonblocking_fd;
        conn.set_max_message_size(self.max_message_size());
        let mut conn = match &self.lane {
            Some(lane) => conn.with_lane(lane.duplicate()),
            None => conn,
        };
        if let Some(p) = &self.pipes {
            conn.switch_to_pipes(p.try_clone()?);
        }
        Ok(conn)
    }

    /// (is a socket, readable, writable, closed for writing, max message size): what a handoff
    /// to another process carries besides the descriptor.
    pub(crate) fn wire_state(&self) -> (bool, bool, bool, bool, u64) {
        // Messages buffered here go out before the new owner takes over.
        if let Err(e) = self.flush() {
            tracing::warn!(error = %e, "writing buffered sends before a handoff failed");
        }
        (
            self.kind == FdKind::Socket,
            self.readable,
            self.writable,
            self.write_closed.load(Ordering::Acquire),
            self.max_message_size(),
        )
    }

    pub(crate) fn write_closed_flag(&self) -> &AtomicBool {
        &self.write_closed
    }

    /// The descriptor; the connection is consumed. Bytes already read ahead (small messages
    /// that arrived together with the last one received) are dropped with it: to hand a
    /// connection to a child process, pass it in the child's arguments instead, which carries
    /// them along.
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }
}

impl<C: Codec> AsFd for Connection<C> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl<C: Codec> AsRawFd for Connection<C> {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl<C: Codec> IntoRawFd for Connection<C> {
    fn into_raw_fd(self) -> RawFd {
        self.fd.into_raw_fd()
    }
}

/// A failed write, as a send reports it.
fn send_error(e: io::Error) -> SendError {
    if e.kind() == io::ErrorKind::BrokenPipe {
        SendError::Closed
    } else {
        SendError::Io(e)
    }
}

fn put_error<T>(item: T, e: SendError) -> PutError<T> {
    match e {
        SendError::Closed => PutError::Closed(item),
        SendError::TooLarge { size, max } => PutError::TooLarge {
            item,
            size: size.try_into().unwrap_or(usize::MAX),
            max: max.try_into().unwrap_or(usize::MAX),
        },
        SendError::Codec(source) => PutError::Codec { item, source },
        SendError::Io(source) => PutError::Io { item, source },
    }
}

/// A connection is a [`Channel`] to its peer: `put` sends, `get` receives.
///
/// - `put` blocks while the peer's socket buffer is full (a few hundred KiB on Linux).
/// - `close` and `shutdown` fail with [`Unavailable`] only when buffered sends could not be
///   written first (the peer went away).
/// - `try_put` and `put_timeout` wait only for the socket to accept *some* data; once writing
///   starts the whole message is written, blocking if needed (a message is never cut short).
///   So `try_put` of a message smaller than the free socket buffer never blocks; a large one may
///   block until the peer reads.
/// - `get_timeout` and `try_get` wait for the first byte of a message, then read it whole.
/// - `close` shuts this end for sending; the peer's gets drain what was sent, then `Closed`.
impl<T, C> Channel<T> for Connection<C>
where
    T: Serialize + DeserializeOwned,
    C: Codec,
{
    fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.send(&item).map_err(|e| put_error(item, e))
    }

    fn try_put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_timeout(item, Duration::ZERO).map_err(|e| match e {
            PutError::Timeout(item) => PutError::Full(item),
            other => other,
        })
    }

    fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        if self.lane.is_some() {
            if let Err(e) = self.check_send(0) {
                return Err(put_error(item, e));
            }
            return match self.lane_send_value(&item, Some(timeout)) {
                Ok(()) => Ok(()),
                Err(LanePutError::Full) => Err(PutError::Full(item)),
                Err(LanePutError::Timeout) => Err(PutError::Timeout(item)),
                Err(LanePutError::Send(e)) => Err(put_error(item, e)),
            };
        }
        if self.writable && !self.write_closed.load(Ordering::Acquire) {
            match sys::poll_write(self.send_fd(), Some(timeout)) {
                Ok(true) => {}
                Ok(false) => return Err(PutError::Timeout(item)),
                Err(source) => return Err(PutError::Io { item, source }),
            }
        }
        self.put(item)
    }

    fn get(&self) -> Result<T, GetError> {
        self.recv()
    }

    fn try_get(&self) -> Result<T, GetError> {
        match self.get_timeout(Duration::ZERO) {
            Err(GetError::Timeout) => Err(GetError::Empty),
            other => other,
        }
    }

    fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.check_recv()?;
        if !self.poll(Some(timeout))? {
            return Err(GetError::Timeout);
        }
        self.recv()
    }

    /// For a point-to-point connection, shutting down is closing this end (see
    /// [`Connection::close`]): there is no one else to shut the channel for.
    fn shutdown(&self, _immediate: bool) -> Result<(), Unavailable> {
        close_for_trait(self, "shutdown")
    }

    /// Fails if buffered sends could not be written before the end of file (see
    /// [`Connection::try_close`]): the peer went away, and those messages are lost.
    fn close(&self) -> Result<(), Unavailable> {
        close_for_trait(self, "close")
    }
}

/// [`Connection::try_close`] for the [`Channel`] trait: the [`SendError`] as the source of an
/// [`Unavailable`] (unreachable: the peer went away; failed: anything else).
fn close_for_trait<C: Codec>(
    conn: &Connection<C>,
    operation: &'static str,
) -> Result<(), Unavailable> {
    conn.try_close().map_err(|e| {
        let kind = match &e {
            SendError::Closed => UnavailableKind::Unreachable,
            SendError::Io(io)
                if matches!(
                    io.kind(),
                    io::ErrorKind::BrokenPipe
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::NotConnected
                ) =>
            {
                UnavailableKind::Unreachable
            }
            _ => UnavailableKind::Failed,
        };
        Unavailable::new(kind, operation, "a pipe connection's peer", e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nonblocking(fd: BorrowedFd<'_>) -> bool {
        sys::access_mode(fd).unwrap().2
    }

    /// The read end a peer passes is reopened as this process's own file: the peer flipping
    /// the mode of the copy it kept changes nothing here, and a spin's plain read of it never
    /// sleeps.
    #[test]
    fn an_accepted_read_end_keeps_its_mode_whatever_the_peer_does_to_its_copy() {
        let (rx, peer_tx) = sys::make_pipe(PIPE_CAPACITY).unwrap();
        let (peer_rx, tx) = sys::make_pipe(PIPE_CAPACITY).unwrap();
        let kept = rx.try_clone().unwrap();
        let pipes = accepted_pipes(rx, tx).unwrap();
        assert!(pipes.nonblocking);
        assert!(nonblocking(pipes.rx.as_fd()));
        sys::set_nonblocking(kept.as_fd(), false).unwrap();
        assert!(!nonblocking(kept.as_fd()));
        assert!(nonblocking(pipes.rx.as_fd()));
        // the reopened end reads the same pipe
        sys::write_all(peer_tx.as_fd(), FdKind::Pipe, b"same pipe").unwrap();
        let mut buf = [0u8; 9];
        let n = sys::read_some(
            pipes.rx.as_fd(),
            FdKind::Pipe,
            &mut buf,
            &mut Vec::new(),
            true,
            true,
        )
        .unwrap();
        assert_eq!(&buf[..n], b"same pipe");
        drop(peer_rx);
    }

    /// Both ends of a move made here are non-blocking.
    #[test]
    fn a_move_makes_non_blocking_pipes_on_both_sides() {
        let (mut a, mut b) = crate::pipe().unwrap();
        let t = std::thread::spawn(move || {
            assert!(b.accept_pipes().unwrap());
            b
        });
        assert!(a.move_to_pipes().unwrap());
        let b = t.join().unwrap();
        for c in [&a, &b] {
            let p = c.pipes.as_ref().unwrap();
            assert!(p.nonblocking);
            assert!(nonblocking(p.rx.as_fd()) && nonblocking(p.tx.as_fd()));
        }
        a.send_bytes(b"ping").unwrap();
        assert_eq!(b.recv_bytes().unwrap(), b"ping");
    }
}
