"""The producer's cluster metadata: who leads each partition, and refreshes.

Kafka clients cache metadata and refresh it when told a leader moved
(an `InvalidMetadataException`: NOT_LEADER_OR_FOLLOWER, a disconnect…),
when a partition has no known leader, and every `metadata.max.age.ms`.
A refresh asks one broker — the first reachable one in rotation — and waits
up to `request.timeout.ms` before trying the next.
"""

from __future__ import annotations

from collections.abc import Callable

from sim.net import RpcClient
from sim.protocol import Errors, MetadataImage, MetadataRequest, MetadataResponse, PartitionState


class ClientMetadata:
    """Cached metadata and the refresh logic; also the partitioners' `cluster` view."""

    def __init__(
        self,
        rpc: RpcClient,
        brokers: list[str],
        request_timeout_ms: float,
        retry_backoff_ms: float,
        max_age_ms: float,
        on_update: Callable[[], None],
    ) -> None:
        assert brokers, "a producer needs at least one bootstrap broker"
        self.rpc = rpc
        self.brokers = list(brokers)
        self.request_timeout_ms = request_timeout_ms
        self.retry_backoff_ms = retry_backoff_ms
        self.max_age_ms = max_age_ms
        self.on_update = on_update
        self.image: MetadataImage | None = None
        self._leaders: dict[tuple[str, int], PartitionState] = {}
        self._topics: dict[str, list[int]] = {}
        self._sorted: dict[str, tuple[int, ...]] = {}
        self._available: dict[str, tuple[int, ...]] = {}
        self.need_update = True
        self.in_flight = False
        self.last_attempt_ms = -1e18
        self.last_update_ms = -1e18
        self._next_broker = 0
        self.updates = 0

    # --- reads --------------------------------------------------------------------

    def leader(self, topic: str, partition: int) -> int:
        state = self._leaders.get((topic, partition))
        return -1 if state is None else state.leader

    def leader_epoch(self, topic: str, partition: int) -> int:
        state = self._leaders.get((topic, partition))
        return -1 if state is None else state.leader_epoch

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        parts = self._topics.get(topic)
        return None if parts is None else set(parts)

    def available_partitions_for_topic(self, topic: str) -> set[int] | None:
        parts = self._topics.get(topic)
        if parts is None:
            return None
        return {p for p in parts if self._leaders[(topic, p)].leader >= 0}

    def sorted_partitions(self, topic: str) -> tuple[int, ...]:
        """All partitions of a topic, sorted (cached per metadata update: a hot path)."""
        return self._sorted.get(topic, ())

    def sorted_available(self, topic: str) -> tuple[int, ...]:
        """Partitions with a leader, sorted (cached per metadata update)."""
        return self._available.get(topic, ())

    def knows_topic(self, topic: str) -> bool:
        return topic in self._topics

    # --- refresh --------------------------------------------------------------------

    def request_update(self) -> None:
        self.need_update = True

    def maybe_refresh(self, now_ms: float) -> float:
        """Send a metadata request if one is due; returns ms until the next check."""
        if now_ms - self.last_update_ms >= self.max_age_ms:
            self.need_update = True
        if not self.need_update or self.in_flight:
            return self.max_age_ms if not self.need_update else self.request_timeout_ms
        wait = self.last_attempt_ms + self.retry_backoff_ms - now_ms
        if wait > 0:
            return wait
        target = self.brokers[self._next_broker % len(self.brokers)]
        self._next_broker += 1
        self.in_flight = True
        self.last_attempt_ms = now_ms
        request = MetadataRequest(self.rpc.next_request_id())
        self.rpc.call(target, request, self.request_timeout_ms, self._on_response, self._on_error)
        return self.request_timeout_ms

    def _on_response(self, response: MetadataResponse) -> None:
        self.in_flight = False
        image = response.image
        if self.image is not None and image.version < self.image.version:
            self.on_update()  # Stale broker: keep ours, try again after backoff.
            return
        self.image = image
        self.need_update = False
        self.last_update_ms = self.rpc.world.now_ms
        self._leaders = {(s.topic, s.partition): s for s in image.partitions}
        topics: dict[str, list[int]] = {}
        for state in image.partitions:
            topics.setdefault(state.topic, []).append(state.partition)
        self._topics = {t: sorted(ps) for t, ps in topics.items()}
        self._sorted = {t: tuple(ps) for t, ps in self._topics.items()}
        self._available = {
            t: tuple(p for p in ps if self._leaders[(t, p)].leader >= 0)
            for t, ps in self._topics.items()
        }
        self.updates += 1
        self.on_update()

    def _on_error(self, error: Errors) -> None:
        self.in_flight = False
        self.on_update()
