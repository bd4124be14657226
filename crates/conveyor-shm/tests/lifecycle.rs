//! Unlinking and cleanup with large (out-of-line) messages in flight, across real processes.
//!
//! Every test here uses a private segment directory (`$CONVEYOR_SHM_DIR`, inherited by the
//! children), so that `remove_leaked` sees only this binary's files. Only one test calls
//! `remove_leaked`: a call from another test could remove its leaked fixtures before it looks.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::{Duration, SystemTime};

use conveyor_core::Channel;
use conveyor_process::{init_test, Process};
use conveyor_shm::{list_segments, remove_leaked, SegmentInfo, SegmentKind, ShmQueue};

/// Points `$CONVEYOR_SHM_DIR` at this binary's own directory (before any segment is made).
fn setup() -> PathBuf {
    static ONCE: Once = Once::new();
    let dir = std::env::temp_dir().join("conveyor-shm-lifecycle-tests");
    ONCE.call_once(|| {
        std::fs::create_dir_all(&dir).unwrap();
        std::env::set_var("CONVEYOR_SHM_DIR", &dir);
    });
    dir
}

type Big = ShmQueue<Vec<u8>>;

/// A message far larger than half the small ring: it travels out of line.
fn big(i: u8) -> Vec<u8> {
    vec![i; 10_000]
}

fn small_ring() -> Big {
    let q: Big = ShmQueue::builder().ring_bytes(1024).create().unwrap();
    assert!(big(0).len() > q.inline_max());
    q
}

fn small_ring_named(name: &str) -> Big {
    ShmQueue::builder()
        .name(name)
        .ring_bytes(1024)
        .create()
        .unwrap()
}

/// A queue holding `big(0)` and `big(1)` from a child, unlinked, and a new queue of the same
/// name holding `big(8)`; and that name.
fn an_old_and_a_new_queue_of_one_name() -> (Big, Big, String) {
    let (old, name) = small_ring_with_messages_from_a_child(2);
    old.unlink().unwrap();
    let new = small_ring_named(&name);
    new.put(big(8)).unwrap();
    (old, new, name)
}

/// A small queue holding `n` large messages put by a child process that has since exited
/// (so that their files' writer is dead), and the queue's name.
fn small_ring_with_messages_from_a_child(n: u8) -> (Big, String) {
    let q = small_ring();
    let name = q.name().to_string();
    let child = Process::new("put_large", (&q, n)).start().unwrap();
    assert!(child.join().unwrap().success());
    (q, name)
}

fn put_large((q, n): (Big, u8)) {
    for i in 0..n {
        q.put(big(i)).unwrap();
    }
}

fn exit_now(_: ()) {}

/// The files of `name`'s segment in `dir`: its own and its out-of-line messages'.
fn files_of(dir: &Path, name: &str) -> Vec<String> {
    let prefix = format!("conveyor-{name}");
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|f| f == &prefix || f.starts_with(&format!("{prefix}.")))
        .collect();
    v.sort();
    v
}

fn out_of_line_of(name: &str) -> Vec<SegmentInfo> {
    list_segments()
        .unwrap()
        .into_iter()
        .filter(|s| s.kind == SegmentKind::OutOfLine && s.name.starts_with(&format!("{name}.")))
        .collect()
}

#[test]
fn unlink_keeps_large_messages_in_flight_deliverable() {
    let dir = setup();
    init_test!(put_large);
    let (q, name) = small_ring_with_messages_from_a_child(2);
    assert_eq!(
        files_of(&dir, &name).len(),
        3,
        "the segment and two messages"
    );

    q.unlink().unwrap();
    assert!(
        ShmQueue::<Vec<u8>>::open(&name).is_err(),
        "the name is gone"
    );
    let ool = out_of_line_of(&name);
    assert_eq!(ool.len(), 2, "the messages' files stay: {ool:?}");
    assert!(
        ool.iter().all(|s| !s.leaked),
        "a live queue's messages are not leaked, even with its name gone (their writer has \
         exited, but they are fresh): {ool:?}"
    );

    assert_eq!(q.get_timeout(Duration::from_secs(30)).unwrap(), big(0));
    assert_eq!(
        files_of(&dir, &name).len(),
        1,
        "the consumer removed the one it took"
    );
    // The last handle goes with a message not taken: its file goes too.
    drop(q);
    assert_eq!(files_of(&dir, &name), Vec::<String>::new());
}

#[test]
fn remove_segment_keeps_a_live_queues_large_messages() {
    let dir = setup();
    init_test!(put_large);
    let (q, name) = small_ring_with_messages_from_a_child(1);
    conveyor_shm::remove_segment(&name).unwrap();
    assert!(
        ShmQueue::<Vec<u8>>::open(&name).is_err(),
        "the name is gone"
    );
    assert_eq!(q.get_timeout(Duration::from_secs(30)).unwrap(), big(0));
    q.put(big(1)).unwrap();
    assert_eq!(q.get().unwrap(), big(1));
    drop(q);
    assert_eq!(files_of(&dir, &name), Vec::<String>::new());
}

#[test]
fn the_last_handle_removes_messages_not_taken() {
    let dir = setup();
    init_test!(put_large);
    let (q, name) = small_ring_with_messages_from_a_child(3);
    assert_eq!(files_of(&dir, &name).len(), 4);
    drop(q);
    assert_eq!(files_of(&dir, &name), Vec::<String>::new());
}

/// Creates `dir/conveyor-<name>` with `len` zero bytes, last modified `age` ago.
fn fixture(dir: &Path, name: &str, len: usize, age: Duration) -> PathBuf {
    let path = dir.join(format!("conveyor-{name}"));
    let f = File::create(&path).unwrap();
    f.set_len(len as u64).unwrap();
    f.set_modified(SystemTime::now() - age).unwrap();
    path
}

#[test]
fn leaked_files_are_told_by_writer_age_and_owner_and_removed() {
    let dir = setup();
    init_test!(exit_now);
    let child = Process::new("exit_now", ()).start().unwrap();
    let dead = child.pid();
    assert!(child.join().unwrap().success());
    let me = std::process::id();
    let tag = format!("gone-{me}");
    let old = Duration::from_secs(600);
    let fresh = Duration::ZERO;

    // Out-of-line files whose queue's name is gone, and whose segment (inode 0: no file has
    // it) nobody maps.
    let dead_old = fixture(&dir, &format!("{tag}.ool.0.{dead}.0"), 100, old);
    let dead_fresh = fixture(&dir, &format!("{tag}.ool.0.{dead}.1"), 100, fresh);
    let alive_old = fixture(&dir, &format!("{tag}.ool.0.{me}.2"), 100, old);
    // A segment its creator never initialised, long ago.
    let short = fixture(&dir, &format!("short-{me}"), 0, old);
    // Another user's files are never leaked from our point of view (as root we can make one).
    let foreign = fixture(&dir, &format!("foreign-{me}"), 0, old);
    let foreign_ool = fixture(&dir, &format!("{tag}.ool.0.{dead}.3"), 100, old);
    let made_foreign = std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).is_ok()
        && std::os::unix::fs::chown(&foreign_ool, Some(65534), Some(65534)).is_ok();

    let leaked = |path: &Path| {
        list_segments()
            .unwrap()
            .into_iter()
            .find(|s| s.path == path)
            .unwrap_or_else(|| panic!("{} is listed", path.display()))
            .leaked
    };
    assert!(leaked(&dead_old), "writer dead, file old");
    assert!(!leaked(&dead_fresh), "writer dead but the file is fresh");
    assert!(!leaked(&alive_old), "the writer is alive");
    assert!(leaked(&short), "an old segment never initialised");
    if made_foreign {
        assert!(!leaked(&foreign), "another user's segment");
        assert!(!leaked(&foreign_ool), "another user's message");
    }

    let removed = remove_leaked().unwrap();
    let name_of =
        |p: &Path| p.file_name().unwrap().to_string_lossy()["conveyor-".len()..].to_string();
    assert!(removed.contains(&name_of(&dead_old)), "{removed:?}");
    assert!(removed.contains(&name_of(&short)), "{removed:?}");
    assert!(!dead_old.exists() && !short.exists());
    for kept in [&dead_fresh, &alive_old] {
        assert!(kept.exists(), "{} was removed", kept.display());
        assert!(!removed.contains(&name_of(kept)));
    }
    if made_foreign {
        assert!(foreign.exists() && foreign_ool.exists());
    }
    for p in [dead_fresh, alive_old, foreign, foreign_ool] {
        let _ = std::fs::remove_file(p);
    }
}

#[test]
fn an_old_queue_never_removes_a_new_one_that_took_its_name() {
    let dir = setup();
    init_test!(put_large);
    let (old, new, name) = an_old_and_a_new_queue_of_one_name();
    new.put(big(9)).unwrap();
    assert!(old.unlink().is_err(), "the name is the new queue's now");
    // The old queue's last handle goes first: the new queue's name and messages stay.
    assert_eq!(old.get_timeout(Duration::from_secs(30)).unwrap(), big(0));
    drop(old);
    let opened: Big = ShmQueue::open(&name).unwrap();
    assert_eq!(opened.get_timeout(Duration::from_secs(30)).unwrap(), big(8));
    drop(opened);
    drop(new);
    // Each queue's last handle removed its own messages not taken, and only those.
    assert_eq!(files_of(&dir, &name), Vec::<String>::new());
}

#[test]
fn a_new_queue_of_the_same_name_leaves_the_old_ones_messages_alone() {
    let dir = setup();
    init_test!(put_large);
    let (old, new, name) = an_old_and_a_new_queue_of_one_name();
    // The new queue goes while the old one is still held: the old one's messages stay.
    drop(new);
    assert_eq!(old.get_timeout(Duration::from_secs(30)).unwrap(), big(0));
    assert_eq!(old.get_timeout(Duration::from_secs(30)).unwrap(), big(1));
    drop(old);
    assert_eq!(files_of(&dir, &name), Vec::<String>::new());
}

#[test]
fn a_held_queues_old_messages_are_not_leaked_when_its_name_is_gone() {
    let dir = setup();
    init_test!(put_large);
    // The writer (a child) is dead and the name unlinked; only this process maps the queue.
    let (q, name) = small_ring_with_messages_from_a_child(1);
    q.unlink().unwrap();
    let files = files_of(&dir, &name);
    assert_eq!(files.len(), 1, "{files:?}");
    let path = dir.join(&files[0]);
    File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(600))
        .unwrap();
    let info = out_of_line_of(&name);
    assert_eq!(info.len(), 1);
    assert!(!info[0].leaked, "the queue is still mapped: {info:?}");
    assert_eq!(q.get_timeout(Duration::from_secs(30)).unwrap(), big(0));
    assert_eq!(files_of(&dir, &name), Vec::<String>::new());
}

#[test]
fn a_new_queue_of_a_reused_name_and_the_old_one_keep_their_large_messages_apart() {
    let dir = setup();
    let name = format!("renumbered-{}", std::process::id());
    let make = || small_ring_named(&name);
    // This process puts the first large message of both queues: the same writer pid and the
    // same first serial; only the segment's inode in the file names keeps them apart.
    let old = make();
    old.put(big(1)).unwrap();
    old.unlink().unwrap();
    let new = make();
    new.put(big(2)).unwrap();
    assert_eq!(
        files_of(&dir, &name).len(),
        3,
        "{:?}",
        files_of(&dir, &name)
    );
    // Each queue hands out its own message, and nothing is left once both are gone.
    assert_eq!(old.get_timeout(Duration::from_secs(30)).unwrap(), big(1));
    assert_eq!(new.get_timeout(Duration::from_secs(30)).unwrap(), big(2));
    drop(old);
    drop(new);
    assert_eq!(files_of(&dir, &name), Vec::<String>::new());
}
