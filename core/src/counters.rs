//! Counters the host can read: what left, what arrived, what was refused and why.
//!
//! Everything is a plain `u64` in fixed arrays indexed by enums, so reading
//! them is a copy and counting is one add: no allocation, no formatting.

/// Why a datagram left when it did (QSM §4's pull: a sink sends as soon as it
/// is ready and aggregates only what is already waiting).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum SendReason {
    /// Everything waiting for the destination fit: sent at once, nothing held.
    Drained = 0,
    /// The next record did not fit in the datagram.
    Full = 1,
    /// A hold on the sink (e.g. a pledge deadline) expired.
    Deadline = 2,
}

impl SendReason {
    /// Number of reasons.
    pub const COUNT: usize = 3;
}

/// Why a received datagram was rejected (it changed no protocol state), or
/// why something accepted earlier was dropped.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum DropReason {
    /// The datagram failed to decode (see the `wire` error counters).
    Malformed = 0,
    /// Cluster id of another cluster.
    ForeignCluster = 1,
    /// Sender not a member of the cluster.
    NotMember = 2,
    /// The sender field disagrees with the transport source the host gave.
    ForgedSender = 3,
    /// Our own datagram looped back by the network.
    OwnFrame = 4,
    /// A frame already received (anti-replay window).
    Duplicate = 5,
    /// Older than the anti-replay window, or from an older incarnation.
    Stale = 6,
    /// No room to hold what the frame carries (inbox or reassembly).
    NoBufferSpace = 7,
    /// A fragment that could not be stored (no slot, inconsistent, too many holes).
    FragmentRefused = 8,
    /// A message whose reassembly timed out.
    ReassemblyTimeout = 9,
    /// An accepted, droppable message pushed out by a queue policy (BASEL push-out).
    PushedOut = 10,
    /// A record of an unknown, ignorable type was skipped.
    IgnoredRecord = 11,
    /// An incomplete message abandoned to make room for a new one.
    ReassemblyEvicted = 12,
    /// A queued entry that could not fit even in an empty datagram.
    Unsendable = 13,
}

impl DropReason {
    /// Number of reasons.
    pub const COUNT: usize = 14;
}

/// The node's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Counters {
    /// Datagrams handed to the host.
    pub frames_sent: u64,
    /// Bytes of those datagrams (integrity bytes included, IP/UDP headers not).
    pub bytes_sent: u64,
    /// Records in those datagrams.
    pub records_sent: u64,
    /// Datagrams sent, by why they left.
    pub sent_because: [u64; SendReason::COUNT],
    /// Datagrams accepted.
    pub frames_received: u64,
    /// Bytes of accepted datagrams.
    pub bytes_received: u64,
    /// Records in accepted datagrams.
    pub records_received: u64,
    /// Drops and rejections by reason.
    pub dropped: [u64; DropReason::COUNT],
    /// Decode failures by wire error (index = `wire::Error::index`).
    pub malformed: [u64; crate::wire::Error::COUNT],
    /// Messages sent again by a recovery protocol.
    pub retransmissions: u64,
    /// Application messages accepted by `send`.
    pub messages_accepted: u64,
    /// Application requests refused with `Full` (backpressure).
    pub refused_full: u64,
    /// Message copies that waited in a pledge buffer (Omaha) or a
    /// time-based aggregation buffer instead of leaving at once.
    pub messages_buffered: u64,
    /// Messages delivered to the application.
    pub messages_delivered: u64,
    /// Most messages waiting in any one sink queue at once.
    pub queue_high_water: u64,
    /// Most payload-pool bytes in use at once.
    pub pool_high_water: u64,
    /// Rounds in which total-order delivery stalled and this process asked
    /// the sequencer for repair (a slow or lossy member holds the group back).
    pub tob_stalls: u64,
    /// View changes started.
    pub view_changes_started: u64,
    /// Views installed.
    pub view_changes: u64,
    /// Proposals not made because they lacked a majority (primary partition).
    pub view_blocked: u64,
}

impl Counters {
    /// Records per datagram sent, ×1000 (integer so it is identical everywhere).
    pub fn records_per_frame_milli(&self) -> u64 {
        (self.records_sent * 1000)
            .checked_div(self.frames_sent)
            .unwrap_or(0)
    }
    /// Total of all drop reasons.
    pub fn total_dropped(&self) -> u64 {
        self.dropped.iter().sum()
    }
    pub(crate) fn drop(&mut self, r: DropReason) {
        self.dropped[r as usize] += 1;
    }
}
