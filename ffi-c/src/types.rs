//! The plain `#[repr(C)]` types of the ABI: status codes, configuration,
//! destinations, events, counters.
//!
//! Enumerations the caller *passes in* (integrity schema, scheduling, view
//! policy, destination kind) are plain `uint32_t` fields validated by the
//! library: a C program may store any integer in them, and an out-of-range
//! value must be an error, not undefined behaviour. Enumerations the library
//! only *returns* (status, event kind) are Rust `#[repr(u32)]` enums.

use phasecast_core::counters::{DropReason, SendReason};
use phasecast_core::feed::Class;
use phasecast_core::node::{MAX_MEMBERS, PER_ORIGIN};

/// Outcome of every call. Values below 16 are not errors; 16 and above are.
#[repr(u32)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum phasecast_status {
    /// Success.
    PHASECAST_OK = 0,
    /// Nothing to hand out now (no datagram may leave, no event waits).
    PHASECAST_WOULD_BLOCK = 1,
    /// Backpressure: a window, queue or the payload storage is full. Nothing
    /// changed; retry after deliveries or transmissions.
    PHASECAST_FULL = 2,
    /// The received datagram was refused (malformed, duplicate, foreign,
    /// from a non-member, no room…) and changed nothing; the reason is in the
    /// `drop_reason` out-parameter. Normal network noise, not an API error.
    PHASECAST_DATAGRAM_REJECTED = 3,
    /// A required pointer argument was `NULL`.
    PHASECAST_ERR_NULL_ARGUMENT = 16,
    /// The caller's buffer is too small; the size needed was written to the
    /// function's size out-parameter.
    PHASECAST_ERR_BUFFER_TOO_SMALL = 17,
    /// An argument or configuration field is out of range;
    /// `phasecast_last_error_detail()` names it.
    PHASECAST_ERR_INVALID_ARGUMENT = 18,
    /// The node id is not a member of the cluster (or is this node), or this
    /// node was excluded from the view and must rejoin.
    PHASECAST_ERR_NOT_MEMBER = 19,
    /// The group id is unknown to this node.
    PHASECAST_ERR_UNKNOWN_GROUP = 20,
    /// The payload is larger than the configured `max_message`.
    PHASECAST_ERR_OVERSIZED = 21,
    /// An operation of the same kind is under way (a bandwidth increase).
    PHASECAST_ERR_BUSY = 22,
    /// The feature is off in this node's configuration (bandwidth
    /// allocation without `link_capacity`).
    PHASECAST_ERR_NOT_ENABLED = 23,
    /// The pointer does not designate a live node (never initialised,
    /// finalised, or not a node at all), or the call does not fit how the
    /// node was made (`destroy` on a node made by `init`, `fini` on one made
    /// by `create`).
    PHASECAST_ERR_BAD_HANDLE = 24,
    /// Another call on the same node is under way on another thread.
    PHASECAST_ERR_CONCURRENT_USE = 25,
    /// `phasecast_node_init` on memory that already holds a live node.
    PHASECAST_ERR_ALREADY_INITIALIZED = 26,
    /// Memory (or the helper thread that builds a node) could not be had.
    PHASECAST_ERR_NO_MEMORY = 27,
    /// An internal error (a caught panic). The node is poisoned: every
    /// later call on it returns this code, except destroy/fini.
    PHASECAST_ERR_PANIC = 28,
}

/// Version of this ABI; bumped on every incompatible change of a type or
/// function. Compare with `phasecast_abi_version()` at run time.
pub const PHASECAST_ABI_VERSION: u32 = 4;

/// Largest cluster (member ids per configuration).
pub const PHASECAST_MAX_MEMBERS: usize = 64;
/// Largest datagram the library handles (the largest UDP payload over IPv4).
pub const PHASECAST_MAX_MTU: usize = 65507;
/// Largest `tob_window` (undelivered broadcasts per member).
pub const PHASECAST_MAX_TOB_WINDOW: usize = 128;
/// `phasecast_node_next_timeout` writes this when no alarm is due.
pub const PHASECAST_NEVER: u64 = u64::MAX;
/// The group of every member of the cluster.
pub const PHASECAST_GROUP_ALL: u32 = 0;
/// Number of entries of `phasecast_counters::dropped`.
pub const PHASECAST_DROP_REASONS: usize = 14;
/// Number of entries of `phasecast_counters::malformed`.
pub const PHASECAST_WIRE_ERRORS: usize = 13;
/// Number of entries of `phasecast_counters::sent_because`.
pub const PHASECAST_SEND_REASONS: usize = 3;
/// Number of priority classes (`PHASECAST_CLASS_*`).
pub const PHASECAST_CLASSES: usize = 4;

// The header's constants must follow the core: fail the build, not the ABI.
const _: () = {
    assert!(PHASECAST_MAX_MEMBERS == MAX_MEMBERS);
    assert!(PHASECAST_MAX_MTU == phasecast_core::wire::MAX_MTU);
    assert!(PHASECAST_MAX_TOB_WINDOW == PER_ORIGIN);
    assert!(PHASECAST_DROP_REASONS == DropReason::COUNT);
    assert!(PHASECAST_WIRE_ERRORS == phasecast_core::wire::Error::COUNT);
    assert!(PHASECAST_SEND_REASONS == SendReason::COUNT);
    assert!(PHASECAST_CLASSES == Class::COUNT);
};

/// `phasecast_config::integrity`: one CRC-32C over the whole frame.
pub const PHASECAST_INTEGRITY_CRC32C: u32 = 0;
/// `phasecast_config::integrity`: X-Lane 23-byte chunks with a CRC-24 (HD 6) each.
pub const PHASECAST_INTEGRITY_CHUNK_HD6: u32 = 1;
/// `phasecast_config::integrity`: X-Lane 32-byte chunks with a CRC-32 (HD 8) each.
pub const PHASECAST_INTEGRITY_CHUNK_HD8: u32 = 2;

/// `phasecast_config::scheduling`: express > control > recovery > data, always.
pub const PHASECAST_SCHED_STRICT_PRIORITY: u32 = 0;
/// `phasecast_config::scheduling`: deficit round robin, `sched_weights` are byte quanta.
pub const PHASECAST_SCHED_DRR: u32 = 1;
/// `phasecast_config::scheduling`: weighted round robin, `sched_weights` are packets per round.
pub const PHASECAST_SCHED_WRR: u32 = 2;

/// `phasecast_config::view_policy`: a new view needs a majority of the current one.
pub const PHASECAST_VIEW_PRIMARY_PARTITION: u32 = 0;
/// `phasecast_config::view_policy`: trust the failure detector (survivors go on).
pub const PHASECAST_VIEW_TRUST_DETECTOR: u32 = 1;

/// `phasecast_config::aggregation`: no aggregation (every message leaves at once).
pub const PHASECAST_AGGREGATION_NONE: u32 = 0;
/// Time-based aggregation (Omaha §3.1): always buffer until the timeout or until full.
pub const PHASECAST_AGGREGATION_TIME_BASED: u32 = 1;
/// Omaha pledge buffers (Algorithm 1), the default.
pub const PHASECAST_AGGREGATION_OMAHA: u32 = 2;
/// Omaha, buffering only behind pledges expected within `aggregation_horizon_us`.
pub const PHASECAST_AGGREGATION_HORIZON: u32 = 3;
/// Buffer what no peer waits for (`critical = 0`), never delay what one does.
pub const PHASECAST_AGGREGATION_CRITICALITY: u32 = 4;

/// Priority class: small periodic messages with bounded latency.
pub const PHASECAST_CLASS_EXPRESS: u32 = 0;
/// Priority class: protocol control.
pub const PHASECAST_CLASS_CONTROL: u32 = 1;
/// Priority class: retransmissions and forwarding.
pub const PHASECAST_CLASS_RECOVERY: u32 = 2;
/// Priority class: application data (the default).
pub const PHASECAST_CLASS_DATA: u32 = 3;

/// `phasecast_destination::kind`: one peer; `id` is its node id.
pub const PHASECAST_DEST_PEER: u32 = 1;
/// `phasecast_destination::kind`: a group; `id` is the group id
/// (`PHASECAST_GROUP_ALL`: every member but the sender).
pub const PHASECAST_DEST_GROUP: u32 = 2;

/// How a node is set up. Fill it with `phasecast_config_init()` (the core's
/// defaults), then change fields. Durations are microseconds; for the
/// optional ones 0 means "off". Capacities (pool, inbox, queues) are fixed by
/// the library build; see `phasecast_limits_get()`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct phasecast_config {
    /// This node's id.
    pub id: u16,
    /// Every member's id, this node's included, in any order; read during
    /// the create/init call only (not kept).
    pub members: *const u16,
    /// Entries of `members`: 1 ..= `PHASECAST_MAX_MEMBERS` - 1.
    pub member_count: usize,
    /// Cluster id: frames of other clusters are rejected (default 0x50430001).
    pub cluster: u32,
    /// Incarnation: must grow each time the node restarts (default 0).
    pub incarnation: u32,
    /// Largest datagram, `phasecast_limits::min_mtu` ..= `PHASECAST_MAX_MTU` (default 1400).
    pub mtu: usize,
    /// `PHASECAST_INTEGRITY_*`; all nodes of a cluster use the same (default CRC-32C).
    pub integrity: u32,
    /// Seed of the node's random generator (default: the id).
    pub seed: u64,
    /// Largest application message, fragmented above one datagram (default 65,536).
    pub max_message: usize,
    /// Heartbeat period; 0: none (default). The built-in failure detector needs it.
    pub heartbeat_us: u64,
    /// A message whose fragments stop arriving is dropped after this (default 2 s).
    pub reassembly_timeout_us: u64,
    /// Rate limit of every sink in bytes/s; 0: none (default).
    pub rate_bytes_per_s: u64,
    /// Burst allowance of that rate limit, bytes.
    pub rate_burst: u64,
    /// Window of unacknowledged bytes per sink; 0: none (default).
    pub window_bytes: u64,
    /// `PHASECAST_SCHED_*` across each sink's class queues (default strict priority).
    pub scheduling: u32,
    /// Per-class (`PHASECAST_CLASS_*` index) quanta or weights for DRR / WRR.
    pub sched_weights: [u32; PHASECAST_CLASSES],
    /// Undelivered total-order broadcasts this node may have at once,
    /// 1 ..= `PHASECAST_MAX_TOB_WINDOW` (default 64); beyond, broadcast
    /// returns `PHASECAST_FULL`.
    pub tob_window: usize,
    /// Retransmission and view-change retry period of the total order (default 20 ms), > 0.
    pub tob_rto_us: u64,
    /// Failure detector: a member not heard from for this long is suspected;
    /// 0: only `phasecast_node_suspect` (default). Needs heartbeats.
    pub fd_timeout_us: u64,
    /// `PHASECAST_VIEW_*` (default primary partition).
    pub view_policy: u32,
    /// 1: start outside the view and join it (a restarted process); 0 (default).
    pub join: u32,
    /// Link capacity for bandwidth allocation (FastCast `B`), bytes/s; 0
    /// disables allocation (default).
    pub link_capacity: u64,
    /// How point-to-point messages are aggregated: `PHASECAST_AGGREGATION_*`
    /// (default Omaha pledge buffers; with the default send options nothing
    /// is ever delayed).
    pub aggregation: u32,
    /// Horizon of `PHASECAST_AGGREGATION_HORIZON`, µs (ignored otherwise).
    pub aggregation_horizon_us: u64,
    /// Largest batch of small total-order broadcasts gathered while this
    /// node's previous one still waits unsent (FastCast §3.5), bytes; each
    /// message is still delivered as an event of its own. Default 4096;
    /// 0 turns batching off.
    pub tob_batch: usize,
    /// QSM: largest partition (token ring) of a region, default 25.
    pub qsm_partition_size: usize,
    /// QSM: missing ranges per sender a token carries (`k`), default 4.
    pub qsm_ranges: usize,
    /// QSM: period of token release, µs (default 1 s, as QSM).
    pub qsm_token_period_us: u64,
    /// QSM: nodes per partition caching each message (at most 5).
    pub qsm_replication: usize,
    /// QSM: unacknowledged multicasts a sender may have per region (flow
    /// control; at most the node's ring capacity).
    pub qsm_window: u32,
    /// QSM: recovery requests a member sends per token visit.
    pub qsm_requests_per_visit: u32,
    /// QSM: token periods of silence before a ring member is skipped and
    /// its token regenerated (at least 1).
    pub qsm_suspect_after: u32,
    /// QSM: the shortest such silence, µs (default 2 s: a live member that
    /// pauses must not be skipped).
    pub qsm_suspect_min_us: u64,
}

/// Where a datagram goes or a message is sent.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct phasecast_destination {
    /// `PHASECAST_DEST_PEER` or `PHASECAST_DEST_GROUP`.
    pub kind: u32,
    /// The peer's node id, or the group id.
    pub id: u32,
}

/// A datagram `phasecast_node_poll_transmit` wrote into the caller's buffer.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct phasecast_transmit {
    /// Bytes to send: the first `len` bytes of the buffer. On
    /// `PHASECAST_ERR_BUFFER_TOO_SMALL`, the buffer size needed (the MTU).
    pub len: usize,
    /// Where to send it. A group destination is sent to every member of the
    /// group but this node: map it to an IP multicast group or fan it out as
    /// unicast datagrams.
    pub destination: phasecast_destination,
}

/// A total-order broadcast's id.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct phasecast_msg_id {
    /// Who broadcast it.
    pub sender: u16,
    /// The sender's counter of its broadcasts (0, 1, 2, … per message).
    pub counter: u32,
}

/// How to send one point-to-point or group message. Fill it with
/// `phasecast_send_options_init()`; pass `NULL` for the defaults.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct phasecast_send_options {
    /// `PHASECAST_CLASS_*` (default data).
    pub priority_class: u32,
    /// 1: a queue policy may push the message out under congestion (BASEL
    /// push-out); 0 (default): never lost once accepted.
    pub droppable: u32,
    /// Intrinsic value for value-based queue policies.
    pub value: u32,
    /// Omaha `probaBuf`: probability (0.0 ..= 1.0) that the message waits in
    /// its destination's pledge buffer while another application's pledge
    /// covers that destination; 0 (default) sends at once, with whatever was
    /// buffered for that destination.
    pub proba_buf: f32,
    /// Omaha `t`: longest time the message may wait in a buffer, µs.
    pub timeout_us: u64,
    /// Omaha `app`: the sending application (0 by default).
    pub app: u16,
    /// 1 (default): a peer may be waiting on this message (e.g. it completes
    /// a quorum); 0: nobody waits on it (`PHASECAST_AGGREGATION_CRITICALITY`
    /// may hold it until its timeout).
    pub critical: u32,
}

/// Kinds of `phasecast_event`.
#[repr(u32)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum phasecast_event_kind {
    /// `data.delivered`: the next message of the total order.
    PHASECAST_EVENT_DELIVERED = 1,
    /// `data.received`: a point-to-point or group message (unordered, best effort).
    PHASECAST_EVENT_RECEIVED = 2,
    /// `data.view`: a new view was installed; its first member is the sequencer.
    PHASECAST_EVENT_VIEW_CHANGED = 3,
    /// `data.suspected`: the failure detector suspects a member; a view change follows.
    PHASECAST_EVENT_SUSPECTED = 4,
    /// No data: this node was left out of a new view; it must restart with
    /// `join = 1` and a higher incarnation.
    PHASECAST_EVENT_EXCLUDED = 5,
    /// `data.bandwidth`: the bandwidth allocation changed this node's rate.
    PHASECAST_EVENT_BANDWIDTH_CHANGED = 6,
    /// `data.group_delivered`: the next message of a sender in a group
    /// (QSM reliable multicast: per-sender FIFO, reliable at live members).
    PHASECAST_EVENT_GROUP_DELIVERED = 7,
    /// An event this version of the C ABI does not describe; skip it.
    PHASECAST_EVENT_UNSUPPORTED = 255,
}

/// `PHASECAST_EVENT_DELIVERED`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct phasecast_delivered {
    /// Number in the total order: consecutive per application message
    /// (0, 1, 2, …, continuing across views), the same at every node.
    pub sn: u64,
    /// Who broadcast it.
    pub sender: u16,
    /// The bytes: owned by the node, valid until the next
    /// `phasecast_node_poll_event` on it or its destruction. Not `NULL`
    /// (points into the node even when `payload_len` is 0).
    pub payload: *const u8,
    /// Length of `payload`.
    pub payload_len: usize,
}

/// `PHASECAST_EVENT_GROUP_DELIVERED`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct phasecast_group_delivered {
    /// The group it was multicast to.
    pub group: u32,
    /// Who multicast it.
    pub sender: u16,
    /// The sender's per-group sequence number (from 1).
    pub seq: u32,
    /// The bytes: owned by the node, valid until the next
    /// `phasecast_node_poll_event` on it or its destruction.
    pub payload: *const u8,
    /// Length of `payload`.
    pub payload_len: usize,
}

/// One region of a group-membership view (QSM's CMS output): nodes with the
/// same group membership, reached at one multicast address.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct phasecast_region {
    /// The region's multicast address, as a group id the daemon maps to an
    /// IP multicast group or a unicast fan-out (`poll_transmit` names it).
    pub address: u32,
    /// Its members (any order, no duplicates); read during the call only.
    pub members: *const u16,
    /// Number of `members`.
    pub member_count: usize,
}

/// One group of a group-membership view: bit `i` of `regions` means the
/// group spans `regions[i]` of the same call.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct phasecast_group {
    /// The group id.
    pub group: u32,
    /// The regions it spans (bit mask over the call's region array).
    pub regions: u8,
}

/// `PHASECAST_EVENT_RECEIVED`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct phasecast_received {
    /// Sender.
    pub from: u16,
    /// How it was sent: to this node (`PHASECAST_DEST_PEER`, `id` = this
    /// node) or to a group (`PHASECAST_DEST_GROUP`, `id` = the group).
    pub to: phasecast_destination,
    /// The sender's message id.
    pub msg: u32,
    /// The bytes; same lifetime as `phasecast_delivered::payload`.
    pub payload: *const u8,
    /// Length of `payload`.
    pub payload_len: usize,
}

/// `PHASECAST_EVENT_VIEW_CHANGED`, and `phasecast_node_view()`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct phasecast_view {
    /// The view's id.
    pub view_id: u32,
    /// Entries of `members` in use.
    pub member_count: u32,
    /// The members in order; the first is the sequencer.
    pub members: [u16; PHASECAST_MAX_MEMBERS],
}

impl Default for phasecast_view {
    fn default() -> Self {
        phasecast_view {
            view_id: 0,
            member_count: 0,
            members: [0; PHASECAST_MAX_MEMBERS],
        }
    }
}

/// `PHASECAST_EVENT_SUSPECTED`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct phasecast_suspected {
    /// The suspected member.
    pub node: u16,
}

/// `PHASECAST_EVENT_BANDWIDTH_CHANGED`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct phasecast_bandwidth {
    /// This node's allocated rate, bytes/s (the unit of `link_capacity`).
    pub current: u64,
}

/// The data of an event; read the arm named by `phasecast_event::kind`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union phasecast_event_data {
    /// `PHASECAST_EVENT_DELIVERED`.
    pub delivered: phasecast_delivered,
    /// `PHASECAST_EVENT_RECEIVED`.
    pub received: phasecast_received,
    /// `PHASECAST_EVENT_VIEW_CHANGED`.
    pub view: phasecast_view,
    /// `PHASECAST_EVENT_SUSPECTED`.
    pub suspected: phasecast_suspected,
    /// `PHASECAST_EVENT_BANDWIDTH_CHANGED`.
    pub bandwidth: phasecast_bandwidth,
    /// `PHASECAST_EVENT_GROUP_DELIVERED`.
    pub group_delivered: phasecast_group_delivered,
}

/// One event for the application (`phasecast_node_poll_event`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct phasecast_event {
    /// Which arm of `data` is valid.
    pub kind: phasecast_event_kind,
    /// The event's fields.
    pub data: phasecast_event_data,
}

/// The node's counters (`phasecast_node_counters`): a copy.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct phasecast_counters {
    /// Datagrams handed to the host (a group datagram counts once, however
    /// many unicast copies the host makes of it).
    pub frames_sent: u64,
    /// Bytes of those datagrams (integrity bytes included, IP/UDP headers not).
    pub bytes_sent: u64,
    /// Records in those datagrams; `records_sent - frames_sent` datagrams
    /// were saved by aggregation.
    pub records_sent: u64,
    /// Datagrams sent, by why they left: drained, full, deadline.
    pub sent_because: [u64; PHASECAST_SEND_REASONS],
    /// Datagrams accepted.
    pub frames_received: u64,
    /// Bytes of accepted datagrams.
    pub bytes_received: u64,
    /// Records in accepted datagrams.
    pub records_received: u64,
    /// Drops and rejections by reason (`phasecast_drop_reason_str`).
    pub dropped: [u64; PHASECAST_DROP_REASONS],
    /// Decode failures by wire error.
    pub malformed: [u64; PHASECAST_WIRE_ERRORS],
    /// Messages sent again by a recovery protocol.
    pub retransmissions: u64,
    /// Application messages accepted by `send`.
    pub messages_accepted: u64,
    /// Application requests refused with `PHASECAST_FULL`.
    pub refused_full: u64,
    /// Message copies that waited in a pledge or time-based buffer instead
    /// of leaving at once.
    pub messages_buffered: u64,
    /// Messages delivered to the application.
    pub messages_delivered: u64,
    /// Most messages waiting in any one sink queue at once.
    pub queue_high_water: u64,
    /// Most payload-pool bytes in use at once.
    pub pool_high_water: u64,
    /// Rounds in which total-order delivery stalled and this node asked for repair.
    pub tob_stalls: u64,
    /// View changes started.
    pub view_changes_started: u64,
    /// Views installed.
    pub view_changes: u64,
    /// Proposals not made because they lacked a majority.
    pub view_blocked: u64,
}

/// Progress of the total order (`phasecast_node_tob_status`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct phasecast_tob_status {
    /// The view's id.
    pub view_id: u32,
    /// The sequencer.
    pub sequencer: u16,
    /// 1 while a view change is under way (ordering frozen).
    pub recovering: u32,
    /// Next sequence number to deliver.
    pub next_deliver: u64,
    /// This node's undelivered broadcasts (≤ `tob_window`).
    pub outstanding: usize,
}

/// What the library build holds (`phasecast_limits_get`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct phasecast_limits {
    /// Bytes of a node (`phasecast_node_size()`).
    pub node_size: usize,
    /// Alignment of a node (`phasecast_node_align()`).
    pub node_align: usize,
    /// Most members per cluster.
    pub max_members: usize,
    /// Smallest `mtu`.
    pub min_mtu: usize,
    /// Largest `mtu`.
    pub max_mtu: usize,
    /// Largest `max_message`.
    pub max_message: usize,
    /// Largest `tob_window`.
    pub max_tob_window: usize,
    /// Payload storage (outgoing messages and reassembly share it half and half), bytes.
    pub pool_bytes: usize,
    /// Storage for delivered payloads waiting for `poll_event`, bytes.
    pub inbox_bytes: usize,
}
