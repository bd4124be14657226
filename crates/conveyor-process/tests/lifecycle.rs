//! Real child processes: exit statuses, panics, terminate/kill, names, many children, large
//! arguments. Every test starts with `init_test!`, the pattern the crate documents.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{join, park_forever, End};
use conveyor_process::{init_test, ExitStatus, Process};
use serde::{Deserialize, Serialize};

fn returns_unit(_: ()) {}

fn returns_code(code: i32) -> i32 {
    code
}

fn returns_err(message: String) -> Result<(), String> {
    Err(message)
}

fn panics(message: String) {
    panic!("{message}");
}

fn exits(code: i32) {
    std::process::exit(code);
}

fn parks(_: ()) {
    park_forever();
}

#[test]
fn exit_statuses() {
    init_test!(returns_unit, returns_code, returns_err, exits);
    let cases = [
        (Process::new("returns_unit", ()), ExitStatus::Exited(0)),
        (Process::new("returns_code", 3), ExitStatus::Exited(3)),
        (Process::new("returns_code", 0), ExitStatus::Exited(0)),
        (
            Process::new("returns_err", "no input"),
            ExitStatus::Failed("\"no input\"".into()),
        ),
        (Process::new("exits", 7), ExitStatus::Exited(7)),
    ];
    for (process, want) in cases {
        let child = process.start().unwrap();
        let got = join(&child);
        assert_eq!(got, want);
        assert!(!child.is_alive());
        assert_eq!(child.exit_status(), Some(want.clone()));
        // joining again gives the same answer at once
        assert_eq!(child.join().unwrap(), want);
    }
}

#[test]
fn a_panic_gives_its_message_and_a_failure_status() {
    init_test!(panics);
    let child = Process::new("panics", "the ring is on fire")
        .start()
        .unwrap();
    let status = join(&child);
    assert_eq!(status, ExitStatus::Panicked("the ring is on fire".into()));
    assert!(!status.success());
    assert_eq!(status.code(), 101);
    assert_eq!(status.panic_message(), Some("the ring is on fire"));
}

#[test]
fn terminate_and_kill() {
    init_test!(parks);
    let child = Process::new("parks", ()).start().unwrap();
    assert!(child.is_alive());
    assert_eq!(child.exit_status(), None);
    assert_eq!(child.join_timeout(Duration::from_millis(20)).unwrap(), None);
    child.terminate().unwrap();
    assert_eq!(join(&child), ExitStatus::Signaled(libc::SIGTERM));
    assert_eq!(child.exit_status().unwrap().code(), -libc::SIGTERM);
    // signalling a reaped child does nothing
    child.terminate().unwrap();
    child.kill().unwrap();

    let child = Process::new("parks", ()).start().unwrap();
    child.kill().unwrap();
    assert_eq!(join(&child), ExitStatus::Signaled(libc::SIGKILL));
}

#[test]
fn one_thread_joins_while_another_kills() {
    init_test!(parks);
    let child = Arc::new(Process::new("parks", ()).start().unwrap());
    let waiter = {
        let child = Arc::clone(&child);
        std::thread::spawn(move || child.join().unwrap())
    };
    child.kill().unwrap();
    assert_eq!(waiter.join().unwrap(), ExitStatus::Signaled(libc::SIGKILL));
    assert_eq!(join(&child), ExitStatus::Signaled(libc::SIGKILL));
}

fn reports_identity(mut out: End) {
    out.send_line(&format!(
        "{:?} {:?} {}",
        conveyor_process::current_name(),
        conveyor_process::current_entry(),
        conveyor_process::is_daemon()
    ));
}

#[test]
fn names_and_identity() {
    init_test!(reports_identity);
    let (mine, theirs) = End::pair();
    let mut mine = mine;
    let child = Process::new("reports_identity", theirs)
        .name("reporter-7")
        .start()
        .unwrap();
    assert_eq!(child.name(), "reporter-7");
    assert_eq!(child.entry(), "reports_identity");
    assert!(!child.is_daemon());
    assert_eq!(
        mine.recv_line().unwrap(),
        "Some(\"reporter-7\") Some(\"reports_identity\") false"
    );
    assert!(join(&child).success());

    let (mut mine, theirs) = End::pair();
    let child = Process::new("reports_identity", theirs)
        .daemon(true)
        .start()
        .unwrap();
    assert!(child.name().starts_with("Process-"), "{}", child.name());
    let line = mine.recv_line().unwrap();
    assert_eq!(
        line,
        format!("Some({:?}) Some(\"reports_identity\") true", child.name())
    );
    assert!(join(&child).success());
    assert_eq!(conveyor_process::current_name(), None);
}

#[test]
fn fifty_children_started_and_joined() {
    init_test!(returns_code);
    let children: Vec<_> = (0..50)
        .map(|i| Process::new("returns_code", i).start().unwrap())
        .collect();
    let mut pids: Vec<u32> = children.iter().map(|c| c.pid()).collect();
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), 50);
    for (i, child) in children.iter().enumerate() {
        assert_eq!(join(child), ExitStatus::Exited(i as i32));
    }
}

/// Several hundred KiB of arguments, in more than one shape.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Big {
    #[serde(with = "serde_bytes")]
    bytes: Vec<u8>,
    words: Vec<String>,
    numbers: Vec<u64>,
}

impl Big {
    fn make(n: usize) -> Big {
        Big {
            bytes: (0..n).map(|i| (i * 31 % 251) as u8).collect(),
            words: (0..n / 64).map(|i| format!("word-{i}")).collect(),
            numbers: (0..n as u64 / 16).map(|i| i * i).collect(),
        }
    }
}

/// Rebuilds the expected value from its size and exits 0 only if everything arrived intact.
fn checks_big((n, big): (usize, Big)) -> i32 {
    if big == Big::make(n) {
        0
    } else {
        1
    }
}

#[test]
fn arguments_of_several_hundred_kib() {
    init_test!(checks_big);
    for n in [300 * 1024, 900 * 1024] {
        let big = Big::make(n);
        let child = Process::new("checks_big", (n, &big)).start().unwrap();
        assert_eq!(join(&child), ExitStatus::Exited(0), "n = {n}");
    }
}

#[test]
fn dropping_a_handle_leaves_the_child_running() {
    init_test!(parks);
    let child = Process::new("parks", ()).start().unwrap();
    let pid = child.pid();
    let watch = common::pidfd(pid);
    drop(child);
    assert!(!common::exited_within(&watch, Duration::from_millis(0)));
    // SAFETY: kill has no memory preconditions; the pid is reserved for us until reaped.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    assert!(common::exited_within(&watch, common::LIMIT));
}

fn shouts(_: ()) {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    println!("{}", line.trim().to_uppercase());
    eprintln!("done");
}

#[test]
fn standard_streams_can_be_redirected() {
    use std::io::{Read, Write};
    use std::process::Stdio;
    init_test!(shouts);
    let child = Process::new("shouts", ())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .start()
        .unwrap();
    let mut stdin = child.take_stdin().unwrap();
    assert!(child.take_stdin().is_none());
    writeln!(stdin, "quiet please").unwrap();
    drop(stdin);
    let mut out = String::new();
    child
        .take_stdout()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut err = String::new();
    child
        .take_stderr()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(join(&child).success());
    // a test binary's child prints libtest's header first, then the entry's output
    assert!(out.ends_with("QUIET PLEASE\n"), "{out:?}");
    assert_eq!(err, "done\n");
}

#[test]
fn the_sentinel_becomes_readable_when_the_child_exits() {
    init_test!(parks);
    let child = Process::new("parks", ()).start().unwrap();
    let sentinel = child.sentinel().expect("Linux 5.3 or later");
    let mut pfd = libc::pollfd {
        fd: std::os::fd::AsRawFd::as_raw_fd(&sentinel),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of each call.
    assert_eq!(unsafe { libc::poll(&mut pfd, 1, 0) }, 0);
    child.kill().unwrap();
    // SAFETY: as above.
    assert_eq!(unsafe { libc::poll(&mut pfd, 1, 60_000) }, 1);
    assert_eq!(join(&child), ExitStatus::Signaled(libc::SIGKILL));
}

#[test]
fn children_started_from_several_threads_at_once() {
    init_test!(returns_code);
    let per_thread = if std::env::var_os("CI").is_some() {
        5
    } else {
        15
    };
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let children: Vec<_> = (0..per_thread)
                    .map(|i| {
                        let code = t * 100 + i;
                        let daemon = i % 2 == 0;
                        let c = Process::new("returns_code", code)
                            .daemon(daemon)
                            .start()
                            .unwrap();
                        (code, c)
                    })
                    .collect();
                for (code, child) in children {
                    // exit codes are 8 bits
                    assert_eq!(join(&child), ExitStatus::Exited(code % 256));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}
