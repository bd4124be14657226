//! The ring of records and the operations done on it under the put and get mutexes.
//!
//! A record is an 8-byte header (`len: u32`, `kind: u32`, native endian) followed by `len`
//! payload bytes, padded to a multiple of 8. A record never wraps: when it does not fit before
//! the end of the ring, a `PAD` record fills the rest and the record starts at offset 0.
//!
//! Producers serialise among themselves with the put mutex and consumers with the get mutex
//! (a two-lock queue): a put and a get never wait for each other. The tail and head are single
//! words (see `layout.rs`), stored `SeqCst` after the record is written (put) or read (get).
//!
//! Crash safety: a put copies its record past the tail and only then publishes the new tail
//! (through the producer's journal, which also carries the task count). A put killed mid-copy
//! leaves nothing visible; the next producer gets `EOWNERDEAD`, replays the journal if a
//! commit was half-done, checks the indices and marks the mutex consistent. A get copies the
//! record out before storing the new head: killed before the store, the record stays for the
//! next consumer; killed after it, that one message is lost.
//!
//! Every index and record header read from shared memory is bounds-checked before use: a
//! corrupt segment produces an `InvalidData` error, never an out-of-bounds access.

use std::io;
use std::sync::atomic::{compiler_fence, Ordering};

use crate::layout::{
    count, num, pack, pos, used_units, QueueHeader, HEADER_SIZE, JOURNAL_NONE, JOURNAL_PUT,
    MAX_RING, MIN_RING, QUEUE_MAGIC,
};
use crate::robust::{Acquired, MutexKind, RobustMutex};
use crate::segment::Segment;
use crate::wait::ShmSignal;
use crate::ShmError;

/// Record kinds.
pub(crate) const KIND_DATA: u32 = 1;
pub(crate) const KIND_PAD: u32 = 2;
pub(crate) const KIND_OUT_OF_LINE: u32 = 3;
/// Bytes of a record header: one unit.
const REC_HDR: u64 = 8;
/// How many times a contended lock is retried before sleeping on it.
const LOCK_TRIES: u32 = 12;

/// Units (8 bytes) taken by a record with `len` payload bytes.
#[inline]
fn record_units(len: u64) -> u64 {
    1 + len.div_ceil(8)
}

/// Outcome of a put attempt under the put mutex.
#[derive(Debug)]
pub(crate) enum PutOutcome {
    Done,
    Full,
    Closed,
}

/// Outcome of a get attempt under the get mutex.
#[derive(Debug)]
pub(crate) enum GetOutcome {
    /// A record of this kind was copied into the buffer.
    Got(u32),
    Empty,
    /// Empty and closed.
    Closed,
}

/// Outcome of a get that hands the record to a closure.
#[derive(Debug)]
pub(crate) enum GetWith<R> {
    /// The closure's result.
    Got(R),
    Empty,
    /// Empty and closed.
    Closed,
}

/// Outcome of a put encoded in place.
#[derive(Debug)]
pub(crate) enum PutInPlace {
    Done,
    /// Not enough contiguous room (or the item bound is reached): use the general path.
    NoRoom,
    Closed,
}

/// Which side's mutex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Put,
    Get,
}

/// A mapped queue segment with its validated configuration.
#[derive(Debug)]
pub(crate) struct Ring {
    seg: Segment,
    /// Capacity in bytes (a power of two).
    capacity: u64,
    max_items: u64,
}

// SAFETY: the raw pointers reached through `seg` point into a MAP_SHARED mapping that lives as
// long as the Ring; shared state there is only touched through atomics or under the robust
// mutexes, which serialise access across threads and processes.
unsafe impl Send for Ring {}
// SAFETY: as above.
unsafe impl Sync for Ring {}

impl Ring {
    /// Creates a queue segment; `capacity` is rounded down to a power of two.
    pub(crate) fn create(
        name: &str,
        capacity: usize,
        max_items: Option<usize>,
        fingerprint: u64,
    ) -> Result<Ring, ShmError> {
        if !(MIN_RING..=MAX_RING).contains(&capacity) {
            return Err(ShmError::InvalidOption(format!(
                "ring size {capacity} bytes is outside {MIN_RING}..={MAX_RING} \
                 (larger messages travel out of line; a larger ring is not needed for them)"
            )));
        }
        if max_items == Some(0) {
            return Err(ShmError::InvalidOption(
                "max_items must be at least 1 (use None for no bound)".into(),
            ));
        }
        let capacity = 1usize << capacity.ilog2();
        let max = max_items.map(|m| m as u64).unwrap_or(0);
        let seg = Segment::create(
            name,
            HEADER_SIZE + capacity,
            QUEUE_MAGIC,
            HEADER_SIZE,
            fingerprint,
            |base| {
                // SAFETY: the mapping is HEADER_SIZE + capacity bytes, page aligned, zeroed,
                // and not yet visible to openers (the magic is not published).
                let h = unsafe { &*(base as *const QueueHeader) };
                h.config
                    .ring_offset
                    .store(HEADER_SIZE as u64, Ordering::Relaxed);
                h.config
                    .ring_capacity
                    .store(capacity as u64, Ordering::Relaxed);
                h.config.max_items.store(max, Ordering::Relaxed);
                for m in [&h.put_lock.mutex, &h.get_lock.mutex] {
                    // SAFETY: the mutex memory is inside the mapping, aligned, and unused.
                    unsafe {
                        RobustMutex::init(
                            m as *const RobustMutex as *mut RobustMutex,
                            MutexKind::ErrorCheck,
                        )?
                    };
                }
                Ok(())
            },
        )?;
        Ok(Ring {
            seg,
            capacity: capacity as u64,
            max_items: max,
        })
    }

    /// Opens a queue segment and validates its header against the file and `fingerprint`.
    pub(crate) fn open(
        name: &str,
        fingerprint: u64,
        type_name: &'static str,
    ) -> Result<Ring, ShmError> {
        let seg = Segment::open(name, QUEUE_MAGIC, "queue", HEADER_SIZE)?;
        let found = seg.common().fingerprint.load(Ordering::Relaxed);
        if found != fingerprint {
            return Err(ShmError::TypeMismatch {
                name: name.to_string(),
                type_name,
                expected: fingerprint,
                found,
            });
        }
        // SAFETY: Segment::open checked the mapping is exactly total_len >= HEADER_SIZE bytes.
        let h = unsafe { &*(seg.base() as *const QueueHeader) };
        let off = h.config.ring_offset.load(Ordering::Relaxed);
        let cap = h.config.ring_capacity.load(Ordering::Relaxed);
        if off != HEADER_SIZE as u64 {
            return Err(ShmError::corrupt(name, format!("ring offset {off}")));
        }
        if !cap.is_power_of_two() || !(MIN_RING as u64..=MAX_RING as u64).contains(&cap) {
            return Err(ShmError::corrupt(name, format!("ring capacity {cap}")));
        }
        if off.checked_add(cap) != Some(seg.len() as u64) {
            return Err(ShmError::Truncated {
                name: name.to_string(),
                expected: off.saturating_add(cap),
                actual: seg.len() as u64,
            });
        }
        let max_items = h.config.max_items.load(Ordering::Relaxed);
        Ok(Ring {
            seg,
            capacity: cap,
            max_items,
        })
    }

    #[inline]
    pub(crate) fn header(&self) -> &QueueHeader {
        // SAFETY: create/open established the mapping holds a whole QueueHeader at offset 0;
        // it lives as long as `self`; shared fields are atomics or the pthread mutexes.
        unsafe { &*(self.seg.base() as *const QueueHeader) }
    }

    #[inline]
    fn ring_base(&self) -> *mut u8 {
        // SAFETY: HEADER_SIZE is within the mapping (validated at create/open).
        unsafe { self.seg.base().add(HEADER_SIZE) }
    }

    #[inline]
    fn cap_units(&self) -> u64 {
        self.capacity / 8
    }

    pub(crate) fn name(&self) -> &str {
        self.seg.name()
    }

    pub(crate) fn segment(&self) -> &Segment {
        &self.seg
    }

    pub(crate) fn capacity_bytes(&self) -> usize {
        self.capacity as usize
    }

    pub(crate) fn max_items(&self) -> Option<usize> {
        (self.max_items != 0).then_some(self.max_items as usize)
    }

    /// The largest payload stored in the ring itself; larger ones go out of line.
    pub(crate) fn inline_max(&self) -> usize {
        (self.capacity / 2 - REC_HDR) as usize
    }

    pub(crate) fn data_signal(&self) -> ShmSignal<'_> {
        let h = self.header();
        ShmSignal {
            seq: &h.put_lock.signal.seq,
            waiters: &h.put_lock.signal.waiters,
        }
    }

    pub(crate) fn space_signal(&self) -> ShmSignal<'_> {
        let h = self.header();
        ShmSignal {
            seq: &h.get_lock.signal.seq,
            waiters: &h.get_lock.signal.waiters,
        }
    }

    pub(crate) fn join_signal(&self) -> ShmSignal<'_> {
        let h = self.header();
        ShmSignal {
            seq: &h.misc.join_seq,
            waiters: &h.misc.join_waiters,
        }
    }

    /// Takes one side's mutex, repairing that side first if its previous owner died.
    ///
    /// Critical sections are short (a bounds check and a copy), so a contended lock is first
    /// retried a few times with a growing pause: glibc's robust mutexes do not spin, and
    /// sleeping in the kernel for every collision costs a system call on each side.
    pub(crate) fn lock(&self, side: Side) -> io::Result<Locked<'_>> {
        let m = match side {
            Side::Put => &self.header().put_lock.mutex,
            Side::Get => &self.header().get_lock.mutex,
        };
        let mut acquired = None;
        let mut pause = 1u32;
        for _ in 0..LOCK_TRIES {
            match m.try_lock() {
                Ok(a) => {
                    acquired = Some(a);
                    break;
                }
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    for _ in 0..pause {
                        std::hint::spin_loop();
                    }
                    pause = (pause * 2).min(64);
                }
                Err(e) => return Err(e),
            }
        }
        let acquired = match acquired {
            Some(a) => a,
            None => m.lock()?,
        };
        if acquired == Acquired::OwnerDied {
            self.repair(side);
            m.make_consistent()?;
        }
        Ok(Locked {
            ring: self,
            mutex: m,
            side,
        })
    }

    /// Brings one side back to a consistent state after its mutex holder died.
    #[cold]
    fn repair(&self, side: Side) {
        let h = self.header();
        let mut replayed = false;
        if side == Side::Put {
            let p = &h.producer;
            if p.journal.load(Ordering::Relaxed) == JOURNAL_PUT {
                p.tail
                    .store(p.j_tail.load(Ordering::Relaxed), Ordering::SeqCst);
                p.unfinished
                    .store(p.j_unfinished.load(Ordering::Relaxed), Ordering::SeqCst);
                compiler_fence(Ordering::SeqCst);
                p.journal.store(JOURNAL_NONE, Ordering::Relaxed);
                replayed = true;
            }
        }
        // A dead consumer needs nothing: its head word is either old or new. The caches are
        // refreshed from the real words.
        let head = h.consumer.head.load(Ordering::SeqCst);
        let tail = h.producer.tail.load(Ordering::SeqCst);
        match side {
            Side::Put => h.producer.head_cache.store(head, Ordering::Relaxed),
            Side::Get => h.consumer.tail_cache.store(tail, Ordering::Relaxed),
        }
        if used_units(head, tail) > self.cap_units() {
            tracing::error!(
                queue = self.name(),
                head,
                tail,
                "queue indices are corrupt after a crash"
            );
        }
        h.misc.recoveries.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            queue = self.name(),
            side = ?side,
            journal_replayed = replayed,
            "a process died holding a queue lock: queue repaired"
        );
        // Whoever the dead process would have woken must not wait for a slice to pass.
        crate::wait::notify(&self.data_signal(), u32::MAX);
        crate::wait::notify(&self.space_signal(), u32::MAX);
    }

    /// Reads and checks the record header at unit position `p` (which is before `tail`): its
    /// kind is known, it fits before the ring's end and before `tail`; a PAD record reaches
    /// exactly the ring's end. Returns (kind, len, byte offset, units).
    fn record_at(&self, p: u64, tail: u64) -> Option<(u32, u64, u64, u64)> {
        let off_units = p & (self.cap_units() - 1);
        let contiguous = self.cap_units() - off_units;
        let avail = pos(tail).wrapping_sub(p) & ((1u64 << crate::layout::POS_BITS) - 1);
        let off = off_units * 8;
        let mut hdr = [0u8; 8];
        // SAFETY: off + 8 <= capacity (off_units < cap_units), so the 8 bytes are inside the
        // ring; the record lies before the tail, so no producer writes it meanwhile.
        unsafe {
            std::ptr::copy_nonoverlapping(self.ring_base().add(off as usize), hdr.as_mut_ptr(), 8)
        };
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

    fn write_record_header(&self, off: u64, len: u32, kind: u32) {
        let mut hdr = [0u8; 8];
        hdr[..4].copy_from_slice(&len.to_ne_bytes());
        hdr[4..].copy_from_slice(&kind.to_ne_bytes());
        // SAFETY: callers pass off with off + 8 <= capacity; the bytes past the tail belong to
        // the put mutex holder.
        unsafe {
            std::ptr::copy_nonoverlapping(hdr.as_ptr(), self.ring_base().add(off as usize), 8)
        };
    }

    fn check(&self, head: u64, tail: u64) -> io::Result<()> {
        let used = used_units(head, tail);
        if used > self.cap_units() || count(head, tail) > used {
            return Err(corrupt(format!(
                "queue {:?} has corrupt indices (head {head:#x}, tail {tail:#x})",
                self.name()
            )));
        }
        Ok(())
    }

    /// The number of items, read without a mutex (approximate while others work).
    pub(crate) fn len_hint(&self) -> usize {
        let h = self.header();
        let head = h.consumer.head.load(Ordering::Relaxed);
        let tail = h.producer.tail.load(Ordering::Relaxed);
        if used_units(head, tail) > self.cap_units() {
            return 0;
        }
        count(head, tail) as usize
    }

    /// Whether a small put would find no room now (approximate).
    pub(crate) fn full_hint(&self) -> bool {
        let h = self.header();
        let head = h.consumer.head.load(Ordering::Relaxed);
        let tail = h.producer.tail.load(Ordering::Relaxed);
        if self.max_items != 0 && count(head, tail) >= self.max_items {
            return true;
        }
        used_units(head, tail) + 2 > self.cap_units()
    }

    /// The tail word, read without a mutex: it moves on every put.
    #[inline]
    pub(crate) fn tail_hint(&self) -> u64 {
        self.header().producer.tail.load(Ordering::Relaxed)
    }

    /// The head word, read without a mutex: it moves on every get.
    #[inline]
    pub(crate) fn head_hint(&self) -> u64 {
        self.header().consumer.head.load(Ordering::Relaxed)
    }

    /// Unfinished tasks, read without a mutex.
    pub(crate) fn unfinished_hint(&self) -> u64 {
        self.header().producer.unfinished.load(Ordering::SeqCst)
    }

    /// How many times a process died holding a mutex and the queue was repaired.
    pub(crate) fn recoveries(&self) -> u64 {
        self.header().misc.recoveries.load(Ordering::Relaxed)
    }
}

fn corrupt(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// Proof of holding one side's mutex; unlocks on drop.
pub(crate) struct Locked<'a> {
    ring: &'a Ring,
    mutex: &'a RobustMutex,
    side: Side,
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.mutex.unlock() {
            tracing::error!(queue = self.ring.name(), error = %e, "could not unlock the queue");
        }
    }
}

impl Locked<'_> {
    /// The producers' view of (head, tail), refreshing the cached head when it shows fewer
    /// than `units` free units (or the item bound reached). Holds the put mutex.
    fn producer_view(&self, units: u64) -> (u64, u64) {
        let r = self.ring;
        let p = &r.header().producer;
        let tail = p.tail.load(Ordering::Relaxed);
        let cached = p.head_cache.load(Ordering::Relaxed);
        let used = used_units(cached, tail);
        let roomy = used <= r.cap_units()
            && r.cap_units() - used >= units
            && (r.max_items == 0 || count(cached, tail) < r.max_items);
        if roomy {
            return (cached, tail);
        }
        let head = r.header().consumer.head.load(Ordering::SeqCst);
        p.head_cache.store(head, Ordering::Relaxed);
        (head, tail)
    }

    /// The consumers' view of (closed, head, tail), refreshing the cached tail when it shows
    /// no record. `closed` is only meaningful when the view is empty. Holds the get mutex.
    fn consumer_view(&self) -> (bool, u64, u64) {
        let r = self.ring;
        let c = &r.header().consumer;
        let head = c.head.load(Ordering::Relaxed);
        let cached = c.tail_cache.load(Ordering::Relaxed);
        if pos(head) != pos(cached) && used_units(head, cached) <= r.cap_units() {
            return (false, head, cached);
        }
        // Closed is read before the tail: a close is ordered after every put it follows.
        let closed = self.is_closed();
        let tail = r.header().producer.tail.load(Ordering::SeqCst);
        c.tail_cache.store(tail, Ordering::Relaxed);
        (closed, head, tail)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.ring.header().misc.closed.load(Ordering::SeqCst) != 0
    }

    /// Closes the queue (under the put mutex, so that no put commits after it).
    pub(crate) fn close(&self) {
        debug_assert_eq!(self.side, Side::Put);
        self.ring.header().misc.closed.store(1, Ordering::SeqCst);
    }

    /// Appends a record of `kind` holding `payload` (at most `inline_max` bytes), if it fits.
    /// Holds the put mutex.
    pub(crate) fn put(&self, payload: &[u8], kind: u32) -> io::Result<PutOutcome> {
        debug_assert_eq!(self.side, Side::Put);
        if self.is_closed() {
            return Ok(PutOutcome::Closed);
        }
        debug_assert!(payload.len() <= self.ring.inline_max());
        let r = self.ring;
        let size = record_units(payload.len() as u64);
        // Room for the record and a pad before it, at worst.
        let (head, tail) = self.producer_view(size + (r.cap_units() - 1).min(size));
        r.check(head, tail)?;
        if r.max_items != 0 && count(head, tail) >= r.max_items {
            return Ok(PutOutcome::Full);
        }
        let cap_units = r.cap_units();
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
            r.write_record_header(at, ((contiguous - 1) * 8) as u32, KIND_PAD);
            at = 0;
        }
        r.write_record_header(at, payload.len() as u32, kind);
        // SAFETY: at + size * 8 <= capacity (checked above: the record fits in the contiguous
        // space at `at`), and the bytes past the tail are free space owned by the put mutex
        // holder: consumers never read past the tail.
        unsafe {
            std::ptr::copy_nonoverlapping(
                payload.as_ptr(),
                r.ring_base().add((at + REC_HDR) as usize),
                payload.len(),
            );
        }
        self.commit_put(tail, need);
        Ok(PutOutcome::Done)
    }

    /// Takes the oldest record, copying its payload into `out` (cleared first). Holds the get
    /// mutex.
    pub(crate) fn get(&self, out: &mut Vec<u8>) -> io::Result<GetOutcome> {
        Ok(
            match self.get_with(|kind, bytes| {
                out.clear();
                out.extend_from_slice(bytes);
                kind
            })? {
                GetWith::Got(kind) => GetOutcome::Got(kind),
                GetWith::Empty => GetOutcome::Empty,
                GetWith::Closed => GetOutcome::Closed,
            },
        )
    }

    /// Takes the oldest record, handing its kind and payload (in place, in the ring) to `f`.
    /// The record is consumed whatever `f` returns. Holds the get mutex.
    pub(crate) fn get_with<R>(&self, f: impl FnOnce(u32, &[u8]) -> R) -> io::Result<GetWith<R>> {
        debug_assert_eq!(self.side, Side::Get);
        let r = self.ring;
        let c = &r.header().consumer;
        let (closed, head, tail) = self.consumer_view();
        r.check(head, tail)?;
        if pos(head) == pos(tail) {
            return Ok(if closed {
                GetWith::Closed
            } else {
                GetWith::Empty
            });
        }
        let bad = || {
            corrupt(format!(
                "queue {:?} holds a corrupt record at position {:#x}",
                r.name(),
                pos(head)
            ))
        };
        let mut p = pos(head);
        let (mut kind, mut len, mut off, mut units) = r.record_at(p, tail).ok_or_else(bad)?;
        if kind == KIND_PAD {
            p += units;
            (kind, len, off, units) = r.record_at(p, tail).ok_or_else(bad)?;
            if kind == KIND_PAD {
                return Err(bad());
            }
        }
        // SAFETY: record_at checked off + 8 + len <= capacity; the record lies before the
        // tail, so no producer writes it, and only the get mutex holder reads it until the
        // head moves past it below.
        let bytes = unsafe {
            std::slice::from_raw_parts(r.ring_base().add((off + REC_HDR) as usize), len as usize)
        };
        let result = f(kind, bytes);
        c.head
            .store(pack(p + units, num(head) + 1), Ordering::SeqCst);
        Ok(GetWith::Got(result))
    }

    /// Encodes a record of `kind` straight into the free space at the tail, if the encoding
    /// fits there without wrapping (at most `inline_max` bytes). `encode` writes into the
    /// slice it is given and returns the length used, or `None` if the slice was too small.
    /// Holds the put mutex.
    pub(crate) fn put_in_place<E>(
        &self,
        kind: u32,
        encode: impl FnOnce(&mut [u8]) -> Result<Option<usize>, E>,
    ) -> io::Result<Result<PutInPlace, E>> {
        debug_assert_eq!(self.side, Side::Put);
        if self.is_closed() {
            return Ok(Ok(PutInPlace::Closed));
        }
        let r = self.ring;
        // A small record's worth of room, at least; a refresh happens when it is missing.
        let (mut head, tail) = self.producer_view(2);
        let off_units = pos(tail) & (r.cap_units() - 1);
        if used_units(head, tail) <= r.cap_units()
            && (r.cap_units() - off_units).min(r.cap_units() - used_units(head, tail))
                < r.cap_units() / 4
        {
            // Little contiguous room in the cached view: look at the real head before giving up.
            head = r.header().consumer.head.load(Ordering::SeqCst);
            r.header()
                .producer
                .head_cache
                .store(head, Ordering::Relaxed);
        }
        r.check(head, tail)?;
        if r.max_items != 0 && count(head, tail) >= r.max_items {
            return Ok(Ok(PutInPlace::NoRoom));
        }
        let cap_units = r.cap_units();
        let room = (cap_units - off_units).min(cap_units - used_units(head, tail));
        if room < 2 {
            return Ok(Ok(PutInPlace::NoRoom));
        }
        let at = off_units * 8;
        let max = (((room - 1) * 8) as usize).min(r.inline_max());
        // SAFETY: at + 8 + max <= capacity (room units fit before the ring's end), and the
        // free space past the tail belongs to the put mutex holder: consumers never read
        // past the tail, and other producers wait for the mutex.
        let slice = unsafe {
            std::slice::from_raw_parts_mut(r.ring_base().add((at + REC_HDR) as usize), max)
        };
        let n = match encode(slice) {
            Ok(Some(n)) if n <= max => n,
            Ok(_) => return Ok(Ok(PutInPlace::NoRoom)),
            Err(e) => return Ok(Err(e)),
        };
        r.write_record_header(at, n as u32, kind);
        self.commit_put(tail, record_units(n as u64));
        Ok(Ok(PutInPlace::Done))
    }

    /// Publishes a put of `units` at `tail` through the journal (see `Producer`).
    fn commit_put(&self, tail: u64, units: u64) {
        let p = &self.ring.header().producer;
        let new_tail = pack(pos(tail) + units, num(tail) + 1);
        let unfinished = p.unfinished.load(Ordering::Relaxed).saturating_add(1);
        p.j_tail.store(new_tail, Ordering::Relaxed);
        p.j_unfinished.store(unfinished, Ordering::Relaxed);
        compiler_fence(Ordering::SeqCst);
        p.journal.store(JOURNAL_PUT, Ordering::Relaxed);
        compiler_fence(Ordering::SeqCst);
        p.tail.store(new_tail, Ordering::SeqCst);
        p.unfinished.store(unfinished, Ordering::SeqCst);
        compiler_fence(Ordering::SeqCst);
        p.journal.store(JOURNAL_NONE, Ordering::Relaxed);
    }

    /// Marks one task done under the put mutex; `None` if none was outstanding, else the
    /// number left.
    pub(crate) fn task_done(&self) -> Option<u64> {
        debug_assert_eq!(self.side, Side::Put);
        let p = &self.ring.header().producer;
        let u = p.unfinished.load(Ordering::Relaxed);
        if u == 0 {
            return None;
        }
        // A single word: no journal needed. SeqCst: `join` waiters read it without the
        // mutex, after registering as sleepers (see wait.rs).
        p.unfinished.store(u - 1, Ordering::SeqCst);
        Some(u - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(cap: usize) -> Ring {
        Ring::create(&crate::segment::anonymous_name("ring-test"), cap, None, 1).unwrap()
    }

    fn put(r: &Ring, payload: &[u8]) {
        assert!(matches!(
            r.lock(Side::Put).unwrap().put(payload, KIND_DATA).unwrap(),
            PutOutcome::Done
        ));
    }

    fn get(r: &Ring) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        match r.lock(Side::Get).unwrap().get(&mut out).unwrap() {
            GetOutcome::Got(_) => Some(out),
            _ => None,
        }
    }

    #[test]
    fn capacity_is_rounded_to_a_power_of_two_and_wraps() {
        let r = ring(1000);
        assert_eq!(r.capacity_bytes(), 512);
        for i in 0..2000u32 {
            let payload = vec![i as u8; (i % 50) as usize];
            put(&r, &payload);
            assert_eq!(r.len_hint(), 1);
            assert_eq!(get(&r).unwrap(), payload);
        }
        assert_eq!(get(&r), None);
    }

    #[test]
    fn repair_replays_a_half_done_put() {
        let r = ring(1024);
        put(&r, b"one");
        let p = &r.header().producer;
        let tail = p.tail.load(Ordering::Relaxed);
        // A put that died after writing its record and journal, before the live words.
        r.write_record_header(pos(tail) * 8 % 1024, 3, KIND_DATA);
        // SAFETY: inside the ring, past the tail, nobody else uses this test ring.
        unsafe {
            std::ptr::copy_nonoverlapping(
                b"two".as_ptr(),
                r.ring_base().add((pos(tail) * 8 % 1024 + 8) as usize),
                3,
            )
        };
        p.j_tail
            .store(pack(pos(tail) + 2, num(tail) + 1), Ordering::Relaxed);
        p.j_unfinished.store(2, Ordering::Relaxed);
        p.journal.store(JOURNAL_PUT, Ordering::Relaxed);
        r.repair(Side::Put);
        assert_eq!(p.journal.load(Ordering::Relaxed), JOURNAL_NONE);
        assert_eq!(r.unfinished_hint(), 2);
        assert_eq!(get(&r).unwrap(), b"one");
        assert_eq!(get(&r).unwrap(), b"two");
        assert_eq!(get(&r), None);
    }

    #[test]
    fn an_uncommitted_record_is_invisible() {
        let r = ring(1024);
        put(&r, b"kept");
        let tail = r.header().producer.tail.load(Ordering::Relaxed);
        // A put that died mid-copy: bytes past the tail, the tail not advanced.
        r.write_record_header(pos(tail) * 8 % 1024, 500, KIND_DATA);
        r.repair(Side::Put);
        assert_eq!(r.len_hint(), 1);
        assert_eq!(get(&r).unwrap(), b"kept");
        assert_eq!(get(&r), None);
        put(&r, b"after");
        assert_eq!(get(&r).unwrap(), b"after");
    }

    #[test]
    fn corrupt_indices_and_records_are_an_error_not_a_panic() {
        let r = ring(1024);
        put(&r, b"x");
        let p = &r.header().producer;
        let good = p.tail.load(Ordering::Relaxed);
        p.tail.store(pack(1 << 30, 0), Ordering::Relaxed);
        let mut out = Vec::new();
        let e = r.lock(Side::Get).unwrap().get(&mut out).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(r.lock(Side::Put).unwrap().put(b"y", KIND_DATA).is_err());
        p.tail.store(good, Ordering::Relaxed);
        let head = r.header().consumer.head.load(Ordering::Relaxed);
        r.write_record_header(pos(head) * 8 % 1024, u32::MAX, KIND_DATA);
        assert!(r.lock(Side::Get).unwrap().get(&mut out).is_err());
        r.write_record_header(pos(head) * 8 % 1024, 1, 77);
        assert!(r.lock(Side::Get).unwrap().get(&mut out).is_err());
        r.write_record_header(pos(head) * 8 % 1024, 1, KIND_DATA);
        assert!(r.lock(Side::Get).unwrap().get(&mut out).is_ok());
    }
}
