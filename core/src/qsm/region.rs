//! Regions and partitions: the shape of a region's token ring (QSM §3,
//! Fig. 3–5).
//!
//! "Nodes with the same group membership form a region." The membership
//! service (the paper's CMS) computes regions and hands each node views:
//! a [`RegionView`] names a region by the multicast address its members
//! listen on and lists its members. This module keeps the view of one
//! region in a form the protocol can use in O(1) or O(log n):
//!
//! * members sorted by id (every member computes the same ring, whatever
//!   order the CMS listed them in);
//! * partitions of at most `partition_size` (default 25) consecutive
//!   members in that order — "no token ring ever grows larger than about
//!   25 nodes"; partition `p` holds members `[p·size, (p+1)·size)`;
//! * the partition leader is a partition's first member, the region leader
//!   the first member of partition 0.
//!
//! The token rings (Fig. 5): each partition's members form a ring led by
//! the partition leader; the partition leaders form the ring above, led by
//! the region leader.

use crate::addr::{GroupId, NodeId};

/// Most members of one region (a region of the paper's experiments had up
/// to about 200; 128 covers the 1 + 110 node setup with room).
pub const MAX_REGION_MEMBERS: usize = 128;

/// A region as the CMS describes it to a node.
#[derive(Clone, Copy, Debug)]
pub struct RegionView<'a> {
    /// The region's multicast address (the simulator's or host's group).
    pub address: GroupId,
    /// Its members, in any order; duplicates are refused.
    pub members: &'a [NodeId],
}

/// Why a view was refused (nothing changed).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ViewError {
    /// More members than [`MAX_REGION_MEMBERS`].
    TooManyMembers,
    /// The same id twice.
    Duplicate,
    /// A region without members, or a partition size of zero.
    Empty,
}

/// One region's membership, sorted, with its partition structure.
#[derive(Clone, Debug)]
pub struct Region {
    /// Multicast address of the region.
    pub address: GroupId,
    members: heapless::Vec<NodeId, MAX_REGION_MEMBERS>,
    partition_size: usize,
}

impl Region {
    /// Builds the region of `view` with partitions of `partition_size`.
    pub fn new(view: &RegionView<'_>, partition_size: usize) -> Result<Self, ViewError> {
        if view.members.is_empty() || partition_size == 0 {
            return Err(ViewError::Empty);
        }
        let mut members = heapless::Vec::new();
        for &m in view.members {
            members.push(m).map_err(|_| ViewError::TooManyMembers)?;
        }
        members.sort_unstable();
        if members.windows(2).any(|w| w[0] == w[1]) {
            return Err(ViewError::Duplicate);
        }
        Ok(Region {
            address: view.address,
            members,
            partition_size,
        })
    }

    /// The members, sorted by id.
    pub fn members(&self) -> &[NodeId] {
        &self.members
    }

    /// Index of `id` in the sorted members. O(log n).
    pub fn index_of(&self, id: NodeId) -> Option<usize> {
        self.members.binary_search(&id).ok()
    }

    /// Whether `id` is a member.
    pub fn contains(&self, id: NodeId) -> bool {
        self.index_of(id).is_some()
    }

    /// Number of partitions.
    pub fn partitions(&self) -> usize {
        self.members.len().div_ceil(self.partition_size)
    }

    /// The partition of the member at `index`.
    pub fn partition_of(&self, index: usize) -> usize {
        index / self.partition_size
    }

    /// The members of partition `p` (empty if there is no such partition).
    pub fn partition(&self, p: usize) -> &[NodeId] {
        let lo = p
            .saturating_mul(self.partition_size)
            .min(self.members.len());
        let hi = lo
            .saturating_add(self.partition_size)
            .min(self.members.len());
        &self.members[lo..hi]
    }

    /// The region leader: it releases the tokens.
    pub fn leader(&self) -> Option<NodeId> {
        self.members.first().copied()
    }

    /// Whether the member at `index` leads its partition.
    pub fn is_partition_leader(&self, index: usize) -> bool {
        index.is_multiple_of(self.partition_size)
    }

    /// The next member on the partition ring after the member at `index`
    /// (wrapping to the partition leader), `None` alone in its partition.
    pub fn partition_successor(&self, index: usize) -> Option<NodeId> {
        let p = self.partition_of(index);
        let part = self.partition(p);
        let pos = index.checked_sub(p.saturating_mul(self.partition_size))?;
        if part.len() < 2 || pos >= part.len() {
            return None;
        }
        part.get((pos + 1) % part.len()).copied()
    }

    /// The member before `index` on the partition ring.
    pub fn partition_predecessor(&self, index: usize) -> Option<NodeId> {
        let p = self.partition_of(index);
        let part = self.partition(p);
        let pos = index.checked_sub(p.saturating_mul(self.partition_size))?;
        if part.len() < 2 || pos >= part.len() {
            return None;
        }
        part.get((pos + part.len() - 1) % part.len()).copied()
    }

    /// The leader of the partition after partition `p` on the ring of
    /// partition leaders (wrapping to the region leader), `None` with one
    /// partition.
    pub fn next_partition_leader(&self, p: usize) -> Option<NodeId> {
        let n = self.partitions();
        if n < 2 {
            return None;
        }
        self.partition((p + 1) % n).first().copied()
    }

    /// The leader of the partition before partition `p` on that ring.
    pub fn previous_partition_leader(&self, p: usize) -> Option<NodeId> {
        let n = self.partitions();
        if n < 2 {
            return None;
        }
        self.partition((p + n - 1) % n).first().copied()
    }

    /// The next member on the token's path after the member at `index`
    /// (wrapping to the region leader), `None` in a one-member region.
    pub fn successor(&self, index: usize) -> Option<NodeId> {
        if self.members.len() < 2 {
            return None;
        }
        let next = (index + 1) % self.members.len();
        self.members.get(next).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn ids(v: &[u16]) -> Vec<NodeId> {
        v.iter().map(|&i| NodeId(i)).collect()
    }

    #[test]
    fn partitions_of_consecutive_sorted_members() {
        let m: Vec<NodeId> = ids(&(1..=111).rev().collect::<Vec<_>>());
        let r = Region::new(
            &RegionView {
                address: GroupId(9),
                members: &m,
            },
            25,
        )
        .unwrap();
        assert_eq!(r.partitions(), 5);
        assert_eq!(r.partition(0).first(), Some(&NodeId(1)));
        assert_eq!(r.partition(0).len(), 25);
        assert_eq!(r.partition(4).len(), 11);
        assert_eq!(r.partition(5), &[]);
        assert_eq!(r.leader(), Some(NodeId(1)));
        assert_eq!(r.index_of(NodeId(26)), Some(25));
        assert_eq!(r.partition_of(25), 1);
        assert!(r.is_partition_leader(25));
        assert_eq!(r.successor(110), Some(NodeId(1)));
        assert_eq!(r.successor(0), Some(NodeId(2)));
        // Partition rings and the ring of partition leaders.
        assert_eq!(r.partition_successor(0), Some(NodeId(2)));
        assert_eq!(r.partition_successor(24), Some(NodeId(1)));
        assert_eq!(r.partition_predecessor(0), Some(NodeId(25)));
        assert_eq!(r.partition_successor(110), Some(NodeId(101)));
        assert_eq!(r.partition_predecessor(100), Some(NodeId(111)));
        assert_eq!(r.next_partition_leader(0), Some(NodeId(26)));
        assert_eq!(r.next_partition_leader(4), Some(NodeId(1)));
        assert_eq!(r.previous_partition_leader(0), Some(NodeId(101)));
    }

    #[test]
    fn bad_views_are_refused() {
        let v = |m: &'static [NodeId]| RegionView {
            address: GroupId(1),
            members: m,
        };
        assert_eq!(
            Region::new(&v(&[NodeId(1), NodeId(1)]), 25).unwrap_err(),
            ViewError::Duplicate
        );
        assert_eq!(Region::new(&v(&[]), 25).unwrap_err(), ViewError::Empty);
        assert_eq!(
            Region::new(&v(&[NodeId(1)]), 0).unwrap_err(),
            ViewError::Empty
        );
        let many: Vec<NodeId> = ids(&(0..200).collect::<Vec<_>>());
        let view = RegionView {
            address: GroupId(1),
            members: &many,
        };
        assert_eq!(
            Region::new(&view, 25).unwrap_err(),
            ViewError::TooManyMembers
        );
    }
}
