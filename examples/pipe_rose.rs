//! Ken sends Jack a rose through a pipe: seed 004's `multiprocessing.Pipe` example, with real
//! child processes.
//!
//! The Python original:
//!
//! ```python
//! def putTask(article):
//!     name = "Ken"
//!     conn1.send(article)            # send the rose
//!     print("%s send %s" % (name, article))
//!
//! def getTask():
//!     name = "Jack"
//!     article = conn2.recv()         # receive the rose
//!     print("%s receive %s" % (name, article))
//!
//! if __name__ == "__main__":
//!     conn1, conn2 = multiprocessing.Pipe()  # two telephones
//!     gT = multiprocessing.Process(target=getTask)
//!     pT = multiprocessing.Process(target=putTask, args=("rose", ))
//!     gT.start()
//!     pT.start()
//! # Ken send rose
//! # Jack receive rose
//! ```
//!
//! The Python children find `conn1` and `conn2` as globals copied by `fork`; here each end
//! travels in its child's arguments (a Connection is inherited as a file descriptor).
//!
//! ```text
//! cargo run -p conveyor --no-default-features --features pipe,process --example pipe_rose
//! ```

use conveyor::pipe::{pipe, Connection};
use conveyor::process::{self as process, entry, Process};

/// Ken sends the article through his end of the pipe.
fn put_task((conn1, article): (Connection, String)) {
    let name = "Ken";
    conn1.send(&article).expect("send the rose");
    println!("{name} send {article}");
}

/// Jack waits for the article on the other end.
fn get_task(conn2: Connection) {
    let name = "Jack";
    let article: String = conn2.recv().expect("receive the rose");
    println!("{name} receive {article}");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // In a child this runs put_task or get_task and exits.
    let _children = process::init(&[entry!(put_task), entry!(get_task)]);

    let (conn1, conn2) = pipe()?; // two telephones
    let g_t = Process::new("get_task", conn2).name("Jack").start()?;
    let p_t = Process::new("put_task", (conn1, "rose".to_string()))
        .name("Ken")
        .start()?;
    let (p, g) = (p_t.join()?, g_t.join()?);
    assert!(p.success() && g.success(), "Ken: {p}, Jack: {g}");
    Ok(())
}
