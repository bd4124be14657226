//! The shared-memory lane of a pipe built with [`PipeBuilder::shared_memory`]: its messages
//! travel through conveyor-shm's crash-safe ring, one ring per direction, while the socket
//! between the two ends stays for what a ring cannot do: waking a receiver that sleeps,
//! telling that the peer has gone (end of file), and passing descriptors.
//!
//! # Why
//!
//! A round trip over a socket costs at least four system calls, and on the two-vCPU
//! development machine two processes spinning on non-blocking `recv` of a socketpair (no
//! library code at all) measured a 6 to 9 us round trip; the same two processes spinning on
//! a word of shared memory, 0.2 to 0.6 us. A receive that finds its message in the ring makes
//! no system call, and neither does a send whose receiver is not asleep.
//!
//! # The protocol
//!
//! - **Records.** Each message is one record of the direction's [`ShmQueue`]: the payload,
//!   then one tag byte ([`TAG_MESSAGE`]); a record that is the single byte [`TAG_FDS`] marks
//!   where descriptors passed with `send_fds` come in the stream. The tag is last so that a
//!   receiver pops it off the vector it received into, without moving the payload, and a
//!   sender gathers it with the payload straight into the ring
//!   ([`ShmQueue::put_bytes_parts`]).
//! - **The doorbell word** of each direction, a [`Value<u64>`] in shared memory: bit 0
//!   ([`SLEEPING`]) says the receiver is about to sleep on the socket; the bits above count
//!   the receiving end's live handles ([`HANDLE`] each), so a sender learns at once, without
//!   a system call, that every receiving handle was dropped.
//! - **Sleeping.** A receiver that finds the ring empty (after its spin) sets `SLEEPING`,
//!   looks at the ring once more, and only then sleeps in `poll` on the socket. A sender puts
//!   its record, then reads the word; if `SLEEPING` is set it clears it and writes one byte
//!   (a doorbell) to the socket. Both sides order their store before their load with a
//!   sequentially consistent fence (the two-flag pattern), so either the receiver's second
//!   look finds the record or the sender sees the bit: a message never waits for a receiver
//!   that sleeps. At most one doorbell is written per sleep; a receiver reads doorbells and
//!   ignores them.
//! - **End of file.** `close` shuts the direction's ring down (the receiver drains it, then
//!   gets `Closed`) and shuts the socket's sending side (which wakes a sleeping receiver). A
//!   peer that is dropped or dies closes its socket: the receiver wakes with end of file,
//!   takes what is left in the ring, then gets `Closed`. A peer killed in the middle of a put
//!   leaves the ring consistent (conveyor-shm's crash safety): the record is either whole or
//!   absent.
//! - **Descriptors** go over the socket as Python's `reduction.sendfds` sends them (one byte,
//!   with `SCM_RIGHTS`), then a [`TAG_FDS`] record goes into the ring: the receiver that
//!   takes that record takes the oldest descriptors that came over the socket.
//! - **A sender whose ring is full** waits for room in slices of [`LIVENESS_SLICE`] and
//!   between slices asks the socket whether the peer hung up, so a send to a killed receiver
//!   fails with `Closed` instead of blocking for good.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant};

use conveyor_core::{GetError, PutError};
use conveyor_shm::{ShmQueue, Value};
use serde::{Deserialize, Serialize};

use crate::error::SendError;
use crate::spin::{Poll, Spin};
use crate::sys::{self, FdKind};

/// The tag byte that ends a record holding a message.
pub(crate) const TAG_MESSAGE: u8 = 0;
/// The whole of a record that marks passed descriptors.
pub(crate) const TAG_FDS: u8 = 1;

/// Doorbell word: the receiver is about to sleep on the socket (or asleep).
const SLEEPING: u64 = 1;
/// Doorbell word: one live receiving handle.
const HANDLE: u64 = 2;

/// How long a sender waits for room in the ring before it asks the socket whether the peer
/// has hung up.
pub(crate) const LIVENESS_SLICE: Duration = Duration::from_millis(50);

/// The default size of each direction's ring.
pub(crate) const DEFAULT_RING: usize = 4 << 20;

/// At most this many messages of passed descriptors wait to be taken; older ones are closed.
const MAX_FD_MESSAGES: usize = 64;

/// The rings carry raw bytes; the item type only names the segment's fingerprint.
pub(crate) type Ring = ShmQueue<Vec<u8>>;

/// One direction of the lane: its ring and its doorbell word.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Direction {
    ring: Ring,
    word: Value<u64>,
}

impl Direction {
    fn create(ring_bytes: usize) -> Result<Direction, conveyor_shm::ShmError> {
        Ok(Direction {
            ring: ShmQueue::builder()
                .ring_bytes(ring_bytes)
                .spin(Duration::ZERO)
                .create()?,
            word: Value::new(0)?,
        })
    }

    /// Sets `SLEEPING` (the receiver's side of the two-flag pattern).
    fn arm(&self) {
        let mut w = self.word.load();
        while w & SLEEPING == 0 {
            match self.word.compare_exchange(w, w | SLEEPING) {
                Ok(_) => break,
                Err(now) => w = now,
            }
        }
        fence(Ordering::SeqCst);
    }

    /// Clears `SLEEPING`; true if this call cleared it (the sender then rings).
    fn disarm(&self) -> bool {
        let mut w = self.word.load();
        while w & SLEEPING != 0 {
            match self.word.compare_exchange(w, w & !SLEEPING) {
                Ok(_) => return true,
                Err(now) => w = now,
            }
        }
        false
    }

    fn receivers(&self) -> u64 {
        self.word.load() / HANDLE
    }
}

impl std::fmt::Debug for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Direction")
            .field("ring", &self.ring.name())
            .field("word", &self.word.name())
            .finish()
    }
}

/// One end's part of the lane: the direction it sends on and the one it receives on (a
/// one-way pipe's ends have one each). A live `Lane` with `rx` counts as one receiving handle
/// in the doorbell word, from its making to its drop.
///
/// It travels to a child as the names of its segments ([`Serialize`]); the child rebuilds it
/// with [`IncomingLane::adopt`], which counts the new handle.
#[derive(Debug, Serialize)]
pub(crate) struct Lane {
    tx: Option<Direction>,
    rx: Option<Direction>,
}

/// A lane as it arrives in a child's arguments, not yet counted as a handle.
#[derive(Debug, Deserialize)]
pub(crate) struct IncomingLane {
    tx: Option<Direction>,
    rx: Option<Direction>,
}

impl IncomingLane {
    /// Registers the lane as a live handle of this process.
    pub(crate) fn adopt(self) -> Lane {
        Lane::counted(self.tx, self.rx)
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        if let Some(rx) = &self.rx {
            rx.word.fetch_sub(HANDLE);
        }
    }
}

impl Lane {
    /// The two ends of a new lane: `(a, b)`, duplex, or `a` receiving only and `b` sending
    /// only.
    pub(crate) fn pair(duplex: bool, ring_bytes: usize) -> io::Result<(Lane, Lane)> {
        let shm = |e: conveyor_shm::ShmError| {
            io::Error::other(format!(
                "could not create the shared-memory lane of a pipe: {e}"
            ))
        };
        let b_to_a = Direction::create(ring_bytes).map_err(shm)?;
        if duplex {
            let a_to_b = Direction::create(ring_bytes).map_err(shm)?;
            Ok((
                Lane::counted(Some(a_to_b.clone()), Some(b_to_a.clone())),
                Lane::counted(Some(b_to_a), Some(a_to_b)),
            ))
        } else {
            Ok((
                Lane::counted(None, Some(b_to_a.clone())),
                Lane::counted(Some(b_to_a), None),
            ))
        }
    }

    fn counted(tx: Option<Direction>, rx: Option<Direction>) -> Lane {
        if let Some(rx) = &rx {
            rx.word.fetch_add(HANDLE);
        }
        Lane { tx, rx }
    }

    /// Another handle on the same lane (for `try_clone`, or a new owner in a child).
    pub(crate) fn duplicate(&self) -> Lane {
        Lane::counted(self.tx.clone(), self.rx.clone())
    }

    /// The names of the rings this end sends on and receives on.
    pub(crate) fn ring_names(&self) -> (Option<String>, Option<String>) {
        let name = |d: &Option<Direction>| d.as_ref().map(|d| d.ring.name().to_string());
        (name(&self.tx), name(&self.rx))
    }

    fn tx(&self) -> Result<&Direction, SendError> {
        self.tx.as_ref().ok_or_else(|| {
            SendError::Io(io::Error::new(
                io::ErrorKind::Unsupported,
                "this is the reading end of a one-way pipe: it cannot send",
            ))
        })
    }

    fn rx(&self) -> Result<&Direction, GetError> {
        self.rx.as_ref().ok_or_else(|| {
            GetError::Io(io::Error::new(
                io::ErrorKind::Unsupported,
                "this is the writing end of a one-way pipe: it cannot receive",
            ))
        })
    }

    // ---------------------------------------------------------------- sending

    /// Puts one record (`parts` joined), waiting at most `timeout` for room (`None`: as long
    /// as the peer lives), then rings the doorbell if the receiver sleeps.
    pub(crate) fn put(
        &self,
        socket: BorrowedFd<'_>,
        parts: &[&[u8]],
        timeout: Option<Duration>,
    ) -> Result<(), LanePutError> {
        let dir = self.tx()?;
        if dir.receivers() == 0 {
            return Err(SendError::Closed.into());
        }
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            let slice = match (timeout, deadline) {
                (Some(t), _) if t.is_zero() => Duration::ZERO,
                (_, Some(d)) => d
                    .saturating_duration_since(Instant::now())
                    .min(LIVENESS_SLICE),
                _ => LIVENESS_SLICE,
            };
            match dir.ring.put_bytes_parts(parts, Some(slice)) {
                Ok(()) => break,
                Err(PutError::Timeout(()) | PutError::Full(())) => {
                    if sys::poll_many(&[socket], 0, Some(Duration::ZERO))?[0] {
                        return Err(SendError::Closed.into());
                    }
                    if dir.receivers() == 0 {
                        return Err(SendError::Closed.into());
                    }
                    match (timeout, deadline) {
                        (Some(t), _) if t.is_zero() => return Err(LanePutError::Full),
                        (_, Some(d)) if Instant::now() >= d => return Err(LanePutError::Timeout),
                        _ => {}
                    }
                }
                Err(PutError::Closed(())) => return Err(SendError::Closed.into()),
                Err(PutError::TooLarge { size, max, .. }) => {
                    return Err(SendError::TooLarge {
                        size: size as u64,
                        max: max as u64,
                    }
                    .into())
                }
                Err(PutError::Codec { source, .. }) => return Err(SendError::Codec(source).into()),
                Err(PutError::Io { source, .. }) => return Err(SendError::Io(source).into()),
                Err(other) => {
                    return Err(SendError::Io(io::Error::other(format!(
                        "the pipe's shared-memory ring refused a message: {other}"
                    )))
                    .into())
                }
            }
        }
        self.ring_doorbell(dir, socket)
    }

    /// The sender's side of the two-flag pattern: after the record is in, wake a receiver
    /// that sleeps.
    #[inline]
    fn ring_doorbell(&self, dir: &Direction, socket: BorrowedFd<'_>) -> Result<(), LanePutError> {
        fence(Ordering::SeqCst);
        if dir.word.load() & SLEEPING != 0 && dir.disarm() {
            match sys::write_all(socket, FdKind::Socket, &[0]) {
                Ok(()) => {}
                // The receiver is gone; the message stays undelivered, as a socket's would.
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                    return Err(SendError::Closed.into())
                }
                Err(e) => return Err(SendError::Io(e).into()),
            }
        }
        Ok(())
    }

    /// Passes descriptors: over the socket first, then the marker record into the ring.
    pub(crate) fn send_fds(
        &self,
        socket: BorrowedFd<'_>,
        fds: &[BorrowedFd<'_>],
    ) -> Result<(), SendError> {
        self.tx()?;
        sys::send_fds(socket, fds).map_err(|e| {
            if e.kind() == io::ErrorKind::BrokenPipe {
                SendError::Closed
            } else {
                SendError::Io(e)
            }
        })?;
        self.put(socket, &[&[TAG_FDS]], None).map_err(|e| match e {
            LanePutError::Send(e) => e,
            LanePutError::Full | LanePutError::Timeout => SendError::Closed,
        })
    }

    /// Ends this direction: the receiver drains what was put, then gets `Closed`.
    pub(crate) fn close(&self) {
        if let Some(tx) = &self.tx {
            if let Err(e) = tx.ring.try_shutdown(false) {
                tracing::warn!(error = %e, "could not shut a pipe's shared-memory ring down");
            }
        }
    }

    // -------------------------------------------------------------- receiving

    /// Whether a receive would not wait: a record in the ring, the ring shut down, end of
    /// file on the socket, or a marker already taken.
    pub(crate) fn ready(&self, rx: &LaneReader) -> bool {
        match &self.rx {
            Some(dir) => rx.marker || rx.eof || !dir.ring.is_empty() || dir.ring.is_shutdown(),
            None => false,
        }
    }

    /// Sets the doorbell before a `wait` over many connections sleeps on the socket; true if
    /// the receive would not wait (nothing to sleep for).
    pub(crate) fn arm_for_wait(&self, rx: &LaneReader) -> bool {
        if let Some(dir) = &self.rx {
            dir.arm();
        }
        self.ready(rx)
    }

    /// Takes one record with `attempt` (a non-blocking get from the ring that answers
    /// `Empty` when there is none), spinning first when `spin`, then sleeping on the socket,
    /// until one comes, the ring is closed and drained, the socket reaches end of file with the
    /// ring drained, or `deadline` passes (`Timeout`).
    pub(crate) fn take<R>(
        &self,
        rx: &mut LaneReader,
        socket: BorrowedFd<'_>,
        spin: bool,
        deadline: Option<Instant>,
        mut attempt: impl FnMut(&Ring) -> Result<R, GetError>,
    ) -> Result<R, GetError> {
        let dir = self.rx()?;
        match attempt(&dir.ring) {
            Err(GetError::Empty) => {}
            other => return other,
        }
        if spin && !rx.eof {
            let ring = &dir.ring;
            // A look at the ring's indices costs two loads; the lock is taken only for a record.
            let spun = rx.spin.run_busy_first(|| {
                if ring.is_empty() && !ring.is_shutdown() {
                    return Poll::Empty;
                }
                match attempt(ring) {
                    Err(GetError::Empty) => Poll::Empty,
                    other => Poll::Ready(other),
                }
            });
            if let Some(r) = spun {
                return r;
            }
        }
        loop {
            dir.arm();
            match attempt(&dir.ring) {
                Err(GetError::Empty) => {}
                other => {
                    dir.disarm();
                    return other;
                }
            }
            if rx.eof {
                dir.disarm();
                return Err(GetError::Closed);
            }
            let left = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        dir.disarm();
                        return Err(GetError::Timeout);
                    }
                    Some(left)
                }
                None => None,
            };
            if sys::poll_read(socket, left)? {
                rx.drain(socket)?;
            }
        }
    }

    /// Waits until a receive would not wait, or `timeout` passes; returns which.
    pub(crate) fn poll(
        &self,
        rx: &mut LaneReader,
        socket: BorrowedFd<'_>,
        timeout: Option<Duration>,
    ) -> io::Result<bool> {
        let Some(dir) = &self.rx else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this is the writing end of a one-way pipe: it cannot receive",
            ));
        };
        if self.ready(rx) {
            return Ok(true);
        }
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            dir.arm();
            if self.ready(rx) {
                dir.disarm();
                return Ok(true);
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if !sys::poll_read(socket, left)? {
                dir.disarm();
                return Ok(self.ready(rx));
            }
            rx.drain(socket).map_err(|e| match e {
                GetError::Io(e) => e,
                other => io::Error::other(other.to_string()),
            })?;
            if self.ready(rx) {
                return Ok(true);
            }
            if matches!(deadline, Some(d) if Instant::now() >= d) {
                dir.disarm();
                return Ok(false);
            }
        }
    }

    /// After a marker record: the descriptors that came with it, waiting for them on the
    /// socket if they have not been read yet.
    pub(crate) fn marked_fds(
        &self,
        rx: &mut LaneReader,
        socket: BorrowedFd<'_>,
    ) -> Result<(u8, Vec<OwnedFd>), GetError> {
        loop {
            if let Some(got) = rx.fds.pop_front() {
                return Ok(got);
            }
            if rx.eof {
                return Err(GetError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the peer marked passed descriptors but closed the socket before they \
                     came: it probably died while sending them",
                )));
            }
            sys::poll_read(socket, None)?;
            rx.drain(socket)?;
        }
    }
}

/// Why a put into the lane failed.
#[derive(Debug)]
pub(crate) enum LanePutError {
    /// No room now (a put that may not wait).
    Full,
    /// No room before the timeout.
    Timeout,
    /// As a send reports it.
    Send(SendError),
}

impl From<SendError> for LanePutError {
    fn from(e: SendError) -> Self {
        LanePutError::Send(e)
    }
}

impl From<io::Error> for LanePutError {
    fn from(e: io::Error) -> Self {
        LanePutError::Send(SendError::Io(e))
    }
}

/// The receiving side's state of a lane, behind the connection's reader lock.
#[derive(Debug, Default)]
pub(crate) struct LaneReader {
    spin: Spin,
    /// Descriptors that came over the socket, with their count byte, oldest first.
    fds: VecDeque<(u8, Vec<OwnedFd>)>,
    /// The socket reached end of file: the peer closed or is gone.
    pub(crate) eof: bool,
    /// A marker record was taken by a receive of a message: the descriptors are next.
    pub(crate) marker: bool,
}

impl LaneReader {
    /// Reads what the socket holds without waiting: doorbells (ignored), descriptors (kept,
    /// with their count byte), end of file.
    fn drain(&mut self, socket: BorrowedFd<'_>) -> Result<(), GetError> {
        let mut buf = [0u8; 64];
        loop {
            let mut passed = Vec::new();
            match sys::read_some(socket, FdKind::Socket, &mut buf, &mut passed, true, false) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    if !passed.is_empty() {
                        // Linux ends a read right after the byte carrying descriptors.
                        self.fds.push_back((buf[n - 1], passed));
                        if self.fds.len() > MAX_FD_MESSAGES {
                            tracing::debug!("closing descriptors passed long ago and never taken");
                            self.fds.pop_front();
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(GetError::Io(e)),
            }
        }
    }
}

/// What a record holds, by its tag byte (the last).
pub(crate) enum Record<'a> {
    /// A message: its payload.
    Message(&'a [u8]),
    /// The marker of passed descriptors.
    Fds,
}

/// Reads a record's tag; an empty record or an unknown tag is malformed.
pub(crate) fn parse(record: &[u8]) -> Result<Record<'_>, io::Error> {
    match record.split_last() {
        Some((&TAG_MESSAGE, payload)) => Ok(Record::Message(payload)),
        Some((&TAG_FDS, [])) => Ok(Record::Fds),
        _ => Err(malformed()),
    }
}

pub(crate) fn malformed() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "a malformed record in the pipe's shared-memory ring (neither a message nor a \
         descriptor marker): the peer is not a conveyor pipe end of this version",
    )
}

/// The error a receive of a message reports when descriptors come first.
pub(crate) fn fds_first() -> GetError {
    GetError::Io(io::Error::new(
        io::ErrorKind::InvalidData,
        "the peer passed descriptors here: take them with recv_fds before the next message",
    ))
}
