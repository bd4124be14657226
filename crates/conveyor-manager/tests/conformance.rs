//! The `Channel` conformance suite (`conveyor_core::testing`) against the manager's queue
//! proxy (`Manager().Queue()` / `JoinableQueue()`). Every handle is a proxy on a connection of
//! its own (a blocking call holds its connection until the server answers); the cases that ask
//! for other processes pass a proxy to a real child process (conveyor-process), where it
//! connects on arrival.

use std::sync::atomic::{AtomicU64, Ordering};

use conveyor_core::testing::{
    run_consumer, run_producer, Capacity, Factory, Item, Order, Profile, Remote, RemoteChild, Role,
};
use conveyor_core::{Channel, Joinable, QueueInfo};
use conveyor_manager::proxy::QueueProxy;
use conveyor_manager::{Manager, ManagerGuard};
use conveyor_process::testing::RemoteProcess;
use conveyor_process::{init_test, Process};

/// A manager server (on threads of this process) holding the queue `"q"`.
struct Served {
    manager: Option<ManagerGuard>,
    capacity: Option<usize>,
}

impl Served {
    fn manager(&self) -> &ManagerGuard {
        self.manager
            .as_ref()
            .expect("the case asked for a handle after cutting the queue off")
    }

    fn proxy(&self) -> QueueProxy<Item> {
        let client = self.manager().connect().expect("connect to the manager");
        client
            .queue::<Item>("q", self.capacity)
            .expect("open the manager's queue")
    }
}

type Results = QueueProxy<Vec<u64>>;

fn produce((q, first, count): (QueueProxy<Item>, u64, u64)) -> Result<(), String> {
    run_producer(&q, first, count)
}

fn consume((q, results, task_done): (QueueProxy<Item>, Results, bool)) -> Result<(), String> {
    let got = run_consumer(&q, task_done.then_some(&q as &dyn Joinable))?;
    results.put(got).map_err(|e| format!("{e:?}"))
}

struct ManagerQueue;

impl Factory for ManagerQueue {
    type Queue = Served;
    type Handle = QueueProxy<Item>;

    fn profile(&self) -> Profile {
        Profile::queue("manager QueueProxy", Order::Fifo)
    }
    fn create(&self, capacity: Capacity) -> Served {
        let capacity = match capacity {
            Capacity::Bounded(n) => Some(n),
            Capacity::Unbounded => None,
        };
        let manager = Manager::start().expect("start a manager");
        let served = Served {
            manager: Some(manager),
            capacity,
        };
        drop(served.proxy()); // create the queue now, with its capacity
        served
    }
    fn create_auto_shutdown(&self, _capacity: Capacity) -> Result<Served, &'static str> {
        Err(
            "the manager's queue has no option to shut itself down when its producers are \
             done: producers end the stream with shutdown(false)",
        )
    }
    fn producer(&self, q: &Served) -> QueueProxy<Item> {
        q.proxy()
    }
    fn consumer(&self, q: &Served) -> QueueProxy<Item> {
        q.proxy()
    }
    fn joinable(h: &QueueProxy<Item>) -> Result<&dyn Joinable, &'static str> {
        Ok(h)
    }
    fn info(h: &QueueProxy<Item>) -> Result<&dyn QueueInfo, &'static str> {
        Ok(h)
    }
    fn remote(&self) -> Result<&dyn Remote<Served>, &'static str> {
        Ok(self)
    }
    /// Stops the server: its socket goes, every connection to it closes.
    fn cut_off(&self, q: &mut Served) -> Result<(), &'static str> {
        if let Some(m) = q.manager.take() {
            m.shutdown();
        }
        Ok(())
    }
}

impl Remote<Served> for ManagerQueue {
    fn start(&self, q: &Served, role: Role) -> Result<Box<dyn RemoteChild>, String> {
        match role {
            Role::Produce { first, count } => {
                RemoteProcess::producer(Process::new("produce", (q.proxy(), first, count)))
            }
            Role::Consume { task_done } => {
                static NEXT: AtomicU64 = AtomicU64::new(0);
                let name = format!("results-{}", NEXT.fetch_add(1, Ordering::Relaxed));
                let results: Results =
                    q.manager().queue(&name, None).map_err(|e| format!("{e}"))?;
                let child = Process::new("consume", (q.proxy(), &results, task_done));
                RemoteProcess::consumer(child, results)
            }
        }
    }
}

conveyor_core::conformance_tests!(queue_proxy, ManagerQueue; init_test!(produce, consume););
