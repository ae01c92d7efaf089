//! `phasecast.History`: the shared property checker (`sim::check`) over
//! logs recorded anywhere (a UDP cluster, another implementation, a test).

use phasecast_core::sim::check::{Checks, History, MsgId};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt};

use crate::args;
use crate::simulation::{verdict_dict, Verdict};

fn parse_process(what: &str, v: &Bound<'_, PyAny>) -> PyResult<u16> {
    if !v.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be an int, not {}",
            args::type_name(v)
        )));
    }
    v.extract::<u16>()
        .map_err(|_| PyValueError::new_err(format!("{what} must be in 0 ..= 65535")))
}

fn parse_counter(v: &Bound<'_, PyAny>) -> PyResult<u64> {
    args::count("counter", v, 0, u64::MAX)
}

/// What every process broadcast and delivered, and which crashed; checked
/// by the same checker as the simulator's runs (FastCast §3.3: validity,
/// integrity, uniform agreement, total order; plus per-sender FIFO).
///
/// A message is identified by ``(sender, counter)``: the sender's own
/// numbering of its broadcasts, increasing in call order. Declare every
/// process (a silent correct process still owes its deliveries).
///
///     h = History(range(3))
///     h.broadcast(0, 0, b"a")
///     for p in range(3):
///         h.deliver(p, 0, 0, b"a", sn=0)
///     assert h.check()["ok"]
#[pyclass(module = "phasecast._core", name = "History")]
pub struct PyHistory {
    h: History,
}

#[pymethods]
impl PyHistory {
    #[new]
    #[pyo3(signature = (processes=None))]
    fn new(processes: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let mut h = History::new();
        if let Some(ps) = processes {
            for p in ps
                .try_iter()
                .map_err(|_| PyTypeError::new_err("processes must be an iterable of ints"))?
            {
                h.add_process(parse_process("process", &p?)?);
            }
        }
        Ok(PyHistory { h })
    }

    /// ``process`` broadcast its ``counter``-th message with ``payload``
    /// (record only broadcasts the protocol accepted).
    fn broadcast(
        &mut self,
        process: &Bound<'_, PyAny>,
        counter: &Bound<'_, PyAny>,
        payload: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let p = parse_process("process", process)?;
        let c = parse_counter(counter)?;
        let payload = args::payload(payload)?;
        self.h.record_broadcast(p, MsgId::new(p, c), payload);
        Ok(())
    }

    /// ``process`` delivered ``sender``'s ``counter``-th message with
    /// ``payload`` (at sequence number ``sn``, if the protocol has one).
    /// Call in delivery order.
    #[pyo3(signature = (process, sender, counter, payload, sn=None))]
    fn deliver(
        &mut self,
        process: &Bound<'_, PyAny>,
        sender: &Bound<'_, PyAny>,
        counter: &Bound<'_, PyAny>,
        payload: &Bound<'_, PyAny>,
        sn: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let p = parse_process("process", process)?;
        let s = parse_process("sender", sender)?;
        let c = parse_counter(counter)?;
        let sn = sn.map(|v| args::count("sn", v, 0, u64::MAX)).transpose()?;
        let payload = args::payload(payload)?;
        self.h.record_delivery(p, sn, MsgId::new(s, c), payload);
        Ok(())
    }

    /// ``process`` crashed at some point: it is not correct (its log may be
    /// a prefix, it owes nothing).
    fn crash(&mut self, process: &Bound<'_, PyAny>) -> PyResult<()> {
        let p = parse_process("process", process)?;
        self.h.record_crash(p);
        Ok(())
    }

    /// Runs the checker: a dict with ``ok``, ``validity``, ``integrity``,
    /// ``agreement``, ``total_order``, ``fifo`` (``None`` when not checked),
    /// ``violations`` (texts, Jepsen's names: lost, duplicated, diverged,
    /// ...) and the sizes checked. ``uniform=False`` checks the non-uniform
    /// variants (crashed processes' deliveries do not count).
    #[pyo3(signature = (fifo=true, uniform=true))]
    fn check<'py>(
        &self,
        py: Python<'py>,
        fifo: bool,
        uniform: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let checks = Checks {
            fifo,
            uniform,
            ..Checks::UNIFORM_TOTAL_ORDER
        };
        let r = self.h.check(checks);
        let crashed: Vec<u16> = self
            .h
            .processes()
            .filter(|p| !self.h.is_correct(*p))
            .collect();
        verdict_dict(
            py,
            Verdict {
                ok: r.is_ok(),
                validity: r.validity,
                integrity: r.integrity,
                agreement: r.agreement,
                total_order: r.total_order,
                fifo: r.fifo,
                violations: r.violations.iter().map(|v| v.to_string()).collect(),
                counts: [
                    ("processes", r.checked.processes as u64),
                    ("correct", r.checked.correct as u64),
                    ("broadcasts", r.checked.broadcasts as u64),
                    ("deliveries", r.checked.deliveries as u64),
                    ("messages", r.checked.messages as u64),
                ],
                crashed,
            },
        )
    }

    fn __repr__(&self) -> String {
        format!(
            "History(processes={:?})",
            self.h.processes().collect::<Vec<_>>()
        )
    }
}
