//! [`LocalServer`]: a throwaway `redis-server` for tests, examples and benchmarks, and
//! [`Target`], which picks the server they use.
//!
//! A `LocalServer` runs the `redis-server` found on `PATH`, on a free port of 127.0.0.1, with
//! its files in a temporary directory, and stops it when dropped. `CONVEYOR_REDIS_URL` points
//! tests and examples at an existing server instead.

use std::io::{self, BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The environment variable naming an existing server to use instead of starting one.
pub const URL_VAR: &str = "CONVEYOR_REDIS_URL";

/// How long a starting server may take to say it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A `redis-server` child process on a free local port (see the [module](self) docs).
///
/// ```no_run
/// use conveyor_redis::LocalServer;
///
/// let server = LocalServer::start()?;
/// println!("redis at {}", server.url());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct LocalServer {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
    password: Option<String>,
    persistent: bool,
}

/// Settings for a [`LocalServer`].
#[derive(Debug, Clone, Default)]
pub struct LocalServerOptions {
    /// A password for the `default` user (the URL then carries it).
    pub password: Option<String>,
    /// Keep data across [`LocalServer::restart`] (append-only file, fsync always).
    pub persistent: bool,
}

impl LocalServer {
    /// Starts a server with no password and no persistence.
    pub fn start() -> io::Result<Self> {
        Self::start_with(LocalServerOptions::default())
    }

    /// Starts a server with `options`.
    pub fn start_with(options: LocalServerOptions) -> io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("conveyor-redis-")
            .tempdir()?;
        let mut server = LocalServer {
            child: None,
            dir,
            port: 0,
            password: options.password,
            persistent: options.persistent,
        };
        let mut last = None;
        // A free port found by binding port 0 may be taken by someone else before the server
        // binds it: try a few.
        for _ in 0..5 {
            server.port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            match server.spawn() {
                Ok(()) => return Ok(server),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("redis-server did not start")))
    }

    fn spawn(&mut self) -> io::Result<()> {
        let mut cmd = Command::new("redis-server");
        cmd.arg("--port")
            .arg(self.port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--save")
            .arg("")
            .arg("--daemonize")
            .arg("no")
            .arg("--logfile")
            .arg("");
        if self.persistent {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        if let Some(pw) = &self.password {
            cmd.arg("--requirepass").arg(pw);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot run redis-server (is it installed and on PATH?): {e}"),
                )
            })?;
        let stdout = child.stdout.take().expect("stdout was piped");
        let (tx, rx) = std::sync::mpsc::channel();
        // The server's log goes to its stdout: read it until it says it is ready, then keep
        // draining it so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            let mut log = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(t) = &tx {
                    if line.contains("Ready to accept connections") {
                        let _ = t.send(Ok(()));
                        tx = None;
                    } else {
                        log.push(line);
                    }
                }
            }
            if let Some(t) = tx {
                let _ = t.send(Err(log.join("\n")));
            }
        });
        match rx.recv_timeout(READY_TIMEOUT) {
            Ok(Ok(())) => {
                self.child = Some(child);
                Ok(())
            }
            Ok(Err(log)) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(io::Error::other(format!(
                    "redis-server on port {} exited before it was ready:\n{log}",
                    self.port
                )))
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("redis-server was not ready within {READY_TIMEOUT:?}"),
                ))
            }
        }
    }

    /// The URL to reach it (`redis://127.0.0.1:PORT/`, with the password if it has one).
    pub fn url(&self) -> String {
        match &self.password {
            Some(pw) => format!("redis://:{pw}@127.0.0.1:{}/", self.port),
            None => format!("redis://127.0.0.1:{}/", self.port),
        }
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server (SIGKILL: a crash, not a clean shutdown) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server and starts it again on the same port and directory; without
    /// persistence it comes back empty.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop();
        self.spawn()
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The server a test, an example or a benchmark runs against.
#[derive(Debug)]
pub enum Target {
    /// The server `CONVEYOR_REDIS_URL` names.
    External(String),
    /// A server started for this run.
    Local(LocalServer),
}

impl Target {
    /// `CONVEYOR_REDIS_URL` if it is set, else a [`LocalServer`] if `redis-server` is on
    /// `PATH`. `Ok(None)` says why neither is there (the caller prints it and skips), except
    /// in CI (`CI=true`), where a missing server is an error: there the tests must run.
    pub fn from_env() -> Result<Option<Target>, String> {
        if let Ok(url) = std::env::var(URL_VAR) {
            if !url.is_empty() {
                return Ok(Some(Target::External(url)));
            }
        }
        match LocalServer::start() {
            Ok(server) => Ok(Some(Target::Local(server))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let why = format!(
                    "no Redis server: {URL_VAR} is not set and redis-server is not on PATH ({e}); \
                     install it (apt-get install -y redis-server) or set {URL_VAR}"
                );
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    Err(format!("{why} (CI=true: the Redis tests must run in CI)"))
                } else {
                    Ok(None)
                }
            }
            Err(e) => Err(format!("could not start redis-server: {e}")),
        }
    }

    /// The URL to reach it.
    pub fn url(&self) -> String {
        match self {
            Target::External(url) => url.clone(),
            Target::Local(server) => server.url(),
        }
    }

    /// The local server, if this run started one (tests that restart the server need it).
    pub fn local(&mut self) -> Option<&mut LocalServer> {
        match self {
            Target::External(_) => None,
            Target::Local(server) => Some(server),
        }
    }
}
