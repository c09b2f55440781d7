"""What clients observed: one invoke and at most one completion per record.

Vocabulary after Jepsen: a send is `invoke`d, then completes as `ok`
(acknowledged, with partition and offset), `fail` (definitely not written:
every attempt was rejected before append, or never left the client) or
`info` (outcome unknown: a timeout, a disconnect, an error after append).
`info` never counts as failed: the record may or may not be in the log.

The history is stored in columns indexed by record id, because a benchmark
run holds a million records and per-record objects would dominate memory.
`ops()` renders Jepsen-style `Op`s on demand for witnesses and reports.
Faults (the nemesis) are recorded as `info` ops of process "nemesis".
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

PENDING, OK, FAIL, INFO = 0, 1, 2, 3
STATUS_NAMES = ("pending", "ok", "fail", "info")
NO_TXN = -1


@dataclass(frozen=True, slots=True)
class Op:
    """A client-observable operation, Jepsen's shape."""

    index: int
    process: str
    type: str  # invoke | ok | fail | info
    f: str  # send | commit_txn | abort_txn | a fault name
    value: Any
    time_ms: float


@dataclass(frozen=True, slots=True)
class Txn:
    """A transaction as the producer saw it: its records and how it ended."""

    txn_id: int
    process: str
    producer_id: int
    producer_epoch: int
    outcome: str  # "commit" | "abort" | "unknown" (commit attempted, outcome unknown) | "open"


class History:
    """Per-record columns plus a list of nemesis ops and transactions."""

    def __init__(self) -> None:
        self.process: list[int] = []
        self.topic: list[int] = []
        self.partition: list[int] = []
        self.send_index: list[int] = []
        self.invoke_ms: list[float] = []
        self.status: list[int] = []
        self.done_ms: list[float] = []
        self.offset: list[int] = []
        self.error: list[str | None] = []
        self.txn: list[int] = []
        self.processes: list[str] = []
        self.topics: list[str] = []
        self._process_index: dict[str, int] = {}
        self._topic_index: dict[str, int] = {}
        self._sends_by_process: list[int] = []
        self.faults: list[Op] = []
        self.txns: list[Txn] = []
        self.payloads: dict[int, tuple[bytes | None, bytes | None, int]] = {}
        """(key, value, timestamp) of records sent through the Python API, by id:
        the simulated log stores ids, consumers read the bytes from here."""
        self._pending = 0
        self.resent: list[tuple[int, float]] = []
        """(record id, time) of each re-send by a restarted application."""
        self._indexes: dict[tuple[str, str], tuple[int, int]] = {}

    def __len__(self) -> int:
        return len(self.status)

    # --- recording ---------------------------------------------------------

    def invoke(
        self, process: str, topic: str, partition: int, time_ms: float, txn: int = NO_TXN
    ) -> int:
        """Record a `send()` call; returns the new record's id."""
        indexes = self._indexes.get((process, topic))
        if indexes is None:
            indexes = self._indexes[(process, topic)] = self._register(process, topic)
        p, t = indexes
        record_id = len(self.status)
        self.process.append(p)
        self.topic.append(t)
        self.partition.append(partition)
        self.send_index.append(self._sends_by_process[p])
        self._sends_by_process[p] += 1
        self.invoke_ms.append(time_ms)
        self.status.append(PENDING)
        self.done_ms.append(-1.0)
        self.offset.append(-1)
        self.error.append(None)
        self.txn.append(txn)
        self._pending += 1
        return record_id

    def _register(self, process: str, topic: str) -> tuple[int, int]:
        p = self._process_index.get(process)
        if p is None:
            p = self._process_index[process] = len(self.processes)
            self.processes.append(process)
            self._sends_by_process.append(0)
        t = self._topic_index.get(topic)
        if t is None:
            t = self._topic_index[topic] = len(self.topics)
            self.topics.append(topic)
        return p, t

    def reinvoke(self, record_id: int, time_ms: float) -> None:
        """The application sends a record again (after a producer restart).

        Only a record whose earlier send ended without an acknowledgement may
        be re-sent; it becomes pending again, so at most one `ok` is ever
        recorded for it, and a second copy in the log is a duplicate.
        """
        assert self.status[record_id] in (INFO, FAIL), f"record {record_id} cannot be re-sent"
        self.status[record_id] = PENDING
        self.done_ms[record_id] = -1.0
        self.error[record_id] = None
        self._pending += 1
        self.resent.append((record_id, time_ms))

    def ok(self, record_ids: Sequence[int], time_ms: float, base_offset: int) -> None:
        """Acknowledge a batch: offsets are base + index, or all -1 (acks=0, or
        a duplicate acknowledged without an offset)."""
        status, done, offset = self.status, self.done_ms, self.offset
        for i, record_id in enumerate(record_ids):
            assert status[record_id] == PENDING, f"record {record_id} completed twice"
            status[record_id] = OK
            done[record_id] = time_ms
            offset[record_id] = base_offset + i if base_offset >= 0 else -1
        self._pending -= len(record_ids)

    def fail(self, record_ids: Iterable[int], time_ms: float, error: str) -> None:
        """A definite failure: the records were never appended anywhere."""
        self._complete(record_ids, FAIL, time_ms, error)

    def info(self, record_ids: Iterable[int], time_ms: float, error: str) -> None:
        """An indefinite failure: the records may or may not be in the log."""
        self._complete(record_ids, INFO, time_ms, error)

    def _complete(self, record_ids: Iterable[int], kind: int, time_ms: float, error: str) -> None:
        for record_id in record_ids:
            assert self.status[record_id] == PENDING, f"record {record_id} completed twice"
            self.status[record_id] = kind
            self.done_ms[record_id] = time_ms
            self.error[record_id] = error
            self._pending -= 1

    def fault(self, time_ms: float, f: str, value: Any) -> None:
        """Record a nemesis operation (start/stop of a fault)."""
        self.faults.append(Op(len(self.faults), "nemesis", "info", f, value, time_ms))

    def begin_txn(self, process: str, producer_id: int, producer_epoch: int) -> int:
        txn_id = len(self.txns)
        self.txns.append(Txn(txn_id, process, producer_id, producer_epoch, "open"))
        return txn_id

    def end_txn(self, txn_id: int, outcome: str) -> None:
        assert outcome in ("commit", "abort", "unknown"), outcome
        txn = self.txns[txn_id]
        self.txns[txn_id] = Txn(
            txn.txn_id, txn.process, txn.producer_id, txn.producer_epoch, outcome
        )

    # --- reading -----------------------------------------------------------

    def pending(self) -> int:
        """How many sends have not completed (kept as a counter: runs poll it)."""
        return self._pending

    def count(self, kind: int) -> int:
        return sum(1 for s in self.status if s == kind)

    def record_label(self, record_id: int) -> str:
        """A short human name: `producer-0#17` (the 18th send of producer-0)."""
        return f"{self.processes[self.process[record_id]]}#{self.send_index[record_id]}"

    def describe(self, record_id: int) -> dict[str, Any]:
        """A JSON-able summary of one record for witnesses."""
        return {
            "id": record_id,
            "label": self.record_label(record_id),
            "process": self.processes[self.process[record_id]],
            "topic": self.topics[self.topic[record_id]],
            "partition": self.partition[record_id],
            "status": STATUS_NAMES[self.status[record_id]],
            "offset": self.offset[record_id],
            "invoke_ms": self.invoke_ms[record_id],
            "done_ms": self.done_ms[record_id],
            "error": self.error[record_id],
        }

    def ops(self) -> Iterator[Op]:
        """Jepsen-style ops (invokes and completions, then faults), by time."""
        rows: list[tuple[float, int, int, Op]] = []
        for r in range(len(self.status)):
            process = self.processes[self.process[r]]
            value = (r, self.topics[self.topic[r]], self.partition[r])
            rows.append(
                (
                    self.invoke_ms[r],
                    0,
                    r,
                    Op(0, process, "invoke", "send", value, self.invoke_ms[r]),
                )
            )
            if self.status[r] != PENDING:
                done = (
                    r,
                    self.topics[self.topic[r]],
                    self.partition[r],
                    self.offset[r],
                    self.error[r],
                )
                kind = STATUS_NAMES[self.status[r]]
                rows.append(
                    (self.done_ms[r], 1, r, Op(0, process, kind, "send", done, self.done_ms[r]))
                )
        for op in self.faults:
            rows.append((op.time_ms, 2, op.index, op))
        rows.sort(key=lambda row: (row[0], row[1], row[2]))
        for index, (_, _, _, op) in enumerate(rows):
            yield Op(index, op.process, op.type, op.f, op.value, op.time_ms)
