"""`kpsim matrix`: a tiny sweep runs, its JSON shape, determinism, invalid cells, reports."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from sim.cli import main
from sim.guarantees import ANOMALIES, VERDICTS
from sim.matrix import MatrixError, find_stories, make_plan, parse_values, run_matrix

ROOT = Path(__file__).resolve().parents[2]
STORIES = ROOT / "scenarios" / "matrix"
TINY = {  # 2 configs: idempotence on and off, everything else fixed.
    "acks": "all",
    "rf": "3",
    "min_insync": "2",
    "idempotence": "on,off",
    "max_in_flight": "5",
    "unclean": "off",
}
TINY_STORIES = ["dropped-responses", "transient-errors"]


@pytest.fixture(scope="module")
def tiny() -> dict:
    plan = make_plan(TINY, 1, find_stories(TINY_STORIES, STORIES))
    return run_matrix(plan, jobs=1)


def _cell(result: dict, story: str, **config) -> dict:
    for cell in result["cells"]:
        if cell["story"] == story and all(cell["config"][k] == v for k, v in config.items()):
            return cell
    raise AssertionError(f"no cell {story} {config}")


def test_tiny_matrix_runs_every_cell_once_per_seed(tiny):
    assert tiny["runs"] == 4
    assert [c["story"] for c in tiny["cells"]] == TINY_STORIES * 2  # config-major order
    assert all(c["runs"] == 1 for c in tiny["cells"])


def test_json_has_runs_wall_and_cells_with_the_contract_keys(tiny):
    assert {"runs", "wall_s", "cells"} <= set(tiny)
    json.dumps(tiny)  # Plain data all the way down.
    for cell in tiny["cells"]:
        assert {"config", "story", "runs", "anomaly_runs", "worst", "verdict", "replay"} <= set(
            cell
        )
        assert cell["verdict"] in VERDICTS
        assert set(cell["anomaly_runs"]) == set(ANOMALIES) == set(cell["worst"])


def test_idempotence_turns_the_duplicates_of_lost_answers_into_ok(tiny):
    without = _cell(tiny, "dropped-responses", idempotence=False)
    assert without["verdict"] == "anomaly-allowed"
    assert without["anomaly_runs"]["duplicated"] == 1 and without["worst"]["duplicated"] > 0
    assert without["witnesses"]["duplicated"]["replay"] == without["replay"]
    assert _cell(tiny, "dropped-responses", idempotence=True)["verdict"] == "ok"
    assert _cell(tiny, "transient-errors", idempotence=True)["verdict"] == "ok"
    reordered = _cell(tiny, "transient-errors", idempotence=False)
    assert reordered["kinds"]["reordered"] == "anomaly-allowed"


def test_the_replay_command_reproduces_the_smallest_witness(tiny, capsys):
    cell = _cell(tiny, "dropped-responses", idempotence=False)
    argv = shlex.split(cell["replay"])
    assert argv[:2] == ["kpsim", "run"]
    main([*argv[1:], "--json"])
    counts = json.loads(capsys.readouterr().out)["counts"]
    assert counts["duplicated"] == cell["witnesses"]["duplicated"]["count"]


def test_results_do_not_depend_on_the_job_count(tiny):
    plan = make_plan(TINY, 1, find_stories(TINY_STORIES, STORIES))
    assert run_matrix(plan, jobs=2)["cells"] == tiny["cells"]


def test_invalid_configurations_are_cells_with_kafkas_reason_and_no_runs():
    stories = find_stories(["transient-errors"], STORIES)
    dims = {**TINY, "acks": "1", "idempotence": "on", "max_in_flight": "5"}
    cell = run_matrix(make_plan(dims, 1, stories), jobs=1)["cells"][0]
    assert cell["verdict"] == "invalid-config" and cell["runs"] == 0
    assert "enable_idempotence=True is incompatible with user-provided acks=1" in cell["reason"]
    dims = {**TINY, "idempotence": "on", "max_in_flight": "6"}
    cell = run_matrix(make_plan(dims, 1, stories), jobs=1)["cells"][0]
    assert "max_in_flight_requests_per_connection=6" in cell["reason"]
    cell = run_matrix(make_plan({**TINY, "rf": "4"}, 1, stories), jobs=1)["cells"][0]
    assert cell["reason"] == "Replication factor: 4 larger than available brokers: 3."


def test_bad_dimension_values_and_unknown_stories_are_matrix_errors():
    assert parse_values("acks", "0,1,all,-1") == ["0", "1", "all"]
    assert parse_values("unclean", "on,off") == [True, False]
    with pytest.raises(MatrixError, match="--acks"):
        parse_values("acks", "2")
    with pytest.raises(MatrixError, match="--max-in-flight"):
        parse_values("max_in_flight", "0")
    with pytest.raises(MatrixError, match="no story 'nosuch'"):
        find_stories(["nosuch"], STORIES)


def test_cli_writes_json_markdown_and_a_self_contained_html_page(tmp_path, capsys):
    md, html = tmp_path / "r.md", tmp_path / "r.html"
    argv = ["matrix", "--seeds", "1", "--jobs", "1", "--json", "--markdown", str(md)]
    argv += [
        "--html",
        str(html),
        "--stories",
        ",".join(str(STORIES / f"{s}.toml") for s in TINY_STORIES),
    ]
    argv += ["--acks", "1,all", "--rf", "3", "--min-insync", "2", "--idempotence", "off"]
    argv += ["--max-in-flight", "5", "--unclean", "off"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["runs"] == 4 and len(result["cells"]) == 4
    text = md.read_text()
    assert "## The matrix" in text and "| dropped-responses | transient-errors |" in text
    assert "kpsim run" in text and "## The expected-guarantee model" in text
    page = html.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert (
        "anomaly-allowed" in page
        and "<script" not in page
        and "http" not in page.split("<body>")[0]
    )


def test_cli_reports_bad_arguments_with_exit_code_2(capsys):
    assert main(["matrix", "--acks", "2"]) == 2
    assert "--acks" in capsys.readouterr().err


def test_an_engine_failure_makes_the_cell_a_simulator_bug_with_its_replay(monkeypatch):
    from sim import runner

    def explode(scenario, seed=0):
        raise AssertionError("HW > LEO")

    monkeypatch.setattr(runner, "run_scenario", explode)
    stories = find_stories(["transient-errors"], STORIES)
    cell = run_matrix(make_plan({**TINY, "idempotence": "on"}, 1, stories), jobs=1)["cells"][0]
    assert cell["verdict"] == "simulator-bug"
    assert cell["errors"][0]["error"] == "AssertionError: HW > LEO"
    assert cell["replay"].startswith("kpsim run ") and "--seed 0" in cell["replay"]


def test_a_run_the_checker_cannot_judge_is_not_counted_as_clean(monkeypatch):
    from sim import runner

    real = runner.run_scenario

    def unjudged(scenario, seed=0):
        result = real(scenario, seed)
        result.valid = "unknown"
        result.counts["unjudged"] = 7
        return result

    monkeypatch.setattr(runner, "run_scenario", unjudged)
    stories = find_stories(["transient-errors"], STORIES)
    cell = run_matrix(make_plan({**TINY, "idempotence": "on"}, 1, stories), jobs=1)["cells"][0]
    assert cell["verdict"] == "simulator-bug"
    assert "7 unjudged records" in cell["errors"][0]["error"]
