//! Connections to the server: a small pool per queue handle, reconnection with backoff.
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

use redis::{Client, Connection, RedisError};

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

/// One pooled connection and its lane.
pub(crate) struct Link {
    pub conn: Connection,
    pub lane: usize,
}

impl Link {
    fn new(conn: Connection, lane: usize) -> Self {
        Link { conn, lane }
    }
}

/// The connections of one queue handle (shared by its clones).
pub(crate) struct Pool {
    client: Client,
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

impl Pool {
    /// A pool for the server at `url`, whose blocking commands wait at most `block_for`.
    pub fn new(url: &str, reconnect_for: Duration, block_for: Duration) -> Result<Self, Error> {
        let client = Client::open(url).map_err(|source| Error::Url {
            url: redact(url),
            source,
        })?;
        Ok(Pool {
            addr: client.get_connection_info().addr().to_string(),
            client,
            reconnect_for,
            block_for,
            idle: Mutex::new(Vec::new()),
            free_lanes: Mutex::new((Vec::new(), 0)),
        })
    }

    /// The server's address, for messages.
    pub fn addr(&self) -> &str {
        &self.addr
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
    fn connect(&self) -> Result<Connection, Error> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(10);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let result = self
                .client
                .get_connection_with_timeout(IO_TIMEOUT)
                .and_then(|conn| {
                    conn.set_write_timeout(Some(IO_TIMEOUT))?;
                    conn.set_read_timeout(Some(IO_TIMEOUT + self.block_for))?;
                    Ok(conn)
                });
            match result {
                Ok(conn) => {
                    if attempts > 1 {
                        tracing::info!(addr = %self.addr, attempts, "reconnected to Redis");
                    }
                    return Ok(conn);
                }
                Err(source) => {
                    let waited = start.elapsed();
                    let retryable = source.is_io_error()
                        || source.is_connection_refusal()
                        || source.is_connection_dropped()
                        || source.code() == Some("LOADING");
                    if !retryable || waited >= self.reconnect_for {
                        tracing::warn!(addr = %self.addr, attempts, error = %source, "cannot connect to Redis");
                        return Err(Error::Connect {
                            addr: self.addr.clone(),
                            attempts,
                            waited,
                            source,
                        });
                    }
                    std::thread::sleep(pause.min(self.reconnect_for - waited));
                    pause = (pause * 2).min(Duration::from_millis(500));
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
        let e = Pool::new("http://nope", Duration::from_secs(1), Duration::ZERO).unwrap_err();
        assert!(matches!(e, Error::Url { .. }), "{e}");
    }
}
