"""The console's job detail shows a job's attempts: each run a real worker made (SQLite, Redis)."""

from __future__ import annotations

from typing import Any

from qadmin import registry
from qadmin.backends import open_backend
from qadmin.job import JobState, NewJob, utcnow
from qadmin.worker import Worker, WorkerOptions
from tests.faces.tui.harness import Console, drive
from tests.faces.tui.helpers import open_job, text_of

FLAKY = "tests.tui.attempts.flaky"
RUNS: list[int] = []


def flaky() -> str:
    RUNS.append(1)
    if len(RUNS) == 1:
        raise ConnectionError("the mail server hung up")
    return "sent"


def test_the_job_detail_shows_a_failed_run_and_the_run_after_its_retry(console: Console) -> None:
    registry.register(FLAKY, flaky)
    RUNS.clear()
    backend = open_backend(console.url)
    options = WorkerOptions(
        queues=["tui-attempts"], burst=True, sleep=0, heartbeat_interval=3600, name="host:tui-w pid:7"
    )
    try:
        job = backend.enqueue(NewJob(FLAKY, queue="tui-attempts", max_attempts=1))
        Worker(backend, options).work()
        assert backend.get(job.id, utcnow()).state is JobState.FAILED
        backend.retry([job.id], utcnow())
        Worker(backend, options).work()
    finally:
        backend.close()
        registry._registry.pop(FLAKY, None)
    app = console.app()
    seen: list[str] = []

    async def scenario(pilot: Any) -> None:
        detail = await open_job(pilot, job.id)
        seen.append(text_of(detail.query_one("#job-attempts")))

    drive(app, scenario)
    shown = seen[0]
    assert "#1" in shown and "failed" in shown and "ConnectionError: the mail server hung up" in shown
    assert "#2" in shown and "completed" in shown and "host:tui-w pid:7" in shown
    assert "backtrace of attempt 1" in shown and "in flaky" in shown
