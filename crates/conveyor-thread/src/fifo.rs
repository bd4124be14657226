//! [`Queue`]: the FIFO queue, Python's `queue.Queue`.

use std::mem::size_of;
use std::time::Instant;

use conveyor_core::{GetError, PutError, TaskDoneError};

use crate::core::{shared_api, Core, HandleMark};
use crate::locked::{FifoStore, Locked};
use crate::ring::Ring;
use std::sync::Arc;

/// The largest ring preallocated, in bytes of slots; larger bounded queues use the lock-based
/// deque, which grows as items arrive.
const RING_MAX_BYTES: usize = 16 << 20;

/// The two implementations behind [`Queue`].
// The enum lives once per queue, inside an `Arc`: boxing the ring would only add an indirection
// to every operation.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Fifo<T> {
    /// Bounded, preallocated, lock-free.
    Ring(Ring<T>),
    /// Unbounded, or bounded with a capacity too large to preallocate.
    Locked(Locked<FifoStore<T>>),
}

/// The number of bytes a ring of `cap` items of type `T` would preallocate, if it is one that
/// should be built.
fn ring_fits<T>(cap: usize) -> bool {
    // A ring slot is the value plus a one-word stamp, rounded to the value's alignment.
    let slot = size_of::<T>().max(1) + size_of::<usize>();
    cap <= RING_MAX_BYTES / slot
}

impl<T> Core<T> for Fifo<T> {
    #[inline]
    fn push(&self, item: T, block: bool, deadline: Option<Instant>) -> Result<(), PutError<T>> {
        match self {
            Fifo::Ring(r) => r.push(item, block, deadline),
            Fifo::Locked(l) => l.push(item, block, deadline),
        }
    }
    #[inline]
    fn pop(&self, block: bool, deadline: Option<Instant>) -> Result<T, GetError> {
        match self {
            Fifo::Ring(r) => r.pop(block, deadline),
            Fifo::Locked(l) => l.pop(block, deadline),
        }
    }
    fn shutdown(&self, immediate: bool) {
        match self {
            Fifo::Ring(r) => r.shutdown(immediate),
            Fifo::Locked(l) => l.shutdown(immediate),
        }
    }
    fn is_shutdown(&self) -> bool {
        match self {
            Fifo::Ring(r) => r.is_shutdown(),
            Fifo::Locked(l) => l.is_shutdown(),
        }
    }
    fn len(&self) -> usize {
        match self {
            Fifo::Ring(r) => r.len(),
            Fifo::Locked(l) => l.len(),
        }
    }
    fn capacity(&self) -> Option<usize> {
        match self {
            Fifo::Ring(r) => Some(r.capacity()),
            Fifo::Locked(l) => l.capacity(),
        }
    }
    fn task_done(&self) -> Result<(), TaskDoneError> {
        match self {
            Fifo::Ring(r) => r.task_done(),
            Fifo::Locked(l) => l.task_done(),
        }
    }
    fn join(&self, deadline: Option<Instant>) -> bool {
        match self {
            Fifo::Ring(r) => r.join(deadline),
            Fifo::Locked(l) => l.join(deadline),
        }
    }
    fn sleepers(&self) -> (usize, usize, usize) {
        match self {
            Fifo::Ring(r) => r.sleepers(),
            Fifo::Locked(l) => l.sleepers(),
        }
    }
}

/// A first-in, first-out queue between threads: Python's `queue.Queue`.
///
/// Cloning gives another handle to the same queue; the queue and the items left inside it are
/// dropped with the last handle. Any `T: Send` can travel (it need not be `Clone` or `Sync`), and
/// the handles are then `Send + Sync`.
///
/// A bounded queue is a preallocated lock-free ring (see the crate docs for the algorithm),
/// except when its slots would take more than 16 MiB, when it is a mutex-protected deque that
/// grows as items arrive; an unbounded queue is that deque.
///
/// ```
/// use std::thread;
/// use conveyor_thread::Queue;
///
/// let q = Queue::bounded(16);
/// let producer = {
///     let q = q.clone();
///     thread::spawn(move || {
///         for i in 0..100 {
///             q.put(i).unwrap();
///         }
///         q.shutdown(false); // the consumer drains, then gets `Closed`
///     })
/// };
/// let received: Vec<i32> = std::iter::from_fn(|| q.get().ok()).collect();
/// assert_eq!(received, (0..100).collect::<Vec<_>>());
/// producer.join().unwrap();
/// ```
pub struct Queue<T> {
    core: Arc<Fifo<T>>,
    /// This handle's close mark (see `close`).
    closed: HandleMark,
}

impl<T> Queue<T> {
    /// A queue holding at most `capacity` items; puts block while it is full.
    ///
    /// `bounded(0)` is an unbounded queue, as Python's `Queue(maxsize=0)` is (there is no
    /// rendezvous queue here: use crossbeam-channel's `bounded(0)` for that).
    /// `bounded(usize::MAX)` is unbounded too (its [`capacity`](Self::capacity) is `None`).
    ///
    /// ```
    /// use conveyor_thread::Queue;
    ///
    /// let q = Queue::bounded(2);
    /// q.put("a").unwrap();
    /// q.put("b").unwrap();
    /// assert!(q.try_put("c").unwrap_err().is_full());
    /// ```
    pub fn bounded(capacity: usize) -> Self {
        let fifo = if capacity == 0 {
            Fifo::Locked(Locked::new(FifoStore::new(), usize::MAX))
        } else if ring_fits::<T>(capacity) {
            Fifo::Ring(Ring::new(capacity))
        } else {
            Fifo::Locked(Locked::new(FifoStore::new(), capacity))
        };
        Queue {
            core: Arc::new(fifo),
            closed: HandleMark::default(),
        }
    }

    /// A queue without a size limit: puts never block.
    ///
    /// ```
    /// use conveyor_thread::Queue;
    ///
    /// let q = Queue::unbounded();
    /// for i in 0..10_000 {
    ///     q.try_put(i).unwrap();
    /// }
    /// assert_eq!(q.len(), 10_000);
    /// assert_eq!(q.get().unwrap(), 0);
    /// ```
    pub fn unbounded() -> Self {
        Queue {
            core: Arc::new(Fifo::Locked(Locked::new(FifoStore::new(), usize::MAX))),
            closed: HandleMark::default(),
        }
    }
}

shared_api!(Queue<T>, "q.put(1).unwrap();\nq.put(2).unwrap();", "1");
