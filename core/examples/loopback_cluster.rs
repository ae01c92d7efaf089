//! `make demo`: a cluster of three phasecast nodes on loopback, each in its
//! own thread with its own UDP socket, broadcasting in uniform total order.
//!
//! Two runs of a few seconds each. In the first a member that is not the
//! sequencer crashes half way; in the second the sequencer does. The
//! heartbeat failure detector suspects it, the survivors change view
//! (RECOVER / ACK_RECOVER / END_RECOVERY), the next member becomes the
//! sequencer, and numbering goes on. The report gives delivered messages per
//! second, broadcast-to-delivery latency, datagrams and bytes on the wire,
//! the views seen — and checks that the survivors delivered the very same
//! sequence and that the crashed node's sequence is a prefix of it (uniform
//! agreement): it prints `identical` or fails loudly.
//!
//! It shows the host loop every binding follows: feed datagrams and the time
//! in, drain `poll_transmit` and `poll_event`, wake at `poll_timeout`.

use phasecast_core::{
    Config, Destination, Duration as CoreDuration, Event, HostNode, Instant as CoreInstant, NodeId,
};
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const NODES: u16 = 3;
const SEND_FOR: Duration = Duration::from_millis(2500);
const SETTLE: Duration = Duration::from_millis(1500);
const CRASH_AT: Duration = Duration::from_millis(1200);

#[derive(Default)]
struct Report {
    id: u16,
    crashed: bool,
    delivered: Vec<(u64, u16, u32)>,
    latencies_us: Vec<u64>,
    views: Vec<(u32, Vec<u16>)>,
    datagrams: u64,
    bytes: u64,
    records_per_datagram: f64,
    broadcasts: u32,
}

fn payload(sender: u16, counter: u32, sent_us: u64) -> Vec<u8> {
    let len = if counter % 8 == 7 { 2000 } else { 100 };
    let mut p = vec![0u8; len];
    p[0..2].copy_from_slice(&sender.to_be_bytes());
    p[2..6].copy_from_slice(&counter.to_be_bytes());
    p[6..14].copy_from_slice(&sent_us.to_be_bytes());
    p
}

fn run_node(
    id: u16,
    socket: UdpSocket,
    addrs: Vec<SocketAddr>,
    start: Arc<Barrier>,
    crash: Arc<AtomicBool>,
) -> Report {
    let members: Vec<NodeId> = (0..NODES).map(NodeId).collect();
    let mut cfg = Config::new(NodeId(id), &members);
    cfg.seed = 0x5eed ^ u64::from(id);
    cfg.heartbeat = Some(CoreDuration::from_millis(20));
    cfg.fd_timeout = Some(CoreDuration::from_millis(300));
    cfg.tob_rto = CoreDuration::from_millis(10);
    cfg.tob_window = 64;
    let epoch = Instant::now();
    let now = || CoreInstant::from_micros(epoch.elapsed().as_micros() as u64);
    let mut node: Box<HostNode> = Box::new(HostNode::new(&cfg, now()).expect("valid config"));
    socket
        .set_read_timeout(Some(Duration::from_micros(500)))
        .expect("socket timeout");
    let mut buf = vec![0u8; node.mtu()];
    let mut rx = vec![0u8; 65536];
    let mut r = Report {
        id,
        ..Report::default()
    };
    start.wait();
    let started = Instant::now();
    let mut counter = 0u32;
    loop {
        let elapsed = started.elapsed();
        if crash.load(Ordering::Relaxed) && elapsed >= CRASH_AT {
            r.crashed = true;
            break; // the process dies: no goodbye, no more datagrams
        }
        if elapsed >= SEND_FOR + SETTLE {
            break;
        }
        // Application: broadcast while the window lets us (Full is backpressure).
        if elapsed < SEND_FOR {
            for _ in 0..32 {
                let p = payload(id, counter, now().as_micros());
                if node.broadcast(now(), &p).is_err() {
                    break;
                }
                counter += 1;
            }
        }
        // Datagrams in (blocking briefly: this is the loop's sleep).
        let mut first = true;
        loop {
            if !first {
                socket.set_nonblocking(true).ok();
            }
            let got = socket.recv_from(&mut rx);
            if !first {
                socket.set_nonblocking(false).ok();
            }
            first = false;
            match got {
                Ok((len, src)) => {
                    if let Some(from) = addrs.iter().position(|a| *a == src) {
                        let _ = node.handle_datagram(now(), NodeId(from as u16), &mut rx[..len]);
                    }
                }
                Err(_) => break,
            }
        }
        if node.poll_timeout().is_some_and(|t| t <= now()) {
            node.handle_timeout(now());
        }
        // Datagrams out: the cluster group is a unicast fan-out here.
        while let Ok(tx) = node.poll_transmit(now(), &mut buf) {
            match tx.destination {
                Destination::Peer(p) => {
                    let _ = socket.send_to(&buf[..tx.len], addrs[p.0 as usize]);
                }
                Destination::Group(_) => {
                    for (i, a) in addrs.iter().enumerate() {
                        if i != id as usize {
                            let _ = socket.send_to(&buf[..tx.len], a);
                        }
                    }
                }
            }
        }
        // Events out.
        while let Some(ev) = node.poll_event() {
            match ev {
                Event::Delivered {
                    sn,
                    sender,
                    payload,
                } => {
                    let counter = u32::from_be_bytes(payload[2..6].try_into().expect("4 bytes"));
                    r.delivered.push((sn, sender.0, counter));
                    if sender.0 == id {
                        let sent = u64::from_be_bytes(payload[6..14].try_into().expect("8 bytes"));
                        r.latencies_us.push(now().as_micros().saturating_sub(sent));
                    }
                }
                Event::ViewChanged { view_id, members } => {
                    r.views.push((view_id, members.iter().collect()))
                }
                _ => {}
            }
        }
    }
    let c = node.counters();
    r.datagrams = c.frames_sent;
    r.bytes = c.bytes_sent;
    r.records_per_datagram = c.records_per_frame_milli() as f64 / 1000.0;
    r.broadcasts = counter;
    r
}

fn percentile(v: &mut [u64], p: usize) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_unstable();
    v[(v.len() * p / 100).min(v.len() - 1)] as f64 / 1000.0
}

fn hash_of(seq: &[(u64, u16, u32)]) -> u64 {
    let mut h = DefaultHasher::new();
    seq.hash(&mut h);
    h.finish()
}

/// One run; returns whether the survivors agree.
fn run(title: &str, victim: u16) -> bool {
    println!(
        "\n== {title}: node {victim} crashes after {} ms ==",
        CRASH_AT.as_millis()
    );
    let sockets: Vec<UdpSocket> = (0..NODES)
        .map(|_| UdpSocket::bind("127.0.0.1:0").expect("bind loopback"))
        .collect();
    let addrs: Vec<SocketAddr> = sockets
        .iter()
        .map(|s| s.local_addr().expect("addr"))
        .collect();
    let start = Arc::new(Barrier::new(NODES as usize));
    let handles: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let (addrs, start) = (addrs.clone(), start.clone());
            let crash = Arc::new(AtomicBool::new(i as u16 == victim));
            // The node is built on the thread's stack before it is boxed.
            std::thread::Builder::new()
                .stack_size(64 << 20)
                .spawn(move || run_node(i as u16, s, addrs, start, crash))
                .expect("spawn node thread")
        })
        .collect();
    let mut reports: Vec<Report> = handles
        .into_iter()
        .map(|h| h.join().expect("node thread"))
        .collect();
    let secs = SEND_FOR.as_secs_f64();
    for r in reports.iter_mut() {
        let p50 = percentile(&mut r.latencies_us, 50);
        let p99 = percentile(&mut r.latencies_us, 99);
        println!(
            "node {}{}: broadcast {}, delivered {} ({:.0} msgs/s), own latency p50 {p50:.2} ms p99 {p99:.2} ms, \
             {} datagrams {} KiB ({:.1} records/datagram), views {:?}",
            r.id,
            if r.crashed { " (crashed)" } else { "" },
            r.broadcasts,
            r.delivered.len(),
            r.delivered.len() as f64 / secs,
            r.datagrams,
            r.bytes / 1024,
            r.records_per_datagram,
            r.views
        );
    }
    let survivors: Vec<&Report> = reports.iter().filter(|r| !r.crashed).collect();
    let reference = &survivors[0].delivered;
    let mut ok = true;
    for s in &survivors {
        println!(
            "node {} delivery order hash {:016x}",
            s.id,
            hash_of(&s.delivered)
        );
        ok &= s.delivered == *reference;
    }
    for c in reports.iter().filter(|r| r.crashed) {
        // Uniform agreement: whatever the crashed node delivered, in that
        // order, the survivors delivered too.
        let prefix = reference.len() >= c.delivered.len()
            && reference[..c.delivered.len()] == c.delivered[..];
        println!(
            "crashed node {} delivered {} messages: {}",
            c.id,
            c.delivered.len(),
            if prefix {
                "a prefix of the survivors' sequence"
            } else {
                "NOT a prefix"
            }
        );
        ok &= prefix;
    }
    let moved = survivors
        .iter()
        .all(|s| s.views.last().is_some_and(|v| !v.1.contains(&victim)));
    ok &= moved;
    if ok {
        println!(
            "survivors' sequences: identical ({} messages)",
            reference.len()
        );
    }
    ok
}

fn main() {
    println!(
        "phasecast demo: {NODES} nodes on 127.0.0.1, uniform total order broadcast, {} s of traffic",
        SEND_FOR.as_secs_f64()
    );
    let a = run("run 1", 2);
    let b = run("run 2 (the sequencer)", 0);
    if a && b {
        println!("\ndemo OK");
    } else {
        eprintln!("\ndemo FAILED: the survivors disagree or no view change happened");
        std::process::exit(1);
    }
}
