"""ProducerConfig: kafka-python's keywords and checks, Java's ranges, ExponentialBackoff."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from typing import Any

import pytest
from kafka import KafkaProducer
from kafka.partitioner import DefaultPartitioner as KpDefaultPartitioner
from kafka.partitioner import Partitioner as KpPartitioner

from sim.client.config import (
    DEFAULTS,
    IGNORED,
    MAX_INT,
    ConfigValueError,
    ProducerConfig,
    backoff_ms,
    effective,
)
from sim.errors import KafkaConfigurationError

SIM_ONLY = {"buffer_memory", "retry_backoff_max_ms"}


def make(**kwargs: Any) -> ProducerConfig:
    return ProducerConfig.from_kwargs(**kwargs)


def reason(**kwargs: Any) -> str:
    """The message of the KafkaConfigurationError these keywords raise."""
    with pytest.raises(KafkaConfigurationError) as info:
        make(**kwargs)
    return str(info.value.args[0])


def kafka_python_outcome(**kwargs: Any) -> tuple[Any, ...]:
    """What kafka-python 3.0.12's KafkaProducer does with these keywords, offline.

    `api_version` skips the bootstrap, so nothing connects; the producer is closed
    at once. Returns ("error", message) or ("ok", enable_idempotence, acks).
    """
    try:
        producer = KafkaProducer(bootstrap_servers="127.0.0.1:1", api_version=(2, 5), **kwargs)
    except Exception as error:  # kafka-python's KafkaConfigurationError or ValueError.
        return ("error", str(error.args[0]))
    try:
        return ("ok", producer.config["enable_idempotence"], producer.config["acks"])
    finally:
        producer.close(timeout=0)


def sim_outcome(**kwargs: Any) -> tuple[Any, ...]:
    try:
        config = make(**kwargs)
    except KafkaConfigurationError as error:
        return ("error", str(error.args[0]))
    return ("ok", config.enable_idempotence, config.acks)


# --- Keywords and defaults ------------------------------------------------------


def test_every_kafka_python_keyword_is_accepted_and_nothing_else_is_added() -> None:
    kafka_python = set(KafkaProducer.DEFAULT_CONFIG)
    ours = set(DEFAULTS) | IGNORED
    assert ours - kafka_python == SIM_ONLY
    assert kafka_python - ours == set()
    assert set(DEFAULTS) & IGNORED == set()


def test_defaults_are_kafka_python_defaults() -> None:
    config = make()
    for name, value in KafkaProducer.DEFAULT_CONFIG.items():
        if name not in DEFAULTS or name in ("retries", "partitioner"):
            continue
        assert getattr(config, name) == value, name
    assert KafkaProducer.DEFAULT_CONFIG["retries"] == float("inf")
    assert config.retries == MAX_INT
    assert config.partitioner is None  # Stands for kafka-python's DefaultPartitioner().
    assert (config.buffer_memory, config.retry_backoff_max_ms) == (33554432, 1000)
    assert config.warnings == ()
    assert config.explicit == frozenset()


def test_unknown_keyword_raises_like_kafka_python() -> None:
    with pytest.raises(ConfigValueError) as info:
        make(acks=1, lingerms=5)
    assert isinstance(info.value, ValueError)  # kafka-python raises ValueError...
    assert isinstance(info.value, KafkaConfigurationError)  # ...the CLI wants exit 2.
    assert info.value.args[0] == "Unrecognized configs: {'lingerms': 5}"
    assert kafka_python_outcome(lingerms=5) == ("error", "Unrecognized configs: {'lingerms': 5}")


def test_network_keywords_and_bootstrap_servers_are_accepted_and_ignored() -> None:
    config = make(bootstrap_servers=["b1:9092", "b2:9092"], security_protocol="SSL")
    assert config.explicit == frozenset({"bootstrap_servers", "security_protocol"})
    assert "bootstrap_servers" not in config.as_dict()
    assert "security_protocol" not in config.as_dict()


# --- One setting at a time ------------------------------------------------------


@pytest.mark.parametrize(("given", "expected"), [("all", -1), (-1, -1), (0, 0), (1, 1)])
def test_acks_normalised_to_int(given: Any, expected: int) -> None:
    assert make(acks=given, enable_idempotence=False).acks == expected


@pytest.mark.parametrize("bad", [2, -2, "1", "ALL", True, None, 1.0])
def test_acks_outside_all_0_1_minus1_rejected(bad: Any) -> None:
    assert reason(acks=bad) == (
        f"Invalid value {bad!r} for configuration acks: String must be one of: all, -1, 0, 1"
    )


def test_retries_infinity_becomes_max_int_and_range_is_javas() -> None:
    assert make(retries=float("inf")).retries == MAX_INT
    assert make(retries=3).retries == 3
    assert (
        reason(retries=-1) == "Invalid value -1 for configuration retries: Value must be at least 0"
    )
    assert reason(retries=MAX_INT + 1) == (
        f"Invalid value {MAX_INT + 1} for configuration retries: Value must be no more than {MAX_INT}"
    )
    assert reason(retries=1.5) == (
        "Invalid value 1.5 for configuration retries: "
        "Expected value to be a 32-bit integer, but it was a float"
    )


@pytest.mark.parametrize(
    "name",
    [
        "batch_size",
        "buffer_memory",
        "max_request_size",
        "linger_ms",
        "max_block_ms",
        "request_timeout_ms",
        "delivery_timeout_ms",
        "retry_backoff_ms",
        "retry_backoff_max_ms",
        "metadata_max_age_ms",
        "reconnect_backoff_ms",
        "reconnect_backoff_max_ms",
    ],
)
def test_negative_sizes_and_times_rejected_with_javas_reason(name: str) -> None:
    assert (
        reason(**{name: -1})
        == f"Invalid value -1 for configuration {name}: Value must be at least 0"
    )


def test_max_in_flight_at_least_one() -> None:
    assert reason(max_in_flight_requests_per_connection=0) == (
        "Invalid value 0 for configuration max_in_flight_requests_per_connection: "
        "Value must be at least 1"
    )


def test_sizes_must_be_integers_and_times_finite_numbers() -> None:
    assert reason(batch_size=1.5) == (
        "Invalid value 1.5 for configuration batch_size: "
        "Expected value to be an integer, but it was a float"
    )
    assert reason(linger_ms="5") == (
        "Invalid value '5' for configuration linger_ms: "
        "Expected value to be a number, but it was a str"
    )
    assert reason(linger_ms=True).endswith("Expected value to be a number, but it was a bool")
    assert reason(linger_ms=math.nan) == (
        "Invalid value nan for configuration linger_ms: Value must be a finite number"
    )
    assert make(linger_ms=0.5).linger_ms == 0.5  # Simulated time is float ms.


def test_transaction_timeout_has_no_client_side_range() -> None:
    """Java defines transaction.timeout.ms without a validator; the broker rejects it."""
    assert make(transaction_timeout_ms=0).transaction_timeout_ms == 0


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd", None])
def test_compression_types(codec: str | None) -> None:
    assert make(compression_type=codec).compression_type == codec


def test_compression_none_spelled_like_java_is_none() -> None:
    assert make(compression_type="none").compression_type is None


def test_unknown_codec_rejected_with_kafka_pythons_reason() -> None:
    assert reason(compression_type="brotli") == "Not supported codec: brotli"
    with pytest.raises(ValueError):
        make(compression_type="brotli")
    assert kafka_python_outcome(compression_type="brotli") == (
        "error",
        "Not supported codec: brotli",
    )


def test_enable_idempotence_must_be_bool() -> None:
    assert reason(enable_idempotence="yes") == (
        "Invalid value 'yes' for configuration enable_idempotence: "
        "Expected value to be either true or false"
    )


def test_transactional_id_must_be_a_non_empty_string() -> None:
    assert reason(transactional_id="") == (
        "Invalid value '' for configuration transactional_id: String may not be empty"
    )
    assert reason(transactional_id=7) == (
        "Invalid value 7 for configuration transactional_id: "
        "Expected value to be a string, but it was a int"
    )


def test_serializers_must_be_callables_or_serializers() -> None:
    class Upper:
        def serialize(self, topic: str, headers: Any, data: str) -> bytes:
            return data.upper().encode()

    assert make(value_serializer=str.encode, key_serializer=Upper()).key_serializer is not None
    assert reason(value_serializer="utf-8").endswith("expected None, a callable or a Serializer")


# --- Idempotence: kafka-python 3.x's rule ----------------------------------------

IDEMPOTENCE_CASES = [
    {},
    {"acks": 1},
    {"acks": 0},
    {"acks": "all"},
    {"retries": 0},
    {"max_in_flight_requests_per_connection": 6},
    {"max_in_flight_requests_per_connection": 5},
    {"acks": 1, "retries": 0, "max_in_flight_requests_per_connection": 6},
    {"enable_idempotence": True},
    {"enable_idempotence": True, "acks": 1},
    {"enable_idempotence": True, "acks": "all"},
    {"enable_idempotence": True, "retries": 0},
    {"enable_idempotence": True, "max_in_flight_requests_per_connection": 6},
    {"enable_idempotence": True, "acks": 0, "retries": 0},
    {"enable_idempotence": False, "acks": 1, "max_in_flight_requests_per_connection": 6},
    {"transactional_id": "tx-1"},
    {"transactional_id": "tx-1", "acks": 1},
    {"transactional_id": "tx-1", "max_in_flight_requests_per_connection": 6},
    {"transactional_id": "tx-1", "enable_idempotence": True},
    {"transactional_id": "tx-1", "enable_idempotence": False},
]


@pytest.mark.parametrize("kwargs", IDEMPOTENCE_CASES, ids=[repr(c) for c in IDEMPOTENCE_CASES])
def test_idempotence_outcome_and_message_equal_kafka_pythons(kwargs: dict[str, Any]) -> None:
    assert sim_outcome(**kwargs) == kafka_python_outcome(**kwargs)


def test_explicit_idempotence_with_acks_1_is_an_error() -> None:
    assert reason(enable_idempotence=True, acks=1) == (
        "enable_idempotence=True is incompatible with user-provided acks=1"
    )


def test_explicit_idempotence_lists_every_conflict_in_kafka_pythons_order() -> None:
    assert reason(
        enable_idempotence=True, max_in_flight_requests_per_connection=6, retries=0, acks=0
    ) == (
        "enable_idempotence=True is incompatible with user-provided "
        "acks=0, retries=0, max_in_flight_requests_per_connection=6"
    )


def test_default_idempotence_with_conflict_is_disabled_with_a_warning() -> None:
    config = make(acks=1, max_in_flight_requests_per_connection=6)
    assert config.enable_idempotence is False
    assert config.warnings == (
        "Idempotence will be disabled because user-provided config conflicts with"
        " idempotent defaults: acks=1, max_in_flight_requests_per_connection=6",
    )


def test_transactional_id_makes_conflicts_strict() -> None:
    assert reason(transactional_id="tx-1", retries=0) == (
        "enable_idempotence=True is incompatible with user-provided retries=0"
    )


def test_transactional_id_with_idempotence_explicitly_off_is_an_error() -> None:
    assert reason(transactional_id="tx-1", enable_idempotence=False) == (
        "Cannot set transactional_id without enable_idempotence."
    )


def test_explicitly_disabled_idempotence_allows_anything() -> None:
    config = make(
        enable_idempotence=False, acks=0, retries=0, max_in_flight_requests_per_connection=9
    )
    assert (config.enable_idempotence, config.warnings) == (False, ())


# --- Cross-setting checks -------------------------------------------------------


def test_delivery_timeout_below_linger_plus_request_timeout_always_raises() -> None:
    message = "Must set delivery_timeout_ms higher than linger_ms + request_timeout_ms"
    assert reason(delivery_timeout_ms=30004, linger_ms=5) == message
    assert reason(request_timeout_ms=200000) == message  # delivery_timeout_ms left at default.
    assert kafka_python_outcome(request_timeout_ms=200000) == ("error", message)
    assert (
        make(delivery_timeout_ms=30005, linger_ms=5).delivery_timeout_ms == 30005
    )  # Equal is fine.


def test_retry_backoff_above_its_max_warns_like_java() -> None:
    config = make(retry_backoff_ms=2000)
    assert config.warnings == (
        "Configuration 'retry_backoff_ms' with value '2000' is greater than configuration"
        " 'retry_backoff_max_ms' with value '1000'. A static backoff with value '1000'"
        " will be applied.",
    )


# --- Partitioner setting ----------------------------------------------------------


class HelloPartitioner(KpPartitioner):
    def partition(self, topic, key, serialized_key, value, serialized_value, cluster):  # type: ignore[no-untyped-def]
        return 0 if serialized_value and b"hello" in serialized_value else 1


def legacy_partitioner(
    key_bytes: bytes | None, all_partitions: list[int], available: list[int]
) -> int:
    return all_partitions[-1]


@pytest.mark.parametrize(
    ("spec", "name"),
    [
        (None, "default"),
        ("default", "default"),
        ("sticky", "sticky"),
        ("random", "random"),
        ("murmur2", "murmur2"),
        (HelloPartitioner(), f"custom:{__name__}.HelloPartitioner"),
        (legacy_partitioner, f"custom:{__name__}.legacy_partitioner"),
        (KpDefaultPartitioner(), "default"),
    ],
)
def test_partitioner_settings_accepted_and_named_stably(spec: Any, name: str) -> None:
    config = make(partitioner=spec)
    assert config.partitioner is spec
    assert config.as_dict()["partitioner"] == name


@pytest.mark.parametrize("bad", ["roundrobin", 5, lambda key, partitions: 0])
def test_bad_partitioner_rejected(bad: Any) -> None:
    assert reason(partitioner=bad).startswith(
        f"Invalid value {bad!r} for configuration partitioner: expected None, one of 'default'"
    )


# --- Results and helpers ------------------------------------------------------------


def test_as_dict_is_json_and_holds_no_addresses() -> None:
    config = make(acks="all", partitioner=HelloPartitioner(), key_serializer=str.encode)
    text = json.dumps(config.as_dict(), sort_keys=True)
    assert "0x" not in text
    assert json.loads(text)["acks"] == -1
    assert json.loads(text)["retries"] == MAX_INT


def test_effective_accepts_config_mapping_or_none() -> None:
    config = make(acks=1)
    assert effective(config) is config
    assert effective({"acks": 1}) == config
    assert effective(None) == make()
    with pytest.raises(KafkaConfigurationError):
        effective({"acks": 3})


def test_config_is_frozen() -> None:
    with pytest.raises(AttributeError):
        make().acks = 1  # type: ignore[misc]


# --- Retry backoff (Java's ExponentialBackoff) -------------------------------------


class FixedRandom(random.Random):
    """An rng whose uniform draws sit at one point of their range."""

    def __init__(self, point: float) -> None:
        super().__init__(0)
        self.point = point
        self.draws = 0

    def random(self) -> float:
        self.draws += 1
        return self.point


@pytest.fixture
def global_random_untouched() -> Iterator[None]:
    state = random.getstate()
    yield
    assert random.getstate() == state, "backoff_ms must draw only from the rng passed in"


@pytest.mark.parametrize(
    ("attempts", "low", "middle", "top"),
    [
        (1, 80, 100, 119),
        (2, 160, 200, 239),
        (3, 320, 400, 479),
        (4, 640, 800, 959),
        (5, 800, 1000, 1000),  # 100 * 2^4 passes the max: the exponent is capped at log2(10).
        (50, 800, 1000, 1000),
    ],
)
def test_backoff_grows_by_two_with_twenty_percent_jitter_up_to_max(
    attempts: int, low: float, middle: float, top: float, global_random_untouched: None
) -> None:
    config = make()
    assert backoff_ms(config, attempts, FixedRandom(0.0)) == low
    assert backoff_ms(config, attempts, FixedRandom(0.5)) == middle
    assert backoff_ms(config, attempts, FixedRandom(0.999999)) == top  # Truncated like Java's long.
    rng = random.Random(attempts)
    for _ in range(200):
        assert low <= backoff_ms(config, attempts, rng) <= top


def test_backoff_is_deterministic_per_seed() -> None:
    config = make(retry_backoff_ms=50, retry_backoff_max_ms=5000)
    first = [backoff_ms(config, n, random.Random(42)) for n in range(1, 12)]
    again = [backoff_ms(config, n, random.Random(42)) for n in range(1, 12)]
    other = [backoff_ms(config, n, random.Random(43)) for n in range(1, 12)]
    assert first == again
    assert first != other


@pytest.mark.parametrize(("base", "cap"), [(1000, 1000), (2000, 1000), (0, 0)])
def test_backoff_static_without_jitter_when_base_reaches_max(base: int, cap: int) -> None:
    config = make(retry_backoff_ms=base, retry_backoff_max_ms=cap)
    rng = FixedRandom(0.3)
    assert [backoff_ms(config, n, rng) for n in (1, 2, 10)] == [min(base, cap)] * 3
    assert rng.draws == 0


def test_backoff_zero_base_stays_zero() -> None:
    config = make(retry_backoff_ms=0)
    assert backoff_ms(config, 7, random.Random(1)) == 0


def test_backoff_counts_attempts_from_one() -> None:
    with pytest.raises(AssertionError):
        backoff_ms(make(), 0, random.Random(1))
