"""History that lasts: what workers record of every run, per minute, and what the faces read back.

A worker counts its runs in memory (`HistorySample`s, one per minute, queue and class) and hands
them to its backend every few seconds (`Backend.record_history`), which adds them to a minute
bucket and to an hour bucket at once: the roll-up happens as it is written, so no process has to
run one. Minutes are kept for `[history] minutes` (a day by default), hours for `[history] hours`
(30 days). A worker killed between two flushes loses at most those few seconds of counts — the
jobs themselves are safe; only the chart misses them.

Runtimes are kept as a sparse histogram of geometric buckets (`runtime_bucket`): each bucket is
2^(1/8) wider than the one before (about 9 %), from a millisecond up, so p50/p95/p99 read from it
(`percentile`) are within about 4.5 % of the exact value, and buckets add across workers, minutes
and hours, which exact quantiles do not.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from qadmin.errors import ConfigError
from qadmin.job import iso

#: the two resolutions stored
MINUTE = "minute"
HOUR = "hour"
RESOLUTIONS = (MINUTE, HOUR)
#: how long each resolution is kept by default (`[history] minutes`, `[history] hours`)
DEFAULT_MINUTES_KEPT = 86400.0
DEFAULT_HOURS_KEPT = 30 * 86400.0

#: the ranges every face offers: name -> (span, resolution read)
RANGES: dict[str, tuple[timedelta, str]] = {
    "1h": (timedelta(hours=1), MINUTE),
    "24h": (timedelta(days=1), MINUTE),
    "7d": (timedelta(days=7), HOUR),
    "30d": (timedelta(days=30), HOUR),
}

#: runtime buckets per doubling: bucket i holds runtimes in (BASE * R^(i-1), BASE * R^i]
BUCKETS_PER_DOUBLING = 8
_RATIO = 2 ** (1 / BUCKETS_PER_DOUBLING)
#: the upper bound of bucket 0, in seconds: a millisecond (anything faster lands in it)
BUCKET_BASE = 0.001
#: the last bucket (about 2^27 ms, a day and a half) holds anything longer
MAX_BUCKET = 27 * BUCKETS_PER_DOUBLING


def runtime_bucket(seconds: float) -> int:
    """The histogram bucket of a runtime."""
    if not seconds > BUCKET_BASE:  # also NaN
        return 0
    return min(MAX_BUCKET, math.ceil(math.log(seconds / BUCKET_BASE, _RATIO) - 1e-9))


def bucket_upper(index: int) -> float:
    """The largest runtime (seconds) bucket `index` holds."""
    return float(BUCKET_BASE * _RATIO**index)


def percentile(buckets: Mapping[int, int], q: float) -> float | None:
    """The q-quantile (0 < q <= 1) of the runtimes a histogram counts, None when it is empty: the
    geometric middle of the bucket the quantile falls in (within half a bucket of the truth)."""
    total = sum(n for n in buckets.values() if n > 0)
    if total <= 0:
        return None
    rank = q * total
    seen = 0
    for index in sorted(buckets):
        seen += max(buckets[index], 0)
        if seen >= rank:
            return bucket_upper(index) if index == 0 else bucket_upper(index) / math.sqrt(_RATIO)
    return bucket_upper(max(buckets))


class Countable(Protocol):
    """What a sample, a stored row and a point share: counts, runtimes, the longest wait."""

    @property
    def processed(self) -> int: ...
    @property
    def failed(self) -> int: ...
    @property
    def retried(self) -> int: ...
    @property
    def runtime_total(self) -> float: ...
    @property
    def runtimes(self) -> Mapping[int, int]: ...
    @property
    def latency(self) -> float | None: ...


@dataclass(kw_only=True)
class Counts:
    """History counts being summed — samples into a bucket, rows into a point, points into a
    chart's bar: counts and runtime buckets add up, the latency is the longest."""

    processed: int = 0
    failed: int = 0
    retried: int = 0
    runtime_total: float = 0.0
    runtimes: dict[int, int] = field(default_factory=dict)
    latency: float | None = None

    def add(self, other: Countable) -> None:
        self.processed += other.processed
        self.failed += other.failed
        self.retried += other.retried
        self.runtime_total += other.runtime_total
        for index, n in other.runtimes.items():
            self.runtimes[index] = self.runtimes.get(index, 0) + n
        if other.latency is not None and (self.latency is None or other.latency > self.latency):
            self.latency = other.latency

    @property
    def runs(self) -> int:
        return self.processed + self.failed + self.retried


@dataclass
class HistorySample(Counts):
    """A worker's counts for one minute, one queue and one job class (the unit it flushes). Every
    run that ended (succeeded, failed for good, retried) adds its runtime to `runtimes`; `latency`
    is the longest wait seen in this minute for this queue, seconds: a claimed job's start minus
    when it became ready (its run_at, else its enqueue time), or the age of the queue's oldest
    ready job when the worker sampled it; None when nothing was seen."""

    #: the minute's start, UTC, seconds and microseconds zero
    minute: datetime
    queue: str
    job_class: str

    def add_run(self, runtime: float) -> None:
        self.runtime_total += runtime
        index = runtime_bucket(runtime)
        self.runtimes[index] = self.runtimes.get(index, 0) + 1

    def add_latency(self, seconds: float) -> None:
        if self.latency is None or seconds > self.latency:
            self.latency = seconds


@dataclass(frozen=True)
class HistoryPoint:
    """One bucket read back (a minute or an hour), summed over what the read selected."""

    at: datetime
    processed: int
    failed: int
    retried: int
    runtime_total: float
    runtimes: Mapping[int, int]
    #: the longest wait in the bucket, seconds (queue latency); None when nothing was recorded
    latency: float | None

    @property
    def runs(self) -> int:
        return self.processed + self.failed + self.retried

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": iso(self.at),
            "processed": self.processed,
            "failed": self.failed,
            "retried": self.retried,
            "runtime_total": round(self.runtime_total, 6),
            "p50": percentile(self.runtimes, 0.5),
            "p95": percentile(self.runtimes, 0.95),
            "latency": self.latency,
        }


@dataclass(frozen=True)
class HistoryRow:
    """One stored bucket for one queue and one class, as `Backend.history` returns it."""

    at: datetime
    queue: str
    job_class: str
    processed: int
    failed: int
    retried: int
    runtime_total: float
    runtimes: Mapping[int, int]
    latency: float | None


@dataclass(frozen=True)
class HistorySeries:
    """A chart's data: one point per bucket of the range, oldest first, empty buckets included
    (zero counts), so that a gap in activity shows as a gap and not as a shorter chart."""

    range: str
    resolution: str
    since: datetime
    until: datetime
    points: list[HistoryPoint]
    queue: str | None = None
    job_class: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "range": self.range,
            "resolution": self.resolution,
            "since": iso(self.since),
            "until": iso(self.until),
            "queue": self.queue,
            "class": self.job_class,
            "points": [p.to_dict() for p in self.points],
        }


@dataclass(frozen=True)
class ClassMetrics:
    """One job class over a window: how often it ran, failed, and how long it took."""

    job_class: str
    runs: int
    processed: int
    failed: int
    retried: int
    #: seconds; None when no run was recorded
    p50: float | None
    p95: float | None
    p99: float | None
    mean: float | None
    #: the failure rate ((failed + retried) / runs) of this window minus that of the window
    #: before it, and the change in runs (this window / the one before; None when it had none)
    failure_rate_change: float | None
    runs_change: float | None
    queues: tuple[str, ...] = ()

    @property
    def failure_rate(self) -> float:
        return (self.failed + self.retried) / self.runs if self.runs else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "class": self.job_class,
            "runs": self.runs,
            "processed": self.processed,
            "failed": self.failed,
            "retried": self.retried,
            "failure_rate": self.failure_rate,
            "p50": self.p50,
            "p95": self.p95,
            "p99": self.p99,
            "mean": self.mean,
            "failure_rate_change": self.failure_rate_change,
            "runs_change": self.runs_change,
            "queues": list(self.queues),
        }


#: failure rates from which every face shows a class in the error colour, and in the warning colour
HIGH_FAILURE_RATE = 0.10
NOTABLE_FAILURE_RATE = 0.01
#: a change of failure rate smaller than this (half a percentage point) is no trend, on every face
TREND_POINTS = 0.005


def failure_level(rate: float) -> str:
    """ "high", "notable" or "low": how alarming a failure rate is (its colour on every face)."""
    return "high" if rate >= HIGH_FAILURE_RATE else "notable" if rate >= NOTABLE_FAILURE_RATE else "low"


#: how class metrics may be sorted (a leading "-" is descending), on every face
METRIC_SORTS = ("class", "runs", "failed", "failure_rate", "p50", "p95", "p99", "mean")


@dataclass(frozen=True)
class HistoryConfig:
    """`[history]` in qadmin.toml: whether workers record (`record`), and how long each resolution
    is kept (`minutes`, `hours`: durations, in seconds here)."""

    record: bool = True
    minutes: float = DEFAULT_MINUTES_KEPT
    hours: float = DEFAULT_HOURS_KEPT


def read_history(table: Any, where: str, duration: Callable[[Any, str, str], float]) -> HistoryConfig:
    """`[history]` checked (`where` names it in messages; `duration` reads a duration setting as
    qadmin.config does, raising its ConfigError): minutes kept at least an hour (the 1h chart),
    hours at least a day and no shorter than the minutes."""
    if table is None:
        return HistoryConfig()
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = set(table) - {"record", "minutes", "hours"}
    if unknown:
        raise ConfigError(f"{where}: unknown setting {sorted(unknown)[0]!r} (record, minutes, hours)")
    record = table.get("record", True)
    if not isinstance(record, bool):
        raise ConfigError(f"{where} record must be true or false")
    minutes = duration(table.get("minutes", DEFAULT_MINUTES_KEPT), f"{where} minutes", "a duration such as 1d")
    hours = duration(table.get("hours", DEFAULT_HOURS_KEPT), f"{where} hours", "a duration such as 30d")
    if minutes < 3600:
        raise ConfigError(f"{where} minutes must be at least 1h (the 1h chart reads minutes)")
    if hours < max(minutes, 86400):
        raise ConfigError(f"{where} hours must be at least 1d and no shorter than minutes")
    return HistoryConfig(record, minutes, hours)
