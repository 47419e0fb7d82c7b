"""Attempt history (`Backend.attempts`), on every backend: each run of a job kept with when it
started, how long it ran, on which worker and how it ended (error and backtrace); runs that failed,
timed out, were cancelled or rescued; bounded, pruned with the job; and for foreign rows, what their
own columns hold."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from qadmin.backends import Backend, BackendOptions, open_backend
from qadmin.backends.history import ATTEMPTS_KEPT
from qadmin.errors import JobNotFound
from qadmin.filters import JobFilter
from qadmin.job import Job, JobId, JobState, NewJob, WorkerInfo, utcnow
from qadmin.model import FROM_COLUMNS, RECORDED, Attempt, Outcome

NOOP = "qadmin.examples.noop"
HOUR = 3600.0
ONE = "host:one pid:1"
TWO = "host:two pid:2"
BOOM = 'ValueError: boom\nTraceback (most recent call last):\n  File "jobs.py", line 3, in send\nValueError: boom\n'
TIMEOUT = "JobTimeout: execution expired (max run time 1s)\n"


@pytest.fixture
def backend(any_url: str) -> Iterator[Backend]:
    b = open_backend(any_url, BackendOptions(worker_timeout=60.0))
    b.init()
    try:
        yield b
    finally:
        b.close()


def close_to(a: datetime | None, b: datetime) -> bool:
    return a is not None and abs((a - b).total_seconds()) < 0.01


def claim(b: Backend, worker: str, now: datetime, job: Job) -> tuple[Any, Job]:
    session = b.session(worker)
    got = session.claim(["h"], now, 4 * HOUR, lambda j: str(j.id) == str(job.id))
    assert len(got) == 1, got
    return session, got[0]


def test_a_job_that_fails_twice_then_succeeds_has_three_attempts(backend: Backend) -> None:
    t0 = utcnow()
    job = backend.enqueue(NewJob(NOOP, ["thrice"], queue="h", run_at=t0 - timedelta(seconds=1)))
    s1, held = claim(backend, ONE, t0, job)
    s1.fail(held, t0 + timedelta(seconds=2), BOOM, t0 + timedelta(seconds=10), runtime=1.5)
    s1.close()
    s2, held = claim(backend, TWO, t0 + timedelta(seconds=20), job)
    s2.fail(held, t0 + timedelta(seconds=21), TIMEOUT, t0 + timedelta(seconds=30), runtime=1.0)
    s2.close()
    s3, held = claim(backend, ONE, t0 + timedelta(seconds=40), job)
    s3.complete(held, t0 + timedelta(seconds=41), 0.5)
    s3.close()

    attempts = backend.attempts(job.id, t0 + timedelta(seconds=50))

    assert [(a.number, a.outcome, a.worker) for a in attempts] == [
        (1, Outcome.RETRIED, ONE),
        (2, Outcome.TIMED_OUT, TWO),
        (3, Outcome.COMPLETED, ONE),
    ]
    first, second, third = attempts
    assert first.error == "ValueError: boom"
    assert first.backtrace is not None and 'File "jobs.py", line 3, in send' in first.backtrace
    assert close_to(first.started_at, t0 + timedelta(seconds=0.5))
    assert close_to(first.finished_at, t0 + timedelta(seconds=2))
    assert first.runtime == pytest.approx(1.5, abs=0.01)
    assert second.error == "JobTimeout: execution expired (max run time 1s)" and second.backtrace is None
    assert close_to(third.finished_at, t0 + timedelta(seconds=41))
    assert third.runtime == pytest.approx(0.5, abs=0.01)
    assert third.error is None
    assert all(a.source == RECORDED for a in attempts)
    # the finished job's own id names the same history
    done = backend.find(JobFilter(states=frozenset({JobState.FINISHED})), t0 + timedelta(seconds=50), limit=10)
    assert [a.number for a in backend.attempts(done.jobs[0].id, t0 + timedelta(seconds=50))] == [1, 2, 3]
    assert third.to_dict()["outcome"] == "completed"


def test_a_failure_for_good_and_a_running_job(backend: Backend) -> None:
    now = utcnow()
    job = backend.enqueue(NewJob(NOOP, ["once"], queue="h", run_at=now - timedelta(seconds=1)))
    s1, held = claim(backend, ONE, now, job)
    running = backend.attempts(job.id, now + timedelta(seconds=1))
    assert [(a.number, a.outcome, a.worker) for a in running] == [(1, Outcome.RUNNING, ONE)]
    assert close_to(running[0].started_at, now) and running[0].finished_at is None
    s1.fail(held, now + timedelta(seconds=3), BOOM, None)  # no runtime given: from the lock
    s1.close()
    (failed,) = backend.attempts(job.id, now + timedelta(seconds=4))
    assert (failed.number, failed.outcome, failed.error) == (1, Outcome.FAILED, "ValueError: boom")
    assert close_to(failed.started_at, now) and failed.runtime == pytest.approx(3.0, abs=0.01)


def test_a_cancelled_running_job_is_an_attempt_cancelled_on_its_worker(backend: Backend) -> None:
    now = utcnow()
    job = backend.enqueue(NewJob(NOOP, ["stop"], queue="h", run_at=now - timedelta(seconds=1)))
    backend.register_worker(
        WorkerInfo(name=ONE, host="one", pid=1, queues=["h"], started_at=now, heartbeat_at=now + timedelta(seconds=1))
    )
    session, held = claim(backend, ONE, now, job)
    assert backend.cancel([job.id], now + timedelta(seconds=1), "ann")
    assert session.cancelled(held, now + timedelta(seconds=2))
    session.close()
    attempts = backend.attempts(job.id, now + timedelta(seconds=3))
    assert [(a.number, a.outcome, a.worker) for a in attempts] == [(1, Outcome.CANCELLED, ONE)]
    assert attempts[0].runtime == pytest.approx(2.0, abs=0.01)


def test_a_job_cancelled_before_it_ran_has_no_attempt(backend: Backend) -> None:
    now = utcnow()
    job = backend.enqueue(NewJob(NOOP, ["never"], queue="h"))
    assert backend.cancel([job.id], now, "ann")
    assert backend.attempts(job.id, now) == []


def test_a_rescued_job_names_its_dead_worker_then_runs_again(backend: Backend) -> None:
    now = utcnow()
    died = now - timedelta(minutes=10)
    backend.register_worker(WorkerInfo(name=ONE, host="one", pid=1, queues=["h"], started_at=died, heartbeat_at=died))
    job = backend.enqueue(NewJob(NOOP, ["rescued"], queue="h", run_at=died - timedelta(minutes=1)))
    gone, _ = claim(backend, ONE, died, job)
    rescuer = backend.session(TWO)
    try:
        assert {h: [str(i) for i in ids] for h, ids in rescuer.rescue(now).items()} == {ONE: [str(job.id)]}
        got = rescuer.claim(["h"], now, 4 * HOUR, lambda j: True)
        rescuer.complete(got[0], now + timedelta(seconds=1), 0.25)
    finally:
        rescuer.close()
    attempts = backend.attempts(job.id, now + timedelta(seconds=2))
    assert [(a.number, a.outcome, a.worker) for a in attempts] == [
        (1, Outcome.RESCUED, ONE),
        (2, Outcome.COMPLETED, TWO),
    ]
    rescued = attempts[0]
    assert close_to(rescued.started_at, died) and close_to(rescued.finished_at, died)
    assert rescued.error is not None and rescued.error.startswith("WorkerDied: worker host:one pid:1 stopped")
    assert TWO in rescued.error


def kept(backend: Backend, job_id: JobId) -> tuple[list[Attempt], int]:
    log: Any = backend.attempt_log  # type: ignore[attr-defined]
    result: tuple[list[Attempt], int] = log.of(job_id)
    return result


def fail_times(backend: Backend, job: Job, times: int, start: datetime, retry: bool = True) -> datetime:
    at = start
    for n in range(times):
        session, held = claim(backend, ONE, at, job)
        last = n == times - 1
        session.fail(held, at + timedelta(seconds=1), f"KeyError: {n}\n", None if last and not retry else at, 1.0)
        session.close()
        at += timedelta(seconds=2)
    return at


def test_only_the_latest_runs_are_kept_numbered_from_the_first(backend: Backend) -> None:
    now = utcnow()
    job = backend.enqueue(NewJob(NOOP, ["many"], queue="h", run_at=now - timedelta(seconds=1)))
    fail_times(backend, job, ATTEMPTS_KEPT + 3, now)
    attempts = backend.attempts(job.id, now + timedelta(hours=1))
    assert [a.number for a in attempts] == list(range(4, ATTEMPTS_KEPT + 4))
    assert attempts[-1].error == f"KeyError: {ATTEMPTS_KEPT + 2}"


def test_a_long_traceback_is_cut_short(backend: Backend) -> None:
    now = utcnow()
    job = backend.enqueue(NewJob(NOOP, ["long"], queue="h", run_at=now - timedelta(seconds=1)))
    session, held = claim(backend, ONE, now, job)
    session.fail(held, now, "RuntimeError: deep\n" + "  frame\n" * 10_000, now, 1.0)
    session.close()
    (attempt,) = backend.attempts(job.id, now)
    assert attempt.error == "RuntimeError: deep"
    assert attempt.backtrace is not None and len(attempt.backtrace) < 20_000
    assert attempt.backtrace.endswith("[... truncated]")


def test_prune_removes_the_attempts_of_the_jobs_it_removes(backend: Backend) -> None:
    now = utcnow()
    old = backend.enqueue(NewJob(NOOP, ["old"], queue="h", run_at=now - timedelta(days=60)))
    fail_times(backend, old, 2, now - timedelta(days=40), retry=False)
    young = backend.enqueue(NewJob(NOOP, ["young"], queue="h", run_at=now - timedelta(seconds=10)))
    fail_times(backend, young, 1, now - timedelta(seconds=5))  # waiting for its retry: stays
    assert kept(backend, old.id)[1] == 2

    report = backend.prune(now, failed_before=now - timedelta(days=30), finished_before=None, workers_before=None)

    assert report.failed == 1
    with pytest.raises(JobNotFound):
        backend.attempts(old.id, now)
    assert kept(backend, old.id) == ([], 0)
    assert [a.outcome for a in backend.attempts(young.id, now)] == [Outcome.RETRIED]


def test_prune_removes_the_attempts_of_pruned_finished_jobs(backend: Backend) -> None:
    now = utcnow()
    job = backend.enqueue(NewJob(NOOP, ["done"], queue="h", run_at=now - timedelta(seconds=30)))
    at = fail_times(backend, job, 1, now - timedelta(seconds=20))
    session, held = claim(backend, ONE, at, job)
    session.complete(held, at, 0.1)
    session.close()
    assert kept(backend, job.id)[1] == 1
    backend.prune(now, failed_before=None, finished_before=now + timedelta(seconds=1), workers_before=None)
    assert kept(backend, job.id) == ([], 0)


# --- foreign rows: what their columns hold ------------------------------------------------------
def test_sql_delayed_job_row_gives_its_columns(sql_url: str) -> None:
    import sqlalchemy as sa

    b: Any = open_backend(sql_url, BackendOptions())
    b.init()
    try:
        now = utcnow().replace(microsecond=0)
        t = b.store.jobs()
        handler = (
            "--- !ruby/object:Delayed::PerformableMethod\nobject: !ruby/object:User {}\nmethod_name: :x\nargs: []\n"
        )
        base = {"priority": 0, "handler": handler, "queue": "h", "created_at": now, "updated_at": now, "run_at": now}
        with b.engine.begin() as conn:
            failed_id = conn.execute(
                sa.insert(t),
                {
                    **base,
                    "attempts": 3,
                    "failed_at": now,
                    "last_error": "undefined method `x' for nil\n/app/models/user.rb:4:in `x'",
                    "locked_at": None,
                    "locked_by": None,
                },
            )
            running_id = conn.execute(
                sa.insert(t),
                {
                    **base,
                    "attempts": 1,
                    "failed_at": None,
                    "last_error": "Timeout::Error: execution expired\n/app/x.rb:1",
                    "locked_at": now,
                    "locked_by": "delayed_job host:web1 pid:42",
                },
            )
            ids = [failed_id.inserted_primary_key[0], running_id.inserted_primary_key[0]]
        failed = b.attempts(ids[0], now)
        assert [(a.number, a.outcome, a.source) for a in failed] == [(3, Outcome.FAILED, FROM_COLUMNS)]
        assert failed[0].error == "undefined method `x' for nil"
        assert failed[0].backtrace == "/app/models/user.rb:4:in `x'"
        assert failed[0].finished_at == now
        running = b.attempts(ids[1], now)
        assert [(a.number, a.outcome, a.worker, a.source) for a in running] == [
            (1, Outcome.RETRIED, None, FROM_COLUMNS),
            (2, Outcome.RUNNING, "delayed_job host:web1 pid:42", FROM_COLUMNS),
        ]
        assert running[1].started_at == now
    finally:
        b.close()


def test_redis_resque_failure_entry_gives_its_exception_backtrace_and_worker(redis_url: str, r: Any) -> None:
    b = open_backend(redis_url, BackendOptions())
    try:
        r.rpush(
            "resque:failed",
            json.dumps(
                {
                    "failed_at": "2026/12/01 10:00:00 UTC",
                    "payload": {"class": "Mailer", "args": [7]},
                    "exception": "Net::ReadTimeout",
                    "error": "Net::ReadTimeout",
                    "backtrace": ["/app/mailer.rb:9:in `deliver'", "/gems/resque/job.rb:1"],
                    "worker": "web1:4242:mail",
                    "queue": "mail",
                }
            ),
        )
        now = utcnow()
        (job,) = b.find(JobFilter(states=frozenset({JobState.FAILED})), now, limit=10).jobs
        (attempt,) = b.attempts(job.id, now)
        assert (attempt.number, attempt.outcome, attempt.worker, attempt.source) == (
            1,
            Outcome.FAILED,
            "web1:4242:mail",
            FROM_COLUMNS,
        )
        assert attempt.error == "Net::ReadTimeout: Net::ReadTimeout"
        assert attempt.backtrace == "/app/mailer.rb:9:in `deliver'\n/gems/resque/job.rb:1"
        assert attempt.finished_at is not None and attempt.finished_at.isoformat().startswith("2026-12-01T10:00:00")
    finally:
        b.close()


def test_a_waiting_job_is_a_run_waiting_for_its_service(backend: Backend) -> None:
    now = utcnow()
    job = backend.enqueue(NewJob(NOOP, ["parked"], queue="h", run_at=now - timedelta(seconds=1)))
    session, held = claim(backend, ONE, now, job)
    assert session.wait(held, now + timedelta(seconds=1), now + timedelta(hours=1))
    session.close()
    (waiting,) = backend.attempts(job.id, now + timedelta(seconds=2))
    assert (waiting.number, waiting.outcome) == (1, Outcome.WAITING)
    assert close_to(waiting.started_at, now + timedelta(seconds=1))
    backend.complete_waiting(job.id, now + timedelta(seconds=5))
    (done,) = backend.attempts(job.id, now + timedelta(seconds=6))
    assert (done.number, done.outcome, done.worker) == (1, Outcome.COMPLETED, ONE)
