"""The checker on hand-made histories: each anomaly, and the look-alikes it must not flag."""

from collections.abc import Sequence
from typing import Any

import pytest

from sim import checker
from sim.checker import (
    COUNT_KEYS,
    WITNESSES_MAX,
    CheckResult,
    PartitionRead,
    check,
    compose,
    merge_valid,
)
from sim.history import History, Txn
from sim.world import TraceEvent

P0 = "producer-0"
P1 = "producer-1"


def event(time_ms: float, kind: str, **fields: Any) -> TraceEvent:
    """A trace event as `World.trace` makes it (fields sorted by name)."""
    return TraceEvent(time_ms, kind, tuple(sorted(fields.items())))


def append(
    time_ms: float, broker: int, base: int, count: int, epoch: int, p: int = 0
) -> TraceEvent:
    return event(
        time_ms,
        "broker.append",
        broker=broker,
        topic="orders",
        partition=p,
        base_offset=base,
        count=count,
        epoch=epoch,
    )


def read(
    ids: Sequence[int],
    partition: int = 0,
    offsets: Sequence[int] | None = None,
    readable: bool = True,
) -> PartitionRead:
    """The read of orders/`partition` holding `ids`, at offsets 0.. unless given."""
    offsets = list(range(len(ids))) if offsets is None else list(offsets)
    high_watermark = offsets[-1] + 1 if offsets else 0
    return PartitionRead("orders", partition, high_watermark, offsets, list(ids), readable)


def reads(*parts: PartitionRead) -> dict[tuple[str, int], PartitionRead]:
    return {(part.topic, part.partition): part for part in parts}


def sends(history: History, count: int, process: str = P0, partition: int = 0) -> list[int]:
    return [history.invoke(process, "orders", partition, float(i)) for i in range(count)]


def anomalies(result: CheckResult) -> dict[str, int]:
    keys = ("lost", "duplicated", "reordered", "aborted_read", "torn_txn", "unexpected")
    return {key: result.counts[key] for key in keys if result.counts[key]}


# --- the verdict and counts ------------------------------------------------


def test_a_clean_run_is_valid_with_every_count_key_present() -> None:
    history = History()
    ids = sends(history, 3)
    history.ok(ids, 10.0, base_offset=0)
    result = check(history, reads(read(ids)))
    assert result.valid is True
    assert result.counts == {
        "sent": 3,
        "acked": 3,
        "failed": 0,
        "unknown": 0,
        "lost": 0,
        "duplicated": 0,
        "reordered": 0,
        "aborted_read": 0,
        "torn_txn": 0,
        "recovered": 0,
        "unexpected": 0,
        "unjudged": 0,
    }
    assert all(result.witnesses[kind] == [] for kind in checker.ANOMALIES)
    assert result.errors == {}


def test_unknown_counts_info_and_pending_records() -> None:
    history = History()
    ok, failed, info, _pending = sends(history, 4)
    history.ok([ok], 1.0, 0)
    history.fail([failed], 1.0, "NOT_ENOUGH_REPLICAS")
    history.info([info], 1.0, "REQUEST_TIMED_OUT")
    result = check(history, reads(read([ok])))
    assert {k: result.counts[k] for k in ("sent", "acked", "failed", "unknown")} == {
        "sent": 4,
        "acked": 1,
        "failed": 1,
        "unknown": 2,
    }
    assert result.valid is True


def test_without_a_final_read_nothing_is_judged() -> None:
    history = History()
    history.ok(sends(history, 2), 1.0, 0)
    result = check(history, None)
    assert result.valid == "unknown"
    assert result.counts["sent"] == 2
    assert result.counts["lost"] == 0
    assert set(COUNT_KEYS) <= set(result.counts)
    assert "final_read" in result.errors


# --- lost ------------------------------------------------------------------


def failover_history() -> tuple[History, list[int], list[TraceEvent]]:
    """broker-0 acks offsets 3..5 with acks=1, dies; broker-1 (clean) overwrites them."""
    history = History()
    ids = sends(history, 8)
    history.ok(ids[0:3], 10.0, base_offset=0)
    history.ok(ids[3:6], 812.0, base_offset=3)
    history.ok(ids[6:8], 15100.0, base_offset=3)
    trace = [
        event(0.0, "controller.elect", topic="orders", partition=0, leader=0, epoch=1, unclean=False, isr=(0, 1, 2)),
        append(9.0, broker=0, base=0, count=3, epoch=1),
        append(811.0, broker=0, base=3, count=3, epoch=1),
        event(15000.0, "controller.elect", topic="orders", partition=0, leader=1, epoch=2, unclean=False, isr=(1, 2)),
        event(15040.0, "broker.truncate", broker=0, topic="orders", partition=0, from_offset=6, to_offset=3, reason="epoch"),
        append(15090.0, broker=1, base=3, count=2, epoch=2),
    ]  # fmt: skip
    return history, ids, trace


def test_acked_records_overwritten_after_failover_are_lost_and_the_truncation_explains_it() -> None:
    history, ids, trace = failover_history()
    final = reads(read([ids[0], ids[1], ids[2], ids[6], ids[7]]))
    result = check(history, final, trace)
    assert result.valid is False
    assert anomalies(result) == {"lost": 3}
    witness = result.witnesses["lost"][0]
    assert [r["label"] for r in witness["records"]] == ["producer-0#3"]
    assert witness["partition"] == "orders/0"
    assert witness["offsets"] == [3]
    assert witness["explanation"] == (
        "producer-0#3 acked at orders/0 offset 3 (leader broker-0, epoch 1) at t=812.0ms; "
        "broker-0 truncated orders/0 from 6 to 3 at t=15040.0ms "
        "after broker-1 was elected leader (epoch 2, clean)"
    )
    assert [w["offsets"] for w in result.witnesses["lost"]] == [[3], [4], [5]]


def test_an_unclean_election_is_named_in_the_explanation() -> None:
    history, ids, trace = failover_history()
    trace[3] = event(15000.0, "controller.elect", topic="orders", partition=0, leader=1, epoch=2, unclean=True, isr=(1,))  # fmt: skip
    result = check(history, reads(read([ids[0], ids[1], ids[2], ids[6], ids[7]])), trace)
    assert result.witnesses["lost"][0]["explanation"].endswith("(epoch 2, unclean)")


def test_a_lost_record_after_a_gap_is_lost_not_reordered() -> None:
    history = History()
    ids = sends(history, 5)
    history.ok(ids, 1.0, base_offset=0)
    result = check(history, reads(read([0, 1, 3, 4], offsets=[0, 1, 3, 4])))
    assert anomalies(result) == {"lost": 1}
    explanation = result.witnesses["lost"][0]["explanation"]
    assert explanation == (
        "producer-0#2 acked at orders/0 offset 2 at t=1.0ms; "
        "no truncation of orders/0 covering offset 2 is in the trace"
    )


def test_an_acked_offset_beyond_the_read_bound_says_it_never_committed() -> None:
    history = History()
    ids = sends(history, 3)
    history.ok(ids, 1.0, base_offset=0)
    result = check(history, reads(read(ids[:2])), [append(0.5, broker=2, base=0, count=3, epoch=4)])
    assert result.witnesses["lost"][0]["explanation"] == (
        "producer-0#2 acked at orders/0 offset 2 (leader broker-2, epoch 4) at t=1.0ms; "
        "never committed: offset 2 is at or above the read bound 2"
    )


def test_acks0_success_present_is_fine_and_absent_is_lost() -> None:
    history = History()
    kept, gone = sends(history, 2)
    history.ok([kept, gone], 0.0, base_offset=-1)
    result = check(history, reads(read([kept])))
    assert anomalies(result) == {"lost": 1}
    witness = result.witnesses["lost"][0]
    assert witness["records"][0]["id"] == gone
    assert witness["offsets"] == [-1]
    assert "offset -1" in witness["explanation"]
    assert "acks=0" in witness["explanation"]


def test_info_records_absent_and_failed_records_absent_are_not_lost() -> None:
    history = History()
    acked, info, failed = sends(history, 3)
    history.ok([acked], 1.0, 0)
    history.info([info], 2.0, "REQUEST_TIMED_OUT")
    history.fail([failed], 2.0, "NOT_ENOUGH_REPLICAS")
    result = check(history, reads(read([acked])))
    assert result.valid is True
    assert anomalies(result) == {}
    assert result.counts["recovered"] == 0


def test_lost_witnesses_are_capped_but_the_count_is_complete() -> None:
    history = History()
    ids = sends(history, 100)
    history.ok(ids, 1.0, base_offset=0)
    result = check(history, reads(read([])))
    assert result.counts["lost"] == 100
    assert len(result.witnesses["lost"]) == WITNESSES_MAX
    assert [w["records"][0]["id"] for w in result.witnesses["lost"]] == ids[:WITNESSES_MAX]


# --- offline partitions ----------------------------------------------------


def test_an_offline_partition_is_unknown_not_lost() -> None:
    history = History()
    here = sends(history, 2, partition=0)
    there = sends(history, 2, partition=1)
    history.ok(here + there, 1.0, base_offset=0)
    offline = PartitionRead("orders", 1, 0, [], [], readable=False, leader=-1)
    result = check(history, reads(read(here), offline))
    assert result.valid == "unknown"
    assert result.counts["lost"] == 0
    assert result.counts["unjudged"] == 2
    witness = result.witnesses["unjudged"][0]
    assert witness["partition"] == "orders/1"
    assert [r["id"] for r in witness["records"]] == there


def test_a_partition_missing_from_the_read_is_unknown_too() -> None:
    history = History()
    history.ok(sends(history, 1, partition=3), 1.0, base_offset=0)
    result = check(history, reads(read([])))
    assert result.valid == "unknown"
    assert result.counts["unjudged"] == 1


def test_lost_elsewhere_outranks_an_offline_partition() -> None:
    history = History()
    here = sends(history, 2, partition=0)
    there = sends(history, 1, partition=1)
    history.ok(here, 1.0, base_offset=0)
    history.ok(there, 1.0, base_offset=0)
    offline = PartitionRead("orders", 1, 0, [], [], readable=False)
    result = check(history, reads(read(here[:1]), offline))
    assert result.valid is False
    assert (result.counts["lost"], result.counts["unjudged"]) == (1, 1)


# --- recovered, duplicated, unexpected -------------------------------------


def test_an_info_record_present_once_is_recovered_not_duplicated() -> None:
    history = History()
    acked, info = sends(history, 2)
    history.ok([acked], 1.0, 0)
    history.info([info], 2.0, "REQUEST_TIMED_OUT")
    result = check(history, reads(read([acked, info])))
    assert result.valid is True
    assert result.counts["recovered"] == 1
    assert anomalies(result) == {}


def test_a_record_at_several_offsets_counts_once_per_id() -> None:
    history = History()
    a, b, c = sends(history, 3)
    history.ok([a, b], 1.0, base_offset=0)
    history.info([c], 1.0, "NETWORK_EXCEPTION")
    log = [a, b, a, c, a, b]
    trace = [
        append(0.5, broker=0, base=0, count=2, epoch=1),
        append(30.0, broker=0, base=2, count=1, epoch=1),
        append(31.0, broker=1, base=3, count=3, epoch=2),
    ]
    result = check(history, reads(read(log)), trace)
    assert anomalies(result) == {"duplicated": 2}
    first, second = result.witnesses["duplicated"]
    assert first["records"][0]["id"] == a
    assert first["offsets"] == [0, 2, 4]
    assert first["explanation"] == (
        "producer-0#0 (acked at offset 0) appears 3 times in orders/0 at offsets 0, 2, 4: "
        "offset 0 appended by broker-0 (epoch 1) at t=0.5ms; "
        "offset 2 appended by broker-0 (epoch 1) at t=30.0ms; "
        "offset 4 appended by broker-1 (epoch 2) at t=31.0ms"
    )
    assert second["offsets"] == [1, 5]
    assert result.counts["recovered"] == 1
    assert result.counts["reordered"] == 0  # Later copies are not reorders.


def test_an_id_never_sent_is_unexpected() -> None:
    history = History()
    ids = sends(history, 1)
    history.ok(ids, 1.0, 0)
    result = check(history, reads(read([ids[0], 99])))
    assert result.valid is False
    assert result.counts["unexpected"] == 1
    assert (
        result.witnesses["unexpected"][0]["explanation"]
        == "record id 99 at orders/0 offset 1 was never sent"
    )


def test_a_record_read_in_another_partition_is_unexpected_and_lost_from_its_own() -> None:
    history = History()
    rid = sends(history, 1, partition=0)[0]
    history.ok([rid], 1.0, 0)
    result = check(history, reads(read([]), read([rid], partition=1)))
    assert anomalies(result) == {"lost": 1, "unexpected": 1}


# --- reordered -------------------------------------------------------------


def test_one_overtaken_record_is_one_reorder_with_the_pair_as_witness() -> None:
    history = History()
    a, b, c = sends(history, 3)
    history.ok([a], 1.0, 0)
    history.ok([c], 1.0, 1)
    history.ok([b], 2.0, 2)
    result = check(history, reads(read([a, c, b])))
    assert anomalies(result) == {"reordered": 1}
    witness = result.witnesses["reordered"][0]
    assert [r["label"] for r in witness["records"]] == ["producer-0#1", "producer-0#2"]
    assert witness["offsets"] == [2, 1]
    assert witness["explanation"].startswith(
        "producer-0#1 was sent before producer-0#2 but lies after it in orders/0"
    )


def test_every_record_behind_a_later_send_counts() -> None:
    history = History()
    a, b, c = sends(history, 3)
    history.ok([c, a, b], 1.0, 0)
    assert check(history, reads(read([c, a, b]))).counts["reordered"] == 2


def test_two_producers_interleaving_on_one_partition_are_not_reordered() -> None:
    history = History()
    a0 = history.invoke(P0, "orders", 0, 0.0)
    b0 = history.invoke(P1, "orders", 0, 1.0)
    a1 = history.invoke(P0, "orders", 0, 2.0)
    b1 = history.invoke(P1, "orders", 0, 3.0)
    history.ok([b0, b1, a0, a1], 5.0, 0)
    result = check(history, reads(read([b0, b1, a0, a1])))
    assert result.valid is True
    assert result.counts["reordered"] == 0


def test_one_producer_on_two_partitions_in_different_orders_is_not_reordered() -> None:
    history = History()
    x0 = history.invoke(P0, "orders", 0, 0.0)
    y0 = history.invoke(P0, "orders", 1, 1.0)
    x1 = history.invoke(P0, "orders", 0, 2.0)
    y1 = history.invoke(P0, "orders", 1, 3.0)
    history.ok([y0, y1], 4.0, 0)  # partition 1 is written first
    history.ok([x0, x1], 9.0, 0)
    result = check(history, reads(read([x0, x1], partition=0), read([y0, y1], partition=1)))
    assert result.valid is True
    assert result.counts["reordered"] == 0


def test_a_missing_record_is_not_a_reorder() -> None:
    history = History()
    a, b, c = sends(history, 3)
    history.ok([a, c], 1.0, 0)
    history.fail([b], 1.0, "MESSAGE_TOO_LARGE")
    result = check(history, reads(read([a, c])))
    assert result.valid is True


# --- aborted reads and transactions ----------------------------------------


def test_a_visible_failed_record_is_an_aborted_read_and_recovered() -> None:
    history = History()
    acked, failed = sends(history, 2)
    history.ok([acked], 1.0, 0)
    history.fail([failed], 3.0, "NOT_ENOUGH_REPLICAS")
    result = check(
        history, reads(read([acked, failed])), [append(2.0, broker=0, base=1, count=1, epoch=1)]
    )
    assert anomalies(result) == {"aborted_read": 1}
    assert result.counts["recovered"] == 1
    assert result.witnesses["aborted_read"][0]["explanation"] == (
        "producer-0#1 failed (NOT_ENOUGH_REPLICAS) at t=3.0ms but is visible at orders/0 offset 1, "
        "appended by broker-0 (epoch 1) at t=2.0ms"
    )


def txn_history(outcome: str, partitions: Sequence[int] = (0, 0, 1)) -> tuple[History, list[int]]:
    """One transaction of producer-0 over `partitions`, every record acked, then `outcome`."""
    history = History()
    txn = history.begin_txn(P0, producer_id=1000, producer_epoch=0)
    ids = [history.invoke(P0, "orders", p, float(i), txn=txn) for i, p in enumerate(partitions)]
    for rid in ids:
        history.ok([rid], 5.0, base_offset=0 if rid == 0 or partitions[rid] == 1 else 1)
    history.end_txn(txn, outcome)
    return history, ids


def test_a_fully_visible_committed_transaction_is_fine() -> None:
    history, (a, b, c) = txn_history("commit")
    result = check(history, reads(read([a, b]), read([c], partition=1)))
    assert result.valid is True


def test_a_committed_transaction_partly_visible_is_torn_and_its_missing_records_lost() -> None:
    history, (a, b, c) = txn_history("commit")
    result = check(history, reads(read([a, b]), read([], partition=1)))
    assert anomalies(result) == {"torn_txn": 1, "lost": 1}
    witness = result.witnesses["torn_txn"][0]
    assert witness["partition"] == "orders/0,orders/1"
    assert [r["id"] for r in witness["records"]] == [a, c]
    assert witness["offsets"] == [0, -1]
    assert witness["explanation"] == (
        "transaction 0 of producer-0 (producer id 1000, epoch 0) committed, "
        "but only 2 of 3 records are visible; missing: producer-0#2"
    )


def test_a_committed_transaction_entirely_missing_is_lost_not_torn() -> None:
    history, _ = txn_history("commit")
    result = check(history, reads(read([]), read([], partition=1)))
    assert anomalies(result) == {"lost": 3}


def test_records_of_an_aborted_transaction_absent_are_fine_and_visible_are_aborted_reads() -> None:
    history, (a, b, c) = txn_history("abort")
    assert check(history, reads(read([]), read([], partition=1))).valid is True
    result = check(history, reads(read([a]), read([], partition=1)))
    assert anomalies(result) == {"aborted_read": 1}
    assert (
        "transaction 0 of producer-0, which aborted"
        in result.witnesses["aborted_read"][0]["explanation"]
    )


@pytest.mark.parametrize("outcome", ["unknown", "open"])
def test_records_of_an_undecided_transaction_may_be_absent_or_present(outcome: str) -> None:
    history, (a, b, c) = txn_history("commit")
    history.txns[0] = Txn(0, P0, 1000, 0, outcome)
    assert check(history, reads(read([]), read([], partition=1))).valid is True
    assert check(history, reads(read([a]), read([c], partition=1))).valid is True


def test_a_torn_transaction_with_a_missing_partition_offline_is_not_judged_torn() -> None:
    history, (a, b, c) = txn_history("commit")
    offline = PartitionRead("orders", 1, 0, [], [], readable=False)
    result = check(history, reads(read([a, b]), offline))
    assert result.valid == "unknown"
    assert result.counts["torn_txn"] == 0


# --- composition -----------------------------------------------------------


def test_merge_valid_ranks_false_over_unknown_over_true() -> None:
    assert merge_valid() is True
    assert merge_valid(True, True) is True
    assert merge_valid(True, "unknown") == "unknown"
    assert merge_valid("unknown", False, True) is False
    with pytest.raises(AssertionError):
        merge_valid("maybe")


def test_compose_merges_counts_witnesses_and_errors() -> None:
    one = CheckResult(True, {"a": 1}, {"x": [{"k": 1}]})
    two = CheckResult("unknown", {"b": 2}, {}, {"two": "boom"})
    assert compose([one, two]) == CheckResult(
        "unknown", {"a": 1, "b": 2}, {"x": [{"k": 1}]}, {"two": "boom"}
    )


def boom(*_args: Any) -> CheckResult:
    raise RuntimeError("boom")


def replace_checker(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    rows = tuple((n, boom if n == name else fn, t) for n, fn, t in checker.CHECKERS)
    monkeypatch.setattr(checker, "CHECKERS", rows)


def test_a_raising_checker_makes_its_part_unknown_not_a_crash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    replace_checker(monkeypatch, "reordered")
    history = History()
    ids = sends(history, 2)
    history.ok(ids, 1.0, 0)
    result = check(history, reads(read(ids)))
    assert result.valid == "unknown"
    assert result.errors == {"reordered": "RuntimeError: boom"}
    assert result.counts["reordered"] == 0  # The key stays, as the contract says.


def test_a_raising_checker_does_not_hide_a_found_anomaly(monkeypatch: pytest.MonkeyPatch) -> None:
    replace_checker(monkeypatch, "duplicated")
    history = History()
    ids = sends(history, 2)
    history.ok(ids, 1.0, 0)
    result = check(history, reads(read(ids[:1])))
    assert result.valid is False
    assert result.counts["lost"] == 1


def test_a_malformed_read_is_unknown() -> None:
    history = History()
    history.ok(sends(history, 2), 1.0, 0)
    result = check(history, reads(read([0, 1], offsets=[3, 2])))
    assert result.valid == "unknown"
    assert "observe" in result.errors


def test_malformed_trace_events_are_skipped() -> None:
    history, ids, trace = failover_history()
    trace.append(event(1.0, "broker.truncate", topic="orders", partition=0))
    result = check(history, reads(read([ids[0], ids[1], ids[2], ids[6], ids[7]])), trace)
    assert result.errors == {}
    assert "broker-0 truncated" in result.witnesses["lost"][0]["explanation"]


@pytest.mark.slow
def test_a_million_records_are_judged_completely() -> None:
    """Scale, not speed (speed is `kpsim bench`'s job): a million records, one lost."""
    history = History()
    n = 1_000_000
    ids = [history.invoke(f"producer-{i % 4}", "orders", i % 8, float(i)) for i in range(n)]
    for p in range(8):
        history.ok(ids[p::8], float(n), base_offset=0)
    final = {("orders", p): read(ids[p::8], partition=p) for p in range(8)}
    final[("orders", 7)] = read(ids[7::8][:-1], partition=7)
    result = check(history, final)
    assert result.valid is False
    assert result.counts["lost"] == 1
    assert result.counts["acked"] == n
