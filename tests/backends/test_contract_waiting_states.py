"""Waiting and cancelled jobs listed, counted and acted on like the other states (issue #16), on
SQLite, PostgreSQL and Redis: a selection of any states (or none) lists and counts its waiting
jobs, pages through them without a job twice or one skipped, and cancel and delete take waiting
jobs (a cancelled one refuses its service's late report)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from qadmin.backends import Backend
from qadmin.errors import InvalidTransition, JobNotFound, UsageError
from qadmin.filters import JobFilter
from qadmin.job import Job, JobState, NewJob, utcnow
from qadmin.ops import Ops

NOOP = "qadmin.examples.noop"
HOUR = 3600.0


def states(*names: str) -> JobFilter:
    return JobFilter(states=frozenset(JobState(n) for n in names))


def park(backend: Backend, n: int, queue: str = "x") -> list[Job]:
    """`n` jobs enqueued on `queue`, claimed and parked waiting by one worker."""
    jobs = [backend.enqueue(NewJob(NOOP, [i], queue=queue)) for i in range(n)]
    session = backend.session("w1")
    claimed = session.claim([queue], utcnow(), HOUR, lambda j: True, limit=n)
    assert len(claimed) == n
    now = utcnow()
    for job in claimed:
        assert session.wait(job, now, now + timedelta(hours=1))
    session.close()
    return jobs


def ids(jobs: list[Job]) -> list[str]:
    return [str(j.id) for j in jobs]


def records(jobs: list[Job]) -> list[str]:
    """The ids of the jobs whose finished records these are (Redis names a record `ID@zNONCE`)."""
    return sorted(str(j.id).split("@z")[0] for j in jobs)


def test_mixed_and_unfiltered_selections_list_and_count_waiting_jobs(backend: Backend) -> None:
    waiting = park(backend, 2)
    pending = [backend.enqueue(NewJob(NOOP, [10 + i], queue="x")) for i in range(3)]
    ops = Ops(backend)
    for selection in (JobFilter(), states("pending", "waiting"), JobFilter(queues=("x",))):
        listed = ops.list_jobs(selection, limit=50).jobs
        assert sorted(ids(listed)) == sorted(ids(waiting + pending)), selection
        assert ops.count(selection) == 5
    assert ops.count(states("pending")) == 3 and ops.count(states("waiting")) == 2
    assert ops.count(states("failed", "waiting")) == 2
    assert ops.count(JobFilter(queues=("other",))) == 0
    assert ops.list_jobs(states("pending"), limit=50).jobs and all(
        j.state is JobState.PENDING for j in ops.list_jobs(states("pending"), limit=50).jobs
    )
    # stats agree with the counts
    assert ops.stats().queues["x"]["waiting"] == 2 and ops.stats().queues["x"]["pending"] == 3


@pytest.mark.parametrize("sort", ["id", "-id", "priority", "run_at", "-failed_at"])
def test_pages_through_live_then_waiting_jobs_each_once(backend: Backend, sort: str) -> None:
    waiting = park(backend, 5)
    pending = [backend.enqueue(NewJob(NOOP, [10 + i], queue="x")) for i in range(4)]
    ops = Ops(backend)
    for limit in (1, 2, 3, 4, 9, 10):
        seen: list[str] = []
        cursor = None
        for _ in range(20):
            page = ops.list_jobs(JobFilter(), limit=limit, cursor=cursor, sort=sort)
            assert len(page.jobs) <= limit
            seen += ids(page.jobs)
            cursor = page.next_cursor
            if cursor is None:
                break
        assert sorted(seen) == sorted(ids(waiting + pending)), (sort, limit)
        assert len(seen) == len(set(seen))
        # the waiting part comes after the others, in the listing's order
        assert seen[-5:] and {s for s in seen[-5:]} == set(ids(waiting))


def test_a_waiting_page_cursor_goes_on_after_the_last_job_shown(backend: Backend) -> None:
    waiting = park(backend, 4)
    ops = Ops(backend)
    first = ops.list_jobs(states("waiting"), limit=2)
    assert first.next_cursor and first.next_cursor.startswith("waiting:")
    # a job of the first page reported back meanwhile: the second page neither repeats nor skips
    ops.complete_waiting(first.jobs[0].id)
    second = ops.list_jobs(states("waiting"), limit=2, cursor=first.next_cursor)
    assert sorted(ids(first.jobs + second.jobs)) == sorted(ids(waiting)) and second.next_cursor is None


def test_cancel_takes_waiting_jobs_and_their_late_report_is_refused(backend: Backend) -> None:
    a, b = park(backend, 2)
    ops = Ops(backend, actor="alice")
    preview = ops.preview("cancel", JobFilter(queues=("x",)))
    assert sorted(ids(preview.sample)) == sorted(ids([a, b])) and preview.count == 2
    dry = ops.cancel(JobFilter(ids=(a.id,)), dry_run=True)
    assert (dry.matched, dry.changed) == (1, 0) and backend.get(a.id, utcnow()).state is JobState.WAITING
    result = ops.cancel(JobFilter(ids=(a.id,)))
    assert (result.matched, result.changed) == (1, 1)
    got = backend.get(a.id, utcnow())
    assert got.state is JobState.CANCELLED and got.meta["cancelled_by"] == "alice"
    assert records(ops.list_jobs(states("cancelled")).jobs) == [str(a.id)] and ops.count(states("cancelled")) == 1
    with pytest.raises(InvalidTransition, match="cancelled.*too late"):
        ops.complete_waiting(a.id, {"late": True})
    with pytest.raises(InvalidTransition, match="cancelled"):
        ops.fail_waiting(a.id, "late")
    assert backend.get(a.id, utcnow()).state is JobState.CANCELLED
    entry = ops.audit(1)[0]
    assert (entry.verb, entry.actor, entry.changed) == ("cancel", "alice", 1)
    # the other one is still waiting, and a report back completes it
    ops.complete_waiting(b.id)
    assert backend.get(b.id, utcnow()).state is JobState.FINISHED


def test_delete_takes_waiting_jobs_by_filter_and_by_id(backend: Backend) -> None:
    a, b, c = park(backend, 3)
    other = backend.enqueue(NewJob(NOOP, [99], queue="x"))
    ops = Ops(backend, actor="bob")
    result = ops.delete(states("waiting"), dry_run=True)
    assert (result.matched, result.changed) == (3, 0)
    result = ops.delete(JobFilter(ids=(a.id,)))
    assert result.changed == 1
    with pytest.raises(JobNotFound):
        backend.get(a.id, utcnow())
    result = ops.delete(states("waiting"))
    assert (result.matched, result.changed) == (2, 2)
    assert ops.count(states("waiting")) == 0
    assert backend.get(other.id, utcnow()).state is JobState.PENDING  # not in the selection
    assert ops.audit(1)[0].verb == "delete"
    with pytest.raises(JobNotFound):  # deleted: nothing left to report back on
        ops.complete_waiting(b.id)


def test_cancel_of_every_job_takes_pending_and_waiting_together(backend: Backend) -> None:
    waiting = park(backend, 1)
    pending = backend.enqueue(NewJob(NOOP, [5], queue="x"))
    ops = Ops(backend)
    result = ops.cancel(JobFilter(queues=("x",)))
    assert (result.matched, result.changed) == (2, 2)
    assert ops.count(states("cancelled")) == 2 and records(ops.list_jobs(states("cancelled")).jobs) == records(
        [*waiting, pending]
    )
    assert ops.count(JobFilter()) == 0


@pytest.mark.parametrize("cursor", ["waiting:[{}]", "waiting:{", "waiting:[true]", 'waiting:["a"]'])
def test_a_waiting_cursor_that_is_not_one_is_refused(backend: Backend, cursor: str) -> None:
    park(backend, 2)
    with pytest.raises(UsageError, match="invalid page cursor"):
        Ops(backend).list_jobs(JobFilter(), limit=1, cursor=cursor)
