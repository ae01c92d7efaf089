"""Writes omaha.ipynb (unexecuted); `make notebooks` executes it in place.

Kept as a script so the notebook's source is reviewable as code. The
closing prose quotes numbers of the full run; the last cell checks them
(skipped in the small headless run of the tests).
"""

import nbformat as nbf

md = nbf.v4.new_markdown_cell
code = nbf.v4.new_code_cell

cells = [
    md("""# Omaha's pledge buffers on phasecast's simulator

*Mahamdi, Lejeune, Sopena, Sens, Makpangou — Opportunistic message aggregation for phase-based
algorithms (Omaha).*

**What the paper claims.** A phase-based algorithm knows, when it starts waiting for a quorum, whom it
will send to when the wait ends. Omaha lets it say so (`beginPledge(app, futureDests)`); while such a
*pledge* covers a destination, a message of **another** application to it is buffered with
probability `probaBuf` (for at most a timeout) and leaves in the datagram the pledge promised
(`pledgedSend`), saving a datagram and its headers. On 15 nodes running several applications' Paxos
instances, the paper reports (§4, Tables 1–3): the saving grows **linearly with probaBuf** and with
the load, reaching **30.2 % of the bandwidth at 5.4 % latency degradation** (high load, probaBuf
100 %, timeout = RTT); a timeout beyond one RTT adds almost nothing; 1 % loss changes nothing
significant, 5–10 % loss costs latency in proportion to the saving (§4.4).

Below, phasecast's Rust core runs the same workload on its deterministic simulator
(`phasecast_core::sim::paxos`; 15 nodes, 5 applications of 7 nodes, RTT N(60 ms, 6 ms), Poisson
instance starts for an average of 2, 5 or 10 concurrent instances, 3000 instances with the first 100
discarded, 28-byte IPv4+UDP headers). Savings and degradations are relative to the same workload and
seed without aggregation."""),
    code("""%matplotlib inline
import os
import matplotlib.pyplot as plt
import pandas as pd
import phasecast
from phasecast import Simulation
from phasecast import experiments as ex

# Headless CI runs this notebook with small parameters.
SMALL = os.environ.get("PHASECAST_NOTEBOOK_SMALL") == "1"
RUN = dict(instances=300, warmup=30) if SMALL else dict(instances=3000, warmup=100)
PROBA_BUFS = (0.2, 0.6, 1.0) if SMALL else tuple(k / 10 for k in range(1, 11))
LOADS = ["low", "medium", "high"]
pd.set_option("display.width", 160)


def paper_layout(df, col, by):
    \"\"\"The paper's layout: loads as rows, `by` as columns, cells 'ours (paper)'.\"\"\"
    cell = df.apply(lambda r: f"{r[col]:.1%}" + ("" if pd.isna(r['paper_' + col])
                                                 else f" ({r['paper_' + col]:.1%})"), axis=1)
    return df.assign(cell=cell).pivot(index="load", columns=by, values="cell")


print("phasecast", phasecast.__version__, RUN, "- small run" if SMALL else "")"""),
    md("""## 0. The mechanism, on three nodes

Application B pledges to send to nodes 1 and 2; application A then sends a message to node 1 with
probaBuf = 100 %. It waits in node 1's pledge buffer and leaves with B's `pledged_send`: two
datagrams instead of three. With probaBuf = 0 it leaves at once."""),
    code("""def pledge_demo(proba_buf):
    s = Simulation(3, 0, latency_ms=5.0, heartbeat_ms=1000, fd_timeout_ms=5000)
    s.run(10)
    before = s.stats(0)["datagrams"]
    s.begin_pledge(0, app=2, dests=[1, 2])
    s.send(0, [1], b"ack of A", proba_buf=proba_buf, timeout_ms=60, app=1)
    s.pledged_send(0, [1, 2], b"accept of B", app=2, at_ms=30)
    s.run(200)
    arrivals = [(e["time_ms"], e["payload"]) for e in s.events(1) if e["type"] == "received"]
    return dict(proba_buf=proba_buf, datagrams=s.stats(0)["datagrams"] - before,
                buffered=s.stats()["messages_buffered"], arrivals_at_node_1=arrivals)

pd.DataFrame([pledge_demo(1.0), pledge_demo(0.0)])"""),
    md("""## 1. Tables 1 and 2 — probaBuf × load, timeout = RTT

Each cell reads *ours (paper)*. Table 1 is the bandwidth saving, Table 2 the latency degradation of
the same runs."""),
    code("""t12 = ex.omaha_table1(loads=LOADS, proba_bufs=PROBA_BUFS, **RUN)
paper_layout(t12, "bandwidth_saving", "proba_buf")"""),
    code("""paper_layout(t12, "latency_degradation", "proba_buf")"""),
    code("""fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
for load, g in t12.groupby("load", observed=True):
    line, = a1.plot(g.proba_buf * 100, g.bandwidth_saving * 100, "o-", label=f"{load}, ours")
    a1.plot(g.proba_buf * 100, g.paper_bandwidth_saving * 100, "--", color=line.get_color(),
            label=f"{load}, paper")
    a2.plot(g.proba_buf * 100, g.latency_degradation * 100, "o-", color=line.get_color())
    a2.plot(g.proba_buf * 100, g.paper_latency_degradation * 100, "--", color=line.get_color())
a1.set_title("Table 1: bandwidth saving"); a2.set_title("Table 2: latency degradation")
for a in (a1, a2):
    a.set_xlabel("probaBuf (%)"); a.set_ylabel("%"); a.grid(alpha=0.3)
a1.legend(fontsize=8)
plt.show()"""),
    md("""## 2. Table 3 — the timeout, probaBuf = 90 %"""),
    code("""t3 = ex.omaha_table3(loads=LOADS, **RUN)
t3["timeout"] = t3.timeout_rtt.map({0.25: "RTT/4", 0.5: "RTT/2", 1.0: "RTT", 1.2: "1.2RTT"})
t3["timeout"] = pd.Categorical(t3.timeout, ["RTT/4", "RTT/2", "RTT", "1.2RTT"], ordered=True)
display(paper_layout(t3, "bandwidth_saving", "timeout"))
paper_layout(t3, "latency_degradation", "timeout")"""),
    code("""fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.8))
for load, g in t3.groupby("load", observed=True):
    line, = a1.plot(g.timeout_rtt, g.bandwidth_saving * 100, "o-", label=f"{load}, ours")
    a1.plot(g.timeout_rtt, g.paper_bandwidth_saving * 100, "--", color=line.get_color(),
            label=f"{load}, paper")
    a2.plot(g.timeout_rtt, g.latency_degradation * 100, "o-", color=line.get_color())
    a2.plot(g.timeout_rtt, g.paper_latency_degradation * 100, "--", color=line.get_color())
a1.set_title("Table 3(a): bandwidth saving"); a2.set_title("Table 3(b): latency degradation")
for a in (a1, a2):
    a.set_xlabel("timeout (RTTs)"); a.set_ylabel("%"); a.grid(alpha=0.3)
a1.legend(fontsize=8)
plt.show()"""),
    md("""## 3. §4.4 — an unreliable network (high load, probaBuf 100 %, timeout = RTT)

Every datagram is dropped independently with the given probability; a leader resends to the members
it has not heard from every two RTTs. The paper gives no table here, only its observations."""),
    code("""loss = ex.omaha_loss(losses=(0.0, 0.01, 0.05, 0.1), **RUN)
loss[["loss", "bandwidth_saving", "latency_degradation", "baseline_mean_ms", "policy_mean_ms",
      "baseline_p99_ms", "policy_p99_ms"]].round(3)"""),
    code("""fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(loss.loss * 100, loss.bandwidth_saving * 100, "o-", label="bandwidth saving")
ax.plot(loss.loss * 100, loss.latency_degradation * 100, "s-", label="latency degradation")
ax.set_xlabel("loss (%)"); ax.set_ylabel("%"); ax.set_title("Omaha under loss (§4.4)")
ax.legend(); ax.grid(alpha=0.3)
plt.show()"""),
    md("""## 4. Beyond the paper: the saving/degradation frontier of four policies (high load)

* **time-based** (§3.1, the paper's baseline): every message waits until its timeout.
* **Omaha** (Algorithm 1) at probaBuf 25 … 100 %, timeout = RTT.
* **horizon** (ours): buffer only behind a pledge expected to be honoured within a horizon (from the
  node's running estimate of pledge durations), deadline capped at that expected time.
* **criticality** (ours): a message nobody waits for (an `accepted` to a mere learner) waits until its
  timeout or until a critical message to the same node carries it; a critical one (anything that may
  complete a quorum) leaves at once.

Degradation is measured where the paper measures it, at the leader's decision, and also at the other
members learning the decision (`learner_degradation`). The paper's own Omaha points (Tables 1–2, high
load) are drawn for reference."""),
    code("""front = ex.omaha_frontier(load="high", **RUN)
front[["policy", "proba_buf", "timeout_rtt", "horizon_rtt", "bandwidth_saving",
       "latency_degradation", "learner_degradation"]].round(3)"""),
    code("""fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for pol, g in front.groupby("policy"):
    a1.plot(g.bandwidth_saving * 100, g.latency_degradation * 100, "o-", label=pol)
    a2.plot(g.bandwidth_saving * 100, g.learner_degradation * 100, "o-", label=pol)
paper_high = t12[t12.load == "high"]
a1.plot(paper_high.paper_bandwidth_saving * 100, paper_high.paper_latency_degradation * 100,
        "k^:", label="Omaha, paper")
a1.set_title("leader decides (the paper's measure)"); a2.set_title("other members learn")
for a in (a1, a2):
    a.set_xlabel("bandwidth saving (%)"); a.grid(alpha=0.3)
a1.set_ylabel("latency degradation (%)"); a1.set_ylim(-2, 45); a1.legend(fontsize=8)
plt.show()"""),
    md("""## What we found

* **Trends hold, magnitudes do not.** Saving grows linearly with probaBuf and with the load, and a
  timeout beyond one RTT adds nothing (Table 3: 13.2 % at RTT, 13.4 % at 1.2 RTT, high load), as in
  the paper. But at high load and probaBuf 100 % we save **14.2 %** (paper 30.2 %) for **15.6 %**
  latency degradation (paper 5.4 %). In our workload only leaders pledge, so a node holds a pledge
  less than half of the time at high load, and a buffered `ack`, `accept` or `accepted` usually sits
  on some instance's critical path for half a phase. The paper's headline (≥ 30 % at ≤ 5.4 %) is
  not reproduced by Omaha's own policy here.
* **Loss (§4.4).** As the paper says, 1 % loss changes little (saving 14.0 %, degradation 15.3 %);
  at 10 % the degradation grows to 22.7 %: a lost datagram now carries several applications'
  messages.
* **Better policies.** The time-based baseline pays 81.0 % degradation for a 29.8 % saving. Horizon
  is a little better than Omaha at small savings (7.2 % saved for 3.1 % at a 0.5 RTT horizon, where
  Omaha at probaBuf 50 % saves 8.1 % for 3.9 %) but not at large ones. **Criticality reaches the
  paper's target: 30.2 % saving with 0.0 % degradation of the leader's decision** (timeout 2 RTT);
  what it costs is the other members learning the decision later (41.6 %), which is the trade a
  replicated state machine wants (the client is answered by the leader)."""),
    code("""# The prose above quotes the full run (3000 instances): check it.
if not SMALL:
    pct = lambda x: round(100 * x, 1)
    h = t12[t12.load == "high"].set_index("proba_buf")
    assert (pct(h.loc[1.0, "bandwidth_saving"]), pct(h.loc[1.0, "latency_degradation"])) == (14.2, 15.6)
    h3 = t3[t3.load == "high"].set_index("timeout_rtt")
    assert (pct(h3.loc[1.0, "bandwidth_saving"]), pct(h3.loc[1.2, "bandwidth_saving"])) == (13.2, 13.4)
    l = loss.set_index("loss")
    assert (pct(l.loc[0.01, "bandwidth_saving"]), pct(l.loc[0.01, "latency_degradation"])) == (14.0, 15.3)
    assert pct(l.loc[0.1, "latency_degradation"]) == 22.7
    f = front.set_index(["policy", "timeout_rtt", "proba_buf"])
    assert (pct(f.loc[("time_based", 0.5, 0.0), "bandwidth_saving"]),
            pct(f.loc[("time_based", 0.5, 0.0), "latency_degradation"])) == (29.8, 81.0)
    hz = front[(front.policy == "horizon") & (front.horizon_rtt == 0.5)].iloc[0]
    assert (pct(hz.bandwidth_saving), pct(hz.latency_degradation)) == (7.2, 3.1)
    om = f.loc[("omaha", 1.0, 0.5)]
    assert (pct(om.bandwidth_saving), pct(om.latency_degradation)) == (8.1, 3.9)
    c = f.loc[("criticality", 2.0, 0.0)]
    assert (pct(c.bandwidth_saving), pct(c.latency_degradation), pct(c.learner_degradation)) == (30.2, 0.0, 41.6)
    print("the prose matches this run")"""),
]

nb = nbf.v4.new_notebook(cells=cells, metadata={
    "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
    "language_info": {"name": "python"},
})
nbf.write(nb, "omaha.ipynb")
