"""What an operator types for a new job, read into values: arguments and keyword arguments as
JSON, a run-at time, a delay, a time limit. Every face reads them here, so a mistake gets one message
everywhere; `label` names the field as the face shows it (`--kwargs` on the command line)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from qadmin.config import parse_duration
from qadmin.errors import ConfigError, UsageError
from qadmin.filters import parse_args_json
from qadmin.text import holds_lone_surrogate, visible


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} is out of range")
    return value


def strict_json(text: str) -> Any:
    """JSON as every Resque client reads it back: no NaN, no Infinity, no numbers out of range, no
    lone surrogate (`"\\ud800"` is valid JSON but no text: no backend can store it as UTF-8)."""
    value = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    if holds_lone_surrogate(value):
        raise ValueError("a \\u escape names a lone surrogate, which is not text")
    return value


def loose_json(text: str) -> Any:
    """A command-line argument: its JSON value where it parses (42, true, "[1,2]"), else the text."""
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        raise UsageError(f"argument {text[:12]!r}… is nested too deeply") from None
    except ValueError:  # not JSON (NaN and Infinity included): the argument is that string
        return text
    if holds_lone_surrogate(value):
        raise UsageError(f"argument {visible(text[:40])} is JSON for a lone surrogate, which is not text")
    return value


def parse_args(text: str, label: str = "args") -> list[Any]:
    """A JSON array of positional arguments; empty text is none."""
    if not text.strip():
        return []
    try:
        return parse_args_json(text)
    except UsageError as exc:
        raise UsageError(str(exc).replace("--args", label)) from None


def parse_kwargs(text: str, label: str = "kwargs") -> dict[str, Any]:
    """A JSON object of keyword arguments."""
    try:
        value = strict_json(text)
    except RecursionError:
        raise UsageError(f"{label} is not valid JSON: nested too deeply") from None
    except ValueError as exc:
        raise UsageError(f"{label} is not valid JSON: {str(exc).splitlines()[0]}") from None
    if not isinstance(value, dict):
        raise UsageError(f"{label} must be a JSON object")
    return value


def parse_run_at(text: str, label: str = "run_at") -> datetime:
    """An ISO 8601 time, in UTC unless it carries an offset."""
    try:
        run_at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{label} {text!r} is not an ISO 8601 time") from None
    if run_at.tzinfo is None:
        run_at = run_at.replace(tzinfo=UTC)
    try:  # an offset can move a time at either end of the calendar out of it
        return run_at.astimezone(UTC)
    except OverflowError:
        raise UsageError(f"{label} {text!r} is out of range once in UTC") from None


def parse_delay(value: str | float, label: str = "in") -> float:
    """A delay: 30s, 15m, 2h, or seconds."""
    try:
        return parse_duration(value)
    except ConfigError as exc:
        raise UsageError(f"{label}: {exc}") from None


def parse_timeout(value: str | float, label: str = "timeout") -> float:
    """A job's own time limit: 30s, 15m, 2h, or seconds; more than nothing."""
    seconds = parse_delay(value, label)
    if seconds <= 0:
        raise UsageError(f"{label} must be more than 0 seconds")
    return seconds


#: the priorities a job can carry (a 32-bit column in every SQL table qadmin reads)
PRIORITY_RANGE = (-(2**31), 2**31 - 1)


def parse_priority(value: str | int, label: str = "priority") -> int:
    """A whole number in `PRIORITY_RANGE` (lower runs first)."""
    if isinstance(value, bool):
        raise UsageError(f"{label} must be a whole number")
    try:
        priority = int(value)
    except ValueError:
        raise UsageError(f"{label} must be a whole number, not {str(value)[:40]!r}") from None
    low, high = PRIORITY_RANGE
    if not low <= priority <= high:
        raise UsageError(f"{label} must be between {low} and {high}")
    return priority
