//! [`LifoQueue`]: the last-in, first-out queue, Python's `queue.LifoQueue`.

use crate::core::{shared_api, HandleMark};
use crate::locked::{LifoStore, Locked};
use std::sync::Arc;

/// A last-in, first-out queue (a stack) between threads: Python's `queue.LifoQueue`.
///
/// Cloning gives another handle to the same queue; the items left are dropped with the last
/// handle. Any `T: Send` can travel. It is a mutex-protected `Vec` whose waiters are notified
/// only when they exist, and which spins briefly before sleeping.
///
/// ```
/// use conveyor_thread::LifoQueue;
///
/// let q = LifoQueue::unbounded();
/// for i in 0..3 {
///     q.put(i).unwrap();
/// }
/// assert_eq!(q.get().unwrap(), 2);
/// assert_eq!(q.get().unwrap(), 1);
/// assert_eq!(q.get().unwrap(), 0);
/// ```
pub struct LifoQueue<T> {
    core: Arc<Locked<LifoStore<T>>>,
    /// This handle's close mark (see `close`).
    closed: HandleMark,
}

impl<T> LifoQueue<T> {
    /// A stack holding at most `capacity` items; puts block while it is full.
    ///
    /// `bounded(0)` is unbounded, as Python's `LifoQueue(maxsize=0)` is.
    /// `bounded(usize::MAX)` is unbounded too (its [`capacity`](Self::capacity) is `None`).
    ///
    /// ```
    /// use conveyor_thread::LifoQueue;
    ///
    /// let q = LifoQueue::bounded(1);
    /// q.put('x').unwrap();
    /// assert!(q.try_put('y').unwrap_err().is_full());
    /// ```
    pub fn bounded(capacity: usize) -> Self {
        let cap = if capacity == 0 { usize::MAX } else { capacity };
        LifoQueue {
            core: Arc::new(Locked::new(LifoStore::new(), cap)),
            closed: HandleMark::default(),
        }
    }

    /// A stack without a size limit: puts never block.
    ///
    /// ```
    /// use conveyor_thread::LifoQueue;
    ///
    /// let q = LifoQueue::unbounded();
    /// q.put(1).unwrap();
    /// assert_eq!(q.capacity(), None);
    /// ```
    pub fn unbounded() -> Self {
        Self::bounded(0)
    }
}

shared_api!(LifoQueue<T>, "q.put(1).unwrap();\nq.put(2).unwrap();", "2");
