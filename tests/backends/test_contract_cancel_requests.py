"""Cancel requests no worker will act on (issue #16), on SQLite, PostgreSQL and Redis: a running
job that ends before its worker sees the request leaves it behind; settling drops it (guarded),
audits it against the job, and every job page then says "cancel requested at T by U — it finished
first". Live workers settle with their rescues; `prune` settles the rest and counts them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from qadmin.backends import Backend, WorkerSession
from qadmin.backends.cancel_requests import MISSED
from qadmin.filters import JobFilter
from qadmin.job import Job, JobState, NewJob, WorkerInfo, utcnow
from qadmin.ops import Ops

NOOP = "qadmin.examples.noop"
HOUR = 3600.0
WORKER = "host:settle-host pid:42"


@pytest.fixture
def session(backend: Backend) -> Iterator[WorkerSession]:
    s = backend.session(WORKER)
    now = utcnow()
    s.register(WorkerInfo(WORKER, "settle-host", 42, ["c"], now, now))
    try:
        yield s
    finally:
        s.unregister()
        s.close()


def running(backend: Backend, session: WorkerSession, arg: int = 1) -> Job:
    backend.enqueue(NewJob(NOOP, [arg], queue="c"))
    [job] = session.claim(["c"], utcnow(), HOUR, lambda j: True)
    return job


def note(ops: Ops, job_id: object) -> str | None:
    job = ops.show(str(job_id))
    return ops.noted(job, ops.audit(50, job.id)).meta.get("cancel_note")


def test_a_job_that_finished_first_is_noted_and_its_request_settled(backend: Backend, session: WorkerSession) -> None:
    job = running(backend, session)
    ops = Ops(backend, actor="alice")
    assert ops.cancel(JobFilter(ids=(job.id,))).changed == 1
    assert "alice" in (note(ops, job.id) or "") and "stops the job within seconds" in (note(ops, job.id) or "")
    # still running: settling leaves the request alone
    assert backend.settle_cancels(utcnow(), "test") == []
    assert backend.cancel_request(job.id) is not None
    session.complete(job, utcnow(), 0.1)
    session.flush()
    [finished] = ops.list_jobs(JobFilter(states=frozenset({JobState.FINISHED}))).jobs
    # before any settling, the open request already tells it
    assert note(ops, finished.id) is not None and "by alice — it finished first" in (note(ops, finished.id) or "")
    assert [str(i) for i in session.settle_cancels(utcnow())] == [str(job.id)]
    assert backend.cancel_request(job.id) is None
    assert session.settle_cancels(utcnow()) == []  # once
    entry = ops.audit(1)[0]
    assert (entry.verb, entry.actor, entry.face, entry.changed) == (MISSED, "alice", "worker", 0)
    assert entry.selection["outcome"] == "finished"
    # and afterwards from the audit log, on the finished record's page
    text = note(ops, finished.id)
    assert (
        text is not None and text.startswith("cancel requested at ") and text.endswith("by alice — it finished first")
    )
    assert backend.get(finished.id, utcnow()).state is JobState.FINISHED


def test_a_job_that_failed_first_keeps_its_retry_and_prune_settles_the_request(
    backend: Backend, session: WorkerSession
) -> None:
    job = running(backend, session, 2)
    ops = Ops(backend, actor="bob")
    assert ops.cancel(JobFilter(ids=(job.id,))).changed == 1
    session.fail(job, utcnow(), "ValueError: boom", utcnow() + timedelta(hours=1))
    assert "it failed and waits for a retry first" in (note(ops, job.id) or "")
    dry = ops.prune(dry_run=True)
    assert dry.cancels == 1 and backend.cancel_request(job.id) is not None
    report = ops.prune()
    assert report.cancels == 1 and report.to_dict()["cancels"] == 1
    assert backend.cancel_request(job.id) is None
    assert ops.prune().cancels == 0
    assert backend.get(job.id, utcnow()).state is JobState.SCHEDULED
    assert "it failed and waits for a retry first" in (note(ops, job.id) or "")


def test_a_job_cancelled_by_its_worker_leaves_no_request_nor_note(backend: Backend, session: WorkerSession) -> None:
    job = running(backend, session, 3)
    ops = Ops(backend, actor="carol")
    assert ops.cancel(JobFilter(ids=(job.id,))).changed == 1
    assert session.cancelled(job, utcnow())
    assert backend.cancel_request(job.id) is None and backend.settle_cancels(utcnow(), "test") == []
    [record] = ops.list_jobs(JobFilter(states=frozenset({JobState.CANCELLED}))).jobs
    assert note(ops, record.id) is None
