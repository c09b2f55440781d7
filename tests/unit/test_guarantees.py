"""The expected-guarantee model: what Kafka promises per configuration and fault class."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from sim.guarantees import (
    ANOMALIES,
    RULES,
    FaultProfile,
    GuaranteeConfig,
    allowed,
    profile,
    verdict,
)
from sim.scenario import load_scenario

STORIES = Path(__file__).resolve().parents[2] / "scenarios" / "matrix"

STRONG = GuaranteeConfig(
    acks=-1,
    replication_factor=3,
    min_insync_replicas=2,
    enable_idempotence=True,
    max_in_flight=5,
    unclean=False,
)
"""acks=all, RF 3, min.insync 2, unclean off, idempotence on."""

CRASH = FaultProfile(leader_death=True, failover=True, client_timeouts=True, isr_stall=True)
PARTITION = FaultProfile(client_timeouts=True, client_cut=True, isr_stall=True)
DROP = FaultProfile(client_timeouts=True)
DELAY = FaultProfile(client_timeouts=True, isr_stall=True)
PAUSE = FaultProfile(leader_death=True, failover=True, client_timeouts=True, isr_stall=True)
REFUSED = FaultProfile(refused=True)


def _allowed(config: GuaranteeConfig, faults: FaultProfile) -> set[str]:
    return {kind for kind, rules in allowed(config, faults).items() if rules}


def _story(name: str, *overrides: str):
    return load_scenario(STORIES / f"{name}.toml", overrides)


@pytest.mark.parametrize("faults", [CRASH, PARTITION, DROP, DELAY, PAUSE, REFUSED])
def test_strong_config_promises_no_anomaly_under_crashes_partitions_drops_delays_pauses(faults):
    assert _allowed(STRONG, faults) == set()


def test_acks1_allows_loss_on_leader_failover_but_not_without_one():
    acks1 = replace(STRONG, acks=1, enable_idempotence=False, max_in_flight=1)
    assert "lost" in _allowed(acks1, CRASH)
    assert "lost" not in _allowed(acks1, DROP)
    assert "lost" not in _allowed(replace(acks1, replication_factor=1), CRASH)  # no failover


def test_acks0_allows_loss_when_the_leader_dies_or_refuses():
    acks0 = replace(STRONG, acks=0, enable_idempotence=False)
    assert "lost" in _allowed(acks0, CRASH)
    assert "lost" in _allowed(acks0, REFUSED)
    assert _allowed(acks0, DROP) == set()  # no responses to lose, no retries to duplicate


def test_retries_without_idempotence_allow_duplicates_after_a_lost_answer():
    plain = replace(STRONG, enable_idempotence=False, max_in_flight=1)
    assert _allowed(plain, DROP) == {"duplicated"}
    assert "duplicated" not in _allowed(plain, REFUSED)  # nothing was appended
    assert "duplicated" not in _allowed(replace(plain, retries=0), DROP)


def test_several_in_flight_without_idempotence_allow_reordering():
    plain = replace(STRONG, enable_idempotence=False, max_in_flight=5)
    assert "reordered" in _allowed(plain, REFUSED)
    assert "reordered" not in _allowed(replace(plain, max_in_flight=1), REFUSED)
    assert "reordered" not in _allowed(replace(STRONG, max_in_flight=5), REFUSED)


def test_correlated_power_loss_of_min_insync_replicas_allows_loss_even_with_acks_all():
    assert "lost" in _allowed(STRONG, FaultProfile(power_loss_replicas=2))
    assert "lost" in _allowed(STRONG, FaultProfile(power_loss_replicas=3))
    assert "lost" not in _allowed(STRONG, FaultProfile(power_loss_replicas=1))
    acks1 = replace(STRONG, acks=1, enable_idempotence=False)
    assert "lost" in _allowed(acks1, FaultProfile(power_loss_replicas=1))


def test_power_loss_of_the_last_isr_member_allows_loss_for_every_config():
    faults = FaultProfile(leader_death=True, lone_leader_lost=True, lone_leader_power_loss=True)
    assert "lost" in _allowed(STRONG, faults)
    assert "lost" in _allowed(replace(STRONG, min_insync_replicas=3), faults)


def test_unclean_election_after_a_lone_leader_acked_alone_allows_loss():
    faults = FaultProfile(leader_death=True, lone_leader_lost=True, client_timeouts=True)
    jepsen = replace(STRONG, min_insync_replicas=1, unclean=True)
    assert "lost" in _allowed(jepsen, faults)
    assert "lost" in _allowed(replace(jepsen, acks=1, enable_idempotence=False), faults)
    assert "lost" not in _allowed(replace(jepsen, unclean=False), faults)  # offline instead
    assert "lost" not in _allowed(
        replace(jepsen, min_insync_replicas=2), faults
    )  # never acked alone


def test_unclean_election_of_a_stale_follower_allows_loss_unless_min_insync_is_rf():
    faults = FaultProfile(leader_death=True, failover=True, stale_successor=True)
    assert "lost" in _allowed(replace(STRONG, unclean=True), faults)
    assert "lost" not in _allowed(replace(STRONG, unclean=True, min_insync_replicas=3), faults)
    assert "lost" not in _allowed(STRONG, faults)


def test_a_producer_restart_allows_duplicates_even_with_idempotence():
    assert _allowed(STRONG, FaultProfile(producer_restart=True)) == {"duplicated"}


def test_transaction_anomalies_are_never_allowed():
    everything = FaultProfile(
        leader_death=True, failover=True, lone_leader_lost=True, lone_leader_power_loss=True,
        stale_successor=True, power_loss_replicas=3, client_timeouts=True, client_cut=True,
        isr_stall=True, refused=True, after_append_error=True, producer_restart=True,
    )  # fmt: skip
    weakest = GuaranteeConfig(0, 1, 1, False, 5, True)
    for config in (STRONG, weakest, replace(weakest, acks=1)):
        kinds = _allowed(config, everything)
        assert "aborted_read" not in kinds and "torn_txn" not in kinds


def test_every_rule_cites_its_source_and_names_a_known_anomaly():
    assert len({rule.id for rule in RULES}) == len(RULES)
    for rule in RULES:
        assert rule.anomaly in ANOMALIES
        assert any(mark in rule.source for mark in ("§", "KIP-", "Jepsen")), rule.id


def test_verdicts_follow_observed_versus_allowed():
    assert verdict([], {}) == ("ok", dict.fromkeys(ANOMALIES, "ok"))
    assert verdict(["lost"], {"lost": 2})[0] == "anomaly-allowed"
    assert verdict(["lost"], {})[0] == "not-reproduced"
    assert verdict([], {"duplicated": 1})[0] == "simulator-bug"
    result, kinds = verdict(["lost", "reordered"], {"lost": 1, "duplicated": 1})
    assert result == "simulator-bug"
    assert kinds["lost"] == "anomaly-allowed" and kinds["reordered"] == "not-reproduced"


def test_min_insync_above_rf_is_capped_at_rf_as_kafka_does():
    config = GuaranteeConfig.from_scenario(
        _story("leader-crash", "topics[0].replication_factor=1", "topics[0].min_insync_replicas=2")
    )
    assert config.replication_factor == 1 and config.min_insync_replicas == 1


def test_story_profiles_name_what_each_story_does():
    lone = profile(_story("unclean-election"))
    assert lone.lone_leader_lost and not lone.failover and not lone.power_loss_replicas
    isolated = profile(_story("leader-isolated-crash"))
    assert isolated.failover and not isolated.lone_leader_lost
    lag = profile(_story("follower-lag-isr"))
    assert lag.isr_stall and not lag.leader_death
    assert profile(_story("follower-lag-isr", "topics[0].replication_factor=1")) == FaultProfile(
        kinds=("partition",)
    )
    assert profile(_story("power-loss-all")).power_loss_replicas == 3
    assert (
        profile(_story("power-loss-all", "topics[0].replication_factor=1")).power_loss_replicas == 1
    )
    last = profile(_story("power-loss-last-isr"))
    assert last.lone_leader_power_loss
    assert profile(_story("dropped-responses")) == FaultProfile(
        client_timeouts=True, kinds=("drop",)
    )
    assert profile(_story("transient-errors")).refused
    assert profile(_story("producer-restart")).producer_restart
