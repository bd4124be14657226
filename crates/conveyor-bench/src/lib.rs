//! conveyor-bench: the harness behind `cargo xtask bench`. It runs the same workloads over
//! conveyor's transports, the Rust peers a user would otherwise pick (crossbeam-channel, std
//! `mpsc`, flume; ipmpsc and ipc-channel between processes) and the Python originals (`queue.Queue`, `multiprocessing.Queue`, `Pipe`,
//! `Manager`, run through `python3`), side by side in one run, and reports each figure with its
//! ratio to its Python original and to the best Rust peer.
//!
//! Pick it to answer "how does conveyor compare on my machine?": `cargo xtask bench` prints a
//! table grouped by workload and writes `target/conveyor-bench/report.md`, `results.json` and
//! SVG charts (a `--quick` run writes them under `target/conveyor-bench/quick/`, so that it
//! never overwrites the last full report). For the cost of a single operation, use the criterion benchmarks in `benches/`.
//!
//! The workloads ([`workload`]) are written once over [`conveyor_core::Channel`]: that every
//! transport runs them unchanged is the proof that transports are swappable. Peers that are not
//! `Channel` implementations get thin adapters ([`peers`]).
//!
//! | workload | what is measured |
//! |---|---|
//! | `throughput-PxC-SIZE` | P producers, C consumers (1/1 and 4/4), payloads of 8 B, 64 B, 4 KiB, 1 MiB: messages/s and MB/s |
//! | `pingpong-8B` | round trip to an echo and back: median and p99 |
//! | `joinable-64B` | a `task_done` per item taken, then `join`: messages/s |
//! | `pool-submit-N` | pools: N submitter threads (1 and 4), submit + result of empty tasks in batches of 64: tasks/s |
//! | `pool-map` | pools: `map` over 100 000 small tasks, results in order: tasks/s |
//!
//! | transport | scope | compared with |
//! |---|---|---|
//! | conveyor `Queue`, `LifoQueue`, `PriorityQueue` | threads | `queue.Queue`, `LifoQueue`, `PriorityQueue`; crossbeam-channel, std mpsc, flume |
//! | conveyor `ShmQueue`, `JoinableShmQueue` | processes | `multiprocessing.Queue`, `JoinableQueue`; ipmpsc, ipc-channel |
//! | conveyor pipe `Connection`, with buffered sends, over shared memory (`PipeBuilder::shared_memory`), and moved to OS pipes (`Connection::move_to_pipes`) | processes | `multiprocessing.Pipe`; a raw socketpair with length-prefixed frames (the floor of any framing on a socket) |
//! | conveyor Manager queue | processes | `Manager().Queue` |
//! | conveyor Manager dict (writers set keys, takers remove them) | processes | `Manager().dict` |
//! | conveyor `RedisQueue` (1/1 up to 4 KiB, ping-pong; [`redis`]) | processes | redis-py on a stream; the raw redis-rs XADD/XREADGROUP/XACK loop |
//! | conveyor `ThreadPool` | threads | `concurrent.futures.ThreadPoolExecutor`; rayon |
//! | conveyor `ProcessPool` | processes | `ProcessPoolExecutor`, `multiprocessing.Pool` |
//!
//! Process transports run their producers, consumers and echo in child processes started with
//! `conveyor-process` ([`process`]); a binary that uses them calls [`process::init`] first.
//!
//! Byte payloads are a [`Payload`]: shared in-process (a thread queue moves a pointer, as
//! Python moves a reference) and encoded through `serde_bytes` across processes, so the codec
//! writes the bytes in one copy, not one call per byte.
//!
//! # Example
//!
//! Measure one workload over a peer and over conveyor's queue, through the same code:
//!
//! ```
//! use conveyor_bench::peers::CrossbeamChannel;
//! use conveyor_bench::workload::throughput;
//! use conveyor_thread::Queue;
//!
//! let peer = throughput(CrossbeamChannel::bounded(1024), 1, 1, 64, 10_000).unwrap();
//! let ours = throughput(Queue::bounded(1024), 1, 1, 64, 10_000).unwrap();
//! assert!(peer.msgs_per_s().unwrap() > 0.0 && ours.msgs_per_s().unwrap() > 0.0);
//! ```

#![warn(missing_docs)]

pub mod chart;
pub mod cli;
pub mod machine;
pub mod payload;
pub mod peers;
pub mod pool;
pub mod process;
pub mod python;
pub mod redis;
pub mod registry;
pub mod report;
pub mod run;
pub mod stats;
pub mod transport;
pub mod workload;

pub use payload::{Msg, Payload};
pub use transport::{Family, Scope, Transport, TransportInfo};
pub use workload::{RunError, Sample, Workload};
