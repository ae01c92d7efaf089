"""python -m phasecast ..."""

import json
import subprocess
import sys


def run(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "phasecast", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_sim_json_reports_a_clean_check():
    p = run("sim", "--nodes", "4", "--messages", "10", "--loss", "0.05", "--crash", "3@20",
            "--until", "3000", "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["check"]["ok"] and out["check"]["crashed"] == [3]
    # Node 3 crashed 20 ms in: the survivors deliver everything the others
    # broadcast, and at most its 10.
    assert 30 <= out["delivered"]["0"] <= 40


def test_experiment_json():
    p = run("experiment", "fastcast_incr", "--param", "nodes=4", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["nodes"] == 4
    p = run("experiment", "fastcast_bw_trace", "--json")
    assert all(r["matches_paper"] for r in json.loads(p.stdout))


def test_experiment_omaha_table_json():
    p = run("experiment", "omaha_table3", "--param", 'loads=["high"]', "--param",
            "instances=200", "--param", "warmup=20", "--json")
    assert p.returncode == 0, p.stderr
    rows = json.loads(p.stdout)
    assert [r["timeout_rtt"] for r in rows] == [0.25, 0.5, 1.0, 1.2]
    assert rows[2]["load"] == "high" and rows[2]["paper_bandwidth_saving"] == 0.281


def test_experiment_errors_are_reported_not_raised():
    p = run("experiment", "fastcast_incr", "--param", "nodes=1")
    assert p.returncode == 2 and "nodes" in p.stderr
    assert run("experiment", "nope").returncode == 2


def test_experiment_list():
    p = run("experiment", "list")
    assert p.returncode == 0 and "fastcast_throughput" in p.stdout


def test_demo_over_udp_loopback():
    p = run("demo", "--nodes", "3", "--seconds", "0.5", "--json")
    assert p.returncode == 0, p.stderr + p.stdout
    out = json.loads(p.stdout)
    assert out["check"]["ok"] and out["survivors_identical"]
    assert all(n["delivered"] > 0 for n in out["nodes"])


def test_demo_with_a_crashed_member():
    p = run("demo", "--nodes", "3", "--seconds", "1.0", "--crash", "2@0.4", "--json")
    out = json.loads(p.stdout)
    assert out["check"]["ok"], out["check"]["violations"][:5]
    assert out["check"]["crashed"] == [2]
    assert [v[1] for v in out["nodes"][0]["views"]][-1] == [0, 1]


def test_version():
    p = run("version")
    assert p.returncode == 0 and p.stdout.strip().count(".") == 2
