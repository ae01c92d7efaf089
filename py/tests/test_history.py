"""The shared checker, over logs recorded from Python."""

import pytest

from phasecast import History


def complete(n=3, msgs=((0, 0), (1, 0), (0, 1))):
    h = History(range(n))
    for s, c in msgs:
        h.broadcast(s, c, b"%d/%d" % (s, c))
    for p in range(n):
        for sn, (s, c) in enumerate(msgs):
            h.deliver(p, s, c, b"%d/%d" % (s, c), sn=sn)
    return h


def test_a_correct_run_passes():
    r = complete().check()
    assert r["ok"] and r["violations"] == []
    assert all(r[k] for k in ("validity", "integrity", "agreement", "total_order", "fifo"))
    assert (r["processes"], r["broadcasts"], r["deliveries"], r["messages"]) == (3, 3, 9, 3)


def test_lost_message_breaks_agreement():
    h = History(range(2))
    h.broadcast(0, 0, b"a")
    h.deliver(0, 0, 0, b"a", sn=0)
    r = h.check()
    assert not r["ok"] and r["agreement"] is False
    assert any("lost" in v for v in r["violations"])


def test_a_crashed_process_may_stop_early():
    h = History(range(3))
    for c in range(2):
        h.broadcast(0, c, b"x%d" % c)
    for p in range(3):
        for c in range(2 if p < 2 else 1):
            h.deliver(p, 0, c, b"x%d" % c, sn=c)
    assert not h.check()["ok"]
    h.crash(2)
    r = h.check()
    assert r["ok"] and r["crashed"] == [2] and r["correct"] == 2


def test_divergent_order_is_a_total_order_violation():
    h = History(range(2))
    h.broadcast(0, 0, b"a")
    h.broadcast(1, 0, b"b")
    h.deliver(0, 0, 0, b"a")
    h.deliver(0, 1, 0, b"b")
    h.deliver(1, 1, 0, b"b")
    h.deliver(1, 0, 0, b"a")
    r = h.check()
    assert r["total_order"] is False and r["validity"] and r["agreement"]


def test_corrupted_and_duplicated_and_invented():
    h = History(range(2))
    h.broadcast(0, 0, b"a")
    h.deliver(0, 0, 0, b"a")
    h.deliver(0, 0, 0, b"a")  # duplicated
    h.deliver(1, 0, 0, b"A")  # corrupted
    h.deliver(1, 1, 7, b"?")  # invented
    r = h.check(fifo=False)
    assert r["integrity"] is False and r["fifo"] is None
    kinds = " ".join(r["violations"])
    assert "duplicated" in kinds and "corrupted" in kinds and "invented" in kinds


def test_fifo_gap():
    h = History(range(1))
    h.broadcast(0, 0, b"a")
    h.broadcast(0, 1, b"b")
    h.deliver(0, 0, 1, b"b", sn=0)
    assert h.check(fifo=True)["fifo"] is False


@pytest.mark.parametrize(
    "call, exc",
    [
        (lambda h: h.broadcast(-1, 0, b""), ValueError),
        (lambda h: h.broadcast(70000, 0, b""), ValueError),
        (lambda h: h.broadcast(0, -1, b""), ValueError),
        (lambda h: h.broadcast(0, 0, "text"), TypeError),
        (lambda h: h.broadcast("0", 0, b""), TypeError),
        (lambda h: h.deliver(0, 0, 0, b"", sn=-3), ValueError),
        (lambda h: h.crash(1.5), TypeError),
    ],
)
def test_bad_arguments(call, exc):
    with pytest.raises(exc):
        call(History())


def test_processes_must_be_ints():
    with pytest.raises(TypeError):
        History(5)
    with pytest.raises(ValueError):
        History([-1])
