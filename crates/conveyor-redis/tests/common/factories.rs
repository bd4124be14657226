//! The conformance suite's factories for `RedisQueue` and `JoinableRedisQueue`, written once
//! for every place a queue can live: one server (`tests/conformance.rs`) and a cluster
//! (`tests/cluster.rs`). What differs between them is a [`QueueSpec`].

use std::marker::PhantomData;

use conveyor_core::testing::{Capacity, Factory, Item, Order, Profile, Remote, RemoteChild, Role};
use conveyor_core::{Joinable, QueueInfo};
use conveyor_redis::{Builder, JoinableRedisQueue, RedisQueue};

/// One case's queue, wherever it lives: how its handles are opened, how it is cut off, and
/// how a child process gets a handle of its own.
pub trait QueueSpec: Send + Sync + Sized + 'static {
    /// The names the suite prints for the two queue types here.
    const PLAIN: &'static str;
    const JOINABLE: &'static str;

    /// A new queue's spec (a fresh name; `auto`: it shuts itself down once its producers are
    /// done), before any handle is open.
    fn fresh(auto: bool) -> Self;

    /// A builder for another handle of the queue.
    fn builder(&self) -> Builder;

    /// Cuts the queue's handles off from it for good (see `Factory::cut_off`).
    fn cut_off(&mut self) -> Result<(), &'static str>;

    /// Starts a child process that plays `role` on a handle of the queue (a
    /// `JoinableRedisQueue` where `joinable`).
    fn start_child(&self, role: Role, joinable: bool) -> Result<Box<dyn RemoteChild>, String>;
}

/// A fresh queue: the first handle creates it with its bound and settings.
fn create<S: QueueSpec>(capacity: Capacity, auto: bool, joinable: bool) -> S {
    let spec = S::fresh(auto);
    let b = spec.builder();
    let b = match capacity {
        Capacity::Bounded(n) => b.maxsize(n),
        Capacity::Unbounded => b,
    };
    if joinable {
        b.open_joinable::<Item>().expect("open a Redis queue");
    } else {
        b.open::<Item>().expect("open a Redis queue");
    }
    spec
}

/// `RedisQueue`: every producer and consumer opens the queue by its address and name, as
/// another process or machine does, so each is a handle of its own.
pub struct Plain<S>(PhantomData<fn() -> S>);

impl<S> Plain<S> {
    pub fn new() -> Self {
        Plain(PhantomData)
    }
}

impl<S: QueueSpec> Factory for Plain<S> {
    type Queue = S;
    type Handle = RedisQueue<Item>;

    fn profile(&self) -> Profile {
        Profile::queue(S::PLAIN, Order::Fifo)
    }
    fn create(&self, capacity: Capacity) -> S {
        create(capacity, false, false)
    }
    fn create_auto_shutdown(&self, capacity: Capacity) -> Result<S, &'static str> {
        Ok(create(capacity, true, false))
    }
    fn producer(&self, q: &S) -> RedisQueue<Item> {
        q.builder().open().expect("open the queue by name")
    }
    fn consumer(&self, q: &S) -> RedisQueue<Item> {
        q.builder().open().expect("open the queue by name")
    }
    fn joinable(_: &RedisQueue<Item>) -> Result<&dyn Joinable, &'static str> {
        Err("RedisQueue acknowledges each item at delivery: JoinableRedisQueue has task_done/join")
    }
    fn info(h: &RedisQueue<Item>) -> Result<&dyn QueueInfo, &'static str> {
        Ok(h)
    }
    fn remote(&self) -> Result<&dyn Remote<S>, &'static str> {
        Ok(self)
    }
    fn cut_off(&self, q: &mut S) -> Result<(), &'static str> {
        q.cut_off()
    }
}

impl<S: QueueSpec> Remote<S> for Plain<S> {
    fn start(&self, q: &S, role: Role) -> Result<Box<dyn RemoteChild>, String> {
        q.start_child(role, false)
    }
}

/// `JoinableRedisQueue`, handles opened as for `RedisQueue`.
pub struct Joinable_<S>(PhantomData<fn() -> S>);

impl<S> Joinable_<S> {
    pub fn new() -> Self {
        Joinable_(PhantomData)
    }
}

impl<S: QueueSpec> Factory for Joinable_<S> {
    type Queue = S;
    type Handle = JoinableRedisQueue<Item>;

    fn profile(&self) -> Profile {
        Profile::queue(S::JOINABLE, Order::Fifo)
    }
    fn create(&self, capacity: Capacity) -> S {
        create(capacity, false, true)
    }
    fn create_auto_shutdown(&self, capacity: Capacity) -> Result<S, &'static str> {
        Ok(create(capacity, true, true))
    }
    fn producer(&self, q: &S) -> JoinableRedisQueue<Item> {
        q.builder().open_joinable().expect("open the queue by name")
    }
    fn consumer(&self, q: &S) -> JoinableRedisQueue<Item> {
        q.builder().open_joinable().expect("open the queue by name")
    }
    fn joinable(h: &JoinableRedisQueue<Item>) -> Result<&dyn Joinable, &'static str> {
        Ok(h)
    }
    fn info(h: &JoinableRedisQueue<Item>) -> Result<&dyn QueueInfo, &'static str> {
        Ok(h)
    }
    fn remote(&self) -> Result<&dyn Remote<S>, &'static str> {
        Ok(self)
    }
    fn cut_off(&self, q: &mut S) -> Result<(), &'static str> {
        q.cut_off()
    }
}

impl<S: QueueSpec> Remote<S> for Joinable_<S> {
    fn start(&self, q: &S, role: Role) -> Result<Box<dyn RemoteChild>, String> {
        q.start_child(role, true)
    }
}
