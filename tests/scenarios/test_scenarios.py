"""Every shipped scenario runs, and its [expect] holds — also the `--set` variants
its lesson tells users to try."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.runner import run_scenario
from sim.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
FILES = sorted(p.name for p in SCENARIOS.glob("*.toml"))

VARIANTS = {
    "unclean-election-loss.toml": [
        ("cluster.unclean_leader_election_enable=false", "expect.lost=0"),
    ],
    "no-idempotence-duplicates.toml": [
        ("producer.enable_idempotence=true", "expect.duplicated=0"),
    ],
    "in-flight-reorder.toml": [
        ("producer.max_in_flight_requests_per_connection=1", "expect.reordered=0"),
        ("producer.enable_idempotence=true", "expect.reordered=0"),
    ],
    "idempotence-session-boundary.toml": [
        ("faults[1].kind='pause'", "expect.duplicated=0"),
    ],
    "acks1-leader-failover.toml": [
        ("producer.acks='all'", "expect.lost=0"),
    ],
}


def test_the_issue_scenarios_are_shipped() -> None:
    required = {
        "acks1-leader-failover",
        "acks-all-leader-failover",
        "acks0-crash",
        "unclean-election-loss",
        "min-insync-unavailable",
        "no-idempotence-duplicates",
        "in-flight-reorder",
    }
    assert required <= {name.removesuffix(".toml") for name in FILES}


@pytest.mark.parametrize("name", FILES)
def test_scenario_expectations_hold(name: str) -> None:
    scenario = load_scenario(SCENARIOS / name)
    result = run_scenario(scenario, seed=0)
    failed = [item for item in result.expect if not item["holds"]]
    assert scenario.expect, f"{name} has no [expect]"
    assert not failed, (failed, result.counts)


@pytest.mark.parametrize(
    ("name", "overrides"),
    [(name, overrides) for name, variants in sorted(VARIANTS.items()) for overrides in variants],
)
def test_scenario_variants_from_the_lessons_hold(name: str, overrides: tuple[str, ...]) -> None:
    result = run_scenario(load_scenario(SCENARIOS / name, overrides), seed=0)
    failed = [item for item in result.expect if not item["holds"]]
    assert not failed, (overrides, failed, result.counts)


def test_acks1_loss_witness_names_the_truncating_broker() -> None:
    result = run_scenario(load_scenario(SCENARIOS / "acks1-leader-failover.toml"), seed=0)
    witness = result.witnesses["lost"][0]
    assert "truncated orders/0" in witness["explanation"]
    assert "elected leader" in witness["explanation"]
    assert witness["records"][0]["status"] == "ok"


def test_acks0_reports_offset_minus_one_for_every_record() -> None:
    result = run_scenario(load_scenario(SCENARIOS / "acks0-crash.toml"), seed=0)
    assert result.counts["acked"] == result.counts["sent"]
    assert all(r["offset"] == -1 for w in result.witnesses["lost"] for r in w["records"])


def test_compression_shrinks_batches_on_the_wire_by_the_configured_ratio() -> None:
    from sim.runner import run_scenario_with_cluster

    def wire_bytes(*overrides: str) -> int:
        scenario = load_scenario(
            SCENARIOS / "acks-all-leader-failover.toml", ("faults=[]", *overrides)
        )
        _, cluster = run_scenario_with_cluster(scenario, seed=0)
        leader = cluster.brokers[cluster.controller.partitions[("orders", 0)].leader]
        return sum(b.batch.size_bytes for b in leader.replicas[("orders", 0)].log.batches)

    plain = wire_bytes()
    snappy = wire_bytes("producer.compression_type='snappy'")
    custom = wire_bytes("producer.compression_type='gzip'", "workload.compression_ratio=0.25")
    assert snappy == pytest.approx(plain * 0.55, rel=0.02)
    assert custom == pytest.approx(plain * 0.25, rel=0.02)
