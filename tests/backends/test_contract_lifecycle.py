"""Run now and kill (issue #16), the backend contract on SQLite, PostgreSQL and Redis, plus what
Resque's own structures hold afterwards on Redis (docs/compatibility.md §1.6, §2.2)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis

from qadmin.backends import Backend, BackendOptions, open_backend
from qadmin.filters import JobFilter
from qadmin.job import Job, JobState, NewJob, utcnow
from qadmin.ops import Ops

NOOP = "qadmin.examples.noop"
ALWAYS = lambda job: True  # noqa: E731 - a claim that takes whatever comes first
HOUR = 3600.0
ERROR = "ValueError: boom\n/srv/app/jobs/x.py:10:in `perform'"
RUBY_DATE = re.compile(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d UTC")


def scheduled(b: Backend, *args: object, queue: str = "q") -> Job:
    return b.enqueue(NewJob(NOOP, list(args), queue=queue, run_at=utcnow() + timedelta(hours=1)))


def waiting_retry(b: Backend, *args: object, queue: str = "q", error: str = ERROR) -> Job:
    """A job that ran once, failed, and waits out its backoff for an hour."""
    job = b.enqueue(NewJob(NOOP, list(args), queue=queue))
    now = utcnow()
    claimed = b.claim([queue], "w1", now, HOUR, lambda j: j.id == job.id)
    assert claimed is not None
    b.fail(claimed, "w1", now, error, now + timedelta(hours=1))
    got = b.get(job.id, now)
    assert got.state is JobState.SCHEDULED and got.attempts == 1
    return got


def strs(ids: object) -> list[str]:
    return sorted(str(i) for i in ids)  # type: ignore[attr-defined]


# --- run now ----------------------------------------------------------------------------------
def test_a_scheduled_job_run_now_is_claimed_at_once(backend: Backend) -> None:
    job = scheduled(backend, 1)
    now = utcnow()
    assert backend.claim(["q"], "w1", now, HOUR, ALWAYS) is None
    assert strs(backend.run_now([job.id], now)) == [str(job.id)]
    got = backend.get(job.id, utcnow())
    assert got.state is JobState.PENDING and got.attempts == 0
    claimed = backend.claim(["q"], "w1", utcnow(), HOUR, ALWAYS)
    assert claimed is not None and claimed.id == job.id


def test_a_retry_waiting_for_its_backoff_is_run_now_with_its_attempts_and_error(backend: Backend) -> None:
    job = waiting_retry(backend, 2)
    assert strs(backend.run_now([job.id], utcnow())) == [str(job.id)]
    got = backend.get(job.id, utcnow())
    assert got.state is JobState.PENDING and got.attempts == 1 and got.last_error == ERROR
    claimed = backend.claim(["q"], "w2", utcnow(), HOUR, ALWAYS)
    assert claimed is not None and claimed.id == job.id and claimed.attempts == 1


def test_run_now_changes_only_scheduled_jobs(backend: Backend) -> None:
    pending = backend.enqueue(NewJob(NOOP, [1], queue="p"))
    locked_job = backend.enqueue(NewJob(NOOP, [2], queue="l"))
    locked = backend.claim(["l"], "w1", utcnow(), HOUR, ALWAYS)
    assert locked is not None and locked.id == locked_job.id
    failed_job = backend.enqueue(NewJob(NOOP, [3], queue="f"))
    failing = backend.claim(["f"], "w1", utcnow(), HOUR, ALWAYS)
    assert failing is not None
    backend.fail(failing, "w1", utcnow(), ERROR, None)
    later = scheduled(backend, 4)
    now = utcnow()
    changed = backend.run_now([pending.id, locked.id, failed_job.id, later.id], now)
    assert strs(changed) == [str(later.id)]
    assert backend.get(pending.id, now).state is JobState.PENDING
    assert backend.get(locked.id, now).state is JobState.LOCKED
    assert backend.get(failed_job.id, now).state is JobState.FAILED
    # once pending, a second run now changes nothing
    assert backend.run_now([later.id], utcnow()) == []


# --- kill -------------------------------------------------------------------------------------
def test_kill_fails_a_waiting_retry_for_good_with_its_attempts_and_error(backend: Backend) -> None:
    job = waiting_retry(backend, 5)
    now = utcnow()
    assert strs(backend.kill([job.id], now)) == [str(job.id)]
    got = backend.get(job.id, utcnow())
    assert got.state is JobState.FAILED and got.failed_at is not None
    assert got.attempts == 1 and got.last_error == ERROR
    # never run again, not even once its backoff is long over
    assert backend.claim(["q"], "w2", utcnow() + timedelta(days=2), HOUR, ALWAYS) is None
    assert backend.count(JobFilter(states=frozenset({JobState.FAILED})), utcnow()) == 1
    # and a retry brings it back like any failure
    assert strs(backend.retry([got.id], utcnow())) == [str(got.id)]


def test_kill_refuses_a_scheduled_job_that_never_ran_and_other_states(backend: Backend) -> None:
    never_ran = scheduled(backend, 6)
    pending = backend.enqueue(NewJob(NOOP, [7], queue="p"))
    waiting = waiting_retry(backend, 8)
    now = utcnow()
    assert strs(backend.kill([never_ran.id, pending.id, waiting.id], now)) == [str(waiting.id)]
    assert backend.get(never_ran.id, now).state is JobState.SCHEDULED
    assert backend.get(pending.id, now).state is JobState.PENDING
    assert backend.kill([waiting.id], utcnow()) == []


# --- through the operations layer: preview, skips, audit ------------------------------------
def test_ops_skip_and_report_jobs_in_the_wrong_state(backend: Backend) -> None:
    ops = Ops(backend, face="cli", actor="tester")
    never_ran = scheduled(backend, 9)
    waiting = waiting_retry(backend, 10)
    pending = backend.enqueue(NewJob(NOOP, [11], queue="p"))
    result = ops.kill(JobFilter(ids=(never_ran.id, waiting.id, pending.id)))
    assert result.changed == 1 and result.changed_ids == [waiting.id]
    reasons = {str(i): why for i, why in result.skipped}
    assert "never ran" in reasons[str(never_ran.id)]
    assert "is pending" in reasons[str(pending.id)]
    ran = ops.run_now(JobFilter(ids=(never_ran.id, pending.id)))
    assert ran.changed == 1 and [str(i) for i, _ in ran.skipped] == [str(pending.id)]
    [entry] = ops.audit(limit=1)
    assert entry.verb == "run_now" and entry.changed == 1 and entry.skipped == 1


def test_a_job_that_changed_state_after_the_preview_is_skipped(backend: Backend) -> None:
    ops = Ops(backend, face="cli", actor="tester")
    first, second = waiting_retry(backend, 12), waiting_retry(backend, 13)
    kill = ops.preview("kill", JobFilter(ids=(first.id, second.id)))
    run = ops.preview("run_now", JobFilter(ids=(first.id, second.id)))
    assert kill.count == 2 and run.count == 2
    backend.run_now([first.id], utcnow())  # someone else ran it now meanwhile
    result = ops.apply(kill)
    assert result.changed_ids == [second.id]
    assert [(str(i), why) for i, why in result.skipped] == [(str(first.id), "changed state since the preview")]
    result = ops.apply(run)  # one is pending, the other failed since
    assert result.changed == 0 and len(result.skipped) == 2


def test_a_dry_run_previews_without_changing(backend: Backend) -> None:
    ops = Ops(backend, face="cli", actor="tester")
    job = waiting_retry(backend, 14)
    other = scheduled(backend, 15)
    result = ops.kill(JobFilter(queues=("q",)), dry_run=True)
    assert result.dry_run and result.matched == 1 and [j.id for j in result.sample] == [job.id]
    assert ops.run_now(JobFilter(queues=("q",)), dry_run=True).matched == 2
    assert backend.get(job.id, utcnow()).state is JobState.SCHEDULED
    assert backend.get(other.id, utcnow()).state is JobState.SCHEDULED


# --- Redis: Resque's own structures -----------------------------------------------------------
@pytest.fixture
def r(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


@pytest.fixture
def redis_b(redis_url: str) -> Iterator[Backend]:
    b = open_backend(redis_url, BackendOptions())
    try:
        yield b
    finally:
        b.close()


def test_redis_run_now_moves_the_item_as_resque_scheduler_does(redis_b: Backend, r: redis.Redis) -> None:
    ts = int(utcnow().timestamp()) + 3600
    item = b'{"class":"Archive","args":[35,"tar"],"queue":"file_serve"}'
    r.rpush(f"resque:delayed:{ts}", item)
    r.sadd(b"resque:timestamps:" + item, f"delayed:{ts}")
    r.zadd("resque:delayed_queue_schedule", {str(ts): ts})
    [job] = redis_b.find(JobFilter(), utcnow(), limit=5).jobs
    assert job.state is JobState.SCHEDULED
    assert strs(redis_b.run_now([job.id], utcnow())) == [str(job.id)]
    # what Resque's worker pops: Resque's own payload, at the queue's tail
    assert r.lrange("resque:queue:file_serve", 0, -1) == [b'{"class":"Archive","args":[35,"tar"]}']
    assert r.sismember("resque:queues", "file_serve")
    assert not r.exists(f"resque:delayed:{ts}", b"resque:timestamps:" + item)
    assert r.zcard("resque:delayed_queue_schedule") == 0
    assert redis_b.get(job.id, utcnow()).state is JobState.PENDING


def test_redis_kill_writes_the_failure_entry_a_workers_last_failure_writes(redis_b: Backend, r: redis.Redis) -> None:
    killed = waiting_retry(redis_b, 36, "bad", queue="file_serve")
    redis_b.kill([killed.id], utcnow())
    # the same job failing for good in a worker, on its first run
    job = redis_b.enqueue(NewJob(NOOP, [37, "bad"], queue="file_serve"))
    claimed = redis_b.claim(["file_serve"], "w1", utcnow(), HOUR, ALWAYS)
    assert claimed is not None and claimed.id == job.id
    redis_b.fail(claimed, "w1", utcnow(), ERROR, None)
    kill_raw, fail_raw = r.lrange("resque:failed", 0, -1)
    kill_entry, fail_entry = json.loads(kill_raw), json.loads(fail_raw)
    assert list(kill_entry) == ["failed_at", "payload", "exception", "error", "backtrace", "worker", "queue"]
    assert RUBY_DATE.fullmatch(kill_entry["failed_at"])
    assert kill_entry["worker"].endswith(":file_serve")
    # byte for byte what the worker wrote, but for the job's own argument, the time and the worker
    same = kill_raw
    for member in ("failed_at", "worker"):
        same = same.replace(json.dumps(kill_entry[member]).encode(), json.dumps(fail_entry[member]).encode())
    # only in the arguments: a time or worker name holding "36" is no difference between the two
    same = same.replace(b'"args":[36,', b'"args":[37,')
    assert same == fail_raw
    assert not r.zcard("resque:delayed_queue_schedule")
    got = redis_b.get(killed.id, utcnow())
    assert got.state is JobState.FAILED and got.attempts == 1 and got.last_error == ERROR


def test_redis_kill_leaves_a_never_run_resque_item_alone(redis_b: Backend, r: redis.Redis) -> None:
    ts = int(datetime.now(UTC).timestamp()) + 3600
    item = b'{"class":"Archive","args":[1],"queue":"file_serve"}'
    r.rpush(f"resque:delayed:{ts}", item)
    r.zadd("resque:delayed_queue_schedule", {str(ts): ts})
    [job] = redis_b.find(JobFilter(), utcnow(), limit=5).jobs
    assert redis_b.kill([job.id], utcnow()) == []
    assert r.lrange(f"resque:delayed:{ts}", 0, -1) == [item] and not r.exists("resque:failed")
