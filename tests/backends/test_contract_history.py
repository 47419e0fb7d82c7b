"""History (`qadmin.insight`), on every backend: samples added to their minute and hour buckets at
once, read back per queue and class, narrowed, summed by atomic increments across processes,
and dropped past their retention."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta

import pytest

from qadmin.backends import Backend, BackendOptions, open_backend
from qadmin.insight import HOUR, MINUTE, HistorySample, percentile, runtime_bucket
from qadmin.job import utcnow


def an_hour_ago() -> datetime:
    """The start of the hour before this one: two minutes in it are within a day's retention."""
    return (utcnow() - timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)


def sample(minute: datetime, queue: str = "default", cls: str = "Mail", **counts: object) -> HistorySample:
    runtimes = counts.pop("runs", ())
    latency = counts.pop("latency", None)
    s = HistorySample(minute, queue, cls, **counts)  # type: ignore[arg-type]
    for r in runtimes:  # type: ignore[attr-defined]
        s.add_run(r)
    if latency is not None:
        s.add_latency(latency)  # type: ignore[arg-type]
    return s


def test_a_sample_goes_to_its_minute_and_its_hour(backend: Backend) -> None:
    hour = an_hour_ago()
    a, b = hour + timedelta(minutes=5), hour + timedelta(minutes=17)
    backend.record_history(
        [
            sample(a, processed=2, failed=1, runs=[0.05, 0.05, 0.2], latency=3.0),
            sample(b, processed=1, retried=1, runs=[0.1, 0.1], latency=1.5),
        ]
    )
    minutes = backend.history(MINUTE, hour, hour + timedelta(hours=1))
    assert [(r.at, r.processed, r.failed, r.retried) for r in minutes] == [(a, 2, 1, 0), (b, 1, 0, 1)]
    assert minutes[0].runtimes == {runtime_bucket(0.05): 2, runtime_bucket(0.2): 1}
    assert minutes[0].runtime_total == pytest.approx(0.3)
    assert minutes[0].latency == 3.0
    [rolled] = backend.history(HOUR, hour, hour + timedelta(hours=1))
    assert (rolled.at, rolled.queue, rolled.job_class) == (hour, "default", "Mail")
    assert (rolled.processed, rolled.failed, rolled.retried) == (3, 1, 1)
    assert rolled.runtime_total == pytest.approx(0.5)
    assert sum(rolled.runtimes.values()) == 5
    assert percentile(rolled.runtimes, 0.5) == pytest.approx(0.1, rel=0.05)
    assert rolled.latency == 3.0  # the longest, not a sum


def test_recording_again_adds_and_keeps_the_longest_latency(backend: Backend) -> None:
    minute = an_hour_ago() + timedelta(minutes=1)
    backend.record_history([sample(minute, processed=1, runs=[0.01], latency=2.0)])
    backend.record_history([sample(minute, processed=2, failed=1, runs=[0.01, 0.3], latency=1.0)])
    backend.record_history([sample(minute, latency=5.0)])  # a latency sample alone
    [row] = backend.history(MINUTE, minute, minute + timedelta(minutes=1))
    assert (row.processed, row.failed, row.latency) == (3, 1, 5.0)
    assert row.runtimes == {runtime_bucket(0.01): 2, runtime_bucket(0.3): 1}


def test_reads_narrow_to_a_queue_and_a_class(backend: Backend) -> None:
    minute = an_hour_ago() + timedelta(minutes=3)
    backend.record_history(
        [
            sample(minute, "mail", "Send", processed=1),
            sample(minute, "mail", "Bounce", processed=2),
            sample(minute, "odd queue:1", "Send", processed=4),
        ]
    )
    end = minute + timedelta(minutes=1)
    everything = backend.history(MINUTE, minute, end)
    assert sorted((r.queue, r.job_class, r.processed) for r in everything) == [
        ("mail", "Bounce", 2),
        ("mail", "Send", 1),
        ("odd queue:1", "Send", 4),
    ]
    assert {r.job_class for r in backend.history(MINUTE, minute, end, queue="mail")} == {"Send", "Bounce"}
    assert [r.queue for r in backend.history(MINUTE, minute, end, job_class="Send", queue="odd queue:1")] == [
        "odd queue:1"
    ]
    assert backend.history(MINUTE, minute, end, queue="nowhere") == []
    # [since, until): the bucket starting at `until` is out
    assert backend.history(MINUTE, minute - timedelta(minutes=5), minute) == []


def test_buckets_past_their_retention_are_dropped(any_url: str) -> None:
    short = open_backend(any_url, BackendOptions(history_minutes=300.0, history_hours=30 * 86400.0))
    short.init()
    try:
        old_minute = utcnow() - timedelta(minutes=30)
        short.record_history([sample(old_minute, processed=1)])
        start = old_minute.replace(second=0, microsecond=0)
        # past the minutes' retention when written: only its hour keeps it
        assert short.history(MINUTE, start, start + timedelta(minutes=1)) == []
        hour = start.replace(minute=0)
        assert [r.processed for r in short.history(HOUR, hour, hour + timedelta(hours=1))] == [1]
    finally:
        short.close()


def test_prune_drops_what_a_shorter_retention_no_longer_keeps(sql_url: str) -> None:
    """SQL keeps buckets until a prune (Redis lets them expire: the next test)."""
    long = open_backend(sql_url, BackendOptions())
    long.init()
    minute = (utcnow() - timedelta(hours=3)).replace(second=0, microsecond=0)
    long.record_history([sample(minute, processed=1)])
    long.close()
    short = open_backend(sql_url, BackendOptions(history_minutes=3600.0, history_hours=3600.0))
    try:
        now = utcnow()
        short.prune(now, failed_before=None, finished_before=None, workers_before=None)
        assert short.history(MINUTE, minute, minute + timedelta(minutes=1)) == []
        assert short.history(HOUR, minute - timedelta(hours=1), minute + timedelta(hours=1)) == []
    finally:
        short.close()


def test_redis_buckets_expire_by_their_retention(redis_url: str) -> None:
    import redis

    b = open_backend(redis_url, BackendOptions(history_minutes=3600.0, history_hours=7200.0))
    try:
        minute = (utcnow() - timedelta(minutes=10)).replace(second=0, microsecond=0)
        b.record_history([sample(minute, processed=1)])
        client = redis.Redis.from_url(redis_url)
        keys = sorted(k.decode() for k in client.keys("*qadmin:history:*"))
        assert [k.split(":")[-2] for k in keys] == ["hour", "minute"]  # qadmin's namespace only
        ttls = {k.split(":")[-2]: client.ttl(k) for k in keys}
        # a bucket lives until its end is its retention old
        assert 3600 - 600 <= ttls["minute"] <= 3600 - 600 + 62
        assert 0 < ttls["hour"] <= 7200 + 3600 + 1
        assert not any(k.startswith("resque:queue") for k in keys)
    finally:
        b.close()


_RECORDER = """
import sys
from datetime import datetime
from qadmin.backends import BackendOptions, open_backend
from qadmin.insight import HistorySample
url, minute, rounds = sys.argv[1], datetime.fromisoformat(sys.argv[2]), int(sys.argv[3])
b = open_backend(url, BackendOptions())
for i in range(rounds):
    s = HistorySample(minute, "default", "Race", processed=1, failed=i % 2)
    s.add_run(0.01 * (1 + i % 3))
    b.record_history([s, HistorySample(minute, "other", "Race", retried=1)])
b.close()
"""


def test_concurrent_recorders_lose_no_count(backend: Backend, any_url: str) -> None:
    minute = an_hour_ago() + timedelta(minutes=42)
    processes, rounds = 4, 25
    env = {**os.environ}
    procs = [
        subprocess.Popen([sys.executable, "-c", _RECORDER, any_url, minute.isoformat(), str(rounds)], env=env)
        for _ in range(processes)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0] * processes
    for resolution, start in ((MINUTE, minute), (HOUR, minute.replace(minute=0))):
        rows = {r.queue: r for r in backend.history(resolution, start, start + timedelta(hours=1))}
        assert rows["default"].processed == processes * rounds
        assert rows["default"].failed == processes * (rounds // 2)
        assert sum(rows["default"].runtimes.values()) == processes * rounds
        assert rows["other"].retried == processes * rounds
    json.dumps([r.at.isoformat() for r in rows.values()])  # times are plain, aware datetimes


def test_oldest_ready_names_since_when_each_queue_waits(backend: Backend) -> None:
    from qadmin.job import NewJob

    assert backend.oldest_ready(["*"], utcnow()) == {}
    before = utcnow()
    backend.enqueue(NewJob("qadmin.examples.noop", [], queue="late"))
    backend.enqueue(NewJob("qadmin.examples.noop", [1], queue="late"))
    backend.enqueue(NewJob("qadmin.examples.noop", [], queue="soon", run_at=before + timedelta(hours=1)))
    first = backend.oldest_ready(["late", "soon", "empty"], utcnow())
    assert list(first) == ["late"]  # a job not yet due is not waiting
    assert before - timedelta(seconds=1) <= first["late"] <= utcnow()
    later = utcnow() + timedelta(minutes=2)
    again = backend.oldest_ready(["*"], later)
    # the same head, seen again, has waited since it was first seen (or enqueued)
    assert again["late"] <= first["late"] + timedelta(seconds=1)
    assert (later - again["late"]).total_seconds() >= 119
