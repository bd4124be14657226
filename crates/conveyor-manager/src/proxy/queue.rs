//! The queue proxy: conveyor's [`Channel`], [`QueueInfo`] and [`Joinable`] over a manager.

use std::io;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use conveyor_core::Postcard;
use conveyor_core::{Channel, Codec, GetError, Joinable, PutError, QueueInfo, TaskDoneError};

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
/// q.put("wash".into()).unwrap();
/// assert_eq!(q.len(), 1);
/// assert_eq!(q.get().unwrap(), "wash");
/// q.task_done().unwrap();
/// q.join();
/// let producer = q.clone();
/// producer.close(); // this proxy puts no more: Python's `Queue.close()`
/// assert!(producer.put("dry".into()).unwrap_err().is_closed());
/// q.put("dry".into()).unwrap(); // other proxies still put
/// q.shutdown(false); // for every client: gets drain, then fail with `Closed`
/// assert_eq!(q.get().unwrap(), "dry");
/// assert!(q.try_get().unwrap_err().is_closed());
/// # Ok::<(), conveyor_manager::ManagerError>(())
/// ```
///
/// [`shutdown`](Channel::shutdown) runs on the server, for every client: later puts fail,
/// blocked calls wake, and with `immediate` the items left are discarded there and counted as
/// done, so `join` returns. [`close`](Channel::close) belongs to this proxy (a clone, or a
/// proxy received by another process, is another one): its later puts fail, nothing else
/// changes. A manager queue does not shut itself down when its producers go: use `shutdown`.
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

fn put_error<T>(item: T, e: ManagerError, size: usize) -> PutError<T> {
    match e {
        ManagerError::Remote(r) => match r.kind {
            ErrorKind::Full => PutError::Full(item),
            ErrorKind::Timeout => PutError::Timeout(item),
            ErrorKind::Closed => PutError::Closed(item),
            ErrorKind::TooLarge => PutError::TooLarge { item, size, max: 0 },
            _ => PutError::Io {
                item,
                source: io::Error::other(r),
            },
        },
        ManagerError::Codec(source) => PutError::Codec { item, source },
        other => PutError::Io {
            item,
            source: other.into_io(),
        },
    }
}

fn get_error(e: ManagerError) -> GetError {
    match e {
        ManagerError::Remote(r) => match r.kind {
            ErrorKind::Empty => GetError::Empty,
            ErrorKind::Timeout => GetError::Timeout,
            ErrorKind::Closed => GetError::Closed,
            _ => GetError::Io(io::Error::other(r)),
        },
        ManagerError::Codec(c) => GetError::Codec(c),
        other => GetError::Io(other.into_io()),
    }
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
            Err(e) => Err(put_error(item, e, buf.len())),
        }
    }

    fn get_wait(&self, wait: Wait) -> std::result::Result<T, GetError> {
        self.h
            .call(Op::QueueGet(wait), |r| match r {
                Reply::Item(Some(b)) => decode(b),
                other => Err(unexpected(&other)),
            })
            .map_err(get_error)
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

    /// [`Channel::shutdown`], with the error if the server cannot be reached (which
    /// [`Channel::shutdown`] can only log): shuts the queue down on the server, for every
    /// client; with `immediate` the items left are discarded and counted as done.
    pub fn try_shutdown(&self, immediate: bool) -> Result<()> {
        self.h.call(Op::QueueShutdown(immediate), unit)
    }

    /// Whether this proxy was [closed](Channel::close) (its puts fail; the queue may go on).
    pub fn is_closed(&self) -> bool {
        self._t.closed.load(Ordering::Acquire)
    }

    /// The number of items (Python's `qsize()`), with the error if the server cannot be
    /// reached ([`QueueInfo::len`] answers 0 then).
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

    fn shutdown(&self, immediate: bool) {
        if let Err(e) = self.try_shutdown(immediate) {
            tracing::warn!(queue = %self.h.name_str(), error = %e, "shutting a manager queue down failed");
        }
    }

    fn close(&self) {
        self._t.closed.store(true, Ordering::Release);
    }
}

impl<T: Serialize + DeserializeOwned> QueueInfo for QueueProxy<T> {
    /// The number of items; 0 if the server cannot be reached (see [`QueueProxy::qsize`]).
    fn len(&self) -> usize {
        self.state().map(|s| s.len).unwrap_or(0)
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn is_full(&self) -> bool {
        self.state()
            .map(|s| s.capacity.is_some_and(|c| s.len >= c))
            .unwrap_or(false)
    }

    fn capacity(&self) -> Option<usize> {
        self.state().ok().and_then(|s| s.capacity)
    }
}

impl<T: Serialize + DeserializeOwned> Joinable for QueueProxy<T> {
    fn task_done(&self) -> std::result::Result<(), TaskDoneError> {
        self.h.call(Op::QueueTaskDone, unit).map_err(|e| match e {
            ManagerError::Remote(r) if r.kind == ErrorKind::TooManyTaskDone => {
                TaskDoneError::TooManyCalls
            }
            other => TaskDoneError::Io(other.into_io()),
        })
    }

    fn join(&self) {
        loop {
            match self.h.call(Op::QueueJoin(Wait::Forever), |r| match r {
                Reply::Bool(b) => Ok(b),
                other => Err(unexpected(&other)),
            }) {
                Ok(true) => return,
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "join on a manager queue failed");
                    return;
                }
            }
        }
    }

    fn join_timeout(&self, timeout: Duration) -> bool {
        self.h
            .call(
                Op::QueueJoin(Wait::from_timeout(Some(timeout))),
                |r| match r {
                    Reply::Bool(b) => Ok(b),
                    other => Err(unexpected(&other)),
                },
            )
            .unwrap_or(false)
    }
}
