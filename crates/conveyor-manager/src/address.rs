//! Where a manager listens: a Unix socket path (the default, for one machine) or a TCP address
//! (to reach it from another machine).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A manager's address.
///
/// Parsed from text: `unix:PATH` or anything containing a `/` is a Unix socket path;
/// `tcp:HOST:PORT` or `HOST:PORT` is TCP (port 0 picks a free port when listening).
///
/// ```
/// use conveyor_manager::Address;
///
/// let a: Address = "/tmp/m.sock".parse().unwrap();
/// assert_eq!(a, Address::Unix("/tmp/m.sock".into()));
/// let b: Address = "127.0.0.1:5000".parse().unwrap();
/// assert_eq!(b, Address::Tcp("127.0.0.1:5000".into()));
/// assert_eq!(b.to_string(), "tcp:127.0.0.1:5000");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Address {
    /// A Unix domain socket at this path.
    Unix(PathBuf),
    /// A TCP address, `HOST:PORT`.
    Tcp(String),
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Unix(p) => write!(f, "unix:{}", p.display()),
            Address::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

/// Why text is not an [`Address`].
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a manager address: write unix:/path/to/socket or tcp:HOST:PORT")]
pub struct AddressParseError(String);

impl FromStr for Address {
    type Err = AddressParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(p) = s.strip_prefix("unix:") {
            if p.is_empty() {
                return Err(AddressParseError(s.to_owned()));
            }
            return Ok(Address::Unix(p.into()));
        }
        if let Some(a) = s.strip_prefix("tcp:") {
            return parse_tcp(a).ok_or_else(|| AddressParseError(s.to_owned()));
        }
        if s.contains('/') {
            return Ok(Address::Unix(s.into()));
        }
        parse_tcp(s).ok_or_else(|| AddressParseError(s.to_owned()))
    }
}

fn parse_tcp(a: &str) -> Option<Address> {
    let (host, port) = a.rsplit_once(':')?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return None;
    }
    Some(Address::Tcp(a.to_owned()))
}

conveyor_core::debug_shows_message!(struct AddressParseError(text));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_forms() {
        assert_eq!(
            "unix:rel.sock".parse::<Address>().unwrap(),
            Address::Unix("rel.sock".into())
        );
        assert_eq!(
            "tcp:localhost:0".parse::<Address>().unwrap(),
            Address::Tcp("localhost:0".into())
        );
        assert!("nonsense".parse::<Address>().is_err());
        assert!("host:notaport".parse::<Address>().is_err());
        assert!("unix:".parse::<Address>().is_err());
        let a = Address::Unix("/x/y".into());
        assert_eq!(a.to_string().parse::<Address>().unwrap(), a);
    }
}
