//! Two processes, one producer and one consumer: conveyor's `ShmQueue` against ipmpsc,
//! ipc-channel and a Unix socketpair with length-prefixed postcard frames, in one criterion
//! group per workload so the figures sit side by side.
//!
//! Workloads: throughput of typed payloads of 64 B, 4 KiB and 1 MiB (a struct holding a
//! `serde_bytes` vector), and the ping-pong round trip of a 64 B payload. The consumer (or the
//! echoing peer) is a child process started with conveyor-process, which re-executes this
//! binary.
//!
//! ```text
//! cargo bench -p conveyor --no-default-features --features shm,process --bench shm
//! cargo bench -p conveyor --no-default-features --features shm,process --bench shm -- pingpong
//! ```
//!
//! Each throughput sample sends `iters` messages and waits for the consumer to report that it
//! received them all; its per-iteration time is the cost of one message through the pipe.
//! `conveyor` uses the default wait strategy (a short spin, then a futex); `conveyor-sleep`
//! sleeps at once (spin 0). The socketpair writes one frame per `write` call, unbuffered, as a
//! request/response peer would.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use conveyor::process::{self as process, entry, Child, Process};
use conveyor::shm::ShmQueue;
use conveyor::Channel;
use criterion::{BenchmarkId, Criterion, Throughput};
use ipc_channel::ipc::{self, IpcOneShotServer, IpcReceiver, IpcSender};
use serde::{Deserialize, Serialize};

#[path = "common/side.rs"]
mod side;

use side::alternate;

/// The typed payload every transport carries.
#[derive(Serialize, Deserialize, Clone)]
struct Payload(#[serde(with = "serde_bytes")] Vec<u8>);

/// A socket end that travels to the child as an inherited descriptor.
#[derive(Serialize, Deserialize)]
struct Sock(#[serde(with = "conveyor::core::handoff::fd")] UnixStream);

/// The control channel: the parent announces a batch size (0: exit), the child acknowledges.
type Ctl = (ShmQueue<u64>, ShmQueue<u64>);

type IpcPair = (IpcReceiver<Payload>, IpcSender<Payload>);

const RING: usize = 4 << 20;

fn ctl() -> Ctl {
    (ShmQueue::new().unwrap(), ShmQueue::new().unwrap())
}

// ---- frames over a socket ---------------------------------------------------------------

fn send_frame(s: &mut UnixStream, p: &Payload, buf: &mut Vec<u8>) {
    buf.clear();
    buf.extend_from_slice(&[0; 4]);
    let mut body = postcard::to_extend(p, std::mem::take(buf)).unwrap();
    let len = (body.len() - 4) as u32;
    body[..4].copy_from_slice(&len.to_le_bytes());
    s.write_all(&body).unwrap();
    *buf = body;
}

fn recv_frame(s: &mut UnixStream, buf: &mut Vec<u8>) -> Option<Payload> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    buf.resize(u32::from_le_bytes(len) as usize, 0);
    s.read_exact(buf).ok()?;
    postcard::from_bytes(buf).ok()
}

// ---- child entry points -------------------------------------------------------------------

fn shm_sink((q, (ctl, ack)): (ShmQueue<Payload>, Ctl)) {
    shm_sink_spin((q, 20, (ctl, ack)))
}

/// A sink whose gets spin `spin_us` before sleeping.
fn shm_sink_spin((q, spin_us, (ctl, ack)): (ShmQueue<Payload>, u64, Ctl)) {
    let q = q.with_spin(Duration::from_micros(spin_us));
    while let Ok(n) = ctl.get() {
        if n == 0 {
            return;
        }
        for _ in 0..n {
            q.get().unwrap();
        }
        ack.put(n).unwrap();
    }
}

fn shm_echo((req, rep, spin_us): (ShmQueue<Payload>, ShmQueue<Payload>, u64)) {
    let req = req.with_spin(Duration::from_micros(spin_us));
    let rep = rep.with_spin(Duration::from_micros(spin_us));
    while let Ok(p) = req.get() {
        rep.put(p).unwrap();
    }
}

fn ipmpsc_sink((path, (ctl, ack)): (String, Ctl)) {
    let rx = ipmpsc::Receiver::new(ipmpsc::SharedRingBuffer::open(&path).unwrap());
    while let Ok(n) = ctl.get() {
        if n == 0 {
            return;
        }
        for _ in 0..n {
            rx.recv::<Payload>().unwrap();
        }
        ack.put(n).unwrap();
    }
}

fn ipmpsc_echo((req, rep): (String, String)) {
    let rx = ipmpsc::Receiver::new(ipmpsc::SharedRingBuffer::open(&req).unwrap());
    let tx = ipmpsc::Sender::new(ipmpsc::SharedRingBuffer::open(&rep).unwrap());
    loop {
        let p: Payload = rx.recv().unwrap();
        if p.0.is_empty() {
            return;
        }
        tx.send(&p).unwrap();
    }
}

fn ipc_boot(server: String) -> IpcPair {
    let (boot_tx, boot_rx) = ipc::channel::<IpcPair>().unwrap();
    IpcSender::connect(server).unwrap().send(boot_tx).unwrap();
    boot_rx.recv().unwrap()
}

fn ipc_sink((server, (ctl, ack)): (String, Ctl)) {
    let (rx, _) = ipc_boot(server);
    while let Ok(n) = ctl.get() {
        if n == 0 {
            return;
        }
        for _ in 0..n {
            rx.recv().unwrap();
        }
        ack.put(n).unwrap();
    }
}

fn ipc_echo(server: String) {
    let (rx, tx) = ipc_boot(server);
    while let Ok(p) = rx.recv() {
        if p.0.is_empty() {
            return;
        }
        tx.send(p).unwrap();
    }
}

fn sock_sink((sock, (ctl, ack)): (Sock, Ctl)) {
    let mut s = sock.0;
    let mut buf = Vec::new();
    while let Ok(n) = ctl.get() {
        if n == 0 {
            return;
        }
        for _ in 0..n {
            recv_frame(&mut s, &mut buf).unwrap();
        }
        ack.put(n).unwrap();
    }
}

fn sock_echo(sock: Sock) {
    let mut s = sock.0;
    let (mut rbuf, mut wbuf) = (Vec::new(), Vec::new());
    while let Some(p) = recv_frame(&mut s, &mut rbuf) {
        send_frame(&mut s, &p, &mut wbuf);
    }
}

// ---- the futex floor: two processes bouncing a futex word, no data -------------------------

/// Two futex words on separate cache lines in a shared file mapping, and a stop flag.
struct FutexWords {
    /// Bumped by the parent: "your turn" for the child.
    ping: &'static AtomicU32,
    /// Bumped by the child: "your turn" for the parent.
    pong: &'static AtomicU32,
    stop: &'static AtomicU32,
}

impl FutexWords {
    /// Maps the 4 KiB file at `path` (created and sized if `create`), for the process's life.
    fn map(path: &str, create: bool) -> FutexWords {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(create)
            .open(path)
            .unwrap();
        file.set_len(4096).unwrap();
        // SAFETY: a fresh shared mapping of a 4096-byte file; it is never unmapped (leaked for
        // the life of the process), and the words in it are only used through atomics.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                std::os::fd::AsRawFd::as_raw_fd(&file),
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED, "mmap failed");
        // SAFETY: the mapping is 4096 bytes, page aligned, and lives forever (see above);
        // offsets 0, 64 and 128 hold aligned u32 words.
        unsafe {
            let at = |off: usize| &*((base as *const u8).add(off) as *const AtomicU32);
            FutexWords {
                ping: at(0),
                pong: at(64),
                stop: at(128),
            }
        }
    }
}

/// FUTEX_WAIT on `w` while it holds `seen` (at most 100 ms per call).
fn futex_wait(w: &AtomicU32, seen: u32) {
    let ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 100_000_000,
    };
    // SAFETY: `w` is a live aligned u32 in a shared mapping; `ts` outlives the call.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            w.as_ptr(),
            libc::FUTEX_WAIT,
            seen,
            &ts as *const libc::timespec,
            std::ptr::null::<u32>(),
            0u32,
        )
    };
}

/// FUTEX_WAKE one sleeper on `w`.
fn futex_wake(w: &AtomicU32) {
    // SAFETY: as in `futex_wait`; FUTEX_WAKE does not touch memory.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            w.as_ptr(),
            libc::FUTEX_WAKE,
            1u32,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        )
    };
}

/// The child's half of the futex floor: wait for a ping, answer with a pong; sleeps at once.
fn futex_echo(path: String) {
    let w = FutexWords::map(&path, false);
    let mut seen = w.ping.load(Ordering::SeqCst);
    loop {
        let mut now = w.ping.load(Ordering::SeqCst);
        while now == seen {
            if w.stop.load(Ordering::SeqCst) != 0 {
                return;
            }
            futex_wait(w.ping, seen);
            now = w.ping.load(Ordering::SeqCst);
        }
        seen = now;
        w.pong.fetch_add(1, Ordering::SeqCst);
        futex_wake(w.pong);
    }
}

/// The parent's half of the futex floor, with its child.
struct FutexFloor {
    w: FutexWords,
    path: String,
    child: Option<Child>,
}

impl FutexFloor {
    fn start() -> FutexFloor {
        // Not named like a conveyor segment, so that segment listings never show it.
        let path = format!(
            "{}/bench-futex-floor-{}",
            conveyor::shm::shm_dir().display(),
            std::process::id()
        );
        let w = FutexWords::map(&path, true);
        let child = Process::new("futex_echo", &path).start().unwrap();
        FutexFloor {
            w,
            path,
            child: Some(child),
        }
    }

    /// One round trip: ping, then sleep until the pong.
    #[inline]
    fn round_trip(&self) {
        let seen = self.w.pong.load(Ordering::SeqCst);
        self.w.ping.fetch_add(1, Ordering::SeqCst);
        futex_wake(self.w.ping);
        while self.w.pong.load(Ordering::SeqCst) == seen {
            futex_wait(self.w.pong, seen);
        }
    }
}

impl Drop for FutexFloor {
    fn drop(&mut self) {
        self.w.stop.store(1, Ordering::SeqCst);
        self.w.ping.fetch_add(1, Ordering::SeqCst);
        futex_wake(self.w.ping);
        if let Some(c) = self.child.take() {
            c.join().unwrap();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

// ---- the parent's side ------------------------------------------------------------------

/// One transport's sending end in the parent, with its consumer child.
enum Tx {
    Shm(ShmQueue<Payload>),
    Ipmpsc(ipmpsc::Sender),
    Ipc(IpcSender<Payload>),
    Sock(UnixStream, Vec<u8>),
}

impl Tx {
    fn send(&mut self, p: &Payload) {
        match self {
            Tx::Shm(q) => q.put_ref(p).unwrap(),
            Tx::Ipmpsc(s) => s.send(p).unwrap(),
            Tx::Ipc(s) => s.send(p.clone()).unwrap(),
            Tx::Sock(s, buf) => send_frame(s, p, buf),
        }
    }
}

fn ipc_server() -> (IpcOneShotServer<IpcSender<IpcPair>>, String) {
    IpcOneShotServer::new().unwrap()
}

fn start_sink(peer: &str, c: &Ctl) -> (Tx, Child) {
    match peer {
        "conveyor" => {
            let q: ShmQueue<Payload> = ShmQueue::builder().ring_bytes(RING).create().unwrap();
            let child = Process::new("shm_sink", (&q, c)).start().unwrap();
            (Tx::Shm(q), child)
        }
        "conveyor-sleep" => {
            let q: ShmQueue<Payload> = ShmQueue::builder()
                .ring_bytes(RING)
                .spin(Duration::ZERO)
                .create()
                .unwrap();
            let child = Process::new("shm_sink_spin", (&q, 0u64, c))
                .start()
                .unwrap();
            (Tx::Shm(q), child)
        }
        "ipmpsc" => {
            let (path, buf) = ipmpsc::SharedRingBuffer::create_temp(RING as u32).unwrap();
            let child = Process::new("ipmpsc_sink", (&path, c)).start().unwrap();
            (Tx::Ipmpsc(ipmpsc::Sender::new(buf)), child)
        }
        "ipc-channel" => {
            let (server, name) = ipc_server();
            let child = Process::new("ipc_sink", (&name, c)).start().unwrap();
            let (_, boot) = server.accept().unwrap();
            let (tx, rx) = ipc::channel::<Payload>().unwrap();
            let (unused_tx, _unused_rx) = ipc::channel::<Payload>().unwrap();
            boot.send((rx, unused_tx)).unwrap();
            (Tx::Ipc(tx), child)
        }
        "socketpair" => {
            let (a, b) = UnixStream::pair().unwrap();
            let child = Process::new("sock_sink", (Sock(b), c)).start().unwrap();
            (Tx::Sock(a, Vec::new()), child)
        }
        _ => unreachable!(),
    }
}

const PEERS: [&str; 4] = ["conveyor", "ipmpsc", "ipc-channel", "socketpair"];

fn throughput(c: &mut Criterion) {
    for (label, size) in [("64B", 64usize), ("4KiB", 4096), ("1MiB", 1 << 20)] {
        let mut g = c.benchmark_group(format!("shm_1p1c/{label}"));
        if size >= 1 << 20 {
            g.throughput(Throughput::Bytes(size as u64));
        } else {
            g.throughput(Throughput::Elements(1));
        }
        let payload = Payload(vec![0xA5; size]);
        for peer in PEERS {
            let c = ctl();
            let (mut tx, child) = start_sink(peer, &c);
            g.bench_function(BenchmarkId::from_parameter(peer), |b| {
                b.iter_custom(|iters| {
                    c.0.put(iters).unwrap();
                    let t0 = Instant::now();
                    for _ in 0..iters {
                        tx.send(&payload);
                    }
                    c.1.get().unwrap();
                    t0.elapsed()
                })
            });
            c.0.put(0).unwrap();
            child.join().unwrap();
        }
        g.finish();
    }
}

fn pingpong(c: &mut Criterion) {
    let mut g = c.benchmark_group("shm_pingpong/64B");
    let payload = Payload(vec![0x5A; 64]);
    for (peer, spin) in [
        ("conveyor", conveyor::shm::DEFAULT_SPIN),
        ("conveyor-sleep", Duration::ZERO),
    ] {
        let req: ShmQueue<Payload> = ShmQueue::builder().spin(spin).create().unwrap();
        let rep: ShmQueue<Payload> = ShmQueue::builder().spin(spin).create().unwrap();
        let child = Process::new("shm_echo", (&req, &rep, spin.as_micros() as u64))
            .start()
            .unwrap();
        g.bench_function(BenchmarkId::from_parameter(peer), |b| {
            b.iter(|| {
                req.put_ref(&payload).unwrap();
                rep.get().unwrap()
            })
        });
        req.shutdown(false).unwrap();
        child.join().unwrap();
    }
    {
        // The machine's floor for a sleep-at-once round trip: two FUTEX_WAKE and two
        // FUTEX_WAIT between two processes, nothing else.
        let floor = FutexFloor::start();
        g.bench_function(BenchmarkId::from_parameter("futex-floor"), |b| {
            b.iter(|| floor.round_trip())
        });
    }
    {
        let (req_path, req_buf) = ipmpsc::SharedRingBuffer::create_temp(RING as u32).unwrap();
        let (rep_path, rep_buf) = ipmpsc::SharedRingBuffer::create_temp(RING as u32).unwrap();
        let child = Process::new("ipmpsc_echo", (&req_path, &rep_path))
            .start()
            .unwrap();
        let tx = ipmpsc::Sender::new(req_buf);
        let rx = ipmpsc::Receiver::new(rep_buf);
        g.bench_function(BenchmarkId::from_parameter("ipmpsc"), |b| {
            b.iter(|| {
                tx.send(&payload).unwrap();
                rx.recv::<Payload>().unwrap()
            })
        });
        tx.send(&Payload(Vec::new())).unwrap();
        child.join().unwrap();
    }
    {
        let (server, name) = ipc_server();
        let child = Process::new("ipc_echo", &name).start().unwrap();
        let (_, boot) = server.accept().unwrap();
        let (req_tx, req_rx) = ipc::channel::<Payload>().unwrap();
        let (rep_tx, rep_rx) = ipc::channel::<Payload>().unwrap();
        boot.send((req_rx, rep_tx)).unwrap();
        g.bench_function(BenchmarkId::from_parameter("ipc-channel"), |b| {
            b.iter(|| {
                req_tx.send(payload.clone()).unwrap();
                rep_rx.recv().unwrap()
            })
        });
        req_tx.send(Payload(Vec::new())).unwrap();
        child.join().unwrap();
    }
    {
        let (mut a, b_end) = UnixStream::pair().unwrap();
        let child = Process::new("sock_echo", Sock(b_end)).start().unwrap();
        let (mut rbuf, mut wbuf) = (Vec::new(), Vec::new());
        g.bench_function(BenchmarkId::from_parameter("socketpair"), |b| {
            b.iter(|| {
                send_frame(&mut a, &payload, &mut wbuf);
                recv_frame(&mut a, &mut rbuf).unwrap()
            })
        });
        drop(a);
        child.join().unwrap();
    }
    g.finish();
}

// ---- side by side: alternating short slices of every peer in one run ----------------------

/// The machine's load averages, to print next to every figure.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// A ping-pong peer kept running across rounds.
enum Echo {
    Shm(ShmQueue<Payload>, ShmQueue<Payload>, Option<Child>),
    Ipmpsc(ipmpsc::Sender, ipmpsc::Receiver, Option<Child>),
    Futex(FutexFloor),
}

impl Echo {
    fn start(peer: &str) -> Echo {
        match peer {
            "conveyor" | "conveyor-sleep" => {
                let spin = if peer == "conveyor" {
                    conveyor::shm::DEFAULT_SPIN
                } else {
                    Duration::ZERO
                };
                let req: ShmQueue<Payload> = ShmQueue::builder().spin(spin).create().unwrap();
                let rep: ShmQueue<Payload> = ShmQueue::builder().spin(spin).create().unwrap();
                let child = Process::new("shm_echo", (&req, &rep, spin.as_micros() as u64))
                    .start()
                    .unwrap();
                Echo::Shm(req, rep, Some(child))
            }
            "ipmpsc" => {
                let (req_path, req_buf) =
                    ipmpsc::SharedRingBuffer::create_temp(RING as u32).unwrap();
                let (rep_path, rep_buf) =
                    ipmpsc::SharedRingBuffer::create_temp(RING as u32).unwrap();
                let child = Process::new("ipmpsc_echo", (&req_path, &rep_path))
                    .start()
                    .unwrap();
                Echo::Ipmpsc(
                    ipmpsc::Sender::new(req_buf),
                    ipmpsc::Receiver::new(rep_buf),
                    Some(child),
                )
            }
            _ => Echo::Futex(FutexFloor::start()),
        }
    }

    /// `n` round trips of a 64 B payload; the mean in microseconds.
    fn round(&self, n: u32, p: &Payload) -> f64 {
        let t0 = Instant::now();
        for _ in 0..n {
            match self {
                Echo::Shm(req, rep, _) => {
                    req.put_ref(p).unwrap();
                    rep.get().unwrap();
                }
                Echo::Ipmpsc(tx, rx, _) => {
                    tx.send(p).unwrap();
                    rx.recv::<Payload>().unwrap();
                }
                Echo::Futex(f) => f.round_trip(),
            }
        }
        t0.elapsed().as_secs_f64() / n as f64 * 1e6
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        match self {
            Echo::Shm(req, _, child) => {
                // A drop cannot fail: a queue that cannot be shut down leaves the child to be
                // joined (and it fails) below.
                let _ = req.shutdown(false);
                if let Some(c) = child.take() {
                    c.join().unwrap();
                }
            }
            Echo::Ipmpsc(tx, _, child) => {
                tx.send(&Payload(Vec::new())).unwrap();
                if let Some(c) = child.take() {
                    c.join().unwrap();
                }
            }
            Echo::Futex(_) => {}
        }
    }
}

/// Alternating slices of conveyor, ipmpsc and the socketpair (throughput), and of the
/// ping-pong peers including the futex floor; prints medians and ratios from this one run.
///
/// Runs after the criterion groups unless a filter that does not match "side_by_side" was
/// given; `SHM_ROUNDS` sets the number of rounds (default 15).
fn side_by_side() {
    let rounds: usize = std::env::var("SHM_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    println!(
        "\nside by side, {rounds} alternating rounds, medians; load {}",
        loadavg()
    );
    let peers = ["conveyor", "conveyor-sleep", "ipmpsc", "socketpair"];
    for (label, size, count) in [("64B", 64usize, 100_000u64), ("4KiB", 4096, 20_000)] {
        let payload = Payload(vec![0xA5; size]);
        let mut sinks: Vec<_> = peers
            .iter()
            .map(|peer| {
                let c = ctl();
                let (tx, child) = start_sink(peer, &c);
                (c, tx, child)
            })
            .collect();
        let m = alternate(rounds, peers.len(), |k| {
            let (c, tx, _) = &mut sinks[k];
            c.0.put(count).unwrap();
            let t0 = Instant::now();
            for _ in 0..count {
                tx.send(&payload);
            }
            c.1.get().unwrap();
            count as f64 / t0.elapsed().as_secs_f64() / 1e6
        });
        for (c, _, child) in sinks {
            c.0.put(0).unwrap();
            child.join().unwrap();
        }
        println!(
            "1p1c {label:<5} M msg/s: conveyor {:.2}  conveyor-sleep {:.2}  ipmpsc {:.2}  socketpair {:.2}  | conveyor/ipmpsc {:.2}x  conveyor/socketpair {:.2}x  (load {})",
            m[0],
            m[1],
            m[2],
            m[3],
            m[0] / m[2],
            m[0] / m[3],
            loadavg()
        );
    }
    let peers = ["conveyor", "conveyor-sleep", "futex-floor", "ipmpsc"];
    let echoes: Vec<Echo> = peers.iter().map(|p| Echo::start(p)).collect();
    let payload = Payload(vec![0x5A; 64]);
    let m = alternate(rounds, peers.len(), |k| echoes[k].round(2_000, &payload));
    drop(echoes);
    println!(
        "pingpong 64B, mean round trip per slice, median (us): conveyor {:.2}  conveyor-sleep {:.2}  futex-floor {:.2}  ipmpsc {:.2}  | sleep/floor {:.2}x  (load {})",
        m[0],
        m[1],
        m[2],
        m[3],
        m[1] / m[2],
        loadavg()
    );
}

/// Whether the side-by-side pass runs: under `cargo bench`, with no filter or one that
/// matches it.
fn wants_side_by_side() -> bool {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        return false;
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    filters.is_empty() || filters.iter().any(|f| "side_by_side".contains(f.as_str()))
}

fn main() {
    let _children = process::init(&[
        entry!(shm_sink),
        entry!(shm_sink_spin),
        entry!(shm_echo),
        entry!(ipmpsc_sink),
        entry!(ipmpsc_echo),
        entry!(ipc_sink),
        entry!(ipc_echo),
        entry!(sock_sink),
        entry!(sock_echo),
        entry!(futex_echo),
    ]);
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    throughput(&mut c);
    pingpong(&mut c);
    c.final_summary();
    if wants_side_by_side() {
        side_by_side();
    }
}
