"""The guarantee matrix as one self-contained HTML page (inline CSS, no scripts, no fetches)."""

from __future__ import annotations

from typing import Any

import jinja2

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
from sim.report.markdown import REGENERATE

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Kafka producer guarantee matrix</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em; color: #1b1f24; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #d0d7de; padding: 3px 7px; vertical-align: top; }
th { background: #f6f8fa; position: sticky; top: 0; }
td.cfg { font-family: ui-monospace, monospace; white-space: nowrap; }
td.cell { text-align: center; font-family: ui-monospace, monospace; white-space: nowrap; }
code { font-size: 12px; }
.ok { background: #dafbe1; }
.anomaly-allowed { background: #fff1c2; }
.not-reproduced { background: #ddeeff; }
.simulator-bug { background: #ff8182; font-weight: bold; }
.invalid-config { background: #eaeef2; color: #6e7781; }
.legend span { display: inline-block; padding: 1px 8px; margin-right: 6px; border: 1px solid #d0d7de; }
</style>
</head>
<body>
<h1>Kafka producer guarantee matrix</h1>
<p>{{ runs }} runs: {{ n_configs }} configurations × {{ stories|length }} fault stories ×
{{ seeds }} seeds (invalid configurations are not run).
{% if dims %}Swept: {% for name, values in dims.items() %}{{ name }} {{ values|join(',') }}{% if not loop.last %} · {% endif %}{% endfor %}.{% endif %}
Regenerate from the repository root: <code>{{ regenerate }}</code></p>

<h2>Verdicts</h2>
<table><tr><th>verdict</th><th>cells</th><th>meaning</th></tr>
{% for verdict, help in verdict_help.items() %}<tr><td class="{{ verdict }}">{{ verdict }}</td><td>{{ counts[verdict] }}</td><td>{{ help }}</td></tr>
{% endfor %}</table>
<p class="legend">Letters: {% for kind, letter in letters.items() %}<b>{{ letter }}</b> {{ kind|replace('_', ' ') }}{% if not loop.last %}, {% endif %}{% endfor %}.
A letter alone was observed (and Kafka allows it); in parentheses Kafka allows it but no run showed it.
Hover over a cell for its counts and the command that replays its smallest witness.</p>

<h2>The matrix</h2>
<table>
<tr>{% for title in config_titles %}<th>{{ title }}</th>{% endfor %}{% for story in grid_stories %}<th>{{ story }}</th>{% endfor %}</tr>
{% for row in grid_rows %}<tr>{% for value in row.config %}<td class="cfg">{{ value }}</td>{% endfor %}{% for cell in row.cells %}<td class="cell {{ cell.verdict }}" title="{{ cell.title }}">{{ cell.mark }}</td>{% endfor %}</tr>
{% endfor %}</table>

<h2>Fault stories</h2>
<table><tr><th>story</th><th>faults</th><th>file</th><th>what happens</th></tr>
{% for s in stories %}<tr><td>{{ s.name }}</td><td>{{ s.faults|join(', ') }}</td><td><code>{{ s.path }}</code></td><td>{{ s.description }}</td></tr>
{% endfor %}</table>

{% if invalid %}<h2>Invalid configurations</h2>
<p>Kafka rejects these; they were not run.</p>
<table><tr><th>configuration</th><th>Kafka's reason</th><th>stories</th></tr>
{% for row in invalid %}<tr><td class="cfg invalid-config">{{ row.config }}</td><td>{{ row.reason }}</td><td>{{ row.stories }}</td></tr>
{% endfor %}</table>{% endif %}

<h2>Witnesses</h2>
<p>For each cell that showed an anomaly: in how many runs, the worst count, and the seed of its
smallest witness (the run with the fewest such records); the command replays the smallest witness
of all &mdash; change <code>--seed</code> for another anomaly's.</p>
<table><tr><th>story</th><th>configuration</th>{% for kind in witness_kinds %}<th>{{ kind }}</th>{% endfor %}<th>replay (smallest witness)</th></tr>
{% for w in witnesses %}<tr class="{{ w.verdict }}"><td>{{ w.story }}</td><td class="cfg">{{ w.label }}</td>{% for kind in witness_kinds %}<td>{{ w.kinds.get(kind, '') }}</td>{% endfor %}<td><code>{{ w.replay }}</code>{% if w.error %}<br>{{ w.error }}{% endif %}</td></tr>
{% else %}<tr><td colspan="3">No anomaly was observed.</td></tr>
{% endfor %}</table>

<h2>The expected-guarantee model</h2>
<p>An anomaly is promised absent unless a rule below allows it (<code>sim/guarantees.py</code>).
aborted_read and torn_txn have no rule: Kafka never allows them.</p>
<table><tr><th>rule</th><th>anomaly</th><th>Kafka allows it when</th><th>source</th></tr>
{% for r in rules %}<tr><td>{{ r.id }}</td><td>{{ r.anomaly }}</td><td>{{ r.summary }}</td><td>{{ r.source }}</td></tr>
{% endfor %}</table>
</body>
</html>
"""


def _title(cell: dict[str, Any]) -> str:
    """The tooltip: verdict, per-anomaly runs and worst counts, the smallest witness's replay."""
    if cell["verdict"] == "invalid-config":
        return f"invalid-config: {cell['reason']}"
    lines = [f"{cell['story']}: {cell['verdict']} ({cell['runs']} runs)"]
    for kind, status in cell.get("kinds", {}).items():
        if status != "ok":
            lines.append(
                f"{kind}: {status}, {cell['anomaly_runs'][kind]}/{cell['runs']} runs, worst {cell['worst'][kind]}"
            )
    if cell.get("replay"):
        lines.append(f"replay: {cell['replay']}")
    return "\n".join(lines)


def render_html(result: dict[str, Any]) -> str:
    """The page; the same content as the Markdown report, colour-coded."""
    env = jinja2.Environment(
        autoescape=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined
    )
    stories, rows = grid(result)
    rows_w = witness_rows(result)
    every = len(stories)
    return env.from_string(_TEMPLATE).render(
        runs=result["runs"],
        n_configs=len({tuple(sorted(c["config"].items())) for c in result["cells"]}),
        seeds=result.get("seeds", "?"),
        dims=result.get("dimensions", {}),
        regenerate=REGENERATE,
        verdict_help=VERDICT_HELP,
        counts=verdict_counts(result),
        letters=LETTERS,
        config_titles=[title for _, title in CONFIG_COLUMNS],
        grid_stories=stories,
        grid_rows=[
            {
                "config": config_values(cfg),
                "cells": [
                    {"verdict": c["verdict"], "mark": cell_mark(c), "title": _title(c)}
                    for c in cells
                ],
            }
            for cfg, cells in rows
        ],
        stories=result.get("stories", []),
        invalid=[
            {
                "config": config_label(cfg),
                "reason": reason,
                "stories": "all" if len(names) == every else ", ".join(names),
            }
            for cfg, reason, names in invalid_configs(result)
        ],
        witnesses=[{**w, "label": config_label(w["config"])} for w in rows_w],
        witness_kinds=[k for k in LETTERS if any(k in w["kinds"] for w in rows_w)],
        rules=rules(),
    )
