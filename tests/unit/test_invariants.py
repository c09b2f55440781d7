"""The runtime invariants hold on every shipped scenario and catch broken replication."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.cluster import partition as partition_module
from sim.cluster.controller import Controller
from sim.invariants import InvariantViolation
from sim.runner import run_scenario
from sim.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def test_no_invariant_is_violated_by_any_shipped_scenario() -> None:
    for path in sorted(SCENARIOS.glob("*.toml")):
        run_scenario(load_scenario(path), seed=1, check_invariants=True)


def test_hw_that_ignores_followers_violates_hw_below_isr_leo(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def leader_only_hw(self: partition_module.Replica) -> bool:
        if self.log.leo <= self.log.hw:
            return False
        self.log.hw = self.log.leo
        self.complete_delayed()
        return True

    monkeypatch.setattr(partition_module.Replica, "maybe_increment_hw", leader_only_hw)
    with pytest.raises(InvariantViolation) as caught:
        run_scenario(
            load_scenario(SCENARIOS / "acks-all-leader-failover.toml"), 0, check_invariants=True
        )
    assert caught.value.name == "hw-below-isr-leo"
    assert caught.value.tail, "a violation carries the trace tail"


def test_electing_outside_the_isr_cleanly_violates_clean_leader_in_isr(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = Controller._elect

    def elect_first_live(self: Controller, state):  # noqa: ANN001 - Kafka's PartitionState
        new = original(self, state)
        live = [b for b in state.replicas if not self.sessions[b].fenced and b != state.leader]
        if new.leader >= 0 and live and live[-1] not in new.isr:
            self.world.trace(
                "controller.elect",
                topic=state.topic,
                partition=state.partition,
                leader=live[-1],
                epoch=new.leader_epoch,
                unclean=False,
                isr=new.isr,
            )
        return new

    monkeypatch.setattr(Controller, "_elect", elect_first_live)
    with pytest.raises(InvariantViolation) as caught:
        run_scenario(
            load_scenario(
                SCENARIOS / "unclean-election-loss.toml",
                ("cluster.unclean_leader_election_enable=false",),
            ),
            0,
            check_invariants=True,
        )
    assert caught.value.name in ("clean-leader-in-isr", "leader-epochs-grow")
