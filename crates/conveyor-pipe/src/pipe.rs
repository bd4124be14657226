//! [`pipe`] and [`pipe_oneway`]: two connected ends, as Python's `multiprocessing.Pipe`.

use std::io;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

use conveyor_core::Postcard;

use crate::connection::{Connection, KERNEL_BUFFER};
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
