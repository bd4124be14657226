//! [`Lock`] and [`RLock`]: Python's `multiprocessing.Lock` / `RLock`, robust across crashes.
//!
//! Each lock is a small segment holding one robust, process-shared pthread mutex. If its holder
//! dies (even by SIGKILL), the kernel releases it; the next [`acquire`](Lock::acquire) succeeds
//! and its guard's [`previous_owner_died`](LockGuard::previous_owner_died) is `true`, so the new
//! owner knows the data the lock protects may be half-updated.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{LockError, ShmError};
use crate::layout::MutexLine;
use crate::robust::{Acquired, MutexKind, RobustMutex};
use crate::segment::{anonymous_name, Common, Segment};

const LOCK_MAGIC: u64 = u64::from_le_bytes(*b"CONVLOCK");
const RLOCK_MAGIC: u64 = u64::from_le_bytes(*b"CONVRLCK");

/// A robust process lock inside a segment's header: the lock segments' whole payload, and
/// the lock of a [`Value`](crate::Value) or [`Array`](crate::Array).
///
/// Invariants: `line.mutex` was initialised (robust, process-shared, of the segment's kind)
/// before the segment's magic was published; `recoveries` only grows.
#[repr(C)]
pub(crate) struct LockState {
    pub(crate) line: MutexLine,
    /// How many times an owner died holding the lock.
    pub(crate) recoveries: AtomicU64,
}

impl LockState {
    /// Initialises the lock at `this`.
    ///
    /// # Safety
    /// `this` must point to writable, zeroed memory of a `LockState` inside a segment that no
    /// other thread or process uses yet (its magic is not published).
    pub(crate) unsafe fn init(this: *mut LockState, kind: MutexKind) -> io::Result<()> {
        // SAFETY: the caller's contract; the mutex lies inside `*this`.
        unsafe { RobustMutex::init(std::ptr::addr_of_mut!((*this).line.mutex), kind) }
    }

    /// Maps a lock result; after an owner died, counts and logs the recovery and marks the
    /// mutex consistent. `Some(true)` when the previous owner died holding it; `None` when the
    /// lock is held and the call could not wait, or its time ran out.
    fn finish(&self, name: &str, r: io::Result<Acquired>) -> Result<Option<bool>, LockError> {
        match r {
            Ok(Acquired::Clean) => Ok(Some(false)),
            Ok(Acquired::OwnerDied) => {
                self.recoveries.fetch_add(1, Ordering::Relaxed);
                self.line.mutex.make_consistent()?;
                tracing::warn!(
                    lock = name,
                    "a process died holding the lock: lock recovered"
                );
                Ok(Some(true))
            }
            Err(e) => match e.raw_os_error() {
                Some(libc::EBUSY) | Some(libc::ETIMEDOUT) => Ok(None),
                Some(libc::EDEADLK) => Err(LockError::WouldDeadlock),
                Some(libc::ENOTRECOVERABLE) => Err(LockError::NotRecoverable),
                _ => Err(LockError::Io(e)),
            },
        }
    }

    /// Locks, blocking; `Ok(true)` if the previous owner died holding it.
    pub(crate) fn acquire(&self, name: &str) -> Result<bool, LockError> {
        match self.finish(name, self.line.mutex.lock())? {
            Some(died) => Ok(died),
            None => Err(LockError::Io(io::Error::other(
                "a blocking lock returned without the lock",
            ))),
        }
    }

    /// Locks if free now; `None` if it is held.
    pub(crate) fn try_acquire(&self, name: &str) -> Result<Option<bool>, LockError> {
        self.finish(name, self.line.mutex.try_lock())
    }

    /// Locks, waiting at most `timeout` (monotonic clock); `None` if the time ran out.
    pub(crate) fn acquire_timeout(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<Option<bool>, LockError> {
        self.finish(name, self.line.mutex.lock_for(timeout))
    }

    /// Unlocks a lock this thread holds; a failure is logged (a guard's drop cannot report it).
    pub(crate) fn release(&self, name: &str) {
        if let Err(e) = self.line.mutex.unlock() {
            tracing::error!(lock = name, error = %e, "could not unlock");
        }
    }

    /// How many times an owner died holding the lock.
    pub(crate) fn recoveries(&self) -> u64 {
        self.recoveries.load(Ordering::Relaxed)
    }
}

/// The lock segment's header.
///
/// Invariant: `state` was initialised (of the kind the magic names) before the magic was
/// published.
#[repr(C)]
struct LockHeader {
    common: Common,
    state: LockState,
}

const LOCK_HEADER_SIZE: usize = std::mem::size_of::<LockHeader>();
// The layout before `LockState` was factored out: the mutex at 256, the count at 320.
const _: () = assert!(LOCK_HEADER_SIZE == 384);

#[derive(Debug)]
struct Shared {
    seg: Segment,
}

// SAFETY: the mapping lives as long as `seg`; the header holds only atomics and the pthread
// mutex, designed for concurrent use.
unsafe impl Send for Shared {}
// SAFETY: as above.
unsafe impl Sync for Shared {}

impl Shared {
    fn create(name: Option<&str>, magic: u64, kind: MutexKind) -> Result<Shared, ShmError> {
        let name = name
            .map(str::to_string)
            .unwrap_or_else(|| anonymous_name("lock"));
        let seg = Segment::create(
            &name,
            LOCK_HEADER_SIZE,
            magic,
            LOCK_HEADER_SIZE,
            0,
            |base| {
                // SAFETY: the mapping holds a whole LockHeader, page aligned and zeroed, and is
                // not visible to openers before the magic is published.
                unsafe {
                    let h = base as *mut LockHeader;
                    LockState::init(std::ptr::addr_of_mut!((*h).state), kind)
                }
            },
        )?;
        Ok(Shared { seg })
    }

    fn open(name: &str, magic: u64, what: &'static str) -> Result<Shared, ShmError> {
        let seg = Segment::open(name, magic, what, LOCK_HEADER_SIZE)?;
        Ok(Shared { seg })
    }

    fn state(&self) -> &LockState {
        // SAFETY: create/open checked that the mapping is exactly LOCK_HEADER_SIZE bytes and
        // initialised; it lives as long as `self`.
        unsafe { &(*(self.seg.base() as *const LockHeader)).state }
    }

    fn acquire(&self) -> Result<LockGuard<'_>, LockError> {
        let died = self.state().acquire(self.seg.name())?;
        Ok(LockGuard::new(self, died))
    }

    fn try_acquire(&self) -> Result<Option<LockGuard<'_>>, LockError> {
        let taken = self.state().try_acquire(self.seg.name())?;
        Ok(taken.map(|died| LockGuard::new(self, died)))
    }

    fn acquire_timeout(&self, timeout: Duration) -> Result<Option<LockGuard<'_>>, LockError> {
        let taken = self.state().acquire_timeout(self.seg.name(), timeout)?;
        Ok(taken.map(|died| LockGuard::new(self, died)))
    }
}

/// Holds a [`Lock`] or [`RLock`] until dropped. It cannot be sent to another thread (a
/// pthread mutex is released by the thread that took it).
pub struct LockGuard<'a> {
    shared: &'a Shared,
    previous_owner_died: bool,
    _not_send: PhantomData<*const ()>,
}

impl<'a> LockGuard<'a> {
    fn new(shared: &'a Shared, previous_owner_died: bool) -> Self {
        LockGuard {
            shared,
            previous_owner_died,
            _not_send: PhantomData,
        }
    }

    /// Whether the previous owner died holding the lock: what it protected may be
    /// half-updated, and should be checked or repaired before use.
    pub fn previous_owner_died(&self) -> bool {
        self.previous_owner_died
    }
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("lock", &self.shared.seg.name())
            .field("previous_owner_died", &self.previous_owner_died)
            .finish()
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        self.shared.state().release(self.shared.seg.name());
    }
}

macro_rules! lock_type {
    ($(#[$doc:meta])* $name:ident, $magic:expr, $kind:expr, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name {
            shared: Arc<Shared>,
        }

        impl $name {
            /// Creates a lock with a fresh anonymous name.
            pub fn new() -> Result<Self, ShmError> {
                Ok($name { shared: Arc::new(Shared::create(None, $magic, $kind)?) })
            }

            /// Creates a lock called `name`; fails if it exists.
            pub fn create(name: &str) -> Result<Self, ShmError> {
                Ok($name { shared: Arc::new(Shared::create(Some(name), $magic, $kind)?) })
            }

            /// Opens the lock called `name`, created by this or another process.
            pub fn open(name: &str) -> Result<Self, ShmError> {
                Ok($name { shared: Arc::new(Shared::open(name, $magic, $what)?) })
            }

            /// The segment's name: what another process passes to `open`.
            pub fn name(&self) -> &str {
                self.shared.seg.name()
            }

            /// Acquires the lock, blocking while another thread or process holds it.
            pub fn acquire(&self) -> Result<LockGuard<'_>, LockError> {
                self.shared.acquire()
            }

            /// Acquires the lock if it is free now (Python's `acquire(False)`); `None` if
            /// another thread or process holds it. The same shape as the manager's
            /// `try_acquire`.
            pub fn try_acquire(&self) -> Result<Option<LockGuard<'_>>, LockError> {
                self.shared.try_acquire()
            }

            /// Acquires the lock, waiting at most `timeout` (Python's `acquire(timeout=t)`);
            /// `None` if it stayed held all that time. The time is measured on the monotonic
            /// clock: setting the wall clock meanwhile neither ends the wait early nor
            /// (beyond one 100 ms slice) makes it longer.
            pub fn acquire_timeout(
                &self,
                timeout: Duration,
            ) -> Result<Option<LockGuard<'_>>, LockError> {
                self.shared.acquire_timeout(timeout)
            }

            /// How many times an owner died holding this lock and it was recovered.
            pub fn recoveries(&self) -> u64 {
                self.shared.state().recoveries()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).field("name", &self.name()).finish()
            }
        }

        /// Travels (for example into a conveyor-process child's arguments) as its name; the
        /// receiving side opens the segment.
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.name().serialize(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let name = String::deserialize(d)?;
                $name::open(&name).map_err(serde::de::Error::custom)
            }
        }
    };
}

lock_type!(
    /// A process-shared mutual-exclusion lock: Python's `multiprocessing.Lock`.
    ///
    /// Acquiring it again from the thread that holds it is refused with
    /// [`LockError::WouldDeadlock`] (Python would hang); use [`RLock`] for recursion.
    ///
    /// ```
    /// use conveyor_shm::Lock;
    ///
    /// let lock = Lock::new()?;
    /// let other = Lock::open(lock.name())?; // as another process would
    /// {
    ///     let guard = lock.acquire()?;
    ///     assert!(!guard.previous_owner_died());
    ///     // Held: another thread (or process) cannot take it now.
    ///     std::thread::scope(|s| {
    ///         s.spawn(|| assert!(other.try_acquire().unwrap().is_none()));
    ///     });
    /// }
    /// assert!(other.try_acquire()?.is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    Lock,
    LOCK_MAGIC,
    MutexKind::ErrorCheck,
    "lock"
);

lock_type!(
    /// A process-shared recursive lock: Python's `multiprocessing.RLock`. The thread holding it
    /// may acquire it again; it is released when every guard is dropped.
    ///
    /// ```
    /// use conveyor_shm::RLock;
    ///
    /// let lock = RLock::new()?;
    /// let outer = lock.acquire()?;
    /// let inner = lock.acquire()?; // same thread: fine
    /// drop(inner);
    /// drop(outer);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    RLock,
    RLOCK_MAGIC,
    MutexKind::Recursive,
    "rlock"
);

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Instant;

    /// Holds `lock` on another thread until told to let go; returns once it is held.
    fn hold(lock: &Lock) -> (mpsc::Sender<()>, std::thread::JoinHandle<()>) {
        let (held_tx, held_rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let other = Lock::open(lock.name()).unwrap();
        let t = std::thread::spawn(move || {
            let _g = other.acquire().unwrap();
            held_tx.send(()).unwrap();
            let _ = go_rx.recv_timeout(Duration::from_secs(30));
        });
        held_rx.recv_timeout(Duration::from_secs(30)).unwrap();
        (go_tx, t)
    }

    #[test]
    fn acquire_timeout_waits_the_whole_timeout_over_several_slices() {
        let lock = Lock::new().unwrap();
        let (go, t) = hold(&lock);
        let timeout = Duration::from_millis(350); // several 100 ms slices
        let t0 = Instant::now();
        let g = lock.acquire_timeout(timeout).unwrap();
        let waited = t0.elapsed();
        assert!(g.is_none(), "a held lock was taken");
        assert!(waited >= timeout, "gave up after {waited:?} of {timeout:?}");
        go.send(()).unwrap();
        t.join().unwrap();
        let g = lock
            .acquire_timeout(Duration::from_secs(30))
            .unwrap()
            .unwrap();
        assert!(!g.previous_owner_died());
    }

    #[test]
    fn acquire_timeout_takes_a_lock_released_during_the_wait() {
        let lock = Lock::new().unwrap();
        let (go, t) = hold(&lock);
        let releaser = std::thread::spawn(move || {
            // let go while the main thread is (most likely) in its wait; either way the
            // acquire below must succeed
            go.send(()).unwrap();
            t.join().unwrap();
        });
        let g = lock
            .acquire_timeout(Duration::from_secs(30))
            .unwrap()
            .unwrap();
        assert!(!g.previous_owner_died());
        drop(g);
        releaser.join().unwrap();
    }

    #[test]
    fn acquire_timeout_takes_a_free_lock_with_zero_or_an_endless_timeout() {
        let lock = Lock::new().unwrap();
        assert!(lock.acquire_timeout(Duration::ZERO).unwrap().is_some());
        assert!(lock.acquire_timeout(Duration::MAX).unwrap().is_some());
        let r = RLock::new().unwrap();
        let _outer = r.acquire().unwrap();
        let inner = r.acquire_timeout(Duration::ZERO).unwrap(); // re-entrant
        assert!(inner.is_some());
    }

    #[test]
    fn acquire_timeout_on_a_lock_this_thread_holds_is_refused() {
        let lock = Lock::new().unwrap();
        let _g = lock.acquire().unwrap();
        let e = lock.acquire_timeout(Duration::from_secs(30)).unwrap_err();
        assert!(matches!(e, LockError::WouldDeadlock), "{e:?}");
    }
}
