"""PartitionLog: one replica's log of batches, its LEO, HW and epoch cache.

Terms (Kafka's):
- LEO, log end offset: the offset the next record will get.
- HW, high watermark: records below it are committed; consumers read up to it.
- Leader-epoch cache (`LeaderEpochFileCache`): (epoch, start offset) for each
  leader epoch that wrote to this log; it decides truncation (KIP-101/279).
- Flushed offset: what has reached disk. Kafka does not fsync per write; the
  OS writes dirty pages back on its own schedule, so a power loss
  (`lose_unflushed`) loses the log past the last flush.

The log stores whole batches, as Kafka's does; offsets inside a batch are
implicit (base offset + index). Truncation always lands on a batch boundary
because replication copies whole batches.
"""

from __future__ import annotations

import bisect

from sim.cluster.producer_state import ProducerStateManager
from sim.protocol import LogBatch, RecordBatch, read_committed_batches

UNDEFINED_EPOCH = -1


class PartitionLog:
    """The log of one partition on one broker."""

    def __init__(self, topic: str, partition: int) -> None:
        self.topic = topic
        self.partition = partition
        self.batches: list[LogBatch] = []
        self._base_offsets: list[int] = []
        self.leo = 0
        self.hw = 0
        self.flushed_offset = 0
        self.epochs: list[tuple[int, int]] = []  # (epoch, start offset), epochs ascending
        self.producer_state = ProducerStateManager()

    # --- appends -------------------------------------------------------------

    def append_as_leader(self, batch: RecordBatch, leader_epoch: int) -> LogBatch:
        """Assign offsets and append; the caller has done the idempotence checks."""
        log_batch = LogBatch(self.leo, leader_epoch, batch)
        self._append(log_batch)
        return log_batch

    def append_replicated(self, log_batch: LogBatch) -> None:
        """Append a batch fetched from the leader, at the offset it had there."""
        assert log_batch.base_offset == self.leo, (
            f"{self.topic}/{self.partition}: gap in replication, "
            f"LEO {self.leo} but batch at {log_batch.base_offset}"
        )
        self._append(log_batch)

    def _append(self, log_batch: LogBatch) -> None:
        if not self.epochs or self.epochs[-1][0] < log_batch.leader_epoch:
            self.assign_epoch(log_batch.leader_epoch, log_batch.base_offset)
        self.batches.append(log_batch)
        self._base_offsets.append(log_batch.base_offset)
        self.leo = log_batch.next_offset
        self.producer_state.update(log_batch)

    def assign_epoch(self, epoch: int, start_offset: int) -> None:
        """Add an epoch entry (a new leader does this at its LEO, `makeLeader`)."""
        if self.epochs and self.epochs[-1][0] >= epoch:
            return
        if self.epochs and self.epochs[-1][1] == start_offset:
            self.epochs.pop()  # The older epoch wrote nothing here.
        self.epochs.append((epoch, start_offset))

    # --- reads ---------------------------------------------------------------

    @property
    def last_epoch(self) -> int:
        """The epoch of the last batch (what a follower sends as last fetched epoch)."""
        return self.batches[-1].leader_epoch if self.batches else UNDEFINED_EPOCH

    def read_from(self, offset: int, max_batches: int) -> tuple[LogBatch, ...]:
        """Whole batches starting exactly at `offset` (a batch boundary)."""
        assert max_batches > 0
        index = bisect.bisect_left(self._base_offsets, offset)
        if offset < self.leo:  # Inside the last batch too: `index` is then past the end.
            assert index < len(self.batches) and self._base_offsets[index] == offset, (
                f"{self.topic}/{self.partition}: fetch at {offset} is not a batch boundary"
            )
        return tuple(self.batches[index : index + max_batches])

    def read_containing(self, offset: int, max_batches: int) -> tuple[LogBatch, ...]:
        """Whole batches from the one holding `offset` (a consumer may stop mid-batch)."""
        assert max_batches > 0
        index = max(0, bisect.bisect_right(self._base_offsets, offset) - 1)
        if index < len(self.batches) and self.batches[index].next_offset <= offset:
            index += 1
        return tuple(self.batches[index : index + max_batches])

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        """(largest epoch <= `epoch`, its end offset), as `LeaderEpochFileCache.endOffsetFor`.

        The end offset of an epoch is the start of the next one, or the LEO
        for the latest epoch. Below the first known epoch: (`epoch`, start of
        the first epoch), as Kafka answers; (UNDEFINED, UNDEFINED) when the
        cache is empty or `epoch` is above every known epoch.
        """
        if epoch < 0 or not self.epochs or epoch > self.epochs[-1][0]:
            return (UNDEFINED_EPOCH, UNDEFINED_EPOCH)
        if epoch < self.epochs[0][0]:
            # Kafka's `endOffsetFor` answers (requestedEpoch, first start offset) here, not
            # UNDEFINED: a follower whose epochs all lie above the leader's diverging epoch
            # must truncate to its first epoch's start, else it never converges.
            return (epoch, self.epochs[0][1])
        starts = [e for e, _ in self.epochs]
        index = bisect.bisect_right(starts, epoch) - 1
        found_epoch = self.epochs[index][0]
        if index + 1 < len(self.epochs):
            return (found_epoch, self.epochs[index + 1][1])
        return (found_epoch, self.leo)

    def records_up_to(self, end_offset: int) -> tuple[list[int], list[int]]:
        """(offsets, record ids) of data records below `end_offset`."""
        offsets: list[int] = []
        record_ids: list[int] = []
        for log_batch in self.batches:
            if log_batch.base_offset >= end_offset:
                break
            if log_batch.batch.control is not None:
                continue
            for i, record_id in enumerate(log_batch.batch.record_ids):
                offset = log_batch.base_offset + i
                if offset >= end_offset:
                    break
                offsets.append(offset)
                record_ids.append(record_id)
        return offsets, record_ids

    def last_stable_offset(self) -> int:
        """LSO = min(HW, first unstable offset): read_committed reads below it."""
        first_unstable = self.producer_state.first_unstable_offset(self.hw)
        return self.hw if first_unstable is None else min(self.hw, first_unstable)

    def committed_batches(self, bound: int) -> list[LogBatch]:
        """Data batches below `bound` that a read_committed reader sees."""
        aborted = self.producer_state.aborted_overlapping(0, bound)
        return read_committed_batches(self.batches, bound, aborted)

    # --- truncation and durability --------------------------------------------

    def truncate_to(self, offset: int) -> int:
        """Remove everything at and above `offset`; returns how many offsets went."""
        if offset >= self.leo:
            return 0
        index = bisect.bisect_left(self._base_offsets, offset)
        # offset < LEO here, so it must start a batch; an offset inside the last batch
        # would otherwise set the LEO without removing that batch.
        assert index < len(self.batches) and self._base_offsets[index] == offset, (
            f"{self.topic}/{self.partition}: truncation to {offset} is not a batch boundary"
        )
        removed = self.leo - offset
        del self.batches[index:]
        del self._base_offsets[index:]
        self.leo = offset
        self.hw = min(self.hw, self.leo)
        self.flushed_offset = min(self.flushed_offset, self.leo)
        while self.epochs and self.epochs[-1][1] >= offset:  # `truncateFromEnd`
            self.epochs.pop()
        self.producer_state.rebuild(self.batches)
        return removed

    def flush(self) -> None:
        self.flushed_offset = self.leo

    def lose_unflushed(self) -> int:
        """Power loss: the suffix past the last flush never reached disk."""
        return self.truncate_to(self.flushed_offset)
