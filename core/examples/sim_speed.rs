//! Simulator speed benchmark ("simulator events per second").
//!
//! 16 toy echo endpoints bounce 8 datagrams each back and forth (every
//! arrival is answered to its sender) over links with a uniform latency,
//! until one million datagrams have been sent. Prints scheduler events/s and
//! datagrams/s of wall-clock time.
//!
//! Run: `cargo run --release --example sim_speed`

use std::collections::VecDeque;
use std::time::Instant as WallClock;

use phasecast_core::addr::{Destination, NodeId, Transmit};
use phasecast_core::rng::Rng;
use phasecast_core::sim::{Endpoint, Latency, LinkConfig, Sim, SimConfig};
use phasecast_core::time::{Duration, Instant};

const NODES: u16 = 16;
const WINDOW: u32 = 8;
const TARGET: u64 = 1_000_000;
const SIZE: usize = 64;

/// Answers every datagram to its sender; starts with `WINDOW` datagrams to
/// random peers.
struct Echo {
    outbox: VecDeque<(NodeId, u32)>,
    delivered: u32,
}

impl Echo {
    fn new(id: NodeId, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let outbox = (0..WINDOW)
            .map(|i| {
                let peer = (id.0 + 1 + rng.below(u32::from(NODES) - 1) as u16) % NODES;
                (NodeId(peer), i)
            })
            .collect();
        Echo {
            outbox,
            delivered: 0,
        }
    }
}

impl Endpoint for Echo {
    type Event = u32;
    fn handle_datagram(&mut self, _now: Instant, from: NodeId, bytes: &[u8]) {
        let n = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        self.outbox.push_back((from, n.wrapping_add(1)));
        self.delivered += 1;
    }
    fn handle_timeout(&mut self, _now: Instant) {}
    fn poll_transmit(&mut self, _now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let (to, n) = self.outbox.pop_front()?;
        buf[..4].copy_from_slice(&n.to_le_bytes());
        Some(Transmit {
            destination: Destination::Peer(to),
            len: SIZE,
        })
    }
    fn poll_event(&mut self) -> Option<u32> {
        // One application event per delivery exercises the event path.
        if self.delivered > 0 {
            self.delivered -= 1;
            Some(self.delivered)
        } else {
            None
        }
    }
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
}

fn main() {
    let mut cfg = SimConfig::new(NODES, 42);
    cfg.link = LinkConfig::with_latency(Latency::Uniform(
        Duration::from_micros(50),
        Duration::from_micros(150),
    ));
    cfg.uplink_bps = Some(1_000_000_000);
    cfg.downlink_bps = Some(1_000_000_000);
    // Keep memory flat: events are counted, not stored.
    cfg.record_events = false;
    let mut sim = Sim::new(cfg, Echo::new);

    let wall = WallClock::now();
    while sim.stats().total.sent() < TARGET {
        sim.run_for(Duration::from_millis(1));
    }
    let secs = wall.elapsed().as_secs_f64();
    let st = sim.stats().total;
    println!(
        "{} nodes, {} datagrams sent, {} received, {} endpoint events, {} scheduler events",
        NODES,
        st.sent(),
        st.received,
        st.events,
        sim.steps()
    );
    println!("virtual time {:?}, wall time {:.3} s", sim.now(), secs);
    println!(
        "{:.0} scheduler events/s, {:.0} datagrams/s",
        sim.steps() as f64 / secs,
        st.sent() as f64 / secs
    );
}
