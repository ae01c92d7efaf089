//! FastCast bandwidth allocation (FastCast §3.5, Fig. 4, Tables 1–3).
//!
//! Several senders multicast at once without overrunning any receiver's
//! downlink: every process knows every sender's *bandwidth requirement* and
//! derives its own sending rate from them with a max-min fair allocation
//! ([`bw_allocation`], Fig. 4 lines 34–47). Requirement changes travel in the
//! total order (`utoBroadcast`), so all processes see them in the same order;
//! the per-process state that does this is [`BandwidthAllocation`].
//!
//! # Decisions where Fig. 4 is vague
//!
//! * **Iterating while removing (lines 39–43).** The inner `for` removes
//!   members from `nodes` while it runs. We follow the pseudo-code literally:
//!   every member that is in `nodes` when a pass starts is visited once, in
//!   ascending index order, and its test `bwRequirements[p_j] ≤
//!   availableBW / size(nodes)` uses the *current* `availableBW` and
//!   `size(nodes)`, i.e. after the removals made earlier in the same pass.
//!   The answer does not depend on this choice nor on the visiting order:
//!   removing an eligible `p_j` (`r_j · s ≤ a`) never lowers the fair share
//!   (`(a − r_j)/(s − 1) ≥ a/s`), so every member that was eligible stays
//!   eligible and all orders reach the same fixpoint, the classic
//!   water-filling one. The choice only changes how many passes are needed;
//!   a unit test pins the count, a property test checks the answer against
//!   a sorted water-filling reference.
//! * **Integer division.** `availableBW / size(nodes)` is floor division on
//!   `u64`. Because requirements are integers, `r ≤ ⌊a/s⌋ ⟺ r·s ≤ a`, so the
//!   floor never changes which members are removed; only the returned share
//!   is rounded down (never above what the links carry).
//! * **"p_i and the (N−2) biggest other values" (line 35).** With `N` live
//!   members there are `N−1` others, so this is "every live other except one
//!   smallest". Ties are broken by index: among equal requirements the lower
//!   index counts as bigger, so the excluded one is the highest index among
//!   the smallest. The excluded member's value is the same whichever tied
//!   member it is, so the answer does not depend on the tie rule either.
//!   For `N ≤ 2` the set is `{p_i}` alone and the answer is
//!   `min(requirement, capacity)`.
//! * **What the allocation guarantees.** A process never gets more than it
//!   requires nor more than the capacity: if it is still in `nodes` at the
//!   end, the last pass found `r_i > availableBW/size(nodes)`, which is what
//!   it gets. And when every process computes its share from the same
//!   requirements, every receiver's downlink is respected: for each `r`,
//!   `Σ_{s≠r} share(s) ≤ capacity` (all processes but the smallest share one
//!   set; see the `receivers_never_overloaded` property test). This is the
//!   constraint §3.5 motivates ("node 3 would have to receive messages at a
//!   higher throughput than 1Gb/s").
//! * **Bounded work.** Sets of members are `u64` bitmasks, so at most
//!   [`MAX_MEMBERS`] = 64 processes take part. Each pass but the last removes
//!   a member, so one allocation costs at most `65 × 64` steps. It runs only
//!   on control events (INCR, DECR, ACK, view change), never per datagram.
//!
//! Units are the caller's (bit/s, Mb/s, bytes/s...): the arithmetic is on
//! plain `u64` and never overflows.

/// Most processes that can take part in one allocation (sets are `u64` bitmasks).
pub const MAX_MEMBERS: usize = 64;

/// The bit of process `i` in a membership bitmask (0 when `i` cannot be a member).
const fn bit(i: usize) -> u64 {
    if i < MAX_MEMBERS {
        1 << i
    } else {
        0
    }
}

/// The bitmask of indices `0..len` (capped at [`MAX_MEMBERS`]).
const fn first(len: usize) -> u64 {
    if len >= MAX_MEMBERS {
        u64::MAX
    } else {
        (1 << len) - 1
    }
}

/// The max-min fair sending rate of process `me` (Fig. 4, `BW_allocation`,
/// lines 34–47).
///
/// `requirements[j]` is the bandwidth process `j` asks for (the paper's
/// `bwRequirements`), `capacity` the capability `B` of one network link, both
/// in the caller's unit. Every process computes its own rate from the same
/// `requirements`; see the module documentation for how the pseudo-code is
/// read (iteration, ties, rounding) and what the result guarantees.
///
/// Returns 0, the rate that can never overload anyone, when `me` is not an
/// index of `requirements` (in particular for an empty slice) or when there
/// are more than [`MAX_MEMBERS`] requirements. A single process, or two,
/// gets `min(requirements[me], capacity)`.
///
/// ```
/// use phasecast_core::bandwidth::bw_allocation;
/// // §3.5: 700, 600 and 300 Mb/s asked on a 1 Gb/s switch.
/// let req = [700, 600, 300];
/// assert_eq!(bw_allocation(&req, 0, 1000), 500);
/// assert_eq!(bw_allocation(&req, 1, 1000), 500);
/// assert_eq!(bw_allocation(&req, 2, 1000), 300);
/// ```
#[must_use]
pub fn bw_allocation(requirements: &[u64], me: usize, capacity: u64) -> u64 {
    if requirements.len() > MAX_MEMBERS {
        return 0;
    }
    allocate(requirements, first(requirements.len()), me, capacity).0
}

/// [`bw_allocation`] over the live members `live` (a bitmask of indices of
/// `requirements`); `N` is the number of live members. Also returns the
/// number of passes of the `do … while` loop, so tests can pin the reading of
/// the pseudo-code.
pub(crate) fn allocate(requirements: &[u64], live: u64, me: usize, capacity: u64) -> (u64, u32) {
    let live = live & first(requirements.len());
    let Some(&my_requirement) = requirements.get(me) else {
        return (0, 0);
    };
    if live & bit(me) == 0 {
        return (0, 0);
    }
    // Line 35: p_i and the N−2 biggest others = every live other but one
    // smallest (ties: the highest index counts as the smallest).
    let others = live & !bit(me);
    let mut nodes = others & !smallest(requirements, others) | bit(me);
    // Line 36.
    let mut available = capacity;
    let mut passes = 0;
    // Lines 37–44.
    loop {
        passes += 1;
        let mut allocated = false;
        let mut pass = nodes;
        while pass != 0 {
            let j = pass.trailing_zeros() as usize;
            pass &= pass - 1;
            // Current size: j is still in `nodes`, so it is at least 1.
            let size = u64::from(nodes.count_ones()).max(1);
            let r = requirements.get(j).copied().unwrap_or(0);
            if r <= available / size {
                nodes &= !bit(j);
                // r ≤ available / size ≤ available: never saturates.
                available = available.saturating_sub(r);
                allocated = true;
            }
        }
        if nodes == 0 || !allocated {
            break;
        }
    }
    // Lines 45–47.
    let share = if nodes & bit(me) != 0 {
        available / u64::from(nodes.count_ones()).max(1)
    } else {
        my_requirement
    };
    (share, passes)
}

/// The bit of one member of `set` with the smallest requirement, the highest
/// index among equals; 0 for an empty set.
fn smallest(requirements: &[u64], set: u64) -> u64 {
    let mut best: Option<(u64, usize)> = None;
    let mut rest = set;
    while rest != 0 {
        let j = rest.trailing_zeros() as usize;
        rest &= rest - 1;
        let r = requirements.get(j).copied().unwrap_or(0);
        // `<=`: visiting indices upwards, a later equal value wins.
        if best.is_none_or(|(b, _)| r <= b) {
            best = Some((r, j));
        }
    }
    best.map_or(0, |(_, j)| bit(j))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    /// All processes' shares for one requirement vector.
    fn shares(req: &[u64], capacity: u64) -> Vec<u64> {
        (0..req.len())
            .map(|i| bw_allocation(req, i, capacity))
            .collect()
    }

    #[test]
    fn paper_section_3_5_example() {
        assert_eq!(shares(&[700, 600, 300], 1000), [500, 500, 300]);
    }

    #[test]
    fn paper_table_states() {
        // Every bwRequirements vector of Tables 1–3 and the currentBW each
        // process shows for it.
        assert_eq!(shares(&[800, 300, 0], 1000), [700, 300, 0]);
        assert_eq!(shares(&[800, 300, 600], 1000), [500, 300, 500]);
        assert_eq!(shares(&[800, 300, 100], 1000), [700, 300, 100]);
        assert_eq!(shares(&[0, 300, 0], 1000)[0], 0);
        assert_eq!(shares(&[800, 0, 0], 1000)[1], 0);
        // p2 at S15 sees its own decrease first.
        assert_eq!(bw_allocation(&[800, 300, 100], 2, 1000), 100);
    }

    #[test]
    fn one_or_two_members_get_min_of_requirement_and_capacity() {
        // N − 2 ≤ 0: nodes = {p_i}.
        assert_eq!(bw_allocation(&[5], 0, 3), 3);
        assert_eq!(bw_allocation(&[2], 0, 3), 2);
        assert_eq!(shares(&[800, 900], 1000), [800, 900]);
        assert_eq!(shares(&[1500, 10], 1000), [1000, 10]);
    }

    #[test]
    fn bad_input_gets_zero() {
        assert_eq!(bw_allocation(&[], 0, 1000), 0);
        assert_eq!(bw_allocation(&[100, 200], 2, 1000), 0);
        assert_eq!(bw_allocation(&[100, 200], usize::MAX, 1000), 0);
        let too_many = [1u64; MAX_MEMBERS + 1];
        assert_eq!(bw_allocation(&too_many, 0, 1000), 0);
        let max = [1u64; MAX_MEMBERS];
        assert_eq!(bw_allocation(&max, MAX_MEMBERS - 1, 1000), 1);
    }

    #[test]
    fn equal_requirements() {
        assert_eq!(shares(&[600; 3], 1000), [500; 3]);
        // N = 4: p_i and two others share 1000.
        assert_eq!(shares(&[400; 4], 1000), [333; 4]);
        assert_eq!(shares(&[200; 4], 1000), [200; 4]);
        assert_eq!(shares(&[0; 4], 1000), [0; 4]);
    }

    #[test]
    fn smallest_other_is_left_out() {
        // p0's set is {p0, p1, p2}: p3 (50) is the smallest other.
        // p3's set is {p3, p0, p1}: p1 and p2 tie, the higher index is out.
        assert_eq!(shares(&[900, 100, 100, 50], 1000), [800, 100, 100, 50]);
        // Moving the tie to other indices changes nothing.
        assert_eq!(shares(&[100, 900, 50, 100], 1000), [100, 800, 50, 100]);
    }

    #[test]
    fn zero_capacity() {
        assert_eq!(shares(&[10, 20, 30], 0), [0, 0, 0]);
        assert_eq!(shares(&[0, 0, 0], 0), [0, 0, 0]);
        assert_eq!(shares(&[7], 0), [0]);
    }

    #[test]
    fn huge_values_do_not_overflow() {
        let m = u64::MAX;
        assert_eq!(shares(&[m; 3], m), [m / 2; 3]);
        assert_eq!(shares(&[m, 1, m], m), [m / 2, 1, m / 2]);
        assert_eq!(shares(&[m, m - 1], m), [m, m - 1]);
        // N = 5: p_i and three others share the link.
        assert_eq!(shares(&[m; 5], 3), [0; 5]);
        assert_eq!(shares(&[m; 5], 9), [2; 5]);
    }

    #[test]
    fn size_is_read_after_removals_of_the_same_pass() {
        // p0's set is {p0, p1, p2} (p3 is the smallest other). Pass 1: p0
        // fails (1000 > 333); p1 is removed (100 ≤ 333); p2 is tested
        // against the current size 2 (400 ≤ 900/2) and removed in the same
        // pass; with the size frozen at 3 it would fail (400 > 300) and need
        // a third pass. Pass 2 finds nothing. p0 keeps the 500 left.
        assert_eq!(allocate(&[1000, 100, 400, 0], first(4), 0, 1000), (500, 2));
    }

    #[test]
    fn dead_members_are_not_counted() {
        // p2 is not live: N = 2, so p0's set is {p0} alone.
        assert_eq!(allocate(&[800, 300, 600], 0b011, 0, 1000).0, 800);
        // me not live, or live bits beyond the slice, are ignored.
        assert_eq!(allocate(&[800, 300, 600], 0b110, 0, 1000).0, 0);
        assert_eq!(allocate(&[700, 600, 300], u64::MAX, 2, 1000).0, 300);
    }

    /// Water-filling written independently of Fig. 4: sort the set
    /// `{me} ∪ (N−2 biggest others)` ascending and satisfy members while
    /// they fit in an equal share of what is left.
    fn reference(req: &[u64], me: usize, capacity: u64) -> u64 {
        let n = req.len();
        let mut others: Vec<usize> = (0..n).filter(|&j| j != me).collect();
        others.sort_by(|&a, &b| req[b].cmp(&req[a]).then(a.cmp(&b)));
        others.truncate(n.saturating_sub(2));
        let mut set = others;
        set.push(me);
        set.sort_by_key(|&j| req[j]);
        let mut available = u128::from(capacity);
        let mut size = set.len() as u128;
        for &j in &set {
            if u128::from(req[j]) * size > available {
                break;
            }
            if j == me {
                return req[me];
            }
            available -= u128::from(req[j]);
            size -= 1;
        }
        (available / size) as u64
    }

    fn requirements() -> impl Strategy<Value = (Vec<u64>, u64)> {
        let value = prop_oneof![0u64..50, 0u64..2000, any::<u64>()];
        (
            proptest::collection::vec(value, 1..9),
            prop_oneof![0u64..100, 0u64..3000, any::<u64>()],
        )
    }

    proptest! {
        #[test]
        fn never_more_than_required_nor_capacity((req, cap) in requirements()) {
            for (i, &r) in req.iter().enumerate() {
                prop_assert!(bw_allocation(&req, i, cap) <= r.min(cap));
            }
        }

        #[test]
        fn receivers_never_overloaded((req, cap) in requirements()) {
            // Each receiver r gets every sender but itself (the switch does
            // not send a multicast back to its source, §3.2).
            let s = shares(&req, cap);
            for r in 0..req.len() {
                let inbound: u128 = s.iter().enumerate()
                    .filter(|&(j, _)| j != r)
                    .map(|(_, &x)| u128::from(x))
                    .sum();
                prop_assert!(inbound <= u128::from(cap), "receiver {r}: {inbound} > {cap}, shares {s:?}");
            }
        }

        #[test]
        fn matches_sorted_water_filling((req, cap) in requirements()) {
            for i in 0..req.len() {
                prop_assert_eq!(bw_allocation(&req, i, cap), reference(&req, i, cap), "me = {}", i);
            }
        }
    }
}
