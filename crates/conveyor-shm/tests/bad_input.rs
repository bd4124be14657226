//! Bad input: segments that are foreign, truncated, corrupt, of another version or item type,
//! and messages larger than the ring. Each must give a typed error (or, for large messages,
//! intact delivery), never a crash.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use conveyor_core::Channel;
use conveyor_shm::{Lock, ShmError, ShmQueue};

fn path(name: &str) -> PathBuf {
    conveyor_shm::shm_dir().join(format!("{}{name}", conveyor_shm::FILE_PREFIX))
}

fn poke(name: &str, offset: u64, bytes: &[u8]) {
    let f = OpenOptions::new().write(true).open(path(name)).unwrap();
    f.write_all_at(bytes, offset).unwrap();
}

fn fresh(tag: &str) -> (ShmQueue<u32>, String) {
    let q: ShmQueue<u32> = ShmQueue::builder().ring_bytes(4096).create().unwrap();
    let name = q.name().to_string();
    let _ = tag;
    (q, name)
}

#[test]
fn wrong_magic_is_refused() {
    let (_q, name) = fresh("magic");
    poke(&name, 0, b"NOTCONVY");
    let e = ShmQueue::<u32>::open(&name).unwrap_err();
    assert!(matches!(e, ShmError::BadMagic { .. }), "{e}");
}

#[test]
fn a_lock_is_not_a_queue() {
    let lock = Lock::new().unwrap();
    let e = ShmQueue::<u32>::open(lock.name()).unwrap_err();
    assert!(matches!(e, ShmError::BadMagic { .. }), "{e}");
}

#[test]
fn wrong_version_is_refused() {
    let (_q, name) = fresh("version");
    poke(&name, 8, &99u32.to_ne_bytes());
    let e = ShmQueue::<u32>::open(&name).unwrap_err();
    assert!(
        matches!(e, ShmError::VersionMismatch { found: 99, .. }),
        "{e}"
    );
}

#[test]
fn corrupt_header_fields_are_refused() {
    let (_q, name) = fresh("hdr");
    poke(&name, 12, &12345u32.to_ne_bytes()); // header size
    assert!(matches!(
        ShmQueue::<u32>::open(&name).unwrap_err(),
        ShmError::Corrupt { .. }
    ));
    let (_q2, name2) = fresh("cap");
    poke(&name2, 264, &3u64.to_ne_bytes()); // ring capacity
    let e = ShmQueue::<u32>::open(&name2).unwrap_err();
    assert!(matches!(e, ShmError::Corrupt { .. }), "{e}");
    let (_q3, name3) = fresh("cap2");
    poke(&name3, 264, &(1u64 << 20).to_ne_bytes()); // larger than the file
    let e = ShmQueue::<u32>::open(&name3).unwrap_err();
    assert!(matches!(e, ShmError::Truncated { .. }), "{e}");
}

#[test]
fn truncated_segment_is_refused() {
    let (_q, name) = fresh("trunc");
    let f = OpenOptions::new().write(true).open(path(&name)).unwrap();
    f.set_len(1000).unwrap();
    let e = ShmQueue::<u32>::open(&name).unwrap_err();
    assert!(matches!(e, ShmError::Truncated { .. }), "{e}");
}

#[test]
fn a_tiny_or_empty_file_is_refused() {
    let name = format!("garbage-{}", std::process::id());
    std::fs::write(path(&name), b"hello").unwrap();
    let e = ShmQueue::<u32>::open(&name).unwrap_err();
    assert!(matches!(e, ShmError::Truncated { .. }), "{e}");
    std::fs::write(path(&name), vec![0u8; 8192]).unwrap();
    let e = ShmQueue::<u32>::open(&name).unwrap_err();
    assert!(matches!(e, ShmError::Uninitialised(_)), "{e}");
    std::fs::remove_file(path(&name)).unwrap();
}

#[test]
fn another_item_type_is_refused() {
    let (_q, name) = fresh("type");
    let e = ShmQueue::<String>::open(&name).unwrap_err();
    assert!(matches!(e, ShmError::TypeMismatch { .. }), "{e}");
    assert!(e.to_string().contains("String"));
    assert!(ShmQueue::<u32>::open(&name).is_ok());
}

#[test]
fn bad_names_are_refused() {
    for bad in ["", "a/b", "../etc", "x".repeat(65).as_str(), "dot.ted"] {
        assert!(
            matches!(
                ShmQueue::<u32>::open(bad),
                Err(ShmError::InvalidName { .. })
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        ShmQueue::<u32>::open("no-such-queue-anywhere"),
        Err(ShmError::NotFound(_))
    ));
}

#[test]
fn corrupt_indices_in_a_live_queue_are_an_error() {
    let (q, name) = fresh("idx");
    q.put(1).unwrap();
    poke(&name, 384, &(1u64 << 35).to_ne_bytes()); // the tail word
    let e = q.try_get().unwrap_err();
    assert!(e.is_io(), "{e}");
}

#[test]
fn oversize_messages_travel_out_of_line_intact() {
    let q: ShmQueue<Vec<u8>> = ShmQueue::builder().ring_bytes(1024).create().unwrap();
    let big: Vec<u8> = (0..200_000u32).map(|i| (i * 31) as u8).collect();
    q.put_bytes(&big).unwrap();
    q.put_bytes(&big[..10]).unwrap();
    assert_eq!(q.get_bytes().unwrap(), big);
    assert_eq!(q.get_bytes().unwrap(), &big[..10]);
    // the out-of-line file was removed by the consumer
    let prefix = format!("{}{}.", conveyor_shm::FILE_PREFIX, q.name());
    let left = std::fs::read_dir(conveyor_shm::shm_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .count();
    assert_eq!(left, 0);
}

#[test]
fn invalid_options_are_refused() {
    let e = ShmQueue::<u32>::builder()
        .ring_bytes(10)
        .create()
        .unwrap_err();
    assert!(matches!(e, ShmError::InvalidOption(_)));
    let e = ShmQueue::<u32>::builder()
        .max_items(0)
        .create()
        .unwrap_err();
    assert!(matches!(e, ShmError::InvalidOption(_)));
    // Over 64 MiB a full ring of empty records would count 2^24 of them, which the index
    // words cannot tell from none: refused, and the largest accepted size works.
    let e = ShmQueue::<()>::builder()
        .ring_bytes(128 << 20)
        .create()
        .unwrap_err();
    assert!(matches!(e, ShmError::InvalidOption(_)), "{e}");
    let q = ShmQueue::<()>::builder()
        .ring_bytes(64 << 20)
        .create()
        .unwrap();
    assert_eq!(q.ring_bytes(), 64 << 20);
    q.put(()).unwrap();
    assert_eq!(q.len(), 1);
    q.get().unwrap();
    assert!(q.is_empty());
}
