"""The Sender: in-flight limits, draining, retries, timeouts and failover.

Each test runs a producer against a small simulated cluster and reads what
happened from the world's trace (`producer.send`, `producer.retry`,
`rpc.timeout`, `broker.*`) and from the history.
"""

from collections.abc import Iterator
from typing import Any

import pytest

import sim
from sim import errors
from sim.history import FAIL, INFO, OK
from sim.protocol import ProduceRequest
from sim.world import TraceEvent


def events(c: sim.Cluster, kind: str) -> list[TraceEvent]:
    return [e for e in c.world.events if e.kind == kind]


def sends(c: sim.Cluster) -> list[TraceEvent]:
    return events(c, "producer.send")


def sequences_sent(c: sim.Cluster) -> list[int]:
    return [batch[2] for e in sends(c) for batch in e.field("batches")]


def setup(
    brokers: int = 3, partitions: int = 1, replication_factor: int = 3, **configs: Any
) -> tuple[sim.Cluster, sim.KafkaProducer]:
    c = sim.Cluster(brokers=brokers, seed=1)
    c.create_topic("t", partitions, replication_factor, min(2, replication_factor))
    p = sim.KafkaProducer(cluster=c, **configs)
    p.partitions_for("t")  # Metadata first, so send() itself does not block.
    for broker in range(brokers):  # Connections set up, so first sends are not delayed.
        p.sender.connect(broker)
    c.run_until(lambda: len(p.sender.connected) == brokers, 1000)
    return c, p


class InFlightProbe:
    """Counts unanswered ProduceRequests per broker, as the producer's RpcClient sees them."""

    def __init__(self, producer: sim.KafkaProducer) -> None:
        self.live: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self._call = producer.rpc.call
        producer.rpc.call = self.call  # The Sender calls through the same RpcClient object.

    def call(self, target, request, timeout_ms, on_response, on_error) -> None:
        if not isinstance(request, ProduceRequest):
            return self._call(target, request, timeout_ms, on_response, on_error)
        self.live[target] = self.live.get(target, 0) + 1
        self.peak[target] = max(self.peak.get(target, 0), self.live[target])

        def answered(response) -> None:
            self.live[target] -= 1
            on_response(response)

        def failed(error) -> None:
            self.live[target] -= 1
            on_error(error)

        return self._call(target, request, timeout_ms, answered, failed)


def outcomes(futures) -> Iterator[Any]:
    for future in futures:
        try:
            yield future.get(timeout=0).offset
        except errors.KafkaError as exc:
            yield type(exc).__name__


# --- in flight and draining --------------------------------------------------------------


@pytest.mark.parametrize("max_in_flight", [1, 2, 5])
def test_never_more_than_max_in_flight_unanswered_requests_per_broker(max_in_flight: int) -> None:
    c, p = setup(
        brokers=1,
        partitions=3,
        replication_factor=1,
        acks=1,
        batch_size=0,
        max_in_flight_requests_per_connection=max_in_flight,
    )
    probe = InFlightProbe(p)
    futures = [p.send("t", value=b"x", partition=i % 3) for i in range(30)]
    p.flush()
    assert probe.peak == {"broker-0": max_in_flight}, "the limit is reached and never passed"
    assert all(f.succeeded() for f in futures)


def test_a_request_carries_at_most_one_batch_per_partition() -> None:
    c, p = setup(brokers=1, partitions=3, replication_factor=1, acks=1, batch_size=0)
    futures = [p.send("t", value=b"x", partition=i % 3) for i in range(12)]
    p.flush()
    assert all(f.succeeded() for f in futures)
    per_request = [[batch[1] for batch in e.field("batches")] for e in sends(c)]
    assert all(len(parts) == len(set(parts)) for parts in per_request), per_request
    assert max(len(parts) for parts in per_request) == 3, "partitions of one leader share requests"
    assert sum(len(parts) for parts in per_request) == 12


def test_max_in_flight_one_mutes_a_partition_until_its_response() -> None:
    c, p = setup(acks=1, enable_idempotence=False, max_in_flight_requests_per_connection=1)
    future = p.send("t", value=b"x")
    c.run_for(0.5)  # Drained and sent; the response is a round trip away.
    assert len(sends(c)) == 1
    assert ("t", 0) in p.sender.muted
    future.get(timeout=1)
    assert ("t", 0) not in p.sender.muted


def test_max_in_flight_above_one_does_not_mute() -> None:
    c, p = setup(acks=1, enable_idempotence=False, max_in_flight_requests_per_connection=2)
    p.send("t", value=b"x")
    c.run_for(0.5)
    assert len(sends(c)) == 1
    assert not p.sender.muted


def test_max_in_flight_one_keeps_order_through_a_retry_without_idempotence() -> None:
    c, p = setup(
        acks="all", batch_size=0, enable_idempotence=False, max_in_flight_requests_per_connection=1
    )
    p.send("t", value=b"warm-up").get(timeout=1)
    c.error("leader:t/0", message="ProduceRequest", error="NOT_ENOUGH_REPLICAS", count=1)
    futures = [p.send("t", value=b"%d" % i) for i in range(5)]
    p.flush()
    assert [f.get().offset for f in futures] == [1, 2, 3, 4, 5]
    assert c.check().counts["reordered"] == 0


# --- retries -----------------------------------------------------------------------------


def test_a_retriable_error_is_retried_after_an_exponential_jittered_backoff() -> None:
    c, p = setup(acks="all", retry_backoff_ms=100, retry_backoff_max_ms=1000)
    c.error("leader:t/0", message="ProduceRequest", error="NOT_ENOUGH_REPLICAS", count=3)
    future = p.send("t", value=b"x")
    assert future.get(timeout=5).offset == 0
    retries = events(c, "producer.retry")
    attempts = sends(c)
    assert [e.field("error") for e in retries] == ["NOT_ENOUGH_REPLICAS"] * 3
    assert len(attempts) == 4
    gaps = [attempts[i + 1].time_ms - retries[i].time_ms for i in range(3)]
    for n, gap in enumerate(gaps):
        nominal = 100 * 2**n
        assert 0.8 * nominal <= gap <= 1.2 * nominal, (n, gap)
    assert gaps != [100, 200, 400], "the backoff is jittered"
    assert len(events(c, "broker.append")) == 1


def test_the_backoff_is_capped_by_retry_backoff_max_ms() -> None:
    c, p = setup(acks="all", retry_backoff_ms=100, retry_backoff_max_ms=150)
    c.error("leader:t/0", message="ProduceRequest", error="NOT_ENOUGH_REPLICAS", count=4)
    p.send("t", value=b"x").get(timeout=5)
    retries = events(c, "producer.retry")
    attempts = sends(c)
    gaps = [attempts[i + 1].time_ms - retries[i].time_ms for i in range(4)]
    assert all(gap <= 150 for gap in gaps), gaps
    assert all(gap >= 0.8 * 150 for gap in gaps[1:]), gaps


def test_a_non_retriable_error_fails_the_batch_at_once() -> None:
    c, p = setup(acks="all")
    c.error("leader:t/0", message="ProduceRequest", error="TOPIC_AUTHORIZATION_FAILED", count=1)
    future = p.send("t", value=b"x")
    with pytest.raises(errors.TopicAuthorizationFailedError):
        future.get(timeout=5)
    assert len(sends(c)) == 1
    assert events(c, "producer.retry") == []
    assert c.history.status == [FAIL]
    assert c.history.error == ["TopicAuthorizationFailedError"]


def test_retries_zero_fails_on_the_first_retriable_error() -> None:
    c, p = setup(acks="all", retries=0, enable_idempotence=False)
    c.error("leader:t/0", message="ProduceRequest", error="NOT_ENOUGH_REPLICAS", count=1)
    future = p.send("t", value=b"x")
    with pytest.raises(errors.NotEnoughReplicasError):
        future.get(timeout=5)
    assert len(sends(c)) == 1
    assert events(c, "producer.retry") == []
    assert c.history.status == [FAIL], "NOT_ENOUGH_REPLICAS: nothing was appended"


def test_an_error_after_append_is_retried_and_duplicates_without_idempotence() -> None:
    c, p = setup(acks="all", enable_idempotence=False)
    c.error(
        "leader:t/0", message="ProduceRequest", error="NOT_ENOUGH_REPLICAS_AFTER_APPEND", count=1
    )
    assert p.send("t", value=b"x").get(timeout=5).offset == 1
    assert len(events(c, "broker.append")) == 2
    assert c.check().counts["duplicated"] == 1


# --- timeouts --------------------------------------------------------------------------------


def test_a_lost_response_times_out_after_request_timeout_ms_and_the_batch_is_retried() -> None:
    c, p = setup(acks="all", request_timeout_ms=2000, delivery_timeout_ms=10_000)
    c.drop(**{"from": "leader:t/0"}, to="producer-0", message="ProduceResponse", count=1)
    future = p.send("t", value=b"x")
    assert future.get(timeout=10).offset == 0
    first, retry = sends(c)
    (timeout,) = events(c, "rpc.timeout")
    assert timeout.field("request") == first.field("request")
    assert timeout.time_ms == first.time_ms + 2000
    assert [e.field("error") for e in events(c, "producer.retry")] == ["REQUEST_TIMED_OUT"]
    assert retry.time_ms > timeout.time_ms
    assert retry.field("request") != first.field("request")


def test_a_request_timeout_resets_the_connection_and_retries_every_batch_on_it() -> None:
    c, p = setup(acks="all", batch_size=0, request_timeout_ms=2000, delivery_timeout_ms=10_000)
    c.drop(**{"from": "leader:t/0"}, to="producer-0", message="ProduceResponse", count=1)
    futures = [p.send("t", value=b"%d" % i) for i in range(3)]
    p.flush()
    # The lost response silences the connection (TCP): the two later ones never arrive.
    # The first request times out; closing the connection fails the other two at once.
    assert len(events(c, "rpc.timeout")) == 1
    retried = [e.field("error") for e in events(c, "producer.retry")]
    assert retried == ["REQUEST_TIMED_OUT", "NETWORK_EXCEPTION", "NETWORK_EXCEPTION"]
    assert [f.get().offset for f in futures] == [0, 1, 2]
    # After the reset the same connection carries the retries and their answers again.
    assert len(sends(c)) == 6
    assert len(events(c, "broker.duplicate")) == 3


def test_a_batch_never_sent_expires_after_delivery_timeout_as_a_definite_failure() -> None:
    c = sim.Cluster(brokers=2, seed=1)
    c.create_topic("t", partitions=1, replication_factor=1)  # Its one replica: broker-0.
    c.crash("broker-0")
    c.run_for(12_000)  # The controller fences broker-0: the partition has no leader.
    p = sim.KafkaProducer(cluster=c, acks=1, request_timeout_ms=1000, delivery_timeout_ms=3000)
    p.partitions_for("t")
    assert p.metadata.leader("t", 0) == -1
    future = p.send("t", value=b"x")
    with pytest.raises(errors.KafkaTimeoutError, match="has passed since batch creation"):
        future.get(timeout=10)
    assert sends(c) == []
    assert c.history.status == [FAIL]
    assert c.history.error == ["KafkaTimeoutError"]
    assert c.history.done_ms[0] - c.history.invoke_ms[0] == 3000


def test_a_batch_expired_while_in_flight_is_an_unknown_outcome() -> None:
    c, p = setup(acks="all", request_timeout_ms=1500, delivery_timeout_ms=3000)
    p.send("t", value=b"warm-up").get(timeout=1)
    c.partition(isolate="leader:t/0")
    future = p.send("t", value=b"x")
    with pytest.raises(errors.KafkaTimeoutError):
        future.get(timeout=10)
    assert len(sends(c)) >= 2, "sent, timed out, sent again into the partition"
    assert c.history.status == [OK, INFO]
    assert c.history.error[1] == "KafkaTimeoutError"
    assert c.history.done_ms[1] - c.history.invoke_ms[1] == 3000


def test_expiry_in_flight_is_unknown_even_when_every_earlier_answer_was_a_rejection() -> None:
    c, p = setup(acks="all", request_timeout_ms=1500, delivery_timeout_ms=1500)
    p.send("t", value=b"warm-up").get(timeout=1)
    c.error("leader:t/0", message="ProduceRequest", error="NOT_ENOUGH_REPLICAS", count=1)
    future = p.send("t", value=b"x")
    c.run_for(50)  # Rejected before append; the retry waits out its backoff.
    c.partition(isolate="leader:t/0")  # The retry goes out and is never answered.
    with pytest.raises(errors.KafkaTimeoutError, match="since batch creation"):
        future.get(timeout=10)
    assert len(sends(c)) == 3, "warm-up, rejected attempt, unanswered retry"
    assert events(c, "rpc.timeout") == [], "expired before its request timed out"
    assert c.history.status == [OK, INFO], "the retry may have been written"


def test_delivery_timeout_counts_from_batch_creation_not_from_the_last_send() -> None:
    c, p = setup(acks="all", request_timeout_ms=1000, delivery_timeout_ms=2500)
    p.send("t", value=b"warm-up").get(timeout=1)
    c.error("leader:t/0", message="ProduceRequest", error="NOT_ENOUGH_REPLICAS", count=10**6)
    start = c.world.now_ms
    future = p.send("t", value=b"x")
    with pytest.raises(errors.KafkaTimeoutError):
        future.get(timeout=10)
    assert len(events(c, "producer.retry")) >= 3
    assert c.world.now_ms >= start + 2500
    assert c.history.done_ms[1] == start + 2500
    assert c.history.status[1] == FAIL, "every attempt was rejected before append"


# --- acks=0 --------------------------------------------------------------------------------


def test_acks_zero_completes_at_once_with_offset_minus_one() -> None:
    c, p = setup(acks=0)
    future = p.send("t", value=b"x")
    c.run_for(0.5)  # Less than one network latency: no answer could have come back.
    assert future.is_done
    metadata = future.get(timeout=0)
    assert metadata.offset == -1
    (send,) = sends(c)
    assert c.history.done_ms == [send.time_ms]


def test_acks_zero_is_never_retried_so_a_rejected_record_is_lost() -> None:
    c, p = setup(acks=0)
    c.error("leader:t/0", message="ProduceRequest", error="NOT_ENOUGH_REPLICAS", count=1)
    assert p.send("t", value=b"x").get(timeout=1).offset == -1
    c.run_for(1000)
    assert len(sends(c)) == 1
    assert events(c, "producer.retry") == []
    assert c.check().counts["lost"] == 1


# --- failover ---------------------------------------------------------------------------------


def test_not_leader_refreshes_metadata_and_the_retry_goes_to_the_new_leader() -> None:
    c, p = setup(acks="all")
    p.send("t", value=b"warm-up").get(timeout=1)
    c.crash("leader:t/0")
    c.run_for(15_000)  # Fenced; broker-1 leads.
    c.restart("broker-0")
    c.run_for(5_000)  # broker-0 is back, as a follower.
    assert p.metadata.leader("t", 0) == 0, "the producer has not heard of the failover"
    updates = p.metadata.updates
    future = p.send("t", value=b"x")
    assert future.get(timeout=5).offset == 1
    first, retry = sends(c)[-2:]
    assert first.field("leader") == 0
    assert [e.field("error") for e in events(c, "producer.retry")] == ["NOT_LEADER_OR_FOLLOWER"]
    assert p.metadata.updates == updates + 1
    assert retry.field("leader") == 1
    assert retry.field("batches") == first.field("batches"), "same batch, same sequence"


def test_duplicate_sequence_number_counts_as_success_without_an_offset() -> None:
    c, p = setup(acks="all")
    p.send("t", value=b"warm-up").get(timeout=1)
    c.error("leader:t/0", message="ProduceRequest", error="DUPLICATE_SEQUENCE_NUMBER", count=1)
    metadata = p.send("t", value=b"x").get(timeout=5)
    assert metadata.offset == -1
    assert events(c, "producer.retry") == []
    assert c.history.status == [OK, OK]
    assert c.history.offset == [0, -1]
