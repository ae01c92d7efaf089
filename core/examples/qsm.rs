//! QSM §5 in the simulator: 1 sender, 110 receivers, 1 KB messages, groups
//! 1 … 8192 with identical membership (one region), undisturbed and in the
//! two §5.3 perturbation scenarios. Reports throughput, token round-trip
//! time, time to acknowledge, messages pending at the sender, and memory.
//!
//! ```text
//! cargo run -p phasecast-core --release --example qsm -- [secs] [token_ms,...] [groups,...] [scenario,...] [pace]
//! ```
//! `pace` is the offered load as a fraction of the window's capacity (0:
//! as fast as flow control allows, in bursts of a window).
//! Defaults: 5 s of sending, tokens every 1000 ms and 50 ms, groups 1, 64,
//! 1024, 8192 for the undisturbed runs; scenarios: none, sleep, loss.

use phasecast_core::addr::{GroupId, NodeId};
use phasecast_core::node::{Config, Error, HostNode};
use phasecast_core::qsm::{GroupView, QsmConfig, RegionView};
use phasecast_core::sim::{AppResult, Latency, LinkConfig, Sim, SimConfig};
use phasecast_core::time::{Duration, Instant};

const RECEIVERS: u16 = 110;
const REGION: GroupId = GroupId(100_000);
const SENDER: NodeId = NodeId(0);
const MSG: usize = 1000;
/// The perturbed receiver of §5.3.
const VICTIM: NodeId = NodeId(57);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scenario {
    Undisturbed,
    /// A receiver sleeps 0.5 s every 5 s (its traffic is held meanwhile).
    Sleep,
    /// A receiver drops all incoming packets for 10 ms every second.
    Loss,
}

struct Outcome {
    sent: u64,
    min_delivered: u64,
    throughput: f64,
    rtt_avg_ms: f64,
    rtt_max_ms: f64,
    prtt_avg_ms: f64,
    ack_avg_ms: f64,
    ack_max_ms: f64,
    pending_avg: f64,
    pending_max: u64,
    forwards: u64,
    remulticasts: u64,
    wall_s: f64,
}

fn run(secs: u64, token_ms: u64, groups: u32, scenario: Scenario, rate: u64) -> Outcome {
    let n = RECEIVERS + 1;
    let mut cfg = SimConfig::new(n, 42);
    cfg.link = LinkConfig::with_latency(Latency::Uniform(
        Duration::from_micros(100),
        Duration::from_micros(200),
    ));
    cfg.uplink_bps = Some(100_000_000);
    cfg.downlink_bps = Some(100_000_000);
    cfg.mtu = 1500;
    cfg.record_events = false;
    let receivers: Vec<NodeId> = (1..=RECEIVERS).map(NodeId).collect();
    let group_views: Vec<GroupView> = (1..=groups)
        .map(|g| GroupView {
            group: GroupId(g),
            regions: 1,
        })
        .collect();
    let qsm = QsmConfig {
        token_period: Duration::from_millis(token_ms),
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

    let end_send = Instant::ZERO + Duration::from_secs(secs);
    match scenario {
        Scenario::Undisturbed => {}
        Scenario::Sleep => {
            let mut t = Duration::from_secs(1);
            while t < Duration::from_secs(secs) {
                let at = Instant::ZERO + t;
                sim.clog(VICTIM, at, at + Duration::from_millis(500));
                t = t + Duration::from_secs(5);
            }
        }
        Scenario::Loss => {
            // The phase (337 ms into each second) is off the token phases:
            // aligned with the region token, the drop would hit the burst
            // its acknowledgement releases every time (see BENCHMARKS.md).
            let phase: u64 = std::env::var("QSM_LOSS_PHASE_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(337);
            let mut t = Duration::from_millis(phase);
            while t < Duration::from_secs(secs) {
                let at = Instant::ZERO + t;
                for from in 0..n {
                    if NodeId(from) != VICTIM {
                        sim.cut(NodeId(from), VICTIM, at, at + Duration::from_millis(10));
                    }
                }
                t = t + Duration::from_secs(1);
            }
        }
    }

    // The sender multicasts as fast as flow control lets it (`rate` 0), or
    // paced at `rate` messages a second, round robin over the groups, until
    // `end_send`; `Full` (flow control) makes it wait.
    let start = Instant::ZERO + Duration::from_millis(1);
    if let Some(gap_us) = 1_000_000u64.checked_div(rate) {
        // One operation per message at its time; `Full` holds the queue.
        let count = secs * 1_000_000 / gap_us.max(1);
        for i in 0..count {
            sim.app_at(
                SENDER,
                start + Duration::from_micros(i * gap_us),
                Box::new(move |node: &mut Box<HostNode>, now| {
                    if now >= end_send {
                        return AppResult::Done;
                    }
                    let mut p = [0u8; MSG];
                    p[..8].copy_from_slice(&i.to_be_bytes());
                    let g = GroupId(1 + (i % u64::from(groups)) as u32);
                    match node.multicast(now, g, &p) {
                        Ok(_) => AppResult::Done,
                        Err(Error::Full) => AppResult::Retry,
                        Err(e) => panic!("multicast: {e:?}"),
                    }
                }),
            );
        }
    } else {
        let mut i: u64 = 0;
        sim.app_at(
            SENDER,
            start,
            Box::new(move |node: &mut Box<HostNode>, now| {
                if now >= end_send {
                    return AppResult::Done;
                }
                let mut p = [0u8; MSG];
                loop {
                    p[..8].copy_from_slice(&i.to_be_bytes());
                    let g = GroupId(1 + (i % u64::from(groups)) as u32);
                    match node.multicast(now, g, &p) {
                        Ok(_) => i += 1,
                        Err(Error::Full) => return AppResult::Retry,
                        Err(e) => panic!("multicast: {e:?}"),
                    }
                }
            }),
        );
    }

    let wall = std::time::Instant::now();
    let step = Duration::from_millis(50);
    let mut t = Instant::ZERO;
    let (mut samples, mut pending_sum, mut pending_max) = (0u64, 0u64, 0u64);
    while t < end_send {
        t += step;
        sim.run_until(t);
        let p = sim.node(SENDER).qsm_pending();
        samples += 1;
        pending_sum += p;
        pending_max = pending_max.max(p);
    }
    let sent_by_end = sim.node(SENDER).qsm_stats().multicasts;
    // Drain: let recovery and acknowledgement finish.
    sim.run_until(end_send + Duration::from_millis(4 * token_ms + 2000));
    let s = *sim.node(SENDER).qsm_stats();
    let min_delivered = receivers
        .iter()
        .map(|r| sim.node(*r).qsm_stats().delivered)
        .min()
        .unwrap_or(0);
    if std::env::var_os("QSM_DEBUG").is_some() {
        for r in &receivers {
            let st = sim.node(*r).qsm_stats();
            if st.delivered < s.multicasts || st.no_sink > 0 || st.dropped > 0 {
                eprintln!("node {}: {st:?}", r.0);
            }
        }
        eprintln!("sender: {s:?}");
    }
    let leader = *sim.node(NodeId(1)).qsm_stats();
    let forwards = receivers
        .iter()
        .map(|r| sim.node(*r).qsm_stats().forwards)
        .sum();
    Outcome {
        sent: s.multicasts,
        min_delivered,
        throughput: sent_by_end as f64 / secs as f64,
        rtt_avg_ms: leader.rtt_sum_us as f64 / leader.rounds.max(1) as f64 / 1000.0,
        rtt_max_ms: leader.rtt_max_us as f64 / 1000.0,
        prtt_avg_ms: leader.partition_rtt_sum_us as f64
            / leader.partition_rounds.max(1) as f64
            / 1000.0,
        ack_avg_ms: s.ack_latency_sum_us as f64 / s.acked.max(1) as f64 / 1000.0,
        ack_max_ms: s.ack_latency_max_us as f64 / 1000.0,
        pending_avg: pending_sum as f64 / samples.max(1) as f64,
        pending_max,
        forwards,
        remulticasts: s.remulticasts,
        wall_s: wall.elapsed().as_secs_f64(),
    }
}

fn list<T: std::str::FromStr + Clone>(arg: Option<&String>, default: &[T]) -> Vec<T> {
    match arg {
        Some(a) => a.split(',').filter_map(|x| x.parse().ok()).collect(),
        None => default.to_vec(),
    }
}

fn main() {
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(real_main)
        .expect("thread")
        .join()
        .expect("main");
}

fn real_main() {
    let args: Vec<String> = std::env::args().collect();
    let secs: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let tokens: Vec<u64> = list(args.get(2), &[1000, 50]);
    let groups: Vec<u32> = list(args.get(3), &[1, 64, 1024, 8192]);
    let scenarios: Vec<Scenario> = match args.get(4) {
        Some(a) => a
            .split(',')
            .filter_map(|x| match x {
                "none" => Some(Scenario::Undisturbed),
                "sleep" => Some(Scenario::Sleep),
                "loss" => Some(Scenario::Loss),
                _ => None,
            })
            .collect(),
        None => vec![Scenario::Undisturbed, Scenario::Sleep, Scenario::Loss],
    };
    // Offered load as a fraction of the window's capacity (RING messages
    // per max(token period, 20 ms)); 0 = as fast as flow control allows.
    let pace: f64 = args.get(5).and_then(|a| a.parse().ok()).unwrap_or(0.0);

    let probe = {
        let members = [NodeId(0)];
        Box::new(HostNode::new(&Config::new(NodeId(0), &members), Instant::ZERO).expect("node"))
    };
    let m = probe.qsm_memory();
    println!(
        "memory: HostNode {} B; QSM state {} B = groups {} x {} B + regions {} x {} B + streams {} x {} B + work queues {} B",
        core::mem::size_of::<HostNode>(),
        m.total,
        m.groups,
        m.per_group,
        phasecast_core::qsm::MAX_REGIONS,
        m.per_region,
        phasecast_core::qsm::MAX_STREAMS,
        m.per_stream,
        m.work_queues,
    );
    println!(
        "1 sender, {RECEIVERS} receivers, {MSG} B messages, 100 Mbit/s links, {secs} s of sending, pace {pace}"
    );
    println!("| scenario | token period | groups | msgs/s | partition token RTT avg ms | region token RTT avg/max ms | time to ack avg/max ms | pending avg/max | forwards | re-multicasts | delivered (min over receivers) / sent | wall s |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for &sc in &scenarios {
        for &tk in &tokens {
            let gs: Vec<u32> = if sc == Scenario::Undisturbed {
                groups.clone()
            } else {
                vec![*groups.last().unwrap_or(&1)]
            };
            for &g in &gs {
                let rate = (pace * 256.0 * 1000.0 / tk.max(20) as f64) as u64;
                let o = run(secs, tk, g, sc, rate);
                println!(
                    "| {sc:?} | {tk} ms | {g} | {:.0} | {:.1} | {:.1} / {:.1} | {:.1} / {:.1} | {:.0} / {} | {} | {} | {} / {} | {:.1} |",
                    o.throughput,
                    o.prtt_avg_ms,
                    o.rtt_avg_ms,
                    o.rtt_max_ms,
                    o.ack_avg_ms,
                    o.ack_max_ms,
                    o.pending_avg,
                    o.pending_max,
                    o.forwards,
                    o.remulticasts,
                    o.min_delivered,
                    o.sent,
                    o.wall_s,
                );
                assert_eq!(
                    o.min_delivered, o.sent,
                    "every receiver delivers every message"
                );
            }
        }
    }
}
