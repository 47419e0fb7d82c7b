"""Job data the console did not write, on SQLite and Redis: escape sequences, Rich markup and
bidi controls in names, arguments, errors and lock owners; a retried job's old error; fields of
several megabytes. Stored through the backends' own verbs and driven through the pilot."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input

from qadmin.backends import Backend, open_backend
from qadmin.filters import JobFilter
from qadmin.job import JobId, JobState, NewJob, WorkerInfo, utcnow
from qadmin.ops import Ops
from qadmin.tui.app import QadminApp
from qadmin.tui.screens.dequeue import DequeueScreen
from qadmin.tui.screens.job_detail import JobDetailScreen
from qadmin.tui.text import theme_style
from tests.faces.tui.harness import drive, wait_for
from tests.faces.tui.helpers import open_jobs, overview, rows, text_of

#: markup first (it must survive a narrow column), then clear-screen, set-title, bell, a CSI as
#: one C1 byte and a right-to-left override
HOSTILE = "[bold red]x[/]\x1b[2J\x1b]0;pwned\x07\x9b31m\u202e"
#: the queue's name: a CSI as one C1 byte and a bidi override (on Redis, a failed job of a queue
#: whose name holds a C0 control is listed but not found again by its id: a backend matter)
QUEUE = "q\x9b31m\u202e"
#: what may never reach the terminal
RAW_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
#: a field bigger than anything the console should render whole
HUGE = 3 * 1024 * 1024


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    url = request.getfixturevalue(f"{request.param}_url")
    backend = open_backend(url)
    backend.init()
    backend.close()
    yield url


def claim_next(backend: Backend, worker: str) -> Any:
    # every queue: Redis reads a queue name as a pattern, and "[bold red]" is one
    job = backend.claim(["*"], worker, utcnow(), 3600.0, lambda job: True)
    assert job is not None
    return job


def plant_hostile(url: str) -> dict[str, JobId]:
    """A locked, a failed, a retried (scheduled, with its old error) and a pending job, every
    free-text field of them hostile, and a worker with a hostile name."""
    backend = open_backend(url)
    queue, worker = QUEUE, f"host:1:w{HOSTILE}"
    ids: dict[str, JobId] = {}
    try:
        backend.register_worker(
            WorkerInfo(name=worker, host="host", pid=1, queues=[queue], started_at=utcnow(), heartbeat_at=utcnow())
        )
        for name in ("failed", "retried", "locked", "pending"):  # a worker re-claims what it holds
            backend.enqueue(NewJob(f"{HOSTILE}{name}", [HOSTILE, {HOSTILE: name}], queue=queue))
            if name == "pending":
                continue
            job = claim_next(backend, worker)
            if name != "locked":
                retry_at = None if name == "failed" else utcnow() + timedelta(hours=1)
                backend.fail(job, worker, utcnow(), f"Boom{HOSTILE}: {name}\nTraceback {HOSTILE}", retry_at)
        # a failure gets an id of its own on Redis: the jobs are found again by their class
        for job in backend.find(JobFilter(), utcnow(), limit=10).jobs:
            ids[job.class_name.removeprefix(HOSTILE)] = job.id
        assert sorted(ids) == ["failed", "locked", "pending", "retried"], ids
    finally:
        backend.close()
    return ids


def app_for(url: str) -> QadminApp:
    app = QadminApp(Ops(open_backend(url), face="tui", actor="test"), backend_name="hostile")
    app.animation_level = "none"
    return app


async def detail_of(pilot: Any, job_id: JobId) -> JobDetailScreen:
    """The detail of `job_id`, opened over whatever page is on screen."""
    app = pilot.app
    if isinstance(app.screen, JobDetailScreen):
        await pilot.press("escape")
    app.open_job(job_id)
    await wait_for(
        pilot,
        lambda: isinstance(app.screen, JobDetailScreen) and app.screen.job is not None and app.screen.job.id == job_id,
        f"the detail of job {job_id}",
    )
    return app.screen  # type: ignore[return-value]


def screen_text(app: QadminApp) -> str:
    """Every character the terminal would be sent for the current screen."""
    svg = app.export_screenshot()
    return html.unescape("".join(re.findall(r">([^<]*)</text>", svg))).replace("\xa0", " ")


def assert_shown_not_acted_on(text: str, where: str) -> None:
    assert not RAW_CONTROLS.search(text), f"{where}: a control character reaches the terminal"


def test_hostile_job_data_is_shown_escaped_on_every_page(url: str) -> None:
    ids = plant_hostile(url)
    app = app_for(url)

    async def scenario(pilot: Any) -> None:
        screen = await overview(pilot)
        assert [r[0] for r in rows(screen.query_one("#queues"))] == ["q\\x9b31m\\u202e"]
        assert_shown_not_acted_on(screen_text(app), "overview")

        jobs = await open_jobs(pilot, JobFilter())
        assert jobs.count == 4
        shown = rows(jobs.table)
        assert all(r[4].startswith("[bold red]x[/]\\x1b[2J") for r in shown), shown  # the class column
        assert all("[bold red]x[/]" in r[5] for r in shown)  # the arguments column
        assert_shown_not_acted_on(screen_text(app), "jobs")

        for name, job_id in ids.items():
            detail = await detail_of(pilot, job_id)
            await pilot.press("v")  # the raw payload too
            await wait_for(pilot, lambda: detail.query_one("#job-raw").display, "the raw payload")
            title, fields = text_of(detail.query_one("#job-title")), text_of(detail.query_one("#job-fields"))
            assert f"[bold red]x[/]\\x1b[2J\\x1b]0;pwned\\x07\\x9b31m\\u202e{name}" in title
            assert "q\\x9b31m\\u202e" in fields
            if name == "locked":
                assert "host:1:w[bold red]x[/]\\x1b[2J" in fields  # locked_by
            payload = text_of(detail.query_one("#job-payload"))
            assert "[bold red]x[/]" in payload and "\\u001b[2J" in payload, payload
            if name in ("failed", "retried"):
                assert f"Boom[bold red]x[/]\\x1b[2J\\x1b]0;pwned\\x07\\x9b31m\\u202e: {name}" in text_of(
                    detail.query_one("#job-error")
                )
            for part in ("#job-title", "#job-fields", "#job-payload", "#job-error", "#job-raw", "#job-history"):
                assert_shown_not_acted_on(text_of(detail.query_one(part)), f"{name} {part}")
            assert_shown_not_acted_on(screen_text(app), f"the detail of {name}")

        # the dequeue dialog puts no name with control characters in a box (a box shows it raw)
        await detail_of(pilot, ids["pending"])
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, DequeueScreen), "the dequeue dialog")
        notes = text_of(app.screen.query_one("#notes"))
        assert "queue name holds control characters" in notes and "class name holds" in notes, notes
        assert_shown_not_acted_on(screen_text(app), "the dequeue dialog")
        await pilot.press("escape", "escape")
        # the queue picker's list
        await wait_for(pilot, lambda: app.screen is jobs, "the jobs page")
        await pilot.press("f", "enter")
        await pilot.pause()
        assert_shown_not_acted_on(screen_text(app), "the queue picker")
        await pilot.press("escape", "escape")

        await pilot.press("3")
        await wait_for(
            pilot,
            lambda: bool(app.screen.query("#errors")) and app.screen.query_one("#errors").row_count,
            "the errors page",
        )
        assert rows(app.screen.query_one("#errors"))[0][1].startswith("Boom[bold red]x[/]\\x1b[2J")
        assert_shown_not_acted_on(screen_text(app), "errors")

        await pilot.press("4")
        await wait_for(
            pilot,
            lambda: bool(app.screen.query("#workers")) and app.screen.query_one("#workers").row_count,
            "the workers page",
        )
        assert rows(app.screen.query_one("#workers"))[0][1].startswith("host:1:w[bold red]x[/]\\x1b[2J")
        assert_shown_not_acted_on(screen_text(app), "workers")

    drive(app, scenario, size=(160, 50))


def test_an_old_error_on_a_retried_job_is_shown_as_history_not_as_a_failure(url: str) -> None:
    ids = plant_hostile(url)
    app = app_for(url)

    async def scenario(pilot: Any) -> None:
        jobs = await open_jobs(pilot, JobFilter())
        table = jobs.table
        muted = theme_style(app, "text-muted")
        by_id = {str(job_id): name for name, job_id in ids.items()}
        for key in table.rows:
            name = by_id[str(key.value)]
            error = table.get_row(key)[-1]
            if name == "retried":
                assert str(error).startswith("last attempt: Boom") and error.style == muted, error
            elif name == "failed":
                assert str(error).startswith("Boom") and error.style != muted
            else:
                assert str(error) == ""
        retried = await detail_of(pilot, ids["retried"])
        assert retried.job.state is not JobState.FAILED and retried.job.last_error
        assert "error of the last attempt" in text_of(retried.query_one("#job-error-title"))
        assert retried.query_one("#job-error").content.style == muted
        failed = await detail_of(pilot, ids["failed"])
        assert text_of(failed.query_one("#job-error-title")).strip() == "last error"

    drive(app, scenario, size=(160, 50))


def test_a_field_of_megabytes_is_cut_with_its_size_and_exported_whole(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = open_backend(url)
    huge = "y" * HUGE
    try:
        args = ["big", huge, {"list": list(range(5000))}]
        backend.enqueue(NewJob("qadmin.examples.noop", args, queue="big"))
        pending = backend.enqueue(
            NewJob("qadmin.examples.noop", ["pending", huge], queue="later", run_at=utcnow() + timedelta(days=1))
        ).id
        job = claim_next(backend, "host:1:w")
        backend.fail(job, "host:1:w", utcnow(), "Boom\n" + "z" * HUGE, None)
    finally:
        backend.close()
    monkeypatch.chdir(tmp_path)
    app = app_for(url)

    async def scenario(pilot: Any) -> None:
        jobs = await open_jobs(pilot, JobFilter(queues=("big",)))
        [row] = rows(jobs.table)
        assert row[5].startswith('["big", "yyy') and row[5].endswith("…") and len(row[5]) < 200
        await pilot.press("enter")
        await wait_for(
            pilot, lambda: isinstance(app.screen, JobDetailScreen) and app.screen.job is not None, "the job detail"
        )
        detail: JobDetailScreen = app.screen  # type: ignore[assignment]
        await pilot.press("v")
        await wait_for(pilot, lambda: detail.query_one("#job-raw").display, "the raw payload")
        payload = text_of(detail.query_one("#job-payload"))
        assert f"[+{HUGE - 2000:,} characters, 3.0M in all]" in payload and "+4,800 more items" in payload
        assert len(payload) < 20_000
        assert detail.job is not None
        # Redis keeps the head of a long error itself
        parts = ("#job-error", "#job-raw") if len(detail.job.last_error or "") > HUGE else ("#job-raw",)
        for part in parts:
            shown = text_of(detail.query_one(part))
            assert "truncated: 20,000 of" in shown and "(e exports the whole job to a file)" in shown, part
            assert len(shown) < 40_000
        await pilot.press("e")
        exported = tmp_path / f"qadmin-job-{re.sub(r'[^A-Za-z0-9_.-]+', '_', str(job.id))}.json"
        await wait_for(pilot, exported.exists, "the export")
        await wait_for(pilot, lambda: bool(app._notifications), "the notice of the export")
        whole = json.loads(exported.read_text(encoding="utf-8"))
        assert whole["args"][1] == huge and whole["last_error"] == detail.job.last_error
        assert huge in whole["raw"]
        assert exported.stat().st_mode & 0o077 == 0  # job data is for its owner only
        # the dequeue dialog does not put megabytes of arguments in its box
        await pilot.press("escape")
        await detail_of(pilot, pending)
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, DequeueScreen), "the dequeue dialog")
        assert "too long to edit here" in text_of(app.screen.query_one("#notes"))
        assert app.screen.query_one("#args", Input).value == ""

    drive(app, scenario, size=(160, 50))
