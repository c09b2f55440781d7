"""TransactionManager, idempotence part: producer id, epoch and sequences.

After the Java client's `TransactionManager` / `TxnPartitionEntry`
(SEMANTICS.md §3.4, §3.7, §3.9):

- Sequences are per partition, from 0, advancing by the record count; a
  batch gets its sequence when first drained and keeps it across retries.
- `in_flight` holds, per partition, the batches that have a sequence and
  are not completed (sent, or re-enqueued for retry), in sequence order. A
  retried batch may be drained only when it is the lowest of them
  (`shouldStopDrainBatchesForPartition`), so a retrying partition has one
  batch in flight and the broker sees sequences in order again.
- OUT_OF_ORDER_SEQUENCE_NUMBER for a batch that is not the next expected
  one is retried (an earlier batch failed first); for the next expected one,
  the broker has lost our state (truncation), so the producer bumps its
  epoch locally and restarts sequences at 0 (KIP-360). A batch that fails
  for good with retries left also bumps the epoch.
- A batch that expired while in flight leaves its sequence *unresolved*: if
  a later batch is acknowledged it was written; if nothing is in flight and
  it is still unresolved, the epoch is bumped.

An epoch bump applies to a partition lazily, once nothing of it is in
flight: its queued batches are then re-sequenced from 0 under the new epoch.
Transactions (the rest of Kafka's TransactionManager) are not here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sim.client.accumulator import ProducerBatch
from sim.protocol import NO_PRODUCER_EPOCH, NO_PRODUCER_ID, Errors


@dataclass
class _PartitionEntry:
    epoch: int
    next_sequence: int = 0
    last_acked_sequence: int = -1
    in_flight: list[ProducerBatch] = field(default_factory=list)
    unresolved: bool = False


class TransactionManager:
    """Producer id, epoch and per-partition sequence bookkeeping."""

    def __init__(self, transactional: bool = False) -> None:
        self.transactional = transactional
        """A transactional producer never bumps its epoch locally: only the
        coordinator may (InitProducerId); sequence gaps abort the transaction."""
        self.producer_id = NO_PRODUCER_ID
        self.producer_epoch = NO_PRODUCER_EPOCH
        self.partitions: dict[tuple[str, int], _PartitionEntry] = {}
        self.init_in_flight = False

    @property
    def has_producer_id(self) -> bool:
        return self.producer_id != NO_PRODUCER_ID

    def set_producer_id(self, producer_id: int, epoch: int) -> None:
        self.producer_id = producer_id
        self.producer_epoch = epoch
        self.partitions = {}

    def _entry(self, key: tuple[str, int]) -> _PartitionEntry:
        entry = self.partitions.get(key)
        if entry is None:
            entry = self.partitions[key] = _PartitionEntry(self.producer_epoch)
        return entry

    # --- draining -----------------------------------------------------------------

    def may_drain(self, batch: ProducerBatch) -> bool:
        """`shouldStopDrainBatchesForPartition`, negated, for the head batch."""
        if not self.has_producer_id:
            return False
        entry = self._entry(batch.key)
        if entry.epoch != self.producer_epoch:
            if any(b.in_request for b in entry.in_flight):
                return False  # Let the old epoch's requests finish first.
            self._rebase(batch.key, entry)
        if batch.has_sequence:
            return bool(entry.in_flight) and entry.in_flight[0] is batch
        # Java's shouldStopDrainBatchesForPartition: no new batch is drained while
        # an earlier sequence is unresolved (expired after being sent); it waits
        # for a later ack to resolve it or for the epoch bump (`maybe_resolve`).
        return not entry.unresolved

    def _rebase(self, key: tuple[str, int], entry: _PartitionEntry) -> None:
        """Restart the partition's sequences at 0 under the current epoch."""
        entry.epoch = self.producer_epoch
        entry.next_sequence = 0
        entry.last_acked_sequence = -1
        entry.unresolved = False
        for batch in entry.in_flight:
            batch.producer_epoch = self.producer_epoch
            batch.base_sequence = entry.next_sequence
            entry.next_sequence += batch.record_count

    def on_drain(self, batch: ProducerBatch) -> None:
        """Fix id, epoch and sequence the first time a batch is drained."""
        if batch.has_sequence:
            return
        entry = self._entry(batch.key)
        batch.producer_id = self.producer_id
        batch.producer_epoch = entry.epoch
        batch.base_sequence = entry.next_sequence
        entry.next_sequence += batch.record_count
        entry.in_flight.append(batch)

    # --- outcomes -----------------------------------------------------------------

    def on_success(self, batch: ProducerBatch) -> None:
        entry = self._entry(batch.key)
        self._remove(entry, batch)
        if batch.producer_epoch == entry.epoch:
            last = batch.base_sequence + batch.record_count - 1
            entry.last_acked_sequence = max(entry.last_acked_sequence, last)
            entry.unresolved = False

    def on_failure(self, batch: ProducerBatch, bump: bool) -> None:
        """A batch failed for good; bump the epoch if its sequence is a gap now."""
        entry = self._entry(batch.key)
        self._remove(entry, batch)
        if self.transactional:
            if bump and batch.has_sequence and batch.producer_epoch == entry.epoch:
                self._shift_sequences(entry, batch)
            return
        if bump and batch.has_sequence and batch.producer_epoch == entry.epoch:
            self.bump_epoch(
                f"batch {batch.topic}/{batch.partition} seq {batch.base_sequence} failed"
            )

    @staticmethod
    def _shift_sequences(entry: _PartitionEntry, failed: ProducerBatch) -> None:
        """`adjustSequencesDueToFailedBatch`: later batches move down into the gap."""
        for batch in entry.in_flight:
            if batch.base_sequence > failed.base_sequence:
                batch.base_sequence -= failed.record_count
        entry.next_sequence -= failed.record_count

    def on_expired_in_flight(self, batch: ProducerBatch) -> None:
        entry = self._entry(batch.key)
        self._remove(entry, batch)
        if batch.producer_epoch == entry.epoch and batch.base_sequence > entry.last_acked_sequence:
            entry.unresolved = True

    def maybe_resolve(self, key: tuple[str, int]) -> bool:
        """An unresolved partition with nothing in flight forces an epoch bump."""
        entry = self.partitions.get(key)
        if entry is None or not entry.unresolved or entry.in_flight:
            return False
        entry.unresolved = False  # Resolved by the bump, once (Java removes it from the map).
        if self.transactional:
            return False  # The transaction aborts instead (its batch expired: abortable error).
        self.bump_epoch(f"unresolved sequence on {key[0]}/{key[1]}")
        return True

    def can_retry(self, batch: ProducerBatch, error: Errors) -> bool:
        """`TransactionManager.canRetry` for an idempotent producer."""
        entry = self._entry(batch.key)
        if error in (Errors.OUT_OF_ORDER_SEQUENCE_NUMBER, Errors.UNKNOWN_PRODUCER_ID):
            is_next = batch.base_sequence == entry.last_acked_sequence + 1
            if self.transactional and is_next and not entry.unresolved:
                return False  # A real gap: the transaction must abort (abortable error).
            if batch.producer_epoch == entry.epoch and is_next and not entry.unresolved:
                self.bump_epoch(
                    f"{error.name} on {batch.topic}/{batch.partition} seq {batch.base_sequence}"
                )
            return True
        return error.retriable

    def bump_epoch(self, reason: str) -> None:
        """KIP-360: a new epoch locally; partitions rebase when idle."""
        self.producer_epoch += 1
        self.last_bump_reason = reason

    @staticmethod
    def _remove(entry: _PartitionEntry, batch: ProducerBatch) -> None:
        for index, queued in enumerate(entry.in_flight):
            if queued is batch:
                del entry.in_flight[index]
                return
