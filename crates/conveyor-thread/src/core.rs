//! The internal interface every queue flavor implements, and the shared public API built on it.

use std::time::{Duration, Instant};

use conveyor_core::{GetError, PutError, TaskDoneError};

use crate::locked::{Locked, Store};

/// What a queue flavor provides; the public handles forward to it.
pub(crate) trait Core<T> {
    fn push(&self, item: T, block: bool, deadline: Option<Instant>) -> Result<(), PutError<T>>;
    fn pop(&self, block: bool, deadline: Option<Instant>) -> Result<T, GetError>;
    fn close(&self);
    fn is_closed(&self) -> bool;
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
    fn close(&self) {
        Locked::close(self)
    }
    fn is_closed(&self) -> bool {
        Locked::is_closed(self)
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

Fails with `Closed`, handing the item back, once the queue is closed; a put blocked on a full
queue wakes and fails that way when the queue is closed.

```
use conveyor_thread::", stringify!($name), ";

let q = ", stringify!($name), "::bounded(2);
q.put(1).unwrap();
q.close();
assert_eq!(q.put(2).unwrap_err().into_inner(), 2);
```")]
            #[inline]
            pub fn put(&self, item: $t) -> Result<(), conveyor_core::PutError<$t>> {
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
                self.core.push(item, true, $crate::core::deadline(timeout))
            }

            #[doc = concat!("Takes the next item, blocking while the queue is empty (Python's `get()`).

Once the queue is closed, the items left are still handed out; after the last one every get,
including one already blocked, returns `Closed` instead of blocking.

```
use conveyor_thread::", stringify!($name), ";

let q = ", stringify!($name), "::unbounded();
", $example_items, "
q.close();
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
q.close();
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

            #[doc = concat!("Closes the queue for puts (Python 3.13's `shutdown()`): every later put fails with
`Closed`, every blocked put and get wakes, and gets drain what is left and then return `Closed`.
Closing twice is a no-op. Waiting in `join` is not affected.

```
use conveyor_thread::", stringify!($name), ";

let q = ", stringify!($name), "::bounded(4);
q.put(7).unwrap();
q.close();
assert!(q.is_closed());
assert_eq!(q.get().unwrap(), 7);
assert!(q.get().unwrap_err().is_closed());
```")]
            pub fn close(&self) {
                self.core.close()
            }

            #[doc = concat!("Whether [`close`](Self::close) has been called.

```
use conveyor_thread::", stringify!($name), ";

let q = ", stringify!($name), "::<u8>::unbounded();
assert!(!q.is_closed());
q.close();
assert!(q.is_closed());
```")]
            pub fn is_closed(&self) -> bool {
                self.core.is_closed()
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
q.close();
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

        impl<$t> Clone for $name<$t> {
            /// Another handle to the same queue.
            fn clone(&self) -> Self {
                $name {
                    core: self.core.clone(),
                }
            }
        }

        impl<$t $(: $bound)?> std::fmt::Debug for $name<$t> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("len", &self.len())
                    .field("capacity", &self.capacity())
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
            fn shutdown(&self, _immediate: bool) {
                $name::close(self)
            }
            fn close(&self) {
                $name::close(self)
            }
        }

        impl<$t $(: $bound)?> conveyor_core::QueueInfo for $name<$t> {
            fn len(&self) -> usize {
                $name::len(self)
            }
            fn is_empty(&self) -> bool {
                $name::is_empty(self)
            }
            fn is_full(&self) -> bool {
                $name::is_full(self)
            }
            fn capacity(&self) -> Option<usize> {
                $name::capacity(self)
            }
        }

        impl<$t $(: $bound)?> conveyor_core::Joinable for $name<$t> {
            fn task_done(&self) -> Result<(), conveyor_core::TaskDoneError> {
                $name::task_done(self)
            }
            fn join(&self) {
                $name::join(self)
            }
            fn join_timeout(&self, timeout: std::time::Duration) -> bool {
                $name::join_timeout(self, timeout)
            }
        }
    };
}

pub(crate) use shared_api;
