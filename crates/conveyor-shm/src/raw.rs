//! The untyped queue: blocking puts and gets of byte payloads, out-of-line delivery of large
//! ones, close, and task accounting. [`ShmQueue`](crate::ShmQueue) adds the codec on top.

use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use conveyor_core::GetError;

use crate::ring::{
    GetOutcome, GetWith, PutInPlace, PutOutcome, Ring, Side, KIND_DATA, KIND_OUT_OF_LINE,
};
use crate::wait::{notify, wait_until, Deadline, Signal};

/// The largest record a typed get decodes in place, under the get mutex. A larger one is
/// copied out and decoded once the mutex is released: the copy costs little next to such a
/// decode, and the decode then neither holds up other consumers nor runs alone.
pub(crate) const IN_PLACE_MAX: usize = 64 * 1024;

/// The largest copy-out buffer a thread keeps between gets (see [`copy_buffer`]).
const COPY_KEEP_MAX: usize = 8 << 20;

thread_local! {
    static COPY_BUFFER: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// This thread's buffer for copying a large record out of the ring, taken from its slot (an
/// empty one if a get further up this thread's stack holds it). Reusing it matters: a fresh
/// allocation of a megabyte is a fresh mapping, and faulting its pages in cost more than the
/// copy itself (1 MiB records went from ~1 GB/s to the copy's speed).
fn copy_buffer() -> Vec<u8> {
    COPY_BUFFER.with(|slot| slot.take())
}

/// Puts a buffer from [`copy_buffer`] back for the next large get (unless it grew too big).
fn keep_copy_buffer(buf: Vec<u8>) {
    if buf.capacity() <= COPY_KEEP_MAX {
        COPY_BUFFER.with(|slot| slot.set(buf));
    }
}

/// A record `get_map` hands to its decoder only after releasing the get mutex.
enum Later {
    /// An out-of-line record's descriptor: the file is read first.
    OutOfLine(Vec<u8>),
    /// A record larger than [`IN_PLACE_MAX`], copied out of the ring.
    Copied(Vec<u8>),
}

/// Why a raw put failed.
#[derive(Debug)]
pub(crate) enum RawPutError {
    Full,
    Timeout,
    Closed,
    TooLarge { size: usize, max: usize },
    Io(io::Error),
}

/// The largest message accepted, in or out of line.
pub(crate) const MAX_MESSAGE: usize = u32::MAX as usize;

/// An out-of-line message's record: which file holds it and how long it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OutOfLine {
    pid: u32,
    serial: u64,
    len: u64,
}

impl OutOfLine {
    const SIZE: usize = 24;

    fn encode(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        b[..4].copy_from_slice(&self.pid.to_ne_bytes());
        b[8..16].copy_from_slice(&self.serial.to_ne_bytes());
        b[16..].copy_from_slice(&self.len.to_ne_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<OutOfLine> {
        if b.len() != Self::SIZE {
            return None;
        }
        Some(OutOfLine {
            pid: u32::from_ne_bytes(b[..4].try_into().ok()?),
            serial: u64::from_ne_bytes(b[8..16].try_into().ok()?),
            len: u64::from_ne_bytes(b[16..].try_into().ok()?),
        })
    }
}

/// How often, at most, a get that finds an `auto_shutdown` queue empty looks for producers
/// that died (a handle that closes or drops looks at once).
const PRODUCER_SCAN_EVERY: Duration = Duration::from_millis(50);

/// A handle on a queue segment, shared by the clones of one [`ShmQueue`](crate::ShmQueue).
#[derive(Debug)]
pub(crate) struct RawQueue {
    pub(crate) ring: Ring,
    /// When this mapping was made: the origin of `last_scan_ms`.
    born: std::time::Instant,
    /// Milliseconds after `born` of the last look for dead producers (`auto_shutdown` only).
    last_scan_ms: std::sync::atomic::AtomicU64,
}

impl RawQueue {
    /// The handle on `ring`.
    pub(crate) fn new(ring: Ring) -> Self {
        RawQueue {
            ring,
            born: std::time::Instant::now(),
            last_scan_ms: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// After a get found the queue empty: on an `auto_shutdown` queue, at most every
    /// [`PRODUCER_SCAN_EVERY`] (for this mapping), whether the producers are done (dead ones
    /// included), shutting the queue down if so. Whether it is shut down now.
    #[inline]
    fn empty_and_producers_done(&self) -> bool {
        if !self.ring.auto_shutdown() {
            return false;
        }
        self.scan_when_due()
    }

    #[cold]
    fn scan_when_due(&self) -> bool {
        let now = self.born.elapsed().as_millis() as u64;
        let last = self.last_scan_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) < PRODUCER_SCAN_EVERY.as_millis() as u64
            || self
                .last_scan_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return false;
        }
        self.shutdown_if_producers_done()
    }

    fn ool_path(&self, pid: u32, serial: u64) -> PathBuf {
        let segment = self.ring.segment();
        let mut p = crate::segment::companion_prefix(
            &crate::segment::path_of(self.ring.name()),
            segment.ino(),
        );
        p.push(format!("{pid}.{serial}"));
        PathBuf::from(p)
    }

    /// Tries once to encode a record straight into the ring; `Ok(false)` if it does not fit
    /// there now (the caller then takes the general path). If the put mutex is still held by
    /// another at `deadline`, `Full` (for `Deadline::Now`) or `Timeout`.
    #[inline]
    pub(crate) fn try_put_in_place<E>(
        &self,
        deadline: Deadline,
        encode: impl FnOnce(&mut [u8]) -> Result<Option<usize>, E>,
    ) -> Result<Result<bool, E>, RawPutError> {
        let outcome = {
            let locked = match self.ring.lock_until(Side::Put, deadline) {
                Ok(Some(l)) => l,
                // Held past the deadline by a peer: the general path would only wait again.
                Ok(None) if deadline == Deadline::Now => return Err(RawPutError::Full),
                Ok(None) => return Err(RawPutError::Timeout),
                Err(e) => return Err(RawPutError::Io(e)),
            };
            locked
                .put_in_place(KIND_DATA, encode)
                .map_err(RawPutError::Io)?
        };
        match outcome {
            Ok(PutInPlace::Done) => {
                notify(&self.ring.data_signal());
                Ok(Ok(true))
            }
            Ok(PutInPlace::NoRoom) => Ok(Ok(false)),
            Ok(PutInPlace::Closed) => Err(RawPutError::Closed),
            Err(e) => Ok(Err(e)),
        }
    }

    /// After a get: wakes the producers asleep for room, once the room is worth it
    /// ([`Ring::room_worth_waking`]). A producer left asleep with a little room free
    /// re-checks within [`MAX_SLICE`](crate::wait::MAX_SLICE) or at its deadline, or is
    /// woken by a later get.
    #[inline]
    fn notify_room(&self) {
        let signal = self.ring.space_signal();
        if signal.is_armed() && self.ring.room_worth_waking() {
            notify(&signal);
        }
    }

    /// Takes the next message and hands its bytes to `f` (in place in the ring, under the get
    /// mutex, for a record of at most [`IN_PLACE_MAX`] bytes; copied out and after the mutex
    /// is released for a larger one), waiting until `deadline`.
    ///
    /// The record is consumed whatever `f` does: if `f` panics, the head has moved past the
    /// record, the mutex is released and waiting producers are notified as the panic goes on.
    #[inline]
    pub(crate) fn get_map<R>(
        &self,
        deadline: Deadline,
        spin: Duration,
        f: impl Fn(&[u8]) -> R,
    ) -> Result<R, GetError> {
        let once = || {
            let locked = match self.ring.lock_until(Side::Get, deadline) {
                Ok(Some(l)) => l,
                // Held past the deadline by a peer (one decoding slowly, say).
                Ok(None) => return None,
                Err(e) => return Some(Err(GetError::Io(e))),
            };
            let taken = locked.get_with(|kind, bytes| {
                if kind == KIND_OUT_OF_LINE {
                    Err(Later::OutOfLine(bytes.to_vec()))
                } else if bytes.len() > IN_PLACE_MAX {
                    // Decoded after the lock is released: a big decode must not keep other
                    // consumers waiting, and several run in parallel.
                    let mut copy = copy_buffer();
                    copy.clear();
                    copy.extend_from_slice(bytes);
                    Err(Later::Copied(copy))
                } else {
                    Ok(f(bytes))
                }
            });
            match taken {
                Ok(GetWith::Got(r)) => Some(Ok(r)),
                Ok(GetWith::Empty) => Some(Err(GetError::Empty)),
                Ok(GetWith::Closed) => Some(Err(GetError::Closed)),
                Err(e) => Some(Err(GetError::Io(e))),
            }
        };
        // Empty: on an `auto_shutdown` queue whose producers are done, shut down and look again
        // (an item put just before the last producer closed is still handed out).
        let attempt = || match once() {
            Some(Err(GetError::Empty)) if self.empty_and_producers_done() => match once() {
                Some(Err(GetError::Empty)) => None,
                other => other,
            },
            Some(Err(GetError::Empty)) => None,
            other => other,
        };
        let progress = || self.ring.tail_hint();
        let waited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_until(&self.ring.data_signal(), deadline, spin, progress, attempt)
        }));
        let waited = match waited {
            Ok(w) => w,
            Err(panic) => {
                notify(&self.ring.space_signal());
                std::panic::resume_unwind(panic);
            }
        };
        match waited {
            Some(Ok(r)) => {
                self.notify_room();
                match r {
                    Ok(r) => Ok(r),
                    Err(Later::OutOfLine(mut descriptor)) => {
                        self.fetch_out_of_line(&mut descriptor)?;
                        Ok(f(&descriptor))
                    }
                    Err(Later::Copied(bytes)) => {
                        let r = f(&bytes);
                        keep_copy_buffer(bytes);
                        Ok(r)
                    }
                }
            }
            Some(Err(e)) => Err(e),
            None if deadline == Deadline::Now => Err(GetError::Empty),
            None => Err(GetError::Timeout),
        }
    }

    /// Puts `payload`, waiting for room until `deadline`.
    #[inline]
    pub(crate) fn put(
        &self,
        payload: &[u8],
        deadline: Deadline,
        spin: Duration,
    ) -> Result<(), RawPutError> {
        if payload.len() > self.ring.inline_max() {
            return self.put_out_of_line(payload, deadline, spin);
        }
        self.put_record(payload, KIND_DATA, deadline, spin)
    }

    #[inline]
    fn put_record(
        &self,
        payload: &[u8],
        kind: u32,
        deadline: Deadline,
        spin: Duration,
    ) -> Result<(), RawPutError> {
        let attempt = || {
            let locked = match self.ring.lock_until(Side::Put, deadline) {
                Ok(Some(l)) => l,
                // Held past the deadline by a peer (one stopped inside a put, say).
                Ok(None) => return None,
                Err(e) => return Some(Err(RawPutError::Io(e))),
            };
            match locked.put(payload, kind) {
                Ok(PutOutcome::Done) => Some(Ok(())),
                Ok(PutOutcome::Full) => None,
                Ok(PutOutcome::Closed) => Some(Err(RawPutError::Closed)),
                Err(e) => Some(Err(RawPutError::Io(e))),
            }
        };
        let progress = || self.ring.head_hint();
        match wait_until(&self.ring.space_signal(), deadline, spin, progress, attempt) {
            Some(Ok(())) => {
                notify(&self.ring.data_signal());
                Ok(())
            }
            Some(Err(e)) => Err(e),
            None if deadline == Deadline::Now => Err(RawPutError::Full),
            None => Err(RawPutError::Timeout),
        }
    }

    /// Writes a large payload to a file of its own and puts a small record naming it.
    #[cold]
    fn put_out_of_line(
        &self,
        payload: &[u8],
        deadline: Deadline,
        spin: Duration,
    ) -> Result<(), RawPutError> {
        if payload.len() > MAX_MESSAGE {
            return Err(RawPutError::TooLarge {
                size: payload.len(),
                max: MAX_MESSAGE,
            });
        }
        if self.ring.header().misc.closed.load(Ordering::SeqCst) != 0 {
            return Err(RawPutError::Closed);
        }
        if deadline == Deadline::Now && !self.ring.room_hint(OutOfLine::SIZE) {
            // Writing the file only to remove it again costs the whole message's size.
            return Err(RawPutError::Full);
        }
        // The name is taken when a file of an earlier segment of the same queue name is still
        // there (a message in flight when that segment was unlinked, or a leftover from a pid
        // now reused): such a file is someone else's, so take the next serial instead.
        let (rec, path, mut file) = {
            let mut tries = 0;
            loop {
                let rec = OutOfLine {
                    pid: std::process::id(),
                    serial: self
                        .ring
                        .header()
                        .misc
                        .ool_counter
                        .fetch_add(1, Ordering::Relaxed),
                    len: payload.len() as u64,
                };
                let path = self.ool_path(rec.pid, rec.serial);
                match OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_CLOEXEC)
                    .open(&path)
                {
                    Ok(file) => break (rec, path, file),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < 64 => {
                        tries += 1;
                    }
                    Err(e) => return Err(RawPutError::Io(e)),
                }
            }
        };
        if let Err(e) = file.write_all(payload) {
            drop(file);
            let _ = std::fs::remove_file(&path);
            return Err(RawPutError::Io(e));
        }
        drop(file);
        let r = self.put_record(&rec.encode(), KIND_OUT_OF_LINE, deadline, spin);
        if r.is_err() {
            let _ = std::fs::remove_file(&path);
        }
        r
    }

    /// Takes the next payload into `out`, waiting until `deadline`.
    ///
    /// The record is copied out and consumed under the get mutex, the mutex is released and
    /// waiting producers are notified before this returns: whatever the caller then does with
    /// the bytes (a decode that fails or panics) cannot leave it in the ring or the lock held.
    #[inline]
    pub(crate) fn get(
        &self,
        out: &mut Vec<u8>,
        deadline: Deadline,
        spin: Duration,
    ) -> Result<(), GetError> {
        let mut once = || {
            let locked = match self.ring.lock_until(Side::Get, deadline) {
                Ok(Some(l)) => l,
                // Held past the deadline by a peer (one decoding slowly, say).
                Ok(None) => return None,
                Err(e) => return Some(Err(GetError::Io(e))),
            };
            match locked.get(out) {
                Ok(GetOutcome::Got(kind)) => Some(Ok(kind)),
                Ok(GetOutcome::Empty) => Some(Err(GetError::Empty)),
                Ok(GetOutcome::Closed) => Some(Err(GetError::Closed)),
                Err(e) => Some(Err(GetError::Io(e))),
            }
        };
        // As in `get_map`: an `auto_shutdown` queue found empty may be done.
        let attempt = || match once() {
            Some(Err(GetError::Empty)) if self.empty_and_producers_done() => match once() {
                Some(Err(GetError::Empty)) => None,
                other => other,
            },
            Some(Err(GetError::Empty)) => None,
            other => other,
        };
        let progress = || self.ring.tail_hint();
        match wait_until(&self.ring.data_signal(), deadline, spin, progress, attempt) {
            Some(Ok(kind)) => {
                self.notify_room();
                if kind == KIND_OUT_OF_LINE {
                    self.fetch_out_of_line(out)?;
                }
                Ok(())
            }
            Some(Err(e)) => Err(e),
            None if deadline == Deadline::Now => Err(GetError::Empty),
            None => Err(GetError::Timeout),
        }
    }

    #[cold]
    fn fetch_out_of_line(&self, out: &mut Vec<u8>) -> Result<(), GetError> {
        let rec = OutOfLine::decode(out).ok_or_else(|| {
            GetError::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                "corrupt out-of-line record",
            ))
        })?;
        let path = self.ool_path(rec.pid, rec.serial);
        let result = (|| {
            let mut f = std::fs::File::open(&path)?;
            let len = f.metadata()?.len();
            if len != rec.len {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "out-of-line message is {len} bytes, its record says {}",
                        rec.len
                    ),
                ));
            }
            out.clear();
            out.reserve(len as usize);
            f.read_to_end(out)?;
            Ok(())
        })();
        let _ = std::fs::remove_file(&path);
        result.map_err(GetError::Io)
    }

    /// Shuts the queue down for every process and wakes every waiter; with `immediate`, then
    /// discards what is left ([`discard_left`](Self::discard_left)).
    pub(crate) fn shutdown(&self, immediate: bool) -> io::Result<()> {
        {
            let locked = self.ring.lock(Side::Put)?;
            locked.close();
        }
        notify(&self.ring.data_signal());
        notify(&self.ring.space_signal());
        tracing::debug!(queue = self.ring.name(), immediate, "queue shut down");
        if immediate {
            self.discard_left()?;
        }
        Ok(())
    }

    /// Takes out every record left in a shut-down queue and counts each as done, so that
    /// `join` returns once the items already taken are marked done.
    ///
    /// One record at a time: taken under the get mutex as a get takes it (an out-of-line
    /// message's file is removed after), then counted done under the put mutex as `task_done`
    /// does. A process killed in between leaves one record taken and not counted, as a consumer
    /// killed between its `get` and its `task_done` does; one killed before the end leaves the
    /// rest to be drained by the gets, as after `shutdown(false)`. The mutexes are never held
    /// together.
    pub(crate) fn discard_left(&self) -> io::Result<()> {
        let mut discarded = 0u64;
        loop {
            let taken = {
                let locked = self.ring.lock(Side::Get)?;
                locked.get_with(|kind, bytes| (kind == KIND_OUT_OF_LINE).then(|| bytes.to_vec()))?
            };
            match taken {
                GetWith::Got(out_of_line) => {
                    if let Some(rec) = out_of_line.as_deref().and_then(OutOfLine::decode) {
                        let _ = std::fs::remove_file(self.ool_path(rec.pid, rec.serial));
                    }
                    let locked = self.ring.lock(Side::Put)?;
                    // None: every task was marked done already (`task_done` called before
                    // the items were taken): the count stays at zero, as in CPython.
                    locked.task_done();
                    discarded += 1;
                }
                GetWith::Empty | GetWith::Closed => break,
            }
        }
        notify(&self.ring.space_signal());
        notify(&self.ring.join_signal());
        if discarded > 0 {
            tracing::debug!(
                queue = self.ring.name(),
                discarded,
                "shutdown(immediate) discarded the items left"
            );
        }
        Ok(())
    }

    /// On a queue built with `auto_shutdown`: shuts it down (as `shutdown(false)`) if its
    /// producers are done ([`Ring::producers_done`]); whether it is shut down now.
    pub(crate) fn shutdown_if_producers_done(&self) -> bool {
        if !self.ring.auto_shutdown() || !self.ring.producers_done() {
            return false;
        }
        if !self.is_closed() {
            tracing::debug!(
                queue = self.ring.name(),
                "every producer handle has closed or gone: shutting the queue down"
            );
            if let Err(e) = self.shutdown(false) {
                tracing::error!(queue = self.ring.name(), error = %e, "could not shut the queue down");
                return false;
            }
        }
        true
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.ring.header().misc.closed.load(Ordering::SeqCst) != 0
    }

    /// Marks one task done; `Ok(false)` if none was outstanding.
    pub(crate) fn task_done(&self) -> io::Result<bool> {
        let left = {
            let locked = self.ring.lock(Side::Put)?;
            locked.task_done()
        };
        match left {
            None => Ok(false),
            Some(0) => {
                notify(&self.ring.join_signal());
                Ok(true)
            }
            Some(_) => Ok(true),
        }
    }

    /// Waits until no task is outstanding; whether that happened before `deadline`.
    pub(crate) fn join(&self, deadline: Deadline) -> bool {
        wait_until(
            &self.ring.join_signal(),
            deadline,
            Duration::ZERO,
            || 0,
            || (self.ring.unfinished_hint() == 0).then_some(()),
        )
        .is_some()
    }
}
