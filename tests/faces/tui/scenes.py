"""How to reach each screen with the keyboard, shared by the snapshot tests and
scripts/screenshots_tui.py (so the README shows exactly what the tests check)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from textual.widgets import Input

from qadmin.backends import open_backend
from qadmin.ops import Ops
from qadmin.recurring import SOURCE_CONFIG, Schedule
from qadmin.tui.app import QadminApp
from qadmin.tui.screens.confirm import ConfirmScreen
from qadmin.tui.screens.enqueue import EnqueueScreen
from qadmin.tui.screens.help import HelpScreen
from qadmin.tui.screens.job_detail import JobDetailScreen
from tests.faces.tui.demo_data import ACTOR, NOW, clock, pause_exports, run_thrice, seed
from tests.faces.tui.history_data import DEMO_CLASSES, demo_day, record

#: a scene: (terminal size, what to do once the overview has loaded)
Scene = tuple[tuple[int, int], Callable[[Any], Awaitable[None]]]


def demo_database(directory: Path) -> str:
    """A SQLite file with the fixed-time demo data; returns its URL."""
    url = f"sqlite:///{directory / 'demo.db'}"
    backend = open_backend(url)
    seed(backend)
    pause_exports(Ops(backend, face="cli", actor=ACTOR, clock=clock))
    backend.close()
    return url


def demo_app(url: str, **kwargs: Any) -> QadminApp:
    ops = Ops(open_backend(url), face="tui", actor=ACTOR, clock=clock)
    kwargs.setdefault("backend_name", "demo")
    app = QadminApp(ops, **kwargs)
    app.animation_level = "none"  # a snapshot never catches a tab underline half-way
    return app


async def settle(pilot: Any, done: Callable[[QadminApp], bool] = lambda app: True, timeout: float = 10.0) -> None:
    """Let every backend call finish and its message be handled, until `done(app)`."""
    app = pilot.app
    deadline = time.monotonic() + timeout
    while True:
        await app.workers.wait_for_complete()
        await pilot.pause()
        if app.status[0] == "ok" and done(app) and not any(w.is_running for w in app.workers):
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"the console did not settle within {timeout}s (status {app.status!r})")
        await pilot.pause(0.05)
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


async def overview(pilot: Any) -> None:
    await settle(pilot, _queues_laid_out)
    # and painted at those widths before the picture is taken
    pilot.app.screen.query_one("#queues").refresh(layout=True)
    await pilot.pause()
    await pilot.pause()


def _queues_laid_out(app: QadminApp) -> bool:
    """Rows are in and the QUEUE column has grown to its longest name: a DataTable widens its
    columns on a later refresh than the one that adds the rows, and a loaded machine once caught
    the snapshot in between (names cut to the header's width)."""
    table = app.screen.query_one("#queues")
    if not table.row_count:
        return False
    names = [str(table.get_cell_at((row, 0))) for row in range(table.row_count)]
    return table.columns["queue"].content_width >= max(len(name) for name in names)


async def failed_jobs(pilot: Any) -> None:
    await overview(pilot)
    await pilot.press("2")
    await settle(pilot)
    await pilot.press(*"]" * 5)  # All -> Pending -> Scheduled -> Locked -> Stale -> Failed
    await settle(pilot, lambda app: app.screen.count == 13)


async def job_detail(pilot: Any) -> None:
    await failed_jobs(pilot)
    await pilot.press("enter")
    await settle(pilot, lambda app: isinstance(app.screen, JobDetailScreen) and app.screen.job is not None)


async def job_attempts(pilot: Any) -> None:
    """A job that failed, timed out, then completed: its attempts, recorded by a worker session."""
    await overview(pilot)
    job_id = run_thrice(pilot.app.ops.backend)
    pilot.app.push_screen(JobDetailScreen(job_id))
    await settle(pilot, lambda app: isinstance(app.screen, JobDetailScreen) and app.screen.job is not None)


def _page(key: str, table: str) -> Callable[[Any], Awaitable[None]]:
    async def go(pilot: Any) -> None:
        await overview(pilot)
        await pilot.press(key)
        await settle(pilot, lambda app: bool(app.screen.query_one(table).row_count))

    return go


async def confirm_retry(pilot: Any) -> None:
    await failed_jobs(pilot)
    await pilot.press("R")
    await settle(pilot, lambda app: isinstance(app.screen, ConfirmScreen))


async def help_screen(pilot: Any) -> None:
    await overview(pilot)
    await pilot.press("question_mark")
    await settle(pilot, lambda app: isinstance(app.screen, HelpScreen))


async def enqueue_form(pilot: Any) -> None:
    await overview(pilot)
    await pilot.press("2")
    await settle(pilot)
    await pilot.press("n")
    await settle(pilot, lambda app: isinstance(app.screen, EnqueueScreen))
    form = pilot.app.screen
    for field, value in (
        ("class", "qadmin.examples.SendEmail"),
        ("args", '["ada@example.com", "Welcome"]'),
        ("queue", "email"),
        ("when", "15m"),
        ("timeout", "10m"),
    ):
        form.query_one(f"#{field}", Input).value = value
    await settle(pilot)


async def light_overview(pilot: Any) -> None:
    await overview(pilot)
    await pilot.press("t")
    await settle(pilot, lambda app: app.theme == "textual-light")


def save_schedules(ops: Ops) -> None:
    """The recurring schedules of the screenshots (web and TUI): from qadmin.toml and the Python
    API, one disabled, two that ran (by "run now", at earlier times of `ops`' clock)."""
    for schedule in RECURRING:
        Ops(ops.backend, face="cli", actor=ACTOR, clock=ops.clock).recurring.save(schedule)
    for name, hours_ago in (("nightly-report", 6.5), ("sync-inventory", 0.05)):
        earlier = ops.clock() - timedelta(hours=hours_ago)
        Ops(ops.backend, face="cli", actor=ACTOR, clock=lambda: earlier).recurring.run_now(name)


RECURRING = (
    Schedule(
        "nightly-report",
        "reports.Nightly",
        args=["sales"],
        queue="reports",
        cron="0 3 * * *",
        timezone="Europe/Paris",
        description="yesterday's sales, mailed",
        source=SOURCE_CONFIG,
    ),
    Schedule("sync-inventory", "qadmin.examples.noop", args=["inventory"], queue="images", every=300.0),
    Schedule("weekly-digest", "qadmin.examples.SendEmail", args=["team@example.com", "Digest"], cron="0 9 * * 1"),
    Schedule("purge-tmp", "qadmin.examples.noop", every=3600.0, enabled=False, source=SOURCE_CONFIG),
)


async def recurring_page(pilot: Any) -> None:
    await overview(pilot)
    save_schedules(pilot.app.ops)
    await pilot.press("6")
    await settle(pilot, lambda app: app.screen.query_one("#recurring").row_count == len(RECURRING))


async def history_page(pilot: Any) -> None:
    """A day of history (`history_data.demo_day`) on the History page, 24h."""
    await overview(pilot)
    record(pilot.app.ops.backend.safe_url, demo_day(NOW))
    await pilot.press("7")
    await settle(pilot, lambda app: len(app.screen.query("#latency HistoryChart")) == len(DEMO_CLASSES))


async def metrics_page(pilot: Any) -> None:
    await overview(pilot)
    record(pilot.app.ops.backend.safe_url, demo_day(NOW))
    await pilot.press("8")
    await settle(pilot, lambda app: app.screen.query_one("#metrics").row_count == len(DEMO_CLASSES))


#: name -> scene; screenshots are written as screenshots/tui-<name>.svg
SCENES: dict[str, Scene] = {
    "overview": ((120, 34), overview),
    "jobs": ((120, 34), failed_jobs),
    "job": ((120, 40), job_detail),
    "errors": ((120, 24), _page("3", "#errors")),
    "workers": ((120, 16), _page("4", "#workers")),
    "audit": ((120, 16), _page("5", "#audit")),
    "confirm": ((120, 34), confirm_retry),
    "help": ((100, 40), help_screen),
    "enqueue": ((120, 40), enqueue_form),
    "attempts": ((120, 40), job_attempts),
    "overview-light": ((120, 34), light_overview),
    "overview-80x24": ((80, 24), overview),
    "jobs-80x24": ((80, 24), failed_jobs),
    "recurring": ((172, 12), recurring_page),
    "history": ((120, 36), history_page),
    "metrics": ((120, 14), metrics_page),
}
