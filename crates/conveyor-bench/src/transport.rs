//! What the harness measures: a [`Transport`] runs a [`Workload`] and returns a [`Sample`].
//!
//! In-process transports (conveyor's thread queues and the Rust peers) are all an
//! [`InProcess`], built from a function that makes a channel: the workloads of the
//! [`crate::workload`] module do the rest, generically.

use std::fmt;

use conveyor_core::{Channel, Joinable};
use serde::{Deserialize, Serialize};

use crate::payload::Msg;
use crate::peers::Duplex;
use crate::workload::{self, RunError, Sample, Workload};

/// Where the two ends of a transport live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Threads of one process.
    Thread,
    /// Separate processes.
    Process,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scope::Thread => "threads",
            Scope::Process => "processes",
        })
    }
}

/// Whose transport it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// One of conveyor's transports.
    Conveyor,
    /// A Rust crate (or std) that a user would otherwise pick.
    RustPeer,
    /// The Python original, run through `python3`.
    Python,
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::Conveyor => "conveyor",
            Family::RustPeer => "rust peer",
            Family::Python => "python",
        })
    }
}

/// A transport's name and place in the comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransportInfo {
    /// The name shown in the table, matched by `--filter`: `conveyor Queue`, `flume`.
    pub name: String,
    /// Threads or processes.
    pub scope: Scope,
    /// Ours, a peer, or Python.
    pub family: Family,
    /// The name of the Python transport this one is compared with, if any.
    pub python_original: Option<String>,
}

impl TransportInfo {
    /// A transport named `name`.
    pub fn new(name: &str, scope: Scope, family: Family, python_original: Option<&str>) -> Self {
        TransportInfo {
            name: name.to_string(),
            scope,
            family,
            python_original: python_original.map(str::to_string),
        }
    }
}

/// Something the harness can run workloads over.
pub trait Transport: Send + Sync {
    /// Its name and place in the comparison.
    fn info(&self) -> &TransportInfo;

    /// `Ok` if it can run `workload`, or why not ("point-to-point: one producer, one consumer").
    fn supports(&self, workload: &Workload) -> Result<(), String>;

    /// Whether it is a pool (it runs the pool workloads, and no queue workload). A pool's
    /// table and a queue's never list each other.
    fn is_pool(&self) -> bool {
        false
    }

    /// `Ok` if it can run on this machine at all, or why not ("python3 not found").
    fn available(&self) -> Result<(), String> {
        Ok(())
    }

    /// Runs `workload` once with about `count` messages (or round trips).
    fn run(&self, workload: &Workload, count: usize) -> Result<Sample, RunError>;
}

type ThroughputFn =
    dyn Fn(usize, usize, usize, usize, usize) -> Result<Sample, RunError> + Send + Sync;
type PingPongFn = dyn Fn(usize, usize) -> Result<Sample, RunError> + Send + Sync;
type JoinableFn = dyn Fn(usize, usize, usize) -> Result<Sample, RunError> + Send + Sync;

/// An in-process transport: a function that makes a queue, run by the generic workloads.
///
/// ```
/// use conveyor_bench::peers::FlumeChannel;
/// use conveyor_bench::transport::{Family, InProcess, Scope, Transport, TransportInfo};
/// use conveyor_bench::workload::Workload;
///
/// let t = InProcess::queue(
///     TransportInfo::new("flume", Scope::Thread, Family::RustPeer, Some("python queue.Queue")),
///     FlumeChannel::bounded,
/// );
/// let w = Workload::PingPong { size: 8 };
/// assert!(t.supports(&w).is_ok());
/// assert!(t.run(&w, 100).is_ok());
/// assert!(t.supports(&Workload::Joinable { size: 8 }).is_err());
/// ```
pub struct InProcess {
    info: TransportInfo,
    throughput: Box<ThroughputFn>,
    pingpong: Box<PingPongFn>,
    joinable: Option<Box<JoinableFn>>,
}

impl fmt::Debug for InProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InProcess")
            .field("info", &self.info)
            .field("joinable", &self.joinable.is_some())
            .finish_non_exhaustive()
    }
}

impl InProcess {
    /// A transport whose channels come from `make(capacity)`; handles are shared by cloning.
    pub fn queue<C, F>(info: TransportInfo, make: F) -> Self
    where
        C: Channel<Msg> + Clone + Send + 'static,
        F: Fn(usize) -> C + Send + Sync + 'static,
    {
        let make = std::sync::Arc::new(make);
        let m2 = make.clone();
        InProcess {
            info,
            throughput: Box::new(move |p, c, size, cap, count| {
                workload::throughput(make(cap), p, c, size, count)
            }),
            pingpong: Box::new(move |size, rounds| {
                let (ping, pong) = (m2(1), m2(1));
                workload::pingpong(
                    Duplex::new(ping.clone(), pong.clone()),
                    Duplex::new(pong, ping),
                    size,
                    rounds,
                )
            }),
            joinable: None,
        }
    }

    /// Adds the joinable workload, over queues from `make(capacity)`.
    pub fn with_joinable<C, F>(mut self, make: F) -> Self
    where
        C: Channel<Msg> + Joinable + Clone + Send + 'static,
        F: Fn(usize) -> C + Send + Sync + 'static,
    {
        self.joinable = Some(Box::new(move |size, cap, count| {
            workload::joinable(make(cap), size, count)
        }));
        self
    }
}

impl Transport for InProcess {
    fn info(&self) -> &TransportInfo {
        &self.info
    }

    fn supports(&self, workload: &Workload) -> Result<(), String> {
        match workload {
            w if w.is_pool() => Err("a queue, not a pool".to_string()),
            Workload::Joinable { .. } if self.joinable.is_none() => {
                Err("no task_done/join".to_string())
            }
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
            } => (self.throughput)(producers, consumers, size, cap, count),
            Workload::PingPong { size } => (self.pingpong)(size, count),
            Workload::PoolSubmit { .. } | Workload::PoolMap => {
                Err(RunError::new("a queue, not a pool"))
            }
            Workload::Joinable { size } => match &self.joinable {
                Some(f) => f(size, cap, count),
                None => Err(RunError::new("no task_done/join")),
            },
        }
    }
}
