"""max_min_share against FastCast §3.5 and the bwRequirements of Tables 1–3."""

import math

import pytest

import phasecast
from phasecast import max_min_share


def shares(req, capacity):
    return [max_min_share(req, i, capacity) for i in range(len(req))]


def test_section_3_5_example():
    # 700, 600 and 300 Mb/s asked on a 1 Gb/s switch.
    assert shares([700, 600, 300], 1000) == [500, 500, 300]


@pytest.mark.parametrize(
    "req, expected",
    [
        ([800, 300, 0], [700, 300, 0]),  # Table 1, S8
        ([800, 300, 600], [500, 300, 500]),  # Table 2, S13
        ([800, 300, 100], [700, 300, 100]),  # Table 3, S16
    ],
)
def test_paper_tables_final_states(req, expected):
    assert shares(req, 1000) == expected


def test_returns_float():
    assert isinstance(max_min_share([700, 600, 300], 2, 1000), float)


def test_integers_round_down_like_the_core():
    assert shares([400] * 4, 1000) == [333] * 4


def test_floats_give_the_real_share():
    assert shares([400.0] * 4, 1000.0) == pytest.approx([1000 / 3] * 4, rel=1e-12)
    # Mb/s of a 942 Mb/s link: three processes asking for all of it.
    assert shares([942.0] * 3, 942.0) == pytest.approx([471.0] * 3)


def test_one_or_two_processes_get_min_of_requirement_and_capacity():
    assert max_min_share([5], 0, 3) == 3
    assert shares([1500, 10], 1000) == [1000, 10]


def test_receivers_are_never_overloaded():
    req = [900, 100, 100, 50, 700, 20]
    s = shares(req, 1000)
    for r in range(len(req)):
        assert sum(x for i, x in enumerate(s) if i != r) <= 1000
    assert all(x <= q for x, q in zip(s, req))


def test_huge_values_do_not_overflow():
    m = 2**64 - 1
    assert max_min_share([m, m, m], 0, m) == float(m // 2)


@pytest.mark.parametrize(
    "args, exc",
    [
        (([], 0, 1000), ValueError),
        (([1] * 65, 0, 1000), ValueError),
        (([700, 600], 2, 1000), IndexError),
        (([700, 600], -1, 1000), IndexError),
        (([700, -1], 0, 1000), ValueError),
        (([700, 600], 0, -5), ValueError),
        (([700.0, math.nan], 0, 1000), ValueError),
        (([700, math.inf], 0, 1000), ValueError),
        (([700, "a"], 0, 1000), TypeError),
        (("700", 0, 1000), TypeError),
        ((5, 0, 1000), TypeError),
        (([700, 600], 0.5, 1000), TypeError),
        (([700, 600], 0, None), TypeError),
        (([2**64], 0, 1000), ValueError),
    ],
)
def test_bad_arguments(args, exc):
    with pytest.raises(exc):
        max_min_share(*args)


def test_version():
    assert isinstance(phasecast.__version__, str)
    assert phasecast.__version__.count(".") == 2
