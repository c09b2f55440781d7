"""KafkaProducer: kafka-python's producer API against the simulated cluster.

The main thread's side of the send flow: `send()` serialises, picks a
partition (explicit > partitioner), records the send in the history and
appends to the RecordAccumulator; the Sender process (`sender.py`) does
the rest. As in kafka-python, `send()` never waits for the broker — acks
only decide when the broker answers — and returns a future.

Blocking calls (`future.get`, `flush`, `close`, a `send` that must wait for
metadata or buffer memory) advance the simulation until they can return,
through the cluster's `run_until`; their timeouts are simulated seconds.
`bootstrap_servers` is accepted and ignored: the cluster is the simulated
one passed as `cluster=` (or the most recently created `sim.Cluster`).
"""

from __future__ import annotations

from typing import Any, Protocol

from sim import errors
from sim.client.accumulator import COMPRESSION_RATIOS, ProducerBatch, RecordAccumulator, record_size
from sim.client.config import ProducerConfig
from sim.client.future import FutureRecordMetadata
from sim.client.metadata import ClientMetadata
from sim.client.partitioner import make_partitioner
from sim.client.sender import Sender
from sim.client.transactional import TransactionalClient, TxnResult
from sim.client.transactions import TransactionManager
from sim.history import History
from sim.net import Net, RpcClient
from sim.world import World


class ClientEnv(Protocol):
    """What a producer needs from the simulated cluster (`sim.Cluster` provides it)."""

    world: World
    net: Net
    history: History

    def bootstrap_brokers(self) -> list[str]: ...

    def new_client_name(self, kind: str) -> str: ...

    def run_until(self, predicate: Any, timeout_ms: float | None) -> None: ...

    def register_client(self, client: Any) -> None: ...


_current_env: list[ClientEnv] = []


def set_default_env(env: ClientEnv) -> None:
    """Make `env` the cluster producers attach to when given no `cluster=`."""
    _current_env[:] = [env]


class KafkaProducer:
    """kafka-python's `KafkaProducer`, simulated. Takes kafka-python's keywords."""

    def __init__(
        self, cluster: ClientEnv | None = None, *, name: str | None = None, **configs: Any
    ) -> None:
        env = cluster if cluster is not None else (_current_env[0] if _current_env else None)
        if env is None:
            raise errors.KafkaConfigurationError(
                "no simulated cluster: create sim.Cluster(...) first, or pass cluster="
            )
        self.config = ProducerConfig.from_kwargs(**configs)
        self.env = env
        self.world = env.world
        self.net = env.net
        self.history = env.history
        self.name = name or env.new_client_name("producer")
        self.rpc = RpcClient(self.world, self.net, self.name)
        config = self.config
        self.metadata = ClientMetadata(
            self.rpc,
            env.bootstrap_brokers(),
            config.request_timeout_ms,
            config.retry_backoff_ms,
            config.metadata_max_age_ms,
            self._wake,
        )
        self.accumulator = RecordAccumulator(
            config.batch_size, config.linger_ms, config.buffer_memory
        )
        self.txn_manager = (
            TransactionManager(transactional=config.transactional_id is not None)
            if config.enable_idempotence
            else None
        )
        self.txn_client = (
            TransactionalClient(self, config.transactional_id, config.transaction_timeout_ms)
            if config.transactional_id is not None
            else None
        )
        self._init_result: TxnResult | None = None
        self.partitioner = make_partitioner(
            config.partitioner, self.world.rng(f"{self.name}.partitioner")
        )
        self.compression_ratio = COMPRESSION_RATIOS[config.compression_type]
        self.init_attempts = 0
        self.closed = False
        self.crashed = False
        self.net.add_node(self.name, self)
        env.register_client(self)
        self.sender = Sender(self)
        self.world.process(self.sender.run())
        for warning in config.warnings:
            self.world.trace("producer.config_warning", producer=self.name, warning=warning)

    def __repr__(self) -> str:
        return f"KafkaProducer({self.name}, acks={self.config.acks}, idempotent={self.config.enable_idempotence})"

    # --- the wire ------------------------------------------------------------------

    def receive(self, source: str, message: Any) -> None:
        if hasattr(message, "request_id") and type(message).__name__.endswith("Response"):
            self.rpc.handle_response(source, message)
        else:
            raise AssertionError(f"{self.name}: unexpected {type(message).__name__}")

    def on_disconnect(self, peer: str) -> None:
        self.rpc.on_disconnect(peer)
        self.sender.on_disconnect(peer)

    def paused(self) -> bool:
        return self.net.is_paused(self.name)

    def _wake(self) -> None:
        self.sender.wake()

    # --- sending ----------------------------------------------------------------------

    def send(
        self,
        topic: str,
        value: Any = None,
        key: Any = None,
        headers: list[tuple[str, bytes]] | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> FutureRecordMetadata:
        """Publish a message to a topic; returns a future of its RecordMetadata."""
        if self.closed:
            raise errors.IllegalStateError("KafkaProducer already closed!")
        if value is None and key is None:
            raise ValueError("Need at least one: key or value")  # kafka-python's ValueError.
        key_bytes = self._serialize(self.config.key_serializer, topic, headers, key, "key")
        value_bytes = self._serialize(self.config.value_serializer, topic, headers, value, "value")
        headers_size = sum(len(k.encode()) + len(v or b"") for k, v in headers or ())
        self._wait_on_metadata(topic)
        size = record_size(len(key_bytes or b""), len(value_bytes or b""), headers_size)
        self._check_size(size)
        timestamp = int(self.world.now_ms) if timestamp_ms is None else timestamp_ms
        future = FutureRecordMetadata(
            topic,
            -1,
            len(key_bytes) if key_bytes is not None else -1,
            len(value_bytes) if value_bytes is not None else -1,
            timestamp,
            self.env.run_until,
            self._callback_error,
            # kafka-python: the serialized header size, or -1 without headers.
            headers_size if headers else -1,
        )
        if not self.accumulator.has_room(size):
            deadline = self.config.max_block_ms
            self.env.run_until(lambda: self.accumulator.has_room(size), deadline)
            if not self.accumulator.has_room(size):
                raise errors.KafkaTimeoutError(
                    "Failed to allocate memory within the configured max blocking time "
                    f"{self.config.max_block_ms} ms."
                )
        record_id = self.append(topic, partition, key, key_bytes, value, value_bytes, size, future)
        self.history.payloads[record_id] = (key_bytes, value_bytes, timestamp)
        return future

    def append(
        self,
        topic: str,
        partition: int | None,
        key: Any,
        key_bytes: bytes | None,
        value: Any,
        value_bytes: bytes | None,
        size: int,
        future: FutureRecordMetadata | None,
        txn: int = -1,
        record_id: int | None = None,
    ) -> int:
        """Choose the partition, record the invoke, append. Returns the record id.

        The caller has made sure of metadata and buffer room; the workload
        calls this directly (no future, no blocking) to stay per-batch cheap.
        """
        now = self.world.now_ms
        client = self.txn_client
        if client is not None:
            client.fail_if_not_ready_for_send()
            txn = client.history_txn
        explicit = partition is not None
        if explicit:
            self._check_partition(topic, partition)
        else:
            partition = self.partitioner.partition(
                topic, key, key_bytes, value, value_bytes, self.metadata
            )
        accumulator = self.accumulator
        if record_id is None:
            record_id = self.history.invoke(self.name, topic, partition, now, txn)
        if future is not None:
            future.partition = partition
        batch = accumulator.try_append(topic, partition, record_id, size, future, now)
        if batch is None and not explicit and key_bytes is None:
            # KIP-480: a record that would open a new batch lets a sticky
            # partitioner move on first (`abortOnNewBatch`).
            self.partitioner.on_new_batch(topic, self.metadata, partition)
            new_partition = self.partitioner.partition(
                topic, key, key_bytes, value, value_bytes, self.metadata
            )
            if new_partition != partition:
                partition = new_partition
                self.history.partition[record_id] = partition
                if future is not None:
                    future.partition = partition
                batch = accumulator.try_append(topic, partition, record_id, size, future, now)
        if client is not None:
            client.maybe_add_partition((topic, partition))
        if batch is None:
            batch = accumulator.append_new(topic, partition, record_id, size, future, now, txn)
            self.sender.wake()
        elif batch.closed:
            self.sender.wake()
        return record_id

    def _serialize(
        self, serializer: Any, topic: str, headers: Any, data: Any, what: str
    ) -> bytes | None:
        if serializer is not None and data is not None:
            # kafka-python 3.x: a `Serializer` object is called as
            # serialize(topic, headers, data); a plain callable as fn(data).
            serialize = getattr(serializer, "serialize", None)
            if callable(serialize):
                data = serialize(topic, headers or [], data)
            else:
                data = serializer(data)
        if data is not None and not isinstance(data, bytes | bytearray | memoryview):
            # kafka-python raises TypeError("Unsupported type for serialized value: ...").
            raise TypeError(
                f"Unsupported type for serialized {what}: {type(data)} "
                f"({what} must be bytes, or set {what}_serializer)"
            )
        return None if data is None else bytes(data)

    def _check_size(self, size: int) -> None:
        if size > self.config.max_request_size:
            raise errors.MessageSizeTooLargeError(
                f"The message is {size} bytes when serialized which is larger than the maximum "
                "request size you have configured with the max_request_size configuration"
            )
        if size > self.config.buffer_memory:
            raise errors.MessageSizeTooLargeError(
                f"The message is {size} bytes when serialized which is larger than the total "
                "memory buffer you have configured with the buffer_memory configuration."
            )

    def _check_partition(self, topic: str, partition: int) -> None:
        partitions = self.metadata.partitions_for_topic(topic) or set()
        if partition not in partitions:  # kafka-python's `_partition` raises ValueError.
            raise ValueError(f"Unrecognized partition {partition} for topic {topic}")

    def _wait_on_metadata(self, topic: str) -> None:
        """Block (in simulated time) until the topic's metadata is known (`max_block_ms`)."""
        if self.metadata.knows_topic(topic):
            return
        self.metadata.request_update()
        self.sender.wake()
        self.env.run_until(lambda: self.metadata.knows_topic(topic), self.config.max_block_ms)
        if not self.metadata.knows_topic(topic):
            raise errors.KafkaTimeoutError(
                f"Failed to update metadata after {self.config.max_block_ms / 1000:.1f} secs."
            )

    def _callback_error(self, message: str) -> None:
        self.world.trace("producer.callback_error", producer=self.name, error=message)

    # --- completion (called by the Sender) --------------------------------------------------

    def on_batch_done(
        self, batch: ProducerBatch, base_offset: int, error: errors.KafkaError | None, ok: bool
    ) -> None:
        assert not batch.done, batch
        batch.done = True
        now = self.world.now_ms
        if ok:
            self.history.ok(batch.record_ids, now, base_offset)
        elif batch.possibly_written:
            self.history.info(batch.record_ids, now, type(error).__name__)
        else:
            self.history.fail(batch.record_ids, now, type(error).__name__)
        self.accumulator.release(batch)
        if batch.futures:
            for index, future in enumerate(batch.futures):
                offset = base_offset + index if ok and base_offset >= 0 else -1
                future.complete(offset, error)

    # --- flush and close ----------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> None:
        """Send everything buffered and wait for it to complete."""
        pending = self.accumulator.incomplete_batches()
        self.accumulator.flushing += 1
        self.sender.wake()
        try:
            self.env.run_until(
                lambda: all(b.done for b in pending), None if timeout is None else timeout * 1000.0
            )
        finally:
            self.accumulator.flushing -= 1
        if not all(b.done for b in pending):
            raise errors.KafkaTimeoutError(f"Timeout after waiting for {timeout} secs.")

    def close(self, timeout: float | None = None, null_logger: bool = False) -> None:
        """Close the producer; waits for buffered records unless timeout is 0."""
        if self.closed:
            return
        self.accumulator.closing = True
        self.sender.wake()
        if timeout != 0:
            self.env.run_until(
                lambda: not self.accumulator.has_incomplete(),
                None if timeout is None else timeout * 1000.0,
            )
        for batch in self.accumulator.incomplete_batches():
            self.accumulator.remove(batch)
            self.on_batch_done(
                batch, -1, errors.IllegalStateError("Producer is closed forcefully."), ok=False
            )
        self.sender.running = False
        self.sender.wake()
        self.closed = True

    # --- transactions (kafka-python 3.x's API and messages) ---------------------------------

    def _transactional(self, missing: str) -> TransactionalClient:
        """The transaction state machine, or kafka-python's IllegalStateError."""
        if self.txn_manager is None:
            raise errors.IllegalStateError(missing)
        if self.txn_client is None:
            raise errors.IllegalStateError(
                "Transactional method invoked on a non-transactional producer."
            )
        return self.txn_client

    def _wait_txn(self, result: TxnResult, timeout_ms: float | None) -> None:
        self.sender.wake()
        self.env.run_until(lambda: result.done, timeout_ms)
        if result.error is not None:
            raise result.error

    def init_transactions(self) -> None:
        """Fence older instances of this transactional id and get our producer id and epoch."""
        client = self._transactional(
            "Cannot call init_transactions without setting a transactional_id."
        )
        if self._init_result is None:
            self._init_result = client.initialize()
        result = self._init_result
        try:
            self._wait_txn(result, self.config.max_block_ms)
            if not result.done:
                raise errors.KafkaTimeoutError(
                    "Timeout expired while initializing transactional state in "
                    f"{self.config.max_block_ms} ms."
                )
        finally:
            if result.error is not None:
                self._init_result = None

    def begin_transaction(self) -> None:
        self._transactional(
            "Cannot use transactional methods without enabling transactions"
        ).begin()

    def send_offsets_to_transaction(self, offsets: Any, group_metadata: Any) -> None:
        """Commit consumed offsets as part of the current transaction."""
        client = self._transactional(
            "Cannot use transactional methods without enabling transactions"
        )
        group_id = group_metadata if isinstance(group_metadata, str) else group_metadata.group_id
        plain = {
            (tp[0], tp[1]): (meta.offset if hasattr(meta, "offset") else int(meta))
            for tp, meta in offsets.items()
        }
        self._wait_txn(client.send_offsets(plain, group_id), None)

    def commit_transaction(self) -> None:
        client = self._transactional("Cannot commit transaction since transactions are not enabled")
        self._wait_txn(client.begin_end(commit=True), None)

    def abort_transaction(self) -> None:
        client = self._transactional("Cannot abort transaction since transactions are not enabled.")
        self._wait_txn(client.begin_end(commit=False), None)

    def abort_undrained_batches(self) -> None:
        """On abort, batches never sent fail with TransactionAbortedError (Java's
        `abortUndrainedBatches`); batches in flight complete normally."""
        for batch in self.accumulator.incomplete_batches():
            if batch.in_request or batch.has_sequence:
                continue
            self.accumulator.remove(batch)
            self.on_batch_done(
                batch,
                -1,
                errors.TransactionAbortedError("Failing batch since transaction was aborted"),
                ok=False,
            )

    def crash(self) -> None:
        """The producer's process dies: buffered records are gone, in-flight ones unknown.

        A batch that was never sent fails for certain; one that was sent may
        have been written, so its records' outcome is unknown (`info`).
        """
        self.crashed = True
        self.closed = True
        self.sender.running = False
        self.rpc.close_all()
        for batch in self.accumulator.incomplete_batches():
            self.accumulator.remove(batch)
            if batch.in_request:
                batch.possibly_written = True
            self.on_batch_done(batch, -1, errors.KafkaConnectionError("producer crashed"), ok=False)
        self.sender.wake()

    def metrics(self, raw: bool = False) -> dict[str, Any]:
        return {}

    def partitions_for(self, topic: str) -> set[int]:
        self._wait_on_metadata(topic)
        return self.metadata.partitions_for_topic(topic) or set()
