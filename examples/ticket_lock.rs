//! 100 cinema tickets sold by several threads, without and with a lock: seed 002's `Lock` example.
//!
//! The Python original keeps the number of tickets left in a global `n = 100`. Each buyer
//! thread reads it into a temporary, sleeps half a second, and writes back `temp - 1`, all while
//! holding a `threading.Lock`, and prints how many tickets are left. The lock is the point: take
//! it away, and two buyers that read the same `n` both write the same `n - 1`; one sale is lost
//! from the count.
//!
//! This example runs the box office twice with ten buyer threads that keep buying until the
//! counter says the show is sold out:
//!
//! 1. **without a lock**: the same read, pause, write on an `AtomicUsize` (`load`, then
//!    `yield_now` in place of the sleep, then `store`). Each step is atomic, so there is no
//!    undefined behaviour, but the read-modify-write as a whole is not, and updates are lost:
//!    more than 100 tickets are sold for 100 seats.
//! 2. **with a `Mutex`**: the same steps under the lock. Exactly 100 tickets are sold.
//!
//! Every sale also sends a receipt through a [`Queue`] to the main thread, which counts them
//! after the buyers are done and the queue is closed: the receipts are the true number of sales,
//! whatever the counter says.
//!
//! ```text
//! cargo run -p conveyor --no-default-features --features thread --example ticket_lock
//! cargo run -p conveyor --no-default-features --features thread --example ticket_lock -- --verbose
//! ```
//!
//! `--verbose` prints every sale, as the Python original does; `--quick` is accepted and changes
//! nothing (the example already runs in well under a second).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;

use conveyor::thread::Queue;

/// Seats in the cinema.
const TICKETS: usize = 100;
/// Buyer threads (the Python original starts ten).
const BUYERS: usize = 10;
/// A buyer stops after this many purchases even if the racy counter never reaches zero, so the
/// unlocked run always ends.
const MAX_PER_BUYER: usize = 10 * TICKETS;

/// A receipt for one ticket: who bought it and how many tickets the buyer saw left after it.
struct Receipt {
    buyer: usize,
    left: usize,
}

/// Starts the buyers, each running `buy_one` until it returns `None` (sold out), sends every
/// receipt through a queue, and returns the receipts once all buyers are done.
fn box_office<F>(buy_one: F) -> Vec<Receipt>
where
    F: Fn() -> Option<usize> + Send + Sync + 'static,
{
    let buy_one = Arc::new(buy_one);
    let receipts = Queue::unbounded();
    // All buyers start together, so they really do compete for the counter.
    let start = Arc::new(Barrier::new(BUYERS));
    let buyers: Vec<_> = (0..BUYERS)
        .map(|buyer| {
            let buy_one = Arc::clone(&buy_one);
            let receipts = receipts.clone();
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait();
                for _ in 0..MAX_PER_BUYER {
                    let Some(left) = buy_one() else { break };
                    receipts
                        .put(Receipt { buyer, left })
                        .expect("the receipt queue stays open while buyers run");
                }
            })
        })
        .collect();
    for b in buyers {
        b.join().expect("a buyer panicked");
    }
    // Every buyer has finished: shut the queue down, then take what is in it until it says Closed.
    receipts.shutdown(false);
    let mut all = Vec::new();
    while let Ok(r) = receipts.get() {
        all.push(r);
    }
    all
}

/// Prints the receipts (with `--verbose`) and a summary of one run.
fn report(title: &str, receipts: &[Receipt], counter_left: usize, verbose: bool) {
    println!("--- {title} ---");
    if verbose {
        for r in receipts {
            println!("buyer {} bought a ticket, {} tickets left", r.buyer, r.left);
        }
    }
    let sold = receipts.len();
    let mut per_buyer = [0usize; BUYERS];
    for r in receipts {
        per_buyer[r.buyer] += 1;
    }
    println!("tickets sold (receipts): {sold} for {TICKETS} seats");
    println!("sales per buyer:         {per_buyer:?}");
    println!("counter at the end:      {counter_left} left");
    let counted = TICKETS - counter_left;
    if sold == counted {
        println!("every sale was counted: the counter fell by exactly {sold}");
    } else {
        println!(
            "lost updates: {} sales were overwritten by another buyer's stale write \
             (the counter fell by {counted}, but {sold} tickets were sold)",
            sold.saturating_sub(counted)
        );
    }
    println!();
}

fn main() {
    let verbose = std::env::args().skip(1).any(|a| a == "--verbose");

    // 1. No lock: read, pause, write back. Each access is atomic; the sale as a whole is not.
    let left = Arc::new(AtomicUsize::new(TICKETS));
    let counter = Arc::clone(&left);
    let receipts = box_office(move || {
        let temp = counter.load(Ordering::Relaxed); // temp = n
        if temp == 0 {
            return None; // sold out
        }
        thread::yield_now(); // time.sleep(0.5): another buyer may run here
        counter.store(temp - 1, Ordering::Relaxed); // n = temp - 1
        Some(temp - 1)
    });
    report(
        "without a lock (load, yield, store)",
        &receipts,
        left.load(Ordering::Relaxed),
        verbose,
    );
    if receipts.len() == TICKETS {
        println!("(this time the threads happened not to interleave; run it again)\n");
    }

    // 2. With a Mutex around the same three steps: mutex.acquire() ... mutex.release().
    let left = Arc::new(Mutex::new(TICKETS));
    let counter = Arc::clone(&left);
    let receipts = box_office(move || {
        let mut n = counter
            .lock()
            .expect("a buyer panicked while holding the lock");
        let temp = *n;
        if temp == 0 {
            return None;
        }
        thread::yield_now(); // the pause now happens while holding the lock
        *n = temp - 1;
        Some(*n)
    });
    let counter_left = *left.lock().expect("no buyer is running any more");
    report("with a Mutex", &receipts, counter_left, verbose);
    assert_eq!(
        receipts.len(),
        TICKETS,
        "with the lock, exactly every seat is sold"
    );
    assert_eq!(counter_left, 0);
}
