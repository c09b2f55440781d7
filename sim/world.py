"""The World: one SimPy environment, named random streams, and the trace.

Everything that happens in a simulation happens inside one `World`. Time is
SimPy's clock, in simulated milliseconds (float). Randomness comes only from
named streams derived from the seed: `world.rng("net.jitter")` is a
`random.Random` seeded with the string ``f"{seed}:{name}"``, so adding a new
stream never shifts the numbers another stream draws.

The trace is the simulator's internal diary: plain `TraceEvent` tuples
(time, kind, fields). Its canonical text is hashed into `trace_digest()`;
the same scenario and seed must give the same digest in any process, on any
machine, whatever `PYTHONHASHSEED` is. That is the product's core promise,
so nothing that is not deterministic may reach a trace field: no ids of
objects, no set iteration, no wall clock.
"""

from __future__ import annotations

import hashlib
import random  # det-ok: only random.Random, seeded from the World
from collections.abc import Iterator
from typing import Any, NamedTuple

import simpy

TRACE_MAX_EVENTS = 5_000_000
"""A bound on the trace's length; a run that exceeds it is a runaway loop."""


class TraceEvent(NamedTuple):
    """One line of the trace: when, what (`component.verb`), and plain fields."""

    time_ms: float
    kind: str
    fields: tuple[tuple[str, Any], ...]

    def field(self, name: str, default: Any = None) -> Any:
        for key, value in self.fields:
            if key == name:
                return value
        return default

    def canonical(self) -> str:
        parts = [f"{self.time_ms:.3f}", self.kind]
        parts.extend(f"{key}={value!r}" for key, value in self.fields)
        return " ".join(parts)


class World:
    """The simulation's clock, random streams, trace and node registry.

    Args:
        seed: the run's seed; every random choice derives from it.
    """

    def __init__(self, seed: int) -> None:
        assert isinstance(seed, int), f"seed must be an int, got {type(seed).__name__}"
        self.seed = seed
        self.env = simpy.Environment()
        self._streams: dict[str, random.Random] = {}
        self._trace: list[TraceEvent] = []
        self.listeners: list[Any] = []
        """Callables given each trace event as it happens (runtime invariants)."""
        self.nodes: dict[str, Any] = {}
        """Every node on the network by name (brokers, producers, the controller)."""

    @property
    def now_ms(self) -> float:
        """The current simulated time in milliseconds."""
        return self.env.now

    def rng(self, name: str) -> random.Random:
        """The named random stream; the same name always returns the same stream."""
        stream = self._streams.get(name)
        if stream is None:
            stream = random.Random(f"{self.seed}:{name}")
            self._streams[name] = stream
        return stream

    def trace(self, kind: str, /, **fields: Any) -> None:
        """Record an internal event. Field order is sorted so the text is canonical."""
        assert len(self._trace) < TRACE_MAX_EVENTS, "trace overflow: a runaway loop?"
        event = TraceEvent(self.env.now, kind, tuple(sorted(fields.items())))
        self._trace.append(event)
        for listener in self.listeners:
            listener(event)

    @property
    def events(self) -> list[TraceEvent]:
        """The trace so far (read-only by convention)."""
        return self._trace

    def trace_lines(self) -> Iterator[str]:
        for event in self._trace:
            yield event.canonical()

    def trace_digest(self) -> str:
        """sha256 of the canonical trace text: equal digests mean equal runs."""
        digest = hashlib.sha256()
        for line in self.trace_lines():
            digest.update(line.encode())
            digest.update(b"\n")
        return digest.hexdigest()

    def process(self, generator: Any) -> simpy.Process:
        """Start a SimPy process (a thin alias so callers need not reach into env)."""
        return self.env.process(generator)

    def timeout(self, delay_ms: float, value: Any = None) -> simpy.Timeout:
        assert delay_ms >= 0, f"negative delay {delay_ms}"
        return self.env.timeout(delay_ms, value)

    def call_later(self, delay_ms: float, callback: Any, *args: Any) -> None:
        """Run `callback(*args)` after `delay_ms` without a process per call.

        A bare Timeout with a callback is one SimPy event, cheaper than a
        process; the hot paths (message delivery, timers) use it.
        """
        event = self.env.timeout(delay_ms)
        event.callbacks.append(lambda _event: callback(*args))
