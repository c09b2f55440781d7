"""The guarantee matrix: producer/topic configurations × fault stories × seeds, judged.

`kpsim matrix` runs every fault story of `scenarios/matrix/` under every
combination of six settings — acks, replication factor, min.insync.replicas,
idempotence, max in-flight requests and unclean leader election — set through
`--set` overrides on the story, with `--seeds N` seeds each. A *cell* is one
configuration × one story; it reports how many runs showed each anomaly, the
worst count, the replay command of the smallest witness of each anomaly, and a
verdict against the expected-guarantee model (`sim.guarantees`): `ok`,
`anomaly-allowed`, `not-reproduced`, `simulator-bug`, or `invalid-config` (a
combination Kafka rejects, shown with Kafka's reason and never run).

Runs are spread over processes (`--jobs`, default: every core); results are
placed by cell and seed, never by completion, so the output is identical for
any job count.

The default sweep is 96 configurations (32 of them invalid: an explicit
enable_idempotence=true with acks 0 or 1) × 11 stories × 2 seeds = 1,408 runs,
about 50 s of CPU in all: about 25-30 s of wall time on 2 idle cores.

The committed reports are regenerated with one command, from the repository root:

    kpsim matrix --markdown reports/guarantees.md --html reports/guarantees.html

Left out: transactional workloads (the stories are not transactional), more
than one topic per story, and swarm-style random fault schedules.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from sim.guarantees import ANOMALIES, GuaranteeConfig, allowed, profile, verdict
from sim.scenario import ScenarioError, load_scenario

STORIES_DIR = Path("scenarios") / "matrix"

DEFAULTS: dict[str, str] = {
    "acks": "0,1,all",
    "rf": "1,3",
    "min_insync": "1,2",
    "idempotence": "on,off",
    "max_in_flight": "1,5",
    "unclean": "off,on",
}
"""The default sweep: every dimension varies (see the module docstring for its cost)."""
DEFAULT_SEEDS = 2

_ON = {"on": True, "true": True, "yes": True, "off": False, "false": False, "no": False}


class MatrixError(ValueError):
    """Bad matrix arguments (a dimension value, an unknown story); exit code 2."""


@dataclass(frozen=True)
class Config:
    """One point of the sweep: the six settings the matrix varies."""

    acks: str  # "0", "1" or "all"
    rf: int
    min_insync: int
    idempotence: bool
    max_in_flight: int
    unclean: bool

    def overrides(self) -> tuple[str, ...]:
        """The `--set` overrides that put this config into a story."""
        return (
            f"producer.acks={self.acks}",
            f"topics[0].replication_factor={self.rf}",
            f"topics[0].min_insync_replicas={self.min_insync}",
            f"producer.enable_idempotence={str(self.idempotence).lower()}",
            f"producer.max_in_flight_requests_per_connection={self.max_in_flight}",
            f"cluster.unclean_leader_election_enable={str(self.unclean).lower()}",
        )


@dataclass(frozen=True)
class Story:
    name: str
    path: str  # as shown in replay commands (relative to the working directory if under it)
    description: str


@dataclass(frozen=True)
class Plan:
    """The cells (config-major, story-minor) and the seeds each valid cell runs."""

    configs: tuple[Config, ...]
    stories: tuple[Story, ...]
    seeds: tuple[int, ...]

    def cells(self) -> list[tuple[Config, Story]]:
        return [(c, s) for c in self.configs for s in self.stories]


# --- arguments ---------------------------------------------------------------------------


def parse_values(dimension: str, text: str) -> list[Any]:
    """Parse one `--acks 0,1,all`-style list; MatrixError names the bad value."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise MatrixError(f"--{dimension.replace('_', '-')}: expected a comma-separated list")
    out: list[Any] = []
    for item in items:
        value = _parse_value(dimension, item.lower())
        if value not in out:
            out.append(value)
    return out


def _parse_value(dimension: str, item: str) -> Any:
    flag = f"--{dimension.replace('_', '-')}"
    if dimension == "acks":
        if item in ("0", "1", "all", "-1"):
            return "all" if item == "-1" else item
        raise MatrixError(f"{flag}: expected 0, 1 or all, got {item!r}")
    if dimension in ("idempotence", "unclean"):
        if item in _ON:
            return _ON[item]
        raise MatrixError(f"{flag}: expected on or off, got {item!r}")
    if not item.isdigit() or int(item) < 1:
        raise MatrixError(f"{flag}: expected positive integers, got {item!r}")
    return int(item)


def find_stories(names: Sequence[str] | None, base: Path | None = None) -> tuple[Story, ...]:
    """Story files by name (`leader-crash`) or path; None: every default story."""
    directory = _stories_dir(base)
    if not names:
        paths = sorted(directory.glob("*.toml"))
    else:
        paths = []
        for name in names:
            candidate = Path(name) if name.endswith(".toml") else directory / f"{name}.toml"
            if not candidate.is_file():
                known = ", ".join(p.stem for p in sorted(directory.glob("*.toml")))
                raise MatrixError(f"--stories: no story {name!r} (known: {known})")
            paths.append(candidate)
    stories = []
    for path in paths:
        shown = _shown_path(path)
        try:
            scenario = load_scenario(shown)
        except ScenarioError as error:
            raise MatrixError(str(error)) from None
        stories.append(Story(scenario.name, shown, scenario.description))
    if not stories:
        raise MatrixError(f"no fault stories found in {directory}")
    return tuple(stories)


def _stories_dir(base: Path | None) -> Path:
    if base is not None:
        return base
    if STORIES_DIR.is_dir():
        return STORIES_DIR
    return Path(__file__).resolve().parents[1] / STORIES_DIR


def _shown_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path.resolve())


def make_plan(dimensions: dict[str, str], seeds: int, stories: tuple[Story, ...]) -> Plan:
    """The configs (the product of every dimension, in the order given) and the seeds."""
    values = {name: parse_values(name, dimensions.get(name) or DEFAULTS[name]) for name in DEFAULTS}
    if seeds < 1:
        raise MatrixError("--seeds: expected at least 1")
    configs = tuple(
        Config(a, r, m, i, f, u)
        for a, r, m, i, f, u in itertools.product(*(values[name] for name in DEFAULTS))
    )
    return Plan(configs, stories, tuple(range(seeds)))


# --- running ---------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _load(path: str, overrides: tuple[str, ...]):
    return load_scenario(path, overrides)


def run_task(task: tuple[str, tuple[str, ...], int]) -> dict[str, Any]:
    """Run one story with one config and seed; a plain dict crosses process boundaries.

    An exception from the engine, or a run the checker could not judge (a
    partition still offline at the final read), is returned as the run's
    `error`: the cell becomes a simulator bug, and the sweep goes on.
    """
    from sim import runner

    path, overrides, seed = task
    scenario = _load(path, overrides)
    try:
        result = runner.run_scenario(scenario, seed)
    except Exception as error:
        replay = runner.replay_command(scenario, seed)
        return {"seed": seed, "error": f"{type(error).__name__}: {error}", "replay": replay}
    counts = ("sent", "acked", "failed", "unknown", *ANOMALIES)
    outcome = {
        "seed": seed,
        "counts": {k: result.counts.get(k, 0) for k in counts},
        "replay": result.replay,
    }
    if result.valid == "unknown":  # The final read could not judge every record.
        reasons = [f"{result.counts.get('unjudged', 0)} unjudged records"]
        reasons += [f"{k}: {v}" for k, v in sorted(result.errors.items())]
        outcome["error"] = "checker could not judge the run: " + "; ".join(reasons)
    return outcome


def run_matrix(
    plan: Plan, jobs: int | None = None, progress: Callable[[int, int], None] | None = None
) -> dict[str, Any]:
    """Run the plan; returns the JSON object {runs, wall_s, cells} (cells in plan order)."""
    started = time.perf_counter()
    cells: list[dict[str, Any]] = []
    tasks: list[tuple[int, tuple[str, tuple[str, ...], int]]] = []
    for config, story in plan.cells():
        cell = _new_cell(config, story)
        cells.append(cell)
        if cell["verdict"] != "invalid-config":
            tasks.extend((len(cells) - 1, (story.path, config.overrides(), s)) for s in plan.seeds)
    outcomes = _execute([t for _, t in tasks], jobs, progress)
    per_cell: dict[int, list[dict[str, Any]]] = {}
    for (index, _), outcome in zip(tasks, outcomes, strict=True):
        per_cell.setdefault(index, []).append(outcome)
    for index, runs in sorted(per_cell.items()):
        _judge(cells[index], sorted(runs, key=lambda r: r["seed"]))
    return {
        "runs": len(tasks),
        "wall_s": round(time.perf_counter() - started, 2),
        "seeds": len(plan.seeds),
        "dimensions": _dimensions(plan),
        "stories": [_story_info(story) for story in plan.stories],
        "cells": cells,
    }


def _dimensions(plan: Plan) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name in DEFAULTS:
        values = dict.fromkeys(getattr(c, name) for c in plan.configs)
        out[name.replace("_", "-")] = [
            ("on" if v else "off") if isinstance(v, bool) else str(v) for v in values
        ]
    return out


def _story_info(story: Story) -> dict[str, Any]:
    scenario = _load(story.path, ())
    return {
        "name": story.name,
        "path": story.path,
        "description": story.description,
        "faults": list(profile(scenario).kinds),
    }


def _execute(
    tasks: list[tuple[str, tuple[str, ...], int]],
    jobs: int | None,
    progress: Callable[[int, int], None] | None,
) -> list[dict[str, Any]]:
    jobs = max(1, jobs or _cores())
    results: list[dict[str, Any] | None] = [None] * len(tasks)
    report = progress or (lambda done, total: None)
    report(0, len(tasks))
    if jobs == 1 or len(tasks) <= 1:
        for i, task in enumerate(tasks):
            results[i] = run_task(task)
            report(i + 1, len(tasks))
    else:
        with multiprocessing.get_context("spawn" if os.name == "nt" else "fork").Pool(jobs) as pool:
            indexed = pool.imap_unordered(_indexed_task, list(enumerate(tasks)), chunksize=2)
            for done, (i, outcome) in enumerate(indexed, start=1):
                results[i] = outcome
                report(done, len(tasks))
    assert all(r is not None for r in results)
    return [r for r in results if r is not None]


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _indexed_task(item: tuple[int, tuple[str, tuple[str, ...], int]]) -> tuple[int, dict[str, Any]]:
    index, task = item
    return index, run_task(task)


# --- judging ---------------------------------------------------------------------------------


def _new_cell(config: Config, story: Story) -> dict[str, Any]:
    """A cell before its runs: its config, and either its allowed anomalies or why it is invalid."""
    cell: dict[str, Any] = {
        "story": story.name,
        "config": asdict(config),
        "overrides": list(config.overrides()),
        "runs": 0,
    }
    try:
        scenario = _load(story.path, config.overrides())
    except ScenarioError as error:
        cell.update(verdict="invalid-config", reason=error.reason)
        return cell
    faults = profile(scenario)
    rules = allowed(GuaranteeConfig.from_scenario(scenario), faults)
    cell["allowed"] = {k: [r.id for r in v] for k, v in rules.items() if v}
    cell["faults"] = list(faults.kinds)
    cell["verdict"] = "pending"
    return cell


def _judge(cell: dict[str, Any], runs: list[dict[str, Any]]) -> None:
    """Aggregate a cell's runs and give its verdict."""
    cell["runs"] = len(runs)
    ok_runs = [r for r in runs if "counts" in r and "error" not in r]
    cell["anomaly_runs"] = {k: sum(1 for r in ok_runs if r["counts"][k] > 0) for k in ANOMALIES}
    cell["worst"] = {k: max((r["counts"][k] for r in ok_runs), default=0) for k in ANOMALIES}
    cell["outcomes"] = {
        k: sum(r["counts"][k] for r in ok_runs) for k in ("sent", "acked", "failed", "unknown")
    }
    witnesses: dict[str, dict[str, Any]] = {}
    for kind in ANOMALIES:
        hits = [r for r in ok_runs if r["counts"][kind] > 0]
        if hits:
            best = min(hits, key=lambda r: (r["counts"][kind], r["seed"]))
            witnesses[kind] = {
                "seed": best["seed"],
                "count": best["counts"][kind],
                "replay": best["replay"],
            }
    cell["witnesses"] = witnesses
    smallest = min(witnesses.values(), key=lambda w: (w["count"], w["seed"]), default=None)
    cell["replay"] = smallest["replay"] if smallest else None
    cell["verdict"], cell["kinds"] = verdict(cell.get("allowed", {}), cell["anomaly_runs"])
    errors = [r for r in runs if "error" in r]
    if errors:  # The engine failed or could not be judged: a bug, whatever else was seen.
        cell["errors"] = [
            {"seed": r["seed"], "error": r["error"], "replay": r["replay"]} for r in errors
        ]
        cell["verdict"] = "simulator-bug"
        cell["replay"] = cell["replay"] or errors[0]["replay"]


# --- the command ------------------------------------------------------------------------------


def main_matrix(args: Any) -> int:
    """`kpsim matrix`: run, print the table (or JSON), write the reports.

    Exit codes: 0, or 1 when any cell is a simulator bug; 2 on bad arguments.
    """
    import json
    import sys

    from rich.console import Console

    try:
        names = [n.strip() for n in args.stories.split(",") if n.strip()] if args.stories else None
        dims = {name: getattr(args, name) for name in DEFAULTS}
        plan = make_plan(dims, args.seeds, find_stories(names))
    except MatrixError as error:
        print(f"kpsim matrix: {error}", file=sys.stderr)
        return 2
    result = _run_with_progress(plan, args.jobs, Console(stderr=True))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        from sim.report.terminal import print_matrix

        print_matrix(result, Console())
    if args.markdown:
        from sim.report.markdown import render_markdown

        _write(args.markdown, render_markdown(result))
    if args.html:
        from sim.report.html import render_html

        _write(args.html, render_html(result))
    return 1 if any(c["verdict"] == "simulator-bug" for c in result["cells"]) else 0


def _run_with_progress(plan: Plan, jobs: int | None, console: Any) -> dict[str, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("matrix"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("runs", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return run_matrix(plan, jobs, progress)


def _write(path: str, text: str) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
