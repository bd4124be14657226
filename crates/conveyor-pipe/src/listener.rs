//! [`Listener`]: accepts authenticated connections on a Unix socket path or a TCP port
//! (Python's `multiprocessing.connection.Listener`).

use std::fmt;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use conveyor_core::{GetError, Postcard};

use crate::address::Address;
use crate::connection::{Connection, DEFAULT_MAX_MESSAGE_SIZE, KERNEL_BUFFER};
use crate::error::{ConnectError, PipesError};
use crate::handshake::{self, AuthOptions, ChallengeForm, MAX_HANDSHAKE_MESSAGE};
use crate::sys::{self, FdKind};

/// How long a new connection has to finish the authentication handshake, by default.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Authentication settings shared by the listener and the client side.
#[derive(Debug, Clone)]
pub(crate) struct Auth {
    pub authkey: Option<Vec<u8>>,
    pub form: ChallengeForm,
    pub accept_md5: bool,
    pub timeout: Option<Duration>,
    pub max_message_size: u64,
    /// Move to pipes after the handshake (see `ListenerBuilder::pipes`).
    pub pipes: bool,
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            authkey: None,
            form: ChallengeForm::default(),
            accept_md5: true,
            timeout: Some(DEFAULT_HANDSHAKE_TIMEOUT),
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            pipes: false,
        }
    }
}

impl Auth {
    fn options(&self, key: &[u8], deadline: Option<Instant>) -> AuthOptions {
        AuthOptions {
            authkey: key.to_vec(),
            form: self.form,
            accept_md5: self.accept_md5,
            timeout: self.timeout,
            deadline,
        }
    }

    /// Runs the handshake on a freshly connected socket, listener side first or client side
    /// first, then the move to pipes if asked for, and returns the ready connection.
    pub(crate) fn establish(
        &self,
        fd: OwnedFd,
        as_listener: bool,
    ) -> Result<Connection<Postcard>, ConnectError> {
        let unix = sys::is_unix_socket(fd.as_fd());
        if unix {
            sys::grow_send_buffer(fd.as_fd(), KERNEL_BUFFER);
        }
        let mut conn = Connection::from_parts(fd, FdKind::Socket, true, true, Postcard);
        // CPython's Listener skips the handshake for an empty authkey; its Client does not
        // (only `None` skips it there). Both quirks are kept, so each side pairs with Python.
        let key = match &self.authkey {
            Some(k) if !(as_listener && k.is_empty()) => Some(k),
            _ => None,
        };
        let pipes = self.pipes && unix;
        if key.is_none() && !pipes {
            conn.set_max_message_size(self.max_message_size);
            return Ok(conn);
        }
        // One deadline for the whole handshake: every read and every write of it gets what
        // is left, so a peer dripping bytes cannot keep it alive past the timeout.
        let deadline = self.timeout.and_then(|t| Instant::now().checked_add(t));
        conn.set_read_deadline(deadline);
        conn.set_max_message_size(MAX_HANDSHAKE_MESSAGE);
        // Read the handshake exactly: whatever the peer sends right after it stays in the
        // socket, even for a caller that takes the descriptor with into_fd.
        conn.set_read_ahead(false);
        if let Some(key) = key {
            let opts = self.options(key, deadline);
            let result = if as_listener {
                handshake::deliver_challenge(&conn, &opts)
                    .and_then(|()| handshake::answer_challenge(&conn, &opts))
            } else {
                handshake::answer_challenge(&conn, &opts)
                    .and_then(|()| handshake::deliver_challenge(&conn, &opts))
            };
            result?;
        }
        if pipes {
            move_to_pipes(&mut conn, as_listener, self.timeout)?;
        }
        conn.set_read_deadline(None);
        sys::set_socket_timeouts(conn.as_fd(), None)?;
        conn.set_max_message_size(self.max_message_size);
        conn.set_read_ahead(true);
        Ok(conn)
    }
}

/// The listener's offer of a move to pipes, one message: it can take pipes, or it cannot.
const OFFER_PIPES: &[u8] = b"#PIPES#1";
const OFFER_NO_PIPES: &[u8] = b"#PIPES#0";

/// The move to pipes of a new connection whose both ends asked for it (see
/// `ListenerBuilder::pipes`), within the handshake's deadline: the listener offers (or says it
/// cannot, where `SIGPIPE` is not ignored), and the client moves or declines.
fn move_to_pipes(
    conn: &mut Connection,
    as_listener: bool,
    limit: Option<Duration>,
) -> Result<(), ConnectError> {
    let timed_out = |e: &io::Error| e.kind() == io::ErrorKind::TimedOut;
    let limit = limit.unwrap_or_default();
    let recv_error = |e: GetError| match e {
        GetError::Io(e) if timed_out(&e) => ConnectError::Timeout(limit),
        GetError::Io(e) => ConnectError::Io(e),
        GetError::Closed => ConnectError::Pipes(PipesError::Closed),
        other => ConnectError::Io(io::Error::other(other)),
    };
    let pipes_error = |e: PipesError| match e {
        PipesError::Io(e) if timed_out(&e) => ConnectError::Timeout(limit),
        other => ConnectError::Pipes(other),
    };
    let moved = if as_listener {
        let offer = conn.can_move_to_pipes();
        conn.send_bytes(if offer { OFFER_PIPES } else { OFFER_NO_PIPES })
            .map_err(|e| ConnectError::Io(io::Error::other(e)))?;
        offer && conn.accept_pipes().map_err(pipes_error)?
    } else {
        let offer = conn.recv_bytes().map_err(recv_error)?;
        match offer.as_slice() {
            OFFER_PIPES => conn.move_to_pipes().map_err(pipes_error)?,
            OFFER_NO_PIPES => false,
            _ => {
                return Err(ConnectError::Pipes(PipesError::Io(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the listener did not offer pipes: does it ask for them too \
                     (ListenerBuilder::pipes)?",
                ))))
            }
        }
    };
    tracing::debug!(moved, "a new connection's move to pipes");
    Ok(())
}

impl Auth {}

enum Socket {
    Unix(UnixListener),
    Tcp(TcpListener),
}

/// Removes the socket file when the listener goes, if it is still the one we bound.
struct Unlink {
    path: PathBuf,
    dev: u64,
    ino: u64,
    /// The private directory holding the socket, removed after it.
    dir: Option<tempfile::TempDir>,
    /// Lists the socket file among what this process holds (see `conveyor_core::held`): a
    /// child that binds one before `conveyor_process::init` would leave it behind.
    _held: conveyor_core::held::Held,
}

impl Drop for Unlink {
    fn drop(&mut self) {
        if let Ok(meta) = std::fs::symlink_metadata(&self.path) {
            if meta.dev() == self.dev && meta.ino() == self.ino {
                let _ = std::fs::remove_file(&self.path);
            }
        }
        if let Some(dir) = self.dir.take() {
            let _ = dir.close();
        }
    }
}

/// Accepts connections on a Unix socket path or a TCP address, authenticating each with the
/// authkey if one is set (Python's `multiprocessing.connection.Listener`).
///
/// - [`Listener::bind_private`] listens on a fresh Unix socket in a private directory (the
///   socket's mode 0600, the directory's 0700), as Python's `Listener()` without an address.
/// - [`Listener::bind`] listens on a given path or `host:port` (port 0 picks a free port;
///   [`address`](Listener::address) tells which).
///
/// A Unix socket file this listener created is removed when it is dropped.
///
/// # Handshake timeout
///
/// [`accept`](Listener::accept) runs the handshake itself, with a per-connection timeout
/// ([`DEFAULT_HANDSHAKE_TIMEOUT`], set with [`ListenerBuilder::handshake_timeout`]) that bounds
/// the whole handshake, not each read: a client that connects and says nothing, or sends its
/// answer one byte at a time, holds an accept loop for at most that long, then `accept`
/// fails with [`ConnectError::Timeout`] and the loop goes on. A server that must not wait even
/// that long takes connections with [`accept_pending`](Listener::accept_pending) and runs each
/// handshake ([`PendingConnection::authenticate`]) on its own thread.
///
/// # Example
///
/// ```
/// use conveyor_pipe::{Connector, Listener};
///
/// let listener = Listener::builder().authkey(b"secret").bind_private().unwrap();
/// let address = listener.address().clone();
/// let client = std::thread::spawn(move || {
///     let conn = Connector::new().authkey(b"secret").connect(&address).unwrap();
///     conn.send_bytes(b"hello").unwrap();
///     conn.recv_bytes().unwrap()
/// });
/// let conn = listener.accept().unwrap();
/// let hello = conn.recv_bytes().unwrap();
/// conn.send_bytes(&hello).unwrap();
/// assert_eq!(client.join().unwrap(), b"hello");
/// ```
pub struct Listener {
    socket: Socket,
    address: Address,
    auth: Auth,
    _unlink: Option<Unlink>,
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("address", &self.address)
            .field("authenticated", &self.auth.authkey.is_some())
            .field("handshake_timeout", &self.auth.timeout)
            .finish_non_exhaustive()
    }
}

/// Settings for a [`Listener`]: authkey, challenge form, handshake timeout, message size.
#[derive(Debug, Clone, Default)]
pub struct ListenerBuilder {
    auth: Auth,
}

impl ListenerBuilder {
    /// Authenticates every connection with `key` (Python's `authkey=`). An empty key disables
    /// the handshake, as in CPython's `Listener`.
    pub fn authkey(mut self, key: impl AsRef<[u8]>) -> Self {
        self.auth.authkey = Some(key.as_ref().to_vec());
        self
    }

    /// Which challenge this listener sends ([`ChallengeForm::Sha256`] by default, which
    /// Python 3.11 clients also answer).
    pub fn challenge_form(mut self, form: ChallengeForm) -> Self {
        self.auth.form = form;
        self
    }

    /// Whether a raw HMAC-MD5 answer to a `{sha256}` challenge is accepted (default true, as
    /// CPython 3.12 does, so that Python 3.11 clients can connect).
    pub fn accept_md5_answers(mut self, accept: bool) -> Self {
        self.auth.accept_md5 = accept;
        self
    }

    /// How long each connection has to finish the handshake (default
    /// [`DEFAULT_HANDSHAKE_TIMEOUT`]; `None` waits forever, as Python does).
    pub fn handshake_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.auth.timeout = timeout;
        self
    }

    /// The maximum message size of accepted connections (default
    /// [`DEFAULT_MAX_MESSAGE_SIZE`]).
    pub fn max_message_size(mut self, max: u64) -> Self {
        self.auth.max_message_size = max;
        self
    }

    /// Whether each connection accepted on a Unix socket moves its messages to a pair of OS
    /// pipes right after the handshake (default false): see "Moving to pipes" in
    /// [`Connection`]'s docs. The client must ask for it too
    /// ([`Connector::pipes`](crate::Connector::pipes)): the two ends exchange a message and
    /// the pipe ends before the first message of their own, which a client that did not ask
    /// (a Python program, say) would take for one. Where a move cannot happen (`SIGPIPE` not
    /// ignored in either process, the pipes not made), the connection stays on its socket;
    /// [`Connection::uses_pipes`] tells. Pipe ends the client passes are checked as
    /// [`Connection::accept_pipes`] does: anything else fails that connection's accept with
    /// [`ConnectError::Pipes`]. A TCP listener ignores it.
    ///
    /// ```
    /// use conveyor_pipe::{Connector, Listener};
    ///
    /// let listener = Listener::builder().authkey(b"key").pipes(true).bind_private().unwrap();
    /// let address = listener.address().clone();
    /// let server = std::thread::spawn(move || {
    ///     let conn = listener.accept().unwrap();
    ///     assert!(conn.uses_pipes());
    ///     conn.send(&conn.recv::<String>().unwrap()).unwrap();
    /// });
    /// let conn = Connector::new().authkey(b"key").pipes(true).connect(&address).unwrap();
    /// assert!(conn.uses_pipes());
    /// conn.send(&"hi").unwrap();
    /// assert_eq!(conn.recv::<String>().unwrap(), "hi");
    /// server.join().unwrap();
    /// ```
    pub fn pipes(mut self, on: bool) -> Self {
        self.auth.pipes = on;
        self
    }

    /// Listens on `address`.
    pub fn bind(self, address: &Address) -> io::Result<Listener> {
        match address {
            Address::Unix(path) => {
                let socket = UnixListener::bind(path)?;
                let unlink = unlink_guard(path, None)?;
                Ok(self.finish(Socket::Unix(socket), address.clone(), Some(unlink)))
            }
            Address::Tcp(hostport) => {
                let socket = TcpListener::bind(hostport.as_str())?;
                let local = socket.local_addr()?;
                Ok(self.finish(Socket::Tcp(socket), Address::from(local), None))
            }
        }
    }

    /// Listens on a fresh Unix socket in a new private directory (mode 0700, the socket 0600),
    /// both removed when the listener is dropped.
    pub fn bind_private(self) -> io::Result<Listener> {
        let dir = tempfile::Builder::new()
            .prefix("conveyor-pipe-")
            .tempdir()?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))?;
        let path = dir.path().join("listener.sock");
        let socket = UnixListener::bind(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        let unlink = unlink_guard(&path, Some(dir))?;
        Ok(self.finish(Socket::Unix(socket), Address::Unix(path), Some(unlink)))
    }

    fn finish(self, socket: Socket, address: Address, unlink: Option<Unlink>) -> Listener {
        tracing::debug!(%address, authenticated = self.auth.authkey.is_some(), "listening");
        Listener {
            socket,
            address,
            auth: self.auth,
            _unlink: unlink,
        }
    }
}

fn unlink_guard(path: &Path, dir: Option<tempfile::TempDir>) -> io::Result<Unlink> {
    let meta = std::fs::symlink_metadata(path)?;
    Ok(Unlink {
        _held: conveyor_core::held::Held::new(format!("Unix socket {}", path.display())),
        path: path.to_path_buf(),
        dev: meta.dev(),
        ino: meta.ino(),
        dir,
    })
}

impl Listener {
    /// Settings beyond the address and authkey.
    pub fn builder() -> ListenerBuilder {
        ListenerBuilder::default()
    }

    /// Listens on `address`, authenticating with `authkey` if given (Python's
    /// `Listener(address, authkey=...)`).
    pub fn bind(address: &Address, authkey: Option<&[u8]>) -> io::Result<Listener> {
        let mut b = Listener::builder();
        if let Some(k) = authkey {
            b = b.authkey(k);
        }
        b.bind(address)
    }

    /// Listens on a fresh private Unix socket (Python's `Listener()` without an address).
    pub fn bind_private(authkey: Option<&[u8]>) -> io::Result<Listener> {
        let mut b = Listener::builder();
        if let Some(k) = authkey {
            b = b.authkey(k);
        }
        b.bind_private()
    }

    /// Where this listener listens (with the actual port after binding TCP port 0).
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// Accepts the next connection and authenticates it (Python's `accept`).
    ///
    /// A failed handshake (wrong key, garbage, timeout) is reported for that connection only:
    /// call `accept` again for the next one.
    pub fn accept(&self) -> Result<Connection, ConnectError> {
        self.accept_pending()?.authenticate()
    }

    /// Accepts the next connection without authenticating it yet: run
    /// [`PendingConnection::authenticate`], possibly on another thread, so that a slow client
    /// does not hold up the accept loop.
    pub fn accept_pending(&self) -> io::Result<PendingConnection> {
        let (fd, peer): (OwnedFd, String) = match &self.socket {
            Socket::Unix(l) => {
                let (s, _) = l.accept()?;
                (UnixStream::into(s), self.address.to_string())
            }
            Socket::Tcp(l) => {
                let (s, addr) = l.accept()?;
                s.set_nodelay(true)?;
                (TcpStream::into(s), addr.to_string())
            }
        };
        tracing::debug!(listener = %self.address, %peer, "accepted a connection");
        Ok(PendingConnection {
            fd,
            peer,
            auth: self.auth.clone(),
        })
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.socket {
            Socket::Unix(l) => l.as_fd(),
            Socket::Tcp(l) => l.as_fd(),
        }
    }
}

/// A connection accepted but not yet authenticated; see [`Listener::accept_pending`].
pub struct PendingConnection {
    fd: OwnedFd,
    peer: String,
    auth: Auth,
}

impl fmt::Debug for PendingConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingConnection")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl PendingConnection {
    /// The peer's address (`ip:port` for TCP; the listener's path for a Unix socket).
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// Runs the handshake (if the listener has an authkey) within the handshake timeout and
    /// returns the ready connection.
    pub fn authenticate(self) -> Result<Connection, ConnectError> {
        let result = self.auth.establish(self.fd, true);
        if let Err(e) = &result {
            tracing::warn!(peer = %self.peer, error = %e, "handshake with a new connection failed");
        }
        result
    }
}
