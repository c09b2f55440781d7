"""Idempotence on the broker: per-producer sequence state of one partition.

After Kafka's `ProducerStateManager` / `ProducerStateEntry` /
`ProducerAppendInfo` (storage module). For each producer id the partition
keeps the epoch, the last sequence, and the last 5 batches
(`NUM_BATCHES_TO_RETAIN`) with their offsets:

- A batch whose (first, last) sequences exactly match a cached batch of the
  same epoch is a duplicate: not appended, answered with the original offset.
- Otherwise the epoch and sequence are checked (`checkProducerEpoch`,
  `checkSequence`): an older epoch is INVALID_PRODUCER_EPOCH; a newer epoch
  must start at sequence 0; the same epoch must continue at last + 1.
- A producer the partition has no state for is accepted at any sequence
  (since 2.5 / KIP-360: state may have expired or been truncated away).

Replicated appends (followers) update the state without checks, so a new
leader already holds the cache. What is left out: producer id expiry
(`producer.id.expiration.ms`, one day) and transactions' first offsets.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from sim.protocol import NO_PRODUCER_ID, Errors, LogBatch, RecordBatch

NUM_BATCHES_TO_RETAIN = 5
INT_MAX = 2147483647


@dataclass
class ProducerEntry:
    epoch: int
    last_sequence: int
    batches: deque[tuple[int, int, int]] = field(
        default_factory=lambda: deque(maxlen=NUM_BATCHES_TO_RETAIN)
    )
    """(first sequence, last sequence, base offset) of the last batches."""


def _next_sequence(sequence: int) -> int:
    return 0 if sequence == INT_MAX else sequence + 1


class ProducerStateManager:
    """Sequence state of every idempotent producer writing to one partition."""

    window = NUM_BATCHES_TO_RETAIN

    def __init__(self) -> None:
        self.producers: dict[int, ProducerEntry] = {}

    def find_duplicate(self, batch: RecordBatch) -> int | None:
        """The base offset of an identical earlier batch, or None."""
        if batch.producer_id == NO_PRODUCER_ID:
            return None
        entry = self.producers.get(batch.producer_id)
        if entry is None or entry.epoch != batch.producer_epoch:
            return None
        for first, last, base_offset in entry.batches:
            if first == batch.base_sequence and last == batch.last_sequence:
                return base_offset
        return None

    def check(self, batch: RecordBatch) -> Errors:
        """Kafka's epoch and sequence checks for a leader append."""
        if batch.producer_id == NO_PRODUCER_ID:
            return Errors.NONE
        entry = self.producers.get(batch.producer_id)
        if entry is None:
            return Errors.NONE  # Unknown producer: accepted at any sequence (KIP-360).
        if batch.producer_epoch < entry.epoch:
            return Errors.INVALID_PRODUCER_EPOCH
        if batch.producer_epoch > entry.epoch:
            return Errors.NONE if batch.base_sequence == 0 else Errors.OUT_OF_ORDER_SEQUENCE_NUMBER
        if batch.base_sequence != _next_sequence(entry.last_sequence):
            return Errors.OUT_OF_ORDER_SEQUENCE_NUMBER
        return Errors.NONE

    def update(self, log_batch: LogBatch) -> None:
        """Record an appended batch (leader or follower alike)."""
        batch = log_batch.batch
        if batch.producer_id == NO_PRODUCER_ID or batch.control is not None:
            return
        entry = self.producers.get(batch.producer_id)
        if entry is None or batch.producer_epoch > entry.epoch:
            entry = ProducerEntry(batch.producer_epoch, batch.last_sequence)
            self.producers[batch.producer_id] = entry
        entry.last_sequence = batch.last_sequence
        entry.batches.append((batch.base_sequence, batch.last_sequence, log_batch.base_offset))

    def rebuild(self, batches: list[LogBatch]) -> None:
        """Recompute from the log (after truncation or recovery), as Kafka reloads it."""
        self.producers = {}
        for log_batch in batches:
            self.update(log_batch)
