//! A producer and a consumer process on the two ends of a duplex pipe: seed 001's
//! `multiprocessing.Pipe` example, with an answer sent back to show that both ends talk.
//!
//! The Python original:
//!
//! ```python
//! def producer(pipe):
//!     pipe.send("a")
//!     time.sleep(2)
//!
//! def consumer(pipe):
//!     time.sleep(2)
//!     print(pipe.recv())
//!
//! if __name__ == "__main__":
//!     recevie_pipe, send_pipe = Pipe()
//!     my_producer = Process(target=producer, args=(send_pipe,))
//!     my_consumer = Process(target=consumer, args=(recevie_pipe,))
//!     my_producer.start(); my_consumer.start()
//!     my_producer.join(); my_consumer.join()
//! # a
//! ```
//!
//! `Pipe()` is duplex by default: here the consumer answers on the same connection and the
//! producer prints the answer. No sleeps are needed: `recv` blocks until the message arrives.
//! Each end is also a `Channel`, so the consumer drains with `get` until the producer closes.
//!
//! ```text
//! cargo run -p conveyor --no-default-features --features pipe,process --example pipe_duplex
//! ```

use conveyor::pipe::{pipe, Connection};
use conveyor::process::{self as process, entry, Process};
use conveyor::Channel;

fn producer(pipe: Connection) {
    pipe.send(&"a").expect("send");
    for i in 1..=3u32 {
        pipe.put(format!("item {i}")).expect("put");
    }
    // Done: the consumer's get drains what was sent, then sees Closed.
    Channel::<String>::close(&pipe).expect("close");
    let answer: String = pipe.recv().expect("the consumer's answer");
    println!("producer got back: {answer}");
}

fn consumer(pipe: Connection) {
    let first: String = pipe.recv().expect("recv");
    println!("{first}");
    let mut n = 0;
    while let Ok(item) = Channel::<String>::get(&pipe) {
        println!("consumer got {item}");
        n += 1;
    }
    pipe.send(&format!("thanks for {first} and {n} more"))
        .expect("answer");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _children = process::init(&[entry!(producer), entry!(consumer)]);

    let (recevie_pipe, send_pipe) = pipe()?;
    let my_producer = Process::new("producer", send_pipe)
        .name("producer")
        .start()?;
    let my_consumer = Process::new("consumer", recevie_pipe)
        .name("consumer")
        .start()?;
    let (p, c) = (my_producer.join()?, my_consumer.join()?);
    assert!(p.success() && c.success(), "producer: {p}, consumer: {c}");
    Ok(())
}
