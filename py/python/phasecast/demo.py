"""A live cluster of real phasecast nodes over UDP on loopback, driven from
Python (``python -m phasecast demo``).

Each node is a :class:`phasecast.Node` (the core's sans-IO engine) with its
own UDP socket on 127.0.0.1; one Python loop is every node's host: it hands
each node the datagrams its socket received and the time, sends what the
node wants sent (a datagram for the whole cluster is fanned out over
unicast), wakes it at its deadline and collects its events. Every node
broadcasts in uniform total order as fast as its window allows; optionally
one node stops dead part way. At the end the deliveries go through the same
property checker as the simulator's runs (:class:`phasecast.History`).

This loop is the template for hosting phasecast from Python: swap the
sockets for anything that carries datagrams.
"""

from __future__ import annotations

import selectors
import socket
import statistics
import struct
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from ._core import History, Node

#: sender (u16), counter (u32), time sent in µs (u64): the demo's own tag.
TAG = struct.Struct(">HIQ")
#: Most datagrams a node sends per pass of the loop.
MAX_BURST = 256


@dataclass
class _Member:
    id: int
    node: Node
    sock: socket.socket
    up: bool = True
    counter: int = 0
    broadcasts: List[Tuple[int, bytes]] = field(default_factory=list)
    delivered: List[Tuple[int, int, int, bytes]] = field(default_factory=list)
    latencies_us: List[int] = field(default_factory=list)
    views: List[Tuple[int, List[int]]] = field(default_factory=list)
    datagrams_out: int = 0


def _payload(sender: int, counter: int, now_us: int, size: int) -> bytes:
    head = TAG.pack(sender, counter, now_us)
    return head + bytes(max(0, size - len(head)))


def run(
    nodes: int = 3,
    seconds: float = 2.0,
    settle: float = 1.0,
    size: int = 100,
    crash: Optional[Tuple[int, float]] = None,
    mtu: int = 1400,
) -> Dict[str, Any]:
    """Runs the cluster and returns the report as a dict (see :func:`main`).

    ``crash=(node, at_s)`` makes ``node`` stop dead ``at_s`` seconds in
    (no goodbye: its socket closes); the survivors' failure detector
    suspects it and they install a view without it.
    """
    if not 2 <= nodes <= 16:
        raise ValueError("nodes must be in 2..16")
    if seconds <= 0 or settle < 0:
        raise ValueError("seconds must be > 0 and settle >= 0")
    if not TAG.size <= size <= 60000:
        raise ValueError(f"size must be in {TAG.size}..60000")
    if crash is not None and not 0 <= crash[0] < nodes:
        raise IndexError(f"crash node {crash[0]} is not in 0..{nodes - 1}")
    sel = selectors.DefaultSelector()
    socks = []
    for _ in range(nodes):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
        socks.append(s)
    addrs = [s.getsockname() for s in socks]
    by_addr = {a: i for i, a in enumerate(addrs)}
    members = list(range(nodes))
    cluster = [
        _Member(i, Node(i, members, mtu=mtu, seed=0x5EED ^ i, heartbeat_ms=20.0,
                        fd_timeout_ms=300.0, rto_ms=10.0, window=64), socks[i])
        for i in range(nodes)
    ]
    for m in cluster:
        sel.register(m.sock, selectors.EVENT_READ, m)

    t0 = time.monotonic()

    def now_ms() -> float:
        return (time.monotonic() - t0) * 1000.0

    def send(m: _Member, dest: Optional[int], data: bytes) -> None:
        targets = [dest] if dest is not None else [i for i in members if i != m.id]
        for d in targets:
            try:
                m.sock.sendto(data, addrs[d])
            except OSError:
                pass  # a full buffer is a lost datagram: the protocol repairs it
        m.datagrams_out += 1

    def service(m: _Member, t: float) -> None:
        node = m.node
        deadline = node.poll_timeout()
        if deadline is not None and deadline <= t:
            node.handle_timeout(now_ms=t)
        # Bounded work per pass, as any host loop: a node that keeps
        # producing datagrams (a view change re-sends its RECOVER as fast as
        # it is asked) must not starve the others nor the clock.
        for _ in range(MAX_BURST):
            tx = node.poll_transmit(now_ms=t)
            if tx is None:
                break
            send(m, tx[0], tx[1])
        while (ev := node.poll_event()) is not None:
            kind = ev["type"]
            if kind == "delivered":
                p = ev["payload"]
                sender, counter, sent_us = TAG.unpack_from(p)
                m.delivered.append((ev["sn"], sender, counter, p))
                if sender == m.id:
                    m.latencies_us.append(int(t * 1000) - sent_us)
            elif kind == "view_changed":
                m.views.append((ev["view_id"], ev["members"]))

    stop_sending = seconds * 1000.0
    end = (seconds + settle) * 1000.0
    crash_at = crash[1] * 1000.0 if crash is not None else None
    while True:
        t = now_ms()
        if t >= end:
            break
        if crash is not None and crash_at is not None and t >= crash_at and cluster[crash[0]].up:
            victim = cluster[crash[0]]
            victim.up = False
            sel.unregister(victim.sock)
            victim.sock.close()
        live = [m for m in cluster if m.up]
        # The application: broadcast while the window lets us.
        if t < stop_sending:
            for m in live:
                for _ in range(16):
                    p = _payload(m.id, m.counter, int(t * 1000), size)
                    if m.node.broadcast(p, now_ms=t) is None:
                        break  # Full: backpressure
                    m.broadcasts.append((m.counter, p))
                    m.counter += 1
        for m in live:
            service(m, t)
        # Sleep until a datagram arrives or the next deadline (at most 1 ms).
        deadlines = [d for m in live if (d := m.node.poll_timeout()) is not None]
        wait = 0.0 if t < stop_sending else min([1.0] + [max(0.0, d - t) for d in deadlines]) / 1000.0
        for key, _ in sel.select(timeout=wait):
            m = key.data
            while True:
                try:
                    data, src = m.sock.recvfrom(65536)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break
                sender = by_addr.get(src)
                if sender is not None:
                    m.node.handle_datagram(sender, data, now_ms=now_ms())
            service(m, now_ms())
    elapsed_send = seconds
    for m in cluster:
        if m.up:
            m.sock.close()
    sel.close()
    return _report(cluster, elapsed_send, crash)


def _report(cluster: List[_Member], seconds: float, crash: Optional[Tuple[int, float]]) -> Dict[str, Any]:
    h = History(range(len(cluster)))
    for m in cluster:
        for counter, p in m.broadcasts:
            h.broadcast(m.id, counter, p)
        for sn, sender, counter, p in m.delivered:
            h.deliver(m.id, sender, counter, p, sn=sn)
        if not m.up:
            h.crash(m.id)
    check = h.check(fifo=True)
    nodes = []
    for m in cluster:
        c = m.node.counters()
        lat = sorted(m.latencies_us)
        nodes.append({
            "node": m.id,
            "crashed": not m.up,
            "broadcasts": len(m.broadcasts),
            "delivered": len(m.delivered),
            "delivered_per_s": len(m.delivered) / seconds,
            "latency_p50_ms": lat[len(lat) // 2] / 1000 if lat else None,
            "latency_p99_ms": lat[min(len(lat) - 1, len(lat) * 99 // 100)] / 1000 if lat else None,
            "datagrams_sent": c["datagrams_sent"],
            "bytes_sent": c["bytes_sent"],
            "records_per_datagram": c["records_per_datagram"],
            "retransmissions": c["retransmissions"],
            "views": m.views,
        })
    survivors = [m for m in cluster if m.up]
    logs = [[(sn, s, k) for sn, s, k, _ in m.delivered] for m in survivors]
    identical = all(log == logs[0] for log in logs)
    return {
        "nodes": nodes,
        "crash": list(crash) if crash else None,
        "survivors_identical": identical,
        "check": check,
    }


def main(nodes: int = 3, seconds: float = 2.0, crash: Optional[Tuple[int, float]] = None,
         size: int = 100, as_json: bool = False) -> int:
    """Runs the demo and prints its report; returns the exit code (1 if the
    check failed)."""
    import json

    r = run(nodes=nodes, seconds=seconds, crash=crash, size=size)
    if as_json:
        print(json.dumps(r, indent=2))
        return 0 if r["check"]["ok"] else 1
    print(f"{nodes} phasecast nodes over UDP on 127.0.0.1, driven from Python, "
          f"broadcasting {size}-byte messages for {seconds:g} s"
          + (f"; node {crash[0]} stops dead at {crash[1]:g} s" if crash else ""))
    print("| node | delivered msgs/s | own latency p50 / p99 ms | datagrams | records/datagram | retrans | views |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for n in r["nodes"]:
        views = " → ".join(f"{v}:{m}" for v, m in n["views"]) or "-"
        p50 = f"{n['latency_p50_ms']:.2f}" if n["latency_p50_ms"] is not None else "-"
        p99 = f"{n['latency_p99_ms']:.2f}" if n["latency_p99_ms"] is not None else "-"
        print(f"| {n['node']}{' (crashed)' if n['crashed'] else ''} | {n['delivered_per_s']:,.0f} | "
              f"{p50} / {p99} | {n['datagrams_sent']} | {n['records_per_datagram']:.1f} | "
              f"{n['retransmissions']} | {views} |")
    c = r["check"]
    verdict = ", ".join(f"{k}: {'ok' if c[k] else 'VIOLATED'}"
                        for k in ("validity", "integrity", "agreement", "total_order", "fifo"))
    print(f"order check ({c['deliveries']} deliveries of {c['messages']} messages): {verdict}")
    print("survivors delivered " + ("identical sequences" if r["survivors_identical"] else "DIFFERENT sequences"))
    for v in c["violations"][:10]:
        print("  -", v)
    return 0 if c["ok"] and r["survivors_identical"] else 1
