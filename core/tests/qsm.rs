//! QSM in the simulator (QSM §3, §5.3): senders and receivers in one
//! region with loss, duplication and reordering; every live member
//! delivers every message in per-sender FIFO order, checked with the shared
//! property checker (non-uniform reliable multicast + FIFO).

#![cfg(feature = "std")]

use phasecast_core::addr::{GroupId, NodeId};
use phasecast_core::node::{Config, Error, Node};
use phasecast_core::qsm::{GroupView, QsmConfig, RegionView};
use phasecast_core::sim::check::{Checks, History, MsgId};
use phasecast_core::sim::Latency;
use phasecast_core::sim::{AppResult, LinkConfig, NodeEvent, Sim, SimConfig};
use phasecast_core::time::{Duration, Instant};

/// 32 sinks, 512 KiB of payload storage, 2048 groups.
type QNode = Node<32, 64, 64, 4096, 262_144, 1500>;

const REGION: GroupId = GroupId(1000);

struct Setup {
    receivers: Vec<NodeId>,
    senders: Vec<NodeId>,
    groups: u32,
    qsm: QsmConfig,
    link: LinkConfig,
    seed: u64,
}

fn build(s: &Setup) -> Sim<Box<QNode>> {
    let total = (s.receivers.len() + s.senders.len()) as u16;
    let mut cfg = SimConfig::new(total, s.seed);
    cfg.link = s.link;
    cfg.mtu = 1500;
    let receivers = s.receivers.clone();
    let groups: Vec<GroupView> = (1..=s.groups)
        .map(|g| GroupView {
            group: GroupId(g),
            regions: 1,
        })
        .collect();
    let qsm = s.qsm;
    let mut sim = Sim::new(cfg, move |id, seed| {
        let members = [id];
        let config = Config {
            mtu: 1500,
            seed,
            qsm,
            ..Config::new(id, &members)
        };
        let mut n = Box::new(QNode::new(&config, Instant::ZERO).expect("config"));
        n.install_groups(
            Instant::ZERO,
            1,
            &[RegionView {
                address: REGION,
                members: &receivers,
            }],
            &groups,
        )
        .expect("view");
        n
    });
    sim.set_group(REGION, &s.receivers);
    sim
}

fn payload(sender: NodeId, i: u64, len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len.max(10)];
    p[0..2].copy_from_slice(&sender.0.to_be_bytes());
    p[2..10].copy_from_slice(&i.to_be_bytes());
    for (k, b) in p.iter_mut().enumerate().skip(10) {
        *b = (i as usize + k) as u8;
    }
    p
}

/// Schedules `count` multicasts per sender, one every `gap`, to groups in
/// round robin; `Full` is retried (backpressure).
fn schedule(sim: &mut Sim<Box<QNode>>, s: &Setup, count: u64, gap: Duration, len: usize) {
    for &sender in &s.senders {
        for i in 0..count {
            let group = GroupId(1 + (i % u64::from(s.groups)) as u32);
            let p = payload(sender, i, len);
            sim.app_at(
                sender,
                Instant::ZERO + Duration::from_millis(10) + gap * i,
                Box::new(
                    move |n: &mut Box<QNode>, now| match n.multicast(now, group, &p) {
                        Ok(_) => AppResult::Done,
                        Err(Error::Full) => AppResult::Retry,
                        Err(e) => panic!("multicast: {e:?}"),
                    },
                ),
            );
        }
    }
}

/// Checks every receiver delivered every message once, in per-sender
/// order, with the right payload and per-group numbers.
fn verify(sim: &Sim<Box<QNode>>, s: &Setup, count: u64, len: usize) {
    let mut h = History::new();
    for &sender in &s.senders {
        for i in 0..count {
            h.record_broadcast(sender.0, MsgId::new(sender.0, i), payload(sender, i, len));
        }
        // Senders are not members of the group: like a crashed process,
        // nothing is required of their deliveries.
        h.record_crash(sender.0);
    }
    let mut per_node: std::collections::BTreeMap<u16, Vec<(GroupId, NodeId, u32, u64)>> =
        Default::default();
    for (_, node, ev) in sim.events() {
        if let NodeEvent::GroupDelivered {
            group,
            sender,
            seq,
            payload,
        } = ev
        {
            let i = u64::from_be_bytes(payload[2..10].try_into().unwrap());
            h.record_delivery(node.0, None, MsgId::new(sender.0, i), payload.clone());
            per_node
                .entry(node.0)
                .or_default()
                .push((*group, *sender, *seq, i));
        }
    }
    let report = h.check(Checks {
        integrity: true,
        agreement: true,
        fifo: true,
        uniform: false,
        ..Checks::NONE
    });
    assert!(report.is_ok(), "{report}");
    for r in &s.receivers {
        let got = per_node.get(&r.0).map_or(0, Vec::len) as u64;
        assert_eq!(
            got,
            count * s.senders.len() as u64,
            "receiver {} delivered {got}",
            r.0
        );
        // Per-group numbers: the k-th message of a sender to group g is g's k-th.
        for (g, sender, seq, i) in &per_node[&r.0] {
            let _ = sender;
            let k = i / u64::from(s.groups) + 1;
            assert_eq!(u64::from(*seq), k, "group {} msg {i}", g.0);
        }
    }
}

/// Nodes are built on the stack before being boxed: run on a big one.
fn big_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(f)
        .expect("thread")
        .join()
        .expect("test body");
}

fn lan() -> LinkConfig {
    LinkConfig::with_latency(Latency::Uniform(
        Duration::from_micros(200),
        Duration::from_micros(400),
    ))
}

fn fast_tokens() -> QsmConfig {
    QsmConfig {
        token_period: Duration::from_millis(50),
        partition_size: 5,
        replication: 2,
        window: 128,
        ..QsmConfig::default()
    }
}

#[test]
fn undisturbed_one_sender_delivers_everything_in_order() {
    big_stack(undisturbed);
}

fn undisturbed() {
    let s = Setup {
        receivers: (1..=12).map(NodeId).collect(),
        senders: vec![NodeId(0)],
        groups: 3,
        qsm: fast_tokens(),
        link: lan(),
        seed: 1,
    };
    let mut sim = build(&s);
    schedule(&mut sim, &s, 300, Duration::from_micros(500), 1000);
    sim.run_until(Instant::ZERO + Duration::from_secs(3));
    verify(&sim, &s, 300, 1000);
    let st = sim.node(NodeId(0)).qsm_stats();
    assert_eq!(st.multicasts, 300);
    assert_eq!(st.acked, 300, "the region acknowledged everything: {st:?}");
    assert_eq!(sim.node(NodeId(0)).qsm_pending(), 0);
    // The leader completed rounds and measured their round trip.
    let leader = sim.node(NodeId(1)).qsm_stats();
    assert!(leader.rounds > 10, "{leader:?}");
    // Cleanup: every cached copy was dropped once stable.
    for r in &s.receivers {
        let n = sim.node(*r);
        assert_eq!(n.qsm_stats().delivered, 300);
    }
}

#[test]
fn loss_duplication_reordering_two_senders() {
    big_stack(lossy);
}

fn lossy() {
    let mut link = lan();
    link.loss = 0.05;
    link.duplicate = 0.02;
    link.reorder = 0.05;
    for seed in 1..=3 {
        let s = Setup {
            receivers: (2..=16).map(NodeId).collect(),
            senders: vec![NodeId(0), NodeId(1)],
            groups: 4,
            qsm: fast_tokens(),
            link,
            seed,
        };
        let mut sim = build(&s);
        schedule(&mut sim, &s, 200, Duration::from_millis(1), 600);
        sim.run_until(Instant::ZERO + Duration::from_secs(10));
        verify(&sim, &s, 200, 600);
        let total: u64 = s
            .receivers
            .iter()
            .map(|r| sim.node(*r).qsm_stats().requests_peer)
            .sum();
        assert!(total > 0, "losses were recovered from peers");
    }
}
