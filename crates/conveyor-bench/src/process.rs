//! Transports between processes: every producer, consumer and echo runs in a child process
//! started with `conveyor-process`, and runs the same loops as the thread workloads
//! ([`produce`], [`consume`], [`echo`], ...), generic over [`Channel`].
//!
//! The binary that runs these must call [`init`] first in `main` (it registers the child's
//! entry point, and in a child runs it and exits).
//!
//! The transports: conveyor's `ShmQueue`, `JoinableShmQueue`, pipe `Connection`, and the
//! Manager's queue and dict (the manager server runs on threads of the harness); the Rust
//! peers ipmpsc and ipc-channel, through the adapters in [`peers`](crate::peers). A
//! point-to-point or single-consumer transport says so for the 4 producers/4 consumers
//! workload instead of running it.
//!
//! Each run: the parent creates the channel and two small control queues in shared memory (a
//! "go" queue and a "report" queue), starts the children with their handles in the arguments,
//! each child opens its channel (connects, maps, takes its ipc-channel end) and waits for "go";
//! the parent puts one "go" token per child and collects one report per child: the sum of the sequence numbers it took and the
//! times it started and finished (`CLOCK_REALTIME`, comparable across processes). The elapsed
//! time is from the first start to the last finish, as in the thread workloads. A child that
//! dies without reporting fails the run instead of hanging it.

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use conveyor_core::{Channel, Joinable};
use conveyor_pipe::{pipe, pipe_oneway, Connection, PipeBuilder};
use conveyor_process::{Child, Process};
use conveyor_shm::{JoinableShmQueue, ShmQueue};
use serde::{Deserialize, Serialize};

use crate::payload::{Msg, Payload};
use crate::peers::{Duplex, IpcChannelEnd, IpmpscChannel, RawFramed};
use crate::python::python_name;
use crate::transport::{Family, Scope, Transport, TransportInfo};
use crate::workload::{
    check_sum, consume, consume_task_done, echo, ping, pingpong_total, produce, round_count,
    RunError, Sample, Workload,
};

/// The name of the children's entry point.
pub const CHILD_ENTRY: &str = "conveyor_bench_child";

/// How long the parent waits for a child's report before it gives up.
const REPORT_LIMIT: Duration = Duration::from_secs(120);

/// Registers the child entry points (the process transports' and the Redis ones; the pool's
/// worker registers itself); in a child, runs it and exits. Call first in `main`, and keep the guard until
/// `main` ends (see [`conveyor_process::InitGuard`]).
pub fn init() -> conveyor_process::InitGuard {
    conveyor_pool::register(&crate::pool::tasks());
    conveyor_process::init(&[
        conveyor_process::entry!("conveyor_bench_child" => bench_child),
        conveyor_process::entry!("conveyor_bench_redis_child" => crate::redis::redis_child),
    ])
}

/// One end of a pipe, passed to a child as an inherited descriptor.
#[derive(Debug, Serialize, Deserialize)]
pub struct PipeEnd(#[serde(with = "conveyor_core::handoff::fd")] OwnedFd);

impl PipeEnd {
    fn new(conn: Connection) -> Self {
        PipeEnd(conn.into_fd())
    }

    fn open(self) -> Result<Connection, RunError> {
        Connection::from_fd(self.0)
            .map_err(|e| RunError::new(format!("could not rebuild the pipe end: {e}")))
    }
}

/// The channel a child works on.
#[derive(Debug, Serialize, Deserialize)]
pub enum Endpoint {
    /// A shared-memory queue.
    Shm(ShmQueue<Msg>),
    /// A joinable shared-memory queue.
    JoinableShm(JoinableShmQueue<Msg>),
    /// Two shared-memory queues: gets from the first, puts into the second (an echo's end).
    ShmPair(ShmQueue<Msg>, ShmQueue<Msg>),
    /// One end of a pipe.
    Pipe(PipeEnd),
    /// One end of a pipe whose sends are buffered until a flush (or a receive, or the drop).
    PipeBuffered(PipeEnd),
    /// One end of a pipe whose messages travel through shared memory
    /// (`PipeBuilder::shared_memory`); the connection travels whole (its rings by name).
    PipeShm(Box<Connection>),
    /// One end of a duplex pipe whose messages move to a pair of OS pipes on arrival: this end
    /// starts the move (`Connection::move_to_pipes`, true) or accepts it (false).
    PipePipes(PipeEnd, bool),
    /// One end of a raw socketpair with length-prefixed frames (the baseline).
    RawSocket(PipeEnd),
    /// A manager's queue: the server's endpoint, the queue's name and bound.
    Manager(conveyor_manager::Endpoint, String, usize),
    /// Two manager queues: gets from the first name, puts into the second (an echo's end).
    ManagerPair(conveyor_manager::Endpoint, String, String),
    /// An ipmpsc ring by path: whether this end sends, whether it receives.
    Ipmpsc(String, bool, bool),
    /// Two ipmpsc rings: receives from the first path, sends into the second (an echo's end).
    IpmpscPair(String, String),
    /// An ipc-channel end, handed over through the one-shot server of this name.
    IpcChannel(String),
    /// A manager's dict: the server's endpoint and the dict's name.
    ManagerDict(conveyor_manager::Endpoint, String),
}

/// The ipc-channel halves a child's end is made of.
type IpcEnds = (
    Option<ipc_channel::ipc::IpcSender<Msg>>,
    Option<ipc_channel::ipc::IpcReceiver<Msg>>,
);

fn ipc_err(what: &str, e: impl std::fmt::Display) -> RunError {
    RunError::new(format!("ipc-channel {what}: {e}"))
}

/// In a child: connects to the parent's one-shot server, sends it a sender for the end, and
/// receives the end. (ipc-channel's handles travel only through ipc-channel itself.)
fn ipc_child_end(server: &str) -> Result<IpcChannelEnd<Msg>, RunError> {
    let (btx, brx) = ipc_channel::ipc::channel::<IpcEnds>().map_err(|e| ipc_err("channel", e))?;
    let boot = ipc_channel::ipc::IpcSender::<ipc_channel::ipc::IpcSender<IpcEnds>>::connect(
        server.to_string(),
    )
    .map_err(|e| ipc_err("connect", e))?;
    boot.send(btx).map_err(|e| ipc_err("bootstrap send", e))?;
    let (tx, rx) = brx.recv().map_err(|e| ipc_err("bootstrap receive", e))?;
    Ok(IpcChannelEnd::new(tx, rx))
}

/// What a child does.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub enum Role {
    /// Put messages `base..base + n` of `size` bytes.
    Produce {
        /// First sequence number.
        base: u64,
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
    /// Get `n` messages, `task_done` after each.
    ConsumeTaskDone {
        /// How many.
        n: u64,
    },
    /// Send back `n` messages.
    Echo {
        /// How many.
        n: u64,
    },
    /// Set the keys `first, first + step, ...` (`n` of them) of a dict to `size`-byte values.
    DictWrite {
        /// First key.
        first: u64,
        /// Distance between keys.
        step: u64,
        /// How many.
        n: u64,
        /// Payload bytes.
        size: usize,
    },
    /// Remove the keys `first, first + step, ...` (`n` of them) from a dict, each as soon as
    /// a writer has set it (polling, as the Python original does).
    DictTake {
        /// First key.
        first: u64,
        /// Distance between keys.
        step: u64,
        /// How many.
        n: u64,
        /// Payload bytes.
        size: usize,
    },
}

/// What a child reports when it is done.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// The sum of the sequence numbers it took (consumers).
    pub sum: u64,
    /// When it got "go", ns since the Unix epoch.
    pub start_ns: u64,
    /// When it finished, ns since the Unix epoch.
    pub end_ns: u64,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// A child's arguments: its role, its channel, and the control queues.
#[derive(Debug, Serialize, Deserialize)]
pub struct Job {
    role: Role,
    chan: Endpoint,
    go: ShmQueue<u8>,
    reports: ShmQueue<Report>,
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// The children's entry point: waits for "go", does its role, reports.
pub fn bench_child(job: Job) {
    let Job {
        role,
        chan,
        go,
        reports,
    } = job;
    let opened = match open(chan) {
        Ok(o) => o,
        Err(e) => {
            let _ = reports.put(Report {
                sum: 0,
                start_ns: 0,
                end_ns: 0,
                error: Some(e.0),
            });
            return;
        }
    };
    let report = match go.get_timeout(REPORT_LIMIT) {
        Err(e) => Report {
            sum: 0,
            start_ns: 0,
            end_ns: 0,
            error: Some(format!("no go signal: {e}")),
        },
        Ok(_) => {
            let start_ns = now_ns();
            let result = run_role(role, &opened);
            let end_ns = now_ns();
            match result {
                Ok(sum) => Report {
                    sum,
                    start_ns,
                    end_ns,
                    error: None,
                },
                Err(e) => Report {
                    sum: 0,
                    start_ns,
                    end_ns,
                    error: Some(e.0),
                },
            }
        }
    };
    // If the report cannot be put, the parent sees the child exit without one.
    let _ = reports.put(report);
}

/// A channel that also does `task_done`/`join`.
trait JoinableChannel: Channel<Msg> + Joinable {}

impl<C: Channel<Msg> + Joinable> JoinableChannel for C {}

/// A child's channel, opened before "go" (so that connecting is not timed, and so that a
/// hand-over that needs the parent, as ipc-channel's, happens while the parent waits for it).
enum Opened {
    Plain(Box<dyn Channel<Msg>>),
    Joinable(Box<dyn JoinableChannel>),
    Dict(conveyor_manager::DictProxy<u64, Payload>),
}

fn open(chan: Endpoint) -> Result<Opened, RunError> {
    let plain = |c: Box<dyn Channel<Msg>>| Ok(Opened::Plain(c));
    match chan {
        Endpoint::Shm(q) => plain(Box::new(q)),
        Endpoint::JoinableShm(q) => Ok(Opened::Joinable(Box::new(q))),
        Endpoint::ShmPair(from, to) => plain(Box::new(Duplex::new(to, from))),
        Endpoint::Pipe(end) => plain(Box::new(end.open()?)),
        Endpoint::PipeBuffered(end) => {
            let conn = end.open()?;
            conn.set_buffered_sends(true);
            plain(Box::new(conn))
        }
        Endpoint::PipeShm(conn) => plain(conn),
        Endpoint::PipePipes(end, starts) => {
            let mut conn = end.open()?;
            plain(Box::new(moved_to_pipes(&mut conn, starts).map(|()| conn)?))
        }
        Endpoint::RawSocket(end) => plain(Box::new(RawFramed::new(
            std::os::unix::net::UnixStream::from(end.0),
        ))),
        Endpoint::Manager(ep, name, cap) => {
            let q = manager_queue(&ep.connect().map_err(manager_err)?, &name, cap)?;
            Ok(Opened::Joinable(Box::new(q)))
        }
        Endpoint::ManagerPair(ep, from, to) => {
            // One connection per direction: a blocked get holds its connection.
            let from = manager_queue(&ep.connect().map_err(manager_err)?, &from, 1)?;
            let to = manager_queue(&ep.connect().map_err(manager_err)?, &to, 1)?;
            plain(Box::new(Duplex::new(to, from)))
        }
        Endpoint::Ipmpsc(path, send, recv) => plain(Box::new(ipmpsc_open(&path, send, recv)?)),
        Endpoint::IpmpscPair(from, to) => plain(Box::new(Duplex::new(
            ipmpsc_open(&to, true, false)?,
            ipmpsc_open(&from, false, true)?,
        ))),
        Endpoint::IpcChannel(server) => plain(Box::new(ipc_child_end(&server)?)),
        Endpoint::ManagerDict(ep, name) => {
            let client = ep.connect().map_err(manager_err)?;
            Ok(Opened::Dict(client.dict(&name).map_err(manager_err)?))
        }
    }
}

fn run_role(role: Role, chan: &Opened) -> Result<u64, RunError> {
    fn act<C: Channel<Msg>>(role: Role, c: &C) -> Result<u64, RunError> {
        match role {
            Role::Produce { base, n, size } => {
                produce(c, base, n, &Payload::filled(size)).map(|_| 0)
            }
            Role::Consume { n, size } => consume(c, n, size),
            Role::Echo { n } => echo(c, n).map(|_| 0),
            Role::ConsumeTaskDone { .. } => Err(RunError::new("this channel has no task_done")),
            Role::DictWrite { .. } | Role::DictTake { .. } => {
                Err(RunError::new("a dict role needs a dict"))
            }
        }
    }
    match (role, chan) {
        (Role::ConsumeTaskDone { n }, Opened::Joinable(q)) => consume_task_done(q, n),
        (role, Opened::Joinable(q)) => act(role, q),
        (role, Opened::Plain(c)) => act(role, c),
        (role, Opened::Dict(d)) => dict_role(role, d),
    }
}

/// The dict workload's loops: writers set their keys, takers remove theirs as they appear.
fn dict_role(role: Role, d: &conveyor_manager::DictProxy<u64, Payload>) -> Result<u64, RunError> {
    let err = |e: conveyor_manager::ManagerError| RunError::new(format!("dict: {e}"));
    match role {
        Role::DictWrite {
            first,
            step,
            n,
            size,
        } => {
            let payload = Payload::filled(size);
            for i in 0..n {
                d.set(&(first + i * step), &payload).map_err(err)?;
            }
            Ok(0)
        }
        Role::DictTake {
            first,
            step,
            n,
            size,
        } => {
            let mut sum = 0u64;
            for i in 0..n {
                let key = first + i * step;
                let value = loop {
                    if let Some(v) = d.remove(&key).map_err(err)? {
                        break v;
                    }
                };
                if value.len() != size {
                    return Err(RunError::new(format!(
                        "got a {}-byte value, expected {size}",
                        value.len()
                    )));
                }
                sum = sum.wrapping_add(key);
            }
            Ok(sum)
        }
        _ => Err(RunError::new("a dict takes only dict roles")),
    }
}

fn ipmpsc_open(path: &str, send: bool, recv: bool) -> Result<IpmpscChannel, RunError> {
    IpmpscChannel::open(path, send, recv)
        .map_err(|e| RunError::new(format!("could not open the ipmpsc ring {path}: {e}")))
}

/// An ipmpsc ring sized like a queue of `cap` items of `size` bytes (ipmpsc bounds bytes).
fn ipmpsc_ring(cap: usize, size: usize) -> Result<(String, ipmpsc::SharedRingBuffer), RunError> {
    let bytes = (cap * (size + 64)).clamp(64 << 10, 1 << 30) as u32;
    IpmpscChannel::create_temp(bytes)
        .map_err(|e| RunError::new(format!("could not create an ipmpsc ring: {e}")))
}

fn manager_err(e: conveyor_manager::ManagerError) -> RunError {
    RunError::new(format!("manager: {e}"))
}

fn manager_queue(
    client: &conveyor_manager::ManagerConnection,
    name: &str,
    cap: usize,
) -> Result<conveyor_manager::QueueProxy<Msg>, RunError> {
    client.queue::<Msg>(name, Some(cap)).map_err(manager_err)
}

/// A unique name for a run's manager queue.
fn unique_name(what: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("bench-{what}-{}-{n}", std::process::id())
}

/// The control queues of one run and the children started for it.
struct Run {
    go: ShmQueue<u8>,
    reports: ShmQueue<Report>,
    children: Vec<Child>,
    /// Rings that must live as long as the run (their files go when they drop).
    kept: Vec<ipmpsc::SharedRingBuffer>,
}

impl Run {
    fn new() -> Result<Self, RunError> {
        let err = |e: conveyor_shm::ShmError| RunError::new(format!("control queue: {e}"));
        Ok(Run {
            go: ShmQueue::builder().ring_bytes(4096).create().map_err(err)?,
            reports: ShmQueue::builder()
                .ring_bytes(16 << 10)
                .create()
                .map_err(err)?,
            children: Vec::new(),
            kept: Vec::new(),
        })
    }

    fn start(&mut self, role: Role, chan: Endpoint) -> Result<(), RunError> {
        let job = Job {
            role,
            chan,
            go: self.go.clone(),
            reports: self.reports.clone(),
        };
        let child = Process::new(CHILD_ENTRY, job)
            .daemon(true)
            .start()
            .map_err(|e| RunError::new(format!("could not start a child: {e}")))?;
        self.children.push(child);
        Ok(())
    }

    /// Starts a child whose channel is the ipc-channel end made of `ends`.
    fn start_ipc(&mut self, role: Role, ends: IpcEnds) -> Result<(), RunError> {
        let (server, name) =
            ipc_channel::ipc::IpcOneShotServer::<ipc_channel::ipc::IpcSender<IpcEnds>>::new()
                .map_err(|e| ipc_err("server", e))?;
        self.start(role, Endpoint::IpcChannel(name))?;
        // accept() blocks until the child connects and has no timeout: wait for it on a
        // thread, so that a child that dies first fails the run instead of hanging it (the
        // thread then stays blocked; that costs a thread, once, after a failure).
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(server.accept().map(|(_, btx)| btx));
        });
        let child = self.children.last().expect("a child was just started");
        let deadline = Instant::now() + REPORT_LIMIT;
        let btx = loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(accepted) => break accepted.map_err(|e| ipc_err("accept", e))?,
                Err(_) if child.exit_status().is_some() => {
                    let why = self
                        .reports
                        .try_get()
                        .ok()
                        .and_then(|r| r.error)
                        .unwrap_or_else(|| "no report".into());
                    return Err(RunError::new(format!(
                        "an ipc-channel child ended before taking its end: {why}"
                    )));
                }
                Err(_) if Instant::now() > deadline => {
                    return Err(RunError::new(
                        "an ipc-channel child did not connect in 120 s",
                    ));
                }
                Err(_) => {}
            }
        };
        btx.send(ends).map_err(|e| ipc_err("hand-over", e))
    }

    fn keep(&mut self, ring: ipmpsc::SharedRingBuffer) {
        self.kept.push(ring);
    }

    fn go(&self) -> Result<(), RunError> {
        for _ in &self.children {
            self.go
                .put(1)
                .map_err(|e| RunError::new(format!("could not signal go: {e}")))?;
        }
        Ok(())
    }

    /// One report, or an error once a child died without reporting or time ran out.
    fn report(&self) -> Result<Report, RunError> {
        let deadline = Instant::now() + REPORT_LIMIT;
        loop {
            match self.reports.get_timeout(Duration::from_millis(100)) {
                Ok(r) => {
                    return match r.error {
                        Some(e) => Err(RunError::new(format!("a child failed: {e}"))),
                        None => Ok(r),
                    }
                }
                Err(e) if e.is_timeout() => {
                    if let Some(c) = self
                        .children
                        .iter()
                        .find(|c| c.exit_status().is_some_and(|s| !s.success()))
                    {
                        return Err(RunError::new(format!(
                            "child {} ended without a report: {}",
                            c.pid(),
                            c.exit_status().map(|s| s.to_string()).unwrap_or_default()
                        )));
                    }
                    if Instant::now() > deadline {
                        return Err(RunError::new("no report from a child within 120 s"));
                    }
                }
                Err(e) => return Err(RunError::new(format!("report queue: {e}"))),
            }
        }
    }

    /// Waits for the children to exit; after a failed run (`ok` false) kills them first, since
    /// they may wait for messages that will never come.
    fn finish(self, ok: bool) -> Result<(), RunError> {
        if !ok {
            for c in &self.children {
                let _ = c.kill();
            }
            for c in &self.children {
                let _ = c.join_timeout(REPORT_LIMIT);
            }
            return Ok(());
        }
        for c in &self.children {
            match c.join_timeout(REPORT_LIMIT) {
                Ok(Some(s)) if s.success() => {}
                Ok(Some(s)) => return Err(RunError::new(format!("a child ended with {s}"))),
                Ok(None) => {
                    let _ = c.kill();
                    return Err(RunError::new("a child did not exit"));
                }
                Err(e) => return Err(RunError::new(format!("joining a child: {e}"))),
            }
        }
        Ok(())
    }

    /// Collects `n` reports and returns (sum, elapsed ns from first start to last end).
    fn collect(&self, n: usize) -> Result<(u64, u64), RunError> {
        let (mut sum, mut first, mut last) = (0u64, u64::MAX, 0u64);
        for _ in 0..n {
            let r = self.report()?;
            sum = sum.wrapping_add(r.sum);
            first = first.min(r.start_ns);
            last = last.max(r.end_ns);
        }
        Ok((sum, last.saturating_sub(first)))
    }
}

/// Moves `conn` to pipes, starting the move or accepting it; staying on the socket is an error
/// here (the workload is about the pipes).
fn moved_to_pipes(conn: &mut Connection, starts: bool) -> Result<(), RunError> {
    let moved = if starts {
        conn.move_to_pipes()
    } else {
        conn.accept_pipes()
    };
    match moved {
        Ok(true) => Ok(()),
        Ok(false) => Err(RunError::new("the connection stayed on its socket")),
        Err(e) => Err(RunError::new(format!("the move to pipes failed: {e}"))),
    }
}

/// Which conveyor process transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Shm,
    JoinableShm,
    Pipe,
    PipeBuffered,
    PipeShm,
    PipePipes,
    RawSocket,
    Manager,
    Ipmpsc,
    IpcChannel,
    ManagerDict,
}

/// A conveyor transport between processes.
#[derive(Debug)]
pub struct ProcessTransport {
    info: TransportInfo,
    kind: Kind,
    /// The manager server (on threads of this process), started at the first run that needs it.
    manager: std::sync::OnceLock<Result<conveyor_manager::ManagerGuard, String>>,
}

fn shm_err(e: conveyor_shm::ShmError) -> RunError {
    RunError::new(format!("could not create the queue: {e}"))
}

fn shm_queue(cap: usize) -> Result<ShmQueue<Msg>, RunError> {
    ShmQueue::builder().max_items(cap).create().map_err(shm_err)
}

impl ProcessTransport {
    fn new(info: TransportInfo, kind: Kind) -> Self {
        ProcessTransport {
            info,
            kind,
            manager: std::sync::OnceLock::new(),
        }
    }

    fn manager(&self) -> Result<&conveyor_manager::ManagerGuard, RunError> {
        self.manager
            .get_or_init(|| {
                conveyor_manager::Manager::start()
                    .map_err(|e| format!("could not start a manager: {e}"))
            })
            .as_ref()
            .map_err(|e| RunError::new(e.clone()))
    }

    /// Deletes a run's manager queues (the server keeps named objects until then).
    fn forget(&self, names: &[&str]) {
        if let Ok(m) = self.manager() {
            for n in names {
                let _ = m.delete(n);
            }
        }
    }

    fn throughput(
        &self,
        p: usize,
        c: usize,
        size: usize,
        cap: usize,
        count: usize,
    ) -> Result<Sample, RunError> {
        let count = round_count(count, p * c);
        let mut run = Run::new()?;
        let mut names: Vec<String> = Vec::new();
        let (per_p, per_c) = ((count / p) as u64, (count / c) as u64);
        match self.kind {
            Kind::Shm | Kind::JoinableShm => {
                let q = shm_queue(cap)?;
                let wrap = |q: &ShmQueue<Msg>| match self.kind {
                    Kind::JoinableShm => {
                        Endpoint::JoinableShm(JoinableShmQueue::from_queue(q.clone()))
                    }
                    _ => Endpoint::Shm(q.clone()),
                };
                for i in 0..p {
                    run.start(
                        Role::Produce {
                            base: i as u64 * per_p,
                            n: per_p,
                            size,
                        },
                        wrap(&q),
                    )?;
                }
                for _ in 0..c {
                    run.start(Role::Consume { n: per_c, size }, wrap(&q))?;
                }
            }
            Kind::ManagerDict => {
                let m = self.manager()?;
                let name = unique_name("d");
                m.dict::<u64, Payload>(&name).map_err(manager_err)?;
                let chan = || Endpoint::ManagerDict(m.endpoint(), name.clone());
                let (p64, c64) = (p as u64, c as u64);
                for i in 0..p64 {
                    let role = Role::DictWrite {
                        first: i,
                        step: p64,
                        n: per_p,
                        size,
                    };
                    run.start(role, chan())?;
                }
                for i in 0..c64 {
                    let role = Role::DictTake {
                        first: i,
                        step: c64,
                        n: per_c,
                        size,
                    };
                    run.start(role, chan())?;
                }
                names.push(name);
            }
            Kind::IpcChannel => {
                let (tx, rx) =
                    ipc_channel::ipc::channel::<Msg>().map_err(|e| ipc_err("channel", e))?;
                run.start_ipc(
                    Role::Produce {
                        base: 0,
                        n: per_p,
                        size,
                    },
                    (Some(tx), None),
                )?;
                run.start_ipc(Role::Consume { n: per_c, size }, (None, Some(rx)))?;
            }
            Kind::Ipmpsc => {
                let (path, ring) = ipmpsc_ring(cap, size)?;
                run.start(
                    Role::Produce {
                        base: 0,
                        n: per_p,
                        size,
                    },
                    Endpoint::Ipmpsc(path.clone(), true, false),
                )?;
                run.start(
                    Role::Consume { n: per_c, size },
                    Endpoint::Ipmpsc(path, false, true),
                )?;
                run.keep(ring);
            }
            Kind::Pipe | Kind::PipeBuffered => {
                let (reader, writer) = pipe_oneway()
                    .map_err(|e| RunError::new(format!("could not make a pipe: {e}")))?;
                let writer = PipeEnd::new(writer);
                run.start(
                    Role::Produce {
                        base: 0,
                        n: per_p,
                        size,
                    },
                    if self.kind == Kind::Pipe {
                        Endpoint::Pipe(writer)
                    } else {
                        Endpoint::PipeBuffered(writer)
                    },
                )?;
                run.start(
                    Role::Consume { n: per_c, size },
                    Endpoint::Pipe(PipeEnd::new(reader)),
                )?;
            }
            Kind::PipePipes => {
                let (a, b) =
                    pipe().map_err(|e| RunError::new(format!("could not make a pipe: {e}")))?;
                run.start(
                    Role::Produce {
                        base: 0,
                        n: per_p,
                        size,
                    },
                    Endpoint::PipePipes(PipeEnd::new(a), true),
                )?;
                run.start(
                    Role::Consume { n: per_c, size },
                    Endpoint::PipePipes(PipeEnd::new(b), false),
                )?;
            }
            Kind::PipeShm => {
                let (reader, writer) = PipeBuilder::new()
                    .shared_memory(true)
                    .duplex(false)
                    .build()
                    .map_err(|e| RunError::new(format!("could not make a pipe: {e}")))?;
                run.start(
                    Role::Produce {
                        base: 0,
                        n: per_p,
                        size,
                    },
                    Endpoint::PipeShm(Box::new(writer)),
                )?;
                run.start(
                    Role::Consume { n: per_c, size },
                    Endpoint::PipeShm(Box::new(reader)),
                )?;
            }
            Kind::RawSocket => {
                let (a, b) = std::os::unix::net::UnixStream::pair()
                    .map_err(|e| RunError::new(format!("could not make a socketpair: {e}")))?;
                run.start(
                    Role::Produce {
                        base: 0,
                        n: per_p,
                        size,
                    },
                    Endpoint::RawSocket(PipeEnd(a.into())),
                )?;
                run.start(
                    Role::Consume { n: per_c, size },
                    Endpoint::RawSocket(PipeEnd(b.into())),
                )?;
            }
            Kind::Manager => {
                let m = self.manager()?;
                let name = unique_name("q");
                manager_queue(m, &name, cap)?;
                let chan = || Endpoint::Manager(m.endpoint(), name.clone(), cap);
                for i in 0..p {
                    let base = i as u64 * per_p;
                    run.start(
                        Role::Produce {
                            base,
                            n: per_p,
                            size,
                        },
                        chan(),
                    )?;
                }
                for _ in 0..c {
                    run.start(Role::Consume { n: per_c, size }, chan())?;
                }
                names.push(name);
            }
        }
        run.go()?;
        let collected = run.collect(p + c);
        let finished = run.finish(collected.is_ok());
        self.forget(&names.iter().map(String::as_str).collect::<Vec<_>>());
        let (sum, elapsed_ns) = collected?;
        finished?;
        check_sum(sum, count)?;
        Ok(Sample::Throughput {
            messages: count as u64,
            size: size as u64,
            elapsed_ns,
        })
    }

    fn pingpong(&self, size: usize, rounds: usize) -> Result<Sample, RunError> {
        let mut run = Run::new()?;
        let mut names: Vec<String> = Vec::new();
        let total = pingpong_total(rounds);
        let sample = match self.kind {
            Kind::Shm | Kind::JoinableShm => {
                let (to_echo, from_echo) = (shm_queue(1)?, shm_queue(1)?);
                run.start(
                    Role::Echo { n: total },
                    Endpoint::ShmPair(to_echo.clone(), from_echo.clone()),
                )?;
                run.go()?;
                ping(&Duplex::new(to_echo, from_echo), size, rounds)
            }
            Kind::Manager => {
                let m = self.manager()?;
                let (ping_name, pong_name) = (unique_name("ping"), unique_name("pong"));
                let ping_q = manager_queue(&m.connect().map_err(manager_err)?, &ping_name, 1)?;
                let pong_q = manager_queue(&m.connect().map_err(manager_err)?, &pong_name, 1)?;
                run.start(
                    Role::Echo { n: total },
                    Endpoint::ManagerPair(m.endpoint(), ping_name.clone(), pong_name.clone()),
                )?;
                run.go()?;
                let sample = ping(&Duplex::new(ping_q, pong_q), size, rounds);
                names.push(ping_name);
                names.push(pong_name);
                sample
            }
            Kind::ManagerDict => Err(RunError::new("a dict has no ping-pong")),
            Kind::IpcChannel => {
                let chan = || ipc_channel::ipc::channel::<Msg>().map_err(|e| ipc_err("channel", e));
                let ((ptx, prx), (qtx, qrx)) = (chan()?, chan()?);
                run.start_ipc(Role::Echo { n: total }, (Some(qtx), Some(prx)))?;
                run.go()?;
                ping(&IpcChannelEnd::new(Some(ptx), Some(qrx)), size, rounds)
            }
            Kind::Ipmpsc => {
                let (to_echo, ring_a) = ipmpsc_ring(1, size)?;
                let (from_echo, ring_b) = ipmpsc_ring(1, size)?;
                run.start(
                    Role::Echo { n: total },
                    Endpoint::IpmpscPair(to_echo.clone(), from_echo.clone()),
                )?;
                run.keep(ring_a);
                run.keep(ring_b);
                run.go()?;
                let mine = Duplex::new(
                    ipmpsc_open(&to_echo, true, false)?,
                    ipmpsc_open(&from_echo, false, true)?,
                );
                ping(&mine, size, rounds)
            }
            Kind::Pipe | Kind::PipeBuffered => {
                let (mine, theirs) =
                    pipe().map_err(|e| RunError::new(format!("could not make a pipe: {e}")))?;
                let theirs = PipeEnd::new(theirs);
                run.start(
                    Role::Echo { n: total },
                    if self.kind == Kind::Pipe {
                        Endpoint::Pipe(theirs)
                    } else {
                        Endpoint::PipeBuffered(theirs)
                    },
                )?;
                run.go()?;
                // A buffered end's receive writes what it buffered: a ping-pong needs no flush.
                mine.set_buffered_sends(self.kind == Kind::PipeBuffered);
                ping(&mine, size, rounds)
            }
            Kind::PipePipes => {
                let (mut mine, theirs) =
                    pipe().map_err(|e| RunError::new(format!("could not make a pipe: {e}")))?;
                run.start(
                    Role::Echo { n: total },
                    Endpoint::PipePipes(PipeEnd::new(theirs), false),
                )?;
                moved_to_pipes(&mut mine, true)?;
                run.go()?;
                ping(&mine, size, rounds)
            }
            Kind::PipeShm => {
                let (mine, theirs) = PipeBuilder::new()
                    .shared_memory(true)
                    .build()
                    .map_err(|e| RunError::new(format!("could not make a pipe: {e}")))?;
                run.start(Role::Echo { n: total }, Endpoint::PipeShm(Box::new(theirs)))?;
                run.go()?;
                ping(&mine, size, rounds)
            }
            Kind::RawSocket => {
                let (mine, theirs) = std::os::unix::net::UnixStream::pair()
                    .map_err(|e| RunError::new(format!("could not make a socketpair: {e}")))?;
                run.start(
                    Role::Echo { n: total },
                    Endpoint::RawSocket(PipeEnd(theirs.into())),
                )?;
                run.go()?;
                ping(&RawFramed::new(mine), size, rounds)
            }
        };
        let collected = sample.and_then(|s| run.collect(1).map(|_| s));
        let finished = run.finish(collected.is_ok());
        self.forget(&names.iter().map(String::as_str).collect::<Vec<_>>());
        let sample = collected?;
        finished?;
        Ok(sample)
    }

    fn joinable(&self, size: usize, cap: usize, count: usize) -> Result<Sample, RunError> {
        let mut run = Run::new()?;
        let produce_role = Role::Produce {
            base: 0,
            n: count as u64,
            size,
        };
        let consume_role = Role::ConsumeTaskDone { n: count as u64 };
        let mut names = Vec::new();
        let q: Box<dyn Joinable> = if self.kind == Kind::Manager {
            let m = self.manager()?;
            let name = unique_name("jq");
            let q = manager_queue(&m.connect().map_err(manager_err)?, &name, cap)?;
            run.start(
                produce_role,
                Endpoint::Manager(m.endpoint(), name.clone(), cap),
            )?;
            run.start(
                consume_role,
                Endpoint::Manager(m.endpoint(), name.clone(), cap),
            )?;
            names.push(name);
            Box::new(q)
        } else {
            let q = JoinableShmQueue::from_queue(shm_queue(cap)?);
            run.start(produce_role, Endpoint::JoinableShm(q.clone()))?;
            run.start(consume_role, Endpoint::JoinableShm(q.clone()))?;
            Box::new(q)
        };
        let result = Self::join_run(&run, q.as_ref());
        let finished = run.finish(result.is_ok());
        drop(q);
        self.forget(&names.iter().map(String::as_str).collect::<Vec<_>>());
        let (sum, elapsed_ns) = result?;
        finished?;
        check_sum(sum, count)?;
        Ok(Sample::Throughput {
            messages: count as u64,
            size: size as u64,
            elapsed_ns,
        })
    }

    /// Lets the children go, waits for `join`; returns (sum taken, elapsed ns).
    fn join_run(run: &Run, q: &dyn Joinable) -> Result<(u64, u64), RunError> {
        run.go()?;
        // The producer normally reports first; then `join` is what ends the clock. (Its sum
        // is 0: it takes nothing.) If the consumer's report won the race, every task was done
        // before it reported, so its end stands in for `join` returning.
        let first = run.report()?;
        match q.join_timeout(REPORT_LIMIT) {
            Ok(true) => {}
            Ok(false) => return Err(RunError::new("join did not return within 120 s")),
            Err(e) => return Err(RunError::new(format!("join failed: {e}"))),
        }
        let end = if first.sum == 0 {
            now_ns()
        } else {
            first.end_ns
        };
        let second = run.report()?;
        let start = first.start_ns.min(second.start_ns);
        Ok((
            first.sum.wrapping_add(second.sum),
            end.saturating_sub(start),
        ))
    }
}

impl Transport for ProcessTransport {
    fn info(&self) -> &TransportInfo {
        &self.info
    }

    fn supports(&self, workload: &Workload) -> Result<(), String> {
        if workload.is_pool() {
            return Err("a queue, not a pool".into());
        }
        match (self.kind, workload) {
            (
                Kind::Pipe | Kind::PipeBuffered | Kind::PipeShm | Kind::PipePipes | Kind::RawSocket,
                Workload::Throughput {
                    producers,
                    consumers,
                    ..
                },
            ) if (*producers, *consumers) != (1, 1) => {
                Err("point-to-point: one sender, one receiver".into())
            }
            (
                Kind::Ipmpsc,
                Workload::Throughput {
                    producers,
                    consumers,
                    ..
                },
            ) if (*producers, *consumers) != (1, 1) => {
                Err("one receiving process per ring (multi-producer, single-consumer)".into())
            }
            (
                Kind::IpcChannel,
                Workload::Throughput {
                    producers,
                    consumers,
                    ..
                },
            ) if (*producers, *consumers) != (1, 1) => {
                Err("one receiver per channel (IpcReceiver cannot be shared)".into())
            }
            (Kind::Ipmpsc | Kind::IpcChannel | Kind::ManagerDict, Workload::Joinable { .. }) => {
                Err("no task_done/join".into())
            }
            (Kind::ManagerDict, Workload::PingPong { .. }) => Err("no ping-pong for a dict".into()),
            (Kind::Shm, Workload::Joinable { .. }) => {
                Err("no task_done/join (see JoinableShmQueue)".into())
            }
            (
                Kind::Pipe | Kind::PipeBuffered | Kind::PipeShm | Kind::PipePipes | Kind::RawSocket,
                Workload::Joinable { .. },
            ) => Err("no task_done/join".into()),
            _ => Ok(()),
        }
    }

    fn run(&self, workload: &Workload, count: usize) -> Result<Sample, RunError> {
        let cap = workload.capacity();
        match *workload {
            Workload::Throughput {
                producers,
                consumers,
                size,
            } => self.throughput(producers, consumers, size, cap, count),
            Workload::PingPong { size } => self.pingpong(size, count),
            Workload::Joinable { size } => self.joinable(size, cap, count),
            Workload::PoolSubmit { .. } | Workload::PoolMap => {
                Err(RunError::new("a queue, not a pool"))
            }
        }
    }
}

/// The process transports built into this harness.
pub fn transports() -> Vec<Arc<dyn Transport>> {
    let process = |name: &str, py: &str| {
        TransportInfo::new(
            name,
            Scope::Process,
            Family::Conveyor,
            Some(&python_name(py)),
        )
    };
    vec![
        Arc::new(ProcessTransport::new(
            process("conveyor ShmQueue", "multiprocessing.Queue"),
            Kind::Shm,
        )),
        Arc::new(ProcessTransport::new(
            process("conveyor JoinableShmQueue", "multiprocessing.JoinableQueue"),
            Kind::JoinableShm,
        )),
        Arc::new(ProcessTransport::new(
            process("conveyor pipe Connection", "multiprocessing.Pipe"),
            Kind::Pipe,
        )),
        Arc::new(ProcessTransport::new(
            process(
                "conveyor pipe Connection, buffered sends",
                "multiprocessing.Pipe",
            ),
            Kind::PipeBuffered,
        )),
        Arc::new(ProcessTransport::new(
            process(
                "conveyor pipe Connection, shared memory",
                "multiprocessing.Pipe",
            ),
            Kind::PipeShm,
        )),
        Arc::new(ProcessTransport::new(
            process(
                "conveyor pipe Connection, moved to OS pipes",
                "multiprocessing.Pipe",
            ),
            Kind::PipePipes,
        )),
        Arc::new(ProcessTransport::new(
            process("conveyor Manager queue", "Manager().Queue"),
            Kind::Manager,
        )),
        Arc::new(ProcessTransport::new(
            process("conveyor Manager dict", "Manager().dict"),
            Kind::ManagerDict,
        )),
        Arc::new(ProcessTransport::new(
            TransportInfo::new(
                "ipmpsc",
                Scope::Process,
                Family::RustPeer,
                Some(&python_name("multiprocessing.Queue")),
            ),
            Kind::Ipmpsc,
        )),
        Arc::new(ProcessTransport::new(
            TransportInfo::new(
                "raw socketpair, length-prefixed",
                Scope::Process,
                Family::RustPeer,
                Some(&python_name("multiprocessing.Pipe")),
            ),
            Kind::RawSocket,
        )),
        Arc::new(ProcessTransport::new(
            TransportInfo::new(
                "ipc-channel",
                Scope::Process,
                Family::RustPeer,
                Some(&python_name("multiprocessing.Queue")),
            ),
            Kind::IpcChannel,
        )),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_process_transport_runs_every_workload_it_supports() {
        conveyor_process::init_test!("conveyor_bench_child" => bench_child);
        let workloads = [
            Workload::Throughput {
                producers: 1,
                consumers: 1,
                size: 64,
            },
            Workload::Throughput {
                producers: 4,
                consumers: 4,
                size: 8,
            },
            Workload::Throughput {
                producers: 1,
                consumers: 1,
                size: 1 << 20,
            },
            Workload::PingPong { size: 8 },
            Workload::Joinable { size: 8 },
        ];
        let mut ran = 0;
        for t in transports() {
            for w in &workloads {
                if t.supports(w).is_ok() {
                    let s = t
                        .run(w, 40)
                        .unwrap_or_else(|e| panic!("{} {}: {e}", t.info().name, w.id()));
                    assert!(s.count() >= 40, "{} {}: {s:?}", t.info().name, w.id());
                    ran += 1;
                }
            }
        }
        // ShmQueue 4, JoinableShmQueue 5, pipe 3 (1x1 twice, ping-pong), buffered pipe 3,
        // shared-memory pipe 3, pipe moved to OS pipes 3, manager queue 5, ipmpsc 3, raw
        // socketpair 3, ipc-channel 3, manager dict 3
        assert_eq!(ran, 38);
    }
}
