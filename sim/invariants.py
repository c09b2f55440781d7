"""Runtime invariants of Kafka replication, checked while a simulation runs.

After the TLA+ specifications of Kafka's replication protocol (the
`kafka-specification` models of KIP-101/279/320 and KIP-966): properties
that must hold in every reachable state, whatever faults happen, as long as
brokers keep what they acknowledged to their own disk writes. A violation
is a simulator bug, never a Kafka anomaly: the run stops with
`InvariantViolation` naming the invariant, the state, and the trace tail.

1. `single-leader-per-epoch`: at most one broker leads a partition in a given
   leader epoch.
2. `leader-epochs-grow`: the controller's leader epoch of a partition only
   grows, and so does each replica's.
3. `clean-leader-in-isr`: a leader elected cleanly is a member of the ISR.
4. `hw-below-isr-leo`: the leader's high watermark never exceeds the log end
   of any live ISR member (members that lost unflushed data to a power loss
   are exempt: that is KIP-966's "last replica standing" problem, an anomaly
   Kafka allows, not a simulator bug).
5. `hw-monotonic`: a leader's high watermark never decreases within its epoch.
6. `committed-survives-clean-election`: a record below a clean leader's high
   watermark is still there when another replica becomes a clean leader —
   unless an unclean election or a power loss intervened (both are anomalies
   Kafka documents).

Invariants 4 and 5 are sampled every `SAMPLE_MS` of simulated time; the
others are checked on the trace events that change what they speak of.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sim.world import TraceEvent

if TYPE_CHECKING:
    from sim.runtime import Cluster

SAMPLE_MS = 50.0
TRACE_TAIL = 25
ENABLED_BY_DEFAULT = [False]
"""Tests switch this on (tests/conftest.py) so every test run checks invariants."""


class InvariantViolation(AssertionError):
    """A replication invariant failed: the simulator, not Kafka, is wrong."""

    def __init__(self, name: str, state: str, tail: list[str]) -> None:
        # All three go to `args`: SimPy re-raises a process's exception as
        # `type(exc)(*exc.args)`, which must rebuild it whole.
        super().__init__(name, state, tail)
        self.name = name
        self.state = state
        self.tail = list(tail)

    def __str__(self) -> str:
        text = "\n  ".join(self.tail)
        return f"invariant {self.name} violated: {self.state}\n  trace tail:\n  {text}"


@dataclass
class _PartitionFacts:
    controller_epoch: int = -1
    leaders: dict[int, int] = field(default_factory=dict)  # leader epoch -> broker
    committed: int = 0  # the highest HW a clean leader reached
    tainted: bool = False  # an unclean election or a power loss happened here


class InvariantMonitor:
    """Watches one cluster; raises `InvariantViolation` at the first failure."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.world = cluster.world
        self.partitions: dict[tuple[str, int], _PartitionFacts] = {}
        self.replica_epochs: dict[tuple[int, str, int], int] = {}
        self.leader_hw: dict[tuple[int, str, int], tuple[int, int]] = {}  # -> (epoch, hw)
        self.power_lost: set[int] = set()
        self.checks = 0
        self.world.listeners.append(self.on_event)
        self.world.process(self._sampler())

    def _facts(self, topic: str, partition: int) -> _PartitionFacts:
        key = (topic, partition)
        facts = self.partitions.get(key)
        if facts is None:
            facts = self.partitions[key] = _PartitionFacts()
        return facts

    def fail(self, name: str, state: str) -> None:
        tail = [e.canonical() for e in self.world.events[-TRACE_TAIL:]]
        raise InvariantViolation(name, state, tail)

    # --- event-driven checks --------------------------------------------------------

    def on_event(self, event: TraceEvent) -> None:
        handler = _HANDLERS.get(event.kind)
        if handler is not None:
            self.checks += 1
            handler(self, event)

    def _on_elect(self, event: TraceEvent) -> None:
        topic, partition = event.field("topic"), event.field("partition")
        facts = self._facts(topic, partition)
        epoch, leader = event.field("epoch"), event.field("leader")
        if epoch <= facts.controller_epoch and facts.controller_epoch >= 0:
            self.fail(
                "leader-epochs-grow",
                f"{topic}/{partition}: controller epoch {facts.controller_epoch} -> {epoch}",
            )
        facts.controller_epoch = epoch
        if event.field("unclean"):
            facts.tainted = True
        elif leader >= 0 and leader not in event.field("isr"):
            self.fail(
                "clean-leader-in-isr",
                f"{topic}/{partition}: leader {leader} not in ISR {event.field('isr')}",
            )

    def _on_become_leader(self, event: TraceEvent) -> None:
        topic, partition = event.field("topic"), event.field("partition")
        broker, epoch = event.field("broker"), event.field("epoch")
        facts = self._facts(topic, partition)
        holder = facts.leaders.get(epoch)
        if holder is not None and holder != broker:
            self.fail(
                "single-leader-per-epoch",
                f"{topic}/{partition} epoch {epoch}: broker {holder} and broker {broker}",
            )
        facts.leaders[epoch] = broker
        self._check_replica_epoch(broker, topic, partition, epoch)
        if not facts.tainted and event.field("leo") < facts.committed:
            self.fail(
                "committed-survives-clean-election",
                f"{topic}/{partition}: broker {broker} leads epoch {epoch} with LEO {event.field('leo')} "
                f"below the committed offset {facts.committed}",
            )

    def _check_replica_epoch(self, broker: int, topic: str, partition: int, epoch: int) -> None:
        key = (broker, topic, partition)
        if epoch < self.replica_epochs.get(key, -1):
            self.fail(
                "leader-epochs-grow",
                f"broker {broker} {topic}/{partition}: epoch {self.replica_epochs[key]} -> {epoch}",
            )
        self.replica_epochs[key] = epoch

    def _on_truncate(self, event: TraceEvent) -> None:
        broker = event.field("broker")
        if "power loss" in str(event.field("reason")):
            self.power_lost.add(broker)
            self._facts(event.field("topic"), event.field("partition")).tainted = True

    # --- sampled checks --------------------------------------------------------------------

    def _sampler(self):
        """Check HW invariants every SAMPLE_MS of simulated time, forever."""
        while True:  # Event loop: bounded by the run's end.
            yield self.world.timeout(SAMPLE_MS)
            self.sample()

    def sample(self) -> None:
        brokers = self.cluster.brokers
        for broker in brokers:
            if not broker.alive:
                continue
            for key in sorted(broker.replicas):
                replica = broker.replicas[key]
                if replica.role != "leader":
                    continue
                self._check_leader_hw(broker.id, key, replica, brokers)

    def _check_leader_hw(
        self, broker_id: int, key: tuple[str, int], replica: Any, brokers: list[Any]
    ) -> None:
        hw, epoch = replica.log.hw, replica.leader_epoch
        previous = self.leader_hw.get((broker_id, *key))
        if previous is not None and previous[0] == epoch and hw < previous[1]:
            self.fail(
                "hw-monotonic",
                f"broker {broker_id} {key[0]}/{key[1]} epoch {epoch}: HW {previous[1]} -> {hw}",
            )
        self.leader_hw[(broker_id, *key)] = (epoch, hw)
        facts = self._facts(*key)
        if facts.tainted:
            return  # After an unclean election or a power loss, Kafka itself promises less.
        for member in replica.isr:
            other = brokers[member]
            if not other.alive or member in self.power_lost or key not in other.replicas:
                continue
            if other.replicas[key].log.leo < hw:
                self.fail(
                    "hw-below-isr-leo",
                    f"{key[0]}/{key[1]}: leader broker {broker_id} HW {hw} > LEO "
                    f"{other.replicas[key].log.leo} of ISR member {member}",
                )
        facts.committed = max(facts.committed, hw)


_HANDLERS = {
    "controller.elect": InvariantMonitor._on_elect,
    "broker.become_leader": InvariantMonitor._on_become_leader,
    "broker.truncate": InvariantMonitor._on_truncate,
}
