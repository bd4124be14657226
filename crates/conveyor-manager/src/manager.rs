//! Starting a server: [`Manager::start`], the [`ManagerBuilder`], and the guard that shuts the
//! server down when dropped.

use std::io::{Read, Write};
use std::ops::Deref;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use conveyor_core::{Codec, Postcard};

use conveyor_pipe::{Address, DEFAULT_HANDSHAKE_TIMEOUT};

use crate::client::{Endpoint, ManagerConnection};
use crate::error::{ManagerError, Result};
use crate::protocol::DEFAULT_MAX_FRAME;
use crate::server::Server;

/// The name of the entry point that runs a manager server in a child process
/// ([`ManagerBuilder::spawn`]). The crate registers it itself, at link time, so a program
/// lists nothing for it: its `conveyor_process::init` (or a test's `init_test!`) finds it.
const SERVER_ENTRY: &str = "conveyor-manager-server";

conveyor_process::register_entry!(SERVER_ENTRY => run_child_server);

/// What a child-process server is started with.
#[derive(Debug, Serialize, Deserialize)]
struct ChildServerArgs {
    address: Address,
    #[serde(with = "serde_bytes")]
    authkey: Vec<u8>,
    max_frame: u64,
    /// The child writes the address it listens on here once it does.
    #[serde(with = "conveyor_core::handoff::fd")]
    ready: UnixStream,
}

/// Runs a manager server in this (child) process until a client shuts it down: the entry point
/// [`SERVER_ENTRY`].
fn run_child_server(args: ChildServerArgs) -> std::result::Result<(), String> {
    let max_frame = usize::try_from(args.max_frame).unwrap_or(usize::MAX);
    let server =
        Server::bind(&args.address, args.authkey.into(), max_frame).map_err(|e| e.to_string())?;
    let mut ready = args.ready;
    let mut msg = Vec::new();
    Postcard
        .encode(server.address(), &mut msg)
        .map_err(|e| e.to_string())?;
    ready.write_all(&msg).map_err(|e| e.to_string())?;
    drop(ready);
    server.wait();
    Ok(())
}

/// Starts manager servers. See [`Manager::start`] and [`Manager::builder`].
#[derive(Debug, Clone, Copy)]
pub struct Manager;

impl Manager {
    /// Starts a server on threads of this process, on a fresh Unix socket with a random
    /// authkey, and connects to it: Python's `with Manager() as m:`. The server shuts down
    /// when the returned guard drops.
    ///
    /// ```
    /// use conveyor_manager::Manager;
    ///
    /// let m = Manager::start()?;
    /// let d = m.dict::<String, String>("d")?;
    /// d.set(&"task_1".into(), &"A".into())?;
    /// assert_eq!(d.len()?, 1);
    /// # Ok::<(), conveyor_manager::ManagerError>(())
    /// ```
    pub fn start() -> Result<ManagerGuard> {
        Manager::builder().start()
    }

    /// A builder to choose the address, the authkey and limits.
    pub fn builder() -> ManagerBuilder {
        ManagerBuilder::default()
    }
}

/// Chooses where and how a server listens.
///
/// ```
/// use conveyor_manager::Manager;
///
/// let m = Manager::builder()
///     .address("tcp:127.0.0.1:0".parse().unwrap()) // port 0: any free port
///     .authkey(b"secret".to_vec())
///     .start()?;
/// println!("clients connect to {}", m.address());
/// # Ok::<(), conveyor_manager::ManagerError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ManagerBuilder {
    address: Option<Address>,
    authkey: Option<Vec<u8>>,
    max_frame: usize,
    handshake_timeout: Option<Duration>,
}

impl Default for ManagerBuilder {
    fn default() -> Self {
        ManagerBuilder {
            address: None,
            authkey: None,
            max_frame: DEFAULT_MAX_FRAME,
            handshake_timeout: Some(DEFAULT_HANDSHAKE_TIMEOUT),
        }
    }
}

static SOCKETS: AtomicU64 = AtomicU64::new(0);

/// Random bytes from the kernel.
fn random_bytes(n: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    let mut filled = 0;
    while filled < n {
        // SAFETY: getrandom writes at most `n - filled` bytes into the buffer from `filled`,
        // which is inside `buf`.
        let r = unsafe { libc::getrandom(buf[filled..].as_mut_ptr().cast(), n - filled, 0) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        filled += r as usize;
    }
    Ok(buf)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl ManagerBuilder {
    /// Listens on `address` (default: a fresh Unix socket in the temporary directory).
    pub fn address(mut self, address: Address) -> Self {
        self.address = Some(address);
        self
    }

    /// Authenticates clients with `authkey` (default: 32 random bytes).
    pub fn authkey(mut self, authkey: impl Into<Vec<u8>>) -> Self {
        self.authkey = Some(authkey.into());
        self
    }

    /// Refuses requests larger than `bytes` (default [`DEFAULT_MAX_FRAME`]): the connection
    /// that sent one gets an error and is closed.
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.max_frame = bytes;
        self
    }

    /// Bounds each client's authkey handshake, from its connecting to its last byte, by
    /// `timeout` (default conveyor-pipe's
    /// [`DEFAULT_HANDSHAKE_TIMEOUT`](conveyor_pipe::DEFAULT_HANDSHAKE_TIMEOUT); `None`:
    /// unbounded). It is one deadline for the whole handshake, not a limit per read: a client
    /// that sends its bytes one at a time is cut off when it passes. The guard's own client
    /// uses the same bound. (A server started in a child process with
    /// [`spawn`](ManagerBuilder::spawn) uses the default.)
    pub fn handshake_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    fn resolve(&self) -> Result<(Address, Arc<[u8]>)> {
        let address = match &self.address {
            Some(a) => a.clone(),
            None => {
                let n = SOCKETS.fetch_add(1, Ordering::Relaxed);
                let tag = hex(&random_bytes(6)?);
                let path: PathBuf = std::env::temp_dir().join(format!(
                    "conveyor-manager-{}-{n}-{tag}.sock",
                    std::process::id()
                ));
                Address::Unix(path)
            }
        };
        let authkey: Arc<[u8]> = match &self.authkey {
            Some(k) => k.as_slice().into(),
            None => random_bytes(32)?.into(),
        };
        Ok((address, authkey))
    }

    /// Starts the server on threads of this process without connecting to it.
    pub fn serve(self) -> Result<(Server, Arc<[u8]>)> {
        let (address, authkey) = self.resolve()?;
        let server = Server::bind_with(
            &address,
            authkey.clone(),
            self.max_frame,
            self.handshake_timeout,
        )?;
        Ok((server, authkey))
    }

    /// Starts the server on threads of this process and connects to it.
    pub fn start(self) -> Result<ManagerGuard> {
        let handshake_timeout = self.handshake_timeout;
        let (server, authkey) = self.serve()?;
        let client =
            ManagerConnection::connect_with(server.address(), &authkey, handshake_timeout)?;
        Ok(ManagerGuard {
            client,
            address: server.address().clone(),
            running: Running::Thread(server),
            authkey,
        })
    }

    /// Starts the server in a child process (as Python's `Manager()` does) and connects to
    /// it. The program calls `conveyor_process::init` first in `main` (in a test,
    /// `conveyor_process::init_test!()` first), as every program that starts children does;
    /// the server's entry point needs no listing there, the crate registers it itself.
    /// The child is a daemon: it dies with this process. Dropping the guard asks it to shut
    /// down and waits for it.
    pub fn spawn(self) -> Result<ManagerGuard> {
        let (address, authkey) = self.resolve()?;
        let (mut mine, theirs) = UnixStream::pair()?;
        let child = conveyor_process::Process::new(
            SERVER_ENTRY,
            ChildServerArgs {
                address,
                authkey: authkey.to_vec(),
                max_frame: self.max_frame as u64,
                ready: theirs,
            },
        )
        .name("conveyor-manager")
        .daemon(true)
        .start()
        .map_err(|e| ManagerError::Io(std::io::Error::other(e)))?;
        // The child writes its address once it listens, and closes its end; a child that
        // fails closes it without writing.
        mine.set_read_timeout(Some(Duration::from_secs(60)))?;
        let mut msg = Vec::new();
        mine.read_to_end(&mut msg)?;
        if msg.is_empty() {
            let status = child.join_timeout(Duration::from_secs(5)).ok().flatten();
            let _ = child.kill();
            return Err(ManagerError::Io(std::io::Error::other(format!(
                "the manager process failed to start ({})",
                status.map_or_else(|| "still running".to_string(), |s| s.to_string())
            ))));
        }
        let address: Address = Postcard.decode(&msg)?;
        let client = ManagerConnection::connect(&address, &authkey)?;
        Ok(ManagerGuard {
            client,
            address,
            running: Running::Process(child),
            authkey,
        })
    }
}

/// Where the server of a guard runs.
#[derive(Debug)]
enum Running {
    Thread(Server),
    Process(conveyor_process::Child),
    Stopped,
}

/// A running server and a connection to it. Dereferences to the [`ManagerConnection`]; shuts the server
/// down when dropped.
#[derive(Debug)]
pub struct ManagerGuard {
    client: ManagerConnection,
    address: Address,
    running: Running,
    authkey: Arc<[u8]>,
}

impl ManagerGuard {
    /// The address clients connect to.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// The authkey clients authenticate with (pass it to child processes).
    pub fn authkey(&self) -> &[u8] {
        &self.authkey
    }

    /// The connection of this guard.
    pub fn client(&self) -> &ManagerConnection {
        &self.client
    }

    /// A new connection to the server (for another thread).
    pub fn connect(&self) -> Result<ManagerConnection> {
        ManagerConnection::connect(&self.address, &self.authkey)
    }

    /// The address and authkey, to hand to another process.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            address: self.address.clone(),
            authkey: self.authkey.to_vec(),
        }
    }

    /// The child process running the server, if it runs in one ([`ManagerBuilder::spawn`]).
    pub fn child(&self) -> Option<&conveyor_process::Child> {
        match &self.running {
            Running::Process(c) => Some(c),
            _ => None,
        }
    }

    /// Shuts the server down now: every connection is closed and every waiting request
    /// fails.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        match std::mem::replace(&mut self.running, Running::Stopped) {
            Running::Thread(mut s) => s.shutdown(),
            Running::Process(child) => {
                let _ = self.client.shutdown_server();
                match child.join_timeout(Duration::from_secs(10)) {
                    Ok(Some(_)) => {}
                    _ => {
                        tracing::warn!("the manager process did not stop: killing it");
                        let _ = child.kill();
                        let _ = child.join();
                    }
                }
            }
            Running::Stopped => {}
        }
    }

    /// Blocks until the server stops (a client called [`ManagerConnection::shutdown_server`]).
    pub fn wait(&self) {
        match &self.running {
            Running::Thread(s) => s.wait(),
            Running::Process(c) => {
                let _ = c.join();
            }
            Running::Stopped => {}
        }
    }
}

impl Drop for ManagerGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Deref for ManagerGuard {
    type Target = ManagerConnection;

    fn deref(&self) -> &ManagerConnection {
        &self.client
    }
}
