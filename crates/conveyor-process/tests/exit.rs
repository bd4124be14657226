//! The end of `main`: the guard `init` returns joins the children that are not daemons and
//! terminates the daemons, as Python does at exit; and a child whose `main` made something
//! that outlives it before `init` refuses to run, instead of leaking it.
//!
//! A child's `main` is played by an entry point that calls `init` itself (in a child that is
//! already running its entry point, `init` registers and returns its guard, as in a parent).

mod common;

use std::time::Duration;

use common::{exited_within, join, park_forever, pidfd, End, LIMIT};
use conveyor_core::held::Held;
use conveyor_process::{init_test, Error, ExitStatus, Process};

fn sleeper(_: ()) {
    park_forever();
}

/// Runs until its peer closes the connection, then exits with 7.
fn waits_for_eof(mut conn: End) -> i32 {
    let _ = conn.recv_line();
    7
}

/// Plays a `main`: takes the guard, starts a daemon and a plain child per `keeps`, reports their
/// pids, waits for "go", ends the guard (dropping it, or with `finish`), and reports how each
/// child was left.
fn main_like((mut conn, keeps, finish): (End, Vec<End>, bool)) {
    let guard = conveyor_process::init(&[]);
    let daemon = Process::new("sleeper", ()).daemon(true).start().unwrap();
    let plain: Vec<_> = keeps
        .into_iter()
        .map(|keep| Process::new("waits_for_eof", keep).start().unwrap())
        .collect();
    let mut pids = vec![daemon.pid()];
    pids.extend(plain.iter().map(|c| c.pid()));
    assert_eq!(conveyor_process::active_children().len(), pids.len());
    conn.send_line(&format!("{pids:?}"));
    assert_eq!(conn.recv_line().as_deref(), Some("go"));
    let report = if finish {
        let ended = guard.finish();
        let mut seen: Vec<String> = ended
            .iter()
            .map(|(c, s)| format!("{}:{s:?}", c.is_daemon()))
            .collect();
        seen.sort();
        seen.join(",")
    } else {
        drop(guard);
        // No join here: the guard's drop did it, so every status is known without waiting.
        let mut seen: Vec<String> = plain
            .iter()
            .chain([&daemon])
            .map(|c| format!("{}:{:?}", c.is_daemon(), c.exit_status()))
            .collect();
        seen.sort();
        seen.join(",")
    };
    assert!(conveyor_process::active_children().is_empty());
    conn.send_line(&report);
}

/// Runs `main_like` with `plain` plain children and checks the order of the end: the daemon is
/// terminated first, then the guard waits for the plain children.
fn guard_case(plain: usize, finish: bool) -> String {
    let (mut conn, conn_theirs) = End::pair();
    let (keeps_mine, keeps_theirs): (Vec<End>, Vec<End>) = (0..plain).map(|_| End::pair()).unzip();
    let mid = Process::new("main_like", (conn_theirs, keeps_theirs, finish))
        .start()
        .unwrap();
    let line = conn.recv_line().expect("the middle reports its children");
    let pids: Vec<u32> = line
        .trim_matches(['[', ']'])
        .split(", ")
        .map(|p| p.parse().unwrap())
        .collect();
    let daemon = pidfd(pids[0]);
    let plain: Vec<_> = pids[1..].iter().map(|&p| pidfd(p)).collect();
    conn.send_line("go");

    // First the daemon is terminated ...
    assert!(
        exited_within(&daemon, LIMIT),
        "the guard did not end the daemon"
    );
    // ... then the plain children are joined: the guard cannot be done while they run.
    for p in &plain {
        assert!(!exited_within(p, Duration::ZERO));
    }
    assert_eq!(mid.join_timeout(Duration::ZERO).unwrap(), None);
    drop(keeps_mine);
    let report = conn
        .recv_line()
        .expect("the middle reports after the guard");
    assert_eq!(join(&mid), ExitStatus::Exited(0));
    report
}

#[test]
fn dropping_the_guard_joins_plain_children_and_terminates_daemons() {
    init_test!(main_like, sleeper, waits_for_eof);
    assert_eq!(
        guard_case(1, false),
        "false:Some(Exited(7)),true:Some(Signaled(15))"
    );
}

#[test]
fn finish_says_how_every_child_ended() {
    init_test!(main_like, sleeper, waits_for_eof);
    assert_eq!(
        guard_case(3, true),
        "false:Exited(7),false:Exited(7),false:Exited(7),true:Signaled(15)"
    );
}

fn returns(_: ()) {}

#[test]
fn a_child_whose_main_made_something_before_init_refuses_to_run() {
    // Something that outlives the process is held before `init_test!`: in the child, the
    // test runs this line again before it reaches `init_test!`.
    let made_early = Held::new("a test resource made before init");
    init_test!(returns);
    // (the child's libtest reports its test as failed on standard output: not shown)
    let err = Process::new("returns", ())
        .stdout(std::process::Stdio::null())
        .start()
        .unwrap_err();
    match &err {
        Error::InitTooLate { entry, held } => {
            assert_eq!(entry, "returns");
            assert_eq!(held, &["a test resource made before init".to_string()]);
        }
        other => panic!("expected InitTooLate, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("call conveyor_process::init first"),
        "{message}"
    );
    drop(made_early);
}

/// Plays a `main` that drops its guard at once (`let _ = init(..)`), then starts a child.
fn main_dropping_the_guard(_: ()) {
    let _ = conveyor_process::init(&[]);
    let child = Process::new("returns", ()).start().unwrap();
    assert_eq!(join(&child), ExitStatus::Exited(0));
}

#[test]
fn a_start_after_the_guard_was_dropped_says_so() {
    init_test!(main_dropping_the_guard, returns);
    let mid = Process::new("main_dropping_the_guard", ())
        .stderr(std::process::Stdio::piped())
        .start()
        .unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut mid.take_stderr().unwrap(), &mut stderr).unwrap();
    assert_eq!(join(&mid), ExitStatus::Exited(0));
    assert!(
        stderr.contains("started after the guard returned by conveyor_process::init was dropped"),
        "{stderr}"
    );
    assert!(stderr.contains("not `let _ = init(..)`"), "{stderr}");
    assert_eq!(
        stderr.matches("conveyor-process: warning").count(),
        1,
        "{stderr}"
    );
}
