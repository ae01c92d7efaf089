//! The real [`Node`](crate::node::Node) as a simulator [`Endpoint`].

use super::Endpoint;
use crate::addr::{GroupId, NodeId, Transmit};
use crate::node::{Event, Node};
use crate::time::Instant;
use std::vec::Vec;

/// An owned copy of a node [`Event`], as the simulator records it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeEvent {
    /// See [`Event::Received`].
    Received {
        /// Sender.
        from: NodeId,
        /// Group, `None` for point to point.
        group: Option<GroupId>,
        /// Sender's message id.
        msg: u32,
        /// The bytes.
        payload: Vec<u8>,
    },
    /// See [`Event::Delivered`].
    Delivered {
        /// Sequence number.
        sn: u64,
        /// Who broadcast it.
        sender: NodeId,
        /// The bytes.
        payload: Vec<u8>,
    },
    /// See [`Event::ViewChanged`].
    ViewChanged {
        /// The view's id.
        view_id: u32,
        /// Its members.
        members: Vec<NodeId>,
    },
    /// See [`Event::Suspected`].
    Suspected {
        /// The suspected member.
        node: NodeId,
    },
    /// See [`Event::Excluded`].
    Excluded,
    /// See [`Event::BandwidthChanged`].
    BandwidthChanged {
        /// The new rate.
        current: u64,
    },
    /// See [`Event::GroupDelivered`].
    GroupDelivered {
        /// The group.
        group: GroupId,
        /// Who multicast it.
        sender: NodeId,
        /// Per-group sequence number.
        seq: u32,
        /// The bytes.
        payload: Vec<u8>,
    },
}

impl NodeEvent {
    /// Copies a borrowed event.
    pub fn from_event(ev: &Event<'_>) -> Self {
        match *ev {
            Event::Received {
                from,
                group,
                msg,
                payload,
            } => NodeEvent::Received {
                from,
                group,
                msg,
                payload: payload.to_vec(),
            },
            Event::Delivered {
                sn,
                sender,
                payload,
            } => NodeEvent::Delivered {
                sn,
                sender,
                payload: payload.to_vec(),
            },
            Event::ViewChanged { view_id, members } => NodeEvent::ViewChanged {
                view_id,
                members: members.iter().map(NodeId).collect(),
            },
            Event::Suspected { node } => NodeEvent::Suspected { node },
            Event::Excluded => NodeEvent::Excluded,
            Event::BandwidthChanged { current } => NodeEvent::BandwidthChanged { current },
            Event::GroupDelivered {
                group,
                sender,
                seq,
                payload,
            } => NodeEvent::GroupDelivered {
                group,
                sender,
                seq,
                payload: payload.to_vec(),
            },
        }
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
    > Endpoint for std::boxed::Box<Node<SINKS, QUEUE, SLOTS, BLOCKS, INBOX, MTU, GROUPS, RING>>
{
    type Event = NodeEvent;

    fn handle_datagram(&mut self, now: Instant, from: NodeId, bytes: &[u8]) {
        // The node verifies in place; multicast copies share their bytes in
        // the simulator, so each receiver works on its own copy.
        let mut copy = bytes.to_vec();
        // Rejections are counted by the node; the simulator has nothing to add.
        let _ = Node::handle_datagram(self, now, from, &mut copy);
    }

    fn handle_timeout(&mut self, now: Instant) {
        Node::handle_timeout(self, now);
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        Node::poll_transmit(self, now, buf).ok()
    }

    fn poll_event(&mut self) -> Option<NodeEvent> {
        Node::poll_event(self).map(|e| NodeEvent::from_event(&e))
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Node::poll_timeout(self)
    }
}
