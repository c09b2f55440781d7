"""The nemesis: fault schedules as data, interpreted against a running cluster.

A schedule is a sequence of `FaultOp(at_ms, kind, params)` (from a scenario
file or generated); `Nemesis` only interprets it. Targets are resolved when
the fault fires, against the controller's current view: `leader:T/P`,
`followers:T/P`, `coordinator:TXN_ID` (the broker leading that id's
`__transaction_state` partition), `any-broker` (a seeded choice among live brokers),
`crashed` (restart only), or a node name. A fault that finds nothing to do
(crash a crashed broker, the leader of an offline partition) is a no-op
recorded in the trace and history, not an error.

Every fault with `duration_ms` is undone after it; `heal_all` (Jepsen's final
generator) ends every fault before the final read: links restored, drops
and delays removed, paused nodes resumed, crashed nodes restarted, injected
errors cleared.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sim.cluster.broker import InjectedError
from sim.net import DropRule
from sim.protocol import Errors

if TYPE_CHECKING:
    from sim.runtime import Cluster


@dataclass(frozen=True)
class FaultOp:
    """One scheduled fault: when, which kind, and its keys (as in scenario files)."""

    at_ms: float
    kind: str
    params: Mapping[str, Any]


class FaultTargetError(ValueError):
    """A target that can never exist (`broker-7` of 3): an input error."""


class Nemesis:
    """Applies faults to a cluster's net, brokers and clients."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.world = cluster.world
        self.net = cluster.net
        self.rng = cluster.world.rng("nemesis")
        self.fired = 0

    # --- scheduling -----------------------------------------------------------------

    def schedule(self, ops: Sequence[FaultOp]) -> None:
        """Start a process that fires each op at its time (ops sorted by at_ms)."""
        self.world.process(self._run(sorted(ops, key=lambda op: op.at_ms)))

    def _run(self, ops: list[FaultOp]):
        """Fire the schedule in order; bounded by its length."""
        for op in ops:
            delay = op.at_ms - self.world.now_ms
            if delay > 0:
                yield self.world.timeout(delay)
            self.apply(op.kind, dict(op.params))
            self.fired += 1

    # --- resolution -------------------------------------------------------------------

    def resolve(self, target: str, kind: str = "") -> list[str]:
        """Node names a target means right now (possibly none)."""
        cluster = self.cluster
        if target.startswith(("leader:", "followers:")):
            role, _, tp = target.partition(":")
            topic, _, part = tp.rpartition("/")
            state = cluster.controller.partitions.get((topic, int(part)))
            if state is None:
                raise FaultTargetError(f"no such partition {tp}")
            if role == "leader":
                return [] if state.leader < 0 else [f"broker-{state.leader}"]
            return [f"broker-{b}" for b in state.replicas if b != state.leader]
        if target.startswith("coordinator:"):
            leader = cluster.coordinator_of(target.removeprefix("coordinator:"))
            return [] if leader < 0 else [f"broker-{leader}"]
        if target == "any-broker":
            live = [b.name for b in cluster.brokers if b.alive]
            return [self.rng.choice(live)] if live else []
        if target == "crashed":
            crashed_clients = sorted(
                {c.name for c in cluster.clients if getattr(c, "crashed", False)}
            )
            return (
                [b.name for b in cluster.brokers if not b.alive]
                + (["controller"] if not cluster.controller.alive else [])
                + [n for n in crashed_clients if cluster.client_by_name(n).crashed]
            )
        if target not in self.net.handlers:
            raise FaultTargetError(f"no such node {target!r}")
        return [target]

    def resolve_all(self, targets: str | Iterable[str] | None) -> list[str]:
        if targets is None:
            return []
        if isinstance(targets, str):
            targets = [targets]
        names: list[str] = []
        for target in targets:
            for name in self.resolve(target):
                if name not in names:
                    names.append(name)
        return names

    # --- applying ---------------------------------------------------------------------------

    def apply(self, kind: str, params: dict[str, Any]) -> None:
        handler = getattr(self, f"_do_{kind}", None)
        assert handler is not None, f"unknown fault kind {kind}"
        duration = params.pop("duration_ms", None)
        undo = handler(**params)
        self.cluster.history.fault(self.world.now_ms, kind, _plain(params))
        if duration is not None and undo is not None:
            self.world.call_later(duration, self._undo, kind, undo)

    def _undo(self, kind: str, undo: Any) -> None:
        undo()
        self.world.trace("nemesis.undo", kind=kind)
        self.cluster.history.fault(self.world.now_ms, f"stop_{kind}", None)

    def _noop(self, kind: str, why: str) -> None:
        self.world.trace("nemesis.noop", kind=kind, why=why)

    def _do_crash(self, target: str, lose_unflushed: bool = False):
        names = self.resolve(target)
        if not names:
            return self._noop("crash", f"{target} resolves to no node")
        crashed = []
        for name in names:
            if self.cluster.crash_node(name, lose_unflushed):
                crashed.append(name)
            else:
                self._noop("crash", f"{name} already down")
        self.world.trace("nemesis.crash", targets=tuple(crashed), lose_unflushed=lose_unflushed)
        return lambda: [self.cluster.restart_node(n) for n in crashed]

    def _do_restart(self, target: str):
        names = self.resolve(target)
        restarted = [n for n in names if self.cluster.restart_node(n)]
        if not restarted:
            self._noop("restart", f"{target}: nothing crashed")
        self.world.trace("nemesis.restart", targets=tuple(restarted))

    def _do_partition(
        self, isolate: Any = None, groups: Any = None, one_way: bool = False, **kw: Any
    ):
        sources_spec = kw.get("from")
        cuts: list[tuple[list[str], list[str]]] = []
        if groups:
            resolved = [self.resolve_all(g) for g in groups]
            for i, a in enumerate(resolved):
                for j, b in enumerate(resolved):
                    if i != j:
                        cuts.append((a, b))
        else:
            isolated = self.resolve_all(isolate)
            if not isolated:
                return self._noop("partition", f"{isolate} resolves to no node")
            others = (
                self.resolve_all(sources_spec)
                if sources_spec is not None
                else [n for n in self.net.names if n not in isolated]
            )
            cuts.append((isolated, others))
            if not one_way:
                cuts.append((others, isolated))
        removed: list[tuple[str, str]] = []
        for sources, targets in cuts:
            for s in sources:
                for t in targets:
                    if s != t and self.net.reachable(s, t):
                        removed.append((s, t))
        self.net.cut_links(removed)
        self.world.trace("nemesis.partition", cut=tuple(removed))
        return lambda: self.net.restore_links(removed)

    def _do_heal(self):
        self.net.heal()
        self.world.trace("nemesis.heal")

    def _do_drop(
        self, message: str, count: int | None = None, probability: float | None = None, **kw: Any
    ):
        rule = DropRule(
            frozenset(self.resolve_all(kw.get("from"))),
            frozenset(self.resolve_all(kw.get("to"))),
            message,
            count if count is not None or probability is not None else 1,
            probability,
        )
        self.net.add_drop(rule)
        self.world.trace(
            "nemesis.drop",
            sources=tuple(sorted(rule.sources)),
            targets=tuple(sorted(rule.targets)),
            message=message,
        )
        return lambda: self.net.remove_drop(rule)

    def _do_error(self, target: str, message: str, error: str, count: int = 1):
        rules = []
        for name in self.resolve(target):
            broker = self.cluster.broker_by_name(name)
            if broker is None:
                raise FaultTargetError(f"error faults need a broker, got {name}")
            rule = InjectedError(message, Errors[error], count)
            broker.injected.append(rule)
            rules.append((broker, rule))
        self.world.trace(
            "nemesis.error",
            targets=tuple(b.name for b, _ in rules),
            message=message,
            error=error,
            count=count,
        )

        def undo() -> None:
            for broker, rule in rules:
                if rule in broker.injected:
                    broker.injected.remove(rule)

        return undo

    def _do_delay(self, extra_ms: float, **kw: Any):
        links = [
            (s, t)
            for s in self.resolve_all(kw.get("from"))
            for t in self.resolve_all(kw.get("to"))
            if s != t
        ]
        for s, t in links:
            self.net.add_delay(s, t, extra_ms)
        self.world.trace("nemesis.delay", links=tuple(links), extra_ms=extra_ms)
        return lambda: [self.net.remove_delay(s, t, extra_ms) for s, t in links]

    def _do_pause(self, target: str):
        names = [n for n in self.resolve(target) if self.net.is_up(n)]
        for name in names:
            self.net.pause(name)
        self.world.trace("nemesis.pause", targets=tuple(names))
        return lambda: [self.net.resume(n) for n in names]

    # --- the final heal -------------------------------------------------------------------------

    def heal_all(self) -> None:
        """End every fault (Jepsen's final generator) before the final read."""
        self.net.heal()
        for name in sorted(self.net.paused):
            self.net.resume(name)
        for broker in self.cluster.brokers:
            broker.injected.clear()
        for name in self.resolve("crashed"):
            self.cluster.restart_node(name)
        self.world.trace("nemesis.heal_all")
        self.cluster.history.fault(self.world.now_ms, "heal_all", None)


def _plain(params: Mapping[str, Any]) -> Any:
    return tuple(sorted((k, v if not isinstance(v, list) else tuple(v)) for k, v in params.items()))
