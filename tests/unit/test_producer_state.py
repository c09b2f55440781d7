"""ProducerStateManager: Kafka's idempotence checks on one partition (SEMANTICS §6)."""

from sim.cluster.producer_state import INT_MAX, NUM_BATCHES_TO_RETAIN, ProducerStateManager
from sim.protocol import NO_PRODUCER_ID, NO_SEQUENCE, Errors, LogBatch, RecordBatch

PID = 42


def _batch(
    base_sequence: int, count: int = 1, epoch: int = 0, producer_id: int = PID
) -> RecordBatch:
    return RecordBatch(
        producer_id=producer_id,
        producer_epoch=epoch,
        base_sequence=base_sequence,
        record_ids=tuple(range(count)),
        size_bytes=count,
        create_time_ms=0.0,
    )


class _Partition:
    """A leader's append path in miniature: duplicate check, sequence check, append."""

    def __init__(self) -> None:
        self.state = ProducerStateManager()
        self.leo = 0

    def produce(self, batch: RecordBatch) -> tuple[Errors, int]:
        duplicate = self.state.find_duplicate(batch)
        if duplicate is not None:
            return Errors.NONE, duplicate
        error = self.state.check(batch)
        if error != Errors.NONE:
            return error, -1
        base_offset = self.leo
        self.state.update(LogBatch(base_offset, 0, batch))
        self.leo += batch.record_count
        return Errors.NONE, base_offset


def test_the_cache_keeps_exactly_the_last_five_batches() -> None:
    assert NUM_BATCHES_TO_RETAIN == 5
    partition = _Partition()
    for i in range(7):
        partition.produce(_batch(2 * i, count=2))
    cached = list(partition.state.producers[PID].batches)
    assert cached == [(2 * i, 2 * i + 1, 2 * i) for i in range(2, 7)]


def test_a_retry_of_any_of_the_last_five_batches_answers_its_original_offset() -> None:
    partition = _Partition()
    offsets = [partition.produce(_batch(3 * i, count=3))[1] for i in range(5)]
    assert offsets == [0, 3, 6, 9, 12]
    for i in range(5):
        assert partition.produce(_batch(3 * i, count=3)) == (Errors.NONE, offsets[i])
    assert partition.leo == 15, "duplicates append nothing"


def test_a_retry_older_than_the_last_five_batches_is_out_of_order() -> None:
    partition = _Partition()
    for i in range(6):
        partition.produce(_batch(i))
    assert partition.produce(_batch(1)) == (Errors.NONE, 1), "the 5th-oldest is still cached"
    assert partition.state.find_duplicate(_batch(0)) is None
    assert partition.produce(_batch(0)) == (Errors.OUT_OF_ORDER_SEQUENCE_NUMBER, -1)
    assert partition.leo == 6


def test_a_duplicate_must_match_both_first_and_last_sequence() -> None:
    partition = _Partition()
    partition.produce(_batch(0, count=3))
    assert partition.state.find_duplicate(_batch(0, count=2)) is None
    assert partition.produce(_batch(0, count=2)) == (Errors.OUT_OF_ORDER_SEQUENCE_NUMBER, -1)


def test_a_duplicate_of_another_epoch_is_not_a_duplicate() -> None:
    partition = _Partition()
    partition.produce(_batch(0, epoch=0))
    assert partition.state.find_duplicate(_batch(0, epoch=1)) is None
    assert partition.produce(_batch(0, epoch=1)) == (Errors.NONE, 1), "a new epoch at 0"


def test_the_next_sequence_is_accepted_and_a_gap_is_out_of_order() -> None:
    partition = _Partition()
    partition.produce(_batch(0, count=4))
    assert partition.state.check(_batch(4)) == Errors.NONE
    assert partition.state.check(_batch(5)) == Errors.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert partition.state.check(_batch(3)) == Errors.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert partition.produce(_batch(6)) == (Errors.OUT_OF_ORDER_SEQUENCE_NUMBER, -1)
    assert partition.leo == 4


def test_an_older_epoch_is_invalid_producer_epoch_whatever_its_sequence() -> None:
    partition = _Partition()
    partition.produce(_batch(0, epoch=3))
    assert partition.state.check(_batch(1, epoch=2)) == Errors.INVALID_PRODUCER_EPOCH
    assert partition.state.check(_batch(0, epoch=0)) == Errors.INVALID_PRODUCER_EPOCH


def test_a_new_epoch_must_start_at_sequence_zero() -> None:
    partition = _Partition()
    partition.produce(_batch(0, count=5, epoch=0))
    assert partition.state.check(_batch(5, epoch=1)) == Errors.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert partition.produce(_batch(0, count=2, epoch=1)) == (Errors.NONE, 5)
    entry = partition.state.producers[PID]
    assert (entry.epoch, entry.last_sequence) == (1, 1)
    assert list(entry.batches) == [(0, 1, 5)], "a new epoch clears the batch cache"


def test_an_unknown_producer_is_accepted_at_any_sequence() -> None:
    partition = _Partition()
    assert partition.produce(_batch(1234, count=2, epoch=9)) == (Errors.NONE, 0)
    assert partition.state.check(_batch(1236, epoch=9)) == Errors.NONE
    assert partition.state.check(_batch(0, epoch=9)) == Errors.OUT_OF_ORDER_SEQUENCE_NUMBER


def test_producers_are_checked_independently() -> None:
    partition = _Partition()
    partition.produce(_batch(0, count=3, producer_id=1))
    partition.produce(_batch(0, count=1, producer_id=2))
    assert partition.state.check(_batch(3, producer_id=1)) == Errors.NONE
    assert partition.state.check(_batch(1, producer_id=2)) == Errors.NONE
    assert partition.state.check(_batch(3, producer_id=2)) == Errors.OUT_OF_ORDER_SEQUENCE_NUMBER


def test_a_non_idempotent_producer_is_never_checked_nor_deduplicated() -> None:
    partition = _Partition()
    plain = _batch(NO_SEQUENCE, count=2, producer_id=NO_PRODUCER_ID)
    assert partition.produce(plain) == (Errors.NONE, 0)
    assert partition.produce(plain) == (Errors.NONE, 2), "the same batch again is appended again"
    assert partition.state.producers == {}


def test_the_sequence_after_int_max_is_zero() -> None:
    partition = _Partition()
    assert partition.produce(_batch(INT_MAX - 1, count=2)) == (Errors.NONE, 0)
    assert partition.state.producers[PID].last_sequence == INT_MAX
    assert partition.state.check(_batch(INT_MAX + 1)) == Errors.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert partition.produce(_batch(0)) == (Errors.NONE, 2)
    assert partition.produce(_batch(1)) == (Errors.NONE, 3)


def test_replicated_appends_build_the_same_cache_a_new_leader_deduplicates_with() -> None:
    leader = _Partition()
    for i in range(3):
        leader.produce(_batch(2 * i, count=2))
    follower = ProducerStateManager()
    follower.rebuild([LogBatch(2 * i, 0, _batch(2 * i, count=2)) for i in range(3)])
    assert follower.find_duplicate(_batch(2, count=2)) == 2
    assert follower.check(_batch(6)) == Errors.NONE
    assert follower.producers[PID].batches == leader.state.producers[PID].batches


def test_control_batches_do_not_touch_sequences() -> None:
    state = ProducerStateManager()
    state.update(LogBatch(0, 0, _batch(0, count=2)))
    marker = RecordBatch(
        producer_id=PID,
        producer_epoch=0,
        base_sequence=NO_SEQUENCE,
        record_ids=(),
        size_bytes=0,
        create_time_ms=0.0,
        is_transactional=True,
        control="ABORT",
    )
    state.update(LogBatch(2, 0, marker))
    assert state.producers[PID].last_sequence == 1
    assert state.check(_batch(2)) == Errors.NONE
