"""The console while its backend is down or slow: a status line, the last data, keys that work."""

from __future__ import annotations

from typing import Any

import pytest
from textual.widgets import DataTable

from qadmin.backends import open_backend
from qadmin.tui.screens.help import HelpScreen
from qadmin.tui.screens.jobs import JobsScreen
from qadmin.tui.screens.overview import OverviewScreen
from tests.faces.tui.demo_data import clock, seed
from tests.faces.tui.harness import Console, drive, wait_for
from tests.faces.tui.helpers import overview, rows


def _down_console(kind: str, request: pytest.FixtureRequest) -> tuple[Console, Any]:
    if kind == "postgres":
        server = request.getfixturevalue("postgres_server")
        url = request.getfixturevalue("postgres_url")
        backend = open_backend(url)
        seed(backend)
        backend.close()
        return Console(kind, url, clock), server
    from qadmin.demo import fill
    from qadmin.job import utcnow

    server = request.getfixturevalue("redis_server")
    url = request.getfixturevalue("redis_url")
    backend = open_backend(url)
    fill(backend)
    backend.close()
    return Console(kind, url, utcnow), server


@pytest.mark.parametrize("kind", ["postgres", "redis"])
def test_the_console_answers_keys_and_keeps_its_data_while_the_server_is_stopped(
    kind: str, request: pytest.FixtureRequest
) -> None:
    console, server = _down_console(kind, request)
    app = console.app(refresh=0.5)

    async def scenario(pilot: Any) -> None:
        screen = await overview(pilot)
        shown = rows(screen.query_one("#queues", DataTable))
        server.stop()
        try:
            await wait_for(pilot, lambda: app.status[0] == "error", "the status line to report the outage", timeout=20)
            assert "showing data from" in app.status[1]
            # every key still works, and the last data stays on screen
            await pilot.press("2")
            await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen), "the jobs page")
            await pilot.press("question_mark")
            await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "the help screen")
            await pilot.press("escape", "1")
            await wait_for(pilot, lambda: isinstance(app.screen, OverviewScreen), "the overview")
            assert rows(screen.query_one("#queues", DataTable)) == shown
            assert app.status[0] == "error"
        finally:
            server.start()
        await wait_for(pilot, lambda: app.status[0] == "ok", "the console to recover", timeout=30)
        # what the server has now (a restarted redis-server without persistence comes back empty)
        now_there = set(console.ops().stats().queues)
        await wait_for(
            pilot,
            lambda: {r[0] for r in rows(screen.query_one("#queues", DataTable))} == now_there,
            "the overview to show the server's data again",
        )

    drive(app, scenario)


def test_a_slow_backend_is_reported_while_the_keys_keep_working(request: pytest.FixtureRequest) -> None:
    # CLIENT PAUSE makes redis-server hold every client's commands: a real slow server
    console, server = _down_console("redis", request)
    app = console.app(refresh=0.5)

    async def scenario(pilot: Any) -> None:
        await overview(pilot)
        server.client().execute_command("CLIENT", "PAUSE", 5000, "ALL")
        await wait_for(pilot, lambda: app.status[0] == "slow", "the status line to report a slow backend")
        assert "waited" in app.status[1] and "showing data from" in app.status[1]
        # no pile-up: one refresh waits, the next ticks only report it
        assert sum(1 for w in app.screen.workers if w.is_running) <= 1
        await pilot.press("2")
        await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen), "the jobs page")
        await pilot.press("1")
        await wait_for(pilot, lambda: app.status[0] == "ok", "the backend to answer again", timeout=20)

    drive(app, scenario)
