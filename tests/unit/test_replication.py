"""Replication end to end: a `sim.Cluster`, a producer, faults, and the replicas' logs."""

import sim
from sim.cluster.broker import Broker, BrokerConfig
from sim.cluster.log import PartitionLog
from sim.cluster.partition import FOLLOWER, LEADER, Replica
from sim.net import Net
from sim.protocol import (
    NO_PRODUCER_ID,
    Errors,
    FetchPartition,
    FetchPartitionData,
    FetchRequest,
    LogBatch,
    RecordBatch,
)
from sim.runtime import Cluster
from sim.world import World

TP = ("t", 0)


def _replica(cluster: Cluster, broker_id: int):
    return cluster.brokers[broker_id].replicas[TP]


def _record_ids(cluster: Cluster, broker_id: int) -> list[int]:
    log = _replica(cluster, broker_id).log
    return log.records_up_to(log.leo)[1]


def _events(cluster: Cluster, kind: str, since_ms: float = 0.0) -> list:
    return [e for e in cluster.world.events if e.kind == kind and e.time_ms >= since_ms]


def _send(producer, count: int, value: bytes = b"x", timeout: float = 30) -> list[int]:
    return [producer.send("t", value=value).get(timeout=timeout).offset for _ in range(count)]


def test_followers_catch_up_and_the_hw_reaches_the_leo_everywhere() -> None:
    cluster = sim.Cluster(brokers=3, seed=1)
    cluster.create_topic("t", partitions=1, replication_factor=3, min_insync_replicas=2)
    producer = sim.KafkaProducer(cluster=cluster, acks="all", linger_ms=5)
    futures = [producer.send("t", value=b"v") for _ in range(50)]
    producer.flush()
    assert sorted(f.get(timeout=1).offset for f in futures) == list(range(50))
    cluster.run_for(2_000)
    leader = _replica(cluster, 0)
    assert leader.role == LEADER
    assert (leader.log.leo, leader.log.hw) == (50, 50)
    for broker_id in (1, 2):
        follower = _replica(cluster, broker_id)
        assert follower.role == FOLLOWER
        assert (follower.log.leo, follower.log.hw) == (50, 50)
        assert follower.log.batches == leader.log.batches
    assert cluster.controller.partitions[TP].isr == (0, 1, 2)


def test_acks_all_is_answered_only_after_every_isr_member_has_the_batch() -> None:
    cluster = sim.Cluster(brokers=3, seed=2)
    cluster.create_topic("t", partitions=1, replication_factor=3, min_insync_replicas=2)
    producer = sim.KafkaProducer(cluster=cluster, acks="all")
    _send(producer, 1)
    cluster.run_for(1_000)
    cluster.pause("broker-2", duration_ms=6_000)  # an ISR member that stops fetching
    future = producer.send("t", value=b"x")
    cluster.run_for(5_000)
    assert not future.is_done, "the HW waits for broker-2, still in the ISR"
    assert _replica(cluster, 0).log.leo == 2
    assert _replica(cluster, 0).log.hw == 1
    assert future.get(timeout=10).offset == 1
    assert cluster.world.now_ms > 6_000
    assert _replica(cluster, 2).log.leo == 2


def test_isr_shrinks_after_replica_lag_time_max_ms_and_expands_after_heal() -> None:
    lag_ms = 2_000.0
    cluster = sim.Cluster(brokers=3, seed=1, replica_lag_time_max_ms=lag_ms)
    cluster.create_topic("t", partitions=1, replication_factor=3, min_insync_replicas=2)
    producer = sim.KafkaProducer(cluster=cluster, acks="all")
    _send(producer, 1)
    cluster.run_for(1_000)
    cut_at = cluster.world.now_ms
    cluster.partition(isolate="broker-2", from_=["broker-0"])
    for _ in range(20):  # keep the leader's LEO moving so broker-2 falls behind
        producer.send("t", value=b"x")
        cluster.run_for(100)
    assert cluster.world.now_ms >= cut_at + lag_ms - 100
    producer.flush()
    shrinks = [e for e in _events(cluster, "controller.isr") if e.field("isr") == (0, 1)]
    assert len(shrinks) == 1
    assert cut_at + lag_ms - 500 < shrinks[0].time_ms <= cut_at + lag_ms + lag_ms / 2 + 600
    assert _replica(cluster, 0).isr == (0, 1)
    assert _replica(cluster, 0).log.hw == _replica(cluster, 0).log.leo == 21
    assert _replica(cluster, 2).log.leo < 21

    healed_at = cluster.world.now_ms
    cluster.heal()
    cluster.run_for(40_000)  # the silent fetch times out (30 s), then broker-2 catches up
    grows = [
        e for e in _events(cluster, "controller.isr", healed_at) if e.field("isr") == (0, 1, 2)
    ]
    assert len(grows) == 1
    assert cluster.controller.partitions[TP].isr == (0, 1, 2)
    assert _replica(cluster, 2).log.leo == 21
    assert _replica(cluster, 2).log.batches == _replica(cluster, 0).log.batches


def test_isr_does_not_shrink_while_a_follower_keeps_up() -> None:
    cluster = sim.Cluster(brokers=3, seed=3, replica_lag_time_max_ms=1_000.0)
    cluster.create_topic("t", partitions=1, replication_factor=3)
    producer = sim.KafkaProducer(cluster=cluster, acks=1, enable_idempotence=False)
    for _ in range(30):
        producer.send("t", value=b"x")
        cluster.run_for(300)
    producer.flush()
    cluster.run_for(10_000)
    assert _events(cluster, "broker.propose_isr") == []
    assert cluster.controller.partitions[TP].isr == (0, 1, 2)


def test_a_diverged_old_leader_truncates_to_the_new_leaders_epoch_start_not_to_its_hw() -> None:
    cluster = sim.Cluster(brokers=3, seed=1, broker_session_timeout_ms=3_000)
    cluster.create_topic("t", partitions=1, replication_factor=3, min_insync_replicas=1)
    producer = sim.KafkaProducer(cluster=cluster, acks=1, enable_idempotence=False)
    assert _send(producer, 2) == [0, 1]
    cluster.run_for(1_000)
    # The followers still get the leader's data but their fetches no longer reach it:
    # they take the next batch, and the leader never learns they did.
    cluster.partition(isolate=["broker-1", "broker-2"], from_=["broker-0"], one_way=True)
    assert _send(producer, 3) == [2, 3, 4]  # acks=1: the old leader acknowledges alone
    old = _replica(cluster, 0)
    assert (old.log.leo, old.log.hw) == (5, 2)
    assert [_replica(cluster, b).log.leo for b in (1, 2)] == [3, 3]
    old_ids = _record_ids(cluster, 0)

    cluster.crash("broker-0")
    cluster.heal()
    cluster.run_for(5_000)
    state = cluster.controller.partitions[TP]
    assert (state.leader, state.leader_epoch) == (1, 1)
    assert _replica(cluster, 1).log.epochs == [(0, 0), (1, 3)]
    assert _send(producer, 2, b"y") == [3, 4]  # epoch 1 reuses offsets 3 and 4

    restarted_at = cluster.world.now_ms
    cluster.restart("broker-0")
    cluster.run_for(5_000)
    truncations = [
        (e.field("broker"), e.field("from_offset"), e.field("to_offset"))
        for e in _events(cluster, "broker.truncate", restarted_at)
    ]
    assert truncations == [(0, 5, 3)], "to epoch 0's end on the new leader, not to HW 2"
    rejoined = _replica(cluster, 0)
    assert rejoined.role == FOLLOWER
    assert rejoined.log.epochs == [(0, 0), (1, 3)]
    assert _record_ids(cluster, 0) == _record_ids(cluster, 1) == _record_ids(cluster, 2)
    assert _record_ids(cluster, 0)[:3] == old_ids[:3], "offset 2 (above the old HW) survived"
    assert set(old_ids[3:]).isdisjoint(_record_ids(cluster, 0)), "acks=1 records 3, 4 are lost"
    assert cluster.controller.partitions[TP].isr == (0, 1, 2)


def test_a_follower_whose_epochs_all_postdate_the_leaders_truncates_to_zero_and_converges() -> None:
    # Unclean election: broker-0 leads with epoch-0 data only; broker-1's log holds
    # only epoch-1 data. The leader answers "diverging at epoch 0, end 10"; broker-1
    # knows no epoch <= 0, so (endOffsetFor) its end for epoch 0 is its first start: 0.
    cluster = sim.Cluster(
        brokers=2, seed=1, unclean_leader_election_enable=True, broker_session_timeout_ms=3_000
    )
    cluster.create_topic("t", partitions=1, replication_factor=2)
    producer = sim.KafkaProducer(cluster=cluster, acks=1, enable_idempotence=False)
    cluster.run_for(500)
    cluster.partition(isolate="broker-1", from_=["broker-0"])
    assert _send(producer, 10) == list(range(10))
    cluster.crash("broker-0")
    cluster.heal()
    cluster.run_for(5_000)
    assert cluster.controller.partitions[TP].leader == 1
    assert _send(producer, 3, b"y") == [0, 1, 2]
    assert _replica(cluster, 1).log.epochs == [(1, 0)]
    cluster.crash("broker-1")
    cluster.run_for(500)
    cluster.restart("broker-0")
    cluster.run_for(5_000)
    state = cluster.controller.partitions[TP]
    assert (state.leader, state.isr) == (0, (0,))
    restarted_at = cluster.world.now_ms
    cluster.restart("broker-1")
    cluster.run_for(5_000)
    truncations = [
        (e.field("broker"), e.field("from_offset"), e.field("to_offset"))
        for e in _events(cluster, "broker.truncate", restarted_at)
    ]
    assert truncations == [(1, 3, 0)]
    assert _record_ids(cluster, 1) == _record_ids(cluster, 0)
    assert _replica(cluster, 1).log.leo == 10
    assert cluster.controller.partitions[TP].isr == (0, 1)


def test_a_broker_restarted_within_its_session_does_not_lead_again_from_a_stale_image() -> None:
    cluster = sim.Cluster(brokers=3, seed=1)
    cluster.create_topic("t", partitions=1, replication_factor=3, min_insync_replicas=2)
    producer = sim.KafkaProducer(cluster=cluster, acks="all")
    assert _send(producer, 5) == list(range(5))
    cluster.run_for(1_000)
    cluster.crash("broker-0", lose_unflushed=True)  # nothing was flushed yet
    assert _replica(cluster, 0).log.leo == 0
    cluster.run_for(100)
    restarted_at = cluster.world.now_ms
    cluster.restart("broker-0")
    cluster.run_for(100)
    cluster.create_topic("other")  # any metadata change, published before 0 is fenced
    cluster.run_for(1_000)
    assert _replica(cluster, 0).role != LEADER
    assert _events(cluster, "broker.truncate", restarted_at) == [], "followers kept the data"
    cluster.run_for(15_000)
    state = cluster.controller.partitions[TP]
    assert state.leader in (1, 2) and state.leader_epoch == 1
    for broker_id in range(3):
        assert _replica(cluster, broker_id).log.leo == 5
    assert _record_ids(cluster, 0) == _record_ids(cluster, state.leader)


def test_lose_unflushed_crash_loses_exactly_the_suffix_after_the_last_flush() -> None:
    cluster = sim.Cluster(brokers=3, seed=1, flush_interval_ms=1_000)
    cluster.create_topic("t", partitions=1, replication_factor=3, min_insync_replicas=2)
    producer = sim.KafkaProducer(cluster=cluster, acks="all")
    assert _send(producer, 3) == [0, 1, 2]
    cluster.run_for(1_050 - cluster.world.now_ms)  # the flush at 1000 ms
    assert [_replica(cluster, b).log.flushed_offset for b in range(3)] == [3, 3, 3]
    assert _send(producer, 2) == [3, 4]
    flushed_ids = _record_ids(cluster, 0)[:3]
    cluster.crash("broker-0", lose_unflushed=True)
    log = _replica(cluster, 0).log
    assert (log.leo, log.hw, log.flushed_offset) == (3, 3, 3)
    assert _record_ids(cluster, 0) == flushed_ids
    (event,) = _events(cluster, "broker.truncate")
    assert (event.field("broker"), event.field("from_offset"), event.field("to_offset")) == (
        0,
        5,
        3,
    )
    assert [_replica(cluster, b).log.leo for b in (1, 2)] == [5, 5], "followers keep theirs"


def test_a_plain_crash_keeps_the_unflushed_log() -> None:
    cluster = sim.Cluster(brokers=3, seed=1, flush_interval_ms=60_000)
    cluster.create_topic("t", partitions=1, replication_factor=3)
    producer = sim.KafkaProducer(cluster=cluster, acks="all")
    _send(producer, 4)
    cluster.crash("broker-0")
    assert _replica(cluster, 0).log.leo == 4
    assert _events(cluster, "broker.truncate") == []


# --- the fetch protocol, one broker at a time --------------------------------------------


class _Sink:
    def __init__(self) -> None:
        self.received: list = []

    def receive(self, source: str, message) -> None:
        self.received.append(message)

    def on_disconnect(self, peer: str) -> None:
        return None


def _broker(broker_id: int):
    """A lone broker (no processes) on a net with a silent controller."""
    world = World(1)
    net = Net(world, 1.0, 0.0)
    controller = _Sink()
    net.add_node("controller", controller)
    broker = Broker(world, net, broker_id, BrokerConfig())
    return broker, controller


def _batch(count: int) -> RecordBatch:
    return RecordBatch(
        producer_id=NO_PRODUCER_ID,
        producer_epoch=-1,
        base_sequence=-1,
        record_ids=tuple(range(count)),
        size_bytes=count,
        create_time_ms=0.0,
    )


def _follower_log(
    broker, epochs_and_counts: list[tuple[int, int]], leader: int = 0, epoch: int = 9
):
    replica = Replica(PartitionLog(*TP), (0, 1, 2), 1)
    for batch_epoch, count in epochs_and_counts:
        replica.log.append_as_leader(_batch(count), batch_epoch)
    replica.make_follower(leader, epoch, (0, 1, 2))
    broker.replicas[TP] = replica
    return replica


def _leader_replica(broker, epochs_and_counts: list[tuple[int, int]], epoch: int):
    replica = Replica(PartitionLog(*TP), (0, 1, 2), 1)
    for batch_epoch, count in epochs_and_counts:
        replica.log.append_as_leader(_batch(count), batch_epoch)
    replica.make_leader(broker.id, epoch, (0, 1, 2), 0.0)
    broker.replicas[TP] = replica
    return replica


def _fetch(leader_epoch: int, offset: int, last_epoch: int) -> FetchRequest:
    return FetchRequest(1, 1, (FetchPartition("t", 0, offset, last_epoch, leader_epoch),), 0.0)


def test_leader_answers_a_diverging_epoch_when_the_followers_last_epoch_ends_earlier_here() -> None:
    broker, _ = _broker(0)
    _leader_replica(broker, [(0, 3), (2, 2)], epoch=4)  # epochs (0,0) (2,3) (4,5); LEO 5
    (data,) = broker.fetch_server._serve(_fetch(4, 6, 1))
    assert data.diverging_epoch == (0, 3)
    assert data.batches == ()
    (data,) = broker.fetch_server._serve(_fetch(4, 3, 0))
    assert data.diverging_epoch is None, "epoch 0 ends at 3 here: offset 3 agrees"
    assert [b.base_offset for b in data.batches] == [3]
    (data,) = broker.fetch_server._serve(_fetch(4, 5, 2))
    assert data.diverging_epoch is None
    assert data.batches == ()


def test_leader_answers_requested_epoch_and_zero_below_its_first_epoch() -> None:
    broker, _ = _broker(0)
    _leader_replica(broker, [(3, 4)], epoch=3)
    (data,) = broker.fetch_server._serve(_fetch(3, 2, 1))
    assert data.diverging_epoch == (1, 0)


def test_leader_fences_a_fetch_from_an_older_leader_epoch_and_flags_a_newer_one() -> None:
    broker, _ = _broker(0)
    _leader_replica(broker, [(0, 1)], epoch=2)
    assert broker.fetch_server._serve(_fetch(1, 1, 0))[0].error == Errors.FENCED_LEADER_EPOCH
    assert broker.fetch_server._serve(_fetch(3, 1, 0))[0].error == Errors.UNKNOWN_LEADER_EPOCH
    broker.replicas[TP].make_follower(2, 3, (2,))
    assert broker.fetch_server._serve(_fetch(3, 1, 0))[0].error == Errors.NOT_LEADER_OR_FOLLOWER


def test_follower_truncates_to_the_leaders_epoch_end_when_that_is_lower_than_its_own() -> None:
    broker, _ = _broker(1)
    replica = _follower_log(broker, [(0, 2), (0, 2), (0, 3)])  # epoch 0 ends at 7 here
    replica.log.hw = 2
    data = FetchPartitionData("t", 0, Errors.NONE, 2, diverging_epoch=(0, 4))
    assert broker.fetchers._apply(0, data)
    assert replica.log.leo == 4, "KIP-101: the leader's end for epoch 0, not HW 2"
    assert replica.log.hw == 2


def test_follower_truncates_to_its_own_epoch_end_when_that_is_lower_kip_279() -> None:
    broker, _ = _broker(1)
    replica = _follower_log(broker, [(0, 2), (1, 3), (3, 2)])  # epochs (0,0) (1,2) (3,5)
    data = FetchPartitionData("t", 0, Errors.NONE, 0, diverging_epoch=(1, 9))
    broker.fetchers._apply(0, data)
    assert replica.log.leo == 5
    assert replica.log.epochs == [(0, 0), (1, 2)]


def test_follower_knowing_no_epoch_at_or_below_the_leaders_truncates_to_its_first_start() -> None:
    broker, _ = _broker(1)
    replica = _follower_log(broker, [(2, 3)])
    data = FetchPartitionData("t", 0, Errors.NONE, 0, diverging_epoch=(1, 10))
    broker.fetchers._apply(0, data)
    assert replica.log.leo == 0
    assert replica.log.epochs == []


def test_follower_hw_is_the_leaders_capped_by_its_own_leo_even_when_it_goes_down() -> None:
    broker, _ = _broker(1)
    replica = _follower_log(broker, [(0, 2), (0, 2)])
    new = LogBatch(4, 9, _batch(2))
    broker.fetchers._apply(0, FetchPartitionData("t", 0, Errors.NONE, 100, (new,)))
    assert (replica.log.leo, replica.log.hw) == (6, 6)
    broker.fetchers._apply(0, FetchPartitionData("t", 0, Errors.NONE, 3, ()))
    assert replica.log.hw == 3, "a new leader whose HW lags: the follower's HW follows it"


def test_follower_skips_batches_that_do_not_start_at_its_leo() -> None:
    broker, _ = _broker(1)
    replica = _follower_log(broker, [(0, 2)])
    stale = (LogBatch(0, 0, _batch(2)), LogBatch(2, 0, _batch(1)))
    broker.fetchers._apply(0, FetchPartitionData("t", 0, Errors.NONE, 2, stale))
    assert replica.log.leo == 2
    assert len(replica.log.batches) == 1


def test_follower_ignores_data_from_a_broker_it_no_longer_follows() -> None:
    broker, _ = _broker(1)
    replica = _follower_log(broker, [(0, 2)], leader=2)
    data = FetchPartitionData("t", 0, Errors.NONE, 0, diverging_epoch=(0, 0))
    broker.fetchers._apply(0, data)
    assert replica.log.leo == 2
