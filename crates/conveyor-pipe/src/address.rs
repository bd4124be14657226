//! [`Address`]: where a [`Listener`](crate::Listener) listens and a [`Connector`](crate::Connector)
//! connects.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A Unix socket path or a TCP `host:port`, as Python's `multiprocessing.connection` addresses
/// (`'/tmp/sock'` or `('localhost', 6000)`).
///
/// Parsing a string: `unix:PATH` is a path and `tcp:HOST:PORT` a TCP address, whatever they
/// hold; otherwise anything with a `/`, or without a `:port` suffix, is a path, and the rest
/// is `host:port` (`localhost:6000`, `127.0.0.1:0`, `[::1]:6000`). Port 0 picks a free port
/// when listening. It is the one address type of the workspace (the manager's too), and
/// travels to child processes in their arguments (`Serialize`/`Deserialize`).
///
/// ```
/// use conveyor_pipe::Address;
///
/// assert_eq!("localhost:6000".parse::<Address>().unwrap(), Address::Tcp("localhost:6000".into()));
/// assert_eq!("/tmp/app.sock".parse::<Address>().unwrap(), Address::Unix("/tmp/app.sock".into()));
/// assert_eq!("app.sock".parse::<Address>().unwrap(), Address::Unix("app.sock".into()));
/// assert_eq!("unix:host:80".parse::<Address>().unwrap(), Address::Unix("host:80".into()));
/// assert_eq!("tcp:localhost:0".parse::<Address>().unwrap(), Address::Tcp("localhost:0".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Address {
    /// A Unix domain socket at this path.
    Unix(PathBuf),
    /// A TCP address, `host:port`.
    Tcp(String),
}

impl Address {
    /// Reads `s` as a path or a `host:port` (see the type's documentation).
    pub fn parse(s: &str) -> Address {
        if let Some(path) = s.strip_prefix("unix:") {
            return Address::Unix(PathBuf::from(path));
        }
        if let Some(hostport) = s.strip_prefix("tcp:") {
            return Address::Tcp(hostport.to_string());
        }
        if !s.contains('/') {
            if let Some((host, port)) = s.rsplit_once(':') {
                if !host.is_empty() && port.parse::<u16>().is_ok() {
                    return Address::Tcp(s.to_string());
                }
            }
        }
        Address::Unix(PathBuf::from(s))
    }
}

/// Why text given to [`Address`]'s `FromStr` is not an address: it is empty, `unix:` names
/// no path, or `tcp:` is not followed by `HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an address: write a socket path (unix:PATH) or tcp:HOST:PORT")]
pub struct AddressParseError(String);

/// As [`Address::parse`], refusing what cannot be meant as an address (an empty string, an
/// empty `unix:` path, a `tcp:` without `HOST:PORT`), for a command line to report at once.
///
/// ```
/// use conveyor_pipe::Address;
///
/// assert!("tcp:nonsense".parse::<Address>().is_err());
/// assert!("".parse::<Address>().is_err());
/// assert_eq!("tcp:h:1".parse::<Address>().unwrap(), Address::Tcp("h:1".into()));
/// ```
impl FromStr for Address {
    type Err = AddressParseError;
    fn from_str(s: &str) -> Result<Self, AddressParseError> {
        let bad = || AddressParseError(s.to_string());
        if s.is_empty() || s == "unix:" {
            return Err(bad());
        }
        if let Some(hostport) = s.strip_prefix("tcp:") {
            match hostport.rsplit_once(':') {
                Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {}
                _ => return Err(bad()),
            }
        }
        Ok(Address::parse(s))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Unix(p) => write!(f, "{}", p.display()),
            Address::Tcp(s) => f.write_str(s),
        }
    }
}

impl From<SocketAddr> for Address {
    fn from(a: SocketAddr) -> Self {
        Address::Tcp(a.to_string())
    }
}

impl From<PathBuf> for Address {
    fn from(p: PathBuf) -> Self {
        Address::Unix(p)
    }
}

impl From<&Path> for Address {
    fn from(p: &Path) -> Self {
        Address::Unix(p.to_path_buf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_forms() {
        assert_eq!(Address::parse("[::1]:80"), Address::Tcp("[::1]:80".into()));
        assert_eq!(
            Address::parse("host:notaport"),
            Address::Unix("host:notaport".into())
        );
        assert_eq!(Address::parse(":80"), Address::Unix(":80".into()));
        assert_eq!(Address::parse("./a:80"), Address::Unix("./a:80".into()));
        assert_eq!(Address::parse("unix:a:80"), Address::Unix("a:80".into()));
        assert_eq!(Address::parse("tcp:h/x:1"), Address::Tcp("h/x:1".into()));
        let tcp = Address::Tcp("127.0.0.1:9".into());
        assert_eq!(Address::parse(&tcp.to_string()), tcp);
    }
}
