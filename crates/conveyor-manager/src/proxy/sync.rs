//! Proxies to synchronisation objects: lock, reentrant lock, event, semaphore, barrier.

use std::marker::PhantomData;
use std::time::Duration;

use super::{proxy_impl, Handle};
use crate::client::{unexpected, unit, WeakConn};
use crate::error::Result;
use crate::protocol::{Op, Reply, Wait};

fn acquired(r: Reply<'_>) -> Result<bool> {
    match r {
        Reply::Bool(b) => Ok(b),
        other => Err(unexpected(&other)),
    }
}

fn count(r: Reply<'_>) -> Result<u64> {
    match r {
        Reply::Count(n) => Ok(n),
        other => Err(unexpected(&other)),
    }
}

fn release(h: &Handle, conn: &WeakConn) -> Result<()> {
    h.call_via(&conn.upgrade()?, Op::Release, unit)
}

fn release_on_drop(h: &Handle, conn: &WeakConn) {
    if let Err(e) = release(h, conn) {
        tracing::warn!(lock = %h.name_str(), error = %e, "releasing a manager lock failed");
    }
}

/// A shared lock (`Manager().Lock()`), held by one thread at a time.
///
/// Each thread calls through a connection of its own, and the server gives the lock to a
/// connection: a thread that acquires it while another thread (of this process or another)
/// holds it waits, through the same proxy, a clone or another client alike. If the client
/// holding it dies (or the thread holding it ends), the server releases it. Acquiring it
/// twice on one thread is an error (`WouldDeadlock`) rather than a hang; use an
/// [`RLockProxy`] to nest. The guard releases through the connection that acquired it, so it
/// may be dropped on another thread.
///
/// ```
/// use conveyor_manager::Manager;
///
/// let m = Manager::start()?;
/// let lock = m.lock("printer")?;
/// {
///     let _guard = lock.acquire()?;
///     assert!(lock.is_locked()?);
/// } // released here
/// assert!(!lock.is_locked()?);
/// # Ok::<(), conveyor_manager::ManagerError>(())
/// ```
pub struct LockProxy {
    h: Handle,
    _t: PhantomData<()>,
}
proxy_impl!(Lock, LockProxy);

/// Holds a [`LockProxy`]; releases it when dropped.
#[derive(Debug)]
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    h: &'a Handle,
    /// The connection that acquired the lock, which the server counts as its owner.
    conn: WeakConn,
    held: bool,
}

impl LockGuard<'_> {
    /// Releases now, reporting a failure that dropping would only log.
    pub fn release(mut self) -> Result<()> {
        self.held = false;
        release(self.h, &self.conn)
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        if self.held {
            release_on_drop(self.h, &self.conn);
        }
    }
}

impl LockProxy {
    fn acquire_wait(&self, wait: Wait) -> Result<Option<LockGuard<'_>>> {
        let conn = self.h.thread_conn()?;
        let got = self.h.call_via(&conn, Op::Acquire(wait), acquired)?;
        Ok(got.then_some(LockGuard {
            h: &self.h,
            conn: conn.downgrade(),
            held: true,
        }))
    }

    /// Waits for the lock and holds it until the guard drops (`with lock:`).
    pub fn acquire(&self) -> Result<LockGuard<'_>> {
        loop {
            if let Some(g) = self.acquire_wait(Wait::Forever)? {
                return Ok(g);
            }
        }
    }

    /// Takes the lock if it is free now (`lock.acquire(False)`).
    pub fn try_acquire(&self) -> Result<Option<LockGuard<'_>>> {
        self.acquire_wait(Wait::Never)
    }

    /// Waits at most `timeout` for the lock (`lock.acquire(timeout=t)`).
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<Option<LockGuard<'_>>> {
        self.acquire_wait(Wait::from_timeout(Some(timeout)))
    }

    /// Whether anyone holds the lock now (`lock.locked()`).
    pub fn is_locked(&self) -> Result<bool> {
        Ok(self.h.call(Op::LockState, count)? > 0)
    }
}

/// A shared reentrant lock (`Manager().RLock()`): the thread holding it may acquire it
/// again, and must release it as many times; any other thread waits (its `try_acquire`
/// fails) until then.
///
/// ```
/// use conveyor_manager::Manager;
///
/// let m = Manager::start()?;
/// let lock = m.rlock("ledger")?;
/// let outer = lock.acquire()?;
/// let inner = lock.acquire()?; // same thread: nests
/// assert_eq!(lock.depth()?, 2);
/// drop(inner);
/// drop(outer);
/// assert_eq!(lock.depth()?, 0);
/// # Ok::<(), conveyor_manager::ManagerError>(())
/// ```
pub struct RLockProxy {
    h: Handle,
    _t: PhantomData<()>,
}
proxy_impl!(RLock, RLockProxy);

/// Holds one level of an [`RLockProxy`]; releases it when dropped.
#[derive(Debug)]
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RLockGuard<'a> {
    h: &'a Handle,
    /// The connection that acquired the lock, which the server counts as its owner.
    conn: WeakConn,
    held: bool,
}

impl RLockGuard<'_> {
    /// Releases this level now, reporting a failure that dropping would only log.
    pub fn release(mut self) -> Result<()> {
        self.held = false;
        release(self.h, &self.conn)
    }
}

impl Drop for RLockGuard<'_> {
    fn drop(&mut self) {
        if self.held {
            release_on_drop(self.h, &self.conn);
        }
    }
}

impl RLockProxy {
    fn acquire_wait(&self, wait: Wait) -> Result<Option<RLockGuard<'_>>> {
        let conn = self.h.thread_conn()?;
        let got = self.h.call_via(&conn, Op::Acquire(wait), acquired)?;
        Ok(got.then_some(RLockGuard {
            h: &self.h,
            conn: conn.downgrade(),
            held: true,
        }))
    }

    /// Waits for the lock (or nests if this thread holds it) until the guard drops.
    pub fn acquire(&self) -> Result<RLockGuard<'_>> {
        loop {
            if let Some(g) = self.acquire_wait(Wait::Forever)? {
                return Ok(g);
            }
        }
    }

    /// Takes the lock if it is free now or already held by this thread.
    pub fn try_acquire(&self) -> Result<Option<RLockGuard<'_>>> {
        self.acquire_wait(Wait::Never)
    }

    /// Waits at most `timeout` for the lock.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<Option<RLockGuard<'_>>> {
        self.acquire_wait(Wait::from_timeout(Some(timeout)))
    }

    /// How many times the owner holds it now (0: free).
    pub fn depth(&self) -> Result<u64> {
        self.h.call(Op::LockState, count)
    }
}

/// A shared event (`Manager().Event()`): a flag that others wait for.
///
/// ```
/// use std::time::Duration;
/// use conveyor_manager::Manager;
///
/// let m = Manager::start()?;
/// let ready = m.event("ready")?;
/// assert!(!ready.wait_timeout(Duration::from_millis(1))?);
/// ready.set()?;
/// assert!(ready.wait()?);
/// # Ok::<(), conveyor_manager::ManagerError>(())
/// ```
pub struct EventProxy {
    h: Handle,
    _t: PhantomData<()>,
}
proxy_impl!(Event, EventProxy);

impl EventProxy {
    /// Sets the flag and wakes every waiter.
    pub fn set(&self) -> Result<()> {
        self.h.call(Op::EventSet, unit)
    }

    /// Clears the flag.
    pub fn clear(&self) -> Result<()> {
        self.h.call(Op::EventClear, unit)
    }

    /// The flag.
    pub fn is_set(&self) -> Result<bool> {
        self.h.call(Op::EventIsSet, acquired)
    }

    /// Waits until the flag is set; returns true.
    pub fn wait(&self) -> Result<bool> {
        self.h.call(Op::EventWait(Wait::Forever), acquired)
    }

    /// Waits at most `timeout`; returns the flag (false if it timed out).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool> {
        self.h
            .call(Op::EventWait(Wait::from_timeout(Some(timeout))), acquired)
    }
}

/// A shared semaphore (`Manager().Semaphore()`, `BoundedSemaphore()`).
///
/// Permits have no owner: a client that dies holding one does not give it back.
///
/// ```
/// use conveyor_manager::Manager;
///
/// let m = Manager::start()?;
/// let slots = m.bounded_semaphore("slots", 2)?;
/// slots.acquire()?;
/// assert!(slots.try_acquire()?);
/// assert!(!slots.try_acquire()?);
/// slots.release()?;
/// slots.release()?;
/// assert!(slots.release().is_err()); // above the bound
/// # Ok::<(), conveyor_manager::ManagerError>(())
/// ```
pub struct SemaphoreProxy {
    h: Handle,
    _t: PhantomData<()>,
}
proxy_impl!(Semaphore, SemaphoreProxy);

impl SemaphoreProxy {
    /// Waits for a permit and takes it.
    pub fn acquire(&self) -> Result<()> {
        while !self.h.call(Op::Acquire(Wait::Forever), acquired)? {}
        Ok(())
    }

    /// Takes a permit if one is free now.
    pub fn try_acquire(&self) -> Result<bool> {
        self.h.call(Op::Acquire(Wait::Never), acquired)
    }

    /// Waits at most `timeout` for a permit.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool> {
        self.h
            .call(Op::Acquire(Wait::from_timeout(Some(timeout))), acquired)
    }

    /// Gives a permit back (a bounded semaphore refuses to go above its bound).
    pub fn release(&self) -> Result<()> {
        self.h.call(Op::Release, unit)
    }

    /// The number of free permits.
    pub fn value(&self) -> Result<u64> {
        self.h.call(Op::LockState, count)
    }
}

/// A shared barrier (`Manager().Barrier(n)`): `n` parties wait until all have arrived.
///
/// A waiter that times out, or whose client goes away, breaks the barrier for the others
/// (`BrokenBarrier`), as in Python; [`reset`](BarrierProxy::reset) makes it usable again.
pub struct BarrierProxy {
    h: Handle,
    _t: PhantomData<()>,
}
proxy_impl!(Barrier, BarrierProxy);

/// A barrier's state, as [`BarrierProxy::state`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarrierState {
    /// How many waiters it takes.
    pub parties: u32,
    /// How many wait now.
    pub waiting: u32,
    /// Whether it is broken.
    pub broken: bool,
}

impl BarrierProxy {
    /// Waits for every party; returns this waiter's arrival index (0 for the first).
    pub fn wait(&self) -> Result<u64> {
        self.h.call(Op::BarrierWait(Wait::Forever), count)
    }

    /// Waits at most `timeout`; a timeout breaks the barrier.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<u64> {
        self.h
            .call(Op::BarrierWait(Wait::from_timeout(Some(timeout))), count)
    }

    /// Breaks the barrier: every waiter, now and until a reset, fails.
    pub fn abort(&self) -> Result<()> {
        self.h.call(Op::BarrierAbort, unit)
    }

    /// Fails the waiters of the current round and makes the barrier usable again.
    pub fn reset(&self) -> Result<()> {
        self.h.call(Op::BarrierReset, unit)
    }

    /// Parties, waiters and broken flag.
    pub fn state(&self) -> Result<BarrierState> {
        self.h.call(Op::BarrierState, |r| match r {
            Reply::BarrierState {
                parties,
                waiting,
                broken,
            } => Ok(BarrierState {
                parties,
                waiting,
                broken,
            }),
            other => Err(unexpected(&other)),
        })
    }
}
