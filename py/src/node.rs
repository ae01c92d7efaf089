//! `phasecast.Node`: the real sans-IO node, driven from Python.
//!
//! The host loop is the core's: hand it datagrams and the time, pull
//! datagrams to send, events and the next deadline. Python owns the sockets
//! (see `phasecast.demo`), so anything can carry the datagrams: UDP, a
//! queue in a test, a simulated network of one's own.
//!
//! Decisions:
//! * **Time.** Every call takes an optional `now_ms`. Without it the node
//!   reads its own monotonic clock (milliseconds since it was built); with
//!   it, the caller's clock (virtual time in a test). Time never goes
//!   backwards: an earlier `now_ms` counts as the latest time seen.
//! * **Backpressure** is a return value, not an exception: `broadcast`
//!   returns `None` when the core says `Full` (retry after deliveries).
//! * The node is a `HostNode` (up to 63 members, 1 MiB payload pool, any MTU
//!   up to 65507), built on a worker thread's stack (2.4 MiB) and boxed.

use phasecast_core::sim::NodeEvent;
use phasecast_core::{Config, Destination, Error, HostNode, Instant, NodeId, ViewPolicy};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyInt};

use crate::args;
use crate::worker::on_big_stack;

/// Sets `type` and the fields of `e` in `d`; `strip` bytes of tag are
/// removed from delivered payloads (the simulation's identity tag).
pub fn event_fields(
    py: Python<'_>,
    d: &Bound<'_, PyDict>,
    e: &NodeEvent,
    strip: usize,
) -> PyResult<()> {
    match e {
        NodeEvent::Received {
            from,
            group,
            msg,
            payload,
        } => {
            d.set_item("type", "received")?;
            d.set_item("sender", from.0)?;
            d.set_item("group", group.map(|g| g.0))?;
            d.set_item("msg", msg)?;
            d.set_item("payload", PyBytes::new(py, payload))?;
        }
        NodeEvent::Delivered {
            sn,
            sender,
            payload,
        } => {
            d.set_item("type", "delivered")?;
            d.set_item("sn", sn)?;
            d.set_item("sender", sender.0)?;
            d.set_item(
                "payload",
                PyBytes::new(py, payload.get(strip..).unwrap_or(&[])),
            )?;
        }
        NodeEvent::ViewChanged { view_id, members } => {
            d.set_item("type", "view_changed")?;
            d.set_item("view_id", view_id)?;
            d.set_item("members", members.iter().map(|m| m.0).collect::<Vec<_>>())?;
        }
        NodeEvent::Suspected { node } => {
            d.set_item("type", "suspected")?;
            d.set_item("suspect", node.0)?;
        }
        NodeEvent::Excluded => d.set_item("type", "excluded")?,
        NodeEvent::BandwidthChanged { current } => {
            d.set_item("type", "bandwidth_changed")?;
            d.set_item("current_mbps", args::bytes_to_mbps(*current))?;
        }
        _ => d.set_item("type", "other")?,
    }
    Ok(())
}

fn core_error(what: &str, e: Error) -> PyErr {
    match e {
        Error::Oversized => {
            PyValueError::new_err(format!("{what}: payload larger than max_message"))
        }
        Error::NotMember => PyRuntimeError::new_err(format!(
            "{what}: not a member (this node was excluded from the view, or the peer is unknown)"
        )),
        Error::InvalidConfig(t) => PyValueError::new_err(format!("{what}: invalid {t}")),
        other => PyRuntimeError::new_err(format!("{what}: {other:?}")),
    }
}

/// One real phasecast node (the core's sans-IO engine), for hosts written in
/// Python.
///
/// ``Node(id, members, *, mtu=1400, ...)`` joins a cluster of ``members``
/// (node ids, this one included). Drive it like any phasecast host::
///
///     node.handle_datagram(sender, data)      # a datagram arrived
///     if (t := node.poll_timeout()) is not None and t <= node.now_ms():
///         node.handle_timeout()
///     while (tx := node.poll_transmit()) is not None:
///         dest, data = tx                      # dest None: every other member
///     while (ev := node.poll_event()) is not None:
///         ...                                  # dicts, e.g. {'type': 'delivered', ...}
///
/// ``python -m phasecast demo`` runs a cluster of them over UDP on loopback.
#[pyclass(module = "phasecast._core", name = "Node")]
pub struct PyNode {
    node: Box<HostNode>,
    members: Vec<u16>,
    epoch: std::time::Instant,
    last: Instant,
    buf: Vec<u8>,
}

impl PyNode {
    fn now(&mut self, now_ms: Option<f64>) -> PyResult<Instant> {
        let t = match now_ms {
            Some(ms) => args::instant("now_ms", ms)?,
            None => Instant::from_micros(self.epoch.elapsed().as_micros() as u64),
        };
        self.last = self.last.max(t);
        Ok(self.last)
    }

    fn peer(what: &str, v: &Bound<'_, PyAny>) -> PyResult<NodeId> {
        if !v.is_instance_of::<PyInt>() {
            return Err(PyTypeError::new_err(format!(
                "{what} must be an int node id, not {}",
                args::type_name(v)
            )));
        }
        match v.extract::<u16>() {
            Ok(id) => Ok(NodeId(id)),
            Err(_) => Err(PyValueError::new_err(format!(
                "{what} must be a node id in 0 ..= 65535"
            ))),
        }
    }
}

#[pymethods]
impl PyNode {
    #[new]
    #[pyo3(signature = (id, members, *, mtu=None, seed=None, incarnation=None, join=false, heartbeat_ms=Some(20.0), fd_timeout_ms=Some(300.0), rto_ms=10.0, window=None, link_capacity_mbps=None, view_policy="primary_partition", max_message=None, tob_batch=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        id: &Bound<'_, PyAny>,
        members: &Bound<'_, PyAny>,
        mtu: Option<&Bound<'_, PyAny>>,
        seed: Option<&Bound<'_, PyAny>>,
        incarnation: Option<&Bound<'_, PyAny>>,
        join: bool,
        heartbeat_ms: Option<f64>,
        fd_timeout_ms: Option<f64>,
        rto_ms: f64,
        window: Option<&Bound<'_, PyAny>>,
        link_capacity_mbps: Option<f64>,
        view_policy: &str,
        max_message: Option<&Bound<'_, PyAny>>,
        tob_batch: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let me = Self::peer("id", id)?;
        if members.is_instance_of::<pyo3::types::PyString>() {
            return Err(PyTypeError::new_err("members must be a list of node ids"));
        }
        let mut ids: Vec<u16> = Vec::new();
        for m in members
            .try_iter()
            .map_err(|_| PyTypeError::new_err("members must be a list of node ids"))?
        {
            let m = Self::peer("members", &m?)?.0;
            if ids.contains(&m) {
                return Err(PyValueError::new_err(format!(
                    "node {m} appears twice in members"
                )));
            }
            ids.push(m);
        }
        if !ids.contains(&me.0) {
            return Err(PyValueError::new_err("members must include id"));
        }
        if ids.len() > 63 {
            return Err(PyValueError::new_err("at most 63 members"));
        }
        let mtu = args::opt_count(
            "mtu",
            mtu,
            1400,
            phasecast_core::wire::MIN_MTU as u64,
            phasecast_core::wire::MAX_MTU as u64,
        )? as usize;
        let seed = seed.map(args::seed).transpose()?.unwrap_or(u64::from(me.0));
        let incarnation =
            args::opt_count("incarnation", incarnation, 1, 0, u64::from(u32::MAX))? as u32;
        let heartbeat = heartbeat_ms
            .map(|h| args::positive_duration("heartbeat_ms", h))
            .transpose()?;
        let fd_timeout = fd_timeout_ms
            .map(|h| args::positive_duration("fd_timeout_ms", h))
            .transpose()?;
        if fd_timeout.is_some() && heartbeat.is_none() {
            return Err(PyValueError::new_err("fd_timeout_ms needs heartbeat_ms"));
        }
        if let (Some(h), Some(f)) = (heartbeat, fd_timeout) {
            if f <= h {
                return Err(PyValueError::new_err(
                    "fd_timeout_ms must be longer than heartbeat_ms",
                ));
            }
        }
        let rto = args::positive_duration("rto_ms", rto_ms)?;
        let window = args::opt_count(
            "window",
            window,
            64,
            1,
            phasecast_core::node::PER_ORIGIN as u64,
        )? as usize;
        let link_capacity = link_capacity_mbps
            .map(|b| args::mbps_to_bytes("link_capacity_mbps", b))
            .transpose()?;
        let view_policy = match view_policy {
            "primary_partition" => ViewPolicy::PrimaryPartition,
            "trust_detector" => ViewPolicy::TrustDetector,
            other => {
                return Err(PyValueError::new_err(format!(
                    "view_policy must be 'primary_partition' or 'trust_detector', got {other:?}"
                )))
            }
        };
        let max_message = args::opt_count("max_message", max_message, 65536, 1, 1 << 20)? as usize;
        let tob_batch = args::opt_count("tob_batch", tob_batch, 4096, 0, 1 << 20)? as usize;
        let members_c = ids.clone();
        let built = py.detach(move || {
            on_big_stack(move || {
                let members: Vec<NodeId> = members_c.iter().copied().map(NodeId).collect();
                let mut c = Config::new(me, &members);
                c.mtu = mtu;
                c.seed = seed;
                c.incarnation = incarnation;
                c.join = join;
                c.heartbeat = heartbeat;
                c.fd_timeout = fd_timeout;
                c.tob_rto = rto;
                c.tob_window = window;
                c.link_capacity = link_capacity;
                c.view_policy = view_policy;
                c.max_message = max_message;
                c.tob_batch = tob_batch;
                HostNode::new(&c, Instant::ZERO).map(Box::new)
            })
        })?;
        let node = built.map_err(|e| core_error("Node", e))?;
        Ok(PyNode {
            buf: vec![0u8; node.mtu()],
            node,
            members: ids,
            epoch: std::time::Instant::now(),
            last: Instant::ZERO,
        })
    }

    /// This node's id.
    #[getter]
    fn id(&self) -> u16 {
        self.node.id().0
    }

    /// The cluster's members (as given).
    #[getter]
    fn members(&self) -> Vec<u16> {
        self.members.clone()
    }

    /// Largest datagram this node sends, bytes.
    #[getter]
    fn mtu(&self) -> usize {
        self.node.mtu()
    }

    /// The node's clock: milliseconds since it was built (what calls without
    /// ``now_ms`` use).
    fn now_ms(&self) -> f64 {
        self.epoch.elapsed().as_micros() as f64 / 1000.0
    }

    /// Uniform total order broadcast of ``payload``. Returns the message's
    /// per-sender counter, or ``None`` when the core is full (backpressure:
    /// retry after some deliveries). While this node's previous message
    /// still waits unsent, small messages (up to 4 KiB together) join a
    /// batch that takes one slot of ``window``; each keeps its own counter
    /// and is delivered as an event of its own.
    #[pyo3(signature = (payload, now_ms=None))]
    fn broadcast(
        &mut self,
        payload: &Bound<'_, PyAny>,
        now_ms: Option<f64>,
    ) -> PyResult<Option<u32>> {
        let p = args::payload(payload)?;
        let now = self.now(now_ms)?;
        match self.node.broadcast(now, &p) {
            Ok(id) => Ok(Some(id.counter)),
            Err(Error::Full) => Ok(None),
            Err(e) => Err(core_error("broadcast", e)),
        }
    }

    /// A datagram from ``sender`` arrived. Returns whether it was accepted;
    /// a rejected datagram (corrupt, foreign, duplicate, ...) changes nothing
    /// and is counted in ``counters()['rejected']``.
    #[pyo3(signature = (sender, datagram, now_ms=None))]
    fn handle_datagram(
        &mut self,
        sender: &Bound<'_, PyAny>,
        datagram: &Bound<'_, PyAny>,
        now_ms: Option<f64>,
    ) -> PyResult<bool> {
        let from = Self::peer("sender", sender)?;
        let mut bytes = args::payload(datagram)?;
        let now = self.now(now_ms)?;
        Ok(self.node.handle_datagram(now, from, &mut bytes).is_ok())
    }

    /// Call when the deadline of ``poll_timeout`` has passed.
    #[pyo3(signature = (now_ms=None))]
    fn handle_timeout(&mut self, now_ms: Option<f64>) -> PyResult<()> {
        let now = self.now(now_ms)?;
        self.node.handle_timeout(now);
        Ok(())
    }

    /// The next datagram to send, as ``(destination, data)``: a node id, or
    /// ``None`` for every other member of the cluster (a multicast; fan it
    /// out over unicast if the network has none). ``None`` when nothing may
    /// leave now.
    #[pyo3(signature = (now_ms=None))]
    fn poll_transmit<'py>(
        &mut self,
        py: Python<'py>,
        now_ms: Option<f64>,
    ) -> PyResult<Option<(Option<u16>, Bound<'py, PyBytes>)>> {
        let now = self.now(now_ms)?;
        match self.node.poll_transmit(now, &mut self.buf) {
            Ok(tx) => {
                let dest = match tx.destination {
                    Destination::Peer(p) => Some(p.0),
                    Destination::Group(_) => None,
                };
                let len = tx.len.min(self.buf.len());
                Ok(Some((dest, PyBytes::new(py, &self.buf[..len]))))
            }
            Err(_) => Ok(None),
        }
    }

    /// The next event as a dict (``type``: ``delivered`` with ``sn`` (the
    /// application message's position in the total order, consecutive),
    /// ``sender``, ``payload``; ``view_changed`` with ``view_id``,
    /// ``members``; ``suspected`` with ``suspect``; ``excluded``;
    /// ``bandwidth_changed`` with ``current_mbps``; ``received`` with
    /// ``sender``, ``group``, ``msg``, ``payload``), or ``None``.
    fn poll_event<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(ev) = self.node.poll_event().map(|e| NodeEvent::from_event(&e)) else {
            return Ok(None);
        };
        let d = PyDict::new(py);
        event_fields(py, &d, &ev, 0)?;
        Ok(Some(d))
    }

    /// When ``handle_timeout`` should next be called (ms on the node's
    /// clock, or on the caller's if it passes ``now_ms``), or ``None``.
    fn poll_timeout(&self) -> Option<f64> {
        self.node
            .poll_timeout()
            .map(|t| t.as_micros() as f64 / 1000.0)
    }

    /// Tells the node that ``node`` is suspected to have crashed (an outside
    /// failure detector): a view change without it follows.
    #[pyo3(signature = (node, now_ms=None))]
    fn suspect(&mut self, node: &Bound<'_, PyAny>, now_ms: Option<f64>) -> PyResult<()> {
        let id = Self::peer("node", node)?;
        let now = self.now(now_ms)?;
        self.node
            .suspect(now, id)
            .map_err(|e| core_error("suspect", e))
    }

    /// FastCast's ``increase_BW``: asks for ``mbps`` more. Returns ``False``
    /// while another increase is under way or the core is full.
    #[pyo3(signature = (mbps, now_ms=None))]
    fn increase_bw(&mut self, mbps: f64, now_ms: Option<f64>) -> PyResult<bool> {
        let amount = args::mbps_to_bytes("mbps", mbps)?;
        let now = self.now(now_ms)?;
        match self.node.increase_bw(now, amount) {
            Ok(_) => Ok(true),
            Err(Error::Busy | Error::Full) => Ok(false),
            Err(e) => Err(core_error("increase_bw", e)),
        }
    }

    /// FastCast's ``decrease_BW``. Returns ``False`` while an increase is
    /// under way or the core is full.
    #[pyo3(signature = (mbps, now_ms=None))]
    fn decrease_bw(&mut self, mbps: f64, now_ms: Option<f64>) -> PyResult<bool> {
        let amount = args::mbps_to_bytes("mbps", mbps)?;
        let now = self.now(now_ms)?;
        match self.node.decrease_bw(now, amount) {
            Ok(_) => Ok(true),
            Err(Error::Busy | Error::Full) => Ok(false),
            Err(e) => Err(core_error("decrease_bw", e)),
        }
    }

    /// Allocated sending rate in Mb/s, or ``None`` without allocation.
    #[getter]
    fn current_bw(&self) -> Option<f64> {
        self.node.current_bw().map(args::bytes_to_mbps)
    }

    /// The current view as ``(view_id, members)``.
    fn view(&self) -> (u32, Vec<u16>) {
        let (id, m) = self.node.view();
        (id, m.map(|n| n.0).collect())
    }

    /// The current sequencer.
    #[getter]
    fn sequencer(&self) -> u16 {
        self.node.sequencer().0
    }

    /// True once this node was left out of a view (it must restart with
    /// ``join=True`` and a higher ``incarnation``).
    #[getter]
    fn is_excluded(&self) -> bool {
        self.node.is_excluded()
    }

    /// The node's counters as a dict (datagrams, bytes, records, rejected
    /// datagrams, retransmissions, deliveries, view changes, ...).
    fn counters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = self.node.counters();
        let d = PyDict::new(py);
        d.set_item("datagrams_sent", c.frames_sent)?;
        d.set_item("bytes_sent", c.bytes_sent)?;
        d.set_item("records_sent", c.records_sent)?;
        d.set_item(
            "records_per_datagram",
            if c.frames_sent == 0 {
                0.0
            } else {
                c.records_sent as f64 / c.frames_sent as f64
            },
        )?;
        d.set_item("datagrams_received", c.frames_received)?;
        d.set_item("bytes_received", c.bytes_received)?;
        d.set_item("rejected", c.total_dropped())?;
        d.set_item("retransmissions", c.retransmissions)?;
        d.set_item("refused_full", c.refused_full)?;
        d.set_item("delivered", c.messages_delivered)?;
        d.set_item("tob_stalls", c.tob_stalls)?;
        d.set_item("view_changes", c.view_changes)?;
        d.set_item("pool_high_water", c.pool_high_water)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "Node(id={}, members={:?}, mtu={})",
            self.node.id().0,
            self.members,
            self.node.mtu()
        )
    }
}
