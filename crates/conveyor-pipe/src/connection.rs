//! [`Connection`]: one end of a pipe or socket, sending and receiving whole messages.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use conveyor_core::{Channel, Codec, GetError, Postcard, PutError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::SendError;
use crate::frame;
use crate::reader::{Payload, ReadAhead, ReadFailure};
use crate::sys::{self, FdKind};

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

/// A scratch buffer (the encoding of a sent value, the bytes of a received one) up to this size
/// is kept for the next message; a larger one is freed after use. Keeping it matters for large
/// messages: a fresh multi-megabyte buffer is a fresh mapping, and faulting its pages in costs
/// more than copying them (a 1 MiB `send`/`recv` ran 5x slower when its buffers were freed).
const KEEP_SCRATCH: usize = 4 << 20;

// Why the receiving side can no longer be used (`Inner::broken`).
const OK: u8 = 0;
const BROKEN_TOO_LARGE: u8 = 1;
const BROKEN_MID_FRAME: u8 = 2;
const BROKEN_MALFORMED: u8 = 3;

/// One end of a connection: a duplex [`pipe`](crate::pipe()), one end of a
/// [`pipe_oneway`](crate::pipe_oneway), or a socket from a [`Listener`](crate::Listener) or
/// [`Client`](crate::Client).
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
    fd: OwnedFd,
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
    /// Held for a whole send; the scratch buffer that `send` encodes into.
    writer: Mutex<Vec<u8>>,
    /// Why receiving is no longer possible (`OK` while it is).
    broken: AtomicU8,
    /// Set once this end is closed for sending.
    write_closed: AtomicBool,
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
            .finish_non_exhaustive()
    }
}

fn broken_error(code: u8) -> GetError {
    let why = match code {
        BROKEN_TOO_LARGE => "an earlier message was refused as too large",
        BROKEN_MID_FRAME => "an earlier receive failed in the middle of a message",
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
}

impl Connection<Postcard> {
    /// Wraps a connected stream socket, or one end of an OS pipe, into a connection.
    ///
    /// Whether it reads, writes or both is taken from the descriptor (a socket does both, a
    /// pipe end one of them). No handshake is made: use [`Client`](crate::Client) or
    /// [`Listener`](crate::Listener) for an authenticated one.
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
        let (kind, readable, writable) = if sys::is_socket(fd.as_fd())? {
            (FdKind::Socket, true, true)
        } else {
            let (r, w) = sys::access_mode(fd.as_fd())?;
            (FdKind::Pipe, r, w)
        };
        Ok(Self::from_parts(fd, kind, readable, writable, Postcard))
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
            fd,
            kind,
            readable,
            writable,
            max_message_size: AtomicU64::new(DEFAULT_MAX_MESSAGE_SIZE),
            reader: Mutex::new(Reader::default()),
            buffered: AtomicUsize::new(0),
            read_ahead: AtomicBool::new(true),
            writer: Mutex::new(Vec::new()),
            broken: AtomicU8::new(OK),
            write_closed: AtomicBool::new(false),
            codec,
        }
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
            fd: self.fd,
            kind: self.kind,
            readable: self.readable,
            writable: self.writable,
            max_message_size: self.max_message_size,
            reader: self.reader,
            buffered: self.buffered,
            read_ahead: self.read_ahead,
            writer: self.writer,
            broken: self.broken,
            write_closed: self.write_closed,
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
    /// Connections from a [`Listener`](crate::Listener) or [`Client`](crate::Client) run the
    /// handshake this way, so the first message after it is still in the socket.
    pub fn set_read_ahead(&self, on: bool) {
        self.read_ahead.store(on, Ordering::Relaxed);
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

    fn write_parts(&self, parts: &[&[u8]]) -> Result<(), SendError> {
        let result = match parts {
            [one] => sys::write_all(self.fd.as_fd(), self.kind, one),
            _ => sys::write_all_vectored(self.fd.as_fd(), self.kind, parts),
        };
        match result {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Err(SendError::Closed),
            Err(e) => Err(SendError::Io(e)),
        }
    }

    /// Sends `data` as one message (Python's `send_bytes`).
    ///
    /// Header and payload go out in one system call, so a small message is one write on the
    /// wire: up to [`COPY_LIMIT`] bytes they are copied into one buffer and sent with `send`
    /// (cheaper than gathering), above it they are gathered with `sendmsg`/`writev` without a
    /// copy. It blocks while the peer's buffer is full; a message of any size is written whole
    /// before it returns.
    pub fn send_bytes(&self, data: &[u8]) -> Result<(), SendError> {
        self.check_send(data.len() as u64)?;
        let (header, n) = frame::encode_header(data.len() as u64);
        let mut buf = lock(&self.writer);
        if self.write_closed.load(Ordering::Acquire) {
            return Err(SendError::Closed);
        }
        if data.len() <= COPY_LIMIT {
            buf.clear();
            buf.extend_from_slice(&header[..n]);
            buf.extend_from_slice(data);
            self.write_parts(&[&buf])
        } else {
            self.write_parts(&[&header[..n], data])
        }
    }

    /// Encodes `value` with the connection's codec and sends it as one message
    /// (Python's `send`).
    pub fn send<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), SendError> {
        self.check_send(0)?;
        let mut buf = lock(&self.writer);
        if self.write_closed.load(Ordering::Acquire) {
            return Err(SendError::Closed);
        }
        buf.clear();
        buf.extend_from_slice(&[0; 4]);
        let encoded = self.codec.encode(value, &mut buf);
        let result = encoded.map_err(SendError::from).and_then(|()| {
            let len = (buf.len() - 4) as u64;
            let max = self.max_message_size();
            if len > max {
                return Err(SendError::TooLarge { size: len, max });
            }
            let (header, n) = frame::encode_header(len);
            if n == 4 {
                buf[..4].copy_from_slice(&header[..4]);
                self.write_parts(&[&buf])
            } else {
                self.write_parts(&[&header[..n], &buf[4..]])
            }
        });
        if buf.capacity() > KEEP_SCRATCH {
            *buf = Vec::new();
        }
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
        let exact = !self.read_ahead.load(Ordering::Relaxed);
        let result = r
            .ahead
            .next_frame(self.fd.as_fd(), self.max_message_size(), out, exact);
        self.buffered
            .store(r.ahead.pending().len(), Ordering::Release);
        result.map_err(|failure| match failure {
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
        })
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
        sys::poll_read(self.fd.as_fd(), timeout)
    }

    /// Whether bytes already read ahead wait to be received (so `poll` returns at once).
    pub(crate) fn has_buffered(&self) -> bool {
        self.buffered.load(Ordering::Acquire) > 0
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
    pub fn close(&self) {
        if !self.writable || self.write_closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let result = match self.kind {
            // No lock: shutting the socket down is what wakes a blocked send.
            FdKind::Socket => sys::shutdown_write(self.fd.as_fd()),
            FdKind::Pipe => {
                let _guard = lock(&self.writer);
                sys::replace_with_dev_null(self.fd.as_fd())
            }
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not close the connection for sending");
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
        let conn = Connection::from_parts(
            fd,
            self.kind,
            self.readable,
            self.writable,
            self.codec.clone(),
        );
        conn.set_max_message_size(self.max_message_size());
        Ok(conn)
    }

    /// (is a socket, readable, writable, closed for writing, max message size): what a handoff
    /// to another process carries besides the descriptor.
    pub(crate) fn wire_state(&self) -> (bool, bool, bool, bool, u64) {
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
        if self.writable && !self.write_closed.load(Ordering::Acquire) {
            match sys::poll_write(self.fd.as_fd(), Some(timeout)) {
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
    fn shutdown(&self, _immediate: bool) {
        Connection::close(self)
    }

    fn close(&self) {
        Connection::close(self)
    }
}
