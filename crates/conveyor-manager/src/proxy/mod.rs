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

pub use collections::{ArrayProxy, DictProxy, ListProxy, NamespaceProxy, ValueProxy};
pub use queue::{QueueProxy, QueueState};
pub use sync::{
    BarrierProxy, BarrierState, EventProxy, LockGuard, LockProxy, RLockGuard, RLockProxy,
    SemaphoreProxy,
};

use crate::client::Client;
use crate::error::Result;
use crate::protocol::{Kind, Op, Reply};

/// What every proxy holds: the connection, the object's id, and its name.
#[derive(Clone, Debug)]
pub struct Handle {
    client: Client,
    id: u64,
    name: Arc<str>,
}

impl Handle {
    pub(crate) fn new(client: Client, id: u64, name: &str) -> Handle {
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

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn client(&self) -> &Client {
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
    fn client(&self) -> &Client {
        &self.handle().client
    }

    /// The same object reached through another connection (for example one made with
    /// [`Client::connect_again`] for a thread that waits on the server).
    fn rebind(&self, client: &Client) -> Self {
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
