//! Sequence numbers that compare correctly across wraparound.
//!
//! Serial-number arithmetic (RFC 1982): `a < b` iff `b - a` taken modulo 2^32
//! lies in `1 ..= 2^31 - 1`. Two numbers exactly 2^31 apart are unordered;
//! [`Seq::cmp_serial`] returns `None` for them, and protocols keep their
//! windows far below 2^31 so that never happens in practice.

use core::cmp::Ordering;

/// A 32-bit sequence number with wraparound-aware comparison.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Seq(pub u32);

impl Seq {
    /// The next sequence number (wraps).
    #[must_use]
    pub const fn next(self) -> Seq {
        Seq(self.0.wrapping_add(1))
    }
    /// `self + n` (wraps).
    #[must_use]
    pub const fn add(self, n: u32) -> Seq {
        Seq(self.0.wrapping_add(n))
    }
    /// Signed distance from `other` to `self`: positive when `self` is later.
    pub const fn distance_from(self, other: Seq) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }
    /// Serial-number order; `None` when the two are exactly 2^31 apart.
    pub fn cmp_serial(self, other: Seq) -> Option<Ordering> {
        let d = self.0.wrapping_sub(other.0);
        if d == 0 {
            Some(Ordering::Equal)
        } else if d < 0x8000_0000 {
            Some(Ordering::Greater)
        } else if d > 0x8000_0000 {
            Some(Ordering::Less)
        } else {
            None
        }
    }
    /// `self` is strictly before `other`.
    pub fn precedes(self, other: Seq) -> bool {
        self.cmp_serial(other) == Some(Ordering::Less)
    }
    /// `self` is strictly after `other`.
    pub fn follows(self, other: Seq) -> bool {
        self.cmp_serial(other) == Some(Ordering::Greater)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wraparound() {
        assert!(Seq(u32::MAX).precedes(Seq(0)));
        assert!(Seq(0).follows(Seq(u32::MAX)));
        assert!(Seq(5).precedes(Seq(6)));
        assert_eq!(Seq(0).cmp_serial(Seq(0x8000_0000)), None);
        assert_eq!(Seq(3).distance_from(Seq(u32::MAX)), 4);
        assert_eq!(Seq(u32::MAX).next(), Seq(0));
    }

    proptest! {
        #[test]
        fn order_is_antisymmetric_and_shift_invariant(a: u32, d in 1u32..0x8000_0000, k: u32) {
            let x = Seq(a);
            let y = x.add(d);
            prop_assert!(x.precedes(y));
            prop_assert!(y.follows(x));
            prop_assert!(!y.precedes(x));
            // Shifting both by any k keeps the order: comparison is modular.
            prop_assert!(x.add(k).precedes(y.add(k)));
            prop_assert_eq!(y.distance_from(x) as i64, d as i64);
        }
    }
}
