"""`kpsim` exit codes and messages: 0 expect holds, 1 it does not, 2 bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sim.cli import main

ROOT = Path(__file__).resolve().parents[2]
GOOD = ROOT / "scenarios" / "acks0-crash.toml"

BASE = """
name = "bad-input"
description = "a scenario with one thing wrong"
[cluster]
brokers = 3
[[topics]]
name = "t"
partitions = 1
replication_factor = 3
[producer]
acks = "all"
[workload]
topic = "t"
records = 10
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    return path


def test_run_prints_one_json_object_with_the_contract_keys(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["run", str(GOOD), "--seed", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    for key in (
        "scenario",
        "seed",
        "config",
        "counts",
        "witnesses",
        "trace_digest",
        "sim_ms",
        "wall_ms",
        "replay",
    ):
        assert key in result, key
    for key in (
        "sent",
        "acked",
        "failed",
        "unknown",
        "lost",
        "duplicated",
        "reordered",
        "aborted_read",
        "torn_txn",
    ):
        assert isinstance(result["counts"][key], int), key
    assert result["seed"] == 1
    assert result["replay"].startswith("kpsim run ") and "--seed 1" in result["replay"]
    assert result["config"]["producer"]["acks"] == 0


def test_readable_output_shows_seed_counts_and_replay(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(GOOD)]) == 0
    out = capsys.readouterr().out
    assert "seed=0" in out and "lost" in out and "replay: kpsim run" in out


def test_expectation_that_does_not_hold_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(GOOD), "--set", "expect.lost=0", "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["expect_holds"] is False
    assert "--set expect.lost=0" in result["replay"]


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("name = 'x'\ndescription = \n", ["line 2"]),
        (BASE + "[cluster2]\n", ["cluster2"]),
        (BASE.replace("brokers = 3", "brokers = 3\nbrokerz = 1"), ["cluster.brokerz"]),
        (BASE.replace("records = 10", "records = 'ten'"), ["workload.records"]),
        (BASE.replace('acks = "all"', "acks = 2"), ["producer.acks"]),
        (
            BASE.replace(
                'acks = "all"',
                'acks = "all"\nenable_idempotence = true\nmax_in_flight_requests_per_connection = 6',
            ),
            ["producer.max_in_flight_requests_per_connection", "max_in_flight"],
        ),
        (
            BASE.replace('acks = "all"', "acks = 1\nenable_idempotence = true"),
            ["producer.", "acks"],
        ),
        (
            BASE + "[[faults]]\nat_ms = 1\nkind = 'crash'\ntarget = 'broker-7'\n",
            ["faults[0].target", "broker-7"],
        ),
        (
            BASE + "[[faults]]\nat_ms = 1\nkind = 'crash'\ntarget = 'leader:nosuch/0'\n",
            ["faults[0].target"],
        ),
        (BASE + "[[faults]]\nat_ms = 1\nkind = 'explode'\n", ["faults[0].kind"]),
    ],
)
def test_bad_input_exits_2_naming_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, needles: list[str]
) -> None:
    path = _write(tmp_path, text)
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err
    for needle in needles:
        assert needle in err, (needle, err)
    assert "Traceback" not in err


def test_missing_file_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "no/such/file.toml"]) == 2
    assert "no/such/file.toml" in capsys.readouterr().err


def test_bad_override_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(GOOD), "--set", "producer.acks=7"]) == 2
    assert "producer.acks" in capsys.readouterr().err


def test_a_real_process_exits_2_without_a_traceback(tmp_path: Path) -> None:
    path = _write(tmp_path, BASE.replace("records = 10", "records = -1"))
    done = subprocess.run(
        [sys.executable, "-m", "sim.cli", "run", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "workload.records" in done.stderr
    assert "Traceback" not in done.stderr


def test_explain_prints_the_lesson(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", str(ROOT / "scenarios" / "acks1-leader-failover.toml")]) == 0
    out = capsys.readouterr().out
    assert "min.insync.replicas" in out


def test_bench_json_reports_the_contract_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--records", "2000", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert set(figures) == {
        "records",
        "records_per_s",
        "simpy_events_per_s",
        "ratio",
        "peak_rss_mb",
        "sim_ms",
        "wall_s",
    }
    assert figures["records"] == 2000 and figures["records_per_s"] > 0 and figures["ratio"] > 0
