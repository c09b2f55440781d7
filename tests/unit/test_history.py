"""History: the columns, the completion rules, Jepsen-style ops, describe() and txns."""

import pytest

from sim.history import FAIL, INFO, NO_TXN, OK, PENDING, History, Op, Txn


def test_invoke_interns_processes_and_topics_and_numbers_sends_per_process() -> None:
    history = History()
    ids = [
        history.invoke("producer-0", "orders", 0, 1.0),
        history.invoke("producer-1", "orders", 1, 2.0),
        history.invoke("producer-0", "audit", 2, 3.0),
    ]
    assert ids == [0, 1, 2]
    assert len(history) == 3
    assert history.processes == ["producer-0", "producer-1"]
    assert history.topics == ["orders", "audit"]
    assert history.process == [0, 1, 0]
    assert history.topic == [0, 0, 1]
    assert history.partition == [0, 1, 2]
    assert history.send_index == [0, 0, 1]
    assert history.invoke_ms == [1.0, 2.0, 3.0]
    assert history.status == [PENDING] * 3
    assert history.done_ms == [-1.0] * 3
    assert history.offset == [-1] * 3
    assert history.error == [None] * 3
    assert history.txn == [NO_TXN] * 3
    assert history.pending() == 3


def test_ok_assigns_consecutive_offsets_from_the_base() -> None:
    history = History()
    ids = [history.invoke("producer-0", "orders", 0, 0.0) for _ in range(3)]
    history.ok(ids, 5.0, base_offset=10)
    assert history.status == [OK] * 3
    assert history.offset == [10, 11, 12]
    assert history.done_ms == [5.0] * 3
    assert history.count(OK) == 3
    assert history.pending() == 0


def test_ok_without_an_offset_leaves_every_offset_minus_one() -> None:
    history = History()
    ids = [history.invoke("producer-0", "orders", 0, 0.0) for _ in range(2)]
    history.ok(ids, 1.0, base_offset=-1)  # acks=0
    assert history.status == [OK, OK]
    assert history.offset == [-1, -1]


def test_fail_and_info_record_the_error_and_time() -> None:
    history = History()
    failed = history.invoke("producer-0", "orders", 0, 0.0)
    unknown = history.invoke("producer-0", "orders", 0, 0.0)
    history.fail([failed], 7.0, "NOT_ENOUGH_REPLICAS")
    history.info([unknown], 8.0, "REQUEST_TIMED_OUT")
    assert history.status == [FAIL, INFO]
    assert history.error == ["NOT_ENOUGH_REPLICAS", "REQUEST_TIMED_OUT"]
    assert history.done_ms == [7.0, 8.0]
    assert history.offset == [-1, -1]
    assert (history.count(FAIL), history.count(INFO), history.pending()) == (1, 1, 0)


@pytest.mark.parametrize(
    ("first", "second"),
    [("ok", "ok"), ("ok", "fail"), ("fail", "info"), ("info", "ok"), ("info", "info")],
)
def test_completing_a_record_twice_is_a_simulator_bug(first: str, second: str) -> None:
    history = History()
    rid = history.invoke("producer-0", "orders", 0, 0.0)

    def complete(kind: str) -> None:
        if kind == "ok":
            history.ok([rid], 1.0, 0)
        else:
            getattr(history, kind)([rid], 1.0, "ERR")

    complete(first)
    with pytest.raises(AssertionError, match="completed twice"):
        complete(second)


def test_ops_are_ordered_by_time_invokes_before_completions_then_faults() -> None:
    history = History()
    a = history.invoke("producer-0", "orders", 0, 0.0)
    b = history.invoke("producer-1", "orders", 0, 5.0)
    c = history.invoke("producer-0", "orders", 0, 5.0)
    history.ok([a], 5.0, base_offset=0)
    history.info([b], 9.0, "REQUEST_TIMED_OUT")
    history.fault(5.0, "kill_broker", "broker-0")
    ops = list(history.ops())
    assert [op.index for op in ops] == list(range(6))
    assert [(op.time_ms, op.process, op.type) for op in ops] == [
        (0.0, "producer-0", "invoke"),
        (5.0, "producer-1", "invoke"),
        (5.0, "producer-0", "invoke"),
        (5.0, "producer-0", "ok"),
        (5.0, "nemesis", "info"),
        (9.0, "producer-1", "info"),
    ]
    assert ops[0].value == (a, "orders", 0)
    assert ops[3].value == (a, "orders", 0, 0, None)
    assert ops[4] == Op(4, "nemesis", "info", "kill_broker", "broker-0", 5.0)
    assert ops[5].value == (b, "orders", 0, -1, "REQUEST_TIMED_OUT")
    assert all(op.value[0] != c for op in ops if op.type != "invoke")  # c is still pending


def test_describe_and_record_label_name_the_producer_and_send() -> None:
    history = History()
    history.invoke("producer-0", "orders", 0, 0.0)
    rid = history.invoke("producer-0", "orders", 2, 1.5)
    history.ok([rid], 3.0, base_offset=41)
    assert history.record_label(rid) == "producer-0#1"
    assert history.describe(rid) == {
        "id": 1,
        "label": "producer-0#1",
        "process": "producer-0",
        "topic": "orders",
        "partition": 2,
        "status": "ok",
        "offset": 41,
        "invoke_ms": 1.5,
        "done_ms": 3.0,
        "error": None,
    }


def test_transactions_start_open_and_record_their_outcome() -> None:
    history = History()
    first = history.begin_txn("producer-0", producer_id=1000, producer_epoch=0)
    second = history.begin_txn("producer-0", producer_id=1000, producer_epoch=0)
    rid = history.invoke("producer-0", "orders", 0, 0.0, txn=first)
    assert (first, second) == (0, 1)
    assert history.txn[rid] == first
    assert history.txns[second] == Txn(1, "producer-0", 1000, 0, "open")
    history.end_txn(first, "commit")
    history.end_txn(second, "abort")
    assert [txn.outcome for txn in history.txns] == ["commit", "abort"]
    with pytest.raises(AssertionError):
        history.end_txn(first, "committed")
