"""Committed consumer offsets, transactional ones included (`__consumer_offsets`).

Only what `send_offsets_to_transaction` needs: TxnOffsetCommit appends the
offsets as a transactional batch of the producer to the group's partition
of `__consumer_offsets` (partition = `Utils.abs(groupId.hashCode) % N`, as
the group coordinator computes it), so they become visible exactly when the
transaction's COMMIT marker is written there and vanish with an ABORT — the
same read_committed machinery as data. OffsetFetch reads them back.

Left out: group membership, rebalances, non-transactional OffsetCommit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.cluster.txn_coordinator import OFFSETS_TOPIC, partition_for
from sim.protocol import (
    Errors,
    OffsetFetchRequest,
    OffsetFetchResponse,
    TxnOffsetCommitRequest,
    TxnOffsetCommitResponse,
)

if TYPE_CHECKING:
    from sim.cluster.broker import Broker


class GroupCoordinator:
    """The offsets half of a broker, for the `__consumer_offsets` partitions it leads."""

    def __init__(self, broker: Broker, num_partitions: int) -> None:
        self.broker = broker
        self.num_partitions = num_partitions

    def partition_of(self, group_id: str) -> int:
        return partition_for(group_id, self.num_partitions)

    def handle_txn_offset_commit(self, source: str, request: TxnOffsetCommitRequest) -> None:
        key = (OFFSETS_TOPIC, self.partition_of(request.group_id))
        payload = tuple(("offset", request.group_id, t, p, o) for t, p, o in request.offsets)

        def done(error: Errors, _offset: int) -> None:
            if error in (
                Errors.NOT_ENOUGH_REPLICAS,
                Errors.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
                Errors.REQUEST_TIMED_OUT,
            ):
                error = Errors.COORDINATOR_NOT_AVAILABLE
            elif error == Errors.NOT_LEADER_OR_FOLLOWER:
                error = Errors.NOT_COORDINATOR
            self.broker.net.send(
                self.broker.name, source, TxnOffsetCommitResponse(request.request_id, error)
            )

        self.broker.append_internal(
            key,
            payload,
            done,
            producer=(request.producer_id, request.producer_epoch),
            transactional=True,
        )

    def handle_offset_fetch(self, source: str, request: OffsetFetchRequest) -> None:
        key = (OFFSETS_TOPIC, self.partition_of(request.group_id))
        replica = self.broker.replicas.get(key)
        if replica is None or replica.role != "leader":
            self.broker.net.send(
                self.broker.name,
                source,
                OffsetFetchResponse(request.request_id, Errors.NOT_COORDINATOR),
            )
            return
        committed = self.committed_offsets(request.group_id)
        offsets = tuple((t, p, committed.get((t, p), -1)) for t, p in request.partitions)
        self.broker.net.send(
            self.broker.name, source, OffsetFetchResponse(request.request_id, Errors.NONE, offsets)
        )

    def committed_offsets(self, group_id: str) -> dict[tuple[str, int], int]:
        """The group's latest committed offsets, as read_committed sees them."""
        key = (OFFSETS_TOPIC, self.partition_of(group_id))
        log = self.broker.replicas[key].log
        offsets: dict[tuple[str, int], int] = {}
        for log_batch in log.committed_batches(log.last_stable_offset()):
            for record in log_batch.batch.payload:
                if record[0] == "offset" and record[1] == group_id:
                    offsets[(record[2], record[3])] = record[4]
        return offsets
