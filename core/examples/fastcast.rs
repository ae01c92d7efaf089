//! FastCast's evaluation (§4) on the deterministic simulator:
//!
//! * `throughput`: every process broadcasts 10 kB messages flat out on
//!   942 Mb/s links; delivered throughput per process against the optimum
//!   B·N/(N−1) (Fig. 6), with bandwidth allocation on.
//! * `latency`: one sender at 1 Mb/s; broadcast-to-delivery latency (Fig. 8).
//! * `incr`: time from `increase_bw` to the increase taking effect, in RTTs.
//!
//! `cargo run --release -p phasecast-core --example fastcast -- throughput|latency|incr|all`
//!
//! Throughput knobs (environment): `FC_N`, `FC_MTU` select runs; `FC_MS`
//! and `FC_FROM` set the end of the run and the start of the measured
//! window (ms, default 600 and 100); `FC_DEBUG=1` prints per-node counters
//! over the window and the delivery latency; `FC_TRACE=<ms>` samples
//! acknowledgements and downlink queues for 20 ms from there.

use phasecast_core::sim::{AppResult, Latency, LinkConfig, NodeEvent, Sim, SimConfig};
use phasecast_core::{Config, Duration, Error, Instant, Node, NodeId};

/// 8 MiB of payload storage (the window must cover the bandwidth-delay
/// product of a loaded gigabit cluster), 9000-byte datagrams (jumbo frames).
type BenchNode = Node<9, 256, 1024, 65_000, 262_144, 9000>;

const LINK_BPS: u64 = 942_000_000;
const ONE_WAY: Duration = Duration::from_micros(50);

fn sim(n: u16, seed: u64, mtu: usize, link_capacity: Option<u64>) -> Sim<Box<BenchNode>> {
    let mut cfg = SimConfig::new(n, seed);
    cfg.link = LinkConfig {
        latency: Latency::Constant(ONE_WAY),
        ..LinkConfig::default()
    };
    cfg.uplink_bps = Some(LINK_BPS);
    cfg.downlink_bps = Some(LINK_BPS);
    cfg.mtu = mtu;
    cfg.record_events = true;
    let members: Vec<NodeId> = (0..n).map(NodeId).collect();
    Sim::new(cfg, move |id, seed| {
        let mut c = Config::new(id, &members);
        c.seed = seed;
        c.mtu = mtu;
        c.tob_window = 128;
        c.tob_rto = Duration::from_millis(5);
        c.link_capacity = link_capacity;
        c.max_message = 65536;
        Box::new(BenchNode::new(&c, Instant::ZERO).expect("valid config"))
    })
}

fn stamp(at: Instant, len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len.max(8)];
    p[..8].copy_from_slice(&at.as_micros().to_be_bytes());
    p
}

fn throughput(n: u16, mtu: usize) -> (f64, f64) {
    // FastCast's availableBW: what a link carries in datagrams of this size,
    // i.e. the line rate less the IP/UDP header of each datagram.
    let capacity = LINK_BPS / 8 * mtu as u64 / (mtu as u64 + 28);
    let mut s = sim(n, 1, mtu, Some(capacity));
    for node in 0..n {
        s.app_at(
            NodeId(node),
            Instant::ZERO,
            Box::new(
                move |nd: &mut Box<BenchNode>, now| match nd.increase_bw(now, capacity) {
                    Ok(_) => AppResult::Done,
                    Err(_) => AppResult::Retry,
                },
            ),
        );
    }
    let ms: u64 = std::env::var("FC_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    let duration = Duration::from_millis(ms);
    let per_node = (LINK_BPS as usize / 8 * ms as usize / 1000) / 10_000 + 50;
    for node in 0..n {
        for _ in 0..per_node {
            s.app_at(
                NodeId(node),
                Instant::from_millis(1),
                Box::new(move |nd: &mut Box<BenchNode>, now| {
                    match nd.broadcast(now, &stamp(now, 10_000)) {
                        Ok(_) => AppResult::Done,
                        Err(Error::Full) => AppResult::Retry,
                        Err(e) => panic!("{e:?}"),
                    }
                }),
            );
        }
    }
    let (from, to) = (
        Instant::from_millis(
            std::env::var("FC_FROM")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(100),
        ),
        Instant::ZERO + duration,
    );
    if let Ok(v) = std::env::var("FC_TRACE") {
        // FC_TRACE=<ms>: where the 20 ms of samples start (default 300).
        s.run_until(Instant::from_millis(v.parse().unwrap_or(300)));
        for _ in 0..200 {
            s.run_for(Duration::from_micros(100));
            let st = s.node(NodeId(1)).tob_status();
            let st0 = s.node(NodeId(0)).tob_status();
            let (q, b) = s.downlink_backlog(NodeId(1));
            let (q0, b0) = s.downlink_backlog(NodeId(0));
            eprintln!(
                "{} n1: out {} nd {} known {} order {} minack {} down {}/{}µs | n0: out {} next_sn {} nd {} down {}/{}µs frames {}",
                s.now().as_micros(), st.outstanding, st.next_deliver, st.known_end, st.order_end, st.min_ack, q, b.as_micros(),
                st0.outstanding, st0.next_sn, st0.next_deliver, q0, b0.as_micros(), s.node(NodeId(1)).counters().frames_sent
            );
        }
    }
    s.run_until(from);
    let at_from = s.stats().clone();
    let node_from: Vec<_> = (0..n)
        .map(|i| s.node(NodeId(i)).counters().clone())
        .collect();
    s.run_until(to);
    let mut bytes = vec![0u64; n as usize];
    let mut lat: Vec<u64> = Vec::new();
    for (at, node, ev) in s.events() {
        if let NodeEvent::Delivered { payload, .. } = ev {
            if *at >= from && *at < to {
                bytes[node.0 as usize] += payload.len() as u64;
                let sent = u64::from_be_bytes(payload[..8].try_into().expect("8 bytes"));
                lat.push(at.as_micros() - sent);
            }
        }
    }
    let secs = (to - from).as_micros() as f64 / 1e6;
    if std::env::var("FC_DEBUG").is_ok() {
        eprintln!("node size: {} bytes", std::mem::size_of::<BenchNode>());
        for i in 0..n {
            let nd = s.node(NodeId(i));
            eprintln!(
                "n{i} bw {:?} {:?} {:?}",
                nd.current_bw(),
                nd.counters(),
                nd.tob_status()
            );
        }
        eprintln!("{:?}", s.stats().total);
        for i in 0..n as usize {
            let c0 = &at_from.per_node[i];
            let c1 = &s.stats().per_node[i];
            let c = phasecast_core::sim::Counters {
                sent_payload_bytes: c1.sent_payload_bytes - c0.sent_payload_bytes,
                sent_header_bytes: c1.sent_header_bytes - c0.sent_header_bytes,
                sent_multicast: c1.sent_multicast - c0.sent_multicast,
                sent_unicast: c1.sent_unicast - c0.sent_unicast,
                received_payload_bytes: c1.received_payload_bytes - c0.received_payload_bytes,
                received_header_bytes: c1.received_header_bytes - c0.received_header_bytes,
                ..Default::default()
            };
            eprintln!(
                "n{i} sent {} B (+{} hdr) in {} mc {} uc; received {} B (+{} hdr) = {:.1} % of the downlink",
                c.sent_payload_bytes,
                c.sent_header_bytes,
                c.sent_multicast,
                c.sent_unicast,
                c.received_payload_bytes,
                c.received_header_bytes,
                100.0 * (c.received_payload_bytes + c.received_header_bytes) as f64 * 8.0
                    / (LINK_BPS as f64 * secs)
            );
        }
        for (i, a) in node_from.iter().enumerate() {
            let b = s.node(NodeId(i as u16)).counters();
            eprintln!(
                "n{i} window: accepted {} delivered {} frames sent {} recv {} records sent {} recv {} bytes recv {} retrans {} refused {}",
                b.messages_accepted - a.messages_accepted,
                b.messages_delivered - a.messages_delivered,
                b.frames_sent - a.frames_sent,
                b.frames_received - a.frames_received,
                b.records_sent - a.records_sent,
                b.records_received - a.records_received,
                b.bytes_received - a.bytes_received,
                b.retransmissions - a.retransmissions,
                b.refused_full - a.refused_full
            );
        }
        lat.sort_unstable();
        if !lat.is_empty() {
            eprintln!(
                "delivery latency (broadcast call to delivery, µs): p50 {} p99 {} max {}",
                lat[lat.len() / 2],
                lat[lat.len() * 99 / 100],
                lat[lat.len() - 1]
            );
        }
    }
    let mean = bytes.iter().sum::<u64>() as f64 / n as f64 * 8.0 / secs / 1e6;
    let optimum = LINK_BPS as f64 / 1e6 * n as f64 / (n as f64 - 1.0);
    (mean, optimum)
}

fn latency(n: u16) -> (f64, f64) {
    let mut s = sim(n, 2, 1500, None);
    // One sender, 1000-byte messages at 1 Mb/s: one every 8 ms, for 2 s.
    for k in 0..250u64 {
        let at = Instant::from_millis(10 + 8 * k);
        s.app_at(
            NodeId(0),
            at,
            Box::new(move |nd: &mut Box<BenchNode>, now| {
                match nd.broadcast(now, &stamp(now, 1000)) {
                    Ok(_) => AppResult::Done,
                    Err(_) => AppResult::Retry,
                }
            }),
        );
    }
    s.run_until(Instant::from_millis(2200));
    let mut lat: Vec<u64> = Vec::new();
    for (at, _, ev) in s.events() {
        if let NodeEvent::Delivered { payload, .. } = ev {
            let sent = u64::from_be_bytes(payload[..8].try_into().expect("8 bytes"));
            lat.push(at.as_micros() - sent);
        }
    }
    lat.sort_unstable();
    let mean = lat.iter().sum::<u64>() as f64 / lat.len() as f64 / 1000.0;
    let p99 = lat[lat.len() * 99 / 100] as f64 / 1000.0;
    (mean, p99)
}

fn incr() -> f64 {
    let capacity = LINK_BPS / 8;
    let mut s = sim(3, 3, 1500, Some(capacity));
    let at = Instant::from_millis(10);
    s.app_at(
        NodeId(0),
        at,
        Box::new(
            move |nd: &mut Box<BenchNode>, now| match nd.increase_bw(now, capacity / 2) {
                Ok(_) => AppResult::Done,
                Err(_) => AppResult::Retry,
            },
        ),
    );
    s.run_until(Instant::from_millis(100));
    let done = s
        .events()
        .iter()
        .find(|(_, n, e)| {
            n.0 == 0 && matches!(e, NodeEvent::BandwidthChanged { current } if *current > 0)
        })
        .map(|(t, _, _)| *t)
        .expect("the increase took effect");
    let rtt = 2.0 * ONE_WAY.as_micros() as f64;
    (done - at).as_micros() as f64 / rtt
}

fn main() {
    let what = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    // Nodes are built on the stack before they are boxed: give them room.
    let h = std::thread::Builder::new()
        .stack_size(512 << 20)
        .spawn(move || {
            if what == "throughput" || what == "all" {
                println!("throughput, 942 Mb/s links, 10 kB messages, all processes broadcasting, allocation on");
                println!("| N | MTU | delivered Mb/s per process | optimum B·N/(N−1) | ratio |");
                println!("| --- | --- | --- | --- | --- |");
                let only_n: Option<u16> = std::env::var("FC_N").ok().and_then(|v| v.parse().ok());
                let only_mtu: Option<usize> =
                    std::env::var("FC_MTU").ok().and_then(|v| v.parse().ok());
                for mtu in [9000usize, 1500] {
                    if only_mtu.is_some_and(|m| m != mtu) {
                        continue;
                    }
                    for n in 2..=8u16 {
                        if only_n.is_some_and(|x| x != n) {
                            continue;
                        }
                        let (got, opt) = throughput(n, mtu);
                        println!("| {n} | {mtu} | {got:.0} | {opt:.0} | {:.1} % |", 100.0 * got / opt);
                    }
                }
            }
            if what == "latency" || what == "all" {
                println!("\nlatency, one sender at 1 Mb/s (1000-byte messages), 50 µs one-way links");
                println!("| N | mean ms | p99 ms |");
                println!("| --- | --- | --- |");
                for n in 2..=8u16 {
                    let (mean, p99) = latency(n);
                    println!("| {n} | {mean:.3} | {p99:.3} |");
                }
            }
            if what == "incr" || what == "all" {
                println!("\nINCR to effect: {:.1} RTTs (RTT = {} µs)", incr(), 2 * ONE_WAY.as_micros());
            }
        })
        .expect("thread");
    h.join().expect("bench thread");
}
