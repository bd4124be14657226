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
    // Written as one expression without early returns so that, for plain keys, it compiles to
    // conditional moves rather than a branch the processor cannot predict on shuffled data.
    a.item.cmp(&b.item).then(a.seq.cmp(&b.seq)) == Ordering::Less
}

/// The depth of index `i` in the tree (the root's is 0).
#[inline]
fn depth(i: usize) -> u32 {
    usize::BITS - 1 - (i + 1).leading_zeros()
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
        // No user code from here on: walk the path from `pos` down to the new leaf, putting the
        // carried entry in each place and carrying on the entry it displaces (each moves one
        // level down), then push the last one carried as the new leaf. Carrying the entry in a
        // local, rather than swapping it along, keeps each step independent of the previous.
        self.next_seq += 1;
        let leaf = self.entries.len();
        let leaf_depth = depth(leaf);
        let mut carry = entry;
        for level in depth(pos)..leaf_depth {
            let node = ((leaf + 1) >> (leaf_depth - level)) - 1;
            carry = std::mem::replace(&mut self.entries[node], carry);
        }
        self.entries.push(carry);
    }

    /// Removes and returns the first item. If `T::cmp` panics, the heap is unchanged.
    pub(crate) fn pop(&mut self) -> Option<T> {
        let n = self.entries.len();
        if n <= 1 {
            return self.entries.pop().map(|e| e.item);
        }
        // The last entry will fill the root's place in a heap of `m` entries. Find where it
        // sinks to as the standard library's heap does, with about one comparison per level:
        // first follow the earlier child of each entry down to the bottom (the path the hole
        // left by the root would take), then climb back up that path while the last entry
        // comes out before the entry on it. The entries on a path come out in path order, so
        // the climb stops where the last entry belongs, usually within a level or two.
        let m = n - 1;
        let last = &self.entries[m];
        let mut pos = 0;
        loop {
            let left = 2 * pos + 1;
            if left >= m {
                break;
            }
            let right = left + 1;
            // Branch-free choice of the earlier child (the comparison's outcome is random).
            pos =
                left + usize::from(right < m && before(&self.entries[right], &self.entries[left]));
        }
        while pos > 0 && before(last, &self.entries[pos]) {
            pos = (pos - 1) / 2;
        }
        // No user code from here on: take the last entry out, then climb from `pos` to the root,
        // putting the carried entry in each place and carrying on the entry it displaces (each
        // moves one level up); the entry carried out of the root is the one returned.
        let mut carry = self.entries.pop()?;
        let mut node = pos;
        loop {
            carry = std::mem::replace(&mut self.entries[node], carry);
            if node == 0 {
                return Some(carry.item);
            }
            node = (node - 1) / 2;
        }
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

    /// Interleaved puts and gets, checked against a sorted model after every step.
    #[test]
    fn interleaved_matches_a_sorted_model() {
        let mut h = Heap::new();
        let mut model: std::collections::BTreeSet<(u8, u64)> = Default::default();
        let mut x: u32 = 777;
        for arrival in 0..5000u64 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            if (x >> 8) % 3 != 0 || model.is_empty() {
                let key = (x >> 16) as u8 % 40;
                h.push((key, arrival));
                model.insert((key, arrival));
            } else {
                assert_eq!(h.pop(), model.pop_first());
            }
            assert!(valid(&h));
            assert_eq!(h.len(), model.len());
        }
        while let Some(expected) = model.pop_first() {
            assert_eq!(h.pop(), Some(expected));
        }
        assert_eq!(h.pop(), None);
    }

    /// A panic at any comparison of a put or a get leaves every entry where it was.
    #[test]
    fn panic_in_any_comparison_changes_nothing() {
        use std::cell::Cell;
        use std::panic::{catch_unwind, AssertUnwindSafe};
        thread_local!(static FUSE: Cell<usize> = const { Cell::new(usize::MAX) });
        #[derive(Debug, PartialEq, Eq)]
        struct Fused(u32);
        impl PartialOrd for Fused {
            fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
                Some(self.cmp(o))
            }
        }
        impl Ord for Fused {
            fn cmp(&self, o: &Self) -> Ordering {
                let left = FUSE.with(|f| f.get());
                assert!(left != 0, "fuse blew (on purpose)");
                FUSE.with(|f| f.set(left.saturating_sub(1)));
                self.0.cmp(&o.0)
            }
        }
        let snapshot = |h: &Heap<Fused>| -> Vec<(u32, u64)> {
            h.entries.iter().map(|e| (e.item.0, e.seq)).collect()
        };
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let mut h = Heap::new();
        let mut x: u32 = 99;
        for _ in 0..300 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            h.push(Fused((x >> 16) % 1000));
        }
        for fuse in 0..12 {
            let before_put = snapshot(&h);
            FUSE.with(|f| f.set(fuse));
            let put = catch_unwind(AssertUnwindSafe(|| h.push(Fused(0))));
            FUSE.with(|f| f.set(usize::MAX));
            if put.is_err() {
                assert_eq!(snapshot(&h), before_put, "a panicking put moved entries");
            } else {
                assert!(h.pop().is_some_and(|f| f.0 == 0));
            }
            let before_get = snapshot(&h);
            FUSE.with(|f| f.set(fuse));
            let got = catch_unwind(AssertUnwindSafe(|| h.pop()));
            FUSE.with(|f| f.set(usize::MAX));
            if got.is_err() {
                assert_eq!(snapshot(&h), before_get, "a panicking get moved entries");
            }
            assert!(valid(&h));
        }
        std::panic::set_hook(hook);
    }
}
