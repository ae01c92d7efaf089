//! Records: the typed units a frame carries.
//!
//! Each record is `kind: u8 | len: u16 | body[len]` (big-endian). The body
//! layouts of the kinds defined so far:
//!
//! ```text
//! 0x01 Data       group u32 | msg u32 | payload[..]
//! 0x02 Fragment   group u32 | msg u32 | total_len u32 | offset u32 | bytes[..]
//! 0x03 Heartbeat  sent_at u64 (sender clock, µs) | incarnation u32   (exactly 12)
//! ```
//!
//! `Data` and `Fragment` carry application messages to a group (or point to
//! point with [`GROUP_NONE`]); a message too large for one frame travels as
//! fragments of at most [`MAX_MESSAGE_LEN`] in total. `Heartbeat` is the
//! X-FD failure-detector beat of X-Lane §5.1; its incarnation lets a peer
//! tell a restarted sender from a late beat of the previous life.
//!
//! Kind ranges 0x10-0x1F (total order, FastCast), 0x20-0x2F (pledges and
//! application, Omaha) and 0x30-0x3F (token rings, QSM) are reserved; bit 7
//! marks a kind as ignorable by receivers that do not know it.
//!
//! Decisions: a `Data` payload may be empty (a zero-length message is a
//! message). A `Fragment` must be non-empty and lie within its message, and
//! the message must be non-empty and at most [`MAX_MESSAGE_LEN`]: a receiver
//! sizes reassembly from `total_len`, so it is bounded here, before any state
//! is touched. `sent_at` stays a raw `u64` rather than an
//! [`Instant`](crate::time::Instant) because it is the *sender's* clock,
//! which has a different origin from ours.

use core::ops::RangeInclusive;

use super::multicast;
use super::order::{self, IdList, MemberList};
use super::{be_u32, be_u64, Error, MAX_MESSAGE_LEN};
use crate::seq::Seq;

/// Length of a record header (`kind` + `len`).
pub const RECORD_HEADER_LEN: usize = 3;
/// Kind code of [`RecordRepr::Data`].
pub const KIND_DATA: u8 = 0x01;
/// Kind code of [`RecordRepr::Fragment`].
pub const KIND_FRAGMENT: u8 = 0x02;
/// Kind code of [`RecordRepr::Heartbeat`].
pub const KIND_HEARTBEAT: u8 = 0x03;
/// Kind bit 7: a receiver that does not know the kind skips the record
/// instead of rejecting the frame.
pub const KIND_IGNORABLE: u8 = 0x80;
/// Kinds reserved for total order broadcast (FastCast).
pub const KIND_TOTAL_ORDER: RangeInclusive<u8> = 0x10..=0x1F;
/// Kinds reserved for pledges and application records (Omaha).
pub const KIND_PLEDGE: RangeInclusive<u8> = 0x20..=0x2F;
/// Kinds reserved for token rings (QSM).
pub const KIND_TOKEN_RING: RangeInclusive<u8> = 0x30..=0x3F;

/// Group id meaning "point to point, not a group message".
pub const GROUP_NONE: u32 = 0xFFFF_FFFF;
/// Fixed part of a `Data` body (group, msg) before the payload.
pub const DATA_HEADER_LEN: usize = 8;
/// Fixed part of a `Fragment` body (group, msg, total_len, offset).
pub const FRAGMENT_HEADER_LEN: usize = 16;
/// Exact length of a `Heartbeat` body.
pub const HEARTBEAT_LEN: usize = 12;

/// Whether a receiver may skip `kind` when it does not know it (bit 7).
pub const fn is_ignorable(kind: u8) -> bool {
    kind & KIND_IGNORABLE != 0
}

/// Whether this version defines `kind` (i.e. [`RecordRepr::parse`] does not
/// answer [`Error::UnknownRecord`]).
pub const fn is_known_kind(kind: u8) -> bool {
    matches!(
        kind,
        KIND_DATA | KIND_FRAGMENT | KIND_HEARTBEAT | 0x10..=0x1D | 0x30..=0x34
    )
}

/// A raw record: its kind and body, not interpreted.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RecordView<'a> {
    /// The kind byte.
    pub kind: u8,
    /// The body, without the 3-byte record header.
    pub body: &'a [u8],
}

/// One record of a validated frame, as yielded by the record iterators.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Record<'a> {
    /// A record of a kind this version understands.
    Known(RecordRepr<'a>),
    /// An unknown kind with the ignorable bit set: skipped, but reported so
    /// the node can count it (and a relay can forward it unchanged).
    Ignored(RecordView<'a>),
}

/// A parsed record (the body's fields, borrowing variable parts).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum RecordRepr<'a> {
    /// A whole application message.
    Data {
        /// Destination group, or [`GROUP_NONE`] for point to point.
        group: u32,
        /// Per-sender message id.
        msg: Seq,
        /// The message.
        payload: &'a [u8],
    },
    /// A slice `[offset, offset + bytes.len())` of a message of `total_len`
    /// bytes.
    Fragment {
        /// Destination group, or [`GROUP_NONE`] for point to point.
        group: u32,
        /// Per-sender message id.
        msg: Seq,
        /// Length of the whole message, `1..=MAX_MESSAGE_LEN`.
        total_len: u32,
        /// Where `bytes` start inside the message.
        offset: u32,
        /// The slice, non-empty.
        bytes: &'a [u8],
    },
    /// An X-FD heartbeat (X-Lane §5.1).
    Heartbeat {
        /// The sender's clock when it sent the beat, µs (sender's origin).
        sent_at: u64,
        /// The sender's incarnation: bumped on every restart.
        incarnation: u32,
    },
    /// FastCast DATA (Fig. 2 line 10), or a slice of it, possibly forwarded.
    TobData {
        /// Who broadcast the message.
        origin: u16,
        /// The origin's per-sender counter.
        counter: u32,
        /// What the payload is: application, INCR, DECR.
        kind: u8,
        /// Length of the whole message.
        total_len: u32,
        /// Where `bytes` start.
        offset: u32,
        /// The slice (empty only for an empty message).
        bytes: &'a [u8],
    },
    /// The sequencer's ACK(id, sn) (Fig. 2 line 19) for `ids.len()`
    /// consecutive sequence numbers from `first_sn`.
    TobOrder {
        /// View the numbers were assigned in.
        view: u32,
        /// Sequence number of the first id.
        first_sn: u64,
        /// The ids, in sequence order.
        ids: IdList<'a>,
    },
    /// Cumulative ACK (Fig. 2 line 24): the sender holds data and order of
    /// every sequence number below `cum`.
    TobAck {
        /// The sender's view.
        view: u32,
        /// First sequence number not held.
        cum: u64,
        /// The smallest ACK the sender has from the view: below `cum`, it
        /// waits for others' ACKs (a receiver whose ACK is higher answers).
        stable: u64,
        /// Application messages in the numbers below `cum` (batches count
        /// their messages): how a process that joined learns the numbering
        /// of `Delivered` events; [`super::order::APP_UNKNOWN`] when the
        /// sender does not know it yet.
        app: u64,
    },
    /// Request to the sequencer: resend order and data for `[from_sn, to_sn)`.
    TobNack {
        /// The sender's view.
        view: u32,
        /// First missing number.
        from_sn: u64,
        /// One past the last.
        to_sn: u64,
    },
    /// A coordinator's proposal of the next view (membership, §3.4).
    ViewChange {
        /// The proposed view id.
        vid: u32,
        /// The installed view the proposal starts from.
        base: u32,
        /// Its members, the first being the new sequencer.
        members: MemberList<'a>,
    },
    /// One part of RECOVER(pendings, seqnos) (Fig. 3 line 2).
    Recover {
        /// The view being installed.
        vid: u32,
        /// The sender's snToDeliver.
        deliver_from: u64,
        /// End of the contiguous range of numbers whose order the sender knows.
        order_end: u64,
        /// Unordered pending messages in the whole RECOVER.
        pending_total: u32,
        /// This part's index.
        part: u8,
        /// Number of parts.
        parts: u8,
        /// Sequence number of the first ordered entry of this part.
        first_sn: u64,
        /// How many of `ids` are ordered (the rest are unordered pendings).
        n_ordered: u16,
        /// The highest attempt whose decision the sender accepted (its
        /// installed view's id if none): the ordered entries follow it.
        ballot: u32,
        /// The view id that decision installs.
        label: u32,
        /// The members of the view that decision installs.
        value_members: MemberList<'a>,
        /// Ordered entries then unordered pendings.
        ids: IdList<'a>,
    },
    /// A view installed without the receiver, told to a process that sent
    /// records of an older view: it was excluded.
    ViewInstalled {
        /// The installed view's id.
        vid: u32,
        /// Its members.
        members: MemberList<'a>,
    },
    /// An excluded process tells a proposer it is out for good (it must
    /// restart and join to come back).
    Leave,
    /// ACK_RECOVER (Fig. 3 line 18): all of the receiver's RECOVER arrived.
    AckRecover {
        /// The view being installed.
        vid: u32,
    },
    /// END_RECOVERY (Fig. 3 line 4).
    EndRecovery {
        /// The view being installed.
        vid: u32,
    },
    /// Request for the data of messages listed in a RECOVER.
    Fetch {
        /// The view being installed.
        vid: u32,
        /// The messages wanted.
        ids: IdList<'a>,
    },
    /// A process asks to join at the next view boundary.
    Join {
        /// Its incarnation.
        incarnation: u32,
    },
    /// ACK of an INCR (Fig. 4 line 14), by reliable unicast.
    BwAck {
        /// Counter of the INCR message acknowledged.
        counter: u32,
    },
    /// The INCR requester asks for the ACK it is missing.
    BwPoll {
        /// Counter of the INCR message.
        counter: u32,
    },
    /// QSM: a message of `sender`'s stream to `region` (multicast,
    /// forwarded by a caching peer, or re-multicast by the sender).
    QsmData {
        /// The region's multicast address.
        region: u32,
        /// The original sender.
        sender: u16,
        /// Per (sender, region) sequence number, from 1.
        seq: u32,
        /// The destination group.
        group: u32,
        /// Per (sender, group) sequence number the application sees.
        gseq: u32,
        /// The message.
        payload: &'a [u8],
    },
    /// QSM: the region's token, aggregating its members' receive state.
    QsmToken {
        /// The region's multicast address.
        region: u32,
        /// Round number (the leader's release counter).
        round: u32,
        /// When the leader released it (µs of the leader's clock).
        released_at: u64,
        /// 0: a partition's ring; 1: the ring of partition leaders.
        level: u8,
        /// The CMS view it circulates in (tokens of other views are stale).
        epoch: u32,
        /// Token generation: raised by a member that regenerates a lost
        /// token; tokens of a lower generation are stale.
        generation: u32,
        /// The member that releases this generation's rounds.
        releaser: u16,
        /// One entry per sender.
        entries: super::multicast::EntryList<'a>,
    },
    /// QSM: a request for `[first, first + count)` of `sender`'s stream.
    QsmRequest {
        /// The region's multicast address.
        region: u32,
        /// Whose stream.
        sender: u16,
        /// First sequence number wanted.
        first: u32,
        /// How many (at least 1).
        count: u16,
    },
    /// QSM: the region leader's aggregate of a completed token round, to a
    /// sender (its ACK/NAK and garbage collection input).
    QsmAck {
        /// The region's multicast address.
        region: u32,
        /// The round it aggregates.
        round: u32,
        /// The entries of the senders it concerns.
        entries: super::multicast::EntryList<'a>,
    },
    /// QSM: "I have your token" — a ring member to the member that passed
    /// it a token, which otherwise passes it again and, after a while,
    /// skips the silent member as dead.
    QsmPass {
        /// The region's multicast address.
        region: u32,
        /// The CMS view.
        epoch: u32,
        /// The token's ring level.
        level: u8,
        /// The generation the acknowledging member follows (the token's,
        /// or a newer one: the passer then learns it is stale).
        generation: u32,
        /// That generation's releaser.
        releaser: u16,
        /// The token's round.
        round: u32,
    },
}

/// Fragment validity, in checked arithmetic so hostile values cannot wrap.
fn fragment_ok(total_len: u32, offset: u32, len: usize) -> bool {
    let Ok(len) = u32::try_from(len) else {
        return false;
    };
    total_len > 0
        && total_len <= MAX_MESSAGE_LEN
        && len > 0
        && offset.checked_add(len).is_some_and(|end| end <= total_len)
}

impl<'a> RecordRepr<'a> {
    /// Parse the body of a record of kind `kind`.
    ///
    /// Errors: [`Error::UnknownRecord`] for kinds this version does not
    /// define (whether or not ignorable: skipping is the frame's business);
    /// [`Error::BadRecordBody`] when the body is malformed.
    pub fn parse(kind: u8, body: &'a [u8]) -> Result<Self, Error> {
        let bad = Error::BadRecordBody(kind);
        match kind {
            KIND_DATA => {
                let group = be_u32(body, 0).ok_or(bad)?;
                let msg = Seq(be_u32(body, 4).ok_or(bad)?);
                let payload = body.get(DATA_HEADER_LEN..).ok_or(bad)?;
                Ok(RecordRepr::Data {
                    group,
                    msg,
                    payload,
                })
            }
            KIND_FRAGMENT => {
                let group = be_u32(body, 0).ok_or(bad)?;
                let msg = Seq(be_u32(body, 4).ok_or(bad)?);
                let total_len = be_u32(body, 8).ok_or(bad)?;
                let offset = be_u32(body, 12).ok_or(bad)?;
                let bytes = body.get(FRAGMENT_HEADER_LEN..).ok_or(bad)?;
                if !fragment_ok(total_len, offset, bytes.len()) {
                    return Err(bad);
                }
                Ok(RecordRepr::Fragment {
                    group,
                    msg,
                    total_len,
                    offset,
                    bytes,
                })
            }
            KIND_HEARTBEAT => {
                if body.len() != HEARTBEAT_LEN {
                    return Err(bad);
                }
                Ok(RecordRepr::Heartbeat {
                    sent_at: be_u64(body, 0).ok_or(bad)?,
                    incarnation: be_u32(body, 8).ok_or(bad)?,
                })
            }
            _ => order::parse(kind, body)
                .or_else(|| multicast::parse(kind, body))
                .unwrap_or(Err(Error::UnknownRecord(kind))),
        }
    }

    /// The kind code.
    pub const fn kind(&self) -> u8 {
        match self {
            RecordRepr::Data { .. } => KIND_DATA,
            RecordRepr::Fragment { .. } => KIND_FRAGMENT,
            RecordRepr::Heartbeat { .. } => KIND_HEARTBEAT,
            RecordRepr::TobData { .. } => order::KIND_TOB_DATA,
            RecordRepr::TobOrder { .. } => order::KIND_TOB_ORDER,
            RecordRepr::TobAck { .. } => order::KIND_TOB_ACK,
            RecordRepr::TobNack { .. } => order::KIND_TOB_NACK,
            RecordRepr::ViewChange { .. } => order::KIND_VIEW_CHANGE,
            RecordRepr::Recover { .. } => order::KIND_RECOVER,
            RecordRepr::AckRecover { .. } => order::KIND_ACK_RECOVER,
            RecordRepr::EndRecovery { .. } => order::KIND_END_RECOVERY,
            RecordRepr::Fetch { .. } => order::KIND_FETCH,
            RecordRepr::Join { .. } => order::KIND_JOIN,
            RecordRepr::BwAck { .. } => order::KIND_BW_ACK,
            RecordRepr::BwPoll { .. } => order::KIND_BW_POLL,
            RecordRepr::ViewInstalled { .. } => order::KIND_VIEW_INSTALLED,
            RecordRepr::Leave => order::KIND_LEAVE,
            RecordRepr::QsmData { .. } => multicast::KIND_QSM_DATA,
            RecordRepr::QsmToken { .. } => multicast::KIND_QSM_TOKEN,
            RecordRepr::QsmRequest { .. } => multicast::KIND_QSM_REQUEST,
            RecordRepr::QsmAck { .. } => multicast::KIND_QSM_ACK,
            RecordRepr::QsmPass { .. } => multicast::KIND_QSM_PASS,
        }
    }

    /// Length of the body (saturating).
    pub const fn body_len(&self) -> usize {
        match self {
            RecordRepr::Data { payload, .. } => DATA_HEADER_LEN.saturating_add(payload.len()),
            RecordRepr::Fragment { bytes, .. } => FRAGMENT_HEADER_LEN.saturating_add(bytes.len()),
            RecordRepr::Heartbeat { .. } => HEARTBEAT_LEN,
            other => match order::body_len(other) {
                Some(n) => n,
                None => match multicast::body_len(other) {
                    Some(n) => n,
                    None => 0,
                },
            },
        }
    }

    /// Length of the whole record on the wire, header included (saturating).
    pub const fn buffer_len(&self) -> usize {
        RECORD_HEADER_LEN.saturating_add(self.body_len())
    }

    /// Check that the record can be emitted and would parse back:
    /// [`Error::Oversized`] if the body exceeds the 16-bit length field,
    /// [`Error::BadRecordBody`] for an invalid fragment.
    pub fn check(&self) -> Result<(), Error> {
        if self.body_len() > usize::from(u16::MAX) {
            return Err(Error::Oversized);
        }
        if let RecordRepr::Fragment {
            total_len,
            offset,
            bytes,
            ..
        } = self
        {
            if !fragment_ok(*total_len, *offset, bytes.len()) {
                return Err(Error::BadRecordBody(KIND_FRAGMENT));
            }
        }
        order::check(self)
            .or_else(|| multicast::check(self))
            .unwrap_or(Ok(()))
    }

    /// Write the whole record (header and body) into
    /// `out[..self.buffer_len()]` and return that length.
    ///
    /// Errors (nothing written): those of [`check`](Self::check), and
    /// [`Error::BufferTooSmall`] if `out` is shorter than the record.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, Error> {
        self.check()?;
        let n = self.buffer_len();
        let out = out.get_mut(..n).ok_or(Error::BufferTooSmall)?;
        let (head, body) = out.split_at_mut(RECORD_HEADER_LEN);
        // check() bounded body_len by u16::MAX.
        let len = u16::try_from(body.len()).map_err(|_| Error::Oversized)?;
        head[0] = self.kind();
        head[1..3].copy_from_slice(&len.to_be_bytes());
        self.emit_body(body);
        Ok(n)
    }

    /// Write the body; `body.len() == self.body_len()` is guaranteed by the
    /// callers.
    fn emit_body(&self, body: &mut [u8]) {
        match *self {
            RecordRepr::Data {
                group,
                msg,
                payload,
            } => {
                put(body, 0, &group.to_be_bytes());
                put(body, 4, &msg.0.to_be_bytes());
                put(body, DATA_HEADER_LEN, payload);
            }
            RecordRepr::Fragment {
                group,
                msg,
                total_len,
                offset,
                bytes,
            } => {
                put(body, 0, &group.to_be_bytes());
                put(body, 4, &msg.0.to_be_bytes());
                put(body, 8, &total_len.to_be_bytes());
                put(body, 12, &offset.to_be_bytes());
                put(body, FRAGMENT_HEADER_LEN, bytes);
            }
            RecordRepr::Heartbeat {
                sent_at,
                incarnation,
            } => {
                put(body, 0, &sent_at.to_be_bytes());
                put(body, 8, &incarnation.to_be_bytes());
            }
            ref other => {
                if !order::emit_body(other, body) {
                    multicast::emit_body(other, body);
                }
            }
        }
    }
}

/// Copy `src` to `out[at..]`, writing nothing if it does not fit (callers
/// size `out` exactly, so that never happens).
fn put(out: &mut [u8], at: usize, src: &[u8]) {
    if let Some(dst) = at
        .checked_add(src.len())
        .and_then(|end| out.get_mut(at..end))
    {
        dst.copy_from_slice(src);
    }
}

/// Test helper: a valid record of kind `sel % 3` built from arbitrary parts
/// (a fragment uses `payload`, or one byte if it is empty).
#[cfg(test)]
pub(crate) fn sample_repr(
    sel: u8,
    group: u32,
    msg: u32,
    a: u64,
    off: u32,
    extra: u32,
    payload: &[u8],
) -> RecordRepr<'_> {
    const ONE_ID: [u8; 7] = [0, 1, 0, 0, 0, 2, 1];
    let ids = {
        let n = payload.len() / order::ID_LEN * order::ID_LEN;
        let b = if n == 0 { &ONE_ID[..] } else { &payload[..n] };
        IdList::new(b).unwrap_or(IdList::new(&ONE_ID).expect("7 bytes"))
    };
    let members = {
        let n = payload.len() / 2 * 2;
        let b = if n == 0 { &ONE_ID[..2] } else { &payload[..n] };
        MemberList::new(b).unwrap_or(MemberList::EMPTY)
    };
    match sel % 17 {
        16 => RecordRepr::Leave,
        15 => RecordRepr::ViewInstalled {
            vid: group,
            members,
        },
        3 => RecordRepr::TobData {
            origin: group as u16,
            counter: msg,
            kind: (a % 3) as u8,
            total_len: if payload.is_empty() {
                0
            } else {
                off % 1000 + payload.len() as u32 + extra % 1000
            },
            offset: if payload.is_empty() { 0 } else { off % 1000 },
            bytes: payload,
        },
        4 => RecordRepr::TobOrder {
            view: group,
            first_sn: a >> 1,
            ids,
        },
        5 => RecordRepr::TobAck {
            view: group,
            cum: a,
            stable: a >> 1,
            app: a >> 2,
        },
        6 => RecordRepr::TobNack {
            view: group,
            from_sn: a >> 1,
            to_sn: (a >> 1) + 1 + u64::from(extra),
        },
        7 => RecordRepr::ViewChange {
            vid: group,
            base: msg,
            members,
        },
        8 => RecordRepr::Recover {
            vid: group,
            deliver_from: a >> 2,
            order_end: (a >> 2) + u64::from(extra),
            pending_total: msg,
            part: 0,
            parts: 1 + (off % 200) as u8,
            first_sn: a >> 2,
            n_ordered: (extra as usize % (ids.len() + 1)) as u16,
            ballot: msg,
            label: extra,
            value_members: members,
            ids,
        },
        9 => RecordRepr::AckRecover { vid: group },
        10 => RecordRepr::EndRecovery { vid: group },
        11 => RecordRepr::Fetch { vid: group, ids },
        12 => RecordRepr::Join { incarnation: msg },
        13 => RecordRepr::BwAck { counter: msg },
        14 => RecordRepr::BwPoll { counter: msg },
        0 => RecordRepr::Data {
            group,
            msg: Seq(msg),
            payload,
        },
        1 => {
            let bytes: &[u8] = if payload.is_empty() { &[1] } else { payload };
            let off = off % 1000;
            RecordRepr::Fragment {
                group,
                msg: Seq(msg),
                total_len: off + bytes.len() as u32 + extra % 1000,
                offset: off,
                bytes,
            }
        }
        _ => RecordRepr::Heartbeat {
            sent_at: a,
            incarnation: msg,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    fn round_trip(r: RecordRepr<'_>) {
        let mut buf = vec![0u8; r.buffer_len() + 5];
        let n = r.emit(&mut buf).unwrap();
        assert_eq!(n, r.buffer_len());
        assert_eq!(buf[0], r.kind());
        assert_eq!(
            usize::from(u16::from_be_bytes([buf[1], buf[2]])),
            r.body_len()
        );
        let parsed = RecordRepr::parse(buf[0], &buf[RECORD_HEADER_LEN..n]).unwrap();
        assert_eq!(parsed, r);
    }

    #[test]
    fn data_round_trip_and_layout() {
        let r = RecordRepr::Data {
            group: 0x0102_0304,
            msg: Seq(0x0A0B_0C0D),
            payload: b"hi",
        };
        let mut buf = [0u8; 13];
        assert_eq!(r.emit(&mut buf), Ok(13));
        assert_eq!(buf, [1, 0, 10, 1, 2, 3, 4, 10, 11, 12, 13, b'h', b'i']);
        round_trip(r);
        round_trip(RecordRepr::Data {
            group: GROUP_NONE,
            msg: Seq(u32::MAX),
            payload: &[],
        });
    }

    #[test]
    fn fragment_round_trip() {
        round_trip(RecordRepr::Fragment {
            group: 9,
            msg: Seq(3),
            total_len: 100,
            offset: 90,
            bytes: &[7; 10],
        });
        round_trip(RecordRepr::Fragment {
            group: 0,
            msg: Seq(0),
            total_len: MAX_MESSAGE_LEN,
            offset: MAX_MESSAGE_LEN - 1,
            bytes: &[1],
        });
    }

    #[test]
    fn heartbeat_round_trip_and_layout() {
        let r = RecordRepr::Heartbeat {
            sent_at: 0x0102_0304_0506_0708,
            incarnation: 0x0A0B_0C0D,
        };
        let mut buf = [0u8; 15];
        assert_eq!(r.emit(&mut buf), Ok(15));
        assert_eq!(buf, [3, 0, 12, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13]);
        round_trip(r);
    }

    #[test]
    fn bad_bodies() {
        assert_eq!(
            RecordRepr::parse(KIND_DATA, &[0; 7]),
            Err(Error::BadRecordBody(1))
        );
        assert_eq!(
            RecordRepr::parse(KIND_FRAGMENT, &[0; 15]),
            Err(Error::BadRecordBody(2))
        );
        assert_eq!(
            RecordRepr::parse(KIND_HEARTBEAT, &[0; 11]),
            Err(Error::BadRecordBody(3))
        );
        assert_eq!(
            RecordRepr::parse(KIND_HEARTBEAT, &[0; 13]),
            Err(Error::BadRecordBody(3))
        );
        assert_eq!(
            RecordRepr::parse(0x7e, &[]),
            Err(Error::UnknownRecord(0x7e))
        );
        assert_eq!(
            RecordRepr::parse(0xfe, &[]),
            Err(Error::UnknownRecord(0xfe))
        );
        assert!(RecordRepr::parse(KIND_DATA, &[0; 8]).is_ok());
    }

    fn fragment_body(total: u32, offset: u32, n: usize) -> Vec<u8> {
        let mut b = vec![0u8; 16];
        b[8..12].copy_from_slice(&total.to_be_bytes());
        b[12..16].copy_from_slice(&offset.to_be_bytes());
        b.extend(core::iter::repeat_n(0xAB, n));
        b
    }

    #[test]
    fn fragment_bounds() {
        let bad = Err(Error::BadRecordBody(KIND_FRAGMENT));
        let p = |t, o, n| RecordRepr::parse(KIND_FRAGMENT, &fragment_body(t, o, n)).map(|_| ());
        assert_eq!(p(10, 0, 10), Ok(()));
        assert_eq!(p(10, 9, 1), Ok(()));
        assert_eq!(p(10, 9, 2), bad, "offset + len > total");
        assert_eq!(p(0, 0, 1), bad, "total 0");
        assert_eq!(p(10, 0, 0), bad, "empty bytes");
        assert_eq!(p(10, u32::MAX - 1, 4), bad, "offset overflow");
        assert_eq!(p(MAX_MESSAGE_LEN + 1, 0, 1), bad, "total too large");
        assert_eq!(p(MAX_MESSAGE_LEN, 0, 1), Ok(()));
    }

    #[test]
    fn emit_refuses_invalid_or_short() {
        let bad = RecordRepr::Fragment {
            group: 0,
            msg: Seq(0),
            total_len: 4,
            offset: 3,
            bytes: &[1, 2],
        };
        let mut buf = [0xEEu8; 64];
        assert_eq!(bad.emit(&mut buf), Err(Error::BadRecordBody(KIND_FRAGMENT)));
        assert_eq!(buf, [0xEE; 64], "nothing written");
        let hb = RecordRepr::Heartbeat {
            sent_at: 1,
            incarnation: 2,
        };
        assert_eq!(hb.emit(&mut buf[..14]), Err(Error::BufferTooSmall));
        assert_eq!(buf, [0xEE; 64], "nothing written");
        let huge = [0u8; 65535];
        let big = RecordRepr::Data {
            group: 0,
            msg: Seq(0),
            payload: &huge,
        };
        assert_eq!(big.check(), Err(Error::Oversized));
    }

    #[test]
    fn kind_classes() {
        assert!(is_ignorable(0xfe) && !is_ignorable(0x7e));
        assert!(
            is_known_kind(KIND_DATA)
                && is_known_kind(KIND_FRAGMENT)
                && is_known_kind(KIND_HEARTBEAT)
        );
        assert!(!is_known_kind(0) && !is_known_kind(0x1e) && !is_known_kind(0x81));
        assert!(is_known_kind(0x10) && is_known_kind(0x1c));
        for k in [KIND_DATA, KIND_FRAGMENT, KIND_HEARTBEAT] {
            assert!(!is_ignorable(k));
            assert!(
                !KIND_TOTAL_ORDER.contains(&k)
                    && !KIND_PLEDGE.contains(&k)
                    && !KIND_TOKEN_RING.contains(&k)
            );
        }
    }

    proptest! {
        #[test]
        fn any_record_round_trips(
            sel: u8, group: u32, msg: u32, a: u64, off in 0u32..1000, extra in 0u32..1000,
            payload in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            round_trip(sample_repr(sel, group, msg, a, off, extra, &payload));
        }

        #[test]
        fn parse_arbitrary_never_panics(kind: u8, body in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(r) = RecordRepr::parse(kind, &body) {
                // Anything that parses re-emits to the same bytes.
                let mut out = vec![0u8; r.buffer_len()];
                r.emit(&mut out).unwrap();
                prop_assert_eq!(&out[RECORD_HEADER_LEN..], &body[..]);
                prop_assert_eq!(out[0], kind);
            }
        }
    }
}
