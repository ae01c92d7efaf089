"""Simulation: total order under faults (checked by the shared checker),
deterministic replay, what the accessors report."""

import warnings

import pytest

from phasecast import Simulation


def load(sim, per_node=30, size=lambda n, k: 20 + (k * 37) % 900, at_ms=1.0):
    for n in range(sim.nodes):
        for k in range(per_node):
            sim.broadcast(n, bytes([n, k % 256]) * (size(n, k) // 2), at_ms=at_ms)


def assert_checked(sim, crashed=()):
    c = sim.check()
    assert c["ok"], c["violations"][:10]
    assert all(c[k] for k in ("validity", "integrity", "agreement", "total_order", "fifo"))
    assert sorted(c["crashed"]) == sorted(crashed)
    return c


def test_fault_free_every_node_delivers_everything_in_one_order():
    sim = Simulation(4, 1, latency_ms=(0.3, 0.06), bandwidth_mbps=100)
    load(sim)
    sim.run(2000)
    assert_checked(sim)
    logs = [sim.delivered(n) for n in range(4)]
    assert len(logs[0]) == 4 * 30
    assert all(log == logs[0] for log in logs)
    # The payloads come back untouched (the identity tag is stripped).
    sent = {bytes([n, k % 256]) * ((20 + (k * 37) % 900) // 2) for n in range(4) for k in range(30)}
    assert {p for _, p in logs[0]} == sent
    assert sim.now_ms == 2000.0


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("loss", [0.02, 0.1])
def test_agreement_and_total_order_under_loss_duplication_reordering(seed, loss):
    sim = Simulation(5, seed, latency_ms=(0.3, 0.06), bandwidth_mbps=100,
                     loss=loss, duplicate=0.1, reorder=0.1)
    load(sim, per_node=20)
    sim.run(6000)
    c = assert_checked(sim)
    assert c["deliveries"] == 5 * 5 * 20
    s = sim.stats()
    assert s["lost"] > 0 and s["duplicated"] > 0 and s["reordered"] > 0
    assert s["retransmissions"] > 0


@pytest.mark.parametrize("seed", [3, 4])
def test_crash_of_a_member_installs_a_view_without_it(seed):
    sim = Simulation(5, seed, latency_ms=(0.3, 0.06), bandwidth_mbps=100, loss=0.01)
    load(sim, per_node=40)
    sim.crash(4, at_ms=40)
    sim.run(5000)
    c = assert_checked(sim, crashed=[4])
    assert not sim.is_up(4) and sim.is_up(0)
    for n in range(4):
        _, view_id, members = sim.views(n)[-1]
        assert members == [0, 1, 2, 3] and view_id > 0
    # The crashed node's log is a prefix of the survivors' (uniform agreement).
    survivors = sim.delivered(0)
    assert sim.delivered(4) == survivors[: len(sim.delivered(4))]
    assert c["correct"] == 4


def test_crash_of_the_sequencer_moves_the_role():
    sim = Simulation(4, 7, latency_ms=(0.3, 0.06), bandwidth_mbps=100, loss=0.01)
    load(sim, per_node=40)
    assert sim.sequencer(1) == 0
    sim.crash(0, at_ms=30)
    sim.run(5000)
    assert_checked(sim, crashed=[0])
    assert sim.sequencer(1) == 1
    assert sim.view(2)[1] == [1, 2, 3]


def test_partition_keeps_the_majority_going_and_excludes_the_minority():
    sim = Simulation(5, 11, latency_ms=(0.3, 0.06), bandwidth_mbps=100)
    load(sim, per_node=20)
    sim.partition([[0, 1], [2, 3, 4]], at_ms=30, heal_ms=1500)
    sim.run(6000)
    c = assert_checked(sim, crashed=[0, 1])
    excluded = {e["node"] for e in sim.events() if e["type"] == "excluded"}
    assert excluded == {0, 1}
    for n in (2, 3, 4):
        assert sum(1 for s, _ in sim.delivered(n) if s >= 2) == 60
    assert c["correct"] == 3


def run_scenario(seed):
    sim = Simulation(4, seed, latency_ms=(0.5, 0.2), bandwidth_mbps=50,
                     loss=0.05, duplicate=0.05, reorder=0.05)
    load(sim, per_node=15)
    sim.crash(3, at_ms=25)
    sim.run(4000)
    return sim


def test_same_seed_same_run():
    a, b = run_scenario(5), run_scenario(5)
    for n in range(4):
        assert a.delivered(n) == b.delivered(n)
        assert a.views(n) == b.views(n)
        assert a.delivery_log(n) == b.delivery_log(n)
    assert a.stats() == b.stats()
    assert a.events() == b.events()


def test_another_seed_another_run():
    a, b = run_scenario(5), run_scenario(6)
    assert a.stats() != b.stats()


def test_queued_broadcasts_wait_for_the_window():
    # 200 broadcasts at once with a window of 4: the core refuses most with
    # Full at first; the application queue retries them all, in order.
    sim = Simulation(3, 2, window=4)
    for k in range(200):
        sim.broadcast(0, b"m%03d" % k)
    sim.run(2000)
    assert_checked(sim)
    assert [p for _, p in sim.delivered(1)] == [b"m%03d" % k for k in range(200)]
    s = sim.stats()
    assert s["refused_full"] > 0 and s["broadcasts"] == 200 and s["broadcasts_queued"] == 0


def test_delivery_log_times_and_latency():
    sim = Simulation(3, 2, latency_ms=0.25)
    sim.broadcast(1, b"x", at_ms=10)
    sim.run(100)
    rows = sim.delivery_log(2)
    assert len(rows) == 1
    r = rows[0]
    assert (r["sender"], r["counter"], r["payload"], r["sn"]) == (1, 0, b"x", 0)
    assert r["broadcast_ms"] == 10.0 and r["queued_ms"] == 10.0
    # DATA to everyone, ORDER from the sequencer, acknowledgements: a few hops.
    assert 0.5 <= r["time_ms"] - r["broadcast_ms"] < 5.0


def test_stats_count_the_wire():
    sim = Simulation(3, 0, bandwidth_mbps=10)
    load(sim, per_node=10)
    sim.run(1000)
    s = sim.stats()
    assert s["datagrams"] == s["datagrams_unicast"] + s["datagrams_multicast"] > 0
    assert s["header_bytes"] == 28 * s["datagrams"]
    assert s["records_per_datagram"] >= 1.0
    assert s["bytes"] > sum(20 + (k * 37) % 900 for k in range(10)) * 3
    per = [sim.stats(n)["datagrams"] for n in range(3)]
    assert sum(per) == s["datagrams"]
    assert s["transmit_capped"] == 0


def test_restart_rejoins_as_a_new_incarnation():
    sim = Simulation(4, 9, latency_ms=(0.3, 0.05), bandwidth_mbps=100)
    load(sim, per_node=10)
    sim.crash(3, at_ms=20)
    sim.restart(3, at_ms=600)
    for k in range(10):
        sim.broadcast(0, b"late%d" % k, at_ms=1500)
    sim.run(4000)
    c = assert_checked(sim, crashed=[3])
    assert sim.incarnation(3) == 1 and sim.is_up(3)
    later = [p for _, p in sim.delivered(3, incarnation=1)]
    assert [b"late%d" % k for k in range(10)] == [p for p in later if p.startswith(b"late")]
    assert sim.view(3)[1] == [0, 1, 2, 3]
    assert c["correct"] == 3


def test_bandwidth_allocation_through_the_total_order():
    sim = Simulation(3, 1, bandwidth_mbps=100, link_capacity_mbps=100)
    assert sim.allocation
    assert sim.current_bw(0) == 0.0
    sim.increase_bw(0, 80, at_ms=1)
    sim.increase_bw(1, 40, at_ms=1)
    sim.run(200)
    # max-min: p0 gets what the others leave of the link, p1 its 40.
    assert sim.current_bw(0) == pytest.approx(60.0, abs=0.01)
    assert sim.current_bw(1) == pytest.approx(40.0, abs=0.01)
    sim.decrease_bw(1, 30)
    sim.run(400)
    assert sim.current_bw(0) == pytest.approx(80.0, abs=0.01)
    assert sim.current_bw(1) == pytest.approx(10.0, abs=0.01)
    kinds = {e["type"] for e in sim.events(0)}
    assert "bandwidth_changed" in kinds


@pytest.mark.parametrize("tob_batch", [4096, 0])
def test_sn_counts_application_messages_only(tob_batch):
    # Delivered sn numbers application messages: consecutive from 0 and the
    # same at every node, although two bandwidth requests are ordered through
    # the total order, small broadcasts are batched (or not: tob_batch=0)
    # and a crash changes the view.
    sim = Simulation(4, 7, bandwidth_mbps=100, link_capacity_mbps=100, loss=0.02, tob_batch=tob_batch)
    sim.increase_bw(0, 40, at_ms=1)
    sim.increase_bw(1, 30, at_ms=1)
    for node in range(4):
        for k in range(50):
            sim.broadcast(node, b"%d/%02d" % (node, k), at_ms=2)
    sim.crash(3, at_ms=20)
    sim.run(3000)
    assert sim.check()["ok"]
    assert (sim.current_bw(0), sim.current_bw(1)) == (40.0, 30.0)
    assert sim.stats()["view_changes"] > 0
    logs = [[(d["sn"], d["sender"], d["counter"]) for d in sim.delivery_log(n)] for n in range(3)]
    assert logs[0] == logs[1] == logs[2]
    assert [sn for sn, _, _ in logs[0]] == list(range(len(logs[0])))
    per_sender = [sum(1 for _, s, _ in logs[0] if s == n) for n in range(4)]
    # The survivors' messages all arrive; of the crashed node's, what left
    # before the crash at 20 ms: everything when batched, a window's worth
    # of units and what followed them when not.
    assert per_sender[:3] == [50, 50, 50]
    assert per_sender[3] == 50 if tob_batch else 0 < per_sender[3] <= 50


def test_one_node_delivers_its_own():
    sim = Simulation(1, 0)
    sim.broadcast(0, b"alone")
    sim.run(100)
    assert sim.delivered(0) == [(0, b"alone")]
    assert_checked(sim)


def test_sequencer_crash_on_fast_links_converges_without_a_storm():
    # Regression: the survivors of this run used to re-send VIEW_CHANGE +
    # RECOVER without pause after the sequencer's crash (the simulator then
    # capped each node per virtual millisecond and warned). Since the view
    # change runs as one consensus per installed view they install a view
    # without the crashed sequencer, quietly, and agree.
    import warnings

    sim = Simulation(4, 0, latency_ms=(0.05, 0.02), loss=0.02,
                     heartbeat_ms=20, fd_timeout_ms=300, rto_ms=10, window=64)
    for n in range(4):
        for k in range(200):
            sim.broadcast(n, b"x" * 100, at_ms=k * 0.5)
    sim.crash(0, at_ms=60)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        sim.run(450)
    assert sim.now_ms == 450.0
    assert sim.stats()["transmit_capped"] == 0
    assert sim.view(1)[1] == [1, 2, 3]
    assert [len(sim.delivered(i)) for i in (1, 2, 3)] == [721, 721, 721]
    assert_checked(sim, crashed=[0])
