"""Alert rules (`[alerts.NAME]` tables of `qadmin.toml`) and the incidents they open.

    [alerts]
    webhook = "https://hooks.slack.com/services/T000/B000/XXXX"   # default for every rule
    evaluate_in = ["scheduler", "web"]                             # where rules are evaluated
    every = "30s"                                                  # at most this often per process

    [alerts.mail-failing]
    kind = "failure_rate"     # failed or retried runs / runs, from the recorded history
    class = "Mailer"          # and/or queue = "mail"; neither: every job
    window = "15m"
    threshold = 0.2           # fires above 20 % ...
    min_runs = 20             # ... of at least 20 runs in the window

    [alerts.mail-slow]
    kind = "latency"          # the age of the queue's oldest ready job
    queue = "mail"
    above = "5m"

    [alerts.mail-unserved]
    kind = "no_worker"        # no live qadmin worker serves the queue ...
    queue = "mail"
    for = "2m"                # ... for this long

An incident opens when a rule starts firing and resolves when it stops; it is stored in the
backend (`Backend.open_incident`, a compare-and-set), so that any number of evaluating processes
send each message once (`ops/alerts.py`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from qadmin.errors import ConfigError
from qadmin.job import iso

FAILURE_RATE = "failure_rate"
LATENCY = "latency"
NO_WORKER = "no_worker"
KINDS = (FAILURE_RATE, LATENCY, NO_WORKER)
#: where rules may be evaluated (`[alerts] evaluate_in`)
PLACES = ("scheduler", "web")
DEFAULT_EVERY = 30.0
DEFAULT_WINDOW = 900.0
DEFAULT_MIN_RUNS = 10
#: the two messages of an incident
FIRING = "firing"
RESOLVED = "resolved"

_NAME = re.compile(r"^[A-Za-z0-9_.:@-]{1,100}$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_SETTINGS = {
    FAILURE_RATE: {"kind", "webhook", "class", "queue", "window", "threshold", "min_runs"},
    LATENCY: {"kind", "webhook", "queue", "above"},
    NO_WORKER: {"kind", "webhook", "queue", "for"},
}


@dataclass(frozen=True)
class AlertRule:
    name: str
    kind: str
    #: None: the `[alerts] webhook` default (and no message at all without one)
    webhook: str | None = None
    queue: str | None = None
    job_class: str | None = None
    #: failure_rate: the window looked back over (seconds), the rate it fires above, and the runs needed
    window: float = DEFAULT_WINDOW
    threshold: float = 0.0
    min_runs: int = DEFAULT_MIN_RUNS
    #: latency: the oldest ready job's age it fires above (seconds); no_worker: how long unserved
    above: float = 0.0
    duration: float = 0.0

    def describe(self) -> str:
        """The rule in one line, for every face and the webhook message."""
        where = " ".join(p for p in (f"class {self.job_class}" if self.job_class else "", self.scope()) if p)
        if self.kind == FAILURE_RATE:
            return (
                f"failure rate of {where or 'every job'} above {self.threshold:.0%} over {format_duration(self.window)}"
                f" (at least {self.min_runs} runs)"
            )
        if self.kind == LATENCY:
            return f"latency of {self.scope() or 'any queue'} above {format_duration(self.above)}"
        return f"no live worker for {self.scope()} for {format_duration(self.duration)}"

    def scope(self) -> str:
        return f"queue {self.queue}" if self.queue else ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "queue": self.queue, "rule": self.describe()}
        if self.kind == FAILURE_RATE:
            out.update(
                {"class": self.job_class, "window": self.window, "threshold": self.threshold, "min_runs": self.min_runs}
            )
        elif self.kind == LATENCY:
            out["above"] = self.above
        else:
            out["for"] = self.duration
        out["webhook"] = safe_webhook(self.webhook) if self.webhook else None
        return out


@dataclass(frozen=True)
class AlertConfig:
    """`[alerts]`: the rules, in the file's order, and where they are evaluated."""

    rules: tuple[AlertRule, ...] = ()
    evaluate_in: tuple[str, ...] = PLACES
    every: float = DEFAULT_EVERY

    def evaluated_in(self, place: str) -> bool:
        return bool(self.rules) and place in self.evaluate_in


@dataclass(frozen=True)
class Incident:
    """A rule's stored incident (`Backend.alert_incidents`): open while `resolved_at` is None.
    One per rule is kept: the next opening replaces a resolved one."""

    rule: str
    opened_at: datetime
    details: str
    resolved_at: datetime | None = None
    #: when the firing and the resolved message were delivered (None: not yet, or no webhook)
    firing_sent_at: datetime | None = None
    resolved_sent_at: datetime | None = None

    @property
    def open(self) -> bool:
        return self.resolved_at is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "opened_at": iso(self.opened_at),
            "details": self.details,
            "resolved_at": iso(self.resolved_at),
            "firing_sent_at": iso(self.firing_sent_at),
            "resolved_sent_at": iso(self.resolved_sent_at),
        }


@dataclass(frozen=True)
class RuleState:
    """A rule evaluated now: whether it fires, what it measured and why, in words."""

    rule: AlertRule
    firing: bool
    details: str
    value: float | None = None
    incident: Incident | None = field(default=None)
    #: why the rule could not be evaluated (the backend failed): its incident is left as it is
    error: str | None = None

    @property
    def label(self) -> str:
        return "error" if self.error else FIRING if self.firing else "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.rule.to_dict(),
            "state": self.label,
            "value": self.value,
            "details": self.details,
            "incident": self.incident.to_dict() if self.incident else None,
        }


def safe_webhook(url: str) -> str:
    """A webhook URL fit for logs and faces: scheme and host only (the path is its secret)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}/…"


def format_duration(seconds: float) -> str:
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def parse_duration(value: Any, label: str) -> float:
    """Seconds of `90`, `"90s"`, `"15m"`, `"1h30m"`; a ConfigError naming `label` otherwise."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        compact = value.replace(" ", "").lower()
        parts = _DURATION_PART.findall(compact)
        if compact and "".join(n + u for n, u in parts) == compact:
            seconds = sum(float(n) * _UNITS[u] for n, u in parts)
        else:
            try:
                seconds = float(compact)
            except ValueError:
                raise ConfigError(f"{label}: {value!r} is not a duration (e.g. 30s, 15m, 4h, 1d)") from None
    else:
        raise ConfigError(f"{label} must be a duration such as 30s, 15m, 4h")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"{label} must be a duration longer than 0")
    return seconds


def read_alerts(table: Any, path: Path | None = None) -> AlertConfig:
    """`[alerts]` and its `[alerts.NAME]` rules, checked; a ConfigError names the file, the rule
    and what is wrong."""
    where = f"{path}: " if path else ""
    if table is None:
        return AlertConfig()
    if not isinstance(table, dict):
        raise ConfigError(f"{where}[alerts] must be a table")
    default_hook = _webhook(table.get("webhook"), f"{where}[alerts] webhook")
    places = table.get("evaluate_in", list(PLACES))
    if isinstance(places, str):
        places = [places]
    if not isinstance(places, list) or not all(p in PLACES for p in places):
        raise ConfigError(f"{where}[alerts] evaluate_in must be a list of: {', '.join(PLACES)}")
    every = parse_duration(table["every"], f"{where}[alerts] every") if "every" in table else DEFAULT_EVERY
    rules = []
    for name, entry in table.items():
        if name in ("webhook", "evaluate_in", "every"):
            continue
        if not isinstance(entry, dict):
            raise ConfigError(
                f"{where}[alerts] {name!r} is not a setting (webhook, evaluate_in, every) nor a table [alerts.{name}]"
            )
        rules.append(_rule(name, entry, default_hook, f"{where}[alerts.{name}]"))
    return AlertConfig(rules=tuple(rules), evaluate_in=tuple(places), every=every)


def _rule(name: str, entry: dict[str, Any], default_hook: str | None, label: str) -> AlertRule:
    if not _NAME.match(name):
        raise ConfigError(f"{label}: a rule's name is letters, digits and _.:@- (at most 100)")
    kind = entry.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"{label} kind must be one of: {', '.join(KINDS)}")
    unknown = sorted(set(entry) - _SETTINGS[kind])
    if unknown:
        raise ConfigError(f"{label}: unknown setting {unknown[0]!r}; known: {', '.join(sorted(_SETTINGS[kind]))}")
    queue = _text(entry.get("queue"), f"{label} queue")
    webhook = _webhook(entry.get("webhook"), f"{label} webhook") or default_hook
    if kind == FAILURE_RATE:
        threshold = entry.get("threshold")
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold < 1:
            raise ConfigError(f"{label} threshold must be a rate from 0 to 1 (0.2 is 20 %), below 1")
        min_runs = entry.get("min_runs", DEFAULT_MIN_RUNS)
        if isinstance(min_runs, bool) or not isinstance(min_runs, int) or min_runs < 1:
            raise ConfigError(f"{label} min_runs must be a whole number of runs, at least 1")
        window = parse_duration(entry["window"], f"{label} window") if "window" in entry else DEFAULT_WINDOW
        if window < 60:
            raise ConfigError(f"{label} window must be at least 1m: history is kept per minute")
        return AlertRule(
            name,
            kind,
            webhook,
            queue=queue,
            job_class=_text(entry.get("class"), f"{label} class"),
            window=window,
            threshold=float(threshold),
            min_runs=min_runs,
        )
    if queue is None and kind == NO_WORKER:
        raise ConfigError(f"{label} needs a queue: the queue a worker must serve")
    if kind == LATENCY:
        if "above" not in entry:
            raise ConfigError(f"{label} needs above: the age of the oldest ready job it fires above (e.g. 5m)")
        return AlertRule(name, kind, webhook, queue=queue, above=parse_duration(entry["above"], f"{label} above"))
    duration = parse_duration(entry["for"], f"{label} for") if "for" in entry else 60.0
    return AlertRule(name, kind, webhook, queue=queue, duration=duration)


def _text(value: Any, label: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{label} must be a name")
    return value


def _webhook(value: Any, label: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{label} must be a URL")
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(f"{label} must be an http(s) URL")
    return value
