//! A Python program using redis-py as a peer on the same stream, with the pickle codec.
//!
//! Needs `python3` with the `redis` package (`.ci/run` installs it with `pip install redis`);
//! outside CI without it the test prints loudly that it skipped and why.

mod common;

use std::process::Command;
use std::time::Duration;

use conveyor_redis::{Builder, Channel, Joinable, Pickle};

/// The Python side: reads the two items Rust put (checking them), acknowledges them as
/// task_done does, then puts three of its own.
const PEER: &str = r#"
import pickle, sys
import redis

url, stream = sys.argv[1], sys.argv[2]
r = redis.Redis.from_url(url)
got = []
while len(got) < 2:
    reply = r.xreadgroup("conveyor", "python-peer", {stream: ">"}, count=1, block=20000)
    if not reply:
        sys.exit("python peer: nothing arrived within 20 s")
    for entry_id, fields in reply[0][1]:
        got.append(pickle.loads(fields[b"d"]))
        r.xack(stream, "conveyor", entry_id)
        r.xdel(stream, entry_id)
assert got == [("rose", 1, [1.5, 2.5]), {"name": "jerry", "hotdogs": 5}], got
for obj in [("from python", 7), "plain str", {"k": [1, 2, None]}]:
    r.xadd(stream, {"d": pickle.dumps(obj)})
print("python peer: ok")
"#;

fn python_has_redis() -> Result<(), String> {
    let out = Command::new("python3")
        .args(["-c", "import redis"])
        .output()
        .map_err(|e| format!("python3 does not run: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "python3 has no redis package: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[test]
fn redis_py_reads_and_writes_the_same_stream() {
    if let Err(why) = python_has_redis() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{why} (CI installs it: pip install redis)");
        }
        eprintln!("\n!!! SKIPPED redis_py_interop: {why}; run `pip install redis` !!!\n");
        return;
    }
    with_server!("redis_py_interop", |url, name| {
        let q = Builder::new(&url, &name)
            .codec(Pickle)
            .open_joinable::<(String, i64, Vec<f64>)>()
            .unwrap();
        q.put(("rose".into(), 1, vec![1.5, 2.5])).unwrap();
        let eaters = Builder::new(&url, &name)
            .codec(Pickle)
            .open::<Eater>()
            .unwrap();
        eaters
            .put(Eater {
                name: "jerry".into(),
                hotdogs: 5,
            })
            .unwrap();

        let out = Command::new("python3")
            .args(["-c", PEER, &url, q.stream_key()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "python peer failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !q.join_timeout(Duration::ZERO).unwrap(),
            "python's three items are not done yet"
        );

        let typed = Builder::new(&url, &name)
            .codec(Pickle)
            .open::<(String, i64)>()
            .unwrap();
        assert_eq!(typed.get().unwrap(), ("from python".to_string(), 7));
        let s = Builder::new(&url, &name)
            .codec(Pickle)
            .open::<String>()
            .unwrap();
        assert_eq!(s.get().unwrap(), "plain str");
        let map = Builder::new(&url, &name)
            .codec(Pickle)
            .open::<std::collections::BTreeMap<String, Vec<Option<i64>>>>()
            .unwrap();
        let got = map.get().unwrap();
        assert_eq!(got["k"], vec![Some(1), Some(2), None]);
        assert!(
            q.join_timeout(Duration::from_secs(5)).unwrap(),
            "python's acks and these gets leave nothing to do"
        );
        q.destroy().unwrap();
    });
}

/// A struct travels as a dict of its fields.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Eater {
    name: String,
    hotdogs: i64,
}
