//! The `Channel` conformance suite (`conveyor_core::testing`) against `Queue`, `LifoQueue` and
//! `PriorityQueue`.

use conveyor_core::testing::{Capacity, Factory, Item, Order, Profile, Remote};
use conveyor_core::{Channel, Joinable, QueueInfo};
use conveyor_thread::{LifoQueue, PriorityQueue, Queue};

/// What the factory needs of a thread queue type.
trait ThreadQueue: Channel<Item> + Joinable + QueueInfo + Clone + Send + Sync + 'static {
    const NAME: &'static str;
    const ORDER: Order;
    fn bounded(n: usize) -> Self;
    fn unbounded() -> Self;
    /// The queue's `auto_shutdown` (an inherent method of each kind).
    fn auto_shutdown(self) -> Self;
}

impl ThreadQueue for Queue<Item> {
    const NAME: &'static str = "Queue";
    const ORDER: Order = Order::Fifo;
    fn bounded(n: usize) -> Self {
        Queue::bounded(n)
    }
    fn unbounded() -> Self {
        Queue::unbounded()
    }
    fn auto_shutdown(self) -> Self {
        Queue::auto_shutdown(self)
    }
}

impl ThreadQueue for LifoQueue<Item> {
    const NAME: &'static str = "LifoQueue";
    const ORDER: Order = Order::Lifo;
    fn bounded(n: usize) -> Self {
        LifoQueue::bounded(n)
    }
    fn unbounded() -> Self {
        LifoQueue::unbounded()
    }
    fn auto_shutdown(self) -> Self {
        LifoQueue::auto_shutdown(self)
    }
}

impl ThreadQueue for PriorityQueue<Item> {
    const NAME: &'static str = "PriorityQueue";
    const ORDER: Order = Order::Priority;
    fn bounded(n: usize) -> Self {
        PriorityQueue::bounded(n)
    }
    fn unbounded() -> Self {
        PriorityQueue::unbounded()
    }
    fn auto_shutdown(self) -> Self {
        PriorityQueue::auto_shutdown(self)
    }
}

/// Builds thread queues of type `Q`; every producer and consumer is a clone (a handle of its
/// own).
struct Threads<Q>(std::marker::PhantomData<fn() -> Q>);

impl<Q> Threads<Q> {
    fn new() -> Self {
        Threads(std::marker::PhantomData)
    }
}

impl<Q: ThreadQueue> Factory for Threads<Q> {
    type Queue = Q;
    type Handle = Q;

    fn profile(&self) -> Profile {
        Profile::queue(Q::NAME, Q::ORDER)
    }
    fn create(&self, capacity: Capacity) -> Q {
        match capacity {
            Capacity::Bounded(n) => Q::bounded(n),
            Capacity::Unbounded => Q::unbounded(),
        }
    }
    fn create_auto_shutdown(&self, capacity: Capacity) -> Result<Q, &'static str> {
        Ok(self.create(capacity).auto_shutdown())
    }
    fn producer(&self, q: &Q) -> Q {
        q.clone()
    }
    fn consumer(&self, q: &Q) -> Q {
        q.clone()
    }
    fn joinable(h: &Q) -> Result<&dyn Joinable, &'static str> {
        Ok(h)
    }
    fn info(h: &Q) -> Result<&dyn QueueInfo, &'static str> {
        Ok(h)
    }
    fn remote(&self) -> Result<&dyn Remote<Q>, &'static str> {
        Err("a thread queue lives in one process's memory")
    }
    fn cut_off(&self, _q: &mut Q) -> Result<(), &'static str> {
        Err("a thread queue lives in this process's memory: there is no server to lose")
    }
}

conveyor_core::conformance_tests!(queue, Threads::<Queue<Item>>::new());
conveyor_core::conformance_tests!(lifo_queue, Threads::<LifoQueue<Item>>::new());
conveyor_core::conformance_tests!(priority_queue, Threads::<PriorityQueue<Item>>::new());
