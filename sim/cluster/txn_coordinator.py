"""The transaction coordinator (KIP-98), one per broker, for the
`__transaction_state` partitions that broker leads.

After Kafka's `TransactionCoordinator`, `TransactionStateManager` and
`TransactionMetadata` (SEMANTICS.md §7):

- The coordinator of a transactional id is the leader of partition
  `Utils.abs(String.hashCode(id)) % transaction.state.log.num.partitions` —
  Java's String hash over UTF-16 units, and `Utils.abs`, which maps
  Integer.MIN_VALUE to 0. It moves with that partition's leadership.
- Every state change is a record appended to that partition and acknowledged
  by its ISR (acks=all) before the coordinator acts on it, so a new
  coordinator rebuilds the state by replaying the log and finishes any
  transaction left in PrepareCommit/PrepareAbort.
- EndTxn is answered once PrepareCommit/PrepareAbort is durable; the
  markers (WriteTxnMarkers) and CompleteCommit/CompleteAbort follow.
- InitProducerId bumps the epoch, fencing older instances; an Ongoing
  transaction is first fenced and aborted (PrepareEpochFence) and the client
  is told CONCURRENT_TRANSACTIONS, so it retries.
- Every `abort scan interval` (10 s) Ongoing transactions older than their
  timeout are fenced and aborted.

Left out: transactional id expiry, KIP-890's epoch bump per transaction and
partition verification, and the partition-side check of the coordinator epoch
markers carry (TRANSACTION_COORDINATOR_FENCED): a deposed coordinator that has
not heard it was replaced can still write a stale marker. A coordinator does
abandon its marker rounds when it stops leading (or reloads) its partition.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from sim.protocol import (
    NO_PRODUCER_ID,
    AddOffsetsToTxnRequest,
    AddOffsetsToTxnResponse,
    AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse,
    EndTxnRequest,
    EndTxnResponse,
    Errors,
    InitProducerIdRequest,
    InitProducerIdResponse,
    TxnMarker,
    WriteTxnMarkersResponse,
)

if TYPE_CHECKING:
    from sim.cluster.broker import Broker

TXN_STATE_TOPIC = "__transaction_state"
OFFSETS_TOPIC = "__consumer_offsets"
ABORT_SCAN_INTERVAL_MS = 10000.0
TRANSACTION_MAX_TIMEOUT_MS = 900000.0
MARKER_RETRY_BACKOFF_MS = 100.0
MAX_EPOCH = 32767

EMPTY, ONGOING, PREPARE_COMMIT, PREPARE_ABORT = "Empty", "Ongoing", "PrepareCommit", "PrepareAbort"
COMPLETE_COMMIT, COMPLETE_ABORT, DEAD, PREPARE_EPOCH_FENCE = (
    "CompleteCommit",
    "CompleteAbort",
    "Dead",
    "PrepareEpochFence",
)

VALID_PREVIOUS: dict[str, frozenset[str]] = {
    EMPTY: frozenset({EMPTY, COMPLETE_COMMIT, COMPLETE_ABORT}),
    ONGOING: frozenset({ONGOING, EMPTY, COMPLETE_COMMIT, COMPLETE_ABORT}),
    PREPARE_COMMIT: frozenset({ONGOING}),
    PREPARE_ABORT: frozenset({ONGOING, PREPARE_EPOCH_FENCE}),
    COMPLETE_COMMIT: frozenset({PREPARE_COMMIT}),
    COMPLETE_ABORT: frozenset({PREPARE_ABORT}),
    DEAD: frozenset({EMPTY, COMPLETE_ABORT, COMPLETE_COMMIT}),
    PREPARE_EPOCH_FENCE: frozenset({ONGOING}),
}
"""`TransactionState.validPreviousStates` (TransactionMetadata.scala)."""


def java_string_hashcode(text: str) -> int:
    """Java's `String.hashCode`: h = 31*h + c over UTF-16 code units, 32-bit signed."""
    h = 0
    data = text.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def kafka_abs(n: int) -> int:
    """Kafka's `Utils.abs`: like abs, but Integer.MIN_VALUE maps to 0."""
    return 0 if n == -(1 << 31) else abs(n)


def partition_for(key: str, num_partitions: int) -> int:
    """The `__transaction_state` (or `__consumer_offsets`) partition of a key."""
    assert num_partitions > 0
    return kafka_abs(java_string_hashcode(key)) % num_partitions


def can_transition(old: str, new: str) -> bool:
    return old in VALID_PREVIOUS[new]


@dataclass(frozen=True)
class TxnMetadata:
    """The coordinator's record of one transactional id."""

    transactional_id: str
    producer_id: int
    producer_epoch: int
    timeout_ms: float
    state: str
    partitions: tuple[tuple[str, int], ...] = ()
    start_ms: float = -1.0

    def as_payload(self) -> tuple[Any, ...]:
        return (
            "txn",
            self.transactional_id,
            self.producer_id,
            self.producer_epoch,
            self.timeout_ms,
            self.state,
            self.partitions,
            self.start_ms,
        )

    @classmethod
    def from_payload(cls, payload: tuple[Any, ...]) -> TxnMetadata:
        assert payload[0] == "txn", payload
        return cls(*payload[1:])


class TransactionCoordinator:
    """The coordinator half of a broker: state per transactional id it owns."""

    def __init__(self, broker: Broker, num_partitions: int) -> None:
        self.broker = broker
        self.num_partitions = num_partitions
        self.txns: dict[str, TxnMetadata] = {}
        self.pending: dict[str, str] = {}  # transactional id -> state being written
        self.loaded: dict[int, int] = {}  # txn-state partition -> leader epoch it was loaded at
        self.markers_in_flight: dict[str, int] = {}
        """Transactional id -> the marker round under way (its number in `_rounds`)."""
        self._rounds = 0

    # --- ownership -----------------------------------------------------------------

    def partition_of(self, transactional_id: str) -> int:
        return partition_for(transactional_id, self.num_partitions)

    def owns(self, transactional_id: str) -> bool:
        return self.partition_of(transactional_id) in self.loaded

    def on_leadership(self, partition: int, leader_epoch: int, is_leader: bool) -> None:
        """Load a partition's state when we lead it; forget it when we stop."""
        if self.loaded.get(partition) != leader_epoch or not is_leader:
            # Kafka's `removeMarkersForTxnTopicPartition`: marker rounds started under an
            # earlier coordinator epoch are abandoned (they stop at their next step), so a
            # round resumed after we lead again can never write a stale COMMIT/ABORT.
            for txn_id in [
                t for t in sorted(self.markers_in_flight) if self.partition_of(t) == partition
            ]:
                self.markers_in_flight.pop(txn_id)
        if not is_leader:
            if self.loaded.pop(partition, None) is not None:
                for txn_id in [t for t in sorted(self.txns) if self.partition_of(t) == partition]:
                    self.txns.pop(txn_id)
                    self.pending.pop(txn_id, None)
            return
        if self.loaded.get(partition) == leader_epoch:
            return
        self.loaded[partition] = leader_epoch
        replica = self.broker.replicas[(TXN_STATE_TOPIC, partition)]
        for log_batch in replica.log.batches:
            for record in log_batch.batch.payload:
                meta = TxnMetadata.from_payload(record)
                self.txns[meta.transactional_id] = meta
        self.broker.world.trace(
            "coordinator.load", broker=self.broker.id, partition=partition, epoch=leader_epoch
        )
        for txn_id in sorted(self.txns):
            meta = self.txns[txn_id]
            if self.partition_of(txn_id) == partition and meta.state in (
                PREPARE_COMMIT,
                PREPARE_ABORT,
            ):
                self._send_markers(meta)

    def clear(self) -> None:
        """The broker crashed: everything in memory is gone."""
        self.txns.clear()
        self.pending.clear()
        self.loaded.clear()
        self.markers_in_flight.clear()

    # --- persistence -------------------------------------------------------------------

    def _persist(self, meta: TxnMetadata, done: Callable[[Errors], None]) -> None:
        """Append the new state; apply it once the ISR has it (acks=all)."""
        txn_id = meta.transactional_id
        assert txn_id not in self.pending, f"concurrent transition for {txn_id}"
        old = self.txns.get(txn_id)
        assert old is None or can_transition(old.state, meta.state), (old, meta)
        self.pending[txn_id] = meta.state
        key = (TXN_STATE_TOPIC, self.partition_of(txn_id))
        epoch = self.loaded.get(key[1])

        def on_append(error: Errors, _offset: int) -> None:
            self.pending.pop(txn_id, None)
            if self.loaded.get(key[1]) != epoch:
                done(Errors.NOT_COORDINATOR)
                return
            if error == Errors.NONE:
                self.txns[txn_id] = meta
                self.broker.world.trace(
                    "coordinator.state",
                    broker=self.broker.id,
                    transactional_id=txn_id,
                    state=meta.state,
                    producer_id=meta.producer_id,
                    epoch=meta.producer_epoch,
                )
                done(Errors.NONE)
            elif error in (
                Errors.NOT_ENOUGH_REPLICAS,
                Errors.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
                Errors.REQUEST_TIMED_OUT,
            ):
                done(Errors.COORDINATOR_NOT_AVAILABLE)  # `appendTransactionToLog`'s mapping
            else:
                done(Errors.NOT_COORDINATOR)

        self.broker.append_internal(key, (meta.as_payload(),), on_append)

    # --- requests --------------------------------------------------------------------------

    def _reply(self, source: str, response: Any) -> None:
        self.broker.net.send(self.broker.name, source, response)

    def _check_owner(self, txn_id: str) -> Errors:
        if not self.owns(txn_id):
            return Errors.NOT_COORDINATOR
        if txn_id in self.pending:
            return Errors.CONCURRENT_TRANSACTIONS
        return Errors.NONE

    def handle_init_producer_id(self, source: str, request: InitProducerIdRequest) -> None:
        txn_id = request.transactional_id
        assert txn_id is not None
        rid = request.request_id
        if (
            request.transaction_timeout_ms > TRANSACTION_MAX_TIMEOUT_MS
            or request.transaction_timeout_ms <= 0
        ):
            self._reply(source, InitProducerIdResponse(rid, Errors.INVALID_TRANSACTION_TIMEOUT))
            return
        error = self._check_owner(txn_id)
        if error != Errors.NONE:
            self._reply(source, InitProducerIdResponse(rid, error))
            return
        meta = self.txns.get(txn_id)
        if meta is None:
            producer_id = self.broker.allocate_producer_id()
            new = TxnMetadata(txn_id, producer_id, 0, request.transaction_timeout_ms, EMPTY)
        elif meta.state in (PREPARE_COMMIT, PREPARE_ABORT):
            self._reply(source, InitProducerIdResponse(rid, Errors.CONCURRENT_TRANSACTIONS))
            return
        elif meta.state == ONGOING:
            self._fence_and_abort(meta)
            self._reply(source, InitProducerIdResponse(rid, Errors.CONCURRENT_TRANSACTIONS))
            return
        elif meta.producer_epoch + 1 >= MAX_EPOCH:
            new = TxnMetadata(
                txn_id, self.broker.allocate_producer_id(), 0, request.transaction_timeout_ms, EMPTY
            )
        else:
            new = replace(
                meta,
                producer_epoch=meta.producer_epoch + 1,
                timeout_ms=request.transaction_timeout_ms,
                state=EMPTY,
                partitions=(),
                start_ms=-1.0,
            )

        def done(error: Errors) -> None:
            if error == Errors.NONE:
                self._reply(
                    source,
                    InitProducerIdResponse(rid, Errors.NONE, new.producer_id, new.producer_epoch),
                )
            else:
                self._reply(source, InitProducerIdResponse(rid, error))

        self._persist(new, done)

    def _validate_producer(
        self, txn_id: str, producer_id: int, epoch: int
    ) -> tuple[Errors, TxnMetadata | None]:
        error = self._check_owner(txn_id)
        if error != Errors.NONE:
            return error, None
        meta = self.txns.get(txn_id)
        if meta is None or meta.producer_id != producer_id:
            return Errors.INVALID_PRODUCER_ID_MAPPING, None
        if epoch < meta.producer_epoch:
            return Errors.PRODUCER_FENCED, None
        if epoch > meta.producer_epoch:
            return Errors.INVALID_PRODUCER_EPOCH, None
        if meta.state in (PREPARE_COMMIT, PREPARE_ABORT, PREPARE_EPOCH_FENCE):
            return Errors.CONCURRENT_TRANSACTIONS, None
        return Errors.NONE, meta

    def handle_add_partitions(self, source: str, request: AddPartitionsToTxnRequest) -> None:
        error, meta = self._validate_producer(
            request.transactional_id, request.producer_id, request.producer_epoch
        )
        if meta is None:
            self._reply(source, AddPartitionsToTxnResponse(request.request_id, error))
            return
        self._add_partitions(
            source,
            meta,
            request.partitions,
            lambda e: AddPartitionsToTxnResponse(request.request_id, e),
        )

    def handle_add_offsets(self, source: str, request: AddOffsetsToTxnRequest) -> None:
        error, meta = self._validate_producer(
            request.transactional_id, request.producer_id, request.producer_epoch
        )
        if meta is None:
            self._reply(source, AddOffsetsToTxnResponse(request.request_id, error))
            return
        group_partition = partition_for(request.group_id, self.broker.offsets_partitions)
        self._add_partitions(
            source,
            meta,
            ((OFFSETS_TOPIC, group_partition),),
            lambda e: AddOffsetsToTxnResponse(request.request_id, e),
        )

    def _add_partitions(
        self,
        source: str,
        meta: TxnMetadata,
        partitions: tuple[tuple[str, int], ...],
        make_response: Callable[[Errors], Any],
    ) -> None:
        merged = tuple(sorted(set(meta.partitions) | set(partitions)))
        if meta.state == ONGOING and merged == meta.partitions:
            self._reply(source, make_response(Errors.NONE))
            return
        start = meta.start_ms if meta.state == ONGOING else self.broker.world.now_ms
        new = replace(meta, state=ONGOING, partitions=merged, start_ms=start)
        self._persist(new, lambda e: self._reply(source, make_response(e)))

    def handle_end_txn(self, source: str, request: EndTxnRequest) -> None:
        txn_id = request.transactional_id
        rid = request.request_id
        error, meta = self._validate_producer(txn_id, request.producer_id, request.producer_epoch)
        if meta is None:
            current = self.txns.get(txn_id)
            if (
                current is not None
                and error == Errors.CONCURRENT_TRANSACTIONS
                and txn_id not in self.pending
                and current.producer_epoch == request.producer_epoch
                and current.state in (PREPARE_COMMIT, PREPARE_ABORT)
            ):
                # Kafka's `endTransaction`: in PrepareCommit (PrepareAbort) a retried
                # EndTxn of the same decision is CONCURRENT_TRANSACTIONS, so the client
                # retries until CompleteCommit (CompleteAbort) answers NONE; the opposite
                # decision is INVALID_TXN_STATE (`logInvalidStateTransitionAndReturnError`).
                same = current.state == (PREPARE_COMMIT if request.commit else PREPARE_ABORT)
                error = Errors.CONCURRENT_TRANSACTIONS if same else Errors.INVALID_TXN_STATE
            self._reply(source, EndTxnResponse(rid, error))
            return
        target = PREPARE_COMMIT if request.commit else PREPARE_ABORT
        finished = COMPLETE_COMMIT if request.commit else COMPLETE_ABORT
        if meta.state == finished:
            self._reply(source, EndTxnResponse(rid, Errors.NONE))
            return
        if meta.state != ONGOING:
            self._reply(source, EndTxnResponse(rid, Errors.INVALID_TXN_STATE))
            return
        new = replace(meta, state=target)

        def done(error: Errors) -> None:
            self._reply(source, EndTxnResponse(rid, error))
            if error == Errors.NONE:
                self._send_markers(new)

        self._persist(new, done)

    # --- aborts and markers ------------------------------------------------------------------

    def _fence_and_abort(self, meta: TxnMetadata) -> None:
        """PrepareEpochFence: bump the epoch (fencing the producer) and abort."""
        if meta.transactional_id in self.pending:
            return
        self.broker.world.trace(
            "coordinator.fence",
            broker=self.broker.id,
            transactional_id=meta.transactional_id,
            epoch=meta.producer_epoch + 1,
        )
        new = replace(meta, producer_epoch=meta.producer_epoch + 1, state=PREPARE_ABORT)

        def done(error: Errors) -> None:
            if error == Errors.NONE:
                self._send_markers(new)

        self._persist(new, done)

    def abort_timed_out(self) -> None:
        """The periodic abort scan (`abortTimedOutTransactions`)."""
        now = self.broker.world.now_ms
        for txn_id in sorted(self.txns):
            meta = self.txns[txn_id]
            if (
                self.owns(txn_id)
                and meta.state == ONGOING
                and meta.start_ms + meta.timeout_ms < now
            ):
                self.broker.world.trace(
                    "coordinator.timeout", broker=self.broker.id, transactional_id=txn_id
                )
                self._fence_and_abort(meta)

    def _send_markers(self, meta: TxnMetadata) -> None:
        """Write COMMIT/ABORT markers to every partition, then complete the transaction."""
        txn_id = meta.transactional_id
        if self.markers_in_flight.get(txn_id) is not None or self.txns.get(txn_id) != meta:
            return  # A round is under way, or `meta` is no longer the decided state.
        self._rounds += 1
        round_id = self._rounds
        self.markers_in_flight[txn_id] = round_id
        commit = meta.state == PREPARE_COMMIT
        remaining = list(meta.partitions)
        incarnation = self.broker.incarnation
        coordinator_epoch = self.loaded.get(self.partition_of(txn_id))
        world = self.broker.world

        def round_trip() -> None:
            if (
                not self.broker.running(incarnation)
                or self.loaded.get(self.partition_of(txn_id)) != coordinator_epoch
                or self.markers_in_flight.get(txn_id) != round_id
            ):
                if self.markers_in_flight.get(txn_id) == round_id:
                    self.markers_in_flight.pop(txn_id)
                return
            if not remaining:
                self.markers_in_flight.pop(txn_id, None)
                self._complete(meta, coordinator_epoch)
                return
            by_leader: dict[int, list[tuple[str, int]]] = {}
            for key in remaining:
                by_leader.setdefault(self.broker.leader_of(key), []).append(key)
            outstanding = [len(by_leader)]

            def finished_one() -> None:
                outstanding[0] -= 1
                if outstanding[0] == 0:
                    world.call_later(0 if not remaining else MARKER_RETRY_BACKOFF_MS, round_trip)

            for leader in sorted(by_leader):
                keys = tuple(by_leader[leader])
                if leader < 0:
                    finished_one()
                    continue
                marker = TxnMarker(
                    meta.producer_id, meta.producer_epoch, commit, coordinator_epoch or 0, keys
                )
                self.broker.send_markers(
                    leader,
                    marker,
                    lambda response, keys=keys: _on_result(response, keys, finished_one),
                    lambda _error: finished_one(),
                )

        def _on_result(
            response: WriteTxnMarkersResponse,
            keys: tuple[tuple[str, int], ...],
            finished_one: Callable[[], None],
        ) -> None:
            for topic, partition, error in response.results:
                if error == Errors.NONE and (topic, partition) in remaining:
                    remaining.remove((topic, partition))
            finished_one()

        round_trip()

    def _complete(self, meta: TxnMetadata, coordinator_epoch: int | None) -> None:
        """Append CompleteCommit/CompleteAbort once every marker is written.

        As Kafka's `TransactionMarkerChannelManager.appendToLogCallback`, a failed
        append is retried while we still lead the partition at the same epoch, and
        dropped once we do not (the next coordinator finishes the transaction from
        the log); the markers are not sent again — a coordinator cut off from the
        rest of the cluster would otherwise keep writing them, long after it was
        replaced.
        """
        txn_id = meta.transactional_id
        final = replace(
            meta,
            state=COMPLETE_COMMIT if meta.state == PREPARE_COMMIT else COMPLETE_ABORT,
            partitions=(),
        )

        def still_ours() -> bool:
            return (
                self.txns.get(txn_id) == meta
                and self.loaded.get(self.partition_of(txn_id)) == coordinator_epoch
            )

        def attempt() -> None:
            if not still_ours():
                return
            if txn_id in self.pending:
                self.broker.world.call_later(MARKER_RETRY_BACKOFF_MS, attempt)
                return
            self._persist(final, done)

        def done(error: Errors) -> None:
            if error != Errors.NONE:  # `attempt` gives up once the partition is not ours.
                self.broker.world.call_later(MARKER_RETRY_BACKOFF_MS, attempt)

        attempt()


__all__ = [
    "NO_PRODUCER_ID",
    "TXN_STATE_TOPIC",
    "OFFSETS_TOPIC",
    "TransactionCoordinator",
    "TxnMetadata",
    "java_string_hashcode",
    "kafka_abs",
    "partition_for",
    "can_transition",
]
