//! The queue segment: creation, validation, the two robust mutexes and the operations done on
//! the ring under them.
//!
//! Producers serialise among themselves with the put mutex and consumers with the get mutex
//! (a two-lock queue): a put and a get never wait for each other. What they do to the ring's
//! words and bytes once they hold their mutex is the protocol in `proto.rs`, instantiated here
//! over the shared mapping; its crash-safety argument and model checks are there.
//!
//! Crash safety: a put copies its record past the tail and only then publishes the new tail
//! (through the producer's journal, which also carries the task count). A put killed mid-copy
//! leaves nothing visible; the next producer gets `EOWNERDEAD`, replays the journal if a
//! commit was half-done, checks the indices and marks the mutex consistent. A get that copies
//! the record out stores the new head after the copy: killed before the store, the record
//! stays for the next consumer; killed after it, that one message is lost. A get that decodes
//! in place marks the record in its `taking` journal first: killed after the mark (during the
//! decode included), the repair skips that record and that one message is lost; killed
//! before, it stays.

use std::io;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::layout::{count, used_units, QueueHeader, HEADER_SIZE, MAX_RING, MIN_RING, QUEUE_MAGIC};
pub(crate) use crate::proto::{GetOutcome, GetWith, PutInPlace, PutOutcome, Side};
use crate::proto::{Proto, RingBytes, Words, REC_HDR};
use crate::robust::{Acquired, MutexKind, RobustMutex};
use crate::segment::Segment;
use crate::wait::{Deadline, ShmSignal};
use crate::ShmError;

pub(crate) use crate::proto::{KIND_DATA, KIND_OUT_OF_LINE};

/// How many times a contended lock is retried before sleeping on it.
const LOCK_TRIES: u32 = 12;

/// How long a put that must not wait for room (`try_put`) still waits for the put mutex.
/// Python's `Queue.put(block=False)` raises `Full` only when the queue is full, and waits for
/// its internal lock; this is far longer than any put holds the mutex, and bounded, so that a peer stopped inside a put (SIGSTOP, a debugger) cannot block a `try_put`
/// for good: past this, it reports `Full`.
const TRY_PUT_LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(20);

/// The ring's bytes in the shared mapping.
#[derive(Debug)]
pub(crate) struct ShmBytes {
    base: *mut u8,
    #[cfg(debug_assertions)]
    capacity: u64,
}

// SAFETY: (RingBytes) every method copies within [base, base + capacity), which the trait's
// contract guarantees for the range given; the mapping outlives the Ring that lends this.
unsafe impl RingBytes for ShmBytes {
    #[inline]
    unsafe fn write(&self, off: u64, src: &[u8]) {
        #[cfg(debug_assertions)]
        debug_assert!(off + src.len() as u64 <= self.capacity);
        // SAFETY: the range is inside the ring and owned by the caller (trait contract).
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), self.base.add(off as usize), src.len())
        };
    }
    #[inline]
    unsafe fn read(&self, off: u64, dst: *mut u8, len: usize) {
        #[cfg(debug_assertions)]
        debug_assert!(off + len as u64 <= self.capacity);
        // SAFETY: as in `write`; `dst` is valid for `len` bytes (the caller's contract) and
        // is not inside the ring.
        unsafe { std::ptr::copy_nonoverlapping(self.base.add(off as usize), dst, len) };
    }
    #[inline]
    unsafe fn with_slice<R>(&self, off: u64, len: usize, f: impl FnOnce(&[u8]) -> R) -> R {
        #[cfg(debug_assertions)]
        debug_assert!(off + len as u64 <= self.capacity);
        // SAFETY: as in `write`: nobody writes the range meanwhile.
        f(unsafe { std::slice::from_raw_parts(self.base.add(off as usize), len) })
    }
    #[inline]
    unsafe fn fill<R>(&self, off: u64, len: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
        #[cfg(debug_assertions)]
        debug_assert!(off + len as u64 <= self.capacity);
        // SAFETY: as in `write`: nobody else reads or writes the range meanwhile.
        f(unsafe { std::slice::from_raw_parts_mut(self.base.add(off as usize), len) })
    }
}

/// A mapped queue segment with its validated configuration.
#[derive(Debug)]
pub(crate) struct Ring {
    seg: Segment,
    /// Capacity in bytes (a power of two).
    capacity: u64,
    max_items: u64,
    /// The queue shuts itself down once its producers are done (`Config::auto_shutdown`).
    auto_shutdown: bool,
    bytes: ShmBytes,
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
        auto_shutdown: bool,
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
                h.config
                    .auto_shutdown
                    .store(auto_shutdown as u64, Ordering::Relaxed);
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
        Ok(Ring::assemble(seg, capacity as u64, max, auto_shutdown))
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
        let auto_shutdown = match h.config.auto_shutdown.load(Ordering::Relaxed) {
            0 => false,
            1 => true,
            other => {
                return Err(ShmError::corrupt(
                    name,
                    format!("auto-shutdown flag {other}"),
                ))
            }
        };
        if let Some(slot) = seg.slot() {
            // This slot may have been a dead process's: its producer handles are gone.
            h.producers.counts[slot].store(0, Ordering::SeqCst);
        }
        Ok(Ring::assemble(seg, cap, max_items, auto_shutdown))
    }

    fn assemble(seg: Segment, capacity: u64, max_items: u64, auto_shutdown: bool) -> Ring {
        // SAFETY: create/open established the mapping holds HEADER_SIZE + capacity bytes.
        let base = unsafe { seg.base().add(HEADER_SIZE) };
        Ring {
            bytes: ShmBytes {
                base,
                #[cfg(debug_assertions)]
                capacity,
            },
            seg,
            capacity,
            max_items,
            auto_shutdown,
        }
    }

    #[inline]
    pub(crate) fn header(&self) -> &QueueHeader {
        // SAFETY: create/open established the mapping holds a whole QueueHeader at offset 0;
        // it lives as long as `self`; shared fields are atomics or the pthread mutexes.
        unsafe { &*(self.seg.base() as *const QueueHeader) }
    }

    #[cfg(test)]
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

    /// Whether the queue shuts itself down once its producers are done.
    pub(crate) fn auto_shutdown(&self) -> bool {
        self.auto_shutdown
    }

    /// Counts one more producer handle on this mapping (see [`ProducerTable`]). A mapping
    /// without a slot (the attach table was full) cannot be counted: `false` then.
    ///
    /// [`ProducerTable`]: crate::layout::ProducerTable
    pub(crate) fn register_producer(&self) -> bool {
        let h = self.header();
        let Some(slot) = self.seg.slot() else {
            return false;
        };
        h.producers.counts[slot].fetch_add(1, Ordering::SeqCst);
        h.misc.producers_seen.store(1, Ordering::SeqCst);
        true
    }

    /// Takes back one producer handle of this mapping; whether it was this mapping's last.
    pub(crate) fn deregister_producer(&self) -> bool {
        let Some(slot) = self.seg.slot() else {
            return false;
        };
        let counts = &self.header().producers.counts[slot];
        // Never below zero, even on a corrupt table.
        counts
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok_and(|before| before == 1)
    }

    /// Whether some handle has registered as a producer and none is left: every slot whose
    /// count is above zero belongs to a process that is gone (a zombie counts as gone).
    pub(crate) fn producers_done(&self) -> bool {
        let h = self.header();
        if h.misc.producers_seen.load(Ordering::SeqCst) == 0 {
            return false;
        }
        let slots = &self.seg.common().slots;
        !h.producers.counts.iter().zip(slots).any(|(count, pid)| {
            count.load(Ordering::SeqCst) > 0
                && crate::segment::pid_running(pid.load(Ordering::SeqCst))
        })
    }

    /// The largest payload stored in the ring itself; larger ones go out of line.
    pub(crate) fn inline_max(&self) -> usize {
        (self.capacity / 2 - REC_HDR) as usize
    }

    pub(crate) fn data_signal(&self) -> ShmSignal<'_> {
        let h = self.header();
        ShmSignal {
            seq: &h.put_lock.signal.seq,
            armed: &h.put_lock.signal.armed,
        }
    }

    pub(crate) fn space_signal(&self) -> ShmSignal<'_> {
        let h = self.header();
        ShmSignal {
            seq: &h.get_lock.signal.seq,
            armed: &h.get_lock.signal.armed,
        }
    }

    pub(crate) fn join_signal(&self) -> ShmSignal<'_> {
        let h = self.header();
        ShmSignal {
            seq: &h.misc.join_seq,
            armed: &h.misc.join_armed,
        }
    }

    /// Takes one side's mutex, repairing that side first if its previous owner died.
    ///
    /// Critical sections are short (a bounds check and a copy), so a contended lock is first
    /// retried a few times with a growing pause: glibc's robust mutexes do not spin, and
    /// sleeping in the kernel for every collision costs a system call on each side.
    #[inline]
    pub(crate) fn lock(&self, side: Side) -> io::Result<Locked<'_>> {
        let m = match side {
            Side::Put => &self.header().put_lock.mutex,
            Side::Get => &self.header().get_lock.mutex,
        };
        let rc = m.try_lock_raw();
        if rc == 0 {
            return Ok(Locked {
                ring: self,
                mutex: m,
                side,
            });
        }
        match self.lock_slow(side, m, rc, Deadline::Never)? {
            Some(locked) => Ok(locked),
            None => unreachable!("a lock without a deadline does not time out"),
        }
    }

    /// `lock`, giving up at `deadline`: `Ok(None)` if the mutex is still held by another then
    /// (with `Deadline::Now`, after a few quick retries for a get, as Python's
    /// `Queue.get(block=False)` gives up on a taken lock, and after at most `TRY_PUT_LOCK_WAIT`
    /// for a put). Puts and gets take their mutex this way, so that a peer decoding slowly
    /// under the get mutex, or one stopped (SIGSTOP, a debugger) inside a put, cannot make a
    /// `try_*` or `*_timeout` call wait past its deadline. A dead owner is handled as in
    /// `lock`.
    #[inline]
    pub(crate) fn lock_until(
        &self,
        side: Side,
        deadline: Deadline,
    ) -> io::Result<Option<Locked<'_>>> {
        let m = match side {
            Side::Put => &self.header().put_lock.mutex,
            Side::Get => &self.header().get_lock.mutex,
        };
        let rc = m.try_lock_raw();
        if rc == 0 {
            return Ok(Some(Locked {
                ring: self,
                mutex: m,
                side,
            }));
        }
        self.lock_slow(side, m, rc, deadline)
    }

    /// `lock` when the mutex is held by someone else, or its owner died.
    #[cold]
    #[inline(never)]
    fn lock_slow<'a>(
        &'a self,
        side: Side,
        m: &'a RobustMutex,
        first: libc::c_int,
        deadline: Deadline,
    ) -> io::Result<Option<Locked<'a>>> {
        let mut acquired = None;
        let mut pause = 1u32;
        let mut rc = Some(first);
        for _ in 0..LOCK_TRIES {
            let attempt = match rc.take() {
                Some(rc) => RobustMutex::acquired(rc),
                None => m.try_lock(),
            };
            match attempt {
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
        let deadline = match (side, deadline) {
            (Side::Put, Deadline::Now) => Deadline::after(TRY_PUT_LOCK_WAIT),
            (_, d) => d,
        };
        let acquired = match acquired {
            Some(a) => a,
            None => match Self::lock_by(m, deadline)? {
                Some(a) => a,
                None => return Ok(None),
            },
        };
        if acquired == Acquired::OwnerDied {
            self.repair(side);
            m.make_consistent()?;
        }
        Ok(Some(Locked {
            ring: self,
            mutex: m,
            side,
        }))
    }

    /// Blocks on a held mutex until `deadline` (`RobustMutex::lock_for` waits in slices of a
    /// monotonic deadline, since `pthread_mutex_timedlock` takes a `CLOCK_REALTIME` one).
    fn lock_by(m: &RobustMutex, deadline: Deadline) -> io::Result<Option<Acquired>> {
        let at = match deadline {
            Deadline::Never => return m.lock().map(Some),
            Deadline::Now => return Ok(None),
            Deadline::At(at) => at,
        };
        let now = std::time::Instant::now();
        if now >= at {
            return Ok(None);
        }
        match m.lock_for(at - now) {
            Ok(a) => Ok(Some(a)),
            Err(e) if e.raw_os_error() == Some(libc::ETIMEDOUT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The protocol over this segment's words and bytes (see `proto.rs`).
    #[inline]
    pub(crate) fn proto(&self) -> Proto<'_, AtomicU64, AtomicU32, ShmBytes> {
        let h = self.header();
        Proto {
            w: Words {
                tail: &h.producer.tail,
                head_cache: &h.producer.head_cache,
                unfinished: &h.producer.unfinished,
                journal: &h.producer.journal,
                j_tail: &h.producer.j_tail,
                j_unfinished: &h.producer.j_unfinished,
                head: &h.consumer.head,
                tail_cache: &h.consumer.tail_cache,
                taking: &h.consumer.taking,
                closed: &h.misc.closed,
            },
            bytes: &self.bytes,
            cap_units: self.cap_units(),
            max_items: self.max_items,
            inline_max: self.inline_max(),
        }
    }

    /// Brings one side back to a consistent state after its mutex holder died.
    #[cold]
    fn repair(&self, side: Side) {
        let h = self.header();
        let done = self.proto().repair(side);
        if done.corrupt {
            tracing::error!(
                queue = self.name(),
                head = h.consumer.head.load(Ordering::Relaxed),
                tail = h.producer.tail.load(Ordering::Relaxed),
                "queue indices are corrupt after a crash"
            );
        }
        h.misc.recoveries.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            queue = self.name(),
            side = ?side,
            journal_replayed = done.replayed,
            record_skipped = done.skipped,
            "a process died holding a queue lock: queue repaired"
        );
        // Whoever the dead process would have woken must not wait for a slice to pass.
        crate::wait::notify(&self.data_signal());
        crate::wait::notify(&self.space_signal());
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

    /// Whether a record of `payload_len` bytes would fit now, read without the put mutex: a
    /// hint, stale as soon as it is read, for a `try_put` to skip work it would throw away
    /// (writing a large message's file) when the queue is plainly full.
    pub(crate) fn room_hint(&self, payload_len: usize) -> bool {
        let (head, tail) = (self.head_hint(), self.tail_hint());
        let cap_units = self.capacity / 8;
        let used = used_units(head, tail);
        if used > cap_units {
            // Two words read at different instants: let the put decide under the mutex.
            return true;
        }
        if self.max_items != 0 && count(head, tail) >= self.max_items {
            return false;
        }
        let size = crate::proto::record_units(payload_len as u64);
        let contiguous = cap_units - (crate::layout::pos(tail) & (cap_units - 1));
        let need = if size <= contiguous {
            size
        } else {
            contiguous + size
        };
        need <= cap_units - used
    }

    /// Whether a get has freed enough for the producers asleep on a full ring to be worth
    /// waking: an eighth of the ring's bytes, or the ring is empty. Waking a producer for
    /// every record freed makes two processes that share a CPU trade it after a handful of
    /// records each (with both on one vCPU here, 232 k futex calls a second and 10 M
    /// messages/s); waking it once a batch is free lets each side run through a batch. A queue
    /// bounded by `max_items` (Python's `Queue(maxsize)`) wakes its producers for every item,
    /// as Python's `put` goes on after any `get`. Read without a mutex: a hint.
    #[inline]
    pub(crate) fn room_worth_waking(&self) -> bool {
        if self.max_items != 0 {
            return true;
        }
        let (head, tail) = (self.head_hint(), self.tail_hint());
        let cap_units = self.capacity / 8;
        let used = used_units(head, tail);
        used == 0 || used > cap_units || cap_units - used >= cap_units / 8
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

/// Proof of holding one side's mutex; unlocks on drop.
pub(crate) struct Locked<'a> {
    ring: &'a Ring,
    mutex: &'a RobustMutex,
    side: Side,
}

impl Drop for Locked<'_> {
    #[inline]
    fn drop(&mut self) {
        if let Err(e) = self.mutex.unlock() {
            unlock_failed(self.ring, e);
        }
    }
}

#[cold]
#[inline(never)]
fn unlock_failed(ring: &Ring, e: io::Error) {
    tracing::error!(queue = ring.name(), error = %e, "could not unlock the queue");
}

/// Adds the queue's name to a protocol error.
fn named(ring: &Ring, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("queue {:?}: {e}", ring.name()))
}

impl Locked<'_> {
    /// Closes the queue (under the put mutex, so that no put commits after it).
    pub(crate) fn close(&self) {
        debug_assert_eq!(self.side, Side::Put);
        self.ring.proto().close();
    }

    /// Appends a record of `kind` holding `payload` (at most `inline_max` bytes), if it fits.
    /// Holds the put mutex.
    #[inline]
    pub(crate) fn put(&self, payload: &[u8], kind: u32) -> io::Result<PutOutcome> {
        debug_assert_eq!(self.side, Side::Put);
        self.ring
            .proto()
            .put(payload, kind)
            .map_err(|e| named(self.ring, e))
    }

    /// Takes the oldest record, copying its payload into `out` (cleared first): the record
    /// is consumed before the caller looks at it. Holds the get mutex.
    #[inline]
    pub(crate) fn get(&self, out: &mut Vec<u8>) -> io::Result<GetOutcome> {
        debug_assert_eq!(self.side, Side::Get);
        self.ring.proto().get(out).map_err(|e| named(self.ring, e))
    }

    /// Takes the oldest record, handing it in place to `f` (see [`Proto::get_with`]): it is
    /// consumed whatever `f` does, a panic included. Holds the get mutex.
    #[inline]
    pub(crate) fn get_with<R>(&self, f: impl FnOnce(u32, &[u8]) -> R) -> io::Result<GetWith<R>> {
        debug_assert_eq!(self.side, Side::Get);
        self.ring
            .proto()
            .get_with(f)
            .map_err(|e| named(self.ring, e))
    }

    /// Encodes a record of `kind` straight into the free space at the tail, if it fits there
    /// (see [`Proto::put_in_place`]). Holds the put mutex.
    #[inline]
    pub(crate) fn put_in_place<E>(
        &self,
        kind: u32,
        encode: impl FnOnce(&mut [u8]) -> Result<Option<usize>, E>,
    ) -> io::Result<Result<PutInPlace, E>> {
        debug_assert_eq!(self.side, Side::Put);
        self.ring
            .proto()
            .put_in_place(kind, encode)
            .map_err(|e| named(self.ring, e))
    }

    /// Marks one task done under the put mutex; `None` if none was outstanding, else the
    /// number left.
    pub(crate) fn task_done(&self) -> Option<u64> {
        debug_assert_eq!(self.side, Side::Put);
        self.ring.proto().task_done()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{num, pack, pos, JOURNAL_NONE, JOURNAL_PUT};

    fn ring(cap: usize) -> Ring {
        bounded_ring(cap, None)
    }

    fn bounded_ring(cap: usize, max_items: Option<usize>) -> Ring {
        Ring::create(
            &crate::segment::anonymous_name("ring-test"),
            cap,
            max_items,
            false,
            1,
        )
        .unwrap()
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
        r.proto()
            .write_record_header(pos(tail) * 8 % 1024, 3, KIND_DATA);
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
        r.proto().repair(Side::Put);
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
        r.proto()
            .write_record_header(pos(tail) * 8 % 1024, 500, KIND_DATA);
        r.proto().repair(Side::Put);
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
        r.proto()
            .write_record_header(pos(head) * 8 % 1024, u32::MAX, KIND_DATA);
        assert!(r.lock(Side::Get).unwrap().get(&mut out).is_err());
        r.proto().write_record_header(pos(head) * 8 % 1024, 1, 77);
        assert!(r.lock(Side::Get).unwrap().get(&mut out).is_err());
        r.proto()
            .write_record_header(pos(head) * 8 % 1024, 1, KIND_DATA);
        assert!(r.lock(Side::Get).unwrap().get(&mut out).is_ok());
    }

    #[test]
    fn producers_are_woken_once_a_batch_of_room_is_free() {
        // 1024 bytes: 128 units; each 8-byte payload takes 2 (header and payload).
        let r = ring(1024);
        assert!(r.room_worth_waking(), "an empty ring");
        for _ in 0..64 {
            put(&r, &[1; 8]);
        }
        assert!(!r.room_worth_waking(), "a full ring");
        for _ in 0..7 {
            get(&r).unwrap();
        }
        assert!(
            !r.room_worth_waking(),
            "14 units free, under an eighth of 128"
        );
        get(&r).unwrap();
        assert!(r.room_worth_waking(), "16 units free: an eighth");
        while get(&r).is_some() {}
        assert!(r.room_worth_waking());

        // A queue bounded by max_items (Python's maxsize) wakes its producers for every item.
        let r = bounded_ring(4096, Some(3));
        for _ in 0..3 {
            put(&r, &[3; 8]);
        }
        get(&r).unwrap();
        assert!(r.room_worth_waking());
    }
}
