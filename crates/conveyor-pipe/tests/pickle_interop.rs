//! Objects both ways with CPython's `Connection.send`/`recv` through the pickle codec: ints,
//! floats, strings, bytes, lists, tuples, dicts, None, a struct as a dict, and dynamic values.
//! Needs python3 (or `$CONVEYOR_PYTHON`); fails with a clear message where it is absent.
#![cfg(feature = "pickle")]

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use conveyor_pipe::pickle::{HashableValue, Value};
use conveyor_pipe::{Listener, Pickle};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

const SCRIPT: &str = r#"
import sys
from multiprocessing.connection import Client
h, p = sys.argv[1].rsplit(':', 1)
c = Client((h, int(p)), authkey=b'objects')
objects = [
    42, -7, 3.5, 'h\u00e9llo', b'\x00\xff', [1, 2, 3], (1, 'a', 2.5),
    {'a': 1, 'b': 2}, None,
    {'name': 'rose', 'petals': [5, 8], 'scent': b'sweet'},
    [1, 'x', (None, True), {'k': b'v'}],
]
for o in objects:
    c.send(o)
    back = c.recv()
    assert back == o and type(back) == type(o), ('echo mismatch', o, back)
# Objects Rust makes on its own.
made = c.recv()
assert made == {'rust': (1, 2.0, 'three', b'four', [None])}, made
c.send('bye')
print('python objects ok', flush=True)
"#;

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Flower {
    name: String,
    petals: Vec<u32>,
    scent: ByteBuf,
}

#[test]
fn objects_both_ways_with_python() {
    let exe = std::env::var("CONVEYOR_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let listener = Listener::bind(&"127.0.0.1:0".parse().unwrap(), Some(b"objects")).unwrap();
    let child = Command::new(&exe)
        .args(["-c", SCRIPT, &listener.address().to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "this interop test needs python3 (or $CONVEYOR_PYTHON) and `{exe}` could not \
                 be started: {e}"
            )
        });
    let server = std::thread::spawn(move || serve(listener));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("python did not finish")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let served = server.join();
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("python objects ok"), "{stdout}\n{stderr}");
    assert!(
        served.is_ok(),
        "the Rust side failed; python said:\n{stderr}"
    );
}

fn serve(listener: Listener) {
    let c = listener.accept().unwrap().with_codec(Pickle);

    let v: i64 = c.recv().unwrap();
    assert_eq!(v, 42);
    c.send(&v).unwrap();
    let v: i32 = c.recv().unwrap();
    assert_eq!(v, -7);
    c.send(&v).unwrap();
    let v: f64 = c.recv().unwrap();
    assert_eq!(v, 3.5);
    c.send(&v).unwrap();
    let v: String = c.recv().unwrap();
    assert_eq!(v, "h\u{e9}llo");
    c.send(&v).unwrap();
    let v: ByteBuf = c.recv().unwrap();
    assert_eq!(v.as_slice(), [0, 255]);
    c.send(&v).unwrap();
    let v: Vec<i64> = c.recv().unwrap();
    assert_eq!(v, [1, 2, 3]);
    c.send(&v).unwrap();
    let v: (i64, String, f64) = c.recv().unwrap();
    assert_eq!(v, (1, "a".to_string(), 2.5));
    c.send(&v).unwrap();
    let v: BTreeMap<String, i64> = c.recv().unwrap();
    assert_eq!(v, BTreeMap::from([("a".into(), 1), ("b".into(), 2)]));
    c.send(&v).unwrap();
    let v: Option<i64> = c.recv().unwrap();
    assert_eq!(v, None);
    c.send(&v).unwrap();
    let v: Flower = c.recv().unwrap();
    assert_eq!(
        v,
        Flower {
            name: "rose".into(),
            petals: vec![5, 8],
            scent: ByteBuf::from(b"sweet".to_vec())
        }
    );
    c.send(&v).unwrap();
    let v = c.recv_value().unwrap();
    let want = Value::List(vec![
        Value::I64(1),
        Value::String("x".into()),
        Value::Tuple(vec![Value::None, Value::Bool(true)]),
        Value::Dict(BTreeMap::from([(
            HashableValue::String("k".into()),
            Value::Bytes(b"v".to_vec()),
        )])),
    ]);
    assert_eq!(v, want);
    c.send_value(&v).unwrap();

    let made = BTreeMap::from([(
        "rust",
        (
            1,
            2.0,
            "three",
            ByteBuf::from(b"four".to_vec()),
            vec![None::<i32>],
        ),
    )]);
    c.send(&made).unwrap();
    assert_eq!(c.recv::<String>().unwrap(), "bye");
}
