"""`n` on the jobs page: the Enqueue form, run against a real backend (SQLite and Redis)."""

from __future__ import annotations

from typing import Any

from textual.widgets import Input, Static

from qadmin.filters import JobFilter
from qadmin.job import JobState
from qadmin.tui.screens.enqueue import EnqueueScreen, NewJobRequest
from qadmin.tui.screens.jobs import JobsScreen
from tests.faces.tui.harness import Console, drive, wait_for
from tests.faces.tui.helpers import jobs_page, text_of

NOOP = "qadmin.examples.noop"


async def open_form(pilot: Any) -> EnqueueScreen:
    await jobs_page(pilot)
    await pilot.press("n")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, EnqueueScreen), "the enqueue form")
    return pilot.app.screen  # type: ignore[no-any-return]


def problem_of(form: EnqueueScreen) -> str:
    return text_of(form.query_one("#problem", Static))


def test_n_enqueues_a_job_notifies_and_audits(console: Console) -> None:
    ops = console.ops()
    before = ops.count()
    app = console.app()
    notices: list[str] = []

    async def scenario(pilot: Any) -> None:
        form = await open_form(pilot)
        assert bool(form.query("#priority")) is ops.supports_priority
        assert bool(form.query("#no-priority")) is (not ops.supports_priority)
        await pilot.press(*"qadmin.examples.noop")
        form.query_one("#args", Input).value = '[1, "two"]'
        form.query_one("#kwargs", Input).value = '{"k": true}'
        form.query_one("#queue", Input).value = "mail"
        form.query_one("#when", Input).value = "2h"
        if ops.supports_priority:
            form.query_one("#priority", Input).value = "-3"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen), "the form to close")
        await wait_for(pilot, lambda: bool(app._notifications), "the notice")
        notices.extend(str(n.message) for n in app._notifications)

    drive(app, scenario)
    assert ops.count() == before + 1
    entry = ops.audit(limit=1)[0]
    assert (entry.verb, entry.face, entry.selection["class"], entry.selection["queue"]) == (
        "enqueue",
        "tui",
        NOOP,
        "mail",
    )
    job = ops.show(entry.selection["id"])
    assert (job.args, job.kwargs, job.queue, job.state) == ([1, "two"], {"k": True}, "mail", JobState.SCHEDULED)
    if ops.supports_priority:
        assert job.priority == -3
    assert any(f"Enqueued job {job.id}" in n for n in notices), notices


def test_bad_input_shows_in_the_form_and_stores_nothing(console: Console) -> None:
    ops = console.ops()
    before, audited = ops.count(), len(ops.audit())
    app = console.app()

    async def scenario(pilot: Any) -> None:
        form = await open_form(pilot)
        await pilot.press("enter")
        assert "class" in problem_of(form)
        form.query_one("#class", Input).value = NOOP
        for box, value, message in (
            ("args", "[1,", "the arguments is not valid JSON"),
            ("args", "{}", "the arguments must be a JSON array"),
            ("kwargs", "[]", "the keyword arguments must be a JSON object"),
            ("when", "next tuesday", "neither an ISO 8601 time nor a delay"),
        ):
            form.query_one(f"#{box}", Input).value = value
            await pilot.press("enter")
            await pilot.pause()
            assert message in problem_of(form), (box, problem_of(form))
            assert isinstance(app.screen, EnqueueScreen)
            form.query_one(f"#{box}", Input).value = ""
        if not ops.supports_priority:
            # the backend's own refusal, from the thread worker, shown in the form
            form._enqueue(NewJobRequest(NOOP, [], {}, None, 5, None, None))
            await wait_for(pilot, lambda: "no priorities" in problem_of(form), "the backend's refusal")
            assert isinstance(app.screen, EnqueueScreen)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen), "the form to close")

    drive(app, scenario)
    assert ops.count() == before and len(ops.audit()) == audited


def test_read_only_opens_no_enqueue_form(sqlite_console: Console) -> None:
    ops = sqlite_console.ops()
    before = ops.count()
    app = sqlite_console.app(read_only=True)

    async def scenario(pilot: Any) -> None:
        jobs = await jobs_page(pilot)
        await pilot.press("n")
        await pilot.pause()
        assert not isinstance(app.screen, EnqueueScreen)
        jobs.action_enqueue()  # even called directly, refused
        await pilot.pause()
        assert not isinstance(app.screen, EnqueueScreen)

    drive(app, scenario)
    assert ops.count(JobFilter()) == before


def test_help_lists_the_new_job_key(sqlite_console: Console) -> None:
    app = sqlite_console.app()
    sections = dict(app.help_sections())
    assert ("n", "New job") in sections["Jobs"]
    read_only = dict(sqlite_console.app(read_only=True).help_sections())
    assert ("n", "New job") not in read_only["Jobs"]
