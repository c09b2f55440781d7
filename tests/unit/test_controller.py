"""The controller: fencing by heartbeats, clean and unclean election, epochs, AlterPartition.

Driven directly with a World, a Net and fake brokers that heartbeat on demand
and record what the controller sends them.
"""

from typing import Any

from sim.cluster.controller import Controller
from sim.net import Net
from sim.protocol import (
    AlterPartitionRequest,
    AlterPartitionResponse,
    BrokerHeartbeat,
    BrokerHeartbeatResponse,
    Errors,
    MetadataUpdate,
    PartitionState,
)
from sim.world import World

SESSION_MS = 1_000.0
HEARTBEAT_MS = 100.0


class FakeBroker:
    """Heartbeats while `beating`; records the controller's messages."""

    def __init__(self, world: World, net: Net, broker_id: int) -> None:
        self.world = world
        self.net = net
        self.id = broker_id
        self.name = f"broker-{broker_id}"
        self.incarnation = 0
        self.beating = True
        self.received: list[Any] = []
        self._request_id = 0
        net.add_node(self.name, self)

    def receive(self, source: str, message: Any) -> None:
        self.received.append(message)

    def on_disconnect(self, peer: str) -> None:
        return None

    def next_id(self) -> int:
        self._request_id += 1
        return self._request_id

    def heartbeat(self) -> None:
        self.net.send(
            self.name, "controller", BrokerHeartbeat(self.next_id(), self.id, self.incarnation)
        )

    def heartbeat_loop(self):
        while True:  # Event loop: bounded by the test's run.
            if self.beating:
                self.heartbeat()
            yield self.world.timeout(HEARTBEAT_MS)

    def alter_partition(self, state: PartitionState, new_isr: tuple[int, ...], **overrides: Any):
        fields = dict(
            request_id=self.next_id(),
            broker_id=self.id,
            topic=state.topic,
            partition=state.partition,
            leader_epoch=state.leader_epoch,
            partition_epoch=state.partition_epoch,
            new_isr=new_isr,
        )
        fields.update(overrides)
        self.net.send(self.name, "controller", AlterPartitionRequest(**fields))

    def images(self) -> list[Any]:
        return [m.image for m in self.received if isinstance(m, MetadataUpdate)]

    def alter_responses(self) -> list[AlterPartitionResponse]:
        return [m for m in self.received if isinstance(m, AlterPartitionResponse)]


class Harness:
    def __init__(self, brokers: int = 3, unclean: bool = False) -> None:
        self.world = World(1)
        self.net = Net(self.world, 1.0, 0.0)
        self.controller = Controller(
            self.world, self.net, list(range(brokers)), SESSION_MS, unclean_leader_election=unclean
        )
        self.brokers = [FakeBroker(self.world, self.net, b) for b in range(brokers)]
        self.controller.start()
        for broker in self.brokers:
            self.world.process(broker.heartbeat_loop())

    def run_for(self, ms: float) -> None:
        self.world.env.run(until=self.world.now_ms + ms)

    def state(self, topic: str = "t", partition: int = 0) -> PartitionState:
        return self.controller.partitions[(topic, partition)]

    def stop(self, broker_id: int) -> None:
        """The broker's heartbeats stop (crash, or cut from the controller)."""
        self.brokers[broker_id].beating = False

    def fence_now(self, broker_id: int) -> None:
        self.stop(broker_id)
        self.controller.fence(broker_id)

    def elections(self) -> list[tuple[int, int, bool, tuple[int, ...]]]:
        return [
            (e.field("leader"), e.field("epoch"), e.field("unclean"), e.field("isr"))
            for e in self.world.events
            if e.kind == "controller.elect" and e.field("topic") == "t"
        ]


def _shrink_isr(h: Harness, new_isr: tuple[int, ...]) -> None:
    state = h.state()
    h.brokers[state.leader].alter_partition(state, new_isr)
    h.run_for(10.0)
    assert h.state().isr == new_isr


# --- topics and metadata ---------------------------------------------------------------


def test_replicas_of_partition_p_are_brokers_p_plus_i_with_the_first_as_leader() -> None:
    h = Harness(brokers=3)
    h.controller.create_topic("t", partitions=4, replication_factor=2, min_insync=1)
    assert [h.state("t", p).replicas for p in range(4)] == [(0, 1), (1, 2), (2, 0), (0, 1)]
    assert [h.state("t", p).leader for p in range(4)] == [0, 1, 2, 0]
    assert all(h.state("t", p).isr == h.state("t", p).replicas for p in range(4))
    assert all(h.state("t", p).leader_epoch == 0 for p in range(4))


def test_metadata_goes_to_every_unfenced_broker_and_only_to_them() -> None:
    h = Harness(brokers=3)
    h.controller.create_topic("t", 1, 3, 2)
    h.run_for(10.0)
    assert [len(b.images()) for b in h.brokers] == [1, 1, 1]
    image = h.brokers[0].images()[-1]
    assert image.partition("t", 0) == h.state()
    assert image.topic_configs == (("t", 2),)
    h.fence_now(2)
    h.run_for(10.0)
    assert [len(b.images()) for b in h.brokers] == [2, 2, 1]
    assert h.brokers[0].images()[-1].live_brokers == (0, 1)


# --- fencing -----------------------------------------------------------------------------


def test_a_broker_is_fenced_once_its_heartbeats_stop_for_the_session_timeout() -> None:
    h = Harness()
    h.controller.create_topic("t", 1, 3, 1)
    h.run_for(500.0)
    h.stop(1)  # last heartbeat sent at 400 ms, received at 401 ms
    h.run_for(SESSION_MS - 100.0)  # t = 1400: 999 ms of silence
    assert h.controller.fenced() == []
    h.run_for(500.0)
    assert h.controller.fenced() == [1]
    fenced_at = [e.time_ms for e in h.world.events if e.kind == "controller.fence"]
    assert len(fenced_at) == 1 and 401.0 + SESSION_MS < fenced_at[0] <= 401.0 + SESSION_MS + 250.0


def test_brokers_that_keep_heartbeating_are_never_fenced() -> None:
    h = Harness()
    h.controller.create_topic("t", 1, 3, 1)
    h.run_for(20 * SESSION_MS)
    assert h.controller.fenced() == []
    assert h.elections() == [(0, 0, False, (0, 1, 2))]


def test_a_fenced_follower_leaves_the_isr_and_the_partition_epoch_moves() -> None:
    h = Harness()
    h.controller.create_topic("t", 1, 3, 1)
    h.fence_now(1)
    state = h.state()
    assert (state.leader, state.isr) == (0, (0, 2))
    assert (state.leader_epoch, state.partition_epoch) == (0, 1)


# --- election ------------------------------------------------------------------------------


def test_clean_election_picks_the_first_isr_replica_in_assignment_order_not_lowest_id() -> None:
    h = Harness()
    h.controller.create_topic("t", partitions=2, replication_factor=3, min_insync=1)
    assert h.state("t", 1).replicas == (1, 2, 0)
    h.fence_now(1)
    state = h.state("t", 1)
    assert (state.leader, state.isr, state.leader_epoch) == (2, (2, 0), 1)


def test_clean_election_skips_a_replica_that_is_not_in_the_isr() -> None:
    h = Harness()
    h.controller.create_topic("t", 1, 3, 1)
    _shrink_isr(h, (0, 2))
    h.fence_now(0)
    state = h.state()
    assert (state.leader, state.isr) == (2, (2,))


def test_clean_election_skips_a_fenced_replica() -> None:
    h = Harness()
    h.controller.create_topic("t", 1, 3, 1)
    h.fence_now(1)
    h.fence_now(0)
    assert (h.state().leader, h.state().isr) == (2, (2,))


def test_the_last_isr_member_stays_in_the_isr_and_the_partition_goes_offline() -> None:
    h = Harness()
    h.controller.create_topic("t", 1, 3, 1)
    _shrink_isr(h, (0,))
    h.fence_now(0)
    state = h.state()
    assert state.leader == -1
    assert state.isr == (0,), "without ELR the ISR is never emptied"
    assert state.leader_epoch == 1
    assert h.elections()[-1] == (-1, 1, False, (0,))


def test_without_unclean_election_a_live_out_of_sync_replica_is_never_elected() -> None:
    h = Harness()
    h.controller.create_topic("t", 1, 3, 1)
    _shrink_isr(h, (0,))
    h.fence_now(0)
    h.run_for(10 * SESSION_MS)
    assert h.controller.fenced() == [0]
    assert h.state().leader == -1
    h.controller.elect_if_offline()
    assert h.state().leader == -1


def test_unclean_election_picks_the_first_live_replica_and_makes_it_the_whole_isr() -> None:
    h = Harness(unclean=True)
    h.controller.create_topic("t", 1, 3, 1)
    _shrink_isr(h, (0,))
    h.fence_now(0)
    state = h.state()
    assert (state.leader, state.isr, state.leader_epoch) == (1, (1,), 1)
    assert h.elections()[-1] == (1, 1, True, (1,))


def test_unclean_election_prefers_an_in_sync_replica_when_there_is_one() -> None:
    h = Harness(unclean=True)
    h.controller.create_topic("t", 1, 3, 1)
    _shrink_isr(h, (0, 2))
    h.fence_now(0)
    assert (h.state().leader, h.state().isr) == (2, (2,))
    assert h.elections()[-1][2] is False


def test_every_leader_change_bumps_the_leader_epoch_by_one() -> None:
    h = Harness()
    h.controller.create_topic("t", 1, 3, 1)
    h.run_for(200.0)
    h.fence_now(0)  # 0 -> 1
    h.fence_now(1)  # 1 -> 2
    h.fence_now(2)  # 2 -> offline
    assert [(leader, epoch) for leader, epoch, _, _ in h.elections()] == [
        (0, 0),
        (1, 1),
        (2, 2),
        (-1, 3),
    ]
    h.brokers[2].beating = True
    h.run_for(300.0)  # 2 heartbeats again: unfenced, re-elected
    assert (h.state().leader, h.state().leader_epoch) == (2, 4)


def test_a_change_that_keeps_the_leader_keeps_the_leader_epoch() -> None:
    h = Harness()
    h.controller.create_topic("t", 1, 3, 1)
    h.fence_now(2)
    _shrink_isr(h, (0,))
    assert h.state().leader_epoch == 0
    assert h.state().partition_epoch == 2


# --- restarts ------------------------------------------------------------------------------


def test_a_restarted_broker_is_unfenced_and_its_offline_partition_reelected() -> None:
    h = Harness()
    h.controller.create_topic("t", 1, 3, 1)
    _shrink_isr(h, (0,))
    h.stop(0)
    h.run_for(2 * SESSION_MS)
    assert h.controller.fenced() == [0]
    assert h.state().leader == -1
    h.brokers[0].incarnation = 1  # the restarted process
    h.brokers[0].beating = True
    h.run_for(300.0)
    assert h.controller.fenced() == []
    state = h.state()
    assert (state.leader, state.isr, state.leader_epoch) == (0, (0,), 2)
    assert h.brokers[0].images()[-1].partition("t", 0) == state


def test_a_new_incarnation_is_ignored_until_the_old_session_expires() -> None:
    h = Harness()
    h.controller.create_topic("t", 1, 3, 1)
    h.run_for(300.0)
    broker = h.brokers[0]
    broker.incarnation = 1  # crashed and restarted within the session
    answers_before = sum(isinstance(m, BrokerHeartbeatResponse) for m in broker.received)
    h.run_for(SESSION_MS - 200.0)
    assert h.controller.fenced() == []
    assert h.state().leader == 0
    assert sum(isinstance(m, BrokerHeartbeatResponse) for m in broker.received) == answers_before
    h.run_for(SESSION_MS)
    assert h.state().leader == 1, "the old session expired: 0 was fenced, 1 elected"
    assert h.controller.fenced() == []  # then the new incarnation registered
    assert h.controller.sessions[0].incarnation == 1
    assert sum(isinstance(m, BrokerHeartbeatResponse) for m in broker.received) > answers_before


def test_the_heartbeat_answer_reaches_a_broker_before_the_image_that_unfences_it() -> None:
    h = Harness()
    h.controller.create_topic("t", 1, 3, 1)
    h.stop(0)
    h.run_for(2 * SESSION_MS)
    broker = h.brokers[0]
    broker.received.clear()
    broker.incarnation = 1
    broker.heartbeat()
    h.run_for(10.0)
    kinds = [type(m).__name__ for m in broker.received]
    assert kinds == ["BrokerHeartbeatResponse", "MetadataUpdate"]


# --- AlterPartition --------------------------------------------------------------------------


def test_alter_partition_from_the_leader_at_current_epochs_is_applied_and_published() -> None:
    h = Harness()
    h.controller.create_topic("t", 1, 3, 1)
    h.run_for(10.0)
    before = h.state()
    h.brokers[0].alter_partition(before, (0, 2))
    h.run_for(10.0)
    (response,) = h.brokers[0].alter_responses()
    assert response.error == Errors.NONE
    assert response.state == h.state()
    assert (h.state().isr, h.state().partition_epoch, h.state().leader_epoch) == ((0, 2), 1, 0)
    assert h.brokers[1].images()[-1].partition("t", 0).isr == (0, 2)


def test_alter_partition_with_a_stale_leader_epoch_is_fenced() -> None:
    h = Harness()
    h.controller.create_topic("t", 1, 3, 1)
    h.fence_now(0)
    h.brokers[0].beating = True
    h.run_for(300.0)  # 0 is back as a follower; 1 leads in epoch 1
    h.brokers[1].alter_partition(h.state(), (1, 2), leader_epoch=0)
    h.run_for(10.0)
    (response,) = h.brokers[1].alter_responses()
    assert response.error == Errors.FENCED_LEADER_EPOCH
    assert response.state == h.state()
    assert h.state().isr == (1, 2)


def test_alter_partition_from_a_broker_that_is_not_the_leader_is_fenced() -> None:
    h = Harness()
    h.controller.create_topic("t", 1, 3, 1)
    h.brokers[1].alter_partition(h.state(), (1, 2), broker_id=1)
    h.run_for(10.0)
    assert h.brokers[1].alter_responses()[0].error == Errors.FENCED_LEADER_EPOCH
    assert h.state().isr == (0, 1, 2)


def test_alter_partition_with_a_stale_partition_epoch_is_an_invalid_update_version() -> None:
    h = Harness()
    h.controller.create_topic("t", 1, 3, 1)
    stale = h.state()
    _shrink_isr(h, (0, 1))
    h.brokers[0].alter_partition(stale, (0,))
    h.run_for(10.0)
    responses = h.brokers[0].alter_responses()
    assert responses[-1].error == Errors.INVALID_UPDATE_VERSION
    assert h.state().isr == (0, 1)


def test_alter_partition_cannot_add_a_fenced_broker_to_the_isr() -> None:
    h = Harness()
    h.controller.create_topic("t", 1, 3, 1)
    h.fence_now(2)
    h.brokers[0].alter_partition(h.state(), (0, 1, 2))
    h.run_for(10.0)
    assert h.brokers[0].alter_responses()[-1].error == Errors.INELIGIBLE_REPLICA
    assert h.state().isr == (0, 1)


def test_alter_partition_for_an_unknown_partition_is_unknown_topic_or_partition() -> None:
    h = Harness()
    h.controller.create_topic("t", 1, 3, 1)
    h.brokers[0].alter_partition(h.state(), (0,), topic="nope")
    h.run_for(10.0)
    assert h.brokers[0].alter_responses()[-1].error == Errors.UNKNOWN_TOPIC_OR_PARTITION
