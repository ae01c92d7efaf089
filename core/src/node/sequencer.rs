//! Uniform total order broadcast: the ordering subprotocol (FastCast §3.3, Fig. 2).
//!
//! Names follow Fig. 2: `pendings` (messages held until delivered),
//! `seqnos` (the sequence number of each id), `acks`, `snToDeliver`
//! (`next_deliver`), `sn` (the sequencer's next number). Every process sends
//! its DATA to all (the cluster group: one IP multicast or a unicast fan-out,
//! the host decides); the sequencer — the first process of the view — assigns
//! numbers and sends ACK(id, sn) to all (`TobOrder`, many ids per record);
//! every other process acknowledges; a process delivers `sn` once it has
//! delivered `sn − 1` and every member of the view holds `sn`.
//!
//! Decisions where the paper leaves room:
//! * **Cumulative acknowledgements.** Instead of re-broadcasting every
//!   ACK(id, sn) (line 24), a process broadcasts `TobAck(cum)`: it holds data
//!   *and* order of every number below `cum`. `acks[id][p] = 1` becomes
//!   `cum[p] > sn`, so the work per message does not grow with N, and the
//!   record is generated when the sink pulls it, from the freshest `cum`.
//! * **Ids are `(origin, counter)`**, not `hash(p_i, m)`: unique by
//!   construction, and the sequencer orders each origin's messages in counter
//!   order, so delivery is also per-sender FIFO.
//! * **Loss recovery.** DATA the sequencer never got is re-sent by its origin
//!   on a timeout (line 34–37); a process missing order or data of numbers it
//!   knows exist asks the sequencer for the range (`TobNack`), which answers
//!   with order and data for at most [`NACK_SPAN`] numbers — ranges, not one
//!   request per gap, and a bounded answer (Aeron #1958, Corosync #622).
//! * **Numbering the sequencer's own broadcasts.** The sequencer numbers its
//!   own message when the last slice of its DATA leaves (`build_frame` calls
//!   `tob_try_order` after the datagram took it; the ORDER rides in that same
//!   datagram), not when `broadcast` accepts it. Fig. 2 has the sequencer
//!   receive its own DATA like everyone (line 13), which is the same moment.
//!   Numbered at acceptance, a message still waiting behind the sequencer's
//!   token bucket and its own queue (up to its byte budget: 15 ms at N = 8 on
//!   942 Mb/s links) holds back every later number, every origin's: the
//!   group delivered in bursts, downlinks idled between them, and all
//!   origins sat at their byte budgets with empty sinks (FastCast throughput
//!   at N = 8: 94.0 % of the optimum before, 97.4 % after; see
//!   docs/BENCHMARKS.md). An own message whose DATA could not be queued is
//!   numbered at once, as before.
//! * **Flow control.** An origin has at most `window` undelivered messages
//!   and at most its share of `order_window_bytes` (the view's members
//!   split it evenly, so a view change can always hold the union of
//!   pendings); `broadcast` returns `Full` beyond that (backpressure). A slow
//!   member holds everybody back through its acknowledgements until the
//!   failure detector excludes it; `Counters::tob_stalls` counts the stalled
//!   rounds. Under full load the budget is not what limits throughput: it
//!   sets the delivery latency (the origin's own queue, budget / rate by
//!   Little's law) while sinks stay busy. Control records (ORDER, ACK,
//!   NACK) ride the same rate-limited cluster sink as DATA, in classes
//!   served before it, so they wait for at most one datagram's tokens; they
//!   are deliberately not exempt from the token bucket: the allocation is
//!   what a process may put on the others' downlinks, which FastCast's
//!   max-min shares fill exactly, and traffic beside the bucket would push
//!   every downlink past its line rate (the bucket even runs a little below
//!   the allocation so that those queues drain; see `bandwidth`). They cost under 1 % of it (ORDER ids
//!   share the sequencer's data datagrams; one 23-byte ACK per datagram).
//! * **Retention.** A delivered message is freed once every member of the
//!   view acknowledged it; messages delivered by a view change's
//!   `forceDeliver` are acknowledged only in the next view, and until then
//!   they stay available to a later recovery (see `membership`).
//! * **Batching (§3.5: "under contention, batch small messages into
//!   datagrams of at least a configurable size; without contention send at
//!   once").** Contention here means: this process's latest total-order
//!   message still waits in the cluster sink unsent (or a batch is being
//!   gathered). Then `broadcast` appends the payload to a batch in the node
//!   (`count u16 | (len u16 | bytes)*`, at most `Config::tob_batch` bytes
//!   and never more than one datagram carries); the batch becomes *one*
//!   pending message of kind `Batch` — one pool entry, one id `(origin,
//!   counter)`, one number, one ORDER entry, one acknowledgement position —
//!   at the next `poll_transmit` (or timer tick), when it is full, or before
//!   a message that cannot join it (per-sender FIFO). Without contention a
//!   broadcast is a message of its own, sent at once. The protocol —
//!   ordering, acknowledgements, NACK repair, RECOVER, Fetch, forceDeliver —
//!   sees a batch as one opaque message, so a view change treats it
//!   atomically by construction (all of it is delivered or none), and
//!   nothing of the view change changed for it. Only delivery opens it:
//!   one [`Event::Delivered`] per application message.
//! * **Numbers the application sees.** `Delivered::sn` counts application
//!   messages (`app_next`): consecutive (0, 1, 2, …) and the same at every
//!   process, because every process delivers the same sequence of ordering
//!   units and counts each the same way (a batch its count, a bandwidth
//!   request none, a number forceDeliver skipped none). The protocol's own
//!   numbers (`sn` in this module, `TobStatus`) count ordering units. A
//!   process that joins has not seen the units before its first view, so it
//!   learns its count from the members: every `TobAck` carries `app`, the
//!   application messages below its `cum`, and the joiner delivers nothing
//!   until an ACK with `cum` between its delivery point and its own `cum`
//!   lets it subtract what it holds in between (its own ACKs say
//!   `APP_UNKNOWN`, and a member answers them, so a burst followed by
//!   silence does not leave it waiting). A joiner whose whole view failed
//!   before any member's ACK reached it cannot number deliveries; under
//!   the default primary-partition policy such a view cannot go on anyway. `MsgId::counter` counts
//!   application messages of the sender (a bandwidth request's id keeps the
//!   unit's counter). Rejected alternative: numbering the messages of a
//!   batch with a range of protocol numbers (sn and counter ranges in ORDER,
//!   RECOVER and forceDeliver): it would have changed every number
//!   computation of the soaked view change.
//! * **Window with batches.** `window` counts ordering units (a batch is
//!   one); the per-origin byte budget counts staged bytes as soon as they
//!   are staged, so a batch never takes more than a direct broadcast could.

use super::*;
use crate::wire::order::{IdEntry, IdList, ID_LEN, TOB_ORDER_HEADER_LEN};

/// Largest range one `TobNack` asks for and one answer repairs.
pub const NACK_SPAN: u64 = 64;
/// Messages of one origin that a process tracks at once (ids beyond are
/// dropped and re-sent by their origin later).
pub const PER_ORIGIN: usize = 128;
/// Most members a total-order group has (views are 64-bit member sets).
pub const MAX_MEMBERS: usize = 64;
const NONE: u16 = u16::MAX;

/// What a total-order payload is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub(crate) enum TobKind {
    App = 0,
    Incr = 1,
    Decr = 2,
    /// Several application messages of one origin, ordered as one unit:
    /// `count u16 | (len u16 | bytes)*` (see the module docs).
    Batch = 3,
}

impl TobKind {
    pub(crate) fn from_u8(k: u8) -> Option<Self> {
        match k {
            0 => Some(TobKind::App),
            1 => Some(TobKind::Incr),
            2 => Some(TobKind::Decr),
            3 => Some(TobKind::Batch),
            _ => None,
        }
    }
}

/// An entry of `pendings`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pending {
    pub(crate) origin: u8,
    pub(crate) counter: u32,
    pub(crate) kind: TobKind,
    pub(crate) total_len: u32,
    /// Storage, once the first slice arrived.
    pub(crate) handle: Option<Handle>,
    /// Bytes received so far (slices are merged; see `ranges`).
    pub(crate) ranges: crate::reassembly::RangeSet,
    pub(crate) complete: bool,
    /// `seqnos[id]`.
    pub(crate) sn: Option<u64>,
    /// Delivered to the application (kept until acknowledged by all).
    pub(crate) delivered: bool,
    /// An `Item::Broadcast` for it waits in the cluster sink.
    pub(crate) queued: bool,
    /// Bytes of it already sent in the current transmission.
    pub(crate) sent: u32,
    pub(crate) cursor: Cursor,
    /// Members (bit = peer index) that said in a RECOVER they hold its data.
    pub(crate) claimed_by: u64,
    /// Listed in a RECOVER of the view change under way.
    pub(crate) in_union: bool,
    /// The ballot of the RECOVER list its number came from (the highest
    /// wins; see `membership`).
    pub(crate) sn_ballot: u32,
    /// Its number came only from RECOVER lists of a value other than this
    /// process's own (forgotten if the attempt is left unaccepted).
    pub(crate) sn_foreign: bool,
    /// Stored from the sending half of the pool (an own broadcast).
    pub(crate) tx: bool,
    /// When its last transmission (as origin) ended.
    pub(crate) sent_at: Instant,
}

impl Pending {
    /// An entry that knows only its id (and kind and length when given):
    /// its storage comes with its first data.
    pub(crate) fn placeholder(origin: u8, counter: u32, kind: TobKind, total_len: u32) -> Self {
        Pending {
            origin,
            counter,
            kind,
            total_len,
            handle: None,
            ranges: crate::reassembly::RangeSet::default(),
            complete: false,
            sn: None,
            delivered: false,
            queued: false,
            sent: 0,
            cursor: Cursor::default(),
            claimed_by: 0,
            in_union: false,
            sn_ballot: 0,
            sn_foreign: false,
            tx: false,
            sent_at: Instant::MAX,
        }
    }
}

/// State of the total order broadcast.
pub(crate) struct Tob<const SINKS: usize, const SLOTS: usize> {
    pub(crate) view_id: u32,
    /// Members of the view, by peer index.
    pub(crate) view: u64,
    /// Peer index of the sequencer (first process of the view).
    pub(crate) leader: u8,
    pub(crate) pendings: [Option<Pending>; SLOTS],
    pub(crate) free: heapless::Vec<u16, SLOTS>,
    /// `(origin, counter % PER_ORIGIN)` → slot.
    pub(crate) by_origin: [[u16; PER_ORIGIN]; SINKS],
    /// `sn % SLOTS` → slot: the order known for numbers in
    /// `[retained_from, retained_from + SLOTS)`.
    pub(crate) ring: [u16; SLOTS],
    /// Lowest number still held (delivered or not).
    pub(crate) retained_from: u64,
    /// snToDeliver.
    pub(crate) next_deliver: u64,
    /// Order and data of every number below are held: this process's ack.
    pub(crate) known_end: u64,
    /// Order of every number below is known (contiguously from `retained_from`).
    pub(crate) order_end: u64,
    /// Numbers below may be delivered without acknowledgements (forceDeliver).
    pub(crate) forced_end: u64,
    /// Sequencer: next number to assign (`sn`).
    pub(crate) next_sn: u64,
    /// Sequencer: numbers below were sent in `TobOrder` records.
    pub(crate) order_sent: u64,
    /// Cumulative acknowledgement of each member.
    pub(crate) acks: [u64; SINKS],
    /// Next counter of each origin to be given a number.
    pub(crate) next_to_order: [u32; SINKS],
    /// Next counter of each origin to be delivered (duplicates below it are dropped).
    pub(crate) next_to_deliver: [u32; SINKS],
    /// This process's next counter.
    pub(crate) my_counter: u32,
    /// Origins whose next counter this process does not know yet (it just
    /// joined): learnt from their first delivery.
    pub(crate) counters_unknown: u64,
    /// This process's undelivered broadcasts.
    pub(crate) outstanding: usize,
    /// Their bytes.
    pub(crate) outstanding_bytes: usize,
    pub(crate) window: usize,
    /// Sequencer repairs owed to each member: `[from, to)` and the byte
    /// offset reached in the message at `from`.
    pub(crate) repair: [(u64, u64, u32); SINKS],
    /// When `known_end` last moved, to tell a stall.
    pub(crate) progress_at: Instant,
    pub(crate) rto: Duration,
    pub(crate) next_tick: Option<Instant>,
    /// Sequencer: bytes of numbered messages not yet stable (its window).
    pub(crate) ordered_bytes: usize,
    /// When this process last answered a waiting process's ACK.
    pub(crate) last_ack_answer: Instant,
    /// Smoothed order RTT and its variation, µs.
    pub(crate) srtt: u64,
    pub(crate) rttvar: u64,
    /// Excluded from the view: this process must rejoin.
    pub(crate) excluded: bool,
    /// The view change attempt through which the current view was installed
    /// (its END_RECOVERY is answered to members that still wait for it).
    pub(crate) installed_via: u32,
    /// Members that wait for that END while this process is in a later
    /// view change (answered on their own sinks).
    pub(crate) end_owed: u64,
    /// A view that counts on this excluded process (it could not follow it):
    /// its members' acknowledgements are answered with `Leave`.
    pub(crate) left_view: Option<u32>,
    /// Delivery stopped because the inbox was full: `poll_event` resumes it
    /// (and only then, so that an event pop costs no delivery scan).
    pub(crate) inbox_blocked: bool,
    /// The `sn` of the next `Delivered` event: application messages
    /// delivered so far (a batch counts its messages).
    pub(crate) app_next: u64,
    /// This process joined and does not know `app_next` yet: it delivers
    /// nothing until a member's ACK tells it.
    pub(crate) app_unknown: bool,
    /// The ACK's `app`, cached: (number, application messages below it).
    pub(crate) app_mark: (u64, u64),
    /// Next counter of this process's application messages (`MsgId`).
    pub(crate) app_counter: u32,
    /// Delivery stopped inside the batch numbered `.0`: byte offset of its
    /// next message and messages already delivered.
    pub(crate) batch_pos: (u64, u32, u16),
}

impl<const SINKS: usize, const SLOTS: usize> Tob<SINKS, SLOTS> {
    pub(crate) fn new(view: u64, window: usize, rto: Duration, now: Instant) -> Self {
        let mut free = heapless::Vec::new();
        for i in (0..SLOTS).rev() {
            let _ = free.push(i as u16);
        }
        Tob {
            view_id: 0,
            view,
            leader: view.trailing_zeros() as u8,
            pendings: [None; SLOTS],
            free,
            by_origin: [[NONE; PER_ORIGIN]; SINKS],
            ring: [NONE; SLOTS],
            retained_from: 0,
            next_deliver: 0,
            known_end: 0,
            order_end: 0,
            forced_end: 0,
            next_sn: 0,
            order_sent: 0,
            acks: [0; SINKS],
            next_to_order: [0; SINKS],
            next_to_deliver: [0; SINKS],
            my_counter: 0,
            counters_unknown: 0,
            outstanding: 0,
            outstanding_bytes: 0,
            window: window.clamp(1, PER_ORIGIN),
            repair: [(0, 0, 0); SINKS],
            progress_at: now,
            rto,
            next_tick: Some(now + rto),
            ordered_bytes: 0,
            last_ack_answer: Instant::ZERO,
            srtt: 0,
            rttvar: 0,
            excluded: false,
            installed_via: 0,
            end_owed: 0,
            left_view: None,
            inbox_blocked: false,
            app_next: 0,
            app_unknown: false,
            app_mark: (u64::MAX, 0),
            app_counter: 0,
            batch_pos: (u64::MAX, 0, 0),
        }
    }

    pub(crate) fn slot_of(&self, origin: u8, counter: u32) -> Option<u16> {
        let s = *self
            .by_origin
            .get(origin as usize)?
            .get(counter as usize % PER_ORIGIN)?;
        let p = self.pendings.get(s as usize)?.as_ref()?;
        (p.origin == origin && p.counter == counter).then_some(s)
    }

    pub(crate) fn ring_slot(&self, sn: u64) -> Option<u16> {
        if sn < self.retained_from || sn >= self.retained_from + SLOTS as u64 {
            return None;
        }
        let s = self.ring[(sn % SLOTS as u64) as usize];
        let p = self.pendings.get(s as usize)?.as_ref()?;
        (p.sn == Some(sn)).then_some(s)
    }

    /// A number may enter the ring without colliding with a retained one.
    pub(crate) fn ring_has_room(&self, sn: u64) -> bool {
        sn >= self.retained_from && sn < self.retained_from + SLOTS as u64
    }

    pub(crate) fn is_member(&self, p: usize) -> bool {
        p < 64 && self.view & (1u64 << p) != 0
    }

    /// Smallest acknowledgement over the view's members.
    pub(crate) fn min_ack(&self, me: usize) -> u64 {
        let mut m = u64::MAX;
        let mut v = self.view;
        while v != 0 {
            let p = v.trailing_zeros() as usize;
            v &= v - 1;
            let a = if p == me {
                self.known_end
            } else {
                self.acks[p]
            };
            m = m.min(a);
        }
        m
    }
}

/// A snapshot of the total order's progress, for hosts and tests.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TobStatus {
    /// The view's id.
    pub view_id: u32,
    /// The sequencer.
    pub sequencer: NodeId,
    /// snToDeliver.
    pub next_deliver: u64,
    /// This process's acknowledgement (order and data held below it).
    pub known_end: u64,
    /// Order known below it.
    pub order_end: u64,
    /// Lowest number still held.
    pub retained_from: u64,
    /// Sequencer's next number (meaningful at the sequencer).
    pub next_sn: u64,
    /// Smallest acknowledgement over the view.
    pub min_ack: u64,
    /// This process's undelivered broadcasts.
    pub outstanding: usize,
    /// Entries of `pendings` in use.
    pub pendings: usize,
    /// A view change is under way.
    pub recovering: bool,
}

/// A message id as the application sees it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MsgId {
    /// Who broadcast it.
    pub sender: NodeId,
    /// The sender's counter of its broadcasts (0, 1, 2, … per application
    /// message, also when messages travel in a batch).
    pub counter: u32,
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
    /// Uniform total order broadcast (`utoBroadcast`): `payload` will be
    /// delivered by every correct member, in the same order everywhere, as
    /// [`Event::Delivered`]. Errors change nothing: [`Error::Full`] when this
    /// process already has `window` undelivered broadcasts or storage is full
    /// (retry after deliveries), [`Error::Oversized`], [`Error::NotMember`]
    /// when this process was excluded from the view and has not rejoined.
    ///
    /// Under contention (this process's previous message still waits
    /// unsent) a small payload joins a batch that leaves at the next
    /// [`Node::poll_transmit`] and is ordered as one unit
    /// ([`Config::tob_batch`]); it is still delivered as an event of its own.
    pub fn broadcast(&mut self, now: Instant, payload: &[u8]) -> Result<MsgId, Error> {
        self.now = self.now.max(now);
        if self.tob_batching(payload.len()) {
            self.tob_stage_message(now, payload)?;
        } else {
            self.tob_broadcast(now, payload, TobKind::App)?;
        }
        let counter = self.tob.app_counter;
        self.tob.app_counter = counter.wrapping_add(1);
        Ok(MsgId {
            sender: self.id,
            counter,
        })
    }

    /// Whether a broadcast of `len` bytes joins the batch: batching is on,
    /// the message is small, and there is contention — a batch is being
    /// gathered, or this process's latest message still waits in the sink
    /// unsent (FastCast §3.5: "without contention send at once").
    fn tob_batching(&self, len: usize) -> bool {
        if self.tob_batch == 0 || len + 2 + 2 > self.tob_batch || self.tob.excluded {
            return false;
        }
        if self.tob_stage_len > 0 {
            // Also during a view change: the batch leaves after it.
            return true;
        }
        if self.recovering() {
            return false;
        }
        let last = self.tob.my_counter.wrapping_sub(1);
        self.tob
            .slot_of(self.me as u8, last)
            .and_then(|s| self.tob.pendings[s as usize].as_ref())
            .is_some_and(|p| p.queued && p.sent == 0)
    }

    /// Adds an application message to the batch being gathered (flushing a
    /// full one first). Errors change nothing.
    fn tob_stage_message(&mut self, now: Instant, payload: &[u8]) -> Result<(), Error> {
        if payload.len() > self.max_message {
            return Err(Error::Oversized);
        }
        let flush =
            self.tob_stage_len > 0 && self.tob_stage_len + 2 + payload.len() > self.tob_batch;
        // The count first (in a new batch), then this message with its length.
        let need = if self.tob_stage_len == 0 || flush {
            2
        } else {
            0
        } + 2
            + payload.len();
        // The byte budget of a direct broadcast, staged bytes included, is
        // checked before a full batch is flushed, so `Full` changes nothing
        // (flushing moves no bytes: staged ones are counted already).
        if (self.tob.outstanding > 0 || self.tob_stage_len > 0)
            && self.tob.outstanding_bytes + need > self.tob_byte_budget()
        {
            self.counters.refused_full += 1;
            return Err(Error::Full);
        }
        if flush {
            self.tob_flush_stage(now);
        }
        if self.tob_stage_len + need > self.tob_batch {
            self.counters.refused_full += 1;
            return Err(Error::Full);
        }
        let start = if self.tob_stage_len == 0 {
            2
        } else {
            self.tob_stage_len
        };
        let Some(dst) = self.tob_stage.get_mut(start..start + 2 + payload.len()) else {
            self.counters.refused_full += 1;
            return Err(Error::Full);
        };
        dst[..2].copy_from_slice(&(payload.len() as u16).to_be_bytes());
        dst[2..].copy_from_slice(payload);
        self.tob_stage_len = start + 2 + payload.len();
        self.tob_stage_count += 1;
        self.tob.outstanding_bytes += need;
        self.counters.messages_accepted += 1;
        Ok(())
    }

    /// Turns the gathered batch into one pending message of this process
    /// and sends it (as `tob_broadcast` does for one message). Returns false,
    /// keeping the batch, while the window, the pool or the id space is
    /// full, or during a view change: a later `poll_transmit` tries again.
    pub(crate) fn tob_flush_stage(&mut self, now: Instant) -> bool {
        if self.tob_stage_len == 0 {
            return true;
        }
        if self.tob.excluded || self.recovering() || self.tob.outstanding >= self.tob.window {
            return false;
        }
        let Some(count) = self.tob_stage.get_mut(..2) else {
            return false;
        };
        count.copy_from_slice(&self.tob_stage_count.to_be_bytes());
        if self.tob_store_own(now, TobKind::Batch, &[], true).is_none() {
            return false;
        }
        self.tob_stage_len = 0;
        self.tob_stage_count = 0;
        true
    }

    /// Application messages a numbered entry stands for (a batch its count;
    /// bandwidth requests none), as delivery counts them.
    fn tob_app_messages(&self, sn: u64) -> u64 {
        let Some(p) = self
            .tob
            .ring_slot(sn)
            .and_then(|s| self.tob.pendings[s as usize].as_ref())
        else {
            return 0;
        };
        if !p.complete {
            return 0;
        }
        match (p.kind, p.handle) {
            (TobKind::App, _) => 1,
            (TobKind::Batch, Some(h)) => u64::from(self.tob_batch_count(h)),
            _ => 0,
        }
    }

    /// Application messages below `end` (for the ACK), from a cache that
    /// moves forward, so that each number is counted once.
    fn tob_app_below(&mut self, end: u64) -> u64 {
        if self.tob.app_unknown {
            return crate::wire::order::APP_UNKNOWN;
        }
        let (mut at, mut app) = self.tob.app_mark;
        if at < self.tob.next_deliver || at > end {
            at = self.tob.next_deliver;
            app = self.tob.app_next;
            if self.tob.batch_pos.0 == at {
                app = app.saturating_sub(u64::from(self.tob.batch_pos.2));
            }
        }
        while at < end {
            app = app.saturating_add(self.tob_app_messages(at));
            at += 1;
        }
        self.tob.app_mark = (at, app);
        app
    }

    /// Progress of the total order broadcast.
    pub fn tob_status(&self) -> TobStatus {
        TobStatus {
            view_id: self.tob.view_id,
            sequencer: self.peers[self.tob.leader as usize].id,
            next_deliver: self.tob.next_deliver,
            known_end: self.tob.known_end,
            order_end: self.tob.order_end,
            retained_from: self.tob.retained_from,
            next_sn: self.tob.next_sn,
            min_ack: self.tob.min_ack(self.me),
            outstanding: self.tob.outstanding,
            pendings: SLOTS - self.tob.free.len(),
            recovering: self.recovering(),
        }
    }

    /// Entries of `pendings` as (origin, counter, sn, complete, has storage,
    /// length): for debugging and tests.
    #[doc(hidden)]
    pub fn tob_pendings(
        &self,
    ) -> impl Iterator<Item = (NodeId, u32, Option<u64>, bool, bool, u32)> + '_ {
        self.tob.pendings.iter().flatten().map(|p| {
            (
                self.peers[p.origin as usize].id,
                p.counter,
                p.sn,
                p.complete,
                p.handle.is_some(),
                p.total_len,
            )
        })
    }

    /// Pool bytes held by received total-order messages (debugging).
    #[doc(hidden)]
    pub fn tob_rx_bytes(&self) -> usize {
        self.rx_tob_bytes
    }

    pub(crate) fn tob_broadcast(
        &mut self,
        now: Instant,
        payload: &[u8],
        kind: TobKind,
    ) -> Result<MsgId, Error> {
        self.now = self.now.max(now);
        if self.tob.excluded {
            return Err(Error::NotMember);
        }
        if payload.len() > self.max_message {
            return Err(Error::Oversized);
        }
        // The batch gathered before this message goes first (FIFO) and
        // takes a unit of the window; window and budget are checked before
        // it is flushed, so that `Full` changes nothing.
        let staged = usize::from(self.tob_stage_len > 0);
        if self.tob.outstanding + staged >= self.tob.window
            || (self.tob.outstanding + staged > 0
                && self.tob.outstanding_bytes + payload.len() > self.tob_byte_budget())
        {
            self.counters.refused_full += 1;
            return Err(Error::Full);
        }
        if staged > 0 && !self.tob_flush_stage(now) {
            self.counters.refused_full += 1;
            return Err(Error::Full);
        }
        let Some(counter) = self.tob_store_own(now, kind, payload, false) else {
            self.counters.refused_full += 1;
            return Err(Error::Full);
        };
        Ok(MsgId {
            sender: self.id,
            counter,
        })
    }

    /// Per-origin byte budget: all origins' unnumbered messages together
    /// fit in what a receiver reserves for them, so a view change can
    /// always hold the union of everyone's pendings. Staged bytes of a batch
    /// count as soon as they are staged.
    fn tob_byte_budget(&self) -> usize {
        self.order_window_bytes() / (self.tob.view.count_ones().max(1) as usize)
    }

    /// Stores an own message — `payload`, or the gathered batch when
    /// `staged` — as a pending entry with the next counter, then sends it
    /// (line 10) and, at the sequencer, orders it. `None`, changing nothing,
    /// when the pool's sending half, the table or the id window is full.
    fn tob_store_own(
        &mut self,
        now: Instant,
        kind: TobKind,
        payload: &[u8],
        staged: bool,
    ) -> Option<u32> {
        let me = self.me;
        let counter = self.tob.my_counter;
        let len = if staged {
            self.tob_stage_len
        } else {
            payload.len()
        };
        let blocks_bytes = Pool::<BLOCKS>::blocks_for(len) * crate::pool::BLOCK_LEN;
        if self.tx_pool_bytes + blocks_bytes > self.pool_half()
            || self.tob.free.is_empty()
            || !self.tob_counter_fits(me, counter)
        {
            return None;
        }
        let stored = if staged {
            self.pool.store(self.tob_stage.get(..len)?)
        } else {
            self.pool.store(payload)
        };
        let handle = stored.ok()?;
        let Some(slot) = self.tob.free.pop() else {
            self.pool.free(handle);
            return None;
        };
        self.tx_pool_bytes += blocks_bytes;
        let mut ranges = crate::reassembly::RangeSet::default();
        ranges.insert(0, len as u32);
        self.tob.pendings[slot as usize] = Some(Pending {
            origin: me as u8,
            counter,
            kind,
            total_len: len as u32,
            handle: Some(handle),
            ranges,
            complete: true,
            sn: None,
            delivered: false,
            queued: false,
            sent: 0,
            cursor: self.pool.cursor(handle),
            claimed_by: 0,
            in_union: false,
            sn_ballot: 0,
            sn_foreign: false,
            tx: true,
            sent_at: Instant::MAX,
        });
        self.tob.by_origin[me][counter as usize % PER_ORIGIN] = slot;
        self.tob.my_counter = counter.wrapping_add(1);
        self.tob.outstanding += 1;
        if !staged {
            // A batch's bytes were counted message by message when staged.
            self.tob.outstanding_bytes += len;
            self.counters.messages_accepted += 1;
        }
        // Send DATA to all (line 10), then the sequencer orders its own.
        if !self.recovering() {
            self.tob_queue_data(slot, now);
            self.tob_try_order(me, now);
        }
        Some(counter)
    }

    /// Whether a counter of `origin` lies in the window this process tracks.
    fn tob_counter_fits(&self, origin: usize, counter: u32) -> bool {
        self.tob.counters_unknown & (1u64 << origin.min(63)) != 0
            || counter.wrapping_sub(self.tob.next_to_deliver[origin]) < PER_ORIGIN as u32
    }

    /// Whether `counter` of `origin` was delivered already.
    pub(crate) fn tob_delivered_already(&self, origin: usize, counter: u32) -> bool {
        self.tob.counters_unknown & (1u64 << origin.min(63)) == 0
            && counter.wrapping_sub(self.tob.next_to_deliver[origin]) >= 0x8000_0000
    }

    /// Queues DATA of `slot` on the cluster sink (once).
    pub(crate) fn tob_queue_data(&mut self, slot: u16, now: Instant) {
        let Some(p) = self.tob.pendings[slot as usize].as_mut() else {
            return;
        };
        if p.queued || !p.complete {
            return;
        }
        if self.tob.view & !(1u64 << self.me.min(63)) == 0 {
            // Alone in the view: no DATA to send, so nothing for the
            // sequencer's own numbering to wait for (`tob_try_order`).
            return;
        }
        let Some(h) = p.handle else { return };
        p.queued = true;
        p.sent = 0;
        p.cursor = self.pool.cursor(h);
        let meta = PacketMeta {
            arrival: now,
            size: p.total_len,
            value: 0,
            work: p.total_len,
            slack: None,
            class: urgency(Class::Data),
            droppable: false,
        };
        match self.sinks[GROUP_SINK]
            .port
            .enqueue(Class::Data.index(), meta, Item::Broadcast(slot))
        {
            Admission::Refused(..) => {
                // The class queue is full: the retransmission timer tries again.
                if let Some(p) = self.tob.pendings[slot as usize].as_mut() {
                    p.queued = false;
                }
            }
            Admission::Admitted => self.activate(GROUP_SINK),
            Admission::AdmittedPushedOut(victims) => {
                for v in victims {
                    self.discard(v.item);
                }
                self.activate(GROUP_SINK);
            }
        }
    }

    /// Writes DATA (or the next slice of it) of `slot` into the datagram.
    pub(crate) fn pull_broadcast(
        &mut self,
        slot: u16,
        now: Instant,
        w: &mut FrameWriter<'_>,
    ) -> Pulled {
        let Some(p) = self
            .tob
            .pendings
            .get(slot as usize)
            .and_then(Option::as_ref)
        else {
            return Pulled::Done; // delivered and freed meanwhile
        };
        let (sent, total, mut cursor) = (p.sent, p.total_len, p.cursor);
        let room = w
            .remaining()
            .saturating_sub(wire::RECORD_HEADER_LEN + TOB_DATA_HEADER_LEN);
        let whole_fits_empty = wire::RECORD_HEADER_LEN + TOB_DATA_HEADER_LEN + total as usize
            <= self.integrity.max_frame_len(self.mtu) - Header::LEN;
        if sent == 0 && room < total as usize && whole_fits_empty {
            return Pulled::NoRoom; // goes whole in the next datagram
        }
        let Some(n) = self.write_tob_slice(w, slot, sent, &mut cursor) else {
            return Pulled::NoRoom;
        };
        if let Some(pm) = self.tob.pendings[slot as usize].as_mut() {
            pm.sent += n;
            pm.cursor = cursor;
            if pm.sent >= pm.total_len {
                pm.queued = false;
                pm.sent = 0;
                pm.sent_at = now;
                return Pulled::Done;
            }
        }
        Pulled::Partial
    }

    /// Writes the slice of pending `slot` that starts at byte `off` as one
    /// `TobData` record: as much as fits, but never a sliver of a message at
    /// the end of a datagram that already carries records. Returns the bytes
    /// written; `None` when nothing was written. Used for first sends,
    /// repairs and forwarding alike.
    pub(crate) fn write_tob_slice(
        &self,
        w: &mut FrameWriter<'_>,
        slot: u16,
        off: u32,
        cursor: &mut Cursor,
    ) -> Option<u32> {
        let p = self.tob.pendings.get(slot as usize)?.as_ref()?;
        let h = p.handle?;
        let rest = p.total_len.checked_sub(off)? as usize;
        let n = w
            .remaining()
            .saturating_sub(wire::RECORD_HEADER_LEN + TOB_DATA_HEADER_LEN)
            .min(rest);
        if (n == 0 && rest > 0) || (n < rest && n < MIN_FRAGMENT && w.records() > 0) {
            return None;
        }
        let (origin, counter, kind, total) = (
            self.peers[p.origin as usize].id.0,
            p.counter,
            p.kind as u8,
            p.total_len,
        );
        let pool = &self.pool;
        w.push_with(KIND_TOB_DATA, TOB_DATA_HEADER_LEN + n, |b| {
            b[0..2].copy_from_slice(&origin.to_be_bytes());
            b[2..6].copy_from_slice(&counter.to_be_bytes());
            b[6] = kind;
            b[7..11].copy_from_slice(&total.to_be_bytes());
            b[11..15].copy_from_slice(&off.to_be_bytes());
            pool.read_at(h, cursor, off as usize, &mut b[15..]);
        })
        .ok()?;
        Some(n as u32)
    }

    /// Takes a slice of DATA (lines 13–21). Returns the slot once complete.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn tob_on_data(
        &mut self,
        now: Instant,
        origin: usize,
        counter: u32,
        kind: TobKind,
        total_len: u32,
        offset: u32,
        bytes: &[u8],
    ) -> Option<u16> {
        if self.tob_delivered_already(origin, counter) {
            return None; // a duplicate
        }
        let slot = match self.tob.slot_of(origin as u8, counter) {
            Some(s) => s,
            None => {
                if !self.tob_counter_fits(origin, counter) {
                    self.counters.drop(DropReason::NoBufferSpace);
                    return None;
                }
                let occupied = self.tob.by_origin[origin][counter as usize % PER_ORIGIN];
                if occupied != NONE && self.tob.pendings[occupied as usize].is_some() {
                    return None;
                }
                let slot = self.tob.free.pop()?;
                self.tob.pendings[slot as usize] =
                    Some(Pending::placeholder(origin as u8, counter, kind, total_len));
                self.tob.by_origin[origin][counter as usize % PER_ORIGIN] = slot;
                slot
            }
        };
        self.tob_store_slice(slot, kind, total_len, offset, bytes)?;
        let complete = self.tob.pendings[slot as usize]
            .as_ref()
            .is_some_and(|p| p.complete);
        if complete {
            self.tob_try_order(origin, now);
            self.tob_advance_known(now);
        }
        Some(slot)
    }

    /// Writes a slice into a pending entry; `None` when storage is short.
    pub(crate) fn tob_store_slice(
        &mut self,
        slot: u16,
        kind: TobKind,
        total_len: u32,
        offset: u32,
        bytes: &[u8],
    ) -> Option<()> {
        let p = self.tob.pendings[slot as usize].as_mut()?;
        if p.complete {
            return Some(());
        }
        if p.handle.is_none() {
            // An entry created from a RECOVER or an ORDER knows no length yet.
            p.total_len = total_len;
            p.kind = kind;
            let blocks = Pool::<BLOCKS>::blocks_for(total_len as usize) * crate::pool::BLOCK_LEN;
            // Unnumbered data may fill half the receive budget; numbered
            // data the whole (see `order_window_bytes`).
            // The next message of its origin to be numbered counts as
            // numbered: refusing it would block that origin's FIFO for good.
            let next = p.counter == self.tob.next_to_order[p.origin as usize];
            let urgent = p.sn.is_some() || next || p.in_union;
            let limit = if urgent {
                self.pool_half()
            } else {
                self.pool_half() / 2
            };
            if urgent && self.rx_tob_bytes + blocks > limit {
                self.evict_unnumbered(self.rx_tob_bytes + blocks - limit, slot);
            }
            if self.rx_tob_bytes + blocks > limit {
                self.counters.drop(DropReason::NoBufferSpace);
                return None;
            }
            let Ok(h) = self.pool.alloc(total_len as usize) else {
                self.counters.drop(DropReason::NoBufferSpace);
                return None;
            };
            self.rx_tob_bytes += blocks;
            let p = self.tob.pendings[slot as usize].as_mut()?;
            p.handle = Some(h);
            p.cursor = self.pool.cursor(h);
        }
        let p = self.tob.pendings[slot as usize].as_mut()?;
        if p.total_len != total_len {
            return None;
        }
        let h = p.handle?;
        let end = offset + bytes.len() as u32;
        // In place: a refused insert changes nothing.
        if !p.ranges.insert(offset, end) {
            return None;
        }
        p.complete = total_len == 0 || p.ranges.covers(total_len);
        self.pool.write(h, offset as usize, bytes);
        Some(())
    }

    /// Frees received, unnumbered messages (their origins send them again)
    /// until `need` bytes are free, so that numbered data always finds room.
    /// A scan of the pending table: only under storage pressure.
    fn evict_unnumbered(&mut self, need: usize, keep: u16) {
        let mut freed = 0;
        for slot in (0..SLOTS).rev() {
            if freed >= need {
                break;
            }
            let Some(p) = self.tob.pendings[slot] else {
                continue;
            };
            let next = p.counter == self.tob.next_to_order[p.origin as usize];
            if slot as u16 == keep || p.sn.is_some() || p.tx || next || p.in_union || p.queued {
                continue;
            }
            if let Some(h) = p.handle {
                freed += Pool::<BLOCKS>::blocks_for(h.len()) * crate::pool::BLOCK_LEN;
                self.counters.drop(DropReason::NoBufferSpace);
                self.tob_free(slot as u16);
            }
        }
    }

    /// Sequencer: numbers every complete message of `origin` that is next in
    /// its counter order (lines 14–19, FIFO per origin).
    pub(crate) fn tob_try_order(&mut self, origin: usize, now: Instant) {
        if self.tob.leader as usize != self.me || self.recovering() || !self.tob.is_member(origin) {
            return;
        }
        let mut assigned = false;
        loop {
            let c = self.tob.next_to_order[origin];
            let Some(slot) = self.tob.slot_of(origin as u8, c) else {
                break;
            };
            let Some(p) = self.tob.pendings[slot as usize].as_ref() else {
                break;
            };
            if !p.complete || p.sn.is_some() {
                break;
            }
            if origin == self.me && p.queued {
                // Its DATA still waits in our own sink: numbered when it
                // leaves (`build_frame`), or everyone's delivery would wait
                // for our token bucket.
                break;
            }
            let sn = self.tob.next_sn;
            let len = p.total_len as usize;
            if !self.tob.ring_has_room(sn)
                || (self.tob.ordered_bytes > 0
                    && self.tob.ordered_bytes + len > self.order_window_bytes())
            {
                break; // resumes when deliveries free the ring or the window
            }
            self.tob.ordered_bytes += len;
            self.tob_set_order(slot, sn);
            self.tob.next_sn = sn + 1;
            assigned = true;
        }
        if assigned {
            self.register(GROUP_SINK, Feed::TobOrder, now);
            self.tob_advance_known(now);
        }
    }

    /// Records `seqnos[slot] = sn`.
    pub(crate) fn tob_set_order(&mut self, slot: u16, sn: u64) {
        let Some(p) = self.tob.pendings[slot as usize].as_mut() else {
            return;
        };
        p.sn = Some(sn);
        let sample = (p.origin as usize == self.me && p.sent_at != Instant::MAX)
            .then(|| self.now.saturating_since(p.sent_at));
        if sample.is_some() {
            p.sent_at = Instant::MAX;
        }
        let (o, c) = (p.origin as usize, p.counter);
        self.tob.ring[(sn % SLOTS as u64) as usize] = slot;
        if c.wrapping_sub(self.tob.next_to_order[o]) < 0x8000_0000 {
            self.tob.next_to_order[o] = c.wrapping_add(1);
        }
        while self.tob.ring_slot(self.tob.order_end).is_some() {
            self.tob.order_end += 1;
        }
        if let Some(sample) = sample {
            // Time from the end of our DATA to its number: the order RTT.
            self.tob_rtt_sample(sample);
        }
    }

    /// Moves this process's acknowledgement forward over numbers whose order
    /// and data it holds, and registers the ACK feed if it moved.
    pub(crate) fn tob_advance_known(&mut self, now: Instant) {
        let before = self.tob.known_end;
        while let Some(s) = self.tob.ring_slot(self.tob.known_end) {
            if !self.tob.pendings[s as usize]
                .as_ref()
                .is_some_and(|p| p.complete)
            {
                break;
            }
            self.tob.known_end += 1;
        }
        if self.tob.known_end != before {
            self.tob.progress_at = now;
            self.register(GROUP_SINK, Feed::TobAck, now);
            self.tob_try_deliver();
        }
    }

    /// Sequencer's ORDER (line 19), batched: consecutive numbers not yet sent.
    pub(crate) fn pull_tob_order(
        &mut self,
        s: usize,
        now: Instant,
        w: &mut FrameWriter<'_>,
    ) -> Pulled {
        let from = self.tob.order_sent.max(self.tob.retained_from);
        let to = self.tob.next_sn;
        if from >= to {
            self.sinks[s].registered &= !Feed::TobOrder.bit();
            return Pulled::Done;
        }
        match self.write_order(w, from, to) {
            Some(end) => {
                self.tob.order_sent = end;
                self.sinks[s].registered &= !Feed::TobOrder.bit();
                if end < to {
                    self.register(s, Feed::TobOrder, now);
                    return Pulled::Partial;
                }
                Pulled::Done
            }
            None => Pulled::NoRoom,
        }
    }

    /// Writes a `TobOrder` for as many numbers of `[from, to)` as fit;
    /// returns the end written.
    fn write_order(&self, w: &mut FrameWriter<'_>, from: u64, to: u64) -> Option<u64> {
        let room = w
            .remaining()
            .checked_sub(wire::RECORD_HEADER_LEN + TOB_ORDER_HEADER_LEN)?
            / ID_LEN;
        let mut n = 0usize;
        while n < room && from + (n as u64) < to && self.tob.ring_slot(from + n as u64).is_some() {
            n += 1;
        }
        if n == 0 {
            return None;
        }
        let view = self.tob.view_id;
        let tob = &self.tob;
        let peers = &self.peers;
        w.push_with(KIND_TOB_ORDER, TOB_ORDER_HEADER_LEN + n * ID_LEN, |b| {
            b[0..4].copy_from_slice(&view.to_be_bytes());
            b[4..12].copy_from_slice(&from.to_be_bytes());
            for i in 0..n {
                let p = tob
                    .ring_slot(from + i as u64)
                    .and_then(|s| tob.pendings[s as usize]);
                if let Some(p) = p {
                    let e = IdEntry {
                        origin: peers[p.origin as usize].id.0,
                        counter: p.counter,
                        flags: 0,
                    };
                    IdList::write(&mut b[TOB_ORDER_HEADER_LEN..], i, e);
                }
            }
        })
        .ok()?;
        Some(from + n as u64)
    }

    /// Takes ACK(id, sn) from the sequencer (lines 22–28).
    pub(crate) fn tob_on_order(
        &mut self,
        now: Instant,
        from: usize,
        view: u32,
        first_sn: u64,
        ids: IdList<'_>,
    ) {
        if view != self.tob.view_id || from != self.tob.leader as usize || from == self.me {
            return;
        }
        for (i, e) in ids.iter().enumerate() {
            let sn = first_sn + i as u64;
            if sn < self.tob.next_deliver || self.tob.ring_slot(sn).is_some() {
                continue;
            }
            if !self.tob.ring_has_room(sn) {
                break; // beyond what this process can hold: NACKed later
            }
            let Some(o) = self.peer_index(NodeId(e.origin)) else {
                continue;
            };
            if e.counter.wrapping_sub(self.tob.next_to_deliver[o]) >= 0x8000_0000 {
                continue;
            }
            let slot = match self.tob.slot_of(o as u8, e.counter) {
                Some(s) => s,
                None => {
                    // Order before data: hold the number, the data follows.
                    if !self.tob_counter_fits(o, e.counter) {
                        continue;
                    }
                    let Some(s) = self.tob.free.pop() else { break };
                    self.tob.pendings[s as usize] =
                        Some(Pending::placeholder(o as u8, e.counter, TobKind::App, 0));
                    self.tob.by_origin[o][e.counter as usize % PER_ORIGIN] = s;
                    s
                }
            };
            if self.tob.pendings[slot as usize]
                .as_ref()
                .is_some_and(|p| p.sn.is_none())
            {
                self.tob_set_order(slot, sn);
            }
        }
        self.tob_advance_known(now);
    }

    /// This process's cumulative ACK (line 24), made when pulled.
    pub(crate) fn pull_tob_ack(&mut self, s: usize, w: &mut FrameWriter<'_>) -> Pulled {
        let r = RecordRepr::TobAck {
            view: self.tob.view_id,
            cum: self.tob.known_end,
            stable: self.tob.min_ack(self.me),
            app: self.tob_app_below(self.tob.known_end),
        };
        if w.push(&r).is_err() {
            return Pulled::NoRoom;
        }
        self.sinks[s].registered &= !Feed::TobAck.bit();
        Pulled::Done
    }

    /// Takes a cumulative ACK.
    pub(crate) fn tob_on_ack(
        &mut self,
        now: Instant,
        from: usize,
        view: u32,
        cum: u64,
        stable: u64,
        app: u64,
    ) {
        if self.tob.excluded && self.tob.left_view == Some(view) {
            // A view this process could not follow still counts on it.
            self.register(from + 1, Feed::Leave, now);
            return;
        }
        if view != self.tob.view_id || !self.tob.is_member(from) {
            return;
        }
        // A process that joined asks for the application count with every
        // ACK until it knows it (it re-sends while it has undelivered
        // numbers): answer it like a process that lacks our ACK.
        let needs_count = app == crate::wire::order::APP_UNKNOWN && !self.tob.app_unknown;
        if (stable < self.tob.known_end || needs_count)
            && now.saturating_since(self.tob.last_ack_answer) >= self.tob.rto / 2
        {
            // The sender lacks an ACK as high as ours: ours may have been lost. Answer with a fresh one, at most once
            // per half period (two waiting processes must not ping-pong).
            self.tob.last_ack_answer = now;
            self.register(GROUP_SINK, Feed::TobAck, now);
        }
        if self.tob.app_unknown
            && app != crate::wire::order::APP_UNKNOWN
            // A count no run reaches (2^63 messages) comes from a faulty
            // member: ignored, as the numbering must never overflow.
            && app < u64::MAX / 2
            && cum >= self.tob.next_deliver
            && cum <= self.tob.known_end
        {
            // Joined: a member's count below `cum`, minus the messages this
            // process holds between its delivery point and `cum`, numbers
            // its first delivery (bounded: at most SLOTS numbers).
            let mut held = 0;
            for sn in self.tob.next_deliver..cum {
                held += self.tob_app_messages(sn);
            }
            if let Some(base) = app.checked_sub(held) {
                self.tob.app_next = base;
                self.tob.app_unknown = false;
                self.tob.app_mark = (u64::MAX, 0);
                self.tob_try_deliver();
            }
        }
        if cum > self.tob.acks[from] {
            self.tob.acks[from] = cum;
            self.tob_try_deliver();
            self.tob_release();
        }
    }

    /// tryDeliver (lines 29–33): deliver in number order every message all
    /// members hold (or that a view change forced), as the inbox allows.
    pub(crate) fn tob_try_deliver(&mut self) {
        if self.recovering() {
            return;
        }
        self.tob.inbox_blocked = false;
        if self.tob.app_unknown {
            // Joined: numbering of deliveries not known yet.
            self.tob_release();
            return;
        }
        let end = self.tob.min_ack(self.me).max(self.tob.forced_end);
        while self.tob.next_deliver < end {
            let sn = self.tob.next_deliver;
            let Some(slot) = self.tob.ring_slot(sn) else {
                if sn < self.tob.forced_end {
                    // forceDeliver skipped it: nobody held its data.
                    self.tob.next_deliver += 1;
                    continue;
                }
                break;
            };
            // The fields delivery needs, not a copy of the whole entry.
            let Some((complete, kind, handle, origin, counter, total_len)) =
                self.tob.pendings[slot as usize].as_ref().map(|p| {
                    (
                        p.complete,
                        p.kind,
                        p.handle,
                        p.origin,
                        p.counter,
                        p.total_len,
                    )
                })
            else {
                break;
            };
            if !complete {
                if sn < self.tob.forced_end {
                    self.tob.next_deliver += 1;
                    continue;
                }
                break;
            }
            if kind == TobKind::App || kind == TobKind::Batch {
                let Some(h) = handle else { break };
                if !self.tob_deliver_messages(sn, origin, h, kind == TobKind::Batch) {
                    // Resumes from poll_event once the application made room.
                    self.tob.inbox_blocked = true;
                    break;
                }
            } else {
                let mut amount = [0u8; 8];
                if let Some(h) = handle {
                    self.pool.read(h, &mut amount);
                }
                self.on_bandwidth_request(
                    origin as usize,
                    kind,
                    counter,
                    u64::from_be_bytes(amount),
                );
            }
            let o = origin as usize;
            if counter.wrapping_sub(self.tob.next_to_deliver[o]) < 0x8000_0000
                || self.tob.counters_unknown & (1u64 << o.min(63)) != 0
            {
                self.tob.next_to_deliver[o] = counter.wrapping_add(1);
                self.tob.counters_unknown &= !(1u64 << o.min(63));
            }
            if o == self.me {
                self.tob.outstanding = self.tob.outstanding.saturating_sub(1);
                self.tob.outstanding_bytes = self
                    .tob
                    .outstanding_bytes
                    .saturating_sub(total_len as usize);
            }
            if let Some(pm) = self.tob.pendings[slot as usize].as_mut() {
                pm.delivered = true;
            }
            self.tob.next_deliver += 1;
        }
        self.tob_release();
    }

    /// Delivers the application message numbered `sn`, or the messages of
    /// the batch numbered `sn` (from where an earlier call stopped), one
    /// event each with consecutive numbers. False when the inbox filled
    /// first: `poll_event` resumes it. A batch whose framing is broken (only
    /// a faulty origin makes one) has its remaining messages counted but not
    /// delivered, the same at every process, so that numbers stay consistent.
    fn tob_deliver_messages(&mut self, sn: u64, origin: u8, h: Handle, batch: bool) -> bool {
        let mut cur = self.pool.cursor(h);
        let (count, mut off, mut done) = if !batch {
            (1, 0, 0)
        } else if self.tob.batch_pos.0 == sn {
            (
                self.tob_batch_count(h),
                self.tob.batch_pos.1 as usize,
                self.tob.batch_pos.2,
            )
        } else {
            (self.tob_batch_count(h), 2, 0)
        };
        let sender = self.peers[origin as usize].id;
        while done < count {
            let (start, len) = if batch {
                let mut l = [0u8; 2];
                if self.pool.read_at(h, &mut cur, off, &mut l) < 2 {
                    (usize::MAX, 0)
                } else {
                    (off + 2, usize::from(u16::from_be_bytes(l)))
                }
            } else {
                (0, h.len())
            };
            if start.saturating_add(len) > h.len() {
                self.tob.app_next = self
                    .tob
                    .app_next
                    .saturating_add(u64::from(count.saturating_sub(done)));
                break;
            }
            if !self.inbox.can_fit(1, len) {
                self.tob.batch_pos = (sn, off as u32, done);
                return false;
            }
            let pool = &self.pool;
            let app_sn = self.tob.app_next;
            self.inbox
                .push_with(EventMeta::Delivered { sn: app_sn, sender }, len, |b| {
                    pool.read_at(h, &mut cur, start, b);
                });
            self.tob.app_next = self.tob.app_next.saturating_add(1);
            self.counters.messages_delivered += 1;
            done += 1;
            off = start + len;
        }
        self.tob.batch_pos = (u64::MAX, 0, 0);
        true
    }

    /// The count at the head of a batch.
    fn tob_batch_count(&self, h: Handle) -> u16 {
        let mut c = [0u8; 2];
        if self.pool.read(h, &mut c) < 2 {
            return 0; // too short for a count: nothing in it
        }
        u16::from_be_bytes(c)
    }

    /// Frees delivered messages every member acknowledged.
    pub(crate) fn tob_release(&mut self) {
        if self.recovering() {
            return;
        }
        let stable = self.tob.min_ack(self.me).min(self.tob.next_deliver);
        let released = self.tob.retained_from < stable;
        while self.tob.retained_from < stable {
            let sn = self.tob.retained_from;
            if let Some(slot) = self.tob.ring_slot(sn) {
                let len = self.tob.pendings[slot as usize]
                    .as_ref()
                    .map_or(0, |p| p.total_len as usize);
                self.tob.ordered_bytes = self.tob.ordered_bytes.saturating_sub(len);
                self.tob_free(slot);
            }
            self.tob.ring[(sn % SLOTS as u64) as usize] = NONE;
            self.tob.retained_from += 1;
        }
        self.tob.order_end = self.tob.order_end.max(self.tob.retained_from);
        self.tob.known_end = self.tob.known_end.max(self.tob.retained_from);
        if released && self.tob.leader as usize == self.me {
            // The window opened: number what waits, oldest origins first.
            let now = self.now;
            for o in 0..self.peers.len().min(MAX_MEMBERS) {
                self.tob_try_order(o, now);
            }
        }
    }

    /// The sequencer's window: numbered, unstable bytes. Half of what a
    /// receiver may hold for the total order, so that data of numbered
    /// messages always finds room even when unnumbered data filled the rest
    /// (no deadlock between storage and acknowledgements).
    pub(crate) fn order_window_bytes(&self) -> usize {
        self.pool_half() / 2
    }

    /// Recomputes the sequencer's window after a view change.
    pub(crate) fn recount_ordered_bytes(&mut self) {
        let from = self.tob.retained_from;
        self.tob.ordered_bytes = self
            .tob
            .pendings
            .iter()
            .flatten()
            .filter(|p| p.sn.is_some_and(|sn| sn >= from))
            .map(|p| p.total_len as usize)
            .sum();
    }

    /// Returns a pending entry's storage.
    pub(crate) fn tob_free(&mut self, slot: u16) {
        // The fields freeing needs, then the entry goes (no copy of it).
        let Some((handle, tx, o, counter)) = self.tob.pendings[slot as usize]
            .as_ref()
            .map(|p| (p.handle, p.tx, p.origin as usize, p.counter))
        else {
            return;
        };
        self.tob.pendings[slot as usize] = None;
        if let Some(h) = handle {
            let bytes = Pool::<BLOCKS>::blocks_for(h.len()) * crate::pool::BLOCK_LEN;
            if tx {
                self.tx_pool_bytes = self.tx_pool_bytes.saturating_sub(bytes);
            } else {
                self.rx_tob_bytes = self.rx_tob_bytes.saturating_sub(bytes);
            }
            self.pool.free(h);
        }
        if self.tob.by_origin[o][counter as usize % PER_ORIGIN] == slot {
            self.tob.by_origin[o][counter as usize % PER_ORIGIN] = NONE;
        }
        let _ = self.tob.free.push(slot);
    }

    /// Periodic work: re-send DATA nobody ordered, ask for what is missing,
    /// repeat the ACK while others wait (lines 34–37, and the NACK path).
    pub(crate) fn tob_tick(&mut self, now: Instant) {
        self.tob.next_tick = Some(now + self.tob.rto);
        if self.recovering() || self.tob.excluded {
            return;
        }
        if self.tob_stage_len > 0 {
            // A batch a host left gathering without pulling datagrams.
            self.tob_flush_stage(now);
        }
        // Own messages the sequencer has not numbered within a retransmission
        // timeout of their last transmission: send again.
        let me = self.me;
        let rto = self.tob_retransmission_timeout();
        let start = self.tob.next_to_order[me].max(self.tob.next_to_deliver[me]);
        let mut c = start;
        while c != self.tob.my_counter {
            if let Some(slot) = self.tob.slot_of(me as u8, c) {
                let due = self.tob.pendings[slot as usize].as_ref().is_some_and(|p| {
                    p.sn.is_none()
                        && !p.queued
                        && (p.sent_at == Instant::MAX || now.saturating_since(p.sent_at) >= rto)
                });
                if due {
                    self.counters.retransmissions += 1;
                    self.tob_queue_data(slot, now);
                }
            }
            c = c.wrapping_add(1);
        }
        let waiting = self.tob.min_ack(me) < self.tob.known_end
            || self.tob.next_deliver < self.tob.known_end
            || self.tob.acks.iter().any(|&a| a > self.tob.known_end)
            || self.tob.order_end > self.tob.known_end;
        let stalled = now.saturating_since(self.tob.progress_at) >= self.tob.rto;
        if waiting {
            // Others may have missed our ACK.
            self.register(GROUP_SINK, Feed::TobAck, now);
        }
        if stalled && self.tob.leader as usize != me {
            let known_elsewhere = self
                .tob
                .acks
                .iter()
                .copied()
                .max()
                .unwrap_or(0)
                .max(self.tob.order_end);
            if known_elsewhere > self.tob.known_end {
                self.counters.tob_stalls += 1;
                let leader = self.tob.leader as usize;
                self.tob.repair[leader] = (
                    self.tob.known_end,
                    self.tob.known_end + NACK_SPAN.min(known_elsewhere - self.tob.known_end),
                    0,
                );
                self.register(leader + 1, Feed::TobNack, now);
            }
        }
        if self.tob.leader as usize == me && self.tob.order_sent < self.tob.next_sn {
            self.register(GROUP_SINK, Feed::TobOrder, now);
        }
    }

    /// Folds an order-RTT sample into the smoothed estimate (RFC 6298's
    /// srtt/rttvar, in µs).
    fn tob_rtt_sample(&mut self, sample: Duration) {
        let r = sample.as_micros();
        if self.tob.srtt == 0 {
            self.tob.srtt = r;
            self.tob.rttvar = r / 2;
        } else {
            let err = self.tob.srtt.abs_diff(r);
            self.tob.rttvar = (3 * self.tob.rttvar + err) / 4;
            self.tob.srtt = (7 * self.tob.srtt + r) / 8;
        }
    }

    /// When an own, unnumbered message is sent again: srtt + 4·rttvar, at
    /// least the configured period.
    pub(crate) fn tob_retransmission_timeout(&self) -> Duration {
        Duration::from_micros(self.tob.srtt + 4 * self.tob.rttvar).max(self.tob.rto)
    }

    /// A NACK to the sequencer (made when pulled; the range is in `repair[leader]`).
    pub(crate) fn pull_tob_nack(&mut self, s: usize, w: &mut FrameWriter<'_>) -> Pulled {
        let leader = self.tob.leader as usize;
        let (from, to, _) = self.tob.repair[leader];
        self.sinks[s].registered &= !Feed::TobNack.bit();
        let from = from.max(self.tob.known_end);
        if from >= to {
            return Pulled::Done;
        }
        let r = RecordRepr::TobNack {
            view: self.tob.view_id,
            from_sn: from,
            to_sn: to,
        };
        self.push_for_feed(s, Feed::TobNack, &r, w)
    }

    /// Sequencer: a member asks for order and data of `[from, to)`.
    pub(crate) fn tob_on_nack(
        &mut self,
        now: Instant,
        from: usize,
        view: u32,
        from_sn: u64,
        to_sn: u64,
    ) {
        if view != self.tob.view_id || self.tob.leader as usize != self.me || self.recovering() {
            return;
        }
        let lo = from_sn.max(self.tob.retained_from);
        let hi = to_sn.min(lo + NACK_SPAN).min(self.tob.next_sn);
        if lo >= hi {
            return;
        }
        self.tob.repair[from] = (lo, hi, 0);
        self.register(from + 1, Feed::TobRepair, now);
    }

    /// Sequencer's answer to a NACK: order then data of the range, unicast.
    pub(crate) fn pull_tob_repair(
        &mut self,
        s: usize,
        now: Instant,
        w: &mut FrameWriter<'_>,
    ) -> Pulled {
        let peer = s - 1;
        let (from, to, offset) = self.tob.repair[peer];
        // Numbers that became stable meanwhile need no repair.
        let (from, offset) = if from < self.tob.retained_from {
            (self.tob.retained_from, 0)
        } else {
            (from, offset)
        };
        if from >= to {
            self.sinks[s].registered &= !Feed::TobRepair.bit();
            return Pulled::Done;
        }
        if offset == 0 && w.records() == 0 {
            // Order of the range first; nothing to say if the range starts
            // at a number released meanwhile. The order leaves room for a
            // slice of data: a whole NACK range of ids nearly fills a small
            // datagram, and a datagram of order alone would be written
            // again and again without the range ever advancing.
            let data = wire::RECORD_HEADER_LEN + TOB_DATA_HEADER_LEN + MIN_FRAGMENT;
            let ids = w
                .remaining()
                .saturating_sub(data + wire::RECORD_HEADER_LEN + TOB_ORDER_HEADER_LEN)
                / ID_LEN;
            let _ = self.write_order(w, from, to.min(from + ids.max(1) as u64));
        }
        let mut cur = from;
        let mut off = offset;
        while cur < to {
            let Some(slot) = self.tob.ring_slot(cur) else {
                cur += 1;
                off = 0;
                continue;
            };
            let Some(p) = self.tob.pendings[slot as usize] else {
                break;
            };
            let Some(h) = p.handle else {
                cur += 1;
                continue;
            };
            let total = p.total_len;
            let mut cursor = self.pool.cursor(h);
            let Some(n) = self.write_tob_slice(w, slot, off, &mut cursor) else {
                break;
            };
            self.counters.retransmissions += 1;
            off += n;
            if off >= total {
                cur += 1;
                off = 0;
            }
        }
        self.tob.repair[peer] = (cur, to, off);
        self.sinks[s].registered &= !Feed::TobRepair.bit();
        if cur < to {
            self.register(s, Feed::TobRepair, now);
            return Pulled::Partial;
        }
        Pulled::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    type One = Node<2, 16, 32, 256, 4096, 1500>;

    /// A view of one process: what it broadcasts is ordered and delivered
    /// at once. Stores `raw` as a batch of its own, then broadcasts `after`;
    /// returns the `(sn, payload)` of every delivery.
    fn deliver_raw_batch(raw: &[u8], after: &[u8]) -> Vec<(u64, Vec<u8>)> {
        let members = [NodeId(0)];
        let c = Config::new(NodeId(0), &members);
        let mut n = std::boxed::Box::new(One::new(&c, Instant::ZERO).expect("valid config"));
        let now = Instant::from_micros(1);
        assert!(n.tob_store_own(now, TobKind::Batch, raw, false).is_some());
        n.broadcast(now, after).expect("room");
        let mut out = Vec::new();
        while let Some(ev) = n.poll_event() {
            if let Event::Delivered { sn, payload, .. } = ev {
                out.push((sn, payload.to_vec()));
            }
        }
        out
    }

    #[test]
    fn a_batch_is_delivered_as_one_event_per_message_with_consecutive_numbers() {
        let raw = [0, 3, 0, 1, b'a', 0, 0, 0, 2, b'b', b'c'];
        let got = deliver_raw_batch(&raw, b"z");
        let want: Vec<(u64, Vec<u8>)> = vec![
            (0, b"a".to_vec()),
            (1, Vec::new()),
            (2, b"bc".to_vec()),
            (3, b"z".to_vec()),
        ];
        assert_eq!(got, want);
    }

    /// A batch whose framing breaks (only a faulty origin makes one) is
    /// delivered up to the break, and its count still numbers what follows,
    /// so every process that holds the same bytes numbers the same way.
    #[test]
    fn a_broken_batch_keeps_the_numbering_and_does_not_panic() {
        // Count 3, one message, then a length that runs past the end.
        let raw = [0, 3, 0, 1, b'a', 0, 9, b'x'];
        assert_eq!(
            deliver_raw_batch(&raw, b"z"),
            vec![(0, b"a".to_vec()), (3, b"z".to_vec())]
        );
        // A batch too short for its count.
        assert_eq!(deliver_raw_batch(&[7], b"z"), vec![(0, b"z".to_vec())]);
        assert_eq!(deliver_raw_batch(&[], b"z"), vec![(0, b"z".to_vec())]);
    }
}
