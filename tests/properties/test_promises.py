"""Hypothesis properties of the guarantee model, on generated fault schedules.

(a) soundness: the strongest configuration Kafka promises (acks=all, RF 3,
    min.insync 2, unclean off, idempotence on) loses, duplicates and reorders
    nothing under any schedule of process crashes, partitions, dropped
    responses, injected retriable errors, delays and pauses;
(b) completeness: where Kafka allows an anomaly — loss with acks=1, duplicates
    and reordering without idempotence — Hypothesis finds a
    schedule showing it, and shrinks it to at most 3 faults;
(c) determinism: any generated scenario run twice gives one trace digest.

Each failure message carries the `kpsim run` command that replays it.
Example counts are small and the examples derandomized so the default suite
stays fast and reproducible; KPSIM_PROPERTY_EXAMPLES=N and KPSIM_PROPERTY_RANDOM=1
make a thorough, random hunt.
"""

from __future__ import annotations

import os
import shlex
from typing import Any

from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from sim.runner import run_scenario
from sim.scenario import parse_scenario

EXAMPLES = int(os.environ.get("KPSIM_PROPERTY_EXAMPLES", "12"))
RANDOM = os.environ.get("KPSIM_PROPERTY_RANDOM") == "1"
"""Default: derandomized (the same examples on every machine); 1: a fresh random hunt."""
RECORDS = 300
RATE_PER_S = 500
WORKLOAD_MS = RECORDS * 1000 // RATE_PER_S

BASE = f"""
name = "promise-property"
description = "a generated fault schedule against one configuration"
[cluster]
brokers = 3
min_insync_replicas = 2
[[topics]]
name = "orders"
partitions = 1
replication_factor = 3
[producer]
acks = "all"
request_timeout_ms = 5000
[workload]
topic = "orders"
records = {RECORDS}
rate_per_s = {RATE_PER_S}
keys = "unique"
settle_ms = 35000
"""

TARGETS = st.sampled_from(["leader:orders/0", "followers:orders/0", "any-broker", "broker-1"])
AT_MS = st.integers(min_value=50, max_value=WORKLOAD_MS)
DURATION = st.integers(min_value=200, max_value=8000)


KINDS = ("crash", "partition", "drop", "error", "delay", "pause")


def _fault(draw: Any, kinds: tuple[str, ...] = KINDS) -> dict[str, Any]:
    kind = draw(st.sampled_from(kinds))
    fault: dict[str, Any] = {"at_ms": draw(AT_MS), "kind": kind}
    if kind == "crash":
        fault["target"] = draw(TARGETS)
        fault["duration_ms"] = draw(DURATION)
    elif kind == "partition":
        fault["isolate"] = "leader:orders/0"
        fault["from"] = ["followers:orders/0"]
        fault["one_way"] = draw(st.booleans())
        fault["duration_ms"] = draw(DURATION)
    elif kind == "drop":
        fault.update(
            {
                "from": "leader:orders/0",
                "to": "producer-0",
                "message": "ProduceResponse",
                "count": 1,
            }
        )
    elif kind == "error":
        fault.update(
            {
                "target": "leader:orders/0",
                "message": "ProduceRequest",
                "error": draw(
                    st.sampled_from(
                        [
                            "NOT_ENOUGH_REPLICAS",
                            "NOT_LEADER_OR_FOLLOWER",
                            "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
                        ]
                    )
                ),
                "count": draw(st.integers(1, 3)),
            }
        )
    elif kind == "delay":
        fault.update(
            {
                "from": "leader:orders/0",
                "to": ["followers:orders/0"],
                "extra_ms": draw(st.integers(1, 300)),
                "duration_ms": draw(DURATION),
            }
        )
    else:
        fault["target"] = draw(TARGETS)
        fault["duration_ms"] = draw(DURATION)
    return fault


@st.composite
def schedules(draw: Any, kinds: tuple[str, ...] = KINDS) -> list[dict[str, Any]]:
    return [_fault(draw, kinds) for _ in range(draw(st.integers(0, 3)))]


SEARCH = settings(
    max_examples=150,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
"""Completeness searches are derandomized: the same hunt, and the same witness, on every machine."""


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return str(value)


def overrides_for(faults: list[dict[str, Any]], *extra: str) -> tuple[str, ...]:
    tables = ", ".join(
        "{" + ", ".join(f"{k}={_toml_value(v)}" for k, v in f.items()) + "}" for f in faults
    )
    return (f"faults=[{tables}]", *extra)


def run(faults: list[dict[str, Any]], *extra: str, seed: int = 0) -> Any:
    overrides = overrides_for(faults, *extra)
    return run_scenario(
        parse_scenario(BASE, "tests/properties/promise.toml", overrides), seed
    ), overrides


def replay(overrides: tuple[str, ...], seed: int = 0) -> str:
    parts = ["kpsim", "run", "<BASE of tests/properties/test_promises.py>", "--seed", str(seed)]
    for override in overrides:
        parts += ["--set", override]
    return shlex.join(parts)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not RANDOM,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(schedules(), st.integers(0, 3), st.sampled_from([2, 3]), st.sampled_from([1, 2, 5]))
def test_the_promised_configuration_loses_duplicates_and_reorders_nothing(
    faults: list[dict[str, Any]], seed: int, min_insync: int, max_in_flight: int
) -> None:
    """Every promised configuration: acks=all, RF 3, min.insync 2 or 3, idempotence on,
    1, 2 or 5 requests in flight, unclean election off."""
    result, overrides = run(
        faults,
        f"topics[0].min_insync_replicas={min_insync}",
        f"producer.max_in_flight_requests_per_connection={max_in_flight}",
        seed=seed,
    )
    anomalies = {k: result.counts[k] for k in ("lost", "duplicated", "reordered")}
    assert anomalies == {"lost": 0, "duplicated": 0, "reordered": 0}, replay(overrides, seed)


@settings(
    max_examples=max(4, EXAMPLES // 3),
    deadline=None,
    derandomize=not RANDOM,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(schedules(), st.integers(0, 3))
def test_a_generated_scenario_replays_to_one_digest(
    faults: list[dict[str, Any]], seed: int
) -> None:
    first, overrides = run(faults, "producer.acks=1", seed=seed)
    second, _ = run(faults, "producer.acks=1", seed=seed)
    assert first.trace_digest == second.trace_digest, replay(overrides, seed)


def test_hypothesis_finds_acks1_loss_with_at_most_three_faults() -> None:
    witness = find(
        schedules(("crash", "partition")),
        lambda faults: run(faults, "producer.acks=1")[0].counts["lost"] > 0,
        settings=SEARCH,
    )
    assert 1 <= len(witness) <= 3, witness
    result, overrides = run(witness, "producer.acks=1")
    assert result.counts["lost"] > 0, replay(overrides)


def test_hypothesis_finds_duplicates_without_idempotence_with_at_most_three_faults() -> None:
    extra = ("producer.enable_idempotence=false",)
    witness = find(
        schedules(("drop", "error", "crash")),
        lambda faults: run(faults, *extra)[0].counts["duplicated"] > 0,
        settings=SEARCH,
    )
    assert 1 <= len(witness) <= 3, witness
    assert run(witness, *extra)[0].counts["duplicated"] > 0


def test_hypothesis_finds_reordering_without_idempotence_with_at_most_three_faults() -> None:
    extra = (
        "producer.enable_idempotence=false",
        "producer.max_in_flight_requests_per_connection=5",
        "workload.rate_per_s=3000",
    )
    witness = find(
        schedules(("error", "drop", "crash")),
        lambda faults: run(faults, *extra)[0].counts["reordered"] > 0,
        settings=SEARCH,
    )
    assert 1 <= len(witness) <= 3, witness
    assert run(witness, *extra)[0].counts["reordered"] > 0
