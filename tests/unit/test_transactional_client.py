"""The producer's transactional API: kafka-python's methods, states and messages.

kafka-python 3.0.12 (`producer/kafka.py`, `producer/transaction_manager.py`)
is the reference for which call raises what with which message; the
coordinator's side is in test_txn_coordinator.py. The last test is a
consume-transform-produce loop through the Python API, with a broker crash.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

import sim
from sim.client.consumer import KafkaConsumer, OffsetAndMetadata, TopicPartition
from sim.client.transactional import ABORTABLE_ERROR, FATAL_ERROR, IN_TRANSACTION, READY
from sim.cluster.txn_coordinator import EMPTY
from sim.errors import (
    IllegalStateError,
    InvalidProducerIdMappingError,
    InvalidRecordError,
    InvalidTxnStateError,
    KafkaError,
    ProducerFencedError,
    TransactionAbortedError,
)
from sim.protocol import EndTxnRequest

TXN_ID = "tx-1"
TP = TopicPartition("t", 0)


def new_cluster(seed: int = 1, partitions: int = 1) -> sim.Cluster:
    cluster = sim.Cluster(brokers=3, seed=seed)
    cluster.create_topic("t", partitions=partitions, replication_factor=3, min_insync_replicas=2)
    return cluster


def transactional(cluster: sim.Cluster, txn_id: str = TXN_ID) -> sim.KafkaProducer:
    producer = sim.KafkaProducer(cluster=cluster, transactional_id=txn_id)
    producer.init_transactions()
    return producer


def state(producer: sim.KafkaProducer) -> str:
    assert producer.txn_client is not None
    return producer.txn_client.state


def read_committed(cluster: sim.Cluster, topic: str = "t", partition: int = 0) -> list[Any]:
    consumer = KafkaConsumer(
        cluster=cluster, isolation_level="read_committed", auto_offset_reset="earliest"
    )
    consumer.assign([TopicPartition(topic, partition)])
    values: list[Any] = []
    while True:
        batch = consumer.poll(timeout_ms=1000)
        if not batch:
            return values
        values += [r.value for records in batch.values() for r in records]


# --- transactional methods on producers that are not transactional ---------------------------

CALLS: dict[str, Callable[[sim.KafkaProducer], None]] = {
    "init_transactions": lambda p: p.init_transactions(),
    "begin_transaction": lambda p: p.begin_transaction(),
    "send_offsets_to_transaction": lambda p: p.send_offsets_to_transaction(
        {TP: OffsetAndMetadata(1, "", -1)}, "g"
    ),
    "commit_transaction": lambda p: p.commit_transaction(),
    "abort_transaction": lambda p: p.abort_transaction(),
}
PLAIN_MESSAGES = {
    "init_transactions": "Cannot call init_transactions without setting a transactional_id.",
    "begin_transaction": "Cannot use transactional methods without enabling transactions",
    "send_offsets_to_transaction": "Cannot use transactional methods without enabling transactions",
    "commit_transaction": "Cannot commit transaction since transactions are not enabled",
    "abort_transaction": "Cannot abort transaction since transactions are not enabled.",
}
"""kafka-python's messages when there is no transaction manager at all (no idempotence)."""


@pytest.mark.parametrize("method", sorted(CALLS))
def test_transactional_methods_without_idempotence_raise_kafka_pythons_messages(
    method: str,
) -> None:
    producer = sim.KafkaProducer(cluster=new_cluster(), enable_idempotence=False)
    with pytest.raises(IllegalStateError) as raised:
        CALLS[method](producer)
    assert str(raised.value).endswith(PLAIN_MESSAGES[method])


@pytest.mark.parametrize("method", sorted(CALLS))
def test_transactional_methods_on_an_idempotent_producer_say_it_is_not_transactional(
    method: str,
) -> None:
    producer = sim.KafkaProducer(cluster=new_cluster(), enable_idempotence=True)
    with pytest.raises(IllegalStateError) as raised:
        CALLS[method](producer)
    assert str(raised.value).endswith(
        "Transactional method invoked on a non-transactional producer."
    )


# --- the state checks ------------------------------------------------------------------------


def test_send_before_init_transactions_is_refused() -> None:
    producer = sim.KafkaProducer(cluster=new_cluster(), transactional_id=TXN_ID)
    with pytest.raises(IllegalStateError) as raised:
        producer.send("t", value=b"x")
    assert str(raised.value).endswith(
        "Cannot perform a 'send' before completing a call to init_transactions "
        "when transactions are enabled."
    )
    assert len(producer.history) == 0, "a refused send is not recorded"


def test_send_outside_a_transaction_is_refused_in_state_ready() -> None:
    cluster = new_cluster()
    producer = transactional(cluster)
    with pytest.raises(IllegalStateError) as raised:
        producer.send("t", value=b"x")
    assert str(raised.value).endswith("Cannot call send in state READY")
    producer.begin_transaction()
    producer.send("t", value=b"x")
    producer.commit_transaction()
    with pytest.raises(IllegalStateError, match="Cannot call send in state READY"):
        producer.send("t", value=b"y")


def test_begin_twice_and_commit_without_begin_are_invalid_transitions() -> None:
    producer = transactional(new_cluster())
    with pytest.raises(KafkaError, match="from state READY to state COMMITTING_TRANSACTION"):
        producer.commit_transaction()
    with pytest.raises(KafkaError, match="from state READY to state ABORTING_TRANSACTION"):
        producer.abort_transaction()
    producer.begin_transaction()
    with pytest.raises(KafkaError, match="from state IN_TRANSACTION to state IN_TRANSACTION"):
        producer.begin_transaction()
    assert state(producer) == IN_TRANSACTION


def test_send_offsets_outside_a_transaction_is_refused() -> None:
    producer = transactional(new_cluster())
    with pytest.raises(KafkaError, match="the producer is not in an active transaction"):
        producer.send_offsets_to_transaction({TP: OffsetAndMetadata(1, "", -1)}, "g")


def test_init_transactions_again_after_success_does_nothing() -> None:
    cluster = new_cluster()
    producer = transactional(cluster)
    assert producer.txn_manager is not None
    before = (producer.txn_manager.producer_id, producer.txn_manager.producer_epoch)
    producer.init_transactions()
    after = (producer.txn_manager.producer_id, producer.txn_manager.producer_epoch)
    assert after == before
    assert state(producer) == READY


# --- abortable and fatal errors -------------------------------------------------------------


def test_a_failed_send_makes_the_transaction_abortable_only() -> None:
    cluster = new_cluster()
    producer = transactional(cluster)
    producer.begin_transaction()
    cluster.error(target="leader:t/0", message="ProduceRequest", error="INVALID_RECORD")
    future = producer.send("t", value=b"bad")
    with pytest.raises(InvalidRecordError):
        future.get(timeout=5)
    assert state(producer) == ABORTABLE_ERROR
    with pytest.raises(KafkaError, match="Cannot execute transactional method because we are in"):
        producer.commit_transaction()
    with pytest.raises(KafkaError, match="Cannot perform send because at least one previous"):
        producer.send("t", value=b"x")
    with pytest.raises(KafkaError, match="in an error state"):
        producer.begin_transaction()
    assert state(producer) == ABORTABLE_ERROR
    producer.abort_transaction()
    assert state(producer) == READY
    producer.begin_transaction()
    producer.send("t", value=b"good")
    producer.commit_transaction()
    assert read_committed(cluster) == [b"good"]


def test_a_send_failing_during_commit_fails_the_commit_and_abort_recovers() -> None:
    cluster = new_cluster()
    producer = transactional(cluster)
    producer.begin_transaction()
    cluster.error(target="leader:t/0", message="ProduceRequest", error="INVALID_RECORD")
    producer.send("t", value=b"bad")
    with pytest.raises(InvalidRecordError):
        producer.commit_transaction()
    assert state(producer) == ABORTABLE_ERROR
    assert not [e for e in cluster.world.events if e.field("state") == "PrepareCommit"]
    producer.abort_transaction()
    assert state(producer) == READY
    assert read_committed(cluster) == []


def test_a_fenced_producer_is_fatal_and_every_later_call_raises() -> None:
    cluster = new_cluster()
    zombie = transactional(cluster)
    zombie.begin_transaction()
    zombie.send("t", value=b"zombie")
    zombie.flush()
    successor = transactional(cluster)
    with pytest.raises(ProducerFencedError):
        zombie.commit_transaction()
    assert state(zombie) == FATAL_ERROR
    for name in ("begin_transaction", "commit_transaction", "abort_transaction"):
        with pytest.raises(KafkaError, match="in an error state: .*ProducerFencedError"):
            CALLS[name](zombie)
    with pytest.raises(KafkaError, match="in an error state"):
        CALLS["send_offsets_to_transaction"](zombie)
    with pytest.raises(KafkaError, match="Cannot perform send"):
        zombie.send("t", value=b"late")
    zombie.init_transactions()  # kafka-python: a completed init is not redone.
    assert state(zombie) == FATAL_ERROR
    successor.begin_transaction()
    successor.send("t", value=b"successor")
    successor.commit_transaction()
    assert read_committed(cluster) == [b"successor"]


def coordinator_meta(cluster: sim.Cluster, **changes: Any) -> None:
    """Overwrite the coordinator's in-memory record of TXN_ID (a state the client cannot see)."""
    coordinator = cluster.brokers[cluster.coordinator_of(TXN_ID)].txn.coordinator
    coordinator.txns[TXN_ID] = replace(coordinator.txns[TXN_ID], **changes)


def test_add_partitions_with_an_unknown_producer_id_mapping_is_fatal() -> None:
    cluster = new_cluster()
    producer = transactional(cluster)
    assert producer.txn_manager is not None
    coordinator_meta(cluster, producer_id=producer.txn_manager.producer_id + 1)
    producer.begin_transaction()
    producer.send("t", value=b"x")
    cluster.run_for(500)
    assert state(producer) == FATAL_ERROR  # kafka-python's AddPartitionsToTxnHandler.
    assert producer.txn_client is not None
    assert isinstance(producer.txn_client.last_error, InvalidProducerIdMappingError)
    with pytest.raises(KafkaError, match="in an error state"):
        producer.abort_transaction()


def test_end_txn_answered_invalid_txn_state_is_fatal() -> None:
    cluster = new_cluster()
    producer = transactional(cluster)
    producer.begin_transaction()
    producer.send("t", value=b"x")
    producer.flush()
    coordinator_meta(cluster, state=EMPTY)  # The coordinator lost the transaction.
    with pytest.raises(InvalidTxnStateError):
        producer.commit_transaction()
    assert state(producer) == FATAL_ERROR  # kafka-python's EndTxnHandler.
    with pytest.raises(KafkaError, match="in an error state"):
        producer.abort_transaction()


def test_abort_fails_batches_not_yet_sent_with_transaction_aborted_error() -> None:
    cluster = new_cluster()
    producer = transactional(cluster)
    producer.begin_transaction()
    future = producer.send("t", value=b"never sent")  # Its partition is not added yet.
    producer.abort_transaction()
    with pytest.raises(TransactionAbortedError):
        future.get(timeout=1)
    assert state(producer) == READY
    assert read_committed(cluster) == []


# --- EndTxn and offsets ------------------------------------------------------------------------


def count_end_txn(cluster: sim.Cluster) -> list[EndTxnRequest]:
    """Record every EndTxn a broker receives."""
    seen: list[EndTxnRequest] = []
    for broker in cluster.brokers:
        handle = broker.txn.handlers[EndTxnRequest]

        def spy(source: str, request: Any, handle: Any = handle) -> None:
            seen.append(request)
            handle(source, request)

        broker.txn.handlers[EndTxnRequest] = spy
    return seen


def test_an_empty_transaction_commits_and_aborts_without_end_txn() -> None:
    cluster = new_cluster()
    seen = count_end_txn(cluster)
    producer = transactional(cluster)
    producer.begin_transaction()
    producer.commit_transaction()
    producer.begin_transaction()
    producer.abort_transaction()
    assert seen == []
    assert state(producer) == READY
    producer.begin_transaction()
    producer.send("t", value=b"x")
    producer.commit_transaction()
    assert [r.commit for r in seen] == [True]


def committed_offset(cluster: sim.Cluster, group: str) -> dict[tuple[str, int], int]:
    leader = cluster.controller.partitions[("__consumer_offsets", 0)].leader
    groups = cluster.brokers[leader].txn.groups
    state = cluster.controller.partitions[("__consumer_offsets", groups.partition_of(group))]
    return cluster.brokers[state.leader].txn.groups.committed_offsets(group)


def test_offsets_sent_to_a_transaction_count_only_once_it_commits() -> None:
    cluster = new_cluster()
    producer = transactional(cluster)
    group = KafkaConsumer(cluster=cluster, group_id="group-1")
    assert group.committed(TP) is None

    producer.begin_transaction()
    producer.send_offsets_to_transaction({TP: OffsetAndMetadata(5, "", -1)}, "group-1")
    assert group.committed(TP) is None, "pending in an open transaction"
    producer.abort_transaction()
    cluster.run_for(200)
    assert group.committed(TP) is None, "aborted"
    assert committed_offset(cluster, "group-1") == {}

    producer.begin_transaction()
    producer.send_offsets_to_transaction({TP: OffsetAndMetadata(7, "", -1)}, "group-1")
    producer.commit_transaction()
    cluster.run_for(200)  # The markers follow the commit.
    assert group.committed(TP) == 7
    assert group.committed(TP, metadata=True).offset == 7
    assert committed_offset(cluster, "group-1") == {("t", 0): 7}
    other = KafkaConsumer(cluster=cluster, group_id="group-2")
    assert other.committed(TP) is None


def test_committed_needs_a_group_id() -> None:
    consumer = KafkaConsumer(cluster=new_cluster())
    with pytest.raises(IllegalStateError, match="Requires group_id"):
        consumer.committed(TP)


# --- the coordinator moves ---------------------------------------------------------------------


def test_the_producer_finds_the_new_coordinator_after_its_broker_crashes() -> None:
    cluster = new_cluster()
    producer = transactional(cluster)
    old = cluster.coordinator_of(TXN_ID)
    producer.begin_transaction()
    producer.send("t", value=b"one")
    producer.commit_transaction()
    cluster.crash(f"broker-{old}")
    producer.begin_transaction()
    producer.send("t", value=b"two")
    producer.commit_transaction()
    new = cluster.coordinator_of(TXN_ID)
    assert new not in (-1, old)
    prepared_by = [
        e.field("broker")
        for e in cluster.world.events
        if e.kind == "coordinator.state" and e.field("state") == "PrepareCommit"
    ]
    assert prepared_by == [old, new]
    completed_by = [
        e.field("broker")
        for e in cluster.world.events
        if e.kind == "coordinator.state" and e.field("state") == "CompleteCommit"
    ]
    assert completed_by[-1] == new
    assert read_committed(cluster) == [b"one", b"two"]


# --- consume-transform-produce -------------------------------------------------------------------

INPUT_RECORDS = 60
BATCH_RECORDS = 7


def test_consume_transform_produce_is_exactly_once_across_an_output_leader_crash() -> None:
    cluster = sim.Cluster(brokers=3, seed=5)
    for topic in ("input", "output"):
        cluster.create_topic(topic, partitions=1, replication_factor=3, min_insync_replicas=2)
    source = sim.KafkaProducer(cluster=cluster, acks="all")
    for i in range(INPUT_RECORDS):
        source.send("input", key=b"k%d" % i, value=b"v%d" % i)
    source.flush()
    tp_in = TopicPartition("input", 0)
    consumer = KafkaConsumer(
        cluster=cluster,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    consumer.assign([tp_in])
    producer = sim.KafkaProducer(cluster=cluster, transactional_id="ctp-1", acks="all")
    producer.init_transactions()
    commits = 0
    crashed_at = None
    for _ in range(100):  # Bounded: about 9 transactions are needed.
        records = consumer.poll(timeout_ms=1000, max_records=BATCH_RECORDS).get(tp_in, [])
        if not records:
            if consumer.position(tp_in) >= INPUT_RECORDS:
                break
            continue
        producer.begin_transaction()
        for record in records:
            producer.send("output", key=record.key, value=record.value.upper())
        next_offset = records[-1].offset + 1
        producer.send_offsets_to_transaction(
            {tp_in: OffsetAndMetadata(next_offset, "", -1)}, "group-1"
        )
        if commits == 3:
            crashed_at = cluster.controller.partitions[("output", 0)].leader
            cluster.crash("leader:output/0")  # Mid-transaction: sent, not yet committed.
        producer.commit_transaction()
        commits += 1
    assert consumer.position(tp_in) == INPUT_RECORDS
    assert crashed_at is not None
    assert cluster.controller.partitions[("output", 0)].leader not in (-1, crashed_at)
    output = read_committed(cluster, "output")
    assert sorted(output) == sorted(b"V%d" % i for i in range(INPUT_RECORDS))
    assert len(output) == len(set(output)) == INPUT_RECORDS, "each input exactly once"
    group = KafkaConsumer(cluster=cluster, group_id="group-1")
    assert group.committed(tp_in) == INPUT_RECORDS
    result = cluster.check()
    assert result.counts["duplicated"] == 0
    assert result.counts["lost"] == 0
    assert result.counts["aborted_read"] == 0
