//! The QSM token and its aggregation (QSM §3, Fig. 4–5).
//!
//! "The QSM recovery protocol uses tokens to track message status
//! (missing/received/cached) at each node. In effect, the token carries ACK
//! and NAK information, aggregated over the nodes below each ring." A token
//! holds one [`TokenEntry`] per sender of the region; each member a token
//! visits merges its own receive state into it ([`TokenEntry::merge`]), so
//! when the token is back at the region leader it says, per sender:
//!
//! * `max_contiguous`: the paper's *MaxContiguous*, the minimum over the
//!   visited members of the highest sequence number below which they hold
//!   everything: the ACK part. Everything up to it is stable in the region;
//! * `max_seen`: the highest sequence number any member saw (a member
//!   below it knows it misses something even if the loss was at the tail of
//!   its own stream);
//! * up to `k` ranges of sequence numbers *every* visited member misses
//!   (the intersection of the members' gaps): the NAK part, aimed at the
//!   sender — "aggregating information that can be used by a group sender
//!   to retransmit packets that were missed by entire regions" (Fig. 4).
//!   When the intersection has more than `k` ranges the highest are
//!   dropped: the token under-reports (a message it omits is found missing
//!   again in a later round), never claiming a loss some member could
//!   repair locally — except where a member's own list was joined to fit
//!   `k` ranges (see [`TokenEntry::add_missing`]), which costs at most a
//!   needless re-multicast;
//! * `stable`: garbage-collection data, the region stability of the last
//!   completed round, which the leader copies into the next token so that
//!   every member drops its cached copies of stable messages.
//!
//! Design decisions where the paper is vague:
//! * Sequence numbers are per (sender, region), start at 1 and are compared
//!   as plain `u32` (0 means "nothing"): at 100 000 messages a second a
//!   stream wraps after 11 hours of continuous sending; a sender restarts
//!   its streams at a new CMS epoch before that (documented limit).
//! * The token's rate-control information is the region's aggregate
//!   (`max_contiguous`, `max_seen`, missing ranges) itself: the sender's
//!   flow control limits the data between `max_contiguous` and what it has
//!   sent (see [`super`]).
//!
//! Everything here is a pure function on fixed-size values (no allocation,
//! O(k) per merge), unit-tested below.

/// Most missing ranges a token entry can carry (`k` is configurable up to this).
pub const MAX_RANGES: usize = 8;

/// An inclusive range of sequence numbers `[lo, hi]`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SeqRange {
    /// First sequence number.
    pub lo: u32,
    /// Last sequence number (inclusive).
    pub hi: u32,
}

impl SeqRange {
    /// The range `[lo, hi]` (`None` when `lo > hi`).
    pub const fn new(lo: u32, hi: u32) -> Option<Self> {
        if lo <= hi {
            Some(SeqRange { lo, hi })
        } else {
            None
        }
    }
    /// Whether `seq` is inside.
    pub const fn contains(&self, seq: u32) -> bool {
        self.lo <= seq && seq <= self.hi
    }
}

/// The aggregated state of one sender's stream in one region's token.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TokenEntry {
    /// The sender.
    pub sender: u16,
    /// MaxContiguous: every visited member holds every message `<=` this.
    pub max_contiguous: u32,
    /// The highest sequence number any visited member saw.
    pub max_seen: u32,
    /// Region stability of the last completed round (garbage collection).
    pub stable: u32,
    /// Missing ranges, sorted, disjoint and non-adjacent, all above
    /// `max_contiguous`; only the first `n` are meaningful.
    pub ranges: [SeqRange; MAX_RANGES],
    /// Number of ranges in use.
    pub n: u8,
}

impl TokenEntry {
    /// The state of one member that holds everything up to `max_contiguous`
    /// and saw up to `max_seen`, before any gap is added.
    pub fn member(sender: u16, max_contiguous: u32, max_seen: u32) -> Self {
        TokenEntry {
            sender,
            max_contiguous,
            max_seen: max_seen.max(max_contiguous),
            ..Default::default()
        }
    }

    /// The ranges in use.
    pub fn ranges(&self) -> &[SeqRange] {
        let n = usize::from(self.n).min(MAX_RANGES);
        &self.ranges[..n]
    }

    /// Whether some visited member misses `seq` (as far as the token knows;
    /// a joined range may over-report).
    pub fn is_missing(&self, seq: u32) -> bool {
        self.ranges().iter().any(|r| r.contains(seq))
    }

    /// Adds a missing range, keeping at most `k` ranges (`1..=MAX_RANGES`;
    /// out-of-range `k` is clamped). Parts at or below `max_contiguous` are
    /// ignored (they are held by everyone visited). O(k).
    pub fn add_missing(&mut self, r: SeqRange, k: usize) {
        let k = k.clamp(1, MAX_RANGES);
        let lo = r.lo.max(self.max_contiguous.saturating_add(1));
        let Some(r) = SeqRange::new(lo, r.hi) else {
            return;
        };
        // Insert into a scratch list of MAX_RANGES + 1, merging overlaps.
        let mut out = [SeqRange::default(); MAX_RANGES + 1];
        let mut m = 0usize;
        let mut pending = Some(r);
        for &cur in self.ranges() {
            match pending {
                Some(p) if p.hi.saturating_add(1) < cur.lo => {
                    out[m] = p;
                    m += 1;
                    pending = None;
                    out[m] = cur;
                    m += 1;
                }
                Some(p) if cur.hi.saturating_add(1) < p.lo => {
                    out[m] = cur;
                    m += 1;
                }
                Some(p) => {
                    // Overlapping or adjacent: absorb `cur` into the pending range.
                    pending = Some(SeqRange {
                        lo: p.lo.min(cur.lo),
                        hi: p.hi.max(cur.hi),
                    });
                }
                None => {
                    out[m] = cur;
                    m += 1;
                }
            }
        }
        if let Some(p) = pending {
            out[m] = p;
            m += 1;
        }
        // Too many: join the two neighbours separated by the smallest gap
        // (over-reporting is safe, under-reporting is not).
        while m > k {
            let mut best = 0usize;
            let mut best_gap = u32::MAX;
            for i in 0..m - 1 {
                let gap = out[i + 1].lo.saturating_sub(out[i].hi);
                if gap < best_gap {
                    best_gap = gap;
                    best = i;
                }
            }
            out[best].hi = out[best + 1].hi;
            for i in best + 1..m - 1 {
                out[i] = out[i + 1];
            }
            m -= 1;
        }
        self.ranges = [SeqRange::default(); MAX_RANGES];
        self.ranges[..m].copy_from_slice(&out[..m]);
        self.n = m as u8;
    }

    /// Merges another member's (or partition's) entry of the same sender
    /// into this one: MaxContiguous is the minimum, `max_seen` the maximum,
    /// the ranges the intersection (messages missed by both; at most `k`,
    /// the lowest kept), `stable` the maximum (whoever knows the later round
    /// is right). O(k).
    pub fn merge(&mut self, other: &TokenEntry, k: usize) {
        self.max_contiguous = self.max_contiguous.min(other.max_contiguous);
        self.max_seen = self.max_seen.max(other.max_seen);
        self.stable = self.stable.max(other.stable);
        self.intersect(other.ranges(), k);
    }

    /// Keeps only what is also inside `other` (sorted, disjoint ranges),
    /// at most `k` ranges (the lowest). O(k).
    pub fn intersect(&mut self, other: &[SeqRange], k: usize) {
        let k = k.clamp(1, MAX_RANGES);
        let mut out = [SeqRange::default(); MAX_RANGES];
        let mut m = 0usize;
        let (a, b) = (self.ranges(), other);
        let (mut i, mut j) = (0usize, 0usize);
        while i < a.len() && j < b.len() && m < k {
            let lo = a[i].lo.max(b[j].lo);
            let hi = a[i].hi.min(b[j].hi);
            if lo <= hi {
                out[m] = SeqRange { lo, hi };
                m += 1;
            }
            if a[i].hi < b[j].hi {
                i += 1;
            } else {
                j += 1;
            }
        }
        self.ranges = out;
        self.n = m as u8;
    }

    /// A receiver's own entry: it holds everything `<= max_contiguous`, the
    /// received sequence numbers above it are those `received(seq)` says,
    /// up to `own_max`; the token has seen up to `token_max_seen`. Gaps up
    /// to `max(own_max, token_max_seen)` become missing ranges (at most `k`,
    /// joined as in [`TokenEntry::add_missing`]). `received` is asked at most
    /// `window` times (the caller's ring size), so the work is bounded.
    pub fn from_receiver(
        sender: u16,
        max_contiguous: u32,
        own_max: u32,
        token_max_seen: u32,
        window: u32,
        k: usize,
        mut received: impl FnMut(u32) -> bool,
    ) -> Self {
        let mut e = TokenEntry::member(sender, max_contiguous, own_max.max(token_max_seen));
        let top = own_max
            .max(token_max_seen)
            .min(max_contiguous.saturating_add(window));
        let mut gap_start: Option<u32> = None;
        let mut s = max_contiguous.saturating_add(1);
        while s <= top {
            let have = received(s);
            match (have, gap_start) {
                (false, None) => gap_start = Some(s),
                (true, Some(g)) => {
                    if let Some(r) = SeqRange::new(g, s - 1) {
                        e.add_missing(r, k);
                    }
                    gap_start = None;
                }
                _ => {}
            }
            if s == u32::MAX {
                break;
            }
            s += 1;
        }
        if let Some(g) = gap_start {
            // Everything from the gap to what anyone saw is missing here.
            let hi = own_max.max(token_max_seen);
            if let Some(r) = SeqRange::new(g, hi) {
                e.add_missing(r, k);
            }
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;
    use std::vec::Vec;

    fn r(lo: u32, hi: u32) -> SeqRange {
        SeqRange { lo, hi }
    }

    #[test]
    fn add_missing_merges_overlapping_and_adjacent_ranges() {
        let mut e = TokenEntry::member(1, 0, 100);
        e.add_missing(r(10, 12), 4);
        e.add_missing(r(20, 25), 4);
        e.add_missing(r(13, 14), 4); // adjacent to the first
        assert_eq!(e.ranges(), &[r(10, 14), r(20, 25)]);
        e.add_missing(r(11, 22), 4); // bridges both
        assert_eq!(e.ranges(), &[r(10, 25)]);
        e.add_missing(r(1, 2), 4);
        assert_eq!(e.ranges(), &[r(1, 2), r(10, 25)]);
    }

    #[test]
    fn add_missing_caps_at_k_by_joining_the_closest_ranges() {
        let mut e = TokenEntry::member(1, 0, 1000);
        e.add_missing(r(10, 10), 2);
        e.add_missing(r(100, 100), 2);
        e.add_missing(r(13, 13), 2); // 10 and 13 are closest
        assert_eq!(e.ranges(), &[r(10, 13), r(100, 100)]);
        assert!(e.is_missing(11), "over-reports between joined ranges");
        assert!(!e.is_missing(50));
    }

    #[test]
    fn ranges_at_or_below_max_contiguous_are_ignored() {
        let mut e = TokenEntry::member(1, 20, 30);
        e.add_missing(r(5, 10), 4);
        assert_eq!(e.ranges(), &[]);
        e.add_missing(r(15, 25), 4);
        assert_eq!(e.ranges(), &[r(21, 25)]);
    }

    #[test]
    fn merge_takes_min_max_contiguous_max_seen_and_intersection() {
        let mut a = TokenEntry::member(3, 10, 30);
        a.add_missing(r(12, 20), 4);
        a.add_missing(r(25, 30), 4);
        let mut b = TokenEntry::member(3, 7, 30);
        b.add_missing(r(8, 8), 4);
        b.add_missing(r(15, 26), 4);
        b.stable = 5;
        a.merge(&b, 4);
        assert_eq!(a.max_contiguous, 7);
        assert_eq!(a.max_seen, 30);
        assert_eq!(a.stable, 5);
        // Missed by both: 15..=20 and 25..=26 (8 was held by a).
        assert_eq!(a.ranges(), &[r(15, 20), r(25, 26)]);
        // k = 1 keeps the lowest.
        let mut c = a;
        c.intersect(&[r(0, 100)], 1);
        assert_eq!(c.ranges(), &[r(15, 20)]);
    }

    #[test]
    fn from_receiver_reports_gaps_and_the_tail_others_saw() {
        // Holds 1..=5, 7, 9; others saw up to 12.
        let have: BTreeSet<u32> = [1, 2, 3, 4, 5, 7, 9].into_iter().collect();
        let e = TokenEntry::from_receiver(1, 5, 9, 12, 256, 4, |s| have.contains(&s));
        assert_eq!(e.max_contiguous, 5);
        assert_eq!(e.max_seen, 12);
        assert_eq!(e.ranges(), &[r(6, 6), r(8, 8), r(10, 12)]);
    }

    fn mc_of(m: &BTreeSet<u32>) -> u32 {
        let mut mc = 0;
        while m.contains(&(mc + 1)) {
            mc += 1;
        }
        mc
    }

    proptest! {
        /// Aggregating members' entries in any order gives the same
        /// MaxContiguous, max_seen and ranges; MaxContiguous is the true
        /// minimum; every number in the ranges is reported missing by every
        /// member (never claims a region-wide loss a member could repair);
        /// with enough ranges it is exactly the set missed by everyone.
        #[test]
        fn aggregation_is_exact_and_order_independent(
            members in proptest::collection::vec(
                proptest::collection::btree_set(1u32..64, 0..60), 1..8),
            k in 1usize..=MAX_RANGES,
            rot in 0usize..8,
        ) {
            let max_seen = members.iter().filter_map(|m| m.iter().max().copied()).max().unwrap_or(0);
            let entries: Vec<TokenEntry> = members.iter().map(|m| {
                let own = m.iter().max().copied().unwrap_or(0);
                TokenEntry::from_receiver(1, mc_of(m), own, max_seen, 256, k, |s| m.contains(&s))
            }).collect();
            let fold = |order: &mut dyn Iterator<Item = &TokenEntry>| {
                let it = order;
                let mut acc = *it.next().unwrap();
                for e in it { acc.merge(e, k); }
                acc
            };
            let a = fold(&mut entries.iter());
            let n = entries.len();
            let b = fold(&mut (0..n).map(|i| &entries[(i + rot) % n]));
            prop_assert_eq!(a.max_contiguous, b.max_contiguous);
            prop_assert_eq!(a.max_seen, b.max_seen);
            prop_assert_eq!(a.max_contiguous, members.iter().map(mc_of).min().unwrap());
            prop_assert!(a.ranges().len() <= k);
            for rg in a.ranges() {
                for s in rg.lo..=rg.hi {
                    for e in &entries {
                        prop_assert!(e.is_missing(s), "{} claimed lost but a member reported it held", s);
                    }
                }
            }
            for w in a.ranges().windows(2) {
                prop_assert!(w[0].hi < w[1].lo);
            }
            // Exact when nothing had to be joined or dropped.
            let exact = entries.iter().all(|e| (e.n as usize) < k);
            if exact {
                let lost: Vec<u32> = (1..=max_seen)
                    .filter(|s| members.iter().all(|m| !m.contains(s)))
                    .collect();
                let claimed: Vec<u32> = a.ranges().iter().flat_map(|r| r.lo..=r.hi).collect();
                if a.ranges().len() < k {
                    prop_assert_eq!(claimed, lost);
                }
            }
        }
    }
}
