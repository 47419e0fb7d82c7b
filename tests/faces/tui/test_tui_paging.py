"""A big queue opens at once (keyset pages, the count afterwards) and sorts by the backend's orders."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from textual.widgets import ProgressBar

from qadmin.backends import open_backend
from qadmin.filters import JobFilter
from qadmin.job import NewJob
from qadmin.tui.screens.confirm import ConfirmScreen
from qadmin.tui.screens.jobs import PAGE, JobsScreen
from qadmin.tui.screens.overview import OverviewScreen
from qadmin.tui.screens.progress import ProgressScreen
from tests.faces.tui.demo_data import NOW
from tests.faces.tui.harness import Console, drive, wait_for
from tests.faces.tui.helpers import loaded, open_jobs, text_of

#: jobs in the big queue: enough for several pages, few enough to insert in a blink
BIG = 2500


@pytest.fixture
def big_queue(sqlite_console: Console) -> Console:
    backend = open_backend(sqlite_console.url)
    backend.enqueue_many(
        [
            NewJob(
                "qadmin.examples.noop", [i], queue="bulk", priority=(i * 7) % 5, run_at=NOW - timedelta(seconds=BIG - i)
            )
            for i in range(BIG)
        ],
        now=NOW - timedelta(hours=1),
    )
    backend.close()
    return sqlite_console


def test_a_big_queue_shows_its_first_page_before_counting_and_loads_more_on_scrolling(big_queue: Console) -> None:
    app = big_queue.app()
    # counting a million rows takes a while: here the count waits until the test lets it go
    counting = threading.Event()
    real_count = app.ops.count

    def slow_count(selection: JobFilter) -> int:
        counting.wait(10)
        return real_count(selection)

    app.ops.count = slow_count  # type: ignore[method-assign]

    async def scenario(pilot: Any) -> None:
        await wait_for(pilot, lambda: isinstance(app.screen, OverviewScreen), "the overview")
        app.show_jobs(JobFilter(queues=("bulk",)))
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, JobsScreen) and app.screen.is_mounted and app.screen.table.row_count == PAGE,
            "the first page while the count is still running",
        )
        jobs: JobsScreen = app.screen  # type: ignore[assignment]
        assert jobs.count is None
        counting.set()
        await loaded(pilot, jobs)
        assert jobs.count == BIG
        await pilot.press("end")
        await wait_for(pilot, lambda: jobs.table.row_count == 2 * PAGE, "the next page")
        first_ids = [j.id for j in jobs.table.jobs.values()]
        assert first_ids == sorted(first_ids) and len(set(first_ids)) == 2 * PAGE

    try:
        drive(app, scenario)
    finally:
        counting.set()


def test_sort_cycles_through_the_backend_orders(big_queue: Console) -> None:
    ops = big_queue.ops()
    selection = JobFilter(queues=("bulk",))
    app = big_queue.app()

    async def scenario(pilot: Any) -> None:
        jobs: JobsScreen = await open_jobs(pilot, selection)
        for sort in ("-id", "priority", "run_at"):
            await pilot.press("s")
            await loaded(pilot, jobs)
            assert jobs.sort == sort
            want = [j.id for j in ops.list_jobs(selection, limit=PAGE, sort=sort).jobs]
            assert [j.id for j in jobs.table.jobs.values()] == want

    drive(app, scenario)


def test_a_long_bulk_action_shows_progress_and_reports_what_changed(big_queue: Console) -> None:
    ops = big_queue.ops()
    app = big_queue.app()

    async def scenario(pilot: Any) -> None:
        await open_jobs(pilot, JobFilter(queues=("bulk",)))
        await pilot.press("D")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        assert app.screen.title_text == f"Delete {BIG} jobs?"
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, ProgressScreen) and app.screen.done, "the report")
        bar = app.screen.query_one(ProgressBar)
        assert (bar.progress, bar.total) == (BIG, BIG)
        report = text_of(app.screen.query_one("#report"))
        assert f"Deleted {BIG} of {BIG} matched jobs." in report
        await pilot.press("enter")

    drive(app, scenario)
    assert ops.count(JobFilter(queues=("bulk",))) == 0
    entry = ops.audit(limit=1)[0]
    assert (entry.verb, entry.matched, entry.changed, entry.face) == ("delete", BIG, BIG, "tui")
