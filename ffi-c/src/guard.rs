//! The boundary: handle checks, exclusivity, `catch_unwind`, status mapping
//! and the per-thread error detail.
//!
//! Every exported function funnels through `guarded` (no node) or
//! `with_node` (a node), so the rules of the crate documentation hold in
//! one place: no panic unwinds into C, a handle is checked (magic word,
//! alignment) before it is used, two overlapping calls on one node are
//! refused instead of racing, and a node that panicked stays poisoned.

use crate::types::phasecast_status::{self, *};
use core::ffi::c_char;
use phasecast_core::{Error, HostNode};
use std::borrow::Cow;
use std::cell::RefCell;
use std::ffi::CString;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// The engine the C library wraps (see the crate docs for the sizes).
pub(crate) type Engine = HostNode;

/// "PHASECST": the first word of a live node.
pub(crate) const MAGIC_LIVE: u64 = 0x5048_4153_4543_5354;
/// Written by `fini`/`destroy`: a node that was and is no more.
pub(crate) const MAGIC_DEAD: u64 = 0x6465_6164_6e6f_6465;

/// Who owns a node's memory.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Origin {
    /// `phasecast_node_create`: the library's heap; `destroy` frees it.
    Heap,
    /// `phasecast_node_init`: the caller's memory; `fini` leaves it.
    Caller,
}

/// What a call may touch once it holds the node exclusively.
pub(crate) struct Inner {
    pub(crate) origin: Origin,
    pub(crate) poisoned: bool,
    /// Total order retransmission period, µs (the timer workaround).
    pub(crate) tob_rto: u64,
    /// Time of the last `handle_timeout` (or of creation), µs.
    pub(crate) last_tick: u64,
    pub(crate) engine: Engine,
}

/// An opaque node: made by `phasecast_node_create` (freed by
/// `phasecast_node_destroy`) or by `phasecast_node_init` in caller memory
/// (finalised by `phasecast_node_fini`). Only ever used through a pointer.
// Layout: a magic word and a busy flag, read through shared references
// only; the rest (`Inner`) is borrowed mutably only while the flag is held.
pub struct phasecast_node {
    pub(crate) magic: AtomicU64,
    pub(crate) busy: AtomicU32,
    pub(crate) inner: Inner,
}

/// A refusal: the status and, for the error detail, why.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) status: phasecast_status,
    pub(crate) detail: Cow<'static, str>,
}

pub(crate) type Outcome = Result<phasecast_status, Failure>;

/// A refusal with a detail text.
pub(crate) fn fail(status: phasecast_status, detail: impl Into<Cow<'static, str>>) -> Failure {
    Failure {
        status,
        detail: detail.into(),
    }
}

/// The status of a core error (the detail names it for the error string).
pub fn status_of(e: Error) -> phasecast_status {
    failure_of(e).status
}

pub(crate) fn failure_of(e: Error) -> Failure {
    match e {
        Error::Full => fail(PHASECAST_FULL, "full: retry after deliveries"),
        Error::Oversized => fail(PHASECAST_ERR_OVERSIZED, "payload larger than max_message"),
        Error::NotMember => fail(PHASECAST_ERR_NOT_MEMBER, "not a member of the view"),
        Error::UnknownGroup => fail(PHASECAST_ERR_UNKNOWN_GROUP, "unknown group"),
        Error::BufferTooSmall { needed } => fail(
            PHASECAST_ERR_BUFFER_TOO_SMALL,
            format!("buffer too small: {needed} bytes needed"),
        ),
        Error::InvalidConfig(what) => fail(PHASECAST_ERR_INVALID_ARGUMENT, what),
        Error::Busy => fail(PHASECAST_ERR_BUSY, "a bandwidth increase is under way"),
        // The core's error is non-exhaustive: a newer variant is still an
        // argument the caller can act on, and the detail names it.
        other => fail(PHASECAST_ERR_INVALID_ARGUMENT, format!("{other:?}")),
    }
}

thread_local! {
    static DETAIL: RefCell<CString> = RefCell::new(CString::default());
}

fn set_detail(text: &str) {
    let c = CString::new(text.replace('\0', " ")).unwrap_or_default();
    // A thread being torn down has no detail to keep: ignore.
    let _ = DETAIL.try_with(|d| *d.borrow_mut() = c);
}

/// Turns an outcome into the status C sees, recording the detail of a failure.
fn finish(outcome: Outcome) -> phasecast_status {
    match outcome {
        Ok(s) => s,
        Err(f) => {
            set_detail(&f.detail);
            f.status
        }
    }
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    let msg = p
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    format!("internal error (panic): {msg}")
}

/// Runs a call that takes no node, catching panics.
pub(crate) fn guarded(f: impl FnOnce() -> Outcome) -> phasecast_status {
    let outcome = catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|p| Err(fail(PHASECAST_ERR_PANIC, panic_text(&*p))));
    finish(outcome)
}

/// Checks a handle and takes its busy flag. On success the caller owns the
/// node until [`release`].
///
/// # Safety
/// `node` is `NULL` or points to at least the header of a `phasecast_node`
/// (readable memory the size of the magic word and busy flag).
pub(crate) unsafe fn acquire(node: *mut phasecast_node) -> Result<(), Failure> {
    if node.is_null() {
        return Err(fail(PHASECAST_ERR_NULL_ARGUMENT, "node is NULL"));
    }
    if !(node as usize).is_multiple_of(core::mem::align_of::<phasecast_node>()) {
        return Err(fail(PHASECAST_ERR_BAD_HANDLE, "node pointer misaligned"));
    }
    // SAFETY: non-null, aligned, readable per the contract; an atomic has no
    // invalid bit patterns, and only shared references to the header exist.
    let header = unsafe { &*node };
    match header.magic.load(Ordering::Acquire) {
        MAGIC_LIVE => {}
        MAGIC_DEAD => {
            return Err(fail(
                PHASECAST_ERR_BAD_HANDLE,
                "node was destroyed or finalised",
            ))
        }
        _ => return Err(fail(PHASECAST_ERR_BAD_HANDLE, "not a phasecast node")),
    }
    if header
        .busy
        .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        return Err(fail(
            PHASECAST_ERR_CONCURRENT_USE,
            "another call on this node is under way",
        ));
    }
    Ok(())
}

/// Gives the busy flag back.
///
/// # Safety
/// The caller holds the flag of this live node (a successful [`acquire`]).
pub(crate) unsafe fn release(node: *mut phasecast_node) {
    // SAFETY: per the contract the node is live.
    unsafe { (*node).busy.store(0, Ordering::Release) };
}

/// Runs `f` on the node's state: handle checked, exclusive, not poisoned,
/// panics caught (a panic poisons the node).
///
/// # Safety
/// `node` is `NULL` or a pointer the library returned (see [`acquire`]).
pub(crate) unsafe fn with_node(
    node: *mut phasecast_node,
    f: impl FnOnce(&mut Inner) -> Outcome,
) -> phasecast_status {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: forwarded contract.
        unsafe { acquire(node) }?;
        // SAFETY: the busy flag gives this call the only access to `inner`;
        // the header is never borrowed mutably.
        let inner = unsafe { &mut *core::ptr::addr_of_mut!((*node).inner) };
        let out = if inner.poisoned {
            Err(fail(
                PHASECAST_ERR_PANIC,
                "node poisoned by an earlier internal error",
            ))
        } else {
            match catch_unwind(AssertUnwindSafe(|| f(inner))) {
                Ok(o) => o,
                Err(p) => {
                    // SAFETY: as above; the closure's borrow ended with the unwind.
                    unsafe { (*node).inner.poisoned = true };
                    Err(fail(PHASECAST_ERR_PANIC, panic_text(&*p)))
                }
            }
        };
        // SAFETY: acquired above.
        unsafe { release(node) };
        out
    }))
    .unwrap_or_else(|p| Err(fail(PHASECAST_ERR_PANIC, panic_text(&*p))));
    finish(outcome)
}

/// The detail of the last failing call on the calling thread: which
/// argument or configuration field was wrong, what the core said. An empty
/// string when no call failed yet. Never `NULL`; the text belongs to the
/// library and stays valid until the next failing call on this thread.
#[no_mangle]
pub extern "C" fn phasecast_last_error_detail() -> *const c_char {
    static EMPTY: &[u8] = b"\0";
    catch_unwind(|| {
        DETAIL
            .try_with(|d| d.borrow().as_ptr())
            .unwrap_or(EMPTY.as_ptr().cast())
    })
    .unwrap_or(EMPTY.as_ptr().cast())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn detail_is_per_thread_and_kept_until_the_next_failure() {
        let s = guarded(|| Err(fail(PHASECAST_ERR_INVALID_ARGUMENT, "mtu")));
        assert_eq!(s, PHASECAST_ERR_INVALID_ARGUMENT);
        let d = unsafe { CStr::from_ptr(phasecast_last_error_detail()) };
        assert_eq!(d.to_str().unwrap(), "mtu");
        assert_eq!(guarded(|| Ok(PHASECAST_OK)), PHASECAST_OK);
        let d = unsafe { CStr::from_ptr(phasecast_last_error_detail()) };
        assert_eq!(d.to_str().unwrap(), "mtu", "success keeps the detail");
        std::thread::spawn(|| {
            let d = unsafe { CStr::from_ptr(phasecast_last_error_detail()) };
            assert_eq!(d.to_str().unwrap(), "", "another thread has its own");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_panic_becomes_a_status() {
        let s = guarded(|| panic!("boom"));
        assert_eq!(s, PHASECAST_ERR_PANIC);
        let d = unsafe { CStr::from_ptr(phasecast_last_error_detail()) };
        assert!(d.to_str().unwrap().contains("boom"));
    }

    #[test]
    fn core_errors_map_to_their_statuses() {
        assert_eq!(status_of(Error::Full), PHASECAST_FULL);
        assert_eq!(status_of(Error::Oversized), PHASECAST_ERR_OVERSIZED);
        assert_eq!(status_of(Error::NotMember), PHASECAST_ERR_NOT_MEMBER);
        assert_eq!(status_of(Error::UnknownGroup), PHASECAST_ERR_UNKNOWN_GROUP);
        assert_eq!(
            status_of(Error::BufferTooSmall { needed: 9 }),
            PHASECAST_ERR_BUFFER_TOO_SMALL
        );
        assert_eq!(
            status_of(Error::InvalidConfig("x")),
            PHASECAST_ERR_INVALID_ARGUMENT
        );
        assert_eq!(status_of(Error::Busy), PHASECAST_ERR_BUSY);
    }
}
