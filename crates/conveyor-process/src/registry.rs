//! The entry points this process knows, and where a re-executed copy of it reaches them.
//!
//! Two kinds of registration meet here:
//!
//! - at run time, the entries given to [`init`](crate::init) (first in `main`) or to
//!   [`init_test!`](crate::init_test!) (first in a test), each with the test that gave it;
//! - at link time, the entries a library crate declares once with
//!   [`register_entry!`](crate::register_entry!) (a manager's server, a pool's worker): they
//!   are in every program that links the library, with nothing for the program to list.
//!
//! A child re-executes the binary, so the parent must also know a *branch point* the child
//! reaches: `main` when it called `init`, or a test that called `init_test!`. Every call of
//! either is recorded as one, even with no entries of its own.

use std::sync::{Mutex, MutexGuard};

use crate::entry::Entry;
use crate::error::Error;

/// An entry point registered at run time, and the test that registered it (in a test binary,
/// a child re-runs that one test to reach it).
struct Registered {
    entry: Entry,
    test: Option<String>,
}

/// What [`init`](crate::init) and [`init_test!`](crate::init_test!) recorded.
struct State {
    entries: Vec<Registered>,
    /// Each call of `init` (`None`) or `init_test!` (the test's name), once: where a child
    /// re-executing this binary branches off into its entry point.
    branch_points: Vec<Option<String>>,
}

static STATE: Mutex<State> = Mutex::new(State {
    entries: Vec::new(),
    branch_points: Vec::new(),
});

fn state() -> MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Records `entries` (from `init` when `test` is `None`, else from that test's `init_test!`)
/// and the branch point.
pub(crate) fn register(entries: &[Entry], test: Option<String>) {
    let mut st = state();
    for e in entries {
        let already = st
            .entries
            .iter()
            .any(|r| r.entry.name() == e.name() && r.entry.path() == e.path() && r.test == test);
        if !already {
            st.entries.push(Registered {
                entry: e.clone(),
                test: test.clone(),
            });
        }
    }
    if !st.branch_points.contains(&test) {
        st.branch_points.push(test);
    }
}

/// An entry point registered at link time by [`register_entry!`](crate::register_entry!).
/// Not for direct use.
#[doc(hidden)]
#[derive(Debug)]
pub struct StaticEntry {
    /// Makes the entry (an [`Entry`] holds a closure, so it is built when it is looked up).
    pub make: fn() -> Entry,
}

inventory::collect!(StaticEntry);

/// The entry points registered at link time, in no particular order.
fn static_entries() -> impl Iterator<Item = Entry> {
    inventory::iter::<StaticEntry>
        .into_iter()
        .map(|s| (s.make)())
}

/// How the parent reaches an entry point in a re-executed copy of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// Run the binary with the parent's arguments: its `main` calls `init`.
    Main,
    /// Run only this test (with `--exact`): it calls `init_test!`.
    Test(String),
}

/// Finds the route to `name`, or a clear error when this process knows it cannot work.
pub(crate) fn route(name: &str) -> Result<Route, Error> {
    let st = state();
    let found: Vec<&Registered> = st
        .entries
        .iter()
        .filter(|r| r.entry.name() == name)
        .collect();
    if found.is_empty() {
        return route_static(&st, name);
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

/// The route to an entry point that only a library registered (at link time): any branch point
/// reaches it, the current test's first.
fn route_static(st: &State, name: &str) -> Result<Route, Error> {
    let mut paths: Vec<String> = static_entries()
        .filter(|e| e.name() == name)
        .map(|e| e.path().to_string())
        .collect();
    paths.sort();
    paths.dedup();
    if paths.is_empty() {
        // A process that registered nothing has not called init: re-executing it would run its
        // whole main (or, in a test binary, every test) in the child. Refuse instead.
        let mut known: Vec<String> = st
            .entries
            .iter()
            .map(|r| r.entry.name().to_string())
            .chain(static_entries().map(|e| e.name().to_string()))
            .collect();
        known.sort();
        known.dedup();
        return Err(Error::UnknownEntry {
            name: name.to_string(),
            known,
        });
    }
    if paths.len() > 1 {
        return Err(Error::AmbiguousEntry {
            name: name.to_string(),
            paths,
        });
    }
    if st.branch_points.contains(&None) {
        return Ok(Route::Main);
    }
    let tests = || st.branch_points.iter().flatten();
    if let Some(current) = current_test_name() {
        if let Some(t) = tests().find(|t| **t == current) {
            return Ok(Route::Test(t.clone()));
        }
    }
    match tests().next() {
        Some(t) => Ok(Route::Test(t.clone())),
        None => Err(Error::NotInitialized {
            entry: name.to_string(),
        }),
    }
}

/// The entry point registered under `name`: at run time (any test's) or else at link time.
pub(crate) fn lookup(name: &str) -> Option<Entry> {
    let runtime = state()
        .entries
        .iter()
        .find(|r| r.entry.name() == name)
        .map(|r| r.entry.clone());
    runtime.or_else(|| static_entries().find(|e| e.name() == name))
}

/// The names registered in this process, at run time and at link time (with repeats).
pub(crate) fn known_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = state().entries.iter().map(|r| r.entry.name()).collect();
    names.extend(static_entries().map(|e| e.name()));
    names
}

/// The test running on this thread: libtest names each test's thread after the test.
pub(crate) fn current_test_name() -> Option<String> {
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

/// Registers an entry point at link time, from a library crate (or any crate), so that every
/// program linking it can start it with nothing to list in [`init`](crate::init) or
/// [`init_test!`](crate::init_test!): the program still calls one of them first (that is where
/// a child branches off), with or without entries of its own.
///
/// Place it outside any function, once per entry point: `register_entry!(worker)` names the
/// entry after the function, `register_entry!("name" => path::to::f)` gives another name (any
/// `&'static str` constant expression: `register_entry!(NAME => f)` with `const NAME: &str`).
/// conveyor-manager registers its server's entry point this way and conveyor-pool its
/// worker's, which is why `Manager::builder().spawn()` and `ProcessPool::new` need nothing
/// from the user. An entry registered by `init`/`init_test!` under the same name takes
/// precedence over one registered here.
///
/// ```
/// use conveyor_process::Process;
///
/// fn double(n: i32) -> i32 {
///     n * 2 // the exit code
/// }
/// conveyor_process::register_entry!("doubler" => double);
///
/// fn main() -> Result<(), conveyor_process::Error> {
///     let _children = conveyor_process::init(&[]); // first in main: the branch point
///     let child = Process::new("doubler", 21).start()?;
///     assert_eq!(child.join()?.code(), 42);
///     Ok(())
/// }
/// ```
///
/// It works on every target the `inventory` crate supports (Linux among them): the
/// registration runs before `main`, in programs, test binaries, doctests and examples alike.
#[macro_export]
macro_rules! register_entry {
    ($name:expr => $f:expr) => {
        $crate::__inventory::submit! {
            $crate::__StaticEntry { make: || $crate::Entry::new($name, $f) }
        }
    };
    ($f:path) => {
        $crate::__inventory::submit! {
            $crate::__StaticEntry { make: || $crate::Entry::new(stringify!($f), $f) }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linked(_: ()) {}
    crate::register_entry!("linked-in-unit-tests" => linked);

    #[test]
    fn an_unknown_name_is_refused_with_the_known_ones() {
        // no test in this binary registers entries at run time; one is registered at link time
        match route("anything") {
            Err(Error::UnknownEntry { name, known }) => {
                assert_eq!(name, "anything");
                assert_eq!(known, ["linked-in-unit-tests"]);
            }
            other => panic!("expected UnknownEntry, got {other:?}"),
        }
    }

    #[test]
    fn a_linked_entry_is_reached_through_a_branch_point() {
        let mut st = State {
            entries: Vec::new(),
            branch_points: Vec::new(),
        };
        let name = "linked-in-unit-tests";
        match route_static(&st, name) {
            Err(Error::NotInitialized { entry }) => assert_eq!(entry, name),
            other => panic!("expected NotInitialized, got {other:?}"),
        }
        st.branch_points.push(Some("some::test".into()));
        assert_eq!(
            route_static(&st, name).unwrap(),
            Route::Test("some::test".into())
        );
        st.branch_points.push(None);
        assert_eq!(route_static(&st, name).unwrap(), Route::Main);
        assert_eq!(lookup(name).map(|e| e.name()), Some(name));
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
