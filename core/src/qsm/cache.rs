//! Cooperative caching: who keeps a copy of which message (QSM §3, Fig. 6).
//!
//! "Even in a large ring, no more than five nodes cache any given message"
//! (after Zhao), and "each message is cached in a single partition,
//! round-robin fashion; if some partition is missing a message, the
//! partition caching it steps in to resend it."
//!
//! Placement is *rendezvous hashing* (highest random weight): the holders of
//! message `(sender, seq)` in a partition are the `r ≤ 5` members with the
//! highest `weight(sender, seq, member)`. The choice depends only on the set
//! of member ids, not on their order, so every member computes the same
//! holders from its own copy of the view, and a view that adds or removes
//! one member moves only the copies that member held or now holds. It costs
//! O(partition size) per message (≤ 25 by default), with no state.
//!
//! The caching partition of message `seq` is `seq mod partitions`: the
//! paper's round robin.
//!
//! Lifetime (a decision the paper leaves open): a holder keeps its copy
//! until the region's token reports the message stable in the region (every
//! member holds it), then drops it. A sender's copy for a region goes when
//! that region reports it stable: since a multicast to a group is one copy
//! per region, "dropped once stable in every region of its group" holds for
//! every copy.

use crate::addr::NodeId;

/// The paper's bound on holders per partition.
pub const MAX_HOLDERS: usize = 5;

/// The rendezvous weight of `member` for message `(sender, seq)`: a
/// SplitMix64 finaliser over the three values, so weights of different
/// members are independent.
pub fn weight(sender: NodeId, seq: u32, member: NodeId) -> u64 {
    let mut z = (u64::from(sender.0) << 48) ^ (u64::from(seq) << 16) ^ u64::from(member.0);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The holders of `(sender, seq)` among `members`: at most
/// `min(replication, MAX_HOLDERS)` distinct members, highest weight first
/// (ties broken by the smaller id). Writes them to `out` and returns how
/// many. O(members · MAX_HOLDERS).
pub fn holders(
    sender: NodeId,
    seq: u32,
    members: &[NodeId],
    replication: usize,
    out: &mut [NodeId; MAX_HOLDERS],
) -> usize {
    let r = replication.min(MAX_HOLDERS);
    let mut w = [0u64; MAX_HOLDERS];
    let mut n = 0usize;
    for &m in members {
        if out[..n].contains(&m) {
            continue; // a duplicate id in a malformed view counts once
        }
        let wm = weight(sender, seq, m);
        // Position among the kept ones (descending weight, then ascending id).
        let mut pos = n;
        while pos > 0 && (wm > w[pos - 1] || (wm == w[pos - 1] && m < out[pos - 1])) {
            pos -= 1;
        }
        if pos >= r {
            continue;
        }
        let last = if n < r { n } else { r - 1 };
        let mut i = last;
        while i > pos {
            w[i] = w[i - 1];
            out[i] = out[i - 1];
            i -= 1;
        }
        w[pos] = wm;
        out[pos] = m;
        if n < r {
            n += 1;
        }
    }
    n
}

/// Whether `me` is one of the holders of `(sender, seq)` among `members`.
pub fn is_holder(
    sender: NodeId,
    seq: u32,
    members: &[NodeId],
    replication: usize,
    me: NodeId,
) -> bool {
    let mut out = [NodeId(0); MAX_HOLDERS];
    let n = holders(sender, seq, members, replication, &mut out);
    out[..n].contains(&me)
}

/// The caching partition of message `seq` in a region of `partitions`
/// partitions (round robin by sequence number; 0 when there are none).
pub fn caching_partition(seq: u32, partitions: usize) -> usize {
    if partitions == 0 {
        0
    } else {
        (seq as usize) % partitions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn ids(v: &[u16]) -> Vec<NodeId> {
        v.iter().map(|&i| NodeId(i)).collect()
    }

    #[test]
    fn at_most_five_distinct_holders_from_the_members() {
        let members = ids(&(0..25).collect::<Vec<_>>());
        for seq in 1..500 {
            let mut out = [NodeId(0); MAX_HOLDERS];
            let n = holders(NodeId(200), seq, &members, 5, &mut out);
            assert_eq!(n, 5);
            let mut h = out[..n].to_vec();
            h.sort();
            h.dedup();
            assert_eq!(h.len(), 5);
            assert!(h.iter().all(|x| members.contains(x)));
        }
        // Asking for more than five still gives five; fewer members, all.
        let mut out = [NodeId(0); MAX_HOLDERS];
        assert_eq!(holders(NodeId(1), 7, &members, 9, &mut out), 5);
        assert_eq!(holders(NodeId(1), 7, &members[..3], 5, &mut out), 3);
        assert_eq!(holders(NodeId(1), 7, &[], 5, &mut out), 0);
    }

    #[test]
    fn placement_spreads_load() {
        let members = ids(&(0..25).collect::<Vec<_>>());
        let mut count = [0u32; 25];
        for seq in 1..=5000 {
            let mut out = [NodeId(0); MAX_HOLDERS];
            let n = holders(NodeId(99), seq, &members, 5, &mut out);
            for h in &out[..n] {
                count[usize::from(h.0)] += 1;
            }
        }
        // Expected 1000 each.
        assert!(count.iter().all(|&c| (800..1200).contains(&c)), "{count:?}");
    }

    #[test]
    fn caching_partition_is_round_robin() {
        assert_eq!(caching_partition(0, 5), 0);
        assert_eq!(caching_partition(7, 5), 2);
        assert_eq!(caching_partition(7, 0), 0);
        let mut seen = [0; 5];
        for s in 1..=50 {
            seen[caching_partition(s, 5)] += 1;
        }
        assert_eq!(seen, [10; 5]);
    }

    proptest! {
        /// The holders do not depend on the order of the member list, and
        /// removing a non-holder does not change them.
        #[test]
        fn stable_under_member_order(
            mut members in proptest::collection::btree_set(0u16..1000, 1..40)
                .prop_map(|s| s.into_iter().collect::<Vec<_>>()),
            seq in any::<u32>(), sender in any::<u16>(), seed in any::<u64>(),
        ) {
            let m1 = ids(&members);
            let mut a = [NodeId(0); MAX_HOLDERS];
            let na = holders(NodeId(sender), seq, &m1, 5, &mut a);
            // Deterministic shuffle.
            let mut x = seed | 1;
            for i in (1..members.len()).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                members.swap(i, (x as usize) % (i + 1));
            }
            let m2 = ids(&members);
            let mut b = [NodeId(0); MAX_HOLDERS];
            let nb = holders(NodeId(sender), seq, &m2, 5, &mut b);
            prop_assert_eq!(&a[..na], &b[..nb]);
            prop_assert!(na <= MAX_HOLDERS);
            if let Some(victim) = m1.iter().find(|m| !a[..na].contains(m)) {
                let m3: Vec<NodeId> = m1.iter().copied().filter(|m| m != victim).collect();
                let mut c = [NodeId(0); MAX_HOLDERS];
                let nc = holders(NodeId(sender), seq, &m3, 5, &mut c);
                prop_assert_eq!(&a[..na], &c[..nc]);
            }
        }
    }
}
