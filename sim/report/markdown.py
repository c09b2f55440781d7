"""The guarantee matrix as Markdown (GitHub-flavoured tables); deterministic, no timings."""

from __future__ import annotations

from typing import Any

from sim.report import (
    CONFIG_COLUMNS,
    LETTERS,
    VERDICT_HELP,
    cell_mark,
    config_label,
    config_values,
    grid,
    invalid_configs,
    rules,
    verdict_counts,
    witness_rows,
)

REGENERATE = "kpsim matrix --markdown reports/guarantees.md --html reports/guarantees.html"


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_escape(c) for c in row) + " |" for row in rows]
    return lines


def render_markdown(result: dict[str, Any]) -> str:
    """The whole report: verdicts, legend, grid, stories, invalid configs, witnesses, model."""
    out: list[str] = ["# Kafka producer guarantee matrix", ""]
    out += _intro(result)
    out += ["## Verdicts", ""]
    counts = verdict_counts(result)
    out += _table(
        ["verdict", "cells", "meaning"],
        [[v, str(counts[v]), VERDICT_HELP[v]] for v in VERDICT_HELP],
    )
    out += ["", "## How to read a cell", ""]
    letters = ", ".join(f"`{letter}` {kind.replace('_', ' ')}" for kind, letter in LETTERS.items())
    out += [
        f"Letters name anomalies: {letters}. A letter alone (`L D`) was observed in at least one "
        "run and Kafka allows it there; in parentheses (`(R)`) Kafka allows it but no run showed "
        "it; `BUG L` was observed where Kafka promises it cannot happen; `ok` means nothing was "
        "allowed and nothing happened. Each observed anomaly's smallest witness (the run with the "
        "fewest such records) is listed under *Witnesses* with the command that replays it.",
        "",
        "## The matrix",
        "",
    ]
    stories, rows = grid(result)
    header = [title for _, title in CONFIG_COLUMNS] + stories
    out += _table(
        header, [config_values(cfg) + [cell_mark(c) for c in cells] for cfg, cells in rows]
    )
    out += ["", "## Fault stories", ""]
    out += _table(
        ["story", "faults", "file", "what happens"],
        [
            [s["name"], ", ".join(s["faults"]), f"`{s['path']}`", s["description"]]
            for s in result.get("stories", [])
        ],
    )
    invalid = invalid_configs(result)
    if invalid:
        out += ["", "## Invalid configurations", "", "Kafka rejects these; they were not run.", ""]
        every = len(stories)
        out += _table(
            ["configuration", "Kafka's reason", "stories"],
            [[config_label(cfg), reason, "all" if len(names) == every else ", ".join(names)]
             for cfg, reason, names in invalid],
        )  # fmt: skip
    out += ["", "## Witnesses", ""]
    out += [
        "For each cell that showed an anomaly: in how many runs, the worst count, and the seed "
        "of its smallest witness (the run with the fewest such records); the command replays "
        "the smallest witness of all — change `--seed` for another anomaly's.",
        "",
    ]
    out += _witnesses(result)
    out += ["", "## The expected-guarantee model", ""]
    out += [
        "An anomaly is promised absent unless a rule below allows it (`sim/guarantees.py`). "
        "aborted_read and torn_txn have no rule: Kafka never allows them.",
        "",
    ]
    out += _table(["rule", "anomaly", "Kafka allows it when", "source"],
                  [[r["id"], r["anomaly"], r["summary"], r["source"]] for r in rules()])  # fmt: skip
    return "\n".join(out) + "\n"


def _intro(result: dict[str, Any]) -> list[str]:
    dims = result.get("dimensions", {})
    configs = len({tuple(sorted(c["config"].items())) for c in result["cells"]})
    stories = len(result.get("stories", [])) or len({c["story"] for c in result["cells"]})
    lines = [
        f"{result['runs']} runs: {configs} configurations × {stories} fault stories × "
        f"{result.get('seeds', '?')} seeds (invalid configurations are not run).",
    ]
    if dims:
        swept = " · ".join(f"{name} {','.join(values)}" for name, values in dims.items())
        lines += ["", f"Swept: {swept}."]
    lines += ["", f"Regenerate (from the repository root): `{REGENERATE}`", ""]
    return lines


def _witnesses(result: dict[str, Any]) -> list[str]:
    out: list[str] = []
    rows = witness_rows(result)
    shown = [k for k in LETTERS if any(k in r["kinds"] for r in rows)]
    stories, _ = grid(result)
    for story in [s for s in stories if any(r["story"] == s for r in rows)]:
        out += [f"### {story}", ""]
        table = []
        for r in rows:
            if r["story"] != story:
                continue
            label = config_label(r["config"])
            if r["verdict"] == "simulator-bug":
                label += " **(simulator bug" + (f": {r['error']}" if r["error"] else "") + ")**"
            table.append([label, *(r["kinds"].get(k, "") for k in shown), f"`{r['replay']}`"])
        out += _table(["configuration", *shown, "replay (smallest witness)"], table)
        out.append("")
    return out or ["No anomaly was observed."]
