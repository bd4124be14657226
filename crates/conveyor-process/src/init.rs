//! [`init`] and [`init_test!`](crate::init_test!): what a program or a test calls first. They
//! register the entry points given, and, in a child, branch off into the one it was started
//! for.

use crate::child;
use crate::entry::Entry;
use crate::exit::InitGuard;
use crate::registry;

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
/// [`Error::InitTooLate`](crate::Error::InitTooLate) naming what was made.
///
/// A child runs the same binary with the same arguments as its parent (`std::env::args`, as
/// Python's spawn children get the parent's `sys.argv`). So code that only reads the arguments
/// may come before `init`, for example to register the entry points of a generic function
/// instantiated for the type the command line picked: the child takes the same path to the
/// same `init`.
pub fn init(entries: &[Entry]) -> InitGuard {
    // Registered in a child too, so that it can start children of its own.
    registry::register(entries, None);
    if child::is_child() {
        child::run_child(entries);
    }
    InitGuard::new()
}

/// Call first in a `#[test]` that starts children: the [`init_test!`](crate::init_test!)
/// macro passes the test's name. Not for direct use.
#[doc(hidden)]
pub fn init_test(here: &str, entries: &[Entry]) {
    let name = registry::current_test_name().unwrap_or_else(|| registry::test_name_from_path(here));
    // Registered in a child too, so that it can start children of its own.
    registry::register(entries, Some(name));
    if child::is_child() {
        child::run_child(entries);
    }
}

/// Call first in a `#[test]` that starts child processes, with the entry points the test's
/// children (and their children) run: functions, named after themselves as with
/// [`entry!`](crate::entry!), or `"name" => function` pairs, in any mix:
/// `init_test!(worker, "double" => doubler::run)`. With no entries, `init_test!()` is the
/// branch point for entry points that libraries registered themselves
/// ([`register_entry!`](crate::register_entry!)): a manager's server, a pool's worker.
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
    use crate::entry::Entry;

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
}
