"""The messages client and cluster exchange, and Kafka's error codes.

`client` and `cluster` never import each other: everything that crosses
between them is one of these frozen dataclasses, carried by `net`. Names and
fields follow Kafka's protocol (ProduceRequest, FetchRequest, InitProducerId,
AlterPartition...), trimmed to what the simulator needs.

Records are not simulated one by one: a `RecordBatch` carries the ids of the
records in it (the history's record ids), and the log stores batches. That is
how Kafka itself works (a batch is the unit of append, replication,
deduplication and truncation) and it keeps the simulator's events per batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any


class Errors(IntEnum):
    """Kafka error codes (`common/protocol/Errors.java`), Kafka's names verbatim."""

    NONE = 0
    CORRUPT_MESSAGE = 2
    UNKNOWN_TOPIC_OR_PARTITION = 3
    LEADER_NOT_AVAILABLE = 5
    NOT_LEADER_OR_FOLLOWER = 6
    REQUEST_TIMED_OUT = 7
    MESSAGE_TOO_LARGE = 10
    NETWORK_EXCEPTION = 13
    COORDINATOR_LOAD_IN_PROGRESS = 14
    COORDINATOR_NOT_AVAILABLE = 15
    NOT_COORDINATOR = 16
    RECORD_LIST_TOO_LARGE = 18
    NOT_ENOUGH_REPLICAS = 19
    NOT_ENOUGH_REPLICAS_AFTER_APPEND = 20
    TOPIC_AUTHORIZATION_FAILED = 29
    OUT_OF_ORDER_SEQUENCE_NUMBER = 45
    DUPLICATE_SEQUENCE_NUMBER = 46
    INVALID_PRODUCER_EPOCH = 47
    INVALID_TXN_STATE = 48
    INVALID_PRODUCER_ID_MAPPING = 49
    INVALID_TRANSACTION_TIMEOUT = 50
    CONCURRENT_TRANSACTIONS = 51
    TRANSACTION_COORDINATOR_FENCED = 52
    KAFKA_STORAGE_ERROR = 56
    UNKNOWN_PRODUCER_ID = 59
    FENCED_LEADER_EPOCH = 74
    UNKNOWN_LEADER_EPOCH = 75
    INVALID_RECORD = 87
    INVALID_UPDATE_VERSION = 95
    INELIGIBLE_REPLICA = 107
    PRODUCER_FENCED = 90
    TRANSACTION_ABORTABLE = 120

    @property
    def retriable(self) -> bool:
        """Whether Kafka's exception for this code is a `RetriableException`."""
        return self in RETRIABLE

    @property
    def invalid_metadata(self) -> bool:
        """Whether the client should refresh metadata (`InvalidMetadataException`)."""
        return self in INVALID_METADATA


RETRIABLE = frozenset(
    {
        Errors.CORRUPT_MESSAGE,
        Errors.UNKNOWN_TOPIC_OR_PARTITION,
        Errors.LEADER_NOT_AVAILABLE,
        Errors.NOT_LEADER_OR_FOLLOWER,
        Errors.REQUEST_TIMED_OUT,
        Errors.NETWORK_EXCEPTION,
        Errors.COORDINATOR_LOAD_IN_PROGRESS,
        Errors.COORDINATOR_NOT_AVAILABLE,
        Errors.NOT_COORDINATOR,
        Errors.NOT_ENOUGH_REPLICAS,
        Errors.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        Errors.CONCURRENT_TRANSACTIONS,
        Errors.KAFKA_STORAGE_ERROR,
        Errors.FENCED_LEADER_EPOCH,
        Errors.UNKNOWN_LEADER_EPOCH,
    }
)
INVALID_METADATA = frozenset(
    {
        Errors.UNKNOWN_TOPIC_OR_PARTITION,
        Errors.LEADER_NOT_AVAILABLE,
        Errors.NOT_LEADER_OR_FOLLOWER,
        Errors.NETWORK_EXCEPTION,
        Errors.KAFKA_STORAGE_ERROR,
        Errors.FENCED_LEADER_EPOCH,
        Errors.UNKNOWN_LEADER_EPOCH,
    }
)

NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
NO_SEQUENCE = -1


@dataclass(frozen=True, slots=True)
class RecordBatch:
    """A batch as the producer builds it and the log stores it.

    `record_ids` are the history's ids of the records, in order; a control
    batch (transaction marker) has none but still occupies one offset.
    """

    producer_id: int
    producer_epoch: int
    base_sequence: int
    record_ids: tuple[int, ...]
    size_bytes: int
    create_time_ms: float
    is_transactional: bool = False
    control: str | None = None  # "COMMIT" | "ABORT" for control batches
    payload: tuple[Any, ...] = ()
    """Internal records (transaction state, committed offsets) instead of record ids."""
    coordinator_epoch: int = -1
    """On a control batch: the epoch of the coordinator that wrote the marker."""

    def __post_init__(self) -> None:
        assert self.size_bytes >= 0
        assert self.control in (None, "COMMIT", "ABORT"), self.control
        if self.control is not None:
            assert not self.record_ids and not self.payload, "control batches carry no records"
        else:
            assert bool(self.record_ids) != bool(self.payload), "a batch carries records or payload"

    @property
    def record_count(self) -> int:
        if self.control is not None:
            return 1
        return len(self.record_ids) if self.record_ids else len(self.payload)

    @property
    def last_sequence(self) -> int:
        if self.base_sequence == NO_SEQUENCE:
            return NO_SEQUENCE
        return self.base_sequence + self.record_count - 1


@dataclass(frozen=True, slots=True)
class LogBatch:
    """A batch at its place in a partition's log: base offset and leader epoch."""

    base_offset: int
    leader_epoch: int
    batch: RecordBatch

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.batch.record_count


def read_committed_batches(
    batches: tuple[LogBatch, ...] | list[LogBatch], bound: int, aborted: tuple[tuple[int, int], ...]
) -> list[LogBatch]:
    """The data batches a read_committed reader keeps, below `bound` (the LSO).

    `aborted` lists (producer id, first offset) of aborted transactions, as a
    leader's fetch answer does; from its first offset on, that producer's
    transactional batches are dropped until its ABORT marker (`Fetcher`'s
    aborted-transaction filtering). Control batches are never returned.
    Shared by both sides of the wire: the consumer applies it to fetched
    data, the broker to its own log (committed offsets, the final read).
    """
    pending = sorted((first, pid) for pid, first in aborted)
    aborting: set[int] = set()
    kept: list[LogBatch] = []
    for log_batch in batches:
        if log_batch.base_offset >= bound:
            break
        while pending and pending[0][0] <= log_batch.base_offset:
            aborting.add(pending.pop(0)[1])
        batch = log_batch.batch
        if batch.control is not None:
            if batch.control == "ABORT":
                aborting.discard(batch.producer_id)
            continue
        if batch.is_transactional and batch.producer_id in aborting:
            continue
        kept.append(log_batch)
    return kept


# --- Produce -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProduceRequest:
    """Producer -> partition leader. At most one batch per partition, as in Kafka."""

    request_id: int
    acks: int
    timeout_ms: float
    entries: tuple[tuple[str, int, RecordBatch], ...]
    transactional_id: str | None = None

    def __post_init__(self) -> None:
        assert self.acks in (0, 1, -1), self.acks
        assert self.timeout_ms > 0
        assert self.entries, "an empty request is a sender bug"
        keys = [(topic, partition) for topic, partition, _ in self.entries]
        assert len(keys) == len(set(keys)), keys


@dataclass(frozen=True, slots=True)
class PartitionProduceResult:
    topic: str
    partition: int
    error: Errors
    base_offset: int = -1
    log_append_time_ms: float = -1.0
    current_leader: int | None = None  # KIP-951 hint on NOT_LEADER_OR_FOLLOWER


@dataclass(frozen=True, slots=True)
class ProduceResponse:
    request_id: int
    results: tuple[PartitionProduceResult, ...]


# --- Metadata ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartitionState:
    """The controller's view of one partition (KRaft's PartitionRecord)."""

    topic: str
    partition: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int  # -1 when offline
    leader_epoch: int
    partition_epoch: int


@dataclass(frozen=True, slots=True)
class MetadataImage:
    """What the controller publishes: every partition's state and live brokers."""

    version: int
    partitions: tuple[PartitionState, ...]
    live_brokers: tuple[int, ...]
    topic_configs: tuple[tuple[str, int], ...]  # (topic, effective min.insync.replicas)

    def partition(self, topic: str, partition: int) -> PartitionState | None:
        for state in self.partitions:
            if state.topic == topic and state.partition == partition:
                return state
        return None


@dataclass(frozen=True, slots=True)
class MetadataRequest:
    request_id: int
    topics: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class MetadataResponse:
    request_id: int
    image: MetadataImage


@dataclass(frozen=True, slots=True)
class MetadataUpdate:
    """Controller -> broker: a new image (KRaft brokers replay the metadata log)."""

    image: MetadataImage


# --- Idempotence -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InitProducerIdRequest:
    request_id: int
    transactional_id: str | None = None
    transaction_timeout_ms: float = 60000
    producer_id: int = NO_PRODUCER_ID
    producer_epoch: int = NO_PRODUCER_EPOCH


@dataclass(frozen=True, slots=True)
class InitProducerIdResponse:
    request_id: int
    error: Errors
    producer_id: int = NO_PRODUCER_ID
    producer_epoch: int = NO_PRODUCER_EPOCH


# --- Connections -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApiVersionsRequest:
    """The first request on a new connection: a client sends data only once it
    is answered (NetworkClient's connection setup), so a refused connection
    keeps the node not ready."""

    request_id: int


@dataclass(frozen=True, slots=True)
class ApiVersionsResponse:
    request_id: int


# --- Replication ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FetchPartition:
    topic: str
    partition: int
    fetch_offset: int
    last_fetched_epoch: int  # epoch of the follower's last batch, -1 if empty
    current_leader_epoch: int


@dataclass(frozen=True, slots=True)
class FetchRequest:
    """Follower -> leader: fetch from each partition at the follower's LEO."""

    request_id: int
    replica_id: int
    partitions: tuple[FetchPartition, ...]
    max_wait_ms: float


@dataclass(frozen=True, slots=True)
class FetchPartitionData:
    topic: str
    partition: int
    error: Errors
    high_watermark: int = 0
    batches: tuple[LogBatch, ...] = ()
    diverging_epoch: tuple[int, int] | None = None  # (epoch, end offset): truncate first


@dataclass(frozen=True, slots=True)
class FetchResponse:
    request_id: int
    partitions: tuple[FetchPartitionData, ...]


@dataclass(frozen=True, slots=True)
class AlterPartitionRequest:
    """Leader -> controller: propose a new ISR (shrink or expand)."""

    request_id: int
    broker_id: int
    topic: str
    partition: int
    leader_epoch: int
    partition_epoch: int
    new_isr: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class AlterPartitionResponse:
    request_id: int
    error: Errors
    state: PartitionState | None = None


@dataclass(frozen=True, slots=True)
class BrokerHeartbeat:
    """Broker -> controller, every heartbeat interval; a restarted broker re-registers."""

    request_id: int
    broker_id: int
    incarnation: int
    metadata_version: int = -1
    """The newest image the broker has applied: KRaft brokers fetch the metadata
    log, so a broker that missed an update catches up; here the controller
    answers a stale version with the current image."""


@dataclass(frozen=True, slots=True)
class BrokerHeartbeatResponse:
    request_id: int
    fenced: bool


# --- Transactions (KIP-98) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FindCoordinatorRequest:
    request_id: int
    key: str
    key_type: str = "transaction"  # "transaction" | "group"


@dataclass(frozen=True, slots=True)
class FindCoordinatorResponse:
    request_id: int
    error: Errors
    node: int = -1


@dataclass(frozen=True, slots=True)
class AddPartitionsToTxnRequest:
    request_id: int
    transactional_id: str
    producer_id: int
    producer_epoch: int
    partitions: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class AddPartitionsToTxnResponse:
    request_id: int
    error: Errors


@dataclass(frozen=True, slots=True)
class AddOffsetsToTxnRequest:
    request_id: int
    transactional_id: str
    producer_id: int
    producer_epoch: int
    group_id: str


@dataclass(frozen=True, slots=True)
class AddOffsetsToTxnResponse:
    request_id: int
    error: Errors


@dataclass(frozen=True, slots=True)
class TxnOffsetCommitRequest:
    request_id: int
    transactional_id: str
    group_id: str
    producer_id: int
    producer_epoch: int
    offsets: tuple[tuple[str, int, int], ...]  # (topic, partition, next offset to consume)


@dataclass(frozen=True, slots=True)
class TxnOffsetCommitResponse:
    request_id: int
    error: Errors


@dataclass(frozen=True, slots=True)
class EndTxnRequest:
    request_id: int
    transactional_id: str
    producer_id: int
    producer_epoch: int
    commit: bool


@dataclass(frozen=True, slots=True)
class EndTxnResponse:
    request_id: int
    error: Errors


@dataclass(frozen=True, slots=True)
class TxnMarker:
    """One producer's COMMIT or ABORT for a set of partitions (WriteTxnMarkers)."""

    producer_id: int
    producer_epoch: int
    commit: bool
    coordinator_epoch: int
    partitions: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class WriteTxnMarkersRequest:
    request_id: int
    marker: TxnMarker


@dataclass(frozen=True, slots=True)
class WriteTxnMarkersResponse:
    request_id: int
    results: tuple[tuple[str, int, Errors], ...]


@dataclass(frozen=True, slots=True)
class OffsetFetchRequest:
    request_id: int
    group_id: str
    partitions: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class OffsetFetchResponse:
    request_id: int
    error: Errors
    offsets: tuple[tuple[str, int, int], ...] = ()  # -1: no committed offset


# --- Consumer fetch ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConsumerFetchRequest:
    """Consumer -> leader: read from each partition at an offset."""

    request_id: int
    isolation_level: str  # "read_uncommitted" | "read_committed"
    partitions: tuple[tuple[str, int, int], ...]  # (topic, partition, fetch offset)
    max_batches: int = 64


@dataclass(frozen=True, slots=True)
class ConsumerFetchData:
    topic: str
    partition: int
    error: Errors
    high_watermark: int = 0
    last_stable_offset: int = 0
    log_start_offset: int = 0
    batches: tuple[LogBatch, ...] = ()
    aborted: tuple[tuple[int, int], ...] = ()  # (producer id, first offset) of aborted txns


@dataclass(frozen=True, slots=True)
class ConsumerFetchResponse:
    request_id: int
    partitions: tuple[ConsumerFetchData, ...]


@dataclass(frozen=True, slots=True)
class Disconnected:
    """Not a message on the wire: what `net` hands a node whose peer reset the link."""

    peer: str


REQUEST_TYPES = {
    "ProduceRequest": ProduceRequest,
    "ProduceResponse": ProduceResponse,
    "ApiVersionsRequest": ApiVersionsRequest,
    "ApiVersionsResponse": ApiVersionsResponse,
    "MetadataRequest": MetadataRequest,
    "MetadataResponse": MetadataResponse,
    "MetadataUpdate": MetadataUpdate,
    "InitProducerIdRequest": InitProducerIdRequest,
    "InitProducerIdResponse": InitProducerIdResponse,
    "FetchRequest": FetchRequest,
    "FetchResponse": FetchResponse,
    "AlterPartitionRequest": AlterPartitionRequest,
    "AlterPartitionResponse": AlterPartitionResponse,
    "BrokerHeartbeat": BrokerHeartbeat,
    "BrokerHeartbeatResponse": BrokerHeartbeatResponse,
    "FindCoordinatorRequest": FindCoordinatorRequest,
    "FindCoordinatorResponse": FindCoordinatorResponse,
    "AddPartitionsToTxnRequest": AddPartitionsToTxnRequest,
    "AddPartitionsToTxnResponse": AddPartitionsToTxnResponse,
    "AddOffsetsToTxnRequest": AddOffsetsToTxnRequest,
    "AddOffsetsToTxnResponse": AddOffsetsToTxnResponse,
    "TxnOffsetCommitRequest": TxnOffsetCommitRequest,
    "TxnOffsetCommitResponse": TxnOffsetCommitResponse,
    "EndTxnRequest": EndTxnRequest,
    "EndTxnResponse": EndTxnResponse,
    "WriteTxnMarkersRequest": WriteTxnMarkersRequest,
    "WriteTxnMarkersResponse": WriteTxnMarkersResponse,
    "OffsetFetchRequest": OffsetFetchRequest,
    "OffsetFetchResponse": OffsetFetchResponse,
    "ConsumerFetchRequest": ConsumerFetchRequest,
    "ConsumerFetchResponse": ConsumerFetchResponse,
}
"""Message type names as scenario files write them (`drop.message`, `error.message`)."""
