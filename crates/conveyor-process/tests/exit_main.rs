//! The end of a real `main`: the guard `init` returned joins the children that are not daemons
//! and terminates the daemons, so the program does not end before its workers do.
//!
//! libtest owns a test binary's `main`, so this test has `harness = false`: it is a program with
//! a `main` of its own, as a user's. Its first run starts itself again as the program under
//! test (with an argument that says so), its standard input and output piped, and watches it.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use conveyor_process::{entry, Process};

const UNDER_TEST: &str = "--conveyor-exit-main-under-test";

/// A plain child: waits for a line on its standard input (inherited), then says it is done.
fn worker(_: ()) {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    println!("worker done");
}

/// A daemon child that would run forever.
fn daemon(_: ()) {
    loop {
        std::thread::park();
    }
}

fn main() {
    let _children = conveyor_process::init(&[entry!(worker), entry!(daemon)]);
    if std::env::args().any(|a| a == UNDER_TEST) {
        // The program under test: start the children, then let main end.
        let d = Process::new("daemon", ()).daemon(true).start().unwrap();
        Process::new("worker", ()).start().unwrap();
        println!("main returns; daemon {}", d.pid());
        return;
    }

    let exe = std::env::current_exe().expect("this test's path");
    let mut program = Command::new(exe)
        .arg(UNDER_TEST)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting the program under test");
    let mut out = BufReader::new(program.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let daemon_pid: u32 = line
        .trim()
        .strip_prefix("main returns; daemon ")
        .unwrap_or_else(|| panic!("unexpected line {line:?}"))
        .parse()
        .unwrap();

    // main has returned, but the worker waits for its line: the guard must be joining it. The
    // daemon is terminated first, so once it is gone the guard is past that and waits.
    wait_gone(daemon_pid);
    assert!(
        program.try_wait().unwrap().is_none(),
        "the program ended while its worker still ran"
    );
    writeln!(program.stdin.take().unwrap(), "go").unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert_eq!(rest, "worker done\n");
    let status = program.wait().unwrap();
    assert!(status.success(), "{status}");
    println!("exit_main: main's end joins the worker and terminates the daemon: ok");
}

/// Waits (on a pidfd, up to a generous limit) until process `pid` has exited.
fn wait_gone(pid: u32) {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        // already reaped, so gone
        assert_eq!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(libc::ESRCH)
        );
        return;
    }
    let mut pfd = libc::pollfd {
        fd: fd as i32,
        events: libc::POLLIN,
        revents: 0,
    };
    let limit = Duration::from_secs(60).as_millis() as i32;
    // SAFETY: one valid pollfd for the duration of the call.
    let n = unsafe { libc::poll(&mut pfd, 1, limit) };
    // SAFETY: the descriptor is ours and closed once.
    unsafe { libc::close(fd as i32) };
    assert_eq!(n, 1, "the daemon was not terminated");
}
