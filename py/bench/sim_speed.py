"""Simulation speed seen from Python (docs/BENCHMARKS.md, "Python bindings").

    py/.venv/bin/python py/bench/sim_speed.py

Median of 5 runs of each scenario: wall time, simulator steps per second,
deliveries per second (a delivery = one message delivered at one node).
"""

import statistics
import time

import phasecast


def scenario(nodes, per_node, bandwidth, loss):
    sim = phasecast.Simulation(nodes, 1, latency_ms=(0.3, 0.06), bandwidth_mbps=bandwidth,
                               loss=loss)
    for n in range(nodes):
        for k in range(per_node):
            sim.broadcast(n, b"x" * 100, at_ms=1 + k * 0.2)
    t = time.perf_counter()
    sim.run(per_node * 0.2 + 3000, progress=False)
    wall = time.perf_counter() - t
    s = sim.stats()
    assert sim.check()["ok"]
    return wall, s["simulator_steps"], s["delivered"]


def main():
    print("| scenario | wall s | simulator steps/s | deliveries/s |")
    print("| --- | --- | --- | --- |")
    for nodes, per_node, bw, loss in [(4, 2000, 100.0, 0.0), (8, 1000, 100.0, 0.01),
                                      (16, 500, 1000.0, 0.0)]:
        runs = [scenario(nodes, per_node, bw, loss) for _ in range(5)]
        wall = statistics.median(r[0] for r in runs)
        steps, delivered = runs[0][1], runs[0][2]
        print(f"| {nodes} nodes × {per_node} broadcasts of 100 B, {bw:g} Mb/s, loss {loss:g} "
              f"| {wall:.2f} | {steps / wall / 1e6:.2f} M | {delivered / wall / 1e3:.0f} k |")


if __name__ == "__main__":
    main()
