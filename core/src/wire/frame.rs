//! Frames: the header view and representation, the record iterators, and the
//! frame writer.
//!
//! The layout is in the [module documentation](super). A [`Frame`] views the
//! *logical* frame (after [`Integrity::open`], before [`Integrity::seal`]).
//!
//! Decisions: [`Frame::new_checked`] validates everything (header and every
//! record body), so [`Frame::records`] on a checked frame cannot fail and
//! yields plain [`Record`]s; [`Frame::try_records`] is the fallible walk for
//! frames built with [`Frame::new_unchecked`]. Getters on an unchecked,
//! too-short buffer return 0 instead of panicking. [`FrameWriter`] never lets
//! a record through that a receiver would reject, so whatever it finishes
//! passes `new_checked`.

use super::record::{is_ignorable, is_known_kind, Record, RecordRepr, RecordView};
use super::{be_u16, be_u32, Error, Integrity, MAGIC, MAX_MTU, RECORD_HEADER_LEN, VERSION};
use crate::seq::Seq;

/// Byte offsets of the header fields.
mod field {
    use core::ops::Range;
    pub const MAGIC: usize = 0;
    pub const VERSION: usize = 2;
    pub const FLAGS: usize = 3;
    pub const CLUSTER: usize = 4;
    pub const SENDER: usize = 8;
    pub const VIEW: usize = 10;
    pub const SEQ: usize = 14;
    pub const RECORDS: usize = 18;
    pub const HEADER: Range<usize> = 0..RECORDS;
}

/// Flags bits 0-1: the integrity schema id.
const FLAGS_SCHEMA_MASK: u8 = 0b0000_0011;

/// A zero-copy view of a logical frame in a buffer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wrap a buffer without validation. Getters return 0 for fields beyond
    /// a short buffer; use [`try_records`](Self::try_records) to walk it.
    pub const fn new_unchecked(buffer: T) -> Self {
        Frame { buffer }
    }

    /// Wrap a buffer after validating the header and every record (see
    /// [`check`](Self::check)).
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let frame = Self::new_unchecked(buffer);
        frame.check()?;
        Ok(frame)
    }

    /// Validate the header ([`Header::parse`]) and walk every record, parsing
    /// each known body; the first error found is returned.
    pub fn check(&self) -> Result<(), Error> {
        Header::parse(self.buffer.as_ref())?;
        for record in self.try_records() {
            record?;
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole logical frame.
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    fn byte(&self, at: usize) -> u8 {
        self.buffer.as_ref().get(at).copied().unwrap_or(0)
    }

    /// The magic number (should be [`MAGIC`]).
    pub fn magic(&self) -> u16 {
        be_u16(self.buffer.as_ref(), field::MAGIC).unwrap_or(0)
    }

    /// The wire version (should be [`VERSION`]).
    pub fn version(&self) -> u8 {
        self.byte(field::VERSION)
    }

    /// The raw flags byte.
    pub fn flags(&self) -> u8 {
        self.byte(field::FLAGS)
    }

    /// The integrity schema named in the flags; `None` for id 3.
    pub fn integrity(&self) -> Option<Integrity> {
        Integrity::from_id(self.flags() & FLAGS_SCHEMA_MASK)
    }

    /// The cluster id.
    pub fn cluster(&self) -> u32 {
        be_u32(self.buffer.as_ref(), field::CLUSTER).unwrap_or(0)
    }

    /// The sender's node id.
    pub fn sender(&self) -> u16 {
        be_u16(self.buffer.as_ref(), field::SENDER).unwrap_or(0)
    }

    /// The sender's view / epoch.
    pub fn view(&self) -> u32 {
        be_u32(self.buffer.as_ref(), field::VIEW).unwrap_or(0)
    }

    /// The frame sequence number.
    pub fn seq(&self) -> Seq {
        Seq(be_u32(self.buffer.as_ref(), field::SEQ).unwrap_or(0))
    }

    /// The parsed header.
    pub fn header(&self) -> Result<Header, Error> {
        Header::parse(self.buffer.as_ref())
    }

    /// The bytes after the header (empty if the buffer is shorter).
    pub fn records_bytes(&self) -> &[u8] {
        self.buffer.as_ref().get(field::RECORDS..).unwrap_or(&[])
    }

    /// The records of a checked frame. Infallible: it stops at the first
    /// malformed record, which a frame from [`new_checked`](Self::new_checked)
    /// or [`decode`] does not have.
    pub fn records(&self) -> Records<'_> {
        Records(self.try_records())
    }

    /// Walk the records, reporting the first malformed one as an error (after
    /// which the iterator ends).
    pub fn try_records(&self) -> RecordIter<'_> {
        RecordIter::new(self.records_bytes())
    }

    /// The raw records (kind and body) of a checked frame, without parsing
    /// their bodies: for a pass that looks at a few kinds only (the receive
    /// path reserves inbox room for data before applying anything, and a
    /// checked frame was parsed once already). Stops at a truncated record.
    pub fn record_views(&self) -> RecordViews<'_> {
        RecordViews(self.records_bytes())
    }
}

/// Iterator over a frame's raw records (see [`Frame::record_views`]).
#[derive(Clone, Debug)]
pub struct RecordViews<'a>(&'a [u8]);

impl<'a> Iterator for RecordViews<'a> {
    type Item = RecordView<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let kind = *self.0.first()?;
        let end = RECORD_HEADER_LEN + usize::from(be_u16(self.0, 1)?);
        let body = self.0.get(RECORD_HEADER_LEN..end)?;
        self.0 = self.0.get(end..).unwrap_or(&[]);
        Some(RecordView { kind, body })
    }
}

impl core::iter::FusedIterator for RecordViews<'_> {}

/// The parsed frame header.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Header {
    /// The integrity schema the datagram is sealed with.
    pub integrity: Integrity,
    /// The cluster this frame belongs to.
    pub cluster: u32,
    /// The sender's node id.
    pub sender: u16,
    /// The sender's view / epoch.
    pub view: u32,
    /// Per-sender frame sequence number (wraps).
    pub seq: Seq,
}

impl Header {
    /// Header length in bytes.
    pub const LEN: usize = 18;

    /// Parse and validate the header at the start of `frame`.
    ///
    /// Errors, checked in this order: [`Error::Truncated`],
    /// [`Error::BadMagic`], [`Error::UnsupportedVersion`],
    /// [`Error::ReservedFlags`], [`Error::BadIntegrity`].
    pub fn parse(frame: &[u8]) -> Result<Header, Error> {
        let h = frame.get(field::HEADER).ok_or(Error::Truncated)?;
        let f = Frame::new_unchecked(h);
        if f.magic() != MAGIC {
            return Err(Error::BadMagic);
        }
        if f.version() != VERSION {
            return Err(Error::UnsupportedVersion(f.version()));
        }
        if f.flags() & !FLAGS_SCHEMA_MASK != 0 {
            return Err(Error::ReservedFlags);
        }
        Ok(Header {
            integrity: f.integrity().ok_or(Error::BadIntegrity)?,
            cluster: f.cluster(),
            sender: f.sender(),
            view: f.view(),
            seq: f.seq(),
        })
    }

    /// Write the header into `out[..Header::LEN]`; [`Error::BufferTooSmall`]
    /// (nothing written) if `out` is shorter.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, Error> {
        let out = out.get_mut(field::HEADER).ok_or(Error::BufferTooSmall)?;
        out[field::MAGIC..field::VERSION].copy_from_slice(&MAGIC.to_be_bytes());
        out[field::VERSION] = VERSION;
        out[field::FLAGS] = self.integrity.id();
        out[field::CLUSTER..field::SENDER].copy_from_slice(&self.cluster.to_be_bytes());
        out[field::SENDER..field::VIEW].copy_from_slice(&self.sender.to_be_bytes());
        out[field::VIEW..field::SEQ].copy_from_slice(&self.view.to_be_bytes());
        out[field::SEQ..field::RECORDS].copy_from_slice(&self.seq.0.to_be_bytes());
        Ok(Self::LEN)
    }
}

/// Fallible walk over a frame's records (see [`Frame::try_records`]).
///
/// Yields `Ok(Record::Known)` for known kinds, `Ok(Record::Ignored)` for
/// unknown ignorable kinds, and at most one `Err`, after which it is done.
#[derive(Clone, Debug)]
pub struct RecordIter<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> RecordIter<'a> {
    fn new(records: &'a [u8]) -> Self {
        RecordIter {
            rest: records,
            failed: false,
        }
    }

    fn step(&mut self) -> Result<Record<'a>, Error> {
        let kind = *self.rest.first().ok_or(Error::Truncated)?;
        let len = be_u16(self.rest, 1).ok_or(Error::Truncated)?;
        let end = RECORD_HEADER_LEN + usize::from(len);
        let body = self
            .rest
            .get(RECORD_HEADER_LEN..end)
            .ok_or(Error::RecordOverrun)?;
        let record = match RecordRepr::parse(kind, body) {
            Ok(repr) => Record::Known(repr),
            Err(Error::UnknownRecord(_)) if is_ignorable(kind) => {
                Record::Ignored(RecordView { kind, body })
            }
            Err(e) => return Err(e),
        };
        self.rest = self.rest.get(end..).unwrap_or(&[]);
        Ok(record)
    }
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Result<Record<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let r = self.step();
        self.failed = r.is_err();
        Some(r)
    }
}

impl core::iter::FusedIterator for RecordIter<'_> {}

/// Infallible iterator over a checked frame's records (see
/// [`Frame::records`]).
#[derive(Clone, Debug)]
pub struct Records<'a>(RecordIter<'a>);

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next()?.ok()
    }
}

impl core::iter::FusedIterator for Records<'_> {}

/// Builds a logical frame in caller memory, one record at a time.
///
/// Every push is atomic: on error the frame is unchanged. Whatever
/// [`finish`](Self::finish) returns is a frame that passes
/// [`Frame::new_checked`]; seal it with [`Integrity::seal`] in the same
/// buffer.
#[derive(Debug)]
pub struct FrameWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
    limit: usize,
    records: u16,
}

impl<'a> FrameWriter<'a> {
    /// Start a frame with `header` in `buf`, holding at most `max_frame_len`
    /// logical bytes (typically [`Integrity::max_frame_len`] of the datagram
    /// budget; `buf` should be as long as that budget so sealing fits).
    ///
    /// [`Error::BufferTooSmall`] if `buf` or `max_frame_len` cannot hold
    /// the header.
    pub fn new(buf: &'a mut [u8], header: &Header, max_frame_len: usize) -> Result<Self, Error> {
        let limit = buf.len().min(max_frame_len).min(MAX_MTU);
        if limit < Header::LEN {
            return Err(Error::BufferTooSmall);
        }
        let len = header.emit(buf)?;
        Ok(FrameWriter {
            buf,
            len,
            limit,
            records: 0,
        })
    }

    /// Bytes left for the next record, *including* its 3-byte record header
    /// (a fragment can carry `remaining() - 3 - FRAGMENT_HEADER_LEN` bytes).
    pub fn remaining(&self) -> usize {
        self.limit.saturating_sub(self.len)
    }

    /// Number of records pushed so far.
    pub fn records(&self) -> u16 {
        self.records
    }

    /// Current length of the logical frame.
    pub fn frame_len(&self) -> usize {
        self.len
    }

    /// Append a record. Errors (frame unchanged): [`Error::NoRoom`] if it
    /// does not fit, then those of [`RecordRepr::check`] (an invalid
    /// fragment is [`Error::BadRecordBody`]).
    pub fn push(&mut self, repr: &RecordRepr<'_>) -> Result<(), Error> {
        // Room first, so a record too long for any frame is `NoRoom` like
        // every other record that does not fit.
        let need = repr.buffer_len();
        let records = self.records.checked_add(1).ok_or(Error::NoRoom)?;
        if need > self.remaining() {
            return Err(Error::NoRoom);
        }
        repr.check()?;
        let out = self.buf.get_mut(self.len..).ok_or(Error::NoRoom)?;
        let n = repr.emit(out)?;
        self.len += n;
        self.records = records;
        Ok(())
    }

    /// Append a record of `kind` whose `body_len`-byte body `f` writes in
    /// place (e.g. fragment bytes copied straight from a pool).
    ///
    /// Errors (frame unchanged, though bytes past the frame's end may have
    /// been scribbled by `f`): [`Error::UnknownRecord`] for an unknown kind
    /// without the ignorable bit (it would poison the frame);
    /// [`Error::NoRoom`] if it does not fit; for a known kind, the error of
    /// [`RecordRepr::parse`] on what `f` wrote.
    pub fn push_with(
        &mut self,
        kind: u8,
        body_len: usize,
        f: impl FnOnce(&mut [u8]),
    ) -> Result<(), Error> {
        if !is_known_kind(kind) && !is_ignorable(kind) {
            return Err(Error::UnknownRecord(kind));
        }
        let len16 = u16::try_from(body_len).map_err(|_| Error::NoRoom)?;
        let need = RECORD_HEADER_LEN + usize::from(len16);
        let records = self.records.checked_add(1).ok_or(Error::NoRoom)?;
        if need > self.remaining() {
            return Err(Error::NoRoom);
        }
        let end = self.len + need;
        let rec = self.buf.get_mut(self.len..end).ok_or(Error::NoRoom)?;
        let (head, body) = rec.split_at_mut(RECORD_HEADER_LEN);
        f(body);
        if is_known_kind(kind) {
            RecordRepr::parse(kind, body)?;
        }
        head[0] = kind;
        head[1..].copy_from_slice(&len16.to_be_bytes());
        self.len = end;
        self.records = records;
        Ok(())
    }

    /// Append a record from an iterated frame: known records re-emitted,
    /// ignored ones copied verbatim (what a relay forwards).
    pub fn push_record(&mut self, record: &Record<'_>) -> Result<(), Error> {
        match record {
            Record::Known(repr) => self.push(repr),
            Record::Ignored(view) => {
                self.push_with(view.kind, view.body.len(), |b| b.copy_from_slice(view.body))
            }
        }
    }

    /// Finish: the logical frame is `buf[..n]` with `n` returned.
    pub fn finish(self) -> usize {
        self.len
    }
}

/// The receive path in one call, de-chunking in place (no scratch buffer):
/// like [`decode`], over `datagram` which it may rewrite.
pub fn decode_in_place(integrity: Integrity, datagram: &mut [u8]) -> Result<Frame<&[u8]>, Error> {
    let n = integrity.open_in_place(datagram)?;
    let logical = &datagram[..n];
    if Header::parse(logical)?.integrity != integrity {
        return Err(Error::SchemaMismatch);
    }
    Frame::new_checked(logical)
}

/// Open a datagram with `integrity` and validate the frame inside: the
/// receive path in one call. The header must name `integrity`
/// ([`Error::SchemaMismatch`] otherwise), checked before records are walked.
pub fn decode<'a>(
    integrity: Integrity,
    datagram: &'a [u8],
    scratch: &'a mut [u8],
) -> Result<Frame<&'a [u8]>, Error> {
    let logical = integrity.open(datagram, scratch)?;
    if Header::parse(logical)?.integrity != integrity {
        return Err(Error::SchemaMismatch);
    }
    Frame::new_checked(logical)
}

#[cfg(test)]
mod tests {
    use super::super::record::sample_repr;
    use super::super::{
        Integrity, DATA_HEADER_LEN, FRAGMENT_HEADER_LEN, KIND_DATA, KIND_FRAGMENT, MAX_MESSAGE_LEN,
        MIN_MTU,
    };
    use super::*;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    const HDR: Header = Header {
        integrity: Integrity::Crc32c,
        cluster: 0xC1C2_C3C4,
        sender: 0x0102,
        view: 7,
        seq: Seq(0xFFFF_FFFF),
    };

    fn with(integrity: Integrity) -> Header {
        Header { integrity, ..HDR }
    }

    /// Raw header bytes for the malformed-frame table.
    fn raw_header(magic: u16, version: u8, flags: u8) -> Vec<u8> {
        let mut h = vec![0u8; Header::LEN];
        HDR.emit(&mut h).unwrap();
        h[0..2].copy_from_slice(&magic.to_be_bytes());
        h[2] = version;
        h[3] = flags;
        h
    }

    fn raw_record(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut r = vec![kind];
        r.extend_from_slice(&(body.len() as u16).to_be_bytes());
        r.extend_from_slice(body);
        r
    }

    fn fragment_body(total: u32, offset: u32, n: usize) -> Vec<u8> {
        let mut b = vec![0u8; FRAGMENT_HEADER_LEN];
        b[8..12].copy_from_slice(&total.to_be_bytes());
        b[12..16].copy_from_slice(&offset.to_be_bytes());
        b.resize(FRAGMENT_HEADER_LEN + n, 0x55);
        b
    }

    fn seal(s: Integrity, logical: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; s.sealed_len(logical.len())];
        buf[..logical.len()].copy_from_slice(logical);
        let n = s.seal(&mut buf, logical.len()).unwrap();
        buf.truncate(n);
        buf
    }

    #[test]
    fn header_round_trip_and_getters() {
        let mut b = [0u8; Header::LEN];
        assert_eq!(HDR.emit(&mut b), Ok(Header::LEN));
        assert_eq!(&b[..4], &[0x50, 0x43, 1, 0]);
        assert_eq!(Header::parse(&b), Ok(HDR));
        let f = Frame::new_checked(&b[..]).unwrap();
        assert_eq!(f.magic(), MAGIC);
        assert_eq!(f.version(), VERSION);
        assert_eq!(f.integrity(), Some(Integrity::Crc32c));
        assert_eq!(f.cluster(), 0xC1C2_C3C4);
        assert_eq!(f.sender(), 0x0102);
        assert_eq!(f.view(), 7);
        assert_eq!(f.seq(), Seq(u32::MAX));
        assert_eq!(f.records().count(), 0, "keep-alive");
        assert_eq!(HDR.emit(&mut [0u8; 17]), Err(Error::BufferTooSmall));
        // Getters on a short unchecked buffer do not panic.
        let short = Frame::new_unchecked(&b[..3]);
        assert_eq!(
            (short.cluster(), short.seq(), short.flags()),
            (0, Seq(0), 0)
        );
        assert_eq!(short.header(), Err(Error::Truncated));
    }

    #[test]
    fn writer_seal_decode_round_trip() {
        for s in Integrity::ALL {
            let payload = [0x42u8; 32];
            let recs = [
                RecordRepr::Data {
                    group: 5,
                    msg: Seq(1),
                    payload: &payload,
                },
                RecordRepr::Fragment {
                    group: GROUP,
                    msg: Seq(2),
                    total_len: 3000,
                    offset: 1000,
                    bytes: &payload[..7],
                },
                RecordRepr::Heartbeat {
                    sent_at: 123_456_789,
                    incarnation: 4,
                },
            ];
            const GROUP: u32 = super::super::GROUP_NONE;
            let mut buf = [0u8; MIN_MTU];
            let mut w = FrameWriter::new(&mut buf, &with(s), s.max_frame_len(MIN_MTU)).unwrap();
            for r in &recs {
                w.push(r).unwrap();
            }
            w.push_with(0xfe, 2, |b| b.copy_from_slice(&[9, 9]))
                .unwrap();
            assert_eq!(w.records(), 4);
            let len = w.finish();
            let n = s.seal(&mut buf, len).unwrap();
            assert!(n <= MIN_MTU);
            let mut scratch = [0u8; MIN_MTU];
            let f = decode(s, &buf[..n], &mut scratch).unwrap();
            assert_eq!(f.header(), Ok(with(s)));
            let got: Vec<Record<'_>> = f.records().collect();
            assert_eq!(got.len(), 4);
            for (g, r) in got.iter().zip(&recs) {
                assert_eq!(*g, Record::Known(*r));
            }
            assert_eq!(
                got[3],
                Record::Ignored(RecordView {
                    kind: 0xfe,
                    body: &[9, 9]
                })
            );
        }
    }

    #[test]
    fn writer_room_accounting() {
        let mut buf = [0u8; 64];
        let mut w = FrameWriter::new(&mut buf, &HDR, 40).unwrap();
        assert_eq!(w.remaining(), 40 - Header::LEN);
        // A data record needing exactly the remaining 22 bytes fits.
        let p = [1u8; 22 - 3 - DATA_HEADER_LEN];
        let exact = RecordRepr::Data {
            group: 1,
            msg: Seq(1),
            payload: &p,
        };
        let too_big = RecordRepr::Data {
            group: 1,
            msg: Seq(1),
            payload: &[1u8; 12],
        };
        let before = w.frame_len();
        assert_eq!(w.push(&too_big), Err(Error::NoRoom));
        assert_eq!((w.frame_len(), w.records()), (before, 0), "atomic");
        assert_eq!(w.push_with(KIND_DATA, 20, |_| {}), Err(Error::NoRoom));
        w.push(&exact).unwrap();
        assert_eq!(w.remaining(), 0);
        assert_eq!(w.push_with(0xfe, 0, |_| {}), Err(Error::NoRoom));
        let len = w.finish();
        assert_eq!(len, 40);
        let f = Frame::new_checked(&buf[..len]).unwrap();
        assert_eq!(f.records().collect::<Vec<_>>(), vec![Record::Known(exact)]);
        // Header must fit.
        assert_eq!(
            FrameWriter::new(&mut [0u8; 17], &HDR, 100).map(|_| ()),
            Err(Error::BufferTooSmall)
        );
        assert_eq!(
            FrameWriter::new(&mut [0u8; 100], &HDR, 17).map(|_| ()),
            Err(Error::BufferTooSmall)
        );
    }

    #[test]
    fn writer_refuses_records_that_would_poison_the_frame() {
        let mut buf = [0u8; 128];
        let mut w = FrameWriter::new(&mut buf, &HDR, 128).unwrap();
        let bad_frag = RecordRepr::Fragment {
            group: 0,
            msg: Seq(0),
            total_len: MAX_MESSAGE_LEN + 1,
            offset: 0,
            bytes: &[1],
        };
        assert_eq!(w.push(&bad_frag), Err(Error::BadRecordBody(KIND_FRAGMENT)));
        assert_eq!(
            w.push_with(0x7e, 0, |_| {}),
            Err(Error::UnknownRecord(0x7e))
        );
        // A fragment body written in place is validated after the closure.
        let body = fragment_body(10, 8, 5);
        assert_eq!(
            w.push_with(KIND_FRAGMENT, body.len(), |b| b.copy_from_slice(&body)),
            Err(Error::BadRecordBody(KIND_FRAGMENT))
        );
        let good = fragment_body(10, 5, 5);
        w.push_with(KIND_FRAGMENT, good.len(), |b| b.copy_from_slice(&good))
            .unwrap();
        assert_eq!(w.records(), 1);
        let len = w.finish();
        let f = Frame::new_checked(&buf[..len]).unwrap();
        assert!(matches!(
            f.records().next(),
            Some(Record::Known(RecordRepr::Fragment { offset: 5, .. }))
        ));
    }

    /// Every malformed case of the brief, each with its exact error.
    #[test]
    fn malformed_frame_table() {
        let s = Integrity::ChunkHd8;
        let ok_hdr = raw_header(MAGIC, VERSION, s.id());
        let cat = |parts: &[&[u8]]| parts.concat();
        let hb11 = raw_record(0x03, &[0; 11]);
        let hb12 = raw_record(0x03, &[0; 12]);
        let cases: Vec<(&str, Vec<u8>, Error)> = vec![
            ("truncated header", ok_hdr[..10].to_vec(), Error::Truncated),
            ("bad magic", raw_header(0x5044, 1, s.id()), Error::BadMagic),
            (
                "version 2",
                raw_header(MAGIC, 2, s.id()),
                Error::UnsupportedVersion(2),
            ),
            (
                "reserved flag bit",
                raw_header(MAGIC, 1, s.id() | 0x04),
                Error::ReservedFlags,
            ),
            (
                "reserved flag bit 7",
                raw_header(MAGIC, 1, s.id() | 0x80),
                Error::ReservedFlags,
            ),
            ("schema id 3", raw_header(MAGIC, 1, 3), Error::BadIntegrity),
            (
                "schema mismatch",
                raw_header(MAGIC, 1, Integrity::Crc32c.id()),
                Error::SchemaMismatch,
            ),
            (
                "record length past the end",
                cat(&[&ok_hdr, &[0x01, 0, 20], &[0; 19]]),
                Error::RecordOverrun,
            ),
            (
                "record header 1 byte left",
                cat(&[&ok_hdr, &hb12, &[0x01]]),
                Error::Truncated,
            ),
            (
                "record header 2 bytes left",
                cat(&[&ok_hdr, &hb12, &[0x01, 0]]),
                Error::Truncated,
            ),
            (
                "unknown type 0x7e",
                cat(&[&ok_hdr, &raw_record(0x7e, &[1, 2])]),
                Error::UnknownRecord(0x7e),
            ),
            (
                "unknown 0x7e after ignorable 0xfe",
                cat(&[&ok_hdr, &raw_record(0xfe, &[1]), &raw_record(0x7e, &[])]),
                Error::UnknownRecord(0x7e),
            ),
            (
                "heartbeat 11 bytes",
                cat(&[&ok_hdr, &hb11]),
                Error::BadRecordBody(3),
            ),
            (
                "fragment offset+len > total",
                cat(&[&ok_hdr, &raw_record(2, &fragment_body(10, 6, 5))]),
                Error::BadRecordBody(2),
            ),
            (
                "fragment total 0",
                cat(&[&ok_hdr, &raw_record(2, &fragment_body(0, 0, 1))]),
                Error::BadRecordBody(2),
            ),
            (
                "fragment offset near u32::MAX",
                cat(&[
                    &ok_hdr,
                    &raw_record(2, &fragment_body(100, u32::MAX - 2, 5)),
                ]),
                Error::BadRecordBody(2),
            ),
            (
                "fragment total > MAX_MESSAGE_LEN",
                cat(&[
                    &ok_hdr,
                    &raw_record(2, &fragment_body(MAX_MESSAGE_LEN + 1, 0, 5)),
                ]),
                Error::BadRecordBody(2),
            ),
            (
                "data body shorter than group+msg",
                cat(&[&ok_hdr, &raw_record(1, &[0; 7])]),
                Error::BadRecordBody(1),
            ),
        ];
        for (name, logical, want) in cases {
            let datagram = seal(s, &logical);
            let mut scratch = vec![0u8; datagram.len()];
            assert_eq!(
                decode(s, &datagram, &mut scratch).map(|_| ()),
                Err(want),
                "{name}"
            );
        }

        // Datagram-level cases, for every schema.
        for s in Integrity::ALL {
            let mut scratch = vec![0u8; MAX_MTU + 1];
            assert_eq!(
                decode(s, &[], &mut scratch).map(|_| ()),
                Err(Error::Truncated),
                "empty"
            );
            let big = vec![0u8; MAX_MTU + 1];
            assert_eq!(
                decode(s, &big, &mut scratch).map(|_| ()),
                Err(Error::Oversized),
                "oversized"
            );
            let mut d = seal(s, &raw_header(MAGIC, 1, s.id()));
            d[5] ^= 0x10;
            assert_eq!(
                decode(s, &d, &mut scratch).map(|_| ()),
                Err(Error::BadChecksum),
                "bad checksum"
            );
        }

        // The ignorable twin of 0x7e is skipped and reported.
        let logical = cat(&[&ok_hdr, &raw_record(0xfe, &[1, 2]), &hb12]);
        let d = seal(s, &logical);
        let mut scratch = vec![0u8; d.len()];
        let f = decode(s, &d, &mut scratch).unwrap();
        let recs: Vec<Record<'_>> = f.records().collect();
        assert_eq!(
            recs,
            vec![
                Record::Ignored(RecordView {
                    kind: 0xfe,
                    body: &[1, 2]
                }),
                Record::Known(RecordRepr::Heartbeat {
                    sent_at: 0,
                    incarnation: 0
                }),
            ]
        );
    }

    #[test]
    fn try_records_reports_then_stops() {
        let mut logical = raw_header(MAGIC, 1, 0);
        logical.extend(raw_record(0x03, &[0; 12]));
        logical.extend(raw_record(0x7e, &[]));
        logical.extend(raw_record(0x03, &[0; 12]));
        let f = Frame::new_unchecked(&logical[..]);
        let items: Vec<_> = f.try_records().collect();
        assert_eq!(items.len(), 2);
        assert!(items[0].is_ok());
        assert_eq!(items[1], Err(Error::UnknownRecord(0x7e)));
        // The infallible iterator stops at the bad record.
        assert_eq!(f.records().count(), 1);
        assert_eq!(
            Frame::new_checked(&logical[..]).map(|_| ()),
            Err(Error::UnknownRecord(0x7e))
        );
    }

    #[test]
    fn record_views_walk_kinds_and_bodies_without_parsing() {
        let mut logical = raw_header(MAGIC, 1, 0);
        logical.extend(raw_record(0x03, &[1; 12]));
        logical.extend(raw_record(0x7e, &[2, 3]));
        logical.extend(raw_record(0x10, &[]));
        // A record header announcing more than is left: the walk stops.
        logical.extend([0x03, 0x00, 0x09, 4]);
        let f = Frame::new_unchecked(&logical[..]);
        let got: Vec<(u8, Vec<u8>)> = f
            .record_views()
            .map(|v| (v.kind, v.body.to_vec()))
            .collect();
        assert_eq!(
            got,
            vec![(0x03, vec![1; 12]), (0x7e, vec![2, 3]), (0x10, vec![])]
        );
        // On a checked frame it sees what the parsing walk sees.
        let mut ok = raw_header(MAGIC, 1, 0);
        ok.extend(raw_record(0x03, &[0; 12]));
        ok.extend(raw_record(0x03, &[5; 12]));
        let f = Frame::new_checked(&ok[..]).unwrap();
        assert_eq!(f.record_views().count(), f.records().count());
        assert!(f
            .record_views()
            .all(|v| v.kind == 0x03 && v.body.len() == 12));
    }

    fn schema() -> impl Strategy<Value = Integrity> {
        prop_oneof![
            Just(Integrity::Crc32c),
            Just(Integrity::ChunkHd6),
            Just(Integrity::ChunkHd8)
        ]
    }

    /// Re-emit a decoded frame (header and every record) with the writer,
    /// seal it, and return the datagram.
    fn reencode(s: Integrity, f: &Frame<&[u8]>) -> Vec<u8> {
        let mut buf = vec![0u8; MAX_MTU];
        let mut w =
            FrameWriter::new(&mut buf, &f.header().unwrap(), s.max_frame_len(MAX_MTU)).unwrap();
        for r in f.records() {
            w.push_record(&r).unwrap();
        }
        let len = w.finish();
        let n = s.seal(&mut buf, len).unwrap();
        buf.truncate(n);
        buf
    }

    proptest! {
        #[test]
        fn writer_frames_round_trip(
            s in schema(),
            cluster: u32, sender: u16, view: u32, seq: u32,
            parts in proptest::collection::vec((any::<u8>(), any::<u32>(), any::<u32>(), any::<u64>(), any::<u32>(), any::<u32>(), proptest::collection::vec(any::<u8>(), 0..40)), 0..30),
        ) {
            let header = Header { integrity: s, cluster, sender, view, seq: Seq(seq) };
            let reprs: Vec<RecordRepr<'_>> = parts
                .iter()
                .map(|(sel, g, m, a, o, e, p)| sample_repr(*sel, *g, *m, *a, *o, *e, p))
                .collect();
            let mut buf = vec![0u8; 1400];
            let mut w = FrameWriter::new(&mut buf, &header, s.max_frame_len(1400)).unwrap();
            let mut pushed = Vec::new();
            for r in &reprs {
                match w.push(r) {
                    Ok(()) => pushed.push(*r),
                    Err(e) => prop_assert_eq!(e, Error::NoRoom),
                }
            }
            let len = w.finish();
            let n = s.seal(&mut buf, len).unwrap();
            prop_assert!(n <= 1400);
            let mut scratch = vec![0u8; n];
            let f = decode(s, &buf[..n], &mut scratch).unwrap();
            prop_assert_eq!(f.header(), Ok(header));
            let got: Vec<Record<'_>> = f.records().collect();
            let want: Vec<Record<'_>> = pushed.into_iter().map(Record::Known).collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn decode_arbitrary_never_panics(s in schema(), data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut scratch = vec![0u8; data.len()];
            let _ = decode(s, &data, &mut scratch);
            let _ = Frame::new_checked(&data[..]);
            for r in Frame::new_unchecked(&data[..]).try_records() {
                let _ = r;
            }
        }

        /// Record bytes behind a valid header, sealed properly so the parser
        /// (not the CRC) is what gets exercised; whatever decodes re-encodes
        /// to the very same datagram, and decodes to the same frame again.
        #[test]
        fn decoded_frames_reencode_identically(
            s in schema(),
            noise in proptest::collection::vec(any::<u8>(), 0..200),
            records in proptest::collection::vec(raw_record_strategy(), 0..8),
            use_noise: bool,
        ) {
            let mut logical = raw_header(MAGIC, 1, s.id());
            if use_noise {
                logical.extend_from_slice(&noise);
            } else {
                logical.extend(records.concat());
            }
            let d = seal(s, &logical);
            let mut scratch = vec![0u8; d.len()];
            match decode(s, &d, &mut scratch) {
                Ok(f) => {
                    let d2 = reencode(s, &f);
                    // Same records in, same bytes out: the encoding is canonical.
                    prop_assert_eq!(&d2, &d);
                    let mut scratch2 = vec![0u8; d2.len()];
                    let f2 = decode(s, &d2, &mut scratch2).unwrap();
                    prop_assert_eq!(f2.header(), f.header());
                    prop_assert!(f2.records().eq(f.records()));
                }
                // A properly sealed frame with a valid header can only fail
                // in its records.
                Err(e) => prop_assert!(
                    matches!(
                        e,
                        Error::Truncated
                            | Error::RecordOverrun
                            | Error::UnknownRecord(_)
                            | Error::BadRecordBody(_)
                    ),
                    "unexpected {:?}",
                    e
                ),
            }
        }
    }

    /// One raw record, biased toward valid ones of every kind but with noise.
    fn raw_record_strategy() -> impl Strategy<Value = Vec<u8>> {
        use proptest::collection::vec as pvec;
        prop_oneof![
            pvec(any::<u8>(), 8..40).prop_map(|b| raw_record(KIND_DATA, &b)),
            (1u32..200, 0u32..200, 1usize..20)
                .prop_map(|(t, o, n)| raw_record(KIND_FRAGMENT, &fragment_body(t, o, n))),
            pvec(any::<u8>(), 12..=12).prop_map(|b| raw_record(0x03, &b)),
            (0x80u8..=0xff, pvec(any::<u8>(), 0..10)).prop_map(|(k, b)| raw_record(k, &b)),
            (any::<u8>(), pvec(any::<u8>(), 0..24)).prop_map(|(k, b)| raw_record(k, &b)),
        ]
    }

    /// The record strategy does produce decodable multi-record frames, so
    /// the property above is not vacuous.
    #[test]
    fn reencode_property_is_not_vacuous() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let strat = proptest::collection::vec(raw_record_strategy(), 1..8);
        let mut ok_multi = 0;
        for _ in 0..200 {
            let recs = strat.new_tree(&mut runner).unwrap().current();
            let mut logical = raw_header(MAGIC, 1, 0);
            logical.extend(recs.concat());
            if let Ok(f) = Frame::new_checked(&logical[..]) {
                ok_multi += usize::from(f.records().count() >= 2);
            }
        }
        assert!(
            ok_multi >= 20,
            "only {ok_multi} of 200 decoded with 2+ records"
        );
    }
}
