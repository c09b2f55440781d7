"""KafkaConsumer: a simple reader with kafka-python's API, over `net`.

Enough of kafka-python's `KafkaConsumer` for demos, checks and the
consume-transform-produce workload: `assign([TopicPartition])`, `seek`,
`seek_to_beginning`, `seek_to_end`, `position`, `poll(timeout_ms)` →
`{TopicPartition: [ConsumerRecord]}`, `committed` (a group's offsets), and
`isolation_level`:

- `read_uncommitted` reads up to the high watermark;
- `read_committed` reads up to the last stable offset (LSO) and drops the
  records of aborted transactions the leader lists in its answer, as
  Kafka's `Fetcher` does with `abortedTransactions`; control records
  (transaction markers) are never returned, but occupy offsets.

Record payloads: the simulated log stores record ids, not bytes; a record's
key and value are looked up in the history by id (`History.payloads`),
which is where the producer left them. Left out: group membership and
rebalances, auto-commit, subscriptions by pattern.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

from sim import errors
from sim.client.metadata import ClientMetadata
from sim.net import RpcClient
from sim.protocol import (
    ConsumerFetchData,
    ConsumerFetchRequest,
    ConsumerFetchResponse,
    Errors,
    FindCoordinatorRequest,
    FindCoordinatorResponse,
    MetadataResponse,
    OffsetFetchRequest,
    OffsetFetchResponse,
    read_committed_batches,
)

TopicPartition = namedtuple("TopicPartition", ["topic", "partition"])
ConsumerRecord = namedtuple(
    "ConsumerRecord",
    [
        "topic",
        "partition",
        "leader_epoch",
        "offset",
        "timestamp",
        "timestamp_type",
        "key",
        "value",
        "headers",
        "checksum",
        "serialized_key_size",
        "serialized_value_size",
        "serialized_header_size",
    ],
)
OffsetAndMetadata = namedtuple(
    "OffsetAndMetadata", ["offset", "metadata", "leader_epoch"], defaults=[None, "", -1]
)

ISOLATION_LEVELS = ("read_uncommitted", "read_committed")
DEFAULTS: dict[str, Any] = {
    "bootstrap_servers": "localhost",
    "client_id": None,
    "group_id": None,
    "key_deserializer": None,
    "value_deserializer": None,
    "isolation_level": "read_uncommitted",
    "auto_offset_reset": "latest",
    "enable_auto_commit": True,
    "fetch_max_wait_ms": 500,
    "max_poll_records": 500,
    "request_timeout_ms": 30000,
    "retry_backoff_ms": 100,
    "metadata_max_age_ms": 300000,
    "consumer_timeout_ms": float("inf"),
}


def apply_read(
    data: ConsumerFetchData, isolation_level: str, start: int
) -> list[tuple[int, int, int]]:
    """(offset, record id, leader epoch) visible to a reader from `start`.

    The bound is the HW, or the LSO for read_committed, where records of the
    aborted transactions listed in `data.aborted` are skipped: a producer's
    records from its aborted transaction's first offset up to its ABORT
    marker (`Fetcher`'s aborted-transaction filtering).
    """
    committed = isolation_level == "read_committed"
    bound = data.last_stable_offset if committed else data.high_watermark
    if committed:
        batches = read_committed_batches(data.batches, bound, data.aborted)
    else:
        batches = [b for b in data.batches if b.base_offset < bound and b.batch.control is None]
    out: list[tuple[int, int, int]] = []
    for log_batch in batches:
        for i, record_id in enumerate(log_batch.batch.record_ids):
            offset = log_batch.base_offset + i
            if start <= offset < bound:
                out.append((offset, record_id, log_batch.leader_epoch))
    return out


class KafkaConsumer:
    """kafka-python's `KafkaConsumer`, simulated (assignment only, no groups)."""

    def __init__(self, *topics: str, cluster: Any = None, **configs: Any) -> None:
        from sim.client.producer import _current_env

        env = cluster if cluster is not None else (_current_env[0] if _current_env else None)
        if env is None:
            raise errors.KafkaConfigurationError(
                "no simulated cluster: create sim.Cluster(...) first, or pass cluster="
            )
        unknown = sorted(set(configs) - set(DEFAULTS))
        if unknown:
            raise errors.KafkaConfigurationError(f"Unrecognized configs: {unknown}")
        self.config = dict(DEFAULTS, **configs)
        if self.config["isolation_level"] not in ISOLATION_LEVELS:
            raise errors.KafkaConfigurationError(
                f"Unrecognized isolation_level {self.config['isolation_level']!r}"
            )
        if self.config["auto_offset_reset"] not in ("earliest", "latest", "none"):
            raise errors.KafkaConfigurationError(
                f"Unrecognized auto_offset_reset {self.config['auto_offset_reset']!r}"
            )
        self.env = env
        self.world = env.world
        self.net = env.net
        self.name = env.new_client_name("consumer")
        self.rpc = RpcClient(self.world, self.net, self.name)
        self.metadata = ClientMetadata(
            self.rpc,
            env.bootstrap_brokers(),
            self.config["request_timeout_ms"],
            self.config["retry_backoff_ms"],
            self.config["metadata_max_age_ms"],
            lambda: None,
        )
        self._assignment: list[TopicPartition] = []
        self._positions: dict[TopicPartition, int] = {}
        self._buffer: dict[TopicPartition, list[ConsumerRecord]] = {}
        self._fetching = False
        self._coordinator_attempts = 0
        self.closed = False
        self.net.add_node(self.name, self)
        if topics:
            self._wait_metadata(list(topics))
            self.assign(
                [
                    TopicPartition(t, p)
                    for t in topics
                    for p in sorted(self.metadata.partitions_for_topic(t) or ())
                ]
            )

    # --- the wire --------------------------------------------------------------------

    def receive(self, source: str, message: Any) -> None:
        if isinstance(
            message,
            ConsumerFetchResponse
            | MetadataResponse
            | OffsetFetchResponse
            | FindCoordinatorResponse,
        ):
            self.rpc.handle_response(source, message)

    def on_disconnect(self, peer: str) -> None:
        self.rpc.on_disconnect(peer)

    # --- assignment and positions -------------------------------------------------------

    def assign(self, partitions: list[TopicPartition]) -> None:
        self._assignment = [TopicPartition(*tp) for tp in partitions]
        self._positions = {
            tp: self._positions[tp] for tp in self._assignment if tp in self._positions
        }

    def assignment(self) -> set[TopicPartition]:
        return set(self._assignment)

    def seek(self, partition: TopicPartition, offset: int) -> None:
        assert offset >= 0, "offset must be >= 0"
        self._require_assigned(partition)
        self._positions[TopicPartition(*partition)] = offset
        self._buffer.pop(TopicPartition(*partition), None)

    def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        for tp in partitions or self._assignment:
            self.seek(tp, 0)

    def seek_to_end(self, *partitions: TopicPartition) -> None:
        for tp in partitions or self._assignment:
            self.seek(tp, self._end_offset(TopicPartition(*tp)))

    def position(self, partition: TopicPartition) -> int:
        tp = TopicPartition(*partition)
        self._require_assigned(tp)
        if tp not in self._positions:
            self._reset(tp)
        return self._positions[tp]

    def _require_assigned(self, tp: TopicPartition) -> None:
        if TopicPartition(*tp) not in self._assignment:
            raise errors.IllegalStateError(f"No current assignment for partition {tp}")

    def _reset(self, tp: TopicPartition) -> None:
        policy = self.config["auto_offset_reset"]
        if policy == "none":
            raise errors.KafkaError(f"NoOffsetForPartitionError: {tp}")
        self._positions[tp] = 0 if policy == "earliest" else self._end_offset(tp)

    def _end_offset(self, tp: TopicPartition) -> int:
        data = self._fetch_blocking([(tp, 10**18)], 0)
        item = data.get(tp)
        if item is None:
            return 0
        return (
            item.last_stable_offset
            if self.config["isolation_level"] == "read_committed"
            else item.high_watermark
        )

    # --- polling ------------------------------------------------------------------------

    def poll(
        self, timeout_ms: float = 0, max_records: int | None = None, update_offsets: bool = True
    ) -> dict[TopicPartition, list[ConsumerRecord]]:
        """Records fetched since the last poll, waiting up to `timeout_ms` of simulated time."""
        if self.closed:
            raise errors.IllegalStateError("KafkaConsumer is closed")
        limit = max_records or self.config["max_poll_records"]
        deadline = self.world.now_ms + timeout_ms
        while True:
            if not any(self._buffer.values()):
                wanted = [(tp, self.position(tp)) for tp in self._assignment]
                fetched = self._fetch_blocking(wanted, max(0.0, deadline - self.world.now_ms))
                for tp, data in fetched.items():
                    self._buffer[tp] = self._to_records(tp, data)
            out: dict[TopicPartition, list[ConsumerRecord]] = {}
            taken = 0
            for tp in self._assignment:
                records = self._buffer.get(tp) or []
                if not records or taken >= limit:
                    continue
                chunk = records[: limit - taken]
                self._buffer[tp] = records[len(chunk) :]
                out[tp] = chunk
                taken += len(chunk)
                if update_offsets:
                    self._positions[tp] = chunk[-1].offset + 1
            if out or self.world.now_ms >= deadline:
                return out
            self.env.run_until(
                lambda: False, min(self.config["fetch_max_wait_ms"], deadline - self.world.now_ms)
            )

    def _to_records(self, tp: TopicPartition, data: ConsumerFetchData) -> list[ConsumerRecord]:
        start = self._positions[tp]
        visible = apply_read(data, self.config["isolation_level"], start)
        if visible:
            pass
        elif data.batches:
            # Nothing visible (control records or aborted data): move past what was read.
            bound = (
                data.last_stable_offset
                if self.config["isolation_level"] == "read_committed"
                else data.high_watermark
            )
            self._positions[tp] = max(start, min(bound, data.batches[-1].next_offset))
        payloads = getattr(self.env.history, "payloads", {})
        records = []
        for offset, record_id, epoch in visible:
            key, value, timestamp = payloads.get(record_id, (None, None, -1))
            key = (
                self.config["key_deserializer"](key)
                if key is not None and self.config["key_deserializer"]
                else key
            )
            value = (
                self.config["value_deserializer"](value)
                if value is not None and self.config["value_deserializer"]
                else value
            )
            records.append(
                ConsumerRecord(
                    tp.topic,
                    tp.partition,
                    epoch,
                    offset,
                    timestamp,
                    0,
                    key,
                    value,
                    [],
                    None,
                    -1 if key is None else len(key),
                    -1 if value is None else len(value),
                    -1,
                )
            )
        return records

    def _fetch_blocking(
        self, wanted: list[tuple[TopicPartition, int]], timeout_ms: float
    ) -> dict[TopicPartition, ConsumerFetchData]:
        """One fetch per leader; advances simulated time until answered (or timeout)."""
        topics = sorted({tp.topic for tp, _ in wanted})
        self._wait_metadata(topics, max(timeout_ms, 50.0))
        by_leader: dict[int, list[tuple[str, int, int]]] = {}
        for tp, offset in wanted:
            leader = self.metadata.leader(tp.topic, tp.partition)
            if leader >= 0:
                by_leader.setdefault(leader, []).append((tp.topic, tp.partition, offset))
        results: dict[TopicPartition, ConsumerFetchData] = {}
        pending = [len(by_leader)]

        def on_response(response: ConsumerFetchResponse) -> None:
            pending[0] -= 1
            for data in response.partitions:
                if data.error == Errors.NONE:
                    results[TopicPartition(data.topic, data.partition)] = data
                else:
                    self.metadata.request_update()

        def on_error(_error: Errors) -> None:
            pending[0] -= 1
            self.metadata.request_update()

        for leader in sorted(by_leader):
            request = ConsumerFetchRequest(
                self.rpc.next_request_id(), self.config["isolation_level"], tuple(by_leader[leader])
            )
            self.rpc.call(
                f"broker-{leader}",
                request,
                self.config["request_timeout_ms"],
                on_response,
                on_error,
            )
        self.env.run_until(lambda: pending[0] <= 0, max(timeout_ms, 50.0))
        return results

    def _wait_metadata(self, topics: list[str], budget_ms: float | None = None) -> None:
        """Learn the topics' leaders, refreshing first if a fetch asked for it.

        Kafka's consumer refreshes its metadata after NOT_LEADER_OR_FOLLOWER
        or a disconnect (`Fetcher` → `Metadata.requestUpdate`) before its next
        fetch, so it follows a leader change. A refresh of topics already known
        waits at most `budget_ms` (the poll's remaining time); a first lookup
        up to `request_timeout_ms`, then KafkaTimeoutError.
        """
        metadata = self.metadata

        def known() -> bool:
            return all(metadata.knows_topic(t) for t in topics)

        if known() and not metadata.need_update:
            return
        metadata.request_update()
        wait_ms = self.config["request_timeout_ms"]
        if known() and budget_ms is not None:
            wait_ms = min(wait_ms, budget_ms)
        deadline = self.world.now_ms + wait_ms
        while self.world.now_ms < deadline and (metadata.need_update or not known()):
            step = min(metadata.maybe_refresh(self.world.now_ms), deadline - self.world.now_ms)
            if metadata.in_flight:
                self.env.run_until(lambda: not metadata.in_flight, step)
            else:
                # Backing off between attempts: let simulated time pass (without
                # this the loop spun forever at one instant after a failed attempt).
                self.env.run_until(lambda: False, step)
        if not known():
            raise errors.KafkaTimeoutError(f"Failed to update metadata for {topics}")

    # --- committed offsets --------------------------------------------------------------

    def committed(
        self, partition: TopicPartition, metadata: bool = False, timeout_ms: float | None = None
    ) -> Any:
        """The group's committed offset for `partition`, or None (kafka-python's `committed`).

        FindCoordinator (group), then OffsetFetch from that broker, retried on
        NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE / a lost answer until
        `timeout_ms` (default `request_timeout_ms`) of simulated time, then
        KafkaTimeoutError. Offsets sent with `send_offsets_to_transaction`
        count only once their transaction committed (the coordinator reads
        its `__consumer_offsets` partition up to the LSO, without aborted data).
        """
        group_id = self.config["group_id"]
        if group_id is None:
            raise errors.IllegalStateError("Requires group_id")
        if not isinstance(partition, TopicPartition):
            raise TypeError("partition must be a TopicPartition namedtuple")
        budget = self.config["request_timeout_ms"] if timeout_ms is None else timeout_ms
        deadline = self.world.now_ms + budget
        while True:
            answer = self._offset_fetch_once(group_id, partition, deadline)
            if answer is not None:
                break
            if self.world.now_ms >= deadline:
                raise errors.KafkaTimeoutError(
                    f"Failed to fetch committed offsets for {partition} in {budget} ms"
                )
            self.env.run_until(
                lambda: False,
                min(self.config["retry_backoff_ms"], deadline - self.world.now_ms),
            )
        if answer < 0:
            return None
        return OffsetAndMetadata(answer, "", -1) if metadata else answer

    def _offset_fetch_once(self, group_id: str, tp: TopicPartition, deadline: float) -> int | None:
        """One FindCoordinator + OffsetFetch round; the offset (-1: none), or None to retry."""
        brokers = self.metadata.brokers
        self._coordinator_attempts += 1
        target = brokers[self._coordinator_attempts % len(brokers)]
        node: list[int] = []
        answer: list[int] = []

        def on_coordinator(response: FindCoordinatorResponse) -> None:
            if response.error == Errors.NONE:
                node.append(response.node)

        def on_offsets(response: OffsetFetchResponse) -> None:
            if response.error == Errors.NONE:
                answer.extend(o for t, p, o in response.offsets if (t, p) == tuple(tp))

        def remaining() -> float:
            return max(0.0, deadline - self.world.now_ms)

        request = FindCoordinatorRequest(self.rpc.next_request_id(), group_id, "group")
        self._call_blocking(target, request, on_coordinator, remaining())
        if not node or node[0] < 0:
            return None
        request = OffsetFetchRequest(self.rpc.next_request_id(), group_id, (tuple(tp),))
        self._call_blocking(f"broker-{node[0]}", request, on_offsets, remaining())
        return answer[0] if answer else None

    def _call_blocking(
        self, target: str, request: Any, on_response: Any, timeout_ms: float
    ) -> None:
        """Send one request and advance simulated time until it is answered or fails."""
        done = [False]

        def on_answer(response: Any) -> None:
            done[0] = True
            on_response(response)

        def on_error(_error: Errors) -> None:
            done[0] = True

        self.rpc.call(target, request, self.config["request_timeout_ms"], on_answer, on_error)
        self.env.run_until(lambda: done[0], max(timeout_ms, 1.0))

    def partitions_for_topic(self, topic: str) -> set[int]:
        self._wait_metadata([topic])
        return self.metadata.partitions_for_topic(topic) or set()

    def close(self, autocommit: bool = True) -> None:
        self.closed = True


__all__ = ["ConsumerRecord", "KafkaConsumer", "OffsetAndMetadata", "TopicPartition", "apply_read"]
