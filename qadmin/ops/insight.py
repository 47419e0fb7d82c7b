"""`ops.insight`: history charts and class metrics, read from what workers record
(`qadmin.insight`, `Backend.record_history`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from qadmin.backends import Backend
from qadmin.backends.buckets import bucket_start, width
from qadmin.config import parse_duration
from qadmin.errors import ConfigError, UsageError
from qadmin.insight import (
    HOUR,
    METRIC_SORTS,
    MINUTE,
    RANGES,
    ClassMetrics,
    Counts,
    HistoryPoint,
    HistoryRow,
    HistorySeries,
)
from qadmin.insight import percentile as quantile


def range_of(name: str) -> tuple[timedelta, str]:
    try:
        return RANGES[name]
    except KeyError:
        raise UsageError(f"unknown range {name!r}: one of {', '.join(RANGES)}") from None


def window_of(text: str) -> timedelta:
    """A window: a range name (`24h`) or a duration (`90m`, `3d`); UsageError otherwise."""
    if text in RANGES:
        return RANGES[text][0]
    try:
        seconds = parse_duration(text)
    except ConfigError as exc:
        raise UsageError(f"bad window {text!r}: {exc}") from None
    if seconds < 60:
        raise UsageError(f"bad window {text!r}: at least a minute (history is kept per minute)")
    return timedelta(seconds=seconds)


@dataclass(kw_only=True)
class _Sum(Counts):
    """Rows read back summed (and the queues seen)."""

    queues: set[str] = field(default_factory=set)

    def add_row(self, row: HistoryRow) -> None:
        self.add(row)
        self.queues.add(row.queue)

    def point(self, at: datetime) -> HistoryPoint:
        return HistoryPoint(
            at, self.processed, self.failed, self.retried, self.runtime_total, dict(self.runtimes), self.latency
        )


def _series(
    name: str, resolution: str, since: datetime, until: datetime, rows: Iterable[HistoryRow], **narrowed: Any
) -> HistorySeries:
    step = width(resolution)
    sums: dict[datetime, _Sum] = {}
    for row in rows:
        sums.setdefault(row.at, _Sum()).add(row)
    points = []
    at = since
    while at < until:
        points.append((sums.get(at) or _Sum()).point(at))
        at += step
    return HistorySeries(name, resolution, since, until, points, **narrowed)


class InsightOps:
    def __init__(self, backend: Backend, *, clock: Callable[[], datetime]) -> None:
        self.backend = backend
        self.clock = clock

    def _bounds(self, name: str) -> tuple[str, datetime, datetime]:
        span, resolution = range_of(name)
        until = bucket_start(resolution, self.clock()) + width(resolution)
        return resolution, until - span, until

    def history(self, range: str = "24h", *, queue: str | None = None, job_class: str | None = None) -> HistorySeries:
        """The chart of `range` (a key of `insight.RANGES`; UsageError otherwise) ending now, one
        point per bucket (zero-filled), summed over every queue and class unless narrowed."""
        resolution, since, until = self._bounds(range)
        rows = self.backend.history(resolution, since, until, queue=queue, job_class=job_class)
        return _series(range, resolution, since, until, rows, queue=queue, job_class=job_class)

    def by_queue(self, range: str = "24h") -> dict[str, HistorySeries]:
        """`history` for each queue with anything recorded in the range (latency per queue)."""
        resolution, since, until = self._bounds(range)
        per_queue: dict[str, list[HistoryRow]] = {}
        for row in self.backend.history(resolution, since, until):
            per_queue.setdefault(row.queue, []).append(row)
        return {q: _series(range, resolution, since, until, rows, queue=q) for q, rows in sorted(per_queue.items())}

    def _per_class(self, since: datetime, until: datetime, queue: str | None) -> dict[str, _Sum]:
        """Each class's sums over [since, until): minutes while they are kept, else the hours
        wholly inside it (an hour across its edge would count runs of the window beside it)."""
        kept = timedelta(seconds=self.backend.options.history_minutes)
        resolution = MINUTE if self.clock() - since <= kept else HOUR
        if resolution == HOUR:
            first = bucket_start(HOUR, since)
            since = first if first == since else first + width(HOUR)
            until = bucket_start(HOUR, until)
        sums: dict[str, _Sum] = {}
        for row in self.backend.history(resolution, since, until, queue=queue):
            sums.setdefault(row.job_class, _Sum()).add_row(row)
        return sums

    def class_metrics(
        self, window: str = "24h", *, sort: str = "-runs", queue: str | None = None
    ) -> list[ClassMetrics]:
        """Every class with runs recorded in `window` (a range name or a duration: `90m`, `3d`),
        sorted by `sort` (`insight.METRIC_SORTS`, "-" for descending; UsageError otherwise),
        with the trend against the window before."""
        key = sort.removeprefix("-")
        if key not in METRIC_SORTS:
            raise UsageError(f"unknown sort {sort!r}: one of {', '.join(METRIC_SORTS)} (a leading - for descending)")
        span = window_of(window)
        until = bucket_start(MINUTE, self.clock()) + width(MINUTE)
        now_sums = self._per_class(until - span, until, queue)
        before = self._per_class(until - 2 * span, until - span, queue)
        metrics = [_metrics(cls, s, before.get(cls)) for cls, s in now_sums.items() if s.runs]
        return sort_metrics(metrics, sort)


def _metrics(job_class: str, s: _Sum, before: _Sum | None) -> ClassMetrics:
    timed = sum(s.runtimes.values())
    rate = (s.failed + s.retried) / s.runs
    earlier = before if before is not None and before.runs else None
    return ClassMetrics(
        job_class=job_class,
        runs=s.runs,
        processed=s.processed,
        failed=s.failed,
        retried=s.retried,
        p50=quantile(s.runtimes, 0.5),
        p95=quantile(s.runtimes, 0.95),
        p99=quantile(s.runtimes, 0.99),
        mean=s.runtime_total / timed if timed else None,
        failure_rate_change=None if earlier is None else rate - (earlier.failed + earlier.retried) / earlier.runs,
        runs_change=None if earlier is None else s.runs / earlier.runs,
        queues=tuple(sorted(s.queues)),
    )


def sort_metrics(metrics: list[ClassMetrics], sort: str) -> list[ClassMetrics]:
    """`metrics` by a `METRIC_SORTS` key ("-" descending), the classes without a value last, then
    by class name."""
    descending = sort.startswith("-")
    key = sort.removeprefix("-")
    by_name = sorted(metrics, key=lambda m: m.job_class)
    if key == "class":
        return list(reversed(by_name)) if descending else by_name
    valued = [m for m in by_name if getattr(m, key) is not None]
    unvalued = [m for m in by_name if getattr(m, key) is None]
    return sorted(valued, key=lambda m: float(getattr(m, key)), reverse=descending) + unvalued
