//! Sink control policies: when may a sink send? (QSM §4, Fig. 9)
//!
//! "The sink determines its readiness to send based on a control policy, such
//! as rate, concurrency, windows size limitation, and so forth." A sink's
//! readiness is the conjunction of its policies; each answers
//! [`Readiness::Ready`], [`Readiness::HoldUntil`] (it will be ready by itself
//! at that time: the node sets an alarm) or [`Readiness::Blocked`] (only an
//! outside event such as an acknowledgement makes it ready again, and whoever
//! delivers that event re-activates the sink). Later layers (pledge buffers,
//! token rings) hold a sink the same way, through [`Hold`].

use crate::time::{Duration, Instant};

/// Whether a sink may send now.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Readiness {
    /// Pull now.
    Ready,
    /// Ready by itself at this time.
    HoldUntil(Instant),
    /// Waits for an outside event (an acknowledgement).
    Blocked,
}

impl Readiness {
    /// The conjunction of two answers: blocked beats held beats ready, and of
    /// two holds the later wins.
    #[must_use]
    pub fn and(self, other: Readiness) -> Readiness {
        use Readiness::*;
        match (self, other) {
            (Blocked, _) | (_, Blocked) => Blocked,
            (HoldUntil(a), HoldUntil(b)) => HoldUntil(a.max(b)),
            (HoldUntil(a), Ready) | (Ready, HoldUntil(a)) => HoldUntil(a),
            (Ready, Ready) => Ready,
        }
    }
}

/// Token-bucket rate limit in bytes per second.
///
/// Design: the bucket may go into debt by one datagram. A sink is ready when
/// it holds at least zero tokens, sends a whole datagram and pays for it
/// afterwards, so the long-run rate is exact without knowing the size of the
/// next datagram in advance (it is built when pulled). Token arithmetic is in
/// byte-microseconds to stay exact in integers.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TokenBucket {
    rate_bytes_per_s: u64,
    /// Burst capacity in bytes.
    burst: u64,
    /// Tokens in units of byte·µs/s... kept as bytes × 1e6 to avoid rounding.
    tokens_micro: i128,
    last: Instant,
}

impl TokenBucket {
    /// A bucket of `rate` bytes/s that allows bursts of `burst` bytes, full at `now`.
    pub fn new(rate_bytes_per_s: u64, burst: u64, now: Instant) -> Self {
        TokenBucket {
            rate_bytes_per_s,
            burst,
            tokens_micro: i128::from(burst) * 1_000_000,
            last: now,
        }
    }

    /// The configured rate in bytes per second.
    pub fn rate(&self) -> u64 {
        self.rate_bytes_per_s
    }

    /// Changes the rate from `now` on (tokens earned so far are kept).
    pub fn set_rate(&mut self, rate_bytes_per_s: u64, now: Instant) {
        self.refill(now);
        self.rate_bytes_per_s = rate_bytes_per_s;
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_since(self.last).as_micros();
        self.last = self.last.max(now);
        let cap = i128::from(self.burst) * 1_000_000;
        let earned = i128::from(dt) * i128::from(self.rate_bytes_per_s);
        self.tokens_micro = (self.tokens_micro + earned).min(cap);
    }

    /// Ready when the bucket is not in debt; otherwise the time it will be.
    pub fn readiness(&mut self, now: Instant) -> Readiness {
        self.refill(now);
        if self.tokens_micro >= 0 {
            Readiness::Ready
        } else if self.rate_bytes_per_s == 0 {
            Readiness::Blocked
        } else {
            let debt = (-self.tokens_micro) as u128;
            let rate = u128::from(self.rate_bytes_per_s);
            let wait_us = debt.div_ceil(rate);
            Readiness::HoldUntil(now + Duration::from_micros(wait_us.min(u64::MAX as u128) as u64))
        }
    }

    /// Pays for a datagram of `bytes` bytes sent at `now`.
    pub fn consume(&mut self, bytes: usize, now: Instant) {
        self.refill(now);
        self.tokens_micro -= (bytes as i128) * 1_000_000;
    }
}

/// A window of unacknowledged bytes: the owner of the sink reports what the
/// peer acknowledged. Blocked while `in_flight >= limit`.
#[derive(Clone, Copy, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Window {
    /// Bytes sent and not yet acknowledged.
    pub in_flight: u64,
    /// The limit.
    pub limit: u64,
}

impl Window {
    /// Ready while below the limit.
    pub fn readiness(&self) -> Readiness {
        if self.in_flight < self.limit {
            Readiness::Ready
        } else {
            Readiness::Blocked
        }
    }
    /// Counts `bytes` more in flight.
    pub fn sent(&mut self, bytes: usize) {
        self.in_flight = self.in_flight.saturating_add(bytes as u64);
    }
    /// Removes acknowledged bytes.
    pub fn acked(&mut self, bytes: usize) {
        self.in_flight = self.in_flight.saturating_sub(bytes as u64);
    }
}

/// A hold placed on a sink by a layer above (e.g. a pledge buffer that
/// promised to send to this destination by a deadline).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Hold {
    /// Do not send before this time.
    pub until: Option<Instant>,
}

impl Hold {
    /// Ready once the hold has expired.
    pub fn readiness(&self, now: Instant) -> Readiness {
        match self.until {
            Some(t) if t > now => Readiness::HoldUntil(t),
            _ => Readiness::Ready,
        }
    }
}

/// The control policy of one sink: the conjunction of a rate, a window and a hold.
#[derive(Clone, Copy, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ControlPolicy {
    /// Optional rate limit.
    pub rate: Option<TokenBucket>,
    /// Optional window of unacknowledged bytes.
    pub window: Option<Window>,
    /// Hold placed by an upper layer.
    pub hold: Hold,
}

impl ControlPolicy {
    /// Whether the sink may send now.
    pub fn readiness(&mut self, now: Instant) -> Readiness {
        let mut r = self.hold.readiness(now);
        if let Some(w) = &self.window {
            r = r.and(w.readiness());
        }
        if let Some(tb) = &mut self.rate {
            r = r.and(tb.readiness(now));
        }
        r
    }

    /// Accounts for a datagram of `bytes` just sent.
    pub fn on_sent(&mut self, bytes: usize, now: Instant) {
        if let Some(tb) = &mut self.rate {
            tb.consume(bytes, now);
        }
        if let Some(w) = &mut self.window {
            w.sent(bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sending as fast as the bucket allows for 10 s gives the configured rate
    /// (plus the initial burst), whatever the datagram size.
    #[test]
    fn token_bucket_long_run_rate() {
        for &(rate, size) in &[(125_000u64, 1400usize), (1_000_000, 576), (10_000, 9000)] {
            let t0 = Instant::ZERO;
            let mut tb = TokenBucket::new(rate, 1500, t0);
            let mut now = t0;
            let mut sent = 0u64;
            let end = t0 + Duration::from_secs(10);
            while now < end {
                match tb.readiness(now) {
                    Readiness::Ready => {
                        tb.consume(size, now);
                        sent += size as u64;
                    }
                    Readiness::HoldUntil(t) => {
                        assert!(t > now);
                        now = t;
                    }
                    Readiness::Blocked => panic!("a positive rate never blocks"),
                }
            }
            let expect = rate * 10 + 1500;
            let err = sent.abs_diff(expect);
            assert!(
                err <= size as u64 + 1500,
                "rate {rate} size {size}: sent {sent} vs {expect}"
            );
        }
    }

    #[test]
    fn token_bucket_holds_exactly_until_debt_is_paid() {
        let t0 = Instant::ZERO;
        let mut tb = TokenBucket::new(1000, 0, t0);
        assert_eq!(tb.readiness(t0), Readiness::Ready);
        tb.consume(500, t0);
        assert_eq!(
            tb.readiness(t0),
            Readiness::HoldUntil(Instant::from_millis(500))
        );
        assert_eq!(tb.readiness(Instant::from_millis(500)), Readiness::Ready);
    }

    #[test]
    fn window_blocks_until_acked_and_policies_compose() {
        let now = Instant::from_millis(1);
        let mut p = ControlPolicy {
            window: Some(Window {
                in_flight: 0,
                limit: 1000,
            }),
            ..Default::default()
        };
        assert_eq!(p.readiness(now), Readiness::Ready);
        p.on_sent(1000, now);
        assert_eq!(p.readiness(now), Readiness::Blocked);
        p.window.as_mut().unwrap().acked(1);
        assert_eq!(p.readiness(now), Readiness::Ready);
        p.hold.until = Some(Instant::from_millis(5));
        assert_eq!(
            p.readiness(now),
            Readiness::HoldUntil(Instant::from_millis(5))
        );
        assert_eq!(
            Readiness::HoldUntil(now).and(Readiness::Blocked),
            Readiness::Blocked
        );
    }
}
