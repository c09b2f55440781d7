"""Validation helpers for scenario files: typed reads, unknown keys, the producer.

`sim.scenario` owns the dataclasses and the file/override handling; this module
owns the rules a single value must obey and the wording of the error when it
does not. Every failure is a `ScenarioError` naming the file and the dotted key
(`faults[2].target`), never a `KeyError` or `TypeError` from deep inside.

Terms:
- *key*: the dotted path of a value in the file, `topics[0].replication_factor`.
- *override label*: the `--set KEY=VALUE` text that put a value there; errors
  about an overridden value show it in place of the key, so the user knows the
  bad value came from the command line, not the file.

Fault tables and their targets are checked in `sim.scenario_faults`.
"""

from __future__ import annotations

import datetime
import difflib
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sim.client.config import ProducerConfig
from sim.errors import KafkaConfigurationError

REQUIRED: Any = object()
"""Sentinel default: the key must be present."""


class ScenarioError(Exception):
    """A scenario file (or a `--set` override) is not valid; exit code 2.

    The message is `"{source}: {key}: {reason}"`; when the value came from an
    override, the override text stands in the key's place.
    """

    def __init__(self, source: str, key: str | None, reason: str, shown: str | None = None):
        self.source = source
        self.key = key
        self.reason = reason
        where = shown or key
        super().__init__(f"{source}: {where}: {reason}" if where else f"{source}: {reason}")


@dataclass
class Context:
    """Where values come from: the file name and which keys were overridden."""

    source: str
    overrides: dict[str, str] = field(default_factory=dict)
    """Canonical dotted path -> the `--set KEY=VALUE` text that set it."""

    def error(self, key: str | None, reason: str) -> ScenarioError:
        """Build (not raise) the error, showing the override that set `key` if any."""
        return ScenarioError(self.source, key, reason, self._label(key))

    def _label(self, key: str | None) -> str | None:
        if key is None:
            return None
        best: str | None = None
        for path in self.overrides:
            covers = key == path or key.startswith((path + ".", path + "["))
            if covers and (best is None or len(path) > len(best)):
                best = path
        if best is not None:
            return self.overrides[best]
        for path, label in self.overrides.items():
            if path.startswith((key + ".", key + "[")):
                return label
        return None


def describe(value: Any) -> str:
    """Render a value as the user wrote it in TOML, for error messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, datetime.date | datetime.time):  # TOML dates and times
        return value.isoformat()
    return repr(value)


def suggest(word: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)` when a choice is close to `word`, else ``."""
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class Table:
    """Typed reads from one TOML table, with its unknown keys rejected up front.

    Unknown keys are checked before any value, because a misspelt key would
    otherwise surface as a confusing "missing required key".
    """

    def __init__(self, ctx: Context, key: str, data: Any, known: Iterable[str]):
        if not isinstance(data, dict):
            raise ctx.error(key, f"expected a table, got {describe(data)}")
        self.ctx, self.key, self.data = ctx, key, data
        known = tuple(known)
        for name in data:
            if name not in known:
                raise ctx.error(self.path(name), "unknown key" + suggest(name, known))

    def path(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def error(self, name: str, reason: str) -> ScenarioError:
        return self.ctx.error(self.path(name), reason)

    def get(self, name: str, default: Any = REQUIRED) -> Any:
        if name in self.data:
            return self.data[name]
        if default is REQUIRED:
            raise self.error(name, "required key is missing")
        return default

    def int(
        self, name: str, default: Any = REQUIRED, *, minimum: int = 0, maximum: int | None = None
    ) -> Any:
        """An integer in [minimum, maximum]; bools and floats are rejected."""
        value = self.get(name, default)
        if value is None and default is None and name not in self.data:
            return None
        return check_int(self.ctx, self.path(name), value, minimum, maximum)

    def number(
        self, name: str, default: Any = REQUIRED, *, minimum: float = 0, positive: bool = False
    ) -> Any:
        """A finite number >= minimum (> minimum when `positive`); ints are accepted."""
        value = self.get(name, default)
        if value is None and default is None and name not in self.data:
            return None
        key = self.path(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.ctx.error(key, f"expected a number, got {describe(value)}")
        if not math.isfinite(value):
            raise self.ctx.error(key, f"expected a finite number, got {describe(value)}")
        if value < minimum or (positive and value == minimum):
            relation = ">" if positive else ">="
            raise self.ctx.error(key, f"must be {relation} {minimum:g}, got {describe(value)}")
        return float(value)

    def bool(self, name: str, default: Any = REQUIRED) -> bool:
        value = self.get(name, default)
        if not isinstance(value, bool):
            raise self.error(name, f"expected true or false, got {describe(value)}")
        return value

    def str(self, name: str, default: Any = REQUIRED) -> Any:
        value = self.get(name, default)
        if value is None and default is None and name not in self.data:
            return None
        if not isinstance(value, str):
            raise self.error(name, f"expected a string, got {describe(value)}")
        return value


def check_int(ctx: Context, key: str, value: Any, minimum: int, maximum: int | None) -> int:
    """Reject bools (TOML's `true` is not 1) and floats where a count is meant."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ctx.error(key, f"expected an integer, got {describe(value)}")
    if value < minimum:
        raise ctx.error(key, f"must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ctx.error(key, f"must be <= {maximum}, got {value}")
    return value


# --- Producer -------------------------------------------------------------------

PARTITIONERS = ("default", "sticky", "random", "murmur2")
"""The built-in partitioners a TOML file can name (a custom one is Python code)."""


def parse_producer(ctx: Context, value: Any) -> tuple[dict[str, Any], ProducerConfig]:
    """Check the TOML-only forms, then let `ProducerConfig` apply Kafka's rules.

    Returns the keywords as given to `ProducerConfig.from_kwargs` (so a
    `KafkaProducer(**kwargs)` gets the same config) and the config.
    """
    if not isinstance(value, dict):
        raise ctx.error("producer", f"expected a table, got {describe(value)}")
    kwargs = dict(value)
    for name in ("key_serializer", "value_serializer"):
        if name in kwargs:
            raise ctx.error(f"producer.{name}", "a serializer is Python code; not settable in TOML")
    acks = kwargs.get("acks", -1)
    if isinstance(acks, bool) or acks not in (0, 1, -1, "all"):
        raise ctx.error("producer.acks", f'expected 0, 1, -1 or "all", got {describe(acks)}')
    if not isinstance(kwargs.get("enable_idempotence", True), bool):
        got = describe(kwargs["enable_idempotence"])
        raise ctx.error("producer.enable_idempotence", f"expected true or false, got {got}")
    for name in ("transactional_id", "client_id"):
        if name in kwargs and (not isinstance(kwargs[name], str) or not kwargs[name]):
            raise ctx.error(
                f"producer.{name}", f"expected a non-empty string, got {describe(kwargs[name])}"
            )
    if kwargs.get("compression_type") == "none":  # TOML has no null; Kafka's name for it.
        kwargs["compression_type"] = None
    partitioner = kwargs.get("partitioner", "default")
    if not isinstance(partitioner, str) or partitioner not in PARTITIONERS:
        raise ctx.error(
            "producer.partitioner",
            f"expected one of {', '.join(PARTITIONERS)}, got {describe(partitioner)}",
        )
    try:
        config = ProducerConfig.from_kwargs(**kwargs)
    except (KafkaConfigurationError, TypeError, ValueError) as exc:
        # TypeError/ValueError: a value of a type ProducerConfig did not expect
        # must still be an input error here, not a traceback.
        raise _config_error(ctx, kwargs, exc) from None
    return kwargs, config


def _config_error(ctx: Context, kwargs: dict[str, Any], exc: Exception) -> ScenarioError:
    """Blame the keyword to change: the first one the message names, passing over
    `enable_idempotence` when another is named ("enable_idempotence=True is
    incompatible with user-provided acks=1" is about acks)."""
    reason = str(exc.args[0]) if exc.args else type(exc).__name__
    mentioned: list[tuple[int, str]] = []
    for name in kwargs:
        for form in (name, name.replace("_", ".")):
            match = re.search(rf"(?<![A-Za-z0-9_]){re.escape(form)}(?![A-Za-z0-9_])", reason)
            if match:
                mentioned.append((match.start(), name))
    mentioned.sort()
    preferred = [name for _, name in mentioned if name != "enable_idempotence"]
    names = preferred or [name for _, name in mentioned]
    if not names:
        return ctx.error("producer", reason)
    known = [f for f in ProducerConfig.__dataclass_fields__ if f not in ("explicit", "warnings")]
    if names[0] not in known:
        return ctx.error(f"producer.{names[0]}", "unknown key" + suggest(names[0], known))
    return ctx.error(f"producer.{names[0]}", reason)
