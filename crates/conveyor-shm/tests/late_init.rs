//! A program that makes a queue before `conveyor_process::init` would leak one segment per child
//! on every run (the child runs `main` up to `init` again, then exits from inside `init` without
//! dropping what it made). The child refuses instead, unwinds so that its segments are removed,
//! and the parent's `start` fails with `InitTooLate`, naming them.
//!
//! The test uses a private segment directory (`$CONVEYOR_SHM_DIR`, inherited by the child), so
//! that what it sees there is this binary's alone.

use std::path::{Path, PathBuf};

use conveyor_process::{init_test, Error, Process};
use conveyor_shm::{Lock, ShmQueue, FILE_PREFIX};

/// This test's own directory: made by the parent, inherited by the child.
fn setup() -> PathBuf {
    const TAG: &str = "conveyor-shm-late-init-";
    if let Some(inherited) = std::env::var_os("CONVEYOR_SHM_DIR") {
        let inherited = PathBuf::from(inherited);
        if inherited.to_string_lossy().contains(TAG) {
            return inherited;
        }
    }
    let dir = std::env::temp_dir().join(format!("{TAG}{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::env::set_var("CONVEYOR_SHM_DIR", &dir);
    dir
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn never_runs(_: ()) {
    unreachable!("a child whose main made segments before init must not run its entry point");
}

#[test]
fn segments_made_before_init_are_refused_and_removed_in_the_child() {
    // In the child, the test runs from the top again: it sets the (inherited) directory, makes
    // a queue and a lock of its own, and only then reaches `init_test!`: a late init.
    let dir = setup();
    let q: ShmQueue<u32> = ShmQueue::new().unwrap();
    let lock = Lock::new().unwrap();
    init_test!(never_runs);
    let ours = vec![
        format!("{FILE_PREFIX}{}", lock.name()),
        format!("{FILE_PREFIX}{}", q.name()),
    ];
    let mut sorted = ours.clone();
    sorted.sort();
    assert_eq!(files_in(&dir), sorted);

    // (the child's libtest reports its test as failed on standard output: not shown)
    let err = Process::new("never_runs", ())
        .stdout(std::process::Stdio::null())
        .start()
        .unwrap_err();
    let Error::InitTooLate { entry, held } = &err else {
        panic!("expected InitTooLate, got {err:?}");
    };
    assert_eq!(entry, "never_runs");
    assert_eq!(held.len(), 2, "{held:?}");
    for what in held {
        let path = what
            .strip_prefix("shared-memory segment ")
            .unwrap_or_else(|| panic!("not a segment: {what}"));
        let path = Path::new(path);
        assert_eq!(path.parent(), Some(dir.as_path()));
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!ours.contains(&name), "the child named the parent's {name}");
        // start returned after the child exited: its unwinding removed what it made
        assert!(!path.exists(), "the child's {} leaked", path.display());
    }
    assert!(err
        .to_string()
        .contains("call conveyor_process::init first"));
    // The parent's own segments are untouched, and nothing else is left.
    assert_eq!(files_in(&dir), sorted);
    drop((q, lock));
    assert!(files_in(&dir).is_empty(), "{:?}", files_in(&dir));
    std::fs::remove_dir(&dir).unwrap();
}
