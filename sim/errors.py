"""kafka-python's exception classes, so user code catches the same names.

Mirrors `kafka.errors` of kafka-python 3.0.12 (class names, bases in the same
order so the MRO matches, `errno`, `message`, `description`, `retriable`,
`invalid_metadata`, `__str__`, `__eq__`) without importing it: kafka-python
is only a test dependency. Covered: the client-side errors the producer
raises and every broker error on the produce, transaction and coordinator
paths (SEMANTICS.md §4). Broker errors of other APIs (groups, SASL, KRaft...)
are left out; `for_code` answers an unknown code the way kafka-python does,
with an `UnknownError` subclass carrying that errno.

Two deliberate differences from kafka-python:
- Exceptions stay hashable (kafka-python defines `__eq__` without
  `__hash__`); equal exceptions hash equally because the hash is the class's.
- `retriable` follows kafka-python, not Java: CORRUPT_MESSAGE is retriable in
  Java (`CorruptRecordException extends RetriableException`) but not here.
  The sender's retry policy uses `sim.protocol.Errors.retriable` (Java's).
"""

from __future__ import annotations

from sim.protocol import Errors

# --- Client-side errors --------------------------------------------------------


class KafkaError(Exception):
    """Root of every error the client raises or hands to a future."""

    retriable = False
    invalid_metadata = False  # Whether metadata should be refreshed on this error.

    def __str__(self) -> str:
        if not self.args:
            return self.__class__.__name__
        return f"{self.__class__.__name__}: {super().__str__()}"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, KafkaError)
            and self.__class__ == other.__class__
            and self.args == other.args
        )

    def __hash__(self) -> int:
        return hash(self.__class__)  # det-ok: never iterated in the simulation


class RetriableError(KafkaError):
    retriable = True


class InvalidMetadataError(RetriableError):
    invalid_metadata = True


class Cancelled(RetriableError):
    pass


class IllegalArgumentError(KafkaError):
    pass


class IllegalStateError(KafkaError):
    pass


class KafkaConfigurationError(KafkaError):
    pass


class KafkaConnectionError(InvalidMetadataError):
    pass


class KafkaProtocolError(KafkaError):
    pass


class KafkaTimeoutError(RetriableError):
    pass


class NodeNotReadyError(RetriableError):
    pass


class TooManyInFlightRequests(RetriableError):
    pass


class UnsupportedCodecError(KafkaError):
    pass


class TransactionAbortedError(KafkaError):
    """Fails batches left unsent when the user aborts a transaction (KIP-654).

    Not fatal: the producer can begin the next transaction.
    """

    message = "Failing batch since transaction was aborted"


# --- Broker errors -------------------------------------------------------------


class BrokerResponseError(KafkaError):
    """An error code returned by a broker; `errno` is Kafka's code."""

    errno: int | None = None
    message: str | None = None
    description: str | None = None

    def __str__(self) -> str:
        return f"[Error {self.errno}] {super().__str__()}"


class AuthorizationError(BrokerResponseError):
    pass


class UnknownError(BrokerResponseError):
    errno = -1
    message = "UNKNOWN"
    description = "An unexpected server error."


class CorruptRecordError(BrokerResponseError):
    errno = 2
    message = "CORRUPT_MESSAGE"
    description = (
        "This message has failed its CRC checksum, exceeds the valid size, or is otherwise corrupt."
    )


CorruptRecordException = CorruptRecordError  # kafka-python's backward-compatible alias.


class UnknownTopicOrPartitionError(InvalidMetadataError, BrokerResponseError):
    errno = 3
    message = "UNKNOWN_TOPIC_OR_PARTITION"
    description = "This request is for a topic or partition that does not exist on this broker."


class LeaderNotAvailableError(InvalidMetadataError, BrokerResponseError):
    errno = 5
    message = "LEADER_NOT_AVAILABLE"
    description = "This error is thrown if we are in the middle of a leadership election and there is currently no leader for this partition and hence it is unavailable for writes."


class NotLeaderForPartitionError(InvalidMetadataError, BrokerResponseError):
    errno = 6
    message = "NOT_LEADER_FOR_PARTITION"  # kafka-python's name; Kafka's is NOT_LEADER_OR_FOLLOWER.
    description = "This error is thrown if the client attempts to send messages to a replica that is not the leader for some partition. It indicates that the clients metadata is out of date."


class RequestTimedOutError(RetriableError, BrokerResponseError):
    errno = 7
    message = "REQUEST_TIMED_OUT"
    description = (
        "This error is thrown if the request exceeds the user-specified time limit in the request."
    )


class MessageSizeTooLargeError(BrokerResponseError):
    errno = 10
    message = "MESSAGE_SIZE_TOO_LARGE"
    description = "The server has a configurable maximum message size to avoid unbounded memory allocation. This error is thrown if the client attempt to produce a message larger than this maximum."


class NetworkExceptionError(InvalidMetadataError, BrokerResponseError):
    errno = 13
    message = "NETWORK_EXCEPTION"  # kafka-python gives it no description.


class CoordinatorLoadInProgressError(RetriableError, BrokerResponseError):
    errno = 14
    message = "COORDINATOR_LOAD_IN_PROGRESS"
    description = "The broker returns this error code for txn or group requests, when the coordinator is loading and hence cant process requests"


class CoordinatorNotAvailableError(RetriableError, BrokerResponseError):
    errno = 15
    message = "COORDINATOR_NOT_AVAILABLE"
    description = "The broker returns this error code for consumer and transaction requests if the offsets topic has not yet been created, or if the group/txn coordinator is not active."


class NotCoordinatorError(RetriableError, BrokerResponseError):
    errno = 16
    message = "NOT_COORDINATOR"
    description = "The broker returns this error code if it is not the correct coordinator for the specified consumer or transaction group"


class InvalidTopicError(BrokerResponseError):
    errno = 17
    message = "INVALID_TOPIC"
    description = "For a request which attempts to access an invalid topic (e.g. one which has an illegal name), or if an attempt is made to write to an internal topic (such as the consumer offsets topic)."


class RecordListTooLargeError(BrokerResponseError):
    errno = 18
    message = "RECORD_LIST_TOO_LARGE"
    description = (
        "If a message batch in a produce request exceeds the maximum configured segment size."
    )


class NotEnoughReplicasError(RetriableError, BrokerResponseError):
    errno = 19
    message = "NOT_ENOUGH_REPLICAS"
    description = "Returned from a produce request when the number of in-sync replicas is lower than the configured minimum and requiredAcks is -1."


class NotEnoughReplicasAfterAppendError(RetriableError, BrokerResponseError):
    errno = 20
    message = "NOT_ENOUGH_REPLICAS_AFTER_APPEND"
    description = "Returned from a produce request when the message was written to the log, but with fewer in-sync replicas than required."


class InvalidRequiredAcksError(BrokerResponseError):
    errno = 21
    message = "INVALID_REQUIRED_ACKS"
    description = "Returned from a produce request if the requested requiredAcks is invalid (anything other than -1, 1, or 0)."


class TopicAuthorizationFailedError(AuthorizationError):
    errno = 29
    message = "TOPIC_AUTHORIZATION_FAILED"
    description = (
        "Returned by the broker when the client is not authorized to access the requested topic."
    )


class GroupAuthorizationFailedError(AuthorizationError):
    errno = 30
    message = "GROUP_AUTHORIZATION_FAILED"
    description = (
        "Returned by the broker when the client is not authorized to access a particular groupId."
    )


class ClusterAuthorizationFailedError(AuthorizationError):
    errno = 31
    message = "CLUSTER_AUTHORIZATION_FAILED"
    description = "Returned by the broker when the client is not authorized to use an inter-broker or administrative API."


class UnsupportedVersionError(BrokerResponseError):
    errno = 35
    message = "UNSUPPORTED_VERSION"
    description = "The version of API is not supported."


class UnsupportedForMessageFormatError(BrokerResponseError):
    errno = 43
    message = "UNSUPPORTED_FOR_MESSAGE_FORMAT"
    description = "The message format version on the broker does not support this request."


class OutOfOrderSequenceNumberError(BrokerResponseError):
    errno = 45
    message = "OUT_OF_ORDER_SEQUENCE_NUMBER"
    description = "The broker received an out of order sequence number."


class DuplicateSequenceNumberError(BrokerResponseError):
    errno = 46
    message = "DUPLICATE_SEQUENCE_NUMBER"
    description = "The broker received a duplicate sequence number."


class InvalidProducerEpochError(BrokerResponseError):
    errno = 47
    message = "INVALID_PRODUCER_EPOCH"
    description = "Producer attempted to produce with an old epoch."


class InvalidTxnStateError(BrokerResponseError):
    errno = 48
    message = "INVALID_TXN_STATE"
    description = "The producer attempted a transactional operation in an invalid state."


class InvalidProducerIdMappingError(BrokerResponseError):
    errno = 49
    message = "INVALID_PRODUCER_ID_MAPPING"
    description = "The producer attempted to use a producer id which is not currently assigned to its transactional id."


class InvalidTransactionTimeoutError(BrokerResponseError):
    errno = 50
    message = "INVALID_TRANSACTION_TIMEOUT"
    description = "The transaction timeout is larger than the maximum value allowed by the broker (as configured by transaction.max.timeout.ms)."


class ConcurrentTransactionsError(RetriableError, BrokerResponseError):
    errno = 51
    message = "CONCURRENT_TRANSACTIONS"
    description = "The producer attempted to update a transaction while another concurrent operation on the same transaction was ongoing."


class TransactionCoordinatorFencedError(BrokerResponseError):
    errno = 52
    message = "TRANSACTION_COORDINATOR_FENCED"
    description = "Indicates that the transaction coordinator sending a WriteTxnMarker is no longer the current coordinator for a given producer."


class TransactionalIdAuthorizationFailedError(AuthorizationError):
    errno = 53
    message = "TRANSACTIONAL_ID_AUTHORIZATION_FAILED"
    description = "Transactional Id authorization failed."


class OperationNotAttemptedError(BrokerResponseError):
    errno = 55
    message = "OPERATION_NOT_ATTEMPTED"
    description = "The broker did not attempt to execute this operation. This may happen for batched RPCs where some operations in the batch failed, causing the broker to respond without trying the rest."


class KafkaStorageError(InvalidMetadataError, BrokerResponseError):
    errno = 56
    message = "KAFKA_STORAGE_ERROR"
    description = "Disk error when trying to access log file on the disk."


class UnknownProducerIdError(BrokerResponseError):
    errno = 59
    message = "UNKNOWN_PRODUCER_ID"
    description = "This exception is raised by the broker if it could not locate the producer metadata associated with the producerId in question. This could happen if, for instance, the producer's records were deleted because their retention time had elapsed. Once the last records of the producerId are removed, the producer's metadata is removed from the broker, and future appends by the producer will return this exception."


class FencedLeaderEpochError(InvalidMetadataError, BrokerResponseError):
    errno = 74
    message = "FENCED_LEADER_EPOCH"
    description = "The leader epoch in the request is older than the epoch on the broker."


class UnknownLeaderEpochError(InvalidMetadataError, BrokerResponseError):
    errno = 75
    message = "UNKNOWN_LEADER_EPOCH"
    description = "The leader epoch in the request is newer than the epoch on the broker."


class InvalidRecordError(BrokerResponseError):
    errno = 87
    message = "INVALID_RECORD"
    description = "This record has failed the validation on broker and hence will be rejected."


class ProducerFencedError(BrokerResponseError):
    errno = 90
    message = "PRODUCER_FENCED"
    description = (
        "There is a newer producer with the same transactionalId which fences the current one."
    )


class TransactionAbortableError(BrokerResponseError):
    errno = 120
    message = "TRANSACTION_ABORTABLE"
    description = "The server encountered an error with the transaction. The client can abort the transaction to continue using this transactional ID."


# --- Replication, fetch and controller paths (AlterPartition, Fetch, elections) ---


class OffsetOutOfRangeError(BrokerResponseError):
    errno = 1
    message = "OFFSET_OUT_OF_RANGE"
    description = "The requested offset is outside the range of offsets maintained by the server for the given topic/partition."


class BrokerNotAvailableError(BrokerResponseError):
    errno = 8
    message = "BROKER_NOT_AVAILABLE"
    description = (
        "This is not a client facing error and is used mostly by tools when a broker is not alive."
    )


class ReplicaNotAvailableError(InvalidMetadataError, BrokerResponseError):
    errno = 9
    message = "REPLICA_NOT_AVAILABLE"
    description = "If replica is expected on a broker, but is not (this can be safely ignored)."


class NotControllerError(RetriableError, BrokerResponseError):
    errno = 41
    message = "NOT_CONTROLLER"
    description = "This is not the correct controller for this cluster."


class StaleBrokerEpochError(BrokerResponseError):
    errno = 77
    message = "STALE_BROKER_EPOCH"
    description = "Broker epoch has changed."


class OffsetNotAvailableError(RetriableError, BrokerResponseError):
    errno = 78
    message = "OFFSET_NOT_AVAILABLE"
    description = "The leader high watermark has not caught up from a recent leader election so the offsets cannot be guaranteed to be monotonically increasing."


class EligibleLeadersNotAvailableError(InvalidMetadataError, BrokerResponseError):
    errno = 83
    message = "ELIGIBLE_LEADERS_NOT_AVAILABLE"
    description = "Eligible topic partition leaders are not available."


class InvalidUpdateVersionError(BrokerResponseError):
    errno = 95
    message = "INVALID_UPDATE_VERSION"
    description = "The given update version was invalid."


class UnknownTopicIdError(InvalidMetadataError, BrokerResponseError):
    errno = 100
    message = "UNKNOWN_TOPIC_ID"
    description = "This server does not host this topic ID."


class IneligibleReplicaError(BrokerResponseError):
    errno = 107
    message = "INELIGIBLE_REPLICA"
    description = "The new ISR contains at least one ineligible replica."


class NewLeaderElectedError(BrokerResponseError):
    errno = 108
    message = "NEW_LEADER_ELECTED"
    description = "The AlterPartition request successfully updated the partition state but the leader has changed."


# --- Lookup by code ------------------------------------------------------------


def _broker_error_classes() -> dict[int, type[BrokerResponseError]]:
    """Every concrete broker error defined above, by errno (aliases counted once)."""
    by_errno: dict[int, type[BrokerResponseError]] = {}
    for obj in list(globals().values()):
        if isinstance(obj, type) and issubclass(obj, BrokerResponseError) and obj.errno is not None:
            assert by_errno.get(obj.errno, obj) is obj, f"two classes for errno {obj.errno}"
            by_errno[obj.errno] = obj
    return by_errno


BY_ERRNO: dict[int, type[BrokerResponseError]] = _broker_error_classes()
"""errno -> class, as kafka-python's `kafka_errors` (without NoError: code 0 is no error)."""

_UNRECOGNIZED: dict[int, type[UnknownError]] = {}


def class_for_code(code: Errors | int) -> type[BrokerResponseError]:
    """The class kafka-python's `kafka.errors.for_code` returns for a broker error code.

    An unknown code gets a cached `UnrecognizedBrokerError(UnknownError)` with that
    errno, as kafka-python builds one, so the code is never dropped.
    """
    errno = int(code)
    assert errno != 0, "error code 0 (NONE) is not an error"
    cls = BY_ERRNO.get(errno)
    if cls is not None:
        return cls
    if errno not in _UNRECOGNIZED:
        _UNRECOGNIZED[errno] = type("UnrecognizedBrokerError", (UnknownError,), {"errno": errno})
    return _UNRECOGNIZED[errno]


def for_code(code: Errors | int, detail: str | None = None) -> KafkaError:
    """The exception instance kafka-python hands to a future for this broker error code.

    kafka-python builds it as `error_cls(partition_response.error_message)`; the
    broker's error message is usually null, so without `detail` we build the bare
    exception (kafka-python would print a trailing ": None").
    """
    cls = class_for_code(code)
    return cls(detail) if detail is not None else cls()
