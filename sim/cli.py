"""`kpsim`: run scenarios, explain them, benchmark the simulator.

Exit codes (the contract): 0 when `[expect]` holds (or there is none),
1 when it does not, 2 on bad input or configuration — a scenario error or a
Kafka-invalid producer config — with a message naming the file and key; and
(our extension) 3 when `--check-invariants` finds a replication invariant
violated, which is a simulator bug.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from sim.result import COUNT_KEYS, RunResult
from sim.scenario import ScenarioError, load_scenario

EXIT_OK, EXIT_EXPECT_FAILED, EXIT_BAD_INPUT, EXIT_INVARIANT = 0, 1, 2, 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kpsim", description="Deterministic Kafka producer-semantics simulator."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run a scenario file and judge it")
    run.add_argument("scenario", help="a scenario TOML file")
    run.add_argument("--seed", type=int, default=0, help="the run's seed (default 0)")
    run.add_argument("--json", action="store_true", help="print one JSON object")
    run.add_argument(
        "--check-invariants",
        action="store_true",
        help="check replication invariants while running; a violation stops the run (exit 3)",
    )
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a scenario key (TOML value syntax), repeatable",
    )

    explain = commands.add_parser("explain", help="print a scenario's lesson and settings")
    explain.add_argument("scenario")
    explain.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE"
    )

    matrix = commands.add_parser(
        "matrix",
        help="sweep producer/topic settings × fault stories × seeds and judge every cell",
        description="Sweep configurations × the fault stories of scenarios/matrix/ × seeds and "
        "judge each cell against Kafka's promises. Lists are comma-separated.",
    )
    from sim.matrix import DEFAULT_SEEDS, DEFAULTS

    for name, flag in (("acks", "--acks"), ("rf", "--rf"), ("min_insync", "--min-insync"),
                       ("idempotence", "--idempotence"), ("max_in_flight", "--max-in-flight"),
                       ("unclean", "--unclean")):  # fmt: skip
        matrix.add_argument(flag, dest=name, default=None, help=f"default {DEFAULTS[name]}")
    matrix.add_argument(
        "--seeds",
        type=int,
        default=DEFAULT_SEEDS,
        help=f"seeds 0..N-1 per cell (default {DEFAULT_SEEDS})",
    )
    matrix.add_argument("--stories", default=None, help="story names or files (default: all)")
    matrix.add_argument("--jobs", type=int, default=None, help="worker processes (default: cores)")
    matrix.add_argument("--json", action="store_true", help="print one JSON object")
    matrix.add_argument("--markdown", metavar="FILE", help="write a Markdown report")
    matrix.add_argument("--html", metavar="FILE", help="write a self-contained HTML report")

    bench = commands.add_parser("bench", help="measure simulator throughput on a standard workload")
    bench.add_argument("--records", type=int, default=1_000_000)
    bench.add_argument("--json", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "explain":
            return _explain(args)
        if args.command == "matrix":
            from sim.matrix import main_matrix

            return main_matrix(args)
        if args.command == "bench":
            from sim.bench import run_bench

            return run_bench(args.records, args.json)
    except ScenarioError as error:
        print(f"kpsim: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    raise AssertionError(args.command)


def _run(args: argparse.Namespace) -> int:
    from sim.invariants import InvariantViolation
    from sim.runner import replay_command, run_scenario

    scenario = load_scenario(args.scenario, args.overrides)
    try:
        result = run_scenario(scenario, args.seed, check_invariants=args.check_invariants or None)
    except InvariantViolation as violation:
        print(f"kpsim: simulator bug: {violation}", file=sys.stderr)
        print(f"replay: {replay_command(scenario, args.seed)} --check-invariants", file=sys.stderr)
        return EXIT_INVARIANT
    if args.check_invariants:
        result.warnings.append("replication invariants checked: none violated")
    if args.json:
        print(json.dumps(result.as_dict(), indent=2, sort_keys=False, default=_json_default))
    else:
        print_result(result, Console())
    return EXIT_OK if result.expect_holds else EXIT_EXPECT_FAILED


def _json_default(value: Any) -> Any:
    if isinstance(value, tuple | set | frozenset):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    return str(value)


def print_result(result: RunResult, console: Console) -> None:
    """The readable summary: seed first, counts, expectations, witnesses, replay."""
    console.print(
        f"[bold]{result.scenario}[/bold]  seed={result.seed}  sim={result.sim_ms / 1000:.1f}s  "
        f"wall={result.wall_ms / 1000:.2f}s  digest={result.trace_digest[:16]}"
    )
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")
    table = Table(show_header=True, header_style="bold")
    for key in COUNT_KEYS:
        table.add_column(key, justify="right")
    anomalies = ("lost", "duplicated", "reordered", "aborted_read", "torn_txn")
    table.add_row(
        *[
            f"[red]{result.counts.get(k, 0)}[/red]"
            if k in anomalies and result.counts.get(k, 0)
            else str(result.counts.get(k, 0))
            for k in COUNT_KEYS
        ]
    )
    console.print(table)
    verdict = {True: "[green]valid[/green]", False: "[red]anomalies found[/red]"}.get(
        result.valid, "[yellow]unknown[/yellow]"
    )
    console.print(f"checker: {verdict}")
    for item in result.expect:
        mark = "[green]✓[/green]" if item["holds"] else "[red]✗[/red]"
        console.print(f"  expect {item['key']} {item['expected']}: got {item['actual']} {mark}")
    for kind in anomalies:
        witnesses = result.witnesses.get(kind) or []
        if witnesses:
            console.print(
                f"[bold]{kind}[/bold] ({len(witnesses)} witness{'es' if len(witnesses) > 1 else ''} shown, up to 3):"
            )
            for witness in witnesses[:3]:
                console.print(f"  • {witness.get('explanation', '')}", highlight=False)
    if result.errors:
        console.print(f"[yellow]checker errors:[/yellow] {result.errors}")
    console.print(f"replay: [cyan]{result.replay}[/cyan]", highlight=False)


def _explain(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.scenario, args.overrides)
    console = Console()
    console.print(f"[bold]{scenario.name}[/bold]: {scenario.description}")
    if scenario.lesson:
        console.print()
        console.print(scenario.lesson.strip())
    console.print()
    console.print_json(json.dumps(scenario.effective_config(), default=_json_default))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
