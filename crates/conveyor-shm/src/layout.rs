//! The queue segment's header: `#[repr(C)]`, in cache-line groups, with its invariants.
//!
//! ```text
//! offset  size  what
//!      0   256  Common: magic, version, sizes, creator pid, fingerprint, attach table
//!    256    64  Config: ring offset and capacity, item bound           (read-only after init)
//!    320    64  the producers' robust mutex, and the "data available" signal
//!    384    64  Producer: tail word, unfinished tasks, redo journal    (under the put mutex)
//!    448    64  the consumers' robust mutex, and the "space available" signal
//!    512    64  Consumer: head word                                     (under the get mutex)
//!    576    64  closed flag, all-done signal, out-of-line counter, repair count, producers seen
//!    640   192  producer handles per attach slot (for `auto_shutdown`)
//!    832        the ring: `ring_capacity` bytes of records
//! ```
//!
//! Producers and consumers each have their own mutex and their own cache lines: a put and a
//! get do not contend, and in the common case a put touches only the producers' lines (it
//! reads the head word to know the free space) and a get only the consumers' (it reads the
//! tail word). Each signal sits on the line of the side that notifies it, so checking for
//! sleepers after an operation costs no extra cache-line transfer.
//!
//! # The index words
//!
//! The tail and head are each one 64-bit word, so that publishing a put or a get is a single
//! store (a process killed around it leaves the old or the new value, never a mix):
//!
//! | bits   | what                                                           |
//! |--------|----------------------------------------------------------------|
//! | 0..40  | position in 8-byte units, modulo 2^40 (it only grows)           |
//! | 40..64 | number of data records put (tail) or taken (head), modulo 2^24 |
//!
//! A record lives at byte `(position * 8) % ring_capacity`; the capacity is a power of two, so
//! the modulo stays consistent when the position wraps. The used space is
//! `(tail.pos - head.pos) mod 2^40` units and the item count `(tail.n - head.n) mod 2^24`; the
//! ring holds at most `capacity / 8 <= 2^23` records (`MAX_RING`), so neither difference is
//! ambiguous.

use std::sync::atomic::{AtomicU32, AtomicU64};

use crate::robust::RobustMutex;
use crate::segment::Common;

/// "CONVSHMQ" read as a little-endian u64: the magic of a queue segment.
pub(crate) const QUEUE_MAGIC: u64 = u64::from_le_bytes(*b"CONVSHMQ");

/// Immutable configuration, written by the creator before the magic is published.
///
/// Invariants (checked at open): `ring_offset == size_of::<QueueHeader>()`,
/// `ring_offset + ring_capacity == Common::total_len`, `ring_capacity` is a power of two in
/// `MIN_RING..=MAX_RING`; `max_items == 0` means no bound on the item count; `auto_shutdown`
/// is 1 when the queue shuts itself down once its producers are done (see [`ProducerTable`]),
/// else 0.
#[repr(C, align(64))]
pub(crate) struct Config {
    pub(crate) ring_offset: AtomicU64,
    pub(crate) ring_capacity: AtomicU64,
    pub(crate) max_items: AtomicU64,
    pub(crate) auto_shutdown: AtomicU64,
}

/// A sequence word and the flag saying a sleeper may be asleep (see `wait.rs`).
#[repr(C)]
pub(crate) struct SignalWords {
    pub(crate) seq: AtomicU32,
    pub(crate) armed: AtomicU32,
}

/// A side's mutex and the signal that side notifies, on one cache line.
#[repr(C, align(64))]
pub(crate) struct MutexLine {
    pub(crate) mutex: RobustMutex,
    /// On the put side "data available" (gets sleep on it); on the get side "space
    /// available" (puts sleep on it).
    pub(crate) signal: SignalWords,
}

/// Journal states.
pub(crate) const JOURNAL_NONE: u64 = 0;
/// `j_tail` and `j_unfinished` hold a put's new values.
pub(crate) const JOURNAL_PUT: u64 = 1;

/// The producers' state, written only while holding the put mutex (`unfinished` also by
/// `task_done`, under the same mutex).
///
/// Invariants: `tail` is an index word (see the module docs) at or after `head`, at most the
/// ring's capacity ahead; the bytes between head and tail are whole, committed records.
/// A put writes its record past the tail, then its new values to `j_*`, sets `journal`, stores
/// the live words, and clears `journal`. A producer killed anywhere in that sequence leaves
/// either the old values or a complete journal that the next producer replays.
#[repr(C, align(64))]
pub(crate) struct Producer {
    pub(crate) tail: AtomicU64,
    /// The head word as producers last read it: a put re-reads the real head (a line the
    /// consumers write) only when this one shows too little room. It is never ahead of the
    /// real head, so the room it shows is never more than the real room.
    pub(crate) head_cache: AtomicU64,
    pub(crate) unfinished: AtomicU64,
    pub(crate) journal: AtomicU64,
    pub(crate) j_tail: AtomicU64,
    pub(crate) j_unfinished: AtomicU64,
}

/// The consumers' state, written only while holding the get mutex.
///
/// Invariant: `head` is an index word at or before `tail`. A get copies (or decodes) its
/// record, then stores the new head: a consumer killed before the store leaves the record for
/// the next one, unless `taking` names it (then it is skipped: the documented loss).
#[repr(C, align(64))]
pub(crate) struct Consumer {
    pub(crate) head: AtomicU64,
    /// The tail word as consumers last read it: a get re-reads the real tail only when this
    /// one shows no record. It is never ahead of the real tail nor behind the head.
    pub(crate) tail_cache: AtomicU64,
    /// The get journal: `!head` while a get decodes the record at `head` in place; a
    /// consumer that dies then (killed, or a decode panic with `panic = "abort"`) has that
    /// record skipped by the repair rather than handed to the next consumer.
    pub(crate) taking: AtomicU64,
}

/// Shutdown and task accounting words.
#[repr(C, align(64))]
pub(crate) struct MiscLine {
    /// 1 once the queue is shut down (set under the put mutex; never cleared).
    pub(crate) closed: AtomicU32,
    pub(crate) join_seq: AtomicU32,
    pub(crate) join_armed: AtomicU32,
    /// Source of unique names for out-of-line messages.
    pub(crate) ool_counter: AtomicU64,
    /// How many times a process died holding a mutex and the queue was repaired.
    pub(crate) recoveries: AtomicU64,
    /// 1 once some handle has registered as a producer in the [`ProducerTable`] (never
    /// cleared): an `auto_shutdown` queue shuts down only after that.
    pub(crate) producers_seen: AtomicU32,
}

/// The producer handles of each attached process, for a queue built with `auto_shutdown`.
///
/// `counts[i]` is the number of handles on the mapping of attach slot `i`
/// (`Common::slots[i]`) that have put and have not closed or been dropped; each handle adds one
/// (`fetch_add`) before its first put and takes it back (`fetch_sub`) when it closes or drops.
/// A count means something only while its slot holds the pid of a live process: a process
/// killed with handles open leaves its count behind, and it no longer counts once the pid is
/// dead; a process that attaches to a slot resets its count to 0. The producers are done when
/// `MiscLine::producers_seen` is 1 and no slot of a live process has a count above 0.
#[repr(C, align(64))]
pub(crate) struct ProducerTable {
    pub(crate) counts: [AtomicU32; crate::segment::SLOTS],
}

/// The whole queue header; the ring follows it.
#[repr(C)]
pub(crate) struct QueueHeader {
    pub(crate) common: Common,
    pub(crate) config: Config,
    pub(crate) put_lock: MutexLine,
    pub(crate) producer: Producer,
    pub(crate) get_lock: MutexLine,
    pub(crate) consumer: Consumer,
    pub(crate) misc: MiscLine,
    pub(crate) producers: ProducerTable,
}

/// The size of the header, which is also the ring's offset.
pub(crate) const HEADER_SIZE: usize = std::mem::size_of::<QueueHeader>();
const _: () = assert!(HEADER_SIZE == 832);
const _: () = assert!(std::mem::size_of::<MutexLine>() == 64);

/// The smallest ring accepted.
pub(crate) const MIN_RING: usize = 256;
/// The largest ring accepted: 64 MiB. A full ring holds at most `capacity / 8` records (an
/// empty payload still takes its 8-byte header), so this keeps the count of a full ring at
/// 2^23, below the 2^24 at which the head and tail record numbers would wrap to the same
/// value and a full ring would read as empty.
pub(crate) const MAX_RING: usize = 1 << 26;

/// Bits of an index word holding the position.
pub(crate) const POS_BITS: u32 = 40;
const POS_MASK: u64 = (1 << POS_BITS) - 1;
const N_MASK: u64 = (1 << (64 - POS_BITS)) - 1;

/// Packs a position (in 8-byte units) and a record number into an index word.
#[inline]
pub(crate) fn pack(pos: u64, n: u64) -> u64 {
    (pos & POS_MASK) | ((n & N_MASK) << POS_BITS)
}

/// The position (in 8-byte units) of an index word.
#[inline]
pub(crate) fn pos(word: u64) -> u64 {
    word & POS_MASK
}

/// The record number of an index word.
#[inline]
pub(crate) fn num(word: u64) -> u64 {
    word >> POS_BITS
}

/// Units from `head` to `tail`.
#[inline]
pub(crate) fn used_units(head: u64, tail: u64) -> u64 {
    pos(tail).wrapping_sub(pos(head)) & POS_MASK
}

/// Records from `head` to `tail`.
#[inline]
pub(crate) fn count(head: u64, tail: u64) -> u64 {
    num(tail).wrapping_sub(num(head)) & N_MASK
}
