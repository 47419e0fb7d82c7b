"""Byte-identical jobs on Redis (Resque writes equal jobs as equal bytes) are each a job of their
own: one id each, on every listing, and a verb on one id changes exactly that entry."""

from __future__ import annotations

from datetime import timedelta

import pytest

from qadmin.backends.redis import RedisBackend
from qadmin.filters import JobFilter
from qadmin.job import JobState, utcnow
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
    failure = (b'{"failed_at":"2026/11/22 08:41:11 UTC","payload":' + SAME + b',"exception":"E","error":"x",'
               b'"backtrace":[],"worker":"w:1:q","queue":"q"}')
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
        twins = [j for j in redis_backend.find(JobFilter(states=frozenset({state}), class_name="Refresh"), now,
                                               limit=10).jobs]
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
    jobs = redis_backend.claim_many(["q"], "w1", now, 3600.0, lambda j: True, 2)
    assert len(jobs) == 2 and len({str(j.id) for j in jobs}) == 2
    held = redis_backend.find(JobFilter(states=frozenset({JobState.LOCKED})), now, limit=10).jobs
    assert len({str(j.id) for j in held}) == 2
    for job in jobs:
        redis_backend.complete(job, "w1", now, 0.01)
    redis_backend.flush()
    assert r.zcard("resque:qadmin:locked") == 0 and r.llen("resque:queue:q") == 0
    finished = redis_backend.find(JobFilter(states=frozenset({JobState.FINISHED})), now, limit=10).jobs
    assert len({str(j.id) for j in finished}) == 2
