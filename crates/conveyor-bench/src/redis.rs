//! Transports over a Redis server: conveyor's `RedisQueue`, the raw redis-rs loop a user would
//! otherwise write (XADD; XREADGROUP then XACK), and redis-py doing the same
//! (`python/redis_bench.py`).
//!
//! The server is `CONVEYOR_REDIS_URL`, or a `redis-server` from `PATH` started once for the
//! run (`conveyor_redis::Target`); without either the rows say why they are skipped. The
//! producer, consumer and echo are child processes (conveyor-process for the Rust ones,
//! `multiprocessing` for Python), connected to the server over TCP on 127.0.0.1, and run the
//! same loops as every other process transport ([`produce`], [`consume`], [`echo`], [`ping`]).
//! Measured: 1 producer / 1 consumer at 8 B, 64 B and 4 KiB, and the ping-pong round trip;
//! bigger payloads and 4/4 measure the server more than the client. conveyor's queue is
//! unbounded, as the raw loop is; the "bounded" row (the workload's bound, puts through the
//! put script) shows what checking a bound costs.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use conveyor_core::{Channel, Codec, GetError, Postcard, PutError};
use conveyor_process::{Child, Process};
use conveyor_redis::{Builder, RedisQueue, Target};
use conveyor_shm::ShmQueue;
use serde::{Deserialize, Serialize};

use crate::payload::{Msg, Payload};
use crate::peers::Duplex;
use crate::process::Report;
use crate::transport::{Family, Scope, Transport, TransportInfo};
use crate::workload::{
    check_sum, consume, echo, ping, pingpong_total, produce, RunError, Sample, Workload,
};

/// The name of the Redis children's entry point.
pub const REDIS_CHILD_ENTRY: &str = "conveyor_bench_redis_child";

/// The redis-py script, embedded so the harness works from any directory.
pub const PY_SCRIPT: &str = include_str!("../python/redis_bench.py");

/// The table name of the redis-py original.
pub const PY_NAME: &str = "python redis-py stream";

const LIMIT: Duration = Duration::from_secs(120);

/// The server for the whole run, started at the first use; `Err` says why there is none.
static SERVER: Mutex<Option<Result<RunServer, String>>> = Mutex::new(None);

/// The server of a run (`None` once stopped) and its URL.
type RunServer = (Option<Target>, String);

fn server() -> Result<String, RunError> {
    let mut guard = SERVER.lock().unwrap_or_else(|p| p.into_inner());
    let state = guard.get_or_insert_with(|| match Target::from_env() {
        Ok(Some(t)) => {
            let url = t.url();
            Ok((Some(t), url))
        }
        Ok(None) => {
            Err("no Redis server: install redis-server or set CONVEYOR_REDIS_URL".to_string())
        }
        Err(e) => Err(e),
    });
    state
        .as_ref()
        .map(|(_, url)| url.clone())
        .map_err(|e| RunError::new(e.clone()))
}

/// Stops the redis-server started for the run, if one was (statics are never dropped, so the
/// harness's `main` calls this before it returns; a server left running would outlive it).
pub fn stop_server() {
    let mut guard = SERVER.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(Ok((target, _))) = guard.as_mut() {
        drop(target.take());
    }
}

fn unique(what: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("bench-{what}-{}-{n}", std::process::id())
}

fn redis_err(what: &str, e: impl std::fmt::Display) -> RunError {
    RunError::new(format!("redis {what}: {e}"))
}

/// The raw loop over one stream: put is XADD, get is XREADGROUP (BLOCK) then XACK, each
/// waiting for its answer; items encoded with postcard, as conveyor's are.
pub struct RawStream {
    conn: Mutex<redis::Connection>,
    stream: String,
    consumer: String,
}

impl std::fmt::Debug for RawStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawStream")
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

/// The consumer group of the raw loop's streams.
const RAW_GROUP: &str = "bench";

impl RawStream {
    /// Connects to `url` for the stream `stream`, creating it and its group if needed.
    pub fn open(url: &str, stream: &str) -> Result<Self, RunError> {
        let client = redis::Client::open(url).map_err(|e| redis_err("url", e))?;
        let mut conn = client
            .get_connection()
            .map_err(|e| redis_err("connect", e))?;
        let created: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(stream)
            .arg(RAW_GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query(&mut conn);
        if let Err(e) = created {
            if e.code() != Some("BUSYGROUP") {
                return Err(redis_err("XGROUP CREATE", e));
            }
        }
        Ok(RawStream {
            conn: Mutex::new(conn),
            stream: stream.to_string(),
            consumer: unique("c"),
        })
    }

    fn read(&self, block_ms: Option<u64>) -> Result<Option<Msg>, GetError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(RAW_GROUP)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(1);
        if let Some(ms) = block_ms {
            cmd.arg("BLOCK").arg(ms);
        }
        cmd.arg("STREAMS").arg(&self.stream).arg(">");
        let reply: redis::streams::StreamReadReply = cmd
            .query(&mut *conn)
            .map_err(|e| GetError::Io(std::io::Error::other(e)))?;
        let Some(entry) = reply.keys.first().and_then(|k| k.ids.first()) else {
            return Ok(None);
        };
        let data: Vec<u8> = entry
            .get("d")
            .ok_or_else(|| GetError::Io(std::io::Error::other("an entry without a d field")))?;
        redis::cmd("XACK")
            .arg(&self.stream)
            .arg(RAW_GROUP)
            .arg(&entry.id)
            .query::<i64>(&mut *conn)
            .map_err(|e| GetError::Io(std::io::Error::other(e)))?;
        Ok(Some(Postcard.decode(&data)?))
    }
}

impl Channel<Msg> for RawStream {
    fn put(&self, item: Msg) -> Result<(), PutError<Msg>> {
        let mut buf = Vec::new();
        if let Err(source) = Postcard.encode(&item, &mut buf) {
            return Err(PutError::Codec { item, source });
        }
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        match redis::cmd("XADD")
            .arg(&self.stream)
            .arg("*")
            .arg("d")
            .arg(buf)
            .query::<String>(&mut *conn)
        {
            Ok(_) => Ok(()),
            Err(e) => Err(PutError::Io {
                item,
                source: std::io::Error::other(e),
            }),
        }
    }
    fn try_put(&self, item: Msg) -> Result<(), PutError<Msg>> {
        self.put(item)
    }
    fn put_timeout(&self, item: Msg, _timeout: Duration) -> Result<(), PutError<Msg>> {
        self.put(item)
    }
    fn get(&self) -> Result<Msg, GetError> {
        loop {
            if let Some(m) = self.read(Some(1000))? {
                return Ok(m);
            }
        }
    }
    fn try_get(&self) -> Result<Msg, GetError> {
        self.read(None)?.ok_or(GetError::Empty)
    }
    fn get_timeout(&self, timeout: Duration) -> Result<Msg, GetError> {
        let ms = (timeout.as_millis() as u64).max(1);
        self.read(Some(ms))?.ok_or(GetError::Timeout)
    }
    /// The raw loop has no shutdown: the workloads never call it.
    fn shutdown(&self, _immediate: bool) -> Result<(), conveyor_core::Unavailable> {
        Ok(())
    }
    /// The raw loop has no close: the workloads never call it.
    fn close(&self) -> Result<(), conveyor_core::Unavailable> {
        Ok(())
    }
}

/// Which Rust side runs in the children.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Side {
    /// conveyor's `RedisQueue`.
    Conveyor,
    /// The raw redis-rs loop.
    Raw,
}

/// What a Redis child does.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub enum RedisRole {
    /// Put messages `0..n` of `size` bytes.
    Produce {
        /// How many.
        n: u64,
        /// Payload bytes.
        size: usize,
    },
    /// Get `n` messages of `size` bytes.
    Consume {
        /// How many.
        n: u64,
        /// Payload bytes.
        size: usize,
    },
    /// Get from the first queue and put into the second, `n` times.
    Echo {
        /// How many.
        n: u64,
    },
}

/// A Redis child's arguments.
#[derive(Debug, Serialize, Deserialize)]
pub struct RedisJob {
    side: Side,
    role: RedisRole,
    url: String,
    /// The queue it gets from (consumer, echo) or puts into (producer).
    first: String,
    /// The queue an echo puts into.
    second: String,
    go: ShmQueue<u8>,
    reports: ShmQueue<Report>,
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn open_side(side: Side, url: &str, name: &str) -> Result<Box<dyn Channel<Msg>>, RunError> {
    Ok(match side {
        Side::Conveyor => Box::new(
            Builder::new(url, name)
                .open::<Msg>()
                .map_err(|e| redis_err("open", e))?,
        ),
        Side::Raw => Box::new(RawStream::open(url, name)?),
    })
}

/// The Redis children's entry point: opens its queues, waits for "go", runs, reports.
pub fn redis_child(job: RedisJob) {
    let result = (|| {
        let first = open_side(job.side, &job.url, &job.first)?;
        let second = match job.role {
            RedisRole::Echo { .. } => Some(open_side(job.side, &job.url, &job.second)?),
            _ => None,
        };
        job.go
            .get_timeout(LIMIT)
            .map_err(|e| RunError::new(format!("no go signal: {e}")))?;
        let start_ns = now_ns();
        let sum = match (job.role, second) {
            (RedisRole::Produce { n, size }, _) => {
                produce(&first, 0, n, &Payload::filled(size)).map(|_| 0)?
            }
            (RedisRole::Consume { n, size }, _) => consume(&first, n, size)?,
            (RedisRole::Echo { n }, Some(second)) => {
                echo(&Duplex::new(second, first), n).map(|_| 0)?
            }
            (RedisRole::Echo { .. }, None) => {
                return Err(RunError::new("an echo needs two queues"))
            }
        };
        Ok((sum, start_ns, now_ns()))
    })();
    let report = match result {
        Ok((sum, start_ns, end_ns)) => Report {
            sum,
            start_ns,
            end_ns,
            error: None,
        },
        Err(e) => Report {
            sum: 0,
            start_ns: 0,
            end_ns: 0,
            error: Some(e.0),
        },
    };
    let _ = job.reports.put(report);
}

/// A Redis transport with Rust children.
#[derive(Debug)]
pub struct RedisTransport {
    info: TransportInfo,
    side: Side,
    /// conveyor's queue bounded to the workload's capacity (its puts then run the put script,
    /// which checks the bound); otherwise unbounded, as the raw loop is.
    bounded: bool,
}

fn supported(workload: &Workload) -> Result<(), String> {
    match *workload {
        Workload::Throughput {
            producers: 1,
            consumers: 1,
            size,
        } if size <= 4096 => Ok(()),
        Workload::Throughput { .. } => Err(
            "measured at 1 producer / 1 consumer up to 4 KiB (beyond that it measures the server)"
                .into(),
        ),
        Workload::PingPong { .. } => Ok(()),
        Workload::Joinable { .. } => Err("not measured for Redis".into()),
        _ => Err("not a queue workload".into()),
    }
}

struct Children {
    go: ShmQueue<u8>,
    reports: ShmQueue<Report>,
    children: Vec<Child>,
}

impl Children {
    fn new() -> Result<Self, RunError> {
        let err = |e: conveyor_shm::ShmError| RunError::new(format!("control queue: {e}"));
        Ok(Children {
            go: ShmQueue::builder().ring_bytes(4096).create().map_err(err)?,
            reports: ShmQueue::builder()
                .ring_bytes(16 << 10)
                .create()
                .map_err(err)?,
            children: Vec::new(),
        })
    }

    fn start(
        &mut self,
        side: Side,
        role: RedisRole,
        url: &str,
        first: &str,
        second: &str,
    ) -> Result<(), RunError> {
        let job = RedisJob {
            side,
            role,
            url: url.to_string(),
            first: first.to_string(),
            second: second.to_string(),
            go: self.go.clone(),
            reports: self.reports.clone(),
        };
        let child = Process::new(REDIS_CHILD_ENTRY, job)
            .daemon(true)
            .start()
            .map_err(|e| RunError::new(format!("could not start a child: {e}")))?;
        self.children.push(child);
        Ok(())
    }

    fn go(&self) -> Result<(), RunError> {
        for _ in &self.children {
            self.go
                .put(1)
                .map_err(|e| RunError::new(format!("could not signal go: {e}")))?;
        }
        Ok(())
    }

    /// Collects one report per child: (sum, ns from the first start to the last end).
    fn collect(&self) -> Result<(u64, u64), RunError> {
        let (mut sum, mut first, mut last) = (0u64, u64::MAX, 0u64);
        let deadline = Instant::now() + LIMIT;
        let mut got = 0;
        while got < self.children.len() {
            match self.reports.get_timeout(Duration::from_millis(100)) {
                Ok(r) => {
                    if let Some(e) = r.error {
                        return Err(RunError::new(format!("a child failed: {e}")));
                    }
                    sum = sum.wrapping_add(r.sum);
                    first = first.min(r.start_ns);
                    last = last.max(r.end_ns);
                    got += 1;
                }
                Err(e) if e.is_timeout() => {
                    if let Some(c) = self
                        .children
                        .iter()
                        .find(|c| c.exit_status().is_some_and(|s| !s.success()))
                    {
                        return Err(RunError::new(format!(
                            "child {} ended without a report",
                            c.pid()
                        )));
                    }
                    if Instant::now() > deadline {
                        return Err(RunError::new("no report from a child within 120 s"));
                    }
                }
                Err(e) => return Err(RunError::new(format!("report queue: {e}"))),
            }
        }
        Ok((sum, last.saturating_sub(first)))
    }

    fn finish(self, ok: bool) {
        for c in &self.children {
            if !ok {
                let _ = c.kill();
            }
            let _ = c.join_timeout(LIMIT);
        }
    }
}

/// Removes a run's keys (best effort).
fn forget(url: &str, side: Side, names: &[&str]) {
    let Ok(client) = redis::Client::open(url) else {
        return;
    };
    let Ok(mut conn) = client.get_connection() else {
        return;
    };
    for name in names {
        let keys: Vec<String> = match side {
            Side::Raw => vec![name.to_string()],
            Side::Conveyor => [
                "items",
                "meta",
                "dead",
                "puts",
                "puts-at-shutdown",
                "producers",
            ]
            .iter()
            .map(|k| format!("conveyor:{{{name}}}:{k}"))
            .collect(),
        };
        let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut conn);
    }
}

impl RedisTransport {
    fn throughput(&self, size: usize, cap: usize, count: usize) -> Result<Sample, RunError> {
        let url = server()?;
        let name = unique("q");
        // The raw loop has no bound, and neither has the row compared with it; the bounded row
        // shows what checking the bound costs.
        match (self.side, self.bounded) {
            (Side::Conveyor, true) => {
                RedisQueue::<Msg>::bounded(&url, &name, cap).map_err(|e| redis_err("open", e))?;
            }
            (Side::Conveyor, false) => {
                RedisQueue::<Msg>::open(&url, &name).map_err(|e| redis_err("open", e))?;
            }
            (Side::Raw, _) => {
                RawStream::open(&url, &name)?;
            }
        }
        let mut run = Children::new()?;
        let n = count as u64;
        run.start(self.side, RedisRole::Produce { n, size }, &url, &name, "")?;
        run.start(self.side, RedisRole::Consume { n, size }, &url, &name, "")?;
        run.go()?;
        let collected = run.collect();
        run.finish(collected.is_ok());
        forget(&url, self.side, &[&name]);
        let (sum, elapsed_ns) = collected?;
        check_sum(sum, count)?;
        Ok(Sample::Throughput {
            messages: n,
            size: size as u64,
            elapsed_ns,
        })
    }

    fn pingpong(&self, size: usize, rounds: usize) -> Result<Sample, RunError> {
        let url = server()?;
        let (to_echo, from_echo) = (unique("ping"), unique("pong"));
        let mine = Duplex::new(
            open_side(self.side, &url, &to_echo)?,
            open_side(self.side, &url, &from_echo)?,
        );
        let mut run = Children::new()?;
        let n = pingpong_total(rounds);
        run.start(self.side, RedisRole::Echo { n }, &url, &to_echo, &from_echo)?;
        run.go()?;
        let sample = ping(&mine, size, rounds);
        let collected = sample.and_then(|s| run.collect().map(|_| s));
        run.finish(collected.is_ok());
        drop(mine);
        forget(&url, self.side, &[&to_echo, &from_echo]);
        collected
    }
}

impl Transport for RedisTransport {
    fn info(&self) -> &TransportInfo {
        &self.info
    }

    fn supports(&self, workload: &Workload) -> Result<(), String> {
        if self.bounded && matches!(workload, Workload::PingPong { .. }) {
            return Err("a ping-pong never fills a queue: see the unbounded row".into());
        }
        supported(workload)
    }

    fn available(&self) -> Result<(), String> {
        server().map(|_| ()).map_err(|e| e.0)
    }

    fn run(&self, workload: &Workload, count: usize) -> Result<Sample, RunError> {
        match *workload {
            Workload::Throughput { size, .. } => self.throughput(size, workload.capacity(), count),
            Workload::PingPong { size } => self.pingpong(size, count),
            _ => Err(RunError::new("not measured for Redis")),
        }
    }
}

/// redis-py doing the same, in `multiprocessing` children.
#[derive(Debug)]
pub struct RedisPy {
    info: TransportInfo,
    python: String,
}

impl RedisPy {
    fn run_script(&self, args: &[String]) -> Result<Sample, RunError> {
        let out = std::process::Command::new(&self.python)
            .arg("-c")
            .arg(PY_SCRIPT)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| RunError::new(format!("could not run {}: {e}", self.python)))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(RunError::new(format!(
                "redis-py run failed ({}): {}",
                out.status,
                err.lines().last().unwrap_or("").trim()
            )));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().last().unwrap_or("");
        serde_json::from_str(line).map_err(|e| {
            RunError::new(format!("could not parse the redis-py result {line:?}: {e}"))
        })
    }
}

impl Transport for RedisPy {
    fn info(&self) -> &TransportInfo {
        &self.info
    }

    fn supports(&self, workload: &Workload) -> Result<(), String> {
        supported(workload)
    }

    fn available(&self) -> Result<(), String> {
        let ok = std::process::Command::new(&self.python)
            .args(["-c", "import redis"])
            .stdin(std::process::Stdio::null())
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !ok {
            return Err(format!(
                "{} has no redis package (pip install redis): redis-py rows skipped",
                self.python
            ));
        }
        server().map(|_| ()).map_err(|e| e.0)
    }

    fn run(&self, workload: &Workload, count: usize) -> Result<Sample, RunError> {
        let url = server()?;
        let stream = unique("py");
        let args = match *workload {
            Workload::Throughput { size, .. } => vec![
                "throughput".to_string(),
                url.clone(),
                stream.clone(),
                size.to_string(),
                count.to_string(),
            ],
            Workload::PingPong { size } => vec![
                "pingpong".to_string(),
                url.clone(),
                stream.clone(),
                size.to_string(),
                count.to_string(),
            ],
            _ => return Err(RunError::new("not measured for Redis")),
        };
        let result = self.run_script(&args);
        forget(
            &url,
            Side::Raw,
            &[
                &stream,
                &format!("{stream}-ping"),
                &format!("{stream}-pong"),
            ],
        );
        result
    }
}

/// The Redis transports: conveyor's, the raw redis-rs loop, redis-py.
pub fn transports() -> Vec<Arc<dyn Transport>> {
    let python = std::env::var("CONVEYOR_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    vec![
        Arc::new(RedisTransport {
            info: TransportInfo::new(
                "conveyor RedisQueue",
                Scope::Process,
                Family::Conveyor,
                Some(PY_NAME),
            ),
            side: Side::Conveyor,
            bounded: false,
        }),
        Arc::new(RedisTransport {
            info: TransportInfo::new(
                "conveyor RedisQueue bounded",
                Scope::Process,
                Family::Conveyor,
                Some(PY_NAME),
            ),
            side: Side::Conveyor,
            bounded: true,
        }),
        Arc::new(RedisTransport {
            info: TransportInfo::new(
                "redis-rs XADD/XREADGROUP/XACK",
                Scope::Process,
                Family::RustPeer,
                Some(PY_NAME),
            ),
            side: Side::Raw,
            bounded: false,
        }),
        Arc::new(RedisPy {
            info: TransportInfo::new(PY_NAME, Scope::Process, Family::Python, None),
            python,
        }),
    ]
}
