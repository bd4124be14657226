//! [`pipe`] and [`pipe_oneway`]: two connected ends, as Python's `multiprocessing.Pipe`.

use std::io;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

use conveyor_core::Postcard;

use crate::connection::{Connection, KERNEL_BUFFER};
use crate::lane::{self, Lane};
use crate::sys::{self, FdKind};

/// Two connected ends of a duplex pipe (Python's `Pipe()`, or `Pipe(duplex=True)`).
///
/// Each end sends and receives. It is a Unix socketpair, so either end can also be handed to a
/// child process, and can pass descriptors ([`Connection::send_fds`]). Each end's send buffer
/// is raised to 1 MiB (where the system allows), so that a large message crosses in few
/// hand-overs between the processes.
///
/// ```
/// use conveyor_pipe::pipe;
///
/// let (parent, child) = pipe().unwrap();
/// let t = std::thread::spawn(move || {
///     let n: u32 = child.recv().unwrap();
///     child.send(&(n * 2)).unwrap();
/// });
/// parent.send(&21u32).unwrap();
/// assert_eq!(parent.recv::<u32>().unwrap(), 42);
/// t.join().unwrap();
/// ```
pub fn pipe() -> io::Result<(Connection, Connection)> {
    let (a, b) = UnixStream::pair()?;
    sys::grow_send_buffer(a.as_fd(), KERNEL_BUFFER);
    sys::grow_send_buffer(b.as_fd(), KERNEL_BUFFER);
    Ok((
        Connection::from_parts(a.into(), FdKind::Socket, true, true, Postcard),
        Connection::from_parts(b.into(), FdKind::Socket, true, true, Postcard),
    ))
}

/// The two ends of a one-way pipe: `(reader, writer)` (Python's `Pipe(duplex=False)`).
///
/// The reader only receives and the writer only sends. Closing (or dropping) the writer makes
/// the reader's next receive, once everything sent was read, report `Closed`.
///
/// Python builds this from an OS pipe; conveyor uses a Unix socketpair shut down in the
/// other direction, with the writer's send buffer raised to 1 MiB, because that measured
/// faster for large messages: in the harness's 1 MiB workload an OS pipe (even with its
/// capacity raised to 1 MiB) reached 0.37x a raw socketpair, the socketpair 1.13x (one run,
/// 2 vCPUs under load; `cargo xtask bench --filter pipe,raw`). It also lets the ends pass
/// descriptors ([`Connection::send_fds`]). The wire is the same.
///
/// ```
/// use conveyor_pipe::pipe_oneway;
///
/// let (reader, writer) = pipe_oneway().unwrap();
/// writer.send_bytes(b"one way").unwrap();
/// drop(writer);
/// assert_eq!(reader.recv_bytes().unwrap(), b"one way");
/// assert!(reader.recv_bytes().unwrap_err().is_closed());
/// ```
pub fn pipe_oneway() -> io::Result<(Connection, Connection)> {
    let (r, w) = UnixStream::pair()?;
    r.shutdown(std::net::Shutdown::Write)?;
    w.shutdown(std::net::Shutdown::Read)?;
    sys::grow_send_buffer(w.as_fd(), KERNEL_BUFFER);
    Ok((
        Connection::from_parts(r.into(), FdKind::Socket, true, false, Postcard),
        Connection::from_parts(w.into(), FdKind::Socket, false, true, Postcard),
    ))
}

/// Builds a pipe with options: one way or duplex, and whether its messages travel through
/// shared memory.
///
/// `PipeBuilder::new().build()` is [`pipe()`]; `.duplex(false)` is [`pipe_oneway`] (reader
/// first). [`shared_memory(true)`](PipeBuilder::shared_memory) moves the messages into a
/// crash-safe shared-memory ring per direction (conveyor-shm's), keeping the socket for
/// waking a receiver that sleeps, end of file and passing descriptors: a round trip then
/// makes no system call while both ends are awake.
///
/// # When shared memory is used: only when asked
///
/// Python's `Pipe()` is a socket (or an OS pipe) that a Python program may be handed and
/// read with its own `recv_bytes`; a pipe over shared memory carries no frames on its
/// socket, so only a conveyor program can read it. That is why it is never automatic:
/// `pipe()`, `pipe_oneway()`, and every connection of a [`Listener`](crate::Listener) or
/// [`Connector`](crate::Connector) keep Python's wire byte for byte. Ask for shared memory for a
/// pipe whose two ends stay in conveyor programs: this process's threads, or children started
/// by conveyor-process (an end travels in the child's arguments, the rings by name). Do not
/// take its descriptor ([`Connection::into_fd`]) for other code, and hand an end over before
/// receiving on it.
///
/// Everything else works as on a socket: `send`/`recv`, `send_bytes`/`recv_bytes[_into]`,
/// `poll`, timeouts, [`wait`](crate::wait) (mixed with other connections), `close` (the peer
/// drains, then `Closed`), end of file when the peer dies, and
/// [`send_fds`](Connection::send_fds)/[`recv_fds`](Connection::recv_fds). Sends are never
/// buffered (a message in the ring is already delivered; `flush` has nothing to do). A
/// send blocks only while the ring is full; it fails with `Closed` once every handle of the
/// receiving end is dropped, or, when the receiver was killed, once the ring is full.
///
/// ```
/// use conveyor_pipe::PipeBuilder;
///
/// let (a, b) = PipeBuilder::new().shared_memory(true).build().unwrap();
/// assert!(a.is_shared_memory());
/// let echo = std::thread::spawn(move || {
///     while let Ok(n) = b.recv::<u64>() {
///         b.send(&(n + 1)).unwrap();
///     }
/// });
/// for i in 0..100u64 {
///     a.send(&i).unwrap();
///     assert_eq!(a.recv::<u64>().unwrap(), i + 1);
/// }
/// a.close();
/// echo.join().unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct PipeBuilder {
    duplex: bool,
    shared_memory: bool,
    ring_bytes: usize,
}

impl Default for PipeBuilder {
    fn default() -> Self {
        PipeBuilder {
            duplex: true,
            shared_memory: false,
            ring_bytes: lane::DEFAULT_RING,
        }
    }
}

impl PipeBuilder {
    /// A duplex pipe over a socketpair, as [`pipe()`].
    pub fn new() -> Self {
        PipeBuilder::default()
    }

    /// Both ends send and receive (`true`, the default), or the first end only receives and
    /// the second only sends (Python's `Pipe(duplex=False)`).
    pub fn duplex(mut self, duplex: bool) -> Self {
        self.duplex = duplex;
        self
    }

    /// Moves the messages into shared memory (off by default; see "When shared memory is
    /// used" above).
    pub fn shared_memory(mut self, on: bool) -> Self {
        self.shared_memory = on;
        self
    }

    /// The size of each direction's shared-memory ring (default 4 MiB, touched only as it is
    /// used; rounded down to a power of two; at least 4 KiB). A message larger than half of
    /// it still travels, out of line.
    pub fn ring_bytes(mut self, bytes: usize) -> Self {
        self.ring_bytes = bytes;
        self
    }

    /// Makes the two ends: `(a, b)` for a duplex pipe, `(reader, writer)` for a one-way one.
    pub fn build(self) -> io::Result<(Connection, Connection)> {
        let (a, b) = if self.duplex { pipe()? } else { pipe_oneway()? };
        if !self.shared_memory {
            return Ok((a, b));
        }
        let (la, lb): (Lane, Lane) = Lane::pair(self.duplex, self.ring_bytes)?;
        Ok((a.with_lane(la), b.with_lane(lb)))
    }
}
