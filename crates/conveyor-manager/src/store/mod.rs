//! The server's side: the registry of named objects and what each operation does to them.
//!
//! Every object has its own mutex, so clients working on different objects never contend,
//! and up to three condition variables for the waits its kind needs (a queue's "not empty",
//! "not full" and "all done"). Each operation runs entirely under the object's mutex, which is
//! what makes `fetch_add`, compare-and-swap and the other compound operations atomic.
//!
//! A request that has to wait (a get on an empty queue, an acquire of a held lock) waits in
//! the thread of its own connection, so it never holds up another client. The wait is sliced:
//! every [`WAIT_SLICE`] it checks whether the server is shutting down or the client has gone,
//! and gives up if so.

mod collections;
mod queue;
mod sync;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use conveyor_core::{Codec, Postcard};

use crate::error::{ErrorKind, RemoteError};
use crate::protocol::{Create, Kind, Op, Reply, Response, Wait};

pub(crate) use sync::release_all_held;

/// How often a waiting request checks for shutdown and for its client having gone.
pub(crate) const WAIT_SLICE: Duration = Duration::from_millis(100);

/// One shared object.
pub(crate) struct Object {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) kind: Kind,
    /// Set when the object is deleted; connections drop it from their caches on sight.
    pub(crate) deleted: AtomicBool,
    inner: Mutex<Inner>,
    cvs: [Condvar; 3],
}

/// What an object's mutex guards.
pub(crate) struct Inner {
    pub(crate) state: State,
    /// Threads waiting on each condition variable: notify only when someone waits.
    waiters: [u32; 3],
}

/// The data of each kind of object.
pub(crate) enum State {
    Dict(HashMap<Vec<u8>, Vec<u8>>),
    /// A list, or an array (same storage; an array's length never changes).
    Seq(Vec<Vec<u8>>),
    Value(Vec<u8>),
    Queue(queue::QueueState),
    /// A lock or a reentrant lock.
    Lock(sync::LockState),
    Event(bool),
    Semaphore {
        value: u64,
        bound: Option<u64>,
    },
    Barrier(sync::BarrierState),
    /// A condition variable and its reentrant lock.
    Condition(sync::CondState),
    Namespace(std::collections::BTreeMap<String, Vec<u8>>),
}

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Waited {
    /// The condition holds (the guard is held).
    Ready,
    /// The time ran out, or the caller was not allowed to wait.
    TimedOut,
    /// The server is shutting down or the client has gone.
    Cancelled,
}

/// What an operation needs to know about the connection it runs for.
pub(crate) struct Ctx<'a> {
    /// The connection's id: lock ownership is per connection.
    pub(crate) conn: u64,
    /// Whether to give up waiting (the server is shutting down or the client has gone).
    pub(crate) cancelled: &'a dyn Fn() -> bool,
    /// The locks this connection holds, released by the server if it goes away.
    pub(crate) held: &'a mut HashMap<u64, Arc<Object>>,
}

impl Object {
    fn new(id: u64, name: &str, create: &Create<'_>) -> Result<Object, RemoteError> {
        let state = match create {
            Create::Dict => State::Dict(HashMap::new()),
            Create::List => State::Seq(Vec::new()),
            Create::Value { initial } => State::Value(initial.0.to_vec()),
            Create::Array { initial } => State::Seq(initial.iter().map(|b| b.0.to_vec()).collect()),
            Create::Queue { capacity } => {
                let capacity = match capacity {
                    Some(0) => {
                        return Err(RemoteError::new(
                            ErrorKind::Malformed,
                            "a queue's capacity must be at least 1 (use None for unbounded)",
                        ))
                    }
                    Some(c) => Some(usize::try_from(*c).unwrap_or(usize::MAX)),
                    None => None,
                };
                State::Queue(queue::QueueState::new(capacity))
            }
            Create::Lock | Create::RLock => State::Lock(sync::LockState::default()),
            Create::Condition => State::Condition(sync::CondState::default()),
            Create::Event => State::Event(false),
            Create::Semaphore { value, bound } => {
                if let Some(b) = bound {
                    if value > b {
                        return Err(RemoteError::new(
                            ErrorKind::Malformed,
                            "a bounded semaphore cannot start above its bound",
                        ));
                    }
                }
                State::Semaphore {
                    value: *value,
                    bound: *bound,
                }
            }
            Create::Barrier { parties } => {
                if *parties == 0 {
                    return Err(RemoteError::new(
                        ErrorKind::Malformed,
                        "a barrier needs at least one party",
                    ));
                }
                State::Barrier(sync::BarrierState::new(*parties))
            }
            Create::Namespace => State::Namespace(Default::default()),
        };
        Ok(Object {
            id,
            name: name.to_owned(),
            kind: create.kind(),
            deleted: AtomicBool::new(false),
            inner: Mutex::new(Inner {
                state,
                waiters: [0; 3],
            }),
            cvs: [Condvar::new(), Condvar::new(), Condvar::new()],
        })
    }

    /// Locks the object. A poisoned mutex (a panic under it, which handlers avoid) is used
    /// as it is: the state is always left consistent between statements that can fail.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits on condition variable `cv` until `ready` holds, for as long as `wait` allows.
    pub(crate) fn wait_until<'g>(
        &'g self,
        mut g: MutexGuard<'g, Inner>,
        cv: usize,
        wait: Wait,
        cancelled: &dyn Fn() -> bool,
        mut ready: impl FnMut(&mut State) -> bool,
    ) -> (MutexGuard<'g, Inner>, Waited) {
        if ready(&mut g.state) {
            return (g, Waited::Ready);
        }
        let deadline = match wait {
            Wait::Never => return (g, Waited::TimedOut),
            Wait::Forever => None,
            Wait::Micros(us) => Instant::now().checked_add(Duration::from_micros(us)),
        };
        loop {
            let slice = match deadline {
                None => WAIT_SLICE,
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return (g, Waited::TimedOut);
                    }
                    (d - now).min(WAIT_SLICE)
                }
            };
            g.waiters[cv] += 1;
            let (g2, _) = self.cvs[cv]
                .wait_timeout(g, slice)
                .unwrap_or_else(|e| e.into_inner());
            g = g2;
            g.waiters[cv] -= 1;
            let is_ready = ready(&mut g.state);
            if cancelled() {
                // This waiter's client is gone (or the server stops): pass a wakeup meant
                // for it on to the next waiter instead of swallowing it.
                if is_ready {
                    self.notify(&g, cv, false);
                }
                return (g, Waited::Cancelled);
            }
            if is_ready {
                return (g, Waited::Ready);
            }
        }
    }

    /// Wakes one (or every) waiter on condition variable `cv`, if any waits.
    pub(crate) fn notify(&self, g: &Inner, cv: usize, all: bool) {
        if g.waiters[cv] > 0 {
            if all {
                self.cvs[cv].notify_all();
            } else {
                self.cvs[cv].notify_one();
            }
        }
    }

    /// Wakes every waiter, so each checks for shutdown.
    fn wake_all(&self) {
        let _g = self.lock();
        for cv in &self.cvs {
            cv.notify_all();
        }
    }
}

/// Appends the encoding of a successful reply.
pub(crate) fn ok(out: &mut Vec<u8>, reply: Reply<'_>) -> Result<(), RemoteError> {
    Postcard
        .encode(&Response::Ok(reply), out)
        .map_err(|e| RemoteError::new(ErrorKind::Internal, e.to_string()))
}

/// The error for an operation that does not apply to a kind of object.
pub(crate) fn wrong_op(kind: Kind, op: &Op<'_>) -> RemoteError {
    let name = format!("{op:?}");
    let name = name.split(['(', ' ', '{']).next().unwrap_or("");
    RemoteError::new(
        ErrorKind::WrongType,
        format!("operation {name} does not apply to a {kind}: is the proxy of the right kind?"),
    )
}

/// The error for a wait given up because of shutdown or a vanished client.
pub(crate) fn cancelled_error() -> RemoteError {
    RemoteError::new(
        ErrorKind::ShuttingDown,
        "the wait was given up: the server is shutting down",
    )
}

/// Does `op` on `obj`, appending the encoded response (success) to `out`.
pub(crate) fn call(
    obj: &Arc<Object>,
    op: Op<'_>,
    ctx: &mut Ctx<'_>,
    out: &mut Vec<u8>,
) -> Result<(), RemoteError> {
    match obj.kind {
        Kind::Dict => collections::dict(obj, op, out),
        Kind::List | Kind::Array => collections::seq(obj, op, out),
        Kind::Value => collections::value(obj, op, out),
        Kind::Namespace => collections::namespace(obj, op, out),
        Kind::Queue => queue::call(obj, op, ctx, out),
        Kind::Lock | Kind::RLock => sync::lock(obj, op, ctx, out),
        Kind::Event => sync::event(obj, op, ctx, out),
        Kind::Semaphore => sync::semaphore(obj, op, ctx, out),
        Kind::Barrier => sync::barrier(obj, op, ctx, out),
        Kind::Condition => sync::condition(obj, op, ctx, out),
    }
}

/// Whether `op` may wait, so the server writes the replies queued before it first.
pub(crate) fn may_block(op: &Op<'_>) -> bool {
    let wait = match op {
        Op::QueuePut(_, w)
        | Op::QueueGet(w)
        | Op::QueueJoin(w)
        | Op::Acquire(w)
        | Op::EventWait(w)
        | Op::CondWait(w)
        | Op::BarrierWait(w) => *w,
        _ => return false,
    };
    wait != Wait::Never
}

#[derive(Default)]
struct Registry {
    by_name: HashMap<String, Arc<Object>>,
    by_id: HashMap<u64, Arc<Object>>,
}

/// Every object of a server, by name and by id.
#[derive(Default)]
pub(crate) struct Store {
    registry: RwLock<Registry>,
    next_id: AtomicU64,
}

impl Store {
    /// Finds the object `name`, checking its kind, or makes it from `create`.
    pub(crate) fn open(
        &self,
        name: &str,
        kind: Kind,
        create: Option<&Create<'_>>,
    ) -> Result<(Arc<Object>, bool), RemoteError> {
        if let Some(c) = create {
            if c.kind() != kind {
                return Err(RemoteError::new(
                    ErrorKind::Malformed,
                    format!("asked to open a {kind} but to create a {}", c.kind()),
                ));
            }
        }
        let found = {
            let r = self.registry.read().unwrap_or_else(|e| e.into_inner());
            r.by_name.get(name).cloned()
        };
        let found = match found {
            Some(o) => Some(o),
            None => match create {
                None => None,
                Some(c) => {
                    let mut w = self.registry.write().unwrap_or_else(|e| e.into_inner());
                    if let Some(o) = w.by_name.get(name) {
                        Some(o.clone())
                    } else {
                        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
                        let obj = Arc::new(Object::new(id, name, c)?);
                        w.by_name.insert(name.to_owned(), obj.clone());
                        w.by_id.insert(id, obj.clone());
                        tracing::debug!(name, %kind, id, "manager object created");
                        return Ok((obj, true));
                    }
                }
            },
        };
        match found {
            None => Err(RemoteError::new(
                ErrorKind::NotFound,
                format!("no object is called {name:?}: create it first"),
            )),
            Some(o) if o.kind != kind => Err(RemoteError::new(
                ErrorKind::WrongType,
                format!("{name:?} is a {}, not a {kind}", o.kind),
            )),
            Some(o) => Ok((o, false)),
        }
    }

    /// The object with id `id`.
    pub(crate) fn get(&self, id: u64) -> Result<Arc<Object>, RemoteError> {
        let r = self.registry.read().unwrap_or_else(|e| e.into_inner());
        r.by_id.get(&id).cloned().ok_or_else(|| {
            RemoteError::new(
                ErrorKind::NotFound,
                format!("no object has id {id}: it was deleted, or the id is stale"),
            )
        })
    }

    /// Forgets the object `name`.
    pub(crate) fn delete(&self, name: &str) -> Result<(), RemoteError> {
        let mut w = self.registry.write().unwrap_or_else(|e| e.into_inner());
        match w.by_name.remove(name) {
            None => Err(RemoteError::new(
                ErrorKind::NotFound,
                format!("no object is called {name:?}"),
            )),
            Some(o) => {
                w.by_id.remove(&o.id);
                o.deleted.store(true, Ordering::Release);
                Ok(())
            }
        }
    }

    /// Every object's name and kind, sorted by name.
    pub(crate) fn list(&self) -> Vec<(String, Kind)> {
        let r = self.registry.read().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = r
            .by_name
            .values()
            .map(|o| (o.name.clone(), o.kind))
            .collect();
        v.sort();
        v
    }

    /// Wakes every waiting request (on shutdown).
    pub(crate) fn wake_all(&self) {
        let objs: Vec<_> = {
            let r = self.registry.read().unwrap_or_else(|e| e.into_inner());
            r.by_id.values().cloned().collect()
        };
        for o in objs {
            o.wake_all();
        }
    }
}
