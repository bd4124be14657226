//! The `Channel` conformance suite (`conveyor_core::testing`) against a `pipe()`'s two
//! `Connection`s, a point-to-point link: one end puts, the other gets. The cases that ask for
//! other processes pass an end to a real child process (conveyor-process), which inherits its
//! descriptor.

use std::sync::Arc;
use std::time::Duration;

use conveyor_core::testing::{
    run_consumer, run_producer, Capacity, Factory, Profile, Remote, RemoteChild, Role,
};
use conveyor_core::{Channel, Joinable, QueueInfo};
use conveyor_pipe::{pipe, Connection, PipeBuilder};
use conveyor_process::{init_test, Child, Process};

/// The two ends of one pipe: `.0` sends, `.1` receives. Producer threads share the sending end
/// and consumer threads the receiving end (a `Connection` sends and receives whole messages
/// when shared).
struct Link(Arc<Connection>, Arc<Connection>);

fn produce((end, first, count): (Connection, u64, u64)) -> Result<(), String> {
    run_producer(&end, first, count)
}

fn consume((end, results): (Connection, Connection)) -> Result<(), String> {
    let got = run_consumer(&end, None)?;
    results.send(&got).map_err(|e| format!("{e}"))
}

/// A child process with an end of the link, and the connection a consumer reports on.
struct PipeChild {
    child: Child,
    results: Option<Connection>,
}

impl RemoteChild for PipeChild {
    fn pid(&self) -> u32 {
        self.child.pid()
    }

    fn finish(self: Box<Self>, timeout: Duration) -> Result<Vec<u64>, String> {
        // Read the results first: a child blocked sending them would never end.
        let got = match &self.results {
            Some(r) => Channel::<Vec<u64>>::get_timeout(r, timeout)
                .map_err(|e| format!("the consumer sent no results: {e:?}"))?,
            None => Vec::new(),
        };
        match self.child.join_timeout(timeout) {
            Ok(Some(status)) if status.success() => Ok(got),
            Ok(Some(status)) => Err(format!("the child ended with {status}")),
            Ok(None) => {
                let _ = self.child.kill();
                Err(format!("the child did not end within {timeout:?}"))
            }
            Err(e) => Err(format!("could not wait for the child: {e}")),
        }
    }
}

/// A pipe's two ends: over a socketpair, or (`shared_memory`) with their messages in
/// shared memory (`PipeBuilder::shared_memory`).
struct Pipe {
    shared_memory: bool,
}

impl Factory for Pipe {
    type Queue = Link;
    type Handle = Arc<Connection>;

    fn profile(&self) -> Profile {
        Profile::point_to_point(
            "Connection",
            "a connection is bounded by its socket's buffer (a few hundred KiB), not by an \
             item count",
            "a connection's shutdown closes this end for sending (there is no one else to shut \
             it down for): what was sent is in the peer's socket and is still delivered",
        )
    }
    fn create(&self, _capacity: Capacity) -> Link {
        // A small ring, so that a flood of puts fills it as it fills a socket's buffer.
        let (a, b) = PipeBuilder::new()
            .shared_memory(self.shared_memory)
            .ring_bytes(64 << 10)
            .build()
            .expect("make a pipe");
        Link(Arc::new(a), Arc::new(b))
    }
    fn create_auto_shutdown(&self, _capacity: Capacity) -> Result<Link, &'static str> {
        Err(
            "a link has one producer, whose close already ends it for the receiver \
             (close_is_per_handle checks that)",
        )
    }
    fn producer(&self, link: &Link) -> Arc<Connection> {
        link.0.clone()
    }
    fn consumer(&self, link: &Link) -> Arc<Connection> {
        link.1.clone()
    }
    fn joinable(_: &Arc<Connection>) -> Result<&dyn Joinable, &'static str> {
        Err("a connection keeps no task count (multiprocessing's Connection has none either)")
    }
    fn info(_: &Arc<Connection>) -> Result<&dyn QueueInfo, &'static str> {
        Err("a connection is point to point: it has no length or capacity to report")
    }
    fn remote(&self) -> Result<&dyn Remote<Link>, &'static str> {
        Ok(self)
    }
    fn cut_off(&self, _link: &mut Link) -> Result<(), &'static str> {
        Err("a link is its two ends: a peer that goes away ends it (gets drain what was sent,              then Closed, as close_is_per_handle checks), and what it holds is in this end's              socket")
    }
}

impl Remote<Link> for Pipe {
    fn start(&self, link: &Link, role: Role) -> Result<Box<dyn RemoteChild>, String> {
        let (child, results) = match role {
            Role::Produce { first, count } => {
                let c = Process::new("produce", (&*link.0, first, count)).start();
                (c, None)
            }
            Role::Consume { task_done: false } => {
                let (mine, theirs) = pipe().map_err(|e| format!("{e}"))?;
                let c = Process::new("consume", (&*link.1, &theirs)).start();
                (c, Some(mine))
            }
            Role::Consume { task_done: true } => {
                return Err("a connection keeps no task count".into())
            }
        };
        let child = child.map_err(|e| format!("{e}"))?;
        Ok(Box::new(PipeChild { child, results }))
    }
}

conveyor_core::conformance_tests!(
    connection,
    Pipe { shared_memory: false };
    init_test!(produce, consume);
);
conveyor_core::conformance_tests!(
    shared_memory_connection,
    Pipe { shared_memory: true };
    init_test!(produce, consume);
);
