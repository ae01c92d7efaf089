//! Seeded random fault plans (TigerBeetle VOPR style).
//!
//! Each seed draws its own fault *rates* as well as its own fault events, so a
//! sweep over seeds explores calm and stormy networks alike. A plan has a
//! fault phase followed by a fault-free liveness phase (started by
//! [`Sim::heal_all`]) in which the surviving nodes must converge.
//!
//! Decision: crashes hit at most `(nodes - 1) / 2` distinct nodes, so a
//! majority is never crashed at once and majority-based protocols can still
//! be asked to make progress; partitions may still isolate anyone.

use std::vec::Vec;

use super::{Endpoint, LinkConfig, Sim};
use crate::addr::NodeId;
use crate::rng::Rng;
use crate::time::Duration;

/// A fault phase drawn from a seed; all times are offsets from the moment the
/// plan is [applied](FaultPlan::apply).
#[derive(Clone, Debug, PartialEq)]
pub struct FaultPlan {
    /// The seed the plan was drawn from (print it to replay a failure).
    pub seed: u64,
    /// Length of the fault phase; [`Sim::heal_all`] runs at its end.
    pub fault_phase: Duration,
    /// Loss probability of every link during the fault phase (0–30 %).
    pub loss: f64,
    /// Duplication probability during the fault phase (0–50 %).
    pub duplicate: f64,
    /// Reordering probability during the fault phase (0–30 %).
    pub reorder: f64,
    /// Crashes: (node, offset).
    pub crashes: Vec<(NodeId, Duration)>,
    /// Restarts within the fault phase: (node, offset).
    pub restarts: Vec<(NodeId, Duration)>,
    /// Partitions: (groups, start offset, heal offset).
    pub partitions: Vec<(Vec<Vec<NodeId>>, Duration, Duration)>,
    /// One-way cuts: (from, to, start offset, heal offset).
    pub cuts: Vec<(NodeId, NodeId, Duration, Duration)>,
    /// Swizzle-clogs: (start offset, step, subset size).
    pub swizzles: Vec<(Duration, Duration, usize)>,
    /// Whether nodes still down at the end of the fault phase restart.
    pub restart_crashed: bool,
}

fn unit(rng: &mut Rng) -> f64 {
    super::config::unit_f64(rng)
}

fn offset(rng: &mut Rng, lo: u64, hi: u64) -> u64 {
    if hi <= lo {
        return lo;
    }
    lo + ((u128::from(rng.next_u64()) * u128::from(hi - lo)) >> 64) as u64
}

impl FaultPlan {
    /// A plan with no faults at all (rates zero, no events).
    pub fn none(fault_phase: Duration) -> Self {
        FaultPlan {
            seed: 0,
            fault_phase,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            crashes: Vec::new(),
            restarts: Vec::new(),
            partitions: Vec::new(),
            cuts: Vec::new(),
            swizzles: Vec::new(),
            restart_crashed: true,
        }
    }

    /// Draws rates (loss 0–30 %, duplication 0–50 %, reordering 0–30 %), up
    /// to three crashes of distinct nodes (each restarted in the phase with
    /// probability 1/2), up to two random bipartitions, up to two one-way
    /// cuts and possibly one swizzle, all within `fault_phase`.
    /// Crashed nodes restart at the end of the phase.
    pub fn random(seed: u64, nodes: u16, fault_phase: Duration) -> Self {
        let mut rng = Rng::new(seed ^ 0x766F_7072_2D70_6C61);
        let mut plan = FaultPlan::none(fault_phase);
        plan.seed = seed;
        plan.loss = unit(&mut rng) * 0.30;
        plan.duplicate = unit(&mut rng) * 0.50;
        plan.reorder = unit(&mut rng) * 0.30;
        let len = fault_phase.as_micros();
        let n = u32::from(nodes);
        if n == 0 {
            return plan;
        }

        let max_crashes = ((n - 1) / 2).min(3);
        let crashes = rng.below(max_crashes + 1);
        let mut ids: Vec<u16> = (0..nodes).collect();
        for i in 0..crashes as usize {
            let j = i + rng.below(n - i as u32) as usize;
            ids.swap(i, j);
            let at = offset(&mut rng, 0, len);
            plan.crashes
                .push((NodeId(ids[i]), Duration::from_micros(at)));
            if rng.below(2) == 0 {
                let back = offset(&mut rng, at, len);
                plan.restarts
                    .push((NodeId(ids[i]), Duration::from_micros(back)));
            }
        }

        if n >= 2 {
            for _ in 0..rng.below(3) {
                let mut sides = [Vec::new(), Vec::new()];
                for id in 0..nodes {
                    sides[rng.below(2) as usize].push(NodeId(id));
                }
                let at = offset(&mut rng, 0, len);
                let heal = offset(&mut rng, at, len);
                plan.partitions.push((
                    sides.to_vec(),
                    Duration::from_micros(at),
                    Duration::from_micros(heal),
                ));
            }
            for _ in 0..rng.below(3) {
                let from = rng.below(n) as u16;
                let to = (from as u32 + 1 + rng.below(n - 1)) % n;
                let at = offset(&mut rng, 0, len);
                let heal = offset(&mut rng, at, len);
                plan.cuts.push((
                    NodeId(from),
                    NodeId(to as u16),
                    Duration::from_micros(at),
                    Duration::from_micros(heal),
                ));
            }
            if rng.below(2) == 0 {
                let k = 1 + rng.below(n.div_ceil(2)) as usize;
                let at = offset(&mut rng, 0, len / 2);
                // 2k steps must fit in the remaining half of the phase.
                let step = (len / 2) / (2 * k as u64).max(1);
                plan.swizzles
                    .push((Duration::from_micros(at), Duration::from_micros(step), k));
            }
        }
        plan
    }

    /// Schedules the plan on `sim` starting now: sets the default link's
    /// fault rates immediately, schedules every fault, and schedules
    /// [`Sim::heal_all`] at the end of the fault phase (the start of the
    /// liveness phase, see [`liveness_start`](Self::liveness_start)).
    pub fn apply<E: Endpoint>(&self, sim: &mut Sim<E>) {
        let t0 = sim.now();
        let link = LinkConfig {
            loss: self.loss,
            duplicate: self.duplicate,
            reorder: self.reorder,
            ..sim.config().link
        };
        sim.set_default_link(link);
        for &(node, at) in &self.crashes {
            sim.crash(node, t0 + at);
        }
        for &(node, at) in &self.restarts {
            sim.restart(node, t0 + at);
        }
        for (groups, at, heal) in &self.partitions {
            let refs: Vec<&[NodeId]> = groups.iter().map(|g| g.as_slice()).collect();
            sim.partition(&refs, t0 + *at, t0 + *heal);
        }
        for &(from, to, at, heal) in &self.cuts {
            sim.cut(from, to, t0 + at, t0 + heal);
        }
        for &(at, step, k) in &self.swizzles {
            sim.swizzle(t0 + at, step, k);
        }
        sim.heal_all(t0 + self.fault_phase, self.restart_crashed);
    }

    /// Offset of the liveness phase (the end of the fault phase).
    pub fn liveness_start(&self) -> Duration {
        self.fault_phase
    }
}
