//! Records of QSM's scalable reliable multicast (QSM §3), kinds 0x30–0x34
//! of the range reserved for token rings.
//!
//! ```text
//! 0x30 QsmData     region u32 | sender u16 | seq u32 | group u32 | gseq u32 | payload[..]
//! 0x31 QsmToken    region u32 | round u32 | released_at u64 | level u8 | epoch u32 | generation u32 | releaser u16 | entries[..]
//!                  (level 0: partition ring, 1: ring of partitions)
//! 0x32 QsmRequest  region u32 | sender u16 | first u32 | count u16     (send me [first, first+count))
//! 0x33 QsmAck      region u32 | round u32 | entries[..]                (region aggregate, to a sender)
//! 0x34 QsmPass     region u32 | epoch u32 | level u8 | generation u32 | releaser u16 | round u32
//!                  (token received, to the passer; with the generation the receiver follows)
//! entry = sender u16 | max_contiguous u32 | max_seen u32 | stable u32 | n u8 | ranges[8·n]
//! range = lo u32 | hi u32   (inclusive, n ≤ MAX_RANGES)
//! ```
//!
//! `QsmData` names its sender explicitly (not the frame's sender) so that
//! one record type carries the sender's multicast, a caching peer's
//! forward and the sender's re-multicast alike; `seq` is the per (sender,
//! region) number recovery works on, `gseq` the per-group number the
//! application sees. Entries are validated whole at parse time, so the
//! node iterates them without further checks.

use super::{be_u16, be_u32, be_u64, Error};
use crate::qsm::token::{SeqRange, TokenEntry, MAX_RANGES};

/// Kind of [`super::RecordRepr::QsmData`].
pub const KIND_QSM_DATA: u8 = 0x30;
/// Kind of [`super::RecordRepr::QsmToken`].
pub const KIND_QSM_TOKEN: u8 = 0x31;
/// Kind of [`super::RecordRepr::QsmRequest`].
pub const KIND_QSM_REQUEST: u8 = 0x32;
/// Kind of [`super::RecordRepr::QsmAck`].
pub const KIND_QSM_ACK: u8 = 0x33;
/// Kind of [`super::RecordRepr::QsmPass`].
pub const KIND_QSM_PASS: u8 = 0x34;
/// Exact length of a `QsmPass` body.
pub const QSM_PASS_LEN: usize = 19;

/// Fixed part of a `QsmData` body.
pub const QSM_DATA_HEADER_LEN: usize = 18;
/// Fixed part of a `QsmToken` body.
pub const QSM_TOKEN_HEADER_LEN: usize = 27;
/// Token levels: the ring of a partition, and the ring of partition leaders.
pub const MAX_TOKEN_LEVEL: u8 = 1;
/// Exact length of a `QsmRequest` body.
pub const QSM_REQUEST_LEN: usize = 12;
/// Fixed part of a `QsmAck` body.
pub const QSM_ACK_HEADER_LEN: usize = 8;
/// Fixed part of an entry.
pub const ENTRY_HEADER_LEN: usize = 15;
/// Bytes of one range.
pub const RANGE_LEN: usize = 8;

/// Bytes an entry takes on the wire.
pub fn entry_len(e: &TokenEntry) -> usize {
    ENTRY_HEADER_LEN + RANGE_LEN * usize::from(e.n).min(MAX_RANGES)
}

/// Bytes a list of entries takes on the wire.
pub fn entries_len(es: &[TokenEntry]) -> usize {
    es.iter().map(entry_len).sum()
}

/// Writes `es` at the start of `out` (which holds at least
/// [`entries_len`] bytes); returns the bytes written.
pub fn write_entries(out: &mut [u8], es: &[TokenEntry]) -> usize {
    let mut at = 0usize;
    for e in es {
        let n = usize::from(e.n).min(MAX_RANGES);
        let Some(d) = out.get_mut(at..at + ENTRY_HEADER_LEN + RANGE_LEN * n) else {
            break;
        };
        d[0..2].copy_from_slice(&e.sender.to_be_bytes());
        d[2..6].copy_from_slice(&e.max_contiguous.to_be_bytes());
        d[6..10].copy_from_slice(&e.max_seen.to_be_bytes());
        d[10..14].copy_from_slice(&e.stable.to_be_bytes());
        d[14] = n as u8;
        for (i, r) in e.ranges[..n].iter().enumerate() {
            let o = ENTRY_HEADER_LEN + RANGE_LEN * i;
            d[o..o + 4].copy_from_slice(&r.lo.to_be_bytes());
            d[o + 4..o + 8].copy_from_slice(&r.hi.to_be_bytes());
        }
        at += d.len();
    }
    at
}

/// Parses one entry at `b[0..]`; returns it and its length.
fn parse_entry(b: &[u8]) -> Option<(TokenEntry, usize)> {
    let n = usize::from(*b.get(14)?);
    if n > MAX_RANGES {
        return None;
    }
    let mut e = TokenEntry {
        sender: be_u16(b, 0)?,
        max_contiguous: be_u32(b, 2)?,
        max_seen: be_u32(b, 6)?,
        stable: be_u32(b, 10)?,
        n: n as u8,
        ..Default::default()
    };
    let mut prev_hi: Option<u32> = None;
    for i in 0..n {
        let o = ENTRY_HEADER_LEN + RANGE_LEN * i;
        let r = SeqRange::new(be_u32(b, o)?, be_u32(b, o + 4)?)?;
        // Sorted and disjoint, as `TokenEntry` promises.
        if prev_hi.is_some_and(|h| r.lo <= h) {
            return None;
        }
        prev_hi = Some(r.hi);
        e.ranges[i] = r;
    }
    Some((e, ENTRY_HEADER_LEN + RANGE_LEN * n))
}

/// A validated list of token entries over borrowed bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EntryList<'a>(&'a [u8]);

impl<'a> EntryList<'a> {
    /// A list over `bytes`, if they are a sequence of valid entries.
    pub fn new(bytes: &'a [u8]) -> Option<Self> {
        let mut at = 0usize;
        while at < bytes.len() {
            let (_, n) = parse_entry(bytes.get(at..)?)?;
            at += n;
        }
        Some(EntryList(bytes))
    }
    /// The raw bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }
    /// The entries in order.
    pub fn iter(&self) -> impl Iterator<Item = TokenEntry> + 'a {
        let b = self.0;
        let mut at = 0usize;
        core::iter::from_fn(move || {
            let (e, n) = parse_entry(b.get(at..)?)?;
            at += n;
            Some(e)
        })
    }
}

/// Parses the body of a QSM record; `None` for other kinds.
pub(super) fn parse(kind: u8, body: &[u8]) -> Option<Result<super::RecordRepr<'_>, Error>> {
    use super::RecordRepr as R;
    let bad = Error::BadRecordBody(kind);
    let r = (|| match kind {
        KIND_QSM_DATA => Ok(R::QsmData {
            region: be_u32(body, 0).ok_or(bad)?,
            sender: be_u16(body, 4).ok_or(bad)?,
            seq: be_u32(body, 6).ok_or(bad)?,
            group: be_u32(body, 10).ok_or(bad)?,
            gseq: be_u32(body, 14).ok_or(bad)?,
            payload: body.get(QSM_DATA_HEADER_LEN..).ok_or(bad)?,
        }),
        KIND_QSM_TOKEN => Ok(R::QsmToken {
            region: be_u32(body, 0).ok_or(bad)?,
            round: be_u32(body, 4).ok_or(bad)?,
            released_at: be_u64(body, 8).ok_or(bad)?,
            level: Some(*body.get(16).ok_or(bad)?)
                .filter(|&l| l <= MAX_TOKEN_LEVEL)
                .ok_or(bad)?,
            epoch: be_u32(body, 17).ok_or(bad)?,
            generation: be_u32(body, 21).ok_or(bad)?,
            releaser: be_u16(body, 25).ok_or(bad)?,
            entries: EntryList::new(body.get(QSM_TOKEN_HEADER_LEN..).ok_or(bad)?).ok_or(bad)?,
        }),
        KIND_QSM_REQUEST => {
            if body.len() != QSM_REQUEST_LEN {
                return Err(bad);
            }
            let count = be_u16(body, 10).ok_or(bad)?;
            if count == 0 {
                return Err(bad);
            }
            Ok(R::QsmRequest {
                region: be_u32(body, 0).ok_or(bad)?,
                sender: be_u16(body, 4).ok_or(bad)?,
                first: be_u32(body, 6).ok_or(bad)?,
                count,
            })
        }
        KIND_QSM_ACK => Ok(R::QsmAck {
            region: be_u32(body, 0).ok_or(bad)?,
            round: be_u32(body, 4).ok_or(bad)?,
            entries: EntryList::new(body.get(QSM_ACK_HEADER_LEN..).ok_or(bad)?).ok_or(bad)?,
        }),
        KIND_QSM_PASS => {
            if body.len() != QSM_PASS_LEN {
                return Err(bad);
            }
            Ok(R::QsmPass {
                region: be_u32(body, 0).ok_or(bad)?,
                epoch: be_u32(body, 4).ok_or(bad)?,
                level: Some(*body.get(8).ok_or(bad)?)
                    .filter(|&l| l <= MAX_TOKEN_LEVEL)
                    .ok_or(bad)?,
                generation: be_u32(body, 9).ok_or(bad)?,
                releaser: be_u16(body, 13).ok_or(bad)?,
                round: be_u32(body, 15).ok_or(bad)?,
            })
        }
        _ => Err(Error::UnknownRecord(kind)),
    })();
    match kind {
        KIND_QSM_DATA..=KIND_QSM_PASS => Some(r),
        _ => None,
    }
}

/// Body length of a QSM record; `None` for other kinds.
pub(super) const fn body_len(r: &super::RecordRepr<'_>) -> Option<usize> {
    use super::RecordRepr as R;
    Some(match r {
        R::QsmData { payload, .. } => QSM_DATA_HEADER_LEN.saturating_add(payload.len()),
        R::QsmToken { entries, .. } => QSM_TOKEN_HEADER_LEN.saturating_add(entries.0.len()),
        R::QsmRequest { .. } => QSM_REQUEST_LEN,
        R::QsmAck { entries, .. } => QSM_ACK_HEADER_LEN.saturating_add(entries.0.len()),
        R::QsmPass { .. } => QSM_PASS_LEN,
        _ => return None,
    })
}

/// Validity of a QSM record to emit; `None` for other kinds.
pub(super) fn check(r: &super::RecordRepr<'_>) -> Option<Result<(), Error>> {
    use super::RecordRepr as R;
    match *r {
        R::QsmRequest { count, .. } => Some(if count == 0 {
            Err(Error::BadRecordBody(KIND_QSM_REQUEST))
        } else {
            Ok(())
        }),
        R::QsmToken { level, .. } | R::QsmPass { level, .. } => Some(if level > MAX_TOKEN_LEVEL {
            Err(Error::BadRecordBody(r.kind()))
        } else {
            Ok(())
        }),
        R::QsmData { .. } | R::QsmAck { .. } => Some(Ok(())),
        _ => None,
    }
}

fn put(out: &mut [u8], at: usize, src: &[u8]) {
    if let Some(d) = out.get_mut(at..at + src.len()) {
        d.copy_from_slice(src);
    }
}

/// Writes a `QsmData` header (the payload follows at
/// [`QSM_DATA_HEADER_LEN`]).
pub fn write_data_header(
    body: &mut [u8],
    region: u32,
    sender: u16,
    seq: u32,
    group: u32,
    gseq: u32,
) {
    put(body, 0, &region.to_be_bytes());
    put(body, 4, &sender.to_be_bytes());
    put(body, 6, &seq.to_be_bytes());
    put(body, 10, &group.to_be_bytes());
    put(body, 14, &gseq.to_be_bytes());
}

/// The ring identity of a token: its view, generation and releaser.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TokenAuthority {
    /// The CMS view.
    pub epoch: u32,
    /// The generation (raised by regeneration).
    pub generation: u32,
    /// The member that releases this generation's rounds.
    pub releaser: u16,
}

/// Writes a `QsmToken` body from entries.
pub fn write_token_body(
    body: &mut [u8],
    region: u32,
    round: u32,
    released_at: u64,
    level: u8,
    authority: TokenAuthority,
    es: &[TokenEntry],
) {
    put(body, 0, &region.to_be_bytes());
    put(body, 4, &round.to_be_bytes());
    put(body, 8, &released_at.to_be_bytes());
    put(body, 16, &[level]);
    put(body, 17, &authority.epoch.to_be_bytes());
    put(body, 21, &authority.generation.to_be_bytes());
    put(body, 25, &authority.releaser.to_be_bytes());
    if let Some(rest) = body.get_mut(QSM_TOKEN_HEADER_LEN..) {
        write_entries(rest, es);
    }
}

/// Writes a `QsmAck` body from entries.
pub fn write_ack_body(body: &mut [u8], region: u32, round: u32, es: &[TokenEntry]) {
    put(body, 0, &region.to_be_bytes());
    put(body, 4, &round.to_be_bytes());
    if let Some(rest) = body.get_mut(QSM_ACK_HEADER_LEN..) {
        write_entries(rest, es);
    }
}

/// Writes the body of a QSM record; false for other kinds.
pub(super) fn emit_body(r: &super::RecordRepr<'_>, body: &mut [u8]) -> bool {
    use super::RecordRepr as R;
    match *r {
        R::QsmData {
            region,
            sender,
            seq,
            group,
            gseq,
            payload,
        } => {
            write_data_header(body, region, sender, seq, group, gseq);
            put(body, QSM_DATA_HEADER_LEN, payload);
        }
        R::QsmToken {
            region,
            round,
            released_at,
            level,
            epoch,
            generation,
            releaser,
            entries,
        } => {
            put(body, 0, &region.to_be_bytes());
            put(body, 4, &round.to_be_bytes());
            put(body, 8, &released_at.to_be_bytes());
            put(body, 16, &[level]);
            put(body, 17, &epoch.to_be_bytes());
            put(body, 21, &generation.to_be_bytes());
            put(body, 25, &releaser.to_be_bytes());
            put(body, QSM_TOKEN_HEADER_LEN, entries.0);
        }
        R::QsmPass {
            region,
            epoch,
            level,
            generation,
            releaser,
            round,
        } => {
            put(body, 0, &region.to_be_bytes());
            put(body, 4, &epoch.to_be_bytes());
            put(body, 8, &[level]);
            put(body, 9, &generation.to_be_bytes());
            put(body, 13, &releaser.to_be_bytes());
            put(body, 15, &round.to_be_bytes());
        }
        R::QsmRequest {
            region,
            sender,
            first,
            count,
        } => {
            put(body, 0, &region.to_be_bytes());
            put(body, 4, &sender.to_be_bytes());
            put(body, 6, &first.to_be_bytes());
            put(body, 10, &count.to_be_bytes());
        }
        R::QsmAck {
            region,
            round,
            entries,
        } => {
            put(body, 0, &region.to_be_bytes());
            put(body, 4, &round.to_be_bytes());
            put(body, QSM_ACK_HEADER_LEN, entries.0);
        }
        _ => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    use super::super::RecordRepr;
    use super::*;
    use std::vec::Vec;

    fn entry(sender: u16, mc: u32, ranges: &[(u32, u32)]) -> TokenEntry {
        let mut e = TokenEntry::member(sender, mc, 1000);
        e.stable = mc / 2;
        for &(lo, hi) in ranges {
            e.add_missing(SeqRange { lo, hi }, MAX_RANGES);
        }
        e
    }

    fn round_trip(r: RecordRepr<'_>) {
        let mut buf = [0u8; 2048];
        let n = r.emit(&mut buf).unwrap();
        assert_eq!(n, r.buffer_len());
        let back = RecordRepr::parse(buf[0], &buf[3..n]).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn records_round_trip() {
        let es = [entry(1, 10, &[(12, 14), (20, 20)]), entry(7, 0, &[])];
        let mut eb = [0u8; 128];
        let n = write_entries(&mut eb, &es);
        assert_eq!(n, entries_len(&es));
        let entries = EntryList::new(&eb[..n]).unwrap();
        assert_eq!(entries.iter().collect::<Vec<_>>(), es.to_vec());
        round_trip(RecordRepr::QsmData {
            region: 5,
            sender: 3,
            seq: 77,
            group: 8000,
            gseq: 12,
            payload: b"hello",
        });
        round_trip(RecordRepr::QsmToken {
            region: 5,
            round: 9,
            released_at: 123_456,
            level: 1,
            epoch: 3,
            generation: 2,
            releaser: 17,
            entries,
        });
        round_trip(RecordRepr::QsmPass {
            region: 5,
            epoch: 3,
            level: 0,
            generation: 7,
            releaser: 12,
            round: 9,
        });
        round_trip(RecordRepr::QsmRequest {
            region: 5,
            sender: 3,
            first: 40,
            count: 3,
        });
        round_trip(RecordRepr::QsmAck {
            region: 5,
            round: 9,
            entries,
        });
    }

    #[test]
    fn writers_match_emit() {
        let es = [entry(2, 5, &[(7, 9)])];
        let mut eb = [0u8; 64];
        let n = write_entries(&mut eb, &es);
        let entries = EntryList::new(&eb[..n]).unwrap();
        let r = RecordRepr::QsmToken {
            region: 1,
            round: 2,
            released_at: 3,
            level: 1,
            epoch: 4,
            generation: 5,
            releaser: 6,
            entries,
        };
        let mut a = [0u8; 128];
        let len = r.emit(&mut a).unwrap();
        let mut b = [0u8; 128];
        let auth = TokenAuthority {
            epoch: 4,
            generation: 5,
            releaser: 6,
        };
        write_token_body(&mut b, 1, 2, 3, 1, auth, &es);
        assert_eq!(&a[3..len], &b[..len - 3]);
    }

    #[test]
    fn malformed_bodies_are_refused() {
        let bad = |k: u8, b: &[u8]| RecordRepr::parse(k, b) == Err(Error::BadRecordBody(k));
        assert!(bad(KIND_QSM_DATA, &[0; 17]));
        assert!(bad(KIND_QSM_REQUEST, &[0; 11]));
        assert!(bad(KIND_QSM_REQUEST, &[0; 12]), "count 0");
        assert!(bad(KIND_QSM_TOKEN, &[0; 26]));
        let mut l = [0u8; 27];
        l[16] = 2;
        assert!(bad(KIND_QSM_TOKEN, &l), "level 2");
        assert!(bad(KIND_QSM_PASS, &[0; 18]));
        assert!(bad(KIND_QSM_PASS, &[0; 20]));
        let mut p = [0u8; 19];
        p[8] = 2;
        assert!(bad(KIND_QSM_PASS, &p), "pass level 2");
        // An entry claiming 9 ranges, and one with unsorted ranges.
        let mut t = [0u8; 27 + 15];
        t[27 + 14] = 9;
        assert!(bad(KIND_QSM_TOKEN, &t));
        let mut u = [0u8; 8 + 15 + 16];
        u[8 + 14] = 2;
        u[8 + 15..8 + 19].copy_from_slice(&10u32.to_be_bytes());
        u[8 + 19..8 + 23].copy_from_slice(&12u32.to_be_bytes());
        u[8 + 23..8 + 27].copy_from_slice(&11u32.to_be_bytes());
        u[8 + 27..8 + 31].copy_from_slice(&13u32.to_be_bytes());
        assert!(bad(KIND_QSM_ACK, &u));
        // A truncated entry.
        assert!(bad(KIND_QSM_ACK, &[0; 8 + 14]));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut x = 0x1234_5678_9abc_def0u64;
        for len in 0..200 {
            let mut b = [0u8; 200];
            for v in b.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *v = x as u8;
            }
            for k in KIND_QSM_DATA..=KIND_QSM_PASS {
                if let Ok(
                    RecordRepr::QsmToken { entries, .. } | RecordRepr::QsmAck { entries, .. },
                ) = RecordRepr::parse(k, &b[..len])
                {
                    let _ = entries.iter().count();
                }
            }
        }
    }
}
