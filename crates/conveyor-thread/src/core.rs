//! The internal interface every queue flavor implements, and the shared public API built on it.

use std::time::{Duration, Instant};

use conveyor_core::{GetError, PutError, TaskDoneError};

use crate::locked::{Locked, Store};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

/// What a queue flavor provides; the public handles forward to it.
pub(crate) trait Core<T> {
    fn push(&self, item: T, block: bool, deadline: Option<Instant>) -> Result<(), PutError<T>>;
    fn pop(&self, block: bool, deadline: Option<Instant>) -> Result<T, GetError>;
    fn shutdown(&self, immediate: bool);
    fn is_shutdown(&self) -> bool;
    fn len(&self) -> usize;
    fn capacity(&self) -> Option<usize>;
    fn task_done(&self) -> Result<(), TaskDoneError>;
    fn join(&self, deadline: Option<Instant>) -> bool;
    /// Threads parked in (put, get, join).
    fn sleepers(&self) -> (usize, usize, usize);
}

impl<S: Store> Core<S::Item> for Locked<S> {
    #[inline]
    fn push(
        &self,
        item: S::Item,
        block: bool,
        deadline: Option<Instant>,
    ) -> Result<(), PutError<S::Item>> {
        Locked::push(self, item, block, deadline)
    }
    #[inline]
    fn pop(&self, block: bool, deadline: Option<Instant>) -> Result<S::Item, GetError> {
        Locked::pop(self, block, deadline)
    }
    fn shutdown(&self, immediate: bool) {
        Locked::shutdown(self, immediate)
    }
    fn is_shutdown(&self) -> bool {
        Locked::is_shutdown(self)
    }
    fn len(&self) -> usize {
        Locked::len(self)
    }
    fn capacity(&self) -> Option<usize> {
        Locked::capacity(self)
    }
    fn task_done(&self) -> Result<(), TaskDoneError> {
        Locked::task_done(self)
    }
    fn join(&self, deadline: Option<Instant>) -> bool {
        Locked::join(self, deadline)
    }
    fn sleepers(&self) -> (usize, usize, usize) {
        Locked::sleepers(self)
    }
}

/// One handle's state: its close mark (Python's `multiprocessing.Queue.close()`, set by the
/// handle's `close`, never cleared) and whether it has put, with the producer count it shares
/// with every handle of its queue (for `auto_shutdown`). A clone is another handle: it starts
/// open and not yet a producer.
///
/// These are `std` atomics even under loom: the model tests check the queues' cores, not the
/// handles.
#[derive(Debug, Default)]
pub(crate) struct HandleMark {
    /// [`PUT`], [`COUNTED`] and [`CLOSED`] bits.
    state: std::sync::atomic::AtomicU8,
    producers: Arc<Producers>,
}

/// The handle has put.
const PUT: u8 = 1;
/// The handle was closed: its puts fail.
const CLOSED: u8 = 2;
/// The handle counts in [`Producers::live`].
const COUNTED: u8 = 4;

/// The producer handles of one queue, for `auto_shutdown`.
#[derive(Default)]
struct Producers {
    /// Set by `auto_shutdown`: shut the queue down once no producer is left.
    on_done: OnceLock<Box<dyn Fn() + Send + Sync>>,
    /// Handles that have put (since `auto_shutdown`) and have not closed or been dropped.
    live: std::sync::atomic::AtomicUsize,
    /// Some handle has been counted.
    seen: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Producers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producers")
            .field("auto_shutdown", &self.on_done.get().is_some())
            .field("live", &self.live)
            .finish()
    }
}

impl HandleMark {
    /// Another handle of the same queue: open, not yet a producer.
    pub(crate) fn fresh(&self) -> Self {
        HandleMark {
            state: Default::default(),
            producers: self.producers.clone(),
        }
    }

    /// Before a put: `false` if the handle is closed. One load once the handle has put.
    #[inline]
    pub(crate) fn before_put(&self) -> bool {
        let s = self.state.load(Ordering::Acquire);
        if s & (PUT | CLOSED) == PUT {
            return true;
        }
        self.first_put()
    }

    #[cold]
    fn first_put(&self) -> bool {
        loop {
            let s = self.state.load(Ordering::Acquire);
            if s & CLOSED != 0 {
                return false;
            }
            if s & PUT != 0 {
                return true;
            }
            let auto = self.producers.on_done.get().is_some();
            if auto {
                // Counted before the mark says so, so that a close that sees COUNTED always
                // takes back a count that is there.
                self.producers.live.fetch_add(1, Ordering::SeqCst);
            }
            let new = if auto { PUT | COUNTED } else { PUT };
            match self
                .state
                .compare_exchange(s, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    if auto {
                        self.producers.seen.store(true, Ordering::SeqCst);
                    }
                    return true;
                }
                Err(_) if auto => self.release(),
                Err(_) => {}
            }
        }
    }

    /// Marks the handle closed; if it was a counted producer and the last, runs the queue's
    /// shutdown.
    pub(crate) fn close(&self) {
        let before = self.state.fetch_or(CLOSED, Ordering::AcqRel);
        if before & CLOSED == 0 && before & COUNTED != 0 {
            self.release();
        }
    }

    /// Takes back one producer count; the last one (once some handle was counted) shuts the
    /// queue down.
    fn release(&self) {
        if self.producers.live.fetch_sub(1, Ordering::SeqCst) == 1
            && self.producers.seen.load(Ordering::SeqCst)
        {
            if let Some(done) = self.producers.on_done.get() {
                done();
            }
        }
    }

    /// Whether the handle was closed.
    #[inline]
    pub(crate) fn is_set(&self) -> bool {
        self.state.load(Ordering::Acquire) & CLOSED != 0
    }

    /// Makes every handle of the queue run `shutdown` once no producer is left (a no-op if
    /// that was set already).
    pub(crate) fn auto_shutdown(&self, shutdown: Box<dyn Fn() + Send + Sync>) {
        let _already_set = self.producers.on_done.set(shutdown);
    }
}

/// The instant `timeout` from now; `None` (wait forever) if that is beyond what `Instant` holds.
#[inline]
pub(crate) fn deadline(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// Implements the methods every queue shares (inherent, so that users need not import the
/// traits, and the `conveyor_core` traits forwarding to them) for a handle with a `core` field.
macro_rules! shared_api {
    ($name:ident <$t:ident $(: $bound:path)?>, $example_items:literal, $first:literal) => {
        impl<$t $(: $bound)?> $name<$t> {
            #[doc = concat!("Puts `item`, blocking while the queue is full (Python's `put(item)`).

Fails with `Closed`, handing the item back, once the queue is shut down or this handle is
closed; a put blocked on a full queue wakes and fails that way when the queue is shut down.

```
use conveyor_thread::", stringify!($name), ";

let q = ", stringify!($name), "::bounded(2);
q.put(1).unwrap();
q.close();
assert_eq!(q.put(2).unwrap_err().into_inner(), 2);
```")]
            #[inline]
            pub fn put(&self, item: $t) -> Result<(), conveyor_core::PutError<$t>> {
                if !self.closed.before_put() {
                    return Err(conveyor_core::PutError::Closed(item));
                }
                self.core.push(item, true, None)
            }

            #[doc = concat!("Puts `item` if there is room now (Python's `put_nowait`); fails with `Full` otherwise.

```
use conveyor_thread::", stringify!($name), ";

let q = ", stringify!($name), "::bounded(1);
q.try_put(1).unwrap();
let err = q.try_put(2).unwrap_err();
assert!(err.is_full());
assert_eq!(err.into_inner(), 2);
```")]
            #[inline]
            pub fn try_put(&self, item: $t) -> Result<(), conveyor_core::PutError<$t>> {
                if !self.closed.before_put() {
                    return Err(conveyor_core::PutError::Closed(item));
                }
                self.core.push(item, false, None)
            }

            #[doc = concat!("Puts `item`, waiting at most `timeout` for room (Python's `put(item, timeout=t)`);
fails with `Timeout` after that. The timeout is measured on the monotonic clock.

```
use std::time::Duration;
use conveyor_thread::", stringify!($name), ";

let q = ", stringify!($name), "::bounded(1);
q.put_timeout(1, Duration::from_millis(10)).unwrap();
assert!(q.put_timeout(2, Duration::from_millis(10)).unwrap_err().is_timeout());
```")]
            #[inline]
            pub fn put_timeout(
                &self,
                item: $t,
                timeout: std::time::Duration,
            ) -> Result<(), conveyor_core::PutError<$t>> {
                if !self.closed.before_put() {
                    return Err(conveyor_core::PutError::Closed(item));
                }
                self.core.push(item, true, $crate::core::deadline(timeout))
            }

            #[doc = concat!("Takes the next item, blocking while the queue is empty (Python's `get()`).

Once the queue is shut down with `shutdown(false)`, the items left are still handed out; after
the last one every get, including one already blocked, returns `Closed` instead of blocking.
After `shutdown(true)` every get returns `Closed` at once.

```
use conveyor_thread::", stringify!($name), ";

let q = ", stringify!($name), "::unbounded();
", $example_items, "
q.shutdown(false);
assert_eq!(q.get().unwrap(), ", $first, ");
```")]
            #[inline]
            pub fn get(&self) -> Result<$t, conveyor_core::GetError> {
                self.core.pop(true, None)
            }

            #[doc = concat!("Takes the next item if there is one now (Python's `get_nowait`); fails with `Empty`.

```
use conveyor_thread::", stringify!($name), ";

let q = ", stringify!($name), "::<u32>::bounded(4);
assert!(q.try_get().unwrap_err().is_empty());
q.shutdown(false);
assert!(q.try_get().unwrap_err().is_closed());
```")]
            #[inline]
            pub fn try_get(&self) -> Result<$t, conveyor_core::GetError> {
                self.core.pop(false, None)
            }

            #[doc = concat!("Takes the next item, waiting at most `timeout` (Python's `get(timeout=t)`); fails
with `Timeout` after that. The timeout is measured on the monotonic clock.

```
use std::time::Duration;
use conveyor_thread::", stringify!($name), ";

let q = ", stringify!($name), "::<u32>::bounded(4);
assert!(q.get_timeout(Duration::from_millis(10)).unwrap_err().is_timeout());
```")]
            #[inline]
            pub fn get_timeout(
                &self,
                timeout: std::time::Duration,
            ) -> Result<$t, conveyor_core::GetError> {
                self.core.pop(true, $crate::core::deadline(timeout))
            }

            #[doc = concat!("Shuts the queue down for every handle (Python 3.13's `shutdown(immediate)`).

Every later put, through any handle, fails with `Closed` (the item comes back), and every blocked
put and get wakes. Without `immediate`, gets drain what is left and then return `Closed`. With
`immediate`, the items left are dropped and counted as done, so `join` returns once the items
already taken are marked done, and every get returns `Closed` at once. Shutting down again is a
no-op, except that `shutdown(true)` after `shutdown(false)` still drops what is left.

```
use conveyor_thread::", stringify!($name), ";

let q = ", stringify!($name), "::bounded(4);
q.put(7).unwrap();
q.put(8).unwrap();
let other = q.clone();
q.shutdown(false);
assert!(other.put(9).unwrap_err().is_closed());
assert!(other.get().is_ok());
q.shutdown(true); // drops the one left and counts it done
assert!(other.get().unwrap_err().is_closed());
q.task_done().unwrap(); // for the item taken above
q.join(); // returns: the dropped item counts as done
```")]
            pub fn shutdown(&self, immediate: bool) {
                self.core.shutdown(immediate)
            }

            #[doc = concat!("Whether the queue has been [shut down](Self::shutdown) (Python 3.13's `is_shutdown`).

```
use conveyor_thread::", stringify!($name), ";

let q = ", stringify!($name), "::<u8>::unbounded();
assert!(!q.is_shutdown());
q.shutdown(false);
assert!(q.is_shutdown());
```")]
            pub fn is_shutdown(&self) -> bool {
                self.core.is_shutdown()
            }

            #[doc = concat!("Closes this handle for puts (Python's `multiprocessing.Queue.close()`): later puts
through it fail with `Closed`. Other handles (clones included) and gets are not affected; use
[`shutdown`](Self::shutdown) to end the queue for everyone, or build it with
[`auto_shutdown`](Self::auto_shutdown) to have it end once every producer has closed. Dropping a
handle closes it. Closing twice is a no-op.

```
use conveyor_thread::", stringify!($name), ";

let q = ", stringify!($name), "::bounded(4);
let producer = q.clone();
producer.put(7).unwrap();
producer.close();
assert!(producer.put(8).unwrap_err().is_closed());
q.put(9).unwrap(); // another handle still puts
assert_eq!(q.len(), 2);
```")]
            pub fn close(&self) {
                self.closed.close()
            }

            #[doc = concat!("Whether puts through this handle fail with `Closed`: it was
[closed](Self::close) or the queue was [shut down](Self::shutdown).

```
use conveyor_thread::", stringify!($name), ";

let q = ", stringify!($name), "::<u8>::unbounded();
let other = q.clone();
assert!(!q.is_closed());
q.close();
assert!(q.is_closed());
assert!(!other.is_closed());
other.shutdown(false);
assert!(other.is_closed());
```")]
            pub fn is_closed(&self) -> bool {
                self.closed.is_set() || self.core.is_shutdown()
            }

            #[doc = concat!("Makes the queue shut itself down (as [`shutdown(false)`](Self::shutdown)) once every
handle that has put has [closed](Self::close) or been dropped, so that consumers drain what is
left and then get `Closed`. It holds for every handle of the queue, clones made before included;
call it before the first put (a handle that put before is not counted). Calling it again is a
no-op.

A handle counts as a producer from its first put: one that has not put yet when the others are
done finds the queue shut down, so start every producer's first put before another can finish,
or end the queue with [`shutdown`](Self::shutdown) instead.

```
use std::thread;
use conveyor_thread::", stringify!($name), ";

let q = ", stringify!($name), "::bounded(4).auto_shutdown();
// Every producer's first put before any of them can finish.
let starters: Vec<_> = (0..2)
    .map(|id| {
        let p = q.clone();
        p.put(id * 10).unwrap(); // a producer from its first put
        (id, p)
    })
    .collect();
let producers: Vec<_> = starters
    .into_iter()
    .map(|(id, p)| {
        thread::spawn(move || {
            for i in 1..5 {
                p.put(id * 10 + i).unwrap();
            }
            // dropped here: counts as closed
        })
    })
    .collect();
let mut got = Vec::new();
while let Ok(v) = q.get() {
    got.push(v);
}
assert_eq!(got.len(), 10);
for p in producers {
    p.join().unwrap();
}
```")]
            pub fn auto_shutdown(self) -> Self
            where
                $t: Send + 'static,
            {
                let core = std::sync::Arc::downgrade(&self.core);
                self.closed.auto_shutdown(Box::new(move || {
                    if let Some(core) = core.upgrade() {
                        core.shutdown(false);
                    }
                }));
                self
            }

            #[doc = concat!("The number of items in the queue (Python's `qsize()`). Other threads may change it
before the answer is used.

```
use conveyor_thread::", stringify!($name), ";

let q = ", stringify!($name), "::bounded(4);
q.put(1).unwrap();
q.put(2).unwrap();
assert_eq!(q.len(), 2);
```")]
            pub fn len(&self) -> usize {
                self.core.len()
            }

            #[doc = concat!("Whether the queue holds no item (Python's `empty()`).

```
use conveyor_thread::", stringify!($name), ";

let q = ", stringify!($name), "::bounded(4);
assert!(q.is_empty());
q.put(1).unwrap();
assert!(!q.is_empty());
```")]
            pub fn is_empty(&self) -> bool {
                self.core.len() == 0
            }

            #[doc = concat!("Whether a put would block now (Python's `full()`); never true when unbounded.

```
use conveyor_thread::", stringify!($name), ";

let q = ", stringify!($name), "::bounded(1);
assert!(!q.is_full());
q.put(1).unwrap();
assert!(q.is_full());
```")]
            pub fn is_full(&self) -> bool {
                match self.core.capacity() {
                    Some(cap) => self.core.len() >= cap,
                    None => false,
                }
            }

            #[doc = concat!("The most items the queue holds, `None` if unbounded (Python's `maxsize`).

```
use conveyor_thread::", stringify!($name), ";

assert_eq!(", stringify!($name), "::<u8>::bounded(8).capacity(), Some(8));
assert_eq!(", stringify!($name), "::<u8>::unbounded().capacity(), None);
assert_eq!(", stringify!($name), "::<u8>::bounded(0).capacity(), None);
```")]
            pub fn capacity(&self) -> Option<usize> {
                self.core.capacity()
            }

            #[doc = concat!("Marks one item taken from the queue as processed (Python's `task_done()`).

Every successful put adds an unfinished task; this removes one. Calling it more times than items
were put fails with [`TaskDoneError::TooManyCalls`](conveyor_core::TaskDoneError::TooManyCalls).

```
use conveyor_thread::", stringify!($name), ";

let q = ", stringify!($name), "::bounded(4);
q.put(1).unwrap();
q.get().unwrap();
q.task_done().unwrap();
assert!(q.task_done().is_err());
```")]
            pub fn task_done(&self) -> Result<(), conveyor_core::TaskDoneError> {
                self.core.task_done()
            }

            #[doc = concat!("Blocks until every item put has been marked done with
[`task_done`](Self::task_done) (Python's `join()`); returns at once if none is outstanding.

```
use std::thread;
use conveyor_thread::", stringify!($name), ";

let q = ", stringify!($name), "::bounded(4);
let worker = {
    let q = q.clone();
    thread::spawn(move || {
        while let Ok(_item) = q.get() {
            q.task_done().unwrap();
        }
    })
};
for i in 0..10 {
    q.put(i).unwrap();
}
q.join();
q.shutdown(false);
worker.join().unwrap();
```")]
            pub fn join(&self) {
                self.core.join(None);
            }

            #[doc = concat!("As [`join`](Self::join), waiting at most `timeout`; returns whether every task was done.

```
use std::time::Duration;
use conveyor_thread::", stringify!($name), ";

let q = ", stringify!($name), "::bounded(4);
q.put(1).unwrap();
assert!(!q.join_timeout(Duration::from_millis(10)));
q.task_done().unwrap();
assert!(q.join_timeout(Duration::from_millis(10)));
```")]
            pub fn join_timeout(&self, timeout: std::time::Duration) -> bool {
                self.core.join($crate::core::deadline(timeout))
            }

            #[doc = concat!("The number of threads asleep in a put (waiting for room), for diagnostics and tests.

A thread that has just started waiting spins briefly before it sleeps, and is counted only once
asleep.

```
use conveyor_thread::", stringify!($name), ";

let q = ", stringify!($name), "::<u8>::bounded(1);
assert_eq!(q.blocked_putters(), 0);
```")]
            pub fn blocked_putters(&self) -> usize {
                self.core.sleepers().0
            }

            #[doc = concat!("The number of threads asleep in a get (waiting for an item), for diagnostics and tests.

A thread that has just started waiting spins briefly before it sleeps, and is counted only once
asleep.

```
use conveyor_thread::", stringify!($name), ";

let q = ", stringify!($name), "::<u8>::bounded(1);
assert_eq!(q.blocked_getters(), 0);
```")]
            pub fn blocked_getters(&self) -> usize {
                self.core.sleepers().1
            }
        }

        impl<$t> Drop for $name<$t> {
            /// A handle that has put and goes without closing counts as closed (see
            /// `auto_shutdown`).
            fn drop(&mut self) {
                self.closed.close();
            }
        }

        impl<$t> Clone for $name<$t> {
            /// Another handle to the same queue; it starts open even if this one is closed.
            fn clone(&self) -> Self {
                $name {
                    core: self.core.clone(),
                    closed: self.closed.fresh(),
                }
            }
        }

        impl<$t $(: $bound)?> std::fmt::Debug for $name<$t> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("len", &self.len())
                    .field("capacity", &self.capacity())
                    .field("shutdown", &self.is_shutdown())
                    .field("closed", &self.is_closed())
                    .finish_non_exhaustive()
            }
        }

        impl<$t $(: $bound)?> conveyor_core::Channel<$t> for $name<$t> {
            #[inline]
            fn put(&self, item: $t) -> Result<(), conveyor_core::PutError<$t>> {
                $name::put(self, item)
            }
            #[inline]
            fn try_put(&self, item: $t) -> Result<(), conveyor_core::PutError<$t>> {
                $name::try_put(self, item)
            }
            #[inline]
            fn put_timeout(
                &self,
                item: $t,
                timeout: std::time::Duration,
            ) -> Result<(), conveyor_core::PutError<$t>> {
                $name::put_timeout(self, item, timeout)
            }
            #[inline]
            fn get(&self) -> Result<$t, conveyor_core::GetError> {
                $name::get(self)
            }
            #[inline]
            fn try_get(&self) -> Result<$t, conveyor_core::GetError> {
                $name::try_get(self)
            }
            #[inline]
            fn get_timeout(
                &self,
                timeout: std::time::Duration,
            ) -> Result<$t, conveyor_core::GetError> {
                $name::get_timeout(self, timeout)
            }
            /// Never fails: the queue is in this process.
            fn shutdown(&self, immediate: bool) -> Result<(), conveyor_core::Unavailable> {
                $name::shutdown(self, immediate);
                Ok(())
            }
            /// Never fails: the queue is in this process.
            fn close(&self) -> Result<(), conveyor_core::Unavailable> {
                $name::close(self);
                Ok(())
            }
        }

        impl<$t $(: $bound)?> conveyor_core::QueueInfo for $name<$t> {
            /// Never fails: the queue is in this process (the inherent `len` returns the
            /// plain value).
            fn len(&self) -> Result<usize, conveyor_core::Unavailable> {
                Ok($name::len(self))
            }
            fn is_empty(&self) -> Result<bool, conveyor_core::Unavailable> {
                Ok($name::is_empty(self))
            }
            fn is_full(&self) -> Result<bool, conveyor_core::Unavailable> {
                Ok($name::is_full(self))
            }
            fn capacity(&self) -> Result<Option<usize>, conveyor_core::Unavailable> {
                Ok($name::capacity(self))
            }
        }

        impl<$t $(: $bound)?> conveyor_core::Joinable for $name<$t> {
            fn task_done(&self) -> Result<(), conveyor_core::TaskDoneError> {
                $name::task_done(self)
            }
            /// Never fails: the queue is in this process (the inherent `join` returns `()`).
            fn join(&self) -> Result<(), conveyor_core::Unavailable> {
                $name::join(self);
                Ok(())
            }
            fn join_timeout(
                &self,
                timeout: std::time::Duration,
            ) -> Result<bool, conveyor_core::Unavailable> {
                Ok($name::join_timeout(self, timeout))
            }
        }
    };
}

pub(crate) use shared_api;
