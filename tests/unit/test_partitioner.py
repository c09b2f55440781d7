"""Partition choice: Java-identical murmur2, kafka-python's partitioners, sticky, custom."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
from kafka.partitioner import DefaultPartitioner as KpDefaultPartitioner
from kafka.partitioner import Partitioner as KpPartitioner
from kafka.partitioner import StickyPartitioner as KpStickyPartitioner
from kafka.partitioner.default import murmur2 as kp_murmur2

from sim.client.partitioner import (
    CustomChooser,
    PartitionChooser,
    RandomChooser,
    StickyChooser,
    make_partitioner,
    murmur2,
    partition_for_key,
    to_positive,
)
from sim.errors import KafkaConfigurationError

# SEMANTICS.md §8: key, murmur2 (signed, Java), toPositive, %3, %6, %50.
MURMUR2_VECTORS = [
    (b"", 275646681, 275646681, 0, 3, 31),
    (b"a", -1563381124, 584102524, 1, 4, 24),
    (b"ab", 316155434, 316155434, 2, 2, 34),
    (b"abc", 479470107, 479470107, 0, 3, 7),
    (b"21", -973932308, 1173551340, 0, 0, 40),
    (b"foobar", -790332482, 1357151166, 0, 0, 16),
    (b"key-0", 29210041, 29210041, 1, 1, 41),
    (b"user-42", 1459644460, 1459644460, 1, 4, 10),
    (b"a-little-bit-long-string", -985981536, 1161502112, 2, 2, 12),
    (b"a-little-bit-longer-string", -1486304829, 661178819, 2, 5, 19),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971, 2088585677, 2, 5, 27),
    (b"\xff\xfe\xfd", 998637092, 998637092, 2, 2, 42),
]


@dataclass
class FakeCluster:
    """A ClusterView: partitions per topic, some of them without a leader."""

    partitions: dict[str, int]
    unavailable: dict[str, set[int]] = field(default_factory=dict)

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        count = self.partitions.get(topic)
        return None if count is None else set(range(count))

    def available_partitions_for_topic(self, topic: str) -> set[int] | None:
        every = self.partitions_for_topic(topic)
        return None if every is None else every - self.unavailable.get(topic, set())


def send(
    chooser: PartitionChooser, cluster: FakeCluster, key: bytes | None, value: bytes = b"v"
) -> int:
    return chooser.partition("t", key, key, value, value, cluster)


# --- murmur2 ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "signed", "positive", "mod3", "mod6", "mod50"),
    MURMUR2_VECTORS,
    ids=[repr(v[0]) for v in MURMUR2_VECTORS],
)
def test_murmur2_matches_java_vectors(
    key: bytes, signed: int, positive: int, mod3: int, mod6: int, mod50: int
) -> None:
    assert murmur2(key) == signed
    assert to_positive(murmur2(key)) == positive
    assert [partition_for_key(key, n) for n in (3, 6, 50)] == [mod3, mod6, mod50]


def test_murmur2_agrees_with_kafka_python_on_random_keys() -> None:
    """kafka-python returns the same 32 bits unsigned."""
    rng = random.Random(20241025)
    for _ in range(2000):
        key = rng.randbytes(rng.randrange(0, 64))
        ours = murmur2(key)
        assert -(2**31) <= ours < 2**31
        assert ours & 0xFFFFFFFF == kp_murmur2(key), key


def test_murmur2_takes_bytearray_and_memoryview() -> None:
    assert murmur2(bytearray(b"foobar")) == murmur2(memoryview(b"foobar")) == -790332482


def test_to_positive_clears_the_sign_bit_not_abs() -> None:
    assert to_positive(-(2**31)) == 0
    assert to_positive(-1) == 2**31 - 1
    assert to_positive(5) == 5


# --- Built-in choosers -----------------------------------------------------------


@pytest.mark.parametrize("spec", [None, "default", "murmur2", "random", "sticky"])
def test_keyed_records_use_murmur2_over_all_partitions(spec: str | None) -> None:
    chooser = make_partitioner(spec, random.Random(1))
    cluster = FakeCluster({"t": 6}, unavailable={"t": {0, 1, 2, 3}})
    for key, *_, mod6, _mod50 in MURMUR2_VECTORS:
        assert send(chooser, cluster, key) == mod6  # Even to a partition without a leader.


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        (None, RandomChooser),
        ("default", RandomChooser),
        ("murmur2", RandomChooser),
        ("random", RandomChooser),
        ("sticky", StickyChooser),
    ],
)
def test_spec_kinds(spec: str | None, kind: type) -> None:
    chooser = make_partitioner(spec, random.Random(0))
    assert type(chooser) is kind
    assert chooser.name == (spec or "default")


def test_default_no_key_is_random_per_record_and_roughly_uniform() -> None:
    chooser = make_partitioner(None, random.Random(7))
    cluster = FakeCluster({"t": 3})
    counts = Counter(send(chooser, cluster, None) for _ in range(6000))
    assert sorted(counts) == [0, 1, 2]
    assert all(1800 <= counts[p] <= 2200 for p in range(3)), counts


def test_random_choice_is_deterministic_per_seed() -> None:
    cluster = FakeCluster({"t": 5})

    def run(seed: int) -> list[int]:
        chooser = make_partitioner("random", random.Random(seed))
        return [send(chooser, cluster, None) for _ in range(100)]

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_default_no_key_avoids_partitions_without_leader() -> None:
    chooser = make_partitioner("default", random.Random(2))
    cluster = FakeCluster({"t": 4}, unavailable={"t": {0, 3}})
    assert {send(chooser, cluster, None) for _ in range(200)} == {1, 2}


def test_default_no_key_uses_all_partitions_when_none_available() -> None:
    chooser = make_partitioner("default", random.Random(2))
    cluster = FakeCluster({"t": 3}, unavailable={"t": {0, 1, 2}})
    assert {send(chooser, cluster, None) for _ in range(200)} == {0, 1, 2}


def test_unknown_topic_raises_value_error_like_kafka_python() -> None:
    chooser = make_partitioner(None, random.Random(0))
    with pytest.raises(ValueError, match="Topic t not found"):
        send(chooser, FakeCluster({}), None)


def test_sticky_stays_until_on_new_batch_then_moves() -> None:
    chooser = make_partitioner("sticky", random.Random(11))
    cluster = FakeCluster({"t": 4})
    first = send(chooser, cluster, None)
    assert {send(chooser, cluster, None) for _ in range(100)} == {first}
    chooser.on_new_batch("t", cluster, first)
    second = send(chooser, cluster, None)
    assert second != first
    assert {send(chooser, cluster, None) for _ in range(100)} == {second}


def test_sticky_ignores_stale_on_new_batch() -> None:
    chooser = make_partitioner("sticky", random.Random(5))
    cluster = FakeCluster({"t": 4})
    first = send(chooser, cluster, None)
    chooser.on_new_batch("t", cluster, first)
    second = send(chooser, cluster, None)
    chooser.on_new_batch("t", cluster, first)  # About a partition it already left.
    assert send(chooser, cluster, None) == second


def test_sticky_is_per_topic_and_visits_every_available_partition() -> None:
    chooser = make_partitioner("sticky", random.Random(9))
    cluster = FakeCluster({"t": 5, "u": 2}, unavailable={"t": {4}})
    seen = Counter()
    for _ in range(500):
        partition = send(chooser, cluster, None)
        seen[partition] += 1
        chooser.on_new_batch("t", cluster, partition)
    assert sorted(seen) == [0, 1, 2, 3]
    u_first = chooser.partition("u", None, None, b"v", b"v", cluster)
    chooser.on_new_batch("u", cluster, u_first)
    assert chooser.partition("u", None, None, b"v", b"v", cluster) == 1 - u_first


def test_sticky_with_one_available_partition_stays_there() -> None:
    chooser = make_partitioner("sticky", random.Random(0))
    cluster = FakeCluster({"t": 3}, unavailable={"t": {0, 2}})
    for _ in range(5):
        assert send(chooser, cluster, None) == 1
        chooser.on_new_batch("t", cluster, 1)


def test_builtin_choosers_never_touch_module_random() -> None:
    state = random.getstate()
    cluster = FakeCluster({"t": 3})
    for spec in (None, "random", "sticky"):
        chooser = make_partitioner(spec, random.Random(1))
        for _ in range(50):
            chooser.on_new_batch("t", cluster, send(chooser, cluster, None))
    assert random.getstate() == state


def test_kafka_pythons_own_partitioners_become_seeded_equivalents() -> None:
    assert type(make_partitioner(KpDefaultPartitioner(), random.Random(0))) is RandomChooser
    assert type(make_partitioner(KpStickyPartitioner(), random.Random(0))) is StickyChooser


# --- Custom partitioners -----------------------------------------------------------


class HelloPartitioner(KpPartitioner):
    """The article's partitioner: values containing b"hello" go to partition 0."""

    def __init__(self) -> None:
        self.new_batches: list[tuple[str, int]] = []

    def partition(self, topic, key, serialized_key, value, serialized_value, cluster):  # type: ignore[no-untyped-def]
        assert topic in cluster.topics()  # kafka-python's ClusterMetadata API works too.
        return 0 if b"hello" in serialized_value else 1

    def on_new_batch(self, topic: str, cluster: Any, prev_partition: int) -> None:
        self.new_batches.append((topic, prev_partition))


def test_custom_partitioner_subclass_is_called_with_value() -> None:
    spec = HelloPartitioner()
    chooser = make_partitioner(spec, random.Random(0))
    cluster = FakeCluster({"t": 2})
    assert isinstance(chooser, CustomChooser)
    assert send(chooser, cluster, None, b"say hello") == 0
    assert send(chooser, cluster, b"k", b"goodbye") == 1
    chooser.on_new_batch("t", cluster, 1)
    assert spec.new_batches == [("t", 1)]


def test_subclass_of_kafka_pythons_default_partitioner_works_with_our_cluster() -> None:
    class KeyedOnly(KpDefaultPartitioner):
        pass

    chooser = make_partitioner(KeyedOnly(), random.Random(0))
    assert isinstance(chooser, CustomChooser)
    assert send(chooser, FakeCluster({"t": 6}), b"foobar") == 0


def test_legacy_callable_gets_key_bytes_and_sorted_partition_lists() -> None:
    calls: list[tuple[Any, list[int], list[int]]] = []

    def legacy(key_bytes: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        calls.append((key_bytes, all_partitions, available))
        return 0 if key_bytes and b"hello" in key_bytes else 1

    chooser = make_partitioner(legacy, random.Random(0))
    cluster = FakeCluster({"t": 3}, unavailable={"t": {2}})
    assert send(chooser, cluster, b"hello-key") == 0
    assert send(chooser, cluster, b"other") == 1
    assert calls[0] == (b"hello-key", [0, 1, 2], [0, 1])
    chooser.on_new_batch("t", cluster, 1)  # Legacy partitioners have no hook: a no-op.


def test_object_with_three_argument_partition_method_is_kafka_pythons_deprecated_form() -> None:
    class OldStyle:
        def partition(self, topic: str, key_bytes: bytes | None, cluster: Any) -> int:
            return max(cluster.partitions_for_topic(topic))

    chooser = make_partitioner(OldStyle(), random.Random(0))
    assert send(chooser, FakeCluster({"t": 4}), b"k") == 3


@pytest.mark.parametrize("answer", [5, -1, None, "0", True, 1.0])
def test_custom_partitioner_answer_must_be_an_existing_partition(answer: Any) -> None:
    chooser = make_partitioner(lambda key, every, available: answer, random.Random(0))
    with pytest.raises(ValueError, match="artition"):
        send(chooser, FakeCluster({"t": 3}), b"k")


def test_invalid_specs_rejected_as_configuration_errors() -> None:
    for bad in ("round-robin", 3, object(), lambda key: 0):
        with pytest.raises(KafkaConfigurationError):
            make_partitioner(bad, random.Random(0))
