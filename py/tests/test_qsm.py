"""QSM §5 from Python: small regions, short runs (the notebook and
docs/BENCHMARKS.md have the 110-receiver figures)."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from phasecast import experiments as ex


def test_undisturbed_run_delivers_everything_in_order():
    r = ex.qsm(6, 16, messages=500, token_period_ms=50)
    assert r["all_delivered"] and r["sent"] == r["min_delivered"] == 500
    assert r["fifo_violations"] == 0 and r["corrupted"] == 0
    assert r["state_bytes_per_group"] <= 128
    assert r["throughput_msgs_per_s"] > 1000
    # One partition of 6: the token's round trip is a few hops of 100-200 µs.
    assert 0.5 < r["token_rtt_ms"] < 5
    # Acknowledged within one or two token periods.
    assert 25 < r["ack_latency_ms"] < 150
    assert r["pending_max"] == 256  # the sender's window filled
    assert r["victim"] is None and r["forwards"] == 0 and r["remulticasts"] == 0
    assert r["memory_per_node_bytes"] > r["qsm_state_bytes"] > r["group_table_bytes"]


def test_groups_change_nothing_but_the_group_id():
    one = ex.qsm(6, 1, messages=400, token_period_ms=50)
    many = ex.qsm(6, 4096, messages=400, token_period_ms=50)
    for k in ("throughput_msgs_per_s", "ack_latency_ms", "token_rtt_ms", "qsm_state_bytes"):
        assert one[k] == many[k], k


def test_bursty_receiver_is_repaired_by_its_peers():
    # 30 receivers: two partitions, the victim's losses are forwarded.
    r = ex.qsm(30, 64, "bursty", messages=None, duration_s=1.5, token_period_ms=20, rate=1000)
    assert r["victim"] == 17
    assert r["all_delivered"] and r["fifo_violations"] == 0
    assert r["forwards"] > 0
    assert r["token_rtt_ms"] == r["region_token_rtt_ms"] > 0
    assert r["partition_token_rtt_ms"] > r["region_token_rtt_ms"]


def test_sleeping_receiver_delays_acknowledgement_by_its_sleep():
    calm = ex.qsm(6, 8, "none", messages=None, duration_s=2.0, token_period_ms=50)
    sleepy = ex.qsm(6, 8, "sleep", messages=None, duration_s=2.0, token_period_ms=50)
    assert sleepy["all_delivered"] and sleepy["fifo_violations"] == 0
    assert sleepy["victim"] == 5
    assert calm["ack_latency_max_ms"] < 100
    assert sleepy["ack_latency_max_ms"] > 450  # the 0.5 s sleep
    assert sleepy["throughput_msgs_per_s"] < calm["throughput_msgs_per_s"]


@pytest.mark.parametrize("receivers", [10, 25])
def test_bursty_receiver_in_a_single_partition(receivers):
    # One partition (<= 25 receivers): once its peers have freed their copies
    # on stability, the bursty receiver's stalled stream asks the sender after
    # 3 token visits (core: sim::qsm::tests::
    # a_bursty_receiver_in_a_single_partition_is_repaired). It used to stall
    # the sender's window for good.
    r = ex.qsm(receivers, 16, "bursty", messages=None, duration_s=2.5, token_period_ms=20,
               rate=1000)
    assert r["all_delivered"] and r["sent"] == r["min_delivered"] >= 2400
    assert r["fifo_violations"] == 0 and r["corrupted"] == 0
    assert r["remulticasts"] > 0  # the sender served what no peer held any more
    assert r["pending_max"] < 256  # the window never filled


def test_grid_is_a_dataframe():
    df = ex.qsm_grid(receivers=(3, 6), groups=(1, 64), token_periods_ms=(50,), messages=300)
    assert isinstance(df, pd.DataFrame) and len(df) == 4
    assert list(df.columns[:4]) == ["loss_scenario", "token_period_ms", "receivers", "groups"]
    assert df.all_delivered.all() and (df.fifo_violations == 0).all()
    assert (df.state_bytes_per_group <= 128).all()


@pytest.mark.parametrize(
    "kwargs, exc",
    [
        (dict(receivers=0), ValueError),
        (dict(receivers=128), ValueError),
        (dict(receivers=2.5), TypeError),
        (dict(groups=0), ValueError),
        (dict(groups=8193), ValueError),
        (dict(groups="many"), TypeError),
        (dict(loss_scenario="storm"), ValueError),
        (dict(loss_scenario=None), TypeError),
        (dict(messages=0), ValueError),
        (dict(messages=1.5), TypeError),
        (dict(seed=-1), ValueError),
        (dict(token_period_ms=0), ValueError),
        (dict(token_period_ms=0.5), ValueError),
        (dict(token_period_ms="fast"), TypeError),
        (dict(duration_s=0), ValueError),
        (dict(duration_s=float("nan")), ValueError),
        (dict(rate=-1), ValueError),
        (dict(msg_bytes=4), ValueError),
        (dict(msg_bytes=9000), ValueError),
        (dict(link_mbps=0), ValueError),
    ],
)
def test_bad_arguments(kwargs, exc):
    args = dict(receivers=3, groups=2, messages=50, token_period_ms=50)
    args.update(kwargs)
    with pytest.raises(exc):
        ex.qsm(**args)
    # Nothing is left behind: the next run works.
    assert ex.qsm(3, 2, messages=50, token_period_ms=50)["all_delivered"]


def test_cli():
    p = subprocess.run(
        [sys.executable, "-m", "phasecast", "experiment", "qsm", "--param", "receivers=4",
         "--param", "groups=8", "--param", "loss_scenario=sleep", "--param", "messages=300",
         "--param", "token_period_ms=50", "--json"],
        capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["all_delivered"] and out["loss_scenario"] == "sleep" and out["groups"] == 8
