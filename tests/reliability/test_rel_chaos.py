"""The chaos run of bench/chaos.py on a short schedule: real worker processes SIGKILLed and restarted
at random, the server restarted mid-run, and then every job accounted for.

`scripts/chaos` runs the full schedule (20,000 jobs per backend); docs/reliability.md has its figures.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.chaos import AofRedis, Report, Schedule, durable_commits, restart_postgres, run
from qadmin.backends import open_backend
from qadmin.filters import JobFilter
from qadmin.job import JobState, NewJob, utcnow
from qadmin.worker import Worker, WorkerOptions

pytestmark = pytest.mark.slow

#: short, but every fault of the full schedule happens at least once
SCHEDULE = dict(jobs=2000, workers=4, kill_every=(0.2, 0.5), restarts=1, down=(1.0, 2.0), seed=7)


def check(report: Report, *, restarted: bool) -> None:
    print(f"\nchaos {report.backend}: {report.to_dict()}")
    assert report.lost == 0, report.problems
    assert report.left == {"pending": 0, "scheduled": 0, "locked": 0, "failed": 0}, report.problems
    assert report.unexpected_exits == 0, report.problems
    assert report.ok, report.problems
    assert report.kills >= 3 and report.worker_restarts >= report.kills
    assert report.ran == report.jobs
    assert report.tracebacks == 0
    if restarted:
        assert report.server_restarts == 1
        # the running workers saw the outage, waited, and went on (none exited)
        assert report.outage_warnings > 0


def test_sqlite_loses_nothing_while_workers_are_killed(tmp_path: Path) -> None:
    # no server restart stretches this run: enough jobs that the workers are killed a few times
    # before they finish (2,000 took 2.4 s once claims and completions shared a transaction)
    report = run("sqlite", f"sqlite:///{tmp_path}/chaos.db", tmp_path, Schedule(**{**SCHEDULE, "jobs": 10_000}))
    check(report, restarted=False)


@pytest.mark.postgres
def test_postgresql_loses_nothing_through_kills_and_a_crash_restart(
    postgres_server, postgres_url: str, tmp_path: Path
) -> None:
    # the immediate shutdown: PostgreSQL recovers from its WAL when it starts again
    schedule = Schedule(**SCHEDULE)
    durable_commits(postgres_server, postgres_url)
    report = run(
        "postgresql",
        postgres_url,
        tmp_path,
        schedule,
        restart=lambda down, crash: restart_postgres(postgres_server, down, crash),
    )
    check(report, restarted=True)
    assert report.restart_kinds == ["immediate shutdown + crash recovery"]


@pytest.mark.redis
def test_redis_with_aof_loses_nothing_through_kills_and_a_sigkill(redis_server, tmp_path: Path) -> None:
    # its own redis-server: the shared one keeps nothing on disk, this one fsyncs every write
    server = AofRedis(tmp_path / "redis").start()
    try:
        report = run("redis", server.url, tmp_path, Schedule(**SCHEDULE), restart=server.restart)
    finally:
        server.stop()
    check(report, restarted=True)
    assert report.restart_kinds == ["SIGKILL + AOF replay"]


# --- one outage, step by step -----------------------------------------------------------------
def outage_while_a_job_runs(url: str, tmp_path: Path, restart: Callable[[float, bool], str]) -> None:
    """The server goes away while a job runs and comes back a little later: the worker records the
    outcome once it can (retrying with backoff), and nothing escapes `run_once`."""
    out = tmp_path / "ran.txt"
    backend = open_backend(url)
    backend.init()
    backend.enqueue(NewJob("qadmin.examples.sleep_then_record", [str(out), "once", 1.0], queue="q"))
    worker = Worker(backend, WorkerOptions(queues=["q"], sleep=0.05, imports=["qadmin.examples"]))
    outcome: list[object] = []

    def work() -> None:
        try:
            outcome.append(worker.run_once())
        except BaseException as exc:  # noqa: BLE001 - the test thread reports it
            outcome.append(exc)

    # the worker in a thread, the server restarted from this one: a server started from a thread
    # that then ends would be killed with it (it is started with PR_SET_PDEATHSIG)
    running = threading.Thread(target=work)
    running.start()
    time.sleep(0.3)
    restart(1.5, True)
    running.join(120)
    assert outcome == [True]
    assert out.read_text().splitlines() == ["once"]
    now = utcnow()
    for state in (JobState.PENDING, JobState.LOCKED, JobState.FAILED):
        assert backend.count(JobFilter(states=frozenset({state})), now) == 0, state
    assert backend.count(JobFilter(states=frozenset({JobState.FINISHED})), now) == 1
    backend.close()


@pytest.mark.redis
def test_a_worker_records_the_outcome_after_redis_comes_back(redis_server, tmp_path: Path) -> None:
    server = AofRedis(tmp_path / "redis").start()
    try:
        outage_while_a_job_runs(server.url, tmp_path, server.restart)
    finally:
        server.stop()


@pytest.mark.postgres
def test_a_worker_records_the_outcome_after_postgresql_comes_back(
    postgres_server, postgres_url: str, tmp_path: Path
) -> None:
    durable_commits(postgres_server, postgres_url)
    outage_while_a_job_runs(postgres_url, tmp_path, lambda down, crash: restart_postgres(postgres_server, down, crash))
