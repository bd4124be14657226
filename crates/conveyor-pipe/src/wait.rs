//! [`wait`]: block until any of several connections has something to receive
//! (Python's `multiprocessing.connection.wait`).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use conveyor_core::Codec;

use crate::connection::Connection;
use crate::listener::Listener;
use crate::sys;

/// What [`wait`] can wait on: anything with a file descriptor that becomes readable.
///
/// Implemented for [`Connection`] (which also counts messages it has already read ahead),
/// [`Listener`] (ready when a client waits to be accepted), the standard library's sockets,
/// files and descriptors, and references to any of them.
pub trait Waitable {
    /// The descriptor to poll for reading.
    fn wait_fd(&self) -> BorrowedFd<'_>;

    /// Whether the object is ready without looking at the descriptor (a connection with bytes
    /// already read ahead). The default is `false`.
    fn ready_now(&self) -> bool {
        false
    }

    /// Called when `poll(2)` found the descriptor readable: whether the object really is
    /// ready (a connection over shared memory may have found only a stale doorbell on its
    /// socket, and is then waited for again). The default is `true`.
    fn still_ready(&self) -> bool {
        true
    }
}

impl<C: Codec> Waitable for Connection<C> {
    fn wait_fd(&self) -> BorrowedFd<'_> {
        self.recv_fd()
    }

    fn ready_now(&self) -> bool {
        self.has_buffered()
    }

    fn still_ready(&self) -> bool {
        Connection::still_ready(self)
    }
}

impl Waitable for Listener {
    fn wait_fd(&self) -> BorrowedFd<'_> {
        self.as_fd()
    }
}

macro_rules! waitable_by_fd {
    ($($t:ty),*) => {$(
        impl Waitable for $t {
            fn wait_fd(&self) -> BorrowedFd<'_> {
                self.as_fd()
            }
        }
    )*};
}

waitable_by_fd!(
    OwnedFd,
    BorrowedFd<'_>,
    std::fs::File,
    std::net::TcpStream,
    std::net::TcpListener,
    std::os::unix::net::UnixStream,
    std::os::unix::net::UnixListener,
    std::process::ChildStdout,
    std::process::ChildStderr
);

impl<W: Waitable + ?Sized> Waitable for &W {
    fn wait_fd(&self) -> BorrowedFd<'_> {
        (**self).wait_fd()
    }
    fn ready_now(&self) -> bool {
        (**self).ready_now()
    }
    fn still_ready(&self) -> bool {
        (**self).still_ready()
    }
}

impl<W: Waitable + ?Sized> Waitable for Box<W> {
    fn wait_fd(&self) -> BorrowedFd<'_> {
        (**self).wait_fd()
    }
    fn ready_now(&self) -> bool {
        (**self).ready_now()
    }
    fn still_ready(&self) -> bool {
        (**self).still_ready()
    }
}

impl<W: Waitable + ?Sized> Waitable for std::sync::Arc<W> {
    fn wait_fd(&self) -> BorrowedFd<'_> {
        (**self).wait_fd()
    }
    fn ready_now(&self) -> bool {
        (**self).ready_now()
    }
    fn still_ready(&self) -> bool {
        (**self).still_ready()
    }
}

/// Waits until at least one of `objects` is ready to read, or `timeout` passes (`None`: no
/// limit), and returns the ready ones in their order in `objects` (empty on timeout).
///
/// As in Python, a connection is ready when a receive would not wait for the first byte: a
/// message has started to arrive, or the peer has closed (the receive then reports `Closed`).
/// Connections, listeners (ready when a client is waiting to be accepted), sockets and other
/// [`Waitable`]s can be mixed through `&dyn Waitable`. It is one `poll(2)` call.
///
/// ```
/// use std::time::{Duration, Instant};
/// use conveyor_pipe::{pipe, wait};
///
/// let (a1, b1) = pipe().unwrap();
/// let (a2, b2) = pipe().unwrap();
/// a2.send_bytes(b"two").unwrap();
/// let ready = wait(&[&b1, &b2], Some(Duration::from_secs(5))).unwrap();
/// assert_eq!(ready.len(), 1);
/// assert!(std::ptr::eq(ready[0], &b2));
/// assert!(wait(&[&b1], Some(Duration::ZERO)).unwrap().is_empty());
/// # drop(a1);
/// ```
pub fn wait<'a, W: Waitable + ?Sized>(
    objects: &[&'a W],
    timeout: Option<Duration>,
) -> io::Result<Vec<&'a W>> {
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    loop {
        let now: Vec<bool> = objects.iter().map(|o| o.ready_now()).collect();
        // Something is ready already: only look at which others are too, without waiting.
        let timeout = if now.contains(&true) {
            Some(Duration::ZERO)
        } else {
            deadline.map(|d| d.saturating_duration_since(Instant::now()))
        };
        let fds: Vec<_> = objects.iter().map(|o| o.wait_fd()).collect();
        let polled = sys::poll_many(&fds, libc::POLLIN, timeout)?;
        let ready: Vec<&'a W> = objects
            .iter()
            .zip(now.iter().zip(polled))
            .filter(|(o, (now, polled))| **now || (*polled && o.still_ready()))
            .map(|(o, _)| *o)
            .collect();
        // Only stale doorbells: wait again, for what is left of the timeout.
        let expired =
            matches!(deadline, Some(d) if Instant::now() >= d) || timeout == Some(Duration::ZERO);
        if !ready.is_empty() || expired {
            return Ok(ready);
        }
    }
}
