"""RecordAccumulator: batching, readiness, buffer memory and re-enqueueing.

The unit tests drive a bare `RecordAccumulator` (record ids stand for
records); the last few run a producer against a simulated cluster to check
that readiness decides when the Sender actually sends.
"""

from collections import deque

import pytest

import sim
from sim.client.accumulator import RECORD_BATCH_OVERHEAD, RecordAccumulator, record_size

RECORD = record_size(0, 90)  # 100 bytes with framing.


def accumulator(
    batch_size: int = 1000, linger_ms: float = 0, buffer_memory: int = 100_000
) -> RecordAccumulator:
    return RecordAccumulator(batch_size, linger_ms, buffer_memory)


def append(acc: RecordAccumulator, record_id: int, now_ms: float = 0.0, partition: int = 0):
    """What the producer does: the open batch if it fits, else a new batch."""
    batch = acc.try_append("t", partition, record_id, RECORD, None, now_ms)
    if batch is None:
        batch = acc.append_new("t", partition, record_id, RECORD, None, now_ms)
    return batch


def head_ready_at(acc: RecordAccumulator, partition: int = 0) -> float:
    dq = acc.deques[("t", partition)]
    return acc.head_ready_at(dq[0], len(dq))


# --- batching -----------------------------------------------------------------------


def test_records_of_one_partition_share_the_open_batch_until_it_is_full() -> None:
    acc = accumulator(batch_size=RECORD_BATCH_OVERHEAD + 3 * RECORD)
    batches = [append(acc, i) for i in range(4)]
    assert batches[0] is batches[1] is batches[2]
    assert batches[3] is not batches[0]
    assert batches[0].record_ids == [0, 1, 2]
    assert batches[0].closed, "a full batch is sealed"
    assert batches[3].record_ids == [3]
    assert list(acc.deques[("t", 0)]) == [batches[0], batches[3]]


def test_each_partition_has_its_own_deque_of_batches() -> None:
    acc = accumulator()
    a = append(acc, 0, partition=0)
    b = append(acc, 1, partition=1)
    assert a is not b
    assert [key for key, _ in acc.partitions()] == [("t", 0), ("t", 1)]


def test_batch_capacity_is_batch_size_or_the_record_when_it_is_larger() -> None:
    acc = accumulator(batch_size=500)
    small = acc.append_new("t", 0, 0, RECORD, None, 0.0)
    assert small.capacity == 500
    big_size = 2000
    big = acc.append_new("t", 1, 1, big_size, None, 0.0)
    assert big.capacity == big_size + RECORD_BATCH_OVERHEAD
    assert big.closed, "a record larger than batch_size fills its own batch"
    assert acc.try_append("t", 1, 2, RECORD, None, 0.0) is None


def test_batch_size_zero_puts_every_record_in_its_own_batch() -> None:
    acc = accumulator(batch_size=0)
    batches = [append(acc, i) for i in range(3)]
    assert len({id(b) for b in batches}) == 3
    assert [b.record_ids for b in batches] == [[0], [1], [2]]
    assert all(b.closed for b in batches)


def test_a_batch_that_was_sent_takes_no_more_records() -> None:
    acc = accumulator()
    batch = append(acc, 0)
    batch.attempts = 1  # Drained once, now back for a retry.
    assert acc.try_append("t", 0, 1, RECORD, None, 0.0) is None
    assert batch.record_ids == [0]


# --- readiness ------------------------------------------------------------------------


def test_a_batch_that_is_not_full_is_ready_after_linger_ms() -> None:
    acc = accumulator(linger_ms=25)
    append(acc, 0, now_ms=100.0)
    assert head_ready_at(acc) == 125.0


def test_a_full_batch_is_ready_at_once() -> None:
    acc = accumulator(batch_size=RECORD_BATCH_OVERHEAD + 2 * RECORD, linger_ms=25)
    append(acc, 0, now_ms=100.0)
    append(acc, 1, now_ms=110.0)
    assert acc.deques[("t", 0)][0].closed
    assert head_ready_at(acc) == 100.0


def test_a_head_batch_is_ready_at_once_when_more_than_one_batch_is_queued() -> None:
    acc = accumulator(linger_ms=25)
    first = append(acc, 0, now_ms=100.0)
    first.closed = False  # Not full; only the second batch behind it makes it ready.
    acc.append_new("t", 0, 1, RECORD, None, 105.0)
    assert len(acc.deques[("t", 0)]) == 2
    assert head_ready_at(acc) == 100.0


@pytest.mark.parametrize("what", ["flushing", "closing"])
def test_flush_and_close_make_a_lingering_batch_ready_at_once(what: str) -> None:
    acc = accumulator(linger_ms=1000)
    append(acc, 0, now_ms=100.0)
    assert head_ready_at(acc) == 1100.0
    setattr(acc, what, 1 if what == "flushing" else True)
    assert head_ready_at(acc) == 100.0


def test_a_send_waiting_for_memory_makes_lingering_batches_ready() -> None:
    acc = accumulator(batch_size=1000, linger_ms=1000, buffer_memory=1000)
    append(acc, 0, now_ms=100.0)
    assert head_ready_at(acc) == 1100.0
    assert not acc.has_room(RECORD)  # A send now waits for memory (Java's BufferPool waiter)...
    assert head_ready_at(acc) == 100.0  # ...so the lingering batch goes at once.


def test_a_retry_is_ready_after_its_backoff_whatever_linger_and_flush_say() -> None:
    acc = accumulator(linger_ms=0)
    batch = append(acc, 0, now_ms=0.0)
    acc.deques[("t", 0)].popleft()
    batch.attempts = 1
    batch.backoff_ms = 80.0
    acc.reenqueue(batch, 500.0, in_sequence_order=False)
    acc.flushing = 1
    assert head_ready_at(acc) == 580.0


# --- buffer memory --------------------------------------------------------------------


def test_used_bytes_grow_with_each_new_batch_not_with_each_record() -> None:
    acc = accumulator(batch_size=1000)
    append(acc, 0)
    assert acc.used_bytes == 1000
    append(acc, 1)  # Same batch: no new memory.
    assert acc.used_bytes == 1000
    append(acc, 2, partition=1)
    assert acc.used_bytes == 2000


def test_used_bytes_shrink_when_a_batch_completes_and_only_once() -> None:
    acc = accumulator(batch_size=1000)
    a = append(acc, 0)
    append(acc, 1, partition=1)
    acc.release(a)
    assert acc.used_bytes == 1000
    acc.release(a)
    assert acc.used_bytes == 1000
    assert acc.incomplete_batches() == [acc.deques[("t", 1)][0]]


def test_has_room_is_false_once_a_new_batch_would_exceed_buffer_memory() -> None:
    acc = accumulator(batch_size=1000, buffer_memory=2500)
    assert acc.has_room(RECORD)
    append(acc, 0, partition=0)
    append(acc, 1, partition=1)
    assert not acc.has_room(RECORD)  # 2000 used + 1000 > 2500.
    acc.release(acc.deques[("t", 0)][0])
    assert acc.has_room(RECORD)


def test_a_record_larger_than_batch_size_needs_room_for_itself() -> None:
    acc = accumulator(batch_size=100, buffer_memory=1000)
    assert acc.has_room(900 - RECORD_BATCH_OVERHEAD)
    assert not acc.has_room(1000)


# --- re-enqueueing ----------------------------------------------------------------------


def test_reenqueue_puts_a_retry_at_the_front_of_its_deque() -> None:
    acc = accumulator(batch_size=0)
    first, second, third = (append(acc, i) for i in range(3))
    acc.deques[("t", 0)].popleft()
    first.attempts = 1
    acc.reenqueue(first, 10.0, in_sequence_order=False)
    assert list(acc.deques[("t", 0)]) == [first, second, third]
    assert first.retry and first.last_attempt_ms == 10.0 and not first.in_request


def test_reenqueue_with_sequences_keeps_retries_in_sequence_order() -> None:
    acc = accumulator(batch_size=0)
    batches = [append(acc, i) for i in range(4)]
    dq: deque = acc.deques[("t", 0)]
    for sequence, batch in enumerate(batches[:3]):
        batch.base_sequence = sequence
        dq.popleft()
    # Batches 0..2 were sent; 3 is new (no sequence). Retries come back out of order.
    acc.reenqueue(batches[2], 10.0, in_sequence_order=True)
    acc.reenqueue(batches[0], 11.0, in_sequence_order=True)
    acc.reenqueue(batches[1], 12.0, in_sequence_order=True)
    assert [b.base_sequence for b in dq] == [0, 1, 2, -1]
    assert list(dq) == batches


def test_remove_and_oldest_follow_creation_order() -> None:
    acc = accumulator(batch_size=0)
    a = append(acc, 0, now_ms=1.0)
    b = append(acc, 1, now_ms=2.0, partition=1)
    assert acc.oldest() is a
    acc.remove(a)
    assert list(acc.deques[("t", 0)]) == []
    assert acc.incomplete_batches() == [a, b], "removal from a deque does not complete it"


# --- readiness decides when the Sender sends ------------------------------------------------


def cluster_and_producer(**configs):
    c = sim.Cluster(brokers=1, seed=3)
    c.create_topic("t", partitions=1, replication_factor=1)
    p = sim.KafkaProducer(cluster=c, acks=1, **configs)
    p.partitions_for("t")  # Metadata first, so send() itself does not block.
    p.sender.connect(0)  # And a set-up connection, so the first send is not delayed by it.
    c.run_until(lambda: 0 in p.sender.connected, 1000)
    return c, p


def send_times(c: sim.Cluster) -> list[float]:
    return [e.time_ms for e in c.world.events if e.kind == "producer.send"]


def test_a_lingering_record_is_sent_when_linger_ms_has_passed() -> None:
    c, p = cluster_and_producer(linger_ms=200)
    start = c.world.now_ms
    future = p.send("t", value=b"x")
    c.run_for(199)
    assert send_times(c) == []
    c.run_for(2)
    assert send_times(c) == [start + 200]
    assert future.get(timeout=1).offset == 0


def test_a_full_batch_is_sent_before_linger_ms() -> None:
    c, p = cluster_and_producer(linger_ms=10_000, batch_size=RECORD_BATCH_OVERHEAD + 2 * RECORD)
    start = c.world.now_ms
    p.send("t", value=b"x" * 90)
    p.send("t", value=b"y" * 90)
    c.run_for(1)
    assert send_times(c) == [start]


def test_flush_sends_a_lingering_batch_at_once() -> None:
    c, p = cluster_and_producer(linger_ms=10_000)
    start = c.world.now_ms
    future = p.send("t", value=b"x")
    p.flush()
    assert future.is_done
    assert send_times(c) == [start]


def test_close_sends_a_lingering_batch_at_once() -> None:
    c, p = cluster_and_producer(linger_ms=10_000)
    start = c.world.now_ms
    future = p.send("t", value=b"x")
    p.close()
    assert future.get(timeout=0).offset == 0
    assert send_times(c) == [start]


def test_buffer_memory_is_given_back_when_batches_complete() -> None:
    c, p = cluster_and_producer(batch_size=1000)
    p.send("t", value=b"x")
    assert p.accumulator.used_bytes == 1000
    p.flush()
    assert p.accumulator.used_bytes == 0
    assert not p.accumulator.has_incomplete()
