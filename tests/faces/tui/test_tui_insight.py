"""The History page (7) and the Metrics page (8) on SQLite, PostgreSQL and Redis, over a day of
synthetic history: every range shows its number of buckets and the seeded sums, narrowing by
queue and class; class metrics as seeded, sorted by key and by header, enter lists a class's
jobs; an empty backend says so; nothing breaks at 80x24."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from textual.widgets import DataTable, Input

from qadmin.backends import open_backend
from qadmin.insight import RANGES, HistorySample, HistorySeries
from qadmin.job import utcnow
from qadmin.tui.figures import count, rate, runtime
from qadmin.tui.screens.history import HistoryScreen
from qadmin.tui.screens.jobs import JobsScreen
from qadmin.tui.screens.metrics import MetricsScreen
from qadmin.tui.widgets.chart import HistoryChart, bar_rows, buckets_per_bar, group
from tests.faces.tui.harness import Console, drive, wait_for
from tests.faces.tui.helpers import overview, rows, text_of
from tests.faces.tui.history_data import a_day, record
from tests.faces.tui.test_tui_console import footer_keys

#: buckets a range shows: minutes for 1h and 24h, hours for 7d and 30d
POINTS = {"1h": 60, "24h": 1440, "7d": 168, "30d": 720}


@pytest.fixture
def empty(any_url: str) -> Console:
    backend = open_backend(any_url)
    backend.init()
    backend.close()
    now = utcnow()
    return Console(any_url.split(":", 1)[0].split("+", 1)[0], any_url, lambda: now)


@pytest.fixture
def seeded(empty: Console) -> tuple[Console, list[HistorySample]]:
    samples = a_day(empty.clock())
    record(empty.url, samples)
    return empty, samples


def in_range(samples: Sequence[HistorySample], series: HistorySeries, **narrowed: str) -> dict[str, int]:
    chosen = [s for s in samples if s.minute >= series.since and all(getattr(s, k) == v for k, v in narrowed.items())]
    return {f: sum(getattr(s, f) for s in chosen) for f in ("processed", "failed", "retried")}


async def history_page(pilot: Any) -> HistoryScreen:
    app = pilot.app
    await overview(pilot)
    await pilot.press("7")
    await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.series is not None, "history")
    return app.screen  # type: ignore[return-value]


async def metrics_page(pilot: Any, first: bool = True) -> MetricsScreen:
    app = pilot.app
    if first:
        await overview(pilot)
    await pilot.press("8")
    await wait_for(pilot, lambda: isinstance(app.screen, MetricsScreen) and app.screen.shown is not None, "metrics")
    return app.screen  # type: ignore[return-value]


def chart(screen: HistoryScreen, name: str) -> HistoryChart:
    return screen.query_one(f"#chart-{name}", HistoryChart)


async def shows(
    pilot: Any, screen: HistoryScreen, range_: str, sums: dict[str, int] | None = None, timeout: float = 10.0
) -> None:
    """Wait until the page shows `range_` and its charts are drawn (with `sums` when given)."""

    def drawn() -> bool:
        series = screen.series
        if series is None or series.range != range_ or screen._inflight:
            return False
        if sums is None:
            return True
        return all(sum(v or 0 for v in chart(screen, f).bars) == n for f, n in sums.items())

    await wait_for(pilot, drawn, f"the {range_} charts", timeout)


def test_every_range_shows_its_buckets_and_the_seeded_sums(seeded: tuple[Console, list[HistorySample]]) -> None:
    console, samples = seeded
    app = console.app()

    async def scenario(pilot: Any) -> None:
        screen = await history_page(pilot)
        assert screen.query_one("#range").active == "24h"
        for range_ in ("24h", "7d", "30d", "1h"):  # ] steps on, and round
            if range_ != "24h":
                await pilot.press("right_square_bracket")
            await shows(pilot, screen, range_)
            series = screen.series
            assert series is not None and len(series.points) == POINTS[range_]
            assert series.resolution == RANGES[range_][1]
            sums = in_range(samples, series)
            await shows(pilot, screen, range_, sums)
            summary = text_of(screen.query_one("#history-summary"))
            assert f"last {range_}" in summary
            assert f"{count(sums['processed'])} processed" in summary
            assert f"{count(sums['failed'])} failed" in summary and f"{count(sums['retried'])} retried" in summary
            processed = chart(screen, "processed")
            width = processed.content_size.width - 9
            assert len(processed.bars) == -(
                -POINTS[range_] // buckets_per_bar(POINTS[range_], width, series.resolution)
            )
            assert processed.render().plain.startswith(f"processed  {count(sums['processed'])}")
            assert chart(screen, "p95").bars and max(v or 0 for v in chart(screen, "p95").bars) > 1.8  # Report's 2 s
            latency = {c.title: max(v or 0 for v in c.bars) for c in screen.query("#latency HistoryChart")}
            assert latency == {"mail": 6.0, "reports": 45.0}
        assert "Range" in await footer_keys(pilot)
        await pilot.press("left_square_bracket")
        await shows(pilot, screen, "30d")

    drive(app, scenario)


def test_history_narrows_by_queue_and_class(seeded: tuple[Console, list[HistorySample]]) -> None:
    console, samples = seeded
    app = console.app()

    async def scenario(pilot: Any) -> None:
        screen = await history_page(pilot)
        await shows(pilot, screen, "24h")
        await pilot.press("f")
        assert screen.focused is screen.query_one("#queue", Input)
        await pilot.press(*"rep")
        await wait_for(pilot, lambda: screen.query_one("#queue", Input)._suggestion == "reports", "the suggestion")
        await pilot.press("right", "enter")  # accepts the completion, applies it
        await wait_for(pilot, lambda: screen.series is not None and screen.series.queue == "reports", "the queue")
        series = screen.series
        assert series is not None
        await shows(pilot, screen, "24h", in_range(samples, series, queue="reports"))
        assert "queue reports" in text_of(screen.query_one("#history-summary"))
        assert [c.title for c in screen.query("#latency HistoryChart")] == ["reports"]
        screen.query_one("#queue", Input).value = ""
        screen.query_one("#class", Input).value = "Mail"
        await wait_for(pilot, lambda: screen.series is not None and screen.series.job_class == "Mail", "the class")
        await shows(pilot, screen, "24h", in_range(samples, screen.series, job_class="Mail"))
        assert "class Mail" in text_of(screen.query_one("#history-summary"))
        await pilot.press("escape", "c")
        await wait_for(pilot, lambda: screen.series is not None and screen.series.job_class is None, "cleared boxes")

    drive(app, scenario)


def test_the_charts_follow_the_refresh_tick(seeded: tuple[Console, list[HistorySample]]) -> None:
    console, samples = seeded
    app = console.app(refresh=0.5)
    minute = console.clock().replace(second=0, microsecond=0)

    async def scenario(pilot: Any) -> None:
        screen = await history_page(pilot)
        await pilot.press("left_square_bracket")
        await shows(pilot, screen, "1h")
        assert screen.series is not None
        before = in_range(samples, screen.series)["processed"]
        record(console.url, [HistorySample(minute, "mail", "Mail", processed=1000)])
        await shows(pilot, screen, "1h", {"processed": before + 1000})  # the tick read it: no key pressed
        await pilot.press("right_square_bracket")
        await shows(pilot, screen, "24h")
        assert screen.series is not None
        day = in_range(samples, screen.series)["processed"] + 1000
        await shows(pilot, screen, "24h", {"processed": day})
        record(console.url, [HistorySample(minute, "mail", "Mail", processed=7)])
        await pilot.press("ctrl+r")  # a day is read again every 10 s; ctrl+r reads it now
        await shows(pilot, screen, "24h", {"processed": day + 7}, timeout=5)

    drive(app, scenario)


def test_metrics_rows_are_the_seeded_classes(seeded: tuple[Console, list[HistorySample]]) -> None:
    console, _samples = seeded
    expected = {m.job_class: m for m in console.ops().insight.class_metrics("24h")}
    app = console.app()

    async def scenario(pilot: Any) -> None:
        screen = await metrics_page(pilot)
        table = screen.query_one("#metrics", DataTable)
        shown = {row[0]: row for row in rows(table)}
        assert list(shown) == ["Mail", "Report"]  # by runs, the most first
        mail, report = shown["Mail"], shown["Report"]
        # a day: Mail 2 ok a minute and a failure every 10th; Report every 3rd minute, retried every 30th
        assert mail[1:5] == ["3,024", "144", "0", rate(144 / 3024)]
        assert report[1:5] == ["528", "0", "48", rate(48 / 528)]
        for name, row in shown.items():
            m = expected[name]
            assert row[5:9] == [runtime(m.p50), runtime(m.p95), runtime(m.p99), runtime(m.mean)]
            assert row[11] == m.queues[0]
        assert 0.09 < expected["Mail"].p50 < 0.11 and 1.9 < expected["Report"].p99 < 2.1  # type: ignore[operator]
        assert "new" in mail[10]  # no runs the day before
        summary = text_of(screen.query_one("#metrics-summary"))
        assert "2 classes · 3,552 runs in the last 24h" in summary and "sorted by runs ↓" in summary
        assert {"Sort", "Range"} <= await footer_keys(pilot)
        await pilot.press("f", *"reports", "enter")  # the queue box
        await wait_for(pilot, lambda: screen.shown is not None and screen.shown.narrowing.queue == "reports", "queue")
        assert [row[0] for row in rows(table)] == ["Report"]
        assert "on queue reports" in text_of(screen.query_one("#metrics-summary"))

    drive(app, scenario)


async def order(pilot: Any, screen: MetricsScreen, sort: str) -> list[str]:
    await wait_for(pilot, lambda: screen.shown is not None and screen.shown.sort == sort, f"sorted by {sort}")
    return [row[0] for row in rows(screen.query_one("#metrics", DataTable))]


def header_x(table: DataTable[Any], key: str) -> int:
    x = 0
    for column in table.columns.values():
        if column.key.value == key:
            return x + 2
        x += column.get_render_width(table)
    raise AssertionError(f"no column {key}")


def test_sorting_by_key_and_by_header_changes_the_order(seeded: tuple[Console, list[HistorySample]]) -> None:
    console, _samples = seeded
    app = console.app()

    async def scenario(pilot: Any) -> None:
        screen = await metrics_page(pilot)
        table = screen.query_one("#metrics", DataTable)
        assert await order(pilot, screen, "-runs") == ["Mail", "Report"]
        assert "RUNS ▼" in str(table.columns[table.ordered_columns[1].key].label)
        await pilot.press("S")
        assert await order(pilot, screen, "runs") == ["Report", "Mail"]
        await pilot.press("s")  # the next column, largest first: failed
        assert await order(pilot, screen, "-failed") == ["Mail", "Report"]
        await pilot.press("s", "s")  # failure rate, then p50: Report's 2 s first
        assert await order(pilot, screen, "-p50") == ["Report", "Mail"]
        assert "sorted by p50 ↓" in text_of(screen.query_one("#metrics-summary"))
        await pilot.click("#metrics", offset=(header_x(table, "class"), 0))
        assert await order(pilot, screen, "class") == ["Mail", "Report"]
        await pilot.click("#metrics", offset=(header_x(table, "class"), 0))  # again: the other way
        assert await order(pilot, screen, "-class") == ["Report", "Mail"]
        assert "CLASS ▼" in str(table.ordered_columns[0].label)

    drive(app, scenario)


def test_enter_on_a_class_opens_its_jobs(seeded: tuple[Console, list[HistorySample]]) -> None:
    console, _samples = seeded
    app = console.app()

    async def scenario(pilot: Any) -> None:
        screen = await metrics_page(pilot)
        await wait_for(pilot, lambda: screen.query_one("#metrics", DataTable).row_count == 2, "the rows")
        await pilot.press("down")
        assert screen.current_class == "Report"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen), "the jobs page")
        jobs: JobsScreen = app.screen  # type: ignore[assignment]
        await wait_for(pilot, lambda: jobs.selection.class_name == "Report", "the class filter")
        assert jobs.query_one("#class", Input).value == "Report"

    drive(app, scenario)


def test_an_empty_backend_says_so(empty: Console) -> None:
    app = empty.app()

    async def scenario(pilot: Any) -> None:
        history = await history_page(pilot)
        await shows(pilot, history, "24h")
        assert history.query_one("#history-charts").has_class("-empty")
        assert "Nothing recorded in the last 24h" in text_of(history.query_one("#history-empty"))
        assert history.query_one("#history-empty").display
        assert not chart(history, "processed").display
        metrics = await metrics_page(pilot, first=False)
        assert metrics.query_one("#metrics", DataTable).row_count == 0
        assert "No runs recorded in the last 24h" in text_of(metrics.query_one("#metrics-summary"))

    drive(app, scenario)


@pytest.mark.parametrize("page", ["history", "metrics"])
def test_both_pages_work_at_80x24(page: str, seeded: tuple[Console, list[HistorySample]]) -> None:
    console, _samples = seeded
    app = console.app()

    async def scenario(pilot: Any) -> None:
        screen: HistoryScreen | MetricsScreen = await (history_page if page == "history" else metrics_page)(pilot)
        for range_ in ("7d", "30d", "1h", "24h"):
            await pilot.press("right_square_bracket")
            await wait_for(pilot, lambda: screen.narrowing.range == range_ and not screen._inflight, range_)
            await pilot.pause()
        if isinstance(screen, HistoryScreen):
            assert len(chart(screen, "processed").bars) <= 80
        else:
            await pilot.press("s", "S", "enter")
            await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen), "the jobs page")
        await pilot.press("7", "8", "question_mark")

    drive(app, scenario, size=(80, 24))


def test_bars_add_up_and_end_at_the_newest_bucket() -> None:
    points = list(range(10))
    assert group(points, 3) == [[0], [1, 2, 3], [4, 5, 6], [7, 8, 9]]  # type: ignore[comparison-overlap]
    assert buckets_per_bar(1440, 100, "minute") == 15 and buckets_per_bar(720, 100, "hour") == 8
    assert buckets_per_bar(60, 100, "minute") == 1
    assert bar_rows([0, 4, 8, None, 1], 2) == ["  █  ", "·██·▂"]


def test_the_number_formats() -> None:
    assert [runtime(v) for v in (None, 0.0042, 0.35, 2.5, 125.0)] == ["—", "4ms", "350ms", "2.50s", "2m 05s"]
    assert [rate(v) for v in (0.0, 0.004, 0.125, 1.0)] == ["0%", "0.4%", "12.5%", "100%"]
