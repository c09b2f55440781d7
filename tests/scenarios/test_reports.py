"""The committed guarantee report is what a fresh default matrix produces."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_committed_guarantee_report_matches_a_fresh_default_matrix(tmp_path: Path) -> None:
    fresh = tmp_path / "guarantees.md"
    assert main(["matrix", "--markdown", str(fresh)]) == 0
    committed = (ROOT / "reports" / "guarantees.md").read_text()
    assert fresh.read_text() == committed, (
        "reports/guarantees.md is stale: regenerate it with "
        "`kpsim matrix --markdown reports/guarantees.md --html reports/guarantees.html`"
    )
