//! Entry points: functions a child process can run, registered by name.

use std::fmt;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use conveyor_core::{handoff, Codec, Postcard};
use serde::de::DeserializeOwned;

/// What an entry point may return: `()`, an exit code (`i32`), or a `Result` of either whose
/// error is `Debug` (printed the way a `main` returning an error prints it).
///
/// ```
/// use conveyor_process::EntryResult;
///
/// assert_eq!(().into_exit(), Ok(0));
/// assert_eq!(3.into_exit(), Ok(3));
/// assert_eq!(Err::<(), _>("no input").into_exit(), Err("\"no input\"".to_string()));
/// ```
pub trait EntryResult {
    /// `Ok(exit code)` for a child that ended normally, `Err(message)` for one that failed.
    fn into_exit(self) -> Result<i32, String>;
}

impl EntryResult for () {
    fn into_exit(self) -> Result<i32, String> {
        Ok(0)
    }
}

impl EntryResult for i32 {
    fn into_exit(self) -> Result<i32, String> {
        Ok(self)
    }
}

impl<T: EntryResult, E: fmt::Debug> EntryResult for Result<T, E> {
    fn into_exit(self) -> Result<i32, String> {
        match self {
            Ok(t) => t.into_exit(),
            Err(e) => Err(format!("{e:?}")),
        }
    }
}

/// The entry point with its arguments decoded, ready to run.
pub(crate) type Prepared = Box<dyn FnOnce() -> Result<i32, String>>;
type Prepare = dyn Fn(&[u8], Vec<OwnedFd>) -> Result<Prepared, String> + Send + Sync;

/// A function a child process can run, with the name a parent starts it by.
///
/// Make one with [`entry!`](crate::entry!) (named after the function) or [`Entry::new`]. An
/// entry point takes exactly one argument, decoded from what the parent passed to
/// [`Process::new`](crate::Process::new): use a tuple for several values and `()` for none.
#[derive(Clone)]
pub struct Entry {
    name: &'static str,
    path: &'static str,
    prepare: Arc<Prepare>,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("name", &self.name)
            .field("function", &self.path)
            .finish()
    }
}

impl Entry {
    /// An entry point called `name` that runs `f` with its argument decoded from the parent's.
    ///
    /// ```
    /// use conveyor_process::Entry;
    ///
    /// fn greet((who, times): (String, u32)) {
    ///     for _ in 0..times {
    ///         println!("hello, {who}");
    ///     }
    /// }
    ///
    /// let entry = Entry::new("greet", greet);
    /// assert_eq!(entry.name(), "greet");
    /// ```
    pub fn new<A, R, F>(name: &'static str, f: F) -> Entry
    where
        A: DeserializeOwned + 'static,
        R: EntryResult,
        F: Fn(A) -> R + Copy + Send + Sync + 'static,
    {
        let prepare = move |bytes: &[u8], fds: Vec<OwnedFd>| -> Result<Prepared, String> {
            let args: A = handoff::import_scope(fds, || Postcard.decode::<A>(bytes))
                .map_err(|e| e.to_string())?;
            Ok(Box::new(move || f(args).into_exit()))
        };
        Entry {
            name,
            path: std::any::type_name::<F>(),
            prepare: Arc::new(prepare),
        }
    }

    /// The name a parent starts this entry point by.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The function's full path, which tells apart two entries registered under one name.
    pub(crate) fn path(&self) -> &'static str {
        self.path
    }

    /// Decodes the arguments (installing inherited descriptors) and returns the call to run.
    pub(crate) fn prepare(&self, bytes: &[u8], fds: Vec<OwnedFd>) -> Result<Prepared, String> {
        (self.prepare)(bytes, fds)
    }
}

/// An [`Entry`] named after the function: `entry!(worker)` is `Entry::new("worker", worker)`,
/// and `entry!("name" => path::to::f)` gives another name.
///
/// ```
/// fn worker(n: u64) {
///     println!("{}", n * 2);
/// }
/// let e = conveyor_process::entry!(worker);
/// assert_eq!(e.name(), "worker");
/// let f = conveyor_process::entry!("double" => worker);
/// assert_eq!(f.name(), "double");
/// ```
#[macro_export]
macro_rules! entry {
    ($name:literal => $f:expr) => {
        $crate::Entry::new($name, $f)
    };
    ($f:path) => {
        $crate::Entry::new(stringify!($f), $f)
    };
}
