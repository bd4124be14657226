//! The ring of records and the operations done on it while holding the robust mutex.
//!
//! A record is an 8-byte header (`len: u32`, `kind: u32`, native endian) followed by `len`
//! payload bytes, padded to a multiple of 8. A record never wraps: when it does not fit before
//! the end of the ring, a `PAD` record fills the rest and the record starts at offset 0.
//!
//! Commit protocol (crash safety): a put copies its record past `tail` while holding the mutex,
//! and only then advances `tail` (through the journal, see [`Guarded`]). A put killed mid-copy
//! therefore leaves nothing visible; the next owner gets `EOWNERDEAD`, replays the journal if a
//! commit was half-done, re-validates the indices, recounts the records and marks the mutex
//! consistent. A get copies the record out before advancing `head`: killed before the advance,
//! the record stays for the next consumer; killed after it, that one message is lost.
//!
//! Every index read from shared memory is bounds-checked before use: a corrupt segment
//! produces an `InvalidData` error, never an out-of-bounds access.
//!
//! [`Guarded`]: crate::layout::Guarded

use std::io;
use std::sync::atomic::{compiler_fence, Ordering};

use crate::layout::{
    QueueHeader, HEADER_SIZE, JOURNAL_GET, JOURNAL_NONE, JOURNAL_PUT, MAX_RING, MIN_RING,
    QUEUE_MAGIC,
};
use crate::robust::{Acquired, MutexKind, RobustMutex};
use crate::segment::Segment;
use crate::wait::ShmSignal;
use crate::ShmError;

/// Record kinds.
pub(crate) const KIND_DATA: u32 = 1;
pub(crate) const KIND_PAD: u32 = 2;
pub(crate) const KIND_OUT_OF_LINE: u32 = 3;
const REC_HDR: u64 = 8;
/// How many times a contended lock is retried before sleeping on it.
const LOCK_TRIES: u32 = 12;

#[inline]
fn align8(n: u64) -> u64 {
    (n + 7) & !7
}

/// The bytes a record with `len` payload bytes takes in the ring.
#[inline]
pub(crate) fn record_size(len: usize) -> u64 {
    REC_HDR + align8(len as u64)
}

/// The ring indices as read under the mutex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Indices {
    head: u64,
    tail: u64,
    count: u64,
    unfinished: u64,
}

/// Outcome of a put attempt under the mutex.
#[derive(Debug)]
pub(crate) enum PutOutcome {
    Done,
    Full,
    Closed,
}

/// Outcome of a get attempt under the mutex.
#[derive(Debug)]
pub(crate) enum GetOutcome {
    /// A record of this kind was copied into the buffer.
    Got(u32),
    Empty,
    /// Empty and closed.
    Closed,
}

/// A mapped queue segment with its validated configuration.
#[derive(Debug)]
pub(crate) struct Ring {
    seg: Segment,
    capacity: u64,
    max_items: u64,
}

// SAFETY: the raw pointers reached through `seg` point into a MAP_SHARED mapping that lives as
// long as the Ring; shared state there is only touched through atomics or under the robust
// mutex, which serialises access across threads and processes.
unsafe impl Send for Ring {}
// SAFETY: as above.
unsafe impl Sync for Ring {}

impl Ring {
    /// Creates a queue segment.
    pub(crate) fn create(
        name: &str,
        capacity: usize,
        max_items: Option<usize>,
        fingerprint: u64,
    ) -> Result<Ring, ShmError> {
        if !(MIN_RING..=MAX_RING).contains(&capacity) {
            return Err(ShmError::InvalidOption(format!(
                "ring size {capacity} bytes is outside {MIN_RING}..={MAX_RING}"
            )));
        }
        if max_items == Some(0) {
            return Err(ShmError::InvalidOption(
                "max_items must be at least 1 (use None for no bound)".into(),
            ));
        }
        let capacity = capacity & !7;
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
                // SAFETY: the mutex memory is inside the mapping, aligned, and unused.
                unsafe {
                    RobustMutex::init(
                        std::ptr::addr_of!(h.lock.mutex) as *mut RobustMutex,
                        MutexKind::ErrorCheck,
                    )
                }
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
        if cap % 8 != 0 || !(MIN_RING as u64..=MAX_RING as u64).contains(&cap) {
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
        // it lives as long as `self`; shared fields are atomics or the pthread mutex.
        unsafe { &*(self.seg.base() as *const QueueHeader) }
    }

    #[inline]
    fn ring_base(&self) -> *mut u8 {
        // SAFETY: HEADER_SIZE is within the mapping (validated at create/open).
        unsafe { self.seg.base().add(HEADER_SIZE) }
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
            seq: &h.lock.data.seq,
            waiters: &h.lock.data.waiters,
        }
    }

    pub(crate) fn space_signal(&self) -> ShmSignal<'_> {
        let h = self.header();
        ShmSignal {
            seq: &h.lock.space.seq,
            waiters: &h.lock.space.waiters,
        }
    }

    pub(crate) fn join_signal(&self) -> ShmSignal<'_> {
        let h = self.header();
        ShmSignal {
            seq: &h.misc.join_seq,
            waiters: &h.misc.join_waiters,
        }
    }

    /// Takes the mutex, repairing the ring first if its previous owner died.
    ///
    /// Critical sections are short (a bounds check and a copy), so a contended lock is first
    /// retried a few times with a growing pause: glibc's robust mutexes do not spin, and
    /// sleeping in the kernel for every collision between a producer and a consumer costs a
    /// system call on each side.
    pub(crate) fn lock(&self) -> io::Result<Locked<'_>> {
        let m = &self.header().lock.mutex;
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
        match acquired {
            Acquired::Clean => {}
            Acquired::OwnerDied => {
                self.repair();
                m.make_consistent()?;
            }
        }
        Ok(Locked { ring: self })
    }

    /// Brings the indices back to a consistent state after a holder died.
    #[cold]
    fn repair(&self) {
        let st = &self.header().state;
        let journal = st.journal.load(Ordering::Relaxed);
        let replayed = journal != JOURNAL_NONE;
        let (j1, j2, j3) = (
            st.j1.load(Ordering::Relaxed),
            st.j2.load(Ordering::Relaxed),
            st.j3.load(Ordering::Relaxed),
        );
        match journal {
            JOURNAL_PUT => {
                st.tail.store(j1, Ordering::Relaxed);
                st.count.store(j2, Ordering::Relaxed);
                st.unfinished.store(j3, Ordering::Relaxed);
            }
            JOURNAL_GET => {
                st.head.store(j1, Ordering::Relaxed);
                st.count.store(j2, Ordering::Relaxed);
            }
            _ => {}
        }
        if replayed {
            compiler_fence(Ordering::SeqCst);
            st.journal.store(JOURNAL_NONE, Ordering::Relaxed);
        }
        let head = st.head.load(Ordering::Relaxed);
        let tail = st.tail.load(Ordering::Relaxed);
        let sane = head <= tail && tail - head <= self.capacity && head % 8 == 0 && tail % 8 == 0;
        let (new_tail, count) = if sane {
            self.walk(head, tail)
        } else {
            (head & !7, 0)
        };
        let new_head = if sane { head } else { head & !7 };
        if new_tail != tail || !sane {
            tracing::error!(
                queue = self.name(),
                head,
                tail,
                new_tail,
                "queue indices were corrupt after a crash: records past the last valid one dropped"
            );
        }
        st.head.store(new_head, Ordering::Relaxed);
        st.tail.store(new_tail, Ordering::Relaxed);
        st.count.store(count, Ordering::Relaxed);
        self.header()
            .misc
            .recoveries
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            queue = self.name(),
            journal_replayed = replayed,
            items = count,
            "a process died holding the queue lock: queue repaired"
        );
        // Whoever the dead process would have woken must not wait for a slice to pass.
        crate::wait::notify(&self.data_signal(), u32::MAX);
        crate::wait::notify(&self.space_signal(), u32::MAX);
    }

    /// Walks the records in `head..tail`; returns the end of the last valid one and the number
    /// of data records before it.
    fn walk(&self, head: u64, tail: u64) -> (u64, u64) {
        let mut pos = head;
        let mut count = 0;
        while pos < tail {
            match self.record_at(pos, tail) {
                Some((kind, len, _)) => {
                    if kind != KIND_PAD {
                        count += 1;
                    }
                    pos += REC_HDR + align8(len as u64);
                }
                None => break,
            }
        }
        (pos, count)
    }

    /// Reads and checks the record header at `pos`: its kind is known, it fits before the
    /// ring's end and before `tail`; a PAD record reaches exactly the ring's end. Returns
    /// (kind, len, offset).
    fn record_at(&self, pos: u64, tail: u64) -> Option<(u32, u32, u64)> {
        let off = pos % self.capacity;
        let contiguous = self.capacity - off;
        if contiguous < REC_HDR || tail - pos < REC_HDR {
            return None;
        }
        let mut hdr = [0u8; 8];
        // SAFETY: off + 8 <= capacity, so the 8 bytes are inside the ring; the region
        // head..tail is only written under the mutex, which the caller holds.
        unsafe {
            std::ptr::copy_nonoverlapping(self.ring_base().add(off as usize), hdr.as_mut_ptr(), 8)
        };
        let len = u32::from_ne_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
        let kind = u32::from_ne_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]);
        let size = REC_HDR + align8(len as u64);
        if size > contiguous || size > tail - pos {
            return None;
        }
        match kind {
            KIND_PAD if size == contiguous => Some((kind, len, off)),
            KIND_DATA | KIND_OUT_OF_LINE => Some((kind, len, off)),
            _ => None,
        }
    }

    fn write_record_header(&self, off: u64, len: u32, kind: u32) {
        let mut hdr = [0u8; 8];
        hdr[..4].copy_from_slice(&len.to_ne_bytes());
        hdr[4..].copy_from_slice(&kind.to_ne_bytes());
        // SAFETY: callers pass off with off + 8 <= capacity; the bytes past tail belong to the
        // mutex holder.
        unsafe {
            std::ptr::copy_nonoverlapping(hdr.as_ptr(), self.ring_base().add(off as usize), 8)
        };
    }
}

fn corrupt(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// Proof of holding the queue mutex; unlocks on drop.
pub(crate) struct Locked<'a> {
    ring: &'a Ring,
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.ring.header().lock.mutex.unlock() {
            tracing::error!(queue = self.ring.name(), error = %e, "could not unlock the queue");
        }
    }
}

impl Locked<'_> {
    fn indices(&self) -> io::Result<Indices> {
        let st = &self.ring.header().state;
        let ix = Indices {
            head: st.head.load(Ordering::Relaxed),
            tail: st.tail.load(Ordering::Relaxed),
            count: st.count.load(Ordering::Relaxed),
            unfinished: st.unfinished.load(Ordering::Relaxed),
        };
        let cap = self.ring.capacity;
        if ix.head > ix.tail
            || ix.tail - ix.head > cap
            || ix.head % 8 != 0
            || ix.tail % 8 != 0
            || ix.count > (ix.tail - ix.head) / REC_HDR
        {
            return Err(corrupt(format!(
                "queue {:?} has corrupt indices (head {}, tail {}, count {})",
                self.ring.name(),
                ix.head,
                ix.tail,
                ix.count
            )));
        }
        Ok(ix)
    }

    /// Publishes a put's new indices through the redo journal (see
    /// [`Guarded`](crate::layout::Guarded)).
    fn commit_put(&self, tail: u64, count: u64, unfinished: u64) {
        let st = &self.ring.header().state;
        st.j1.store(tail, Ordering::Relaxed);
        st.j2.store(count, Ordering::Relaxed);
        st.j3.store(unfinished, Ordering::Relaxed);
        compiler_fence(Ordering::SeqCst);
        st.journal.store(JOURNAL_PUT, Ordering::Relaxed);
        compiler_fence(Ordering::SeqCst);
        st.tail.store(tail, Ordering::Relaxed);
        st.count.store(count, Ordering::Relaxed);
        st.unfinished.store(unfinished, Ordering::Relaxed);
        compiler_fence(Ordering::SeqCst);
        st.journal.store(JOURNAL_NONE, Ordering::Relaxed);
    }

    /// Publishes a get's new indices through the redo journal.
    fn commit_get(&self, head: u64, count: u64) {
        let st = &self.ring.header().state;
        st.j1.store(head, Ordering::Relaxed);
        st.j2.store(count, Ordering::Relaxed);
        compiler_fence(Ordering::SeqCst);
        st.journal.store(JOURNAL_GET, Ordering::Relaxed);
        compiler_fence(Ordering::SeqCst);
        st.head.store(head, Ordering::Relaxed);
        st.count.store(count, Ordering::Relaxed);
        compiler_fence(Ordering::SeqCst);
        st.journal.store(JOURNAL_NONE, Ordering::Relaxed);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.ring.header().misc.closed.load(Ordering::Relaxed) != 0
    }

    pub(crate) fn close(&self) {
        self.ring.header().misc.closed.store(1, Ordering::SeqCst);
    }

    /// Appends a record of `kind` holding `payload` (at most `inline_max` bytes), if it fits.
    pub(crate) fn put(&self, payload: &[u8], kind: u32) -> io::Result<PutOutcome> {
        if self.is_closed() {
            return Ok(PutOutcome::Closed);
        }
        debug_assert!(payload.len() <= self.ring.inline_max());
        let ix = self.indices()?;
        let cap = self.ring.capacity;
        if self.ring.max_items != 0 && ix.count >= self.ring.max_items {
            return Ok(PutOutcome::Full);
        }
        let size = record_size(payload.len());
        let off = ix.tail % cap;
        let contiguous = cap - off;
        let need = if size <= contiguous {
            size
        } else {
            contiguous + size
        };
        if need > cap - (ix.tail - ix.head) {
            return Ok(PutOutcome::Full);
        }
        let mut tail = ix.tail;
        let mut at = off;
        if size > contiguous {
            self.ring
                .write_record_header(off, (contiguous - REC_HDR) as u32, KIND_PAD);
            tail += contiguous;
            at = 0;
        }
        self.ring
            .write_record_header(at, payload.len() as u32, kind);
        // SAFETY: at + size <= capacity (checked above: size fits in the contiguous space at
        // `at`), and the bytes past tail are free space owned by the mutex holder.
        unsafe {
            std::ptr::copy_nonoverlapping(
                payload.as_ptr(),
                self.ring.ring_base().add((at + REC_HDR) as usize),
                payload.len(),
            );
        }
        compiler_fence(Ordering::SeqCst);
        self.commit_put(tail + size, ix.count + 1, ix.unfinished.saturating_add(1));
        Ok(PutOutcome::Done)
    }

    /// Takes the oldest record, copying its payload into `out` (cleared first).
    pub(crate) fn get(&self, out: &mut Vec<u8>) -> io::Result<GetOutcome> {
        let ix = self.indices()?;
        if ix.head == ix.tail {
            return Ok(if self.is_closed() {
                GetOutcome::Closed
            } else {
                GetOutcome::Empty
            });
        }
        let bad = || {
            corrupt(format!(
                "queue {:?} holds a corrupt record at position {}",
                self.ring.name(),
                ix.head
            ))
        };
        let mut head = ix.head;
        let (mut kind, mut len, mut off) = self.ring.record_at(head, ix.tail).ok_or_else(bad)?;
        if kind == KIND_PAD {
            head += self.ring.capacity - off;
            (kind, len, off) = self.ring.record_at(head, ix.tail).ok_or_else(bad)?;
            if kind == KIND_PAD {
                return Err(bad());
            }
        }
        out.clear();
        out.reserve(len as usize);
        // SAFETY: record_at checked off + 8 + len <= capacity; `out` has room for len bytes;
        // the record lies in head..tail, which only the mutex holder touches.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.ring.ring_base().add((off + REC_HDR) as usize),
                out.as_mut_ptr(),
                len as usize,
            );
            out.set_len(len as usize);
        }
        compiler_fence(Ordering::SeqCst);
        let new_head = head + REC_HDR + align8(len as u64);
        self.commit_get(new_head, ix.count.saturating_sub(1));
        Ok(GetOutcome::Got(kind))
    }

    /// Marks one task done; `Ok(None)` if none was outstanding, else the number left.
    pub(crate) fn task_done(&self) -> Option<u64> {
        let st = &self.ring.header().state;
        let u = st.unfinished.load(Ordering::Relaxed);
        if u == 0 {
            return None;
        }
        // A single word: no journal needed. SeqCst: `join` waiters read it without the
        // mutex, after registering as sleepers (see wait.rs).
        st.unfinished.store(u - 1, Ordering::SeqCst);
        Some(u - 1)
    }
}

impl Ring {
    /// The number of items, read without the mutex (approximate while others work).
    pub(crate) fn len_hint(&self) -> usize {
        self.header().state.count.load(Ordering::Relaxed) as usize
    }

    /// Whether a small put would find no room now (approximate).
    pub(crate) fn full_hint(&self) -> bool {
        let st = &self.header().state;
        if self.max_items != 0 && st.count.load(Ordering::Relaxed) >= self.max_items {
            return true;
        }
        let head = st.head.load(Ordering::Relaxed);
        let tail = st.tail.load(Ordering::Relaxed);
        tail.saturating_sub(head) + 2 * REC_HDR > self.capacity
    }

    /// The tail position, read without the mutex: it moves on every put.
    #[inline]
    pub(crate) fn tail_hint(&self) -> u64 {
        self.header().state.tail.load(Ordering::Relaxed)
    }

    /// The head position, read without the mutex: it moves on every get.
    #[inline]
    pub(crate) fn head_hint(&self) -> u64 {
        self.header().state.head.load(Ordering::Relaxed)
    }

    /// Unfinished tasks, read without the mutex.
    pub(crate) fn unfinished_hint(&self) -> u64 {
        self.header().state.unfinished.load(Ordering::SeqCst)
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
            r.lock().unwrap().put(payload, KIND_DATA).unwrap(),
            PutOutcome::Done
        ));
    }

    fn get(r: &Ring) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        match r.lock().unwrap().get(&mut out).unwrap() {
            GetOutcome::Got(_) => Some(out),
            _ => None,
        }
    }

    #[test]
    fn repair_replays_a_half_done_commit() {
        let r = ring(1024);
        put(&r, b"one");
        put(&r, b"two");
        let st = &r.header().state;
        let (head, tail) = (
            st.head.load(Ordering::Relaxed),
            st.tail.load(Ordering::Relaxed),
        );
        // A get that died after writing its journal and the new head, before the count.
        let _ = tail;
        st.j1.store(head + 16, Ordering::Relaxed);
        st.j2.store(1, Ordering::Relaxed);
        st.journal.store(JOURNAL_GET, Ordering::Relaxed);
        st.head.store(head + 16, Ordering::Relaxed);
        r.repair();
        assert_eq!(st.journal.load(Ordering::Relaxed), 0);
        assert_eq!(st.count.load(Ordering::Relaxed), 1);
        assert_eq!(get(&r).unwrap(), b"two");
        assert_eq!(get(&r), None);
    }

    #[test]
    fn repair_ignores_an_uncommitted_record_and_recounts() {
        let r = ring(1024);
        put(&r, b"kept");
        let st = &r.header().state;
        let tail = st.tail.load(Ordering::Relaxed);
        // A put that died mid-copy: bytes past tail, tail not advanced; count left wrong.
        r.write_record_header(tail % 1024, 500, KIND_DATA);
        st.count.store(7, Ordering::Relaxed);
        r.repair();
        assert_eq!(st.count.load(Ordering::Relaxed), 1);
        assert_eq!(get(&r).unwrap(), b"kept");
        assert_eq!(get(&r), None);
        put(&r, b"after");
        assert_eq!(get(&r).unwrap(), b"after");
    }

    #[test]
    fn repair_drops_records_past_a_corrupt_one() {
        let r = ring(1024);
        put(&r, b"good");
        let st = &r.header().state;
        let tail = st.tail.load(Ordering::Relaxed);
        put(&r, b"bad!");
        r.write_record_header(tail % 1024, 9999, KIND_DATA);
        r.repair();
        assert_eq!(st.tail.load(Ordering::Relaxed), tail);
        assert_eq!(get(&r).unwrap(), b"good");
        assert_eq!(get(&r), None);
    }

    #[test]
    fn corrupt_indices_are_an_error_not_a_panic() {
        let r = ring(1024);
        put(&r, b"x");
        let st = &r.header().state;
        st.tail.store(1 << 40, Ordering::Relaxed);
        let mut out = Vec::new();
        let e = r.lock().unwrap().get(&mut out).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(r.lock().unwrap().put(b"y", KIND_DATA).is_err());
        // a corrupt record length
        st.tail
            .store(st.head.load(Ordering::Relaxed) + 16, Ordering::Relaxed);
        let head = st.head.load(Ordering::Relaxed);
        r.write_record_header(head % 1024, u32::MAX, KIND_DATA);
        assert!(r.lock().unwrap().get(&mut out).is_err());
        r.write_record_header(head % 1024, 1, 77);
        assert!(r.lock().unwrap().get(&mut out).is_err());
    }
}
