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

The Omaha (pledge buffers) and QSM (token rings) experiments come with those
mechanisms.
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
}
