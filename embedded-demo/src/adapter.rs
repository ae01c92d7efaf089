//! Drive a phasecast node from an embassy-net UDP socket.
//!
//! The core is sans-IO: it never touches a socket or a clock. This module is
//! the whole host loop for an embassy firmware, in one `async fn`
//! ([`run`]), so a firmware with a real Ethernet or Wi-Fi driver only has to
//! hand it a bound [`UdpSocket`], a [`Routes`] table and a callback for
//! events:
//!
//! 1. datagrams that are already waiting in the socket go to
//!    `handle_datagram` (the source address is mapped to a [`NodeId`] through
//!    [`Routes`]; datagrams from elsewhere are counted and dropped);
//! 2. when `poll_timeout` has passed, `handle_timeout`;
//! 3. `poll_event` is drained into the callback;
//! 4. `poll_transmit` is drained into the socket — each datagram is awaited
//!    into the socket before the next is pulled, so the core's sinks are
//!    asked for data only when the network can take it (backpressure instead
//!    of drops);
//! 5. sleep until a datagram arrives, the core's deadline passes, or the
//!    application touched the node through [`NodeCell::with`].
//!
//! Design decisions:
//! * **The node lives in a [`NodeCell`]**, a blocking mutex around a
//!   `RefCell` plus a wake-up signal, so application tasks on the same
//!   executor can `broadcast` without a channel or a copy of the payload;
//!   each `with` wakes the driver loop so the message leaves at once.
//! * **Events are handed out by callback, not by channel.** An
//!   [`Event`]'s payload borrows the node until the next `poll_event`;
//!   copying it into a queue would need another payload-sized buffer per
//!   event. The callback runs while the node is borrowed, so it must not call
//!   [`NodeCell::with`] (that would panic on the `RefCell`); it should record
//!   or copy what it needs.
//! * **Group datagrams** (`Destination::Group`) go to one broadcast or
//!   multicast endpoint when [`Routes::group`] names one, otherwise they are
//!   sent to every peer in turn (unicast fan-out), which works on any
//!   network.
//! * **Time** is embassy-time's monotonic clock in microseconds
//!   ([`now`]): the core only needs a clock that never goes back.

use core::cell::RefCell;
use core::future::poll_fn;
use core::sync::atomic::{AtomicU32, Ordering};
use core::task::Poll;

use embassy_futures::select::select3;
use embassy_net::udp::{SendError, UdpSocket};
use embassy_net::IpEndpoint;
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::signal::Signal;
use embassy_time::Timer;
use phasecast_core::nb;
use phasecast_core::{Destination, DropReason, Error, Event, Instant, Node, NodeId, Transmit};

/// The host calls of a phasecast node that a driver loop needs.
///
/// Implemented for every [`phasecast_core::Node`], whatever its capacities;
/// it lets [`run`] and [`NodeCell`] stay generic over the six const
/// generics.
pub trait Engine {
    /// The configured datagram budget; transmit buffers must be this long.
    fn mtu(&self) -> usize;
    /// A datagram arrived from `from`.
    fn handle_datagram(
        &mut self,
        now: Instant,
        from: NodeId,
        bytes: &mut [u8],
    ) -> Result<(), DropReason>;
    /// The deadline of [`Engine::poll_timeout`] passed.
    fn handle_timeout(&mut self, now: Instant);
    /// When to call [`Engine::handle_timeout`] next.
    fn poll_timeout(&self) -> Option<Instant>;
    /// The next datagram to send, written into `buf`.
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> nb::Result<Transmit, Error>;
    /// The next event for the application.
    fn poll_event(&mut self) -> Option<Event<'_>>;
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
    > Engine for Node<SINKS, QUEUE, SLOTS, BLOCKS, INBOX, MTU, GROUPS, RING>
{
    fn mtu(&self) -> usize {
        Node::mtu(self)
    }
    fn handle_datagram(
        &mut self,
        now: Instant,
        from: NodeId,
        bytes: &mut [u8],
    ) -> Result<(), DropReason> {
        Node::handle_datagram(self, now, from, bytes)
    }
    fn handle_timeout(&mut self, now: Instant) {
        Node::handle_timeout(self, now)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Node::poll_timeout(self)
    }
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> nb::Result<Transmit, Error> {
        Node::poll_transmit(self, now, buf)
    }
    fn poll_event(&mut self) -> Option<Event<'_>> {
        Node::poll_event(self)
    }
}

/// The current time on the core's clock: embassy-time's monotonic clock in
/// microseconds.
pub fn now() -> Instant {
    Instant::from_micros(embassy_time::Instant::now().as_micros())
}

/// A node shared between the driver loop ([`run`]) and application tasks of
/// the same executor.
///
/// Put it in a `static` (e.g. a `StaticCell`): a node holds all its storage
/// inline and is too large for a task stack.
pub struct NodeCell<E> {
    node: Mutex<NoopRawMutex, RefCell<E>>,
    kick: Signal<NoopRawMutex, ()>,
}

impl<E: Engine> NodeCell<E> {
    /// Wraps a node.
    pub const fn new(node: E) -> Self {
        NodeCell {
            node: Mutex::new(RefCell::new(node)),
            kick: Signal::new(),
        }
    }

    /// Runs `f` on the node (e.g. `broadcast`), then wakes the driver loop so
    /// that whatever `f` queued leaves without waiting for the next deadline.
    ///
    /// Panics if called from inside the event callback of [`run`] (the node
    /// is borrowed there).
    pub fn with<R>(&self, f: impl FnOnce(&mut E) -> R) -> R {
        let r = self.lock(f);
        self.kick.signal(());
        r
    }

    /// Runs `f` on the node without waking the driver loop (for reads).
    pub fn peek<R>(&self, f: impl FnOnce(&E) -> R) -> R {
        self.node.lock(|n| f(&n.borrow()))
    }

    fn lock<R>(&self, f: impl FnOnce(&mut E) -> R) -> R {
        self.node.lock(|n| f(&mut n.borrow_mut()))
    }
}

/// Where the members of the cluster are on the IP network.
#[derive(Clone, Copy, Debug)]
pub struct Routes<'a> {
    /// Every member's node id and UDP endpoint (this node's own entry may be
    /// included; it is never sent to).
    pub members: &'a [(NodeId, IpEndpoint)],
    /// Endpoint for datagrams to the whole cluster: a subnet broadcast or
    /// multicast address with the cluster's port. `None`: send each group
    /// datagram to every other member in turn.
    pub group: Option<IpEndpoint>,
    /// This node (skipped by the unicast fan-out).
    pub me: NodeId,
}

impl Routes<'_> {
    /// The member a datagram from `from` belongs to.
    pub fn node_of(&self, from: IpEndpoint) -> Option<NodeId> {
        self.members
            .iter()
            .find(|(_, ep)| *ep == from)
            .map(|(id, _)| *id)
    }

    /// The endpoint of member `id`.
    pub fn endpoint_of(&self, id: NodeId) -> Option<IpEndpoint> {
        self.members
            .iter()
            .find(|(n, _)| *n == id)
            .map(|(_, ep)| *ep)
    }
}

/// What the driver loop saw besides the core's own counters.
#[derive(Debug, Default)]
pub struct LinkStats {
    /// Datagrams handed to the core.
    pub received: AtomicU32,
    /// Datagrams the core rejected (its counters say why).
    pub rejected: AtomicU32,
    /// Datagrams from an endpoint that is not in [`Routes`].
    pub unknown_source: AtomicU32,
    /// Datagrams longer than the receive buffer (dropped by the socket).
    pub truncated: AtomicU32,
    /// Datagrams handed to the socket.
    pub sent: AtomicU32,
    /// Datagrams the socket refused (no route, too large).
    pub send_errors: AtomicU32,
    /// Turns of the driver loop (wake-ups).
    pub turns: AtomicU32,
}

impl LinkStats {
    /// All zero.
    pub const fn new() -> Self {
        LinkStats {
            received: AtomicU32::new(0),
            rejected: AtomicU32::new(0),
            unknown_source: AtomicU32::new(0),
            truncated: AtomicU32::new(0),
            sent: AtomicU32::new(0),
            send_errors: AtomicU32::new(0),
            turns: AtomicU32::new(0),
        }
    }
}

fn bump(c: &AtomicU32) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Drives `cell`'s node over `socket` forever.
///
/// `socket` must be bound to the cluster's port; `buf` is the datagram
/// buffer for both directions and must hold at least the node's MTU (a
/// shorter one makes `poll_transmit` fail, so nothing is ever sent).
/// `on_event` receives every event the node produces, in order; it runs
/// while the node is borrowed (see [`NodeCell::with`]).
pub async fn run<E: Engine>(
    cell: &NodeCell<E>,
    socket: &UdpSocket<'_>,
    routes: &Routes<'_>,
    buf: &mut [u8],
    stats: &LinkStats,
    mut on_event: impl FnMut(&Event<'_>),
) -> ! {
    loop {
        bump(&stats.turns);
        // 1. Datagrams in: everything the socket holds now, without waiting.
        loop {
            let got = poll_fn(|cx| match socket.poll_recv_from(buf, cx) {
                Poll::Ready(r) => Poll::Ready(Some(r)),
                Poll::Pending => Poll::Ready(None),
            })
            .await;
            match got {
                None => break,
                Some(Err(_)) => bump(&stats.truncated),
                Some(Ok((n, meta))) => match routes.node_of(meta.endpoint) {
                    Some(from) => {
                        bump(&stats.received);
                        let datagram = &mut buf[..n];
                        if cell
                            .lock(|node| node.handle_datagram(now(), from, datagram))
                            .is_err()
                        {
                            bump(&stats.rejected);
                        }
                    }
                    None => bump(&stats.unknown_source),
                },
            }
        }
        // 2. Alarms.
        let t = now();
        cell.lock(|node| {
            if node.poll_timeout().is_some_and(|d| d <= t) {
                node.handle_timeout(t);
            }
        });
        // 3. Events out (before sending: deliveries should not wait on the network).
        cell.lock(|node| {
            while let Some(ev) = node.poll_event() {
                on_event(&ev);
            }
        });
        // 4. Datagrams out, one at a time, each awaited into the socket.
        loop {
            let tx = cell.lock(|node| node.poll_transmit(now(), buf));
            let Ok(tx) = tx else { break };
            let datagram = &buf[..tx.len];
            match tx.destination {
                Destination::Peer(p) => match routes.endpoint_of(p) {
                    Some(ep) => send(socket, datagram, ep, stats).await,
                    None => bump(&stats.send_errors),
                },
                Destination::Group(_) => match routes.group {
                    Some(ep) => send(socket, datagram, ep, stats).await,
                    None => {
                        for &(id, ep) in routes.members {
                            if id != routes.me {
                                send(socket, datagram, ep, stats).await;
                            }
                        }
                    }
                },
            }
        }
        // 5. Sleep until a datagram, the core's deadline, or the application.
        let deadline = cell.peek(|node| node.poll_timeout());
        let timer = async {
            match deadline {
                Some(d) => Timer::at(embassy_time::Instant::from_micros(d.as_micros())).await,
                None => core::future::pending().await,
            }
        };
        select3(socket.wait_recv_ready(), timer, cell.kick.wait()).await;
    }
}

async fn send(socket: &UdpSocket<'_>, datagram: &[u8], to: IpEndpoint, stats: &LinkStats) {
    match socket.send_to(datagram, to).await {
        Ok(()) => bump(&stats.sent),
        Err(SendError::NoRoute | SendError::SocketNotBound | SendError::PacketTooLarge) => {
            bump(&stats.send_errors)
        }
    }
}
