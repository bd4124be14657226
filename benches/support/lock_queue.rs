//! The plain lock queue the thread queues are measured against: one `Mutex` around a container,
//! two `Condvar`s, and a count of sleepers on each so that a put or get calls `notify_one` only
//! when someone is actually asleep (an unconditional `notify_one` is a system call every time).
//!
//! The notifier, not the sleeper, takes a sleeper off the count when it wakes it: otherwise
//! every put made between the wake-up and the moment the woken thread runs would see the same
//! sleeper and make another useless system call.
//!
//! It is what a careful programmer writes by hand in twenty lines, so it is the floor a library
//! queue has to beat. The container decides the order: `VecDeque` (FIFO), `Vec` (LIFO),
//! `BinaryHeap<Reverse<_>>` (smallest first, not stable among equal items).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard};

/// A container the lock queue can hold its items in.
pub trait Container: Send {
    /// An empty container with room for `capacity` items.
    fn with_capacity(capacity: usize) -> Self;
    /// Number of items held.
    fn len(&self) -> usize;
    /// Adds an item.
    fn push(&mut self, item: u64);
    /// Removes the next item in this container's order; called only when not empty.
    fn pop(&mut self) -> Option<u64>;
}

impl Container for VecDeque<u64> {
    fn with_capacity(capacity: usize) -> Self {
        VecDeque::with_capacity(capacity)
    }
    fn len(&self) -> usize {
        VecDeque::len(self)
    }
    fn push(&mut self, item: u64) {
        self.push_back(item);
    }
    fn pop(&mut self) -> Option<u64> {
        self.pop_front()
    }
}

impl Container for Vec<u64> {
    fn with_capacity(capacity: usize) -> Self {
        Vec::with_capacity(capacity)
    }
    fn len(&self) -> usize {
        Vec::len(self)
    }
    fn push(&mut self, item: u64) {
        Vec::push(self, item);
    }
    fn pop(&mut self) -> Option<u64> {
        Vec::pop(self)
    }
}

impl Container for BinaryHeap<Reverse<u64>> {
    fn with_capacity(capacity: usize) -> Self {
        BinaryHeap::with_capacity(capacity)
    }
    fn len(&self) -> usize {
        BinaryHeap::len(self)
    }
    fn push(&mut self, item: u64) {
        BinaryHeap::push(self, Reverse(item));
    }
    fn pop(&mut self) -> Option<u64> {
        BinaryHeap::pop(self).map(|Reverse(item)| item)
    }
}

struct State<C> {
    items: C,
    /// Threads asleep on `not_empty` and not yet notified; a put notifies only when this is not
    /// zero, and takes one off as it does.
    sleeping_getters: usize,
    /// Threads asleep on `not_full` and not yet notified; the same for gets.
    sleeping_putters: usize,
}

/// A bounded blocking queue: `Mutex<C>` plus `Condvar`s that are notified only when needed.
pub struct LockQueue<C> {
    state: Mutex<State<C>>,
    not_empty: Condvar,
    not_full: Condvar,
    capacity: usize,
}

impl<C: Container> LockQueue<C> {
    /// A queue holding at most `capacity` items (at least one).
    pub fn bounded(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        LockQueue {
            state: Mutex::new(State {
                items: C::with_capacity(capacity),
                sleeping_getters: 0,
                sleeping_putters: 0,
            }),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<C>> {
        // A benchmark thread that panicked has already failed the run; keep going regardless.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts `item`, sleeping while the queue is full.
    pub fn put(&self, item: u64) {
        let mut state = self.lock();
        while state.items.len() >= self.capacity {
            // The get that makes room takes this thread off the count. A spurious wake-up leaves
            // it counted twice, which costs one needless notify later, never a lost one.
            state.sleeping_putters += 1;
            state = self.not_full.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.items.push(item);
        let wake = state.sleeping_getters > 0;
        if wake {
            state.sleeping_getters -= 1;
        }
        drop(state);
        if wake {
            self.not_empty.notify_one();
        }
    }

    /// Takes the next item, sleeping while the queue is empty.
    pub fn get(&self) -> u64 {
        let mut state = self.lock();
        loop {
            if let Some(item) = state.items.pop() {
                let wake = state.sleeping_putters > 0;
                if wake {
                    state.sleeping_putters -= 1;
                }
                drop(state);
                if wake {
                    self.not_full.notify_one();
                }
                return item;
            }
            state.sleeping_getters += 1;
            state = self
                .not_empty
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
    }
}
