"""The papers' experiments, on phasecast's deterministic simulator.

FastCast (Berthou & Quéma, Middleware 2013), §4, on 942 Mb/s full-duplex
links behind a switch (uplink and downlink serialisation, one uplink
transmission per multicast, 28-byte IP/UDP headers), 50 µs one way:

* :func:`fastcast_throughput` — every process broadcasts 10 kB messages flat
  out; delivered throughput per process against the optimum B·N/(N−1)
  (Fig. 6). :func:`fastcast_throughput_grid` sweeps N (and the MTU).
* :func:`fastcast_latency` — one sender at 1 Mb/s; broadcast to delivery
  (Fig. 8). :func:`fastcast_latency_grid` sweeps N.
* :func:`fastcast_incr` — time from ``increase_BW`` to the new rate in force
  (§4.2; the paper measured 3.8 ms).
* :func:`fastcast_bw_trace` — Tables 1–3 replayed on the core's bandwidth
  allocation state machine, beside the paper's values.
* :func:`fastcast_bw_timeline` — bandwidth allocation over time (Fig. 5).

Results are plain dicts; grids and traces are pandas DataFrames. Each run is
deterministic (same parameters and seed, same numbers) and releases the GIL,
so the grids run their points on a thread pool.

Omaha (Mahamdi et al.), §4, on the simulator's multi-application Paxos
workload (``phasecast_core::sim::paxos``: 15 nodes, 5 applications of 7,
RTT N(60 ms, 6 ms), 3000 instances, the first 100 discarded):

* :func:`omaha` — one point: bandwidth saving and latency degradation of a
  policy against the same workload without aggregation.
* :func:`omaha_grid` — any grid of loads × probaBuf × timeouts × losses ×
  policies as a DataFrame.
* :func:`omaha_table1` / :func:`omaha_table2` — load × probaBuf at timeout
  = RTT (the paper's Tables 1 and 2: saving, degradation), beside the
  paper's values; :func:`omaha_table3` — load × timeout at probaBuf = 90 %
  (Table 3 a and b); :func:`omaha_loss` — §4.4's lossy network.
* :func:`omaha_frontier` — saving against degradation for Omaha, the
  time-based baseline (§3.1) and our policies (horizon, criticality).

QSM (Ostrowski & Birman), §5: :func:`qsm` and :func:`qsm_grid`.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from . import _core
from ._progress import bar

#: The paper's link speed (netperf's raw IP bandwidth between two machines).
LINK_MBPS = 942.0

__all__ = [
    "LINK_MBPS",
    "EXPERIMENTS",
    "fastcast_throughput",
    "fastcast_throughput_grid",
    "fastcast_latency",
    "fastcast_latency_grid",
    "fastcast_incr",
    "fastcast_bw_trace",
    "fastcast_bw_timeline",
    "fig5_changes",
    "omaha",
    "OMAHA_LOADS",
    "OMAHA_PAPER",
    "omaha_grid",
    "omaha_table1",
    "omaha_table2",
    "omaha_table3",
    "omaha_loss",
    "omaha_frontier",
    "FRONTIER_POLICIES",
    "qsm",
    "qsm_grid",
    "QSM_SCENARIOS",
]


def fastcast_throughput(
    nodes: int,
    link_mbps: float = LINK_MBPS,
    msg_bytes: int = 10000,
    duration_s: float = 0.6,
    *,
    warmup_s: float = 0.1,
    mtu: int = 9000,
    one_way_us: float = 50.0,
    allocation: bool = True,
    seed: int = 1,
) -> Dict[str, Any]:
    """Fig. 6: ``nodes`` processes broadcast ``msg_bytes`` messages flat out.

    Returns a dict with ``throughput_mbps`` (application bytes delivered per
    process per second between ``warmup_s`` and ``duration_s``, averaged over
    the processes, as the paper plots it), ``optimal_mbps`` (B·N/(N−1)),
    ``ratio``, ``per_node_mbps``, ``records_per_datagram``,
    ``retransmissions``, ``datagrams``, ``bytes``, ``header_bytes``.

    With ``allocation`` every process asks for the whole link
    (``increase_BW(B)``) and max-min fairness gives each B/(N−1).
    ``nodes`` is 2..64; each node holds 8 MiB of payload storage.
    """
    return _core._fastcast_throughput(
        nodes, link_mbps, msg_bytes, duration_s, warmup_s,
        mtu, one_way_us, bool(allocation), seed,
    )


def fastcast_latency(
    nodes: int,
    *,
    msg_bytes: int = 10000,
    rate_mbps: float = 1.0,
    duration_s: float = 2.0,
    link_mbps: float = LINK_MBPS,
    mtu: int = 1500,
    one_way_us: float = 50.0,
    seed: int = 2,
) -> Dict[str, Any]:
    """Fig. 8: node 0 broadcasts ``msg_bytes`` messages at ``rate_mbps``
    (the paper: 10 kB at 1 Mb/s, no contention).

    Returns ``mean_ms``, ``p50_ms``, ``p99_ms``, ``max_ms`` from a broadcast
    to its delivery at the sender (the paper's measure), ``mean_all_ms`` and
    ``p99_all_ms`` over every delivery at every process, ``messages``,
    ``deliveries`` and the wire counters.
    """
    return _core._fastcast_latency(
        nodes, msg_bytes, rate_mbps, duration_s, link_mbps,
        mtu, one_way_us, seed,
    )


def fastcast_incr(
    nodes: int = 3,
    *,
    requester: int = 0,
    link_mbps: float = LINK_MBPS,
    mtu: int = 1500,
    one_way_us: float = 50.0,
    seed: int = 3,
) -> Dict[str, Any]:
    """§4.2: time from ``increase_BW`` at ``requester`` (INCR ordered and
    delivered everywhere, then every ACK back) to its new rate in force.

    Returns ``ms``, ``rtts`` (in round-trip times of the links) and
    ``rtt_ms``; ``ms`` is ``None`` if the increase never took effect.
    """
    return _core._fastcast_incr(
        nodes, requester, link_mbps, mtu, one_way_us, seed
    )


def fastcast_bw_trace():
    """Tables 1–3: the paper's three example executions of the bandwidth
    allocation protocol (3 processes, 1 Gb/s switch), replayed step by step
    on the core's ``BandwidthAllocation`` (Fig. 4).

    A DataFrame with one row per step and process: ``table``, ``step``,
    ``process``, our ``bw_requirements``, ``current_bw``,
    ``ongoing_increase``, ``acks``, ``delivered_req``, the paper's values
    (``paper_*``), ``matches_paper`` and the step's ``event``.
    """
    import pandas as pd

    rows, errors = _core._fastcast_bw_trace()
    if errors:  # pragma: no cover - the core's tests pin the tables
        raise RuntimeError("the state machine refused a step: " + "; ".join(errors))
    return pd.DataFrame(rows)


def fig5_changes(
    nodes: int = 4,
    link_mbps: float = LINK_MBPS,
    phase_ms: float = 100.0,
    mtu: int = 9000,
) -> List[Tuple[float, int, float]]:
    """The requirement changes of Fig. 5 as ``(time_ms, node, delta_mbps)``.

    The paper: 4 nodes; "initially all nodes require one fourth of the total
    available bandwidth. After 10s, node 0 decreases its requirements,
    followed by node 1 at time 20s. At time 30s, node 2 increases its
    bandwidth requirement. Finally, at time 40s, node 0 increases its
    bandwidth requirement, whereas node 2 decreases them." It gives no
    amounts; we use B/8 for the decreases of nodes 0 and 1, B/4 for the
    later changes, and phases of ``phase_ms`` instead of 10 s.
    """
    b = link_mbps * mtu / (mtu + 28)  # FastCast's availableBW
    changes: List[Tuple[float, int, float]] = [(0.0, i, b / 4) for i in range(nodes)]
    changes += [
        (1 * phase_ms, 0, -b / 8),
        (2 * phase_ms, 1 % nodes, -b / 8),
        (3 * phase_ms, 2 % nodes, b / 4),
        (4 * phase_ms, 0, b / 4),
        (4 * phase_ms, 2 % nodes, -b / 4),
    ]
    return changes


def fastcast_bw_timeline(
    nodes: int = 4,
    *,
    changes: Optional[Sequence[Tuple[float, int, float]]] = None,
    phase_ms: float = 100.0,
    end_ms: Optional[float] = None,
    bin_ms: float = 5.0,
    link_mbps: float = LINK_MBPS,
    mtu: int = 9000,
    msg_bytes: Tuple[int, int] = (1000, 6000),
    one_way_us: float = 50.0,
    seed: int = 4,
    details: bool = False,
):
    """Fig. 5: bandwidth allocation over time.

    Every node broadcasts flat out (messages of ``msg_bytes[0]..msg_bytes[1]``
    bytes, as the paper's 1–6 kB), its rate capped by the allocation, while
    requirements change as ``changes`` says (``(time_ms, node,
    delta_mbps)``; default :func:`fig5_changes`). ``end_ms`` defaults to
    five phases.

    A DataFrame, one row per ``bin_ms``: ``time_ms``; per node ``req_i``
    (its requirement as requested), ``alloc_i`` (its allocated rate,
    ``currentBW``) and ``rate_i`` (its messages delivered per process);
    ``achieved_mbps`` (mean delivered throughput per process) and
    ``optimal_mbps`` (Σ of the max-min shares of the requirements). All in
    Mb/s of application payload. With ``details`` also returns a dict with
    ``increases`` (node, asked at ms, took effect after ms) and the wire
    counters.
    """
    import pandas as pd

    if changes is None:
        changes = fig5_changes(nodes, link_mbps, phase_ms, mtu)
    if end_ms is None:
        end_ms = 5 * phase_ms
    lo, hi = msg_bytes
    out = _core._fastcast_bw_timeline(
        nodes, link_mbps, mtu, one_way_us,
        list(changes),
        end_ms, bin_ms, lo, hi, seed,
    )
    df = pd.DataFrame(out.pop("columns"))
    return (df, out) if details else df


def _pool_map(fn: Callable[[Any], Dict[str, Any]], points: List[Any],
              workers: Optional[int], progress: Optional[bool], desc: str) -> List[Dict[str, Any]]:
    """Runs ``fn`` over ``points`` on threads (each run releases the GIL)."""
    workers = workers or min(len(points), os.cpu_count() or 1)
    b = bar(len(points), desc, progress) if len(points) > 1 else None
    results: List[Dict[str, Any]] = []
    try:
        if workers <= 1:
            for p in points:
                results.append(fn(p))
                if b is not None:
                    b.update(1)
        else:
            with ThreadPoolExecutor(max_workers=workers) as ex:
                for r in ex.map(fn, points):
                    results.append(r)
                    if b is not None:
                        b.update(1)
    finally:
        if b is not None:
            b.close()
    return results


def fastcast_throughput_grid(
    nodes: Iterable[int] = range(2, 9),
    mtus: Iterable[int] = (9000,),
    *,
    workers: Optional[int] = None,
    progress: Optional[bool] = None,
    **kwargs: Any,
):
    """Fig. 6 as a DataFrame: :func:`fastcast_throughput` for every N in
    ``nodes`` and MTU in ``mtus`` (other parameters passed through), with
    columns ``nodes``, ``mtu``, ``throughput_mbps``, ``optimal_mbps``,
    ``ratio``, ``records_per_datagram``, ``retransmissions``, ``datagrams``.
    Points run on ``workers`` threads (default: one per core).
    """
    import pandas as pd

    points = [(n, m) for m in mtus for n in nodes]
    rows = _pool_map(lambda p: fastcast_throughput(p[0], mtu=p[1], **kwargs),
                     points, workers, progress, "throughput grid")
    cols = ["nodes", "mtu", "throughput_mbps", "optimal_mbps", "ratio",
            "records_per_datagram", "retransmissions", "datagrams"]
    return pd.DataFrame([{k: r[k] for k in cols} for r in rows])


def fastcast_latency_grid(
    nodes: Iterable[int] = range(2, 9),
    *,
    workers: Optional[int] = None,
    progress: Optional[bool] = None,
    **kwargs: Any,
):
    """Fig. 8 as a DataFrame: :func:`fastcast_latency` for every N in
    ``nodes``, with columns ``nodes``, ``mean_ms``, ``p50_ms``, ``p99_ms``,
    ``max_ms``, ``mean_all_ms``, ``p99_all_ms``, ``messages``.
    """
    import pandas as pd

    rows = _pool_map(lambda n: fastcast_latency(n, **kwargs), list(nodes),
                     workers, progress, "latency grid")
    cols = ["nodes", "mean_ms", "p50_ms", "p99_ms", "max_ms", "mean_all_ms",
            "p99_all_ms", "messages"]
    return pd.DataFrame([{k: r[k] for k in cols} for r in rows])


#: Omaha's load patterns: average concurrent Paxos instances (§4.1).
OMAHA_LOADS: Dict[str, float] = {"low": 2.0, "medium": 5.0, "high": 10.0}


def omaha(
    load: Any,
    proba_buf: float,
    timeout_rtt: float = 1.0,
    instances: int = 3000,
    warmup: int = 100,
    loss: float = 0.0,
    policy: str = "omaha",
    seed: int = 0,
    *,
    horizon_rtt: float = 0.5,
) -> Dict[str, Any]:
    """Omaha §4: the multi-application Paxos workload (15 nodes, 5
    applications of 7 nodes, RTT N(60 ms, 6 ms)) with pledge buffers,
    against the same workload without aggregation.

    ``load`` is ``"low"``, ``"medium"``, ``"high"`` (2, 5, 10 concurrent
    instances) or a number; ``policy`` is ``"omaha"``, ``"none"``,
    ``"time_based"``, ``"horizon"`` (with ``horizon_rtt``) or
    ``"criticality"``. Returns ``bandwidth_saving`` and
    ``latency_degradation`` (fractions, relative to no aggregation; bandwidth
    counts a 28-byte IPv4+UDP header per datagram), and the two runs'
    figures under ``baseline`` and ``policy``.
    """
    if isinstance(load, str):
        if load not in OMAHA_LOADS:
            raise ValueError(f"load must be one of {sorted(OMAHA_LOADS)} or a number, got {load!r}")
        load = OMAHA_LOADS[load]
    if isinstance(load, bool) or not isinstance(load, (int, float)):
        raise TypeError(f"load must be a string or a number, not {type(load).__name__}")
    if not isinstance(policy, str):
        raise TypeError(f"policy must be a string, not {type(policy).__name__}")
    return _core._omaha(
        float(load), float(proba_buf), float(timeout_rtt), instances, warmup,
        float(loss), policy, float(horizon_rtt), seed,
    )


def _pct(xs: str) -> List[float]:
    return [float(x) / 100.0 for x in xs.split()]


#: The paper's numbers (fractions): ``table1`` (bandwidth saving) and
#: ``table2`` (latency degradation) by load, for probaBuf 10 % … 100 % at
#: timeout = RTT; ``table3a`` / ``table3b`` by load, for timeouts RTT/4,
#: RTT/2, RTT, 1.2 RTT at probaBuf = 90 %.
OMAHA_PAPER: Dict[str, Any] = {
    "proba_bufs": [k / 10 for k in range(1, 11)],
    "timeouts_rtt": [0.25, 0.5, 1.0, 1.2],
    "table1": {
        "low": _pct("0.6 1.2 1.8 2.3 2.9 3.5 4.0 4.5 5.1 5.6"),
        "medium": _pct("0.1 1.6 4.6 6.1 7.6 9.1 10.5 12.0 13.4 14.7"),
        "high": _pct("0.2 3.4 9.5 12.6 15.9 18.9 22.2 25.3 28.1 30.2"),
    },
    "table2": {
        "low": _pct("0.0 0.0 0.0 0.1 0.1 0.2 0.2 0.3 0.3 0.3"),
        "medium": _pct("0.1 0.3 0.4 0.5 0.7 0.8 1.0 1.2 1.4 1.6"),
        "high": _pct("0.2 0.4 0.7 1.0 1.4 1.8 2.4 3.2 4.2 5.4"),
    },
    "table3a": {
        "low": _pct("1.3 3.7 5.1 5.2"),
        "medium": _pct("5.6 9.9 13.4 13.8"),
        "high": _pct("18.7 24.9 28.1 29.2"),
    },
    "table3b": {
        "low": _pct("0.4 0.3 0.3 0.2"),
        "medium": _pct("1.4 1.3 1.4 1.3"),
        "high": _pct("3.2 3.8 4.2 4.1"),
    },
}


def _num(what: str, v: Any) -> float:
    """A real number (not a bool or a string), as float; else TypeError."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TypeError(f"{what} must be a number, not {type(v).__name__}")
    return float(v)


def _omaha_row(point: Dict[str, Any], common: Dict[str, Any]) -> Dict[str, Any]:
    kw = dict(common)
    kw.update(point)
    r = omaha(**kw)
    b, q = r["baseline"], r["policy"]
    row = {k: kw.get(k) for k in ("load", "policy", "proba_buf", "timeout_rtt", "loss")}
    if row["policy"] == "horizon":
        row["horizon_rtt"] = kw.get("horizon_rtt", 0.5)
    row.update(
        bandwidth_saving=r["bandwidth_saving"],
        latency_degradation=r["latency_degradation"],
        learner_degradation=q["learner_latency_ms"] / b["learner_latency_ms"] - 1.0,
        baseline_mean_ms=b["mean_latency_ms"],
        policy_mean_ms=q["mean_latency_ms"],
        baseline_p99_ms=b["p99_latency_ms"],
        policy_p99_ms=q["p99_latency_ms"],
        baseline_datagrams=b["datagrams"],
        policy_datagrams=q["datagrams"],
        buffered=q["buffered"],
        concurrency=b["concurrency"],
    )
    return row


def omaha_grid(
    loads: Iterable[Any] = ("low", "medium", "high"),
    proba_bufs: Iterable[float] = (1.0,),
    timeouts_rtt: Iterable[float] = (1.0,),
    losses: Iterable[float] = (0.0,),
    policies: Iterable[str] = ("omaha",),
    *,
    workers: Optional[int] = None,
    progress: Optional[bool] = None,
    **kwargs: Any,
):
    """:func:`omaha` over every combination of ``loads`` × ``proba_bufs`` ×
    ``timeouts_rtt`` × ``losses`` × ``policies`` (other parameters, e.g.
    ``instances``, ``warmup``, ``seed``, ``horizon_rtt``, passed through).

    A DataFrame, one row per point: ``load``, ``policy``, ``proba_buf``,
    ``timeout_rtt``, ``loss``, ``bandwidth_saving``, ``latency_degradation``
    (the leader's decision, the paper's measure), ``learner_degradation``
    (the other members learning the decision), mean and p99 latencies and
    datagrams of both runs, messages ``buffered`` and the measured
    ``concurrency``. Points run on ``workers`` threads.
    """
    import pandas as pd

    points = [
        dict(load=l, proba_buf=_num("proba_buf", p), timeout_rtt=_num("timeout_rtt", t),
             loss=_num("loss", x), policy=pol)
        for pol in policies for l in loads for p in proba_bufs
        for t in timeouts_rtt for x in losses
    ]
    if not points:
        raise ValueError("the grid is empty")
    rows = _pool_map(lambda pt: _omaha_row(pt, kwargs), points, workers, progress,
                     "omaha grid")
    return _ordered_loads(pd.DataFrame(rows))


def _ordered_loads(df):
    """Named loads as an ordered category (low < medium < high), so that
    pivots and plots keep the paper's order."""
    import pandas as pd

    if len(df) and all(isinstance(l, str) for l in df["load"]):
        df["load"] = pd.Categorical(df["load"], categories=list(OMAHA_LOADS), ordered=True)
    return df


def _paper_beside(df, table: str, key: str, values: Sequence[float], ours: str):
    """Adds ``paper_<ours>`` from :data:`OMAHA_PAPER` [table] (None where
    the paper has no such point)."""
    paper = OMAHA_PAPER[table]

    def look(row):
        if not isinstance(row["load"], str) or row["load"] not in paper:
            return None
        for v, p in zip(values, paper[row["load"]]):
            if abs(v - row[key]) < 1e-9:
                return p
        return None

    df["paper_" + ours] = df.apply(look, axis=1)
    return df


def omaha_table1(
    loads: Iterable[Any] = ("low", "medium", "high"),
    proba_bufs: Iterable[float] = tuple(k / 10 for k in range(1, 11)),
    timeout_rtt: float = 1.0,
    **kwargs: Any,
):
    """Table 1: bandwidth saving for every load × probaBuf at timeout =
    RTT, beside the paper's (``paper_bandwidth_saving``). The same runs give
    Table 2: the frame also has ``latency_degradation`` and
    ``paper_latency_degradation``. Other parameters as :func:`omaha_grid`.
    Pivot for the paper's layout:
    ``df.pivot(index="load", columns="proba_buf", values="bandwidth_saving")``.
    """
    df = omaha_grid(loads, proba_bufs, (timeout_rtt,), **kwargs)
    pb = OMAHA_PAPER["proba_bufs"]
    if abs(timeout_rtt - 1.0) > 1e-9:
        df["paper_bandwidth_saving"] = None
        df["paper_latency_degradation"] = None
        return df
    _paper_beside(df, "table1", "proba_buf", pb, "bandwidth_saving")
    return _paper_beside(df, "table2", "proba_buf", pb, "latency_degradation")


def omaha_table2(**kwargs: Any):
    """Table 2: latency degradation for every load × probaBuf at timeout =
    RTT beside the paper's; the same frame as :func:`omaha_table1` (Tables
    1 and 2 are two readings of one set of runs)."""
    return omaha_table1(**kwargs)


def omaha_table3(
    loads: Iterable[Any] = ("low", "medium", "high"),
    timeouts_rtt: Iterable[float] = (0.25, 0.5, 1.0, 1.2),
    proba_buf: float = 0.9,
    **kwargs: Any,
):
    """Table 3: bandwidth saving (a) and latency degradation (b) for every
    load × timeout (in RTTs) at probaBuf = 90 %, beside the paper's
    (``paper_bandwidth_saving``, ``paper_latency_degradation``)."""
    df = omaha_grid(loads, (proba_buf,), timeouts_rtt, **kwargs)
    if abs(proba_buf - 0.9) > 1e-9:
        df["paper_bandwidth_saving"] = None
        df["paper_latency_degradation"] = None
        return df
    ts = OMAHA_PAPER["timeouts_rtt"]
    _paper_beside(df, "table3a", "timeout_rtt", ts, "bandwidth_saving")
    return _paper_beside(df, "table3b", "timeout_rtt", ts, "latency_degradation")


def omaha_loss(
    losses: Iterable[float] = (0.0, 0.01, 0.05, 0.1),
    load: Any = "high",
    proba_buf: float = 1.0,
    timeout_rtt: float = 1.0,
    **kwargs: Any,
):
    """§4.4, the unreliable network: saving and degradation for each loss
    rate (datagrams dropped independently on every link; leaders resend to
    the members they have not heard from every two RTTs). The paper gives
    no table, only that 1 % changes little and that at 5–10 % latency grows
    with the saving. Columns as :func:`omaha_grid`."""
    return omaha_grid((load,), (proba_buf,), (timeout_rtt,), losses, **kwargs)


#: The policies :func:`omaha_frontier` compares by default, each a list of
#: parameter sets: Omaha (probaBuf, timeout = RTT), the time-based baseline
#: (timeout), horizon (horizon, probaBuf 100 %, timeout RTT) and
#: criticality (timeout).
FRONTIER_POLICIES: Dict[str, List[Dict[str, float]]] = {
    "omaha": [dict(proba_buf=p, timeout_rtt=1.0) for p in (0.25, 0.5, 0.75, 0.9, 1.0)],
    "time_based": [dict(proba_buf=0.0, timeout_rtt=t) for t in (0.05, 0.1, 0.25, 0.5)],
    "horizon": [dict(proba_buf=1.0, timeout_rtt=1.0, horizon_rtt=h)
                for h in (0.1, 0.25, 0.5, 0.75, 1.0)],
    "criticality": [dict(proba_buf=0.0, timeout_rtt=t) for t in (0.25, 0.5, 1.0, 2.0)],
}


def omaha_frontier(
    load: Any = "high",
    policies: Optional[Dict[str, List[Dict[str, float]]]] = None,
    *,
    workers: Optional[int] = None,
    progress: Optional[bool] = None,
    **kwargs: Any,
):
    """Saving against degradation for several aggregation policies on the
    same workload: each policy of ``policies`` (default
    :data:`FRONTIER_POLICIES`) at each of its parameter sets. A DataFrame
    with ``policy``, its parameters, ``bandwidth_saving``,
    ``latency_degradation`` (the leader decides) and
    ``learner_degradation`` (the other members learn), sorted by policy and
    saving. A policy is better where it saves more for the same degradation.
    """
    import pandas as pd

    policies = FRONTIER_POLICIES if policies is None else policies
    points = []
    for pol, sets in policies.items():
        for ps in sets:
            pt = dict(load=load, policy=pol, loss=0.0)
            pt.update(ps)
            points.append(pt)
    if not points:
        raise ValueError("no policy to compare")
    rows = _pool_map(lambda pt: _omaha_row(pt, kwargs), points, workers, progress,
                     "omaha frontier")
    df = pd.DataFrame(rows)
    return df.sort_values(["policy", "bandwidth_saving"]).reset_index(drop=True)


#: QSM §5.3's perturbations by the name :func:`qsm` takes.
QSM_SCENARIOS: Dict[str, str] = {
    "none": "undisturbed",
    "bursty": "one receiver drops every incoming packet for 10 ms every second",
    "sleep": "one receiver sleeps 0.5 s every 5 s (its traffic held, nothing lost)",
}


def qsm(
    receivers: int,
    groups: int,
    loss_scenario: str = "none",
    messages: Optional[int] = 2000,
    seed: int = 0,
    *,
    token_period_ms: float = 1000.0,
    duration_s: float = 30.0,
    rate: int = 0,
    msg_bytes: int = 1000,
    link_mbps: float = 100.0,
    check_order: bool = True,
) -> Dict[str, Any]:
    """QSM §5: one sender multicasts ``messages`` messages of ``msg_bytes``
    round robin to ``groups`` groups with identical membership (one region
    of ``receivers`` nodes, 1 ..= 127), on 100 Mbit/s links with 100–200 µs
    latency, every node a ``HostNode`` (about 2.6 MiB each).

    ``loss_scenario``: ``"none"``; ``"bursty"`` (§5.3: one receiver drops
    every incoming packet for 10 ms every second); ``"sleep"`` (one receiver
    sleeps 0.5 s every 5 s from t = 1 s: its traffic is held, nothing lost).
    The sender sends as fast as flow control allows (``rate`` 0) or
    ``rate`` messages per second, for at most ``duration_s`` seconds; the
    sending phase ends early once ``messages`` were sent and acknowledged
    (``messages=None``: send for the whole ``duration_s``). Tokens circulate
    every ``token_period_ms`` (QSM: 1 s).

    Returns a dict: ``all_delivered`` (every receiver delivered every
    message), ``fifo_violations`` (deliveries out of per-group FIFO order or
    duplicated, with ``check_order``), ``corrupted``,
    ``throughput_msgs_per_s`` (multicasts per second of the sending phase),
    ``token_rtt_ms`` / ``token_rtt_max_ms`` (the token round trip: the
    region's ring of partition leaders, or the partition's ring when the
    region is one partition of at most 25 receivers; both levels also as
    ``region_token_rtt_ms`` and ``partition_token_rtt_ms``, with ``_max_ms``),
    ``ack_latency_ms`` / ``ack_latency_max_ms`` (multicast to
    acknowledgement by the region, at the sender), ``pending_avg`` /
    ``pending_max`` (unacknowledged messages at the sender, sampled every
    50 ms), ``state_bytes_per_group``, ``group_table_bytes``,
    ``qsm_state_bytes`` (all QSM state of a node, fixed whatever the number
    of groups), ``memory_per_node_bytes``, ``payload_bytes_max_sender`` /
    ``_receiver`` (payload bytes QSM held at once: the sender's
    unacknowledged messages, a receiver's undelivered or cached ones),
    ``sent``, ``min_delivered``,
    ``forwards`` (copies recovered from a peer), ``remulticasts``,
    ``duplicates``, ``send_s``, ``victim`` (the perturbed receiver),
    ``token_period_ms`` and the parameters.
    """
    if not isinstance(loss_scenario, str):
        raise TypeError(f"loss_scenario must be a string, not {type(loss_scenario).__name__}")
    if loss_scenario not in QSM_SCENARIOS:
        raise ValueError(f"loss_scenario must be one of {list(QSM_SCENARIOS)}, got {loss_scenario!r}")
    return _core._qsm(
        receivers, groups, loss_scenario, messages, seed,
        _num("token_period_ms", token_period_ms), _num("duration_s", duration_s),
        rate, msg_bytes, _num("link_mbps", link_mbps), bool(check_order),
    )


def qsm_grid(
    receivers: Iterable[int] = (110,),
    groups: Iterable[int] = (1, 64, 1024, 8192),
    scenarios: Iterable[str] = ("none",),
    token_periods_ms: Iterable[float] = (1000.0,),
    *,
    workers: Optional[int] = None,
    progress: Optional[bool] = None,
    **kwargs: Any,
):
    """:func:`qsm` over every receivers × groups × scenario × token period
    (other parameters passed through), as a DataFrame with one row per run
    and the columns of :func:`qsm`'s dict. Points run on ``workers``
    threads (default: up to 2; a run of 110 receivers holds about 300 MB).
    """
    import pandas as pd

    points = [(r, g, sc, tk) for sc in scenarios for tk in token_periods_ms
              for r in receivers for g in groups]
    if not points:
        raise ValueError("the grid is empty")
    workers = workers or min(2, len(points), os.cpu_count() or 1)
    rows = _pool_map(
        lambda p: qsm(p[0], p[1], p[2], token_period_ms=p[3], **kwargs),
        points, workers, progress, "qsm grid")
    first = ["loss_scenario", "token_period_ms", "receivers", "groups"]
    df = pd.DataFrame(rows)
    return df[first + [c for c in df.columns if c not in first]]


#: Experiments by name, for ``python -m phasecast experiment NAME``.
EXPERIMENTS: Dict[str, Callable[..., Any]] = {
    "fastcast_throughput": fastcast_throughput,
    "fastcast_throughput_grid": fastcast_throughput_grid,
    "fastcast_latency": fastcast_latency,
    "fastcast_latency_grid": fastcast_latency_grid,
    "fastcast_incr": fastcast_incr,
    "fastcast_bw_trace": fastcast_bw_trace,
    "fastcast_bw_timeline": fastcast_bw_timeline,
    "omaha": omaha,
    "omaha_grid": omaha_grid,
    "omaha_table1": omaha_table1,
    "omaha_table2": omaha_table2,
    "omaha_table3": omaha_table3,
    "omaha_loss": omaha_loss,
    "omaha_frontier": omaha_frontier,
    "qsm": qsm,
    "qsm_grid": qsm_grid,
}
