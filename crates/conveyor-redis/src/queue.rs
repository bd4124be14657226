//! [`RedisQueue`] and [`JoinableRedisQueue`]: the `Channel` over a Redis Stream.

use std::collections::VecDeque;
use std::io;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use conveyor_core::{
    Channel, Codec, CodecError, GetError, Joinable, Postcard, PutError, QueueInfo, TaskDoneError,
    Unavailable,
};
use redis::{RedisError, Value};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::conn::{Endpoint, Pool, Retry};
use crate::error::Error;
use crate::scripts::{self, scripts, Keys, GROUP};

/// The settings of a queue handle, set with [`Builder`]'s methods.
#[derive(Debug, Clone)]
struct Options {
    maxsize: Option<usize>,
    visibility: Duration,
    max_deliveries: u32,
    poll: Duration,
    reconnect_for: Duration,
    auto_shutdown: bool,
    lease: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            maxsize: None,
            visibility: Duration::from_secs(30),
            max_deliveries: 5,
            poll: Duration::from_millis(100),
            reconnect_for: Duration::from_secs(10),
            auto_shutdown: false,
            lease: Duration::from_secs(5),
        }
    }
}

/// Opens a [`RedisQueue`] or a [`JoinableRedisQueue`] with settings other than the defaults.
///
/// ```no_run
/// use std::time::Duration;
/// use conveyor_redis::{Builder, RedisQueue};
///
/// let q: RedisQueue<String> = Builder::new("redis://alice:secret@db.example:6379/0", "jobs")
///     .maxsize(100)
///     .visibility_timeout(Duration::from_secs(60))
///     .open()?;
/// # Ok::<(), conveyor_redis::Error>(())
/// ```
///
/// With the `cluster` feature, `Builder::cluster` opens the queue on a Redis Cluster instead.
#[derive(Debug, Clone)]
pub struct Builder<C = Postcard> {
    endpoint: Endpoint,
    name: String,
    opts: Options,
    codec: C,
}

impl Builder<Postcard> {
    /// Settings for the queue `name` on the server at `url` (`redis://[user:password@]host
    /// [:port][/db]`, `rediss://...` with the `tls` feature, `redis+unix:///path`).
    pub fn new(url: impl Into<String>, name: impl Into<String>) -> Self {
        Builder {
            endpoint: Endpoint::Server(url.into()),
            name: name.into(),
            opts: Options::default(),
            codec: Postcard,
        }
    }

    /// Settings for the queue `name` on the Redis Cluster that `nodes` belong to (feature
    /// `cluster`): the URLs (an array, a slice, a `Vec` of `&str` or `String`) of some of its
    /// primaries, `redis://[user:password@]host:port` (`rediss://` with the `tls` feature),
    /// all with the same user and password. One that answers is enough to find the others,
    /// and the addresses the cluster gives for its nodes are used from then on. The queue
    /// lives on the node that owns its slot: see the
    /// [crate docs](crate#redis-cluster-feature-cluster) for what a cluster changes.
    ///
    /// ```no_run
    /// use conveyor_redis::{Builder, Channel, RedisQueue};
    ///
    /// let nodes = ["redis://10.0.0.1:7000", "redis://10.0.0.2:7000", "redis://10.0.0.3:7000"];
    /// let q: RedisQueue<String> = Builder::cluster(nodes, "jobs").maxsize(1000).open()?;
    /// q.put("resize image 17".to_string())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "cluster")]
    pub fn cluster<I>(nodes: I, name: impl Into<String>) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        Builder {
            endpoint: Endpoint::Cluster(
                nodes
                    .into_iter()
                    .map(|node| node.as_ref().to_string())
                    .collect(),
            ),
            name: name.into(),
            opts: Options::default(),
            codec: Postcard,
        }
    }
}

impl<C: Codec> Builder<C> {
    /// Python's `maxsize` (0 = unbounded): puts wait while the queue holds that many items not
    /// yet delivered. The first handle to open a queue sets it; a later handle that asks for
    /// another gets [`Error::MaxsizeMismatch`]. Without it a new queue is unbounded and an
    /// existing one keeps its bound.
    pub fn maxsize(mut self, maxsize: usize) -> Self {
        self.opts.maxsize = Some(maxsize);
        self
    }

    /// How long an item taken and not yet acknowledged may stay with its consumer before
    /// another consumer may take it (default 30 s). Pick it longer than the slowest item's
    /// work: a live consumer slower than this sees its item delivered a second time.
    pub fn visibility_timeout(mut self, timeout: Duration) -> Self {
        self.opts.visibility = timeout.max(Duration::from_millis(1));
        self
    }

    /// How many times an item may be delivered (default 5); one that would be delivered
    /// again after that goes to the dead-letter stream instead.
    pub fn max_deliveries(mut self, n: u32) -> Self {
        self.opts.max_deliveries = n.max(1);
        self
    }

    /// How often a waiting get, put or join looks again at what it cannot wait on in Redis
    /// itself: a shutdown, room in a bounded queue, items whose visibility timeout ran out, and
    /// join's count (default 100 ms; a waiting get sleeps in the server in between).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.opts.poll = interval.max(Duration::from_millis(1));
        self
    }

    /// How long a lost connection is retried, with backoff from 10 ms to 500 ms, before an
    /// operation fails (default 10 s).
    pub fn reconnect_for(mut self, budget: Duration) -> Self {
        self.opts.reconnect_for = budget;
        self
    }

    /// Builds a new queue that shuts itself down (as `shutdown(false)` does) once every handle
    /// that has put has closed ([`Channel::close`]) or gone: dropped, or its process died. So
    /// consumers on every machine learn that the producers are done, which Python's never
    /// do. A live producer renews a lease in the server every `lease / 3` from a thread of its
    /// process; one whose lease (default 5 s, see [`producer_lease`](Builder::producer_lease))
    /// runs out counts as gone. The first handle to open the queue decides; the setting is
    /// kept in the server.
    pub fn shutdown_when_producers_done(mut self) -> Self {
        self.opts.auto_shutdown = true;
        self
    }

    /// How long a producer of a self-shutting queue counts as alive without renewing its lease
    /// (default 5 s): how long after a producer process dies its consumers learn of it.
    pub fn producer_lease(mut self, lease: Duration) -> Self {
        self.opts.lease = lease.max(Duration::from_millis(30));
        self
    }

    /// Encodes items with `codec` instead: for example the pickle codec
    /// (`conveyor_core::Pickle`), so a Python program using redis-py reads and writes the
    /// same stream.
    pub fn codec<D: Codec>(self, codec: D) -> Builder<D> {
        Builder {
            endpoint: self.endpoint,
            name: self.name,
            opts: self.opts,
            codec,
        }
    }

    /// Opens (creating it if it is new) a queue whose gets acknowledge each item as they
    /// deliver it.
    pub fn open<T>(self) -> Result<RedisQueue<T, C>, Error> {
        Ok(RedisQueue::from_shared(Arc::new(Shared::open(self, true)?)))
    }

    /// Opens (creating it if it is new) a queue whose items are acknowledged by `task_done`.
    pub fn open_joinable<T>(self) -> Result<JoinableRedisQueue<T, C>, Error> {
        Ok(JoinableRedisQueue {
            queue: RedisQueue::from_shared(Arc::new(Shared::open(self, false)?)),
        })
    }
}

/// What a handle and its clones share.
struct Shared<C> {
    name: String,
    keys: Keys,
    /// This incarnation of the queue: a queue removed and made anew has another.
    token: String,
    /// The consumer name of this handle in the group.
    consumer: String,
    capacity: Option<usize>,
    /// Acknowledge at delivery (`RedisQueue`) or at `task_done` (`JoinableRedisQueue`).
    ack_on_get: bool,
    /// Whether the queue shuts itself down once its producers are done (kept in the server).
    auto: bool,
    /// The producer handles of this handle's family that have put, for the lease renewer.
    producers: Mutex<Vec<std::sync::Weak<Producer>>>,
    renewer: std::sync::Once,
    codec: C,
    opts: Options,
    pool: Pool,
    /// The sequence number of the next put (per handle; the lane tells connections apart).
    seq: AtomicU64,
    /// Entries delivered to this handle and not yet acknowledged, oldest first.
    taken: Mutex<VecDeque<String>>,
    /// When the take script last ran (ns since `epoch`; 0: never).
    last_check: AtomicU64,
    /// When the put script last ran (ns since `epoch`; 0: never).
    last_put_check: AtomicU64,
    epoch: Instant,
}

/// A name no other handle on any machine picks: host, process, time, and a counter.
fn unique_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{host}-{}-{nanos:x}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The first entry of an XREADGROUP answer, `(id, field d)`, taken out of it without a copy;
/// `Ok(None)` when it has none, `Err` (the answer) when it is not an XREADGROUP answer.
///
/// RESP2 answers `[[stream, [[id, [field, value, ...]]]]]`, RESP3 a map of stream to entries.
fn take_entry(reply: Value) -> Result<Option<(String, Vec<u8>)>, Value> {
    let entries = match reply {
        Value::Nil => return Ok(None),
        Value::Array(ref streams) if streams.is_empty() => return Ok(None),
        Value::Map(ref streams) if streams.is_empty() => return Ok(None),
        Value::Array(mut streams) => match streams.swap_remove(0) {
            Value::Array(mut pair) if pair.len() == 2 => pair.pop(),
            other => return Err(other),
        },
        Value::Map(mut streams) => Some(streams.swap_remove(0).1),
        other => return Err(other),
    };
    let Some(Value::Array(mut entries)) = entries else {
        return Err(Value::Nil);
    };
    if entries.is_empty() {
        return Ok(None);
    }
    let Value::Array(mut entry) = entries.swap_remove(0) else {
        return Err(Value::Nil);
    };
    if entry.len() != 2 {
        return Err(Value::Array(entry));
    }
    let fields = entry.pop();
    let Some(id) = entry.first().and_then(text) else {
        return Err(Value::Array(entry));
    };
    let Some(Value::Array(fields)) = fields else {
        return Err(Value::Nil);
    };
    let mut data = Vec::new();
    let mut fields = fields.into_iter();
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        if bulk(&name) == Some(b"d") {
            if let Value::BulkString(b) = value {
                data = b;
            }
            break;
        }
    }
    Ok(Some((id, data)))
}

fn bulk(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

fn text(v: &Value) -> Option<String> {
    bulk(v).map(|b| String::from_utf8_lossy(b).into_owned())
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        other => text(other).and_then(|s| s.parse().ok()),
    }
}

/// Whether the time stamp `at` (ns since `shared.epoch`; 0: never) is within the poll interval.
fn recent<C>(at: &AtomicU64, shared: &Shared<C>) -> bool {
    let last = at.load(Ordering::Relaxed);
    let now = shared.epoch.elapsed().as_nanos() as u64;
    last != 0 && now.saturating_sub(last) < shared.opts.poll.as_nanos() as u64
}

/// Sets the time stamp `at` to now.
fn mark<C>(at: &AtomicU64, shared: &Shared<C>) {
    let now = (shared.epoch.elapsed().as_nanos() as u64).max(1);
    at.store(now, Ordering::Relaxed);
}

/// What the take script answered.
enum Taken {
    Item(String, Vec<u8>),
    Empty,
    Closed,
}

impl<C: Codec> Shared<C> {
    fn open(b: Builder<C>, ack_on_get: bool) -> Result<Self, Error> {
        let pool = Pool::new(&b.endpoint, b.opts.reconnect_for, b.opts.poll)?;
        let keys = Keys::new(&b.name);
        let new_token = unique_name();
        let reply: Vec<Value> = pool.run(Retry::Safe, "open", |link| {
            scripts()
                .init
                .key(&keys.items)
                .key(&keys.meta)
                .arg(b.opts.maxsize.unwrap_or(0))
                .arg(&new_token)
                .arg(if b.opts.auto_shutdown { "1" } else { "0" })
                .invoke(&mut link.conn)
        })?;
        let protocol = |detail: String| Error::Protocol {
            command: "open",
            detail,
        };
        let [maxsize, _state, token, auto] = reply.as_slice() else {
            return Err(protocol(format!("{reply:?}")));
        };
        let existing = int(maxsize)
            .and_then(|m| usize::try_from(m).ok())
            .ok_or_else(|| protocol(format!("maxsize {maxsize:?}")))?;
        if let Some(requested) = b.opts.maxsize {
            if requested != existing {
                return Err(Error::MaxsizeMismatch {
                    name: b.name,
                    existing,
                    requested,
                });
            }
        }
        let token = text(token).ok_or_else(|| protocol(format!("token {token:?}")))?;
        tracing::debug!(name = %b.name, addr = %pool.addr(), maxsize = existing, "opened Redis queue");
        Ok(Shared {
            keys,
            token,
            consumer: unique_name(),
            capacity: (existing > 0).then_some(existing),
            ack_on_get,
            auto: text(auto).as_deref() == Some("1"),
            producers: Mutex::new(Vec::new()),
            renewer: std::sync::Once::new(),
            codec: b.codec,
            opts: b.opts,
            pool,
            seq: AtomicU64::new(0),
            taken: Mutex::new(VecDeque::new()),
            last_check: AtomicU64::new(0),
            last_put_check: AtomicU64::new(0),
            epoch: Instant::now(),
            name: b.name,
        })
    }

    fn lost(&self) -> Error {
        Error::QueueLost {
            name: self.name.clone(),
        }
    }

    fn lane_name(&self, lane: usize) -> String {
        format!("{}/{lane}", self.consumer)
    }

    /// Whether a put may take the fast path (one transaction, no script): the queue has no
    /// bound and does not shut itself down (the script checks those), and the script ran on
    /// this handle within the poll interval (it also checks that the queue is the one this
    /// handle opened, not one made anew under its name since: a put sees that within the poll
    /// interval, as a get does). A cluster connection runs no transaction: there every put
    /// runs the script.
    fn fast_put_allowed(&self) -> bool {
        self.capacity.is_none()
            && !self.auto
            && !self.pool.is_cluster()
            && recent(&self.last_put_check, self)
    }

    /// One attempt at putting `items`: how many went in (from the first), or `None` when the
    /// queue is shut down.
    fn put_encoded(&self, items: &[Vec<u8>], producer: &str) -> Result<Option<usize>, Error> {
        if self.fast_put_allowed() {
            if let Some(done) = self.put_fast(items, producer)? {
                return Ok(done);
            }
            // refused: the script says why (shut down, or the queue is gone)
        }
        mark(&self.last_put_check, self);
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let mut attempts = 0;
        let reply = self.pool.run(Retry::Safe, "put", |link| {
            attempts += 1;
            self.put_script(link, seq, producer, attempts > 1, items)
        })?;
        self.put_answer(reply)
    }

    /// A put by the fast transaction ([`scripts::fast_put`]): `Some` with the put script's
    /// answer, or `None` when the server refused every entry (the caller asks the script why,
    /// as a new put). A retry after a broken connection goes through the script, which looks
    /// the put's record up.
    fn put_fast(&self, items: &[Vec<u8>], producer: &str) -> Result<Option<Option<usize>>, Error> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let mut attempts = 0;
        let reply = self.pool.run(Retry::Safe, "put", |link| {
            attempts += 1;
            if attempts > 1 {
                return self.put_script(link, seq, producer, true, items).map(Err);
            }
            scripts::fast_put(&self.keys, &self.lane_name(link.lane), seq, items)
                .query::<Vec<Value>>(&mut link.conn)
                .map(Ok)
        })?;
        match reply {
            Ok(ids) => {
                // every entry or none: the transaction runs as one step of the server
                let added = ids
                    .iter()
                    .take_while(|v| matches!(v, Value::BulkString(_) | Value::SimpleString(_)))
                    .count();
                if added > 0 {
                    Ok(Some(Some(added)))
                } else if items.is_empty() {
                    Ok(Some(Some(0)))
                } else {
                    if let Some(Value::ServerError(e)) = ids.first() {
                        tracing::debug!(name = %self.name, error = ?e, "fast put refused");
                    }
                    Ok(None)
                }
            }
            Err(script_reply) => self.put_answer(script_reply).map(Some),
        }
    }

    /// Runs the put script for (this link's lane, `seq`).
    ///
    /// On a cluster the script always looks the lane's last put up (`retry`): the cluster
    /// connection sends a command again on a new connection when one breaks, so any call may
    /// be a second one, and the look-up makes it apply once.
    fn put_script(
        &self,
        link: &mut crate::conn::Link,
        seq: u64,
        producer: &str,
        retry: bool,
        items: &[Vec<u8>],
    ) -> Result<Vec<Value>, RedisError> {
        let mut inv = scripts().put.key(&self.keys.items);
        inv.key(&self.keys.meta)
            .key(&self.keys.puts)
            .key(&self.keys.producers)
            .key(&self.keys.puts_at_shutdown)
            .arg(&self.token)
            .arg(self.lane_name(link.lane))
            .arg(seq)
            .arg(producer)
            .arg(self.opts.lease.as_millis() as u64)
            .arg(if retry || self.pool.is_cluster() {
                "retry"
            } else {
                "new"
            });
        for item in items {
            inv.arg(item.as_slice());
        }
        inv.invoke(&mut link.conn)
    }

    /// The put script's answer: how many went in, or `None` when the queue is shut down.
    fn put_answer(&self, reply: Vec<Value>) -> Result<Option<usize>, Error> {
        match reply.first().and_then(text).as_deref() {
            Some("ok") => reply
                .get(1)
                .and_then(int)
                .and_then(|n| usize::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| Error::Protocol {
                    command: "put",
                    detail: format!("{reply:?}"),
                }),
            Some("closed") => Ok(None),
            Some("lost") => Err(self.lost()),
            _ => Err(Error::Protocol {
                command: "put",
                detail: format!("{reply:?}"),
            }),
        }
    }

    /// One non-blocking take.
    fn take(&self) -> Result<Taken, Error> {
        let reply: Vec<Value> = self.pool.run_once(
            "get",
            |link| {
                scripts()
                    .take
                    .key(&self.keys.items)
                    .key(&self.keys.meta)
                    .key(&self.keys.dead)
                    .key(&self.keys.producers)
                    .key(&self.keys.puts)
                    .key(&self.keys.puts_at_shutdown)
                    .arg(&self.token)
                    .arg(&self.consumer)
                    .arg(self.opts.visibility.as_millis() as u64)
                    .arg(self.opts.max_deliveries)
                    .arg(if self.ack_on_get { "1" } else { "0" })
                    .invoke(&mut link.conn)
            },
            |source| self.interrupted(source),
        )?;
        match reply.first().and_then(text).as_deref() {
            Some("item") => match (reply.get(1).and_then(text), reply.get(2).and_then(bulk)) {
                (Some(id), Some(data)) => Ok(Taken::Item(id, data.to_vec())),
                _ => Err(Error::Protocol {
                    command: "get",
                    detail: format!("{reply:?}"),
                }),
            },
            Some("empty") => Ok(Taken::Empty),
            Some("closed") => Ok(Taken::Closed),
            Some("lost") => Err(self.lost()),
            _ => Err(Error::Protocol {
                command: "get",
                detail: format!("{reply:?}"),
            }),
        }
    }

    fn interrupted(&self, source: RedisError) -> Error {
        Error::GetInterrupted {
            name: self.name.clone(),
            source,
        }
    }

    /// Waits in the server, at most `wait` (no longer than the poll interval, which the
    /// connections' read timeout allows for), for the next undelivered entry.
    fn wait_for_entry(&self, wait: Duration) -> Result<Option<(String, Vec<u8>)>, Error> {
        debug_assert!(wait <= self.opts.poll);
        let block_ms = wait.as_millis().clamp(1, u64::MAX as u128) as u64;
        let reply: Result<Value, Error> = self.pool.run_once(
            "get",
            |link| {
                let mut read = redis::cmd("XREADGROUP");
                read.arg("GROUP")
                    .arg(GROUP)
                    .arg(&self.consumer)
                    .arg("COUNT")
                    .arg(1)
                    .arg("BLOCK")
                    .arg(block_ms);
                if self.ack_on_get {
                    // Delivered and done in the one step: the entry never enters the pending
                    // list (at most once, as the crate docs say); the take script trims it
                    // from the stream later (see the scripts module).
                    read.arg("NOACK");
                }
                let r: Value = read
                    .arg("STREAMS")
                    .arg(&self.keys.items)
                    .arg(">")
                    .query(&mut link.conn)?;
                Ok(r)
            },
            |source| self.interrupted(source),
        );
        let reply = match reply {
            Ok(v) => v,
            // The stream or its group vanished: the queue is gone (or shut down with
            // immediate while we waited, which the next take tells).
            Err(Error::Command { source, .. })
                if matches!(source.code(), Some("NOGROUP") | Some("UNBLOCKED")) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(e),
        };
        take_entry(reply).or_else(|reply| self.bad_read(&reply))
    }

    fn bad_read<R>(&self, reply: &Value) -> Result<R, Error> {
        Err(Error::Protocol {
            command: "get",
            detail: format!("XREADGROUP answered {reply:?}"),
        })
    }

    /// Acknowledges and removes entries; answers how many were still pending.
    fn ack(&self, ids: &[String]) -> Result<i64, Error> {
        self.pool.run(Retry::Safe, "ack", |link| {
            let mut inv = scripts().ack.key(&self.keys.items);
            for id in ids {
                inv.arg(id);
            }
            inv.invoke(&mut link.conn)
        })
    }

    /// Takes the next item, waiting until `deadline` (`None`: forever; now: not at all).
    ///
    /// The take script (the shutdown state, items whose visibility timeout ran out, then the
    /// next item) runs at least once per poll interval; in between, a get reads the stream
    /// directly, which costs one round trip instead of two when items keep coming.
    fn get_until(&self, deadline: Option<Instant>) -> Result<Vec<u8>, GetError> {
        let mut first = true;
        loop {
            let checked_lately = first && self.checked_lately();
            first = false;
            if !checked_lately {
                self.mark_checked();
                match self.take().map_err(io::Error::from)? {
                    Taken::Item(id, data) => return Ok(self.delivered(id, data)),
                    Taken::Closed => return Err(GetError::Closed),
                    Taken::Empty => {}
                }
            }
            let wait = match deadline {
                None => self.opts.poll,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(GetError::Timeout);
                    }
                    left.min(self.opts.poll)
                }
            };
            if let Some((id, data)) = self.wait_for_entry(wait).map_err(io::Error::from)? {
                return Ok(self.delivered(id, data));
            }
        }
    }

    fn checked_lately(&self) -> bool {
        recent(&self.last_check, self)
    }

    fn mark_checked(&self) {
        mark(&self.last_check, self);
    }

    fn delivered(&self, id: String, data: Vec<u8>) -> Vec<u8> {
        if !self.ack_on_get {
            self.taken
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push_back(id);
        }
        data
    }

    /// Puts `items`, waiting for room as `wait` says. Answers how many went in, and why the
    /// rest did not.
    fn put_until(&self, items: &[Vec<u8>], wait: Wait, producer: &str) -> (usize, Option<Stop>) {
        let mut done = 0;
        // Waiting for room polls the server: every 100 µs at first, doubling to 2 ms for the
        // first 100 ms of a wait (room usually comes back soon: a consumer is draining), then
        // up to the poll interval (a queue that stays full costs few calls).
        let first_pause = Duration::from_micros(100);
        let mut pause = first_pause;
        let mut full_since: Option<Instant> = None;
        while done < items.len() {
            match self.put_encoded(&items[done..], producer) {
                Ok(None) => return (done, Some(Stop::Closed)),
                Ok(Some(0)) => {
                    let now = Instant::now();
                    let nap = match wait {
                        Wait::No => return (done, Some(Stop::Full)),
                        Wait::Until(d) if now >= d => return (done, Some(Stop::Timeout)),
                        Wait::Until(d) => (d - now).min(pause),
                        Wait::Forever => pause,
                    };
                    std::thread::sleep(nap);
                    let since = *full_since.get_or_insert(now);
                    let cap = if since.elapsed() < Duration::from_millis(100) {
                        Duration::from_millis(2).min(self.opts.poll)
                    } else {
                        self.opts.poll
                    };
                    pause = (pause * 2).min(cap);
                }
                Ok(Some(n)) => {
                    done += n;
                    pause = first_pause;
                    full_since = None;
                }
                Err(e) => return (done, Some(Stop::Io(e.into()))),
            }
        }
        (done, None)
    }

    fn renew_leases(&self) -> Result<bool, Error> {
        let live: Vec<String> = {
            let mut producers = self.producers.lock().unwrap_or_else(|p| p.into_inner());
            producers.retain(|w| w.strong_count() > 0);
            producers
                .iter()
                .filter_map(|w| w.upgrade())
                .filter(|p| !p.closed.load(Ordering::Acquire))
                .map(|p| p.id.clone())
                .collect()
        };
        if live.is_empty() {
            return Ok(false);
        }
        self.pool.run(Retry::Safe, "lease", |link| {
            let mut inv = scripts().lease.key(&self.keys.producers);
            inv.arg(self.opts.lease.as_millis() as u64);
            for id in &live {
                inv.arg(id);
            }
            inv.invoke::<i64>(&mut link.conn)
        })?;
        Ok(true)
    }

    fn counts(&self) -> Result<(usize, usize, String), Error> {
        let reply: Vec<Value> = self.pool.run(Retry::Safe, "len", |link| {
            scripts()
                .counts
                .key(&self.keys.items)
                .key(&self.keys.meta)
                .arg(&self.token)
                .invoke(&mut link.conn)
        })?;
        match reply.as_slice() {
            [len, pending, state] => match (int(len), int(pending), text(state)) {
                (Some(l), Some(p), Some(s)) => Ok((l.max(0) as usize, p.max(0) as usize, s)),
                _ => Err(Error::Protocol {
                    command: "len",
                    detail: format!("{reply:?}"),
                }),
            },
            [lost] if text(lost).as_deref() == Some("lost") => Err(self.lost()),
            _ => Err(Error::Protocol {
                command: "len",
                detail: format!("{reply:?}"),
            }),
        }
    }

    fn shutdown(&self, immediate: bool) -> Result<usize, Error> {
        let n: i64 = self.pool.run(Retry::Safe, "shutdown", |link| {
            scripts()
                .shutdown
                .key(&self.keys.items)
                .key(&self.keys.meta)
                .key(&self.keys.puts)
                .key(&self.keys.puts_at_shutdown)
                .arg(&self.token)
                .arg(if immediate { "1" } else { "0" })
                .invoke(&mut link.conn)
        })?;
        if n < 0 {
            return Err(self.lost());
        }
        tracing::debug!(name = %self.name, immediate, discarded = n, "shut down Redis queue");
        Ok(n as usize)
    }

    fn join_until(&self, deadline: Option<Instant>) -> Result<bool, Error> {
        let mut pause = Duration::from_millis(1);
        loop {
            let (not_done, _, _) = self.counts()?;
            if not_done == 0 {
                return Ok(true);
            }
            let now = Instant::now();
            let wait = match deadline {
                Some(d) if now >= d => return Ok(false),
                Some(d) => (d - now).min(pause),
                None => pause,
            };
            std::thread::sleep(wait);
            pause = (pause * 2).min(self.opts.poll);
        }
    }
}

impl<C> Shared<C> {
    /// A producer handle closes or goes.
    fn leave(&self, producer: &str) -> Result<(), Error> {
        let shut: i64 = self.pool.run(Retry::Safe, "close", |link| {
            scripts()
                .leave
                .key(&self.keys.meta)
                .key(&self.keys.producers)
                .key(&self.keys.items)
                .key(&self.keys.puts)
                .key(&self.keys.puts_at_shutdown)
                .arg(&self.token)
                .arg(producer)
                .invoke(&mut link.conn)
        })?;
        if shut == 1 {
            tracing::debug!(name = %self.name, "the last producer closed: queue shut down");
        }
        Ok(())
    }
}

impl<C> Drop for Shared<C> {
    fn drop(&mut self) {
        // Forget this handle's producer lanes and, if it holds no unacknowledged item, its
        // consumer; what it holds stays pending and is redelivered after the visibility
        // timeout. Best effort: the server may be gone.
        let lanes: Vec<String> = self
            .pool
            .lanes()
            .into_iter()
            .map(|l| format!("{}/{l}", self.consumer))
            .collect();
        let result: Result<i64, Error> = self.pool.run(Retry::Never, "close", |link| {
            let mut inv = scripts().retire.key(&self.keys.items);
            inv.key(&self.keys.puts).arg(&self.consumer);
            for lane in &lanes {
                inv.arg(lane);
            }
            inv.invoke(&mut link.conn)
        });
        if let Err(e) = result {
            tracing::debug!(name = %self.name, error = %e, "could not retire a Redis queue handle");
        }
    }
}

/// How long a put may wait for room.
#[derive(Debug, Clone, Copy)]
enum Wait {
    No,
    Until(Instant),
    Forever,
}

/// One handle (not its clones) as a producer of a self-shutting queue.
#[derive(Debug)]
struct Producer {
    id: String,
    /// Whether it has put (and so is known to the server as a producer).
    registered: AtomicBool,
    /// Whether it was closed for puts.
    closed: AtomicBool,
}

impl Producer {
    fn new() -> Arc<Self> {
        Arc::new(Producer {
            id: unique_name(),
            registered: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        })
    }
}

/// Why a put stopped short.
enum Stop {
    Closed,
    Full,
    Timeout,
    Io(io::Error),
}

/// A queue over a Redis Stream: Python's `queue.Queue` shared by every process on every
/// machine that can reach the server. A get acknowledges the item as it delivers it.
///
/// Handles are cheap to clone; clones share the consumer name and the connections. See the
/// [crate](crate) documentation for the guarantees.
pub struct RedisQueue<T, C = Postcard> {
    shared: Arc<Shared<C>>,
    /// This handle (not its clones) as a producer.
    me: Arc<Producer>,
    _items: PhantomData<fn(T) -> T>,
}

impl<T, C> std::fmt::Debug for RedisQueue<T, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueue")
            .field("name", &self.shared.name)
            .field("addr", &self.shared.pool.addr())
            .field("capacity", &self.shared.capacity)
            .finish_non_exhaustive()
    }
}

impl<T, C> Clone for RedisQueue<T, C> {
    /// Another handle on the same queue, sharing this one's connections and consumer name;
    /// it is open for puts even if this one was closed.
    fn clone(&self) -> Self {
        RedisQueue {
            shared: Arc::clone(&self.shared),
            me: Producer::new(),
            _items: PhantomData,
        }
    }
}

impl<T> RedisQueue<T, Postcard> {
    /// Opens the queue `name` on the server at `url` with the default settings (creating it,
    /// unbounded, if it is new).
    pub fn open(url: &str, name: &str) -> Result<Self, Error> {
        Builder::new(url, name).open()
    }

    /// Opens the queue `name`, creating it with room for `maxsize` items if it is new.
    pub fn bounded(url: &str, name: &str, maxsize: usize) -> Result<Self, Error> {
        Builder::new(url, name).maxsize(maxsize).open()
    }
}

impl<T, C: Codec> RedisQueue<T, C> {
    fn from_shared(shared: Arc<Shared<C>>) -> Self {
        RedisQueue {
            shared,
            me: Producer::new(),
            _items: PhantomData,
        }
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The Redis key of the stream holding the items (field `d`, consumer group `conveyor`):
    /// what a redis-py peer reads and writes.
    pub fn stream_key(&self) -> &str {
        &self.shared.keys.items
    }

    /// The Redis key of the dead-letter stream.
    pub fn dead_letter_key(&self) -> &str {
        &self.shared.keys.dead
    }

    /// Python 3.13's `Queue.shutdown(immediate)`, for every handle on every machine: later
    /// puts fail with `Closed`; waiting gets and puts see it within the poll interval. Without
    /// `immediate`, gets drain what is left, then fail with `Closed`; with it, what is not yet
    /// delivered is discarded (and so counts as done for `join`), and gets fail with `Closed`
    /// at once. Answers how many items were discarded.
    pub fn try_shutdown(&self, immediate: bool) -> Result<usize, Error> {
        self.shared.shutdown(immediate)
    }

    /// `len`, with the error it hides: the number of items not yet delivered.
    pub fn try_len(&self) -> Result<usize, Error> {
        let (not_done, pending, _) = self.shared.counts()?;
        Ok(not_done.saturating_sub(pending))
    }

    /// Whether the queue was shut down (by any handle, anywhere).
    pub fn is_shutdown(&self) -> Result<bool, Error> {
        Ok(self.shared.counts()?.2 != "open")
    }

    /// Removes the queue's keys from the server (items, dead letters and all). Handles still
    /// open on it then fail with [`Error::QueueLost`].
    pub fn destroy(&self) -> Result<(), Error> {
        let k = &self.shared.keys;
        self.shared.pool.run(Retry::Safe, "destroy", |link| {
            redis::cmd("DEL")
                .arg(&k.items)
                .arg(&k.meta)
                .arg(&k.dead)
                .arg(&k.puts)
                .arg(&k.puts_at_shutdown)
                .arg(&k.producers)
                .query::<()>(&mut link.conn)
        })
    }

    fn put_one(&self, item: T, wait: Wait) -> Result<(), PutError<T>>
    where
        T: Serialize,
    {
        if self.me.closed.load(Ordering::Acquire) {
            return Err(PutError::Closed(item));
        }
        let mut buf = Vec::new();
        if let Err(source) = self.shared.codec.encode(&item, &mut buf) {
            return Err(PutError::Codec { item, source });
        }
        match self
            .shared
            .put_until(std::slice::from_ref(&buf), wait, &self.me.id)
        {
            (_, None) => {
                self.registered();
                Ok(())
            }
            (_, Some(Stop::Closed)) => Err(PutError::Closed(item)),
            (_, Some(Stop::Full)) => Err(PutError::Full(item)),
            (_, Some(Stop::Timeout)) => Err(PutError::Timeout(item)),
            (_, Some(Stop::Io(source))) => Err(PutError::Io { item, source }),
        }
    }

    /// Puts every item of `items` with one round trip per batch of room (one transaction, or
    /// one script call on a bounded or self-shutting queue), waiting while the queue is full;
    /// the fast way to put many items.
    /// Fails with the items not put (the ones before went in).
    pub fn put_batch(&self, items: Vec<T>) -> Result<(), PutError<Vec<T>>>
    where
        T: Serialize,
    {
        if self.me.closed.load(Ordering::Acquire) {
            return Err(PutError::Closed(items));
        }
        let mut encoded = Vec::with_capacity(items.len());
        for item in &items {
            let mut buf = Vec::new();
            if let Err(source) = self.shared.codec.encode(item, &mut buf) {
                return Err(PutError::Codec {
                    item: items,
                    source,
                });
            }
            encoded.push(buf);
        }
        let (done, stop) = self.shared.put_until(&encoded, Wait::Forever, &self.me.id);
        if done > 0 {
            self.registered();
        }
        let rest = || items.into_iter().skip(done).collect::<Vec<T>>();
        match stop {
            None => Ok(()),
            Some(Stop::Closed) => Err(PutError::Closed(rest())),
            Some(Stop::Full) => Err(PutError::Full(rest())),
            Some(Stop::Timeout) => Err(PutError::Timeout(rest())),
            Some(Stop::Io(source)) => Err(PutError::Io {
                item: rest(),
                source,
            }),
        }
    }

    /// After a put went in: on a self-shutting queue, this handle is now a producer whose
    /// lease a thread renews while it lives.
    fn registered(&self) {
        if !self.shared.auto || self.me.registered.swap(true, Ordering::AcqRel) {
            return;
        }
        self.shared
            .producers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::downgrade(&self.me));
        let weak = Arc::downgrade(&self.shared);
        self.shared.renewer.call_once(|| {
            let period = self.shared.opts.lease / 3;
            let spawned = std::thread::Builder::new()
                .name("conveyor-redis-lease".into())
                .spawn(move || loop {
                    std::thread::sleep(period);
                    let Some(shared) = weak.upgrade() else { return };
                    if let Err(e) = shared.renew_leases() {
                        tracing::warn!(name = %shared.name, error = %e, "could not renew producer leases");
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "no thread to renew producer leases: they run out after the lease");
            }
        });
    }

    fn decode(&self, data: Vec<u8>) -> Result<T, GetError>
    where
        T: DeserializeOwned,
    {
        self.shared.codec.decode(&data).map_err(GetError::Codec)
    }

    fn get_until(&self, deadline: Option<Instant>) -> Result<T, GetError>
    where
        T: DeserializeOwned,
    {
        let data = self.shared.get_until(deadline)?;
        self.decode(data)
    }

    /// The dead letters: items delivered more than `max_deliveries` times, oldest first, with
    /// their original entry id and delivery count.
    pub fn dead_letters(&self) -> Result<Vec<DeadLetter<T>>, Error>
    where
        T: DeserializeOwned,
    {
        let reply: Value = self.shared.pool.run(Retry::Safe, "dead_letters", |link| {
            redis::cmd("XRANGE")
                .arg(&self.shared.keys.dead)
                .arg("-")
                .arg("+")
                .query(&mut link.conn)
        })?;
        let Value::Array(entries) = reply else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            let Value::Array(parts) = entry else { continue };
            let Some(Value::Array(fields)) = parts.get(1) else {
                continue;
            };
            let mut letter = DeadLetter {
                item: Err(CodecError::new(
                    C::NAME,
                    "the dead letter has no data field",
                )),
                id: String::new(),
                deliveries: 0,
            };
            for kv in fields.chunks(2) {
                match (kv.first().and_then(bulk), kv.get(1)) {
                    (Some(b"d"), Some(v)) => {
                        letter.item = self.shared.codec.decode(bulk(v).unwrap_or_default())
                    }
                    (Some(b"id"), Some(v)) => letter.id = text(v).unwrap_or_default(),
                    (Some(b"deliveries"), Some(v)) => {
                        letter.deliveries = int(v).unwrap_or(0).max(0) as u64
                    }
                    _ => {}
                }
            }
            out.push(letter);
        }
        Ok(out)
    }
}

/// An item moved to the dead-letter stream after too many deliveries.
#[derive(Debug)]
pub struct DeadLetter<T> {
    /// The item, or why it does not decode (a poison item may be garbage).
    pub item: Result<T, CodecError>,
    /// Its entry id in the queue's stream.
    pub id: String,
    /// How many times it was delivered.
    pub deliveries: u64,
}

impl<T: Serialize + DeserializeOwned, C: Codec> Channel<T> for RedisQueue<T, C> {
    fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_one(item, Wait::Forever)
    }

    fn try_put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_one(item, Wait::No)
    }

    fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.put_one(item, Wait::Until(deadline)),
            // beyond what the clock can hold: as good as forever
            None => self.put_one(item, Wait::Forever),
        }
    }

    fn get(&self) -> Result<T, GetError> {
        self.get_until(None)
    }

    fn try_get(&self) -> Result<T, GetError> {
        match self.shared.take().map_err(io::Error::from)? {
            Taken::Item(id, data) => {
                let data = self.shared.delivered(id, data);
                self.decode(data)
            }
            Taken::Empty => Err(GetError::Empty),
            Taken::Closed => Err(GetError::Closed),
        }
    }

    fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.get_until(Instant::now().checked_add(timeout))
    }

    /// Python 3.13's `Queue.shutdown(immediate)`, for every handle on every machine (see
    /// [`try_shutdown`](RedisQueue::try_shutdown)). Fails if it did not reach the server: the
    /// queue may not be shut down, and its consumers may not learn of it.
    fn shutdown(&self, immediate: bool) -> Result<(), Unavailable> {
        self.try_shutdown(immediate)
            .map(drop)
            .map_err(|e| e.unavailable("shutdown", &self.shared.name))
    }

    /// Python's `multiprocessing.Queue.close()`: this handle puts no more (its later puts fail
    /// with `Closed`); other handles and clones, here and elsewhere, are not affected. To tell
    /// consumers that producers are done, call [`shutdown`](Channel::shutdown).
    ///
    /// On a queue built to shut itself down, a handle that has put tells the server it is
    /// done; if that does not reach the server this fails (the handle is closed all the same),
    /// and the queue learns only when the producer's lease runs out.
    fn close(&self) -> Result<(), Unavailable> {
        if self.me.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        if self.me.registered.load(Ordering::Acquire) {
            self.shared
                .leave(&self.me.id)
                .map_err(|e| e.unavailable("close", &self.shared.name))?;
        }
        Ok(())
    }
}

impl<T, C> Drop for RedisQueue<T, C> {
    /// A handle that has put and goes without closing counts as closed.
    fn drop(&mut self) {
        if self.me.registered.load(Ordering::Acquire)
            && !self.me.closed.swap(true, Ordering::AcqRel)
        {
            if let Err(e) = self.shared.leave(&self.me.id) {
                tracing::debug!(name = %self.shared.name, error = %e, "a dropped producer did not reach Redis");
            }
        }
    }
}

/// Every answer but the capacity (fixed when the queue was made) is a round trip; a server
/// that cannot be reached is an [`Unavailable`] whose source is the [`Error`].
impl<T, C: Codec> QueueInfo for RedisQueue<T, C> {
    /// The number of items not yet delivered ([`try_len`](RedisQueue::try_len) gives the
    /// [`Error`] itself).
    fn len(&self) -> Result<usize, Unavailable> {
        self.try_len()
            .map_err(|e| e.unavailable("len", &self.shared.name))
    }

    fn is_empty(&self) -> Result<bool, Unavailable> {
        self.try_len()
            .map(|n| n == 0)
            .map_err(|e| e.unavailable("is_empty", &self.shared.name))
    }

    fn is_full(&self) -> Result<bool, Unavailable> {
        match self.shared.capacity {
            None => Ok(false),
            Some(c) => self
                .try_len()
                .map(|n| n >= c)
                .map_err(|e| e.unavailable("is_full", &self.shared.name)),
        }
    }

    /// Known here: it never changes.
    fn capacity(&self) -> Result<Option<usize>, Unavailable> {
        Ok(self.shared.capacity)
    }
}

/// A queue over a Redis Stream with `task_done`/`join`: Python's
/// `multiprocessing.JoinableQueue` across machines. An item stays pending in the consumer
/// group until `task_done` acknowledges it; if its consumer dies first, it is delivered again
/// to another after the visibility timeout (at least once).
///
/// `task_done` acknowledges the oldest item this handle (or a clone) took and has not
/// acknowledged; `join` waits until the stream holds nothing undelivered and nothing pending.
pub struct JoinableRedisQueue<T, C = Postcard> {
    queue: RedisQueue<T, C>,
}

impl<T, C> std::fmt::Debug for JoinableRedisQueue<T, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("JoinableRedisQueue")
            .field(&self.queue)
            .finish()
    }
}

impl<T, C> Clone for JoinableRedisQueue<T, C> {
    fn clone(&self) -> Self {
        JoinableRedisQueue {
            queue: self.queue.clone(),
        }
    }
}

impl<T> JoinableRedisQueue<T, Postcard> {
    /// Opens the joinable queue `name` on the server at `url` with the default settings.
    pub fn open(url: &str, name: &str) -> Result<Self, Error> {
        Builder::new(url, name).open_joinable()
    }

    /// Opens the joinable queue `name`, creating it with room for `maxsize` items if new.
    pub fn bounded(url: &str, name: &str, maxsize: usize) -> Result<Self, Error> {
        Builder::new(url, name).maxsize(maxsize).open_joinable()
    }
}

impl<T, C: Codec> JoinableRedisQueue<T, C> {
    /// The queue without `task_done`/`join` (sharing this handle's items taken).
    pub fn as_queue(&self) -> &RedisQueue<T, C> {
        &self.queue
    }

    /// See [`RedisQueue::try_shutdown`].
    pub fn try_shutdown(&self, immediate: bool) -> Result<usize, Error> {
        self.queue.try_shutdown(immediate)
    }

    /// See [`RedisQueue::put_batch`].
    pub fn put_batch(&self, items: Vec<T>) -> Result<(), PutError<Vec<T>>>
    where
        T: Serialize,
    {
        self.queue.put_batch(items)
    }

    /// See [`RedisQueue::dead_letters`].
    pub fn dead_letters(&self) -> Result<Vec<DeadLetter<T>>, Error>
    where
        T: DeserializeOwned,
    {
        self.queue.dead_letters()
    }

    /// See [`RedisQueue::destroy`].
    pub fn destroy(&self) -> Result<(), Error> {
        self.queue.destroy()
    }

    /// See [`RedisQueue::stream_key`].
    pub fn stream_key(&self) -> &str {
        self.queue.stream_key()
    }

    /// How many items taken through this handle wait for `task_done`.
    pub fn unfinished_here(&self) -> usize {
        self.queue
            .shared
            .taken
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// `join_timeout`, with the error it hides.
    pub fn try_join_timeout(&self, timeout: Option<Duration>) -> Result<bool, Error> {
        self.queue
            .shared
            .join_until(timeout.and_then(|t| Instant::now().checked_add(t)))
    }
}

impl<T: Serialize + DeserializeOwned, C: Codec> Channel<T> for JoinableRedisQueue<T, C> {
    fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.queue.put(item)
    }
    fn try_put(&self, item: T) -> Result<(), PutError<T>> {
        self.queue.try_put(item)
    }
    fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.queue.put_timeout(item, timeout)
    }
    fn get(&self) -> Result<T, GetError> {
        self.queue.get()
    }
    fn try_get(&self) -> Result<T, GetError> {
        self.queue.try_get()
    }
    fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.queue.get_timeout(timeout)
    }
    /// See [`RedisQueue`'s](RedisQueue) `shutdown`. With `immediate`, the items discarded count
    /// as done, so `join` returns once the items already taken are done (CPython gh-137088).
    fn shutdown(&self, immediate: bool) -> Result<(), Unavailable> {
        self.queue.shutdown(immediate)
    }
    fn close(&self) -> Result<(), Unavailable> {
        self.queue.close()
    }
}

impl<T, C: Codec> QueueInfo for JoinableRedisQueue<T, C> {
    fn len(&self) -> Result<usize, Unavailable> {
        self.queue.len()
    }
    fn is_empty(&self) -> Result<bool, Unavailable> {
        self.queue.is_empty()
    }
    fn is_full(&self) -> Result<bool, Unavailable> {
        self.queue.is_full()
    }
    fn capacity(&self) -> Result<Option<usize>, Unavailable> {
        self.queue.capacity()
    }
}

impl<T, C: Codec> Joinable for JoinableRedisQueue<T, C> {
    fn task_done(&self) -> Result<(), TaskDoneError> {
        let shared = &self.queue.shared;
        let id = shared
            .taken
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front();
        let Some(id) = id else {
            return Err(TaskDoneError::TooManyCalls);
        };
        // 0 means another consumer took it over after the visibility timeout and acknowledged
        // it first: it is done either way.
        match shared.ack(std::slice::from_ref(&id)) {
            Ok(_) => Ok(()),
            Err(e) => {
                shared
                    .taken
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push_front(id);
                Err(TaskDoneError::Unavailable(
                    e.unavailable("task_done", &shared.name),
                ))
            }
        }
    }

    /// Waits until no item is undelivered or pending. A connection that breaks while waiting
    /// is made again (a few times in a row at most, each within the reconnect budget); a
    /// server that stays unreachable, or a queue gone from it ([`Error::QueueLost`]), fails
    /// the join, since whether the work was done cannot be known.
    fn join(&self) -> Result<(), Unavailable> {
        /// Broken connections in a row a join rides through before it reports one.
        const RETRIES: u32 = 3;
        let mut broken = 0;
        loop {
            match self.try_join_timeout(None) {
                Ok(_) => return Ok(()),
                Err(e) if e.is_connection_dropped() && broken < RETRIES => {
                    broken += 1;
                    tracing::debug!(name = %self.queue.shared.name, error = %e, "join: the connection broke; waiting on a new one");
                }
                Err(e) => return Err(e.unavailable("join", &self.queue.shared.name)),
            }
        }
    }

    fn join_timeout(&self, timeout: Duration) -> Result<bool, Unavailable> {
        self.try_join_timeout(Some(timeout))
            .map_err(|e| e.unavailable("join_timeout", &self.queue.shared.name))
    }
}
