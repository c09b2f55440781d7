"""RecordAccumulator: per-partition deques of batches, and buffer memory.

After Kafka's `RecordAccumulator` and `ProducerBatch`. `send()` appends a
record to the last batch of its partition's deque, or opens a new batch
(size = max(batch.size, record)). The Sender asks which partitions are
*ready* — head batch full, or lingered `linger.ms`, or a retry whose
backoff has passed, or a flush/close in progress — and *drains* at most one
batch per partition per request.

Memory: every open batch holds `max(batch.size, record)` bytes of
`buffer.memory` until it completes (Java's `BufferPool`); an append that
does not fit waits, and the producer's `send()` blocks up to
`max.block.ms` for it.

Records are ids (the history's); no per-record SimPy events exist.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

RECORD_BATCH_OVERHEAD = 61
"""Bytes of a v2 record batch header (`DefaultRecordBatch.RECORD_BATCH_OVERHEAD`)."""

COMPRESSION_RATIOS: dict[str | None, float] = {
    None: 1.0,
    "gzip": 0.35,
    "snappy": 0.55,
    "lz4": 0.5,
    "zstd": 0.3,
}
"""Wire size / raw size per codec, for typical text-like payloads. These are
modelling assumptions (documented in the README), not measurements: real
ratios depend on the data."""


def record_size(key_size: int, value_size: int, headers_size: int = 0) -> int:
    """Approximate v2 record size: payload plus varint framing (`DefaultRecord`)."""
    return key_size + value_size + headers_size + 10


@dataclass(eq=False)
class ProducerBatch:
    """An open or sealed batch of one partition."""

    topic: str
    partition: int
    created_ms: float
    capacity: int
    record_ids: list[int] = field(default_factory=list)
    futures: list[Any] | None = None
    size_bytes: int = RECORD_BATCH_OVERHEAD
    attempts: int = 0
    last_attempt_ms: float = 0.0
    retry: bool = False
    backoff_ms: float = 0.0
    closed: bool = False
    done: bool = False
    in_request: bool = False
    possibly_written: bool = False
    producer_id: int = -1
    producer_epoch: int = -1
    base_sequence: int = -1
    txn: int = -1

    @property
    def key(self) -> tuple[str, int]:
        return (self.topic, self.partition)

    @property
    def record_count(self) -> int:
        return len(self.record_ids)

    @property
    def has_sequence(self) -> bool:
        return self.base_sequence >= 0

    def __repr__(self) -> str:
        return (
            f"ProducerBatch({self.topic}/{self.partition}, n={self.record_count}, "
            f"seq={self.base_sequence}, attempts={self.attempts})"
        )


class RecordAccumulator:
    """Batches waiting to be sent, per partition, under a memory bound."""

    def __init__(self, batch_size: int, linger_ms: float, buffer_memory: int) -> None:
        self.batch_size = batch_size
        self.linger_ms = linger_ms
        self.buffer_memory = buffer_memory
        self.used_bytes = 0
        self.deques: dict[tuple[str, int], deque[ProducerBatch]] = {}
        self.flushing = 0
        self.closing = False
        self.exhausted = False
        """The last `has_room` found no room: a send is waiting for memory (Java's
        `BufferPool.queued() > 0`), which makes every head batch ready. The next
        `has_room` that finds room clears it."""
        self.incomplete: dict[int, ProducerBatch] = {}
        """Every batch not yet completed, by identity, for flush() and expiry."""

    # --- appends ------------------------------------------------------------------

    def try_append(
        self, topic: str, partition: int, record_id: int, size: int, future: Any, now_ms: float
    ) -> ProducerBatch | None:
        """Append to the open batch of the partition, or None if a new batch is needed."""
        dq = self.deques.get((topic, partition))
        if not dq:
            return None
        last = dq[-1]
        if last.closed or last.attempts or last.size_bytes + size > last.capacity:
            last.closed = True
            return None
        last.record_ids.append(record_id)
        last.size_bytes += size
        if future is not None:
            if last.futures is None:
                last.futures = []
            last.futures.append(future)
        if last.size_bytes >= last.capacity:
            last.closed = True
        return last

    def new_batch_capacity(self, size: int) -> int:
        return max(self.batch_size, size + RECORD_BATCH_OVERHEAD)

    def has_room(self, size: int) -> bool:
        """Whether a new batch for a record of `size` fits; callers wait when it does not."""
        room = self.used_bytes + self.new_batch_capacity(size) <= self.buffer_memory
        self.exhausted = not room
        return room

    def append_new(
        self,
        topic: str,
        partition: int,
        record_id: int,
        size: int,
        future: Any,
        now_ms: float,
        txn: int = -1,
    ) -> ProducerBatch:
        """Open a new batch (the caller checked `has_room`)."""
        capacity = self.new_batch_capacity(size)
        self.used_bytes += capacity
        batch = ProducerBatch(topic, partition, now_ms, capacity, txn=txn)
        batch.record_ids.append(record_id)
        batch.size_bytes += size
        if future is not None:
            batch.futures = [future]
        if batch.size_bytes >= capacity or self.batch_size == 0:
            batch.closed = True
        self.deques.setdefault((topic, partition), deque()).append(batch)
        self.incomplete[id(batch)] = batch  # det-ok: identity key, never iterated for order
        return batch

    def release(self, batch: ProducerBatch) -> None:
        """A batch completed: give its memory back."""
        if self.incomplete.pop(id(batch), None) is not None:  # det-ok: identity lookup
            self.used_bytes -= batch.capacity
            assert self.used_bytes >= 0

    # --- readiness ------------------------------------------------------------------

    def head_ready_at(self, batch: ProducerBatch, deque_len: int) -> float:
        """When the head batch becomes sendable (Kafka's `batchReady`)."""
        if batch.retry:
            return batch.last_attempt_ms + batch.backoff_ms
        if batch.closed or deque_len > 1 or self.flushing or self.closing or self.exhausted:
            # Java's batchReady: full, more than one batch, memory exhausted, closing, flushing.
            return batch.created_ms
        return batch.created_ms + self.linger_ms

    def partitions(self) -> Iterator[tuple[tuple[str, int], deque[ProducerBatch]]]:
        for key in sorted(self.deques):
            dq = self.deques[key]
            if dq:
                yield key, dq

    def reenqueue(self, batch: ProducerBatch, now_ms: float, in_sequence_order: bool) -> None:
        """Put a batch to retry back at the front (in sequence order with idempotence)."""
        batch.retry = True
        batch.last_attempt_ms = now_ms
        batch.in_request = False
        dq = self.deques.setdefault(batch.key, deque())
        if not in_sequence_order or not batch.has_sequence:
            dq.appendleft(batch)
            return
        index = 0
        for index, queued in enumerate(dq):  # noqa: B007
            if not queued.has_sequence or queued.base_sequence > batch.base_sequence:
                break
        else:
            index = len(dq)
        dq.insert(index, batch)

    def remove(self, batch: ProducerBatch) -> None:
        dq = self.deques.get(batch.key)
        if dq and batch in dq:
            dq.remove(batch)

    def oldest(self) -> ProducerBatch | None:
        """The earliest-created incomplete batch (dicts keep insertion order)."""
        for batch in self.incomplete.values():
            return batch
        return None

    def has_incomplete(self) -> bool:
        return bool(self.incomplete)

    def incomplete_batches(self) -> list[ProducerBatch]:
        """Incomplete batches in creation order (deterministic)."""
        return sorted(
            self.incomplete.values(),
            key=lambda b: (b.created_ms, b.topic, b.partition, b.record_ids[0]),
        )
