//! Proxies to synchronisation objects: lock, reentrant lock, event, semaphore, barrier.

use std::marker::PhantomData;
use std::time::Duration;

use super::{proxy_impl, Handle};
use crate::client::WeakConn;
use crate::error::Result;
use crate::protocol::{unexpected, unit};
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

/// A shared condition variable (`Manager().Condition()`), with its own reentrant lock.
///
/// As in Python, a thread acquires the condition (its lock), checks the shared state, and
/// waits, which releases the lock until another thread notifies and takes it back before
/// returning; [`wait_for`](ConditionGuard::wait_for) loops until a predicate holds. The
/// waiting and notifying are done through the guard, which proves the lock is held. A notify
/// wakes only threads (of any process) already waiting, oldest first.
///
/// ```
/// use std::time::Duration;
/// use conveyor_manager::Manager;
///
/// let m = Manager::start()?;
/// let ready = m.condition("ready")?;
/// let flag = m.value("flag", &false)?;
/// std::thread::scope(|s| {
///     s.spawn(|| {
///         let g = ready.acquire().unwrap();
///         flag.set(&true).unwrap();
///         g.notify_all().unwrap();
///     });
///     let mut g = ready.acquire()?;
///     let seen = g.wait_for(|| flag.get().unwrap(), Duration::from_secs(60))?;
///     assert!(seen);
///     Ok::<(), conveyor_manager::ManagerError>(())
/// })?;
/// # Ok::<(), conveyor_manager::ManagerError>(())
/// ```
pub struct ConditionProxy {
    h: Handle,
    _t: PhantomData<()>,
}
proxy_impl!(Condition, ConditionProxy);

/// Holds one level of a [`ConditionProxy`]'s lock; releases it when dropped. Waiting and
/// notifying go through it.
#[derive(Debug)]
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ConditionGuard<'a> {
    h: &'a Handle,
    conn: WeakConn,
    held: bool,
}

impl ConditionGuard<'_> {
    fn call<R>(&self, op: Op<'_>, f: impl FnOnce(Reply<'_>) -> Result<R>) -> Result<R> {
        self.h.call_via(&self.conn.upgrade()?, op, f)
    }

    /// Releases the lock, waits until notified, and takes the lock back (`cond.wait()`).
    /// Returns true. As with any condition variable, check what you wait for again after
    /// (or use [`wait_for`](ConditionGuard::wait_for)).
    pub fn wait(&mut self) -> Result<bool> {
        loop {
            if self.call(Op::CondWait(Wait::Forever), acquired)? {
                return Ok(true);
            }
        }
    }

    /// As [`wait`](ConditionGuard::wait), for at most `timeout`; returns whether it was
    /// notified in time (`cond.wait(timeout)`). The lock is held again either way.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<bool> {
        self.call(Op::CondWait(Wait::from_timeout(Some(timeout))), acquired)
    }

    /// Waits until `predicate` holds, for at most `timeout` in all; returns the predicate's
    /// last answer (`cond.wait_for(predicate, timeout)`). The predicate runs with the lock
    /// held, first before any wait.
    pub fn wait_for(
        &mut self,
        mut predicate: impl FnMut() -> bool,
        timeout: Duration,
    ) -> Result<bool> {
        let deadline = std::time::Instant::now().checked_add(timeout);
        loop {
            if predicate() {
                return Ok(true);
            }
            let left = match deadline {
                Some(d) => d.saturating_duration_since(std::time::Instant::now()),
                None => Duration::MAX,
            };
            if left.is_zero() {
                return Ok(false);
            }
            self.wait_timeout(left)?;
        }
    }

    /// Wakes up to `n` threads waiting on the condition; returns how many it woke
    /// (`cond.notify(n)`).
    pub fn notify(&self, n: u64) -> Result<u64> {
        self.call(Op::CondNotify(n), count)
    }

    /// Wakes every thread waiting on the condition; returns how many it woke
    /// (`cond.notify_all()`).
    pub fn notify_all(&self) -> Result<u64> {
        self.call(Op::CondNotifyAll, count)
    }

    /// Releases this level of the lock now, reporting a failure that dropping would only log.
    pub fn release(mut self) -> Result<()> {
        self.held = false;
        release(self.h, &self.conn)
    }
}

impl Drop for ConditionGuard<'_> {
    fn drop(&mut self) {
        if self.held {
            release_on_drop(self.h, &self.conn);
        }
    }
}

impl ConditionProxy {
    fn acquire_wait(&self, wait: Wait) -> Result<Option<ConditionGuard<'_>>> {
        let conn = self.h.thread_conn()?;
        let got = self.h.call_via(&conn, Op::Acquire(wait), acquired)?;
        Ok(got.then_some(ConditionGuard {
            h: &self.h,
            conn: conn.downgrade(),
            held: true,
        }))
    }

    /// Waits for the condition's lock (or nests if this thread holds it) until the guard
    /// drops (`with cond:`).
    pub fn acquire(&self) -> Result<ConditionGuard<'_>> {
        loop {
            if let Some(g) = self.acquire_wait(Wait::Forever)? {
                return Ok(g);
            }
        }
    }

    /// Takes the lock if it is free now or already held by this thread.
    pub fn try_acquire(&self) -> Result<Option<ConditionGuard<'_>>> {
        self.acquire_wait(Wait::Never)
    }

    /// Waits at most `timeout` for the lock.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<Option<ConditionGuard<'_>>> {
        self.acquire_wait(Wait::from_timeout(Some(timeout)))
    }

    /// How many times the lock's holder holds it now (0: free).
    pub fn depth(&self) -> Result<u64> {
        self.h.call(Op::LockState, count)
    }
}
