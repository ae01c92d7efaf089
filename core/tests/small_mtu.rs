//! The smallest datagram budget, `wire::MIN_MTU`, carries the whole total
//! order protocol: fragmented messages, the sequencer's batched orders, NACK
//! repairs of a full range, and a view change whose RECOVER lists span
//! several datagrams — with every integrity schema (the chunked ones leave
//! the least room for records).
//!
//! Regressions these runs caught: a RECOVER in several parts was queued
//! twice and re-sent without end; a NACK repair whose order filled the
//! datagram never got to the data.

use phasecast_core::sim::check::{Checks, History, MsgId as CheckId};
use phasecast_core::sim::{
    AppResult, Endpoint, Latency, LinkConfig, NodeEvent, Sim, SimConfig, TraceKind,
};
use phasecast_core::wire::MIN_MTU;
use phasecast_core::{Config, Duration, Error, Instant, Integrity, Node, NodeId, Transmit};
use std::cell::RefCell;
use std::rc::Rc;

/// Eight members, the datagram budget at its minimum.
type SmallMtuNode = Node<9, 64, 256, 1024, 32768, MIN_MTU>;

/// Datagrams one node may send at a single instant before the test calls
/// it a livelock (a feed that re-sends without progress would otherwise
/// grow the simulator's queue until memory runs out).
const BURST_LIMIT: u32 = 2000;

/// The node, with a guard against endless bursts.
struct Guarded {
    node: Box<SmallMtuNode>,
    at: Instant,
    burst: u32,
}

impl Endpoint for Guarded {
    type Event = NodeEvent;
    fn handle_datagram(&mut self, now: Instant, from: NodeId, bytes: &[u8]) {
        self.node.handle_datagram(now, from, bytes)
    }
    fn handle_timeout(&mut self, now: Instant) {
        Endpoint::handle_timeout(&mut self.node, now)
    }
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if now != self.at {
            (self.at, self.burst) = (now, 0);
        }
        let t = Endpoint::poll_transmit(&mut self.node, now, buf)?;
        self.burst += 1;
        assert!(
            self.burst < BURST_LIMIT,
            "{:?} sends without end at {now:?}: {:?}",
            self.node.id(),
            self.node.tob_status()
        );
        Some(t)
    }
    fn poll_event(&mut self) -> Option<NodeEvent> {
        Endpoint::poll_event(&mut self.node)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Endpoint::poll_timeout(&self.node)
    }
}

const N: u16 = 8;
const PER_NODE: u32 = 30;

fn payload(sender: u16, k: u32) -> Vec<u8> {
    // Mostly sensor-sized messages, every fifth one fragmented over 3–4 datagrams.
    let len = if k % 5 == 4 {
        1500
    } else {
        12 + (k as usize * 29) % 200
    };
    let mut p = Vec::with_capacity(len);
    p.extend_from_slice(&sender.to_be_bytes());
    p.extend_from_slice(&k.to_be_bytes());
    p.extend((6..len).map(|i| (i as u32 ^ k) as u8));
    p
}

fn run(integrity: Integrity, seed: u64) {
    let mut cfg = SimConfig::new(N, seed);
    cfg.link = LinkConfig {
        latency: Latency::Normal {
            mean: Duration::from_micros(300),
            sd: Duration::from_micros(60),
        },
        loss: 0.01,
        ..LinkConfig::default()
    };
    cfg.mtu = MIN_MTU;
    cfg.trace = true;
    let members: Vec<NodeId> = (0..N).map(NodeId).collect();
    let mut sim = Sim::new(cfg, move |id, seed| {
        let mut c = Config::new(id, &members);
        c.seed = seed;
        c.incarnation = 1;
        c.mtu = MIN_MTU;
        c.integrity = integrity;
        c.heartbeat = Some(Duration::from_millis(10));
        c.fd_timeout = Some(Duration::from_millis(100));
        c.tob_rto = Duration::from_millis(20);
        c.tob_window = 16;
        Guarded {
            node: Box::new(SmallMtuNode::new(&c, Instant::ZERO).expect("valid config")),
            at: Instant::ZERO,
            burst: 0,
        }
    });
    let history = Rc::new(RefCell::new(History::with_processes(0..N)));
    for node in 0..N {
        for k in 0..PER_NODE {
            let h = history.clone();
            let p = payload(node, k);
            sim.app_at(
                NodeId(node),
                Instant::from_millis(1),
                Box::new(
                    move |n: &mut Guarded, now| match n.node.broadcast(now, &p) {
                        Ok(_) => {
                            h.borrow_mut().record_broadcast(
                                node,
                                CheckId::new(node, u64::from(k)),
                                p.clone(),
                            );
                            AppResult::Done
                        }
                        Err(Error::Full) => AppResult::Retry,
                        Err(Error::NotMember) => AppResult::Done,
                        Err(e) => panic!("broadcast: {e:?}"),
                    },
                ),
            );
        }
    }
    // The sequencer dies with up to 8 × 16 broadcasts outstanding: the
    // survivors' RECOVER lists outgrow one 512-byte datagram.
    sim.crash(NodeId(0), Instant::from_millis(15));
    sim.run_until(Instant::from_millis(10_000));

    let mut h = history.borrow().clone();
    let mut views = 0;
    for (_, node, ev) in sim.events() {
        match ev {
            NodeEvent::Delivered {
                sn,
                sender,
                payload,
            } => {
                let k = u32::from_be_bytes([payload[2], payload[3], payload[4], payload[5]]);
                h.record_delivery(
                    node.0,
                    Some(*sn),
                    CheckId::new(sender.0, u64::from(k)),
                    payload.clone(),
                );
            }
            NodeEvent::ViewChanged { members, .. } if node.0 == 1 => {
                assert!(!members.contains(&NodeId(0)), "{integrity:?}: {members:?}");
                views += 1;
            }
            _ => {}
        }
    }
    h.record_crash(0);
    let report = h.check(Checks::ALL);
    assert!(report.is_ok(), "{integrity:?} seed {seed}:\n{report}");
    assert!(
        views >= 1,
        "{integrity:?}: the sequencer's crash installed a view"
    );
    for p in 1..N {
        // Every survivor's own broadcasts, at least, were delivered everywhere.
        assert!(
            h.deliveries_of(p).len() >= (PER_NODE as usize) * (N as usize - 1),
            "{integrity:?}: node {p} delivered {}",
            h.deliveries_of(p).len()
        );
    }
    let longest = sim
        .trace()
        .iter()
        .filter(|t| matches!(t.kind, TraceKind::Sent))
        .map(|t| t.len)
        .max()
        .unwrap_or(0);
    assert!(
        longest <= MIN_MTU && longest > MIN_MTU - 64,
        "{integrity:?}: longest datagram {longest}"
    );
}

#[test]
fn total_order_with_a_view_change_fits_in_min_mtu_with_every_integrity_schema() {
    for (i, integrity) in [Integrity::Crc32c, Integrity::ChunkHd6, Integrity::ChunkHd8]
        .into_iter()
        .enumerate()
    {
        for seed in 0..3 {
            run(integrity, 40 + 10 * i as u64 + seed);
        }
    }
}

#[test]
fn min_mtu_is_the_smallest_accepted_budget() {
    let members = [NodeId(0), NodeId(1)];
    let at = |mtu| {
        SmallMtuNode::new(
            &Config {
                mtu,
                ..Config::new(NodeId(0), &members)
            },
            Instant::ZERO,
        )
        .map(|_| ())
    };
    assert_eq!(at(MIN_MTU), Ok(()));
    assert_eq!(at(MIN_MTU - 1), Err(Error::InvalidConfig("mtu")));
}
