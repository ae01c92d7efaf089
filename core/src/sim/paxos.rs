//! The multi-application Paxos workload of Omaha §4.1 and §A.1, on real
//! nodes in the simulator, to measure what pledge buffers save.
//!
//! Several applications run on 15 nodes, each on its own node set; the sets
//! overlap. Instances start at Poisson arrival times (rate chosen so that on
//! average `load` instances run at once, by Little's law with an instance
//! taking about two round trips) in a random application with a random
//! leader. An instance (classic Paxos, §A.1):
//!
//! 1. the leader sends `prepare` to the other members and begins a pledge
//!    towards them (its quorum wait ends with `accept` to the same nodes);
//! 2. each member answers `ack`;
//! 3. on a quorum (`f + 1` of the set's `2f + 1`, the leader counting
//!    itself) the leader sends `accept` with `pledged_send`;
//! 4. each member broadcasts `accepted` to the other members;
//! 5. the leader decides on a quorum of `accepted` (itself included): the
//!    instance's latency is from its start to that decision.
//!
//! Every message is sent with the experiment's `proba_buf` and `timeout`
//! (the paper keeps both static). Each instance is its own application id
//! for the pledge table (its pledge is its own promise). Under loss the
//! leader resends to the members it has not heard from every two nominal
//! round trips, with `proba_buf = 0`; members answer duplicates again.
//!
//! Bandwidth counts every datagram sent from the start of the first measured
//! instance (after `warmup`) until the end, each with its IP/UDP header
//! (`ip_header`, 28 bytes for UDP over IPv4; the paper's TCP/IP is 40).

use std::boxed::Box;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::vec::Vec;

use super::{AppResult, Endpoint, Latency, LinkConfig, Sim, SimConfig};
use crate::addr::{NodeId, Transmit};
use crate::node::{Config, Event, Node, SendOptions};
use crate::pledge::Aggregation;
use crate::rng::Rng;
use crate::time::{Duration, Instant};

/// The node type of the workload: 15 peers, small messages.
pub type PaxosCore = Node<16, 64, 256, 1024, 16384, 1500>;

/// Bytes of an `accept`'s proposed value.
pub const VALUE_LEN: usize = 64;
const HEADER_LEN: usize = 12;

/// Parameters of one run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PaxosParams {
    /// Nodes (15 in the paper).
    pub nodes: u16,
    /// Applications.
    pub apps: u16,
    /// Nodes per application (odd: `2f + 1`).
    pub app_size: u16,
    /// Average number of concurrent instances (2, 5, 10 in the paper).
    pub load: f64,
    /// Instances to run (3000).
    pub instances: u32,
    /// Instances discarded at the start (100).
    pub warmup: u32,
    /// Mean round-trip time (60 ms) and its standard deviation (10 %).
    pub rtt: Duration,
    /// Standard deviation of the round trip.
    pub rtt_sd: Duration,
    /// Aggregation policy of every node.
    pub aggregation: Aggregation,
    /// `probaBuf` of every message.
    pub proba_buf: f32,
    /// `timeout` of every message.
    pub timeout: Duration,
    /// Independent loss probability of each datagram.
    pub loss: f64,
    /// IP-layer header bytes counted per datagram.
    pub ip_header: usize,
    /// Seed of the run (workload, network and nodes).
    pub seed: u64,
}

impl Default for PaxosParams {
    fn default() -> Self {
        PaxosParams {
            nodes: 15,
            apps: 5,
            app_size: 7,
            load: 10.0,
            instances: 3000,
            warmup: 100,
            rtt: Duration::from_millis(60),
            rtt_sd: Duration::from_millis(6),
            aggregation: Aggregation::Omaha,
            proba_buf: 1.0,
            timeout: Duration::from_millis(60),
            loss: 0.0,
            ip_header: 28,
            seed: 0,
        }
    }
}

/// What one run measured (instances after the warm-up).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PaxosResult {
    /// Instances decided (all of them unless the run was cut short).
    pub decided: u32,
    /// Mean latency from start to decision, ms.
    pub mean_latency_ms: f64,
    /// Median latency, ms.
    pub p50_latency_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_latency_ms: f64,
    /// Mean latency from start to decision at the other members (learners), ms.
    pub learner_latency_ms: f64,
    /// Bytes at the IP layer (datagrams plus `ip_header` each).
    pub ip_bytes: u64,
    /// Datagrams sent.
    pub datagrams: u64,
    /// Application messages sent (one per destination).
    pub messages: u64,
    /// Message copies that waited in a pledge or time-based buffer.
    pub buffered: u64,
    /// Average number of concurrent instances measured.
    pub concurrency: f64,
}

/// A policy run beside the no-aggregation baseline on the same workload.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PaxosComparison {
    /// The run with [`Aggregation::None`].
    pub baseline: PaxosResult,
    /// The run with the policy of the parameters.
    pub policy: PaxosResult,
    /// `1 - policy bytes / baseline bytes`.
    pub bandwidth_saving: f64,
    /// `policy mean latency / baseline mean latency - 1`.
    pub latency_degradation: f64,
}

/// Runs `params` and the same workload without aggregation.
pub fn compare(params: &PaxosParams) -> PaxosComparison {
    let baseline = run(&PaxosParams {
        aggregation: Aggregation::None,
        ..*params
    });
    let policy = run(params);
    PaxosComparison {
        baseline,
        policy,
        bandwidth_saving: 1.0 - policy.ip_bytes as f64 / baseline.ip_bytes.max(1) as f64,
        latency_degradation: policy.mean_latency_ms / baseline.mean_latency_ms.max(1e-9) - 1.0,
    }
}

#[derive(Clone, Copy, Debug)]
struct Instance {
    app: u16,
    leader: NodeId,
    start: Instant,
}

/// The workload, shared by every node.
struct Workload {
    params: PaxosParams,
    sets: Vec<Vec<NodeId>>,
    instances: Vec<Instance>,
    measure_from: Instant,
}

impl Workload {
    fn new(p: &PaxosParams) -> Self {
        let n = p.nodes.max(1);
        let size = p.app_size.clamp(1, n);
        // Application i runs on `size` consecutive nodes starting at i·stride:
        // neighbouring sets overlap.
        let stride = (n / p.apps.max(1)).max(1);
        let sets: Vec<Vec<NodeId>> = (0..p.apps.max(1))
            .map(|a| (0..size).map(|k| NodeId((a * stride + k) % n)).collect())
            .collect();
        let mut rng = Rng::new(p.seed ^ 0x7061_786f_7321);
        // Little's law: rate = load / (two round trips).
        let mean_gap_us = 2.0 * p.rtt.as_micros() as f64 / p.load.max(0.01);
        let mut t = 0.0f64;
        let mut instances = Vec::with_capacity(p.instances as usize);
        for _ in 0..p.instances {
            let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            t += -mean_gap_us * (1.0 - u).ln();
            let app = rng.below(sets.len() as u32) as u16;
            let set = &sets[app as usize];
            let leader = set[rng.below(set.len() as u32) as usize];
            instances.push(Instance {
                app,
                leader,
                start: Instant::from_micros(1_000 + t as u64),
            });
        }
        let measure_from = instances
            .get(p.warmup as usize)
            .map_or(Instant::ZERO, |i| i.start);
        Workload {
            params: *p,
            sets,
            instances,
            measure_from,
        }
    }

    fn quorum(&self, app: u16) -> usize {
        self.sets[app as usize].len() / 2 + 1
    }
}

#[derive(Default)]
struct Metrics {
    latencies: Vec<(u32, Duration)>,
    /// Start to decision at each member other than the leader.
    learned: Vec<Duration>,
    ip_bytes: u64,
    datagrams: u64,
    messages: u64,
}

const PREPARE: u8 = 1;
const ACK: u8 = 2;
const ACCEPT: u8 = 3;
const ACCEPTED: u8 = 4;

/// A leader's view of one of its instances.
#[derive(Default)]
struct Leading {
    acks: u64,
    accepted: u64,
    phase2: bool,
    decided: bool,
    retry_at: Option<Instant>,
}

/// One node: the Paxos roles of every application it belongs to.
struct PaxosNode {
    me: NodeId,
    node: Box<PaxosCore>,
    work: Rc<Workload>,
    metrics: Rc<RefCell<Metrics>>,
    leading: BTreeMap<u32, Leading>,
    /// Instances this node accepted (answers duplicates).
    accepted: BTreeMap<u32, ()>,
    /// `accepted` heard per instance as a learner (`u64::MAX`: learned).
    learning: BTreeMap<u32, u64>,
    inbox: Vec<(NodeId, Vec<u8>)>,
}

fn bit(id: NodeId) -> u64 {
    1u64 << (id.0 % 64)
}

impl PaxosNode {
    fn opts(&self, inst: u32, proba_buf: f32, critical: bool) -> SendOptions {
        SendOptions {
            proba_buf,
            critical,
            timeout: self.work.params.timeout,
            app: (inst % 0xffff) as u16 + 1,
            ..SendOptions::default()
        }
    }

    fn others(&self, app: u16) -> Vec<NodeId> {
        self.work.sets[app as usize]
            .iter()
            .copied()
            .filter(|&n| n != self.me)
            .collect()
    }

    fn message(kind: u8, inst: u32) -> Vec<u8> {
        let mut m =
            std::vec![0u8; if kind == ACCEPT { HEADER_LEN + VALUE_LEN } else { HEADER_LEN }];
        m[0] = kind;
        m[4..8].copy_from_slice(&inst.to_be_bytes());
        m
    }

    fn send(
        &mut self,
        now: Instant,
        dests: &[NodeId],
        kind: u8,
        inst: u32,
        opts: SendOptions,
        pledged: bool,
    ) {
        if dests.is_empty() {
            return;
        }
        let msg = Self::message(kind, inst);
        let r = if pledged {
            self.node.pledged_send(now, dests, &msg, opts)
        } else {
            self.node.send_to(now, dests, &msg, opts)
        };
        if r.is_ok() {
            self.metrics.borrow_mut().messages += dests.len() as u64;
        }
        // A refused send (queues full) is retried by the leader's timer.
    }

    fn retry_period(&self) -> Duration {
        Duration::from_micros(2 * self.work.params.rtt.as_micros())
    }

    fn start(&mut self, inst: u32, now: Instant) {
        let i = self.work.instances[inst as usize];
        let others = self.others(i.app);
        let proba = self.work.params.proba_buf;
        self.send(
            now,
            &others,
            PREPARE,
            inst,
            self.opts(inst, proba, true),
            false,
        );
        let app = self.opts(inst, proba, true).app;
        let _ = self.node.begin_pledge(now, app, &others);
        self.leading.insert(
            inst,
            Leading {
                retry_at: Some(now + self.retry_period()),
                ..Leading::default()
            },
        );
        self.quorum_check(inst, now);
    }

    fn on_message(&mut self, from: NodeId, m: &[u8], now: Instant) {
        if m.len() < HEADER_LEN {
            return;
        }
        let inst = u32::from_be_bytes([m[4], m[5], m[6], m[7]]);
        let Some(i) = self.work.instances.get(inst as usize).copied() else {
            return;
        };
        let proba = self.work.params.proba_buf;
        match m[0] {
            PREPARE => self.send(now, &[from], ACK, inst, self.opts(inst, proba, true), false),
            ACCEPT => {
                if self.accepted.insert(inst, ()).is_none() {
                    // The leader's decision waits on this; the other
                    // learners' copies are off the critical path.
                    self.send(
                        now,
                        &[i.leader],
                        ACCEPTED,
                        inst,
                        self.opts(inst, proba, true),
                        false,
                    );
                    let learners: Vec<NodeId> = self
                        .others(i.app)
                        .into_iter()
                        .filter(|&n| n != i.leader)
                        .collect();
                    self.send(
                        now,
                        &learners,
                        ACCEPTED,
                        inst,
                        self.opts(inst, proba, false),
                        false,
                    );
                    self.learn(inst, now);
                } else {
                    self.send(
                        now,
                        &[from],
                        ACCEPTED,
                        inst,
                        self.opts(inst, 0.0, true),
                        false,
                    );
                }
            }
            ACK => {
                if let Some(l) = self.leading.get_mut(&inst) {
                    l.acks |= bit(from);
                }
                self.quorum_check(inst, now);
            }
            ACCEPTED => {
                if let Some(l) = self.leading.get_mut(&inst) {
                    l.accepted |= bit(from);
                    self.quorum_check(inst, now);
                } else if i.leader != self.me {
                    *self.learning.entry(inst).or_insert(0) |= bit(from);
                    self.learn(inst, now);
                }
            }
            _ => {}
        }
    }

    fn quorum_check(&mut self, inst: u32, now: Instant) {
        let i = self.work.instances[inst as usize];
        let q = self.work.quorum(i.app);
        let Some(l) = self.leading.get_mut(&inst) else {
            return;
        };
        if !l.phase2 && l.acks.count_ones() as usize + 1 >= q {
            l.phase2 = true;
            l.retry_at = Some(now + Duration::from_micros(2 * self.work.params.rtt.as_micros()));
            let others = self.others(i.app);
            let proba = self.work.params.proba_buf;
            self.send(
                now,
                &others,
                ACCEPT,
                inst,
                self.opts(inst, proba, true),
                true,
            );
            // The leader accepts its own proposal.
            self.accepted.insert(inst, ());
            return;
        }
        if l.phase2 && !l.decided && l.accepted.count_ones() as usize + 1 >= q {
            l.decided = true;
            l.retry_at = None;
            if inst >= self.work.params.warmup {
                self.metrics
                    .borrow_mut()
                    .latencies
                    .push((inst, now.saturating_since(i.start)));
            }
            self.leading.remove(&inst);
            // Keep duplicates answerable, bounded.
            if self.accepted.len() > 4096 {
                self.accepted.pop_first();
            }
        }
    }

    /// A member (not the leader) learns the decision on a quorum of
    /// `accepted`, its own included.
    fn learn(&mut self, inst: u32, now: Instant) {
        let i = self.work.instances[inst as usize];
        let heard = self.learning.get(&inst).copied().unwrap_or(0);
        if heard == u64::MAX {
            return; // already learned
        }
        let own = usize::from(self.accepted.contains_key(&inst));
        if heard.count_ones() as usize + own >= self.work.quorum(i.app) {
            self.learning.insert(inst, u64::MAX);
            if inst >= self.work.params.warmup {
                self.metrics
                    .borrow_mut()
                    .learned
                    .push(now.saturating_since(i.start));
            }
        }
    }

    fn retries(&mut self, now: Instant) {
        let due: Vec<u32> = self
            .leading
            .iter()
            .filter(|(_, l)| l.retry_at.is_some_and(|t| t <= now))
            .map(|(&k, _)| k)
            .collect();
        for inst in due {
            let i = self.work.instances[inst as usize];
            let period = self.retry_period();
            let Some(l) = self.leading.get_mut(&inst) else {
                continue;
            };
            l.retry_at = Some(now + period);
            let (kind, heard) = if l.phase2 {
                (ACCEPT, l.accepted)
            } else {
                (PREPARE, l.acks)
            };
            let missing: Vec<NodeId> = self
                .others(i.app)
                .into_iter()
                .filter(|&n| heard & bit(n) == 0)
                .collect();
            let opts = self.opts(inst, 0.0, true);
            self.send(now, &missing, kind, inst, opts, false);
        }
    }

    fn drain_events(&mut self, now: Instant) {
        while let Some(ev) = PaxosCore::poll_event(&mut self.node) {
            if let Event::Received { from, payload, .. } = ev {
                self.inbox.push((from, payload.to_vec()));
            }
        }
        let inbox = core::mem::take(&mut self.inbox);
        for (from, m) in &inbox {
            self.on_message(*from, m, now);
        }
        self.inbox = inbox;
        self.inbox.clear();
    }
}

impl Endpoint for PaxosNode {
    type Event = ();

    fn handle_datagram(&mut self, now: Instant, from: NodeId, bytes: &[u8]) {
        let mut copy = bytes.to_vec();
        let _ = PaxosCore::handle_datagram(&mut self.node, now, from, &mut copy);
        self.drain_events(now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        PaxosCore::handle_timeout(&mut self.node, now);
        self.retries(now);
        self.drain_events(now);
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let tx = PaxosCore::poll_transmit(&mut self.node, now, buf).ok()?;
        if now >= self.work.measure_from {
            let mut m = self.metrics.borrow_mut();
            m.datagrams += 1;
            m.ip_bytes += (tx.len + self.work.params.ip_header) as u64;
        }
        Some(tx)
    }

    fn poll_event(&mut self) -> Option<()> {
        None
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let retry = self.leading.values().filter_map(|l| l.retry_at).min();
        [PaxosCore::poll_timeout(&self.node), retry]
            .into_iter()
            .flatten()
            .min()
    }
}

/// Runs the workload of `params` once.
pub fn run(params: &PaxosParams) -> PaxosResult {
    let work = Rc::new(Workload::new(params));
    let metrics = Rc::new(RefCell::new(Metrics::default()));
    let mut cfg = SimConfig::new(params.nodes, params.seed);
    cfg.record_events = false;
    cfg.mtu = 1500;
    cfg.header_bytes = params.ip_header;
    let one_way = |d: Duration| Duration::from_micros(d.as_micros() / 2);
    // One-way delays are normal with half the mean; the round trip's
    // deviation is √2 times a one-way deviation.
    let sd = Duration::from_micros((params.rtt_sd.as_micros() as f64 / 2f64.sqrt()) as u64);
    cfg.link = LinkConfig {
        loss: params.loss,
        ..LinkConfig::with_latency(Latency::Normal {
            mean: one_way(params.rtt),
            sd,
        })
    };
    let members: Vec<NodeId> = (0..params.nodes).map(NodeId).collect();
    let (w, m) = (work.clone(), metrics.clone());
    let mut sim = Sim::new(cfg, move |id, seed| {
        let mut c = Config::new(id, &members);
        c.seed = seed;
        c.mtu = 1500;
        c.aggregation = w.params.aggregation;
        // Paxos tolerates loss itself: no total-order traffic is used here.
        PaxosNode {
            me: id,
            node: Box::new(PaxosCore::new(&c, Instant::ZERO).expect("valid paxos config")),
            work: w.clone(),
            metrics: m.clone(),
            leading: BTreeMap::new(),
            accepted: BTreeMap::new(),
            learning: BTreeMap::new(),
            inbox: Vec::new(),
        }
    });
    for (k, i) in work.instances.iter().enumerate() {
        let inst = k as u32;
        sim.app_at(
            i.leader,
            i.start,
            Box::new(move |n: &mut PaxosNode, now| {
                n.start(inst, now);
                AppResult::Done
            }),
        );
    }
    let last_start = work.instances.last().map_or(Instant::ZERO, |i| i.start);
    // Generous: every instance decides within a few round trips (plus
    // retries under loss).
    sim.run_until(last_start + Duration::from_secs(30));
    let mut r = summarize(&work, &metrics.borrow());
    r.buffered = (0..params.nodes)
        .map(|n| sim.node(NodeId(n)).node.counters().messages_buffered)
        .sum();
    r
}

fn summarize(work: &Workload, m: &Metrics) -> PaxosResult {
    let mut lat: Vec<f64> = m
        .latencies
        .iter()
        .map(|&(_, d)| d.as_micros() as f64 / 1000.0)
        .collect();
    lat.sort_by(f64::total_cmp);
    let pct = |q: f64| -> f64 {
        if lat.is_empty() {
            return 0.0;
        }
        let i = ((lat.len() - 1) as f64 * q).round() as usize;
        lat[i]
    };
    let mean = if lat.is_empty() {
        0.0
    } else {
        lat.iter().sum::<f64>() / lat.len() as f64
    };
    // Little's law on the measured instances.
    let span = work.instances.last().map_or(0, |l| {
        l.start.saturating_since(work.measure_from).as_micros()
    });
    let concurrency = if span == 0 {
        0.0
    } else {
        lat.iter().sum::<f64>() * 1000.0 / span as f64
    };
    PaxosResult {
        decided: lat.len() as u32,
        mean_latency_ms: mean,
        p50_latency_ms: pct(0.5),
        p99_latency_ms: pct(0.99),
        learner_latency_ms: if m.learned.is_empty() {
            0.0
        } else {
            m.learned.iter().map(|d| d.as_micros() as f64).sum::<f64>()
                / m.learned.len() as f64
                / 1000.0
        },
        ip_bytes: m.ip_bytes,
        datagrams: m.datagrams,
        messages: m.messages,
        buffered: 0,
        concurrency,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(aggregation: Aggregation, proba_buf: f32) -> PaxosParams {
        PaxosParams {
            instances: 300,
            warmup: 20,
            aggregation,
            proba_buf,
            seed: 3,
            ..PaxosParams::default()
        }
    }

    #[test]
    fn every_instance_decides_in_about_two_round_trips() {
        let r = run(&small(Aggregation::None, 0.0));
        assert_eq!(r.decided, 280);
        assert!(
            (90.0..150.0).contains(&r.mean_latency_ms),
            "{}",
            r.mean_latency_ms
        );
        // Without aggregation nearly every message is its own datagram.
        assert!(r.datagrams as f64 > 0.9 * r.messages as f64 * 280.0 / 300.0);
        assert!(
            r.concurrency > 5.0 && r.concurrency < 15.0,
            "{}",
            r.concurrency
        );
    }

    #[test]
    fn pledges_save_bandwidth_at_a_small_latency_cost() {
        let c = compare(&small(Aggregation::Omaha, 1.0));
        assert_eq!(c.policy.decided, 280);
        assert!(c.bandwidth_saving > 0.05, "{c:?}");
        assert!(c.latency_degradation < 0.25, "{c:?}");
        let none = compare(&small(Aggregation::Omaha, 0.0));
        assert!(none.bandwidth_saving.abs() < 0.03, "{none:?}");
    }

    #[test]
    fn loss_is_survived() {
        let r = run(&PaxosParams {
            loss: 0.05,
            ..small(Aggregation::Omaha, 1.0)
        });
        assert_eq!(r.decided, 280);
    }

    #[test]
    fn runs_replay_from_their_seed() {
        let p = small(Aggregation::Omaha, 0.5);
        assert_eq!(run(&p), run(&p));
    }
}
