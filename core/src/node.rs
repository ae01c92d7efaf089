//! The node: the sans-IO engine a host drives.
//!
//! Data flows one way through it:
//!
//! ```text
//! receive:  handle_datagram ─▶ wire (open, Frame::new_checked) ─▶ admission
//!           (cluster, membership, anti-replay, room) ─▶ records applied ─▶ inbox ─▶ poll_event
//! send:     send / feeds register intents ─▶ sinks (BASEL ports + control policy)
//!           ─▶ poll_transmit pulls records into a FrameWriter ─▶ seal ─▶ datagram
//! ```
//!
//! This is QSM's single-threaded event core (§4, Fig. 7): the host is the I/O
//! loop, [`Node::poll_timeout`] is the alarm queue's head, and the pull
//! architecture of Fig. 9–10 decides what leaves: a sink is asked for a
//! datagram only when the host can send, and it then pulls from its queues in
//! priority order, generating control records at that moment from fresh
//! state (§6, insight 2.4 "act on fresh state").
//!
//! Decisions where the papers leave room:
//! * **Never hold on a timer when idle.** A ready sink sends whatever is
//!   waiting at once; aggregation only takes what is already queued (Nagle's
//!   and `linger.ms`' lesson). Holding is an explicit policy ([`Hold`]).
//! * **A rejected frame changes nothing.** A datagram is decoded and checked
//!   whole (every record parsed, room for its payloads reserved) before any
//!   record is applied; every rejection is counted by reason.
//! * **The header's view/epoch field carries the sender's incarnation** in
//!   this layer: the anti-replay window of a peer restarts when it comes back
//!   with a higher incarnation. Protocols with views carry their view ids in
//!   their own records.
//! * **Anti-replay window** of 64 frames per peer (as IPsec/DTLS): duplicates
//!   are dropped, frames reordered by more than 64 are dropped as stale.
//!
//! [`Hold`]: crate::control::Hold

mod bandwidth;
mod membership;
mod multicast;
mod sequencer;

pub use bandwidth::{BandwidthState, RATE_HEADROOM_DIVISOR};
pub use membership::ViewPolicy;
pub use sequencer::{MsgId, TobStatus, MAX_MEMBERS, NACK_SPAN, PER_ORIGIN};

use crate::addr::{Destination, GroupId, NodeId, Transmit};
use crate::control::{ControlPolicy, Readiness, TokenBucket, Window};
use crate::counters::{Counters, DropReason, SendReason};
use crate::feed::{Class, Feed, Item};
use crate::inbox::Inbox;
use crate::pledge::{Aggregation, AppId, Decision, PledgeOptions, Pledges};
use crate::pool::{Cursor, Handle, Pool};
use crate::qsm::{Qsm, QsmConfig};
use crate::queue::Queue;
use crate::queue::{
    Admission, Buffer, Congestion, Lqd, PacketMeta, Port, QueueLoad, QueueSpec, QueueView,
    RoundRobin, SchedPolicy, SchedState, StrictPriority,
};
use crate::reassembly::{FragmentOutcome, Key, Reassembly};
use crate::rng::Rng;
use crate::seq::Seq;
use crate::time::{Duration, Instant};
use crate::timer::{TimerKey, Timers};
use crate::wire::order::{
    KIND_FETCH, KIND_RECOVER, KIND_TOB_DATA, KIND_TOB_ORDER, KIND_VIEW_CHANGE, KIND_VIEW_INSTALLED,
    TOB_DATA_HEADER_LEN,
};
use crate::wire::{self, FrameWriter, Header, Integrity, MemberList, Record, RecordRepr};
use membership::Recovery;
use sequencer::{Tob, TobKind};

/// Reassembly slots per node (messages larger than a datagram in flight towards it).
pub const REASSEMBLY_SLOTS: usize = 8;
/// Fragments smaller than this are not started at the end of a partly filled
/// datagram: the fragment goes first in the next one instead.
const MIN_FRAGMENT: usize = 64;
/// Anti-replay window, in frames.
const REPLAY_WINDOW: i32 = 64;

/// Errors of the application and host calls.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// A bounded queue or the payload pool is full: retry later (backpressure).
    Full,
    /// The payload is larger than the configured maximum message size.
    Oversized,
    /// The destination is not a member of the cluster (or is this node).
    NotMember,
    /// The group is unknown to this node.
    UnknownGroup,
    /// The caller's buffer is smaller than the MTU.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
    },
    /// The configuration or an argument is invalid; the text says which.
    InvalidConfig(&'static str),
    /// An operation of the same kind is under way (a bandwidth increase).
    Busy,
}

/// Scheduling policy of every sink's port across its four class queues
/// (BASEL §4.3 `schedPrio` + `postSchedAct`), indexed by [`Class`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Scheduling {
    /// Express > control > recovery > data, always (the default).
    StrictPriority,
    /// Deficit round robin with these byte quanta per class.
    Drr {
        /// Quantum of each class, in bytes per round.
        quanta: [u32; Class::COUNT],
    },
    /// Weighted round robin with these packet weights per class.
    Wrr {
        /// Packets per round of each class.
        weights: [u32; Class::COUNT],
    },
}

/// The port policy chosen at run time from [`Scheduling`].
#[derive(Clone, Copy, Debug)]
enum SinkScheduler {
    Strict(StrictPriority),
    RoundRobin(RoundRobin),
}

impl SchedPolicy for SinkScheduler {
    fn higher(&self, a: &QueueView<'_>, b: &QueueView<'_>) -> bool {
        match self {
            SinkScheduler::Strict(p) => p.higher(a, b),
            SinkScheduler::RoundRobin(p) => p.higher(a, b),
        }
    }
    fn post_sched_act(
        &mut self,
        served: usize,
        sent: &PacketMeta,
        state: &mut [SchedState],
        loads: &[QueueLoad],
    ) {
        match self {
            SinkScheduler::Strict(p) => p.post_sched_act(served, sent, state, loads),
            SinkScheduler::RoundRobin(p) => p.post_sched_act(served, sent, state, loads),
        }
    }
}

type SinkPort<const QUEUE: usize> = Port<Item, QUEUE, { Class::COUNT }, SinkScheduler>;

fn new_port<const QUEUE: usize>(scheduling: Scheduling) -> SinkPort<QUEUE> {
    let queues = core::array::from_fn(|_| Queue::new(QueueSpec::fifo(Congestion::packets(QUEUE))));
    let buffer = Buffer::new(queues, Congestion::unlimited(), Lqd);
    let (weights, policy) = match scheduling {
        Scheduling::StrictPriority => ([0; Class::COUNT], SinkScheduler::Strict(StrictPriority)),
        Scheduling::Drr { quanta } => (quanta, SinkScheduler::RoundRobin(RoundRobin::drr())),
        Scheduling::Wrr { weights } => (weights, SinkScheduler::RoundRobin(RoundRobin::wrr())),
    };
    Port::new(buffer, weights, policy)
}

/// BASEL's `class` field orders greater-first; ours names express first.
const fn urgency(class: Class) -> u8 {
    (Class::COUNT - 1 - class.index()) as u8
}

/// Rate limit of every sink, in bytes per second with a burst allowance.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RateLimit {
    /// Long-run rate.
    pub bytes_per_s: u64,
    /// Bytes that may leave at once after an idle period.
    pub burst: u64,
}

/// How a node is set up. All capacities are the node's const generics; this
/// holds the values that may differ between nodes of one build.
#[derive(Clone, Copy, Debug)]
pub struct Config<'a> {
    /// Cluster id: frames of other clusters are rejected.
    pub cluster: u32,
    /// This node.
    pub id: NodeId,
    /// Every member of the cluster, this node included, in any order.
    pub members: &'a [NodeId],
    /// Incarnation number: must grow each time the node restarts.
    pub incarnation: u32,
    /// Largest datagram, [`wire::MIN_MTU`] (512) ..= 65507 and at most the
    /// node's `MTU`.
    pub mtu: usize,
    /// Integrity schema (all nodes of a cluster use the same).
    pub integrity: Integrity,
    /// Seed of the node's random generator.
    pub seed: u64,
    /// Largest application message (fragmented above one datagram).
    pub max_message: usize,
    /// Heartbeat period; `None` sends none.
    pub heartbeat: Option<Duration>,
    /// A message whose fragments stop arriving is dropped after this.
    pub reassembly_timeout: Duration,
    /// Optional rate limit of each sink.
    pub rate: Option<RateLimit>,
    /// Optional window of unacknowledged bytes per sink (the protocol that
    /// owns the sink reports acknowledgements).
    pub window: Option<u64>,
    /// Scheduling across the class queues of each sink.
    pub scheduling: Scheduling,
    /// Undelivered total-order broadcasts this process may have at once
    /// (at most [`PER_ORIGIN`]; a batch counts as one); `broadcast` returns
    /// `Full` beyond.
    pub tob_window: usize,
    /// Retransmission and view-change retry period of the total order.
    pub tob_rto: Duration,
    /// Under contention — an own total-order message still waits in the
    /// sink unsent — small broadcasts are gathered into one batch of up to
    /// this many bytes (at most what one datagram carries), ordered and
    /// delivered as one unit (FastCast §3.5; see `node::sequencer`). `0`
    /// sends every broadcast on its own.
    pub tob_batch: usize,
    /// Built-in failure detector: a member not heard from for this long is
    /// suspected (`None`: only the host's `suspect` calls). Needs heartbeats.
    pub fd_timeout: Option<Duration>,
    /// How a view change decides it may go on.
    pub view_policy: ViewPolicy,
    /// Start outside the view and join it (a restarted process).
    pub join: bool,
    /// Link capacity for bandwidth allocation (FastCast `B`), bytes/s;
    /// `None` disables rate allocation (the data sink is not rate-limited).
    pub link_capacity: Option<u64>,
    /// How application messages to a peer are aggregated (Omaha pledge
    /// buffers by default; see [`crate::pledge`]).
    pub aggregation: Aggregation,
    /// QSM's multicast settings (see [`crate::qsm`]).
    pub qsm: QsmConfig,
}

impl<'a> Config<'a> {
    /// Defaults for a node `id` of a cluster of `members`.
    pub fn new(id: NodeId, members: &'a [NodeId]) -> Self {
        Config {
            cluster: 0x5043_0001,
            id,
            members,
            incarnation: 0,
            mtu: 1400,
            integrity: Integrity::Crc32c,
            seed: u64::from(id.0),
            max_message: 64 * 1024,
            heartbeat: None,
            reassembly_timeout: Duration::from_secs(2),
            rate: None,
            window: None,
            scheduling: Scheduling::StrictPriority,
            tob_window: 64,
            tob_rto: Duration::from_millis(20),
            tob_batch: 4096,
            fd_timeout: None,
            view_policy: ViewPolicy::PrimaryPartition,
            join: false,
            link_capacity: None,
            aggregation: Aggregation::Omaha,
            qsm: QsmConfig::default(),
        }
    }
}

/// How to send one application message.
#[derive(Clone, Copy, PartialEq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SendOptions {
    /// Priority class.
    pub class: Class,
    /// May a queue policy push this message out under congestion? (BASEL
    /// push-out). Non-droppable messages are never lost once accepted; the
    /// newcomer is refused with [`Error::Full`] instead.
    pub droppable: bool,
    /// Intrinsic value for value-based queue policies (BASEL §4.1).
    pub value: u32,
    /// Omaha `probaBuf`: probability (0.0 ..= 1.0) that the message waits in
    /// its destination's pledge buffer when another application's pledge
    /// covers that destination; 0 sends at once (with what was buffered).
    pub proba_buf: f32,
    /// Omaha `t`: longest time the message may wait in a pledge buffer.
    pub timeout: Duration,
    /// Omaha `app`: the sending application.
    pub app: AppId,
    /// Whether a peer's progress may wait on this message (e.g. it may
    /// complete a quorum); only [`Aggregation::Criticality`] looks at it.
    pub critical: bool,
}

impl Default for SendOptions {
    fn default() -> Self {
        SendOptions {
            class: Class::Data,
            droppable: false,
            value: 0,
            proba_buf: 0.0,
            timeout: Duration::ZERO,
            app: 0,
            critical: true,
        }
    }
}

impl SendOptions {
    fn pledge(&self) -> PledgeOptions {
        PledgeOptions {
            proba_buf: self.proba_buf,
            timeout: self.timeout,
            app: self.app,
            critical: self.critical,
        }
    }
}

/// What the node reports to the application.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Event<'a> {
    /// A message arrived (unordered, best effort at this layer).
    Received {
        /// Sender.
        from: NodeId,
        /// The group it was multicast to, `None` for point to point.
        group: Option<GroupId>,
        /// The sender's message id.
        msg: u32,
        /// The bytes; valid until the next call to `poll_event`.
        payload: &'a [u8],
    },
    /// `utoDeliver`: the next message of the total order.
    Delivered {
        /// Its number in the total order: consecutive per application
        /// message (0, 1, 2, …, continuing across views), the same at every
        /// process; the messages of a batch have consecutive numbers.
        sn: u64,
        /// Who broadcast it.
        sender: NodeId,
        /// The bytes; valid until the next call to `poll_event`.
        payload: &'a [u8],
    },
    /// A new view was installed; its first member is the sequencer.
    ViewChanged {
        /// The view's id.
        view_id: u32,
        /// Its members in order.
        members: MemberList<'a>,
    },
    /// The failure detector suspects `node`; a view change follows.
    Suspected {
        /// The suspected member.
        node: NodeId,
    },
    /// This process was left out of a new view: it must rejoin (restart with
    /// `Config::join`).
    Excluded,
    /// The bandwidth allocation changed this process's sending rate.
    BandwidthChanged {
        /// The allocated rate, in the unit of `Config::link_capacity`.
        current: u64,
    },
    /// QSM: the next message of `sender` to `group`, per-sender FIFO and
    /// reliable (the issue's `Delivered { group, sender, seq, payload }`;
    /// named apart from total order's [`Event::Delivered`]).
    GroupDelivered {
        /// The group it was multicast to.
        group: GroupId,
        /// Who multicast it.
        sender: NodeId,
        /// The sender's per-group sequence number (from 1).
        seq: u32,
        /// The bytes; valid until the next call to `poll_event`.
        payload: &'a [u8],
    },
}

#[derive(Clone, Copy, Debug)]
enum EventMeta {
    Received {
        from: NodeId,
        group: Option<GroupId>,
        msg: u32,
    },
    Delivered {
        sn: u64,
        sender: NodeId,
    },
    ViewChanged {
        view_id: u32,
    },
    Suspected {
        node: NodeId,
    },
    Excluded,
    BandwidthChanged {
        current: u64,
    },
    GroupDelivered {
        group: GroupId,
        sender: NodeId,
        seq: u32,
    },
}

impl EventMeta {
    fn received(from: NodeId, group: u32, msg: u32) -> Self {
        EventMeta::Received {
            from,
            group: (group != wire::GROUP_NONE).then_some(GroupId(group)),
            msg,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct OutMsg {
    handle: Handle,
    cursor: Cursor,
    /// Bytes already sent as fragments.
    sent: u32,
    group: u32,
    msg: u32,
}

#[derive(Clone, Copy, Debug, Default)]
struct ReplayWindow {
    epoch: Option<u32>,
    top: Seq,
    bits: u64,
}

impl ReplayWindow {
    fn check(&self, epoch: u32, seq: Seq) -> Result<(), DropReason> {
        match self.epoch {
            None => Ok(()),
            Some(e) if epoch > e => Ok(()),
            Some(e) if epoch < e => Err(DropReason::Stale),
            Some(_) => {
                let d = seq.distance_from(self.top);
                if d > 0 {
                    Ok(())
                } else if d <= -REPLAY_WINDOW {
                    Err(DropReason::Stale)
                } else if self.bits & (1u64 << (-d)) != 0 {
                    Err(DropReason::Duplicate)
                } else {
                    Ok(())
                }
            }
        }
    }

    fn accept(&mut self, epoch: u32, seq: Seq) {
        if self.epoch != Some(epoch) {
            *self = ReplayWindow {
                epoch: Some(epoch),
                top: seq,
                bits: 1,
            };
            return;
        }
        let d = seq.distance_from(self.top);
        if d > 0 {
            self.bits = if d >= REPLAY_WINDOW {
                0
            } else {
                self.bits << d
            };
            self.bits |= 1;
            self.top = seq;
        } else {
            self.bits |= 1u64 << (-d);
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Peer {
    id: NodeId,
    replay: ReplayWindow,
    last_heard: Option<Instant>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum SinkState {
    /// Nothing to send.
    Idle,
    /// In the active list.
    Active,
    /// Waiting for its hold timer.
    Held,
    /// Waiting for an outside event.
    Blocked,
}

struct Sink<const QUEUE: usize> {
    destination: Destination,
    port: SinkPort<QUEUE>,
    control: ControlPolicy,
    registered: u32,
    state: SinkState,
}

/// A sink's index, as a timer key.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct SinkKey(u16);

impl TimerKey for SinkKey {
    fn index(self) -> usize {
        self.0 as usize
    }
    fn from_index(i: usize) -> Option<Self> {
        u16::try_from(i).ok().map(SinkKey)
    }
}

/// The engine. Capacities are fixed at construction by the const generics:
///
/// * `SINKS`: destinations (one per member plus one for the whole cluster);
/// * `QUEUE`: messages each class queue of a sink holds;
/// * `SLOTS`: application messages waiting to leave, node-wide;
/// * `BLOCKS`: 128-byte blocks of payload storage (outgoing and reassembly);
/// * `INBOX`: bytes of delivered payloads waiting for `poll_event`;
/// * `MTU`: largest datagram this build handles;
/// * `GROUPS`: QSM groups this node can know (12 bytes each; default 0:
///   no QSM, and no QSM memory);
/// * `RING`: QSM messages a sender keeps per region until acknowledged,
///   and a receiver holds per stream (default 0).
///
/// The node holds every byte it uses inline; a host puts it in a `static` or
/// a `Box` ([`HostNode`] is about a megabyte).
pub struct Node<
    const SINKS: usize,
    const QUEUE: usize,
    const SLOTS: usize,
    const BLOCKS: usize,
    const INBOX: usize,
    const MTU: usize,
    const GROUPS: usize = 0,
    const RING: usize = 0,
> {
    id: NodeId,
    cluster: u32,
    incarnation: u32,
    mtu: usize,
    integrity: Integrity,
    max_message: usize,
    heartbeat: Option<Duration>,
    reassembly_timeout: Duration,
    rng: Rng,
    frame_seq: Seq,
    next_msg: u32,
    peers: heapless::Vec<Peer, SINKS>,
    sinks: heapless::Vec<Sink<QUEUE>, SINKS>,
    active: heapless::Deque<u16, SINKS>,
    holds: Timers<SinkKey, SINKS>,
    next_heartbeat: Option<Instant>,
    out: [Option<OutMsg>; SLOTS],
    out_free: heapless::Vec<u16, SLOTS>,
    pool: Pool<BLOCKS>,
    /// Pool bytes (whole blocks) held by outgoing messages.
    tx_pool_bytes: usize,
    reassembly: Reassembly<REASSEMBLY_SLOTS>,
    inbox: Inbox<EventMeta, INBOX, 256>,
    /// The inbox entry handed out by the last `poll_event`, released at the next.
    lent: bool,
    counters: Counters,
    /// This node's peer index.
    me: usize,
    tob: Tob<SINKS, SLOTS>,
    /// Pool bytes held by messages received for the total order.
    rx_tob_bytes: usize,
    /// The batch being gathered (see `node::sequencer`): a count, then
    /// length-prefixed application messages; `tob_stage_len` bytes used.
    tob_stage: [u8; MTU],
    tob_stage_len: usize,
    tob_stage_count: u16,
    /// Largest batch, bytes (0: no batching).
    tob_batch: usize,
    recovery: Option<Recovery<SINKS, SLOTS>>,
    recovery_deadline: Option<Instant>,
    suspects: u64,
    /// Members that said they were excluded: left out of every proposal
    /// until they join again.
    departed: u64,
    joiners: u64,
    joining: bool,
    view_policy: ViewPolicy,
    fd_timeout: Option<Duration>,
    view_since: Instant,
    highest_vid_seen: u32,
    /// Data to forward to each peer during a view change: (slot, offset).
    forward: [heapless::Deque<(u16, u32), 16>; SINKS],
    bw: BandwidthState<SINKS>,
    /// Omaha's `curPledges` and pledge-buffer bookkeeping, by peer index
    /// (the buffered messages wait in the peer's sink).
    pledges: Pledges<SINKS>,
    /// The latest time the host gave (for work triggered without one).
    now: Instant,
    /// QSM's multicast component (`GROUPS` groups, rings of `RING`).
    qsm: Qsm<SINKS, GROUPS, RING>,
    /// First sink QSM may allocate (after the cluster's).
    first_qsm_sink: usize,
    /// Scheduling of sinks allocated later.
    scheduling: Scheduling,
}

/// A node sized for a host: 64 sinks, 1 MiB of payload storage, 64 KiB inbox.
pub type HostNode = Node<64, 64, 1024, 8192, 65536, 65507, 8192, 256>;
/// A node sized for a microcontroller: 8 peers, 16 KiB of payload storage, 576-byte MTU
/// (the smallest datagram every IPv4 host must accept).
pub type SmallNode = Node<9, 8, 32, 128, 4096, 576, 16, 16>;

const GROUP_SINK: usize = 0;

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
    /// A node as configured, at time `now`.
    pub fn new(config: &Config<'_>, now: Instant) -> Result<Self, Error> {
        if config.mtu < wire::MIN_MTU || config.mtu > wire::MAX_MTU || config.mtu > MTU {
            return Err(Error::InvalidConfig("mtu"));
        }
        if config.members.len() + 1 > SINKS {
            return Err(Error::InvalidConfig("members: more than SINKS - 1"));
        }
        if !config.members.contains(&config.id) {
            return Err(Error::InvalidConfig("members must include id"));
        }
        if config.max_message == 0 || config.max_message > wire::MAX_MESSAGE_LEN as usize {
            return Err(Error::InvalidConfig("max_message"));
        }
        if !config.qsm.is_valid() {
            return Err(Error::InvalidConfig("qsm"));
        }
        let control = ControlPolicy {
            rate: config
                .rate
                .map(|r| TokenBucket::new(r.bytes_per_s, r.burst, now)),
            window: config.window.map(|limit| Window {
                in_flight: 0,
                limit,
            }),
            ..Default::default()
        };
        let mut peers: heapless::Vec<Peer, SINKS> = heapless::Vec::new();
        for &m in config.members {
            if peers.iter().any(|p| p.id == m) {
                return Err(Error::InvalidConfig("members: duplicate id"));
            }
            let _ = peers.push(Peer {
                id: m,
                ..Default::default()
            });
        }
        peers.sort_unstable_by_key(|p| p.id);
        // Sink 0 is the whole cluster; sink i + 1 is peers[i].
        let mut sinks: heapless::Vec<Sink<QUEUE>, SINKS> = heapless::Vec::new();
        let dests = core::iter::once(Destination::Group(GroupId::ALL))
            .chain(peers.iter().map(|p| Destination::Peer(p.id)));
        for destination in dests {
            let sink = Sink {
                destination,
                port: new_port(config.scheduling),
                control,
                registered: 0,
                state: SinkState::Idle,
            };
            if sinks.push(sink).is_err() {
                return Err(Error::InvalidConfig("members: more than SINKS - 1"));
            }
        }
        let mut out_free = heapless::Vec::new();
        for i in (0..SLOTS).rev() {
            let _ = out_free.push(i as u16);
        }
        if peers.len() > MAX_MEMBERS {
            return Err(Error::InvalidConfig("members: at most 64"));
        }
        let me = peers.iter().position(|p| p.id == config.id).unwrap_or(0);
        let all: u64 = if peers.len() >= 64 {
            u64::MAX
        } else {
            (1u64 << peers.len()) - 1
        };
        let initial_view = if config.join { 0 } else { all };
        let mut tob = Tob::new(initial_view, config.tob_window, config.tob_rto, now);
        if config.join {
            tob.leader = me as u8;
            // Its deliveries' numbers come from the members (`tob_on_ack`).
            tob.app_unknown = true;
        }
        Ok(Node {
            id: config.id,
            cluster: config.cluster,
            incarnation: config.incarnation,
            mtu: config.mtu,
            integrity: config.integrity,
            max_message: config.max_message,
            heartbeat: config.heartbeat,
            reassembly_timeout: config.reassembly_timeout,
            rng: Rng::new(config.seed),
            frame_seq: Seq(0),
            next_msg: 0,
            peers,
            sinks,
            active: heapless::Deque::new(),
            holds: Timers::new(),
            next_heartbeat: config.heartbeat.map(|p| now + p),
            out: [None; SLOTS],
            out_free,
            pool: Pool::new(),
            tx_pool_bytes: 0,
            reassembly: Reassembly::new(),
            inbox: Inbox::new(),
            lent: false,
            counters: Counters::default(),
            me,
            tob,
            rx_tob_bytes: 0,
            tob_stage: [0; MTU],
            tob_stage_len: 0,
            tob_stage_count: 0,
            tob_batch: {
                // One batch travels whole in one datagram, with room left
                // for an ORDER and an ACK beside it.
                let one = config
                    .integrity
                    .max_frame_len(config.mtu.min(MTU))
                    .saturating_sub(
                        Header::LEN + wire::RECORD_HEADER_LEN + TOB_DATA_HEADER_LEN + 64,
                    );
                config
                    .tob_batch
                    .min(one)
                    .min(MTU)
                    .min(usize::from(u16::MAX))
            },
            recovery: None,
            recovery_deadline: None,
            suspects: 0,
            departed: 0,
            joiners: 0,
            joining: config.join,
            view_policy: config.view_policy,
            fd_timeout: config.fd_timeout,
            view_since: now,
            highest_vid_seen: 0,
            forward: core::array::from_fn(|_| heapless::Deque::new()),
            bw: BandwidthState::new(me, config.members.len(), config.link_capacity),
            pledges: Pledges::new(config.aggregation, config.mtu),
            now,
            qsm: {
                let mut q = Qsm::new();
                q.config = config.qsm;
                q
            },
            first_qsm_sink: config.members.len() + 1,
            scheduling: config.scheduling,
        })
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The configured MTU: `poll_transmit` needs a buffer at least this long.
    pub fn mtu(&self) -> usize {
        self.mtu
    }

    /// The node's counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// When a peer was last heard from (any accepted frame).
    pub fn last_heard(&self, peer: NodeId) -> Option<Instant> {
        self.peer_index(peer).and_then(|i| self.peers[i].last_heard)
    }

    /// The node's random generator (protocol layers draw from it).
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    fn peer_index(&self, id: NodeId) -> Option<usize> {
        self.peers.binary_search_by_key(&id, |p| p.id).ok()
    }

    fn sink_index(&self, dest: Destination) -> Result<usize, Error> {
        match dest {
            Destination::Group(GroupId::ALL) => Ok(GROUP_SINK),
            Destination::Group(_) => Err(Error::UnknownGroup),
            Destination::Peer(p) if p == self.id => Err(Error::NotMember),
            Destination::Peer(p) => self.peer_index(p).map(|i| i + 1).ok_or(Error::NotMember),
        }
    }

    // ----------------------------------------------------------------------
    // Application side: application -> feeds -> sinks
    // ----------------------------------------------------------------------

    /// Queues a message for `dest`; returns its message id. Best effort at
    /// this layer: reliability and order are the protocols' business.
    ///
    /// To a peer, the message goes through the peer's pledge buffer
    /// (Omaha's overloaded `send`, see [`crate::pledge`]): with the default
    /// `proba_buf = 0` it leaves at once, with whatever was buffered.
    ///
    /// Errors change nothing: [`Error::Full`] when the queue, the message
    /// table or the payload pool is full (retry later), [`Error::Oversized`],
    /// [`Error::NotMember`], [`Error::UnknownGroup`], [`Error::InvalidConfig`]
    /// when `proba_buf` is not a probability.
    pub fn send(
        &mut self,
        now: Instant,
        dest: Destination,
        payload: &[u8],
        opts: SendOptions,
    ) -> Result<u32, Error> {
        self.now = self.now.max(now);
        let s = self.sink_index(dest)?;
        let mut sinks = heapless::Vec::<u16, SINKS>::new();
        let _ = sinks.push(s as u16);
        self.check_room(&sinks, payload, &opts)?;
        Ok(self.enqueue_to(&sinks, now, payload, &opts))
    }

    /// Omaha's `send(msg, dests, probaBuf, t, app)` (Algorithm 1, lines
    /// 21–39): one message to several peers, each copy through its
    /// destination's pledge buffer. All copies carry the same message id.
    /// Duplicate ids count once. Errors change nothing (as [`Node::send`]).
    pub fn send_to(
        &mut self,
        now: Instant,
        dests: &[NodeId],
        payload: &[u8],
        opts: SendOptions,
    ) -> Result<u32, Error> {
        self.now = self.now.max(now);
        let sinks = self.peer_sinks(dests)?;
        self.check_room(&sinks, payload, &opts)?;
        Ok(self.enqueue_to(&sinks, now, payload, &opts))
    }

    /// Omaha's `beginPledge(app, futureDests)` (lines 6–9): `app` promises
    /// to send to `future_dests` soon (e.g. when its quorum wait ends), so
    /// other applications' messages to them may wait for that datagram.
    /// Replaces `app`'s previous pledge. Errors change nothing.
    pub fn begin_pledge(
        &mut self,
        now: Instant,
        app: AppId,
        future_dests: &[NodeId],
    ) -> Result<(), Error> {
        self.now = self.now.max(now);
        let sinks = self.peer_sinks(future_dests)?;
        let mask = sinks.iter().fold(0u64, |m, &s| m | 1u64 << (s - 1));
        self.pledges.begin_pledge(app, mask, now);
        Ok(())
    }

    /// Omaha's `pledgedSend(msg, dests, probaBuf, t, app)` (lines 16–20):
    /// ends `opts.app`'s pledge, then sends like [`Node::send_to`]. On error
    /// nothing changes, the pledge included.
    pub fn pledged_send(
        &mut self,
        now: Instant,
        dests: &[NodeId],
        payload: &[u8],
        opts: SendOptions,
    ) -> Result<u32, Error> {
        self.now = self.now.max(now);
        let sinks = self.peer_sinks(dests)?;
        self.check_room(&sinks, payload, &opts)?;
        self.pledges.end_pledge(opts.app, now);
        Ok(self.enqueue_to(&sinks, now, payload, &opts))
    }

    /// Ends `app`'s pledge without sending (e.g. its instance was abandoned).
    /// Returns whether it held one.
    pub fn end_pledge(&mut self, now: Instant, app: AppId) -> bool {
        self.pledges.end_pledge(app, now)
    }

    /// The pledge state (read-only), for hosts and tests.
    pub fn pledges(&self) -> &Pledges<SINKS> {
        &self.pledges
    }

    /// The sinks of distinct peers `ids` (not this node).
    fn peer_sinks(&self, ids: &[NodeId]) -> Result<heapless::Vec<u16, SINKS>, Error> {
        let mut seen = 0u64;
        let mut sinks = heapless::Vec::new();
        for &id in ids {
            let s = self.sink_index(Destination::Peer(id))?;
            let bit = 1u64 << ((s - 1) % 64);
            if seen & bit == 0 {
                seen |= bit;
                let _ = sinks.push(s as u16);
            }
        }
        Ok(sinks)
    }

    /// Whether one copy of `payload` can be queued in each of `sinks` now.
    fn check_room(
        &mut self,
        sinks: &[u16],
        payload: &[u8],
        opts: &SendOptions,
    ) -> Result<(), Error> {
        if payload.len() > self.max_message {
            return Err(Error::Oversized);
        }
        if !opts.pledge().is_valid() {
            return Err(Error::InvalidConfig("proba_buf must be within 0.0 ..= 1.0"));
        }
        let n = sinks.len();
        let blocks = Pool::<BLOCKS>::blocks_for(payload.len());
        let room = self.out_free.len() >= n
            && self.tx_pool_bytes + n * blocks * crate::pool::BLOCK_LEN <= self.pool_half()
            && self.pool.free_bytes() >= n * blocks * crate::pool::BLOCK_LEN
            && sinks.iter().all(|&s| {
                opts.droppable
                    || self.sinks[s as usize]
                        .port
                        .buffer()
                        .queue(opts.class.index())
                        .is_some_and(|q| {
                            !q.would_congest(&Self::message_meta(self.now, payload, opts))
                        })
            });
        if room {
            Ok(())
        } else {
            self.counters.refused_full += 1;
            Err(Error::Full)
        }
    }

    fn message_meta(now: Instant, payload: &[u8], opts: &SendOptions) -> PacketMeta {
        PacketMeta {
            arrival: now,
            size: payload.len() as u32,
            value: opts.value,
            work: payload.len() as u32,
            slack: None,
            class: urgency(opts.class),
            droppable: opts.droppable,
        }
    }

    /// Queues one copy per sink (room checked by `check_room`), then applies
    /// each destination's pledge decision. Returns the message id.
    fn enqueue_to(
        &mut self,
        sinks: &[u16],
        now: Instant,
        payload: &[u8],
        opts: &SendOptions,
    ) -> u32 {
        let msg = self.next_msg;
        self.next_msg = self.next_msg.wrapping_add(1);
        let meta = Self::message_meta(now, payload, opts);
        let blocks_bytes = Pool::<BLOCKS>::blocks_for(payload.len()) * crate::pool::BLOCK_LEN;
        for &s in sinks {
            let s = s as usize;
            let (Some(&slot), Ok(handle)) = (self.out_free.last(), self.pool.store(payload)) else {
                // Unreachable after `check_room`; refuse the rest rather than panic.
                self.counters.refused_full += 1;
                break;
            };
            match self.sinks[s]
                .port
                .enqueue(opts.class.index(), meta, Item::Message(slot))
            {
                Admission::Refused(..) => {
                    self.pool.free(handle);
                    self.counters.refused_full += 1;
                    continue;
                }
                Admission::Admitted => {}
                Admission::AdmittedPushedOut(victims) => {
                    for v in victims {
                        self.discard(v.item);
                    }
                }
            }
            self.out_free.pop();
            self.tx_pool_bytes += blocks_bytes;
            let group = match self.sinks[s].destination {
                Destination::Group(g) => g.0,
                Destination::Peer(_) => wire::GROUP_NONE,
            };
            self.out[slot as usize] = Some(OutMsg {
                handle,
                cursor: self.pool.cursor(handle),
                sent: 0,
                group,
                msg,
            });
            self.counters.messages_accepted += 1;
            let ql = self.sinks[s].port.buffer().len() as u64;
            self.counters.queue_high_water = self.counters.queue_high_water.max(ql);
            self.pledge_decide(s, payload.len(), opts, now);
        }
        let used = (BLOCKS * crate::pool::BLOCK_LEN - self.pool.free_bytes()) as u64;
        self.counters.pool_high_water = self.counters.pool_high_water.max(used);
        msg
    }

    /// Lines 24–37 of Algorithm 1 for the message just queued in sink `s`:
    /// keep the sink held until the buffer's deadline, or flush it.
    fn pledge_decide(&mut self, s: usize, bytes: usize, opts: &SendOptions, now: Instant) {
        if s == GROUP_SINK {
            self.activate(s); // group traffic has no pledge buffer
            return;
        }
        match self
            .pledges
            .decide(s - 1, bytes, &opts.pledge(), now, &mut self.rng)
        {
            Decision::Buffer { deadline } => {
                self.counters.messages_buffered += 1;
                self.sinks[s].control.hold.until = Some(deadline);
                match self.sinks[s].state {
                    SinkState::Held | SinkState::Idle => {
                        self.sinks[s].state = SinkState::Held;
                        // Cannot fail: sink indices are below SINKS, the timer capacity.
                        let _ = self.holds.set(SinkKey(s as u16), deadline);
                    }
                    // `poll_transmit` parks an active sink until the deadline;
                    // a blocked one waits for its window anyway.
                    SinkState::Active | SinkState::Blocked => {}
                }
            }
            Decision::Flush => self.flush_pledge_buffer(s),
        }
    }

    /// `sendBuff` (lines 10–15): the sink's buffered messages leave now.
    fn flush_pledge_buffer(&mut self, s: usize) {
        if s != GROUP_SINK {
            self.pledges.flushed(s - 1);
        }
        if self.sinks[s].control.hold.until.take().is_some()
            && self.sinks[s].state == SinkState::Held
        {
            self.holds.cancel(SinkKey(s as u16));
            self.sinks[s].state = SinkState::Idle;
        }
        self.activate(s);
    }

    /// Frees what a queue policy pushed out.
    fn discard(&mut self, item: Item) {
        match item {
            Item::Message(slot) => {
                self.free_out(slot);
                self.counters.drop(DropReason::PushedOut);
            }
            // Intents and broadcasts are never droppable; nothing to free.
            Item::Intent(_) | Item::Broadcast(_) => {}
        }
    }

    /// Returns an outgoing message's storage.
    fn free_out(&mut self, slot: u16) {
        if let Some(m) = self.out.get_mut(slot as usize).and_then(Option::take) {
            self.tx_pool_bytes -=
                Pool::<BLOCKS>::blocks_for(m.handle.len()) * crate::pool::BLOCK_LEN;
            self.pool.free(m.handle);
            let _ = self.out_free.push(slot);
        }
    }

    /// Half the payload pool: outgoing messages and reassembly each get one
    /// half, so neither direction can starve the other.
    fn pool_half(&self) -> usize {
        BLOCKS * crate::pool::BLOCK_LEN / 2
    }

    /// Registers `feed`'s intent to send with sink `s` (at most once).
    fn register(&mut self, s: usize, feed: Feed, now: Instant) {
        // The engine's own records are sent with probaBuf = 0: they flush a
        // pledge buffer and carry what waited in it (see `crate::pledge`).
        if self.sinks[s].control.hold.until.is_some() {
            self.flush_pledge_buffer(s);
        }
        let sink = &mut self.sinks[s];
        if sink.registered & feed.bit() != 0 {
            self.activate(s);
            return;
        }
        let meta = PacketMeta {
            arrival: now,
            size: 0,
            value: u32::MAX,
            work: 0,
            slack: None,
            class: urgency(feed.class()),
            droppable: false,
        };
        if let Admission::Refused(..) =
            sink.port
                .enqueue(feed.class().index(), meta, Item::Intent(feed))
        {
            // The class queue is full of messages: the feed registers again on
            // its next tick. Control is never queued in advance, so nothing is lost.
            return;
        }
        sink.registered |= feed.bit();
        self.activate(s);
    }

    /// Puts sink `s` in the active list unless it is already there or held.
    fn activate(&mut self, s: usize) {
        if self.sinks[s].state == SinkState::Idle && self.active.push_back(s as u16).is_ok() {
            self.sinks[s].state = SinkState::Active;
        }
    }

    /// Reports that a peer acknowledged `bytes` sent through the sink of
    /// `dest` (window policy). A sink blocked by its window becomes active.
    pub fn on_acked(&mut self, dest: Destination, bytes: usize) -> Result<(), Error> {
        let s = self.sink_index(dest)?;
        let sink = &mut self.sinks[s];
        if let Some(w) = &mut sink.control.window {
            w.acked(bytes);
        }
        if sink.state == SinkState::Blocked {
            sink.state = SinkState::Idle;
            if !sink.port.buffer().is_empty() {
                self.activate(s);
            }
        }
        Ok(())
    }

    /// Holds the sink of `dest` until `until`, or releases it (and its
    /// pledge buffer) at once with `None`.
    pub fn hold(&mut self, dest: Destination, until: Option<Instant>) -> Result<(), Error> {
        let s = self.sink_index(dest)?;
        match until {
            None => self.flush_pledge_buffer(s),
            Some(t) => {
                self.sinks[s].control.hold.until = Some(t);
                if self.sinks[s].state == SinkState::Held {
                    let _ = self.holds.set(SinkKey(s as u16), t);
                } else {
                    self.activate(s);
                }
            }
        }
        Ok(())
    }

    // ----------------------------------------------------------------------
    // Host side: timers
    // ----------------------------------------------------------------------

    /// The next time `handle_timeout` must be called, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.holds.next_deadline(),
            self.next_heartbeat,
            self.reassembly.next_deadline(),
            // Total-order retransmission / view-change retry and the
            // bandwidth poll: a host without heartbeats relies on these. An
            // idle node (nothing retained, nothing to deliver, no view
            // change, no failure detector) does not tick.
            self.tob.next_tick.filter(|_| !self.tob_idle()),
            self.bw.next_poll,
            self.qsm_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Whether the total order has nothing a periodic tick could advance.
    fn tob_idle(&self) -> bool {
        self.recovery.is_none()
            && !self.joining
            && self.fd_timeout.is_none()
            && self.tob.free.len() == SLOTS
            && self.tob.next_deliver == self.tob.known_end
    }

    /// Fires every alarm due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        self.release_holds(now);
        if let (Some(t), Some(period)) = (self.next_heartbeat, self.heartbeat) {
            if t <= now {
                self.register(GROUP_SINK, Feed::Heartbeat, now);
                // Skip missed periods rather than bursting to catch up.
                let mut next = t + period;
                if next <= now {
                    next = now + period;
                }
                self.next_heartbeat = Some(next);
            }
        }
        while let Some(_key) = self.reassembly.expire_one(&mut self.pool, now) {
            self.counters.drop(DropReason::ReassemblyTimeout);
        }
        if self.tob.next_tick.is_some_and(|t| t <= now) {
            self.tob_tick(now);
            self.membership_tick(now);
        }
        if self.bw.next_poll.is_some_and(|t| t <= now) {
            self.bandwidth_tick(now);
        }
        self.qsm_tick(now);
    }

    fn release_holds(&mut self, now: Instant) {
        while let Some(SinkKey(s)) = self.holds.pop_expired(now) {
            let s = s as usize;
            if self.sinks[s].state == SinkState::Held {
                self.sinks[s].state = SinkState::Idle;
                self.activate(s);
            }
        }
    }

    // ----------------------------------------------------------------------
    // Host side: sinks -> wire -> datagram
    // ----------------------------------------------------------------------

    /// Writes the next datagram to send into `buf` (at least [`Node::mtu`]
    /// bytes). `WouldBlock` when nothing may leave now; call again after
    /// `handle_timeout`, `handle_datagram` or an application call.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> nb::Result<Transmit, Error> {
        self.now = self.now.max(now);
        if buf.len() < self.mtu {
            return Err(nb::Error::Other(Error::BufferTooSmall { needed: self.mtu }));
        }
        self.release_holds(now);
        if self.tob_stage_len > 0 {
            // The batch gathered since the last call leaves now.
            self.tob_flush_stage(now);
        }
        // Each active sink is looked at most once per call.
        for _ in 0..self.active.len() {
            let Some(s) = self.active.pop_front() else {
                break;
            };
            let s = s as usize;
            let held_before = self.sinks[s].control.hold.until.is_some();
            match self.sinks[s].control.readiness(now) {
                Readiness::Ready => {}
                Readiness::HoldUntil(t) => {
                    self.sinks[s].state = SinkState::Held;
                    // Cannot fail: sink indices are below SINKS, the timer capacity.
                    let _ = self.holds.set(SinkKey(s as u16), t);
                    continue;
                }
                Readiness::Blocked => {
                    self.sinks[s].state = SinkState::Blocked;
                    continue;
                }
            }
            let deadline = held_before;
            self.sinks[s].control.hold.until = None;
            if s != GROUP_SINK {
                // Whatever waited in the pledge buffer leaves now.
                self.pledges.flushed(s - 1);
            }
            let Some(tx) = self.build_frame(s, now, buf, deadline) else {
                self.sinks[s].state = SinkState::Idle;
                continue;
            };
            if !self.sinks[s].port.buffer().is_empty() {
                // Round robin across sinks: back of the line.
                let _ = self.active.push_back(s as u16);
            } else {
                self.sinks[s].state = SinkState::Idle;
            }
            return Ok(tx);
        }
        Err(nb::Error::WouldBlock)
    }

    /// Pulls records from sink `s` into one datagram.
    fn build_frame(
        &mut self,
        s: usize,
        now: Instant,
        buf: &mut [u8],
        deadline: bool,
    ) -> Option<Transmit> {
        let max_frame = self.integrity.max_frame_len(self.mtu);
        let header = Header {
            integrity: self.integrity,
            cluster: self.cluster,
            sender: self.id.0,
            view: self.incarnation,
            seq: self.frame_seq,
        };
        let mut w = FrameWriter::new(buf, &header, max_frame).ok()?;
        let empty_room = w.remaining();
        let mut reason = SendReason::Drained;
        loop {
            let port = &self.sinks[s].port;
            let Some(item) = port
                .best_queue()
                .and_then(|q| port.buffer().queue(q))
                .and_then(|q| q.peek_hol())
                .map(|(_, item)| *item)
            else {
                break;
            };
            let progressed = match item {
                Item::Intent(feed) => self.pull_feed(s, feed, now, &mut w),
                Item::Message(slot) => self.pull_message(slot, empty_room, &mut w),
                Item::Broadcast(slot) => self.pull_broadcast(slot, now, &mut w),
            };
            match progressed {
                Pulled::Done => {
                    self.sinks[s].port.dequeue();
                    match item {
                        Item::Message(slot) => self.free_out(slot),
                        // The sequencer numbers its own broadcast once its
                        // DATA has left (see `sequencer`, "Numbering"): the
                        // ORDER follows in this very datagram.
                        Item::Broadcast(_) => self.tob_try_order(self.me, now),
                        Item::Intent(_) => {}
                    }
                }
                Pulled::NoRoom if w.records() == 0 => {
                    // Cannot fit even in an empty datagram: it never will.
                    // Dropping it keeps the sink from stalling behind it.
                    self.sinks[s].port.dequeue();
                    match item {
                        Item::Intent(feed) => self.sinks[s].registered &= !feed.bit(),
                        Item::Broadcast(slot) => {
                            if let Some(p) = self.tob.pendings[slot as usize].as_mut() {
                                p.queued = false;
                            }
                        }
                        Item::Message(slot) => self.free_out(slot),
                    }
                    self.counters.drop(DropReason::Unsendable);
                }
                Pulled::Partial | Pulled::NoRoom => {
                    reason = SendReason::Full;
                    break;
                }
            }
        }
        if w.records() == 0 {
            return None;
        }
        let records = u64::from(w.records());
        let frame_len = w.finish();
        let len = self.integrity.seal(buf, frame_len).ok()?;
        let reason = if deadline && reason == SendReason::Drained {
            SendReason::Deadline
        } else {
            reason
        };
        self.frame_seq = self.frame_seq.next();
        self.counters.frames_sent += 1;
        self.counters.bytes_sent += len as u64;
        self.counters.records_sent += records;
        self.counters.sent_because[reason as usize] += 1;
        self.sinks[s].control.on_sent(len, now);
        Some(Transmit {
            destination: self.sinks[s].destination,
            len,
        })
    }

    fn pull_feed(&mut self, s: usize, feed: Feed, now: Instant, w: &mut FrameWriter<'_>) -> Pulled {
        // Generated now, from the state of this moment (QSM §6, 2.4).
        let repr = match feed {
            Feed::Heartbeat => RecordRepr::Heartbeat {
                sent_at: now.as_micros(),
                incarnation: self.incarnation,
            },
            Feed::TobOrder => return self.pull_tob_order(s, now, w),
            Feed::TobAck => return self.pull_tob_ack(s, w),
            Feed::TobNack => return self.pull_tob_nack(s, w),
            Feed::TobRepair => return self.pull_tob_repair(s, now, w),
            Feed::Recover => return self.pull_recover(s, now, w),
            Feed::AckRecover | Feed::EndRecovery => return self.pull_recovery_signal(s, feed, w),
            Feed::Fetch => return self.pull_fetch(s, w),
            Feed::Forward => return self.pull_forward(s, now, w),
            Feed::Join => return self.pull_join(s, w),
            Feed::BwAck | Feed::BwPoll => return self.pull_bandwidth(s, feed, w),
            Feed::ViewNotice => return self.pull_view_notice(s, w),
            Feed::QsmData => return self.pull_qsm_data(s, w),
            Feed::QsmControl => return self.pull_qsm_control(s, w),
            Feed::QsmRecovery => return self.pull_qsm_recovery(s, w),
            Feed::Leave => {
                self.sinks[s].registered &= !Feed::Leave.bit();
                return self.push_for_feed(s, feed, &RecordRepr::Leave, w);
            }
        };
        if w.push(&repr).is_err() {
            return Pulled::NoRoom;
        }
        self.sinks[s].registered &= !feed.bit();
        Pulled::Done
    }

    /// Writes the record a feed made when pulled (its registration bit
    /// already cleared); when it does not fit, the feed stays registered and
    /// the datagram is full.
    pub(crate) fn push_for_feed(
        &mut self,
        s: usize,
        feed: Feed,
        r: &RecordRepr<'_>,
        w: &mut FrameWriter<'_>,
    ) -> Pulled {
        if w.push(r).is_err() {
            self.sinks[s].registered |= feed.bit();
            return Pulled::NoRoom;
        }
        Pulled::Done
    }

    fn pull_message(&mut self, slot: u16, empty_room: usize, w: &mut FrameWriter<'_>) -> Pulled {
        let Some(m) = self.out.get(slot as usize).copied().flatten() else {
            return Pulled::Done; // already freed: just drop the queue entry
        };
        let len = m.handle.len();
        let whole = wire::RECORD_HEADER_LEN + wire::DATA_HEADER_LEN + len;
        let frag_overhead = wire::RECORD_HEADER_LEN + wire::FRAGMENT_HEADER_LEN;
        if m.sent == 0 && whole <= w.remaining() {
            let pool = &self.pool;
            let ok = w
                .push_with(wire::KIND_DATA, wire::DATA_HEADER_LEN + len, |body| {
                    body[0..4].copy_from_slice(&m.group.to_be_bytes());
                    body[4..8].copy_from_slice(&m.msg.to_be_bytes());
                    pool.read(m.handle, &mut body[8..]);
                })
                .is_ok();
            return if ok { Pulled::Done } else { Pulled::NoRoom };
        }
        if m.sent == 0 && whole <= empty_room {
            return Pulled::NoRoom; // fits whole in the next datagram
        }
        // Fragment: as much as fits, but don't start a tiny one at the end.
        let room = w.remaining().saturating_sub(frag_overhead);
        let rest = len - m.sent as usize;
        let n = room.min(rest);
        if n == 0 || (n < rest && n < MIN_FRAGMENT && w.records() > 0) {
            return Pulled::NoRoom;
        }
        let mut cursor = m.cursor;
        let pool = &self.pool;
        let offset = m.sent as usize;
        let ok = w
            .push_with(wire::KIND_FRAGMENT, wire::FRAGMENT_HEADER_LEN + n, |body| {
                body[0..4].copy_from_slice(&m.group.to_be_bytes());
                body[4..8].copy_from_slice(&m.msg.to_be_bytes());
                body[8..12].copy_from_slice(&(len as u32).to_be_bytes());
                body[12..16].copy_from_slice(&(offset as u32).to_be_bytes());
                pool.read_at(m.handle, &mut cursor, offset, &mut body[16..]);
            })
            .is_ok();
        if !ok {
            return Pulled::NoRoom;
        }
        if let Some(om) = self.out[slot as usize].as_mut() {
            om.sent += n as u32;
            om.cursor = cursor;
        }
        if n == rest {
            Pulled::Done
        } else {
            Pulled::Partial
        }
    }

    // ----------------------------------------------------------------------
    // Host side: datagram -> wire -> protocol state -> events
    // ----------------------------------------------------------------------

    /// Takes a datagram from `from` (the transport source, as the host maps
    /// it to a node id). A rejected datagram changes no protocol state; the
    /// reason is returned and counted.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: NodeId,
        bytes: &mut [u8],
    ) -> Result<(), DropReason> {
        self.now = self.now.max(now);
        let r = self.admit_and_apply(now, from, bytes);
        if let Err(reason) = r {
            self.counters.drop(reason);
        }
        r
    }

    fn admit_and_apply(
        &mut self,
        now: Instant,
        from: NodeId,
        bytes: &mut [u8],
    ) -> Result<(), DropReason> {
        let budget = self.reassembly_budget();
        let datagram_len = bytes.len();
        let frame = match wire::decode_in_place(self.integrity, bytes) {
            Ok(f) => f,
            Err(e) => {
                self.counters.malformed[e.index()] += 1;
                return Err(DropReason::Malformed);
            }
        };
        if frame.cluster() != self.cluster {
            return Err(DropReason::ForeignCluster);
        }
        let sender = NodeId(frame.sender());
        if sender == self.id {
            return Err(DropReason::OwnFrame);
        }
        if sender != from {
            return Err(DropReason::ForgedSender);
        }
        let Ok(p) = self.peers.binary_search_by_key(&sender, |p| p.id) else {
            return self.admit_qsm_only(now, sender, &frame, datagram_len);
        };
        let (epoch, seq) = (frame.view(), frame.seq());
        self.peers[p].replay.check(epoch, seq)?;

        // Reserve room for everything the frame delivers before applying any
        // of it. The frame is checked: only the kinds that deliver are parsed
        // again here (the total order's records are parsed once, to apply).
        let (mut events, mut event_bytes) = (0usize, 0usize);
        for view in frame.record_views() {
            if view.kind != wire::KIND_DATA && view.kind != wire::KIND_FRAGMENT {
                continue;
            }
            let Ok(rec) = RecordRepr::parse(view.kind, view.body) else {
                continue;
            };
            match Record::Known(rec) {
                Record::Known(RecordRepr::Data { payload, .. }) => {
                    events += 1;
                    event_bytes += payload.len();
                }
                Record::Known(RecordRepr::Fragment {
                    group,
                    msg,
                    total_len,
                    offset,
                    bytes,
                }) => {
                    let key = Key {
                        from: sender,
                        group,
                        msg: msg.0,
                    };
                    let completes = self
                        .reassembly
                        .check(
                            &self.pool,
                            budget,
                            &key,
                            total_len,
                            offset,
                            bytes.len() as u32,
                        )
                        .map_err(|_| DropReason::FragmentRefused)?;
                    if completes {
                        events += 1;
                        event_bytes += total_len as usize;
                    }
                }
                _ => {}
            }
        }
        if !self.inbox.can_fit(events, event_bytes) {
            return Err(DropReason::NoBufferSpace);
        }

        // Accepted: apply.
        self.peers[p].replay.accept(epoch, seq);
        self.peers[p].last_heard = Some(now);
        self.counters.frames_received += 1;
        self.counters.bytes_received += datagram_len as u64;
        for rec in frame.records() {
            self.counters.records_received += 1;
            match rec {
                Record::Known(RecordRepr::Data {
                    group,
                    msg,
                    payload,
                }) => {
                    let meta = EventMeta::received(sender, group, msg.0);
                    self.inbox.push(meta, payload);
                    self.counters.messages_delivered += 1;
                }
                Record::Known(RecordRepr::Fragment {
                    group,
                    msg,
                    total_len,
                    offset,
                    bytes,
                }) => {
                    let key = Key {
                        from: sender,
                        group,
                        msg: msg.0,
                    };
                    let deadline = now + self.reassembly_timeout;
                    match self.reassembly.apply(
                        &mut self.pool,
                        budget,
                        key,
                        total_len,
                        offset,
                        bytes,
                        deadline,
                    ) {
                        Ok((outcome, evicted)) => {
                            if evicted.is_some() {
                                self.counters.drop(DropReason::ReassemblyEvicted);
                            }
                            if let FragmentOutcome::Complete(h) = outcome {
                                let meta = EventMeta::received(sender, group, msg.0);
                                let pool = &self.pool;
                                self.inbox.push_with(meta, h.len(), |b| {
                                    pool.read(h, b);
                                });
                                self.pool.free(h);
                                self.counters.messages_delivered += 1;
                            }
                        }
                        Err(_) => self.counters.drop(DropReason::FragmentRefused),
                    }
                }
                Record::Known(RecordRepr::Heartbeat { .. }) => {
                    if !self.tob.is_member(p)
                        && !self.joining
                        && !self.tob.excluded
                        && !self.recovering()
                    {
                        // A live process outside the view: it may not know.
                        self.register(p + 1, Feed::ViewNotice, now);
                    }
                }
                Record::Ignored(_) => self.counters.drop(DropReason::IgnoredRecord),
                Record::Known(
                    r @ (RecordRepr::QsmData { .. }
                    | RecordRepr::QsmToken { .. }
                    | RecordRepr::QsmRequest { .. }
                    | RecordRepr::QsmAck { .. }
                    | RecordRepr::QsmPass { .. }),
                ) => self.qsm_apply(now, sender, r),
                Record::Known(other) => self.apply_order_record(now, p, other),
            }
        }
        Ok(())
    }

    /// A frame from a node outside the cluster: admitted only when every
    /// record is QSM's (see [`crate::qsm`] on why without a replay window).
    fn admit_qsm_only(
        &mut self,
        now: Instant,
        sender: NodeId,
        frame: &wire::Frame<&[u8]>,
        datagram_len: usize,
    ) -> Result<(), DropReason> {
        let qsm_only = frame.records().all(|r| {
            matches!(
                r,
                Record::Known(
                    RecordRepr::QsmData { .. }
                        | RecordRepr::QsmToken { .. }
                        | RecordRepr::QsmRequest { .. }
                        | RecordRepr::QsmAck { .. }
                        | RecordRepr::QsmPass { .. }
                )
            )
        });
        if !self.qsm.is_active() || !qsm_only {
            return Err(DropReason::NotMember);
        }
        self.counters.frames_received += 1;
        self.counters.bytes_received += datagram_len as u64;
        for rec in frame.records() {
            self.counters.records_received += 1;
            if let Record::Known(r) = rec {
                self.qsm_apply(now, sender, r);
            }
        }
        Ok(())
    }

    /// Applies a record of the total order broadcast from peer `p`.
    fn apply_order_record(&mut self, now: Instant, p: usize, rec: RecordRepr<'_>) {
        let stale_view = match rec {
            RecordRepr::TobOrder { view, .. }
            | RecordRepr::TobAck { view, .. }
            | RecordRepr::TobNack { view, .. } => Some(view),
            _ => None,
        };
        if let Some(view) = stale_view {
            if view < self.tob.view_id && !self.tob.is_member(p) && !self.recovering() {
                // A process left out of a view it did not hear of: tell it.
                self.register(p + 1, Feed::ViewNotice, now);
                return;
            }
        }
        match rec {
            RecordRepr::TobData {
                origin,
                counter,
                kind,
                total_len,
                offset,
                bytes,
            } => {
                let (Some(o), Some(kind)) =
                    (self.peer_index(NodeId(origin)), TobKind::from_u8(kind))
                else {
                    return;
                };
                if self.recovering() {
                    // Only data a RECOVER listed is taken while frozen.
                    let Some(slot) = self.tob.slot_of(o as u8, counter) else {
                        return;
                    };
                    if !self.tob.pendings[slot as usize].is_some_and(|e| e.in_union) {
                        return;
                    }
                    if self
                        .tob_store_slice(slot, kind, total_len, offset, bytes)
                        .is_some()
                    {
                        let done = self.tob.pendings[slot as usize].is_some_and(|e| e.complete);
                        if done {
                            let claimed =
                                self.tob.pendings[slot as usize].map_or(0, |e| e.claimed_by);
                            let mut c = claimed;
                            while c != 0 {
                                let q = c.trailing_zeros() as usize;
                                c &= c - 1;
                                self.check_recover_complete(q, now);
                            }
                        }
                    }
                    return;
                }
                if !self.tob.is_member(p) && !self.joining && !self.tob.excluded {
                    // Data from a process outside the view: it missed a view.
                    self.register(p + 1, Feed::ViewNotice, now);
                    return;
                }
                if self.joining || !self.tob.is_member(o) {
                    return;
                }
                self.tob_on_data(now, o, counter, kind, total_len, offset, bytes);
            }
            RecordRepr::TobOrder {
                view,
                first_sn,
                ids,
            } if !self.recovering() => self.tob_on_order(now, p, view, first_sn, ids),
            RecordRepr::TobAck {
                view,
                cum,
                stable,
                app,
            } if !self.recovering() => self.tob_on_ack(now, p, view, cum, stable, app),
            RecordRepr::TobNack {
                view,
                from_sn,
                to_sn,
            } => self.tob_on_nack(now, p, view, from_sn, to_sn),
            RecordRepr::ViewChange { vid, base, members } => {
                self.on_view_change(now, p, vid, base, members)
            }
            RecordRepr::ViewInstalled { vid, members } => {
                self.on_view_installed_notice(now, p, vid, members)
            }
            RecordRepr::Recover {
                vid,
                deliver_from,
                order_end,
                part,
                parts,
                first_sn,
                n_ordered,
                ballot,
                label,
                value_members,
                ids,
                ..
            } => self.on_recover(
                now,
                p,
                vid,
                membership::RecoverPart {
                    deliver_from,
                    order_end,
                    part,
                    parts,
                    first_sn,
                    n_ordered,
                    ballot,
                    label,
                    value_members,
                },
                ids,
            ),
            RecordRepr::AckRecover { vid } => self.on_ack_recover(now, p, vid),
            RecordRepr::EndRecovery { vid } => self.on_end_recovery(now, p, vid),
            RecordRepr::Fetch { vid, ids } => self.on_fetch(now, p, vid, ids),
            RecordRepr::Join { .. } => self.on_join(now, p),
            RecordRepr::Leave => self.on_leave(now, p),
            RecordRepr::BwAck { counter } => self.on_bw_ack(now, p, counter),
            RecordRepr::BwPoll { counter } => self.on_bw_poll(now, p, counter),
            _ => {}
        }
    }

    /// Reassembly may use at most half the payload pool (see `pool_half`).
    fn reassembly_budget(&self) -> usize {
        self.pool_half()
    }

    /// The next event for the application. The payload it borrows stays
    /// valid until the next call.
    pub fn poll_event(&mut self) -> Option<Event<'_>> {
        if self.lent {
            self.inbox.pop();
            self.lent = false;
            // Deliveries that waited for room go on once the application
            // took everything: one delivery pass refills the whole inbox,
            // instead of one pass per event taken.
            if self.tob.inbox_blocked && self.inbox.is_empty() {
                self.tob_try_deliver();
            }
            // QSM takes freed room only while total order does not wait for
            // it: otherwise a QSM backlog refilling every freed entry would
            // keep the inbox from emptying and starve total order. Total
            // order's backlog is bounded by its window, so QSM waits at most
            // that long.
            if self.qsm.is_active() && !self.tob.inbox_blocked {
                self.qsm_try_deliver();
            }
        }
        let (meta, payload) = self.inbox.front()?;
        self.lent = true;
        Some(match meta {
            EventMeta::Received { from, group, msg } => Event::Received {
                from,
                group,
                msg,
                payload,
            },
            EventMeta::Delivered { sn, sender } => Event::Delivered {
                sn,
                sender,
                payload,
            },
            EventMeta::ViewChanged { view_id } => Event::ViewChanged {
                view_id,
                members: MemberList::new(payload).unwrap_or(MemberList::EMPTY),
            },
            EventMeta::Suspected { node } => Event::Suspected { node },
            EventMeta::Excluded => Event::Excluded,
            EventMeta::BandwidthChanged { current } => Event::BandwidthChanged { current },
            EventMeta::GroupDelivered { group, sender, seq } => Event::GroupDelivered {
                group,
                sender,
                seq,
                payload,
            },
        })
    }
}

pub(crate) enum Pulled {
    /// The entry is finished: dequeue it.
    Done,
    /// Part of a message left; the datagram is full.
    Partial,
    /// Nothing fit; the datagram is full.
    NoRoom,
}
