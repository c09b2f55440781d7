"""ProducerConfig: kafka-python's keyword names and defaults, Kafka's validation.

The simulator takes the keywords kafka-python 3.0.12's `KafkaProducer` takes
(`KafkaProducer.DEFAULT_CONFIG`), plus `buffer_memory` (Java's buffer.memory,
absent from kafka-python 3.0.12) and `retry_backoff_max_ms` (Java ≥ 3.7,
KIP-580). Keywords that only matter to a real network client (SSL, SASL,
sockets, metrics) are accepted and ignored, as is `bootstrap_servers`.

Where kafka-python checks a setting, its rule and message are used:
- unknown keyword: "Unrecognized configs: {...}" (a ValueError in kafka-python,
  so `ConfigValueError` is both a ValueError and a KafkaConfigurationError);
- compression_type: "Not supported codec: X" (also a ValueError there);
- idempotence (`KafkaProducer.__init__`): a conflict (acks != all, retries = 0,
  max in flight > 5) counts only when the user supplied that keyword; it is an
  error when `enable_idempotence=True` was explicit or a `transactional_id` is
  set, and otherwise switches idempotence off with a warning;
- delivery_timeout_ms < linger_ms + request_timeout_ms is always an error
  (`RecordAccumulator.__init__`; Java raises it only when delivery.timeout.ms
  was set explicitly, and otherwise raises the timeout silently).
Where kafka-python does not check, Java's `ProducerConfig` ConfigDef ranges and
messages apply ("Invalid value -1 for configuration linger_ms: Value must be at
least 0"), spelled with kafka-python's keyword names.

Any KafkaConfigurationError is the CLI's exit code 2.
"""

from __future__ import annotations

import math
import random  # det-ok: only random.Random, seeded from the World
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sim.client.partitioner import classify_spec, spec_name
from sim.errors import KafkaConfigurationError

MAX_INT = 2147483647
RETRY_BACKOFF_EXP_BASE = 2  # CommonClientConfigs.RETRY_BACKOFF_EXP_BASE
RETRY_BACKOFF_JITTER = 0.2  # CommonClientConfigs.RETRY_BACKOFF_JITTER

DEFAULTS: dict[str, Any] = {
    "bootstrap_servers": "localhost",
    "client_id": None,
    "key_serializer": None,
    "value_serializer": None,
    "enable_idempotence": True,
    "transactional_id": None,
    "transaction_timeout_ms": 60000,
    "delivery_timeout_ms": 120000,
    "acks": -1,
    "compression_type": None,
    "retries": MAX_INT,
    "batch_size": 16384,
    "linger_ms": 0,
    "partitioner": None,
    "buffer_memory": 33554432,
    "max_block_ms": 60000,
    "max_request_size": 1048576,
    "metadata_max_age_ms": 300000,
    "retry_backoff_ms": 100,
    "retry_backoff_max_ms": 1000,
    "request_timeout_ms": 30000,
    "max_in_flight_requests_per_connection": 5,
    "reconnect_backoff_ms": 50,
    "reconnect_backoff_max_ms": 30000,
}
"""Every keyword with semantic or timing effect, at kafka-python's default.

`retries` is kafka-python's float('inf') normalised to Java's MAX_INT;
`partitioner` None stands for kafka-python's `DefaultPartitioner()`."""

IGNORED = frozenset(
    {
        "connections_max_idle_ms",
        "allow_auto_create_topics",
        "client_dns_lookup",
        "receive_message_max_bytes",
        "receive_buffer_bytes",
        "send_buffer_bytes",
        "socket_options",
        "security_protocol",
        "ssl_context",
        "ssl_check_hostname",
        "ssl_cafile",
        "ssl_certfile",
        "ssl_keyfile",
        "ssl_crlfile",
        "ssl_password",
        "ssl_ciphers",
        "api_version",
        "bootstrap_timeout_ms",
        "metric_reporters",
        "metrics_enabled",
        "metrics_num_samples",
        "metrics_sample_window_ms",
        "selector",
        "sasl_mechanism",
        "sasl_plain_username",
        "sasl_plain_password",
        "sasl_kerberos_name",
        "sasl_kerberos_service_name",
        "sasl_kerberos_domain_name",
        "sasl_oauth_token_provider",
        "proxy_url",
        "socks5_proxy",
        "kafka_client",
    }
)
"""kafka-python keywords accepted for compatibility that change nothing here."""

COMPRESSION_TYPES = (None, "gzip", "snappy", "lz4", "zstd")
"""Effective values; "none" (Java's spelling) is accepted and becomes None."""

_INTEGERS = {  # name -> minimum (Java ConfigDef `atLeast`); Java type INT/LONG.
    "batch_size": 0,
    "buffer_memory": 0,
    "max_request_size": 0,
    "max_in_flight_requests_per_connection": 1,
}
_MILLISECONDS = {  # name -> minimum, or None (transaction.timeout.ms has no validator).
    "linger_ms": 0,
    "max_block_ms": 0,
    "request_timeout_ms": 0,
    "delivery_timeout_ms": 0,
    "retry_backoff_ms": 0,
    "retry_backoff_max_ms": 0,
    "metadata_max_age_ms": 0,
    "reconnect_backoff_ms": 0,
    "reconnect_backoff_max_ms": 0,
    "transaction_timeout_ms": None,
}


class ConfigValueError(KafkaConfigurationError, ValueError):
    """A bad setting that kafka-python reports as ValueError (unknown keyword, codec)."""


@dataclass(frozen=True)
class ProducerConfig:
    """The effective producer settings after defaults and Kafka's adjustments."""

    acks: int = -1
    retries: int = MAX_INT
    enable_idempotence: bool = True
    max_in_flight_requests_per_connection: int = 5
    batch_size: int = 16384
    linger_ms: float = 0
    buffer_memory: int = 33554432
    max_block_ms: float = 60000
    max_request_size: int = 1048576
    request_timeout_ms: float = 30000
    delivery_timeout_ms: float = 120000
    retry_backoff_ms: float = 100
    retry_backoff_max_ms: float = 1000
    metadata_max_age_ms: float = 300000
    reconnect_backoff_ms: float = 50
    reconnect_backoff_max_ms: float = 30000
    compression_type: str | None = None
    transactional_id: str | None = None
    transaction_timeout_ms: float = 60000
    partitioner: Any = None
    key_serializer: Any = None
    value_serializer: Any = None
    client_id: str | None = None
    bootstrap_servers: Any = "localhost"
    explicit: frozenset[str] = field(default_factory=frozenset)
    """The keywords the user supplied (kafka-python validates these strictly)."""
    warnings: tuple[str, ...] = ()
    """What Kafka would log at WARN/INFO when it adjusted or doubted a setting."""

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> ProducerConfig:
        """Validate kafka-python keywords and return the effective config.

        Raises:
            KafkaConfigurationError: unknown keyword or a Kafka-invalid value,
                with kafka-python's or Kafka's reason.
        """
        unknown = {k: v for k, v in kwargs.items() if k not in DEFAULTS and k not in IGNORED}
        if unknown:
            raise ConfigValueError(f"Unrecognized configs: {unknown}")
        values = dict(DEFAULTS)
        values.update({k: v for k, v in kwargs.items() if k in DEFAULTS})
        explicit = frozenset(kwargs)
        warnings: list[str] = []
        _validate_values(values)
        _check_idempotence(values, explicit, warnings)
        _check_delivery_timeout(values)
        _check_retry_backoff(values, warnings)
        return cls(explicit=explicit, warnings=tuple(warnings), **values)

    def as_dict(self) -> dict[str, Any]:
        """The effective settings as plain JSON-able values (for results and digests).

        Serializers and bootstrap servers are left out; a custom partitioner is
        named by its qualified name, never its repr (which holds an address).
        """
        out: dict[str, Any] = {}
        for name in DEFAULTS:
            if name in ("bootstrap_servers", "key_serializer", "value_serializer"):
                continue
            value = getattr(self, name)
            out[name] = spec_name(value) if name == "partitioner" else value
        return out


def _validate_values(values: dict[str, Any]) -> None:
    """Check and normalise each setting on its own, in place (ConfigDef's job)."""
    values["acks"] = _parse_acks(values["acks"])
    values["retries"] = _parse_retries(values["retries"])
    for name, minimum in _INTEGERS.items():
        _require_number(name, values[name], minimum, integer=True)
    for name, minimum_ms in _MILLISECONDS.items():
        _require_number(name, values[name], minimum_ms, integer=False)
    _require_bool("enable_idempotence", values["enable_idempotence"])
    _require_optional_str("transactional_id", values["transactional_id"], non_empty=True)
    _require_optional_str("client_id", values["client_id"], non_empty=False)
    values["compression_type"] = _parse_compression(values["compression_type"])
    for name in ("key_serializer", "value_serializer"):
        _require_serializer(name, values[name])
    classify_spec(values["partitioner"])  # Raises KafkaConfigurationError with the reason.


def _invalid(name: str, value: Any, reason: str) -> KafkaConfigurationError:
    """Java's `ConfigException(name, value, message)` text, with kafka-python's names."""
    return KafkaConfigurationError(f"Invalid value {value!r} for configuration {name}: {reason}")


def _parse_acks(value: Any) -> int:
    if value == "all" or (value in (-1, 0, 1) and type(value) is int):
        return -1 if value == "all" else int(value)
    raise _invalid("acks", value, "String must be one of: all, -1, 0, 1")


def _parse_retries(value: Any) -> int:
    """kafka-python's default is float('inf'); Java's is MAX_INT, in [0, MAX_INT]."""
    if isinstance(value, float) and math.isinf(value) and value > 0:
        return MAX_INT
    if type(value) is not int:
        raise _invalid("retries", value, _type_reason("a 32-bit integer", value))
    if value < 0:
        raise _invalid("retries", value, "Value must be at least 0")
    if value > MAX_INT:
        raise _invalid("retries", value, f"Value must be no more than {MAX_INT}")
    return value


def _type_reason(expected: str, value: Any) -> str:
    return f"Expected value to be {expected}, but it was a {type(value).__name__}"


def _require_number(name: str, value: Any, minimum: float | None, *, integer: bool) -> None:
    if integer and type(value) is not int:
        raise _invalid(name, value, _type_reason("an integer", value))
    if type(value) not in (int, float):
        raise _invalid(name, value, _type_reason("a number", value))
    if not math.isfinite(value):
        raise _invalid(name, value, "Value must be a finite number")
    if minimum is not None and value < minimum:
        raise _invalid(name, value, f"Value must be at least {minimum}")


def _require_bool(name: str, value: Any) -> None:
    if type(value) is not bool:
        raise _invalid(name, value, "Expected value to be either true or false")


def _require_optional_str(name: str, value: Any, *, non_empty: bool) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise _invalid(name, value, _type_reason("a string", value))
    if non_empty and not value:  # Java's NonEmptyString; kafka-python treats "" as None.
        raise _invalid(name, value, "String may not be empty")


def _parse_compression(value: Any) -> str | None:
    if value == "none":
        return None
    if value not in COMPRESSION_TYPES:
        raise ConfigValueError(f"Not supported codec: {value}")  # kafka-python's message.
    return value


def _require_serializer(name: str, value: Any) -> None:
    if value is None or callable(value) or callable(getattr(value, "serialize", None)):
        return
    raise _invalid(name, value, "expected None, a callable or a Serializer")


def _check_idempotence(
    values: dict[str, Any], explicit: frozenset[str], warnings: list[str]
) -> None:
    """kafka-python 3.x's rule (`KafkaProducer.__init__`), with its messages.

    Only keywords the user supplied can conflict. A transactional_id implies
    idempotence and makes the check strict, as an explicit True does.
    """
    user_set_idempotence = "enable_idempotence" in explicit
    if user_set_idempotence and not values["enable_idempotence"] and values["transactional_id"]:
        raise KafkaConfigurationError("Cannot set transactional_id without enable_idempotence.")
    if values["transactional_id"]:
        values["enable_idempotence"] = True
        user_set_idempotence = True
    if not values["enable_idempotence"]:
        return
    conflicts: list[tuple[str, Any]] = []
    if "acks" in explicit and values["acks"] != -1:
        conflicts.append(("acks", values["acks"]))
    if "retries" in explicit and values["retries"] == 0:
        conflicts.append(("retries", 0))
    in_flight = values["max_in_flight_requests_per_connection"]
    if "max_in_flight_requests_per_connection" in explicit and in_flight > 5:
        conflicts.append(("max_in_flight_requests_per_connection", in_flight))
    if not conflicts:
        return
    conflict_text = ", ".join(f"{name}={value!r}" for name, value in conflicts)
    if user_set_idempotence:
        raise KafkaConfigurationError(
            f"enable_idempotence=True is incompatible with user-provided {conflict_text}"
        )
    values["enable_idempotence"] = False
    warnings.append(
        "Idempotence will be disabled because user-provided config conflicts with"
        f" idempotent defaults: {conflict_text}"
    )


def _check_delivery_timeout(values: dict[str, Any]) -> None:
    """kafka-python always raises (`RecordAccumulator.__init__`); equality is allowed."""
    if values["delivery_timeout_ms"] < values["linger_ms"] + values["request_timeout_ms"]:
        raise KafkaConfigurationError(
            "Must set delivery_timeout_ms higher than linger_ms + request_timeout_ms"
        )


def _check_retry_backoff(values: dict[str, Any], warnings: list[str]) -> None:
    """Java's `CommonClientConfigs.warnDisablingExponentialBackoff`."""
    base, cap = values["retry_backoff_ms"], values["retry_backoff_max_ms"]
    if base > cap:
        warnings.append(
            f"Configuration 'retry_backoff_ms' with value '{base}' is greater than configuration"
            f" 'retry_backoff_max_ms' with value '{cap}'. A static backoff with value '{cap}'"
            " will be applied."
        )


def backoff_ms(config: ProducerConfig, attempts: int, rng: random.Random) -> float:
    """How long a batch waits before retry number `attempts` (Java's ExponentialBackoff).

    `attempts` is the batch's attempt count so far (1 before its first retry);
    Java calls `retryBackoff.backoff(batch.attempts() - 1)` in
    `RecordAccumulator.shouldBackoff`. The exponent is capped where the term
    reaches retry_backoff_max_ms, then jitter U(0.8, 1.2) applies and the result
    is truncated to whole ms and capped, so late retries wait 0.8-1.0 × max.
    With retry_backoff_ms >= retry_backoff_max_ms the wait is static, no jitter
    (and no draw from `rng`).
    """
    assert attempts >= 1, attempts
    cap = config.retry_backoff_max_ms
    initial = min(cap, config.retry_backoff_ms)
    if cap <= initial:  # Java: expMax == 0.
        return float(initial)
    exp_max = math.log(cap / max(initial, 1)) / math.log(RETRY_BACKOFF_EXP_BASE)
    term = initial * RETRY_BACKOFF_EXP_BASE ** min(attempts - 1, exp_max)
    factor = rng.uniform(1 - RETRY_BACKOFF_JITTER, 1 + RETRY_BACKOFF_JITTER)
    wait = float(min(math.floor(factor * term), cap))
    assert 0 <= wait <= cap, (wait, cap)
    return wait


def effective(config: ProducerConfig | Mapping[str, Any] | None) -> ProducerConfig:
    """Accept a ready config, a mapping of keywords, or None (all defaults)."""
    if isinstance(config, ProducerConfig):
        return config
    return ProducerConfig.from_kwargs(**dict(config or {}))
