//! The sending side's buffer: messages collected for one system call, and the encoding of a
//! value.
//!
//! `pending` holds whole frames (header and payload) not yet written. A small message is
//! appended to it (a value is encoded straight into it) and written with the next flush, or
//! at once when sends are not buffered; a large one (over [`COPY_LIMIT`]) is gathered with
//! what is pending in one `sendmsg`/`writev`, straight from the caller's buffer.

use std::io;
use std::os::fd::{BorrowedFd, RawFd};

use conveyor_core::Codec;
use serde::Serialize;

use crate::connection::{COPY_LIMIT, KEEP_SCRATCH};
use crate::error::SendError;
use crate::frame::{self, SHORT_MAX};
use crate::sys::{self, FdKind};

/// Buffered sends are written once this many bytes are pending.
pub(crate) const WRITE_BUFFER: usize = 64 << 10;

/// The writing side of one connection, behind its writer lock.
///
/// It keeps the connection's descriptor number, not the descriptor: the
/// [`Connection`](crate::Connection) that owns this writer owns the descriptor and declares
/// its `writer` field before its `fd` field, so the descriptor is open whenever the writer is
/// used, and when it is dropped (which flushes). `Connection::into_fd` hands the descriptor
/// on, so it is still open while the rest of the connection, this writer included, drops.
#[derive(Debug)]
pub(crate) struct Writer {
    fd: RawFd,
    kind: FdKind,
    writable: bool,
    pending: Vec<u8>,
    /// A value's encoding on its way into a shared-memory lane.
    scratch: Vec<u8>,
}

impl Writer {
    pub(crate) fn new(fd: RawFd, kind: FdKind, writable: bool) -> Self {
        Writer {
            fd,
            kind,
            writable,
            pending: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// The scratch buffer a value is encoded into for a shared-memory lane.
    pub(crate) fn scratch(&mut self) -> &mut Vec<u8> {
        &mut self.scratch
    }

    /// After a use of the scratch buffer: frees it if it grew past [`KEEP_SCRATCH`].
    pub(crate) fn keep_scratch(&mut self) {
        if self.scratch.capacity() > KEEP_SCRATCH {
            self.scratch = Vec::new();
        }
    }

    fn fd(&self) -> BorrowedFd<'_> {
        // SAFETY: see the type's docs: the owning connection keeps the descriptor open for as
        // long as this writer exists.
        unsafe { BorrowedFd::borrow_raw(self.fd) }
    }

    /// Whether frames wait to be written.
    pub(crate) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Writes every pending frame.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let result = sys::write_all(self.fd(), self.kind, &self.pending);
        self.pending.clear();
        if self.pending.capacity() > KEEP_SCRATCH {
            self.pending = Vec::new();
        }
        result
    }

    /// Sends `data` as one frame: appended to what is pending (written now unless `buffered`
    /// and under [`WRITE_BUFFER`]), or, if large, written at once gathered with it.
    pub(crate) fn frame(&mut self, data: &[u8], buffered: bool) -> io::Result<()> {
        let (header, n) = frame::encode_header(data.len() as u64);
        if data.len() <= COPY_LIMIT {
            self.pending.extend_from_slice(&header[..n]);
            self.pending.extend_from_slice(data);
            if !buffered || self.pending.len() >= WRITE_BUFFER {
                return self.flush();
            }
            return Ok(());
        }
        let result =
            sys::write_all_vectored(self.fd(), self.kind, &[&self.pending, &header[..n], data]);
        self.pending.clear();
        result
    }

    /// Encodes `value` with `codec` as one frame straight into the pending buffer, refusing
    /// an encoding over `max` bytes; then as [`frame`](Writer::frame).
    pub(crate) fn encoded<C: Codec, T: Serialize + ?Sized>(
        &mut self,
        codec: &C,
        value: &T,
        max: u64,
        buffered: bool,
    ) -> Result<(), SendError> {
        let at = self.pending.len();
        self.pending.extend_from_slice(&[0; 4]);
        if let Err(e) = codec.encode(value, &mut self.pending) {
            self.pending.truncate(at);
            return Err(SendError::Codec(e));
        }
        let len = (self.pending.len() - at - 4) as u64;
        if len > max {
            self.pending.truncate(at);
            return Err(SendError::TooLarge { size: len, max });
        }
        let result = if len <= SHORT_MAX {
            self.pending[at..at + 4].copy_from_slice(&(len as i32).to_be_bytes());
            if !buffered || self.pending.len() >= WRITE_BUFFER {
                self.flush()
            } else {
                Ok(())
            }
        } else {
            // 2 GiB and more takes the long header: gather it between what was pending and
            // the encoding (rare enough that moving the encoding out costs nothing that
            // matters next to writing it).
            let body = self.pending.split_off(at + 4);
            self.pending.truncate(at);
            let (header, n) = frame::encode_header(len);
            let r = sys::write_all_vectored(
                self.fd(),
                self.kind,
                &[&self.pending, &header[..n], &body],
            );
            self.pending.clear();
            r
        };
        result.map_err(|e| {
            if e.kind() == io::ErrorKind::BrokenPipe {
                SendError::Closed
            } else {
                SendError::Io(e)
            }
        })
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if self.writable && self.has_pending() {
            if let Err(e) = self.flush() {
                tracing::debug!(error = %e, "writing buffered sends while dropping failed");
            }
        }
    }
}
