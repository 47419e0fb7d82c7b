"""Cancel (issue #16), the backend contract on SQLite, PostgreSQL and Redis: waiting jobs are
removed and listed as cancelled, never run; a job a qadmin worker runs gets a request its session
sees and records as cancelled; a job a foreign worker runs is left alone, and ops says why."""

from __future__ import annotations

from datetime import timedelta

import redis

from qadmin.backends import Backend, BackendOptions, open_backend
from qadmin.filters import JobFilter
from qadmin.job import Job, JobState, NewJob, WorkerInfo, utcnow
from qadmin.ops import FOREIGN_RUNNING, Ops

NOOP = "qadmin.examples.noop"
HOUR = 3600.0
WORKER = "host:cancel-host pid:41"
FOREIGN = "host:x pid:1"  # delayed_job's format, never registered with qadmin
CANCELLED = JobFilter(states=frozenset({JobState.CANCELLED}))
FINISHED = JobFilter(states=frozenset({JobState.FINISHED}))


def strs(ids: object) -> list[str]:
    return sorted(str(i) for i in ids)  # type: ignore[attr-defined]


def cancelled(b: Backend) -> list[Job]:
    return b.find(CANCELLED, utcnow(), limit=100).jobs


def test_pending_and_scheduled_jobs_cancelled_never_run_and_are_listed_as_cancelled(backend: Backend) -> None:
    pending = backend.enqueue(NewJob(NOOP, [1], queue="c"))
    later = backend.enqueue(NewJob(NOOP, [2], queue="c", run_at=utcnow() + timedelta(hours=1)))
    other = backend.enqueue(NewJob(NOOP, [3], queue="c"))
    ops = Ops(backend, actor="alice")
    result = ops.cancel(JobFilter(ids=(pending.id, later.id)))
    assert result.changed == 2 and not result.skipped
    # nothing of them is left to claim: only the other job runs
    claimed = backend.claim(["c"], "w1", utcnow() + timedelta(hours=2), 4 * HOUR, lambda j: True)
    assert claimed is not None and str(claimed.id) == str(other.id)
    assert backend.claim(["c"], "w2", utcnow() + timedelta(hours=2), 4 * HOUR, lambda j: True) is None
    listed = cancelled(backend)
    assert sorted(j.args[0] for j in listed) == [1, 2]
    assert all(j.state is JobState.CANCELLED and j.meta["cancelled_by"] == "alice" for j in listed)
    assert backend.count(CANCELLED, utcnow()) == 2
    # cancelled jobs are not finished ones, and a live listing does not show them
    assert backend.count(FINISHED, utcnow()) == 0
    assert all(j.state is not JobState.CANCELLED for j in backend.find(JobFilter(), utcnow(), limit=100).jobs)
    assert ops.audit(1)[0].verb == "cancel" and ops.audit(1)[0].changed == 2


def test_a_dry_run_cancels_nothing(backend: Backend) -> None:
    job = backend.enqueue(NewJob(NOOP, [1], queue="c"))
    result = Ops(backend).cancel(JobFilter(ids=(job.id,)), dry_run=True)
    assert result.dry_run and result.matched == 1 and result.changed == 0
    assert backend.get(job.id, utcnow()).state is JobState.PENDING
    assert cancelled(backend) == []


def test_a_failed_job_is_not_cancelled(backend: Backend) -> None:
    job = backend.enqueue(NewJob(NOOP, [1], queue="c"))
    claimed = backend.claim(["c"], "w1", utcnow(), HOUR, lambda j: True)
    assert claimed is not None
    backend.fail(claimed, "w1", utcnow(), "ValueError: boom", None)
    result = Ops(backend).cancel(JobFilter(ids=(job.id,)))
    assert result.changed == 0 and "failed" in result.skipped[0][1]
    assert backend.get(job.id, utcnow()).state is JobState.FAILED


def test_a_job_a_qadmin_worker_runs_is_asked_to_stop_and_recorded_as_cancelled(backend: Backend) -> None:
    session = backend.session(WORKER)
    now = utcnow()
    session.register(WorkerInfo(WORKER, "cancel-host", 41, ["c"], now, now))
    backend.enqueue(NewJob(NOOP, [7], queue="c"))
    [job] = session.claim(["c"], utcnow(), HOUR, lambda j: True)
    assert not session.cancel_requested(job)
    result = Ops(backend, actor="bob").cancel(JobFilter(ids=(job.id,)))
    assert result.changed == 1
    # still running until its worker sees the request
    assert backend.get(job.id, utcnow()).state is JobState.LOCKED
    assert session.cancel_requested(job)
    assert session.cancelled(job, utcnow())
    [listed] = cancelled(backend)
    assert listed.args == [7] and listed.meta["cancelled_by"] == "bob"
    assert backend.count(FINISHED, utcnow()) == 0
    assert backend.count(JobFilter(states=frozenset({JobState.LOCKED})), utcnow()) == 0
    # the request went with the outcome: a repeat writes nothing
    assert not session.cancel_requested(job)
    assert not session.cancelled(job, utcnow())
    assert len(cancelled(backend)) == 1
    session.unregister()
    session.close()


def test_a_job_that_finished_before_its_worker_saw_the_cancel_stays_finished(backend: Backend) -> None:
    session = backend.session(WORKER)
    now = utcnow()
    session.register(WorkerInfo(WORKER, "cancel-host", 41, ["c"], now, now))
    backend.enqueue(NewJob(NOOP, [8], queue="c"))
    [job] = session.claim(["c"], utcnow(), HOUR, lambda j: True)
    assert Ops(backend).cancel(JobFilter(ids=(job.id,))).changed == 1
    session.complete(job, utcnow(), 0.1)
    session.flush()
    assert not session.cancelled(job, utcnow())
    assert cancelled(backend) == []
    assert backend.count(FINISHED, utcnow()) == 1
    session.unregister()
    session.close()


def _foreign_running(backend: Backend, any_url: str) -> Job:
    if any_url.startswith("redis"):
        # a Resque worker's job: in its worker:ID key, where qadmin cannot reach the worker
        client = redis.Redis.from_url(any_url)
        payload = b'{"class":"qadmin.examples.noop","args":[9]}'
        client.sadd("resque:workers", "ruby-host:7:c")
        client.set(
            "resque:worker:ruby-host:7:c", b'{"queue":"c","run_at":"2026-11-22T08:41:11Z","payload":' + payload + b"}"
        )
        client.close()
        [job] = backend.find(JobFilter(states=frozenset({JobState.LOCKED})), utcnow(), limit=10).jobs
        return job
    backend.enqueue(NewJob(NOOP, [9], queue="c"))
    job = backend.claim(["c"], FOREIGN, utcnow(), HOUR, lambda j: True)
    assert job is not None
    return job


def test_a_job_a_foreign_worker_runs_is_refused_with_the_reason(backend: Backend, any_url: str) -> None:
    job = _foreign_running(backend, any_url)
    assert strs(backend.foreign_running([job.id], utcnow())) == [str(job.id)]
    preview = Ops(backend).preview("cancel", JobFilter(ids=(job.id,)))
    assert preview.count == 0
    result = Ops(backend).apply(preview)
    assert result.changed == 0 and result.skipped == [(backend.parse_id(str(job.id)), FOREIGN_RUNNING)]
    assert backend.get(job.id, utcnow()).state is JobState.LOCKED
    # and the backend itself leaves it alone when asked directly
    assert backend.cancel([job.id], utcnow(), "carol") == []
    assert cancelled(backend) == []


def test_an_earlier_qadmins_finished_records_get_the_cancelled_by_column(sql_url: str) -> None:
    """A `qadmin_finished` table made before cancel existed is given its column when qadmin next
    opens it (a reader too), and its rows read as finished."""
    import sqlalchemy as sa

    old = open_backend(sql_url, BackendOptions())
    old.init()
    job = old.enqueue(NewJob(NOOP, [1], queue="c"))
    claimed = old.claim(["c"], "w1", utcnow(), HOUR, lambda j: True)
    assert claimed is not None
    old.complete(claimed, "w1", utcnow(), 0.1)
    old.close()
    engine = sa.create_engine(sql_url)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE qadmin_finished DROP COLUMN cancelled_by"))
    engine.dispose()
    reader = open_backend(sql_url, BackendOptions())
    try:
        [finished] = reader.find(FINISHED, utcnow(), limit=10).jobs
        assert str(finished.id) == str(job.id) and finished.state is JobState.FINISHED
        waiting = reader.enqueue(NewJob(NOOP, [2], queue="c"))
        assert Ops(reader).cancel(JobFilter(ids=(waiting.id,))).changed == 1
        assert [j.args for j in cancelled(reader)] == [[2]]
    finally:
        reader.close()


def test_a_request_its_worker_never_saw_does_not_cancel_the_jobs_next_run(backend: Backend) -> None:
    session = backend.session(WORKER)
    now = utcnow()
    session.register(WorkerInfo(WORKER, "cancel-host", 41, ["c"], now, now))
    backend.enqueue(NewJob(NOOP, [5], queue="c"))
    [job] = session.claim(["c"], utcnow(), HOUR, lambda j: True)
    assert Ops(backend).cancel(JobFilter(ids=(job.id,))).changed == 1
    # the run failed before the worker looked, and is retried
    session.fail(job, utcnow(), "ValueError: boom", utcnow())
    [again] = session.claim(["c"], utcnow() + timedelta(seconds=1), HOUR, lambda j: True)
    assert str(again.id) == str(job.id)
    assert not session.cancel_requested(again)
    session.unregister()
    session.close()
