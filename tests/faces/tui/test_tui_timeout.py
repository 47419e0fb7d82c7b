"""The Enqueue form's timeout box (SQLite and Redis)."""

from __future__ import annotations

from typing import Any

from textual.widgets import Input

from qadmin.tui.screens.jobs import JobsScreen
from tests.faces.tui.harness import Console, drive, wait_for
from tests.faces.tui.test_tui_enqueue import open_form, problem_of


def test_the_form_takes_a_timeout(console: Console) -> None:
    ops = console.ops()
    app = console.app()

    async def scenario(pilot: Any) -> None:
        form = await open_form(pilot)
        form.query_one("#class", Input).value = "qadmin.examples.noop"
        form.query_one("#timeout", Input).value = "never"
        form.query_one("#class", Input).focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: "timeout" in problem_of(form), "the timeout's problem")
        form.query_one("#timeout", Input).value = "45s"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen), "the form to close")

    drive(app, scenario)
    job = ops.show(ops.audit(limit=1)[0].selection["id"])
    assert job.timeout == 45
