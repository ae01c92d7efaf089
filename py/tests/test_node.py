"""The sans-IO node driven from Python: two nodes wired in memory."""

import pytest

from phasecast import Node, UdpNode


def pump(nodes, now):
    """Delivers every datagram until quiet; returns the events per node."""
    events = {n.id: [] for n in nodes}
    by_id = {n.id: n for n in nodes}
    for _ in range(1000):
        moved = False
        for n in nodes:
            while (tx := n.poll_transmit(now_ms=now)) is not None:
                dest, data = tx
                targets = [dest] if dest is not None else [m for m in by_id if m != n.id]
                for t in targets:
                    by_id[t].handle_datagram(n.id, data, now_ms=now)
                moved = True
            while (ev := n.poll_event()) is not None:
                events[n.id].append(ev)
            d = n.poll_timeout()
            if d is not None and d <= now:
                n.handle_timeout(now_ms=now)
                moved = True
        if not moved:
            return events
        now += 0.1
    raise AssertionError("no quiescence")


def test_total_order_between_python_driven_nodes():
    members = [0, 1, 2]
    nodes = [Node(i, members, heartbeat_ms=None, fd_timeout_ms=None) for i in members]
    assert UdpNode is Node
    assert [n.sequencer for n in nodes] == [0, 0, 0]
    counters = [nodes[i].broadcast(b"m%d" % i, now_ms=1.0) for i in members]
    assert counters == [0, 0, 0]
    events = pump(nodes, 1.0)
    logs = [[(e["sn"], e["sender"], e["payload"]) for e in events[i] if e["type"] == "delivered"]
            for i in members]
    assert len(logs[0]) == 3 and logs[0] == logs[1] == logs[2]
    assert sorted(p for _, _, p in logs[0]) == [b"m0", b"m1", b"m2"]
    assert [sn for sn, _, _ in logs[0]] == [0, 1, 2]
    c = nodes[0].counters()
    assert c["datagrams_sent"] > 0 and c["delivered"] == 3 and c["rejected"] == 0


def test_garbage_is_rejected_and_changes_nothing():
    a = Node(0, [0, 1], heartbeat_ms=None, fd_timeout_ms=None)
    for junk in (b"", b"\x00" * 40, bytes(range(256)) * 4):
        assert a.handle_datagram(1, junk, now_ms=1.0) is False
    assert a.handle_datagram(9, b"\x01" * 30, now_ms=1.0) is False
    assert a.counters()["rejected"] == 4
    assert a.poll_event() is None


def test_backpressure_is_none_not_an_exception():
    # Messages too large to batch (> Config::tob_batch = 4096 bytes) take a
    # slot of the window each.
    a = Node(0, [0, 1], window=2, heartbeat_ms=None, fd_timeout_ms=None)
    got = [a.broadcast(b"x" * 5000, now_ms=1.0) for _ in range(5)]
    assert got == [0, 1, None, None, None]


def test_small_broadcasts_under_contention_are_batched():
    # While the first message waits unsent, small ones join a batch (one slot
    # of the window for many messages) until the byte budget refuses; every
    # application message keeps its own counter and its own sn.
    nodes = [Node(i, [0, 1], window=2, heartbeat_ms=None, fd_timeout_ms=None) for i in (0, 1)]
    got = [nodes[0].broadcast(b"%03d" % k + b"x" * 97, now_ms=1.0) for k in range(40)]
    k = got.index(None)
    assert 2 < k < 40 and got[:k] == list(range(k)) and set(got[k:]) == {None}
    events = pump(nodes, 1.0)
    for i in (0, 1):
        log = [(e["sn"], e["sender"], e["payload"][:3]) for e in events[i] if e["type"] == "delivered"]
        assert log == [(j, 0, b"%03d" % j) for j in range(k)]
    # Delivered, the budget is free again and numbering continues.
    assert nodes[0].broadcast(b"again", now_ms=2.0) == k
    log = [e["sn"] for e in pump(nodes, 2.0)[1] if e["type"] == "delivered"]
    assert log == [k]


def test_batching_off_makes_the_window_count_messages():
    # tob_batch=0: every broadcast is its own ordering unit, so the window
    # of 2 refuses the third small message at once.
    nodes = [Node(i, [0, 1], window=2, tob_batch=0, heartbeat_ms=None, fd_timeout_ms=None) for i in (0, 1)]
    got = [nodes[0].broadcast(b"x" * 10, now_ms=1.0) for _ in range(5)]
    assert got == [0, 1, None, None, None]
    log = [e["sn"] for e in pump(nodes, 1.0)[1] if e["type"] == "delivered"]
    assert log == [0, 1]


def test_node_clock_and_timeouts():
    a = Node(0, [0, 1])
    assert a.now_ms() >= 0.0
    a.handle_timeout()
    t = a.poll_timeout()
    assert t is not None and t > 0  # the heartbeat


@pytest.mark.parametrize(
    "kwargs, exc",
    [
        (dict(id=0, members=[1, 2]), ValueError),
        (dict(id=0, members=[0, 0, 1]), ValueError),
        (dict(id=-1, members=[0]), ValueError),
        (dict(id=0, members="01"), TypeError),
        (dict(id=0, members=[0, 1], mtu=100), ValueError),
        (dict(id=0, members=[0, 1], window=0), ValueError),
        (dict(id=0, members=[0, 1], fd_timeout_ms=10.0, heartbeat_ms=20.0), ValueError),
        (dict(id=0, members=[0, 1], heartbeat_ms=None), ValueError),
        (dict(id=0, members=list(range(64))), ValueError),
        (dict(id=0, members=[0, 1], view_policy="x"), ValueError),
        (dict(id="a", members=[0, 1]), TypeError),
        (dict(id=0, members=[0, 1], tob_batch=-5), ValueError),
    ],
)
def test_bad_node_arguments(kwargs, exc):
    with pytest.raises(exc):
        Node(**kwargs)


def test_bad_call_arguments():
    a = Node(0, [0, 1])
    with pytest.raises(TypeError):
        a.broadcast("text")
    with pytest.raises(ValueError):
        a.broadcast(b"x" * 70000)
    with pytest.raises(ValueError):
        a.handle_datagram(1, b"x", now_ms=-1)
    with pytest.raises(ValueError):
        a.handle_datagram(70000, b"x")
    with pytest.raises(RuntimeError):
        a.suspect(0)  # itself
    with pytest.raises(ValueError):
        a.increase_bw(10)  # no link capacity
