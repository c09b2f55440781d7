"""kafka-python's exception classes, so user code catches the same names.

The hierarchy, names, `errno`, `retriable` and `invalid_metadata` flags
mirror `kafka.errors` of kafka-python 3.0.12, without depending on it.
`for_code` maps a protocol error code to the class kafka-python raises.
"""

from __future__ import annotations

from sim.protocol import Errors


class KafkaError(RuntimeError):
    retriable = False
    # whether metadata should be refreshed on error
    invalid_metadata = False

    def __str__(self) -> str:
        if not self.args:
            return self.__class__.__name__
        return f"{self.__class__.__name__}: {super().__str__()}"


class IllegalStateError(KafkaError):
    pass


class IllegalArgumentError(KafkaError):
    pass


class KafkaConfigurationError(KafkaError):
    pass


class RetriableError(KafkaError):
    retriable = True


class KafkaTimeoutError(RetriableError):
    pass


class InvalidMetadataError(RetriableError):
    invalid_metadata = True


class KafkaConnectionError(InvalidMetadataError):
    pass


class BrokerResponseError(KafkaError):
    errno: int | None = None
    message: str | None = None
    description: str | None = None

    def __str__(self) -> str:
        return f"[Error {self.errno}] {super().__str__()}"


def _response_error(name: str, code: Errors, base: type[KafkaError]) -> type[BrokerResponseError]:
    bases = (base,) if issubclass(base, BrokerResponseError) else (BrokerResponseError, base)
    return type(name, bases, {"errno": int(code), "message": code.name, "description": code.name})


CorruptRecordError = _response_error("CorruptRecordError", Errors.CORRUPT_MESSAGE, BrokerResponseError)
UnknownTopicOrPartitionError = _response_error(
    "UnknownTopicOrPartitionError", Errors.UNKNOWN_TOPIC_OR_PARTITION, InvalidMetadataError
)
LeaderNotAvailableError = _response_error(
    "LeaderNotAvailableError", Errors.LEADER_NOT_AVAILABLE, InvalidMetadataError
)
NotLeaderForPartitionError = _response_error(
    "NotLeaderForPartitionError", Errors.NOT_LEADER_OR_FOLLOWER, InvalidMetadataError
)
RequestTimedOutError = _response_error("RequestTimedOutError", Errors.REQUEST_TIMED_OUT, RetriableError)
MessageSizeTooLargeError = _response_error(
    "MessageSizeTooLargeError", Errors.MESSAGE_TOO_LARGE, BrokerResponseError
)
NetworkExceptionError = _response_error(
    "NetworkExceptionError", Errors.NETWORK_EXCEPTION, InvalidMetadataError
)
CoordinatorLoadInProgressError = _response_error(
    "CoordinatorLoadInProgressError", Errors.COORDINATOR_LOAD_IN_PROGRESS, RetriableError
)
CoordinatorNotAvailableError = _response_error(
    "CoordinatorNotAvailableError", Errors.COORDINATOR_NOT_AVAILABLE, RetriableError
)
NotCoordinatorError = _response_error("NotCoordinatorError", Errors.NOT_COORDINATOR, RetriableError)
RecordListTooLargeError = _response_error(
    "RecordListTooLargeError", Errors.RECORD_LIST_TOO_LARGE, BrokerResponseError
)
NotEnoughReplicasError = _response_error(
    "NotEnoughReplicasError", Errors.NOT_ENOUGH_REPLICAS, RetriableError
)
NotEnoughReplicasAfterAppendError = _response_error(
    "NotEnoughReplicasAfterAppendError", Errors.NOT_ENOUGH_REPLICAS_AFTER_APPEND, RetriableError
)
TopicAuthorizationFailedError = _response_error(
    "TopicAuthorizationFailedError", Errors.TOPIC_AUTHORIZATION_FAILED, BrokerResponseError
)
OutOfOrderSequenceNumberError = _response_error(
    "OutOfOrderSequenceNumberError", Errors.OUT_OF_ORDER_SEQUENCE_NUMBER, BrokerResponseError
)
DuplicateSequenceNumberError = _response_error(
    "DuplicateSequenceNumberError", Errors.DUPLICATE_SEQUENCE_NUMBER, BrokerResponseError
)
InvalidProducerEpochError = _response_error(
    "InvalidProducerEpochError", Errors.INVALID_PRODUCER_EPOCH, BrokerResponseError
)
InvalidTxnStateError = _response_error("InvalidTxnStateError", Errors.INVALID_TXN_STATE, BrokerResponseError)
InvalidProducerIdMappingError = _response_error(
    "InvalidProducerIdMappingError", Errors.INVALID_PRODUCER_ID_MAPPING, BrokerResponseError
)
InvalidTransactionTimeoutError = _response_error(
    "InvalidTransactionTimeoutError", Errors.INVALID_TRANSACTION_TIMEOUT, BrokerResponseError
)
ConcurrentTransactionsError = _response_error(
    "ConcurrentTransactionsError", Errors.CONCURRENT_TRANSACTIONS, RetriableError
)
TransactionCoordinatorFencedError = _response_error(
    "TransactionCoordinatorFencedError", Errors.TRANSACTION_COORDINATOR_FENCED, BrokerResponseError
)
KafkaStorageError = _response_error("KafkaStorageError", Errors.KAFKA_STORAGE_ERROR, InvalidMetadataError)
UnknownProducerIdError = _response_error(
    "UnknownProducerIdError", Errors.UNKNOWN_PRODUCER_ID, BrokerResponseError
)
FencedLeaderEpochError = _response_error(
    "FencedLeaderEpochError", Errors.FENCED_LEADER_EPOCH, InvalidMetadataError
)
UnknownLeaderEpochError = _response_error(
    "UnknownLeaderEpochError", Errors.UNKNOWN_LEADER_EPOCH, InvalidMetadataError
)
InvalidRecordError = _response_error("InvalidRecordError", Errors.INVALID_RECORD, BrokerResponseError)
ProducerFencedError = _response_error("ProducerFencedError", Errors.PRODUCER_FENCED, BrokerResponseError)
TransactionAbortableError = _response_error(
    "TransactionAbortableError", Errors.TRANSACTION_ABORTABLE, BrokerResponseError
)

_BY_CODE: dict[Errors, type[BrokerResponseError]] = {
    cls.errno: cls  # type: ignore[misc]
    for cls in list(globals().values())
    if isinstance(cls, type) and issubclass(cls, BrokerResponseError) and cls.errno is not None
}


def for_code(code: Errors, detail: str | None = None) -> KafkaError:
    """The exception kafka-python raises for a broker error code."""
    assert code != Errors.NONE, "NONE is not an error"
    cls = _BY_CODE.get(code)
    if cls is None:
        return KafkaError(f"{code.name} ({int(code)})" + (f": {detail}" if detail else ""))
    return cls(detail) if detail else cls()
