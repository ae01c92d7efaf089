//! Checker of broadcast properties over the delivery logs of all processes
//! (std only): FastCast §3.3's four properties of uniform total order
//! broadcast — **Validity**, **Integrity**, **Uniform Agreement**, **Total
//! Order** — plus per-sender **FIFO** order, for the protocols that promise
//! it.
//!
//! A run records a [`History`]: what each process asked to broadcast, what
//! each process delivered (in delivery order, with the sequence number when
//! the protocol exposes one), and which processes crashed at some point.
//! [`History::check`] then returns a [`Report`] of [`Violation`]s, named the
//! way Jepsen names anomalies (`Lost`, `Duplicated`, `Invented`, ...).
//! A check costs O((D + P·M) · log) for D deliveries, P processes and M
//! messages — O(D · log) for a complete run, where every process delivers
//! every message; 10^6 deliveries take about a second in a test build.
//!
//! ```
//! use phasecast_core::sim::check::{Checks, History, MsgId, Violation};
//!
//! let (a, b) = (MsgId::new(0, 0), MsgId::new(1, 0));
//! let mut h = History::with_processes([0, 1, 2]);
//! h.record_broadcast(0, a, *b"a");
//! h.record_broadcast(1, b, *b"b");
//! for (sn, m, payload) in [(0, a, b"a"), (1, b, b"b")] {
//!     h.record_delivery(0, Some(sn), m, *payload);
//!     h.record_delivery(1, Some(sn), m, *payload);
//! }
//! // Process 2 delivered `a` and crashed: its log may be a strict prefix.
//! h.record_delivery(2, Some(0), a, *b"a");
//! h.record_crash(2);
//! let report = h.check(Checks::UNIFORM_TOTAL_ORDER);
//! assert!(report.is_ok(), "{report}");
//!
//! // A correct process that misses what another delivered: uniform
//! // agreement is violated.
//! let mut h2 = History::with_processes([0, 1]);
//! h2.record_broadcast(0, a, *b"a");
//! h2.record_delivery(0, Some(0), a, *b"a");
//! let report = h2.check(Checks::UNIFORM_TOTAL_ORDER);
//! assert_eq!(report.violations, [Violation::Lost { process: 1, id: a }]);
//! assert_eq!(report.agreement, Some(false));
//! ```
//!
//! # Decisions where the paper is vague
//!
//! * **Correct** means "never crashed during the run" (FastCast §3.4 relies
//!   on a perfect failure detector: a crashed process is excluded for good).
//!   A process that is restarted is therefore not correct. The checker does
//!   not know how a restarted incarnation rejoins (state transfer, replay),
//!   so a harness records a new incarnation under a process id of its own.
//! * **Integrity** in §3.3 demands that m "was previously utoBroadcast by some
//!   *correct* process". Taken literally, a message of a process that crashed
//!   after broadcasting could never be delivered — yet Uniform Agreement
//!   demands it be delivered everywhere once anyone delivered it. We use the
//!   classical wording (Hadzilacos & Toueg): m was broadcast by *some*
//!   process. Without timestamps "previously" is not checked. A message id
//!   broadcast twice is reported as [`Violation::Reused`]: ids must identify
//!   messages, or nothing else can be checked.
//! * **Corruption** (Corosync's "message i must be identical at every
//!   process"): a delivered payload is compared with the broadcast payload,
//!   or — for an invented message — with its first delivery (lowest process
//!   id first).
//! * **Total Order** as §3.3 states it ("if p_i delivers m without having
//!   delivered m', no p_j delivers m' before m") is stronger than "shared
//!   messages are delivered in the same relative order": given Integrity, it
//!   holds iff every delivery log is a prefix of one common sequence. Proof
//!   sketch: if two logs first differ at index k with m and m', the first
//!   process delivered m without m' and the second m' without m. So the check
//!   is "every log (each message counted at its first delivery) is a prefix
//!   of the longest log" (the *reference*; ties go to the lowest process id),
//!   reported as [`Violation::Diverged`] at the first divergence, plus the
//!   first pairwise inversion against the reference as
//!   [`Violation::OutOfOrder`]. When sequence numbers are given, two messages
//!   at one number ([`Violation::Conflict`]), one message at two numbers
//!   ([`Violation::Renumbered`]) and a log whose numbers go down
//!   ([`Violation::SnRegressed`]) are total-order violations too. Sequence
//!   numbers are therefore global and unwrapped (`u64`); a protocol that
//!   restarts numbering per view composes `(view, sn)` into one `u64`.
//! * **Agreement and Validity are liveness properties**: a run must end with
//!   a liveness phase (faults healed, enough time to settle) before they are
//!   checked; the other checks are safety properties and hold at any cut.
//! * **Uniformity** ([`Checks::uniform`], on by default): the uniform
//!   properties constrain every process, crashed or not; the non-uniform
//!   ones (reliable multicast without uniformity) only correct processes —
//!   a crashed process's deliveries then neither bind the correct ones nor
//!   are checked themselves.
//! * **FIFO** is per sender in counter order (the harness numbers a sender's
//!   broadcasts in call order). A process that delivers counter c2 and
//!   *never* c1 < c2 although c1 was broadcast breaks FIFO order as
//!   Hadzilacos & Toueg define it ("no process delivers m' unless it has
//!   previously delivered m") — for reliable FIFO broadcast as well as for
//!   uniform total order with FIFO — so it is reported as
//!   [`Violation::FifoGap`]. Counters never broadcast are not gaps.
//! * Violations are reported once per fact — once per (process, message) for
//!   `Duplicated` and `Corrupted`; for order, only the first anomaly of each
//!   log (`Diverged`, `OutOfOrder`, `SnRegressed`; `FifoViolation` per
//!   sender), since one late message makes every later position look wrong
//!   — so one bug does not bury the others under 10^5 consequences. A `Lost` found by
//!   both Validity and Agreement is listed once; both properties fail.
//! * The simulator's types do not derive `defmt::Format` (std only), nor do
//!   these.

use core::fmt;
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::vec::Vec;

/// Identity of a broadcast message: its sender and the sender's per-sender
/// counter (never a hash, so ids never collide and FIFO order is visible).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MsgId {
    /// The process that broadcast it.
    pub sender: u16,
    /// Per-sender counter, increasing in broadcast call order.
    pub counter: u64,
}

impl MsgId {
    /// The `counter`-th message of `sender`.
    pub const fn new(sender: u16, counter: u64) -> Self {
        MsgId { sender, counter }
    }
}

impl fmt::Display for MsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.sender, self.counter)
    }
}

/// One delivery, as the process reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// Global sequence number, when the protocol exposes one.
    pub sn: Option<u64>,
    /// Which message.
    pub id: MsgId,
    /// The payload handed to the application.
    pub payload: Vec<u8>,
}

/// What every process broadcast and delivered during a run, and which
/// processes crashed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    /// Every process known to the run, including ones that never broadcast
    /// nor delivered anything (a silent correct process still owes its
    /// deliveries).
    processes: BTreeSet<u16>,
    /// What each process asked to broadcast, in call order, with payload.
    broadcasts: BTreeMap<u16, Vec<(MsgId, Vec<u8>)>>,
    /// What each process delivered, in delivery order.
    deliveries: BTreeMap<u16, Vec<Delivery>>,
    /// Processes that crashed at some point (not correct).
    crashed: BTreeSet<u16>,
}

impl History {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty history of the given processes (declare every process, so
    /// that one that delivered nothing is still checked).
    pub fn with_processes(processes: impl IntoIterator<Item = u16>) -> Self {
        History {
            processes: processes.into_iter().collect(),
            ..Self::default()
        }
    }

    /// A history built at once from its parts; same as the `record_*`
    /// methods called in iteration order.
    pub fn from_parts(
        processes: impl IntoIterator<Item = u16>,
        broadcasts: impl IntoIterator<Item = (u16, MsgId, Vec<u8>)>,
        deliveries: impl IntoIterator<Item = (u16, Delivery)>,
        crashed: impl IntoIterator<Item = u16>,
    ) -> Self {
        let mut h = Self::with_processes(processes);
        for (p, id, payload) in broadcasts {
            h.record_broadcast(p, id, payload);
        }
        for (p, d) in deliveries {
            h.processes.insert(p);
            h.deliveries.entry(p).or_default().push(d);
        }
        for p in crashed {
            h.record_crash(p);
        }
        h
    }

    /// Declares a process (idempotent).
    pub fn add_process(&mut self, process: u16) {
        self.processes.insert(process);
    }

    /// `process` asked to broadcast `id` with `payload` (record only the
    /// broadcasts the protocol accepted).
    pub fn record_broadcast(&mut self, process: u16, id: MsgId, payload: impl Into<Vec<u8>>) {
        self.processes.insert(process);
        self.broadcasts
            .entry(process)
            .or_default()
            .push((id, payload.into()));
    }

    /// `process` delivered `id` (at sequence number `sn`, if any) with
    /// `payload`; call in delivery order.
    pub fn record_delivery(
        &mut self,
        process: u16,
        sn: Option<u64>,
        id: MsgId,
        payload: impl Into<Vec<u8>>,
    ) {
        self.processes.insert(process);
        self.deliveries.entry(process).or_default().push(Delivery {
            sn,
            id,
            payload: payload.into(),
        });
    }

    /// `process` crashed at some point: it is not correct.
    pub fn record_crash(&mut self, process: u16) {
        self.processes.insert(process);
        self.crashed.insert(process);
    }

    /// Every known process, in id order.
    pub fn processes(&self) -> impl Iterator<Item = u16> + '_ {
        self.processes.iter().copied()
    }

    /// Whether `process` never crashed.
    pub fn is_correct(&self, process: u16) -> bool {
        !self.crashed.contains(&process)
    }

    /// What `process` broadcast, in call order.
    pub fn broadcasts_of(&self, process: u16) -> &[(MsgId, Vec<u8>)] {
        self.broadcasts.get(&process).map_or(&[], Vec::as_slice)
    }

    /// What `process` delivered, in delivery order.
    pub fn deliveries_of(&self, process: u16) -> &[Delivery] {
        self.deliveries.get(&process).map_or(&[], Vec::as_slice)
    }

    /// Runs the selected checks.
    pub fn check(&self, checks: Checks) -> Report {
        Checker::new(self, checks).run()
    }
}

/// Which properties [`History::check`] verifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checks {
    /// A correct process delivers what it broadcast.
    pub validity: bool,
    /// No duplicate, invented or corrupted delivery; no reused id.
    pub integrity: bool,
    /// What one process delivers, every correct process delivers.
    pub agreement: bool,
    /// All logs are prefixes of one sequence; sequence numbers consistent.
    pub total_order: bool,
    /// Per-sender FIFO order, gaps included.
    pub fifo: bool,
    /// Uniform variants: crashed processes' deliveries count (see the
    /// module documentation).
    pub uniform: bool,
}

impl Checks {
    /// FastCast §3.3: uniform total order broadcast, FIFO not promised.
    pub const UNIFORM_TOTAL_ORDER: Checks = Checks {
        validity: true,
        integrity: true,
        agreement: true,
        total_order: true,
        fifo: false,
        uniform: true,
    };
    /// Every property, uniform.
    pub const ALL: Checks = Checks {
        fifo: true,
        ..Self::UNIFORM_TOTAL_ORDER
    };
    /// Nothing (a base for struct update syntax).
    pub const NONE: Checks = Checks {
        validity: false,
        integrity: false,
        agreement: false,
        total_order: false,
        fifo: false,
        uniform: true,
    };
}

impl Default for Checks {
    /// [`Checks::UNIFORM_TOTAL_ORDER`].
    fn default() -> Self {
        Self::UNIFORM_TOTAL_ORDER
    }
}

/// One anomaly found in a [`History`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Violation {
    /// Integrity: `process` delivered `id` more than once.
    Duplicated {
        /// The delivering process.
        process: u16,
        /// The message.
        id: MsgId,
    },
    /// Integrity: `process` delivered `id`, which no process broadcast.
    Invented {
        /// The delivering process.
        process: u16,
        /// The message.
        id: MsgId,
    },
    /// Integrity: `process` delivered `id` with a payload other than the
    /// broadcast one (or, for an invented message, than its first delivery).
    Corrupted {
        /// The delivering process.
        process: u16,
        /// The message.
        id: MsgId,
    },
    /// Integrity: the history records two broadcasts of `id`.
    Reused {
        /// The message id broadcast twice.
        id: MsgId,
    },
    /// Validity or Agreement: correct `process` never delivered `id`,
    /// although it broadcast it or some process delivered it.
    Lost {
        /// The correct process that misses it.
        process: u16,
        /// The message.
        id: MsgId,
    },
    /// Total order: two different messages delivered at sequence number
    /// `sn`.
    Conflict {
        /// The sequence number.
        sn: u64,
        /// The message first seen at `sn`.
        a: MsgId,
        /// Another message delivered at `sn`.
        b: MsgId,
    },
    /// Total order: message `id` delivered at two sequence numbers.
    Renumbered {
        /// The message.
        id: MsgId,
        /// The sequence number first seen for it.
        a: u64,
        /// Another sequence number it was delivered at.
        b: u64,
    },
    /// Total order: `process` delivered sequence number `sn` (at `index` in
    /// its log) after `previous` ≥ `sn` (the first such point of the log).
    SnRegressed {
        /// The delivering process.
        process: u16,
        /// Position in its delivery log.
        index: usize,
        /// The sequence number delivered just before.
        previous: u64,
        /// The sequence number delivered at `index`.
        sn: u64,
    },
    /// Total order: the log of `process` is not a prefix of the reference
    /// log (of process `reference`): at position `index` of its log it
    /// delivered `got` where the reference delivered `expected`.
    Diverged {
        /// The process whose log diverges.
        process: u16,
        /// The process holding the reference (longest) log.
        reference: u16,
        /// Position of `got` in the delivery log of `process`.
        index: usize,
        /// What the reference delivered at that point.
        expected: MsgId,
        /// What `process` delivered.
        got: MsgId,
    },
    /// Total order: `process` delivered `first` before `second`, the
    /// reference process `second` before `first`.
    OutOfOrder {
        /// The process whose log diverges.
        process: u16,
        /// The process holding the reference log.
        reference: u16,
        /// Delivered first by `process`, second by `reference`.
        first: MsgId,
        /// Delivered second by `process`, first by `reference`.
        second: MsgId,
    },
    /// FIFO: `process` delivered counter `later` of `sender` before counter
    /// `earlier` < `later` (the first such inversion per sender and log).
    FifoViolation {
        /// The delivering process.
        process: u16,
        /// The sender of both messages.
        sender: u16,
        /// The counter that should have been delivered first.
        earlier: u64,
        /// The counter delivered before it.
        later: u64,
    },
    /// FIFO: `process` delivered counter `later` of `sender` but never the
    /// broadcast counter `missing` < `later`.
    FifoGap {
        /// The delivering process.
        process: u16,
        /// The sender of both messages.
        sender: u16,
        /// The broadcast counter never delivered.
        missing: u64,
        /// The first delivered counter above `missing`.
        later: u64,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Violation::Duplicated { process, id } => {
                write!(f, "duplicated: process {process} delivered {id} more than once")
            }
            Violation::Invented { process, id } => {
                write!(f, "invented: process {process} delivered {id}, never broadcast")
            }
            Violation::Corrupted { process, id } => write!(
                f,
                "corrupted: process {process} delivered {id} with another payload"
            ),
            Violation::Reused { id } => write!(f, "reused: {id} broadcast more than once"),
            Violation::Lost { process, id } => {
                write!(f, "lost: correct process {process} never delivered {id}")
            }
            Violation::Conflict { sn, a, b } => {
                write!(f, "conflict: sn {sn} delivered as both {a} and {b}")
            }
            Violation::Renumbered { id, a, b } => {
                write!(f, "renumbered: {id} delivered at sn {a} and at sn {b}")
            }
            Violation::SnRegressed {
                process,
                index,
                previous,
                sn,
            } => write!(
                f,
                "sn regressed: process {process} delivered sn {sn} (log index {index}) after sn {previous}"
            ),
            Violation::Diverged {
                process,
                reference,
                index,
                expected,
                got,
            } => write!(
                f,
                "diverged: process {process} delivered {got} (log index {index}) where process {reference} delivered {expected}"
            ),
            Violation::OutOfOrder {
                process,
                reference,
                first,
                second,
            } => write!(
                f,
                "out of order: process {process} delivered {first} before {second}, process {reference} after"
            ),
            Violation::FifoViolation {
                process,
                sender,
                earlier,
                later,
            } => write!(
                f,
                "fifo: process {process} delivered {sender}/{later} before {sender}/{earlier}"
            ),
            Violation::FifoGap {
                process,
                sender,
                missing,
                later,
            } => write!(
                f,
                "fifo gap: process {process} delivered {sender}/{later} but never {sender}/{missing}"
            ),
        }
    }
}

/// Sizes of the checked history.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Known processes.
    pub processes: usize,
    /// Processes that never crashed.
    pub correct: usize,
    /// Recorded broadcasts.
    pub broadcasts: usize,
    /// Recorded deliveries (duplicates included).
    pub deliveries: usize,
    /// Distinct messages delivered by at least one process.
    pub messages: usize,
}

/// Outcome of [`History::check`].
///
/// Each property is `None` when it was not checked, else whether it holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Every violation found, grouped by check (integrity, validity,
    /// agreement, total order, FIFO), in process then log order.
    pub violations: Vec<Violation>,
    /// What was checked.
    pub checked: Counts,
    /// Validity verdict.
    pub validity: Option<bool>,
    /// Integrity verdict.
    pub integrity: Option<bool>,
    /// (Uniform) Agreement verdict.
    pub agreement: Option<bool>,
    /// (Uniform) Total Order verdict.
    pub total_order: Option<bool>,
    /// FIFO verdict.
    pub fifo: Option<bool>,
}

impl Report {
    /// No violation found.
    pub fn is_ok(&self) -> bool {
        self.violations.is_empty()
    }
}

/// How many violations [`Report`]'s `Display` lists.
const SHOWN: usize = 20;

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = |v: Option<bool>| match v {
            None => "not checked",
            Some(true) => "ok",
            Some(false) => "VIOLATED",
        };
        let c = &self.checked;
        if self.is_ok() {
            writeln!(f, "broadcast check: ok")?;
        } else {
            writeln!(f, "broadcast check: {} violation(s)", self.violations.len())?;
        }
        writeln!(
            f,
            "  validity: {}, integrity: {}, agreement: {}, total order: {}, fifo: {}",
            verdict(self.validity),
            verdict(self.integrity),
            verdict(self.agreement),
            verdict(self.total_order),
            verdict(self.fifo)
        )?;
        writeln!(
            f,
            "  checked {} processes ({} correct), {} broadcasts, {} deliveries of {} messages",
            c.processes, c.correct, c.broadcasts, c.deliveries, c.messages
        )?;
        for v in self.violations.iter().take(SHOWN) {
            writeln!(f, "  - {v}")?;
        }
        if self.violations.len() > SHOWN {
            writeln!(f, "  ... and {} more", self.violations.len() - SHOWN)?;
        }
        Ok(())
    }
}

/// Indexes shared by the checks, built once.
struct Checker<'h> {
    h: &'h History,
    checks: Checks,
    /// First broadcast of each id, with its payload.
    sent: BTreeMap<MsgId, &'h [u8]>,
    /// Ids broadcast more than once (each listed once).
    reused: BTreeSet<MsgId>,
    /// Distinct messages each process delivered.
    delivered: BTreeMap<u16, BTreeSet<MsgId>>,
    report: Report,
    /// `Lost` pairs already reported (Validity and Agreement overlap).
    lost: BTreeSet<(u16, MsgId)>,
}

/// The empty set, for processes that delivered nothing.
static NOTHING: BTreeSet<MsgId> = BTreeSet::new();

impl<'h> Checker<'h> {
    fn new(h: &'h History, checks: Checks) -> Self {
        let mut sent = BTreeMap::new();
        let mut reused = BTreeSet::new();
        for (id, payload) in h.broadcasts.values().flatten() {
            match sent.entry(*id) {
                Entry::Vacant(e) => {
                    e.insert(payload.as_slice());
                }
                Entry::Occupied(_) => {
                    reused.insert(*id);
                }
            }
        }
        let delivered: BTreeMap<u16, BTreeSet<MsgId>> = h
            .deliveries
            .iter()
            .map(|(&p, log)| (p, log.iter().map(|d| d.id).collect()))
            .collect();
        let messages = delivered.values().flatten().collect::<BTreeSet<_>>().len();
        let correct = h.processes.iter().filter(|p| h.is_correct(**p)).count();
        let checked = Counts {
            processes: h.processes.len(),
            correct,
            broadcasts: h.broadcasts.values().map(Vec::len).sum(),
            deliveries: h.deliveries.values().map(Vec::len).sum(),
            messages,
        };
        Checker {
            h,
            checks,
            sent,
            reused,
            delivered,
            report: Report {
                checked,
                ..Report::default()
            },
            lost: BTreeSet::new(),
        }
    }

    fn run(mut self) -> Report {
        if self.checks.integrity {
            self.report.integrity = Some(self.integrity());
        }
        if self.checks.validity {
            self.report.validity = Some(self.validity());
        }
        if self.checks.agreement {
            self.report.agreement = Some(self.agreement());
        }
        if self.checks.total_order {
            self.report.total_order = Some(self.total_order());
        }
        if self.checks.fifo {
            self.report.fifo = Some(self.fifo());
        }
        self.report
    }

    /// Whether the properties constrain `process`: every process in the
    /// uniform variants, only correct ones otherwise.
    fn bound(&self, process: u16) -> bool {
        self.checks.uniform || self.h.is_correct(process)
    }

    /// Delivery logs of the processes the properties constrain.
    fn bound_logs(&self) -> impl Iterator<Item = (u16, &'h [Delivery])> + '_ {
        self.h
            .deliveries
            .iter()
            .filter(|(p, _)| self.bound(**p))
            .map(|(&p, log)| (p, log.as_slice()))
    }

    fn correct(&self) -> impl Iterator<Item = u16> + 'h {
        let h = self.h;
        h.processes.iter().copied().filter(|p| h.is_correct(*p))
    }

    fn delivered_by(&self, process: u16) -> &BTreeSet<MsgId> {
        self.delivered.get(&process).unwrap_or(&NOTHING)
    }

    fn push(&mut self, v: Violation) {
        self.report.violations.push(v);
    }

    fn integrity(&mut self) -> bool {
        let before = self.report.violations.len();
        for id in core::mem::take(&mut self.reused) {
            self.push(Violation::Reused { id });
        }
        // Payload each invented message was first delivered with.
        let mut first_seen: BTreeMap<MsgId, &'h [u8]> = BTreeMap::new();
        let logs: Vec<_> = self.bound_logs().collect();
        for (process, log) in logs {
            // Times each message was delivered so far, and whether its
            // corruption was already reported.
            let mut seen: BTreeMap<MsgId, (u32, bool)> = BTreeMap::new();
            for d in log {
                let id = d.id;
                let (count, corrupted) = seen.entry(id).or_insert((0, false));
                *count = count.saturating_add(1);
                if *count == 2 {
                    self.report
                        .violations
                        .push(Violation::Duplicated { process, id });
                }
                let expected = match self.sent.get(&id) {
                    Some(p) => *p,
                    None => {
                        if *count == 1 {
                            self.report
                                .violations
                                .push(Violation::Invented { process, id });
                        }
                        *first_seen.entry(id).or_insert(d.payload.as_slice())
                    }
                };
                if !*corrupted && d.payload != expected {
                    *corrupted = true;
                    self.report
                        .violations
                        .push(Violation::Corrupted { process, id });
                }
            }
        }
        self.report.violations.len() == before
    }

    fn validity(&mut self) -> bool {
        let mut ok = true;
        for process in self.correct() {
            for (id, _) in self.h.broadcasts_of(process) {
                if !self.delivered_by(process).contains(id) {
                    ok = false;
                    if self.lost.insert((process, *id)) {
                        self.push(Violation::Lost { process, id: *id });
                    }
                }
            }
        }
        ok
    }

    fn agreement(&mut self) -> bool {
        let mut all = BTreeSet::new();
        for (&p, set) in &self.delivered {
            if self.bound(p) {
                all.extend(set.iter().copied());
            }
        }
        let mut ok = true;
        for process in self.correct() {
            // Merge-walk of two sorted sets: O(|all|) per process.
            let missing: Vec<MsgId> = all
                .difference(self.delivered_by(process))
                .copied()
                .collect();
            for id in missing {
                ok = false;
                if self.lost.insert((process, id)) {
                    self.push(Violation::Lost { process, id });
                }
            }
        }
        ok
    }

    fn total_order(&mut self) -> bool {
        let before = self.report.violations.len();
        self.sequence_numbers();
        self.prefixes();
        self.report.violations.len() == before
    }

    /// One message per sequence number, one sequence number per message,
    /// increasing along every log.
    fn sequence_numbers(&mut self) {
        let mut by_sn: BTreeMap<u64, MsgId> = BTreeMap::new();
        let mut by_id: BTreeMap<MsgId, u64> = BTreeMap::new();
        // (sn, id) and (id, sn) pairs already reported.
        let mut conflicts: BTreeSet<(u64, MsgId)> = BTreeSet::new();
        let mut renumbered: BTreeSet<(MsgId, u64)> = BTreeSet::new();
        let logs: Vec<_> = self.bound_logs().collect();
        for (process, log) in logs {
            let mut last: Option<u64> = None;
            // Only the first regression of a log is reported: the rest
            // usually follow from it (one late message shifts them all).
            let mut regressed = false;
            for (index, d) in log.iter().enumerate() {
                let Some(sn) = d.sn else { continue };
                let a = *by_sn.entry(sn).or_insert(d.id);
                if a != d.id && conflicts.insert((sn, d.id)) {
                    self.push(Violation::Conflict { sn, a, b: d.id });
                }
                let first = *by_id.entry(d.id).or_insert(sn);
                if first != sn && renumbered.insert((d.id, sn)) {
                    self.push(Violation::Renumbered {
                        id: d.id,
                        a: first,
                        b: sn,
                    });
                }
                if let Some(previous) = last.filter(|&prev| prev >= sn) {
                    if !regressed {
                        regressed = true;
                        self.push(Violation::SnRegressed {
                            process,
                            index,
                            previous,
                            sn,
                        });
                    }
                }
                last = Some(sn);
            }
        }
    }

    /// Every log (first deliveries only) is a prefix of the longest one.
    fn prefixes(&mut self) {
        // The deduplicated length of a log is its number of distinct
        // messages, so the reference is known before any log is walked.
        let Some(reference) = self
            .bound_logs()
            .map(|(p, _)| p)
            .max_by_key(|p| (self.delivered_by(*p).len(), core::cmp::Reverse(*p)))
        else {
            return;
        };
        let ref_log = first_deliveries(self.h.deliveries_of(reference))
            .map(|(_, id)| id)
            .collect::<Vec<_>>();
        // Position of each message in the reference, built on the first
        // divergence only.
        let mut position: Option<BTreeMap<MsgId, usize>> = None;
        let logs: Vec<_> = self.bound_logs().collect();
        for (process, log) in logs {
            if process == reference {
                continue;
            }
            let diverged = first_deliveries(log)
                .zip(&ref_log)
                .find(|((_, got), expected)| got != *expected);
            let Some(((index, got), &expected)) = diverged else {
                continue;
            };
            self.push(Violation::Diverged {
                process,
                reference,
                index,
                expected,
                got,
            });
            let position = position.get_or_insert_with(|| {
                ref_log.iter().enumerate().map(|(i, id)| (*id, i)).collect()
            });
            // First message whose reference position is below that of a
            // message this process delivered earlier.
            let mut latest: Option<(usize, MsgId)> = None;
            for (_, id) in first_deliveries(log) {
                let Some(&pos) = position.get(&id) else {
                    continue;
                };
                match latest {
                    Some((max, first)) if pos < max => {
                        self.report.violations.push(Violation::OutOfOrder {
                            process,
                            reference,
                            first,
                            second: id,
                        });
                        break;
                    }
                    _ => latest = Some((pos, id)),
                }
            }
        }
    }

    fn fifo(&mut self) -> bool {
        let before = self.report.violations.len();
        let logs: Vec<_> = self.bound_logs().collect();
        for (process, log) in logs {
            // Highest counter delivered so far per sender, and whether an
            // inversion of that sender was reported (the first only, as for
            // `OutOfOrder`).
            let mut highest: BTreeMap<u16, (u64, bool)> = BTreeMap::new();
            for (_, id) in first_deliveries(log) {
                let (max, reported) = highest.entry(id.sender).or_insert((id.counter, false));
                if id.counter >= *max {
                    *max = id.counter;
                } else if !*reported {
                    *reported = true;
                    self.report.violations.push(Violation::FifoViolation {
                        process,
                        sender: id.sender,
                        earlier: id.counter,
                        later: *max,
                    });
                }
            }
            let delivered = self.delivered_by(process);
            let mut gaps = Vec::new();
            for (&sender, &(max, _)) in &highest {
                let below = MsgId::new(sender, 0)..MsgId::new(sender, max);
                for missing in self.sent.range(below).map(|(id, _)| *id) {
                    if delivered.contains(&missing) {
                        continue;
                    }
                    // `max` itself was delivered, so a later one exists.
                    let later = delivered
                        .range(missing..)
                        .next()
                        .map_or(max, |id| id.counter);
                    gaps.push(Violation::FifoGap {
                        process,
                        sender,
                        missing: missing.counter,
                        later,
                    });
                }
            }
            self.report.violations.extend(gaps);
        }
        self.report.violations.len() == before
    }
}

/// First delivery of each message in `log`, with its index in the log.
fn first_deliveries(log: &[Delivery]) -> impl Iterator<Item = (usize, MsgId)> + '_ {
    let mut seen = BTreeSet::new();
    log.iter()
        .enumerate()
        .filter(move |(_, d)| seen.insert(d.id))
        .map(|(i, d)| (i, d.id))
}

#[cfg(test)]
mod tests {
    use std::format;
    use std::string::ToString;
    use std::vec;
    use std::vec::Vec;

    use proptest::prelude::*;

    use super::*;

    fn id(sender: u16, counter: u64) -> MsgId {
        MsgId::new(sender, counter)
    }

    /// The canonical payload of a message.
    fn payload(m: MsgId) -> Vec<u8> {
        format!("{m}").into_bytes()
    }

    /// Processes `0..logs.len()`; each id of `sent` broadcast by its sender
    /// (in slice order); process `p` delivers `logs[p]` without sequence
    /// numbers; canonical payloads everywhere.
    fn hist(sent: &[MsgId], logs: &[&[MsgId]], crashed: &[u16]) -> History {
        let mut h = History::with_processes(0..logs.len() as u16);
        for &m in sent {
            h.record_broadcast(m.sender, m, payload(m));
        }
        for (p, log) in logs.iter().enumerate() {
            for &m in *log {
                h.record_delivery(p as u16, None, m, payload(m));
            }
        }
        for &p in crashed {
            h.record_crash(p);
        }
        h
    }

    const ONLY_INTEGRITY: Checks = Checks {
        integrity: true,
        ..Checks::NONE
    };
    const ONLY_TOTAL_ORDER: Checks = Checks {
        total_order: true,
        ..Checks::NONE
    };
    const ONLY_FIFO: Checks = Checks {
        fifo: true,
        ..Checks::NONE
    };

    #[test]
    fn correct_history_passes_every_check() {
        let (a, b, c, d) = (id(0, 0), id(1, 0), id(0, 1), id(2, 0));
        let mut h = History::new();
        for m in [a, b, c, d] {
            h.record_broadcast(m.sender, m, payload(m));
        }
        for p in 0..3 {
            for (sn, m) in [a, b, c, d].into_iter().enumerate() {
                h.record_delivery(p, Some(sn as u64), m, payload(m));
            }
        }
        let r = h.check(Checks::ALL);
        assert!(r.is_ok(), "{r}");
        assert_eq!(
            (r.validity, r.integrity, r.agreement, r.total_order, r.fifo),
            (Some(true), Some(true), Some(true), Some(true), Some(true))
        );
        assert_eq!(
            r.checked,
            Counts {
                processes: 3,
                correct: 3,
                broadcasts: 4,
                deliveries: 12,
                messages: 4
            }
        );
    }

    #[test]
    fn default_checks_are_uniform_total_order_without_fifo() {
        let r = hist(&[id(0, 0)], &[&[id(0, 0)]], &[]).check(Checks::default());
        assert_eq!(r.fifo, None);
        assert_eq!(r.total_order, Some(true));
        assert_eq!(Checks::default(), Checks::UNIFORM_TOTAL_ORDER);
    }

    #[test]
    fn duplicated_delivery_is_reported_once_per_message() {
        let (a, b) = (id(0, 0), id(0, 1));
        let h = hist(&[a, b], &[&[a, b], &[a, a, b, a]], &[]);
        let r = h.check(Checks::UNIFORM_TOTAL_ORDER);
        assert_eq!(
            r.violations,
            vec![Violation::Duplicated { process: 1, id: a }]
        );
        assert_eq!(r.integrity, Some(false));
        // Each message counts at its first delivery for the order.
        assert_eq!(r.total_order, Some(true));
    }

    #[test]
    fn invented_message_is_reported() {
        let (a, x) = (id(0, 0), id(7, 3));
        let h = hist(&[a], &[&[a], &[a, x]], &[]);
        let r = h.check(ONLY_INTEGRITY);
        assert_eq!(
            r.violations,
            vec![Violation::Invented { process: 1, id: x }]
        );
        // Uniform agreement: whatever was delivered, correct processes owe.
        let r = h.check(Checks::UNIFORM_TOTAL_ORDER);
        assert!(r
            .violations
            .contains(&Violation::Lost { process: 0, id: x }));
    }

    #[test]
    fn corrupted_payload_is_reported() {
        let a = id(0, 0);
        let mut h = hist(&[a], &[&[a], &[a]], &[]);
        h.record_delivery(2, None, a, *b"tampered");
        h.record_delivery(2, None, a, *b"tampered");
        let r = h.check(ONLY_INTEGRITY);
        assert_eq!(
            r.violations,
            vec![
                Violation::Corrupted { process: 2, id: a },
                Violation::Duplicated { process: 2, id: a },
            ]
        );
    }

    #[test]
    fn invented_message_must_be_identical_everywhere() {
        let x = id(5, 0);
        let mut h = History::new();
        h.record_delivery(0, None, x, *b"one");
        h.record_delivery(1, None, x, *b"one");
        h.record_delivery(2, None, x, *b"two");
        let r = h.check(ONLY_INTEGRITY);
        assert_eq!(
            r.violations,
            vec![
                Violation::Invented { process: 0, id: x },
                Violation::Invented { process: 1, id: x },
                Violation::Invented { process: 2, id: x },
                Violation::Corrupted { process: 2, id: x },
            ]
        );
    }

    #[test]
    fn reused_broadcast_id_is_reported() {
        let a = id(0, 0);
        let mut h = hist(&[a], &[&[a]], &[]);
        h.record_broadcast(0, a, payload(a));
        let r = h.check(ONLY_INTEGRITY);
        assert_eq!(r.violations, vec![Violation::Reused { id: a }]);
        // The first broadcast's payload is the reference.
        h.record_broadcast(0, a, *b"other");
        assert_eq!(h.check(ONLY_INTEGRITY).violations.len(), 1);
    }

    #[test]
    fn own_message_never_delivered_breaks_validity() {
        let a = id(0, 0);
        let r = hist(&[a], &[&[], &[]], &[]).check(Checks::UNIFORM_TOTAL_ORDER);
        assert_eq!(r.violations, vec![Violation::Lost { process: 0, id: a }]);
        assert_eq!(r.validity, Some(false));
        // Nobody delivered it: agreement holds.
        assert_eq!(r.agreement, Some(true));
    }

    #[test]
    fn lost_found_by_validity_and_agreement_is_listed_once() {
        let a = id(0, 0);
        let r = hist(&[a], &[&[], &[a]], &[]).check(Checks::UNIFORM_TOTAL_ORDER);
        assert_eq!(r.violations, vec![Violation::Lost { process: 0, id: a }]);
        assert_eq!((r.validity, r.agreement), (Some(false), Some(false)));
    }

    #[test]
    fn crashed_senders_undelivered_message_is_fine() {
        let (a, b) = (id(0, 0), id(1, 0));
        let h = hist(&[a, b], &[&[], &[b], &[b]], &[0]);
        let r = h.check(Checks::ALL);
        assert!(r.is_ok(), "{r}");
    }

    #[test]
    fn delivery_by_crashed_process_binds_correct_ones() {
        let a = id(0, 0);
        // Sender 0 and process 2 crash; 2 delivered a before crashing.
        let h = hist(&[a], &[&[], &[], &[a]], &[0, 2]);
        let r = h.check(Checks::UNIFORM_TOTAL_ORDER);
        assert_eq!(r.violations, vec![Violation::Lost { process: 1, id: a }]);
        assert_eq!((r.validity, r.agreement), (Some(true), Some(false)));
        // Non-uniform agreement: a crashed process's deliveries bind nobody.
        let r = h.check(Checks {
            uniform: false,
            ..Checks::UNIFORM_TOTAL_ORDER
        });
        assert!(r.is_ok(), "{r}");
    }

    #[test]
    fn silent_declared_process_still_owes_deliveries() {
        let a = id(0, 0);
        let mut h = hist(&[a], &[&[a]], &[]);
        assert!(h.check(Checks::ALL).is_ok());
        h.add_process(3);
        let r = h.check(Checks::ALL);
        assert_eq!(r.violations, vec![Violation::Lost { process: 3, id: a }]);
        assert_eq!(r.checked.processes, 2);
    }

    #[test]
    fn crashed_log_may_be_a_strict_prefix() {
        let s = [id(0, 0), id(1, 0), id(0, 1), id(1, 1)];
        let h = hist(&s, &[&s, &s, &s[..1], &[]], &[2, 3]);
        let r = h.check(Checks::ALL);
        assert!(r.is_ok(), "{r}");
        // The same prefix at a correct process is a loss, not an order bug.
        let r = hist(&s, &[&s, &s[..2]], &[]).check(Checks::ALL);
        assert_eq!(r.total_order, Some(true));
        assert_eq!(r.agreement, Some(false));
        assert_eq!(r.fifo, Some(true));
    }

    #[test]
    fn crashed_log_skipping_a_message_breaks_uniform_total_order() {
        let (a, b, c) = (id(0, 0), id(1, 0), id(2, 0));
        let s = [a, b, c];
        // Process 2 delivered c without b; the others delivered b before c.
        let h = hist(&s, &[&s, &s, &[a, c]], &[2]);
        let r = h.check(ONLY_TOTAL_ORDER);
        assert_eq!(
            r.violations,
            vec![Violation::Diverged {
                process: 2,
                reference: 0,
                index: 1,
                expected: b,
                got: c
            }]
        );
        // Non-uniform total order only constrains correct processes.
        let r = h.check(Checks {
            uniform: false,
            ..ONLY_TOTAL_ORDER
        });
        assert!(r.is_ok(), "{r}");
    }

    #[test]
    fn swapped_pair_is_diverged_and_out_of_order() {
        let (a, b, c, d) = (id(0, 0), id(1, 0), id(0, 1), id(1, 1));
        let h = hist(&[a, b, c, d], &[&[a, b, c, d], &[a, c, b, d]], &[]);
        let r = h.check(Checks::UNIFORM_TOTAL_ORDER);
        assert_eq!(
            r.violations,
            vec![
                Violation::Diverged {
                    process: 1,
                    reference: 0,
                    index: 1,
                    expected: b,
                    got: c
                },
                Violation::OutOfOrder {
                    process: 1,
                    reference: 0,
                    first: c,
                    second: b
                }
            ]
        );
        assert_eq!(r.total_order, Some(false));
        assert_eq!(
            (r.validity, r.integrity, r.agreement),
            (Some(true), Some(true), Some(true))
        );
    }

    #[test]
    fn reference_is_the_longest_log_ties_to_lowest_id() {
        let (a, b) = (id(0, 0), id(1, 0));
        let r = hist(&[a, b], &[&[a], &[b, a]], &[]).check(ONLY_TOTAL_ORDER);
        assert_eq!(
            r.violations,
            vec![Violation::Diverged {
                process: 0,
                reference: 1,
                index: 0,
                expected: b,
                got: a
            }]
        );
        let r = hist(&[a, b], &[&[a, b], &[b, a]], &[]).check(ONLY_TOTAL_ORDER);
        assert!(matches!(
            r.violations[..],
            [
                Violation::Diverged {
                    process: 1,
                    reference: 0,
                    ..
                },
                Violation::OutOfOrder {
                    process: 1,
                    reference: 0,
                    ..
                }
            ]
        ));
    }

    #[test]
    fn divergence_index_is_the_raw_log_position() {
        let (a, b, c) = (id(0, 0), id(0, 1), id(0, 2));
        // The duplicate is ignored for the order but counted in the index.
        let r = hist(&[a, b, c], &[&[a, b, c], &[a, a, c]], &[]).check(ONLY_TOTAL_ORDER);
        assert_eq!(
            r.violations,
            vec![Violation::Diverged {
                process: 1,
                reference: 0,
                index: 2,
                expected: b,
                got: c
            }]
        );
    }

    #[test]
    fn two_messages_at_one_sn_conflict() {
        let (a, b, c) = (id(0, 0), id(1, 0), id(2, 0));
        let mut h = hist(&[a, b, c], &[], &[]);
        for (p, second) in [(0, b), (1, c), (2, c)] {
            h.record_delivery(p, Some(0), a, payload(a));
            h.record_delivery(p, Some(1), second, payload(second));
        }
        let r = h.check(ONLY_TOTAL_ORDER);
        // Reported once per extra message, then the prefix divergence.
        assert_eq!(
            r.violations[..2],
            [
                Violation::Conflict { sn: 1, a: b, b: c },
                Violation::Diverged {
                    process: 1,
                    reference: 0,
                    index: 1,
                    expected: b,
                    got: c
                }
            ]
        );
        assert_eq!(r.violations.len(), 3);
    }

    #[test]
    fn one_message_at_two_sns_is_renumbered() {
        let (a, b) = (id(0, 0), id(1, 0));
        let mut h = hist(&[a, b], &[], &[]);
        for (p, sn_b) in [(0, 1), (1, 2)] {
            h.record_delivery(p, Some(0), a, payload(a));
            h.record_delivery(p, Some(sn_b), b, payload(b));
        }
        let r = h.check(Checks::ALL);
        assert_eq!(
            r.violations,
            vec![Violation::Renumbered { id: b, a: 1, b: 2 }]
        );
    }

    #[test]
    fn sn_going_down_in_one_log_is_caught_even_alone() {
        let (a, b, c) = (id(0, 0), id(1, 0), id(2, 0));
        let mut h = hist(&[a, b, c], &[], &[]);
        h.record_delivery(0, Some(0), a, payload(a));
        h.record_delivery(0, Some(2), c, payload(c));
        h.record_delivery(0, None, b, payload(b));
        h.record_delivery(0, Some(1), b, payload(b));
        // A second regression in the same log is a consequence: not listed.
        h.record_delivery(0, Some(0), a, payload(a));
        let r = h.check(ONLY_TOTAL_ORDER);
        assert_eq!(
            r.violations,
            vec![Violation::SnRegressed {
                process: 0,
                index: 3,
                previous: 2,
                sn: 1
            }]
        );
    }

    #[test]
    fn fifo_violation_is_reported() {
        let (a0, a1, a2) = (id(0, 0), id(0, 1), id(0, 2));
        let s = [a0, a1, a2];
        let h = hist(&s, &[&[a0, a2, a1], &[a0, a2, a1]], &[]);
        let r = h.check(Checks::ALL);
        // Same order everywhere: only FIFO is broken.
        assert_eq!(r.total_order, Some(true));
        assert_eq!(r.fifo, Some(false));
        assert_eq!(
            r.violations,
            vec![
                Violation::FifoViolation {
                    process: 0,
                    sender: 0,
                    earlier: 1,
                    later: 2
                },
                Violation::FifoViolation {
                    process: 1,
                    sender: 0,
                    earlier: 1,
                    later: 2
                },
            ]
        );
    }

    #[test]
    fn fifo_inversion_is_reported_once_per_sender_and_log() {
        let a: Vec<MsgId> = (0..4).map(|c| id(0, c)).collect();
        let (b0, b1) = (id(1, 0), id(1, 1));
        // a3 comes early: a1 and a2 are both late, one inversion of sender 0;
        // sender 1 has its own.
        let log = [a[0], a[3], b1, a[1], a[2], b0];
        let h = hist(&[a[0], a[1], a[2], a[3], b0, b1], &[&log, &log], &[]);
        let r = h.check(ONLY_FIFO);
        let first = |process| {
            [
                Violation::FifoViolation {
                    process,
                    sender: 0,
                    earlier: 1,
                    later: 3,
                },
                Violation::FifoViolation {
                    process,
                    sender: 1,
                    earlier: 0,
                    later: 1,
                },
            ]
        };
        assert_eq!(r.violations, [first(0), first(1)].concat());
    }

    #[test]
    fn fifo_gap_is_reported_only_for_broadcast_counters() {
        let (a0, a1, a2, a3, b0) = (id(0, 0), id(0, 1), id(0, 2), id(0, 3), id(1, 0));
        let h = hist(&[a0, a1, a2, a3, b0], &[&[b0, a0, a3], &[]], &[]);
        let r = h.check(ONLY_FIFO);
        assert_eq!(
            r.violations,
            vec![
                Violation::FifoGap {
                    process: 0,
                    sender: 0,
                    missing: 1,
                    later: 3
                },
                Violation::FifoGap {
                    process: 0,
                    sender: 0,
                    missing: 2,
                    later: 3
                },
            ]
        );
        // Counter 1 never broadcast: skipping it is no gap.
        let h = hist(&[a0, a2], &[&[a0, a2]], &[]);
        assert!(h.check(Checks::ALL).is_ok());
    }

    #[test]
    fn fifo_gap_at_crashed_process_counts_only_when_uniform() {
        let (a0, a1, a2) = (id(0, 0), id(0, 1), id(0, 2));
        let h = hist(&[a0, a1, a2], &[&[a0, a1, a2], &[a0, a2]], &[1]);
        assert_eq!(
            h.check(ONLY_FIFO).violations,
            vec![Violation::FifoGap {
                process: 1,
                sender: 0,
                missing: 1,
                later: 2
            }]
        );
        let non_uniform = Checks {
            uniform: false,
            ..ONLY_FIFO
        };
        assert!(h.check(non_uniform).is_ok());
    }

    #[test]
    fn disabled_checks_report_nothing() {
        let a = id(0, 0);
        let h = hist(&[], &[&[a, a], &[]], &[]);
        assert!(!h.check(Checks::ALL).is_ok());
        let r = h.check(Checks::NONE);
        assert!(r.is_ok());
        assert_eq!(
            (r.validity, r.integrity, r.agreement, r.total_order, r.fifo),
            (None, None, None, None, None)
        );
        assert_eq!(r.checked.deliveries, 2);
    }

    #[test]
    fn from_parts_matches_the_builder() {
        let (a, b) = (id(0, 0), id(1, 0));
        let built = hist(&[a, b], &[&[a, b], &[a]], &[1]);
        let d = |m| Delivery {
            sn: None,
            id: m,
            payload: payload(m),
        };
        let parts = History::from_parts(
            [0, 1],
            [(0, a, payload(a)), (1, b, payload(b))],
            [(0, d(a)), (0, d(b)), (1, d(a))],
            [1],
        );
        assert_eq!(parts, built);
        assert_eq!(parts.deliveries_of(0).len(), 2);
        assert_eq!(parts.broadcasts_of(1), &[(b, payload(b))]);
        assert!(parts.is_correct(0) && !parts.is_correct(1));
        assert_eq!(parts.processes().collect::<Vec<_>>(), [0, 1]);
    }

    #[test]
    fn display_lists_twenty_violations_and_the_counts() {
        let mut h = History::with_processes([0, 1]);
        for c in 0..25 {
            h.record_broadcast(0, id(0, c), payload(id(0, c)));
        }
        let text = h.check(Checks::UNIFORM_TOTAL_ORDER).to_string();
        assert!(
            text.starts_with("broadcast check: 25 violation(s)\n"),
            "{text}"
        );
        assert!(text.contains("validity: VIOLATED, integrity: ok"), "{text}");
        assert!(text.contains("fifo: not checked"), "{text}");
        assert!(
            text.contains(
                "checked 2 processes (2 correct), 25 broadcasts, 0 deliveries of 0 messages"
            ),
            "{text}"
        );
        assert!(text.contains("  - lost: correct process 0 never delivered 0/19\n"));
        assert!(!text.contains("0/20\n"), "{text}");
        assert_eq!(text.matches("\n  - ").count(), 20);
        assert!(text.ends_with("  ... and 5 more\n"), "{text}");
        let ok = History::new().check(Checks::ALL).to_string();
        assert!(ok.starts_with("broadcast check: ok\n"), "{ok}");
    }

    /// A run that respects every property: processes `0..n` deliver
    /// prefixes of one FIFO-respecting sequence; correct ones all of it,
    /// crashed ones a cut of it; crashed senders also broadcast a few last
    /// messages nobody delivered. Two processes are always correct.
    #[derive(Clone, Debug)]
    struct Run {
        n: u16,
        crashed: Vec<bool>,
        /// A process that is always correct.
        keep: u16,
        sent: Vec<MsgId>,
        /// The common sequence; a message's sequence number is its index.
        seq: Vec<MsgId>,
        logs: Vec<Vec<MsgId>>,
        /// Whether deliveries carry sequence numbers.
        sns: bool,
    }

    impl Run {
        fn history(&self) -> History {
            let sn_of: BTreeMap<MsgId, u64> =
                self.seq.iter().zip(0..).map(|(m, i)| (*m, i)).collect();
            let mut h = History::with_processes(0..self.n);
            for &m in &self.sent {
                h.record_broadcast(m.sender, m, payload(m));
            }
            for (p, log) in self.logs.iter().enumerate() {
                for &m in log {
                    let sn = sn_of.get(&m).copied().filter(|_| self.sns);
                    h.record_delivery(p as u16, sn, m, payload(m));
                }
            }
            for (p, _) in self.crashed.iter().enumerate().filter(|(_, c)| **c) {
                h.record_crash(p as u16);
            }
            h
        }
    }

    fn run() -> impl Strategy<Value = Run> {
        (2u16..=5)
            .prop_flat_map(|n| {
                let k = usize::from(n);
                (
                    Just(n),
                    prop::collection::vec(0..n, 2..40),
                    prop::collection::vec(any::<bool>(), k),
                    prop::collection::vec(0usize..=40, k),
                    prop::collection::vec(0u64..3, k),
                    0..n,
                    any::<bool>(),
                )
            })
            .prop_map(|(n, senders, mut crashed, cuts, extra, keep, sns)| {
                let k = usize::from(n);
                let keep = usize::from(keep);
                crashed[keep] = false;
                crashed[(keep + 1) % k] = false;
                let mut next = vec![0u64; k];
                let seq: Vec<MsgId> = senders
                    .iter()
                    .map(|&s| {
                        let c = &mut next[usize::from(s)];
                        *c += 1;
                        id(s, *c - 1)
                    })
                    .collect();
                let mut sent = seq.clone();
                for s in (0..k).filter(|s| crashed[*s]) {
                    for c in 0..extra[s] {
                        sent.push(id(s as u16, next[s] + c));
                    }
                }
                let logs = (0..k)
                    .map(|p| {
                        let len = if crashed[p] {
                            cuts[p].min(seq.len())
                        } else {
                            seq.len()
                        };
                        seq[..len].to_vec()
                    })
                    .collect();
                Run {
                    n,
                    crashed,
                    keep: keep as u16,
                    sent,
                    seq,
                    logs,
                    sns,
                }
            })
    }

    proptest! {
        #[test]
        fn prefixes_of_one_sequence_pass(run in run()) {
            let r = run.history().check(Checks::ALL);
            prop_assert!(r.is_ok(), "{}", r);
        }

        #[test]
        fn swapping_two_adjacent_deliveries_is_caught(
            run in run(),
            process in 0u16..5,
            at in any::<prop::sample::Index>(),
        ) {
            let mut run = run;
            let mut p = usize::from(process % run.n);
            if run.logs[p].len() < 2 {
                // A correct process's log holds the whole sequence (≥ 2).
                p = usize::from(run.keep);
            }
            let log = &mut run.logs[p];
            let i = at.index(log.len() - 1);
            log.swap(i, i + 1);
            let r = run.history().check(Checks::UNIFORM_TOTAL_ORDER);
            prop_assert_eq!(r.total_order, Some(false), "{}", r);
            prop_assert!(!r.is_ok());
        }
    }
}
