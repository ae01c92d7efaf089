"""The FastCast experiments (small parameters)."""

import pandas as pd
import pytest

from phasecast import experiments as ex


def test_throughput_close_to_the_optimum():
    r = ex.fastcast_throughput(3, duration_s=0.3)
    assert r["optimal_mbps"] == pytest.approx(942 * 3 / 2)
    assert 0.9 < r["ratio"] <= 1.0
    assert len(r["per_node_mbps"]) == 3
    assert r["records_per_datagram"] >= 1


def test_throughput_matches_the_benchmark_figure():
    # core/examples/fastcast (docs/BENCHMARKS.md): N = 4, MTU 9000 -> 1233 Mb/s per process.
    assert round(ex.fastcast_throughput(4)["throughput_mbps"]) == 1233


def test_single_sender_without_allocation_is_bounded_by_the_link():
    r = ex.fastcast_throughput(2, duration_s=0.3, allocation=False)
    assert r["throughput_mbps"] <= r["optimal_mbps"]


def test_latency_is_flat_in_n():
    a = ex.fastcast_latency(2, duration_s=0.5)
    b = ex.fastcast_latency(6, duration_s=0.5)
    assert a["messages"] == b["messages"] > 0
    assert 0.05 < a["mean_ms"] < 1.0 and 0.05 < b["mean_ms"] < 1.0
    assert b["mean_ms"] < 2 * a["mean_ms"]
    assert b["deliveries"] == 6 * b["messages"]


def test_incr_takes_a_couple_of_round_trips():
    r = ex.fastcast_incr(3)
    assert r["ms"] is not None and 1.0 <= r["rtts"] <= 3.0


def test_bw_trace_replays_tables_1_to_3():
    df = ex.fastcast_bw_trace()
    assert isinstance(df, pd.DataFrame)
    assert len(df) == 16 * 3
    assert df["matches_paper"].all()
    last = df[df.step == "S16"].set_index("process")["current_bw"].to_dict()
    assert last == {"p0": 700, "p1": 300, "p2": 100}


def test_bw_timeline_follows_the_allocation():
    df, d = ex.fastcast_bw_timeline(phase_ms=40, bin_ms=10, details=True)
    assert list(df.columns[:4]) == ["time_ms", "req_0", "alloc_0", "rate_0"]
    assert len(df) == 20
    b = d["capacity_mbps"]
    first = df[df.time_ms == 30].iloc[0]
    assert first["req_0"] == pytest.approx(b / 4, rel=1e-3)
    # Everyone got its quarter once the INCRs were acknowledged.
    assert all(first[f"alloc_{i}"] == pytest.approx(b / 4, rel=1e-3) for i in range(4))
    assert first["achieved_mbps"] > 0.8 * first["optimal_mbps"]
    assert len(d["increases"]) >= 4


def test_grids_are_dataframes():
    g = ex.fastcast_throughput_grid([2, 3], duration_s=0.2, warmup_s=0.05)
    assert list(g["nodes"]) == [2, 3] and (g["ratio"] > 0.85).all()
    lg = ex.fastcast_latency_grid([2, 3], duration_s=0.3, workers=1)
    assert list(lg["nodes"]) == [2, 3] and (lg["mean_ms"] > 0).all()


@pytest.mark.parametrize(
    "call, exc",
    [
        (lambda: ex.fastcast_throughput(1), ValueError),
        (lambda: ex.fastcast_throughput(64), ValueError),
        (lambda: ex.fastcast_throughput(3, duration_s=0), ValueError),
        (lambda: ex.fastcast_throughput(3, warmup_s=1.0), ValueError),
        (lambda: ex.fastcast_throughput(3, msg_bytes=4), ValueError),
        (lambda: ex.fastcast_throughput(3, mtu=20000), ValueError),
        (lambda: ex.fastcast_throughput(3, link_mbps=-1), ValueError),
        (lambda: ex.fastcast_throughput("3"), TypeError),
        (lambda: ex.fastcast_latency(3, rate_mbps=10_000), ValueError),
        (lambda: ex.fastcast_incr(3, requester=3), IndexError),
        (lambda: ex.fastcast_bw_timeline(changes=[(0.0, 9, 10.0)]), IndexError),
        (lambda: ex.fastcast_bw_timeline(changes=[(0.0, 0, 0.0)]), ValueError),
        (lambda: ex.fastcast_bw_timeline(bin_ms=0), ValueError),
        (lambda: ex.fastcast_bw_timeline(msg_bytes=(600, 100)), ValueError),
    ],
)
def test_bad_arguments(call, exc):
    with pytest.raises(exc):
        call()


def test_omaha_saves_bandwidth_and_criticality_costs_the_leader_nothing():
    from phasecast import experiments as ex

    small = dict(instances=300, warmup=20, seed=3)
    none = ex.omaha("high", 0.0, **small)
    assert abs(none["bandwidth_saving"]) < 0.03
    full = ex.omaha("high", 1.0, **small)
    assert full["policy"]["decided"] == 280
    assert full["bandwidth_saving"] > 0.05
    assert full["bandwidth_saving"] > none["bandwidth_saving"]
    crit = ex.omaha("high", 1.0, timeout_rtt=2.0, policy="criticality", **small)
    assert crit["bandwidth_saving"] > 0.15
    assert crit["latency_degradation"] < 0.02
    # Same seed, same numbers.
    assert ex.omaha("high", 1.0, **small) == full


def test_omaha_bad_arguments():
    from phasecast import experiments as ex

    with pytest.raises(ValueError):
        ex.omaha("extreme", 0.5)
    with pytest.raises(ValueError):
        ex.omaha("high", 1.5, instances=10, warmup=1)
    with pytest.raises(ValueError):
        ex.omaha("high", 0.5, policy="magic", instances=10, warmup=1)
    with pytest.raises(ValueError):
        ex.omaha("high", 0.5, instances=10, warmup=10)
    with pytest.raises(TypeError):
        ex.omaha([2], 0.5)
