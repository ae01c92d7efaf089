//! FastCast's evaluation (§4) on the simulator, as functions Python calls
//! (`phasecast.experiments` wraps them, adds grids and DataFrames).
//!
//! The throughput, latency and INCR harnesses are those of
//! `core/examples/fastcast.rs` (same node sizing, link model, seeds and
//! workload), so with the default parameters they reproduce the figures of
//! `docs/BENCHMARKS.md`. They count deliveries with a hook instead of
//! recording every event, so long runs do not keep every payload.
//!
//! Decisions:
//! * Node sizing: 8 MiB of payload storage per node (the window must cover
//!   the bandwidth-delay product of a loaded gigabit cluster) and datagrams
//!   up to 9000 bytes; 9 sinks up to 8 nodes (the example's node), 64 sinks
//!   up to 63 nodes (about 13 MiB per node).
//! * `availableBW` (FastCast's B) is the line rate less each datagram's
//!   28-byte IP/UDP header, as the example calibrates it.
//! * Fig. 5 (bandwidth allocation over time) is scaled down: the paper's
//!   10-second phases become `phase_ms` (100 ms by default) of virtual time.

use std::cell::RefCell;
use std::rc::Rc;

use phasecast_core::bandwidth::{bw_allocation, BandwidthAllocation, BwError};
use phasecast_core::rng::Rng;
use phasecast_core::sim::{
    AppResult, Delivered, Latency, LinkConfig, NodeEvent, Sim, SimConfig, SimCtl,
};
use phasecast_core::{Config, Duration, Error, Instant, Node, NodeId};

/// Bytes of IP + UDP header per datagram.
const HEADER: u64 = 28;

/// Link and workload shared by the harnesses.
#[derive(Clone, Copy, Debug)]
pub struct Net {
    pub nodes: u16,
    pub link_bps: u64,
    pub one_way: Duration,
    pub mtu: usize,
    pub seed: u64,
}

impl Net {
    /// FastCast's availableBW in bytes/s for datagrams of `mtu` bytes.
    pub fn capacity(&self) -> u64 {
        self.link_bps / 8 * self.mtu as u64 / (self.mtu as u64 + HEADER)
    }
}

/// Builds the simulation of `net` with nodes of the given sizing.
macro_rules! bench_sim {
    ($net:expr, $capacity:expr, $N:ty) => {{
        let net: Net = $net;
        let capacity: Option<u64> = $capacity;
        let mut cfg = SimConfig::new(net.nodes, net.seed);
        cfg.link = LinkConfig {
            latency: Latency::Constant(net.one_way),
            ..LinkConfig::default()
        };
        cfg.uplink_bps = Some(net.link_bps);
        cfg.downlink_bps = Some(net.link_bps);
        cfg.mtu = net.mtu;
        cfg.record_events = false;
        let members: Vec<NodeId> = (0..net.nodes).map(NodeId).collect();
        let sim: Sim<Box<$N>> = Sim::new(cfg, move |id, seed| {
            let mut c = Config::new(id, &members);
            c.seed = seed;
            c.mtu = net.mtu;
            c.tob_window = 128;
            c.tob_rto = Duration::from_millis(5);
            c.link_capacity = capacity;
            c.max_message = 65536;
            Box::new(<$N>::new(&c, Instant::ZERO).expect("valid config"))
        });
        sim
    }};
}

/// Runs `$body` with `$sim` bound to a simulation of the right sizing and
/// `$N` to its node type.
macro_rules! with_sim {
    ($net:expr, $capacity:expr, |$sim:ident, $N:ident| $body:block) => {{
        let net: Net = $net;
        if net.nodes <= 8 {
            type $N = Node<9, 256, 1024, 65_000, 262_144, 9000>;
            #[allow(unused_mut)]
            let mut $sim = bench_sim!(net, $capacity, $N);
            $body
        } else {
            type $N = Node<64, 256, 1024, 65_000, 262_144, 9000>;
            #[allow(unused_mut)]
            let mut $sim = bench_sim!(net, $capacity, $N);
            $body
        }
    }};
}

/// A payload of `len` bytes (at least 8) stamped with the time it was made.
fn stamp(at: Instant, len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len.max(8)];
    p[..8].copy_from_slice(&at.as_micros().to_be_bytes());
    p
}

fn stamped(p: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(p.get(..8)?.try_into().ok()?))
}

fn mbps(bytes: u64, secs: f64) -> f64 {
    bytes as f64 * 8.0 / secs / 1e6
}

/// Network counters of a run.
#[derive(Clone, Debug, Default)]
pub struct Wire {
    pub datagrams: u64,
    pub bytes: u64,
    pub header_bytes: u64,
    pub steps: u64,
}

fn wire<E: phasecast_core::sim::Endpoint>(s: &Sim<E>) -> Wire {
    let t = s.stats().total;
    Wire {
        datagrams: t.sent(),
        bytes: t.sent_payload_bytes,
        header_bytes: t.sent_header_bytes,
        steps: s.steps(),
    }
}

// ---- throughput (Fig. 6) ---------------------------------------------------

#[derive(Clone, Copy, Debug)]
pub struct ThroughputParams {
    pub net: Net,
    pub msg_bytes: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub allocation: bool,
}

#[derive(Clone, Debug)]
pub struct ThroughputResult {
    pub per_node_mbps: Vec<f64>,
    pub mean_mbps: f64,
    pub optimal_mbps: f64,
    pub records_per_datagram: f64,
    pub retransmissions: u64,
    pub wire: Wire,
}

/// Every process broadcasts `msg_bytes` messages flat out; the delivered
/// throughput per process between `warmup` and `duration`, against the
/// optimum B·N/(N−1).
pub fn throughput(p: ThroughputParams) -> ThroughputResult {
    let net = p.net;
    let capacity = net.capacity();
    let n = usize::from(net.nodes);
    with_sim!(net, p.allocation.then_some(capacity), |s, N| {
        if p.allocation {
            for node in 0..net.nodes {
                s.app_at(
                    NodeId(node),
                    Instant::ZERO,
                    Box::new(
                        move |nd: &mut Box<N>, now| match nd.increase_bw(now, capacity) {
                            Ok(_) => AppResult::Done,
                            Err(_) => AppResult::Retry,
                        },
                    ),
                );
            }
        }
        let link_bytes = net.link_bps / 8;
        let per_node = (link_bytes as u128 * u128::from(p.duration.as_micros())
            / 1_000_000
            / p.msg_bytes as u128) as usize
            + 50;
        let len = p.msg_bytes;
        for node in 0..net.nodes {
            for _ in 0..per_node {
                s.app_at(
                    NodeId(node),
                    Instant::from_millis(1),
                    Box::new(move |nd: &mut Box<N>, now| {
                        match nd.broadcast(now, &stamp(now, len)) {
                            Ok(_) => AppResult::Done,
                            Err(Error::Full) => AppResult::Retry,
                            Err(_) => AppResult::Done,
                        }
                    }),
                );
            }
        }
        let (from, to) = (Instant::ZERO + p.warmup, Instant::ZERO + p.duration);
        let mut bytes = vec![0u64; n];
        s.run_until_with(to, &mut |_: &mut SimCtl<'_, _>, d: Delivered<NodeEvent>| {
            if let NodeEvent::Delivered { payload, .. } = &d.event {
                if d.at >= from && d.at < to {
                    bytes[usize::from(d.node.0)] += payload.len() as u64;
                }
            }
        });
        let secs = (to - from).as_micros() as f64 / 1e6;
        let per_node_mbps: Vec<f64> = bytes.iter().map(|&b| mbps(b, secs)).collect();
        let mean = per_node_mbps.iter().sum::<f64>() / n as f64;
        let nf = n as f64;
        let (mut records, mut frames, mut retx) = (0u64, 0u64, 0u64);
        for i in 0..net.nodes {
            let c = s.node(NodeId(i)).counters();
            records += c.records_sent;
            frames += c.frames_sent;
            retx += c.retransmissions;
        }
        ThroughputResult {
            per_node_mbps,
            mean_mbps: mean,
            optimal_mbps: net.link_bps as f64 / 1e6 * nf / (nf - 1.0),
            records_per_datagram: if frames == 0 {
                0.0
            } else {
                records as f64 / frames as f64
            },
            retransmissions: retx,
            wire: wire(&s),
        }
    })
}

// ---- latency (Fig. 8) ------------------------------------------------------

#[derive(Clone, Copy, Debug)]
pub struct LatencyParams {
    pub net: Net,
    pub msg_bytes: usize,
    pub rate_bps: u64,
    pub duration: Duration,
}

#[derive(Clone, Debug)]
pub struct LatencyResult {
    /// Broadcast to the sender's own delivery (the paper's measure), µs.
    pub sender_us: Vec<u64>,
    /// Broadcast to every delivery at every process, µs.
    pub all_us: Vec<u64>,
    pub messages: u64,
    pub wire: Wire,
}

/// One sender (node 0) broadcasts `msg_bytes` messages at `rate_bps`.
pub fn latency(p: LatencyParams) -> LatencyResult {
    let net = p.net;
    with_sim!(net, None, |s, N| {
        let interval = (p.msg_bytes as u128 * 8 * 1_000_000 / u128::from(p.rate_bps)).max(1) as u64;
        let start = 10_000u64;
        let count = p.duration.as_micros().saturating_sub(start) / interval;
        let len = p.msg_bytes;
        for k in 0..count.max(1) {
            s.app_at(
                NodeId(0),
                Instant::from_micros(start + k * interval),
                Box::new(
                    move |nd: &mut Box<N>, now| match nd.broadcast(now, &stamp(now, len)) {
                        Ok(_) => AppResult::Done,
                        Err(_) => AppResult::Retry,
                    },
                ),
            );
        }
        let (mut sender_us, mut all_us) = (Vec::new(), Vec::new());
        let end = Instant::ZERO + p.duration + Duration::from_millis(200);
        s.run_until_with(
            end,
            &mut |_: &mut SimCtl<'_, _>, d: Delivered<NodeEvent>| {
                if let NodeEvent::Delivered { payload, .. } = &d.event {
                    if let Some(sent) = stamped(payload) {
                        let l = d.at.as_micros().saturating_sub(sent);
                        all_us.push(l);
                        if d.node.0 == 0 {
                            sender_us.push(l);
                        }
                    }
                }
            },
        );
        LatencyResult {
            sender_us,
            all_us,
            messages: count.max(1),
            wire: wire(&s),
        }
    })
}

// ---- INCR to effect (§4.2) --------------------------------------------------

/// Time from `increase_bw` at `requester` (at 10 ms) to its new rate in
/// force, or `None` if it never took effect within 1 s.
pub fn incr(net: Net, requester: u16) -> Option<Duration> {
    let capacity = net.capacity();
    with_sim!(net, Some(capacity), |s, N| {
        let at = Instant::from_millis(10);
        s.app_at(
            NodeId(requester),
            at,
            Box::new(
                move |nd: &mut Box<N>, now| match nd.increase_bw(now, capacity / 2) {
                    Ok(_) => AppResult::Done,
                    Err(_) => AppResult::Retry,
                },
            ),
        );
        let mut done = None;
        s.run_until_with(Instant::from_millis(1000), &mut |_: &mut SimCtl<'_, _>,
                                                           d: Delivered<
            NodeEvent,
        >| {
            if done.is_none()
                && d.node.0 == requester
                && matches!(d.event, NodeEvent::BandwidthChanged { current } if current > 0)
            {
                done = Some(d.at - at);
            }
        });
        done
    })
}

// ---- bandwidth allocation over time (Fig. 5) --------------------------------

/// One requirement change: at `at`, `node` asks for `delta` bytes/s more
/// (or less, when negative).
#[derive(Clone, Copy, Debug)]
pub struct Change {
    pub at: Instant,
    pub node: u16,
    pub delta: i64,
}

#[derive(Clone, Debug)]
pub struct TimelineParams {
    pub net: Net,
    pub changes: Vec<Change>,
    pub end: Instant,
    pub bin: Duration,
    pub min_bytes: usize,
    pub max_bytes: usize,
}

/// Columns of the timeline (one row per bin).
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    pub time_ms: Vec<f64>,
    /// Per node: requirement in force (as requested), Mb/s.
    pub req: Vec<Vec<f64>>,
    /// Per node: allocated rate (currentBW) at the end of the bin, Mb/s.
    pub alloc: Vec<Vec<f64>>,
    /// Per node: its messages delivered per process in the bin, Mb/s.
    pub rate: Vec<Vec<f64>>,
    /// Mean delivered throughput per process, Mb/s.
    pub achieved: Vec<f64>,
    /// Σ of the max-min shares of the requirements in force, Mb/s.
    pub optimal: Vec<f64>,
    /// Per completed increase: (node, asked at ms, in force after ms).
    pub increases: Vec<(u16, f64, f64)>,
    pub wire: Wire,
}

/// Every node sends flat out (messages of `min_bytes..=max_bytes`), its rate
/// capped by the allocation; requirements change as `changes` say.
pub fn timeline(p: TimelineParams) -> Timeline {
    let net = p.net;
    let n = usize::from(net.nodes);
    let capacity = net.capacity();
    let bins = (p.end.as_micros().div_ceil(p.bin.as_micros().max(1))) as usize;
    with_sim!(net, Some(capacity), |s, N| {
        // Per node: its changes in time order, consumed by its source.
        let mut per_node: Vec<Vec<Change>> = vec![Vec::new(); n];
        for c in &p.changes {
            per_node[usize::from(c.node)].push(*c);
        }
        let asked: Rc<RefCell<Vec<(u16, Instant)>>> = Rc::new(RefCell::new(Vec::new()));
        for (i, mut changes) in per_node.into_iter().enumerate() {
            changes.sort_by_key(|c| c.at);
            changes.reverse(); // pop from the end = earliest first
            let mut rng = Rng::new(net.seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let (lo, hi, end) = (p.min_bytes, p.max_bytes, p.end);
            let asked = asked.clone();
            let node = i as u16;
            // A source that never completes: it stays at the head of the
            // node's application queue and runs after each input.
            s.app_at(
                NodeId(node),
                Instant::ZERO,
                Box::new(move |nd: &mut Box<N>, now| {
                    while let Some(c) = changes.last().copied() {
                        if c.at > now {
                            break;
                        }
                        let r = if c.delta >= 0 {
                            nd.increase_bw(now, c.delta.unsigned_abs())
                        } else {
                            nd.decrease_bw(now, c.delta.unsigned_abs())
                        };
                        match r {
                            Ok(_) => {
                                if c.delta > 0 {
                                    asked.borrow_mut().push((node, now));
                                }
                                changes.pop();
                            }
                            Err(Error::Busy | Error::Full) => break,
                            Err(_) => {
                                changes.pop();
                            }
                        }
                    }
                    if now >= end {
                        return AppResult::Done;
                    }
                    loop {
                        let span = (hi - lo + 1) as u32;
                        let len = lo + rng.below(span) as usize;
                        match nd.broadcast(now, &stamp(now, len)) {
                            Ok(_) => {}
                            Err(_) => return AppResult::Retry,
                        }
                    }
                }),
            );
            // Wake the source at each of its change times.
            for c in &p.changes {
                if usize::from(c.node) == i {
                    s.app_at(
                        NodeId(node),
                        c.at,
                        Box::new(|_: &mut Box<N>, _| AppResult::Done),
                    );
                }
            }
        }
        let bin_us = p.bin.as_micros().max(1);
        // delivered[bin][sender] bytes, summed over receivers.
        let mut delivered = vec![vec![0u64; n]; bins];
        let mut alloc_changes: Vec<(Instant, u16, u64)> = Vec::new();
        s.run_until_with(
            p.end,
            &mut |_: &mut SimCtl<'_, _>, d: Delivered<NodeEvent>| match &d.event {
                NodeEvent::Delivered {
                    sender, payload, ..
                } => {
                    let b = (d.at.as_micros() / bin_us) as usize;
                    if let Some(row) = delivered.get_mut(b) {
                        row[usize::from(sender.0)] += payload.len() as u64;
                    }
                }
                NodeEvent::BandwidthChanged { current } => {
                    alloc_changes.push((d.at, d.node.0, *current))
                }
                _ => {}
            },
        );
        // Requirement steps (as requested), from the schedule.
        let mut changes = p.changes.clone();
        changes.sort_by_key(|c| c.at);
        let mut out = Timeline {
            req: vec![Vec::with_capacity(bins); n],
            alloc: vec![Vec::with_capacity(bins); n],
            rate: vec![Vec::with_capacity(bins); n],
            ..Timeline::default()
        };
        let (mut req, mut alloc) = (vec![0u64; n], vec![0u64; n]);
        let (mut ci, mut ai) = (0, 0);
        let secs = bin_us as f64 / 1e6;
        let to_mbps = |b: u64| b as f64 * 8.0 / 1e6;
        for (b, row) in delivered.iter().enumerate() {
            let start = Instant::from_micros(b as u64 * bin_us);
            let stop = Instant::from_micros((b as u64 + 1) * bin_us);
            while ci < changes.len() && changes[ci].at < stop {
                let c = changes[ci];
                let r = &mut req[usize::from(c.node)];
                *r = if c.delta >= 0 {
                    r.saturating_add(c.delta.unsigned_abs())
                } else {
                    r.saturating_sub(c.delta.unsigned_abs())
                };
                ci += 1;
            }
            while ai < alloc_changes.len() && alloc_changes[ai].0 < stop {
                let (_, node, v) = alloc_changes[ai];
                alloc[usize::from(node)] = v;
                ai += 1;
            }
            out.time_ms.push(start.as_micros() as f64 / 1000.0);
            let mut total = 0.0;
            let mut optimal = 0.0;
            for i in 0..n {
                out.req[i].push(to_mbps(req[i]));
                out.alloc[i].push(to_mbps(alloc[i]));
                let r = mbps(row[i], secs) / n as f64;
                out.rate[i].push(r);
                total += r;
                optimal += to_mbps(bw_allocation(&req, i, capacity));
            }
            out.achieved.push(total);
            out.optimal.push(optimal);
        }
        // Increase delays: from each ask to the requester's next rate change.
        for &(node, at) in asked.borrow().iter() {
            if let Some((t, _, _)) = alloc_changes
                .iter()
                .find(|(t, nn, _)| *nn == node && *t >= at)
            {
                out.increases.push((
                    node,
                    at.as_micros() as f64 / 1000.0,
                    (*t - at).as_micros() as f64 / 1000.0,
                ));
            }
        }
        out.wire = wire(&s);
        out
    })
}

// ---- Tables 1–3 ---------------------------------------------------------------

/// One row of the replay: our state of one process after one step, beside
/// the paper's.
#[derive(Clone, Debug)]
pub struct TraceRow {
    pub table: u8,
    pub step: &'static str,
    pub event: &'static str,
    pub process: u8,
    pub ours: ([u64; 3], u64, u64, usize, bool),
    pub paper: ([u64; 3], u64, u64, usize, bool),
}

type P = BandwidthAllocation<3>;
type Row = ([u64; 3], u64, u64, usize, bool);

/// What happens at one step of the tables.
enum Act {
    Incr(usize, u64),
    Decr(usize, u64),
    DeliverIncr(usize, usize, u64),
    DeliverDecr(usize, usize, u64),
    Ack(usize, usize),
}

const V: bool = true;
const X: bool = false;

/// The paper's Tables 1–3: (table, step, event, actions, rows of p0..p2 as
/// bwRequirements, currentBW, ongoing_increase, acks, delivered_req).
#[allow(clippy::type_complexity)]
fn paper_steps() -> Vec<(u8, &'static str, &'static str, Vec<Act>, [Row; 3])> {
    use Act::*;
    vec![
        (
            1,
            "S1",
            "initial state",
            vec![],
            [
                ([0, 0, 0], 0, 0, 0, X),
                ([0, 0, 0], 0, 0, 0, X),
                ([0, 0, 0], 0, 0, 0, X),
            ],
        ),
        (
            1,
            "S2",
            "p0 calls increase_BW(800), p1 calls increase_BW(300)",
            vec![Incr(0, 800), Incr(1, 300)],
            [
                ([0, 0, 0], 0, 800, 0, X),
                ([0, 0, 0], 0, 300, 0, X),
                ([0, 0, 0], 0, 0, 0, X),
            ],
        ),
        (
            1,
            "S3",
            "p2 utoDelivers <INCR,800>p0 and <INCR,300>p1",
            vec![DeliverIncr(2, 0, 800), DeliverIncr(2, 1, 300)],
            [
                ([0, 0, 0], 0, 800, 0, X),
                ([0, 0, 0], 0, 300, 0, X),
                ([800, 300, 0], 0, 0, 0, X),
            ],
        ),
        (
            1,
            "S4",
            "p0 and p1 receive <ACK>p2",
            vec![Ack(0, 2), Ack(1, 2)],
            [
                ([0, 0, 0], 0, 800, 1, X),
                ([0, 0, 0], 0, 300, 1, X),
                ([800, 300, 0], 0, 0, 0, X),
            ],
        ),
        (
            1,
            "S5",
            "p0 utoDelivers <INCR,800>p0 and <INCR,300>p1",
            vec![DeliverIncr(0, 0, 800), DeliverIncr(0, 1, 300)],
            [
                ([0, 300, 0], 0, 800, 1, V),
                ([0, 0, 0], 0, 300, 1, X),
                ([800, 300, 0], 0, 0, 0, X),
            ],
        ),
        (
            1,
            "S6",
            "p1 receives <ACK>p0",
            vec![Ack(1, 0)],
            [
                ([0, 300, 0], 0, 800, 1, V),
                ([0, 0, 0], 0, 300, 2, X),
                ([800, 300, 0], 0, 0, 0, X),
            ],
        ),
        (
            1,
            "S7",
            "p1 utoDelivers <INCR,800>p0 and <INCR,300>p1",
            vec![DeliverIncr(1, 0, 800), DeliverIncr(1, 1, 300)],
            [
                ([0, 300, 0], 0, 800, 1, V),
                ([800, 300, 0], 300, 0, 0, X),
                ([800, 300, 0], 0, 0, 0, X),
            ],
        ),
        (
            1,
            "S8",
            "p0 receives <ACK>p1",
            vec![Ack(0, 1)],
            [
                ([800, 300, 0], 700, 0, 0, X),
                ([800, 300, 0], 300, 0, 0, X),
                ([800, 300, 0], 0, 0, 0, X),
            ],
        ),
        (
            2,
            "S9",
            "initial state (S8)",
            vec![],
            [
                ([800, 300, 0], 700, 0, 0, X),
                ([800, 300, 0], 300, 0, 0, X),
                ([800, 300, 0], 0, 0, 0, X),
            ],
        ),
        (
            2,
            "S10",
            "p2 calls increase_BW(600)",
            vec![Incr(2, 600)],
            [
                ([800, 300, 0], 700, 0, 0, X),
                ([800, 300, 0], 300, 0, 0, X),
                ([800, 300, 0], 0, 600, 0, X),
            ],
        ),
        (
            2,
            "S11",
            "p0, p1, p2 utoDeliver <INCR,600>p2",
            vec![
                DeliverIncr(0, 2, 600),
                DeliverIncr(1, 2, 600),
                DeliverIncr(2, 2, 600),
            ],
            [
                ([800, 300, 600], 500, 0, 0, X),
                ([800, 300, 600], 300, 0, 0, X),
                ([800, 300, 0], 0, 600, 0, V),
            ],
        ),
        (
            2,
            "S12",
            "p2 receives <ACK>p0",
            vec![Ack(2, 0)],
            [
                ([800, 300, 600], 500, 0, 0, X),
                ([800, 300, 600], 300, 0, 0, X),
                ([800, 300, 0], 0, 600, 1, V),
            ],
        ),
        (
            2,
            "S13",
            "p2 receives <ACK>p1",
            vec![Ack(2, 1)],
            [
                ([800, 300, 600], 500, 0, 0, X),
                ([800, 300, 600], 300, 0, 0, X),
                ([800, 300, 600], 500, 0, 0, X),
            ],
        ),
        (
            3,
            "S14",
            "initial state (S13)",
            vec![],
            [
                ([800, 300, 600], 500, 0, 0, X),
                ([800, 300, 600], 300, 0, 0, X),
                ([800, 300, 600], 500, 0, 0, X),
            ],
        ),
        (
            3,
            "S15",
            "p2 calls decrease_BW(500)",
            vec![Decr(2, 500)],
            [
                ([800, 300, 600], 500, 0, 0, X),
                ([800, 300, 600], 300, 0, 0, X),
                ([800, 300, 100], 100, 0, 0, X),
            ],
        ),
        (
            3,
            "S16",
            "p0, p1, p2 utoDeliver <DECR,500>p2",
            vec![
                DeliverDecr(0, 2, 500),
                DeliverDecr(1, 2, 500),
                DeliverDecr(2, 2, 500),
            ],
            [
                ([800, 300, 100], 700, 0, 0, X),
                ([800, 300, 100], 300, 0, 0, X),
                ([800, 300, 100], 100, 0, 0, X),
            ],
        ),
    ]
}

/// Replays Tables 1–3 on three `BandwidthAllocation` state machines (the
/// core's Fig. 4, 1000 Mb/s links) and returns every process's state after
/// every step beside the paper's, plus the errors the state machine
/// returned (none expected).
pub fn bw_trace() -> (Vec<TraceRow>, Vec<String>) {
    let mut ps: [P; 3] = [0, 1, 2].map(|i| P::new(i, 3, 1000).expect("3 processes"));
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for (table, step, event, acts, paper) in paper_steps() {
        for a in acts {
            let r: Result<(), BwError> = match a {
                Act::Incr(p, x) => ps[p].increase_bw(x).map(|_| ()),
                Act::Decr(p, x) => ps[p].decrease_bw(x).map(|_| ()),
                Act::DeliverIncr(p, from, x) => ps[p].on_deliver_incr(from, x).map(|_| ()),
                Act::DeliverDecr(p, from, x) => ps[p].on_deliver_decr(from, x).map(|_| ()),
                Act::Ack(p, from) => ps[p].on_ack(from).map(|_| ()),
            };
            if let Err(e) = r {
                errors.push(format!("{step}: {e:?}"));
            }
        }
        for (i, p) in ps.iter().enumerate() {
            rows.push(TraceRow {
                table,
                step,
                event,
                process: i as u8,
                ours: (
                    *p.bw_requirements(),
                    p.current_bw(),
                    p.ongoing_increase(),
                    p.acks(),
                    p.delivered_req(),
                ),
                paper: paper[i],
            });
        }
    }
    (rows, errors)
}
