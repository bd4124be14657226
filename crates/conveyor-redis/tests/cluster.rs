//! RedisQueue and JoinableRedisQueue on a real Redis Cluster (feature `cluster`): three local
//! primaries made a cluster by `redis-cli --cluster create` ([`LocalCluster`]), shared by the
//! tests of this binary while any of them runs. Without `redis-server` or `redis-cli` on
//! `PATH` each test prints loudly that it skipped and why, except in CI (`CI=true`), where it
//! fails.
//!
//! The `Channel` conformance suite runs here too, against cluster-backed queues, with producers
//! and consumers in child processes for the cases that ask for them.

#![cfg(feature = "cluster")]

mod common;
#[path = "common/factories.rs"]
mod factories;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{mpsc, Arc, Mutex, Weak};
use std::time::Duration;

use conveyor_core::testing::{run_consumer, run_producer, Item, RemoteChild, Role, GENEROUS};
use conveyor_process::testing::RemoteProcess;
use conveyor_process::{init_test, Process};
use conveyor_redis::{
    Builder, Channel, Joinable, JoinableRedisQueue, LocalCluster, QueueInfo, RedisQueue,
};

use factories::{Joinable_, Plain, QueueSpec};

const LONG: Duration = Duration::from_secs(20);

/// The cluster this test binary's tests share: started by the first test that needs it, kept
/// while any test holds it, stopped (every node killed) when the last lets go, started anew
/// by a later test. `None` after saying why when `redis-server` or `redis-cli` is missing
/// (outside CI; in CI that fails the test).
fn cluster(test: &str) -> Option<Arc<LocalCluster>> {
    static SHARED: Mutex<Weak<LocalCluster>> = Mutex::new(Weak::new());
    let mut shared = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(cluster) = shared.upgrade() {
        return Some(cluster);
    }
    match LocalCluster::start() {
        Ok(cluster) => {
            let cluster = Arc::new(cluster);
            *shared = Arc::downgrade(&cluster);
            Some(cluster)
        }
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                && std::env::var("CI").as_deref() != Ok("true") =>
        {
            eprintln!(
                "\n!!! SKIPPED {test}: it needs redis-server and redis-cli on PATH for a local \
                 Redis Cluster: {e}; install them (apt-get install -y redis-server) !!!\n"
            );
            None
        }
        Err(e) => panic!("{test}: cannot start a local Redis Cluster: {e}"),
    }
}

/// A connection to one node alone (no cluster routing), to look at what it holds.
fn node(url: &str) -> redis::Connection {
    redis::Client::open(url)
        .and_then(|c| c.get_connection_with_timeout(LONG))
        .expect("connect to a cluster node")
}

/// The slot of `key`, as the cluster computes it.
fn keyslot(conn: &mut redis::Connection, key: &str) -> u16 {
    redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query(conn)
        .expect("CLUSTER KEYSLOT")
}

/// Every primary of the cluster, by port: its node id and the slot ranges it serves.
type Primaries = BTreeMap<u16, (String, Vec<(u16, u16)>)>;

/// The primaries, from `CLUSTER NODES`.
fn slot_owners(conn: &mut redis::Connection) -> Primaries {
    let nodes: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query(conn)
        .expect("CLUSTER NODES");
    let mut owners = BTreeMap::new();
    for line in nodes.lines() {
        // <id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <link> <slot> <slot> ...
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(id), Some(addr), Some(flags)) = (fields.first(), fields.get(1), fields.get(2))
        else {
            continue;
        };
        if !flags.contains("master") {
            continue;
        }
        let port: u16 = addr
            .split('@')
            .next()
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .expect("a node address ip:port@bus");
        let ranges = fields
            .iter()
            .skip(8)
            .filter(|s| !s.starts_with('['))
            .map(|s| match s.split_once('-') {
                Some((a, b)) => (a.parse().unwrap(), b.parse().unwrap()),
                None => (s.parse().unwrap(), s.parse().unwrap()),
            })
            .collect();
        owners.insert(port, (id.to_string(), ranges));
    }
    owners
}

/// The port of the primary that serves `slot`.
fn owner_of(owners: &Primaries, slot: u16) -> u16 {
    *owners
        .iter()
        .find(|(_, (_, ranges))| ranges.iter().any(|&(a, b)| a <= slot && slot <= b))
        .expect("every slot is served")
        .0
}

/// Whether the node at `url` holds `key` itself (a node that does not serve the key's slot
/// answers `MOVED`).
fn holds(url: &str, key: &str) -> bool {
    match redis::cmd("EXISTS").arg(key).query::<i64>(&mut node(url)) {
        Ok(n) => n == 1,
        Err(e) if e.code() == Some("MOVED") => false,
        Err(e) => panic!("EXISTS {key} on {url}: {e}"),
    }
}

/// The builder the tests open their queues with: a short poll interval, and a reconnect
/// budget that a cluster that is up meets on any machine.
fn builder(cluster: &LocalCluster, name: &str) -> Builder {
    Builder::cluster(cluster.urls(), name)
        .poll_interval(Duration::from_millis(20))
        .reconnect_for(Duration::from_secs(5))
}

#[test]
fn put_get_task_done_join() {
    let Some(cluster) = cluster("put_get_task_done_join") else {
        return;
    };
    let name = common::name("cluster-join");
    let q: JoinableRedisQueue<String> = builder(&cluster, &name).open_joinable().unwrap();
    assert!(q.try_get().unwrap_err().is_empty());
    for i in 0..10 {
        q.put(format!("item {i}")).unwrap();
    }
    q.put_batch((10..20).map(|i| format!("item {i}")).collect())
        .unwrap();
    assert_eq!(q.len().unwrap(), 20);
    // another handle, as another process or machine opens it
    let other: JoinableRedisQueue<String> = builder(&cluster, &name).open_joinable().unwrap();
    for i in 0..20 {
        assert_eq!(other.get().unwrap(), format!("item {i}"));
    }
    assert!(q.is_empty().unwrap());
    assert!(
        !q.join_timeout(Duration::ZERO).unwrap(),
        "20 tasks not done"
    );
    for _ in 0..19 {
        other.task_done().unwrap();
    }
    assert!(
        !q.join_timeout(Duration::ZERO).unwrap(),
        "one task not done"
    );
    // a join waiting elsewhere returns once the last task is done
    let (tx, rx) = mpsc::channel();
    let joiner = q.clone();
    let t = std::thread::spawn(move || {
        tx.send(()).unwrap();
        joiner.join_timeout(LONG)
    });
    rx.recv_timeout(LONG).unwrap();
    other.task_done().unwrap();
    assert!(
        t.join().unwrap().unwrap(),
        "join returns once every task is done"
    );
    assert!(
        other.task_done().is_err(),
        "more task_done calls than items"
    );
    q.destroy().unwrap();
}

#[test]
fn queues_land_on_the_nodes_owning_their_slots() {
    let Some(cluster) = cluster("queues_land_on_the_nodes_owning_their_slots") else {
        return;
    };
    let urls = cluster.urls();
    let mut conn = node(&urls[0]);
    let owners = slot_owners(&mut conn);
    assert_eq!(owners.len(), 3, "three primaries: {owners:?}");
    // one queue name per node, picked by the slot of its stream key
    let base = common::name("cluster-spread");
    let mut picked: BTreeMap<u16, String> = BTreeMap::new();
    for i in 0..1000 {
        let name = format!("{base}-{i}");
        let slot = keyslot(&mut conn, &format!("conveyor:{{{name}}}:items"));
        picked.entry(owner_of(&owners, slot)).or_insert(name);
        if picked.len() == owners.len() {
            break;
        }
    }
    assert_eq!(picked.len(), 3, "names for every node");
    let mut nodes_used = BTreeSet::new();
    for (port, name) in &picked {
        let q: RedisQueue<u32> = builder(&cluster, name).open().unwrap();
        q.put(*port as u32).unwrap();
        q.put_batch(vec![1, 2]).unwrap();
        // every key of the queue is on the node owning the slot, and on no other
        let url = format!("redis://127.0.0.1:{port}/");
        let stream = q.stream_key().to_string();
        let meta = stream.replace(":items", ":meta");
        assert!(holds(&url, &stream), "{stream} on {url}");
        assert!(holds(&url, &meta), "{meta} on {url}");
        for other in urls.iter().filter(|u| **u != url) {
            assert!(!holds(other, &stream), "{stream} also on {other}");
        }
        assert_eq!(q.get().unwrap(), *port as u32);
        assert_eq!(q.get().unwrap(), 1);
        assert_eq!(q.get().unwrap(), 2);
        nodes_used.insert(*port);
        q.destroy().unwrap();
    }
    assert!(nodes_used.len() >= 2, "the queues used {nodes_used:?}");
}

#[test]
fn bounded_puts_wait_for_room() {
    let Some(cluster) = cluster("bounded_puts_wait_for_room") else {
        return;
    };
    let name = common::name("cluster-bounded");
    let q: RedisQueue<u32> = builder(&cluster, &name).maxsize(2).open().unwrap();
    assert_eq!(q.capacity().unwrap(), Some(2));
    q.put(1).unwrap();
    q.try_put(2).unwrap();
    assert!(q.is_full().unwrap());
    let e = q.try_put(3).unwrap_err();
    assert!(e.is_full(), "{e}");
    assert_eq!(e.into_inner(), 3);
    let e = q.put_timeout(3, Duration::from_millis(50)).unwrap_err();
    assert!(e.is_timeout(), "{e}");
    // a blocked put goes through once a get (of another handle) makes room
    let consumer: RedisQueue<u32> = builder(&cluster, &name).open().unwrap();
    let (tx, rx) = mpsc::channel();
    let producer = q.clone();
    let t = std::thread::spawn(move || {
        tx.send("blocking").unwrap();
        producer.put(3).unwrap();
        tx.send("put").unwrap();
    });
    assert_eq!(rx.recv_timeout(LONG).unwrap(), "blocking");
    assert_eq!(consumer.get().unwrap(), 1);
    assert_eq!(rx.recv_timeout(LONG).unwrap(), "put");
    t.join().unwrap();
    assert_eq!(consumer.get().unwrap(), 2);
    assert_eq!(consumer.get().unwrap(), 3);
    q.destroy().unwrap();
}

#[test]
fn shutdown_reaches_a_blocked_consumer() {
    let Some(cluster) = cluster("shutdown_reaches_a_blocked_consumer") else {
        return;
    };
    let name = common::name("cluster-shutdown");
    let q: RedisQueue<u32> = builder(&cluster, &name).open().unwrap();
    let consumer: RedisQueue<u32> = builder(&cluster, &name).open().unwrap();
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        let first = consumer.get_timeout(LONG);
        tx.send(()).unwrap();
        // blocks on the empty queue until the shutdown reaches it
        let second = consumer.get_timeout(LONG);
        (first, second)
    });
    q.put(7).unwrap();
    rx.recv_timeout(LONG).unwrap();
    q.shutdown(false).unwrap();
    let (first, second) = t.join().unwrap();
    assert_eq!(first.unwrap(), 7);
    assert!(second.unwrap_err().is_closed(), "a get after the shutdown");
    assert!(
        q.put(8).unwrap_err().is_closed(),
        "a put after the shutdown"
    );
    assert!(q.is_shutdown().unwrap());
    q.destroy().unwrap();
}

/// A slot that moves to another node while handles are open (as a resharding moves it): the
/// handles' next calls are told `MOVED`, follow the queue to its new node, and find every item.
#[test]
fn a_queue_follows_its_slot_to_another_node() {
    let Some(cluster) = cluster("a_queue_follows_its_slot_to_another_node") else {
        return;
    };
    let name = common::name("cluster-moved");
    let q: JoinableRedisQueue<u32> = builder(&cluster, &name).open_joinable().unwrap();
    for i in 0..3 {
        q.put(i).unwrap();
    }
    assert_eq!(q.get().unwrap(), 0);

    let urls = cluster.urls();
    let mut any = node(&urls[0]);
    let slot = keyslot(&mut any, q.stream_key());
    let owners = slot_owners(&mut any);
    let from = owner_of(&owners, slot);
    let to = *owners.keys().find(|&&p| p != from).unwrap();
    let (from_id, to_id) = (owners[&from].0.clone(), owners[&to].0.clone());
    let (from_url, to_url) = (
        format!("redis://127.0.0.1:{from}/"),
        format!("redis://127.0.0.1:{to}/"),
    );
    let (mut src, mut dst) = (node(&from_url), node(&to_url));
    let setslot = |conn: &mut redis::Connection, how: &str, id: &str| {
        redis::cmd("CLUSTER")
            .arg("SETSLOT")
            .arg(slot)
            .arg(how)
            .arg(id)
            .query::<()>(conn)
            .unwrap_or_else(|e| panic!("CLUSTER SETSLOT {slot} {how}: {e}"));
    };
    // the migration as redis-cli --cluster reshard does it, for one slot
    setslot(&mut dst, "IMPORTING", &from_id);
    setslot(&mut src, "MIGRATING", &to_id);
    let keys: Vec<String> = redis::cmd("CLUSTER")
        .arg("GETKEYSINSLOT")
        .arg(slot)
        .arg(100)
        .query(&mut src)
        .unwrap();
    assert!(keys.iter().any(|k| k == q.stream_key()), "{keys:?}");
    redis::cmd("MIGRATE")
        .arg("127.0.0.1")
        .arg(to)
        .arg("")
        .arg(0)
        .arg(LONG.as_millis() as u64)
        .arg("KEYS")
        .arg(&keys)
        .query::<()>(&mut src)
        .expect("MIGRATE");
    for url in &urls {
        setslot(&mut node(url), "NODE", &to_id);
    }
    assert!(holds(&to_url, q.stream_key()));
    assert!(!holds(&from_url, q.stream_key()));

    // the open handle's slot map is stale: MOVED takes it to the new node
    q.put(3).unwrap();
    let other: JoinableRedisQueue<u32> = builder(&cluster, &name).open_joinable().unwrap();
    assert_eq!(other.get().unwrap(), 1);
    assert_eq!(q.get().unwrap(), 2);
    assert_eq!(q.get().unwrap(), 3);
    for _ in 0..3 {
        q.task_done().unwrap();
    }
    other.task_done().unwrap();
    assert!(q.join_timeout(LONG).unwrap());
    q.destroy().unwrap();
}

/// A node that fails (SIGKILL; no replica takes over): the calls of a queue on it fail within
/// the reconnect budget, saying the server is unreachable, instead of hanging or answering as
/// if all were well; a queue on another node goes on.
#[test]
fn a_failed_node_is_reported_and_the_others_go_on() {
    // a cluster of this test's own: it kills one of the nodes
    let mut cluster = match LocalCluster::start() {
        Ok(c) => c,
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                && std::env::var("CI").as_deref() != Ok("true") =>
        {
            eprintln!("\n!!! SKIPPED a_failed_node_is_reported: no local Redis Cluster: {e} !!!\n");
            return;
        }
        Err(e) => panic!("cannot start a local Redis Cluster: {e}"),
    };
    let urls = cluster.urls();
    let mut conn = node(&urls[0]);
    let owners = slot_owners(&mut conn);
    let base = common::name("cluster-failed-node");
    // two queues on different nodes
    let (mut doomed, mut alive) = (None, None);
    for i in 0..1000 {
        let name = format!("{base}-{i}");
        let port = owner_of(
            &owners,
            keyslot(&mut conn, &format!("conveyor:{{{name}}}:items")),
        );
        match (&doomed, &alive) {
            (None, _) => doomed = Some((port, name)),
            (Some((p, _)), None) if *p != port => alive = Some(name),
            _ => {}
        }
        if alive.is_some() {
            break;
        }
    }
    let ((port, doomed), alive) = (doomed.unwrap(), alive.unwrap());
    let budget = Duration::from_millis(500);
    let open = |name: &str| -> JoinableRedisQueue<u32> {
        Builder::cluster(&urls, name)
            .reconnect_for(budget)
            .open_joinable()
            .unwrap()
    };
    let (q, other) = (open(&doomed), open(&alive));
    q.put(1).unwrap();
    other.put(1).unwrap();

    let index = cluster
        .nodes()
        .iter()
        .position(|n| n.port() == port)
        .unwrap();
    cluster.nodes_mut()[index].stop();

    // the other nodes serve their slots until the cluster marks the failed one as failed
    // (cluster-node-timeout, 15 s by default), and then refuse every key (CLUSTERDOWN)
    assert_eq!(other.get_timeout(LONG).unwrap(), 1);
    other.task_done().unwrap();
    assert!(other.join_timeout(LONG).unwrap());

    let start = std::time::Instant::now();
    let e = q.len().unwrap_err();
    assert!(e.is_unreachable(), "{e:?}");
    assert!(
        e.source_ref()
            .downcast_ref::<conveyor_redis::Error>()
            .is_some(),
        "the crate's error is the source: {e:?}"
    );
    let e = q.put(2).unwrap_err();
    assert!(e.is_io(), "{e:?}");
    assert_eq!(e.into_inner(), 2);
    let e = q.get_timeout(Duration::from_millis(10)).unwrap_err();
    assert!(e.is_io() && !e.is_timeout(), "{e:?}");
    assert!(
        start.elapsed() < LONG,
        "three calls took {:?} to fail",
        start.elapsed()
    );
}

// ---- the conformance suite on the cluster ----

/// One conformance case's queue: the shared cluster (held while the case runs), its name, and
/// how its handles are opened.
struct Spec {
    cluster: Arc<LocalCluster>,
    name: String,
    auto: bool,
}

impl QueueSpec for Spec {
    const PLAIN: &'static str = "RedisQueue (cluster)";
    const JOINABLE: &'static str = "JoinableRedisQueue (cluster)";

    fn fresh(auto: bool) -> Spec {
        Spec {
            cluster: cluster("conformance").expect("a local cluster (checked by the prologue)"),
            name: common::name("cluster-conformance"),
            auto,
        }
    }

    fn builder(&self) -> Builder {
        // A short reconnect budget, as on one server (the cut-off case's calls each wait it
        // out before they report the queue gone).
        reopen(&self.at()).reconnect_for(Duration::from_secs(1))
    }

    /// The cluster is shared by the cases: instead of stopping it, remove the queue's keys, as
    /// a node that restarts without persistence loses them.
    fn cut_off(&mut self) -> Result<(), &'static str> {
        reopen(&self.at())
            .open::<Item>()
            .and_then(|q| q.destroy())
            .expect("remove the queue's keys");
        Ok(())
    }

    fn start_child(&self, role: Role, joinable: bool) -> Result<Box<dyn RemoteChild>, String> {
        start_child(self, role, joinable)
    }
}

impl Spec {
    fn at(&self) -> Where {
        (self.cluster.urls(), self.name.clone(), self.auto)
    }
}

/// What a child needs to open its handle: the nodes' URLs, the queue's name, its settings.
type Where = (Vec<String>, String, bool);

/// The producer lease of the self-shutting queues (see tests/conformance.rs: no case lets a
/// producer die without closing, so the lease never has to run out).
const LEASE: Duration = GENEROUS;

fn reopen((urls, name, auto): &Where) -> Builder {
    let b = Builder::cluster(urls, name).poll_interval(Duration::from_millis(20));
    if *auto {
        b.shutdown_when_producers_done().producer_lease(LEASE)
    } else {
        b
    }
}

type Results = RedisQueue<Vec<u64>>;

// The child processes' entry points: the suite's roles on a handle opened by URLs and name.

fn produce((at, first, count): (Where, u64, u64)) -> Result<(), String> {
    let q = reopen(&at).open::<Item>().map_err(|e| e.to_string())?;
    run_producer(&q, first, count)
}

fn consume((at, results, task_done): (Where, String, bool)) -> Result<(), String> {
    let out: Results = Builder::cluster(&at.0, &results)
        .open()
        .map_err(|e| e.to_string())?;
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
    let at = spec.at();
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
            let name = common::name("cluster-conformance-results");
            let results: Results = Builder::cluster(&at.0, &name)
                .open()
                .map_err(|e| e.to_string())?;
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

/// Whether the cases cannot have a cluster: `redis-server` or `redis-cli` is not on `PATH`.
/// Then each case says so and returns, except in CI, where the case goes on and fails.
fn no_cluster() -> bool {
    let on_path = |program: &str| {
        std::env::var_os("PATH").is_some_and(|paths| {
            std::env::split_paths(&paths).any(|dir| dir.join(program).is_file())
        })
    };
    if (on_path("redis-server") && on_path("redis-cli"))
        || std::env::var("CI").as_deref() == Ok("true")
    {
        return false;
    }
    eprintln!(
        "\n!!! SKIPPED a cluster conformance case: it needs redis-server and redis-cli on PATH \
         for a local Redis Cluster; install them (apt-get install -y redis-server) !!!\n"
    );
    true
}

conveyor_core::conformance_tests!(cluster_redis_queue, Plain::<Spec>::new(); init_test!(produce, consume); if no_cluster() { return; });
conveyor_core::conformance_tests!(cluster_joinable_redis_queue, Joinable_::<Spec>::new(); init_test!(produce, consume); if no_cluster() { return; });
