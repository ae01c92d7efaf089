"""Omaha's tables as DataFrames (small runs: 300 instances instead of 3000)."""

import pandas as pd
import pytest

from phasecast import experiments as ex

SMALL = dict(instances=300, warmup=30)


@pytest.fixture(scope="module")
def table1():
    return ex.omaha_table1(proba_bufs=(0.2, 0.6, 1.0), **SMALL)


def test_table1_is_load_by_proba_buf_beside_the_paper(table1):
    assert isinstance(table1, pd.DataFrame)
    assert len(table1) == 9
    piv = table1.pivot(index="load", columns="proba_buf", values="bandwidth_saving")
    assert list(piv.index) == ["low", "medium", "high"]
    assert list(piv.columns) == [0.2, 0.6, 1.0]
    # Saving grows with probaBuf and with the load (the paper's trends).
    for load in piv.index:
        assert piv.loc[load, 0.2] < piv.loc[load, 1.0]
    assert piv.loc["low", 1.0] < piv.loc["high", 1.0]
    paper = table1.set_index(["load", "proba_buf"])
    assert paper.loc[("high", 1.0), "paper_bandwidth_saving"] == pytest.approx(0.302)
    assert paper.loc[("high", 1.0), "paper_latency_degradation"] == pytest.approx(0.054)
    assert paper.loc[("low", 0.2), "paper_bandwidth_saving"] == pytest.approx(0.012)


def test_table2_is_the_same_runs_read_for_latency(table1):
    t2 = ex.omaha_table2(proba_bufs=(0.2, 0.6, 1.0), **SMALL)
    pd.testing.assert_frame_equal(t2, table1)  # deterministic
    high = t2[t2.load == "high"].set_index("proba_buf")
    assert high.loc[1.0, "latency_degradation"] > high.loc[0.2, "latency_degradation"]
    assert (t2.policy_mean_ms > 0).all()


def test_table3_timeouts():
    t3 = ex.omaha_table3(loads=("high",), **SMALL)
    assert list(t3.timeout_rtt) == [0.25, 0.5, 1.0, 1.2]
    assert list(t3.paper_bandwidth_saving) == pytest.approx([0.187, 0.249, 0.281, 0.292])
    assert list(t3.paper_latency_degradation) == pytest.approx([0.032, 0.038, 0.042, 0.041])
    # A longer timeout buffers longer: more saving at RTT than at RTT/4.
    assert t3.bandwidth_saving.iloc[2] > t3.bandwidth_saving.iloc[0]
    # No paper value for a probaBuf the paper did not run.
    other = ex.omaha_table3(loads=("low",), timeouts_rtt=(1.0,), proba_buf=0.5, **SMALL)
    assert other.paper_bandwidth_saving.isna().all()


def test_loss_runs():
    df = ex.omaha_loss(losses=(0.0, 0.1), **SMALL)
    assert list(df.loss) == [0.0, 0.1]
    assert (df.bandwidth_saving > 0.05).all()
    # Loss makes both runs slower (leaders retry after two RTTs).
    assert df.baseline_mean_ms.iloc[1] > df.baseline_mean_ms.iloc[0]


def test_frontier_criticality_saves_without_delaying_the_leader():
    f = ex.omaha_frontier(
        policies={
            "omaha": [dict(proba_buf=1.0, timeout_rtt=1.0)],
            "time_based": [dict(proba_buf=0.0, timeout_rtt=0.25)],
            "horizon": [dict(proba_buf=1.0, timeout_rtt=1.0, horizon_rtt=0.5)],
            "criticality": [dict(proba_buf=0.0, timeout_rtt=1.0)],
        },
        **SMALL,
    )
    by = f.set_index("policy")
    assert set(by.index) == {"omaha", "time_based", "horizon", "criticality"}
    assert abs(by.loc["criticality", "latency_degradation"]) < 0.01
    assert by.loc["criticality", "bandwidth_saving"] > by.loc["omaha", "bandwidth_saving"]
    # What criticality costs: the learners hear later.
    assert by.loc["criticality", "learner_degradation"] > 0.05
    # The time-based baseline delays everything.
    assert by.loc["time_based", "latency_degradation"] > by.loc["omaha", "latency_degradation"]
    assert by.loc["horizon", "horizon_rtt"] == 0.5


def test_grid_bad_arguments():
    with pytest.raises(ValueError):
        ex.omaha_grid(loads=(), **SMALL)
    with pytest.raises(ValueError):
        ex.omaha_grid(loads=("extreme",), **SMALL)
    with pytest.raises(ValueError):
        ex.omaha_grid(policies=("magic",), **SMALL)
    with pytest.raises(ValueError):
        ex.omaha_frontier(policies={}, **SMALL)
    with pytest.raises(TypeError):
        ex.omaha_table1(proba_bufs=("high",), **SMALL)
