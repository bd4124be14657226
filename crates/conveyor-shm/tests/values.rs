//! `Value` and `Array` across real processes (children started with conveyor-process), their
//! robust lock, and the bad input they refuse.

use std::time::Duration;

use bytemuck::{Pod, Zeroable};
use conveyor_core::Channel;
use conveyor_process::{init_test, Process};
use conveyor_shm::{Array, ArrayError, SharedMemory, ShmError, ShmQueue, Value};

const WAIT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
#[repr(C)]
struct Point {
    x: f64,
    y: f64,
    tag: u32,
    _pad: u32,
}

fn add_atomically((v, n): (Value<u64>, u64)) {
    for _ in 0..n {
        v.fetch_add(1);
    }
}

fn add_under_the_lock((v, n): (Value<i64>, i64)) {
    for _ in 0..n {
        let mut g = v.get_lock().unwrap();
        let x = g.get();
        g.set(x + 1);
    }
}

#[test]
fn fetch_add_from_two_processes_loses_nothing() {
    init_test!(add_atomically);
    let v = Value::new(0u64).unwrap();
    let n = 20_000;
    let child = Process::new("add_atomically", (&v, n)).start().unwrap();
    add_atomically((v.clone(), n));
    assert!(child.join_timeout(WAIT).unwrap().unwrap().success());
    assert_eq!(v.load(), 2 * n);
    assert_eq!(v.get().unwrap(), 2 * n);
}

#[test]
fn increments_under_the_lock_from_two_processes_lose_nothing() {
    init_test!(add_under_the_lock);
    let v = Value::new(0i64).unwrap();
    let n = 5_000;
    let child = Process::new("add_under_the_lock", (&v, n)).start().unwrap();
    add_under_the_lock((v.clone(), n));
    assert!(child.join_timeout(WAIT).unwrap().unwrap().success());
    assert_eq!(v.get().unwrap(), 2 * n);
}

fn hold_value_lock((v, ready): (Value<Point>, ShmQueue<()>)) {
    let mut g = v.get_lock().unwrap();
    g.set(Point {
        x: 1.0,
        y: 2.0,
        tag: 7,
        _pad: 0,
    });
    ready.put(()).unwrap();
    loop {
        std::thread::park();
    }
}

#[test]
fn a_process_killed_holding_the_lock_does_not_block_the_others() {
    init_test!(hold_value_lock);
    let v = Value::new(Point::zeroed()).unwrap();
    let ready: ShmQueue<()> = ShmQueue::new().unwrap();
    let child = Process::new("hold_value_lock", (&v, &ready))
        .start()
        .unwrap();
    ready.get_timeout(WAIT).unwrap();
    // Held by a live peer: a wait with a deadline gives up.
    assert!(v
        .get_lock_timeout(Duration::from_millis(50))
        .unwrap()
        .is_none());
    child.kill().unwrap();
    child.join().unwrap();
    let g = v.get_lock_timeout(WAIT).unwrap().unwrap();
    assert!(g.previous_owner_died());
    assert_eq!(g.get().tag, 7, "what the dead holder wrote is there");
    drop(g);
    assert_eq!(v.recoveries(), 1);
    assert!(!v.get_lock().unwrap().previous_owner_died());
}

fn fill_array((a, from): (Array<u32>, u32)) {
    let data: Vec<u32> = (from..from + a.len() as u32).collect();
    a.write(0, &data).unwrap();
}

#[test]
fn an_array_travels_to_a_child_and_back() {
    init_test!(fill_array);
    let a = Array::<u32>::zeroed(1000).unwrap();
    let child = Process::new("fill_array", (&a, 5u32)).start().unwrap();
    assert!(child.join_timeout(WAIT).unwrap().unwrap().success());
    let v = a.to_vec().unwrap();
    assert_eq!(v, (5..1005).collect::<Vec<u32>>());
    let mut part = [0u32; 3];
    a.read(997, &mut part).unwrap();
    assert_eq!(part, [1002, 1003, 1004]);
    assert!(matches!(
        a.read(998, &mut part),
        Err(ArrayError::OutOfRange {
            start: 998,
            count: 3,
            len: 1000
        })
    ));
    assert!(a.get(1000).is_err());
    assert!(a.set(usize::MAX, 1).is_err());
}

#[test]
fn the_lock_is_recursive_and_structs_round_trip() {
    let v = Value::new(Point {
        x: 0.5,
        y: -1.0,
        tag: 1,
        _pad: 0,
    })
    .unwrap();
    let mut g = v.get_lock().unwrap();
    // Python's Value has an RLock: reading inside the guard does not deadlock.
    assert_eq!(v.get().unwrap().y, -1.0);
    g.set(Point {
        x: 3.0,
        y: 4.0,
        tag: 2,
        _pad: 0,
    });
    drop(g);
    let other: Value<Point> = Value::open(v.name()).unwrap();
    assert_eq!(other.get().unwrap().x, 3.0);
    let a = Array::new(&[1.0f32, 2.0]).unwrap();
    let g = a.get_lock().unwrap();
    assert_eq!(a.get(1).unwrap(), 2.0);
    drop(g);
}

#[test]
fn atomics_of_every_integer_width() {
    let a = Value::new(250u8).unwrap();
    assert_eq!(a.fetch_add(10), 250);
    assert_eq!(a.load(), 4, "wraps");
    let b = Value::new(-5i32).unwrap();
    assert_eq!(b.swap(9), -5);
    assert_eq!(b.compare_exchange(9, 10), Ok(9));
    assert_eq!(b.compare_exchange(9, 11), Err(10));
    assert_eq!(b.fetch_sub(20), 10);
    assert_eq!(b.get().unwrap(), -10);
    let c = Value::new(1u16).unwrap();
    c.set(65535).unwrap();
    assert_eq!(c.fetch_add(1), 65535);
    assert_eq!(c.load(), 0);
}

#[test]
fn opening_with_another_type_size_or_kind_is_refused() {
    let v = Value::new(0u64).unwrap();
    assert!(matches!(
        Value::<u32>::open(v.name()),
        Err(ShmError::SizeMismatch {
            expected: 4,
            found: 8,
            ..
        })
    ));
    assert!(matches!(
        Value::<i64>::open(v.name()),
        Err(ShmError::TypeMismatch { .. })
    ));
    assert!(matches!(
        Array::<u64>::open(v.name()),
        Err(ShmError::BadMagic { .. })
    ));
    assert!(matches!(
        ShmQueue::<u64>::open(v.name()),
        Err(ShmError::BadMagic { .. })
    ));
    let a = Array::new(&[0u16; 10]).unwrap();
    assert!(matches!(
        Value::<u16>::open(a.name()),
        Err(ShmError::BadMagic { .. })
    ));
    assert!(matches!(
        Array::<u16>::open_exact(a.name(), 11),
        Err(ShmError::SizeMismatch {
            expected: 11,
            found: 10,
            ..
        })
    ));
    assert_eq!(Array::<u16>::open_exact(a.name(), 10).unwrap().len(), 10);
    let e = Value::<u32>::open(v.name()).unwrap_err().to_string();
    assert!(e.contains("holds 8 bytes per element"), "{e}");

    let block = SharedMemory::new(100).unwrap();
    block.unlink_on_drop();
    assert!(matches!(
        SharedMemory::open_exact(block.name(), 64),
        Err(ShmError::SizeMismatch {
            expected: 64,
            found: 100,
            ..
        })
    ));
    // conveyor's own names are not for raw blocks: a Python-style block never passes for a
    // conveyor segment, nor the reverse.
    assert!(matches!(
        SharedMemory::create(&format!("conveyor-{}", v.name()), 4096),
        Err(ShmError::InvalidName { .. })
    ));
    assert!(matches!(
        SharedMemory::open(&format!("conveyor-{}", v.name())),
        Err(ShmError::InvalidName { .. })
    ));
}

#[test]
fn bad_names_are_refused_with_the_reason() {
    let long = "x".repeat(65);
    for (name, why) in [
        ("", "empty"),
        ("a/b", "only ASCII"),
        (long.as_str(), "longer than 64"),
    ] {
        match Value::create(name, 0u8) {
            Err(ShmError::InvalidName { reason, .. }) => assert!(reason.contains(why), "{reason}"),
            other => panic!("{name:?}: {other:?}"),
        }
        assert!(matches!(
            Array::<u8>::open(name),
            Err(ShmError::InvalidName { .. })
        ));
    }
    let too_long = "y".repeat(256);
    for name in ["", "/", "a/b", too_long.as_str()] {
        assert!(
            matches!(
                SharedMemory::create(name, 1),
                Err(ShmError::InvalidName { .. })
            ),
            "{name:?}"
        );
        assert!(matches!(
            SharedMemory::open(name),
            Err(ShmError::InvalidName { .. })
        ));
    }
    assert!(matches!(
        SharedMemory::new(0),
        Err(ShmError::InvalidOption(_))
    ));
    let missing = format!("missing-{}", std::process::id());
    assert!(matches!(
        Value::<u8>::open(&missing),
        Err(ShmError::NotFound(_))
    ));
    assert!(matches!(
        SharedMemory::open(&missing),
        Err(ShmError::NotFound(_))
    ));
}

#[test]
fn a_value_is_removed_with_its_last_handle() {
    let v = Value::new(1u32).unwrap();
    let name = v.name().to_string();
    let again: Value<u32> = Value::open(&name).unwrap();
    drop(v);
    assert_eq!(again.get().unwrap(), 1);
    drop(again);
    assert!(matches!(
        Value::<u32>::open(&name),
        Err(ShmError::NotFound(_))
    ));
}

#[test]
fn a_block_this_process_created_is_listed_as_held_until_dropped() {
    let block = SharedMemory::new(8).unwrap();
    block.unlink_on_drop();
    let path = block.path().display().to_string();
    let held = |p: &str| conveyor_core::held::list().iter().any(|h| h.contains(p));
    assert!(held(&path), "{:?}", conveyor_core::held::list());
    // Opening one that exists makes nothing new: not held for it.
    let opened = SharedMemory::open(block.name()).unwrap();
    drop(block);
    assert!(!held(&path));
    drop(opened);
}

fn write_block(block: SharedMemory) {
    block.write(0, b"from the child").unwrap();
    block
        .atomic_u32(16)
        .unwrap()
        .fetch_add(5, std::sync::atomic::Ordering::SeqCst);
}

#[test]
fn a_block_travels_to_a_child_by_name() {
    init_test!(write_block);
    let block = SharedMemory::new(64).unwrap();
    block.unlink_on_drop();
    let child = Process::new("write_block", &block).start().unwrap();
    assert!(child.join_timeout(WAIT).unwrap().unwrap().success());
    let mut buf = [0u8; 14];
    block.read(0, &mut buf).unwrap();
    assert_eq!(&buf, b"from the child");
    assert_eq!(
        block
            .atomic_u32(16)
            .unwrap()
            .load(std::sync::atomic::Ordering::SeqCst),
        5
    );
    assert!(matches!(
        block.atomic_u64(12),
        Err(conveyor_shm::AccessError::Misaligned {
            offset: 12,
            align: 8
        })
    ));
    assert!(matches!(
        block.atomic_u64(64),
        Err(conveyor_shm::AccessError::OutOfRange { .. })
    ));
    assert!(block.write(60, b"12345").is_err());
}
