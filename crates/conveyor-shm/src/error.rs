//! Errors raised while creating, opening or inspecting a shared-memory segment.
//!
//! Per-message failures use conveyor-core's [`PutError`](conveyor_core::PutError) and
//! [`GetError`](conveyor_core::GetError); a segment found corrupt while a message is taken
//! is reported as `GetError::Io` with [`std::io::ErrorKind::InvalidData`].

use std::io;

/// Why a segment (a queue or a lock) could not be created or opened.
///
/// Every variant names the segment and says what to do about it. A segment that is foreign,
/// truncated or corrupt is always reported through one of these, never by a crash.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum ShmError {
    /// The name is not usable as a segment name.
    #[error("invalid segment name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `create` found a segment of that name already there.
    #[error(
        "a segment named {0:?} already exists: open it instead, pick another name, \
         or remove it if it was leaked (see remove_leaked)"
    )]
    AlreadyExists(String),
    /// `open` found no segment of that name.
    #[error("no segment named {0:?}: was it created, and is its creator's handle still alive?")]
    NotFound(String),
    /// The file does not start with a conveyor magic number of the expected kind.
    #[error("segment {name:?} is not a conveyor {expected} segment (magic {found:#018x})")]
    BadMagic {
        /// The segment's name.
        name: String,
        /// What kind of segment was expected (`"queue"`, `"lock"`).
        expected: &'static str,
        /// The magic number found.
        found: u64,
    },
    /// The segment was written by an incompatible version of this crate.
    #[error(
        "segment {name:?} has layout version {found}, this build reads version {expected}: \
         use the same conveyor version in every process"
    )]
    VersionMismatch {
        /// The segment's name.
        name: String,
        /// The version this build reads.
        expected: u32,
        /// The version found.
        found: u32,
    },
    /// The segment holds items of another type or codec.
    #[error(
        "segment {name:?} holds items of another type or codec (fingerprint {found:#018x}, \
         this handle expects {expected:#018x} for {type_name}): open it with the same item type"
    )]
    TypeMismatch {
        /// The segment's name.
        name: String,
        /// The item type this handle was opened with.
        type_name: &'static str,
        /// The fingerprint this handle expects.
        expected: u64,
        /// The fingerprint stored in the segment.
        found: u64,
    },
    /// The file is shorter or longer than its header declares.
    #[error(
        "segment {name:?} is {actual} bytes long but its header declares {expected}: \
         it is truncated or corrupt; remove it"
    )]
    Truncated {
        /// The segment's name.
        name: String,
        /// The length the header declares (or the least a header needs).
        expected: u64,
        /// The file's length.
        actual: u64,
    },
    /// A header field has an impossible value.
    #[error("segment {name:?} has a corrupt header: {what}; remove it")]
    Corrupt {
        /// The segment's name.
        name: String,
        /// Which field, and what is wrong with it.
        what: String,
    },
    /// The creator never finished initialising the segment (it probably died while creating it).
    #[error(
        "segment {0:?} was never fully initialised (did its creator die?): remove it and create it again"
    )]
    Uninitialised(String),
    /// An option passed to a builder is out of range.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// The operating system refused an operation on the segment.
    #[error("I/O error on segment {name:?}: {source}")]
    Io {
        /// The segment's name.
        name: String,
        /// The error the system reported.
        #[source]
        source: io::Error,
    },
}

impl ShmError {
    pub(crate) fn io(name: &str, source: io::Error) -> Self {
        ShmError::Io {
            name: name.to_string(),
            source,
        }
    }

    pub(crate) fn corrupt(name: &str, what: impl Into<String>) -> Self {
        ShmError::Corrupt {
            name: name.to_string(),
            what: what.into(),
        }
    }
}

/// Why a process [`Lock`](crate::Lock) or [`RLock`](crate::RLock) could not be acquired.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// The lock is held by someone else and the call was not allowed to wait.
    #[error("the lock is held by another thread or process")]
    WouldBlock,
    /// The lock stayed held for the whole timeout.
    #[error("timed out waiting for the lock")]
    Timeout,
    /// This thread already holds this (non-recursive) lock: acquiring it again would deadlock.
    #[error("this thread already holds the lock: acquiring it again would deadlock (use RLock)")]
    WouldDeadlock,
    /// The lock can no longer be used: a previous owner died and the lock was never repaired.
    #[error(
        "the lock is no longer usable (a previous owner died without repairing it): recreate it"
    )]
    NotRecoverable,
    /// The system reported another error.
    #[error("lock error: {0}")]
    Io(#[from] io::Error),
}

conveyor_core::debug_shows_message!(ShmError {
    InvalidName { name, reason },
    AlreadyExists(name),
    NotFound(name),
    BadMagic { name, expected, found },
    VersionMismatch { name, expected, found },
    TypeMismatch { name, type_name, expected, found },
    Truncated { name, expected, actual },
    Corrupt { name, what },
    Uninitialised(name),
    InvalidOption(what),
    Io { name, source },
});

conveyor_core::debug_shows_message!(LockError {
    WouldBlock,
    Timeout,
    WouldDeadlock,
    NotRecoverable,
    Io(e),
});

#[cfg(test)]
mod tests {
    use super::*;

    /// `main` returning one of these prints its `Debug` form: it must carry the message.
    #[test]
    fn debug_shows_the_message_then_the_fields() {
        let e = ShmError::NotFound("jobs".into());
        assert_eq!(format!("{e:?}"), format!("{e} (NotFound(\"jobs\"))"));
        let e = LockError::WouldDeadlock;
        assert_eq!(format!("{e:?}"), format!("{e} (WouldDeadlock)"));
    }
}
