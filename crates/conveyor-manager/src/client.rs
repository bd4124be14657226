//! The client: one authenticated connection to a manager, shared by the proxies made from it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread::ThreadId;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use conveyor_pipe::{Address, DEFAULT_HANDSHAKE_TIMEOUT};

use crate::connection::Conn;
use crate::error::{ManagerError, Result};
use crate::protocol::{unexpected, unit, Call, Kind, Op, Reply, Request};

/// Everything a client needs to reach a manager: its address and authkey. Serialisable, so it
/// travels to child processes in their arguments.
///
/// ```
/// use conveyor_manager::Manager;
///
/// let m = Manager::start()?;
/// let endpoint = m.endpoint(); // send this to another process
/// let client = endpoint.connect()?;
/// client.ping()?;
/// # Ok::<(), conveyor_manager::ManagerError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Endpoint {
    /// Where the server listens.
    pub address: Address,
    /// The key clients authenticate with.
    #[serde(with = "serde_bytes")]
    pub authkey: Vec<u8>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("address", &self.address)
            .field("authkey", &"<secret>")
            .finish()
    }
}

impl Endpoint {
    /// Connects to the manager.
    pub fn connect(&self) -> Result<ManagerConnection> {
        ManagerConnection::connect(&self.address, &self.authkey)
    }
}

/// One thread's connection of a [`ManagerConnection`], shared with the lock guards acquired through it
/// (which release through the connection that owns the lock, whichever thread drops them).
#[derive(Clone)]
pub(crate) struct ConnRef(Arc<Mutex<Conn>>);

impl fmt::Debug for ConnRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConnRef")
    }
}

impl ConnRef {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Conn> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A reference that does not keep the connection open (it closes with its thread).
    pub(crate) fn downgrade(&self) -> WeakConn {
        WeakConn(Arc::downgrade(&self.0))
    }
}

/// A connection that may have closed since (its thread ended, or its client went): what a
/// lock guard keeps, so that a forgotten guard does not keep a connection open.
#[derive(Clone)]
pub(crate) struct WeakConn(Weak<Mutex<Conn>>);

impl fmt::Debug for WeakConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WeakConn")
    }
}

impl WeakConn {
    /// The connection, or an error saying that it closed (and with it, every lock it held
    /// was released by the server).
    pub(crate) fn upgrade(&self) -> Result<ConnRef> {
        self.0.upgrade().map(ConnRef).ok_or_else(|| {
            ManagerError::Io(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "the connection this lock was acquired on has closed (its thread ended or its \
                 client was dropped), and the server released the lock then",
            ))
        })
    }
}

struct Inner {
    /// Each thread's connection, made on its first call (Python's proxies do the same: one
    /// connection per thread), so a call that waits on one thread never holds up another,
    /// and the server, which gives locks to connections, gives them to threads.
    conns: Mutex<HashMap<ThreadId, ConnRef>>,
    address: Address,
    authkey: Arc<[u8]>,
    /// The bound on each new connection's handshake.
    handshake_timeout: Option<Duration>,
    /// The largest request the server accepts (from its hello).
    max_frame: AtomicUsize,
}

/// A connection to a manager server, and the factory of proxies to its objects.
///
/// Cloning a `ManagerConnection` shares it; every proxy made from it uses it too. As in Python, each
/// thread that makes calls through a client (or any proxy made from it) gets a connection of
/// its own, made on its first call and closed when the thread ends or the client goes: a
/// blocking get on one thread never holds up another thread's put on the same proxy, and a
/// lock acquired by one thread makes another wait (an [`RLockProxy`](crate::RLockProxy) nests for the thread
/// that holds it only).
#[derive(Clone)]
pub struct ManagerConnection {
    inner: Arc<Inner>,
}

impl fmt::Debug for ManagerConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagerConnection")
            .field("address", &self.inner.address)
            .finish_non_exhaustive()
    }
}

/// The clients a thread has connections in, so that they are closed when the thread ends.
struct ThreadConns {
    thread: ThreadId,
    clients: RefCell<Vec<Weak<Inner>>>,
}

impl Drop for ThreadConns {
    fn drop(&mut self) {
        for inner in self.clients.get_mut().drain(..) {
            if let Some(inner) = inner.upgrade() {
                let gone = inner
                    .conns
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&self.thread);
                drop(gone);
            }
        }
    }
}

thread_local! {
    static THREAD_CONNS: ThreadConns = ThreadConns {
        thread: std::thread::current().id(),
        clients: RefCell::new(Vec::new()),
    };

    /// The client this thread made its last call through, and this thread's connection of
    /// it: the next call through the same client finds its connection here, without the
    /// client's table, its lock, or the thread's id. It keeps neither alive: the connection
    /// closes with its thread or its client as before, and the weak reference to the client
    /// keeps its allocation, so that no other client can take its address while it is here.
    static LAST_CONN: RefCell<Option<(Weak<Inner>, WeakConn)>> = const { RefCell::new(None) };
}

impl ManagerConnection {
    /// Connects to the manager at `address` and authenticates with `authkey`.
    ///
    /// ```no_run
    /// use conveyor_manager::ManagerConnection;
    ///
    /// let client = ManagerConnection::connect(&"/tmp/manager.sock".parse()?, b"secret")?;
    /// let hits = client.value("hits", &0u64)?;
    /// hits.fetch_add(1)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connect(address: &Address, authkey: &[u8]) -> Result<ManagerConnection> {
        ManagerConnection::connect_with(address, authkey, Some(DEFAULT_HANDSHAKE_TIMEOUT))
    }

    /// As [`connect`](ManagerConnection::connect), with each connection's handshake bounded by
    /// `handshake_timeout` (`None`: unbounded) instead of conveyor-pipe's default.
    pub fn connect_with(
        address: &Address,
        authkey: &[u8],
        handshake_timeout: Option<Duration>,
    ) -> Result<ManagerConnection> {
        let (conn, max) = Conn::open(address, authkey, handshake_timeout)?;
        let client = ManagerConnection {
            inner: Arc::new(Inner {
                conns: Mutex::new(HashMap::new()),
                address: address.clone(),
                authkey: authkey.into(),
                handshake_timeout,
                max_frame: AtomicUsize::new(max),
            }),
        };
        client.adopt(ConnRef(Arc::new(Mutex::new(conn))));
        Ok(client)
    }

    /// Makes `conn` this thread's connection.
    fn adopt(&self, conn: ConnRef) {
        self.inner
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(std::thread::current().id(), conn);
        // Closed when this thread ends. (During the thread's own teardown there is nothing
        // to register with; the connection then lives until the client goes.)
        let _ = THREAD_CONNS.try_with(|t| {
            let mut clients = t.clients.borrow_mut();
            clients.retain(|w| w.strong_count() > 0);
            clients.push(Arc::downgrade(&self.inner));
        });
    }

    /// This thread's connection, made now if this thread has none yet.
    pub(crate) fn thread_conn(&self) -> Result<ConnRef> {
        let last = LAST_CONN.try_with(|last| match &*last.borrow() {
            Some((inner, conn)) if std::ptr::eq(inner.as_ptr(), Arc::as_ptr(&self.inner)) => {
                conn.upgrade().ok()
            }
            _ => None,
        });
        if let Ok(Some(conn)) = last {
            return Ok(conn);
        }
        let conn = self.thread_conn_from_table()?;
        let _ = LAST_CONN.try_with(|last| {
            *last.borrow_mut() = Some((Arc::downgrade(&self.inner), conn.downgrade()));
        });
        Ok(conn)
    }

    /// This thread's connection from the client's table, made now if this thread has none.
    fn thread_conn_from_table(&self) -> Result<ConnRef> {
        let me = std::thread::current().id();
        if let Some(c) = self
            .inner
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&me)
        {
            return Ok(c.clone());
        }
        let (conn, max) = Conn::open(
            &self.inner.address,
            &self.inner.authkey,
            self.inner.handshake_timeout,
        )?;
        self.inner.max_frame.store(max, Ordering::Relaxed);
        let conn = ConnRef(Arc::new(Mutex::new(conn)));
        self.adopt(conn.clone());
        Ok(conn)
    }

    /// Opens another connection to the same server, with the same authkey: a client of its
    /// own, whose locks are its own even on a thread that also uses this one.
    pub fn connect_again(&self) -> Result<ManagerConnection> {
        ManagerConnection::connect_with(
            &self.inner.address,
            &self.inner.authkey,
            self.inner.handshake_timeout,
        )
    }

    /// The server's address.
    pub fn address(&self) -> Option<&Address> {
        Some(&self.inner.address)
    }

    /// The largest request the server accepts, in bytes (it said so at hello).
    pub fn max_frame(&self) -> usize {
        self.inner.max_frame.load(Ordering::Relaxed)
    }

    /// The address and authkey this client connected with, to hand to another process.
    pub fn endpoint(&self) -> Option<Endpoint> {
        Some(Endpoint {
            address: self.inner.address.clone(),
            authkey: self.inner.authkey.to_vec(),
        })
    }

    /// Whether an earlier failure made this thread's connection unusable.
    pub(crate) fn is_broken(&self) -> bool {
        let me = std::thread::current().id();
        let conn = self
            .inner
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&me)
            .cloned();
        match conn {
            Some(c) => match c.0.try_lock() {
                Ok(c) => c.broken,
                Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner().broken,
                // In use by a call now, so not known to be broken.
                Err(std::sync::TryLockError::WouldBlock) => false,
            },
            None => false,
        }
    }

    /// Whether `other` is this same client.
    pub(crate) fn same_connection(&self, other: &ManagerConnection) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Sends one request on this thread's connection and hands its reply to `f`.
    pub(crate) fn request<R>(
        &self,
        req: &Request<'_>,
        f: impl FnOnce(Reply<'_>) -> Result<R>,
    ) -> Result<R> {
        let conn = self.thread_conn()?;
        self.request_via(&conn, req, f)
    }

    /// Sends one request on `conn` (one of this client's connections).
    pub(crate) fn request_via<R>(
        &self,
        conn: &ConnRef,
        req: &Request<'_>,
        f: impl FnOnce(Reply<'_>) -> Result<R>,
    ) -> Result<R> {
        conn.lock().request(self.max_frame(), req, f)
    }

    /// One operation on one object.
    pub(crate) fn call<R>(
        &self,
        obj: u64,
        op: Op<'_>,
        f: impl FnOnce(Reply<'_>) -> Result<R>,
    ) -> Result<R> {
        self.request(&Request::Call(Call { obj, op }), f)
    }

    /// One operation on one object, on the connection `conn`.
    pub(crate) fn call_via<R>(
        &self,
        conn: &ConnRef,
        obj: u64,
        op: Op<'_>,
        f: impl FnOnce(Reply<'_>) -> Result<R>,
    ) -> Result<R> {
        self.request_via(conn, &Request::Call(Call { obj, op }), f)
    }

    /// Every object's name and kind, sorted by name.
    pub fn objects(&self) -> Result<Vec<(String, Kind)>> {
        self.request(&Request::List, |r| match r {
            Reply::Objects(v) => Ok(v),
            other => Err(unexpected(&other)),
        })
    }

    /// Forgets the object `name`: later opens do not find it, and proxies to it fail with
    /// `NotFound`.
    pub fn delete(&self, name: &str) -> Result<()> {
        self.request(&Request::Delete { name }, unit)
    }

    /// A round trip that does nothing: checks that the server is alive.
    pub fn ping(&self) -> Result<()> {
        self.request(&Request::Ping, unit)
    }

    /// Asks the server to shut down (Python's `manager.shutdown()` from a client).
    pub fn shutdown_server(&self) -> Result<()> {
        self.request(&Request::Shutdown, unit)
    }
}
