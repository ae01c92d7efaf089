//! Omaha §4 on phasecast: the multi-application Paxos workload in the
//! simulator, bandwidth saving and latency degradation against no
//! aggregation (see `phasecast_core::sim::paxos`).
//!
//! ```text
//! cargo run --release -p phasecast-core --example omaha -- [table1|table3|loss|policies|all] [instances]
//! ```
//! `table1` prints Tables 1 and 2 (one grid of runs gives both).

use phasecast_core::sim::paxos::{compare, PaxosComparison, PaxosParams};
use phasecast_core::{Aggregation, Duration};

const LOADS: [(&str, f64); 3] = [("Low", 2.0), ("Medium", 5.0), ("High", 10.0)];

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

fn params(load: f64, instances: u32) -> PaxosParams {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u16>().ok());
    let d = PaxosParams::default();
    PaxosParams {
        load,
        instances,
        apps: env("PAXOS_APPS").unwrap_or(d.apps),
        app_size: env("PAXOS_APP_SIZE").unwrap_or(d.app_size),
        ip_header: env("PAXOS_IP_HEADER").map_or(d.ip_header, usize::from),
        ..d
    }
}

fn rtt_frac(f: f64) -> Duration {
    Duration::from_micros((60_000.0 * f) as u64)
}

fn table1(instances: u32) {
    let probas: Vec<f32> = (1..=10).map(|k| k as f32 / 10.0).collect();
    let mut grid: Vec<Vec<PaxosComparison>> = Vec::new();
    for (_, load) in LOADS {
        grid.push(
            probas
                .iter()
                .map(|&p| {
                    compare(&PaxosParams {
                        proba_buf: p,
                        timeout: rtt_frac(1.0),
                        ..params(load, instances)
                    })
                })
                .collect(),
        );
    }
    let head: Vec<String> = probas.iter().map(|p| format!("{:.0}", p * 100.0)).collect();
    println!("Table 1: bandwidth saving (timeout = RTT)\n");
    println!("| Load \\ probaBuf % | {} |", head.join(" | "));
    println!("|---|{}", "---|".repeat(head.len()));
    for ((name, _), row) in LOADS.iter().zip(&grid) {
        let cells: Vec<String> = row.iter().map(|c| pct(c.bandwidth_saving)).collect();
        println!("| {name} | {} |", cells.join(" | "));
    }
    println!("\nTable 2: latency degradation (timeout = RTT)\n");
    println!("| Load \\ probaBuf % | {} |", head.join(" | "));
    println!("|---|{}", "---|".repeat(head.len()));
    for ((name, _), row) in LOADS.iter().zip(&grid) {
        let cells: Vec<String> = row.iter().map(|c| pct(c.latency_degradation)).collect();
        println!("| {name} | {} |", cells.join(" | "));
    }
    let b = &grid[2][9].baseline;
    println!(
        "\nBaseline at high load: mean latency {:.1} ms (p99 {:.1}), {} datagrams, {} messages, measured concurrency {:.1}\n",
        b.mean_latency_ms, b.p99_latency_ms, b.datagrams, b.messages, b.concurrency
    );
}

fn table3(instances: u32) {
    let timeouts = [
        ("RTT/4", 0.25),
        ("RTT/2", 0.5),
        ("RTT", 1.0),
        ("1.2RTT", 1.2),
    ];
    let mut grid = Vec::new();
    for (_, load) in LOADS {
        grid.push(
            timeouts
                .iter()
                .map(|&(_, f)| {
                    compare(&PaxosParams {
                        proba_buf: 0.9,
                        timeout: rtt_frac(f),
                        ..params(load, instances)
                    })
                })
                .collect::<Vec<_>>(),
        );
    }
    let head: Vec<&str> = timeouts.iter().map(|t| t.0).collect();
    for (title, f) in [
        ("Table 3(a): bandwidth saving (probaBuf = 90 %)", 0),
        ("Table 3(b): latency degradation (probaBuf = 90 %)", 1),
    ] {
        println!("{title}\n");
        println!("| Load \\ timeout | {} |", head.join(" | "));
        println!("|---|{}", "---|".repeat(head.len()));
        for ((name, _), row) in LOADS.iter().zip(&grid) {
            let cells: Vec<String> = row
                .iter()
                .map(|c| {
                    pct(if f == 0 {
                        c.bandwidth_saving
                    } else {
                        c.latency_degradation
                    })
                })
                .collect();
            println!("| {name} | {} |", cells.join(" | "));
        }
        println!();
    }
}

fn loss(instances: u32) {
    println!("§4.4: unreliable network (high load, probaBuf = 100 %, timeout = RTT; baseline has the same loss)\n");
    println!("| loss | saving | degradation | mean latency ms (baseline → Omaha) | p99 ms (baseline → Omaha) |");
    println!("|---|---|---|---|---|");
    for l in [0.0, 0.01, 0.05, 0.10] {
        let c = compare(&PaxosParams {
            loss: l,
            proba_buf: 1.0,
            timeout: rtt_frac(1.0),
            ..params(10.0, instances)
        });
        println!(
            "| {:.0}% | {} | {} | {:.1} → {:.1} | {:.1} → {:.1} |",
            l * 100.0,
            pct(c.bandwidth_saving),
            pct(c.latency_degradation),
            c.baseline.mean_latency_ms,
            c.policy.mean_latency_ms,
            c.baseline.p99_latency_ms,
            c.policy.p99_latency_ms
        );
    }
    println!();
}

fn policies(instances: u32) {
    println!("Policies at high load: saving / degradation (frontier)\n");
    println!("| policy | parameters | saving | degradation (leader decides) | degradation (other members learn) |");
    println!("|---|---|---|---|---|");
    let row = |name: &str, desc: String, p: PaxosParams| {
        let c = compare(&p);
        println!(
            "| {name} | {desc} | {} | {} | {} |",
            pct(c.bandwidth_saving),
            pct(c.latency_degradation),
            pct(c.policy.learner_latency_ms / c.baseline.learner_latency_ms - 1.0)
        );
    };
    for f in [0.05, 0.1, 0.25, 0.5] {
        row(
            "time-based",
            format!("timeout {f} RTT"),
            PaxosParams {
                aggregation: Aggregation::TimeBased,
                timeout: rtt_frac(f),
                ..params(10.0, instances)
            },
        );
    }
    for (p, f) in [(0.5, 1.0), (0.9, 1.0), (1.0, 1.0), (1.0, 1.2)] {
        row(
            "Omaha",
            format!("probaBuf {:.0} %, timeout {f} RTT", p * 100.0),
            PaxosParams {
                aggregation: Aggregation::Omaha,
                proba_buf: p,
                timeout: rtt_frac(f),
                ..params(10.0, instances)
            },
        );
    }
    for f in [0.5, 1.0, 2.0] {
        row(
            "Criticality",
            format!("timeout {f} RTT"),
            PaxosParams {
                aggregation: Aggregation::Criticality,
                timeout: rtt_frac(f),
                ..params(10.0, instances)
            },
        );
    }
    for h in [0.1, 0.25, 0.5, 0.75, 1.0] {
        row(
            "Horizon",
            format!("horizon {h} RTT, probaBuf 100 %, timeout RTT"),
            PaxosParams {
                aggregation: Aggregation::Horizon {
                    horizon: rtt_frac(h),
                },
                proba_buf: 1.0,
                timeout: rtt_frac(1.0),
                ..params(10.0, instances)
            },
        );
    }
    println!();
}

fn main() {
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_else(|| "all".into());
    let instances: u32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(3000);
    println!(
        "15 nodes, 5 applications of 7 nodes, RTT N(60 ms, 6 ms), {instances} instances (first 100 discarded), IP/UDP header 28 B per datagram\n"
    );
    match what.as_str() {
        "table1" => table1(instances),
        "table3" => table3(instances),
        "loss" => loss(instances),
        "policies" => policies(instances),
        _ => {
            table1(instances);
            table3(instances);
            loss(instances);
            policies(instances);
        }
    }
}
