//! Membership and view change (FastCast §3.4, Fig. 3), with the failure
//! detector and joins that the paper takes from its group communication
//! system.
//!
//! Fig. 3 in this engine: when a view change starts, every process of the
//! proposed view freezes the ordering procedures and sends RECOVER (its
//! pendings and seqnos) to all (`Recover` parts, re-sent until acknowledged);
//! a process that received the whole RECOVER of `p` — including the data of
//! every message `p` holds and it lacks, fetched with `Fetch` — sends
//! ACK_RECOVER to `p`; a process acknowledged by all sends END_RECOVERY; a
//! process that received END_RECOVERY from all runs forceDeliver and installs
//! the view, whose first member is the new sequencer; numbering continues.
//!
//! Decisions the paper leaves to its group communication system:
//! * **Who proposes.** The coordinator — the first member of the proposed
//!   view (current view minus suspects, plus joiners) — proposes view
//!   `vid + 1`. Every process re-sends the proposal with its RECOVER, so a
//!   process that missed the coordinator still learns it. A higher `vid`
//!   supersedes a lower one (a second crash during a view change starts a new
//!   one, keeping everything merged so far); the sequencer never changes on a
//!   suspicion alone, only when a view is installed (JGroups JGRP-1452).
//! * **Primary partition.** By default a proposal needs a majority of the
//!   current view, so the two sides of a partition cannot both go on
//!   ([`ViewPolicy::PrimaryPartition`]); [`ViewPolicy::TrustDetector`] follows
//!   the paper's perfect failure detector instead (any survivor goes on).
//! * **RECOVER content.** Ordered entries are the contiguous range of numbers
//!   whose order the sender knows; every other message it holds is listed as
//!   unordered. So the union over the new view is contiguous, forceDeliver
//!   delivers it in number order up to its end `K`, then the unordered
//!   messages by increasing id, numbered `K, K+1, …` — the same at every
//!   process, since all merged the same RECOVERs. Numbers a process knew
//!   beyond `K` are void; the new sequencer numbers those messages again.
//! * **Proposal ids are unique**: a counter above every id seen, times 256,
//!   plus the coordinator's index, so ACK_RECOVER and END_RECOVERY name one
//!   proposal. An attempt that does not complete is retried with a later id
//!   by the coordinator of the view it would propose now — but not after its
//!   END_RECOVERY went out, unless a member of it is suspected (others may
//!   have installed it already). A coordinator that sees others change views
//!   without it takes over with a later id.
//! * **Numbers beyond the contiguous prefix are forgotten** when a change
//!   starts: forceDeliver voids every number at or beyond its `K`, and a
//!   member that agreed to a view it did not install must not keep an older
//!   numbering of the same numbers.
//! * **Exclusion** is learnt only from an installed view (`ViewInstalled`,
//!   sent to a process that shows it missed one), never from a proposal; an
//!   excluded process answers proposals that count on it with `Leave`.
//! * **Joins** happen at a view boundary: a process outside the view sends
//!   `Join` until a view includes it; it merges the RECOVERs' metadata to
//!   learn where numbering continues, and delivers from the new view on.
//!   A member that restarted is first excluded, then joins.

use super::sequencer::{Pending, TobKind, PER_ORIGIN};
use super::*;
use crate::wire::order::{IdEntry, IdList, ID_HAS_DATA, ID_LEN, RECOVER_HEADER_LEN};

/// How a view change decides it may go on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ViewPolicy {
    /// A new view needs a majority of the current one (default).
    PrimaryPartition,
    /// The failure detector is perfect (the paper's model): survivors go on.
    TrustDetector,
}

/// A view change under way.
pub(crate) struct Recovery<const SINKS: usize, const SLOTS: usize> {
    pub(crate) vid: u32,
    pub(crate) members: u64,
    /// This process joins: it learns where numbering continues, nothing else.
    pub(crate) joining: bool,
    /// The frozen RECOVER of this process.
    pub(crate) deliver_from: u64,
    pub(crate) order_end: u64,
    pub(crate) unordered: heapless::Vec<(u8, u32), SLOTS>,
    pub(crate) parts: u8,
    pub(crate) next_part: u8,
    /// End of the contiguous order over every RECOVER merged (K).
    pub(crate) union_order_end: u64,
    /// Parts received from each member (bitmap of up to 256 parts), and how
    /// many it sends.
    pub(crate) got_parts: [[u64; 4]; SINKS],
    pub(crate) their_parts: [u8; SINKS],
    /// Members that acknowledged this process's RECOVER.
    pub(crate) acked_me: u64,
    /// Members this process acknowledged.
    pub(crate) acked: u64,
    /// Members whose END_RECOVERY arrived.
    pub(crate) ended: u64,
    /// When this attempt started.
    pub(crate) started: Instant,
}

fn bit(p: usize) -> u64 {
    if p < 64 {
        1u64 << p
    } else {
        0
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
    /// True while a view change is under way (ordering is frozen).
    pub(crate) fn recovering(&self) -> bool {
        self.recovery.is_some()
    }

    /// The failure-detector input: the host (or the built-in heartbeat
    /// detector) suspects `node` has crashed. Starts a view change without it.
    pub fn suspect(&mut self, now: Instant, node: NodeId) -> Result<(), Error> {
        let p = self.peer_index(node).ok_or(Error::NotMember)?;
        if p == self.me {
            return Err(Error::NotMember);
        }
        self.tob_suspect(p, now);
        Ok(())
    }

    pub(crate) fn tob_suspect(&mut self, p: usize, now: Instant) {
        if self.suspects & bit(p) != 0 {
            return;
        }
        self.suspects |= bit(p);
        let id = self.peers[p].id;
        self.inbox.push(EventMeta::Suspected { node: id }, &[]);
        self.maybe_propose(now);
    }

    /// The current view: its id and members.
    pub fn view(&self) -> (u32, impl Iterator<Item = NodeId> + '_) {
        let v = self.tob.view;
        (
            self.tob.view_id,
            self.peers
                .iter()
                .enumerate()
                .filter(move |(i, _)| *i < 64 && v & (1u64 << i) != 0)
                .map(|(_, p)| p.id),
        )
    }

    /// The view change under way, if any: (proposed view id, members,
    /// members that acknowledged our RECOVER, members we acknowledged,
    /// members whose END_RECOVERY arrived), member sets by peer index.
    #[doc(hidden)]
    pub fn recovery_state(&self) -> Option<(u32, u64, u64, u64, u64)> {
        self.recovery
            .as_ref()
            .map(|r| (r.vid, r.members, r.acked_me, r.acked, r.ended))
    }

    /// True once this process was left out of an installed view: it takes
    /// no further part in the total order until it restarts and joins.
    pub fn is_excluded(&self) -> bool {
        self.tob.excluded
    }

    /// The current sequencer.
    pub fn sequencer(&self) -> NodeId {
        self.peers[self.tob.leader as usize].id
    }

    /// Proposes a view if this process is the coordinator of the next one.
    pub(crate) fn maybe_propose(&mut self, now: Instant) {
        self.propose(now, false);
    }

    /// Proposes the view this process would install if it is its
    /// coordinator: when it differs from the current one, or always with
    /// `force` (others are changing views without us: take over).
    fn propose(&mut self, now: Instant, force: bool) {
        if self.tob.excluded {
            return;
        }
        // Proposals start from the installed view: a member left out of an
        // earlier proposal that never completed comes back once heard again.
        let current = self.recovery.as_ref().map_or(self.tob.view, |r| r.members);
        let proposal = (self.tob.view & !self.suspects & !self.departed) | self.joiners;
        if (proposal == current && !force) || proposal & bit(self.me) == 0 {
            return;
        }
        if proposal.trailing_zeros() as usize != self.me {
            return; // the coordinator proposes
        }
        if self.view_policy == ViewPolicy::PrimaryPartition
            && (proposal & self.tob.view).count_ones() * 2 <= self.tob.view.count_ones()
        {
            self.counters.view_blocked += 1;
            return;
        }
        let vid = self.next_vid();
        self.start_view_change(vid, proposal, now);
    }

    /// The id of a new proposal: a counter above every id seen, in the
    /// high 24 bits, and the coordinator's index in the low 8, so that two
    /// coordinators never propose the same id and every ACK_RECOVER and
    /// END_RECOVERY names exactly one proposal.
    fn next_vid(&self) -> u32 {
        let seen = self
            .tob
            .view_id
            .max(self.recovery.as_ref().map_or(0, |r| r.vid))
            .max(self.highest_vid_seen);
        (((seen >> 8) + 1) << 8) | (self.me as u32 & 0xff)
    }

    /// A proposal arrived (from its coordinator or re-sent by a member).
    pub(crate) fn on_view_change(
        &mut self,
        now: Instant,
        from: usize,
        vid: u32,
        members: MemberList<'_>,
    ) {
        let mut set = 0u64;
        for m in members.iter() {
            match self.peer_index(NodeId(m)) {
                Some(p) => set |= bit(p),
                None => return,
            }
        }
        if self.tob.excluded {
            if set & bit(self.me) != 0 {
                // A proposal that counts on us: say we are out, or it can
                // never complete.
                self.register(from + 1, Feed::Leave, now);
            }
            return;
        }
        if !self.tob.is_member(from) && !self.joining {
            // A proposal from outside our view is stale (its sender missed a
            // view change): tell it which view it missed.
            if !self.recovering() {
                self.register(from + 1, Feed::ViewNotice, now);
            }
            return;
        }
        self.highest_vid_seen = self.highest_vid_seen.max(vid);
        if vid <= self.tob.view_id && !(self.joining && self.tob.view_id == 0 && vid > 0) {
            return;
        }
        if set & bit(self.me) == 0 {
            // Only a proposal: it may never complete, so it excludes nobody
            // yet (an installed view does, see `on_view_installed_notice`).
            // But a member of our view is changing views without us while we
            // do not suspect anyone: if we coordinate the view we would
            // propose, take over with a later id (else it may wait forever
            // for a coordinator that sees no reason to act).
            if self.recovery.is_none() && !self.joining {
                self.propose(now, true);
            }
            return;
        }
        if let Some(r) = &self.recovery {
            // Ids name one proposal each (see `next_vid`): only a later one
            // replaces the attempt under way.
            if vid <= r.vid {
                return;
            }
        }
        self.start_view_change(vid, set, now);
    }

    /// A member of our view says a later view was installed without us.
    pub(crate) fn on_view_installed_notice(
        &mut self,
        from: usize,
        vid: u32,
        members: MemberList<'_>,
    ) {
        if self.tob.excluded || self.joining || !self.tob.is_member(from) || vid <= self.tob.view_id
        {
            return;
        }
        let mut set = 0u64;
        for m in members.iter() {
            match self.peer_index(NodeId(m)) {
                Some(p) => set |= bit(p),
                None => return,
            }
        }
        if set & bit(self.me) == 0 {
            self.tob.excluded = true;
            self.recovery = None;
            self.inbox.push(EventMeta::Excluded, &[]);
        }
    }

    /// Freezes ordering and starts exchanging RECOVER (Fig. 3 line 2).
    pub(crate) fn start_view_change(&mut self, vid: u32, members: u64, now: Instant) {
        let joining = self.joining;
        let mut unordered = heapless::Vec::new();
        let (deliver_from, order_end) = if joining {
            (0, 0)
        } else {
            (self.tob.retained_from, self.tob.order_end)
        };
        if !joining {
            // Numbers known beyond the contiguous prefix are not reported,
            // so the union may number those messages differently (forceDeliver
            // voids every number at or beyond its K): forget them now, or a
            // later view change would mix two numberings. Nobody delivered
            // them (delivery needs every member's contiguous knowledge).
            for slot in 0..SLOTS {
                let Some(p) = self.tob.pendings[slot].as_mut() else {
                    continue;
                };
                if let Some(sn) = p.sn {
                    if sn >= order_end {
                        p.sn = None;
                        self.tob.ring[(sn % SLOTS as u64) as usize] = u16::MAX;
                    }
                }
            }
            for slot in 0..SLOTS {
                let Some(p) = self.tob.pendings[slot].as_mut() else {
                    continue;
                };
                let in_range = p.sn.is_some_and(|sn| sn >= deliver_from && sn < order_end);
                if in_range {
                    p.in_union = true;
                } else if p.complete && !p.delivered {
                    p.in_union = true;
                    let _ = unordered.push((p.origin, p.counter));
                }
            }
        }
        let total = (order_end - deliver_from) as usize + unordered.len();
        let per = self.recover_ids_per_part();
        let parts = total.div_ceil(per).clamp(1, 255) as u8;
        let previous = self.recovery.take();
        self.recovery = Some(Recovery {
            vid,
            members,
            joining,
            deliver_from,
            order_end,
            unordered,
            parts,
            next_part: 0,
            union_order_end: previous.map_or(order_end, |r| r.union_order_end.max(order_end)),
            got_parts: [[0; 4]; SINKS],
            their_parts: [0; SINKS],
            acked_me: bit(self.me),
            acked: bit(self.me),
            ended: 0,
            started: now,
        });
        self.counters.view_changes_started += 1;
        self.register(GROUP_SINK, Feed::Recover, now);
        self.recovery_deadline = Some(now + self.tob.rto);
    }

    fn recover_ids_per_part(&self) -> usize {
        let room = self.integrity.max_frame_len(self.mtu)
            - Header::LEN
            - wire::RECORD_HEADER_LEN
            - RECOVER_HEADER_LEN;
        // Leave room for the ViewChange record that leads the first part.
        ((room - 4 - 2 * 64 - wire::RECORD_HEADER_LEN) / ID_LEN).max(1)
    }

    /// The RECOVER parts (and the proposal), made when pulled.
    pub(crate) fn pull_recover(
        &mut self,
        s: usize,
        _now: Instant,
        w: &mut FrameWriter<'_>,
    ) -> Pulled {
        let Some(r) = self.recovery.as_ref() else {
            self.sinks[s].registered &= !Feed::Recover.bit();
            return Pulled::Done;
        };
        let (vid, members, part) = (r.vid, r.members, r.next_part);
        if part == 0 && !self.write_view(w, KIND_VIEW_CHANGE, vid, members) {
            return Pulled::NoRoom;
        }
        let per = self.recover_ids_per_part();
        let mut part = part;
        while let Some(r) = self.recovery.as_ref() {
            if part >= r.parts {
                break;
            }
            let n_ordered_total = (r.order_end - r.deliver_from) as usize;
            let total = n_ordered_total + r.unordered.len();
            let first = part as usize * per;
            let count = per.min(total.saturating_sub(first));
            if w.remaining() < wire::RECORD_HEADER_LEN + RECOVER_HEADER_LEN + count * ID_LEN {
                break;
            }
            let n_ordered = n_ordered_total.saturating_sub(first).min(count);
            let first_sn = r.deliver_from + first as u64;
            let (deliver_from, order_end, pending_total, parts) = (
                r.deliver_from,
                r.order_end,
                r.unordered.len() as u32,
                r.parts,
            );
            let tob = &self.tob;
            let peers = &self.peers;
            let unordered = &r.unordered;
            let entry = |i: usize| -> IdEntry {
                let p: Option<Pending> = if i < n_ordered_total {
                    tob.ring_slot(deliver_from + i as u64)
                        .and_then(|s| tob.pendings[s as usize])
                } else {
                    unordered
                        .get(i - n_ordered_total)
                        .and_then(|&(o, c)| tob.slot_of(o, c))
                        .and_then(|s| tob.pendings[s as usize])
                };
                match p {
                    Some(p) => IdEntry {
                        origin: peers[p.origin as usize].id.0,
                        counter: p.counter,
                        flags: if p.complete { ID_HAS_DATA } else { 0 },
                    },
                    None => IdEntry {
                        origin: u16::MAX,
                        counter: 0,
                        flags: 0,
                    },
                }
            };
            let ok = w
                .push_with(KIND_RECOVER, RECOVER_HEADER_LEN + count * ID_LEN, |b| {
                    b[0..4].copy_from_slice(&vid.to_be_bytes());
                    b[4..12].copy_from_slice(&deliver_from.to_be_bytes());
                    b[12..20].copy_from_slice(&order_end.to_be_bytes());
                    b[20..24].copy_from_slice(&pending_total.to_be_bytes());
                    b[24] = part;
                    b[25] = parts;
                    b[26..34].copy_from_slice(&first_sn.to_be_bytes());
                    b[34..36].copy_from_slice(&(n_ordered as u16).to_be_bytes());
                    for k in 0..count {
                        IdList::write(&mut b[RECOVER_HEADER_LEN..], k, entry(first + k));
                    }
                })
                .is_ok();
            if !ok {
                break;
            }
            part += 1;
        }
        let Some(r) = self.recovery.as_mut() else {
            return Pulled::Done;
        };
        if part >= r.parts {
            r.next_part = 0;
            self.sinks[s].registered &= !Feed::Recover.bit();
            Pulled::Done
        } else {
            // The intent stays at the head of the queue and resumes from
            // `next_part` in the next datagram. Registering it again would
            // queue a second intent, which — `next_part` being back at 0
            // once the first finishes — would send every part again, and
            // queue a third: an endless burst within one instant.
            r.next_part = part;
            Pulled::Partial
        }
    }

    /// Merges one RECOVER part of member `from` (Fig. 3 lines 13–18).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_recover(
        &mut self,
        now: Instant,
        from: usize,
        vid: u32,
        order_end: u64,
        part: u8,
        parts: u8,
        first_sn: u64,
        n_ordered: u16,
        ids: IdList<'_>,
    ) {
        let Some(r) = self.recovery.as_mut() else {
            if vid == self.tob.view_id && self.tob.is_member(from) {
                // Installed already: the sender still waits for our END.
                self.register(from + 1, Feed::EndRecovery, now);
            } else if !self.tob.is_member(from) && !self.joining && !self.tob.excluded {
                self.register(from + 1, Feed::ViewNotice, now);
            }
            return;
        };
        if vid != r.vid || r.members & bit(from) == 0 {
            return;
        }
        r.union_order_end = r.union_order_end.max(order_end);
        r.their_parts[from] = parts;
        let word = (part / 64) as usize;
        let mask = 1u64 << (part % 64);
        if r.got_parts[from][word] & mask != 0 {
            return; // a duplicate part: merged already
        }
        r.got_parts[from][word] |= mask;
        let joining = r.joining;
        for (i, e) in ids.iter().enumerate() {
            let Some(o) = self.peer_index(NodeId(e.origin)) else {
                continue;
            };
            let sn = (i < usize::from(n_ordered)).then_some(first_sn + i as u64);
            self.merge_entry(o, e.counter, sn, e.flags & ID_HAS_DATA != 0, from, joining);
        }
        self.check_recover_complete(from, now);
    }

    /// Adds one entry of a RECOVER to this process's pendings and seqnos.
    fn merge_entry(
        &mut self,
        o: usize,
        counter: u32,
        sn: Option<u64>,
        has_data: bool,
        from: usize,
        joining: bool,
    ) {
        if !joining && counter.wrapping_sub(self.tob.next_to_deliver[o]) >= 0x8000_0000 {
            return; // delivered here already
        }
        if let Some(sn) = sn {
            if sn < self.tob.next_deliver && !joining {
                return;
            }
        }
        let slot = match self.tob.slot_of(o as u8, counter) {
            Some(s) => s,
            None => {
                if counter.wrapping_sub(self.tob.next_to_deliver[o]) >= PER_ORIGIN as u32
                    && !joining
                {
                    self.counters.drop(DropReason::NoBufferSpace);
                    return;
                }
                let Some(s) = self.tob.free.pop() else {
                    self.counters.drop(DropReason::NoBufferSpace);
                    return;
                };
                self.tob.pendings[s as usize] = Some(Pending {
                    in_union: true,
                    ..Pending::placeholder(o as u8, counter, TobKind::App, 0)
                });
                self.tob.by_origin[o][counter as usize % PER_ORIGIN] = s;
                s
            }
        };
        if let Some(p) = self.tob.pendings[slot as usize].as_mut() {
            p.in_union = true;
            if has_data && !p.complete {
                p.claimed_by |= bit(from);
            }
        }
        if let Some(sn) = sn {
            let unknown = self.tob.pendings[slot as usize].is_some_and(|p| p.sn.is_none());
            if unknown && self.tob.ring_has_room(sn) && self.tob.ring_slot(sn).is_none() {
                self.tob_set_order(slot, sn);
            }
        }
    }

    /// After a part or a fetched message arrived: acknowledge `from`'s
    /// RECOVER once it is all here, or fetch what is missing.
    pub(crate) fn check_recover_complete(&mut self, from: usize, now: Instant) {
        let Some(r) = self.recovery.as_ref() else {
            return;
        };
        if r.acked & bit(from) != 0 {
            return;
        }
        let parts = r.their_parts[from];
        if parts == 0 {
            return;
        }
        let all_parts =
            (0..parts).all(|k| r.got_parts[from][(k / 64) as usize] & (1u64 << (k % 64)) != 0);
        if !all_parts {
            return;
        }
        let missing = !r.joining
            && self
                .tob
                .pendings
                .iter()
                .flatten()
                .any(|p| p.claimed_by & bit(from) != 0 && !p.complete);
        if missing {
            self.register(from + 1, Feed::Fetch, now);
        } else {
            if let Some(r) = self.recovery.as_mut() {
                r.acked |= bit(from);
            }
            self.register(from + 1, Feed::AckRecover, now);
        }
    }

    /// A fetch request of the data `from` lacks, made when pulled.
    pub(crate) fn pull_fetch(&mut self, s: usize, w: &mut FrameWriter<'_>) -> Pulled {
        let peer = s - 1;
        self.sinks[s].registered &= !Feed::Fetch.bit();
        let Some(vid) = self.recovery.as_ref().map(|r| r.vid) else {
            return Pulled::Done;
        };
        let room = w.remaining().saturating_sub(wire::RECORD_HEADER_LEN + 4) / ID_LEN;
        let tob = &self.tob;
        let peers = &self.peers;
        let wanted = || {
            tob.pendings
                .iter()
                .flatten()
                .filter(move |p| p.claimed_by & bit(peer) != 0 && !p.complete)
        };
        let n = wanted().count().min(room);
        if n == 0 {
            return if room == 0 {
                Pulled::NoRoom
            } else {
                Pulled::Done
            };
        }
        let ok = w
            .push_with(KIND_FETCH, 4 + n * ID_LEN, |b| {
                b[0..4].copy_from_slice(&vid.to_be_bytes());
                for (k, p) in wanted().take(n).enumerate() {
                    let e = IdEntry {
                        origin: peers[p.origin as usize].id.0,
                        counter: p.counter,
                        flags: 0,
                    };
                    IdList::write(&mut b[4..], k, e);
                }
            })
            .is_ok();
        if ok {
            Pulled::Done
        } else {
            Pulled::NoRoom
        }
    }

    /// Queues the data `from` asked for.
    pub(crate) fn on_fetch(&mut self, now: Instant, from: usize, vid: u32, ids: IdList<'_>) {
        if self.recovery.as_ref().is_none_or(|r| r.vid != vid) {
            return;
        }
        for e in ids.iter() {
            let Some(o) = self.peer_index(NodeId(e.origin)) else {
                continue;
            };
            let Some(slot) = self.tob.slot_of(o as u8, e.counter) else {
                continue;
            };
            if !self.tob.pendings[slot as usize].is_some_and(|p| p.complete) {
                continue;
            }
            if self.forward[from].push_back((slot, 0)).is_err() {
                break; // asked again on the next round
            }
        }
        self.register(from + 1, Feed::Forward, now);
    }

    /// Forwarded data (answers to `Fetch`), made when pulled.
    pub(crate) fn pull_forward(
        &mut self,
        s: usize,
        now: Instant,
        w: &mut FrameWriter<'_>,
    ) -> Pulled {
        let peer = s - 1;
        self.sinks[s].registered &= !Feed::Forward.bit();
        while let Some(&(slot, off)) = self.forward[peer].front() {
            let Some(p) = self.tob.pendings[slot as usize] else {
                self.forward[peer].pop_front();
                continue;
            };
            let Some(h) = p.handle else {
                self.forward[peer].pop_front();
                continue;
            };
            let total = p.total_len;
            let mut cursor = self.pool.cursor(h);
            let Some(n) = self.write_tob_slice(w, slot, off, &mut cursor) else {
                self.register(s, Feed::Forward, now);
                return Pulled::NoRoom;
            };
            self.counters.retransmissions += 1;
            if off + n >= total {
                self.forward[peer].pop_front();
            } else if let Some(f) = self.forward[peer].front_mut() {
                f.1 = off + n;
                self.register(s, Feed::Forward, now);
                return Pulled::Partial;
            }
        }
        Pulled::Done
    }

    /// A record that only names the view change (`AckRecover`, `EndRecovery`).
    pub(crate) fn pull_recovery_signal(
        &mut self,
        s: usize,
        feed: Feed,
        w: &mut FrameWriter<'_>,
    ) -> Pulled {
        self.sinks[s].registered &= !feed.bit();
        // Decided when pulled, from the state of this moment: an intent
        // registered for an earlier attempt or view must not speak for the
        // attempt under way.
        let r = match (&self.recovery, feed) {
            (Some(r), Feed::AckRecover) if s > 0 && r.acked & bit(s - 1) != 0 => {
                RecordRepr::AckRecover { vid: r.vid }
            }
            (Some(r), Feed::EndRecovery) if r.ended & bit(self.me) != 0 => {
                RecordRepr::EndRecovery { vid: r.vid }
            }
            (None, Feed::EndRecovery) => RecordRepr::EndRecovery {
                vid: self.tob.view_id,
            },
            _ => return Pulled::Done,
        };
        self.push_for_feed(s, feed, &r, w)
    }

    /// ACK_RECOVER from `from` (Fig. 3 line 3).
    pub(crate) fn on_ack_recover(&mut self, now: Instant, from: usize, vid: u32) {
        let Some(r) = self.recovery.as_mut() else {
            return;
        };
        if vid != r.vid || r.members & bit(from) == 0 {
            return;
        }
        r.acked_me |= bit(from);
        if r.acked_me & r.members == r.members {
            // Line 4: END_RECOVERY to all.
            r.ended |= bit(self.me);
            self.register(GROUP_SINK, Feed::EndRecovery, now);
            self.try_install(now);
        }
    }

    /// END_RECOVERY from `from` (Fig. 3 line 5).
    pub(crate) fn on_end_recovery(&mut self, now: Instant, from: usize, vid: u32) {
        let Some(r) = self.recovery.as_mut() else {
            if vid == self.tob.view_id && self.tob.is_member(from) {
                // Installed already; the sender may still wait for our END.
                self.register(from + 1, Feed::EndRecovery, now);
            }
            return;
        };
        if vid != r.vid || r.members & bit(from) == 0 {
            return;
        }
        r.ended |= bit(from);
        self.try_install(now);
    }

    fn try_install(&mut self, now: Instant) {
        let Some(r) = self.recovery.as_ref() else {
            return;
        };
        if r.ended & r.members != r.members {
            return;
        }
        let (vid, members, k, joining) = (r.vid, r.members, r.union_order_end, r.joining);
        self.force_deliver_and_install(vid, members, k, joining, now);
    }

    /// forceDeliver (Fig. 3 lines 19–27) and the new view (lines 7–12).
    fn force_deliver_and_install(
        &mut self,
        vid: u32,
        members: u64,
        k: u64,
        joining: bool,
        now: Instant,
    ) {
        // Numbers at or beyond K are void: they are numbered again.
        for slot in 0..SLOTS {
            let Some(p) = self.tob.pendings[slot].as_mut() else {
                continue;
            };
            if let Some(sn) = p.sn {
                if sn >= k {
                    p.sn = None;
                    self.tob.ring[(sn % SLOTS as u64) as usize] = u16::MAX;
                }
            }
        }
        // Lines 19–24 deliver numbered messages in order, skipping those
        // nobody holds. A skipped message's origin is gone (a live origin
        // holds all its messages), and so that the skip does not break its
        // FIFO order, its later messages are skipped too. Every member sees
        // the same union, so all skip the same.
        let mut broken = 0u64;
        if !joining {
            let mut sn = self.tob.next_deliver;
            while sn < k {
                if let Some(slot) = self.tob.ring_slot(sn) {
                    if let Some(p) = self.tob.pendings[slot as usize] {
                        let o = p.origin as usize;
                        if !p.complete && p.claimed_by == 0 {
                            broken |= bit(o);
                        }
                        if broken & bit(o) != 0 {
                            self.tob.ring[(sn % SLOTS as u64) as usize] = u16::MAX;
                            self.tob_free(slot);
                        }
                    }
                }
                sn += 1;
            }
        }
        // Lines 25–27: unordered pendings someone holds, by increasing id.
        let mut later: heapless::Vec<(u16, u32, u16), SLOTS> = heapless::Vec::new();
        for slot in 0..SLOTS {
            if let Some(p) = self.tob.pendings[slot] {
                if p.sn.is_none() && p.in_union && !p.delivered && (p.complete || p.claimed_by != 0)
                {
                    let _ =
                        later.push((self.peers[p.origin as usize].id.0, p.counter, slot as u16));
                }
            }
        }
        later.sort_unstable_by_key(|&(o, c, _)| (o, c));
        // Per origin, the counter that follows everything numbered below K:
        // the same at every member, since all merged the same RECOVERs.
        let mut next = self.tob.next_to_deliver;
        for p in self.tob.pendings.iter().flatten() {
            if p.sn.is_some() {
                let o = p.origin as usize;
                if p.counter.wrapping_add(1).wrapping_sub(next[o]) < 0x8000_0000 {
                    next[o] = p.counter.wrapping_add(1);
                }
            }
        }
        let mut sn = k.max(self.tob.retained_from);
        for &(_, c, slot) in later.iter() {
            let o = self.tob.pendings[slot as usize].map_or(0, |p| p.origin as usize);
            if c != next[o] || broken & bit(o) != 0 {
                // An earlier message of this origin is gone with it (nobody
                // held it): delivering this one would break FIFO order.
                continue;
            }
            if !self.tob.ring_has_room(sn) {
                self.counters.drop(DropReason::NoBufferSpace);
                break;
            }
            self.tob_set_order(slot, sn);
            next[o] = c.wrapping_add(1);
            sn += 1;
        }
        let start = sn;
        // Processes that join start their counters afresh.
        let newcomers = if joining { 0 } else { members & !self.tob.view };
        let mut v = newcomers & !bit(self.me);
        while v != 0 {
            let p = v.trailing_zeros() as usize;
            v &= v - 1;
            next[p] = 0;
            self.tob.next_to_deliver[p] = 0;
            for slot in 0..SLOTS {
                if self.tob.pendings[slot].is_some_and(|e| e.origin as usize == p && e.sn.is_none())
                {
                    self.tob_free(slot as u16);
                }
            }
        }
        self.tob.next_to_order = next;
        // Install (lines 7–12).
        self.tob.view_id = vid;
        self.tob.view = members;
        self.tob.leader = members.trailing_zeros() as u8;
        self.tob.forced_end = start;
        self.tob.next_sn = start;
        self.tob.order_sent = start;
        self.tob.acks = [0; SINKS];
        self.tob.order_end = self.tob.order_end.max(start);
        self.tob.known_end = self.tob.known_end.max(start);
        self.suspects &= !members;
        self.joiners &= !members;
        self.recovery = None;
        self.recovery_deadline = None;
        if joining {
            // Deliver from the new view on; forget what came before.
            for slot in 0..SLOTS {
                if self.tob.pendings[slot].is_some_and(|p| p.origin as usize != self.me) {
                    self.tob_free(slot as u16);
                }
            }
            self.tob.ring = [u16::MAX; SLOTS];
            self.tob.retained_from = start;
            self.tob.next_deliver = start;
            self.tob.known_end = start;
            self.tob.order_end = start;
            self.tob.counters_unknown = members & !bit(self.me);
            self.joining = false;
        }
        // Messages of origins outside the view will never be numbered.
        for slot in 0..SLOTS {
            if let Some(p) = self.tob.pendings[slot] {
                if p.sn.is_none() && !self.tob.is_member(p.origin as usize) {
                    self.tob_free(slot as u16);
                } else if let Some(pm) = self.tob.pendings[slot].as_mut() {
                    pm.in_union = false;
                    pm.claimed_by = 0;
                }
            }
        }
        for f in self.forward.iter_mut() {
            f.clear();
        }
        self.recount_ordered_bytes();
        self.counters.view_changes += 1;
        self.push_view_event();
        self.on_view_installed(now);
        // The new sequencer numbers what it holds; everyone acknowledges.
        for o in 0..self.peers.len().min(64) {
            self.tob_try_order(o, now);
        }
        self.register(GROUP_SINK, Feed::TobAck, now);
        self.register(GROUP_SINK, Feed::EndRecovery, now);
        self.tob.progress_at = now;
        self.tob_advance_known(now);
        self.tob_try_deliver();
    }

    fn push_view_event(&mut self) {
        let mut buf = [0u8; 2 * 64];
        let mut n = 0;
        let mut v = self.tob.view;
        while v != 0 {
            let p = v.trailing_zeros() as usize;
            v &= v - 1;
            buf[2 * n..2 * n + 2].copy_from_slice(&self.peers[p].id.0.to_be_bytes());
            n += 1;
        }
        let view_id = self.tob.view_id;
        self.inbox
            .push(EventMeta::ViewChanged { view_id }, &buf[..2 * n]);
    }

    /// A member says it was excluded (by a view this process may not have
    /// installed): leave it out of proposals until it joins again.
    pub(crate) fn on_leave(&mut self, now: Instant, from: usize) {
        if self.departed & bit(from) != 0 || self.tob.excluded {
            return;
        }
        self.departed |= bit(from);
        self.maybe_propose(now);
    }

    /// A process asks to join (or a member that restarted announces itself).
    pub(crate) fn on_join(&mut self, now: Instant, from: usize) {
        if self.tob.excluded || self.joining {
            return;
        }
        if self.tob.is_member(from) {
            // It restarted and lost its state: exclude it first, then it joins.
            self.tob_suspect(from, now);
            return;
        }
        self.joiners |= bit(from);
        self.departed &= !bit(from);
        self.maybe_propose(now);
    }

    /// The current view, told to a process outside it, made when pulled.
    pub(crate) fn pull_view_notice(&mut self, s: usize, w: &mut FrameWriter<'_>) -> Pulled {
        self.sinks[s].registered &= !Feed::ViewNotice.bit();
        if self.write_view(w, KIND_VIEW_INSTALLED, self.tob.view_id, self.tob.view) {
            Pulled::Done
        } else {
            self.sinks[s].registered |= Feed::ViewNotice.bit();
            Pulled::NoRoom
        }
    }

    /// Writes a `ViewChange` or `ViewInstalled` record; false when it does
    /// not fit.
    fn write_view(&self, w: &mut FrameWriter<'_>, kind: u8, vid: u32, members: u64) -> bool {
        let n = members.count_ones() as usize;
        let peers = &self.peers;
        w.push_with(kind, 4 + 2 * n, |b| {
            b[0..4].copy_from_slice(&vid.to_be_bytes());
            let mut v = members;
            let mut i = 0;
            while v != 0 {
                let p = v.trailing_zeros() as usize;
                v &= v - 1;
                b[4 + 2 * i..6 + 2 * i].copy_from_slice(&peers[p].id.0.to_be_bytes());
                i += 1;
            }
        })
        .is_ok()
    }

    /// The Join request of a process outside the view, made when pulled.
    pub(crate) fn pull_join(&mut self, s: usize, w: &mut FrameWriter<'_>) -> Pulled {
        self.sinks[s].registered &= !Feed::Join.bit();
        let r = RecordRepr::Join {
            incarnation: self.incarnation,
        };
        self.push_for_feed(s, Feed::Join, &r, w)
    }

    /// Failure detection and view-change retries, every `rto`.
    pub(crate) fn membership_tick(&mut self, now: Instant) {
        if self.joining {
            if self.recovery.is_none() {
                self.register(GROUP_SINK, Feed::Join, now);
            }
        } else if let Some(timeout) = self.fd_timeout {
            let mut v = self.tob.view & !bit(self.me);
            while v != 0 {
                let p = v.trailing_zeros() as usize;
                v &= v - 1;
                let heard = self.peers[p].last_heard.unwrap_or(self.view_since);
                if now.saturating_since(heard.max(self.view_since)) > timeout {
                    self.tob_suspect(p, now);
                }
            }
            // A suspicion is dropped once the peer is heard again: if no view
            // was installed without it, the view it is in goes on (a stuck
            // proposal is retried below).
            let mut v = self.suspects;
            while v != 0 {
                let p = v.trailing_zeros() as usize;
                v &= v - 1;
                if self.peers[p]
                    .last_heard
                    .is_some_and(|t| now.saturating_since(t) < timeout)
                {
                    self.suspects &= !bit(p);
                }
            }
        }
        if self.recovery.is_none()
            && !self.joining
            && (self.tob.view & (self.suspects | self.departed) != 0 || self.joiners != 0)
        {
            // A change that could not be proposed earlier (no majority then,
            // or another suspicion since dropped) is tried again.
            self.maybe_propose(now);
        }
        let Some(r) = self.recovery.as_ref() else {
            return;
        };
        // Retry only while the attempt can still be replaced safely: before
        // our END_RECOVERY (after it, others may have installed it and only
        // wait for us), or when one of its members is now suspected.
        let replaceable =
            r.ended & bit(self.me) == 0 || r.members & (self.suspects | self.departed) != 0;
        if replaceable && now.saturating_since(r.started) > self.tob.rto * 10 {
            // An attempt that does not complete (two coordinators proposed
            // the same view id, or a member of the proposal is gone): the
            // coordinator of the view we would propose now tries again with
            // a higher id.
            let proposal = (self.tob.view & !self.suspects & !self.departed) | self.joiners;
            let majority = self.view_policy == ViewPolicy::TrustDetector
                || (proposal & self.tob.view).count_ones() * 2 > self.tob.view.count_ones();
            if proposal.trailing_zeros() as usize == self.me && majority {
                let vid = self.next_vid();
                self.start_view_change(vid, proposal, now);
                return;
            }
        }
        let Some(r) = self.recovery.as_ref() else {
            return;
        };
        // Re-send what others may have missed.
        let (members, acked_me, acked, ended) = (r.members, r.acked_me, r.acked, r.ended);
        if acked_me & members != members {
            self.register(GROUP_SINK, Feed::Recover, now);
        } else {
            self.register(GROUP_SINK, Feed::EndRecovery, now);
        }
        let mut v = members & !bit(self.me);
        while v != 0 {
            let p = v.trailing_zeros() as usize;
            v &= v - 1;
            if acked & bit(p) != 0 {
                self.register(p + 1, Feed::AckRecover, now);
            } else {
                self.check_recover_complete(p, now);
            }
        }
        let _ = ended;
        // A member of the proposal that is now suspected: propose again.
        if members & self.suspects != 0 {
            self.maybe_propose(now);
        }
    }
}
