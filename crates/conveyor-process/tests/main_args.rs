//! A child started through a program's `main` (not a test's route) runs with its parent's
//! command-line arguments, as Python's spawn children get the parent's `sys.argv`.
//!
//! libtest's harness owns a test binary's arguments and routes children through `init_test!`,
//! so this test has `harness = false`: it is a program with a `main` of its own, as a user's.
//! To make sure there are arguments to compare (cargo may pass none), the first run starts
//! itself again with a few added, and that run starts the conveyor child.

use std::process::Command;
use std::time::Duration;

use conveyor_process::{entry, Process};

/// The argument the first run adds, with others that must arrive unchanged.
const MARK: &str = "--conveyor-main-args-check";
const ODD: &str = "two words, and \u{e9}";

/// In the child: its arguments must be exactly its parent's.
fn compare(parents: Vec<String>) -> Result<(), String> {
    let mine: Vec<String> = std::env::args().skip(1).collect();
    if mine == parents {
        Ok(())
    } else {
        Err(format!(
            "the child got {mine:?}, its parent had {parents:?}"
        ))
    }
}

fn main() {
    let _children = conveyor_process::init(&[entry!(compare)]);
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == MARK) {
        let exe = std::env::current_exe().expect("this test's path");
        let status = Command::new(exe)
            .args(&args)
            .args([MARK, ODD, ""])
            .status()
            .expect("running this test again with more arguments");
        assert!(status.success(), "the run with arguments failed: {status}");
        println!("main_args: a child runs with its parent's arguments: ok");
        return;
    }
    let child = Process::new("compare", &args)
        .start()
        .expect("starting the child");
    let status = child
        .join_timeout(Duration::from_secs(120))
        .expect("waiting for the child")
        .expect("the child did not end within two minutes");
    assert!(status.success(), "{status}");
}
