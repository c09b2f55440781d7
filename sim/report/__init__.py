"""Reports of the guarantee matrix: terminal (rich), Markdown and a self-contained HTML page.

Every renderer takes the matrix result — the JSON object of `kpsim matrix
--json`: `runs`, `wall_s`, `seeds`, `stories`, `cells` — and shares the
vocabulary defined here: one short mark per cell (`L D (R)`: lost and
duplicated observed, reordering allowed but not observed), the verdict
colours, and the model's rules. Markdown and HTML leave out wall-clock time,
so a committed report matches a fresh run byte for byte.
"""

from __future__ import annotations

from typing import Any

from sim.guarantees import ANOMALIES, RULES

LETTERS = {"lost": "L", "duplicated": "D", "reordered": "R", "aborted_read": "A", "torn_txn": "T"}
"""One letter per anomaly, for the grid."""

VERDICT_HELP = {
    "ok": "nothing observed, nothing allowed: the promise held",
    "anomaly-allowed": "observed, and Kafka allows it for this configuration under this fault",
    "not-reproduced": "Kafka allows it here (in parentheses), but no run showed it",
    "simulator-bug": "observed where Kafka promises it cannot happen (or the engine failed)",
    "invalid-config": "Kafka rejects the configuration; not run",
}

CONFIG_COLUMNS = (
    ("acks", "acks"),
    ("rf", "rf"),
    ("min_insync", "min.isr"),
    ("idempotence", "idem"),
    ("max_in_flight", "in-flight"),
    ("unclean", "unclean"),
)


def config_values(config: dict[str, Any]) -> list[str]:
    """The config as the grid's first columns (on/off for booleans)."""
    out = []
    for key, _ in CONFIG_COLUMNS:
        value = config[key]
        out.append(("on" if value else "off") if isinstance(value, bool) else str(value))
    return out


def config_label(config: dict[str, Any]) -> str:
    return " ".join(
        f"{title}={value}"
        for (_, title), value in zip(CONFIG_COLUMNS, config_values(config), strict=True)
    )


def cell_mark(cell: dict[str, Any]) -> str:
    """`ok`, `L D`, `L (R)`, `(D)`, `BUG L`, `BUG run error` or `invalid`."""
    verdict = cell["verdict"]
    if verdict == "invalid-config":
        return "invalid"
    kinds = cell.get("kinds", {})
    bugs = [LETTERS[k] for k in ANOMALIES if kinds.get(k) == "simulator-bug"]
    seen = [LETTERS[k] for k in ANOMALIES if kinds.get(k) == "anomaly-allowed"]
    unseen = [LETTERS[k] for k in ANOMALIES if kinds.get(k) == "not-reproduced"]
    parts = []
    if bugs or cell.get("errors"):
        parts.append("BUG " + " ".join(bugs) if bugs else "BUG run error")
    parts.extend(seen)
    if unseen:
        parts.append("(" + " ".join(unseen) + ")")
    return " ".join(parts) or "ok"


def grid(
    result: dict[str, Any],
) -> tuple[list[str], list[tuple[dict[str, Any], list[dict[str, Any]]]]]:
    """(story names, [(config, cells in story order)]) for configs valid in at least one story."""
    stories = list(dict.fromkeys(c["story"] for c in result["cells"]))
    rows: dict[tuple, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
    for cell in result["cells"]:
        key = tuple(sorted(cell["config"].items()))
        rows.setdefault(key, (cell["config"], []))[1].append(cell)
    valid = [row for row in rows.values() if any(c["verdict"] != "invalid-config" for c in row[1])]
    return stories, valid


def invalid_configs(result: dict[str, Any]) -> list[tuple[dict[str, Any], str, list[str]]]:
    """(config, Kafka's reason, stories) for every invalid cell, grouped by config and reason."""
    groups: dict[tuple, tuple[dict[str, Any], str, list[str]]] = {}
    for cell in result["cells"]:
        if cell["verdict"] == "invalid-config":
            key = (tuple(sorted(cell["config"].items())), cell["reason"])
            groups.setdefault(key, (cell["config"], cell["reason"], []))[2].append(cell["story"])
    return list(groups.values())


def verdict_counts(result: dict[str, Any]) -> dict[str, int]:
    counts = dict.fromkeys(VERDICT_HELP, 0)
    for cell in result["cells"]:
        counts[cell["verdict"]] = counts.get(cell["verdict"], 0) + 1
    return counts


def witness_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per cell that showed an anomaly or failed to run, grouped by story.

    Each row has story, config, verdict, `kinds` ({anomaly: "runs/of · worst N ·
    seed S"} for the observed anomalies; S is the seed of the smallest witness)
    and `replay`, the command of the smallest witness of all (another anomaly's
    witness is the same command with its own seed). A failed run adds `error`.
    """
    rows = []
    for cell in result["cells"]:
        witnesses = cell.get("witnesses", {})
        if not witnesses and not cell.get("errors"):
            continue
        kinds = {
            kind: f"{cell['anomaly_runs'][kind]}/{cell['runs']} · worst {cell['worst'][kind]}"
            f" · seed {w['seed']}" + (" · BUG" if cell["kinds"][kind] == "simulator-bug" else "")
            for kind, w in witnesses.items()
        }
        errors = cell.get("errors", [])
        rows.append({
            "story": cell["story"], "config": cell["config"], "verdict": cell["verdict"],
            "kinds": kinds, "replay": cell["replay"],
            "error": "; ".join(f"seed {e['seed']}: {e['error']}" for e in errors) or None,
        })  # fmt: skip
    order = {story: i for i, story in enumerate(dict.fromkeys(c["story"] for c in result["cells"]))}
    rows.sort(key=lambda row: order[row["story"]])  # Stable: configs stay in plan order.
    return rows


def rules() -> list[dict[str, str]]:
    """The expected-guarantee model as rows (id, anomaly, summary, source)."""
    return [
        {"id": r.id, "anomaly": r.anomaly, "summary": r.summary, "source": r.source} for r in RULES
    ]


__all__ = [
    "CONFIG_COLUMNS", "LETTERS", "VERDICT_HELP", "cell_mark", "config_label", "config_values",
    "grid", "invalid_configs", "rules", "verdict_counts", "witness_rows",
]  # fmt: skip
