"""The workload: producers sending records at a steady simulated rate.

Each producer sends `records` records at `rate_per_s` (simulated), keyed
"none", "unique" (key-i) or "cycle:N" (key-(i mod N)), each of
`value_bytes`. To keep SimPy events per batch rather than per record, a
producer wakes once per tick (1 ms, or one record's spacing if slower) and
sends every record due by then; the record's invoke time is the tick's.

A send that finds the buffer full waits up to `max.block.ms`, as
`send()` would block, then fails definitely (`KafkaTimeoutError`).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from sim.client.accumulator import RECORD_BATCH_OVERHEAD, record_size
from sim.client.producer import KafkaProducer
from sim.history import OK
from sim.world import World

TICK_MS_MIN = 1.0
TXN_POLL_MS = 5.0
PAUSE_POLL_MS = 10.0
DEFAULT_TXN_SIZE = 100
"""Records per transaction when a transactional workload does not say."""
METADATA_POLL_MS = 10.0


@dataclass(frozen=True)
class Workload:
    """What each producer sends (the scenario's `[workload]`)."""

    topic: str
    records: int
    rate_per_s: float
    keys: str = "none"
    value_bytes: int = 100
    start_ms: float = 0.0
    txn_size: int | None = None
    abort_every: int | None = None
    producer_start_ms: tuple[float, ...] = ()
    """Per-producer start times (producer i starts at the i-th, default start_ms)."""

    def start_for(self, index: int) -> float:
        if index < len(self.producer_start_ms):
            return self.producer_start_ms[index]
        return self.start_ms

    def key_for(self, index: int) -> bytes | None:
        if self.keys == "none":
            return None
        if self.keys == "unique":
            return b"key-%d" % index
        assert self.keys.startswith("cycle:"), self.keys
        return b"key-%d" % (index % int(self.keys[6:]))


class WorkloadRunner:
    """Drives producers; `done` once every record has been handed to send()."""

    def __init__(self, world: World, workload: Workload, producers: list[KafkaProducer]) -> None:
        self.world = world
        self.workload = workload
        self.producers = producers
        self.finished = 0
        self.next_record = [0] * len(producers)
        """Per producer: how many of its records the application has sent."""
        self.sent_ids: list[list[int]] = [[] for _ in producers]
        """Per producer: the history ids of the records it sent (for re-sends)."""
        self.done_flags = [False] * len(producers)

    @property
    def done(self) -> bool:
        """Every producer finished, or crashed with no restart to wait for (a pending
        restart is a scheduled fault, which the run waits for anyway)."""
        return all(
            flag or producer.crashed
            for flag, producer in zip(self.done_flags, self.producers, strict=True)
        )

    def start(self) -> None:
        for index, producer in enumerate(self.producers):
            self._start_one(producer, index)

    def _start_one(self, producer: KafkaProducer, index: int) -> None:
        if producer.txn_client is not None:
            self.world.process(self._produce_transactional(producer, index))
        else:
            self.world.process(self._produce(producer, index))

    def restart(self, index: int, producer: KafkaProducer) -> None:
        """The application restarts with a new producer instance (a new session).

        As an at-least-once application does, it first sends again every record
        whose send it never saw acknowledged, then goes on where it stopped.
        The new instance has a new producer id, so the broker cannot tell
        these re-sends from new records (the "one session" limit of idempotence).
        """
        self.producers[index] = producer
        if self.done_flags[index]:
            self.done_flags[index] = False
            self.finished -= 1
        self._start_one(producer, index)

    def _finish(self, index: int) -> None:
        if not self.done_flags[index]:
            self.done_flags[index] = True
            self.finished += 1

    def _await_start(self, producer: KafkaProducer, index: int) -> Generator[Any, Any, bool]:
        world = self.world
        start_ms = self.workload.start_for(index)
        if start_ms > world.now_ms:
            yield world.timeout(start_ms - world.now_ms)
        deadline = world.now_ms + producer.config.max_block_ms
        while not producer.metadata.knows_topic(self.workload.topic):
            if world.now_ms >= deadline:  # send() would raise KafkaTimeoutError: the app gives up.
                world.trace("workload.gave_up", producer=producer.name, call="metadata")
                return False
            producer.metadata.request_update()
            producer.sender.wake()
            yield world.timeout(METADATA_POLL_MS)
        return True

    def _produce(self, producer: KafkaProducer, index: int) -> Generator[Any, Any, None]:
        """Send this producer's records on schedule; bounded by `records`."""
        world = self.world
        workload = self.workload
        spacing_ms = 1000.0 / workload.rate_per_s
        tick_ms = max(TICK_MS_MIN, spacing_ms)
        if not (yield from self._await_start(producer, index)):
            self._finish(index)
            return
        yield from self._resend_unacknowledged(producer, index)
        start = world.now_ms - self.next_record[index] * spacing_ms
        history = producer.history
        accumulator = producer.accumulator
        append = producer.append
        sent_ids = self.sent_ids[index]
        keyless = workload.keys == "none"
        keyless_size = record_size(0, workload.value_bytes)
        while self.next_record[index] < workload.records:
            if producer.crashed:
                return  # The application died with it; `restart` starts it again.
            due = min(workload.records, int((world.now_ms - start) / spacing_ms) + 1)
            while producer.paused():  # A paused application sends nothing either.
                yield world.timeout(PAUSE_POLL_MS)
            while self.next_record[index] < due:
                sent = self.next_record[index]
                if keyless:
                    key, size = None, keyless_size
                else:
                    key = workload.key_for(sent)
                    size = record_size(len(key), workload.value_bytes)
                bound = (
                    accumulator.used_bytes + accumulator.batch_size + size + RECORD_BATCH_OVERHEAD
                )
                if bound > accumulator.buffer_memory and not accumulator.has_room(size):
                    ok = yield from self._wait_for_room(producer, size)
                    if producer.crashed:
                        return
                    if not ok:
                        record_id = history.invoke(producer.name, workload.topic, -1, world.now_ms)
                        history.fail([record_id], world.now_ms, "KafkaTimeoutError")
                        self.next_record[index] += 1
                        continue
                sent_ids.append(append(workload.topic, None, key, key, None, None, size, None))
                self.next_record[index] += 1
            if self.next_record[index] < workload.records:
                next_due = start + self.next_record[index] * spacing_ms
                yield world.timeout(max(tick_ms, next_due - world.now_ms))
        self._finish(index)

    def _resend_unacknowledged(
        self, producer: KafkaProducer, index: int
    ) -> Generator[Any, Any, None]:
        """After a restart: send again each record whose outcome the application never learnt."""
        history = producer.history
        pending = [r for r in self.sent_ids[index] if history.status[r] != OK]
        for record_id in pending:
            key = self.workload.key_for(history.send_index[record_id])
            size = record_size(len(key) if key is not None else 0, self.workload.value_bytes)
            while not producer.accumulator.has_room(size):
                yield self.world.timeout(TICK_MS_MIN)
            history.reinvoke(record_id, self.world.now_ms)
            # Same record, same partition: a re-send is the same logical record.
            partition = history.partition[record_id]
            producer.append(
                self.workload.topic,
                partition,
                key,
                key,
                None,
                None,
                size,
                None,
                record_id=record_id,
            )

    def _wait_for_room(self, producer: KafkaProducer, size: int) -> Generator[Any, Any, bool]:
        """Block like `send()` on a full buffer, up to max.block.ms."""
        deadline = self.world.now_ms + producer.config.max_block_ms
        while not producer.accumulator.has_room(size):
            if self.world.now_ms >= deadline:
                return False
            yield self.world.timeout(min(TICK_MS_MIN, deadline - self.world.now_ms))
        return True

    # --- transactions -------------------------------------------------------------------

    def _produce_transactional(
        self, producer: KafkaProducer, index: int
    ) -> Generator[Any, Any, None]:
        """init, then transactions of `txn_size` records, aborting every `abort_every`-th.

        A fatal error (fenced by a newer instance) ends this producer; an
        abortable one aborts the transaction and goes on with the next.
        """
        world = self.world
        workload = self.workload
        client = producer.txn_client
        assert client is not None
        txn_size = workload.txn_size or DEFAULT_TXN_SIZE
        spacing_ms = 1000.0 / workload.rate_per_s
        if not (yield from self._await_start(producer, index)):
            self._finish(index)
            return
        result = client.initialize()
        producer.sender.wake()
        if not (yield from self._wait(result, producer)):
            self._give_up(producer, index, "init_transactions")
            return
        sent = 0
        txn_index = 0
        while result.error is None and sent < workload.records:
            client.begin()
            count = min(txn_size, workload.records - sent)
            start = world.now_ms
            for i in range(count):
                due = start + i * spacing_ms
                if due > world.now_ms:
                    yield world.timeout(due - world.now_ms)
                while producer.paused():  # A paused application sends nothing either.
                    yield world.timeout(PAUSE_POLL_MS)
                if client.has_error():
                    break
                key = workload.key_for(sent)
                size = record_size(len(key) if key is not None else 0, workload.value_bytes)
                producer.append(
                    workload.topic, None, key, key, None, None, size, None, txn=client.history_txn
                )
                sent += 1
            txn_index += 1
            commit = not (workload.abort_every and txn_index % workload.abort_every == 0)
            result = yield from self._end(producer, commit and not client.has_error())
            if result is None:
                self._give_up(
                    producer, index, "commit_transaction" if commit else "abort_transaction"
                )
                return
            if client.state == "FATAL_ERROR":
                break
            if result.error is not None:
                result = yield from self._end(producer, False)
                if result is None:
                    self._give_up(producer, index, "abort_transaction")
                    return
        self._finish(index)

    def _give_up(self, producer: KafkaProducer, index: int, call: str) -> None:
        """A transactional call did not finish within max.block.ms (Java's TimeoutException):
        the application closes the producer; its open transaction's outcome is unknown."""
        client = producer.txn_client
        assert client is not None
        self.world.trace("workload.gave_up", producer=producer.name, call=call)
        if client.history_txn >= 0:
            producer.history.end_txn(client.history_txn, "unknown")
            client.history_txn = -1
        producer.close(timeout=0)
        self._finish(index)

    def _end(self, producer: KafkaProducer, commit: bool) -> Generator[Any, Any, Any]:
        client = producer.txn_client
        assert client is not None
        try:
            result = client.begin_end(commit)
        except Exception as error:  # noqa: BLE001 - the state machine refused: record and go on
            world = self.world
            world.trace("workload.txn_refused", producer=producer.name, error=str(error))
            from sim.client.transactional import TxnResult

            failed = TxnResult()
            failed.fail(error if isinstance(error, Exception) else RuntimeError(str(error)))
            return failed
        producer.sender.wake()
        if not (yield from self._wait(result, producer)):
            return None
        return result

    def _wait(self, result: Any, producer: KafkaProducer) -> Generator[Any, Any, bool]:
        """Poll a transactional result (cheap: transactions are few), up to max.block.ms."""
        deadline = self.world.now_ms + producer.config.max_block_ms
        while not result.done:
            if self.world.now_ms >= deadline:
                return False
            yield self.world.timeout(TXN_POLL_MS)
        return True
