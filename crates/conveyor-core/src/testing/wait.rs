//! Waiting on real signals: a call run under a watchdog, a thread known to be asleep in a
//! blocking call, a child process asleep.

use std::fmt;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::GENEROUS;

/// How often the state of a thread is read while waiting for it to fall asleep. This is the
/// interval of a poll for a condition, not a guess at how long something takes.
const POLL: Duration = Duration::from_millis(1);

/// Runs `f` on a thread of its own and returns what it returns; panics, naming `what`, if it
/// does not return within `timeout` (a hang fails the case instead of hanging the test run).
/// A panic in `f` is passed on.
pub fn within<R: Send + 'static>(
    what: &str,
    timeout: Duration,
    f: impl FnOnce() -> R + Send + 'static,
) -> R {
    let (tx, rx) = mpsc::channel();
    let thread = thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(timeout) {
        Ok(r) => r,
        Err(RecvTimeoutError::Timeout) => panic!("{what}: did not return within {timeout:?}"),
        Err(RecvTimeoutError::Disconnected) => match thread.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the thread ended without sending its result or panicking"),
        },
    }
}

/// A thread running one blocking call, for a case to wake.
///
/// [`start`](Waiter::start) returns once the thread is about to make the call (it reports its
/// thread id just before); [`until_asleep`](Waiter::until_asleep) waits until it is asleep in
/// the kernel, so inside the call; [`finish`](Waiter::finish) joins it with a generous timeout.
pub struct Waiter<R> {
    what: String,
    tid: Option<u32>,
    result: Receiver<R>,
    thread: Option<JoinHandle<()>>,
    done: Option<R>,
}

impl<R> fmt::Debug for Waiter<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waiter")
            .field("what", &self.what)
            .field("tid", &self.tid)
            .finish_non_exhaustive()
    }
}

impl<R: Send + 'static> Waiter<R> {
    /// Starts a thread that makes the call `f`; returns once the thread is about to make it.
    pub fn start(what: impl Into<String>, f: impl FnOnce() -> R + Send + 'static) -> Waiter<R> {
        let what = what.into();
        let (tid_tx, tid_rx) = mpsc::channel();
        let (tx, result) = mpsc::channel();
        let thread = thread::spawn(move || {
            let _ = tid_tx.send(current_tid());
            let _ = tx.send(f());
        });
        let tid = tid_rx
            .recv_timeout(GENEROUS)
            .unwrap_or_else(|_| panic!("{what}: the thread did not start within {GENEROUS:?}"));
        Waiter {
            what,
            tid,
            result,
            thread: Some(thread),
            done: None,
        }
    }

    /// Waits until the thread is asleep in the kernel (state `S` in `/proc`), which it can
    /// only be inside its call, or has returned from the call. Where `/proc` cannot be read
    /// this returns at once. Panics if neither happens within [`GENEROUS`]: a blocked call
    /// must sleep, not spin.
    pub fn until_asleep(mut self) -> Self {
        let Some(tid) = self.tid else {
            return self;
        };
        let path = format!("/proc/self/task/{tid}/stat");
        let deadline = Instant::now() + GENEROUS;
        loop {
            if self.returned() {
                return self;
            }
            match thread_state(&path) {
                Some('S') => return self,
                // The thread is gone: it returned, and its result is waiting.
                None => return self,
                Some(_) => {}
            }
            if Instant::now() >= deadline {
                panic!(
                    "{}: the call neither returned nor fell asleep within {GENEROUS:?}: a blocked \
                     call must sleep in the kernel, not spin",
                    self.what
                );
            }
            thread::sleep(POLL);
        }
    }

    /// Whether the call has returned (its result is kept for [`finish`](Waiter::finish)).
    pub fn returned(&mut self) -> bool {
        if self.done.is_none() {
            if let Ok(r) = self.result.try_recv() {
                self.done = Some(r);
            }
        }
        self.done.is_some()
    }

    /// Waits at most [`GENEROUS`] for the call to return and gives its result; panics if it
    /// does not return (the case names what it was waiting for), and passes on its panic.
    pub fn finish(mut self) -> R {
        if let Some(r) = self.done.take() {
            return r;
        }
        match self.result.recv_timeout(GENEROUS) {
            Ok(r) => r,
            Err(RecvTimeoutError::Timeout) => panic!(
                "{}: still blocked {GENEROUS:?} after it should have been woken",
                self.what
            ),
            Err(RecvTimeoutError::Disconnected) => match self.thread.take().map(JoinHandle::join) {
                Some(Err(panic)) => std::panic::resume_unwind(panic),
                _ => unreachable!("the thread ended without sending its result or panicking"),
            },
        }
    }
}

/// Waits until every thread of process `pid` is asleep in the kernel (or the process has
/// ended), as [`Waiter::until_asleep`] does for a thread; returns at once where `/proc`
/// cannot be read. Panics, naming `what`, if that does not happen within [`GENEROUS`].
pub fn asleep(what: &str, pid: u32) {
    let dir = format!("/proc/{pid}/task");
    if std::fs::read_dir("/proc/self/task").is_err() {
        return;
    }
    let deadline = Instant::now() + GENEROUS;
    loop {
        let Ok(tasks) = std::fs::read_dir(&dir) else {
            return; // the process has ended
        };
        let all_asleep = tasks.flatten().all(|t| {
            matches!(
                thread_state(&t.path().join("stat").to_string_lossy()),
                Some('S') | Some('Z') | None
            )
        });
        if all_asleep {
            return;
        }
        if Instant::now() >= deadline {
            panic!(
                "{what}: process {pid} did not fall asleep within {GENEROUS:?}: a blocked call \
                 must sleep in the kernel, not spin"
            );
        }
        thread::sleep(POLL);
    }
}

/// This thread's id, from `/proc/thread-self` (`<pid>/task/<tid>`); `None` without `/proc`.
fn current_tid() -> Option<u32> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// The state letter of the thread whose `stat` file is at `path` (`R`, `S`, `D`, ...), or
/// `None` if it cannot be read (the thread has ended).
fn thread_state(path: &str) -> Option<char> {
    let stat = std::fs::read_to_string(path).ok()?;
    // "tid (comm) S ...": the name may hold spaces and parentheses, so look past the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.trim_start().chars().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_blocked_on_a_channel_is_seen_asleep() {
        let (tx, rx) = mpsc::channel::<u32>();
        let w = Waiter::start("recv", move || rx.recv().unwrap()).until_asleep();
        if let Some(tid) = w.tid {
            let state = thread_state(&format!("/proc/self/task/{tid}/stat"));
            assert_eq!(state, Some('S'), "the waiter should be asleep in recv");
        }
        tx.send(7).unwrap();
        assert_eq!(w.finish(), 7);
    }

    #[test]
    fn within_passes_results_and_panics_on() {
        assert_eq!(within("add", GENEROUS, || 2 + 2), 4);
        let r = std::panic::catch_unwind(|| within("boom", GENEROUS, || panic!("inner")));
        assert!(r.is_err());
    }

    #[test]
    fn this_process_is_not_asleep_while_it_runs() {
        // The test thread itself is running while it reads its own state.
        if let Some(tid) = current_tid() {
            let state = thread_state(&format!("/proc/self/task/{tid}/stat"));
            assert_eq!(state, Some('R'));
        }
    }
}
