//! Start a function in a child process, Python's `multiprocessing.Process`, with queues and
//! connections passed in its arguments.
//!
//! A program registers its entry points by name and calls [`init`] first in `main`, keeping
//! the [`InitGuard`] it returns until `main` ends; a parent starts a child with
//! [`Process::new`]`(name, args)`[`.start()`](Process::start), and gets a [`Child`] to
//! [`join`](Child::join), [`terminate`](Child::terminate) or [`kill`](Child::kill). When `main`
//! ends, the guard joins the children that are not daemons and terminates the daemons, as
//! Python does at exit. Pick it whenever work must run in another process: to use another
//! core without sharing memory, to survive a crash in the worker, or to talk over a
//! `conveyor-shm` queue or a `conveyor-pipe` connection as the seed programs do.
//!
//! | Python                                  | conveyor-process                               |
//! |-----------------------------------------|------------------------------------------------|
//! | `Process(target=f, args=(q, 3))`        | `Process::new("f", (q, 3))` with `f` registered |
//! | `p.name = "w1"`, `p.daemon = True`      | `.name("w1")`, `.daemon(true)`                 |
//! | `p.start()`                             | `.start()?` -> [`Child`]                       |
//! | `p.join()`, `p.join(timeout)`           | [`Child::join`], [`Child::join_timeout`]       |
//! | `p.is_alive()`, `p.pid`, `p.exitcode`   | [`Child::is_alive`], [`Child::pid`], [`Child::exit_status`] |
//! | `p.terminate()`, `p.kill()`             | [`Child::terminate`], [`Child::kill`]          |
//! | `p.sentinel`                            | [`Child::sentinel`]                            |
//! | `current_process().name`               | [`current_name`]                               |
//! | `multiprocessing.active_children()`     | [`active_children`]                            |
//! | non-daemons joined, daemons terminated at exit | the [`InitGuard`] from [`init`], dropped when `main` ends |
//!
//! # Why re-execute instead of fork
//!
//! Forking a running Rust program copies one thread of a process that may have many: a lock
//! another thread held stays locked forever in the child, and the allocator is one such lock.
//! Python's default on Linux was `fork` for the same speed reason, and 3.14 moved away from it
//! for the same danger. So a child here is a fresh `exec` of the current binary
//! (`/proc/self/exe`), Python's `spawn` method, which costs about as much as starting any small
//! program (start and join of a child that does nothing: 2 to 4 ms on the project's loaded
//! 2-core machine, see `benches/process_spawn.rs`) rather than Python's 118 ms, since no
//! interpreter starts. The child learns what to run from one environment variable naming two
//! inherited descriptors: a sealed in-memory file (`memfd`) holding the entry's name and its
//! arguments encoded with postcard, of any size, which the child maps and decodes in place; and
//! a status pipe on which it reports that the entry runs, and then how it ended (so a panic's
//! message reaches the parent, while the child's standard output and error go where the
//! parent's go).
//!
//! # In `main`
//!
//! [`init`] must be the first thing `main` does: in a child it runs the entry point and exits
//! with its status, never returning; in the parent it registers the names and returns an
//! [`InitGuard`]. Keep the guard for the whole of `main` (`let _children = init(..)`, never
//! `let _ = init(..)`, which drops it at once): when `main` ends, however it ends short of
//! `std::process::exit`, the guard's drop terminates the daemon children still running and
//! joins the others, so `main` does not end before its workers do. The child runs with the
//! parent's command-line arguments (as Python's spawn children see the parent's `sys.argv`),
//! so code that only reads them may come before `init`.
//!
//! ```
//! use conveyor_process::{entry, Process};
//!
//! fn greet((who, times): (String, u32)) {
//!     for _ in 0..times {
//!         println!("hello, {who} (from {})", conveyor_process::current_name().unwrap());
//!     }
//! }
//!
//! fn main() -> Result<(), conveyor_process::Error> {
//!     let _children = conveyor_process::init(&[entry!(greet)]);
//!     let child = Process::new("greet", ("bob", 2u32)).start()?;
//!     let status = child.join()?;
//!     assert!(status.success(), "{status}");
//!     Process::new("greet", ("alice", 1u32)).start()?; // joined by `_children` at the end
//!     Ok(())
//! }
//! ```
//!
//! Whatever `main` does before `init`, every child does again (it runs `main` from the top up
//! to `init`). A child whose `main` made a shared-memory queue or lock before `init` would leak
//! it (it exits from inside `init` and never drops it), so such a child refuses to run, removes
//! what it made, and the parent's `start` fails with [`Error::InitTooLate`].
//!
//! An entry point is a function of one argument (a tuple for several, `()` for none) that
//! implements `Deserialize`; it returns `()`, an exit code, or a `Result` (see
//! [`EntryResult`]). [`entry!`]`(f)` names it after the function.
//!
//! # Entry points that register themselves
//!
//! A library crate that starts children of its own registers their entry points once, at link
//! time, with [`register_entry!`] (on the `inventory` crate): conveyor-manager's server
//! (`Manager::builder().spawn()`) and conveyor-pool's workers (`ProcessPool`) do, so a program
//! lists only its own functions in `init`, and a program that has none calls `init(&[])`.
//! `init` (or, in a test, `init_test!()`) is still needed: it is where a child branches off
//! into its entry point, and a process that called neither refuses to start one
//! ([`Error::NotInitialized`]) rather than re-running its whole `main` in the child. An
//! application may register its own functions this way too; one given to `init` or
//! `init_test!` under the same name takes precedence.
//!
//! # In tests
//!
//! libtest owns a test binary's `main`, so a test registers its entries with
//! [`init_test!`] as its first line (never [`init`], which is for a `main`). A child
//! re-executes the test binary with only that test selected
//! (`<test> --exact --nocapture --test-threads=1 --include-ignored -q`): there `init_test!`
//! runs the entry and exits, so the rest of the test runs in the parent alone. Tests may run
//! in parallel, each with its own children, in unit tests and integration tests alike.
//!
//! ```no_run
//! use conveyor_process::{init_test, ExitStatus, Process};
//!
//! fn fails(code: i32) -> i32 {
//!     code
//! }
//!
//! fn explodes(_: ()) {
//!     panic!("boom");
//! }
//!
//! #[test]
//! fn statuses() {
//!     init_test!(fails, explodes); // first line: in a child, this is where it branches off
//!     let a = Process::new("fails", 3).start().unwrap();
//!     assert_eq!(a.join().unwrap(), ExitStatus::Exited(3));
//!     let b = Process::new("explodes", ()).start().unwrap();
//!     assert_eq!(b.join().unwrap(), ExitStatus::Panicked("boom".into()));
//! }
//! ```
//!
//! Good to know:
//!
//! - Entry points registered with [`register_entry!`] (a manager's server, a pool's workers)
//!   need no listing: `init_test!()` with nothing in it is their branch point.
//! - Any test that registers an entry point can serve it (the test that starts the child is
//!   preferred); two tests of one binary that register *different* functions under one name
//!   make [`Error::AmbiguousEntry`] unless the starting test registered it itself.
//! - A child started from a child (a middle process that starts grandchildren) works the same
//!   way: list the grandchildren's entries in the same `init_test!`.
//! - libtest does not capture a child's output: it appears in the test run's output, after
//!   libtest's own `running 1 test` line from the child.
//! - Wait with a limit ([`Child::join_timeout`]) so that a broken child fails the test rather
//!   than hanging it; the crate's own tests do so with a generous one.
//!
//! # Handles in the arguments
//!
//! Queues and connections travel inside the arguments, so a Python line
//! `Process(target=consumer, args=(q, conn))` becomes `Process::new("consumer", (q, conn))`.
//! A shared-memory queue serialises its name; a connection serialises an index to its file
//! descriptor through [`conveyor_core::handoff`], and the descriptor is inherited by that one
//! child only (a duplicate whose close-on-exec flag is cleared between fork and exec, in the
//! child), where it is rebuilt. A handle type made of a descriptor needs one attribute:
//!
//! ```
//! use std::os::unix::net::UnixStream;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct End(#[serde(with = "conveyor_core::handoff::fd")] UnixStream);
//! # let _ = End;
//! ```
//!
//! # Daemons
//!
//! A [`daemon`](Process::daemon) child is killed with SIGKILL as soon as its parent process
//! ends, however it ends (a normal exit, a panic, SIGKILL), as Python's daemon processes are at
//! exit. It is set up between fork and exec with `PR_SET_PDEATHSIG`, with a check that the
//! parent did not die before that took effect. Linux delivers that signal when the *thread*
//! that forked the child ends, so daemons are forked by one thread that lives as long as the
//! process: a daemon started from a short-lived thread does not die with that thread. A daemon
//! is killed without unwinding: it should hold nothing that must be cleaned up, as in Python.
//!
//! At the end of `main` (the [`InitGuard`] dropped) and at the end of a child's entry point,
//! the process first sends SIGTERM to its daemons, then joins its other children, then joins
//! the daemons (one that is still running [`DAEMON_GRACE`] after its SIGTERM gets SIGKILL), as
//! Python's exit handler does. A child that is not a daemon therefore holds up the end of its
//! parent's `main` until it ends; a parent that ends otherwise (`std::process::exit`, a signal,
//! an abort) leaves it running.
//!
//! # Errors
//!
//! [`Process::start`] returns once the child reports that its entry point runs, so every
//! failure to get there is an [`Error`] from `start`, never a hang: an unknown name, a program
//! that cannot be executed, arguments the entry point cannot decode, or a child that ended (or
//! stayed silent for [`Process::start_timeout`]) before it reported.
//!
//! # Platform
//!
//! Linux only: it uses `memfd_create`, `pidfd_open` (Linux 5.3; older kernels fall back to
//! polling in [`Child::join_timeout`]) and `PR_SET_PDEATHSIG`.

#![warn(missing_docs)]

mod child;
mod entry;
mod error;
mod exit;
mod handle;
mod init;
mod payload;
mod process;
mod registry;
mod status;
mod sys;
#[cfg(feature = "testing")]
pub mod testing;

pub use entry::{Entry, EntryResult};
pub use error::Error;
pub use exit::{InitGuard, DAEMON_GRACE};
pub use handle::Child;
pub use init::init;
#[doc(hidden)]
pub use init::init_test as __init_test;
#[doc(hidden)]
pub use inventory as __inventory;
pub use process::{Process, DEFAULT_START_TIMEOUT};
#[doc(hidden)]
pub use registry::StaticEntry as __StaticEntry;
pub use status::ExitStatus;

/// The name of this process if it was started by [`Process::start`] (Python's
/// `current_process().name`), or `None` in a process started some other way.
///
/// ```
/// // this doctest was not started by conveyor-process
/// assert_eq!(conveyor_process::current_name(), None);
/// ```
pub fn current_name() -> Option<&'static str> {
    child::CURRENT.get().map(|c| c.name.as_str())
}

/// The children this process started that are still running: Python's
/// `multiprocessing.active_children()`. Like Python's, it reaps the children that have ended.
///
/// ```
/// assert!(conveyor_process::active_children().is_empty());
/// ```
pub fn active_children() -> Vec<Child> {
    handle::active()
}

/// Whether this process is a daemon child started by [`Process::start`].
pub fn is_daemon() -> bool {
    child::CURRENT.get().is_some_and(|c| c.daemon)
}

/// The entry point this process runs, if it was started by [`Process::start`].
pub fn current_entry() -> Option<&'static str> {
    child::CURRENT.get().map(|c| c.entry.as_str())
}

#[cfg(test)]
mod tests {
    #[test]
    fn handles_can_be_shared_across_threads() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        send_sync::<crate::Child>();
        send_sync::<crate::Error>();
        send_sync::<crate::Entry>();
        send::<crate::Process>();
    }
}
