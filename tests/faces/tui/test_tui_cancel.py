"""Cancel (C) on the job detail: shown only where it applies, through the same preview → confirm →
apply as every action, the job then on the Cancelled tab; hidden and refused when read-only."""

from __future__ import annotations

from typing import Any

from qadmin.backends import open_backend
from qadmin.job import Job, JobState, NewJob
from qadmin.tui.screens.base import MUTATING
from qadmin.tui.screens.confirm import ConfirmScreen
from tests.faces.tui.harness import Console, drive, wait_for
from tests.faces.tui.helpers import confirm, open_job
from tests.faces.tui.test_tui_console import footer_keys


def plant(console: Console) -> Job:
    b = open_backend(console.url)
    try:
        return b.enqueue(NewJob("qadmin.examples.noop", ["waiting"], queue="cancel"))
    finally:
        b.close()


def test_cancel_from_the_job_detail(console: Console) -> None:
    job = plant(console)
    ops = console.ops()
    app = console.app()

    async def scenario(pilot: Any) -> None:
        detail = await open_job(pilot, job.id)
        assert "Cancel job" in await footer_keys(pilot)
        await pilot.press("C")
        dialog = await confirm(pilot, "y")
        assert dialog.title_text == "Cancel 1 job?"
        await wait_for(
            pilot, lambda: detail.job is not None and detail.job.state is JobState.CANCELLED, "the job cancelled"
        )
        keys = await footer_keys(pilot)
        assert "Cancel job" not in keys and "Delete" not in keys

    drive(app, scenario)
    assert ops.show(job.id).state is JobState.CANCELLED
    assert [e.verb for e in ops.audit(limit=1)] == ["cancel"]


def test_read_only_hides_and_refuses_cancel(sqlite_console: Console) -> None:
    job = plant(sqlite_console)
    app = sqlite_console.app(read_only=True)

    async def scenario(pilot: Any) -> None:
        detail = await open_job(pilot, job.id)
        assert "Cancel job" not in await footer_keys(pilot)
        await pilot.press("C")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        assert "cancel_job" in MUTATING
        assert detail.check_action("cancel_job", ()) is False

    drive(app, scenario)
    assert sqlite_console.ops().show(job.id).state is not JobState.CANCELLED
