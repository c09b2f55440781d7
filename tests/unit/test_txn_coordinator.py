"""The transaction coordinator: which broker it is, its state machine, its answers.

First the pure parts (`java_string_hashcode`, `kafka_abs`, `partition_for`,
`can_transition`) against SEMANTICS.md §7 and references written here
independently; then a real 3-broker cluster, driven through a probe node that
sends raw coordinator requests and reads the answers and the trace.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

import sim
from sim.cluster.txn_coordinator import (
    ABORT_SCAN_INTERVAL_MS,
    COMPLETE_ABORT,
    COMPLETE_COMMIT,
    DEAD,
    EMPTY,
    ONGOING,
    PREPARE_ABORT,
    PREPARE_COMMIT,
    PREPARE_EPOCH_FENCE,
    VALID_PREVIOUS,
    TransactionCoordinator,
    can_transition,
    java_string_hashcode,
    kafka_abs,
    partition_for,
)
from sim.net import RpcClient
from sim.protocol import (
    AddOffsetsToTxnRequest,
    AddPartitionsToTxnRequest,
    EndTxnRequest,
    Errors,
    FindCoordinatorRequest,
    InitProducerIdRequest,
)

INT_MIN = -(1 << 31)
TXN_ID = "tx-1"

# --- coordinator partition: Java String.hashCode, Utils.abs, % 50 ---------------------------


def reference_hashcode(text: str) -> int:
    """Java's String.hashCode written from the JLS: s[0]*31^(n-1) + ... over UTF-16
    code units, int arithmetic. Independent of the simulator's (which encodes to
    UTF-16-BE bytes): here code points are split into surrogates by hand."""
    units: list[int] = []
    for char in text:
        code_point = ord(char)
        if code_point > 0xFFFF:
            code_point -= 0x10000
            units += [0xD800 + (code_point >> 10), 0xDC00 + (code_point & 0x3FF)]
        else:
            units.append(code_point)
    n = len(units)
    total = sum(unit * 31 ** (n - 1 - i) for i, unit in enumerate(units))
    total %= 1 << 32
    return total - (1 << 32) if total >= 1 << 31 else total


@pytest.mark.parametrize(
    ("transactional_id", "hashcode", "partition"),
    [
        ("tx-1", 3572520, 20),
        ("my-txn", -1061187895, 45),
        ("a", 97, 47),
        ("polygenelubricants", INT_MIN, 0),
    ],
)
def test_coordinator_partition_matches_the_semantics_vectors(
    transactional_id: str, hashcode: int, partition: int
) -> None:
    assert java_string_hashcode(transactional_id) == hashcode
    assert reference_hashcode(transactional_id) == hashcode
    assert partition_for(transactional_id, 50) == partition


def test_utils_abs_maps_integer_min_value_to_zero_not_to_two_to_the_31() -> None:
    assert kafka_abs(INT_MIN) == 0
    assert kafka_abs(-5) == 5
    assert kafka_abs(7) == 7
    assert kafka_abs(2147483647) == 2147483647
    # 2**31 % 7 == 2: Python's abs would put "polygenelubricants" on partition 2 of 7.
    assert partition_for("polygenelubricants", 7) == 0


@pytest.mark.parametrize(
    ("text", "hashcode"),
    [
        ("é", 233),  # One BMP unit above ASCII.
        ("日本", 26085 * 31 + 26412),  # Two BMP units.
        ("😀", 0xD83D * 31 + 0xDE00),  # U+1F600: one code point, two UTF-16 units.
        ("tx-😀-é", None),
        ("事务-𝄞-" + "x" * 40, None),  # Long enough to wrap many times; U+1D11E is a pair.
    ],
)
def test_hashcode_runs_over_utf16_units_including_surrogate_pairs(
    text: str, hashcode: int | None
) -> None:
    if hashcode is not None:
        assert java_string_hashcode(text) == hashcode
    assert java_string_hashcode(text) == reference_hashcode(text)
    assert partition_for(text, 50) == kafka_abs(reference_hashcode(text)) % 50


def test_a_surrogate_pair_is_not_hashed_as_one_code_point() -> None:
    code_point_hash = 0x1F600  # What hashing Python's str (code points) would give.
    assert java_string_hashcode("😀") != code_point_hash
    assert java_string_hashcode("😀") == 1772899


def test_coordinator_partition_is_not_murmur2_nor_masked_with_0x7fffffff() -> None:
    ids = ["tx-1", "my-txn", "a", "payments-app"]
    murmur = [(kafka_python_murmur2(i.encode()) & 0x7FFFFFFF) % 50 for i in ids]
    assert [partition_for(i, 50) for i in ids] != murmur
    assert partition_for("tx-1", 50) != murmur[0]
    # & 0x7fffffff differs from Utils.abs for every negative hash but MIN_VALUE.
    masked = (java_string_hashcode("my-txn") & 0x7FFFFFFF) % 50
    assert masked == 3
    assert partition_for("my-txn", 50) == 45


# --- the state table ------------------------------------------------------------------------

SPEC_PREVIOUS = {
    "Empty": {"Empty", "CompleteCommit", "CompleteAbort"},
    "Ongoing": {"Ongoing", "Empty", "CompleteCommit", "CompleteAbort"},
    "PrepareCommit": {"Ongoing"},
    "PrepareAbort": {"Ongoing", "PrepareEpochFence"},
    "CompleteCommit": {"PrepareCommit"},
    "CompleteAbort": {"PrepareAbort"},
    "Dead": {"Empty", "CompleteAbort", "CompleteCommit"},
    "PrepareEpochFence": {"Ongoing"},
}
"""SEMANTICS.md §7's table (TransactionMetadata.scala), copied by hand."""
STATES = sorted(SPEC_PREVIOUS)


def test_the_table_names_every_state_once() -> None:
    assert set(VALID_PREVIOUS) == set(SPEC_PREVIOUS)
    assert {
        EMPTY,
        ONGOING,
        PREPARE_COMMIT,
        PREPARE_ABORT,
        COMPLETE_COMMIT,
        COMPLETE_ABORT,
        DEAD,
        PREPARE_EPOCH_FENCE,
    } == set(STATES)


@pytest.mark.parametrize(("old", "new"), [(o, n) for n in STATES for o in sorted(SPEC_PREVIOUS[n])])
def test_every_valid_transition_is_allowed(old: str, new: str) -> None:
    assert can_transition(old, new)


@pytest.mark.parametrize(
    ("old", "new"), [(o, n) for n in STATES for o in STATES if o not in SPEC_PREVIOUS[n]]
)
def test_every_other_transition_is_refused(old: str, new: str) -> None:
    assert not can_transition(old, new)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("Empty", "PrepareCommit"),  # Commit with nothing in the transaction.
        ("Ongoing", "CompleteCommit"),  # Skipping PrepareCommit.
        ("PrepareCommit", "PrepareAbort"),  # A decision is final.
        ("PrepareAbort", "CompleteCommit"),
        ("CompleteCommit", "CompleteAbort"),
        ("Dead", "Empty"),  # Dead is terminal.
        ("PrepareEpochFence", "PrepareCommit"),  # A fence always aborts.
    ],
)
def test_selected_invalid_transitions(old: str, new: str) -> None:
    assert not can_transition(old, new)


# --- a real cluster, driven by a probe ------------------------------------------------------


class Probe:
    """A network node that sends raw requests and waits (in simulated time) for answers."""

    def __init__(self, cluster: sim.Cluster, name: str = "probe") -> None:
        self.cluster = cluster
        self.rpc = RpcClient(cluster.world, cluster.net, name)
        cluster.net.add_node(name, self)

    def receive(self, source: str, message: Any) -> None:
        self.rpc.handle_response(source, message)

    def on_disconnect(self, peer: str) -> None:
        self.rpc.on_disconnect(peer)

    def ask(self, broker: int, build: Callable[[int], Any]) -> Any:
        answers: list[Any] = []
        request = build(self.rpc.next_request_id())
        self.rpc.call(f"broker-{broker}", request, 5000, answers.append, answers.append)
        self.cluster.run_until(lambda: bool(answers), 6000)
        assert answers, f"no answer to {request}"
        return answers[0]


def new_cluster(seed: int = 1) -> sim.Cluster:
    cluster = sim.Cluster(brokers=3, seed=seed)
    cluster.create_topic("t", partitions=3, replication_factor=3, min_insync_replicas=2)
    cluster.ensure_internal_topics()
    cluster.run_for(100)  # Metadata reaches every broker; coordinators load their partitions.
    return cluster


def coordinator(cluster: sim.Cluster, txn_id: str = TXN_ID) -> TransactionCoordinator:
    return cluster.brokers[cluster.coordinator_of(txn_id)].txn.coordinator


def init(probe: Probe, broker: int, txn_id: str = TXN_ID, timeout_ms: float = 60000) -> Any:
    return probe.ask(broker, lambda rid: InitProducerIdRequest(rid, txn_id, timeout_ms))


def add(probe: Probe, broker: int, pid: int, epoch: int, partitions=(("t", 0),)) -> Any:
    return probe.ask(
        broker, lambda rid: AddPartitionsToTxnRequest(rid, TXN_ID, pid, epoch, tuple(partitions))
    )


def end(probe: Probe, broker: int, pid: int, epoch: int, commit: bool) -> Any:
    return probe.ask(broker, lambda rid: EndTxnRequest(rid, TXN_ID, pid, epoch, commit))


def states(cluster: sim.Cluster, txn_id: str = TXN_ID) -> list[tuple[str, int]]:
    return [
        (e.field("state"), e.field("epoch"))
        for e in cluster.world.events
        if e.kind == "coordinator.state" and e.field("transactional_id") == txn_id
    ]


def settle(cluster: sim.Cluster, state: str, txn_id: str = TXN_ID) -> None:
    cluster.run_until(lambda: coordinator(cluster, txn_id).txns[txn_id].state == state, 5000)
    assert coordinator(cluster, txn_id).txns[txn_id].state == state


def test_find_coordinator_names_the_leader_of_the_ids_transaction_state_partition() -> None:
    cluster = new_cluster()
    probe = Probe(cluster)
    for broker in range(3):  # Any broker answers, from its metadata.
        answer = probe.ask(broker, lambda rid: FindCoordinatorRequest(rid, TXN_ID))
        assert answer.error == Errors.NONE
        assert answer.node == cluster.coordinator_of(TXN_ID)
    state = cluster.controller.partitions[("__transaction_state", 20)]
    assert cluster.coordinator_of(TXN_ID) == state.leader


def test_init_producer_id_on_a_new_id_starts_at_epoch_zero_in_empty() -> None:
    cluster = new_cluster()
    probe = Probe(cluster)
    answer = init(probe, cluster.coordinator_of(TXN_ID))
    assert answer.error == Errors.NONE
    assert answer.producer_epoch == 0
    assert answer.producer_id >= 0
    assert states(cluster) == [("Empty", 0)]


@pytest.mark.parametrize("commit", [True, False])
def test_init_producer_id_bumps_the_epoch_on_empty_and_complete_states(commit: bool) -> None:
    cluster = new_cluster()
    probe = Probe(cluster)
    node = cluster.coordinator_of(TXN_ID)
    first = init(probe, node)
    second = init(probe, node)  # From Empty.
    assert (second.producer_id, second.producer_epoch) == (first.producer_id, 1)
    assert add(probe, node, first.producer_id, 1).error == Errors.NONE
    assert end(probe, node, first.producer_id, 1, commit).error == Errors.NONE
    settle(cluster, COMPLETE_COMMIT if commit else COMPLETE_ABORT)
    third = init(probe, node)  # From CompleteCommit / CompleteAbort.
    assert third.error == Errors.NONE
    assert (third.producer_id, third.producer_epoch) == (first.producer_id, 2)
    assert states(cluster)[-1] == ("Empty", 2)


def test_init_producer_id_on_an_exhausted_epoch_allocates_a_new_producer_id() -> None:
    cluster = new_cluster()
    probe = Probe(cluster)
    node = cluster.coordinator_of(TXN_ID)
    first = init(probe, node)
    meta = coordinator(cluster).txns[TXN_ID]
    coordinator(cluster).txns[TXN_ID] = replace(meta, producer_epoch=32766)
    second = init(probe, node)
    assert second.error == Errors.NONE
    assert second.producer_id != first.producer_id
    assert second.producer_epoch == 0


def test_init_producer_id_on_ongoing_fences_aborts_and_answers_concurrent_transactions() -> None:
    cluster = new_cluster()
    probe = Probe(cluster)
    node = cluster.coordinator_of(TXN_ID)
    first = init(probe, node)
    assert add(probe, node, first.producer_id, 0).error == Errors.NONE
    assert coordinator(cluster).txns[TXN_ID].state == ONGOING
    answer = init(probe, node)
    assert answer.error == Errors.CONCURRENT_TRANSACTIONS
    fences = [e for e in cluster.world.events if e.kind == "coordinator.fence"]
    assert [f.field("epoch") for f in fences] == [1]
    settle(cluster, COMPLETE_ABORT)
    assert states(cluster)[-2:] == [("PrepareAbort", 1), ("CompleteAbort", 1)]
    retry = init(probe, node)
    assert retry.error == Errors.NONE
    assert (retry.producer_id, retry.producer_epoch) == (first.producer_id, 2)


def test_a_second_producer_with_the_same_id_fences_the_first_and_gets_epoch_plus_two() -> None:
    cluster = new_cluster()
    first = sim.KafkaProducer(cluster=cluster, transactional_id=TXN_ID)
    first.init_transactions()
    first.begin_transaction()
    first.send("t", value=b"open", partition=0)
    first.flush()
    assert first.txn_manager is not None
    pid, epoch = first.txn_manager.producer_id, first.txn_manager.producer_epoch
    second = sim.KafkaProducer(cluster=cluster, transactional_id=TXN_ID)
    second.init_transactions()  # CONCURRENT_TRANSACTIONS, retried until the abort completes.
    assert second.txn_manager is not None
    assert (second.txn_manager.producer_id, second.txn_manager.producer_epoch) == (pid, epoch + 2)
    assert [e.field("epoch") for e in cluster.world.events if e.kind == "coordinator.fence"] == [
        epoch + 1
    ]
    assert ("PrepareAbort", epoch + 1) in states(cluster)
    with pytest.raises(sim.errors.ProducerFencedError):
        first.commit_transaction()


def hold_markers(cluster: sim.Cluster, probe: Probe, commit: bool) -> tuple[int, int]:
    """Open a transaction on a partition led by another broker, end it, and lose the
    WriteTxnMarkers request: the coordinator stays in PrepareCommit/PrepareAbort."""
    node = cluster.coordinator_of(TXN_ID)
    partition = next(p for p in range(3) if cluster.controller.partitions[("t", p)].leader != node)
    leader = cluster.controller.partitions[("t", partition)].leader
    answer = init(probe, node)
    pid = answer.producer_id
    assert add(probe, node, pid, 0, (("t", partition),)).error == Errors.NONE
    cluster.drop(
        from_=f"broker-{node}", to=[f"broker-{leader}"], message="WriteTxnMarkersRequest", count=1
    )
    assert end(probe, node, pid, 0, commit).error == Errors.NONE
    cluster.run_for(50)
    state = coordinator(cluster).txns[TXN_ID].state
    assert state == (PREPARE_COMMIT if commit else PREPARE_ABORT)
    return node, pid


@pytest.mark.parametrize("commit", [True, False])
def test_requests_during_prepare_commit_or_abort_get_concurrent_transactions(
    commit: bool,
) -> None:
    cluster = new_cluster()
    probe = Probe(cluster)
    node, pid = hold_markers(cluster, probe, commit)
    assert init(probe, node).error == Errors.CONCURRENT_TRANSACTIONS
    assert add(probe, node, pid, 0).error == Errors.CONCURRENT_TRANSACTIONS
    offsets = probe.ask(node, lambda rid: AddOffsetsToTxnRequest(rid, TXN_ID, pid, 0, "g"))
    assert offsets.error == Errors.CONCURRENT_TRANSACTIONS
    assert coordinator(cluster).txns[TXN_ID].producer_epoch == 0, "no bump while undecided"


@pytest.mark.parametrize("commit", [True, False])
def test_end_txn_while_prepared_is_concurrent_for_the_same_decision_invalid_for_the_other(
    commit: bool,
) -> None:
    cluster = new_cluster()
    probe = Probe(cluster)
    node, pid = hold_markers(cluster, probe, commit)
    assert end(probe, node, pid, 0, commit).error == Errors.CONCURRENT_TRANSACTIONS
    assert end(probe, node, pid, 0, not commit).error == Errors.INVALID_TXN_STATE
    assert coordinator(cluster).txns[TXN_ID].state == (PREPARE_COMMIT if commit else PREPARE_ABORT)


def test_old_epoch_add_partitions_end_txn_and_add_offsets_are_producer_fenced() -> None:
    cluster = new_cluster()
    probe = Probe(cluster)
    node = cluster.coordinator_of(TXN_ID)
    pid = init(probe, node).producer_id
    assert init(probe, node).producer_epoch == 1
    assert add(probe, node, pid, 0).error == Errors.PRODUCER_FENCED
    assert add(probe, node, pid, 1).error == Errors.NONE
    assert end(probe, node, pid, 0, commit=True).error == Errors.PRODUCER_FENCED
    offsets = probe.ask(node, lambda rid: AddOffsetsToTxnRequest(rid, TXN_ID, pid, 0, "g"))
    assert offsets.error == Errors.PRODUCER_FENCED
    assert coordinator(cluster).txns[TXN_ID].state == ONGOING, "the fenced calls changed nothing"


def test_a_wrong_producer_id_gets_invalid_producer_id_mapping() -> None:
    cluster = new_cluster()
    probe = Probe(cluster)
    node = cluster.coordinator_of(TXN_ID)
    pid = init(probe, node).producer_id
    assert add(probe, node, pid + 1, 0).error == Errors.INVALID_PRODUCER_ID_MAPPING


def test_end_txn_in_empty_is_invalid_txn_state() -> None:
    cluster = new_cluster()
    probe = Probe(cluster)
    node = cluster.coordinator_of(TXN_ID)
    pid = init(probe, node).producer_id
    assert end(probe, node, pid, 0, commit=True).error == Errors.INVALID_TXN_STATE


def test_a_retried_end_txn_after_completion_succeeds() -> None:
    cluster = new_cluster()
    probe = Probe(cluster)
    node = cluster.coordinator_of(TXN_ID)
    pid = init(probe, node).producer_id
    assert add(probe, node, pid, 0).error == Errors.NONE
    assert end(probe, node, pid, 0, commit=True).error == Errors.NONE
    settle(cluster, COMPLETE_COMMIT)
    assert end(probe, node, pid, 0, commit=True).error == Errors.NONE
    assert end(probe, node, pid, 0, commit=False).error == Errors.INVALID_TXN_STATE


def test_transaction_timeout_outside_the_allowed_range_is_refused() -> None:
    cluster = new_cluster()
    probe = Probe(cluster)
    node = cluster.coordinator_of(TXN_ID)
    assert init(probe, node, timeout_ms=900001).error == Errors.INVALID_TRANSACTION_TIMEOUT
    assert init(probe, node, timeout_ms=0).error == Errors.INVALID_TRANSACTION_TIMEOUT
    assert TXN_ID not in coordinator(cluster).txns


def test_a_broker_that_does_not_own_the_id_answers_not_coordinator() -> None:
    cluster = new_cluster()
    probe = Probe(cluster)
    node = cluster.coordinator_of(TXN_ID)
    pid = init(probe, node).producer_id
    others = [b for b in range(3) if b != node]
    assert len(others) == 2
    for other in others:
        assert init(probe, other).error == Errors.NOT_COORDINATOR
        assert add(probe, other, pid, 0).error == Errors.NOT_COORDINATOR
        assert end(probe, other, pid, 0, commit=True).error == Errors.NOT_COORDINATOR
        offsets = probe.ask(other, lambda rid: AddOffsetsToTxnRequest(rid, TXN_ID, pid, 0, "g"))
        assert offsets.error == Errors.NOT_COORDINATOR
    assert states(cluster) == [("Empty", 0)]


def test_the_abort_scan_fences_and_aborts_an_ongoing_transaction_past_its_timeout() -> None:
    cluster = new_cluster()
    probe = Probe(cluster)
    node = cluster.coordinator_of(TXN_ID)
    pid = init(probe, node, timeout_ms=1000).producer_id
    assert add(probe, node, pid, 0).error == Errors.NONE
    started = cluster.world.now_ms
    cluster.run_until(
        lambda: any(e.kind == "coordinator.timeout" for e in cluster.world.events),
        1000 + ABORT_SCAN_INTERVAL_MS,
    )
    timeouts = [e for e in cluster.world.events if e.kind == "coordinator.timeout"]
    assert [e.field("transactional_id") for e in timeouts] == [TXN_ID]
    assert timeouts[0].time_ms > started + 1000
    assert timeouts[0].time_ms <= started + 1000 + ABORT_SCAN_INTERVAL_MS  # The next scan.
    settle(cluster, COMPLETE_ABORT)
    assert coordinator(cluster).txns[TXN_ID].producer_epoch == 1
    assert add(probe, node, pid, 0).error == Errors.PRODUCER_FENCED
    assert end(probe, node, pid, 0, commit=True).error == Errors.PRODUCER_FENCED


def test_the_abort_scan_leaves_young_and_idle_transactions_alone() -> None:
    cluster = new_cluster()
    probe = Probe(cluster)
    node = cluster.coordinator_of(TXN_ID)
    pid = init(probe, node, timeout_ms=60000).producer_id
    assert add(probe, node, pid, 0).error == Errors.NONE
    idle = "idle-txn"
    assert init(probe, cluster.coordinator_of(idle), idle, timeout_ms=1).error == Errors.NONE
    cluster.run_for(3 * ABORT_SCAN_INTERVAL_MS)
    assert not [e for e in cluster.world.events if e.kind == "coordinator.timeout"]
    assert coordinator(cluster).txns[TXN_ID].state == ONGOING
    assert coordinator(cluster, idle).txns[idle].state == EMPTY


def test_a_new_coordinator_reloads_the_state_from_the_transaction_log() -> None:
    cluster = new_cluster()
    probe = Probe(cluster)
    node = cluster.coordinator_of(TXN_ID)
    pid = init(probe, node).producer_id
    assert add(probe, node, pid, 0).error == Errors.NONE
    cluster.crash(f"broker-{node}")
    cluster.run_until(lambda: cluster.coordinator_of(TXN_ID) not in (-1, node), 20000)
    new = cluster.coordinator_of(TXN_ID)
    assert new not in (-1, node)
    cluster.run_for(50)  # The controller's new image reaches the new leader.
    meta = coordinator(cluster).txns[TXN_ID]
    assert (meta.producer_id, meta.producer_epoch, meta.state) == (pid, 0, ONGOING)
    assert meta.partitions == (("t", 0),)
    assert end(probe, new, pid, 0, commit=True).error == Errors.NONE
    settle(cluster, COMPLETE_COMMIT)


def test_a_marker_round_from_an_earlier_coordinator_epoch_never_writes_after_leading_again() -> (
    None
):
    """A coordinator that loses its partition with a WriteTxnMarkers request outstanding,
    and leads it again before that request times out, must not resume the old round: by
    then the transaction was completed elsewhere and the producer has a new one open on
    the same producer id and epoch, which a stale COMMIT would commit half-written."""
    cluster = new_cluster()
    producer = sim.KafkaProducer(cluster=cluster, transactional_id=TXN_ID)
    producer.init_transactions()
    old = cluster.coordinator_of(TXN_ID)
    state_key = ("__transaction_state", partition_for(TXN_ID, 50))
    successor = next(b for b in cluster.controller.partitions[state_key].replicas if b != old)
    # Data on the third broker: the lost request leaves old -> data leader silent, which
    # must not keep the old coordinator from fetching (and rejoining the ISR) meanwhile.
    partition = next(
        p
        for p in range(3)
        if cluster.controller.partitions[("t", p)].leader not in (old, successor)
    )
    data_leader = cluster.controller.partitions[("t", partition)].leader
    producer.begin_transaction()
    producer.send("t", value=b"first", partition=partition)
    producer.flush()
    # The marker request to the data leader is lost: it times out only after 30 s.
    cluster.drop(
        from_=f"broker-{old}", to=[f"broker-{data_leader}"], message="WriteTxnMarkersRequest"
    )
    producer.commit_transaction()
    # The coordinator loses its session; another broker completes the commit.
    cluster.partition(isolate=f"broker-{old}", from_="controller", duration_ms=12000)
    cluster.run_until(lambda: cluster.coordinator_of(TXN_ID) != old, 20000)
    new = cluster.coordinator_of(TXN_ID)
    assert new == successor
    cluster.run_for(500)
    producer.begin_transaction()
    producer.send("t", value=b"second", partition=partition)
    producer.flush()
    cluster.run_until(lambda: old in cluster.controller.partitions[state_key].isr, 20000)
    assert old in cluster.controller.partitions[state_key].isr, "back in the ISR"
    cluster.crash(f"broker-{new}")
    cluster.run_until(lambda: cluster.coordinator_of(TXN_ID) == old, 20000)
    assert cluster.coordinator_of(TXN_ID) == old
    lost_request_timeout_ms = 30000  # replica.socket.timeout.ms
    assert cluster.world.now_ms < lost_request_timeout_ms, "leading again before it expires"
    cluster.run_for(lost_request_timeout_ms)
    leader_now = cluster.controller.partitions[("t", partition)].leader
    log = cluster.brokers[leader_now].replicas[("t", partition)].log
    markers = [b.batch.control for b in log.batches if b.batch.control is not None]
    assert markers == ["COMMIT"], "one COMMIT, for the first transaction only"
    second_offset = log.batches[-1].base_offset
    assert log.last_stable_offset() == second_offset, "the second transaction is still open"
    assert coordinator(cluster).txns[TXN_ID].state == ONGOING
    producer.commit_transaction()
    cluster.run_for(500)
    assert [b.batch.control for b in log.batches if b.batch.control] == ["COMMIT", "COMMIT"]
    assert log.last_stable_offset() == log.hw == log.leo


def test_a_failed_complete_commit_append_is_retried_without_writing_the_markers_again() -> None:
    cluster = sim.Cluster(brokers=3, seed=1)
    cluster.create_topic("d", partitions=1, replication_factor=3, min_insync_replicas=1)
    cluster.ensure_internal_topics()
    cluster.run_for(100)
    producer = sim.KafkaProducer(cluster=cluster, transactional_id=TXN_ID)
    producer.init_transactions()
    node = cluster.coordinator_of(TXN_ID)
    producer.begin_transaction()
    producer.send("d", value=b"x")
    producer.flush()
    # Hold the markers back until the other two brokers are gone.
    others = [b for b in range(3) if b != node]
    data_leader = cluster.controller.partitions[("d", 0)].leader
    if data_leader != node:
        cluster.drop(
            from_=f"broker-{node}", to=[f"broker-{data_leader}"], message="WriteTxnMarkersRequest"
        )
    producer.commit_transaction()  # PrepareCommit is in the ISR of the transaction log.
    for other in others:
        cluster.crash(f"broker-{other}")
    # The data partition moves to the coordinator's broker (min.insync 1): markers land;
    # the transaction log (min.insync 2) cannot take CompleteCommit: it is retried.
    cluster.run_for(60000)
    log = cluster.brokers[node].replicas[("d", 0)].log
    assert cluster.controller.partitions[("d", 0)].leader == node
    assert [b.batch.control for b in log.batches if b.batch.control] == ["COMMIT"]
    assert coordinator(cluster).txns[TXN_ID].state == PREPARE_COMMIT
    for other in others:
        cluster.restart(f"broker-{other}")
    settle(cluster, COMPLETE_COMMIT)
    cluster.run_until(lambda: False, 30000)
    log = cluster.brokers[cluster.controller.partitions[("d", 0)].leader].replicas[("d", 0)].log
    assert [b.batch.control for b in log.batches if b.batch.control] == ["COMMIT"]


def test_a_deposed_coordinator_that_missed_its_replacement_cannot_commit_the_next_txn() -> None:
    """The old coordinator, cut off from the controller, the producer and its successor
    but not from the data leader, retries a lost COMMIT marker 30 s later — into the
    producer's next transaction (same producer id and epoch), opened meanwhile on the
    new coordinator. The producer then aborts that transaction: nothing of it may show."""
    cluster = new_cluster()
    producer = sim.KafkaProducer(cluster=cluster, transactional_id=TXN_ID, request_timeout_ms=5000)
    producer.init_transactions()
    old = cluster.coordinator_of(TXN_ID)
    state_key = ("__transaction_state", partition_for(TXN_ID, 50))
    successor = next(b for b in cluster.controller.partitions[state_key].replicas if b != old)
    partition = next(
        p
        for p in range(3)
        if cluster.controller.partitions[("t", p)].leader not in (old, successor)
    )
    data_leader = cluster.controller.partitions[("t", partition)].leader
    producer.begin_transaction()
    producer.send("t", value=b"first", partition=partition)
    producer.flush()
    cluster.drop(
        from_=f"broker-{old}", to=[f"broker-{data_leader}"], message="WriteTxnMarkersRequest"
    )
    producer.commit_transaction()
    cluster.partition(
        isolate=f"broker-{old}",
        from_=["controller", producer.name, f"broker-{successor}"],
        duration_ms=60000,
    )
    producer.begin_transaction()
    producer.send("t", value=b"second", partition=partition)
    producer.flush()
    assert cluster.coordinator_of(TXN_ID) == successor
    cluster.run_for(35000)  # The old coordinator's lost marker request times out; it retries.
    producer.abort_transaction()
    cluster.run_for(1000)
    log = cluster.brokers[data_leader].replicas[("t", partition)].log
    kept = log.committed_batches(log.last_stable_offset())
    assert [i for b in kept for i in b.batch.record_ids] == [0], "only the first transaction"
