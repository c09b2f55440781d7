"""Idempotence: producer id, per-partition sequences, retries in order, dedup.

First `TransactionManager` on its own (the client's bookkeeping), then an
idempotent producer against a simulated cluster, read from the trace.
"""

from typing import Any

import sim
from sim.client.accumulator import ProducerBatch
from sim.client.transactions import TransactionManager
from sim.protocol import Errors
from sim.world import TraceEvent


def batch(partition: int = 0, records: int = 1) -> ProducerBatch:
    b = ProducerBatch("t", partition, 0.0, 1000)
    b.record_ids.extend(range(records))
    return b


def manager() -> TransactionManager:
    txn = TransactionManager()
    txn.set_producer_id(7, 0)
    return txn


def drain(txn: TransactionManager, b: ProducerBatch) -> None:
    assert txn.may_drain(b)
    txn.on_drain(b)
    b.in_request = True


# --- TransactionManager --------------------------------------------------------------------


def test_nothing_is_drained_before_the_producer_has_an_id() -> None:
    txn = TransactionManager()
    assert not txn.has_producer_id
    assert not txn.may_drain(batch())
    txn.set_producer_id(7, 0)
    assert txn.may_drain(batch())


def test_sequences_start_at_zero_per_partition_and_advance_by_record_count() -> None:
    txn = manager()
    a, b, c = batch(0, records=3), batch(0, records=2), batch(1, records=4)
    for x in (a, b, c):
        drain(txn, x)
    assert (a.base_sequence, b.base_sequence, c.base_sequence) == (0, 3, 0)
    assert (a.producer_id, a.producer_epoch) == (7, 0)


def test_a_batch_keeps_its_sequence_when_drained_again() -> None:
    txn = manager()
    a = batch(records=2)
    drain(txn, a)
    a.in_request = False  # Back for a retry.
    txn.on_drain(a)
    assert a.base_sequence == 0
    assert txn.partitions[("t", 0)].next_sequence == 2


def test_a_retried_batch_is_drained_only_when_it_is_the_lowest_in_flight() -> None:
    txn = manager()
    first, second = batch(), batch()
    drain(txn, first)
    drain(txn, second)
    assert not txn.may_drain(second), "first is still in flight below it"
    assert txn.may_drain(first)
    txn.on_success(first)
    assert txn.may_drain(second)


def test_out_of_order_on_a_batch_that_is_not_next_is_retried_without_a_bump() -> None:
    txn = manager()
    first, second = batch(), batch()
    drain(txn, first)
    drain(txn, second)
    assert txn.can_retry(second, Errors.OUT_OF_ORDER_SEQUENCE_NUMBER)
    assert txn.producer_epoch == 0


def test_out_of_order_on_the_next_expected_batch_bumps_the_epoch() -> None:
    txn = manager()
    first = batch()
    drain(txn, first)
    assert txn.can_retry(first, Errors.OUT_OF_ORDER_SEQUENCE_NUMBER)
    assert txn.producer_epoch == 1, "KIP-360: the broker lost our state"


def test_after_an_epoch_bump_queued_batches_restart_at_sequence_zero_once_idle() -> None:
    txn = manager()
    first, second = batch(records=2), batch(records=3)
    drain(txn, first)
    drain(txn, second)
    txn.bump_epoch("test")
    first.in_request = False
    assert not txn.may_drain(first), "second is still in a request under the old epoch"
    second.in_request = False
    assert txn.may_drain(first)
    assert (first.producer_epoch, first.base_sequence) == (1, 0)
    assert (second.producer_epoch, second.base_sequence) == (1, 2)


def test_no_new_batch_is_drained_while_a_sequence_is_unresolved() -> None:
    txn = manager()
    expired, later, new = batch(), batch(), batch()
    drain(txn, expired)
    drain(txn, later)
    txn.on_expired_in_flight(expired)
    assert txn.partitions[("t", 0)].unresolved
    assert not txn.may_drain(new), "Java's shouldStopDrainBatchesForPartition"
    assert not txn.maybe_resolve(("t", 0)), "later is still in flight"
    txn.on_success(later)  # A later sequence was written, so the expired one was too.
    assert txn.may_drain(new)
    assert txn.producer_epoch == 0


def test_an_unresolved_sequence_with_nothing_in_flight_bumps_the_epoch_once() -> None:
    txn = manager()
    expired, new = batch(), batch()
    drain(txn, expired)
    txn.on_expired_in_flight(expired)
    assert txn.maybe_resolve(("t", 0))
    assert txn.producer_epoch == 1
    assert not txn.maybe_resolve(("t", 0)), "resolved by that bump"
    assert txn.producer_epoch == 1
    drain(txn, new)
    assert (new.producer_epoch, new.base_sequence) == (1, 0)


def test_a_batch_that_fails_for_good_with_retries_left_bumps_the_epoch() -> None:
    txn = manager()
    a = batch()
    drain(txn, a)
    txn.on_failure(a, bump=True)
    assert txn.producer_epoch == 1
    b = batch()
    drain(txn, b)
    assert (b.producer_epoch, b.base_sequence) == (1, 0)


# --- an idempotent producer against a cluster ----------------------------------------------------


def setup(**configs: Any) -> tuple[sim.Cluster, sim.KafkaProducer]:
    c = sim.Cluster(brokers=3, seed=1)
    c.create_topic("t", partitions=2, replication_factor=3, min_insync_replicas=2)
    p = sim.KafkaProducer(cluster=c, acks="all", **configs)
    p.partitions_for("t")
    return c, p


def events(c: sim.Cluster, kind: str) -> list[TraceEvent]:
    return [e for e in c.world.events if e.kind == kind]


def sent_batches(c: sim.Cluster) -> list[tuple[str, int, int, int]]:
    return [b for e in events(c, "producer.send") for b in e.field("batches")]


def test_the_producer_id_comes_from_init_producer_id_before_anything_is_sent() -> None:
    c, p = setup()
    p.send("t", value=b"x", partition=0).get(timeout=5)
    kinds = [e.kind for e in c.world.events]
    assert kinds.index("broker.init_producer_id") < kinds.index("producer.pid")
    assert kinds.index("producer.pid") < kinds.index("producer.send")
    (granted,) = events(c, "broker.init_producer_id")
    assert p.txn_manager.producer_id == granted.field("producer_id")
    leader = c.brokers[c.controller.partitions[("t", 0)].leader]
    (written,) = leader.replicas[("t", 0)].log.read_from(0, 10)
    producer_id = granted.field("producer_id")
    assert (written.batch.producer_id, written.batch.producer_epoch) == (producer_id, 0)
    assert written.batch.base_sequence == 0


def test_sequences_start_at_zero_per_partition_and_advance_by_records_on_the_wire() -> None:
    c, p = setup(linger_ms=10)
    for partition, count in ((0, 3), (1, 2), (0, 4), (1, 1)):
        futures = [p.send("t", value=b"x", partition=partition) for _ in range(count)]
        futures[-1].get(timeout=5)
    assert sent_batches(c) == [("t", 0, 0, 3), ("t", 1, 0, 2), ("t", 0, 3, 4), ("t", 1, 2, 1)]


def test_a_retried_batch_keeps_its_sequence_and_is_written_once() -> None:
    c, p = setup()
    p.send("t", value=b"a", partition=0).get(timeout=5)
    c.error("leader:t/0", message="ProduceRequest", error="NOT_ENOUGH_REPLICAS", count=2)
    assert p.send("t", value=b"b", partition=0).get(timeout=5).offset == 1
    assert sent_batches(c) == [("t", 0, 0, 1)] + [("t", 0, 1, 1)] * 3
    assert [e.field("sequence") for e in events(c, "producer.retry")] == [1, 1]
    assert len(events(c, "broker.append")) == 2


def test_a_retry_after_a_lost_response_is_a_duplicate_answered_with_the_original_offsets() -> None:
    c, p = setup(batch_size=0, request_timeout_ms=2000, delivery_timeout_ms=10_000)
    p.send("t", value=b"warm-up", partition=0).get(timeout=5)
    c.drop(**{"from": "leader:t/0"}, to="producer-0", message="ProduceResponse", count=1)
    futures = [p.send("t", value=b"%d" % i, partition=0) for i in range(3)]
    p.flush()
    appended = [e.field("base_offset") for e in events(c, "broker.append")]
    duplicates = [e.field("base_offset") for e in events(c, "broker.duplicate")]
    assert appended == [0, 1, 2, 3]
    assert duplicates == [1, 2, 3], "every retry was recognised by its sequence"
    assert [f.get().offset for f in futures] == [1, 2, 3]
    counts = c.check().counts
    assert counts["duplicated"] == 0
    assert counts["acked"] == 4


def five_in_flight_with_one_rejected(**configs: Any) -> tuple[sim.Cluster, list]:
    """Five one-record requests in flight; the broker rejects the first (nothing appended)."""
    c, p = setup(batch_size=0, max_in_flight_requests_per_connection=5, **configs)
    p.send("t", value=b"warm-up", partition=0).get(timeout=5)  # The broker knows our id now.
    c.error("leader:t/0", message="ProduceRequest", error="NOT_ENOUGH_REPLICAS", count=1)
    futures = [p.send("t", value=b"%d" % i, partition=0) for i in range(5)]
    p.flush()
    first_round = [e.time_ms for e in events(c, "producer.send")][1:6]
    assert len(set(first_round)) == 1, "all five were sent before any answer came back"
    return c, futures


def test_with_idempotence_batches_behind_a_rejected_one_are_retried_in_order() -> None:
    c, futures = five_in_flight_with_one_rejected()
    rejected = [(e.field("error"), e.field("sequence")) for e in events(c, "broker.reject")]
    assert rejected == [("OUT_OF_ORDER_SEQUENCE_NUMBER", s) for s in (2, 3, 4, 5)]
    assert [f.get().offset for f in futures] == [1, 2, 3, 4, 5], "offsets follow send order"
    assert [b[2] for b in sent_batches(c)][-5:] == [1, 2, 3, 4, 5], "retries go out in order"
    counts = c.check().counts
    assert counts["reordered"] == 0
    assert counts["duplicated"] == 0


def test_without_idempotence_the_same_schedule_reorders() -> None:
    c, futures = five_in_flight_with_one_rejected(enable_idempotence=False)
    assert events(c, "broker.reject") == []
    assert [f.get().offset for f in futures] == [5, 1, 2, 3, 4]
    assert c.check().counts["reordered"] >= 1


def test_records_sent_while_a_sequence_is_unresolved_wait_for_the_epoch_bump() -> None:
    c, p = setup(request_timeout_ms=1000, delivery_timeout_ms=3000)
    p.send("t", value=b"warm-up", partition=0).get(timeout=5)
    # Every attempt is rejected until the first batch (seq 1) has expired: its fate is
    # unknown to the client. The second batch (seq 2) then gets OUT_OF_ORDER until it
    # expires too; records sent meanwhile must wait for the epoch bump, not join it.
    c.error(
        "leader:t/0",
        message="ProduceRequest",
        error="NOT_ENOUGH_REPLICAS",
        count=10**6,
        duration_ms=3050,
    )
    doomed = [p.send("t", value=b"a", partition=0)]
    c.run_for(1000)
    doomed.append(p.send("t", value=b"b", partition=0))
    c.run_for(2200)
    later = []
    for i in range(10):
        later.append(p.send("t", value=b"%d" % i, partition=0))
        c.run_for(200)
    p.flush()
    assert all(f.failed() for f in doomed)
    assert all(f.succeeded() for f in later), [f.exception for f in later]
    assert p.txn_manager.producer_epoch == 1
    counts = c.check().counts
    assert counts["reordered"] == 0
    assert counts["duplicated"] == 0
