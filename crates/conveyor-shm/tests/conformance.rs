//! The `Channel` conformance suite (`conveyor_core::testing`) against `ShmQueue` and
//! `JoinableShmQueue`, with producers and consumers in real child processes
//! (conveyor-process re-executes this test binary) for the cases that ask for other processes.

use conveyor_core::testing::{
    run_consumer, run_producer, Capacity, Factory, Item, Order, Profile, Remote, RemoteChild, Role,
};
use conveyor_core::{Channel, Joinable, QueueInfo};
use conveyor_process::testing::RemoteProcess;
use conveyor_process::{init_test, Process};
use conveyor_shm::{JoinableShmQueue, ShmQueue, ShmQueueBuilder};

/// Ring size of the test queues: room for the thousand items of the unbounded case and more.
const RING_BYTES: usize = 256 * 1024;

type Results = ShmQueue<Vec<u64>>;

fn options(capacity: Capacity) -> ShmQueueBuilder<Item> {
    let b = ShmQueue::<Item>::builder().ring_bytes(RING_BYTES);
    match capacity {
        Capacity::Bounded(n) => b.max_items(n),
        Capacity::Unbounded => b,
    }
}

// The child processes' entry points: the suite's roles on a handle received from the parent.

fn produce((q, first, count): (ShmQueue<Item>, u64, u64)) -> Result<(), String> {
    run_producer(&q, first, count)
}

fn consume((q, results): (ShmQueue<Item>, Results)) -> Result<(), String> {
    let got = run_consumer(&q, None)?;
    results.put(got).map_err(|e| format!("{e:?}"))
}

fn produce_joinable((q, first, count): (JoinableShmQueue<Item>, u64, u64)) -> Result<(), String> {
    run_producer(&q, first, count)
}

fn consume_joinable(
    (q, results, task_done): (JoinableShmQueue<Item>, Results, bool),
) -> Result<(), String> {
    let got = run_consumer(&q, task_done.then_some(&q as &dyn Joinable))?;
    results.put(got).map_err(|e| format!("{e:?}"))
}

fn results() -> Result<Results, String> {
    ShmQueue::builder()
        .ring_bytes(RING_BYTES)
        .create()
        .map_err(|e| format!("{e}"))
}

/// `ShmQueue`: producers open the queue by name (as another process does), consumers clone
/// the creating handle; each is a handle of its own.
struct Shm;

impl Factory for Shm {
    type Queue = ShmQueue<Item>;
    type Handle = ShmQueue<Item>;

    fn profile(&self) -> Profile {
        Profile::queue("ShmQueue", Order::Fifo)
    }
    fn create(&self, capacity: Capacity) -> ShmQueue<Item> {
        options(capacity)
            .create()
            .expect("create a shared-memory queue")
    }
    fn create_auto_shutdown(&self, capacity: Capacity) -> Result<ShmQueue<Item>, &'static str> {
        Ok(options(capacity)
            .auto_shutdown()
            .create()
            .expect("create a shared-memory queue"))
    }
    fn producer(&self, q: &ShmQueue<Item>) -> ShmQueue<Item> {
        ShmQueue::open(q.name()).expect("open the queue by name")
    }
    fn consumer(&self, q: &ShmQueue<Item>) -> ShmQueue<Item> {
        q.clone()
    }
    fn joinable(_: &ShmQueue<Item>) -> Result<&dyn Joinable, &'static str> {
        Err("ShmQueue is multiprocessing.Queue, without task_done/join: JoinableShmQueue has them")
    }
    fn info(h: &ShmQueue<Item>) -> Result<&dyn QueueInfo, &'static str> {
        Ok(h)
    }
    fn remote(&self) -> Result<&dyn Remote<ShmQueue<Item>>, &'static str> {
        Ok(self)
    }
    fn cut_off(&self, _q: &mut ShmQueue<Item>) -> Result<(), &'static str> {
        Err("every handle maps the queue's shared segment: there is no server to lose")
    }
}

impl Remote<ShmQueue<Item>> for Shm {
    fn start(&self, q: &ShmQueue<Item>, role: Role) -> Result<Box<dyn RemoteChild>, String> {
        match role {
            Role::Produce { first, count } => {
                RemoteProcess::producer(Process::new("produce", (q, first, count)))
            }
            Role::Consume { task_done: false } => {
                let r = results()?;
                RemoteProcess::consumer(Process::new("consume", (q, &r)), r)
            }
            Role::Consume { task_done: true } => Err("ShmQueue keeps no task count".into()),
        }
    }
}

/// `JoinableShmQueue`, handles made as for `ShmQueue`.
struct JoinableShm;

impl Factory for JoinableShm {
    type Queue = JoinableShmQueue<Item>;
    type Handle = JoinableShmQueue<Item>;

    fn profile(&self) -> Profile {
        Profile::queue("JoinableShmQueue", Order::Fifo)
    }
    fn create(&self, capacity: Capacity) -> JoinableShmQueue<Item> {
        JoinableShmQueue::with_options(options(capacity)).expect("create a shared-memory queue")
    }
    fn create_auto_shutdown(
        &self,
        capacity: Capacity,
    ) -> Result<JoinableShmQueue<Item>, &'static str> {
        Ok(
            JoinableShmQueue::with_options(options(capacity).auto_shutdown())
                .expect("create a shared-memory queue"),
        )
    }
    fn producer(&self, q: &JoinableShmQueue<Item>) -> JoinableShmQueue<Item> {
        JoinableShmQueue::open(q.name()).expect("open the queue by name")
    }
    fn consumer(&self, q: &JoinableShmQueue<Item>) -> JoinableShmQueue<Item> {
        q.clone()
    }
    fn joinable(h: &JoinableShmQueue<Item>) -> Result<&dyn Joinable, &'static str> {
        Ok(h)
    }
    fn info(h: &JoinableShmQueue<Item>) -> Result<&dyn QueueInfo, &'static str> {
        Ok(h)
    }
    fn remote(&self) -> Result<&dyn Remote<JoinableShmQueue<Item>>, &'static str> {
        Ok(self)
    }
    fn cut_off(&self, _q: &mut JoinableShmQueue<Item>) -> Result<(), &'static str> {
        Err("every handle maps the queue's shared segment: there is no server to lose")
    }
}

impl Remote<JoinableShmQueue<Item>> for JoinableShm {
    fn start(
        &self,
        q: &JoinableShmQueue<Item>,
        role: Role,
    ) -> Result<Box<dyn RemoteChild>, String> {
        match role {
            Role::Produce { first, count } => {
                RemoteProcess::producer(Process::new("produce_joinable", (q, first, count)))
            }
            Role::Consume { task_done } => {
                let r = results()?;
                RemoteProcess::consumer(Process::new("consume_joinable", (q, &r, task_done)), r)
            }
        }
    }
}

conveyor_core::conformance_tests!(shm_queue, Shm; init_test!(produce, consume););
conveyor_core::conformance_tests!(
    joinable_shm_queue,
    JoinableShm;
    init_test!(produce_joinable, consume_joinable);
);
