//! The seed examples of issue 12 run and print what their seeds' Python programs print,
//! `compare_transports` carries every reading once over every transport, and the pool and
//! shared-value examples (issues 13 and 14) show what they claim.
//!
//! The examples are built (see `example`) and run as a user runs them (with `--quick` where
//! that only shortens pauses the output does not depend on), and their output is checked line
//! by line; where threads or processes interleave freely, the lines are compared sorted.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

/// How long an example may run before it is killed and the test fails.
const LIMIT: Duration = Duration::from_secs(120);

/// The examples these tests run.
const EXAMPLES: [&str; 11] = [
    "process_queue",
    "queue_write_read",
    "ticket_buyers",
    "thread_start",
    "thread_shared_global",
    "daemon_threads",
    "compare_transports",
    "thread_pool",
    "process_pool",
    "process_pool_broken_worker",
    "shared_value_race",
];

/// The example called `name`, built in this test's own target directory and profile.
///
/// `cargo test` builds every example before it runs the tests, but not when a filter such as
/// `--test seed_examples` selects targets, and then an old binary may be lying there. So the
/// first call runs `cargo build` for the examples (a no-op when they are fresh): cargo has
/// released its lock on the target directory by the time tests run.
fn example(name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let exe = std::env::current_exe().expect("this test's path");
    // target/<profile>/deps/seed_examples-<hash> -> target/<profile>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test runs from target/<profile>/deps")
        .to_path_buf();
    if let Err(e) = BUILT.get_or_init(|| build_examples(&profile_dir)) {
        panic!("{e}");
    }
    let path = profile_dir.join("examples").join(name);
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// `cargo build` of [`EXAMPLES`] into the target directory and profile of `profile_dir`.
fn build_examples(profile_dir: &Path) -> Result<(), String> {
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev".to_string(),
        Some(other) => other.to_string(),
        None => return Err(format!("no profile in {}", profile_dir.display())),
    };
    let target_dir = profile_dir
        .parent()
        .ok_or_else(|| format!("no target directory above {}", profile_dir.display()))?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "-p", "conveyor", "--profile", &profile])
        .env("CARGO_TARGET_DIR", target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    for e in EXAMPLES {
        cmd.args(["--example", e]);
    }
    match cmd.status() {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("building the examples failed ({s}): {cmd:?}")),
        Err(e) => Err(format!("could not run cargo to build the examples: {e}")),
    }
}

/// Runs an example to its end (killed after two minutes) and returns its standard output.
fn run(name: &str, args: &[&str]) -> String {
    let child = Command::new(example(name))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {name}: {e}"));
    let pid = child.id() as libc::pid_t;
    // A watchdog kills the example if it has not ended within the limit; the test waits for
    // the example's exit itself.
    let (ended, ended_rx) = mpsc::channel::<()>();
    let watchdog = thread::spawn(move || {
        let overdue = ended_rx.recv_timeout(LIMIT) == Err(RecvTimeoutError::Timeout);
        if overdue {
            // SAFETY: kill(2) with a pid and a signal number has no memory-safety
            // preconditions; the child has not been waited for yet (the main thread is still
            // blocked in wait_with_output), so the pid is still the example's.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        overdue
    });
    let out = child.wait_with_output().expect("the example's output");
    let _ = ended.send(());
    let overdue = watchdog.join().expect("the watchdog thread");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        !overdue,
        "{name} {args:?} did not end within {LIMIT:?}:\n{stdout}"
    );
    assert!(
        out.status.success(),
        "{name} {args:?} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The lines of `output`, sorted, for programs whose threads or processes interleave freely.
fn sorted_lines(output: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = output.lines().collect();
    lines.sort_unstable();
    lines
}

#[test]
fn process_queue_prints_what_the_producer_put() {
    assert_eq!(run("process_queue", &["--quick"]), "a\n");
}

#[test]
fn queue_write_read_writes_five_then_reads_five() {
    // Without --quick: as in Python, the reader counts on its head start (1 s here) to find
    // every message written, and a tenth of that is short on a heavily loaded machine.
    let out = run("queue_write_read", &[]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"---parent process starts---"));
    assert_eq!(lines.last(), Some(&"---parent process ends---"));
    let written: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("written: "))
        .collect();
    let read: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("read: "))
        .collect();
    let messages: Vec<String> = (0..5).map(|i| format!("message{i}")).collect();
    assert_eq!(
        written,
        messages
            .iter()
            .map(|m| format!("written: {m}"))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        read,
        messages
            .iter()
            .map(|m| format!("read: {m}"))
            .collect::<Vec<_>>()
    );
    assert_eq!(lines.len(), 13, "{out}");
}

#[test]
fn ticket_buyers_sell_ten_tickets_in_order() {
    let expected: String = (90..100)
        .rev()
        .map(|n| format!("purchase succeeded, {n} cinema tickets left\n"))
        .collect();
    assert_eq!(run("ticket_buyers", &["--quick"]), expected);
}

#[test]
fn thread_start_runs_both_kinds_of_thread() {
    let out = run("thread_start", &[]);
    assert_eq!(
        sorted_lines(&out),
        [
            "child thread is running",
            "child thread is running",
            "main thread is running",
            "main thread is running"
        ]
    );
}

#[test]
fn thread_shared_global_sees_the_threads_write() {
    let out = run("thread_shared_global", &[]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[1], "10");
    let pid = |line: &str, prefix: &str| line.strip_prefix(prefix).map(str::to_owned);
    let thread_pid = pid(lines[0], "thread ").expect("the thread's line");
    let main_pid = pid(lines[2], "main thread ").expect("the main thread's line");
    assert_eq!(thread_pid, main_pid, "threads share one process");
}

#[test]
fn daemon_threads_cut_the_daemon_off() {
    let out = run("daemon_threads", &["--quick"]);
    assert_eq!(
        sorted_lines(&out),
        [
            "child 1 is running",
            "child 2 is over",
            "child 2 is running",
            "main Game Over"
        ]
    );
}

#[test]
fn compare_transports_carries_every_reading_over_every_transport() {
    let out = run("compare_transports", &["all", "2000"]);
    let transports = [
        ("queue", "threads"),
        ("lifo", "threads"),
        ("priority", "threads"),
        ("shm", "processes"),
        ("joinable", "processes"),
        ("pipe", "processes"),
        ("manager", "processes"),
    ];
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), transports.len(), "{out}");
    for (line, (name, place)) in lines.iter().zip(transports) {
        let line = line.trim_start();
        assert!(
            line.starts_with(&format!("{name}: 2000 readings, each once, in "))
                && line.ends_with(&format!(", in {place}")),
            "{line}"
        );
    }
}

#[test]
fn thread_pool_submits_without_blocking_then_maps_in_order() {
    let out = run("thread_pool", &["--quick"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 10, "{out}");
    // the submits' line comes before any result (how many were done by then depends on the
    // machine's load, so it is not checked)
    assert!(
        lines[0].starts_with("submitted 5 downloads in ")
            && lines[0].contains("submit did not block (done so far: "),
        "{out}"
    );
    // as_completed yields every page once, in whatever order they finished
    let mut done: Vec<&str> = lines[1..6]
        .iter()
        .map(|l| l.split_once(": ").map_or("", |(_, page)| page))
        .collect();
    done.sort_unstable();
    let pages: Vec<String> = (1..=5).map(|p| format!("page {p}: 100 bytes")).collect();
    assert_eq!(done, pages, "{out}");
    assert_eq!(
        &lines[6..9],
        [
            "in order: page 10: 200 bytes",
            "in order: page 20: 200 bytes",
            "in order: page 30: 200 bytes"
        ],
        "{out}"
    );
    assert!(lines[9].starts_with("all done in "), "{out}");
}

#[test]
fn process_pool_counts_the_primes_the_serial_run_counts() {
    // The example itself asserts that the pool's count equals the one-by-one count; here the
    // count is checked against the number of primes below 8 x 20,000 (--quick's ranges).
    let out = run("process_pool", &["--quick"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[0], "14683 primes below 160000", "{out}");
    assert!(lines[1].starts_with("one after another: "), "{out}");
    assert!(
        lines[2].contains(" worker processes: ") && lines[2].ends_with("x)"),
        "{out}"
    );
}

#[test]
fn process_pool_broken_worker_fails_one_task_and_the_rest_complete() {
    let out = run("process_pool_broken_worker", &[]);
    let lines: Vec<&str> = out.lines().collect();
    let failed: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("failed: "))
        .collect();
    assert_eq!(failed.len(), 1, "{out}");
    let mut results: Vec<u64> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("result: "))
        .map(|v| v.parse().expect("a number"))
        .collect();
    results.sort_unstable();
    let expected: Vec<u64> = (0..10u64).filter(|&x| x != 4).map(|x| x * x).collect();
    assert_eq!(results, expected, "{out}");
    assert!(lines.contains(&"9 of 10 tasks completed"), "{out}");
    assert!(lines.contains(&"the pool goes on: 12 * 12 = 144"), "{out}");
}

#[test]
fn shared_value_race_counts_exactly_with_the_lock_and_with_fetch_add() {
    // The example fails (non-zero exit, which `run` refuses) when a locked or atomic round
    // ends anywhere but 0; here the lines are checked as well.
    let out = run("shared_value_race", &["--quick"]);
    let ended_at_zero = |label: &str| {
        out.lines()
            .filter(|l| l.trim_start().starts_with(label))
            .map(|l| l.contains("value =     0"))
            .collect::<Vec<_>>()
    };
    assert_eq!(ended_at_zero("with get_lock()"), [true; 3], "{out}");
    assert_eq!(ended_at_zero("with fetch_add"), [true; 3], "{out}");
    // the racy rounds may end anywhere (that is their point): three of them were printed
    assert_eq!(ended_at_zero("racy").len(), 3, "{out}");
}
