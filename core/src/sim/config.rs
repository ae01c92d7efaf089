//! Simulator configuration: per-link latency and fault rates, per-node
//! bandwidth, header accounting.
//!
//! Probabilities are `f64` here (the simulator is host-side and std-only);
//! the engine itself never sees them.

use crate::rng::Rng;
use crate::time::Duration;

/// A one-way propagation delay distribution for one directed link.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Latency {
    /// Always the same delay.
    Constant(Duration),
    /// Uniform on `[lo, hi]` (inclusive, µs granularity). `hi < lo` is treated
    /// as `Constant(lo)`.
    Uniform(Duration, Duration),
    /// Normal with the given mean and standard deviation, truncated at zero
    /// (negative samples become zero delay), rounded to the microsecond.
    ///
    /// Sampled with Box–Muller on the seeded generator. The transcendental
    /// functions come from the platform's libm, so bit-identical replays are
    /// guaranteed on one platform, not necessarily across platforms.
    Normal {
        /// Mean delay.
        mean: Duration,
        /// Standard deviation.
        sd: Duration,
    },
}

impl Latency {
    /// Draws one delay from `rng`.
    pub fn sample(&self, rng: &mut Rng) -> Duration {
        match *self {
            Latency::Constant(d) => d,
            Latency::Uniform(lo, hi) => {
                let (lo, hi) = (lo.as_micros(), hi.as_micros());
                if hi <= lo {
                    return Duration::from_micros(lo);
                }
                let span = u128::from(hi - lo) + 1;
                // 64-bit multiply-shift: unbiased enough for simulation.
                let off = (u128::from(rng.next_u64()) * span) >> 64;
                Duration::from_micros(lo + off as u64)
            }
            Latency::Normal { mean, sd } => {
                let z = standard_normal(rng);
                let v = mean.as_micros() as f64 + sd.as_micros() as f64 * z;
                if v <= 0.0 {
                    Duration::ZERO
                } else {
                    // `as` saturates on overflow: never panics.
                    Duration::from_micros(v.round() as u64)
                }
            }
        }
    }

    /// The distribution's mean before truncation (used for defaults and docs).
    pub fn nominal(&self) -> Duration {
        match *self {
            Latency::Constant(d) => d,
            Latency::Uniform(lo, hi) => {
                Duration::from_micros((lo.as_micros() / 2).saturating_add(hi.as_micros() / 2))
            }
            Latency::Normal { mean, .. } => mean,
        }
    }
}

/// A uniform `f64` in `[0, 1)` with 53 random bits.
pub(crate) fn unit_f64(rng: &mut Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// True with probability `p` (clamped to `[0, 1]`). Draws nothing when
/// `p <= 0`, so fault-free links cost no random numbers.
pub(crate) fn chance(rng: &mut Rng, p: f64) -> bool {
    p > 0.0 && unit_f64(rng) < p
}

/// One standard normal sample (Box–Muller, cosine branch).
fn standard_normal(rng: &mut Rng) -> f64 {
    // u1 in (0, 1] so that ln(u1) is finite.
    let u1 = 1.0 - unit_f64(rng);
    let u2 = unit_f64(rng);
    (-2.0 * u1.ln()).sqrt() * (core::f64::consts::TAU * u2).cos()
}

/// Behaviour of one directed link `from -> to`.
///
/// Fault probabilities apply independently to each receiver's copy of a
/// datagram (a multicast to three receivers draws three times).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkConfig {
    /// Propagation delay.
    pub latency: Latency,
    /// Probability that a copy is lost.
    pub loss: f64,
    /// Probability that a copy is delivered twice (the duplicate draws its own
    /// latency and goes through the receiver's downlink again).
    pub duplicate: f64,
    /// Probability that a copy gets an extra delay drawn from
    /// [`reorder_delay`](Self::reorder_delay), which lets later datagrams
    /// overtake it.
    pub reorder: f64,
    /// Extra delay of a reordered copy.
    pub reorder_delay: Latency,
}

impl LinkConfig {
    /// A fault-free link with the given latency (and a reorder delay of up to
    /// 5 ms, unused while `reorder == 0`).
    pub const fn with_latency(latency: Latency) -> Self {
        LinkConfig {
            latency,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Latency::Uniform(Duration::ZERO, Duration::from_millis(5)),
        }
    }
}

impl Default for LinkConfig {
    /// 100 µs constant latency (a LAN switch hop), no faults.
    fn default() -> Self {
        LinkConfig::with_latency(Latency::Constant(Duration::from_micros(100)))
    }
}

/// Everything [`Sim::new`](super::Sim::new) needs.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// Number of nodes; ids are `NodeId(0) .. NodeId(nodes - 1)`.
    pub nodes: u16,
    /// The one seed all randomness derives from (network, faults, node seeds).
    pub seed: u64,
    /// Default behaviour of every directed link (override per link with
    /// [`Sim::set_link`](super::Sim::set_link)).
    pub link: LinkConfig,
    /// Default uplink rate of every node in bits/s; `None` = infinite.
    pub uplink_bps: Option<u64>,
    /// Default downlink rate of every node in bits/s; `None` = infinite.
    pub downlink_bps: Option<u64>,
    /// Maximum datagrams waiting in (or being received on) a node's downlink;
    /// beyond it arrivals are dropped (drop tail, like a switch port buffer).
    /// `None` = unbounded. Only meaningful with a finite `downlink_bps`.
    pub downlink_queue: Option<usize>,
    /// Bytes of IP + UDP header per datagram (IPv4 20 + UDP 8 = 28). They are
    /// counted separately from the payload and *do* take serialization time.
    pub header_bytes: usize,
    /// Size of the buffer handed to `poll_transmit` (default 65535).
    pub mtu: usize,
    /// Keep every endpoint event in [`Sim::events`](super::Sim::events)
    /// (default on; turn off for very long runs that only need the hook).
    pub record_events: bool,
    /// Keep a per-datagram trace in [`Sim::trace`](super::Sim::trace)
    /// (default off).
    pub trace: bool,
}

impl SimConfig {
    /// `nodes` nodes, seed `seed`, default link, infinite bandwidth, 28-byte
    /// headers, 65535-byte MTU, events recorded, no trace.
    pub fn new(nodes: u16, seed: u64) -> Self {
        SimConfig {
            nodes,
            seed,
            link: LinkConfig::default(),
            uplink_bps: None,
            downlink_bps: None,
            downlink_queue: None,
            header_bytes: 28,
            mtu: 65535,
            record_events: true,
            trace: false,
        }
    }
}

/// Time to clock `bytes` onto a link of `bps` bits/s, rounded up to the µs.
pub(crate) fn serialization(bytes: usize, bps: u64) -> Duration {
    if bps == 0 {
        return Duration::MAX;
    }
    let bits = (bytes as u128) * 8 * 1_000_000;
    let us = bits.div_ceil(u128::from(bps));
    Duration::from_micros(u64::try_from(us).unwrap_or(u64::MAX))
}
