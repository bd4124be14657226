//! The built `conveyor` binary on real segments: the listing, `inspect`, `rm`, and `clean`
//! after a child process that made segments was SIGKILLed, leaving live queues alone; bad
//! input; and `manager serve`.
//!
//! Every test uses a private segment directory (`$CONVEYOR_SHM_DIR`, inherited by the
//! children and by the binary), so that `clean` sees only this binary's files. Only one test
//! creates leaked segments and runs `clean`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Once;
use std::time::Duration;

use conveyor_core::Channel;
use conveyor_process::{init_test, Process};
use conveyor_shm::{Array, SharedMemory, ShmQueue, Value};
use serde_json::Value as Json;

const WAIT: Duration = Duration::from_secs(30);

/// Points `$CONVEYOR_SHM_DIR` at this binary's own directory (before any segment is made).
fn setup() -> PathBuf {
    static ONCE: Once = Once::new();
    let dir = std::env::temp_dir().join("conveyor-cli-tests");
    ONCE.call_once(|| {
        std::fs::create_dir_all(&dir).unwrap();
        std::env::set_var("CONVEYOR_SHM_DIR", &dir);
    });
    dir
}

fn conveyor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_conveyor"))
        .args(args)
        .output()
        .expect("run the conveyor binary")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `conveyor shm list --json`, as a list of objects.
fn listed() -> Vec<Json> {
    let out = conveyor(&["shm", "list", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    match serde_json::from_slice(&out.stdout).expect("list --json prints JSON") {
        Json::Array(v) => v,
        other => panic!("not an array: {other}"),
    }
}

fn find<'a>(all: &'a [Json], name: &str) -> Option<&'a Json> {
    all.iter().find(|s| s["name"] == name)
}

fn entry<'a>(all: &'a [Json], name: &str) -> &'a Json {
    find(all, name).unwrap_or_else(|| panic!("{name} is listed: {all:?}"))
}

fn attached_pids(s: &Json) -> Vec<(u64, bool)> {
    s["attached"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["pid"].as_u64().unwrap(), a["alive"].as_bool().unwrap()))
        .collect()
}

/// Child: makes one of each kind of segment, sends their names, and parks until killed.
fn make_and_park(ready: ShmQueue<Vec<String>>) {
    let tag = std::process::id();
    let value = Value::new(7u64).unwrap();
    let array = Array::new(&[1u16, 2, 3]).unwrap();
    let queue: ShmQueue<u32> = ShmQueue::new().unwrap();
    let shared_queue: ShmQueue<u32> = ShmQueue::new().unwrap();
    let removable = SharedMemory::create(&format!("cvcli_rm_{tag}"), 100).unwrap();
    removable.unlink_on_drop();
    let persistent = SharedMemory::create(&format!("cvcli_keep_{tag}"), 200).unwrap();
    ready
        .put(vec![
            value.name().to_string(),
            array.name().to_string(),
            queue.name().to_string(),
            shared_queue.name().to_string(),
            format!("/{}", removable.name()),
            format!("/{}", persistent.name()),
        ])
        .unwrap();
    loop {
        std::thread::park();
    }
}

#[test]
fn clean_removes_what_a_killed_child_leaked_and_leaves_live_queues_alone() {
    setup();
    init_test!(make_and_park);
    let me = std::process::id() as u64;
    let live: ShmQueue<u32> = ShmQueue::new().unwrap();
    for i in 0..3 {
        live.put(i).unwrap();
    }
    let ready: ShmQueue<Vec<String>> = ShmQueue::new().unwrap();
    let child = Process::new("make_and_park", &ready).start().unwrap();
    let names = ready.get_timeout(WAIT).unwrap();
    let [value, array, queue, shared_queue, removable, persistent] = &names[..] else {
        panic!("{names:?}");
    };
    // This process also holds one of the child's queues: it is not leaked when the child dies.
    let held: ShmQueue<u32> = ShmQueue::open(shared_queue).unwrap();
    let pid = child.pid() as u64;

    let all = listed();
    for name in [value, array, queue] {
        let s = entry(&all, name);
        assert_eq!(s["leaked"], false, "{s}");
        assert_eq!(attached_pids(s), vec![(pid, true)], "{s}");
    }
    assert_eq!(entry(&all, value)["kind"], "value");
    assert_eq!(entry(&all, array)["kind"], "array");
    assert_eq!(entry(&all, queue)["kind"], "queue");
    let block = entry(&all, removable);
    assert_eq!(block["kind"], "shared memory");
    assert_eq!(block["size"], 100);
    assert_eq!(attached_pids(block), vec![(pid, true)], "the child maps it");
    assert_eq!(block["creator_pid"], pid);

    child.kill().unwrap();
    child.join().unwrap();

    let all = listed();
    for name in [value, array, queue, removable] {
        assert_eq!(entry(&all, name)["leaked"], true, "{name}");
    }
    assert_eq!(attached_pids(entry(&all, value)), vec![(pid, false)]);
    assert_eq!(
        entry(&all, persistent)["leaked"],
        false,
        "meant to outlive its creator"
    );
    assert_eq!(entry(&all, shared_queue)["leaked"], false, "held here");
    let l = entry(&all, live.name());
    assert_eq!(l["leaked"], false);
    assert_eq!(attached_pids(l), vec![(me, true)]);

    let table = conveyor(&["shm", "list"]);
    let text = stdout(&table);
    assert!(text.contains(&format!("{pid} (dead)")), "{text}");
    assert!(text.contains("leaked"), "{text}");

    let dry = conveyor(&["shm", "clean", "--dry-run"]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    let dry_text = stdout(&dry);
    for name in [value, array, queue, removable] {
        assert!(
            dry_text.contains(&format!("would remove {name} ")),
            "{dry_text}"
        );
    }
    assert!(!dry_text.contains(live.name()), "{dry_text}");
    assert!(
        find(&listed(), value).is_some(),
        "--dry-run removes nothing"
    );

    let clean = conveyor(&["shm", "clean"]);
    assert!(clean.status.success(), "{}", stderr(&clean));
    let all = listed();
    for name in [value, array, queue, removable] {
        assert!(find(&all, name).is_none(), "{name} was removed");
    }
    for name in [live.name(), shared_queue.as_str(), persistent.as_str()] {
        assert!(find(&all, name).is_some(), "{name} was left alone");
    }
    // The live queues work on.
    for i in 0..3 {
        assert_eq!(live.get_timeout(WAIT).unwrap(), i);
    }
    held.put(9).unwrap();
    assert_eq!(held.get().unwrap(), 9);

    // `rm` removes what `clean` may not: a block meant to outlive its creator. Without its
    // slash the name is a conveyor segment's, and the error says so.
    let bare = conveyor(&["shm", "rm", &persistent[1..]]);
    assert_eq!(bare.status.code(), Some(1));
    assert!(
        stderr(&bare).contains(&format!("is `{persistent}`")),
        "{}",
        stderr(&bare)
    );
    let rm = conveyor(&["shm", "rm", persistent]);
    assert!(rm.status.success(), "{}", stderr(&rm));
    assert!(find(&listed(), persistent).is_none());
    let again = conveyor(&["shm", "rm", persistent]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("no such segment"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn inspect_shows_a_queues_state_and_a_values_type() {
    setup();
    let q: ShmQueue<String> = ShmQueue::builder()
        .ring_bytes(64 * 1024)
        .max_items(10)
        .create()
        .unwrap();
    q.put("one".into()).unwrap();
    q.put("two".into()).unwrap();
    let out = conveyor(&["shm", "inspect", q.name(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let d: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["kind"], "queue");
    assert_eq!(d["magic"], "CONVSHMQ");
    assert_eq!(d["queue"]["ring_capacity"], 64 * 1024);
    assert_eq!(d["queue"]["max_items"], 10);
    assert_eq!(d["queue"]["items"], 2);
    assert_eq!(d["queue"]["closed"], false);
    assert!(d["queue"]["bytes_queued"].as_u64().unwrap() >= 6);
    q.get().unwrap();
    q.shutdown(false).unwrap();
    let d: Json =
        serde_json::from_slice(&conveyor(&["shm", "inspect", q.name(), "--json"]).stdout).unwrap();
    assert_eq!(d["queue"]["items"], 1);
    assert_eq!(d["queue"]["closed"], true);

    assert_eq!(d["queue"]["auto_shutdown"], false);
    assert_eq!(
        d["queue"]["producers"],
        Json::Null,
        "not counted without auto_shutdown"
    );

    // An auto_shutdown queue counts its producers: this process, one handle, until it closes.
    let auto: ShmQueue<u8> = ShmQueue::builder().auto_shutdown().create().unwrap();
    let producer = auto.clone();
    producer.put(1).unwrap();
    let inspect_auto = || -> Json {
        serde_json::from_slice(&conveyor(&["shm", "inspect", auto.name(), "--json"]).stdout)
            .unwrap()
    };
    let d = inspect_auto();
    assert_eq!(d["queue"]["auto_shutdown"], true);
    let me = std::process::id() as u64;
    assert_eq!(d["queue"]["producers"][0]["pid"], me, "{d}");
    assert_eq!(d["queue"]["producers"][0]["handles"], 1, "{d}");
    producer.close();
    let d = inspect_auto();
    assert_eq!(d["queue"]["producers"], serde_json::json!([]), "{d}");
    let text = stdout(&conveyor(&["shm", "inspect", auto.name()]));
    assert!(
        text.contains("producers") && text.contains("none open"),
        "{text}"
    );

    let v = Value::new(0x0102_0304u32).unwrap();
    let out = conveyor(&["shm", "inspect", v.name()]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(text.contains("1 of 4 bytes"), "{text}");
    assert!(text.contains(&hex(&0x0102_0304u32.to_ne_bytes())), "{text}");
    let a = Array::new(&[0u64; 5]).unwrap();
    let d: Json =
        serde_json::from_slice(&conveyor(&["shm", "inspect", a.name(), "--json"]).stdout).unwrap();
    assert_eq!(d["elements"]["len"], 5);
    assert_eq!(d["elements"]["elem_size"], 8);
    assert_eq!(d["lock_recoveries"], 0);
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn bad_input_gets_a_clear_error_and_status() {
    setup();
    let out = conveyor(&["shm", "inspect", "no-such-segment"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no segment named \"no-such-segment\""),
        "{}",
        stderr(&out)
    );
    let out = conveyor(&["shm", "rm", "bad/name", "/a/b"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("\"bad/name\"") && err.contains("only ASCII letters"),
        "{err}"
    );
    assert!(
        err.contains("\"/a/b\"") && err.contains("contains '/'"),
        "{err}"
    );
    let too_long = "x".repeat(300);
    let out = conveyor(&["shm", "rm", &too_long]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("longer than"), "{}", stderr(&out));
    // Usage errors: clap's, status 2.
    for args in [
        &["shm"][..],
        &["shm", "rm"],
        &["shm", "list", "--jsn"],
        &["nope"],
    ] {
        let out = conveyor(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&out).contains("Usage:"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    let out = conveyor(&["completions", "bash"]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("conveyor"));
    let out = conveyor(&["shm", "list", "--help"]);
    assert!(stdout(&out).contains("--json"));
}

#[test]
fn manager_serve_is_the_standalone_server() {
    setup();
    let dir = std::env::temp_dir().join(format!("conveyor-cli-manager-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("key");
    std::fs::write(&key, b"k3y\n").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_conveyor"))
        .args([
            "manager",
            "serve",
            "--listen",
            "tcp:127.0.0.1:0",
            "--authkey-file",
        ])
        .arg(&key)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr: conveyor_manager::Address = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    let c = conveyor_manager::ManagerConnection::connect(&addr, b"k3y").unwrap();
    c.ping().unwrap();
    assert!(conveyor_manager::ManagerConnection::connect(&addr, b"wrong").is_err());
    c.shutdown_server().unwrap();
    assert!(child.wait().unwrap().success());
    std::fs::remove_dir_all(&dir).unwrap();
}
