//! Entry points registered at link time with `register_entry!`, as a library registers its own
//! (conveyor-manager's server, conveyor-pool's worker): a test starts them with nothing to list
//! in `init_test!`, and one registered by `init_test!` under the same name takes precedence.

mod common;

use common::join;
use conveyor_process::{init_test, register_entry, Error, ExitStatus, Process};

fn triple(n: i32) -> i32 {
    n * 3
}
register_entry!(triple);

fn shadowed(_: ()) -> i32 {
    7
}
register_entry!("shadowed" => shadowed);

fn shadowing(_: ()) -> i32 {
    9
}

fn middle(n: i32) -> Result<(), String> {
    // a child starts a linked entry too: its own init_test! (the same test) is the branch point
    let grandchild = Process::new("triple", n)
        .start()
        .map_err(|e| e.to_string())?;
    match join(&grandchild) {
        ExitStatus::Exited(code) if code == n * 3 => Ok(()),
        other => Err(format!("the grandchild ended with {other}")),
    }
}

#[test]
fn a_linked_entry_starts_with_nothing_listed() {
    init_test!();
    let child = Process::new("triple", 14).start().unwrap();
    assert_eq!(join(&child), ExitStatus::Exited(42));
}

#[test]
fn a_child_starts_a_linked_entry_of_its_own() {
    init_test!(middle);
    let child = Process::new("middle", 5).start().unwrap();
    assert_eq!(join(&child), ExitStatus::Exited(0));
}

#[test]
fn an_entry_given_to_init_test_takes_precedence() {
    init_test!("shadowed" => shadowing);
    let child = Process::new("shadowed", ()).start().unwrap();
    assert_eq!(join(&child), ExitStatus::Exited(9));
}

#[test]
fn linked_entries_are_among_the_known_names() {
    init_test!();
    match Process::new("nobody", ()).start() {
        Err(Error::UnknownEntry { name, known }) => {
            assert_eq!(name, "nobody");
            assert!(known.iter().any(|k| k == "triple"), "{known:?}");
            assert!(known.iter().any(|k| k == "shadowed"), "{known:?}");
        }
        other => panic!("expected UnknownEntry, got {other:?}"),
    }
}
