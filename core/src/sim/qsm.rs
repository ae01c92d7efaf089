//! QSM §5's experiment on real nodes in the simulator (Figs. 11, 17, 24–29,
//! 36–39): one sender multicasts 1 KB messages to groups 1 … `groups`, all
//! with identical membership (one region of `receivers` nodes), undisturbed
//! or with one perturbed receiver (§5.3), and reports throughput, token
//! round-trip times, time to acknowledge, messages pending at the sender,
//! and memory. `core/examples/qsm.rs` prints its tables; the Python
//! bindings call [`run`] for `phasecast.experiments.qsm`.
//!
//! Setup (the example's, which `docs/BENCHMARKS.md` documents): every node
//! a [`HostNode`] (8192 groups, rings of 256, 1 MiB payload pool), node 0
//! the sender (not a receiver), 100 Mbit/s up- and downlinks, one-way
//! latency uniform in 100–200 µs, 1500-byte datagrams. The sender
//! round-robins over the groups, as fast as flow control lets it
//! (`rate` 0: `Full` makes it wait for the window to open) or paced at
//! `rate` messages a second.
//!
//! Decisions:
//! * **The perturbed receiver** is node `receivers / 2 + 2` (57 of 110, as
//!   the example always used), or the last receiver in a smaller region.
//!   [`Scenario::Sleep`]: its traffic is held ("clogged") for 0.5 s every
//!   5 s from t = 1 s (a sleeping process whose socket buffer loses
//!   nothing). [`Scenario::Loss`]: it drops every packet sent to it for
//!   10 ms every second, at `loss_phase` into each second (337 ms by
//!   default: off the token phases, see `docs/BENCHMARKS.md`).
//! * **A message budget** (`messages`) ends the sending phase early once
//!   that many were multicast and all are acknowledged (checked every
//!   50 ms); throughput is then per second of that shorter phase.
//! * **FIFO and integrity** are checked only when asked (`check_order`):
//!   the check copies every delivery's payload, which the example's long
//!   runs do without. Each payload carries the sender's message counter;
//!   a delivery whose counter is not above the last one its receiver
//!   delivered in that group is a FIFO violation, a payload that differs
//!   from what was sent is corrupted.
//! * **Sizes** are the caller's business: a `HostNode` is about 2.6 MiB
//!   and is built on the stack before it is boxed, so run this on a thread
//!   with a large stack (the example uses 256 MiB; 64 MiB is plenty for
//!   optimised builds).

use std::boxed::Box;
use std::cell::Cell;
use std::rc::Rc;
use std::vec;
use std::vec::Vec;

use super::{AppResult, Delivered, Latency, LinkConfig, NodeEvent, Sim, SimConfig, SimCtl};
use crate::addr::{GroupId, NodeId};
use crate::node::{Config, Error, HostNode};
use crate::qsm::{GroupView, QsmConfig, QsmMemory, RegionView};
use crate::time::{Duration, Instant};

/// The region's address (its multicast group in the simulator).
pub const REGION: GroupId = GroupId(100_000);
/// The sender.
pub const SENDER: NodeId = NodeId(0);
/// How often pending messages at the sender are sampled.
pub const SAMPLE: Duration = Duration::from_millis(50);

/// The §5.3 perturbation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Scenario {
    /// Nobody is perturbed.
    Undisturbed,
    /// A receiver sleeps 0.5 s every 5 s (its traffic is held meanwhile).
    Sleep,
    /// A receiver drops all incoming packets for 10 ms every second.
    Loss,
}

impl Scenario {
    /// By name: `none`, `sleep`, `loss` (the example's) or `bursty`
    /// (the Python name of `loss`).
    pub fn parse(name: &str) -> Option<Scenario> {
        match name {
            "none" | "undisturbed" => Some(Scenario::Undisturbed),
            "sleep" => Some(Scenario::Sleep),
            "loss" | "bursty" => Some(Scenario::Loss),
            _ => None,
        }
    }
}

/// Parameters of one run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QsmParams {
    /// Receivers (110 in the paper), 1 ..= 127.
    pub receivers: u16,
    /// Groups the sender round-robins over, 1 ..= 8192.
    pub groups: u32,
    /// Perturbation.
    pub scenario: Scenario,
    /// Token period of both ring levels (QSM: 1 s).
    pub token_period: Duration,
    /// Length of the sending phase.
    pub send_for: Duration,
    /// Stop sending after this many messages (and end the sending phase
    /// once they are all acknowledged).
    pub messages: Option<u64>,
    /// Messages per second, 0 for as fast as flow control allows.
    pub rate: u64,
    /// Bytes per message (at least 8: each carries its counter).
    pub msg_bytes: usize,
    /// Up- and downlink rate of every node, bits/s.
    pub link_bps: u64,
    /// Where in each second the `Loss` scenario's 10 ms drop starts.
    pub loss_phase: Duration,
    /// Seed of the simulator.
    pub seed: u64,
    /// Check per-group FIFO order and payload integrity at every receiver.
    pub check_order: bool,
}

impl Default for QsmParams {
    /// The example's defaults: 110 receivers, 1 group, undisturbed, tokens
    /// every second, 5 s of saturating sending, 1000-byte messages.
    fn default() -> Self {
        QsmParams {
            receivers: 110,
            groups: 1,
            scenario: Scenario::Undisturbed,
            token_period: Duration::from_millis(1000),
            send_for: Duration::from_secs(5),
            messages: None,
            rate: 0,
            msg_bytes: 1000,
            link_bps: 100_000_000,
            loss_phase: Duration::from_millis(337),
            seed: 42,
            check_order: false,
        }
    }
}

/// What a run measured.
#[derive(Clone, Debug, PartialEq)]
pub struct QsmOutcome {
    /// Messages the sender multicast (sending phase and drain).
    pub sent: u64,
    /// Multicasts accepted during the sending phase.
    pub sent_in_phase: u64,
    /// The fewest messages any receiver delivered.
    pub min_delivered: u64,
    /// Every receiver delivered every message.
    pub all_delivered: bool,
    /// Deliveries out of per-group FIFO order or duplicated (0 unless
    /// `check_order`).
    pub fifo_violations: u64,
    /// Deliveries whose payload differs from what was sent.
    pub corrupted: u64,
    /// Length of the sending phase, s.
    pub send_secs: f64,
    /// Multicasts accepted per second of the sending phase.
    pub throughput: f64,
    /// Region token (ring of partition leaders) round trip, avg / max, ms.
    pub rtt_avg_ms: f64,
    /// See `rtt_avg_ms`.
    pub rtt_max_ms: f64,
    /// Partition token round trip (at the region leader's partition), avg /
    /// max, ms.
    pub prtt_avg_ms: f64,
    /// See `prtt_avg_ms`.
    pub prtt_max_ms: f64,
    /// Multicast to acknowledgement by the region, at the sender, avg /
    /// max, ms.
    pub ack_avg_ms: f64,
    /// See `ack_avg_ms`.
    pub ack_max_ms: f64,
    /// Unacknowledged messages at the sender, sampled every 50 ms.
    pub pending_avg: f64,
    /// See `pending_avg`.
    pub pending_max: u64,
    /// Messages forwarded by holders to receivers that missed them.
    pub forwards: u64,
    /// Messages the sender multicast again.
    pub remulticasts: u64,
    /// Duplicate copies received, summed over receivers.
    pub duplicates: u64,
    /// The perturbed receiver (`None` when undisturbed).
    pub victim: Option<NodeId>,
    /// QSM's state inside one node (fixed at construction).
    pub memory: QsmMemory,
    /// Bytes of one node, everything included.
    pub node_bytes: usize,
    /// Most payload bytes QSM held at the sender (unacknowledged messages)
    /// and at any one receiver (undelivered or cached), sampled every 50 ms.
    pub storage_max: (usize, usize),
    /// Virtual time at the end of the run.
    pub end: Instant,
    /// One line per receiver that missed something, and the sender's
    /// counters (for debugging).
    pub debug: Vec<std::string::String>,
}

/// The perturbed receiver of a region of `receivers`.
pub fn victim(receivers: u16) -> NodeId {
    NodeId((receivers / 2 + 2).min(receivers))
}

/// A message's payload: its counter, then a pattern of it.
fn payload(i: u64, len: usize, out: &mut [u8]) {
    out[..8].copy_from_slice(&i.to_be_bytes());
    for (k, b) in out.iter_mut().enumerate().take(len).skip(8) {
        *b = (i as usize).wrapping_mul(31).wrapping_add(k) as u8;
    }
}

fn check_payload(p: &[u8], len: usize) -> Option<u64> {
    let i = u64::from_be_bytes(p.get(..8)?.try_into().ok()?);
    let mut want = vec![0u8; len];
    payload(i, len, &mut want);
    (p == want.as_slice()).then_some(i)
}

/// Runs one experiment (see the module documentation).
pub fn run(p: &QsmParams) -> QsmOutcome {
    let receivers_n = p.receivers.max(1);
    let n = receivers_n + 1;
    let groups = p.groups.max(1);
    let len = p.msg_bytes.max(8);
    let mut cfg = SimConfig::new(n, p.seed);
    cfg.link = LinkConfig::with_latency(Latency::Uniform(
        Duration::from_micros(100),
        Duration::from_micros(200),
    ));
    cfg.uplink_bps = Some(p.link_bps);
    cfg.downlink_bps = Some(p.link_bps);
    cfg.mtu = 1500;
    cfg.record_events = false;
    let receivers: Vec<NodeId> = (1..=receivers_n).map(NodeId).collect();
    let group_views: Vec<GroupView> = (1..=groups)
        .map(|g| GroupView {
            group: GroupId(g),
            regions: 1,
        })
        .collect();
    let qsm = QsmConfig {
        token_period: p.token_period,
        ..QsmConfig::default()
    };
    let rv = receivers.clone();
    let mut sim = Sim::new(cfg, move |id, seed| {
        let members = [id];
        let config = Config {
            mtu: 1500,
            seed,
            qsm,
            ..Config::new(id, &members)
        };
        let mut node = Box::new(HostNode::new(&config, Instant::ZERO).expect("config"));
        node.install_groups(
            Instant::ZERO,
            1,
            &[RegionView {
                address: REGION,
                members: &rv,
            }],
            &group_views,
        )
        .expect("view");
        node
    });
    sim.set_group(REGION, &receivers);

    let end_send = Instant::ZERO + p.send_for;
    let victim_id = victim(receivers_n);
    match p.scenario {
        Scenario::Undisturbed => {}
        Scenario::Sleep => {
            let mut t = Duration::from_secs(1);
            while t < p.send_for {
                let at = Instant::ZERO + t;
                sim.clog(victim_id, at, at + Duration::from_millis(500));
                t = t + Duration::from_secs(5);
            }
        }
        Scenario::Loss => {
            let mut t = p.loss_phase;
            while t < p.send_for {
                let at = Instant::ZERO + t;
                for from in 0..n {
                    if NodeId(from) != victim_id {
                        sim.cut(NodeId(from), victim_id, at, at + Duration::from_millis(10));
                    }
                }
                t = t + Duration::from_secs(1);
            }
        }
    }

    // The sender multicasts as fast as flow control lets it (`rate` 0), or
    // paced at `rate` messages a second, round robin over the groups, until
    // `end_send` or the message budget; `Full` (flow control) makes it wait.
    let start = Instant::ZERO + Duration::from_millis(1);
    let limit = p.messages.unwrap_or(u64::MAX);
    let issued = Rc::new(Cell::new(0u64));
    if let Some(gap_us) = 1_000_000u64.checked_div(p.rate) {
        // One operation per message at its time; `Full` holds the queue.
        let secs_us = p.send_for.as_micros();
        let count = (secs_us / gap_us.max(1)).min(limit);
        for i in 0..count {
            let issued = issued.clone();
            sim.app_at(
                SENDER,
                start + Duration::from_micros(i * gap_us),
                Box::new(move |node: &mut Box<HostNode>, now| {
                    if now >= end_send {
                        return AppResult::Done;
                    }
                    let mut buf = vec![0u8; len];
                    payload(i, len, &mut buf);
                    let g = GroupId(1 + (i % u64::from(groups)) as u32);
                    match node.multicast(now, g, &buf) {
                        Ok(_) => {
                            issued.set(issued.get() + 1);
                            AppResult::Done
                        }
                        Err(Error::Full) => AppResult::Retry,
                        Err(e) => panic!("multicast: {e:?}"),
                    }
                }),
            );
        }
    } else {
        let mut i: u64 = 0;
        let issued = issued.clone();
        sim.app_at(
            SENDER,
            start,
            Box::new(move |node: &mut Box<HostNode>, now| {
                if now >= end_send {
                    return AppResult::Done;
                }
                let mut buf = vec![0u8; len];
                loop {
                    if i >= limit {
                        return AppResult::Done;
                    }
                    payload(i, len, &mut buf);
                    let g = GroupId(1 + (i % u64::from(groups)) as u32);
                    match node.multicast(now, g, &buf) {
                        Ok(_) => {
                            i += 1;
                            issued.set(i);
                        }
                        Err(Error::Full) => return AppResult::Retry,
                        Err(e) => panic!("multicast: {e:?}"),
                    }
                }
            }),
        );
    }

    // Per receiver and group: the last counter delivered (u64::MAX: none).
    let gs = groups as usize;
    let mut last = if p.check_order {
        vec![u64::MAX; usize::from(n) * gs]
    } else {
        Vec::new()
    };
    let (mut fifo_violations, mut corrupted) = (0u64, 0u64);
    let mut advance = |sim: &mut Sim<Box<HostNode>>, t: Instant| {
        if !p.check_order {
            sim.run_until(t);
            return;
        }
        sim.run_until_with(
            t,
            &mut |_: &mut SimCtl<'_, Box<HostNode>>, d: Delivered<NodeEvent>| {
                if let NodeEvent::GroupDelivered { group, payload, .. } = &d.event {
                    let Some(i) = check_payload(payload, len) else {
                        corrupted += 1;
                        return;
                    };
                    let g = (group.0 as usize).wrapping_sub(1);
                    if let Some(slot) = last.get_mut(usize::from(d.node.0) * gs + g) {
                        if *slot != u64::MAX && i <= *slot {
                            fifo_violations += 1;
                        } else {
                            *slot = i;
                        }
                    }
                }
            },
        );
    };

    let mut t = Instant::ZERO;
    let (mut samples, mut pending_sum, mut pending_max) = (0u64, 0u64, 0u64);
    let mut storage_max = (0usize, 0usize);
    let mut early = false;
    while t < end_send {
        t += SAMPLE;
        advance(&mut sim, t);
        let pend = sim.node(SENDER).qsm_pending();
        samples += 1;
        pending_sum += pend;
        pending_max = pending_max.max(pend);
        storage_max.0 = storage_max.0.max(sim.node(SENDER).qsm_storage().1);
        for r in &receivers {
            storage_max.1 = storage_max.1.max(sim.node(*r).qsm_storage().0);
        }
        if p.messages.is_some_and(|m| issued.get() >= m) && pend == 0 {
            early = t < end_send;
            break;
        }
    }
    let sent_in_phase = sim.node(SENDER).qsm_stats().multicasts;
    let (phase_end, send_secs) = if early {
        (t, t.as_micros() as f64 / 1e6)
    } else {
        (end_send, p.send_for.as_micros() as f64 / 1e6)
    };
    // Drain: let recovery and acknowledgement finish.
    let token_ms = p.token_period.as_micros() / 1000;
    advance(
        &mut sim,
        phase_end + Duration::from_millis(4 * token_ms + 2000),
    );
    let s = *sim.node(SENDER).qsm_stats();
    let min_delivered = receivers
        .iter()
        .map(|r| sim.node(*r).qsm_stats().delivered)
        .min()
        .unwrap_or(0);
    let mut debug = Vec::new();
    for r in &receivers {
        let st = sim.node(*r).qsm_stats();
        if st.delivered < s.multicasts || st.no_sink > 0 || st.dropped > 0 {
            debug.push(std::format!("node {}: {st:?}", r.0));
        }
    }
    debug.push(std::format!("sender: {s:?}"));
    let leader = *sim.node(NodeId(1)).qsm_stats();
    let sum = |f: fn(&crate::qsm::QsmStats) -> u64| -> u64 {
        receivers.iter().map(|r| f(sim.node(*r).qsm_stats())).sum()
    };
    QsmOutcome {
        sent: s.multicasts,
        sent_in_phase,
        min_delivered,
        all_delivered: min_delivered == s.multicasts,
        fifo_violations,
        corrupted,
        send_secs,
        throughput: sent_in_phase as f64 / send_secs,
        rtt_avg_ms: leader.rtt_sum_us as f64 / leader.rounds.max(1) as f64 / 1000.0,
        rtt_max_ms: leader.rtt_max_us as f64 / 1000.0,
        prtt_avg_ms: leader.partition_rtt_sum_us as f64
            / leader.partition_rounds.max(1) as f64
            / 1000.0,
        prtt_max_ms: leader.partition_rtt_max_us as f64 / 1000.0,
        ack_avg_ms: s.ack_latency_sum_us as f64 / s.acked.max(1) as f64 / 1000.0,
        ack_max_ms: s.ack_latency_max_us as f64 / 1000.0,
        pending_avg: pending_sum as f64 / samples.max(1) as f64,
        pending_max,
        forwards: sum(|st| st.forwards),
        remulticasts: s.remulticasts,
        duplicates: sum(|st| st.duplicates),
        victim: (p.scenario != Scenario::Undisturbed).then_some(victim_id),
        memory: sim.node(SENDER).qsm_memory(),
        node_bytes: core::mem::size_of::<HostNode>(),
        storage_max,
        end: sim.now(),
        debug,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(scenario: Scenario) -> QsmParams {
        QsmParams {
            receivers: 6,
            groups: 16,
            scenario,
            token_period: Duration::from_millis(50),
            send_for: Duration::from_millis(1500),
            check_order: true,
            ..QsmParams::default()
        }
    }

    #[test]
    fn every_receiver_delivers_in_fifo_order_despite_a_bursty_receiver() {
        // Two partitions (a region of 30: 25 + 5), paced below the window.
        let o = run(&QsmParams {
            receivers: 30,
            token_period: Duration::from_millis(20),
            rate: 1000,
            ..small(Scenario::Loss)
        });
        assert_eq!(o.sent, 1499, "{o:?}");
        assert!(o.all_delivered, "{:?}", o.debug);
        assert_eq!((o.fifo_violations, o.corrupted), (0, 0));
        assert_eq!(o.victim, Some(NodeId(17)));
        // The 10 ms drop at 337 ms cost the victim copies that its peers
        // forwarded.
        assert!(o.forwards > 0, "{o:?}");
        assert_eq!(o.memory.per_group, 12);
    }

    #[test]
    fn a_bursty_receiver_in_a_single_partition_is_repaired() {
        // One partition (10 and 25 receivers): the victim's lost copies
        // must come back although the rest of the region has them and
        // holders free theirs on stability (found from Python: the token
        // reported nothing missing and the sender's window stalled).
        for receivers in [10, 25] {
            let o = run(&QsmParams {
                receivers,
                token_period: Duration::from_millis(20),
                rate: 1000,
                send_for: Duration::from_millis(2500),
                ..small(Scenario::Loss)
            });
            assert!(o.all_delivered, "{receivers}: {:?} {:?}", o.debug, o);
            assert_eq!((o.fifo_violations, o.corrupted), (0, 0));
            assert!(o.sent >= 2400, "{receivers}: {o:?}");
        }
    }

    #[test]
    fn a_message_budget_ends_the_sending_phase_once_acknowledged() {
        let o = run(&QsmParams {
            messages: Some(300),
            ..small(Scenario::Undisturbed)
        });
        assert_eq!((o.sent, o.min_delivered), (300, 300));
        assert!(o.send_secs < 1.5, "{o:?}");
        assert_eq!(o.victim, None);
        // The window (256) filled, then drained.
        assert_eq!(o.pending_max, 256);
        let sleepy = run(&QsmParams {
            send_for: Duration::from_millis(2500),
            ..small(Scenario::Sleep)
        });
        assert!(sleepy.all_delivered && sleepy.fifo_violations == 0);
        // The sleep (1 s .. 1.5 s) delays acknowledgements by about its length.
        assert!(sleepy.ack_max_ms > 400.0, "{sleepy:?}");
    }
}
