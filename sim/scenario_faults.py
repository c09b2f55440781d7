"""Fault schedules: the `[[faults]]` tables and the nodes they name.

Faults are data (Jepsen's nemesis ops): this module checks each table against
the contract's table of kinds and keys and returns plain values; `sim.faults`
interprets them. Targets are checked statically against the shape of the
cluster: `broker-7` of 3 brokers, `leader:nosuch/0` or `leader:orders/5` of a
one-partition topic can never exist and are input errors. Who leads, and who
is crashed, is resolved only when the fault fires.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sim.protocol import REQUEST_TYPES, Errors
from sim.scenario_validate import REQUIRED, Context, Table, describe, suggest

# --- Fault targets -------------------------------------------------------------

_NUMBER = r"(0|[1-9][0-9]*)"
_BROKER = re.compile(rf"broker-{_NUMBER}")
_PRODUCER = re.compile(rf"producer-{_NUMBER}")
_ROLE = re.compile(rf"(leader|followers):([^/]*)/{_NUMBER}")
TARGET_FORMS = "broker-N, producer-N, controller, leader:TOPIC/P, followers:TOPIC/P, coordinator:TXN_ID or any-broker"


@dataclass(frozen=True)
class Topology:
    """What static target checks need: how many of each node, which partitions."""

    brokers: int
    producers: int
    partitions: Mapping[str, int]  # topic name -> partition count


def check_target(
    ctx: Context,
    key: str,
    value: Any,
    topology: Topology,
    *,
    brokers_only: bool = False,
    allow_crashed: bool = False,
) -> str:
    """Return `value` if it names a node that can exist in this cluster.

    Runtime resolution (who leads, who is crashed) is the nemesis' job; here
    only names that can *never* exist are rejected.
    """
    if not isinstance(value, str):
        raise ctx.error(key, f"expected a node name ({TARGET_FORMS}), got {describe(value)}")
    if value == "crashed":
        if allow_crashed:
            return value
        raise ctx.error(key, "'crashed' is only a target of restart")
    if value == "any-broker" or (value == "controller" and not brokers_only):
        return value
    if value.startswith("coordinator:") and len(value) > len("coordinator:"):
        return value  # The broker leading that transactional id's __transaction_state partition.
    if match := _BROKER.fullmatch(value):
        if int(match[1]) >= topology.brokers:
            last = topology.brokers - 1
            raise ctx.error(key, f"no such node '{value}' (the cluster has brokers 0..{last})")
        return value
    if (match := _PRODUCER.fullmatch(value)) and not brokers_only:
        if int(match[1]) >= topology.producers:
            last = topology.producers - 1
            raise ctx.error(key, f"no such node '{value}' (the workload has producers 0..{last})")
        return value
    if match := _ROLE.fullmatch(value):
        _check_partition(ctx, key, match[2], int(match[3]), topology)
        return value
    if brokers_only:
        forms = "broker-N, leader:TOPIC/P, followers:TOPIC/P or any-broker"
        raise ctx.error(key, f"expected a broker ({forms}), got {describe(value)}")
    hint = suggest(value, ["controller", "any-broker", "crashed", "broker-0", "producer-0"])
    raise ctx.error(key, f"no such node {describe(value)}: expected {TARGET_FORMS}{hint}")


def _check_partition(
    ctx: Context, key: str, topic: str, partition: int, topology: Topology
) -> None:
    if topic not in topology.partitions:
        declared = ", ".join(topology.partitions) or "none"
        raise ctx.error(
            key,
            f"no such topic '{topic}' (declared: {declared})" + suggest(topic, topology.partitions),
        )
    count = topology.partitions[topic]
    if partition >= count:
        raise ctx.error(key, f"no such partition {topic}/{partition} (partitions 0..{count - 1})")


def check_targets(
    ctx: Context, key: str, value: Any, topology: Topology, *, brokers_only: bool = False
) -> tuple[str, ...]:
    """`from`/`to`: one target or a non-empty list of them, as a tuple."""
    if isinstance(value, str):
        return (check_target(ctx, key, value, topology, brokers_only=brokers_only),)
    if not isinstance(value, list) or not value:
        raise ctx.error(
            key, f"expected a node name or a non-empty list of them, got {describe(value)}"
        )
    return tuple(
        check_target(ctx, f"{key}[{i}]", item, topology, brokers_only=brokers_only)
        for i, item in enumerate(value)
    )


# --- Faults ---------------------------------------------------------------------

FAULT_KEYS: dict[str, tuple[str, ...]] = {
    "crash": ("target", "lose_unflushed", "duration_ms"),
    "restart": ("target",),
    "partition": ("isolate", "from", "groups", "one_way", "duration_ms"),
    "heal": (),
    "drop": ("from", "to", "message", "count", "probability", "duration_ms"),
    "error": ("target", "message", "error", "count", "duration_ms"),
    "delay": ("from", "to", "extra_ms", "duration_ms"),
    "pause": ("target", "duration_ms"),
}
"""Each fault kind and the keys it takes (besides `at_ms` and `kind`)."""

ERROR_NAMES = tuple(e.name for e in Errors if e is not Errors.NONE)


def parse_fault(
    ctx: Context, key: str, raw: Any, topology: Topology
) -> tuple[float, str, dict[str, Any]]:
    """Validate one `[[faults]]` table into (at_ms, kind, params).

    `params` always has every key of its kind (absent optional keys as their
    default or None), so the nemesis can index it without `.get`.
    """
    if not isinstance(raw, dict):
        raise ctx.error(key, f"expected a table, got {describe(raw)}")
    kind = raw.get("kind", REQUIRED)
    if kind is REQUIRED:
        raise ctx.error(f"{key}.kind", "required key is missing")
    if not isinstance(kind, str) or kind not in FAULT_KEYS:
        kinds = ", ".join(FAULT_KEYS)
        hint = suggest(kind, FAULT_KEYS) if isinstance(kind, str) else ""
        raise ctx.error(f"{key}.kind", f"expected one of {kinds}, got {describe(kind)}{hint}")
    keys = FAULT_KEYS[kind]
    for name in raw:
        if name == "duration_ms" and name not in keys:
            raise ctx.error(
                f"{key}.{name}", f"a {kind} cannot be undone, so it takes no duration_ms"
            )
        if name not in ("at_ms", "kind", *keys):
            takes = ", ".join(("at_ms", "kind", *keys))
            hint = suggest(name, ("at_ms", *keys))
            raise ctx.error(
                f"{key}.{name}", f"unknown key for a {kind} fault{hint} ({kind} takes {takes})"
            )
    table = Table(ctx, key, raw, ("at_ms", "kind", *keys))
    at_ms = table.number("at_ms", minimum=0)
    params = _FAULT_PARSERS[kind](table, topology)
    if "duration_ms" in keys:
        params["duration_ms"] = table.number("duration_ms", None, minimum=0, positive=True)
    return at_ms, kind, params


def _crash(table: Table, topology: Topology) -> dict[str, Any]:
    target = check_target(table.ctx, table.path("target"), table.get("target"), topology)
    lose_unflushed = table.bool("lose_unflushed", False)
    if lose_unflushed and not _may_be_broker(target):
        raise table.error("lose_unflushed", f"only a broker has a log to lose, not '{target}'")
    return {"target": target, "lose_unflushed": lose_unflushed}


def _restart(table: Table, topology: Topology) -> dict[str, Any]:
    target = check_target(
        table.ctx, table.path("target"), table.get("target"), topology, allow_crashed=True
    )
    return {"target": target}


def _partition(table: Table, topology: Topology) -> dict[str, Any]:
    ctx = table.ctx
    has_isolate, has_groups = "isolate" in table.data, "groups" in table.data
    if has_isolate == has_groups:
        raise ctx.error(table.key, "a partition takes either isolate (+ optional from) or groups")
    one_way = table.bool("one_way", False)
    if has_groups:
        for name in ("from", "one_way"):
            if name in table.data:
                raise table.error(name, "applies only with isolate, not with groups")
        groups = _groups(table, topology)
        return {"isolate": None, "from": None, "groups": groups, "one_way": one_way}
    isolate = check_target(ctx, table.path("isolate"), table.get("isolate"), topology)
    sources = None
    if "from" in table.data:
        sources = check_targets(ctx, table.path("from"), table.get("from"), topology)
        if isolate in sources:
            raise table.error("from", f"'{isolate}' cannot be cut off from itself")
    return {"isolate": isolate, "from": sources, "groups": None, "one_way": one_way}


def _groups(table: Table, topology: Topology) -> tuple[tuple[str, ...], ...]:
    """`groups`: at least two disjoint, non-empty lists of nodes."""
    value, key = table.get("groups"), table.path("groups")
    if not isinstance(value, list) or len(value) < 2:
        reason = f"expected a list of at least 2 lists of nodes, got {describe(value)}"
        raise table.ctx.error(key, reason)
    groups: list[tuple[str, ...]] = []
    seen: set[str] = set()
    for i, group in enumerate(value):
        if not isinstance(group, list):
            raise table.ctx.error(f"{key}[{i}]", f"expected a list of nodes, got {describe(group)}")
        nodes = check_targets(table.ctx, f"{key}[{i}]", group, topology)
        for node in nodes:
            if node in seen:
                raise table.ctx.error(f"{key}[{i}]", f"'{node}' is in more than one group")
            seen.add(node)
        groups.append(nodes)
    return tuple(groups)


def _heal(table: Table, topology: Topology) -> dict[str, Any]:
    return {}


def _message(table: Table, *, requests_only: bool) -> str:
    value = table.str("message")
    names = [n for n in REQUEST_TYPES if n.endswith("Request") or not requests_only]
    if value not in names:
        what = "a request a broker answers" if requests_only else "a message type"
        raise table.error(
            "message",
            f"expected {what} ({', '.join(names)}), got {describe(value)}" + suggest(value, names),
        )
    return value


def _drop(table: Table, topology: Topology) -> dict[str, Any]:
    ctx = table.ctx
    sources = check_targets(ctx, table.path("from"), table.get("from"), topology)
    targets = check_targets(ctx, table.path("to"), table.get("to"), topology)
    message = _message(table, requests_only=False)
    if ("count" in table.data) == ("probability" in table.data):
        raise ctx.error(table.key, "a drop takes exactly one of count or probability")
    count = table.int("count", None, minimum=1)
    probability = table.number("probability", None, minimum=0, positive=True)
    if probability is not None and probability > 1:
        raise table.error("probability", f"must be <= 1, got {probability:g}")
    return {
        "from": sources,
        "to": targets,
        "message": message,
        "count": count,
        "probability": probability,
    }


def _error(table: Table, topology: Topology) -> dict[str, Any]:
    target = check_target(
        table.ctx, table.path("target"), table.get("target"), topology, brokers_only=True
    )
    message = _message(table, requests_only=True)
    error = table.str("error")
    if error not in ERROR_NAMES:
        raise table.error(
            "error",
            f"expected a Kafka error name such as NOT_ENOUGH_REPLICAS, got {describe(error)}"
            + suggest(error, ERROR_NAMES),
        )
    count = table.int("count", 1, minimum=1)
    return {"target": target, "message": message, "error": error, "count": count}


def _delay(table: Table, topology: Topology) -> dict[str, Any]:
    ctx = table.ctx
    sources = check_targets(ctx, table.path("from"), table.get("from"), topology)
    targets = check_targets(ctx, table.path("to"), table.get("to"), topology)
    extra_ms = table.number("extra_ms", minimum=0, positive=True)
    return {"from": sources, "to": targets, "extra_ms": extra_ms}


def _pause(table: Table, topology: Topology) -> dict[str, Any]:
    # duration_ms is optional: without it the final heal resumes the node.
    return {"target": check_target(table.ctx, table.path("target"), table.get("target"), topology)}


def _may_be_broker(target: str) -> bool:
    return not (target == "controller" or _PRODUCER.fullmatch(target))


_FAULT_PARSERS = {
    "crash": _crash,
    "restart": _restart,
    "partition": _partition,
    "heal": _heal,
    "drop": _drop,
    "error": _error,
    "delay": _delay,
    "pause": _pause,
}
assert set(_FAULT_PARSERS) == set(FAULT_KEYS)
