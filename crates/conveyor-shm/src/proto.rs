//! The ring's index and commit protocol, apart from where its words and bytes live.
//!
//! [`Proto`] is everything a put, a get, a close, a `task_done` and a crash repair do to the
//! ring's shared words (tail, head, their caches, the task count, the redo journal, the closed
//! flag) and to its bytes, *once the caller holds the right side's mutex*. It reaches them
//! through two small traits: [`Word`] for the index words and [`RingBytes`] for the record
//! bytes. The queue (`ring.rs`) instantiates it over the shared mapping (std atomics and raw
//! copies); the model checks instantiate the very same code over loom's atomics and cells
//! (`loom_ring` below, run with `RUSTFLAGS="--cfg loom"`) and over words that "kill" the
//! operation after any store (`crash_model` below), so the protocol that is checked is the
//! one that runs.
//!
//! Record format: an 8-byte header (`len: u32`, `kind: u32`, native endian) followed by `len`
//! payload bytes, padded to a multiple of 8. A record never wraps: when it does not fit before
//! the end of the ring, a `PAD` record fills the rest and the record starts at offset 0.
//!
//! Every index and record header read from shared memory is bounds-checked before use: a
//! corrupt segment produces an `InvalidData` error, never an out-of-bounds access.

use std::io;
use std::sync::atomic::{compiler_fence, Ordering};

use crate::layout::{count, num, pack, pos, used_units, JOURNAL_NONE, JOURNAL_PUT, POS_BITS};

/// Record kinds.
pub(crate) const KIND_DATA: u32 = 1;
pub(crate) const KIND_PAD: u32 = 2;
pub(crate) const KIND_OUT_OF_LINE: u32 = 3;
/// Bytes of a record header: one unit.
pub(crate) const REC_HDR: u64 = 8;

/// Units (8 bytes) taken by a record with `len` payload bytes.
#[inline]
pub(crate) fn record_units(len: u64) -> u64 {
    1 + len.div_ceil(8)
}

/// A shared word (an index word, the journal, the task count, the closed flag).
pub(crate) trait Word {
    /// Loads the word (widened to 64 bits).
    fn load(&self, order: Ordering) -> u64;
    /// Stores the word (truncated to its width).
    fn store(&self, value: u64, order: Ordering);
}

impl Word for std::sync::atomic::AtomicU64 {
    #[inline]
    fn load(&self, order: Ordering) -> u64 {
        std::sync::atomic::AtomicU64::load(self, order)
    }
    #[inline]
    fn store(&self, value: u64, order: Ordering) {
        std::sync::atomic::AtomicU64::store(self, value, order)
    }
}

impl Word for std::sync::atomic::AtomicU32 {
    #[inline]
    fn load(&self, order: Ordering) -> u64 {
        std::sync::atomic::AtomicU32::load(self, order) as u64
    }
    #[inline]
    fn store(&self, value: u64, order: Ordering) {
        std::sync::atomic::AtomicU32::store(self, value as u32, order)
    }
}

/// The ring's bytes.
///
/// # Safety
/// Implementations may assume, and callers (only [`Proto`]) guarantee, that every range lies
/// inside the ring (`off + len <= capacity`), and that the range is owned by the caller: past
/// the tail (free space) under the put mutex, or between head and tail under the get mutex.
pub(crate) unsafe trait RingBytes {
    /// Copies `src` to byte offset `off`.
    ///
    /// # Safety
    /// See the trait.
    unsafe fn write(&self, off: u64, src: &[u8]);
    /// Copies the `len` bytes at `off` to `dst`.
    ///
    /// # Safety
    /// See the trait; besides, `dst` is valid for `len` bytes of writes.
    unsafe fn read(&self, off: u64, dst: *mut u8, len: usize);
    /// Hands the `len` bytes at `off` to `f` for writing, and returns `f`'s result.
    ///
    /// # Safety
    /// See the trait.
    unsafe fn fill<R>(&self, off: u64, len: usize, f: impl FnOnce(&mut [u8]) -> R) -> R;
    /// Hands the `len` bytes at `off` to `f` for reading, and returns `f`'s result.
    ///
    /// # Safety
    /// See the trait.
    unsafe fn with_slice<R>(&self, off: u64, len: usize, f: impl FnOnce(&[u8]) -> R) -> R;
}

/// The shared words a [`Proto`] works on.
#[derive(Clone, Copy)]
pub(crate) struct Words<'a, W, C> {
    /// Producer side: the tail word, the cached head, unfinished tasks, the redo journal.
    pub(crate) tail: &'a W,
    pub(crate) head_cache: &'a W,
    pub(crate) unfinished: &'a W,
    pub(crate) journal: &'a W,
    pub(crate) j_tail: &'a W,
    pub(crate) j_unfinished: &'a W,
    /// Consumer side: the head word, the cached tail, and the get journal: `!head` while a
    /// get decodes the record at `head` in place.
    pub(crate) head: &'a W,
    pub(crate) tail_cache: &'a W,
    pub(crate) taking: &'a W,
    /// Non-zero once closed.
    pub(crate) closed: &'a C,
}

/// Outcome of a put attempt under the put mutex.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PutOutcome {
    Done,
    Full,
    Closed,
}

/// Outcome of a get attempt under the get mutex.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum GetOutcome {
    /// A record of this kind was copied into the buffer.
    Got(u32),
    Empty,
    /// Empty and closed.
    Closed,
}

/// Outcome of a get that hands the record to a closure.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum GetWith<R> {
    /// The closure's result.
    Got(R),
    Empty,
    /// Empty and closed.
    Closed,
}

/// Outcome of a put encoded in place.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PutInPlace {
    Done,
    /// Not enough contiguous room (or the item bound is reached): use the general path.
    NoRoom,
    Closed,
}

/// Which side's mutex is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Put,
    Get,
}

/// What a repair found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Repaired {
    /// A half-done put's journal was replayed.
    pub(crate) replayed: bool,
    /// The record a dead get was decoding was skipped.
    pub(crate) skipped: bool,
    /// The indices are inconsistent even after the repair (a corrupt segment).
    pub(crate) corrupt: bool,
}

/// The protocol over one ring: `cap_units` units of 8 bytes (a power of two), at most
/// `max_items` records (0: no bound), records up to `inline_max` payload bytes.
pub(crate) struct Proto<'a, W, C, B> {
    pub(crate) w: Words<'a, W, C>,
    pub(crate) bytes: &'a B,
    pub(crate) cap_units: u64,
    pub(crate) max_items: u64,
    pub(crate) inline_max: usize,
}

fn corrupt(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

impl<W: Word, C: Word, B: RingBytes> Proto<'_, W, C, B> {
    /// Whether the queue is closed.
    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.w.closed.load(Ordering::SeqCst) != 0
    }

    /// Closes the queue. Holds the put mutex, so that no put commits after it.
    pub(crate) fn close(&self) {
        self.w.closed.store(1, Ordering::SeqCst);
    }

    /// Checks that (head, tail) describe at most a full ring and no more records than units.
    #[inline]
    pub(crate) fn check(&self, head: u64, tail: u64) -> io::Result<()> {
        let used = used_units(head, tail);
        if used > self.cap_units || count(head, tail) > used {
            return Err(corrupt(format!(
                "the queue has corrupt indices (head {head:#x}, tail {tail:#x})"
            )));
        }
        Ok(())
    }

    /// The producers' view of (head, tail), refreshing the cached head when it shows fewer
    /// than `units` free units (or the item bound reached). Holds the put mutex.
    #[inline]
    fn producer_view(&self, units: u64) -> (u64, u64) {
        let tail = self.w.tail.load(Ordering::Relaxed);
        let cached = self.w.head_cache.load(Ordering::Relaxed);
        let used = used_units(cached, tail);
        let roomy = used <= self.cap_units
            && self.cap_units - used >= units
            && (self.max_items == 0 || count(cached, tail) < self.max_items);
        if roomy {
            return (cached, tail);
        }
        let head = self.w.head.load(Ordering::SeqCst);
        self.w.head_cache.store(head, Ordering::Relaxed);
        (head, tail)
    }

    /// The consumers' view of (closed, head, tail), refreshing the cached tail when it shows
    /// no record. `closed` is only meaningful when the view is empty. Holds the get mutex.
    #[inline]
    fn consumer_view(&self) -> (bool, u64, u64) {
        let head = self.w.head.load(Ordering::Relaxed);
        let cached = self.w.tail_cache.load(Ordering::Relaxed);
        if pos(head) != pos(cached) && used_units(head, cached) <= self.cap_units {
            return (false, head, cached);
        }
        // Closed is read before the tail: a close is ordered after every put it follows.
        let closed = self.is_closed();
        let tail = self.w.tail.load(Ordering::SeqCst);
        self.w.tail_cache.store(tail, Ordering::Relaxed);
        (closed, head, tail)
    }

    pub(crate) fn write_record_header(&self, off: u64, len: u32, kind: u32) {
        let mut hdr = [0u8; 8];
        hdr[..4].copy_from_slice(&len.to_ne_bytes());
        hdr[4..].copy_from_slice(&kind.to_ne_bytes());
        debug_assert!(off + 8 <= self.cap_units * 8);
        // SAFETY: callers pass off with off + 8 <= capacity, in the free space past the tail,
        // which the put mutex holder owns.
        unsafe { self.bytes.write(off, &hdr) };
    }

    /// Reads and checks the record header at unit position `p` (which is before `tail`): its
    /// kind is known, it fits before the ring's end and before `tail`; a PAD record reaches
    /// exactly the ring's end. Returns (kind, len, byte offset, units).
    #[inline]
    fn record_at(&self, p: u64, tail: u64) -> Option<(u32, u64, u64, u64)> {
        let off_units = p & (self.cap_units - 1);
        let contiguous = self.cap_units - off_units;
        let avail = pos(tail).wrapping_sub(p) & ((1u64 << POS_BITS) - 1);
        if avail == 0 {
            return None;
        }
        let off = off_units * 8;
        let mut hdr = [0u8; 8];
        // SAFETY: off + 8 <= capacity (off_units < cap_units); the record lies before the
        // tail (avail > 0), so it is owned by the get mutex holder.
        unsafe { self.bytes.read(off, hdr.as_mut_ptr(), 8) };
        let len = u32::from_ne_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]) as u64;
        let kind = u32::from_ne_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]);
        let units = record_units(len);
        if units > contiguous || units > avail {
            return None;
        }
        match kind {
            KIND_PAD if units == contiguous => Some((kind, len, off, units)),
            KIND_DATA | KIND_OUT_OF_LINE => Some((kind, len, off, units)),
            _ => None,
        }
    }

    /// Appends a record of `kind` holding `payload` (at most `inline_max` bytes), if it fits.
    /// Holds the put mutex.
    #[inline]
    pub(crate) fn put(&self, payload: &[u8], kind: u32) -> io::Result<PutOutcome> {
        if self.is_closed() {
            return Ok(PutOutcome::Closed);
        }
        if payload.len() > self.inline_max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a record larger than the ring's inline limit",
            ));
        }
        let cap_units = self.cap_units;
        let size = record_units(payload.len() as u64);
        // Room for the record and a pad before it, at worst.
        let (head, tail) = self.producer_view(size + (cap_units - 1).min(size));
        self.check(head, tail)?;
        if self.max_items != 0 && count(head, tail) >= self.max_items {
            return Ok(PutOutcome::Full);
        }
        let off_units = pos(tail) & (cap_units - 1);
        let contiguous = cap_units - off_units;
        let need = if size <= contiguous {
            size
        } else {
            contiguous + size
        };
        if need > cap_units - used_units(head, tail) {
            return Ok(PutOutcome::Full);
        }
        let mut at = off_units * 8;
        if size > contiguous {
            self.write_record_header(at, ((contiguous - 1) * 8) as u32, KIND_PAD);
            at = 0;
        }
        self.write_record_header(at, payload.len() as u32, kind);
        // SAFETY: at + size * 8 <= capacity (the record fits in the contiguous space at `at`),
        // and the bytes past the tail are free space owned by the put mutex holder: consumers
        // never read past the tail.
        unsafe { self.bytes.write(at + REC_HDR, payload) };
        self.commit_put(tail, need);
        Ok(PutOutcome::Done)
    }

    /// Takes the oldest record, copying its payload into `out` (cleared first) and consuming
    /// it. Holds the get mutex.
    #[inline]
    pub(crate) fn get(&self, out: &mut Vec<u8>) -> io::Result<GetOutcome> {
        let (closed, head, tail) = self.consumer_view();
        self.check(head, tail)?;
        if pos(head) == pos(tail) {
            return Ok(if closed {
                GetOutcome::Closed
            } else {
                GetOutcome::Empty
            });
        }
        let (kind, len, off, next) = self.next_record(head, tail)?;
        out.clear();
        out.reserve(len as usize);
        // SAFETY: record_at checked off + 8 + len <= capacity and that the record lies before
        // the tail, so no producer writes it, and only the get mutex holder reads it until
        // the head moves past it below. `out` has room for `len` bytes (reserved), all of
        // which the read initialises before the length is set.
        unsafe {
            self.bytes
                .read(off + REC_HDR, out.as_mut_ptr(), len as usize);
            out.set_len(len as usize);
        }
        self.w
            .head
            .store(pack(next, num(head) + 1), Ordering::SeqCst);
        Ok(GetOutcome::Got(kind))
    }

    /// The oldest record at or after `head` (skipping a pad): (kind, len, byte offset, new
    /// head position), checked.
    #[inline]
    fn next_record(&self, head: u64, tail: u64) -> io::Result<(u32, u64, u64, u64)> {
        let bad = || {
            corrupt(format!(
                "the queue holds a corrupt record at position {:#x}",
                pos(head)
            ))
        };
        let mut p = pos(head);
        let (mut kind, mut len, mut off, mut units) = self.record_at(p, tail).ok_or_else(bad)?;
        if kind == KIND_PAD {
            p += units;
            (kind, len, off, units) = self.record_at(p, tail).ok_or_else(bad)?;
            if kind == KIND_PAD {
                return Err(bad());
            }
        }
        Ok((kind, len, off, p + units))
    }

    /// Takes the oldest record, handing its kind and payload, in place, to `f`; holds the get
    /// mutex. The record is consumed whatever `f` does: if it panics, the head is moved past
    /// the record before the panic goes on. While `f` runs, `taking` says which record is
    /// being decoded, so that if the process dies there (a kill, or a panic with
    /// `panic = "abort"`) the repair skips that record instead of handing it to the next
    /// consumer, which could die of it in turn.
    #[inline]
    pub(crate) fn get_with<R>(&self, f: impl FnOnce(u32, &[u8]) -> R) -> io::Result<GetWith<R>> {
        let (closed, head, tail) = self.consumer_view();
        self.check(head, tail)?;
        if pos(head) == pos(tail) {
            return Ok(if closed {
                GetWith::Closed
            } else {
                GetWith::Empty
            });
        }
        let (kind, len, off, next) = self.next_record(head, tail)?;
        self.w.taking.store(!head, Ordering::Relaxed);
        compiler_fence(Ordering::SeqCst);
        // SAFETY: next_record checked off + 8 + len <= capacity and that the record lies
        // before the tail, so no producer writes it until the head moves past it below.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe {
            self.bytes
                .with_slice(off + REC_HDR, len as usize, |bytes| f(kind, bytes))
        }));
        compiler_fence(Ordering::SeqCst);
        self.w
            .head
            .store(pack(next, num(head) + 1), Ordering::SeqCst);
        match result {
            Ok(r) => Ok(GetWith::Got(r)),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// Encodes a record of `kind` straight into the free space at the tail, if the encoding
    /// fits there without wrapping (at most `inline_max` bytes). `encode` writes into the
    /// slice it is given and returns the length used, or `None` if the slice was too small.
    /// Holds the put mutex.
    #[inline]
    pub(crate) fn put_in_place<E>(
        &self,
        kind: u32,
        encode: impl FnOnce(&mut [u8]) -> Result<Option<usize>, E>,
    ) -> io::Result<Result<PutInPlace, E>> {
        if self.is_closed() {
            return Ok(Ok(PutInPlace::Closed));
        }
        let cap_units = self.cap_units;
        // A small record's worth of room, at least; a refresh happens when it is missing.
        let (mut head, tail) = self.producer_view(2);
        let off_units = pos(tail) & (cap_units - 1);
        if used_units(head, tail) <= cap_units
            && (cap_units - off_units).min(cap_units - used_units(head, tail)) < cap_units / 4
        {
            // Little contiguous room in the cached view: look at the real head before giving up.
            head = self.w.head.load(Ordering::SeqCst);
            self.w.head_cache.store(head, Ordering::Relaxed);
        }
        self.check(head, tail)?;
        if self.max_items != 0 && count(head, tail) >= self.max_items {
            return Ok(Ok(PutInPlace::NoRoom));
        }
        let room = (cap_units - off_units).min(cap_units - used_units(head, tail));
        if room < 2 {
            return Ok(Ok(PutInPlace::NoRoom));
        }
        let at = off_units * 8;
        let max = (((room - 1) * 8) as usize).min(self.inline_max);
        // SAFETY: at + 8 + max <= capacity (room units fit before the ring's end), and the
        // free space past the tail belongs to the put mutex holder.
        let n = match unsafe { self.bytes.fill(at + REC_HDR, max, encode) } {
            Ok(Some(n)) if n <= max => n,
            Ok(_) => return Ok(Ok(PutInPlace::NoRoom)),
            Err(e) => return Ok(Err(e)),
        };
        self.write_record_header(at, n as u32, kind);
        self.commit_put(tail, record_units(n as u64));
        Ok(Ok(PutInPlace::Done))
    }

    /// Publishes a put of `units` at `tail` through the redo journal: the new values go to
    /// `j_*`, the journal is marked, the live words are stored, the journal is cleared. A
    /// producer killed before the mark leaves the old values; one killed after it leaves a
    /// journal that [`repair`](Proto::repair) replays. The compiler fences keep the stores
    /// in program order, which is the order a killed process leaves them in memory.
    #[inline]
    fn commit_put(&self, tail: u64, units: u64) {
        let w = &self.w;
        let new_tail = pack(pos(tail) + units, num(tail) + 1);
        let unfinished = w.unfinished.load(Ordering::Relaxed).saturating_add(1);
        w.j_tail.store(new_tail, Ordering::Relaxed);
        w.j_unfinished.store(unfinished, Ordering::Relaxed);
        compiler_fence(Ordering::SeqCst);
        w.journal.store(JOURNAL_PUT, Ordering::Relaxed);
        compiler_fence(Ordering::SeqCst);
        // SeqCst: the store that publishes the record, and one side of the wake-up handshake
        // (wait.rs). The task count only grows here: nobody waits for that.
        w.tail.store(new_tail, Ordering::SeqCst);
        w.unfinished.store(unfinished, Ordering::Release);
        compiler_fence(Ordering::SeqCst);
        w.journal.store(JOURNAL_NONE, Ordering::Relaxed);
    }

    /// Marks one task done (holds the put mutex); `None` if none was outstanding, else the
    /// number left.
    pub(crate) fn task_done(&self) -> Option<u64> {
        let u = self.w.unfinished.load(Ordering::Relaxed);
        if u == 0 {
            return None;
        }
        // A single word: no journal needed. SeqCst: `join` waiters read it without the
        // mutex, after registering as sleepers (see wait.rs).
        self.w.unfinished.store(u - 1, Ordering::SeqCst);
        Some(u - 1)
    }

    /// Brings one side back to a consistent state after its mutex holder died (the caller
    /// holds that side's mutex, obtained with `EOWNERDEAD`).
    ///
    /// Put side: a marked journal is replayed (the dead put had written its whole record and
    /// its new values); an unmarked one means the put had not published anything. Get side:
    /// the head word is either old or new; if `taking` shows the dead get was decoding the
    /// record at the head, that record is skipped. Either way the side's cache of the other
    /// side's word is refreshed.
    pub(crate) fn repair(&self, side: Side) -> Repaired {
        let w = &self.w;
        let mut replayed = false;
        if side == Side::Put && w.journal.load(Ordering::Relaxed) == JOURNAL_PUT {
            w.tail
                .store(w.j_tail.load(Ordering::Relaxed), Ordering::SeqCst);
            w.unfinished
                .store(w.j_unfinished.load(Ordering::Relaxed), Ordering::SeqCst);
            compiler_fence(Ordering::SeqCst);
            w.journal.store(JOURNAL_NONE, Ordering::Relaxed);
            replayed = true;
        }
        let mut skipped = false;
        if side == Side::Get {
            let head = w.head.load(Ordering::Relaxed);
            if !w.taking.load(Ordering::Relaxed) == head {
                // The dead consumer was decoding the record at the head: it is the one
                // message a get killed midway may lose.
                let tail = w.tail.load(Ordering::SeqCst);
                if self.check(head, tail).is_ok() && pos(head) != pos(tail) {
                    if let Ok((_, _, _, next)) = self.next_record(head, tail) {
                        w.head.store(pack(next, num(head) + 1), Ordering::SeqCst);
                        skipped = true;
                    }
                }
            }
        }
        let head = w.head.load(Ordering::SeqCst);
        let tail = w.tail.load(Ordering::SeqCst);
        match side {
            Side::Put => w.head_cache.store(head, Ordering::Relaxed),
            Side::Get => w.tail_cache.store(tail, Ordering::Relaxed),
        }
        Repaired {
            replayed,
            skipped,
            corrupt: self.check(head, tail).is_err(),
        }
    }
}

#[cfg(test)]
mod crash_model;

#[cfg(test)]
mod model_common;

#[cfg(all(test, loom))]
mod loom_ring;
