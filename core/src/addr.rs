//! Who talks to whom: node ids, group ids and transmit destinations.
//!
//! The core never knows socket addresses. A destination is either a peer
//! (a node id) or a group (a group id); the host maps a peer to an address and
//! a group to an IP multicast group or to a unicast fan-out (QSM §3: a
//! multicast to a group is sent once per region; FastCast §3.3: DATA is sent
//! to all in one multicast transmission when the network allows it).

/// A node's identity inside a cluster.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NodeId(pub u16);

/// A multicast group's identity. [`GroupId::ALL`] is the whole cluster.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GroupId(pub u32);

impl GroupId {
    /// The group of every member of the cluster.
    pub const ALL: GroupId = GroupId(0);
}

/// Where a datagram goes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Destination {
    /// One peer.
    Peer(NodeId),
    /// Every member of a group except the sender (IP multicast or fan-out).
    Group(GroupId),
}

/// A datagram the host must send: its bytes are the first `len` bytes of the
/// buffer given to `poll_transmit`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Transmit {
    /// Where to send it.
    pub destination: Destination,
    /// How many bytes of the caller's buffer to send.
    pub len: usize,
}
