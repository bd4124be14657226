//! The client: one authenticated connection to a manager, shared by the proxies made from it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread::ThreadId;

use serde::de::DeserializeOwned;
use serde::Serialize;

use conveyor_core::{Codec, Postcard};

use crate::address::Address;
use crate::error::{ManagerError, Result};
use crate::net;
use crate::protocol::{
    Blob, Call, Create, Kind, Op, Reply, Request, Response, MAGIC, PROTOCOL_VERSION,
};
use crate::proxy::{
    ArrayProxy, BarrierProxy, ConditionProxy, DictProxy, EventProxy, Handle, ListProxy, LockProxy,
    NamespaceProxy, Proxy, QueueProxy, RLockProxy, SemaphoreProxy, ValueProxy,
};
use crate::transport::{StreamTransport, Transport};

/// The largest reply a client accepts: 1 GiB.
const MAX_REPLY: usize = 1 << 30;

pub(crate) struct Conn {
    pub(crate) t: Box<dyn Transport>,
    pub(crate) next_id: u64,
    pub(crate) out: Vec<u8>,
    pub(crate) inbuf: Vec<u8>,
    /// Set after an I/O failure: the stream may be mid-frame, so it is not used again.
    pub(crate) broken: bool,
}

/// One thread's connection of a [`Client`], shared with the lock guards acquired through it
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
    /// The largest request the server accepts (from its hello).
    max_frame: AtomicUsize,
}

/// A connection to a manager server, and the factory of proxies to its objects.
///
/// Cloning a `Client` shares it; every proxy made from it uses it too. As in Python, each
/// thread that makes calls through a client (or any proxy made from it) gets a connection of
/// its own, made on its first call and closed when the thread ends or the client goes: a
/// blocking get on one thread never holds up another thread's put on the same proxy, and a
/// lock acquired by one thread makes another wait (an [`RLockProxy`] nests for the thread
/// that holds it only).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
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
}

/// Opens one authenticated connection: connect, hello, and the move to pipes on a Unix
/// socket. Answers the connection and the server's frame limit.
fn open_conn(address: &Address, authkey: &[u8]) -> Result<(Conn, usize)> {
    let stream = net::connect(address, authkey)?;
    let mut conn = Conn {
        t: Box::new(StreamTransport::new(stream)),
        next_id: 0,
        out: Vec::new(),
        inbuf: Vec::new(),
        broken: false,
    };
    let max = request_on(
        &mut conn,
        usize::MAX,
        &Request::Hello {
            magic: MAGIC,
            version: PROTOCOL_VERSION,
        },
        |r| match r {
            Reply::Hello { version, max_frame } if version == PROTOCOL_VERSION => Ok(max_frame),
            other => Err(unexpected(&other)),
        },
    )?;
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    if matches!(address, Address::Unix(_)) {
        move_to_pipes(&mut conn, max)?;
    }
    tracing::debug!(%address, "connected to a manager");
    Ok((conn, max))
}

/// On a Unix socket, moves the connection's frames to a pair of pipes (cheaper per message
/// than the socket; see [`Request::Pipes`]). If the pipes cannot be made, or the server
/// declines, the connection stays on the socket.
fn move_to_pipes(conn: &mut Conn, max: usize) -> Result<()> {
    let pipes = match crate::transport::Pipes::new() {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!(error = %e, "manager connection stays on its socket");
            return Ok(());
        }
    };
    let agreed = request_on(conn, max, &Request::Pipes, |r| match r {
        Reply::Unit => Ok(()),
        other => Err(unexpected(&other)),
    });
    match agreed {
        Ok(()) => {
            if let Err(e) = conn.t.hand_over(pipes) {
                conn.broken = true;
                return Err(e.into());
            }
            Ok(())
        }
        Err(ManagerError::Remote(e)) => {
            tracing::debug!(error = %e, "manager declined pipes; staying on the socket");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Sends one request on `conn` and hands its reply to `f`.
fn request_on<R>(
    conn: &mut Conn,
    max: usize,
    req: &Request<'_>,
    f: impl FnOnce(Reply<'_>) -> Result<R>,
) -> Result<R> {
    if conn.broken {
        return Err(ManagerError::Io(std::io::Error::new(
            std::io::ErrorKind::NotConnected,
            "the connection to the manager failed earlier: connect again",
        )));
    }
    conn.next_id += 1;
    let id = conn.next_id;
    conn.out.clear();
    Postcard.encode(&(id, req), &mut conn.out)?;
    if conn.out.len() > max {
        return Err(ManagerError::Remote(crate::error::RemoteError::new(
            crate::error::ErrorKind::TooLarge,
            format!(
                "the request is {} bytes, more than the {max} bytes the server accepts",
                conn.out.len()
            ),
        )));
    }
    let sent = conn.t.send(&conn.out).and_then(|()| conn.t.flush());
    if let Err(e) = sent {
        conn.broken = true;
        return Err(e.into());
    }
    if let Err(e) = conn.t.recv(&mut conn.inbuf, MAX_REPLY) {
        conn.broken = true;
        return Err(ManagerError::Io(e.into()));
    }
    let (rid, resp) = decode_frame(&conn.inbuf)?;
    if rid != id {
        conn.broken = true;
        return match resp {
            Response::Err(e) => Err(e.into()),
            Response::Ok(_) => Err(ManagerError::protocol(format!(
                "reply {rid} came for request {id}"
            ))),
        };
    }
    match resp {
        Response::Ok(r) => f(r),
        Response::Err(e) => Err(e.into()),
    }
}

impl Client {
    /// Connects to the manager at `address` and authenticates with `authkey`.
    ///
    /// ```no_run
    /// use conveyor_manager::Client;
    ///
    /// let client = Client::connect(&"/tmp/manager.sock".parse()?, b"secret")?;
    /// let hits = client.value("hits", &0u64)?;
    /// hits.fetch_add(1)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connect(address: &Address, authkey: &[u8]) -> Result<Client> {
        let (conn, max) = open_conn(address, authkey)?;
        let client = Client {
            inner: Arc::new(Inner {
                conns: Mutex::new(HashMap::new()),
                address: address.clone(),
                authkey: authkey.into(),
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
        let (conn, max) = open_conn(&self.inner.address, &self.inner.authkey)?;
        self.inner.max_frame.store(max, Ordering::Relaxed);
        let conn = ConnRef(Arc::new(Mutex::new(conn)));
        self.adopt(conn.clone());
        Ok(conn)
    }

    /// Opens another connection to the same server, with the same authkey: a client of its
    /// own, whose locks are its own even on a thread that also uses this one.
    pub fn connect_again(&self) -> Result<Client> {
        Client::connect(&self.inner.address, &self.inner.authkey)
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
    pub fn endpoint(&self) -> Option<crate::manager::Endpoint> {
        Some(crate::manager::Endpoint {
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
    pub(crate) fn same_connection(&self, other: &Client) -> bool {
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
        request_on(&mut conn.lock(), self.max_frame(), req, f)
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

    fn open_raw<P: Proxy>(&self, name: &str, create: Option<Create<'_>>) -> Result<P> {
        let kind = P::KIND;
        let id = self.request(&Request::Open { name, kind, create }, |r| match r {
            Reply::Opened { id, .. } => Ok(id),
            other => Err(unexpected(&other)),
        })?;
        Ok(P::from_handle(Handle::new(self.clone(), id, name)))
    }

    /// A proxy to the existing object `name`; fails with `NotFound` if there is none, and
    /// with `WrongType` if it is of another kind.
    ///
    /// ```
    /// use conveyor_manager::{DictProxy, Manager};
    ///
    /// let m = Manager::start()?;
    /// m.dict::<String, u32>("ages")?;
    /// let again: DictProxy<String, u32> = m.open("ages")?;
    /// assert!(m.open::<DictProxy<String, u32>>("nothing").unwrap_err().is_not_found());
    /// # Ok::<(), conveyor_manager::ManagerError>(())
    /// ```
    pub fn open<P: Proxy>(&self, name: &str) -> Result<P> {
        self.open_raw(name, None)
    }

    /// The dict `name`, made empty if it does not exist.
    pub fn dict<K, V>(&self, name: &str) -> Result<DictProxy<K, V>>
    where
        K: Serialize + DeserializeOwned,
        V: Serialize + DeserializeOwned,
    {
        self.open_raw(name, Some(Create::Dict))
    }

    /// The list `name`, made empty if it does not exist.
    pub fn list<T: Serialize + DeserializeOwned>(&self, name: &str) -> Result<ListProxy<T>> {
        self.open_raw(name, Some(Create::List))
    }

    /// The value `name`, made holding `initial` if it does not exist.
    pub fn value<T: Serialize + DeserializeOwned>(
        &self,
        name: &str,
        initial: &T,
    ) -> Result<ValueProxy<T>> {
        let bytes = encode(initial)?;
        self.open_raw(
            name,
            Some(Create::Value {
                initial: Blob(&bytes),
            }),
        )
    }

    /// The array `name`, made holding `initial` if it does not exist. Its length never
    /// changes.
    pub fn array<T: Serialize + DeserializeOwned>(
        &self,
        name: &str,
        initial: &[T],
    ) -> Result<ArrayProxy<T>> {
        let encoded = initial.iter().map(encode).collect::<Result<Vec<_>>>()?;
        self.open_raw(
            name,
            Some(Create::Array {
                initial: encoded.iter().map(|b| Blob(b)).collect(),
            }),
        )
    }

    /// The queue `name`, made holding at most `capacity` items (`None`: unbounded) if it does
    /// not exist. Every queue is joinable (`task_done`/`join`).
    pub fn queue<T: Serialize + DeserializeOwned>(
        &self,
        name: &str,
        capacity: Option<usize>,
    ) -> Result<QueueProxy<T>> {
        self.open_raw(
            name,
            Some(Create::Queue {
                capacity: capacity.map(|c| c as u64),
            }),
        )
    }

    /// The lock `name`, made unlocked if it does not exist.
    pub fn lock(&self, name: &str) -> Result<LockProxy> {
        self.open_raw(name, Some(Create::Lock))
    }

    /// The reentrant lock `name`, made unlocked if it does not exist.
    pub fn rlock(&self, name: &str) -> Result<RLockProxy> {
        self.open_raw(name, Some(Create::RLock))
    }

    /// The condition `name` (with a reentrant lock of its own), made if it does not exist.
    pub fn condition(&self, name: &str) -> Result<ConditionProxy> {
        self.open_raw(name, Some(Create::Condition))
    }

    /// The event `name`, made cleared if it does not exist.
    pub fn event(&self, name: &str) -> Result<EventProxy> {
        self.open_raw(name, Some(Create::Event))
    }

    /// The semaphore `name`, made with `value` permits if it does not exist.
    pub fn semaphore(&self, name: &str, value: u64) -> Result<SemaphoreProxy> {
        self.open_raw(name, Some(Create::Semaphore { value, bound: None }))
    }

    /// The bounded semaphore `name` (never above `value` permits), made if it does not exist.
    pub fn bounded_semaphore(&self, name: &str, value: u64) -> Result<SemaphoreProxy> {
        self.open_raw(
            name,
            Some(Create::Semaphore {
                value,
                bound: Some(value),
            }),
        )
    }

    /// The barrier `name` for `parties` waiters, made if it does not exist.
    pub fn barrier(&self, name: &str, parties: u32) -> Result<BarrierProxy> {
        self.open_raw(name, Some(Create::Barrier { parties }))
    }

    /// The namespace `name`, made empty if it does not exist.
    pub fn namespace(&self, name: &str) -> Result<NamespaceProxy> {
        self.open_raw(name, Some(Create::Namespace))
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

    /// Starts a batch: many operations sent together and answered together.
    pub fn batch(&self) -> crate::batch::Batch<'_> {
        crate::batch::Batch::new(self)
    }
}

/// Decodes a server frame.
pub(crate) fn decode_frame(bytes: &[u8]) -> Result<(u64, Response<'_>)> {
    match postcard::take_from_bytes::<(u64, Response<'_>)>(bytes) {
        Ok((v, [])) => Ok(v),
        Ok((_, rest)) => Err(ManagerError::protocol(format!(
            "{} stray bytes after a reply",
            rest.len()
        ))),
        Err(e) => Err(ManagerError::Decode(e)),
    }
}

/// Encodes a value for the wire.
pub(crate) fn encode<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>> {
    let mut b = Vec::new();
    Postcard.encode(v, &mut b)?;
    Ok(b)
}

/// Decodes a value from the wire.
pub(crate) fn decode<T: DeserializeOwned>(b: Blob<'_>) -> Result<T> {
    Ok(Postcard.decode(b.0)?)
}

/// The error for a reply of the wrong shape.
pub(crate) fn unexpected(r: &Reply<'_>) -> ManagerError {
    let s = format!("{r:?}");
    let s: String = s.chars().take(80).collect();
    ManagerError::protocol(format!("unexpected reply {s}"))
}

/// Accepts only [`Reply::Unit`].
pub(crate) fn unit(r: Reply<'_>) -> Result<()> {
    match r {
        Reply::Unit => Ok(()),
        other => Err(unexpected(&other)),
    }
}
