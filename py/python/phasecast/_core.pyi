"""Type stubs of phasecast's Rust extension (``phasecast._core``)."""

from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

__version__: str
#: Most nodes a Simulation holds.
MAX_NODES: int
#: Largest ``mtu`` a Simulation accepts.
MAX_SIM_MTU: int
#: Bytes of the identity tag a Simulation prefixes to every broadcast.
TAG_BYTES: int

Number = Union[int, float]
BytesLike = Union[bytes, bytearray, memoryview]

def max_min_share(requirements: Sequence[Number], me: int, capacity: Number) -> float:
    """FastCast's ``BW_allocation``: the max-min fair rate of process ``me``."""

class Simulation:
    """A cluster of real phasecast nodes on a deterministic simulated network."""

    def __init__(
        self,
        nodes: int,
        seed: int,
        latency_ms: Union[Number, Tuple[Number, Number], None] = (0.1, 0.0),
        bandwidth_mbps: Optional[Number] = None,
        loss: float = 0.0,
        duplicate: float = 0.0,
        reorder: float = 0.0,
        mtu: int = 1500,
        *,
        heartbeat_ms: float = 10.0,
        fd_timeout_ms: float = 100.0,
        rto_ms: float = 20.0,
        window: int = 16,
        link_capacity_mbps: Optional[Number] = None,
        view_policy: str = "primary_partition",
        max_message: int = 65536,
        aggregation: str = "omaha",
        horizon_ms: float = 10.0,
        tob_batch: int = 4096,
    ) -> None: ...
    @property
    def nodes(self) -> int: ...
    @property
    def seed(self) -> int: ...
    @property
    def mtu(self) -> int: ...
    @property
    def max_payload(self) -> int: ...
    @property
    def now_ms(self) -> float: ...
    @property
    def allocation(self) -> bool: ...
    def broadcast(self, node: int, payload: BytesLike, at_ms: Optional[float] = None) -> int:
        """Uniform total order broadcast from ``node``; queued and retried while the core is full."""
    def send(
        self,
        node: int,
        dests: Sequence[int],
        payload: BytesLike,
        proba_buf: float = 0.0,
        timeout_ms: float = 0.0,
        app: int = 0,
        *,
        critical: bool = True,
        at_ms: Optional[float] = None,
    ) -> None:
        """Omaha's ``send(msg, dests, probaBuf, t, app)``: point to point, each
        copy through its destination's pledge buffer; queued and retried while
        the core is full."""
    def begin_pledge(
        self, node: int, app: int, dests: Sequence[int], at_ms: Optional[float] = None
    ) -> None:
        """Omaha's ``beginPledge(app, futureDests)`` at ``node``."""
    def pledged_send(
        self,
        node: int,
        dests: Sequence[int],
        payload: BytesLike,
        proba_buf: float = 0.0,
        timeout_ms: float = 0.0,
        app: int = 0,
        *,
        critical: bool = True,
        at_ms: Optional[float] = None,
    ) -> None:
        """Omaha's ``pledgedSend``: ends ``app``'s pledge, then sends like :meth:`send`."""
    def end_pledge(self, node: int, app: int, at_ms: Optional[float] = None) -> None:
        """Ends ``app``'s pledge at ``node`` without sending."""
    def received(self, node: int, incarnation: int = 0) -> List[Tuple[int, bytes]]:
        """Point-to-point ``(sender, payload)`` in arrival order."""
    def increase_bw(self, node: int, mbps: float, at_ms: Optional[float] = None) -> None: ...
    def decrease_bw(self, node: int, mbps: float, at_ms: Optional[float] = None) -> None: ...
    def current_bw(self, node: int) -> Optional[float]: ...
    def crash(self, node: int, at_ms: Optional[float] = None) -> None: ...
    def restart(self, node: int, at_ms: Optional[float] = None) -> None: ...
    def partition(
        self,
        groups: Sequence[Sequence[int]],
        at_ms: Optional[float] = None,
        heal_ms: Optional[float] = None,
    ) -> None: ...
    def cut(
        self, src: int, dst: int, at_ms: Optional[float] = None, heal_ms: Optional[float] = None
    ) -> None: ...
    def heal_all(self, at_ms: Optional[float] = None, restart_crashed: bool = False) -> None: ...
    def run(self, until_ms: float, progress: Optional[bool] = None) -> None:
        """Runs until virtual time ``until_ms`` (GIL released, Ctrl-C between slices)."""
    def delivered(self, node: int, incarnation: int = 0) -> List[Tuple[int, bytes]]:
        """``(sender, payload)`` in delivery order."""
    def delivery_log(self, node: int, incarnation: int = 0) -> List[Dict[str, Any]]: ...
    def views(self, node: int, incarnation: int = 0) -> List[Tuple[float, int, List[int]]]: ...
    def view(self, node: int) -> Tuple[int, List[int]]: ...
    def sequencer(self, node: int) -> int: ...
    def is_up(self, node: int) -> bool: ...
    def incarnation(self, node: int) -> int: ...
    def events(self, node: Optional[int] = None) -> List[Dict[str, Any]]: ...
    def check(self, fifo: bool = True) -> Dict[str, Any]:
        """validity, integrity, agreement, total_order, fifo (bools), ok, violations, ..."""
    def stats(self, node: Optional[int] = None) -> Dict[str, Union[int, float]]: ...

class History:
    """Broadcasts, deliveries and crashes of a run, for the property checker."""

    def __init__(self, processes: Optional[Iterable[int]] = None) -> None: ...
    def broadcast(self, process: int, counter: int, payload: BytesLike) -> None: ...
    def deliver(
        self,
        process: int,
        sender: int,
        counter: int,
        payload: BytesLike,
        sn: Optional[int] = None,
    ) -> None: ...
    def crash(self, process: int) -> None: ...
    def check(self, fifo: bool = True, uniform: bool = True) -> Dict[str, Any]: ...

class Node:
    """One real sans-IO phasecast node, driven by a host written in Python."""

    def __init__(
        self,
        id: int,
        members: Sequence[int],
        *,
        mtu: int = 1400,
        seed: Optional[int] = None,
        incarnation: int = 1,
        join: bool = False,
        heartbeat_ms: Optional[float] = 20.0,
        fd_timeout_ms: Optional[float] = 300.0,
        rto_ms: float = 10.0,
        window: int = 64,
        link_capacity_mbps: Optional[float] = None,
        view_policy: str = "primary_partition",
        max_message: int = 65536,
        tob_batch: int = 4096,
    ) -> None: ...
    @property
    def id(self) -> int: ...
    @property
    def members(self) -> List[int]: ...
    @property
    def mtu(self) -> int: ...
    @property
    def current_bw(self) -> Optional[float]: ...
    @property
    def sequencer(self) -> int: ...
    @property
    def is_excluded(self) -> bool: ...
    def now_ms(self) -> float: ...
    def broadcast(self, payload: BytesLike, now_ms: Optional[float] = None) -> Optional[int]:
        """The message's counter, or None when full (retry later)."""
    def handle_datagram(self, sender: int, datagram: BytesLike, now_ms: Optional[float] = None) -> bool: ...
    def handle_timeout(self, now_ms: Optional[float] = None) -> None: ...
    def poll_transmit(self, now_ms: Optional[float] = None) -> Optional[Tuple[Optional[int], bytes]]:
        """``(destination, data)``; destination None means every other member."""
    def poll_event(self) -> Optional[Dict[str, Any]]: ...
    def poll_timeout(self) -> Optional[float]: ...
    def suspect(self, node: int, now_ms: Optional[float] = None) -> None: ...
    def increase_bw(self, mbps: float, now_ms: Optional[float] = None) -> bool: ...
    def decrease_bw(self, mbps: float, now_ms: Optional[float] = None) -> bool: ...
    def view(self) -> Tuple[int, List[int]]: ...
    def counters(self) -> Dict[str, Union[int, float]]: ...

def _fastcast_throughput(
    nodes: int, link_mbps: float, msg_bytes: int, duration_s: float, warmup_s: float,
    mtu: int, one_way_us: float, allocation: bool, seed: int,
) -> Dict[str, Any]: ...
def _fastcast_latency(
    nodes: int, msg_bytes: int, rate_mbps: float, duration_s: float, link_mbps: float,
    mtu: int, one_way_us: float, seed: int,
) -> Dict[str, Any]: ...
def _fastcast_incr(
    nodes: int, requester: int, link_mbps: float, mtu: int, one_way_us: float, seed: int
) -> Dict[str, Any]: ...
def _fastcast_bw_trace() -> Tuple[List[Dict[str, Any]], List[str]]: ...
def _omaha(
    load: float, proba_buf: float, timeout_rtt: float, instances: int, warmup: int,
    loss: float, policy: str, horizon_rtt: float, seed: int,
) -> Dict[str, Any]: ...
def _qsm(
    receivers: int, groups: int, loss_scenario: str, messages: Optional[int], seed: int,
    token_period_ms: float, duration_s: float, rate: int, msg_bytes: int, link_mbps: float,
    check_order: bool,
) -> Dict[str, Any]: ...
def _fastcast_bw_timeline(
    nodes: int, link_mbps: float, mtu: int, one_way_us: float,
    changes: List[Tuple[float, int, float]], end_ms: float, bin_ms: float,
    min_bytes: int, max_bytes: int, seed: int,
) -> Dict[str, Any]: ...
