//! wait() over many connections, as multiprocessing.connection.wait.

use std::time::Duration;

use conveyor_pipe::{pipe, wait, Connector, Listener, Waitable};

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn returns_the_ready_ones_in_order() {
    let pairs: Vec<_> = (0..5).map(|_| pipe().unwrap()).collect();
    let receivers: Vec<_> = pairs.iter().map(|(_, b)| b).collect();
    assert!(wait(&receivers, Some(Duration::from_millis(10)))
        .unwrap()
        .is_empty());
    pairs[3].0.send_bytes(b"3").unwrap();
    pairs[1].0.send_bytes(b"1").unwrap();
    let ready = wait(&receivers, Some(WAIT)).unwrap();
    let idx: Vec<usize> = ready
        .iter()
        .map(|r| receivers.iter().position(|x| std::ptr::eq(*x, *r)).unwrap())
        .collect();
    assert_eq!(idx, [1, 3]);
}

#[test]
fn blocks_until_a_thread_sends() {
    let (a, b) = pipe().unwrap();
    let (c, d) = pipe().unwrap();
    let t = std::thread::spawn(move || {
        c.send(&7u8).unwrap();
        (a, c)
    });
    let ready = wait(&[&b, &d], None).unwrap();
    assert_eq!(ready.len(), 1);
    assert!(std::ptr::eq(ready[0], &d));
    assert_eq!(d.recv::<u8>().unwrap(), 7);
    drop(t.join().unwrap());
}

#[test]
fn a_closed_peer_counts_as_ready() {
    let (a, b) = pipe().unwrap();
    drop(a);
    let ready = wait(&[&b], Some(WAIT)).unwrap();
    assert_eq!(ready.len(), 1);
    assert!(b.recv_bytes().unwrap_err().is_closed());
}

#[test]
fn drain_many_producers_until_all_close() {
    let n = 4;
    let per = 50u32;
    let mut rx = Vec::new();
    let mut producers = Vec::new();
    for p in 0..n {
        let (a, b) = pipe().unwrap();
        rx.push(b);
        producers.push(std::thread::spawn(move || {
            for i in 0..per {
                a.send(&(p as u32 * 1000 + i)).unwrap();
            }
        }));
    }
    let mut open: Vec<&_> = rx.iter().collect();
    let mut got = Vec::new();
    while !open.is_empty() {
        for c in wait(&open, Some(WAIT)).unwrap() {
            match c.recv::<u32>() {
                Ok(v) => got.push(v),
                Err(e) if e.is_closed() => open.retain(|x| !std::ptr::eq(*x, c)),
                Err(e) => panic!("{e}"),
            }
        }
    }
    for p in producers {
        p.join().unwrap();
    }
    got.sort_unstable();
    let want: Vec<u32> = (0..n as u32)
        .flat_map(|p| (0..per).map(move |i| p * 1000 + i))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn a_listener_is_ready_when_a_client_waits() {
    let listener = Listener::bind_private(None).unwrap();
    assert!(wait(&[&listener], Some(Duration::ZERO)).unwrap().is_empty());
    let address = listener.address().clone();
    let t = std::thread::spawn(move || Connector::new().connect(&address).unwrap());
    let ready = wait(&[&listener as &dyn Waitable], Some(WAIT)).unwrap();
    assert_eq!(ready.len(), 1);
    let _server = listener.accept().unwrap();
    drop(t.join().unwrap());
}

#[test]
fn messages_read_ahead_count_as_ready() {
    let (a, b) = pipe().unwrap();
    // Both arrive before the first receive, which reads them in one go: the second then sits
    // in b's read-ahead buffer, not in the socket, and wait must still see it.
    a.send_bytes(b"one").unwrap();
    a.send_bytes(b"two").unwrap();
    assert_eq!(b.recv_bytes().unwrap(), b"one");
    let (_c, d) = pipe().unwrap();
    let ready = wait(&[&d, &b], Some(Duration::ZERO)).unwrap();
    assert_eq!(ready.len(), 1);
    assert!(std::ptr::eq(ready[0], &b));
    assert!(b.poll(Some(Duration::ZERO)).unwrap());
    assert_eq!(b.recv_bytes().unwrap(), b"two");
    assert!(!b.poll(Some(Duration::ZERO)).unwrap());
}

#[test]
fn mixed_objects_through_dyn_waitable() {
    let (a, b) = pipe().unwrap();
    let (raw, mut raw_peer) = std::os::unix::net::UnixStream::pair().unwrap();
    std::io::Write::write_all(&mut raw_peer, b"x").unwrap();
    let objects: [&dyn Waitable; 2] = [&b, &raw];
    let ready = wait(&objects, Some(WAIT)).unwrap();
    assert_eq!(ready.len(), 1);
    drop(a);
}
