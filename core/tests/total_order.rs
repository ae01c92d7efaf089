//! Uniform total order broadcast on the simulator, checked by the shared
//! property checker (validity, integrity, uniform agreement, total order,
//! per-sender FIFO) under loss, duplication, reordering, crashes — of the
//! sequencer too, and during a view change — and partitions.

use phasecast_core::sim::check::{Checks, History, MsgId as CheckId};
use phasecast_core::sim::{AppResult, FaultPlan, Latency, LinkConfig, NodeEvent, Sim, SimConfig};
use phasecast_core::{Config, Duration, Error, Instant, Node, NodeId, SendReason, ViewPolicy};
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

type TobNode = Node<9, 64, 512, 2048, 65536, 2048>;

/// Payload: sender, counter (as the application numbers its broadcasts), filler.
fn payload(sender: u16, k: u32, len: usize) -> Vec<u8> {
    let mut p = Vec::with_capacity(len.max(6));
    p.extend_from_slice(&sender.to_be_bytes());
    p.extend_from_slice(&k.to_be_bytes());
    p.extend((6..len).map(|i| (i as u32 ^ k) as u8));
    p
}

fn decode(p: &[u8]) -> (u16, u32) {
    (
        u16::from_be_bytes([p[0], p[1]]),
        u32::from_be_bytes([p[2], p[3], p[4], p[5]]),
    )
}

struct Run {
    sim: Sim<Box<TobNode>>,
    history: Rc<RefCell<History>>,
    n: u16,
}

fn config_for(c: &mut Config<'_>) {
    c.mtu = 1400;
    c.heartbeat = Some(Duration::from_millis(10));
    c.fd_timeout = Some(Duration::from_millis(100));
    c.tob_rto = Duration::from_millis(20);
    c.tob_window = 16;
}

fn start(n: u16, seed: u64, link: LinkConfig, policy: ViewPolicy) -> Run {
    let mut cfg = SimConfig::new(n, seed);
    cfg.link = link;
    cfg.mtu = 2048;
    cfg.uplink_bps = Some(100_000_000);
    let members: Vec<NodeId> = (0..n).map(NodeId).collect();
    let mut incarnations: HashMap<NodeId, u32> = HashMap::new();
    let sim = Sim::new(cfg, move |id, seed| {
        let inc = incarnations.entry(id).or_insert(0);
        *inc += 1;
        let mut c = Config::new(id, &members);
        c.seed = seed;
        c.incarnation = *inc;
        c.join = *inc > 1;
        c.view_policy = policy;
        config_for(&mut c);
        Box::new(TobNode::new(&c, Instant::ZERO).expect("valid config"))
    });
    Run {
        sim,
        history: Rc::new(RefCell::new(History::with_processes(0..n))),
        n,
    }
}

impl Run {
    /// Every node broadcasts `m` messages from time `at`, retried on Full.
    fn broadcast_all(&mut self, m: u32, at: Instant, len: impl Fn(u32) -> usize + Copy + 'static) {
        for node in 0..self.n {
            for k in 0..m {
                let h = self.history.clone();
                let p = payload(node, k, len(k));
                self.sim.app_at(
                    NodeId(node),
                    at,
                    Box::new(
                        move |n: &mut Box<TobNode>, now| match n.broadcast(now, &p) {
                            Ok(_) => {
                                h.borrow_mut().record_broadcast(
                                    node,
                                    CheckId::new(node, u64::from(k)),
                                    p.clone(),
                                );
                                AppResult::Done
                            }
                            Err(Error::Full) => AppResult::Retry,
                            // Excluded from the view: this process is out.
                            Err(Error::NotMember) => AppResult::Done,
                            Err(e) => panic!("broadcast: {e:?}"),
                        },
                    ),
                );
            }
        }
    }

    /// Feeds the deliveries into the history and checks it.
    fn check(&self, crashed: &[u16], checks: Checks) -> (History, Vec<u16>) {
        let mut h = self.history.borrow().clone();
        let mut out: BTreeSet<u16> = crashed.iter().copied().collect();
        for (_, node, ev) in self.sim.events() {
            match ev {
                NodeEvent::Delivered {
                    sn,
                    sender,
                    payload,
                } => {
                    let (s, k) = decode(payload);
                    assert_eq!(s, sender.0, "payload names its sender");
                    h.record_delivery(
                        node.0,
                        Some(*sn),
                        CheckId::new(s, u64::from(k)),
                        payload.clone(),
                    );
                }
                NodeEvent::Excluded => {
                    out.insert(node.0);
                }
                _ => {}
            }
        }
        for c in &out {
            h.record_crash(*c);
        }
        let report = h.check(checks);
        if !report.is_ok() {
            for i in 0..self.n {
                let node = self.sim.node(NodeId(i));
                eprintln!(
                    "node {i}: {:?} rx {} rec {:?}\n   {:?}",
                    node.tob_status(),
                    node.tob_rx_bytes(),
                    node.recovery_state(),
                    node.counters()
                );
                let mut ps: Vec<_> = node.tob_pendings().collect();
                ps.retain(|p| p.2.is_some());
                ps.sort_by_key(|p| p.2);
                eprintln!("   pendings {:?}", &ps[..ps.len().min(12)]);
            }
        }
        assert!(report.is_ok(), "seed run failed:\n{report}");
        (h, out.into_iter().collect())
    }

    fn views_seen(&self, node: u16) -> Vec<(u32, Vec<NodeId>)> {
        self.sim
            .events()
            .iter()
            .filter(|(_, n, _)| n.0 == node)
            .filter_map(|(_, _, e)| match e {
                NodeEvent::ViewChanged { view_id, members } => Some((*view_id, members.clone())),
                _ => None,
            })
            .collect()
    }
}

fn link(loss: f64, dup: f64, reorder: f64) -> LinkConfig {
    LinkConfig {
        latency: Latency::Normal {
            mean: Duration::from_micros(300),
            sd: Duration::from_micros(60),
        },
        loss,
        duplicate: dup,
        reorder,
        ..LinkConfig::default()
    }
}

const ALL: Checks = Checks::ALL;

#[test]
fn every_size_delivers_the_same_sequence_without_faults() {
    for n in 2..=8u16 {
        let mut r = start(
            n,
            u64::from(n),
            link(0.0, 0.0, 0.0),
            ViewPolicy::PrimaryPartition,
        );
        r.broadcast_all(60, Instant::from_millis(1), |k| {
            20 + (k as usize * 37) % 3000
        });
        r.sim.run_until(Instant::from_millis(3000));
        let (h, _) = r.check(&[], ALL);
        for p in 0..n {
            assert_eq!(h.deliveries_of(p).len(), 60 * n as usize, "n={n} p={p}");
        }
    }
}

#[test]
fn loss_duplication_and_reordering_many_seeds() {
    for n in 2..=8u16 {
        for seed in 0..4u64 {
            let loss = [0.01, 0.05, 0.1, 0.02][seed as usize];
            let mut r = start(
                n,
                1000 * u64::from(n) + seed,
                link(loss, 0.1, 0.1),
                ViewPolicy::PrimaryPartition,
            );
            r.broadcast_all(30, Instant::from_millis(1), |k| {
                10 + (k as usize * 131) % 4000
            });
            r.sim.run_until(Instant::from_millis(8000));
            let (h, _) = r.check(&[], ALL);
            for p in 0..n {
                assert_eq!(
                    h.deliveries_of(p).len(),
                    30 * n as usize,
                    "n={n} seed={seed} p={p}"
                );
            }
        }
    }
}

fn crash_run(n: u16, seed: u64, victims: &[(u16, u64)]) -> Run {
    let mut r = start(
        n,
        seed,
        link(0.01, 0.02, 0.02),
        ViewPolicy::PrimaryPartition,
    );
    r.broadcast_all(40, Instant::from_millis(1), |k| {
        50 + (k as usize * 97) % 2000
    });
    for &(v, at) in victims {
        r.sim.crash(NodeId(v), Instant::from_millis(at));
    }
    r.sim.run_until(Instant::from_millis(10_000));
    let crashed: Vec<u16> = victims.iter().map(|v| v.0).collect();
    r.check(&crashed, ALL);
    r
}

#[test]
fn crash_of_a_member_installs_a_view_and_loses_nothing() {
    for n in 3..=6u16 {
        for seed in 0..3 {
            let r = crash_run(n, seed, &[(n - 1, 30 + seed * 20)]);
            let views = r.views_seen(0);
            let last = views.last().expect("a view change");
            assert!(!last.1.contains(&NodeId(n - 1)), "n={n}: {views:?}");
        }
    }
}

#[test]
fn crash_of_the_sequencer_moves_the_role_and_loses_nothing() {
    for n in 3..=6u16 {
        for seed in 0..3 {
            let r = crash_run(n, 100 + seed, &[(0, 25 + seed * 30)]);
            let views = r.views_seen(1);
            let last = views.last().expect("a view change");
            assert_eq!(
                last.1.first(),
                Some(&NodeId(1)),
                "new sequencer is the first of the view"
            );
            assert_eq!(r.sim.node(NodeId(1)).sequencer(), NodeId(1));
        }
    }
}

#[test]
fn a_second_crash_during_the_view_change() {
    for n in 4..=7u16 {
        // The sequencer crashes; the next one crashes while the survivors
        // detect the first (fd_timeout 100 ms) and exchange RECOVER.
        for (seed, gap) in [(1u64, 110u64), (2, 120), (3, 105)] {
            let r = crash_run(n, 200 + seed, &[(0, 40), (1, 40 + gap)]);
            let last = r.views_seen(2).last().cloned().expect("a view change");
            assert_eq!(
                last.1.first(),
                Some(&NodeId(2)),
                "n={n} seed={seed}: {last:?}"
            );
        }
    }
}

#[test]
fn partition_keeps_the_majority_going_and_excludes_the_minority() {
    for seed in 0..3u64 {
        let mut r = start(
            5,
            300 + seed,
            link(0.0, 0.0, 0.0),
            ViewPolicy::PrimaryPartition,
        );
        r.broadcast_all(40, Instant::from_millis(1), |k| {
            30 + (k as usize * 11) % 1000
        });
        let (a, b) = ([NodeId(0), NodeId(1)], [NodeId(2), NodeId(3), NodeId(4)]);
        r.sim.partition(
            &[&a, &b],
            Instant::from_millis(30),
            Instant::from_millis(1500),
        );
        r.sim.run_until(Instant::from_millis(8000));
        let (h, out) = r.check(&[], ALL);
        assert_eq!(out, vec![0, 1], "the minority learns it was left out");
        for p in 2..5 {
            let senders: BTreeSet<u16> = h.deliveries_of(p).iter().map(|d| d.id.sender).collect();
            assert!(
                senders.contains(&4) && senders.contains(&2),
                "majority delivered its own messages"
            );
            assert_eq!(
                h.deliveries_of(p)
                    .iter()
                    .filter(|d| d.id.sender >= 2)
                    .count(),
                120,
                "every majority broadcast delivered at {p}"
            );
        }
    }
}

#[test]
fn random_fault_plans_then_a_quiet_phase_converge() {
    fault_plans(0..12);
    // Seeds that once failed (stuck same-id proposals, mutual suspicion
    // after a partition, an exclusion learnt from a mere proposal).
    for seed in [13, 17, 18, 24, 438, 1044, 1224, 4646, 5927] {
        fault_plans(seed..seed + 1);
    }
}

/// The long soak: `PHASECAST_SEEDS=3000 [PHASECAST_SEED_BASE=12] cargo test --release
/// -p phasecast-core --test total_order -- --ignored` (a failing seed is printed).
#[test]
#[ignore]
fn soak_random_fault_plans() {
    let var = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(d)
    };
    let (base, n) = (var("PHASECAST_SEED_BASE", 12), var("PHASECAST_SEEDS", 300));
    // Run every seed, then report all that failed (each replays alone with
    // PHASECAST_SEED_BASE=<seed> PHASECAST_SEEDS=1).
    let failed: Vec<u64> = (base..base + n)
        .filter(|&seed| std::panic::catch_unwind(|| fault_plans(seed..seed + 1)).is_err())
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {n} seeds failed: {failed:?}",
        failed.len()
    );
}

/// Soak seed 29534 — overlapping view-change attempts: view 514 was
/// installed by one member after two others, having sent their END_RECOVERY
/// for it, moved on to attempt 768 and installed that; 514's forceDeliver
/// skipped a number whose data its union lacked, 768's delivered it (a total
/// order violation). Now a member that leaves an attempt it accepted carries
/// its decision, and a later attempt adopts the highest-ballot decision
/// reported (see `membership`'s module docs).
#[test]
fn overlapping_attempts_adopt_the_decision_an_earlier_one_may_have_installed() {
    fault_plans(29534..29535);
}

/// Soak seed 19003 — liveness: a coordinator that sent END_RECOVERY for its
/// attempt suspected no member of it, while the other members moved to a
/// later attempt that waited for a crashed process; nobody proposed the
/// view that would complete. Now a coordinator whose attempt a member left
/// for a later one that leaves it out takes over (what it accepted travels
/// with it).
#[test]
fn a_coordinator_whose_attempt_its_members_left_takes_over() {
    fault_plans(19003..19004);
}

/// Seeds that broke intermediate versions of the rule above, each a
/// liveness gap of its own: an adopted value followed although it could not
/// have been chosen, and a member that a decision leaves out not answering
/// END_RECOVERY (131, 871, 934, 2225, 2451); END_RECOVERY of an installed
/// view not answered while in a later view change (251); a member left in
/// an attempt whose view others installed not following it (787, 17818,
/// 29251); and a union mixing two values' numberings breaking an origin's
/// FIFO order (18998).
#[test]
fn overlapping_attempts_regressions() {
    for seed in [131, 251, 787, 871, 934, 2225, 2451, 17818, 18998, 29251] {
        fault_plans(seed..seed + 1);
    }
}

fn fault_plans(seeds: std::ops::Range<u64>) {
    for seed in seeds {
        let n = 3 + (seed % 4) as u16;
        let mut r = start(
            n,
            500 + seed,
            link(0.0, 0.0, 0.0),
            ViewPolicy::PrimaryPartition,
        );
        let mut plan = FaultPlan::random(500 + seed, n, Duration::from_millis(1500));
        // Restarted processes rejoin as new processes: checked separately.
        plan.restarts.clear();
        plan.restart_crashed = false;
        plan.loss = plan.loss.min(0.1);
        plan.apply(&mut r.sim);
        r.broadcast_all(25, Instant::from_millis(1), |k| {
            40 + (k as usize * 53) % 2500
        });
        r.sim.run_until(Instant::from_millis(15_000));
        let crashed: Vec<u16> = plan.crashes.iter().map(|c| c.0 .0).collect();
        eprintln!(
            "fault plan seed {seed}: crashes {:?} partitions {:?} cuts {:?}",
            plan.crashes, plan.partitions, plan.cuts
        );
        // Primary partition: a view that lost half its members blocks until
        // they return (exclusions during the fault phase can shrink a view
        // so that a later crash leaves no majority). Such a run must still
        // be safe; liveness (validity, agreement's "eventually") is owed
        // only when a majority of the survivors' view is alive.
        let blocked = (0..n).any(|i| {
            let node = r.sim.node(NodeId(i));
            if !r.sim.is_up(NodeId(i)) || node.is_excluded() {
                return false;
            }
            let (_, members) = node.view();
            let members: Vec<NodeId> = members.collect();
            let alive = members
                .iter()
                .filter(|m| r.sim.is_up(**m) && !r.sim.node(**m).is_excluded())
                .count();
            alive * 2 <= members.len()
        });
        let checks = if blocked {
            eprintln!(
                "  seed {seed}: the primary component lost its majority; checking safety only"
            );
            Checks {
                validity: false,
                agreement: false,
                ..ALL
            }
        } else {
            ALL
        };
        let (_, _) = r.check(&crashed, checks);
    }
}

#[test]
fn a_restarted_process_rejoins_at_a_view_boundary() {
    let mut r = start(4, 77, link(0.0, 0.0, 0.0), ViewPolicy::PrimaryPartition);
    r.broadcast_all(20, Instant::from_millis(1), |_| 100);
    r.sim.crash(NodeId(3), Instant::from_millis(50));
    r.sim.restart(NodeId(3), Instant::from_millis(600));
    r.sim.run_until(Instant::from_millis(3000));
    // Node 3 (new incarnation) is back in the last view.
    let views = r.views_seen(0);
    let last = views.last().expect("views");
    assert!(last.1.contains(&NodeId(3)), "rejoined: {views:?}");
    // Messages broadcast after the join reach it in the same order as the others.
    let start_at = Instant::from_millis(3000);
    for node in 0..4u16 {
        for k in 1000..1010u32 {
            let p = payload(node, k, 64);
            r.sim.app_at(
                NodeId(node),
                start_at,
                Box::new(
                    move |n: &mut Box<TobNode>, now| match n.broadcast(now, &p) {
                        Ok(_) => AppResult::Done,
                        Err(_) => AppResult::Retry,
                    },
                ),
            );
        }
    }
    r.sim.run_until(Instant::from_millis(6000));
    let after = |node: u16| -> Vec<(u16, u32)> {
        r.sim
            .events()
            .iter()
            .filter(|(t, n, _)| n.0 == node && *t >= start_at)
            .filter_map(|(_, _, e)| match e {
                NodeEvent::Delivered { payload, .. } => Some(decode(payload)),
                _ => None,
            })
            .collect()
    };
    let reference = after(0);
    assert_eq!(reference.len(), 40);
    for node in 1..4 {
        assert_eq!(after(node), reference, "node {node}");
    }
}

/// A process that joins learns how application messages are numbered from
/// the members' ACKs: after the join, it delivers every message at the
/// same `sn` as the others (batched or not), also when the traffic that
/// follows the join is one burst and then silence.
#[test]
fn a_joiner_numbers_deliveries_like_the_members() {
    for (seed, burst) in [(77u64, 10u32), (78, 1), (79, 40)] {
        let mut r = start(4, seed, link(0.0, 0.0, 0.0), ViewPolicy::PrimaryPartition);
        r.broadcast_all(20, Instant::from_millis(1), |k| 20 + (k as usize % 7) * 30);
        r.sim.crash(NodeId(3), Instant::from_millis(50));
        r.sim.restart(NodeId(3), Instant::from_millis(600));
        r.sim.run_until(Instant::from_millis(3000));
        let views = r.views_seen(0);
        assert!(
            views.last().is_some_and(|v| v.1.contains(&NodeId(3))),
            "rejoined: {views:?}"
        );
        let start_at = Instant::from_millis(3000);
        for node in 0..4u16 {
            for k in 1000..1000 + burst {
                let p = payload(node, k, 32);
                r.sim.app_at(
                    NodeId(node),
                    start_at,
                    Box::new(
                        move |n: &mut Box<TobNode>, now| match n.broadcast(now, &p) {
                            Ok(_) => AppResult::Done,
                            Err(_) => AppResult::Retry,
                        },
                    ),
                );
            }
        }
        r.sim.run_until(Instant::from_millis(6000));
        let after = |node: u16| -> Vec<(u64, (u16, u32))> {
            r.sim
                .events()
                .iter()
                .filter(|(t, n, _)| n.0 == node && *t >= start_at)
                .filter_map(|(_, _, e)| match e {
                    NodeEvent::Delivered { sn, payload, .. } => Some((*sn, decode(payload))),
                    _ => None,
                })
                .collect()
        };
        let reference = after(0);
        assert_eq!(reference.len(), 4 * burst as usize, "seed {seed}");
        // Consecutive numbers, continuing the numbering before the join.
        let first = reference[0].0;
        assert!(first >= 60, "seed {seed}: {first}");
        for (i, d) in reference.iter().enumerate() {
            assert_eq!(d.0, first + i as u64, "seed {seed}");
        }
        for node in 1..4 {
            assert_eq!(after(node), reference, "seed {seed}, node {node}");
        }
    }
}

/// FastCast's Tables 1–3 through the real protocol: INCR and DECR travel in
/// total order, ACKs by reliable unicast, over a lossy network.
#[test]
fn bandwidth_allocation_end_to_end_reaches_the_papers_states() {
    let mut cfg = SimConfig::new(3, 9);
    cfg.link = link(0.05, 0.05, 0.05);
    cfg.mtu = 2048;
    let members: Vec<NodeId> = (0..3).map(NodeId).collect();
    let mut sim = Sim::new(cfg, move |id, seed| {
        let mut c = Config::new(id, &members);
        c.seed = seed;
        config_for(&mut c);
        // B = 1000 "units" (the paper's Mb/s) scaled to bytes/s.
        c.link_capacity = Some(1_000_000);
        Box::new(TobNode::new(&c, Instant::ZERO).expect("valid config"))
    });
    let op = |amount: u64, incr: bool| -> phasecast_core::sim::AppOp<Box<TobNode>> {
        Box::new(move |n: &mut Box<TobNode>, now| {
            let r = if incr {
                n.increase_bw(now, amount)
            } else {
                n.decrease_bw(now, amount)
            };
            match r {
                Ok(_) => AppResult::Done,
                Err(Error::Busy) | Err(Error::Full) => AppResult::Retry,
                Err(e) => panic!("{e:?}"),
            }
        })
    };
    let bw = |sim: &Sim<Box<TobNode>>| -> Vec<u64> {
        (0..3)
            .map(|i| sim.node(NodeId(i)).current_bw().unwrap())
            .collect()
    };
    // Table 1: p0 increases by 800, p1 by 300.
    sim.app_at(NodeId(0), Instant::from_millis(10), op(800_000, true));
    sim.app_at(NodeId(1), Instant::from_millis(10), op(300_000, true));
    sim.run_until(Instant::from_millis(1000));
    assert_eq!(bw(&sim), vec![700_000, 300_000, 0], "S8");
    // Table 2: p2 increases by 600.
    sim.app_at(NodeId(2), Instant::from_millis(1000), op(600_000, true));
    sim.run_until(Instant::from_millis(2000));
    assert_eq!(bw(&sim), vec![500_000, 300_000, 500_000], "S13");
    // Table 3: p2 decreases by 500.
    sim.app_at(NodeId(2), Instant::from_millis(2000), op(500_000, false));
    sim.run_until(Instant::from_millis(3000));
    assert_eq!(bw(&sim), vec![700_000, 300_000, 100_000], "S16");
    for i in 0..3 {
        let a = sim.node(NodeId(i)).bandwidth().allocation().unwrap();
        assert_eq!(
            a.bw_requirements()[..3],
            [800_000, 300_000, 100_000],
            "bwRequirements at p{i}"
        );
        assert_eq!(a.ongoing_increase(), 0);
    }
    // Every change was reported to the application.
    let changes = sim
        .events()
        .iter()
        .filter(|(_, n, e)| n.0 == 0 && matches!(e, NodeEvent::BandwidthChanged { .. }))
        .count();
    assert!(changes >= 3, "p0 saw {changes} BandwidthChanged events");
}

/// The sequencer numbers its own broadcast when its DATA leaves, not when
/// the application hands it over: numbered while it still waited in the
/// sequencer's rate-limited sink, it held every later number — everybody's
/// delivery — back for as long as the sequencer's own queue (FastCast
/// throughput at N = 8 lost 4 %).
#[test]
fn the_sequencer_numbers_its_own_broadcast_once_its_data_has_left() {
    let members = [NodeId(0), NodeId(1)];
    let mut c = Config::new(NodeId(0), &members);
    config_for(&mut c);
    let mut node = Box::new(TobNode::new(&c, Instant::ZERO).expect("valid config"));
    assert_eq!(node.tob_status().sequencer, NodeId(0));
    let now = Instant::from_millis(1);
    node.broadcast(now, &payload(0, 0, 3000)).expect("accepted");
    assert_eq!(
        node.tob_status().next_sn,
        0,
        "numbered before its data left"
    );
    let mut buf = vec![0u8; 2048];
    let mut datagrams = 0;
    while node.tob_status().next_sn == 0 {
        node.poll_transmit(now, &mut buf)
            .expect("its data is waiting to leave");
        datagrams += 1;
        assert!(
            datagrams <= 3,
            "3000 bytes leave in three 1400-byte datagrams"
        );
    }
    assert_eq!(datagrams, 3, "numbered only with the last slice");
    // The ORDER travels in the datagram that carried the last slice: nothing
    // else is left to send.
    assert!(node.poll_transmit(now, &mut buf).is_err());
}

/// FastCast's Fig. 6 in small: every process broadcasts flat out on
/// 100 Mb/s links with the bandwidth allocation on. Each delivers at least
/// 94 % of the optimum B·N/(N−1) — with 2048-byte datagrams the headers
/// (IP/UDP, frame, DATA record, ACK) leave ~94.7 % — and no origin's sink
/// runs dry. Numbering the sequencer's own broadcasts at acceptance (they
/// then held back everybody's delivery) gave 91.8 %, with 429 of 949
/// datagrams of each other origin leaving with its sink drained; without
/// the token bucket's headroom below the allocation the downlinks run at
/// load 1 and it gave 93.1 %.
#[test]
fn all_broadcasting_flat_out_delivers_near_the_optimum() {
    const LINK: u64 = 100_000_000;
    const MTU: usize = 2048;
    const MSG: usize = 4000;
    let n: u16 = 5;
    let mut cfg = SimConfig::new(n, 11);
    cfg.link = LinkConfig {
        latency: Latency::Constant(Duration::from_micros(50)),
        ..LinkConfig::default()
    };
    cfg.mtu = MTU;
    cfg.uplink_bps = Some(LINK);
    cfg.downlink_bps = Some(LINK);
    // FastCast's availableBW: the line rate less each datagram's IP/UDP header.
    let capacity = LINK / 8 * MTU as u64 / (MTU as u64 + 28);
    let members: Vec<NodeId> = (0..n).map(NodeId).collect();
    // 2 MB of payload storage: the byte budgets cover the bandwidth-delay
    // product with queues.
    type Big = Node<9, 64, 512, 16_384, 65_536, 2048>;
    let mut sim = Sim::new(cfg, move |id, seed| {
        let mut c = Config::new(id, &members);
        c.seed = seed;
        c.mtu = MTU;
        c.tob_window = 64;
        c.tob_rto = Duration::from_millis(5);
        c.link_capacity = Some(capacity);
        c.max_message = 4096;
        Box::new(Big::new(&c, Instant::ZERO).expect("valid config"))
    });
    let end = Instant::from_millis(400);
    for node in 0..n {
        sim.app_at(
            NodeId(node),
            Instant::ZERO,
            Box::new(
                move |nd: &mut Box<Big>, now| match nd.increase_bw(now, capacity) {
                    Ok(_) => AppResult::Done,
                    Err(_) => AppResult::Retry,
                },
            ),
        );
        // More than the link can carry in the run.
        for k in 0..(LINK / 8 / MSG as u64 * 2 / 5) as u32 {
            let p = payload(node, k, MSG);
            sim.app_at(
                NodeId(node),
                Instant::from_millis(1),
                Box::new(move |nd: &mut Box<Big>, now| match nd.broadcast(now, &p) {
                    Ok(_) => AppResult::Done,
                    Err(Error::Full) => AppResult::Retry,
                    Err(e) => panic!("{e:?}"),
                }),
            );
        }
    }
    let from = Instant::from_millis(100);
    sim.run_until(end);
    let mut bytes = vec![0u64; n as usize];
    for (at, node, ev) in sim.events() {
        if let NodeEvent::Delivered { payload, .. } = ev {
            if *at >= from {
                bytes[node.0 as usize] += payload.len() as u64;
            }
        }
    }
    let secs = (end - from).as_micros() as f64 / 1e6;
    let optimum = LINK as f64 / 8.0 * f64::from(n) / f64::from(n - 1);
    for (i, b) in bytes.iter().enumerate() {
        let ratio = *b as f64 / secs / optimum;
        let c = sim.node(NodeId(i as u16)).counters();
        let drained = c.sent_because[SendReason::Drained as usize];
        assert!(
            ratio >= 0.94,
            "node {i}: {:.1} % of the optimum",
            100.0 * ratio
        );
        assert!(
            drained * 20 <= c.frames_sent,
            "node {i}: {drained} of {} datagrams left with the sink drained",
            c.frames_sent
        );
    }
}
