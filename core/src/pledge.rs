//! Pledge buffers: opportunistic per-destination aggregation (Omaha §3,
//! Algorithm 1 of §A.2).
//!
//! A phase-based algorithm that waits for a quorum knows whom it will
//! contact when the wait ends. It declares that with
//! [`Pledges::begin_pledge`] (`beginPledge(app, futureDests)`); while such a
//! *pledge* covers a destination `d`, a message of **another** application
//! to `d` may be buffered, because a datagram to `d` is already promised and
//! the buffered message will ride along with it. `pledgedSend` ends the
//! pledge ([`Pledges::end_pledge`]) and then sends like `send`.
//!
//! This module is the decision part of Algorithm 1, kept free of the engine
//! so it can be checked line by line: [`Pledges::decide`] is lines 24–37 for
//! one destination, [`Pledges::flushed`] is `sendBuff`'s "clear buff_dest"
//! (line 14). The engine ([`crate::node::Node::send_to`]) owns the buffered
//! messages themselves: they wait in the destination's sink queue, and a
//! buffer's deadline is the sink's [`Hold`](crate::control::Hold), so a
//! flushed buffer leaves through the ordinary pull path as one datagram, or
//! several when it is larger than the MTU.
//!
//! Decisions where the paper is silent:
//! * **Bounded.** At most [`MAX_PLEDGES`] pledges are held; a new one when
//!   the table is full evicts the oldest (losing an aggregation chance, never
//!   a message). A buffer holds at most `limit` bytes: the message that
//!   reaches the bound flushes the buffer instead of waiting ("flush rather
//!   than refuse"). The engine's default bound is one datagram, since waiting
//!   longer cannot save another header.
//! * **`random()`** is drawn from the node's seeded generator, only when a
//!   foreign pledge covers `d` (line 27), so runs replay from their seed.
//! * **The engine's own traffic** (total-order acks, heartbeats, token
//!   records) is sent with `probaBuf = 0`: it is critical for liveness, so it
//!   flushes the buffer of its destination and carries what was waiting.
//! * **Applications** are small integers chosen by the host ([`AppId`]); a
//!   host running several concurrent instances of one algorithm may give each
//!   instance its own id (each instance's pledge is its own promise).
//!
//! Baselines, selected per node with [`Aggregation`]: `None` sends at once;
//! `TimeBased` is §3.1 (always buffer until the timeout or until full).
//!
//! Beyond the paper, [`Aggregation::Horizon`] also uses *when* a pledge will
//! be honoured: Omaha buffers a message behind a pledge that may be
//! honoured a whole phase later, paying that delay for the same one saved
//! header as a message buffered just before the pledge is honoured. Horizon
//! estimates each pledge's honour time from the node's observed pledge
//! durations (an EWMA of mean and deviation, as TCP's RTO estimator), buffers
//! only behind a pledge expected within `horizon`, and caps the deadline at
//! that expected time plus the deviation, so a late pledge costs little.

use crate::rng::Rng;
use crate::time::{Duration, Instant};

/// How many pledges a node holds at once.
pub const MAX_PLEDGES: usize = 16;

/// Identifies an application (or an instance of one) on a node.
pub type AppId = u16;

/// The node's aggregation policy for application messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Aggregation {
    /// Every message leaves at once (the paper's "no aggregation" baseline).
    None,
    /// §3.1: always buffer, until the message's timeout or until the buffer
    /// is full.
    TimeBased,
    /// Algorithm 1: buffer with probability `proba_buf` behind another
    /// application's pledge covering the destination.
    Omaha,
    /// Algorithm 1, buffering only behind a pledge expected to be honoured
    /// within `horizon`, with the deadline capped at that expected time (see
    /// the module documentation).
    Horizon {
        /// Longest expected wait for which a message is buffered.
        horizon: Duration,
    },
    /// Buffer what nobody waits for, never delay what somebody waits for:
    /// a message the sender marks not critical (no peer's progress waits
    /// on it, e.g. a commit notice to a learner) waits until its timeout or
    /// until a critical message to the same destination carries it; a
    /// critical one (it may complete a quorum) leaves at once.
    Criticality,
}

/// What [`Pledges::decide`] says about one destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Decision {
    /// Keep the message (and everything buffered) until `deadline`.
    Buffer {
        /// The buffer's deadline after this message (it only moves earlier).
        deadline: Instant,
    },
    /// Send the buffer now, this message included (`sendBuff`).
    Flush,
}

/// Per-message parameters of the overloaded `send` (§A.2).
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PledgeOptions {
    /// Probability that the message is buffered when a pledge allows it
    /// (`probaBuf`, 0.0 ..= 1.0; 0 sends at once).
    pub proba_buf: f32,
    /// Longest time the message may wait in a buffer (`t`).
    pub timeout: Duration,
    /// The sending application (`app`).
    pub app: AppId,
    /// Whether a peer's progress may wait on this message (used by
    /// [`Aggregation::Criticality`]; the paper's policies ignore it).
    pub critical: bool,
}

impl Default for PledgeOptions {
    fn default() -> Self {
        PledgeOptions {
            proba_buf: 0.0,
            timeout: Duration::ZERO,
            app: 0,
            critical: true,
        }
    }
}

impl PledgeOptions {
    /// Whether the options are usable (`proba_buf` a probability).
    pub fn is_valid(&self) -> bool {
        (0.0..=1.0).contains(&self.proba_buf)
    }
}

/// One entry of `curPledges`.
#[derive(Clone, Copy, Debug)]
struct Pledge {
    app: AppId,
    /// Destinations, one bit per destination index.
    dests: u64,
    since: Instant,
}

/// One entry of `bufs`: the deadline and how much waits.
#[derive(Clone, Copy, Debug, Default)]
struct BufState {
    deadline: Option<Instant>,
    bytes: usize,
    messages: u32,
}

/// `curPledges` and the bookkeeping of `bufs` for up to `DESTS` destinations
/// (at most 64), indexed `0..DESTS`.
#[derive(Clone, Debug)]
pub struct Pledges<const DESTS: usize> {
    policy: Aggregation,
    limit: usize,
    pledges: heapless::Vec<Pledge, MAX_PLEDGES>,
    /// How many pledges cover each destination.
    covering: [u8; DESTS],
    bufs: [BufState; DESTS],
    /// Observed pledge duration (begin to end), µs: mean and mean deviation.
    mean_us: u64,
    dev_us: u64,
    observed: bool,
}

impl<const DESTS: usize> Pledges<DESTS> {
    /// No pledges, empty buffers of at most `limit` bytes each.
    pub fn new(policy: Aggregation, limit: usize) -> Self {
        Pledges {
            policy,
            limit,
            pledges: heapless::Vec::new(),
            covering: [0; DESTS],
            bufs: [BufState::default(); DESTS],
            mean_us: 0,
            dev_us: 0,
            observed: false,
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> Aggregation {
        self.policy
    }

    /// Lines 6–9: `put(app, futureDests) in curPledges` (replacing the app's
    /// previous pledge). Destination bits at or above `DESTS` are ignored.
    pub fn begin_pledge(&mut self, app: AppId, dests: u64, now: Instant) {
        let dests = dests & Self::all_mask();
        if let Some(i) = self.pledges.iter().position(|p| p.app == app) {
            let old = self.pledges.remove(i);
            self.uncover(old.dests);
        } else if self.pledges.is_full() {
            // Bounded: the oldest pledge gives way (only an aggregation
            // chance is lost; buffered messages keep their deadlines).
            let old = self.pledges.remove(0);
            self.uncover(old.dests);
        }
        let _ = self.pledges.push(Pledge {
            app,
            dests,
            since: now,
        });
        self.cover(dests);
    }

    /// Line 18: `removeEntry(app) in curPledges`. Returns whether the app
    /// held a pledge; its duration feeds the honour-time estimate.
    pub fn end_pledge(&mut self, app: AppId, now: Instant) -> bool {
        let Some(i) = self.pledges.iter().position(|p| p.app == app) else {
            return false;
        };
        let old = self.pledges.remove(i);
        self.uncover(old.dests);
        self.observe(now.saturating_since(old.since).as_micros());
        true
    }

    /// Whether `app` holds a pledge covering destination `d`.
    pub fn pledged(&self, app: AppId, d: usize) -> bool {
        self.pledges
            .iter()
            .any(|p| p.app == app && p.dests & Self::bit(d) != 0)
    }

    /// Line 26: does an application other than `app` hold a pledge covering `d`?
    pub fn foreign_pledge(&self, app: AppId, d: usize) -> bool {
        let Some(&n) = self.covering.get(d) else {
            return false;
        };
        n > u8::from(self.pledged(app, d))
    }

    /// Number of pledges held.
    pub fn len(&self) -> usize {
        self.pledges.len()
    }

    /// Whether no pledge is held.
    pub fn is_empty(&self) -> bool {
        self.pledges.is_empty()
    }

    /// Lines 24–37 for one destination `d`: a message of `bytes` (already
    /// added to `bufs[d]` by the caller, line 25) is buffered, moving the
    /// deadline earlier if needed, or the whole buffer is flushed.
    pub fn decide(
        &mut self,
        d: usize,
        bytes: usize,
        opts: &PledgeOptions,
        now: Instant,
        rng: &mut Rng,
    ) -> Decision {
        if d >= DESTS {
            return Decision::Flush;
        }
        let buf = self.bufs[d];
        let total = buf.bytes.saturating_add(bytes);
        let mut deadline = now + opts.timeout; // line 28's `now + t`
        let buffer = match self.policy {
            Aggregation::None => false,
            Aggregation::TimeBased => opts.timeout > Duration::ZERO,
            Aggregation::Omaha => self.foreign_pledge(opts.app, d) && chance(rng, opts.proba_buf),
            Aggregation::Horizon { horizon } => match self.soonest_foreign(opts.app, d) {
                Some(expected) if expected <= now + horizon && chance(rng, opts.proba_buf) => {
                    // Cap the wait at the expected honour time (+ deviation).
                    let cap = expected + Duration::from_micros(self.dev_us);
                    deadline = deadline.min(cap.max(now));
                    true
                }
                _ => false,
            },
            Aggregation::Criticality => !opts.critical && opts.timeout > Duration::ZERO,
        };
        // Bounded buffers: the message that fills one flushes it.
        if !buffer || total >= self.limit {
            self.flushed(d);
            return Decision::Flush;
        }
        // Lines 28–30: the deadline only moves earlier.
        let deadline = match buf.deadline {
            Some(old) if old <= deadline => old,
            _ => deadline,
        };
        self.bufs[d] = BufState {
            deadline: Some(deadline),
            bytes: total,
            messages: buf.messages + 1,
        };
        Decision::Buffer { deadline }
    }

    /// `sendBuff`'s "clear buff_dest" (line 14): the buffer of `d` left.
    pub fn flushed(&mut self, d: usize) {
        if let Some(b) = self.bufs.get_mut(d) {
            *b = BufState::default();
        }
    }

    /// The deadline of `d`'s buffer, if it holds anything.
    pub fn deadline(&self, d: usize) -> Option<Instant> {
        self.bufs.get(d).and_then(|b| b.deadline)
    }

    /// Bytes and messages waiting in `d`'s buffer.
    pub fn buffered(&self, d: usize) -> (usize, u32) {
        self.bufs.get(d).map_or((0, 0), |b| (b.bytes, b.messages))
    }

    /// The estimated pledge duration (mean, deviation), once observed.
    pub fn duration_estimate(&self) -> Option<(Duration, Duration)> {
        self.observed.then(|| {
            (
                Duration::from_micros(self.mean_us),
                Duration::from_micros(self.dev_us),
            )
        })
    }

    /// The soonest expected honour time among foreign pledges covering `d`
    /// (bounded: at most [`MAX_PLEDGES`] entries). Before any pledge was
    /// observed ending, a pledge is expected at once (Omaha's behaviour).
    fn soonest_foreign(&self, app: AppId, d: usize) -> Option<Instant> {
        let bit = Self::bit(d);
        self.pledges
            .iter()
            .filter(|p| p.app != app && p.dests & bit != 0)
            .map(|p| p.since + Duration::from_micros(self.mean_us))
            .min()
    }

    /// TCP-style estimator (RFC 6298 gains 1/8 and 1/4).
    fn observe(&mut self, sample: u64) {
        if !self.observed {
            self.mean_us = sample;
            self.dev_us = sample / 2;
            self.observed = true;
            return;
        }
        let err = sample.abs_diff(self.mean_us);
        self.dev_us = self.dev_us - self.dev_us / 4 + err / 4;
        if sample >= self.mean_us {
            self.mean_us += (sample - self.mean_us) / 8;
        } else {
            self.mean_us -= (self.mean_us - sample) / 8;
        }
    }

    fn cover(&mut self, dests: u64) {
        for (d, c) in self.covering.iter_mut().enumerate() {
            if dests & Self::bit(d) != 0 {
                *c = c.saturating_add(1);
            }
        }
    }

    fn uncover(&mut self, dests: u64) {
        for (d, c) in self.covering.iter_mut().enumerate() {
            if dests & Self::bit(d) != 0 {
                *c = c.saturating_sub(1);
            }
        }
    }

    fn bit(d: usize) -> u64 {
        if d < 64 {
            1 << d
        } else {
            0
        }
    }

    fn all_mask() -> u64 {
        if DESTS >= 64 {
            u64::MAX
        } else {
            (1 << DESTS) - 1
        }
    }
}

/// `random() < p` with `random()` uniform in [0, 1).
fn chance(rng: &mut Rng, p: f32) -> bool {
    if p <= 0.0 {
        return false;
    }
    (rng.next_u32() as f64) < f64::from(p) * 4_294_967_296.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: AppId = 1;
    const B: AppId = 2;

    fn opts(app: AppId, proba_buf: f32, timeout_ms: u64) -> PledgeOptions {
        PledgeOptions {
            proba_buf,
            timeout: Duration::from_millis(timeout_ms),
            app,
            critical: true,
        }
    }

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn omaha() -> Pledges<8> {
        Pledges::new(Aggregation::Omaha, 1400)
    }

    #[test]
    fn no_buffering_without_a_pledge() {
        let mut p = omaha();
        let mut rng = Rng::new(1);
        assert_eq!(
            p.decide(3, 10, &opts(A, 1.0, 60), t(0), &mut rng),
            Decision::Flush
        );
        assert_eq!(p.deadline(3), None);
    }

    #[test]
    fn buffers_behind_a_foreign_pledge_only_for_covered_destinations() {
        let mut p = omaha();
        let mut rng = Rng::new(1);
        p.begin_pledge(B, 0b0110, t(0));
        assert_eq!(
            p.decide(1, 10, &opts(A, 1.0, 60), t(5), &mut rng),
            Decision::Buffer { deadline: t(65) }
        );
        assert_eq!(
            p.decide(3, 10, &opts(A, 1.0, 60), t(5), &mut rng),
            Decision::Flush
        );
        assert_eq!(p.buffered(1), (10, 1));
    }

    #[test]
    fn no_buffering_behind_the_apps_own_pledge() {
        let mut p = omaha();
        let mut rng = Rng::new(1);
        p.begin_pledge(A, 0b10, t(0));
        assert!(p.pledged(A, 1));
        assert!(!p.foreign_pledge(A, 1));
        assert_eq!(
            p.decide(1, 10, &opts(A, 1.0, 60), t(1), &mut rng),
            Decision::Flush
        );
        // Another app may use A's pledge.
        assert!(p.foreign_pledge(B, 1));
        assert!(matches!(
            p.decide(1, 10, &opts(B, 1.0, 60), t(1), &mut rng),
            Decision::Buffer { .. }
        ));
        // Own pledge plus a foreign one on the same destination: buffered.
        p.begin_pledge(B, 0b10, t(2));
        assert!(p.foreign_pledge(A, 1));
    }

    #[test]
    fn deadline_only_moves_earlier() {
        let mut p = omaha();
        let mut rng = Rng::new(1);
        p.begin_pledge(B, 0b1, t(0));
        assert_eq!(
            p.decide(0, 10, &opts(A, 1.0, 100), t(0), &mut rng),
            Decision::Buffer { deadline: t(100) }
        );
        // A later, longer timeout keeps the earlier deadline (line 28).
        assert_eq!(
            p.decide(0, 10, &opts(A, 1.0, 100), t(50), &mut rng),
            Decision::Buffer { deadline: t(100) }
        );
        // A shorter one moves it earlier (line 29).
        assert_eq!(
            p.decide(0, 10, &opts(A, 1.0, 20), t(60), &mut rng),
            Decision::Buffer { deadline: t(80) }
        );
        assert_eq!(p.deadline(0), Some(t(80)));
        assert_eq!(p.buffered(0), (30, 3));
    }

    #[test]
    fn proba_zero_flushes_everything_buffered() {
        let mut p = omaha();
        let mut rng = Rng::new(1);
        p.begin_pledge(B, 0b1, t(0));
        assert!(matches!(
            p.decide(0, 10, &opts(A, 1.0, 100), t(0), &mut rng),
            Decision::Buffer { .. }
        ));
        assert_eq!(
            p.decide(0, 10, &opts(A, 0.0, 100), t(1), &mut rng),
            Decision::Flush
        );
        assert_eq!(p.deadline(0), None);
        assert_eq!(p.buffered(0), (0, 0));
    }

    #[test]
    fn proba_buf_is_a_probability() {
        let mut p = omaha();
        let mut rng = Rng::new(7);
        p.begin_pledge(B, 0b1, t(0));
        let mut buffered = 0;
        for i in 0..10_000 {
            if let Decision::Buffer { .. } = p.decide(0, 0, &opts(A, 0.3, 100), t(i), &mut rng) {
                buffered += 1;
            }
            p.flushed(0);
        }
        assert!((2_800..3_200).contains(&buffered), "{buffered}");
    }

    #[test]
    fn end_pledge_removes_the_entry() {
        let mut p = omaha();
        let mut rng = Rng::new(1);
        p.begin_pledge(B, 0b1, t(0));
        assert!(p.end_pledge(B, t(60)));
        assert!(!p.end_pledge(B, t(60)));
        assert!(p.is_empty());
        assert_eq!(
            p.decide(0, 10, &opts(A, 1.0, 60), t(61), &mut rng),
            Decision::Flush
        );
    }

    #[test]
    fn begin_pledge_replaces_the_apps_previous_pledge() {
        let mut p = omaha();
        p.begin_pledge(B, 0b01, t(0));
        p.begin_pledge(B, 0b10, t(1));
        assert_eq!(p.len(), 1);
        assert!(!p.foreign_pledge(A, 0));
        assert!(p.foreign_pledge(A, 1));
    }

    #[test]
    fn a_full_pledge_table_evicts_the_oldest() {
        let mut p = omaha();
        for app in 0..MAX_PLEDGES as AppId {
            p.begin_pledge(100 + app, 1 << (app % 8), t(u64::from(app)));
        }
        assert_eq!(p.len(), MAX_PLEDGES);
        p.begin_pledge(500, 0b1000_0000, t(50));
        assert_eq!(p.len(), MAX_PLEDGES);
        assert!(!p.pledged(100, 0));
        assert!(p.pledged(500, 7));
        // Destination 0 is still covered by app 108.
        assert!(p.foreign_pledge(A, 0));
    }

    #[test]
    fn a_full_buffer_flushes_instead_of_waiting() {
        let mut p: Pledges<8> = Pledges::new(Aggregation::Omaha, 100);
        let mut rng = Rng::new(1);
        p.begin_pledge(B, 0b1, t(0));
        assert!(matches!(
            p.decide(0, 60, &opts(A, 1.0, 60), t(0), &mut rng),
            Decision::Buffer { .. }
        ));
        assert_eq!(
            p.decide(0, 60, &opts(A, 1.0, 60), t(0), &mut rng),
            Decision::Flush
        );
        assert_eq!(p.buffered(0), (0, 0));
    }

    #[test]
    fn baselines() {
        let mut rng = Rng::new(1);
        let mut none: Pledges<8> = Pledges::new(Aggregation::None, 1400);
        none.begin_pledge(B, 0xff, t(0));
        assert_eq!(
            none.decide(0, 10, &opts(A, 1.0, 60), t(0), &mut rng),
            Decision::Flush
        );
        // Time-based: buffers without any pledge, whatever proba_buf says.
        let mut tb: Pledges<8> = Pledges::new(Aggregation::TimeBased, 1400);
        assert_eq!(
            tb.decide(0, 10, &opts(A, 0.0, 60), t(0), &mut rng),
            Decision::Buffer { deadline: t(60) }
        );
        assert_eq!(
            tb.decide(1, 10, &opts(A, 0.0, 0), t(0), &mut rng),
            Decision::Flush
        );
    }

    #[test]
    fn horizon_buffers_only_behind_pledges_expected_soon() {
        let mut rng = Rng::new(1);
        let mut p: Pledges<8> = Pledges::new(
            Aggregation::Horizon {
                horizon: Duration::from_millis(20),
            },
            1400,
        );
        // Learn that pledges last about 60 ms.
        for i in 0..20 {
            p.begin_pledge(9, 0b1, t(i * 100));
            p.end_pledge(9, t(i * 100 + 60));
        }
        let (mean, _) = p.duration_estimate().unwrap();
        assert_eq!(mean, Duration::from_millis(60));
        p.begin_pledge(B, 0b1, t(1000));
        // Expected at 1060: too far at 1010 ...
        assert_eq!(
            p.decide(0, 10, &opts(A, 1.0, 100), t(1010), &mut rng),
            Decision::Flush
        );
        // ... close enough at 1045, and the deadline is capped near 1060.
        match p.decide(0, 10, &opts(A, 1.0, 100), t(1045), &mut rng) {
            Decision::Buffer { deadline } => {
                assert!(deadline >= t(1060) && deadline < t(1145), "{deadline:?}")
            }
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn criticality_buffers_only_what_nobody_waits_for() {
        let mut rng = Rng::new(1);
        let mut p: Pledges<8> = Pledges::new(Aggregation::Criticality, 1400);
        let quiet = PledgeOptions {
            critical: false,
            ..opts(A, 0.0, 80)
        };
        // No pledge needed, proba_buf ignored.
        assert_eq!(
            p.decide(0, 10, &quiet, t(0), &mut rng),
            Decision::Buffer { deadline: t(80) }
        );
        // A critical message leaves at once and carries the buffer.
        assert_eq!(
            p.decide(0, 10, &opts(A, 1.0, 80), t(5), &mut rng),
            Decision::Flush
        );
        assert_eq!(p.buffered(0), (0, 0));
    }

    #[test]
    fn out_of_range_destinations_are_ignored() {
        let mut p = omaha();
        let mut rng = Rng::new(1);
        p.begin_pledge(B, u64::MAX, t(0));
        assert_eq!(
            p.decide(8, 10, &opts(A, 1.0, 60), t(0), &mut rng),
            Decision::Flush
        );
        assert_eq!(p.deadline(100), None);
        p.flushed(100);
    }
}
