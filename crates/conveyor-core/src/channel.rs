//! The three traits every conveyor transport implements.

use std::time::Duration;

use crate::error::{GetError, PutError, TaskDoneError};
use crate::Unavailable;

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
/// | `q.shutdown(immediate=False)` (3.13) | [`shutdown(false)`](Channel::shutdown) |
/// | `q.shutdown(immediate=True)` (3.13)  | [`shutdown(true)`](Channel::shutdown)  |
/// | `mp.Queue.close()`            | [`close`](Channel::close)      |
/// | `mp.Queue.join_thread()`      | nothing needed: a put is in the queue when it returns |
/// | `mp.Queue.cancel_join_thread()` | nothing needed: there is no feeder thread to wait for |
///
/// A failed put hands the item back inside the [`PutError`], so nothing is lost.
///
/// # Shutdown and close
///
/// Two ways to end, named after Python's:
///
/// - [`shutdown`](Channel::shutdown) is `queue.Queue.shutdown` (Python 3.13) and acts for
///   everyone sharing the queue: later puts fail with `Closed`, blocked puts and gets wake.
///   Without `immediate`, gets drain what is left, then fail with `Closed`; with `immediate`,
///   what is left is discarded (and, on a [`Joinable`] queue, counted as done, so `join`
///   returns) and every get fails with `Closed` at once.
/// - [`close`](Channel::close) is `multiprocessing.Queue.close()`: this handle will put no more.
///   Other handles (clones, other processes) are not affected. A queue can be built to shut
///   itself down (as `shutdown(false)`) once every handle that has put has closed or gone, so
///   that a consumer learns the producers are done, which Python's never does; each transport
///   documents how. For a point-to-point connection `close` closes this end: the peer's gets
///   drain what was sent, then fail with `Closed`.
///
/// Python's `multiprocessing.Queue` has a feeder thread that moves items into a pipe after `put`
/// returns, hence `join_thread()` (wait for it) and `cancel_join_thread()` (do not). conveyor
/// has none: when a put returns the item is in the queue (for a process queue, in the shared
/// segment), so there is nothing to wait for or cancel.
///
/// # When the answer lives elsewhere
///
/// `shutdown` and `close` return `Result<(), `[`Unavailable`]`>`: a manager's or Redis's queue
/// shuts down on its server, and a server that cannot be reached has not shut it down, so the
/// caller must hear of it (consumers would otherwise wait forever). A thread queue never fails
/// there, and its inherent `shutdown`/`close` return `()`; code written over the trait writes
/// `q.shutdown(false)?`.
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
/// #     fn shutdown(&self, _: bool) -> Result<(), conveyor_core::Unavailable> { Ok(()) }
/// #     fn close(&self) -> Result<(), conveyor_core::Unavailable> { Ok(()) }
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

    /// Shuts the channel down for everyone sharing it (Python 3.13's `Queue.shutdown`).
    ///
    /// Every later put, through any handle, fails with `Closed` (the item comes back); every
    /// blocked put and get wakes. Without `immediate`, gets drain what is left and then fail with
    /// `Closed`. With `immediate`, the items left are discarded (on a [`Joinable`] channel they
    /// are counted as done, so `join` returns, as CPython gh-137088 settled) and every get, blocked
    /// or later, fails with `Closed` at once. Shutting down twice is a no-op, except that
    /// `shutdown(true)` after `shutdown(false)` still discards what is left.
    ///
    /// Fails with [`Unavailable`] when the queue lives elsewhere (a server) and the shutdown
    /// could not be carried out there: the queue may not be shut down, and its consumers may
    /// not learn of it. In-process transports never fail.
    fn shutdown(&self, immediate: bool) -> Result<(), Unavailable>;

    /// Closes this handle for puts (Python's `multiprocessing.Queue.close()`): later puts through
    /// it fail with `Closed`; other handles, clones and processes are not affected, and gets go on.
    ///
    /// On a queue built to shut itself down once its producers are done, the last handle that
    /// has put closing (or going away) shuts the queue down as `shutdown(false)` does. For a
    /// point-to-point connection it closes this end: the peer's gets drain what was sent, then
    /// fail with `Closed`. Closing twice is a no-op.
    ///
    /// This handle is closed whatever the result. It fails with [`Unavailable`] when closing had
    /// to tell someone elsewhere and could not: a Redis queue's server that should learn this
    /// producer is done (its consumers learn only when its lease runs out), a connection's peer
    /// that went away before what was buffered for it was sent. In-process transports never
    /// fail.
    fn close(&self) -> Result<(), Unavailable>;
}

/// What can be asked of a queue about its contents (not of point-to-point connections).
///
/// Across processes the answers are approximate, as in Python: another process may put or get
/// between the question and the use of the answer.
///
/// Each method returns a `Result`: a queue held by a server (the manager's, Redis) knows its
/// length only by asking, and when the server cannot be reached the answer is an
/// [`Unavailable`] error, never a made-up `0` or `false`. Queues in this process or in shared
/// memory never fail here, and carry inherent methods of the same names that return the plain
/// value, so that code using them directly stays as in Python:
///
/// ```
/// # #[derive(Default)] struct Queue(std::sync::Mutex<Vec<u32>>);
/// # impl Queue { fn len(&self) -> usize { self.0.lock().unwrap().len() } }
/// # impl conveyor_core::QueueInfo for Queue {
/// #     fn len(&self) -> Result<usize, conveyor_core::Unavailable> { Ok(Queue::len(self)) }
/// #     fn is_empty(&self) -> Result<bool, conveyor_core::Unavailable> { Ok(Queue::len(self) == 0) }
/// #     fn is_full(&self) -> Result<bool, conveyor_core::Unavailable> { Ok(false) }
/// #     fn capacity(&self) -> Result<Option<usize>, conveyor_core::Unavailable> { Ok(None) }
/// # }
/// use conveyor_core::{QueueInfo, Unavailable};
///
/// /// Written over the trait: works for a manager's queue too, and says when it cannot tell.
/// fn report(q: &impl QueueInfo) -> Result<String, Unavailable> {
///     Ok(format!("{} waiting", q.len()?))
/// }
///
/// let q = Queue::default(); // a local queue: its own `len()` is a plain usize
/// assert_eq!(q.len(), 0);
/// assert_eq!(report(&q)?, "0 waiting");
/// # Ok::<(), Unavailable>(())
/// ```
pub trait QueueInfo {
    /// The number of items in the queue (Python's `qsize()`).
    fn len(&self) -> Result<usize, Unavailable>;
    /// Whether the queue holds no item (Python's `empty()`).
    fn is_empty(&self) -> Result<bool, Unavailable>;
    /// Whether a put would block now (Python's `full()`); never true for an unbounded queue.
    fn is_full(&self) -> Result<bool, Unavailable>;
    /// The most items the queue holds, or `None` if it is unbounded (Python's `maxsize`).
    fn capacity(&self) -> Result<Option<usize>, Unavailable>;
}

/// Task accounting, as `queue.Queue` and `multiprocessing.JoinableQueue` do it.
///
/// Every successful put adds one unfinished task; [`task_done`](Joinable::task_done) removes
/// one; [`join`](Joinable::join) waits until none is left.
///
/// A `join` that returns `Ok` means every task was done; one that could not learn it (the
/// queue's server cannot be reached, or lost the queue) fails with [`Unavailable`] instead of
/// returning as if the work were finished. Queues in this process or in shared memory never
/// fail, and their inherent `join()` returns `()` and `join_timeout` a plain `bool`.
pub trait Joinable {
    /// Marks one task taken from the queue as finished.
    ///
    /// Calling it more times than items were put is an error (Python raises `ValueError`), as
    /// is a server that cannot be reached ([`TaskDoneError::Unavailable`]).
    fn task_done(&self) -> Result<(), TaskDoneError>;
    /// Blocks until every item put has been marked done; returns at once if none is
    /// outstanding. Fails if that cannot be known (see the trait's docs).
    fn join(&self) -> Result<(), Unavailable>;
    /// As [`join`](Joinable::join), for at most `timeout`: `Ok(true)` if every task was done,
    /// `Ok(false)` if some were still outstanding when the timeout ran out.
    fn join_timeout(&self, timeout: Duration) -> Result<bool, Unavailable>;
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
            fn shutdown(&self, immediate: bool) -> Result<(), Unavailable> {
                (**self).shutdown(immediate)
            }
            #[inline]
            fn close(&self) -> Result<(), Unavailable> { (**self).close() }
        }
        impl<C: QueueInfo + ?Sized> QueueInfo for $ptr {
            #[inline]
            fn len(&self) -> Result<usize, Unavailable> { (**self).len() }
            #[inline]
            fn is_empty(&self) -> Result<bool, Unavailable> { (**self).is_empty() }
            #[inline]
            fn is_full(&self) -> Result<bool, Unavailable> { (**self).is_full() }
            #[inline]
            fn capacity(&self) -> Result<Option<usize>, Unavailable> { (**self).capacity() }
        }
        impl<C: Joinable + ?Sized> Joinable for $ptr {
            #[inline]
            fn task_done(&self) -> Result<(), TaskDoneError> { (**self).task_done() }
            #[inline]
            fn join(&self) -> Result<(), Unavailable> { (**self).join() }
            #[inline]
            fn join_timeout(&self, timeout: Duration) -> Result<bool, Unavailable> {
                (**self).join_timeout(timeout)
            }
        }
    )*};
}

forward_impls!(&C, Box<C>, std::sync::Arc<C>);
