"""The network: nodes, TCP-like connections, partitions, drops and delays.

Every message between two nodes travels on the connection of that pair.
A connection is FIFO per direction, like TCP: jitter never lets a later
message overtake an earlier one. Faults act the way they act on TCP:

- A *partition* cuts a directed link (kept in a `networkx.DiGraph` of who can
  reach whom). A message that meets a cut link is lost, and the direction
  goes *silent*: nothing sent after it gets through either, even once the
  link heals, because TCP would keep retransmitting the lost segment. The
  sender learns of it only when its own request times out and it closes the
  connection (`reset`), exactly as Kafka's NetworkClient does.
- A *drop* loses one matching message the same way (silent from there on).
- A *crash* resets every connection of the node; each peer whose link to it
  is up hears a reset (a `Disconnected` notice) after one latency — what a
  client sees as a disconnect. Sending to a crashed node is refused the same
  way (connection refused).
- A *pause* holds a node's traffic, in and out, until it resumes (a GC pause).
- A *delay* adds latency to a directed link, keeping its order.

What is left out: bandwidth and message size; connection setup time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import networkx as nx

from sim.protocol import Errors
from sim.world import World


class Node(Protocol):
    """What `net` delivers to: a message handler and a disconnect handler."""

    def receive(self, source: str, message: Any) -> None: ...

    def on_disconnect(self, peer: str) -> None: ...


@dataclass
class DropRule:
    """Lose messages of a type on matching links, `count` times or by probability."""

    sources: frozenset[str]
    targets: frozenset[str]
    message: str
    count: int | None
    probability: float | None

    def matches(self, source: str, target: str, message: Any) -> bool:
        if self.count is not None and self.count <= 0:
            return False
        return (
            source in self.sources
            and target in self.targets
            and type(message).__name__ == self.message
        )


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


class Net:
    """All links between the World's nodes.

    Args:
        world: the World (clock, random streams, trace).
        latency_ms: mean one-way latency.
        jitter_ms: half-width of the uniform jitter around it.
    """

    def __init__(self, world: World, latency_ms: float = 1.0, jitter_ms: float = 0.0) -> None:
        assert latency_ms >= 0 and jitter_ms >= 0
        self.world = world
        self.latency_ms = latency_ms
        self.jitter_ms = jitter_ms
        self.graph = nx.DiGraph()
        self.handlers: dict[str, Node] = {}
        self.down: dict[str, bool] = {}
        self.paused: dict[str, list[Callable[[], None]]] = {}
        self._generation: dict[tuple[str, str], int] = {}
        self._silent: dict[tuple[str, str], bool] = {}
        self._last_delivery_ms: dict[tuple[str, str], float] = {}
        self._extra_ms: dict[tuple[str, str], float] = {}
        self._drops: list[DropRule] = []
        self._jitter = world.rng("net.jitter")
        self._drop_rng = world.rng("net.drop")

    # --- membership --------------------------------------------------------

    def add_node(self, name: str, handler: Node) -> None:
        if name in self.handlers:
            # A process restarted on a crashed node: same name, same links, new handler.
            assert self.down[name], f"duplicate node {name}"
            self.handlers[name] = handler
            return
        for other in self.handlers:
            self.graph.add_edge(name, other)
            self.graph.add_edge(other, name)
        self.graph.add_node(name)
        self.handlers[name] = handler
        self.down[name] = False

    @property
    def names(self) -> list[str]:
        return sorted(self.handlers)

    def is_up(self, name: str) -> bool:
        return not self.down[name]

    def is_paused(self, name: str) -> bool:
        return name in self.paused

    def reachable(self, source: str, target: str) -> bool:
        return self.graph.has_edge(source, target)

    # --- sending -----------------------------------------------------------

    def send(self, source: str, target: str, message: Any) -> None:
        """Put a message on the source→target connection."""
        assert source in self.handlers and target in self.handlers, (source, target)
        if self.down[source]:
            return  # A crashed node sends nothing.
        if source in self.paused:
            self.paused[source].append(lambda: self.send(source, target, message))
            return
        if source == target:
            # Loopback (a coordinator writing markers to its own partitions): no link to cut.
            self._schedule(0.0, self._deliver_local, target, message)
            return
        key = (source, target)
        pair = _pair(source, target)
        generation = self._generation.get(pair, 0)
        if self._silent.get(key):
            return
        if not self.graph.has_edge(source, target):
            self._go_silent(key, message, "partition")
            return
        if self.down[target]:
            # Connection refused: the sender hears a reset after a round trip.
            self._schedule(2 * self.latency_ms, self._notify_reset, source, target, generation)
            return
        if self._should_drop(source, target, message):
            self._go_silent(key, message, "drop")
            return
        delay = self.latency_ms + self._extra_ms.get(key, 0.0)
        if self.jitter_ms:
            delay = max(0.0, delay + self._jitter.uniform(-self.jitter_ms, self.jitter_ms))
        now = self.world.now_ms
        at = max(now + delay, self._last_delivery_ms.get(key, 0.0))
        self._last_delivery_ms[key] = at
        self._schedule(at - now, self._deliver, source, target, message, generation)

    def _schedule(self, delay_ms: float, callback: Callable[..., None], *args: Any) -> None:
        self.world.call_later(delay_ms, callback, *args)

    def _deliver(self, source: str, target: str, message: Any, generation: int) -> None:
        key = (source, target)
        if self._generation.get(_pair(source, target), 0) != generation or self._silent.get(key):
            return  # The connection was reset or went silent meanwhile.
        if self.down[target]:
            return
        if not self.graph.has_edge(source, target):
            self._go_silent(key, message, "partition")
            return
        if target in self.paused:
            self.paused[target].append(lambda: self._deliver(source, target, message, generation))
            return
        self.handlers[target].receive(source, message)

    def _deliver_local(self, node: str, message: Any) -> None:
        if self.down[node]:
            return
        if node in self.paused:
            self.paused[node].append(lambda: self._deliver_local(node, message))
            return
        self.handlers[node].receive(node, message)

    def _go_silent(self, key: tuple[str, str], message: Any, why: str) -> None:
        self._silent[key] = True
        self.world.trace(
            "net.lost", source=key[0], target=key[1], message=type(message).__name__, why=why
        )

    def _should_drop(self, source: str, target: str, message: Any) -> bool:
        for rule in self._drops:
            if not rule.matches(source, target, message):
                continue
            if rule.probability is not None and self._drop_rng.random() >= rule.probability:
                continue
            if rule.count is not None:
                rule.count -= 1
            return True
        return False

    def _notify_reset(self, node: str, peer: str, generation: int) -> None:
        """Tell `node` that its connection to `peer` was reset (if still relevant)."""
        if self.down[node] or self._generation.get(_pair(node, peer), 0) != generation:
            return
        if node in self.paused:
            self.paused[node].append(lambda: self.handlers[node].on_disconnect(peer))
            return
        self.handlers[node].on_disconnect(peer)

    # --- connection control --------------------------------------------------

    def reset(self, a: str, b: str) -> None:
        """Close the a–b connection: in-flight messages both ways are discarded.

        The closing side calls this itself (a client whose request timed
        out); the other side learns nothing, as with a half-open TCP link.
        """
        pair = _pair(a, b)
        self._generation[pair] = self._generation.get(pair, 0) + 1
        for key in ((a, b), (b, a)):
            self._silent.pop(key, None)
            self._last_delivery_ms.pop(key, None)

    def crash(self, name: str) -> None:
        """The node stops; every peer reachable from it hears a reset."""
        assert not self.down[name], f"{name} already down"
        self.down[name] = True
        self.paused.pop(name, None)
        for peer in self.names:
            if peer == name:
                continue
            pair = _pair(name, peer)
            generation = self._generation.get(pair, 0) + 1
            self.reset(name, peer)
            if not self.down[peer] and self.graph.has_edge(name, peer):
                self._schedule(self.latency_ms, self._notify_reset, peer, name, generation)

    def restart(self, name: str) -> None:
        assert self.down[name], f"{name} is not down"
        self.down[name] = False

    def pause(self, name: str) -> None:
        if name not in self.paused:
            self.paused[name] = []

    def resume(self, name: str) -> None:
        held = self.paused.pop(name, None)
        for action in held or ():
            action()

    # --- faults on links -----------------------------------------------------

    def cut_links(self, links: Iterable[tuple[str, str]]) -> None:
        """Cut each directed source→target link."""
        for source, target in links:
            if self.graph.has_edge(source, target):
                self.graph.remove_edge(source, target)

    def restore_links(self, links: Iterable[tuple[str, str]]) -> None:
        for source, target in links:
            self.graph.add_edge(source, target)

    def heal(self) -> None:
        """Restore all links, drops and delays (silent connections stay silent
        until their owner times out and reconnects, as with TCP)."""
        names = self.names
        for a in names:
            for b in names:
                if a != b:
                    self.graph.add_edge(a, b)
        self._drops.clear()
        self._extra_ms.clear()

    def add_drop(self, rule: DropRule) -> None:
        self._drops.append(rule)

    def remove_drop(self, rule: DropRule) -> None:
        if rule in self._drops:
            self._drops.remove(rule)

    def add_delay(self, source: str, target: str, extra_ms: float) -> None:
        assert extra_ms >= 0
        self._extra_ms[(source, target)] = self._extra_ms.get((source, target), 0.0) + extra_ms

    def remove_delay(self, source: str, target: str, extra_ms: float) -> None:
        left = self._extra_ms.get((source, target), 0.0) - extra_ms
        if left <= 1e-9:
            self._extra_ms.pop((source, target), None)
        else:
            self._extra_ms[(source, target)] = left


@dataclass
class _Pending:
    target: str
    on_response: Callable[[Any], None]
    on_error: Callable[[Errors], None]


class RpcClient:
    """One node's outstanding requests, matched to responses by request id.

    A request that gets no answer within its timeout closes the connection
    (Kafka's `NetworkClient.handleTimedOutRequests`): it fails with
    REQUEST_TIMED_OUT and every other request on that connection with
    NETWORK_EXCEPTION. A reset from the peer fails them all with
    NETWORK_EXCEPTION.
    """

    def __init__(self, world: World, net: Net, name: str) -> None:
        self.world = world
        self.net = net
        self.name = name
        self.pending: dict[int, _Pending] = {}
        self._next_id = 0

    def next_request_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def call(
        self,
        target: str,
        request: Any,
        timeout_ms: float,
        on_response: Callable[[Any], None],
        on_error: Callable[[Errors], None],
    ) -> None:
        """Send `request` (whose `request_id` came from `next_request_id`)."""
        request_id = request.request_id
        assert request_id not in self.pending, request_id
        self.pending[request_id] = _Pending(target, on_response, on_error)
        self.net.send(self.name, target, request)
        self.world.call_later(timeout_ms, self._expire, request_id)

    def in_flight(self, target: str) -> int:
        return sum(1 for p in self.pending.values() if p.target == target)

    def handle_response(self, source: str, response: Any) -> bool:
        """Dispatch a response; False if it answers nothing pending (late or stale)."""
        pending = self.pending.get(response.request_id)
        if pending is None or pending.target != source:
            return False
        del self.pending[response.request_id]
        pending.on_response(response)
        return True

    def on_disconnect(self, peer: str) -> None:
        self._fail_all(peer, Errors.NETWORK_EXCEPTION)

    def close_all(self) -> None:
        """Forget every outstanding request (the node crashed): no callbacks."""
        self.pending.clear()

    def _expire(self, request_id: int) -> None:
        pending = self.pending.get(request_id)
        if pending is None:
            return
        self.world.trace("rpc.timeout", node=self.name, target=pending.target, request=request_id)
        self.net.reset(self.name, pending.target)
        del self.pending[request_id]
        pending.on_error(Errors.REQUEST_TIMED_OUT)
        self._fail_all(pending.target, Errors.NETWORK_EXCEPTION)

    def _fail_all(self, target: str, error: Errors) -> None:
        doomed = sorted(rid for rid, p in self.pending.items() if p.target == target)
        for request_id in doomed:
            pending = self.pending.pop(request_id)
            pending.on_error(error)
