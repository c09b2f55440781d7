"""ProducerConfig: kafka-python's keyword names and defaults, Kafka's validation.

The simulator takes exactly the keywords kafka-python's `KafkaProducer`
takes (plus `buffer_memory` and `retry_backoff_max_ms`, which the Java client
and the article's kafka3 code use). Values are validated the way Kafka
validates them; an invalid combination raises `KafkaConfigurationError` with
Kafka's reason, which the CLI turns into exit code 2.

Idempotence follows kafka-python 3.x (`KafkaProducer.__init__`): when the
user *explicitly* enables it, a conflicting setting (acks != all, retries = 0,
max in flight > 5) is an error; when it is left at its default, it is
switched off with a warning instead (`warnings`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sim.errors import KafkaConfigurationError

MAX_INT = 2147483647

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
"""Every keyword with semantic or timing effect, at kafka-python's default."""

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
    """The keywords the user supplied (explicit settings are validated strictly)."""
    warnings: tuple[str, ...] = ()
    """What Kafka would log at WARN/INFO when it adjusted a setting."""

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> ProducerConfig:
        """Validate kafka-python keywords and return the effective config.

        Raises:
            KafkaConfigurationError: unknown keyword or a Kafka-invalid value,
                with Kafka's reason.
        """
        unknown = sorted(set(kwargs) - set(DEFAULTS) - IGNORED)
        if unknown:
            raise KafkaConfigurationError(f"Unrecognized configs: {unknown}")
        values = dict(DEFAULTS)
        values.update({k: v for k, v in kwargs.items() if k in DEFAULTS})
        explicit = frozenset(k for k in kwargs if k in DEFAULTS)
        warnings: list[str] = []
        values["acks"] = _parse_acks(values["acks"])
        values["retries"] = _parse_retries(values["retries"])
        for name in (
            "batch_size",
            "linger_ms",
            "buffer_memory",
            "max_block_ms",
            "max_request_size",
            "request_timeout_ms",
            "delivery_timeout_ms",
            "retry_backoff_ms",
            "retry_backoff_max_ms",
            "transaction_timeout_ms",
        ):
            _require_number(name, values[name], minimum=0)
        _require_number(
            "max_in_flight_requests_per_connection",
            values["max_in_flight_requests_per_connection"],
            minimum=1,
            integer=True,
        )
        if values["compression_type"] not in COMPRESSION_TYPES:
            raise KafkaConfigurationError(
                f"Invalid value {values['compression_type']!r} for configuration "
                f"compression_type: String must be one of: none, gzip, snappy, lz4, zstd"
            )
        _check_idempotence(values, explicit, warnings)
        _check_delivery_timeout(values)
        values.pop("bootstrap_servers")
        return cls(
            bootstrap_servers=kwargs.get("bootstrap_servers", "localhost"),
            explicit=explicit,
            warnings=tuple(warnings),
            **values,
        )

    def as_dict(self) -> dict[str, Any]:
        """The effective settings as plain JSON-able values (for results)."""
        out: dict[str, Any] = {}
        for name in DEFAULTS:
            if name in ("bootstrap_servers", "key_serializer", "value_serializer"):
                continue
            value = getattr(self, name)
            if name == "partitioner":
                value = value if value is None or isinstance(value, str) else repr(value)
            out[name] = value
        return out


def _parse_acks(value: Any) -> int:
    if value == "all" or value == -1:
        return -1
    if value in (0, 1) and not isinstance(value, bool):
        return int(value)
    raise KafkaConfigurationError(
        f"Invalid value {value!r} for configuration acks: String must be one of: all, -1, 0, 1"
    )


def _parse_retries(value: Any) -> int:
    if isinstance(value, float) and math.isinf(value) and value > 0:
        return MAX_INT
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INT:
        raise KafkaConfigurationError(
            f"Invalid value {value!r} for configuration retries: Value must be in [0, {MAX_INT}]"
        )
    return value


def _require_number(name: str, value: Any, *, minimum: float, integer: bool = False) -> None:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value < minimum:
        raise KafkaConfigurationError(
            f"Invalid value {value!r} for configuration {name}: Value must be at least {minimum}"
        )


def _check_idempotence(values: dict[str, Any], explicit: frozenset[str], warnings: list[str]) -> None:
    """kafka-python 3.x's rule: strict when idempotence (or a txn id) is explicit."""
    if not values["enable_idempotence"]:
        if values["transactional_id"] is not None:
            raise KafkaConfigurationError(
                "Cannot set a transactional_id without also enabling idempotence."
            )
        return
    strict = "enable_idempotence" in explicit or values["transactional_id"] is not None
    conflicts: list[str] = []
    if values["max_in_flight_requests_per_connection"] > 5:
        conflicts.append(
            "Must set max_in_flight_requests_per_connection to at most 5 to use the "
            "idempotent producer."
        )
    if values["retries"] == 0:
        conflicts.append("Must set retries to non-zero when using the idempotent producer.")
    if values["acks"] != -1:
        conflicts.append("Must set acks to all in order to use the idempotent producer.")
    if not conflicts:
        return
    if strict:
        raise KafkaConfigurationError(
            conflicts[0]
            + " Otherwise we cannot guarantee idempotence."
        )
    values["enable_idempotence"] = False
    warnings.append("Idempotence disabled: " + " ".join(conflicts))


def _check_delivery_timeout(values: dict[str, Any]) -> None:
    """delivery.timeout.ms >= linger.ms + request.timeout.ms (KafkaProducer)."""
    floor = values["linger_ms"] + values["request_timeout_ms"]
    if values["delivery_timeout_ms"] < floor:
        raise KafkaConfigurationError(
            "delivery_timeout_ms should be equal to or larger than linger_ms + request_timeout_ms"
        )


def effective(config: ProducerConfig | Mapping[str, Any] | None) -> ProducerConfig:
    """Accept a ready config, a mapping of keywords, or None (all defaults)."""
    if isinstance(config, ProducerConfig):
        return config
    return ProducerConfig.from_kwargs(**dict(config or {}))
