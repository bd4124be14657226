//! `init` and `init_test!`: register the entry points, and branch into one when this process
//! is a child.

use std::sync::Mutex;

use crate::entry::Entry;
use crate::error::Error;
use crate::exit::InitGuard;
use crate::launch;

/// An entry point registered in this process, and the test that registered it (in a test
/// binary, a child re-runs that one test to reach it).
struct Registered {
    entry: Entry,
    test: Option<String>,
}

static REGISTRY: Mutex<Vec<Registered>> = Mutex::new(Vec::new());

fn registry() -> std::sync::MutexGuard<'static, Vec<Registered>> {
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

fn register(entries: &[Entry], test: Option<String>) {
    let mut reg = registry();
    for e in entries {
        let already = reg
            .iter()
            .any(|r| r.entry.name() == e.name() && r.entry.path() == e.path() && r.test == test);
        if !already {
            reg.push(Registered {
                entry: e.clone(),
                test: test.clone(),
            });
        }
    }
}

/// Call first in `main`, and keep what it returns until `main` ends: in a child started by
/// [`Process::start`](crate::Process::start) it runs the requested entry point and exits with its
/// status (it never returns there); in any other process it registers `entries` and returns an
/// [`InitGuard`] which, when `main` ends and drops it, joins the children that are not daemons
/// and terminates the daemons, as Python does at exit.
///
/// ```
/// use conveyor_process::{entry, Process};
///
/// fn worker(n: u32) {
///     println!("worker got {n}");
/// }
///
/// fn main() {
///     let _children = conveyor_process::init(&[entry!(worker)]);
///     // only the parent gets here
///     let child = Process::new("worker", 7u32).start().unwrap();
///     assert!(child.join().unwrap().success());
/// }
/// ```
///
/// "First" matters: a child runs `main` from the top until it reaches `init`, so whatever
/// `main` does before `init` is done again in every child. A program that creates a
/// shared-memory queue or lock (or binds a listener's Unix socket) before `init` would make
/// each child create one too, and leak it (the child exits from inside `init`, never dropping
/// it): such a child refuses to run its entry point, unwinds its `main` so that what it made is
/// dropped and removed, and the parent's [`Process::start`](crate::Process::start) fails with
/// [`Error::InitTooLate`] naming what was made.
pub fn init(entries: &[Entry]) -> InitGuard {
    // Registered in a child too, so that it can start children of its own.
    register(entries, None);
    if launch::is_child() {
        launch::run_child(entries);
    }
    InitGuard::new()
}

/// Call first in a `#[test]` that starts children: the [`init_test!`](crate::init_test!)
/// macro passes the test's name. Not for direct use.
#[doc(hidden)]
pub fn init_test(here: &str, entries: &[Entry]) {
    let name = current_test_name().unwrap_or_else(|| test_name_from_path(here));
    // Registered in a child too, so that it can start children of its own.
    register(entries, Some(name));
    if launch::is_child() {
        launch::run_child(entries);
    }
}

/// The test running on this thread: libtest names each test's thread after the test.
fn current_test_name() -> Option<String> {
    let t = std::thread::current();
    match t.name() {
        Some(n) if n != "main" => Some(n.to_string()),
        _ => None,
    }
}

/// `"crate::module::test_fn::__here"` -> `"module::test_fn"`, the name libtest knows the test
/// by (the path without the crate's name).
pub(crate) fn test_name_from_path(path: &str) -> String {
    let path = path.strip_suffix("::__here").unwrap_or(path);
    match path.split_once("::") {
        Some((_crate, rest)) => rest.to_string(),
        None => path.to_string(),
    }
}

/// How the parent reaches an entry point in a re-executed copy of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// Run the binary with no arguments: its `main` calls `init`.
    Main,
    /// Run only this test (with `--exact`): it calls `init_test!`.
    Test(String),
}

/// Finds the route to `name`, or a clear error when this process knows it cannot work.
pub(crate) fn route(name: &str) -> Result<Route, Error> {
    let reg = registry();
    // A process that registered nothing has not called init: re-executing it would run its
    // whole main (or, in a test binary, every test) in the child. Refuse instead.
    let found: Vec<&Registered> = reg.iter().filter(|r| r.entry.name() == name).collect();
    if found.is_empty() {
        let mut known: Vec<String> = reg.iter().map(|r| r.entry.name().to_string()).collect();
        known.sort();
        known.dedup();
        return Err(Error::UnknownEntry {
            name: name.to_string(),
            known,
        });
    }
    if found.iter().any(|r| r.test.is_none()) {
        return Ok(Route::Main);
    }
    if let Some(current) = current_test_name() {
        if let Some(r) = found.iter().find(|r| r.test.as_deref() == Some(&current)) {
            return Ok(Route::Test(r.test.clone().expect("a test registration")));
        }
    }
    let first = found[0];
    if found.iter().any(|r| r.entry.path() != first.entry.path()) {
        let mut paths: Vec<String> = found.iter().map(|r| r.entry.path().to_string()).collect();
        paths.sort();
        paths.dedup();
        return Err(Error::AmbiguousEntry {
            name: name.to_string(),
            paths,
        });
    }
    Ok(Route::Test(
        first.test.clone().expect("a test registration"),
    ))
}

/// An entry registered in this process under `name`, any.
pub(crate) fn lookup_any(name: &str) -> Option<Entry> {
    registry()
        .iter()
        .find(|r| r.entry.name() == name)
        .map(|r| r.entry.clone())
}

/// The names registered in this process (with repeats).
pub(crate) fn registered_names_unsorted() -> Vec<&'static str> {
    registry().iter().map(|r| r.entry.name()).collect()
}

/// Call first in a `#[test]` that starts child processes, with the entry points the test's
/// children (and their children) run: functions, named after themselves as with
/// [`entry!`](crate::entry!), or `"name" => function` pairs, in any mix:
/// `init_test!(worker, "conveyor-manager-server" => conveyor_manager::run_child_server)`.
///
/// In the test binary's normal run this registers the entries under the test's name and
/// returns. A child started from it re-executes the test binary with only this test selected
/// (`<test name> --exact --nocapture --test-threads=1 --include-ignored -q`); there,
/// `init_test!` runs the entry point
/// and exits, so the rest of the test never runs in the child.
///
/// ```no_run
/// use conveyor_process::{init_test, Process};
///
/// fn double(n: u32) -> i32 {
///     (n * 2) as i32 // becomes the exit code
/// }
///
/// #[test]
/// fn child_doubles() {
///     init_test!(double);
///     let child = Process::new("double", 21u32).start().unwrap();
///     assert_eq!(child.join().unwrap().code(), 42);
/// }
/// ```
#[macro_export]
macro_rules! init_test {
    ($($f:tt)*) => {{
        fn __here() {}
        fn __type_name_of<T>(_: T) -> &'static str {
            ::std::any::type_name::<T>()
        }
        $crate::__init_test(__type_name_of(__here), &$crate::__entries!($($f)*))
    }};
}

/// The entries of [`init_test!`]: plain paths (`worker`) and renamed ones (`"name" => f`), in
/// any mix.
#[doc(hidden)]
#[macro_export]
macro_rules! __entries {
    (@acc [$($acc:expr,)*]) => {
        [$($acc,)*]
    };
    (@acc [$($acc:expr,)*] $name:literal => $f:expr $(, $($rest:tt)*)?) => {
        $crate::__entries!(@acc [$($acc,)* $crate::entry!($name => $f),] $($($rest)*)?)
    };
    (@acc [$($acc:expr,)*] $f:path $(, $($rest:tt)*)?) => {
        $crate::__entries!(@acc [$($acc,)* $crate::entry!($f),] $($($rest)*)?)
    };
    ($($t:tt)*) => {
        $crate::__entries!(@acc [] $($t)*)
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_that_registered_nothing_refuses_to_start_children() {
        // no test in this binary registers entries
        match route("anything") {
            Err(Error::UnknownEntry { name, known }) => {
                assert_eq!(name, "anything");
                assert!(known.is_empty());
            }
            other => panic!("expected UnknownEntry, got {other:?}"),
        }
    }

    fn one(_: ()) {}
    fn two(_: u8) {}

    #[test]
    fn entry_lists_mix_plain_and_renamed_entries() {
        let names = |entries: &[Entry]| entries.iter().map(|e| e.name()).collect::<Vec<_>>();
        assert_eq!(names(&crate::__entries!(one, two)), ["one", "two"]);
        assert_eq!(names(&crate::__entries!(one, "b" => two,)), ["one", "b"]);
        assert_eq!(names(&crate::__entries!("a" => one, two)), ["a", "two"]);
        assert_eq!(names(&crate::__entries!(self::one)), ["self::one"]);
        assert!(names(&crate::__entries!()).is_empty());
    }

    #[test]
    fn test_names_drop_the_crate_and_the_marker() {
        assert_eq!(
            test_name_from_path("conveyor_process::tests::spawns::__here"),
            "tests::spawns"
        );
        assert_eq!(test_name_from_path("basic::spawns::__here"), "spawns");
    }
}
