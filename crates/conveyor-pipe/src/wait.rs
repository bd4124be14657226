//! [`wait`]: block until any of several connections has something to receive
//! (Python's `multiprocessing.connection.wait`).

use std::io;
use std::os::fd::AsFd;
use std::time::Duration;

use crate::sys;

/// Waits until at least one of `objects` is ready to read, or `timeout` passes (`None`: no
/// limit), and returns the ready ones in their order in `objects` (empty on timeout).
///
/// As in Python, a connection is ready when a receive would not block: a message has started
/// to arrive, or the peer has closed (the receive then reports `Closed`). Anything with a file
/// descriptor can be waited on: connections, listeners (ready when a client is waiting to be
/// accepted), sockets. It is one `poll(2)` call.
///
/// ```
/// use std::time::Duration;
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
pub fn wait<'a, W: AsFd + ?Sized>(
    objects: &[&'a W],
    timeout: Option<Duration>,
) -> io::Result<Vec<&'a W>> {
    let fds: Vec<_> = objects.iter().map(|o| o.as_fd()).collect();
    let ready = sys::poll_many(&fds, libc::POLLIN, timeout)?;
    Ok(objects
        .iter()
        .zip(ready)
        .filter(|(_, r)| *r)
        .map(|(o, _)| *o)
        .collect())
}
