"""Point-to-point sends through Omaha's pledge buffers (Algorithm 1 of §A.2)
on the simulated network: what is held, what leaves when, in how many
datagrams, and that payloads arrive intact."""

import pytest

from phasecast import Simulation

A, B = 1, 2  # two applications


def quiet(nodes=4, **kw):
    """A cluster whose only traffic is ours: heartbeats every second, and
    no broadcasts (so no total-order acks)."""
    kw.setdefault("latency_ms", 5.0)
    s = Simulation(nodes, 0, heartbeat_ms=1000, fd_timeout_ms=5000, **kw)
    s.run(10)
    return s


def received_at(s, node):
    return [(e["time_ms"], e["sender"], e["payload"]) for e in s.events(node)
            if e["type"] == "received"]


def held_then_pledged(proba_buf):
    s = quiet()
    before = s.stats(0)["datagrams"]
    s.begin_pledge(0, B, [1, 2])
    s.send(0, [1], b"ack of A", proba_buf=proba_buf, timeout_ms=60, app=A)
    s.run(30)
    early = s.stats(0)["datagrams"] - before
    s.pledged_send(0, [1, 2], b"accept of B", app=B)
    s.run(120)
    return s, early, s.stats(0)["datagrams"] - before


def test_a_foreign_pledge_holds_the_message_until_the_pledged_send():
    s, early, total = held_then_pledged(1.0)
    assert early == 0, "A's message waits behind B's pledge"
    # One datagram to 1 carrying both messages, one to 2.
    assert total == 2
    assert s.stats()["messages_buffered"] == 1
    at1 = received_at(s, 1)
    assert [p for _, _, p in at1] == [b"ack of A", b"accept of B"]
    assert at1[0][0] == at1[1][0] == 35.0, "both arrive together (sent at 30 ms)"
    assert s.received(2) == [(0, b"accept of B")]


def test_proba_zero_leaves_at_once():
    s, early, total = held_then_pledged(0.0)
    assert early == 1
    assert total == 3
    assert s.stats()["messages_buffered"] == 0
    at1 = received_at(s, 1)
    assert [t for t, _, _ in at1] == [15.0, 35.0]
    assert s.received(1) == [(0, b"ack of A"), (0, b"accept of B")]


def test_the_deadline_sends_what_waited_behind_an_abandoned_pledge():
    s = quiet()
    s.begin_pledge(0, B, [3])
    s.send(0, [3], b"one", proba_buf=1.0, timeout_ms=40, app=A)
    s.send(0, [3], b"two", proba_buf=1.0, timeout_ms=40, app=A)
    s.end_pledge(0, B)
    s.run(100)
    at3 = received_at(s, 3)
    # Both left at 10 + 40 ms in one datagram, arriving 5 ms later.
    assert at3 == [(55.0, 0, b"one"), (55.0, 0, b"two")]
    assert s.stats(0)["sent_at_deadline"] == 1


def test_own_pledge_does_not_hold_and_none_never_buffers():
    s = quiet()
    s.begin_pledge(0, A, [1])
    s.send(0, [1], b"mine", proba_buf=1.0, timeout_ms=50, app=A)
    s.run(20)
    assert s.received(1) == [(0, b"mine")]
    n = quiet(aggregation="none")
    n.begin_pledge(0, B, [1])
    n.send(0, [1], b"x", proba_buf=1.0, timeout_ms=50, app=A)
    n.run(20)
    assert n.received(1) == [(0, b"x")]
    assert n.stats()["messages_buffered"] == 0


def test_time_based_buffers_without_a_pledge():
    s = quiet(aggregation="time_based")
    s.send(0, [1], b"a", timeout_ms=30, app=A)
    s.send(0, [1], b"b", timeout_ms=30, app=A)
    s.run(100)
    assert [(t, p) for t, _, p in received_at(s, 1)] == [(45.0, b"a"), (45.0, b"b")]


def test_payloads_arrive_intact_in_order():
    # Constant latency: the point-to-point layer is best effort, and a burst
    # of datagrams reordered beyond the receiver's anti-replay window would
    # be dropped as stale (by design, not lost here).
    s = quiet(5, latency_ms=2.0)
    sent = {d: [] for d in range(1, 5)}
    for k in range(200):
        dests = [1 + (k % 4), 1 + ((k + 1) % 4)]
        # 0 .. 2999 bytes: many are fragmented over 1500-byte datagrams.
        payload = bytes((k * 7 + i) % 251 for i in range(k * 37 % 3000))
        at = 10 + k * 0.5
        if k % 10 == 0:
            s.begin_pledge(0, B, dests, at_ms=at)
        s.send(0, dests, payload, proba_buf=0.5, timeout_ms=20, app=A, at_ms=at)
        for d in dests:
            sent[d].append(payload)
    s.run(500)
    assert s.stats()["messages_buffered"] > 0
    for d in range(1, 5):
        got = [p for src, p in s.received(d)]
        assert all(src == 0 for src, _ in s.received(d))
        # Best effort, no loss here: every message arrives, once. Messages
        # to one destination leave in the order they were sent.
        assert got == sent[d]
    assert s.stats()["sends_accepted"] == 200


def test_full_is_queued_and_retried():
    s = quiet(3, bandwidth_mbps=10)
    payload = b"z" * 1000
    for _ in range(3000):
        s.send(0, [1], payload)
    s.run(50)
    st = s.stats()
    assert st["refused_full"] > 0, "the core's queue filled up"
    assert st["sends_accepted"] < 3000
    s.run(4000)
    assert len(s.received(1)) == 3000
    assert s.stats()["sends_accepted"] == 3000
    assert s.stats()["app_retries"] > 0


@pytest.mark.parametrize("policy", ["omaha", "none", "time_based", "horizon", "criticality"])
def test_every_policy_delivers(policy):
    s = quiet(aggregation=policy)
    s.begin_pledge(0, B, [1, 2, 3])
    for k in range(20):
        s.send(0, [1, 2, 3], b"m%d" % k, proba_buf=1.0, timeout_ms=10, app=A,
               critical=k % 2 == 0, at_ms=10 + k)
    s.pledged_send(0, [1, 2, 3], b"end", app=B, at_ms=40)
    s.run(200)
    for d in (1, 2, 3):
        assert [p for _, p in s.received(d)] == [b"m%d" % k for k in range(20)] + [b"end"]
