"""`E` on the job detail: the Edit form (a thread worker calls `Ops.edit`), errors shown in the
form with nothing changed, the page following the job (a Redis id follows its bytes), hidden
and refused when read-only. On SQLite and Redis."""

from __future__ import annotations

from typing import Any

from textual.widgets import Input, Static

from qadmin.backends import open_backend
from qadmin.job import Job, NewJob
from qadmin.tui.screens.base import MUTATING
from qadmin.tui.screens.edit import EditScreen
from tests.faces.tui.harness import Console, drive, wait_for
from tests.faces.tui.helpers import open_job, text_of
from tests.faces.tui.test_tui_console import footer_keys


def plant(console: Console) -> Job:
    b = open_backend(console.url)
    try:
        return b.enqueue(NewJob("qadmin.examples.noop", [1, "two"], queue="edits"))
    finally:
        b.close()


async def open_form(pilot: Any, job: Job) -> EditScreen:
    detail = await open_job(pilot, job.id)
    # kept out of the footer (the job page's is full), listed in the help
    assert detail.check_action("edit", ()) is True
    assert ("E", "Edit") in dict(pilot.app.help_sections())["Job detail"]
    await pilot.press("E")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, EditScreen), "the edit form")
    return pilot.app.screen  # type: ignore[no-any-return]


def test_e_edits_the_job_notifies_audits_and_follows_it(console: Console) -> None:
    job = plant(console)
    ops = console.ops()
    app = console.app()
    notices: list[str] = []

    async def scenario(pilot: Any) -> None:
        form = await open_form(pilot, job)
        assert form.query_one("#args", Input).value == '[1, "two"]'
        assert form.query_one("#queue", Input).value == "edits"
        assert bool(form.query("#priority")) is ops.supports_priority
        form.query_one("#args", Input).value = "[2]"
        form.query_one("#queue", Input).value = "edited"
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, EditScreen), "the form to close")
        detail = app.screen
        await wait_for(
            pilot,
            lambda: detail.job is not None and detail.job.args == [2],  # type: ignore[attr-defined]
            "the page to show the edited job",
        )
        await wait_for(pilot, lambda: bool(app._notifications), "the notice")
        notices.extend(str(n.message) for n in app._notifications)

    drive(app, scenario)
    entry = ops.audit(limit=1)[0]
    assert (entry.verb, entry.face) == ("edit", "tui")
    assert entry.selection["before"] == {"args": [1, "two"], "queue": "edits"}
    assert entry.selection["after"] == {"args": [2], "queue": "edited"}
    assert any(f"Edited job {job.id}: args, queue" in n for n in notices), notices


def test_bad_input_shows_in_the_form_and_changes_nothing(console: Console) -> None:
    job = plant(console)
    ops = console.ops()
    audited = len(ops.audit())
    app = console.app()

    async def scenario(pilot: Any) -> None:
        form = await open_form(pilot, job)
        problem = lambda: text_of(form.query_one("#problem", Static))  # noqa: E731
        await pilot.press("enter")
        assert "Nothing to edit" in problem()
        for box, value, message in (
            ("args", "[1,", "the arguments is not valid JSON"),
            ("kwargs", "[]", "the keyword arguments must be a JSON object"),
            ("run_at", "soon", "run at 'soon' is not an ISO 8601 time"),
        ):
            form.query_one(f"#{box}", Input).value = value
            await pilot.press("enter")
            assert message in problem(), problem()
            form.query_one(f"#{box}", Input).value = (
                "" if box == "run_at" else ('[1, "two"]' if box == "args" else "{}")
            )
        assert isinstance(app.screen, EditScreen)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, EditScreen), "the form to close")

    drive(app, scenario)
    assert ops.show(job.id).args == [1, "two"] and len(ops.audit()) == audited


def test_read_only_hides_and_refuses_edit(sqlite_console: Console) -> None:
    job = plant(sqlite_console)
    app = sqlite_console.app(read_only=True)

    async def scenario(pilot: Any) -> None:
        detail = await open_job(pilot, job.id)
        assert "Edit" not in await footer_keys(pilot)
        await pilot.press("E")
        await pilot.pause()
        assert not isinstance(app.screen, EditScreen)
        assert "edit" in MUTATING and detail.check_action("edit", ()) is False

    drive(app, scenario)
    assert sqlite_console.ops().show(job.id).args == [1, "two"]
