//! The node's side of QSM ([`crate::qsm`], QSM §3–§4): CMS views, the
//! application's `multicast`, the feeds of region sinks and of
//! point-to-point recovery and tokens, and the handling of QSM records.
//!
//! QSM shares the node's sinks, feeds, payload pool and alarm queue with
//! the other protocols (§4, Fig. 9–10), so a token bound for a peer leaves
//! in the same datagram as whatever else is queued for that peer. Its
//! peers are mostly not members of the TOB cluster: their sinks come from
//! the spare capacity above the cluster's (`SINKS - members - 1`), taken
//! when first needed and re-bound to another destination when idle, so the
//! set of QSM peers a node talks to over time is unbounded while the sinks
//! it holds at once are not.

use super::*;
use crate::pool::BLOCK_LEN;
use crate::qsm::{
    cache, recovery_target, GroupView, Held, QsmMemory, QsmStats, RecoveryTarget, RecvStream,
    Region, RegionView, SendSlot, SendStream, TokenBuf, TokenEntry, Work, MAX_REGIONS, MAX_STREAMS,
};
use crate::wire::multicast::{self as mc, EntryList};

/// Most messages one request may ask for.
const MAX_REQUEST: u16 = 64;
/// Most messages the sender re-multicasts at once for a silent tail.
const TAIL_BURST: u32 = 16;
/// Token visits without progress before a member asks the sender.
const STALL_VISITS: u8 = 3;
/// Token visits a joiner's stream waits after its anchor before delivering.
const JOIN_SETTLE_VISITS: u8 = 3;

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
    /// Whether this node type has QSM capacity. Without it (`GROUPS` or
    /// `RING` 0) the entry points below return at once, so the compiler
    /// drops QSM's code from the binary (≈ 8 KiB of a firmware's flash).
    const HAS_QSM: bool = GROUPS > 0 && RING > 0;

    /// Installs a CMS view (QSM §3): the regions this node is a member of
    /// or sends to, and the groups (each spanning some of `regions`, by
    /// bit mask). `groups` must be sorted by id, strictly increasing, at
    /// most `GROUPS` of them; `epoch` must grow from view to view.
    ///
    /// A new view flushes the old one (see [`crate::qsm`], "Views and the
    /// flush"): streams of regions that stay (same address) carry over with
    /// their numbering, so the messages of the old view still reach every
    /// member that stays, before the new view's, in per-sender order; a
    /// sender keeps its per-group numbering for the groups that stay. A
    /// member that joins a region mid-stream starts each stream at the
    /// region's stability point the token reports. Errors
    /// ([`Error::InvalidConfig`]) change nothing.
    pub fn install_groups(
        &mut self,
        now: Instant,
        epoch: u32,
        regions: &[RegionView<'_>],
        groups: &[GroupView],
    ) -> Result<(), Error> {
        self.now = self.now.max(now);
        if !Self::HAS_QSM {
            return Err(Error::InvalidConfig(
                "install_groups: this build has no QSM capacity (GROUPS, RING)",
            ));
        }
        if self.qsm.is_active() && epoch <= self.qsm.epoch {
            return Err(Error::InvalidConfig("install_groups: epoch must grow"));
        }
        if regions.len() > MAX_REGIONS || regions.is_empty() {
            return Err(Error::InvalidConfig(
                "install_groups: 1 ..= MAX_REGIONS regions",
            ));
        }
        if groups.len() > GROUPS {
            return Err(Error::InvalidConfig(
                "install_groups: more groups than GROUPS",
            ));
        }
        let spare = SINKS.saturating_sub(self.first_qsm_sink);
        if RING == 0 || GROUPS == 0 {
            return Err(Error::InvalidConfig(
                "install_groups: this build has no QSM capacity (GROUPS, RING)",
            ));
        }
        if spare < regions.len() + 2 {
            return Err(Error::InvalidConfig(
                "install_groups: too few spare sinks (SINKS - members - 1)",
            ));
        }
        let mut new_regions: heapless::Vec<Region, MAX_REGIONS> = heapless::Vec::new();
        for v in regions {
            let r = Region::new(v, self.qsm.config.partition_size)
                .map_err(|_| Error::InvalidConfig("install_groups: bad region view"))?;
            if new_regions.iter().any(|o| o.address == r.address) || r.address == GroupId::ALL {
                return Err(Error::InvalidConfig(
                    "install_groups: region address reused",
                ));
            }
            let _ = new_regions.push(r);
        }
        let all_regions: u8 = ((1u16 << regions.len()) - 1) as u8;
        let mut prev: Option<u32> = None;
        for g in groups {
            if prev.is_some_and(|p| g.group.0 <= p) {
                return Err(Error::InvalidConfig("install_groups: groups not sorted"));
            }
            if g.regions == 0 || g.regions & !all_regions != 0 {
                return Err(Error::InvalidConfig("install_groups: bad region mask"));
            }
            prev = Some(g.group.0);
        }
        // Accepted. The flush (see `crate::qsm`, "Views and the flush"):
        // streams of regions that persist (same address) carry over with
        // their numbering, received state and cached copies; the rest is
        // freed. Bounded by MAX_REGIONS, MAX_STREAMS, RING and GROUPS.
        let first_view = !self.qsm.is_active();
        let me = self.id;
        let old_regions = core::mem::replace(&mut self.qsm.regions, new_regions);
        let map = |or: usize, new: &heapless::Vec<Region, MAX_REGIONS>| {
            old_regions
                .get(or)
                .and_then(|o| new.iter().position(|n| n.address == o.address))
        };
        // Sender streams, permuted to the new region indices.
        let mut old_send: [SendStream<RING>; MAX_REGIONS] =
            core::array::from_fn(|_| SendStream::new());
        core::mem::swap(&mut old_send, &mut self.qsm.send);
        for (or, mut st) in old_send.into_iter().enumerate() {
            match map(or, &self.qsm.regions) {
                Some(nr) => {
                    // Rounds restart in the new view: so does the tail rule.
                    st.mark_round = 0;
                    st.mark_sent = 0;
                    st.progress_at = now;
                    st.retransmit.clear();
                    self.qsm.send[nr] = st;
                }
                None => self.qsm_free_send(&mut st),
            }
        }
        // Receive streams of regions this node is still a member of.
        for i in 0..self.qsm.streams.len() {
            let or = usize::from(self.qsm.streams[i].region);
            let keep = map(or, &self.qsm.regions)
                .filter(|&nr| self.qsm.regions[nr].contains(me) && old_regions[or].contains(me));
            match keep {
                Some(nr) => {
                    let st = &mut self.qsm.streams[i];
                    st.region = nr as u8;
                    st.stall = 0;
                    st.stall_mc = st.mc;
                }
                None => {
                    self.qsm_free_stream(i);
                    self.qsm.streams[i].region = u8::MAX;
                }
            }
        }
        self.qsm.streams.retain(|s| s.region != u8::MAX);
        for nr in 0..MAX_REGIONS {
            let was = old_regions.iter().find(|o| {
                self.qsm
                    .regions
                    .get(nr)
                    .is_some_and(|n| n.address == o.address)
                    && o.contains(me)
            });
            self.qsm.prev[nr] = was.cloned();
            // A first view of epoch 1 is the system's initial one: every
            // stream starts at 1. Otherwise a region this node was not a
            // member of is joined mid-stream.
            self.qsm.joined[nr] = was.is_none() && !(first_view && epoch == 1);
        }
        let q = &mut self.qsm;
        q.epoch = epoch;
        // Groups: per-group numbering carries over for groups that stay.
        crate::qsm::merge_groups(&mut q.groups, groups);
        q.pending = core::array::from_fn(|_| [None, None]);
        q.leader = core::array::from_fn(|_| Default::default());
        for led in q.leader.iter_mut().flatten() {
            led.last_token = Some(now);
        }
        for c in q.control.iter_mut() {
            c.clear();
        }
        for c in q.recovery.iter_mut() {
            c.clear();
        }
        q.region_sink = [None; MAX_REGIONS];
        q.next_tick = Some(now + q.config.token_period);
        q.tick_phase = false;
        for r in 0..self.qsm.regions.len() {
            let address = self.qsm.regions[r].address;
            self.qsm.region_sink[r] = self.qsm_sink(Destination::Group(address)).map(|s| s as u16);
            // Carried-over messages not yet sent once go out in the new view.
            let st = &self.qsm.send[r];
            if st.sent_upto.saturating_add(1) < st.next_seq {
                if let Some(s) = self.qsm.region_sink[r] {
                    self.register(usize::from(s), Feed::QsmData, now);
                }
            }
        }
        Ok(())
    }

    /// The receive state of this node's `i`-th stream, for diagnostics:
    /// `(region address, sender, MaxContiguous, delivered, max_seen)`;
    /// `None` past the last stream or while a joiner's stream has no
    /// anchor yet.
    pub fn qsm_stream_state(&self, i: usize) -> Option<(GroupId, NodeId, u32, u32, u32)> {
        let st = self.qsm.streams.get(i)?;
        let region = self.qsm.regions.get(usize::from(st.region))?;
        st.anchored
            .then_some((region.address, st.sender, st.mc, st.delivered, st.max_seen))
    }

    /// QSM's measurements.
    pub fn qsm_stats(&self) -> &QsmStats {
        &self.qsm.stats
    }

    /// Bytes of QSM state in this build (fixed at construction).
    pub fn qsm_memory(&self) -> QsmMemory {
        crate::qsm::Qsm::<SINKS, GROUPS, RING>::memory()
    }

    /// Messages this node multicast and its regions have not yet
    /// acknowledged (summed over regions).
    pub fn qsm_pending(&self) -> u64 {
        self.qsm
            .send
            .iter()
            .take(self.qsm.regions.len())
            .map(|s| u64::from(s.unacked()))
            .sum()
    }

    /// Pool bytes QSM holds for received messages (waiting for delivery,
    /// or cached for recovery until stable) and for the sender's
    /// unacknowledged messages: `(received, sending)`.
    pub fn qsm_storage(&self) -> (usize, usize) {
        (self.qsm.rx_bytes, self.qsm.tx_bytes)
    }

    /// The largest payload [`Node::multicast`] takes (one datagram).
    pub fn max_multicast_payload(&self) -> usize {
        self.integrity
            .max_frame_len(self.mtu)
            .saturating_sub(wire::Header::LEN + wire::RECORD_HEADER_LEN + mc::QSM_DATA_HEADER_LEN)
    }

    /// Multicasts `payload` to `group` (QSM §3): one copy per region the
    /// group spans, per-sender FIFO and reliable at every live member.
    /// Returns the message's per-group sequence number (from 1), which
    /// members see in [`Event::GroupDelivered`].
    ///
    /// Errors change nothing: [`Error::UnknownGroup`]; [`Error::Oversized`]
    /// above [`Node::max_multicast_payload`]; [`Error::Full`] when a
    /// region's window of unacknowledged messages or the payload pool is
    /// full (flow control: retry after the next acknowledgement).
    pub fn multicast(
        &mut self,
        now: Instant,
        group: GroupId,
        payload: &[u8],
    ) -> Result<u32, Error> {
        self.now = self.now.max(now);
        if !Self::HAS_QSM {
            return Err(Error::UnknownGroup);
        }
        let gi = self.qsm.group_index(group).ok_or(Error::UnknownGroup)?;
        if payload.len() > self.max_multicast_payload() {
            return Err(Error::Oversized);
        }
        let mask = self.qsm.groups[gi].regions;
        let bytes = Pool::<BLOCKS>::blocks_for(payload.len()) * BLOCK_LEN;
        let n = mask.count_ones() as usize;
        let window = self.qsm.config.window.min(RING as u32);
        let room = (0..self.qsm.regions.len()).all(|r| {
            mask & (1 << r) == 0 || {
                let st = &self.qsm.send[r];
                st.unacked() < window
                    && st.ring[st.next_seq as usize % RING].is_none()
                    && st.next_seq < u32::MAX
            }
        }) && self.tx_pool_bytes + n * bytes <= self.pool_half()
            && self.pool.free_bytes() >= n * bytes;
        // A sender that is a member of the group delivers its own message
        // at once (its own stream needs no recovery).
        let local = (0..self.qsm.regions.len())
            .any(|r| mask & (1 << r) != 0 && self.qsm.regions[r].contains(self.id));
        if !room || (local && !self.inbox.can_fit(1, payload.len())) {
            self.qsm.stats.refused += 1;
            return Err(Error::Full);
        }
        let gseq = self.qsm.groups[gi].next_gseq;
        self.qsm.groups[gi].next_gseq = gseq.wrapping_add(1).max(1);
        if local {
            let meta = EventMeta::GroupDelivered {
                group,
                sender: self.id,
                seq: gseq,
            };
            self.inbox.push(meta, payload);
            self.qsm.stats.delivered += 1;
        }
        for r in 0..self.qsm.regions.len() {
            if mask & (1 << r) == 0 {
                continue;
            }
            let Ok(handle) = self.pool.store(payload) else {
                break; // unreachable after the room check
            };
            let st = &mut self.qsm.send[r];
            if st.unacked() == 0 {
                // The silence the fallback timer measures starts now.
                st.progress_at = now;
            }
            let seq = st.next_seq;
            st.ring[seq as usize % RING] = Some(SendSlot {
                seq,
                handle,
                group: group.0,
                gseq,
                sent_at: now,
            });
            st.next_seq += 1;
            self.tx_pool_bytes += bytes;
            self.qsm.tx_bytes += bytes;
            if let Some(s) = self.qsm.region_sink[r] {
                self.register(usize::from(s), Feed::QsmData, now);
            }
        }
        self.qsm.stats.multicasts += 1;
        Ok(gseq)
    }

    /// Frees the payloads of a sender stream.
    fn qsm_free_send(&mut self, st: &mut SendStream<RING>) {
        for slot in st.ring.iter_mut().filter_map(Option::take) {
            let b = Pool::<BLOCKS>::blocks_for(slot.handle.len()) * BLOCK_LEN;
            self.pool.free(slot.handle);
            self.tx_pool_bytes = self.tx_pool_bytes.saturating_sub(b);
            self.qsm.tx_bytes = self.qsm.tx_bytes.saturating_sub(b);
        }
    }

    /// Frees the payloads receive stream `i` holds.
    fn qsm_free_stream(&mut self, i: usize) {
        let Some(st) = self.qsm.streams.get_mut(i) else {
            return;
        };
        for h in st.ring.iter_mut().filter_map(Option::take) {
            self.pool.free(h.handle);
            self.qsm.rx_bytes = self
                .qsm
                .rx_bytes
                .saturating_sub(Pool::<BLOCKS>::blocks_for(h.handle.len()) * BLOCK_LEN);
        }
    }

    /// The sink of a QSM destination: a cluster peer's own sink, or one
    /// from the spare capacity (allocated, or re-bound from an idle one).
    /// O(SINKS).
    pub(crate) fn qsm_sink(&mut self, dest: Destination) -> Option<usize> {
        if let Destination::Peer(p) = dest {
            if p == self.id {
                return None;
            }
            if let Ok(s) = self.sink_index(dest) {
                return Some(s);
            }
        }
        let first = self.first_qsm_sink;
        if let Some(s) = (first..self.sinks.len()).find(|&s| self.sinks[s].destination == dest) {
            return Some(s);
        }
        if self.sinks.len() < SINKS {
            let sink = Sink {
                destination: dest,
                port: new_port(self.scheduling),
                control: ControlPolicy::default(),
                registered: 0,
                state: SinkState::Idle,
            };
            if self.sinks.push(sink).is_ok() {
                return Some(self.sinks.len() - 1);
            }
        }
        let reusable = (first..self.sinks.len()).find(|&s| {
            let k = &self.sinks[s];
            k.state == SinkState::Idle
                && k.registered == 0
                && k.port.buffer().is_empty()
                && self.qsm.control[s].is_empty()
                && self.qsm.recovery[s].is_empty()
                && !self.qsm.region_sink.contains(&Some(s as u16))
        })?;
        self.sinks[reusable].destination = dest;
        self.sinks[reusable].control = ControlPolicy::default();
        Some(reusable)
    }

    /// Queues `work` for `to` and registers the matching feed.
    fn qsm_queue(&mut self, to: NodeId, work: Work, now: Instant) {
        let Some(s) = self.qsm_sink(Destination::Peer(to)) else {
            self.qsm.stats.no_sink += 1;
            return;
        };
        let (feed, ok) = match work {
            Work::Token { .. } | Work::Ack { .. } | Work::Pass { .. } => {
                let q = &mut self.qsm.control[s];
                (
                    Feed::QsmControl,
                    q.iter().any(|w| *w == work) || q.push_back(work).is_ok(),
                )
            }
            Work::Request { .. } | Work::Forward { .. } => {
                let q = &mut self.qsm.recovery[s];
                (
                    Feed::QsmRecovery,
                    q.iter().any(|w| *w == work) || q.push_back(work).is_ok(),
                )
            }
        };
        if !ok {
            self.qsm.stats.no_sink += 1;
        }
        self.register(s, feed, now);
    }

    /// The next QSM alarm.
    pub(crate) fn qsm_deadline(&self) -> Option<Instant> {
        if !Self::HAS_QSM {
            return None;
        }
        self.qsm.next_tick
    }

    /// Periodic work: region leaders release tokens; senders re-multicast
    /// a tail nobody acknowledged seeing.
    pub(crate) fn qsm_tick(&mut self, now: Instant) {
        if !Self::HAS_QSM {
            return;
        }
        let Some(t) = self.qsm.next_tick else {
            return;
        };
        if t > now {
            return;
        }
        // Two phases half a period apart: partition tokens, then the
        // region token, which then finds fresh partition aggregates (a
        // partition round takes a few ms; released together, the region
        // token would always carry the previous period's).
        let period = self.qsm.config.token_period;
        let half = Duration::from_micros((period.as_micros() / 2).max(1));
        let mut next = t + half;
        if next <= now {
            next = now + half;
        }
        self.qsm.next_tick = Some(next);
        let region_phase = self.qsm.tick_phase;
        self.qsm.tick_phase = !region_phase;
        for r in 0..self.qsm.regions.len() {
            if self.qsm.regions[r].contains(self.id) {
                for level in 0..=1 {
                    self.qsm_ring_timers(r, level, now);
                }
                if !region_phase && self.qsm_releaser(r, 0) == Some(self.id) {
                    self.qsm_release_token(r, 0, now);
                }
                if region_phase && self.qsm_releaser(r, 1) == Some(self.id) {
                    self.qsm_release_token(r, 1, now);
                }
            }
            if !region_phase {
                continue;
            }
            // A sender the region never acknowledged: it may have missed
            // everything (no member has its stream, so no token entry).
            let st = &mut self.qsm.send[r];
            if st.acks == 0
                && st.sent_upto > 0
                && st.unacked() > 0
                && now.saturating_since(st.progress_at) >= period + period + period + period
            {
                let from = st.last_max_seen.max(st.acked) + 1;
                let to = st.sent_upto.min(from.saturating_add(TAIL_BURST - 1));
                for seq in from..=to {
                    if st.slot(seq).is_some() && !st.retransmit.iter().any(|&x| x == seq) {
                        let _ = st.retransmit.push_back(seq);
                    }
                }
                st.progress_at = now;
                if let Some(s) = self.qsm.region_sink[r] {
                    self.register(usize::from(s), Feed::QsmData, now);
                }
            }
        }
    }

    /// Token-loss detection on ring `level` of region `r`, every half
    /// period: a token passed and not acknowledged is passed again, and
    /// after [`QsmConfig::suspect_timeout`] its silent member is skipped; a
    /// member that has seen no token for that timeout plus `1 + position`
    /// periods
    /// (its position after the nominal releaser: the first live member
    /// after a dead releaser acts first) regenerates it, from its own fresh
    /// state, with a higher generation, and releases its rounds from then
    /// on. O(members).
    fn qsm_ring_timers(&mut self, r: usize, level: u8, now: Instant) {
        let l = usize::from(level.min(1));
        let timeout = self.qsm.config.suspect_timeout();
        let period = self.qsm.config.token_period.as_micros().max(1);
        // Half periods (the check's own rate) in the timeout.
        let limit = timeout.as_micros().div_ceil((period / 2).max(1));
        if let Some((to, round, waited)) = self.qsm.leader[r][l].awaiting {
            let waited = waited.saturating_add(1);
            let led = &mut self.qsm.leader[r][l];
            if u64::from(waited) >= limit {
                if !led.suspects.contains(&to) {
                    if led.suspects.is_full() {
                        led.suspects.remove(0);
                    }
                    let _ = led.suspects.push(to);
                    self.qsm.stats.suspected += 1;
                }
                led.awaiting = None;
            } else {
                led.awaiting = Some((to, round, waited));
            }
            if self.qsm.pending[r][l].is_none() {
                if let Some(sent) = self.qsm.leader[r][l].sent.take() {
                    self.qsm.pending[r][l] = Some(sent);
                    self.qsm.stats.token_retries += 1;
                    self.qsm_pass_on(r, level, now);
                }
            }
        }
        // Regeneration, by members of the ring that do not release it.
        let me = self.id;
        let reg = &self.qsm.regions[r];
        let Some(idx) = reg.index_of(me) else {
            return;
        };
        let p = reg.partition_of(idx);
        let pos = if level == 0 {
            reg.partition(p).iter().position(|&m| m == me).unwrap_or(0)
        } else if self.qsm_releaser(r, 0) == Some(me) {
            p
        } else {
            return; // not on the ring of partitions
        };
        if self.qsm_releaser(r, level) == Some(me) {
            return;
        }
        let wait = Duration::from_micros(
            timeout
                .as_micros()
                .saturating_add(period.saturating_mul(1 + pos as u64)),
        );
        let led = &mut self.qsm.leader[r][l];
        if led
            .last_token
            .is_some_and(|t| now.saturating_since(t) >= wait)
        {
            led.generation = led.generation.saturating_add(1);
            led.releaser = Some(me);
            led.last_token = Some(now);
            led.completed = 0;
            led.awaiting = None;
            led.sent = None;
            self.qsm.pending[r][l] = None;
            self.qsm.stats.regenerated += 1;
            if level == 0 {
                // This node now stands for its partition on the ring of
                // partitions, whose token it has not seen yet: its clock
                // there starts now.
                self.qsm.leader[r][1].last_token = Some(now);
            }
            // Released at once: the next member's own timer is only one
            // period behind.
            self.qsm_release_token(r, level, now);
        }
    }

    /// The next live member after this node on its ring at `level` (0:
    /// its partition, in id order; 1: the first member of the following
    /// partitions that this node does not suspect), `None` when nobody
    /// else is left. O(members).
    fn qsm_ring_next(&self, r: usize, level: u8) -> Option<NodeId> {
        let reg = &self.qsm.regions[r];
        let idx = reg.index_of(self.id)?;
        let sus = &self.qsm.leader[r][usize::from(level.min(1))].suspects;
        let p = reg.partition_of(idx);
        if level == 0 {
            let part = reg.partition(p);
            let pos = part.iter().position(|&m| m == self.id)?;
            (1..part.len())
                .filter_map(|k| part.get((pos + k) % part.len()).copied())
                .find(|m| !sus.contains(m))
        } else {
            // A member that does not stand for its partition (its leader
            // looked dead to the passer) hands the token to the one that
            // does, which merges the partition's aggregate.
            let rep = self.qsm_releaser(r, 0);
            if let Some(rep) = rep.filter(|&x| x != self.id && !sus.contains(&x)) {
                return Some(rep);
            }
            let n = reg.partitions();
            (1..n)
                .filter_map(|k| reg.partition((p + k) % n).iter().find(|m| !sus.contains(m)))
                .copied()
                .next()
        }
    }

    /// A partition leader (level 0) or the region leader (level 1) starts
    /// round `round + 1`: the token is built from fresh state when the
    /// successor's sink pulls it.
    fn qsm_release_token(&mut self, r: usize, level: u8, now: Instant) {
        let l = usize::from(level.min(1));
        let round = self.qsm.leader[r][l].round.wrapping_add(1);
        self.qsm.leader[r][l].round = round;
        self.qsm.leader[r][l].last_token = Some(now);
        self.qsm.pending[r][l] = Some(TokenBuf {
            round,
            released_at: now.as_micros(),
            entries: heapless::Vec::new(),
        });
        match self.qsm_ring_next(r, level) {
            Some(next) => self.qsm_queue(
                next,
                Work::Token {
                    region: r as u8,
                    level,
                },
                now,
            ),
            None => {
                // Alone on the ring: the round completes at once.
                let entries = self.qsm_token_entries(r, level);
                self.qsm.pending[r][l] = None;
                self.qsm_round_complete(r, level, round, now.as_micros(), &entries, now);
            }
        }
    }

    /// Merges `mine` into the entry of the same sender, or adds it. When
    /// the token already visited others (`first` false), they hold none of
    /// a sender they had no entry for: its MaxContiguous is 0 (its ranges,
    /// an intersection, stay `mine`'s).
    fn qsm_merge_into(
        entries: &mut heapless::Vec<TokenEntry, MAX_STREAMS>,
        mine: &TokenEntry,
        k: usize,
        first: bool,
    ) {
        match entries.iter_mut().find(|e| e.sender == mine.sender) {
            Some(e) => e.merge(mine, k),
            None => {
                let mut e = *mine;
                if !first {
                    e.max_contiguous = 0;
                }
                let _ = entries.push(e);
            }
        }
    }

    /// The pending token of region `r` at `level` with this node's fresh
    /// state merged in (QSM §6: the token is made when the sink pulls it):
    /// at level 0 its own receive state (a partition leader first seeds a
    /// new token with what the region knows), at level 1 its partition's
    /// last aggregate.
    fn qsm_token_entries(&self, r: usize, level: u8) -> heapless::Vec<TokenEntry, MAX_STREAMS> {
        let k = self.qsm.config.ranges;
        let l = usize::from(level.min(1));
        let pending = self.qsm.pending[r][l].as_ref();
        let mut entries = pending.map(|p| p.entries.clone()).unwrap_or_default();
        // The node that released this token (a partition leader at level 0,
        // the region leader at level 1, or whoever regenerated it) builds it
        // first, from nothing.
        let first = self.qsm_releaser(r, level) == Some(self.id);
        let fresh = first && pending.is_some_and(|p| p.entries.is_empty());
        let region_info = &self.qsm.leader[r][1].last;
        if level == 1 {
            if self.qsm_releaser(r, 0) != Some(self.id) {
                return entries; // handed on to the partition's releaser as is
            }
            for pe in self.qsm.leader[r][0].last.iter() {
                Self::qsm_merge_into(&mut entries, pe, k, first);
            }
            // Senders my partition knows nothing of: it holds none of theirs.
            for e in entries.iter_mut() {
                if !self.qsm.leader[r][0]
                    .last
                    .iter()
                    .any(|p| p.sender == e.sender)
                {
                    let mut none = TokenEntry::member(e.sender, 0, e.max_seen);
                    if let Some(range) = crate::qsm::SeqRange::new(1, e.max_seen) {
                        none.add_missing(range, k);
                    }
                    e.merge(&none, k);
                }
            }
            if fresh {
                // Garbage collection: the region stability of the last round.
                for e in entries.iter_mut() {
                    if let Some(i) = region_info.iter().find(|i| i.sender == e.sender) {
                        e.stable = e.stable.max(i.stable);
                    }
                }
            }
            return entries;
        }
        if fresh {
            // A new partition round: what the region saw and holds stably.
            for i in region_info.iter() {
                // Neutral for the merge: MaxContiguous is a minimum and the
                // ranges an intersection.
                let mut seed = TokenEntry::member(i.sender, 0, i.max_seen);
                seed.stable = i.stable;
                if let Some(all) = crate::qsm::SeqRange::new(1, u32::MAX) {
                    seed.add_missing(all, k);
                }
                seed.max_contiguous = u32::MAX;
                let _ = entries.push(seed);
            }
        }
        // Entries of senders this node has no stream of, or a joiner's
        // stream without its anchor yet: it holds nothing (MaxContiguous 0,
        // misses everything seen: the intersection stays), so the region's
        // stability waits for it from the view it joined in.
        for e in entries.iter_mut() {
            if NodeId(e.sender) == self.id
                || self
                    .qsm
                    .stream_index(r as u8, NodeId(e.sender))
                    .is_some_and(|i| self.qsm.streams[i].anchored)
            {
                continue;
            }
            let mut mine = TokenEntry::member(e.sender, 0, e.max_seen);
            if let Some(range) = crate::qsm::SeqRange::new(1, e.max_seen) {
                mine.add_missing(range, k);
            }
            e.merge(&mine, k);
        }
        for st in self
            .qsm
            .streams
            .iter()
            .filter(|s| usize::from(s.region) == r && s.anchored)
        {
            let token_max = entries
                .iter()
                .find(|e| NodeId(e.sender) == st.sender)
                .map_or(0, |e| e.max_seen);
            let mut mine = TokenEntry::from_receiver(
                st.sender.0,
                st.mc,
                st.max_seen,
                token_max,
                RING as u32,
                k,
                |s| st.has(s),
            );
            // What this member knows to be stable: a joiner later in the
            // ring anchors there even when the round's seed has no entry.
            mine.stable = st.cleaned;
            Self::qsm_merge_into(&mut entries, &mine, k, first);
        }
        entries
    }

    /// A round of region `r` at `level` came back to the node that
    /// released it.
    fn qsm_round_complete(
        &mut self,
        r: usize,
        level: u8,
        round: u32,
        released_at: u64,
        entries: &[TokenEntry],
        now: Instant,
    ) {
        let rtt = now.as_micros().saturating_sub(released_at);
        let stats = &mut self.qsm.stats;
        if level == 0 {
            stats.partition_rounds += 1;
            stats.partition_rtt_sum_us += rtt;
            stats.partition_rtt_max_us = stats.partition_rtt_max_us.max(rtt);
            self.qsm.leader[r][0].last.clear();
            for e in entries {
                let _ = self.qsm.leader[r][0].last.push(*e);
            }
            // The partition leader is a member too: recovery and cleanup.
            self.qsm_visit(r, entries, round, now);
            return;
        }
        stats.rounds += 1;
        stats.rtt_sum_us += rtt;
        stats.rtt_max_us = stats.rtt_max_us.max(rtt);
        self.qsm.leader[r][1].last.clear();
        for e in entries {
            let mut e = *e;
            // Stable in the whole region; `stable` carried the highest
            // point any member cleaned up to (stable in an earlier round).
            e.stable = e.max_contiguous.max(e.stable);
            let _ = self.qsm.leader[r][1].last.push(e);
        }
        for e in entries {
            let sender = NodeId(e.sender);
            if sender == self.id {
                self.qsm_on_ack(r, e, round, now);
            } else {
                self.qsm_queue(
                    sender,
                    Work::Ack {
                        region: r as u8,
                        sender,
                    },
                    now,
                );
            }
        }
    }

    /// Pulls the region sink's feed: re-multicasts first, then new messages,
    /// as many as fit (messages of every group of the region share the datagram).
    pub(crate) fn pull_qsm_data(&mut self, s: usize, w: &mut FrameWriter<'_>) -> Pulled {
        if !Self::HAS_QSM {
            return Pulled::Done;
        }
        let Some(r) = self
            .qsm
            .region_sink
            .iter()
            .position(|x| *x == Some(s as u16))
            .filter(|&r| r < self.qsm.regions.len())
        else {
            self.sinks[s].registered &= !Feed::QsmData.bit();
            return Pulled::Done;
        };
        let region = self.qsm.regions[r].address.0;
        let mut wrote = 0u32;
        loop {
            let st = &self.qsm.send[r];
            let (seq, again) = if let Some(&q) = st.retransmit.front() {
                (q, true)
            } else if st.sent_upto.saturating_add(1) < st.next_seq {
                (st.sent_upto + 1, false)
            } else {
                break;
            };
            let Some(slot) = st.slot(seq).copied() else {
                let st = &mut self.qsm.send[r];
                if again {
                    st.retransmit.pop_front();
                } else {
                    st.sent_upto = seq;
                }
                continue;
            };
            let len = slot.handle.len();
            let pool = &self.pool;
            let me = self.id.0;
            let ok = w
                .push_with(mc::KIND_QSM_DATA, mc::QSM_DATA_HEADER_LEN + len, |body| {
                    mc::write_data_header(body, region, me, seq, slot.group, slot.gseq);
                    if let Some(b) = body.get_mut(mc::QSM_DATA_HEADER_LEN..) {
                        pool.read(slot.handle, b);
                    }
                })
                .is_ok();
            if !ok {
                return if wrote == 0 {
                    Pulled::NoRoom
                } else {
                    Pulled::Partial
                };
            }
            wrote += 1;
            let st = &mut self.qsm.send[r];
            if again {
                st.retransmit.pop_front();
                self.qsm.stats.remulticasts += 1;
            } else {
                st.sent_upto = seq;
            }
        }
        self.sinks[s].registered &= !Feed::QsmData.bit();
        Pulled::Done
    }

    /// Pulls tokens and acknowledgements queued for sink `s`.
    pub(crate) fn pull_qsm_control(&mut self, s: usize, w: &mut FrameWriter<'_>) -> Pulled {
        if !Self::HAS_QSM {
            return Pulled::Done;
        }
        let mut wrote = 0u32;
        while let Some(work) = self.qsm.control.get(s).and_then(|q| q.front().copied()) {
            let ok = match work {
                Work::Token { region, level } => {
                    let r = usize::from(region);
                    let l = usize::from(level.min(1));
                    match self.qsm.pending.get(r).and_then(|p| p[l].as_ref()) {
                        Some(p) if r < self.qsm.regions.len() => {
                            let (round, released_at) = (p.round, p.released_at);
                            let entries = self.qsm_token_entries(r, level);
                            let address = self.qsm.regions[r].address.0;
                            let auth = mc::TokenAuthority {
                                epoch: self.qsm.epoch,
                                generation: self.qsm.leader[r][l].generation,
                                releaser: self.qsm_releaser(r, level).map_or(0, |n| n.0),
                            };
                            let len = mc::QSM_TOKEN_HEADER_LEN + mc::entries_len(&entries);
                            let ok = w
                                .push_with(mc::KIND_QSM_TOKEN, len, |b| {
                                    mc::write_token_body(
                                        b,
                                        address,
                                        round,
                                        released_at,
                                        level,
                                        auth,
                                        &entries,
                                    )
                                })
                                .is_ok();
                            if ok {
                                // Kept (as it arrived) until the successor
                                // says it has it: passed again otherwise.
                                let sent = self.qsm.pending[r][l].take();
                                if let Destination::Peer(to) = self.sinks[s].destination {
                                    let led = &mut self.qsm.leader[r][l];
                                    let waited = match led.awaiting {
                                        Some((t, _, w)) if t == to => w,
                                        _ => 0,
                                    };
                                    led.awaiting = Some((to, round, waited));
                                    led.sent = sent;
                                }
                            }
                            ok
                        }
                        _ => true, // nothing to pass on any more
                    }
                }
                Work::Pass {
                    region,
                    level,
                    generation,
                    releaser,
                    round,
                } => match self.qsm.regions.get(usize::from(region)) {
                    Some(reg) => w
                        .push(&RecordRepr::QsmPass {
                            region: reg.address.0,
                            epoch: self.qsm.epoch,
                            level,
                            generation,
                            releaser,
                            round,
                        })
                        .is_ok(),
                    None => true,
                },
                Work::Ack { region, sender } => {
                    let r = usize::from(region);
                    match self.qsm.leader.get(r).map(|l| &l[1]) {
                        Some(l) if r < self.qsm.regions.len() => {
                            let mut one: heapless::Vec<TokenEntry, 1> = heapless::Vec::new();
                            if let Some(e) = l.last.iter().find(|e| NodeId(e.sender) == sender) {
                                let _ = one.push(*e);
                            }
                            let address = self.qsm.regions[r].address.0;
                            let round = l.round;
                            let len = mc::QSM_ACK_HEADER_LEN + mc::entries_len(&one);
                            w.push_with(mc::KIND_QSM_ACK, len, |b| {
                                mc::write_ack_body(b, address, round, &one)
                            })
                            .is_ok()
                        }
                        _ => true,
                    }
                }
                _ => true,
            };
            if !ok {
                return if wrote == 0 {
                    Pulled::NoRoom
                } else {
                    Pulled::Partial
                };
            }
            wrote += 1;
            self.qsm.control[s].pop_front();
        }
        self.sinks[s].registered &= !Feed::QsmControl.bit();
        Pulled::Done
    }

    /// Pulls requests and forwards queued for sink `s`.
    pub(crate) fn pull_qsm_recovery(&mut self, s: usize, w: &mut FrameWriter<'_>) -> Pulled {
        if !Self::HAS_QSM {
            return Pulled::Done;
        }
        let mut wrote = 0u32;
        while let Some(work) = self.qsm.recovery.get(s).and_then(|q| q.front().copied()) {
            let ok = match work {
                Work::Request {
                    region,
                    sender,
                    first,
                    count,
                } => w
                    .push(&RecordRepr::QsmRequest {
                        region,
                        sender: sender.0,
                        first,
                        count,
                    })
                    .is_ok(),
                Work::Forward { stream, seq } => {
                    match self
                        .qsm
                        .streams
                        .get(usize::from(stream))
                        .and_then(|st| st.held(seq).map(|h| (st, *h)))
                    {
                        Some((st, h)) => {
                            let region = self
                                .qsm
                                .regions
                                .get(usize::from(st.region))
                                .map_or(0, |r| r.address.0);
                            let sender = st.sender.0;
                            let pool = &self.pool;
                            let len = h.handle.len();
                            let ok = w
                                .push_with(
                                    mc::KIND_QSM_DATA,
                                    mc::QSM_DATA_HEADER_LEN + len,
                                    |body| {
                                        mc::write_data_header(
                                            body, region, sender, h.seq, h.group, h.gseq,
                                        );
                                        if let Some(b) = body.get_mut(mc::QSM_DATA_HEADER_LEN..) {
                                            pool.read(h.handle, b);
                                        }
                                    },
                                )
                                .is_ok();
                            if ok {
                                self.qsm.stats.forwards += 1;
                            }
                            ok
                        }
                        None => true, // dropped meanwhile: nothing to send
                    }
                }
                _ => true,
            };
            if !ok {
                return if wrote == 0 {
                    Pulled::NoRoom
                } else {
                    Pulled::Partial
                };
            }
            wrote += 1;
            self.qsm.recovery[s].pop_front();
        }
        self.sinks[s].registered &= !Feed::QsmRecovery.bit();
        Pulled::Done
    }

    /// Applies a QSM record from `from`.
    pub(crate) fn qsm_apply(&mut self, now: Instant, from: NodeId, rec: RecordRepr<'_>) {
        if !Self::HAS_QSM || !self.qsm.is_active() {
            return;
        }
        match rec {
            RecordRepr::QsmData {
                region,
                sender,
                seq,
                group,
                gseq,
                payload,
            } => self.qsm_on_data(region, NodeId(sender), seq, group, gseq, payload),
            RecordRepr::QsmToken {
                region,
                round,
                released_at,
                level,
                epoch,
                generation,
                releaser,
                entries,
            } => {
                let auth = mc::TokenAuthority {
                    epoch,
                    generation,
                    releaser,
                };
                self.qsm_on_token(now, from, region, round, released_at, level, auth, entries)
            }
            RecordRepr::QsmPass {
                region,
                epoch,
                level,
                generation,
                releaser,
                round,
            } => {
                let auth = mc::TokenAuthority {
                    epoch,
                    generation,
                    releaser,
                };
                self.qsm_on_pass(from, region, level, auth, round)
            }
            RecordRepr::QsmRequest {
                region,
                sender,
                first,
                count,
            } => self.qsm_on_request(now, from, region, NodeId(sender), first, count),
            RecordRepr::QsmAck {
                region,
                round,
                entries,
            } => {
                // Only a member of the region aggregates a round (the
                // region leader, or whoever regenerated its token): an ack
                // from anyone else could free messages the region needs.
                if let Some(r) = self
                    .qsm
                    .region_by_address(region)
                    .filter(|&r| self.qsm.regions[r].contains(from))
                {
                    if let Some(e) = entries.iter().find(|e| NodeId(e.sender) == self.id) {
                        self.qsm_on_ack(r, &e, round, now);
                    }
                }
            }
            _ => {}
        }
    }

    /// The stream of `(r, sender)`, created if there is room.
    fn qsm_stream(&mut self, r: usize, sender: NodeId) -> Option<usize> {
        if let Some(i) = self.qsm.stream_index(r as u8, sender) {
            return Some(i);
        }
        let mut st = RecvStream::new(r as u8, sender);
        st.anchored = !self.qsm.joined.get(r).copied().unwrap_or(false);
        self.qsm.streams.push(st).ok()?;
        Some(self.qsm.streams.len() - 1)
    }

    fn qsm_on_data(
        &mut self,
        region: u32,
        sender: NodeId,
        seq: u32,
        group: u32,
        gseq: u32,
        payload: &[u8],
    ) {
        let Some(r) = self.qsm.region_by_address(region) else {
            return;
        };
        if sender == self.id || seq == 0 || !self.qsm.regions[r].contains(self.id) {
            return;
        }
        let Some(i) = self.qsm_stream(r, sender) else {
            self.qsm.stats.dropped += 1;
            return;
        };
        let st = &self.qsm.streams[i];
        if st.has(seq) {
            self.qsm.stats.duplicates += 1;
            return;
        }
        if seq > st.mc.saturating_add(RING as u32) {
            self.qsm.stats.dropped += 1;
            return;
        }
        let slot = seq as usize % RING;
        if let Some(old) = st.ring[slot] {
            if !old.delivered {
                self.qsm.stats.dropped += 1;
                return;
            }
        }
        let bytes = Pool::<BLOCKS>::blocks_for(payload.len()) * BLOCK_LEN;
        if self.qsm.rx_bytes + bytes > self.pool_half() || self.pool.free_bytes() < bytes {
            self.qsm.stats.dropped += 1;
            return;
        }
        let Ok(handle) = self.pool.store(payload) else {
            self.qsm.stats.dropped += 1;
            return;
        };
        if let Some(old) = self.qsm.streams[i].ring[slot].take() {
            // A cached copy old enough to be overwritten: its holder role ends early.
            self.pool.free(old.handle);
            self.qsm.rx_bytes = self
                .qsm
                .rx_bytes
                .saturating_sub(Pool::<BLOCKS>::blocks_for(old.handle.len()) * BLOCK_LEN);
            self.qsm.stats.evicted += 1;
        }
        self.qsm.rx_bytes += bytes;
        let st = &mut self.qsm.streams[i];
        st.ring[slot] = Some(Held {
            seq,
            handle,
            group,
            gseq,
            delivered: false,
        });
        st.max_seen = st.max_seen.max(seq);
        while st.held(st.mc.saturating_add(1)).is_some() && st.mc < u32::MAX {
            st.mc += 1;
        }
        self.qsm_try_deliver();
    }

    /// Delivers what is contiguous, in stream order, while the inbox has
    /// room; a holder keeps its copy for recovery, others free it.
    pub(crate) fn qsm_try_deliver(&mut self) {
        if !Self::HAS_QSM {
            return;
        }
        for i in 0..self.qsm.streams.len() {
            let (r, sender) = (
                usize::from(self.qsm.streams[i].region),
                self.qsm.streams[i].sender,
            );
            let Some(region) = self.qsm.regions.get(r) else {
                continue;
            };
            let Some(idx) = region.index_of(self.id) else {
                continue;
            };
            let part = region.partition(region.partition_of(idx));
            let replication = self.qsm.config.replication;
            let mut budget = RING;
            while budget > 0 {
                budget -= 1;
                let st = &self.qsm.streams[i];
                if st.delivered >= st.mc || !st.anchored || st.settle > 0 {
                    break;
                }
                let seq = st.delivered + 1;
                let Some(h) = st.held(seq).copied() else {
                    break;
                };
                if !self.inbox.can_fit(1, h.handle.len()) {
                    return;
                }
                let pool = &self.pool;
                let meta = EventMeta::GroupDelivered {
                    group: GroupId(h.group),
                    sender,
                    seq: h.gseq,
                };
                self.inbox.push_with(meta, h.handle.len(), |b| {
                    pool.read(h.handle, b);
                });
                self.qsm.stats.delivered += 1;
                let holder = cache::is_holder(sender, seq, part, replication, self.id);
                let st = &mut self.qsm.streams[i];
                st.delivered = seq;
                let slot = seq as usize % RING;
                if holder {
                    if let Some(x) = st.ring[slot].as_mut() {
                        x.delivered = true;
                    }
                } else if let Some(x) = st.ring[slot].take() {
                    self.pool.free(x.handle);
                    self.qsm.rx_bytes = self
                        .qsm
                        .rx_bytes
                        .saturating_sub(Pool::<BLOCKS>::blocks_for(x.handle.len()) * BLOCK_LEN);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn qsm_on_token(
        &mut self,
        now: Instant,
        from: NodeId,
        region: u32,
        round: u32,
        released_at: u64,
        level: u8,
        auth: mc::TokenAuthority,
        entries: EntryList<'_>,
    ) {
        let Some(r) = self.qsm.region_by_address(region) else {
            return;
        };
        if auth.epoch != self.qsm.epoch || from == self.id {
            return; // another view's ring (or a reflection)
        }
        // Only from a member of the ring, released by one: anyone else's
        // token (or one with a huge round) would make members ignore the
        // real ones.
        if !self.qsm_on_ring(r, level, from) || !self.qsm_on_ring(r, level, NodeId(auth.releaser)) {
            return;
        }
        self.qsm_heard(r, from);
        let l = usize::from(level.min(1));
        let rel = NodeId(auth.releaser);
        let led = &self.qsm.leader[r][l];
        let current = self.qsm_releaser(r, level);
        let mine = (led.generation, current.map_or(0, |c| c.0));
        // Generations are ordered, and two members that regenerated at
        // once are ordered by id: the higher wins.
        let theirs = (auth.generation, auth.releaser);
        if !generation_plausible(mine.0, theirs.0) {
            return;
        }
        if theirs < mine {
            // A stale token: tell its passer which generation is current,
            // so that it follows (and stops passing it).
            self.qsm_queue(
                from,
                Work::Pass {
                    region: r as u8,
                    level,
                    generation: mine.0,
                    releaser: mine.1,
                    round,
                },
                now,
            );
            return;
        }
        let newer = theirs > mine;
        if newer {
            self.qsm_adopt(r, level, auth.generation, rel);
        }
        // Whatever we do with it, the passer may stop passing it again.
        self.qsm_queue(
            from,
            Work::Pass {
                region: r as u8,
                level,
                generation: auth.generation,
                releaser: auth.releaser,
                round,
            },
            now,
        );
        self.qsm.leader[r][l].last_token = Some(now);
        let mut list: heapless::Vec<TokenEntry, MAX_STREAMS> = heapless::Vec::new();
        for e in entries.iter() {
            let _ = list.push(e);
        }
        if rel == self.id {
            // Back where it started: the round is complete (older rounds
            // and repeated copies are stale).
            let led = &mut self.qsm.leader[r][l];
            if round != led.round || led.completed == round {
                return;
            }
            led.completed = round;
            self.qsm_round_complete(r, level, round, released_at, &list, now);
            return;
        }
        if round <= self.qsm.leader[r][l].round && self.qsm.leader[r][l].round != 0 {
            return; // a duplicate or an overtaken round
        }
        self.qsm.leader[r][l].round = round;
        self.qsm.pending[r][l] = Some(TokenBuf {
            round,
            released_at,
            entries: list.clone(),
        });
        if level == 0 {
            self.qsm_visit(r, &list, round, now);
        } else {
            // What the region knows, for this partition's next tokens.
            self.qsm.leader[r][1].last = list;
        }
        self.qsm_pass_on(r, level, now);
    }

    /// Queues the pending token of ring `level` for the next live member
    /// (dropped when nobody else is left on the ring).
    fn qsm_pass_on(&mut self, r: usize, level: u8, now: Instant) {
        if let Some(next) = self.qsm_ring_next(r, level) {
            self.qsm_queue(
                next,
                Work::Token {
                    region: r as u8,
                    level,
                },
                now,
            );
        } else {
            self.qsm.pending[r][usize::from(level.min(1))] = None;
        }
    }

    /// Follows generation `generation` of ring `level`, released by `rel`.
    fn qsm_adopt(&mut self, r: usize, level: u8, generation: u32, rel: NodeId) {
        let l = usize::from(level.min(1));
        let was = self.qsm_releaser(r, level) == Some(self.id);
        let led = &mut self.qsm.leader[r][l];
        led.generation = generation;
        led.releaser = Some(rel);
        if rel != self.id {
            // Rounds of the new releaser: its numbering.
            led.round = 0;
            led.completed = 0;
            if was {
                // This node stops releasing: its own round is void.
                self.qsm.pending[r][l] = None;
                led.awaiting = None;
                led.sent = None;
            }
        }
    }

    /// A ring member acknowledged the token this node passed to it,
    /// naming the generation it follows (a newer one makes this node
    /// follow it too).
    fn qsm_on_pass(
        &mut self,
        from: NodeId,
        region: u32,
        level: u8,
        auth: mc::TokenAuthority,
        round: u32,
    ) {
        let Some(r) = self.qsm.region_by_address(region) else {
            return;
        };
        if auth.epoch != self.qsm.epoch
            || !self.qsm_on_ring(r, level, from)
            || !self.qsm_on_ring(r, level, NodeId(auth.releaser))
        {
            return;
        }
        self.qsm_heard(r, from);
        let l = usize::from(level.min(1));
        let mine = (
            self.qsm.leader[r][l].generation,
            self.qsm_releaser(r, level).map_or(0, |c| c.0),
        );
        if (auth.generation, auth.releaser) > mine && generation_plausible(mine.0, auth.generation)
        {
            self.qsm_adopt(r, level, auth.generation, NodeId(auth.releaser));
        }
        let led = &mut self.qsm.leader[r][usize::from(level.min(1))];
        if led
            .awaiting
            .is_some_and(|(to, rd, _)| to == from && round >= rd)
        {
            led.awaiting = None;
            led.sent = None;
        }
    }

    /// Whether `who` is on region `r`'s ring of `level` as this node sees
    /// it: its partition at level 0, the region at level 1 (where the first
    /// live member of each partition stands in for a dead leader).
    fn qsm_on_ring(&self, r: usize, level: u8, who: NodeId) -> bool {
        let reg = &self.qsm.regions[r];
        let (Some(me), Some(them)) = (reg.index_of(self.id), reg.index_of(who)) else {
            return false;
        };
        level == 1 || reg.partition_of(me) == reg.partition_of(them)
    }

    /// `who` showed signs of life: stop skipping it.
    fn qsm_heard(&mut self, r: usize, who: NodeId) {
        for led in self.qsm.leader[r].iter_mut() {
            led.suspects.retain(|&s| s != who);
        }
    }

    /// The nominal releaser of this node's ring at `level`: its partition
    /// leader, or the region leader.
    fn qsm_nominal(&self, r: usize, level: u8) -> Option<NodeId> {
        let reg = self.qsm.regions.get(r)?;
        let idx = reg.index_of(self.id)?;
        if level == 0 {
            reg.partition(reg.partition_of(idx)).first().copied()
        } else {
            reg.leader()
        }
    }

    /// Who releases the rounds of this node's ring at `level` now.
    fn qsm_releaser(&self, r: usize, level: u8) -> Option<NodeId> {
        self.qsm
            .leader
            .get(r)?
            .get(usize::from(level.min(1)))?
            .releaser
            .or_else(|| self.qsm_nominal(r, level))
    }

    /// What a member does when the token visits: drop cached copies the
    /// token reports stable, and ask for what it misses, as locally as
    /// possible. Bounded by `requests_per_visit` and the ring sizes.
    fn qsm_visit(&mut self, r: usize, entries: &[TokenEntry], round: u32, now: Instant) {
        let mut budget = self.qsm.config.requests_per_visit;
        // Streams of senders the token knows about and this node does not.
        for e in entries {
            if NodeId(e.sender) != self.id && e.max_seen > 0 {
                let _ = self.qsm_stream(r, NodeId(e.sender));
            }
            // A joiner's stream starts where the region is stable. A stream
            // behind what the region reports stable was not counted in that
            // round (a joiner before its anchor, or a member the ring
            // skipped as dead): those copies may be gone everywhere, so it
            // moves its anchor up rather than asking for them forever.
            if let Some(i) = self.qsm.stream_index(r as u8, NodeId(e.sender)) {
                let st = &self.qsm.streams[i];
                if !st.anchored || e.stable > st.mc {
                    if !st.anchored {
                        self.qsm.streams[i].settle = JOIN_SETTLE_VISITS;
                    } else if st.settle == 0 {
                        self.qsm.stats.abandoned += u64::from(e.stable - st.mc);
                    }
                    let mut freed = 0usize;
                    let pool = &mut self.pool;
                    self.qsm.streams[i].anchor(e.stable, |h| {
                        pool.free(h.handle);
                        freed += Pool::<BLOCKS>::blocks_for(h.handle.len()) * BLOCK_LEN;
                    });
                    self.qsm.rx_bytes = self.qsm.rx_bytes.saturating_sub(freed);
                    self.qsm_try_deliver();
                }
            }
        }
        // Every stream of the region, with or without an entry yet (a
        // member early in the ring may be the first to know a sender).
        for i in 0..self.qsm.streams.len() {
            if usize::from(self.qsm.streams[i].region) != r || !self.qsm.streams[i].anchored {
                continue;
            }
            let st = &mut self.qsm.streams[i];
            st.settle = st.settle.saturating_sub(1);
            let sender = self.qsm.streams[i].sender;
            let (max_seen, stable) = entries
                .iter()
                .find(|e| NodeId(e.sender) == sender)
                .map_or((0, 0), |e| (e.max_seen, e.stable));
            let max_seen = max_seen.max(self.qsm.streams[i].max_seen);
            // Cleanup: cached copies stable in the region.
            let st = &mut self.qsm.streams[i];
            let upto = stable
                .min(st.delivered)
                .min(st.cleaned.saturating_add(RING as u32));
            let mut freed = 0usize;
            let mut n = 0u64;
            for seq in st.cleaned.saturating_add(1)..=upto {
                let slot = seq as usize % RING;
                if st.ring[slot].is_some_and(|h| h.seq == seq && h.delivered) {
                    if let Some(h) = st.ring[slot].take() {
                        self.pool.free(h.handle);
                        freed += Pool::<BLOCKS>::blocks_for(h.handle.len()) * BLOCK_LEN;
                        n += 1;
                    }
                }
            }
            st.cleaned = st.cleaned.max(upto);
            self.qsm.rx_bytes = self.qsm.rx_bytes.saturating_sub(freed);
            self.qsm.stats.cleaned += n;
            // A stream whose MaxContiguous does not move while it misses
            // something: the holders lack it too (a view change moved the
            // copies, or every holder lost it): ask the sender.
            let st = &mut self.qsm.streams[i];
            if st.mc != st.stall_mc || max_seen <= st.mc {
                st.stall = 0;
                st.stall_mc = st.mc;
            } else {
                st.stall = st.stall.saturating_add(1);
            }
            let to_sender = st.stall >= STALL_VISITS && st.stall % 2 == 1;
            let wide = st.stall >= STALL_VISITS && st.stall.is_multiple_of(2);
            // Recovery requests, grouped in runs with the same target.
            let st = &self.qsm.streams[i];
            let top = max_seen.min(st.mc.saturating_add(RING as u32));
            let mut runs: heapless::Vec<(RecoveryTarget, u32, u16), 64> = heapless::Vec::new();
            let mut seq = st.mc.saturating_add(1);
            while seq <= top && budget > 0 {
                if !st.has(seq) {
                    let Some(t) = self.qsm_recovery_target(r, sender, seq, round, to_sender, wide)
                    else {
                        break;
                    };
                    budget -= 1;
                    match runs.last_mut() {
                        Some((lt, first, count))
                            if *lt == t
                                && first.saturating_add(u32::from(*count)) == seq
                                && *count < MAX_REQUEST =>
                        {
                            *count += 1
                        }
                        _ => {
                            if runs.push((t, seq, 1)).is_err() {
                                break;
                            }
                        }
                    }
                }
                if seq == u32::MAX {
                    break;
                }
                seq += 1;
            }
            let address = self.qsm.regions[r].address.0;
            for (t, first, count) in runs {
                let to = match t {
                    RecoveryTarget::Peer(n) => {
                        self.qsm.stats.requests_peer += 1;
                        n
                    }
                    RecoveryTarget::Partition(n) => {
                        self.qsm.stats.requests_partition += 1;
                        n
                    }
                    // Stalled: the sender multicasts it again.
                    RecoveryTarget::Sender(n) if to_sender && n != self.id => n,
                    // The sender acts on the token's lost ranges instead.
                    RecoveryTarget::Sender(_) => continue,
                };
                self.qsm_queue(
                    to,
                    Work::Request {
                        region: address,
                        sender,
                        first,
                        count,
                    },
                    now,
                );
            }
        }
    }

    /// Where to ask for `(sender, seq)`: during a flush, every other round
    /// a holder under the region's previous view that is still a member
    /// (old copies were placed by the old view); when stalled, the sender
    /// and, in turn, a holder of each other partition (copies a view
    /// change left outside the caching partition, or a joiner that knows
    /// no previous view).
    fn qsm_recovery_target(
        &self,
        r: usize,
        sender: NodeId,
        seq: u32,
        round: u32,
        to_sender: bool,
        wide: bool,
    ) -> Option<RecoveryTarget> {
        if to_sender {
            return Some(RecoveryTarget::Sender(sender));
        }
        let region = &self.qsm.regions[r];
        let replication = self.qsm.config.replication;
        let parts = region.partitions();
        if wide && parts > 1 {
            let own = region.partition_of(region.index_of(self.id)?);
            let q = (own + 1 + (round / 2) as usize % (parts - 1)) % parts;
            let mut out = [NodeId(0); cache::MAX_HOLDERS];
            let n = cache::holders(sender, seq, region.partition(q), replication, &mut out);
            if let Some(&h) = out.get(round as usize % n.max(1)).filter(|_| n > 0) {
                return Some(RecoveryTarget::Partition(h));
            }
        }
        if round % 2 == 1 {
            if let Some(prev) = self.qsm.prev.get(r).and_then(Option::as_ref) {
                let old = recovery_target(prev, self.id, sender, seq, replication, round / 2);
                if let Some(RecoveryTarget::Peer(n) | RecoveryTarget::Partition(n)) = old {
                    if n != self.id && region.contains(n) {
                        return old;
                    }
                }
            }
        }
        recovery_target(region, self.id, sender, seq, replication, round)
    }

    fn qsm_on_request(
        &mut self,
        now: Instant,
        from: NodeId,
        region: u32,
        sender: NodeId,
        first: u32,
        count: u16,
    ) {
        let Some(r) = self.qsm.region_by_address(region) else {
            return;
        };
        let count = u32::from(count.min(MAX_REQUEST));
        let last = first.saturating_add(count - 1);
        if sender == self.id {
            // The whole region may have missed it: multicast it again.
            let st = &mut self.qsm.send[r];
            for seq in first..=last {
                if seq > st.acked
                    && st.slot(seq).is_some()
                    && !st.retransmit.iter().any(|&x| x == seq)
                    && st.retransmit.push_back(seq).is_err()
                {
                    break;
                }
            }
            if let Some(s) = self.qsm.region_sink[r] {
                self.register(usize::from(s), Feed::QsmData, now);
            }
            return;
        }
        let Some(i) = self.qsm.stream_index(r as u8, sender) else {
            return;
        };
        for seq in first..=last {
            if self.qsm.streams[i].held(seq).is_some() {
                self.qsm_queue(
                    from,
                    Work::Forward {
                        stream: i as u8,
                        seq,
                    },
                    now,
                );
            }
        }
    }

    /// The region's aggregate reached the sender: free what is stable
    /// (flow control opens), note progress for the tail rule.
    fn qsm_on_ack(&mut self, r: usize, e: &TokenEntry, round: u32, now: Instant) {
        let Some(st) = self.qsm.send.get_mut(r) else {
            return;
        };
        st.acks += 1;
        let stable = e.max_contiguous.min(st.sent_upto);
        let mut freed = 0usize;
        let (mut acked, mut lat_sum, mut lat_max) = (0u64, 0u64, 0u64);
        let upto = stable.min(st.acked.saturating_add(RING as u32));
        for seq in st.acked.saturating_add(1)..=upto {
            let slot = seq as usize % RING;
            if st.ring[slot].is_some_and(|x| x.seq == seq) {
                if let Some(x) = st.ring[slot].take() {
                    self.pool.free(x.handle);
                    freed += Pool::<BLOCKS>::blocks_for(x.handle.len()) * BLOCK_LEN;
                    let lat = now.saturating_since(x.sent_at).as_micros();
                    acked += 1;
                    lat_sum += lat;
                    lat_max = lat_max.max(lat);
                }
            }
        }
        if upto > st.acked || e.max_seen > st.last_max_seen {
            st.progress_at = now;
        }
        st.acked = st.acked.max(upto);
        st.last_max_seen = st.last_max_seen.max(e.max_seen.min(st.sent_upto));
        // Silent tail: messages older than a whole round nobody has seen.
        let mut tail = false;
        if st.mark_round == 0 || round >= st.mark_round.saturating_add(2) {
            if st.mark_round != 0 && e.max_seen < st.mark_sent {
                let from = e.max_seen.max(st.acked).saturating_add(1);
                let to = st.mark_sent.min(from.saturating_add(TAIL_BURST - 1));
                for seq in from..=to {
                    if st.slot(seq).is_some()
                        && !st.retransmit.iter().any(|&x| x == seq)
                        && st.retransmit.push_back(seq).is_ok()
                    {
                        tail = true;
                    }
                }
            }
            st.mark_round = round.max(1);
            st.mark_sent = st.sent_upto;
        }
        // Sender recovery: what the whole region missed goes out again.
        let mut lost = 0u64;
        'ranges: for rg in e.ranges() {
            let lo = rg.lo.max(st.acked.saturating_add(1));
            let hi = rg.hi.min(st.sent_upto);
            for seq in lo..=hi {
                if st.slot(seq).is_some() && !st.retransmit.iter().any(|&x| x == seq) {
                    if st.retransmit.push_back(seq).is_err() {
                        break 'ranges;
                    }
                    lost += 1;
                }
            }
        }
        if lost > 0 || tail {
            if let Some(s) = self.qsm.region_sink.get(r).copied().flatten() {
                self.register(usize::from(s), Feed::QsmData, now);
            }
        }
        self.tx_pool_bytes = self.tx_pool_bytes.saturating_sub(freed);
        self.qsm.tx_bytes = self.qsm.tx_bytes.saturating_sub(freed);
        let s = &mut self.qsm.stats;
        s.lost_reported += lost;
        s.acked += acked;
        s.ack_latency_sum_us += lat_sum;
        s.ack_latency_max_us = s.ack_latency_max_us.max(lat_max);
    }
}

/// The most generations a token or pass may be ahead of this member's.
/// Regenerations take at least `suspect_min` of silence each, so a live
/// member never lags by this many; a generation further ahead (a faulty
/// member, or one near `u32::MAX`, where regeneration could no longer
/// outrank it) is ignored.
const MAX_GENERATION_JUMP: u32 = 1 << 16;

/// Whether generation `theirs` may be followed from `mine`.
fn generation_plausible(mine: u32, theirs: u32) -> bool {
    theirs <= mine.saturating_add(MAX_GENERATION_JUMP) && theirs < u32::MAX - MAX_GENERATION_JUMP
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qsm::{SeqRange, TokenEntry};
    use std::boxed::Box;
    use std::vec::Vec;

    type Q = Node<16, 16, 32, 256, 16384, 1500, 64, 32>;

    /// A member of partition {1, 2, 3} (node 2), for the ring rules.
    fn ring_member() -> Box<Q> {
        let members = [NodeId(2)];
        let cfg = Config {
            mtu: 1500,
            qsm: QsmConfig {
                token_period: Duration::from_millis(10),
                partition_size: 3,
                suspect_after: 2,
                suspect_min: Duration::ZERO,
                ..QsmConfig::default()
            },
            ..Config::new(NodeId(2), &members)
        };
        let mut n = Box::new(Q::new(&cfg, Instant::ZERO).unwrap());
        let rm = [NodeId(1), NodeId(2), NodeId(3)];
        let views = [RegionView {
            address: GroupId(77),
            members: &rm,
        }];
        let groups = [GroupView {
            group: GroupId(1),
            regions: 1,
        }];
        n.install_groups(Instant::ZERO, 4, &views, &groups).unwrap();
        n
    }

    fn token(
        n: &mut Q,
        at: Instant,
        from: u16,
        epoch: u32,
        generation: u32,
        releaser: u16,
        round: u32,
    ) {
        let rec = RecordRepr::QsmToken {
            region: 77,
            round,
            released_at: 0,
            level: 0,
            epoch,
            generation,
            releaser,
            entries: EntryList::new(&[]).unwrap(),
        };
        n.qsm_apply(at, NodeId(from), rec);
    }

    /// Tokens of a lower generation, of another view, from outside the
    /// ring or naming a releaser outside it are stale: ignored, and the
    /// passer of a stale one is told the current generation. A higher
    /// generation (or the same one from a higher releaser id) is followed.
    #[test]
    fn stale_token_generations_are_ignored() {
        std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn(|| {
                let mut n = ring_member();
                let t = Instant::ZERO + Duration::from_millis(1);
                let led = |n: &Q| {
                    let l = &n.qsm.leader[0][0];
                    (l.generation, n.qsm_releaser(0, 0).map(|r| r.0), l.round)
                };
                token(&mut n, t, 1, 4, 0, 1, 7);
                assert_eq!(led(&n), (0, Some(1), 7));
                assert!(n.qsm.pending[0][0].is_some(), "accepted: to be passed on");
                // Regenerated by node 3: generation 2, its own rounds.
                token(&mut n, t, 1, 4, 2, 3, 1);
                assert_eq!(led(&n), (2, Some(3), 1));
                // Stale: a lower generation (with a huge round), another
                // epoch, a non-member passer or releaser, the same
                // generation from a lower releaser id.
                token(&mut n, t, 1, 4, 1, 1, 1000);
                token(&mut n, t, 1, 5, 9, 1, 1000);
                token(&mut n, t, 9, 4, 9, 1, 1000);
                token(&mut n, t, 1, 4, 9, 9, 1000);
                token(&mut n, t, 1, 4, 2, 1, 1000);
                assert_eq!(led(&n), (2, Some(3), 1), "nothing changed");
                // The stale passer (node 1) is told generation 2 of node 3.
                let told = n.qsm.control.iter().flatten().any(|w| {
                    matches!(
                        w,
                        Work::Pass {
                            generation: 2,
                            releaser: 3,
                            round: 1000,
                            ..
                        }
                    )
                });
                assert!(told);
                // A pass acknowledgement naming a newer generation is followed.
                n.qsm_apply(
                    t,
                    NodeId(3),
                    RecordRepr::QsmPass {
                        region: 77,
                        epoch: 4,
                        level: 0,
                        generation: 6,
                        releaser: 1,
                        round: 0,
                    },
                );
                assert_eq!(led(&n).0, 6);
                assert_eq!(led(&n).1, Some(1));
                // A generation beyond any plausible lag (a faulty member;
                // near u32::MAX regeneration could never outrank it) is
                // not followed, by pass or by token.
                for generation in [6 + (1 << 16) + 1, u32::MAX] {
                    n.qsm_apply(
                        t,
                        NodeId(3),
                        RecordRepr::QsmPass {
                            region: 77,
                            epoch: 4,
                            level: 0,
                            generation,
                            releaser: 3,
                            round: 0,
                        },
                    );
                    token(&mut n, t, 3, 4, generation, 3, 1000);
                    assert_eq!(led(&n).0, 6);
                    assert_eq!(led(&n).1, Some(1));
                }
            })
            .unwrap()
            .join()
            .unwrap();
    }

    /// With no token for `suspect_after + 1 + position` periods (no
    /// `suspect_min` here) a member
    /// regenerates it (generation + 1, itself the releaser, released at
    /// once); a token passed and never acknowledged is passed again every
    /// half period, and its member skipped after `suspect_after` periods.
    #[test]
    fn silence_regenerates_the_token_and_skips_the_silent() {
        std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn(|| {
                let mut n = ring_member();
                let mut buf = [0u8; 1500];
                let mut now = Instant::ZERO;
                // Node 2 is at position 1 of its partition: it waits
                // 2 + 1 + 1 = 4 periods (40 ms) after the view.
                while now < Instant::ZERO + Duration::from_millis(39) {
                    now += Duration::from_millis(1);
                    n.handle_timeout(now);
                    while n.poll_transmit(now, &mut buf).is_ok() {}
                }
                assert_eq!(n.qsm_stats().regenerated, 0);
                while now < Instant::ZERO + Duration::from_millis(46) {
                    now += Duration::from_millis(1);
                    n.handle_timeout(now);
                    while n.poll_transmit(now, &mut buf).is_ok() {}
                }
                assert_eq!(n.qsm_stats().regenerated, 1);
                let l = &n.qsm.leader[0][0];
                assert_eq!((l.generation, l.releaser), (1, Some(NodeId(2))));
                // Its token went to node 3, who never answers: passed
                // again, then node 3 is skipped (and so is node 1 later,
                // which does not answer either).
                while now < Instant::ZERO + Duration::from_millis(90) {
                    now += Duration::from_millis(1);
                    n.handle_timeout(now);
                    while n.poll_transmit(now, &mut buf).is_ok() {}
                }
                let st = n.qsm_stats();
                assert!(st.token_retries >= 2, "{st:?}");
                assert!(st.suspected >= 1, "{st:?}");
                assert!(n.qsm.leader[0][0].suspects.contains(&NodeId(3)));
                assert_ne!(n.qsm_ring_next(0, 0), Some(NodeId(3)));
                // Node 3 speaks again: it is no longer skipped.
                n.qsm_apply(
                    now,
                    NodeId(3),
                    RecordRepr::QsmPass {
                        region: 77,
                        epoch: 4,
                        level: 0,
                        generation: 1,
                        releaser: 2,
                        round: 0,
                    },
                );
                assert_eq!(n.qsm_ring_next(0, 0), Some(NodeId(3)));
            })
            .unwrap()
            .join()
            .unwrap();
    }

    /// Hostile QSM records from anyone, with extreme values, interleaved
    /// with timers, transmissions and deliveries: nothing panics, storage
    /// accounting stays within the pool, and work stays bounded.
    #[test]
    fn hostile_records_never_panic() {
        std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn(|| {
                let members = [NodeId(3)];
                let cfg = Config {
                    mtu: 1500,
                    qsm: QsmConfig {
                        token_period: Duration::from_millis(5),
                        partition_size: 3,
                        ..QsmConfig::default()
                    },
                    ..Config::new(NodeId(3), &members)
                };
                let mut n = Box::new(Q::new(&cfg, Instant::ZERO).unwrap());
                let rm: Vec<NodeId> = (1..=8).map(NodeId).collect();
                let views = [
                    RegionView {
                        address: GroupId(77),
                        members: &rm,
                    },
                    RegionView {
                        address: GroupId(78),
                        members: &rm[..1],
                    },
                ];
                let groups = [
                    GroupView {
                        group: GroupId(1),
                        regions: 1,
                    },
                    GroupView {
                        group: GroupId(2),
                        regions: 3,
                    },
                ];
                n.install_groups(Instant::ZERO, 1, &views, &groups).unwrap();
                let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
                let mut rnd = move || {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x
                };
                let pick = |v: u64| -> u32 {
                    match v % 8 {
                        0 => 0,
                        1 => 1,
                        2 => u32::MAX,
                        3 => u32::MAX - 1,
                        4 => 31 + (v >> 8) as u32 % 4,
                        _ => (v >> 8) as u32 % 80,
                    }
                };
                let mut buf = [0u8; 1500];
                let mut now = Instant::ZERO;
                let payload = [7u8; 300];
                for step in 0..30_000u64 {
                    now += Duration::from_micros(rnd() % 400);
                    let from = NodeId((rnd() % 10) as u16);
                    let region = if rnd() % 5 == 0 {
                        99
                    } else {
                        77 + (rnd() % 2) as u32
                    };
                    let sender = (rnd() % 10) as u16;
                    let rec = match rnd() % 5 {
                        4 => RecordRepr::QsmPass {
                            region,
                            epoch: if rnd() % 4 == 0 { pick(rnd()) } else { 1 },
                            level: (rnd() % 2) as u8,
                            generation: pick(rnd()),
                            releaser: (rnd() % 10) as u16,
                            round: pick(rnd()),
                        },
                        0 => RecordRepr::QsmData {
                            region,
                            sender,
                            seq: pick(rnd()),
                            group: (rnd() % 3) as u32,
                            gseq: pick(rnd()),
                            payload: &payload[..(rnd() % 300) as usize],
                        },
                        1 => RecordRepr::QsmRequest {
                            region,
                            sender,
                            first: pick(rnd()),
                            count: (rnd() % 70) as u16 + 1,
                        },
                        k => {
                            let mut es = [TokenEntry::default(); 3];
                            for e in es.iter_mut() {
                                *e = TokenEntry::member(
                                    (rnd() % 10) as u16,
                                    pick(rnd()),
                                    pick(rnd()),
                                );
                                e.stable = pick(rnd());
                                let lo = pick(rnd());
                                if let Some(r) = SeqRange::new(lo, lo.saturating_add(pick(rnd()))) {
                                    e.add_missing(r, 4);
                                }
                            }
                            let mut eb = [0u8; 512];
                            let len = mc::write_entries(&mut eb, &es);
                            let entries = EntryList::new(&eb[..len]).unwrap();
                            let rec = if k == 2 {
                                RecordRepr::QsmToken {
                                    region,
                                    round: pick(rnd()),
                                    released_at: rnd() % 1_000_000,
                                    level: (rnd() % 2) as u8,
                                    epoch: if rnd() % 4 == 0 { pick(rnd()) } else { 1 },
                                    generation: pick(rnd()),
                                    releaser: (rnd() % 10) as u16,
                                    entries,
                                }
                            } else {
                                RecordRepr::QsmAck {
                                    region,
                                    round: pick(rnd()),
                                    entries,
                                }
                            };
                            n.qsm_apply(now, from, rec);
                            continue;
                        }
                    };
                    n.qsm_apply(now, from, rec);
                    if step % 7 == 0 {
                        let _ = n.multicast(now, GroupId(1 + (rnd() % 2) as u32), &payload[..100]);
                    }
                    if step % 5 == 0 {
                        n.handle_timeout(now);
                        while n.poll_transmit(now, &mut buf).is_ok() {}
                    }
                    while n.poll_event().is_some() {}
                    let (rx, tx) = n.qsm_storage();
                    assert!(rx + tx <= 256 * crate::pool::BLOCK_LEN);
                }
                // The records did reach the protocol.
                let st = n.qsm_stats();
                assert!(
                    st.delivered > 0 && st.duplicates > 0 && st.multicasts > 0,
                    "{st:?}"
                );
                assert!(st.forwards > 0 || st.remulticasts > 0, "{st:?}");
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
