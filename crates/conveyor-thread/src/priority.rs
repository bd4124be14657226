//! [`PriorityQueue`]: smallest item first, Python's `queue.PriorityQueue`.

use crate::core::{shared_api, HandleMark};
use crate::heap::Heap;
use crate::locked::Locked;
use crate::prioritized::{Prioritized, Priority, PriorityPutError};
use std::sync::Arc;

/// A queue that hands out the smallest item first: Python's `queue.PriorityQueue`.
///
/// Among equal items it is first-in, first-out (Python's heap is not stable; this one is), so
/// `(priority, payload)` tuples need no tie-breaking counter. Items are ordered by their `Ord`;
/// wrap them in [`std::cmp::Reverse`] for largest first.
///
/// A panic in the item's `Ord` during a put drops that item and leaves the queue valid and
/// usable: no lock stays poisoned, no other item is lost or duplicated.
///
/// Cloning gives another handle to the same queue; the items left are dropped with the last
/// handle. It is a mutex-protected binary heap whose waiters are notified only when they exist,
/// and which spins briefly before sleeping.
///
/// ```
/// use conveyor_thread::PriorityQueue;
///
/// let q = PriorityQueue::unbounded();
/// q.put((2, "write docs")).unwrap();
/// q.put((1, "fix bug")).unwrap();
/// q.put((2, "review")).unwrap();
/// assert_eq!(q.get().unwrap(), (1, "fix bug"));
/// assert_eq!(q.get().unwrap(), (2, "review")); // "review" < "write docs"
/// assert_eq!(q.get().unwrap(), (2, "write docs"));
/// ```
///
/// Python's `(priority, item)` with float priorities, and items that need no order at all:
/// [`put_with_priority`](PriorityQueue::put_with_priority) on a queue of [`Prioritized`]
/// items (a NaN priority is refused, handing the item back).
///
/// ```
/// use conveyor_thread::PriorityQueue;
///
/// struct Job(&'static str); // no Ord needed
///
/// let q = PriorityQueue::unbounded();
/// q.put_with_priority(2.5, Job("write docs")).unwrap();
/// q.put_with_priority(0.1, Job("fix bug")).unwrap();
/// q.put_with_priority(2.5, Job("review")).unwrap();
/// let order: Vec<(f64, &str)> = (0..3)
///     .map(|_| {
///         let (p, job) = q.get().unwrap().into_parts();
///         (p, job.0)
///     })
///     .collect();
/// // equal priorities come out in the order they were put
/// assert_eq!(order, [(0.1, "fix bug"), (2.5, "write docs"), (2.5, "review")]);
/// assert!(q.put_with_priority(f64::NAN, Job("?")).unwrap_err().is_nan());
/// ```
pub struct PriorityQueue<T> {
    core: Arc<Locked<Heap<T>>>,
    /// This handle's close mark (see `close`).
    closed: HandleMark,
}

impl<T: Ord> PriorityQueue<T> {
    /// A priority queue holding at most `capacity` items; puts block while it is full.
    ///
    /// `bounded(0)` is unbounded, as Python's `PriorityQueue(maxsize=0)` is.
    /// `bounded(usize::MAX)` is unbounded too (its [`capacity`](Self::capacity) is `None`).
    ///
    /// ```
    /// use conveyor_thread::PriorityQueue;
    ///
    /// let q = PriorityQueue::bounded(2);
    /// q.put(5).unwrap();
    /// q.put(3).unwrap();
    /// assert!(q.is_full());
    /// assert_eq!(q.get().unwrap(), 3);
    /// ```
    pub fn bounded(capacity: usize) -> Self {
        let cap = if capacity == 0 { usize::MAX } else { capacity };
        PriorityQueue {
            core: Arc::new(Locked::new(Heap::new(), cap)),
            closed: HandleMark::default(),
        }
    }

    /// A priority queue without a size limit: puts never block.
    ///
    /// ```
    /// use std::cmp::Reverse;
    /// use conveyor_thread::PriorityQueue;
    ///
    /// let q = PriorityQueue::unbounded();
    /// q.put(Reverse(1)).unwrap();
    /// q.put(Reverse(9)).unwrap();
    /// assert_eq!(q.get().unwrap(), Reverse(9));
    /// ```
    pub fn unbounded() -> Self {
        Self::bounded(0)
    }
}

impl<P: Priority, T> PriorityQueue<Prioritized<P, T>> {
    /// Puts `item` with `priority`, blocking while the queue is full: Python's
    /// `q.put((priority, item))`. The smallest priority comes out first; equal priorities come
    /// out first-in, first-out; the item needs no order of its own.
    ///
    /// Fails, handing both back, on a NaN priority ([`PriorityPutError::Nan`]) or when the
    /// queue is closed ([`PriorityPutError::Put`]). For the non-blocking and timeout forms, make
    /// the entry with [`Prioritized::new`] and use [`try_put`](Self::try_put) or
    /// [`put_timeout`](Self::put_timeout).
    ///
    /// ```
    /// use conveyor_thread::PriorityQueue;
    ///
    /// let q = PriorityQueue::bounded(10);
    /// q.put_with_priority(3.0, "low").unwrap();
    /// q.put_with_priority(-1.0, "high").unwrap();
    /// assert_eq!(q.get().unwrap().into_inner(), "high");
    /// ```
    pub fn put_with_priority(&self, priority: P, item: T) -> Result<(), PriorityPutError<P, T>> {
        let entry = Prioritized::new(priority, item)?;
        self.put(entry).map_err(PriorityPutError::Put)
    }
}

shared_api!(PriorityQueue<T: Ord>, "q.put(2).unwrap();\nq.put(1).unwrap();", "1");
