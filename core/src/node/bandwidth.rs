//! Bandwidth allocation wired into the node (FastCast §3.5, Fig. 4).
//!
//! The state machine of Fig. 4 is [`crate::bandwidth::BandwidthAllocation`];
//! this module carries its messages: INCR and DECR travel through the total
//! order broadcast itself (so every process sees requirements in the same
//! order), the ACK of an INCR by reliable unicast (`BwAck`, re-requested by
//! the requester with `BwPoll` until every awaited member answered), and the
//! allocated rate drives the token bucket of the node's cluster sink.
//!
//! Decisions:
//! * Rates are in bytes per second, the unit of `Config::link_capacity`.
//! * A process whose allocation is 0 still sends at a floor of
//!   `capacity / 64`, so acknowledgements, sequencer orders and its own
//!   INCR keep moving (the paper's processes start at 0 and would otherwise
//!   be unable to ask for more).
//! * **Headroom.** The token bucket runs at the allocation less
//!   1/[`RATE_HEADROOM_DIVISOR`] (0.5 %). Max-min shares of `link_capacity`
//!   add up, on every receiver's downlink, to exactly the capacity: with
//!   every process sending flat out the downlinks would run at load 1, where
//!   nothing drains their queues. Measured (FastCast throughput, N = 8,
//!   942 Mb/s): the queues grew over a second to 5 ms, the delivery latency
//!   after sending passed the time an origin's byte budget lasts, sinks of
//!   every origin but the sequencer ran dry and sent acknowledgements alone
//!   (2408 of 5179 datagrams), and throughput fell to 97.3 % of the optimum;
//!   with the margin the queues stay short, no sink runs dry, and it is
//!   98.4 % over the same second. The margin also absorbs control records
//!   and IP/UDP headers of datagrams shorter than the MTU, which the
//!   capacity does not count. The paper sets `availableBW` to what links
//!   carry with its batch size (§3.5) and leaves the rest open; the margin
//!   is ours. `current_bw` and the allocation itself (the paper's
//!   Tables 1–3) are unchanged; only the sending rate has it.
//! * The sink aggregates whatever waits when its token bucket lets it send,
//!   so under contention datagrams fill up to the MTU (the paper's ≥ 4 kB
//!   batching, bounded by the MTU); without contention a datagram leaves at
//!   once with what is there.

use super::sequencer::TobKind;
use super::*;
use crate::bandwidth::{BandwidthAllocation, BwError};

/// The token bucket of the cluster sink runs at the allocated rate less
/// `rate / RATE_HEADROOM_DIVISOR`, so that downlinks the allocation fills
/// exactly keep a margin (see the module docs).
pub const RATE_HEADROOM_DIVISOR: u64 = 200;

/// The node's bandwidth-allocation state.
pub struct BandwidthState<const N: usize> {
    alloc: Option<BandwidthAllocation<N>>,
    /// When to poll missing ACKs of the ongoing increase.
    pub(crate) next_poll: Option<Instant>,
    /// The counter of this process's INCR in flight.
    my_incr: Option<u32>,
    /// INCR counter whose ACK is owed to each member.
    owed: [Option<u32>; N],
    /// Members whose ACK of `my_incr` arrived.
    acked_by: u64,
}

impl<const N: usize> BandwidthState<N> {
    pub(crate) fn new(me: usize, members: usize, capacity: Option<u64>) -> Self {
        BandwidthState {
            alloc: capacity.and_then(|c| BandwidthAllocation::new(me, members, c).ok()),
            next_poll: None,
            my_incr: None,
            owed: [None; N],
            acked_by: 0,
        }
    }

    /// The allocation state (Fig. 4's fields), when allocation is enabled.
    pub fn allocation(&self) -> Option<&BandwidthAllocation<N>> {
        self.alloc.as_ref()
    }
}

impl<
        const SINKS: usize,
        const QUEUE: usize,
        const SLOTS: usize,
        const BLOCKS: usize,
        const INBOX: usize,
        const MTU: usize,
        const GROUPS: usize,
        const RING: usize,
    > Node<SINKS, QUEUE, SLOTS, BLOCKS, INBOX, MTU, GROUPS, RING>
{
    /// `increase_BW(amount)` (Fig. 4 line 7): asks, through the total order,
    /// to send `amount` bytes/s more. The rate rises once every member
    /// acknowledged. [`Error::Busy`] while an increase is ongoing.
    pub fn increase_bw(&mut self, now: Instant, amount: u64) -> Result<MsgId, Error> {
        let alloc = self
            .bw
            .alloc
            .as_ref()
            .ok_or(Error::InvalidConfig("link_capacity"))?;
        if alloc.ongoing_increase() != 0 {
            return Err(Error::Busy);
        }
        if amount == 0 {
            return Err(Error::InvalidConfig("amount"));
        }
        let id = self.tob_broadcast(now, &amount.to_be_bytes(), TobKind::Incr)?;
        if let Some(a) = self.bw.alloc.as_mut() {
            let _ = a.increase_bw(amount);
        }
        self.bw.my_incr = Some(id.counter);
        self.bw.acked_by = 0;
        self.bw.next_poll = Some(now + self.tob.rto);
        Ok(id)
    }

    /// `decrease_BW(amount)` (line 26): lowers this process's rate at once,
    /// then tells the others through the total order.
    pub fn decrease_bw(&mut self, now: Instant, amount: u64) -> Result<MsgId, Error> {
        let alloc = self
            .bw
            .alloc
            .as_ref()
            .ok_or(Error::InvalidConfig("link_capacity"))?;
        if alloc.ongoing_increase() != 0 {
            return Err(Error::Busy);
        }
        let mine = alloc.bw_requirements().get(self.me).copied().unwrap_or(0);
        let amount = amount.min(mine);
        if amount == 0 {
            return Err(Error::InvalidConfig("amount"));
        }
        let id = self.tob_broadcast(now, &amount.to_be_bytes(), TobKind::Decr)?;
        let new_bw = self
            .bw
            .alloc
            .as_mut()
            .and_then(|a| a.decrease_bw(amount).ok())
            .and_then(|d| d.new_bw);
        if let Some(bw) = new_bw {
            self.apply_bw(bw, now);
        }
        Ok(id)
    }

    /// The current allocation: this process's rate, when allocation is on.
    pub fn current_bw(&self) -> Option<u64> {
        self.bw.alloc.as_ref().map(|a| a.current_bw())
    }

    /// The bandwidth allocation state (for inspection and tests).
    pub fn bandwidth(&self) -> &BandwidthState<SINKS> {
        &self.bw
    }

    fn apply_bw(&mut self, bw: u64, now: Instant) {
        let capacity = self.bw.alloc.as_ref().map_or(0, |a| a.capacity());
        let rate = sending_rate(bw, capacity);
        let burst = (self.mtu as u64).max(rate / 1000);
        let sink = &mut self.sinks[GROUP_SINK];
        match &mut sink.control.rate {
            Some(tb) => tb.set_rate(rate, now),
            None => sink.control.rate = Some(TokenBucket::new(rate, burst, now)),
        }
        self.inbox
            .push(EventMeta::BandwidthChanged { current: bw }, &[]);
    }

    /// An INCR or DECR was delivered in total order (lines 11–16, 31–33).
    pub(crate) fn on_bandwidth_request(
        &mut self,
        origin: usize,
        kind: TobKind,
        counter: u32,
        amount: u64,
    ) {
        let now = self.now;
        let Some(a) = self.bw.alloc.as_mut() else {
            return;
        };
        let (new_bw, ack_to) = match kind {
            TobKind::Incr => match a.on_deliver_incr(origin, amount) {
                Ok(d) => {
                    if origin == self.me && a.ongoing_increase() == 0 {
                        self.bw.my_incr = None;
                        self.bw.next_poll = None;
                    }
                    (d.new_bw, d.ack_to)
                }
                Err(BwError::Unexpected) | Err(_) => (None, None),
            },
            TobKind::Decr => (a.on_deliver_decr(origin, amount).ok().flatten(), None),
            TobKind::App | TobKind::Batch => (None, None),
        };
        if let Some(to) = ack_to {
            if let Some(o) = self.bw.owed.get_mut(to) {
                *o = Some(counter);
            }
            self.register(to + 1, Feed::BwAck, now);
        }
        if let Some(bw) = new_bw {
            self.apply_bw(bw, now);
        }
    }

    /// ACK of this process's INCR (lines 17–25).
    pub(crate) fn on_bw_ack(&mut self, now: Instant, from: usize, counter: u32) {
        if self.bw.my_incr != Some(counter) || self.bw.acked_by & (1u64 << from.min(63)) != 0 {
            return;
        }
        self.bw.acked_by |= 1u64 << from.min(63);
        let Some(a) = self.bw.alloc.as_mut() else {
            return;
        };
        let new_bw = a.on_ack(from).ok().flatten();
        if a.ongoing_increase() == 0 {
            self.bw.my_incr = None;
            self.bw.next_poll = None;
        }
        if let Some(bw) = new_bw {
            self.apply_bw(bw, now);
        }
    }

    /// The requester of INCR `counter` lacks our ACK: send it again if we
    /// delivered that INCR.
    pub(crate) fn on_bw_poll(&mut self, now: Instant, from: usize, counter: u32) {
        if counter.wrapping_sub(self.tob.next_to_deliver[from]) >= 0x8000_0000 {
            self.bw.owed[from] = Some(counter);
            self.register(from + 1, Feed::BwAck, now);
        }
    }

    /// Poll the members whose ACK is missing.
    pub(crate) fn bandwidth_tick(&mut self, now: Instant) {
        let Some(_) = self.bw.my_incr else {
            self.bw.next_poll = None;
            return;
        };
        self.bw.next_poll = Some(now + self.tob.rto);
        let mut v = self.tob.view & !(1u64 << self.me) & !self.bw.acked_by;
        while v != 0 {
            let p = v.trailing_zeros() as usize;
            v &= v - 1;
            self.register(p + 1, Feed::BwPoll, now);
        }
    }

    /// `BwAck` / `BwPoll` records, made when pulled.
    pub(crate) fn pull_bandwidth(
        &mut self,
        s: usize,
        feed: Feed,
        w: &mut FrameWriter<'_>,
    ) -> Pulled {
        let peer = s - 1;
        self.sinks[s].registered &= !feed.bit();
        let r = match feed {
            Feed::BwAck => match self.bw.owed[peer] {
                Some(counter) => RecordRepr::BwAck { counter },
                None => return Pulled::Done,
            },
            _ => match self.bw.my_incr {
                Some(counter) => RecordRepr::BwPoll { counter },
                None => return Pulled::Done,
            },
        };
        let pulled = self.push_for_feed(s, feed, &r, w);
        if feed == Feed::BwAck && matches!(pulled, Pulled::Done) {
            self.bw.owed[peer] = None;
        }
        pulled
    }

    /// A view was installed: requirements of members that left are dropped.
    pub(crate) fn on_view_installed(&mut self, now: Instant) {
        self.view_since = now;
        let live = self.tob.view;
        let new_bw = self
            .bw
            .alloc
            .as_mut()
            .and_then(|a| a.on_view_change(live).ok().flatten());
        if let Some(bw) = new_bw {
            self.apply_bw(bw, now);
        }
        if self
            .bw
            .alloc
            .as_ref()
            .is_some_and(|a| a.ongoing_increase() == 0)
        {
            self.bw.my_incr = None;
        }
    }
}

/// The token-bucket rate for an allocation of `bw` out of `capacity`: at
/// least the floor `capacity / 64`, less the headroom.
fn sending_rate(bw: u64, capacity: u64) -> u64 {
    let rate = bw.max(capacity / 64);
    (rate - rate / RATE_HEADROOM_DIVISOR).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sending_rate_keeps_the_headroom_and_the_floor() {
        assert_eq!(sending_rate(1_000_000, 6_400_000), 995_000);
        // Below the floor: the floor, less the headroom.
        assert_eq!(sending_rate(0, 6_400_000), 99_500);
        assert_eq!(sending_rate(0, 0), 1);
        assert_eq!(sending_rate(u64::MAX, u64::MAX), u64::MAX - u64::MAX / 200);
    }
}
