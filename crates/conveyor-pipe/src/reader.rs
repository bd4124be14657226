//! The receiving side's read-ahead buffer: one `read` takes in as many small messages as have
//! arrived, instead of two reads (header, then payload) per message.
//!
//! Layout: `buf[start..end]` holds bytes read from the descriptor and not yet handed out; they
//! always begin at a message boundary or inside the message being read. A small message
//! (payload up to [`SMALL`] bytes) is read whole into the buffer and handed out from there; a
//! larger one takes what the buffer already holds and reads the rest straight into the
//! caller's vector, so a large payload is copied once, as without a buffer.
//!
//! Before a read would sleep, it may spin a while with non-blocking reads (see
//! [`spin`](crate::spin)); a read with a deadline (the handshake's) waits for the descriptor
//! with `poll` until then and fails with `TimedOut` after. Descriptors the peer passes arrive
//! with the byte that carries them ([`sys::read_some`]): they are kept with that byte's
//! position in the stream until [`ReadAhead::take_fd_message`] hands them out.

use std::collections::VecDeque;
use std::io;
use std::ops::Range;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::time::Instant;

use crate::frame::{self, FrameError, Header, MAX_HEADER_LEN};
use crate::spin::{Poll, Spin};
use crate::sys::{self, FdKind, ReadExact};

/// At most this many messages of passed descriptors wait to be taken; older ones are closed.
const MAX_FD_MESSAGES: usize = 64;

/// Where and how one receive reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Source<'a> {
    /// The descriptor.
    pub fd: BorrowedFd<'a>,
    /// What kind of file it is.
    pub kind: FdKind,
    /// Read nothing past the message being received.
    pub exact: bool,
    /// Spin before sleeping (see [`crate::spin`]).
    pub spin: bool,
    /// Fail with `TimedOut` if the bytes have not come by then.
    pub deadline: Option<Instant>,
    /// A socket whose hang-up ends a wait as end of file (see `Connection::watch_hangup`).
    pub watch: Option<BorrowedFd<'a>>,
    /// The descriptor is a pipe in non-blocking mode (`O_NONBLOCK`): a spin's poll is a plain
    /// `read` (see [`sys::read_some`]).
    pub fd_nonblocking: bool,
}

impl Source<'_> {
    /// Reads what is there into `buf` (see [`sys::read_some`]); with `nonblocking`,
    /// `WouldBlock` instead of waiting.
    fn read_some(
        &self,
        buf: &mut [u8],
        fds: &mut Vec<OwnedFd>,
        nonblocking: bool,
    ) -> io::Result<usize> {
        sys::read_some(
            self.fd,
            self.kind,
            buf,
            fds,
            nonblocking,
            self.fd_nonblocking,
        )
    }
}

/// Capacity of the read-ahead buffer, allocated on the first receive.
pub(crate) const READ_AHEAD: usize = 32 << 10;

/// Payloads up to this size are read whole into the read-ahead buffer.
pub(crate) const SMALL: usize = READ_AHEAD - MAX_HEADER_LEN;

/// A large payload's vector is reserved this far ahead of the bytes that arrived (then
/// doubled as they keep coming), so a peer that announces a large message and stops makes
/// this end allocate at most this much. A message up to this size is read into a vector
/// reserved once, at its exact size.
pub(crate) const LARGE_STEP: usize = 4 << 20;

/// Where a received payload is.
#[derive(Debug)]
pub(crate) enum Payload {
    /// In the read-ahead buffer, at this range (valid until the next receive).
    Ahead(Range<usize>),
    /// In the caller's vector.
    Out,
}

/// Why no payload was received.
#[derive(Debug)]
pub(crate) enum ReadFailure {
    /// End of file at a message boundary.
    Closed,
    /// The header announces more than the maximum.
    TooLarge { size: u64, max: u64 },
    /// The header is malformed.
    Malformed(FrameError),
    /// End of file inside a message, after `got` of its `want` bytes.
    Eof { got: u64, want: u64 },
    /// An I/O error; `mid_frame` if part of a message had been taken in.
    Io { error: io::Error, mid_frame: bool },
}

/// The read-ahead buffer of one connection.
#[derive(Debug, Default)]
pub(crate) struct ReadAhead {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Bytes read from the descriptor so far: the stream position just past `buf[end]`.
    read_total: u64,
    /// Descriptors that arrived, with the stream position of the byte that carried them.
    fds: VecDeque<(u64, Vec<OwnedFd>)>,
    spin: Spin,
}

fn timed_out() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "the deadline passed before the peer's bytes came",
    )
}

impl ReadAhead {
    /// A buffer that starts with `pending` (bytes read ahead by a previous owner).
    pub(crate) fn with_pending(pending: &[u8]) -> Self {
        let mut buf = vec![0u8; READ_AHEAD.max(pending.len())];
        buf[..pending.len()].copy_from_slice(pending);
        ReadAhead {
            buf,
            start: 0,
            end: pending.len(),
            read_total: pending.len() as u64,
            ..ReadAhead::default()
        }
    }

    /// The bytes read ahead and not yet handed out.
    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Whether a whole next message is buffered, so that receiving it reads nothing.
    pub(crate) fn holds_whole_frame(&self) -> bool {
        matches!(
            frame::decode_header(self.pending(), u64::MAX),
            Ok(Header::Complete { len, header_len })
                if (self.available() - header_len) as u64 >= len
        )
    }

    /// The bytes at `range` of the buffer (a range returned as [`Payload::Ahead`]).
    pub(crate) fn slice(&self, range: Range<usize>) -> &[u8] {
        &self.buf[range]
    }

    fn available(&self) -> usize {
        self.end - self.start
    }

    /// Makes room for `need` bytes from `start`, then reads once; returns how many bytes came.
    /// With `src.exact`, it reads no further than those `need` bytes.
    fn fill(&mut self, src: &Source<'_>, need: usize) -> io::Result<usize> {
        if self.buf.len() < READ_AHEAD {
            self.buf.resize(READ_AHEAD, 0);
        }
        if self.start + need > self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let limit = if src.exact {
            self.start + need
        } else {
            self.buf.len()
        };
        // Nothing of a next message here yet: it was most likely just asked for, so it cannot
        // have come yet (the spin yields first). Part of one here: the rest is in flight.
        let fresh = self.start == self.end;
        let ReadAhead {
            buf,
            end,
            spin,
            fds,
            read_total,
            ..
        } = self;
        let space = &mut buf[*end..limit];
        let mut passed = Vec::new();
        let n = if let Some(deadline) = src.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !sys::poll_read(src.fd, Some(left))? {
                return Err(timed_out());
            }
            src.read_some(space, &mut passed, false)?
        } else {
            let spun = if src.spin {
                spin.run(fresh, || match src.read_some(space, &mut passed, true) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Empty,
                    other => Poll::Ready(other),
                })
            } else {
                None
            };
            match spun {
                Some(r) => r?,
                None => {
                    if let Some(watch) = src.watch {
                        if !sys::wait_readable_unless_hangup(src.fd, watch)? {
                            return Ok(0);
                        }
                    } else if src.spin && src.fd_nonblocking {
                        // The spin's last look found nothing: a read of this pipe would only
                        // say so again, so wait for it first (one system call less for every
                        // receive that sleeps).
                        sys::poll_read(src.fd, None)?;
                    }
                    src.read_some(space, &mut passed, false)?
                }
            }
        };
        *end += n;
        *read_total += n as u64;
        if !passed.is_empty() {
            // Linux ends a read right after the byte carrying descriptors: it is the last one.
            fds.push_back((*read_total - 1, passed));
            if fds.len() > MAX_FD_MESSAGES {
                tracing::debug!("closing descriptors passed long ago and never taken");
                fds.pop_front();
            }
        }
        Ok(n)
    }

    /// The stream position of the next byte not yet handed out.
    fn position(&self) -> u64 {
        self.read_total - self.available() as u64
    }

    /// Takes the next byte, which must carry descriptors passed by the peer (Python's
    /// `reduction.sendfds` format: one byte, `count % 256`), and returns the byte and the
    /// descriptors. `Ok(None)`: end of file before the byte.
    pub(crate) fn take_fd_message(
        &mut self,
        src: &Source<'_>,
    ) -> Result<(u8, Vec<OwnedFd>), ReadFailure> {
        self.fill_to(src, 1, 1)?;
        let at = self.position();
        let byte = self.buf[self.start];
        self.start += 1;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        // Descriptors that came with bytes already handed out as messages are stale.
        while matches!(self.fds.front(), Some((p, _)) if *p < at) {
            self.fds.pop_front();
        }
        match self.fds.front() {
            Some((p, _)) if *p == at => {
                let (_, fds) = self.fds.pop_front().expect("just seen");
                Ok((byte, fds))
            }
            _ => Ok((byte, Vec::new())),
        }
    }

    /// Reads until `need` bytes are available from `start`, or fails.
    fn fill_to(&mut self, src: &Source<'_>, need: usize, want: u64) -> Result<(), ReadFailure> {
        while self.available() < need {
            let had = self.available();
            match self.fill(src, need) {
                Ok(0) if had == 0 => return Err(ReadFailure::Closed),
                Ok(0) => {
                    return Err(ReadFailure::Eof {
                        got: had as u64,
                        want,
                    })
                }
                Ok(_) => {}
                Err(error) => {
                    return Err(ReadFailure::Io {
                        error,
                        mid_frame: had > 0,
                    })
                }
            }
        }
        Ok(())
    }

    /// Receives the next message, refusing one longer than `max` before reading its payload.
    ///
    /// `out` is cleared first; the payload ends up in it or, if small, in the buffer. With
    /// `src.exact`, nothing past this message is read from the descriptor.
    ///
    /// Nothing is allocated for a payload before its header has passed the `max` check, and a
    /// large payload's vector grows only as its bytes arrive (up to [`LARGE_STEP`] ahead of
    /// them), so a peer that announces a large message and stops costs no more memory than it
    /// sent.
    pub(crate) fn next_frame(
        &mut self,
        src: &Source<'_>,
        max: u64,
        out: &mut Vec<u8>,
    ) -> Result<Payload, ReadFailure> {
        out.clear();
        // The header: 4 bytes, or 12 after a -1.
        let (len, header_len) = loop {
            match frame::decode_header(self.pending(), max) {
                Ok(Header::Complete { len, header_len }) => break (len, header_len),
                Ok(Header::Incomplete { need }) => match self.fill_to(src, need, need as u64) {
                    Ok(()) => {}
                    Err(ReadFailure::Closed) => return Err(ReadFailure::Closed),
                    Err(e) => return Err(e),
                },
                Err(FrameError::TooLarge { size, max }) => {
                    return Err(ReadFailure::TooLarge { size, max })
                }
                Err(e) => return Err(ReadFailure::Malformed(e)),
            }
        };
        let want = header_len as u64 + len;
        let mid = |e: ReadFailure| match e {
            ReadFailure::Closed => ReadFailure::Eof {
                got: header_len as u64,
                want,
            },
            ReadFailure::Io { error, .. } => ReadFailure::Io {
                error,
                mid_frame: true,
            },
            other => other,
        };
        if len <= SMALL as u64 {
            let len = len as usize;
            self.fill_to(src, header_len + len, want).map_err(mid)?;
            let from = self.start + header_len;
            self.start = from + len;
            if self.start == self.end {
                // Everything handed out: the next read may use the whole buffer. The payload's
                // bytes stay where they are until then.
                self.start = 0;
                self.end = 0;
            }
            return Ok(Payload::Ahead(from..from + len));
        }
        // A large payload: what is buffered, then the rest straight into `out`. One larger
        // than this machine's memory could never be held: it is refused like one over the
        // limit, before anything is allocated (the vector grows only as bytes arrive, so the
        // allocator would not say so until the peer had sent that much).
        let memory = sys::memory_size().unwrap_or(usize::MAX as u64);
        if len > memory {
            return Err(ReadFailure::TooLarge {
                size: len,
                max: memory,
            });
        }
        let len = usize::try_from(len).map_err(|_| ReadFailure::TooLarge {
            size: len,
            max: usize::MAX as u64,
        })?;
        self.start += header_len;
        let have = self.available().min(len);
        out.try_reserve(len.min(LARGE_STEP).max(have))
            .map_err(|e| ReadFailure::Io {
                error: io::Error::new(
                    io::ErrorKind::OutOfMemory,
                    format!("cannot allocate {len} bytes for an incoming message: {e}"),
                ),
                mid_frame: true,
            })?;
        out.extend_from_slice(&self.buf[self.start..self.start + have]);
        self.start += have;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        match sys::read_exact_append(src.fd, src.kind, out, len - have, LARGE_STEP) {
            Ok(ReadExact::Full) => Ok(Payload::Out),
            Ok(ReadExact::Eof { got }) => Err(ReadFailure::Eof {
                got: (header_len + have + got) as u64,
                want,
            }),
            Err(error) => Err(ReadFailure::Io {
                error,
                mid_frame: true,
            }),
        }
    }
}
