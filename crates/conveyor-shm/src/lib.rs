//! A crash-safe queue in shared memory between processes ([`ShmQueue`],
//! [`JoinableShmQueue`]), and process-shared robust locks ([`Lock`], [`RLock`]).
//!
//! This is conveyor's `multiprocessing.Queue`: items go through a ring buffer in a segment
//! under `/dev/shm` that every process maps, instead of a feeder thread and a pipe. Pick it to
//! move items between *processes* on one machine; pick `conveyor-thread`'s queues between
//! threads of one process (no encoding at all), `conveyor-pipe` for point-to-point links or
//! another machine, and the manager for shared objects other than queues.
//!
//! ```
//! use conveyor_core::Channel;
//! use conveyor_shm::ShmQueue;
//!
//! // The parent creates the queue; a child opens it by name (conveyor-process passes the
//! // handle itself: it serialises as its name).
//! let q: ShmQueue<(u32, String)> = ShmQueue::new()?;
//! let child_side: ShmQueue<(u32, String)> = ShmQueue::open(q.name())?;
//! child_side.put((1, "dish".into()))?;
//! child_side.close(); // the consumer learns that producers are done
//! assert_eq!(q.get()?, (1, "dish".into()));
//! assert!(q.get().unwrap_err().is_closed());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Design, and why
//!
//! **Segment.** A file `/dev/shm/conveyor-<name>` created with `O_CREAT | O_EXCL` and mode
//! 0600, sized with `ftruncate` and mapped shared with memmap2. It starts with a `#[repr(C)]`
//! header (see `layout.rs` for the byte map): magic, layout version, header and ring sizes,
//! the size of `pthread_mutex_t`, a fingerprint of the item type and codec, the creator's pid
//! and a table of attached pids. `open` validates every field against the file's real length
//! before use, so a foreign, truncated, corrupt or differently-typed segment is a typed
//! [`ShmError`], never undefined behaviour. Indices read from shared memory are bounds-checked
//! on every use; a corrupt ring yields `GetError::Io` (`InvalidData`), not a panic.
//!
//! **Concurrency: two robust mutexes, not a lock-free ring.** Producers serialise among
//! themselves with one pthread mutex and consumers with another (a two-lock queue, so a put
//! never waits for a get); both are `PTHREAD_PROCESS_SHARED` and `PTHREAD_MUTEX_ROBUST`.
//! raw_sync 0.1.5's mutex is process-shared but not robust: a process killed while holding it
//! leaves it locked for everyone, forever. With a robust mutex the kernel releases it when the
//! owner dies and the next locker gets `EOWNERDEAD`; it then repairs that side and calls
//! `pthread_mutex_consistent` (logged with `tracing::warn!`, counted by
//! [`ShmQueue::recoveries`]). A lock-free multi-producer ring would need, for every reserved
//! slot, a way to tell "its writer is slow" from "its writer is dead" (owner pids and liveness
//! checks on the hot path) so that consumers never wait forever behind a dead producer's
//! reservation; the mutexes give the same guarantee with a protocol small enough to check by
//! hand and test by killing processes. They cost little: the tail and the head are each one
//! 64-bit word (position and record count packed), each side caches the other's word and
//! re-reads it only when it runs out of room or records, and the critical sections are a
//! bounds check and one copy.
//!
//! **Commit protocol.** A put encodes its item straight into the free space past the tail
//! (or, when it does not fit there, into a scratch buffer first), then publishes the new tail
//! with one store, through a small redo journal that also carries the task count. A get copies
//! the record out (into a per-thread buffer that is reused) and publishes the new head with one
//! store, then releases the lock, and only then decodes the item. Hence, for a process
//! SIGKILLed at any instant:
//! - a put killed before its publishing store leaves nothing visible (its bytes lie past the
//!   tail); one whose `put` returned `Ok` is delivered exactly once;
//! - **a get killed after its publishing store and before returning loses that one message**
//!   (it was taken from the ring but never handed to the caller); a get killed earlier leaves
//!   it for the next consumer;
//! - no survivor ever reads a torn record, and none blocks on the dead process: the mutex is
//!   recovered, and waiters re-check at least every 100 ms (below).
//!
//! **An item that does not decode** is consumed all the same, as Python's `Queue.get` consumes
//! a message it cannot unpickle and raises: a `Deserialize` that fails makes that `get` return
//! [`GetError::Codec`](conveyor_core::GetError::Codec), and one that panics unwinds through
//! `get`, in both cases with the record already out of the ring and the lock released, so the
//! queue goes on for every other thread and process (and a process that dies of the panic
//! holds no lock).
//!
//! **Waiting.** Blocked puts and gets spin for a short bounded time ([`DEFAULT_SPIN`]; pure
//! spinning for at most 1 µs, then yielding the CPU between checks, so that a peer waiting for
//! this CPU gets it at once) watching the ring's tail or head, then sleep with `FUTEX_WAIT` on
//! a sequence word (shared, not `FUTEX_PRIVATE_FLAG`). Notifiers bump the word and call
//! `FUTEX_WAKE` only when a sleeper is registered, so a put or get that nobody waits for makes
//! no system call. The protocol is model-checked with loom (`wait.rs`). Since a peer may die
//! between its change and its wake-up, no sleep is longer than 100 ms: a survivor always
//! re-checks and goes on. Timeouts use the monotonic clock.
//!
//! **Checked by models, not only by tests.** The ring's index and commit protocol lives in
//! `proto.rs`, generic over where its words and bytes are, and two models run that very code:
//! - a loom model of a producer and a consumer (and of two producers around the put mutex and
//!   a consumer) over a 64-byte ring with wrap-around and pad records: FIFO, no loss, no
//!   duplicate, no torn or racy read of a record's bytes, in every interleaving loom explores;
//!   with the wait/wake handshake's model (`wait.rs`):
//!   `RUSTFLAGS="--cfg loom" cargo test -p conveyor-shm --release --lib loom` (seconds);
//! - an exhaustive crash model that kills every put and get before each of its stores (each
//!   shared word, each 8-byte unit of a record), runs the `EOWNERDEAD` repair (itself killed
//!   at each store and run again), and checks that every put that returned is delivered once
//!   and whole, a put killed before its journal mark is invisible, a killed get loses at most
//!   its own record, and the ring works on: `cargo test -p conveyor-shm --lib crash_model`
//!   (it runs with the ordinary tests). Out-of-line records are covered as records (their
//!   files are written before the record and removed by the consumer; a put killed before its
//!   commit leaves a file that segment cleanup removes).
//!
//! **Records and large messages.** A record is a length, a kind and the encoded bytes, padded
//! to 8; a record never wraps (a pad record fills the ring's end). A message larger than half
//! the ring goes *out of line*: it is written to a file of its own next to the segment
//! (`conveyor-<name>.ool.<pid>.<n>`) and the ring carries its name; the consumer reads and
//! unlinks it. Nothing is ever truncated; the only size limit is 4 GiB. The ring's size is a
//! power of two (a size given is rounded down) from 256 B to 128 MiB; the default ring is
//! 4 MiB, so a 1 MiB message travels inline.
//!
//! **Close.** [`close`](conveyor_core::Channel::close) sets a flag under the lock and wakes
//! every waiter in every process: puts then fail with `Closed`, gets drain what is left and
//! then return `Closed`.
//!
//! **Lifecycle.** Each process that opens a segment records its pid in the header. When a
//! handle goes, the process removes its pid, and if no recorded process is still alive it
//! unlinks the segment (and its out-of-line files). A process killed by SIGKILL never removes
//! its pid, but it no longer counts once dead, so the survivors' last handle still unlinks.
//! If *every* user was killed, the segment stays: [`list_segments`] shows it as leaked and
//! [`remove_leaked`] removes it (the `conveyor` CLI uses these). A creator can also
//! [`unlink`](ShmQueue::unlink) early. Keep the creating handle alive until the other processes
//! have opened the queue: a segment whose last handle went is gone.
//!
//! **Locks.** [`Lock`] and [`RLock`] are robust process-shared mutexes in a small segment each;
//! a lock whose holder died is recovered and the next guard says so
//! ([`LockGuard::previous_owner_died`]).
//!
//! # Performance
//!
//! `cargo bench -p conveyor --no-default-features --features shm,process --bench shm` runs
//! two processes (one producer, one consumer) over this queue and, in the same criterion
//! groups, over ipmpsc, ipc-channel and a Unix socketpair with length-prefixed postcard frames;
//! typed payloads hold a `serde_bytes` vector. Medians from one run on the project's 2-vCPU
//! machine while it was quiet (load 1.7):
//!
//! | workload               | ShmQueue     | ipmpsc      | ipc-channel  | socketpair   |
//! |------------------------|--------------|-------------|--------------|--------------|
//! | 64 B, messages/s       | 10.0 M       | 4.1 M       | 0.75 M       | 0.64 M       |
//! | 4 KiB, messages/s      | 6.6 M        | 1.27 M      | 0.48 M       | 0.23 M       |
//! | 1 MiB, bytes/s         | 30 GiB/s     | 14 GiB/s    | 0.56 GiB/s   | 5.0 GiB/s    |
//! | ping-pong 64 B, median | 0.54 µs      | 45 µs       | 53 µs        | 46 µs        |
//!
//! With the wait strategy set to sleep at once (`spin(Duration::ZERO)`) the round trip was
//! 43 µs in that run. That is the machine's floor for two futex hand-offs between idle vCPUs,
//! not work of the queue: a bare C program bouncing a futex word between two processes, one
//! pinned to each vCPU, takes 24–35 µs per round trip (the same as `ShmQueue` pinned the same
//! way, in alternating runs), and 4.5 µs with both on one vCPU (`ShmQueue`: 5.1 µs). Every
//! sleeping round trip makes exactly two `FUTEX_WAKE` and two `FUTEX_WAIT` calls. The
//! socketpair and ipmpsc figures above pay the same cross-vCPU wake-up.
//! On a loaded machine (load 6, other builds running) the same figures were 4.2 M, 3.3 M,
//! 13 GiB/s and 23 µs (12 µs sleeping at once): spinning helps only when the peer has a CPU.
//! The busy part of the spin was then cut from a quarter of [`DEFAULT_SPIN`] (5 µs, checked
//! every 64 pauses: up to 8 µs) to 1 µs; with both processes on one vCPU the default
//! ping-pong went from 16–35 µs to 5–10 µs, and at load 11 from 25–36 µs to 9–13 µs, while
//! with a vCPU each it stayed at 0.4 µs.
//! The 1 MiB figures fit in the CPU's caches; a copy from memory runs at about 6.5 GB/s here.
//!
//!
//! - Linux only (futex, robust mutexes, `/dev/shm`); `$CONVEYOR_SHM_DIR` moves the segments.
//! - All processes must be built with the same item type and codec (checked) and the same
//!   conveyor version (checked through the layout version).
//! - A process that is stopped (SIGSTOP) while holding the queue's lock blocks the others
//!   until it resumes: robustness covers death, not suspension.
//! - The crate defends against a corrupt segment, not against a malicious process writing into
//!   the mapping while others read it.

#![warn(missing_docs)]

mod error;
mod futex;
mod joinable;
mod layout;
mod lifecycle;
mod lock;
mod proto;
mod queue;
mod raw;
mod ring;
mod robust;
mod segment;
mod wait;

pub use error::{LockError, ShmError};
pub use joinable::JoinableShmQueue;
pub use lifecycle::{list_segments, remove_leaked, remove_segment, SegmentInfo, SegmentKind};
pub use lock::{Lock, LockGuard, RLock};
pub use queue::{ShmQueue, ShmQueueBuilder, DEFAULT_RING_BYTES, DEFAULT_SPIN};
pub use segment::{shm_dir, FILE_PREFIX};
