"""The console's job detail shows a finished job's result and a job's own timeout (SQLite, Redis)."""

from __future__ import annotations

from typing import Any

from qadmin import registry
from qadmin.backends import open_backend
from qadmin.filters import JobFilter
from qadmin.job import JobState, NewJob, utcnow
from qadmin.worker import Worker, WorkerOptions
from tests.faces.tui.harness import Console, drive
from tests.faces.tui.helpers import open_job, text_of

TOTAL = "tests.tui.results.total"


def total(*numbers: int) -> int:
    return sum(numbers)


def test_the_job_detail_shows_the_result_and_the_timeout(console: Console) -> None:
    registry.register(TOTAL, total)
    backend = open_backend(console.url)
    try:
        backend.enqueue(NewJob(TOTAL, [20, 22], queue="tui-results", timeout=90))
        Worker(backend, WorkerOptions(queues=["tui-results"], burst=True, sleep=0, heartbeat_interval=3600)).work()
        done = JobFilter(states=frozenset({JobState.FINISHED}), class_name=TOTAL)
        job_id = backend.find(done, utcnow(), limit=1).jobs[0].id
    finally:
        backend.close()
        registry._registry.pop(TOTAL, None)
    app = console.app()
    seen: list[str] = []

    async def scenario(pilot: Any) -> None:
        detail = await open_job(pilot, job_id)
        seen.append(text_of(detail.query_one("#job-fields")))

    drive(app, scenario)
    assert "result" in seen[0] and "42" in seen[0]
    assert "timeout" in seen[0] and "90s" in seen[0]
