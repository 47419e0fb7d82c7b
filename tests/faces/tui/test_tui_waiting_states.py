"""Waiting jobs in the console (issue #16): counted on the overview, the jobs page's Waiting tab
lists them with their count, the All tab and a queue filter list them with the other jobs, and C cancels one from its
page (a late report is then refused)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from qadmin.backends import open_backend
from qadmin.errors import InvalidTransition
from qadmin.filters import JobFilter
from qadmin.job import Job, JobState, NewJob, WorkerInfo
from tests.faces.tui.harness import Console, drive, wait_for
from tests.faces.tui.helpers import confirm, jobs_page, open_job, open_jobs, overview, text_of
from tests.faces.tui.test_tui_console import footer_keys

QUEUE = "external"


def plant(console: Console) -> tuple[Job, Job]:
    """A job waiting for its service, and a pending one, on a queue of their own."""
    b = open_backend(console.url)
    try:
        now = console.clock()
        waiting = b.enqueue(
            NewJob("qadmin.examples.noop", ["external"], queue=QUEUE, run_at=now - timedelta(minutes=1))
        )
        session = b.session("host:tui-waiting pid:9")
        [claimed] = session.claim([QUEUE], now, 3600.0, lambda j: True)
        assert session.wait(claimed, now, now + timedelta(hours=1))
        session.close()
        pending = b.enqueue(NewJob("qadmin.examples.noop", ["pending"], queue=QUEUE, run_at=now - timedelta(minutes=1)))
        return waiting, pending
    finally:
        b.close()


def test_the_waiting_tab_and_the_all_tab_list_waiting_jobs(console: Console) -> None:
    waiting, pending = plant(console)
    app = console.app()

    async def scenario(pilot: Any) -> None:
        home = await overview(pilot)
        assert "1 waiting" in text_of(home.query_one("#totals"))
        screen = await jobs_page(pilot, "waiting")
        assert list(screen.table.jobs) == [str(waiting.id)] and screen.count == 1
        assert screen.table.jobs[str(waiting.id)].state is JobState.WAITING
        await pilot.press("1")  # back to the overview, whence a queue's jobs open
        screen = await open_jobs(pilot, JobFilter(queues=(QUEUE,)))
        assert sorted(screen.table.jobs) == sorted([str(waiting.id), str(pending.id)]) and screen.count == 2

    drive(app, scenario)


@pytest.mark.parametrize("console", ["sqlite"], indirect=True)
def test_cancel_a_waiting_job_from_its_page(console: Console) -> None:
    waiting, _pending = plant(console)
    app = console.app()

    async def scenario(pilot: Any) -> None:
        detail = await open_job(pilot, waiting.id)
        assert "Cancel job" in await footer_keys(pilot)
        await pilot.press("C")
        await confirm(pilot, "y")
        await wait_for(
            pilot, lambda: detail.job is not None and detail.job.state is JobState.CANCELLED, "the job cancelled"
        )

    drive(app, scenario)
    ops = console.ops()
    assert ops.show(waiting.id).state is JobState.CANCELLED
    with pytest.raises(InvalidTransition, match="too late"):
        ops.complete_waiting(waiting.id)


@pytest.mark.parametrize("console", ["sqlite"], indirect=True)
def test_the_job_page_says_a_job_finished_before_its_cancel_was_seen(console: Console) -> None:
    b = open_backend(console.url)
    now = console.clock()
    worker = "host:tui-cancel pid:10"
    session = b.session(worker)
    session.register(WorkerInfo(worker, "tui-cancel", 10, [QUEUE], now, now))
    b.enqueue(NewJob("qadmin.examples.noop", ["late"], queue=QUEUE, run_at=now - timedelta(minutes=1)))
    [job] = session.claim([QUEUE], now, 3600.0, lambda j: True)
    assert console.ops().cancel(JobFilter(ids=(job.id,))).changed == 1
    session.complete(job, now + timedelta(seconds=1), 1.0)
    session.unregister()
    session.close()
    b.close()
    app = console.app()

    async def scenario(pilot: Any) -> None:
        detail = await open_job(pilot, job.id)
        assert detail.job is not None and detail.job.state is JobState.FINISHED
        banner = text_of(detail.query_one("#job-banner"))
        assert "cancel requested at " in banner and "— it finished first" in banner

    drive(app, scenario)
