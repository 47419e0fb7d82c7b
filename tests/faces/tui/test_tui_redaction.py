"""Sensitive arguments in the console: the jobs list, the job detail (payload, raw payload, history),
the audit page and the confirm dialog's sample never show them; `V` on the job detail reveals them
and is audited once; an edit over the redacted form keeps the hidden values. On SQLite and Redis."""

from __future__ import annotations

import json
from typing import Any

from textual.widgets import DataTable, Input

from qadmin.backends import open_backend
from qadmin.filters import JobFilter
from qadmin.job import Job, NewJob
from qadmin.redaction import MARKER
from qadmin.tui.screens.audit import AuditScreen
from qadmin.tui.screens.edit import EditScreen
from qadmin.tui.screens.job_detail import JobDetailScreen
from tests.faces.tui.harness import Console, drive, wait_for
from tests.faces.tui.helpers import open_job, open_jobs, rows, text_of

SECRETS = {"password": "hunter2", "card": "4111 1111 1111 1111", "token": "abc"}
LEAKS = ("hunter2", "4111", "'abc'", '"abc"')


def leaks(text: str) -> list[str]:
    return [s for s in LEAKS if s in text]


def plant(console: Console) -> Job:
    b = open_backend(console.url)
    try:
        return b.enqueue(NewJob("qadmin.examples.noop", ["to@example.com", SECRETS], queue="secrets"))
    finally:
        b.close()


def screen_text(screen: Any) -> str:
    """Every Static and table cell of a screen, as plain text."""
    parts = [text_of(w) for w in screen.query("Static")]
    parts += [" ".join(r) for t in screen.query(DataTable) for r in rows(t)]
    return "\n".join(parts)


def test_the_console_never_shows_the_values_until_v_reveals_them(console: Console) -> None:
    job = plant(console)
    ops = console.ops()
    app = console.app()

    async def scenario(pilot: Any) -> None:
        listing = await open_jobs(pilot, JobFilter(queues=("secrets",)))
        assert not leaks(screen_text(listing))
        [listed] = listing.table.jobs.values()
        assert listed.args[1] == {"password": MARKER, "card": MARKER, "token": MARKER}
        app.open_job(job.id)
        await wait_for(pilot, lambda: isinstance(app.screen, JobDetailScreen) and app.screen.has_hidden, "the job")
        detail = app.screen
        assert isinstance(detail, JobDetailScreen)
        await pilot.press("v")  # the raw payload too
        await pilot.pause()
        shown = screen_text(detail)
        assert not leaks(shown) and MARKER in shown and "V reveals" in shown, shown
        assert detail.check_action("reveal", ()) is True
        await pilot.press("V")
        await wait_for(pilot, lambda: detail.reveal == "shown" and "hunter2" in screen_text(detail), "the reveal")
        assert detail.check_action("reveal", ()) is False
        detail.refresh_data(force=True)  # a refresh while shown is no second reveal
        await pilot.pause(0.3)
        await pilot.press("escape")
        await pilot.press("escape")
        await pilot.press("5")
        await wait_for(
            pilot, lambda: isinstance(app.screen, AuditScreen) and bool(app.screen.query(DataTable)), "audit"
        )
        await pilot.pause(0.3)
        assert not leaks(screen_text(app.screen))

    drive(app, scenario)
    reveals = [e for e in ops.audit(limit=20) if e.verb == "reveal"]
    assert len(reveals) == 1 and (reveals[0].face, reveals[0].selection) == ("tui", {"id": str(job.id)})


def test_an_edit_over_the_redacted_form_keeps_the_hidden_values(console: Console) -> None:
    job = plant(console)
    ops = console.ops()
    app = console.app()

    async def scenario(pilot: Any) -> None:
        detail = await open_job(pilot, job.id)
        await pilot.press("E")
        await wait_for(pilot, lambda: isinstance(app.screen, EditScreen), "the edit form")
        form = app.screen
        args = form.query_one("#args", Input)
        assert not leaks(args.value) and MARKER in args.value
        args.value = args.value.replace("to@example.com", "new@example.com")
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, EditScreen), "the form to close")
        await wait_for(
            pilot,
            lambda: detail.job is not None and "new@example.com" in json.dumps(detail.job.args),
            "the edited job",
        )

    drive(app, scenario)
    [after] = ops.list_jobs(JobFilter(queues=("secrets",))).jobs
    assert after.args == ["new@example.com", SECRETS]
    assert not leaks(json.dumps([e.to_dict() for e in ops.redaction.audit(ops.audit(limit=5))]))
