"""Run a scenario end to end: build, drive, fault, heal, settle, read, judge.

A run lasts until every record's send has completed (acked, failed or
given up) and every scheduled fault has fired; then the final heal ends
every fault, the cluster settles for `settle_ms`, and the final read takes
every partition up to its high watermark. The result carries the seed and
the exact command that replays it.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable

from sim.client.producer import KafkaProducer
from sim.faults import FaultOp
from sim.invariants import InvariantMonitor
from sim.result import RunResult
from sim.runtime import Cluster
from sim.scenario import Scenario
from sim.workload import Workload, WorkloadRunner

RUN_STEP_MS = 100.0
RUN_LIMIT_MS = 24 * 3600 * 1000.0
"""A bound on a run's simulated length; reaching it is a simulator bug."""


def build_cluster(scenario: Scenario, seed: int, check_invariants: bool | None = None) -> Cluster:
    """The cluster and topics of a scenario, before any producer or fault."""
    spec = scenario.cluster
    cluster = Cluster(
        spec.brokers,
        seed,
        check_invariants=check_invariants,
        min_insync_replicas=spec.min_insync_replicas,
        unclean_leader_election_enable=spec.unclean_leader_election_enable,
        replica_lag_time_max_ms=spec.replica_lag_time_max_ms,
        latency_ms=spec.latency_ms,
        jitter_ms=spec.jitter_ms,
        broker_session_timeout_ms=spec.broker_session_timeout_ms,
        broker_heartbeat_interval_ms=spec.broker_heartbeat_interval_ms,
        replica_fetch_wait_max_ms=spec.replica_fetch_wait_max_ms,
        flush_interval_ms=spec.flush_interval_ms,
        transaction_state_log_num_partitions=spec.transaction_state_log_num_partitions,
    )
    for topic in scenario.topics:
        cluster.create_topic(
            topic.name, topic.partitions, topic.replication_factor, topic.effective_min_insync(spec)
        )
    return cluster


def _new_producer(cluster: Cluster, scenario: Scenario, index: int) -> KafkaProducer:
    config = dict(scenario.producer_raw)
    if config.get("transactional_id") is not None:
        config["transactional_id"] = scenario.workload.transactional_id_for(
            config["transactional_id"], index
        )
    producer = KafkaProducer(cluster=cluster, name=f"producer-{index}", **config)
    if (
        scenario.workload.compression_ratio is not None
        and producer.config.compression_type is not None
    ):
        producer.compression_ratio = scenario.workload.compression_ratio
    return producer


def _restarter(
    cluster: Cluster, workload: WorkloadRunner, scenario: Scenario, index: int
) -> Callable[[], None]:
    """A crashed producer's application comes back with a new producer instance."""

    def restart() -> None:
        workload.restart(index, _new_producer(cluster, scenario, index))

    return restart


def replay_command(scenario: Scenario, seed: int) -> str:
    parts = ["kpsim", "run", scenario.source, "--seed", str(seed)]
    for override in scenario.overrides:
        parts += ["--set", override]
    return shlex.join(parts)


def run_scenario(
    scenario: Scenario, seed: int = 0, check_invariants: bool | None = None
) -> RunResult:
    """Run one scenario with one seed and judge it (raises InvariantViolation on a simulator bug)."""
    return run_scenario_with_cluster(scenario, seed, check_invariants)[0]


def run_scenario_with_cluster(
    scenario: Scenario, seed: int = 0, check_invariants: bool | None = None
) -> tuple[RunResult, Cluster]:
    """`run_scenario`, also returning the cluster (its trace, logs and state) for inspection."""
    cluster = build_cluster(scenario, seed)
    if check_invariants and cluster.invariants is None:
        cluster.invariants = InvariantMonitor(cluster)
    workload_spec = scenario.workload
    producers = [_new_producer(cluster, scenario, i) for i in range(workload_spec.producers)]
    workload = WorkloadRunner(
        cluster.world,
        Workload(
            workload_spec.topic,
            workload_spec.records,
            workload_spec.rate_per_s,
            workload_spec.keys,
            workload_spec.value_bytes,
            txn_size=workload_spec.txn_size,
            abort_every=workload_spec.abort_every,
            producer_start_ms=tuple(
                workload_spec.start_for(i) for i in range(workload_spec.producers)
            ),
        ),
        producers,
    )
    for i in range(workload_spec.producers):
        cluster.restarters[f"producer-{i}"] = _restarter(cluster, workload, scenario, i)
    faults = [FaultOp(f.at_ms, f.kind, dict(f.params)) for f in scenario.faults]
    cluster.schedule(faults)
    workload.start()
    history = cluster.history

    def finished() -> bool:
        return workload.done and cluster.nemesis.fired == len(faults) and history.pending() == 0

    while not finished():
        assert cluster.world.now_ms < RUN_LIMIT_MS, "run did not finish: a simulator bug"
        cluster.run_for(RUN_STEP_MS)
    for producer in workload.producers:
        if not producer.crashed:
            producer.close()
    result = cluster.check(workload_spec.settle_ms)
    result.scenario = scenario.name
    result.config = scenario.effective_config()
    result.replay = replay_command(scenario, seed)
    result.warnings = list(scenario.warnings)
    result.expect = [
        {
            "key": e.key,
            "expected": str(e),
            "actual": result.counts.get(e.key, 0),
            "holds": e.holds(result.counts.get(e.key, 0)),
        }
        for e in scenario.expect
    ]
    return result, cluster
