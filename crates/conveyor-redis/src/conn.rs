//! Connections to the server: a small pool per queue handle, reconnection with backoff.
//!
//! A queue talks to one Redis server or, with the `cluster` feature, to a Redis Cluster: a
//! pooled connection is a [`Conn`], which is either, so the queue code is written once over
//! [`ConnectionLike`]. A cluster connection (redis-rs's `ClusterConnection`) routes each
//! command and script by its first key, so every call of a queue (all its keys carry the hash
//! tag `{NAME}`) goes to the node that owns the queue's slot; it follows `MOVED` and `ASK`
//! itself. It does not run transactions (`MULTI`/`EXEC` pipelines): the queue code asks
//! [`Pool::is_cluster`] and puts through the put script instead.
//!
//! A blocking get holds its connection for as long as it waits, so a handle used from several
//! threads at once needs several connections: the pool opens one when none is idle and keeps
//! the ones that are returned healthy. Each connection carries a lane number, reused with
//! the connection's slot, that names its producer lane in the `puts` hash (see
//! [`crate::scripts`]).
//!
//! A command that fails because the connection broke throws the connection away. Whether the
//! command is retried on a fresh one is the caller's choice ([`Retry`]): a put is, because its
//! script applies a (lane, sequence) once; a get is not, because it may have taken an item.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::{Client, Cmd, Connection, ConnectionLike, RedisError, RedisResult, Value};

use crate::error::Error;

/// How long a connection attempt, a write, or a reply may take before it counts as failed
/// (a connection's read timeout adds the longest block time of its pool's blocking reads, so
/// that a blocking read needs no change of timeout: two system calls fewer per get).
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether an operation may be sent again after its connection broke mid-flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Sending it twice does no harm (it is idempotent).
    Safe,
    /// It may have changed the queue; report the break instead.
    Never,
}

/// Where a queue's server is: one server's URL, or some nodes of a cluster.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `redis://...`: one server.
    Server(String),
    /// The URLs of some nodes of a Redis Cluster (one reachable node finds the others).
    #[cfg(feature = "cluster")]
    Cluster(Vec<String>),
}

impl std::fmt::Debug for Endpoint {
    /// The URLs with their passwords blanked.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Server(url) => f.debug_tuple("Server").field(&redact(url)).finish(),
            #[cfg(feature = "cluster")]
            Endpoint::Cluster(urls) => f
                .debug_tuple("Cluster")
                .field(&urls.iter().map(|u| redact(u)).collect::<Vec<_>>())
                .finish(),
        }
    }
}

/// The redis-rs client an [`Endpoint`] makes connections with.
enum Connector {
    Server(Client),
    #[cfg(feature = "cluster")]
    Cluster(redis::cluster::ClusterClient),
}

/// One connection: to a server, or to a cluster (which holds one connection per node it has
/// talked to, and routes each command to the node owning its key's slot).
pub(crate) enum Conn {
    Server(Connection),
    #[cfg(feature = "cluster")]
    Cluster(Box<redis::cluster::ClusterConnection>),
}

/// Dispatches a [`ConnectionLike`] method to the connection inside a [`Conn`].
macro_rules! dispatch {
    ($conn:expr, $c:ident => $call:expr) => {
        match $conn {
            Conn::Server($c) => $call,
            #[cfg(feature = "cluster")]
            Conn::Cluster($c) => $call,
        }
    };
}

impl ConnectionLike for Conn {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        dispatch!(self, c => c.req_packed_command(cmd))
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        dispatch!(self, c => c.req_packed_commands(cmd, offset, count))
    }

    // The cluster connection routes a `Cmd` by its key without parsing it back: forward it
    // as it is rather than through the default (which packs it first).
    fn req_command(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        dispatch!(self, c => c.req_command(cmd))
    }

    fn get_db(&self) -> i64 {
        dispatch!(self, c => c.get_db())
    }

    fn supports_pipelining(&self) -> bool {
        dispatch!(self, c => c.supports_pipelining())
    }

    fn check_connection(&mut self) -> bool {
        dispatch!(self, c => c.check_connection())
    }

    fn is_open(&self) -> bool {
        dispatch!(self, c => c.is_open())
    }
}

/// The pause between attempts to reach the server: 10 ms, doubling to 500 ms.
struct Backoff {
    pause: Duration,
}

impl Backoff {
    fn new() -> Self {
        Backoff {
            pause: Duration::from_millis(10),
        }
    }

    /// Sleeps the next pause, at most `left` (what remains of the reconnect budget).
    fn wait(&mut self, left: Duration) {
        std::thread::sleep(self.pause.min(left));
        self.pause = (self.pause * 2).min(Duration::from_millis(500));
    }
}

/// One pooled connection and its lane.
pub(crate) struct Link {
    pub conn: Conn,
    pub lane: usize,
}

impl Link {
    fn new(conn: Conn, lane: usize) -> Self {
        Link { conn, lane }
    }
}

/// The connections of one queue handle (shared by its clones).
pub(crate) struct Pool {
    connector: Connector,
    addr: String,
    reconnect_for: Duration,
    /// The longest a blocking command on these connections waits in the server.
    block_for: Duration,
    idle: Mutex<Vec<Link>>,
    /// Lanes not in use by any connection; a new connection takes the smallest.
    free_lanes: Mutex<(Vec<usize>, usize)>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// The URL with its password blanked, for messages.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &creds[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// How many times redis-rs's cluster connection retries one command (following a redirect,
/// or waiting out `CLUSTERDOWN`, `TRYAGAIN`, `MASTERDOWN` between 10 ms and 500 ms) before it
/// reports the failure: about as many as fit in the reconnect budget.
#[cfg(feature = "cluster")]
fn cluster_retries(reconnect_for: Duration) -> u32 {
    // the waits grow from 10-20 ms to 10-500 ms over the first six retries, then average 255 ms
    let steady = reconnect_for.as_millis() / 255;
    6 + u32::try_from(steady).unwrap_or(u32::MAX).min(1000)
}

impl Pool {
    /// A pool for `endpoint`, whose blocking commands wait at most `block_for`.
    pub fn new(
        endpoint: &Endpoint,
        reconnect_for: Duration,
        block_for: Duration,
    ) -> Result<Self, Error> {
        let (connector, addr) = match endpoint {
            Endpoint::Server(url) => {
                let client = Client::open(url.as_str()).map_err(|source| Error::Url {
                    url: redact(url),
                    source,
                })?;
                let addr = client.get_connection_info().addr().to_string();
                (Connector::Server(client), addr)
            }
            #[cfg(feature = "cluster")]
            Endpoint::Cluster(urls) => {
                use redis::IntoConnectionInfo;
                let bad = |source| Error::Url {
                    url: urls
                        .iter()
                        .map(|u| redact(u))
                        .collect::<Vec<_>>()
                        .join(", "),
                    source,
                };
                let mut addrs = Vec::with_capacity(urls.len());
                for url in urls {
                    addrs.push(
                        url.as_str()
                            .into_connection_info()
                            .map_err(bad)?
                            .addr()
                            .to_string(),
                    );
                }
                let client =
                    redis::cluster::ClusterClientBuilder::new(urls.iter().map(String::as_str))
                        .connection_timeout(IO_TIMEOUT)
                        .response_timeout(IO_TIMEOUT + block_for)
                        .retries(cluster_retries(reconnect_for))
                        .min_retry_wait(10)
                        .max_retry_wait(500)
                        .build()
                        .map_err(bad)?;
                (
                    Connector::Cluster(client),
                    format!("cluster {}", addrs.join(",")),
                )
            }
        };
        Ok(Pool {
            addr,
            connector,
            reconnect_for,
            block_for,
            idle: Mutex::new(Vec::new()),
            free_lanes: Mutex::new((Vec::new(), 0)),
        })
    }

    /// The server's address (a cluster's: `cluster` and its nodes' given), for messages.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Whether the connections go to a cluster (which runs no `MULTI`/`EXEC` transaction, and
    /// may send a command again after a broken connection: see the crate docs).
    pub fn is_cluster(&self) -> bool {
        match self.connector {
            Connector::Server(_) => false,
            #[cfg(feature = "cluster")]
            Connector::Cluster(_) => true,
        }
    }

    /// One connection attempt, its timeouts set.
    fn connect_once(&self) -> Result<Conn, RedisError> {
        match &self.connector {
            Connector::Server(client) => {
                let conn = client.get_connection_with_timeout(IO_TIMEOUT)?;
                conn.set_write_timeout(Some(IO_TIMEOUT))?;
                conn.set_read_timeout(Some(IO_TIMEOUT + self.block_for))?;
                Ok(Conn::Server(conn))
            }
            #[cfg(feature = "cluster")]
            Connector::Cluster(client) => {
                // the timeouts hold for the node connections it has and those it makes later
                let conn = client.get_connection()?;
                conn.set_write_timeout(Some(IO_TIMEOUT))?;
                conn.set_read_timeout(Some(IO_TIMEOUT + self.block_for))?;
                Ok(Conn::Cluster(Box::new(conn)))
            }
        }
    }

    /// Every lane handed out so far.
    pub fn lanes(&self) -> Vec<usize> {
        let guard = self.free_lanes.lock().unwrap_or_else(|p| p.into_inner());
        (0..guard.1).collect()
    }

    fn take_lane(&self) -> usize {
        let mut guard = self.free_lanes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(lane) = guard.0.pop() {
            return lane;
        }
        guard.1 += 1;
        guard.1 - 1
    }

    fn release_lane(&self, lane: usize) {
        let mut guard = self.free_lanes.lock().unwrap_or_else(|p| p.into_inner());
        guard.0.push(lane);
        guard.0.sort_unstable_by(|a, b| b.cmp(a));
    }

    /// Connects, retrying refused or broken attempts with exponential backoff (10 ms doubling
    /// to 500 ms) for at most the reconnect budget.
    fn connect(&self) -> Result<Conn, Error> {
        let start = Instant::now();
        let mut backoff = Backoff::new();
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.connect_once() {
                Ok(conn) => {
                    if attempts > 1 {
                        tracing::info!(addr = %self.addr, attempts, "reconnected to Redis");
                    }
                    return Ok(conn);
                }
                Err(source) => {
                    let waited = start.elapsed();
                    // LOADING: a server reading its data back; the others: a cluster between
                    // two states (a failover, slots not yet all served)
                    let retryable = source.is_io_error()
                        || source.is_connection_refusal()
                        || source.is_connection_dropped()
                        || matches!(
                            source.code(),
                            Some("LOADING" | "CLUSTERDOWN" | "TRYAGAIN" | "MASTERDOWN")
                        );
                    if !retryable || waited >= self.reconnect_for {
                        tracing::warn!(addr = %self.addr, attempts, error = %source, "cannot connect to Redis");
                        return Err(Error::Connect {
                            addr: self.addr.clone(),
                            attempts,
                            waited,
                            source,
                        });
                    }
                    backoff.wait(self.reconnect_for - waited);
                }
            }
        }
    }

    fn checkout(&self) -> Result<Link, Error> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match idle {
            Some(link) => Ok(link),
            None => {
                let lane = self.take_lane();
                match self.connect() {
                    Ok(conn) => Ok(Link::new(conn, lane)),
                    Err(e) => {
                        self.release_lane(lane);
                        Err(e)
                    }
                }
            }
        }
    }

    fn give_back(&self, link: Link) {
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(link);
    }

    /// Runs `op` on a pooled connection. A broken connection is dropped; with
    /// [`Retry::Safe`] the operation runs again on a new one with the same lane (within the
    /// reconnect budget), with [`Retry::Never`] the break is returned as it is.
    pub fn run<R>(
        &self,
        retry: Retry,
        what: &'static str,
        mut op: impl FnMut(&mut Link) -> Result<R, RedisError>,
    ) -> Result<R, Error> {
        let start = Instant::now();
        let mut link = self.checkout()?;
        let mut breaks = 0;
        let mut backoff = Backoff::new();
        loop {
            match op(&mut link) {
                Ok(r) => {
                    self.give_back(link);
                    return Ok(r);
                }
                Err(e) if is_broken(&e) => {
                    let lane = link.lane;
                    drop(link);
                    tracing::debug!(addr = %self.addr, error = %e, what, "Redis connection broke");
                    if retry == Retry::Never || start.elapsed() > self.reconnect_for {
                        self.release_lane(lane);
                        return Err(Error::Command {
                            command: what,
                            source: e,
                        });
                    }
                    // A connection that breaks again at once (a cluster reached through its
                    // other nodes while the queue's node is down) is tried again with backoff,
                    // as a refused connection is.
                    breaks += 1;
                    if breaks > 1 {
                        backoff.wait(self.reconnect_for.saturating_sub(start.elapsed()));
                    }
                    match self.connect() {
                        Ok(conn) => link = Link::new(conn, lane),
                        Err(err) => {
                            self.release_lane(lane);
                            return Err(err);
                        }
                    }
                }
                Err(e) => {
                    self.give_back(link);
                    return Err(Error::Command {
                        command: what,
                        source: e,
                    });
                }
            }
        }
    }

    /// As [`run`](Pool::run) with [`Retry::Never`], reporting a break as `on_break` says.
    pub fn run_once<R>(
        &self,
        what: &'static str,
        op: impl FnMut(&mut Link) -> Result<R, RedisError>,
        on_break: impl FnOnce(RedisError) -> Error,
    ) -> Result<R, Error> {
        match self.run(Retry::Never, what, op) {
            Err(Error::Command { source, .. }) if is_broken(&source) => Err(on_break(source)),
            other => other,
        }
    }
}

/// Whether the error means the connection can no longer be used.
pub(crate) fn is_broken(e: &RedisError) -> bool {
    e.is_connection_dropped() || e.is_io_error() || e.is_unrecoverable_error()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_blanks_the_password_only() {
        assert_eq!(
            redact("redis://bob:secret@host:6379/0"),
            "redis://bob:***@host:6379/0"
        );
        assert_eq!(redact("redis://host:6379"), "redis://host:6379");
        assert_eq!(redact("redis://:pw@h"), "redis://:***@h");
    }

    #[test]
    fn bad_url_is_a_typed_error() {
        let e = Pool::new(
            &Endpoint::Server("http://nope".into()),
            Duration::from_secs(1),
            Duration::ZERO,
        )
        .unwrap_err();
        assert!(matches!(e, Error::Url { .. }), "{e}");
    }

    #[test]
    fn endpoint_debug_blanks_passwords() {
        let e = Endpoint::Server("redis://bob:secret@host:6379/0".into());
        assert_eq!(format!("{e:?}"), r#"Server("redis://bob:***@host:6379/0")"#);
    }

    #[cfg(feature = "cluster")]
    #[test]
    fn bad_cluster_url_is_a_typed_error() {
        let nodes = vec![
            "redis://127.0.0.1:7000".to_string(),
            "http://nope".to_string(),
        ];
        let e = Pool::new(
            &Endpoint::Cluster(nodes),
            Duration::from_secs(1),
            Duration::ZERO,
        )
        .unwrap_err();
        assert!(matches!(e, Error::Url { .. }), "{e}");
        assert!(e.to_string().contains("http://nope"), "{e}");
    }

    #[cfg(feature = "cluster")]
    #[test]
    fn cluster_retries_grow_with_the_budget() {
        assert_eq!(cluster_retries(Duration::ZERO), 6);
        assert!(cluster_retries(Duration::from_secs(10)) > cluster_retries(Duration::from_secs(1)));
        assert!(cluster_retries(Duration::MAX) <= 1006);
    }
}
