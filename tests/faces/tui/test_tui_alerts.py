"""The overview shows the open alert incidents above its totals until they resolve, on SQLite,
PostgreSQL and Redis."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Static

from qadmin.backends import open_backend
from qadmin.tui.screens.overview import OverviewScreen
from tests.faces.tui.demo_data import clock as fixed_clock
from tests.faces.tui.harness import Console, drive, wait_for
from tests.faces.tui.helpers import overview, text_of
from tests.faces.tui.scenes import demo_database


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
        pytest.param("redis", id="redis", marks=pytest.mark.redis),
    ]
)
def alert_console(request: pytest.FixtureRequest, tmp_path: Path) -> Console:
    if request.param == "sqlite":
        return Console("sqlite", demo_database(tmp_path), fixed_clock)
    url = request.getfixturevalue(f"{request.param}_url")
    backend = open_backend(url)
    backend.init()
    backend.close()
    return Console(request.param, url, fixed_clock)


def test_the_overview_shows_open_incidents_until_they_resolve(alert_console: Console) -> None:
    ops = alert_console.ops()
    app = alert_console.app(refresh=0.2)

    def banner() -> Static:
        screen = app.screen
        assert isinstance(screen, OverviewScreen)
        return screen.query_one("#alerts", Static)

    async def scenario(pilot: Any) -> None:
        await overview(pilot)
        assert not banner().display
        ops.backend.open_incident("mail-unserved", ops.clock(), "no worker serves queue mail")
        await wait_for(pilot, lambda: banner().display, "the alert banner")
        shown = text_of(banner())
        assert "alert mail-unserved firing" in shown and "no worker serves queue mail" in shown
        ops.backend.resolve_incident("mail-unserved", ops.clock())
        await wait_for(pilot, lambda: not banner().display, "the banner to go")

    try:
        drive(app, scenario)
    finally:
        ops.close()
