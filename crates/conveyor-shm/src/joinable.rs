//! [`JoinableShmQueue`]: a [`ShmQueue`] with `task_done` / `join` across processes.

use std::fmt;
use std::ops::Deref;
use std::time::Duration;

use conveyor_core::{
    Channel, Codec, GetError, Joinable, Postcard, PutError, QueueInfo, TaskDoneError, Unavailable,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::queue::{ShmQueue, ShmQueueBuilder};
use crate::wait::Deadline;
use crate::ShmError;

/// A shared-memory queue with task accounting: Python's `multiprocessing.JoinableQueue`.
///
/// Every successful put adds an unfinished task (counted in the segment, so every process
/// sees it); [`task_done`](Joinable::task_done) removes one; [`join`](Joinable::join) waits, in
/// any process, until none is left. It derefs to [`ShmQueue`] for everything else.
///
/// A consumer killed between taking an item and calling `task_done` leaves that task
/// unfinished forever (as in Python): use [`join_timeout`](Joinable::join_timeout) where
/// consumers may die.
///
/// ```
/// use conveyor_core::{Channel, Joinable};
/// use conveyor_shm::JoinableShmQueue;
///
/// let q: JoinableShmQueue<String> = JoinableShmQueue::new()?;
/// q.put("hot dog".into())?;
/// assert!(!q.join_timeout(std::time::Duration::from_millis(1)));
/// let dog = q.get()?;
/// q.task_done()?;
/// q.join(); // returns at once: every task is done
/// assert!(q.task_done().is_err()); // one call too many
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct JoinableShmQueue<T, C: Codec = Postcard> {
    inner: ShmQueue<T, C>,
}

impl<T, C: Codec> Clone for JoinableShmQueue<T, C> {
    fn clone(&self) -> Self {
        JoinableShmQueue {
            inner: self.inner.clone(),
        }
    }
}

impl<T, C: Codec> fmt::Debug for JoinableShmQueue<T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinableShmQueue")
            .field("queue", &self.inner)
            .field("unfinished", &self.inner.raw.ring.unfinished_hint())
            .finish()
    }
}

impl<T: Serialize + DeserializeOwned> JoinableShmQueue<T> {
    /// Creates a queue with a fresh anonymous name and default options.
    pub fn new() -> Result<Self, ShmError> {
        Ok(Self::from_queue(ShmQueue::new()?))
    }

    /// Creates a queue called `name` with default options.
    pub fn create(name: &str) -> Result<Self, ShmError> {
        Ok(Self::from_queue(ShmQueue::create(name)?))
    }

    /// Creates a queue from builder options.
    pub fn with_options(options: ShmQueueBuilder<T>) -> Result<Self, ShmError> {
        Ok(Self::from_queue(options.create()?))
    }

    /// Opens the queue called `name`.
    pub fn open(name: &str) -> Result<Self, ShmError> {
        Ok(Self::from_queue(ShmQueue::open(name)?))
    }
}

impl<T, C: Codec> JoinableShmQueue<T, C> {
    /// Wraps a queue handle (every queue segment keeps the task count).
    pub fn from_queue(inner: ShmQueue<T, C>) -> Self {
        JoinableShmQueue { inner }
    }

    /// The plain queue handle.
    pub fn into_queue(self) -> ShmQueue<T, C> {
        self.inner
    }

    /// The number of items in the queue (see [`ShmQueue::len`]).
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether the queue holds no item (see [`ShmQueue::is_empty`]).
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// Whether a put would block now (see [`ShmQueue::is_full`]).
    pub fn is_full(&self) -> bool {
        self.inner.is_full()
    }

    /// The most items the queue holds (see [`ShmQueue::capacity`]).
    pub fn capacity(&self) -> Option<usize> {
        self.inner.capacity()
    }

    /// Closes this handle for puts (see [`ShmQueue::close`]).
    pub fn close(&self) {
        self.inner.close()
    }

    /// Blocks until every item put (by any process) has been marked done; at once if none
    /// is outstanding. The segment always answers, so this returns `()`;
    /// [`Joinable::join`] returns `Ok(())`.
    pub fn join(&self) {
        self.inner.raw.join(Deadline::Never);
    }

    /// As [`join`](Self::join), for at most `timeout`; whether every task was done.
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.inner.raw.join(Deadline::after(timeout))
    }

    /// The number of tasks put and not yet marked done (approximate while others work).
    pub fn unfinished(&self) -> u64 {
        self.inner.raw.ring.unfinished_hint()
    }
}

impl<T, C: Codec> Deref for JoinableShmQueue<T, C> {
    type Target = ShmQueue<T, C>;
    fn deref(&self) -> &ShmQueue<T, C> {
        &self.inner
    }
}

impl<T: Serialize + DeserializeOwned, C: Codec> Channel<T> for JoinableShmQueue<T, C> {
    fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.inner.put(item)
    }
    fn try_put(&self, item: T) -> Result<(), PutError<T>> {
        self.inner.try_put(item)
    }
    fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.inner.put_timeout(item, timeout)
    }
    fn get(&self) -> Result<T, GetError> {
        self.inner.get()
    }
    fn try_get(&self) -> Result<T, GetError> {
        self.inner.try_get()
    }
    fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.inner.get_timeout(timeout)
    }
    fn shutdown(&self, immediate: bool) -> Result<(), Unavailable> {
        Channel::shutdown(&self.inner, immediate)
    }
    fn close(&self) -> Result<(), Unavailable> {
        Channel::close(&self.inner)
    }
}

/// Never fails, as [`ShmQueue`]'s.
impl<T, C: Codec> QueueInfo for JoinableShmQueue<T, C> {
    fn len(&self) -> Result<usize, Unavailable> {
        Ok(self.inner.len())
    }
    fn is_empty(&self) -> Result<bool, Unavailable> {
        Ok(self.inner.is_empty())
    }
    fn is_full(&self) -> Result<bool, Unavailable> {
        Ok(self.inner.is_full())
    }
    fn capacity(&self) -> Result<Option<usize>, Unavailable> {
        Ok(self.inner.capacity())
    }
}

impl<T, C: Codec> Joinable for JoinableShmQueue<T, C> {
    fn task_done(&self) -> Result<(), TaskDoneError> {
        if self.inner.raw.task_done()? {
            Ok(())
        } else {
            Err(TaskDoneError::TooManyCalls)
        }
    }

    /// Never fails: the task count is in the shared segment.
    fn join(&self) -> Result<(), Unavailable> {
        JoinableShmQueue::join(self);
        Ok(())
    }

    fn join_timeout(&self, timeout: Duration) -> Result<bool, Unavailable> {
        Ok(JoinableShmQueue::join_timeout(self, timeout))
    }
}

/// Travels as its segment's name, like [`ShmQueue`].
impl<T, C: Codec> Serialize for JoinableShmQueue<T, C> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.inner.serialize(s)
    }
}

impl<'de, T: Serialize + DeserializeOwned, C: Codec + Default> Deserialize<'de>
    for JoinableShmQueue<T, C>
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::from_queue(ShmQueue::deserialize(d)?))
    }
}
