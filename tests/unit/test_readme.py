"""The README's Python example runs and prints what its comments say."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_python_example_runs_and_matches_its_comments() -> None:
    blocks = _python_blocks()
    assert blocks, "the README lost its Python example"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(blocks[0], "README.md", "exec"), {})
    lines = out.getvalue().splitlines()
    assert lines[0] == "1 0"
    assert lines[1] == "1"
    assert "'lost': 0" in lines[2] and "'acked': 2" in lines[2]


def test_readme_first_screen_has_exactly_the_two_setup_commands() -> None:
    first_screen = README.read_text().split("## A tour")[0]
    commands = re.findall(r"^(pip install .*)$", first_screen, flags=re.M)
    assert commands == [
        "pip install -e . && kpsim run scenarios/acks1-leader-failover.toml",
        "pip install -e '.[test]' && pytest",
    ]
