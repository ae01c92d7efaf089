//! Fixed-capacity alarm queue.
//!
//! QSM §4: the core is a single event-driven thread that owns an *alarm
//! queue*; every protocol timeout is an alarm in it, and the thread sleeps
//! until the earliest one. Here the host asks [`Timers::next_deadline`] for
//! that instant and calls [`Timers::pop_expired`] when it has passed.
//!
//! Timers are named by a key that maps to a slot index (like quinn-proto's
//! timer table indexed by an enum), but `N` may be larger than any enum, so a
//! per-sink or per-peer timer can use its slot number as key. At most one
//! deadline exists per key: setting it again replaces the old one.
//!
//! Design decisions (QSM is silent on them):
//! - Expiry is inclusive: a deadline `at` is expired when `at <= now`.
//! - Equal deadlines fire in increasing key index, so runs replay exactly.
//! - A key whose `index()` does not round-trip through `from_index` (a
//!   broken [`TimerKey`] impl) or is `>= N` is refused at `set`, so
//!   `pop_expired` can always hand a valid key back.

use core::marker::PhantomData;

use crate::heap::IndexedHeap;
use crate::time::Instant;

/// A timer name convertible to and from a slot index in `0..N`.
pub trait TimerKey: Copy {
    /// The key's slot index.
    fn index(self) -> usize;
    /// The key for a slot index, `None` if no key has that index.
    fn from_index(index: usize) -> Option<Self>;
}

impl TimerKey for usize {
    fn index(self) -> usize {
        self
    }
    fn from_index(index: usize) -> Option<Self> {
        Some(index)
    }
}

impl TimerKey for u16 {
    fn index(self) -> usize {
        usize::from(self)
    }
    fn from_index(index: usize) -> Option<Self> {
        u16::try_from(index).ok()
    }
}

/// Why [`Timers::set`] refused a key. Nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TimerError {
    /// The key's index is not below the capacity `N`, or does not map back
    /// to the same key.
    BadKey,
}

/// An alarm queue of at most `N` timers, one per key.
///
/// `set`, `cancel` and `pop_expired` are O(log N); `get` and
/// `next_deadline` are O(1).
#[derive(Clone, Debug)]
pub struct Timers<K: TimerKey, const N: usize> {
    deadlines: [Instant; N],
    heap: IndexedHeap<N>,
    _key: PhantomData<K>,
}

impl<K: TimerKey, const N: usize> Default for Timers<K, N> {
    fn default() -> Self {
        Self::new()
    }
}

/// Heap order: earlier deadline first, then smaller index.
fn earlier<const N: usize>(deadlines: &[Instant; N]) -> impl Fn(u16, u16) -> bool + '_ {
    move |a, b| {
        let da = deadlines
            .get(usize::from(a))
            .copied()
            .unwrap_or(Instant::MAX);
        let db = deadlines
            .get(usize::from(b))
            .copied()
            .unwrap_or(Instant::MAX);
        (da, a) < (db, b)
    }
}

impl<K: TimerKey, const N: usize> Timers<K, N> {
    /// An alarm queue with no timer set.
    pub const fn new() -> Self {
        Timers {
            deadlines: [Instant::MAX; N],
            heap: IndexedHeap::new(),
            _key: PhantomData,
        }
    }

    fn slot(key: K) -> Result<u16, TimerError> {
        let i = key.index();
        let back = K::from_index(i).map(K::index);
        if i < N && back == Some(i) {
            u16::try_from(i).map_err(|_| TimerError::BadKey)
        } else {
            Err(TimerError::BadKey)
        }
    }

    /// Arms `key` to expire at `at`, replacing any earlier deadline of the
    /// same key. O(log N).
    pub fn set(&mut self, key: K, at: Instant) -> Result<(), TimerError> {
        let s = Self::slot(key)?;
        self.deadlines[usize::from(s)] = at;
        let result = if self.heap.contains(s) {
            self.heap.update(s, earlier(&self.deadlines))
        } else {
            self.heap.push(s, earlier(&self.deadlines))
        };
        // `s < N` was checked, so neither call can fail.
        debug_assert!(result.is_ok());
        Ok(())
    }

    /// Disarms `key`, returning the deadline it had. O(log N).
    pub fn cancel(&mut self, key: K) -> Option<Instant> {
        let s = Self::slot(key).ok()?;
        let at = self.get(key)?;
        self.heap.remove(s, earlier(&self.deadlines)).ok()?;
        Some(at)
    }

    /// The deadline of `key`, if armed. O(1).
    pub fn get(&self, key: K) -> Option<Instant> {
        let s = Self::slot(key).ok()?;
        if self.heap.contains(s) {
            self.deadlines.get(usize::from(s)).copied()
        } else {
            None
        }
    }

    /// True when `key` is armed.
    pub fn is_set(&self, key: K) -> bool {
        self.get(key).is_some()
    }

    /// The earliest deadline, `None` when no timer is armed. O(1).
    pub fn next_deadline(&self) -> Option<Instant> {
        let s = self.heap.peek()?;
        self.deadlines.get(usize::from(s)).copied()
    }

    /// Disarms and returns the earliest timer whose deadline is `<= now`
    /// (ties: smaller key index first). O(log N). Call it in a loop to drain
    /// every expired timer.
    pub fn pop_expired(&mut self, now: Instant) -> Option<K> {
        loop {
            let at = self.next_deadline()?;
            if at > now {
                return None;
            }
            let s = self.heap.pop(earlier(&self.deadlines))?;
            // `set` only admits round-tripping keys, so this never skips.
            if let Some(k) = K::from_index(usize::from(s)) {
                return Some(k);
            }
        }
    }

    /// Number of armed timers.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when no timer is armed.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Disarms every timer. O(N).
    pub fn clear(&mut self) {
        self.heap.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::vec::Vec;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Kind {
        Retransmit,
        Idle,
        Pledge,
    }

    impl TimerKey for Kind {
        fn index(self) -> usize {
            self as usize
        }
        fn from_index(i: usize) -> Option<Self> {
            [Kind::Retransmit, Kind::Idle, Kind::Pledge].get(i).copied()
        }
    }

    /// A key whose index does not round-trip.
    #[derive(Clone, Copy, Debug)]
    struct Liar;
    impl TimerKey for Liar {
        fn index(self) -> usize {
            0
        }
        fn from_index(_: usize) -> Option<Self> {
            None
        }
    }

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn enum_keys_fire_in_deadline_order() {
        let mut tm = Timers::<Kind, 3>::new();
        assert_eq!(tm.next_deadline(), None);
        tm.set(Kind::Idle, t(30)).unwrap();
        tm.set(Kind::Retransmit, t(10)).unwrap();
        tm.set(Kind::Pledge, t(20)).unwrap();
        assert_eq!(tm.next_deadline(), Some(t(10)));
        assert_eq!(tm.pop_expired(t(9)), None);
        assert_eq!(tm.pop_expired(t(25)), Some(Kind::Retransmit));
        assert_eq!(tm.pop_expired(t(25)), Some(Kind::Pledge));
        assert_eq!(tm.pop_expired(t(25)), None);
        assert_eq!(tm.next_deadline(), Some(t(30)));
        assert_eq!(tm.len(), 1);
    }

    #[test]
    fn set_replaces_and_cancel_disarms() {
        let mut tm = Timers::<Kind, 3>::new();
        tm.set(Kind::Idle, t(30)).unwrap();
        tm.set(Kind::Idle, t(5)).unwrap();
        assert_eq!(tm.len(), 1);
        assert_eq!(tm.get(Kind::Idle), Some(t(5)));
        tm.set(Kind::Idle, t(50)).unwrap();
        assert_eq!(tm.next_deadline(), Some(t(50)));
        assert_eq!(tm.cancel(Kind::Idle), Some(t(50)));
        assert_eq!(tm.cancel(Kind::Idle), None);
        assert!(!tm.is_set(Kind::Idle));
        assert_eq!(tm.pop_expired(Instant::MAX), None);
    }

    #[test]
    fn ties_fire_by_key_index_and_expiry_is_inclusive() {
        let mut tm = Timers::<usize, 8>::new();
        for k in [5, 2, 7, 0] {
            tm.set(k, t(1)).unwrap();
        }
        let fired: Vec<usize> = core::iter::from_fn(|| tm.pop_expired(t(1))).collect();
        assert_eq!(fired, [0, 2, 5, 7]);
    }

    #[test]
    fn bad_keys_are_refused() {
        let mut tm = Timers::<usize, 4>::new();
        assert_eq!(tm.set(4, t(1)), Err(TimerError::BadKey));
        assert_eq!(tm.get(4), None);
        assert_eq!(tm.cancel(99), None);
        assert!(tm.is_empty());
        let mut liar = Timers::<Liar, 4>::new();
        assert_eq!(liar.set(Liar, t(1)), Err(TimerError::BadKey));
        assert_eq!(liar.next_deadline(), None);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Set(u16, u64),
        Cancel(u16),
        Pop(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u16..12, 0u64..50).prop_map(|(k, at)| Op::Set(k, at)),
            (0u16..12).prop_map(Op::Cancel),
            (0u64..60).prop_map(Op::Pop),
        ]
    }

    proptest! {
        /// Timers agree with a map model that scans for the minimum.
        #[test]
        fn matches_model(ops in proptest::collection::vec(op(), 0..200)) {
            let mut tm = Timers::<u16, 10>::new();
            let mut model: BTreeMap<u16, u64> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Set(k, at) => {
                        let r = tm.set(k, Instant::from_micros(at));
                        if k < 10 {
                            prop_assert_eq!(r, Ok(()));
                            model.insert(k, at);
                        } else {
                            prop_assert_eq!(r, Err(TimerError::BadKey));
                        }
                    }
                    Op::Cancel(k) => {
                        let want = model.remove(&k).map(Instant::from_micros);
                        prop_assert_eq!(tm.cancel(k), want);
                    }
                    Op::Pop(now) => {
                        let min = model.iter().map(|(&k, &at)| (at, k)).min();
                        let want = match min {
                            Some((at, k)) if at <= now => { model.remove(&k); Some(k) }
                            _ => None,
                        };
                        prop_assert_eq!(tm.pop_expired(Instant::from_micros(now)), want);
                    }
                }
                prop_assert_eq!(tm.len(), model.len());
                prop_assert_eq!(tm.next_deadline(), model.values().min().map(|&a| Instant::from_micros(a)));
                for k in 0..12u16 {
                    prop_assert_eq!(tm.get(k), model.get(&k).map(|&a| Instant::from_micros(a)));
                }
            }
        }
    }
}
