"""The transaction scenarios do what their lessons say — read from the trace,
the history and the final reads, not only from the checker's counts.

Each scenario runs once (seed 0) with its cluster kept, so the trace
(`coordinator.state`, `coordinator.fence`, `coordinator.timeout`,
`producer.txn_state`, `broker.crash`, `net.lost`) and both final reads can
be inspected.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import sim
from sim.checker import PartitionRead
from sim.history import OK, History
from sim.result import RunResult
from sim.runner import run_scenario_with_cluster
from sim.scenario import load_scenario
from sim.world import TraceEvent

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


@cache
def run_kept(name: str) -> tuple[RunResult, sim.Cluster]:
    """`run_scenario` (seed 0), also returning its cluster; cached per scenario."""
    return run_scenario_with_cluster(load_scenario(SCENARIOS / f"{name}.toml"), seed=0)


def visible(reads: dict[tuple[str, int], PartitionRead]) -> set[int]:
    assert all(read.readable for read in reads.values()), reads
    return {rid for read in reads.values() for rid in read.record_ids}


def events(cluster: sim.Cluster, kind: str, **fields: object) -> list[TraceEvent]:
    return [
        e
        for e in cluster.world.events
        if e.kind == kind and all(e.field(k) == v for k, v in fields.items())
    ]


def records_of(history: History, process: str) -> list[int]:
    p = history.processes.index(process)
    return [rid for rid in range(len(history)) if history.process[rid] == p]


def txn_records(history: History, txn_ids: set[int]) -> set[int]:
    return {rid for rid in range(len(history)) if history.txn[rid] in txn_ids}


def assert_expectations(result: RunResult) -> None:
    failed = [item for item in result.expect if not item["holds"]]
    assert not failed, (failed, result.counts)


# --- txn-commit-abort --------------------------------------------------------------------------


def test_commit_abort_aborted_records_are_read_uncommitted_but_never_read_committed() -> None:
    result, cluster = run_kept("txn-commit-abort")
    assert_expectations(result)
    history = cluster.history
    aborted = {t.txn_id for t in history.txns if t.outcome == "abort"}
    committed = {t.txn_id for t in history.txns if t.outcome == "commit"}
    assert len(aborted) == 10 and len(committed) == 20  # 30 transactions, every 3rd aborted.
    aborted_records = txn_records(history, aborted)
    # An aborted transaction's acknowledged records are in the log; the rest were
    # never sent (failed with TransactionAbortedError when the abort began).
    written = {rid for rid in aborted_records if history.status[rid] == OK}
    assert len(written) >= 50
    uncommitted = visible(cluster.final_read("read_uncommitted"))
    read_committed = visible(cluster.final_read("read_committed"))
    assert written <= uncommitted, "aborted data is in the log"
    assert not aborted_records & read_committed
    assert txn_records(history, committed) <= read_committed
    assert result.counts["aborted_read"] == 0


# --- txn-zombie-fencing --------------------------------------------------------------------------


def test_zombie_is_fenced_and_nothing_it_sent_after_the_fence_is_visible() -> None:
    result, cluster = run_kept("txn-zombie-fencing")
    assert_expectations(result)
    [fence] = events(cluster, "coordinator.fence", transactional_id="payments-app")
    zombie_states = events(cluster, "producer.txn_state", producer="producer-0")
    assert zombie_states[-1].field("state") == "FATAL_ERROR"
    assert zombie_states[-1].field("error") == "ProducerFencedError"
    # Its produce after waking is refused by the partition leader, which saw the fencing ABORT.
    rejects = [e for e in events(cluster, "broker.reject") if e.time_ms > fence.time_ms]
    assert rejects
    assert {e.field("error") for e in rejects} == {"INVALID_PRODUCER_EPOCH"}
    history = cluster.history
    zombie = records_of(history, "producer-0")
    late = [rid for rid in zombie if history.invoke_ms[rid] > fence.time_ms]
    assert late, "the zombie sent after it was fenced"
    read_committed = visible(cluster.final_read("read_committed"))
    assert not set(late) & read_committed
    # Neither is the transaction the fence aborted (sent before the fence).
    open_at_fence = {history.txn[rid] for rid in zombie if history.invoke_ms[rid] < fence.time_ms}
    fenced_txn = max(open_at_fence)
    assert history.txns[fenced_txn].outcome != "commit"
    assert not txn_records(history, {fenced_txn}) & read_committed
    # The successor's transactions are all there.
    successor = {t.txn_id for t in history.txns if t.process == "producer-1"}
    assert txn_records(history, successor) <= read_committed


# --- txn-coordinator-failover ----------------------------------------------------------------------


def test_coordinator_crashes_in_prepare_commit_and_a_new_one_completes_the_commit() -> None:
    result, cluster = run_kept("txn-coordinator-failover")
    assert_expectations(result)
    [crash] = events(cluster, "broker.crash")
    states = events(cluster, "coordinator.state", transactional_id="payments-app")
    before = [e for e in states if e.time_ms <= crash.time_ms]
    after = [e for e in states if e.time_ms > crash.time_ms]
    prepared = before[-1]
    assert prepared.field("state") == "PrepareCommit"
    assert prepared.field("broker") == crash.field("broker"), "the coordinator itself crashed"
    lost_markers = events(cluster, "net.lost", message="WriteTxnMarkersRequest")
    assert lost_markers and all(e.time_ms < crash.time_ms for e in lost_markers)
    completed = after[0]
    assert completed.field("state") == "CompleteCommit"
    assert completed.field("broker") != crash.field("broker")
    key = (prepared.field("producer_id"), prepared.field("epoch"))
    assert (completed.field("producer_id"), completed.field("epoch")) == key
    # The transaction that was committing: the newest one with records sent before PrepareCommit.
    history = cluster.history
    committing = max(
        history.txn[rid] for rid in range(len(history)) if history.invoke_ms[rid] < prepared.time_ms
    )
    assert history.txns[committing].outcome == "commit"
    records = txn_records(history, {committing})
    assert len(records) == 50
    assert records <= visible(cluster.final_read("read_committed"))


# --- txn-timeout ---------------------------------------------------------------------------------


def test_timeout_aborts_the_hung_transaction_and_the_lso_moves_past_it() -> None:
    result, cluster = run_kept("txn-timeout")
    assert_expectations(result)
    [timeout] = events(cluster, "coordinator.timeout")
    assert timeout.field("transactional_id") == "payments-app-0"
    hung_states = events(cluster, "producer.txn_state", producer="producer-0")
    assert hung_states[-1].field("state") == "FATAL_ERROR"
    assert hung_states[-1].field("error") == "ProducerFencedError"
    history = cluster.history
    [pause] = [op for op in history.faults if op.f == "pause"]
    hung_txn = max(
        history.txn[rid]
        for rid in records_of(history, "producer-0")
        if history.invoke_ms[rid] <= pause.time_ms
    )
    hung = txn_records(history, {hung_txn})
    hung_offsets = [history.offset[rid] for rid in hung if history.offset[rid] >= 0]
    assert hung_offsets, "the hung transaction wrote to the log"
    read_committed = visible(cluster.final_read("read_committed"))
    assert not hung & read_committed
    # producer-1 kept committing behind the hung transaction; its records are readable.
    behind = [
        rid
        for rid in records_of(history, "producer-1")
        if history.invoke_ms[rid] > pause.time_ms
        and history.txns[history.txn[rid]].outcome == "commit"
        and history.offset[rid] > min(hung_offsets)
    ]
    assert behind
    assert set(behind) <= read_committed
    reads = cluster.final_read("read_committed")
    assert reads[("payments", 0)].high_watermark > max(history.offset[rid] for rid in behind)
