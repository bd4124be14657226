//! The store behind `PriorityQueue`: a binary min-heap that is FIFO among equal items and stays
//! valid when the item type's `Ord` panics.
//!
//! Stability: every entry carries a sequence number taken at put time, and entries compare by
//! item first and sequence number second, so of two equal items the one put first comes out
//! first.
//!
//! Panic safety: both sift operations first *find* the final position of the moving entry using
//! only comparisons (which read, and may panic), and only then *move* entries along the path to
//! that position (which never calls user code). A panic in `Ord` therefore happens while the heap
//! is untouched: a panicking put drops its own item during unwinding and leaves every other item
//! in place, and a panicking get leaves the item it was taking in the queue.

use std::cmp::Ordering;

/// An item with its arrival number.
#[derive(Debug)]
struct Entry<T> {
    item: T,
    seq: u64,
}

/// Whether `a` comes out before `b`: smaller item first, then earlier arrival.
#[inline]
fn before<T: Ord>(a: &Entry<T>, b: &Entry<T>) -> bool {
    match a.item.cmp(&b.item) {
        Ordering::Less => true,
        Ordering::Greater => false,
        Ordering::Equal => a.seq < b.seq,
    }
}

/// A stable, panic-safe binary min-heap.
///
/// Invariant: for every index `i > 0`, `!before(&entries[i], &entries[(i - 1) / 2])`.
#[derive(Debug)]
pub(crate) struct Heap<T> {
    entries: Vec<Entry<T>>,
    next_seq: u64,
}

impl<T: Ord> Heap<T> {
    /// An empty heap.
    pub(crate) fn new() -> Self {
        Heap {
            entries: Vec::new(),
            next_seq: 0,
        }
    }

    /// The number of items.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Adds `item`. If `T::cmp` panics, `item` is dropped and the heap is unchanged.
    pub(crate) fn push(&mut self, item: T) {
        let entry = Entry {
            item,
            seq: self.next_seq,
        };
        // Find where the entry ends up: climb while it comes out before its parent.
        let mut pos = self.entries.len();
        while pos > 0 {
            let parent = (pos - 1) / 2;
            if before(&entry, &self.entries[parent]) {
                pos = parent;
            } else {
                break;
            }
        }
        // No user code from here on.
        self.next_seq += 1;
        self.entries.push(entry);
        let mut i = self.entries.len() - 1;
        while i > pos {
            let parent = (i - 1) / 2;
            self.entries.swap(i, parent);
            i = parent;
        }
    }

    /// Removes and returns the first item. If `T::cmp` panics, the heap is unchanged.
    pub(crate) fn pop(&mut self) -> Option<T> {
        let n = self.entries.len();
        if n <= 1 {
            return self.entries.pop().map(|e| e.item);
        }
        // The last entry will fill the root's place in a heap of `m` entries; find where it sinks
        // to: descend while the earlier of the two children comes out before it.
        let m = n - 1;
        let last = &self.entries[m];
        let mut pos = 0;
        loop {
            let left = 2 * pos + 1;
            if left >= m {
                break;
            }
            let right = left + 1;
            let child = if right < m && before(&self.entries[right], &self.entries[left]) {
                right
            } else {
                left
            };
            if before(&self.entries[child], last) {
                pos = child;
            } else {
                break;
            }
        }
        // No user code from here on: move the last entry to the root, then down the path from
        // the root to `pos` (the ancestors of `pos`, top down), each entry on it moving up.
        let first = self.entries.swap_remove(0);
        let depth = usize::BITS - 1 - (pos + 1).leading_zeros();
        let mut cur = 0;
        for level in 1..=depth {
            let next = ((pos + 1) >> (depth - level)) - 1;
            self.entries.swap(cur, next);
            cur = next;
        }
        Some(first.item)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Checks the heap invariant.
    fn valid<T: Ord>(h: &Heap<T>) -> bool {
        (1..h.entries.len()).all(|i| !before(&h.entries[i], &h.entries[(i - 1) / 2]))
    }

    #[test]
    fn sorts_and_is_stable() {
        let mut h = Heap::new();
        // (key, arrival): order by key only, so arrival shows stability.
        #[derive(Debug)]
        struct K(u8, u32);
        impl PartialEq for K {
            fn eq(&self, o: &Self) -> bool {
                self.0 == o.0
            }
        }
        impl Eq for K {}
        impl PartialOrd for K {
            fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
                Some(self.cmp(o))
            }
        }
        impl Ord for K {
            fn cmp(&self, o: &Self) -> Ordering {
                self.0.cmp(&o.0)
            }
        }
        let mut x: u32 = 12345;
        for arrival in 0..500 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            h.push(K((x >> 16) as u8 % 7, arrival));
            assert!(valid(&h));
        }
        let mut prev: Option<K> = None;
        while let Some(k) = h.pop() {
            assert!(valid(&h));
            if let Some(p) = &prev {
                assert!(p.0 < k.0 || (p.0 == k.0 && p.1 < k.1), "{p:?} then {k:?}");
            }
            prev = Some(k);
        }
    }
}
