"""KafkaConsumer: kafka-python's assign/seek/position/poll over the simulated cluster.

read_uncommitted reads up to the high watermark; read_committed up to the
last stable offset, without the aborted transactions the leader lists and
never a control record — which still occupies an offset, so positions move
past markers. Payloads come back from the history, through deserializers.
"""

from __future__ import annotations

from typing import Any

import pytest

import sim
from sim.client.consumer import ConsumerRecord, KafkaConsumer, TopicPartition, apply_read
from sim.errors import IllegalStateError, KafkaConfigurationError
from sim.protocol import ConsumerFetchData, Errors, LogBatch, RecordBatch

TP = TopicPartition("t", 0)


def new_cluster(seed: int = 4) -> sim.Cluster:
    cluster = sim.Cluster(brokers=3, seed=seed)
    cluster.create_topic("t", partitions=1, replication_factor=3, min_insync_replicas=2)
    return cluster


def consumer(
    cluster: sim.Cluster, isolation: str = "read_committed", **configs: Any
) -> KafkaConsumer:
    configs.setdefault("auto_offset_reset", "earliest")
    reader = KafkaConsumer(cluster=cluster, isolation_level=isolation, **configs)
    reader.assign([TP])
    return reader


def drain(reader: KafkaConsumer, timeout_ms: float = 1000) -> list[ConsumerRecord]:
    """Poll until a poll returns nothing (bounded)."""
    out: list[ConsumerRecord] = []
    for _ in range(50):
        batch = reader.poll(timeout_ms=timeout_ms)
        if not batch:
            return out
        out += batch[TP]
    raise AssertionError("the consumer never ran dry")


def values(records: list[ConsumerRecord]) -> list[Any]:
    return [r.value for r in records]


def leader_log(cluster: sim.Cluster) -> Any:
    leader = cluster.controller.partitions[("t", 0)].leader
    return cluster.brokers[leader].replicas[("t", 0)].log


# --- isolation levels ----------------------------------------------------------------------------


def test_an_open_transaction_is_visible_read_uncommitted_and_invisible_read_committed() -> None:
    cluster = new_cluster()
    plain = sim.KafkaProducer(cluster=cluster)
    plain.send("t", value=b"before").get(timeout=5)
    txn = sim.KafkaProducer(cluster=cluster, transactional_id="tx-1")
    txn.init_transactions()
    txn.begin_transaction()
    txn.send("t", value=b"open")
    txn.flush()
    plain.send("t", value=b"after").get(timeout=5)
    cluster.run_for(1000)
    log = leader_log(cluster)
    assert (log.hw, log.last_stable_offset()) == (3, 1)
    assert values(drain(consumer(cluster, "read_uncommitted"))) == [b"before", b"open", b"after"]
    assert values(drain(consumer(cluster, "read_committed"))) == [b"before"]
    txn.commit_transaction()
    cluster.run_for(1000)
    assert values(drain(consumer(cluster, "read_committed"))) == [b"before", b"open", b"after"]


def test_read_committed_skips_aborted_records_read_uncommitted_does_not() -> None:
    cluster = new_cluster()
    producer = sim.KafkaProducer(cluster=cluster, transactional_id="tx-1")
    producer.init_transactions()
    for word, commit in ((b"keep-1", True), (b"drop", False), (b"keep-2", True)):
        producer.begin_transaction()
        producer.send("t", value=word)
        producer.flush()
        if commit:
            producer.commit_transaction()
        else:
            producer.abort_transaction()
    cluster.run_for(1000)
    committed = drain(consumer(cluster, "read_committed"))
    uncommitted = drain(consumer(cluster, "read_uncommitted"))
    assert values(committed) == [b"keep-1", b"keep-2"]
    assert values(uncommitted) == [b"keep-1", b"drop", b"keep-2"]
    # Data at 0, 2, 4; a marker after each.
    assert [r.offset for r in uncommitted] == [0, 2, 4]
    assert [r.offset for r in committed] == [0, 4]


def test_read_uncommitted_stops_at_the_high_watermark() -> None:
    cluster = new_cluster()
    producer = sim.KafkaProducer(cluster=cluster, acks=1)
    producer.send("t", value=b"replicated").get(timeout=5)
    cluster.run_for(1000)
    for follower in cluster.controller.partitions[("t", 0)].replicas[1:]:
        cluster.crash(f"broker-{follower}")
    producer.send("t", value=b"leader only").get(timeout=5)  # acks=1: written, HW stuck.
    log = leader_log(cluster)
    assert (log.leo, log.hw) == (2, 1)
    assert values(drain(consumer(cluster, "read_uncommitted"), timeout_ms=200)) == [b"replicated"]


# --- positions ---------------------------------------------------------------------------------


def test_positions_move_past_control_records() -> None:
    cluster = new_cluster()
    producer = sim.KafkaProducer(cluster=cluster, transactional_id="tx-1")
    producer.init_transactions()
    producer.begin_transaction()
    producer.send("t", value=b"a")
    producer.send("t", value=b"b")
    producer.commit_transaction()
    producer.begin_transaction()
    producer.send("t", value=b"gone")
    producer.flush()
    producer.abort_transaction()
    cluster.run_for(1000)
    assert leader_log(cluster).leo == 5  # a b COMMIT gone ABORT
    for isolation in ("read_committed", "read_uncommitted"):
        reader = consumer(cluster, isolation)
        first = reader.poll(timeout_ms=1000, max_records=2)[TP]
        assert values(first) == [b"a", b"b"]
        assert reader.position(TP) == 2
        rest = drain(reader)
        assert values(rest) == ([] if isolation == "read_committed" else [b"gone"])
        assert reader.position(TP) == 5, "past the COMMIT, the aborted record and the ABORT"


def test_seek_seek_to_beginning_and_position() -> None:
    cluster = new_cluster()
    producer = sim.KafkaProducer(cluster=cluster)
    for i in range(5):
        producer.send("t", value=b"%d" % i)
    producer.flush()
    cluster.run_for(1000)
    reader = consumer(cluster, "read_uncommitted")
    assert reader.position(TP) == 0, "auto_offset_reset=earliest"
    assert values(drain(reader)) == [b"0", b"1", b"2", b"3", b"4"]
    assert reader.position(TP) == 5
    reader.seek(TP, 3)
    assert reader.position(TP) == 3
    assert values(drain(reader)) == [b"3", b"4"]
    reader.seek_to_beginning()
    assert reader.position(TP) == 0
    assert [r.offset for r in reader.poll(timeout_ms=1000, max_records=2)[TP]] == [0, 1]
    reader.seek_to_end(TP)
    assert reader.position(TP) == 5
    latest = consumer(cluster, "read_uncommitted", auto_offset_reset="latest")
    assert latest.position(TP) == 5
    assert latest.poll(timeout_ms=100) == {}


def test_latest_for_read_committed_is_the_last_stable_offset() -> None:
    cluster = new_cluster()
    plain = sim.KafkaProducer(cluster=cluster)
    plain.send("t", value=b"x").get(timeout=5)
    txn = sim.KafkaProducer(cluster=cluster, transactional_id="tx-1")
    txn.init_transactions()
    txn.begin_transaction()
    txn.send("t", value=b"open")
    txn.flush()
    cluster.run_for(1000)
    assert consumer(cluster, "read_committed", auto_offset_reset="latest").position(TP) == 1
    assert consumer(cluster, "read_uncommitted", auto_offset_reset="latest").position(TP) == 2


def test_unassigned_partitions_and_bad_configs_raise() -> None:
    cluster = new_cluster()
    reader = consumer(cluster)
    with pytest.raises(IllegalStateError):
        reader.position(TopicPartition("t", 9))
    with pytest.raises(IllegalStateError):
        reader.seek(TopicPartition("other", 0), 0)
    with pytest.raises(KafkaConfigurationError):
        KafkaConsumer(cluster=cluster, isolation_level="read_dirty")
    with pytest.raises(KafkaConfigurationError):
        KafkaConsumer(cluster=cluster, auto_offset_reset="middle")
    with pytest.raises(KafkaConfigurationError):
        KafkaConsumer(cluster=cluster, no_such_option=1)
    reader.close()
    with pytest.raises(IllegalStateError):
        reader.poll()


# --- payloads ----------------------------------------------------------------------------------


def test_keys_values_and_timestamps_come_back_from_python_sends() -> None:
    cluster = new_cluster()
    producer = sim.KafkaProducer(cluster=cluster)
    producer.send("t", key=b"k1", value=b"v1", timestamp_ms=1234).get(timeout=5)
    producer.send("t", value=b"no key").get(timeout=5)
    cluster.run_for(1000)
    records = drain(consumer(cluster))
    assert [(r.key, r.value) for r in records] == [(b"k1", b"v1"), (None, b"no key")]
    assert records[0].timestamp == 1234
    assert (records[0].serialized_key_size, records[0].serialized_value_size) == (2, 2)
    assert records[1].serialized_key_size == -1
    assert (records[0].topic, records[0].partition, records[0].offset) == ("t", 0, 0)


def test_deserializers_apply_to_keys_and_values() -> None:
    cluster = new_cluster()
    producer = sim.KafkaProducer(
        cluster=cluster, key_serializer=str.encode, value_serializer=lambda v: repr(v).encode()
    )
    producer.send("t", key="user-1", value={"n": 1}).get(timeout=5)
    cluster.run_for(1000)
    reader = consumer(
        cluster, key_deserializer=bytes.decode, value_deserializer=lambda b: eval(b.decode())
    )
    [record] = drain(reader)
    assert (record.key, record.value) == ("user-1", {"n": 1})


# --- leader changes ----------------------------------------------------------------------------


def test_the_consumer_follows_a_leader_change() -> None:
    cluster = new_cluster()
    producer = sim.KafkaProducer(cluster=cluster, acks="all")
    producer.send("t", value=b"before").get(timeout=5)
    reader = consumer(cluster, "read_uncommitted")
    assert values(drain(reader)) == [b"before"]
    old = cluster.controller.partitions[("t", 0)].leader
    cluster.crash(f"broker-{old}")
    producer.send("t", value=b"after").get(timeout=30)
    assert cluster.controller.partitions[("t", 0)].leader not in (-1, old)
    assert values(drain(reader, timeout_ms=2000)) == [b"after"]
    late = consumer(cluster, "read_committed")  # Created after the crash, too.
    assert values(drain(late, timeout_ms=2000)) == [b"before", b"after"]


# --- apply_read on a hand-built fetch answer ---------------------------------------------------


def test_apply_read_bounds_and_filters_a_fetch_answer() -> None:
    def txn(pid: int, ids: tuple[int, ...], seq: int = 0) -> RecordBatch:
        return RecordBatch(pid, 0, seq, ids, 10, 0.0, is_transactional=True)

    def mark(pid: int, commit: bool) -> RecordBatch:
        control = "COMMIT" if commit else "ABORT"
        return RecordBatch(pid, 0, -1, (), 78, 0.0, is_transactional=True, control=control)

    batches = (
        LogBatch(0, 0, txn(1, (10, 11))),
        LogBatch(2, 0, txn(2, (20,))),
        LogBatch(3, 0, mark(1, commit=False)),
        LogBatch(4, 0, mark(2, commit=True)),
        LogBatch(5, 0, txn(1, (12,), seq=2)),
    )
    answer = ConsumerFetchData("t", 0, Errors.NONE, 6, 5, 0, batches, ((1, 0),))
    assert [r for _, r, _ in apply_read(answer, "read_committed", 0)] == [20]
    assert [r for _, r, _ in apply_read(answer, "read_uncommitted", 0)] == [10, 11, 20, 12]
    assert [o for o, _, _ in apply_read(answer, "read_uncommitted", 1)] == [1, 2, 5]
