"""The transactional and consumer-facing requests a broker serves.

Kept apart from `broker.py` (produce, replication, metadata) so each file
has one job. A broker answers:

- FindCoordinator: the leader of the key's `__transaction_state` or
  `__consumer_offsets` partition, from its metadata image;
- the coordinator requests (InitProducerId with a transactional id,
  AddPartitionsToTxn, AddOffsetsToTxn, EndTxn) through its
  `TransactionCoordinator`, TxnOffsetCommit and OffsetFetch through its
  `GroupCoordinator`;
- WriteTxnMarkers: appends a COMMIT/ABORT control batch to each partition it
  leads, with acks=all (`ReplicaManager.appendRecords` for markers), and
  rejects a marker whose producer epoch is older than the partition's;
- consumer Fetch: batches up to the HW, with the last stable offset and the
  aborted transactions overlapping the range, for read_committed readers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sim.cluster.group_coordinator import GroupCoordinator
from sim.cluster.partition import LEADER
from sim.cluster.txn_coordinator import (
    OFFSETS_TOPIC,
    TXN_STATE_TOPIC,
    TransactionCoordinator,
    partition_for,
)
from sim.protocol import (
    AddOffsetsToTxnRequest,
    AddPartitionsToTxnRequest,
    ConsumerFetchData,
    ConsumerFetchRequest,
    ConsumerFetchResponse,
    EndTxnRequest,
    Errors,
    FindCoordinatorRequest,
    FindCoordinatorResponse,
    InitProducerIdRequest,
    OffsetFetchRequest,
    RecordBatch,
    TxnMarker,
    TxnOffsetCommitRequest,
    WriteTxnMarkersRequest,
    WriteTxnMarkersResponse,
)

if TYPE_CHECKING:
    from sim.cluster.broker import Broker

CONTROL_BATCH_BYTES = 78
"""Size of a control batch on the wire: a batch header and one small record."""


class TxnRequests:
    """Dispatch for a broker's transactional and consumer requests."""

    def __init__(self, broker: Broker, txn_partitions: int, offsets_partitions: int) -> None:
        self.broker = broker
        self.coordinator = TransactionCoordinator(broker, txn_partitions)
        self.groups = GroupCoordinator(broker, offsets_partitions)
        self.handlers: dict[type, Callable[[str, Any], None]] = {
            FindCoordinatorRequest: self.handle_find_coordinator,
            AddPartitionsToTxnRequest: self.coordinator.handle_add_partitions,
            AddOffsetsToTxnRequest: self.coordinator.handle_add_offsets,
            EndTxnRequest: self.coordinator.handle_end_txn,
            TxnOffsetCommitRequest: self.groups.handle_txn_offset_commit,
            OffsetFetchRequest: self.groups.handle_offset_fetch,
            WriteTxnMarkersRequest: self.handle_write_markers,
            ConsumerFetchRequest: self.handle_consumer_fetch,
        }

    def handle(self, source: str, message: Any) -> bool:
        """Serve `message` if it is one of ours; False otherwise."""
        if isinstance(message, InitProducerIdRequest) and message.transactional_id is not None:
            self.coordinator.handle_init_producer_id(source, message)
            return True
        handler = self.handlers.get(type(message))
        if handler is None:
            return False
        handler(source, message)
        return True

    def _reply(self, source: str, response: Any) -> None:
        self.broker.net.send(self.broker.name, source, response)

    # --- coordinators --------------------------------------------------------------------

    def handle_find_coordinator(self, source: str, request: FindCoordinatorRequest) -> None:
        broker = self.broker
        if request.key_type == "transaction":
            topic, partitions = TXN_STATE_TOPIC, self.coordinator.num_partitions
        else:
            topic, partitions = OFFSETS_TOPIC, self.groups.num_partitions
        state = None
        if broker.image is not None:
            state = broker.image.partition(topic, partition_for(request.key, partitions))
        if state is None or state.leader < 0:
            self._reply(
                source,
                FindCoordinatorResponse(request.request_id, Errors.COORDINATOR_NOT_AVAILABLE),
            )
            return
        self._reply(source, FindCoordinatorResponse(request.request_id, Errors.NONE, state.leader))

    # --- markers ----------------------------------------------------------------------------

    def handle_write_markers(self, source: str, request: WriteTxnMarkersRequest) -> None:
        marker = request.marker
        results: dict[tuple[str, int], Errors] = {}
        waiting = list(marker.partitions)

        def finish(key: tuple[str, int], error: Errors) -> None:
            results[key] = error
            if key in waiting:
                waiting.remove(key)
            if not waiting:
                ordered = tuple((t, p, results[(t, p)]) for t, p in marker.partitions)
                self._reply(source, WriteTxnMarkersResponse(request.request_id, ordered))

        for key in marker.partitions:
            self.write_marker(key, marker, lambda error, _offset, key=key: finish(key, error))

    def write_marker(
        self, key: tuple[str, int], marker: TxnMarker, done: Callable[[Errors, int], None]
    ) -> None:
        replica = self.broker.replicas.get(key)
        if replica is None or replica.role != LEADER:
            done(Errors.NOT_LEADER_OR_FOLLOWER, -1)
            return
        batch = RecordBatch(
            marker.producer_id,
            marker.producer_epoch,
            -1,
            (),
            CONTROL_BATCH_BYTES,
            self.broker.world.now_ms,
            is_transactional=True,
            control="COMMIT" if marker.commit else "ABORT",
            coordinator_epoch=marker.coordinator_epoch,
        )
        error = replica.log.producer_state.check_marker(batch)
        if error != Errors.NONE:
            done(error, -1)
            return
        self.broker.append_batch(key, batch, done)

    # --- consumers -----------------------------------------------------------------------------

    def handle_consumer_fetch(self, source: str, request: ConsumerFetchRequest) -> None:
        data = tuple(
            self._serve(t, p, offset, request.max_batches) for t, p, offset in request.partitions
        )
        self._reply(source, ConsumerFetchResponse(request.request_id, data))

    def _serve(
        self, topic: str, partition: int, offset: int, max_batches: int
    ) -> ConsumerFetchData:
        replica = self.broker.replicas.get((topic, partition))
        if replica is None or replica.role != LEADER:
            return ConsumerFetchData(topic, partition, Errors.NOT_LEADER_OR_FOLLOWER)
        log = replica.log
        hw = log.hw
        lso = log.last_stable_offset()
        batches = tuple(b for b in log.read_containing(offset, max_batches) if b.base_offset < hw)
        end = batches[-1].next_offset if batches else offset
        aborted = log.producer_state.aborted_overlapping(offset, end)
        return ConsumerFetchData(topic, partition, Errors.NONE, hw, lso, 0, batches, aborted)
