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
    coordinator_epoch: int = -1
    """Epoch of the coordinator that wrote this producer's last marker here."""
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
        self.ongoing: dict[int, int] = {}
        """Producer id -> first offset of its open transaction on this partition."""
        self.completed: list[tuple[int, int]] = []
        """(first offset, marker offset) of ended transactions the HW may not have passed."""
        self.aborted: list[tuple[int, int, int]] = []
        """(producer id, first offset, marker offset): the aborted-transaction index."""

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
        if batch.control is not None or batch.base_sequence < 0:
            return Errors.NONE  # Markers and transactional offsets carry no sequence.
        if batch.producer_epoch > entry.epoch:
            return Errors.NONE if batch.base_sequence == 0 else Errors.OUT_OF_ORDER_SEQUENCE_NUMBER
        if batch.base_sequence != _next_sequence(entry.last_sequence):
            return Errors.OUT_OF_ORDER_SEQUENCE_NUMBER
        return Errors.NONE

    def update(self, log_batch: LogBatch) -> None:
        """Record an appended batch (leader or follower alike)."""
        batch = log_batch.batch
        if batch.producer_id == NO_PRODUCER_ID:
            return
        if batch.control is not None:
            self._end_transaction(log_batch)
            return
        if batch.is_transactional and batch.producer_id not in self.ongoing:
            self.ongoing[batch.producer_id] = log_batch.base_offset
        if batch.base_sequence < 0:
            return  # Transactional offsets (TxnOffsetCommit) carry no sequence.
        entry = self.producers.get(batch.producer_id)
        if entry is None or batch.producer_epoch > entry.epoch:
            entry = ProducerEntry(batch.producer_epoch, batch.last_sequence)
            self.producers[batch.producer_id] = entry
        entry.last_sequence = batch.last_sequence
        entry.batches.append((batch.base_sequence, batch.last_sequence, log_batch.base_offset))

    def _end_transaction(self, log_batch: LogBatch) -> None:
        """A COMMIT/ABORT marker (`appendEndTxnMarker`): the producer's transaction
        ends here, and the marker's epoch becomes the producer's (fencing older ones)."""
        batch = log_batch.batch
        entry = self.producers.get(batch.producer_id)
        if entry is None or batch.producer_epoch != entry.epoch:
            entry = ProducerEntry(batch.producer_epoch, -1)
            self.producers[batch.producer_id] = entry
        entry.coordinator_epoch = max(entry.coordinator_epoch, batch.coordinator_epoch)
        first = self.ongoing.pop(batch.producer_id, None)
        if first is None:
            return
        self.completed.append((first, log_batch.base_offset))
        if batch.control == "ABORT":
            self.aborted.append((batch.producer_id, first, log_batch.base_offset))

    def check_marker(self, batch: RecordBatch) -> Errors:
        """A marker with an older epoch than the producer's is fenced."""
        entry = self.producers.get(batch.producer_id)
        if entry is not None and batch.producer_epoch < entry.epoch:
            return Errors.INVALID_PRODUCER_EPOCH
        if entry is not None and batch.coordinator_epoch < entry.coordinator_epoch:
            # A deposed coordinator's late marker (`ProducerAppendInfo.appendEndTxnMarker`).
            return Errors.TRANSACTION_COORDINATOR_FENCED
        return Errors.NONE

    def first_unstable_offset(self, high_watermark: int) -> int | None:
        """The lowest first offset of a transaction not yet decided below the HW
        (`ProducerStateManager.firstUnstableOffset`): open ones, and ended ones
        whose marker the HW has not passed."""
        self.completed = [(f, m) for f, m in self.completed if m >= high_watermark]
        candidates = list(self.ongoing.values()) + [f for f, _ in self.completed]
        return min(candidates) if candidates else None

    def aborted_overlapping(self, start: int, end: int) -> tuple[tuple[int, int], ...]:
        """(producer id, first offset) of aborted transactions overlapping [start, end)."""
        return tuple(
            (pid, first) for pid, first, marker in self.aborted if marker >= start and first < end
        )

    def rebuild(self, batches: list[LogBatch]) -> None:
        """Recompute from the log (after truncation or recovery), as Kafka reloads it."""
        self.producers = {}
        self.ongoing = {}
        self.completed = []
        self.aborted = []
        for log_batch in batches:
            self.update(log_batch)
