//! Declarative queues, buffers and ports (BASEL §3–§6).
//!
//! BASEL describes a buffering architecture with three objects and a handful
//! of comparators, not with hand-written algorithms:
//!
//! - a [`Queue`] (§4.2) holds packets ordered twice: by `procPrio` (the
//!   head-of-line packet, `getHOL()`, is the highest) and by `admPrio` (on
//!   congestion the *lowest* is dropped). `congestion()` says when it holds
//!   too much;
//! - a [`Buffer`] (§4.4) lets several queues share one space; on buffer
//!   congestion `queuePrio` picks the queue to push out from (LQD: the
//!   longest), whose own `admPrio` picks the packet;
//! - a [`Port`] (§4.3) schedules its queues: `schedPrio` compares queues by
//!   their HOL packet and state, `getBestQueue()` returns the winner, and
//!   `postSchedAct()` updates each queue's `weightSched` afterwards (this is
//!   how round robins are declared).
//!
//! Policies are values: [`PacketOrder`], [`QueueOrder`] and [`SchedPolicy`]
//! implementations passed at construction (§4: "all programming decisions
//! have to be made at the declaration"). Ready ones are [`Fifo`], [`Lifo`],
//! [`Srpt`], [`RSrpt`], [`ByValue`], [`Edf`]; [`Lqd`]; [`StrictPriority`],
//! [`Mqf`], [`Lqf`], [`RoundRobin::drr`] and [`RoundRobin::wrr`]. Whole queue
//! declarations: [`QueueSpec::fifo`], [`QueueSpec::srpt`],
//! [`QueueSpec::by_value`].
//!
//! # Admission (§6) and the project's droppable rule
//!
//! BASEL "always virtually admits an incoming packet" and then "drops the
//! least valuable packets until congestion is lifted". phasecast keeps that
//! rule with three decisions of its own:
//!
//! 1. **Accepted data is never lost silently.** Push-out may evict only
//!    packets whose [`PacketMeta::droppable`] is set. When the packet that
//!    admission order would evict is not droppable, the *newcomer* is refused
//!    instead ([`Refusal::NotDroppable`]) and the caller reports `Full` to the
//!    application: push-out turns into backpressure. Evicted packets are
//!    returned to the caller ([`Admission::AdmittedPushedOut`]) so it can
//!    free and count them.
//! 2. **All or nothing.** The eviction plan is worked out first (victims are
//!    taken out of the admission order only tentatively). If it ends with the
//!    newcomer itself being dropped, nothing is evicted: the paper's literal
//!    reading would drop some packets and then the newcomer too, losing data
//!    for no gain.
//! 3. **Bounded work.** At most [`MAX_PUSHOUT`] packets are pushed out for one
//!    newcomer; a newcomer that would need more is refused
//!    ([`Refusal::PushOutLimit`]).
//!
//! # Orders and ties
//!
//! A [`PacketOrder`] answers "does `a` have strictly higher priority than
//! `b`?". When neither is higher, the earlier `(arrival, insertion counter)`
//! wins (the later one for [`Lifo`]), so every order is total and runs replay
//! exactly. For `admPrio`, "higher" means "more worth keeping": the victim is
//! the lowest packet.
//!
//! The paper's Table 1 declares its optimal single-queue policy as
//! `admPrio = rsrpt`, `procPrio = srpt`: process the least remaining work
//! first and push out the packet with the *most* remaining work \[20\]. Our
//! copy of the paper lacks the code of `rsrpt()`, so [`RSrpt`] is defined by
//! that effect: as an admission order it keeps packets with less work, so its
//! lowest packet (the victim) is the one with the most work.
//!
//! Packet metadata comes from the caller's classification (§4.1); nothing in
//! it is trusted for memory safety: sizes are summed in `u64` and every
//! limit check saturates.

use crate::heap::IndexedHeap;
use crate::time::{Duration, Instant};

/// Most packets one enqueue may push out (decision 3 above).
pub const MAX_PUSHOUT: usize = 8;

/// The BASEL packet (§4.1): the parameters a classifier prepends to every
/// packet. phasecast adds `class` (strict-priority level) and `droppable`
/// (may this packet be pushed out?).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PacketMeta {
    /// Arrival time (mandatory in BASEL).
    pub arrival: Instant,
    /// Size in bytes (mandatory in BASEL); counted against byte limits.
    pub size: u32,
    /// Intrinsic value, application-specific; greater is more valuable.
    pub value: u32,
    /// Processing requirement ("work", virtual cycles) remaining.
    pub work: u32,
    /// Latest offset from `arrival` at which the packet must be sent.
    pub slack: Option<Duration>,
    /// Strict-priority class; greater is more urgent.
    pub class: u8,
    /// May be pushed out by a more valuable newcomer. When false the packet,
    /// once admitted, leaves only through dequeue.
    pub droppable: bool,
}

impl PacketMeta {
    /// Metadata with the mandatory fields; value, work and class 0, no
    /// slack, not droppable (the safe default: nothing admitted is lost).
    pub const fn new(arrival: Instant, size: u32) -> Self {
        PacketMeta {
            arrival,
            size,
            value: 0,
            work: 0,
            slack: None,
            class: 0,
            droppable: false,
        }
    }

    /// `arrival + slack`, or [`Instant::MAX`] without slack.
    pub fn deadline(&self) -> Instant {
        match self.slack {
            Some(s) => self.arrival + s,
            None => Instant::MAX,
        }
    }
}

/// A packet comparator (BASEL `procPrio` / `admPrio`).
pub trait PacketOrder {
    /// True only if `a` has strictly higher priority than `b`.
    fn higher(&self, a: &PacketMeta, b: &PacketMeta) -> bool;
    /// Tie rule: when neither packet is higher, the one that arrived (then
    /// was inserted) *later* wins if this returns true, earlier otherwise.
    fn newest_first_on_ties(&self) -> bool {
        false
    }
}

impl<O: PacketOrder + ?Sized> PacketOrder for &O {
    fn higher(&self, a: &PacketMeta, b: &PacketMeta) -> bool {
        (**self).higher(a, b)
    }
    fn newest_first_on_ties(&self) -> bool {
        (**self).newest_first_on_ties()
    }
}

impl PacketOrder for fn(&PacketMeta, &PacketMeta) -> bool {
    fn higher(&self, a: &PacketMeta, b: &PacketMeta) -> bool {
        self(a, b)
    }
}

/// BASEL `fifo()`: earlier arrival first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Fifo;
impl PacketOrder for Fifo {
    fn higher(&self, a: &PacketMeta, b: &PacketMeta) -> bool {
        a.arrival < b.arrival
    }
}

/// Later arrival first; ties go to the later insertion too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Lifo;
impl PacketOrder for Lifo {
    fn higher(&self, a: &PacketMeta, b: &PacketMeta) -> bool {
        a.arrival > b.arrival
    }
    fn newest_first_on_ties(&self) -> bool {
        true
    }
}

/// BASEL `srpt()`: shortest remaining processing (`work`) first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Srpt;
impl PacketOrder for Srpt {
    fn higher(&self, a: &PacketMeta, b: &PacketMeta) -> bool {
        a.work < b.work
    }
}

/// BASEL `rsrpt()`, the admission order of Table 1's optimal row: keeps
/// packets with less remaining work, so the victim is the packet with the
/// most work (see the module docs for why this is its definition).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RSrpt;
impl PacketOrder for RSrpt {
    fn higher(&self, a: &PacketMeta, b: &PacketMeta) -> bool {
        a.work < b.work
    }
}

/// Strict priority on `class`, then on intrinsic `value` (greater first).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ByValue;
impl PacketOrder for ByValue {
    fn higher(&self, a: &PacketMeta, b: &PacketMeta) -> bool {
        (a.class, a.value) > (b.class, b.value)
    }
}

/// Earliest deadline (`arrival + slack`, §4.1) first; no slack is latest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Edf;
impl PacketOrder for Edf {
    fn higher(&self, a: &PacketMeta, b: &PacketMeta) -> bool {
        a.deadline() < b.deadline()
    }
}

/// A queue's occupancy as seen by congestion predicates and `queuePrio`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct QueueLoad {
    /// The queue's index in its buffer or port (0 for a lone queue).
    pub index: usize,
    /// Packets (BASEL `currSize`).
    pub len: usize,
    /// Bytes.
    pub bytes: u64,
}

/// A congestion predicate (BASEL `congestion()`): the default is "more
/// packets than `max_packets` or more bytes than `max_bytes`", optionally
/// or-ed with a custom predicate on `(packets, bytes)`.
///
/// A queue is also always congested above its physical capacity `N`.
/// (No `PartialEq`: function pointers do not compare meaningfully.)
#[derive(Clone, Copy, Debug)]
pub struct Congestion {
    /// Packet limit (BASEL `size`).
    pub max_packets: usize,
    /// Optional byte limit.
    pub max_bytes: Option<u64>,
    /// Extra condition, e.g. an occupancy-dependent early drop.
    pub predicate: Option<fn(usize, u64) -> bool>,
}

impl Congestion {
    /// No limit except physical capacity.
    pub const fn unlimited() -> Self {
        Congestion {
            max_packets: usize::MAX,
            max_bytes: None,
            predicate: None,
        }
    }
    /// At most `n` packets.
    pub const fn packets(n: usize) -> Self {
        Congestion {
            max_packets: n,
            max_bytes: None,
            predicate: None,
        }
    }
    /// This limit plus at most `bytes` bytes.
    pub const fn with_bytes(self, bytes: u64) -> Self {
        Congestion {
            max_bytes: Some(bytes),
            ..self
        }
    }
    /// Whether a load of `len` packets and `bytes` bytes is congested.
    pub fn congested(&self, len: usize, bytes: u64) -> bool {
        len > self.max_packets
            || self.max_bytes.is_some_and(|m| bytes > m)
            || self.predicate.is_some_and(|p| p(len, bytes))
    }
}

/// A queue declaration (BASEL §4.2): `procPrio`, `admPrio`, `congestion()`.
#[derive(Clone, Copy, Debug)]
pub struct QueueSpec<P, A> {
    /// Processing order; the HOL packet is the highest.
    pub proc_prio: P,
    /// Admission order; the push-out victim is the lowest.
    pub adm_prio: A,
    /// When the queue holds too much.
    pub congestion: Congestion,
}

impl<P: PacketOrder, A: PacketOrder> QueueSpec<P, A> {
    /// A queue with the given orders and congestion predicate.
    pub const fn new(proc_prio: P, adm_prio: A, congestion: Congestion) -> Self {
        QueueSpec {
            proc_prio,
            adm_prio,
            congestion,
        }
    }
}

impl QueueSpec<Fifo, Fifo> {
    /// FIFO / tail drop — Table 1 row 1, `admPrio = procPrio = fifo()`:
    /// process in arrival order; the newest packet is the least valuable, so
    /// a congested queue refuses the newcomer.
    pub const fn fifo(congestion: Congestion) -> Self {
        QueueSpec::new(Fifo, Fifo, congestion)
    }
}

impl QueueSpec<Srpt, RSrpt> {
    /// SRPT with push-out — Table 1's optimal row, `admPrio = rsrpt()`,
    /// `procPrio = srpt()`: process least work first; on congestion push out
    /// the (droppable) packet with the most work.
    pub const fn srpt(congestion: Congestion) -> Self {
        QueueSpec::new(Srpt, RSrpt, congestion)
    }
}

impl QueueSpec<ByValue, ByValue> {
    /// Strict priority inside one queue — `procPrio = admPrio =` class, then
    /// value: serve the most urgent first, push out the least valuable.
    pub const fn by_value(congestion: Congestion) -> Self {
        QueueSpec::new(ByValue, ByValue, congestion)
    }
}

/// A packet pushed out to make room, handed back to its owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Victim<T> {
    /// Index of the queue it was in (0 for a lone [`Queue`]).
    pub queue: usize,
    /// Its metadata.
    pub meta: PacketMeta,
    /// The caller's item.
    pub item: T,
}

/// The packets pushed out by one admission, in eviction order.
pub type Victims<T> = heapless::Vec<Victim<T>, MAX_PUSHOUT>;

/// Why a newcomer was refused. Nothing in the queue changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Refusal {
    /// The newcomer is the least valuable packet (by `admPrio`), or it alone
    /// congests the queue.
    LeastValuable,
    /// The packet admission order would push out is not droppable
    /// (backpressure: report `Full`).
    NotDroppable,
    /// More than [`MAX_PUSHOUT`] packets would have to go.
    PushOutLimit,
    /// The destination queue index does not exist.
    NoSuchQueue,
}

/// Outcome of an enqueue (BASEL admission, §6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission<T> {
    /// Stored; nothing else changed.
    Admitted,
    /// Stored after pushing out these (droppable) packets.
    AdmittedPushedOut(Victims<T>),
    /// Not stored; the item is handed back.
    Refused(T, Refusal),
}

impl<T> Admission<T> {
    /// True when the newcomer was stored.
    pub fn is_admitted(&self) -> bool {
        !matches!(self, Admission::Refused(..))
    }
}

#[derive(Clone, Copy, Debug)]
struct Entry<T> {
    meta: PacketMeta,
    seq: u64,
    item: T,
}

/// True when `a` ranks strictly before `b` under `o`, ties resolved by
/// `(arrival, insertion counter)`. A total order on distinct entries.
fn before<O: PacketOrder, T>(o: &O, a: &Entry<T>, b: &Entry<T>) -> bool {
    if o.higher(&a.meta, &b.meta) {
        return true;
    }
    if o.higher(&b.meta, &a.meta) {
        return false;
    }
    let ka = (a.meta.arrival, a.seq);
    let kb = (b.meta.arrival, b.seq);
    if o.newest_first_on_ties() {
        ka > kb
    } else {
        ka < kb
    }
}

fn entry<T>(slots: &[Option<Entry<T>>], s: u16) -> Option<&Entry<T>> {
    slots.get(usize::from(s)).and_then(Option::as_ref)
}

/// Heap comparator: HOL (highest `procPrio`) at the top.
fn proc_less<'a, T, O: PacketOrder>(
    slots: &'a [Option<Entry<T>>],
    o: &'a O,
) -> impl Fn(u16, u16) -> bool + 'a {
    move |a, b| match (entry(slots, a), entry(slots, b)) {
        (Some(x), Some(y)) => before(o, x, y),
        _ => false,
    }
}

/// Heap comparator: victim (lowest `admPrio`) at the top.
fn adm_less<'a, T, O: PacketOrder>(
    slots: &'a [Option<Entry<T>>],
    o: &'a O,
) -> impl Fn(u16, u16) -> bool + 'a {
    move |a, b| match (entry(slots, a), entry(slots, b)) {
        (Some(x), Some(y)) => before(o, y, x),
        _ => false,
    }
}

/// A BASEL queue (§4.2) of at most `N` packets with caller items `T`.
///
/// Two [`IndexedHeap`]s index one copy of the packets (§6): one in
/// processing order, one in admission order. Every operation is O(log N).
#[derive(Clone, Debug)]
pub struct Queue<T: Copy, const N: usize, P: PacketOrder = Fifo, A: PacketOrder = Fifo> {
    slots: [Option<Entry<T>>; N],
    /// Stack of free slot indices, `free[..free_len]`.
    free: [u16; N],
    free_len: usize,
    proc_heap: IndexedHeap<N>,
    adm_heap: IndexedHeap<N>,
    spec: QueueSpec<P, A>,
    bytes: u64,
    high_water: usize,
    next_seq: u64,
    /// Packets tentatively taken out of the admission order while an
    /// admission is being planned (always 0 between public calls).
    staged_len: usize,
    staged_bytes: u64,
}

impl<T: Copy, const N: usize, P: PacketOrder, A: PacketOrder> Queue<T, N, P, A> {
    /// An empty queue declared by `spec`.
    pub fn new(spec: QueueSpec<P, A>) -> Self {
        Queue {
            slots: [None; N],
            // Pop order 0, 1, 2, ... keeps slot use deterministic.
            free: core::array::from_fn(|i| (N - 1 - i) as u16),
            free_len: N,
            proc_heap: IndexedHeap::new(),
            adm_heap: IndexedHeap::new(),
            spec,
            bytes: 0,
            high_water: 0,
            next_seq: 0,
            staged_len: 0,
            staged_bytes: 0,
        }
    }

    /// Offers a packet (BASEL admission, §6; see the module docs for the
    /// droppable rule). O(log N) per pushed-out packet.
    pub fn enqueue(&mut self, meta: PacketMeta, item: T) -> Admission<T> {
        admit(
            core::slice::from_mut(self),
            0,
            meta,
            item,
            None::<&Shared<Lqd>>,
        )
    }

    /// Removes and returns the HOL packet (BASEL `getHOL()`). O(log N).
    pub fn dequeue_hol(&mut self) -> Option<(PacketMeta, T)> {
        let s = self
            .proc_heap
            .pop(proc_less(&self.slots, &self.spec.proc_prio))?;
        let _ = self
            .adm_heap
            .remove(s, adm_less(&self.slots, &self.spec.adm_prio));
        self.take(s)
    }

    /// The HOL packet without removing it. O(1).
    pub fn peek_hol(&self) -> Option<(&PacketMeta, &T)> {
        let e = entry(&self.slots, self.proc_heap.peek()?)?;
        Some((&e.meta, &e.item))
    }

    /// The packet admission order would push out first, if any. O(1).
    pub fn peek_victim(&self) -> Option<(&PacketMeta, &T)> {
        let e = entry(&self.slots, self.adm_heap.peek()?)?;
        Some((&e.meta, &e.item))
    }

    /// Packets held (BASEL `currSize`).
    pub fn len(&self) -> usize {
        N - self.free_len
    }

    /// True when no packet is held.
    pub fn is_empty(&self) -> bool {
        self.free_len == N
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Physical capacity `N` in packets.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Most packets ever held at once.
    pub fn high_water(&self) -> usize {
        self.high_water
    }

    /// BASEL `congestion()` evaluated on the current contents. Admission
    /// never leaves a queue congested, so with a load-only predicate this is
    /// false between calls; it is the building block for hosts that want to
    /// signal congestion (BASEL `postAdmAct`) before it happens.
    pub fn congestion(&self) -> bool {
        self.congested_at(self.len(), self.bytes)
    }

    /// Whether offering `meta` now would congest the queue, i.e. whether
    /// [`Queue::enqueue`] would have to push out or refuse. Hosts can use it
    /// for early congestion signals (BASEL `postAdmAct`: MARK, NOTIFY).
    pub fn would_congest(&self, meta: &PacketMeta) -> bool {
        self.congested_at(
            self.len().saturating_add(1),
            self.bytes.saturating_add(u64::from(meta.size)),
        )
    }

    /// The declaration this queue was built from.
    pub fn spec(&self) -> &QueueSpec<P, A> {
        &self.spec
    }

    /// Current load, tagged with `index`.
    pub fn load(&self, index: usize) -> QueueLoad {
        QueueLoad {
            index,
            len: self.len(),
            bytes: self.bytes,
        }
    }

    fn congested_at(&self, len: usize, bytes: u64) -> bool {
        len > N || self.spec.congestion.congested(len, bytes)
    }

    /// Load with tentatively evicted packets left out.
    fn virtual_len(&self) -> usize {
        self.len().saturating_sub(self.staged_len)
    }

    fn virtual_bytes(&self) -> u64 {
        self.bytes.saturating_sub(self.staged_bytes)
    }

    /// The entry a newcomer would become.
    fn newcomer(&self, meta: PacketMeta, item: T) -> Entry<T> {
        Entry {
            meta,
            seq: self.next_seq,
            item,
        }
    }

    /// The next packet admission order would drop, ignoring staged ones.
    fn candidate(&self) -> Option<(u16, &Entry<T>)> {
        let s = self.adm_heap.peek()?;
        Some((s, entry(&self.slots, s)?))
    }

    /// Tentatively takes `slot` (the current candidate) out of the
    /// admission order.
    fn stage(&mut self, slot: u16) {
        if let Some(size) = entry(&self.slots, slot).map(|e| e.meta.size) {
            if self
                .adm_heap
                .remove(slot, adm_less(&self.slots, &self.spec.adm_prio))
                .is_ok()
            {
                self.staged_len = self.staged_len.saturating_add(1);
                self.staged_bytes = self.staged_bytes.saturating_add(u64::from(size));
            }
        }
    }

    /// Puts a staged slot back into the admission order.
    fn unstage(&mut self, slot: u16) {
        if let Some(size) = entry(&self.slots, slot).map(|e| e.meta.size) {
            if self
                .adm_heap
                .push(slot, adm_less(&self.slots, &self.spec.adm_prio))
                .is_ok()
            {
                self.staged_len = self.staged_len.saturating_sub(1);
                self.staged_bytes = self.staged_bytes.saturating_sub(u64::from(size));
            }
        }
    }

    /// Evicts a staged slot for good.
    fn commit(&mut self, slot: u16) -> Option<(PacketMeta, T)> {
        let size = entry(&self.slots, slot)?.meta.size;
        self.proc_heap
            .remove(slot, proc_less(&self.slots, &self.spec.proc_prio))
            .ok()?;
        self.staged_len = self.staged_len.saturating_sub(1);
        self.staged_bytes = self.staged_bytes.saturating_sub(u64::from(size));
        self.take(slot)
    }

    /// Frees a slot already out of both heaps.
    fn take(&mut self, slot: u16) -> Option<(PacketMeta, T)> {
        let e = self.slots.get_mut(usize::from(slot))?.take()?;
        if let Some(f) = self.free.get_mut(self.free_len) {
            *f = slot;
            self.free_len += 1;
        }
        self.bytes = self.bytes.saturating_sub(u64::from(e.meta.size));
        Some((e.meta, e.item))
    }

    /// Stores a packet the admission plan has made room for.
    fn insert(&mut self, meta: PacketMeta, item: T) -> bool {
        let Some(i) = self.free_len.checked_sub(1) else {
            return false;
        };
        let Some(&s) = self.free.get(i) else {
            return false;
        };
        let Some(slot) = self.slots.get_mut(usize::from(s)) else {
            return false;
        };
        *slot = Some(Entry {
            meta,
            seq: self.next_seq,
            item,
        });
        self.free_len = i;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.bytes = self.bytes.saturating_add(u64::from(meta.size));
        self.high_water = self.high_water.max(self.len());
        let a = self
            .proc_heap
            .push(s, proc_less(&self.slots, &self.spec.proc_prio));
        let b = self
            .adm_heap
            .push(s, adm_less(&self.slots, &self.spec.adm_prio));
        a.is_ok() && b.is_ok()
    }
}

/// A queue comparator for push-out (BASEL `queuePrio`, §4.4).
pub trait QueueOrder {
    /// True only if a congested buffer should push out from `a` before `b`.
    fn higher(&self, a: &QueueLoad, b: &QueueLoad) -> bool;
}

/// Longest Queue Drop (§4.4, \[7\]): push out from the queue with the most
/// packets; ties go to more bytes, then to the lower index.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Lqd;
impl QueueOrder for Lqd {
    fn higher(&self, a: &QueueLoad, b: &QueueLoad) -> bool {
        (a.len, a.bytes) > (b.len, b.bytes)
    }
}

/// Buffer-level admission state shared by a [`Buffer`]'s queues.
#[derive(Clone, Copy, Debug)]
struct Shared<Q> {
    congestion: Congestion,
    queue_prio: Q,
}

/// The admission algorithm shared by [`Queue`] and [`Buffer`]: virtually
/// admit, then plan evictions (queue congestion first, then buffer
/// congestion via `queuePrio`) until nothing is congested; commit the plan,
/// or undo it and refuse the newcomer.
fn admit<T: Copy, const N: usize, P: PacketOrder, A: PacketOrder, Q: QueueOrder>(
    queues: &mut [Queue<T, N, P, A>],
    target: usize,
    meta: PacketMeta,
    item: T,
    shared: Option<&Shared<Q>>,
) -> Admission<T> {
    let Some(tq) = queues.get(target) else {
        return Admission::Refused(item, Refusal::NoSuchQueue);
    };
    let new = tq.newcomer(meta, item);
    let size = u64::from(meta.size);
    let mut staged: heapless::Vec<(usize, u16), MAX_PUSHOUT> = heapless::Vec::new();

    let refusal = loop {
        let mut victim_queue = None;
        if let Some(tq) = queues.get(target) {
            let len = tq.virtual_len().saturating_add(1);
            if tq.congested_at(len, tq.virtual_bytes().saturating_add(size)) {
                victim_queue = Some(target);
            }
        }
        if victim_queue.is_none() {
            if let Some(sh) = shared {
                let (mut len, mut bytes) = (1usize, size);
                for q in queues.iter() {
                    len = len.saturating_add(q.virtual_len());
                    bytes = bytes.saturating_add(q.virtual_bytes());
                }
                if sh.congestion.congested(len, bytes) {
                    victim_queue = pick_queue(queues, target, size, &sh.queue_prio);
                    if victim_queue.is_none() {
                        break Some(Refusal::LeastValuable);
                    }
                }
            }
        }
        let Some(vq) = victim_queue else {
            break None;
        };
        let Some(q) = queues.get(vq) else {
            break Some(Refusal::LeastValuable);
        };
        let cand = q.candidate();
        let newcomer_lowest = vq == target
            && match cand {
                None => true,
                Some((_, c)) => before(&q.spec.adm_prio, c, &new),
            };
        if newcomer_lowest {
            break Some(Refusal::LeastValuable);
        }
        let Some((slot, c)) = cand else {
            break Some(Refusal::LeastValuable);
        };
        if !c.meta.droppable {
            break Some(Refusal::NotDroppable);
        }
        if staged.push((vq, slot)).is_err() {
            break Some(Refusal::PushOutLimit);
        }
        if let Some(q) = queues.get_mut(vq) {
            q.stage(slot);
        }
    };

    match refusal {
        Some(why) => {
            // Undo in reverse so every queue is back exactly as it was.
            for &(q, s) in staged.iter().rev() {
                if let Some(q) = queues.get_mut(q) {
                    q.unstage(s);
                }
            }
            Admission::Refused(item, why)
        }
        None => {
            let mut victims = Victims::new();
            for &(qi, s) in staged.iter() {
                if let Some((meta, item)) = queues.get_mut(qi).and_then(|q| q.commit(s)) {
                    // `victims` has the same capacity as `staged`.
                    let _ = victims.push(Victim {
                        queue: qi,
                        meta,
                        item,
                    });
                }
            }
            if let Some(tq) = queues.get_mut(target) {
                tq.insert(meta, item);
            }
            if victims.is_empty() {
                Admission::Admitted
            } else {
                Admission::AdmittedPushedOut(victims)
            }
        }
    }
}

/// `queuePrio` scan over the non-empty queues (the target counts the
/// newcomer); ties go to the lower index.
fn pick_queue<T: Copy, const N: usize, P: PacketOrder, A: PacketOrder, Q: QueueOrder>(
    queues: &[Queue<T, N, P, A>],
    target: usize,
    size: u64,
    queue_prio: &Q,
) -> Option<usize> {
    let mut best: Option<QueueLoad> = None;
    for (i, q) in queues.iter().enumerate() {
        let mut load = QueueLoad {
            index: i,
            len: q.virtual_len(),
            bytes: q.virtual_bytes(),
        };
        if i == target {
            load.len = load.len.saturating_add(1);
            load.bytes = load.bytes.saturating_add(size);
        }
        if load.len == 0 {
            continue;
        }
        if best.is_none_or(|b| queue_prio.higher(&load, &b)) {
            best = Some(load);
        }
    }
    best.map(|b| b.index)
}

/// A BASEL buffer (§4.4): `K` queues sharing one space, limited by a
/// buffer-level [`Congestion`]; on buffer congestion `queuePrio` (e.g.
/// [`Lqd`]) picks the queue to push out from and that queue's `admPrio` the
/// packet. The droppable rule applies as for a lone queue.
#[derive(Clone, Debug)]
pub struct Buffer<
    T: Copy,
    const N: usize,
    const K: usize,
    P: PacketOrder = Fifo,
    A: PacketOrder = Fifo,
    Q: QueueOrder = Lqd,
> {
    queues: [Queue<T, N, P, A>; K],
    shared: Shared<Q>,
}

impl<T: Copy, const N: usize, const K: usize, P: PacketOrder, A: PacketOrder, Q: QueueOrder>
    Buffer<T, N, K, P, A, Q>
{
    /// A buffer over `queues`, congested per `congestion` (on the totals),
    /// pushing out from the queue chosen by `queue_prio`.
    pub fn new(queues: [Queue<T, N, P, A>; K], congestion: Congestion, queue_prio: Q) -> Self {
        Buffer {
            queues,
            shared: Shared {
                congestion,
                queue_prio,
            },
        }
    }

    /// Offers a packet to queue `queue` (BASEL: the packet's destination
    /// queue). An unknown index is refused with [`Refusal::NoSuchQueue`].
    /// O(K + log N) per pushed-out packet.
    pub fn enqueue(&mut self, queue: usize, meta: PacketMeta, item: T) -> Admission<T> {
        admit(&mut self.queues, queue, meta, item, Some(&self.shared))
    }

    /// Removes the HOL packet of queue `queue`.
    pub fn dequeue_hol(&mut self, queue: usize) -> Option<(PacketMeta, T)> {
        self.queues.get_mut(queue)?.dequeue_hol()
    }

    /// Queue `queue`, if it exists.
    pub fn queue(&self, queue: usize) -> Option<&Queue<T, N, P, A>> {
        self.queues.get(queue)
    }

    /// All queues.
    pub fn queues(&self) -> &[Queue<T, N, P, A>; K] {
        &self.queues
    }

    /// Packets held in all queues (BASEL buffer `currSize`). O(K).
    pub fn len(&self) -> usize {
        self.queues.iter().map(Queue::len).sum()
    }

    /// True when every queue is empty. O(K).
    pub fn is_empty(&self) -> bool {
        self.queues.iter().all(Queue::is_empty)
    }

    /// Bytes held in all queues. O(K).
    pub fn bytes(&self) -> u64 {
        self.queues.iter().map(Queue::bytes).sum()
    }
}

/// A queue as seen by `schedPrio`: its HOL packet and state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct QueueView<'a> {
    /// Index in the port.
    pub index: usize,
    /// The HOL packet (only non-empty queues are compared).
    pub hol: &'a PacketMeta,
    /// Packets held.
    pub len: usize,
    /// Bytes held.
    pub bytes: u64,
    /// Declared weight (e.g. DRR quantum).
    pub weight: u32,
    /// BASEL `weightSched`, updated by `postSchedAct` (e.g. DRR deficit).
    pub weight_sched: u64,
}

/// Per-queue scheduling state kept by a [`Port`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SchedState {
    /// Declared weight, constant (DRR quantum in bytes, WRR packets per
    /// round).
    pub weight: u32,
    /// BASEL `weightSched`, dynamic.
    pub weight_sched: u64,
}

/// A port's scheduling policy (BASEL `schedPrio` + `postSchedAct`, §4.3).
pub trait SchedPolicy {
    /// `schedPrio(a, b)`: true only if `a`'s HOL packet should be sent
    /// before `b`'s. Ties go to the lower queue index.
    fn higher(&self, a: &QueueView<'_>, b: &QueueView<'_>) -> bool;
    /// `postSchedAct`: called after the HOL packet `sent` left queue
    /// `served`. `loads` are the queues' loads after the dequeue. The default
    /// does nothing.
    fn post_sched_act(
        &mut self,
        served: usize,
        sent: &PacketMeta,
        state: &mut [SchedState],
        loads: &[QueueLoad],
    ) {
        let _ = (served, sent, state, loads);
    }
}

/// Strict priority across queues: the HOL packet with the greater
/// `(class, value)` goes first ([`ByValue`] on HOL packets, §4.3's example).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct StrictPriority;
impl SchedPolicy for StrictPriority {
    fn higher(&self, a: &QueueView<'_>, b: &QueueView<'_>) -> bool {
        ByValue.higher(a.hol, b.hol)
    }
}

/// Min-Queue-First, BASEL Table 2 `minqf()`: the HOL packet with the least
/// `work` goes first (2-competitive for throughput \[21\]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Mqf;
impl SchedPolicy for Mqf {
    fn higher(&self, a: &QueueView<'_>, b: &QueueView<'_>) -> bool {
        a.hol.work < b.hol.work
    }
}

/// Longest-Queue-First, BASEL Table 2 `lqf()` (by packets).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Lqf;
impl SchedPolicy for Lqf {
    fn higher(&self, a: &QueueView<'_>, b: &QueueView<'_>) -> bool {
        a.len > b.len
    }
}

/// What a [`RoundRobin`] charges per packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Charge {
    /// Bytes (deficit round robin).
    Bytes,
    /// One per packet (weighted round robin).
    Packets,
}

/// `RoundRobin::cursor` before any packet was sent.
const NONE_SERVED: usize = usize::MAX;

/// Deficit / weighted round robin declared as `schedPrio` + `postSchedAct`.
///
/// Each queue's `weight` is its quantum per round (bytes for DRR, packets
/// for WRR) and `weightSched` its deficit. `schedPrio` prefers queues whose
/// deficit covers their HOL packet, starting with the queue served last (so
/// a queue keeps the link while its deficit lasts, as in DRR) and going on
/// cyclically. When no queue is covered, a new round starts: `postSchedAct`
/// credits every backlogged queue its quantum (as many rounds at once as the
/// first queue to become eligible needs, so the work stays O(K)), and the
/// round begins after the queue served last. A queue that empties loses its
/// deficit.
///
/// Decision: rounds credit all backlogged queues at once instead of on each
/// visit (classic DRR). The shares are the same — over `R` rounds a
/// continuously backlogged queue is sent between `R·w − (w + max packet)` and
/// `R·w` — and the comparator form stays declarative.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RoundRobin {
    charge: Charge,
    cursor: usize,
    rounds: u64,
}

impl RoundRobin {
    /// Deficit round robin by bytes (weights = quanta in bytes).
    pub const fn drr() -> Self {
        RoundRobin {
            charge: Charge::Bytes,
            cursor: NONE_SERVED,
            rounds: 0,
        }
    }

    /// Weighted round robin by packets (weights = packets per round).
    pub const fn wrr() -> Self {
        RoundRobin {
            charge: Charge::Packets,
            cursor: NONE_SERVED,
            rounds: 0,
        }
    }

    /// Rounds credited so far.
    pub fn rounds(&self) -> u64 {
        self.rounds
    }

    fn cost(&self, m: &PacketMeta) -> u64 {
        match self.charge {
            Charge::Bytes => u64::from(m.size),
            Charge::Packets => 1,
        }
    }

    /// Rounds queue `v` must wait before its HOL is covered.
    fn rounds_needed(&self, v: &QueueView<'_>) -> u64 {
        let short = self.cost(v.hol).saturating_sub(v.weight_sched);
        short.div_ceil(u64::from(v.weight.max(1)))
    }

    /// Sort key: fewer rounds first, then cyclic order from the cursor
    /// (this round) or from the queue after it (a new round).
    fn key(&self, v: &QueueView<'_>) -> (u64, bool, usize) {
        let r = self.rounds_needed(v);
        // Before the first send `cursor` is usize::MAX, which makes both
        // cases start at queue 0.
        let start = if r == 0 {
            self.cursor
        } else {
            self.cursor.wrapping_add(1)
        };
        (r, v.index < start, v.index)
    }
}

impl SchedPolicy for RoundRobin {
    fn higher(&self, a: &QueueView<'_>, b: &QueueView<'_>) -> bool {
        self.key(a) < self.key(b)
    }

    fn post_sched_act(
        &mut self,
        served: usize,
        sent: &PacketMeta,
        state: &mut [SchedState],
        loads: &[QueueLoad],
    ) {
        let cost = self.cost(sent);
        let Some(deficit) = state.get(served).map(|s| s.weight_sched) else {
            return;
        };
        if deficit < cost {
            let w = state.get(served).map_or(1, |s| u64::from(s.weight.max(1)));
            let r = (cost - deficit).div_ceil(w);
            self.rounds = self.rounds.saturating_add(r);
            for (i, (st, load)) in state.iter_mut().zip(loads).enumerate() {
                if load.len > 0 || i == served {
                    let credit = r.saturating_mul(u64::from(st.weight.max(1)));
                    st.weight_sched = st.weight_sched.saturating_add(credit);
                }
            }
        }
        if let Some(st) = state.get_mut(served) {
            st.weight_sched = st.weight_sched.saturating_sub(cost);
        }
        for (st, load) in state.iter_mut().zip(loads) {
            if load.len == 0 {
                st.weight_sched = 0;
            }
        }
        self.cursor = served;
    }
}

/// A packet sent by a [`Port`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sent<T> {
    /// The queue it came from.
    pub queue: usize,
    /// Its metadata.
    pub meta: PacketMeta,
    /// The caller's item.
    pub item: T,
}

/// A BASEL port (§4.3): `K` queues (in a [`Buffer`], which may share space
/// or not) scheduled by a [`SchedPolicy`]. Choosing a queue scans the `K`
/// queues (K is a small constant); the dequeue itself is O(log N).
#[derive(Clone, Debug)]
pub struct Port<
    T: Copy,
    const N: usize,
    const K: usize,
    S: SchedPolicy,
    P: PacketOrder = Fifo,
    A: PacketOrder = Fifo,
    Q: QueueOrder = Lqd,
> {
    buffer: Buffer<T, N, K, P, A, Q>,
    state: [SchedState; K],
    policy: S,
}

impl<
        T: Copy,
        const N: usize,
        const K: usize,
        S: SchedPolicy,
        P: PacketOrder,
        A: PacketOrder,
        Q: QueueOrder,
    > Port<T, N, K, S, P, A, Q>
{
    /// A port over `buffer`, with per-queue `weights` (BASEL initial
    /// `weightSched` declarations; ignored by policies that do not use them).
    pub fn new(buffer: Buffer<T, N, K, P, A, Q>, weights: [u32; K], policy: S) -> Self {
        Port {
            buffer,
            state: weights.map(|weight| SchedState {
                weight,
                weight_sched: 0,
            }),
            policy,
        }
    }

    /// Offers a packet to queue `queue` (see [`Buffer::enqueue`]).
    pub fn enqueue(&mut self, queue: usize, meta: PacketMeta, item: T) -> Admission<T> {
        self.buffer.enqueue(queue, meta, item)
    }

    /// BASEL `getBestQueue()`: the non-empty queue whose HOL packet is sent
    /// next, `None` when all are empty. O(K).
    pub fn best_queue(&self) -> Option<usize> {
        let mut best: Option<QueueView<'_>> = None;
        for (index, (q, st)) in self.buffer.queues.iter().zip(&self.state).enumerate() {
            let Some((hol, _)) = q.peek_hol() else {
                continue;
            };
            let v = QueueView {
                index,
                hol,
                len: q.len(),
                bytes: q.bytes(),
                weight: st.weight,
                weight_sched: st.weight_sched,
            };
            if best.is_none_or(|b| self.policy.higher(&v, &b)) {
                best = Some(v);
            }
        }
        best.map(|b| b.index)
    }

    /// Sends the HOL packet of the best queue, then runs `postSchedAct`.
    /// O(K + log N).
    pub fn dequeue(&mut self) -> Option<Sent<T>> {
        let queue = self.best_queue()?;
        let (meta, item) = self.buffer.dequeue_hol(queue)?;
        let loads: [QueueLoad; K] = core::array::from_fn(|i| {
            self.buffer.queues.get(i).map_or(
                QueueLoad {
                    index: i,
                    len: 0,
                    bytes: 0,
                },
                |q| q.load(i),
            )
        });
        self.policy
            .post_sched_act(queue, &meta, &mut self.state, &loads);
        Some(Sent { queue, meta, item })
    }

    /// The queues and their shared space.
    pub fn buffer(&self) -> &Buffer<T, N, K, P, A, Q> {
        &self.buffer
    }

    /// Per-queue scheduling state (`weight`, `weightSched`).
    pub fn sched_state(&self) -> &[SchedState; K] {
        &self.state
    }

    /// The scheduling policy (e.g. to read [`RoundRobin::rounds`]).
    pub fn policy(&self) -> &S {
        &self.policy
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;
    use std::vec::Vec;

    fn pkt(arrival: u64, size: u32) -> PacketMeta {
        PacketMeta {
            droppable: true,
            ..PacketMeta::new(Instant::from_micros(arrival), size)
        }
    }

    fn work(w: u32) -> PacketMeta {
        PacketMeta {
            work: w,
            ..pkt(0, 10)
        }
    }

    fn valued(v: u32, size: u32) -> PacketMeta {
        PacketMeta {
            value: v,
            ..pkt(0, size)
        }
    }

    fn drain<T: Copy, const N: usize, P: PacketOrder, A: PacketOrder>(
        q: &mut Queue<T, N, P, A>,
    ) -> Vec<T> {
        core::iter::from_fn(|| q.dequeue_hol().map(|(_, t)| t)).collect()
    }

    fn victims<T: Copy>(a: &Admission<T>) -> Vec<T> {
        match a {
            Admission::AdmittedPushedOut(v) => v.iter().map(|v| v.item).collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn fifo_tail_drop_refuses_newcomer() {
        let mut q = Queue::<u32, 3>::new(QueueSpec::fifo(Congestion::packets(3)));
        for i in 0..3 {
            assert_eq!(q.enqueue(pkt(i, 10), i as u32), Admission::Admitted);
        }
        assert!(q.would_congest(&pkt(9, 1)));
        assert_eq!(
            q.enqueue(pkt(9, 10), 9),
            Admission::Refused(9, Refusal::LeastValuable)
        );
        assert_eq!(q.len(), 3);
        assert_eq!(q.bytes(), 30);
        assert_eq!(drain(&mut q), [0, 1, 2]);
        assert!(q.is_empty() && q.bytes() == 0);
        assert_eq!(q.high_water(), 3);
    }

    #[test]
    fn srpt_pushes_out_most_work() {
        let mut q = Queue::<u32, 4, _, _>::new(QueueSpec::srpt(Congestion::packets(3)));
        for (i, w) in [5, 1, 3].into_iter().enumerate() {
            assert_eq!(q.enqueue(work(w), i as u32), Admission::Admitted);
        }
        assert_eq!(q.peek_victim().map(|(m, _)| m.work), Some(5));
        let a = q.enqueue(work(2), 10);
        assert_eq!(victims(&a), [0]);
        // Newcomer with the most work is itself the least valuable.
        assert_eq!(
            q.enqueue(work(9), 11),
            Admission::Refused(11, Refusal::LeastValuable)
        );
        assert_eq!(q.peek_hol().map(|(m, _)| m.work), Some(1));
        assert_eq!(drain(&mut q), [1, 10, 2]);
    }

    #[test]
    fn non_droppable_is_never_pushed_out() {
        let mut q = Queue::<u32, 3, _, _>::new(QueueSpec::srpt(Congestion::packets(3)));
        let keep = PacketMeta {
            droppable: false,
            ..work(9)
        };
        assert!(q.enqueue(keep, 0).is_admitted());
        assert!(q.enqueue(work(1), 1).is_admitted());
        assert!(q.enqueue(work(2), 2).is_admitted());
        // The victim (work 9) is protected: the newcomer is refused even
        // though a droppable packet (work 2) exists — admission order is not
        // skipped over.
        assert_eq!(
            q.enqueue(work(0), 3),
            Admission::Refused(3, Refusal::NotDroppable)
        );
        assert_eq!(q.len(), 3);
        assert_eq!(drain(&mut q), [1, 2, 0]);
    }

    #[test]
    fn ties_break_by_arrival_then_insertion() {
        // Equal work: arrival decides, then insertion order.
        let mut q = Queue::<u32, 8, _, _>::new(QueueSpec::srpt(Congestion::packets(8)));
        for (item, arrival) in [(0, 5), (1, 3), (2, 5), (3, 3)] {
            q.enqueue(
                PacketMeta {
                    work: 1,
                    ..pkt(arrival, 1)
                },
                item,
            );
        }
        assert_eq!(drain(&mut q), [1, 3, 0, 2]);
        // The victim among equal work is the newest.
        for (item, arrival) in [(0, 5), (1, 3), (2, 5), (3, 3)] {
            q.enqueue(
                PacketMeta {
                    work: 1,
                    ..pkt(arrival, 1)
                },
                item,
            );
        }
        assert_eq!(q.peek_victim().map(|(_, &t)| t), Some(2));
        // Lifo: later arrival first, and later insertion within an arrival.
        let mut l = Queue::<u32, 8, _, _>::new(QueueSpec::new(Lifo, Fifo, Congestion::packets(8)));
        for (item, arrival) in [(0, 1), (1, 1), (2, 2), (3, 1)] {
            l.enqueue(pkt(arrival, 1), item);
        }
        assert_eq!(drain(&mut l), [2, 3, 1, 0]);
    }

    #[test]
    fn capacity_one() {
        let mut q = Queue::<u32, 1, _, _>::new(QueueSpec::by_value(Congestion::unlimited()));
        assert!(q.enqueue(valued(1, 5), 0).is_admitted());
        assert_eq!(
            q.enqueue(valued(0, 5), 1),
            Admission::Refused(1, Refusal::LeastValuable)
        );
        assert_eq!(
            q.enqueue(valued(1, 5), 2),
            Admission::Refused(2, Refusal::LeastValuable)
        );
        let a = q.enqueue(valued(2, 5), 3);
        assert_eq!(victims(&a), [0]);
        assert_eq!(q.len(), 1);
        assert_eq!(drain(&mut q), [3]);
        assert!(q.enqueue(valued(0, 5), 4).is_admitted());
    }

    #[test]
    fn byte_limit_pushes_out_several_or_none() {
        let c = Congestion::packets(10).with_bytes(100);
        let mut q = Queue::<u32, 10, _, _>::new(QueueSpec::by_value(c));
        for v in [10, 20, 30] {
            assert!(q.enqueue(valued(v, 30), v).is_admitted());
        }
        // 90 + 60 bytes: the two least valuable go, in eviction order.
        let a = q.enqueue(valued(40, 60), 40);
        assert_eq!(victims(&a), [10, 20]);
        assert_eq!((q.len(), q.bytes()), (2, 90));
        // All or nothing: freeing 30 bytes (value 30) is not enough and the
        // next victim (value 40) outranks the newcomer, so nothing goes.
        assert_eq!(
            q.enqueue(valued(35, 50), 35),
            Admission::Refused(35, Refusal::LeastValuable)
        );
        assert_eq!((q.len(), q.bytes()), (2, 90));
        assert_eq!(q.peek_victim().map(|(_, &t)| t), Some(30));
        // A packet larger than the limit can never fit.
        assert_eq!(
            q.enqueue(valued(99, 101), 99),
            Admission::Refused(99, Refusal::LeastValuable)
        );
        assert_eq!(drain(&mut q), [40, 30]);
    }

    #[test]
    fn pushout_limit_refuses_and_restores() {
        let c = Congestion::packets(64).with_bytes(100);
        let mut q = Queue::<u32, 64, _, _>::new(QueueSpec::by_value(c));
        for i in 0..10 {
            assert!(q.enqueue(valued(1, 10), i).is_admitted());
        }
        // Needs 9 evictions > MAX_PUSHOUT.
        assert_eq!(
            q.enqueue(valued(5, 90), 50),
            Admission::Refused(50, Refusal::PushOutLimit)
        );
        assert_eq!((q.len(), q.bytes()), (10, 100));
        // Exactly MAX_PUSHOUT evictions are fine.
        let a = q.enqueue(valued(5, 80), 51);
        assert_eq!(victims(&a).len(), MAX_PUSHOUT);
        assert_eq!((q.len(), q.bytes()), (3, 100));
    }

    #[test]
    fn custom_predicate_and_fn_order() {
        fn bigger_first(a: &PacketMeta, b: &PacketMeta) -> bool {
            a.size > b.size
        }
        let order: fn(&PacketMeta, &PacketMeta) -> bool = bigger_first;
        let c = Congestion {
            predicate: Some(|len, bytes| len >= 3 && bytes > 20),
            ..Congestion::unlimited()
        };
        let mut q = Queue::<u32, 8, _, _>::new(QueueSpec::new(order, Fifo, c));
        assert!(q.enqueue(pkt(0, 5), 0).is_admitted());
        assert!(q.enqueue(pkt(1, 15), 1).is_admitted());
        assert!(!q.congestion());
        assert_eq!(
            q.enqueue(pkt(2, 5), 2),
            Admission::Refused(2, Refusal::LeastValuable)
        );
        assert_eq!(drain(&mut q), [1, 0]);
    }

    #[test]
    fn edf_orders_by_deadline() {
        let mut q = Queue::<u32, 4, _, _>::new(QueueSpec::new(Edf, Fifo, Congestion::packets(4)));
        let s = |ms| Some(Duration::from_millis(ms));
        q.enqueue(
            PacketMeta {
                slack: s(50),
                ..pkt(0, 1)
            },
            0,
        );
        q.enqueue(
            PacketMeta {
                slack: None,
                ..pkt(0, 1)
            },
            1,
        );
        q.enqueue(
            PacketMeta {
                slack: s(10),
                ..pkt(5_000, 1)
            },
            2,
        );
        assert_eq!(drain(&mut q), [2, 0, 1]);
    }

    #[test]
    fn lqd_pushes_out_from_longest_queue() {
        let qs: [_; 2] = core::array::from_fn(|_| {
            Queue::<u32, 8, _, _>::new(QueueSpec::fifo(Congestion::unlimited()))
        });
        // Head drop inside a queue would need admPrio = lifo; fifo admission
        // pushes out the newest packet of the longest queue.
        let mut b = Buffer::new(qs, Congestion::packets(4), Lqd);
        assert!(b.enqueue(0, pkt(0, 1), 0).is_admitted());
        assert!(b.enqueue(0, pkt(1, 1), 1).is_admitted());
        assert!(b.enqueue(0, pkt(2, 1), 2).is_admitted());
        assert!(b.enqueue(1, pkt(3, 1), 3).is_admitted());
        let a = b.enqueue(1, pkt(4, 1), 4);
        match &a {
            Admission::AdmittedPushedOut(v) => {
                assert_eq!(v.len(), 1);
                assert_eq!((v[0].queue, v[0].item), (0, 2));
            }
            other => panic!("expected push-out, got {other:?}"),
        }
        assert_eq!(b.len(), 4);
        // Both queues hold 2; the target counts the newcomer, so queue 1 (3)
        // is the longest and its newest packet, the newcomer, is refused.
        assert_eq!(
            b.enqueue(1, pkt(5, 1), 5),
            Admission::Refused(5, Refusal::LeastValuable)
        );
        assert_eq!(
            b.enqueue(7, pkt(5, 1), 6),
            Admission::Refused(6, Refusal::NoSuchQueue)
        );
        assert_eq!(b.dequeue_hol(1).map(|p| p.1), Some(3));
        assert_eq!(b.bytes(), 3);
    }

    #[test]
    fn lqd_respects_droppable() {
        let qs: [_; 2] = core::array::from_fn(|_| {
            Queue::<u32, 8, _, _>::new(QueueSpec::fifo(Congestion::unlimited()))
        });
        let mut b = Buffer::new(qs, Congestion::packets(2), Lqd);
        let keep = PacketMeta {
            droppable: false,
            ..pkt(0, 1)
        };
        assert!(b.enqueue(0, keep, 0).is_admitted());
        assert!(b.enqueue(0, keep, 1).is_admitted());
        assert_eq!(
            b.enqueue(1, pkt(1, 1), 2),
            Admission::Refused(2, Refusal::NotDroppable)
        );
        assert_eq!(b.len(), 2);
    }

    fn unshared<const K: usize>(cap: usize) -> Buffer<u32, 16, K> {
        Buffer::new(
            core::array::from_fn(|_| Queue::new(QueueSpec::fifo(Congestion::packets(cap)))),
            Congestion::unlimited(),
            Lqd,
        )
    }

    #[test]
    fn strict_priority_port() {
        let mut p = Port::new(unshared::<3>(16), [0; 3], StrictPriority);
        let cls = |c: u8, a: u64| PacketMeta {
            class: c,
            ..pkt(a, 1)
        };
        p.enqueue(0, cls(0, 0), 0);
        p.enqueue(1, cls(2, 1), 1);
        p.enqueue(2, cls(1, 2), 2);
        p.enqueue(1, cls(0, 3), 3);
        p.enqueue(2, cls(1, 4), 4);
        assert_eq!(p.best_queue(), Some(1));
        let order: Vec<u32> = core::iter::from_fn(|| p.dequeue().map(|s| s.item)).collect();
        // Ties between equal HOL classes go to the lower queue index.
        assert_eq!(order, [1, 2, 4, 0, 3]);
        assert_eq!(p.best_queue(), None);
    }

    #[test]
    fn drr_keeps_link_while_deficit_lasts_and_resets_when_empty() {
        let mut p = Port::new(unshared::<2>(16), [300, 100], RoundRobin::drr());
        for i in 0..4 {
            p.enqueue(0, pkt(i, 100), i as u32);
            p.enqueue(1, pkt(i, 100), 10 + i as u32);
        }
        let order: Vec<u32> = (0..6).filter_map(|_| p.dequeue().map(|s| s.item)).collect();
        // Round 1: queue 0 sends 300 bytes, queue 1 sends 100; round 2 again.
        assert_eq!(order, [0, 1, 2, 10, 3, 11]);
        assert_eq!(p.policy().rounds(), 2);
        // Queue 0 is empty: its deficit (200 left) is forfeited.
        assert_eq!(p.sched_state()[0].weight_sched, 0);
    }

    // ---- models --------------------------------------------------------

    type Key = (u64, u64, u64, u64);

    /// Reference policy: sort keys, smallest first.
    #[derive(Clone, Copy)]
    struct ModelPolicy {
        proc: fn(&PacketMeta, u64) -> Key,
        victim: fn(&PacketMeta, u64) -> Key,
    }

    fn t(m: &PacketMeta) -> u64 {
        m.arrival.as_micros()
    }
    const FIFO_M: ModelPolicy = ModelPolicy {
        proc: |m, s| (0, 0, t(m), s),
        victim: |m, s| (0, 0, !t(m), !s),
    };
    const SRPT_M: ModelPolicy = ModelPolicy {
        proc: |m, s| (m.work.into(), 0, t(m), s),
        victim: |m, s| (!u64::from(m.work), 0, !t(m), !s),
    };
    const VALUE_M: ModelPolicy = ModelPolicy {
        proc: |m, s| (!u64::from(m.class), !u64::from(m.value), t(m), s),
        victim: |m, s| (m.class.into(), m.value.into(), !t(m), !s),
    };
    const LIFO_EDF_M: ModelPolicy = ModelPolicy {
        proc: |m, s| (0, 0, !t(m), !s),
        victim: |m, s| (!m.deadline().as_micros(), 0, !t(m), !s),
    };

    #[derive(Clone, Debug)]
    struct MEntry {
        meta: PacketMeta,
        seq: u64,
        item: u32,
    }

    #[derive(Debug, PartialEq)]
    enum Outcome {
        Admitted(Vec<(usize, u32)>),
        Refused(u32, Refusal),
    }

    fn outcome(a: Admission<u32>) -> Outcome {
        match a {
            Admission::Admitted => Outcome::Admitted(Vec::new()),
            Admission::AdmittedPushedOut(v) => {
                Outcome::Admitted(v.iter().map(|v| (v.queue, v.item)).collect())
            }
            Admission::Refused(i, r) => Outcome::Refused(i, r),
        }
    }

    struct ModelQueue {
        v: Vec<MEntry>,
        next_seq: u64,
        limit: Congestion,
        cap: usize,
    }

    impl ModelQueue {
        fn new(limit: Congestion, cap: usize) -> Self {
            ModelQueue {
                v: Vec::new(),
                next_seq: 0,
                limit,
                cap,
            }
        }
        fn bytes(&self, skip: &[u64]) -> u64 {
            self.v
                .iter()
                .filter(|e| !skip.contains(&e.seq))
                .map(|e| u64::from(e.meta.size))
                .sum()
        }
        fn len(&self, skip: &[u64]) -> usize {
            self.v.iter().filter(|e| !skip.contains(&e.seq)).count()
        }
        /// Lowest admPrio entry not in `skip`, by scanning.
        fn victim(&self, pol: ModelPolicy, skip: &[u64]) -> Option<&MEntry> {
            self.v
                .iter()
                .filter(|e| !skip.contains(&e.seq))
                .min_by_key(|e| (pol.victim)(&e.meta, e.seq))
        }
        fn dequeue(&mut self, pol: ModelPolicy) -> Option<(PacketMeta, u32)> {
            let i =
                (0..self.v.len()).min_by_key(|&i| (pol.proc)(&self.v[i].meta, self.v[i].seq))?;
            let e = self.v.remove(i);
            Some((e.meta, e.item))
        }
    }

    /// Reference admission over several queues with optional shared limit
    /// and LQD, written as a plain scan.
    fn model_admit(
        qs: &mut [ModelQueue],
        pol: ModelPolicy,
        shared: Option<Congestion>,
        target: usize,
        meta: PacketMeta,
        item: u32,
    ) -> Outcome {
        let new_seq = qs[target].next_seq;
        let mut staged: Vec<Vec<u64>> = qs.iter().map(|_| Vec::new()).collect();
        let mut order: Vec<(usize, u64)> = Vec::new();
        let refused = loop {
            let size = u64::from(meta.size);
            let tl = qs[target].len(&staged[target]) + 1;
            let tb = qs[target].bytes(&staged[target]) + size;
            let q_cong = tl > qs[target].cap || qs[target].limit.congested(tl, tb);
            let vq = if q_cong {
                target
            } else if let Some(sh) = shared {
                let len: usize = (0..qs.len()).map(|i| qs[i].len(&staged[i])).sum::<usize>() + 1;
                let bytes: u64 = (0..qs.len()).map(|i| qs[i].bytes(&staged[i])).sum::<u64>() + size;
                if !sh.congested(len, bytes) {
                    break None;
                }
                // Longest (packets, then bytes), lowest index on ties.
                let load = |i: usize| {
                    let extra = usize::from(i == target);
                    (
                        qs[i].len(&staged[i]) + extra,
                        qs[i].bytes(&staged[i]) + if i == target { size } else { 0 },
                    )
                };
                let best = (0..qs.len())
                    .filter(|&i| load(i).0 > 0)
                    .max_by(|&a, &b| load(a).cmp(&load(b)).then(b.cmp(&a)));
                best.unwrap()
            } else {
                break None;
            };
            let cand = qs[vq].victim(pol, &staged[vq]).cloned();
            if vq == target {
                match &cand {
                    None => break Some(Refusal::LeastValuable),
                    Some(c) if (pol.victim)(&meta, new_seq) < (pol.victim)(&c.meta, c.seq) => {
                        break Some(Refusal::LeastValuable)
                    }
                    _ => {}
                }
            }
            let Some(c) = cand else {
                break Some(Refusal::LeastValuable);
            };
            if !c.meta.droppable {
                break Some(Refusal::NotDroppable);
            }
            if order.len() == MAX_PUSHOUT {
                break Some(Refusal::PushOutLimit);
            }
            staged[vq].push(c.seq);
            order.push((vq, c.seq));
        };
        if let Some(r) = refused {
            return Outcome::Refused(item, r);
        }
        let mut out = Vec::new();
        for (q, seq) in order {
            let i = qs[q].v.iter().position(|e| e.seq == seq).unwrap();
            out.push((q, qs[q].v.remove(i).item));
        }
        let tq = &mut qs[target];
        tq.v.push(MEntry {
            meta,
            seq: tq.next_seq,
            item,
        });
        tq.next_seq += 1;
        Outcome::Admitted(out)
    }

    #[derive(Clone, Debug)]
    enum Op {
        Enq(usize, PacketMeta),
        Deq(usize),
    }

    fn meta() -> impl Strategy<Value = PacketMeta> {
        (
            0u64..4,
            1u32..60,
            0u32..4,
            0u32..6,
            0u8..3,
            prop::bool::weighted(0.75),
            prop::option::of(0u64..8),
        )
            .prop_map(
                |(a, size, value, work, class, droppable, slack)| PacketMeta {
                    arrival: Instant::from_micros(a),
                    size,
                    value,
                    work,
                    slack: slack.map(Duration::from_micros),
                    class,
                    droppable,
                },
            )
    }

    fn ops(k: usize) -> impl Strategy<Value = Vec<Op>> {
        prop::collection::vec(
            prop_oneof![
                3 => (0..k, meta()).prop_map(|(q, m)| Op::Enq(q, m)),
                1 => (0..k).prop_map(Op::Deq),
            ],
            0..120,
        )
    }

    fn limits() -> impl Strategy<Value = Congestion> {
        (1usize..8, prop::option::of(30u64..250)).prop_map(|(p, b)| Congestion {
            max_packets: p,
            max_bytes: b,
            predicate: None,
        })
    }

    fn check_queue<P: PacketOrder, A: PacketOrder>(
        spec: QueueSpec<P, A>,
        pol: ModelPolicy,
        ops: Vec<Op>,
    ) -> Result<(), TestCaseError> {
        const N: usize = 6;
        let mut m = [ModelQueue::new(spec.congestion, N)];
        let mut q = Queue::<u32, N, P, A>::new(spec);
        for (item, op) in ops.into_iter().enumerate() {
            match op {
                Op::Enq(_, meta) => {
                    let got = outcome(q.enqueue(meta, item as u32));
                    let want = model_admit(&mut m, pol, None, 0, meta, item as u32);
                    prop_assert_eq!(got, want);
                }
                Op::Deq(_) => prop_assert_eq!(q.dequeue_hol(), m[0].dequeue(pol)),
            }
            prop_assert_eq!(q.len(), m[0].len(&[]));
            prop_assert_eq!(q.bytes(), m[0].bytes(&[]));
            prop_assert!(!q.congestion());
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn fifo_matches_model(c in limits(), ops in ops(1)) {
            check_queue(QueueSpec::fifo(c), FIFO_M, ops)?;
        }

        #[test]
        fn srpt_matches_model(c in limits(), ops in ops(1)) {
            check_queue(QueueSpec::srpt(c), SRPT_M, ops)?;
        }

        #[test]
        fn by_value_matches_model(c in limits(), ops in ops(1)) {
            check_queue(QueueSpec::by_value(c), VALUE_M, ops)?;
        }

        #[test]
        fn lifo_edf_matches_model(c in limits(), ops in ops(1)) {
            check_queue(QueueSpec::new(Lifo, Edf, c), LIFO_EDF_M, ops)?;
        }

        /// Shared buffer with LQD push-out, per-queue limits and ByValue
        /// admission, against the scanning model.
        #[test]
        fn lqd_buffer_matches_model(
            qc in limits(),
            shared in (2usize..10, prop::option::of(60u64..400)),
            ops in ops(3),
        ) {
            const N: usize = 6;
            let spec = QueueSpec::new(Fifo, ByValue, qc);
            let sc = Congestion { max_packets: shared.0, max_bytes: shared.1, predicate: None };
            let mut b = Buffer::<u32, N, 3, Fifo, ByValue, Lqd>::new(core::array::from_fn(|_| Queue::new(spec)), sc, Lqd);
            let pol = ModelPolicy { proc: FIFO_M.proc, victim: VALUE_M.victim };
            let mut m: Vec<ModelQueue> = (0..3).map(|_| ModelQueue::new(qc, N)).collect();
            for (item, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Enq(q, meta) => {
                        let got = outcome(b.enqueue(q, meta, item as u32));
                        let want = model_admit(&mut m, pol, Some(sc), q, meta, item as u32);
                        prop_assert_eq!(got, want);
                    }
                    Op::Deq(q) => prop_assert_eq!(b.dequeue_hol(q), m[q].dequeue(pol)),
                }
                let total: usize = m.iter().map(|q| q.len(&[])).sum();
                prop_assert_eq!(b.len(), total);
                prop_assert!(total <= sc.max_packets);
            }
        }

        /// Strict priority port against a scan over FIFO model queues.
        #[test]
        fn strict_priority_matches_model(ops in ops(3)) {
            let mut p = Port::new(unshared::<3>(4), [0; 3], StrictPriority);
            let mut m: Vec<VecDeque<(PacketMeta, u32)>> = (0..3).map(|_| VecDeque::new()).collect();
            for (item, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Enq(q, meta) => {
                        // Increasing arrivals: FIFO admission is tail drop.
                        let meta = PacketMeta { arrival: Instant::from_micros(item as u64), ..meta };
                        let admitted = p.enqueue(q, meta, item as u32).is_admitted();
                        prop_assert_eq!(admitted, m[q].len() < 4);
                        if admitted { m[q].push_back((meta, item as u32)); }
                    }
                    Op::Deq(_) => {
                        // FIFO by (arrival, insertion) inside each queue.
                        for q in m.iter_mut() {
                            q.make_contiguous().sort_by_key(|(m, i)| (m.arrival, *i));
                        }
                        let best = (0..3)
                            .filter(|&i| !m[i].is_empty())
                            .max_by(|&a, &b| {
                                let (ma, mb) = (&m[a][0].0, &m[b][0].0);
                                (ma.class, ma.value).cmp(&(mb.class, mb.value)).then(b.cmp(&a))
                            });
                        let want = best.and_then(|i| m[i].pop_front().map(|(meta, item)| Sent { queue: i, meta, item }));
                        prop_assert_eq!(p.dequeue(), want);
                    }
                }
            }
        }

        /// DRR / WRR against a reference round model with random arrivals.
        #[test]
        fn round_robin_matches_model(
            bytes in any::<bool>(),
            weights in prop::array::uniform3(1u32..150),
            ops in ops(3),
        ) {
            let rr = if bytes { RoundRobin::drr() } else { RoundRobin::wrr() };
            let mut p = Port::new(unshared::<3>(16), weights, rr);
            let cost = |m: &PacketMeta| if bytes { u64::from(m.size) } else { 1 };
            let mut m: Vec<VecDeque<(PacketMeta, u32)>> = (0..3).map(|_| VecDeque::new()).collect();
            let mut deficit = [0u64; 3];
            let mut cursor: Option<usize> = None;
            for (item, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Enq(q, meta) => {
                        // Same-queue order is plain FIFO for the model: use
                        // increasing arrivals.
                        let meta = PacketMeta { arrival: Instant::from_micros(item as u64), ..meta };
                        if p.enqueue(q, meta, item as u32).is_admitted() {
                            m[q].push_back((meta, item as u32));
                        }
                    }
                    Op::Deq(_) => {
                        let backlogged: Vec<usize> = (0..3).filter(|&i| !m[i].is_empty()).collect();
                        let want = if backlogged.is_empty() {
                            None
                        } else {
                            let covered = |d: &[u64; 3], i: usize| d[i] >= cost(&m[i][0].0);
                            let mut start = cursor.unwrap_or(0);
                            if !backlogged.iter().any(|&i| covered(&deficit, i)) {
                                let need = |i: usize| (cost(&m[i][0].0) - deficit[i]).div_ceil(u64::from(weights[i]));
                                let r = backlogged.iter().map(|&i| need(i)).min().unwrap();
                                for &i in &backlogged { deficit[i] += r * u64::from(weights[i]); }
                                start = cursor.map_or(0, |c| c + 1);
                            }
                            let pick = (0..3).map(|k| (start + k) % 3).find(|&i| !m[i].is_empty() && covered(&deficit, i)).unwrap();
                            let (meta, item) = m[pick].pop_front().unwrap();
                            deficit[pick] -= cost(&meta);
                            cursor = Some(pick);
                            for i in 0..3 { if m[i].is_empty() { deficit[i] = 0; } }
                            Some(Sent { queue: pick, meta, item })
                        };
                        prop_assert_eq!(p.dequeue(), want);
                        for (st, d) in p.sched_state().iter().zip(deficit) {
                            prop_assert_eq!(st.weight_sched, d);
                        }
                    }
                }
            }
        }

        /// Continuously backlogged queues get their weight share within one
        /// quantum plus one packet: after R rounds, queue i has sent between
        /// R·w_i − (w_i + max) and R·w_i (bytes for DRR, packets for WRR).
        #[test]
        fn round_robin_shares(
            bytes in any::<bool>(),
            weights in prop::array::uniform3(1u32..4),
            sizes in prop::collection::vec(1u32..=100, 64),
        ) {
            const MAX: u64 = 100;
            let (rr, unit, weights) = if bytes {
                (RoundRobin::drr(), MAX, weights.map(|w| w * MAX as u32))
            } else {
                (RoundRobin::wrr(), 1, weights)
            };
            let mut p = Port::new(unshared::<3>(16), weights, rr);
            let mut sent = [0u64; 3];
            let mut next = 0usize;
            for step in 0..600u64 {
                for q in 0..3 {
                    while p.buffer().queue(q).unwrap().len() < 2 {
                        let size = sizes[next % sizes.len()];
                        next += 1;
                        prop_assert!(p.enqueue(q, pkt(step, size), 0).is_admitted());
                    }
                }
                let s = p.dequeue().unwrap();
                sent[s.queue] += if bytes { u64::from(s.meta.size) } else { 1 };
                let r = p.policy().rounds();
                for i in 0..3 {
                    let w = u64::from(weights[i]);
                    prop_assert!(sent[i] <= r * w, "queue {} sent {} > {}", i, sent[i], r * w);
                    prop_assert!(sent[i] + w + unit >= r * w, "queue {} sent {} << {}", i, sent[i], r * w);
                }
            }
            prop_assert!(p.policy().rounds() > 10);
        }
    }
}
