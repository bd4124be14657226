//! The queue proxy: conveyor's [`Channel`], [`QueueInfo`] and [`Joinable`] over a manager.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use conveyor_core::Postcard;
use conveyor_core::{
    Channel, Codec, GetError, Joinable, PutError, QueueInfo, TaskDoneError, Unavailable,
    UnavailableKind,
};

use super::{proxy_impl, Handle};
use crate::error::{ErrorKind, ManagerError, Result};
use crate::protocol::{decode, unexpected, unit};
use crate::protocol::{Blob, Op, Reply, Wait};

/// A shared queue (`Manager().Queue()` / `JoinableQueue()`), FIFO, bounded or not.
///
/// It implements [`Channel`], so code written for any conveyor queue runs over it; every
/// call is a round trip to the server. A blocking call waits on the server, in the thread
/// that serves this connection, so other clients go on; other users of the *same* connection
/// wait behind it (see [`ManagerConnection`](crate::ManagerConnection)).
///
/// ```
/// use conveyor_core::{Channel, Joinable, QueueInfo};
/// use conveyor_manager::Manager;
///
/// let m = Manager::start()?;
/// let q = m.queue::<String>("jobs", Some(8))?;
/// q.put("wash".into())?;
/// assert_eq!(q.len()?, 1); // a round trip: fails if the server cannot be reached
/// assert_eq!(q.get()?, "wash");
/// q.task_done()?;
/// q.join()?; // Ok: every task is done (an error if that cannot be known)
/// let producer = q.clone();
/// producer.close()?; // this proxy puts no more: Python's `Queue.close()`
/// assert!(producer.put("dry".into()).unwrap_err().is_closed());
/// q.put("dry".into())?; // other proxies still put
/// q.shutdown(false)?; // for every client: gets drain, then fail with `Closed`
/// assert_eq!(q.get()?, "dry");
/// assert!(q.try_get().unwrap_err().is_closed());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// [`shutdown`](Channel::shutdown) runs on the server, for every client: later puts fail,
/// blocked calls wake, and with `immediate` the items left are discarded there and counted as
/// done, so `join` returns. [`close`](Channel::close) belongs to this proxy (a clone, or a
/// proxy received by another process, is another one): its later puts fail, nothing else
/// changes. A manager queue does not shut itself down when its producers go: use `shutdown`.
///
/// When the server cannot be reached (stopped, killed, restarted, the connection dropped),
/// every call says so: [`QueueInfo`]'s methods, [`join`](Joinable::join),
/// [`join_timeout`](Joinable::join_timeout) and [`shutdown`](Channel::shutdown) fail with an
/// [`Unavailable`] (unreachable; lost if a restarted server no longer knows the queue) whose
/// source is the [`ManagerError`]; puts and gets fail with an I/O error that carries the same
/// `Unavailable`, and `task_done` with [`TaskDoneError::Unavailable`]. No call answers `0`,
/// "done" or "shut down" without the server having said so. [`close`](Channel::close) touches
/// only this proxy and never fails.
pub struct QueueProxy<T> {
    h: Handle,
    _t: ProxyLocal<T>,
}
proxy_impl!(Queue, QueueProxy<T>);

/// What belongs to one queue proxy and not to the queue: its close mark.
struct ProxyLocal<T> {
    closed: AtomicBool,
    _t: PhantomData<fn(T) -> T>,
}

impl<T> Default for ProxyLocal<T> {
    fn default() -> Self {
        ProxyLocal {
            closed: AtomicBool::new(false),
            _t: PhantomData,
        }
    }
}

/// A queue's state, as [`QueueProxy::state`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueState {
    /// Items in the queue.
    pub len: usize,
    /// The most it holds, `None` if unbounded.
    pub capacity: Option<usize>,
    /// Items put and not yet marked done.
    pub unfinished: u64,
    /// Whether it was shut down ([`Channel::shutdown`]).
    pub closed: bool,
}

fn put_error<T>(item: T, e: ManagerError, size: usize, h: &Handle) -> PutError<T> {
    match e {
        ManagerError::Remote(r) => match r.kind {
            ErrorKind::Full => PutError::Full(item),
            ErrorKind::Timeout => PutError::Timeout(item),
            ErrorKind::Closed => PutError::Closed(item),
            ErrorKind::TooLarge => PutError::TooLarge { item, size, max: 0 },
            _ => PutError::Io {
                item,
                source: unavailable(h, "put", ManagerError::Remote(r)).into(),
            },
        },
        ManagerError::Codec(source) => PutError::Codec { item, source },
        other => PutError::Io {
            item,
            source: unavailable(h, "put", other).into(),
        },
    }
}

fn get_error(e: ManagerError, h: &Handle) -> GetError {
    match e {
        ManagerError::Remote(r) => match r.kind {
            ErrorKind::Empty => GetError::Empty,
            ErrorKind::Timeout => GetError::Timeout,
            ErrorKind::Closed => GetError::Closed,
            _ => GetError::Io(unavailable(h, "get", ManagerError::Remote(r)).into()),
        },
        ManagerError::Codec(c) => GetError::Codec(c),
        other => GetError::Io(unavailable(h, "get", other).into()),
    }
}

/// `operation` on the queue behind `h` failed for `e`, with no answer from the queue: the
/// server cannot be reached (the connection failed, or the server is shutting down), no longer
/// holds the queue (a restarted server answers `NotFound`), or answered nonsense.
fn unavailable(h: &Handle, operation: &'static str, e: ManagerError) -> Unavailable {
    let kind = match &e {
        ManagerError::Io(_) | ManagerError::Auth(_) => UnavailableKind::Unreachable,
        ManagerError::Remote(r) => match r.kind {
            ErrorKind::NotFound => UnavailableKind::Lost,
            ErrorKind::ShuttingDown => UnavailableKind::Unreachable,
            _ => UnavailableKind::Failed,
        },
        _ => UnavailableKind::Failed,
    };
    let channel = match h.client().address() {
        Some(a) => format!("manager queue `{}` at {a}", h.name_str()),
        None => format!("manager queue `{}`", h.name_str()),
    };
    Unavailable::new(kind, operation, channel, e)
}

impl<T: Serialize + DeserializeOwned> QueueProxy<T> {
    fn put_wait(&self, item: T, wait: Wait) -> std::result::Result<(), PutError<T>> {
        if self._t.closed.load(Ordering::Acquire) {
            return Err(PutError::Closed(item));
        }
        let mut buf = Vec::new();
        if let Err(source) = Postcard.encode(&item, &mut buf) {
            return Err(PutError::Codec { item, source });
        }
        let max = self.h.client().max_frame();
        // Leave room for the request around the item.
        if buf.len().saturating_add(64) > max {
            return Err(PutError::TooLarge {
                item,
                size: buf.len(),
                max: max.saturating_sub(64),
            });
        }
        match self.h.call(Op::QueuePut(Blob(&buf), wait), unit) {
            Ok(()) => Ok(()),
            Err(e) => Err(put_error(item, e, buf.len(), &self.h)),
        }
    }

    fn get_wait(&self, wait: Wait) -> std::result::Result<T, GetError> {
        self.h
            .call(Op::QueueGet(wait), |r| match r {
                Reply::Item(Some(b)) => decode(b),
                other => Err(unexpected(&other)),
            })
            .map_err(|e| get_error(e, &self.h))
    }

    /// The queue's length, capacity, unfinished tasks and closed flag, in one request.
    pub fn state(&self) -> Result<QueueState> {
        self.h.call(Op::QueueState, |r| match r {
            Reply::QueueState {
                len,
                capacity,
                unfinished,
                closed,
            } => Ok(QueueState {
                len: len as usize,
                capacity: capacity.map(|c| c as usize),
                unfinished,
                closed,
            }),
            other => Err(unexpected(&other)),
        })
    }

    /// [`Channel::shutdown`] with the manager's own error: shuts the queue down on the server,
    /// for every client; with `immediate` the items left are discarded and counted as done.
    pub fn try_shutdown(&self, immediate: bool) -> Result<()> {
        self.h.call(Op::QueueShutdown(immediate), unit)
    }

    /// Whether this proxy was [closed](Channel::close) (its puts fail; the queue may go on).
    pub fn is_closed(&self) -> bool {
        self._t.closed.load(Ordering::Acquire)
    }

    /// The number of items (Python's `qsize()`), with the manager's own error
    /// ([`QueueInfo::len`] wraps it in an [`Unavailable`]).
    pub fn qsize(&self) -> Result<usize> {
        Ok(self.state()?.len)
    }
}

impl<T: Serialize + DeserializeOwned> Channel<T> for QueueProxy<T> {
    fn put(&self, item: T) -> std::result::Result<(), PutError<T>> {
        self.put_wait(item, Wait::Forever)
    }

    fn try_put(&self, item: T) -> std::result::Result<(), PutError<T>> {
        self.put_wait(item, Wait::Never)
    }

    fn put_timeout(&self, item: T, timeout: Duration) -> std::result::Result<(), PutError<T>> {
        self.put_wait(item, Wait::from_timeout(Some(timeout)))
    }

    fn get(&self) -> std::result::Result<T, GetError> {
        self.get_wait(Wait::Forever)
    }

    fn try_get(&self) -> std::result::Result<T, GetError> {
        self.get_wait(Wait::Never)
    }

    fn get_timeout(&self, timeout: Duration) -> std::result::Result<T, GetError> {
        self.get_wait(Wait::from_timeout(Some(timeout)))
    }

    /// Fails if the server cannot be reached: the queue may not be shut down, and its
    /// consumers may not learn of it.
    fn shutdown(&self, immediate: bool) -> std::result::Result<(), Unavailable> {
        self.try_shutdown(immediate)
            .map_err(|e| unavailable(&self.h, "shutdown", e))
    }

    /// Never fails: closing belongs to this proxy, and the server has nothing to learn.
    fn close(&self) -> std::result::Result<(), Unavailable> {
        self._t.closed.store(true, Ordering::Release);
        Ok(())
    }
}

/// Every answer is a round trip; a server that cannot be reached is an [`Unavailable`].
impl<T: Serialize + DeserializeOwned> QueueInfo for QueueProxy<T> {
    fn len(&self) -> std::result::Result<usize, Unavailable> {
        self.state()
            .map(|s| s.len)
            .map_err(|e| unavailable(&self.h, "len", e))
    }

    fn is_empty(&self) -> std::result::Result<bool, Unavailable> {
        self.state()
            .map(|s| s.len == 0)
            .map_err(|e| unavailable(&self.h, "is_empty", e))
    }

    fn is_full(&self) -> std::result::Result<bool, Unavailable> {
        self.state()
            .map(|s| s.capacity.is_some_and(|c| s.len >= c))
            .map_err(|e| unavailable(&self.h, "is_full", e))
    }

    fn capacity(&self) -> std::result::Result<Option<usize>, Unavailable> {
        self.state()
            .map(|s| s.capacity)
            .map_err(|e| unavailable(&self.h, "capacity", e))
    }
}

impl<T: Serialize + DeserializeOwned> Joinable for QueueProxy<T> {
    fn task_done(&self) -> std::result::Result<(), TaskDoneError> {
        self.h.call(Op::QueueTaskDone, unit).map_err(|e| match e {
            ManagerError::Remote(r) if r.kind == ErrorKind::TooManyTaskDone => {
                TaskDoneError::TooManyCalls
            }
            other => TaskDoneError::Unavailable(unavailable(&self.h, "task_done", other)),
        })
    }

    /// Waits on the server; fails, instead of returning as if every task were done, if the
    /// server cannot be reached or no longer holds the queue.
    fn join(&self) -> std::result::Result<(), Unavailable> {
        loop {
            match self.h.call(Op::QueueJoin(Wait::Forever), |r| match r {
                Reply::Bool(b) => Ok(b),
                other => Err(unexpected(&other)),
            }) {
                Ok(true) => return Ok(()),
                Ok(false) => continue,
                Err(e) => return Err(unavailable(&self.h, "join", e)),
            }
        }
    }

    fn join_timeout(&self, timeout: Duration) -> std::result::Result<bool, Unavailable> {
        self.h
            .call(
                Op::QueueJoin(Wait::from_timeout(Some(timeout))),
                |r| match r {
                    Reply::Bool(b) => Ok(b),
                    other => Err(unexpected(&other)),
                },
            )
            .map_err(|e| unavailable(&self.h, "join_timeout", e))
    }
}
