//! CPU per delivered total-order message, for instruction counts under
//! `valgrind --tool=callgrind`: three nodes in one process, wired by a plain
//! in-memory FIFO network (no simulator), each broadcasting N 32-byte
//! messages. Prints how many deliveries happened in all, so the instruction
//! count of a run with N messages minus one with 0 messages, divided by that,
//! is the cost of one delivery at one node (sending, ordering, acknowledging
//! and delivering included).
//!
//! ```text
//! cargo build --release -p phasecast-core --example tob_callgrind
//! valgrind --tool=callgrind target/release/examples/tob_callgrind 20000
//! ```
//!
//! A second argument sets `Config::tob_batch` (`0`: every message its own
//! ordering unit; default 4096).

use phasecast_core::{Config, Destination, Duration, Event, Instant, Node, NodeId};
use std::collections::VecDeque;

type N3 = Node<4, 256, 512, 4096, 65536, 1500>;

fn main() {
    let per_node: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let batch: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(4096);
    let members = [NodeId(0), NodeId(1), NodeId(2)];
    let mut nodes: Vec<Box<N3>> = members
        .iter()
        .map(|&id| {
            let mut c = Config::new(id, &members);
            c.mtu = 1400;
            c.tob_window = 128;
            c.tob_rto = Duration::from_millis(50);
            c.tob_batch = batch;
            Box::new(N3::new(&c, Instant::ZERO).expect("valid config"))
        })
        .collect();
    let mut net: VecDeque<(usize, Destination, Vec<u8>)> = VecDeque::new();
    let mut sent = [0u32; 3];
    let mut delivered = 0u64;
    let mut buf = vec![0u8; 1500];
    let mut t = 0u64;
    let total = u64::from(per_node) * 3 * 3;
    let payload = [7u8; 32];
    while delivered < total {
        t += 10;
        let now = Instant::from_micros(t);
        for (i, n) in nodes.iter_mut().enumerate() {
            while sent[i] < per_node && n.broadcast(now, &payload).is_ok() {
                sent[i] += 1;
            }
            while let Ok(tx) = n.poll_transmit(now, &mut buf) {
                net.push_back((i, tx.destination, buf[..tx.len].to_vec()));
            }
        }
        while let Some((from, dest, mut bytes)) = net.pop_front() {
            let targets: Vec<usize> = match dest {
                Destination::Peer(p) => vec![p.0 as usize],
                Destination::Group(_) => (0..3).filter(|&j| j != from).collect(),
            };
            for j in targets {
                let mut copy = bytes.clone();
                let _ = nodes[j].handle_datagram(now, NodeId(from as u16), &mut copy);
            }
            bytes.clear();
        }
        for n in nodes.iter_mut() {
            if n.poll_timeout().is_some_and(|d| d <= now) {
                n.handle_timeout(now);
            }
            while let Some(ev) = n.poll_event() {
                if let Event::Delivered { .. } = ev {
                    delivered += 1;
                }
            }
        }
        if t > 600_000_000 {
            eprintln!("stalled at {delivered} of {total}");
            std::process::exit(1);
        }
    }
    println!(
        "deliveries={delivered} datagrams_per_node={}",
        nodes[0].counters().frames_sent
    );
}
