"""The claim path through PgBouncer in transaction mode (tests/pgbouncer.py starts it before the
tests' PostgreSQL): each transaction may run on another server connection, so nothing may lean on
a session — above all no server-side prepared statement, which PgBouncer 1.18 does not carry
from one server connection to the next. A URL for such a pooler says `prepare=off`.

Real worker processes and the real CLI; nothing here asserts a duration.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from qadmin.backends import Backend, BackendOptions, open_backend
from qadmin.errors import QadminError, UsageError
from qadmin.filters import JobFilter
from qadmin.job import JobState, NewJob, WorkerInfo, utcnow
from tests.pgbouncer import pgbouncer, pgbouncer_url
from tests.worker.test_worker_processes import procs
from tests.worker.test_worker_sql_processes import workers_run_each_job_once

__all__ = ["pgbouncer", "pgbouncer_url", "procs"]  # fixtures

pytestmark = pytest.mark.postgres

NOOP = "qadmin.examples.noop"
HOUR = 3600.0
ALWAYS = lambda _job: True  # noqa: E731


@pytest.fixture
def bounced(pgbouncer_url: str) -> Iterator[Backend]:
    b = open_backend(pgbouncer_url, BackendOptions(worker_timeout=60.0))
    b.init()
    try:
        yield b
    finally:
        b.close()


def ready(*states: JobState) -> JobFilter:
    return JobFilter(states=frozenset(states))


def test_two_worker_processes_drain_through_pgbouncer_each_job_once(pgbouncer_url: str, tmp_path: Path, procs) -> None:
    workers_run_each_job_once(pgbouncer_url, tmp_path, procs, [[], ["--prefetch", "5"]], n=400)


def test_worker_processes_log_no_backend_error_through_pgbouncer(pgbouncer_url: str, tmp_path: Path, procs) -> None:
    from tests.worker.test_worker_processes import client, count

    with client(pgbouncer_url) as c:
        c.enqueue_many(NewJob(NOOP, [i]) for i in range(200))
    p = procs(pgbouncer_url)
    p.start("worker", "--burst", "--concurrency", "2")
    p.wait_all(timeout=120)
    logs = p.logs()
    assert "prepared statement" not in logs, logs
    assert " ERROR " not in logs and "Traceback" not in logs, logs
    assert count(pgbouncer_url, "finished") == 200


def test_outcomes_through_pgbouncer(bounced: Backend) -> None:
    jobs = [bounced.enqueue(NewJob(NOOP, [w], queue="q")) for w in ("ok", "retry", "fail", "back", "next")]
    now = utcnow() + timedelta(seconds=1)
    session = bounced.session("host:bouncer pid:1")
    try:
        first = session.claim(["q"], now, HOUR, ALWAYS)
        assert [j.id for j in first] == [jobs[0].id]
        # completes the first and claims the next in one statement
        second = session.complete_and_claim(first[0], now, 0.01, ["q"], HOUR, ALWAYS, 1)
        assert [j.id for j in second] == [jobs[1].id]
        session.fail(second[0], now, "RuntimeError: again", now + timedelta(seconds=30))
        third = session.claim(["q"], now, HOUR, ALWAYS)
        assert [j.id for j in third] == [jobs[2].id]
        session.fail(third[0], now, "RuntimeError: for good", None)
        fourth = session.claim(["q"], now, HOUR, ALWAYS)
        assert [j.id for j in fourth] == [jobs[3].id]
        assert session.refresh(fourth[0], now)
        session.release(fourth)
        batch = session.claim(["q"], now, HOUR, ALWAYS, limit=5)
        assert [j.id for j in batch] == [jobs[3].id, jobs[4].id]
        for job in batch:
            session.complete(job, now, 0.01)
    finally:
        session.close()

    assert bounced.get(jobs[1].id, now).state is JobState.SCHEDULED
    assert bounced.get(jobs[2].id, now).state is JobState.FAILED
    assert bounced.retry([jobs[2].id], now) == [jobs[2].id]
    assert bounced.get(jobs[2].id, now).state is JobState.PENDING
    assert bounced.count(ready(JobState.FINISHED), now) == 3
    stats = bounced.stats(now, HOUR)
    assert (stats.processed, stats.failed) == (5, 2)  # every run, and the two that raised
    page = bounced.find(ready(JobState.PENDING, JobState.SCHEDULED), now, limit=10)
    assert sorted(str(j.id) for j in page.jobs) == sorted(str(jobs[i].id) for i in (1, 2))


def test_stats_and_listings_through_pgbouncer_on_the_command_line(pgbouncer_url: str, tmp_path: Path, procs) -> None:
    p = procs(pgbouncer_url)
    assert p.run("init").returncode == 0
    for i in range(3):
        done = p.run("enqueue", NOOP, str(i), "--queue", "mail")
        assert done.returncode == 0, done.stderr
    stats = p.run("stats", "--json")
    assert stats.returncode == 0, stats.stderr
    assert "prepared statement" not in stats.stderr
    listed = p.run("jobs", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [job["queue"] for job in json.loads(listed.stdout)] == ["mail"] * 3
    assert p.run("worker", "--burst").returncode == 0
    after = p.run("stats", "--json")
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout)["processed"] == 3


def test_a_dead_workers_stale_lock_is_rescued_through_pgbouncer(bounced: Backend) -> None:
    now = utcnow()
    dead, rescuer = "host:gone pid:78", "host:rescuer pid:5"
    then = now - timedelta(minutes=10)
    bounced.register_worker(
        WorkerInfo(name=dead, host="gone", pid=78, queues=["r"], started_at=then, heartbeat_at=then)
    )
    held = [bounced.enqueue(NewJob(NOOP, [w], queue="r", run_at=then - timedelta(minutes=1))) for w in ("a", "b")]
    for job in held:
        assert bounced.claim(["r"], dead, then, 4 * HOUR, lambda j, job=job: j.id == job.id) is not None
    session = bounced.session(rescuer)
    try:
        rescued = session.rescue(now)
        assert session.rescue(now) == {}
        again = session.claim(["r"], now, 4 * HOUR, ALWAYS, limit=5)
    finally:
        session.close()
    assert sorted(map(str, rescued[dead])) == sorted(str(j.id) for j in held)
    assert sorted(str(j.id) for j in again) == sorted(str(j.id) for j in held)
    assert bounced.stats(now, 4 * HOUR).rescued == 2


def test_prepare_off_turns_every_server_side_prepared_statement_off(postgres_url: str) -> None:
    b = open_backend(postgres_url + "?prepare=off", BackendOptions())
    try:
        b.init()
        with b.engine.connect() as conn:
            assert conn.connection.driver_connection.prepare_threshold is None
        # the one-statement verbs, enqueue's INSERT sent unnamed
        assert type(b.verbs).__name__ == "PreparedPg" and b.verbs.server_prepares is False
        assert "prepare" not in b.safe_url
    finally:
        b.close()
    fast = open_backend(postgres_url, BackendOptions())
    try:
        assert type(fast.verbs).__name__ == "PreparedPg" and fast.verbs.server_prepares is True
    finally:
        fast.close()


def test_a_prepare_value_other_than_on_or_off_is_refused(postgres_url: str) -> None:
    with pytest.raises(UsageError, match=r"prepare=maybe .*expected on or off"):
        open_backend(postgres_url + "?prepare=maybe", BackendOptions())


def test_a_lost_prepared_statement_names_the_pooler_and_the_option(bounced: Backend) -> None:
    """What a URL without `prepare=off` meets behind PgBouncer: said as what it is, not as a
    missing table."""
    with pytest.raises(QadminError, match=r"PgBouncer.*prepare=off") as caught:
        with bounced.store.wrap(), bounced.engine.connect() as conn:
            conn.execute(sa.text("EXECUTE qadmin_gone"))
    assert "qadmin init" not in str(caught.value)
