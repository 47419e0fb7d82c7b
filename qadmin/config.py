"""`qadmin.toml`, read and checked (`qadmin.settings` decides between it, the environment and
the command line).

The config file names backends so that every face can switch between them:

    default = "local"

    [backends.local]
    url = "sqlite:///qadmin.db"

    [backends.prod-redis]
    url = "redis://10.0.0.5:6379/0"
    namespace = "resque"

    [web]
    password = "..."          # or QADMIN_WEB_PASSWORD

    [users.alice]             # or users, each with a role (README: Users and roles)
    password_hash = "scrypt:32768:8:1$..."   # qadmin users hash-password
    role = "operator"         # viewer, operator or admin

    [worker]
    imports = ["myapp.jobs"]  # what `qadmin worker` runs, besides its --import options
    timeout = "60s"           # a qadmin worker silent this long is dead, on every face
    pool = "process"          # or "async" (`qadmin worker --pool`; read by Settings.worker_pool)

    [retention]               # what `qadmin prune` and the workers' automatic prune keep
    failed = "30d"            # failed jobs; "never" (or 0) keeps them for ever
    finished = "7d"           # finished records
    workers = "1d"            # dead qadmin workers in the workers list; "never" keeps them
    prune_every = "1h"        # the workers' automatic prune, once per backend; "never" turns it off

    [redact]                  # sensitive job data hidden on every face (README: Sensitive arguments)
    keys = ["social_security"]  # more argument keys (matched inside longer keys, any case)
    patterns = ['pin=(?P<secret>\\d+)']   # regular expressions over values and error texts

    [recurring.nightly-report]  # a schedule `qadmin scheduler` enqueues (README: Recurring jobs)
    class = "myapp.jobs.report"
    cron = "0 3 * * *"          # or every = "30s"
    timezone = "Europe/Paris"

Looked up at `--config`, `$QADMIN_CONFIG`, `./qadmin.toml`, then `~/.config/qadmin/qadmin.toml`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qadmin.alert_rules import AlertConfig, read_alerts
from qadmin.errors import ConfigError, UsageError
from qadmin.insight import HistoryConfig, read_history
from qadmin.recurring import Schedule, schedule_from_table
from qadmin.redaction import Redactor, read_redaction

if TYPE_CHECKING:
    from qadmin.access import User

DEFAULT_URL = "sqlite:///qadmin.db"
#: the Redis key namespace when none is given (Resque's)
DEFAULT_NAMESPACE = "resque"
#: the longest duration qadmin takes (100 years): any longer one moves a time past what a
#: datetime holds (`--in`, `--older-than`) or what a thread can wait (`--sleep`)
MAX_DURATION = 36525 * 86400.0
#: the retention defaults (`[retention]`): failed jobs a month, finished records a week, dead
#: workers a day; the workers prune at most once an hour per backend
DEFAULT_FAILED_RETENTION = 30 * 86400.0
DEFAULT_FINISHED_RETENTION = 7 * 86400.0
DEFAULT_WORKER_RETENTION = 86400.0
DEFAULT_PRUNE_EVERY = 3600.0
#: seconds without a heartbeat after which a qadmin worker counts as dead (`[worker] timeout`)
DEFAULT_WORKER_TIMEOUT = 60.0
#: what a retention setting may say instead of a duration to keep for ever (or not prune at all)
NEVER = ("never", "off")


@dataclass(frozen=True)
class BackendConfig:
    name: str
    url: str
    table: str | None = None
    namespace: str = DEFAULT_NAMESPACE


@dataclass(frozen=True)
class Retention:
    """`[retention]`, in seconds; None where the file says "never" (or 0)."""

    failed: float | None = DEFAULT_FAILED_RETENTION
    finished: float = DEFAULT_FINISHED_RETENTION
    workers: float | None = DEFAULT_WORKER_RETENTION
    prune_every: float | None = DEFAULT_PRUNE_EVERY


@dataclass(frozen=True)
class Config:
    backends: dict[str, BackendConfig] = field(default_factory=dict)
    default: str | None = None
    web: dict[str, Any] = field(default_factory=dict)
    tui: dict[str, Any] = field(default_factory=dict)
    worker: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    retention: Retention = field(default_factory=Retention)
    #: `[worker] timeout`: when a qadmin worker without a heartbeat counts as dead (None: the default)
    worker_timeout: float | None = None
    #: `[recurring.NAME]` tables, in the file's order (`qadmin scheduler` stores them)
    recurring: tuple[Schedule, ...] = ()
    #: `[alerts]` and its `[alerts.NAME]` rules (`qadmin.alert_rules`)
    alerts: AlertConfig = field(default_factory=AlertConfig)
    #: `[history]`: whether workers record history, and how long it is kept (`qadmin.insight`)
    history: HistoryConfig = field(default_factory=HistoryConfig)
    #: `[users.NAME]` tables: the web's users and their roles (qadmin.access.read_users)
    users: tuple[User, ...] = ()
    #: `[redact]`: what every face hides of job data (`qadmin.redaction`)
    redactor: Redactor = field(default_factory=Redactor)

    def backend(self, name: str | None) -> BackendConfig:
        if name is None:
            name = self.default
        if name is None:
            raise ConfigError("no backend named and no default in the config file")
        if name not in self.backends:
            known = ", ".join(sorted(self.backends)) or "none configured"
            where = f" in {self.path}" if self.path else ""
            raise ConfigError(f"no backend named {name!r}{where}; known: {known}")
        return self.backends[name]


def config_path(explicit: str | None = None) -> Path | None:
    if explicit:
        path = Path(explicit).expanduser()
        if not path.exists():
            raise ConfigError(f"config file {path} does not exist")
        return path
    env = os.environ.get("QADMIN_CONFIG")
    if env:
        path = Path(env).expanduser()
        if not path.exists():
            raise ConfigError(f"QADMIN_CONFIG names {path}, which does not exist")
        return path
    for candidate in (Path("qadmin.toml"), Path.home() / ".config" / "qadmin" / "qadmin.toml"):
        if candidate.exists():
            return candidate
    return None


def load_config(explicit: str | None = None) -> Config:
    path = config_path(explicit)
    if path is None:
        return Config()
    # the parser and the users' password hashing are imported only when there is a file to read
    import tomllib

    from qadmin.access import read_users

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    backends: dict[str, BackendConfig] = {}
    for name, entry in (data.get("backends") or {}).items():
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            raise ConfigError(f"{path}: [backends.{name}] needs a url")
        backends[name] = BackendConfig(
            name=name, url=entry["url"], table=entry.get("table"), namespace=entry.get("namespace", DEFAULT_NAMESPACE)
        )
    default = data.get("default")
    if default is None and len(backends) == 1:
        default = next(iter(backends))
    if default is not None and default not in backends:
        raise ConfigError(f"{path}: default backend {default!r} is not defined under [backends]")
    return Config(
        backends=backends,
        default=default,
        web=dict(data.get("web") or {}),
        tui=dict(data.get("tui") or {}),
        worker=dict(data.get("worker") or {}),
        path=path,
        retention=read_retention(data.get("retention"), path),
        worker_timeout=read_worker_timeout(data.get("worker"), path),
        recurring=read_recurring(data.get("recurring"), path),
        alerts=read_alerts(data.get("alerts"), path),
        history=read_history(data.get("history"), f"{path}: [history]", _duration_setting),
        users=read_users(data.get("users"), path),
        redactor=read_redaction(data.get("redact"), path),
    )


def read_recurring(table: Any, path: Path | None = None) -> tuple[Schedule, ...]:
    """`[recurring.NAME]` tables as schedules (source "qadmin.toml"); a ConfigError names the
    file, the schedule and what is wrong."""
    where = f"{path}: " if path else ""
    if table is None:
        return ()
    if not isinstance(table, dict):
        raise ConfigError(f"{where}[recurring] must hold tables [recurring.NAME]")
    schedules: list[Schedule] = []
    for name, entry in table.items():
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}recurring.{name} must be a table [recurring.{name}]")
        try:
            schedules.append(schedule_from_table(name, entry))
        except UsageError as exc:
            raise ConfigError(f"{where}{exc}") from None
    return tuple(schedules)


def read_worker_timeout(table: Any, path: Path | None = None) -> float | None:
    """`[worker] timeout`: a positive duration, the same for every face (a worker judged dead by
    the web but alive by its peers would confuse the operator), or None when the file is silent."""
    if not isinstance(table, dict) or "timeout" not in table:
        return None
    where = f"{path}: [worker] timeout" if path else "[worker] timeout"
    seconds = _duration_setting(table["timeout"], where, "a duration such as 60s")
    if not seconds:
        raise ConfigError(f"{where} must be longer than 0")
    return seconds


def read_retention(table: Any, path: Path | None = None) -> Retention:
    """`[retention]` checked: durations ("30d", seconds), or "never"/0 where keeping for ever
    makes sense (failed jobs, workers, the automatic prune); finished records are history and
    always pruned."""
    where = f"{path}: [retention]" if path else "[retention]"
    if table is None:
        return Retention()
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = sorted(set(table) - {"failed", "finished", "workers", "prune_every"})
    if unknown:
        raise ConfigError(f"{where}: unknown setting {unknown[0]!r}; known: failed, finished, workers, prune_every")

    def setting(name: str, default: float | None) -> float | None:
        if name not in table:
            return default
        value = table[name]
        if isinstance(value, str) and value.strip().lower() in NEVER:
            return None
        return _duration_setting(value, f"{where} {name}", 'a duration such as 30d, or "never"') or None

    finished = setting("finished", DEFAULT_FINISHED_RETENTION)
    if finished is None:
        raise ConfigError(f"{where} finished must be a duration: finished records are history, always pruned")
    return Retention(
        failed=setting("failed", DEFAULT_FAILED_RETENTION),
        finished=finished,
        workers=setting("workers", DEFAULT_WORKER_RETENTION),
        prune_every=setting("prune_every", DEFAULT_PRUNE_EVERY),
    )


def _duration_setting(value: Any, label: str, expected: str) -> float:
    """A duration from the file, or a ConfigError naming the setting (`label`)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigError(f"{label} must be {expected}")
    try:
        return parse_duration(value)
    except ConfigError as exc:
        raise ConfigError(f"{label}: {exc}") from None


def parse_duration(text: str | float | int) -> float:
    """Seconds from `90`, `90s`, `15m`, `4h`, `2d`, `1h30m`, at most `MAX_DURATION`; ConfigError on
    anything else."""
    seconds = _parse_duration(text)
    if seconds > MAX_DURATION:
        raise ConfigError(f"duration {text!r} is too long: at most 36525d (100 years)")
    return seconds


def _parse_duration(text: str | float | int) -> float:
    if isinstance(text, (int, float)):
        if not math.isfinite(text):
            raise ConfigError(f"invalid duration {text!r}: not a finite number")
        if text < 0:
            raise ConfigError(f"duration {text} is negative")
        return float(text)
    s = str(text).strip().lower()
    if not s:
        raise ConfigError("empty duration")
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    try:
        value = float(s)
    except ValueError:
        value = None
    if value is not None:
        if not math.isfinite(value):  # "nan", "inf", "1e999" are floats to Python, not durations
            raise ConfigError(f"invalid duration {text!r}: not a finite number")
        if value < 0:
            raise ConfigError(f"duration {text!r} is negative")
        return value
    total, number = 0.0, ""
    i = 0
    matched_any = False
    while i < len(s):
        ch = s[i]
        if ch.isdigit() or ch == ".":
            number += ch
            i += 1
            continue
        unit = "ms" if s.startswith("ms", i) else ch
        if unit not in units or not number:
            raise ConfigError(f"invalid duration {text!r}: use e.g. 30s, 15m, 4h, 2d")
        try:
            total += float(number) * units[unit]
        except ValueError:
            raise ConfigError(f"invalid duration {text!r}") from None
        number = ""
        matched_any = True
        i += len(unit)
    if number or not matched_any:
        raise ConfigError(f"invalid duration {text!r}: use e.g. 30s, 15m, 4h, 2d")
    if not math.isfinite(total):
        raise ConfigError(f"invalid duration {text!r}: not a finite number")
    return total
