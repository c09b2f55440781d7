"""Property: transactions stay atomic and durable through the crash of any one broker.

For random transaction sizes (1-20), abort patterns (none, or every 1st-5th
transaction), record counts (20-120), and the crash of one broker — broker-0,
broker-1, broker-2, or whichever broker is the transaction coordinator when
the fault fires — at a random time during the workload, optionally restarted,
with acks=all, RF 3, min.insync.replicas 2 and idempotence on, the final
read_committed read has:

- `aborted_read == 0`: no record of an aborted transaction (or of a failed send);
- `torn_txn == 0`: no committed transaction partly visible;
- `lost == 0`: every acknowledged record of a committed transaction visible;
- `unjudged == 0`: every partition readable after the final heal (so the three
  above are not vacuous);
- and, checked here from the history and the read: no transaction of *any*
  outcome is partly visible — a transaction whose end the client never learnt
  (outcome "unknown", e.g. a fatal error during commit) must still be all or
  nothing among its acknowledged records.

The scenario is `txn-property.toml` next to this file; each example overrides
`workload.records`, `workload.txn_size`, `workload.abort_every` and the whole
`faults` list. A failure message carries the `kpsim run ... --seed N --set ...`
command that replays the example exactly.

The number of examples is 50 by default, derandomized (the same examples on
every machine), which keeps this file well under a minute;
`KPSIM_TXN_PROPERTY_EXAMPLES=N` and `KPSIM_PROPERTY_RANDOM=1` make a longer,
random hunt.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sim
from sim.history import NO_TXN, OK
from sim.result import RunResult
from sim.runner import run_scenario_with_cluster
from sim.scenario import parse_scenario

BASE = Path(__file__).resolve().with_name("txn-property.toml")
RATE_PER_S = 200
"""workload.rate_per_s in the base file: records are sent over records / rate seconds."""
CRASH_SLACK_MS = 1000
"""The crash may also land after the last send, while the last transactions end."""
TARGETS = ("broker-0", "broker-1", "broker-2", "coordinator:payments-app")
EXAMPLES = int(os.environ.get("KPSIM_TXN_PROPERTY_EXAMPLES", 50))


@dataclass(frozen=True)
class Case:
    """One example: the workload knobs, the crash, and the seed."""

    records: int
    txn_size: int
    abort_every: int | None
    target: str
    crash_at_ms: int
    restart_after_ms: int | None
    seed: int

    def overrides(self) -> tuple[str, ...]:
        faults = [f'{{at_ms = {self.crash_at_ms}, kind = "crash", target = "{self.target}"}}']
        if self.restart_after_ms is not None:
            at_ms = self.crash_at_ms + self.restart_after_ms
            faults.append(f'{{at_ms = {at_ms}, kind = "restart", target = "crashed"}}')
        out = [
            f"workload.records={self.records}",
            f"workload.txn_size={self.txn_size}",
            "faults=[" + ", ".join(faults) + "]",
        ]
        if self.abort_every is not None:
            out.append(f"workload.abort_every={self.abort_every}")
        return tuple(out)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    records = draw(st.integers(20, 120))
    duration_ms = records * 1000 // RATE_PER_S
    return Case(
        records=records,
        txn_size=draw(st.integers(1, 20)),
        abort_every=draw(st.none() | st.integers(1, 5)),
        target=draw(st.sampled_from(TARGETS)),
        crash_at_ms=draw(st.integers(0, duration_ms + CRASH_SLACK_MS)),
        restart_after_ms=draw(st.none() | st.integers(1, 20000)),
        seed=draw(st.integers(0, 2**20)),
    )


def run_kept(case: Case) -> tuple[RunResult, sim.Cluster]:
    """Run the example; the result and the cluster (history, logs) it ran on."""
    scenario = parse_scenario(BASE.read_text(encoding="utf-8"), str(BASE), case.overrides())
    return run_scenario_with_cluster(scenario, case.seed)


def partly_visible_txns(cluster: sim.Cluster) -> list[tuple[int, str, list[int], list[int]]]:
    """(txn, outcome, visible acked ids, missing acked ids) of every transaction,
    whatever its outcome, with some but not all acknowledged records visible."""
    history = cluster.history
    reads = cluster.final_read("read_committed")
    seen = {rid for read in reads.values() for rid in read.record_ids}
    acked: dict[int, list[int]] = {}
    for rid, txn in enumerate(history.txn):
        if txn != NO_TXN and history.status[rid] == OK:
            acked.setdefault(txn, []).append(rid)
    torn = []
    for txn, ids in sorted(acked.items()):
        shown = [rid for rid in ids if rid in seen]
        missing = [rid for rid in ids if rid not in seen]
        if shown and missing:
            torn.append((txn, history.txns[txn].outcome, shown[:8], missing[:8]))
    return torn


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=os.environ.get("KPSIM_PROPERTY_RANDOM") != "1",  # reproducible unless asked
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
@given(case=cases())
def test_one_broker_crash_never_breaks_transactions(case: Case) -> None:
    result, cluster = run_kept(case)
    counts = result.counts
    bad = {k: counts.get(k, 0) for k in ("aborted_read", "torn_txn", "lost", "unjudged")}
    torn_any = partly_visible_txns(cluster)
    message = (
        f"{case}\ncounts={counts}\npartly visible transactions={torn_any}\nreplay: {result.replay}"
    )
    assert bad == {"aborted_read": 0, "torn_txn": 0, "lost": 0, "unjudged": 0}, message
    assert not torn_any, message
    assert counts["sent"] == case.records, message
