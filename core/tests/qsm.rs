//! QSM in the simulator (QSM §3, §5.3): senders and receivers in one
//! region with loss, duplication and reordering; every live member
//! delivers every message in per-sender FIFO order, checked with the shared
//! property checker (non-uniform reliable multicast + FIFO).

#![cfg(feature = "std")]

use phasecast_core::addr::{GroupId, NodeId};
use phasecast_core::node::{Config, Error, Node};
use phasecast_core::qsm::{GroupView, QsmConfig, RegionView};
use phasecast_core::sim::check::{Checks, History, MsgId, Report};
use phasecast_core::sim::Latency;
use phasecast_core::sim::{AppResult, LinkConfig, NodeEvent, Sim, SimConfig};
use phasecast_core::time::{Duration, Instant};

/// 32 sinks, 512 KiB of payload storage, 2048 groups, rings of 256.
type QNode = Node<32, 64, 64, 4096, 262_144, 1500, 2048, 256>;

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
    let (per_node, report) = check_deliveries(sim, &mut h);
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

/// Every node's `(group, sender, per-group seq, message index)`
/// deliveries, in order, by node id.
type Deliveries = std::collections::BTreeMap<u16, Vec<(GroupId, NodeId, u32, u64)>>;

/// Records every group delivery of the run in `h` and checks QSM's
/// guarantee: integrity, agreement among the live and per-sender FIFO
/// (not uniform: a crashed member's deliveries bind nobody).
fn check_deliveries(sim: &Sim<Box<QNode>>, h: &mut History) -> (Deliveries, Report) {
    let mut per_node = Deliveries::default();
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
    (per_node, report)
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
    // Cleanup: every cached copy was dropped once stable in the region.
    let mut cleaned = 0;
    for r in &s.receivers {
        let n = sim.node(*r);
        assert_eq!(n.qsm_stats().delivered, 300);
        assert_eq!(n.qsm_storage(), (0, 0), "node {} still holds copies", r.0);
        cleaned += n.qsm_stats().cleaned + n.qsm_stats().evicted;
    }
    // 3 partitions x 2 holders x 300 messages were cached, then dropped
    // (a few evicted from the ring by newer messages before the token said
    // they were stable).
    assert_eq!(cleaned, 3 * 2 * 300);
    assert_eq!(sim.node(NodeId(0)).qsm_storage(), (0, 0));
}

/// Senders that are members of the group deliver their own messages and
/// each other's, in FIFO order, under loss.
#[test]
fn senders_that_are_members_deliver_everything() {
    big_stack(|| {
        let mut link = lan();
        link.loss = 0.03;
        link.duplicate = 0.02;
        link.reorder = 0.05;
        for seed in 11..=16 {
            let s = Setup {
                receivers: (0..=8).map(NodeId).collect(),
                senders: vec![NodeId(0), NodeId(1)],
                groups: 3,
                qsm: fast_tokens(),
                link,
                seed,
            };
            let mut sim = build(&s);
            schedule(&mut sim, &s, 150, Duration::from_millis(1), 500);
            sim.run_until(Instant::ZERO + Duration::from_secs(5));
            verify(&sim, &s, 150, 500);
        }
    });
}

/// A whole partition misses messages: its holders get them from the
/// caching partition (partition recovery); the rest of the partition from
/// them (peer recovery).
#[test]
fn a_partition_recovers_from_the_caching_partition() {
    big_stack(|| {
        let s = Setup {
            receivers: (1..=15).map(NodeId).collect(),
            senders: vec![NodeId(0)],
            groups: 2,
            qsm: fast_tokens(),
            link: lan(),
            seed: 7,
        };
        let mut sim = build(&s);
        // Partition 0 is nodes 1..=5: cut the sender from them for 100 ms.
        let (a, b) = (
            Instant::ZERO + Duration::from_millis(50),
            Instant::ZERO + Duration::from_millis(150),
        );
        for r in 1..=5 {
            sim.cut(NodeId(0), NodeId(r), a, b);
        }
        schedule(&mut sim, &s, 200, Duration::from_millis(1), 800);
        sim.run_until(Instant::ZERO + Duration::from_secs(4));
        verify(&sim, &s, 200, 800);
        let sum = |f: fn(&phasecast_core::qsm::QsmStats) -> u64| -> u64 {
            s.receivers
                .iter()
                .map(|r| f(sim.node(*r).qsm_stats()))
                .sum()
        };
        assert!(sum(|x| x.requests_partition) > 0, "partition recovery used");
        assert!(sum(|x| x.requests_peer) > 0, "peer recovery used");
        assert!(sum(|x| x.forwards) > 0);
        // Nothing was lost by the whole region: the token never said so.
        assert_eq!(sim.node(NodeId(0)).qsm_stats().lost_reported, 0);
    });
}

/// The whole region misses messages: the token's ranges (missed by every
/// member) reach the sender, who multicasts them again.
#[test]
fn a_region_that_missed_messages_gets_them_from_the_sender() {
    big_stack(|| {
        let s = Setup {
            receivers: (1..=10).map(NodeId).collect(),
            senders: vec![NodeId(0)],
            groups: 2,
            qsm: fast_tokens(),
            link: lan(),
            seed: 9,
        };
        let mut sim = build(&s);
        let (a, b) = (
            Instant::ZERO + Duration::from_millis(50),
            Instant::ZERO + Duration::from_millis(100),
        );
        for r in 1..=10 {
            sim.cut(NodeId(0), NodeId(r), a, b);
        }
        schedule(&mut sim, &s, 200, Duration::from_millis(1), 800);
        sim.run_until(Instant::ZERO + Duration::from_secs(4));
        verify(&sim, &s, 200, 800);
        let sum = |f: fn(&phasecast_core::qsm::QsmStats) -> u64| -> u64 {
            s.receivers
                .iter()
                .map(|r| f(sim.node(*r).qsm_stats()))
                .sum()
        };
        let st = sim.node(NodeId(0)).qsm_stats();
        assert!(st.lost_reported >= 40, "sender recovery used: {st:?}");
        assert!(st.remulticasts >= 40);
        let _ = sum;
    });
}

/// Flow control: the sender never has more than `window` unacknowledged
/// messages; `multicast` answers `Full` beyond and nothing changes.
#[test]
fn flow_control_limits_unacknowledged_messages() {
    big_stack(|| {
        let s = Setup {
            receivers: (1..=4).map(NodeId).collect(),
            senders: vec![NodeId(0)],
            groups: 2,
            qsm: QsmConfig {
                window: 16,
                ..fast_tokens()
            },
            link: lan(),
            seed: 3,
        };
        let mut sim = build(&s);
        sim.run_until(Instant::ZERO + Duration::from_millis(1));
        let now = sim.now();
        let n = sim.node_mut(NodeId(0));
        for i in 0..16u32 {
            // Alternating groups of one region: per-group numbers.
            let g = GroupId(1 + i % 2);
            assert_eq!(n.multicast(now, g, &[1, 2, 3]), Ok(i / 2 + 1));
        }
        assert_eq!(n.multicast(now, GroupId(1), &[1, 2, 3]), Err(Error::Full));
        assert_eq!(n.multicast(now, GroupId(9), &[1]), Err(Error::UnknownGroup));
        let big = vec![0u8; 2000];
        assert_eq!(n.multicast(now, GroupId(1), &big), Err(Error::Oversized));
        assert_eq!(n.qsm_pending(), 16);
        // After a token round the region acknowledges and the window opens.
        sim.run_until(Instant::ZERO + Duration::from_millis(300));
        let now = sim.now();
        let n = sim.node_mut(NodeId(0));
        assert_eq!(n.qsm_pending(), 0);
        assert_eq!(n.multicast(now, GroupId(1), &[4]), Ok(9));
        // The 16 messages of two groups left in one datagram (one region).
        let c = n.counters();
        assert!(c.frames_sent <= 2, "{c:?}");
        assert!(c.records_sent >= 16);
    });
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
    for seed in 1..=6 {
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

/// Heavy loss (15 % of every copy, tokens and requests included): still
/// every message, in order, at every member.
#[test]
fn heavy_loss() {
    big_stack(|| {
        let mut link = lan();
        link.loss = 0.15;
        link.reorder = 0.1;
        for seed in 21..=25 {
            let s = Setup {
                receivers: (1..=20).map(NodeId).collect(),
                senders: vec![NodeId(0)],
                groups: 5,
                qsm: fast_tokens(),
                link,
                seed,
            };
            let mut sim = build(&s);
            schedule(&mut sim, &s, 300, Duration::from_millis(1), 700);
            sim.run_until(Instant::ZERO + Duration::from_secs(20));
            verify(&sim, &s, 300, 700);
            // Lost tokens and acknowledgements were passed again; no live
            // member lost anything to a false suspicion.
            for r in &s.receivers {
                let st = sim.node(*r).qsm_stats();
                assert_eq!(st.abandoned, 0, "seed {seed} node {}: {st:?}", r.0);
            }
        }
    });
}

/// Messages nobody saw (the tail of the stream, or the whole stream) are
/// invisible to the token: the sender's tail rule sends them again.
#[test]
fn lost_tails_and_lost_streams_are_sent_again() {
    big_stack(|| {
        // (cut from, cut until): the tail only; everything.
        for (from_ms, until_ms) in [(180u64, 400u64), (0, 400)] {
            let s = Setup {
                receivers: (1..=10).map(NodeId).collect(),
                senders: vec![NodeId(0)],
                groups: 2,
                qsm: fast_tokens(),
                link: lan(),
                seed: 5,
            };
            let mut sim = build(&s);
            for r in 1..=10 {
                sim.cut(
                    NodeId(0),
                    NodeId(r),
                    Instant::ZERO + Duration::from_millis(from_ms),
                    Instant::ZERO + Duration::from_millis(until_ms),
                );
            }
            schedule(&mut sim, &s, 100, Duration::from_millis(2), 300);
            sim.run_until(Instant::ZERO + Duration::from_secs(4));
            verify(&sim, &s, 100, 300);
            assert!(sim.node(NodeId(0)).qsm_stats().remulticasts > 0);
        }
    });
}

/// Views the node cannot take are refused with a typed error and change
/// nothing; a build without QSM capacity refuses every view.
#[test]
fn bad_views_are_refused_and_change_nothing() {
    big_stack(|| {
        let members = [NodeId(1)];
        let config = Config::new(NodeId(1), &members);
        let mut n = Box::new(QNode::new(&config, Instant::ZERO).unwrap());
        let rm = [NodeId(1), NodeId(2)];
        let region = [RegionView {
            address: REGION,
            members: &rm,
        }];
        let g = |id: u32, regions: u8| GroupView {
            group: GroupId(id),
            regions,
        };
        let t = Instant::ZERO;
        let bad = |r: Result<(), Error>| matches!(r, Err(Error::InvalidConfig(_)));
        assert!(
            bad(n.install_groups(t, 1, &region, &[g(2, 1), g(1, 1)])),
            "unsorted"
        );
        assert!(
            bad(n.install_groups(t, 1, &region, &[g(1, 1), g(1, 1)])),
            "duplicate"
        );
        assert!(
            bad(n.install_groups(t, 1, &region, &[g(1, 2)])),
            "no region 1"
        );
        assert!(
            bad(n.install_groups(t, 1, &region, &[g(1, 0)])),
            "no region"
        );
        assert!(bad(n.install_groups(t, 1, &[], &[])), "no regions");
        let dup = [NodeId(1), NodeId(1)];
        let dup_region = [RegionView {
            address: REGION,
            members: &dup,
        }];
        assert!(bad(n.install_groups(t, 1, &dup_region, &[g(1, 1)])));
        let many: Vec<GroupView> = (1..=3000).map(|i| g(i, 1)).collect();
        assert!(bad(n.install_groups(t, 1, &region, &many)), "over GROUPS");
        // Nothing was installed.
        assert_eq!(n.multicast(t, GroupId(1), b"x"), Err(Error::UnknownGroup));
        n.install_groups(t, 5, &region, &[g(1, 1)]).unwrap();
        assert_eq!(n.multicast(t, GroupId(1), b"x"), Ok(1));
        assert!(
            bad(n.install_groups(t, 5, &region, &[g(1, 1)])),
            "epoch must grow"
        );
        assert_eq!(
            n.multicast(t, GroupId(1), b"y"),
            Ok(2),
            "old view still in force"
        );
        // No QSM capacity: the default node types of other protocols.
        type NoQsm = Node<8, 16, 64, 512, 16384, 1400>;
        let mut plain = Box::new(NoQsm::new(&config, t).unwrap());
        assert!(bad(plain.install_groups(t, 1, &region, &[g(1, 1)])));
        assert_eq!(
            plain.multicast(t, GroupId(1), b"x"),
            Err(Error::UnknownGroup)
        );
    });
}

/// A membership change of [`view_change`]: what the CMS does to the
/// region of `1..=12` at epoch 2.
#[derive(Clone, Copy, Debug)]
enum Change {
    /// Node 12 leaves (it gets a view without it).
    Leave,
    /// Node 13 joins.
    Join,
    /// Node 7 crashes; the CMS removes it.
    Crash,
    /// Sender 1, a member, crashes mid-stream; the CMS removes it.
    SenderCrash,
    /// All of it at once: 12 leaves, 13 joins, 7 crashes.
    All,
}

/// (a) A view change while both senders' messages are in flight, under
/// loss, duplication and reordering: every member of both views delivers
/// every message of a live sender exactly once, in per-sender order, with
/// per-group numbers that continue across the views; of a crashed sender,
/// the survivors deliver the same messages; a joiner delivers, per sender,
/// in order, everything multicast after it joined (preceded by some older
/// messages that were not yet stable when it joined).
fn view_change(change: Change, seed: u64) {
    use std::cell::RefCell;
    use std::rc::Rc;
    let count = 300u64;
    let groups = 3u32;
    let old: Vec<NodeId> = (1..=12).map(NodeId).collect();
    let (crashed, leaver, joiner) = match change {
        Change::Leave => (None, Some(NodeId(12)), None),
        Change::Join => (None, None, Some(NodeId(13))),
        Change::Crash => (Some(NodeId(7)), None, None),
        Change::SenderCrash => (Some(NodeId(1)), None, None),
        Change::All => (Some(NodeId(7)), Some(NodeId(12)), Some(NodeId(13))),
    };
    let new: Vec<NodeId> = old
        .iter()
        .copied()
        .filter(|n| Some(*n) != crashed && Some(*n) != leaver)
        .chain(joiner)
        .collect();
    let mut link = lan();
    link.loss = 0.03;
    link.duplicate = 0.02;
    link.reorder = 0.05;
    let s = Setup {
        receivers: old.clone(),
        senders: vec![NodeId(0), NodeId(1)],
        groups,
        qsm: fast_tokens(),
        link,
        seed,
    };
    let mut cfg = SimConfig::new(14, seed);
    cfg.link = link;
    cfg.mtu = 1500;
    let gv: Vec<GroupView> = (1..=groups)
        .map(|g| GroupView {
            group: GroupId(g),
            regions: 1,
        })
        .collect();
    let qsm = s.qsm;
    let (old2, gv2) = (old.clone(), gv.clone());
    let mut sim = Sim::new(cfg, move |id, seed| {
        let members = [id];
        let config = Config {
            mtu: 1500,
            seed,
            qsm,
            ..Config::new(id, &members)
        };
        let mut n = Box::new(QNode::new(&config, Instant::ZERO).expect("config"));
        let view = [RegionView {
            address: REGION,
            members: &old2,
        }];
        n.install_groups(Instant::ZERO, 1, &view, &gv2)
            .expect("view");
        n
    });
    sim.set_group(REGION, &old);
    // When each message was accepted (a joiner must have the later ones).
    let accepted: Rc<RefCell<Vec<(NodeId, u64, Instant)>>> = Rc::default();
    for &sender in &s.senders {
        for i in 0..count {
            let group = GroupId(1 + (i % u64::from(groups)) as u32);
            let p = payload(sender, i, 500);
            let acc = accepted.clone();
            sim.app_at(
                sender,
                Instant::ZERO + Duration::from_millis(10) + Duration::from_millis(1) * i,
                Box::new(
                    move |n: &mut Box<QNode>, now| match n.multicast(now, group, &p) {
                        Ok(_) => {
                            acc.borrow_mut().push((sender, i, now));
                            AppResult::Done
                        }
                        Err(Error::Full) => AppResult::Retry,
                        Err(e) => panic!("multicast: {e:?}"),
                    },
                ),
            );
        }
    }
    let ms = |m: u64| Instant::ZERO + Duration::from_millis(m);
    if let Some(c) = crashed {
        sim.crash(c, ms(120));
    }
    // The network's group follows the views: both views' members while
    // the CMS installs epoch 2 at every node, a little apart (directly:
    // a sender's queued multicasts must not delay its view), then the new
    // view's.
    let install_at = 200u64;
    sim.run_until(ms(150));
    let union: Vec<NodeId> = old.iter().chain(new.iter()).copied().collect();
    sim.set_group(REGION, &union);
    for k in 0..14u16 {
        sim.run_until(ms(install_at) + Duration::from_micros(700) * u64::from(k));
        if Some(NodeId(k)) == crashed {
            continue;
        }
        let now = sim.now();
        let view = [RegionView {
            address: REGION,
            members: &new,
        }];
        sim.node_mut(NodeId(k))
            .install_groups(now, 2, &view, &gv)
            .expect("view 2");
    }
    sim.run_until(ms(install_at + 20));
    sim.set_group(REGION, &new);
    sim.run_until(ms(6000));

    let mut h = History::new();
    let survivors: Vec<NodeId> = old.iter().copied().filter(|n| new.contains(n)).collect();
    for k in 0..14u16 {
        h.add_process(k);
        if !survivors.contains(&NodeId(k)) {
            // Crashed, left, joined, or not a member: checked separately.
            h.record_crash(k);
        }
    }
    for &sender in &s.senders {
        for i in 0..count {
            h.record_broadcast(sender.0, MsgId::new(sender.0, i), payload(sender, i, 500));
        }
    }
    let (per_node, report) = check_deliveries(&sim, &mut h);
    if std::env::var("QSM_DEBUG").is_ok_and(|v| v == seed.to_string()) {
        for k in 0..14u16 {
            let n = sim.node(NodeId(k));
            eprintln!(
                "node {k}: pending {} delivered {} {:?}",
                n.qsm_pending(),
                per_node.get(&k).map_or(0, Vec::len),
                n.qsm_stats()
            );
            for i in 0..4 {
                eprintln!("  stream {i}: {:?}", n.qsm_stream_state(i));
            }
        }
    }
    assert!(report.is_ok(), "{change:?} seed {seed}: {report}");
    let accepted = accepted.borrow();
    let sent = |sender: NodeId| accepted.iter().filter(|a| a.0 == sender).count() as u64;
    for r in &survivors {
        let got = &per_node[&r.0];
        for &sender in &s.senders {
            let mine: Vec<_> = got.iter().filter(|d| d.1 == sender).collect();
            if Some(sender) == crashed {
                assert!(mine.len() as u64 <= sent(sender));
                continue;
            }
            // A live sender: everything, once (FIFO and integrity above).
            assert_eq!(
                mine.len() as u64,
                count,
                "{change:?} seed {seed}: node {} from {}",
                r.0,
                sender.0
            );
        }
        // Per-group numbers continue across the views.
        for (_, _, gseq, i) in got {
            assert_eq!(u64::from(*gseq), i / u64::from(groups) + 1);
        }
    }
    if let Some(j) = joiner {
        let got = per_node.get(&j.0).cloned().unwrap_or_default();
        let joined_at = ms(install_at) + Duration::from_micros(700) * u64::from(j.0);
        for &sender in &s.senders {
            let idx: Vec<u64> = got.iter().filter(|d| d.1 == sender).map(|d| d.3).collect();
            let first_after = accepted
                .iter()
                .filter(|a| a.0 == sender && a.2 > joined_at)
                .map(|a| a.1)
                .min()
                .unwrap_or(count);
            // In order, once each (no duplicates, increasing)...
            assert!(
                idx.windows(2).all(|w| w[0] < w[1]),
                "{change:?} seed {seed}: joiner from {}: {idx:?}",
                sender.0
            );
            // ... and everything multicast after the join, without a gap
            // (older messages not yet stable may come first).
            let tail: Vec<u64> = idx.iter().copied().filter(|&i| i >= first_after).collect();
            let expect: Vec<u64> = (first_after..count).collect();
            assert_eq!(
                tail, expect,
                "{change:?} seed {seed}: joiner from {}",
                sender.0
            );
        }
    }
}

/// Seeds of the view-change and crash tests: 1..=8, or 1..=`QSM_SEEDS` (soak).
fn seeds() -> std::ops::RangeInclusive<u64> {
    let n = std::env::var("QSM_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    1..=n
}

#[test]
fn view_change_member_leaves() {
    big_stack(|| seeds().for_each(|seed| view_change(Change::Leave, seed)));
}

#[test]
fn view_change_member_joins() {
    big_stack(|| seeds().for_each(|seed| view_change(Change::Join, seed)));
}

#[test]
fn view_change_member_crashes() {
    big_stack(|| seeds().for_each(|seed| view_change(Change::Crash, seed)));
}

#[test]
fn view_change_sender_crashes() {
    big_stack(|| seeds().for_each(|seed| view_change(Change::SenderCrash, seed)));
}

#[test]
fn view_change_leave_join_and_crash_at_once() {
    big_stack(|| seeds().for_each(|seed| view_change(Change::All, seed)));
}

/// (b), (c) A ring member crashes and no new view comes: the ring skips it
/// (its predecessor gets no pass acknowledgement) or, when it released the
/// ring's tokens, the next live member regenerates them; the live members
/// keep recovering losses and delivering every message in order, and the
/// sender's window keeps moving (stability counts the live members only).
fn crash_without_view(victim: NodeId, seed: u64) {
    if std::env::var("QSM_VERBOSE").is_ok() {
        eprintln!("crash_without_view({}, {seed})", victim.0);
    }
    let mut link = lan();
    link.loss = 0.03;
    link.duplicate = 0.01;
    link.reorder = 0.05;
    let s = Setup {
        receivers: (1..=12).map(NodeId).collect(),
        senders: vec![NodeId(0)],
        groups: 3,
        qsm: QsmConfig {
            window: 64,
            ..crash_tokens()
        },
        link,
        seed,
    };
    let mut sim = build(&s);
    sim.crash(victim, Instant::ZERO + Duration::from_millis(100));
    // 400 messages over 0.4 s: far more than the window, so the sender
    // only finishes if the region keeps acknowledging without the victim.
    schedule(&mut sim, &s, 400, Duration::from_millis(1), 500);
    sim.run_until(Instant::ZERO + Duration::from_secs(6));
    if std::env::var("QSM_DEBUG").is_ok_and(|v| v == seed.to_string()) {
        for k in 0..=12u16 {
            let n = sim.node(NodeId(k));
            let st = n.qsm_stats();
            eprintln!(
                "node {k}: pending {} deliv {} rounds {} prounds {} regen {} susp {} retries {} abandoned {} streams {:?}",
                n.qsm_pending(),
                st.delivered,
                st.rounds,
                st.partition_rounds,
                st.regenerated,
                st.suspected,
                st.token_retries,
                st.abandoned,
                n.qsm_stream_state(0)
            );
        }
    }
    let live = Setup {
        receivers: s
            .receivers
            .iter()
            .copied()
            .filter(|&r| r != victim)
            .collect(),
        ..s
    };
    verify_except(&sim, &live, 400, 500, &[victim]);
    let sender = sim.node(NodeId(0));
    assert_eq!(
        sender.qsm_pending(),
        0,
        "seed {seed}: the window kept moving"
    );
    assert_eq!(sender.qsm_stats().acked, 400);
    let sum = |f: fn(&phasecast_core::qsm::QsmStats) -> u64| -> u64 {
        live.receivers
            .iter()
            .map(|r| f(sim.node(*r).qsm_stats()))
            .sum()
    };
    assert!(
        sum(|x| x.suspected) > 0,
        "seed {seed}: the victim was skipped"
    );
    assert!(sum(|x| x.requests_peer + x.requests_partition) > 0);
    assert!(
        sum(|x| x.abandoned) == 0,
        "seed {seed}: no live member lost anything"
    );
}

/// [`fast_tokens`] that skip a silent member after 3 periods (150 ms)
/// instead of the default 2 s floor: the crash tests recover quickly.
fn crash_tokens() -> QsmConfig {
    QsmConfig {
        suspect_min: Duration::ZERO,
        ..fast_tokens()
    }
}

/// [`verify`], with `crashed` nodes recorded as crashed (nothing required).
fn verify_except(sim: &Sim<Box<QNode>>, s: &Setup, count: u64, len: usize, crashed: &[NodeId]) {
    let mut h = History::new();
    for &sender in &s.senders {
        for i in 0..count {
            h.record_broadcast(sender.0, MsgId::new(sender.0, i), payload(sender, i, len));
        }
        h.record_crash(sender.0);
    }
    for c in crashed {
        h.record_crash(c.0);
    }
    let mut got: std::collections::BTreeMap<u16, u64> = Default::default();
    for (_, node, ev) in sim.events() {
        if let NodeEvent::GroupDelivered {
            sender, payload, ..
        } = ev
        {
            let i = u64::from_be_bytes(payload[2..10].try_into().unwrap());
            h.record_delivery(node.0, None, MsgId::new(sender.0, i), payload.clone());
            *got.entry(node.0).or_default() += 1;
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
        assert_eq!(
            got.get(&r.0).copied().unwrap_or(0),
            count * s.senders.len() as u64,
            "receiver {}",
            r.0
        );
    }
}

/// (b) A plain member (node 3, in the middle of partition 1..=5) crashes.
#[test]
fn a_crashed_member_is_skipped_without_a_new_view() {
    big_stack(|| {
        for seed in seeds() {
            crash_without_view(NodeId(3), seed);
        }
    });
}

/// (c) A partition leader (node 6, leader of 6..=10) crashes: the next
/// member of its partition regenerates the partition's token and takes its
/// seat on the ring of partitions.
#[test]
fn a_crashed_partition_leader_is_replaced_without_a_new_view() {
    big_stack(|| {
        for seed in seeds() {
            crash_without_view(NodeId(6), seed);
        }
    });
}

/// (c) The region leader (node 1) crashes: both of its rings regenerate,
/// and the acknowledgements to the sender come from the new releaser.
#[test]
fn a_crashed_region_leader_is_replaced_without_a_new_view() {
    big_stack(|| {
        for seed in seeds() {
            crash_without_view(NodeId(1), seed);
        }
        let mut sim = {
            let s = Setup {
                receivers: (1..=12).map(NodeId).collect(),
                senders: vec![NodeId(0)],
                groups: 1,
                qsm: crash_tokens(),
                link: lan(),
                seed: 3,
            };
            let mut sim = build(&s);
            sim.crash(NodeId(1), Instant::ZERO + Duration::from_millis(100));
            schedule(&mut sim, &s, 50, Duration::from_millis(20), 100);
            sim
        };
        sim.run_until(Instant::ZERO + Duration::from_secs(3));
        let regen: u64 = (2..=12)
            .map(|r| sim.node(NodeId(r)).qsm_stats().regenerated)
            .sum();
        assert!(regen >= 2, "both rings regenerated: {regen}");
        // Someone else completes the region's rounds now (the first live
        // member after node 1 on the ring of partitions to time out).
        let rounds: u64 = (2..=12)
            .map(|r| sim.node(NodeId(r)).qsm_stats().rounds)
            .sum();
        assert!(rounds > 10, "the region's rounds go on: {rounds}");
        assert_eq!(sim.node(NodeId(0)).qsm_pending(), 0);
        assert_eq!(sim.node(NodeId(0)).qsm_stats().acked, 50);
    });
}

/// QSM §5.3's sleeping receiver (its traffic held 0.5 s) is alive: with
/// the default floor of the suspicion timeout (2 s) it is not skipped,
/// even with tokens every 50 ms, and loses nothing.
#[test]
fn a_sleeping_member_is_not_skipped() {
    big_stack(|| {
        for seed in 1..=3 {
            let s = Setup {
                receivers: (1..=12).map(NodeId).collect(),
                senders: vec![NodeId(0)],
                groups: 2,
                qsm: fast_tokens(),
                link: lan(),
                seed,
            };
            let mut sim = build(&s);
            sim.clog(
                NodeId(3),
                Instant::ZERO + Duration::from_millis(100),
                Instant::ZERO + Duration::from_millis(600),
            );
            schedule(&mut sim, &s, 400, Duration::from_millis(2), 500);
            sim.run_until(Instant::ZERO + Duration::from_secs(5));
            verify(&sim, &s, 400, 500);
            for r in &s.receivers {
                let st = sim.node(*r).qsm_stats();
                assert_eq!(
                    (st.suspected, st.abandoned, st.regenerated),
                    (0, 0, 0),
                    "{st:?}"
                );
            }
            // Its predecessor passed the token again while it slept.
            let retries: u64 = s
                .receivers
                .iter()
                .map(|r| sim.node(*r).qsm_stats().token_retries)
                .sum();
            assert!(retries > 0);
        }
    });
}
