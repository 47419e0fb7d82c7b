"""`ops.insight` on every backend: a day of synthetic history renders in all four ranges (one
zero-filled point per bucket, sums right), per queue; class metrics sorted, with their trend;
UsageErrors for unknown ranges, sorts and bad windows."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from qadmin.backends import Backend, BackendOptions, open_backend
from qadmin.errors import UsageError
from qadmin.insight import HistorySample
from qadmin.job import utcnow
from qadmin.ops import Ops

POINTS = {"1h": 60, "24h": 1440, "7d": 168, "30d": 720}


def a_day(now: datetime) -> list[HistorySample]:
    """Every minute of the last day: `Mail` on `mail` (2 ok, a failure every 10th minute, 0.1 s
    each) and `Report` on `reports` every 3rd minute (1 ok of 2 s, retried every 30th)."""
    samples = []
    this_minute = now.replace(second=0, microsecond=0)
    for ago in range(1440):
        minute = this_minute - timedelta(minutes=ago)
        mail = HistorySample(minute, "mail", "Mail", processed=2, failed=1 if ago % 10 == 0 else 0)
        for _ in range(mail.processed + mail.failed):
            mail.add_run(0.1)
        mail.add_latency(ago % 7)
        samples.append(mail)
        if ago % 3 == 0:
            report = HistorySample(minute, "reports", "Report", processed=1, retried=1 if ago % 30 == 0 else 0)
            for _ in range(report.processed + report.retried):
                report.add_run(2.0)
            samples.append(report)
    return samples


def test_a_day_of_synthetic_history_renders_in_all_four_ranges(backend: Backend) -> None:
    now = utcnow()
    samples = a_day(now)
    backend.record_history(samples)
    ops = Ops(backend, clock=lambda: now)
    for name, count in POINTS.items():
        series = ops.insight.history(name)
        assert len(series.points) == count, name
        assert series.points[-1].at <= now < series.until
        steps = {b.at - a.at for a, b in zip(series.points, series.points[1:], strict=False)}
        assert len(steps) == 1  # evenly spaced, gaps zero-filled
        in_range = [s for s in samples if s.minute >= series.since]
        assert sum(p.processed for p in series.points) == sum(s.processed for s in in_range), name
        assert sum(p.failed for p in series.points) == sum(s.failed for s in in_range), name
        assert sum(p.retried for p in series.points) == sum(s.retried for s in in_range), name
        assert sum(sum(p.runtimes.values()) for p in series.points) == sum(sum(s.runtimes.values()) for s in in_range)
        assert max(p.latency or 0 for p in series.points) == 6
        assert series.to_dict()["points"][-1]["p50"] is not None
    hourly = ops.insight.history("7d").points
    assert sum(1 for p in hourly if p.runs) in (24, 25)  # a day's hours, the first maybe split
    assert all(p.runs == 0 and p.latency is None for p in hourly[:-26])


def test_history_narrows_and_splits_by_queue(backend: Backend) -> None:
    now = utcnow()
    samples = a_day(now)
    backend.record_history(samples)
    ops = Ops(backend, clock=lambda: now)
    reports = ops.insight.history("24h", queue="reports")
    assert sum(p.processed for p in reports.points) == 480
    assert reports.to_dict()["queue"] == "reports"
    assert sum(p.failed for p in ops.insight.history("24h", job_class="Report").points) == 0
    per_queue = ops.insight.by_queue("1h")
    assert sorted(per_queue) == ["mail", "reports"]
    assert all(len(s.points) == 60 for s in per_queue.values())
    assert sum(p.processed for p in per_queue["mail"].points) == 120


def test_class_metrics_percentiles_sorting_and_trend(backend: Backend) -> None:
    now = utcnow()
    backend.record_history(a_day(now))
    ops = Ops(backend, clock=lambda: now)
    metrics = ops.insight.class_metrics("1h")
    assert [m.job_class for m in metrics] == ["Mail", "Report"]  # -runs
    mail, report = metrics
    assert (mail.runs, mail.processed, mail.failed) == (126, 120, 6)
    assert mail.failure_rate == pytest.approx(6 / 126)
    assert mail.p50 == pytest.approx(0.1, rel=0.05) and mail.p99 == pytest.approx(0.1, rel=0.05)
    assert mail.mean == pytest.approx(0.1)
    assert report.p95 == pytest.approx(2.0, rel=0.05)
    assert report.queues == ("reports",)
    # the hour before had as many runs: no change
    assert mail.runs_change == pytest.approx(1.0)
    assert mail.failure_rate_change == pytest.approx(0.0)
    assert [m.job_class for m in ops.insight.class_metrics("1h", sort="-p95")] == ["Report", "Mail"]
    assert [m.job_class for m in ops.insight.class_metrics("1h", sort="class")] == ["Mail", "Report"]
    assert [m.job_class for m in ops.insight.class_metrics("1h", sort="-failure_rate")][0] in ("Mail", "Report")
    assert [m.job_class for m in ops.insight.class_metrics("90m", queue="reports")] == ["Report"]
    # a day back there was nothing before: no trend
    day = {m.job_class: m for m in ops.insight.class_metrics("24h")}
    assert day["Mail"].runs == 2880 + 144 and day["Mail"].runs_change is None
    assert day["Mail"].to_dict()["failure_rate"] == pytest.approx(144 / 3024)


def test_a_failure_burst_shows_as_a_rising_failure_rate(backend: Backend) -> None:
    now = utcnow()
    minute = now.replace(second=0, microsecond=0)
    backend.record_history(
        [HistorySample(minute - timedelta(minutes=90), "q", "Flaky", processed=10)]
        + [HistorySample(minute - timedelta(minutes=5), "q", "Flaky", processed=5, failed=5)]
    )
    [flaky] = Ops(backend, clock=lambda: now).insight.class_metrics("1h")
    assert flaky.failure_rate_change == pytest.approx(0.5)
    assert flaky.runs_change == pytest.approx(1.0)
    assert flaky.p50 is None and flaky.mean is None  # counts without runtimes


@pytest.mark.parametrize(
    "call",
    [
        lambda ops: ops.insight.history("2h"),
        lambda ops: ops.insight.by_queue("1y"),
        lambda ops: ops.insight.class_metrics("1h", sort="-speed"),
        lambda ops: ops.insight.class_metrics("soon"),
        lambda ops: ops.insight.class_metrics("10s"),
    ],
)
def test_unknown_ranges_sorts_and_windows_are_usage_errors(sqlite_url: str, call: object) -> None:
    b = open_backend(sqlite_url, BackendOptions())
    b.init()
    try:
        with pytest.raises(UsageError):
            call(Ops(b))  # type: ignore[operator]
    finally:
        b.close()
