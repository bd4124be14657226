//! Lock, reentrant lock, event, semaphore and barrier.
//!
//! Locks are owned by a connection. The server remembers which locks each connection holds
//! ([`Ctx::held`]) and releases them when the connection ends, so a client that dies while
//! holding a lock does not block everyone else. Semaphores have no owner (as in Python, any
//! party may release), so nothing is given back for a client that dies holding a permit.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use super::{cancelled_error, ok, wrong_op, Ctx, Object, State, Waited};
use crate::error::{ErrorKind, RemoteError};
use crate::protocol::{Kind, Op, Reply, Wait};

/// A lock's state: who holds it and how many times (always 1 for a plain lock).
#[derive(Default)]
pub(crate) struct LockState {
    owner: Option<u64>,
    count: u32,
}

/// A condition variable's state: its reentrant lock, and the waiters by ticket.
///
/// Each wait takes the next ticket and queues it in `waiting`; a notify moves the oldest
/// waiting tickets to `woken`, and a waiter returns once its ticket is there (it removes it).
/// A waiter that times out or goes away takes its ticket out of `waiting` (if a notify moved
/// it to `woken` meanwhile, it was notified after all, or passes the wakeup on). So a notify
/// wakes only threads that were waiting when it was made, oldest first, as in Python.
#[derive(Default)]
pub(crate) struct CondState {
    lock: LockState,
    next_ticket: u64,
    waiting: VecDeque<u64>,
    woken: HashSet<u64>,
}

impl CondState {
    /// Moves up to `n` of the oldest waiters to `woken`; answers how many.
    fn wake(&mut self, n: u64) -> u64 {
        let mut woke = 0;
        while woke < n {
            let Some(t) = self.waiting.pop_front() else {
                break;
            };
            self.woken.insert(t);
            woke += 1;
        }
        woke
    }
}

/// Condition variable of locks, semaphores, events and barriers (and a condition's lock).
const CHANGED: usize = 0;
/// Condition variable of a condition's waiters.
const NOTIFIED: usize = 1;

fn lock_state(s: &mut State) -> &mut LockState {
    match s {
        State::Lock(l) => l,
        State::Condition(c) => &mut c.lock,
        _ => unreachable!("lock operations only run on locks"),
    }
}

fn cond_state(s: &mut State) -> &mut CondState {
    match s {
        State::Condition(c) => c,
        _ => unreachable!("condition operations only run on conditions"),
    }
}

fn not_owner(what: &str) -> RemoteError {
    RemoteError::new(
        ErrorKind::NotOwner,
        format!("{what} of a condition whose lock this thread does not hold: acquire it first"),
    )
}

pub(super) fn condition(
    obj: &Arc<Object>,
    op: Op<'_>,
    ctx: &mut Ctx<'_>,
    out: &mut Vec<u8>,
) -> Result<(), RemoteError> {
    match op {
        Op::Acquire(_) | Op::Release | Op::LockState => return lock(obj, op, ctx, out),
        Op::CondWait(_) | Op::CondNotify(_) | Op::CondNotifyAll => {}
        other => return Err(wrong_op(obj.kind, &other)),
    }
    let me = ctx.conn;
    let mut g = obj.lock();
    if !matches!(g.state, State::Condition(_)) {
        return Err(wrong_op(obj.kind, &op));
    }
    let c = cond_state(&mut g.state);
    match op {
        Op::CondNotify(n) => {
            if c.lock.owner != Some(me) {
                return Err(not_owner("notify"));
            }
            let woke = c.wake(n);
            if woke > 0 {
                obj.notify(&g, NOTIFIED, true);
            }
            ok(out, Reply::Count(woke))
        }
        Op::CondNotifyAll => {
            if c.lock.owner != Some(me) {
                return Err(not_owner("notify_all"));
            }
            let woke = c.wake(u64::MAX);
            if woke > 0 {
                obj.notify(&g, NOTIFIED, true);
            }
            ok(out, Reply::Count(woke))
        }
        Op::CondWait(wait) => {
            if c.lock.owner != Some(me) {
                return Err(not_owner("wait"));
            }
            // Release the lock however deeply it is held, and queue up.
            let depth = c.lock.count;
            c.lock.owner = None;
            c.lock.count = 0;
            ctx.held.remove(&obj.id);
            let ticket = c.next_ticket;
            c.next_ticket += 1;
            c.waiting.push_back(ticket);
            obj.notify(&g, CHANGED, false);
            let (mut g, waited) = obj.wait_until(g, NOTIFIED, wait, ctx.cancelled, |s| {
                cond_state(s).woken.contains(&ticket)
            });
            let c = cond_state(&mut g.state);
            let notified = c.woken.remove(&ticket);
            if !notified {
                c.waiting.retain(|&t| t != ticket);
            }
            if waited == Waited::Cancelled {
                // Gone: a notify meant for this waiter goes to the next one.
                if notified && c.wake(1) > 0 {
                    obj.notify(&g, NOTIFIED, true);
                }
                return Err(cancelled_error());
            }
            // Take the lock back at the depth it was held.
            let (mut g, waited) = obj.wait_until(g, CHANGED, Wait::Forever, ctx.cancelled, |s| {
                lock_state(s).owner.is_none()
            });
            if waited != Waited::Ready {
                return Err(cancelled_error());
            }
            let l = lock_state(&mut g.state);
            l.owner = Some(me);
            l.count = depth;
            ctx.held.insert(obj.id, obj.clone());
            ok(out, Reply::Bool(notified))
        }
        other => Err(wrong_op(obj.kind, &other)),
    }
}

pub(super) fn lock(
    obj: &Arc<Object>,
    op: Op<'_>,
    ctx: &mut Ctx<'_>,
    out: &mut Vec<u8>,
) -> Result<(), RemoteError> {
    let reentrant = matches!(obj.kind, Kind::RLock | Kind::Condition);
    let mut g = obj.lock();
    if !matches!(g.state, State::Lock(_) | State::Condition(_)) {
        return Err(wrong_op(obj.kind, &op));
    }
    match op {
        Op::Acquire(wait) => {
            let me = ctx.conn;
            let l = lock_state(&mut g.state);
            if l.owner == Some(me) {
                if reentrant {
                    l.count = l.count.checked_add(1).ok_or_else(|| {
                        RemoteError::new(
                            ErrorKind::Overflow,
                            "the reentrant lock is already held u32::MAX times by this \
                             connection",
                        )
                    })?;
                    return ok(out, Reply::Bool(true));
                }
                return Err(RemoteError::new(
                    ErrorKind::WouldDeadlock,
                    "this connection already holds the lock: a second acquire would wait \
                     forever (use an RLock to acquire it again)",
                ));
            }
            let (mut g, waited) = obj.wait_until(g, CHANGED, wait, ctx.cancelled, |s| {
                lock_state(s).owner.is_none()
            });
            match waited {
                Waited::Ready => {
                    let l = lock_state(&mut g.state);
                    l.owner = Some(me);
                    l.count = 1;
                    ctx.held.insert(obj.id, obj.clone());
                    ok(out, Reply::Bool(true))
                }
                Waited::TimedOut => ok(out, Reply::Bool(false)),
                Waited::Cancelled => Err(cancelled_error()),
            }
        }
        Op::Release => {
            let l = lock_state(&mut g.state);
            if l.owner != Some(ctx.conn) {
                return Err(RemoteError::new(
                    ErrorKind::NotOwner,
                    "release of a lock this connection does not hold",
                ));
            }
            l.count -= 1;
            if l.count == 0 {
                l.owner = None;
                ctx.held.remove(&obj.id);
                obj.notify(&g, CHANGED, false);
            }
            ok(out, Reply::Unit)
        }
        Op::LockState => {
            let l = lock_state(&mut g.state);
            ok(out, Reply::Count(u64::from(l.count)))
        }
        other => Err(wrong_op(obj.kind, &other)),
    }
}

/// Releases every lock in `held` that connection `conn` still owns (it went away).
pub(crate) fn release_all_held(conn: u64, held: &mut HashMap<u64, Arc<Object>>) {
    for (_, obj) in held.drain() {
        let mut g = obj.lock();
        let l = match &mut g.state {
            State::Lock(l) => Some(l),
            State::Condition(c) => Some(&mut c.lock),
            _ => None,
        };
        if let Some(l) = l {
            if l.owner == Some(conn) {
                tracing::info!(
                    lock = %obj.name,
                    conn,
                    "released a lock held by a connection that went away"
                );
                l.owner = None;
                l.count = 0;
                obj.notify(&g, CHANGED, false);
            }
        }
    }
}

pub(super) fn event(
    obj: &Arc<Object>,
    op: Op<'_>,
    ctx: &mut Ctx<'_>,
    out: &mut Vec<u8>,
) -> Result<(), RemoteError> {
    let mut g = obj.lock();
    let State::Event(flag) = &mut g.state else {
        return Err(wrong_op(obj.kind, &op));
    };
    match op {
        Op::EventSet => {
            *flag = true;
            obj.notify(&g, CHANGED, true);
            ok(out, Reply::Unit)
        }
        Op::EventClear => {
            *flag = false;
            ok(out, Reply::Unit)
        }
        Op::EventIsSet => ok(out, Reply::Bool(*flag)),
        Op::EventWait(wait) => {
            let (_g, waited) = obj.wait_until(g, CHANGED, wait, ctx.cancelled, |s| {
                matches!(s, State::Event(true))
            });
            match waited {
                Waited::Ready => ok(out, Reply::Bool(true)),
                Waited::TimedOut => ok(out, Reply::Bool(false)),
                Waited::Cancelled => Err(cancelled_error()),
            }
        }
        other => Err(wrong_op(obj.kind, &other)),
    }
}

pub(super) fn semaphore(
    obj: &Arc<Object>,
    op: Op<'_>,
    ctx: &mut Ctx<'_>,
    out: &mut Vec<u8>,
) -> Result<(), RemoteError> {
    let mut g = obj.lock();
    let State::Semaphore { value, bound } = &mut g.state else {
        return Err(wrong_op(obj.kind, &op));
    };
    match op {
        Op::Acquire(wait) => {
            let (mut g, waited) = obj.wait_until(
                g,
                CHANGED,
                wait,
                ctx.cancelled,
                |s| matches!(s, State::Semaphore { value, .. } if *value > 0),
            );
            match waited {
                Waited::Ready => {
                    if let State::Semaphore { value, .. } = &mut g.state {
                        *value -= 1;
                    }
                    ok(out, Reply::Bool(true))
                }
                Waited::TimedOut => ok(out, Reply::Bool(false)),
                Waited::Cancelled => Err(cancelled_error()),
            }
        }
        Op::Release => {
            if bound.is_some_and(|b| *value >= b) {
                return Err(RemoteError::new(
                    ErrorKind::TooManyReleases,
                    "the bounded semaphore was released more times than it was acquired",
                ));
            }
            *value = value.checked_add(1).ok_or_else(|| {
                RemoteError::new(
                    ErrorKind::Overflow,
                    "the semaphore already holds u64::MAX permits: one more cannot be counted",
                )
            })?;
            obj.notify(&g, CHANGED, false);
            ok(out, Reply::Unit)
        }
        Op::LockState => ok(out, Reply::Count(*value)),
        other => Err(wrong_op(obj.kind, &other)),
    }
}

/// A barrier's state.
///
/// `generation` counts rounds: it moves on when the last party arrives (the round passes) or
/// when the round is broken by a reset. A waiter remembers the generation it arrived in and
/// waits until it moves on; `broken_rounds` remembers the recent rounds that were broken
/// rather than passed, so each waiter learns which happened to its own round.
pub(crate) struct BarrierState {
    parties: u32,
    waiting: u32,
    generation: u64,
    /// The barrier is broken (aborted, or a waiter timed out) until a reset.
    broken: bool,
    broken_rounds: VecDeque<u64>,
}

impl BarrierState {
    pub(super) fn new(parties: u32) -> Self {
        BarrierState {
            parties,
            waiting: 0,
            generation: 0,
            broken: false,
            broken_rounds: VecDeque::new(),
        }
    }

    fn break_round(&mut self) {
        self.broken_rounds.push_back(self.generation);
        if self.broken_rounds.len() > 64 {
            self.broken_rounds.pop_front();
        }
    }
}

fn barrier_state(s: &mut State) -> &mut BarrierState {
    match s {
        State::Barrier(b) => b,
        _ => unreachable!("barrier operations only run on barriers"),
    }
}

fn broken_error() -> RemoteError {
    RemoteError::new(
        ErrorKind::BrokenBarrier,
        "the barrier is broken (aborted, reset, timed out, or a waiter went away)",
    )
}

pub(super) fn barrier(
    obj: &Arc<Object>,
    op: Op<'_>,
    ctx: &mut Ctx<'_>,
    out: &mut Vec<u8>,
) -> Result<(), RemoteError> {
    let mut g = obj.lock();
    if !matches!(g.state, State::Barrier(_)) {
        return Err(wrong_op(obj.kind, &op));
    }
    match op {
        Op::BarrierWait(wait) => {
            let b = barrier_state(&mut g.state);
            if b.broken {
                return Err(broken_error());
            }
            let index = b.waiting;
            b.waiting += 1;
            if b.waiting == b.parties {
                b.waiting = 0;
                b.generation += 1;
                obj.notify(&g, CHANGED, true);
                return ok(out, Reply::Count(u64::from(index)));
            }
            let mine = b.generation;
            let wait = if wait == Wait::Never {
                Wait::Micros(0)
            } else {
                wait
            };
            let (mut g, waited) = obj.wait_until(g, CHANGED, wait, ctx.cancelled, |s| {
                let b = barrier_state(s);
                b.generation != mine || b.broken
            });
            let b = barrier_state(&mut g.state);
            if b.generation != mine {
                if b.broken_rounds.contains(&mine) {
                    return Err(broken_error());
                }
                return ok(out, Reply::Count(u64::from(index)));
            }
            if waited != Waited::Ready {
                // Timed out or gone: the barrier breaks for everyone, as in Python.
                b.broken = true;
                b.waiting = b.waiting.saturating_sub(1);
                obj.notify(&g, CHANGED, true);
                if waited == Waited::Cancelled {
                    return Err(cancelled_error());
                }
                return Err(broken_error());
            }
            b.waiting = b.waiting.saturating_sub(1);
            Err(broken_error())
        }
        Op::BarrierAbort => {
            barrier_state(&mut g.state).broken = true;
            obj.notify(&g, CHANGED, true);
            ok(out, Reply::Unit)
        }
        Op::BarrierReset => {
            let b = barrier_state(&mut g.state);
            if b.waiting > 0 {
                b.break_round();
                b.generation += 1;
            }
            b.waiting = 0;
            b.broken = false;
            obj.notify(&g, CHANGED, true);
            ok(out, Reply::Unit)
        }
        Op::BarrierState => {
            let b = barrier_state(&mut g.state);
            ok(
                out,
                Reply::BarrierState {
                    parties: b.parties,
                    waiting: b.waiting,
                    broken: b.broken,
                },
            )
        }
        other => Err(wrong_op(obj.kind, &other)),
    }
}
