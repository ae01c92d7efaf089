//! The wire format: frames of typed records, sealed by a selectable
//! integrity schema.
//!
//! Implements the datagram layout phasecast puts on the network, and the CRC
//! chunk schemas of X-Lane (*Live in the Express Lane*, §4.1 "Bit Flips
//! Errors in Links" and Appendix B). The record types carry the traffic of
//! the other papers (FastCast's total order, Omaha's pledges, QSM's token
//! rings); their code ranges are reserved below so those modules can add
//! variants without renumbering.
//!
//! The style follows smoltcp's `wire` module: a [`Frame`] is a zero-copy view
//! over a borrowed buffer, [`Header`] and [`RecordRepr`] are the parsed,
//! high-level representations, and every `emit` writes into memory the caller
//! owns. Nothing here allocates, and nothing panics on any input: every bad
//! byte sequence maps to a typed [`Error`].
//!
//! # Datagram layout
//!
//! A *frame* (the logical frame) is a header followed by records. The sender
//! builds it with [`FrameWriter`], then [`Integrity::seal`] turns it in place
//! into the *datagram* that goes on the network. The receiver calls
//! [`decode`] (or [`Integrity::open`] then [`Frame::new_checked`]).
//!
//! All integers are big-endian.
//!
//! ```
//! use phasecast_core::seq::Seq;
//! use phasecast_core::wire::{
//!     decode, FrameWriter, Header, Integrity, Record, RecordRepr, GROUP_NONE, MIN_MTU,
//! };
//!
//! // Send: build the logical frame, then seal it in the same buffer.
//! let s = Integrity::ChunkHd6;
//! let header = Header { integrity: s, cluster: 1, sender: 2, view: 0, seq: Seq(0) };
//! let mut buf = [0u8; MIN_MTU];
//! let mut w = FrameWriter::new(&mut buf, &header, s.max_frame_len(MIN_MTU))?;
//! w.push(&RecordRepr::Data { group: GROUP_NONE, msg: Seq(1), payload: b"hello" })?;
//! let len = w.finish();
//! let n = s.seal(&mut buf, len)?;
//!
//! // Receive: verify, de-chunk into scratch, validate every record.
//! let mut scratch = [0u8; MIN_MTU];
//! let frame = decode(s, &buf[..n], &mut scratch)?;
//! assert_eq!(frame.header()?, header);
//! let mut records = frame.records();
//! assert!(matches!(
//!     records.next(),
//!     Some(Record::Known(RecordRepr::Data { payload: b"hello", .. }))
//! ));
//! assert_eq!(records.next(), None);
//! # Ok::<(), phasecast_core::wire::Error>(())
//! ```
//!
//! ```text
//! off len field
//! 0   2   magic = 0x5043 ("PC")
//! 2   1   version = 1
//! 3   1   flags: bits 0-1 integrity schema id (0 CRC-32C, 1 chunked
//!         HD6/CRC-24, 2 chunked HD8/CRC-32, 3 invalid); bits 2-7 reserved, 0
//! 4   4   cluster id
//! 8   2   sender node id
//! 10  4   view / epoch
//! 14  4   frame sequence (per sender, wraps; serial arithmetic)
//! 18  ..  records: kind u8 | len u16 | body[len], repeated to the end
//! ```
//!
//! A frame with zero records is valid: it is a keep-alive.
//!
//! # Record kinds
//!
//! | code        | meaning |
//! | ----------- | ------- |
//! | `0x01`      | [`RecordRepr::Data`]: a whole message |
//! | `0x02`      | [`RecordRepr::Fragment`]: a slice of a large message |
//! | `0x03`      | [`RecordRepr::Heartbeat`]: X-FD heartbeat (X-Lane §5.1) |
//! | `0x10-0x1F` | reserved: total order (FastCast) |
//! | `0x20-0x2F` | reserved: pledges / application (Omaha) |
//! | `0x30-0x34` | QSM multicast: data, token, request, ack, pass ([`multicast`]) |
//! | `0x35-0x3F` | reserved: token rings (QSM) |
//! | bit 7 set   | *ignorable*: a receiver that does not know the kind skips it |
//!
//! An unknown kind with bit 7 clear makes the whole frame invalid
//! ([`Error::UnknownRecord`]); an unknown kind with bit 7 set is skipped and
//! reported as [`Record::Ignored`] so the node can count it. This is how later
//! versions add optional information without breaking old receivers.
//!
//! # Design decisions
//!
//! - **Validation is all-or-nothing.** [`Frame::new_checked`] (and so
//!   [`decode`]) walks and parses every record, so a frame that passes can be
//!   applied without any later error; its [`Frame::records`] iterator is
//!   infallible. A single malformed record rejects the whole frame, so that a
//!   node never applies half a datagram.
//! - **The writer refuses to produce invalid frames.** Because one bad record
//!   poisons a frame, [`FrameWriter::push`] validates the record (e.g. the
//!   fragment bounds) and [`FrameWriter::push_with`] re-parses the body the
//!   closure wrote; an unknown, non-ignorable kind is refused. Every frame a
//!   writer finishes therefore passes [`Frame::new_checked`].
//! - **A record header cut short** (one or two bytes after the last record)
//!   is [`Error::Truncated`]; a record whose length runs past the end is
//!   [`Error::RecordOverrun`].
//! - **The schema is in the header *and* chosen by the receiver.** The
//!   receiver must know the schema to find the frame inside a chunked
//!   datagram, so it opens with its configured schema and then rejects a
//!   header naming another one ([`Error::SchemaMismatch`]); the header field
//!   makes misconfiguration visible instead of looking like corruption.
//! - Group ids stay raw `u32` on the wire representation, with
//!   [`GROUP_NONE`] meaning point-to-point; message ids and frame sequences
//!   are [`Seq`](crate::seq::Seq) because they wrap.

mod frame;
mod integrity;
pub mod multicast;
pub mod order;
mod record;

pub use frame::{
    decode, decode_in_place, Frame, FrameWriter, Header, RecordIter, RecordViews, Records,
};
pub use integrity::{koopman_to_normal, Integrity, CRC_24_HD6, KOOPMAN_HD6, KOOPMAN_HD8};
pub use order::{IdEntry, IdList, MemberList};
pub use record::{
    is_ignorable, is_known_kind, Record, RecordRepr, RecordView, DATA_HEADER_LEN,
    FRAGMENT_HEADER_LEN, GROUP_NONE, HEARTBEAT_LEN, KIND_DATA, KIND_FRAGMENT, KIND_HEARTBEAT,
    KIND_IGNORABLE, KIND_PLEDGE, KIND_TOKEN_RING, KIND_TOTAL_ORDER, RECORD_HEADER_LEN,
};

use core::fmt;

/// `"PC"`: the first two bytes of every frame.
pub const MAGIC: u16 = 0x5043;
/// The only wire version this code speaks.
pub const VERSION: u8 = 1;
/// Smallest datagram budget (UDP payload) a host may configure. Every IPv4
/// host must accept 576-byte datagrams (RFC 791) *including* the IP and UDP
/// headers; 512 bytes of payload fit with room for IP options, the budget
/// DNS chose for the same reason. Every record of the protocol fits in it
/// with every integrity schema (a chunked schema leaves 452 bytes of frame).
pub const MIN_MTU: usize = 512;
/// Largest datagram: the maximal UDP payload over IPv4 (65535 - 20 - 8).
/// Anything longer is rejected as [`Error::Oversized`].
pub const MAX_MTU: usize = 65507;
/// Largest message a [`RecordRepr::Fragment`] may belong to (16 MiB). It
/// bounds what a receiver could be asked to reassemble.
pub const MAX_MESSAGE_LEN: u32 = 1 << 24;

/// Why a datagram was rejected, or why a frame could not be built.
///
/// Decoding errors leave all state untouched. [`Error::index`] maps each
/// variant to a distinct small integer so a node can count drops by reason in
/// a fixed array of [`Error::COUNT`] counters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// The datagram, frame or a record header is shorter than its fixed part.
    Truncated,
    /// The frame does not start with [`MAGIC`].
    BadMagic,
    /// The frame has a version other than [`VERSION`].
    UnsupportedVersion(u8),
    /// A reserved bit of the flags byte is set.
    ReservedFlags,
    /// The flags name integrity schema id 3, which does not exist.
    BadIntegrity,
    /// The header names a different integrity schema than the one the
    /// datagram was opened with.
    SchemaMismatch,
    /// A CRC did not match: the datagram was corrupted in flight.
    BadChecksum,
    /// A record's length runs past the end of the frame.
    RecordOverrun,
    /// A record kind this version does not know, without the ignorable bit.
    UnknownRecord(u8),
    /// A record of a known kind whose body is malformed (kind given).
    BadRecordBody(u8),
    /// A caller-supplied buffer is too small for the result.
    BufferTooSmall,
    /// The frame being written has no room for this record.
    NoRoom,
    /// A datagram longer than [`MAX_MTU`], or a record too long to encode.
    Oversized,
}

impl Error {
    /// Number of distinct [`Error::index`] values.
    pub const COUNT: usize = 13;

    /// A distinct index in `0..Error::COUNT` per variant (payloads ignored),
    /// for per-reason drop counters.
    pub const fn index(&self) -> usize {
        match self {
            Error::Truncated => 0,
            Error::BadMagic => 1,
            Error::UnsupportedVersion(_) => 2,
            Error::ReservedFlags => 3,
            Error::BadIntegrity => 4,
            Error::SchemaMismatch => 5,
            Error::BadChecksum => 6,
            Error::RecordOverrun => 7,
            Error::UnknownRecord(_) => 8,
            Error::BadRecordBody(_) => 9,
            Error::BufferTooSmall => 10,
            Error::NoRoom => 11,
            Error::Oversized => 12,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated => f.write_str("truncated"),
            Error::BadMagic => f.write_str("bad magic"),
            Error::UnsupportedVersion(v) => write!(f, "unsupported version {v}"),
            Error::ReservedFlags => f.write_str("reserved flag bits set"),
            Error::BadIntegrity => f.write_str("invalid integrity schema id"),
            Error::SchemaMismatch => f.write_str("integrity schema mismatch"),
            Error::BadChecksum => f.write_str("bad checksum"),
            Error::RecordOverrun => f.write_str("record runs past the end of the frame"),
            Error::UnknownRecord(k) => write!(f, "unknown record kind {k:#04x}"),
            Error::BadRecordBody(k) => write!(f, "malformed body for record kind {k:#04x}"),
            Error::BufferTooSmall => f.write_str("buffer too small"),
            Error::NoRoom => f.write_str("no room in frame"),
            Error::Oversized => f.write_str("oversized datagram"),
        }
    }
}

impl core::error::Error for Error {}

/// Big-endian reads that return `None` instead of panicking when `off` is out
/// of range: all parsing goes through these.
pub(crate) fn be_u16(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

pub(crate) fn be_u32(b: &[u8], off: usize) -> Option<u32> {
    let s: [u8; 4] = b.get(off..off.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_be_bytes(s))
}

pub(crate) fn be_u64(b: &[u8], off: usize) -> Option<u64> {
    let s: [u8; 8] = b.get(off..off.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_be_bytes(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_indices_are_distinct_and_dense() {
        let all = [
            Error::Truncated,
            Error::BadMagic,
            Error::UnsupportedVersion(7),
            Error::ReservedFlags,
            Error::BadIntegrity,
            Error::SchemaMismatch,
            Error::BadChecksum,
            Error::RecordOverrun,
            Error::UnknownRecord(0x7e),
            Error::BadRecordBody(3),
            Error::BufferTooSmall,
            Error::NoRoom,
            Error::Oversized,
        ];
        assert_eq!(all.len(), Error::COUNT);
        let mut seen = [false; Error::COUNT];
        for e in all {
            let i = e.index();
            assert!(i < Error::COUNT);
            assert!(!seen[i], "duplicate index {i}");
            seen[i] = true;
        }
        // Payloads do not change the index.
        assert_eq!(
            Error::UnknownRecord(1).index(),
            Error::UnknownRecord(0xff).index()
        );
    }

    #[test]
    fn be_reads_are_bounds_checked() {
        let b = [1, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(be_u16(&b, 0), Some(0x0102));
        assert_eq!(be_u16(&b, 7), None);
        assert_eq!(be_u32(&b, 4), Some(0x0506_0708));
        assert_eq!(be_u32(&b, 5), None);
        assert_eq!(be_u32(&b, usize::MAX), None);
        assert_eq!(be_u64(&b, 0), Some(0x0102_0304_0506_0708));
        assert_eq!(be_u64(&b, 1), None);
    }
}
