//! The receiving side's read-ahead buffer: one `read` takes in as many small messages as have
//! arrived, instead of two reads (header, then payload) per message.
//!
//! Layout: `buf[start..end]` holds bytes read from the descriptor and not yet handed out; they
//! always begin at a message boundary or inside the message being read. A small message
//! (payload up to [`SMALL`] bytes) is read whole into the buffer and handed out from there; a
//! larger one takes what the buffer already holds and reads the rest straight into the
//! caller's vector, so a large payload is copied once, as without a buffer.

use std::io;
use std::ops::Range;
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::frame::{self, FrameError, Header, MAX_HEADER_LEN};
use crate::sys::{self, ReadExact};

/// Capacity of the read-ahead buffer, allocated on the first receive.
pub(crate) const READ_AHEAD: usize = 32 << 10;

/// Payloads up to this size are read whole into the read-ahead buffer.
pub(crate) const SMALL: usize = READ_AHEAD - MAX_HEADER_LEN;

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
        }
    }

    /// The bytes read ahead and not yet handed out.
    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// The bytes at `range` of the buffer (a range returned as [`Payload::Ahead`]).
    pub(crate) fn slice(&self, range: Range<usize>) -> &[u8] {
        &self.buf[range]
    }

    fn available(&self) -> usize {
        self.end - self.start
    }

    /// Makes room for `need` bytes from `start`, then reads once; returns how many bytes came.
    /// With `exact`, it reads no further than those `need` bytes.
    fn fill(&mut self, fd: BorrowedFd<'_>, need: usize, exact: bool) -> io::Result<usize> {
        if self.buf.len() < READ_AHEAD {
            self.buf.resize(READ_AHEAD, 0);
        }
        if self.start + need > self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let limit = if exact {
            self.start + need
        } else {
            self.buf.len()
        };
        let space = &mut self.buf[self.end..limit];
        let n = sys::read_some(fd.as_raw_fd(), space)?;
        self.end += n;
        Ok(n)
    }

    /// Reads until `need` bytes are available from `start`, or fails.
    fn fill_to(
        &mut self,
        fd: BorrowedFd<'_>,
        need: usize,
        want: u64,
        exact: bool,
    ) -> Result<(), ReadFailure> {
        while self.available() < need {
            let had = self.available();
            match self.fill(fd, need, exact) {
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
    /// `exact`, nothing past this message is read from the descriptor.
    pub(crate) fn next_frame(
        &mut self,
        fd: BorrowedFd<'_>,
        max: u64,
        out: &mut Vec<u8>,
        exact: bool,
    ) -> Result<Payload, ReadFailure> {
        out.clear();
        // The header: 4 bytes, or 12 after a -1.
        let (len, header_len) = loop {
            match frame::decode_header(self.pending(), max) {
                Ok(Header::Complete { len, header_len }) => break (len, header_len),
                Ok(Header::Incomplete { need }) => match self.fill_to(fd, need, need as u64, exact)
                {
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
            self.fill_to(fd, header_len + len, want, exact)
                .map_err(mid)?;
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
        // A large payload: what is buffered, then the rest straight into `out`.
        let len = usize::try_from(len).map_err(|_| ReadFailure::TooLarge {
            size: len,
            max: usize::MAX as u64,
        })?;
        out.try_reserve(len).map_err(|e| ReadFailure::Io {
            error: io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!("cannot allocate {len} bytes for an incoming message: {e}"),
            ),
            mid_frame: true,
        })?;
        self.start += header_len;
        let have = self.available().min(len);
        out.extend_from_slice(&self.buf[self.start..self.start + have]);
        self.start += have;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        match sys::read_exact_append(fd, out, len - have) {
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
