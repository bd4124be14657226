//! Objects both ways between Rust and Python with the pickle codec.
//!
//! A Rust `Listener` with an authkey starts a `python3` child that connects with
//! `multiprocessing.connection.Client`. Python sends an order (a dict holding a list of
//! tuples); Rust decodes it into its own types, prices it, and sends back a receipt (a struct,
//! which Python sees as a dict), then Python sends any object it likes and Rust shows it as a
//! dynamic `Value`. Both sides use plain `send`/`recv`.
//!
//! ```text
//! cargo run -p conveyor --no-default-features --features pipe --example python_objects
//! ```
//!
//! Needs `python3` (or `$CONVEYOR_PYTHON`) on the `PATH`.

use std::collections::BTreeMap;
use std::process::{Command, ExitCode};

use conveyor::pipe::{Listener, Pickle};
use serde::{Deserialize, Serialize};

const PYTHON_PEER: &str = r#"
import sys
from multiprocessing.connection import Client

with Client(sys.argv[1], authkey=b'objects') as c:
    order = {'customer': 'Ken', 'items': [('rose', 3, 2.5), ('tulip', 2, 1.25)], 'note': b'for Jack'}
    c.send(order)
    print('python sent:    ', order)
    receipt = c.recv()
    print('python received:', receipt)
    assert receipt['total'] == 3 * 2.5 + 2 * 1.25, receipt
    c.send({'anything': [1, 2.0, 'three', (None, True)], 42: b'bytes'})
"#;

/// What Python sends: a dict whose keys are the field names.
#[derive(Debug, Deserialize)]
struct Order {
    customer: String,
    items: Vec<(String, u32, f64)>,
    #[serde(with = "serde_bytes")]
    note: Vec<u8>,
}

/// What Rust sends back: Python receives it as a dict.
#[derive(Debug, Serialize)]
struct Receipt {
    customer: String,
    lines: BTreeMap<String, f64>,
    total: f64,
    note: String,
}

fn main() -> ExitCode {
    let listener = Listener::builder()
        .authkey(b"objects")
        .bind_private()
        .expect("listen on a private Unix socket");
    let python = std::env::var("CONVEYOR_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut child = match Command::new(&python)
        .args(["-c", PYTHON_PEER, &listener.address().to_string()])
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "this example needs python3 (or $CONVEYOR_PYTHON): cannot start {python}: {e}"
            );
            return ExitCode::FAILURE;
        }
    };

    let conn = listener.accept().expect("the Python peer authenticates");
    let conn = conn.with_codec(Pickle);

    let order: Order = conn.recv().expect("an order");
    println!("rust received:   {order:?}");
    let lines: BTreeMap<String, f64> = order
        .items
        .iter()
        .map(|(name, n, price)| (name.clone(), *n as f64 * price))
        .collect();
    let receipt = Receipt {
        customer: order.customer,
        total: lines.values().sum(),
        lines,
        note: String::from_utf8_lossy(&order.note).into_owned(),
    };
    println!("rust sent:       {receipt:?}");
    conn.send(&receipt).expect("send the receipt");

    let anything = conn.recv_value().expect("any object");
    println!("rust received:   {anything}");

    let status = child.wait().expect("wait for python");
    if status.success() {
        ExitCode::SUCCESS
    } else {
        eprintln!("the Python peer failed: {status}");
        ExitCode::FAILURE
    }
}
