"""Partition choice for records sent without an explicit partition.

Kafka concepts:
- **murmur2**: Java's `Utils.murmur2`, the hash every Kafka client uses for keyed
  records; a keyed record goes to `toPositive(murmur2(key)) % partitions`, over
  *all* partitions (available or not), so a key always maps to one partition.
- **No key**: kafka-python's `DefaultPartitioner` picks a random *available*
  partition afresh per record; Java's built-in partitioner (KIP-480/794) is
  *sticky*: one partition per topic until a batch is completed, then another.
- **Custom partitioners**: a kafka-python 3.x `Partitioner`
  (`partition(topic, key, serialized_key, value, serialized_value, cluster)`,
  optional `on_new_batch(topic, cluster, prev_partition)`), the object form
  kafka-python 3.0.12 still calls as `partition(topic, serialized_key, cluster)`,
  or a kafka-python 2.x / kafka3 callable
  `partitioner(key_bytes, all_partitions, available_partitions)`.

Determinism: every random choice comes from the `rng` given to `make_partitioner`
(a world stream), over a *sorted* list of partitions, never over a set.

Left out: Java's adaptive partitioning (weighting by queue length) and the
"switch after batch.size bytes" rule of KIP-794; the producer decides when a
batch is new and calls `on_new_batch`. `partitioner.ignore.keys` is not modelled.
"""

from __future__ import annotations

import inspect
import operator
import random  # det-ok: only random.Random, seeded from the World
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from sim.errors import KafkaConfigurationError

_SEED = 0x9747B28C
_M = 0x5BD1E995
_R = 24
_MASK32 = 0xFFFFFFFF

BUILTIN_NAMES = ("default", "murmur2", "random", "sticky")
"""String values the `partitioner` keyword accepts."""

_KAFKA_PYTHON_BUILTINS = {
    ("kafka.partitioner.default", "DefaultPartitioner"): "default",
    ("kafka.partitioner.sticky", "StickyPartitioner"): "sticky",
}
"""kafka-python's own partitioner classes, replaced by seeded equivalents: theirs use
the module `random`, which would make runs unrepeatable."""


def murmur2(data: bytes | bytearray | memoryview) -> int:
    """Kafka's `Utils.murmur2`: the signed 32-bit hash Java computes for these bytes.

    kafka-python's `murmur2` returns the same bits as an unsigned int; Java's is
    signed, and test vectors and logs from Java show the signed value.
    """
    buf = bytes(data)
    length = len(buf)
    h = (_SEED ^ length) & _MASK32
    body = length - (length & 3)
    for i in range(0, body, 4):
        k = int.from_bytes(buf[i : i + 4], "little")
        k = (k * _M) & _MASK32
        k ^= k >> _R
        k = (k * _M) & _MASK32
        h = (h * _M) & _MASK32
        h ^= k
    tail = length & 3  # Java's switch falls through from 3 to 1.
    if tail >= 3:
        h ^= buf[body + 2] << 16
    if tail >= 2:
        h ^= buf[body + 1] << 8
    if tail >= 1:
        h ^= buf[body]
        h = (h * _M) & _MASK32
    h ^= h >> 13
    h = (h * _M) & _MASK32
    h ^= h >> 15
    assert 0 <= h <= _MASK32
    return h - (1 << 32) if h & 0x80000000 else h


def to_positive(n: int) -> int:
    """Kafka's `Utils.toPositive`: clear the sign bit (not `abs`, which fails on MIN_VALUE)."""
    return n & 0x7FFFFFFF


def partition_for_key(key: bytes | bytearray | memoryview, num_partitions: int) -> int:
    """The partition Kafka's clients choose for a keyed record (`BuiltInPartitioner.partitionForKey`)."""
    assert num_partitions > 0, num_partitions
    return to_positive(murmur2(key)) % num_partitions


class ClusterView(Protocol):
    """What kafka-python passes partitioners as `cluster` (its `ClusterMetadata`)."""

    def partitions_for_topic(self, topic: str) -> set[int] | None: ...

    def available_partitions_for_topic(self, topic: str) -> set[int] | None: ...


def _all_partitions(topic: str, cluster: ClusterView) -> Sequence[int]:
    fast = getattr(cluster, "sorted_partitions", None)  # The producer's metadata caches these.
    partitions = (
        fast(topic) if fast is not None else sorted(cluster.partitions_for_topic(topic) or ())
    )
    if not partitions:  # kafka-python's DefaultPartitioner raises ValueError here too.
        raise ValueError(f"Topic {topic} not found in ClusterMetadata")
    return partitions


def _available_partitions(topic: str, cluster: ClusterView) -> Sequence[int]:
    fast = getattr(cluster, "sorted_available", None)
    if fast is not None:
        return fast(topic)
    return sorted(cluster.available_partitions_for_topic(topic) or ())


def _keyed(serialized_key: bytes | bytearray | memoryview, all_partitions: Sequence[int]) -> int:
    return all_partitions[partition_for_key(serialized_key, len(all_partitions))]


class PartitionChooser:
    """What the producer calls to place a record that has no explicit partition."""

    name: str = "abstract"

    def partition(
        self,
        topic: str,
        key: Any,
        serialized_key: bytes | None,
        value: Any,
        serialized_value: bytes | None,
        cluster: ClusterView,
    ) -> int:
        """Return the partition for one record."""
        raise NotImplementedError

    def on_new_batch(self, topic: str, cluster: ClusterView, prev_partition: int) -> None:
        """A no-key record to `prev_partition` would open a new batch: move on if sticky."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class RandomChooser(PartitionChooser):
    """kafka-python's `DefaultPartitioner`: murmur2 for keys, a fresh random pick without.

    A no-key record goes to a random *available* partition (one with a leader), or
    to any partition when none is available.
    """

    def __init__(self, rng: random.Random, name: str = "default") -> None:
        self.rng = rng
        self.name = name

    def partition(
        self,
        topic: str,
        key: Any,
        serialized_key: bytes | None,
        value: Any,
        serialized_value: bytes | None,
        cluster: ClusterView,
    ) -> int:
        if serialized_key is not None:
            return _keyed(serialized_key, _all_partitions(topic, cluster))
        pool = _available_partitions(topic, cluster) or _all_partitions(topic, cluster)
        # One uniform draw (what random.choice does, minus its overhead: a hot path).
        return pool[int(self.rng.random() * len(pool))]


class StickyChooser(PartitionChooser):
    """Java's sticky partitioner (KIP-480 `StickyPartitionCache`) for no-key records.

    Keyed records still use murmur2. A no-key record goes to the topic's sticky
    partition; `on_new_batch(prev)` moves it to a *different* random available
    partition (any partition if none is available), and only if the sticky one is
    still `prev`, so a stale notification does not move it twice. Availability is
    consulted only when choosing: like Java, a partition that loses its leader
    keeps receiving records until its batch is done.
    """

    name = "sticky"

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.sticky: dict[str, int] = {}
        """topic -> the partition no-key records go to now."""

    def partition(
        self,
        topic: str,
        key: Any,
        serialized_key: bytes | None,
        value: Any,
        serialized_value: bytes | None,
        cluster: ClusterView,
    ) -> int:
        all_partitions = _all_partitions(topic, cluster)
        if serialized_key is not None:
            return _keyed(serialized_key, all_partitions)
        current = self.sticky.get(topic)
        if current is None or current not in all_partitions:
            current = self._choose(topic, cluster, avoid=None)
        return current

    def on_new_batch(self, topic: str, cluster: ClusterView, prev_partition: int) -> None:
        current = self.sticky.get(topic)
        if current is not None and current != prev_partition:
            return  # Already moved on since that batch: a stale notification.
        self._choose(topic, cluster, avoid=current)

    def _choose(self, topic: str, cluster: ClusterView, avoid: int | None) -> int:
        available = _available_partitions(topic, cluster)
        if not available:
            chosen = self.rng.choice(_all_partitions(topic, cluster))
        elif len(available) == 1:
            chosen = available[0]
        else:
            chosen = self.rng.choice([p for p in available if p != avoid])
        self.sticky[topic] = chosen
        return chosen


class _TopicsView:
    """`cluster.topics()` for partitioners written against kafka-python's ClusterMetadata."""

    def __init__(self, cluster: ClusterView) -> None:
        self._cluster = cluster

    def __contains__(self, topic: object) -> bool:
        return isinstance(topic, str) and self._cluster.partitions_for_topic(topic) is not None


class _KafkaPythonCluster:
    """The cluster handed to user partitioners: ours plus kafka-python's `topics()`.

    kafka-python's `DefaultPartitioner` (and user subclasses of it) begin with
    `if topic not in cluster.topics()`.
    """

    def __init__(self, cluster: ClusterView) -> None:
        self._cluster = cluster

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return self._cluster.partitions_for_topic(topic)

    def available_partitions_for_topic(self, topic: str) -> set[int] | None:
        return self._cluster.available_partitions_for_topic(topic)

    def topics(self) -> Any:
        own = getattr(self._cluster, "topics", None)
        return own() if callable(own) else _TopicsView(self._cluster)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # Never recurse on our own private state (copy, pickle).
            raise AttributeError(name)
        return getattr(self._cluster, name)


def _checked(result: Any, topic: str, cluster: ClusterView, who: str) -> int:
    """Reject a user partitioner's answer that is not an existing partition."""
    all_partitions = _all_partitions(topic, cluster)
    if result is None:  # kafka-python's own message for this case (KafkaProducer.send).
        raise ValueError(f"Partitioner did not assign a partition for topic {topic}!")
    try:
        partition = operator.index(result)
    except TypeError:
        partition = None
    if partition is None or isinstance(result, bool) or partition not in all_partitions:
        raise ValueError(
            f"Partitioner {who} returned {result!r} for topic {topic!r}, "
            f"which has partitions {all_partitions}"
        )
    return partition


class CustomChooser(PartitionChooser):
    """A user's partitioner, in any of kafka-python's three calling conventions."""

    def __init__(self, spec: Any, style: str) -> None:
        assert style in ("partitioner", "method3", "callable3"), style
        self.spec = spec
        self.style = style
        self.name = spec_name(spec)

    def partition(
        self,
        topic: str,
        key: Any,
        serialized_key: bytes | None,
        value: Any,
        serialized_value: bytes | None,
        cluster: ClusterView,
    ) -> int:
        view = _KafkaPythonCluster(cluster)
        if self.style == "partitioner":
            result = self.spec.partition(topic, key, serialized_key, value, serialized_value, view)
        elif self.style == "method3":
            result = self.spec.partition(topic, serialized_key, view)
        else:  # kafka-python 2.x: partitioner(key_bytes, all_partitions, available).
            all_partitions = _all_partitions(topic, cluster)
            available = _available_partitions(topic, cluster)
            result = self.spec(serialized_key, all_partitions, available)
        return _checked(result, topic, cluster, self.name)

    def on_new_batch(self, topic: str, cluster: ClusterView, prev_partition: int) -> None:
        hook = getattr(self.spec, "on_new_batch", None) if self.style == "partitioner" else None
        if callable(hook):
            hook(topic, _KafkaPythonCluster(cluster), prev_partition)


def _positional_arity(func: Callable[..., Any]) -> int | None:
    """How many positional arguments `func` takes; None when it takes any number."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):  # Some builtins have no signature: trust them.
        return None
    kinds = [p.kind for p in signature.parameters.values()]
    if inspect.Parameter.VAR_POSITIONAL in kinds:
        return None
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(1 for kind in kinds if kind in positional)


def classify_spec(spec: Any) -> str:
    """Name the kind of a `partitioner` setting, or raise KafkaConfigurationError.

    Returns one of the built-in names, "partitioner" (kafka-python 3.x object),
    "method3" (object with `partition(topic, key_bytes, cluster)`, kafka-python
    3.0.12's deprecated form) or "callable3" (kafka-python 2.x callable).
    """
    if spec is None:
        return "default"
    if isinstance(spec, str):
        if spec in BUILTIN_NAMES:
            return spec
        raise _bad_spec(spec)
    builtin = _KAFKA_PYTHON_BUILTINS.get((type(spec).__module__, type(spec).__qualname__))
    if builtin is not None:
        return builtin
    method = getattr(spec, "partition", None)
    if callable(method):
        arity = _positional_arity(method)
        if arity is None or arity >= 6:
            return "partitioner"
        if arity == 3:
            return "method3"
        raise _bad_spec(spec)
    if callable(spec) and _positional_arity(spec) in (None, 3):
        return "callable3"
    raise _bad_spec(spec)


def _bad_spec(spec: Any) -> KafkaConfigurationError:
    return KafkaConfigurationError(
        f"Invalid value {spec!r} for configuration partitioner: expected None, one of "
        f"{', '.join(repr(n) for n in BUILTIN_NAMES)}, a Partitioner with "
        "partition(topic, key, serialized_key, value, serialized_value, cluster), "
        "or a callable partitioner(key_bytes, all_partitions, available_partitions)"
    )


def spec_name(spec: Any) -> str:
    """A stable, JSON-able name for a `partitioner` setting (no memory addresses)."""
    kind = classify_spec(spec)
    if kind in BUILTIN_NAMES:
        return kind
    target = spec if inspect.isroutine(spec) or inspect.isclass(spec) else type(spec)
    module = getattr(target, "__module__", None) or "?"
    qualname = getattr(target, "__qualname__", None) or type(target).__qualname__
    return f"custom:{module}.{qualname}"


def make_partitioner(spec: Any, rng: random.Random) -> PartitionChooser:
    """Build the chooser for a `partitioner` setting; random picks draw from `rng`.

    None, "default", "murmur2" and "random" are kafka-python's DefaultPartitioner
    (fresh random pick per no-key record); "sticky" is Java's sticky partitioner.
    """
    kind = classify_spec(spec)
    if kind == "sticky":
        return StickyChooser(rng)
    if kind in BUILTIN_NAMES:
        return RandomChooser(rng, name=kind)
    return CustomChooser(spec, kind)
