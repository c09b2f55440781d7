"""Scenario files (TOML) -> validated, frozen objects; the contract of DESIGN.md.

A scenario is the product's public language: cluster, topics, producer
settings (kafka-python keyword names), workload, fault schedule and the
expected counts. Everything is checked here, before any simulation starts, so
a bad file fails in milliseconds with `"{file}: {key}: {reason}"` (exit code 2)
instead of a traceback or, worse, a silently different experiment.

`--set KEY=VALUE` overrides are applied to the parsed TOML before validation,
so an overridden value is checked exactly like one from the file, and its
error names the override. Kafka allows some settings that surprise users
(min.insync.replicas > replication factor, which it caps at the replication
factor); those are accepted, as Kafka accepts them, and reported in
`Scenario.warnings`.

Out of scope: resolving targets (`leader:orders/0`) to nodes, which depends on
the run; that is the nemesis' job (`sim.faults`).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sim.client.config import ProducerConfig
from sim.scenario_faults import Topology, parse_fault
from sim.scenario_overrides import apply_overrides
from sim.scenario_validate import (
    Context,
    ScenarioError,
    Table,
    check_int,
    describe,
    parse_producer,
    suggest,
)

__all__ = [
    "ClusterSpec",
    "Expectation",
    "FaultSpec",
    "Scenario",
    "ScenarioError",
    "TopicSpec",
    "WorkloadSpec",
    "load_scenario",
    "parse_scenario",
]

BROKERS_MAX = 64
PRODUCERS_MAX = 64
PARTITIONS_MAX = 1024
RECORDS_MAX = 10_000_000
TOPIC_NAME_MAX = 249  # Kafka's limit (Topic.MAX_NAME_LENGTH)
EXPECT_KEYS = (
    "sent", "acked", "failed", "unknown", "lost", "duplicated", "reordered",
    "aborted_read", "torn_txn", "recovered", "unexpected",
)  # fmt: skip
"""The result counts an `[expect]` table may constrain."""

TOP_KEYS = ("name", "description", "lesson", "cluster", "topics", "producer", "workload",
            "faults", "expect")  # fmt: skip
_NAME = re.compile(r"[a-z0-9-]+")
_TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]+")
_KEYS = re.compile(r"none|unique|cycle:([1-9][0-9]*)")
_EXPECT = re.compile(r"\s*(>=|<=|==|>|<)\s*([0-9]+)\s*")


@dataclass(frozen=True)
class ClusterSpec:
    """Broker-side settings (Kafka names in snake_case) and the network's latency."""

    brokers: int = 3
    min_insync_replicas: int = 1
    unclean_leader_election_enable: bool = False
    replica_lag_time_max_ms: float = 30000
    latency_ms: float = 1.0
    jitter_ms: float = 0.0
    broker_session_timeout_ms: float = 9000  # KRaft broker.session.timeout.ms
    broker_heartbeat_interval_ms: float = 2000  # KRaft broker.heartbeat.interval.ms
    replica_fetch_wait_max_ms: float = 500
    flush_interval_ms: float = 30000
    """How often the OS writes dirty pages back: what `lose_unflushed` can lose."""
    transaction_state_log_num_partitions: int = 50


@dataclass(frozen=True)
class TopicSpec:
    """One topic; replicas of partition p are brokers (p + i) % brokers."""

    name: str
    partitions: int = 1
    replication_factor: int = 1  # Kafka's default.replication.factor
    min_insync_replicas: int | None = None  # None: the cluster's

    def effective_min_insync(self, cluster: ClusterSpec) -> int:
        """The topic's override, else the broker default."""
        if self.min_insync_replicas is None:
            return cluster.min_insync_replicas
        return self.min_insync_replicas


@dataclass(frozen=True)
class WorkloadSpec:
    """What each of `producers` producers sends; rates are in simulated time."""

    topic: str
    producers: int = 1
    records: int = 1000  # per producer
    rate_per_s: float = 1000  # per producer
    keys: str = "none"  # "none" | "unique" | "cycle:N"
    value_bytes: int = 100
    txn_size: int | None = None  # records per transaction (transactional only)
    abort_every: int | None = None  # abort every Nth transaction
    settle_ms: float = 60000
    start_ms: tuple[float, ...] = (0.0,)
    """When producers start: one time for all, or one per producer (extension)."""
    compression_ratio: float | None = None
    """Wire size / raw size of compressed batches, overriding the codec's default
    ratio in `sim.client.accumulator.COMPRESSION_RATIOS` (extension)."""
    shared_transactional_id: bool = False
    """All producers use producer.transactional_id as is — instances of one
    application, so a later one fences the earlier (extension). Otherwise
    producer i of several uses "<id>-<i>"."""

    def start_for(self, index: int) -> float:
        return self.start_ms[index] if index < len(self.start_ms) else self.start_ms[-1]

    def transactional_id_for(self, base: str | None, index: int) -> str | None:
        if base is None or self.shared_transactional_id or self.producers == 1:
            return base
        return f"{base}-{index}"

    @property
    def key_cycle(self) -> int | None:
        """N of `cycle:N` (number of distinct keys), None for other key modes."""
        match = _KEYS.fullmatch(self.keys)
        assert match is not None, self.keys
        return int(match[1]) if match[1] else None


@dataclass(frozen=True)
class FaultSpec:
    """One scheduled fault; `params` holds every key of its kind (see FAULT_KEYS).

    `from`/`to` are tuples of targets; absent optional keys are None (or
    their default: `lose_unflushed`/`one_way` False, `error`'s `count` 1).
    """

    at_ms: float
    kind: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Expectation:
    """One `[expect]` line: `count op value`, e.g. lost > 0."""

    key: str
    op: str  # "==", ">", ">=", "<", "<="
    value: int

    def holds(self, actual: int) -> bool:
        """Whether the run's count satisfies this expectation."""
        if self.op == "==":
            return actual == self.value
        if self.op == ">":
            return actual > self.value
        if self.op == ">=":
            return actual >= self.value
        if self.op == "<":
            return actual < self.value
        assert self.op == "<=", self.op
        return actual <= self.value

    def __str__(self) -> str:
        return f"{self.key} {self.op} {self.value}"


@dataclass(frozen=True)
class Scenario:
    """A validated scenario: everything a run needs, after overrides and defaults."""

    name: str
    description: str
    lesson: str | None
    cluster: ClusterSpec
    topics: tuple[TopicSpec, ...]
    producer: ProducerConfig
    producer_raw: dict[str, Any]
    """The keywords given to `ProducerConfig.from_kwargs` (TOML forms normalised)."""
    workload: WorkloadSpec
    faults: tuple[FaultSpec, ...]  # sorted by at_ms, stable
    expect: tuple[Expectation, ...]
    source: str
    overrides: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    """Settings Kafka accepts but that change the experiment (shown, not fatal)."""

    def topic(self, name: str) -> TopicSpec:
        """The declared topic called `name` (KeyError if none: a caller bug)."""
        for spec in self.topics:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def effective_config(self) -> dict[str, Any]:
        """The effective settings as JSON-able data: the result's `config`."""
        topics = []
        for spec in self.topics:
            entry = asdict(spec)
            entry["min_insync_replicas"] = spec.effective_min_insync(self.cluster)
            topics.append(entry)
        faults = [
            {"at_ms": f.at_ms, "kind": f.kind, **{k: _jsonable(v) for k, v in f.params.items()}}
            for f in self.faults
        ]
        return {
            "cluster": asdict(self.cluster),
            "topics": topics,
            "producer": self.producer.as_dict(),
            "workload": asdict(self.workload),
            "faults": faults,
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(item) for item in value]
    return value


def load_scenario(path: str | Path, overrides: Sequence[str] = ()) -> Scenario:
    """Read and validate a scenario file; every problem is a ScenarioError."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ScenarioError(source, None, f"cannot read scenario file: {reason}") from None
    return parse_scenario(text, source, overrides)


def parse_scenario(text: str, source: str, overrides: Sequence[str] = ()) -> Scenario:
    """Validate scenario TOML `text`; `source` names it in errors."""
    assert not isinstance(overrides, str), "overrides is a sequence of KEY=VALUE strings"
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.fullmatch(r"(.*) \(at (.*)\)", str(exc), re.DOTALL)
        where, what = (match[2], match[1]) if match else (None, str(exc))
        raise ScenarioError(source, where, f"invalid TOML: {what}") from None
    ctx = Context(source)
    apply_overrides(ctx, raw, overrides, TOP_KEYS)
    return _build(ctx, raw, tuple(overrides))


def _build(ctx: Context, raw: dict[str, Any], overrides: tuple[str, ...]) -> Scenario:
    """Validate the sections in dependency order: topics need the broker count,
    the workload needs the topics and the producer, faults need all three."""
    top = Table(ctx, "", raw, TOP_KEYS)
    name = top.str("name")
    if not _NAME.fullmatch(name):
        raise top.error("name", f"must match [a-z0-9-]+, got {describe(name)}")
    description = top.str("description")
    lesson = top.str("lesson", None)
    warnings: list[str] = []
    cluster = _cluster(
        Table(ctx, "cluster", raw.get("cluster", {}), _fields(ClusterSpec)), warnings
    )
    topics = _topics(ctx, raw.get("topics"), cluster, warnings)
    producer_raw, producer = parse_producer(ctx, raw.get("producer", {}))
    warnings.extend(f"producer: {w}" for w in producer.warnings)
    workload = _workload(
        Table(ctx, "workload", top.get("workload"), _fields(WorkloadSpec)), topics, producer
    )
    topology = Topology(cluster.brokers, workload.producers, {t.name: t.partitions for t in topics})
    faults = _faults(ctx, raw.get("faults", []), topology)
    expect = _expect(Table(ctx, "expect", raw.get("expect", {}), EXPECT_KEYS))
    return Scenario(
        name=name, description=description, lesson=lesson, cluster=cluster, topics=topics,
        producer=producer, producer_raw=producer_raw, workload=workload, faults=faults,
        expect=expect, source=ctx.source, overrides=overrides, warnings=tuple(warnings),
    )  # fmt: skip


def _fields(cls: type) -> tuple[str, ...]:
    return tuple(cls.__dataclass_fields__)


def _cluster(table: Table, warnings: list[str]) -> ClusterSpec:
    d = ClusterSpec()
    spec = ClusterSpec(
        brokers=table.int("brokers", d.brokers, minimum=1, maximum=BROKERS_MAX),
        min_insync_replicas=table.int("min_insync_replicas", d.min_insync_replicas, minimum=1),
        unclean_leader_election_enable=table.bool(
            "unclean_leader_election_enable", d.unclean_leader_election_enable
        ),
        replica_lag_time_max_ms=table.number(
            "replica_lag_time_max_ms", d.replica_lag_time_max_ms, positive=True
        ),
        latency_ms=table.number("latency_ms", d.latency_ms),
        jitter_ms=table.number("jitter_ms", d.jitter_ms),
        broker_session_timeout_ms=table.number(
            "broker_session_timeout_ms", d.broker_session_timeout_ms, positive=True
        ),
        broker_heartbeat_interval_ms=table.number(
            "broker_heartbeat_interval_ms", d.broker_heartbeat_interval_ms, positive=True
        ),
        replica_fetch_wait_max_ms=table.number(
            "replica_fetch_wait_max_ms", d.replica_fetch_wait_max_ms, positive=True
        ),
        flush_interval_ms=table.number("flush_interval_ms", d.flush_interval_ms, positive=True),
        transaction_state_log_num_partitions=table.int(
            "transaction_state_log_num_partitions", d.transaction_state_log_num_partitions,
            minimum=1, maximum=PARTITIONS_MAX,
        ),
    )  # fmt: skip
    if spec.replica_fetch_wait_max_ms > spec.replica_lag_time_max_ms:  # KafkaConfig's check
        raise table.error(
            "replica_fetch_wait_max_ms",
            "replica.fetch.wait.max.ms should always be less than or equal to "
            "replica.lag.time.max.ms to prevent frequent changes in ISR",
        )
    if spec.broker_heartbeat_interval_ms >= spec.broker_session_timeout_ms:
        warnings.append(
            "cluster.broker_heartbeat_interval_ms: not below broker_session_timeout_ms; "
            "live brokers will be fenced between heartbeats"
        )
    return spec


def _topics(
    ctx: Context, value: Any, cluster: ClusterSpec, warnings: list[str]
) -> tuple[TopicSpec, ...]:
    if value is None:  # TOML has no null: the key is absent.
        raise ctx.error("topics", "required: at least one [[topics]] table")
    if not isinstance(value, list) or not value:
        raise ctx.error("topics", f"expected one or more [[topics]] tables, got {describe(value)}")
    topics: list[TopicSpec] = []
    for index, item in enumerate(value):
        table = Table(ctx, f"topics[{index}]", item, _fields(TopicSpec))
        spec = _topic(table, cluster)
        if any(t.name == spec.name for t in topics):
            raise table.error("name", f"topic '{spec.name}' is declared twice")
        min_insync = spec.effective_min_insync(cluster)
        if min_insync > spec.replication_factor:
            warnings.append(
                f"topics[{index}] '{spec.name}': min_insync_replicas={min_insync} > "
                f"replication_factor={spec.replication_factor}; Kafka allows it and caps the "
                "effective value at the replication factor (Partition.effectiveMinIsr), so "
                "acks=all waits for every replica"
            )
        topics.append(spec)
    return tuple(topics)


def _topic(table: Table, cluster: ClusterSpec) -> TopicSpec:
    name = table.str("name")
    if not _TOPIC_NAME.fullmatch(name) or name in (".", "..") or len(name) > TOPIC_NAME_MAX:
        raise table.error(
            "name", f"a topic name is 1..{TOPIC_NAME_MAX} of [a-zA-Z0-9._-], got {describe(name)}"
        )
    replication_factor = table.int("replication_factor", 1, minimum=1)
    if replication_factor > cluster.brokers:
        raise table.error(  # Kafka's InvalidReplicationFactorException text
            "replication_factor",
            f"Replication factor: {replication_factor} larger than available brokers: "
            f"{cluster.brokers}.",
        )
    return TopicSpec(
        name=name,
        partitions=table.int("partitions", 1, minimum=1, maximum=PARTITIONS_MAX),
        replication_factor=replication_factor,
        min_insync_replicas=table.int("min_insync_replicas", None, minimum=1),
    )


def _workload(
    table: Table, topics: tuple[TopicSpec, ...], producer: ProducerConfig
) -> WorkloadSpec:
    topic = table.str("topic")
    declared = [t.name for t in topics]
    if topic not in declared:
        raise table.error(
            "topic", f"no such topic '{topic}' (declared: {', '.join(declared)})"
            + suggest(topic, declared)
        )  # fmt: skip
    keys = table.str("keys", "none")
    if not _KEYS.fullmatch(keys):
        raise table.error(
            "keys", f'expected "none", "unique" or "cycle:N" (N >= 1), got {describe(keys)}'
        )
    for name in ("txn_size", "abort_every"):
        if name in table.data and producer.transactional_id is None:
            raise table.error(name, "needs a transactional producer: set producer.transactional_id")
    spec = WorkloadSpec(
        topic=topic,
        producers=table.int("producers", 1, minimum=1, maximum=PRODUCERS_MAX),
        records=table.int("records", 1000, minimum=1, maximum=RECORDS_MAX),
        rate_per_s=table.number("rate_per_s", 1000, positive=True),
        keys=keys,
        value_bytes=table.int("value_bytes", 100, minimum=0),
        txn_size=table.int("txn_size", None, minimum=1),
        abort_every=table.int("abort_every", None, minimum=1),
        settle_ms=table.number("settle_ms", 60000),
        start_ms=_start_times(table),
        shared_transactional_id=table.bool("shared_transactional_id", False),
        compression_ratio=table.number("compression_ratio", None, positive=True),
    )
    if len(spec.start_ms) not in (1, spec.producers):
        raise table.error(
            "start_ms",
            f"expected one time or {spec.producers} (one per producer), got {len(spec.start_ms)}",
        )
    if spec.abort_every is not None and spec.txn_size is None:
        raise table.error("abort_every", "needs workload.txn_size (records per transaction)")
    return spec


def _start_times(table: Table) -> tuple[float, ...]:
    value = table.get("start_ms", 0.0)
    values = value if isinstance(value, list) else [value]
    if not values or any(
        isinstance(v, bool) or not isinstance(v, int | float) or v < 0 for v in values
    ):
        raise table.error(
            "start_ms", f"expected a time >= 0 or a list of them, got {describe(value)}"
        )
    return tuple(float(v) for v in values)


def _faults(ctx: Context, value: Any, topology: Topology) -> tuple[FaultSpec, ...]:
    if not isinstance(value, list):
        raise ctx.error("faults", f"expected [[faults]] tables, got {describe(value)}")
    faults = [
        FaultSpec(*parse_fault(ctx, f"faults[{i}]", raw, topology)) for i, raw in enumerate(value)
    ]
    return tuple(sorted(faults, key=lambda fault: fault.at_ms))  # sorted() is stable


def _expect(table: Table) -> tuple[Expectation, ...]:
    expectations = []
    for key, value in table.data.items():
        path = table.path(key)
        if isinstance(value, str):
            match = _EXPECT.fullmatch(value)
            if match is None:
                raise table.error(
                    key,
                    f'expected an integer or ">N", ">=N", "<N", "<=N", "==N", got {describe(value)}',
                )
            op, number = match[1], int(match[2])
        else:
            op, number = "==", check_int(table.ctx, path, value, 0, None)
        if op == "<" and number == 0:
            raise table.error(key, "a count is never < 0; this expectation can never hold")
        expectations.append(Expectation(key, op, number))
    return tuple(expectations)
