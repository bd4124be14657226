//! [`Process`]: what to start, and how; [`Process::start`] does it.

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use conveyor_core::{handoff, Codec, Postcard};
use serde::Serialize;

use crate::error::Error;
use crate::handle::Child;
use crate::payload::{self, Header};
use crate::registry::{self, Route};
use crate::status::{ExitStatus, Read1, Report, ReportReader};
use crate::sys;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The default for [`Process::start_timeout`].
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(60);

/// A child process to start: an entry point, its arguments, and options. Python's
/// `multiprocessing.Process(target=..., args=...)`.
///
/// The arguments are encoded when the `Process` is made (an encoding error is returned by
/// [`start`](Process::start)); handles in them (queues, connections) travel as described in
/// [`conveyor_core::handoff`].
///
/// ```no_run
/// use conveyor_process::Process;
///
/// let child = Process::new("worker", ("jobs".to_string(), 4u32))
///     .name("worker-1")
///     .daemon(true)
///     .start()?;
/// println!("started {} as pid {}", child.name(), child.pid());
/// let status = child.join()?;
/// assert!(status.success(), "{status}");
/// # Ok::<(), conveyor_process::Error>(())
/// ```
#[derive(Debug)]
pub struct Process {
    entry: String,
    name: Option<String>,
    daemon: bool,
    /// The encoded arguments and the descriptors exported while encoding them.
    args: Result<(Vec<u8>, Vec<OwnedFd>), Error>,
    start_timeout: Duration,
    program: Option<(PathBuf, Vec<OsString>)>,
    stdin: Option<Stdio>,
    stdout: Option<Stdio>,
    stderr: Option<Stdio>,
}

impl Process {
    /// A child that will run the entry point registered as `entry` with `args`.
    ///
    /// `args` must encode to what the entry point takes: `fn worker((n, tag): (u32, String))`
    /// takes `(7u32, "x")` (a `&str` encodes as a `String` does; references encode as their
    /// values). Pass `()` to an entry point that takes `()`.
    pub fn new<A: Serialize>(entry: &str, args: A) -> Process {
        let (encoded, fds) = handoff::export_scope(|| {
            let mut buf = Vec::new();
            Postcard.encode(&args, &mut buf).map(|()| buf)
        });
        let args = encoded
            .map(|bytes| (bytes, fds))
            .map_err(|source| Error::Encode {
                entry: entry.to_string(),
                source,
            });
        Process {
            entry: entry.to_string(),
            name: None,
            daemon: false,
            args,
            start_timeout: DEFAULT_START_TIMEOUT,
            program: None,
            stdin: None,
            stdout: None,
            stderr: None,
        }
    }

    /// The process's name (Python's `Process.name`), which the child reads with
    /// [`current_name`](crate::current_name). Default: `Process-N`, numbered from 1.
    pub fn name(mut self, name: impl Into<String>) -> Process {
        self.name = Some(name.into());
        self
    }

    /// A daemon child is killed (SIGKILL) when this process ends, however it ends: normal
    /// exit, panic, or SIGKILL. See the crate documentation for the details.
    pub fn daemon(mut self, daemon: bool) -> Process {
        self.daemon = daemon;
        self
    }

    /// How long [`start`](Process::start) waits for the child to report that its entry point
    /// runs before it kills it and fails with [`Error::StartTimeout`]. Default: 60 seconds;
    /// a child normally reports within a few milliseconds.
    pub fn start_timeout(mut self, timeout: Duration) -> Process {
        self.start_timeout = timeout;
        self
    }

    /// Runs `program` with `args` instead of re-executing the current binary. The program must
    /// call [`init`](crate::init) first (or be a test binary whose selected test calls
    /// [`init_test!`](crate::init_test!)) with the entry point registered.
    pub fn program<I, S>(mut self, program: impl Into<PathBuf>, args: I) -> Process
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.program = Some((program.into(), args.into_iter().map(Into::into).collect()));
        self
    }

    /// The child's standard input. Default: inherited from this process. With
    /// `Stdio::piped()`, [`Child::take_stdin`] gives the parent's end.
    pub fn stdin(mut self, cfg: impl Into<Stdio>) -> Process {
        self.stdin = Some(cfg.into());
        self
    }

    /// The child's standard output. Default: inherited (it goes where this process's goes).
    /// With `Stdio::piped()`, [`Child::take_stdout`] gives the parent's end.
    pub fn stdout(mut self, cfg: impl Into<Stdio>) -> Process {
        self.stdout = Some(cfg.into());
        self
    }

    /// The child's standard error. Default: inherited (it goes where this process's goes).
    /// With `Stdio::piped()`, [`Child::take_stderr`] gives the parent's end.
    pub fn stderr(mut self, cfg: impl Into<Stdio>) -> Process {
        self.stderr = Some(cfg.into());
        self
    }

    /// Starts the child and returns once its entry point runs: its arguments decoded and its
    /// handles installed (so the parent may drop its own copies of the handles at once: a
    /// shared-memory queue's segment has been opened by the child by then). Fails with a clear [`Error`] when the entry point is unknown, the
    /// arguments do not decode, the program cannot be executed, or the child ends (or stays
    /// silent for [`start_timeout`](Process::start_timeout)) before it reports.
    pub fn start(self) -> Result<Child, Error> {
        let entry = self.entry.clone();
        let result = self.start_inner();
        match &result {
            Ok(child) => tracing::debug!(
                pid = child.pid(),
                entry = %child.entry(),
                name = %child.name(),
                daemon = child.is_daemon(),
                "started child process"
            ),
            Err(error) => tracing::debug!(%entry, %error, "child process failed to start"),
        }
        result
    }

    fn start_inner(self) -> Result<Child, Error> {
        crate::handle::reap_detached();
        crate::exit::check_guard_alive();
        let (args, fds) = self.args?;
        let reexec = self.program.is_none();
        let (program, argv) = match self.program {
            Some(p) => p,
            None => {
                let argv = match registry::route(&self.entry)? {
                    // The parent's own arguments, as Python's spawn children get its
                    // `sys.argv`: a `main` that reads them before `init` reads the same.
                    Route::Main => std::env::args_os().skip(1).collect(),
                    Route::Test(test) => vec![
                        test.into(),
                        "--exact".into(),
                        "--nocapture".into(),
                        "--test-threads=1".into(),
                        "--include-ignored".into(),
                        "-q".into(),
                    ],
                };
                (PathBuf::from("/proc/self/exe"), argv)
            }
        };
        let name = self
            .name
            .unwrap_or_else(|| format!("Process-{}", COUNTER.fetch_add(1, Ordering::Relaxed) + 1));

        let header = Header {
            entry: self.entry.clone(),
            name: name.clone(),
            daemon: self.daemon,
            fds: fds.iter().map(|f| f.as_raw_fd()).collect(),
        };
        let mut memfd =
            sys::memfd(payload::MEMFD_NAME).map_err(Error::io("creating the payload"))?;
        memfd
            .write_all(&payload::encode_prefix(&header))
            .and_then(|()| memfd.write_all(&args))
            .and_then(|()| sys::seal(memfd.as_fd()))
            .map_err(Error::io("writing the payload"))?;
        drop(args);
        let (status_r, status_w) = sys::pipe().map_err(Error::io("creating the status pipe"))?;

        let mut cmd = Command::new(&program);
        cmd.args(&argv);
        if reexec {
            // keep the parent's argv[0] so the child looks like the same program in `ps`
            if let Some(arg0) = std::env::args_os().next() {
                cmd.arg0(arg0);
            }
        }
        cmd.env(
            payload::ENV_VAR,
            format!("{}:{}", memfd.as_raw_fd(), status_w.as_raw_fd()),
        );
        if let Some(s) = self.stdin {
            cmd.stdin(s);
        }
        if let Some(s) = self.stdout {
            cmd.stdout(s);
        }
        if let Some(s) = self.stderr {
            cmd.stderr(s);
        }
        let mut inherit: Vec<RawFd> = vec![memfd.as_raw_fd(), status_w.as_raw_fd()];
        inherit.extend(fds.iter().map(|f| f.as_raw_fd()));
        let daemon = self.daemon;
        // SAFETY: `getpid` has no preconditions.
        let parent_pid = unsafe { libc::getpid() };
        let pre_exec = move || -> std::io::Result<()> {
            // Runs in the forked child before exec: only async-signal-safe calls, no
            // allocation. The descriptors are close-on-exec in the parent; clearing the flag
            // here, in the child's own table, makes them survive this one exec and no other.
            for &fd in &inherit {
                // SAFETY: fcntl is async-signal-safe; `fd` is open (the parent holds it).
                if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if daemon {
                // SAFETY: prctl and getppid are async-signal-safe system calls.
                unsafe {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    // The parent may have died between fork and prctl: then no signal will
                    // come, and we must not outlive it.
                    if libc::getppid() != parent_pid {
                        libc::_exit(1);
                    }
                }
            }
            Ok(())
        };
        // SAFETY: the closure only makes async-signal-safe calls (fcntl, prctl, getppid,
        // _exit) and touches memory allocated before the fork.
        unsafe {
            cmd.pre_exec(pre_exec);
        }

        let spawned = if daemon {
            spawn_daemon(cmd)
        } else {
            cmd.spawn()
        };
        drop(status_w);
        drop(memfd);
        drop(fds);
        let child = spawned.map_err(|source| Error::Spawn {
            program: program.clone(),
            source,
        })?;
        let pid = child.id();
        let mut reader = ReportReader::new(status_r);

        let limit = self.start_timeout;
        let first = reader.next(Some(limit));
        let entry = self.entry;
        // The child has reported a failure (and exits by itself) or closed the pipe: give it the
        // start limit to end, then kill it, so that a start never hangs.
        let fail = |child: std::process::Child, err: Error| -> Result<Child, Error> {
            reap_within(child, limit);
            Err(err)
        };
        match first {
            Ok(Read1::Report(Report::Ready)) => Ok(Child::new(child, reader, name, entry, daemon)),
            Ok(Read1::Report(Report::UnknownEntry(known))) => fail(
                child,
                Error::UnknownEntry {
                    name: entry,
                    known: known
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect(),
                },
            ),
            Ok(Read1::Report(Report::BadArgs(message))) => {
                fail(child, Error::BadArgs { entry, message })
            }
            Ok(Read1::Report(Report::InitTooLate(held))) => fail(
                child,
                Error::InitTooLate {
                    entry,
                    held: held.lines().map(String::from).collect(),
                },
            ),
            Ok(Read1::Report(Report::Launch(message))) => {
                fail(child, Error::Launch { entry, message })
            }
            Ok(Read1::Report(other)) => {
                let _ = sys::send_signal(pid, libc::SIGKILL);
                fail(
                    child,
                    Error::Launch {
                        entry,
                        message: format!("the child sent {other:?} before it reported ready"),
                    },
                )
            }
            Ok(Read1::Eof) => {
                let status = reap_within(child, limit);
                Err(Error::DiedBeforeReport { entry, pid, status })
            }
            Ok(Read1::TimedOut) => {
                let _ = sys::send_signal(pid, libc::SIGKILL);
                reap_within(child, limit);
                Err(Error::StartTimeout {
                    entry,
                    pid,
                    timeout: limit,
                })
            }
            Err(source) => {
                let _ = sys::send_signal(pid, libc::SIGKILL);
                reap_within(child, limit);
                Err(Error::Io {
                    what: "reading the child's first report",
                    source,
                })
            }
        }
    }
}

/// Waits for a child that should be ending; kills it if it has not ended within `limit`.
/// Returns how it ended.
fn reap_within(mut child: std::process::Child, limit: Duration) -> ExitStatus {
    let ended = match sys::pidfd_open(child.id()) {
        Ok(fd) => sys::wait_readable(fd.as_fd(), Some(limit)).unwrap_or(false),
        Err(_) => {
            // no pidfd (Linux before 5.3): check with a short, growing pause
            let deadline = std::time::Instant::now() + limit;
            let mut pause = Duration::from_micros(100);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break true,
                    Ok(None) if std::time::Instant::now() >= deadline => break false,
                    Ok(None) => std::thread::sleep(pause),
                }
                pause = (pause * 2).min(Duration::from_millis(10));
            }
        }
    };
    if !ended {
        let _ = child.kill();
    }
    match child.wait() {
        Ok(s) => ExitStatus::from_std(s),
        Err(_) => ExitStatus::Exited(-1),
    }
}

type SpawnJob = (Command, mpsc::Sender<std::io::Result<std::process::Child>>);

/// Spawns `cmd` from a thread that lives as long as the process.
///
/// Linux sends PR_SET_PDEATHSIG's signal when the *thread* that forked the child ends, not the
/// process. Forking daemons from a thread that never ends makes a daemon die with the process,
/// and not early because the thread that called `start` returned.
fn spawn_daemon(cmd: Command) -> std::io::Result<std::process::Child> {
    static SPAWNER: OnceLock<Option<Mutex<mpsc::Sender<SpawnJob>>>> = OnceLock::new();
    let gone = || std::io::Error::other("the daemon spawner thread could not be started");
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnJob>();
        std::thread::Builder::new()
            .name("conveyor-daemon-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .ok()
            .map(|_| Mutex::new(tx))
    });
    let spawner = spawner.as_ref().ok_or_else(gone)?;
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .send((cmd, reply_tx))
        .map_err(|_| std::io::Error::other("the daemon spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| std::io::Error::other("the daemon spawner thread is gone"))?
}
