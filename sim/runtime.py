"""`sim.Cluster`: a whole simulated Kafka cluster, driven from Python or a scenario.

It builds the World, the network, the controller and the brokers, gives
producers what they need to attach (`ClientEnv`), offers every fault kind
as a method, advances simulated time (`run_for`, `run_until`), and judges
the run (`check`: final heal, settle, final read, checker). `kpsim run`
uses the same object, so a script and a scenario file give the same result.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sim import invariants
from sim.checker import PartitionRead, check
from sim.client.producer import KafkaProducer, set_default_env
from sim.cluster.broker import Broker, BrokerConfig, broker_name
from sim.cluster.controller import Controller
from sim.cluster.txn_coordinator import OFFSETS_TOPIC, TXN_STATE_TOPIC, partition_for
from sim.faults import FaultOp, Nemesis
from sim.history import History
from sim.net import Net
from sim.result import RunResult
from sim.world import World

INTERNAL_TOPICS = (TXN_STATE_TOPIC, OFFSETS_TOPIC)


class Cluster:
    """A simulated Kafka cluster (KRaft controller + brokers) with a history.

    Args:
        brokers: how many brokers (ids 0..brokers-1, named broker-N).
        seed: the World's seed; everything random derives from it.
        min_insync_replicas: the broker default; a topic may override it.
        unclean_leader_election_enable: allow electing an out-of-sync replica.
        check_invariants: watch replication invariants while running (`sim.invariants`);
            None means the process-wide default (on in the test suite).
        replica_lag_time_max_ms, latency_ms, jitter_ms, broker_session_timeout_ms,
        broker_heartbeat_interval_ms, replica_fetch_wait_max_ms, flush_interval_ms:
            as in scenario files' `[cluster]`.
    """

    def __init__(
        self,
        brokers: int = 3,
        seed: int = 0,
        *,
        min_insync_replicas: int = 1,
        unclean_leader_election_enable: bool = False,
        replica_lag_time_max_ms: float = 30000,
        latency_ms: float = 1.0,
        jitter_ms: float = 0.0,
        broker_session_timeout_ms: float = 9000,
        broker_heartbeat_interval_ms: float = 2000,
        replica_fetch_wait_max_ms: float = 500,
        flush_interval_ms: float = 30000,
        transaction_state_log_num_partitions: int = 50,
        offsets_topic_num_partitions: int = 50,
        check_invariants: bool | None = None,
    ) -> None:
        assert brokers >= 1, "a cluster needs at least one broker"
        self.world = World(seed)
        self.seed = seed
        self.net = Net(self.world, latency_ms, jitter_ms)
        self.history = History()
        self.min_insync_replicas = min_insync_replicas
        self.transaction_state_log_num_partitions = transaction_state_log_num_partitions
        self.controller = Controller(
            self.world,
            self.net,
            list(range(brokers)),
            broker_session_timeout_ms,
            unclean_leader_election_enable,
        )
        config = BrokerConfig(
            replica_lag_time_max_ms=replica_lag_time_max_ms,
            broker_heartbeat_interval_ms=broker_heartbeat_interval_ms,
            replica_fetch_wait_max_ms=replica_fetch_wait_max_ms,
            flush_interval_ms=flush_interval_ms,
            transaction_state_log_num_partitions=transaction_state_log_num_partitions,
            offsets_topic_num_partitions=offsets_topic_num_partitions,
        )
        self.offsets_topic_num_partitions = offsets_topic_num_partitions
        self.brokers = [Broker(self.world, self.net, b, config) for b in range(brokers)]
        self.topics: dict[str, int] = {}
        self.clients: list[Any] = []
        self.restarters: dict[str, Callable[[], None]] = {}
        """How to bring a crashed client's application back (set by the runner)."""
        self._client_counts: dict[str, int] = {}
        self.nemesis = Nemesis(self)
        self.controller.start()
        for broker in self.brokers:
            broker.start()
        if check_invariants is None:
            check_invariants = invariants.ENABLED_BY_DEFAULT[0]
        self.invariants = invariants.InvariantMonitor(self) if check_invariants else None
        self._wall_start = time.perf_counter()  # det-ok: reported, never simulated
        set_default_env(self)

    def __repr__(self) -> str:
        return (
            f"Cluster(brokers={len(self.brokers)}, seed={self.seed}, now={self.world.now_ms:.1f}ms)"
        )

    @classmethod
    def from_scenario(cls, path: str, overrides: tuple[str, ...] = (), seed: int = 0) -> Cluster:
        """A cluster built from a scenario file's [cluster] and [[topics]] (no workload)."""
        from sim.runner import build_cluster
        from sim.scenario import load_scenario

        return build_cluster(load_scenario(path, overrides), seed)

    # --- ClientEnv ------------------------------------------------------------------

    def bootstrap_brokers(self) -> list[str]:
        return [b.name for b in self.brokers]

    def new_client_name(self, kind: str) -> str:
        n = self._client_counts.get(kind, 0)
        self._client_counts[kind] = n + 1
        return f"{kind}-{n}"

    def register_client(self, client: Any) -> None:
        self.clients.append(client)
        if getattr(client, "txn_client", None) is not None:
            self.ensure_internal_topics()

    def coordinator_of(self, transactional_id: str) -> int:
        """The broker leading the id's `__transaction_state` partition (-1: none)."""
        partition = partition_for(transactional_id, self.transaction_state_log_num_partitions)
        state = self.controller.partitions.get((TXN_STATE_TOPIC, partition))
        return -1 if state is None else state.leader

    def ensure_internal_topics(self) -> None:
        """Create `__transaction_state` and `__consumer_offsets` on first use, as
        Kafka does on the first FindCoordinator (RF 3 or fewer brokers; the
        transaction log's min ISR is 2, `transaction.state.log.min.isr`)."""
        if TXN_STATE_TOPIC in self.topics:
            return
        rf = min(3, len(self.brokers))
        self.create_topic(
            TXN_STATE_TOPIC, self.transaction_state_log_num_partitions, rf, min(2, rf)
        )
        self.create_topic(
            OFFSETS_TOPIC, self.offsets_topic_num_partitions, rf, min(self.min_insync_replicas, rf)
        )

    def run_until(self, predicate: Callable[[], bool], timeout_ms: float | None) -> None:
        """Advance simulated time event by event until `predicate()` or `timeout_ms`.

        Stepping one event at a time lets a blocking call (`future.get`,
        `flush`) return at the exact simulated moment its answer arrives.
        """
        env = self.world.env
        deadline = None if timeout_ms is None else env.now + timeout_ms
        while not predicate():
            next_time = env.peek()
            if deadline is not None and next_time > deadline:
                if deadline > env.now:
                    env.run(until=deadline)
                return
            if next_time == float("inf"):
                return  # Nothing left to happen: the predicate can never become true.
            env.step()

    def run_for(self, duration_ms: float) -> None:
        """Advance simulated time by `duration_ms`."""
        assert duration_ms >= 0
        if duration_ms > 0:
            self.world.env.run(until=self.world.now_ms + duration_ms)

    # --- topics -----------------------------------------------------------------------

    def create_topic(
        self,
        name: str,
        partitions: int = 1,
        replication_factor: int = 1,
        min_insync_replicas: int | None = None,
    ) -> None:
        """Create a topic; replicas of partition p are brokers (p + i) % brokers."""
        if replication_factor > len(self.brokers):
            raise ValueError(
                f"Replication factor: {replication_factor} larger than available brokers: {len(self.brokers)}."
            )
        min_isr = self.min_insync_replicas if min_insync_replicas is None else min_insync_replicas
        self.controller.create_topic(name, partitions, replication_factor, min_isr)
        self.topics[name] = partitions

    # --- nodes --------------------------------------------------------------------------

    def broker_by_name(self, name: str) -> Broker | None:
        for broker in self.brokers:
            if broker.name == name:
                return broker
        return None

    def crash_node(self, name: str, lose_unflushed: bool = False) -> bool:
        broker = self.broker_by_name(name)
        if broker is not None:
            if not broker.alive:
                return False
            broker.crash(lose_unflushed)
            return True
        if name == "controller":
            if not self.controller.alive:
                return False
            self.controller.alive = False
            self.net.crash(name)
            self.world.trace("controller.crash")
            return True
        producer = self.client_by_name(name)
        if producer is not None:
            if producer.crashed:
                return False
            producer.crash()
            self.net.crash(name)
            self.world.trace("producer.crash", producer=name)
            return True
        raise ValueError(f"no node {name} to crash")

    def restart_node(self, name: str) -> bool:
        broker = self.broker_by_name(name)
        if broker is not None:
            if broker.alive:
                return False
            broker.restart()
            return True
        if name == "controller":
            if self.controller.alive:
                return False
            self.controller.alive = True
            self.net.restart(name)
            # A new controller reads the metadata log; it re-learns liveness from heartbeats.
            now = self.world.now_ms
            for session in self.controller.sessions.values():
                session.last_heartbeat_ms = max(session.last_heartbeat_ms, now)
            self.world.trace("controller.restart")
            self.controller.publish()
            return True
        producer = self.client_by_name(name)
        if producer is not None and producer.crashed:
            restarter = self.restarters.get(name)
            if restarter is None:
                self.world.trace(
                    "nemesis.noop", kind="restart", why=f"nothing restarts {name}'s application"
                )
                return False
            restarter()
            self.net.restart(name)
            self.world.trace("producer.restart", producer=name)
            return True
        return False

    def client_by_name(self, name: str) -> Any:
        """The newest client instance with this node name, or None."""
        for client in reversed(self.clients):
            if getattr(client, "name", None) == name:
                return client
        return None

    # --- faults (the contract's fault kinds, as methods) ------------------------------------

    def crash(
        self, target: str, lose_unflushed: bool = False, duration_ms: float | None = None
    ) -> None:
        self._fault("crash", target=target, lose_unflushed=lose_unflushed, duration_ms=duration_ms)

    def restart(self, target: str = "crashed") -> None:
        self._fault("restart", target=target)

    def partition(
        self,
        isolate: Any = None,
        from_: Any = None,
        groups: Any = None,
        one_way: bool = False,
        duration_ms: float | None = None,
        **kw: Any,
    ) -> None:
        sources = kw.pop("from", from_)
        assert not kw, f"unknown keys {sorted(kw)}"
        self._fault(
            "partition",
            isolate=isolate,
            groups=groups,
            one_way=one_way,
            duration_ms=duration_ms,
            **{"from": sources},
        )

    def heal(self) -> None:
        self._fault("heal")

    def drop(
        self,
        from_: Any = None,
        to: Any = None,
        message: str = "ProduceResponse",
        count: int | None = None,
        probability: float | None = None,
        duration_ms: float | None = None,
        **kw: Any,
    ) -> None:
        sources = kw.pop("from", from_)
        self._fault(
            "drop",
            to=to,
            message=message,
            count=count,
            probability=probability,
            duration_ms=duration_ms,
            **{"from": sources},
        )

    def error(
        self,
        target: str,
        message: str,
        error: str,
        count: int = 1,
        duration_ms: float | None = None,
    ) -> None:
        self._fault(
            "error",
            target=target,
            message=message,
            error=error,
            count=count,
            duration_ms=duration_ms,
        )

    def delay(
        self,
        from_: Any = None,
        to: Any = None,
        extra_ms: float = 0.0,
        duration_ms: float | None = None,
        **kw: Any,
    ) -> None:
        sources = kw.pop("from", from_)
        self._fault("delay", to=to, extra_ms=extra_ms, duration_ms=duration_ms, **{"from": sources})

    def pause(self, target: str, duration_ms: float | None = None) -> None:
        self._fault("pause", target=target, duration_ms=duration_ms)

    def _fault(self, kind: str, **params: Any) -> None:
        params = {k: v for k, v in params.items() if v is not None or k in ("from",)}
        if kind in ("drop", "delay") and params.get("from") is None:
            params.pop("from", None)
        if kind == "partition" and params.get("from") is None:
            params.pop("from", None)
        self.nemesis.apply(kind, params)

    def schedule(self, faults: list[FaultOp]) -> None:
        self.nemesis.schedule(faults)

    # --- judging -----------------------------------------------------------------------------------

    def final_read(
        self, isolation_level: str = "read_uncommitted"
    ) -> dict[tuple[str, int], PartitionRead]:
        """Read every data partition from its leader, like a consumer: up to the HW,
        or for read_committed up to the LSO without aborted transactions."""
        reads: dict[tuple[str, int], PartitionRead] = {}
        for (topic, partition), state in sorted(self.controller.partitions.items()):
            if topic in INTERNAL_TOPICS:
                continue
            broker = self.brokers[state.leader] if state.leader >= 0 else None
            replica = (
                broker.replicas.get((topic, partition))
                if broker is not None and broker.alive
                else None
            )
            if replica is None or replica.role != "leader":
                reads[(topic, partition)] = PartitionRead(
                    topic, partition, 0, [], [], readable=False
                )
                continue
            log = replica.log
            if isolation_level == "read_committed":
                bound = log.last_stable_offset()
                batches = log.committed_batches(bound)
            else:
                bound = log.hw
                batches = [
                    b for b in log.batches if b.base_offset < bound and b.batch.control is None
                ]
            offsets: list[int] = []
            record_ids: list[int] = []
            for log_batch in batches:
                base = log_batch.base_offset
                for i, record_id in enumerate(log_batch.batch.record_ids):
                    if base + i < bound:
                        offsets.append(base + i)
                        record_ids.append(record_id)
            reads[(topic, partition)] = PartitionRead(
                topic, partition, bound, offsets, record_ids, leader=state.leader
            )
        return reads

    def check(self, settle_ms: float = 60000, isolation_level: str | None = None) -> RunResult:
        """Heal every fault, let the cluster settle, read every partition, judge.

        The final read is read_committed when any transaction was used, as
        DESIGN.md says; pass `isolation_level` to choose.
        """
        self.nemesis.heal_all()
        self.run_for(settle_ms)
        if isolation_level is None:
            isolation_level = "read_committed" if self.history.txns else "read_uncommitted"
        result = check(self.history, self.final_read(isolation_level), self.world.events)
        wall_ms = (time.perf_counter() - self._wall_start) * 1000.0  # det-ok: reported only
        return RunResult.from_check(
            result,
            seed=self.seed,
            trace_digest=self.world.trace_digest(),
            sim_ms=self.world.now_ms,
            wall_ms=wall_ms,
        )


__all__ = ["Cluster", "KafkaProducer", "broker_name"]
