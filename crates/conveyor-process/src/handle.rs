//! [`Child`]: a started child process: wait for it, ask how it ended, signal it.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::status::{ExitStatus, Report, ReportReader};
use crate::sys;

/// A started child process (Python's `Process` after `start()`).
///
/// Every method takes `&self`, and `Child` is `Send + Sync`: one thread may wait in
/// [`join`](Child::join) while another calls [`terminate`](Child::terminate). Clones are
/// handles to the same child.
///
/// Dropping a `Child` does not stop the process (as in Python). This process keeps track of
/// every child it started until the child has ended: [`active_children`](crate::active_children)
/// lists them, a child that outlives its handle is reaped by a later
/// [`Process::start`](crate::Process::start) (so it does not stay a zombie for long), and when
/// `main` ends (the [`InitGuard`](crate::InitGuard) that [`init`](crate::init) returned is
/// dropped) the children that are not daemons are joined and the daemons terminated, as Python
/// does at exit.
#[derive(Debug, Clone)]
pub struct Child {
    inner: Arc<Tracked>,
}

/// What [`Child`] handles and this process's list of its children share.
#[derive(Debug)]
pub(crate) struct Tracked {
    pid: u32,
    name: String,
    entry: String,
    daemon: bool,
    /// Readable once the child has exited; `None` on kernels without `pidfd_open`.
    pidfd: Option<OwnedFd>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// `None` once reaped.
    child: Option<std::process::Child>,
    status: Option<ExitStatus>,
    reports: ReportReader,
}

impl Child {
    /// A handle to a child just started, which this process now keeps track of.
    pub(crate) fn new(
        child: std::process::Child,
        reports: ReportReader,
        name: String,
        entry: String,
        daemon: bool,
    ) -> Child {
        let pid = child.id();
        let inner = Arc::new(Tracked {
            pid,
            name,
            entry,
            daemon,
            pidfd: sys::pidfd_open(pid).ok(),
            state: Mutex::new(State {
                child: Some(child),
                status: None,
                reports,
            }),
        });
        children().push(Arc::clone(&inner));
        Child { inner }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.inner.pid()
    }

    /// The child's name (Python's `Process.name`).
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// The entry point the child runs.
    pub fn entry(&self) -> &str {
        self.inner.entry()
    }

    /// Whether the child was started as a daemon.
    pub fn is_daemon(&self) -> bool {
        self.inner.is_daemon()
    }

    /// A descriptor that becomes readable when the child exits (Python's `Process.sentinel`),
    /// to wait for a child together with other descriptors (`poll`, a connection's `wait`).
    /// `None` on kernels without `pidfd_open` (Linux before 5.3).
    pub fn sentinel(&self) -> Option<BorrowedFd<'_>> {
        self.inner.sentinel()
    }

    /// The parent's end of the child's standard input, if [`Process::stdin`](crate::Process::stdin)
    /// was `Stdio::piped()`; `None` after the first call.
    pub fn take_stdin(&self) -> Option<std::process::ChildStdin> {
        self.inner.take_stdin()
    }

    /// The parent's end of the child's standard output, if
    /// [`Process::stdout`](crate::Process::stdout) was `Stdio::piped()`; `None` after the first
    /// call.
    pub fn take_stdout(&self) -> Option<std::process::ChildStdout> {
        self.inner.take_stdout()
    }

    /// The parent's end of the child's standard error, if
    /// [`Process::stderr`](crate::Process::stderr) was `Stdio::piped()`; `None` after the first
    /// call.
    pub fn take_stderr(&self) -> Option<std::process::ChildStderr> {
        self.inner.take_stderr()
    }

    /// Whether the child is still running (Python's `is_alive()`).
    pub fn is_alive(&self) -> bool {
        self.inner.is_alive()
    }

    /// How the child ended, or `None` while it runs (Python's `exitcode`); does not wait.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.inner.exit_status()
    }

    /// Waits until the child ends and returns how it ended. Calling it again returns the same
    /// status at once.
    pub fn join(&self) -> Result<ExitStatus, Error> {
        self.inner.join()
    }

    /// Waits at most `timeout` for the child to end: `Some(status)` if it did, `None` if it
    /// still runs.
    pub fn join_timeout(&self, timeout: Duration) -> Result<Option<ExitStatus>, Error> {
        self.inner.join_timeout(timeout)
    }

    /// Sends SIGTERM (Python's `terminate()`). The entry point is not unwound: the process ends
    /// at once unless it handles the signal. Does nothing if the child has already been reaped.
    pub fn terminate(&self) -> Result<(), Error> {
        self.inner.terminate()
    }

    /// Sends SIGKILL (Python's `kill()`). Does nothing if the child has already been reaped.
    pub fn kill(&self) -> Result<(), Error> {
        self.inner.kill()
    }
}

impl Tracked {
    /// The child's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// The child's name (Python's `Process.name`).
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The entry point the child runs.
    pub(crate) fn entry(&self) -> &str {
        &self.entry
    }

    /// Whether the child was started as a daemon.
    pub(crate) fn is_daemon(&self) -> bool {
        self.daemon
    }

    /// A descriptor that becomes readable when the child exits (Python's `Process.sentinel`),
    /// to wait for a child together with other descriptors (`poll`, a connection's `wait`).
    /// `None` on kernels without `pidfd_open` (Linux before 5.3).
    pub(crate) fn sentinel(&self) -> Option<BorrowedFd<'_>> {
        self.pidfd.as_ref().map(|fd| fd.as_fd())
    }

    /// The parent's end of the child's standard input, if [`Process::stdin`](crate::Process::stdin)
    /// was `Stdio::piped()`; `None` after the first call.
    pub(crate) fn take_stdin(&self) -> Option<std::process::ChildStdin> {
        self.lock().child.as_mut().and_then(|c| c.stdin.take())
    }

    /// The parent's end of the child's standard output, if
    /// [`Process::stdout`](crate::Process::stdout) was `Stdio::piped()`; `None` after the first
    /// call.
    pub(crate) fn take_stdout(&self) -> Option<std::process::ChildStdout> {
        self.lock().child.as_mut().and_then(|c| c.stdout.take())
    }

    /// The parent's end of the child's standard error, if
    /// [`Process::stderr`](crate::Process::stderr) was `Stdio::piped()`; `None` after the first
    /// call.
    pub(crate) fn take_stderr(&self) -> Option<std::process::ChildStderr> {
        self.lock().child.as_mut().and_then(|c| c.stderr.take())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reaps the child if it has exited; returns its status once known.
    fn poll(&self, state: &mut State) -> Result<Option<ExitStatus>, Error> {
        if let Some(s) = &state.status {
            return Ok(Some(s.clone()));
        }
        let child = state.child.as_mut().expect("a child not yet reaped");
        match child
            .try_wait()
            .map_err(Error::io("checking whether the child exited"))?
        {
            None => Ok(None),
            Some(raw) => Ok(Some(self.record(state, raw))),
        }
    }

    /// Records how the reaped child ended.
    fn record(&self, state: &mut State, raw: std::process::ExitStatus) -> ExitStatus {
        state.child = None;
        let status = final_status(raw, &mut state.reports);
        tracing::debug!(pid = self.pid, entry = %self.entry, %status, "child process ended");
        state.status = Some(status.clone());
        status
    }

    /// Whether the child is still running (Python's `is_alive()`).
    pub(crate) fn is_alive(&self) -> bool {
        let mut state = self.lock();
        !matches!(self.poll(&mut state), Ok(Some(_)))
    }

    /// How the child ended, or `None` while it runs (Python's `exitcode`); does not wait.
    pub(crate) fn exit_status(&self) -> Option<ExitStatus> {
        let mut state = self.lock();
        self.poll(&mut state).ok().flatten()
    }

    /// Waits until the child ends and returns how it ended. Calling it again returns the same
    /// status at once.
    pub(crate) fn join(&self) -> Result<ExitStatus, Error> {
        if let Some(s) = self.exit_status() {
            return Ok(s);
        }
        // Wait without holding the lock, so terminate() and kill() stay available meanwhile.
        let waited = match &self.pidfd {
            Some(fd) => sys::wait_readable(fd.as_fd(), None).map(|_| ()),
            None => sys::wait_exited_no_reap(self.pid),
        };
        let mut state = self.lock();
        match self.poll(&mut state)? {
            Some(s) => Ok(s),
            None => {
                // The wait returned without the child having exited: an error. If it did not
                // say what, block in wait() itself, which cannot return early.
                waited.map_err(Error::io("waiting for the child"))?;
                let child = state.child.as_mut().expect("a child not yet reaped");
                let raw = child.wait().map_err(Error::io("waiting for the child"))?;
                Ok(self.record(&mut state, raw))
            }
        }
    }

    /// Waits at most `timeout` for the child to end: `Some(status)` if it did, `None` if it
    /// still runs.
    pub(crate) fn join_timeout(&self, timeout: Duration) -> Result<Option<ExitStatus>, Error> {
        if let Some(s) = self.exit_status() {
            return Ok(Some(s));
        }
        match &self.pidfd {
            Some(fd) => {
                sys::wait_readable(fd.as_fd(), Some(timeout))
                    .map_err(Error::io("waiting for the child"))?;
                let mut state = self.lock();
                self.poll(&mut state)
            }
            None => {
                // Without pidfd (Linux before 5.3) nothing signals an exit to wait on with a
                // deadline: check with a short, growing pause.
                let deadline = Instant::now() + timeout;
                let mut pause = Duration::from_micros(100);
                loop {
                    if let Some(s) = self.exit_status() {
                        return Ok(Some(s));
                    }
                    let now = Instant::now();
                    if now >= deadline {
                        return Ok(None);
                    }
                    std::thread::sleep(pause.min(deadline - now));
                    pause = (pause * 2).min(Duration::from_millis(10));
                }
            }
        }
    }

    /// Sends SIGTERM (Python's `terminate()`). The entry point is not unwound: the process ends
    /// at once unless it handles the signal. Does nothing if the child has already been reaped.
    pub(crate) fn terminate(&self) -> Result<(), Error> {
        self.signal(libc::SIGTERM)
    }

    /// Sends SIGKILL (Python's `kill()`). Does nothing if the child has already been reaped.
    pub(crate) fn kill(&self) -> Result<(), Error> {
        self.signal(libc::SIGKILL)
    }

    fn signal(&self, sig: libc::c_int) -> Result<(), Error> {
        // Under the lock the child cannot be reaped meanwhile, so its pid cannot have been
        // reused by another process.
        let state = self.lock();
        if state.child.is_none() {
            return Ok(());
        }
        sys::send_signal(self.pid, sig).map_err(Error::io("signalling the child"))
    }
}

/// The children this process started that were not known to have ended when last checked.
fn children() -> MutexGuard<'static, Vec<Arc<Tracked>>> {
    static CHILDREN: Mutex<Vec<Arc<Tracked>>> = Mutex::new(Vec::new());
    CHILDREN.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reaps the children that have exited (whether or not their handle is still held) and
/// returns those still running.
pub(crate) fn active() -> Vec<Child> {
    // Lock order: this list, then a child's state (polling); nothing takes them the other way
    // round (a start pushes to the list while holding no child's state).
    let mut list = children();
    list.retain(|c| c.is_alive());
    list.iter()
        .map(|inner| Child {
            inner: Arc::clone(inner),
        })
        .collect()
}

/// Reaps the children that have exited.
pub(crate) fn reap_detached() {
    let _ = active();
}

/// Combines how the process exited with what the child reported before it did.
fn final_status(raw: std::process::ExitStatus, reports: &mut ReportReader) -> ExitStatus {
    let reported = reports.drain_now().unwrap_or_default();
    for r in reported.into_iter().rev() {
        match r {
            Report::Panicked(m) => return ExitStatus::Panicked(m),
            Report::Failed(m) => return ExitStatus::Failed(m),
            Report::Ok => break,
            _ => {}
        }
    }
    ExitStatus::from_std(raw)
}
