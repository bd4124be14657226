//! Connection cost between two processes, against a raw Unix socketpair with length-prefixed
//! frames (the floor any framing on a socket can reach) and against ipc-channel, in the same run.
//!
//! Workloads, each with the peer in a child process started by `conveyor-process`:
//! - `1p1c/{64B,4KiB,1MiB}`: the child sends messages as fast as it can, the parent receives
//!   them (`send_bytes`/`recv_bytes_into` for conveyor; one `write` of header+payload and two
//!   `read_exact` calls for the raw socket; `IpcBytesSender`/`IpcBytesReceiver` for
//!   ipc-channel);
//! - `*_serde`: the same through the typed path, a `serde_bytes` payload so that no byte is
//!   serialized one at a time (`send`/`recv` for conveyor, `IpcSender`/`IpcReceiver` for
//!   ipc-channel);
//! - `*_batched`: conveyor's bytes with buffered sends (`set_buffered_sends`), flushed once at
//!   the end of the run instead of one system call per message;
//! - `pingpong/64B`: the parent sends 64 bytes, the child echoes them, one round trip per
//!   iteration (raw bytes for every peer); conveyor with its adaptive spin (the default) and
//!   without (`set_spin(false)` on both ends);
//! - `conveyor_shm`: conveyor's bytes over a pipe built with
//!   `PipeBuilder::shared_memory(true)` (the messages in a shared-memory ring, the socket for
//!   waking and end of file), in every workload;
//! - `conveyor_pipes`: conveyor's bytes over a socketpair whose two ends moved their messages
//!   to a pair of OS pipes (`Connection::move_to_pipes`/`accept_pipes`), in every workload.
//!
//! After criterion's groups it measures each workload again, alternating the peers from round
//! to round so that all see the same machine state, and prints median throughput and round trip
//! with the ratios conveyor/raw and conveyor/ipc-channel. Targets: conveyor's bytes at least
//! 0.9x the raw socketpair at 1 MiB and 1.0x at 64 B; 64 B batched at least 5 M messages/s; a
//! ping-pong median within 1.1x the raw socketpair's, and at most 3 us with the spin.
//!
//! ```text
//! cargo bench -p conveyor --no-default-features --features pipe,process --bench pipe
//! ```
//!
//! The ipc-channel child creates its channels and hands them to the parent through an
//! `IpcOneShotServer` whose name it receives as its argument.
//!
//! criterion_main! would generate a `main` that runs before anything else; the child processes
//! must branch into their entry point first, so this bench writes its own `main`.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use conveyor::pipe::{Connection, PipeBuilder};
use conveyor::process::{self as process, entry, Child, Process};
use criterion::{BenchmarkId, Criterion, Throughput};
use ipc_channel::ipc::{
    self as ipc, IpcBytesReceiver, IpcBytesSender, IpcOneShotServer, IpcReceiver, IpcSender,
};
use serde::{Deserialize, Serialize};

#[path = "common/side.rs"]
mod side;

use side::alternate;

/// A command from the parent: what the child does next.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum Command {
    /// Send `count` messages of `size` bytes as bytes.
    Produce { count: u64, size: u64 },
    /// Send `count` messages of `size` bytes through the codec.
    ProduceSerde { count: u64, size: u64 },
    /// Echo `count` messages back.
    Echo { count: u64 },
    /// Send `count` messages of `size` bytes with buffered sends, then flush.
    ProduceBuffered { count: u64, size: u64 },
    /// Spin before sleeping in receives (1) or not (0).
    Spin { on: u64 },
    /// Leave.
    Exit,
}

impl Command {
    fn to_bytes(self) -> [u8; 24] {
        let (k, a, b) = match self {
            Command::Produce { count, size } => (1u64, count, size),
            Command::ProduceSerde { count, size } => (2, count, size),
            Command::Echo { count } => (3, count, 0),
            Command::ProduceBuffered { count, size } => (4, count, size),
            Command::Spin { on } => (5, on, 0),
            Command::Exit => (0, 0, 0),
        };
        let mut out = [0u8; 24];
        out[..8].copy_from_slice(&k.to_le_bytes());
        out[8..16].copy_from_slice(&a.to_le_bytes());
        out[16..].copy_from_slice(&b.to_le_bytes());
        out
    }

    fn from_bytes(b: &[u8]) -> Command {
        let word = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap());
        match word(0) {
            1 => Command::Produce {
                count: word(1),
                size: word(2),
            },
            2 => Command::ProduceSerde {
                count: word(1),
                size: word(2),
            },
            3 => Command::Echo { count: word(1) },
            4 => Command::ProduceBuffered {
                count: word(1),
                size: word(2),
            },
            5 => Command::Spin { on: word(1) },
            _ => Command::Exit,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Payload<'a>(#[serde(with = "serde_bytes")] &'a [u8]);

#[derive(Serialize, Deserialize)]
struct OwnedPayload(#[serde(with = "serde_bytes")] Vec<u8>);

// ------------------------------------------------------------------------ conveyor

/// Child side over a conveyor Connection.
fn conveyor_peer(conn: Connection) {
    let mut buf = Vec::new();
    loop {
        conn.recv_bytes_into(&mut buf).unwrap();
        match Command::from_bytes(&buf) {
            Command::Produce { count, size } => {
                let payload = vec![7u8; size as usize];
                for _ in 0..count {
                    conn.send_bytes(&payload).unwrap();
                }
            }
            Command::ProduceSerde { count, size } => {
                let payload = vec![7u8; size as usize];
                for _ in 0..count {
                    conn.send(&Payload(&payload)).unwrap();
                }
            }
            Command::Echo { count } => {
                for _ in 0..count {
                    conn.recv_bytes_into(&mut buf).unwrap();
                    conn.send_bytes(&buf).unwrap();
                }
            }
            Command::ProduceBuffered { count, size } => {
                let payload = vec![7u8; size as usize];
                conn.set_buffered_sends(true);
                for _ in 0..count {
                    conn.send_bytes(&payload).unwrap();
                }
                conn.set_buffered_sends(false);
            }
            Command::Spin { on } => conn.set_spin(on != 0),
            Command::Exit => return,
        }
    }
}

/// Child side over a conveyor Connection that moves to pipes first (the parent starts the move).
fn conveyor_piped_peer(mut conn: Connection) {
    assert!(
        conn.accept_pipes().unwrap(),
        "the parent declined the pipes"
    );
    conveyor_peer(conn)
}

struct ConveyorPeer {
    conn: Connection,
    child: Child,
    buf: Vec<u8>,
}

impl ConveyorPeer {
    fn start(shared_memory: bool) -> Self {
        let (conn, theirs) = PipeBuilder::new()
            .shared_memory(shared_memory)
            .build()
            .unwrap();
        let child = Process::new("conveyor_peer", theirs).start().unwrap();
        ConveyorPeer {
            conn,
            child,
            buf: Vec::new(),
        }
    }

    /// A peer whose connection moved to pipes.
    fn start_piped() -> Self {
        let (mut conn, theirs) = PipeBuilder::new().build().unwrap();
        let child = Process::new("conveyor_piped_peer", theirs).start().unwrap();
        assert!(conn.move_to_pipes().unwrap(), "SIGPIPE is ignored here");
        ConveyorPeer {
            conn,
            child,
            buf: Vec::new(),
        }
    }

    fn command(&self, c: Command) {
        self.conn.send_bytes(&c.to_bytes()).unwrap();
    }

    fn receive(&mut self, count: u64, size: u64) -> Duration {
        self.command(Command::Produce { count, size });
        let t0 = Instant::now();
        for _ in 0..count {
            let n = self.conn.recv_bytes_into(&mut self.buf).unwrap();
            debug_assert_eq!(n as u64, size);
        }
        t0.elapsed()
    }

    fn receive_serde(&mut self, count: u64, size: u64) -> Duration {
        self.command(Command::ProduceSerde { count, size });
        let t0 = Instant::now();
        for _ in 0..count {
            let p: OwnedPayload = self.conn.recv().unwrap();
            debug_assert_eq!(p.0.len() as u64, size);
        }
        t0.elapsed()
    }

    fn receive_batched(&mut self, count: u64, size: u64) -> Duration {
        self.command(Command::ProduceBuffered { count, size });
        let t0 = Instant::now();
        for _ in 0..count {
            let n = self.conn.recv_bytes_into(&mut self.buf).unwrap();
            debug_assert_eq!(n as u64, size);
        }
        t0.elapsed()
    }

    /// Turns the spin on or off on both ends.
    fn spin(&mut self, on: bool) {
        self.command(Command::Spin { on: on as u64 });
        self.conn.set_spin(on);
    }

    fn pingpong(&mut self, count: u64) -> Duration {
        self.command(Command::Echo { count });
        let msg = [1u8; 64];
        let t0 = Instant::now();
        for _ in 0..count {
            self.conn.send_bytes(&msg).unwrap();
            self.conn.recv_bytes_into(&mut self.buf).unwrap();
        }
        t0.elapsed()
    }
}

impl Drop for ConveyorPeer {
    fn drop(&mut self) {
        self.command(Command::Exit);
        let _ = self.child.join();
    }
}

// ----------------------------------------------------------------------- raw socket

/// A socketpair end that travels to the child as an inherited descriptor.
#[derive(Serialize, Deserialize)]
struct RawEnd(#[serde(with = "conveyor::core::handoff::fd")] UnixStream);

/// The baseline's framing: a 4-byte big-endian length, then the payload, written with one
/// `write_all` from a reused buffer; read with `read_exact` twice into a reused buffer.
struct RawFramed {
    sock: UnixStream,
    out: Vec<u8>,
}

impl RawFramed {
    fn send(&mut self, payload: &[u8]) {
        self.out.clear();
        self.out
            .extend_from_slice(&(payload.len() as u32).to_be_bytes());
        self.out.extend_from_slice(payload);
        self.sock.write_all(&self.out).unwrap();
    }

    fn recv(&mut self, buf: &mut Vec<u8>) -> usize {
        let mut h = [0u8; 4];
        self.sock.read_exact(&mut h).unwrap();
        let n = u32::from_be_bytes(h) as usize;
        buf.resize(n, 0);
        self.sock.read_exact(&mut buf[..n]).unwrap();
        n
    }
}

fn raw_peer(end: RawEnd) {
    let mut s = RawFramed {
        sock: end.0,
        out: Vec::new(),
    };
    let mut buf = Vec::new();
    loop {
        s.recv(&mut buf);
        match Command::from_bytes(&buf) {
            Command::Produce { count, size }
            | Command::ProduceSerde { count, size }
            | Command::ProduceBuffered { count, size } => {
                let payload = vec![7u8; size as usize];
                for _ in 0..count {
                    s.send(&payload);
                }
            }
            Command::Spin { .. } => {}
            Command::Echo { count } => {
                for _ in 0..count {
                    let n = s.recv(&mut buf);
                    s.send(&buf[..n]);
                }
            }
            Command::Exit => return,
        }
    }
}

struct RawPeer {
    s: RawFramed,
    child: Child,
    buf: Vec<u8>,
}

impl RawPeer {
    fn start() -> Self {
        let (mine, theirs) = UnixStream::pair().unwrap();
        let child = Process::new("raw_peer", RawEnd(theirs)).start().unwrap();
        RawPeer {
            s: RawFramed {
                sock: mine,
                out: Vec::new(),
            },
            child,
            buf: Vec::new(),
        }
    }

    fn command(&mut self, c: Command) {
        self.s.send(&c.to_bytes());
    }

    fn receive(&mut self, count: u64, size: u64) -> Duration {
        self.command(Command::Produce { count, size });
        let t0 = Instant::now();
        for _ in 0..count {
            let n = self.s.recv(&mut self.buf);
            debug_assert_eq!(n as u64, size);
        }
        t0.elapsed()
    }

    fn pingpong(&mut self, count: u64) -> Duration {
        self.command(Command::Echo { count });
        let msg = [1u8; 64];
        let t0 = Instant::now();
        for _ in 0..count {
            self.s.send(&msg);
            self.s.recv(&mut self.buf);
        }
        t0.elapsed()
    }
}

impl Drop for RawPeer {
    fn drop(&mut self) {
        self.command(Command::Exit);
        let _ = self.child.join();
    }
}

// ---------------------------------------------------------------------- ipc-channel

/// What the ipc-channel child hands the parent: the command sender (commands and ping-pong
/// messages go to the child on it), the raw-bytes receiver and the typed receiver (the child
/// produces and echoes on their senders).
type IpcBoot = (IpcBytesSender, IpcBytesReceiver, IpcReceiver<OwnedPayload>);

fn ipc_peer(server: String) {
    let (cmd_tx, cmd_rx) = ipc::bytes_channel().unwrap();
    let (data_tx, data_rx) = ipc::bytes_channel().unwrap();
    let (typed_tx, typed_rx) = ipc::channel::<OwnedPayload>().unwrap();
    IpcSender::<IpcBoot>::connect(server)
        .unwrap()
        .send((cmd_tx, data_rx, typed_rx))
        .unwrap();
    // The typed sender is retyped to the borrowing payload so that sending needs no copy of
    // the payload into an owned vector; both serialize to the same bytes.
    let typed_tx = typed_tx.to_opaque();
    loop {
        let cmd = cmd_rx.recv().unwrap();
        match Command::from_bytes(&cmd) {
            Command::Produce { count, size } => {
                let payload = vec![7u8; size as usize];
                for _ in 0..count {
                    data_tx.send(&payload).unwrap();
                }
            }
            Command::ProduceSerde { count, size } => {
                let payload = vec![7u8; size as usize];
                let tx: IpcSender<Payload<'_>> = typed_tx.clone().to();
                for _ in 0..count {
                    tx.send(Payload(&payload)).unwrap();
                }
            }
            Command::Echo { count } => {
                for _ in 0..count {
                    let m = cmd_rx.recv().unwrap();
                    data_tx.send(&m).unwrap();
                }
            }
            Command::ProduceBuffered { .. } | Command::Spin { .. } => {}
            Command::Exit => return,
        }
    }
}

struct IpcPeer {
    cmd: IpcBytesSender,
    data: IpcBytesReceiver,
    typed: IpcReceiver<OwnedPayload>,
    child: Child,
}

impl IpcPeer {
    fn start() -> Self {
        let (server, name): (IpcOneShotServer<IpcBoot>, String) = IpcOneShotServer::new().unwrap();
        let child = Process::new("ipc_peer", &name).start().unwrap();
        let (_, (cmd, data, typed)) = server.accept().unwrap();
        IpcPeer {
            cmd,
            data,
            typed,
            child,
        }
    }

    fn command(&self, c: Command) {
        self.cmd.send(&c.to_bytes()).unwrap();
    }

    fn receive(&mut self, count: u64, size: u64) -> Duration {
        self.command(Command::Produce { count, size });
        let t0 = Instant::now();
        for _ in 0..count {
            let m = self.data.recv().unwrap();
            debug_assert_eq!(m.len() as u64, size);
        }
        t0.elapsed()
    }

    fn receive_serde(&mut self, count: u64, size: u64) -> Duration {
        self.command(Command::ProduceSerde { count, size });
        let t0 = Instant::now();
        for _ in 0..count {
            let p = self.typed.recv().unwrap();
            debug_assert_eq!(p.0.len() as u64, size);
        }
        t0.elapsed()
    }

    fn pingpong(&mut self, count: u64) -> Duration {
        self.command(Command::Echo { count });
        let msg = [1u8; 64];
        let t0 = Instant::now();
        for _ in 0..count {
            self.cmd.send(&msg).unwrap();
            self.data.recv().unwrap();
        }
        t0.elapsed()
    }
}

impl Drop for IpcPeer {
    fn drop(&mut self) {
        self.command(Command::Exit);
        let _ = self.child.join();
    }
}

// ------------------------------------------------------------------------ the runs

const SIZES: [(u64, &str); 3] = [(64, "64B"), (4096, "4KiB"), (1 << 20, "1MiB")];

/// The peers, each with its child process.
struct Peers {
    conveyor: ConveyorPeer,
    /// Conveyor over a shared-memory pipe.
    shm: ConveyorPeer,
    /// Conveyor moved to a pair of OS pipes.
    piped: ConveyorPeer,
    raw: RawPeer,
    ipc: IpcPeer,
}

fn bench(c: &mut Criterion, p: &mut Peers) {
    let mut group = c.benchmark_group("pipe_1p1c");
    group.sample_size(20);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    for (size, name) in SIZES {
        group.throughput(Throughput::Bytes(size));
        group.bench_function(BenchmarkId::new("raw_socketpair", name), |b| {
            b.iter_custom(|iters| p.raw.receive(iters, size))
        });
        group.bench_function(BenchmarkId::new("conveyor_bytes", name), |b| {
            b.iter_custom(|iters| p.conveyor.receive(iters, size))
        });
        group.bench_function(BenchmarkId::new("conveyor_shm", name), |b| {
            b.iter_custom(|iters| p.shm.receive(iters, size))
        });
        group.bench_function(BenchmarkId::new("conveyor_pipes", name), |b| {
            b.iter_custom(|iters| p.piped.receive(iters, size))
        });
        group.bench_function(BenchmarkId::new("conveyor_serde", name), |b| {
            b.iter_custom(|iters| p.conveyor.receive_serde(iters, size))
        });
        group.bench_function(BenchmarkId::new("conveyor_batched", name), |b| {
            b.iter_custom(|iters| p.conveyor.receive_batched(iters, size))
        });
        group.bench_function(BenchmarkId::new("ipc_channel_bytes", name), |b| {
            b.iter_custom(|iters| p.ipc.receive(iters, size))
        });
        group.bench_function(BenchmarkId::new("ipc_channel_serde", name), |b| {
            b.iter_custom(|iters| p.ipc.receive_serde(iters, size))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("pipe_pingpong");
    group.sample_size(20);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    group.bench_function(BenchmarkId::new("raw_socketpair", "64B"), |b| {
        b.iter_custom(|iters| p.raw.pingpong(iters))
    });
    group.bench_function(BenchmarkId::new("conveyor_bytes", "64B"), |b| {
        b.iter_custom(|iters| p.conveyor.pingpong(iters))
    });
    group.bench_function(BenchmarkId::new("conveyor_shm", "64B"), |b| {
        b.iter_custom(|iters| p.shm.pingpong(iters))
    });
    group.bench_function(BenchmarkId::new("conveyor_pipes", "64B"), |b| {
        b.iter_custom(|iters| p.piped.pingpong(iters))
    });
    group.bench_function(BenchmarkId::new("ipc_channel_bytes", "64B"), |b| {
        b.iter_custom(|iters| p.ipc.pingpong(iters))
    });
    group.finish();
}

/// Alternating rounds of each workload; prints medians and ratios from this one run.
fn side_by_side(p: &mut Peers) {
    let rounds = 21;
    println!("\nside by side, {rounds} alternating rounds each, medians (k messages/s):");
    println!(
        "{:<14} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} | {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "workload",
        "raw",
        "conv bytes",
        "conv batch",
        "conv serde",
        "conv shm",
        "conv pipes",
        "ipc bytes",
        "ipc serde",
        "cb/raw",
        "cs/raw",
        "shm/raw",
        "cp/raw",
        "cb/ipcb",
        "cs/ipcs"
    );
    for (size, name) in SIZES {
        let count = match size {
            64 => 100_000,
            4096 => 40_000,
            _ => 400,
        };
        let m = alternate(rounds, 8, |peer| {
            let t = match peer {
                0 => p.raw.receive(count, size),
                1 => p.conveyor.receive(count, size),
                2 => p.conveyor.receive_batched(count, size),
                3 => p.conveyor.receive_serde(count, size),
                4 => p.shm.receive(count, size),
                5 => p.piped.receive(count, size),
                6 => p.ipc.receive(count, size),
                _ => p.ipc.receive_serde(count, size),
            };
            count as f64 / t.as_secs_f64() / 1e3
        });
        let (r, cb, cx, cs, sh, cp, ib, is) = (m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7]);
        println!(
            "{:<14} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>10.1} | {:>8.2}x {:>8.2}x {:>8.2}x {:>8.2}x {:>8.2}x {:>8.2}x",
            format!("1p1c {name}"),
            r,
            cb,
            cx,
            cs,
            sh,
            cp,
            ib,
            is,
            cb / r,
            cs / r,
            sh / r,
            cp / r,
            cb / ib,
            cs / is
        );
    }
    let count = 20_000u64;
    let m = alternate(rounds, 8, |peer| {
        let t = match peer {
            0 => p.raw.pingpong(count),
            1 => p.conveyor.pingpong(count),
            2 => {
                p.conveyor.spin(false);
                let t = p.conveyor.pingpong(count);
                p.conveyor.spin(true);
                t
            }
            3 => p.shm.pingpong(count),
            4 => {
                p.shm.spin(false);
                let t = p.shm.pingpong(count);
                p.shm.spin(true);
                t
            }
            5 => p.piped.pingpong(count),
            6 => {
                p.piped.spin(false);
                let t = p.piped.pingpong(count);
                p.piped.spin(true);
                t
            }
            _ => p.ipc.pingpong(count),
        };
        t.as_secs_f64() / count as f64 * 1e6
    });
    let (r, cb, cn, sb, sn, pb, pn, ib) = (m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7]);
    println!(
        "round trip (us): raw {r:.2}, conveyor (spin) {cb:.2} ({:.2}x raw), conveyor (no spin) \
         {cn:.2} ({:.2}x raw), conveyor shm (spin) {sb:.2} ({:.2}x raw), conveyor shm (no spin) \
         {sn:.2} ({:.2}x raw), conveyor pipes (spin) {pb:.2} ({:.2}x raw), conveyor pipes (no \
         spin) {pn:.2} ({:.2}x raw), ipc-channel {ib:.2} ({:.2}x conveyor/ipc)",
        cb / r,
        cn / r,
        sb / r,
        sn / r,
        pb / r,
        pn / r,
        cb / ib
    );
    println!(
        "(throughput: higher is better; targets conv bytes/raw >= 0.9 at 1 MiB and >= 1.0 at \
         64 B, conv batch >= 5000 k/s at 64 B; round trip: lower is better, conveyor/raw <= 1.1 \
         and <= 3 us with the spin)"
    );
}

fn main() {
    // A child started by this bench runs its entry point here and exits.
    let _children = process::init(&[
        entry!(conveyor_peer),
        entry!(conveyor_piped_peer),
        entry!(raw_peer),
        entry!(ipc_peer),
    ]);
    let mut peers = Peers {
        conveyor: ConveyorPeer::start(false),
        shm: ConveyorPeer::start(true),
        piped: ConveyorPeer::start_piped(),
        raw: RawPeer::start(),
        ipc: IpcPeer::start(),
    };
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c, &mut peers);
    c.final_summary();
    // `cargo test --benches` runs this binary with --bench absent: keep that quick.
    if std::env::args().any(|a| a == "--bench") {
        side_by_side(&mut peers);
    }
}
