//! A robust, process-shared pthread mutex living in shared memory.
//!
//! `PTHREAD_PROCESS_SHARED` lets threads of different processes use the mutex through their own
//! mappings; `PTHREAD_MUTEX_ROBUST` makes the kernel release it when its owner dies (through the
//! owner's robust list), so that the next `lock` returns `EOWNERDEAD` instead of blocking
//! forever. The new owner then repairs whatever the dead one was changing and calls
//! `pthread_mutex_consistent`. This is what a non-robust mutex (such as raw_sync 0.1.5's) lacks.

use std::cell::UnsafeCell;
use std::io;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::wait::MAX_SLICE;

/// How a lock was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Acquired {
    /// The previous owner released it normally.
    Clean,
    /// The previous owner died holding it: the state it guards may be half-updated and must be
    /// repaired before [`RobustMutex::make_consistent`] is called.
    OwnerDied,
}

/// The kind of pthread mutex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MutexKind {
    /// Relocking by the owner returns `EDEADLK` instead of deadlocking.
    ErrorCheck,
    /// The owner may lock it again; it is released after as many unlocks.
    Recursive,
}

/// A pthread mutex inside a shared mapping.
///
/// Invariant: it is only reached through a reference into a live mapping, and it was
/// initialised by [`RobustMutex::init`] before the segment's magic number was published.
#[repr(C)]
pub(crate) struct RobustMutex {
    raw: UnsafeCell<libc::pthread_mutex_t>,
}

// SAFETY: a pthread mutex is designed to be used from many threads (and, being
// process-shared, many processes) at once; all access goes through the pthread functions.
unsafe impl Sync for RobustMutex {}
// SAFETY: as above; it holds no thread-local state.
unsafe impl Send for RobustMutex {}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

impl RobustMutex {
    /// Initialises the mutex at `this` as robust and process-shared.
    ///
    /// # Safety
    /// `this` must point to writable memory of the mutex's size and alignment that no other
    /// thread or process uses yet.
    pub(crate) unsafe fn init(this: *mut RobustMutex, kind: MutexKind) -> io::Result<()> {
        // SAFETY: pthread_mutexattr_t is a plain C struct for which all-zero bytes are a valid
        // (if meaningless) value; pthread_mutexattr_init sets it up before any other use.
        let mut attr: libc::pthread_mutexattr_t = unsafe { std::mem::zeroed() };
        // SAFETY: `attr` is a local attribute object, initialised before use and destroyed
        // after; `this` is valid and unused by anyone else (the caller's contract).
        unsafe {
            check(libc::pthread_mutexattr_init(&mut attr))?;
            let result = (|| {
                check(libc::pthread_mutexattr_setpshared(
                    &mut attr,
                    libc::PTHREAD_PROCESS_SHARED,
                ))?;
                check(libc::pthread_mutexattr_setrobust(
                    &mut attr,
                    libc::PTHREAD_MUTEX_ROBUST,
                ))?;
                let t = match kind {
                    MutexKind::ErrorCheck => libc::PTHREAD_MUTEX_ERRORCHECK,
                    MutexKind::Recursive => libc::PTHREAD_MUTEX_RECURSIVE,
                };
                check(libc::pthread_mutexattr_settype(&mut attr, t))?;
                check(libc::pthread_mutex_init(
                    UnsafeCell::raw_get(std::ptr::addr_of!((*this).raw)),
                    &attr,
                ))
            })();
            libc::pthread_mutexattr_destroy(&mut attr);
            result
        }
    }

    fn outcome(rc: libc::c_int) -> io::Result<Acquired> {
        match rc {
            0 => Ok(Acquired::Clean),
            libc::EOWNERDEAD => Ok(Acquired::OwnerDied),
            e => Err(io::Error::from_raw_os_error(e)),
        }
    }

    /// Locks, blocking in the kernel while another thread or process holds it.
    pub(crate) fn lock(&self) -> io::Result<Acquired> {
        // SAFETY: the mutex was initialised (type invariant) and lives in a live mapping.
        Self::outcome(unsafe { libc::pthread_mutex_lock(self.raw.get()) })
    }

    /// `pthread_mutex_trylock`'s raw result: 0 (locked), `EOWNERDEAD` (locked, to be
    /// repaired), `EBUSY` (held by another) or another error.
    #[inline]
    pub(crate) fn try_lock_raw(&self) -> libc::c_int {
        // SAFETY: as in `lock`.
        unsafe { libc::pthread_mutex_trylock(self.raw.get()) }
    }

    /// Maps a raw lock result.
    pub(crate) fn acquired(rc: libc::c_int) -> io::Result<Acquired> {
        Self::outcome(rc)
    }

    /// Locks if free now; `Err(EBUSY)` if held.
    pub(crate) fn try_lock(&self) -> io::Result<Acquired> {
        // SAFETY: as in `lock`.
        Self::outcome(unsafe { libc::pthread_mutex_trylock(self.raw.get()) })
    }

    /// Locks, waiting at most `timeout`; `Err(ETIMEDOUT)` after that. One
    /// `pthread_mutex_timedlock` call, whose deadline is on the wall clock: keep `timeout`
    /// short (a slice), or use [`lock_for`](Self::lock_for).
    pub(crate) fn lock_timeout(&self, timeout: Duration) -> io::Result<Acquired> {
        // pthread_mutex_timedlock takes an absolute CLOCK_REALTIME deadline.
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let deadline = now.saturating_add(timeout);
        let ts = libc::timespec {
            tv_sec: deadline.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
            tv_nsec: deadline.subsec_nanos() as libc::c_long,
        };
        // SAFETY: as in `lock`; `ts` is a valid timespec.
        Self::outcome(unsafe { libc::pthread_mutex_timedlock(self.raw.get(), &ts) })
    }

    /// Locks, waiting at most `timeout` as measured by the monotonic clock; `Err(ETIMEDOUT)`
    /// after that. A free mutex is taken even when `timeout` is zero.
    ///
    /// [`lock_timeout`](Self::lock_timeout) takes a `CLOCK_REALTIME` deadline, so a single call
    /// would stretch or cut the whole wait if the wall clock were set meanwhile. Here each call
    /// waits at most [`MAX_SLICE`], and the time left is recomputed from an [`Instant`] before
    /// the next: a wall-clock step forward ends one slice early, and only a step back during a
    /// slice lengthens the wait, by that step. An owner that died is reported as
    /// [`Acquired::OwnerDied`], whichever slice took the mutex.
    pub(crate) fn lock_for(&self, timeout: Duration) -> io::Result<Acquired> {
        let Some(deadline) = Instant::now().checked_add(timeout) else {
            return self.lock(); // further than this clock can count: no deadline
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lock_timeout(left.min(MAX_SLICE)) {
                Err(e)
                    if e.raw_os_error() == Some(libc::ETIMEDOUT) && Instant::now() < deadline => {}
                other => return other,
            }
        }
    }

    /// Marks the state guarded by the mutex as repaired after [`Acquired::OwnerDied`].
    pub(crate) fn make_consistent(&self) -> io::Result<()> {
        // SAFETY: as in `lock`; the caller holds the mutex after EOWNERDEAD.
        check(unsafe { libc::pthread_mutex_consistent(self.raw.get()) })
    }

    /// Unlocks a mutex this thread holds.
    #[inline]
    pub(crate) fn unlock(&self) -> io::Result<()> {
        // SAFETY: as in `lock`; the caller holds the mutex.
        check(unsafe { libc::pthread_mutex_unlock(self.raw.get()) })
    }
}
