//! Fixed-capacity indexed binary heap: the priority queue under every BASEL
//! queue and the alarm queue.
//!
//! BASEL §6 ("BASEL Internals") reduces a buffering architecture to priority
//! queues that keep *pointers* to a single copy of the packets, ordered by a
//! user-defined priority that is fixed during operation. This is that
//! structure: it holds slot indices `0..N` (`u16`) and never the keys
//! themselves. The order is given by a comparator `less(a, b)` passed to every
//! mutating call, so the key data lives wherever the caller keeps it (packet
//! metadata for queues, deadlines for timers) and one key table can be indexed
//! by several heaps at once (processing order and admission order).
//!
//! Design decisions:
//! - A position table (`pos[slot]`) makes `contains` O(1) and arbitrary
//!   `remove` O(log n), which push-out and timer cancellation need.
//! - The comparator must be a strict weak order that does not change while an
//!   element is stored (BASEL §6: priorities are fixed during operation). If a
//!   key does change, the caller says so with [`IndexedHeap::update`]. A
//!   comparator that breaks these rules yields a wrong order, never a panic or
//!   an out-of-bounds access: all indices come from the heap's own tables.
//! - `N` must be below `u16::MAX` (checked at compile time), because
//!   `u16::MAX` marks an absent slot in the position table.

/// Why a heap operation was refused. The heap is unchanged after an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HeapError {
    /// The slot is not below the heap's capacity `N`.
    OutOfRange,
    /// The slot is already in the heap (on `push`).
    AlreadyPresent,
    /// The slot is not in the heap (on `remove` / `update`).
    NotPresent,
}

/// Marks a slot that is not in the heap.
const ABSENT: u16 = u16::MAX;

/// A binary min-heap over the slot indices `0..N`, ordered by a
/// caller-supplied comparator. All operations are O(log n) or O(1) and never
/// allocate.
#[derive(Clone, Debug)]
pub struct IndexedHeap<const N: usize> {
    /// `heap[..len]` is the binary heap of slots.
    heap: [u16; N],
    /// `pos[slot]` is the slot's index in `heap`, or [`ABSENT`].
    pos: [u16; N],
    len: u16,
}

impl<const N: usize> Default for IndexedHeap<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> IndexedHeap<N> {
    /// Compile-time guard: slot indices and positions must fit a `u16` with
    /// `u16::MAX` left free as the "absent" marker.
    const CAPACITY_FITS: () = assert!(
        N < u16::MAX as usize,
        "IndexedHeap capacity must be < 65535"
    );

    /// An empty heap.
    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::CAPACITY_FITS;
        IndexedHeap {
            heap: [0; N],
            pos: [ABSENT; N],
            len: 0,
        }
    }

    /// The capacity `N`.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Number of slots in the heap.
    pub const fn len(&self) -> usize {
        self.len as usize
    }

    /// True when the heap holds no slot.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when `slot` is in the heap (false for out-of-range slots).
    pub fn contains(&self, slot: u16) -> bool {
        self.pos
            .get(usize::from(slot))
            .is_some_and(|&p| p != ABSENT)
    }

    /// The first slot in comparator order (the one no other slot is `less`
    /// than), without removing it. O(1).
    pub fn peek(&self) -> Option<u16> {
        if self.len == 0 {
            None
        } else {
            self.heap.first().copied()
        }
    }

    /// The slots in the heap, in internal (not sorted) order.
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        self.heap.iter().take(self.len()).copied()
    }

    /// Removes every slot. O(n).
    pub fn clear(&mut self) {
        for i in 0..self.len() {
            let s = usize::from(self.heap[i]);
            self.pos[s] = ABSENT;
        }
        self.len = 0;
    }

    /// Inserts `slot`. O(log n).
    ///
    /// Errors: [`HeapError::OutOfRange`] if `slot >= N`,
    /// [`HeapError::AlreadyPresent`] if it is already in the heap.
    pub fn push(
        &mut self,
        slot: u16,
        mut less: impl FnMut(u16, u16) -> bool,
    ) -> Result<(), HeapError> {
        let s = usize::from(slot);
        match self.pos.get(s) {
            None => return Err(HeapError::OutOfRange),
            Some(&p) if p != ABSENT => return Err(HeapError::AlreadyPresent),
            Some(_) => {}
        }
        // `slot` is absent and all present slots are distinct and < N, so
        // len < N here and the write below is in bounds.
        let i = self.len;
        self.heap[usize::from(i)] = slot;
        self.pos[s] = i;
        self.len += 1;
        self.sift_up(usize::from(i), &mut less);
        Ok(())
    }

    /// Removes and returns the first slot in comparator order. O(log n).
    pub fn pop(&mut self, mut less: impl FnMut(u16, u16) -> bool) -> Option<u16> {
        let top = self.peek()?;
        self.remove_at(0, &mut less);
        Some(top)
    }

    /// Removes `slot` wherever it is in the heap. O(log n).
    ///
    /// Errors: [`HeapError::OutOfRange`] or [`HeapError::NotPresent`].
    pub fn remove(
        &mut self,
        slot: u16,
        mut less: impl FnMut(u16, u16) -> bool,
    ) -> Result<(), HeapError> {
        let i = self.position(slot)?;
        self.remove_at(i, &mut less);
        Ok(())
    }

    /// Restores the heap order after the key of `slot` changed. O(log n).
    ///
    /// Errors: [`HeapError::OutOfRange`] or [`HeapError::NotPresent`].
    pub fn update(
        &mut self,
        slot: u16,
        mut less: impl FnMut(u16, u16) -> bool,
    ) -> Result<(), HeapError> {
        let i = self.position(slot)?;
        let i = self.sift_up(i, &mut less);
        self.sift_down(i, &mut less);
        Ok(())
    }

    fn position(&self, slot: u16) -> Result<usize, HeapError> {
        match self.pos.get(usize::from(slot)) {
            None => Err(HeapError::OutOfRange),
            Some(&ABSENT) => Err(HeapError::NotPresent),
            Some(&p) => Ok(usize::from(p)),
        }
    }

    /// Removes the element at heap index `i < len`.
    fn remove_at<F: FnMut(u16, u16) -> bool>(&mut self, i: usize, less: &mut F) {
        let last = self.len() - 1;
        let removed = self.heap[i];
        self.pos[usize::from(removed)] = ABSENT;
        self.len -= 1;
        if i != last {
            let moved = self.heap[last];
            self.set(i, moved);
            // The moved element may belong above or below `i`.
            let i = self.sift_up(i, less);
            self.sift_down(i, less);
        }
    }

    fn set(&mut self, i: usize, slot: u16) {
        self.heap[i] = slot;
        // i < len <= N < u16::MAX, so the cast is lossless.
        self.pos[usize::from(slot)] = i as u16;
    }

    /// Moves the element at `i` up while it is `less` than its parent and
    /// returns its final index.
    fn sift_up<F: FnMut(u16, u16) -> bool>(&mut self, mut i: usize, less: &mut F) -> usize {
        let slot = self.heap[i];
        while i > 0 {
            let parent = (i - 1) / 2;
            let p = self.heap[parent];
            if !less(slot, p) {
                break;
            }
            self.set(i, p);
            i = parent;
        }
        self.set(i, slot);
        i
    }

    /// Moves the element at `i` down while a child is `less` than it.
    fn sift_down<F: FnMut(u16, u16) -> bool>(&mut self, mut i: usize, less: &mut F) {
        let len = self.len();
        let slot = self.heap[i];
        loop {
            let left = 2 * i + 1;
            if left >= len {
                break;
            }
            let right = left + 1;
            let mut child = left;
            if right < len && less(self.heap[right], self.heap[left]) {
                child = right;
            }
            let c = self.heap[child];
            if !less(c, slot) {
                break;
            }
            self.set(i, c);
            i = child;
        }
        self.set(i, slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;
    use std::vec::Vec;

    #[test]
    fn push_pop_in_order() {
        let keys = [5u32, 1, 4, 1, 3, 9, 2, 6];
        let less = |a: u16, b: u16| (keys[a as usize], a) < (keys[b as usize], b);
        let mut h = IndexedHeap::<8>::new();
        for s in 0..8 {
            h.push(s, less).unwrap();
        }
        assert_eq!(h.len(), 8);
        let mut out = Vec::new();
        while let Some(s) = h.pop(less) {
            out.push(s);
        }
        assert_eq!(out, [1, 3, 6, 4, 2, 0, 7, 5]);
        assert!(h.is_empty());
    }

    #[test]
    fn errors_change_nothing() {
        let less = |a: u16, b: u16| a < b;
        let mut h = IndexedHeap::<3>::new();
        assert_eq!(h.push(3, less), Err(HeapError::OutOfRange));
        assert_eq!(h.push(u16::MAX, less), Err(HeapError::OutOfRange));
        h.push(1, less).unwrap();
        assert_eq!(h.push(1, less), Err(HeapError::AlreadyPresent));
        assert_eq!(h.remove(0, less), Err(HeapError::NotPresent));
        assert_eq!(h.remove(7, less), Err(HeapError::OutOfRange));
        assert_eq!(h.update(2, less), Err(HeapError::NotPresent));
        assert_eq!(h.len(), 1);
        assert!(h.contains(1) && !h.contains(0) && !h.contains(500));
        assert_eq!(h.peek(), Some(1));
    }

    #[test]
    fn capacity_one_and_zero() {
        let less = |a: u16, b: u16| a < b;
        let mut h = IndexedHeap::<1>::new();
        h.push(0, less).unwrap();
        assert_eq!(h.push(0, less), Err(HeapError::AlreadyPresent));
        assert_eq!(h.pop(less), Some(0));
        assert_eq!(h.pop(less), None);
        let mut z = IndexedHeap::<0>::new();
        assert_eq!(z.push(0, less), Err(HeapError::OutOfRange));
        assert_eq!(z.peek(), None);
    }

    #[test]
    fn clear_resets_positions() {
        let less = |a: u16, b: u16| a < b;
        let mut h = IndexedHeap::<4>::new();
        for s in 0..4 {
            h.push(s, less).unwrap();
        }
        h.clear();
        assert!(h.is_empty());
        assert!(!h.contains(2));
        h.push(2, less).unwrap();
        assert_eq!(h.peek(), Some(2));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Push(u16, u32),
        Pop,
        Remove(u16),
        Update(u16, u32),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u16..20, 0u32..8).prop_map(|(s, k)| Op::Push(s, k)),
            Just(Op::Pop),
            (0u16..20).prop_map(Op::Remove),
            (0u16..20, 0u32..8).prop_map(|(s, k)| Op::Update(s, k)),
        ]
    }

    proptest! {
        /// Random operations agree with an ordered-set model; slots 16..20
        /// are out of range and must be refused.
        #[test]
        fn matches_model(ops in proptest::collection::vec(op(), 0..200)) {
            let mut keys = [0u32; 16];
            let mut h = IndexedHeap::<16>::new();
            let mut model: BTreeSet<(u32, u16)> = BTreeSet::new();
            for op in ops {
                match op {
                    Op::Push(s, k) => {
                        let present = model.iter().any(|&(_, x)| x == s);
                        if s >= 16 {
                            prop_assert_eq!(h.push(s, |a, b| (keys[a as usize], a) < (keys[b as usize], b)), Err(HeapError::OutOfRange));
                        } else if present {
                            prop_assert_eq!(h.push(s, |a, b| (keys[a as usize], a) < (keys[b as usize], b)), Err(HeapError::AlreadyPresent));
                        } else {
                            keys[s as usize] = k;
                            h.push(s, |a, b| (keys[a as usize], a) < (keys[b as usize], b)).unwrap();
                            model.insert((k, s));
                        }
                    }
                    Op::Pop => {
                        let want = model.pop_first().map(|(_, s)| s);
                        prop_assert_eq!(h.pop(|a, b| (keys[a as usize], a) < (keys[b as usize], b)), want);
                    }
                    Op::Remove(s) => {
                        let entry = model.iter().find(|&&(_, x)| x == s).copied();
                        let got = h.remove(s, |a, b| (keys[a as usize], a) < (keys[b as usize], b));
                        match entry {
                            Some(e) => { prop_assert_eq!(got, Ok(())); model.remove(&e); }
                            None if s >= 16 => prop_assert_eq!(got, Err(HeapError::OutOfRange)),
                            None => prop_assert_eq!(got, Err(HeapError::NotPresent)),
                        }
                    }
                    Op::Update(s, k) => {
                        if let Some(e) = model.iter().find(|&&(_, x)| x == s).copied() {
                            model.remove(&e);
                            model.insert((k, s));
                            keys[s as usize] = k;
                            prop_assert_eq!(h.update(s, |a, b| (keys[a as usize], a) < (keys[b as usize], b)), Ok(()));
                        }
                    }
                }
                prop_assert_eq!(h.len(), model.len());
                prop_assert_eq!(h.peek(), model.first().map(|&(_, s)| s));
                for s in 0..20u16 {
                    prop_assert_eq!(h.contains(s), model.iter().any(|&(_, x)| x == s));
                }
            }
        }
    }
}
