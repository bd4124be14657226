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
use std::time::{Duration, Instant};

use conveyor::process::{self as process, entry, Child, Process};
use conveyor::shm::ShmQueue;
use conveyor::Channel;
use criterion::{BenchmarkId, Criterion, Throughput};
use ipc_channel::ipc::{self, IpcOneShotServer, IpcReceiver, IpcSender};
use serde::{Deserialize, Serialize};

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
        req.close();
        child.join().unwrap();
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

fn main() {
    process::init(&[
        entry!(shm_sink),
        entry!(shm_echo),
        entry!(ipmpsc_sink),
        entry!(ipmpsc_echo),
        entry!(ipc_sink),
        entry!(ipc_echo),
        entry!(sock_sink),
        entry!(sock_echo),
    ]);
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    throughput(&mut c);
    pingpong(&mut c);
    c.final_summary();
}
