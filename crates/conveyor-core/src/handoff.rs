//! Handoff: how a transport endpoint travels into a child process inside its arguments.
//!
//! A child process started by `conveyor-process` receives its arguments encoded with serde.
//! Most handles travel as plain data: a shared-memory queue serialises its segment's name and
//! the child opens the same segment. A handle built on a file descriptor (a connection's
//! socket) cannot travel as bytes: the descriptor itself must be inherited by the child. This
//! module is the side channel for that, so transports implement plain
//! [`Serialize`](serde::Serialize)/[`Deserialize`](serde::Deserialize) and never depend on the
//! process crate:
//!
//! - in the parent, while the launcher encodes the arguments inside [`export_scope`], a
//!   transport's `Serialize` calls [`export_fd`]: the descriptor is duplicated into the scope and
//!   the transport writes the returned index into the encoding;
//! - the launcher makes exactly those duplicates inheritable in that one child (and in no other
//!   process the parent starts meanwhile), and tells the child their numbers;
//! - in the child, the launcher decodes the arguments inside [`import_scope`], where the
//!   transport's `Deserialize` reads the index back and calls [`import_fd`] to own the
//!   descriptor again. Descriptors that nobody imports are closed when the scope ends.
//!
//! The [`fd`] module packages both halves for `#[serde(with = ...)]`, so an endpoint made of a
//! descriptor needs one attribute:
//!
//! ```
//! use std::os::unix::net::UnixStream;
//! use serde::{Deserialize, Serialize};
//!
//! /// One end of a socket pair that can be passed to a child process.
//! #[derive(Serialize, Deserialize)]
//! struct End(#[serde(with = "conveyor_core::handoff::fd")] UnixStream);
//!
//! let (a, _b) = UnixStream::pair().unwrap();
//! // Encoding inside an export scope collects the descriptor and writes its index.
//! let (bytes, fds) = conveyor_core::handoff::export_scope(|| postcard::to_allocvec(&End(a)));
//! assert_eq!(fds.len(), 1);
//! // In the child, the launcher hands the inherited descriptors to an import scope.
//! let end: End = conveyor_core::handoff::import_scope(fds, || {
//!     postcard::from_bytes(&bytes.unwrap())
//! })
//! .unwrap();
//! # drop(end);
//! ```
//!
//! A handle must stay valid in the parent until the child has decoded it: a shared-memory
//! queue's segment must still exist when the child opens it by name. `conveyor-process`'s
//! `Process::start` returns only after the child has decoded its arguments, so a parent may
//! drop its own handle as soon as `start` has returned.
//!
//! Outside the scopes (for example a connection put into a queue) [`export_fd`] and
//! [`import_fd`] fail with [`HandoffError::NoScope`], so serialising such a handle anywhere else
//! is a clear error rather than a number that means nothing on the other side.

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// Why a descriptor could not be exported or imported.
#[non_exhaustive]
pub enum HandoffError {
    /// No export or import scope is active on this thread: the value is being encoded or
    /// decoded somewhere other than a child process's arguments.
    NoScope,
    /// The index read from the arguments names no descriptor the child received.
    UnknownIndex(u32),
    /// The descriptor at this index was already imported once.
    AlreadyImported(u32),
    /// Duplicating the descriptor failed (for example the process ran out of descriptors).
    Dup(io::Error),
}

impl fmt::Display for HandoffError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandoffError::NoScope => f.write_str(
                "a file descriptor handle can only travel in a child process's arguments \
                 (conveyor-process); it cannot be encoded or decoded anywhere else",
            ),
            HandoffError::UnknownIndex(i) => write!(
                f,
                "the arguments name inherited descriptor #{i}, which the child did not receive"
            ),
            HandoffError::AlreadyImported(i) => {
                write!(f, "inherited descriptor #{i} was already imported once")
            }
            HandoffError::Dup(e) => write!(f, "could not duplicate a descriptor to hand off: {e}"),
        }
    }
}

crate::debug_shows_message!(HandoffError {
    NoScope,
    UnknownIndex(i),
    AlreadyImported(i),
    Dup(e),
});

impl std::error::Error for HandoffError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HandoffError::Dup(e) => Some(e),
            _ => None,
        }
    }
}

enum Scope {
    /// Parent side: duplicates collected so far, in index order.
    Export(Vec<OwnedFd>),
    /// Child side: received descriptors; `None` once imported.
    Import(Vec<Option<OwnedFd>>),
}

thread_local! {
    static SCOPE: RefCell<Option<Scope>> = const { RefCell::new(None) };
}

/// Restores the enclosing scope when a scope ends, even by unwinding.
struct Restore(Option<Option<Scope>>);

impl Drop for Restore {
    fn drop(&mut self) {
        if let Some(previous) = self.0.take() {
            SCOPE.with(|s| *s.borrow_mut() = previous);
        }
    }
}

fn enter(scope: Scope) -> Restore {
    Restore(Some(SCOPE.with(|s| s.borrow_mut().replace(scope))))
}

fn leave(mut restore: Restore) -> Option<Scope> {
    let previous = restore.0.take().expect("scope restored twice");
    SCOPE.with(|s| std::mem::replace(&mut *s.borrow_mut(), previous))
}

/// Runs `f` (the encoding of a child's arguments) with an export scope active on this thread,
/// and returns its result with the descriptors exported meanwhile, in index order.
///
/// The returned descriptors are close-on-exec duplicates owned by the caller: a launcher makes
/// them inheritable in the one child it starts and drops them afterwards. Scopes nest; an inner
/// scope hides the outer one.
pub fn export_scope<R>(f: impl FnOnce() -> R) -> (R, Vec<OwnedFd>) {
    let restore = enter(Scope::Export(Vec::new()));
    let r = f();
    let fds = match leave(restore) {
        Some(Scope::Export(fds)) => fds,
        _ => Vec::new(),
    };
    (r, fds)
}

/// Runs `f` (the decoding of this child's arguments) with an import scope over the inherited
/// descriptors `fds` (index `i` is `fds[i]`). Descriptors that `f` does not import are closed
/// when it returns.
pub fn import_scope<R>(fds: Vec<OwnedFd>, f: impl FnOnce() -> R) -> R {
    let restore = enter(Scope::Import(fds.into_iter().map(Some).collect()));
    let r = f();
    drop(leave(restore));
    r
}

/// Exports `fd` into the current export scope and returns the index to encode in its place.
///
/// Call it from a `Serialize` implementation. The descriptor is duplicated (close-on-exec), so
/// the caller keeps its own; the child receives the duplicate, which shares the open file (a
/// socket's peer sees one connection, a file one offset).
///
/// ```
/// use std::os::fd::AsFd;
/// use conveyor_core::handoff::{export_fd, export_scope, HandoffError};
///
/// let file = std::fs::File::open("/dev/null").unwrap();
/// // outside a scope, exporting is refused
/// assert!(matches!(export_fd(file.as_fd()), Err(HandoffError::NoScope)));
/// let (index, fds) = export_scope(|| export_fd(file.as_fd()));
/// assert_eq!(index.unwrap(), 0);
/// assert_eq!(fds.len(), 1);
/// ```
pub fn export_fd(fd: BorrowedFd<'_>) -> Result<u32, HandoffError> {
    SCOPE.with(|s| match &mut *s.borrow_mut() {
        Some(Scope::Export(fds)) => {
            let dup = fd.try_clone_to_owned().map_err(HandoffError::Dup)?;
            fds.push(dup);
            Ok((fds.len() - 1) as u32)
        }
        _ => Err(HandoffError::NoScope),
    })
}

/// Takes ownership of the inherited descriptor at `index` in the current import scope.
///
/// Call it from a `Deserialize` implementation with the index [`export_fd`] returned in the
/// parent. Each index can be imported once.
pub fn import_fd(index: u32) -> Result<OwnedFd, HandoffError> {
    SCOPE.with(|s| match &mut *s.borrow_mut() {
        Some(Scope::Import(fds)) => match fds.get_mut(index as usize) {
            Some(slot) => slot.take().ok_or(HandoffError::AlreadyImported(index)),
            None => Err(HandoffError::UnknownIndex(index)),
        },
        _ => Err(HandoffError::NoScope),
    })
}

/// Whether an export scope is active on this thread, that is, whether a value being serialised
/// right now is on its way into a child process's arguments.
pub fn is_exporting() -> bool {
    SCOPE.with(|s| matches!(&*s.borrow(), Some(Scope::Export(_))))
}

/// `#[serde(with = "conveyor_core::handoff::fd")]` for a field that owns a descriptor
/// (`OwnedFd`, `UnixStream`, `File`, ... anything `AsFd + From<OwnedFd>`): it travels to a
/// child process as an inherited descriptor.
pub mod fd {
    use super::{export_fd, import_fd, AsFd, OwnedFd};
    use serde::de::Error as _;
    use serde::ser::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Exports the field's descriptor and serialises its index.
    pub fn serialize<T: AsFd, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        let index = export_fd(value.as_fd()).map_err(S::Error::custom)?;
        index.serialize(s)
    }

    /// Reads an index and imports the inherited descriptor behind it.
    pub fn deserialize<'de, T: From<OwnedFd>, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        let index = u32::deserialize(d)?;
        import_fd(index).map(T::from).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    #[derive(Serialize, Deserialize)]
    struct End(#[serde(with = "crate::handoff::fd")] UnixStream);

    #[test]
    fn round_trip_in_one_process_shares_the_socket() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let (bytes, fds) = export_scope(|| postcard::to_allocvec(&(7u8, End(a))).unwrap());
        assert_eq!(fds.len(), 1);
        let (n, End(mut a2)): (u8, End) =
            import_scope(fds, || postcard::from_bytes(&bytes).unwrap());
        assert_eq!(n, 7);
        a2.write_all(b"hi").unwrap();
        let mut buf = [0u8; 2];
        b.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hi");
    }

    #[test]
    fn outside_a_scope_is_an_error() {
        let (a, _b) = UnixStream::pair().unwrap();
        let err = postcard::to_allocvec(&End(a)).unwrap_err();
        assert!(!err.to_string().is_empty());
        assert!(matches!(import_fd(0), Err(HandoffError::NoScope)));
        assert!(!is_exporting());
    }

    #[test]
    fn import_twice_or_out_of_range_is_an_error() {
        let (a, _b) = UnixStream::pair().unwrap();
        import_scope(vec![OwnedFd::from(a)], || {
            assert!(import_fd(0).is_ok());
            assert!(matches!(
                import_fd(0),
                Err(HandoffError::AlreadyImported(0))
            ));
            assert!(matches!(import_fd(1), Err(HandoffError::UnknownIndex(1))));
        });
    }

    #[test]
    fn scopes_nest_and_restore() {
        let (a, _b) = UnixStream::pair().unwrap();
        let ((inner, outer_idx), outer) = export_scope(|| {
            let (_, inner) = export_scope(|| {
                assert!(is_exporting());
                export_fd(a.as_fd()).unwrap()
            });
            (inner, export_fd(a.as_fd()).unwrap())
        });
        assert_eq!(inner.len(), 1);
        assert_eq!(outer.len(), 1);
        assert_eq!(outer_idx, 0);
        assert!(!is_exporting());
    }
}
