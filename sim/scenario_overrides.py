"""`--set KEY=VALUE` overrides, applied to the parsed TOML before validation.

One scenario file serves a whole matrix when single values can be replaced
from the command line. Overrides edit the raw TOML dict, so the replaced value
goes through exactly the same validation as a value in the file, and the
`Context` remembers which key each override set, so an error about it names
the override (`--set producer.acks=7: expected 0, 1, -1 or "all", got 7`).

KEY is a dotted path: `producer.acks`, `topics[0].partitions` (by index),
`topics.orders.partitions` (by topic name), `faults[1].at_ms`, `expect.lost`.
Missing tables are created (`expect.lost=0` without an `[expect]`); list
entries are not (`faults[5]` must exist). VALUE is TOML value syntax
(`"all"`, `true`, `[1, 2]`); a bare word such as `all`, `broker-1` or `>0` is
taken as a string, so shells need no nested quotes for the common cases.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from typing import Any

from sim.scenario_validate import Context, ScenarioError, describe, suggest

_BARE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:/-]*|(>=|<=|==|>|<)[0-9]+")
_SEGMENT = re.compile(r"([A-Za-z0-9_-]+)((?:\[[0-9]+\])*)")
_TOPIC_BY_NAME = re.compile(r"topics\.(.+)\.([A-Za-z0-9_-]+)")

Token = str | int


def apply_overrides(
    ctx: Context, raw: dict[str, Any], overrides: Sequence[str], top_keys: Sequence[str]
) -> None:
    """Apply each `KEY=VALUE` to `raw` in order; record the keys in `ctx.overrides`."""
    for text in overrides:
        if not isinstance(text, str) or "=" not in text:
            raise ScenarioError(ctx.source, str(text), "expected KEY=VALUE", f"--set {text}")
        label = f"--set {text}"
        path, _, value_text = text.partition("=")
        path = path.strip()
        tokens = _tokens(ctx, label, path, raw)
        if tokens[0] not in top_keys:
            reason = "unknown key" + suggest(str(tokens[0]), top_keys)
            raise ScenarioError(ctx.source, str(tokens[0]), reason, label)
        value = _value(ctx, label, path, value_text.strip())
        _assign(ctx, label, raw, tokens, value)
        ctx.overrides[canonical(tokens)] = label


def canonical(tokens: Sequence[Token]) -> str:
    """The dotted form used in error keys: `topics[0].partitions`."""
    out = ""
    for token in tokens:
        if isinstance(token, int):
            out += f"[{token}]"
        else:
            out += f".{token}" if out else token
    return out


def _value(ctx: Context, label: str, path: str, text: str) -> Any:
    try:
        parsed = tomllib.loads(f"v = {text}")
    except tomllib.TOMLDecodeError:
        parsed = {}
    if list(parsed) == ["v"]:
        return parsed["v"]
    if _BARE.fullmatch(text):
        return text
    reason = f"expected a TOML value (quote strings: '\"...\"'), got {describe(text)}"
    raise ScenarioError(ctx.source, path, reason, label)


def _tokens(ctx: Context, label: str, path: str, raw: dict[str, Any]) -> list[Token]:
    """Split a dotted path; `topics.NAME.KEY` becomes `topics[i].KEY`."""
    by_name = _TOPIC_BY_NAME.fullmatch(path)
    if by_name:
        name, key = by_name[1], by_name[2]
        topics = raw.get("topics")
        names = (
            [t.get("name") for t in topics if isinstance(t, dict)]
            if isinstance(topics, list)
            else []
        )
        if name not in names:
            declared = ", ".join(str(n) for n in names) or "none"
            reason = f"no such topic '{name}' (declared: {declared})"
            raise ScenarioError(ctx.source, path, reason, label)
        return ["topics", names.index(name), key]
    tokens: list[Token] = []
    for segment in path.split("."):
        match = _SEGMENT.fullmatch(segment)
        if match is None:
            reason = "expected a dotted key such as producer.acks, topics[0].partitions"
            raise ScenarioError(ctx.source, path, reason, label)
        tokens.append(match[1])
        tokens.extend(int(index) for index in re.findall(r"\[([0-9]+)\]", match[2]))
    return tokens


def _assign(ctx: Context, label: str, raw: dict[str, Any], tokens: list[Token], value: Any) -> None:
    """Set `value` at `tokens`, creating missing tables but never list entries."""
    node: Any = raw
    for i, token in enumerate(tokens):
        here, last = canonical(tokens[:i]) or "the file", i == len(tokens) - 1
        if isinstance(token, int):
            if not isinstance(node, list):
                raise ScenarioError(ctx.source, canonical(tokens), f"{here} is not a list", label)
            if token >= len(node):
                entries = "1 entry" if len(node) == 1 else f"{len(node)} entries"
                reason = f"{here} has {entries}, no [{token}]"
                raise ScenarioError(ctx.source, canonical(tokens), reason, label)
        elif not isinstance(node, dict):
            raise ScenarioError(ctx.source, canonical(tokens), f"{here} is not a table", label)
        elif not last and token not in node:
            if isinstance(tokens[i + 1], int):
                reason = f"{canonical(tokens[: i + 1])} is not in the file"
                raise ScenarioError(ctx.source, canonical(tokens), reason, label)
            node[token] = {}
        if last:
            node[token] = value
        else:
            node = node[token]
