//! conveyor-core's `Channel` conformance suite across processes: the one
//! [`RemoteChild`] that a transport's [`Remote`](conveyor_core::testing::Remote) hands back for
//! a producer or a consumer started with [`Process::start`] (feature `testing`, for
//! transports' tests).
//!
//! A transport's factory starts the child with its handle in the arguments and wraps it; the
//! child runs [`run_producer`](conveyor_core::testing::run_producer) or
//! [`run_consumer`](conveyor_core::testing::run_consumer) and, for a consumer, puts the ids it
//! got into a results queue the parent made:
//!
//! ```text
//! impl Remote<ShmQueue<Item>> for Shm {
//!     fn start(&self, q: &ShmQueue<Item>, role: Role) -> Result<Box<dyn RemoteChild>, String> {
//!         match role {
//!             Role::Produce { first, count } => {
//!                 RemoteProcess::producer(Process::new("produce", (q, first, count)))
//!             }
//!             Role::Consume { .. } => {
//!                 let results = results_queue()?;
//!                 RemoteProcess::consumer(Process::new("consume", (q, &results)), results)
//!             }
//!         }
//!     }
//! }
//! ```

use std::fmt;
use std::time::Duration;

use conveyor_core::testing::{RemoteChild, GENEROUS};
use conveyor_core::Channel;

use crate::handle::Child;
use crate::process::Process;

/// Fetches what a consumer child handed back, once it has ended.
type Collect = Box<dyn FnOnce() -> Result<Vec<u64>, String> + Send>;

/// A producer or consumer of the conformance suite running in a child process.
pub struct RemoteProcess {
    child: Child,
    collect: Option<Collect>,
}

impl fmt::Debug for RemoteProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteProcess")
            .field("child", &self.child)
            .field("consumer", &self.collect.is_some())
            .finish()
    }
}

impl RemoteProcess {
    /// Starts a producer child (one that hands nothing back).
    pub fn producer(process: Process) -> Result<Box<dyn RemoteChild>, String> {
        RemoteProcess::start(process, None)
    }

    /// Starts a consumer child that puts the ids it got into `results` before it ends; once it
    /// has ended, [`finish`](RemoteChild::finish) gets them from there (waiting at most
    /// [`GENEROUS`]).
    pub fn consumer<R>(process: Process, results: R) -> Result<Box<dyn RemoteChild>, String>
    where
        R: Channel<Vec<u64>> + Send + 'static,
    {
        RemoteProcess::consumer_with(process, move || {
            results
                .get_timeout(GENEROUS)
                .map_err(|e| format!("the consumer sent no results: {e}"))
        })
    }

    /// Starts a consumer child whose results `collect` fetches once it has ended: for a results
    /// queue that must also be removed afterwards (on a server that outlives the test).
    pub fn consumer_with<F>(process: Process, collect: F) -> Result<Box<dyn RemoteChild>, String>
    where
        F: FnOnce() -> Result<Vec<u64>, String> + Send + 'static,
    {
        RemoteProcess::start(process, Some(Box::new(collect)))
    }

    fn start(process: Process, collect: Option<Collect>) -> Result<Box<dyn RemoteChild>, String> {
        let child = process.start().map_err(|e| e.to_string())?;
        Ok(Box::new(RemoteProcess { child, collect }))
    }
}

impl RemoteChild for RemoteProcess {
    fn pid(&self) -> u32 {
        self.child.pid()
    }

    fn finish(self: Box<Self>, timeout: Duration) -> Result<Vec<u64>, String> {
        match self.child.join_timeout(timeout) {
            Ok(Some(status)) if status.success() => {}
            Ok(Some(status)) => return Err(format!("the child ended with {status}")),
            Ok(None) => {
                let _ = self.child.kill();
                return Err(format!("the child did not end within {timeout:?}"));
            }
            Err(e) => return Err(format!("could not wait for the child: {e}")),
        }
        match self.collect {
            Some(collect) => collect(),
            None => Ok(Vec::new()),
        }
    }
}
