//! Python bindings of phasecast (`import phasecast`).
//!
//! The extension module `phasecast._core` holds what runs in Rust: the
//! simulation ([`simulation`]), the checker ([`check`]), the sans-IO node
//! ([`node`]), FastCast's bandwidth allocation and the experiment harnesses
//! ([`experiments`]). The Python package around it (`py/python/phasecast`)
//! adds the grids, DataFrames, progress bars and the command line.
//!
//! Every argument is validated here (see [`args`]): a bad one raises
//! `ValueError`, `TypeError` or `IndexError` and never reaches the core.

use phasecast_core::bandwidth::{bw_allocation, MAX_MEMBERS};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyInt, PyList};

mod args;
mod check;
mod experiments;
mod node;
mod simulation;
mod worker;

use experiments::{Change, LatencyParams, Net, ThroughputParams, TimelineParams};
use phasecast_core::Duration;
use worker::on_big_stack;

/// A requirement or capacity as given: an exact integer or a float.
enum Num {
    Int(u64),
    Float(f64),
}

fn num(what: &str, v: &Bound<'_, PyAny>) -> PyResult<Num> {
    if v.is_instance_of::<PyInt>() {
        return v
            .extract::<u64>()
            .map(Num::Int)
            .map_err(|_| PyValueError::new_err(format!("{what} must be in 0 ..= 2**64 - 1")));
    }
    if v.is_instance_of::<PyFloat>() {
        let f: f64 = v.extract()?;
        if !f.is_finite() || f < 0.0 {
            return Err(PyValueError::new_err(format!(
                "{what} must be finite and >= 0, got {f}"
            )));
        }
        return Ok(Num::Float(f));
    }
    Err(PyTypeError::new_err(format!(
        "{what} must be an int or a float, not {}",
        args::type_name(v)
    )))
}

/// FastCast's ``BW_allocation`` (Fig. 4, lines 34–47): the max-min fair
/// sending rate of process ``me`` when the processes ask for
/// ``requirements`` on links of capacity ``capacity`` (any one unit).
///
/// Every process computes its own share from the same requirements; no
/// receiver is then sent more than ``capacity``. With integers the result is
/// exact and rounded down like the core's (e.g. ``333`` for four processes
/// asking 400 of 1000); with floats it is the real-valued share (to about
/// 1e-15 relative).
///
/// >>> max_min_share([700, 600, 300], 0, 1000)   # FastCast §3.5
/// 500.0
#[pyfunction]
fn max_min_share(
    requirements: &Bound<'_, PyAny>,
    me: &Bound<'_, PyAny>,
    capacity: &Bound<'_, PyAny>,
) -> PyResult<f64> {
    if requirements.is_instance_of::<pyo3::types::PyString>() {
        return Err(PyTypeError::new_err(
            "requirements must be a sequence of numbers",
        ));
    }
    let mut reqs = Vec::new();
    for r in requirements
        .try_iter()
        .map_err(|_| PyTypeError::new_err("requirements must be a sequence of numbers"))?
    {
        reqs.push(num("each requirement", &r?)?);
    }
    if reqs.is_empty() || reqs.len() > MAX_MEMBERS {
        return Err(PyValueError::new_err(format!(
            "requirements must have 1 ..= {MAX_MEMBERS} entries, got {}",
            reqs.len()
        )));
    }
    let me = args::node_index("me", me, reqs.len())? as usize;
    let cap = num("capacity", capacity)?;
    let all_int = matches!(cap, Num::Int(_)) && reqs.iter().all(|r| matches!(r, Num::Int(_)));
    if all_int {
        let ints: Vec<u64> = reqs
            .iter()
            .map(|r| match r {
                Num::Int(i) => *i,
                Num::Float(_) => 0,
            })
            .collect();
        let Num::Int(c) = cap else { unreachable!() };
        return Ok(bw_allocation(&ints, me, c) as f64);
    }
    let f = |n: &Num| match n {
        Num::Int(i) => *i as f64,
        Num::Float(x) => *x,
    };
    let floats: Vec<f64> = reqs.iter().map(f).collect();
    let c = f(&cap);
    let max = floats.iter().copied().fold(c, f64::max);
    if max == 0.0 {
        return Ok(0.0);
    }
    // Scale every value by one power of two so the largest is near 2^62:
    // the integer algorithm then runs on 62 significant bits.
    let scale = 2f64.powi(62 - max.log2().ceil() as i32);
    let scaled: Vec<u64> = floats.iter().map(|x| (x * scale).round() as u64).collect();
    let share = bw_allocation(&scaled, me, (c * scale).round() as u64);
    Ok(share as f64 / scale)
}

fn net(
    nodes: &Bound<'_, PyAny>,
    max_nodes: u64,
    link_mbps: f64,
    one_way_us: f64,
    mtu: &Bound<'_, PyAny>,
    seed: &Bound<'_, PyAny>,
) -> PyResult<Net> {
    let nodes = args::count("nodes", nodes, 2, max_nodes)? as u16;
    if !(0.0..=1e9).contains(&one_way_us) {
        return Err(PyValueError::new_err(format!(
            "one_way_us must be in [0, 1e9], got {one_way_us}"
        )));
    }
    Ok(Net {
        nodes,
        link_bps: args::mbps_to_bps("link_mbps", link_mbps)?,
        one_way: Duration::from_micros(one_way_us.round() as u64),
        mtu: args::count("mtu", mtu, phasecast_core::wire::MIN_MTU as u64, 9000)? as usize,
        seed: args::seed(seed)?,
    })
}

fn seconds(what: &str, s: f64) -> PyResult<Duration> {
    if !s.is_finite() || s <= 0.0 || s > 3600.0 {
        return Err(PyValueError::new_err(format!(
            "{what} must be in (0, 3600] seconds, got {s}"
        )));
    }
    Ok(Duration::from_micros((s * 1e6).round() as u64))
}

fn wire_into(d: &Bound<'_, PyDict>, w: &experiments::Wire) -> PyResult<()> {
    d.set_item("datagrams", w.datagrams)?;
    d.set_item("bytes", w.bytes)?;
    d.set_item("header_bytes", w.header_bytes)?;
    d.set_item("simulator_steps", w.steps)?;
    Ok(())
}

/// See `phasecast.experiments.fastcast_throughput`.
#[pyfunction]
#[pyo3(signature = (nodes, link_mbps, msg_bytes, duration_s, warmup_s, mtu, one_way_us, allocation, seed))]
#[allow(clippy::too_many_arguments)]
fn _fastcast_throughput<'py>(
    py: Python<'py>,
    nodes: &Bound<'py, PyAny>,
    link_mbps: f64,
    msg_bytes: &Bound<'py, PyAny>,
    duration_s: f64,
    warmup_s: f64,
    mtu: &Bound<'py, PyAny>,
    one_way_us: f64,
    allocation: bool,
    seed: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    let net = net(nodes, 63, link_mbps, one_way_us, mtu, seed)?;
    let duration = seconds("duration_s", duration_s)?;
    if !warmup_s.is_finite() || warmup_s < 0.0 || warmup_s >= duration_s {
        return Err(PyValueError::new_err(
            "warmup_s must be >= 0 and shorter than duration_s",
        ));
    }
    let p = ThroughputParams {
        net,
        msg_bytes: args::count("msg_bytes", msg_bytes, 8, 65536)? as usize,
        duration,
        warmup: Duration::from_micros((warmup_s * 1e6).round() as u64),
        allocation,
    };
    let r = py.detach(move || on_big_stack(move || experiments::throughput(p)))?;
    let d = PyDict::new(py);
    d.set_item("nodes", net.nodes)?;
    d.set_item("mtu", net.mtu)?;
    d.set_item("msg_bytes", p.msg_bytes)?;
    d.set_item("throughput_mbps", r.mean_mbps)?;
    d.set_item("optimal_mbps", r.optimal_mbps)?;
    d.set_item("ratio", r.mean_mbps / r.optimal_mbps)?;
    d.set_item("per_node_mbps", r.per_node_mbps)?;
    d.set_item("records_per_datagram", r.records_per_datagram)?;
    d.set_item("retransmissions", r.retransmissions)?;
    wire_into(&d, &r.wire)?;
    Ok(d)
}

fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * q) as usize).min(sorted.len() - 1);
    sorted[i] as f64 / 1000.0
}

fn mean_ms(v: &[u64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.iter().sum::<u64>() as f64 / v.len() as f64 / 1000.0
}

fn paxos_result_into(
    d: &Bound<'_, PyDict>,
    r: &phasecast_core::sim::paxos::PaxosResult,
) -> PyResult<()> {
    d.set_item("decided", r.decided)?;
    d.set_item("mean_latency_ms", r.mean_latency_ms)?;
    d.set_item("p50_latency_ms", r.p50_latency_ms)?;
    d.set_item("p99_latency_ms", r.p99_latency_ms)?;
    d.set_item("learner_latency_ms", r.learner_latency_ms)?;
    d.set_item("ip_bytes", r.ip_bytes)?;
    d.set_item("datagrams", r.datagrams)?;
    d.set_item("messages", r.messages)?;
    d.set_item("buffered", r.buffered)?;
    d.set_item("concurrency", r.concurrency)?;
    Ok(())
}

/// See `phasecast.experiments.omaha`.
#[pyfunction]
#[pyo3(signature = (load, proba_buf, timeout_rtt, instances, warmup, loss, policy, horizon_rtt, seed))]
#[allow(clippy::too_many_arguments)]
fn _omaha<'py>(
    py: Python<'py>,
    load: f64,
    proba_buf: f64,
    timeout_rtt: f64,
    instances: &Bound<'py, PyAny>,
    warmup: &Bound<'py, PyAny>,
    loss: f64,
    policy: &str,
    horizon_rtt: f64,
    seed: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    use phasecast_core::sim::paxos::{compare, PaxosParams};
    use phasecast_core::Aggregation;
    if !load.is_finite() || !(0.1..=100.0).contains(&load) {
        return Err(PyValueError::new_err(
            "load must be within 0.1 ..= 100 concurrent instances",
        ));
    }
    let proba_buf = args::probability("proba_buf", proba_buf)? as f32;
    let loss = args::probability("loss", loss)?;
    if loss >= 0.5 {
        return Err(PyValueError::new_err("loss must be below 0.5"));
    }
    for (what, v) in [("timeout_rtt", timeout_rtt), ("horizon_rtt", horizon_rtt)] {
        if !v.is_finite() || !(0.0..=100.0).contains(&v) {
            return Err(PyValueError::new_err(format!(
                "{what} must be within 0 ..= 100"
            )));
        }
    }
    let instances = args::count("instances", instances, 1, 1_000_000)? as u32;
    let warmup = args::count("warmup", warmup, 0, 1_000_000)? as u32;
    if warmup >= instances {
        return Err(PyValueError::new_err(
            "warmup must be smaller than instances",
        ));
    }
    let d = PaxosParams::default();
    let rtt_us = d.rtt.as_micros() as f64;
    let aggregation = match policy {
        "omaha" => Aggregation::Omaha,
        "none" => Aggregation::None,
        "time" | "time_based" => Aggregation::TimeBased,
        "horizon" => Aggregation::Horizon {
            horizon: Duration::from_micros((horizon_rtt * rtt_us) as u64),
        },
        "criticality" => Aggregation::Criticality,
        other => {
            return Err(PyValueError::new_err(format!(
                "policy must be one of omaha, none, time_based, horizon, criticality; got {other:?}"
            )))
        }
    };
    let p = PaxosParams {
        load,
        instances,
        warmup,
        aggregation,
        proba_buf,
        timeout: Duration::from_micros((timeout_rtt * rtt_us) as u64),
        loss,
        seed: args::seed(seed)?,
        ..d
    };
    let c = py.detach(move || on_big_stack(move || compare(&p)))?;
    let out = PyDict::new(py);
    out.set_item("bandwidth_saving", c.bandwidth_saving)?;
    out.set_item("latency_degradation", c.latency_degradation)?;
    let b = PyDict::new(py);
    paxos_result_into(&b, &c.baseline)?;
    let q = PyDict::new(py);
    paxos_result_into(&q, &c.policy)?;
    out.set_item("baseline", b)?;
    out.set_item("policy", q)?;
    out.set_item("load", load)?;
    out.set_item("proba_buf", proba_buf)?;
    out.set_item("timeout_rtt", timeout_rtt)?;
    out.set_item("loss", loss)?;
    out.set_item("policy_name", policy)?;
    Ok(out)
}

/// See `phasecast.experiments.qsm`.
#[pyfunction]
#[pyo3(signature = (receivers, groups, loss_scenario, messages, seed, token_period_ms, duration_s, rate, msg_bytes, link_mbps, check_order))]
#[allow(clippy::too_many_arguments)]
fn _qsm<'py>(
    py: Python<'py>,
    receivers: &Bound<'py, PyAny>,
    groups: &Bound<'py, PyAny>,
    loss_scenario: &str,
    messages: Option<&Bound<'py, PyAny>>,
    seed: &Bound<'py, PyAny>,
    token_period_ms: f64,
    duration_s: f64,
    rate: &Bound<'py, PyAny>,
    msg_bytes: &Bound<'py, PyAny>,
    link_mbps: f64,
    check_order: bool,
) -> PyResult<Bound<'py, PyDict>> {
    use phasecast_core::sim::qsm::{run, QsmParams, Scenario};
    let max_receivers = (phasecast_core::qsm::MAX_REGION_MEMBERS - 1) as u64;
    let receivers = args::count("receivers", receivers, 1, max_receivers)? as u16;
    let groups = args::count("groups", groups, 1, 8192)? as u32;
    let scenario = match loss_scenario {
        "none" => Scenario::Undisturbed,
        "bursty" | "loss" => Scenario::Loss,
        "sleep" => Scenario::Sleep,
        other => {
            return Err(PyValueError::new_err(format!(
                "loss_scenario must be 'none', 'bursty' or 'sleep', got {other:?}"
            )))
        }
    };
    let messages = messages
        .map(|m| args::count("messages", m, 1, 100_000_000))
        .transpose()?;
    let token = args::positive_duration("token_period_ms", token_period_ms)?;
    if token.as_micros() < 1000 || token.as_micros() > 60_000_000 {
        return Err(PyValueError::new_err(
            "token_period_ms must be within 1 ..= 60000",
        ));
    }
    if !duration_s.is_finite() || !(0.05..=3600.0).contains(&duration_s) {
        return Err(PyValueError::new_err(
            "duration_s must be within 0.05 ..= 3600 seconds",
        ));
    }
    let rate = args::count("rate", rate, 0, 10_000_000)?;
    let payload_max = 1500 - 28 - 64; // well inside one datagram
    let msg_bytes = args::count("msg_bytes", msg_bytes, 8, payload_max)? as usize;
    let link_bps = args::mbps_to_bps("link_mbps", link_mbps)?;
    let p = QsmParams {
        receivers,
        groups,
        scenario,
        token_period: token,
        send_for: Duration::from_micros((duration_s * 1e6) as u64),
        messages,
        rate,
        msg_bytes,
        link_bps,
        seed: args::seed(seed)?,
        check_order,
        ..QsmParams::default()
    };
    let o = py.detach(move || on_big_stack(move || run(&p)))?;
    let d = PyDict::new(py);
    d.set_item("all_delivered", o.all_delivered)?;
    d.set_item("fifo_violations", o.fifo_violations)?;
    d.set_item("corrupted", o.corrupted)?;
    d.set_item("throughput_msgs_per_s", o.throughput)?;
    // A region of one partition (<= 25 receivers) has no ring of partition
    // leaders: its token round trip is the partition ring's.
    let two_levels = o.rtt_avg_ms > 0.0;
    d.set_item(
        "token_rtt_ms",
        if two_levels {
            o.rtt_avg_ms
        } else {
            o.prtt_avg_ms
        },
    )?;
    d.set_item(
        "token_rtt_max_ms",
        if two_levels {
            o.rtt_max_ms
        } else {
            o.prtt_max_ms
        },
    )?;
    d.set_item("region_token_rtt_ms", o.rtt_avg_ms)?;
    d.set_item("region_token_rtt_max_ms", o.rtt_max_ms)?;
    d.set_item("partition_token_rtt_ms", o.prtt_avg_ms)?;
    d.set_item("partition_token_rtt_max_ms", o.prtt_max_ms)?;
    d.set_item("ack_latency_ms", o.ack_avg_ms)?;
    d.set_item("ack_latency_max_ms", o.ack_max_ms)?;
    d.set_item("state_bytes_per_group", o.memory.per_group)?;
    d.set_item("group_table_bytes", o.memory.per_group * o.memory.groups)?;
    d.set_item("qsm_state_bytes", o.memory.total)?;
    d.set_item("memory_per_node_bytes", o.node_bytes)?;
    d.set_item("payload_bytes_max_sender", o.storage_max.0)?;
    d.set_item("payload_bytes_max_receiver", o.storage_max.1)?;
    d.set_item("pending_avg", o.pending_avg)?;
    d.set_item("pending_max", o.pending_max)?;
    d.set_item("sent", o.sent)?;
    d.set_item("min_delivered", o.min_delivered)?;
    d.set_item("forwards", o.forwards)?;
    d.set_item("remulticasts", o.remulticasts)?;
    d.set_item("duplicates", o.duplicates)?;
    d.set_item("send_s", o.send_secs)?;
    d.set_item("victim", o.victim.map(|v| v.0))?;
    d.set_item("token_period_ms", token.as_micros() as f64 / 1000.0)?;
    d.set_item("receivers", receivers)?;
    d.set_item("groups", groups)?;
    d.set_item("loss_scenario", loss_scenario)?;
    d.set_item("end_ms", o.end.as_micros() as f64 / 1000.0)?;
    Ok(d)
}

/// See `phasecast.experiments.fastcast_latency`.
#[pyfunction]
#[pyo3(signature = (nodes, msg_bytes, rate_mbps, duration_s, link_mbps, mtu, one_way_us, seed))]
#[allow(clippy::too_many_arguments)]
fn _fastcast_latency<'py>(
    py: Python<'py>,
    nodes: &Bound<'py, PyAny>,
    msg_bytes: &Bound<'py, PyAny>,
    rate_mbps: f64,
    duration_s: f64,
    link_mbps: f64,
    mtu: &Bound<'py, PyAny>,
    one_way_us: f64,
    seed: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    let net = net(nodes, 63, link_mbps, one_way_us, mtu, seed)?;
    let p = LatencyParams {
        net,
        msg_bytes: args::count("msg_bytes", msg_bytes, 8, 65536)? as usize,
        rate_bps: args::mbps_to_bps("rate_mbps", rate_mbps)?,
        duration: seconds("duration_s", duration_s)?,
    };
    if p.rate_bps > net.link_bps {
        return Err(PyValueError::new_err("rate_mbps must not exceed link_mbps"));
    }
    let mut r = py.detach(move || on_big_stack(move || experiments::latency(p)))?;
    r.sender_us.sort_unstable();
    r.all_us.sort_unstable();
    let d = PyDict::new(py);
    d.set_item("nodes", net.nodes)?;
    d.set_item("msg_bytes", p.msg_bytes)?;
    d.set_item("messages", r.messages)?;
    d.set_item("mean_ms", mean_ms(&r.sender_us))?;
    d.set_item("p50_ms", percentile(&r.sender_us, 0.5))?;
    d.set_item("p99_ms", percentile(&r.sender_us, 0.99))?;
    d.set_item(
        "max_ms",
        r.sender_us.last().map_or(f64::NAN, |&v| v as f64 / 1000.0),
    )?;
    d.set_item("mean_all_ms", mean_ms(&r.all_us))?;
    d.set_item("p99_all_ms", percentile(&r.all_us, 0.99))?;
    d.set_item("deliveries", r.all_us.len())?;
    wire_into(&d, &r.wire)?;
    Ok(d)
}

/// See `phasecast.experiments.fastcast_incr`.
#[pyfunction]
#[pyo3(signature = (nodes, requester, link_mbps, mtu, one_way_us, seed))]
fn _fastcast_incr<'py>(
    py: Python<'py>,
    nodes: &Bound<'py, PyAny>,
    requester: &Bound<'py, PyAny>,
    link_mbps: f64,
    mtu: &Bound<'py, PyAny>,
    one_way_us: f64,
    seed: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    let net = net(nodes, 63, link_mbps, one_way_us, mtu, seed)?;
    let requester = args::node_index("requester", requester, usize::from(net.nodes))?;
    let r = py.detach(move || on_big_stack(move || experiments::incr(net, requester)))?;
    let d = PyDict::new(py);
    let rtt_us = 2.0 * net.one_way.as_micros() as f64;
    d.set_item("nodes", net.nodes)?;
    d.set_item("rtt_ms", rtt_us / 1000.0)?;
    match r {
        Some(t) => {
            d.set_item("ms", t.as_micros() as f64 / 1000.0)?;
            d.set_item(
                "rtts",
                if rtt_us > 0.0 {
                    t.as_micros() as f64 / rtt_us
                } else {
                    f64::NAN
                },
            )?;
        }
        None => {
            d.set_item("ms", py.None())?;
            d.set_item("rtts", py.None())?;
        }
    }
    Ok(d)
}

/// See `phasecast.experiments.fastcast_bw_trace`: rows as dicts, plus the
/// errors the state machines returned.
#[pyfunction]
fn _fastcast_bw_trace(py: Python<'_>) -> PyResult<(Bound<'_, PyList>, Vec<String>)> {
    let (rows, errors) = experiments::bw_trace();
    let out = PyList::empty(py);
    for r in rows {
        let d = PyDict::new(py);
        d.set_item("table", r.table)?;
        d.set_item("step", r.step)?;
        d.set_item("process", format!("p{}", r.process))?;
        d.set_item("bw_requirements", r.ours.0.to_vec())?;
        d.set_item("current_bw", r.ours.1)?;
        d.set_item("ongoing_increase", r.ours.2)?;
        d.set_item("acks", r.ours.3)?;
        d.set_item("delivered_req", r.ours.4)?;
        d.set_item("paper_bw_requirements", r.paper.0.to_vec())?;
        d.set_item("paper_current_bw", r.paper.1)?;
        d.set_item("paper_ongoing_increase", r.paper.2)?;
        d.set_item("paper_acks", r.paper.3)?;
        d.set_item("paper_delivered_req", r.paper.4)?;
        d.set_item("matches_paper", r.ours == r.paper)?;
        d.set_item("event", r.event)?;
        out.append(d)?;
    }
    Ok((out, errors))
}

/// See `phasecast.experiments.fastcast_bw_timeline`: columns as a dict.
#[pyfunction]
#[pyo3(signature = (nodes, link_mbps, mtu, one_way_us, changes, end_ms, bin_ms, min_bytes, max_bytes, seed))]
#[allow(clippy::too_many_arguments)]
fn _fastcast_bw_timeline<'py>(
    py: Python<'py>,
    nodes: &Bound<'py, PyAny>,
    link_mbps: f64,
    mtu: &Bound<'py, PyAny>,
    one_way_us: f64,
    changes: Vec<(f64, Bound<'py, PyAny>, f64)>,
    end_ms: f64,
    bin_ms: f64,
    min_bytes: &Bound<'py, PyAny>,
    max_bytes: &Bound<'py, PyAny>,
    seed: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    let net = net(nodes, 63, link_mbps, one_way_us, mtu, seed)?;
    let end = args::instant("end_ms", end_ms)?;
    if end.as_micros() == 0 || end_ms > 60_000.0 {
        return Err(PyValueError::new_err("end_ms must be in (0, 60000]"));
    }
    let bin = args::positive_duration("bin_ms", bin_ms)?;
    if end.as_micros() / bin.as_micros() > 100_000 {
        return Err(PyValueError::new_err(
            "bin_ms is too small for end_ms (over 100000 bins)",
        ));
    }
    let min_bytes = args::count("min_bytes", min_bytes, 8, 65536)? as usize;
    let max_bytes = args::count("max_bytes", max_bytes, 8, 65536)? as usize;
    if max_bytes < min_bytes {
        return Err(PyValueError::new_err("max_bytes must be >= min_bytes"));
    }
    let mut ch = Vec::new();
    for (at_ms, node, delta_mbps) in changes {
        let node = args::node_index("change node", &node, usize::from(net.nodes))?;
        if !delta_mbps.is_finite() || delta_mbps == 0.0 || delta_mbps.abs() > 1e9 {
            return Err(PyValueError::new_err(format!(
                "each change's delta_mbps must be a non-zero finite rate, got {delta_mbps}"
            )));
        }
        let bytes = (delta_mbps.abs() * 1e6 / 8.0).round().max(1.0) as i64;
        ch.push(Change {
            at: args::instant("change time_ms", at_ms)?,
            node,
            delta: if delta_mbps < 0.0 { -bytes } else { bytes },
        });
    }
    let p = TimelineParams {
        net,
        changes: ch,
        end,
        bin,
        min_bytes,
        max_bytes,
    };
    let t = py.detach(move || on_big_stack(move || experiments::timeline(p)))?;
    let d = PyDict::new(py);
    d.set_item("time_ms", t.time_ms)?;
    for i in 0..usize::from(net.nodes) {
        d.set_item(format!("req_{i}"), &t.req[i])?;
        d.set_item(format!("alloc_{i}"), &t.alloc[i])?;
        d.set_item(format!("rate_{i}"), &t.rate[i])?;
    }
    d.set_item("achieved_mbps", t.achieved)?;
    d.set_item("optimal_mbps", t.optimal)?;
    let out = PyDict::new(py);
    out.set_item("columns", d)?;
    out.set_item("increases", t.increases)?;
    out.set_item("capacity_mbps", args::bytes_to_mbps(net.capacity()))?;
    wire_into(&out, &t.wire)?;
    Ok(out)
}

/// phasecast's Rust core, for Python: the deterministic network simulator
/// with real nodes (`Simulation`), the broadcast property checker
/// (`History`), the sans-IO node (`Node`), FastCast's bandwidth allocation
/// (`max_min_share`) and the experiment harnesses used by
/// `phasecast.experiments`.
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("MAX_NODES", simulation::MAX_NODES)?;
    m.add("MAX_SIM_MTU", simulation::MAX_SIM_MTU)?;
    m.add("TAG_BYTES", simulation::TAG)?;
    m.add_function(wrap_pyfunction!(max_min_share, m)?)?;
    m.add_function(wrap_pyfunction!(_fastcast_throughput, m)?)?;
    m.add_function(wrap_pyfunction!(_fastcast_latency, m)?)?;
    m.add_function(wrap_pyfunction!(_omaha, m)?)?;
    m.add_function(wrap_pyfunction!(_qsm, m)?)?;
    m.add_function(wrap_pyfunction!(_fastcast_incr, m)?)?;
    m.add_function(wrap_pyfunction!(_fastcast_bw_trace, m)?)?;
    m.add_function(wrap_pyfunction!(_fastcast_bw_timeline, m)?)?;
    m.add_class::<simulation::Simulation>()?;
    m.add_class::<check::PyHistory>()?;
    m.add_class::<node::PyNode>()?;
    Ok(())
}
