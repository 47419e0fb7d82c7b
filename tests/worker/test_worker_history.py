"""A real `qadmin worker --burst` records history, on every backend: the test's own jobs sleep
for known times and measure their runtimes themselves, and the class metrics read back match
those measurements within the histogram's resolution (a bucket is 2^(1/8) wide, about 9 %; a
percentile is its middle). Failures and retries are counted apart; `[history] record = false`
records nothing. No wall-clock assertion: only what the jobs measured is compared."""

from __future__ import annotations

import math
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from qadmin.backends import BackendOptions, open_backend
from qadmin.insight import HistorySample
from qadmin.job import NewJob, utcnow
from qadmin.ops import Ops
from tests.worker.test_worker_processes import client, procs

__all__ = ["procs"]

JOBS = """
import time

def timed(out, seconds):
    started = time.perf_counter()
    time.sleep(seconds)
    with open(out, "a") as fh:
        fh.write(f"{time.perf_counter() - started!r}\\n")

def broken():
    raise RuntimeError("no")
"""
SLEEPS = [0.05] * 10 + [0.1] * 6 + [0.2] * 4
#: one histogram bucket: a percentile read from it is within half of it, and the worker's own
#: runtime adds a little to what the job measured of itself
TOLERANCE = 2 ** (1 / 8) - 1


def exact(values: list[float], q: float) -> float:
    """The q-quantile as `insight.percentile` defines it: the smallest value with q of them at or below."""
    ordered = sorted(values)
    return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]


def test_class_metrics_match_the_runtimes_jobs_measured(any_url: str, tmp_path: Path, procs) -> None:  # noqa: F811
    (tmp_path / "histjobs.py").write_text(textwrap.dedent(JOBS))
    out = tmp_path / "runtimes.txt"
    with client(any_url) as c:
        c.enqueue_many([NewJob("histjobs.timed", [str(out), s], queue="timing") for s in SLEEPS])
        c.enqueue_many([NewJob("histjobs.broken", [], queue="timing", max_attempts=1) for _ in range(2)])
        c.enqueue_many([NewJob("histjobs.broken", [], queue="other", max_attempts=3)])
    p = procs(any_url)
    done = p.run("worker", "--burst", "--sleep", "0.1", "--import", "histjobs", timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    measured = [float(line) for line in out.read_text().split()]
    assert len(measured) == len(SLEEPS)

    backend = open_backend(any_url, BackendOptions())
    try:
        metrics = {m.job_class: m for m in Ops(backend).insight.class_metrics("1h")}
        timed, broken = metrics["histjobs.timed"], metrics["histjobs.broken"]
        assert (timed.runs, timed.processed, timed.failed, timed.retried) == (len(SLEEPS), len(SLEEPS), 0, 0)
        for q, read in ((0.5, timed.p50), (0.95, timed.p95), (0.99, timed.p99)):
            assert read == pytest.approx(exact(measured, q), rel=TOLERANCE), q
        assert timed.mean is not None and timed.mean >= sum(measured) / len(measured)
        assert (broken.runs, broken.failed, broken.retried) == (3, 2, 1)
        assert broken.queues == ("other", "timing")
        series = Ops(backend).insight.history("1h", queue="timing")
        assert sum(pt.processed for pt in series.points) == len(SLEEPS)
        if not any_url.startswith("redis"):  # Resque's plain payloads carry no enqueue time
            assert any(pt.latency is not None for pt in series.points)  # the jobs waited to be claimed
    finally:
        backend.close()


def test_record_false_records_nothing(sqlite_url: str, tmp_path: Path, procs) -> None:  # noqa: F811
    (tmp_path / "histjobs.py").write_text(textwrap.dedent(JOBS))
    (tmp_path / "qadmin.toml").write_text("[history]\nrecord = false\n")
    with client(sqlite_url) as c:
        c.enqueue_many([NewJob("histjobs.timed", [str(tmp_path / "out.txt"), 0.01])])
    p = procs(sqlite_url)
    done = p.run("worker", "--burst", "--import", "histjobs")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "out.txt").exists()
    backend = open_backend(sqlite_url, BackendOptions())
    try:
        now = utcnow()
        assert backend.history("minute", now - timedelta(hours=1), now + timedelta(minutes=1)) == []
    finally:
        backend.close()


def test_a_flush_that_fails_keeps_its_counts(sqlite_url: str) -> None:
    """The backend down: the counts wait for the next flush; the worker never sees an error."""
    from qadmin.worker.history import HistoryRecorder

    backend = open_backend(sqlite_url, BackendOptions())
    backend.init()
    calls: list[int] = []
    real = backend.record_history

    def flaky(samples: list[HistorySample]) -> None:
        calls.append(len(samples))
        if len(calls) == 1:
            from qadmin.errors import BackendUnavailable

            raise BackendUnavailable("down")
        real(samples)

    backend.record_history = flaky  # type: ignore[method-assign]
    try:
        job = backend.enqueue(NewJob("qadmin.examples.noop", [], queue="q"))
        recorder = HistoryRecorder(backend, ["q"], 25, clock=utcnow)
        recorder.settled(job, 0.01, None, False, None)
        recorder.flush()  # fails, kept
        recorder.settled(job, 0.02, "boom", False, None)
        recorder.flush()
        now = utcnow()
        rows = backend.history("minute", now - timedelta(hours=1), now + timedelta(minutes=1))
        assert sum(r.processed for r in rows) == 1 and sum(r.retried for r in rows) == 1
        assert sum(sum(r.runtimes.values()) for r in rows) == 2
    finally:
        backend.close()


def test_the_recorder_counts_each_run_in_its_minute_queue_and_class() -> None:
    from datetime import UTC, datetime

    from qadmin.job import Job, JobState
    from qadmin.worker.history import HistoryRecorder

    written: list[HistorySample] = []

    class Keeper:
        def record_history(self, samples: list[HistorySample]) -> None:
            written.extend(samples)

        def oldest_ready(self, queues: object, now: object) -> dict[str, datetime]:
            return {}

    clock = [datetime(2026, 12, 7, 10, 0, 59, 500000, tzinfo=UTC)]
    recorder = HistoryRecorder(Keeper(), ["*"], 3, clock=lambda: clock[0])  # type: ignore[arg-type]
    enqueued = datetime(2026, 12, 7, 9, 59, 0, tzinfo=UTC)

    def job(queue: str, cls: str, attempts: int = 0) -> Job:
        return Job(id=1, queue=queue, class_name=cls, state=JobState.LOCKED, attempts=attempts, run_at=enqueued)

    recorder.settled(job("a", "A"), 0.2, None, False, None)  # started 10:00:59.3
    clock[0] += timedelta(seconds=1)  # 10:01:00.5: started 10:01:00.3, the next minute
    recorder.settled(job("a", "A"), 0.2, "boom", False, None)  # retried (attempt 1 of 3)
    recorder.settled(job("a", "B", attempts=2), 0.2, "boom", False, None)  # failed for good
    recorder.settled(job("b", "A"), 0.2, None, True, None)  # cancelled: its wait only
    recorder.flush()
    got = {(s.minute.minute, s.queue, s.job_class): s for s in written}
    assert sorted(got) == [(0, "a", "A"), (1, "a", "A"), (1, "a", "B"), (1, "b", "A")]
    assert (got[0, "a", "A"].processed, got[1, "a", "A"].retried, got[1, "a", "B"].failed) == (1, 1, 1)
    assert got[1, "b", "A"].runtimes == {} and got[1, "b", "A"].latency == pytest.approx(120.3)
    assert got[0, "a", "A"].latency == pytest.approx(119.3)
