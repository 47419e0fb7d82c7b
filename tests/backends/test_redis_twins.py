"""Byte-identical jobs on Redis (Resque writes equal jobs as equal bytes) are each a job of their
own: one id each, on every listing, and a verb on one id changes exactly that entry."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from qadmin.backends.redis import RedisBackend
from qadmin.filters import JobFilter
from qadmin.job import JobState, NewJob, utcnow
from qadmin.ops import Ops

pytestmark = pytest.mark.redis

SAME = b'{"class":"Refresh","args":[]}'
ITEM = b'{"class":"Refresh","args":[],"queue":"q"}'
ALL = JobFilter(states=frozenset(JobState))


def plant(r, now) -> int:  # type: ignore[no-untyped-def]
    """Three equal pending jobs, two equal ones scheduled at one second and one at another, and two
    failures of the job written at the same second by the same worker (equal entries too)."""
    r.rpush("resque:queue:q", SAME, b'{"class":"Other","args":[1]}', SAME, SAME)
    r.sadd("resque:queues", "q")
    ts = int((now + timedelta(hours=1)).timestamp())
    for stamp, count in ((ts, 2), (ts + 60, 1)):
        r.rpush(f"resque:delayed:{stamp}", *[ITEM] * count)
        r.sadd(b"resque:timestamps:" + ITEM, f"delayed:{stamp}")
        r.zadd("resque:delayed_queue_schedule", {str(stamp): stamp})
    failure = (
        b'{"failed_at":"2026/11/22 08:41:11 UTC","payload":' + SAME + b',"exception":"E","error":"x",'
        b'"backtrace":[],"worker":"w:1:q","queue":"q"}'
    )
    r.rpush("resque:failed", failure, failure)
    return ts


def test_every_stored_twin_has_an_id_of_its_own_and_each_reads_back(redis_backend: RedisBackend, r) -> None:  # type: ignore[no-untyped-def]
    now = utcnow()
    plant(r, now)
    jobs = redis_backend.find(ALL, now, limit=100).jobs
    refresh = [j for j in jobs if j.class_name == "Refresh"]
    assert len(refresh) == 3 + 3 + 2
    assert len({str(j.id) for j in refresh}) == 8
    for job in refresh:
        got = redis_backend.get(job.id, now)
        assert (str(got.id), got.state, got.run_at) == (str(job.id), job.state, job.run_at)
    # pages of two see the same ids (a page further on counts the twins before it)
    ids, cursor = [], None
    while True:
        page = redis_backend.find(ALL, now, limit=2, cursor=cursor)
        ids += [str(j.id) for j in page.jobs]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert ids == [str(j.id) for j in jobs]
    backwards = redis_backend.find(ALL, now, limit=100, sort="-id").jobs
    assert sorted(str(j.id) for j in backwards) == sorted(ids)


def test_a_verb_on_one_twin_changes_that_one_only(redis_backend: RedisBackend, r) -> None:  # type: ignore[no-untyped-def]
    now = utcnow()
    ts = plant(r, now)
    ops = Ops(redis_backend, clock=lambda: now)
    for state in (JobState.PENDING, JobState.SCHEDULED, JobState.FAILED):
        twins = [
            j
            for j in redis_backend.find(JobFilter(states=frozenset({state}), class_name="Refresh"), now, limit=10).jobs
        ]
        second = twins[1]
        preview = ops.preview("delete", JobFilter(ids=(second.id,)))
        assert preview.count == 1
        result = ops.apply(preview)
        assert (result.matched, result.changed) == (1, 1)
        left = redis_backend.find(JobFilter(states=frozenset({state}), class_name="Refresh"), now, limit=10).jobs
        assert len(left) == len(twins) - 1
    # exactly one entry went from each place, the rest untouched
    assert r.lrange("resque:queue:q", 0, -1).count(SAME) == 2
    assert r.llen(f"resque:delayed:{ts}") + r.llen(f"resque:delayed:{ts + 60}") == 2
    assert r.llen("resque:failed") == 1


def test_a_worker_holding_twins_completes_each(redis_backend: RedisBackend, r) -> None:  # type: ignore[no-untyped-def]
    r.rpush("resque:queue:q", SAME, SAME)
    r.sadd("resque:queues", "q")
    now = utcnow()
    w1 = redis_backend.session("w1")
    jobs = w1.claim(["q"], now, 3600.0, lambda j: True, limit=2)
    assert len(jobs) == 2 and len({str(j.id) for j in jobs}) == 2
    held = redis_backend.find(JobFilter(states=frozenset({JobState.LOCKED})), now, limit=10).jobs
    assert len({str(j.id) for j in held}) == 2
    for job in jobs:
        w1.complete(job, now, 0.01)
    w1.flush()
    assert r.zcard("resque:qadmin:locked") == 0 and r.llen("resque:queue:q") == 0
    finished = redis_backend.find(JobFilter(states=frozenset({JobState.FINISHED})), now, limit=10).jobs
    assert len({str(j.id) for j in finished}) == 2


NOOP = NewJob("qadmin.examples.noop", [1], queue="q")
LIVE = JobFilter(states=frozenset({JobState.PENDING, JobState.SCHEDULED, JobState.LOCKED}))


def test_enqueue_returns_the_id_of_the_entry_it_pushed(redis_backend: RedisBackend, r) -> None:  # type: ignore[no-untyped-def]
    """An exact twin enqueued gets the id listings give the entry just pushed, not its first
    twin's: pending or scheduled, by `enqueue` or `enqueue_many`."""
    b = redis_backend
    later = utcnow() + timedelta(hours=1)
    first, second = b.enqueue(NOOP), b.enqueue(NOOP)
    assert str(second.id) != str(first.id)
    many = b.enqueue_many([NOOP, replace(NOOP, args=[2]), NOOP])
    soon, again = b.enqueue(replace(NOOP, run_at=later)), b.enqueue(replace(NOOP, run_at=later))
    more = b.enqueue_many([replace(NOOP, run_at=later), replace(NOOP, run_at=later + timedelta(minutes=1))])
    returned = [str(i) for i in (first.id, second.id, *many, soon.id, again.id, *more)]
    assert len(set(returned)) == len(returned)
    now = utcnow()
    assert sorted(returned) == sorted(str(j.id) for j in b.find(LIVE, now, limit=100).jobs)
    for job_id in returned:
        assert str(b.get(job_id, now).id) == job_id
    # a caller deleting "its" second job leaves the first one
    ops = Ops(b, clock=lambda: now)
    result = ops.delete(JobFilter(ids=(second.id,)))
    assert (result.matched, result.changed) == (1, 1)
    assert r.lrange("resque:queue:q", 0, -1).count(b'{"class":"qadmin.examples.noop","args":[1]}') == 3
    assert str(b.get(first.id, now).id) == str(first.id)


def test_enqueue_counts_held_twins_first_as_listings_do(redis_backend: RedisBackend, r) -> None:  # type: ignore[no-untyped-def]
    """Held twins are numbered before pending ones (held by a qadmin worker or by Ruby's), so an
    id names a different entry as twins come and go: the one returned is right at that moment."""
    b = redis_backend

    def pending_ids() -> list[str]:
        jobs = b.find(LIVE, utcnow(), limit=100).jobs
        assert len({str(j.id) for j in jobs}) == len(jobs)
        return [str(j.id) for j in jobs if j.state is JobState.PENDING]

    b.enqueue(NOOP)
    assert b.claim(["q"], "w1", utcnow(), 3600.0, lambda j: True) is not None
    pending = b.enqueue(NOOP)
    assert pending_ids() == [str(pending.id)] and str(pending.id).endswith(".2")
    payload = b'{"class":"qadmin.examples.noop","args":[1]}'
    r.sadd("resque:workers", "ruby-host:7:q")
    r.set("resque:worker:ruby-host:7:q", b'{"queue":"q","run_at":"2026-11-22T08:41:11Z","payload":' + payload + b"}")
    behind = b.enqueue_many([NOOP, NOOP])
    assert pending_ids()[1:] == [str(i) for i in behind] and str(behind[-1]).endswith(".5")


def test_retrying_one_failed_twin_answers_the_retried_job(redis_backend: RedisBackend, r) -> None:  # type: ignore[no-untyped-def]
    now = utcnow()
    plant(r, now)
    ops = Ops(redis_backend, clock=lambda: now)
    failed = JobFilter(states=frozenset({JobState.FAILED}), class_name="Refresh")
    twins = redis_backend.find(failed, now, limit=10).jobs
    assert len(twins) == 2
    pending_before = ops.count(JobFilter(states=frozenset({JobState.PENDING}), class_name="Refresh"))
    retried = ops.retry_job(twins[1].id)  # the failure entry its id named is gone: no "no job" error
    assert retried.state is JobState.PENDING and retried.class_name == "Refresh"
    assert len(redis_backend.find(failed, now, limit=10).jobs) == 1
    assert ops.count(JobFilter(states=frozenset({JobState.PENDING}), class_name="Refresh")) == pending_before + 1
