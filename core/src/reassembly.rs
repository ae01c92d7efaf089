//! Reassembly of messages larger than one datagram.
//!
//! A sender cuts a message that does not fit in one frame into `Fragment`
//! records (offset, total length), one per datagram, in order. The receiver
//! keeps a fixed number `R` of reassembly slots; each holds the message's
//! bytes in the node's payload pool and the byte ranges received so far, so
//! duplicated, reordered or overlapping fragments are harmless. A slot that
//! makes no progress for the reassembly timeout is freed and counted; when all
//! slots are busy, a fragment of a new message is dropped (counted), never one
//! of a message already under way. Lookup scans the `R` slots: `R` is a small
//! constant (the number of large messages in flight towards one node).

use crate::addr::NodeId;
use crate::pool::{Handle, Pool};
use crate::time::Instant;

/// Most disjoint byte ranges tracked per message. Fragments of one sender
/// arrive mostly in order, so ranges merge quickly; a message whose ranges
/// would exceed this is abandoned (counted) rather than tracked unboundedly.
pub const MAX_RANGES: usize = 8;

/// Identity of a message under reassembly.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Key {
    /// Sender.
    pub from: NodeId,
    /// Group, or `u32::MAX` for point to point.
    pub group: u32,
    /// Sender's message id.
    pub msg: u32,
}

#[derive(Clone, Debug)]
struct Slot {
    key: Key,
    handle: Handle,
    ranges: RangeSet,
    deadline: Instant,
}

/// Why a fragment was not taken.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FragmentDrop {
    /// No slot can be used (only when `R` is 0).
    NoSlot,
    /// The payload pool (or the reassembly budget) cannot hold the message.
    NoSpace,
    /// The fragment disagrees with earlier ones on the total length.
    Inconsistent,
    /// Too many holes to track.
    TooManyRanges,
}

/// What a fragment did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FragmentOutcome {
    /// Stored; the message is still incomplete.
    Stored,
    /// The message is complete: its bytes are in `Handle`, which the caller
    /// now owns (and must free).
    Complete(Handle),
}

/// `R` reassembly slots.
pub struct Reassembly<const R: usize> {
    slots: [Option<Slot>; R],
    bytes_in_use: usize,
}

impl<const R: usize> Default for Reassembly<R> {
    fn default() -> Self {
        Self::new()
    }
}

/// Disjoint byte ranges received of one message (at most [`MAX_RANGES`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RangeSet {
    r: [(u32, u32); MAX_RANGES],
    n: u8,
}

impl RangeSet {
    /// Adds `[start, end)`, merging with overlapping or touching ranges.
    /// Returns false, changing nothing, when the result needs more than
    /// [`MAX_RANGES`] ranges.
    pub fn insert(&mut self, start: u32, end: u32) -> bool {
        let (mut s, mut e) = (start, end);
        let mut out = [(0u32, 0u32); MAX_RANGES];
        let mut k = 0;
        for &(a, b) in &self.r[..self.n as usize] {
            if b < s || a > e {
                out[k] = (a, b);
                k += 1;
            } else {
                s = s.min(a);
                e = e.max(b);
            }
        }
        if k == MAX_RANGES {
            return false;
        }
        out[k] = (s, e);
        self.r = out;
        self.n = (k + 1) as u8;
        true
    }

    /// Whether the ranges cover exactly `[0, total)`.
    pub fn covers(&self, total: u32) -> bool {
        self.n == 1 && self.r[0] == (0, total)
    }

    /// Number of disjoint ranges.
    pub fn len(&self) -> usize {
        self.n as usize
    }

    /// True when nothing was received.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
}

impl<const R: usize> Reassembly<R> {
    /// No message under way.
    pub fn new() -> Self {
        Reassembly {
            slots: core::array::from_fn(|_| None),
            bytes_in_use: 0,
        }
    }

    /// Pool bytes held by incomplete messages.
    pub fn bytes_in_use(&self) -> usize {
        self.bytes_in_use
    }

    /// Messages under way.
    pub fn in_progress(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    fn find(&self, key: &Key) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| s.as_ref().is_some_and(|s| s.key == *key))
    }

    /// Checks, without changing anything, whether the fragment would be
    /// taken, and whether it would complete its message.
    pub fn check<const B: usize>(
        &self,
        pool: &Pool<B>,
        budget: usize,
        key: &Key,
        total: u32,
        offset: u32,
        len: u32,
    ) -> Result<bool, FragmentDrop> {
        let end = offset.saturating_add(len);
        match self.find(key) {
            Some(i) => {
                let slot = self.slots[i].as_ref().ok_or(FragmentDrop::NoSlot)?;
                if slot.handle.len() != total as usize {
                    return Err(FragmentDrop::Inconsistent);
                }
                let mut r = slot.ranges;
                if !r.insert(offset, end) {
                    return Err(FragmentDrop::TooManyRanges);
                }
                Ok(r.covers(total))
            }
            None => {
                // Room once the least recently progressing message, if all
                // slots are busy, is evicted.
                let freed = match self.victim() {
                    Some(None) => 0,
                    Some(Some(i)) => self.slots[i].as_ref().map_or(0, |s| s.handle.len()),
                    None => return Err(FragmentDrop::NoSlot),
                };
                let pool_free =
                    pool.free_bytes() + Pool::<B>::blocks_for(freed) * crate::pool::BLOCK_LEN;
                if Pool::<B>::blocks_for(total as usize) * crate::pool::BLOCK_LEN > pool_free
                    || (self.bytes_in_use - freed).saturating_add(total as usize) > budget
                {
                    return Err(FragmentDrop::NoSpace);
                }
                Ok(offset == 0 && end == total)
            }
        }
    }

    /// The slot a new message would take: `Some(None)` a free one,
    /// `Some(Some(i))` by evicting slot `i`, `None` when `R` is 0.
    fn victim(&self) -> Option<Option<usize>> {
        if self.slots.iter().any(|s| s.is_none()) {
            return Some(None);
        }
        let i = (0..R).min_by_key(|&i| self.slots[i].as_ref().map(|s| s.deadline))?;
        Some(Some(i))
    }

    /// Takes a fragment that [`Reassembly::check`] accepted. Returns, besides
    /// the outcome, the key of a message evicted to make room, if any.
    #[allow(clippy::too_many_arguments)]
    pub fn apply<const B: usize>(
        &mut self,
        pool: &mut Pool<B>,
        budget: usize,
        key: Key,
        total: u32,
        offset: u32,
        bytes: &[u8],
        deadline: Instant,
    ) -> Result<(FragmentOutcome, Option<Key>), FragmentDrop> {
        let len = u32::try_from(bytes.len()).map_err(|_| FragmentDrop::Inconsistent)?;
        self.check(pool, budget, &key, total, offset, len)?;
        let mut evicted = None;
        let i = match self.find(&key) {
            Some(i) => i,
            None => {
                let i = match self.victim() {
                    Some(Some(i)) => {
                        if let Some(old) = self.slots[i].take() {
                            self.bytes_in_use -= old.handle.len();
                            pool.free(old.handle);
                            evicted = Some(old.key);
                        }
                        i
                    }
                    Some(None) => self
                        .slots
                        .iter()
                        .position(|s| s.is_none())
                        .ok_or(FragmentDrop::NoSlot)?,
                    None => return Err(FragmentDrop::NoSlot),
                };
                let handle = pool
                    .alloc(total as usize)
                    .map_err(|_| FragmentDrop::NoSpace)?;
                self.bytes_in_use += total as usize;
                self.slots[i] = Some(Slot {
                    key,
                    handle,
                    ranges: RangeSet::default(),
                    deadline,
                });
                i
            }
        };
        let Some(slot) = self.slots[i].as_mut() else {
            return Err(FragmentDrop::NoSlot);
        };
        pool.write(slot.handle, offset as usize, bytes);
        // check() proved the insertion fits.
        slot.ranges.insert(offset, offset + len);
        slot.deadline = deadline;
        if slot.ranges.covers(total) {
            let handle = slot.handle;
            self.slots[i] = None;
            self.bytes_in_use -= handle.len();
            Ok((FragmentOutcome::Complete(handle), evicted))
        } else {
            Ok((FragmentOutcome::Stored, evicted))
        }
    }

    /// The earliest deadline of a message under way.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.slots.iter().flatten().map(|s| s.deadline).min()
    }

    /// Frees one message whose deadline has passed; returns its key.
    pub fn expire_one<const B: usize>(&mut self, pool: &mut Pool<B>, now: Instant) -> Option<Key> {
        let i = self
            .slots
            .iter()
            .position(|s| s.as_ref().is_some_and(|s| s.deadline <= now))?;
        let slot = self.slots[i].take()?;
        self.bytes_in_use -= slot.handle.len();
        pool.free(slot.handle);
        Some(slot.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Duration;

    fn key(msg: u32) -> Key {
        Key {
            from: NodeId(1),
            group: 0,
            msg,
        }
    }

    #[test]
    fn out_of_order_duplicated_overlapping_fragments_complete_once() {
        let mut pool: Pool<16> = Pool::new();
        let mut r: Reassembly<2> = Reassembly::new();
        let msg: std::vec::Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let t = Instant::from_millis(10);
        let pieces = [(600usize, 1000usize), (0, 300), (0, 300), (250, 700)];
        let mut done = None;
        for (k, &(a, b)) in pieces.iter().enumerate() {
            let (out, evicted) = r
                .apply(&mut pool, usize::MAX, key(7), 1000, a as u32, &msg[a..b], t)
                .unwrap();
            assert_eq!(evicted, None);
            if k + 1 < pieces.len() {
                assert_eq!(out, FragmentOutcome::Stored);
            } else {
                done = Some(out);
            }
        }
        let Some(FragmentOutcome::Complete(h)) = done else {
            panic!("not complete")
        };
        let mut got = [0u8; 1000];
        pool.read(h, &mut got);
        assert_eq!(&got[..], &msg[..]);
        assert_eq!(r.bytes_in_use(), 0);
        assert_eq!(r.in_progress(), 0);
    }

    #[test]
    fn bounded_slots_budget_and_expiry() {
        let mut pool: Pool<16> = Pool::new();
        let mut r: Reassembly<1> = Reassembly::new();
        let t = Instant::from_millis(1);
        assert_eq!(
            r.apply(&mut pool, 4096, key(1), 500, 0, &[1; 100], t),
            Ok((FragmentOutcome::Stored, None))
        );
        assert_eq!(
            r.apply(&mut pool, 4096, key(1), 501, 100, &[1; 100], t),
            Err(FragmentDrop::Inconsistent)
        );
        // All slots busy: the stalest message makes room for the new one.
        let t2 = t + Duration::from_micros(5);
        assert_eq!(
            r.apply(&mut pool, 4096, key(2), 500, 0, &[1; 100], t2),
            Ok((FragmentOutcome::Stored, Some(key(1))))
        );
        assert_eq!(r.in_progress(), 1);
        assert_eq!(r.next_deadline(), Some(t2));
        assert_eq!(
            r.expire_one(&mut pool, t2 + Duration::from_micros(1)),
            Some(key(2))
        );
        assert_eq!(pool.free_bytes(), 16 * crate::pool::BLOCK_LEN);
        assert_eq!(
            r.apply(&mut pool, 400, key(3), 500, 0, &[1; 10], t),
            Err(FragmentDrop::NoSpace)
        );
    }

    #[test]
    fn too_many_holes_is_refused_without_change() {
        let mut pool: Pool<64> = Pool::new();
        let mut r: Reassembly<1> = Reassembly::new();
        let t = Instant::ZERO;
        for i in 0..MAX_RANGES as u32 {
            r.apply(&mut pool, usize::MAX, key(1), 8000, i * 100, &[0; 10], t)
                .unwrap();
        }
        assert_eq!(
            r.apply(&mut pool, usize::MAX, key(1), 8000, 5000, &[0; 10], t),
            Err(FragmentDrop::TooManyRanges)
        );
        // A fragment that merges two holes is still accepted.
        assert_eq!(
            r.apply(&mut pool, usize::MAX, key(1), 8000, 10, &[0; 90], t),
            Ok((FragmentOutcome::Stored, None))
        );
    }
}
