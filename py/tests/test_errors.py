"""Bad arguments raise ValueError / TypeError / IndexError, and leave the
simulation usable."""

import math

import pytest

from phasecast import MAX_NODES, MAX_SIM_MTU, Simulation


@pytest.mark.parametrize(
    "kwargs, exc",
    [
        (dict(nodes=0), ValueError),
        (dict(nodes=MAX_NODES + 1), ValueError),
        (dict(nodes=-3), ValueError),
        (dict(nodes=2.0), TypeError),
        (dict(nodes="3"), TypeError),
        (dict(seed=-1), ValueError),
        (dict(seed=2**64), ValueError),
        (dict(seed=1.5), TypeError),
        (dict(latency_ms=(-1.0, 0.1)), ValueError),
        (dict(latency_ms=(1.0, -0.1)), ValueError),
        (dict(latency_ms=(math.nan, 0.0)), ValueError),
        (dict(latency_ms=-2), ValueError),
        (dict(latency_ms="fast"), TypeError),
        (dict(latency_ms=(1, 2, 3)), TypeError),
        (dict(bandwidth_mbps=0), ValueError),
        (dict(bandwidth_mbps=-10), ValueError),
        (dict(bandwidth_mbps=math.inf), ValueError),
        (dict(loss=1.5), ValueError),
        (dict(loss=-0.1), ValueError),
        (dict(loss=math.nan), ValueError),
        (dict(duplicate=2.0), ValueError),
        (dict(reorder=-1e-9), ValueError),
        (dict(loss="a lot"), TypeError),
        (dict(mtu=100), ValueError),
        (dict(mtu=MAX_SIM_MTU + 1), ValueError),
        (dict(mtu=1500.0), TypeError),
        (dict(window=0), ValueError),
        (dict(window=10_000), ValueError),
        (dict(heartbeat_ms=0), ValueError),
        (dict(heartbeat_ms=50, fd_timeout_ms=40), ValueError),
        (dict(rto_ms=-1), ValueError),
        (dict(view_policy="majority"), ValueError),
        (dict(link_capacity_mbps=0), ValueError),
        (dict(max_message=3), ValueError),
        (dict(aggregation="sometimes"), ValueError),
        (dict(aggregation="horizon", horizon_ms=-1), ValueError),
        (dict(tob_batch=-1), ValueError),
        (dict(tob_batch="4k"), TypeError),
    ],
)
def test_bad_constructor_arguments(kwargs, exc):
    args = dict(nodes=3, seed=0)
    args.update(kwargs)
    with pytest.raises(exc):
        Simulation(**args)


@pytest.fixture
def sim():
    s = Simulation(3, 0)
    s.run(5)
    return s


@pytest.mark.parametrize(
    "call, exc",
    [
        (lambda s: s.broadcast(3, b"x"), IndexError),
        (lambda s: s.broadcast(-1, b"x"), IndexError),
        (lambda s: s.broadcast(2**70, b"x"), IndexError),
        (lambda s: s.broadcast(1.0, b"x"), TypeError),
        (lambda s: s.broadcast(None, b"x"), TypeError),
        (lambda s: s.broadcast(0, "text"), TypeError),
        (lambda s: s.broadcast(0, 42), TypeError),
        (lambda s: s.broadcast(0, b"x" * 70000), ValueError),
        (lambda s: s.broadcast(0, b"x", at_ms=-1), ValueError),
        (lambda s: s.broadcast(0, b"x", at_ms=1.0), ValueError),  # in the past
        (lambda s: s.broadcast(0, b"x", at_ms=math.nan), ValueError),
        (lambda s: s.broadcast(0, b"x", at_ms=math.inf), ValueError),
        (lambda s: s.crash(5, 10), IndexError),
        (lambda s: s.crash(0, -10), ValueError),
        (lambda s: s.restart(9), IndexError),
        (lambda s: s.partition([[0, 1], [1, 2]], 10, 20), ValueError),
        (lambda s: s.partition([[0, 7]], 10, 20), IndexError),
        (lambda s: s.partition([[0], [1]], 20, 10), ValueError),
        (lambda s: s.partition("01", 10, 20), TypeError),
        (lambda s: s.partition([0, 1], 10, 20), TypeError),
        (lambda s: s.cut(0, 3, 10), IndexError),
        (lambda s: s.cut(0, 1, 10, 5), ValueError),
        (lambda s: s.run(-1), ValueError),
        (lambda s: s.run(1.0), ValueError),  # before now
        (lambda s: s.run(math.nan), ValueError),
        (lambda s: s.run(1e15), ValueError),
        (lambda s: s.run("later"), TypeError),
        (lambda s: s.delivered(3), IndexError),
        (lambda s: s.delivered(0, incarnation=-1), ValueError),
        (lambda s: s.views(-1), IndexError),
        (lambda s: s.stats(4), IndexError),
        (lambda s: s.events(10), IndexError),
        (lambda s: s.increase_bw(0, 10), ValueError),  # allocation off
        (lambda s: s.current_bw(3), IndexError),
        (lambda s: s.heal_all(at_ms=-5), ValueError),
        # point to point and pledges
        (lambda s: s.send(3, [1], b"x"), IndexError),
        (lambda s: s.send(0, [3], b"x"), IndexError),
        (lambda s: s.send(0, [-1], b"x"), IndexError),
        (lambda s: s.send(0, [0], b"x"), ValueError),  # itself
        (lambda s: s.send(0, [], b"x"), ValueError),
        (lambda s: s.send(0, [1, 1], b"x"), ValueError),
        (lambda s: s.send(0, 1, b"x"), TypeError),
        (lambda s: s.send(0, "12", b"x"), TypeError),
        (lambda s: s.send(0, [1.0], b"x"), TypeError),
        (lambda s: s.send(0, [1], "text"), TypeError),
        (lambda s: s.send(0, [1], b"x" * 70000), ValueError),
        (lambda s: s.send(0, [1], b"x", proba_buf=1.5), ValueError),
        (lambda s: s.send(0, [1], b"x", proba_buf=math.nan), ValueError),
        (lambda s: s.send(0, [1], b"x", proba_buf="always"), TypeError),
        (lambda s: s.send(0, [1], b"x", timeout_ms=-1), ValueError),
        (lambda s: s.send(0, [1], b"x", timeout_ms=math.inf), ValueError),
        (lambda s: s.send(0, [1], b"x", app=-1), ValueError),
        (lambda s: s.send(0, [1], b"x", app=2**16), ValueError),
        (lambda s: s.send(0, [1], b"x", app="paxos"), TypeError),
        (lambda s: s.send(0, [1], b"x", at_ms=1.0), ValueError),  # in the past
        (lambda s: s.begin_pledge(0, 1, [0]), ValueError),
        (lambda s: s.begin_pledge(0, 1, [5]), IndexError),
        (lambda s: s.begin_pledge(0, 1.5, [1]), TypeError),
        (lambda s: s.begin_pledge(0, 70000, [1]), ValueError),
        (lambda s: s.begin_pledge(4, 1, [1]), IndexError),
        (lambda s: s.pledged_send(0, [1, 3], b"x", app=1), IndexError),
        (lambda s: s.pledged_send(0, [1], b"x", proba_buf=-0.5), ValueError),
        (lambda s: s.end_pledge(0, -2), ValueError),
        (lambda s: s.end_pledge(7, 1), IndexError),
        (lambda s: s.received(3), IndexError),
        (lambda s: s.received(0, incarnation=-1), ValueError),
    ],
)
def test_bad_call_arguments(sim, call, exc):
    with pytest.raises(exc):
        call(sim)
    # Nothing changed: the simulation still runs and checks clean.
    sim.broadcast(0, b"after")
    sim.send(0, [2], b"p2p after")
    sim.run(200)
    assert sim.check()["ok"]
    assert (0, b"after") in sim.delivered(1)
    assert sim.received(2) == [(0, b"p2p after")]
    assert sim.stats()["sends_refused"] == 0


def test_bad_bandwidth_amounts():
    s = Simulation(2, 0, link_capacity_mbps=100)
    for bad in (0, -1, math.nan):
        with pytest.raises(ValueError):
            s.increase_bw(0, bad)


def test_payload_types():
    s = Simulation(2, 0)
    s.broadcast(0, b"bytes")
    s.broadcast(0, bytearray(b"bytearray"))
    s.broadcast(0, memoryview(b"memoryview"))
    s.broadcast(0, b"")
    s.broadcast(0, b"\0" * s.max_payload)
    s.run(100)
    got = [p for _, p in s.delivered(1)]
    assert got[:4] == [b"bytes", b"bytearray", b"memoryview", b""]
    assert got[4] == b"\0" * s.max_payload
