//! Proxies that travel: a proxy serialises as its server's endpoint and the object's name,
//! and deserialises (in a child process, say) by connecting and opening the object, as a
//! Python proxy does when it is unpickled in another process.
//!
//! All the proxies a process deserialises for one server share one client, made on first use
//! and made again if it breaks; as with every client, each thread that calls through them
//! gets a connection of its own.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Handle, Proxy};
use crate::client::{Endpoint, ManagerConnection};

#[derive(Serialize, Deserialize)]
struct Token<'a> {
    endpoint: Endpoint,
    name: &'a str,
}

pub(crate) fn serialize<S: Serializer>(h: &Handle, s: S) -> Result<S::Ok, S::Error> {
    let endpoint = h.client().endpoint().ok_or_else(|| {
        S::Error::custom("this proxy's client has no address, so the proxy cannot travel")
    })?;
    Token {
        endpoint,
        name: h.name_str(),
    }
    .serialize(s)
}

fn shared_client(endpoint: &Endpoint) -> crate::Result<ManagerConnection> {
    static CLIENTS: OnceLock<Mutex<HashMap<Endpoint, ManagerConnection>>> = OnceLock::new();
    let mut clients = CLIENTS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(c) = clients.get(endpoint) {
        if !c.is_broken() {
            return Ok(c.clone());
        }
    }
    let c = endpoint.connect()?;
    clients.insert(endpoint.clone(), c.clone());
    Ok(c)
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>, P: Proxy>(d: D) -> Result<P, D::Error> {
    #[derive(Deserialize)]
    struct Owned {
        endpoint: Endpoint,
        name: String,
    }
    let t = Owned::deserialize(d)?;
    let client = shared_client(&t.endpoint).map_err(|e| {
        D::Error::custom(format!(
            "cannot reach the manager of proxy {:?}: {e}",
            t.name
        ))
    })?;
    super::open::<P>(&client, &t.name, None)
        .map_err(|e| D::Error::custom(format!("cannot open {:?} on its manager: {e}", t.name)))
}
