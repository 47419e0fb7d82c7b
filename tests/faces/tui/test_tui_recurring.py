"""The Recurring page (6): each schedule with its timing, next and last run and state; e, d and g
enable, disable and run now, each after the confirmation, audited with face "tui"; hidden and
refused when read-only. On real backends (SQLite, PostgreSQL and Redis)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable

from qadmin.backends import open_backend
from qadmin.recurring import SOURCE_CONFIG, Schedule
from qadmin.tui.screens.confirm import ConfirmScreen
from qadmin.tui.screens.job_detail import JobDetailScreen
from qadmin.tui.screens.recurring import RecurringScreen, moment
from tests.faces.tui.demo_data import clock as fixed_clock
from tests.faces.tui.harness import Console, drive, wait_for
from tests.faces.tui.helpers import overview, rows, text_of
from tests.faces.tui.scenes import demo_database
from tests.faces.tui.test_tui_console import footer_keys

NIGHTLY = Schedule(
    "nightly-report", "reports.Nightly", args=[7], queue="reports", cron="0 3 * * *", source=SOURCE_CONFIG
)
HEARTBEAT = Schedule("heartbeat", "ops.Ping", every=30.0, enabled=False)


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
        pytest.param("redis", id="redis", marks=pytest.mark.redis),
    ]
)
def rec_console(request: pytest.FixtureRequest, tmp_path: Path) -> Console:
    if request.param == "sqlite":
        console = Console("sqlite", demo_database(tmp_path), fixed_clock)
    else:
        url = request.getfixturevalue(f"{request.param}_url")
        backend = open_backend(url)
        backend.init()
        backend.close()
        console = Console(request.param, url, fixed_clock)
    ops = console.ops()
    ops.recurring.save(NIGHTLY)
    ops.recurring.save(HEARTBEAT)
    ops.close()
    return console


async def recurring_page(pilot: Any) -> RecurringScreen:
    app = pilot.app
    await overview(pilot)
    await pilot.press("6")
    await wait_for(
        pilot,
        lambda: isinstance(app.screen, RecurringScreen) and app.screen.query_one(DataTable).row_count == 2,
        "the recurring page to load",
    )
    return app.screen  # type: ignore[return-value]


def _row(screen: RecurringScreen, name: str) -> list[str]:
    table = screen.query_one(DataTable)
    return next(r for r in rows(table) if r[1] == name)


async def _cursor_on(pilot: Any, screen: RecurringScreen, name: str) -> None:
    table = screen.query_one(DataTable)
    table.move_cursor(row=list(screen.entries).index(name), animate=False)
    await pilot.pause()
    assert screen.current_entry is not None and screen.current_entry.schedule.name == name


async def _answer(pilot: Any, answer: str) -> ConfirmScreen:
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
    dialog: ConfirmScreen = app.screen  # type: ignore[assignment]
    await pilot.press(answer)
    await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen), "the confirmation to close")
    return dialog


def test_the_page_lists_schedules_with_next_and_last_run(rec_console: Console) -> None:
    app = rec_console.app()
    now = rec_console.clock()

    async def scenario(pilot: Any) -> None:
        screen = await recurring_page(pilot)
        nightly = _row(screen, "nightly-report")
        assert nightly[0] == "enabled" and nightly[2] == "0 3 * * *" and nightly[3] == "reports.Nightly"
        assert nightly[4] == "reports" and moment(NIGHTLY.next_tick(now)) in nightly[5] and nightly[6] == "never"
        assert nightly[8] == "qadmin.toml"
        heartbeat = _row(screen, "heartbeat")
        assert heartbeat[0] == "disabled" and heartbeat[2] == "every 30s" and heartbeat[5] == "— (disabled)"
        assert heartbeat[4] == "(its own)" and heartbeat[8] == "api"
        assert "2 schedules · 1 enabled" in text_of(screen.query_one("#recurring-summary"))
        assert {"Enable", "Disable", "Run now"} <= await footer_keys(pilot)
        sections = dict(app.help_sections())
        assert ("6", "Recurring") in sections["Everywhere"]
        assert [d for _, d in sections["Recurring"]] == ["Last job", "Enable", "Disable", "Run now"]

    drive(app, scenario)


def test_keys_enable_disable_and_run_now_after_the_confirmation(rec_console: Console) -> None:
    ops = rec_console.ops()
    app = rec_console.app()

    async def scenario(pilot: Any) -> None:
        screen = await recurring_page(pilot)
        await _cursor_on(pilot, screen, "nightly-report")
        await pilot.press("d")
        dialog = await _answer(pilot, "n")  # cancelled: nothing changes
        assert dialog.title_text == "Disable schedule nightly-report?"
        assert ops.recurring.get("nightly-report").schedule.enabled
        await pilot.press("d")
        await _answer(pilot, "y")
        await wait_for(pilot, lambda: _row(screen, "nightly-report")[0] == "disabled", "the row disabled")
        assert not ops.recurring.get("nightly-report").schedule.enabled
        await pilot.press("e")
        dialog = await _answer(pilot, "y")
        assert dialog.title_text == "Enable schedule nightly-report?"
        await wait_for(pilot, lambda: _row(screen, "nightly-report")[0] == "enabled", "the row enabled")
        await pilot.press("g")
        dialog = await _answer(pilot, "y")
        assert dialog.title_text == "Run schedule nightly-report now?" and "reports.Nightly" in str(dialog.body)
        await wait_for(pilot, lambda: _row(screen, "nightly-report")[6] != "never", "the last run shown")
        entry = ops.recurring.get("nightly-report")
        assert entry.last_job_id is not None and _row(screen, "nightly-report")[7] == str(entry.last_job_id)
        job = ops.show(entry.last_job_id)
        assert (job.class_name, job.args, job.queue) == ("reports.Nightly", [7], "reports")
        await pilot.press("enter")  # the last job's page
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, JobDetailScreen) and str(app.screen.job_id) == str(entry.last_job_id),
            "the last job's page",
        )

    drive(app, scenario)
    verbs = [(a.verb, a.face, a.selection["schedule"]) for a in ops.audit(limit=3)]
    assert verbs == [
        ("recurring-run-now", "tui", "nightly-report"),
        ("recurring-enable", "tui", "nightly-report"),
        ("recurring-disable", "tui", "nightly-report"),
    ]
    ops.close()


def test_read_only_hides_and_refuses_the_changes(rec_console: Console) -> None:
    ops = rec_console.ops()
    app = rec_console.app(read_only=True)

    async def scenario(pilot: Any) -> None:
        screen = await recurring_page(pilot)
        keys = await footer_keys(pilot)
        assert not {"Enable", "Disable", "Run now"} & keys
        assert [d for _, d in dict(app.help_sections())["Recurring"]] == ["Last job"]
        await _cursor_on(pilot, screen, "nightly-report")
        for key in ("d", "g"):
            await pilot.press(key)
            await pilot.pause()
            assert not isinstance(app.screen, ConfirmScreen)

    drive(app, scenario)
    entry = ops.recurring.get("nightly-report")
    assert entry.schedule.enabled and entry.last_run_at is None
    ops.close()
