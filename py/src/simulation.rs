//! `phasecast.Simulation`: a cluster of real nodes (`phasecast_core::Node`)
//! on the deterministic network simulator (`phasecast_core::sim`), checked
//! by the shared property checker (`sim::check`).
//!
//! Decisions:
//! * **Message identity.** The checker needs to know which broadcast each
//!   delivery is, and `Event::Delivered` carries only (sn, sender, payload).
//!   The binding prefixes every broadcast with a 6-byte tag (sender u16,
//!   per-sender counter u32, big endian, as `core/tests/total_order.rs`
//!   does) and strips it on the way out. The tag travels on the simulated
//!   wire, so `stats()` counts it.
//! * **The application queue.** `broadcast` queues an application operation
//!   at the node (the simulator's per-node FIFO of `AppOp`s): when the core
//!   answers `Full` the operation stays at the head and is retried after the
//!   node's next input — the application waits, nothing is lost.
//! * **Restarts.** A restarted node is a new process to the checker (the
//!   core's `join`); the checker judges first incarnations only and counts a
//!   restarted node as crashed. `delivered(node, incarnation=k)` shows later
//!   ones.
//! * **Excluded** nodes (left out of a view, e.g. the minority side of a
//!   partition) count as crashed, as in the core's tests.
//! * **A worker thread** owns the simulator (see `worker`): the GIL is
//!   released while it runs, `run` advances in slices of about 0.1 s of wall
//!   time so Ctrl-C and the progress bar work in between.
//! * **Infinite links are throttled** at [`MAX_PER_MS`] datagrams per node
//!   per virtual millisecond, with a `RuntimeWarning`: without it a storm of
//!   the protocol (seen: VIEW_CHANGE + RECOVER re-sent without pause after
//!   the sequencer's crash) would stall virtual time.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use phasecast_core::sim::check::{Checks, History, MsgId as CheckId};
use phasecast_core::sim::{AppResult, Endpoint, Latency, LinkConfig, NodeEvent, Sim, SimConfig};
use phasecast_core::{
    Aggregation, Config, Duration, Error, Instant, Node, NodeId, SendOptions, Transmit, ViewPolicy,
};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use crate::args;
use crate::worker::Worker;

/// The node every simulated process runs: up to 63 members, 64-entry class
/// queues, 1024 messages in flight, 2 MiB of payload storage, 256 KiB inbox,
/// datagrams up to 9000 bytes (jumbo frames). About 3.6 MiB each.
pub type SimNode = Node<64, 64, 1024, 16384, 262_144, 9000>;
/// Largest `mtu` a simulation accepts.
pub const MAX_SIM_MTU: usize = 9000;
/// Most nodes of a simulation: a node has one sink per peer plus one for
/// the group, and its bandwidth allocation counts at most 64 sinks.
pub const MAX_NODES: usize = 63;
/// Bytes of the identity tag the binding prefixes to every broadcast.
pub const TAG: usize = 6;

/// Most datagrams a node may hand the simulator per millisecond of virtual
/// time (about 12 Gb/s of 1500-byte datagrams). A safety valve for infinite
/// links, not a model: with an infinite uplink the simulator pulls until the
/// node has nothing left, so a node that keeps producing datagrams (a storm)
/// would stall virtual time, or let every arrival trigger thousands of sends.
/// Past the cap the node's datagrams wait in its own queues for its next
/// input in a later millisecond (counted in `stats()['transmit_capped']`).
pub const MAX_PER_MS: u32 = 1024;

/// A simulated process: the node and the incarnation it belongs to.
pub struct Ep {
    node: Box<SimNode>,
    incarnation: u32,
    /// The millisecond of the last `poll_transmit` and how many datagrams
    /// left in it.
    ms: u64,
    sent_now: u32,
    capped: u64,
}

impl Endpoint for Ep {
    type Event = (u32, NodeEvent);
    fn handle_datagram(&mut self, now: Instant, from: NodeId, bytes: &[u8]) {
        Endpoint::handle_datagram(&mut self.node, now, from, bytes);
    }
    fn handle_timeout(&mut self, now: Instant) {
        Endpoint::handle_timeout(&mut self.node, now);
    }
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let ms = now.as_micros() / 1000;
        if ms != self.ms {
            self.ms = ms;
            self.sent_now = 0;
        }
        if self.sent_now >= MAX_PER_MS {
            self.capped += 1;
            return None;
        }
        let tx = Endpoint::poll_transmit(&mut self.node, now, buf)?;
        self.sent_now += 1;
        Some(tx)
    }
    fn poll_event(&mut self) -> Option<(u32, NodeEvent)> {
        Endpoint::poll_event(&mut self.node).map(|e| (self.incarnation, e))
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Endpoint::poll_timeout(&self.node)
    }
}

/// Everything needed to build the world, validated in the Python thread.
#[derive(Clone, Debug)]
pub struct Params {
    pub nodes: u16,
    pub seed: u64,
    pub latency: Latency,
    pub bandwidth_bps: Option<u64>,
    pub loss: f64,
    pub duplicate: f64,
    pub reorder: f64,
    pub mtu: usize,
    pub heartbeat: Duration,
    pub fd_timeout: Duration,
    pub rto: Duration,
    pub window: usize,
    pub link_capacity: Option<u64>,
    pub view_policy: ViewPolicy,
    pub max_message: usize,
    pub aggregation: Aggregation,
    pub tob_batch: usize,
}

fn node_config<'a>(
    p: &Params,
    members: &'a [NodeId],
    id: NodeId,
    seed: u64,
    inc: u32,
) -> Config<'a> {
    let mut c = Config::new(id, members);
    c.seed = seed;
    c.incarnation = inc + 1;
    c.join = inc > 0;
    c.mtu = p.mtu;
    c.heartbeat = Some(p.heartbeat);
    c.fd_timeout = Some(p.fd_timeout);
    c.tob_rto = p.rto;
    c.tob_window = p.window;
    c.view_policy = p.view_policy;
    c.link_capacity = p.link_capacity;
    c.max_message = p.max_message;
    c.aggregation = p.aggregation;
    c.tob_batch = p.tob_batch;
    c
}

/// One broadcast the core accepted: when it was asked and when accepted.
#[derive(Clone, Copy, Debug)]
struct Accepted {
    asked: Instant,
    at: Instant,
}

/// A delivery as `delivery_log` reports it.
pub struct LogRow {
    pub at: Instant,
    pub sn: u64,
    pub sender: u16,
    pub counter: Option<u32>,
    pub payload: Vec<u8>,
    pub broadcast_at: Option<Instant>,
    pub asked_at: Option<Instant>,
}

/// The checker's verdict, flattened for Python.
pub struct Verdict {
    pub ok: bool,
    pub validity: Option<bool>,
    pub integrity: Option<bool>,
    pub agreement: Option<bool>,
    pub total_order: Option<bool>,
    pub fifo: Option<bool>,
    pub violations: Vec<String>,
    pub counts: [(&'static str, u64); 5],
    pub crashed: Vec<u16>,
}

/// A counter value for `stats()`.
pub enum Val {
    U(u64),
    F(f64),
}

/// The simulation, living in its worker thread.
pub struct World {
    sim: Sim<Ep>,
    params: Params,
    history: Rc<RefCell<History>>,
    accepted: Rc<RefCell<BTreeMap<(u16, u32), Accepted>>>,
    /// Broadcasts the core refused for good (not a member any more).
    refused: Rc<Cell<u64>>,
    /// Next counter of each node's broadcasts (assigned when queued).
    next_counter: Vec<u32>,
    requested: u64,
    /// Point-to-point operations (`send`, `pledged_send`) asked for, and
    /// those the core accepted or refused for good.
    sends: SendTally,
}

/// Point-to-point operations of the simulated applications.
#[derive(Default)]
struct SendTally {
    requested: u64,
    accepted: Rc<Cell<u64>>,
    refused: Rc<Cell<u64>>,
}

/// One point-to-point operation the simulated application performs.
#[derive(Clone, Debug)]
pub enum P2p {
    /// `send_to` (or `pledged_send` when `pledged`).
    Send {
        dests: Vec<u16>,
        payload: Vec<u8>,
        opts: SendOptions,
        pledged: bool,
    },
    /// `begin_pledge(app, dests)`.
    Begin { app: u16, dests: Vec<u16> },
    /// `end_pledge(app)`.
    End { app: u16 },
}

impl World {
    pub fn new(p: Params) -> Result<World, String> {
        let members: Vec<NodeId> = (0..p.nodes).map(NodeId).collect();
        // Build one node first so a configuration the core refuses becomes a
        // clear error instead of a panic in the factory.
        SimNode::new(&node_config(&p, &members, NodeId(0), 0, 0), Instant::ZERO)
            .map_err(|e| format!("the core refused the configuration: {e:?}"))?;
        let mut cfg = SimConfig::new(p.nodes, p.seed);
        cfg.link = LinkConfig {
            latency: p.latency,
            loss: p.loss,
            duplicate: p.duplicate,
            reorder: p.reorder,
            ..LinkConfig::default()
        };
        cfg.uplink_bps = p.bandwidth_bps;
        cfg.downlink_bps = p.bandwidth_bps;
        cfg.mtu = p.mtu;
        let fp = p.clone();
        let mut incarnations = vec![0u32; usize::from(p.nodes)];
        let sim = Sim::new(cfg, move |id, seed| {
            let slot = &mut incarnations[usize::from(id.0)];
            let inc = *slot;
            *slot += 1;
            let c = node_config(&fp, &members, id, seed, inc);
            let node = SimNode::new(&c, Instant::ZERO)
                .unwrap_or_else(|e| panic!("node {} refused its configuration: {e:?}", id.0));
            Ep {
                node: Box::new(node),
                incarnation: inc,
                ms: 0,
                sent_now: 0,
                capped: 0,
            }
        });
        let n = p.nodes;
        Ok(World {
            sim,
            params: p,
            history: Rc::new(RefCell::new(History::with_processes(0..n))),
            accepted: Rc::new(RefCell::new(BTreeMap::new())),
            refused: Rc::new(Cell::new(0)),
            next_counter: vec![0; usize::from(n)],
            requested: 0,
            sends: SendTally::default(),
        })
    }

    pub fn now(&self) -> Instant {
        self.sim.now()
    }

    /// Queues a broadcast of `payload` at `node` at `at`.
    pub fn broadcast(&mut self, node: u16, payload: &[u8], at: Instant) -> Result<u32, String> {
        let counter = self.next_counter[usize::from(node)];
        self.next_counter[usize::from(node)] = counter
            .checked_add(1)
            .ok_or("this node already broadcast 2**32 messages")?;
        self.requested += 1;
        let mut tagged = Vec::with_capacity(TAG + payload.len());
        tagged.extend_from_slice(&node.to_be_bytes());
        tagged.extend_from_slice(&counter.to_be_bytes());
        tagged.extend_from_slice(payload);
        let history = self.history.clone();
        let accepted = self.accepted.clone();
        let refused = self.refused.clone();
        self.sim.app_at(
            NodeId(node),
            at,
            Box::new(
                move |ep: &mut Ep, now| match ep.node.broadcast(now, &tagged) {
                    Ok(_) => {
                        history.borrow_mut().record_broadcast(
                            node,
                            CheckId::new(node, u64::from(counter)),
                            tagged.clone(),
                        );
                        accepted
                            .borrow_mut()
                            .insert((node, counter), Accepted { asked: at, at: now });
                        AppResult::Done
                    }
                    Err(Error::Full) => AppResult::Retry,
                    // Excluded (not a member) or refused for good: the
                    // application gives up on this one.
                    Err(_) => {
                        refused.set(refused.get() + 1);
                        AppResult::Done
                    }
                },
            ),
        );
        Ok(counter)
    }

    /// Queues `increase_bw` (`up`) or `decrease_bw` of `amount` bytes/s;
    /// retried while the core says `Busy` or `Full`.
    pub fn change_bw(&mut self, node: u16, amount: u64, up: bool, at: Instant) {
        let refused = self.refused.clone();
        self.sim.app_at(
            NodeId(node),
            at,
            Box::new(move |ep: &mut Ep, now| {
                let r = if up {
                    ep.node.increase_bw(now, amount)
                } else {
                    ep.node.decrease_bw(now, amount)
                };
                match r {
                    Ok(_) => AppResult::Done,
                    Err(Error::Busy | Error::Full) => AppResult::Retry,
                    Err(_) => {
                        refused.set(refused.get() + 1);
                        AppResult::Done
                    }
                }
            }),
        );
    }

    /// Queues a point-to-point operation of `node`'s application at `at`.
    /// Like `broadcast`, what the core refuses as `Full` stays at the head
    /// of the node's application queue and is retried after its next input.
    pub fn p2p(&mut self, node: u16, op: P2p, at: Instant) {
        let counts = matches!(op, P2p::Send { .. });
        if counts {
            self.sends.requested += 1;
        }
        let accepted = self.sends.accepted.clone();
        let refused = self.sends.refused.clone();
        self.sim.app_at(
            NodeId(node),
            at,
            Box::new(move |ep: &mut Ep, now| {
                let ids = |d: &[u16]| d.iter().copied().map(NodeId).collect::<Vec<_>>();
                let r = match &op {
                    P2p::Send {
                        dests,
                        payload,
                        opts,
                        pledged,
                    } => {
                        let dests = ids(dests);
                        if *pledged {
                            ep.node.pledged_send(now, &dests, payload, *opts)
                        } else {
                            ep.node.send_to(now, &dests, payload, *opts)
                        }
                        .map(|_| ())
                    }
                    P2p::Begin { app, dests } => ep.node.begin_pledge(now, *app, &ids(dests)),
                    P2p::End { app } => {
                        ep.node.end_pledge(now, *app);
                        Ok(())
                    }
                };
                match r {
                    Ok(()) => {
                        if counts {
                            accepted.set(accepted.get() + 1);
                        }
                        AppResult::Done
                    }
                    Err(Error::Full) => AppResult::Retry,
                    Err(_) => {
                        if counts {
                            refused.set(refused.get() + 1);
                        }
                        AppResult::Done
                    }
                }
            }),
        );
    }

    /// Point-to-point messages `node` received: (sender, payload) in order.
    pub fn received(&self, node: u16, inc: u32) -> Vec<(u16, Vec<u8>)> {
        self.sim
            .events()
            .iter()
            .filter(|(_, n, (i, _))| n.0 == node && *i == inc)
            .filter_map(|(_, _, (_, e))| match e {
                NodeEvent::Received {
                    from,
                    group: None,
                    payload,
                    ..
                } => Some((from.0, payload.clone())),
                _ => None,
            })
            .collect()
    }

    pub fn crash(&mut self, node: u16, at: Instant) {
        self.sim.crash(NodeId(node), at);
    }

    pub fn restart(&mut self, node: u16, at: Instant) {
        self.sim.restart(NodeId(node), at);
    }

    pub fn partition(&mut self, groups: &[Vec<u16>], at: Instant, heal: Instant) {
        let ids: Vec<Vec<NodeId>> = groups
            .iter()
            .map(|g| g.iter().copied().map(NodeId).collect())
            .collect();
        let refs: Vec<&[NodeId]> = ids.iter().map(Vec::as_slice).collect();
        self.sim.partition(&refs, at, heal);
    }

    pub fn cut(&mut self, from: u16, to: u16, at: Instant, heal: Instant) {
        self.sim.cut(NodeId(from), NodeId(to), at, heal);
    }

    pub fn heal_all(&mut self, at: Instant, restart: bool) {
        self.sim.heal_all(at, restart);
    }

    /// Runs until `until` or for about `budget` of wall time, whichever
    /// comes first; true when `until` was reached.
    pub fn run_chunk(&mut self, until: Instant, budget: std::time::Duration) -> bool {
        let start = std::time::Instant::now();
        loop {
            for _ in 0..4096 {
                if self.sim.next_event_at().is_none_or(|t| t > until) {
                    self.sim.run_until(until);
                    return true;
                }
                self.sim.step();
            }
            if start.elapsed() >= budget {
                return false;
            }
        }
    }

    fn decode(payload: &[u8]) -> Option<(u16, u32)> {
        let tag = payload.get(..TAG)?;
        Some((
            u16::from_be_bytes([tag[0], tag[1]]),
            u32::from_be_bytes([tag[2], tag[3], tag[4], tag[5]]),
        ))
    }

    /// (sender, payload without the tag) in delivery order.
    pub fn delivered(&self, node: u16, inc: u32) -> Vec<(u16, Vec<u8>)> {
        self.sim
            .events()
            .iter()
            .filter(|(_, n, (i, _))| n.0 == node && *i == inc)
            .filter_map(|(_, _, (_, e))| match e {
                NodeEvent::Delivered {
                    sender, payload, ..
                } => Some((sender.0, payload.get(TAG..).unwrap_or(&[]).to_vec())),
                _ => None,
            })
            .collect()
    }

    pub fn delivery_log(&self, node: u16, inc: u32) -> Vec<LogRow> {
        let accepted = self.accepted.borrow();
        self.sim
            .events()
            .iter()
            .filter(|(_, n, (i, _))| n.0 == node && *i == inc)
            .filter_map(|(at, _, (_, e))| match e {
                NodeEvent::Delivered {
                    sn,
                    sender,
                    payload,
                } => {
                    let id = Self::decode(payload);
                    Some(LogRow {
                        at: *at,
                        sn: *sn,
                        sender: sender.0,
                        counter: id.map(|(_, c)| c),
                        payload: payload.get(TAG..).unwrap_or(&[]).to_vec(),
                        broadcast_at: id.and_then(|k| accepted.get(&k)).map(|a| a.at),
                        asked_at: id.and_then(|k| accepted.get(&k)).map(|a| a.asked),
                    })
                }
                _ => None,
            })
            .collect()
    }

    pub fn views(&self, node: u16, inc: u32) -> Vec<(Instant, u32, Vec<u16>)> {
        self.sim
            .events()
            .iter()
            .filter(|(_, n, (i, _))| n.0 == node && *i == inc)
            .filter_map(|(at, _, (_, e))| match e {
                NodeEvent::ViewChanged { view_id, members } => {
                    Some((*at, *view_id, members.iter().map(|m| m.0).collect()))
                }
                _ => None,
            })
            .collect()
    }

    /// Every recorded event as (time, node, incarnation, kind, fields).
    pub fn events(&self, node: Option<u16>) -> Vec<(Instant, u16, u32, NodeEvent)> {
        self.sim
            .events()
            .iter()
            .filter(|(_, n, _)| node.is_none_or(|x| x == n.0))
            .map(|(at, n, (i, e))| (*at, n.0, *i, e.clone()))
            .collect()
    }

    /// Processes that are not correct: crashed, restarted or excluded.
    fn not_correct(&self) -> BTreeSet<u16> {
        let mut out: BTreeSet<u16> = (0..self.params.nodes)
            .filter(|&i| !self.sim.is_up(NodeId(i)) || self.sim.incarnation(NodeId(i)) > 0)
            .collect();
        for (_, n, (inc, e)) in self.sim.events() {
            if *inc == 0 && matches!(e, NodeEvent::Excluded) {
                out.insert(n.0);
            }
        }
        out
    }

    pub fn check(&self, fifo: bool) -> Verdict {
        let mut h = self.history.borrow().clone();
        for (_, node, (inc, ev)) in self.sim.events() {
            if *inc != 0 {
                continue;
            }
            if let NodeEvent::Delivered {
                sn,
                sender,
                payload,
            } = ev
            {
                // An untagged payload cannot come from this binding: it is
                // recorded under an id no broadcast has (reported Invented).
                let (s, c) = Self::decode(payload)
                    .map(|(s, c)| (s, u64::from(c)))
                    .unwrap_or((sender.0, u64::MAX));
                h.record_delivery(node.0, Some(*sn), CheckId::new(s, c), payload.clone());
            }
        }
        let crashed = self.not_correct();
        for c in &crashed {
            h.record_crash(*c);
        }
        let checks = if fifo {
            Checks::ALL
        } else {
            Checks::UNIFORM_TOTAL_ORDER
        };
        let r = h.check(checks);
        Verdict {
            ok: r.is_ok(),
            validity: r.validity,
            integrity: r.integrity,
            agreement: r.agreement,
            total_order: r.total_order,
            fifo: r.fifo,
            violations: r.violations.iter().map(|v| v.to_string()).collect(),
            counts: [
                ("processes", r.checked.processes as u64),
                ("correct", r.checked.correct as u64),
                ("broadcasts", r.checked.broadcasts as u64),
                ("deliveries", r.checked.deliveries as u64),
                ("messages", r.checked.messages as u64),
            ],
            crashed: crashed.into_iter().collect(),
        }
    }

    pub fn stats(&self, node: Option<u16>) -> Vec<(&'static str, Val)> {
        use Val::{F, U};
        let c = match node {
            Some(n) => self.sim.stats().node(NodeId(n)),
            None => self.sim.stats().total,
        };
        let ids: Vec<u16> = match node {
            Some(n) => vec![n],
            None => (0..self.params.nodes).collect(),
        };
        let mut k = phasecast_core::Counters::default();
        let mut capped = 0;
        for &i in &ids {
            capped += self.sim.node(NodeId(i)).capped;
            let nc = self.sim.node(NodeId(i)).node.counters();
            k.frames_sent += nc.frames_sent;
            k.bytes_sent += nc.bytes_sent;
            k.records_sent += nc.records_sent;
            k.frames_received += nc.frames_received;
            k.retransmissions += nc.retransmissions;
            k.messages_accepted += nc.messages_accepted;
            k.refused_full += nc.refused_full;
            k.messages_delivered += nc.messages_delivered;
            k.tob_stalls += nc.tob_stalls;
            k.view_changes_started += nc.view_changes_started;
            k.view_changes += nc.view_changes;
            k.messages_buffered += nc.messages_buffered;
            for (a, b) in k.sent_because.iter_mut().zip(nc.sent_because.iter()) {
                *a += b;
            }
            for (a, b) in k.dropped.iter_mut().zip(nc.dropped.iter()) {
                *a += b;
            }
        }
        let accepted = self.accepted.borrow();
        let mine = |n: u16| node.is_none_or(|x| x == n);
        let broadcasts = accepted.keys().filter(|(n, _)| mine(*n)).count() as u64;
        let rpd = if k.frames_sent == 0 {
            0.0
        } else {
            k.records_sent as f64 / k.frames_sent as f64
        };
        vec![
            ("now_ms", F(self.sim.now().as_micros() as f64 / 1000.0)),
            ("datagrams", U(c.sent())),
            ("datagrams_unicast", U(c.sent_unicast)),
            ("datagrams_multicast", U(c.sent_multicast)),
            ("bytes", U(c.sent_payload_bytes)),
            ("header_bytes", U(c.sent_header_bytes)),
            ("received_datagrams", U(c.received)),
            ("received_bytes", U(c.received_payload_bytes)),
            ("records", U(k.records_sent)),
            ("records_per_datagram", F(rpd)),
            ("retransmissions", U(k.retransmissions)),
            ("lost", U(c.lost)),
            ("duplicated", U(c.duplicated)),
            ("reordered", U(c.reordered)),
            ("dropped_partition", U(c.dropped_partition)),
            ("dropped_crash", U(c.dropped_crash)),
            ("dropped_queue", U(c.dropped_queue)),
            ("rejected", U(k.total_dropped())),
            ("broadcasts", U(broadcasts)),
            ("refused_full", U(k.refused_full)),
            ("app_retries", U(c.app_retries)),
            ("app_dropped", U(c.app_dropped)),
            ("delivered", U(k.messages_delivered)),
            ("messages_accepted", U(k.messages_accepted)),
            ("messages_buffered", U(k.messages_buffered)),
            (
                "sent_at_deadline",
                U(k.sent_because[phasecast_core::SendReason::Deadline as usize]),
            ),
            ("tob_stalls", U(k.tob_stalls)),
            ("view_changes_started", U(k.view_changes_started)),
            ("view_changes", U(k.view_changes)),
            ("transmit_capped", U(capped)),
            ("simulator_steps", U(self.sim.steps())),
        ]
    }

    /// Datagrams held back by [`MAX_PER_MS`] so far, and the node that
    /// hit the cap most.
    pub fn capped(&self) -> (u64, u16) {
        let mut total = 0;
        let mut worst = (0, 0u16);
        for i in 0..self.params.nodes {
            let c = self.sim.node(NodeId(i)).capped;
            total += c;
            if c > worst.0 {
                worst = (c, i);
            }
        }
        (total, worst.1)
    }

    pub fn is_up(&self, node: u16) -> bool {
        self.sim.is_up(NodeId(node))
    }

    pub fn incarnation(&self, node: u16) -> u32 {
        self.sim.incarnation(NodeId(node))
    }

    pub fn view(&self, node: u16) -> (u32, Vec<u16>) {
        let (id, members) = self.sim.node(NodeId(node)).node.view();
        (id, members.map(|m| m.0).collect())
    }

    pub fn sequencer(&self, node: u16) -> u16 {
        self.sim.node(NodeId(node)).node.sequencer().0
    }

    pub fn current_bw(&self, node: u16) -> Option<u64> {
        self.sim.node(NodeId(node)).node.current_bw()
    }

    /// Point-to-point sends asked for, accepted by the core, refused for
    /// good (and so still queued = asked − accepted − refused).
    pub fn send_counts(&self) -> (u64, u64, u64) {
        (
            self.sends.requested,
            self.sends.accepted.get(),
            self.sends.refused.get(),
        )
    }

    pub fn queued(&self) -> u64 {
        let done = self.accepted.borrow().len() as u64 + self.refused.get();
        self.requested
            .saturating_sub(done)
            .saturating_sub(self.sim.stats().total.app_dropped)
    }
}

fn parse_view_policy(s: &str) -> PyResult<ViewPolicy> {
    match s {
        "primary_partition" => Ok(ViewPolicy::PrimaryPartition),
        "trust_detector" => Ok(ViewPolicy::TrustDetector),
        _ => Err(PyValueError::new_err(format!(
            "view_policy must be 'primary_partition' or 'trust_detector', got {s:?}"
        ))),
    }
}

/// An aggregation policy by name (the core's [`Aggregation`]).
pub fn parse_aggregation(s: &str, horizon_ms: f64) -> PyResult<Aggregation> {
    Ok(match s {
        "omaha" => Aggregation::Omaha,
        "none" => Aggregation::None,
        "time_based" => Aggregation::TimeBased,
        "criticality" => Aggregation::Criticality,
        "horizon" => Aggregation::Horizon {
            horizon: args::duration("horizon_ms", horizon_ms)?,
        },
        _ => {
            return Err(PyValueError::new_err(format!(
                "aggregation must be one of 'omaha', 'none', 'time_based', 'horizon', \
                 'criticality'; got {s:?}"
            )))
        }
    })
}

fn latency(v: Option<&Bound<'_, PyAny>>) -> PyResult<Latency> {
    let Some(v) = v else {
        return Ok(Latency::Constant(Duration::from_micros(100)));
    };
    if let Ok(ms) = v.extract::<f64>() {
        if !v.is_instance_of::<pyo3::types::PyString>() {
            return Ok(Latency::Constant(args::duration("latency_ms", ms)?));
        }
    }
    if let Ok(t) = v.extract::<(f64, f64)>() {
        let mean = args::duration("latency_ms mean", t.0)?;
        let sd = args::duration("latency_ms sd", t.1)?;
        return Ok(if sd.as_micros() == 0 {
            Latency::Constant(mean)
        } else {
            Latency::Normal { mean, sd }
        });
    }
    Err(PyTypeError::new_err(format!(
        "latency_ms must be a number or a (mean, sd) pair of numbers, not {}",
        args::type_name(v)
    )))
}

/// `[(sender, payload), ...]` as a Python list of tuples.
fn sender_payload_list<'py>(
    py: Python<'py>,
    rows: Vec<(u16, Vec<u8>)>,
) -> PyResult<Bound<'py, PyList>> {
    let items: Vec<Bound<'py, PyTuple>> = rows
        .into_iter()
        .map(|(s, p)| {
            PyTuple::new(
                py,
                [
                    s.into_pyobject(py)?.into_any(),
                    PyBytes::new(py, &p).into_any(),
                ],
            )
        })
        .collect::<PyResult<_>>()?;
    PyList::new(py, items)
}

/// A cluster of real phasecast nodes on a simulated network, in virtual time.
///
/// ``Simulation(nodes, seed, latency_ms=(mean, sd), bandwidth_mbps=None,
/// loss=0.0, duplicate=0.0, reorder=0.0, mtu=1500)`` builds ``nodes``
/// processes (ids ``0 .. nodes-1``) running the core's uniform total order
/// broadcast (FastCast) over a network whose every link has the given
/// one-way latency (a normal distribution truncated at 0, or a constant when
/// ``sd`` is 0 or a single number is given), loss, duplication and
/// reordering probabilities, and per-node full-duplex bandwidth
/// (``None``: infinite, but at most 1024 datagrams per node per virtual
/// millisecond). The same seed replays the same run bit for bit.
///
/// Keyword-only: ``heartbeat_ms`` and ``fd_timeout_ms`` (the failure
/// detector), ``rto_ms`` (retransmission and view-change retry period),
/// ``window`` (undelivered broadcasts per node before ``Full``),
/// ``link_capacity_mbps`` (FastCast's B: turns bandwidth allocation on),
/// ``view_policy`` (``"primary_partition"`` or ``"trust_detector"``),
/// ``max_message``, ``aggregation`` (how point-to-point sends are
/// aggregated: ``"omaha"`` pledge buffers, the default; ``"none"``;
/// ``"time_based"``; ``"horizon"`` with ``horizon_ms``; ``"criticality"``),
/// ``tob_batch`` (bytes of small broadcasts gathered into one ordering unit
/// while the node's previous one waits unsent, FastCast §3.5; default 4096,
/// 0 turns batching off; each message is still delivered on its own).
///
/// Nothing happens until :meth:`run`; operations (``broadcast``, ``crash``,
/// ...) are scheduled at the current virtual time or at ``at_ms``.
#[pyclass(module = "phasecast._core", name = "Simulation")]
pub struct Simulation {
    worker: Worker<World>,
    nodes: u16,
    seed: u64,
    mtu: usize,
    max_payload: usize,
    max_message: usize,
    allocation: bool,
    /// Virtual time, µs (mirrors the world's clock after every call).
    now_us: u64,
}

impl Simulation {
    fn node(&self, what: &str, node: &Bound<'_, PyAny>) -> PyResult<u16> {
        args::node_index(what, node, usize::from(self.nodes))
    }

    /// `at_ms` (default: now), not before now.
    fn at(&self, what: &str, at_ms: Option<f64>) -> PyResult<Instant> {
        match at_ms {
            None => Ok(Instant::from_micros(self.now_us)),
            Some(ms) => {
                let t = args::instant(what, ms)?;
                if t.as_micros() < self.now_us {
                    return Err(PyValueError::new_err(format!(
                        "{what} = {ms} ms is in the past (the simulation is at {} ms)",
                        self.now_us as f64 / 1000.0
                    )));
                }
                Ok(t)
            }
        }
    }

    fn call<R: Send + 'static>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut World) -> R + Send + 'static,
    ) -> PyResult<R> {
        py.detach(|| self.worker.call(f))
    }

    /// Destinations of a point-to-point operation of `node`: a non-empty
    /// iterable of distinct node ids other than `node`.
    fn dests(&self, node: u16, dests: &Bound<'_, PyAny>) -> PyResult<Vec<u16>> {
        let bad = || PyTypeError::new_err("dests must be a list of node ids");
        if dests.is_instance_of::<pyo3::types::PyString>()
            || dests.is_instance_of::<PyBytes>()
            || dests.is_instance_of::<pyo3::types::PyInt>()
        {
            return Err(bad());
        }
        let mut out = Vec::new();
        for d in dests.try_iter().map_err(|_| bad())? {
            let d = self.node("destination", &d?)?;
            if d == node {
                return Err(PyValueError::new_err(format!(
                    "node {node} cannot send to itself"
                )));
            }
            if out.contains(&d) {
                return Err(PyValueError::new_err(format!(
                    "destination {d} appears twice"
                )));
            }
            out.push(d);
        }
        if out.is_empty() {
            return Err(PyValueError::new_err("dests must name at least one node"));
        }
        Ok(out)
    }

    /// An application id (Omaha's `app`): an int in 0 ..= 65535.
    fn app_arg(app: &Bound<'_, PyAny>) -> PyResult<u16> {
        Ok(args::count("app", app, 0, u64::from(u16::MAX))? as u16)
    }

    #[allow(clippy::too_many_arguments)]
    fn p2p_send(
        &mut self,
        py: Python<'_>,
        node: &Bound<'_, PyAny>,
        dests: &Bound<'_, PyAny>,
        payload: &Bound<'_, PyAny>,
        proba_buf: f64,
        timeout_ms: f64,
        app: &Bound<'_, PyAny>,
        critical: bool,
        at_ms: Option<f64>,
        pledged: bool,
    ) -> PyResult<()> {
        let node = self.node("node", node)?;
        let dests = self.dests(node, dests)?;
        let payload = args::payload(payload)?;
        if payload.len() > self.max_message {
            return Err(PyValueError::new_err(format!(
                "payload of {} bytes is larger than max_message ({} bytes)",
                payload.len(),
                self.max_message
            )));
        }
        let proba_buf = args::probability("proba_buf", proba_buf)? as f32;
        let timeout = args::duration("timeout_ms", timeout_ms)?;
        let app = Self::app_arg(app)?;
        let at = self.at("at_ms", at_ms)?;
        let opts = SendOptions {
            proba_buf,
            timeout,
            app,
            critical,
            ..SendOptions::default()
        };
        let op = P2p::Send {
            dests,
            payload,
            opts,
            pledged,
        };
        self.call(py, move |w| w.p2p(node, op, at))
    }

    fn incarnation_arg(inc: i64) -> PyResult<u32> {
        u32::try_from(inc)
            .map_err(|_| PyValueError::new_err(format!("incarnation must be >= 0, got {inc}")))
    }
}

#[pymethods]
impl Simulation {
    #[new]
    #[pyo3(signature = (nodes, seed, latency_ms=None, bandwidth_mbps=None, loss=0.0, duplicate=0.0, reorder=0.0, mtu=None, *, heartbeat_ms=10.0, fd_timeout_ms=100.0, rto_ms=20.0, window=None, link_capacity_mbps=None, view_policy="primary_partition", max_message=None, aggregation="omaha", horizon_ms=10.0, tob_batch=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        nodes: &Bound<'_, PyAny>,
        seed: &Bound<'_, PyAny>,
        latency_ms: Option<&Bound<'_, PyAny>>,
        bandwidth_mbps: Option<f64>,
        loss: f64,
        duplicate: f64,
        reorder: f64,
        mtu: Option<&Bound<'_, PyAny>>,
        heartbeat_ms: f64,
        fd_timeout_ms: f64,
        rto_ms: f64,
        window: Option<&Bound<'_, PyAny>>,
        link_capacity_mbps: Option<f64>,
        view_policy: &str,
        max_message: Option<&Bound<'_, PyAny>>,
        aggregation: &str,
        horizon_ms: f64,
        tob_batch: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let n = args::count("nodes", nodes, 1, MAX_NODES as u64)? as u16;
        let mtu = args::opt_count(
            "mtu",
            mtu,
            1500,
            phasecast_core::wire::MIN_MTU as u64,
            MAX_SIM_MTU as u64,
        )? as usize;
        let max_message =
            args::opt_count("max_message", max_message, 65536, TAG as u64 + 1, 1 << 20)? as usize;
        let p = Params {
            nodes: n,
            seed: args::seed(seed)?,
            latency: latency(latency_ms)?,
            bandwidth_bps: bandwidth_mbps
                .map(|b| args::mbps_to_bps("bandwidth_mbps", b))
                .transpose()?,
            loss: args::probability("loss", loss)?,
            duplicate: args::probability("duplicate", duplicate)?,
            reorder: args::probability("reorder", reorder)?,
            mtu,
            heartbeat: args::positive_duration("heartbeat_ms", heartbeat_ms)?,
            fd_timeout: args::positive_duration("fd_timeout_ms", fd_timeout_ms)?,
            rto: args::positive_duration("rto_ms", rto_ms)?,
            window: args::opt_count(
                "window",
                window,
                16,
                1,
                phasecast_core::node::PER_ORIGIN as u64,
            )? as usize,
            link_capacity: link_capacity_mbps
                .map(|b| args::mbps_to_bytes("link_capacity_mbps", b))
                .transpose()?,
            view_policy: parse_view_policy(view_policy)?,
            max_message,
            aggregation: parse_aggregation(aggregation, horizon_ms)?,
            tob_batch: args::opt_count("tob_batch", tob_batch, 4096, 0, 1 << 20)? as usize,
        };
        if p.fd_timeout.as_micros() <= p.heartbeat.as_micros() {
            return Err(PyValueError::new_err(
                "fd_timeout_ms must be longer than heartbeat_ms (else every member is suspected)",
            ));
        }
        let (seed, allocation) = (p.seed, p.link_capacity.is_some());
        let worker = py
            .detach(move || Worker::spawn(move || World::new(p)))
            .map_err(PyValueError::new_err)?;
        Ok(Simulation {
            worker,
            nodes: n,
            seed,
            mtu,
            max_payload: max_message - TAG,
            max_message,
            allocation,
            now_us: 0,
        })
    }

    /// Number of nodes.
    #[getter]
    fn nodes(&self) -> u16 {
        self.nodes
    }

    /// The seed every random draw of this run derives from.
    #[getter]
    fn seed(&self) -> u64 {
        self.seed
    }

    /// Largest datagram, bytes.
    #[getter]
    fn mtu(&self) -> usize {
        self.mtu
    }

    /// Largest payload `broadcast` accepts, bytes.
    #[getter]
    fn max_payload(&self) -> usize {
        self.max_payload
    }

    /// Current virtual time, milliseconds.
    #[getter]
    fn now_ms(&self) -> f64 {
        self.now_us as f64 / 1000.0
    }

    /// Broadcasts ``payload`` from ``node`` in uniform total order, at
    /// ``at_ms`` (default: now). The simulated application queues it: while
    /// the core answers ``Full`` (its window of undelivered broadcasts is
    /// full) it stays queued and is retried after the node's next input.
    /// A node that is down at ``at_ms`` drops it (``stats()['app_dropped']``).
    /// Returns the per-sender counter the checker identifies it by.
    #[pyo3(signature = (node, payload, at_ms=None))]
    fn broadcast(
        &mut self,
        py: Python<'_>,
        node: &Bound<'_, PyAny>,
        payload: &Bound<'_, PyAny>,
        at_ms: Option<f64>,
    ) -> PyResult<u32> {
        let node = self.node("node", node)?;
        let payload = args::payload(payload)?;
        if payload.len() > self.max_payload {
            return Err(PyValueError::new_err(format!(
                "payload of {} bytes is larger than max_payload ({} bytes)",
                payload.len(),
                self.max_payload
            )));
        }
        let at = self.at("at_ms", at_ms)?;
        self.call(py, move |w| w.broadcast(node, &payload, at))?
            .map_err(PyValueError::new_err)
    }

    /// Asks, through the total order, for ``mbps`` more sending rate for
    /// ``node`` (FastCast's ``increase_BW``; needs ``link_capacity_mbps``).
    /// Queued like a broadcast and retried while an increase is ongoing.
    #[pyo3(signature = (node, mbps, at_ms=None))]
    fn increase_bw(
        &mut self,
        py: Python<'_>,
        node: &Bound<'_, PyAny>,
        mbps: f64,
        at_ms: Option<f64>,
    ) -> PyResult<()> {
        self.bw(py, node, mbps, at_ms, true)
    }

    /// Lowers ``node``'s requirement by ``mbps`` (FastCast's
    /// ``decrease_BW``, effective at once, then announced in the total order).
    #[pyo3(signature = (node, mbps, at_ms=None))]
    fn decrease_bw(
        &mut self,
        py: Python<'_>,
        node: &Bound<'_, PyAny>,
        mbps: f64,
        at_ms: Option<f64>,
    ) -> PyResult<()> {
        self.bw(py, node, mbps, at_ms, false)
    }

    /// Sends ``payload`` from ``node`` to each of ``dests`` (a list of other
    /// node ids), point to point, through Omaha's overloaded ``send(msg,
    /// dests, probaBuf, t, app)``: when another application's pledge covers
    /// a destination, the copy waits in that destination's pledge buffer
    /// with probability ``proba_buf``, for at most ``timeout_ms``, and
    /// leaves with the pledged datagram (or at its deadline). With
    /// ``proba_buf=0`` it leaves at once, with whatever was buffered.
    /// ``app`` is the sending application (0 ..= 65535); ``critical`` marks
    /// a message a peer's progress waits on (only the ``"criticality"``
    /// aggregation policy looks at it).
    ///
    /// Best effort, as the core's point-to-point layer: a datagram lost on
    /// the network is not resent. The simulated application queues the
    /// operation like ``broadcast``: what the core refuses as ``Full`` is
    /// retried after the node's next input. Receivers see it in
    /// :meth:`received`.
    #[pyo3(signature = (node, dests, payload, proba_buf=0.0, timeout_ms=0.0, app=None, *, critical=true, at_ms=None))]
    #[allow(clippy::too_many_arguments)]
    fn send(
        &mut self,
        py: Python<'_>,
        node: &Bound<'_, PyAny>,
        dests: &Bound<'_, PyAny>,
        payload: &Bound<'_, PyAny>,
        proba_buf: f64,
        timeout_ms: f64,
        app: Option<&Bound<'_, PyAny>>,
        critical: bool,
        at_ms: Option<f64>,
    ) -> PyResult<()> {
        let zero = 0u16.into_pyobject(py)?.into_any();
        let app = app.unwrap_or(&zero);
        self.p2p_send(
            py, node, dests, payload, proba_buf, timeout_ms, app, critical, at_ms, false,
        )
    }

    /// Omaha's ``beginPledge(app, futureDests)`` at ``node``: application
    /// ``app`` promises to send to ``dests`` soon (e.g. when its quorum wait
    /// ends), so other applications' messages to them may wait for that
    /// datagram. Replaces ``app``'s previous pledge at ``node``.
    #[pyo3(signature = (node, app, dests, at_ms=None))]
    fn begin_pledge(
        &mut self,
        py: Python<'_>,
        node: &Bound<'_, PyAny>,
        app: &Bound<'_, PyAny>,
        dests: &Bound<'_, PyAny>,
        at_ms: Option<f64>,
    ) -> PyResult<()> {
        let node = self.node("node", node)?;
        let app = Self::app_arg(app)?;
        let dests = self.dests(node, dests)?;
        let at = self.at("at_ms", at_ms)?;
        self.call(py, move |w| w.p2p(node, P2p::Begin { app, dests }, at))
    }

    /// Omaha's ``pledgedSend``: ends ``app``'s pledge at ``node``, then
    /// sends like :meth:`send` (the datagram that carries what other
    /// applications buffered behind the pledge).
    #[pyo3(signature = (node, dests, payload, proba_buf=0.0, timeout_ms=0.0, app=None, *, critical=true, at_ms=None))]
    #[allow(clippy::too_many_arguments)]
    fn pledged_send(
        &mut self,
        py: Python<'_>,
        node: &Bound<'_, PyAny>,
        dests: &Bound<'_, PyAny>,
        payload: &Bound<'_, PyAny>,
        proba_buf: f64,
        timeout_ms: f64,
        app: Option<&Bound<'_, PyAny>>,
        critical: bool,
        at_ms: Option<f64>,
    ) -> PyResult<()> {
        let zero = 0u16.into_pyobject(py)?.into_any();
        let app = app.unwrap_or(&zero);
        self.p2p_send(
            py, node, dests, payload, proba_buf, timeout_ms, app, critical, at_ms, true,
        )
    }

    /// Ends ``app``'s pledge at ``node`` without sending (e.g. its instance
    /// was abandoned); what waited behind it leaves at its deadline.
    #[pyo3(signature = (node, app, at_ms=None))]
    fn end_pledge(
        &mut self,
        py: Python<'_>,
        node: &Bound<'_, PyAny>,
        app: &Bound<'_, PyAny>,
        at_ms: Option<f64>,
    ) -> PyResult<()> {
        let node = self.node("node", node)?;
        let app = Self::app_arg(app)?;
        let at = self.at("at_ms", at_ms)?;
        self.call(py, move |w| w.p2p(node, P2p::End { app }, at))
    }

    /// Point-to-point messages ``node`` received (:meth:`send`,
    /// :meth:`pledged_send`), in arrival order, as ``(sender, payload)``.
    #[pyo3(signature = (node, incarnation=0))]
    fn received<'py>(
        &self,
        py: Python<'py>,
        node: &Bound<'py, PyAny>,
        incarnation: i64,
    ) -> PyResult<Bound<'py, PyList>> {
        let node = self.node("node", node)?;
        let inc = Self::incarnation_arg(incarnation)?;
        let rows = self.call(py, move |w| w.received(node, inc))?;
        sender_payload_list(py, rows)
    }

    /// ``node``'s allocated sending rate in Mb/s (FastCast's ``currentBW``),
    /// or ``None`` when bandwidth allocation is off.
    fn current_bw(&self, py: Python<'_>, node: &Bound<'_, PyAny>) -> PyResult<Option<f64>> {
        let node = self.node("node", node)?;
        Ok(self
            .call(py, move |w| w.current_bw(node))?
            .map(args::bytes_to_mbps))
    }

    /// Crashes ``node`` at ``at_ms`` (default: now): it stops dead, sends
    /// nothing more; the others' failure detector suspects it and installs a
    /// view without it.
    #[pyo3(signature = (node, at_ms=None))]
    fn crash(
        &mut self,
        py: Python<'_>,
        node: &Bound<'_, PyAny>,
        at_ms: Option<f64>,
    ) -> PyResult<()> {
        let node = self.node("node", node)?;
        let at = self.at("at_ms", at_ms)?;
        self.call(py, move |w| w.crash(node, at))
    }

    /// Restarts a crashed ``node`` at ``at_ms`` as a new incarnation that
    /// joins the group (no effect if it is up then). To the checker it is a
    /// new process; the first incarnation counts as crashed.
    #[pyo3(signature = (node, at_ms=None))]
    fn restart(
        &mut self,
        py: Python<'_>,
        node: &Bound<'_, PyAny>,
        at_ms: Option<f64>,
    ) -> PyResult<()> {
        let node = self.node("node", node)?;
        let at = self.at("at_ms", at_ms)?;
        self.call(py, move |w| w.restart(node, at))
    }

    /// From ``at_ms`` until ``heal_ms`` (``None``: never), nodes in different
    /// ``groups`` (lists of node ids) cannot reach each other; nodes in no
    /// group form one more group. Datagrams already in flight still arrive.
    #[pyo3(signature = (groups, at_ms=None, heal_ms=None))]
    fn partition(
        &mut self,
        py: Python<'_>,
        groups: &Bound<'_, PyAny>,
        at_ms: Option<f64>,
        heal_ms: Option<f64>,
    ) -> PyResult<()> {
        if groups.is_instance_of::<pyo3::types::PyString>() {
            return Err(PyTypeError::new_err(
                "groups must be a list of lists of node ids",
            ));
        }
        let mut parsed: Vec<Vec<u16>> = Vec::new();
        let mut seen = BTreeSet::new();
        for g in groups
            .try_iter()
            .map_err(|_| PyTypeError::new_err("groups must be a list of lists of node ids"))?
        {
            let g = g?;
            if g.is_instance_of::<pyo3::types::PyString>() {
                return Err(PyTypeError::new_err(
                    "each group must be a list of node ids",
                ));
            }
            let mut members = Vec::new();
            for m in g
                .try_iter()
                .map_err(|_| PyTypeError::new_err("each group must be a list of node ids"))?
            {
                let id = self.node("partition member", &m?)?;
                if !seen.insert(id) {
                    return Err(PyValueError::new_err(format!(
                        "node {id} appears twice in the partition's groups"
                    )));
                }
                members.push(id);
            }
            parsed.push(members);
        }
        let at = self.at("at_ms", at_ms)?;
        let heal = match heal_ms {
            None => Instant::MAX,
            Some(ms) => {
                let h = args::instant("heal_ms", ms)?;
                if h < at {
                    return Err(PyValueError::new_err(format!(
                        "heal_ms ({ms}) is before at_ms ({} ms)",
                        at.as_micros() as f64 / 1000.0
                    )));
                }
                h
            }
        };
        self.call(py, move |w| w.partition(&parsed, at, heal))
    }

    /// From ``at_ms`` until ``heal_ms`` (``None``: never), datagrams from
    /// ``src`` to ``dst`` are dropped; the other direction still works.
    #[pyo3(signature = (src, dst, at_ms=None, heal_ms=None))]
    fn cut(
        &mut self,
        py: Python<'_>,
        src: &Bound<'_, PyAny>,
        dst: &Bound<'_, PyAny>,
        at_ms: Option<f64>,
        heal_ms: Option<f64>,
    ) -> PyResult<()> {
        let (from, to) = (self.node("src", src)?, self.node("dst", dst)?);
        let at = self.at("at_ms", at_ms)?;
        let heal = match heal_ms {
            None => Instant::MAX,
            Some(ms) => {
                let h = args::instant("heal_ms", ms)?;
                if h < at {
                    return Err(PyValueError::new_err("heal_ms is before at_ms"));
                }
                h
            }
        };
        self.call(py, move |w| w.cut(from, to, at, heal))
    }

    /// At ``at_ms`` (default: now) every fault ends: partitions and cuts
    /// heal, loss, duplication and reordering stop; with ``restart_crashed``
    /// crashed nodes restart. Faults scheduled later still happen.
    #[pyo3(signature = (at_ms=None, restart_crashed=false))]
    fn heal_all(
        &mut self,
        py: Python<'_>,
        at_ms: Option<f64>,
        restart_crashed: bool,
    ) -> PyResult<()> {
        let at = self.at("at_ms", at_ms)?;
        self.call(py, move |w| w.heal_all(at, restart_crashed))
    }

    /// Runs the simulation until virtual time ``until_ms``. The GIL is
    /// released meanwhile; Ctrl-C interrupts between slices of about 0.1 s
    /// (the simulation stays consistent, at an earlier time). A progress bar
    /// appears after a second when interactive (``progress=None``), always
    /// (``True``) or never (``False``).
    #[pyo3(signature = (until_ms, progress=None))]
    fn run(&mut self, py: Python<'_>, until_ms: f64, progress: Option<bool>) -> PyResult<()> {
        let until = args::instant("until_ms", until_ms)?;
        if until.as_micros() < self.now_us {
            return Err(PyValueError::new_err(format!(
                "until_ms = {until_ms} is before the current time ({} ms)",
                self.now_us as f64 / 1000.0
            )));
        }
        let start = self.now_us;
        let total_ms = (until.as_micros() - start) as f64 / 1000.0;
        let mut bar: Option<Bound<'_, PyAny>> = None;
        if progress != Some(false) && total_ms > 0.0 {
            // Best effort: no bar if the Python side is unavailable.
            bar = py
                .import("phasecast._progress")
                .and_then(|m| {
                    m.getattr("bar")?
                        .call1((total_ms, "simulating (virtual ms)", progress))
                })
                .ok()
                .filter(|b| !b.is_none());
        }
        let mut shown = 0.0f64;
        let (capped_before, _) = self.call(py, |w| w.capped())?;
        // Virtual time that does not move for this long is a spin, not a run.
        let stuck_after = std::time::Duration::from_secs(20);
        let mut last_progress = (self.now_us, std::time::Instant::now());
        let result = loop {
            let step = self.call(py, move |w| {
                let done = w.run_chunk(until, std::time::Duration::from_millis(100));
                (done, w.now().as_micros())
            });
            let (done, now) = match step {
                Ok(v) => v,
                Err(e) => break Err(e),
            };
            self.now_us = now;
            if let Some(b) = &bar {
                let at = (now - start) as f64 / 1000.0;
                let _ = b.call_method1("update", (at - shown,));
                shown = at;
            }
            if done {
                break Ok(());
            }
            if now != last_progress.0 {
                last_progress = (now, std::time::Instant::now());
            } else if last_progress.1.elapsed() > stuck_after {
                break Err(PyRuntimeError::new_err(format!(
                    "the simulation is stuck at {} ms: events keep happening at that instant \
                     without virtual time moving (a node that keeps asking to be woken now)",
                    now as f64 / 1000.0
                )));
            }
            if let Err(e) = py.check_signals() {
                break Err(e);
            }
        };
        if let Ok((capped, worst)) = self.call(py, |w| w.capped()) {
            if capped > capped_before {
                let msg = std::ffi::CString::new(format!(
                    "a node (node {worst} most) asked to send more than {MAX_PER_MS} datagrams in \
                     one millisecond of virtual time; the simulation throttled it ({} polls held back). \
                     This is a storm in the protocol (e.g. a view change re-sending RECOVER as \
                     fast as it is asked): give the links a finite bandwidth_mbps to pace it.",
                    capped - capped_before
                ))
                .unwrap_or_default();
                let _ = PyErr::warn(
                    py,
                    &py.get_type::<pyo3::exceptions::PyRuntimeWarning>(),
                    &msg,
                    1,
                );
            }
        }
        if let Some(b) = bar {
            let _ = b.call_method0("close");
        }
        result
    }

    /// What ``node`` delivered, in delivery order, as ``(sender, payload)``.
    /// ``incarnation`` selects a restarted node's later life (0: the first).
    #[pyo3(signature = (node, incarnation=0))]
    fn delivered<'py>(
        &self,
        py: Python<'py>,
        node: &Bound<'py, PyAny>,
        incarnation: i64,
    ) -> PyResult<Bound<'py, PyList>> {
        let node = self.node("node", node)?;
        let inc = Self::incarnation_arg(incarnation)?;
        let rows = self.call(py, move |w| w.delivered(node, inc))?;
        sender_payload_list(py, rows)
    }

    /// ``node``'s deliveries with details: a list of dicts with ``time_ms``,
    /// ``sn`` (position in the total order: application messages numbered
    /// consecutively from 0, the same at every node; bandwidth requests and
    /// view changes take no number), ``sender``, ``counter`` (the sender's
    /// broadcast counter), ``payload`` and ``broadcast_ms`` (when the
    /// sender's core accepted it; ``queued_ms``: when ``broadcast`` asked
    /// for it), so ``time_ms - broadcast_ms`` is the broadcast-to-delivery
    /// latency and ``broadcast_ms - queued_ms`` the time it waited for the
    /// sender's window.
    #[pyo3(signature = (node, incarnation=0))]
    fn delivery_log<'py>(
        &self,
        py: Python<'py>,
        node: &Bound<'py, PyAny>,
        incarnation: i64,
    ) -> PyResult<Bound<'py, PyList>> {
        let node = self.node("node", node)?;
        let inc = Self::incarnation_arg(incarnation)?;
        let rows = self.call(py, move |w| w.delivery_log(node, inc))?;
        let out = PyList::empty(py);
        for r in rows {
            let d = PyDict::new(py);
            d.set_item("time_ms", r.at.as_micros() as f64 / 1000.0)?;
            d.set_item("sn", r.sn)?;
            d.set_item("sender", r.sender)?;
            d.set_item("counter", r.counter)?;
            d.set_item("payload", PyBytes::new(py, &r.payload))?;
            d.set_item(
                "broadcast_ms",
                r.broadcast_at.map(|t| t.as_micros() as f64 / 1000.0),
            )?;
            d.set_item(
                "queued_ms",
                r.asked_at.map(|t| t.as_micros() as f64 / 1000.0),
            )?;
            out.append(d)?;
        }
        Ok(out)
    }

    /// The views ``node`` installed, in order: ``(time_ms, view_id,
    /// members)``; the first member of a view is its sequencer.
    #[pyo3(signature = (node, incarnation=0))]
    fn views<'py>(
        &self,
        py: Python<'py>,
        node: &Bound<'py, PyAny>,
        incarnation: i64,
    ) -> PyResult<Vec<(f64, u32, Vec<u16>)>> {
        let node = self.node("node", node)?;
        let inc = Self::incarnation_arg(incarnation)?;
        let rows = self.call(py, move |w| w.views(node, inc))?;
        Ok(rows
            .into_iter()
            .map(|(t, v, m)| (t.as_micros() as f64 / 1000.0, v, m))
            .collect())
    }

    /// ``node``'s current view as ``(view_id, members)``.
    fn view(&self, py: Python<'_>, node: &Bound<'_, PyAny>) -> PyResult<(u32, Vec<u16>)> {
        let node = self.node("node", node)?;
        self.call(py, move |w| w.view(node))
    }

    /// The sequencer in ``node``'s current view.
    fn sequencer(&self, py: Python<'_>, node: &Bound<'_, PyAny>) -> PyResult<u16> {
        let node = self.node("node", node)?;
        self.call(py, move |w| w.sequencer(node))
    }

    /// Whether ``node`` is up (not crashed).
    fn is_up(&self, py: Python<'_>, node: &Bound<'_, PyAny>) -> PyResult<bool> {
        let node = self.node("node", node)?;
        self.call(py, move |w| w.is_up(node))
    }

    /// How many times ``node`` was restarted.
    fn incarnation(&self, py: Python<'_>, node: &Bound<'_, PyAny>) -> PyResult<u32> {
        let node = self.node("node", node)?;
        self.call(py, move |w| w.incarnation(node))
    }

    /// Every event the nodes reported (or ``node``'s only), in order, as
    /// dicts with ``time_ms``, ``node``, ``incarnation``, ``type``
    /// (``delivered``, ``view_changed``, ``suspected``, ``excluded``,
    /// ``bandwidth_changed``, ``received``) and the event's fields.
    #[pyo3(signature = (node=None))]
    fn events<'py>(
        &self,
        py: Python<'py>,
        node: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let node = node.map(|n| self.node("node", n)).transpose()?;
        let rows = self.call(py, move |w| w.events(node))?;
        let out = PyList::empty(py);
        for (at, n, inc, e) in rows {
            let d = PyDict::new(py);
            d.set_item("time_ms", at.as_micros() as f64 / 1000.0)?;
            d.set_item("node", n)?;
            d.set_item("incarnation", inc)?;
            crate::node::event_fields(py, &d, &e, TAG)?;
            out.append(d)?;
        }
        Ok(out)
    }

    /// Runs the shared property checker over what every node broadcast and
    /// delivered so far: a dict with ``validity``, ``integrity``,
    /// ``agreement``, ``total_order`` and ``fifo`` (bools), ``ok``,
    /// ``violations`` (texts), ``crashed`` (nodes not counted as correct:
    /// crashed, restarted or excluded) and the sizes checked.
    ///
    /// Validity and agreement are liveness properties: check after the
    /// faults are over and the run had time to settle.
    #[pyo3(signature = (fifo=true))]
    fn check<'py>(&self, py: Python<'py>, fifo: bool) -> PyResult<Bound<'py, PyDict>> {
        let v = self.call(py, move |w| w.check(fifo))?;
        verdict_dict(py, v)
    }

    /// Counters of the whole run (or of ``node``): datagrams and bytes on
    /// the wire (``header_bytes``: IP/UDP headers), records per datagram,
    /// retransmissions, network faults applied, view changes, application
    /// retries, point-to-point ``messages_accepted``, ``messages_buffered``
    /// (copies that waited in a pledge buffer) and ``sent_at_deadline``
    /// (datagrams a buffer's deadline sent), and for the whole run
    /// ``sends_requested`` / ``sends_accepted`` / ``sends_refused`` (the
    /// application's :meth:`send` and :meth:`pledged_send` calls), ...
    #[pyo3(signature = (node=None))]
    fn stats<'py>(
        &self,
        py: Python<'py>,
        node: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let node = node.map(|n| self.node("node", n)).transpose()?;
        let (rows, queued, sends) =
            self.call(py, move |w| (w.stats(node), w.queued(), w.send_counts()))?;
        let d = PyDict::new(py);
        for (k, v) in rows {
            match v {
                Val::U(u) => d.set_item(k, u)?,
                Val::F(f) => d.set_item(k, f)?,
            }
        }
        if node.is_none() {
            d.set_item("broadcasts_queued", queued)?;
            d.set_item("sends_requested", sends.0)?;
            d.set_item("sends_accepted", sends.1)?;
            d.set_item("sends_refused", sends.2)?;
        }
        Ok(d)
    }

    /// Whether bandwidth allocation is on (``link_capacity_mbps`` given).
    #[getter]
    fn allocation(&self) -> bool {
        self.allocation
    }

    fn __repr__(&self) -> String {
        format!(
            "Simulation(nodes={}, seed={}, mtu={}, now_ms={})",
            self.nodes,
            self.seed,
            self.mtu,
            self.now_us as f64 / 1000.0
        )
    }
}

impl Simulation {
    fn bw(
        &mut self,
        py: Python<'_>,
        node: &Bound<'_, PyAny>,
        mbps: f64,
        at_ms: Option<f64>,
        up: bool,
    ) -> PyResult<()> {
        let node = self.node("node", node)?;
        if !self.allocation {
            return Err(PyValueError::new_err(
                "bandwidth allocation is off: build the Simulation with link_capacity_mbps=...",
            ));
        }
        let amount = args::mbps_to_bytes("mbps", mbps)?;
        let at = self.at("at_ms", at_ms)?;
        self.call(py, move |w| w.change_bw(node, amount, up, at))
    }
}

/// A checker verdict as a dict.
pub fn verdict_dict(py: Python<'_>, v: Verdict) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("ok", v.ok)?;
    d.set_item("validity", v.validity)?;
    d.set_item("integrity", v.integrity)?;
    d.set_item("agreement", v.agreement)?;
    d.set_item("total_order", v.total_order)?;
    d.set_item("fifo", v.fifo)?;
    d.set_item("violations", v.violations)?;
    d.set_item("crashed", v.crashed)?;
    for (k, n) in v.counts {
        d.set_item(k, n)?;
    }
    Ok(d)
}
