"""The controller: broker liveness, leader election, ISR changes, metadata.

A KRaft controller quorum, reduced to one node named `controller` (it can be
partitioned or paused like any node). It:

- fences a broker whose heartbeats stop for `broker.session.timeout.ms`, and
  unfences it when it heartbeats again (a restarted broker re-registers with
  a new incarnation, accepted once the old session is gone);
- on fencing, removes the broker from every ISR — except the last member,
  which stays (without KIP-966 ELR the ISR is never emptied) — and elects a
  new leader where it led (`PartitionChangeBuilder.electAnyLeader`): the
  first replica in assignment order that is in the ISR and unfenced; if
  none, with `unclean.leader.election.enable`, the first unfenced replica,
  whose ISR becomes just itself; otherwise the partition goes offline
  (leader -1). Every leader change bumps the leader epoch;
- applies AlterPartition proposals from leaders whose epochs match;
- publishes a new metadata image to every unfenced broker after each change.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sim.net import Net
from sim.protocol import (
    AlterPartitionRequest,
    AlterPartitionResponse,
    BrokerHeartbeat,
    BrokerHeartbeatResponse,
    Errors,
    MetadataImage,
    MetadataUpdate,
    PartitionState,
)
from sim.world import World

NAME = "controller"


@dataclass
class _BrokerSession:
    incarnation: int
    last_heartbeat_ms: float
    fenced: bool


class Controller:
    """Cluster metadata and leader election."""

    def __init__(
        self,
        world: World,
        net: Net,
        broker_ids: list[int],
        session_timeout_ms: float = 9000,
        unclean_leader_election: bool = False,
    ) -> None:
        self.world = world
        self.net = net
        self.name = NAME
        self.session_timeout_ms = session_timeout_ms
        self.unclean_leader_election = unclean_leader_election
        self.broker_ids = sorted(broker_ids)
        self.sessions = {b: _BrokerSession(0, 0.0, False) for b in self.broker_ids}
        self.partitions: dict[tuple[str, int], PartitionState] = {}
        self.min_insync: dict[str, int] = {}
        self.version = 0
        self.alive = True
        net.add_node(NAME, self)

    def __repr__(self) -> str:
        return f"Controller(version={self.version}, fenced={self.fenced()})"

    def fenced(self) -> list[int]:
        return [b for b in self.broker_ids if self.sessions[b].fenced]

    def live(self) -> list[int]:
        return [b for b in self.broker_ids if not self.sessions[b].fenced]

    # --- topics ------------------------------------------------------------------

    def create_topic(
        self, topic: str, partitions: int, replication_factor: int, min_insync: int
    ) -> None:
        """Assign replicas of partition p to brokers (p + i) % brokers, leader first."""
        assert topic not in self.min_insync, f"topic {topic} exists"
        n = len(self.broker_ids)
        assert 1 <= replication_factor <= n, (replication_factor, n)
        self.min_insync[topic] = min_insync
        for p in range(partitions):
            replicas = tuple(self.broker_ids[(p + i) % n] for i in range(replication_factor))
            self.partitions[(topic, p)] = PartitionState(
                topic, p, replicas, replicas, replicas[0], 0, 0
            )
            self.world.trace(
                "controller.elect",
                topic=topic,
                partition=p,
                leader=replicas[0],
                epoch=0,
                unclean=False,
                isr=replicas,
            )
        self.publish()

    def image(self) -> MetadataImage:
        return MetadataImage(
            self.version,
            tuple(self.partitions[k] for k in sorted(self.partitions)),
            tuple(self.live()),
            tuple(sorted(self.min_insync.items())),
        )

    def publish(self) -> None:
        self.version += 1
        update = MetadataUpdate(self.image())
        for broker_id in self.live():
            self.net.send(NAME, f"broker-{broker_id}", update)

    # --- processes -----------------------------------------------------------------

    def start(self) -> None:
        self.world.process(self._liveness_loop())

    def _liveness_loop(self):
        """Fence brokers whose session expired, forever."""
        period = min(1000.0, self.session_timeout_ms / 4)
        while True:  # Event loop: bounded by the run's end.
            yield self.world.timeout(period)
            if not self.alive or self.net.is_paused(NAME):
                continue
            now = self.world.now_ms
            for broker_id in self.broker_ids:
                session = self.sessions[broker_id]
                if not session.fenced and now - session.last_heartbeat_ms > self.session_timeout_ms:
                    self.fence(broker_id)

    # --- the wire --------------------------------------------------------------------

    def receive(self, source: str, message: Any) -> None:
        if isinstance(message, BrokerHeartbeat):
            self._on_heartbeat(source, message)
        elif isinstance(message, AlterPartitionRequest):
            self._on_alter_partition(source, message)
        else:
            raise AssertionError(f"controller: unexpected {type(message).__name__}")

    def on_disconnect(self, peer: str) -> None:
        return None  # Liveness is decided by heartbeats alone.

    def _on_heartbeat(self, source: str, heartbeat: BrokerHeartbeat) -> None:
        session = self.sessions[heartbeat.broker_id]
        now = self.world.now_ms
        if heartbeat.incarnation != session.incarnation:
            if not session.fenced:
                return  # The old incarnation's session must expire first.
            session.incarnation = heartbeat.incarnation
        session.last_heartbeat_ms = now
        # Answer before publishing: a restarted broker ignores metadata until it knows it
        # is registered, so the answer must reach it before the image unfencing it (FIFO).
        self.net.send(NAME, source, BrokerHeartbeatResponse(heartbeat.request_id, False))
        if session.fenced:
            self.unfence(heartbeat.broker_id)
        elif 0 <= heartbeat.metadata_version < self.version:
            self.net.send(NAME, source, MetadataUpdate(self.image()))  # It missed an update.

    def _on_alter_partition(self, source: str, request: AlterPartitionRequest) -> None:
        key = (request.topic, request.partition)
        state = self.partitions.get(key)
        error = Errors.NONE
        if state is None:
            error = Errors.UNKNOWN_TOPIC_OR_PARTITION
        elif state.leader != request.broker_id or state.leader_epoch != request.leader_epoch:
            error = Errors.FENCED_LEADER_EPOCH
        elif state.partition_epoch != request.partition_epoch:
            error = Errors.INVALID_UPDATE_VERSION
        elif any(self.sessions[b].fenced for b in request.new_isr if b not in state.isr):
            error = Errors.INELIGIBLE_REPLICA  # KRaft: a fenced broker cannot join an ISR.
        if error != Errors.NONE:
            self.net.send(NAME, source, AlterPartitionResponse(request.request_id, error, state))
            return
        assert state is not None
        new_state = replace(state, isr=request.new_isr, partition_epoch=state.partition_epoch + 1)
        self.partitions[key] = new_state
        self.world.trace(
            "controller.isr",
            topic=request.topic,
            partition=request.partition,
            isr=request.new_isr,
            leader=state.leader,
            epoch=state.leader_epoch,
        )
        self.net.send(
            NAME, source, AlterPartitionResponse(request.request_id, Errors.NONE, new_state)
        )
        self.publish()

    # --- fencing and election -------------------------------------------------------------

    def fence(self, broker_id: int) -> None:
        self.sessions[broker_id].fenced = True
        self.world.trace("controller.fence", broker=broker_id)
        for key in sorted(self.partitions):
            state = self.partitions[key]
            if broker_id not in state.replicas:
                continue
            isr = state.isr
            if broker_id in isr and len(isr) > 1:
                isr = tuple(b for b in isr if b != broker_id)
            if state.leader == broker_id:
                self.partitions[key] = self._elect(replace(state, isr=isr))
            elif isr != state.isr:
                self.partitions[key] = replace(
                    state, isr=isr, partition_epoch=state.partition_epoch + 1
                )
        self.publish()

    def unfence(self, broker_id: int) -> None:
        self.sessions[broker_id].fenced = False
        self.world.trace("controller.unfence", broker=broker_id)
        for key in sorted(self.partitions):
            state = self.partitions[key]
            if state.leader < 0 and broker_id in state.replicas:
                self.partitions[key] = self._elect(state)
        self.publish()

    def _elect(self, state: PartitionState) -> PartitionState:
        """Choose a leader (`electAnyLeader`); bump the epoch when it changes."""
        live = [b for b in state.replicas if not self.sessions[b].fenced]
        clean = [b for b in live if b in state.isr]
        unclean = False
        if clean:
            leader, isr = clean[0], state.isr
        elif live and self.unclean_leader_election:
            leader, isr, unclean = live[0], (live[0],), True
        else:
            leader, isr = -1, state.isr
        if leader == state.leader:
            return state
        epoch = state.leader_epoch + 1
        self.world.trace(
            "controller.elect",
            topic=state.topic,
            partition=state.partition,
            leader=leader,
            epoch=epoch,
            unclean=unclean,
            isr=isr,
        )
        return replace(
            state,
            leader=leader,
            isr=isr,
            leader_epoch=epoch,
            partition_epoch=state.partition_epoch + 1,
        )

    def elect_if_offline(self) -> None:
        """Re-run election for offline partitions (after a config change)."""
        changed = False
        for key in sorted(self.partitions):
            state = self.partitions[key]
            if state.leader < 0:
                new_state = self._elect(state)
                changed |= new_state is not state
                self.partitions[key] = new_state
        if changed:
            self.publish()
