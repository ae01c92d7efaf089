//! QuickSilver Scalable Multicast: reliable multicast to many overlapping
//! groups (QSM §3; the pull architecture of §4, Fig. 9–10; the lessons of
//! §5.1–§5.5 and §6).
//!
//! # The protocol
//!
//! * **Groups and regions (§3, Fig. 3).** A node belongs to many groups;
//!   nodes with the same group membership form a *region*, named by the
//!   multicast address its members listen on. The membership service (the
//!   paper's CMS, outside this crate) hands each node views:
//!   [`Node::install_groups`](crate::node::Node::install_groups) with the
//!   [`RegionView`]s the node is a member of or sends to, and the
//!   [`GroupView`]s (group → the regions it spans). A multicast to a group is
//!   sent once per region ([`Destination::Group`](crate::addr::Destination)
//!   of the region's address). Messages of different groups that meet in a
//!   region share the region's sink, so they leave aggregated in one
//!   datagram, and share its sequence space: each (sender, region) pair is
//!   one *stream* numbered from 1. Receivers keep state per stream, never per
//!   group ("recovery is per region, oblivious to groups"); each record also
//!   carries the group and the per-group number the application sees.
//! * **Token rings (§3, Fig. 4–5).** A region is cut into *partitions* of at
//!   most `partition_size` (default 25) consecutive members in id order
//!   ([`region`]). Each partition leader (or, after a failure, the member
//!   that regenerated its token: see below) releases a token into its
//!   partition every `token_period` (QSM used 1/s); each member merges its
//!   receive state into it ([`token`]): per sender, MaxContiguous, the
//!   highest number seen, up to `k` ranges missed by everyone, and the
//!   region stability (garbage collection). Independently, the region
//!   leader releases a token around the partition leaders, each merging its
//!   partition's last aggregate: the region's aggregate (Fig. 5's two-level
//!   hierarchy). Partition leaders seed their next partition token with the
//!   region's stability and highest numbers seen, so members learn what
//!   other partitions saw. A token is
//!   *created when the sink pulls it*, from fresh state: the node registers a
//!   feed with the successor's sink and merges its own entries only when the
//!   datagram is built (§6 insight 2.4, "act on fresh state").
//! * **Cooperative caching and local recovery (§3, Fig. 6).** Each message
//!   is cached by at most 5 members of each partition (rendezvous hashing
//!   over the sorted member set: [`cache`]), and partition `seq mod P` is its
//!   caching partition. When the token shows a member that it misses a
//!   message, the member asks a holder in its own partition (*peer*
//!   recovery); if it is a holder itself, a holder in the caching partition
//!   (*partition* recovery; a holder of the caching partition asks another
//!   partition). The token's ranges are the messages *every* member misses;
//!   the region leader hands them to the sender with the round's aggregate,
//!   and only those the sender multicasts again (*sender* recovery: "if an
//!   entire region is missing a message, the sender becomes involved").
//! * **Flow control and cleanup.** When the token returns, the region leader
//!   sends each sender the region's aggregate (`QsmAck`). The sender frees
//!   its copies up to the region's MaxContiguous and limits unacknowledged
//!   messages per region to `window` ([`Error::Full`](crate::node::Error::Full) beyond: backpressure).
//!   Holders drop their copies once the next token tells them the message
//!   is stable in the region; a multicast is one copy per region, so each
//!   copy is gone once it is stable in its region, i.e. the message is gone
//!   from every cache once stable in every region of its group.
//! * **Guarantee.** Per-sender FIFO reliable delivery to every live member:
//!   a member delivers a stream in sequence order, without gaps
//!   ([`Event::GroupDelivered`](crate::node::Event::GroupDelivered); the
//!   issue calls it `Delivered`, but that name is total order's utoDeliver).
//!   A sender that is a member of the group delivers its own message when
//!   `multicast` accepts it.
//!
//! # Decisions where the paper is vague or where we deviate
//!
//! * **Two levels only.** Partition rings and one ring of partition
//!   leaders, with independent tokens at the same period, the region's
//!   half a period after the partitions' (so it carries fresh partition
//!   aggregates); deeper hierarchies (regions of thousands) are not built.
//! * **Caching.** Every partition's holders keep a message until it is
//!   stable in the region (the paper lets non-caching partitions drop it
//!   once stable in the partition); the caching partition only routes
//!   recovery. This costs a holder ≈ 5/25 of the unstable messages.
//! * **Failures do not stall a ring (token-loss detection).** QSM relies
//!   on its CMS to remove a crashed member; until that view comes a crash
//!   would stop its ring, so we added (the paper only says that "if a
//!   failure occurs, it requires 2 token rounds before repair"):
//!   - *Pass acknowledgements.* A member that receives a token answers
//!     the member that passed it (`QsmPass`, 0x34). The passer keeps the
//!     token as it arrived and passes it again every half period until
//!     answered (a lost token no longer costs a round); after
//!     `max(suspect_after periods, suspect_min)` (defaults 3 periods and
//!     2 s: QSM §5.3's receiver sleeps 0.5 s and is alive) without an
//!     answer it *skips*
//!     the silent member and passes to the next one in ring order. Any
//!     token or acknowledgement from a skipped member ends the skipping.
//!     On the ring of partitions the skip lands on the next member of the
//!     dead leader's partition, which hands the token to whoever now
//!     releases that partition's ring.
//!   - *Regeneration.* A member that sees no token of its ring for that
//!     timeout plus `1 + position` periods (`position` after the
//!     nominal releaser: the first live member after a dead releaser acts
//!     first, one period before the next) regenerates it: it raises the
//!     ring's *generation*, becomes its releaser, releases a round at once
//!     from its own fresh state and every period after. Tokens carry
//!     (view epoch, generation, releaser); a token of another epoch, a
//!     lower generation, or the same generation from a lower releaser id
//!     (two members that regenerated at once) is stale: ignored, and its
//!     passer is told the current generation in the acknowledgement, so
//!     it follows too (a superseded releaser stops releasing). A member
//!     that takes over a partition's ring also stands for it on the ring
//!     of partitions (and regenerates that one if its releaser is gone).
//!   - *Stability counts the live members only.* A skipped member's state
//!     is not in the aggregate, so the region's stability — and with it
//!     garbage collection and the sender's window — moves on without it:
//!     the guarantee is to live members, and the window does not wait for
//!     the CMS. The price: a member skipped while alive (a false
//!     suspicion needs a pause longer than the timeout, or every pass and
//!     acknowledgement of it lost: at 15 % loss and 3 periods ≈ 0.28⁶ per
//!     hop and round) may find
//!     copies it lacks gone; it then moves its stream's anchor up
//!     (`QsmStats::abandoned` counts the messages; the tests assert 0).
//!   - All of it is deterministic (the host's time, per-half-period
//!     checks), and bounded per check by the ring's size.
//! * **Trust.** Tokens are taken from members of the ring only (naming a
//!   releaser on the ring), pass acknowledgements likewise, and
//!   acknowledgements to a sender from members of the region only (since a
//!   regenerated region token may be released by any of them); beyond
//!   that, QSM records are authenticated only as every frame is (cluster
//!   id, integrity check): a member can forge a generation (up to
//!   `u32::MAX`, after which ties go by releaser id) or an aggregate.
//! * **One pool copy per region** a multicast spans (no shared,
//!   reference-counted payloads).
//! * **Receivers pull, holders answer.** Members ask the deterministic
//!   holder for a message they miss (a `QsmRequest`) instead of holders
//!   pushing to whoever the token says misses it: the token need not name
//!   members, and an answer goes only where it is needed. A holder that
//!   lacks the message ignores the request — it is missing it too and
//!   recovers it one level up; the requester asks again at the next visit
//!   of the token, rotating among the holders by round.
//! * **Tail losses.** A message lost by everyone at the tail of a stream is
//!   invisible to the token (nobody saw it, so nobody misses it). When an
//!   acknowledgement of round `q + 2` or later still shows `max_seen` below
//!   what the sender had sent when the acknowledgement of round `q`
//!   arrived — messages older than the whole round — the sender
//!   re-multicasts up to 16 of them. A sender that never got any
//!   acknowledgement (the region missed all its messages) re-multicasts
//!   its oldest ones every four token periods. Nothing is re-sent while
//!   acknowledgements merely stop (a token held by a sleeping member).
//! * **Views and the flush.** The paper leaves the flush to its CMS; we
//!   decided on a flush that runs on the protocol's own machinery instead
//!   of a separate exchange phase, because a stream is per (sender,
//!   region) and regions are named by their multicast address:
//!   - a region whose address stays in the new view keeps its streams:
//!     the sender keeps its numbering (and its per-group numbers for the
//!     groups that stay) and its unacknowledged copies, each member that
//!     stays keeps its received state and cached copies. So a stream is
//!     never cut: the old view's messages come before the new view's in
//!     the same sequence space, and per-sender FIFO holds across the
//!     boundary without renumbering. The new view's tokens then aggregate
//!     what the survivors hold (the "exchange": MaxContiguous, gaps, and
//!     `stable`, which now also carries the highest point any member
//!     cleaned up to), and recovery fills every survivor's gaps from
//!     whoever holds a copy: every other visit a member asks the holder
//!     the *previous* view placed the copy on (if it is still a member),
//!     and a stream that makes no progress for 3 visits asks the sender,
//!     who multicasts again what it still has (re-placed copies, or
//!     every holder lost it). Token rounds, pending tokens and queued
//!     work restart with the view (they name ring positions).
//!   - A crashed or departed sender's stream stays too: survivors keep
//!     recovering it from each other's caches, so every survivor delivers
//!     every message some holder has (the same prefix at all of them).
//!     The residual: a message that reached only non-holders (they free
//!     their copy on delivery: cooperative caching) and whose sender
//!     failed before any holder got it cannot be recovered; the members
//!     that miss it stop at that gap (this needs every holder of every
//!     partition to lose the same copy at once and the sender to fail
//!     within a token round).
//!   - A member that joins a region mid-stream (not a member of the
//!     region in its previous view, or a first view with epoch > 1; epoch
//!     1 is the system's initial view, where every stream starts at 1)
//!     holds the region's stability back from its first token visit
//!     (MaxContiguous 0), then anchors each stream at the `stable` point
//!     the token carries, waits 3 visits (the anchor may still move up as
//!     higher cleaned points arrive from other partitions) and delivers
//!     from there. It thus delivers every message multicast after it
//!     joined, possibly preceded by older ones not yet stable — never
//!     out of order. A stream the token shows stable beyond what a member
//!     holds (it was not counted: see the token ring below) moves its
//!     anchor up (`QsmStats::abandoned`) rather than asking forever.
//!   - A region that leaves the view is dropped with its streams (its
//!     members leave the groups it carried). Regions are matched by
//!     address only: a CMS that moves a member to another region of the
//!     same group must keep the address, or the member's in-flight
//!     messages of that region are lost to it.
//!   - All of it is bounded: `install_groups` is O(MAX_REGIONS +
//!     MAX_STREAMS · RING + GROUPS); the flush itself proceeds in token
//!     visits.
//! * **No replay window for QSM-only frames of non-cluster nodes.** Most
//!   QSM peers are not TOB cluster members; their frames are admitted when
//!   they carry QSM records only (cluster id and integrity still checked).
//!   Every QSM record is idempotent (duplicates are recognised by stream
//!   sequence numbers, token rounds), so replays cost work, not safety.
//! * **Memory is fixed, and only where asked for.** The node's const
//!   generics `GROUPS` (group-table entries of [`GROUP_ENTRY_BYTES`] bytes)
//!   and `RING` (messages a sender keeps per region, a receiver per stream)
//!   size QSM's state; both default to 0, so builds that do not use QSM
//!   (and every existing node type) pay only a few KiB of fixed state.
//!   [`HostNode`](crate::node::HostNode) holds 8192 groups and rings of
//!   256. Streams and regions have the fixed capacities below. None of it
//!   grows with the number of groups a node does not send to: receivers
//!   keep state per stream (sender, region), never per group.

pub mod cache;
pub mod region;
pub mod token;

pub use region::{Region, RegionView, ViewError, MAX_REGION_MEMBERS};
pub use token::{SeqRange, TokenEntry, MAX_RANGES};

use crate::addr::{GroupId, NodeId};
use crate::pool::Handle;
use crate::time::{Duration, Instant};

/// Most regions a node knows (is a member of, or sends to).
pub const MAX_REGIONS: usize = 4;
/// Most (region, sender) streams a node receives at once: the senders of
/// its region (a node is a member of exactly one region).
pub const MAX_STREAMS: usize = 4;
/// Queued point-to-point recovery work (requests, forwards) per sink.
pub const RECOVERY_QUEUE: usize = 16;
/// Queued control work (tokens, acks) per sink.
pub const CONTROL_QUEUE: usize = 4;
/// Bytes of state per group.
pub const GROUP_ENTRY_BYTES: usize = core::mem::size_of::<GroupEntry>();

/// QSM's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct QsmConfig {
    /// Largest partition (the paper's rings never exceeded about 25).
    pub partition_size: usize,
    /// Missing ranges per sender in a token (`k`, 1 ..= [`MAX_RANGES`]).
    pub ranges: usize,
    /// Period of token release by the region leader (QSM: 1 s).
    pub token_period: Duration,
    /// Holders per partition (at most 5).
    pub replication: usize,
    /// Unacknowledged messages a sender may have per region (the node's
    /// `RING` at most: the sender's and receivers' rings have `RING`
    /// entries per region / stream; a larger value counts as `RING`).
    pub window: u32,
    /// Recovery requests a member sends per token visit.
    pub requests_per_visit: u32,
    /// Token periods without a sign of a ring member before it is treated
    /// as dead: a member that does not acknowledge a token passed to it
    /// (passed again every half period) is skipped after this many; a
    /// member that sees no token for this many periods plus its position
    /// after the ring's releaser regenerates the token (at least 1).
    pub suspect_after: u32,
    /// The shortest such silence, whatever the period (a live member that
    /// pauses — QSM §5.3's receiver sleeps 0.5 s — must not be skipped:
    /// stability would move on without it).
    pub suspect_min: Duration,
}

impl QsmConfig {
    /// How long a ring member may stay silent before it is skipped:
    /// `max(suspect_after · token_period, suspect_min)`.
    pub fn suspect_timeout(&self) -> Duration {
        let t = self
            .token_period
            .as_micros()
            .saturating_mul(u64::from(self.suspect_after.max(1)));
        Duration::from_micros(t.max(self.suspect_min.as_micros()))
    }
}

impl Default for QsmConfig {
    fn default() -> Self {
        QsmConfig {
            partition_size: 25,
            ranges: 4,
            token_period: Duration::from_secs(1),
            replication: cache::MAX_HOLDERS,
            window: 256,
            requests_per_visit: 64,
            suspect_after: 3,
            suspect_min: Duration::from_secs(2),
        }
    }
}

impl QsmConfig {
    /// Whether the values are usable.
    pub fn is_valid(&self) -> bool {
        self.partition_size > 0
            && (1..=MAX_RANGES).contains(&self.ranges)
            && self.token_period > Duration::ZERO
            && (1..=cache::MAX_HOLDERS).contains(&self.replication)
            && self.window >= 1
            && self.suspect_after >= 1
    }
}

/// A group as the CMS describes it: the regions it spans, as a bit mask
/// over the `regions` slice given to `install_groups` (bit `i` = `regions[i]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GroupView {
    /// The group.
    pub group: GroupId,
    /// Regions it spans.
    pub regions: u8,
}

/// Per-group state: only the groups this node sends to need it, but it is
/// kept for every group of the view (12 bytes each).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct GroupEntry {
    pub group: u32,
    pub next_gseq: u32,
    pub regions: u8,
}

/// Replaces the group table `table` (sorted by id) with `new` (sorted,
/// strictly increasing, at most `G`), keeping the next per-group number
/// of every group in both, so a sender that stays in a group keeps its
/// numbering across views; new groups start at 1. In place (the table may
/// hold 8192 groups: no second copy), O(|table| log |new| + |new|).
pub(crate) fn merge_groups<const G: usize>(
    table: &mut heapless::Vec<GroupEntry, G>,
    new: &[GroupView],
) {
    table.retain(|e| new.binary_search_by_key(&e.group, |g| g.group.0).is_ok());
    let kept = table.len();
    while table.len() < new.len() {
        if table.push(GroupEntry::default()).is_err() {
            break; // more than G: the caller refused such views already
        }
    }
    let mut i = kept;
    for (j, g) in new.iter().enumerate().rev() {
        // The kept entries not yet read are [0, i) with i <= j + 1 (they
        // are a subset of `new`), and every position written so far is
        // > j: nothing unread is overwritten.
        let next_gseq = match i.checked_sub(1).and_then(|k| table.get(k)) {
            Some(e) if e.group == g.group.0 => {
                i -= 1;
                e.next_gseq
            }
            _ => 1,
        };
        if let Some(slot) = table.get_mut(j) {
            *slot = GroupEntry {
                group: g.group.0,
                next_gseq,
                regions: g.regions,
            };
        }
    }
}

/// A message a sender keeps until its region acknowledges it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SendSlot {
    pub seq: u32,
    pub handle: Handle,
    pub group: u32,
    pub gseq: u32,
    pub sent_at: Instant,
}

/// A sender's stream to one region.
pub(crate) struct SendStream<const R: usize> {
    /// Next sequence number to assign (from 1).
    pub next_seq: u32,
    /// Highest sequence number sent once.
    pub sent_upto: u32,
    /// The region's MaxContiguous as last acknowledged.
    pub acked: u32,
    pub ring: [Option<SendSlot>; R],
    pub retransmit: heapless::Deque<u32, 64>,
    /// The highest number the region said it saw.
    pub last_max_seen: u32,
    /// When an acknowledgement last showed progress (tail rule).
    pub progress_at: Instant,
    /// Acknowledgements received from the region.
    pub acks: u64,
    /// Tail rule: the round of an earlier acknowledgement and what had
    /// been sent when it arrived.
    pub mark_round: u32,
    pub mark_sent: u32,
}

impl<const R: usize> SendStream<R> {
    pub fn new() -> Self {
        SendStream {
            next_seq: 1,
            sent_upto: 0,
            acked: 0,
            ring: [None; R],
            retransmit: heapless::Deque::new(),
            last_max_seen: 0,
            progress_at: Instant::ZERO,
            acks: 0,
            mark_round: 0,
            mark_sent: 0,
        }
    }
    pub fn slot(&self, seq: u32) -> Option<&SendSlot> {
        self.ring
            .get(seq as usize % R.max(1))
            .and_then(Option::as_ref)
            .filter(|s| s.seq == seq)
    }
    /// Messages sent or queued and not yet acknowledged.
    pub fn unacked(&self) -> u32 {
        self.next_seq.saturating_sub(1).saturating_sub(self.acked)
    }
}

/// A message a receiver holds: waiting for delivery, or cached.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Held {
    pub seq: u32,
    pub handle: Handle,
    pub group: u32,
    pub gseq: u32,
    pub delivered: bool,
}

/// A receiver's state of one (sender, region) stream.
pub(crate) struct RecvStream<const R: usize> {
    /// Index of the region in the node's region table.
    pub region: u8,
    pub sender: NodeId,
    /// MaxContiguous: every message `<= mc` was received.
    pub mc: u32,
    /// Every message `<= delivered` was handed to the application.
    pub delivered: u32,
    /// Cached copies `<= cleaned` were dropped.
    pub cleaned: u32,
    pub max_seen: u32,
    pub ring: [Option<Held>; R],
    /// Whether the stream's starting point is known. A member that joined
    /// the region in the current view learns it from the token (the
    /// region's stability: see the module docs on the flush) and neither
    /// delivers nor reports the stream before.
    pub anchored: bool,
    /// Token visits since `mc` last moved while something was missing
    /// (after a few, requests go to the sender: the holders lack it).
    pub stall: u8,
    /// `mc` when `stall` was last reset.
    pub stall_mc: u32,
    /// Token visits a joiner's stream waits after its anchor before it
    /// delivers: the anchor may still move up meanwhile (a later visit may
    /// carry a higher stability from elsewhere in the region), and moving
    /// it before anything was delivered leaves no gap.
    pub settle: u8,
}

impl<const R: usize> RecvStream<R> {
    pub fn new(region: u8, sender: NodeId) -> Self {
        RecvStream {
            region,
            sender,
            mc: 0,
            delivered: 0,
            cleaned: 0,
            max_seen: 0,
            ring: [None; R],
            anchored: true,
            stall: 0,
            stall_mc: 0,
            settle: 0,
        }
    }
    /// Sets the starting point of a joiner's stream: everything `<= at` is
    /// treated as received and delivered (it predates the member's view).
    /// Copies at or below `at`, or too far above it for the ring, are
    /// returned through `free` (O(R)).
    pub fn anchor(&mut self, at: u32, mut free: impl FnMut(Held)) {
        self.anchored = true;
        self.mc = at;
        self.delivered = at;
        self.cleaned = at;
        self.max_seen = self.max_seen.max(at);
        self.stall = 0;
        self.stall_mc = at;
        for slot in self.ring.iter_mut() {
            if slot.is_some_and(|h| h.seq <= at || h.seq > at.saturating_add(R as u32)) {
                if let Some(h) = slot.take() {
                    free(h);
                }
            }
        }
        while self.held(self.mc.saturating_add(1)).is_some() && self.mc < u32::MAX {
            self.mc += 1;
        }
    }
    pub fn held(&self, seq: u32) -> Option<&Held> {
        self.ring
            .get(seq as usize % R.max(1))
            .and_then(Option::as_ref)
            .filter(|h| h.seq == seq)
    }
    pub fn has(&self, seq: u32) -> bool {
        seq <= self.mc || self.held(seq).is_some()
    }
}

/// A token waiting to be passed on (or, at the leader, to be released).
#[derive(Clone, Debug, Default)]
pub(crate) struct TokenBuf {
    pub round: u32,
    pub released_at: u64,
    pub entries: heapless::Vec<TokenEntry, MAX_STREAMS>,
}

/// Most members a ring member suspects at once (it skips them when it
/// passes the token).
pub const MAX_SUSPECTS: usize = 4;

/// One node's bookkeeping of one token ring of a region (a partition's
/// ring, or the ring of partitions), reset with each view.
#[derive(Clone, Debug, Default)]
pub(crate) struct Leader {
    /// At the releaser, the last round released; at a member, the last
    /// round seen (older ones are stale).
    pub round: u32,
    /// At the releaser, the last round completed (repeated copies of a
    /// token, passed again, are ignored).
    pub completed: u32,
    /// The aggregate of the last completed round.
    pub last: heapless::Vec<TokenEntry, MAX_STREAMS>,
    /// The token generation this node follows (raised by regeneration).
    pub generation: u32,
    /// Who releases this generation's rounds (`None`: the ring's nominal
    /// leader, as the view says).
    pub releaser: Option<NodeId>,
    /// When this node last saw a sign of the ring's token (received one,
    /// released one, or the view started).
    pub last_token: Option<Instant>,
    /// The token this node passed on and has no [`Work::Pass`] for yet:
    /// (to, round, half-periods waited), and the token as it arrived (to
    /// pass it again).
    pub awaiting: Option<(NodeId, u32, u32)>,
    pub sent: Option<TokenBuf>,
    /// Members this node skips when passing the token (no pass
    /// acknowledgement for `suspect_after` periods), until heard from.
    pub suspects: heapless::Vec<NodeId, MAX_SUSPECTS>,
}

/// Point-to-point QSM work queued for a sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Work {
    /// Pass region `r`'s pending token of `level` on.
    Token { region: u8, level: u8 },
    /// Send the region's last aggregate to `sender`.
    Ack { region: u8, sender: NodeId },
    /// Ask for a range of a stream.
    Request {
        region: u32,
        sender: NodeId,
        first: u32,
        count: u16,
    },
    /// Forward a held message of stream `stream`.
    Forward { stream: u8, seq: u32 },
    /// Acknowledge a token of region `r` at `level` (naming the
    /// generation this node follows).
    Pass {
        region: u8,
        level: u8,
        generation: u32,
        releaser: u16,
        round: u32,
    },
}

/// What QSM measured, for hosts and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct QsmStats {
    /// Messages accepted by `multicast`.
    pub multicasts: u64,
    /// Multicasts refused with `Full` (flow control or storage).
    pub refused: u64,
    /// Messages delivered to the application.
    pub delivered: u64,
    /// Duplicate copies received (already held or delivered).
    pub duplicates: u64,
    /// Copies dropped on arrival for lack of room.
    pub dropped: u64,
    /// Rounds of the ring of partition leaders completed (at a region leader).
    pub rounds: u64,
    /// Sum of their round-trip times, µs.
    pub rtt_sum_us: u64,
    /// Largest of them, µs.
    pub rtt_max_us: u64,
    /// Partition rounds completed (at a partition leader).
    pub partition_rounds: u64,
    /// Sum of partition round-trip times, µs.
    pub partition_rtt_sum_us: u64,
    /// Largest partition round-trip time, µs.
    pub partition_rtt_max_us: u64,
    /// Messages acknowledged by their region (at a sender).
    pub acked: u64,
    /// Sum of multicast-to-acknowledgement times, µs.
    pub ack_latency_sum_us: u64,
    /// Largest multicast-to-acknowledgement time, µs.
    pub ack_latency_max_us: u64,
    /// Requests sent to a holder of the own partition (peer recovery).
    pub requests_peer: u64,
    /// Requests sent to the caching partition (partition recovery).
    pub requests_partition: u64,
    /// Messages the token reported missed by the whole region (at a sender).
    pub lost_reported: u64,
    /// Messages forwarded to a requester by a holder.
    pub forwards: u64,
    /// Messages the sender multicast again (requested, or tail).
    pub remulticasts: u64,
    /// Cached copies dropped once stable.
    pub cleaned: u64,
    /// Cached copies evicted early to make room (their holders lost them).
    pub evicted: u64,
    /// Work dropped because no sink could be had for its destination.
    pub no_sink: u64,
    /// Tokens this node regenerated (no token for too long).
    pub regenerated: u64,
    /// Ring members this node started to skip (no pass acknowledgement).
    pub suspected: u64,
    /// Tokens passed again for want of an acknowledgement.
    pub token_retries: u64,
    /// Messages a member skipped because the region reported them stable
    /// without counting it (it was skipped as dead by the token ring, or a
    /// view raced its join): zero unless a live member was suspected.
    pub abandoned: u64,
}

/// How many bytes QSM's state takes (fixed at construction).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct QsmMemory {
    /// Bytes per group-table entry.
    pub per_group: usize,
    /// Group-table capacity.
    pub groups: usize,
    /// Bytes per region (view, sender ring, token state of both levels),
    /// regardless of its number of groups.
    pub per_region: usize,
    /// Bytes per receive stream.
    pub per_stream: usize,
    /// Bytes of the per-sink work queues.
    pub work_queues: usize,
    /// Everything QSM holds inside the node (payload bytes live in the
    /// node's pool, counted separately).
    pub total: usize,
}

/// Where a member sends its request for a message it misses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RecoveryTarget {
    /// A holder in the member's own partition.
    Peer(NodeId),
    /// A holder in the message's caching partition.
    Partition(NodeId),
    /// Nobody to ask: the only partition's holders miss it, so the whole
    /// region may have: the sender re-multicasts what the token reports
    /// missed by every member.
    Sender(NodeId),
}

/// The recovery path of message `(sender, seq)` for member `me` of
/// `region` ("as local as possible", QSM §3 Fig. 6); `attempt` rotates among
/// the holders. `None` when `me` is not a member.
pub fn recovery_target(
    region: &Region,
    me: NodeId,
    sender: NodeId,
    seq: u32,
    replication: usize,
    attempt: u32,
) -> Option<RecoveryTarget> {
    let idx = region.index_of(me)?;
    let own = region.partition_of(idx);
    let mut out = [NodeId(0); cache::MAX_HOLDERS];
    let part = region.partition(own);
    let n = cache::holders(sender, seq, part, replication, &mut out);
    if n > 0 && !out[..n].contains(&me) {
        return Some(RecoveryTarget::Peer(out[attempt as usize % n]));
    }
    let parts = region.partitions();
    let cp = cache::caching_partition(seq, parts);
    // A holder asks the caching partition; a holder of the caching
    // partition asks another partition (rotating by attempt), since every
    // partition's holders keep the message until it is stable in the region.
    let target = if cp != own {
        Some(cp)
    } else if parts > 1 {
        Some((own + 1 + attempt as usize % (parts - 1)) % parts)
    } else {
        None
    };
    if let Some(p) = target {
        let n = cache::holders(sender, seq, region.partition(p), replication, &mut out);
        if n > 0 {
            return Some(RecoveryTarget::Partition(out[attempt as usize % n]));
        }
    }
    Some(RecoveryTarget::Sender(sender))
}

/// The QSM component of a node: `SINKS` bounds the work queues, `GROUPS`
/// the group table, `R` the rings (messages per region at a sender, per
/// stream at a receiver).
pub(crate) struct Qsm<const SINKS: usize, const GROUPS: usize, const R: usize> {
    pub config: QsmConfig,
    pub epoch: u32,
    pub regions: heapless::Vec<Region, MAX_REGIONS>,
    /// Sorted by group id.
    pub groups: heapless::Vec<GroupEntry, GROUPS>,
    /// Parallel to `regions`: this node's stream to each region it sends to
    /// (allocated for every region; unused ones cost their ring).
    pub send: [SendStream<R>; MAX_REGIONS],
    pub streams: heapless::Vec<RecvStream<R>, MAX_STREAMS>,
    /// Parallel to `regions`, per level (0: partition ring, 1: ring of
    /// partition leaders): the token this node must pass on.
    pub pending: [[Option<TokenBuf>; 2]; MAX_REGIONS],
    /// Parallel to `regions`, per level: round bookkeeping; `last` is, at
    /// level 0, a partition leader's last partition aggregate, and at level
    /// 1 the region's (at the region leader: the last completed round,
    /// `stable` = its MaxContiguous; at another partition leader: the last
    /// region token seen).
    pub leader: [[Leader; 2]; MAX_REGIONS],
    /// Parallel to `regions`: the sink of the region's multicast address.
    pub region_sink: [Option<u16>; MAX_REGIONS],
    pub control: [heapless::Deque<Work, CONTROL_QUEUE>; SINKS],
    pub recovery: [heapless::Deque<Work, RECOVERY_QUEUE>; SINKS],
    /// Pool bytes held by received messages.
    pub rx_bytes: usize,
    /// Pool bytes held by the sender's rings.
    pub tx_bytes: usize,
    pub stats: QsmStats,
    /// Next token release / tail check.
    pub next_tick: Option<Instant>,
    /// Whether the next tick is the region phase (else the partition one).
    pub tick_phase: bool,
    /// Parallel to `regions`: the region's previous view, while this node
    /// was a member of it (the flush asks its holders for old messages).
    pub prev: [Option<Region>; MAX_REGIONS],
    /// Parallel to `regions`: whether this node joined the region in the
    /// current view (its new streams wait for an anchor from the token).
    pub joined: [bool; MAX_REGIONS],
}

impl<const SINKS: usize, const GROUPS: usize, const R: usize> Qsm<SINKS, GROUPS, R> {
    pub fn new() -> Self {
        Qsm {
            config: QsmConfig::default(),
            epoch: 0,
            regions: heapless::Vec::new(),
            groups: heapless::Vec::new(),
            send: core::array::from_fn(|_| SendStream::new()),
            streams: heapless::Vec::new(),
            pending: core::array::from_fn(|_| [None, None]),
            leader: core::array::from_fn(|_| [Leader::default(), Leader::default()]),
            region_sink: [None; MAX_REGIONS],
            control: core::array::from_fn(|_| heapless::Deque::new()),
            recovery: core::array::from_fn(|_| heapless::Deque::new()),
            rx_bytes: 0,
            tx_bytes: 0,
            stats: QsmStats::default(),
            next_tick: None,
            tick_phase: false,
            prev: core::array::from_fn(|_| None),
            joined: [false; MAX_REGIONS],
        }
    }

    pub fn is_active(&self) -> bool {
        !self.regions.is_empty()
    }

    pub fn region_by_address(&self, address: u32) -> Option<usize> {
        self.regions.iter().position(|r| r.address.0 == address)
    }

    pub fn stream_index(&self, region: u8, sender: NodeId) -> Option<usize> {
        self.streams
            .iter()
            .position(|s| s.region == region && s.sender == sender)
    }

    pub fn group_index(&self, group: GroupId) -> Option<usize> {
        self.groups.binary_search_by_key(&group.0, |g| g.group).ok()
    }

    pub fn memory() -> QsmMemory {
        use core::mem::size_of;
        let per_region = size_of::<Region>()
            + size_of::<SendStream<R>>()
            + 2 * size_of::<Option<TokenBuf>>()
            + 2 * size_of::<Leader>()
            + size_of::<Option<u16>>()
            + size_of::<Option<Region>>()
            + size_of::<bool>();
        let work_queues = SINKS
            * (size_of::<heapless::Deque<Work, CONTROL_QUEUE>>()
                + size_of::<heapless::Deque<Work, RECOVERY_QUEUE>>());
        QsmMemory {
            per_group: GROUP_ENTRY_BYTES,
            groups: GROUPS,
            per_region,
            per_stream: size_of::<RecvStream<R>>(),
            work_queues,
            total: size_of::<Self>(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn region(n: u16, size: usize) -> Region {
        let m: Vec<NodeId> = (1..=n).map(NodeId).collect();
        Region::new(
            &RegionView {
                address: GroupId(77),
                members: &m,
            },
            size,
        )
        .unwrap()
    }

    /// Each recovery path: a non-holder asks a holder of its partition; a
    /// holder asks the caching partition; a holder of the caching partition
    /// asks the sender.
    #[test]
    fn recovery_is_as_local_as_possible() {
        let r = region(100, 25); // 4 partitions
        let sender = NodeId(500);
        let replication = 5;
        for seq in 1..200u32 {
            let cp = cache::caching_partition(seq, r.partitions());
            for (i, &me) in r.members().iter().enumerate() {
                let own = r.partition_of(i);
                let holder = cache::is_holder(sender, seq, r.partition(own), replication, me);
                let t = recovery_target(&r, me, sender, seq, replication, seq).unwrap();
                match t {
                    RecoveryTarget::Peer(h) => {
                        assert!(!holder);
                        assert!(r.partition(own).contains(&h));
                        assert!(cache::is_holder(sender, seq, r.partition(own), 5, h));
                    }
                    RecoveryTarget::Partition(h) => {
                        assert!(holder);
                        let hp = r.partition_of(r.index_of(h).unwrap());
                        assert_ne!(hp, own);
                        if own != cp {
                            assert_eq!(hp, cp, "a holder asks the caching partition");
                        }
                        assert!(cache::is_holder(sender, seq, r.partition(hp), 5, h));
                    }
                    RecoveryTarget::Sender(_) => panic!("4 partitions: never the sender"),
                }
            }
        }
        assert_eq!(recovery_target(&r, NodeId(999), sender, 1, 5, 0), None);
        // One partition: a holder that misses it waits for the sender.
        let one = region(4, 25);
        assert_eq!(
            recovery_target(&one, NodeId(1), sender, 3, 5, 0),
            Some(RecoveryTarget::Sender(sender))
        );
    }

    /// The flush's in-place merge of the group table keeps the numbering
    /// of the groups that stay, starts new ones at 1, drops the others,
    /// and matches a naive model on random tables.
    #[test]
    fn group_numbering_survives_a_view_change() {
        let gv = |id: u32, regions: u8| GroupView {
            group: crate::addr::GroupId(id),
            regions,
        };
        let mut t: heapless::Vec<GroupEntry, 16> = heapless::Vec::new();
        merge_groups(&mut t, &[gv(2, 1), gv(5, 1), gv(9, 1)]);
        for e in t.iter_mut() {
            e.next_gseq = e.group * 10;
        }
        merge_groups(&mut t, &[gv(1, 2), gv(5, 3), gv(7, 1), gv(9, 1), gv(12, 1)]);
        let got: Vec<(u32, u32, u8)> = t
            .iter()
            .map(|e| (e.group, e.next_gseq, e.regions))
            .collect();
        assert_eq!(
            got,
            [(1, 1, 2), (5, 50, 3), (7, 1, 1), (9, 90, 1), (12, 1, 1)]
        );
        merge_groups(&mut t, &[]);
        assert!(t.is_empty());
        // Random tables against a map.
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut t: heapless::Vec<GroupEntry, 64> = heapless::Vec::new();
        let mut model = std::collections::BTreeMap::<u32, u32>::new();
        for _ in 0..200 {
            let mut ids: Vec<u32> = (0..rnd() % 64).map(|_| (rnd() % 100) as u32).collect();
            ids.sort_unstable();
            ids.dedup();
            let new: Vec<GroupView> = ids.iter().map(|&i| gv(i, 1)).collect();
            merge_groups(&mut t, &new);
            model.retain(|k, _| ids.contains(k));
            for &i in &ids {
                model.entry(i).or_insert(1);
            }
            let got: Vec<(u32, u32)> = t.iter().map(|e| (e.group, e.next_gseq)).collect();
            let want: Vec<(u32, u32)> = model.iter().map(|(&k, &v)| (k, v)).collect();
            assert_eq!(got, want);
            for (e, v) in t.iter_mut().zip(model.values_mut()) {
                let n = (rnd() % 1000) as u32 + 1;
                e.next_gseq = n;
                *v = n;
            }
        }
    }

    /// A joiner's anchor: everything at or below it counts as received
    /// and delivered, copies there (and beyond the ring's reach) are handed
    /// back for freeing, held copies just above extend MaxContiguous.
    #[test]
    fn anchoring_a_stream() {
        let mut pool = crate::pool::Pool::<4>::new();
        let handle = pool.store(b"x").unwrap();
        let h = |seq: u32| Held {
            seq,
            handle,
            group: 1,
            gseq: seq,
            delivered: false,
        };
        let mut st = RecvStream::<8>::new(0, NodeId(5));
        st.anchored = false;
        for seq in [2u32, 11, 12, 14, 31] {
            st.ring[seq as usize % 8] = Some(h(seq));
        }
        let mut freed = Vec::new();
        st.anchor(10, |x| freed.push(x.seq));
        freed.sort_unstable();
        assert_eq!(freed, [2, 31], "below the anchor, and beyond 10 + 8");
        assert!(st.anchored);
        assert_eq!((st.mc, st.delivered, st.cleaned), (12, 10, 10));
        assert!(st.has(14) && !st.has(13));
        // Moving it up past what is held frees those too.
        let mut freed = Vec::new();
        st.anchor(13, |x| freed.push(x.seq));
        freed.sort_unstable();
        assert_eq!(freed, [11, 12]);
        assert_eq!((st.mc, st.delivered), (14, 13));
    }

    #[test]
    fn per_group_state_fits_the_budget() {
        const { assert!(GROUP_ENTRY_BYTES <= 128) };
        const { assert!(8192 * GROUP_ENTRY_BYTES <= 1 << 20) };
        let m = Qsm::<64, 8192, 1024>::memory();
        assert_eq!(m.groups, 8192);
        assert!(m.total >= m.groups * m.per_group);
    }
}
