//! [`LocalServer`]: a throwaway `redis-server` for tests, examples and benchmarks, and
//! [`Target`], which picks the server they use; with the `cluster` feature, `LocalCluster`:
//! three of them made a Redis Cluster.
//!
//! A `LocalServer` runs the `redis-server` found on `PATH`, on a free port of 127.0.0.1, with
//! its files in a temporary directory, and stops it when dropped. `CONVEYOR_REDIS_URL` points
//! tests and examples at an existing server instead.

use std::io::{self, BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The environment variable naming an existing server to use instead of starting one.
pub const URL_VAR: &str = "CONVEYOR_REDIS_URL";

/// How long a starting server may take to say it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A `redis-server` child process on a free local port (see the [module](self) docs).
///
/// ```no_run
/// use conveyor_redis::LocalServer;
///
/// let server = LocalServer::start()?;
/// println!("redis at {}", server.url());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct LocalServer {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
    password: Option<String>,
    persistent: bool,
    /// A node of a cluster (`--cluster-enabled yes`), whose cluster bus is `port + 10000`.
    cluster: bool,
}

/// Settings for a [`LocalServer`].
#[derive(Debug, Clone, Default)]
pub struct LocalServerOptions {
    /// A password for the `default` user (the URL then carries it).
    pub password: Option<String>,
    /// Keep data across [`LocalServer::restart`] (append-only file, fsync always).
    pub persistent: bool,
}

impl LocalServer {
    /// Starts a server with no password and no persistence.
    pub fn start() -> io::Result<Self> {
        Self::start_with(LocalServerOptions::default())
    }

    /// Starts a server with `options`.
    pub fn start_with(options: LocalServerOptions) -> io::Result<Self> {
        Self::start_node(options, false)
    }

    /// Starts a server, a cluster node (with no slots yet) if `cluster`.
    fn start_node(options: LocalServerOptions, cluster: bool) -> io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("conveyor-redis-")
            .tempdir()?;
        let mut server = LocalServer {
            child: None,
            dir,
            port: 0,
            password: options.password,
            persistent: options.persistent,
            cluster,
        };
        let mut last = None;
        // A free port found by binding port 0 may be taken by someone else before the server
        // binds it: try a few.
        for _ in 0..5 {
            server.port = free_port(cluster)?;
            match server.spawn() {
                Ok(()) => return Ok(server),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("redis-server did not start")))
    }

    fn spawn(&mut self) -> io::Result<()> {
        let mut cmd = Command::new("redis-server");
        cmd.arg("--port")
            .arg(self.port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--save")
            .arg("")
            .arg("--daemonize")
            .arg("no")
            .arg("--logfile")
            .arg("");
        if self.persistent {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        if let Some(pw) = &self.password {
            cmd.arg("--requirepass").arg(pw);
        }
        if self.cluster {
            cmd.args(["--cluster-enabled", "yes", "--cluster-config-file"])
                .arg(self.dir.path().join(format!("nodes-{}.conf", self.port)));
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot run redis-server (is it installed and on PATH?): {e}"),
                )
            })?;
        let stdout = child.stdout.take().expect("stdout was piped");
        let (tx, rx) = std::sync::mpsc::channel();
        // The server's log goes to its stdout: read it until it says it is ready, then keep
        // draining it so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            let mut log = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(t) = &tx {
                    if line.contains("Ready to accept connections") {
                        let _ = t.send(Ok(()));
                        tx = None;
                    } else {
                        log.push(line);
                    }
                }
            }
            if let Some(t) = tx {
                let _ = t.send(Err(log.join("\n")));
            }
        });
        match rx.recv_timeout(READY_TIMEOUT) {
            Ok(Ok(())) => {
                self.child = Some(child);
                Ok(())
            }
            Ok(Err(log)) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(io::Error::other(format!(
                    "redis-server on port {} exited before it was ready:\n{log}",
                    self.port
                )))
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("redis-server was not ready within {READY_TIMEOUT:?}"),
                ))
            }
        }
    }

    /// The URL to reach it (`redis://127.0.0.1:PORT/`, with the password if it has one).
    pub fn url(&self) -> String {
        match &self.password {
            Some(pw) => format!("redis://:{pw}@127.0.0.1:{}/", self.port),
            None => format!("redis://127.0.0.1:{}/", self.port),
        }
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server (SIGKILL: a crash, not a clean shutdown) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server and starts it again on the same port and directory; without
    /// persistence it comes back empty.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop();
        self.spawn()
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A free port of 127.0.0.1; for a cluster node, one whose cluster bus port (10000 above it)
/// is free too, which makes it at most 55535.
fn free_port(cluster: bool) -> io::Result<u16> {
    for _ in 0..100 {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        if !cluster {
            return Ok(port);
        }
        if let Some(bus) = port.checked_add(10000) {
            if TcpListener::bind(("127.0.0.1", bus)).is_ok() {
                return Ok(port);
            }
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrNotAvailable,
        "no free port whose cluster bus port (10000 above it) is free too",
    ))
}

/// How long a new cluster may take until every node reports `cluster_state:ok`.
#[cfg(feature = "cluster")]
const CLUSTER_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A Redis Cluster of three primaries (no replicas) on free local ports (feature `cluster`):
/// three [`LocalServer`]s started with `--cluster-enabled yes`, joined and given a third of
/// the slots each by `redis-cli --cluster create`, and stopped when dropped. For tests,
/// examples and benchmarks; it needs `redis-server` and `redis-cli` on `PATH` (an error of
/// kind `NotFound` says which is missing).
///
/// ```
/// use conveyor_redis::{Builder, Channel, LocalCluster, RedisQueue};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let cluster = match LocalCluster::start() {
///     Ok(cluster) => cluster,
///     Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
///         eprintln!("SKIPPED: no local Redis Cluster: {e}");
///         return Ok(());
///     }
///     Err(e) => return Err(e.into()),
/// };
/// let q: RedisQueue<u32> = Builder::cluster(cluster.urls(), "doc-cluster-jobs").open()?;
/// q.put(7)?;
/// assert_eq!(q.get()?, 7);
/// # Ok(()) }
/// ```
#[cfg(feature = "cluster")]
#[derive(Debug)]
pub struct LocalCluster {
    nodes: Vec<LocalServer>,
}

#[cfg(feature = "cluster")]
impl LocalCluster {
    /// Starts the three nodes, makes them a cluster, and waits until every node says the
    /// cluster is ready (`cluster_state:ok`, every slot served, every node known).
    pub fn start() -> io::Result<Self> {
        const NODES: usize = 3;
        let mut nodes = Vec::with_capacity(NODES);
        for _ in 0..NODES {
            // a node that fails stops the ones already started (dropped)
            nodes.push(LocalServer::start_node(
                LocalServerOptions::default(),
                true,
            )?);
        }
        let cluster = LocalCluster { nodes };
        cluster.create()?;
        cluster.wait_until_ready()?;
        tracing::debug!(nodes = ?cluster.urls(), "local Redis Cluster ready");
        Ok(cluster)
    }

    /// `redis-cli --cluster create` over the nodes: the slots split in three, no replicas.
    fn create(&self) -> io::Result<()> {
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)))
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot run redis-cli (is it installed and on PATH?): {e}"),
                )
            })?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "redis-cli --cluster create failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(())
    }

    /// Polls `CLUSTER INFO` on every node until each reports the cluster ready, for at most
    /// [`CLUSTER_READY_TIMEOUT`] in all.
    fn wait_until_ready(&self) -> io::Result<()> {
        let deadline = std::time::Instant::now() + CLUSTER_READY_TIMEOUT;
        let redis_err = |e: redis::RedisError| io::Error::other(format!("CLUSTER INFO: {e}"));
        for node in &self.nodes {
            let client = redis::Client::open(node.url()).map_err(redis_err)?;
            let mut conn = client
                .get_connection_with_timeout(READY_TIMEOUT)
                .map_err(redis_err)?;
            conn.set_read_timeout(Some(READY_TIMEOUT))
                .map_err(redis_err)?;
            loop {
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query(&mut conn)
                    .map_err(redis_err)?;
                if cluster_ready(&info, self.nodes.len()) {
                    break;
                }
                if std::time::Instant::now() >= deadline {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "the cluster was not ready within {CLUSTER_READY_TIMEOUT:?}; node {} \
                             says:\n{info}",
                            node.port
                        ),
                    ));
                }
                // the gossip between the nodes settles in a few of their 100 ms cron runs
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }

    /// The nodes' URLs (`redis://127.0.0.1:PORT/`), for [`Builder::cluster`](crate::Builder::cluster).
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(LocalServer::url).collect()
    }

    /// The nodes (each one's port, URL and process id), to reach one node alone.
    pub fn nodes(&self) -> &[LocalServer] {
        &self.nodes
    }

    /// The nodes, to stop one (a node that failed) or restart it.
    pub fn nodes_mut(&mut self) -> &mut [LocalServer] {
        &mut self.nodes
    }
}

/// Whether a node's `CLUSTER INFO` says the cluster is ready: state ok, every one of the
/// 16384 slots served, and `nodes` nodes known.
#[cfg(feature = "cluster")]
fn cluster_ready(info: &str, nodes: usize) -> bool {
    let field = |name: &str| {
        info.lines()
            .find_map(|line| line.trim().strip_prefix(name)?.strip_prefix(':'))
    };
    field("cluster_state") == Some("ok")
        && field("cluster_slots_ok") == Some("16384")
        && field("cluster_known_nodes").and_then(|n| n.parse().ok()) == Some(nodes)
}

/// The server a test, an example or a benchmark runs against.
#[derive(Debug)]
pub enum Target {
    /// The server `CONVEYOR_REDIS_URL` names.
    External(String),
    /// A server started for this run.
    Local(LocalServer),
}

impl Target {
    /// `CONVEYOR_REDIS_URL` if it is set, else a [`LocalServer`] if `redis-server` is on
    /// `PATH`. `Ok(None)` says why neither is there (the caller prints it and skips), except
    /// in CI (`CI=true`), where a missing server is an error: there the tests must run.
    pub fn from_env() -> Result<Option<Target>, String> {
        if let Ok(url) = std::env::var(URL_VAR) {
            if !url.is_empty() {
                return Ok(Some(Target::External(url)));
            }
        }
        match LocalServer::start() {
            Ok(server) => Ok(Some(Target::Local(server))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let why = format!(
                    "no Redis server: {URL_VAR} is not set and redis-server is not on PATH ({e}); \
                     install it (apt-get install -y redis-server) or set {URL_VAR}"
                );
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    Err(format!("{why} (CI=true: the Redis tests must run in CI)"))
                } else {
                    Ok(None)
                }
            }
            Err(e) => Err(format!("could not start redis-server: {e}")),
        }
    }

    /// The URL to reach it.
    pub fn url(&self) -> String {
        match self {
            Target::External(url) => url.clone(),
            Target::Local(server) => server.url(),
        }
    }

    /// The local server, if this run started one (tests that restart the server need it).
    pub fn local(&mut self) -> Option<&mut LocalServer> {
        match self {
            Target::External(_) => None,
            Target::Local(server) => Some(server),
        }
    }
}

#[cfg(all(test, feature = "cluster"))]
mod tests {
    use super::cluster_ready;

    #[test]
    fn cluster_ready_reads_cluster_info() {
        let ok = "cluster_enabled:1\r\ncluster_state:ok\r\ncluster_slots_assigned:16384\r\n\
                  cluster_slots_ok:16384\r\ncluster_known_nodes:3\r\n";
        assert!(cluster_ready(ok, 3));
        assert!(!cluster_ready(ok, 4), "a node not yet known");
        assert!(!cluster_ready(&ok.replace("state:ok", "state:fail"), 3));
        assert!(!cluster_ready(
            &ok.replace("slots_ok:16384", "slots_ok:10923"),
            3
        ));
        assert!(!cluster_ready("", 3));
    }
}
