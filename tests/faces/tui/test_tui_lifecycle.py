"""Run now (g) and kill (K) on the job detail: shown only where they apply, through the same
preview → confirm → apply as every action, and hidden and refused when read-only."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from qadmin.backends import open_backend
from qadmin.job import Job, JobState, NewJob
from qadmin.tui.screens.base import MUTATING
from qadmin.tui.screens.confirm import ConfirmScreen
from tests.faces.tui.harness import Console, drive, wait_for
from tests.faces.tui.helpers import confirm, open_job, text_of
from tests.faces.tui.test_tui_console import footer_keys

ERROR = "ValueError: boom\n  File x"


def plant(console: Console) -> tuple[Job, Job]:
    """A scheduled job that never ran and a retry waiting out its backoff, at the console's time."""
    now = console.clock()
    b = open_backend(console.url)
    try:
        later = b.enqueue(NewJob("qadmin.examples.noop", ["later"], queue="life", run_at=now + timedelta(hours=1)))
        job = b.enqueue(NewJob("qadmin.examples.noop", ["again"], queue="life2", run_at=now - timedelta(minutes=1)))
        claimed = b.claim(["life2"], "w", now, 3600, lambda j: j.id == job.id)
        assert claimed is not None
        b.fail(claimed, "w", now, ERROR, now + timedelta(hours=1))
        return later, b.get(job.id, now)
    finally:
        b.close()


def test_run_now_and_kill_from_the_job_detail(console: Console) -> None:
    later, waiting = plant(console)
    ops = console.ops()
    app = console.app()

    async def scenario(pilot: Any) -> None:
        detail = await open_job(pilot, later.id)
        keys = await footer_keys(pilot)
        assert "Run now" in keys and "Kill" not in keys
        await pilot.press("K")  # hidden: a job that never ran has no retry to kill
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        await pilot.press("g")
        dialog = await confirm(pilot, "y")
        assert dialog.title_text == "Run now 1 job?"
        await wait_for(
            pilot, lambda: detail.job is not None and detail.job.state is JobState.PENDING, "the job pending"
        )
        await pilot.press("escape")  # back to the overview, then the job waiting for its retry
        detail = await open_job(pilot, waiting.id)
        assert {"Run now", "Kill"} <= await footer_keys(pilot)
        await pilot.press("K")
        dialog = await confirm(pilot, "y")
        assert dialog.title_text == "Kill 1 job?"
        await wait_for(pilot, lambda: detail.job is not None and detail.job.state is JobState.FAILED, "the job failed")
        assert "kill" in text_of(detail.query_one("#job-history"))

    drive(app, scenario)
    assert ops.show(later.id).state is JobState.PENDING
    killed = ops.show(waiting.id)
    assert killed.state is JobState.FAILED and killed.attempts == 1 and killed.last_error == ERROR
    assert [e.verb for e in ops.audit(limit=2)] == ["kill", "run_now"]


def test_read_only_hides_and_refuses_run_now_and_kill(sqlite_console: Console) -> None:
    _, waiting = plant(sqlite_console)
    app = sqlite_console.app(read_only=True)

    async def scenario(pilot: Any) -> None:
        detail = await open_job(pilot, waiting.id)
        assert not (await footer_keys(pilot)) & {"Run now", "Kill"}
        await pilot.press("g", "K")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        assert {"run_now", "kill"} <= MUTATING
        assert detail.check_action("run_now", ()) is False and detail.check_action("kill", ()) is False

    drive(app, scenario)
    assert sqlite_console.ops().show(waiting.id).state is JobState.SCHEDULED
