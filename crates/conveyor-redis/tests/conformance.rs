//! The `Channel` conformance suite (`conveyor_core::testing`) against `RedisQueue` and
//! `JoinableRedisQueue`, on a real Redis server (`CONVEYOR_REDIS_URL`, or a redis-server of
//! this test binary's own), with producers and consumers in real child processes
//! (conveyor-process re-executes this test binary) for the cases that ask for other processes.
//! Without a server outside CI every case prints that it skipped and why.

mod common;
#[path = "common/factories.rs"]
mod factories;

use std::time::Duration;

use conveyor_core::testing::{run_consumer, run_producer, Item, RemoteChild, Role, GENEROUS};
use conveyor_core::{Channel, Joinable};
use conveyor_process::testing::RemoteProcess;
use conveyor_process::{init_test, Process};
use conveyor_redis::{Builder, RedisQueue, Target};

use factories::{Joinable_, Plain, QueueSpec};

/// Whether a server can be had: `CONVEYOR_REDIS_URL`, or `redis-server` on `PATH`. Without
/// one, outside CI, each case says so and returns (in CI it fails).
fn no_server() -> bool {
    let on_path = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| dir.join("redis-server").is_file())
    });
    if std::env::var_os(conveyor_redis::server::URL_VAR).is_some() || on_path {
        return false;
    }
    common::target("conformance").is_none()
}

/// One case's queue: the server it lives on (a redis-server of the case's own, stopped when
/// the case ends, or `CONVEYOR_REDIS_URL`'s), its name, and how its handles are opened.
struct Spec {
    server: Target,
    url: String,
    name: String,
    auto: bool,
}

impl QueueSpec for Spec {
    const PLAIN: &'static str = "RedisQueue";
    const JOINABLE: &'static str = "JoinableRedisQueue";

    fn fresh(auto: bool) -> Spec {
        let server = Target::from_env()
            .expect("a Redis server")
            .expect("a Redis server (checked by the prologue)");
        Spec {
            url: server.url(),
            server,
            name: common::name("conformance"),
            auto,
        }
    }

    /// Stops the case's own server (SIGKILL); on a server named by `CONVEYOR_REDIS_URL`, which
    /// this run does not own, removes the queue's keys instead, as a restart without
    /// persistence loses them.
    fn cut_off(&mut self) -> Result<(), &'static str> {
        match self.server.local() {
            Some(server) => server.stop(),
            None => RedisQueue::<Item>::open(&self.url, &self.name)
                .and_then(|q| q.destroy())
                .expect("remove the queue's keys"),
        }
        Ok(())
    }

    fn builder(&self) -> Builder {
        // A short reconnect budget: a server that is up answers within it on any machine, and
        // the cut-off case's calls each wait it out before they report the server gone.
        let b = Builder::new(&self.url, &self.name)
            .poll_interval(Duration::from_millis(20))
            .reconnect_for(Duration::from_secs(1));
        if self.auto {
            b.shutdown_when_producers_done().producer_lease(LEASE)
        } else {
            b
        }
    }

    fn start_child(&self, role: Role, joinable: bool) -> Result<Box<dyn RemoteChild>, String> {
        start_child(self, role, joinable)
    }
}

/// The producer lease of the self-shutting queues. No case here lets a producer die without
/// closing (each one closes, is dropped, or ends its process after closing), so the lease
/// never has to run out; a short one (it was 500 ms, renewed every 167 ms) ran out on a loaded
/// machine whenever the renewing thread waited a few hundred milliseconds for a CPU, and the
/// queue shut itself down under producers that were alive and about to put.
const LEASE: Duration = GENEROUS;

type Results = RedisQueue<Vec<u64>>;

fn results_queue(url: &str) -> Result<(String, Results), String> {
    let name = common::name("conformance-results");
    let q = RedisQueue::open(url, &name).map_err(|e| e.to_string())?;
    Ok((name, q))
}

/// What a child needs to open its handle: the URL, the queue's name, its settings.
type Where = (String, String, bool);

fn reopen((url, name, auto): &Where) -> Builder {
    let b = Builder::new(url, name).poll_interval(Duration::from_millis(20));
    if *auto {
        b.shutdown_when_producers_done().producer_lease(LEASE)
    } else {
        b
    }
}

// The child processes' entry points: the suite's roles on a handle opened by URL and name.

fn produce((at, first, count): (Where, u64, u64)) -> Result<(), String> {
    let q = reopen(&at).open::<Item>().map_err(|e| e.to_string())?;
    run_producer(&q, first, count)
}

fn consume((at, results, task_done): (Where, String, bool)) -> Result<(), String> {
    let out: Results = RedisQueue::open(&at.0, &results).map_err(|e| e.to_string())?;
    let got = if task_done {
        let q = reopen(&at)
            .open_joinable::<Item>()
            .map_err(|e| e.to_string())?;
        run_consumer(&q, Some(&q as &dyn Joinable))?
    } else {
        let q = reopen(&at).open::<Item>().map_err(|e| e.to_string())?;
        run_consumer(&q, None)?
    };
    out.put(got).map_err(|e| e.to_string())
}

fn start_child(spec: &Spec, role: Role, joinable: bool) -> Result<Box<dyn RemoteChild>, String> {
    let at: Where = (spec.url.clone(), spec.name.clone(), spec.auto);
    match role {
        Role::Produce { first, count } => {
            RemoteProcess::producer(Process::new("produce", (at, first, count)))
        }
        Role::Consume { task_done } => {
            if task_done && !joinable {
                return Err(
                    "RedisQueue acknowledges at delivery: JoinableRedisQueue has task_done".into(),
                );
            }
            let (name, results) = results_queue(&spec.url)?;
            // the results stream is removed once read: the server may outlive the test
            RemoteProcess::consumer_with(
                Process::new("consume", (at, name, task_done)),
                move || {
                    let got = results
                        .get_timeout(GENEROUS)
                        .map_err(|e| format!("the consumer sent no results: {e}"));
                    let _ = results.destroy();
                    got
                },
            )
        }
    }
}

conveyor_core::conformance_tests!(redis_queue, Plain::<Spec>::new(); init_test!(produce, consume); if no_server() { return; });
conveyor_core::conformance_tests!(joinable_redis_queue, Joinable_::<Spec>::new(); init_test!(produce, consume); if no_server() { return; });
