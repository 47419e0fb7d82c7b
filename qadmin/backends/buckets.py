"""History buckets as both backends write them: a worker's samples summed per bucket (a minute
and an hour for each), and how long each resolution is kept."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from qadmin.backends.base import BackendOptions
from qadmin.insight import HOUR, MINUTE, RESOLUTIONS, HistorySample

#: a key of both tables: (resolution, bucket start, queue, class)
BucketKey = tuple[str, datetime, str, str]


@dataclass
class Bucket:
    processed: int = 0
    failed: int = 0
    retried: int = 0
    runtime_total: float = 0.0
    latency: float | None = None
    runtimes: dict[int, int] = field(default_factory=dict)


def bucket_start(resolution: str, at: datetime) -> datetime:
    """The start of the minute or hour `at` falls in."""
    at = at.replace(second=0, microsecond=0)
    return at.replace(minute=0) if resolution == HOUR else at


def retention(options: BackendOptions, resolution: str) -> timedelta:
    return timedelta(seconds=options.history_minutes if resolution == MINUTE else options.history_hours)


def merge_samples(samples: Sequence[HistorySample], options: BackendOptions, now: datetime) -> dict[BucketKey, Bucket]:
    """The samples summed per bucket of both resolutions; buckets already past their retention
    are left out (a prune would drop them anyway)."""
    merged: dict[BucketKey, Bucket] = {}
    for resolution in RESOLUTIONS:
        oldest = bucket_start(resolution, now - retention(options, resolution))
        for s in samples:
            at = bucket_start(resolution, s.minute)
            if at < oldest:
                continue
            b = merged.setdefault((resolution, at, s.queue, s.job_class), Bucket())
            b.processed += s.processed
            b.failed += s.failed
            b.retried += s.retried
            b.runtime_total += s.runtime_total
            if s.latency is not None and (b.latency is None or s.latency > b.latency):
                b.latency = s.latency
            for index, n in s.runtimes.items():
                b.runtimes[index] = b.runtimes.get(index, 0) + n
    return merged


def width(resolution: str) -> timedelta:
    return timedelta(hours=1) if resolution == HOUR else timedelta(minutes=1)
