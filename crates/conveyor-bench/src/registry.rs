//! Every transport the harness knows, in table order: conveyor's, the Rust peers, then the
//! Python originals; threads before processes.

use std::sync::Arc;

use conveyor_thread::{LifoQueue, PriorityQueue, Queue};

use crate::peers::{CrossbeamChannel, FlumeChannel, MpscChannel};
use crate::python::{python_name, PythonEnv, PythonTransport};
use crate::transport::{Family, InProcess, Scope, Transport, TransportInfo};

/// Every transport, the Python ones run through `python`.
pub fn transports(python: Arc<PythonEnv>) -> Vec<Arc<dyn Transport>> {
    let py_queue = python_name("queue.Queue");
    let thread =
        |name: &str, family, py: &str| TransportInfo::new(name, Scope::Thread, family, Some(py));
    let mut v: Vec<Arc<dyn Transport>> = vec![
        Arc::new(
            InProcess::queue(
                thread("conveyor Queue", Family::Conveyor, &py_queue),
                Queue::bounded,
            )
            .with_joinable(Queue::bounded),
        ),
        Arc::new(
            InProcess::queue(
                thread(
                    "conveyor LifoQueue",
                    Family::Conveyor,
                    &python_name("queue.LifoQueue"),
                ),
                LifoQueue::bounded,
            )
            .with_joinable(LifoQueue::bounded),
        ),
        Arc::new(
            InProcess::queue(
                thread(
                    "conveyor PriorityQueue",
                    Family::Conveyor,
                    &python_name("queue.PriorityQueue"),
                ),
                PriorityQueue::bounded,
            )
            .with_joinable(PriorityQueue::bounded),
        ),
        Arc::new(InProcess::queue(
            thread("crossbeam-channel", Family::RustPeer, &py_queue),
            CrossbeamChannel::bounded,
        )),
        Arc::new(InProcess::queue(
            thread("std mpsc", Family::RustPeer, &py_queue),
            MpscChannel::bounded,
        )),
        Arc::new(InProcess::queue(
            thread("flume", Family::RustPeer, &py_queue),
            FlumeChannel::bounded,
        )),
    ];
    v.extend(crate::process::transports());
    v.extend(crate::redis::transports());
    v.extend(crate::pool::transports());
    for t in PythonTransport::all(python.clone()) {
        v.push(Arc::new(t));
    }
    for t in crate::python::PythonPool::all(python) {
        v.push(Arc::new(t));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_originals_exist() {
        let all = transports(Arc::new(PythonEnv::absent("not needed")));
        let names: Vec<&str> = all.iter().map(|t| t.info().name.as_str()).collect();
        let unique: std::collections::HashSet<&&str> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        for t in &all {
            if let Some(py) = &t.info().python_original {
                assert!(names.contains(&py.as_str()), "{py} is not a transport");
            }
        }
    }
}
