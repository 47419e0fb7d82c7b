"""Waiting jobs (issue #16, `qadmin.Waiting`), the backend contract on SQLite, PostgreSQL and
Redis: a job parked by its worker is claimed by nobody (on SQL, not even by delayed_job's or
DJJob's own claim queries), and leaves the waiting state once: completed, failed (retried, or
failed at its last attempt) or expired past its deadline."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from qadmin.backends import Backend
from qadmin.backends.sql.backend import SqlBackend
from qadmin.errors import InvalidTransition
from qadmin.filters import JobFilter
from qadmin.job import Job, JobState, NewJob, utcnow
from qadmin.ops import Ops

NOOP = "qadmin.examples.noop"
HOUR = 3600.0
FINISHED = JobFilter(states=frozenset({JobState.FINISHED}))
FAILED = JobFilter(states=frozenset({JobState.FAILED}))
WAITING = JobFilter(states=frozenset({JobState.WAITING}))


def parked(backend: Backend, worker: str = "w1", timeout: float = HOUR, **new: object) -> Job:
    job = backend.enqueue(NewJob(NOOP, [1], queue="x", **new))  # type: ignore[arg-type]
    session = backend.session(worker)
    claimed = session.claim(["x"], utcnow(), HOUR, lambda j: True)
    assert [str(j.id) for j in claimed] == [str(job.id)]
    now = utcnow()
    assert session.wait(claimed[0], now, now + timedelta(seconds=timeout))
    session.close()
    return job


def test_a_waiting_job_is_kept_listed_and_claimed_by_nobody(backend: Backend) -> None:
    job = parked(backend)
    got = backend.get(job.id, utcnow())
    assert got.state is JobState.WAITING and got.locked_by is None
    assert [str(j.id) for j in backend.waiting_jobs(utcnow())] == [str(job.id)]
    later = utcnow() + timedelta(days=3)  # past any max run time: no stale lock to take over
    assert backend.claim(["x"], "w2", later, HOUR, lambda j: True) is None
    assert backend.count(FINISHED, utcnow()) == 0 and backend.count(FAILED, utcnow()) == 0


def test_delayed_job_and_djjob_claim_queries_never_see_a_waiting_job(backend: Backend) -> None:
    if not isinstance(backend, SqlBackend):
        pytest.skip("SQL's foreign workers")
    parked(backend)
    later = utcnow() + timedelta(days=3)
    t = backend.store.table_name
    with backend.engine.connect() as conn:
        dj = conn.execute(
            sa.text(
                f"SELECT id FROM {t} WHERE ((run_at <= :now AND (locked_at IS NULL OR locked_at < :stale)) "
                "OR locked_by = :name) AND failed_at IS NULL"
            ),
            {"now": later, "stale": later - timedelta(hours=4), "name": "dj"},
        ).all()
        djjob = conn.execute(
            sa.text(
                f"SELECT id FROM {t} WHERE (run_at IS NULL OR :now >= run_at) "
                "AND (locked_at IS NULL OR locked_by = :name) AND failed_at IS NULL"
            ),
            {"now": later, "name": "djjob"},
        ).all()
    assert dj == [] and djjob == []


def test_complete_finishes_a_waiting_job_once(backend: Backend) -> None:
    job = parked(backend)
    done = backend.complete_waiting(job.id, utcnow(), '{"ok": true}')
    assert str(done.id) == str(job.id)
    assert backend.count(FINISHED, utcnow()) == 1
    assert backend.waiting_jobs(utcnow()) == []
    with pytest.raises(InvalidTransition):
        backend.complete_waiting(job.id, utcnow())
    with pytest.raises(InvalidTransition):
        backend.fail_waiting(job.id, utcnow(), "late")


def test_fail_retries_a_waiting_job_after_the_backoff(backend: Backend) -> None:
    job = parked(backend)
    backend.fail_waiting(job.id, utcnow(), "RemoteError: the service said no")
    again = backend.claim(["x"], "w2", utcnow() + timedelta(hours=1), HOUR, lambda j: True)
    assert again is not None and str(again.id) == str(job.id)
    assert again.attempts == 1 and "the service said no" in (again.last_error or "")
    assert backend.waiting_jobs(utcnow()) == []


def test_fail_at_the_last_attempt_fails_the_job(backend: Backend) -> None:
    job = parked(backend)
    backend.fail_waiting(job.id, utcnow(), "RemoteError: no", max_attempts=1)
    failed = backend.find(FAILED, utcnow(), limit=10).jobs
    assert [str(j.id) for j in failed] == [str(job.id)]
    assert "RemoteError" in (failed[0].last_error or "")


def test_past_its_deadline_a_waiting_job_fails_once_for_two_expiring_workers(backend: Backend) -> None:
    job = parked(backend, timeout=60)
    first, second = backend.session("w7"), backend.session("w8")
    assert first.expire_waiting(utcnow()) == []  # not yet due
    later = utcnow() + timedelta(seconds=120)
    expired = first.expire_waiting(later) + second.expire_waiting(later)
    assert [str(i) for i in expired] == [str(job.id)]
    again = backend.claim(["x"], "w2", utcnow() + timedelta(hours=1), HOUR, lambda j: True)
    assert again is not None and again.attempts == 1 and "WaitingTimeout" in (again.last_error or "")
    first.close()
    second.close()


def test_ops_reports_back_audited_and_counts_waiting_jobs(backend: Backend) -> None:
    job = parked(backend)
    ops = Ops(backend, actor="svc")
    assert ops.stats().queues["x"]["waiting"] == 1
    assert [str(j.id) for j in ops.list_jobs(WAITING).jobs] == [str(job.id)] and ops.count(WAITING) == 1
    ops.complete_waiting(job.id, {"done": True}, dry_run=True)
    assert backend.get(job.id, utcnow()).state is JobState.WAITING
    ops.complete_waiting(job.id, {"done": True})
    assert "waiting" not in ops.stats().queues.get("x", {})
    entry = ops.audit(1)[0]
    assert (entry.verb, entry.actor, entry.changed) == ("complete", "svc", 1)
    with pytest.raises(InvalidTransition):
        ops.fail_waiting(job.id, "late")
    other = backend.enqueue(NewJob(NOOP, [2], queue="x"))
    with pytest.raises(InvalidTransition):  # pending: not waiting for anything
        ops.complete_waiting(other.id)
