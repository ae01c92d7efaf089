//! Deterministic discrete-event network simulator (std only).
//!
//! Drives N sans-IO [`Endpoint`]s over virtual time with one seed for all
//! randomness, so a run replays bit for bit. It is the engine of the
//! experiments: protocols are measured here before they meet real sockets.
//!
//! # Host loop (QSM §4 event core, Fig. 9–10 pull architecture)
//!
//! After every input to a node — a datagram delivery, a timer wake-up, an
//! application operation, a restart, or its uplink becoming free — the
//! simulator acts like the real host:
//!
//! 1. pull datagrams with `poll_transmit` until it returns `None`, each one
//!    entering the network at once;
//! 2. drain `poll_event`, recording each event with the current time;
//! 3. (re)schedule the node's single wake-up at `poll_timeout`, replacing any
//!    earlier one (a per-node generation counter makes stale wake-ups no-ops).
//!
//! **Pull, not push.** When the node has a finite uplink, the host pulls *one*
//! datagram, schedules an "uplink free" input at the end of its serialization,
//! and only then pulls the next. The endpoint is thus asked for a datagram
//! exactly when its link can carry one — QSM's sink polling its feeds when
//! ready — so it can build control messages just in time and keep its own
//! queues as the only queues (no hidden host buffer absorbs a burst).
//!
//! Queued application operations ([`Sim::app_at`]) are attempted after each
//! input, after step 1, and the loop repeats while they make progress.
//!
//! # Network model (FastCast §2: full-duplex NICs behind a switch)
//!
//! * Each node has an uplink and a downlink, independent (full duplex), each
//!   with a rate in bits/s or infinite. Serialization time counts payload
//!   *and* header bytes.
//! * A unicast costs the sender one uplink serialization and the receiver one
//!   downlink reception. A multicast ([`Destination::Group`]) costs the sender
//!   **one** uplink serialization and each receiver one downlink reception;
//!   the sender is excluded from its own multicast, like a switch does.
//! * A copy leaves at the end of uplink serialization, propagates for a
//!   latency drawn from its directed link, then queues FIFO on the receiver's
//!   downlink: delivery = max(propagation arrival, downlink free) + size/rate.
//!   An optional bound on that queue drops tail.
//! * Loss, duplication and reordering (an extra random delay) are drawn per
//!   receiver copy from the directed link's probabilities.
//!
//! # Faults
//!
//! * **Crash / restart** ([`Sim::crash`], [`Sim::restart`]): a crashed node
//!   stops processing; copies it already sent still arrive; copies arriving
//!   for it (or waiting in its downlink) are dropped; its queued application
//!   operations are discarded. Restart builds a fresh endpoint with the
//!   factory and a fresh seed derived from (seed, node, incarnation). The
//!   crashed endpoint stays readable through [`Sim::node`] until then.
//! * **Partitions and cuts** ([`Sim::partition`], [`Sim::cut`]) are checked
//!   when a copy is sent (and again when a clogged copy is released): copies
//!   already in flight when a partition starts still arrive. Nodes not listed
//!   in any group of a partition form one extra group together.
//! * **Swizzle-clogging** (FoundationDB; [`Sim::swizzle`]): a random subset of
//!   nodes is clogged one at a time every `step`, then unclogged one at a time
//!   in a random order. Decision: a clog *delays* rather than drops — a copy
//!   sent from or to a clogged node is held and leaves (with a fresh latency)
//!   when both ends are unclogged. This stresses timeouts and reordering
//!   without adding loss, which the loss rate already models.
//! * [`Sim::heal_all`] ends every active fault (partitions, cuts, clogs,
//!   link loss/duplication/reordering) and optionally restarts crashed nodes:
//!   the start of a *liveness phase*. Faults scheduled to start later still do.
//! * [`FaultPlan::random`] draws a whole VOPR-style fault phase from a seed.
//!
//! # Usage
//!
//! ```
//! use phasecast_core::addr::{Destination, NodeId, Transmit};
//! use phasecast_core::sim::{AppResult, Endpoint, Sim, SimConfig};
//! use phasecast_core::time::Instant;
//!
//! /// Sends what the application queued; reports what it receives.
//! #[derive(Default)]
//! struct Toy { out: Vec<(NodeId, u8)>, got: Vec<u8> }
//!
//! impl Endpoint for Toy {
//!     type Event = u8;
//!     fn handle_datagram(&mut self, _: Instant, _: NodeId, b: &[u8]) { self.got.push(b[0]) }
//!     fn handle_timeout(&mut self, _: Instant) {}
//!     fn poll_transmit(&mut self, _: Instant, buf: &mut [u8]) -> Option<Transmit> {
//!         let (to, v) = self.out.pop()?;
//!         buf[0] = v;
//!         Some(Transmit { destination: Destination::Peer(to), len: 1 })
//!     }
//!     fn poll_event(&mut self) -> Option<u8> { self.got.pop() }
//!     fn poll_timeout(&self) -> Option<Instant> { None }
//! }
//!
//! let mut sim = Sim::new(SimConfig::new(2, 7), |_id, _seed| Toy::default());
//! sim.app_at(NodeId(0), Instant::from_millis(1), Box::new(|t: &mut Toy, _now| {
//!     t.out.push((NodeId(1), 42));
//!     AppResult::Done
//! }));
//! sim.run_until(Instant::from_millis(10));
//! // Default link: 100 µs latency.
//! assert_eq!(sim.events(), &[(Instant::from_micros(1100), NodeId(1), 42)]);
//! assert_eq!(sim.stats().total.received, 1);
//! ```
//!
//! # Determinism
//!
//! Events are ordered by (time, insertion counter) in a binary heap, nodes
//! are visited in id order, maps are `BTreeMap`s, and every random draw comes
//! from generators seeded from [`SimConfig::seed`].

pub mod check;
mod config;
mod fault;
mod node;
pub mod paxos;
pub mod qsm;
mod stats;
#[cfg(test)]
mod tests;

pub use check::{Checks, Counts, Delivery, History, MsgId, Report, Violation};
pub use config::{Latency, LinkConfig, SimConfig};
pub use fault::FaultPlan;
pub use node::NodeEvent;
pub use stats::{Counters, DropReason, Stats, TraceKind, TraceRecord};

use core::cmp::Ordering;
use std::boxed::Box;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::rc::Rc;
use std::vec::Vec;

use crate::addr::{Destination, GroupId, NodeId, Transmit};
use crate::rng::Rng;
use crate::time::{Duration, Instant};
use config::{chance, serialization};

/// A sans-IO endpoint the simulator can drive (the real `Node` implements it;
/// tests use toy endpoints).
pub trait Endpoint {
    /// What the endpoint reports to the application (deliveries, view
    /// changes, ...).
    type Event: Clone + core::fmt::Debug;
    /// A datagram from `from` arrived at `now`.
    fn handle_datagram(&mut self, now: Instant, from: NodeId, bytes: &[u8]);
    /// The deadline last returned by `poll_timeout` has passed.
    fn handle_timeout(&mut self, now: Instant);
    /// Write one datagram into `buf`; `None` when nothing may leave now.
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit>;
    /// Next event for the application, if any.
    fn poll_event(&mut self) -> Option<Self::Event>;
    /// When `handle_timeout` should next be called, if ever.
    fn poll_timeout(&self) -> Option<Instant>;
}

/// Outcome of an application operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AppResult {
    /// The operation took effect; it leaves the queue.
    Done,
    /// The core refused it for now (e.g. `Full`); keep it at the head of the
    /// node's queue and try again after the node's next input.
    Retry,
}

/// An application operation run against a node's endpoint at a virtual time.
pub type AppOp<E> = Box<dyn FnMut(&mut E, Instant) -> AppResult>;

/// Builds the endpoint of a node from its id and a seed derived from the
/// simulation seed (called at construction and at each restart).
pub type Factory<E> = Box<dyn FnMut(NodeId, u64) -> E>;

/// An endpoint event handed to a [`Sim::run_until_with`] hook.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivered<Ev> {
    /// When the endpoint reported it.
    pub at: Instant,
    /// Which node reported it.
    pub node: NodeId,
    /// The event.
    pub event: Ev,
}

/// Per-node host state.
struct NodeState<E> {
    ep: E,
    up: bool,
    /// Bumped at crash and restart: invalidates in-flight per-node events.
    epoch: u32,
    incarnation: u32,
    wake_gen: u64,
    wake_at: Option<Instant>,
    up_bps: Option<u64>,
    down_bps: Option<u64>,
    uplink_free: Instant,
    uplink_pending: bool,
    downlink_free: Instant,
    downlink_queued: usize,
    app: VecDeque<AppOp<E>>,
    clogs: u32,
}

enum Ev<E> {
    /// Run the host loop with no input (initial start).
    Kick {
        node: u16,
        epoch: u32,
    },
    Wake {
        node: u16,
        gen: u64,
    },
    UplinkFree {
        node: u16,
        epoch: u32,
    },
    /// Propagation done: the copy reaches the receiver's downlink.
    Arrive {
        to: NodeId,
        pkt: Packet,
    },
    /// Downlink reception done.
    Deliver {
        to: NodeId,
        pkt: Packet,
        epoch: u32,
    },
    App {
        node: u16,
        op: AppOp<E>,
    },
    Crash(u16),
    Restart(u16),
    PartitionStart(usize),
    PartitionEnd(usize),
    CutStart(usize),
    CutEnd(usize),
    Clog(usize),
    Unclog(usize),
    HealAll {
        restart: bool,
    },
}

struct Scheduled<E> {
    at: Instant,
    seq: u64,
    ev: Ev<E>,
}

impl<E> PartialEq for Scheduled<E> {
    fn eq(&self, o: &Self) -> bool {
        self.at == o.at && self.seq == o.seq
    }
}
impl<E> Eq for Scheduled<E> {}
impl<E> PartialOrd for Scheduled<E> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl<E> Ord for Scheduled<E> {
    /// Reversed: `BinaryHeap` is a max-heap and we pop the earliest first;
    /// `seq` breaks ties in insertion order.
    fn cmp(&self, o: &Self) -> Ordering {
        o.at.cmp(&self.at).then_with(|| o.seq.cmp(&self.seq))
    }
}

struct PartitionState {
    group_of: Vec<u32>,
    active: bool,
}

/// One copy of a transmission on its way to one receiver.
struct Packet {
    from: NodeId,
    destination: Destination,
    /// Transmission number (shared by every copy; see [`TraceRecord::datagram`]).
    id: u64,
    data: Rc<[u8]>,
}

/// A copy held by a clog.
struct Held {
    to: NodeId,
    pkt: Packet,
}

/// The simulator. See the [module documentation](self) for the model.
pub struct Sim<E: Endpoint> {
    cfg: SimConfig,
    now: Instant,
    seq: u64,
    steps: u64,
    heap: BinaryHeap<Scheduled<E>>,
    nodes: Vec<NodeState<E>>,
    factory: Factory<E>,
    net_rng: Rng,
    fault_rng: Rng,
    links: BTreeMap<(NodeId, NodeId), LinkConfig>,
    groups: BTreeMap<GroupId, Rc<[NodeId]>>,
    partitions: Vec<PartitionState>,
    active_partitions: usize,
    cuts: Vec<(NodeId, NodeId, bool)>,
    cut_count: BTreeMap<(NodeId, NodeId), u32>,
    clogs: Vec<(NodeId, bool)>,
    clogged_nodes: usize,
    held: Vec<Held>,
    stats: Stats,
    events: Vec<(Instant, NodeId, E::Event)>,
    new_events: Vec<(Instant, NodeId, E::Event)>,
    trace: Vec<TraceRecord>,
    transmissions: u64,
    buf: Vec<u8>,
}

/// Seed of a node's `incarnation`-th endpoint: injective in (node,
/// incarnation) for a given master seed, then mixed.
fn derive_seed(master: u64, node: u16, incarnation: u32) -> u64 {
    let base = Rng::new(master).next_u64();
    Rng::new(base ^ ((u64::from(node) << 32) | u64::from(incarnation))).next_u64()
}

impl<E: Endpoint> Sim<E> {
    /// A simulation of `config.nodes` endpoints built by `factory(id, seed)`.
    ///
    /// Every node gets an initial host-loop pass at time zero (so endpoints
    /// may send or arm timers right away). [`GroupId::ALL`] contains every
    /// node.
    pub fn new(config: SimConfig, factory: impl FnMut(NodeId, u64) -> E + 'static) -> Self {
        let mut factory: Factory<E> = Box::new(factory);
        let n = config.nodes;
        let nodes = (0..n)
            .map(|i| NodeState {
                ep: factory(NodeId(i), derive_seed(config.seed, i, 0)),
                up: true,
                epoch: 0,
                incarnation: 0,
                wake_gen: 0,
                wake_at: None,
                up_bps: config.uplink_bps,
                down_bps: config.downlink_bps,
                uplink_free: Instant::ZERO,
                uplink_pending: false,
                downlink_free: Instant::ZERO,
                downlink_queued: 0,
                app: VecDeque::new(),
                clogs: 0,
            })
            .collect();
        let all: Rc<[NodeId]> = (0..n).map(NodeId).collect();
        let mut groups = BTreeMap::new();
        groups.insert(GroupId::ALL, all);
        let mut sim = Sim {
            net_rng: Rng::new(config.seed ^ 0x6E65_7477_6F72_6B21),
            fault_rng: Rng::new(config.seed ^ 0x6661_756C_7473_2121),
            buf: std::vec![0; config.mtu],
            stats: Stats::new(usize::from(n)),
            cfg: config,
            now: Instant::ZERO,
            seq: 0,
            steps: 0,
            heap: BinaryHeap::new(),
            nodes,
            factory,
            links: BTreeMap::new(),
            groups,
            partitions: Vec::new(),
            active_partitions: 0,
            cuts: Vec::new(),
            cut_count: BTreeMap::new(),
            clogs: Vec::new(),
            clogged_nodes: 0,
            held: Vec::new(),
            events: Vec::new(),
            new_events: Vec::new(),
            trace: Vec::new(),
            transmissions: 0,
        };
        for i in 0..n {
            sim.schedule(Instant::ZERO, Ev::Kick { node: i, epoch: 0 });
        }
        sim
    }

    // ----- inspection -------------------------------------------------------

    /// Current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }
    /// The configuration the simulation was built with (link defaults reflect
    /// later [`set_default_link`](Self::set_default_link) / `heal_all` calls).
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }
    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }
    /// True for a simulation of zero nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
    /// The node's current endpoint (after a crash: the crashed one, until a
    /// restart replaces it). Panics on an unknown id (a scenario bug).
    pub fn node(&self, id: NodeId) -> &E {
        &self.nodes[usize::from(id.0)].ep
    }
    /// Mutable access to the endpoint, bypassing the host loop: anything it
    /// makes ready is pulled at the node's next input. Prefer
    /// [`app`](Self::app), which runs the host loop. Panics on an unknown id.
    pub fn node_mut(&mut self, id: NodeId) -> &mut E {
        &mut self.nodes[usize::from(id.0)].ep
    }
    /// Whether the node is up (not crashed).
    pub fn is_up(&self, id: NodeId) -> bool {
        self.nodes.get(usize::from(id.0)).is_some_and(|n| n.up)
    }
    /// Datagrams waiting in (or being received through) the node's downlink,
    /// and the time until its downlink is free: the receive-side queue.
    pub fn downlink_backlog(&self, id: NodeId) -> (usize, Duration) {
        self.nodes
            .get(usize::from(id.0))
            .map_or((0, Duration::ZERO), |n| {
                (
                    n.downlink_queued,
                    n.downlink_free.saturating_since(self.now),
                )
            })
    }
    /// How many times the node has been restarted.
    pub fn incarnation(&self, id: NodeId) -> u32 {
        self.nodes
            .get(usize::from(id.0))
            .map_or(0, |n| n.incarnation)
    }
    /// Counters so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
    /// Every recorded endpoint event, in order: (time, node, event).
    pub fn events(&self) -> &[(Instant, NodeId, E::Event)] {
        &self.events
    }
    /// Removes and returns the recorded events (to bound memory in long runs).
    pub fn take_events(&mut self) -> Vec<(Instant, NodeId, E::Event)> {
        core::mem::take(&mut self.events)
    }
    /// The datagram trace (empty unless [`SimConfig::trace`]).
    pub fn trace(&self) -> &[TraceRecord] {
        &self.trace
    }
    /// Number of scheduler events processed so far (the speed benchmark's
    /// "simulator events").
    pub fn steps(&self) -> u64 {
        self.steps
    }
    /// Time of the next pending scheduler event, if any.
    pub fn next_event_at(&self) -> Option<Instant> {
        self.heap.peek().map(|s| s.at)
    }
    /// The configuration of the directed link `from -> to`.
    pub fn link(&self, from: NodeId, to: NodeId) -> LinkConfig {
        self.links
            .get(&(from, to))
            .copied()
            .unwrap_or(self.cfg.link)
    }

    // ----- configuration (immediate) ----------------------------------------

    /// Overrides the directed link `from -> to` from now on.
    pub fn set_link(&mut self, from: NodeId, to: NodeId, link: LinkConfig) {
        self.links.insert((from, to), link);
    }
    /// Replaces the default of every link without an override.
    pub fn set_default_link(&mut self, link: LinkConfig) {
        self.cfg.link = link;
    }
    /// Sets a node's uplink and downlink rates (bits/s, `None` = infinite).
    /// A serialization in progress finishes at the old rate.
    pub fn set_bandwidth(
        &mut self,
        node: NodeId,
        uplink_bps: Option<u64>,
        downlink_bps: Option<u64>,
    ) {
        if let Some(n) = self.nodes.get_mut(usize::from(node.0)) {
            n.up_bps = uplink_bps;
            n.down_bps = downlink_bps;
        }
    }
    /// Sets the members of a multicast group (replacing [`GroupId::ALL`]'s
    /// default of every node if `group == ALL`). Unknown ids are ignored. A
    /// multicast to a group with no members is sent (costs the uplink) and
    /// reaches nobody.
    pub fn set_group(&mut self, group: GroupId, members: &[NodeId]) {
        let n = self.nodes.len();
        let mut m: Vec<NodeId> = members
            .iter()
            .copied()
            .filter(|id| usize::from(id.0) < n)
            .collect();
        m.sort_unstable();
        m.dedup();
        self.groups.insert(group, m.into());
    }

    // ----- scheduled operations ---------------------------------------------

    /// Runs `op` on `node`'s endpoint at `at` (or now, if `at` is past).
    ///
    /// Operations of one node form a FIFO queue: while the head returns
    /// [`AppResult::Retry`], later ones wait; the head is retried after each
    /// input the node processes. Operations for a down node are discarded
    /// (counted in `app_dropped`), as are queued ones when it crashes.
    pub fn app_at(&mut self, node: NodeId, at: Instant, op: AppOp<E>) {
        self.schedule(at, Ev::App { node: node.0, op });
    }
    /// [`app_at`](Self::app_at) the current time (runs at the next step).
    pub fn app(&mut self, node: NodeId, op: AppOp<E>) {
        self.app_at(node, self.now, op);
    }
    /// Crashes `node` at `at` (no effect if it is already down then).
    pub fn crash(&mut self, node: NodeId, at: Instant) {
        self.schedule(at, Ev::Crash(node.0));
    }
    /// Restarts `node` at `at` with a fresh endpoint from the factory (no
    /// effect if it is up then).
    pub fn restart(&mut self, node: NodeId, at: Instant) {
        self.schedule(at, Ev::Restart(node.0));
    }
    /// From `at` until `heal_at`, nodes in different `groups` cannot reach
    /// each other (nodes in no group form one extra group). Pass
    /// [`Instant::MAX`] to never heal (except by [`heal_all`](Self::heal_all)).
    pub fn partition(&mut self, groups: &[&[NodeId]], at: Instant, heal_at: Instant) {
        let rest = groups.len() as u32;
        let mut group_of = std::vec![rest; self.nodes.len()];
        for (g, members) in groups.iter().enumerate() {
            for m in members.iter() {
                if let Some(slot) = group_of.get_mut(usize::from(m.0)) {
                    *slot = g as u32;
                }
            }
        }
        let id = self.partitions.len();
        self.partitions.push(PartitionState {
            group_of,
            active: false,
        });
        self.schedule(at, Ev::PartitionStart(id));
        if heal_at != Instant::MAX {
            self.schedule(heal_at, Ev::PartitionEnd(id));
        }
    }
    /// From `at` until `heal_at`, copies from `from` to `to` are dropped (the
    /// reverse direction is unaffected).
    pub fn cut(&mut self, from: NodeId, to: NodeId, at: Instant, heal_at: Instant) {
        let id = self.cuts.len();
        self.cuts.push((from, to, false));
        self.schedule(at, Ev::CutStart(id));
        if heal_at != Instant::MAX {
            self.schedule(heal_at, Ev::CutEnd(id));
        }
    }
    /// FoundationDB swizzle-clogging: picks `subset_size` random distinct
    /// nodes (now, from the fault generator), clogs them one by one at `at`,
    /// `at + step`, ..., then unclogs them one by one in a random order, every
    /// `step`, starting `subset_size * step` after `at`. Clogged nodes'
    /// traffic is delayed, not dropped (see the module documentation).
    pub fn swizzle(&mut self, at: Instant, step: Duration, subset_size: usize) {
        let mut ids: Vec<u16> = (0..self.nodes.len() as u16).collect();
        let k = subset_size.min(ids.len());
        // Partial Fisher–Yates: the first k are a uniform random subset.
        for i in 0..k {
            let j = i + self.fault_rng.below((ids.len() - i) as u32) as usize;
            ids.swap(i, j);
        }
        let chosen = &ids[..k];
        let first = self.clogs.len();
        let mut t = at;
        for &node in chosen {
            self.clogs.push((NodeId(node), false));
        }
        for c in first..first + k {
            self.schedule(t, Ev::Clog(c));
            t += step;
        }
        let mut order: Vec<usize> = (first..first + k).collect();
        for i in (1..order.len()).rev() {
            let j = self.fault_rng.below(i as u32 + 1) as usize;
            order.swap(i, j);
        }
        for c in order {
            self.schedule(t, Ev::Unclog(c));
            t += step;
        }
    }
    /// Clogs `node` from `at` until `until`: copies from and to it are held
    /// and leave when it is unclogged — a node that sleeps (QSM §5.3's
    /// "sleeps 0.5 s every 5 s") with a socket buffer large enough to lose
    /// nothing.
    pub fn clog(&mut self, node: NodeId, at: Instant, until: Instant) {
        let c = self.clogs.len();
        self.clogs.push((node, false));
        self.schedule(at, Ev::Clog(c));
        self.schedule(until, Ev::Unclog(c));
    }
    /// At `at`, ends every active fault: partitions, cuts and clogs heal
    /// (held copies leave), every link's loss, duplication and reordering
    /// become zero; with `restart_crashed`, down nodes restart. Faults
    /// scheduled to *start* after `at` still happen.
    pub fn heal_all(&mut self, at: Instant, restart_crashed: bool) {
        self.schedule(
            at,
            Ev::HealAll {
                restart: restart_crashed,
            },
        );
    }

    // ----- running ----------------------------------------------------------

    /// Processes the next scheduler event; false if none is pending.
    pub fn step(&mut self) -> bool {
        let more = self.step_inner();
        self.flush_events(None::<&mut fn(&mut SimCtl<'_, E>, Delivered<E::Event>)>);
        more
    }

    /// Processes every event up to and including `t`, then sets the clock to
    /// `t` (if later than now).
    ///
    /// Endpoints with periodic timers never go idle, so `t` should be finite.
    /// An endpoint that keeps returning a deadline at or before `now` without
    /// making progress makes the simulation spin at that instant (an endpoint
    /// bug the simulator does not mask).
    pub fn run_until(&mut self, t: Instant) {
        self.drive(t, None::<&mut fn(&mut SimCtl<'_, E>, Delivered<E::Event>)>);
    }

    /// [`run_until`](Self::run_until) `now + d`.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    /// Like [`run_until`](Self::run_until), calling `hook` with every endpoint
    /// event as it happens, so a reactive workload (e.g. a Paxos client) can
    /// schedule application operations through the [`SimCtl`]. Operations
    /// scheduled at the current time run after the events already due now.
    pub fn run_until_with<F>(&mut self, t: Instant, hook: &mut F)
    where
        F: FnMut(&mut SimCtl<'_, E>, Delivered<E::Event>),
    {
        self.drive(t, Some(hook));
    }

    fn drive<F>(&mut self, t: Instant, mut hook: Option<&mut F>)
    where
        F: FnMut(&mut SimCtl<'_, E>, Delivered<E::Event>),
    {
        while self.heap.peek().is_some_and(|s| s.at <= t) {
            self.step_inner();
            self.flush_events(hook.as_deref_mut());
        }
        if t > self.now {
            self.now = t;
        }
    }

    fn flush_events<F>(&mut self, hook: Option<&mut F>)
    where
        F: FnMut(&mut SimCtl<'_, E>, Delivered<E::Event>),
    {
        if self.new_events.is_empty() {
            return;
        }
        let mut batch = core::mem::take(&mut self.new_events);
        match hook {
            Some(h) => {
                for (at, node, event) in batch.drain(..) {
                    let d = Delivered {
                        at,
                        node,
                        event: event.clone(),
                    };
                    if self.cfg.record_events {
                        self.events.push((at, node, event));
                    }
                    h(&mut SimCtl { sim: self }, d);
                }
            }
            None => {
                if self.cfg.record_events {
                    self.events.append(&mut batch);
                } else {
                    batch.clear();
                }
            }
        }
        // Keep the allocation for the next batch.
        self.new_events = batch;
    }

    fn schedule(&mut self, at: Instant, ev: Ev<E>) {
        let at = at.max(self.now);
        self.seq += 1;
        self.heap.push(Scheduled {
            at,
            seq: self.seq,
            ev,
        });
    }

    fn step_inner(&mut self) -> bool {
        let Some(Scheduled { at, ev, .. }) = self.heap.pop() else {
            return false;
        };
        self.now = at;
        self.steps += 1;
        match ev {
            Ev::Kick { node, epoch } => {
                if self.live(node, epoch) {
                    self.after_input(usize::from(node));
                }
            }
            Ev::Wake { node, gen } => {
                let i = usize::from(node);
                let n = &mut self.nodes[i];
                if n.up && n.wake_gen == gen {
                    n.wake_at = None;
                    n.ep.handle_timeout(at);
                    self.after_input(i);
                }
            }
            Ev::UplinkFree { node, epoch } => {
                if self.live(node, epoch) {
                    self.nodes[usize::from(node)].uplink_pending = false;
                    self.after_input(usize::from(node));
                }
            }
            Ev::Arrive { to, pkt } => self.arrive(to, pkt),
            Ev::Deliver { to, pkt, epoch } => {
                let n = &mut self.nodes[usize::from(to.0)];
                if n.epoch == epoch {
                    n.downlink_queued -= 1;
                    self.deliver(to, pkt);
                } else {
                    self.drop_copy(to, &pkt, DropReason::Crash);
                }
            }
            Ev::App { node, op } => {
                let i = usize::from(node);
                match self.nodes.get_mut(i) {
                    Some(n) if n.up => {
                        n.app.push_back(op);
                        self.after_input(i);
                    }
                    _ => self.stats.bump(NodeId(node), |c| c.app_dropped += 1),
                }
            }
            Ev::Crash(node) => self.do_crash(node),
            Ev::Restart(node) => self.do_restart(node),
            Ev::PartitionStart(id) => {
                if !self.partitions[id].active {
                    self.partitions[id].active = true;
                    self.active_partitions += 1;
                }
            }
            Ev::PartitionEnd(id) => {
                if self.partitions[id].active {
                    self.partitions[id].active = false;
                    self.active_partitions -= 1;
                }
            }
            Ev::CutStart(id) => {
                let (f, t, active) = self.cuts[id];
                if !active {
                    self.cuts[id].2 = true;
                    *self.cut_count.entry((f, t)).or_insert(0) += 1;
                }
            }
            Ev::CutEnd(id) => {
                let (f, t, active) = self.cuts[id];
                if active {
                    self.cuts[id].2 = false;
                    if let Some(c) = self.cut_count.get_mut(&(f, t)) {
                        *c -= 1;
                        if *c == 0 {
                            self.cut_count.remove(&(f, t));
                        }
                    }
                }
            }
            Ev::Clog(id) => {
                let (node, active) = self.clogs[id];
                if !active {
                    self.clogs[id].1 = true;
                    let n = &mut self.nodes[usize::from(node.0)];
                    n.clogs += 1;
                    if n.clogs == 1 {
                        self.clogged_nodes += 1;
                    }
                }
            }
            Ev::Unclog(id) => {
                let (node, active) = self.clogs[id];
                if active {
                    self.clogs[id].1 = false;
                    let n = &mut self.nodes[usize::from(node.0)];
                    n.clogs -= 1;
                    if n.clogs == 0 {
                        self.clogged_nodes -= 1;
                        self.release_held();
                    }
                }
            }
            Ev::HealAll { restart } => self.do_heal_all(restart),
        }
        true
    }

    fn live(&self, node: u16, epoch: u32) -> bool {
        let n = &self.nodes[usize::from(node)];
        n.up && n.epoch == epoch
    }

    // ----- host loop --------------------------------------------------------

    /// Host loop after an input: pull, record events, retry app ops,
    /// reschedule the wake-up.
    fn after_input(&mut self, i: usize) {
        self.pull(i);
        while !self.nodes[i].app.is_empty() {
            let progressed = self.run_app(i);
            self.pull(i);
            if !progressed {
                break;
            }
        }
        self.poll_node(i);
    }

    /// Runs the node's queued app ops from the head until one says Retry.
    /// True if at least one completed.
    fn run_app(&mut self, i: usize) -> bool {
        let now = self.now;
        let id = NodeId(i as u16);
        let mut done = 0u64;
        let mut retried = false;
        let n = &mut self.nodes[i];
        while let Some(op) = n.app.front_mut() {
            match op(&mut n.ep, now) {
                AppResult::Done => {
                    n.app.pop_front();
                    done += 1;
                }
                AppResult::Retry => {
                    retried = true;
                    break;
                }
            }
        }
        self.stats.bump(id, |c| {
            c.app_done += done;
            c.app_retries += u64::from(retried);
        });
        done > 0
    }

    /// Pulls datagrams while the uplink can take them (all of them on an
    /// infinite uplink; one per serialization otherwise).
    fn pull(&mut self, i: usize) {
        let mut buf = core::mem::take(&mut self.buf);
        let header = self.cfg.header_bytes;
        let from = NodeId(i as u16);
        loop {
            let now = self.now;
            let n = &mut self.nodes[i];
            if !n.up {
                break;
            }
            if n.up_bps.is_some() && n.uplink_free > now {
                if !n.uplink_pending {
                    n.uplink_pending = true;
                    let (at, epoch) = (n.uplink_free, n.epoch);
                    self.schedule(
                        at,
                        Ev::UplinkFree {
                            node: i as u16,
                            epoch,
                        },
                    );
                }
                break;
            }
            let Some(Transmit { destination, len }) = n.ep.poll_transmit(now, &mut buf) else {
                break;
            };
            let len = len.min(buf.len());
            let depart = match n.up_bps {
                Some(bps) => {
                    let end = now + serialization(len + header, bps);
                    n.uplink_free = end;
                    end
                }
                None => now,
            };
            self.send(from, destination, &buf[..len], depart);
        }
        self.buf = buf;
    }

    /// Records the node's events and reschedules its wake-up.
    fn poll_node(&mut self, i: usize) {
        let now = self.now;
        let id = NodeId(i as u16);
        let n = &mut self.nodes[i];
        if !n.up {
            return;
        }
        let mut count = 0u64;
        while let Some(ev) = n.ep.poll_event() {
            self.new_events.push((now, id, ev));
            count += 1;
        }
        let t = n.ep.poll_timeout();
        let changed = t != n.wake_at;
        if changed {
            n.wake_gen += 1;
            n.wake_at = t;
            let gen = n.wake_gen;
            if let Some(t) = t {
                self.schedule(
                    t,
                    Ev::Wake {
                        node: i as u16,
                        gen,
                    },
                );
            }
        }
        if count > 0 {
            self.stats.bump(id, |c| c.events += count);
        }
    }

    // ----- network ----------------------------------------------------------

    fn send(&mut self, from: NodeId, destination: Destination, bytes: &[u8], depart: Instant) {
        let header = self.cfg.header_bytes as u64;
        let len = bytes.len();
        let multicast = matches!(destination, Destination::Group(_));
        self.stats.bump(from, |c| {
            if multicast {
                c.sent_multicast += 1;
            } else {
                c.sent_unicast += 1;
            }
            c.sent_payload_bytes += len as u64;
            c.sent_header_bytes += header;
        });
        self.transmissions += 1;
        let pkt = Packet {
            from,
            destination,
            id: self.transmissions,
            data: Rc::from(bytes),
        };
        self.record(&pkt, TraceKind::Sent);
        match destination {
            Destination::Peer(to) => {
                if usize::from(to.0) < self.nodes.len() {
                    self.route(to, pkt, depart);
                } else {
                    self.stats.bump(from, |c| c.dropped_unknown += 1);
                    let reason = DropReason::Unknown;
                    self.record(&pkt, TraceKind::Dropped { to, reason });
                }
            }
            Destination::Group(g) => {
                let members = self.groups.get(&g).cloned().unwrap_or_else(|| Rc::from([]));
                for &to in members.iter() {
                    if to != from {
                        let copy = Packet {
                            data: pkt.data.clone(),
                            ..pkt
                        };
                        self.route(to, copy, depart);
                    }
                }
            }
        }
    }

    fn record(&mut self, pkt: &Packet, kind: TraceKind) {
        if self.cfg.trace {
            self.trace.push(TraceRecord {
                at: self.now,
                datagram: pkt.id,
                from: pkt.from,
                destination: pkt.destination,
                len: pkt.data.len(),
                kind,
            });
        }
    }

    fn drop_copy(&mut self, to: NodeId, pkt: &Packet, reason: DropReason) {
        self.stats.bump(to, |c| match reason {
            DropReason::Loss => c.lost += 1,
            DropReason::Partition => c.dropped_partition += 1,
            DropReason::Crash => c.dropped_crash += 1,
            DropReason::Queue => c.dropped_queue += 1,
            DropReason::Unknown => c.dropped_unknown += 1,
        });
        self.record(pkt, TraceKind::Dropped { to, reason });
    }

    fn blocked(&self, from: NodeId, to: NodeId) -> bool {
        if self.active_partitions > 0 {
            let (f, t) = (usize::from(from.0), usize::from(to.0));
            if self
                .partitions
                .iter()
                .any(|p| p.active && p.group_of.get(f) != p.group_of.get(t))
            {
                return true;
            }
        }
        !self.cut_count.is_empty() && self.cut_count.contains_key(&(from, to))
    }

    fn is_clogged(&self, from: NodeId, to: NodeId) -> bool {
        self.clogged_nodes > 0
            && (self.nodes[usize::from(from.0)].clogs > 0
                || self.nodes[usize::from(to.0)].clogs > 0)
    }

    /// Fate of one receiver's copy: partition, loss, duplication, clog,
    /// latency and reordering.
    fn route(&mut self, to: NodeId, pkt: Packet, depart: Instant) {
        let from = pkt.from;
        if self.blocked(from, to) {
            self.drop_copy(to, &pkt, DropReason::Partition);
            return;
        }
        let link = self.link(from, to);
        if chance(&mut self.net_rng, link.loss) {
            self.drop_copy(to, &pkt, DropReason::Loss);
            return;
        }
        if chance(&mut self.net_rng, link.duplicate) {
            self.stats.bump(to, |c| c.duplicated += 1);
            let dup = Packet {
                data: pkt.data.clone(),
                ..pkt
            };
            self.hold_or_propagate(to, dup, &link, depart);
        }
        self.hold_or_propagate(to, pkt, &link, depart);
    }

    fn hold_or_propagate(&mut self, to: NodeId, pkt: Packet, link: &LinkConfig, depart: Instant) {
        if self.is_clogged(pkt.from, to) {
            self.stats.bump(to, |c| c.clogged += 1);
            self.held.push(Held { to, pkt });
        } else {
            self.propagate(to, pkt, link, depart);
        }
    }

    fn propagate(&mut self, to: NodeId, pkt: Packet, link: &LinkConfig, depart: Instant) {
        let mut delay = link.latency.sample(&mut self.net_rng);
        if chance(&mut self.net_rng, link.reorder) {
            delay = delay + link.reorder_delay.sample(&mut self.net_rng);
            self.stats.bump(to, |c| c.reordered += 1);
        }
        self.schedule(depart + delay, Ev::Arrive { to, pkt });
    }

    /// Releases held copies whose ends are both unclogged, in the order they
    /// were held; they leave now with a fresh latency.
    fn release_held(&mut self) {
        let held = core::mem::take(&mut self.held);
        for h in held {
            if self.is_clogged(h.pkt.from, h.to) {
                self.held.push(h);
            } else if self.blocked(h.pkt.from, h.to) {
                self.drop_copy(h.to, &h.pkt, DropReason::Partition);
            } else {
                let link = self.link(h.pkt.from, h.to);
                self.propagate(h.to, h.pkt, &link, self.now);
            }
        }
    }

    fn arrive(&mut self, to: NodeId, pkt: Packet) {
        let header = self.cfg.header_bytes;
        let cap = self.cfg.downlink_queue;
        let now = self.now;
        let n = &mut self.nodes[usize::from(to.0)];
        if !n.up {
            self.drop_copy(to, &pkt, DropReason::Crash);
            return;
        }
        match n.down_bps {
            None => self.deliver(to, pkt),
            Some(bps) => {
                if cap.is_some_and(|cap| n.downlink_queued >= cap) {
                    self.drop_copy(to, &pkt, DropReason::Queue);
                    return;
                }
                let done = n.downlink_free.max(now) + serialization(pkt.data.len() + header, bps);
                n.downlink_free = done;
                n.downlink_queued += 1;
                let epoch = n.epoch;
                self.schedule(done, Ev::Deliver { to, pkt, epoch });
            }
        }
    }

    fn deliver(&mut self, to: NodeId, pkt: Packet) {
        let i = usize::from(to.0);
        if !self.nodes[i].up {
            self.drop_copy(to, &pkt, DropReason::Crash);
            return;
        }
        let header = self.cfg.header_bytes as u64;
        let len = pkt.data.len() as u64;
        self.stats.bump(to, |c| {
            c.received += 1;
            c.received_payload_bytes += len;
            c.received_header_bytes += header;
        });
        self.record(&pkt, TraceKind::Delivered { to });
        let now = self.now;
        self.nodes[i].ep.handle_datagram(now, pkt.from, &pkt.data);
        self.after_input(i);
    }

    // ----- faults -----------------------------------------------------------

    fn do_crash(&mut self, node: u16) {
        let Some(n) = self.nodes.get_mut(usize::from(node)) else {
            return;
        };
        if !n.up {
            return;
        }
        n.up = false;
        n.epoch = n.epoch.wrapping_add(1);
        n.wake_gen += 1;
        n.wake_at = None;
        n.uplink_pending = false;
        n.downlink_queued = 0;
        let dropped = n.app.len() as u64;
        n.app.clear();
        self.stats.bump(NodeId(node), |c| c.app_dropped += dropped);
    }

    fn do_restart(&mut self, node: u16) {
        let i = usize::from(node);
        if self.nodes.get(i).is_none_or(|n| n.up) {
            return;
        }
        let inc = self.nodes[i].incarnation + 1;
        let ep = (self.factory)(NodeId(node), derive_seed(self.cfg.seed, node, inc));
        let now = self.now;
        let n = &mut self.nodes[i];
        n.ep = ep;
        n.incarnation = inc;
        n.up = true;
        n.epoch = n.epoch.wrapping_add(1);
        n.uplink_free = now;
        n.downlink_free = now;
        self.after_input(i);
    }

    fn do_heal_all(&mut self, restart: bool) {
        for p in &mut self.partitions {
            p.active = false;
        }
        self.active_partitions = 0;
        for c in &mut self.cuts {
            c.2 = false;
        }
        self.cut_count.clear();
        for c in &mut self.clogs {
            c.1 = false;
        }
        for n in &mut self.nodes {
            n.clogs = 0;
        }
        self.clogged_nodes = 0;
        self.release_held();
        let calm = |l: &mut LinkConfig| {
            l.loss = 0.0;
            l.duplicate = 0.0;
            l.reorder = 0.0;
        };
        calm(&mut self.cfg.link);
        self.links.values_mut().for_each(calm);
        if restart {
            for i in 0..self.nodes.len() as u16 {
                self.do_restart(i);
            }
        }
    }
}

/// What a [`Sim::run_until_with`] hook may do while the simulation runs:
/// inspect, and schedule operations (never run the simulation itself).
pub struct SimCtl<'a, E: Endpoint> {
    sim: &'a mut Sim<E>,
}

impl<E: Endpoint> SimCtl<'_, E> {
    /// Current virtual time.
    pub fn now(&self) -> Instant {
        self.sim.now()
    }
    /// A node's endpoint (see [`Sim::node`]).
    pub fn node(&self, id: NodeId) -> &E {
        self.sim.node(id)
    }
    /// Whether the node is up.
    pub fn is_up(&self, id: NodeId) -> bool {
        self.sim.is_up(id)
    }
    /// Counters so far.
    pub fn stats(&self) -> &Stats {
        self.sim.stats()
    }
    /// See [`Sim::app_at`].
    pub fn app_at(&mut self, node: NodeId, at: Instant, op: AppOp<E>) {
        self.sim.app_at(node, at, op);
    }
    /// See [`Sim::app`].
    pub fn app(&mut self, node: NodeId, op: AppOp<E>) {
        self.sim.app(node, op);
    }
    /// See [`Sim::crash`].
    pub fn crash(&mut self, node: NodeId, at: Instant) {
        self.sim.crash(node, at);
    }
    /// See [`Sim::restart`].
    pub fn restart(&mut self, node: NodeId, at: Instant) {
        self.sim.restart(node, at);
    }
    /// See [`Sim::partition`].
    pub fn partition(&mut self, groups: &[&[NodeId]], at: Instant, heal_at: Instant) {
        self.sim.partition(groups, at, heal_at);
    }
    /// See [`Sim::cut`].
    pub fn cut(&mut self, from: NodeId, to: NodeId, at: Instant, heal_at: Instant) {
        self.sim.cut(from, to, at, heal_at);
    }
    /// See [`Sim::heal_all`].
    pub fn heal_all(&mut self, at: Instant, restart_crashed: bool) {
        self.sim.heal_all(at, restart_crashed);
    }
    /// See [`Sim::set_group`].
    pub fn set_group(&mut self, group: GroupId, members: &[NodeId]) {
        self.sim.set_group(group, members);
    }
}
