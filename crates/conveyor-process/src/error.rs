//! Why starting or waiting for a child failed.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use conveyor_core::CodecError;

use crate::status::ExitStatus;

/// Why a child could not be started, or could not be waited for.
///
/// Every way a start can go wrong ends in one of these, in the parent, without hanging: a name
/// nobody registered, a binary that cannot be executed, arguments the entry cannot decode, a
/// child that ended (or stayed silent) before it reported that its entry point runs.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No entry point by this name is registered: in this process (which must have called
    /// `init` or `init_test!` with it), or, for a child running another
    /// [`program`](crate::Process::program), in that program.
    #[error(
        "no entry point named `{name}` is registered (known: {}); register it with \
         `conveyor_process::init(&[entry!({name})])` in main, or `init_test!({name})` in a test",
        if known.is_empty() { "none".to_string() } else { known.join(", ") }
    )]
    UnknownEntry {
        /// The name asked for.
        name: String,
        /// The names that are registered.
        known: Vec<String>,
    },

    /// Two tests registered different functions under this name, and the test that starts the
    /// child registered neither: rename one, or start the child from a test that registers it.
    #[error(
        "entry point name `{name}` is registered by several tests with different functions \
         ({}); start it from a test that registers it, or give the entries distinct names",
        paths.join(", ")
    )]
    AmbiguousEntry {
        /// The name asked for.
        name: String,
        /// The functions registered under it.
        paths: Vec<String>,
    },

    /// The entry point is registered at link time (by a library, with
    /// [`register_entry!`](crate::register_entry!)), but this process never called
    /// [`init`](crate::init) or [`init_test!`](crate::init_test!), so a re-executed copy of it
    /// would not reach the entry point: call `init` first in `main`, or `init_test!()` first in
    /// the test.
    #[error(
        "entry point `{entry}` is registered, but this process has not called \
         `conveyor_process::init` (first in main) or `init_test!` (first in this test), where a \
         child branches off into it; call `let _children = conveyor_process::init(&[]);` first \
         in main, or `init_test!();` as the test's first line"
    )]
    NotInitialized {
        /// The entry point.
        entry: String,
    },

    /// The arguments could not be encoded (for example a handle that cannot travel).
    #[error("the arguments for entry point `{entry}` could not be encoded: {source}")]
    Encode {
        /// The entry point.
        entry: String,
        /// What the codec said.
        source: CodecError,
    },

    /// The child's entry point could not decode its arguments: the parent passed a value of a
    /// different type than the entry point takes.
    #[error(
        "entry point `{entry}` could not decode its arguments: {message} (does the value passed \
         to Process::new have the type the entry point takes?)"
    )]
    BadArgs {
        /// The entry point.
        entry: String,
        /// What the decoder said.
        message: String,
    },

    /// The program could not be started (not found, not executable, out of resources).
    #[error("could not start `{}`: {source}", program.display())]
    Spawn {
        /// The program that was to be executed.
        program: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },

    /// The child ended before it reported that its entry point started. Usually its `main`
    /// does not call `conveyor_process::init` first (or, in a test, the test named does not call
    /// `init_test!` first), or it crashed while starting.
    #[error(
        "child {pid} for entry point `{entry}` {status} before it started the entry point; does \
         its main call conveyor_process::init() first (or its test init_test!)?"
    )]
    DiedBeforeReport {
        /// The entry point.
        entry: String,
        /// The child's process id.
        pid: u32,
        /// How it ended.
        status: ExitStatus,
    },

    /// The child did not report within the start timeout; it was killed and reaped.
    #[error(
        "child {pid} for entry point `{entry}` did not start it within {timeout:?} and was \
         killed; does its main call conveyor_process::init() first? (raise the limit with \
         Process::start_timeout on a very loaded machine)"
    )]
    StartTimeout {
        /// The entry point.
        entry: String,
        /// The child's process id.
        pid: u32,
        /// The limit that passed.
        timeout: Duration,
    },

    /// The child's program made things that outlive a process before it called
    /// [`init`](crate::init) (shared-memory queues or locks, a listener's Unix socket): a child
    /// runs `main` from the top up to `init`, so each child made them again and would leak them,
    /// exiting from inside `init` without dropping them. The child did not run the entry point; it unwound its
    /// `main`, which dropped and removed what it made. Call `init` first in `main`.
    #[error(
        "the child for entry point `{entry}` did not run it: its main made [{}] before calling \
         conveyor_process::init, and a child would make them again and leak them; call \
         conveyor_process::init first in main, before creating queues or locks",
        held.join(", ")
    )]
    InitTooLate {
        /// The entry point.
        entry: String,
        /// What the child's `main` had made before `init` (a description of each).
        held: Vec<String>,
    },

    /// The child could not read what the parent sent it (a version mismatch between parent and
    /// child binaries, or a damaged payload).
    #[error("child for entry point `{entry}` could not read its launch payload: {message}")]
    Launch {
        /// The entry point.
        entry: String,
        /// What went wrong.
        message: String,
    },

    /// A system call failed while starting or waiting for the child.
    #[error("I/O error while {what}: {source}")]
    Io {
        /// What the launcher was doing.
        what: &'static str,
        /// The operating system's error.
        source: io::Error,
    },
}

impl Error {
    pub(crate) fn io(what: &'static str) -> impl FnOnce(io::Error) -> Error {
        move |source| Error::Io { what, source }
    }
}

conveyor_core::debug_shows_message!(Error {
    UnknownEntry { name, known },
    AmbiguousEntry { name, paths },
    NotInitialized { entry },
    Encode { entry, source },
    BadArgs { entry, message },
    Spawn { program, source },
    DiedBeforeReport { entry, pid, status },
    StartTimeout { entry, pid, timeout },
    InitTooLate { entry, held },
    Launch { entry, message },
    Io { what, source },
});
