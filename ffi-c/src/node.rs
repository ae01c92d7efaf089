//! The exported functions.
//!
//! Each one checks its pointers, converts plain C values into the core's
//! types (refusing out-of-range values with `PHASECAST_ERR_INVALID_ARGUMENT`
//! and a detail), calls the core through [`with_node`] and copies results
//! into the caller's `#[repr(C)]` structs.

use crate::guard::{
    acquire, fail, failure_of, guarded, release, with_node, Engine, Failure, Inner, Origin,
    MAGIC_DEAD, MAGIC_LIVE,
};
use crate::types::phasecast_status::{self, *};
use crate::types::*;
use core::ffi::{c_char, c_void};
use phasecast_core::counters::Counters;
use phasecast_core::feed::Class;
use phasecast_core::node::{RateLimit, Scheduling, ViewPolicy};
use phasecast_core::qsm::QsmConfig;
use phasecast_core::{
    nb, Aggregation, Config, Destination, Duration, Event, GroupId, Instant, Integrity, NodeId,
    SendOptions,
};
use std::alloc::Layout;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

// ---------------------------------------------------------------------------
// Pointer helpers
// ---------------------------------------------------------------------------

/// `(ptr, len)` as a slice; `NULL` is allowed for an empty one.
///
/// # Safety
/// A non-null `ptr` points to `len` readable bytes for the call.
unsafe fn bytes<'a>(ptr: *const u8, len: usize, what: &'static str) -> Result<&'a [u8], Failure> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(fail(PHASECAST_ERR_NULL_ARGUMENT, what));
    }
    // SAFETY: per the contract.
    Ok(unsafe { core::slice::from_raw_parts(ptr, len) })
}

/// `(ptr, len)` as a mutable slice; `NULL` is allowed for an empty one.
///
/// # Safety
/// A non-null `ptr` points to `len` writable bytes for the call.
unsafe fn bytes_mut<'a>(
    ptr: *mut u8,
    len: usize,
    what: &'static str,
) -> Result<&'a mut [u8], Failure> {
    if len == 0 {
        return Ok(&mut []);
    }
    if ptr.is_null() {
        return Err(fail(PHASECAST_ERR_NULL_ARGUMENT, what));
    }
    // SAFETY: per the contract.
    Ok(unsafe { core::slice::from_raw_parts_mut(ptr, len) })
}

/// Writes `value` through an out-pointer that must not be `NULL`.
///
/// # Safety
/// A non-null `out` points to writable memory for a `T`.
unsafe fn put<T>(out: *mut T, value: T) {
    // SAFETY: per the contract (callers check NULL first).
    unsafe { out.write(value) }
}

/// Writes through an optional out-pointer (`NULL`: not wanted).
///
/// # Safety
/// A non-null `out` points to writable memory for a `T`.
unsafe fn put_opt<T>(out: *mut T, value: T) {
    if !out.is_null() {
        // SAFETY: per the contract.
        unsafe { out.write(value) }
    }
}

fn non_null<T>(p: *const T, what: &'static str) -> Result<(), Failure> {
    if p.is_null() {
        Err(fail(PHASECAST_ERR_NULL_ARGUMENT, what))
    } else {
        Ok(())
    }
}

fn invalid(what: &'static str) -> Failure {
    fail(PHASECAST_ERR_INVALID_ARGUMENT, what)
}

fn node_id(id: u32, what: &'static str) -> Result<NodeId, Failure> {
    u16::try_from(id).map(NodeId).map_err(|_| invalid(what))
}

fn destination(d: &phasecast_destination) -> Result<Destination, Failure> {
    match d.kind {
        PHASECAST_DEST_PEER => Ok(Destination::Peer(node_id(
            d.id,
            "destination.id: peer ids are 16-bit",
        )?)),
        PHASECAST_DEST_GROUP => Ok(Destination::Group(GroupId(d.id))),
        _ => Err(invalid(
            "destination.kind: PHASECAST_DEST_PEER or PHASECAST_DEST_GROUP",
        )),
    }
}

fn c_destination(d: Destination) -> phasecast_destination {
    match d {
        Destination::Peer(p) => phasecast_destination {
            kind: PHASECAST_DEST_PEER,
            id: u32::from(p.0),
        },
        Destination::Group(g) => phasecast_destination {
            kind: PHASECAST_DEST_GROUP,
            id: g.0,
        },
    }
}

fn micros(us: u64) -> Option<Duration> {
    (us != 0).then_some(Duration::from_micros(us))
}

fn flag(v: u32, what: &'static str) -> Result<bool, Failure> {
    match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(invalid(what)),
    }
}

// ---------------------------------------------------------------------------
// Library-wide
// ---------------------------------------------------------------------------

/// The ABI version of the library (`PHASECAST_ABI_VERSION` of the header it
/// was built with). A daemon may refuse to run when it differs from the
/// header it was compiled against.
#[no_mangle]
pub extern "C" fn phasecast_abi_version() -> u32 {
    PHASECAST_ABI_VERSION
}

/// The library's version, e.g. `"0.1.0"`. Static storage; never `NULL`.
#[no_mangle]
pub extern "C" fn phasecast_version_string() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// A short English description of a status code (any value; unknown codes
/// get `"unknown status"`). Static storage; never `NULL`.
#[no_mangle]
pub extern "C" fn phasecast_status_str(status: u32) -> *const c_char {
    let s: &'static str = match status {
        0 => "ok\0",
        1 => "would block: nothing to hand out now\0",
        2 => "full: backpressure, retry after deliveries\0",
        3 => "datagram rejected (it changed nothing)\0",
        16 => "null argument\0",
        17 => "buffer too small\0",
        18 => "invalid argument\0",
        19 => "not a member\0",
        20 => "unknown group\0",
        21 => "payload larger than max_message\0",
        22 => "busy: an operation of this kind is under way\0",
        23 => "not enabled in this node's configuration\0",
        24 => "bad handle: not a live phasecast node\0",
        25 => "concurrent use of one node from two threads\0",
        26 => "memory already holds a live node\0",
        27 => "out of memory\0",
        28 => "internal error (panic); the node is poisoned\0",
        _ => "unknown status\0",
    };
    s.as_ptr().cast()
}

/// The name of a drop reason (`phasecast_counters::dropped` index, the
/// `drop_reason` of `phasecast_node_handle_datagram`), e.g. `"duplicate"`.
/// Static storage; never `NULL`.
#[no_mangle]
pub extern "C" fn phasecast_drop_reason_str(reason: u32) -> *const c_char {
    const NAMES: [&str; PHASECAST_DROP_REASONS] = [
        "malformed\0",
        "foreign cluster\0",
        "not a member\0",
        "forged sender\0",
        "own frame\0",
        "duplicate\0",
        "stale\0",
        "no buffer space\0",
        "fragment refused\0",
        "reassembly timeout\0",
        "pushed out\0",
        "ignored record\0",
        "reassembly evicted\0",
        "unsendable\0",
    ];
    NAMES
        .get(reason as usize)
        .copied()
        .unwrap_or("unknown reason\0")
        .as_ptr()
        .cast()
}

/// What this build of the library holds. Returns `PHASECAST_ERR_NULL_ARGUMENT`
/// when `out` is `NULL`.
///
/// # Safety
/// `out` is `NULL` or points to a writable `phasecast_limits`.
#[no_mangle]
pub unsafe extern "C" fn phasecast_limits_get(out: *mut phasecast_limits) -> phasecast_status {
    guarded(|| {
        non_null(out, "out")?;
        let limits = phasecast_limits {
            node_size: phasecast_node_size(),
            node_align: phasecast_node_align(),
            max_members: Engine::MAX_MEMBERS_HELD,
            min_mtu: phasecast_core::wire::MIN_MTU,
            max_mtu: PHASECAST_MAX_MTU,
            max_message: phasecast_core::wire::MAX_MESSAGE_LEN as usize,
            max_tob_window: PHASECAST_MAX_TOB_WINDOW,
            pool_bytes: Engine::POOL_BYTES,
            inbox_bytes: Engine::INBOX_BYTES,
        };
        // SAFETY: checked non-null; per the contract.
        unsafe { put(out, limits) };
        Ok(PHASECAST_OK)
    })
}

/// Capacities of the engine type, for `phasecast_limits_get`.
trait Capacities {
    const MAX_MEMBERS_HELD: usize;
    const POOL_BYTES: usize;
    const INBOX_BYTES: usize;
}

impl<
        const SINKS: usize,
        const QUEUE: usize,
        const SLOTS: usize,
        const BLOCKS: usize,
        const INBOX: usize,
        const MTU: usize,
        const GROUPS: usize,
        const RING: usize,
    > Capacities for phasecast_core::Node<SINKS, QUEUE, SLOTS, BLOCKS, INBOX, MTU, GROUPS, RING>
{
    // One sink is the whole cluster, one per member.
    const MAX_MEMBERS_HELD: usize = SINKS - 1;
    const POOL_BYTES: usize = BLOCKS * phasecast_core::pool::BLOCK_LEN;
    const INBOX_BYTES: usize = INBOX;
}

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

/// Fills `cfg` with the core's defaults for node `id` of a cluster of
/// `members` (`member_count` ids, this node's included). The member list is
/// not copied: `cfg->members` points to the caller's array, which must stay
/// valid until the node is created.
///
/// # Safety
/// `cfg` is `NULL` or points to a writable `phasecast_config`.
#[no_mangle]
pub unsafe extern "C" fn phasecast_config_init(
    cfg: *mut phasecast_config,
    id: u16,
    members: *const u16,
    member_count: usize,
) -> phasecast_status {
    guarded(|| {
        non_null(cfg, "cfg")?;
        let d = Config::new(NodeId(id), &[]);
        let c = phasecast_config {
            id,
            members,
            member_count,
            cluster: d.cluster,
            incarnation: d.incarnation,
            mtu: d.mtu,
            integrity: u32::from(d.integrity.id()),
            seed: d.seed,
            max_message: d.max_message,
            heartbeat_us: d.heartbeat.map_or(0, |h| h.as_micros()),
            reassembly_timeout_us: d.reassembly_timeout.as_micros(),
            rate_bytes_per_s: 0,
            rate_burst: 0,
            window_bytes: 0,
            scheduling: PHASECAST_SCHED_STRICT_PRIORITY,
            sched_weights: [0; PHASECAST_CLASSES],
            tob_window: d.tob_window,
            tob_rto_us: d.tob_rto.as_micros(),
            fd_timeout_us: d.fd_timeout.map_or(0, |t| t.as_micros()),
            view_policy: PHASECAST_VIEW_PRIMARY_PARTITION,
            join: 0,
            link_capacity: 0,
            aggregation: PHASECAST_AGGREGATION_OMAHA,
            aggregation_horizon_us: 0,
            tob_batch: d.tob_batch,
            qsm_partition_size: d.qsm.partition_size,
            qsm_ranges: d.qsm.ranges,
            qsm_token_period_us: d.qsm.token_period.as_micros(),
            qsm_replication: d.qsm.replication,
            qsm_window: d.qsm.window,
            qsm_requests_per_visit: d.qsm.requests_per_visit,
            qsm_suspect_after: d.qsm.suspect_after,
            qsm_suspect_min_us: d.qsm.suspect_min.as_micros(),
        };
        // SAFETY: checked non-null; per the contract.
        unsafe { put(cfg, c) };
        Ok(PHASECAST_OK)
    })
}

/// The member list of a C configuration, copied.
///
/// # Safety
/// `c.members` is `NULL` or points to `c.member_count` readable ids.
unsafe fn members_of(c: &phasecast_config) -> Result<Vec<NodeId>, Failure> {
    if c.member_count == 0 {
        return Err(invalid("member_count: at least this node"));
    }
    if c.member_count > PHASECAST_MAX_MEMBERS {
        return Err(invalid("member_count: more than PHASECAST_MAX_MEMBERS"));
    }
    non_null(c.members, "members")?;
    // SAFETY: non-null, `member_count` ids per the contract.
    let ids = unsafe { core::slice::from_raw_parts(c.members, c.member_count) };
    Ok(ids.iter().copied().map(NodeId).collect())
}

/// The core configuration of a C one (its `members` field is set by the caller).
fn core_config<'a>(c: &phasecast_config, members: &'a [NodeId]) -> Result<Config<'a>, Failure> {
    let integrity = u8::try_from(c.integrity)
        .ok()
        .and_then(Integrity::from_id)
        .ok_or_else(|| invalid("integrity: one of PHASECAST_INTEGRITY_*"))?;
    let scheduling = match c.scheduling {
        PHASECAST_SCHED_STRICT_PRIORITY => Scheduling::StrictPriority,
        PHASECAST_SCHED_DRR => Scheduling::Drr {
            quanta: c.sched_weights,
        },
        PHASECAST_SCHED_WRR => Scheduling::Wrr {
            weights: c.sched_weights,
        },
        _ => return Err(invalid("scheduling: one of PHASECAST_SCHED_*")),
    };
    let view_policy = match c.view_policy {
        PHASECAST_VIEW_PRIMARY_PARTITION => ViewPolicy::PrimaryPartition,
        PHASECAST_VIEW_TRUST_DETECTOR => ViewPolicy::TrustDetector,
        _ => return Err(invalid("view_policy: one of PHASECAST_VIEW_*")),
    };
    if c.tob_window == 0 || c.tob_window > PHASECAST_MAX_TOB_WINDOW {
        return Err(invalid("tob_window: 1 ..= PHASECAST_MAX_TOB_WINDOW"));
    }
    if c.tob_rto_us == 0 {
        return Err(invalid("tob_rto_us: must be > 0"));
    }
    if c.reassembly_timeout_us == 0 {
        return Err(invalid("reassembly_timeout_us: must be > 0"));
    }
    if c.rate_bytes_per_s == 0 && c.rate_burst != 0 {
        return Err(invalid("rate_burst without rate_bytes_per_s"));
    }
    // Field by field over the core's defaults: fields the core adds later
    // keep their defaults until the C configuration grows them.
    let mut cfg = Config::new(NodeId(c.id), members);
    cfg.cluster = c.cluster;
    cfg.incarnation = c.incarnation;
    cfg.mtu = c.mtu;
    cfg.integrity = integrity;
    cfg.seed = c.seed;
    cfg.max_message = c.max_message;
    cfg.heartbeat = micros(c.heartbeat_us);
    cfg.reassembly_timeout = Duration::from_micros(c.reassembly_timeout_us);
    cfg.rate = (c.rate_bytes_per_s != 0).then_some(RateLimit {
        bytes_per_s: c.rate_bytes_per_s,
        burst: c.rate_burst,
    });
    cfg.window = (c.window_bytes != 0).then_some(c.window_bytes);
    cfg.scheduling = scheduling;
    cfg.tob_window = c.tob_window;
    cfg.tob_rto = Duration::from_micros(c.tob_rto_us);
    cfg.fd_timeout = micros(c.fd_timeout_us);
    cfg.view_policy = view_policy;
    cfg.join = flag(c.join, "join: 0 or 1")?;
    cfg.link_capacity = (c.link_capacity != 0).then_some(c.link_capacity);
    cfg.aggregation = match c.aggregation {
        PHASECAST_AGGREGATION_NONE => Aggregation::None,
        PHASECAST_AGGREGATION_TIME_BASED => Aggregation::TimeBased,
        PHASECAST_AGGREGATION_OMAHA => Aggregation::Omaha,
        PHASECAST_AGGREGATION_HORIZON => Aggregation::Horizon {
            horizon: Duration::from_micros(c.aggregation_horizon_us),
        },
        PHASECAST_AGGREGATION_CRITICALITY => Aggregation::Criticality,
        _ => return Err(invalid("aggregation: one of PHASECAST_AGGREGATION_*")),
    };
    cfg.tob_batch = c.tob_batch;
    cfg.qsm = QsmConfig {
        partition_size: c.qsm_partition_size,
        ranges: c.qsm_ranges,
        token_period: Duration::from_micros(c.qsm_token_period_us),
        replication: c.qsm_replication,
        window: c.qsm_window,
        requests_per_visit: c.qsm_requests_per_visit,
        suspect_after: c.qsm_suspect_after,
        suspect_min: Duration::from_micros(c.qsm_suspect_min_us),
    };
    Ok(cfg)
}

/// Send options of a C struct (`None`: defaults).
fn send_options(o: Option<&phasecast_send_options>) -> Result<SendOptions, Failure> {
    let Some(o) = o else {
        return Ok(SendOptions::default());
    };
    let class = Class::ALL
        .get(o.priority_class as usize)
        .copied()
        .ok_or_else(|| invalid("priority_class: one of PHASECAST_CLASS_*"))?;
    // Field by field over the defaults: options the core adds later keep
    // their defaults until the C struct grows them.
    #[allow(clippy::field_reassign_with_default)]
    {
        let mut opts = SendOptions::default();
        opts.class = class;
        opts.droppable = flag(o.droppable, "droppable: 0 or 1")?;
        opts.value = o.value;
        if !(0.0..=1.0).contains(&o.proba_buf) {
            return Err(invalid("proba_buf: 0.0 ..= 1.0"));
        }
        opts.proba_buf = o.proba_buf;
        opts.timeout = Duration::from_micros(o.timeout_us);
        opts.app = o.app;
        opts.critical = flag(o.critical, "critical: 0 or 1")?;
        Ok(opts)
    }
}

/// Fills `opts` with the defaults: data class, not droppable, value 0.
///
/// # Safety
/// `opts` is `NULL` or points to a writable `phasecast_send_options`.
#[no_mangle]
pub unsafe extern "C" fn phasecast_send_options_init(
    opts: *mut phasecast_send_options,
) -> phasecast_status {
    guarded(|| {
        non_null(opts, "opts")?;
        let d = SendOptions::default();
        let o = phasecast_send_options {
            priority_class: d.class.index() as u32,
            droppable: u32::from(d.droppable),
            value: d.value,
            proba_buf: d.proba_buf,
            timeout_us: d.timeout.as_micros(),
            app: d.app,
            critical: u32::from(d.critical),
        };
        // SAFETY: checked non-null; per the contract.
        unsafe { put(opts, o) };
        Ok(PHASECAST_OK)
    })
}

// ---------------------------------------------------------------------------
// Life cycle
// ---------------------------------------------------------------------------

/// Bytes of caller memory `phasecast_node_init` needs (about 2.3 MiB).
#[no_mangle]
pub extern "C" fn phasecast_node_size() -> usize {
    core::mem::size_of::<crate::guard::phasecast_node>()
}

/// Alignment `phasecast_node_init` needs of the caller's memory.
#[no_mangle]
pub extern "C" fn phasecast_node_align() -> usize {
    core::mem::align_of::<crate::guard::phasecast_node>()
}

/// A raw destination the helper thread may write to.
struct Slot(*mut crate::guard::phasecast_node);
// SAFETY: the pointer is used by exactly one thread at a time (the helper,
// while the caller waits for it in `join`).
unsafe impl Send for Slot {}

/// Stack of the helper thread that builds a node: room for several copies
/// of the engine (unoptimised builds move it between temporaries).
const BUILD_STACK: usize = 8 * core::mem::size_of::<Engine>() + (1 << 20);

/// Builds a node into `dst` on a helper thread with a stack large enough for
/// the engine (see the crate docs). On success `dst` holds a live node.
///
/// # Safety
/// `dst` points to `phasecast_node_size()` writable bytes aligned to
/// `phasecast_node_align()`, not holding a live node.
unsafe fn build_into(
    dst: *mut crate::guard::phasecast_node,
    c: &phasecast_config,
    now_us: u64,
    origin: Origin,
) -> Result<(), Failure> {
    // SAFETY: forwarded contract.
    let members = unsafe { members_of(c) }?;
    let cfg = core_config(c, &members)?;
    let slot = Slot(dst);
    let built = std::thread::scope(|s| {
        let job = std::thread::Builder::new()
            .name("phasecast-build".into())
            .stack_size(BUILD_STACK)
            .spawn_scoped(s, move || -> Result<(), phasecast_core::Error> {
                let slot = slot;
                let engine = Engine::new(&cfg, Instant::from_micros(now_us))?;
                let node = crate::guard::phasecast_node {
                    magic: AtomicU64::new(MAGIC_LIVE),
                    busy: AtomicU32::new(0),
                    inner: Inner {
                        origin,
                        poisoned: false,
                        tob_rto: cfg.tob_rto.as_micros(),
                        last_tick: now_us,
                        engine,
                    },
                };
                // SAFETY: per the contract of `build_into`.
                unsafe { slot.0.write(node) };
                Ok(())
            })
            .map_err(|e| {
                fail(
                    PHASECAST_ERR_NO_MEMORY,
                    format!("cannot start the thread that builds the node: {e}"),
                )
            })?;
        job.join().map_err(|_| {
            fail(
                PHASECAST_ERR_PANIC,
                "internal error (panic) while building the node",
            )
        })
    })?;
    built.map_err(failure_of)
}

/// Creates a node in memory the library allocates, at time `now_us`, and
/// writes its handle to `*out`. `cfg` and its member list are read during
/// the call only. Release the node with `phasecast_node_destroy`.
///
/// The node is built on a short-lived helper thread with a large stack (it
/// is about 2.3 MiB and is never placed on the caller's stack), joined
/// before this returns.
///
/// Errors: `PHASECAST_ERR_NULL_ARGUMENT`, `PHASECAST_ERR_INVALID_ARGUMENT`
/// (see `phasecast_last_error_detail()`), `PHASECAST_ERR_NO_MEMORY`.
///
/// # Safety
/// `cfg` is `NULL` or points to a readable `phasecast_config` whose
/// `members` points to `member_count` ids; `out` is `NULL` or writable.
#[no_mangle]
pub unsafe extern "C" fn phasecast_node_create(
    cfg: *const phasecast_config,
    now_us: u64,
    out: *mut *mut crate::guard::phasecast_node,
) -> phasecast_status {
    guarded(|| {
        non_null(cfg, "cfg")?;
        non_null(out, "out")?;
        // SAFETY: non-null, readable per the contract.
        let c = unsafe { *cfg };
        let layout = Layout::new::<crate::guard::phasecast_node>();
        // SAFETY: the layout has a non-zero size.
        let mem = unsafe { std::alloc::alloc(layout) }.cast::<crate::guard::phasecast_node>();
        if mem.is_null() {
            return Err(fail(PHASECAST_ERR_NO_MEMORY, "cannot allocate a node"));
        }
        // SAFETY: fresh allocation of the node's layout.
        match unsafe { build_into(mem, &c, now_us, Origin::Heap) } {
            Ok(()) => {
                // SAFETY: checked non-null; per the contract.
                unsafe { put(out, mem) };
                Ok(PHASECAST_OK)
            }
            Err(f) => {
                // SAFETY: allocated above with this layout, never initialised.
                unsafe { std::alloc::dealloc(mem.cast(), layout) };
                Err(f)
            }
        }
    })
}

/// Destroys a node made by `phasecast_node_create`, frees its memory and
/// sets `*node` to `NULL` (a second destroy through the same variable then
/// returns `PHASECAST_ERR_NULL_ARGUMENT`). Event payloads handed out by the
/// node become invalid. Returns `PHASECAST_ERR_BAD_HANDLE` for a node made by
/// `phasecast_node_init` (use `phasecast_node_fini`).
///
/// # Safety
/// `node` is `NULL` or points to a `phasecast_node *` that is `NULL` or was
/// returned by `phasecast_node_create` and not destroyed through a copy.
#[no_mangle]
pub unsafe extern "C" fn phasecast_node_destroy(
    node: *mut *mut crate::guard::phasecast_node,
) -> phasecast_status {
    guarded(|| {
        non_null(node, "node")?;
        // SAFETY: non-null, readable per the contract.
        let n = unsafe { *node };
        // SAFETY: per the contract.
        unsafe { acquire(n) }?;
        // SAFETY: acquired: exclusive.
        let origin = unsafe { (*n).inner.origin };
        if origin != Origin::Heap {
            // SAFETY: acquired above.
            unsafe { release(n) };
            return Err(fail(
                PHASECAST_ERR_BAD_HANDLE,
                "node was made by phasecast_node_init: use phasecast_node_fini",
            ));
        }
        // SAFETY: live, exclusive, allocated by `create` with this layout.
        unsafe {
            (*n).magic.store(MAGIC_DEAD, Ordering::Release);
            core::ptr::drop_in_place(n);
            std::alloc::dealloc(n.cast(), Layout::new::<crate::guard::phasecast_node>());
            put(node, core::ptr::null_mut());
        }
        Ok(PHASECAST_OK)
    })
}

/// Builds a node in caller-provided memory `mem` of `len` bytes (at least
/// `phasecast_node_size()`, aligned to `phasecast_node_align()`) and writes
/// the handle (equal to `mem`) to `*out`. The memory stays the caller's: it
/// must outlive the node and not be touched until `phasecast_node_fini`.
///
/// Memory that already holds a live node is refused with
/// `PHASECAST_ERR_ALREADY_INITIALIZED` (recognised by a 64-bit magic word;
/// uninitialised memory matches it with probability 2^-64).
/// Errors: `PHASECAST_ERR_NULL_ARGUMENT`, `PHASECAST_ERR_BUFFER_TOO_SMALL`
/// (`*needed` = the size), `PHASECAST_ERR_INVALID_ARGUMENT` (misaligned,
/// bad configuration), `PHASECAST_ERR_NO_MEMORY` (the helper thread).
///
/// # Safety
/// `mem` is `NULL` or points to `len` writable bytes; `cfg` as for
/// `phasecast_node_create`; `needed` and `out` are `NULL` or writable.
#[no_mangle]
pub unsafe extern "C" fn phasecast_node_init(
    mem: *mut c_void,
    len: usize,
    cfg: *const phasecast_config,
    now_us: u64,
    needed: *mut usize,
    out: *mut *mut crate::guard::phasecast_node,
) -> phasecast_status {
    guarded(|| {
        non_null(mem, "mem")?;
        non_null(cfg, "cfg")?;
        non_null(out, "out")?;
        if len < phasecast_node_size() {
            // SAFETY: per the contract.
            unsafe { put_opt(needed, phasecast_node_size()) };
            return Err(fail(
                PHASECAST_ERR_BUFFER_TOO_SMALL,
                format!("mem: {} bytes needed", phasecast_node_size()),
            ));
        }
        let dst = mem.cast::<crate::guard::phasecast_node>();
        if !(dst as usize).is_multiple_of(phasecast_node_align()) {
            return Err(invalid("mem: not aligned to phasecast_node_align()"));
        }
        // SAFETY: aligned, writable, at least the header's size.
        let magic = unsafe {
            core::ptr::addr_of!((*dst).magic)
                .cast::<u64>()
                .read_volatile()
        };
        if magic == MAGIC_LIVE {
            return Err(fail(
                PHASECAST_ERR_ALREADY_INITIALIZED,
                "mem holds a live node: phasecast_node_fini it first",
            ));
        }
        // SAFETY: non-null, readable per the contract.
        let c = unsafe { *cfg };
        // SAFETY: checked size and alignment; not a live node.
        unsafe { build_into(dst, &c, now_us, Origin::Caller) }?;
        // SAFETY: per the contract.
        unsafe { put(out, dst) };
        Ok(PHASECAST_OK)
    })
}

/// Finalises a node made by `phasecast_node_init`: it is no longer live
/// (later calls with the handle return `PHASECAST_ERR_BAD_HANDLE`) and its
/// memory is the caller's again. Returns `PHASECAST_ERR_BAD_HANDLE` for a
/// node made by `phasecast_node_create`.
///
/// # Safety
/// `node` is `NULL` or points to memory that held a node (readable header).
#[no_mangle]
pub unsafe extern "C" fn phasecast_node_fini(
    node: *mut crate::guard::phasecast_node,
) -> phasecast_status {
    guarded(|| {
        // SAFETY: per the contract.
        unsafe { acquire(node) }?;
        // SAFETY: acquired: exclusive.
        let origin = unsafe { (*node).inner.origin };
        if origin != Origin::Caller {
            // SAFETY: acquired above.
            unsafe { release(node) };
            return Err(fail(
                PHASECAST_ERR_BAD_HANDLE,
                "node was made by phasecast_node_create: use phasecast_node_destroy",
            ));
        }
        // SAFETY: live and exclusive; the magic and flag stay readable after.
        unsafe {
            (*node).magic.store(MAGIC_DEAD, Ordering::Release);
            core::ptr::drop_in_place(core::ptr::addr_of_mut!((*node).inner));
            release(node);
        }
        Ok(PHASECAST_OK)
    })
}

// ---------------------------------------------------------------------------
// Host side
// ---------------------------------------------------------------------------

/// Hands the node a datagram received at `now_us` from the host whose node
/// id is `from` (the daemon maps the source address to it). The bytes are
/// verified and decoded **in place** (the buffer is modified) and not kept.
///
/// Returns `PHASECAST_OK` when accepted, `PHASECAST_DATAGRAM_REJECTED` when
/// refused (it changed nothing; `*drop_reason`, if not `NULL`, gets the
/// reason: see `phasecast_drop_reason_str`). Afterwards drain
/// `phasecast_node_poll_event` and `phasecast_node_poll_transmit`.
///
/// # Safety
/// `node` as returned by create/init; `bytes` is `NULL` (with `len` 0) or
/// points to `len` writable bytes; `drop_reason` is `NULL` or writable.
#[no_mangle]
pub unsafe extern "C" fn phasecast_node_handle_datagram(
    node: *mut crate::guard::phasecast_node,
    now_us: u64,
    from: u16,
    bytes: *mut u8,
    len: usize,
    drop_reason: *mut u32,
) -> phasecast_status {
    // SAFETY: forwarded contract.
    unsafe {
        with_node(node, |n| {
            let datagram = bytes_mut(bytes, len, "bytes")?;
            match n
                .engine
                .handle_datagram(Instant::from_micros(now_us), NodeId(from), datagram)
            {
                Ok(()) => Ok(PHASECAST_OK),
                Err(reason) => {
                    put_opt(drop_reason, reason as u32);
                    Ok(PHASECAST_DATAGRAM_REJECTED)
                }
            }
        })
    }
}

/// Fires every alarm due at `now_us`. Call it when the deadline of
/// `phasecast_node_next_timeout` has passed (calling it early is harmless).
///
/// # Safety
/// `node` as returned by create/init.
#[no_mangle]
pub unsafe extern "C" fn phasecast_node_handle_timeout(
    node: *mut crate::guard::phasecast_node,
    now_us: u64,
) -> phasecast_status {
    // SAFETY: forwarded contract.
    unsafe {
        with_node(node, |n| {
            n.engine.handle_timeout(Instant::from_micros(now_us));
            n.last_tick = n.last_tick.max(now_us);
            Ok(PHASECAST_OK)
        })
    }
}

/// Writes to `*deadline_us` when `phasecast_node_handle_timeout` must be
/// called next (`PHASECAST_NEVER` when no alarm is set). Sleep in `poll()`
/// until then or until a datagram arrives. Never later than the last
/// `handle_timeout` plus `tob_rto_us` (the total order's tick; see the
/// library notes).
///
/// # Safety
/// `node` as returned by create/init; `deadline_us` is `NULL` or writable.
#[no_mangle]
pub unsafe extern "C" fn phasecast_node_next_timeout(
    node: *mut crate::guard::phasecast_node,
    deadline_us: *mut u64,
) -> phasecast_status {
    // SAFETY: forwarded contract.
    unsafe {
        with_node(node, |n| {
            non_null(deadline_us, "deadline_us")?;
            let core = n
                .engine
                .poll_timeout()
                .map_or(PHASECAST_NEVER, |t| t.as_micros());
            let tick = n.last_tick.saturating_add(n.tob_rto);
            put(deadline_us, core.min(tick));
            Ok(PHASECAST_OK)
        })
    }
}

/// Writes the next datagram to send into `buf` (`cap` bytes, at least the
/// node's MTU) and its length and destination into `*out`. Returns
/// `PHASECAST_WOULD_BLOCK` when nothing may leave now (call again after
/// handle_datagram, handle_timeout or an application call), and
/// `PHASECAST_ERR_BUFFER_TOO_SMALL` with `out->len` = the MTU when `cap` is
/// smaller (`buf` may be `NULL` with `cap` 0 to ask). Call it in a loop
/// until `PHASECAST_WOULD_BLOCK`; the node aggregates what waits for one
/// destination into one datagram.
///
/// # Safety
/// `node` as returned by create/init; `buf` is `NULL` (with `cap` 0) or
/// points to `cap` writable bytes; `out` is `NULL` or writable.
#[no_mangle]
pub unsafe extern "C" fn phasecast_node_poll_transmit(
    node: *mut crate::guard::phasecast_node,
    now_us: u64,
    buf: *mut u8,
    cap: usize,
    out: *mut phasecast_transmit,
) -> phasecast_status {
    // SAFETY: forwarded contract.
    unsafe {
        with_node(node, |n| {
            non_null(out, "out")?;
            let mtu = n.engine.mtu();
            if cap < mtu {
                put(
                    out,
                    phasecast_transmit {
                        len: mtu,
                        destination: phasecast_destination::default(),
                    },
                );
                return Err(fail(
                    PHASECAST_ERR_BUFFER_TOO_SMALL,
                    format!("buf: the MTU, {mtu} bytes, is needed"),
                ));
            }
            let buf = bytes_mut(buf, cap, "buf")?;
            match n.engine.poll_transmit(Instant::from_micros(now_us), buf) {
                Ok(tx) => {
                    put(
                        out,
                        phasecast_transmit {
                            len: tx.len,
                            destination: c_destination(tx.destination),
                        },
                    );
                    Ok(PHASECAST_OK)
                }
                Err(nb::Error::WouldBlock) => Ok(PHASECAST_WOULD_BLOCK),
                Err(nb::Error::Other(e)) => Err(failure_of(e)),
            }
        })
    }
}

/// Writes the next event into `*out`, or returns `PHASECAST_WOULD_BLOCK`
/// when none waits. A payload pointer in the event points into the node and
/// stays valid until the next `phasecast_node_poll_event` on this node (or
/// its destruction); other calls do not invalidate it. Drain events after
/// every handle_datagram / handle_timeout: undrained events hold inbox space
/// and stall deliveries.
///
/// # Safety
/// `node` as returned by create/init; `out` is `NULL` or writable.
#[no_mangle]
pub unsafe extern "C" fn phasecast_node_poll_event(
    node: *mut crate::guard::phasecast_node,
    out: *mut phasecast_event,
) -> phasecast_status {
    // SAFETY: forwarded contract.
    unsafe {
        with_node(node, |n| {
            non_null(out, "out")?;
            let me = n.engine.id();
            let Some(ev) = n.engine.poll_event() else {
                return Ok(PHASECAST_WOULD_BLOCK);
            };
            put(out, c_event(me, ev));
            Ok(PHASECAST_OK)
        })
    }
}

/// The C form of a total-order message id.
fn c_msg_id(m: phasecast_core::MsgId) -> phasecast_msg_id {
    phasecast_msg_id {
        sender: m.sender.0,
        counter: m.counter,
    }
}

fn c_event(me: NodeId, ev: Event<'_>) -> phasecast_event {
    use phasecast_event_kind::*;
    match ev {
        Event::Delivered {
            sn,
            sender,
            payload,
        } => phasecast_event {
            kind: PHASECAST_EVENT_DELIVERED,
            data: phasecast_event_data {
                delivered: phasecast_delivered {
                    sn,
                    sender: sender.0,
                    payload: payload.as_ptr(),
                    payload_len: payload.len(),
                },
            },
        },
        Event::GroupDelivered {
            group,
            sender,
            seq,
            payload,
        } => phasecast_event {
            kind: PHASECAST_EVENT_GROUP_DELIVERED,
            data: phasecast_event_data {
                group_delivered: phasecast_group_delivered {
                    group: group.0,
                    sender: sender.0,
                    seq,
                    payload: payload.as_ptr(),
                    payload_len: payload.len(),
                },
            },
        },
        Event::Received {
            from,
            group,
            msg,
            payload,
        } => phasecast_event {
            kind: PHASECAST_EVENT_RECEIVED,
            data: phasecast_event_data {
                received: phasecast_received {
                    from: from.0,
                    to: c_destination(group.map_or(Destination::Peer(me), Destination::Group)),
                    msg,
                    payload: payload.as_ptr(),
                    payload_len: payload.len(),
                },
            },
        },
        Event::ViewChanged { view_id, members } => {
            let mut view = phasecast_view {
                view_id,
                ..Default::default()
            };
            for (slot, m) in view.members.iter_mut().zip(members.iter()) {
                *slot = m;
                view.member_count += 1;
            }
            phasecast_event {
                kind: PHASECAST_EVENT_VIEW_CHANGED,
                data: phasecast_event_data { view },
            }
        }
        Event::Suspected { node } => phasecast_event {
            kind: PHASECAST_EVENT_SUSPECTED,
            data: phasecast_event_data {
                suspected: phasecast_suspected { node: node.0 },
            },
        },
        Event::Excluded => phasecast_event {
            kind: PHASECAST_EVENT_EXCLUDED,
            data: phasecast_event_data {
                bandwidth: phasecast_bandwidth { current: 0 },
            },
        },
        Event::BandwidthChanged { current } => phasecast_event {
            kind: PHASECAST_EVENT_BANDWIDTH_CHANGED,
            data: phasecast_event_data {
                bandwidth: phasecast_bandwidth { current },
            },
        },
        _ => phasecast_event {
            kind: PHASECAST_EVENT_UNSUPPORTED,
            data: phasecast_event_data {
                bandwidth: phasecast_bandwidth { current: 0 },
            },
        },
    }
}

// ---------------------------------------------------------------------------
// Application side
// ---------------------------------------------------------------------------

/// Uniform total order broadcast: `payload` (`len` bytes, copied) will be
/// delivered by every correct member in the same order, as
/// `PHASECAST_EVENT_DELIVERED` (this node included). `*id` (if not `NULL`)
/// gets its id. `PHASECAST_FULL` when this node already has `tob_window`
/// undelivered broadcasts or storage is full (retry after deliveries);
/// `PHASECAST_ERR_OVERSIZED`; `PHASECAST_ERR_NOT_MEMBER` once excluded.
///
/// # Safety
/// `node` as returned by create/init; `payload` is `NULL` (with `len` 0) or
/// points to `len` readable bytes; `id` is `NULL` or writable.
#[no_mangle]
pub unsafe extern "C" fn phasecast_node_broadcast(
    node: *mut crate::guard::phasecast_node,
    now_us: u64,
    payload: *const u8,
    len: usize,
    id: *mut phasecast_msg_id,
) -> phasecast_status {
    // SAFETY: forwarded contract.
    unsafe {
        with_node(node, |n| {
            let p = bytes(payload, len, "payload")?;
            let m = n
                .engine
                .broadcast(Instant::from_micros(now_us), p)
                .map_err(failure_of)?;
            put_opt(id, c_msg_id(m));
            Ok(PHASECAST_OK)
        })
    }
}

/// Sends `payload` (copied) point to point (`PHASECAST_DEST_PEER`) or to a
/// group (`PHASECAST_DEST_GROUP`; today only `PHASECAST_GROUP_ALL`). Best
/// effort and unordered at this layer: it arrives as
/// `PHASECAST_EVENT_RECEIVED`. `opts` may be `NULL` (defaults). `*msg` (if
/// not `NULL`) gets the message id. `PHASECAST_FULL` is backpressure;
/// `PHASECAST_ERR_NOT_MEMBER` (unknown peer or this node),
/// `PHASECAST_ERR_UNKNOWN_GROUP`, `PHASECAST_ERR_OVERSIZED`.
///
/// # Safety
/// `node` as returned by create/init; `payload` is `NULL` (with `len` 0) or
/// points to `len` readable bytes; `opts` is `NULL` or readable; `msg` is
/// `NULL` or writable.
#[no_mangle]
pub unsafe extern "C" fn phasecast_node_send(
    node: *mut crate::guard::phasecast_node,
    now_us: u64,
    destination: phasecast_destination,
    payload: *const u8,
    len: usize,
    opts: *const phasecast_send_options,
    msg: *mut u32,
) -> phasecast_status {
    // SAFETY: forwarded contract.
    unsafe {
        with_node(node, |n| {
            let dest = self::destination(&destination)?;
            let p = bytes(payload, len, "payload")?;
            let o = send_options(opts.as_ref())?;
            let m = n
                .engine
                .send(Instant::from_micros(now_us), dest, p, o)
                .map_err(failure_of)?;
            put_opt(msg, m);
            Ok(PHASECAST_OK)
        })
    }
}

/// The peer ids of a C array (`NULL` only with `n` 0).
///
/// # Safety
/// `ids` is `NULL` or points to `n` readable `uint16_t`.
unsafe fn peer_ids(ids: *const u16, n: usize) -> Result<Vec<NodeId>, Failure> {
    if n == 0 {
        return Ok(Vec::new());
    }
    non_null(ids, "dests")?;
    if n > 4096 {
        return Err(invalid("n_dests: at most 4096"));
    }
    // SAFETY: non-null and `n` readable entries per the contract.
    let ids = unsafe { std::slice::from_raw_parts(ids, n) };
    Ok(ids.iter().map(|&i| NodeId(i)).collect())
}

/// Omaha's overloaded `send(msg, dests, probaBuf, t, app)`: one message
/// (`payload`, copied) to the `n_dests` peers of `dests`, each copy through
/// its destination's pledge buffer (`opts` carries `proba_buf`,
/// `timeout_us`, `app`; `NULL`: defaults, sent at once). Every copy has the
/// same message id (`*msg` if not `NULL`). Errors change nothing:
/// `PHASECAST_FULL`, `PHASECAST_ERR_NOT_MEMBER` (an unknown id or this
/// node), `PHASECAST_ERR_OVERSIZED`, `PHASECAST_ERR_INVALID_ARGUMENT`.
///
/// # Safety
/// `node` as returned by create/init; `dests` points to `n_dests` readable
/// ids (or is `NULL` with 0); `payload` as for `phasecast_node_send`; `opts`
/// `NULL` or readable; `msg` `NULL` or writable.
#[no_mangle]
pub unsafe extern "C" fn phasecast_node_send_to(
    node: *mut crate::guard::phasecast_node,
    now_us: u64,
    dests: *const u16,
    n_dests: usize,
    payload: *const u8,
    len: usize,
    opts: *const phasecast_send_options,
    msg: *mut u32,
) -> phasecast_status {
    // SAFETY: forwarded contract.
    unsafe {
        with_node(node, |n| {
            let d = peer_ids(dests, n_dests)?;
            let p = bytes(payload, len, "payload")?;
            let o = send_options(opts.as_ref())?;
            let m = n
                .engine
                .send_to(Instant::from_micros(now_us), &d, p, o)
                .map_err(failure_of)?;
            put_opt(msg, m);
            Ok(PHASECAST_OK)
        })
    }
}

/// Omaha's `beginPledge(app, futureDests)`: application `app` promises to
/// send to these peers soon (when its quorum wait ends), so other
/// applications' messages to them may wait for that datagram. Replaces
/// `app`'s previous pledge. `PHASECAST_ERR_NOT_MEMBER` for an unknown id or
/// this node (nothing changes).
///
/// # Safety
/// `node` as returned by create/init; `dests` points to `n_dests` readable
/// ids (or is `NULL` with 0).
#[no_mangle]
pub unsafe extern "C" fn phasecast_node_begin_pledge(
    node: *mut crate::guard::phasecast_node,
    now_us: u64,
    app: u16,
    dests: *const u16,
    n_dests: usize,
) -> phasecast_status {
    // SAFETY: forwarded contract.
    unsafe {
        with_node(node, |n| {
            let d = peer_ids(dests, n_dests)?;
            n.engine
                .begin_pledge(Instant::from_micros(now_us), app, &d)
                .map_err(failure_of)?;
            Ok(PHASECAST_OK)
        })
    }
}

/// Omaha's `pledgedSend(msg, dests, probaBuf, t, app)`: ends `opts->app`'s
/// pledge, then sends like `phasecast_node_send_to`. On error nothing
/// changes, the pledge included. `opts` must not be `NULL` (it names the
/// application).
///
/// # Safety
/// As `phasecast_node_send_to`, with `opts` readable.
#[no_mangle]
pub unsafe extern "C" fn phasecast_node_pledged_send(
    node: *mut crate::guard::phasecast_node,
    now_us: u64,
    dests: *const u16,
    n_dests: usize,
    payload: *const u8,
    len: usize,
    opts: *const phasecast_send_options,
    msg: *mut u32,
) -> phasecast_status {
    // SAFETY: forwarded contract.
    unsafe {
        with_node(node, |n| {
            non_null(opts, "opts")?;
            let d = peer_ids(dests, n_dests)?;
            let p = bytes(payload, len, "payload")?;
            let o = send_options(opts.as_ref())?;
            let m = n
                .engine
                .pledged_send(Instant::from_micros(now_us), &d, p, o)
                .map_err(failure_of)?;
            put_opt(msg, m);
            Ok(PHASECAST_OK)
        })
    }
}

/// Ends `app`'s pledge without sending (its wait was abandoned). `*had` (if
/// not `NULL`) is 1 when it held one.
///
/// # Safety
/// `node` as returned by create/init; `had` `NULL` or writable.
#[no_mangle]
pub unsafe extern "C" fn phasecast_node_end_pledge(
    node: *mut crate::guard::phasecast_node,
    now_us: u64,
    app: u16,
    had: *mut u32,
) -> phasecast_status {
    // SAFETY: forwarded contract.
    unsafe {
        with_node(node, |n| {
            let h = n.engine.end_pledge(Instant::from_micros(now_us), app);
            put_opt(had, u32::from(h));
            Ok(PHASECAST_OK)
        })
    }
}

/// Installs a group-membership view from the daemon's configuration
/// service (QSM's CMS): `regions` (nodes with identical membership, each with
/// its multicast address) and `groups` (sorted by id; each names the regions
/// it spans). `epoch` must grow from view to view. A new view flushes the
/// old one: streams of regions that keep their address carry over, so the
/// old view's messages still reach every member that stays, in order,
/// before the new view's. Epoch 1 is the system's initial view (every
/// stream starts at 1); a node whose first view has a later epoch, or that
/// joins a region, joins its streams mid-way. A refused view
/// (`PHASECAST_ERR_INVALID_ARGUMENT`, the detail says why) changes nothing.
/// The arrays are read during the call only.
///
/// # Safety
/// `node` as returned by create/init; `regions` points to `n_regions`
/// readable entries whose `members` point to `member_count` ids (or is
/// `NULL` with 0); `groups` likewise.
#[no_mangle]
pub unsafe extern "C" fn phasecast_node_install_groups(
    node: *mut crate::guard::phasecast_node,
    now_us: u64,
    epoch: u32,
    regions: *const phasecast_region,
    n_regions: usize,
    groups: *const phasecast_group,
    n_groups: usize,
) -> phasecast_status {
    // SAFETY: forwarded contract.
    unsafe {
        with_node(node, |n| {
            if n_regions > 8 {
                return Err(invalid("n_regions: at most 8 (regions is a u8 mask)"));
            }
            if n_groups > 1 << 20 {
                return Err(invalid("n_groups: too many"));
            }
            let rs: &[phasecast_region] = if n_regions == 0 {
                &[]
            } else {
                non_null(regions, "regions")?;
                std::slice::from_raw_parts(regions, n_regions)
            };
            let gs: &[phasecast_group] = if n_groups == 0 {
                &[]
            } else {
                non_null(groups, "groups")?;
                std::slice::from_raw_parts(groups, n_groups)
            };
            let mut members: Vec<Vec<NodeId>> = Vec::with_capacity(rs.len());
            for r in rs {
                members.push(peer_ids(r.members, r.member_count)?);
            }
            let views: Vec<phasecast_core::qsm::RegionView<'_>> = rs
                .iter()
                .zip(&members)
                .map(|(r, m)| phasecast_core::qsm::RegionView {
                    address: GroupId(r.address),
                    members: m,
                })
                .collect();
            let groups: Vec<phasecast_core::qsm::GroupView> = gs
                .iter()
                .map(|g| phasecast_core::qsm::GroupView {
                    group: GroupId(g.group),
                    regions: g.regions,
                })
                .collect();
            n.engine
                .install_groups(Instant::from_micros(now_us), epoch, &views, &groups)
                .map_err(failure_of)?;
            Ok(PHASECAST_OK)
        })
    }
}

/// Multicasts `payload` (copied) to `group` (QSM): one copy per region the
/// group spans, per-sender FIFO and reliable at every live member, which
/// gets `PHASECAST_EVENT_GROUP_DELIVERED`. `*seq` (if not `NULL`) gets the
/// per-group sequence number. `PHASECAST_FULL` is the sender's flow control
/// (too much unacknowledged); `PHASECAST_ERR_UNKNOWN_GROUP`;
/// `PHASECAST_ERR_OVERSIZED` above one datagram.
///
/// # Safety
/// `node` as returned by create/init; `payload` `NULL` (with `len` 0) or
/// `len` readable bytes; `seq` `NULL` or writable.
#[no_mangle]
pub unsafe extern "C" fn phasecast_node_multicast(
    node: *mut crate::guard::phasecast_node,
    now_us: u64,
    group: u32,
    payload: *const u8,
    len: usize,
    seq: *mut u32,
) -> phasecast_status {
    // SAFETY: forwarded contract.
    unsafe {
        with_node(node, |n| {
            let p = bytes(payload, len, "payload")?;
            let s = n
                .engine
                .multicast(Instant::from_micros(now_us), GroupId(group), p)
                .map_err(failure_of)?;
            put_opt(seq, s);
            Ok(PHASECAST_OK)
        })
    }
}

/// Failure-detector input: the daemon suspects member `member` crashed. A
/// view change without it follows. `PHASECAST_ERR_NOT_MEMBER` for an unknown
/// id or this node.
///
/// # Safety
/// `node` as returned by create/init.
#[no_mangle]
pub unsafe extern "C" fn phasecast_node_suspect(
    node: *mut crate::guard::phasecast_node,
    now_us: u64,
    member: u16,
) -> phasecast_status {
    // SAFETY: forwarded contract.
    unsafe {
        with_node(node, |n| {
            n.engine
                .suspect(Instant::from_micros(now_us), NodeId(member))
                .map_err(failure_of)?;
            Ok(PHASECAST_OK)
        })
    }
}

fn bandwidth_enabled(n: &Inner) -> Result<(), Failure> {
    if n.engine.current_bw().is_none() {
        return Err(fail(
            PHASECAST_ERR_NOT_ENABLED,
            "bandwidth allocation is off: set link_capacity",
        ));
    }
    Ok(())
}

/// FastCast `increase_BW(amount)`: asks, through the total order, to send
/// `amount` bytes/s more; the rate rises once every member acknowledged
/// (`PHASECAST_EVENT_BANDWIDTH_CHANGED`). `PHASECAST_ERR_BUSY` while an
/// increase is under way, `PHASECAST_ERR_NOT_ENABLED` without
/// `link_capacity`, `PHASECAST_ERR_INVALID_ARGUMENT` for 0, `PHASECAST_FULL`.
///
/// # Safety
/// `node` as returned by create/init; `id` is `NULL` or writable.
#[no_mangle]
pub unsafe extern "C" fn phasecast_node_increase_bw(
    node: *mut crate::guard::phasecast_node,
    now_us: u64,
    amount: u64,
    id: *mut phasecast_msg_id,
) -> phasecast_status {
    // SAFETY: forwarded contract.
    unsafe {
        with_node(node, |n| {
            bandwidth_enabled(n)?;
            let m = n
                .engine
                .increase_bw(Instant::from_micros(now_us), amount)
                .map_err(failure_of)?;
            put_opt(id, c_msg_id(m));
            Ok(PHASECAST_OK)
        })
    }
}

/// FastCast `decrease_BW(amount)`: lowers this node's rate at once (capped
/// at what it holds) and tells the others through the total order. Errors
/// as `phasecast_node_increase_bw`.
///
/// # Safety
/// `node` as returned by create/init; `id` is `NULL` or writable.
#[no_mangle]
pub unsafe extern "C" fn phasecast_node_decrease_bw(
    node: *mut crate::guard::phasecast_node,
    now_us: u64,
    amount: u64,
    id: *mut phasecast_msg_id,
) -> phasecast_status {
    // SAFETY: forwarded contract.
    unsafe {
        with_node(node, |n| {
            bandwidth_enabled(n)?;
            let m = n
                .engine
                .decrease_bw(Instant::from_micros(now_us), amount)
                .map_err(failure_of)?;
            put_opt(id, c_msg_id(m));
            Ok(PHASECAST_OK)
        })
    }
}

/// Writes this node's allocated rate (bytes/s) to `*bytes_per_s`.
/// `PHASECAST_ERR_NOT_ENABLED` without `link_capacity`.
///
/// # Safety
/// `node` as returned by create/init; `bytes_per_s` is `NULL` or writable.
#[no_mangle]
pub unsafe extern "C" fn phasecast_node_current_bw(
    node: *mut crate::guard::phasecast_node,
    bytes_per_s: *mut u64,
) -> phasecast_status {
    // SAFETY: forwarded contract.
    unsafe {
        with_node(node, |n| {
            non_null(bytes_per_s, "bytes_per_s")?;
            bandwidth_enabled(n)?;
            put(bytes_per_s, n.engine.current_bw().unwrap_or(0));
            Ok(PHASECAST_OK)
        })
    }
}

fn c_counters(c: &Counters) -> phasecast_counters {
    phasecast_counters {
        frames_sent: c.frames_sent,
        bytes_sent: c.bytes_sent,
        records_sent: c.records_sent,
        sent_because: c.sent_because,
        frames_received: c.frames_received,
        bytes_received: c.bytes_received,
        records_received: c.records_received,
        dropped: c.dropped,
        malformed: c.malformed,
        retransmissions: c.retransmissions,
        messages_accepted: c.messages_accepted,
        refused_full: c.refused_full,
        messages_buffered: c.messages_buffered,
        messages_delivered: c.messages_delivered,
        queue_high_water: c.queue_high_water,
        pool_high_water: c.pool_high_water,
        tob_stalls: c.tob_stalls,
        view_changes_started: c.view_changes_started,
        view_changes: c.view_changes,
        view_blocked: c.view_blocked,
    }
}

/// Copies the node's counters into `*out`.
///
/// # Safety
/// `node` as returned by create/init; `out` is `NULL` or writable.
#[no_mangle]
pub unsafe extern "C" fn phasecast_node_counters(
    node: *mut crate::guard::phasecast_node,
    out: *mut phasecast_counters,
) -> phasecast_status {
    // SAFETY: forwarded contract.
    unsafe {
        with_node(node, |n| {
            non_null(out, "out")?;
            put(out, c_counters(n.engine.counters()));
            Ok(PHASECAST_OK)
        })
    }
}

/// Copies the current view (id and members in order, the sequencer first)
/// into `*out`.
///
/// # Safety
/// `node` as returned by create/init; `out` is `NULL` or writable.
#[no_mangle]
pub unsafe extern "C" fn phasecast_node_view(
    node: *mut crate::guard::phasecast_node,
    out: *mut phasecast_view,
) -> phasecast_status {
    // SAFETY: forwarded contract.
    unsafe {
        with_node(node, |n| {
            non_null(out, "out")?;
            let (view_id, members) = n.engine.view();
            let mut v = phasecast_view {
                view_id,
                ..Default::default()
            };
            for (slot, m) in v.members.iter_mut().zip(members) {
                *slot = m.0;
                v.member_count += 1;
            }
            put(out, v);
            Ok(PHASECAST_OK)
        })
    }
}

/// Progress of the total order: view, sequencer, whether a view change is
/// under way, the next sequence number to deliver, this node's undelivered
/// broadcasts.
///
/// # Safety
/// `node` as returned by create/init; `out` is `NULL` or writable.
#[no_mangle]
pub unsafe extern "C" fn phasecast_node_tob_status(
    node: *mut crate::guard::phasecast_node,
    out: *mut phasecast_tob_status,
) -> phasecast_status {
    // SAFETY: forwarded contract.
    unsafe {
        with_node(node, |n| {
            non_null(out, "out")?;
            let s = n.engine.tob_status();
            put(
                out,
                phasecast_tob_status {
                    view_id: s.view_id,
                    sequencer: s.sequencer.0,
                    recovering: u32::from(s.recovering),
                    next_deliver: s.next_deliver,
                    outstanding: s.outstanding,
                },
            );
            Ok(PHASECAST_OK)
        })
    }
}

/// Writes the node's MTU (the buffer size `phasecast_node_poll_transmit`
/// needs) to `*mtu`.
///
/// # Safety
/// `node` as returned by create/init; `mtu` is `NULL` or writable.
#[no_mangle]
pub unsafe extern "C" fn phasecast_node_mtu(
    node: *mut crate::guard::phasecast_node,
    mtu: *mut usize,
) -> phasecast_status {
    // SAFETY: forwarded contract.
    unsafe {
        with_node(node, |n| {
            non_null(mtu, "mtu")?;
            put(mtu, n.engine.mtu());
            Ok(PHASECAST_OK)
        })
    }
}

#[cfg(test)]
mod tests;
