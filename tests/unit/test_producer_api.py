"""KafkaProducer's public API, as kafka-python code uses it.

send() returns a future at once whatever acks says; get(), callbacks,
flush() and close() advance simulated time. Checks and errors are
kafka-python's (class names from `sim.errors`).
"""

from typing import Any

import kafka.errors
import pytest

import sim
from sim import errors
from sim.client import producer as producer_module
from sim.client.future import FutureRecordMetadata
from sim.history import OK


def setup(partitions: int = 3, **configs: Any) -> tuple[sim.Cluster, sim.KafkaProducer]:
    c = sim.Cluster(brokers=3, seed=1)
    c.create_topic("t", partitions, replication_factor=3, min_insync_replicas=2)
    p = sim.KafkaProducer(cluster=c, **configs)
    return c, p


# --- send and its future ---------------------------------------------------------------


def test_send_returns_a_pending_future_even_with_acks_all() -> None:
    c, p = setup(acks="all")
    p.partitions_for("t")
    future = p.send("t", value=b"x", partition=0)
    assert isinstance(future, FutureRecordMetadata)
    assert not future.is_done, "acks=all decides when the broker answers, not that send() waits"
    assert c.history.status == [0]  # invoked, pending
    future.get(timeout=10)
    assert future.succeeded()


def test_get_returns_record_metadata_with_consecutive_offsets() -> None:
    c, p = setup(acks="all")
    futures = [p.send("t", key=b"k", value=b"value", partition=1) for _ in range(3)]
    results = [f.get(timeout=10) for f in futures]
    first = results[0]
    assert isinstance(first, sim.RecordMetadata)
    assert first._fields == (
        "topic",
        "partition",
        "topic_partition",
        "offset",
        "timestamp",
        "checksum",
        "serialized_key_size",
        "serialized_value_size",
        "serialized_header_size",
    )
    assert (first.topic, first.partition, first.topic_partition) == ("t", 1, ("t", 1))
    assert [r.offset for r in results] == [0, 1, 2]
    assert (first.serialized_key_size, first.serialized_value_size) == (1, 5)
    assert first.serialized_header_size == -1, "no headers"
    assert first.timestamp == int(c.history.invoke_ms[0])


def test_record_metadata_reports_the_serialized_header_size() -> None:
    c, p = setup()
    md = p.send("t", value=b"x", headers=[("trace", b"abcd"), ("h", b"")]).get(timeout=10)
    assert md.serialized_header_size == len("trace") + 4 + len("h")
    assert md.serialized_key_size == -1


def test_an_explicit_timestamp_is_kept() -> None:
    c, p = setup()
    assert p.send("t", value=b"x", timestamp_ms=1234).get(timeout=10).timestamp == 1234


def test_callbacks_run_once_in_completion_order() -> None:
    c, p = setup(acks="all")
    p.partitions_for("t")
    # Partition 0's first attempt is rejected, so partition 1's record completes first.
    c.error("leader:t/0", message="ProduceRequest", error="NOT_ENOUGH_REPLICAS", count=1)
    calls: list[tuple[str, int]] = []
    slow = p.send("t", value=b"a", partition=0)
    fast = p.send("t", value=b"b", partition=1)
    slow.add_callback(lambda md: calls.append(("slow", md.offset)))
    fast.add_callback(lambda md: calls.append(("fast", md.offset)))
    slow.add_errback(lambda exc: calls.append(("slow-error", -1)))
    p.flush()
    c.run_for(1000)
    assert calls == [("fast", 0), ("slow", 0)]


def test_an_errback_runs_once_with_the_exception() -> None:
    c, p = setup(acks="all")
    p.partitions_for("t")
    c.error("leader:t/0", message="ProduceRequest", error="TOPIC_AUTHORIZATION_FAILED", count=1)
    seen: list[BaseException] = []
    future = p.send("t", value=b"x", partition=0)
    future.add_callback(lambda md: pytest.fail("no success expected"))
    future.add_errback(seen.append)
    p.flush()
    assert len(seen) == 1
    assert isinstance(seen[0], errors.TopicAuthorizationFailedError)


def test_a_raising_callback_does_not_break_later_sends() -> None:
    c, p = setup(acks="all")

    def boom(md: Any) -> None:
        raise RuntimeError("user bug")

    p.send("t", value=b"a", partition=0).add_callback(boom)
    p.flush()
    (error,) = [e for e in c.world.events if e.kind == "producer.callback_error"]
    assert "RuntimeError: user bug" in error.field("error")
    assert p.send("t", value=b"b", partition=0).get(timeout=10).offset == 1


# --- partition choice --------------------------------------------------------------------


def test_an_explicit_partition_wins_over_the_key() -> None:
    c, p = setup()
    assert p.send("t", key=b"abc", value=b"x", partition=2).get(timeout=10).partition == 2


@pytest.mark.parametrize(("key", "partition"), [(b"abc", 0), (b"a", 1)])
def test_a_keyed_record_goes_to_its_murmur2_partition(key: bytes, partition: int) -> None:
    c, p = setup()
    results = [p.send("t", key=key, value=b"x").get(timeout=10) for _ in range(3)]
    assert [r.partition for r in results] == [partition] * 3


def test_an_unknown_partition_is_a_value_error() -> None:
    c, p = setup()
    with pytest.raises(ValueError, match="Unrecognized partition 3"):
        p.send("t", value=b"x", partition=3)
    assert len(c.history) == 0


# --- flush and close ------------------------------------------------------------------------


def test_flush_completes_every_record_sent_before_it() -> None:
    c, p = setup(linger_ms=1000)
    p.partitions_for("t")
    start = c.world.now_ms
    futures = [p.send("t", value=b"%d" % i, partition=i % 3) for i in range(20)]
    p.flush()
    assert all(f.succeeded() for f in futures)
    assert c.world.now_ms - start < 1000, "flush does not wait for linger_ms"
    assert c.history.count(OK) == 20


def test_close_completes_pending_records_then_send_raises() -> None:
    c, p = setup()
    future = p.send("t", value=b"x")
    p.close()
    assert future.succeeded()
    with pytest.raises(errors.IllegalStateError, match="already closed"):
        p.send("t", value=b"y")


# --- checks on send() ---------------------------------------------------------------------


def test_a_value_must_be_bytes_unless_a_value_serializer_is_set() -> None:
    c, p = setup()
    with pytest.raises(TypeError, match="value"):
        p.send("t", value="text")
    with pytest.raises(TypeError, match="key"):
        p.send("t", key=42, value=b"x")
    assert len(c.history) == 0
    serializing = sim.KafkaProducer(
        cluster=c, value_serializer=str.encode, key_serializer=lambda k: b"%d" % k
    )
    md = serializing.send("t", key=42, value="text").get(timeout=10)
    assert (md.serialized_key_size, md.serialized_value_size) == (2, 4)


def test_a_kafka_python_serializer_object_is_called_with_topic_and_headers() -> None:
    from kafka.serializer import Serializer

    seen: list[tuple[str, Any, Any]] = []

    class Upper(Serializer):
        def serialize(self, topic, headers, data):
            seen.append((topic, headers, data))
            return data.upper().encode()

    c, p = setup(value_serializer=Upper())
    md = p.send("t", value="abc", headers=[("h", b"1")]).get(timeout=10)
    assert md.serialized_value_size == 3
    assert seen == [("t", [("h", b"1")], "abc")]


def test_a_record_needs_a_key_or_a_value() -> None:
    c, p = setup()
    with pytest.raises(ValueError, match="Need at least one"):
        p.send("t")
    assert p.send("t", key=b"k").get(timeout=10).serialized_value_size == -1


def test_a_record_larger_than_max_request_size_is_rejected_before_it_is_sent() -> None:
    c, p = setup(max_request_size=1000)
    with pytest.raises(errors.MessageSizeTooLargeError, match="max_request_size"):
        p.send("t", value=b"x" * 1000)
    assert len(c.history) == 0


def test_a_full_buffer_blocks_send_for_max_block_ms_then_raises() -> None:
    c, p = setup(acks="all", batch_size=0, buffer_memory=200, max_block_ms=700)
    p.partitions_for("t")
    c.partition(isolate="leader:t/0")  # The first batch stays in memory.
    first = p.send("t", value=b"x" * 90, partition=0)
    assert p.accumulator.used_bytes > 100
    start = c.world.now_ms
    with pytest.raises(errors.KafkaTimeoutError, match="allocate memory"):
        p.send("t", value=b"y" * 90, partition=0)
    assert c.world.now_ms == start + 700, "blocked in simulated time for max_block_ms"
    assert not first.is_done
    assert len(c.history) == 1, "the record that could not get memory was never sent"


def test_a_blocked_send_resumes_as_soon_as_memory_is_freed() -> None:
    c, p = setup(acks="all", batch_size=0, buffer_memory=200, max_block_ms=60_000)
    p.partitions_for("t")
    first = p.send("t", value=b"x" * 90, partition=0)
    start = c.world.now_ms
    second = p.send("t", value=b"y" * 90, partition=0)
    assert first.succeeded(), "the second send waited for the first batch to complete"
    assert c.world.now_ms - start < 1000
    assert second.get(timeout=10).offset == 1


def test_without_a_cluster_the_producer_raises_a_clear_error(monkeypatch) -> None:
    monkeypatch.setattr(producer_module, "_current_env", [])
    with pytest.raises(errors.KafkaConfigurationError, match="sim.Cluster"):
        sim.KafkaProducer(bootstrap_servers="localhost:9092")


def test_without_cluster_keyword_the_producer_attaches_to_the_latest_cluster() -> None:
    c = sim.Cluster(brokers=1, seed=1)
    p = sim.KafkaProducer(bootstrap_servers="localhost:9092")
    assert p.env is c


def test_raised_errors_are_sim_errors_with_kafka_python_names() -> None:
    c, p = setup(acks="all", max_request_size=1000)
    raised: list[BaseException] = []
    for call in (
        lambda: p.send("t", value=b"x" * 2000),
        lambda: p.send("t", value=b"x", partition=0).get(timeout=0),
    ):
        try:
            call()
        except errors.KafkaError as exc:
            raised.append(exc)
    p.close()
    try:
        p.send("t", value=b"x")
    except errors.KafkaError as exc:
        raised.append(exc)
    names = [type(exc).__name__ for exc in raised]
    assert names == ["MessageSizeTooLargeError", "KafkaTimeoutError", "IllegalStateError"]
    for exc in raised:
        assert type(exc).__module__ == "sim.errors"
        assert hasattr(kafka.errors, type(exc).__name__), type(exc).__name__
        kafka_python_class = getattr(kafka.errors, type(exc).__name__)
        assert exc.retriable == kafka_python_class.retriable
