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
//!   The property tests also drive whole random runs of the protocol (up to
//!   6 processes, arbitrary interleavings of deliveries and ACKs) and check
//!   that the rates in force never overload a receiver at any step, and
//!   that all processes agree once the run is quiet.
//! * **View changes.** Fig. 4 is silent on them. A process that leaves the
//!   view has its requirement zeroed and is no longer awaited by an ongoing
//!   increase, so an increase never waits forever for a dead process; a
//!   joiner starts at 0 and is not awaited by an increase requested before
//!   it joined. The ACK bookkeeping is thus reconciled with every view
//!   (JGroups issue #1048: flow-control credit maps that went out of step
//!   with the view after churn starved a sender for good). See
//!   [`BandwidthAllocation::on_view_change`].
//! * **Waits become errors or later events.** "wait until ongoing_increase
//!   = 0" (lines 8, 27) is [`BwError::Busy`]; "wait until delivered_req"
//!   (line 20) completes the increase when the own INCR is delivered.
//!   Duplicate ACKs are not counted twice (`acks` is a set).
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

/// Why a [`BandwidthAllocation`] operation was refused; the state is unchanged.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BwError {
    /// An increase is ongoing: Fig. 4 "wait until ongoing_increase = 0"
    /// (lines 8, 27). Retry once [`BandwidthAllocation::ongoing_increase`] is 0.
    Busy,
    /// A zero amount, or a decrease when the requirement is already 0: there
    /// is nothing to announce.
    ZeroAmount,
    /// The process index is out of range, not in the current view, or (for
    /// an ACK) this process itself.
    UnknownMember,
    /// This process delivered an INCR of its own that does not match the
    /// ongoing increase (none ongoing, already delivered, or another amount).
    Unexpected,
    /// The view is invalid: more than `N` members, `me` outside it, or bits
    /// beyond index `N − 1`.
    BadView,
}

/// The INCR message to `utoBroadcast` to all processes, this one included
/// (Fig. 4 line 10).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Incr {
    /// The requested increase.
    pub amount: u64,
}

/// What to do after a decrease (Fig. 4 lines 28–30).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Decr {
    /// The DECR amount to `utoBroadcast` to all processes. It is the amount
    /// actually subtracted (the decrease saturates at 0), so every process
    /// applies exactly the same change.
    pub amount: u64,
    /// The new sending rate, when it changed. It is already in force: set the
    /// data sink's token bucket *before* broadcasting the DECR (§3.5: "the
    /// node actually decreases its bandwidth before sending the message").
    pub new_bw: Option<u64>,
}

/// What to do after delivering an INCR (Fig. 4 lines 11–16).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct IncrDelivered {
    /// `Rsend (ACK)` to this process (line 14); `None` for this process's own INCR.
    pub ack_to: Option<usize>,
    /// The new sending rate, when it changed: set the data sink's token
    /// bucket to it. Another's increase can only lower it; this process's own
    /// INCR raises it when the acknowledgements were already all in.
    pub new_bw: Option<u64>,
}

/// The bandwidth allocation state of one process `p_i` (Fig. 4), with the
/// paper's names, driven by the host and free of any transport.
///
/// The host utoBroadcasts the [`Incr`] / [`Decr`] the methods return, feeds
/// back their total-order deliveries ([`on_deliver_incr`], [`on_deliver_decr`]),
/// reliably sends the ACKs ([`IncrDelivered::ack_to`]) and feeds the ACKs it
/// receives to [`on_ack`]. Whenever a method returns a new rate
/// (`Some(new_bw)`), [`current_bw`] changed and the data sink's token bucket
/// must be set to it.
///
/// Decisions beyond the pseudo-code:
/// * `acks` is a set (bitmask), not a counter: a duplicated ACK from the same
///   process is not counted twice. [`acks`] reports its size. Completion
///   needs an ACK from every *awaited* process: the live others when the
///   increase was requested, minus those that left since (see
///   [`on_view_change`]). That is the paper's `acks = N − 1` in a static view.
/// * The increase completes at the later of "all ACKs in" and "own INCR
///   delivered" (line 20's "wait until delivered_req = true" is the other
///   event, not a blocking wait); with no other live process, it completes
///   at the delivery of the own INCR.
/// * The transport's `Rsend` must not replay an ACK from one increase into
///   the next one (ACKs carry no increase identifier, as in the paper).
/// * Requirement arithmetic saturates at `u64::MAX` / 0; every process
///   applies the same saturating operation in the same order, so they agree.
///
/// [`on_deliver_incr`]: Self::on_deliver_incr
/// [`on_deliver_decr`]: Self::on_deliver_decr
/// [`on_ack`]: Self::on_ack
/// [`on_view_change`]: Self::on_view_change
/// [`current_bw`]: Self::current_bw
/// [`acks`]: Self::acks
#[derive(Clone, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BandwidthAllocation<const N: usize> {
    /// `bwRequirements`: what each process asked for (line 2).
    bw_requirements: [u64; N],
    /// `currentBW`: this process's sending rate (line 3).
    current_bw: u64,
    /// `ongoing_increase`: the increase this process waits to apply; 0 = none (line 4).
    ongoing_increase: u64,
    /// `delivered_req`: this process delivered its own INCR (line 5).
    delivered_req: bool,
    /// `acks` (line 6), as the set of processes whose ACK arrived.
    acks: u64,
    /// Processes whose ACK the ongoing increase still needs to count.
    awaited: u64,
    /// `p_i`.
    me: usize,
    /// The live members of the current view (bitmask of indices).
    live: u64,
    /// `B`, the capability of one network link.
    capacity: u64,
}

impl<const N: usize> BandwidthAllocation<N> {
    /// `initialize(initial_view)` (lines 1–6) for process `me` of a view made
    /// of processes `0..members`, on links of capability `capacity`.
    ///
    /// `N` (at most [`MAX_MEMBERS`], checked at compile time) bounds the
    /// process indices. Fails with [`BwError::BadView`] when `members > N`
    /// or `me >= members`.
    pub fn new(me: usize, members: usize, capacity: u64) -> Result<Self, BwError> {
        const { assert!(N >= 1 && N <= MAX_MEMBERS, "1 <= N <= MAX_MEMBERS") };
        if members > N || me >= members {
            return Err(BwError::BadView);
        }
        Ok(BandwidthAllocation {
            bw_requirements: [0; N],
            current_bw: 0,
            ongoing_increase: 0,
            delivered_req: false,
            acks: 0,
            awaited: 0,
            me,
            live: first(members),
            capacity,
        })
    }

    /// `increase_BW(amount)` (lines 7–10): records the increase and returns
    /// the INCR to utoBroadcast. The rate does not change yet: it rises only
    /// when every other process has acknowledged.
    ///
    /// Errors: [`BwError::Busy`] while another increase is ongoing,
    /// [`BwError::ZeroAmount`] for 0.
    pub fn increase_bw(&mut self, amount: u64) -> Result<Incr, BwError> {
        if self.ongoing_increase != 0 {
            return Err(BwError::Busy);
        }
        if amount == 0 {
            return Err(BwError::ZeroAmount);
        }
        self.ongoing_increase = amount;
        self.delivered_req = false;
        self.acks = 0;
        self.awaited = self.live & !bit(self.me);
        Ok(Incr { amount })
    }

    /// `upon utoDeliver (INCR, amount) from p_j` (lines 11–16).
    ///
    /// From another process: adds `amount` to its requirement, recomputes
    /// this process's rate and asks to ACK `from`. From this process: marks
    /// the request delivered and, if every ACK is already in, completes the
    /// increase (lines 20–25).
    ///
    /// Errors: [`BwError::UnknownMember`] when `from` is not a live member,
    /// [`BwError::Unexpected`] for an own INCR that does not match the
    /// ongoing increase.
    pub fn on_deliver_incr(&mut self, from: usize, amount: u64) -> Result<IncrDelivered, BwError> {
        self.check_live(from)?;
        if from == self.me {
            if self.ongoing_increase == 0 || self.delivered_req || amount != self.ongoing_increase {
                return Err(BwError::Unexpected);
            }
            self.delivered_req = true;
            return Ok(IncrDelivered {
                ack_to: None,
                new_bw: self.try_complete(),
            });
        }
        let r = self.requirement_mut(from)?;
        *r = r.saturating_add(amount);
        Ok(IncrDelivered {
            ack_to: Some(from),
            new_bw: self.recompute(),
        })
    }

    /// `upon Rreceive (ACK) from p_j` (lines 17–25). Returns the new rate
    /// when this ACK completes the increase and the rate changed.
    ///
    /// An ACK already counted, from a process not awaited (it joined after
    /// the request), or with no increase ongoing changes nothing and returns
    /// `Ok(None)`.
    ///
    /// Errors: [`BwError::UnknownMember`] when `from` is not a live member or
    /// is this process.
    pub fn on_ack(&mut self, from: usize) -> Result<Option<u64>, BwError> {
        self.check_live(from)?;
        if from == self.me {
            return Err(BwError::UnknownMember);
        }
        if self.ongoing_increase == 0 || self.awaited & bit(from) == 0 {
            return Ok(None);
        }
        self.acks |= bit(from);
        Ok(self.try_complete())
    }

    /// `decrease_BW(amount)` (lines 26–30): lowers this process's requirement
    /// (saturating at 0), recomputes its rate and returns the DECR to
    /// utoBroadcast together with the new rate.
    ///
    /// Errors: [`BwError::Busy`] while an increase is ongoing,
    /// [`BwError::ZeroAmount`] when `amount` or the current requirement is 0.
    pub fn decrease_bw(&mut self, amount: u64) -> Result<Decr, BwError> {
        if self.ongoing_increase != 0 {
            return Err(BwError::Busy);
        }
        let me = self.me;
        let r = self.requirement_mut(me)?;
        let amount = amount.min(*r);
        if amount == 0 {
            return Err(BwError::ZeroAmount);
        }
        *r -= amount;
        Ok(Decr {
            amount,
            new_bw: self.recompute(),
        })
    }

    /// `upon utoDeliver (DECR, amount) from p_j` (lines 31–33). From another
    /// process: lowers its requirement (saturating at 0) and returns the new
    /// rate if it changed. From this process: nothing, the decrease was
    /// applied before the broadcast.
    ///
    /// Errors: [`BwError::UnknownMember`] when `from` is not a live member.
    pub fn on_deliver_decr(&mut self, from: usize, amount: u64) -> Result<Option<u64>, BwError> {
        self.check_live(from)?;
        if from == self.me {
            return Ok(None);
        }
        let r = self.requirement_mut(from)?;
        *r = r.saturating_sub(amount);
        Ok(self.recompute())
    }

    /// A new view (§3.4): `live` is the bitmask of the member indices of the
    /// new view. Returns the new rate if it changed.
    ///
    /// Fig. 4 does not say what happens to bandwidth on a view change. We
    /// decide: a process that left has its requirement zeroed (it no longer
    /// sends) and is no longer awaited by an ongoing increase, so the
    /// increase completes now if it only waited for processes that left: an
    /// increase can never wait forever for a dead process. A process that
    /// joins starts with requirement 0 and is not awaited by an increase
    /// requested before it joined (it may never deliver that INCR). `N` in
    /// line 35 becomes the size of the new view.
    ///
    /// Errors: [`BwError::BadView`] when `me` is not in `live` or `live` has
    /// bits at or beyond index `N`.
    pub fn on_view_change(&mut self, live: u64) -> Result<Option<u64>, BwError> {
        if live & !first(N) != 0 || live & bit(self.me) == 0 {
            return Err(BwError::BadView);
        }
        let left = self.live & !live;
        for (j, r) in self.bw_requirements.iter_mut().enumerate() {
            if left & bit(j) != 0 {
                *r = 0;
            }
        }
        self.live = live;
        self.awaited &= live;
        self.acks &= live;
        if self.ongoing_increase != 0 && self.delivered_req && self.awaited & !self.acks == 0 {
            return Ok(self.try_complete());
        }
        Ok(self.recompute())
    }

    /// `currentBW`: the rate this process may send at now.
    pub fn current_bw(&self) -> u64 {
        self.current_bw
    }

    /// `bwRequirements`: what each process asked for, as this process knows it.
    pub fn bw_requirements(&self) -> &[u64; N] {
        &self.bw_requirements
    }

    /// `ongoing_increase`: the increase waiting for ACKs; 0 when none.
    pub fn ongoing_increase(&self) -> u64 {
        self.ongoing_increase
    }

    /// `delivered_req`: this process delivered its own ongoing INCR.
    pub fn delivered_req(&self) -> bool {
        self.delivered_req
    }

    /// `acks`: how many distinct processes acknowledged the ongoing increase.
    pub fn acks(&self) -> usize {
        self.acks.count_ones() as usize
    }

    /// `p_i`, this process's index.
    pub fn me(&self) -> usize {
        self.me
    }

    /// The number of members of the current view.
    pub fn members(&self) -> usize {
        self.live.count_ones() as usize
    }

    /// The members of the current view, as a bitmask of indices.
    pub fn live(&self) -> u64 {
        self.live
    }

    /// `B`, the capability of one network link.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// `Ok` when `j` is a member of the current view.
    fn check_live(&self, j: usize) -> Result<(), BwError> {
        if j < N && self.live & bit(j) != 0 {
            Ok(())
        } else {
            Err(BwError::UnknownMember)
        }
    }

    fn requirement_mut(&mut self, j: usize) -> Result<&mut u64, BwError> {
        self.bw_requirements
            .get_mut(j)
            .ok_or(BwError::UnknownMember)
    }

    /// Lines 20–25 once both the ACKs and the own INCR are in; the new rate
    /// if it changed.
    fn try_complete(&mut self) -> Option<u64> {
        if !self.delivered_req || self.awaited & !self.acks != 0 {
            return None;
        }
        let increase = self.ongoing_increase;
        if let Some(r) = self.bw_requirements.get_mut(self.me) {
            *r = r.saturating_add(increase);
        }
        let new_bw = self.recompute();
        self.acks = 0;
        self.awaited = 0;
        self.ongoing_increase = 0;
        self.delivered_req = false;
        new_bw
    }

    /// `currentBW ← BW_allocation()`; the new rate if it changed.
    fn recompute(&mut self) -> Option<u64> {
        let (bw, _) = allocate(&self.bw_requirements, self.live, self.me, self.capacity);
        if bw == self.current_bw {
            None
        } else {
            self.current_bw = bw;
            Some(bw)
        }
    }
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

    // ---- Tables 1–3 of the paper, replayed step by step ----

    type P = BandwidthAllocation<3>;

    /// One row of a table: bwRequirements, currentBW, ongoing_increase,
    /// acks, delivered_req ("✓" = true, "-" = false).
    type Row = ([u64; 3], u64, u64, usize, bool);

    const V: bool = true;
    const X: bool = false;

    fn processes() -> [P; 3] {
        [0, 1, 2].map(|i| P::new(i, 3, 1000).unwrap())
    }

    #[track_caller]
    fn step(name: &str, ps: &[P; 3], rows: [Row; 3]) {
        for (i, (p, row)) in ps.iter().zip(rows).enumerate() {
            let got: Row = (
                *p.bw_requirements(),
                p.current_bw(),
                p.ongoing_increase(),
                p.acks(),
                p.delivered_req(),
            );
            assert_eq!(got, row, "{name}, p{i}");
        }
    }

    fn delivered(ack_to: Option<usize>, new_bw: Option<u64>) -> Result<IncrDelivered, BwError> {
        Ok(IncrDelivered { ack_to, new_bw })
    }

    fn table_1(ps: &mut [P; 3]) {
        #[rustfmt::skip]
        step("S1", ps, [
            ([0, 0, 0], 0, 0, 0, X),
            ([0, 0, 0], 0, 0, 0, X),
            ([0, 0, 0], 0, 0, 0, X),
        ]);
        assert_eq!(ps[0].increase_bw(800), Ok(Incr { amount: 800 }));
        assert_eq!(ps[1].increase_bw(300), Ok(Incr { amount: 300 }));
        #[rustfmt::skip]
        step("S2", ps, [
            ([0, 0, 0], 0, 800, 0, X),
            ([0, 0, 0], 0, 300, 0, X),
            ([0, 0, 0], 0, 0, 0, X),
        ]);
        assert_eq!(ps[2].on_deliver_incr(0, 800), delivered(Some(0), None));
        assert_eq!(ps[2].on_deliver_incr(1, 300), delivered(Some(1), None));
        #[rustfmt::skip]
        step("S3", ps, [
            ([0, 0, 0], 0, 800, 0, X),
            ([0, 0, 0], 0, 300, 0, X),
            ([800, 300, 0], 0, 0, 0, X),
        ]);
        assert_eq!(ps[0].on_ack(2), Ok(None));
        assert_eq!(ps[1].on_ack(2), Ok(None));
        #[rustfmt::skip]
        step("S4", ps, [
            ([0, 0, 0], 0, 800, 1, X),
            ([0, 0, 0], 0, 300, 1, X),
            ([800, 300, 0], 0, 0, 0, X),
        ]);
        assert_eq!(ps[0].on_deliver_incr(0, 800), delivered(None, None));
        assert_eq!(ps[0].on_deliver_incr(1, 300), delivered(Some(1), None));
        #[rustfmt::skip]
        step("S5", ps, [
            ([0, 300, 0], 0, 800, 1, V),
            ([0, 0, 0], 0, 300, 1, X),
            ([800, 300, 0], 0, 0, 0, X),
        ]);
        // All ACKs are in, but p1 has not delivered its own INCR yet.
        assert_eq!(ps[1].on_ack(0), Ok(None));
        #[rustfmt::skip]
        step("S6", ps, [
            ([0, 300, 0], 0, 800, 1, V),
            ([0, 0, 0], 0, 300, 2, X),
            ([800, 300, 0], 0, 0, 0, X),
        ]);
        assert_eq!(ps[1].on_deliver_incr(0, 800), delivered(Some(0), None));
        // Its own INCR completes the increase at once.
        assert_eq!(ps[1].on_deliver_incr(1, 300), delivered(None, Some(300)));
        #[rustfmt::skip]
        step("S7", ps, [
            ([0, 300, 0], 0, 800, 1, V),
            ([800, 300, 0], 300, 0, 0, X),
            ([800, 300, 0], 0, 0, 0, X),
        ]);
        assert_eq!(ps[0].on_ack(1), Ok(Some(700)));
        #[rustfmt::skip]
        step("S8", ps, [
            ([800, 300, 0], 700, 0, 0, X),
            ([800, 300, 0], 300, 0, 0, X),
            ([800, 300, 0], 0, 0, 0, X),
        ]);
    }

    fn table_2(ps: &mut [P; 3]) {
        #[rustfmt::skip]
        step("S9", ps, [
            ([800, 300, 0], 700, 0, 0, X),
            ([800, 300, 0], 300, 0, 0, X),
            ([800, 300, 0], 0, 0, 0, X),
        ]);
        assert_eq!(ps[2].increase_bw(600), Ok(Incr { amount: 600 }));
        #[rustfmt::skip]
        step("S10", ps, [
            ([800, 300, 0], 700, 0, 0, X),
            ([800, 300, 0], 300, 0, 0, X),
            ([800, 300, 0], 0, 600, 0, X),
        ]);
        // p0 must slow down before it acknowledges.
        assert_eq!(ps[0].on_deliver_incr(2, 600), delivered(Some(2), Some(500)));
        assert_eq!(ps[1].on_deliver_incr(2, 600), delivered(Some(2), None));
        assert_eq!(ps[2].on_deliver_incr(2, 600), delivered(None, None));
        #[rustfmt::skip]
        step("S11", ps, [
            ([800, 300, 600], 500, 0, 0, X),
            ([800, 300, 600], 300, 0, 0, X),
            ([800, 300, 0], 0, 600, 0, V),
        ]);
        assert_eq!(ps[2].on_ack(0), Ok(None));
        #[rustfmt::skip]
        step("S12", ps, [
            ([800, 300, 600], 500, 0, 0, X),
            ([800, 300, 600], 300, 0, 0, X),
            ([800, 300, 0], 0, 600, 1, V),
        ]);
        assert_eq!(ps[2].on_ack(1), Ok(Some(500)));
        #[rustfmt::skip]
        step("S13", ps, [
            ([800, 300, 600], 500, 0, 0, X),
            ([800, 300, 600], 300, 0, 0, X),
            ([800, 300, 600], 500, 0, 0, X),
        ]);
    }

    fn table_3(ps: &mut [P; 3]) {
        #[rustfmt::skip]
        step("S14", ps, [
            ([800, 300, 600], 500, 0, 0, X),
            ([800, 300, 600], 300, 0, 0, X),
            ([800, 300, 600], 500, 0, 0, X),
        ]);
        assert_eq!(
            ps[2].decrease_bw(500),
            Ok(Decr {
                amount: 500,
                new_bw: Some(100)
            })
        );
        #[rustfmt::skip]
        step("S15", ps, [
            ([800, 300, 600], 500, 0, 0, X),
            ([800, 300, 600], 300, 0, 0, X),
            ([800, 300, 100], 100, 0, 0, X),
        ]);
        assert_eq!(ps[0].on_deliver_decr(2, 500), Ok(Some(700)));
        assert_eq!(ps[1].on_deliver_decr(2, 500), Ok(None));
        assert_eq!(ps[2].on_deliver_decr(2, 500), Ok(None));
        #[rustfmt::skip]
        step("S16", ps, [
            ([800, 300, 100], 700, 0, 0, X),
            ([800, 300, 100], 300, 0, 0, X),
            ([800, 300, 100], 100, 0, 0, X),
        ]);
    }

    #[test]
    fn paper_table_1() {
        table_1(&mut processes());
    }

    #[test]
    fn paper_table_2() {
        let mut ps = processes();
        table_1(&mut ps);
        table_2(&mut ps);
    }

    #[test]
    fn paper_table_3() {
        let mut ps = processes();
        table_1(&mut ps);
        table_2(&mut ps);
        table_3(&mut ps);
    }

    // ---- Beyond the tables: errors, duplicates, view changes ----

    #[test]
    fn new_rejects_bad_views() {
        assert_eq!(P::new(3, 3, 1000).unwrap_err(), BwError::BadView);
        assert_eq!(P::new(0, 4, 1000).unwrap_err(), BwError::BadView);
        assert_eq!(P::new(0, 0, 1000).unwrap_err(), BwError::BadView);
        let p = BandwidthAllocation::<4>::new(1, 2, 1000).unwrap();
        assert_eq!(
            (p.me(), p.members(), p.live(), p.capacity()),
            (1, 2, 0b11, 1000)
        );
    }

    #[test]
    fn increase_and_decrease_wait_for_an_ongoing_increase() {
        let mut p = processes().map(Some)[0].take().unwrap();
        p.increase_bw(800).unwrap();
        let before = p.clone();
        assert_eq!(p.increase_bw(100), Err(BwError::Busy));
        assert_eq!(p.decrease_bw(100), Err(BwError::Busy));
        assert_eq!(p, before);
        // Once complete, both are allowed again.
        p.on_deliver_incr(0, 800).unwrap();
        p.on_ack(1).unwrap();
        assert_eq!(p.on_ack(2), Ok(Some(800)));
        assert_eq!(p.increase_bw(100), Ok(Incr { amount: 100 }));
    }

    #[test]
    fn bad_input_changes_nothing() {
        let mut p = processes().map(Some)[0].take().unwrap();
        let before = p.clone();
        assert_eq!(p.increase_bw(0), Err(BwError::ZeroAmount));
        assert_eq!(p.decrease_bw(5), Err(BwError::ZeroAmount)); // requirement is 0
        assert_eq!(p.on_deliver_incr(3, 5), Err(BwError::UnknownMember));
        assert_eq!(
            p.on_deliver_incr(usize::MAX, 5),
            Err(BwError::UnknownMember)
        );
        assert_eq!(p.on_deliver_decr(3, 5), Err(BwError::UnknownMember));
        assert_eq!(p.on_ack(0), Err(BwError::UnknownMember)); // ACK from itself
        assert_eq!(p.on_ack(7), Err(BwError::UnknownMember));
        // Own INCR with none ongoing.
        assert_eq!(p.on_deliver_incr(0, 5), Err(BwError::Unexpected));
        // Stray ACK with no increase ongoing.
        assert_eq!(p.on_ack(1), Ok(None));
        assert_eq!(p, before);
        p.increase_bw(800).unwrap();
        let before = p.clone();
        // Own INCR with another amount, then delivered twice.
        assert_eq!(p.on_deliver_incr(0, 801), Err(BwError::Unexpected));
        assert_eq!(p, before);
        p.on_deliver_incr(0, 800).unwrap();
        assert_eq!(p.on_deliver_incr(0, 800), Err(BwError::Unexpected));
        assert!(p.delivered_req());
    }

    #[test]
    fn duplicate_acks_are_counted_once() {
        let mut p = processes().map(Some)[0].take().unwrap();
        p.increase_bw(800).unwrap();
        p.on_deliver_incr(0, 800).unwrap();
        assert_eq!(p.on_ack(1), Ok(None));
        assert_eq!(p.on_ack(1), Ok(None));
        assert_eq!(p.acks(), 1);
        // A counter would have reached N − 1 = 2 and completed here.
        assert_eq!((p.ongoing_increase(), p.current_bw()), (800, 0));
        assert_eq!(p.on_ack(2), Ok(Some(800)));
        assert_eq!(
            (p.ongoing_increase(), p.acks(), p.delivered_req()),
            (0, 0, false)
        );
        assert_eq!(p.bw_requirements(), &[800, 0, 0]);
    }

    #[test]
    fn alone_an_increase_completes_at_its_own_delivery() {
        let mut p = BandwidthAllocation::<1>::new(0, 1, 1000).unwrap();
        p.increase_bw(1500).unwrap();
        assert_eq!(p.on_deliver_incr(0, 1500), delivered(None, Some(1000)));
        assert_eq!((p.ongoing_increase(), p.bw_requirements()), (0, &[1500]));
    }

    #[test]
    fn decrease_saturates_and_announces_what_it_removed() {
        let mut p = BandwidthAllocation::<2>::new(0, 2, 1000).unwrap();
        p.increase_bw(300).unwrap();
        p.on_ack(1).unwrap();
        p.on_deliver_incr(0, 300).unwrap();
        assert_eq!(p.current_bw(), 300);
        assert_eq!(
            p.decrease_bw(1000),
            Ok(Decr {
                amount: 300,
                new_bw: Some(0)
            })
        );
        assert_eq!(p.bw_requirements(), &[0, 0]);
        // Another's DECR larger than what it asked for stops at 0.
        p.on_deliver_incr(1, 50).unwrap();
        assert_eq!(p.on_deliver_decr(1, 70), Ok(None));
        assert_eq!(p.bw_requirements(), &[0, 0]);
    }

    #[test]
    fn requirements_saturate_instead_of_overflowing() {
        let mut p = processes().map(Some)[0].take().unwrap();
        p.on_deliver_incr(1, u64::MAX).unwrap();
        p.on_deliver_incr(1, u64::MAX).unwrap();
        assert_eq!(p.bw_requirements(), &[0, u64::MAX, 0]);
        p.increase_bw(u64::MAX).unwrap();
        p.on_deliver_incr(0, u64::MAX).unwrap();
        p.on_ack(1).unwrap();
        p.on_ack(2).unwrap();
        assert_eq!(p.bw_requirements(), &[u64::MAX, u64::MAX, 0]);
        assert_eq!(p.current_bw(), 500);
    }

    #[test]
    fn a_member_that_leaves_releases_an_ongoing_increase() {
        // p0 asks for 800; p1 acknowledges, p2 crashes before it does.
        let mut p = processes().map(Some)[0].take().unwrap();
        p.on_deliver_incr(2, 600).unwrap();
        p.increase_bw(800).unwrap();
        p.on_deliver_incr(0, 800).unwrap();
        p.on_ack(1).unwrap();
        assert_eq!((p.ongoing_increase(), p.acks()), (800, 1));
        // Without a view change it would wait for p2's ACK forever.
        // The new view {p0, p1}: p2's requirement is dropped and the
        // increase completes; with N = 2, p0 alone bounds its rate.
        assert_eq!(p.on_view_change(0b011), Ok(Some(800)));
        assert_eq!(p.bw_requirements(), &[800, 0, 0]);
        assert_eq!(
            (p.ongoing_increase(), p.acks(), p.delivered_req()),
            (0, 0, false)
        );
        assert_eq!(p.members(), 2);
        // p2 can no longer take part.
        assert_eq!(p.on_ack(2), Err(BwError::UnknownMember));
        assert_eq!(p.on_deliver_incr(2, 1), Err(BwError::UnknownMember));
    }

    #[test]
    fn a_leave_before_own_delivery_still_waits_for_the_delivery() {
        let mut p = processes().map(Some)[0].take().unwrap();
        p.increase_bw(800).unwrap();
        p.on_ack(1).unwrap();
        assert_eq!(p.on_view_change(0b011), Ok(None));
        assert_eq!(
            (p.ongoing_increase(), p.acks(), p.delivered_req()),
            (800, 1, false)
        );
        assert_eq!(p.on_deliver_incr(0, 800), delivered(None, Some(800)));
    }

    #[test]
    fn a_leave_zeroes_the_requirement_and_recomputes() {
        let mut ps = processes();
        table_1(&mut ps);
        table_2(&mut ps);
        let mut p1 = ps[1].clone();
        // p0 (800) leaves: p1 and p2 remain, each bounded by its own need.
        assert_eq!(p1.on_view_change(0b110), Ok(None));
        assert_eq!(p1.bw_requirements(), &[0, 300, 600]);
        let mut p2 = ps[2].clone();
        assert_eq!(p2.on_view_change(0b110), Ok(Some(600)));
        assert_eq!(p2.acks(), 0);
    }

    #[test]
    fn a_joiner_is_not_awaited_by_an_earlier_increase() {
        let mut p = P::new(0, 2, 1000).unwrap();
        p.increase_bw(800).unwrap();
        assert_eq!(p.on_view_change(0b111), Ok(None));
        assert_eq!(p.members(), 3);
        // The joiner's ACK, if it delivered the INCR, is not needed nor counted.
        assert_eq!(p.on_ack(2), Ok(None));
        assert_eq!(p.acks(), 0);
        p.on_ack(1).unwrap();
        assert_eq!(p.on_deliver_incr(0, 800), delivered(None, Some(800)));
        // The next increase awaits all three.
        p.increase_bw(100).unwrap();
        p.on_deliver_incr(0, 100).unwrap();
        p.on_ack(1).unwrap();
        assert_eq!(p.ongoing_increase(), 100);
        assert_eq!(p.on_ack(2), Ok(Some(900)));
    }

    #[test]
    fn view_change_rejects_bad_views() {
        let mut p = processes().map(Some)[1].take().unwrap();
        p.on_deliver_incr(0, 10).unwrap();
        let before = p.clone();
        assert_eq!(p.on_view_change(0b101), Err(BwError::BadView)); // without me
        assert_eq!(p.on_view_change(0b1011), Err(BwError::BadView)); // index 3 >= N
        assert_eq!(p.on_view_change(0), Err(BwError::BadView));
        assert_eq!(p, before);
    }

    // ---- The protocol as a whole, under random interleavings ----

    /// One event of a random run: a process asks for more or less, a
    /// process delivers the next message of the total order, or one ACK in
    /// flight (picked by index) arrives.
    #[derive(Clone, Copy, Debug)]
    enum Op {
        Increase(usize, u64),
        Decrease(usize, u64),
        Deliver(usize),
        Ack(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            1 => (0usize..6, 1u64..1200).prop_map(|(p, a)| Op::Increase(p, a)),
            1 => (0usize..6, 1u64..1200).prop_map(|(p, a)| Op::Decrease(p, a)),
            3 => (0usize..6).prop_map(Op::Deliver),
            3 => any::<usize>().prop_map(Op::Ack),
        ]
    }

    #[derive(Clone, Copy)]
    enum Msg {
        Incr(u64),
        Decr(u64),
    }

    /// A random run of `k` processes: every broadcast goes into one total
    /// order (`utoBroadcast`) that each process delivers at its own pace;
    /// ACKs arrive in any order. Nothing is lost.
    struct Run {
        ps: Vec<BandwidthAllocation<6>>,
        /// The total order: (sender, message).
        log: Vec<(usize, Msg)>,
        /// How much of `log` each process delivered.
        cursor: Vec<usize>,
        /// ACKs in flight: (to, from).
        acks: Vec<(usize, usize)>,
    }

    impl Run {
        fn new(k: usize) -> Self {
            Run {
                ps: (0..k)
                    .map(|i| BandwidthAllocation::new(i, k, 1000).unwrap())
                    .collect(),
                log: Vec::new(),
                cursor: std::vec![0; k],
                acks: Vec::new(),
            }
        }

        fn apply(&mut self, op: Op) {
            let k = self.ps.len();
            match op {
                Op::Increase(p, a) => {
                    if let Ok(Incr { amount }) = self.ps[p % k].increase_bw(a) {
                        self.log.push((p % k, Msg::Incr(amount)));
                    }
                }
                Op::Decrease(p, a) => {
                    if let Ok(Decr { amount, .. }) = self.ps[p % k].decrease_bw(a) {
                        self.log.push((p % k, Msg::Decr(amount)));
                    }
                }
                Op::Deliver(p) => {
                    let p = p % k;
                    if let Some(&(from, msg)) = self.log.get(self.cursor[p]) {
                        self.cursor[p] += 1;
                        match msg {
                            Msg::Incr(a) => {
                                let d = self.ps[p].on_deliver_incr(from, a).unwrap();
                                if let Some(to) = d.ack_to {
                                    self.acks.push((to, p));
                                }
                            }
                            Msg::Decr(a) => {
                                self.ps[p].on_deliver_decr(from, a).unwrap();
                            }
                        }
                    }
                }
                Op::Ack(i) => {
                    if !self.acks.is_empty() {
                        let (to, from) = self.acks.swap_remove(i % self.acks.len());
                        self.ps[to].on_ack(from).unwrap();
                    }
                }
            }
        }

        fn quiesce(&mut self) {
            let k = self.ps.len();
            while self.cursor.iter().any(|&c| c < self.log.len()) || !self.acks.is_empty() {
                for p in 0..k {
                    self.apply(Op::Deliver(p));
                }
                self.apply(Op::Ack(0));
            }
        }
    }

    proptest! {
        #[test]
        fn processes_agree_once_quiet(k in 1usize..=6, ops in proptest::collection::vec(op(), 0..80)) {
            let mut run = Run::new(k);
            for op in ops {
                run.apply(op);
            }
            run.quiesce();
            let reqs = *run.ps[0].bw_requirements();
            for (i, p) in run.ps.iter().enumerate() {
                prop_assert_eq!(p.bw_requirements(), &reqs, "p{}", i);
                prop_assert_eq!(p.ongoing_increase(), 0);
                prop_assert_eq!(p.current_bw(), bw_allocation(&reqs[..k], i, 1000));
            }
        }

        /// The point of the protocol (§3.5): however the deliveries and
        /// ACKs interleave, the rates in force never overload a receiver.
        /// Fig. 4 does not prove it; this checks it after every event.
        #[test]
        fn receivers_never_overloaded_at_any_step(
            k in 1usize..=6,
            ops in proptest::collection::vec(op(), 0..300),
        ) {
            let mut run = Run::new(k);
            for op in ops {
                run.apply(op);
                for r in 0..k {
                    let inbound: u64 = run.ps.iter()
                        .filter(|p| p.me() != r)
                        .map(|p| p.current_bw())
                        .sum();
                    prop_assert!(inbound <= 1000, "receiver {} gets {} after {:?}", r, inbound, op);
                }
            }
        }
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

        /// Backs [`IncrDelivered::new_bw`]: another's INCR never raises a rate.
        #[test]
        fn another_increase_never_raises_a_share(
            (req, cap) in requirements(),
            who in any::<prop::sample::Index>(),
            amount in any::<u64>(),
        ) {
            let j = who.index(req.len());
            let mut more = req.clone();
            more[j] = more[j].saturating_add(amount);
            for i in (0..req.len()).filter(|&i| i != j) {
                prop_assert!(bw_allocation(&more, i, cap) <= bw_allocation(&req, i, cap));
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
