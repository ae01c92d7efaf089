//! Events waiting for the application, with their payloads stored contiguously.
//!
//! Events leave in FIFO order, so their payloads live in one byte ring
//! (a bip-buffer: an entry never wraps, it starts again at 0 instead). That
//! lets [`Inbox::front`] hand out a plain `&[u8]` that stays valid until the
//! next call, which is the lifetime contract of `poll_event` in every binding.
//! Capacity is fixed at construction; when an entry does not fit, the caller
//! decides (a receiver drops the frame whole, so nothing is half-applied).

use heapless::Deque;

#[derive(Clone, Copy, Debug)]
struct Entry<M> {
    meta: M,
    start: u32,
    len: u32,
}

/// A FIFO of `(meta, payload)` pairs over `BYTES` bytes and `N` entries.
pub struct Inbox<M: Copy, const BYTES: usize, const N: usize> {
    bytes: [u8; BYTES],
    entries: Deque<Entry<M>, N>,
    /// Start of the oldest entry (meaningful when non-empty).
    head: usize,
    /// One past the end of the newest entry.
    tail: usize,
    /// The newest entries start again at 0, before `head`.
    wrapped: bool,
}

impl<M: Copy, const BYTES: usize, const N: usize> Default for Inbox<M, BYTES, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M: Copy, const BYTES: usize, const N: usize> Inbox<M, BYTES, N> {
    /// An empty inbox.
    pub fn new() -> Self {
        Inbox {
            bytes: [0; BYTES],
            entries: Deque::new(),
            head: 0,
            tail: 0,
            wrapped: false,
        }
    }

    /// Number of queued entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Where an entry of `len` bytes would start, if it fits now.
    fn place(&self, len: usize) -> Option<usize> {
        if self.entries.is_full() || len > BYTES {
            return None;
        }
        if self.entries.is_empty() {
            return Some(0);
        }
        if !self.wrapped {
            if BYTES - self.tail >= len {
                Some(self.tail)
            } else if len <= self.head {
                Some(0)
            } else {
                None
            }
        } else if self.head - self.tail >= len {
            Some(self.tail)
        } else {
            None
        }
    }

    /// True when `count` entries totalling `bytes` bytes would all fit now.
    ///
    /// Conservative for several entries (it assumes the worst case of a
    /// wasted gap at the wrap), exact for one.
    pub fn can_fit(&self, count: usize, bytes: usize) -> bool {
        if count == 0 {
            return true;
        }
        if self.entries.len() + count > N {
            return false;
        }
        if count == 1 {
            return self.place(bytes).is_some();
        }
        // Free space, minus the largest gap a wrap could waste.
        let used = if self.entries.is_empty() {
            0
        } else if !self.wrapped {
            self.tail - self.head
        } else {
            BYTES - self.head + self.tail
        };
        BYTES.saturating_sub(used) >= bytes.saturating_mul(2)
    }

    /// Appends an entry whose payload is written by `fill` into a slice of
    /// exactly `len` bytes. Returns false (and changes nothing) when full.
    pub fn push_with(&mut self, meta: M, len: usize, fill: impl FnOnce(&mut [u8])) -> bool {
        let Some(start) = self.place(len) else {
            return false;
        };
        fill(&mut self.bytes[start..start + len]);
        if self.entries.is_empty() {
            self.head = start;
            self.wrapped = false;
        } else if start < self.head || (start == 0 && self.tail > 0 && !self.wrapped) {
            self.wrapped = true;
        }
        self.tail = start + len;
        // Cannot fail: place() checked is_full.
        let _ = self.entries.push_back(Entry {
            meta,
            start: start as u32,
            len: len as u32,
        });
        true
    }

    /// Appends an entry copying `payload`.
    pub fn push(&mut self, meta: M, payload: &[u8]) -> bool {
        self.push_with(meta, payload.len(), |b| b.copy_from_slice(payload))
    }

    /// The oldest entry.
    pub fn front(&self) -> Option<(M, &[u8])> {
        self.entries.front().map(|e| {
            let s = e.start as usize;
            (e.meta, &self.bytes[s..s + e.len as usize])
        })
    }

    /// Drops the oldest entry.
    pub fn pop(&mut self) {
        if self.entries.pop_front().is_some() {
            match self.entries.front() {
                Some(e) => {
                    let start = e.start as usize;
                    if start < self.head {
                        // The oldest entry is now one of the wrapped ones.
                        self.wrapped = false;
                    }
                    self.head = start;
                }
                None => {
                    self.head = 0;
                    self.tail = 0;
                    self.wrapped = false;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;
    use std::vec::Vec;

    #[test]
    fn wraps_without_splitting_payloads() {
        let mut ib: Inbox<u8, 10, 4> = Inbox::new();
        assert!(ib.push(1, &[1; 6]));
        assert!(ib.push(2, &[2; 3]));
        assert!(
            !ib.push(3, &[3; 2]),
            "2 bytes neither fit at the end nor before head"
        );
        ib.pop();
        assert!(ib.push(3, &[3; 5]), "wraps to the start");
        assert_eq!(ib.front(), Some((2, &[2u8; 3][..])));
        ib.pop();
        assert_eq!(ib.front(), Some((3, &[3u8; 5][..])));
        ib.pop();
        assert!(ib.is_empty());
        assert!(ib.push(4, &[4; 10]));
    }

    proptest! {
        // Against a VecDeque model: what is accepted comes out intact and in order,
        // and a refusal changes nothing.
        #[test]
        fn fifo_model(ops in proptest::collection::vec((0usize..40, any::<bool>()), 1..200)) {
            let mut ib: Inbox<u32, 64, 8> = Inbox::new();
            let mut model: VecDeque<(u32, Vec<u8>)> = VecDeque::new();
            for (i, (len, pop)) in ops.into_iter().enumerate() {
                if pop {
                    prop_assert_eq!(ib.front().map(|(m, p)| (m, p.to_vec())), model.front().cloned());
                    ib.pop();
                    model.pop_front();
                } else {
                    let data: Vec<u8> = (0..len).map(|j| (i + j) as u8).collect();
                    if ib.push(i as u32, &data) {
                        model.push_back((i as u32, data));
                    }
                }
                prop_assert_eq!(ib.len(), model.len());
            }
            while let Some((m, p)) = model.pop_front() {
                prop_assert_eq!(ib.front().map(|(m, p)| (m, p.to_vec())), Some((m, p)));
                ib.pop();
            }
        }
    }
}
