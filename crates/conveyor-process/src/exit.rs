//! What happens to a process's children when it ends, as in Python's `multiprocessing`: the
//! daemons are terminated and the other children are joined.
//!
//! Python does it in an `atexit` handler; here it is the [`InitGuard`] that [`init`](crate::init)
//! returns, dropped when `main` ends (it returns, returns an error, or panics and unwinds), and
//! the end of a child's entry point (a child that started children of its own waits for them
//! before it exits, as a Python child does).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::handle::{self, Child};
use crate::status::ExitStatus;

/// How long the children's end waits for a daemon that was sent SIGTERM before it sends
/// SIGKILL (a daemon that handles SIGTERM gets this long to finish).
pub const DAEMON_GRACE: Duration = Duration::from_secs(2);

/// How many [`InitGuard`]s are alive, and whether one ever was.
static LIVE_GUARDS: AtomicUsize = AtomicUsize::new(0);
static HAD_GUARD: AtomicBool = AtomicBool::new(false);
static WARNED_LATE_START: AtomicBool = AtomicBool::new(false);

/// Returned by [`init`](crate::init): keep it alive for the whole of `main`. When it is dropped
/// (at the end of `main`, however `main` ends short of `std::process::exit`), the children this
/// process started and that still run are dealt with as Python deals with them at exit:
///
/// 1. every daemon child is sent SIGTERM ([`Child::terminate`]);
/// 2. every child that is not a daemon is joined: `main` does not end before they do;
/// 3. the daemons are joined too, and one still running [`DAEMON_GRACE`] after its SIGTERM is
///    killed (SIGKILL).
///
/// ```
/// use conveyor_process::{entry, Process};
///
/// fn worker(n: u32) {
///     println!("worker {n} done");
/// }
///
/// fn main() -> Result<(), conveyor_process::Error> {
///     let _children = conveyor_process::init(&[entry!(worker)]); // not `let _ =`
///     for n in 0..3 {
///         Process::new("worker", n).start()?; // no join needed: `_children` joins them
///     }
///     Ok(())
/// } // here the three workers are joined
/// ```
///
/// Bind it to a named variable (`let _children = init(..)`): `let _ = init(..)` drops it at once,
/// and then nothing is joined at the end (a child started after that says so on standard
/// error). A program that leaves with `std::process::exit` skips it, as Python's `os._exit`
/// skips Python's handler: its daemons still die (the kernel kills them with their parent), its
/// other children keep running. [`InitGuard::finish`] does the same as dropping the guard,
/// and says how each child ended. A program that starts only other programs' entry points
/// ([`Process::program`](crate::Process::program)) has nothing to register and calls
/// `init(&[])` for the guard. In tests, [`init_test!`](crate::init_test!) returns no guard:
/// a test joins its own children.
#[must_use = "keep the guard alive for the whole of main (`let _children = init(..)`): when it is \
              dropped, the children that are not daemons are joined and the daemons terminated"]
#[derive(Debug)]
pub struct InitGuard {
    _private: (),
}

impl InitGuard {
    pub(crate) fn new() -> InitGuard {
        LIVE_GUARDS.fetch_add(1, Ordering::SeqCst);
        HAD_GUARD.store(true, Ordering::SeqCst);
        InitGuard { _private: () }
    }

    /// Terminates the daemon children and joins every child now, as dropping the guard does,
    /// and returns each child with how it ended, in the order they were dealt with (the
    /// children that are not daemons first).
    pub fn finish(self) -> Vec<(Child, ExitStatus)> {
        let ended = finish_children();
        drop(self);
        ended
    }
}

impl Drop for InitGuard {
    fn drop(&mut self) {
        if LIVE_GUARDS.fetch_sub(1, Ordering::SeqCst) == 1 {
            finish_children();
        }
    }
}

/// Called by every start: warns once if this process had an [`InitGuard`] and dropped it, so
/// that the child just started will not be joined at the end of `main`.
pub(crate) fn check_guard_alive() {
    if HAD_GUARD.load(Ordering::SeqCst)
        && LIVE_GUARDS.load(Ordering::SeqCst) == 0
        && !WARNED_LATE_START.swap(true, Ordering::SeqCst)
    {
        tracing::warn!("a child was started after conveyor_process::init's guard was dropped");
        eprintln!(
            "conveyor-process: warning: a child process was started after the guard returned \
             by conveyor_process::init was dropped, so it will not be joined when main ends; \
             keep the guard for the whole of main (`let _children = init(..)`, not \
             `let _ = init(..)`)"
        );
    }
}

/// Terminates the daemons, joins the other children, then joins the daemons (killing one
/// that outlasts [`DAEMON_GRACE`]). Children started meanwhile (by another thread) are dealt
/// with too. Returns each child and how it ended.
pub(crate) fn finish_children() -> Vec<(Child, ExitStatus)> {
    let mut ended: Vec<(Child, ExitStatus)> = Vec::new();
    loop {
        let running: Vec<Child> = handle::active()
            .into_iter()
            .filter(|c| ended.iter().all(|(e, _)| e.pid() != c.pid()))
            .collect();
        if running.is_empty() {
            return ended;
        }
        let (daemons, others): (Vec<Child>, Vec<Child>) =
            running.into_iter().partition(Child::is_daemon);
        for d in &daemons {
            tracing::debug!(
                pid = d.pid(),
                name = d.name(),
                "terminating daemon child at exit"
            );
            if let Err(e) = d.terminate() {
                tracing::warn!(pid = d.pid(), error = %e, "could not terminate a daemon child");
            }
        }
        for c in others {
            tracing::debug!(pid = c.pid(), name = c.name(), "joining child at exit");
            let status = match c.join() {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(pid = c.pid(), error = %e, "could not join a child at exit");
                    ExitStatus::Exited(-1)
                }
            };
            ended.push((c, status));
        }
        for d in daemons {
            let status = match d.join_timeout(DAEMON_GRACE) {
                Ok(Some(s)) => Ok(s),
                Ok(None) => {
                    tracing::debug!(pid = d.pid(), "daemon child ignored SIGTERM; killing it");
                    let _ = d.kill();
                    d.join()
                }
                Err(e) => Err(e),
            };
            let status = status.unwrap_or_else(|e| {
                tracing::warn!(pid = d.pid(), error = %e, "could not join a daemon child");
                ExitStatus::Exited(-1)
            });
            ended.push((d, status));
        }
    }
}
