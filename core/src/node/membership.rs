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
//!   view (current view minus suspects, plus joiners) — proposes a view with
//!   a new id, naming the installed view it starts from (its *base*). Every
//!   process re-sends the proposal with its RECOVER, so a process that missed
//!   the coordinator still learns it. A higher id supersedes a lower one (a
//!   second crash during a view change starts a new attempt); the sequencer
//!   never changes on a suspicion alone, only when a view is installed
//!   (JGroups JGRP-1452).
//! * **Primary partition.** By default a proposal needs a majority of the
//!   current view, so the two sides of a partition cannot both go on
//!   ([`ViewPolicy::PrimaryPartition`]); [`ViewPolicy::TrustDetector`] follows
//!   the paper's perfect failure detector instead (any survivor goes on; the
//!   safety argument below needs the majorities, so there it rests on the
//!   detector being right).
//! * **RECOVER content.** Ordered entries are the contiguous range of numbers
//!   whose order the sender knows; every other message it holds is listed as
//!   unordered, and each entry says whether the sender holds its data — a
//!   claim frozen when the attempt starts. forceDeliver delivers the union in
//!   number order up to its end `K`, skipping numbers nobody claimed (and, to
//!   keep FIFO, the later messages of their origin), then the unordered
//!   messages by increasing id, numbered `K, K+1, …`. It decides from the
//!   claims, never from data that happens to arrive later, so every member
//!   that merged the same RECOVERs decides the same. Numbers a process knew
//!   beyond `K` are void; the new sequencer numbers those messages again.
//! * **Proposal ids are unique**: a counter above every id seen, times 256,
//!   plus the coordinator's index, so ACK_RECOVER and END_RECOVERY name one
//!   attempt. An attempt that does not complete is retried with a later id
//!   by the coordinator of the view it would propose now — not after its
//!   END_RECOVERY went out, unless a member of it is suspected (it may be
//!   about to complete). A coordinator that sees others change views without
//!   it — also when members of its own attempt left it for a later one that
//!   leaves it out, so that its own can no longer complete (seed 19003) —
//!   takes over with a later id.
//! * **Numbers beyond the contiguous prefix are forgotten** when a change
//!   starts: forceDeliver voids every number at or beyond its `K`.
//! * **Exclusion** is learnt only from an installed view, never from a mere
//!   proposal: from a decision that leaves this process out, from
//!   `ViewInstalled` (sent to a process that shows it missed a view), or when
//!   a view that counts on this process was installed and it cannot rebuild
//!   that view's decision (below); it then says `Leave` to that view's
//!   members. An excluded process answers proposals that count on it with
//!   `Leave`.
//! * **Joins** happen at a view boundary: a process outside the view sends
//!   `Join` until a view includes it; it merges the RECOVERs' metadata to
//!   learn where numbering continues, and delivers from the new view on.
//!   A member that restarted is first excluded, then joins.
//!
//! # Overlapping attempts: a view change is a consensus
//!
//! Fig. 3 assumes that every process of the new view completes the change.
//! With a detector that can be wrong (partitions, cut links), attempts
//! overlap: an attempt can be installed by some of its members while others,
//! having sent their END_RECOVERY for it, moved on to a later attempt and
//! installed that. Two forceDelivers then decided the same numbers from two
//! different unions. Soak seed 29534 did exactly this: one member installed
//! view 514, whose forceDeliver skipped a number whose data its union
//! lacked, after the two others had left 514 for 768, whose union held that
//! data and delivered it — a total order violation. Retry rules cannot fix
//! it (a member that never leaves an attempt it ended blocks for ever when
//! another member crashes; seed 19003 is that liveness side). The rule used
//! here is Paxos's, each installed view running its own instance whose
//! ballots are the attempts' ids:
//!
//! * **Accepting.** A member *accepts* an attempt once it acknowledged every
//!   member's RECOVER (it merged the attempt's whole union) and sent its
//!   END_RECOVERY. Nobody installs an attempt unless every member accepted
//!   it: installing needs every member's END, and a member's END follows
//!   every member's ACK_RECOVER to it. ACK_RECOVER and END_RECOVERY are only
//!   sent for the attempt under way, so a member that leaves an attempt
//!   without accepting it makes it impossible to install.
//! * **Values.** An attempt's decision — its *value* — is the view it
//!   installs (id and members) and forceDeliver's numbering. A member that
//!   leaves an attempt it accepted applies that numbering to its pendings
//!   (delivering nothing) and its later RECOVERs report it: the ballot (that
//!   attempt's id), the id of the view the value installs and its members.
//!   A member that accepted nothing reports its installed view (ballot = its
//!   id).
//! * **Deciding.** An attempt takes the value of the highest ballot its
//!   RECOVERs report, unchanged: the same view id and members, and the same
//!   numbering (in the numbers that ballot's lists cover only their
//!   numbering stands, a number they leave empty was skipped, and nothing is
//!   numbered after them; what else the union holds waits for the new
//!   sequencer). Members outside that view are excluded by it. Only when
//!   nothing can have been chosen does an attempt decide from its own union
//!   as in Fig. 3 and install its own members under its own id: no ballot
//!   above the installed view is reported, or the highest one decided from
//!   its own union and one of its members reports a lower ballot here (it
//!   left that attempt unaccepted). Lists of different values may disagree:
//!   the higher ballot wins whatever order RECOVERs arrive in, and a member
//!   leaving an attempt unaccepted forgets what it learnt only from lists
//!   of other values. A union decided from its own lists may then hold a
//!   message whose origin's earlier message lost its number: it loses its
//!   number too and is numbered again after `K`, in FIFO order (seed
//!   18998). RECOVER parts say what was frozen when the attempt started, so
//!   that every copy of a part says the same.
//! * **One instance at a time.** A process takes part only in attempts
//!   whose base is its installed view. A process told that a later view was
//!   installed (a proposal from that base, a `ViewInstalled`) installs it if
//!   it holds its value (it accepted the attempt that decides it), else, if
//!   that view counts on it, it is excluded and says `Leave`. A process that
//!   installed a view answers END_RECOVERY for the attempt that decided it,
//!   also while it is in a later view change, so members still in that
//!   attempt complete it.
//!
//! *Safety* (primary partition). Every attempt from a view `v` holds a
//! majority of `v`, so any two intersect. Say some process installed
//! attempt `c`'s value: every member of `c` accepted `c`. By induction on
//! ballots, every later attempt that anyone accepts has that value: its
//! RECOVERs include a member of `c`, which reports a ballot `h ≥ c` whose
//! value, by induction, is `c`'s; and the exception cannot apply, since
//! `h = c` has no member that left it unaccepted, and an `h > c` that
//! decided from its own union would have seen a report `≥ c`. So every
//! process that installs a successor of `v` installs the same view with the
//! same numbering; and since a process takes part only in its own view's
//! attempts, installed views form one chain. Total order: a process delivers
//! the decided numbering of each view of that chain, then, within a view,
//! numbers every member acknowledged — the same numbers with the same
//! messages everywhere. Uniform agreement: a message delivered anywhere is
//! either in a decided numbering, whose data every member of the deciding
//! attempt fetched before acknowledging, or acknowledged by every member of
//! its view, so listed with its data in every RECOVER of that view's
//! attempts; either way every process that installs the next view delivers
//! it.
//!
//! *Liveness* (primary partition, once the detector stops changing its mind
//! and a majority of the view is alive and connected): a member may leave
//! any attempt (what it accepted travels with it), so the coordinator's
//! latest attempt is never blocked by an earlier one; a coordinator whose
//! attempt its members abandoned takes over; the attempt then completes. An
//! adopted value can install a view with a crashed member, or one that
//! cannot follow it (which leaves); the next change removes them, and needs
//! a majority of that view.

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

/// A value of a view change — the decision of one attempt: the view it
/// installs (its id `label` and `members`) and its numbering, which a
/// process that accepted it holds in its pendings — and the ballot (the
/// attempt) at which this process accepted it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Value {
    pub(crate) ballot: u32,
    pub(crate) label: u32,
    pub(crate) members: u64,
}

/// The header of one RECOVER part.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RecoverPart<'a> {
    pub(crate) deliver_from: u64,
    pub(crate) order_end: u64,
    pub(crate) part: u8,
    pub(crate) parts: u8,
    pub(crate) first_sn: u64,
    pub(crate) n_ordered: u16,
    pub(crate) ballot: u32,
    pub(crate) label: u32,
    pub(crate) value_members: MemberList<'a>,
}

/// A view change under way.
pub(crate) struct Recovery<const SINKS: usize, const SLOTS: usize> {
    pub(crate) vid: u32,
    pub(crate) members: u64,
    /// The installed view this attempt starts from.
    pub(crate) base: u32,
    /// This process joins: it learns where numbering continues, nothing else.
    pub(crate) joining: bool,
    /// The frozen RECOVER of this process.
    pub(crate) deliver_from: u64,
    pub(crate) order_end: u64,
    /// Its ordered entries (`deliver_from..order_end`; origin `u8::MAX`
    /// where it knows the number is empty) and its unordered ones, frozen:
    /// every copy of a part says the same, whatever is merged meanwhile.
    pub(crate) ordered: heapless::Vec<(u8, u32), SLOTS>,
    pub(crate) unordered: heapless::Vec<(u8, u32), SLOTS>,
    pub(crate) parts: u8,
    pub(crate) next_part: u8,
    /// The value this process's RECOVER reports: the one it accepted last,
    /// else its installed view (ballot and label = the view's id).
    pub(crate) mine: Value,
    /// The value this process accepted in an earlier attempt from the same
    /// view, if any (its numbering is in the pendings).
    pub(crate) accepted: Option<Value>,
    /// The highest-ballot value over the RECOVERs merged (ours included),
    /// and the numbers `[best_from, best_end)` its lists cover.
    pub(crate) best: Value,
    pub(crate) best_from: u64,
    pub(crate) best_end: u64,
    /// The end of the numbers any merged RECOVER lists (K of Fig. 3).
    pub(crate) union_end: u64,
    /// Parts received from each member (bitmap of up to 256 parts), and how
    /// many it sends.
    pub(crate) got_parts: [[u64; 4]; SINKS],
    pub(crate) their_parts: [u8; SINKS],
    /// The ballot each member's RECOVER reports.
    pub(crate) their_ballot: [u32; SINKS],
    /// Members whose RECOVER reports no value: they join.
    pub(crate) joiners_here: u64,
    /// Members that acknowledged this process's RECOVER.
    pub(crate) acked_me: u64,
    /// Members this process acknowledged.
    pub(crate) acked: u64,
    /// Members whose END_RECOVERY arrived.
    pub(crate) ended: u64,
    /// When this attempt started.
    pub(crate) started: Instant,
}

impl<const SINKS: usize, const SLOTS: usize> Recovery<SINKS, SLOTS> {
    /// This process accepted the attempt: it acknowledged every member's
    /// RECOVER (so it merged the whole union) and sent END_RECOVERY. Only
    /// then can anyone install it (installing needs every member's END, and
    /// a member's END follows every member's ACK_RECOVER to it).
    fn accepted_here(&self, me: usize) -> bool {
        !self.joining && self.acked & self.members == self.members && self.ended & bit(me) != 0
    }

    /// Whether the decision follows a value accepted in an earlier attempt
    /// (some member reported one) rather than this attempt's own union.
    ///
    /// The highest ballot's value is followed (Paxos: if any value was
    /// chosen, it is that one), with one exception that keeps the view the
    /// coordinator proposed when nothing can have been chosen: the highest
    /// ballot decided from its own union (so nothing before it was chosen,
    /// or it would have adopted that) and one of its members reports a lower
    /// ballot here (it left that attempt without accepting it, so it can
    /// never be chosen either).
    fn adopts(&self, me: usize) -> bool {
        if self.best.ballot <= self.base {
            return false;
        }
        if self.best.label != self.best.ballot {
            return true;
        }
        // Joiners accept nothing and report no value: they do not count.
        let mut v = self.members & self.best.members & !self.joiners_here;
        while v != 0 {
            let q = v.trailing_zeros() as usize;
            v &= v - 1;
            let ballot = if q == me {
                Some(self.mine.ballot)
            } else {
                (q < SINKS && self.their_parts[q] > 0).then(|| self.their_ballot[q])
            };
            if ballot.is_some_and(|b| b < self.best.ballot) {
                return false;
            }
        }
        true
    }
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
        self.start_view_change(vid, self.tob.view_id, proposal, now);
    }

    /// The id of a new proposal: a counter above every id seen, in the
    /// high 24 bits, and the coordinator's index in the low 8, so that two
    /// coordinators never propose the same id and every ACK_RECOVER and
    /// END_RECOVERY names exactly one proposal.
    fn next_vid(&self) -> u32 {
        let seen = self
            .tob
            .view_id
            .max(self.tob.installed_via)
            .max(self.recovery.as_ref().map_or(0, |r| r.vid))
            .max(self.highest_vid_seen);
        (((seen >> 8) + 1) << 8) | (self.me as u32 & 0xff)
    }

    /// A proposal of view `vid` from installed view `base` arrived (from its
    /// coordinator or re-sent by a member).
    pub(crate) fn on_view_change(
        &mut self,
        now: Instant,
        from: usize,
        vid: u32,
        base: u32,
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
        if !self.joining && base != self.tob.view_id {
            // Attempts from different installed views never mix (each view
            // has its own sequence of attempts, see the module docs).
            if base < self.tob.view_id {
                if vid != self.tob.installed_via {
                    // Its sender missed the view we installed.
                    self.register(from + 1, Feed::ViewNotice, now);
                }
                return;
            }
            // A later base: its sender installed a view we did not. We
            // follow it if we can; if it counts on us and we cannot, we
            // are out.
            if !self.follow(base, now) {
                if set & bit(self.me) != 0 {
                    self.leave(from, base, now);
                }
                return;
            }
        }
        if vid <= self.tob.view_id && !(self.joining && self.tob.view_id == 0 && vid > 0) {
            return;
        }
        if set & bit(self.me) == 0 {
            // Only a proposal: it may never complete, so it excludes nobody
            // yet (an installed view does, see `on_view_installed_notice`).
            // But a member of our view is changing views without us while we
            // do not suspect anyone: if we coordinate the view we would
            // propose, take over with a later id (else it may wait forever
            // for a coordinator that sees no reason to act). The same when a
            // member of our own attempt left it for this one: ours can no
            // longer complete (seed 19003).
            let abandoned = self
                .recovery
                .as_ref()
                .is_none_or(|r| vid > r.vid && r.members & bit(from) != 0);
            if abandoned && !self.joining {
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
        self.start_view_change(vid, base, set, now);
    }

    /// A member of our view says a later view was installed without us.
    pub(crate) fn on_view_installed_notice(
        &mut self,
        now: Instant,
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
        if set & bit(self.me) != 0 {
            // A view with us, installed by others.
            if self.follow(vid, now) {
                return;
            }
            self.leave(from, vid, now);
            return;
        }
        self.tob.excluded = true;
        self.recovery = None;
        self.recovery_deadline = None;
        self.inbox.push(EventMeta::Excluded, &[]);
    }

    /// Installs view `vid`, which others installed already, if this process
    /// holds its decision: it accepted the attempt under way and that
    /// attempt decides `vid`, or it accepted `vid`'s value in an earlier
    /// attempt (its numbering is in the pendings). Anyone installing a view
    /// had every member's END, so every member accepted the attempt that
    /// installed it: a member that cannot follow was left behind by a later
    /// ballot that adopted the value without it.
    fn follow(&mut self, vid: u32, now: Instant) -> bool {
        let Some(r) = self.recovery.take() else {
            return false;
        };
        let label = if r.adopts(self.me) {
            r.best.label
        } else {
            r.vid
        };
        if r.accepted_here(self.me) && label == vid {
            let (label, members, start) = self.decide(&r);
            self.install(label, members, r.vid, start, false, now);
            return true;
        }
        if let Some(a) = r.accepted.filter(|a| a.label == vid) {
            // Our numbering is that value's, except numbers learnt since
            // from lists of other values.
            let end = r.order_end;
            for slot in 0..SLOTS {
                let stale = self.tob.pendings[slot]
                    .is_some_and(|p| p.sn.is_some_and(|sn| sn >= end) || p.sn_foreign);
                if stale {
                    self.tob_unnumber(slot as u16);
                }
            }
            self.install(a.label, a.members, a.ballot, end, false, now);
            return true;
        }
        self.recovery = Some(r);
        false
    }

    /// Out of view `vid`, which counts on us but whose decision we cannot
    /// rebuild: we are excluded, and say so to its members (`from` first).
    fn leave(&mut self, from: usize, vid: u32, now: Instant) {
        self.tob.left_view = Some(vid);
        self.register(from + 1, Feed::Leave, now);
        self.register(GROUP_SINK, Feed::Leave, now);
        self.tob.excluded = true;
        self.recovery = None;
        self.recovery_deadline = None;
        self.inbox.push(EventMeta::Excluded, &[]);
    }

    /// Freezes ordering and starts exchanging RECOVER (Fig. 3 line 2).
    pub(crate) fn start_view_change(&mut self, vid: u32, base: u32, members: u64, now: Instant) {
        let joining = self.joining;
        let previous = self.recovery.take();
        // What we accepted stays accepted. If we accepted the attempt we
        // leave, someone may install it: its decision becomes ours (applied
        // to the pendings now, as its installers apply it) and our RECOVER
        // reports it, so that a later decision extends it (module docs).
        let mut accepted = previous.as_ref().and_then(|r| r.accepted);
        if let Some(prev) = previous.as_ref() {
            if !joining && prev.base == base && prev.accepted_here(self.me) {
                let (label, members, start) = self.decide(prev);
                self.tob.order_end = start;
                accepted = Some(Value {
                    ballot: prev.vid,
                    label,
                    members,
                });
            } else if !joining {
                // Not accepted: numbers learnt only from lists of another
                // value are not ours to report; what we report is our own
                // list, extended by what same-value lists taught us.
                for slot in 0..SLOTS {
                    if self.tob.pendings[slot].is_some_and(|p| p.sn.is_some() && p.sn_foreign) {
                        self.tob_unnumber(slot as u16);
                    }
                }
                let mut end = prev.order_end.max(self.tob.retained_from);
                while self.tob.ring_slot(end).is_some() {
                    end += 1;
                }
                self.tob.order_end = end;
            }
            if prev.base != base {
                accepted = None;
            }
        }
        let mine = match accepted {
            Some(a) => a,
            None if joining => Value {
                ballot: 0,
                label: 0,
                members: 0,
            },
            None => Value {
                ballot: self.tob.view_id,
                label: self.tob.view_id,
                members: self.tob.view,
            },
        };
        // Each attempt collects its own union, and claims are frozen when
        // it starts: forceDeliver decides from claims (the same at every
        // member), never from data that happens to arrive later.
        for p in self.tob.pendings.iter_mut().flatten() {
            p.in_union = false;
            p.claimed_by = 0;
        }
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
            let me = bit(self.me);
            for slot in 0..SLOTS {
                let Some(p) = self.tob.pendings[slot].as_mut() else {
                    continue;
                };
                let in_range = p.sn.is_some_and(|sn| sn >= deliver_from && sn < order_end);
                if in_range {
                    p.in_union = true;
                    p.sn_ballot = mine.ballot;
                    if p.complete {
                        p.claimed_by = me;
                    }
                } else if p.complete && !p.delivered {
                    p.in_union = true;
                    p.claimed_by = me;
                    let _ = unordered.push((p.origin, p.counter));
                }
            }
        }
        let mut ordered = heapless::Vec::new();
        let mut order_end = order_end;
        for sn in deliver_from..order_end {
            let id = self
                .tob
                .ring_slot(sn)
                .and_then(|s| self.tob.pendings[s as usize])
                .map_or((u8::MAX, 0), |p| (p.origin, p.counter));
            if ordered.push(id).is_err() {
                order_end = sn; // cannot happen: the ring holds SLOTS numbers
                break;
            }
        }
        let total = ordered.len() + unordered.len();
        let per = self.recover_ids_per_part(mine.members.count_ones() as usize);
        let parts = total.div_ceil(per).clamp(1, 255) as u8;
        self.recovery = Some(Recovery {
            vid,
            members,
            base,
            joining,
            deliver_from,
            order_end,
            ordered,
            unordered,
            parts,
            next_part: 0,
            mine,
            accepted,
            best: mine,
            best_from: deliver_from,
            best_end: order_end,
            union_end: order_end,
            got_parts: [[0; 4]; SINKS],
            their_parts: [0; SINKS],
            their_ballot: [0; SINKS],
            joiners_here: if joining { bit(self.me) } else { 0 },
            acked_me: bit(self.me),
            acked: bit(self.me),
            ended: 0,
            started: now,
        });
        self.counters.view_changes_started += 1;
        self.register(GROUP_SINK, Feed::Recover, now);
        self.recovery_deadline = Some(now + self.tob.rto);
    }

    fn recover_ids_per_part(&self, n_value: usize) -> usize {
        let room = self.integrity.max_frame_len(self.mtu)
            - Header::LEN
            - wire::RECORD_HEADER_LEN
            - RECOVER_HEADER_LEN
            - 2 * n_value;
        // Leave room for the ViewChange record that leads the first part.
        ((room - 8 - 2 * 64 - wire::RECORD_HEADER_LEN) / ID_LEN).max(1)
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
        let (vid, base, members, part, mine) = (r.vid, r.base, r.members, r.next_part, r.mine);
        if part == 0 && !self.write_view(w, KIND_VIEW_CHANGE, vid, Some(base), members) {
            return Pulled::NoRoom;
        }
        let n_value = mine.members.count_ones() as usize;
        let per = self.recover_ids_per_part(n_value);
        let mut part = part;
        while let Some(r) = self.recovery.as_ref() {
            if part >= r.parts {
                break;
            }
            let n_ordered_total = r.ordered.len();
            let total = n_ordered_total + r.unordered.len();
            let first = part as usize * per;
            let count = per.min(total.saturating_sub(first));
            let len = RECOVER_HEADER_LEN + 2 * n_value + count * ID_LEN;
            if w.remaining() < wire::RECORD_HEADER_LEN + len {
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
            let (ordered, unordered) = (&r.ordered, &r.unordered);
            let me = self.me;
            let entry = |i: usize| -> IdEntry {
                let id = if i < n_ordered_total {
                    ordered.get(i)
                } else {
                    unordered.get(i - n_ordered_total)
                };
                match id.and_then(|&(o, c)| Some((peers.get(o as usize)?.id.0, o, c))) {
                    Some((origin, o, counter)) => IdEntry {
                        origin,
                        counter,
                        // The claim frozen when the attempt started.
                        flags: match tob
                            .slot_of(o, counter)
                            .and_then(|s| tob.pendings[s as usize])
                        {
                            Some(p) if p.claimed_by & bit(me) != 0 => ID_HAS_DATA,
                            _ => 0,
                        },
                    },
                    None => IdEntry {
                        origin: u16::MAX,
                        counter: 0,
                        flags: 0,
                    },
                }
            };
            let ok = w
                .push_with(KIND_RECOVER, len, |b| {
                    b[0..4].copy_from_slice(&vid.to_be_bytes());
                    b[4..12].copy_from_slice(&deliver_from.to_be_bytes());
                    b[12..20].copy_from_slice(&order_end.to_be_bytes());
                    b[20..24].copy_from_slice(&pending_total.to_be_bytes());
                    b[24] = part;
                    b[25] = parts;
                    b[26..34].copy_from_slice(&first_sn.to_be_bytes());
                    b[34..36].copy_from_slice(&(n_ordered as u16).to_be_bytes());
                    b[36..40].copy_from_slice(&mine.ballot.to_be_bytes());
                    b[40..44].copy_from_slice(&mine.label.to_be_bytes());
                    b[44] = n_value as u8;
                    let mut v = mine.members;
                    let mut at = RECOVER_HEADER_LEN;
                    while v != 0 {
                        let p = v.trailing_zeros() as usize;
                        v &= v - 1;
                        b[at..at + 2].copy_from_slice(&peers[p].id.0.to_be_bytes());
                        at += 2;
                    }
                    for k in 0..count {
                        IdList::write(&mut b[at..], k, entry(first + k));
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
    pub(crate) fn on_recover(
        &mut self,
        now: Instant,
        from: usize,
        vid: u32,
        h: RecoverPart<'_>,
        ids: IdList<'_>,
    ) {
        let mut value = 0u64;
        for m in h.value_members.iter() {
            if let Some(p) = self.peer_index(NodeId(m)) {
                value |= bit(p);
            }
        }
        let Some(r) = self.recovery.as_mut() else {
            if vid == self.tob.installed_via && self.tob.is_member(from) {
                // Installed already: the sender still waits for our END.
                self.register(from + 1, Feed::EndRecovery, now);
            } else if !self.tob.excluded && !self.joining {
                // The sender is in an attempt that is not ours: it missed
                // the view we installed (a notice about the view it is in
                // already is ignored).
                self.register(from + 1, Feed::ViewNotice, now);
            }
            return;
        };
        if vid != r.vid {
            if vid == self.tob.installed_via && self.tob.is_member(from) {
                // It still waits for our END of the view we installed.
                self.tob.end_owed |= bit(from);
                self.register(from + 1, Feed::EndRecovery, now);
            }
            return;
        }
        if r.members & bit(from) == 0 {
            return;
        }
        // The highest ballot's value decides; its lists cover
        // [best_from, best_end) (several members may report it).
        if h.ballot > r.best.ballot {
            r.best = Value {
                ballot: h.ballot,
                label: h.label,
                members: value,
            };
            r.best_from = h.deliver_from;
            r.best_end = h.order_end;
        } else if h.ballot == r.best.ballot {
            r.best_from = r.best_from.min(h.deliver_from);
            r.best_end = r.best_end.max(h.order_end);
        }
        r.union_end = r.union_end.max(h.order_end);
        r.their_parts[from] = h.parts;
        r.their_ballot[from] = h.ballot;
        if h.value_members.is_empty() {
            r.joiners_here |= bit(from);
        }
        let word = (h.part / 64) as usize;
        let mask = 1u64 << (h.part % 64);
        if r.got_parts[from][word] & mask != 0 {
            return; // a duplicate part: merged already
        }
        r.got_parts[from][word] |= mask;
        let mine_label = r.mine.label;
        for (i, e) in ids.iter().enumerate() {
            let Some(o) = self.peer_index(NodeId(e.origin)) else {
                continue;
            };
            let sn = (i < usize::from(h.n_ordered)).then_some(h.first_sn + i as u64);
            let has_data = e.flags & ID_HAS_DATA != 0;
            let list = (h.ballot, h.label != mine_label);
            self.merge_entry(o, e.counter, sn, list, has_data, from);
        }
        self.check_recover_complete(from, now);
    }

    /// Adds one entry of a RECOVER to this process's pendings and seqnos.
    /// Numbers from lists of different ballots may disagree (a value
    /// accepted in an abandoned attempt renumbers what followed its `K`):
    /// the higher ballot wins, whatever the order RECOVERs arrive in.
    /// `list` is the RECOVER's ballot and whether its value is another
    /// than ours.
    fn merge_entry(
        &mut self,
        o: usize,
        counter: u32,
        sn: Option<u64>,
        list: (u32, bool),
        has_data: bool,
        from: usize,
    ) {
        let joining = self.recovery.as_ref().is_some_and(|r| r.joining);
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
            // Every claim counts, also for data held here already:
            // forceDeliver decides from the claims of the union.
            if has_data {
                p.claimed_by |= bit(from);
            }
        }
        let Some(sn) = sn else { return };
        let (ballot, foreign) = list;
        if !self.tob.ring_has_room(sn) {
            return;
        }
        let Some(p) = self.tob.pendings[slot as usize] else {
            return;
        };
        match p.sn {
            Some(s) if s == sn => {
                if let Some(pm) = self.tob.pendings[slot as usize].as_mut() {
                    pm.sn_ballot = pm.sn_ballot.max(ballot);
                    pm.sn_foreign &= foreign;
                }
                return;
            }
            Some(s) => {
                if p.sn_ballot >= ballot || s < self.tob.next_deliver {
                    return; // its number stands
                }
                self.tob_unnumber(slot);
            }
            None => {}
        }
        if let Some(occupant) = self.tob.ring_slot(sn) {
            if self.tob.pendings[occupant as usize].is_none_or(|q| q.sn_ballot >= ballot) {
                return;
            }
            self.tob_unnumber(occupant);
        }
        self.tob_set_order(slot, sn);
        if let Some(pm) = self.tob.pendings[slot as usize].as_mut() {
            pm.sn_ballot = ballot;
            pm.sn_foreign = foreign;
        }
    }

    /// Forgets the number of pending `slot` (another decision numbers it).
    fn tob_unnumber(&mut self, slot: u16) {
        let Some(p) = self.tob.pendings[slot as usize].as_mut() else {
            return;
        };
        if let Some(sn) = p.sn.take() {
            let i = (sn % SLOTS as u64) as usize;
            if self.tob.ring[i] == slot {
                self.tob.ring[i] = u16::MAX;
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
        let owed = s > 0 && self.tob.end_owed & bit(s - 1) != 0;
        let r = match (&self.recovery, feed) {
            (Some(r), Feed::AckRecover) if s > 0 && r.acked & bit(s - 1) != 0 => {
                RecordRepr::AckRecover { vid: r.vid }
            }
            (Some(_), Feed::EndRecovery) if owed => {
                let r = RecordRepr::EndRecovery {
                    vid: self.tob.installed_via,
                };
                let pulled = self.push_for_feed(s, feed, &r, w);
                if matches!(pulled, Pulled::Done) {
                    self.tob.end_owed &= !bit(s - 1);
                }
                return pulled;
            }
            (Some(r), Feed::EndRecovery) if r.ended & bit(self.me) != 0 => {
                RecordRepr::EndRecovery { vid: r.vid }
            }
            (None, Feed::EndRecovery) => RecordRepr::EndRecovery {
                vid: self.tob.installed_via,
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
            if vid == self.tob.installed_via && self.tob.is_member(from) {
                // Installed already; the sender may still wait for our END.
                self.register(from + 1, Feed::EndRecovery, now);
            } else if !self.tob.excluded && !self.joining {
                // It ended an attempt that is not ours: it may have missed
                // the view we installed (a notice of a view it is in
                // already is ignored).
                self.register(from + 1, Feed::ViewNotice, now);
            }
            return;
        };
        if vid != r.vid {
            if vid == self.tob.installed_via && self.tob.is_member(from) {
                // It still waits for our END of the view we installed.
                self.tob.end_owed |= bit(from);
                self.register(from + 1, Feed::EndRecovery, now);
            }
            return;
        }
        if r.members & bit(from) == 0 {
            return;
        }
        r.ended |= bit(from);
        self.try_install(now);
    }

    fn try_install(&mut self, now: Instant) {
        let Some(r) = self.recovery.take() else {
            return;
        };
        if r.ended & r.members != r.members {
            self.recovery = Some(r);
            return;
        }
        let (label, members, start) = self.decide(&r);
        self.install(label, members, r.vid, start, r.joining, now);
    }

    /// The decision of attempt `r` — forceDeliver's numbering (Fig. 3 lines
    /// 19–27) — applied to the pendings, without delivering: returns the
    /// view it installs (id, members) and the first number after it.
    ///
    /// When a member reported a value accepted in an earlier attempt, the
    /// highest-ballot one is the decision, unchanged: within the numbers its
    /// lists cover only its numbering stands (a number it left empty was
    /// skipped), nothing is numbered beyond them, and it installs that
    /// value's view. Otherwise the attempt decides from its own union.
    fn decide(&mut self, r: &Recovery<SINKS, SLOTS>) -> (u32, u64, u64) {
        let adopts = r.adopts(self.me);
        let k = if adopts { r.best_end } else { r.union_end };
        // Numbers at or beyond K are void: they are numbered again.
        for slot in 0..SLOTS {
            if self.tob.pendings[slot].is_some_and(|p| p.sn.is_some_and(|sn| sn >= k)) {
                self.tob_unnumber(slot as u16);
            }
        }
        if adopts {
            let from = r.best_from.max(self.tob.next_deliver);
            for slot in 0..SLOTS {
                let stale = self.tob.pendings[slot].is_some_and(|p| {
                    p.sn.is_some_and(|sn| sn >= from) && p.sn_ballot != r.best.ballot
                });
                if stale {
                    self.tob_unnumber(slot as u16);
                }
            }
            for p in self.tob.pendings.iter_mut().flatten() {
                p.sn_foreign = false;
            }
            return (r.best.label, r.best.members, k.max(self.tob.retained_from));
        }
        // Lines 19–24 deliver numbered messages in order, skipping those
        // nobody holds. A skipped message's origin is gone (a live origin
        // holds all its messages), and so that the skip does not break its
        // FIFO order, its later messages are skipped too. Every member sees
        // the same union and the same claims, so all skip the same.
        //
        // When the union mixes lists of different values (an abandoned
        // attempt's value renumbered what followed its `K`), the higher
        // ballot won every conflict, which can leave a message numbered
        // while an earlier one of its origin lost its number: that message
        // and the origin's later ones lose their numbers too, and are
        // numbered again below, in FIFO order, with the unordered ones.
        let mut broken = 0u64;
        if !r.joining {
            let mut expect = self.tob.next_to_deliver;
            let mut gapped = 0u64;
            let mut sn = self.tob.next_deliver;
            while sn < k {
                if let Some(slot) = self.tob.ring_slot(sn) {
                    if let Some(p) = self.tob.pendings[slot as usize] {
                        let o = p.origin as usize;
                        if p.claimed_by == 0 {
                            broken |= bit(o);
                        }
                        let known = self.tob.counters_unknown & bit(o) == 0;
                        if broken & bit(o) != 0 {
                            self.tob.ring[(sn % SLOTS as u64) as usize] = u16::MAX;
                            self.tob_free(slot);
                        } else if gapped & bit(o) != 0 || (known && p.counter != expect[o]) {
                            gapped |= bit(o);
                            self.tob_unnumber(slot);
                        } else {
                            expect[o] = p.counter.wrapping_add(1);
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
                if p.sn.is_none() && p.in_union && !p.delivered && p.claimed_by != 0 {
                    let _ =
                        later.push((self.peers[p.origin as usize].id.0, p.counter, slot as u16));
                }
            }
        }
        later.sort_unstable_by_key(|&(o, c, _)| (o, c));
        // Per origin, the counter that follows everything numbered below K:
        // the same at every member, since all merged the same RECOVERs.
        let mut next = self.next_counters();
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
        for p in self.tob.pendings.iter_mut().flatten() {
            p.sn_foreign = false;
        }
        (r.vid, r.members, sn)
    }

    /// Per origin, the counter after every message numbered or delivered.
    fn next_counters(&self) -> [u32; SINKS] {
        let mut next = self.tob.next_to_deliver;
        for p in self.tob.pendings.iter().flatten() {
            if p.sn.is_some() {
                let o = p.origin as usize;
                if p.counter.wrapping_add(1).wrapping_sub(next[o]) < 0x8000_0000 {
                    next[o] = p.counter.wrapping_add(1);
                }
            }
        }
        next
    }

    /// Installs view `vid` with `members` after a decision that ends at
    /// `start` (Fig. 3 lines 6–12): forceDeliver delivers below `start`,
    /// the first member is the new sequencer and numbering continues at
    /// `start`. `via` is the attempt that decided it.
    fn install(
        &mut self,
        vid: u32,
        members: u64,
        via: u32,
        start: u64,
        joining: bool,
        now: Instant,
    ) {
        self.recovery = None;
        self.recovery_deadline = None;
        // Members of the attempt may still wait for our END, also when its
        // decision leaves us out.
        self.tob.installed_via = via;
        self.tob.end_owed = 0;
        self.register(GROUP_SINK, Feed::EndRecovery, now);
        if members & bit(self.me) == 0 {
            if joining {
                // The decision is an earlier attempt's view, without us: we
                // still join, at a later view.
                for slot in 0..SLOTS {
                    if self.tob.pendings[slot].is_some_and(|p| p.origin as usize != self.me) {
                        self.tob_free(slot as u16);
                    }
                }
                self.tob.ring = [u16::MAX; SLOTS];
                return;
            }
            self.tob.excluded = true;
            self.inbox.push(EventMeta::Excluded, &[]);
            return;
        }
        let mut next = self.next_counters();
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
        // Everything below `start` is decided and nothing beyond it is
        // numbered (an adopted value may end below what this process knew
        // in the old view: that knowledge is void).
        self.tob.order_end = start;
        self.tob.known_end = start;
        self.suspects &= !members;
        self.joiners &= !members;
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
            // Deliveries are numbered per application message from the
            // group's start: a member's ACK tells where (`tob_on_ack`).
            self.tob.app_unknown = true;
            self.tob.batch_pos = (u64::MAX, 0, 0);
            self.joining = false;
        }
        // Numbers at or beyond the decision's end were void: count again.
        self.tob.app_mark = (u64::MAX, 0);
        // Messages of origins outside the view will never be numbered.
        for slot in 0..SLOTS {
            if let Some(p) = self.tob.pendings[slot] {
                if p.sn.is_none() && !self.tob.is_member(p.origin as usize) {
                    self.tob_free(slot as u16);
                } else if let Some(pm) = self.tob.pendings[slot].as_mut() {
                    pm.in_union = false;
                    pm.claimed_by = 0;
                    pm.sn_foreign = false;
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
        if self.write_view(
            w,
            KIND_VIEW_INSTALLED,
            self.tob.view_id,
            None,
            self.tob.view,
        ) {
            Pulled::Done
        } else {
            self.sinks[s].registered |= Feed::ViewNotice.bit();
            Pulled::NoRoom
        }
    }

    /// Writes a `ViewChange` or `ViewInstalled` record; false when it does
    /// not fit.
    fn write_view(
        &self,
        w: &mut FrameWriter<'_>,
        kind: u8,
        vid: u32,
        base: Option<u32>,
        members: u64,
    ) -> bool {
        let n = members.count_ones() as usize;
        let peers = &self.peers;
        let at = if base.is_some() { 8 } else { 4 };
        w.push_with(kind, at + 2 * n, |b| {
            b[0..4].copy_from_slice(&vid.to_be_bytes());
            if let Some(base) = base {
                b[4..8].copy_from_slice(&base.to_be_bytes());
            }
            let mut v = members;
            let mut i = 0;
            while v != 0 {
                let p = v.trailing_zeros() as usize;
                v &= v - 1;
                b[at + 2 * i..at + 2 + 2 * i].copy_from_slice(&peers[p].id.0.to_be_bytes());
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
                self.start_view_change(vid, self.tob.view_id, proposal, now);
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
