//! Starting a server: [`Manager::start`], the [`ManagerBuilder`], and the guard that shuts the
//! server down when dropped.

use std::ops::Deref;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::address::Address;
use crate::auth::random_bytes;
use crate::client::Client;
use crate::error::Result;
use crate::server::{Server, DEFAULT_MAX_FRAME};

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
}

impl Default for ManagerBuilder {
    fn default() -> Self {
        ManagerBuilder {
            address: None,
            authkey: None,
            max_frame: DEFAULT_MAX_FRAME,
        }
    }
}

static SOCKETS: AtomicU64 = AtomicU64::new(0);

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
        let server = Server::bind(&address, authkey.clone(), self.max_frame)?;
        Ok((server, authkey))
    }

    /// Starts the server on threads of this process and connects to it.
    pub fn start(self) -> Result<ManagerGuard> {
        let (server, authkey) = self.serve()?;
        let client = Client::connect(server.address(), &authkey)?;
        Ok(ManagerGuard {
            client,
            server,
            authkey,
        })
    }
}

/// A running server and a connection to it. Dereferences to the [`Client`]; shuts the server
/// down when dropped.
#[derive(Debug)]
pub struct ManagerGuard {
    // Declared first so the connection closes before the server shuts down.
    client: Client,
    server: Server,
    authkey: Arc<[u8]>,
}

impl ManagerGuard {
    /// The address clients connect to.
    pub fn address(&self) -> &Address {
        self.server.address()
    }

    /// The authkey clients authenticate with (pass it to child processes).
    pub fn authkey(&self) -> &[u8] {
        &self.authkey
    }

    /// The connection of this guard.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// A new connection to the server (for another thread).
    pub fn connect(&self) -> Result<Client> {
        Client::connect(self.server.address(), &self.authkey)
    }

    /// Shuts the server down now: every connection is closed and every waiting request
    /// fails.
    pub fn shutdown(mut self) {
        self.server.shutdown();
    }

    /// Blocks until the server stops (a client called [`Client::shutdown_server`]).
    pub fn wait(&self) {
        self.server.wait();
    }
}

impl Deref for ManagerGuard {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}
