//! A local cluster of three phasecast nodes, each in its own thread with its
//! own UDP socket on 127.0.0.1, exchanging small and large (fragmented)
//! messages for a few seconds. It shows the host loop every binding follows:
//! feed datagrams and the time in, drain `poll_transmit` and `poll_event`,
//! sleep until `poll_timeout` or the next datagram.
//!
//! Run with `make demo`.

use phasecast_core::{
    Config, Destination, Event, GroupId, HostNode, Instant as CoreInstant, NodeId, SendOptions,
};
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const NODES: u16 = 3;
const RUN: Duration = Duration::from_secs(3);
const SMALL: usize = 200;
const LARGE: usize = 20_000;

struct Report {
    id: u16,
    sent_small: u64,
    sent_large: u64,
    got_small: u64,
    got_large: u64,
    corrupt: u64,
    datagrams: u64,
    bytes: u64,
    records_per_frame: f64,
    refused_full: u64,
    dropped: u64,
}

fn payload(from: u16, n: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u64 ^ n ^ (u64::from(from) * 77)) as u8)
        .collect()
}

fn run_node(id: u16, socket: UdpSocket, addrs: Vec<SocketAddr>, start: Arc<Barrier>) -> Report {
    let members: Vec<NodeId> = (0..NODES).map(NodeId).collect();
    let mut cfg = Config::new(NodeId(id), &members);
    cfg.seed = 0xdead_beef ^ u64::from(id);
    cfg.heartbeat = Some(phasecast_core::Duration::from_millis(100));
    let epoch = Instant::now();
    let now = || CoreInstant::from_micros(epoch.elapsed().as_micros() as u64);
    let mut node: Box<HostNode> = Box::new(HostNode::new(&cfg, now()).expect("valid config"));
    socket.set_nonblocking(true).expect("nonblocking socket");
    let mut buf = vec![0u8; node.mtu()];
    let mut rx = vec![0u8; 65536];
    let mut r = Report {
        id,
        sent_small: 0,
        sent_large: 0,
        got_small: 0,
        got_large: 0,
        corrupt: 0,
        datagrams: 0,
        bytes: 0,
        records_per_frame: 0.0,
        refused_full: 0,
        dropped: 0,
    };
    start.wait();
    let mut n = 0u64;
    while epoch.elapsed() < RUN {
        // Application: keep the cluster group busy; Full is backpressure.
        for _ in 0..64 {
            let len = if n % 16 == 15 { LARGE } else { SMALL };
            match node.send(
                now(),
                Destination::Group(GroupId::ALL),
                &payload(id, n, len),
                SendOptions::default(),
            ) {
                Ok(_) => {
                    if len == LARGE {
                        r.sent_large += 1
                    } else {
                        r.sent_small += 1
                    }
                    n += 1;
                }
                Err(_) => break,
            }
        }
        // Network in.
        while let Ok((len, src)) = socket.recv_from(&mut rx) {
            if let Some(from) = addrs.iter().position(|a| *a == src) {
                let _ = node.handle_datagram(now(), NodeId(from as u16), &mut rx[..len]);
            }
        }
        // Timers.
        if node.poll_timeout().is_some_and(|t| t <= now()) {
            node.handle_timeout(now());
        }
        // Network out: a group destination is a unicast fan-out here.
        while let Ok(tx) = node.poll_transmit(now(), &mut buf) {
            let targets: Vec<SocketAddr> = match tx.destination {
                Destination::Peer(p) => vec![addrs[p.0 as usize]],
                Destination::Group(_) => addrs
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != id as usize)
                    .map(|(_, a)| *a)
                    .collect(),
            };
            for a in targets {
                // Loopback buffers can overflow under load: that is datagram loss.
                let _ = socket.send_to(&buf[..tx.len], a);
            }
        }
        // Events out.
        while let Some(ev) = node.poll_event() {
            if let Event::Received {
                from,
                msg,
                payload: p,
                ..
            } = ev
            {
                let ok = p == payload(from.0, u64::from(msg), p.len()).as_slice();
                if !ok {
                    r.corrupt += 1;
                } else if p.len() == LARGE {
                    r.got_large += 1;
                } else {
                    r.got_small += 1;
                }
            }
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let c = node.counters();
    r.datagrams = c.frames_sent;
    r.bytes = c.bytes_sent;
    r.records_per_frame = c.records_per_frame_milli() as f64 / 1000.0;
    r.refused_full = c.refused_full;
    r.dropped = c.total_dropped();
    r
}

fn main() {
    println!(
        "node state: {} KiB per HostNode, fixed at construction",
        std::mem::size_of::<HostNode>() / 1024
    );
    let sockets: Vec<UdpSocket> = (0..NODES)
        .map(|_| UdpSocket::bind("127.0.0.1:0").expect("bind loopback"))
        .collect();
    let addrs: Vec<SocketAddr> = sockets
        .iter()
        .map(|s| s.local_addr().expect("addr"))
        .collect();
    println!(
        "phasecast loopback demo: {NODES} nodes on {addrs:?}, {}s",
        RUN.as_secs()
    );
    let start = Arc::new(Barrier::new(NODES as usize));
    let handles: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let addrs = addrs.clone();
            let start = start.clone();
            // The node is built on the thread's stack before it is boxed:
            // give the thread room for it (HostNode is a few MiB).
            std::thread::Builder::new()
                .stack_size(64 << 20)
                .spawn(move || run_node(i as u16, s, addrs, start))
                .expect("spawn node thread")
        })
        .collect();
    let reports: Vec<Report> = handles
        .into_iter()
        .map(|h| h.join().expect("node thread"))
        .collect();
    let mut corrupt = 0;
    for r in &reports {
        println!(
            "node {}: sent {} small + {} large ({} B, fragmented) msgs; received {} small + {} large; \
             {} datagrams, {} B, {:.2} records/datagram, {} refused (backpressure), {} dropped",
            r.id, r.sent_small, r.sent_large, LARGE, r.got_small, r.got_large, r.datagrams, r.bytes,
            r.records_per_frame, r.refused_full, r.dropped
        );
        corrupt += r.corrupt;
    }
    let delivered: u64 = reports.iter().map(|r| r.got_small + r.got_large).sum();
    let secs = RUN.as_secs_f64();
    println!(
        "delivered {:.0} msgs/s across the cluster; corrupt payloads: {corrupt}",
        delivered as f64 / secs
    );
    if corrupt > 0 || delivered == 0 {
        eprintln!("demo FAILED");
        std::process::exit(1);
    }
    println!("demo OK (best-effort datagram layer; total order arrives with the sequencer)");
}
