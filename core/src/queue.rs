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
//! first and push out the packet with the *most* remaining work [20]. Our
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
                self.staged_len += 1;
                self.staged_bytes += u64::from(size);
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
                self.staged_len -= 1;
                self.staged_bytes -= u64::from(size);
            }
        }
    }

    /// Evicts a staged slot for good.
    fn commit(&mut self, slot: u16) -> Option<(PacketMeta, T)> {
        let size = entry(&self.slots, slot)?.meta.size;
        self.proc_heap
            .remove(slot, proc_less(&self.slots, &self.spec.proc_prio))
            .ok()?;
        self.staged_len -= 1;
        self.staged_bytes -= u64::from(size);
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
        self.bytes += u64::from(meta.size);
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

/// Longest Queue Drop (§4.4, [7]): push out from the queue with the most
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
            if tq.congested_at(tq.virtual_len() + 1, tq.virtual_bytes() + size) {
                victim_queue = Some(target);
            }
        }
        if victim_queue.is_none() {
            if let Some(sh) = shared {
                let (mut len, mut bytes) = (1usize, size);
                for q in queues.iter() {
                    len += q.virtual_len();
                    bytes += q.virtual_bytes();
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
            load.len += 1;
            load.bytes += size;
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
/// `work` goes first (2-competitive for throughput [21]).
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
            cursor: 0,
            rounds: 0,
        }
    }

    /// Weighted round robin by packets (weights = packets per round).
    pub const fn wrr() -> Self {
        RoundRobin {
            charge: Charge::Packets,
            cursor: 0,
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
        let start = if r == 0 {
            self.cursor
        } else {
            self.cursor.saturating_add(1)
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
