//! # phasecast-core
//!
//! An allocation-free, single-threaded, `no_std` **sans-IO** engine for group
//! communication over datagrams. The host owns the sockets and the clock; the
//! engine owns the protocol state. The host hands it datagrams and the current
//! time and pulls out datagrams to send, events to deliver and the next
//! deadline:
//!
//! | host calls | what it does |
//! | --- | --- |
//! | [`Node::handle_datagram`] | a datagram arrived (rejected ones change nothing and are counted) |
//! | [`Node::handle_timeout`] | the deadline of [`Node::poll_timeout`] passed |
//! | [`Node::poll_transmit`] | next datagram to send, or `WouldBlock` |
//! | [`Node::poll_event`] | next event for the application |
//! | [`Node::poll_timeout`] | when to call `handle_timeout` next |
//! | [`Node::send`] | application message; `Err(Full)` is backpressure |
//!
//! Data flows one way: datagram → [`wire`] → node admission → protocol state
//! → [`inbox`] → [`Event`]; application → [`feed`]s → sinks ([`queue`] +
//! [`control`]) → [`wire::FrameWriter`] → datagram.
//!
//! ## A host loop
//!
//! Two nodes wired back to back in memory; a real host does the same with
//! sockets (see `examples/loopback_cluster.rs`).
//!
//! ```
//! use phasecast_core::{Config, Destination, Event, Instant, NodeId, SendOptions, SmallNode};
//!
//! let members = [NodeId(1), NodeId(2)];
//! let now = Instant::from_millis(1);
//! let mut a = Box::new(SmallNode::new(&Config { mtu: 576, ..Config::new(NodeId(1), &members) }, now).unwrap());
//! let mut b = Box::new(SmallNode::new(&Config { mtu: 576, ..Config::new(NodeId(2), &members) }, now).unwrap());
//!
//! a.send(now, Destination::Peer(NodeId(2)), b"hello", SendOptions::default()).unwrap();
//!
//! let mut buf = [0u8; 576];
//! // Drain what `a` may send now and hand it to `b`.
//! while let Ok(tx) = a.poll_transmit(now, &mut buf) {
//!     assert_eq!(tx.destination, Destination::Peer(NodeId(2)));
//!     b.handle_datagram(now, NodeId(1), &mut buf[..tx.len]).unwrap();
//! }
//! // `b` delivers; the payload borrows the node until the next poll_event.
//! match b.poll_event() {
//!     Some(Event::Received { from, payload, .. }) => {
//!         assert_eq!(from, NodeId(1));
//!         assert_eq!(payload, b"hello");
//!     }
//!     other => panic!("{other:?}"),
//! }
//! // Nothing else is due; sleep until the next deadline, if any.
//! assert!(b.poll_event().is_none());
//! if let Some(t) = a.poll_timeout() { a.handle_timeout(t); }
//! ```
//!
//! ## Guarantees of this crate
//!
//! `#![no_std]`, no `alloc`, `#![forbid(unsafe_code)]`; every capacity is a
//! const generic of [`Node`]; time and randomness come from the host (a seed),
//! so a run replays bit for bit. The `std` feature only adds the simulator
//! ([`sim`]); `defmt` derives `defmt::Format` on public types.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod addr;
pub mod bandwidth;
pub mod control;
pub mod counters;
pub mod feed;
pub mod heap;
pub mod inbox;
pub mod node;
pub mod pledge;
pub mod pool;
pub mod qsm;
pub mod queue;
pub mod reassembly;
pub mod rng;
pub mod seq;
#[cfg(feature = "std")]
pub mod sim;
pub mod time;
pub mod timer;
pub mod wire;

pub use addr::{Destination, GroupId, NodeId, Transmit};
pub use counters::{Counters, DropReason, SendReason};
pub use feed::Class;
pub use nb;
pub use node::{
    Config, Error, Event, HostNode, MsgId, Node, RateLimit, SendOptions, SmallNode, ViewPolicy,
};
pub use pledge::{Aggregation, AppId};
pub use time::{Duration, Instant};
pub use wire::Integrity;
