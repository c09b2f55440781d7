"""The mutation check: deliberate simulator bugs that the suite must catch.

Each mutant is a small, realistic bug applied with `monkeypatch` (tests
only). Each names its killers — shipped scenarios whose `[expect]` must then
fail, runs that must trip a replication invariant (`sim.invariants`), or,
for the truncation rules, the replication tests that pin KIP-101/279
exactly — and `test_every_mutant_is_killed` asserts that at least one killer
of every mutant fails. A mutant no killer notices would mean the suite
cannot tell a broken simulator from a correct one.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from sim.client import sender as sender_module
from sim.cluster import broker as broker_module
from sim.cluster import log as log_module
from sim.cluster import partition as partition_module
from sim.cluster import producer_state as producer_state_module
from sim.cluster import replication as replication_module
from sim.cluster.controller import Controller
from sim.invariants import InvariantViolation
from sim.protocol import Errors, PartitionState
from sim.runner import run_scenario
from sim.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"

Killer = Callable[[], bool]
"""Returns True when it notices the mutant (the mutant is killed)."""


def scenario_killer(name: str, *overrides: str) -> Killer:
    """Killed when the scenario's [expect] fails, an invariant trips, or the engine asserts."""

    def run() -> bool:
        try:
            result = run_scenario(
                load_scenario(SCENARIOS / name, overrides), 0, check_invariants=True
            )
        except (InvariantViolation, AssertionError):
            return True
        return not result.expect_holds

    run.__name__ = f"{name} {' '.join(overrides)}".strip()
    return run


def unit_killer(test_name: str) -> Killer:
    """Killed when one of the replication tests that pin the rule fails."""

    def run() -> bool:
        spec = importlib.util.spec_from_file_location(
            "replication_tests", ROOT / "tests" / "unit" / "test_replication.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        try:
            getattr(module, test_name)()
        except (AssertionError, InvariantViolation):
            return True
        return False

    run.__name__ = test_name
    return run


@dataclass(frozen=True)
class Mutant:
    name: str
    apply: Callable[[pytest.MonkeyPatch], None]
    killers: tuple[Killer, ...]


def _hw_is_leader_leo(mp: pytest.MonkeyPatch) -> None:
    def maybe_increment_hw(self: partition_module.Replica) -> bool:
        if self.log.leo <= self.log.hw:
            return False
        self.log.hw = self.log.leo
        self.complete_delayed()
        return True

    mp.setattr(partition_module.Replica, "maybe_increment_hw", maybe_increment_hw)


def _acks_all_after_leader_append(mp: pytest.MonkeyPatch) -> None:
    original = broker_module.Broker._append

    def _append(self, key, batch, acks, injected):  # noqa: ANN001, ANN202 - mirrors Broker._append
        return original(self, key, batch, 1 if acks == -1 else acks, injected)

    mp.setattr(broker_module.Broker, "_append", _append)


def _truncate_to_own_hw(mp: pytest.MonkeyPatch) -> None:
    original = replication_module.ReplicaFetchers._apply

    def _apply(self, leader, data):  # noqa: ANN001, ANN202
        if data.diverging_epoch is not None:
            replica = self.broker.replicas.get((data.topic, data.partition))
            if replica is not None and replica.leader == leader:
                replica.log.truncate_to(replica.log.hw)  # pre-KIP-101: to the follower's own HW
                return True
        return original(self, leader, data)

    mp.setattr(replication_module.ReplicaFetchers, "_apply", _apply)


def _no_truncation(mp: pytest.MonkeyPatch) -> None:
    original = replication_module.ReplicaFetchers._apply

    def _apply(self, leader, data):  # noqa: ANN001, ANN202
        if data.diverging_epoch is not None:
            return True  # keep the diverged suffix
        return original(self, leader, data)

    mp.setattr(replication_module.ReplicaFetchers, "_apply", _apply)


def _no_sequence_check(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(producer_state_module.ProducerStateManager, "check", lambda self, batch: Errors.NONE)


def _one_batch_dedup_window(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(producer_state_module, "NUM_BATCHES_TO_RETAIN", 1)


def _ignore_max_in_flight(mp: pytest.MonkeyPatch) -> None:
    def _node_ready(self, leader: int, now: float) -> bool:
        if self.node_backoff_until.get(leader, -1.0) > now:
            return False
        if leader not in self.connected:
            self.connect(leader)
            return False
        return True

    mp.setattr(sender_module.Sender, "_node_ready", _node_ready)
    mp.setattr(sender_module.Sender, "_drain_mutes", False, raising=False)
    original_drain = sender_module.Sender._drain

    def _drain(self, keys, now):  # noqa: ANN001, ANN202 - and no muting either
        drained = original_drain(self, keys, now)
        self.muted.clear()
        return drained

    mp.setattr(sender_module.Sender, "_drain", _drain)


def _unclean_despite_false(mp: pytest.MonkeyPatch) -> None:
    original = Controller._elect

    def _elect(self: Controller, state: PartitionState) -> PartitionState:
        saved = self.unclean_leader_election
        self.unclean_leader_election = True
        try:
            return original(self, state)
        finally:
            self.unclean_leader_election = saved

    mp.setattr(Controller, "_elect", _elect)


def _read_committed_ignores_aborts(mp: pytest.MonkeyPatch) -> None:
    def committed_batches(self: log_module.PartitionLog, bound: int):  # noqa: ANN202
        return [b for b in self.batches if b.base_offset < bound and b.batch.control is None]

    mp.setattr(log_module.PartitionLog, "committed_batches", committed_batches)


def _hw_ignores_min_isr(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(partition_module.Replica, "under_min_isr", lambda self: False)


MUTANTS = (
    Mutant(
        "hw-is-leader-leo", _hw_is_leader_leo, (scenario_killer("acks-all-leader-failover.toml"),)
    ),
    Mutant(
        "acks-all-answered-after-leader-append",
        _acks_all_after_leader_append,
        (
            scenario_killer("acks-all-leader-failover.toml"),
            scenario_killer("acks1-leader-failover.toml", "producer.acks='all'", "expect.lost=0"),
        ),
    ),
    Mutant(
        "truncate-to-own-hw",
        _truncate_to_own_hw,
        (
            unit_killer(
                "test_a_diverged_old_leader_truncates_to_the_new_leaders_epoch_start_not_to_its_hw"
            ),
            scenario_killer("unclean-election-loss.toml"),
        ),
    ),
    Mutant(
        "no-truncation",
        _no_truncation,
        (
            unit_killer(
                "test_a_diverged_old_leader_truncates_to_the_new_leaders_epoch_start_not_to_its_hw"
            ),
            scenario_killer("acks1-leader-failover.toml"),
        ),
    ),
    Mutant(
        "no-sequence-check",
        _no_sequence_check,
        (
            scenario_killer(
                "in-flight-reorder.toml", "producer.enable_idempotence=true", "expect.reordered=0"
            ),
        ),
    ),
    Mutant(
        "one-batch-dedup-window",
        _one_batch_dedup_window,
        (
            scenario_killer(
                "no-idempotence-duplicates.toml",
                "producer.enable_idempotence=true",
                "expect.duplicated=0",
            ),
        ),
    ),
    Mutant(
        "ignore-max-in-flight",
        _ignore_max_in_flight,
        (
            scenario_killer(
                "in-flight-reorder.toml",
                "producer.max_in_flight_requests_per_connection=1",
                "expect.reordered=0",
            ),
        ),
    ),
    Mutant(
        "unclean-election-despite-false",
        _unclean_despite_false,
        (
            scenario_killer(
                "unclean-election-loss.toml",
                "cluster.unclean_leader_election_enable=false",
                "expect.lost=0",
            ),
        ),
    ),
    Mutant(
        "read-committed-ignores-aborts",
        _read_committed_ignores_aborts,
        (scenario_killer("txn-commit-abort.toml"),),
    ),
    Mutant(
        "hw-advances-under-min-isr",
        _hw_ignores_min_isr,
        (scenario_killer("min-insync-unavailable.toml"),),
    ),
)


def test_there_are_at_least_eight_mutants() -> None:
    assert len(MUTANTS) >= 8
    assert len({m.name for m in MUTANTS}) == len(MUTANTS)


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_every_mutant_is_killed(mutant: Mutant, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        replication_module, "MAX_BATCHES_PER_FETCH", replication_module.MAX_BATCHES_PER_FETCH
    )
    mutant.apply(monkeypatch)
    survived = []
    for killer in mutant.killers:
        if killer():
            return
        survived.append(killer.__name__)
    pytest.fail(f"mutant {mutant.name} survived every killer: {survived}")


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_the_killers_pass_on_the_real_simulator(mutant: Mutant) -> None:
    """A killer that fails without the mutant would prove nothing."""
    for killer in mutant.killers:
        assert not killer(), f"{killer.__name__} fails on the unmutated simulator"
