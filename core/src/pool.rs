//! Fixed-capacity payload storage for messages waiting to leave.
//!
//! QSM §6 ("minimize the memory footprint", "limit buffering") is the reason
//! this exists in the shape it has: all payload bytes a node holds for sending
//! live in one arena of `BLOCKS` blocks of [`BLOCK_LEN`] bytes, sized at
//! construction. A message occupies a chain of blocks, so messages of any size
//! up to the arena can be stored and freed in any order without external
//! fragmentation; the cost is at most `BLOCK_LEN - 1` wasted bytes a message.
//! Reads walk the chain; callers that read a long message piece by piece
//! (fragmentation) keep a [`Cursor`] so the walk is amortised O(1).

/// Bytes in one block.
pub const BLOCK_LEN: usize = 128;
const NONE: u16 = u16::MAX;

/// A stored message: its first block and its length.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Handle {
    first: u16,
    len: u32,
}

impl Handle {
    /// Length of the stored message in bytes.
    pub fn len(&self) -> usize {
        self.len as usize
    }
    /// True for a zero-length message.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A read position inside a message: the block that holds byte `base`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Cursor {
    block: u16,
    base: u32,
}

/// The arena is full: the caller must refuse the message (backpressure).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PoolFull;

/// A block arena of `BLOCKS` × [`BLOCK_LEN`] bytes.
pub struct Pool<const BLOCKS: usize> {
    blocks: [[u8; BLOCK_LEN]; BLOCKS],
    next: [u16; BLOCKS],
    free_head: u16,
    free_count: usize,
}

impl<const BLOCKS: usize> Default for Pool<BLOCKS> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const BLOCKS: usize> Pool<BLOCKS> {
    /// An empty arena. `BLOCKS` must be below 65535.
    pub fn new() -> Self {
        const { assert!(BLOCKS < NONE as usize, "at most 65534 blocks") };
        let mut next = [NONE; BLOCKS];
        for (i, n) in next.iter_mut().enumerate() {
            *n = if i + 1 < BLOCKS { (i + 1) as u16 } else { NONE };
        }
        Pool {
            blocks: [[0; BLOCK_LEN]; BLOCKS],
            next,
            free_head: if BLOCKS > 0 { 0 } else { NONE },
            free_count: BLOCKS,
        }
    }

    /// Blocks needed to store `len` bytes.
    pub const fn blocks_for(len: usize) -> usize {
        len.div_ceil(BLOCK_LEN)
    }

    /// Free bytes, in whole blocks.
    pub fn free_bytes(&self) -> usize {
        self.free_count * BLOCK_LEN
    }

    /// True when `len` bytes can be stored now.
    pub fn can_store(&self, len: usize) -> bool {
        Self::blocks_for(len) <= self.free_count
    }

    /// Reserves room for `len` bytes (contents unspecified until written).
    pub fn alloc(&mut self, len: usize) -> Result<Handle, PoolFull> {
        let need = Self::blocks_for(len);
        if need > self.free_count || len > u32::MAX as usize {
            return Err(PoolFull);
        }
        // Take `need` blocks off the free list; they are already chained.
        let first = if need == 0 { NONE } else { self.free_head };
        let mut last = NONE;
        let mut cur = self.free_head;
        for _ in 0..need {
            last = cur;
            cur = self.next[cur as usize];
        }
        if need > 0 {
            self.next[last as usize] = NONE;
            self.free_head = cur;
            self.free_count -= need;
        }
        Ok(Handle {
            first,
            len: len as u32,
        })
    }

    /// Stores `data` as a new message.
    pub fn store(&mut self, data: &[u8]) -> Result<Handle, PoolFull> {
        let h = self.alloc(data.len())?;
        self.write(h, 0, data);
        Ok(h)
    }

    /// Returns the message's blocks to the free list.
    pub fn free(&mut self, h: Handle) {
        let n = Self::blocks_for(h.len());
        if n == 0 {
            return;
        }
        let mut last = h.first;
        for _ in 1..n {
            last = self.next[last as usize];
        }
        self.next[last as usize] = self.free_head;
        self.free_head = h.first;
        self.free_count += n;
    }

    /// A cursor at the start of `h`.
    pub fn cursor(&self, h: Handle) -> Cursor {
        Cursor {
            block: h.first,
            base: 0,
        }
    }

    /// Moves `cur` forward to the block holding byte `offset` (never back).
    fn seek(&self, cur: &mut Cursor, offset: u32) {
        if offset < cur.base {
            return;
        }
        while offset - cur.base >= BLOCK_LEN as u32 && cur.block != NONE {
            cur.block = self.next[cur.block as usize];
            cur.base += BLOCK_LEN as u32;
        }
    }

    /// Copies `out.len()` bytes starting at `offset` of `h` into `out`,
    /// starting the walk at `cur` (which must not be past `offset`) and leaving
    /// it at the last block read. Returns bytes copied (short at the end).
    pub fn read_at(&self, h: Handle, cur: &mut Cursor, offset: usize, out: &mut [u8]) -> usize {
        if offset >= h.len() {
            return 0;
        }
        if (offset as u32) < cur.base {
            *cur = self.cursor(h);
        }
        let want = out.len().min(h.len() - offset);
        let mut done = 0;
        while done < want {
            let pos = (offset + done) as u32;
            self.seek(cur, pos);
            if cur.block == NONE {
                break;
            }
            let within = (pos - cur.base) as usize;
            let n = (BLOCK_LEN - within).min(want - done);
            out[done..done + n]
                .copy_from_slice(&self.blocks[cur.block as usize][within..within + n]);
            done += n;
        }
        done
    }

    /// Copies from the start of `h` into `out`; returns bytes copied.
    pub fn read(&self, h: Handle, out: &mut [u8]) -> usize {
        let mut cur = self.cursor(h);
        self.read_at(h, &mut cur, 0, out)
    }

    /// Writes `data` at `offset` inside `h` (clipped to the message length).
    pub fn write(&mut self, h: Handle, offset: usize, data: &[u8]) -> usize {
        if offset >= h.len() {
            return 0;
        }
        let want = data.len().min(h.len() - offset);
        let mut cur = self.cursor(h);
        let mut done = 0;
        while done < want {
            let pos = (offset + done) as u32;
            self.seek(&mut cur, pos);
            if cur.block == NONE {
                break;
            }
            let within = (pos - cur.base) as usize;
            let n = (BLOCK_LEN - within).min(want - done);
            self.blocks[cur.block as usize][within..within + n]
                .copy_from_slice(&data[done..done + n]);
            done += n;
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    #[test]
    fn store_read_free_round_trip() {
        let mut p: Pool<8> = Pool::new();
        let data: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let h = p.store(&data).unwrap();
        assert_eq!(p.free_bytes(), 5 * BLOCK_LEN);
        let mut out = [0u8; 300];
        assert_eq!(p.read(h, &mut out), 300);
        assert_eq!(&out[..], &data[..]);
        p.free(h);
        assert_eq!(p.free_bytes(), 8 * BLOCK_LEN);
    }

    #[test]
    fn full_arena_refuses_without_change() {
        let mut p: Pool<2> = Pool::new();
        let a = p.store(&[1; 200]).unwrap();
        assert_eq!(p.store(&[2; 1]), Err(PoolFull));
        assert_eq!(p.free_bytes(), 0);
        p.free(a);
        assert!(p.store(&[3; 256]).is_ok());
        assert_eq!(p.store(&[]).map(|h| h.len()), Ok(0));
    }

    #[test]
    fn cursor_reads_in_pieces() {
        let mut p: Pool<16> = Pool::new();
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let h = p.store(&data).unwrap();
        let mut cur = p.cursor(h);
        let mut got = Vec::new();
        let mut off = 0;
        while off < data.len() {
            let mut buf = [0u8; 77];
            let n = p.read_at(h, &mut cur, off, &mut buf);
            got.extend_from_slice(&buf[..n]);
            off += n;
        }
        assert_eq!(got, data);
    }

    proptest! {
        // Interleaved allocs and frees in any order never corrupt other messages.
        #[test]
        fn messages_stay_intact(ops in proptest::collection::vec((0usize..600, any::<bool>()), 1..60)) {
            let mut p: Pool<32> = Pool::new();
            let mut live: Vec<(Handle, Vec<u8>)> = Vec::new();
            for (i, (len, free_one)) in ops.into_iter().enumerate() {
                if free_one && !live.is_empty() {
                    let (h, _) = live.remove(i % live.len());
                    p.free(h);
                } else {
                    let data: Vec<u8> = (0..len).map(|j| (i * 31 + j) as u8).collect();
                    match p.store(&data) {
                        Ok(h) => live.push((h, data)),
                        Err(PoolFull) => prop_assert!(!p.can_store(len)),
                    }
                }
                for (h, d) in &live {
                    let mut out = std::vec![0u8; d.len()];
                    prop_assert_eq!(p.read(*h, &mut out), d.len());
                    prop_assert_eq!(&out, d);
                }
                let used: usize = live.iter().map(|(h, _)| Pool::<32>::blocks_for(h.len())).sum();
                prop_assert_eq!(p.free_bytes(), (32 - used) * BLOCK_LEN);
            }
        }
    }
}
