//! Records of the total order broadcast (FastCast §3.3–§3.5), kinds 0x10–0x1B.
//!
//! ```text
//! 0x10 TobData      origin u16 | counter u32 | kind u8 | total_len u32 | offset u32 | bytes[..]
//! 0x11 TobOrder     view u32 | first_sn u64 | ids[7·n]            (sequencer's ACK(id, sn), batched)
//! 0x12 TobAck       view u32 | cum u64 | stable u64 | app u64     (holds data+order of every sn < cum;
//!                                                                  app: application messages below cum)
//! 0x13 TobNack      view u32 | from_sn u64 | to_sn u64            (ask the sequencer for [from, to))
//! 0x14 ViewChange   vid u32 | base u32 | members[2·n]              (coordinator's proposal)
//! 0x15 Recover      vid u32 | deliver_from u64 | order_end u64 | pending_total u32
//!                   | part u8 | parts u8 | first_sn u64 | n_ordered u16
//!                   | ballot u32 | label u32 | n_value u8 | value_members[2·n_value] | ids[7·n]
//! 0x16 AckRecover   vid u32
//! 0x17 EndRecovery  vid u32
//! 0x18 Fetch        vid u32 | ids[7·n]                             (send me these messages' data)
//! 0x19 Join         incarnation u32
//! 0x1A BwAck        counter u32                                    (ACK of an INCR, reliable unicast)
//! 0x1B BwPoll       counter u32                                    (requester asks for missing ACKs)
//! 0x1C ViewInstalled vid u32 | members[2·n]                        (the view a stale process missed)
//! 0x1D Leave        (empty)                                        (an excluded process is out for good)
//! id = origin u16 | counter u32 | flags u8   (flags bit 0: the sender holds the message's data)
//! ```
//!
//! Message ids are `(origin, counter)`, never hashes (the paper's
//! `hash(p_i, m)` is replaced so that ids are unique by construction and
//! per-sender FIFO can be checked). `TobData` is fragment-shaped so that one
//! record type carries whole messages, slices of large ones, and messages a
//! process forwards for another during a view change.

use super::{be_u16, be_u32, be_u64, Error, MAX_MESSAGE_LEN};

/// Kind of [`super::RecordRepr::TobData`].
pub const KIND_TOB_DATA: u8 = 0x10;
/// Kind of [`super::RecordRepr::TobOrder`].
pub const KIND_TOB_ORDER: u8 = 0x11;
/// Kind of [`super::RecordRepr::TobAck`].
pub const KIND_TOB_ACK: u8 = 0x12;
/// Kind of [`super::RecordRepr::TobNack`].
pub const KIND_TOB_NACK: u8 = 0x13;
/// Kind of [`super::RecordRepr::ViewChange`].
pub const KIND_VIEW_CHANGE: u8 = 0x14;
/// Kind of [`super::RecordRepr::Recover`].
pub const KIND_RECOVER: u8 = 0x15;
/// Kind of [`super::RecordRepr::AckRecover`].
pub const KIND_ACK_RECOVER: u8 = 0x16;
/// Kind of [`super::RecordRepr::EndRecovery`].
pub const KIND_END_RECOVERY: u8 = 0x17;
/// Kind of [`super::RecordRepr::Fetch`].
pub const KIND_FETCH: u8 = 0x18;
/// Kind of [`super::RecordRepr::Join`].
pub const KIND_JOIN: u8 = 0x19;
/// Kind of [`super::RecordRepr::BwAck`].
pub const KIND_BW_ACK: u8 = 0x1A;
/// Kind of [`super::RecordRepr::BwPoll`].
pub const KIND_BW_POLL: u8 = 0x1B;
/// Kind of [`super::RecordRepr::ViewInstalled`].
pub const KIND_VIEW_INSTALLED: u8 = 0x1C;
/// Kind of [`super::RecordRepr::Leave`].
pub const KIND_LEAVE: u8 = 0x1D;

/// Fixed part of a `TobData` body.
pub const TOB_DATA_HEADER_LEN: usize = 15;
/// Body of a `TobAck`.
pub const TOB_ACK_LEN: usize = 28;
/// `TobAck::app` of a process that does not know its application count yet
/// (it just joined).
pub const APP_UNKNOWN: u64 = u64::MAX;
/// Fixed part of a `TobOrder` body.
pub const TOB_ORDER_HEADER_LEN: usize = 12;
/// Fixed part of a `Recover` body (the accepted value's members follow it).
pub const RECOVER_HEADER_LEN: usize = 45;
/// Bytes of one id entry.
pub const ID_LEN: usize = 7;
/// Id flag: the sender of the record holds the message's data.
pub const ID_HAS_DATA: u8 = 1;

/// One message id in a list, with its flags.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct IdEntry {
    /// Who broadcast it.
    pub origin: u16,
    /// The origin's per-sender counter.
    pub counter: u32,
    /// [`ID_HAS_DATA`], …
    pub flags: u8,
}

/// A list of [`IdEntry`] over borrowed bytes (7 bytes each).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct IdList<'a>(&'a [u8]);

impl<'a> IdList<'a> {
    /// A list over `bytes`, whose length must be a multiple of [`ID_LEN`].
    pub fn new(bytes: &'a [u8]) -> Option<Self> {
        bytes.len().is_multiple_of(ID_LEN).then_some(IdList(bytes))
    }
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len() / ID_LEN
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The raw bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }
    /// Entry `i`.
    pub fn get(&self, i: usize) -> Option<IdEntry> {
        let off = i.checked_mul(ID_LEN)?;
        Some(IdEntry {
            origin: be_u16(self.0, off)?,
            counter: be_u32(self.0, off + 2)?,
            flags: *self.0.get(off + 6)?,
        })
    }
    /// The entries in order.
    pub fn iter(&self) -> impl Iterator<Item = IdEntry> + 'a {
        let list = *self;
        (0..list.len()).filter_map(move |i| list.get(i))
    }
    /// Writes `e` as entry `i` of `out` (which holds at least `i + 1` entries).
    pub fn write(out: &mut [u8], i: usize, e: IdEntry) {
        let off = i * ID_LEN;
        if let Some(d) = out.get_mut(off..off + ID_LEN) {
            d[0..2].copy_from_slice(&e.origin.to_be_bytes());
            d[2..6].copy_from_slice(&e.counter.to_be_bytes());
            d[6] = e.flags;
        }
    }
}

/// A list of member ids over borrowed bytes (2 bytes each).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MemberList<'a>(&'a [u8]);

impl MemberList<'static> {
    /// The empty list.
    pub const EMPTY: MemberList<'static> = MemberList(&[]);
}

impl<'a> MemberList<'a> {
    /// A list over `bytes` (even length).
    pub fn new(bytes: &'a [u8]) -> Option<Self> {
        bytes.len().is_multiple_of(2).then_some(MemberList(bytes))
    }
    /// Number of members.
    pub fn len(&self) -> usize {
        self.0.len() / 2
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The raw bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }
    /// The members in order.
    pub fn iter(&self) -> impl Iterator<Item = u16> + 'a {
        let b = self.0;
        (0..b.len() / 2).filter_map(move |i| be_u16(b, 2 * i))
    }
}

pub(super) fn tob_data_ok(total_len: u32, offset: u32, len: usize) -> bool {
    let Ok(len) = u32::try_from(len) else {
        return false;
    };
    total_len <= MAX_MESSAGE_LEN
        && offset.checked_add(len).is_some_and(|end| end <= total_len)
        && (len > 0 || (total_len == 0 && offset == 0))
}

/// Parses the body of a total-order record; `None` for other kinds.
pub(super) fn parse(kind: u8, body: &[u8]) -> Option<Result<super::RecordRepr<'_>, Error>> {
    use super::RecordRepr as R;
    let bad = Error::BadRecordBody(kind);
    let exact = |n: usize| if body.len() == n { Ok(()) } else { Err(bad) };
    let r = (|| match kind {
        KIND_TOB_DATA => {
            let origin = be_u16(body, 0).ok_or(bad)?;
            let counter = be_u32(body, 2).ok_or(bad)?;
            let data_kind = *body.get(6).ok_or(bad)?;
            let total_len = be_u32(body, 7).ok_or(bad)?;
            let offset = be_u32(body, 11).ok_or(bad)?;
            let bytes = body.get(TOB_DATA_HEADER_LEN..).ok_or(bad)?;
            if !tob_data_ok(total_len, offset, bytes.len()) {
                return Err(bad);
            }
            Ok(R::TobData {
                origin,
                counter,
                kind: data_kind,
                total_len,
                offset,
                bytes,
            })
        }
        KIND_TOB_ORDER => {
            let view = be_u32(body, 0).ok_or(bad)?;
            let first_sn = be_u64(body, 4).ok_or(bad)?;
            let ids = IdList::new(body.get(TOB_ORDER_HEADER_LEN..).ok_or(bad)?).ok_or(bad)?;
            if ids.is_empty() || first_sn.checked_add(ids.len() as u64).is_none() {
                return Err(bad);
            }
            Ok(R::TobOrder {
                view,
                first_sn,
                ids,
            })
        }
        KIND_TOB_ACK => {
            exact(TOB_ACK_LEN)?;
            Ok(R::TobAck {
                view: be_u32(body, 0).ok_or(bad)?,
                cum: be_u64(body, 4).ok_or(bad)?,
                stable: be_u64(body, 12).ok_or(bad)?,
                app: be_u64(body, 20).ok_or(bad)?,
            })
        }
        KIND_TOB_NACK => {
            exact(20)?;
            let (from_sn, to_sn) = (be_u64(body, 4).ok_or(bad)?, be_u64(body, 12).ok_or(bad)?);
            if from_sn >= to_sn {
                return Err(bad);
            }
            Ok(R::TobNack {
                view: be_u32(body, 0).ok_or(bad)?,
                from_sn,
                to_sn,
            })
        }
        KIND_VIEW_CHANGE => {
            let vid = be_u32(body, 0).ok_or(bad)?;
            let base = be_u32(body, 4).ok_or(bad)?;
            let members = MemberList::new(body.get(8..).ok_or(bad)?).ok_or(bad)?;
            if members.is_empty() {
                return Err(bad);
            }
            Ok(R::ViewChange { vid, base, members })
        }
        KIND_VIEW_INSTALLED => {
            let vid = be_u32(body, 0).ok_or(bad)?;
            let members = MemberList::new(body.get(4..).ok_or(bad)?).ok_or(bad)?;
            if members.is_empty() {
                return Err(bad);
            }
            Ok(R::ViewInstalled { vid, members })
        }
        KIND_RECOVER => {
            let vid = be_u32(body, 0).ok_or(bad)?;
            let deliver_from = be_u64(body, 4).ok_or(bad)?;
            let order_end = be_u64(body, 12).ok_or(bad)?;
            let pending_total = be_u32(body, 20).ok_or(bad)?;
            let part = *body.get(24).ok_or(bad)?;
            let parts = *body.get(25).ok_or(bad)?;
            let first_sn = be_u64(body, 26).ok_or(bad)?;
            let n_ordered = be_u16(body, 34).ok_or(bad)?;
            let ballot = be_u32(body, 36).ok_or(bad)?;
            let label = be_u32(body, 40).ok_or(bad)?;
            let n_value = usize::from(*body.get(44).ok_or(bad)?);
            let ids_at = RECOVER_HEADER_LEN + 2 * n_value;
            let value_members =
                MemberList::new(body.get(RECOVER_HEADER_LEN..ids_at).ok_or(bad)?).ok_or(bad)?;
            let ids = IdList::new(body.get(ids_at..).ok_or(bad)?).ok_or(bad)?;
            if parts == 0
                || part >= parts
                || order_end < deliver_from
                || usize::from(n_ordered) > ids.len()
                || first_sn.checked_add(u64::from(n_ordered)).is_none()
            {
                return Err(bad);
            }
            Ok(R::Recover {
                vid,
                deliver_from,
                order_end,
                pending_total,
                part,
                parts,
                first_sn,
                n_ordered,
                ballot,
                label,
                value_members,
                ids,
            })
        }
        KIND_ACK_RECOVER => {
            exact(4)?;
            Ok(R::AckRecover {
                vid: be_u32(body, 0).ok_or(bad)?,
            })
        }
        KIND_END_RECOVERY => {
            exact(4)?;
            Ok(R::EndRecovery {
                vid: be_u32(body, 0).ok_or(bad)?,
            })
        }
        KIND_FETCH => {
            let vid = be_u32(body, 0).ok_or(bad)?;
            let ids = IdList::new(body.get(4..).ok_or(bad)?).ok_or(bad)?;
            if ids.is_empty() {
                return Err(bad);
            }
            Ok(R::Fetch { vid, ids })
        }
        KIND_LEAVE => {
            exact(0)?;
            Ok(R::Leave)
        }
        KIND_JOIN => {
            exact(4)?;
            Ok(R::Join {
                incarnation: be_u32(body, 0).ok_or(bad)?,
            })
        }
        KIND_BW_ACK => {
            exact(4)?;
            Ok(R::BwAck {
                counter: be_u32(body, 0).ok_or(bad)?,
            })
        }
        KIND_BW_POLL => {
            exact(4)?;
            Ok(R::BwPoll {
                counter: be_u32(body, 0).ok_or(bad)?,
            })
        }
        _ => Err(Error::UnknownRecord(kind)),
    })();
    match r {
        Err(Error::UnknownRecord(_)) => None,
        other => Some(other),
    }
}

/// Body length of a total-order record (`None` for other kinds).
pub(super) const fn body_len(r: &super::RecordRepr<'_>) -> Option<usize> {
    use super::RecordRepr as R;
    Some(match r {
        R::TobData { bytes, .. } => TOB_DATA_HEADER_LEN.saturating_add(bytes.len()),
        R::TobOrder { ids, .. } => TOB_ORDER_HEADER_LEN.saturating_add(ids.0.len()),
        R::TobAck { .. } => TOB_ACK_LEN,
        R::TobNack { .. } => 20,
        R::ViewChange { members, .. } => 8usize.saturating_add(members.0.len()),
        R::ViewInstalled { members, .. } => 4usize.saturating_add(members.0.len()),
        R::Recover {
            ids, value_members, ..
        } => RECOVER_HEADER_LEN
            .saturating_add(value_members.0.len())
            .saturating_add(ids.0.len()),
        R::AckRecover { .. } | R::EndRecovery { .. } => 4,
        R::Fetch { ids, .. } => 4usize.saturating_add(ids.0.len()),
        R::Join { .. } | R::BwAck { .. } | R::BwPoll { .. } => 4,
        R::Leave => 0,
        _ => return None,
    })
}

/// Writes the body of a total-order record; false for other kinds.
pub(super) fn emit_body(r: &super::RecordRepr<'_>, body: &mut [u8]) -> bool {
    use super::RecordRepr as R;
    let mut w = Cursor { out: body, at: 0 };
    match *r {
        R::TobData {
            origin,
            counter,
            kind,
            total_len,
            offset,
            bytes,
        } => {
            w.put(&origin.to_be_bytes());
            w.put(&counter.to_be_bytes());
            w.put(&[kind]);
            w.put(&total_len.to_be_bytes());
            w.put(&offset.to_be_bytes());
            w.put(bytes);
        }
        R::TobOrder {
            view,
            first_sn,
            ids,
        } => {
            w.put(&view.to_be_bytes());
            w.put(&first_sn.to_be_bytes());
            w.put(ids.0);
        }
        R::TobAck {
            view,
            cum,
            stable,
            app,
        } => {
            w.put(&view.to_be_bytes());
            w.put(&cum.to_be_bytes());
            w.put(&stable.to_be_bytes());
            w.put(&app.to_be_bytes());
        }
        R::TobNack {
            view,
            from_sn,
            to_sn,
        } => {
            w.put(&view.to_be_bytes());
            w.put(&from_sn.to_be_bytes());
            w.put(&to_sn.to_be_bytes());
        }
        R::ViewChange { vid, base, members } => {
            w.put(&vid.to_be_bytes());
            w.put(&base.to_be_bytes());
            w.put(members.0);
        }
        R::ViewInstalled { vid, members } => {
            w.put(&vid.to_be_bytes());
            w.put(members.0);
        }
        R::Recover {
            vid,
            deliver_from,
            order_end,
            pending_total,
            part,
            parts,
            first_sn,
            n_ordered,
            ballot,
            label,
            value_members,
            ids,
        } => {
            w.put(&vid.to_be_bytes());
            w.put(&deliver_from.to_be_bytes());
            w.put(&order_end.to_be_bytes());
            w.put(&pending_total.to_be_bytes());
            w.put(&[part, parts]);
            w.put(&first_sn.to_be_bytes());
            w.put(&n_ordered.to_be_bytes());
            w.put(&ballot.to_be_bytes());
            w.put(&label.to_be_bytes());
            w.put(&[value_members.len() as u8]);
            w.put(value_members.0);
            w.put(ids.0);
        }
        R::AckRecover { vid } | R::EndRecovery { vid } => w.put(&vid.to_be_bytes()),
        R::Fetch { vid, ids } => {
            w.put(&vid.to_be_bytes());
            w.put(ids.0);
        }
        R::Join { incarnation } => w.put(&incarnation.to_be_bytes()),
        R::Leave => {}
        R::BwAck { counter } | R::BwPoll { counter } => w.put(&counter.to_be_bytes()),
        _ => return false,
    }
    true
}

/// Check that a total-order record would parse back; `None` for other kinds.
pub(super) fn check(r: &super::RecordRepr<'_>) -> Option<Result<(), Error>> {
    use super::RecordRepr as R;
    let ok = match *r {
        R::TobData {
            total_len,
            offset,
            bytes,
            ..
        } => tob_data_ok(total_len, offset, bytes.len()),
        R::TobOrder { first_sn, ids, .. } => {
            !ids.is_empty() && first_sn.checked_add(ids.len() as u64).is_some()
        }
        R::TobNack { from_sn, to_sn, .. } => from_sn < to_sn,
        R::ViewChange { members, .. } | R::ViewInstalled { members, .. } => !members.is_empty(),
        R::Recover {
            deliver_from,
            order_end,
            part,
            parts,
            first_sn,
            n_ordered,
            value_members,
            ids,
            ..
        } => {
            value_members.len() <= usize::from(u8::MAX)
                && parts > 0
                && part < parts
                && order_end >= deliver_from
                && usize::from(n_ordered) <= ids.len()
                && first_sn.checked_add(u64::from(n_ordered)).is_some()
        }
        R::Fetch { ids, .. } => !ids.is_empty(),
        R::TobAck { .. }
        | R::AckRecover { .. }
        | R::EndRecovery { .. }
        | R::Join { .. }
        | R::BwAck { .. }
        | R::BwPoll { .. }
        | R::Leave => true,
        _ => return None,
    };
    let kind = r.kind();
    Some(if ok {
        Ok(())
    } else {
        Err(Error::BadRecordBody(kind))
    })
}

struct Cursor<'b> {
    out: &'b mut [u8],
    at: usize,
}

impl Cursor<'_> {
    fn put(&mut self, src: &[u8]) {
        let end = self.at.saturating_add(src.len());
        if let Some(d) = self.out.get_mut(self.at..end) {
            d.copy_from_slice(src);
        }
        self.at = end;
    }
}
