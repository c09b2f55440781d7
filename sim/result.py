"""RunResult: the result contract of `kpsim run --json` and `Cluster.check()`.

Fields (DESIGN.md, "Results"): scenario, seed, config, counts, witnesses,
trace_digest, sim_ms, wall_ms, replay — plus valid, expect (each
expectation and whether it held), warnings and errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sim.checker import CheckResult

COUNT_KEYS = (
    "sent",
    "acked",
    "failed",
    "unknown",
    "lost",
    "duplicated",
    "reordered",
    "aborted_read",
    "torn_txn",
)
"""The counts every result carries (the public contract), in display order."""


@dataclass
class RunResult:
    """One run's verdict, counts and witnesses, and how to replay it."""

    seed: int
    counts: dict[str, int]
    witnesses: dict[str, list[dict[str, Any]]]
    valid: bool | str
    trace_digest: str
    sim_ms: float
    wall_ms: float
    scenario: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    replay: str | None = None
    expect: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_check(
        cls, result: CheckResult, *, seed: int, trace_digest: str, sim_ms: float, wall_ms: float
    ) -> RunResult:
        return cls(
            seed=seed,
            counts=dict(result.counts),
            witnesses={k: list(v) for k, v in result.witnesses.items()},
            valid=result.valid,
            trace_digest=trace_digest,
            sim_ms=sim_ms,
            wall_ms=wall_ms,
            errors=dict(result.errors),
        )

    @property
    def expect_holds(self) -> bool:
        return all(item["holds"] for item in self.expect)

    def as_dict(self) -> dict[str, Any]:
        """The JSON object of the contract (keys in a stable order)."""
        return {
            "scenario": self.scenario,
            "seed": self.seed,
            "config": self.config,
            "counts": self.counts,
            "witnesses": self.witnesses,
            "valid": self.valid,
            "expect": self.expect,
            "expect_holds": self.expect_holds,
            "trace_digest": self.trace_digest,
            "sim_ms": round(self.sim_ms, 3),
            "wall_ms": round(self.wall_ms, 1),
            "replay": self.replay,
            "warnings": self.warnings,
            "errors": self.errors,
        }
