"""Future and FutureRecordMetadata: kafka-python's completion contract, in simulated time."""

from typing import Any

import pytest

import sim
from sim import errors
from sim.client.future import Future, FutureRecordMetadata, RecordMetadata


class RecordingDriver:
    """A `run_until` stand-in: records each wait, completes nothing."""

    def __init__(self) -> None:
        self.waits: list[float | None] = []

    def __call__(self, predicate, timeout_ms) -> None:
        self.waits.append(timeout_ms)


def record_future(**kwargs: Any) -> FutureRecordMetadata:
    return FutureRecordMetadata("t", 2, 3, 5, 1234, **kwargs)


def test_success_completes_once() -> None:
    future = Future()
    future.success("v")
    assert future.is_done and future.succeeded() and not future.failed()
    with pytest.raises(AssertionError, match="already complete"):
        future.success("again")
    with pytest.raises(AssertionError, match="already complete"):
        future.failure(errors.KafkaTimeoutError())
    assert future.value == "v"


def test_failure_completes_once_and_instantiates_an_exception_class() -> None:
    future = Future()
    future.failure(errors.NotEnoughReplicasError)
    assert future.failed() and not future.succeeded()
    assert isinstance(future.exception, errors.NotEnoughReplicasError)
    assert future.retriable()
    with pytest.raises(AssertionError):
        future.failure(errors.KafkaTimeoutError())


def test_callbacks_run_once_on_success_and_errbacks_do_not() -> None:
    future = Future()
    calls: list[Any] = []
    future.add_callback(calls.append)
    future.add_errback(lambda exc: calls.append(("error", exc)))
    future.success(1)
    assert calls == [1]


def test_errbacks_run_once_on_failure_and_callbacks_do_not() -> None:
    future = Future()
    calls: list[Any] = []
    future.add_callback(lambda value: calls.append(("value", value)))
    future.add_errback(calls.append)
    error = errors.KafkaTimeoutError("late")
    future.failure(error)
    assert calls == [error]


def test_callbacks_added_after_completion_run_immediately() -> None:
    done = Future().success(7)
    calls: list[Any] = []
    done.add_callback(calls.append)
    done.add_errback(lambda exc: calls.append("never"))
    assert calls == [7]
    failed = Future().failure(errors.KafkaTimeoutError())
    failed.add_errback(lambda exc: calls.append(type(exc).__name__))
    failed.add_callback(lambda value: calls.append("never"))
    assert calls == [7, "KafkaTimeoutError"]


def test_callbacks_run_in_the_order_they_were_added_with_extra_args_first() -> None:
    future = Future()
    calls: list[Any] = []
    future.add_callback(lambda tag, value: calls.append((tag, value)), "first")
    future.add_callback(lambda value, tag: calls.append((tag, value)), tag="second")
    future.success("v")
    assert calls == [("first", "v"), ("second", "v")]


def test_add_both_runs_on_either_outcome() -> None:
    calls: list[Any] = []
    Future().add_both(calls.append).success("ok")
    error = errors.KafkaTimeoutError()
    Future().add_both(calls.append).failure(error)
    assert calls == ["ok", error]


def test_a_raising_callback_is_reported_and_the_next_one_still_runs() -> None:
    reported: list[str] = []
    future = Future(on_callback_error=reported.append)
    calls: list[Any] = []
    future.add_callback(lambda value: 1 / 0)
    future.add_callback(calls.append)
    future.success("v")
    assert calls == ["v"]
    assert reported == ["ZeroDivisionError: division by zero"]


def test_get_returns_the_value_or_raises_the_stored_exception() -> None:
    assert Future().success(3).get() == 3
    error = errors.NotEnoughReplicasError("isr too small")
    with pytest.raises(errors.NotEnoughReplicasError) as raised:
        Future().failure(error).get()
    assert raised.value is error


def test_get_on_a_done_future_does_not_advance_time() -> None:
    driver = RecordingDriver()
    Future(driver).success(1).get(timeout=5)
    assert driver.waits == []


def test_get_waits_through_the_driver_for_at_most_the_timeout() -> None:
    driver = RecordingDriver()
    future = Future(driver)
    with pytest.raises(errors.KafkaTimeoutError, match="0.25 secs"):
        future.get(timeout=0.25)
    assert driver.waits == [250.0], "seconds become simulated milliseconds"
    with pytest.raises(errors.KafkaTimeoutError):
        future.get()
    assert driver.waits == [250.0, None], "no timeout: wait as long as it takes"


def test_record_future_completes_with_record_metadata() -> None:
    future = record_future(header_size=9)
    future.complete(41, None)
    assert future.get() == RecordMetadata("t", 2, ("t", 2), 41, 1234, None, 3, 5, 9)


def test_record_future_fails_with_the_error_given() -> None:
    future = record_future()
    future.complete(-1, errors.KafkaTimeoutError("expired"))
    with pytest.raises(errors.KafkaTimeoutError, match="expired"):
        future.get()


def test_get_timeout_advances_simulated_time_only_up_to_the_timeout() -> None:
    c = sim.Cluster(brokers=3, seed=1)
    c.create_topic("t", 1, replication_factor=3, min_insync_replicas=2)
    p = sim.KafkaProducer(cluster=c, acks="all")
    p.partitions_for("t")
    c.partition(isolate="leader:t/0")  # No answer can come back.
    future = p.send("t", value=b"x")
    start = c.world.now_ms
    with pytest.raises(errors.KafkaTimeoutError, match="Timeout after waiting for 1.5 secs"):
        future.get(timeout=1.5)
    assert c.world.now_ms == start + 1500
    assert not future.is_done, "a get() timeout does not fail the send"


def test_get_without_timeout_returns_when_the_record_completes() -> None:
    c = sim.Cluster(brokers=3, seed=1)
    c.create_topic("t", 1, replication_factor=3)
    p = sim.KafkaProducer(cluster=c, acks="all")
    future = p.send("t", value=b"x")
    assert future.get().offset == 0
    assert c.world.now_ms < 1000
