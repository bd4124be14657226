//! A crash-safe queue in shared memory between processes ([`ShmQueue`],
//! [`JoinableShmQueue`]), process-shared robust locks ([`Lock`], [`RLock`]), and shared memory
//! itself: [`SharedMemory`] (Python's `multiprocessing.shared_memory`, under the same names),
//! [`Value`] and [`Array`] (Python's `multiprocessing.Value` and `Array`).
//!
//! This is conveyor's `multiprocessing.Queue`: items go through a ring buffer in a segment
//! under `/dev/shm` that every process maps, instead of a feeder thread and a pipe. Pick it to
//! move items between *processes* on one machine; pick `conveyor-thread`'s queues between
//! threads of one process (no encoding at all), `conveyor-pipe` for point-to-point links or
//! another machine, and the manager for shared objects other than queues.
//!
//! ```
//! use conveyor_shm::{Channel, ShmQueue};
//!
//! // The parent creates the queue; a child opens it by name (conveyor-process passes the
//! // handle itself: it serialises as its name). This one shuts itself down once every
//! // handle that has put has closed or gone.
//! let q: ShmQueue<(u32, String)> = ShmQueue::builder().auto_shutdown().create()?;
//! let child_side: ShmQueue<(u32, String)> = ShmQueue::open(q.name())?;
//! child_side.put((1, "dish".into()))?;
//! child_side.close(); // this handle puts no more: Python's `Queue.close()`
//! assert_eq!(q.get()?, (1, "dish".into()));
//! assert!(q.get().unwrap_err().is_closed()); // the consumer learns that producers are done
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Shared memory, values and arrays
//!
//! Pick a queue to hand items over; pick these when processes share *state* that each reads
//! and changes in place:
//!
//! - [`Value<T>`] holds one plain-old-data value (`T: bytemuck::Pod`: integers, floats,
//!   `#[repr(C)]` structs of them) with a robust process lock: `get`/`set` under the lock,
//!   [`get_lock`](Value::get_lock) for a read-modify-write, and for integers
//!   [`fetch_add`](Value::fetch_add), [`compare_exchange`](Value::compare_exchange) and
//!   [`swap`](Value::swap) without any lock (seed 004's race fixed in one instruction; the
//!   `shared_value_race` example);
//! - [`Array<T>`] holds a fixed number of them, with copies of ranges in and out under the
//!   lock;
//! - [`SharedMemory`] is a raw block of bytes with no header, named as Python names its
//!   blocks (`SharedMemory("x")` is `/dev/shm/x`), so a Rust and a Python program share one;
//!   its docs say how Python's resource tracker may unlink a block it did not create,
//!   and how to avoid it.
//!
//! ```
//! use conveyor_shm::{Array, SharedMemory, Value};
//!
//! let hits = Value::new(0u64)?;
//! hits.fetch_add(1);
//! let samples = Array::new(&[0.0f32; 4])?;
//! samples.write(1, &[1.0, 2.0])?;
//! assert_eq!(samples.to_vec()?, vec![0.0, 1.0, 2.0, 0.0]);
//! let block = SharedMemory::new(4096)?; // Python: SharedMemory(block.name())
//! block.unlink_on_drop();
//! block.write(0, b"shared")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! All three travel to a child process (in conveyor-process arguments) as their names.
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
//! with one store, through a small redo journal that also carries the task count. A typed get
//! of a record of up to 64 KiB decodes it in place, straight from the ring, under the get
//! mutex: it first marks the record in the consumer's get journal (`taking`), then decodes,
//! then publishes the new head with one store and releases the lock. A larger record is
//! copied out (after the same mark) and decoded once the lock is released, so big decodes run
//! in parallel and never hold up other consumers; an out-of-line record's file name is
//! copied out the same way and its file read after the lock is released. A put or a get
//! with a deadline (`try_put`, `put_timeout`, `try_get`, `get_timeout`) waits for its mutex
//! only until that deadline (`pthread_mutex_trylock`, `pthread_mutex_timedlock`), so a slow
//! in-place decode in another consumer, or a peer stopped inside a put, delays it by no more
//! than its timeout. A `try_get` that finds the get mutex taken reports `Empty` at once, as
//! Python's `get(block=False)` does; a `try_put` waits for the put mutex up to 20 ms (far
//! longer than any put holds it), since Python's `put(block=False)` waits for its lock and
//! raises `Full` only when the queue is full; past that (a peer stopped inside a put) it
//! reports `Full`. Hence, for a process SIGKILLed at any instant:
//! - a put killed before its publishing store leaves nothing visible (its bytes lie past the
//!   tail); one whose `put` returned `Ok` is delivered exactly once;
//! - **a get killed midway may lose the one message it was taking**, and no other: a get
//!   loses it if killed after its `taking` mark, that is
//!   at any point of the decode (the repair skips a record marked as being taken, since a
//!   record whose decoder kills its process would otherwise kill every consumer in turn), and
//!   leaves it for the next consumer if killed before the mark;
//! - no survivor ever reads a torn record, and none blocks on the dead process: the mutex is
//!   recovered, and waiters re-check at least every 100 ms (below).
//!
//! **An item that does not decode** is consumed all the same, as Python's `Queue.get` consumes
//! a message it cannot unpickle and raises: a `Deserialize` that fails makes that `get` return
//! [`GetError::Codec`], and one that panics unwinds through
//! `get`, in both cases with the record already out of the ring and the lock released, so the
//! queue goes on for every other thread and process. A panic under `panic = "abort"` (or any
//! other death mid-decode) kills the process while it holds the get mutex: the next consumer
//! gets `EOWNERDEAD`, finds the record marked in the `taking` journal and skips it, so that
//! one message is lost and the queue goes on.
//!
//! **Trust.** An in-place decode reads a borrowed slice of the shared mapping. This is sound
//! only while every process that maps the segment follows the protocol: no peer writes a
//! record between the head and the tail (producers write only past the tail, under the put
//! mutex; consumers only move the head, under the get mutex). A process that scribbles on the
//! mapping can break any shared-memory queue; the queue defends against corrupt *indices and
//! lengths* (they are bounds-checked, and a bad one is an error, never an out-of-bounds
//! access), not against a peer rewriting bytes under a reader.
//!
//! **Waiting.** Blocked puts and gets spin for a short bounded time ([`DEFAULT_SPIN`]; pure
//! spinning for at most 1 µs, then yielding the CPU between checks, so that a peer waiting for
//! this CPU gets it at once) watching the ring's tail or head, then sleep with `FUTEX_WAIT` on
//! a sequence word (shared, not `FUTEX_PRIVATE_FLAG`). A yield that keeps the waiter off its
//! CPU for over 50 µs means the CPUs are oversubscribed (a yield then hands the CPU away for a
//! whole time slice, and only a sleeper's wake-up preempts): the spin ends and that thread
//! stops yielding for 200 ms. A sleeper *arms* the signal; a notifier that finds it armed
//! disarms it, bumps the word and calls `FUTEX_WAKE` for every sleeper, so a put or get that
//! nobody waits for makes no system call, and one wake-up in flight is not followed by one
//! per item while the sleeper waits for a CPU. The protocol's fenced form (a `SeqCst` fence
//! on each side) is model-checked with loom (`wait.rs`); production drops the fence
//! instructions because every access of the handshake is `SeqCst`, an argument by the memory
//! model that loom does not check (it treats `SeqCst` accesses as acquire/release). Since a
//! peer may die between its change and its wake-up, no sleep is longer than 100 ms: a
//! survivor always re-checks and goes on. Timeouts use the monotonic clock.
//!
//! A get wakes the producers asleep on a ring full of bytes once a batch is free (an eighth
//! of the ring, or the ring is empty), not for every record: two processes that share a CPU
//! otherwise trade it after a few records each (both on one vCPU here: 232 k futex calls a
//! second and 10.3 M messages/s, against 11 k and 14.5 M with batches). A producer left asleep
//! while a little room is free (its consumers stopped after a few gets) goes on when a later
//! get frees a batch, at its deadline, or within the 100 ms re-check. A queue bounded by
//! `max_items` (Python's `Queue(maxsize)`) wakes its producers after every get, as Python's
//! blocked `put` goes on after any `get`.
//!
//! **Checked by models, not only by tests.** The ring's index and commit protocol lives in
//! `proto.rs`, generic over where its words and bytes are, and two models run that very code:
//! - a loom model of a producer and a consumer (and of two producers around the put mutex and
//!   a consumer, of the typed get's in-place `get_with`, of a `max_items` bound and of close)
//!   over a 64-byte ring with wrap-around and pad records: FIFO, no loss, no
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
//! (`conveyor-<name>.ool.<segment inode>.<pid>.<n>`) and the ring carries its name; the consumer reads and
//! unlinks it. Nothing is ever truncated; the only size limit is 4 GiB. The ring's size is a
//! power of two (a size given is rounded down) from 256 B to 64 MiB; the default ring is
//! 4 MiB, so a 1 MiB message travels inline.
//!
//! **Shutdown and close, as Python names them.**
//!
//! | Python                                  | conveyor                                          |
//! |-----------------------------------------|---------------------------------------------------|
//! | `q.shutdown()` / `q.shutdown(immediate=True)` (3.13's `queue.Queue`) | [`shutdown`](conveyor_core::Channel::shutdown)`(false)` / `(true)`, for every process |
//! | `mp.Queue.close()`                      | [`close`](ShmQueue::close): this handle puts no more |
//! | `mp.Queue.join_thread()`                | nothing needed: a put is in the segment when it returns, there is no feeder thread to wait for |
//! | `mp.Queue.cancel_join_thread()`         | nothing needed: no feeder thread, so nothing holds up a process's exit |
//!
//! [`shutdown`](conveyor_core::Channel::shutdown) sets a flag under the put mutex and wakes
//! every waiter in every process: puts then fail with `Closed`, and gets drain what is left
//! and then return `Closed`. With `immediate`, the caller then takes out every record left, one
//! at a time under the get mutex, and counts each as done under the put mutex (so `join`
//! returns); a process killed during that leaves at most one record taken and not counted (as
//! a consumer killed between `get` and `task_done` does), and the records it did not reach are
//! drained by the gets as after `shutdown(false)`. The two mutexes are never held together.
//!
//! [`close`](conveyor_core::Channel::close) is per handle, as Python's is per process: a flag
//! in the handle (clones and handles in other processes are other handles). A queue built with
//! [`auto_shutdown`](ShmQueueBuilder::auto_shutdown) shuts itself down once every handle that
//! has put has closed, been dropped, or died with its process: each producer handle is counted
//! in the segment, per slot of the attach table (see `layout.rs`), a closing or dropped
//! handle takes its count back and looks whether any live one is left, and a consumer waiting
//! on the empty queue looks (every 50 ms at most) for counts left by processes that no longer
//! exist. A killed producer therefore cannot keep its consumers waiting.
//!
//! **Lifecycle.** Each process that opens a segment records its pid in the header. When a
//! handle goes, the process removes its pid, and if no recorded process is still alive it
//! unlinks the segment and removes the out-of-line files of the messages nobody took. A
//! process killed by SIGKILL never removes its pid, but it no longer counts once dead, so the
//! survivors' last handle still unlinks. If *every* user was killed, the segment stays:
//! [`list_segments`] shows it as leaked and [`remove_leaked`] removes it; they leave other
//! users' files alone. From a shell, the `conveyor` command (crate conveyor-cli,
//! `cargo install --path crates/conveyor-cli`) runs them: `conveyor shm list` (`--json` for
//! scripts), `conveyor shm inspect NAME` (a queue's items, bytes, bound and closed flag),
//! `conveyor shm clean` (`--dry-run` to see first) and `conveyor shm rm NAME...`. That includes a queue whose last handles
//! are held by daemon children, which are killed when their parent exits: unless its creator
//! calls [`unlink`](ShmQueue::unlink) (after `join`, say), it is left behind.
//!
//! [`unlink`](ShmQueue::unlink) (and [`remove_segment`]) removes only the segment's name: new
//! `open`s fail, and handles already open keep working, puts and gets of large messages
//! included; the file of a message not yet taken stays until a consumer takes it, or until the
//! last handle goes. So every message whose `put` returned `Ok` is still delivered to the
//! processes that hold the queue. A message's file is named after its segment's inode, so a
//! new queue that takes an unlinked queue's name never touches the old one's files (nor the
//! old one the new one's), and [`remove_leaked`] leaves alone the files of a queue whose name
//! is gone while some process still maps it (read from `/proc/<pid>/maps`).
//!
//! Keep the creating handle alive until the other processes have opened the queue: a segment
//! whose last handle went is gone, and an `open` that races with the last handle's drop (it
//! attaches just after the dropper found no live process in the table) can end up alone on an
//! unlinked segment. The table has 48 slots (a dead process's slot is reused): a 49th process
//! attached at once still opens and uses the queue, but is not tracked (a warning is logged).
//! The last *tracked* handle then unlinks the segment and removes its large messages' files even
//! while that process still uses it, and if that process is the last user the segment is left
//! behind and listed as leaked.
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
//! typed payloads hold a `serde_bytes` vector. The ping-pong group also has `futex-floor`: two
//! processes bouncing a futex word, no data, the floor of any sleep-at-once round trip. After
//! the criterion groups, a side-by-side pass alternates short slices of every peer (15 rounds,
//! `SHM_ROUNDS` to change) and prints medians and ratios from that one run
//! (`... --bench shm -- side_by_side` runs only that pass).
//!
//! Measured on 2026-11-26 with the final code. On the project's 2-vCPU machine (AMD EPYC, a
//! quiet start, `nice -n -20`), criterion medians: 64 B 9.26 M messages/s against ipmpsc's
//! 1.74 M (5.3x), 4 KiB 7.37 M against 1.18 M, 1 MiB 20.9 GiB/s against 13.7 GiB/s (the same
//! payload every time, so the bytes sit in the caches), ping-pong 0.42 µs against 44 µs.
//! Its side-by-side pass: 64 B 17.8 M against 6.56 M (2.71x), 4 KiB 2.81 M against 1.20 M.
//! On a 16-core machine (Intel Xeon, Firecracker VM), where the two processes always run on
//! different cores: 64 B 4.45 M against 2.26 M (criterion) and 8.29 M against 3.10 M
//! (side by side, 2.67x), 4 KiB 1.71 M against 0.74 M, 1 MiB 6.4 GiB/s against 9.9 GiB/s
//! (0.65x: a record over 64 KiB is copied out under the lock and decoded after it, one more
//! pass over the bytes than ipmpsc's decode from the ring, which costs most when the ring's
//! bytes sit in another core's cache), ping-pong 1.23 µs against 14 µs.
//!
//! **Sleeping at once** (`spin(Duration::ZERO)`), a round trip is two futex wake-ups, and what
//! one costs is the machine's: on the 16-core machine 14.2 µs against 12.2 µs for
//! `futex-floor` (the same criterion run); on the 2-vCPU machine 39.4 µs against 39.2 µs when
//! the machine is otherwise idle (waking a halted vCPU goes through the hypervisor) and
//! 6-9 µs when the other vCPU is busy.
//!
//! **Placement** decides the figures on 2 vCPUs more than anything in the queue. With both
//! processes on one vCPU (`taskset -c 0`, or a loaded machine), every message costs the
//! producer's and the consumer's CPU time back to back, and ipmpsc's simpler, not
//! crash-safe protocol costs a little less per message: side by side 64 B 14.9-15.0 M against
//! 15.6-17.0 M (0.88-0.96x), 4 KiB 3.51 M against 3.84-3.94 M (0.89-0.92x); criterion 64 B
//! 14.7 M against 13.3 M in one run, ping-pong 7.0 µs (futex floor on one vCPU 5.5 µs, ipmpsc
//! 10.8 µs). There the consumer is the bottleneck (about 60% of the CPU time: the decode and
//! its allocation, the robust mutex, the `SeqCst` publishing store).
//!
//! What was fixed along the way: notifiers made a `FUTEX_WAKE` per item for as long as a
//! woken peer waited for a CPU (now one per sleep); the consumer's copy-then-decode tipped a
//! 4 KiB stream into a regime where the ring no longer fits in the caches (now decoded in
//! place, 0.22 M back to 3-4 M messages/s); the hot path was not inlined (a put and a get
//! of a 64 B item in one thread went from 100 ns to 60 ns); a yield on an oversubscribed
//! machine cost a time slice (ping-pong 2.2 ms at load 20, now a futex sleep); and a large
//! record's copy-out went to a fresh allocation every time, whose page faults cost more than
//! the copy (1 MiB at 0.95 GiB/s, now a buffer kept per thread).
//!
//! **Values and arrays.** `cargo bench -p conveyor --no-default-features --features
//! shm,process --bench shared_memory` has two processes increment one `Value<u64>` at once
//! with [`Value::fetch_add`], with [`Value::get_lock`] and a get and a set, and Python's
//! `multiprocessing.Value('Q')` with `with v.get_lock(): v.value += 1`; and copies 1 MiB
//! into an [`Array<u8>`] and back out against two plain `memcpy`s. On the 2-vCPU machine on
//! 2026-12-03, in two runs under loads of 13 and 23 (other builds running), side by side:
//! `fetch_add` 15.7 and 15.1 ns per pair of increments, the lock path 206 and 156 ns, Python
//! 5.7 and 7.5 µs (`fetch_add` 364x and 497x Python, the lock path 28x and 48x); the array
//! 1.08x and 1.42x memcpy's rate (12.96 against 12.02 GB/s, 11.09 against 7.80). On so loaded
//! a machine the array's ratio moves from run to run; it never fell below 1.
//!
//! - Linux only (futex, robust mutexes, `/dev/shm`); `$CONVEYOR_SHM_DIR` moves the segments.
//! - All processes must be built with the same item type and codec and the same conveyor
//!   version. The type is checked by its name and the codec's (two different types of the same
//!   name pass, and their items then fail to decode with `GetError::Codec`, never undefined
//!   behaviour); the version through the layout version. `open` takes the ring size and
//!   `max_items` from the segment, as the creator set them.
//! - A process that is stopped (SIGSTOP) while holding a queue's mutex makes the others'
//!   blocking calls wait until it resumes (robustness covers death, not suspension); calls
//!   with a deadline (`try_*`, `*_timeout`) still return by it.
//! - The crate defends against a corrupt segment, not against a malicious process writing into
//!   the mapping while others read it.
//!
//! # One `use`
//!
//! The traits whose methods the queues answer ([`Channel`], [`QueueInfo`], [`Joinable`]), their
//! errors and the codecs are re-exported here, so nothing else needs importing:
//!
//! ```
//! use conveyor_shm::{Channel, GetError, Joinable, JoinableShmQueue, QueueInfo};
//!
//! let q: JoinableShmQueue<String> = JoinableShmQueue::new()?;
//! q.put("dish".to_string())?;
//! assert_eq!(q.len(), 1);
//! assert_eq!(q.get()?, "dish");
//! q.task_done()?;
//! assert!(q.join_timeout(std::time::Duration::from_secs(5)));
//! assert!(matches!(q.try_get(), Err(GetError::Empty)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

mod array;
mod error;
mod futex;
mod joinable;
mod layout;
mod lifecycle;
mod lock;
mod pod_segment;
mod proto;
mod queue;
mod raw;
mod ring;
mod robust;
mod segment;
mod shared_memory;
mod value;
mod wait;

pub use array::{Array, ArrayError, ArrayGuard};
/// The contract this crate implements, re-exported from `conveyor-core` so that one `use` of
/// this crate is enough: the traits whose methods its handles answer, and their error types.
pub use conveyor_core::{
    Channel, Codec, CodecError, GetError, Joinable, Postcard, PutError, QueueInfo, TaskDoneError,
    Unavailable, UnavailableKind,
};
pub use error::{LockError, ShmError};
pub use joinable::JoinableShmQueue;
pub use lifecycle::{
    inspect_segment, list_segments, remove_leaked, remove_segment, ElementDetails, HeaderDetails,
    QueueDetails, SegmentDetails, SegmentInfo, SegmentKind,
};
pub use lock::{Lock, LockGuard, RLock};
pub use queue::{ShmQueue, ShmQueueBuilder, DEFAULT_RING_BYTES, DEFAULT_SPIN};
pub use segment::{shm_dir, FILE_PREFIX};
pub use shared_memory::{AccessError, SharedMemory};
pub use value::{AtomicInt, Value, ValueGuard};
