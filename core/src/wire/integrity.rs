//! Integrity schemas: how a logical frame becomes a datagram that detects
//! bit flips.
//!
//! Implements X-Lane §4.1 ("Bit Flips Errors in Links") and Appendix B. The
//! paper observes that one CRC over a whole MTU-sized packet detects fewer
//! errors than the Ethernet FCS promises once many small messages share it,
//! and splits the payload into *chunks*, each followed by its own frame check
//! sequence (FCS), sized so every chunk keeps a Hamming distance (HD) of 6 or
//! 8. Three schemas are selectable:
//!
//! | schema                 | id | FCS                      | data chunk | chunk |
//! | ---------------------- | -- | ------------------------ | ---------- | ----- |
//! | [`Integrity::Crc32c`]  | 0  | CRC-32C over whole frame | whole      | -     |
//! | [`Integrity::ChunkHd6`]| 1  | 24-bit, Koopman 0xbd80de | 23 bytes   | 26    |
//! | [`Integrity::ChunkHd8`]| 2  | 32-bit, Koopman 0xFA567D89 (CRC-32/AUTOSAR) | 32 bytes | 36 |
//!
//! Chunk sizes come from App. B: ⌊14/3 × 5⌋ = 23 data bytes for HD 6 and
//! ⌊14/3 × 7⌋ = 32 for HD 8, giving 55 chunks of 26 bytes in 1430 bytes and 40
//! chunks of 36 bytes in 1440 bytes. The last chunk may be shorter; its FCS
//! covers only its own bytes. A frame of `L` bytes seals to
//! `L + ⌈L / C⌉ × F` bytes (`C` data bytes and `F` FCS bytes per chunk).
//! CRC-32C appends one 4-byte trailer.
//!
//! # Polynomial notation
//!
//! The paper quotes polynomials in Koopman's notation, which writes the
//! x^width term as the top bit and drops the always-present +1 term. The
//! "normal" notation used by CRC catalogues drops x^width and keeps +1, so
//! `normal = ((K << 1) | 1) mod 2^width` ([`koopman_to_normal`]):
//!
//! - 0xbd80de → 0x17B01BD → 0x7B01BD (24 bits);
//! - 0xFA567D89 → 0x1F4ACFB13 → 0xF4ACFB13 (32 bits), which is exactly the
//!   polynomial of the catalogued CRC-32/AUTOSAR, so HD8 uses that algorithm
//!   unchanged (init 0xFFFFFFFF, reflected, xorout 0xFFFFFFFF; check value
//!   0x1697D06A).
//!
//! Both conversions are also asserted at compile time below.
//!
//! # Decisions where the paper is vague
//!
//! - The paper fixes only the 24-bit polynomial. We define [`CRC_24_HD6`]
//!   with init 0xFFFFFF so that leading zero bytes change the FCS (with init
//!   0 an all-zero chunk would have FCS 0 and prepended zeros would be
//!   invisible), no reflection (nothing on this path is bit-serial hardware
//!   that would favour it) and xorout 0. Error detection (the HD) depends only
//!   on the polynomial, not on these choices.
//! - Every FCS is stored big-endian, the width's low bytes only (3 bytes for
//!   the 24-bit code). Receivers recompute and compare, so the byte order of
//!   a reflected CRC does not matter for detection.
//! - An empty datagram, and a chunked datagram whose last chunk has no data
//!   byte after removing its FCS, are [`Error::Truncated`]: no valid sealing
//!   produces them.
//! - Under `cfg(fuzzing)` the FCS comparison always passes (as smoltcp does)
//!   so fuzzers reach the frame parser; lengths are still checked.

use crc::{Algorithm, Crc, CRC_32_AUTOSAR, CRC_32_ISCSI};

use super::{Error, MAX_MTU};

/// The HD 6 polynomial of X-Lane App. B, in Koopman notation (24 bits).
pub const KOOPMAN_HD6: u32 = 0x00bd_80de;
/// The HD 8 polynomial of X-Lane App. B, in Koopman notation (32 bits).
pub const KOOPMAN_HD8: u32 = 0xFA56_7D89;

/// Convert a CRC polynomial from Koopman notation (implicit +1, explicit
/// x^width as the top bit) to normal notation (implicit x^width, explicit +1)
/// for a `width`-bit CRC, `1 <= width <= 32`.
pub const fn koopman_to_normal(koopman: u32, width: u32) -> u32 {
    let mask = if width >= 32 {
        u32::MAX
    } else {
        (1u32 << width) - 1
    };
    // `<< 1` drops the x^width bit off the top for width 32; the mask drops it
    // for narrower widths.
    ((koopman << 1) | 1) & mask
}

/// The 24-bit HD 6 CRC used by [`Integrity::ChunkHd6`]: polynomial 0x7B01BD
/// (Koopman 0xbd80de), init 0xFFFFFF, no reflection, xorout 0. Its check
/// value (CRC of `"123456789"`) is 0x74A079.
pub const CRC_24_HD6: Algorithm<u32> = Algorithm {
    width: 24,
    poly: koopman_to_normal(KOOPMAN_HD6, 24),
    init: 0x00FF_FFFF,
    refin: false,
    refout: false,
    xorout: 0,
    check: 0x0074_A079,
    // Unreflected with xorout 0: data followed by its FCS leaves 0.
    residue: 0,
};

const _: () = assert!(CRC_24_HD6.poly == 0x007B_01BD);
const _: () = assert!(koopman_to_normal(KOOPMAN_HD8, 32) == CRC_32_AUTOSAR.poly);

// `static` so each 1 KiB table exists once in flash (a `const` would be
// copied at every use site).
// With the `fast-crc` feature (on by default) the frame CRC uses the crc
// crate's slice-by-16 tables: 16 KiB of tables for about a fifth of the
// instructions per byte. Firmware builds without default features keep the
// 1 KiB byte-wise table. Both compute the same CRC-32C.
#[cfg(feature = "fast-crc")]
static CRC32C: Crc<u32, crc::Table<16>> = Crc::<u32, crc::Table<16>>::new(&CRC_32_ISCSI);
#[cfg(not(feature = "fast-crc"))]
static CRC32C: Crc<u32> = Crc::<u32>::new(&CRC_32_ISCSI);
static CRC24_HD6: Crc<u32> = Crc::<u32>::new(&CRC_24_HD6);
static CRC32_HD8: Crc<u32> = Crc::<u32>::new(&CRC_32_AUTOSAR);

/// CRC-32C trailer length.
const CRC32C_LEN: usize = 4;

/// Which integrity schema protects a datagram (X-Lane §4.1, App. B).
///
/// The schema id is carried in the low two bits of the header's flags byte.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Integrity {
    /// One CRC-32C (Castagnoli) over the whole frame, as a 4-byte trailer.
    #[default]
    Crc32c,
    /// 23-byte chunks, each followed by a 3-byte HD 6 CRC ([`CRC_24_HD6`]).
    ChunkHd6,
    /// 32-byte chunks, each followed by a 4-byte HD 8 CRC (CRC-32/AUTOSAR).
    ChunkHd8,
}

impl Integrity {
    /// Every schema, in id order.
    pub const ALL: [Integrity; 3] = [Integrity::Crc32c, Integrity::ChunkHd6, Integrity::ChunkHd8];

    /// The id carried in the header's flags bits 0-1.
    pub const fn id(self) -> u8 {
        match self {
            Integrity::Crc32c => 0,
            Integrity::ChunkHd6 => 1,
            Integrity::ChunkHd8 => 2,
        }
    }

    /// The schema with this id; `None` for 3 and above.
    pub const fn from_id(id: u8) -> Option<Self> {
        match id {
            0 => Some(Integrity::Crc32c),
            1 => Some(Integrity::ChunkHd6),
            2 => Some(Integrity::ChunkHd8),
            _ => None,
        }
    }

    /// Data bytes per chunk, `None` for the whole-frame CRC-32C.
    pub const fn chunk_data_len(self) -> Option<usize> {
        match self {
            Integrity::Crc32c => None,
            Integrity::ChunkHd6 => Some(23),
            Integrity::ChunkHd8 => Some(32),
        }
    }

    /// Length in bytes of one FCS (per chunk, or the CRC-32C trailer).
    pub const fn fcs_len(self) -> usize {
        match self {
            Integrity::Crc32c => CRC32C_LEN,
            Integrity::ChunkHd6 => 3,
            Integrity::ChunkHd8 => 4,
        }
    }

    /// The FCS of `data` under this schema's CRC (one chunk, or the whole
    /// frame for CRC-32C), in the low [`fcs_len`](Self::fcs_len) bytes.
    pub fn fcs(self, data: &[u8]) -> u32 {
        match self {
            Integrity::Crc32c => CRC32C.checksum(data),
            Integrity::ChunkHd6 => CRC24_HD6.checksum(data),
            Integrity::ChunkHd8 => CRC32_HD8.checksum(data),
        }
    }

    /// Bytes the schema adds to a logical frame of `frame_len` bytes
    /// (saturating; any length that large is rejected elsewhere).
    pub const fn overhead_for(self, frame_len: usize) -> usize {
        match self.chunk_data_len() {
            None => CRC32C_LEN,
            Some(c) => frame_len.div_ceil(c).saturating_mul(self.fcs_len()),
        }
    }

    /// Length of the datagram that sealing `frame_len` bytes produces.
    pub const fn sealed_len(self, frame_len: usize) -> usize {
        frame_len.saturating_add(self.overhead_for(frame_len))
    }

    /// The largest logical frame whose sealed form fits in
    /// `datagram_budget` bytes (and in [`MAX_MTU`]); 0 if none does.
    pub const fn max_frame_len(self, datagram_budget: usize) -> usize {
        let b = if datagram_budget > MAX_MTU {
            MAX_MTU
        } else {
            datagram_budget
        };
        match self.chunk_data_len() {
            None => b.saturating_sub(CRC32C_LEN),
            Some(c) => {
                // q whole chunks, then a partial chunk if the rest of the
                // budget leaves at least one data byte after its FCS.
                let stride = c + self.fcs_len();
                (b / stride) * c + (b % stride).saturating_sub(self.fcs_len())
            }
        }
    }

    /// Seal in place: `buf[..frame_len]` holds the logical frame; on success
    /// `buf[..n]` holds the datagram and `n` is returned.
    ///
    /// Chunked schemas spread the frame out back to front (the last chunk
    /// moves furthest), so no scratch memory is needed.
    ///
    /// Errors: [`Error::BufferTooSmall`] if `frame_len > buf.len()` or the
    /// sealed datagram does not fit in `buf`; [`Error::Oversized`] if it
    /// would exceed [`MAX_MTU`]. On error `buf` is unchanged.
    pub fn seal(self, buf: &mut [u8], frame_len: usize) -> Result<usize, Error> {
        if frame_len > buf.len() {
            return Err(Error::BufferTooSmall);
        }
        let sealed = self.sealed_len(frame_len);
        if sealed > MAX_MTU {
            return Err(Error::Oversized);
        }
        let out = buf.get_mut(..sealed).ok_or(Error::BufferTooSmall)?;
        let f = self.fcs_len();
        match self.chunk_data_len() {
            None => {
                let (frame, trailer) = out.split_at_mut(frame_len);
                let crc = self.fcs(frame);
                trailer.copy_from_slice(&crc.to_be_bytes());
            }
            Some(c) => {
                let stride = c + f;
                // Chunk i's destination starts at i*stride >= i*c, the end of
                // chunk i-1's data, so moving the last chunk first never
                // overwrites data not yet moved.
                for i in (0..frame_len.div_ceil(c)).rev() {
                    let src = i * c;
                    let len = c.min(frame_len - src);
                    let dst = i * stride;
                    out.copy_within(src..src + len, dst);
                    let (data, rest) = out[dst..].split_at_mut(len);
                    write_fcs(&mut rest[..f], self.fcs(data));
                }
            }
        }
        Ok(sealed)
    }

    /// Verify a datagram and return the logical frame inside it.
    ///
    /// For [`Integrity::Crc32c`] the frame is a subslice of `datagram` (zero
    /// copy) and `scratch` is unused. Chunked schemas copy the chunks' data
    /// into `scratch`, which must hold the frame (a `scratch` as long as the
    /// datagram always suffices).
    ///
    /// Errors: [`Error::Oversized`] beyond [`MAX_MTU`]; [`Error::Truncated`]
    /// when the datagram is empty or too short for its FCS;
    /// [`Error::BadChecksum`] on any FCS mismatch; [`Error::BufferTooSmall`]
    /// when `scratch` cannot hold the frame.
    /// Like [`open`](Self::open), but de-chunks in place: on success the
    /// logical frame is `datagram[..n]` with `n` returned. The bytes after
    /// `n` (and, on error, any of them) are unspecified.
    pub fn open_in_place(self, datagram: &mut [u8]) -> Result<usize, Error> {
        if datagram.len() > MAX_MTU {
            return Err(Error::Oversized);
        }
        if datagram.is_empty() {
            return Err(Error::Truncated);
        }
        let f = self.fcs_len();
        match self.chunk_data_len() {
            None => Ok(self.open(datagram, &mut [])?.len()),
            Some(c) => {
                let stride = c + f;
                let rem = datagram.len() % stride;
                let last_data = match rem {
                    0 => 0,
                    r if r <= f => return Err(Error::Truncated),
                    r => r - f,
                };
                let frame_len = (datagram.len() / stride) * c + last_data;
                let chunks = datagram.len().div_ceil(stride);
                // Verify every chunk first, then compact: chunk i moves from
                // i·stride to i·c, never forward, so copy_within is safe.
                for i in 0..chunks {
                    let start = i * stride;
                    let end = (start + stride).min(datagram.len());
                    let chunk = &datagram[start..end];
                    let (data, fcs) = chunk.split_at(chunk.len().saturating_sub(f));
                    if !fcs_matches(self.fcs(data), read_fcs(fcs)) {
                        return Err(Error::BadChecksum);
                    }
                }
                for i in 1..chunks {
                    let start = i * stride;
                    let len = (datagram.len() - start).min(stride) - f;
                    datagram.copy_within(start..start + len, i * c);
                }
                Ok(frame_len)
            }
        }
    }

    /// Verifies `datagram` and returns the logical frame (see module docs).
    pub fn open<'a>(self, datagram: &'a [u8], scratch: &'a mut [u8]) -> Result<&'a [u8], Error> {
        if datagram.len() > MAX_MTU {
            return Err(Error::Oversized);
        }
        if datagram.is_empty() {
            return Err(Error::Truncated);
        }
        let f = self.fcs_len();
        match self.chunk_data_len() {
            None => {
                let body_len = datagram
                    .len()
                    .checked_sub(CRC32C_LEN)
                    .ok_or(Error::Truncated)?;
                let (frame, trailer) = datagram.split_at(body_len);
                if !fcs_matches(self.fcs(frame), read_fcs(trailer)) {
                    return Err(Error::BadChecksum);
                }
                Ok(frame)
            }
            Some(c) => {
                let stride = c + f;
                let rem = datagram.len() % stride;
                // A last chunk of `f` bytes or fewer has no data: no sealing
                // produces that.
                let last_data = match rem {
                    0 => 0,
                    r if r <= f => return Err(Error::Truncated),
                    r => r - f,
                };
                let frame_len = (datagram.len() / stride) * c + last_data;
                let out = scratch.get_mut(..frame_len).ok_or(Error::BufferTooSmall)?;
                // Both sides split into the same number of chunks, the last
                // ones of `last_data` (+ `f`) bytes.
                for (chunk, dst) in datagram.chunks(stride).zip(out.chunks_mut(c)) {
                    let (data, fcs) = chunk.split_at(chunk.len().saturating_sub(f));
                    if !fcs_matches(self.fcs(data), read_fcs(fcs)) {
                        return Err(Error::BadChecksum);
                    }
                    dst.copy_from_slice(data);
                }
                Ok(out)
            }
        }
    }
}

/// Store the low `out.len()` bytes of `fcs`, big-endian.
fn write_fcs(out: &mut [u8], fcs: u32) {
    let bytes = fcs.to_be_bytes();
    let skip = bytes.len().saturating_sub(out.len());
    for (o, b) in out.iter_mut().zip(&bytes[skip..]) {
        *o = *b;
    }
}

/// Read a big-endian FCS of 0 to 4 bytes.
fn read_fcs(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b))
}

#[cfg(not(fuzzing))]
fn fcs_matches(computed: u32, received: u32) -> bool {
    computed == received
}

/// Fuzzing builds accept every FCS so that random inputs reach the parser.
#[cfg(fuzzing)]
fn fcs_matches(_computed: u32, _received: u32) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    /// Independent bit-serial CRC: a shift register fed one message bit at a
    /// time, MSB-first unless `refin` (then each byte LSB-first), register
    /// reflected on output if `refout`, then XORed with `xorout`. Shares no
    /// code or tables with the `crc` crate.
    fn crc_bitwise(
        data: &[u8],
        width: u32,
        poly: u64,
        init: u64,
        refin: bool,
        refout: bool,
        xorout: u64,
    ) -> u64 {
        let mask = (1u64 << width) - 1;
        let top = 1u64 << (width - 1);
        let mut reg = init & mask;
        for &byte in data {
            for i in 0..8 {
                let bit = if refin {
                    (byte >> i) & 1
                } else {
                    (byte >> (7 - i)) & 1
                };
                let feedback = ((reg & top) != 0) ^ (bit == 1);
                reg = (reg << 1) & mask;
                if feedback {
                    reg ^= poly;
                }
            }
        }
        if refout {
            let mut r = 0;
            for i in 0..width {
                if reg & (1 << i) != 0 {
                    r |= 1 << (width - 1 - i);
                }
            }
            reg = r;
        }
        (reg ^ xorout) & mask
    }

    /// The reference with each schema's parameters written out by hand.
    fn reference(schema: Integrity, data: &[u8]) -> u32 {
        let r = match schema {
            Integrity::Crc32c => {
                crc_bitwise(data, 32, 0x1EDC_6F41, 0xFFFF_FFFF, true, true, 0xFFFF_FFFF)
            }
            Integrity::ChunkHd6 => crc_bitwise(data, 24, 0x7B_01BD, 0xFF_FFFF, false, false, 0),
            Integrity::ChunkHd8 => {
                crc_bitwise(data, 32, 0xF4AC_FB13, 0xFFFF_FFFF, true, true, 0xFFFF_FFFF)
            }
        };
        r as u32
    }

    #[test]
    fn koopman_conversion() {
        assert_eq!(koopman_to_normal(KOOPMAN_HD6, 24), 0x7B_01BD);
        assert_eq!(koopman_to_normal(KOOPMAN_HD8, 32), 0xF4AC_FB13);
        // CRC-8 Koopman 0x83 is x^8+x^2+x+1 = normal 0x07 (CRC-8/SMBUS).
        assert_eq!(koopman_to_normal(0x83, 8), 0x07);
        // CRC-32 (IEEE) Koopman 0x82608EDB = normal 0x04C11DB7.
        assert_eq!(koopman_to_normal(0x8260_8EDB, 32), 0x04C1_1DB7);
    }

    #[test]
    fn catalogue_check_values() {
        let check = b"123456789";
        // Published catalogue values, independent of both implementations.
        assert_eq!(reference(Integrity::Crc32c, check), 0xE306_9283);
        assert_eq!(Integrity::Crc32c.fcs(check), 0xE306_9283);
        assert_eq!(reference(Integrity::ChunkHd8, check), 0x1697_D06A);
        assert_eq!(Integrity::ChunkHd8.fcs(check), 0x1697_D06A);
        // Our own algorithm: the crate and the reference must agree, and the
        // value recorded in CRC_24_HD6.check must be right.
        assert_eq!(reference(Integrity::ChunkHd6, check), CRC_24_HD6.check);
        assert_eq!(Integrity::ChunkHd6.fcs(check), CRC_24_HD6.check);
    }

    #[test]
    fn fixed_vectors_match_reference() {
        let inputs: [&[u8]; 7] = [
            b"",
            b"\x00",
            b"\x00\x00\x00\x00",
            b"\xff",
            b"The quick brown fox jumps over the lazy dog",
            &[0xA5; 23],
            &[0x5A; 32],
        ];
        for s in Integrity::ALL {
            for data in inputs {
                assert_eq!(s.fcs(data), reference(s, data), "{s:?} {data:?}");
            }
        }
        // init != 0: leading zero bytes change the 24-bit FCS.
        assert_ne!(
            Integrity::ChunkHd6.fcs(b"\x00abc"),
            Integrity::ChunkHd6.fcs(b"abc")
        );
        assert_ne!(Integrity::ChunkHd6.fcs(&[0; 23]), 0);
        // The 24-bit FCS fits in 3 bytes.
        assert!(Integrity::ChunkHd6.fcs(&[0xFF; 23]) <= 0xFF_FFFF);
    }

    #[test]
    fn ids_round_trip() {
        for s in Integrity::ALL {
            assert_eq!(Integrity::from_id(s.id()), Some(s));
        }
        assert_eq!(Integrity::from_id(3), None);
        assert_eq!(Integrity::from_id(0xFF), None);
        assert_eq!(Integrity::default(), Integrity::Crc32c);
    }

    #[test]
    fn paper_chunk_geometry() {
        // X-Lane App. B: 55 chunks of 26 bytes (1265 data bytes) and 40
        // chunks of 36 bytes (1280 data bytes).
        assert_eq!(Integrity::ChunkHd6.sealed_len(55 * 23), 1430);
        assert_eq!(Integrity::ChunkHd6.max_frame_len(1430), 1265);
        assert_eq!(Integrity::ChunkHd8.sealed_len(40 * 32), 1440);
        assert_eq!(Integrity::ChunkHd8.max_frame_len(1440), 1280);
        assert_eq!(Integrity::Crc32c.overhead_for(1000), 4);
        assert_eq!(Integrity::ChunkHd6.overhead_for(24), 6);
        assert_eq!(Integrity::ChunkHd8.overhead_for(32), 4);
        assert_eq!(Integrity::ChunkHd8.overhead_for(33), 8);
        // A budget leaving <= F bytes after the last full chunk adds nothing.
        assert_eq!(Integrity::ChunkHd6.max_frame_len(26 + 3), 23);
        assert_eq!(Integrity::ChunkHd6.max_frame_len(26 + 4), 24);
        assert_eq!(Integrity::Crc32c.max_frame_len(3), 0);
        assert_eq!(Integrity::Crc32c.max_frame_len(usize::MAX), MAX_MTU - 4);
    }

    #[test]
    fn sealed_layout_is_chunk_then_fcs() {
        let frame: Vec<u8> = (0u8..50).collect();
        let s = Integrity::ChunkHd6;
        let mut buf = vec![0u8; 64];
        buf[..50].copy_from_slice(&frame);
        let n = s.seal(&mut buf, 50).unwrap();
        assert_eq!(n, 50 + 3 * 3);
        // chunk 0: bytes 0..23 then FCS; chunk 1: 23..46; chunk 2: 46..50.
        assert_eq!(&buf[0..23], &frame[0..23]);
        assert_eq!(read_fcs(&buf[23..26]), reference(s, &frame[0..23]));
        assert_eq!(&buf[26..49], &frame[23..46]);
        assert_eq!(read_fcs(&buf[49..52]), reference(s, &frame[23..46]));
        assert_eq!(&buf[52..56], &frame[46..50]);
        assert_eq!(read_fcs(&buf[56..59]), reference(s, &frame[46..50]));

        let mut buf = vec![0u8; 64];
        buf[..50].copy_from_slice(&frame);
        let n = Integrity::Crc32c.seal(&mut buf, 50).unwrap();
        assert_eq!(n, 54);
        assert_eq!(
            &buf[50..54],
            &reference(Integrity::Crc32c, &frame).to_be_bytes()
        );
    }

    #[test]
    fn seal_errors_leave_buffer_unchanged() {
        for s in Integrity::ALL {
            let mut buf = vec![7u8; 40];
            let need = s.sealed_len(40);
            assert_eq!(s.seal(&mut buf, 40), Err(Error::BufferTooSmall));
            assert_eq!(s.seal(&mut buf, 41), Err(Error::BufferTooSmall));
            assert_eq!(buf, vec![7u8; 40]);
            let mut big = vec![0u8; MAX_MTU + 8];
            assert_eq!(s.seal(&mut big, MAX_MTU), Err(Error::Oversized));
            let mut ok = vec![7u8; need];
            assert_eq!(s.seal(&mut ok, 40), Ok(need));
        }
    }

    #[test]
    fn open_length_errors() {
        let mut scratch = [0u8; 128];
        for s in Integrity::ALL {
            assert_eq!(s.open(&[], &mut scratch), Err(Error::Truncated));
            assert_eq!(
                s.open(&vec![0u8; MAX_MTU + 1], &mut scratch),
                Err(Error::Oversized)
            );
        }
        assert_eq!(
            Integrity::Crc32c.open(&[1, 2, 3], &mut scratch),
            Err(Error::Truncated)
        );
        // A chunked datagram whose last chunk is only an FCS.
        assert_eq!(
            Integrity::ChunkHd6.open(&[0; 26 + 3], &mut scratch),
            Err(Error::Truncated)
        );
        assert_eq!(
            Integrity::ChunkHd8.open(&[0; 4], &mut scratch),
            Err(Error::Truncated)
        );
        // Scratch too small for the frame.
        let mut buf = [0u8; 60];
        let n = Integrity::ChunkHd8.seal(&mut buf, 40).unwrap();
        assert_eq!(
            Integrity::ChunkHd8.open(&buf[..n], &mut [0u8; 39]),
            Err(Error::BufferTooSmall)
        );
        assert_eq!(
            Integrity::ChunkHd8
                .open(&buf[..n], &mut [0u8; 40])
                .map(|f| f.len()),
            Ok(40)
        );
    }

    fn schema() -> impl Strategy<Value = Integrity> {
        prop_oneof![
            Just(Integrity::Crc32c),
            Just(Integrity::ChunkHd6),
            Just(Integrity::ChunkHd8)
        ]
    }

    proptest! {
        #[test]
        fn table_crc_equals_bitwise_reference(s in schema(), data in proptest::collection::vec(any::<u8>(), 0..200)) {
            prop_assert_eq!(s.fcs(&data), reference(s, &data));
        }

        #[test]
        fn seal_open_round_trip(s in schema(), frame in proptest::collection::vec(any::<u8>(), 1..1500)) {
            let mut buf = vec![0u8; s.sealed_len(frame.len())];
            buf[..frame.len()].copy_from_slice(&frame);
            let n = s.seal(&mut buf, frame.len()).unwrap();
            prop_assert_eq!(n, frame.len() + s.overhead_for(frame.len()));
            let mut scratch = vec![0u8; n];
            let opened = s.open(&buf[..n], &mut scratch).unwrap();
            prop_assert_eq!(opened, &frame[..]);
            // CRC-32C is zero copy: the frame is the datagram's prefix.
            if s == Integrity::Crc32c {
                let opened = s.open(&buf[..n], &mut []).unwrap();
                prop_assert_eq!(opened.as_ptr(), buf.as_ptr());
            }
        }

        #[test]
        fn single_bit_flip_detected(s in schema(), frame in proptest::collection::vec(any::<u8>(), 1..600), pick: prop::sample::Index, bit in 0u8..8) {
            let mut buf = vec![0u8; s.sealed_len(frame.len())];
            buf[..frame.len()].copy_from_slice(&frame);
            let n = s.seal(&mut buf, frame.len()).unwrap();
            let at = pick.index(n);
            buf[at] ^= 1 << bit;
            let mut scratch = vec![0u8; n];
            prop_assert_eq!(s.open(&buf[..n], &mut scratch), Err(Error::BadChecksum));
        }

        #[test]
        fn max_frame_len_is_tight(s in schema(), budget in 0usize..70_000) {
            let m = s.max_frame_len(budget);
            prop_assert!(s.sealed_len(m) <= budget.min(MAX_MTU) || m == 0);
            prop_assert!(s.sealed_len(m + 1) > budget.min(MAX_MTU));
        }

        #[test]
        fn open_arbitrary_never_panics(s in schema(), data in proptest::collection::vec(any::<u8>(), 0..400), scratch_len in 0usize..400) {
            let mut scratch = vec![0u8; scratch_len];
            let _ = s.open(&data, &mut scratch);
        }
    }
}
