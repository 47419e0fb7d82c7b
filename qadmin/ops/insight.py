"""`ops.insight`: history charts and class metrics, read from what workers record
(`qadmin.insight`, `Backend.record_history`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from qadmin.backends import Backend
from qadmin.insight import ClassMetrics, HistorySeries


class InsightOps:
    def __init__(self, backend: Backend, *, clock: Callable[[], datetime]) -> None:
        self.backend = backend
        self.clock = clock

    def history(self, range: str = "24h", *, queue: str | None = None, job_class: str | None = None) -> HistorySeries:
        """The chart of `range` (a key of `insight.RANGES`; UsageError otherwise) ending now, one
        point per bucket (zero-filled), summed over every queue and class unless narrowed."""
        raise NotImplementedError

    def by_queue(self, range: str = "24h") -> dict[str, HistorySeries]:
        """`history` for each queue with anything recorded in the range (latency per queue)."""
        raise NotImplementedError

    def class_metrics(
        self, window: str = "24h", *, sort: str = "-runs", queue: str | None = None
    ) -> list[ClassMetrics]:
        """Every class with runs recorded in `window` (a range name or a duration: `90m`, `3d`),
        sorted by `sort` (`insight.METRIC_SORTS`, "-" for descending; UsageError otherwise),
        with the trend against the window before."""
        raise NotImplementedError
