"""Same scenario + same seed ⇒ the same trace digest, in any process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sim.runner import run_scenario
from sim.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
JITTERY = ROOT / "scenarios" / "no-idempotence-duplicates.toml"


def _digest_in_subprocess(hashseed: str, seed: int, *overrides: str) -> dict:
    args = [sys.executable, "-m", "sim.cli", "run", str(JITTERY), "--seed", str(seed), "--json"]
    for override in overrides:
        args += ["--set", override]
    env = dict(os.environ, PYTHONHASHSEED=hashseed)
    done = subprocess.run(args, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)


def test_same_seed_gives_one_digest_in_one_process() -> None:
    scenario = load_scenario(JITTERY, ("cluster.jitter_ms=0.5",))
    digests = {run_scenario(scenario, seed=3).trace_digest for _ in range(3)}
    assert len(digests) == 1


def test_same_seed_gives_one_digest_across_processes_and_hash_seeds() -> None:
    first = _digest_in_subprocess("1", 5, "cluster.jitter_ms=0.5")
    second = _digest_in_subprocess("987654", 5, "cluster.jitter_ms=0.5")
    assert first["trace_digest"] == second["trace_digest"]
    assert first["counts"] == second["counts"]


def test_different_seeds_give_different_traces_when_the_scenario_is_random() -> None:
    scenario = load_scenario(JITTERY, ("cluster.jitter_ms=0.5",))
    digests = {run_scenario(scenario, seed=seed).trace_digest for seed in range(4)}
    assert len(digests) == 4


def test_any_broker_target_is_a_seeded_choice() -> None:
    scenario = load_scenario(
        ROOT / "scenarios" / "acks-all-leader-failover.toml",
        ("faults[1].target='any-broker'",),
    )
    crashed = set()
    for seed in range(8):
        result = run_scenario(scenario, seed=seed)
        assert result.counts["lost"] == 0
        crashed.add(result.trace_digest)
    assert len(crashed) > 1
