"""The console around the pages: read-only, help, themes, refresh rate, backends, odd payloads."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from textual import events

from qadmin.backends import open_backend
from qadmin.config import BackendConfig, Config
from qadmin.filters import JobFilter
from qadmin.job import JobState, NewJob
from qadmin.settings import Settings, resolve
from qadmin.tui import app as tui_app
from qadmin.tui.app import QadminApp
from qadmin.tui.screens.backends import BackendsScreen
from qadmin.tui.screens.base import MUTATING
from qadmin.tui.screens.confirm import ConfirmScreen
from qadmin.tui.screens.dequeue import DequeueScreen
from qadmin.tui.screens.help import HelpScreen
from qadmin.tui.screens.job_detail import JobDetailScreen
from qadmin.tui.screens.overview import OverviewScreen
from qadmin.tui.text import when
from qadmin.tui.widgets.job_table import FIXED
from tests.faces.tui.harness import Console, drive, wait_for
from tests.faces.tui.helpers import open_job, open_jobs, overview, rows, text_of

FAILED = frozenset({JobState.FAILED})


async def footer_keys(pilot: Any) -> set[str]:
    """What the footer offers once it has caught up with the screen's bindings."""
    app = pilot.app
    await pilot.pause()
    await wait_for(pilot, lambda: bool(app.screen.query("FooterKey")), "the footer")
    return {key.description for key in app.screen.query("FooterKey")}


def test_read_only_hides_and_refuses_every_action(sqlite_console: Console) -> None:
    ops = sqlite_console.ops()
    audit_before = len(ops.audit())
    failed_before = ops.count(JobFilter(states=FAILED))
    app = sqlite_console.app(read_only=True)

    async def scenario(pilot: Any) -> None:
        await overview(pilot)
        assert "read-only" in text_of(app.screen.query_one("NavBar"))
        await pilot.press("p", "R", "U")
        jobs = await open_jobs(pilot, JobFilter(states=FAILED))
        assert not (await footer_keys(pilot)) & {"Retry", "Delete", "Unlock", "Dequeue"}
        assert "Select" in (await footer_keys(pilot))
        for key in ("r", "d", "u", "x", "R", "D", "U", "p"):
            await pilot.press(key)
        await pilot.pause()
        assert not isinstance(app.screen, (ConfirmScreen, DequeueScreen))
        commands = {c.title for c in app.get_system_commands(jobs)}
        assert "Retry" not in commands and "Delete all matching" not in commands
        app.start_bulk("retry", JobFilter(states=FAILED))  # even called directly, refused
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        await pilot.press("enter")
        detail = await wait_until_detail(pilot)
        assert not (await footer_keys(pilot)) & {"Retry", "Delete"}
        assert all(detail.check_action(action, ()) is False for action in MUTATING)

    drive(app, scenario)
    assert len(ops.audit()) == audit_before and ops.count(JobFilter(states=FAILED)) == failed_before


async def wait_until_detail(pilot: Any) -> JobDetailScreen:
    app = pilot.app
    await wait_for(
        pilot, lambda: isinstance(app.screen, JobDetailScreen) and app.screen.job is not None, "the job detail"
    )
    return app.screen  # type: ignore[return-value]


def test_help_theme_and_refresh_rate_keys(sqlite_console: Console) -> None:
    app = sqlite_console.app()

    async def scenario(pilot: Any) -> None:
        await overview(pilot)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "the help screen")
        keys = " ".join(text_of(s) for s in app.screen.query("Static"))
        for words in ("Retry all matching", "Switch backend", "every action by name", "Raw payload"):
            assert words in keys
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, OverviewScreen), "the overview again")
        assert app.current_theme.dark
        await pilot.press("t")
        assert not app.current_theme.dark
        await pilot.press("plus")
        assert app.refresh_interval == 1.0
        await pilot.press("minus", "minus")
        assert app.refresh_interval == 5.0
        await wait_for(pilot, lambda: "every 5s" in app.status[1], "the status line to show the new rate")

    drive(app, scenario)


def test_the_switcher_opens_another_named_backend(sqlite_console: Console, tmp_path: Path) -> None:
    other = f"sqlite:///{tmp_path / 'other.db'}"
    backend = open_backend(other)
    backend.init()
    backend.enqueue(NewJob("qadmin.examples.noop", [1], queue="elsewhere"))
    backend.close()
    app = sqlite_console.app(
        settings=Settings(
            url=sqlite_console.url,
            backend_name="demo",
            config=Config(
                backends={"demo": BackendConfig("demo", sqlite_console.url), "other": BackendConfig("other", other)}
            ),
        ),
        backend_name="demo",
    )

    async def scenario(pilot: Any) -> None:
        await overview(pilot)
        await pilot.press("b")
        await wait_for(pilot, lambda: isinstance(app.screen, BackendsScreen), "the backend switcher")
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: app.backend_name == "other", "the switch")
        screen = await overview(pilot)
        await wait_for(
            pilot,
            lambda: [r[0] for r in rows(screen.query_one("#queues"))] == ["elsewhere"],
            "the other backend's queues",
        )
        assert "other" in text_of(screen.query_one("NavBar"))

    drive(app, scenario)


def test_qadmin_tui_opens_the_named_backend_and_lists_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_console: Console
) -> None:
    config = tmp_path / "qadmin.toml"
    config.write_text(
        f'default = "a"\n[backends.a]\nurl = "{sqlite_console.url}"\n'
        f'[backends.b]\nurl = "sqlite:///{tmp_path / "b.db"}"\n',
        encoding="utf-8",
    )
    started: list[QadminApp] = []
    monkeypatch.setattr(QadminApp, "run", lambda self, **kw: started.append(self))
    tui_app.run(resolve(backend="b", config_file=str(config), environ={}), read_only=True, refresh=5.0)
    app = started[0]
    assert app.backend_name == "b" and sorted(app.backends) == ["a", "b"]
    assert app.read_only and app.refresh_interval == 5.0 and app.ops.face == "tui"
    app.ops.close()


def test_ruby_and_undecodable_payloads_list_and_open_as_such(sqlite_console: Console) -> None:
    ruby = "--- !ruby/object:NewsletterJob\ntext: lorem ipsum\nemails: [a@example.com, b@example.com]\n"
    broken = "--- !ruby/object:Broken\n  args: [unclosed"
    db = sqlite3.connect(sqlite_console.url.removeprefix("sqlite:///"))
    with db:
        ids = [
            db.execute(
                "INSERT INTO delayed_jobs (priority, attempts, handler, run_at, queue, created_at) "
                "VALUES (0, 0, ?, '2025-03-14 09:00:00', 'legacy', '2025-03-14 09:00:00')",
                (handler,),
            ).lastrowid
            for handler in (ruby, broken)
        ]
    db.close()
    app = sqlite_console.app()

    async def scenario(pilot: Any) -> None:
        jobs = await open_jobs(pilot, JobFilter(queues=("legacy",)))
        shown = rows(jobs.table)
        assert shown[0][4] == "NewsletterJob" and shown[1][5].startswith("undecodable")
        await pilot.press("enter")
        detail = await wait_until_detail(pilot)
        assert detail.job.id == ids[0] and detail.job.format == "delayed_job"
        payload = text_of(detail.query_one("#job-payload"))
        assert "object:NewsletterJob" in payload and "lorem ipsum" in payload
        assert not detail.query_one("#job-raw").display
        await pilot.press("escape", "down", "enter")
        await wait_for(
            pilot,
            lambda: (
                isinstance(app.screen, JobDetailScreen) and app.screen.job is not None and app.screen.job.id == ids[1]
            ),
            "the undecodable job",
        )
        detail = app.screen
        assert "Undecodable payload" in text_of(detail.query_one("#job-banner"))
        assert detail.query_one("#job-raw").display
        assert "!ruby/object:Broken" in text_of(detail.query_one("#job-raw"))

    drive(app, scenario)


def test_a_job_that_disappears_stays_on_screen_marked_gone(sqlite_console: Console) -> None:
    ops = sqlite_console.ops()
    job = ops.list_jobs(JobFilter(states=FAILED), limit=1).jobs[0]
    app = sqlite_console.app(refresh=0.5)

    async def scenario(pilot: Any) -> None:
        detail = await open_job(pilot, job.id)
        ops.delete(JobFilter(ids=(job.id,)))  # someone else deletes it meanwhile
        await wait_for(pilot, lambda: detail.gone, "the detail to notice")
        assert "no longer exists" in text_of(detail.query_one("#job-banner"))
        assert "Traceback" in text_of(detail.query_one("#job-error"))  # the last data stays
        assert not (await footer_keys(pilot)) & {"Retry", "Delete"}

    drive(app, scenario)


def test_actions_run_from_the_command_palette(sqlite_console: Console) -> None:
    app = sqlite_console.app()

    async def scenario(pilot: Any) -> None:
        await open_jobs(pilot, JobFilter(states=FAILED))
        await pilot.press("ctrl+p", *"retry all", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        assert app.screen.title_text == "Retry 13 jobs?"
        await pilot.press("n")

    drive(app, scenario)


def test_workers_and_audit_pages(sqlite_console: Console) -> None:
    ops = sqlite_console.ops()
    live = next(w for w in ops.workers() if not w.stale)
    app = sqlite_console.app()

    async def scenario(pilot: Any) -> None:
        await overview(pilot)
        await pilot.press("4")
        await wait_for(
            pilot, lambda: app.screen.query("#workers") and app.screen.query_one("#workers").row_count, "the workers"
        )
        shown = {r[1]: r for r in rows(app.screen.query_one("#workers"))}
        assert shown[live.name][0] == "live" and shown[live.name][3] == str(live.current_job)
        assert [r[0] for r in shown.values()].count("stale") == 1
        await pilot.press("enter")  # the live worker's current job
        detail = await wait_until_detail(pilot)
        assert detail.job.id == live.current_job and detail.job.locked_by == live.name
        await pilot.press("5")
        await wait_for(
            pilot, lambda: app.screen.query("#audit") and app.screen.query_one("#audit").row_count, "the audit log"
        )
        assert rows(app.screen.query_one("#audit"))[0][1:4] == ["pause", "ops@example", "cli"]

    drive(app, scenario)


@pytest.mark.parametrize(
    "page,key",
    [("1", "2"), ("1", "3"), ("1", "4"), ("1", "5"), ("1", "question_mark"), ("2", "x"), ("2", "enter"), ("3", "1")],
)
def test_a_key_typed_right_after_q_ends_the_app_cleanly(sqlite_console: Console, page: str, key: str) -> None:
    app = sqlite_console.app()

    async def scenario(pilot: Any) -> None:
        await overview(pilot)
        await pilot.press(page)
        await pilot.pause(0.2)
        # both keys at once, as a terminal delivers a quick "q x" (pilot.press waits between keys)
        for name in ("q", key):
            app.post_message(events.Key(name, name if len(name) == 1 else None))
        await pilot.pause(0.3)

    drive(app, scenario)  # run_test re-raises whatever the app raised on its way out
    assert app.return_code == 0 and app._exception is None


def test_text_cut_to_fit_ends_in_an_ellipsis(sqlite_console: Console) -> None:
    ops = sqlite_console.ops()
    locked = ops.list_jobs(JobFilter(states=frozenset({JobState.LOCKED})), limit=10).jobs
    assert locked
    app = sqlite_console.app()

    async def scenario(pilot: Any) -> None:
        jobs = await open_jobs(pilot, JobFilter(states=frozenset({JobState.LOCKED})))
        table = jobs.table
        lines = [table.render_line(y).text for y in range(1, table.row_count + 1)]
        assert len(lines) == len(locked)
        for job, line in zip(locked, lines):
            moment = when(job, sqlite_console.clock())
            assert len(moment) > FIXED["when"] and moment not in line, line
            assert moment[: FIXED["when"] - 1] + "…" in line, (moment, line)  # the WHEN column, cut
        # an error group's message (under 60 characters: the summary keeps it whole) on 80 columns
        app.show_jobs(JobFilter(states=FAILED, error="PaymentDeclined: card declined: insufficient funds"))
        await wait_for(pilot, lambda: jobs.error is not None and jobs.count is not None, "the error group's jobs")
        summary = jobs.query_one("#summary").render_line(0).text.rstrip()
        assert summary.startswith("1 job ·") or " jobs ·" in summary
        assert summary.endswith("…") and "(c clears)" not in summary, summary

    drive(app, scenario, size=(80, 24))
