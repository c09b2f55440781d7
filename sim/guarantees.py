"""What Kafka promises: the expected-guarantee model the guarantee matrix judges by.

A *promise* is the absence of an anomaly (lost, duplicated, reordered,
aborted_read, torn_txn) for a producer/topic configuration under a class of
faults. The model is a small table of `RULES`; each rule names one anomaly that
Kafka *allows* for some configurations under some faults, and cites where that
is documented (SEMANTICS.md sections, KIPs, Jepsen). An anomaly no rule allows
is promised absent. The strongest promise follows from the rules: acks=all,
replication factor >= 3, min.insync.replicas >= 2, unclean election off and
idempotence on allow no loss, duplicate or reordering under process crashes,
partitions, dropped messages, delays and pauses; only correlated power loss,
the last ISR member's power loss (KIP-966) or a producer restart break it.

Terms:
- *config* (`GuaranteeConfig`): the effective producer and topic settings of one run.
- *fault profile* (`FaultProfile`): what a scenario's fault schedule can do, read
  statically from its `[[faults]]` (targets are resolved the way the cluster
  starts: partition p's replicas are brokers (p + i) % brokers and the first
  one leads). A fault is counted when it *may* have an effect, so the profile
  errs towards allowing; an allowed anomaly a story never shows is reported as
  "not reproduced", never as a bug.
- *lone leader*: a leader cut off from all its followers for longer than
  replica.lag.time.max.ms; the ISR may have shrunk to it alone.
- min.insync.replicas above the replication factor is capped at it, as Kafka's
  `Partition.effectiveMinIsr` does (SEMANTICS.md §2): acks=all stays available
  and waits for every replica.

Verdicts (`verdict`): an anomaly observed where no rule allows it is a
`simulator-bug`; observed and allowed, `anomaly-allowed`; allowed and never
observed, `not-reproduced`; neither, `ok`.

Left out: transactions beyond "never an aborted read or a torn transaction",
ELR (KIP-966, off by default), controlled shutdown, and the pre-0.11 behaviours
SEMANTICS.md lists under §9.4 and §9.8.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sim.protocol import Errors
from sim.scenario import FaultSpec, Scenario

ANOMALIES = ("lost", "duplicated", "reordered", "aborted_read", "torn_txn")
"""The anomaly counts of a run result, in display order."""

VERDICTS = ("ok", "anomaly-allowed", "simulator-bug", "not-reproduced", "invalid-config")

_AFTER_APPEND = ("NOT_ENOUGH_REPLICAS_AFTER_APPEND", "REQUEST_TIMED_OUT")
"""Injected errors answered after the leader appended: a retry writes again."""


@dataclass(frozen=True)
class GuaranteeConfig:
    """The settings the promises depend on (effective values, Kafka's meaning)."""

    acks: int  # 0, 1 or -1 (all)
    replication_factor: int
    min_insync_replicas: int
    """Effective: the topic's setting capped at the replication factor (see `from_scenario`)."""
    enable_idempotence: bool  # effective: after kafka-python's adjustments
    max_in_flight: int
    unclean: bool
    retries: int = 2147483647
    transactional: bool = False

    @classmethod
    def from_scenario(cls, scenario: Scenario) -> GuaranteeConfig:
        """The config of the workload's topic and producer."""
        topic = scenario.topic(scenario.workload.topic)
        producer = scenario.producer
        # Partition.effectiveMinIsr = min(min.insync.replicas, replicas) (SEMANTICS.md §2):
        # Kafka accepts min.insync > RF and enforces RF; acks=all stays available.
        min_insync = min(topic.effective_min_insync(scenario.cluster), topic.replication_factor)
        return cls(
            acks=producer.acks,
            replication_factor=topic.replication_factor,
            min_insync_replicas=min_insync,
            enable_idempotence=producer.enable_idempotence,
            max_in_flight=producer.max_in_flight_requests_per_connection,
            unclean=scenario.cluster.unclean_leader_election_enable,
            retries=producer.retries,
            transactional=producer.transactional_id is not None,
        )

    @property
    def retrying(self) -> bool:
        """Whether a failed request is sent again (acks=0 never hears of a failure)."""
        return self.acks != 0 and self.retries > 0


@dataclass(frozen=True)
class FaultProfile:
    """What a fault schedule can do to the workload's partitions (see the module doc)."""

    leader_death: bool = False
    """A broker that may lead crashes, or is fenced while cut off or paused."""
    failover: bool = False
    """A leader dies while in-sync followers can replace it (replication factor >= 2)."""
    lone_leader_lost: bool = False
    """A lone leader (ISR possibly shrunk to it) dies: no clean successor."""
    lone_leader_power_loss: bool = False
    """... and loses its unflushed log suffix."""
    stale_successor: bool = False
    """Followers may have left the ISR before a leader death: unclean election elects one."""
    power_loss_replicas: int = 0
    """Most replicas losing their unflushed suffix at one instant."""
    client_timeouts: bool = False
    """The producer may lose a request's answer after the leader appended (timeout, disconnect)."""
    client_cut: bool = False
    """The producer's requests may never reach the leader (cut link or dropped request)."""
    isr_stall: bool = False
    """A follower stops fetching: acks=all requests wait, time out and are retried."""
    refused: bool = False
    """The leader refuses requests with retriable errors, appending nothing."""
    after_append_error: bool = False
    """The leader appends, then answers with a retriable error."""
    producer_restart: bool = False
    """A producer process restarts: a new session with a new producer id."""
    kinds: tuple[str, ...] = ()
    """The fault kinds of the schedule, for display (crash, power-loss, partition, ...)."""


@dataclass(frozen=True)
class Rule:
    """One anomaly Kafka allows: when, in words, and where it is documented."""

    id: str
    anomaly: str
    summary: str
    source: str
    applies: Callable[[GuaranteeConfig, FaultProfile], bool] = field(repr=False)


def _retry_after_append(c: GuaranteeConfig, f: FaultProfile) -> bool:
    stalled = c.acks == -1 and f.isr_stall
    return c.retrying and (f.client_timeouts or f.after_append_error or stalled)


def _copies_at_ack(c: GuaranteeConfig) -> int:
    """How many replicas an acknowledgement waited for (acks=0 and 1: the leader's)."""
    return c.min_insync_replicas if c.acks == -1 else 1


RULES: tuple[Rule, ...] = (
    Rule(
        "acks0-fire-and-forget", "lost",
        "acks=0 counts a record sent once it is on the wire; what the leader never appends "
        "(it died, refused the request or was unreachable) is lost",
        "SEMANTICS.md §3.5; DESIGN.md (checker, acks=0)",
        lambda c, f: c.acks == 0
        and (f.leader_death or f.refused or f.client_cut or f.power_loss_replicas > 0),
    ),
    Rule(
        "acks1-failover", "lost",
        "acks=1 answers after the leader's append; a clean failover truncates what the "
        "followers had not fetched (min.insync.replicas does not apply to acks=1)",
        "SEMANTICS.md §9.1, §10",
        lambda c, f: c.acks == 1 and c.replication_factor >= 2 and f.failover,
    ),
    Rule(
        "power-loss", "lost",
        "Kafka does not fsync per write: power loss of at least as many replicas as an "
        "acknowledgement waited for (1 for acks=0/1, min.insync.replicas for acks=all) "
        "loses acknowledged records, even with acks=all",
        "KIP-966; SEMANTICS.md §2 (log.flush.interval.messages), §9.9",
        lambda c, f: f.power_loss_replicas >= max(1, _copies_at_ack(c)),
    ),
    Rule(
        "last-replica-standing", "lost",
        "the ISR shrank to the leader, which then lost its unflushed suffix: it is "
        "re-elected as the last ISR member and the followers truncate to it",
        "KIP-966; SEMANTICS.md §9.9",
        lambda c, f: f.lone_leader_power_loss,
    ),
    Rule(
        "unclean-lone-leader", "lost",
        "unclean election after the lone leader acknowledged alone (acks=1, or acks=all "
        "with min.insync.replicas = 1) and died: its writes are truncated",
        "Jepsen 'Call me maybe: Kafka' (2013); SEMANTICS.md §9.2, §9.3",
        lambda c, f: c.unclean and c.replication_factor >= 2 and f.lone_leader_lost
        and (c.acks != -1 or c.min_insync_replicas <= 1),
    ),
    Rule(
        "unclean-stale-follower", "lost",
        "unclean election of a follower that left the ISR: acks=all only waited for the "
        "ISR, which is all replicas only when min.insync.replicas = replication factor",
        "SEMANTICS.md §9.3, §10 ('acks=all = all replicas')",
        lambda c, f: c.unclean and c.replication_factor >= 2 and f.stale_successor
        and (c.acks != -1 or c.min_insync_replicas < c.replication_factor),
    ),
    Rule(
        "retry-without-idempotence", "duplicated",
        "without idempotence a retry of a batch the leader already appended (lost answer, "
        "timeout, disconnect, NOT_ENOUGH_REPLICAS_AFTER_APPEND) is written again",
        "SEMANTICS.md §9.6, §4",
        lambda c, f: not c.enable_idempotence and _retry_after_append(c, f),
    ),
    Rule(
        "new-producer-session", "duplicated",
        "a restarted producer gets a new producer id, so the broker cannot deduplicate "
        "its re-sends (only a transactional.id carries identity across sessions)",
        "SEMANTICS.md §9.7, §6",
        lambda c, f: f.producer_restart and c.acks != 0,
    ),
    Rule(
        "in-flight-without-idempotence", "reordered",
        "without idempotence, with more than one request in flight, a retried batch lands "
        "after batches sent later (nothing re-sequences it)",
        "SEMANTICS.md §9.5, §3.6",
        lambda c, f: not c.enable_idempotence and c.max_in_flight > 1
        and (_retry_after_append(c, f) or (c.retrying and f.refused)),
    ),
)  # fmt: skip
"""The table. aborted_read and torn_txn have no rule: Kafka never allows them."""


def allowed(config: GuaranteeConfig, profile: FaultProfile) -> dict[str, tuple[Rule, ...]]:
    """Each anomaly mapped to the rules that allow it (empty: promised absent)."""
    out: dict[str, tuple[Rule, ...]] = {}
    for anomaly in ANOMALIES:
        out[anomaly] = tuple(
            r for r in RULES if r.anomaly == anomaly and r.applies(config, profile)
        )
    return out


def verdict(
    allowed_kinds: Iterable[str], observed: Mapping[str, int]
) -> tuple[str, dict[str, str]]:
    """The cell verdict and each anomaly's own (`observed` = runs showing it).

    Returns:
        (verdict, {anomaly: "ok" | "anomaly-allowed" | "simulator-bug" | "not-reproduced"}).
    """
    permitted = set(allowed_kinds)
    kinds: dict[str, str] = {}
    for anomaly in ANOMALIES:
        seen = observed.get(anomaly, 0) > 0
        if seen:
            kinds[anomaly] = "anomaly-allowed" if anomaly in permitted else "simulator-bug"
        else:
            kinds[anomaly] = "not-reproduced" if anomaly in permitted else "ok"
    for worst in ("simulator-bug", "anomaly-allowed", "not-reproduced"):
        if worst in kinds.values():
            return worst, kinds
    return "ok", kinds


# --- fault profiles -------------------------------------------------------------------


@dataclass
class _Topology:
    """The workload topic's replicas as the cluster starts (the first replica leads)."""

    replication_factor: int
    replicas: frozenset[int]  # brokers holding some partition of the topic
    lag_ms: float
    session_ms: float
    request_timeout_ms: float

    @classmethod
    def of(cls, scenario: Scenario) -> _Topology:
        topic = scenario.topic(scenario.workload.topic)
        n, rf = scenario.cluster.brokers, topic.replication_factor
        replicas = {(p + i) % n for p in range(topic.partitions) for i in range(rf)}
        return cls(
            replication_factor=rf,
            replicas=frozenset(replicas),
            lag_ms=scenario.cluster.replica_lag_time_max_ms,
            session_ms=scenario.cluster.broker_session_timeout_ms,
            request_timeout_ms=scenario.producer.request_timeout_ms,
        )

    def roles(self, target: str) -> set[str]:
        """What a target may be: "leader", "follower", "producer", "other"."""
        if target.startswith("leader:"):
            return {"leader"}
        if target.startswith("followers:"):
            return {"follower"} if self.replication_factor >= 2 else set()
        if target.startswith("producer-"):
            return {"producer"}
        if target == "any-broker":
            return {"leader", "follower", "other"}
        if target.startswith("broker-"):
            broker = int(target.removeprefix("broker-"))
            if broker not in self.replicas:
                return {"other"}
            # Any replica may lead after a failover, and any may follow.
            return {"leader", "follower"} if self.replication_factor >= 2 else {"leader"}
        return {"other"}  # controller

    def replica_count(self, target: str) -> int:
        """How many replicas of one partition a target names (for power loss)."""
        if target.startswith("followers:"):
            return self.replication_factor - 1
        roles = self.roles(target)
        return 1 if roles & {"leader", "follower"} else 0


def _targets(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def _end_ms(fault: FaultSpec) -> float:
    duration = fault.params.get("duration_ms")
    return float("inf") if duration is None else fault.at_ms + duration


def profile(scenario: Scenario) -> FaultProfile:
    """Read a scenario's fault schedule into a `FaultProfile` (see the module doc)."""
    topo = _Topology.of(scenario)
    flags: dict[str, Any] = {}
    lone_windows: list[tuple[float, float]] = []
    shrink_from = float("inf")  # earliest time a follower may have left the ISR
    kinds: list[str] = []
    for fault in scenario.faults:
        kind = fault.kind
        if kind == "crash" and fault.params.get("lose_unflushed"):
            kind = "power-loss"
        if kind == "crash" and "producer" in topo.roles(fault.params["target"]):
            kind = "producer-restart"
        if kind not in kinds:
            kinds.append(kind)
        if fault.kind == "partition":
            window, shrink = _partition(topo, fault, flags)
            if window is not None:
                lone_windows.append(window)
            shrink_from = min(shrink_from, shrink)
        elif fault.kind in ("drop", "error", "delay", "pause"):
            _message_fault(topo, fault, flags)
    deaths = _deaths(topo, scenario.faults, flags)
    for at_ms, power_loss in deaths:
        lone = any(start <= at_ms < end for start, end in lone_windows)
        if lone:
            flags["lone_leader_lost"] = True
            flags["lone_leader_power_loss"] = flags.get("lone_leader_power_loss") or power_loss
        elif topo.replication_factor >= 2:
            flags["failover"] = True
            if at_ms >= shrink_from:
                flags["stale_successor"] = True
    return FaultProfile(kinds=tuple(kinds), **flags)


def _partition(
    topo: _Topology, fault: FaultSpec, flags: dict[str, Any]
) -> tuple[tuple[float, float] | None, float]:
    """Flags of one partition fault; returns (lone-leader window or None, shrink time)."""
    params = fault.params
    long_enough = _end_ms(fault) - fault.at_ms >= topo.lag_ms
    shrink = fault.at_ms + topo.lag_ms if long_enough else float("inf")
    if params.get("groups"):
        flags.update(client_timeouts=True, client_cut=True, isr_stall=True)
        if long_enough or _end_ms(fault) - fault.at_ms >= topo.session_ms:
            flags["leader_death_cut"] = True
        return None, shrink
    isolated: set[str] = set().union(*(topo.roles(t) for t in _targets(params.get("isolate"))))
    everyone = params.get("from") is None
    others: set[str] = (
        {"leader", "follower", "producer", "other"}
        if everyone
        else set().union(*(topo.roles(t) for t in _targets(params.get("from"))))
    )
    sides = (isolated, others)
    if any("producer" in s for s in sides) and any("leader" in s for s in sides):
        flags.update(client_timeouts=True, client_cut=True)
    replication_cut = ("leader" in isolated and "follower" in others) or (
        "follower" in isolated and "leader" in others
    )
    if replication_cut and topo.replication_factor >= 2:
        flags["isr_stall"] = True
    else:
        shrink = float("inf")
    if everyone and "leader" in isolated and _end_ms(fault) - fault.at_ms >= topo.session_ms:
        flags["leader_death_cut"] = True  # The controller fences it: a failover.
    lone = isolated == {"leader"} and ("follower" in others or topo.replication_factor == 1)
    if lone and long_enough:
        return (fault.at_ms + topo.lag_ms, _end_ms(fault)), shrink
    return None, shrink


def _message_fault(topo: _Topology, fault: FaultSpec, flags: dict[str, Any]) -> None:
    params = fault.params
    if fault.kind == "error":
        error = params["error"]
        if error in _AFTER_APPEND:
            flags["after_append_error"] = True
        elif Errors[error].retriable:
            flags["refused"] = True
        return
    ends: set[str] = set()
    for key in ("target", "from", "to"):
        for target in _targets(params.get(key)):
            ends |= topo.roles(target)
    # A paused leader or a slow producer link: the producer's requests time out.
    producer_link = "producer" in ends or (fault.kind == "pause" and "leader" in ends)
    broker_link = bool(ends & {"leader", "follower"})
    if fault.kind == "drop":
        message = params["message"]
        if message == "ProduceResponse":
            flags["client_timeouts"] = True
        elif message.startswith("Fetch"):
            flags["isr_stall"] = True
        else:
            flags["client_cut"] = True
        return
    if fault.kind == "delay" and 2 * params["extra_ms"] < topo.request_timeout_ms:
        return  # Slower, but every answer still arrives in time.
    if producer_link:
        flags["client_timeouts"] = True
    if broker_link and topo.replication_factor >= 2:
        flags["isr_stall"] = True
    if (
        fault.kind == "pause"
        and "leader" in ends
        and _end_ms(fault) - fault.at_ms >= topo.session_ms
    ):
        flags["leader_death_cut"] = True


def _deaths(
    topo: _Topology, faults: tuple[FaultSpec, ...], flags: dict[str, Any]
) -> list[tuple[float, bool]]:
    """Leader deaths (time, with power loss); sets crash-related flags as it goes."""
    deaths: list[tuple[float, bool]] = []
    power: dict[float, int] = {}
    for fault in faults:
        if fault.kind != "crash":
            continue
        target = fault.params["target"]
        roles = topo.roles(target)
        lose = bool(fault.params.get("lose_unflushed"))
        if "producer" in roles:
            flags["producer_restart"] = True
        if lose:
            power[fault.at_ms] = power.get(fault.at_ms, 0) + topo.replica_count(target)
        if "leader" in roles:
            flags.update(leader_death=True, client_timeouts=True)
            deaths.append((fault.at_ms, lose))
        if "follower" in roles:
            flags["isr_stall"] = True
    if flags.pop("leader_death_cut", False):
        flags.update(leader_death=True, client_timeouts=True)
        if topo.replication_factor >= 2:
            flags["failover"] = True
    flags["power_loss_replicas"] = max(power.values(), default=0)
    return deaths
