//! Every way a start can fail is a clear error from `start`, never a hang.

mod common;

use std::time::{Duration, Instant};

use conveyor_process::{init_test, Error, ExitStatus, Process};

fn pair_sum((a, b): (u32, u32)) -> i32 {
    (a + b) as i32
}

fn takes_string(s: String) -> i32 {
    s.len() as i32
}

/// Arguments that re-run the test named `test` in the current test binary.
fn rerun(test: &str) -> Vec<String> {
    vec![
        test.to_string(),
        "--exact".into(),
        "--nocapture".into(),
        "--test-threads=1".into(),
        "-q".into(),
    ]
}

#[test]
fn unknown_entry_in_the_parent() {
    init_test!(pair_sum);
    let err = Process::new("no_such_entry", ()).start().unwrap_err();
    match &err {
        Error::UnknownEntry { name, known } => {
            assert_eq!(name, "no_such_entry");
            assert!(known.iter().any(|k| k == "pair_sum"), "{known:?}");
        }
        other => panic!("expected UnknownEntry, got {other:?}"),
    }
    assert!(err.to_string().contains("no_such_entry"), "{err}");
}

#[test]
fn unknown_entry_in_the_child() {
    init_test!(pair_sum);
    // Another binary (here: this one, this very test) that does not know the name: only the
    // child can tell, and it does.
    let exe = std::env::current_exe().unwrap();
    let err = Process::new("only_elsewhere", ())
        .program(exe, rerun("unknown_entry_in_the_child"))
        .start()
        .unwrap_err();
    match &err {
        Error::UnknownEntry { name, known } => {
            assert_eq!(name, "only_elsewhere");
            assert!(known.iter().any(|k| k == "pair_sum"), "{known:?}");
        }
        other => panic!("expected UnknownEntry, got {other:?}"),
    }
}

#[test]
fn arguments_that_do_not_decode() {
    init_test!(pair_sum, takes_string);
    // a string where two numbers are expected: the bytes left over are refused
    let err = Process::new("pair_sum", "hello").start().unwrap_err();
    assert!(
        matches!(err, Error::BadArgs { ref entry, .. } if entry == "pair_sum"),
        "{err}"
    );
    // nothing where a string is expected
    let err = Process::new("takes_string", ()).start().unwrap_err();
    assert!(matches!(err, Error::BadArgs { .. }), "{err}");
    // and the right shape works
    let ok = Process::new("pair_sum", (2u32, 3u32)).start().unwrap();
    assert_eq!(common::join(&ok), ExitStatus::Exited(5));
}

#[test]
fn a_program_that_cannot_be_executed() {
    init_test!(pair_sum);
    let err = Process::new("pair_sum", (1u32, 2u32))
        .program("/nonexistent/conveyor-child", Vec::<String>::new())
        .start()
        .unwrap_err();
    match &err {
        Error::Spawn { program, source } => {
            assert_eq!(program.to_str(), Some("/nonexistent/conveyor-child"));
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected Spawn, got {other:?}"),
    }
    // a file that exists but is not executable
    let err = Process::new("pair_sum", (1u32, 2u32))
        .program(
            concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
            Vec::<String>::new(),
        )
        .start()
        .unwrap_err();
    assert!(matches!(err, Error::Spawn { .. }), "{err}");
}

#[test]
fn a_child_that_never_calls_init_and_exits() {
    init_test!(pair_sum);
    // `sh -c 'exit 4'` is a program that ignores the launch entirely
    let err = Process::new("pair_sum", (1u32, 2u32))
        .program("/bin/sh", ["-c", "exit 4"])
        .start()
        .unwrap_err();
    match &err {
        Error::DiedBeforeReport { entry, status, .. } => {
            assert_eq!(entry, "pair_sum");
            assert_eq!(*status, ExitStatus::Exited(4));
        }
        other => panic!("expected DiedBeforeReport, got {other:?}"),
    }
    assert!(err.to_string().contains("init()"), "{err}");

    // a test binary asked for a test that does not exist runs nothing and exits
    let exe = std::env::current_exe().unwrap();
    let err = Process::new("pair_sum", (1u32, 2u32))
        .program(exe, rerun("there_is_no_such_test"))
        .start()
        .unwrap_err();
    assert!(matches!(err, Error::DiedBeforeReport { .. }), "{err}");
}

#[test]
fn a_child_that_never_calls_init_and_runs_on() {
    init_test!(pair_sum);
    let limit = Duration::from_millis(300);
    let started = Instant::now();
    let err = Process::new("pair_sum", (1u32, 2u32))
        .program("/bin/sh", ["-c", "exec sleep 600"])
        .start_timeout(limit)
        .start()
        .unwrap_err();
    assert!(started.elapsed() < common::LIMIT);
    match &err {
        Error::StartTimeout { timeout, pid, .. } => {
            assert_eq!(*timeout, limit);
            // it was killed and reaped: the pid is gone
            assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
        }
        other => panic!("expected StartTimeout, got {other:?}"),
    }
}

#[test]
fn a_child_that_closes_its_status_pipe_and_runs_on() {
    init_test!(pair_sum);
    let limit = Duration::from_millis(300);
    // closes the status descriptor named in the launch variable, then lingers
    let script = r#"eval "exec ${CONVEYOR_PROCESS_LAUNCH#*:}>&-"; exec sleep 600"#;
    let err = Process::new("pair_sum", (1u32, 2u32))
        .program("/bin/sh", ["-c", script])
        .start_timeout(limit)
        .start()
        .unwrap_err();
    match &err {
        Error::DiedBeforeReport { status, .. } => {
            assert_eq!(*status, ExitStatus::Signaled(libc::SIGKILL), "{err}");
        }
        other => panic!("expected DiedBeforeReport, got {other:?}"),
    }
}

/// Plays a `main` that returns the error of a failed start, as `fn main() -> Result<(), Error>`
/// does with `?`.
fn main_returning_an_error(_: ()) -> Result<(), Error> {
    let _children = conveyor_process::init(&[]);
    Process::new("worker", ()).start()?;
    Ok(())
}

#[test]
fn an_error_returned_from_main_shows_its_message() {
    init_test!(main_returning_an_error);
    // A child's entry point that returns Err reports the error's Debug form, as a `main` prints
    // `Error: {:?}`: it must carry the message that says what to do, then the fields.
    let child = Process::new("main_returning_an_error", ()).start().unwrap();
    let status = common::join(&child);
    let ExitStatus::Failed(printed) = &status else {
        panic!("expected a failure, got {status}");
    };
    let want = Error::UnknownEntry {
        name: "worker".into(),
        known: vec!["main_returning_an_error".into()],
    };
    assert!(
        printed.starts_with("no entry point named `worker` is registered"),
        "{printed}"
    );
    assert!(printed.contains("register it with"), "{printed}");
    assert!(
        printed
            .ends_with("(UnknownEntry { name: \"worker\", known: [\"main_returning_an_error\"] })"),
        "{printed}"
    );
    assert_eq!(printed, &format!("{want:?}"));
    assert_eq!(
        format!("{want:?}"),
        format!(
            "{want} (UnknownEntry {{ name: \"worker\", known: [\"main_returning_an_error\"] }})"
        )
    );
}
