"""Pilot steps the console tests share: reach a page, read what a widget shows."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console as RichConsole
from textual.widgets import DataTable

from qadmin.filters import JobFilter
from qadmin.tui.screens.confirm import ConfirmScreen
from qadmin.tui.screens.job_detail import JobDetailScreen
from qadmin.tui.screens.jobs import STATE_TABS, JobsScreen
from qadmin.tui.screens.overview import OverviewScreen
from qadmin.tui.screens.progress import ProgressScreen
from tests.faces.tui.harness import wait_for


def text_of(widget: Any) -> str:
    """What a Static shows, as plain text."""
    console = RichConsole(width=200, file=io.StringIO(), record=True, color_system=None)
    console.print(widget.content)
    return console.export_text()


def rows(table: DataTable) -> list[list[str]]:
    return [[str(cell) for cell in table.get_row(key)] for key in table.rows]


async def overview(pilot: Any) -> OverviewScreen:
    app = pilot.app
    await wait_for(
        pilot, lambda: isinstance(app.screen, OverviewScreen) and app.screen.stats is not None, "the overview to load"
    )
    return app.screen


async def jobs_page(pilot: Any, state: str = "all") -> JobsScreen:
    """Press 2, then ] until the state's tab is active; returns the loaded jobs screen."""
    app = pilot.app
    await overview(pilot)
    await pilot.press("2")
    await wait_for(
        pilot, lambda: isinstance(app.screen, JobsScreen) and app.screen.count is not None, "the jobs page to load"
    )
    screen: JobsScreen = app.screen  # type: ignore[assignment]
    keys = [key for key, _ in STATE_TABS]
    current = lambda: screen.query_one("#states").active
    while current() != state:
        await pilot.press("right_square_bracket")
    await loaded(pilot, screen)
    assert current() in keys
    return screen


async def open_jobs(pilot: Any, selection: JobFilter) -> JobsScreen:
    """The jobs page showing `selection`, reached the way the overview and errors pages go there
    (quicker than keys, for tests whose subject is what comes next)."""
    app = pilot.app
    await overview(pilot)
    app.show_jobs(selection)
    await wait_for(
        pilot, lambda: isinstance(app.screen, JobsScreen) and app.screen.selection == selection, "the jobs page"
    )
    await loaded(pilot, app.screen)
    return app.screen  # type: ignore[return-value]


async def open_job(pilot: Any, job_id: Any) -> JobDetailScreen:
    app = pilot.app
    await overview(pilot)
    app.open_job(job_id)
    await wait_for(
        pilot, lambda: isinstance(app.screen, JobDetailScreen) and app.screen.job is not None, "the job detail"
    )
    return app.screen  # type: ignore[return-value]


async def loaded(pilot: Any, screen: JobsScreen) -> None:
    """Wait until the jobs page shows the answer to its current filter."""
    # the count comes after the page of the same request, and a new filter forgets the old count
    await wait_for(pilot, lambda: screen.count is not None and not screen._inflight, "the jobs of the current filter")


async def move_to_queue(pilot: Any, screen: OverviewScreen, queue: str) -> None:
    table = screen.query_one("#queues", DataTable)
    for _ in range(table.row_count):
        if screen.current_queue == queue:
            return
        await pilot.press("down")
    assert screen.current_queue == queue, f"no queue {queue!r} on the overview"


async def confirm(pilot: Any, answer: str = "y", report: bool = True) -> ConfirmScreen:
    """Wait for the confirmation, answer it; with "y", wait for the report and close it."""
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
    dialog: ConfirmScreen = app.screen  # type: ignore[assignment]
    await pilot.press(answer)
    if answer == "y" and dialog.can_confirm and report:
        await wait_for(pilot, lambda: isinstance(app.screen, ProgressScreen) and app.screen.done, "the report")
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, ProgressScreen), "the report to close")
    return dialog
