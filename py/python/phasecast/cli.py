"""Command line: ``python -m phasecast {sim,experiment,demo,version} ...``.

* ``sim`` — a simulated cluster: every node broadcasts, faults as asked, then
  the property check and the counters.
* ``experiment NAME [--param KEY=VALUE ...] [--json]`` — one of
  :data:`phasecast.experiments.EXPERIMENTS` (``list`` lists them).
* ``demo`` — real nodes over UDP on loopback, driven from Python.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple


def _at(spec: str, what: str) -> Tuple[int, float]:
    """``NODE@TIME``."""
    try:
        node, at = spec.split("@")
        return int(node), float(at)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} must look like NODE@TIME, got {spec!r}")


def _partition(spec: str) -> Tuple[List[List[int]], float, Optional[float]]:
    """``0,1|2,3,4@AT[-HEAL]``."""
    try:
        groups, when = spec.split("@")
        parsed = [[int(x) for x in g.split(",") if x] for g in groups.split("|")]
        if "-" in when:
            at, heal = when.split("-")
            return parsed, float(at), float(heal)
        return parsed, float(when), None
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"partition must look like 0,1|2,3,4@AT_MS[-HEAL_MS], got {spec!r}")


def _latency(spec: str) -> Any:
    parts = [float(x) for x in spec.split(",")]
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        return (parts[0], parts[1])
    raise argparse.ArgumentTypeError("latency must be MEAN or MEAN,SD (ms)")


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _jsonable(x: Any) -> Any:
    try:
        import pandas as pd

        if isinstance(x, pd.DataFrame):
            return x.to_dict(orient="records")
    except ImportError:  # pragma: no cover
        pass
    if isinstance(x, tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, bytes):
        return x.hex()
    return x


def cmd_sim(a: argparse.Namespace) -> int:
    from . import Simulation

    sim = Simulation(a.nodes, a.seed, latency_ms=a.latency, bandwidth_mbps=a.bandwidth,
                     loss=a.loss, duplicate=a.duplicate, reorder=a.reorder, mtu=a.mtu)
    for node in range(a.nodes):
        for k in range(a.messages):
            sim.broadcast(node, (b"%d/%d:" % (node, k)).ljust(a.size, b"."), at_ms=a.start)
    for node, at in a.crash:
        sim.crash(node, at_ms=at)
    for groups, at, heal in a.partition:
        sim.partition(groups, at_ms=at, heal_ms=heal)
    sim.run(a.until)
    check = sim.check()
    stats = sim.stats()
    views = {n: sim.views(n) for n in range(a.nodes)}
    delivered = {n: len(sim.delivered(n)) for n in range(a.nodes)}
    if a.json:
        print(json.dumps({"check": check, "stats": stats, "views": views,
                          "delivered": delivered}, indent=2))
        return 0 if check["ok"] else 1
    print(f"{a.nodes} nodes, seed {a.seed}, {a.messages} broadcasts each, "
          f"run to {sim.now_ms:g} ms of virtual time")
    for n in range(a.nodes):
        v = " → ".join(f"{vid}:{m}" for _, vid, m in views[n]) or "initial view"
        print(f"  node {n}: delivered {delivered[n]}, views {v}")
    verdict = ", ".join(f"{k}: {'ok' if check[k] else 'VIOLATED'}"
                        for k in ("validity", "integrity", "agreement", "total_order", "fifo"))
    print(f"check: {verdict} (not correct: {check['crashed'] or 'none'})")
    for v in check["violations"][:20]:
        print("  -", v)
    keys = ["datagrams", "bytes", "header_bytes", "records_per_datagram",
            "retransmissions", "lost", "view_changes", "refused_full"]
    print("stats: " + ", ".join(
        f"{k} {stats[k]:.2f}" if isinstance(stats[k], float) else f"{k} {stats[k]}" for k in keys))
    return 0 if check["ok"] else 1


def cmd_experiment(a: argparse.Namespace) -> int:
    from .experiments import EXPERIMENTS

    if a.name == "list":
        for name, fn in EXPERIMENTS.items():
            print(f"{name}: {(fn.__doc__ or '').strip().splitlines()[0]}")
        return 0
    fn = EXPERIMENTS.get(a.name)
    if fn is None:
        print(f"unknown experiment {a.name!r}; one of: {', '.join(EXPERIMENTS)}", file=sys.stderr)
        return 2
    params: Dict[str, Any] = {}
    for p in a.param:
        if "=" not in p:
            print(f"--param must look like KEY=VALUE, got {p!r}", file=sys.stderr)
            return 2
        k, v = p.split("=", 1)
        params[k.strip()] = _value(v)
    try:
        result = fn(**params)
    except (TypeError, ValueError, IndexError) as e:
        print(f"{a.name}: {e}", file=sys.stderr)
        return 2
    if a.json:
        print(json.dumps(_jsonable(result), indent=2))
        return 0
    try:
        import pandas as pd

        if isinstance(result, pd.DataFrame):
            with pd.option_context("display.max_rows", 200, "display.width", 200):
                print(result.to_string(index=False))
            return 0
    except ImportError:  # pragma: no cover
        pass
    for k, v in result.items():
        print(f"{k}: {v}")
    return 0


def cmd_demo(a: argparse.Namespace) -> int:
    from . import demo

    return demo.main(nodes=a.nodes, seconds=a.seconds, crash=a.crash, size=a.size,
                     as_json=a.json)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m phasecast", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("sim", help="simulate a cluster broadcasting in total order, then check it")
    s.add_argument("--nodes", type=int, default=5)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--messages", type=int, default=50, help="broadcasts per node")
    s.add_argument("--size", type=int, default=100, help="payload bytes")
    s.add_argument("--start", type=float, default=1.0, help="when the broadcasts start (ms)")
    s.add_argument("--latency", type=_latency, default=(0.3, 0.06), help="MEAN[,SD] ms")
    s.add_argument("--bandwidth", type=float, default=100.0, help="Mb/s per link (0: infinite)")
    s.add_argument("--loss", type=float, default=0.0)
    s.add_argument("--duplicate", type=float, default=0.0)
    s.add_argument("--reorder", type=float, default=0.0)
    s.add_argument("--mtu", type=int, default=1500)
    s.add_argument("--crash", type=lambda x: _at(x, "--crash"), action="append", default=[],
                   metavar="NODE@MS")
    s.add_argument("--partition", type=_partition, action="append", default=[],
                   metavar="0,1|2,3@AT[-HEAL]")
    s.add_argument("--until", type=float, default=5000.0, help="virtual ms to run")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_sim)

    e = sub.add_parser("experiment", help="run a paper experiment (NAME 'list' lists them)")
    e.add_argument("name")
    e.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="experiment parameter; VALUE is JSON when it parses (4, 0.5, [2,3])")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_experiment)

    d = sub.add_parser("demo", help="real nodes over UDP on loopback, driven from Python")
    d.add_argument("--nodes", type=int, default=3)
    d.add_argument("--seconds", type=float, default=2.0)
    d.add_argument("--size", type=int, default=100)
    d.add_argument("--crash", type=lambda x: _at(x, "--crash"), default=None, metavar="NODE@SECONDS")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=cmd_demo)

    v = sub.add_parser("version", help="print the version")
    v.set_defaults(func=lambda a: print(__import__("phasecast").__version__) or 0)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    a = parser().parse_args(argv)
    if getattr(a, "bandwidth", None) == 0:
        a.bandwidth = None
    try:
        return int(a.func(a) or 0)
    except (ValueError, TypeError, IndexError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
