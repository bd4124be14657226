//! [`Connector`]: connects to a [`Listener`](crate::Listener), or to a Python
//! `multiprocessing.connection.Listener` (Python's `multiprocessing.connection.Client`).

use std::net::TcpStream;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::address::Address;
use crate::connection::Connection;
use crate::error::ConnectError;
use crate::handshake::ChallengeForm;
use crate::listener::Auth;

/// Connects to a listener and, with an authkey, runs the handshake: answers the listener's
/// challenge, then challenges it back (Python's `Client(address, authkey=...)`).
///
/// `Connector::new()` starts with no authkey, the handshake timeout
/// [`DEFAULT_HANDSHAKE_TIMEOUT`](crate::DEFAULT_HANDSHAKE_TIMEOUT) and the default challenge
/// form; the methods change them.
///
/// ```
/// use conveyor_pipe::{Connector, Listener};
///
/// let listener = Listener::bind_private(Some(b"key")).unwrap();
/// let address = listener.address().clone();
/// let t = std::thread::spawn(move || listener.accept().unwrap().recv::<String>().unwrap());
/// let conn = Connector::new().authkey(b"key").connect(&address).unwrap();
/// conn.send(&"hi").unwrap();
/// assert_eq!(t.join().unwrap(), "hi");
/// ```
#[derive(Debug, Clone, Default)]
pub struct Connector {
    auth: Auth,
}

impl Connector {
    /// A connector with no authkey and the default settings.
    pub fn new() -> Self {
        Connector::default()
    }

    /// Authenticates with `key` (an empty key still runs the handshake, as in CPython).
    pub fn authkey(mut self, key: impl AsRef<[u8]>) -> Self {
        self.auth.authkey = Some(key.as_ref().to_vec());
        self
    }

    /// Which challenge the client sends back to the listener (see
    /// [`ListenerBuilder::challenge_form`](crate::ListenerBuilder::challenge_form)).
    pub fn challenge_form(mut self, form: ChallengeForm) -> Self {
        self.auth.form = form;
        self
    }

    /// Whether a raw HMAC-MD5 answer from the listener is accepted (default true, for Python
    /// 3.11 listeners).
    pub fn accept_md5_answers(mut self, accept: bool) -> Self {
        self.auth.accept_md5 = accept;
        self
    }

    /// How long the handshake may take (`None`: forever).
    pub fn handshake_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.auth.timeout = timeout;
        self
    }

    /// The maximum message size of the connection (see
    /// [`Connection::set_max_message_size`]).
    pub fn max_message_size(mut self, max: u64) -> Self {
        self.auth.max_message_size = max;
        self
    }

    /// Whether the connection moves its messages to a pair of OS pipes right after the
    /// handshake, on a Unix socket (default false). The listener must ask for it too: see
    /// [`ListenerBuilder::pipes`](crate::ListenerBuilder::pipes) for the rule and an example.
    pub fn pipes(mut self, on: bool) -> Self {
        self.auth.pipes = on;
        self
    }

    /// Connects to `address` and authenticates.
    pub fn connect(&self, address: &Address) -> Result<Connection, ConnectError> {
        let fd: OwnedFd = match address {
            Address::Unix(path) => UnixStream::connect(path)?.into(),
            Address::Tcp(hostport) => {
                let s = TcpStream::connect(hostport.as_str())?;
                s.set_nodelay(true)?;
                s.into()
            }
        };
        let result = self.auth.establish(fd, false);
        match &result {
            Ok(_) => tracing::debug!(%address, "connected"),
            Err(e) => tracing::warn!(%address, error = %e, "connecting failed"),
        }
        result
    }
}

/// Connects to `address`, authenticating with `authkey` if given (Python's
/// `Client(address, authkey=...)`).
pub fn connect(address: &Address, authkey: Option<&[u8]>) -> Result<Connection, ConnectError> {
    let mut c = Connector::new();
    if let Some(k) = authkey {
        c = c.authkey(k);
    }
    c.connect(address)
}
