//! Counters and the optional datagram trace, for bandwidth, throughput and
//! latency computations after a run.

use std::vec::Vec;

use crate::addr::{Destination, NodeId};
use crate::time::Instant;

/// Counters of one node (or of the whole network in [`Stats::total`]).
///
/// Send-side counters are charged to the sender; receive-side counters and
/// drops are charged to the intended receiver (except `dropped_unknown`,
/// charged to the sender since there is no receiver).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Unicast transmissions (one uplink serialization each).
    pub sent_unicast: u64,
    /// Multicast transmissions (one uplink serialization each, whatever the
    /// number of receivers).
    pub sent_multicast: u64,
    /// Payload bytes put on the uplink.
    pub sent_payload_bytes: u64,
    /// IP + UDP header bytes put on the uplink.
    pub sent_header_bytes: u64,
    /// Datagrams handed to an endpoint (`handle_datagram`).
    pub received: u64,
    /// Payload bytes handed to an endpoint.
    pub received_payload_bytes: u64,
    /// Header bytes of the datagrams handed to an endpoint.
    pub received_header_bytes: u64,
    /// Copies lost by the link's loss probability.
    pub lost: u64,
    /// Extra copies created by the link's duplication probability.
    pub duplicated: u64,
    /// Copies that got the extra reorder delay.
    pub reordered: u64,
    /// Copies held back by a clogged (swizzled) node until it unclogged.
    pub clogged: u64,
    /// Copies dropped by a partition or a one-way cut.
    pub dropped_partition: u64,
    /// Copies dropped because the receiver was down (at arrival, or crashed
    /// while the copy waited in its downlink queue).
    pub dropped_crash: u64,
    /// Copies dropped by a full downlink queue (drop tail).
    pub dropped_queue: u64,
    /// Unicasts to a node id outside the simulation.
    pub dropped_unknown: u64,
    /// Endpoint events recorded.
    pub events: u64,
    /// Application operations that returned [`AppResult::Done`](super::AppResult::Done).
    pub app_done: u64,
    /// Application operation attempts that returned [`AppResult::Retry`](super::AppResult::Retry).
    pub app_retries: u64,
    /// Application operations discarded because their node was down.
    pub app_dropped: u64,
}

impl Counters {
    /// All transmissions (unicast + multicast).
    pub fn sent(&self) -> u64 {
        self.sent_unicast + self.sent_multicast
    }
}

/// Per-node and total counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Sum over all nodes.
    pub total: Counters,
    /// Indexed by `NodeId.0`.
    pub per_node: Vec<Counters>,
}

impl Stats {
    pub(crate) fn new(nodes: usize) -> Self {
        Stats {
            total: Counters::default(),
            per_node: std::vec![Counters::default(); nodes],
        }
    }

    /// Counters of `node` (all zero for an unknown id).
    pub fn node(&self, node: NodeId) -> Counters {
        self.per_node
            .get(usize::from(node.0))
            .copied()
            .unwrap_or_default()
    }

    /// Applies `f` to the node's counters and to the total.
    pub(crate) fn bump(&mut self, node: NodeId, f: impl Fn(&mut Counters)) {
        f(&mut self.total);
        if let Some(c) = self.per_node.get_mut(usize::from(node.0)) {
            f(c);
        }
    }
}

/// Why a copy of a datagram did not reach its receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Random link loss.
    Loss,
    /// Partition or one-way cut.
    Partition,
    /// Receiver down.
    Crash,
    /// Receiver's downlink queue full.
    Queue,
    /// No such node.
    Unknown,
}

/// What happened to a datagram in a [`TraceRecord`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TraceKind {
    /// The sender's host pulled it from the endpoint (start of uplink
    /// serialization); recorded once per transmission, multicast included.
    Sent,
    /// Handed to receiver `to`.
    Delivered {
        /// The receiver.
        to: NodeId,
    },
    /// A copy for `to` was dropped.
    Dropped {
        /// The intended receiver.
        to: NodeId,
        /// Why.
        reason: DropReason,
    },
}

/// One line of the optional datagram trace (see [`SimConfig::trace`](super::SimConfig::trace)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TraceRecord {
    /// When it happened.
    pub at: Instant,
    /// Transmission number, counting from 1 in send order: the `Sent` record
    /// and the `Delivered` / `Dropped` records of all its copies (duplicates
    /// included) share it, so per-copy latency is a join on this field.
    pub datagram: u64,
    /// The sender.
    pub from: NodeId,
    /// The destination the sender asked for.
    pub destination: Destination,
    /// Payload length in bytes (headers excluded).
    pub len: usize,
    /// What happened.
    pub kind: TraceKind,
}
