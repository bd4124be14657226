//! Every shared object's behaviour, through a server started in this process.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use conveyor_core::{Channel, Joinable, QueueInfo};
use conveyor_manager::{DictProxy, ErrorKind, Kind, Manager, NumOp, Proxy, ValueProxy};

/// A generous bound for waits on another thread (the machine may be loaded).
const PATIENCE: Duration = Duration::from_secs(30);

#[test]
fn dict_operations() {
    let m = Manager::start().unwrap();
    let d = m.dict::<String, i32>("d").unwrap();
    assert!(d.is_empty().unwrap());
    d.set(&"a".into(), &1).unwrap();
    d.set(&"b".into(), &2).unwrap();
    d.set(&"a".into(), &10).unwrap();
    assert_eq!(d.get(&"a".into()).unwrap(), Some(10));
    assert_eq!(d.get(&"zz".into()).unwrap(), None);
    assert!(d.contains(&"b".into()).unwrap());
    assert_eq!(d.len().unwrap(), 2);
    let mut keys = d.keys().unwrap();
    keys.sort();
    assert_eq!(keys, vec!["a".to_string(), "b".into()]);
    d.update([(&"c".to_string(), &3), (&"d".to_string(), &4)])
        .unwrap();
    let mut snap = d.snapshot().unwrap();
    snap.sort();
    assert_eq!(
        snap,
        vec![
            ("a".to_string(), 10),
            ("b".into(), 2),
            ("c".into(), 3),
            ("d".into(), 4)
        ]
    );
    assert_eq!(d.remove(&"b".into()).unwrap(), Some(2));
    assert_eq!(d.remove(&"b".into()).unwrap(), None);
    assert_eq!(d.fetch_add(&"new".into(), 5).unwrap(), 0);
    assert_eq!(d.fetch_sub(&"new".into(), 7).unwrap(), 5);
    assert_eq!(d.get(&"new".into()).unwrap(), Some(-2));
    assert_eq!(d.fetch_op(&"new".into(), NumOp::Max, 9).unwrap(), -2);
    assert_eq!(d.get(&"new".into()).unwrap(), Some(9));
    // compare-and-swap
    assert_eq!(
        d.compare_and_swap(&"a".into(), Some(&10), Some(&11))
            .unwrap(),
        Ok(())
    );
    assert_eq!(
        d.compare_and_swap(&"a".into(), Some(&10), Some(&12))
            .unwrap(),
        Err(Some(11))
    );
    assert_eq!(
        d.compare_and_swap(&"none".into(), None, Some(&1)).unwrap(),
        Ok(())
    );
    assert_eq!(
        d.update_with(&"a".into(), |v| v.map(|x| x * 2)).unwrap(),
        Some(22)
    );
    assert_eq!(d.update_with(&"a".into(), |_| None).unwrap(), None);
    assert!(!d.contains(&"a".into()).unwrap());
    d.clear().unwrap();
    assert_eq!(d.len().unwrap(), 0);
}

#[test]
fn list_and_array_operations() {
    let m = Manager::start().unwrap();
    let l = m.list::<i64>("l").unwrap();
    l.push(&1).unwrap();
    l.extend(&[2, 3, 4]).unwrap();
    l.insert(0, &0).unwrap();
    l.insert(-1, &99).unwrap();
    assert_eq!(l.snapshot().unwrap(), vec![0, 1, 2, 3, 99, 4]);
    assert_eq!(l.get(-1).unwrap(), 4);
    l.set(-2, &3).unwrap();
    assert_eq!(l.pop().unwrap(), 4);
    assert_eq!(l.pop_at(0).unwrap(), 0);
    assert_eq!(l.len().unwrap(), 4);
    assert_eq!(l.fetch_add(0, 10).unwrap(), 1);
    assert_eq!(l.compare_and_swap(0, &11, &12).unwrap(), Ok(()));
    assert_eq!(l.compare_and_swap(0, &11, &13).unwrap(), Err(12));
    let e = l.get(10).unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::IndexOutOfRange));
    l.clear().unwrap();
    assert_eq!(
        l.pop().unwrap_err().kind(),
        Some(ErrorKind::IndexOutOfRange)
    );

    let a = m.array("a", &[1.5f64, 2.5]).unwrap();
    assert_eq!(a.len().unwrap(), 2);
    a.fetch_add(1, 1.0).unwrap();
    a.set(0, &0.5).unwrap();
    assert_eq!(a.snapshot().unwrap(), vec![0.5, 3.5]);
    // An array's length is fixed: a list proxy on it is the wrong kind.
    let as_list = m.open::<conveyor_manager::ListProxy<f64>>("a").unwrap_err();
    assert!(as_list.is_wrong_type());
}

#[test]
fn value_operations() {
    let m = Manager::start().unwrap();
    let v = m.value("v", &5u32).unwrap();
    assert_eq!(v.get().unwrap(), 5);
    v.set(&7).unwrap();
    assert_eq!(v.swap(&8).unwrap(), 7);
    assert_eq!(v.fetch_add(2).unwrap(), 8);
    assert_eq!(v.fetch_sub(1).unwrap(), 10);
    assert_eq!(v.compare_and_swap(&9, &1).unwrap(), Ok(()));
    assert_eq!(v.compare_and_swap(&9, &2).unwrap(), Err(1));
    assert_eq!(v.update(|x| x + 100).unwrap(), 101);
    // Opening again does not reset it.
    let again = m.value("v", &0u32).unwrap();
    assert_eq!(again.get().unwrap(), 101);

    let s: ValueProxy<String> = m.value("s", &"a".to_string()).unwrap();
    s.update(|x| x + "b").unwrap();
    assert_eq!(s.get().unwrap(), "ab");
}

#[test]
fn namespace_operations() {
    let m = Manager::start().unwrap();
    let ns = m.namespace("ns").unwrap();
    ns.set("x", &1u8).unwrap();
    ns.set("name", "rose").unwrap();
    assert_eq!(ns.get::<u8>("x").unwrap(), Some(1));
    assert_eq!(ns.get::<String>("name").unwrap().as_deref(), Some("rose"));
    assert_eq!(ns.get::<u8>("missing").unwrap(), None);
    assert!(ns.remove("x").unwrap());
    assert!(!ns.remove("x").unwrap());
    assert_eq!(ns.names().unwrap(), vec!["name".to_string()]);
}

#[test]
fn registry_lookup_list_delete() {
    let m = Manager::start().unwrap();
    m.dict::<u8, u8>("one").unwrap();
    m.queue::<u8>("two", None).unwrap();
    assert_eq!(
        m.objects().unwrap(),
        vec![("one".to_string(), Kind::Dict), ("two".into(), Kind::Queue)]
    );
    let d: DictProxy<u8, u8> = m.open("one").unwrap();
    d.set(&1, &1).unwrap();
    assert!(m
        .open::<DictProxy<u8, u8>>("nope")
        .unwrap_err()
        .is_not_found());
    let wrong = m.dict::<u8, u8>("two").unwrap_err();
    assert_eq!(wrong.kind(), Some(ErrorKind::WrongType));
    m.delete("one").unwrap();
    assert!(d.get(&1).unwrap_err().is_not_found());
    assert!(m.delete("one").unwrap_err().is_not_found());
    // The same name can be made again, empty.
    let d2 = m.dict::<u8, u8>("one").unwrap();
    assert_eq!(d2.len().unwrap(), 0);
}

#[test]
fn queue_nonblocking_and_info() {
    let m = Manager::start().unwrap();
    let q = m.queue::<u32>("q", Some(2)).unwrap();
    assert_eq!(q.capacity().unwrap(), Some(2));
    assert!(q.is_empty().unwrap());
    q.try_put(1).unwrap();
    q.put_timeout(2, Duration::from_millis(1)).unwrap();
    assert!(q.is_full().unwrap());
    let e = q.try_put(3).unwrap_err();
    assert!(e.is_full());
    assert_eq!(e.into_inner(), 3);
    let e = q.put_timeout(4, Duration::from_millis(20)).unwrap_err();
    assert!(e.is_timeout());
    assert_eq!(q.len().unwrap(), 2);
    assert_eq!(q.try_get().unwrap(), 1);
    assert_eq!(q.get_timeout(Duration::from_millis(1)).unwrap(), 2);
    assert!(q.try_get().unwrap_err().is_empty());
    assert!(q
        .get_timeout(Duration::from_millis(20))
        .unwrap_err()
        .is_timeout());
    // task accounting
    assert!(!q.join_timeout(Duration::from_millis(1)).unwrap());
    q.task_done().unwrap();
    q.task_done().unwrap();
    assert!(q.task_done().is_err());
    assert!(q.join_timeout(Duration::from_millis(1)).unwrap());
    q.join().unwrap();
    // shutdown(false): drains, then Closed
    q.put(7).unwrap();
    q.shutdown(false).unwrap();
    assert!(q.try_put(8).unwrap_err().is_closed());
    assert_eq!(q.get().unwrap(), 7);
    assert!(q.get().unwrap_err().is_closed());
    let u = m.queue::<u8>("unbounded", None).unwrap();
    assert_eq!(u.capacity().unwrap(), None);
    for i in 0..100 {
        u.try_put(i).unwrap();
    }
    assert!(!u.is_full().unwrap());
}

#[test]
fn blocking_get_does_not_block_other_clients() {
    let m = Manager::start().unwrap();
    let q = m.queue::<String>("q", None).unwrap();
    let c2 = m.connect().unwrap();
    let waiting = q.rebind(&c2);
    let (tx, rx) = mpsc::channel();
    let h = thread::spawn(move || tx.send(waiting.get()).unwrap());
    // While that get waits on the server, this connection is served.
    let d = m.dict::<u8, u8>("d").unwrap();
    for i in 0..50 {
        d.set(&i, &i).unwrap();
    }
    assert_eq!(d.len().unwrap(), 50);
    assert!(rx.try_recv().is_err());
    q.put("hello".into()).unwrap();
    assert_eq!(rx.recv_timeout(PATIENCE).unwrap().unwrap(), "hello");
    h.join().unwrap();
}

#[test]
fn close_is_per_proxy() {
    let m = Manager::start().unwrap();
    let q = m.queue::<u8>("q", None).unwrap();
    let producer = q.rebind(&m.connect().unwrap());
    producer.put(1).unwrap();
    producer.close().unwrap();
    assert!(producer.is_closed());
    let e = producer.put(2).unwrap_err();
    assert!(e.is_closed());
    assert_eq!(e.into_inner(), 2);
    // Another proxy, a clone of the closed one included, still puts; gets go on.
    q.put(3).unwrap();
    producer.clone().put(4).unwrap();
    assert!(!q.state().unwrap().closed);
    let got: Vec<u8> = (0..3).map(|_| producer.get().unwrap()).collect();
    assert_eq!(got, [1, 3, 4]);
}

#[test]
fn shutdown_immediate_discards_counts_done_and_wakes_everyone() {
    let m = Manager::start().unwrap();
    let q = m.queue::<u8>("q", Some(2)).unwrap();
    q.put(1).unwrap();
    q.put(2).unwrap();
    assert_eq!(q.get().unwrap(), 1);
    q.put(3).unwrap();
    // A put blocked on the full queue, and a join, in other connections.
    let putter = q.rebind(&m.connect().unwrap());
    let joiner = q.rebind(&m.connect().unwrap());
    let (ptx, prx) = mpsc::channel();
    let (jtx, jrx) = mpsc::channel();
    let hp = thread::spawn(move || ptx.send(putter.put(4).map_err(|e| e.is_closed())).unwrap());
    let hj = thread::spawn(move || jtx.send(joiner.join_timeout(PATIENCE)).unwrap());
    q.shutdown(true).unwrap();
    assert_eq!(prx.recv_timeout(PATIENCE).unwrap(), Err(true));
    let state = q.state().unwrap();
    assert!(state.closed);
    assert_eq!(state.len, 0, "the items left were not discarded");
    assert_eq!(state.unfinished, 1, "only the item taken is outstanding");
    assert!(q.get().unwrap_err().is_closed());
    q.task_done().unwrap();
    assert!(
        jrx.recv_timeout(PATIENCE).unwrap().unwrap(),
        "join was not released"
    );
    assert!(q.task_done().is_err());
    hp.join().unwrap();
    hj.join().unwrap();
}

#[test]
fn shutdown_wakes_a_blocked_get() {
    let m = Manager::start().unwrap();
    let q = m.queue::<u8>("q", Some(1)).unwrap();
    let waiting = q.rebind(&m.connect().unwrap());
    let (tx, rx) = mpsc::channel();
    let h = thread::spawn(move || tx.send(waiting.get().map_err(|e| e.is_closed())).unwrap());
    // Whether the get is already parked on the server or not, it must end with Closed.
    q.shutdown(false).unwrap();
    assert_eq!(rx.recv_timeout(PATIENCE).unwrap(), Err(true));
    h.join().unwrap();
}

#[test]
fn bounded_put_waits_for_room() {
    let m = Manager::start().unwrap();
    let q = m.queue::<u8>("q", Some(1)).unwrap();
    q.put(1).unwrap();
    let waiting = q.rebind(&m.connect().unwrap());
    let (tx, rx) = mpsc::channel();
    let h = thread::spawn(move || tx.send(waiting.put(2).is_ok()).unwrap());
    assert_eq!(q.get().unwrap(), 1);
    assert!(rx.recv_timeout(PATIENCE).unwrap());
    assert_eq!(q.get_timeout(PATIENCE).unwrap(), 2);
    h.join().unwrap();
}

#[test]
fn join_waits_for_task_done_from_another_client() {
    let m = Manager::start().unwrap();
    let q = m.queue::<u8>("q", None).unwrap();
    q.put(1).unwrap();
    let joiner = q.rebind(&m.connect().unwrap());
    let (tx, rx) = mpsc::channel();
    let h = thread::spawn(move || {
        joiner.join().unwrap();
        tx.send(()).unwrap();
    });
    q.get().unwrap();
    q.task_done().unwrap();
    rx.recv_timeout(PATIENCE).unwrap();
    h.join().unwrap();
}

#[test]
fn lock_excludes_other_connections() {
    let m = Manager::start().unwrap();
    let lock = m.lock("l").unwrap();
    let other = lock.rebind(&m.connect().unwrap());
    let g = lock.acquire().unwrap();
    assert!(other.try_acquire().unwrap().is_none());
    assert!(other
        .acquire_timeout(Duration::from_millis(20))
        .unwrap()
        .is_none());
    // Same connection again: an error, not a hang.
    assert_eq!(
        lock.try_acquire().unwrap_err().kind(),
        Some(ErrorKind::WouldDeadlock)
    );
    let (tx, rx) = mpsc::channel();
    let h = thread::spawn(move || {
        let g = other.acquire().unwrap();
        tx.send(()).unwrap();
        g.release().unwrap();
    });
    assert!(rx.try_recv().is_err());
    drop(g);
    rx.recv_timeout(PATIENCE).unwrap();
    h.join().unwrap();
    assert!(!lock.is_locked().unwrap());
}

#[test]
fn rlock_nests_per_connection() {
    let m = Manager::start().unwrap();
    let r = m.rlock("r").unwrap();
    let other = r.rebind(&m.connect().unwrap());
    let a = r.acquire().unwrap();
    let b = r.try_acquire().unwrap().expect("owner may nest");
    assert_eq!(r.depth().unwrap(), 2);
    assert!(other.try_acquire().unwrap().is_none());
    drop(b);
    assert!(other.try_acquire().unwrap().is_none());
    drop(a);
    let c = other.try_acquire().unwrap().expect("free now");
    assert_eq!(other.depth().unwrap(), 1);
    drop(c);
}

#[test]
fn event_semaphore_barrier() {
    let m = Manager::start().unwrap();
    let ev = m.event("e").unwrap();
    assert!(!ev.is_set().unwrap());
    let waiter = ev.rebind(&m.connect().unwrap());
    let (tx, rx) = mpsc::channel();
    let h = thread::spawn(move || tx.send(waiter.wait().unwrap()).unwrap());
    ev.set().unwrap();
    assert!(rx.recv_timeout(PATIENCE).unwrap());
    h.join().unwrap();
    ev.clear().unwrap();
    assert!(!ev.wait_timeout(Duration::from_millis(5)).unwrap());

    let s = m.semaphore("s", 1).unwrap();
    s.acquire().unwrap();
    assert!(!s.try_acquire().unwrap());
    assert!(!s.acquire_timeout(Duration::from_millis(5)).unwrap());
    s.release().unwrap();
    s.release().unwrap(); // unbounded: may go above the start
    assert_eq!(s.value().unwrap(), 2);
    let b = m.bounded_semaphore("bs", 1).unwrap();
    assert_eq!(
        b.release().unwrap_err().kind(),
        Some(ErrorKind::TooManyReleases)
    );

    let bar = m.barrier("b", 3).unwrap();
    let mut hs = Vec::new();
    for _ in 0..2 {
        let mine = bar.rebind(&m.connect().unwrap());
        hs.push(thread::spawn(move || mine.wait().unwrap()));
    }
    let me = bar.wait().unwrap();
    let mut idx: Vec<u64> = hs.into_iter().map(|h| h.join().unwrap()).collect();
    idx.push(me);
    idx.sort();
    assert_eq!(idx, vec![0, 1, 2]);
    assert_eq!(bar.state().unwrap().waiting, 0);
}

#[test]
fn barrier_timeout_breaks_and_reset_repairs() {
    let m = Manager::start().unwrap();
    let bar = m.barrier("b", 2).unwrap();
    let e = bar.wait_timeout(Duration::from_millis(10)).unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::BrokenBarrier));
    assert!(bar.state().unwrap().broken);
    assert_eq!(
        bar.wait().unwrap_err().kind(),
        Some(ErrorKind::BrokenBarrier)
    );
    bar.reset().unwrap();
    assert!(!bar.state().unwrap().broken);
    // A waiter blocked when another party aborts fails.
    let other = bar.rebind(&m.connect().unwrap());
    let (tx, rx) = mpsc::channel();
    let h = thread::spawn(move || tx.send(other.wait().unwrap_err().kind()).unwrap());
    // Abort may come before or after the other party arrives: it fails either way.
    bar.abort().unwrap();
    assert_eq!(
        rx.recv_timeout(PATIENCE).unwrap(),
        Some(ErrorKind::BrokenBarrier)
    );
    h.join().unwrap();
}

#[test]
fn batch_many_operations() {
    let m = Manager::start().unwrap();
    let d = m.dict::<u32, u64>("d").unwrap();
    let v = m.value("v", &0i64).unwrap();
    let q = m.queue::<u32>("q", Some(1)).unwrap();
    let l = m.list::<u32>("l").unwrap();
    let mut b = m.batch();
    let n = 5000u32; // several frames
    for i in 0..n {
        b.dict_set(&d, &i, &u64::from(i)).unwrap();
        b.value_fetch_add(&v, 1).unwrap();
    }
    let got = b.dict_get(&d, &42).unwrap();
    let missing = b.dict_get(&d, &(n + 1)).unwrap();
    let has = b.dict_contains(&d, &7).unwrap();
    let add = b.dict_fetch_add(&d, &0, 5).unwrap();
    let removed = b.dict_remove(&d, &1).unwrap();
    let put1 = b.queue_try_put(&q, &1).unwrap();
    let put2 = b.queue_try_put(&q, &2).unwrap();
    let get1 = b.queue_try_get(&q).unwrap();
    let pushed = b.list_push(&l, &9).unwrap();
    let vset = b.value_set(&v, &-1).unwrap();
    let vget = b.value_get(&v).unwrap();
    assert_eq!(b.len(), 2 * n as usize + 11);
    let r = b.run().unwrap();
    assert_eq!(r.get(got).unwrap(), Some(42));
    assert_eq!(r.get(missing).unwrap(), None);
    assert!(r.get(has).unwrap());
    assert_eq!(r.get(add).unwrap(), 0);
    assert_eq!(r.get(removed).unwrap(), Some(1));
    r.get(put1).unwrap();
    assert_eq!(r.get(put2).unwrap_err().kind(), Some(ErrorKind::Full));
    assert_eq!(r.get(get1).unwrap(), 1);
    r.get(pushed).unwrap();
    r.get(vset).unwrap();
    assert_eq!(r.get(vget).unwrap(), -1);
    assert_eq!(r.errors().count(), 1);
    assert_eq!(d.len().unwrap(), n as usize - 1);
    assert_eq!(d.get(&0).unwrap(), Some(5));
    assert_eq!(l.snapshot().unwrap(), vec![9]);
    // A proxy of another connection is refused.
    let foreign = d.rebind(&m.connect().unwrap());
    assert!(m.batch().dict_get(&foreign, &1).is_err());
}

#[test]
fn guard_drop_shuts_down_and_removes_the_socket() {
    let m = Manager::start().unwrap();
    let addr = m.address().clone();
    let other = m.connect().unwrap();
    let conveyor_manager::Address::Unix(path) = &addr else {
        panic!("default is a Unix socket")
    };
    assert!(path.exists());
    drop(m);
    assert!(!path.exists());
    assert!(other.ping().unwrap_err().is_io());
}

#[test]
fn client_can_shut_the_server_down() {
    let m = Manager::start().unwrap();
    let c = m.connect().unwrap();
    c.shutdown_server().unwrap();
    m.wait();
    assert!(m.ping().is_err());
}

#[test]
fn blocked_waits_end_at_shutdown() {
    let m = Manager::start().unwrap();
    let q = m.queue::<u8>("q", None).unwrap();
    let waiting = q.rebind(&m.connect().unwrap());
    let (tx, rx) = mpsc::channel();
    let h = thread::spawn(move || tx.send(waiting.get().is_err()).unwrap());
    m.shutdown();
    assert!(rx.recv_timeout(PATIENCE).unwrap());
    h.join().unwrap();
}

#[test]
fn tcp_server() {
    let m = Manager::builder()
        .address("tcp:127.0.0.1:0".parse().unwrap())
        .authkey(b"k".to_vec())
        .start()
        .unwrap();
    let conveyor_manager::Address::Tcp(a) = m.address() else {
        panic!("tcp")
    };
    assert!(!a.ends_with(":0"));
    let c = conveyor_manager::ManagerConnection::connect(m.address(), b"k").unwrap();
    let v = c.value("x", &1u8).unwrap();
    v.fetch_add(1).unwrap();
    assert_eq!(m.value("x", &0u8).unwrap().get().unwrap(), 2);
}

#[test]
fn proxies_serialise_as_endpoint_and_name() {
    use conveyor_core::{Codec, Postcard};
    let m = Manager::start().unwrap();
    let q = m.queue::<String>("travelling", None).unwrap();
    let mut bytes = Vec::new();
    Postcard.encode(&q, &mut bytes).unwrap();
    // Decoding connects (once per server per process) and opens the object by name.
    let back: conveyor_manager::QueueProxy<String> = Postcard.decode(&bytes).unwrap();
    back.put("hi".into()).unwrap();
    assert_eq!(q.get().unwrap(), "hi");
    // A proxy whose object is gone does not decode.
    m.delete("travelling").unwrap();
    assert!(Postcard
        .decode::<conveyor_manager::QueueProxy<String>>(&bytes)
        .is_err());
    // Nor one of the wrong kind.
    m.dict::<u8, u8>("travelling").unwrap();
    assert!(Postcard
        .decode::<conveyor_manager::QueueProxy<String>>(&bytes)
        .is_err());
}
