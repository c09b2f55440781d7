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
from sim.world import World

TICK_MS_MIN = 1.0
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

    @property
    def done(self) -> bool:
        return self.finished == len(self.producers)

    def start(self) -> None:
        for producer in self.producers:
            self.world.process(self._produce(producer))

    def _produce(self, producer: KafkaProducer) -> Generator[Any, Any, None]:
        """Send this producer's records on schedule; bounded by `records`."""
        world = self.world
        workload = self.workload
        spacing_ms = 1000.0 / workload.rate_per_s
        tick_ms = max(TICK_MS_MIN, spacing_ms)
        if workload.start_ms > world.now_ms:
            yield world.timeout(workload.start_ms - world.now_ms)
        while not producer.metadata.knows_topic(workload.topic):
            producer.metadata.request_update()
            producer.sender.wake()
            yield world.timeout(METADATA_POLL_MS)
        start = world.now_ms
        sent = 0
        history = producer.history
        accumulator = producer.accumulator
        append = producer.append
        keyless = workload.keys == "none"
        keyless_size = record_size(0, workload.value_bytes)
        while sent < workload.records:
            due = min(workload.records, int((world.now_ms - start) / spacing_ms) + 1)
            while sent < due:
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
                    if not ok:
                        record_id = history.invoke(producer.name, workload.topic, -1, world.now_ms)
                        history.fail([record_id], world.now_ms, "KafkaTimeoutError")
                        sent += 1
                        continue
                append(workload.topic, None, key, key, None, None, size, None)
                sent += 1
            if sent < workload.records:
                next_due = start + sent * spacing_ms
                yield world.timeout(max(tick_ms, next_due - world.now_ms))
        self.finished += 1

    def _wait_for_room(self, producer: KafkaProducer, size: int) -> Generator[Any, Any, bool]:
        """Block like `send()` on a full buffer, up to max.block.ms."""
        deadline = self.world.now_ms + producer.config.max_block_ms
        while not producer.accumulator.has_room(size):
            if self.world.now_ms >= deadline:
                return False
            yield self.world.timeout(min(TICK_MS_MIN, deadline - self.world.now_ms))
        return True
