"""The guarantee matrix in the terminal: a colour-coded rich table and what needs attention."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from sim.report import (
    LETTERS,
    cell_mark,
    config_label,
    config_values,
    grid,
    invalid_configs,
    verdict_counts,
    witness_rows,
)

_SHORT_TITLES = ("acks", "rf", "isr", "idem", "infl", "uncl")
"""Narrow config headers: min.insync.replicas, idempotence, in-flight, unclean election."""

STYLES = {
    "ok": "green",
    "anomaly-allowed": "yellow",
    "not-reproduced": "cyan",
    "simulator-bug": "bold white on red",
    "invalid-config": "dim",
}


def print_matrix(result: dict[str, Any], console: Console) -> None:
    """Grid, verdict counts, invalid configurations and every simulator-bug witness."""
    stories, rows = grid(result)
    table = Table(title="Kafka producer guarantee matrix", show_lines=False, header_style="bold")
    for title in _SHORT_TITLES:
        table.add_column(title, no_wrap=True)
    for story in stories:
        table.add_column("\n".join(story.split("-")), justify="center")
    for config, cells in rows:
        marks = [f"[{STYLES[c['verdict']]}]{cell_mark(c)}[/]" for c in cells]
        table.add_row(*config_values(config), *marks)
    console.print(table)
    letters = ", ".join(f"{letter} {kind}" for kind, letter in LETTERS.items())
    console.print(
        f"[dim]isr = min.insync.replicas, infl = max in-flight, uncl = unclean election; "
        f"{letters}; (X) allowed but not reproduced[/dim]"
    )
    counts = verdict_counts(result)
    console.print(
        "  ".join(f"[{STYLES[v]}]{v}[/]: {n}" for v, n in counts.items())
        + f"   runs: {result['runs']}   wall: {result['wall_s']:.1f} s"
    )
    console.print(
        "[dim]Each cell's smallest witness and the command that replays it: "
        "--json, --markdown FILE or --html FILE.[/dim]"
    )
    invalid = invalid_configs(result)
    if invalid:
        console.print(f"[dim]{len(invalid)} invalid configurations (not run), e.g.:[/dim]")
        for config, reason, _ in _distinct_reasons(invalid):
            console.print(f"  [dim]{config_label(config)}: {reason}[/dim]", highlight=False)
    for row in witness_rows(result):
        if row["verdict"] == "simulator-bug":
            found = ", ".join(f"{k} {v}" for k, v in row["kinds"].items() if "BUG" in v)
            console.print(
                f"[bold red]simulator bug[/]: {row['story']} {config_label(row['config'])} "
                f"{found or row['error']}\n  replay: {row['replay']}",
                highlight=False,
            )


def _distinct_reasons(invalid: list[tuple[dict[str, Any], str, list[str]]]):
    seen: set[str] = set()
    for config, reason, names in invalid:
        if reason not in seen:
            seen.add(reason)
            yield config, reason, names
