"""The Sender: drain ready batches into produce requests, handle responses.

After the Java client's `Sender.runOnce` → `sendProducerData`: find the
ready partitions and their leaders, skip leaders whose connection is
backing off or already has `max.in.flight.requests.per.connection`
unanswered requests, drain at most one batch per partition into one
ProduceRequest per leader, expire batches past `delivery.timeout.ms`, and
sleep until the next batch could become ready or something wakes it.

Responses go to `complete_batch` (Java's `completeBatch`): success;
a retriable error retried at the front of its deque after
`retry.backoff.ms` (exponential, jittered, KIP-580); anything else fails the
batch. A batch's outcome in the history is `ok`, `fail` (definitely not
written: every attempt was rejected before append) or `info` (maybe written:
a timeout, a disconnect, NOT_ENOUGH_REPLICAS_AFTER_APPEND, an expiry while
in flight).

With max.in.flight = 1 a drained partition is muted until its response
(`guaranteeMessageOrder`), as in Java; with idempotence ordering comes from
sequence numbers instead (see `transactions.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim import errors
from sim.client.accumulator import ProducerBatch
from sim.client.config import backoff_ms
from sim.protocol import (
    ApiVersionsRequest,
    ApiVersionsResponse,
    Errors,
    InitProducerIdRequest,
    InitProducerIdResponse,
    ProduceRequest,
    ProduceResponse,
    RecordBatch,
)

if TYPE_CHECKING:
    from sim.client.producer import KafkaProducer

POSSIBLY_WRITTEN = frozenset(
    {Errors.REQUEST_TIMED_OUT, Errors.NETWORK_EXCEPTION, Errors.NOT_ENOUGH_REPLICAS_AFTER_APPEND}
)
"""Errors after which a batch may be in the log although the request failed."""

IDLE_POLL_MS = 1000.0
CONNECTION_SETUP_TIMEOUT_MS = 10000.0
"""`socket.connection.setup.timeout.ms` (KIP-601)."""


class Sender:
    """The producer's I/O process and its response handlers."""

    def __init__(self, producer: KafkaProducer) -> None:
        self.producer = producer
        self.world = producer.world
        self.config = producer.config
        self.accumulator = producer.accumulator
        self.metadata = producer.metadata
        self.rpc = producer.rpc
        self.txn = producer.txn_manager
        self.running = True
        self.muted: set[tuple[str, int]] = set()
        self.node_backoff_until: dict[int, float] = {}
        self.connected: set[int] = set()
        self.connecting: set[int] = set()
        self.node_failures: dict[int, int] = {}
        self._wakeup = self.world.env.event()
        self._backoff_rng = self.world.rng(f"{producer.name}.backoff")

    def wake(self) -> None:
        if not self._wakeup.triggered:
            self._wakeup.succeed()

    def run(self):
        """Send and expire until closed and nothing is left, forever otherwise."""
        world = self.world
        while self.running or self.accumulator.has_incomplete():
            if self.producer.paused():
                yield world.timeout(10.0)
                continue
            now = world.now_ms
            delay = self.metadata.maybe_refresh(now)
            client = self.producer.txn_client
            if client is not None:
                delay = min(delay, client.poll(now))
            elif self.txn is not None and not self.txn.has_producer_id:
                delay = min(delay, self._maybe_init_producer_id())
            delay = min(delay, self.send_producer_data(now))
            delay = min(delay, self.expire_batches(now))
            if self._wakeup.triggered:
                self._wakeup = world.env.event()
                if delay > 0:
                    continue
            if delay <= 0:
                yield world.timeout(0)
                continue
            yield world.env.any_of([world.timeout(delay), self._wakeup])

    # --- producer id -------------------------------------------------------------------

    def _maybe_init_producer_id(self) -> float:
        txn = self.txn
        assert txn is not None
        if txn.init_in_flight:
            return IDLE_POLL_MS
        image = self.metadata.image
        if image is None or not image.live_brokers:
            return IDLE_POLL_MS
        txn.init_in_flight = True
        target = (
            f"broker-{image.live_brokers[self.producer.init_attempts % len(image.live_brokers)]}"
        )
        self.producer.init_attempts += 1
        request = InitProducerIdRequest(self.rpc.next_request_id())

        def on_response(response: InitProducerIdResponse) -> None:
            txn.init_in_flight = False
            if response.error == Errors.NONE:
                txn.set_producer_id(response.producer_id, response.producer_epoch)
                self.world.trace(
                    "producer.pid", producer=self.producer.name, producer_id=response.producer_id
                )
            self.wake()

        def on_error(error: Errors) -> None:
            txn.init_in_flight = False
            self.wake()

        self.rpc.call(target, request, self.config.request_timeout_ms, on_response, on_error)
        return IDLE_POLL_MS

    # --- sending -------------------------------------------------------------------------

    def _node_ready(self, leader: int, now: float) -> bool:
        """`NetworkClient.ready`: connected (set up, not backing off) with room in flight."""
        if self.node_backoff_until.get(leader, -1.0) > now:
            return False
        if leader not in self.connected:
            self.connect(leader)
            return False
        return (
            self.rpc.in_flight(f"broker-{leader}")
            < self.config.max_in_flight_requests_per_connection
        )

    def connect(self, leader: int) -> None:
        """Set up a connection (ApiVersions first); data waits until it is answered."""
        if leader in self.connecting:
            return
        self.connecting.add(leader)

        def on_response(_response: ApiVersionsResponse) -> None:
            self.connecting.discard(leader)
            self.connected.add(leader)
            self.node_failures.pop(leader, None)
            self.wake()

        def on_error(_error: Errors) -> None:
            self.connecting.discard(leader)
            self._back_off(leader)
            self.wake()

        request = ApiVersionsRequest(self.rpc.next_request_id())
        self.rpc.call(
            f"broker-{leader}", request, CONNECTION_SETUP_TIMEOUT_MS, on_response, on_error
        )

    def _back_off(self, leader: int) -> None:
        """A lost connection: reconnect only after the (exponential) reconnect backoff."""
        self.connected.discard(leader)
        now = self.world.now_ms
        if self.node_backoff_until.get(leader, -1.0) > now:
            return  # One connection failure, however many requests it carried.
        failures = self.node_failures.get(leader, 0) + 1
        self.node_failures[leader] = failures
        backoff = min(
            self.config.reconnect_backoff_max_ms,
            self.config.reconnect_backoff_ms * 2 ** min(failures - 1, 30),
        )
        self.node_backoff_until[leader] = now + backoff

    def on_disconnect(self, peer: str) -> None:
        """The peer reset the connection (a crash, a refused connect)."""
        if not peer.startswith("broker-"):
            return
        self._back_off(int(peer.removeprefix("broker-")))
        self.metadata.request_update()
        self.wake()

    def send_producer_data(self, now: float) -> float:
        """One pass of ready → drain → send; returns ms until the next useful pass."""
        next_ms = IDLE_POLL_MS
        by_leader: dict[int, list[tuple[str, int]]] = {}
        for key, dq in self.accumulator.partitions():
            if key in self.muted:
                continue
            leader = self.metadata.leader(*key)
            if leader < 0:
                self.metadata.request_update()
                next_ms = min(next_ms, self.config.retry_backoff_ms)
                continue
            head = dq[0]
            ready_at = self.accumulator.head_ready_at(head, len(dq))
            if ready_at > now:
                next_ms = min(next_ms, ready_at - now)
                continue
            if not self._node_ready(leader, now):
                backoff_until = self.node_backoff_until.get(leader, -1.0)
                if backoff_until > now:
                    next_ms = min(next_ms, backoff_until - now)
                continue
            by_leader.setdefault(leader, []).append(key)
        sent_any = False
        for leader in sorted(by_leader):
            batches = self._drain(by_leader[leader], now)
            if batches:
                self._send(leader, batches, now)
                sent_any = True
        return 0.0 if sent_any else next_ms

    def _retry_backoff(self, batch: ProducerBatch) -> float:
        return backoff_ms(self.config, max(1, batch.attempts), self._backoff_rng)

    def _drain(self, keys: list[tuple[str, int]], now: float) -> list[ProducerBatch]:
        """At most one batch per partition, up to max.request.size (`drainBatchesForOneNode`)."""
        drained: list[ProducerBatch] = []
        size = 0
        for key in keys:
            dq = self.accumulator.deques[key]
            head = dq[0]
            if drained and size + head.size_bytes > self.config.max_request_size:
                break
            if self.txn is not None and not self.txn.may_drain(head):
                continue
            client = self.producer.txn_client
            if client is not None and not client.is_send_to_partition_allowed(key):
                continue  # Not yet added to the transaction (`isSendToPartitionAllowed`).
            dq.popleft()
            head.closed = True
            if self.txn is not None:
                self.txn.on_drain(head)
            head.attempts += 1
            head.last_attempt_ms = now
            head.retry = False
            head.in_request = True
            size += head.size_bytes
            drained.append(head)
            if self.config.max_in_flight_requests_per_connection == 1:
                self.muted.add(key)
        return drained

    def _send(self, leader: int, batches: list[ProducerBatch], now: float) -> None:
        compression = self.producer.compression_ratio
        entries = tuple(
            (
                b.topic,
                b.partition,
                RecordBatch(
                    b.producer_id,
                    b.producer_epoch,
                    b.base_sequence,
                    tuple(b.record_ids),
                    int(b.size_bytes * compression),
                    b.created_ms,
                    is_transactional=self.producer.txn_client is not None,
                ),
            )
            for b in batches
        )
        request = ProduceRequest(
            self.rpc.next_request_id(),
            self.config.acks,
            self.config.request_timeout_ms,
            entries,
            self.config.transactional_id,
        )
        target = f"broker-{leader}"
        self.world.trace(
            "producer.send",
            producer=self.producer.name,
            leader=leader,
            request=request.request_id,
            batches=tuple((b.topic, b.partition, b.base_sequence, b.record_count) for b in batches),
        )
        if self.config.acks == 0:
            # No response is expected: every batch succeeds now, offset -1 (Kafka's behaviour).
            self.producer.net.send(self.producer.name, target, request)
            for batch in batches:
                self.complete_ok(batch, -1)
            return
        by_key = {b.key: b for b in batches}
        self.rpc.call(
            target,
            request,
            self.config.request_timeout_ms,
            lambda response: self.on_produce_response(leader, by_key, response),
            lambda error: self.on_request_error(leader, batches, error),
        )

    # --- responses ------------------------------------------------------------------------

    def on_produce_response(
        self, leader: int, by_key: dict[tuple[str, int], ProducerBatch], response: ProduceResponse
    ) -> None:
        self.node_failures.pop(leader, None)
        for result in response.results:
            batch = by_key[(result.topic, result.partition)]
            if result.error == Errors.NONE:
                self.complete_ok(batch, result.base_offset)
            else:
                self.complete_error(batch, result.error)
        self.wake()

    def on_request_error(self, leader: int, batches: list[ProducerBatch], error: Errors) -> None:
        """A timeout or a disconnect: the connection is gone; back off reconnecting."""
        self._back_off(leader)
        for batch in batches:
            self.complete_error(batch, error)
        self.wake()

    def complete_ok(self, batch: ProducerBatch, base_offset: int) -> None:
        if batch.done:
            return  # Expired while in flight; the late answer changes nothing.
        self.muted.discard(batch.key)
        if self.txn is not None:
            self.txn.on_success(batch)
        self.producer.on_batch_done(batch, base_offset, None, ok=True)

    def complete_error(self, batch: ProducerBatch, error: Errors) -> None:
        if batch.done:
            return
        self.muted.discard(batch.key)
        batch.in_request = False
        if error in POSSIBLY_WRITTEN:
            batch.possibly_written = True
        if error.invalid_metadata:
            self.metadata.request_update()
        if self._can_retry(batch, error):
            self.world.trace(
                "producer.retry",
                producer=self.producer.name,
                topic=batch.topic,
                partition=batch.partition,
                error=error.name,
                attempts=batch.attempts,
                sequence=batch.base_sequence,
            )
            batch.backoff_ms = self._retry_backoff(batch)
            self.accumulator.reenqueue(batch, self.world.now_ms, self.txn is not None)
            return
        if error == Errors.DUPLICATE_SEQUENCE_NUMBER:
            # Java's Sender.completeBatch: the broker saw this sequence but no longer has
            # its offset, so the batch succeeds without one (SEMANTICS.md §3.6).
            self.complete_ok(batch, -1)
            return
        if self.txn is not None:
            self.txn.on_failure(batch, bump=batch.attempts <= self.config.retries)
        if self.producer.txn_client is not None:
            self.producer.txn_client.on_batch_failed(error)
        self.producer.on_batch_done(batch, -1, errors.for_code(error), ok=False)

    def _can_retry(self, batch: ProducerBatch, error: Errors) -> bool:
        now = self.world.now_ms
        if now - batch.created_ms >= self.config.delivery_timeout_ms:
            return False
        if batch.attempts >= self.config.retries + 1:
            return False
        if self.txn is not None:
            return self.txn.can_retry(batch, error)
        return error.retriable

    # --- expiry --------------------------------------------------------------------------------

    def expire_batches(self, now: float) -> float:
        """Fail batches past delivery.timeout.ms, queued or in flight (`expiredBatches`)."""
        timeout = self.config.delivery_timeout_ms
        next_ms = IDLE_POLL_MS
        oldest = self.accumulator.oldest()
        if oldest is None or oldest.created_ms + timeout > now:
            # Java's Sender.runOnce calls maybeResolveSequences on every pass, not
            # only when something expires: an unresolved partition whose last
            # in-flight batch completed since must get its epoch bump now.
            if self._maybe_resolve_sequences():
                return 0.0
            return (
                IDLE_POLL_MS
                if oldest is None
                else min(IDLE_POLL_MS, oldest.created_ms + timeout - now)
            )
        for batch in self.accumulator.incomplete_batches():
            deadline = batch.created_ms + timeout
            if deadline > now:
                next_ms = min(next_ms, deadline - now)
                continue
            in_flight = batch.in_request
            if in_flight:
                batch.possibly_written = True
            else:
                self.accumulator.remove(batch)
            self.muted.discard(batch.key)
            if self.txn is not None and batch.has_sequence:
                self.txn.on_expired_in_flight(batch)
            message = (
                f"Expiring {batch.record_count} record(s) for {batch.topic}-{batch.partition}: "
                f"{now - batch.created_ms:.0f} ms has passed since batch creation"
            )
            if self.producer.txn_client is not None:
                self.producer.txn_client.on_batch_failed(Errors.REQUEST_TIMED_OUT)
            self.producer.on_batch_done(batch, -1, errors.KafkaTimeoutError(message), ok=False)
        if self._maybe_resolve_sequences():
            return 0.0
        return next_ms

    def _maybe_resolve_sequences(self) -> bool:
        """`TransactionManager.maybeResolveSequences`; True if an epoch was bumped."""
        if self.txn is None:
            return False
        bumped = False
        for key in sorted(k for k, entry in self.txn.partitions.items() if entry.unresolved):
            bumped = self.txn.maybe_resolve(key) or bumped
        return bumped
