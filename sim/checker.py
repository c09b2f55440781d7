"""Judge a history against the final read: lost, duplicated, reordered, aborted, torn.

Vocabulary after Jepsen's Kafka and set checkers. A record is *sent* when
`send()` is invoked; it is *acked* (`ok`), *failed* (`fail`: definitely never
written) or *unknown* (`info`, or still pending). After the final heal, the
engine reads every partition up to its read bound (HW, or LSO for
read_committed) into a `PartitionRead`. Then:

- **lost**: an acked record (acks=0's offset -1 included) absent from the
  read of its partition. Records of aborted or undecided transactions are
  exempt: their absence is what an abort means.
- **duplicated**: one record id at more than one offset (distinct ids).
- **reordered**: a record that appears, by first copy, after a record of the
  same producer and partition that was sent later.
- **aborted_read**: a `fail`ed record, or one of an aborted transaction, visible.
- **torn_txn**: a committed transaction with some but not all of its acked or
  unknown records visible.
- **recovered** (info): a record not acknowledged (info, pending or fail) yet
  present. **unexpected**: an id in the log that was never sent to that
  partition (a simulator bug). **unjudged**: acked records of a partition that
  was offline at read time; they make the result "unknown", never "lost".

`valid` is True, False or "unknown"; `compose` ranks false > unknown > true,
and a sub-checker that raises yields "unknown" for its part (Jepsen's
`check-safe`). Each anomaly keeps at most `WITNESSES_MAX` witnesses, each with
an explanation drawn from the trace, which is indexed once per check.

Left out: consumer-side anomalies (poll skips, nonmonotonic polls), since the
simulator has one final reader; and unavailability time, computed elsewhere.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sim.history import FAIL, INFO, NO_TXN, OK, PENDING, STATUS_NAMES, History
from sim.world import TraceEvent

WITNESSES_MAX = 32
"""Witnesses kept per anomaly kind; counts are always complete."""

OFFSETS_SHOWN_MAX = 8
"""Offsets listed in one explanation line before it says `…`."""

ANOMALIES = ("lost", "duplicated", "reordered", "aborted_read", "torn_txn")
COUNT_KEYS = ("sent", "acked", "failed", "unknown", *ANOMALIES)
EXTRA_KEYS = ("recovered", "unexpected", "unjudged")

Valid = bool | str  # True, False or "unknown"
TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class PartitionRead:
    """The final read of one partition: what a consumer sees up to the read bound."""

    topic: str
    partition: int
    high_watermark: int  # the bound that was read up to (HW, or LSO for read_committed)
    offsets: list[int]  # offsets of data records, ascending
    record_ids: list[int]  # history record id at each of those offsets (same length)
    readable: bool = True  # False: partition offline at read time — nothing could be judged
    leader: int = -1

    def __post_init__(self) -> None:
        assert len(self.offsets) == len(self.record_ids), (self.topic, self.partition)
        assert not self.readable or self.high_watermark >= 0, self.high_watermark


@dataclass(frozen=True)
class CheckResult:
    """A verdict with complete counts and capped witnesses per anomaly kind.

    `errors` names the sub-checkers that raised (their part is "unknown").
    """

    valid: Valid
    counts: dict[str, int]
    witnesses: dict[str, list[dict]]
    errors: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The JSON-able form used by `kpsim run --json`."""
        return {
            "valid": self.valid,
            "counts": dict(self.counts),
            "witnesses": {kind: list(items) for kind, items in self.witnesses.items()},
            "errors": dict(self.errors),
        }


# --- composing (Jepsen's merge-valid, check-safe, compose) -----------------

_RANK = {True: 0, "unknown": 1, False: 2}


def merge_valid(*values: Valid) -> Valid:
    """The worst verdict: false > unknown > true."""
    worst: Valid = True
    for value in values:
        assert value in _RANK, f"valid must be True, False or 'unknown', got {value!r}"
        if _RANK[value] > _RANK[worst]:
            worst = value
    return worst


def check_safe(name: str, checker: Callable[..., CheckResult], *args: Any) -> CheckResult:
    """Run one checker; if it raises, its verdict is "unknown", not a crash.

    A checker bug must not hide the other checkers' findings.
    """
    try:
        return checker(*args)
    except Exception as error:  # Anything a checker raises makes it "unknown".
        return CheckResult("unknown", {}, {}, {name: f"{type(error).__name__}: {error}"})


def compose(results: Sequence[CheckResult]) -> CheckResult:
    """Merge results: worst verdict, union of counts, witnesses and errors."""
    counts: dict[str, int] = {}
    witnesses: dict[str, list[dict]] = {}
    errors: dict[str, str] = {}
    for result in results:
        counts.update(result.counts)
        witnesses.update(result.witnesses)
        errors.update(result.errors)
    return CheckResult(merge_valid(*(r.valid for r in results)), counts, witnesses, errors)


# --- the trace, indexed once per check -------------------------------------


class Append(NamedTuple):
    time_ms: float
    broker: int
    base_offset: int
    count: int
    epoch: int


class Truncate(NamedTuple):
    time_ms: float
    broker: int
    from_offset: int
    to_offset: int
    reason: str


class Elect(NamedTuple):
    time_ms: float
    leader: int
    epoch: int
    unclean: bool


class TraceIndex:
    """Appends, truncations and elections by partition, from one pass over the trace.

    Witness explanations query it; none of them rescans the trace.
    """

    def __init__(self, trace: Sequence[TraceEvent] = ()) -> None:
        self.appends: dict[TopicPartition, list[Append]] = {}
        self.truncations: dict[TopicPartition, list[Truncate]] = {}
        self.elections: dict[TopicPartition, list[Elect]] = {}
        self._by_base: dict[TopicPartition, tuple[list[int], list[Append], int]] = {}
        for event in trace:
            kind = event.kind
            if kind == "broker.append":
                self._add(self.appends, event, Append, ("broker", "base_offset", "count", "epoch"))
            elif kind == "broker.truncate":
                names = ("broker", "from_offset", "to_offset", "reason")
                self._add(self.truncations, event, Truncate, names)
            elif kind == "controller.elect":
                self._add(self.elections, event, Elect, ("leader", "epoch", "unclean"))

    @staticmethod
    def _add(index: dict, event: TraceEvent, row: Any, names: tuple[str, ...]) -> None:
        values = [event.field(name) for name in names]
        topic, partition = event.field("topic"), event.field("partition")
        if topic is None or partition is None or None in values:
            return  # A malformed event explains nothing; it must not break the check.
        index.setdefault((topic, partition), []).append(row(event.time_ms, *values))

    def appends_covering(self, tp: TopicPartition, offset: int) -> list[Append]:
        """Leader appends whose batch holds `offset`, in trace order."""
        if tp not in self._by_base:
            rows = sorted(self.appends.get(tp, ()), key=lambda a: (a.base_offset, a.time_ms))
            widest = max((a.count for a in rows), default=0)
            self._by_base[tp] = ([a.base_offset for a in rows], rows, widest)
        bases, rows, widest = self._by_base[tp]
        found = []
        i = bisect_right(bases, offset) - 1
        while i >= 0 and bases[i] > offset - widest:  # Only batches this wide can reach.
            if offset < rows[i].base_offset + rows[i].count:
                found.append(rows[i])
            i -= 1
        return sorted(found, key=lambda a: a.time_ms)

    def writer(
        self, tp: TopicPartition, offset: int, before_ms: float | None = None
    ) -> Append | None:
        """The last leader append that wrote `offset` (at or before `before_ms`)."""
        found = [
            a
            for a in self.appends_covering(tp, offset)
            if before_ms is None or a.time_ms <= before_ms
        ]
        return found[-1] if found else None

    def truncation(
        self, tp: TopicPartition, offset: int, after_ms: float, broker: int | None
    ) -> Truncate | None:
        """The first truncation removing `offset` at or after `after_ms` (by `broker`)."""
        for t in self.truncations.get(tp, ()):
            removed = t.to_offset <= offset < t.from_offset
            if removed and t.time_ms >= after_ms and (broker is None or t.broker == broker):
                return t
        return None

    def election(self, tp: TopicPartition, before_ms: float) -> Elect | None:
        """The last election of `tp` at or before `before_ms`."""
        rows = self.elections.get(tp, [])
        i = bisect_right([e.time_ms for e in rows], before_ms)
        return rows[i - 1] if i else None


# --- where each record was read, computed once per check -------------------


@dataclass(frozen=True, slots=True)
class Observed:
    """The final read folded onto record ids.

    `first_offset[r]` is the offset of record r's first copy in its own
    partition, or -1. Copies elsewhere, or of ids never sent, are `foreign`.
    """

    reads: list[PartitionRead]  # readable reads, sorted by (topic, partition)
    first_offset: list[int]
    copies: dict[int, list[int]]  # ids read at more than one offset -> every offset
    foreign: list[tuple[int, str, int, int]]  # (record id, topic, partition, offset)
    judged: set[tuple[int, int]]  # (topic index, partition) with a readable read


def observe(history: History, final_read: Mapping[TopicPartition, PartitionRead]) -> Observed:
    """Index the final read by record id in one pass over every read record."""
    topic_ids = {name: i for i, name in enumerate(history.topics)}
    n = len(history)
    first = [-1] * n
    copies: dict[int, list[int]] = {}
    foreign: list[tuple[int, str, int, int]] = []
    reads, judged = [], set()
    for key in sorted(final_read):
        read = final_read[key]
        assert key == (read.topic, read.partition), (key, read.topic, read.partition)
        if not read.readable:
            continue
        reads.append(read)
        t, p = topic_ids.get(read.topic, -1), read.partition
        judged.add((t, p))
        previous = -1
        for offset, rid in zip(read.offsets, read.record_ids, strict=True):
            assert offset > previous, f"{read.topic}/{p}: offsets not ascending at {offset}"
            previous = offset
            if not _sent_to(history, rid, t, p):
                foreign.append((rid, read.topic, p, offset))
            elif first[rid] < 0:
                first[rid] = offset
            else:
                copies.setdefault(rid, [first[rid]]).append(offset)
    return Observed(reads, first, copies, foreign, judged)


def _sent_to(history: History, rid: int, topic: int, partition: int) -> bool:
    return (
        0 <= rid < len(history.status)
        and history.partition[rid] == partition
        and history.topic[rid] == topic
    )


def _txn_outcomes(history: History) -> list[str]:
    return [txn.outcome for txn in history.txns]


# --- the checkers ----------------------------------------------------------


def check_counts(history: History) -> CheckResult:
    """Sent, acked, failed and unknown (info or still pending) records."""
    status = history.status
    counts = {
        "sent": len(status),
        "acked": status.count(OK),
        "failed": status.count(FAIL),
        "unknown": status.count(INFO) + status.count(PENDING),
    }
    assert sum(counts.values()) == 2 * counts["sent"], counts
    return CheckResult(True, counts, {})


def check_readable(history: History, observed: Observed) -> CheckResult:
    """Offline partitions: their acked records can be judged neither lost nor kept."""
    topic, partition, status = history.topic, history.partition, history.status
    if set(zip(topic, partition, strict=True)) <= observed.judged:
        return CheckResult(True, {"unjudged": 0}, {"unjudged": []})  # The common case, fast.
    unjudged: dict[tuple[int, int], list[int]] = {}
    sent: dict[tuple[int, int], int] = {}
    for rid in range(len(status)):
        key = (topic[rid], partition[rid])
        if key not in observed.judged:
            sent[key] = sent.get(key, 0) + 1
            if status[rid] == OK:
                unjudged.setdefault(key, []).append(rid)
    witnesses = [
        _unjudged_witness(history, key, unjudged.get(key, []), sent[key]) for key in sorted(sent)
    ]
    count = sum(len(ids) for ids in unjudged.values())
    valid: Valid = "unknown" if sent else True
    return CheckResult(valid, {"unjudged": count}, {"unjudged": witnesses[:WITNESSES_MAX]})


def _unjudged_witness(history: History, key: tuple[int, int], acked: list[int], sent: int) -> dict:
    name = f"{history.topics[key[0]]}/{key[1]}"
    explanation = (
        f"{name} was offline or unread at the final read: "
        f"{len(acked)} acknowledged of {sent} sent records could not be judged"
    )
    return _witness(
        history,
        acked[:OFFSETS_SHOWN_MAX],
        name,
        [history.offset[r] for r in acked[:OFFSETS_SHOWN_MAX]],
        explanation,
    )


def check_lost(history: History, observed: Observed, trace: TraceIndex) -> CheckResult:
    """Acked records absent from the read of their (readable) partition."""
    outcomes = _txn_outcomes(history)
    judged, first = observed.judged, observed.first_offset
    topic, partition, txn = history.topic, history.partition, history.txn
    lost = []
    for rid, status in enumerate(history.status):
        if status != OK or first[rid] >= 0 or (topic[rid], partition[rid]) not in judged:
            continue
        if txn[rid] == NO_TXN or outcomes[txn[rid]] == "commit":
            lost.append(rid)
    reads = {(r.topic, r.partition): r for r in observed.reads}
    witnesses = [_lost_witness(history, rid, reads, trace) for rid in lost[:WITNESSES_MAX]]
    return CheckResult(not lost, {"lost": len(lost)}, {"lost": witnesses})


def check_duplicated(history: History, observed: Observed, trace: TraceIndex) -> CheckResult:
    """Record ids read at more than one offset, counted once per id."""
    ids = sorted(observed.copies)
    witnesses = [
        _duplicate_witness(history, rid, observed.copies[rid], trace) for rid in ids[:WITNESSES_MAX]
    ]
    return CheckResult(not ids, {"duplicated": len(ids)}, {"duplicated": witnesses})


def check_reordered(history: History, observed: Observed, trace: TraceIndex) -> CheckResult:
    """Records whose first copy follows a later-sent record of the same producer and partition.

    Per (producer, partition) we walk the log keeping the highest send index
    seen so far; a record below it was overtaken. Missing records never count.
    """
    topic_ids = {name: i for i, name in enumerate(history.topics)}
    process, send_index, first = history.process, history.send_index, observed.first_offset
    count, witnesses = 0, []
    for read in observed.reads:
        t, p = topic_ids.get(read.topic, -1), read.partition
        latest: dict[int, tuple[int, int, int]] = {}  # process -> (send index, id, offset)
        for offset, rid in zip(read.offsets, read.record_ids, strict=True):
            if not _sent_to(history, rid, t, p) or first[rid] != offset:
                continue
            top = latest.get(process[rid])
            if top is None or send_index[rid] > top[0]:
                latest[process[rid]] = (send_index[rid], rid, offset)
                continue
            count += 1
            if len(witnesses) < WITNESSES_MAX:
                witnesses.append(_reorder_witness(history, (rid, offset), top[1:], read, trace))
    return CheckResult(count == 0, {"reordered": count}, {"reordered": witnesses})


def check_aborted_read(history: History, observed: Observed, trace: TraceIndex) -> CheckResult:
    """Visible records that must not be: definitely failed, or of an aborted transaction."""
    outcomes = _txn_outcomes(history)
    status, txn, first = history.status, history.txn, observed.first_offset
    found = [
        rid
        for rid in range(len(status))
        if first[rid] >= 0
        and (status[rid] == FAIL or (txn[rid] != NO_TXN and outcomes[txn[rid]] == "abort"))
    ]
    witnesses = [_aborted_witness(history, rid, first[rid], trace) for rid in found[:WITNESSES_MAX]]
    return CheckResult(not found, {"aborted_read": len(found)}, {"aborted_read": witnesses})


def check_torn_txn(history: History, observed: Observed) -> CheckResult:
    """Committed transactions with some, not all, of their acked or unknown records visible.

    Records in unreadable partitions are not judged either way.
    """
    outcomes = _txn_outcomes(history)
    visible: dict[int, list[int]] = {}
    missing: dict[int, list[int]] = {}
    topic, partition, first = history.topic, history.partition, observed.first_offset
    for rid, txn_id in enumerate(history.txn):
        if txn_id == NO_TXN or outcomes[txn_id] != "commit" or history.status[rid] == FAIL:
            continue
        if first[rid] >= 0:
            visible.setdefault(txn_id, []).append(rid)
        elif (topic[rid], partition[rid]) in observed.judged:
            missing.setdefault(txn_id, []).append(rid)
    torn = sorted(set(visible) & set(missing))
    witnesses = [
        _torn_witness(history, i, visible[i], missing[i], first) for i in torn[:WITNESSES_MAX]
    ]
    return CheckResult(not torn, {"torn_txn": len(torn)}, {"torn_txn": witnesses})


def check_recovered(history: History, observed: Observed) -> CheckResult:
    """Unacknowledged records (info, pending or fail) found in the log. Info only."""
    status, first = history.status, observed.first_offset
    count = sum(1 for rid, s in enumerate(status) if s != OK and first[rid] >= 0)
    return CheckResult(True, {"recovered": count}, {})


def check_unexpected(history: History, observed: Observed) -> CheckResult:
    """Ids in the log never sent to that partition: the simulator invented or moved a record."""
    witnesses = [_unexpected_witness(history, *row) for row in observed.foreign[:WITNESSES_MAX]]
    count = len({row[0] for row in observed.foreign})
    return CheckResult(not count, {"unexpected": count}, {"unexpected": witnesses})


def check(
    history: History,
    final_read: Mapping[TopicPartition, PartitionRead] | None,
    trace: Sequence[TraceEvent] = (),
) -> CheckResult:
    """Run every checker against one final read and compose their verdicts.

    Without a final read nothing can be judged: the verdict is "unknown".
    """
    base = CheckResult(
        True, dict.fromkeys(COUNT_KEYS + EXTRA_KEYS, 0), {kind: [] for kind in ANOMALIES}
    )
    results = [base, check_safe("counts", check_counts, history)]
    if final_read is None:
        results.append(
            CheckResult("unknown", {}, {}, {"final_read": "no final read: nothing was judged"})
        )
        return compose(results)
    try:
        observed = observe(history, final_read)
    except Exception as error:  # A bad read is "unknown", as in check_safe.
        results.append(
            CheckResult("unknown", {}, {}, {"observe": f"{type(error).__name__}: {error}"})
        )
        return compose(results)
    index, indexed = _index_trace(trace)
    results.append(indexed)
    for name, checker, wants_trace in CHECKERS:
        args = (history, observed, index) if wants_trace else (history, observed)
        results.append(check_safe(name, checker, *args))
    return compose(results)


def _index_trace(trace: Sequence[TraceEvent]) -> tuple[TraceIndex, CheckResult]:
    """Index the trace; if that fails, explanations degrade but verdicts stand."""
    try:
        return TraceIndex(trace), CheckResult(True, {}, {})
    except Exception as error:  # A trace bug must not hide the verdict.
        return TraceIndex(()), CheckResult(
            True, {}, {}, {"trace": f"{type(error).__name__}: {error}"}
        )


CHECKERS: tuple[tuple[str, Callable[..., CheckResult], bool], ...] = (
    ("readable", check_readable, False),
    ("lost", check_lost, True),
    ("duplicated", check_duplicated, True),
    ("reordered", check_reordered, True),
    ("aborted_read", check_aborted_read, True),
    ("torn_txn", check_torn_txn, False),
    ("recovered", check_recovered, False),
    ("unexpected", check_unexpected, False),
)
"""(name, checker, takes the trace index): what `check` composes, in order."""


# --- witnesses and their explanations --------------------------------------


def _witness(
    history: History, rids: Sequence[int], partition: str, offsets: list[int], explanation: str
) -> dict:
    return {
        "records": [history.describe(rid) for rid in rids],
        "partition": partition,
        "offsets": offsets,
        "explanation": explanation,
    }


def _tp(history: History, rid: int) -> TopicPartition:
    return history.topics[history.topic[rid]], history.partition[rid]


def _name(tp: TopicPartition) -> str:
    return f"{tp[0]}/{tp[1]}"


def _ms(time_ms: float) -> str:
    return f"t={time_ms:.1f}ms"


def _offsets_text(offsets: Sequence[int]) -> str:
    shown = ", ".join(str(o) for o in offsets[:OFFSETS_SHOWN_MAX])
    return shown + (", …" if len(offsets) > OFFSETS_SHOWN_MAX else "")


def _written_by(append: Append | None) -> str:
    if append is None:
        return "no append in the trace"
    return f"appended by broker-{append.broker} (epoch {append.epoch}) at {_ms(append.time_ms)}"


def _lost_witness(
    history: History, rid: int, reads: dict[TopicPartition, PartitionRead], trace: TraceIndex
) -> dict:
    tp, offset = _tp(history, rid), history.offset[rid]
    label, acked_ms = history.record_label(rid), history.done_ms[rid]
    bound = reads[tp].high_watermark
    if offset < 0:
        explanation = (
            f"{label} reported success at {_ms(acked_ms)} with offset -1 (acks=0: the producer "
            f"does not wait for the broker); no copy is in {_name(tp)} read up to offset {bound}"
        )
        return _witness(history, [rid], _name(tp), [offset], explanation)
    append = trace.writer(tp, offset, before_ms=acked_ms)
    leader = f" (leader broker-{append.broker}, epoch {append.epoch})" if append else ""
    acked = f"{label} acked at {_name(tp)} offset {offset}{leader} at {_ms(acked_ms)}"
    return _witness(
        history,
        [rid],
        _name(tp),
        [offset],
        f"{acked}; {_why_gone(tp, offset, bound, append, trace)}",
    )


def _why_gone(
    tp: TopicPartition, offset: int, bound: int, append: Append | None, trace: TraceIndex
) -> str:
    """The truncation that removed `offset`, preferring the broker that wrote it."""
    after_ms = append.time_ms if append else 0.0
    cut = trace.truncation(tp, offset, after_ms, append.broker) if append else None
    if cut is None:
        cut = trace.truncation(tp, offset, after_ms, None)
    if cut is None:
        if offset >= bound:
            return f"never committed: offset {offset} is at or above the read bound {bound}"
        return f"no truncation of {_name(tp)} covering offset {offset} is in the trace"
    truncated = f"broker-{cut.broker} truncated {_name(tp)} from {cut.from_offset} to {cut.to_offset} at {_ms(cut.time_ms)}"
    elect = trace.election(tp, cut.time_ms)
    if elect is None or elect.leader == cut.broker:
        return f"{truncated} ({cut.reason})"
    kind = "unclean" if elect.unclean else "clean"
    return (
        f"{truncated} after broker-{elect.leader} was elected leader (epoch {elect.epoch}, {kind})"
    )


def _duplicate_witness(history: History, rid: int, offsets: list[int], trace: TraceIndex) -> dict:
    tp = _tp(history, rid)
    copies = "; ".join(
        f"offset {o} {_written_by(trace.writer(tp, o))}" for o in offsets[:OFFSETS_SHOWN_MAX]
    )
    acked = history.offset[rid]
    ack_text = f"acked at offset {acked}" if acked >= 0 else STATUS_NAMES[history.status[rid]]
    explanation = (
        f"{history.record_label(rid)} ({ack_text}) appears {len(offsets)} times in {_name(tp)} "
        f"at offsets {_offsets_text(offsets)}: {copies}"
    )
    return _witness(history, [rid], _name(tp), list(offsets), explanation)


def _reorder_witness(
    history: History,
    earlier: tuple[int, int],
    later: tuple[int, int],
    read: PartitionRead,
    trace: TraceIndex,
) -> dict:
    """`earlier` was sent first but lies after `later` in the log."""
    (rid, offset), (top, top_offset) = earlier, later
    tp = (read.topic, read.partition)
    explanation = (
        f"{history.record_label(rid)} was sent before {history.record_label(top)} but lies after it "
        f"in {_name(tp)}: offset {top_offset} {_written_by(trace.writer(tp, top_offset))}; "
        f"offset {offset} {_written_by(trace.writer(tp, offset))}"
    )
    return _witness(history, [rid, top], _name(tp), [offset, top_offset], explanation)


def _aborted_witness(history: History, rid: int, offset: int, trace: TraceIndex) -> dict:
    tp = _tp(history, rid)
    label = history.record_label(rid)
    if history.status[rid] == FAIL:
        why = f"failed ({history.error[rid]}) at {_ms(history.done_ms[rid])}"
    else:
        txn = history.txns[history.txn[rid]]
        why = f"belongs to transaction {txn.txn_id} of {txn.process}, which aborted"
    explanation = f"{label} {why} but is visible at {_name(tp)} offset {offset}, {_written_by(trace.writer(tp, offset))}"
    return _witness(history, [rid], _name(tp), [offset], explanation)


def _torn_witness(
    history: History, txn_id: int, visible: list[int], missing: list[int], first: list[int]
) -> dict:
    txn = history.txns[txn_id]
    shown = missing[:OFFSETS_SHOWN_MAX]
    names = [_name(tp) for tp in sorted({_tp(history, rid) for rid in visible + missing})]
    explanation = (
        f"transaction {txn_id} of {txn.process} (producer id {txn.producer_id}, epoch "
        f"{txn.producer_epoch}) committed, but only {len(visible)} of {len(visible) + len(missing)} "
        f"records are visible; missing: {', '.join(history.record_label(r) for r in shown)}"
        + (", …" if len(missing) > len(shown) else "")
    )
    rids = [visible[0], *shown]
    return _witness(history, rids, ",".join(names), [first[r] for r in rids], explanation)


def _unexpected_witness(
    history: History, rid: int, topic: str, partition: int, offset: int
) -> dict:
    where = f"{topic}/{partition}"
    if not 0 <= rid < len(history.status):
        return _witness(
            history,
            [],
            where,
            [offset],
            f"record id {rid} at {where} offset {offset} was never sent",
        )
    sent = _name(_tp(history, rid))
    explanation = (
        f"{history.record_label(rid)} was sent to {sent} but is read at {where} offset {offset}"
    )
    return _witness(history, [rid], where, [offset], explanation)
