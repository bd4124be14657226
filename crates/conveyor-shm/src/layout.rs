//! The queue segment's header: `#[repr(C)]`, in cache-line groups, with its invariants.
//!
//! ```text
//! offset  size  what
//!      0   256  Common: magic, version, sizes, creator pid, fingerprint, attach table
//!    256    64  Config: ring offset and capacity, item bound           (read-only after init)
//!    320    64  the robust process-shared mutex, and the two wait signals
//!    384    64  Guarded: head, tail, count, unfinished + their redo journal  (under the mutex)
//!    448    64  closed flag, all-done signal, out-of-line counter, repair count
//!    512        the ring: `ring_capacity` bytes of records
//! ```
//!
//! A put or get in the common case touches two header lines: the mutex line and the guarded
//! line. The wait signals share the mutex's line (its last 24 bytes would be padding anyway),
//! so checking for sleepers after an operation costs no extra cache-line transfer.

use std::sync::atomic::{AtomicU32, AtomicU64};

use crate::robust::RobustMutex;
use crate::segment::Common;

/// "CONVSHMQ" read as a little-endian u64: the magic of a queue segment.
pub(crate) const QUEUE_MAGIC: u64 = u64::from_le_bytes(*b"CONVSHMQ");

/// Immutable configuration, written by the creator before the magic is published.
///
/// Invariants (checked at open): `ring_offset == size_of::<QueueHeader>()`,
/// `ring_offset + ring_capacity == Common::total_len`, `ring_capacity` is a multiple of 8 in
/// `MIN_RING..=MAX_RING`; `max_items == 0` means no bound on the item count.
#[repr(C, align(64))]
pub(crate) struct Config {
    pub(crate) ring_offset: AtomicU64,
    pub(crate) ring_capacity: AtomicU64,
    pub(crate) max_items: AtomicU64,
}

/// A sequence word and a sleeper count (see `wait.rs`).
#[repr(C)]
pub(crate) struct SignalWords {
    pub(crate) seq: AtomicU32,
    pub(crate) waiters: AtomicU32,
}

/// The mutex and the two signals, on one cache line.
#[repr(C, align(64))]
pub(crate) struct MutexLine {
    pub(crate) mutex: RobustMutex,
    /// "data available": gets sleep on it, puts wake it.
    pub(crate) data: SignalWords,
    /// "space available": puts sleep on it, gets wake it.
    pub(crate) space: SignalWords,
}

/// Journal kinds: what the redo journal holds.
pub(crate) const JOURNAL_NONE: u64 = 0;
/// A put: `j1` = new tail, `j2` = new count, `j3` = new unfinished.
pub(crate) const JOURNAL_PUT: u64 = 1;
/// A get: `j1` = new head, `j2` = new count.
pub(crate) const JOURNAL_GET: u64 = 2;

/// The ring's indices, written only while holding the mutex.
///
/// `head` and `tail` are byte positions that only grow; a record lives at `pos % capacity`.
/// Invariants: `head <= tail`, `tail - head <= capacity`, both multiples of 8; the bytes in
/// `head..tail` are whole, committed records (see `ring.rs`); `count` is the number of data
/// records among them; `unfinished` counts items put and not yet `task_done`.
///
/// Every update goes through the redo journal: the new values are written to `j1..j3`, then
/// `journal` is set to the operation's kind, then the live fields are written, then `journal`
/// is cleared. A process killed anywhere in that sequence leaves either the old values
/// (journal clear, live fields untouched) or a complete journal that the next owner replays.
#[repr(C, align(64))]
pub(crate) struct Guarded {
    pub(crate) head: AtomicU64,
    pub(crate) tail: AtomicU64,
    pub(crate) count: AtomicU64,
    pub(crate) unfinished: AtomicU64,
    pub(crate) journal: AtomicU64,
    pub(crate) j1: AtomicU64,
    pub(crate) j2: AtomicU64,
    pub(crate) j3: AtomicU64,
}

/// Shutdown and task accounting words.
#[repr(C, align(64))]
pub(crate) struct MiscLine {
    /// 1 once the queue is closed (set under the mutex; never cleared).
    pub(crate) closed: AtomicU32,
    pub(crate) join_seq: AtomicU32,
    pub(crate) join_waiters: AtomicU32,
    /// Source of unique names for out-of-line messages.
    pub(crate) ool_counter: AtomicU64,
    /// How many times a process died holding the mutex and the ring was repaired.
    pub(crate) recoveries: AtomicU64,
}

/// The whole queue header; the ring follows it.
#[repr(C)]
pub(crate) struct QueueHeader {
    pub(crate) common: Common,
    pub(crate) config: Config,
    pub(crate) lock: MutexLine,
    pub(crate) state: Guarded,
    pub(crate) misc: MiscLine,
}

/// The size of the header, which is also the ring's offset.
pub(crate) const HEADER_SIZE: usize = std::mem::size_of::<QueueHeader>();
const _: () = assert!(HEADER_SIZE % 64 == 0);
const _: () = assert!(std::mem::size_of::<MutexLine>() == 64);
const _: () = assert!(std::mem::size_of::<Guarded>() == 64);

/// The smallest ring accepted.
pub(crate) const MIN_RING: usize = 256;
/// The largest ring accepted (record lengths are 32-bit).
pub(crate) const MAX_RING: usize = 1 << 31;
