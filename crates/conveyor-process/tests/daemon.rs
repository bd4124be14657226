//! Daemon children die with their parent; other children do not, and a parent whose entry point
//! ends joins them first (as a Python child does). Checked from a third process: this test starts
//! a middle child, which starts a daemon grandchild and a plain one and reports their pids; the
//! test ends the middle and watches the grandchildren.

mod common;

use std::time::Duration;

use common::{exited_within, join, park_forever, pidfd, End, LIMIT};
use conveyor_process::{init_test, ExitStatus, Process};
use serde::{Deserialize, Serialize};

fn sleeper(_: ()) {
    park_forever();
}

/// A plain (non-daemon) grandchild: runs until its peer closes the connection.
fn waits_for_eof(mut conn: End) {
    let _ = conn.recv_line();
}

/// How the middle process ends.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
enum Ending {
    KilledBySigkill,
    Returns,
    Panics,
}

fn middle((mut conn, keep, ending): (End, End, Ending)) {
    let daemon = Process::new("sleeper", ()).daemon(true).start().unwrap();
    let plain = Process::new("waits_for_eof", keep).start().unwrap();
    conn.send_line(&format!("{} {}", daemon.pid(), plain.pid()));
    match ending {
        Ending::KilledBySigkill => park_forever(),
        Ending::Returns => {
            let _ = conn.recv_line();
        }
        Ending::Panics => {
            let _ = conn.recv_line();
            panic!("middle gives up");
        }
    }
}

#[test]
fn a_daemon_dies_with_its_parent_and_a_plain_child_does_not() {
    init_test!(middle, sleeper, waits_for_eof);
    for ending in [Ending::KilledBySigkill, Ending::Returns, Ending::Panics] {
        let (mut conn, conn_theirs) = End::pair();
        let (keep_mine, keep_theirs) = End::pair();
        let mid = Process::new("middle", (conn_theirs, keep_theirs, ending))
            .start()
            .unwrap();
        let line = conn.recv_line().expect("the middle reports its children");
        let (d, p) = line.split_once(' ').unwrap();
        let daemon = pidfd(d.parse().unwrap());
        let plain = pidfd(p.parse().unwrap());
        assert!(!exited_within(&daemon, Duration::ZERO), "{ending:?}");
        assert!(!exited_within(&plain, Duration::ZERO), "{ending:?}");

        let want = match ending {
            Ending::KilledBySigkill => {
                mid.kill().unwrap();
                ExitStatus::Signaled(libc::SIGKILL)
            }
            Ending::Returns => {
                conn.send_line("done");
                ExitStatus::Exited(0)
            }
            Ending::Panics => {
                conn.send_line("done");
                ExitStatus::Panicked("middle gives up".into())
            }
        };
        if ending == Ending::KilledBySigkill {
            assert_eq!(join(&mid), want);
            // The daemon ends because its parent did: it waits on nothing else.
            assert!(
                exited_within(&daemon, LIMIT),
                "{ending:?}: the daemon outlived its parent"
            );
            // The plain child is still there, and ends when its own connection closes.
            assert!(!exited_within(&plain, Duration::ZERO), "{ending:?}");
            drop(keep_mine);
            assert!(exited_within(&plain, LIMIT), "{ending:?}");
        } else {
            // The middle's entry point has ended: it terminates its daemon, then joins its
            // plain child, which runs until its connection closes.
            assert!(
                exited_within(&daemon, LIMIT),
                "{ending:?}: the daemon was not terminated"
            );
            assert_eq!(
                mid.join_timeout(Duration::ZERO).unwrap(),
                None,
                "{ending:?}: the middle ended without joining its plain child"
            );
            assert!(!exited_within(&plain, Duration::ZERO), "{ending:?}");
            drop(keep_mine);
            assert_eq!(join(&mid), want);
            assert!(exited_within(&plain, Duration::ZERO), "{ending:?}");
        }
    }
}

#[test]
fn a_daemon_outlives_the_thread_that_started_it() {
    init_test!(sleeper);
    let child = std::thread::spawn(|| Process::new("sleeper", ()).daemon(true).start().unwrap())
        .join()
        .unwrap();
    // Linux would signal a PR_SET_PDEATHSIG child when the forking *thread* ends; the daemon
    // was forked by the process-long spawner thread instead, so nothing comes.
    assert_eq!(
        child.join_timeout(Duration::from_millis(300)).unwrap(),
        None,
        "the daemon died with the thread that started it"
    );
    child.kill().unwrap();
    assert_eq!(join(&child), ExitStatus::Signaled(libc::SIGKILL));
}
