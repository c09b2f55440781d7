"""The transactional producer's state machine and coordinator requests.

After the Java client's `TransactionManager` (transactional half) and
kafka-python 3.x's messages. States: UNINITIALIZED → INITIALIZING → READY
→ IN_TRANSACTION → COMMITTING_TRANSACTION / ABORTING_TRANSACTION → READY;
ABORTABLE_ERROR (a failed send, a fenced produce) allows only an abort;
FATAL_ERROR (PRODUCER_FENCED, …) is terminal.

Requests go one at a time to the coordinator (found with FindCoordinator,
looked up again after NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE):
InitProducerId, AddPartitionsToTxn before the first batch to a new partition
is drained (`isSendToPartitionAllowed`), AddOffsetsToTxn then
TxnOffsetCommit (to the group coordinator) for `send_offsets_to_transaction`,
and EndTxn once every batch of the transaction has completed. An empty
transaction skips EndTxn. CONCURRENT_TRANSACTIONS is retried after a short
backoff (20 ms for AddPartitions, as Java does).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sim import errors
from sim.protocol import (
    AddOffsetsToTxnRequest,
    AddPartitionsToTxnRequest,
    EndTxnRequest,
    Errors,
    FindCoordinatorRequest,
    InitProducerIdRequest,
    TxnOffsetCommitRequest,
)

if TYPE_CHECKING:
    from sim.client.producer import KafkaProducer

UNINITIALIZED, INITIALIZING, READY = "UNINITIALIZED", "INITIALIZING", "READY"
IN_TRANSACTION, COMMITTING, ABORTING = (
    "IN_TRANSACTION",
    "COMMITTING_TRANSACTION",
    "ABORTING_TRANSACTION",
)
ABORTABLE_ERROR, FATAL_ERROR = "ABORTABLE_ERROR", "FATAL_ERROR"

VALID_TRANSITIONS: dict[str, frozenset[str]] = {
    UNINITIALIZED: frozenset({INITIALIZING}),
    INITIALIZING: frozenset({READY, ABORTABLE_ERROR, FATAL_ERROR}),
    READY: frozenset({IN_TRANSACTION, INITIALIZING, FATAL_ERROR}),
    IN_TRANSACTION: frozenset({COMMITTING, ABORTING, ABORTABLE_ERROR, FATAL_ERROR}),
    COMMITTING: frozenset({READY, ABORTABLE_ERROR, FATAL_ERROR}),
    ABORTING: frozenset({READY, INITIALIZING, FATAL_ERROR}),
    ABORTABLE_ERROR: frozenset({ABORTING, ABORTABLE_ERROR, FATAL_ERROR}),
    FATAL_ERROR: frozenset({FATAL_ERROR}),
}
"""`TransactionState.isTransitionValid` (kafka-python transaction_manager.py)."""

FATAL_ERRORS = frozenset(
    {Errors.PRODUCER_FENCED, Errors.INVALID_PRODUCER_EPOCH, Errors.TRANSACTION_COORDINATOR_FENCED}
)
RETRY_COORDINATOR = frozenset(
    {
        Errors.NOT_COORDINATOR,
        Errors.COORDINATOR_NOT_AVAILABLE,
        Errors.COORDINATOR_LOAD_IN_PROGRESS,
        Errors.REQUEST_TIMED_OUT,
        Errors.NETWORK_EXCEPTION,
    }
)
ADD_PARTITIONS_RETRY_MS = 20.0
FATAL_FOR_REQUEST: dict[str, frozenset[Errors]] = {
    "AddPartitionsToTxn": frozenset({Errors.INVALID_TXN_STATE, Errors.INVALID_PRODUCER_ID_MAPPING}),
    "EndTxn": frozenset({Errors.INVALID_TXN_STATE}),
}
"""Errors fatal for one request only: kafka-python's `AddPartitionsToTxnHandler` and
`EndTxnHandler` (as Java's `TransactionManager`) call `fatal_error` for them."""


@dataclass
class TxnResult:
    """What a transactional call waits on (kafka-python's TransactionalRequestResult)."""

    done: bool = False
    error: errors.KafkaError | None = None

    def succeed(self) -> None:
        self.done = True

    def fail(self, error: errors.KafkaError) -> None:
        self.done = True
        self.error = error


@dataclass
class _Request:
    """A queued coordinator request: what to send and how to handle the answer."""

    name: str
    build: Callable[[int], Any]
    on_response: Callable[[Any], None]
    target: str = "transaction"  # which coordinator: "transaction" or "group"
    group_id: str | None = None
    not_before_ms: float = 0.0
    result: TxnResult = field(default_factory=TxnResult)


class TransactionalClient:
    """The producer's transaction state machine (one per transactional producer)."""

    def __init__(self, producer: KafkaProducer, transactional_id: str, timeout_ms: float) -> None:
        self.producer = producer
        self.world = producer.world
        self.transactional_id = transactional_id
        self.timeout_ms = timeout_ms
        self.state = UNINITIALIZED
        self.last_error: errors.KafkaError | None = None
        self.coordinator: dict[str, int] = {}
        self.queue: deque[_Request] = deque()
        self.in_flight = False
        self.partitions: set[tuple[str, int]] = set()
        self.new_partitions: list[tuple[str, int]] = []
        self.pending_partitions: list[tuple[str, int]] = []
        """Partitions in an AddPartitionsToTxn request not answered yet."""
        self.offsets_added = False
        self.history_txn = -1
        self.end_result: TxnResult | None = None
        self.end_commit = False
        self._find_attempts = 0

    # --- state -----------------------------------------------------------------------

    def transition(self, target: str, error: errors.KafkaError | None = None) -> None:
        if target not in VALID_TRANSITIONS[self.state]:
            raise errors.KafkaError(
                f"TransactionalId {self.transactional_id}: Invalid transition attempted from state "
                f"{self.state} to state {target}"
            )
        self.last_error = error if target in (ABORTABLE_ERROR, FATAL_ERROR) else None
        self.world.trace(
            "producer.txn_state",
            producer=self.producer.name,
            state=target,
            error=None if error is None else type(error).__name__,
        )
        self.state = target

    def has_error(self) -> bool:
        return self.state in (ABORTABLE_ERROR, FATAL_ERROR)

    def abortable(self, error: errors.KafkaError) -> None:
        if self.state == FATAL_ERROR:
            return
        if self.state in (IN_TRANSACTION, COMMITTING, ABORTABLE_ERROR, INITIALIZING):
            self.transition(ABORTABLE_ERROR, error)

    def fatal(self, error: errors.KafkaError) -> None:
        self.transition(FATAL_ERROR, error)
        for request in self.queue:
            request.result.fail(error)
        self.queue.clear()
        if self.end_result is not None and not self.end_result.done:
            self.end_result.fail(error)
            self._finish_history("unknown")

    def maybe_fail_with_error(self) -> None:
        if self.has_error():
            raise errors.KafkaError(
                f"Cannot execute transactional method because we are in an error state: {self.last_error}"
            )

    # --- the API's side ----------------------------------------------------------------

    def initialize(self) -> TxnResult:
        self.maybe_fail_with_error()
        self.transition(INITIALIZING)
        txn = self.producer.txn_manager
        assert txn is not None
        txn.set_producer_id(-1, -1)

        def on_response(response: Any) -> None:
            if response.error == Errors.NONE:
                txn.set_producer_id(response.producer_id, response.producer_epoch)
                self.world.trace(
                    "producer.pid",
                    producer=self.producer.name,
                    producer_id=response.producer_id,
                    epoch=response.producer_epoch,
                )
                self.transition(READY)
                request.result.succeed()
            elif not self._retry(request, response.error):
                self.fatal(errors.for_code(response.error))

        request = _Request(
            "InitProducerId",
            lambda rid: InitProducerIdRequest(rid, self.transactional_id, self.timeout_ms),
            on_response,
        )
        self.queue.append(request)
        return request.result

    def begin(self) -> None:
        self.maybe_fail_with_error()
        if self.state != READY:
            raise errors.IllegalStateError(
                f"TransactionalId {self.transactional_id}: Invalid transition attempted from state {self.state} to state {IN_TRANSACTION}"
            )
        self.transition(IN_TRANSACTION)
        txn = self.producer.txn_manager
        assert txn is not None
        self.history_txn = self.producer.history.begin_txn(
            self.producer.name, txn.producer_id, txn.producer_epoch
        )

    def fail_if_not_ready_for_send(self) -> None:
        if self.has_error():
            raise errors.KafkaError(
                "Cannot perform send because at least one previous transactional or idempotent request "
                f"has failed with errors. {self.last_error}"
            )
        txn = self.producer.txn_manager
        if txn is None or not txn.has_producer_id:
            raise errors.IllegalStateError(
                "Cannot perform a 'send' before completing a call to init_transactions when transactions are enabled."
            )
        if self.state != IN_TRANSACTION:
            raise errors.IllegalStateError(f"Cannot call send in state {self.state}")

    def maybe_add_partition(self, key: tuple[str, int]) -> None:
        if key in self.partitions or key in self.new_partitions or key in self.pending_partitions:
            return
        self.new_partitions.append(key)

    def is_send_to_partition_allowed(self, key: tuple[str, int]) -> bool:
        return self.state != FATAL_ERROR and key in self.partitions

    def send_offsets(self, offsets: dict[tuple[str, int], int], group_id: str) -> TxnResult:
        self.maybe_fail_with_error()
        if self.state != IN_TRANSACTION:
            raise errors.KafkaError(
                "Cannot send offsets to transaction because the producer is not in an active transaction"
            )
        txn = self.producer.txn_manager
        assert txn is not None
        result = TxnResult()

        def on_add(response: Any) -> None:
            if response.error == Errors.NONE:
                self.offsets_added = True
                self.queue.appendleft(commit_request)
            elif not self._retry(add_request, response.error):
                self._error(response.error, add_request)

        def on_commit(response: Any) -> None:
            if response.error == Errors.NONE:
                result.succeed()
            elif not self._retry(commit_request, response.error):
                self._error(response.error, commit_request)

        entries = tuple(sorted((t, p, o) for (t, p), o in offsets.items()))
        add_request = _Request(
            "AddOffsetsToTxn",
            lambda rid: AddOffsetsToTxnRequest(
                rid, self.transactional_id, txn.producer_id, txn.producer_epoch, group_id
            ),
            on_add,
            result=result,
        )
        commit_request = _Request(
            "TxnOffsetCommit",
            lambda rid: TxnOffsetCommitRequest(
                rid, self.transactional_id, group_id, txn.producer_id, txn.producer_epoch, entries
            ),
            on_commit,
            target="group",
            group_id=group_id,
            result=result,
        )
        self.queue.append(add_request)
        return result

    def begin_end(self, commit: bool) -> TxnResult:
        """commit_transaction / abort_transaction: EndTxn once every batch is done."""
        if commit:
            self.maybe_fail_with_error()
            if self.state != IN_TRANSACTION:
                raise errors.KafkaError(
                    f"TransactionalId {self.transactional_id}: Invalid transition attempted from state {self.state} to state {COMMITTING}"
                )
            self.transition(COMMITTING)
        else:
            if self.state == FATAL_ERROR:
                self.maybe_fail_with_error()
            if self.state not in (IN_TRANSACTION, ABORTABLE_ERROR):
                raise errors.KafkaError(
                    f"TransactionalId {self.transactional_id}: Invalid transition attempted from state {self.state} to state {ABORTING}"
                )
            self.transition(ABORTING)
            self.new_partitions.clear()  # Aborting: no need to add partitions (kafka-python).
            self.producer.abort_undrained_batches()
        self.end_commit = commit
        self.end_result = TxnResult()
        return self.end_result

    # --- the Sender's side ------------------------------------------------------------------

    def poll(self, now: float) -> float:
        """Send the next coordinator request if none is in flight; ms until next look."""
        if self.in_flight or self.state == FATAL_ERROR:
            return 1000.0
        if (
            self.new_partitions
            and self.state in (IN_TRANSACTION, COMMITTING)
            and not self._queued("AddPartitionsToTxn")
        ):
            self._queue_add_partitions()
        wait = 1000.0
        if self.end_result is not None and not self.end_result.done and not self._queued("EndTxn"):
            wait = self._maybe_queue_end() or wait
        if not self.queue:
            return wait
        request = self.queue[0]
        if request.not_before_ms > now:
            return min(wait, request.not_before_ms - now)
        coordinator = self.coordinator.get(request.target)
        if coordinator is None:
            return self._find_coordinator(request)
        self.queue.popleft()
        self._send(request, f"broker-{coordinator}")
        return 1000.0

    def _queued(self, name: str) -> bool:
        return any(r.name == name for r in self.queue)

    def _queue_add_partitions(self) -> None:
        txn = self.producer.txn_manager
        assert txn is not None
        parts = tuple(sorted(self.new_partitions))
        self.pending_partitions += parts
        self.new_partitions = []

        def on_response(response: Any) -> None:
            if response.error == Errors.NONE:
                self.partitions.update(parts)
                self.pending_partitions = [k for k in self.pending_partitions if k not in parts]
                self.producer.sender.wake()
            elif response.error == Errors.CONCURRENT_TRANSACTIONS:
                request.not_before_ms = self.world.now_ms + ADD_PARTITIONS_RETRY_MS
                self.queue.appendleft(request)
            elif not self._retry(request, response.error):
                self.pending_partitions = [k for k in self.pending_partitions if k not in parts]
                self._error(response.error, request)

        request = _Request(
            "AddPartitionsToTxn",
            lambda rid: AddPartitionsToTxnRequest(
                rid, self.transactional_id, txn.producer_id, txn.producer_epoch, parts
            ),
            on_response,
        )
        self.queue.appendleft(request)

    def _maybe_queue_end(self) -> float:
        """Queue EndTxn once the transaction's batches are all complete (0), or wait."""
        if (
            self.producer.accumulator.has_incomplete()
            or self.new_partitions
            or self.pending_partitions
        ):
            return 0.0 if not self.producer.accumulator.has_incomplete() else 10.0
        result = self.end_result
        assert result is not None
        if self.end_commit and self.state == ABORTABLE_ERROR:
            result.fail(self.last_error or errors.KafkaError("abortable error"))
            return 0.0
        if not self.partitions and not self.offsets_added:
            self._complete_end()  # An empty transaction needs no EndTxn.
            return 0.0
        txn = self.producer.txn_manager
        assert txn is not None
        commit = self.end_commit

        def on_response(response: Any) -> None:
            if response.error == Errors.NONE:
                self._complete_end()
            elif not self._retry(request, response.error):
                self._error(response.error, request)
                if not result.done:
                    result.fail(errors.for_code(response.error))
                    self._finish_history("unknown")

        request = _Request(
            "EndTxn",
            lambda rid: EndTxnRequest(
                rid, self.transactional_id, txn.producer_id, txn.producer_epoch, commit
            ),
            on_response,
            result=result,
        )
        self.queue.append(request)
        return 0.0

    def _complete_end(self) -> None:
        assert self.end_result is not None
        self._finish_history("commit" if self.end_commit else "abort")
        self.partitions.clear()
        self.offsets_added = False
        self.transition(READY)
        self.end_result.succeed()

    def _finish_history(self, outcome: str) -> None:
        if self.history_txn >= 0:
            self.producer.history.end_txn(self.history_txn, outcome)
            self.history_txn = -1

    def _retry(self, request: _Request, error: Errors) -> bool:
        """Re-queue a request after a retriable coordinator error; False if not retriable."""
        if error in RETRY_COORDINATOR:
            self.coordinator.pop(request.target, None)
        elif error != Errors.CONCURRENT_TRANSACTIONS:
            return False
        request.not_before_ms = self.world.now_ms + self.producer.config.retry_backoff_ms
        self.queue.appendleft(request)
        return True

    def _error(self, error: Errors, request: _Request) -> None:
        exception = errors.for_code(error)
        if error in FATAL_ERRORS or error in FATAL_FOR_REQUEST.get(request.name, ()):
            self.fatal(exception)
        else:
            self.abortable(exception)
        if not request.result.done:
            request.result.fail(exception)

    def _send(self, request: _Request, target: str) -> None:
        rpc = self.producer.rpc
        self.in_flight = True

        def on_response(response: Any) -> None:
            self.in_flight = False
            request.on_response(response)
            self.producer.sender.wake()

        def on_error(error: Errors) -> None:
            self.in_flight = False
            self._retry(request, error)
            self.producer.sender.wake()

        rpc.call(
            target,
            request.build(rpc.next_request_id()),
            self.producer.config.request_timeout_ms,
            on_response,
            on_error,
        )

    def _find_coordinator(self, request: _Request) -> float:
        """FindCoordinator from any live broker (rotating); retried after backoff."""
        image = self.producer.metadata.image
        if image is None or not image.live_brokers:
            self.producer.metadata.request_update()
            return self.producer.config.retry_backoff_ms
        brokers = image.live_brokers
        target = f"broker-{brokers[self._find_attempts % len(brokers)]}"
        self._find_attempts += 1
        key = self.transactional_id if request.target == "transaction" else request.group_id
        assert key is not None
        kind = request.target
        self.in_flight = True

        def on_response(response: Any) -> None:
            self.in_flight = False
            if response.error == Errors.NONE:
                self.coordinator[kind] = response.node
            else:
                request.not_before_ms = self.world.now_ms + self.producer.config.retry_backoff_ms
            self.producer.sender.wake()

        def on_error(_error: Errors) -> None:
            self.in_flight = False
            request.not_before_ms = self.world.now_ms + self.producer.config.retry_backoff_ms
            self.producer.sender.wake()

        rpc = self.producer.rpc
        rpc.call(
            target,
            FindCoordinatorRequest(rpc.next_request_id(), key, kind),
            self.producer.config.request_timeout_ms,
            on_response,
            on_error,
        )
        return 1000.0

    # --- produce outcomes ---------------------------------------------------------------------

    def on_batch_failed(self, error: Errors) -> None:
        """A failed batch puts a transactional producer into (abortable or fatal) error."""
        exception = errors.for_code(error)
        if error == Errors.PRODUCER_FENCED:
            self.fatal(exception)
        else:
            self.abortable(exception)
