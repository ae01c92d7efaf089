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
//!
//! The harness is `phasecast_core::sim::qsm` (shared with the Python
//! bindings); this binary sweeps it and prints the tables of
//! `docs/BENCHMARKS.md`. `QSM_LOSS_PHASE_MS` moves the loss scenario's drop
//! window; `QSM_DEBUG` prints the counters of receivers that missed
//! something.

use phasecast_core::addr::NodeId;
use phasecast_core::node::{Config, HostNode};
use phasecast_core::sim::qsm::{run, QsmParams, Scenario};
use phasecast_core::time::{Duration, Instant};

const RECEIVERS: u16 = 110;
const MSG: usize = 1000;

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
        Some(a) => a.split(',').filter_map(Scenario::parse).collect(),
        None => vec![Scenario::Undisturbed, Scenario::Sleep, Scenario::Loss],
    };
    // Offered load as a fraction of the window's capacity (RING messages
    // per max(token period, 20 ms)); 0 = as fast as flow control allows.
    let pace: f64 = args.get(5).and_then(|a| a.parse().ok()).unwrap_or(0.0);
    // The phase (337 ms into each second) is off the token phases: aligned
    // with the region token, the drop would hit the burst its
    // acknowledgement releases every time (see BENCHMARKS.md).
    let loss_phase: u64 = std::env::var("QSM_LOSS_PHASE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(337);

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
                let params = QsmParams {
                    receivers: RECEIVERS,
                    groups: g,
                    scenario: sc,
                    token_period: Duration::from_millis(tk),
                    send_for: Duration::from_secs(secs),
                    rate,
                    msg_bytes: MSG,
                    loss_phase: Duration::from_millis(loss_phase),
                    ..QsmParams::default()
                };
                let wall = std::time::Instant::now();
                let o = run(&params);
                let wall_s = wall.elapsed().as_secs_f64();
                if std::env::var_os("QSM_DEBUG").is_some() {
                    for line in &o.debug {
                        eprintln!("{line}");
                    }
                }
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
                    wall_s,
                );
                assert_eq!(
                    o.min_delivered, o.sent,
                    "every receiver delivers every message"
                );
            }
        }
    }
}
