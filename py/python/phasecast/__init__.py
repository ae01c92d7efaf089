"""phasecast from Python: group communication over datagrams, simulated.

phasecast's core is an allocation-free sans-IO engine in Rust (uniform total
order broadcast after FastCast, with view changes and max-min fair bandwidth
allocation). This package drives it from Python:

* :class:`Simulation` — a cluster of real nodes on a deterministic simulated
  network (latency, bandwidth, loss, duplication, reordering, crashes,
  partitions), replayable from a seed, checked by :meth:`Simulation.check`.
* :class:`History` — the same property checker (validity, integrity,
  uniform agreement, total order, FIFO) over logs recorded anywhere.
* :class:`Node` — one real sans-IO node for hosts written in Python
  (``python -m phasecast demo`` runs a cluster over UDP on loopback).
* :func:`max_min_share` — FastCast's ``BW_allocation``.
* :mod:`phasecast.experiments` — the papers' experiments, with grids as
  pandas DataFrames.
"""

from ._core import (
    MAX_NODES,
    MAX_SIM_MTU,
    History,
    Node,
    Simulation,
    __version__,
    max_min_share,
)

#: The sans-IO node is what a UDP host drives; the alias says so.
UdpNode = Node

__all__ = [
    "__version__",
    "History",
    "MAX_NODES",
    "MAX_SIM_MTU",
    "Node",
    "Simulation",
    "UdpNode",
    "experiments",
    "max_min_share",
]


def __getattr__(name: str):
    # `phasecast.experiments` imports pandas: load it on first use only.
    if name == "experiments":
        import importlib

        return importlib.import_module(".experiments", __name__)
    raise AttributeError(f"module 'phasecast' has no attribute {name!r}")
