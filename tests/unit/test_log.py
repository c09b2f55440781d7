"""PartitionLog: offsets, reads at batch boundaries, the leader-epoch cache, truncation."""

import pytest

from sim.cluster.log import UNDEFINED_EPOCH, PartitionLog
from sim.protocol import NO_PRODUCER_ID, LogBatch, RecordBatch

PID = 7


def _batch(
    first_id: int, count: int, producer_id: int = PID, base_sequence: int = 0
) -> RecordBatch:
    return RecordBatch(
        producer_id=producer_id,
        producer_epoch=0,
        base_sequence=base_sequence if producer_id != NO_PRODUCER_ID else -1,
        record_ids=tuple(range(first_id, first_id + count)),
        size_bytes=10 * count,
        create_time_ms=0.0,
    )


def _marker() -> RecordBatch:
    return RecordBatch(
        producer_id=PID,
        producer_epoch=0,
        base_sequence=-1,
        record_ids=(),
        size_bytes=0,
        create_time_ms=0.0,
        is_transactional=True,
        control="COMMIT",
    )


def _log_with(counts_by_epoch: list[tuple[int, int]]) -> PartitionLog:
    """A log with one batch of `count` records per (epoch, count), sequences continuing."""
    log = PartitionLog("t", 0)
    next_id = 0
    for epoch, count in counts_by_epoch:
        log.append_as_leader(_batch(next_id, count, base_sequence=next_id), epoch)
        next_id += count
    return log


# --- appends ---------------------------------------------------------------------


def test_leader_appends_get_consecutive_base_offsets_and_the_leo_counts_records() -> None:
    log = PartitionLog("t", 0)
    first = log.append_as_leader(_batch(0, 3), leader_epoch=0)
    second = log.append_as_leader(_batch(3, 2, base_sequence=3), leader_epoch=0)
    assert (first.base_offset, first.next_offset) == (0, 3)
    assert (second.base_offset, second.next_offset) == (3, 5)
    assert log.leo == 5
    assert log.hw == 0, "appending never moves the HW; the leader's replica does"
    assert [b.base_offset for b in log.batches] == [0, 3]


def test_a_control_batch_occupies_exactly_one_offset_and_holds_no_record() -> None:
    log = PartitionLog("t", 0)
    log.append_as_leader(_batch(0, 2), leader_epoch=0)
    marker = log.append_as_leader(_marker(), leader_epoch=0)
    log.append_as_leader(_batch(2, 1, base_sequence=2), leader_epoch=0)
    assert (marker.base_offset, marker.next_offset) == (2, 3)
    assert log.leo == 4
    assert log.records_up_to(log.leo) == ([0, 1, 3], [0, 1, 2])


def test_records_up_to_stops_inside_a_batch_at_the_end_offset() -> None:
    log = _log_with([(0, 3), (0, 3)])
    assert log.records_up_to(4) == ([0, 1, 2, 3], [0, 1, 2, 3])
    assert log.records_up_to(0) == ([], [])


def test_replicated_append_keeps_the_leaders_offset_and_epoch() -> None:
    leader = _log_with([(0, 2), (3, 4)])
    follower = PartitionLog("t", 0)
    for log_batch in leader.batches:
        follower.append_replicated(log_batch)
    assert follower.batches == leader.batches
    assert follower.leo == 6
    assert follower.epochs == [(0, 0), (3, 2)]
    assert follower.last_epoch == 3


def test_replicated_append_with_a_gap_is_a_simulator_bug() -> None:
    follower = PartitionLog("t", 0)
    with pytest.raises(AssertionError, match="gap in replication"):
        follower.append_replicated(LogBatch(2, 0, _batch(0, 1)))


def test_appends_feed_the_producer_state_with_their_offsets() -> None:
    log = _log_with([(0, 2), (0, 3)])
    entry = log.producer_state.producers[PID]
    assert entry.last_sequence == 4
    assert list(entry.batches) == [(0, 1, 0), (2, 4, 2)]


# --- reads -------------------------------------------------------------------------


def test_read_from_returns_whole_batches_starting_at_a_boundary() -> None:
    log = _log_with([(0, 2), (0, 3), (1, 1), (1, 4)])  # base offsets 0, 2, 5, 6; LEO 10
    assert [b.base_offset for b in log.read_from(0, 10)] == [0, 2, 5, 6]
    assert [b.base_offset for b in log.read_from(2, 2)] == [2, 5]
    assert [b.base_offset for b in log.read_from(6, 10)] == [6]


def test_read_from_the_leo_returns_nothing() -> None:
    log = _log_with([(0, 2), (0, 3)])
    assert log.read_from(log.leo, 5) == ()


def test_read_from_inside_a_batch_is_a_simulator_bug() -> None:
    log = _log_with([(0, 2), (0, 3)])
    with pytest.raises(AssertionError, match="not a batch boundary"):
        log.read_from(3, 5)


def test_last_epoch_is_the_epoch_of_the_last_batch_or_undefined_when_empty() -> None:
    log = PartitionLog("t", 0)
    assert log.last_epoch == UNDEFINED_EPOCH
    log.assign_epoch(4, 0)  # A leader's epoch entry alone is not a batch.
    assert log.last_epoch == UNDEFINED_EPOCH
    log.append_as_leader(_batch(0, 1), leader_epoch=4)
    assert log.last_epoch == 4


# --- the leader-epoch cache ---------------------------------------------------------


def test_first_append_of_each_newer_epoch_records_its_start_offset() -> None:
    log = _log_with([(0, 2), (0, 1), (2, 3), (5, 1)])
    assert log.epochs == [(0, 0), (2, 3), (5, 6)]


def test_assign_epoch_ignores_an_epoch_not_newer_than_the_latest() -> None:
    log = _log_with([(3, 2)])
    log.assign_epoch(3, 2)
    log.assign_epoch(1, 2)
    assert log.epochs == [(3, 0)]


def test_assign_epoch_replaces_a_newer_leaders_entry_that_wrote_nothing() -> None:
    log = _log_with([(0, 2)])
    log.assign_epoch(1, 2)  # Leader in epoch 1 at LEO 2, then lost leadership unwritten.
    log.assign_epoch(2, 2)
    assert log.epochs == [(0, 0), (2, 2)]


def test_end_offset_for_epoch_answers_the_largest_epoch_at_or_below_and_the_next_start() -> None:
    log = _log_with([(0, 5), (2, 4), (4, 3)])  # epochs (0,0) (2,5) (4,9); LEO 12
    assert log.epochs == [(0, 0), (2, 5), (4, 9)]
    assert log.end_offset_for_epoch(0) == (0, 5)
    assert log.end_offset_for_epoch(1) == (0, 5), "epoch 1 never wrote: answer epoch 0's end"
    assert log.end_offset_for_epoch(2) == (2, 9)
    assert log.end_offset_for_epoch(3) == (2, 9)


def test_end_offset_of_the_latest_epoch_is_the_leo() -> None:
    log = _log_with([(0, 5), (2, 4)])
    assert log.end_offset_for_epoch(2) == (2, 9)
    log.append_as_leader(_batch(9, 2, base_sequence=9), leader_epoch=2)
    assert log.end_offset_for_epoch(2) == (2, 11)


def test_end_offset_of_a_leaders_fresh_epoch_entry_is_the_leo() -> None:
    log = _log_with([(0, 5)])
    log.assign_epoch(3, log.leo)  # makeLeader: new epoch entry at the LEO, nothing written yet
    assert log.end_offset_for_epoch(0) == (0, 5)
    assert log.end_offset_for_epoch(3) == (3, 5)


def test_end_offset_below_the_first_epoch_is_the_requested_epoch_and_the_first_start() -> None:
    # LeaderEpochFileCache.endOffsetFor: floorEntry == null -> (requestedEpoch, first start).
    log = _log_with([(3, 4), (5, 2)])
    assert log.end_offset_for_epoch(1) == (1, 0)
    assert log.end_offset_for_epoch(2) == (2, 0)


def test_end_offset_is_undefined_for_an_empty_cache_an_undefined_or_a_future_epoch() -> None:
    undefined = (UNDEFINED_EPOCH, UNDEFINED_EPOCH)
    assert PartitionLog("t", 0).end_offset_for_epoch(0) == undefined
    log = _log_with([(0, 2), (2, 2)])
    assert log.end_offset_for_epoch(UNDEFINED_EPOCH) == undefined
    assert log.end_offset_for_epoch(3) == undefined


# --- truncation and durability -----------------------------------------------------


def test_truncate_to_removes_the_suffix_and_returns_how_many_offsets_went() -> None:
    log = _log_with([(0, 2), (0, 3), (1, 4)])  # base offsets 0, 2, 5; LEO 9
    assert log.truncate_to(5) == 4
    assert log.leo == 5
    assert [b.base_offset for b in log.batches] == [0, 2]
    assert log.read_from(5, 10) == ()
    assert log.records_up_to(100) == ([0, 1, 2, 3, 4], [0, 1, 2, 3, 4])


def test_truncate_to_drops_epoch_entries_starting_at_or_after_the_offset() -> None:
    log = _log_with([(0, 2), (1, 3), (2, 4)])  # epochs (0,0) (1,2) (2,5)
    log.truncate_to(5)
    assert log.epochs == [(0, 0), (1, 2)]
    log.truncate_to(2)
    assert log.epochs == [(0, 0)]
    assert log.end_offset_for_epoch(2) == (UNDEFINED_EPOCH, UNDEFINED_EPOCH)
    assert log.end_offset_for_epoch(0) == (0, 2)


def test_truncate_to_lowers_the_hw_and_the_flushed_offset_but_never_raises_them() -> None:
    log = _log_with([(0, 2), (0, 3), (0, 4)])  # LEO 9
    log.hw = 7
    log.flushed_offset = 9
    log.truncate_to(5)
    assert (log.hw, log.flushed_offset) == (5, 5)
    log.hw = 1
    log.flushed_offset = 2
    log.truncate_to(2)
    assert (log.hw, log.flushed_offset) == (1, 2)


def test_truncate_to_rebuilds_the_producer_state_from_what_is_left() -> None:
    log = PartitionLog("t", 0)
    log.append_as_leader(_batch(0, 2, producer_id=1, base_sequence=0), leader_epoch=0)
    log.append_as_leader(_batch(2, 2, producer_id=1, base_sequence=2), leader_epoch=0)
    log.append_as_leader(_batch(4, 3, producer_id=2, base_sequence=0), leader_epoch=0)
    log.truncate_to(2)
    assert sorted(log.producer_state.producers) == [1], "producer 2 wrote only what went"
    entry = log.producer_state.producers[1]
    assert entry.last_sequence == 1
    assert list(entry.batches) == [(0, 1, 0)]
    retry = _batch(2, 2, producer_id=1, base_sequence=2)
    assert log.producer_state.find_duplicate(retry) is None, "the truncated batch is no duplicate"


def test_truncate_at_or_past_the_leo_changes_nothing() -> None:
    log = _log_with([(0, 2), (1, 3)])
    log.hw = 5
    before = (list(log.batches), list(log.epochs), log.leo, log.hw)
    assert log.truncate_to(5) == 0
    assert log.truncate_to(9) == 0
    assert (list(log.batches), list(log.epochs), log.leo, log.hw) == before


def test_truncate_inside_a_batch_is_a_simulator_bug() -> None:
    log = _log_with([(0, 3)])
    with pytest.raises(AssertionError, match="not a batch boundary"):
        log.truncate_to(1)


def test_lose_unflushed_cuts_the_log_back_to_exactly_the_last_flush() -> None:
    log = _log_with([(0, 2), (0, 3)])
    log.flush()
    assert log.flushed_offset == 5
    log.append_as_leader(_batch(5, 1, base_sequence=5), leader_epoch=1)
    log.append_as_leader(_batch(6, 2, base_sequence=6), leader_epoch=1)
    log.hw = 8
    assert log.lose_unflushed() == 3
    assert log.leo == 5
    assert log.hw == 5
    assert log.epochs == [(0, 0)], "the unflushed epoch entry goes with its batches"
    assert log.producer_state.producers[PID].last_sequence == 4


def test_lose_unflushed_with_everything_flushed_loses_nothing() -> None:
    log = _log_with([(0, 2)])
    log.flush()
    assert log.lose_unflushed() == 0
    assert log.leo == 2


def test_lose_unflushed_before_any_flush_empties_the_log() -> None:
    log = _log_with([(0, 2), (1, 2)])
    assert log.lose_unflushed() == 4
    assert (log.leo, log.batches, log.epochs) == (0, [], [])
    assert log.producer_state.producers == {}
