//! The client: one authenticated connection to a manager, shared by the proxies made from it.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

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
    ArrayProxy, BarrierProxy, DictProxy, EventProxy, Handle, ListProxy, LockProxy, NamespaceProxy,
    Proxy, QueueProxy, RLockProxy, SemaphoreProxy, ValueProxy,
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

struct Inner {
    conn: Mutex<Conn>,
    address: Option<Address>,
    authkey: Arc<[u8]>,
    /// The largest request the server accepts (from its hello).
    max_frame: AtomicUsize,
}

/// A connection to a manager server, and the factory of proxies to its objects.
///
/// Cloning a `Client` shares the connection; every proxy made from it uses it too. Requests
/// on one connection are answered one after another, so a proxy call that waits on the
/// server (a blocking get on a [`QueueProxy`], a [`LockProxy::acquire`]) holds up the other users
/// of the same connection. Give each thread that waits its own connection with
/// [`Client::connect_again`] (and [`Proxy::rebind`] for its proxies).
///
/// Locks are owned by a connection: two threads sharing one client share its locks.
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
        let stream = net::connect(address, authkey)?;
        let t: Box<dyn Transport> = Box::new(StreamTransport::new(stream));
        let client = Client::over(t, Some(address.clone()), authkey.into())?;
        if matches!(address, Address::Unix(_)) {
            client.move_to_pipes()?;
        }
        tracing::debug!(%address, "connected to a manager");
        Ok(client)
    }

    /// On a Unix socket, moves the connection's frames to a pair of pipes (cheaper per
    /// message than the socket; see [`Request::Pipes`]). If the pipes cannot be made, or
    /// the server declines, the connection stays on the socket.
    fn move_to_pipes(&self) -> Result<()> {
        let pipes = match crate::transport::Pipes::new() {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(error = %e, "manager connection stays on its socket");
                return Ok(());
            }
        };
        let agreed = self.request(&Request::Pipes, |r| match r {
            Reply::Unit => Ok(()),
            other => Err(unexpected(&other)),
        });
        match agreed {
            Ok(()) => {
                let mut conn = self.lock_conn();
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

    /// Says hello over an authenticated transport.
    pub(crate) fn over(
        t: Box<dyn Transport>,
        address: Option<Address>,
        authkey: Arc<[u8]>,
    ) -> Result<Client> {
        let client = Client {
            inner: Arc::new(Inner {
                conn: Mutex::new(Conn {
                    t,
                    next_id: 0,
                    out: Vec::new(),
                    inbuf: Vec::new(),
                    broken: false,
                }),
                address,
                authkey,
                max_frame: AtomicUsize::new(crate::server::DEFAULT_MAX_FRAME),
            }),
        };
        let max = client.request(
            &Request::Hello {
                magic: MAGIC,
                version: PROTOCOL_VERSION,
            },
            |r| match r {
                Reply::Hello { version, max_frame } if version == PROTOCOL_VERSION => Ok(max_frame),
                other => Err(unexpected(&other)),
            },
        )?;
        client.inner.max_frame.store(
            usize::try_from(max).unwrap_or(usize::MAX),
            Ordering::Relaxed,
        );
        Ok(client)
    }

    /// Opens another connection to the same server, with the same authkey: for a thread that
    /// makes calls which wait, so it does not hold up the others.
    pub fn connect_again(&self) -> Result<Client> {
        match &self.inner.address {
            Some(a) => Client::connect(a, &self.inner.authkey),
            None => Err(ManagerError::protocol(
                "this client was made over a bare transport and has no address to reconnect to",
            )),
        }
    }

    /// The server's address.
    pub fn address(&self) -> Option<&Address> {
        self.inner.address.as_ref()
    }

    /// The largest request the server accepts, in bytes (it said so at hello).
    pub fn max_frame(&self) -> usize {
        self.inner.max_frame.load(Ordering::Relaxed)
    }

    /// The address and authkey this client connected with, to hand to another process.
    pub fn endpoint(&self) -> Option<crate::manager::Endpoint> {
        self.inner
            .address
            .as_ref()
            .map(|address| crate::manager::Endpoint {
                address: address.clone(),
                authkey: self.inner.authkey.to_vec(),
            })
    }

    /// Whether an earlier failure made this connection unusable.
    pub(crate) fn is_broken(&self) -> bool {
        match self.inner.conn.try_lock() {
            Ok(c) => c.broken,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner().broken,
            // In use by a call now, so not known to be broken.
            Err(std::sync::TryLockError::WouldBlock) => false,
        }
    }

    /// Whether `other` is this same connection.
    pub(crate) fn same_connection(&self, other: &Client) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    pub(crate) fn lock_conn(&self) -> std::sync::MutexGuard<'_, Conn> {
        self.inner.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends one request and hands its reply to `f`.
    pub(crate) fn request<R>(
        &self,
        req: &Request<'_>,
        f: impl FnOnce(Reply<'_>) -> Result<R>,
    ) -> Result<R> {
        let mut guard = self.lock_conn();
        let conn = &mut *guard;
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
        let max = self.max_frame();
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

    /// One operation on one object.
    pub(crate) fn call<R>(
        &self,
        obj: u64,
        op: Op<'_>,
        f: impl FnOnce(Reply<'_>) -> Result<R>,
    ) -> Result<R> {
        self.request(&Request::Call(Call { obj, op }), f)
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
        Err(e) => Err(ManagerError::protocol(format!(
            "a reply could not be decoded: {e}"
        ))),
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
