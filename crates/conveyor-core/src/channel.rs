//! The three traits every conveyor transport implements.

use std::time::Duration;

use crate::error::{GetError, PutError, TaskDoneError};

/// A channel that items are put into and taken out of: the common face of every transport.
///
/// Queues, shared-memory queues, connections and manager proxies all implement it, so code
/// written against `Channel<T>` moves from threads to processes to the network by changing the
/// line that builds the channel.
///
/// | Python                        | conveyor                       |
/// |-------------------------------|--------------------------------|
/// | `q.put(x)`                    | [`put`](Channel::put)          |
/// | `q.put(x, block=False)`       | [`try_put`](Channel::try_put)  |
/// | `q.put(x, timeout=t)`         | [`put_timeout`](Channel::put_timeout) |
/// | `q.get()`                     | [`get`](Channel::get)          |
/// | `q.get(block=False)`          | [`try_get`](Channel::try_get)  |
/// | `q.get(timeout=t)`            | [`get_timeout`](Channel::get_timeout) |
/// | `q.shutdown()` (3.13)         | [`close`](Channel::close)      |
///
/// A failed put hands the item back inside the [`PutError`], so nothing is lost.
///
/// # Example
///
/// A function written once over the trait; any transport can be passed in.
///
/// ```
/// use conveyor_core::{Channel, GetError};
///
/// fn drain<C: Channel<u32>>(chan: &C) -> Vec<u32> {
///     let mut out = Vec::new();
///     loop {
///         match chan.try_get() {
///             Ok(v) => out.push(v),
///             Err(e) if e.is_empty() || e.is_closed() => return out,
///             Err(e) => panic!("unexpected: {e}"),
///         }
///     }
/// }
/// # struct Never;
/// # impl Channel<u32> for Never {
/// #     fn put(&self, i: u32) -> Result<(), conveyor_core::PutError<u32>> { Err(conveyor_core::PutError::Closed(i)) }
/// #     fn try_put(&self, i: u32) -> Result<(), conveyor_core::PutError<u32>> { Err(conveyor_core::PutError::Closed(i)) }
/// #     fn put_timeout(&self, i: u32, _: std::time::Duration) -> Result<(), conveyor_core::PutError<u32>> { Err(conveyor_core::PutError::Closed(i)) }
/// #     fn get(&self) -> Result<u32, GetError> { Err(GetError::Closed) }
/// #     fn try_get(&self) -> Result<u32, GetError> { Err(GetError::Closed) }
/// #     fn get_timeout(&self, _: std::time::Duration) -> Result<u32, GetError> { Err(GetError::Closed) }
/// #     fn close(&self) {}
/// # }
/// # assert!(drain(&Never).is_empty());
/// ```
pub trait Channel<T> {
    /// Puts `item`, blocking while the channel is full.
    ///
    /// Fails with `Closed` once the channel is closed; the item comes back in the error.
    fn put(&self, item: T) -> Result<(), PutError<T>>;

    /// Puts `item` if there is room now (Python's `put_nowait`); fails with `Full` otherwise.
    fn try_put(&self, item: T) -> Result<(), PutError<T>>;

    /// Puts `item`, waiting at most `timeout` for room; fails with `Timeout` after that.
    fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>>;

    /// Takes the next item, blocking while the channel is empty.
    ///
    /// Once the channel is closed, the items left are still handed out; after the last one,
    /// every get returns `Closed` instead of blocking.
    fn get(&self) -> Result<T, GetError>;

    /// Takes the next item if there is one now (Python's `get_nowait`); fails with `Empty`.
    fn try_get(&self) -> Result<T, GetError>;

    /// Takes the next item, waiting at most `timeout`; fails with `Timeout` after that.
    fn get_timeout(&self, timeout: Duration) -> Result<T, GetError>;

    /// Closes the channel for puts: every later put fails with `Closed`, every blocked put and
    /// get wakes, and gets drain what is left and then return `Closed`. Closing twice is a no-op.
    fn close(&self);
}

/// What can be asked of a queue about its contents (not of point-to-point connections).
///
/// Across processes the answers are approximate, as in Python: another process may put or get
/// between the question and the use of the answer.
pub trait QueueInfo {
    /// The number of items in the queue (Python's `qsize()`).
    fn len(&self) -> usize;
    /// Whether the queue holds no item (Python's `empty()`).
    fn is_empty(&self) -> bool;
    /// Whether a put would block now (Python's `full()`); never true for an unbounded queue.
    fn is_full(&self) -> bool;
    /// The most items the queue holds, or `None` if it is unbounded (Python's `maxsize`).
    fn capacity(&self) -> Option<usize>;
}

/// Task accounting, as `queue.Queue` and `multiprocessing.JoinableQueue` do it.
///
/// Every successful put adds one unfinished task; [`task_done`](Joinable::task_done) removes
/// one; [`join`](Joinable::join) waits until none is left.
pub trait Joinable {
    /// Marks one task taken from the queue as finished.
    ///
    /// Calling it more times than items were put is an error (Python raises `ValueError`).
    fn task_done(&self) -> Result<(), TaskDoneError>;
    /// Blocks until every item put has been marked done; returns at once if none is outstanding.
    fn join(&self);
    /// As [`join`](Joinable::join), for at most `timeout`; returns whether every task was done.
    fn join_timeout(&self, timeout: Duration) -> bool;
}

macro_rules! forward_impls {
    ($($ptr:ty),*) => {$(
        impl<T, C: Channel<T> + ?Sized> Channel<T> for $ptr {
            #[inline]
            fn put(&self, item: T) -> Result<(), PutError<T>> { (**self).put(item) }
            #[inline]
            fn try_put(&self, item: T) -> Result<(), PutError<T>> { (**self).try_put(item) }
            #[inline]
            fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
                (**self).put_timeout(item, timeout)
            }
            #[inline]
            fn get(&self) -> Result<T, GetError> { (**self).get() }
            #[inline]
            fn try_get(&self) -> Result<T, GetError> { (**self).try_get() }
            #[inline]
            fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> { (**self).get_timeout(timeout) }
            #[inline]
            fn close(&self) { (**self).close() }
        }
        impl<C: QueueInfo + ?Sized> QueueInfo for $ptr {
            #[inline]
            fn len(&self) -> usize { (**self).len() }
            #[inline]
            fn is_empty(&self) -> bool { (**self).is_empty() }
            #[inline]
            fn is_full(&self) -> bool { (**self).is_full() }
            #[inline]
            fn capacity(&self) -> Option<usize> { (**self).capacity() }
        }
        impl<C: Joinable + ?Sized> Joinable for $ptr {
            #[inline]
            fn task_done(&self) -> Result<(), TaskDoneError> { (**self).task_done() }
            #[inline]
            fn join(&self) { (**self).join() }
            #[inline]
            fn join_timeout(&self, timeout: Duration) -> bool { (**self).join_timeout(timeout) }
        }
    )*};
}

forward_impls!(&C, Box<C>, std::sync::Arc<C>);
