"""Replica (partition.py): the leader's HW, follower fetch state, ISR rules, DelayedProduce."""

from sim.cluster.log import PartitionLog
from sim.cluster.partition import FOLLOWER, LEADER, NONE, DelayedProduce, Replica
from sim.protocol import NO_PRODUCER_ID, Errors, RecordBatch

LAG_MS = 30_000.0


def _records(count: int) -> RecordBatch:
    return RecordBatch(
        producer_id=NO_PRODUCER_ID,
        producer_epoch=-1,
        base_sequence=-1,
        record_ids=tuple(range(count)),
        size_bytes=count,
        create_time_ms=0.0,
    )


def _leader(
    leo: int = 0,
    isr: tuple[int, ...] = (0, 1, 2),
    min_insync: int = 1,
    replicas: tuple[int, ...] = (0, 1, 2),
    epoch: int = 0,
    now_ms: float = 0.0,
) -> Replica:
    """Broker 0 as leader of a partition whose log has `leo` one-record batches."""
    replica = Replica(PartitionLog("t", 0), replicas, min_insync)
    replica.make_leader(0, epoch, isr, now_ms)
    _append(replica, leo)
    return replica


def _append(replica: Replica, batches: int) -> None:
    for _ in range(batches):
        replica.log.append_as_leader(_records(1), replica.leader_epoch)


def _fetch(replica: Replica, follower: int, offset: int, now_ms: float = 0.0) -> bool:
    """A follower's fetch as the leader handles it: fetch state, then the HW."""
    replica.update_follower(follower, offset, now_ms)
    return replica.maybe_increment_hw()


# --- the high watermark -----------------------------------------------------------


def test_hw_is_the_minimum_leo_over_the_leader_and_the_isr() -> None:
    replica = _leader(leo=10)
    _fetch(replica, 1, 7)
    assert replica.log.hw == 0, "follower 2's LEO is still unknown"
    assert _fetch(replica, 2, 4)
    assert replica.log.hw == 4
    _fetch(replica, 2, 10)
    assert replica.log.hw == 7
    _fetch(replica, 1, 10)
    assert replica.log.hw == 10


def test_hw_ignores_a_follower_outside_the_isr() -> None:
    replica = _leader(leo=10, isr=(0, 1))
    _fetch(replica, 2, 0)
    _fetch(replica, 1, 8)
    assert replica.log.hw == 8


def test_hw_with_the_leader_alone_in_the_isr_is_its_leo() -> None:
    replica = _leader(leo=6, isr=(0,))
    assert replica.maybe_increment_hw()
    assert replica.log.hw == 6


def test_hw_waits_for_replicas_a_pending_isr_expansion_adds() -> None:
    replica = _leader(leo=10, isr=(0, 1))
    _fetch(replica, 1, 10)
    replica.update_follower(2, 3, 0.0)
    replica.pending_isr = (0, 1, 2)  # AlterPartition in flight: the maximal ISR.
    assert replica.maximal_isr == (0, 1, 2)
    replica.log.hw = 2
    assert replica.maybe_increment_hw()
    assert replica.log.hw == 3


def test_hw_still_waits_for_a_member_a_pending_shrink_would_remove() -> None:
    replica = _leader(leo=10, isr=(0, 1, 2))
    _fetch(replica, 1, 10)
    _fetch(replica, 2, 4)
    replica.pending_isr = (0, 1)
    assert replica.maximal_isr == (0, 1, 2)
    _append(replica, 1)
    _fetch(replica, 1, 11)
    assert replica.log.hw == 4


def test_hw_never_moves_backwards() -> None:
    replica = _leader(leo=10)
    _fetch(replica, 1, 8)
    _fetch(replica, 2, 8)
    assert replica.log.hw == 8
    assert not _fetch(replica, 2, 5), "a follower that truncated does not pull the HW back"
    assert replica.log.hw == 8
    _fetch(replica, 2, 10)
    assert replica.log.hw == 8
    _fetch(replica, 1, 10)
    assert replica.log.hw == 10


def test_hw_does_not_advance_while_the_isr_is_below_min_insync_kafka_15583() -> None:
    replica = _leader(leo=5, isr=(0,), min_insync=2)
    assert replica.under_min_isr()
    assert not replica.maybe_increment_hw()
    assert replica.log.hw == 0
    _fetch(replica, 1, 5)
    assert replica.log.hw == 0, "a caught-up follower outside the ISR does not help"
    replica.isr = (0, 1)
    assert replica.maybe_increment_hw()
    assert replica.log.hw == 5


def test_effective_min_insync_is_capped_by_the_replica_count() -> None:
    replica = _leader(leo=4, isr=(0,), min_insync=3, replicas=(0,))
    assert replica.effective_min_insync == 1
    assert not replica.under_min_isr()
    assert replica.maybe_increment_hw()
    assert replica.log.hw == 4


def test_hw_is_frozen_after_make_leader_until_every_isr_follower_fetches() -> None:
    replica = _leader(leo=10, now_ms=0.0)
    for follower in (1, 2):
        _fetch(replica, follower, 10)
    assert replica.log.hw == 10
    replica.make_leader(0, 1, (0, 1, 2), now_ms=100.0)  # re-elected: follower LEOs unknown
    _append(replica, 2)
    assert all(state.leo is None for state in replica.followers.values())
    assert not replica.maybe_increment_hw()
    _fetch(replica, 1, 12, 101.0)
    assert replica.log.hw == 10, "follower 2 has not fetched in the new epoch"
    _fetch(replica, 2, 11, 102.0)
    assert replica.log.hw == 11


def test_make_leader_adds_an_epoch_entry_at_the_leo() -> None:
    replica = _leader(leo=3, epoch=0)
    replica.make_leader(0, 4, (0, 1, 2), now_ms=0.0)
    assert replica.log.epochs == [(0, 0), (4, 3)]
    assert (replica.role, replica.leader, replica.leader_epoch) == (LEADER, 0, 4)


def test_make_follower_forgets_follower_state_and_keeps_its_log_and_hw() -> None:
    replica = _leader(leo=3, isr=(0,))
    replica.maybe_increment_hw()
    replica.make_follower(2, 5, (2,))
    assert (replica.role, replica.leader, replica.leader_epoch) == (FOLLOWER, 2, 5)
    assert replica.followers == {}
    assert (replica.log.leo, replica.log.hw) == (3, 3)
    replica.make_follower(-1, 6, (2,))
    assert replica.role == NONE


# --- follower fetch state: lastCaughtUpTimeMs (updateFetchStateOrThrow) ----------------


def test_a_fetch_at_the_leaders_leo_is_caught_up_at_the_fetch_time() -> None:
    replica = _leader(leo=10, now_ms=0.0)
    replica.update_follower(1, 10, 500.0)
    state = replica.followers[1]
    assert (state.leo, state.last_caught_up_ms) == (10, 500.0)
    assert (state.last_fetch_leader_leo, state.last_fetch_ms) == (10, 500.0)


def test_reaching_the_leo_of_the_previous_fetch_is_caught_up_at_the_previous_fetch_time() -> None:
    replica = _leader(leo=10, now_ms=0.0)
    replica.update_follower(1, 4, 1_000.0)  # leader LEO 10 at this fetch
    assert replica.followers[1].last_caught_up_ms == 0.0
    _append(replica, 5)  # leader LEO 15
    replica.update_follower(1, 10, 2_000.0)
    assert replica.followers[1].last_caught_up_ms == 1_000.0
    assert replica.followers[1].last_fetch_leader_leo == 15


def test_a_fetch_below_the_previous_fetchs_leader_leo_leaves_last_caught_up_unchanged() -> None:
    replica = _leader(leo=10, now_ms=0.0)
    replica.update_follower(1, 10, 1_000.0)  # caught up at 1000
    _append(replica, 5)
    replica.update_follower(1, 10, 2_000.0)  # reached LEO-at-1000: caught up at 1000
    _append(replica, 5)
    replica.update_follower(1, 12, 3_000.0)  # below 15, the leader's LEO at 2000
    state = replica.followers[1]
    assert state.last_caught_up_ms == 1_000.0
    assert (state.leo, state.last_fetch_leader_leo, state.last_fetch_ms) == (12, 20, 3_000.0)


def test_a_fetch_from_a_non_replica_is_ignored() -> None:
    replica = _leader(leo=1)
    replica.update_follower(9, 1, 10.0)
    assert sorted(replica.followers) == [1, 2]


# --- ISR shrink and expand ------------------------------------------------------------


def test_a_lagging_isr_follower_is_out_of_sync_only_after_replica_lag_time_max_ms() -> None:
    replica = _leader(leo=10, now_ms=0.0)
    replica.update_follower(1, 10, 0.0)
    replica.update_follower(2, 10, 0.0)
    _append(replica, 1)
    replica.update_follower(1, 11, 100.0)
    assert replica.out_of_sync(LAG_MS, LAG_MS) == []
    assert replica.out_of_sync(LAG_MS + 1.0, LAG_MS) == [2]


def test_a_follower_at_the_leaders_leo_is_never_out_of_sync_however_long_it_was_silent() -> None:
    replica = _leader(leo=10, now_ms=0.0)
    replica.update_follower(1, 10, 0.0)
    replica.update_follower(2, 10, 0.0)
    assert replica.out_of_sync(10 * LAG_MS, LAG_MS) == []


def test_a_follower_that_never_fetched_since_election_is_out_of_sync_after_the_lag() -> None:
    replica = _leader(leo=10, now_ms=1_000.0)
    replica.update_follower(1, 10, 1_000.0)
    assert replica.out_of_sync(1_000.0 + LAG_MS, LAG_MS) == []
    assert replica.out_of_sync(1_000.0 + LAG_MS + 1.0, LAG_MS) == [2]


def test_out_of_sync_considers_only_isr_members_other_than_the_leader() -> None:
    replica = _leader(leo=10, isr=(0, 1), now_ms=0.0)
    assert replica.out_of_sync(10 * LAG_MS, LAG_MS) == [1]


def test_a_follower_joins_the_isr_once_its_leo_reaches_the_hw_and_the_epoch_start() -> None:
    replica = _leader(leo=10, isr=(0, 1), epoch=0)
    _fetch(replica, 1, 10)
    assert replica.log.hw == 10
    replica.make_leader(0, 1, (0, 1), now_ms=0.0)  # epoch 1 starts at 10
    _append(replica, 10)
    _fetch(replica, 1, 20)
    assert replica.log.hw == 20
    replica.log.hw = 8  # a HW below the epoch start, as after a new election
    replica.update_follower(2, 9, 0.0)
    assert not replica.can_join_isr(2), "LEO 9 >= HW 8 but below the epoch start 10"
    replica.update_follower(2, 10, 0.0)
    assert replica.can_join_isr(2)


def test_a_follower_behind_the_hw_cannot_join_the_isr() -> None:
    replica = _leader(leo=20, isr=(0, 1))
    _fetch(replica, 1, 15)
    assert replica.log.hw == 15
    replica.update_follower(2, 14, 0.0)
    assert not replica.can_join_isr(2)
    replica.update_follower(2, 15, 0.0)
    assert replica.can_join_isr(2)


def test_an_isr_member_or_a_follower_with_unknown_leo_cannot_join() -> None:
    replica = _leader(leo=0, isr=(0, 1))
    assert not replica.can_join_isr(2), "no fetch since election"
    replica.update_follower(1, 0, 0.0)
    assert not replica.can_join_isr(1), "already in the ISR"


# --- DelayedProduce -------------------------------------------------------------------


def _waiting(replica: Replica, required_offset: int) -> tuple[DelayedProduce, list[Errors]]:
    outcomes: list[Errors] = []
    delayed = DelayedProduce(required_offset, outcomes.append)
    replica.delayed.append(delayed)
    return delayed, outcomes


def test_delayed_produce_completes_with_none_once_the_hw_passes_its_last_offset() -> None:
    replica = _leader(leo=5, min_insync=2)
    delayed, outcomes = _waiting(replica, 5)
    _fetch(replica, 1, 4)
    _fetch(replica, 2, 5)
    assert replica.log.hw == 4
    assert outcomes == []
    assert not delayed.done
    _fetch(replica, 1, 5)
    assert outcomes == [Errors.NONE]
    assert delayed.done
    assert replica.delayed == []


def test_delayed_produces_complete_independently_in_offset_order() -> None:
    replica = _leader(leo=6, isr=(0, 1))
    first, first_outcomes = _waiting(replica, 3)
    second, second_outcomes = _waiting(replica, 6)
    _fetch(replica, 1, 3)
    assert (first_outcomes, second_outcomes) == ([Errors.NONE], [])
    assert replica.delayed == [second]
    _fetch(replica, 1, 6)
    assert second_outcomes == [Errors.NONE]


def test_delayed_produce_is_not_enough_replicas_after_append_if_the_isr_shrank_below_min() -> None:
    replica = _leader(leo=5, isr=(0, 1), min_insync=2)
    _, outcomes = _waiting(replica, 5)
    _fetch(replica, 1, 3)
    replica.log.hw = 5  # reached while the ISR was big enough ...
    replica.isr = (0,)  # ... which has shrunk since
    replica.complete_delayed()
    assert outcomes == [Errors.NOT_ENOUGH_REPLICAS_AFTER_APPEND]


def test_delayed_produce_counts_a_pending_expansion_towards_min_insync() -> None:
    replica = _leader(leo=5, isr=(0,), min_insync=2)
    _, outcomes = _waiting(replica, 5)
    replica.pending_isr = (0, 1)
    replica.log.hw = 5
    replica.complete_delayed()
    assert outcomes == [Errors.NONE]


def _never(error: Errors) -> None:
    raise AssertionError(f"a completed produce was answered again with {error.name}")


def test_fail_delayed_answers_every_waiting_produce_once_with_the_error() -> None:
    replica = _leader(leo=5)
    _, first = _waiting(replica, 3)
    _, second = _waiting(replica, 5)
    done = DelayedProduce(1, _never, done=True)
    replica.delayed.append(done)
    replica.fail_delayed(Errors.NOT_LEADER_OR_FOLLOWER)
    assert first == [Errors.NOT_LEADER_OR_FOLLOWER]
    assert second == [Errors.NOT_LEADER_OR_FOLLOWER]
    assert replica.delayed == []
    replica.fail_delayed(Errors.NOT_LEADER_OR_FOLLOWER)
    assert first == [Errors.NOT_LEADER_OR_FOLLOWER], "answered once"
