//! Typed proxies: local handles whose every method is a request to the server.
//!
//! A proxy is cheap to clone (a connection handle, an object id and its name). Values are
//! encoded with postcard on the way out and decoded on the way back, so both sides must use
//! the same types for the same object. A mismatch usually shows up as a codec error; postcard
//! does not tag types, though, so two types with the same encoding are not told apart.

mod collections;
mod queue;
mod sync;
pub(crate) mod travel;

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

pub use collections::{ArrayProxy, DictProxy, ListProxy, NamespaceProxy, ValueProxy};
pub use queue::{QueueProxy, QueueState};
pub use sync::{
    BarrierProxy, BarrierState, ConditionGuard, ConditionProxy, EventProxy, LockGuard, LockProxy,
    RLockGuard, RLockProxy, SemaphoreProxy,
};

use crate::client::{ConnRef, ManagerConnection};
use crate::error::Result;
use crate::protocol::{encode, unexpected, Blob, Create, Kind, Op, Reply, Request};

/// Opens the object `name` of kind `P::KIND` (made from `create` if it does not exist and
/// `create` is given) and answers a proxy to it.
pub(crate) fn open<P: Proxy>(
    client: &ManagerConnection,
    name: &str,
    create: Option<Create<'_>>,
) -> Result<P> {
    let kind = P::KIND;
    let id = client.request(&Request::Open { name, kind, create }, |r| match r {
        Reply::Opened { id, .. } => Ok(id),
        other => Err(unexpected(&other)),
    })?;
    Ok(P::from_handle(Handle::new(client.clone(), id, name)))
}

/// The client's proxy constructors: each opens (or makes) a named object on the server.
impl ManagerConnection {
    fn open_raw<P: Proxy>(&self, name: &str, create: Option<Create<'_>>) -> Result<P> {
        open(self, name, create)
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
}

/// What every proxy holds: the connection, the object's id, and its name.
#[derive(Clone, Debug)]
pub struct Handle {
    client: ManagerConnection,
    id: u64,
    name: Arc<str>,
}

impl Handle {
    pub(crate) fn new(client: ManagerConnection, id: u64, name: &str) -> Handle {
        Handle {
            client,
            id,
            name: name.into(),
        }
    }

    #[inline]
    pub(crate) fn call<R>(&self, op: Op<'_>, f: impl FnOnce(Reply<'_>) -> Result<R>) -> Result<R> {
        self.client.call(self.id, op, f)
    }

    /// `op` on the connection `conn` (where a lock guard's lock was acquired).
    pub(crate) fn call_via<R>(
        &self,
        conn: &ConnRef,
        op: Op<'_>,
        f: impl FnOnce(Reply<'_>) -> Result<R>,
    ) -> Result<R> {
        self.client.call_via(conn, self.id, op, f)
    }

    /// This thread's connection for this proxy's client.
    pub(crate) fn thread_conn(&self) -> Result<ConnRef> {
        self.client.thread_conn()
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn client(&self) -> &ManagerConnection {
        &self.client
    }

    pub(crate) fn name_str(&self) -> &str {
        &self.name
    }
}

mod sealed {
    pub trait Sealed {}
}

/// What all proxies share.
pub trait Proxy: Sized + Clone + sealed::Sealed {
    /// The kind of object this proxy reaches.
    const KIND: Kind;

    #[doc(hidden)]
    fn from_handle(handle: Handle) -> Self;

    #[doc(hidden)]
    fn handle(&self) -> &Handle;

    /// The object's name on the server.
    fn name(&self) -> &str {
        &self.handle().name
    }

    /// The connection this proxy talks through.
    fn client(&self) -> &ManagerConnection {
        &self.handle().client
    }

    /// The same object reached through another client (for example one made with
    /// [`ManagerConnection::connect_again`], whose locks are its own even on the same thread).
    fn rebind(&self, client: &ManagerConnection) -> Self {
        let h = self.handle();
        Self::from_handle(Handle {
            client: client.clone(),
            id: h.id,
            name: h.name.clone(),
        })
    }
}

macro_rules! proxy_impl {
    ($kind:ident, $name:ident $(<$($g:ident),*>)?) => {
        impl$(<$($g),*>)? $crate::proxy::sealed::Sealed for $name$(<$($g),*>)? {}
        impl$(<$($g),*>)? $crate::proxy::Proxy for $name$(<$($g),*>)? {
            const KIND: $crate::protocol::Kind = $crate::protocol::Kind::$kind;
            fn from_handle(handle: $crate::proxy::Handle) -> Self {
                $name { h: handle, _t: Default::default() }
            }
            fn handle(&self) -> &$crate::proxy::Handle {
                &self.h
            }
        }
        impl$(<$($g),*>)? Clone for $name$(<$($g),*>)? {
            /// Another proxy to the same object; state of this proxy's own (a queue proxy's
            /// close) starts afresh.
            fn clone(&self) -> Self {
                $name { h: self.h.clone(), _t: Default::default() }
            }
        }
        impl$(<$($g),*>)? serde::Serialize for $name$(<$($g),*>)? {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                $crate::proxy::travel::serialize(&self.h, s)
            }
        }
        impl<'de $($(, $g)*)?> serde::Deserialize<'de> for $name$(<$($g),*>)? {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::proxy::travel::deserialize(d)
            }
        }
        impl$(<$($g),*>)? std::fmt::Debug for $name$(<$($g),*>)? {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("name", &&*self.h.name)
                    .field("id", &self.h.id)
                    .finish()
            }
        }
    };
}
pub(crate) use proxy_impl;
