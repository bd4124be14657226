//! Moving frames: the small trait the server and the client are written against, and its
//! implementation over a stream socket.
//!
//! A frame is CPython's `multiprocessing.connection` framing: a 4-byte big-endian length (or
//! `-1` and an 8-byte length for payloads of 2 GiB and more), then the payload.
//! [`StreamTransport`] reads and writes through its own buffers: replies to pipelined requests
//! are written together, and many small requests are read with one system call.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};

use crate::spin::{Poll, Spin};

/// Why a frame could not be received.
#[derive(Debug)]
pub enum RecvError {
    /// The peer closed the connection between frames.
    Eof,
    /// The peer announced a frame larger than allowed; nothing of it was read.
    TooLarge {
        /// The announced size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The header is malformed (a negative length other than `-1`).
    Malformed(String),
    /// The system call failed, or the connection closed in the middle of a frame.
    Io(io::Error),
}

impl From<io::Error> for RecvError {
    fn from(e: io::Error) -> Self {
        RecvError::Io(e)
    }
}

impl std::fmt::Display for RecvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecvError::Eof => f.write_str("the peer closed the connection"),
            RecvError::TooLarge { size, max } => write!(
                f,
                "the peer announced a {size}-byte frame, more than the {max} bytes allowed"
            ),
            RecvError::Malformed(m) => write!(f, "malformed frame: {m}"),
            RecvError::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

impl From<RecvError> for io::Error {
    fn from(e: RecvError) -> Self {
        match e {
            RecvError::Io(e) => e,
            RecvError::Eof => io::Error::new(io::ErrorKind::UnexpectedEof, e.to_string()),
            other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
        }
    }
}

/// Sends and receives whole frames. One connection; used by one thread at a time.
pub trait Transport: Send {
    /// Queues one frame for sending; it may be written at once or at the next
    /// [`flush`](Transport::flush).
    fn send(&mut self, frame: &[u8]) -> io::Result<()>;

    /// Writes every queued frame.
    fn flush(&mut self) -> io::Result<()>;

    /// Receives one frame into `buf` (replacing its contents), refusing one larger than
    /// `max` bytes before reading it.
    fn recv(&mut self, buf: &mut Vec<u8>, max: usize) -> Result<(), RecvError>;

    /// Whether bytes of a next frame are already buffered, so a `recv` would not wait.
    fn has_buffered_input(&self) -> bool;

    /// Whether the peer has closed its end (checked without consuming anything). Used by the
    /// server while a request waits, to give up on a client that is gone.
    fn peer_closed(&self) -> bool;

    /// A function that shuts the connection down from another thread, waking a `recv`
    /// blocked on it.
    fn closer(&self) -> Option<Box<dyn Fn() + Send + Sync>>;
}

const BUF: usize = 64 * 1024;

/// A [`Transport`] over any byte stream with a file descriptor (Unix or TCP socket).
#[derive(Debug)]
pub struct StreamTransport<S> {
    stream: S,
    rbuf: Box<[u8]>,
    rstart: usize,
    rend: usize,
    wbuf: Vec<u8>,
    spin: Spin,
}

impl<S: Read + Write + AsRawFd + Send> StreamTransport<S> {
    /// Wraps a connected stream.
    pub fn new(stream: S) -> Self {
        StreamTransport {
            stream,
            rbuf: vec![0u8; BUF].into_boxed_slice(),
            rstart: 0,
            rend: 0,
            wbuf: Vec::with_capacity(BUF),
            spin: Spin::default(),
        }
    }

    /// The stream inside.
    #[cfg(test)]
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    fn buffered(&self) -> usize {
        self.rend - self.rstart
    }

    /// Polls with non-blocking reads for as long as the connection's adaptive spin allows
    /// (see [`crate::spin`]) before the caller blocks. `None`: nothing came, block.
    fn poll_read(&mut self) -> Option<io::Result<usize>> {
        let fd = self.stream.as_raw_fd();
        // Nothing of a next frame here yet: it was just asked for (or just answered), so it
        // cannot have come yet. Part of a frame here: the rest is likely in flight.
        let fresh = self.rend == 0;
        let buf = &mut self.rbuf[self.rend..];
        self.spin.run(fresh, || {
            // SAFETY: recv writes at most `buf.len()` bytes into `buf`, which is valid and
            // exclusively borrowed for the call.
            let r =
                unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
            if r >= 0 {
                return Poll::Ready(Ok(r as usize));
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Poll::Empty,
                _ => Poll::Ready(Err(e)),
            }
        })
    }

    /// Reads until at least `n` bytes are buffered (n <= BUF). Returns false on a clean EOF
    /// with nothing buffered.
    fn fill(&mut self, n: usize) -> Result<bool, RecvError> {
        if self.buffered() >= n {
            return Ok(true);
        }
        if self.rstart > 0 {
            self.rbuf.copy_within(self.rstart..self.rend, 0);
            self.rend -= self.rstart;
            self.rstart = 0;
        }
        while self.rend < n {
            let got = match self.poll_read() {
                Some(r) => r,
                None => self.stream.read(&mut self.rbuf[self.rend..]),
            };
            match got {
                Ok(0) => {
                    if self.rend == 0 {
                        return Ok(false);
                    }
                    return Err(RecvError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the peer closed the connection in the middle of a frame",
                    )));
                }
                Ok(k) => self.rend += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(RecvError::Io(e)),
            }
        }
        Ok(true)
    }
}

impl<S: Read + Write + AsRawFd + Send> Transport for StreamTransport<S> {
    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        let len = frame.len() as u64;
        if len <= i32::MAX as u64 {
            self.wbuf.extend_from_slice(&(len as u32).to_be_bytes());
        } else {
            self.wbuf.extend_from_slice(&(-1i32).to_be_bytes());
            self.wbuf.extend_from_slice(&len.to_be_bytes());
        }
        if frame.len() >= BUF {
            self.flush()?;
            return self.stream.write_all(frame);
        }
        self.wbuf.extend_from_slice(frame);
        if self.wbuf.len() >= BUF {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.wbuf.is_empty() {
            let r = self.stream.write_all(&self.wbuf);
            self.wbuf.clear();
            r?;
        }
        Ok(())
    }

    fn recv(&mut self, buf: &mut Vec<u8>, max: usize) -> Result<(), RecvError> {
        if !self.fill(4)? {
            return Err(RecvError::Eof);
        }
        let head = i32::from_be_bytes(
            self.rbuf[self.rstart..self.rstart + 4]
                .try_into()
                .expect("4 bytes"),
        );
        let (size, hlen) = if head >= 0 {
            (head as u64, 4)
        } else if head == -1 {
            self.fill(12)?;
            let s = u64::from_be_bytes(
                self.rbuf[self.rstart + 4..self.rstart + 12]
                    .try_into()
                    .expect("8 bytes"),
            );
            (s, 12)
        } else {
            return Err(RecvError::Malformed(format!(
                "negative length {head} in the frame header"
            )));
        };
        if size > max as u64 {
            return Err(RecvError::TooLarge {
                size,
                max: max as u64,
            });
        }
        self.rstart += hlen;
        let size = size as usize;
        buf.clear();
        if size <= BUF {
            if !self.fill(size)? && size > 0 {
                return Err(RecvError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the peer closed the connection in the middle of a frame",
                )));
            }
            buf.extend_from_slice(&self.rbuf[self.rstart..self.rstart + size]);
            self.rstart += size;
        } else {
            let have = self.buffered();
            buf.reserve(size);
            buf.extend_from_slice(&self.rbuf[self.rstart..self.rend]);
            self.rstart = 0;
            self.rend = 0;
            buf.resize(size, 0);
            self.stream.read_exact(&mut buf[have..])?;
        }
        if self.rstart == self.rend {
            self.rstart = 0;
            self.rend = 0;
        }
        Ok(())
    }

    fn has_buffered_input(&self) -> bool {
        self.rend > self.rstart
    }

    fn peer_closed(&self) -> bool {
        if self.has_buffered_input() {
            return false;
        }
        peer_closed(self.stream.as_raw_fd())
    }

    fn closer(&self) -> Option<Box<dyn Fn() + Send + Sync>> {
        let fd = self.stream.as_raw_fd();
        // The closure only calls shutdown(2) on the descriptor, which is still owned by the
        // transport: the server drops the closer before the transport (it is removed from
        // the connection table before the connection thread ends).
        Some(Box::new(move || shutdown_fd(fd)))
    }
}

/// Whether the peer of the connected socket `fd` has closed it: a non-blocking peek reads end
/// of file.
pub(crate) fn peer_closed(fd: RawFd) -> bool {
    let mut byte = 0u8;
    // SAFETY: recv with MSG_PEEK | MSG_DONTWAIT writes at most one byte into `byte`, which
    // lives for the call; an invalid fd just makes it fail with EBADF.
    let n = unsafe {
        libc::recv(
            fd,
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    if n == 0 {
        return true;
    }
    if n < 0 {
        let e = io::Error::last_os_error();
        return !matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
        );
    }
    false
}

/// Shuts a socket down in both directions, waking any thread blocked reading it.
pub(crate) fn shutdown_fd(fd: RawFd) {
    // SAFETY: shutdown(2) takes a descriptor by value and touches no memory; on a closed or
    // reused descriptor it fails harmlessly (the server keeps the socket open while a closer
    // for it exists).
    unsafe {
        libc::shutdown(fd, libc::SHUT_RDWR);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn frames_cross_a_socketpair() {
        let (a, b) = UnixStream::pair().unwrap();
        let mut a = StreamTransport::new(a);
        let mut b = StreamTransport::new(b);
        a.send(b"hello").unwrap();
        a.send(b"").unwrap();
        let big = vec![7u8; 200_000];
        a.send(&big).unwrap();
        a.flush().unwrap();
        let mut buf = Vec::new();
        b.recv(&mut buf, 1 << 20).unwrap();
        assert_eq!(buf, b"hello");
        b.recv(&mut buf, 1 << 20).unwrap();
        assert!(buf.is_empty());
        b.recv(&mut buf, 1 << 20).unwrap();
        assert_eq!(buf, big);
        drop(a);
        assert!(matches!(b.recv(&mut buf, 10), Err(RecvError::Eof)));
    }

    #[test]
    fn oversize_is_refused_before_reading() {
        let (a, b) = UnixStream::pair().unwrap();
        let mut a = StreamTransport::new(a);
        let mut b = StreamTransport::new(b);
        a.send(&[0u8; 100]).unwrap();
        a.flush().unwrap();
        let mut buf = Vec::new();
        match b.recv(&mut buf, 10) {
            Err(RecvError::TooLarge { size: 100, max: 10 }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn negative_length_is_malformed() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let mut b = StreamTransport::new(b);
        a.write_all(&(-5i32).to_be_bytes()).unwrap();
        let mut buf = Vec::new();
        assert!(matches!(b.recv(&mut buf, 10), Err(RecvError::Malformed(_))));
    }

    #[test]
    fn peer_closed_is_seen() {
        let (a, b) = UnixStream::pair().unwrap();
        let b = StreamTransport::new(b);
        assert!(!b.peer_closed());
        drop(a);
        assert!(b.peer_closed());
    }
}
