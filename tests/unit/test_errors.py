"""sim.errors against kafka-python 3.0.12's kafka.errors (a test-only dependency)."""

from __future__ import annotations

import kafka.errors as kp
import pytest

import sim.errors as se
from sim.protocol import Errors

SIM_CLASSES = sorted(
    (name, obj)
    for name, obj in vars(se).items()
    if isinstance(obj, type) and issubclass(obj, BaseException) and not name.startswith("_")
)
FLAGS = ("errno", "message", "description", "retriable", "invalid_metadata")
CODES = [code for code in Errors if code != Errors.NONE]

REQUIRED_NAMES = (
    "KafkaError",
    "RetriableError",
    "KafkaTimeoutError",
    "KafkaConfigurationError",
    "KafkaConnectionError",
    "IllegalStateError",
    "IllegalArgumentError",
    "BrokerResponseError",
    "NotLeaderForPartitionError",
    "RequestTimedOutError",
    "NotEnoughReplicasError",
    "NotEnoughReplicasAfterAppendError",
    "OutOfOrderSequenceNumberError",
    "NetworkExceptionError",
    "ProducerFencedError",
    "InvalidProducerEpochError",
    "TransactionAbortedError",
    "for_code",
)


def mro_names(cls: type) -> list[str]:
    return [klass.__name__ for klass in cls.__mro__]


def test_public_names_the_rest_of_the_code_uses_exist() -> None:
    missing = [name for name in REQUIRED_NAMES if not hasattr(se, name)]
    assert missing == []


def test_every_class_covers_the_produce_path() -> None:
    assert len(SIM_CLASSES) >= 50
    assert "NoError" not in vars(se)


@pytest.mark.parametrize(("name", "cls"), SIM_CLASSES, ids=[n for n, _ in SIM_CLASSES])
def test_class_matches_kafka_python(name: str, cls: type) -> None:
    reference = getattr(kp, name)
    assert cls.__name__ == reference.__name__
    assert mro_names(cls) == mro_names(reference)
    for flag in FLAGS:
        assert getattr(cls, flag, None) == getattr(reference, flag, None), flag


@pytest.mark.parametrize(("name", "cls"), SIM_CLASSES, ids=[n for n, _ in SIM_CLASSES])
def test_str_matches_kafka_python(name: str, cls: type) -> None:
    reference = getattr(kp, name)
    assert str(cls()) == str(reference())
    assert str(cls("leader moved")) == str(reference("leader moved"))


@pytest.mark.parametrize("code", CODES, ids=[c.name for c in CODES])
def test_for_code_round_trips_every_code_kafka_python_knows(code: Errors) -> None:
    assert int(code) in kp.kafka_errors, f"kafka-python does not know {code.name}"
    reference = kp.for_code(int(code))
    error = se.for_code(code)
    assert type(error).__name__ == reference.__name__
    assert mro_names(type(error)) == mro_names(reference)
    assert error.errno == int(code) == reference.errno
    assert (error.retriable, error.invalid_metadata) == (
        reference.retriable,
        reference.invalid_metadata,
    )
    assert se.for_code(int(code)) == error  # An int works as well as the enum.


def test_for_code_detail_becomes_the_message() -> None:
    error = se.for_code(Errors.NOT_ENOUGH_REPLICAS, "ISR [1] < min.insync.replicas 2")
    assert isinstance(error, se.NotEnoughReplicasError)
    assert error.args == ("ISR [1] < min.insync.replicas 2",)
    assert str(error) == "[Error 19] NotEnoughReplicasError: ISR [1] < min.insync.replicas 2"
    assert str(se.for_code(Errors.NOT_ENOUGH_REPLICAS)) == "[Error 19] NotEnoughReplicasError"


def test_unknown_code_becomes_unrecognized_broker_error_as_in_kafka_python() -> None:
    error = se.for_code(9999)
    reference = kp.for_code(9999)
    assert type(error).__name__ == reference.__name__ == "UnrecognizedBrokerError"
    assert isinstance(error, se.UnknownError)
    assert error.errno == reference.errno == 9999
    assert type(se.for_code(9999)) is type(error)  # Cached: one class per code.


def test_error_code_none_is_not_an_error() -> None:
    with pytest.raises(AssertionError):
        se.for_code(Errors.NONE)


def test_equality_like_kafka_python_but_still_hashable() -> None:
    assert se.KafkaTimeoutError("x") == se.KafkaTimeoutError("x")
    assert se.KafkaTimeoutError("x") != se.KafkaTimeoutError("y")
    assert se.KafkaTimeoutError("x") != se.RequestTimedOutError("x")
    assert se.KafkaTimeoutError("x") != "x"
    assert kp.KafkaTimeoutError("x") == kp.KafkaTimeoutError("x")
    assert hash(se.KafkaTimeoutError("x")) == hash(se.KafkaTimeoutError("x"))
    assert len({se.KafkaTimeoutError("x"), se.KafkaTimeoutError("x")}) == 1


def test_kafka_error_is_an_exception_not_a_runtime_error() -> None:
    """kafka-python's KafkaError derives from Exception: `except RuntimeError` misses it."""
    assert not issubclass(se.KafkaError, RuntimeError)
    assert issubclass(se.KafkaError, Exception)


def test_retriable_agrees_with_the_protocol_table_except_corrupt_message() -> None:
    """kafka-python's CorruptRecordError is not retriable; Java's exception is."""
    differing = sorted(
        code.name
        for code in CODES
        if se.class_for_code(code).retriable != code.retriable
        or se.class_for_code(code).invalid_metadata != code.invalid_metadata
    )
    assert differing == ["CORRUPT_MESSAGE"]


def test_transaction_aborted_error_carries_kafka_python_message() -> None:
    assert se.TransactionAbortedError.message == kp.TransactionAbortedError.message
    assert not se.TransactionAbortedError.retriable
