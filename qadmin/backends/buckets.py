"""History buckets as both backends write them: a worker's samples summed per bucket (a minute
and an hour for each), and how long each resolution is kept."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from qadmin.backends.base import BackendOptions
from qadmin.insight import HOUR, MINUTE, RESOLUTIONS, Counts, HistorySample

#: a key of both tables: (resolution, bucket start, queue, class)
BucketKey = tuple[str, datetime, str, str]


def bucket_start(resolution: str, at: datetime) -> datetime:
    """The start of the minute or hour `at` falls in."""
    at = at.replace(second=0, microsecond=0)
    return at.replace(minute=0) if resolution == HOUR else at


def retention(options: BackendOptions, resolution: str) -> timedelta:
    return timedelta(seconds=options.history_minutes if resolution == MINUTE else options.history_hours)


def merge_samples(samples: Sequence[HistorySample], options: BackendOptions, now: datetime) -> dict[BucketKey, Counts]:
    """The samples summed per bucket of both resolutions; buckets already past their retention
    are left out (a prune would drop them anyway)."""
    merged: dict[BucketKey, Counts] = {}
    for resolution in RESOLUTIONS:
        oldest = bucket_start(resolution, now - retention(options, resolution))
        for s in samples:
            at = bucket_start(resolution, s.minute)
            if at < oldest:
                continue
            b = merged.setdefault((resolution, at, s.queue, s.job_class), Counts())
            b.add(s)
    return merged


def width(resolution: str) -> timedelta:
    return timedelta(hours=1) if resolution == HOUR else timedelta(minutes=1)
