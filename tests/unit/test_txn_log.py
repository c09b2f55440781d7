"""The partition side of transactions: LSO, the aborted index, markers, read_committed.

SEMANTICS.md §7: LSO = min(HW, first unstable offset), where the first
unstable offset is the lowest first offset among open transactions and among
ended ones whose marker the HW has not passed; read_committed reads below
the LSO and drops the aborted transactions the leader lists; control records
occupy one offset each and are never returned; a marker or a produce with an
older producer epoch is rejected (INVALID_PRODUCER_EPOCH).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sim
from sim.cluster.log import PartitionLog
from sim.cluster.producer_state import ProducerStateManager
from sim.net import RpcClient
from sim.protocol import (
    ConsumerFetchData,
    ConsumerFetchRequest,
    Errors,
    LogBatch,
    ProduceRequest,
    RecordBatch,
    TxnMarker,
    WriteTxnMarkersRequest,
    read_committed_batches,
)

A, B, C = 101, 202, 303  # Producer ids.


def data(
    pid: int, ids: Sequence[int], epoch: int = 0, seq: int = 0, txn: bool = True
) -> RecordBatch:
    return RecordBatch(pid, epoch, seq, tuple(ids), 10 * len(ids), 0.0, is_transactional=txn)


def marker(pid: int, commit: bool, epoch: int = 0) -> RecordBatch:
    return RecordBatch(
        pid, epoch, -1, (), 78, 0.0, is_transactional=True, control="COMMIT" if commit else "ABORT"
    )


def plain(ids: Sequence[int]) -> RecordBatch:
    """A batch of a producer without idempotence."""
    return RecordBatch(-1, -1, -1, tuple(ids), 10 * len(ids), 0.0)


def build(*batches: RecordBatch) -> PartitionLog:
    log = PartitionLog("t", 0)
    for batch in batches:
        log.append_as_leader(batch, 0)
    log.hw = log.leo
    return log


def ids(batches: Sequence[LogBatch]) -> list[int]:
    return [i for b in batches for i in b.batch.record_ids]


# --- control records ---------------------------------------------------------------------------


def test_a_control_record_occupies_exactly_one_offset() -> None:
    log = build(data(A, [1, 2]), marker(A, commit=True), data(A, [3], seq=2), marker(A, False))
    assert [(b.base_offset, b.next_offset) for b in log.batches] == [(0, 2), (2, 3), (3, 4), (4, 5)]
    assert log.leo == 5
    assert marker(A, True).record_count == 1
    assert marker(A, True).record_ids == ()


def test_control_records_are_never_returned_to_read_committed_or_the_final_read() -> None:
    log = build(data(A, [1, 2]), marker(A, commit=True))
    kept = log.committed_batches(log.last_stable_offset())
    assert all(b.batch.control is None for b in kept)
    assert ids(kept) == [1, 2]
    offsets, record_ids = log.records_up_to(log.hw)
    assert (offsets, record_ids) == ([0, 1], [1, 2])


# --- the LSO -----------------------------------------------------------------------------------


def test_an_open_transaction_holds_the_lso_at_its_first_offset() -> None:
    log = build(plain([1, 2]), data(A, [3, 4]), plain([5]))
    assert log.hw == 5
    assert log.last_stable_offset() == 2
    assert log.producer_state.ongoing == {A: 2}


def test_later_committed_records_of_other_producers_stay_invisible_until_the_txn_ends() -> None:
    log = build(data(A, [1]), data(B, [2, 3]), marker(B, commit=True))
    assert log.last_stable_offset() == 0
    assert ids(log.committed_batches(log.last_stable_offset())) == []
    log.append_as_leader(marker(A, commit=True), 0)
    log.hw = log.leo
    assert log.last_stable_offset() == log.hw == 5
    assert ids(log.committed_batches(log.last_stable_offset())) == [1, 2, 3]


def test_after_the_marker_the_lso_waits_for_the_hw_to_pass_the_marker() -> None:
    log = build(plain([1]), data(A, [2, 3]))
    log.append_as_leader(marker(A, commit=True), 0)  # At offset 3.
    log.hw = 3  # The marker is written but not yet replicated.
    assert log.last_stable_offset() == 1
    log.hw = 4
    assert log.last_stable_offset() == 4 == log.hw
    assert log.producer_state.completed == []


def test_the_lso_is_the_hw_without_transactions_and_never_above_it() -> None:
    log = build(plain([1, 2, 3]))
    assert log.last_stable_offset() == 3
    log.hw = 1
    assert log.last_stable_offset() == 1
    open_above_hw = build(plain([1]), data(A, [2]))
    open_above_hw.hw = 1
    assert open_above_hw.last_stable_offset() == 1


def test_the_lso_is_the_lowest_first_offset_of_several_open_transactions() -> None:
    log = build(data(A, [1]), data(B, [2]), data(A, [3], seq=1))
    assert log.last_stable_offset() == 0
    log.append_as_leader(marker(A, commit=True), 0)
    log.hw = log.leo
    assert log.last_stable_offset() == 1, "B's transaction, first offset 1, is still open"


# --- the aborted index -------------------------------------------------------------------------


def test_an_abort_marker_lists_the_producer_and_first_offset_in_the_aborted_index() -> None:
    log = build(plain([1]), data(A, [2, 3]), data(B, [4]), marker(A, commit=False))
    assert log.producer_state.aborted == [(A, 1, 4)]
    assert log.producer_state.aborted_overlapping(0, 10) == ((A, 1),)
    assert log.producer_state.aborted_overlapping(4, 10) == ((A, 1),), "the marker is at 4"
    assert log.producer_state.aborted_overlapping(5, 10) == ()
    assert log.producer_state.aborted_overlapping(0, 1) == ()
    log.append_as_leader(marker(B, commit=True), 0)
    assert log.producer_state.aborted == [(A, 1, 4)], "commits are not indexed"


def test_the_aborted_index_is_rebuilt_identically_from_the_log() -> None:
    log = build(data(A, [1]), data(B, [2]), marker(A, False), data(A, [3], seq=1), marker(B, True))
    rebuilt = ProducerStateManager()
    rebuilt.rebuild(log.batches)
    assert rebuilt.aborted == log.producer_state.aborted == [(A, 0, 2)]
    assert rebuilt.ongoing == log.producer_state.ongoing == {A: 3}


def test_read_committed_drops_the_aborted_transaction_and_keeps_the_rest() -> None:
    log = build(
        plain([1]),
        data(A, [2]),
        data(B, [3]),
        data(A, [4], seq=1),
        marker(A, False),
        marker(B, True),
    )
    assert log.last_stable_offset() == log.hw == 6
    assert ids(log.committed_batches(log.hw)) == [1, 3]


# --- read_committed_batches on hand-built logs ------------------------------------------------


def lay_out(*batches: RecordBatch) -> list[LogBatch]:
    out, offset = [], 0
    for batch in batches:
        out.append(LogBatch(offset, 0, batch))
        offset += batch.record_count
    return out


def test_interleaved_producers_one_aborted_one_committed() -> None:
    batches = lay_out(
        data(A, [1]),  # 0
        data(B, [2]),  # 1
        data(A, [3], seq=1),  # 2
        plain([4]),  # 3
        data(B, [5], seq=1),  # 4
        marker(A, commit=False),  # 5
        marker(B, commit=True),  # 6
        data(A, [6], seq=2),  # 7: A's next transaction, committed
        marker(A, commit=True),  # 8
    )
    kept = read_committed_batches(batches, 9, ((A, 0),))
    assert ids(kept) == [2, 4, 5, 6]
    assert all(b.batch.control is None for b in kept)


def test_an_abort_stops_applying_at_its_marker() -> None:
    batches = lay_out(data(A, [1]), marker(A, False), data(A, [2], seq=1), marker(A, True))
    assert ids(read_committed_batches(batches, 4, ((A, 0),))) == [2]


def test_an_aborted_transaction_that_began_before_the_read_start_is_still_dropped() -> None:
    whole = lay_out(
        data(A, [1]),  # 0
        data(B, [2]),  # 1
        data(A, [3], seq=1),  # 2
        marker(B, True),  # 3
        data(A, [4], seq=2),  # 4
        marker(A, False),  # 5
        plain([5]),  # 6
    )
    from_middle = whole[2:]  # A fetch from offset 2: A's transaction began at 0.
    assert ids(read_committed_batches(from_middle, 7, ((A, 0),))) == [5]


def test_only_transactional_batches_of_an_aborted_producer_are_dropped() -> None:
    batches = lay_out(data(A, [1]), data(A, [2], seq=1, txn=False), marker(A, False))
    assert ids(read_committed_batches(batches, 3, ((A, 0),))) == [2]


def test_nothing_at_or_above_the_bound_is_returned() -> None:
    batches = lay_out(plain([1]), plain([2, 3]), plain([4]))
    assert ids(read_committed_batches(batches, 1, ())) == [1]
    assert ids(read_committed_batches(batches, 3, ())) == [1, 2, 3]
    assert ids(read_committed_batches(batches, 0, ())) == []


def test_two_aborted_transactions_of_one_producer_are_each_dropped() -> None:
    batches = lay_out(
        data(A, [1]),  # 0
        marker(A, False),  # 1
        data(A, [2], seq=1),  # 2
        marker(A, True),  # 3
        data(A, [3], seq=2),  # 4
        marker(A, False),  # 5
    )
    assert ids(read_committed_batches(batches, 6, ((A, 0), (A, 4)))) == [2]


# --- markers and fencing on a real broker --------------------------------------------------------


class Probe:
    """A network node that sends one raw request at a time and waits for the answer."""

    def __init__(self, cluster: sim.Cluster) -> None:
        self.cluster = cluster
        self.rpc = RpcClient(cluster.world, cluster.net, "probe")
        cluster.net.add_node("probe", self)

    def receive(self, source: str, message: Any) -> None:
        self.rpc.handle_response(source, message)

    def on_disconnect(self, peer: str) -> None:
        self.rpc.on_disconnect(peer)

    def ask(self, broker: int, request: Any) -> Any:
        answers: list[Any] = []
        self.rpc.call(f"broker-{broker}", request, 5000, answers.append, answers.append)
        self.cluster.run_until(lambda: bool(answers), 6000)
        assert answers, f"no answer to {request}"
        return answers[0]


def leader_setup() -> tuple[sim.Cluster, Probe, int]:
    cluster = sim.Cluster(brokers=3, seed=2)
    cluster.create_topic("t", partitions=1, replication_factor=3, min_insync_replicas=2)
    cluster.run_for(100)
    return cluster, Probe(cluster), cluster.controller.partitions[("t", 0)].leader


def write_marker(probe: Probe, leader: int, pid: int, epoch: int, commit: bool) -> Errors:
    request = WriteTxnMarkersRequest(
        probe.rpc.next_request_id(), TxnMarker(pid, epoch, commit, 0, (("t", 0),))
    )
    answer = probe.ask(leader, request)
    assert [(t, p) for t, p, _ in answer.results] == [("t", 0)]
    return answer.results[0][2]


def produce(probe: Probe, leader: int, batch: RecordBatch) -> Errors:
    request = ProduceRequest(probe.rpc.next_request_id(), -1, 5000, (("t", 0, batch),), "tx")
    return probe.ask(leader, request).results[0].error


def test_a_marker_appends_one_offset_on_the_leader_and_its_followers() -> None:
    cluster, probe, leader = leader_setup()
    assert produce(probe, leader, data(A, [1, 2])) == Errors.NONE
    assert write_marker(probe, leader, A, 0, commit=True) == Errors.NONE
    cluster.run_for(1000)
    for broker in cluster.brokers:
        log = broker.replicas[("t", 0)].log
        assert log.leo == 3
        assert log.batches[-1].batch.control == "COMMIT"
        assert log.producer_state.ongoing == {}
    assert cluster.brokers[leader].replicas[("t", 0)].log.last_stable_offset() == 3


def test_a_marker_with_an_older_producer_epoch_is_rejected() -> None:
    cluster, probe, leader = leader_setup()
    assert produce(probe, leader, data(A, [1], epoch=3)) == Errors.NONE
    log = cluster.brokers[leader].replicas[("t", 0)].log
    assert write_marker(probe, leader, A, 2, commit=True) == Errors.INVALID_PRODUCER_EPOCH
    assert log.leo == 1, "nothing was appended"
    assert log.producer_state.ongoing == {A: 0}, "the transaction is still open"
    assert write_marker(probe, leader, A, 3, commit=True) == Errors.NONE
    assert log.leo == 2


def test_after_a_fencing_marker_the_zombies_produce_gets_invalid_producer_epoch() -> None:
    cluster, probe, leader = leader_setup()
    assert produce(probe, leader, data(A, [1, 2], epoch=0)) == Errors.NONE
    # The coordinator fenced the producer: ABORT with the bumped epoch.
    assert write_marker(probe, leader, A, 1, commit=False) == Errors.NONE
    zombie = data(A, [3], epoch=0, seq=2)
    assert produce(probe, leader, zombie) == Errors.INVALID_PRODUCER_EPOCH
    log = cluster.brokers[leader].replicas[("t", 0)].log
    assert ids(log.committed_batches(log.last_stable_offset())) == []
    assert log.producer_state.aborted == [(A, 0, 2)]
    # The new instance starts its epoch at sequence 0.
    assert produce(probe, leader, data(A, [4], epoch=1, seq=0)) == Errors.NONE


def fetch(probe: Probe, leader: int, isolation: str, offset: int = 0) -> ConsumerFetchData:
    request = ConsumerFetchRequest(probe.rpc.next_request_id(), isolation, (("t", 0, offset),))
    return probe.ask(leader, request).partitions[0]


def test_the_leader_answers_a_fetch_with_hw_lso_and_the_overlapping_aborted_transactions() -> None:
    cluster, probe, leader = leader_setup()
    assert produce(probe, leader, data(A, [1])) == Errors.NONE
    assert produce(probe, leader, data(B, [2])) == Errors.NONE
    assert write_marker(probe, leader, A, 0, commit=False) == Errors.NONE
    cluster.run_for(600)  # The followers fetch; the HW passes the marker.
    answer = fetch(probe, leader, "read_committed")
    assert answer.error == Errors.NONE
    assert (answer.high_watermark, answer.last_stable_offset) == (3, 1), "B is still open"
    assert answer.aborted == ((A, 0),)
    assert [b.base_offset for b in answer.batches] == [0, 1, 2]
    assert fetch(probe, leader, "read_committed", offset=3).aborted == ()
